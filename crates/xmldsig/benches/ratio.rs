//! The overhead ratio of the whole verification path over its cryptographic floor, measured
//! interleaved: 60 rounds, each timing a batch of floor iterations then a batch of full
//! iterations, so both see the same machine state (this VM's speed drifts by ±15 % between
//! separate benchmark runs). Prints the median ratio and its spread over rounds.
//!
//! Inputs: the 8 KB and 11 KB signed SPID Responses in `benches/data/` (see
//! `benches/data/README.md`).
//!
//! Floor: two SHA-256 digests over the canonical Response and Assertion, and two RSA-2048
//! verifications of their canonical SignedInfo, each with the fastest implementation measured
//! on this machine (`benches/rsa.rs`): aws-lc-rs with the key parsed once (as `TrustedKey`
//! holds it) for RSA, ring for SHA-256 (aws-lc-rs ties). Full: parse the Response from bytes,
//! canonicalize, digest and verify both signatures with `xmldsig::verify`.
//!
//! Run: `cargo bench -p xmldsig --bench ratio` (pin a core with `taskset -c 1` for less noise).
//!
//! Instruction counts instead of time (load-independent, for callgrind):
//! `RATIO_ONLY=floor|full RATIO_SIZE=8k|11k RATIO_CALLS=N` runs the setup and then N calls of
//! one side, nothing else; `scripts/ratio-instructions.sh` subtracts the N = 0 run.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Element, Limits};
use xmldsig::{DSIG_NS, Policy, TrustedKey, verify};

/// 11 KB: the SPID fixture with 19 attributes.
const RESPONSE_11K: &[u8] = include_bytes!("data/response-spid-signed-rsa2048.xml");
/// 8 KB: the same with 6 attributes (spidCode, name, familyName, fiscalNumber, email,
/// mobilePhone), signed the same way.
const RESPONSE_8K: &[u8] = include_bytes!("data/response-spid-8k-signed-rsa2048.xml");
const CERT_DER: &[u8] = include_bytes!("../tests/keys/idp-rsa2048.crt.der");
const ASSERTION_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const ROUNDS: usize = 60;
const BATCH: usize = 200;

fn child<'d, 'a>(el: Element<'d, 'a>, ns: &str, local: &str) -> Element<'d, 'a> {
    el.child_elements().find(|e| e.is(ns, local)).unwrap()
}

fn main() {
    // Criterion-style flags (`--bench`) are accepted and ignored.
    if let Ok(calls) = std::env::var("RATIO_CALLS") {
        let calls: usize = calls.parse().expect("RATIO_CALLS: a number");
        let response = match std::env::var("RATIO_SIZE").as_deref() {
            Ok("8k") => RESPONSE_8K,
            Ok("11k") => RESPONSE_11K,
            _ => panic!("RATIO_SIZE: 8k or 11k"),
        };
        let only = std::env::var("RATIO_ONLY").unwrap_or_default();
        measure("", response, Some((&only, calls)));
        return;
    }
    if std::env::var("RATIO_STAGES").is_ok() {
        stages("8 KB", RESPONSE_8K);
        stages("11 KB", RESPONSE_11K);
        return;
    }
    measure("8 KB Response (6 attributes)", RESPONSE_8K, None);
    measure("11 KB Response (19 attributes)", RESPONSE_11K, None);
}

/// One stage of [`stages`], run once per call.
type Stage<'s> = Box<dyn FnMut() + 's>;

/// Where the time of one full call goes (`RATIO_STAGES=1`): each stage timed in interleaved
/// rounds like the ratio, as a median per call. The stages overlap the full call, they do not
/// partition it exactly: `parse` includes dropping the document; `c14n ×4` is the four
/// canonicalizations of a validation into buffers kept across calls; `digest ×2` is ring's
/// SHA-256 of the two canonical elements; `verify ×2` is both `xmldsig::verify` calls on a
/// document parsed once (structure, C14N, digests, RSA).
fn stages(label: &str, response: &'static [u8]) {
    let keys = [TrustedKey::from_certificate_der(CERT_DER).unwrap()];
    let policy = Policy::default();
    let doc = Document::parse(response, &Limits::default()).unwrap();
    let assertion = child(doc.root(), ASSERTION_NS, "Assertion");
    let parts: Vec<_> = [doc.root(), assertion]
        .into_iter()
        .map(|el| {
            let sig = child(el, DSIG_NS, "Signature");
            (el, sig, child(sig, DSIG_NS, "SignedInfo"))
        })
        .collect();
    let mut bufs: Vec<Vec<u8>> = (0..4)
        .map(|_| Vec::with_capacity(response.len() * 2))
        .collect();
    let contents: Vec<Vec<u8>> = parts
        .iter()
        .map(|&(el, sig, _)| {
            let mut v = Vec::new();
            let opts = Options {
                exclude: Some(sig.node_id()),
                ..Options::default()
            };
            canonicalize(el, &opts, &mut v).unwrap();
            v
        })
        .collect();
    let mut runs: Vec<(&str, Stage<'_>)> = vec![
        (
            "parse (and drop)",
            Box::new(|| {
                let d = Document::parse(black_box(response), &Limits::default()).unwrap();
                black_box(d.root().node_id());
            }),
        ),
        (
            "c14n x4",
            Box::new(|| {
                for (k, &(el, sig, si)) in parts.iter().enumerate() {
                    let (a, b) = bufs.split_at_mut(2 * k + 1);
                    let (c, s) = (&mut a[2 * k], &mut b[0]);
                    c.clear();
                    s.clear();
                    let opts = Options {
                        exclude: Some(sig.node_id()),
                        ..Options::default()
                    };
                    canonicalize(el, &opts, c).unwrap();
                    canonicalize(si, &Options::default(), s).unwrap();
                }
                black_box(&bufs);
            }),
        ),
        (
            "digest x2",
            Box::new(|| {
                for c in &contents {
                    black_box(ring::digest::digest(&ring::digest::SHA256, black_box(c)));
                }
            }),
        ),
        (
            "verify x2",
            Box::new(|| {
                for &(el, _, _) in &parts {
                    black_box(verify(el, &keys, &policy).unwrap().element().node_id());
                }
            }),
        ),
    ];
    for (_, run) in runs.iter_mut() {
        (0..BATCH).for_each(|_| run());
    }
    let mut times = vec![Vec::with_capacity(ROUNDS); runs.len()];
    for _ in 0..ROUNDS {
        for (k, (_, run)) in runs.iter_mut().enumerate() {
            let t = Instant::now();
            (0..BATCH).for_each(|_| run());
            times[k].push(t.elapsed().as_secs_f64() * 1e6 / BATCH as f64);
        }
    }
    println!("{label}");
    for ((name, _), t) in runs.iter().zip(times.iter_mut()) {
        t.sort_by(f64::total_cmp);
        println!("  {name:<18} median {:6.2} us", t[t.len() / 2]);
    }
}

