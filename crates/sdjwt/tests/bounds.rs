//! Hostile input has a price: sizes and counts are refused before parsing, nesting across
//! disclosures is bounded, and the work of a verification is counted. Error codes are
//! stable, distinct and prefixed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{Jwks, Signer};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use sdjwt::{Error, Expect, IssuerKey, Limits, Presentation, disclose};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn signer() -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), Some("i1"), &rng).unwrap()
}

fn issuer_jwt(s: &Signer, claims: Value) -> String {
    s.sign(
        "dc+sd-jwt",
        claims.as_object().unwrap(),
        &SystemRandom::new(),
    )
    .unwrap()
}

fn disclosure(arr: Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&arr).unwrap())
}

fn expect<'a>() -> Expect<'a> {
    Expect {
        now: NOW,
        aud: "aud",
        nonce: "nonce",
        vct: &["urn:eudi:pid:it:1"],
        iss: None,
        skew: 60,
        kb_max_age: 300,
        require_status: false,
    }
}

fn code(r: Result<impl Sized, Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn size_and_count_refused_before_any_decoding() {
    let l = Limits::default();
    // Not base64 anywhere: a refusal that needed decoding would say so instead.
    let huge = "!".repeat(l.max_bytes + 1);
    assert_eq!(code(Presentation::parse(&huge, &l)), "sdjwt.too_large");
    let many = format!("!{}", "~!".repeat(l.max_disclosures + 2));
    assert_eq!(
        code(Presentation::parse(&many, &l)),
        "sdjwt.too_many_disclosures"
    );
    assert_eq!(code(Presentation::parse("no-tilde", &l)), "sdjwt.malformed");
    assert_eq!(code(Presentation::parse("~", &l)), "sdjwt.malformed");
}

#[test]
fn empty_or_oversized_disclosure_refused() {
    let s = signer();
    let jwt = issuer_jwt(
        &s,
        json!({"iss": "https://i.example", "vct": "urn:eudi:pid:it:1"}),
    );
    let l = Limits::default();
    assert_eq!(
        code(Presentation::parse(&format!("{jwt}~~"), &l)),
        "sdjwt.malformed"
    );
    let big = "A".repeat(l.max_disclosure_bytes + 4);
    assert_eq!(
        code(Presentation::parse(&format!("{jwt}~{big}~"), &l)),
        "sdjwt.too_large"
    );
    for (bad, want) in [
        ("!!!!", "sdjwt.disclosure"),
        (&disclosure(json!({"a": 1})) as &str, "sdjwt.disclosure"),
        (&disclosure(json!(["salt", "a", 1, 2])), "sdjwt.disclosure"),
        (&disclosure(json!([1, "a", 1])), "sdjwt.disclosure"),
        (&disclosure(json!(["salt", 7, 1])), "sdjwt.disclosure"),
        (
            &disclosure(json!(["salt", "_sd", 1])),
            "sdjwt.reserved_name",
        ),
        (
            &disclosure(json!(["salt", "...", 1])),
            "sdjwt.reserved_name",
        ),
        (
            &URL_SAFE_NO_PAD.encode(r#"["s","a",{"x":1,"x":2}]"#),
            "sdjwt.disclosure",
        ),
    ] {
        assert_eq!(
            code(Presentation::parse(&format!("{jwt}~{bad}~"), &l)),
            want,
            "{bad}"
        );
    }
}

#[test]
fn nesting_across_disclosures_is_bounded() {
    let s = signer();
    let keys = Jwks::from_keys(vec![s.jwk().clone()]).unwrap();
    let l = Limits::default();
    // Each disclosure's value holds the digest of the next: depth grows by two per link
    // while every single disclosure stays shallow.
    let mut discs = Vec::new();
    let mut inner = json!("leaf");
    for _ in 0..=l.max_depth {
        let d = disclosure(json!(["salt", "a", inner]));
        inner = json!({"_sd": [disclose::digest(&d)]});
        discs.push(d);
    }
    let mut claims = inner.as_object().unwrap().clone();
    claims.insert("iss".into(), json!("https://i.example"));
    let jwt = issuer_jwt(&s, Value::Object(claims));
    let p = format!("{jwt}~{}~", discs.join("~"));
    let parsed = Presentation::parse(&p, &l).unwrap();
    assert_eq!(
        code(parsed.verify(IssuerKey::Set(&keys), &expect())),
        "sdjwt.depth"
    );
}

#[test]
fn verification_work_is_linear_in_the_disclosures() {
    // The independent wallet's good presentation: one digest per disclosure, plus the
    // sd_hash and the audit digest; one visit per JSON node of the disclosed credential.
    let v: Value = serde_json::from_str(&common::run_py("wallet.py", &[&NOW.to_string()])).unwrap();
    let p = v["scenarios"]["ok"]["presentation"].as_str().unwrap();
    let keys = Jwks::from_value(&v["issuer_jwks"]).unwrap();
    let n = p.matches('~').count() - 1;
    let e = Expect {
        aud: v["aud"].as_str().unwrap(),
        nonce: v["nonce"].as_str().unwrap(),
        ..expect()
    };
    let verified = Presentation::parse(p, &Limits::default())
        .unwrap()
        .verify(IssuerKey::Set(&keys), &e)
        .unwrap();
    assert_eq!(verified.work.digests, n + 2);
    let text = serde_json::to_string(&verified.claims).unwrap();
    assert!(
        verified.work.nodes <= text.len(),
        "{} nodes for {} bytes",
        verified.work.nodes,
        text.len()
    );
}

#[test]
fn every_error_code_is_distinct_and_prefixed() {
    let samples = [
        Error::TooLarge {
            what: "x",
            len: 0,
            max: 0,
        },
        Error::TooManyDisclosures { max: 0 },
        Error::Malformed,
        Error::Disclosure { reason: "x" },
        Error::DuplicateDisclosure,
        Error::DuplicateDigest,
        Error::UnreferencedDisclosure,
        Error::ClaimCollision { name: "x".into() },
        Error::DisclosureKind,
        Error::ReservedName { name: "x" },
        Error::SdAlg,
        Error::Depth,
        Error::KbMissing,
        Error::Cnf { reason: "x" },
        Error::Claim {
            what: "x",
            claim: "y",
        },
        Error::Nonce,
        Error::Audience,
        Error::KbIat,
        Error::SdHash,
        Error::Vct,
        Error::Issuer,
        Error::Expired,
        Error::NotYetValid,
        Error::StatusMissing,
        Error::StatusRef { reason: "x" },
        Error::StatusList { reason: "x" },
        Error::StatusListExpired,
        Error::StatusIndex,
        Error::Revoked,
        Error::Suspended,
        Error::StatusOther { value: 3 },
        Error::Pid {
            claim: "x",
            reason: "y",
        },
    ];
    let mut codes: Vec<&str> = samples.iter().map(Error::code).collect();
    assert!(codes.iter().all(|c| c.starts_with("sdjwt.")), "{codes:?}");
    assert!(samples.iter().all(|e| !e.to_string().is_empty()));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), samples.len());
    let wrapped = Error::Jose {
        what: "KB-JWT",
        cause: jose::Error::Signature,
    };
    assert_eq!(wrapped.code(), "jose.signature");
    assert!(wrapped.to_string().contains("KB-JWT"));
}
