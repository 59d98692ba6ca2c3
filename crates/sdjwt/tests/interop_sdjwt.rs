//! SD-JWT VC presentations made at test time by independent libraries (the OpenWallet
//! Foundation's `sd-jwt` reference implementation for issuer and holder, jwcrypto for every
//! hand-assembled token; `tests/py/wallet.py`), verified here: the good presentations, and
//! one scenario per attack class, each refused with its own code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use jose::Jwks;
use sdjwt::status::{self, StatusLimits, StatusRef};
use sdjwt::{Error, Expect, IssuerKey, Limits, Pid, Presentation, Verified};
use serde_json::Value;

const NOW: u64 = 1_800_000_000;

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let out = common::run_py("wallet.py", &[&NOW.to_string()]);
        serde_json::from_str(&out).expect("wallet.py output")
    })
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

fn issuer_keys() -> Jwks {
    Jwks::from_value(&vectors()["issuer_jwks"]).unwrap()
}

/// Verifies the scenario's presentation as the broker will: parse, verify with the issuer
/// key set, then the status list (the good one) when the credential has a reference.
fn verify(presentation: &str) -> Result<Verified, Error> {
    let v = vectors();
    let (aud, nonce, iss, vct) = (s(v, "aud"), s(v, "nonce"), s(v, "iss"), s(v, "vct"));
    let keys = issuer_keys();
    let expect = Expect {
        now: NOW,
        aud: &aud,
        nonce: &nonce,
        vct: &[vct.as_str()],
        iss: Some(&iss),
        skew: 60,
        kb_max_age: 300,
        require_status: true,
    };
    let p = Presentation::parse(presentation, &Limits::default())?;
    assert!(p.issuer_unverified().is_some());
    let verified = p.verify(IssuerKey::Set(&keys), &expect)?;
    if let Some(r) = &verified.status {
        let list = s(&v["status_lists"]["ok"], "token");
        status::check(
            &list,
            IssuerKey::Set(&keys),
            r,
            NOW,
            &StatusLimits::default(),
        )?;
    }
    Ok(verified)
}

fn outcome(name: &str) -> (String, String) {
    let sc = &vectors()["scenarios"][name];
    assert!(sc.is_object(), "no scenario {name}");
    let got = match verify(sc["presentation"].as_str().unwrap()) {
        Ok(_) => "ok".to_owned(),
        Err(e) => e.code().to_owned(),
    };
    (got, s(sc, "expect"))
}

