//! The downstream token: ES256 and EdDSA compact JWS verified with ring directly, JWK
//! coordinates against the public key bytes, and key rotation with overlap.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::{
    Error, KeySet, KeyState, Mapping, Method, Principal, SPID_L2, SigningKey, Source, TokenParams,
    normalize,
};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, UnparsedPublicKey,
};
use serde_json::Value;

const NOW: u64 = 1_700_000_000;
const PARAMS: TokenParams<'static> = TokenParams {
    issuer: "https://varco.example.it",
    audience: "upstream-a",
    ttl: 300,
};

fn es256(kid: &str) -> SigningKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    SigningKey::es256_from_pkcs8(kid, pkcs8.as_ref(), &rng).unwrap()
}

fn ed25519(kid: &str) -> SigningKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    SigningKey::ed25519_from_pkcs8(kid, pkcs8.as_ref()).unwrap()
}

fn principal() -> Principal {
    let attrs = vec![
        (
            "fiscalNumber".to_owned(),
            vec!["TINIT-RSSMRA85T10A562S".to_owned()],
        ),
        ("name".to_owned(), vec!["Mario".to_owned()]),
    ];
    let source = Source {
        method: Method::Spid,
        idp: "https://idp.example.it",
        level: SPID_L2,
        auth_time: NOW - 5,
        session_id: "sid-1",
    };
    normalize(attrs, &source, &Mapping::default()).unwrap()
}

fn b64json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Splits a compact JWS, checks its signature with ring against the JWK from the JWKS
/// (rebuilt into raw public key bytes), and returns (header, claims).
fn verify_with_jwks(token: &str, jwks: &Value) -> (Value, Value) {
    let mut parts = token.split('.');
    let (h, p, s) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    assert!(parts.next().is_none());
    let header = b64json(h);
    let kid = header["kid"].as_str().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .expect("kid in JWKS");
    let sig = URL_SAFE_NO_PAD.decode(s).unwrap();
    let signed = format!("{h}.{p}");
    match header["alg"].as_str().unwrap() {
        "ES256" => {
            assert_eq!(
                (jwk["kty"].as_str(), jwk["crv"].as_str()),
                (Some("EC"), Some("P-256"))
            );
            let mut point = vec![0x04];
            point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
            point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
            assert_eq!(sig.len(), 64);
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .verify(signed.as_bytes(), &sig)
                .expect("ES256 signature verifies");
        }
        "EdDSA" => {
            assert_eq!(
                (jwk["kty"].as_str(), jwk["crv"].as_str()),
                (Some("OKP"), Some("Ed25519"))
            );
            let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
            UnparsedPublicKey::new(&ED25519, &x)
                .verify(signed.as_bytes(), &sig)
                .expect("EdDSA verifies");
        }
        other => panic!("unexpected alg {other}"),
    }
    (header, b64json(p))
}

#[test]
fn es256_token_verifies_with_ring() {
    let mut ks = KeySet::new();
    ks.insert(es256("k1"), KeyState::Active).unwrap();
    let rng = SystemRandom::new();
    let token = ks.sign(&principal(), &PARAMS, NOW, &rng).unwrap();
    let (header, claims) = verify_with_jwks(&token, &ks.jwks(NOW));
    assert_eq!(
        header,
        serde_json::json!({"alg": "ES256", "kid": "k1", "typ": "JWT"})
    );
    assert_eq!(claims["iss"], "https://varco.example.it");
    assert_eq!(claims["aud"], "upstream-a");
    assert_eq!(claims["iat"], NOW);
    assert_eq!(claims["exp"], NOW + 300);
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(claims["jti"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );
    assert_eq!(claims["sub"], "TINIT-RSSMRA85T10A562S");
    assert_eq!(claims["auth"]["loa"], "substantial");
    assert_eq!(claims["auth"]["sid"], "sid-1");

    // A flipped payload byte fails verification.
    let mut parts: Vec<&str> = token.split('.').collect();
    let tampered = parts[1].replacen('e', "f", 1);
    parts[1] = &tampered;
    let bad = parts.join(".");
    let point = ks.active().unwrap().public_key().to_vec();
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    assert!(
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(bad.rsplit_once('.').unwrap().0.as_bytes(), &sig)
            .is_err()
    );

    // jti differs between two tokens.
    let t2 = ks.sign(&principal(), &PARAMS, NOW, &rng).unwrap();
    assert_ne!(verify_with_jwks(&t2, &ks.jwks(NOW)).1["jti"], claims["jti"]);
}

#[test]
fn eddsa_token_verifies_with_ring() {
    let mut ks = KeySet::new();
    ks.insert(ed25519("ed-1"), KeyState::Active).unwrap();
    let token = ks
        .sign(&principal(), &PARAMS, NOW, &SystemRandom::new())
        .unwrap();
    let (header, claims) = verify_with_jwks(&token, &ks.jwks(NOW));
    assert_eq!(
        header,
        serde_json::json!({"alg": "EdDSA", "kid": "ed-1", "typ": "JWT"})
    );
    assert_eq!(claims["given_name"], "Mario");
}

#[test]
fn jwk_coordinates_match_public_key() {
    let ec = es256("ec");
    let pk = ec.public_key();
    assert_eq!((pk.len(), pk[0]), (65, 0x04));
    let jwk = ec.jwk();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
        pk[1..33]
    );
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap(),
        pk[33..65]
    );
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert!(jwk.get("d").is_none());

    let ed = ed25519("ed");
    let jwk = ed.jwk();
    assert_eq!(
        URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap(),
        ed.public_key()
    );
    assert_eq!(ed.public_key().len(), 32);
    assert!(jwk.get("y").is_none() && jwk.get("d").is_none());
    assert!(!format!("{ed:?}").contains("pair"));
}

