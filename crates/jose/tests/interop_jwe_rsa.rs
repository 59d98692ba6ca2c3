//! JWE as the SPID/CIE OpenID Connect profile encrypts UserInfo, made by an independent
//! implementation (jwcrypto, `tests/py/jwe_rsa.py`, in the wallet venv of
//! `scripts/wallet-venv.sh`) and decrypted here; each tampering refused with its code. Also
//! our own `encrypt_to` (what the test OPs use) against our decrypter, and the bounds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use jose::{CbcHs, JweLimits, KeyAlg, RsaDecrypter, encrypt_to};
use ring::rand::SystemRandom;
use serde_json::Value;

const KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.key.pk8.der");
const ALGS: [KeyAlg; 2] = [KeyAlg::RsaOaep, KeyAlg::RsaOaep256];
const ENCS: [CbcHs; 2] = [CbcHs::A128CbcHs256, CbcHs::A256CbcHs512];

#[test]
fn jwcrypto_userinfo_jwes_decrypt_or_are_refused_with_their_code() {
    let key = RsaDecrypter::from_pkcs8(KEY, Some("rp-enc")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/jwe_rsa.py");
    let input = serde_json::to_vec(&key.public_jwk(KeyAlg::RsaOaep)).unwrap();
    let out = testkit::python::run("wallet", &script, &[], Some(&input));
    let scenarios: Vec<Value> = serde_json::from_slice(&out).unwrap();
    assert_eq!(scenarios.len(), 13);
    let mut wrong = Vec::new();
    for sc in &scenarios {
        let got = key.decrypt(
            sc["jwe"].as_str().unwrap(),
            &ALGS,
            &ENCS,
            &JweLimits::default(),
        );
        let got = match got {
            Ok(p) => {
                assert_eq!(p, b"eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
                "ok".to_owned()
            }
            Err(e) => e.code().to_owned(),
        };
        if got != sc["expect"].as_str().unwrap() {
            wrong.push(format!("{}: got {got}, want {}", sc["name"], sc["expect"]));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn own_encryption_round_trips_and_respects_the_callers_allow_list() {
    let rng = SystemRandom::new();
    let key = RsaDecrypter::from_pkcs8(KEY, None).unwrap();
    let jwk = key.public_jwk(KeyAlg::RsaOaep256);
    for alg in ALGS {
        for enc in ENCS {
            let t = encrypt_to(&jwk, alg, enc, Some("JWT"), b"hello", &rng).unwrap();
            assert_eq!(
                key.decrypt(&t, &ALGS, &ENCS, &JweLimits::default())
                    .unwrap(),
                b"hello"
            );
            // The caller's list decides: an algorithm it did not allow is refused before
            // any RSA work.
            let other: Vec<KeyAlg> = ALGS.into_iter().filter(|a| *a != alg).collect();
            assert_eq!(
                key.decrypt(&t, &other, &ENCS, &JweLimits::default())
                    .unwrap_err()
                    .code(),
                "jose.jwe_alg"
            );
        }
    }
}

#[test]
fn oversized_and_malformed_jwes_are_refused_before_any_crypto() {
    let key = RsaDecrypter::from_pkcs8(KEY, None).unwrap();
    let limits = JweLimits::default();
    let huge = "a".repeat(limits.max_bytes + 1);
    assert_eq!(
        key.decrypt(&huge, &ALGS, &ENCS, &limits)
            .unwrap_err()
            .code(),
        "jose.too_large"
    );
    for t in ["a.b.c.d", "a.b.c.d.e.f", ".b.c.d.e"] {
        assert_eq!(
            key.decrypt(t, &ALGS, &ENCS, &limits).unwrap_err().code(),
            "jose.jwe"
        );
    }
    // Deeply nested header: the JSON depth bound answers, not the stack.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let h = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, deep);
    let t = format!("{h}.AAAA.AAAA.AAAA.AAAA");
    assert!(key.decrypt(&t, &ALGS, &ENCS, &limits).is_err());
}
