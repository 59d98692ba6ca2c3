//! Searches for expensive inputs (issue 17): fails when the work counted by
//! `saml_xml::work` per input byte exceeds the bound the tests state.
//!
//! Arbitrary bytes are parsed with the message limits; a document is canonicalized at the
//! root, signature excluded, with every prefix its `InclusiveNamespaces` elements list (not
//! validated, so that C14N is searched with long lists too), and verified by `xmldsig` with
//! one trusted key. Each step count is compared with a multiple of the input length:
//! - parse: `2 + max_attributes / 8` steps a byte (`crates/saml-xml/tests/work.rs`);
//! - C14N, output bytes aside (each is a step, and the output bound is checked by
//!   `canonicalize` itself): 4 steps a byte plus one per listed prefix;
//! - verify: two canonicalizations (element and SignedInfo) with their outputs, and a
//!   PrefixList check.
//!
//! A failure is an input whose work grows faster than its length: shrink it with
//! `cargo fuzz tmin work_bound <file>` and make it a named test in
//! `crates/saml-xml/tests/work.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_xml::c14n::{OUTPUT_FACTOR, OUTPUT_SLACK, Options, canonicalize};
use saml_xml::{Document, Element, Limits, work};
use xmldsig::{DSIG_NS, Policy, TrustedKey};

const CERT: &[u8] = include_bytes!("../../crates/xmldsig/tests/keys/idp-rsa2048.crt.pem");
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Fixed costs of a call (a few steps even for an empty input).
const BASE: u64 = 64;

fn prefixes<'d>(root: Element<'d, '_>, out: &mut Vec<&'d str>) {
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        if e.is(EXC_C14N, "InclusiveNamespaces") {
            out.extend(
                e.attribute("PrefixList")
                    .unwrap_or("")
                    .split_ascii_whitespace(),
            );
        }
        stack.extend(e.child_elements());
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let n = data.len() as u64;
    let (doc, parse) = work::measure(|| Document::parse(data, &limits));
    let parse_bound = (2 + limits.max_attributes as u64 / 8) * n + BASE;
    assert!(parse <= parse_bound, "parse: {parse} steps for {n} bytes");
    let Ok(doc) = doc else { return };
    let root = doc.root();

    let mut list = Vec::new();
    prefixes(root, &mut list);
    let opts = Options {
        with_comments: false,
        inclusive_prefixes: &list,
        exclude: root
            .child_elements()
            .find(|e| e.is(DSIG_NS, "Signature"))
            .map(|s| s.node_id()),
    };
    let mut out = Vec::new();
    let (_, c14n) = work::measure(|| canonicalize(root, &opts, &mut out));
    let walk = c14n.saturating_sub(out.len() as u64);
    let c14n_bound = 4 * n + list.len() as u64 + BASE;
    assert!(
        walk <= c14n_bound,
        "c14n: {walk} steps besides {} output bytes, for {n} bytes and {} listed prefixes",
        out.len(),
        list.len()
    );

    let keys = [TrustedKey::from_certificate_pem(CERT).expect("test certificate")];
    let (_, verify) = work::measure(|| xmldsig::verify(root, &keys, &Policy::default()));
    let output = (OUTPUT_FACTOR as u64 * n + OUTPUT_SLACK as u64) * 2;
    let verify_bound = 2 * (4 * n + BASE) + output + n;
    assert!(
        verify <= verify_bound,
        "verify: {verify} steps for {n} bytes"
    );
});