fn measure(label: &str, response: &'static [u8], only: Option<(&str, usize)>) {
    let keys = [TrustedKey::from_certificate_der(CERT_DER).unwrap()];
    let policy = Policy::default();
    let doc = Document::parse(response, &Limits::default()).unwrap();
    let assertion = child(doc.root(), ASSERTION_NS, "Assertion");
    let inputs: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = [doc.root(), assertion]
        .into_iter()
        .map(|el| {
            let sig = child(el, DSIG_NS, "Signature");
            let mut content = Vec::new();
            canonicalize(
                el,
                &Options {
                    exclude: Some(sig.node_id()),
                    ..Options::default()
                },
                &mut content,
            )
            .unwrap();
            let mut si = Vec::new();
            canonicalize(
                child(sig, DSIG_NS, "SignedInfo"),
                &Options::default(),
                &mut si,
            )
            .unwrap();
            let text: String = child(sig, DSIG_NS, "SignatureValue")
                .text()
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            let value = base64::engine::general_purpose::STANDARD
                .decode(text)
                .unwrap();
            (content, si, value)
        })
        .collect();
    let (_, cert) = x509_parser::parse_x509_certificate(CERT_DER).unwrap();
    let pk = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &cert.public_key().subject_public_key.data,
    )
    .unwrap();

    let floor = || {
        for (content, si, sig) in &inputs {
            black_box(ring::digest::digest(
                &ring::digest::SHA256,
                black_box(content),
            ));
            pk.verify_sig(black_box(si), sig).unwrap();
        }
    };
    let full = || {
        let doc = Document::parse(black_box(response), &Limits::default()).unwrap();
        let r = verify(doc.root(), &keys, &policy).unwrap();
        let a = verify(child(doc.root(), ASSERTION_NS, "Assertion"), &keys, &policy).unwrap();
        black_box((r.element().node_id(), a.element().node_id()));
    };
    if let Some((side, calls)) = only {
        match side {
            "floor" => (0..calls).for_each(|_| floor()),
            "full" => (0..calls).for_each(|_| full()),
            // One stage of the full side, for a profiler.
            "parse" => (0..calls).for_each(|_| {
                let d = Document::parse(black_box(response), &Limits::default()).unwrap();
                black_box(d.root().node_id());
            }),
            "c14n" => {
                let mut buf = Vec::with_capacity(response.len() * 2);
                (0..calls).for_each(|_| {
                    for el in [doc.root(), assertion] {
                        let sig = child(el, DSIG_NS, "Signature");
                        buf.clear();
                        let opts = Options {
                            exclude: Some(sig.node_id()),
                            ..Options::default()
                        };
                        canonicalize(el, &opts, &mut buf).unwrap();
                        buf.clear();
                        let si = child(sig, DSIG_NS, "SignedInfo");
                        canonicalize(si, &Options::default(), &mut buf).unwrap();
                    }
                    black_box(&buf);
                })
            }
            _ => panic!("RATIO_ONLY: floor, full, parse or c14n"),
        }
        return;
    }
    // Warm up.
    for _ in 0..BATCH {
        floor();
        full();
    }
    let mut floors = Vec::with_capacity(ROUNDS);
    let mut fulls = Vec::with_capacity(ROUNDS);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        (0..BATCH).for_each(|_| floor());
        let f = t.elapsed().as_secs_f64() * 1e6 / BATCH as f64;
        let t = Instant::now();
        (0..BATCH).for_each(|_| full());
        let v = t.elapsed().as_secs_f64() * 1e6 / BATCH as f64;
        floors.push(f);
        fulls.push(v);
        ratios.push(v / f);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() / 10], v[v.len() * 9 / 10])
    };
    let (f, _, _) = median(&mut floors);
    let (v, _, _) = median(&mut fulls);
    let (r, r10, r90) = median(&mut ratios);
    println!("{label}");
    println!("floor (2x SHA-256 + 2x RSA-2048 verify, aws-lc-rs parsed key): median {f:.1} us");
    println!("full  (parse + c14n + verify both):      median {v:.1} us");
    println!(
        "ratio full/floor: median {r:.2} (p10 {r10:.2}, p90 {r90:.2}) over {ROUNDS} interleaved rounds"
    );
}
