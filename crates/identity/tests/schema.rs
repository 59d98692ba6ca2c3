//! `docs/identity.schema.json` matches what we emit: every claim of a fully populated token
//! is declared (objects are closed with `additionalProperties: false`), every declared claim
//! is emitted, and required claims are present.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::{
    KeySet, KeyState, Mapping, Method, SPID_L2, SigningKey, Source, TokenParams, normalize,
    represent,
};
use ring::rand::SystemRandom;
use ring::signature::Ed25519KeyPair;
use serde_json::Value;

const SCHEMA: &str = include_str!("../../../docs/identity.schema.json");

/// Claims only an acting session's token has.
const ACTING_ONLY: [&str; 2] = ["act", "representation"];

/// Same key sets at every object level (except the top-level claims named in `absent`,
/// declared but not emitted), and required keys present.
fn same_shape_except(schema: &Value, value: &Value, path: &str, absent: &[&str]) {
    let props = schema["properties"].as_object().unwrap();
    let obj = value.as_object().unwrap();
    assert_eq!(schema["additionalProperties"], false, "{path} not closed");
    for a in absent {
        assert!(
            props.contains_key(*a) && !obj.contains_key(*a),
            "{path}.{a}"
        );
    }
    let mut declared: Vec<&String> = props
        .keys()
        .filter(|k| !absent.contains(&k.as_str()))
        .collect();
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

fn same_shape(schema: &Value, value: &Value, path: &str) {
    same_shape_except(schema, value, path, &[]);
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
    same_shape_except(&schema, &claims, "$", &ACTING_ONLY);
    let jti = claims["jti"].as_str().unwrap();
    assert_eq!(jti.len(), 22);
    let loa = &schema["properties"]["auth"]["properties"]["loa"]["enum"];
    assert_eq!(loa, &serde_json::json!(["low", "substantial", "high"]));
}

/// 2026-05-28: the child of the parental record below is 11.
const NOW: u64 = 1_780_000_000;

#[test]
fn acting_token_claims_match_schema() {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let rng = SystemRandom::new();
    let attrs: Vec<(String, Vec<String>)> = [
        ("fiscalNumber", "TINIT-BNCGNN80A01F205W"),
        ("name", "Giovanni"),
        ("familyName", "Bianchi"),
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
    let delegate = normalize(attrs, &source, &Mapping::default()).unwrap();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let portal = jose::Signer::es256_from_pkcs8(pkcs8.as_ref(), Some("p"), &rng).unwrap();
    let payload = serde_json::json!({
        "iss": "https://portale.example.it", "iat": NOW - 60, "exp": NOW + 1000,
        "representations": [{
            "ref": "P-1", "type": "parental", "delegate": "TINIT-BNCGNN80A01F205W",
            "represented": {"person": {"fiscal_code": "RSSLCU15A41H501A", "given_name": "Lucia",
                                       "family_name": "Rossi", "birthdate": "2015-01-01"}},
            "services": ["scuola"], "not_before": NOW - 60, "not_after": NOW + 1000
        }]
    });
    let Value::Object(payload) = payload else {
        panic!()
    };
    let file = portal
        .sign(represent::signed_file::TYP, &payload, &rng)
        .unwrap();
    let source = represent::signed_file::SignedFile::new(
        "portale",
        "https://portale.example.it",
        jose::Jwks::from_keys(vec![portal.jwk().clone()]).unwrap(),
        represent::signed_file::FileLimits::default(),
    );
    let reps = represent::Source::verify(&source, file.as_bytes(), NOW).unwrap();
    let acting = represent::act(&delegate, "P-1", "scuola", NOW, &reps).unwrap();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
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
    let token = ks.sign_acting(&acting, &params, NOW, &rng).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    // Everything a represented person can have that a source gives is here; the contact
    // claims and `legal_person` are not stated by a source for a person.
    same_shape_except(
        &schema,
        &claims,
        "$",
        &["email", "phone_number", "address", "legal_person"],
    );
    let kinds = &schema["properties"]["representation"]["properties"]["type"]["enum"];
    let all: Vec<&str> = kinds
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for k in &all {
        assert_eq!(represent::Kind::parse(k).unwrap().as_str(), *k);
    }
    assert_eq!(all.len(), 6);
}