#[test]
fn rotation_with_overlap() {
    let rng = SystemRandom::new();
    let mut ks = KeySet::new();
    assert_eq!(
        ks.sign(&principal(), &PARAMS, NOW, &rng)
            .unwrap_err()
            .code(),
        "token.active_key"
    );
    ks.insert(es256("old"), KeyState::Active).unwrap();
    assert_eq!(
        ks.insert(es256("x"), KeyState::Active).unwrap_err().code(),
        "token.active_key"
    );
    assert_eq!(
        ks.insert(es256("old"), KeyState::Published).unwrap_err(),
        Error::DuplicateKid { kid: "old".into() }
    );
    let old_token = ks.sign(&principal(), &PARAMS, NOW, &rng).unwrap();

    // 1. New key published, not signing: both in the JWKS, tokens still by "old".
    ks.insert(ed25519("new"), KeyState::Published).unwrap();
    let kids = |ks: &KeySet, now| -> Vec<String> {
        ks.jwks(now)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(kids(&ks, NOW), ["old", "new"]);
    let t = ks.sign(&principal(), &PARAMS, NOW, &rng).unwrap();
    assert_eq!(verify_with_jwks(&t, &ks.jwks(NOW)).0["kid"], "old");

    // 2. Rotate: "new" signs, "old" retires until its last token expires.
    ks.rotate("new", NOW + 10, PARAMS.ttl).unwrap();
    assert_eq!(
        ks.state("old"),
        Some(KeyState::Retiring {
            until: NOW + 10 + 300
        })
    );
    let t = ks.sign(&principal(), &PARAMS, NOW + 10, &rng).unwrap();
    assert_eq!(verify_with_jwks(&t, &ks.jwks(NOW + 10)).0["kid"], "new");
    // The token signed before rotation still verifies against the JWKS during overlap.
    verify_with_jwks(&old_token, &ks.jwks(NOW + 309));

    // 3. After the overlap the old key leaves the JWKS, and prune removes it.
    assert_eq!(kids(&ks, NOW + 310), ["new"]);
    ks.prune(NOW + 310);
    assert_eq!(ks.state("old"), None);

    // Only a published key may become active.
    assert_eq!(
        ks.rotate("new", NOW, 300).unwrap_err().code(),
        "token.not_published"
    );
    assert_eq!(
        ks.rotate("nope", NOW, 300).unwrap_err().code(),
        "token.unknown_kid"
    );
}

#[test]
fn bad_keys_and_kids() {
    let rng = SystemRandom::new();
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    // An Ed25519 key is not a P-256 key.
    assert_eq!(
        SigningKey::es256_from_pkcs8("k", ed.as_ref(), &rng)
            .unwrap_err()
            .code(),
        "token.invalid_key"
    );
    assert_eq!(
        SigningKey::ed25519_from_pkcs8("k", b"junk")
            .unwrap_err()
            .code(),
        "token.invalid_key"
    );
    for kid in ["", "a\"b", "with space", &"k".repeat(65)] {
        assert_eq!(
            SigningKey::ed25519_from_pkcs8(kid, ed.as_ref()).unwrap_err(),
            Error::InvalidKid
        );
    }
}
