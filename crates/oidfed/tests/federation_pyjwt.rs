//! Trust chains built by an independent implementation (PyJWT + cryptography, generated at
//! test time by `tests/py/federation.py`), resolved here: the good chain with the metadata
//! policy example of OpenID Federation 1.0, and one scenario per attack class.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::OnceLock;

use jose::Jwks;
use oidfed::trust_mark::{self, Options};
use oidfed::{Error, ResolverConfig, TrustAnchor, TrustChain};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let out = common::run_py("federation.py", &[&NOW.to_string()]);
        serde_json::from_str(&out).expect("federation.py output")
    })
}

fn config(s: &Value) -> ResolverConfig {
    let anchor = TrustAnchor {
        entity_id: s["anchor"]["entity_id"].as_str().unwrap().to_owned(),
        jwks: Jwks::from_value(&s["anchor"]["jwks"]).unwrap(),
    };
    ResolverConfig::new(vec![anchor])
}

fn run(name: &str) -> (Result<TrustChain, Error>, usize, String) {
    let s = &vectors()["scenarios"][name];
    assert!(s.is_object(), "no scenario {name}");
    let docs: HashMap<String, String> = serde_json::from_value(s["docs"].clone()).unwrap();
    let (r, asked) = common::resolve(&config(s), s["subject"].as_str().unwrap(), NOW, &docs);
    (r, asked, s["expect"].as_str().unwrap().to_owned())
}

/// The scenario must be refused with exactly its expected code.
fn refused(name: &str) {
    let (r, asked, expect) = run(name);
    match r {
        Ok(_) => panic!("{name}: chain accepted, expected {expect}"),
        Err(e) => assert_eq!(e.code(), expect, "{name}: {e}"),
    }
    assert!(
        asked <= 5,
        "{name}: {asked} fetches for a 3-entity federation"
    );
}

