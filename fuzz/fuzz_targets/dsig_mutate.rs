//! Mutations of a genuinely signed SPID Response: whatever still verifies must be exactly what
//! was signed.
//!
//! The base document (`seeds/signed/response-idp-rsa2048.xml`, made once by xmlsec1 with the
//! test key `idp-rsa2048`, see `make-seeds.sh`) has two enveloped signatures, the Response's
//! and the Assertion's. The fuzz input is a program of byte-level edits (replace, insert,
//! delete, copy; and copy/move/delete of ranges between two `<`, which is how elements get
//! wrapped, duplicated and moved; and insertion of XML tokens). The result is parsed and
//! `verify` runs on every element with the trusted key. When it returns `Ok`:
//! - the element's `ID` is one the base document signed;
//! - its canonical form, signature excluded, is byte-identical to the original's;
//! - its content as the SAML layer reads it (names, namespaces, attributes, text with comments
//!   skipped, processing instructions) is identical to the original's: a difference with equal
//!   canonical forms would be a canonicalization collision;
//! - the element has exactly one `ds:Signature` child (the one the signed content excludes).
//!
//! Anything else is a signature-wrapping bug.

#![no_main]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Child, Document, Element, Limits, NodeId};
use xmldsig::{DSIG_NS, Policy, TrustedKey, verify};

const BASE: &[u8] = include_bytes!("../seeds/signed/response-idp-rsa2048.xml");
/// Edited documents grow no larger than this (parsing cost, not a property).
const MAX_LEN: usize = 64 * 1024;
const MAX_OPS: usize = 24;

const TOKENS: &[&str] = &[
    "<ds:Signature>",
    "</ds:Signature>",
    "<saml:Assertion ID=\"_x\">",
    "</saml:Assertion>",
    "<samlp:Extensions>",
    "</samlp:Extensions>",
    "<ds:Object>",
    "</ds:Object>",
    "<ds:KeyInfo/>",
    "<!--x-->",
    "<!---->",
    "<?pi x?>",
    "<![CDATA[x]]>",
    " ID=\"_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f\"",
    " ID=\"_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b\"",
    " xml:id=\"_a\"",
    " xmlns=\"urn:x\"",
    " xmlns=\"\"",
    " xmlns:saml=\"urn:x\"",
    " xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"",
    " xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\"",
    "<ec:InclusiveNamespaces PrefixList=\"xs\"/>",
    "&amp;",
    "&lt;",
    "&#x20;",
    "&#13;",
    "\r\n",
    "\r",
    "\t",
    " ",
];

static KEY: LazyLock<[TrustedKey; 1]> = LazyLock::new(|| {
    let der = include_bytes!("../../crates/xmldsig/tests/keys/idp-rsa2048.crt.der");
    [TrustedKey::from_certificate_der(der).expect("test certificate")]
});

static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

/// What the base document signed: ID → (canonical form, SAML reading), signature excluded.
static SIGNED: LazyLock<HashMap<String, (Vec<u8>, String)>> = LazyLock::new(|| {
    let doc = Document::parse(BASE, &Limits::default()).expect("base document parses");
    let mut out = HashMap::new();
    let mut todo = vec![doc.root()];
    while let Some(el) = todo.pop() {
        todo.extend(el.child_elements());
        if verify(el, &*KEY, &POLICY).is_ok() {
            let id = el.attribute("ID").expect("verified element has an ID");
            out.insert(id.to_owned(), forms(el, enveloped_signature(el)));
        }
    }
    assert_eq!(out.len(), 2, "the base must carry two valid signatures");
    out
});

/// The one `ds:Signature` child of a verified element (the profile allows no other), which
/// the signed content excludes.
fn enveloped_signature(el: Element<'_, '_>) -> NodeId {
    let mut signatures = el.child_elements().filter(|c| c.is(DSIG_NS, "Signature"));
    let sig = signatures
        .next()
        .expect("a verified element has a ds:Signature child");
    assert!(
        signatures.next().is_none(),
        "verified an element with two ds:Signature children"
    );
    sig.node_id()
}

fn forms(el: Element<'_, '_>, signature: NodeId) -> (Vec<u8>, String) {
    let mut c14n = Vec::new();
    let opts = Options {
        exclude: Some(signature),
        ..Options::default()
    };
    canonicalize(el, &opts, &mut c14n).unwrap();
    let mut reading = String::new();
    read(el, signature, &mut reading);
    (c14n, reading)
}