#[test]
fn every_scenario_answers_its_expected_code() {
    let names: Vec<String> = vectors()["scenarios"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(names.len() >= 35, "{names:?}");
    let mut wrong = Vec::new();
    for n in &names {
        let (got, want) = outcome(n);
        if got != want {
            wrong.push(format!("{n}: got {got}, expected {want}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn named(name: &str) {
    let (got, want) = outcome(name);
    assert_eq!(got, want, "{name}");
    assert_ne!(want, "ok", "{name} is an attack scenario");
}

#[test]
fn wrong_nonce_refused() {
    named("wrong_nonce");
}

#[test]
fn wrong_aud_refused() {
    named("wrong_aud");
}

#[test]
fn tampered_disclosure_refused() {
    named("tampered_disclosure");
    named("foreign_disclosure");
    named("duplicate_disclosure");
}

#[test]
fn missing_or_unbound_kb_jwt_refused() {
    named("missing_kb");
    named("kb_other_holder_key");
    named("unbound_no_cnf");
    named("kb_stale");
    named("kb_future");
    named("kb_wrong_typ");
}

#[test]
fn wrong_sd_hash_refused() {
    named("kb_sd_hash_of_other_disclosures");
}

#[test]
fn revoked_or_suspended_status_refused() {
    named("revoked");
    named("suspended");
    named("status_other_value");
    named("status_index_beyond_list");
    named("no_status");
}

#[test]
fn expired_or_not_yet_valid_credential_refused() {
    named("expired");
    named("not_yet_valid");
    named("no_exp");
}

#[test]
fn algorithm_confusion_refused() {
    named("issuer_alg_none");
    named("issuer_hs256_public_key_as_secret");
    named("kb_alg_none");
    named("wrong_issuer_typ");
}

#[test]
fn untrusted_or_unexpected_issuer_refused() {
    named("forged_issuer_signature");
    named("other_issuer");
    named("issuer_x5c_header");
    named("vct_not_accepted");
}

#[test]
fn digest_and_disclosure_structure_attacks_refused() {
    named("claim_collision");
    named("exp_selectively_disclosable");
    named("object_disclosure_in_array");
    named("duplicate_digest");
    named("sd_alg_sha512");
}

#[test]
fn oversized_presentations_refused_before_parsing() {
    named("oversized");
    named("too_many_disclosures");
}

#[test]
fn full_presentation_discloses_the_pid() {
    let p = s(&vectors()["scenarios"]["ok"], "presentation");
    let v = verify(&p).unwrap();
    assert_eq!(v.issuer, "https://pid.example.it");
    assert_eq!(v.vct, "urn:eudi:pid:it:1");
    assert_eq!(
        v.status,
        Some(StatusRef {
            idx: 5,
            uri: "https://pid.example.it/status/1".into()
        })
    );
    let pid = Pid::from_claims(&v.claims).unwrap();
    assert_eq!(pid.given_name, "Mario");
    assert_eq!(pid.family_name, "Rossi");
    assert_eq!(pid.birth_date, "1980-01-10");
    assert_eq!(pid.tax_id_code.as_deref(), Some("TINIT-RSSMRA80A10H501U"));
    assert_eq!(pid.birth_place.as_deref(), Some("Roma"));
    assert_eq!(pid.nationalities, ["IT", "FR"]);
    // A recursive disclosure inside a disclosed object, beside its plain members.
    assert_eq!(v.claims["address"]["street_address"], "Via Roma 1");
    assert_eq!(v.claims["address"]["locality"], "Roma");
    // No SD-JWT machinery is left in the output.
    let text = serde_json::to_string(&v.claims).unwrap();
    assert!(!text.contains("_sd") && !text.contains("\"...\""), "{text}");
    // The holder key is the signed cnf.jwk; the digest covers the presentation as received.
    let holder = jose::Jwk::from_value_standalone(&vectors()["holder_jwk"]).unwrap();
    assert_eq!(v.holder, holder.thumbprint());
    let d = ring::digest::digest(&ring::digest::SHA256, p.as_bytes());
    use base64::Engine as _;
    assert_eq!(
        v.digest,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
    );
}

#[test]
fn partial_presentation_discloses_only_what_was_chosen() {
    let p = s(&vectors()["scenarios"]["ok_partial"], "presentation");
    let v = verify(&p).unwrap();
    let pid = Pid::from_claims(&v.claims).unwrap();
    assert_eq!(pid.birth_place, None);
    assert_eq!(pid.nationalities, ["FR"]);
    assert!(!v.claims.contains_key("address"));
}

#[test]
fn a_single_trusted_key_verifies_too() {
    let keys = issuer_keys();
    let key = &keys.keys()[0];
    let v = vectors();
    let p = Presentation::parse(
        v["scenarios"]["ok"]["presentation"].as_str().unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let expect = Expect {
        now: NOW,
        aud: v["aud"].as_str().unwrap(),
        nonce: v["nonce"].as_str().unwrap(),
        vct: &["urn:eudi:pid:it:1"],
        iss: None,
        skew: 60,
        kb_max_age: 300,
        require_status: true,
    };
    p.verify(IssuerKey::Key(key), &expect).unwrap();
}

#[test]
fn status_list_tokens_checked() {
    let keys = issuer_keys();
    let r = StatusRef {
        idx: 5,
        uri: s(vectors(), "status_uri"),
    };
    let mut wrong = Vec::new();
    for (name, sc) in vectors()["status_lists"].as_object().unwrap() {
        let got = match status::check(
            sc["token"].as_str().unwrap(),
            IssuerKey::Set(&keys),
            &r,
            NOW,
            &StatusLimits::default(),
        ) {
            Ok(()) => "ok".to_owned(),
            Err(e) => e.code().to_owned(),
        };
        if got != s(sc, "expect") {
            wrong.push(format!("{name}: got {got}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:?}");
}

#[test]
fn status_bit_layout_matches_the_independent_encoder() {
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s(vectors(), "raw_list"))
        .unwrap();
    let got: Vec<u8> = (0..64)
        .map(|i| status::value_at(&raw, 2, i).unwrap())
        .collect();
    let mut want = vec![0u8; 64];
    want[6] = 1;
    want[7] = 2;
    want[8] = 3;
    assert_eq!(got, want);
    assert_eq!(status::value_at(&raw, 2, 64), None);
    assert_eq!(status::value_at(&raw, 8, u64::MAX), None);
}
