//! The pure OIDC relying-party core: what an OP's resolved metadata must hold before a
//! login may use it, and the claim mapping. (The flow itself, with a test OP over HTTP, is
//! in crates/broker/tests/oidc_rp.rs.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fed::{Fed, TA};
use jose::{Alg, Jwks};
use oidfed::oidc::{Provider, claims_to_attributes, pkce_challenge};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const OP: &str = "https://op.example.it";

fn provider_with(op_md: Value) -> Result<Provider, String> {
    let mut f = Fed::new(NOW);
    f.config(TA, &[], json!({"federation_entity": {}}));
    f.statement(TA, OP, None);
    f.config(
        OP,
        &[TA],
        json!({"federation_entity": {}, "openid_provider": op_md}),
    );
    let cfg = f.config_for(&[TA]);
    let (chain, _) = common::resolve(&cfg, OP, NOW, &f.docs);
    Provider::from_chain(&chain.unwrap(), false).map_err(|e| e.to_string())
}

fn good(jwks: &Jwks) -> Value {
    json!({
        "issuer": OP,
        "authorization_endpoint": format!("{OP}/authorization"),
        "token_endpoint": format!("{OP}/token"),
        "userinfo_endpoint": format!("{OP}/userinfo"),
        "jwks": jwks.to_value(),
        "id_token_signing_alg_values_supported": ["RS256", "HS256", "none", "ES256"],
    })
}

/// A change to an OP's metadata.
type Change = fn(&mut Value);

fn op_keys() -> Jwks {
    Fed::new(NOW).jwks("https://op-oidc-keys.example.it")
}

#[test]
fn a_complete_provider_keeps_only_allowed_algorithms() {
    let p = provider_with(good(&op_keys())).unwrap();
    assert_eq!(p.issuer, OP);
    // `HS256` and `none` declared by the OP are simply never accepted.
    assert_eq!(p.algs, [Alg::Rs256, Alg::Es256]);
    assert!(p.revocation_endpoint.is_none());
}

#[test]
fn provider_metadata_that_cannot_serve_a_login_is_refused() {
    let keys = op_keys();
    let cases: [(&str, Change); 6] = [
        ("issuer of another entity", |m| {
            m["issuer"] = json!("https://other-op.example.it")
        }),
        ("keys only by reference", |m| {
            m.as_object_mut().unwrap().remove("jwks");
            m["jwks_uri"] = json!(format!("{OP}/jwks"));
        }),
        ("no token endpoint", |m| {
            m.as_object_mut().unwrap().remove("token_endpoint");
        }),
        ("http endpoint", |m| {
            m["userinfo_endpoint"] = json!("http://op.example.it/userinfo")
        }),
        ("only refused algorithms", |m| {
            m["id_token_signing_alg_values_supported"] = json!(["HS256", "none"]);
        }),
        ("symmetric key", |m| {
            m["jwks"] = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]});
        }),
    ];
    for (name, change) in cases {
        let mut md = good(&keys);
        change(&mut md);
        let got = provider_with(md);
        assert!(got.is_err(), "{name}: accepted");
    }
}

#[test]
fn claims_map_onto_the_saml_attribute_names() {
    let c = json!({
        "https://attributes.eid.gov.it/fiscal_number": "TINIT-RSSMRA85T10A562S",
        "given_name": "Mario", "family_name": "Rossi", "email": "m@example.org",
        "birthdate": "1985-12-10", "sub": "pairwise", "address": {"street_address": "x"},
    });
    let mut a = claims_to_attributes(c.as_object().unwrap());
    a.sort();
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["dateOfBirth", "email", "familyName", "fiscalNumber", "name"]
    );
}

#[test]
fn pkce_s256_matches_rfc7636_appendix_b() {
    assert_eq!(
        pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}
