//! Verifying one SD-JWT VC presentation made by the independent wallet (`tests/py/wallet.py`,
//! the OpenWallet Foundation `sd-jwt` library): a PID with 9 disclosures (one recursive,
//! two array elements) and decoys, issuer ES256, KB-JWT ES256. Parse + issuer signature +
//! every disclosure digest + KB-JWT signature and claims; and the parse alone. Numbers:
//! docs/PERFORMANCE.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jose::Jwks;
use sdjwt::{Expect, IssuerKey, Limits, Presentation};
use serde_json::Value;

#[path = "../tests/common/mod.rs"]
mod common;

const NOW: u64 = 1_800_000_000;

fn benches(c: &mut Criterion) {
    let v: Value = serde_json::from_str(&common::run_py("wallet.py", &[&NOW.to_string()])).unwrap();
    let p = v["scenarios"]["ok"]["presentation"]
        .as_str()
        .unwrap()
        .to_owned();
    let keys = Jwks::from_value(&v["issuer_jwks"]).unwrap();
    let (aud, nonce) = (v["aud"].as_str().unwrap(), v["nonce"].as_str().unwrap());
    let expect = Expect {
        now: NOW,
        aud,
        nonce,
        vct: &["urn:eudi:pid:it:1"],
        iss: Some("https://pid.example.it"),
        skew: 60,
        kb_max_age: 300,
        require_status: true,
    };
    let limits = Limits::default();
    eprintln!(
        "presentation: {} bytes, {} disclosures",
        p.len(),
        p.matches('~').count() - 1
    );
    c.bench_function("sdjwt/verify_pid_presentation_es256", |b| {
        b.iter(|| {
            let parsed = Presentation::parse(black_box(&p), &limits).unwrap();
            black_box(parsed.verify(IssuerKey::Set(&keys), &expect).unwrap());
        });
    });
    // The floor: the two ES256 signature checks alone (tokens decoded outside the loop).
    let issuer_jwt = p.split('~').next().unwrap();
    let kb_jwt = p.rsplit('~').next().unwrap();
    let typ = |t| jose::Typ::Exactly(t);
    let issuer = jose::Jws::decode(issuer_jwt, typ("dc+sd-jwt"), &limits.jws).unwrap();
    let kb = jose::Jws::decode_unkeyed(kb_jwt, typ("kb+jwt"), &limits.jws).unwrap();
    let holder = jose::Jwk::from_value_standalone(&v["holder_jwk"]).unwrap();
    c.bench_function("sdjwt/floor_two_es256_verifications", |b| {
        b.iter(|| {
            issuer.verify(black_box(&keys)).unwrap();
            kb.verify_with(black_box(&holder)).unwrap();
        });
    });
    c.bench_function("sdjwt/parse_pid_presentation", |b| {
        b.iter(|| black_box(Presentation::parse(black_box(&p), &limits).unwrap()));
    });
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
