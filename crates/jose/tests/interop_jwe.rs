//! JWE ECDH-ES responses made by an independent implementation (jwcrypto, at test time by
//! `tests/py/jwe.py`, in the wallet venv of `scripts/wallet-venv.sh`), decrypted here with
//! one fresh key per scenario; each attack class refused with its code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jose::{EcdhKey, Enc, JweLimits};
use ring::rand::SystemRandom;
use serde_json::Value;

const SCENARIOS: usize = 14;

fn run(keys: &[EcdhKey]) -> Vec<Value> {
    let jwks: Vec<Value> = keys.iter().map(EcdhKey::public_jwk).collect();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/jwe.py");
    let input = serde_json::to_vec(&jwks).unwrap();
    serde_json::from_slice(&testkit::python::run("wallet", &script, &[], Some(&input))).unwrap()
}

#[test]
fn jwcrypto_responses_decrypt_or_are_refused_with_their_code() {
    let rng = SystemRandom::new();
    let keys: Vec<EcdhKey> = (0..SCENARIOS)
        .map(|_| EcdhKey::generate(&rng).unwrap())
        .collect();
    let scenarios = run(&keys);
    let mut wrong = Vec::new();
    for (key, sc) in keys.into_iter().zip(&scenarios) {
        let got = match key.decrypt(
            sc["jwe"].as_str().unwrap(),
            &[Enc::A128Gcm, Enc::A256Gcm],
            &JweLimits::default(),
        ) {
            Ok(plain) => {
                assert_eq!(plain, sc["plaintext"].as_str().unwrap().as_bytes());
                "ok".to_owned()
            }
            Err(e) => e.code().to_owned(),
        };
        if got != sc["expect"].as_str().unwrap() {
            wrong.push(format!(
                "{}: got {got}, expected {}",
                sc["name"], sc["expect"]
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn enc_outside_the_callers_list_refused() {
    let rng = SystemRandom::new();
    let keys: Vec<EcdhKey> = (0..SCENARIOS)
        .map(|_| EcdhKey::generate(&rng).unwrap())
        .collect();
    let scenarios = run(&keys);
    // Scenario 1 is A256GCM: refused when only A128GCM is allowed.
    let key = keys.into_iter().nth(1).unwrap();
    let e = key
        .decrypt(
            scenarios[1]["jwe"].as_str().unwrap(),
            &[Enc::A128Gcm],
            &JweLimits::default(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "jose.jwe_alg");
}

#[test]
fn shapes_and_sizes_refused_before_key_agreement() {
    let rng = SystemRandom::new();
    let limits = JweLimits::default();
    let all = [Enc::A128Gcm, Enc::A256Gcm];
    let code = |t: &str| {
        EcdhKey::generate(&rng)
            .unwrap()
            .decrypt(t, &all, &limits)
            .unwrap_err()
            .code()
    };
    assert_eq!(code(&"A".repeat(limits.max_bytes + 1)), "jose.too_large");
    assert_eq!(code("a.b.c"), "jose.jwe");
    assert_eq!(code("a..b.c.d.e"), "jose.jwe");
    assert_eq!(code("eyJ9.x.AAAA.AAAA.AAAA"), "jose.json");
    assert_eq!(code("!!.."), "jose.jwe");
    let h = |s: &str| base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s);
    assert_eq!(
        code(&format!(
            "{}..AAAA.AAAA.AAAA",
            h(r#"{"alg":"none","enc":"A128GCM"}"#)
        )),
        "jose.alg_none"
    );
    assert_eq!(
        code(&format!(
            "{}..AAAA.AAAA.AAAA",
            h(r#"{"alg":"RSA-OAEP","enc":"A128GCM"}"#)
        )),
        "jose.jwe_alg"
    );
    assert_eq!(
        code(&format!(
            "{}..AAAA.AAAA.AAAA",
            h(r#"{"alg":"ECDH-ES","alg":"ECDH-ES","enc":"A128GCM"}"#)
        )),
        "jose.json_duplicate_key"
    );
    assert_eq!(
        code(&format!(
            "{}..AAAA.AAAA.AAAA",
            h(r#"{"alg":"ECDH-ES","enc":"A128GCM","crit":["x"]}"#)
        )),
        "jose.crit"
    );
    assert_eq!(
        code(&format!(
            "{}..AAAA.AAAA.AAAA",
            h(
                r#"{"alg":"ECDH-ES","enc":"A128GCM","epk":{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}}"#
            )
        )),
        "jose.jwe"
    );
}

/// Replicas: the key made by one process, exported as its scalar and rebuilt in another,
/// opens what jwcrypto encrypted to the original's public key, with the same outcome for
/// every scenario; the rebuilt key has the same `kid` and public JWK.
#[test]
fn a_key_rebuilt_from_its_exported_scalar_decrypts_the_same() {
    let rng = SystemRandom::new();
    let keys: Vec<EcdhKey> = (0..SCENARIOS)
        .map(|_| EcdhKey::generate(&rng).unwrap())
        .collect();
    let scenarios = run(&keys);
    for (key, sc) in keys.into_iter().zip(&scenarios) {
        let secret = key.secret().unwrap();
        assert_eq!(secret.len(), 32);
        let rebuilt = EcdhKey::from_secret(&secret).unwrap();
        assert_eq!(rebuilt.kid(), key.kid());
        assert_eq!(rebuilt.public_jwk(), key.public_jwk());
        drop(key);
        let got = match rebuilt.decrypt(
            sc["jwe"].as_str().unwrap(),
            &[Enc::A128Gcm, Enc::A256Gcm],
            &JweLimits::default(),
        ) {
            Ok(plain) => {
                assert_eq!(plain, sc["plaintext"].as_str().unwrap().as_bytes());
                "ok".to_owned()
            }
            Err(e) => e.code().to_owned(),
        };
        assert_eq!(got, sc["expect"].as_str().unwrap(), "{}", sc["name"]);
    }
}

#[test]
fn scalars_that_are_no_p256_key_are_refused() {
    let code = |d: &[u8]| EcdhKey::from_secret(d).unwrap_err().code();
    assert_eq!(code(&[]), "jose.crypto");
    assert_eq!(code(&[1u8; 31]), "jose.crypto");
    assert_eq!(code(&[1u8; 33]), "jose.crypto");
    assert_eq!(code(&[0u8; 32]), "jose.crypto", "zero is no scalar");
    assert_eq!(code(&[0xffu8; 32]), "jose.crypto", "above the group order");
}
