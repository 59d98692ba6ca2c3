//! The cost of accepting a SPID Response's signatures, next to its floor.
//!
//! The floor is what no XML code can avoid: the two SHA-256 digests over the canonical bytes
//! of the Response and the Assertion, and the two RSA-2048 verifications of their SignedInfo.
//! `verify_response` is the whole path from bytes: parse once, canonicalize, digest and
//! verify both signatures. The ratio of the two is the overhead of our XML code.
//!
//! Input: `benches/data/response-spid-signed-rsa2048.xml`, the fixture
//! `tests/fixtures/response-spid.xml` signed by xmlsec1 1.2.37 (Assertion, then Response) with
//! the test key `tests/keys/idp-rsa2048`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Element, Limits};
use xmldsig::{DSIG_NS, Policy, TrustedKey, verify};

const RESPONSE: &[u8] = include_bytes!("data/response-spid-signed-rsa2048.xml");
const CERT: &[u8] = include_bytes!("../tests/keys/idp-rsa2048.crt.pem");
const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

fn assertion<'d, 'a>(doc: &'d Document<'a>) -> Element<'d, 'a> {
    doc.root()
        .child_elements()
        .find(|e| e.is(ASSERTION_NS, "Assertion"))
        .unwrap()
}

fn signature<'d, 'a>(el: Element<'d, 'a>) -> Element<'d, 'a> {
    el.child_elements()
        .find(|e| e.is(DSIG_NS, "Signature"))
        .unwrap()
}

fn child<'d, 'a>(el: Element<'d, 'a>, local: &str) -> Element<'d, 'a> {
    el.child_elements().find(|e| e.is(DSIG_NS, local)).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    let s: String = s.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Everything the floor needs, computed once: (canonical element, canonical SignedInfo,
/// signature value) for the Response and the Assertion.
fn floor_inputs(doc: &Document<'_>) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    [doc.root(), assertion(doc)]
        .into_iter()
        .map(|el| {
            let sig = signature(el);
            let mut content = Vec::new();
            let opts = Options {
                exclude: Some(sig.node_id()),
                ..Options::default()
            };
            canonicalize(el, &opts, &mut content).unwrap();
            let mut si = Vec::new();
            canonicalize(child(sig, "SignedInfo"), &Options::default(), &mut si).unwrap();
            (content, si, b64(&child(sig, "SignatureValue").text()))
        })
        .collect()
}

fn public_key() -> Vec<u8> {
    let der = {
        let pem = std::str::from_utf8(CERT).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        b64(&body)
    };
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    cert.public_key().subject_public_key.data.to_vec()
}

fn benches(c: &mut Criterion) {
    let keys = [TrustedKey::from_certificate_pem(CERT).unwrap()];
    let policy = Policy::default();
    let doc = Document::parse(RESPONSE, &Limits::default()).unwrap();
    let inputs = floor_inputs(&doc);
    // The fastest verifier measured (`benches/rsa.rs`), the key parsed once.
    let pk = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        public_key(),
    )
    .unwrap();

    // Sanity: the benchmarked path accepts this input.
    verify(doc.root(), &keys, &policy).unwrap();
    verify(assertion(&doc), &keys, &policy).unwrap();

    let mut g = c.benchmark_group("spid_response_11k_rsa2048");
    g.bench_function("floor_2x_sha256_2x_rsa_verify", |b| {
        b.iter(|| {
            for (content, si, sig) in &inputs {
                black_box(ring::digest::digest(
                    &ring::digest::SHA256,
                    black_box(content),
                ));
                pk.verify_sig(black_box(si), sig).unwrap();
            }
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| Document::parse(black_box(RESPONSE), &Limits::default()).unwrap())
    });
    g.bench_function("c14n_assertion", |b| {
        let a = assertion(&doc);
        let opts = Options {
            exclude: Some(signature(a).node_id()),
            ..Options::default()
        };
        let mut out = Vec::with_capacity(8192);
        b.iter(|| {
            out.clear();
            canonicalize(a, &opts, &mut out).unwrap();
            black_box(out.len())
        })
    });
    g.bench_function("verify_response_and_assertion", |b| {
        b.iter(|| {
            let doc = Document::parse(black_box(RESPONSE), &Limits::default()).unwrap();
            let r = verify(doc.root(), &keys, &policy).unwrap();
            let a = verify(assertion(&doc), &keys, &policy).unwrap();
            black_box((r.element().node_id(), a.element().node_id()))
        })
    });
    g.finish();
}

criterion_group!(verify_benches, benches);
criterion_main!(verify_benches);