#[test]
fn every_generated_scenario_has_a_test() {
    let names: Vec<&str> = vectors()["scenarios"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let tested = [
        "ok",
        "wrong_trust_anchor",
        "expired_statement",
        "bad_hop_signature",
        "intermediate_key_not_vouched",
        "sub_mismatch",
        "unknown_kid",
        "policy_violation",
        "policy_conflict",
        "policy_crit",
        "max_path_length",
        "naming_constraints",
        "alg_none",
        "hs256_public_key_as_secret",
        "missing_kid",
        "wrong_typ",
        "duplicate_alg_member",
        "reference_implementation_shapes",
    ];
    let mut names_sorted = names.clone();
    names_sorted.sort_unstable();
    let mut tested_sorted = tested.to_vec();
    tested_sorted.sort_unstable();
    assert_eq!(names_sorted, tested_sorted);
}

#[test]
fn three_hop_chain_resolves_with_the_specification_policy_example() {
    let (r, asked, _) = run("ok");
    let chain = r.expect("chain");
    assert_eq!(
        asked, 5,
        "RP config, INT config, INT->RP, TA config, TA->INT"
    );
    assert_eq!(chain.subject(), "https://rp.example.org");
    assert_eq!(chain.anchor(), "https://ta.example.org");
    assert_eq!(chain.statements().len(), 4);
    // Every document was issued with exp = NOW + 3600.
    assert_eq!(chain.exp(), NOW + 3600);
    // OpenID Federation 1.0, "Metadata Policy Example": the resulting RP metadata.
    let expected = json!({
        "redirect_uris": ["https://rp.example.org/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "subject_type": "pairwise",
        "sector_identifier_uri": "https://org.example.org/sector-ids.json",
        "policy_uri": "https://org.example.org/policy.html",
        "contacts": [
            "rp_admins@rp.example.org",
            "helpdesk@federation.example.org",
            "helpdesk@org.example.org"
        ]
    });
    assert_eq!(
        Value::Object(chain.metadata_of("openid_relying_party").unwrap().clone()),
        expected
    );
    // Keys vouched by the chain: the anchor's from configuration, the others from statements.
    assert!(
        chain
            .keys_of("https://int.example.org")
            .unwrap()
            .get("int-1")
            .is_some()
    );
    assert!(
        chain
            .keys_of("https://rp.example.org")
            .unwrap()
            .get("rp-1")
            .is_some()
    );
}

#[test]
fn chain_expiry_is_the_minimum_exp() {
    // Same federation resolved at a time close to expiry: still valid, exp unchanged.
    let s = &vectors()["scenarios"]["ok"];
    let docs: HashMap<String, String> = serde_json::from_value(s["docs"].clone()).unwrap();
    let cfg = config(s);
    let (r, _) = common::resolve(&cfg, "https://rp.example.org", NOW + 3600 + 59, &docs);
    let chain = r.unwrap();
    assert_eq!(chain.exp(), NOW + 3600);
    assert!(chain.is_valid_at(NOW + 3600 + 59, 60));
    assert!(!chain.is_valid_at(NOW + 3600 + 60, 60));
    let (r, _) = common::resolve(&cfg, "https://rp.example.org", NOW + 3600 + 60, &docs);
    assert_eq!(r.unwrap_err().code(), "oidfed.expired");
}

#[test]
fn wrong_trust_anchor_refused() {
    refused("wrong_trust_anchor");
}

#[test]
fn expired_statement_refused() {
    refused("expired_statement");
}

#[test]
fn broken_chain_bad_hop_signature_refused() {
    refused("bad_hop_signature");
}

#[test]
fn broken_chain_intermediate_key_not_vouched_by_superior_refused() {
    refused("intermediate_key_not_vouched");
}

#[test]
fn broken_chain_sub_mismatch_refused() {
    refused("sub_mismatch");
}

#[test]
fn unknown_kid_refused() {
    refused("unknown_kid");
}

#[test]
fn metadata_policy_violation_refused() {
    refused("policy_violation");
}

#[test]
fn metadata_policy_conflict_between_superiors_refused() {
    refused("policy_conflict");
}

#[test]
fn unknown_critical_policy_operator_refused() {
    refused("policy_crit");
}

#[test]
fn max_path_length_constraint_enforced() {
    refused("max_path_length");
}

#[test]
fn naming_constraints_enforced() {
    refused("naming_constraints");
}

#[test]
fn alg_none_refused() {
    refused("alg_none");
}

#[test]
fn hs256_with_the_public_key_as_secret_refused() {
    refused("hs256_public_key_as_secret");
}

#[test]
fn missing_kid_refused() {
    refused("missing_kid");
}

#[test]
fn wrong_typ_refused() {
    refused("wrong_typ");
}

#[test]
fn duplicate_header_member_refused() {
    refused("duplicate_alg_member");
}

fn ok_chain() -> TrustChain {
    run("ok").0.expect("ok chain")
}

#[test]
fn trust_marks_listed_by_the_subject_verify() {
    let chain = ok_chain();
    let marks = trust_mark::verify_listed(&chain, NOW, &Options::default());
    assert_eq!(marks.len(), 2);
    for m in &marks {
        let m = m.as_ref().expect("listed trust mark");
        assert_eq!(m.sub, "https://rp.example.org");
    }
}

#[test]
fn trust_mark_cases() {
    let chain = ok_chain();
    let cases = vectors()["trust_marks"].as_object().unwrap();
    assert_eq!(cases.len(), 10);
    for (name, case) in cases {
        let token = case[0].as_str().unwrap();
        let expect = case[1].as_str().unwrap();
        let got = trust_mark::verify(token, &chain, None, NOW, &Options::default());
        match (got, expect) {
            (Ok(_), "ok") => {}
            (Ok(_), e) => panic!("trust mark {name} accepted, expected {e}"),
            (Err(e), "ok") => panic!("trust mark {name} refused: {e}"),
            (Err(e), want) => assert_eq!(e.code(), want, "trust mark {name}: {e}"),
        }
    }
}

#[test]
fn unregistered_trust_mark_refused() {
    let chain = ok_chain();
    let token = vectors()["trust_marks"]["unregistered_type"][0]
        .as_str()
        .unwrap();
    let e = trust_mark::verify(token, &chain, None, NOW, &Options::default()).unwrap_err();
    assert_eq!(e.code(), "oidfed.trust_mark_issuer");
}

#[test]
fn reference_implementation_statement_shapes_resolve() {
    let (r, asked, _) = run("reference_implementation_shapes");
    let chain = r.expect("chain");
    assert_eq!(asked, 5);
    // The marks copied into the subordinate statements are not the subject's marks.
    assert_eq!(chain.trust_marks().len(), 2);
}

#[test]
fn trust_mark_without_exp_only_when_allowed() {
    let chain = ok_chain();
    let token = vectors()["trust_marks"]["without_exp"][0].as_str().unwrap();
    let e = trust_mark::verify(token, &chain, None, NOW, &Options::default()).unwrap_err();
    assert_eq!(e.to_string(), "trust mark refused: exp missing");
    let lenient = Options {
        accept_without_exp: true,
        ..Options::default()
    };
    let m = trust_mark::verify(token, &chain, None, NOW, &lenient).unwrap();
    assert_eq!(m.exp, None);
    assert_eq!(m.iss, "https://ta.example.org");
}

#[test]
fn a_trust_mark_of_an_accepted_type_is_required() {
    let chain = ok_chain();
    let opts = Options::default();
    let rp_type = "https://registry.example.org/openid_relying_party/public/";
    let m = trust_mark::require(&chain, &[rp_type], NOW, &opts).unwrap();
    assert_eq!(m.trust_mark_type, rp_type);
    assert_eq!(m.iss, "https://ta.example.org");
    let e = trust_mark::require(&chain, &["https://registry.example.org/other/"], NOW, &opts)
        .unwrap_err();
    assert_eq!(e.code(), "oidfed.trust_mark");
    // Listed, but expired by then.
    let e = trust_mark::require(&chain, &[rp_type], NOW + 86_400 + 60, &opts).unwrap_err();
    assert_eq!(e.to_string(), "trust mark refused: expired");
}