/// The element as the SAML layer can see it: expanded names, attributes sorted, text with
/// comments skipped (adjacent pieces joined), processing instructions. Prefixes, namespace
/// declarations and comments are not part of it.
fn read(el: Element<'_, '_>, skip: NodeId, out: &mut String) {
    let mut attrs: Vec<_> = el.attributes().collect();
    attrs.sort_unstable();
    let _ = write!(
        out,
        "<{{{}}}{}",
        el.namespace().unwrap_or(""),
        el.local_name()
    );
    for (ns, local, value) in attrs {
        let _ = write!(out, " {{{}}}{local}={value:?}", ns.unwrap_or(""));
    }
    out.push('>');
    let mut text = String::new();
    for child in el.children() {
        match child {
            Child::Text(t) => text.push_str(t),
            Child::Comment(_) => {}
            Child::Element(c) => {
                flush(&mut text, out);
                if c.node_id() != skip {
                    read(c, skip, out);
                }
            }
            Child::ProcessingInstruction { target, data } => {
                flush(&mut text, out);
                let _ = write!(out, "<?{target:?} {data:?}?>");
            }
        }
    }
    flush(&mut text, out);
    out.push_str("</>");
}

fn flush(text: &mut String, out: &mut String) {
    if !text.is_empty() {
        let _ = write!(out, "{text:?}");
        text.clear();
    }
}

/// Reads the edit program.
struct Program<'d> {
    data: &'d [u8],
    at: usize,
}

impl Program<'_> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    fn u16(&mut self) -> usize {
        usize::from(u16::from_le_bytes([self.byte(), self.byte()]))
    }

    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
}

/// Offsets of every `<` (and the end), so ranges can snap to markup boundaries.
fn marks(buf: &[u8]) -> Vec<usize> {
    let mut m: Vec<usize> = buf
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b'<')
        .map(|(i, _)| i)
        .collect();
    m.push(buf.len());
    m
}

fn edit(data: &[u8]) -> Vec<u8> {
    let mut buf = BASE.to_vec();
    let mut p = Program { data, at: 0 };
    let mut ops = 0;
    while !p.done() && ops < MAX_OPS && buf.len() <= MAX_LEN {
        ops += 1;
        let op = p.byte();
        let len = buf.len();
        match op % 8 {
            0 => {
                let at = p.u16() % len.max(1);
                let b = p.byte();
                if let Some(x) = buf.get_mut(at) {
                    *x = b;
                }
            }
            1 => {
                let at = p.u16() % (len + 1);
                let b = p.byte();
                buf.insert(at, b);
            }
            2 => {
                let at = p.u16() % (len + 1);
                let n = usize::from(p.byte() % 32) + 1;
                buf.drain(at..(at + n).min(len));
            }
            3 => {
                let dst = p.u16() % (len + 1);
                let src = p.u16() % (len + 1);
                let n = p.u16() % 4096;
                let piece = buf[src..(src + n).min(len)].to_vec();
                buf.splice(dst..dst, piece);
            }
            4..=6 => {
                let m = marks(&buf);
                let a = m[p.u16() % m.len()];
                let b = m[p.u16() % m.len()];
                let dst = m[p.u16() % m.len()];
                let (lo, hi) = (a.min(b), a.max(b));
                let piece = buf[lo..hi].to_vec();
                match op % 8 {
                    // Copy [lo, hi) to dst.
                    4 => {
                        buf.splice(dst..dst, piece);
                    }
                    // Delete [lo, hi).
                    5 => {
                        buf.drain(lo..hi);
                    }
                    // Move [lo, hi) to dst.
                    _ => {
                        if dst <= lo || dst >= hi {
                            buf.drain(lo..hi);
                            let dst = if dst >= hi { dst - (hi - lo) } else { dst };
                            buf.splice(dst..dst, piece);
                        }
                    }
                }
            }
            _ => {
                let m = marks(&buf);
                let raw = p.u16();
                // Half the time at a markup boundary, else anywhere.
                let at = if raw & 1 == 0 {
                    m[(raw >> 1) % m.len()]
                } else {
                    (raw >> 1) % (len + 1)
                };
                let token = TOKENS[usize::from(p.byte()) % TOKENS.len()];
                buf.splice(at..at, token.bytes());
            }
        }
    }
    buf
}

fn check(el: Element<'_, '_>) {
    if let Ok(v) = verify(el, &*KEY, &POLICY) {
        assert_eq!(v.element(), el);
        let signature = enveloped_signature(el);
        let id = el.attribute("ID").unwrap_or_default();
        let Some((c14n, reading)) = SIGNED.get(id) else {
            panic!("verified an element whose ID {id:?} the base never signed");
        };
        let (now_c14n, now_reading) = forms(el, signature);
        assert!(
            &now_c14n == c14n,
            "accepted with different signed content (ID {id}):\n{}",
            String::from_utf8_lossy(&now_c14n)
        );
        assert_eq!(
            &now_reading, reading,
            "same canonical form, different content (ID {id})"
        );
    }
    for c in el.child_elements() {
        check(c);
    }
}

fuzz_target!(|data: &[u8]| {
    LazyLock::force(&SIGNED);
    let buf = edit(data);
    if let Ok(doc) = Document::parse(&buf, &Limits::default()) {
        check(doc.root());
    }
});
