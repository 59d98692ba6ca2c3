//! `docs/identity.schema.json` matches what we emit: every claim of a fully populated token
//! is declared (objects are closed with `additionalProperties: false`), every declared claim
//! is emitted, and required claims are present.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::{
    KeySet, KeyState, Mapping, Method, SPID_L2, SigningKey, Source, TokenParams, normalize,
};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use serde_json::Value;

const SCHEMA: &str = include_str!("../../../docs/identity.schema.json");

/// Same key sets at every object level, and required keys present.
fn same_shape(schema: &Value, value: &Value, path: &str) {
    let props = schema["properties"].as_object().unwrap();
    let obj = value.as_object().unwrap();
    assert_eq!(schema["additionalProperties"], false, "{path} not closed");
    let mut declared: Vec<&String> = props.keys().collect();
    let mut emitted: Vec<&String> = obj.keys().collect();
    declared.sort();
    emitted.sort();
    assert_eq!(declared, emitted, "at {path}");
    for r in schema["required"].as_array().into_iter().flatten() {
        assert!(obj.contains_key(r.as_str().unwrap()), "{path}.{r} missing");
    }
    for (k, v) in obj {
        if v.is_object() {
            same_shape(&props[k], v, &format!("{path}.{k}"));
        }
    }
}

#[test]
fn full_token_claims_match_schema() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let attrs: Vec<(String, Vec<String>)> = [
        ("fiscalNumber", "TINIT-RSSMRA85T10A562S"),
        ("name", "Mario"),
        ("familyName", "Rossi"),
        ("dateOfBirth", "1985-12-10"),
        ("email", "m@example.it"),
        ("mobilePhone", "+39333"),
        ("address", "Via Roma 1"),
        ("companyName", "ACME"),
        ("ivaCode", "VATIT-12345678901"),
        ("companyFiscalNumber", "12345678901"),
        ("spid:Purpose", "PG"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), vec![(*v).to_owned()]))
    .collect();
    let source = Source {
        method: Method::Spid,
        idp: "i",
        level: SPID_L2,
        auth_time: 1,
        session_id: "s",
    };
    let principal = normalize(attrs, &source, &Mapping::default()).unwrap();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let mut ks = KeySet::new();
    ks.insert(
        SigningKey::ed25519_from_pkcs8("k", pkcs8.as_ref()).unwrap(),
        KeyState::Active,
    )
    .unwrap();
    let params = TokenParams {
        issuer: "iss",
        audience: "aud",
        ttl: 60,
    };
    let token = ks
        .sign(&principal, &params, 100, &SystemRandom::new())
        .unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    same_shape(&schema, &claims, "$");
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 22);
    let loa = &schema["properties"]["auth"]["properties"]["loa"]["enum"];
    assert_eq!(loa, &serde_json::json!(["low", "substantial", "high"]));
}
