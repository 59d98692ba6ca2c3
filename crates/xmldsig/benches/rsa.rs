//! RSA-2048 PKCS#1 v1.5 SHA-256 verification, ring against aws-lc-rs, measured interleaved
//! in one process (issue 20: choose the verifier on measured evidence). Each of 60 rounds
//! times a batch of each contender in turn, so all see the same machine state; the medians
//! and the ratio to ring are printed.
//!
//! Contenders, each verifying the canonical SignedInfo of the 11 KB SPID fixture (the message
//! xmldsig verifies per signature) with the test IdP's key:
//! - `ring`: `UnparsedPublicKey::verify`, what `TrustedKey::verify` does today (ring parses the
//!   key and derives its Montgomery constants at every call; it has no prepared RSA key);
//! - `aws-lc-rs unparsed`: the same call shape in aws-lc-rs;
//! - `aws-lc-rs parsed`: `ParsedPublicKey`, the key parsed once (what a `TrustedKey` would
//!   hold).
//!
//! Then SHA-256 the same way, ring against aws-lc-rs, over the canonical Response (minus its
//! signature) of the same fixture: the other half of the crypto floor.
//!
//! Instruction counts instead of time (load-independent, for callgrind):
//! `RSA_ONLY=<contender> RSA_CALLS=N` runs the setup and N calls of one contender
//! (`ring`, `lc-unparsed`, `lc-parsed`, `sha-ring`, `sha-lc`); subtract the N = 0 run.
//!
//! Run: `taskset -c 1 cargo bench -p xmldsig --bench rsa`.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Limits};
use xmldsig::DSIG_NS;

const RESPONSE_11K: &[u8] = include_bytes!("data/response-spid-signed-rsa2048.xml");
const CERT_DER: &[u8] = include_bytes!("../tests/keys/idp-rsa2048.crt.der");
const ROUNDS: usize = 60;
const BATCH: usize = 200;

fn main() {
    let doc = Document::parse(RESPONSE_11K, &Limits::default()).unwrap();
    let sig = doc
        .root()
        .child_elements()
        .find(|e| e.is(DSIG_NS, "Signature"))
        .unwrap();
    let part = |local: &str| sig.child_elements().find(|e| e.is(DSIG_NS, local)).unwrap();
    let mut si = Vec::new();
    canonicalize(part("SignedInfo"), &Options::default(), &mut si).unwrap();
    let text: String = part("SignatureValue")
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let value = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(CERT_DER).unwrap();
    // PKCS#1 RSAPublicKey DER, the form both libraries take for these algorithms.
    let pk = cert.public_key().subject_public_key.data.to_vec();
    let parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &pk,
    )
    .unwrap();

    let ring_verify = || {
        ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, &pk)
            .verify(black_box(&si), &value)
            .unwrap();
    };
    let lc_unparsed = || {
        aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            &pk,
        )
        .verify(black_box(&si), &value)
        .unwrap();
    };
    let lc_parsed = || {
        parsed.verify_sig(black_box(&si), &value).unwrap();
    };
    let mut content = Vec::new();
    canonicalize(
        doc.root(),
        &Options {
            exclude: Some(sig.node_id()),
            ..Options::default()
        },
        &mut content,
    )
    .unwrap();
    let sha_ring = || {
        black_box(ring::digest::digest(
            &ring::digest::SHA256,
            black_box(&content),
        ));
    };
    let sha_lc = || {
        black_box(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            black_box(&content),
        ));
    };
    if let Ok(calls) = std::env::var("RSA_CALLS") {
        let calls: usize = calls.parse().expect("RSA_CALLS: a number");
        let f: &dyn Fn() = match std::env::var("RSA_ONLY").as_deref() {
            Ok("ring") => &ring_verify,
            Ok("lc-unparsed") => &lc_unparsed,
            Ok("lc-parsed") => &lc_parsed,
            Ok("sha-ring") => &sha_ring,
            Ok("sha-lc") => &sha_lc,
            _ => panic!("RSA_ONLY: ring, lc-unparsed, lc-parsed, sha-ring or sha-lc"),
        };
        (0..calls).for_each(|_| f());
        return;
    }
    let contenders: [(&str, &dyn Fn()); 3] = [
        ("ring", &ring_verify),
        ("aws-lc-rs unparsed", &lc_unparsed),
        ("aws-lc-rs parsed", &lc_parsed),
    ];
    rounds(
        &format!(
            "RSA-2048 SHA-256 verify of a {} B SignedInfo, {ROUNDS} rounds of {BATCH}",
            si.len()
        ),
        &contenders,
    );
    let contenders: [(&str, &dyn Fn()); 2] =
        [("sha256 ring", &sha_ring), ("sha256 aws-lc-rs", &sha_lc)];
    rounds(
        &format!(
            "SHA-256 of the {} B canonical Response, {ROUNDS} rounds of {BATCH}",
            content.len()
        ),
        &contenders,
    );
}

/// Times each contender in turn, `ROUNDS` times, and prints each one's median and its ratio
/// to the first contender of the same round.
fn rounds(title: &str, contenders: &[(&str, &dyn Fn())]) {
    for (_, f) in contenders {
        (0..BATCH).for_each(|_| f());
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); contenders.len()];
    let mut ratios: Vec<Vec<f64>> = vec![Vec::with_capacity(ROUNDS); contenders.len()];
    for _ in 0..ROUNDS {
        let mut round = Vec::with_capacity(contenders.len());
        for (_, f) in contenders {
            let t = Instant::now();
            (0..BATCH).for_each(|_| f());
            round.push(t.elapsed().as_secs_f64() * 1e6 / BATCH as f64);
        }
        for (i, us) in round.iter().enumerate() {
            times[i].push(*us);
            ratios[i].push(us / round[0]);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() / 10], v[v.len() * 9 / 10])
    };
    println!("{title}");
    let first = contenders.first().map_or("", |c| c.0);
    for (i, (name, _)) in contenders.iter().enumerate() {
        let (t, _, _) = median(&mut times[i]);
        let (r, r10, r90) = median(&mut ratios[i]);
        println!(
            "{name:<20} median {t:>7.2} µs   / {first}: median {r:.3} (p10 {r10:.3}, p90 {r90:.3})"
        );
    }
}
