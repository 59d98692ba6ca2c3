//! The representation file of issue 24 (`identity::represent::signed_file::SignedFile`), as the broker
//! reads it. The first input byte picks the mode:
//!
//! - even: the rest is a whole file → `verify` with a portal key whose private half was
//!   thrown away (`PORTAL` below). It must **never verify**: that would be a forgery.
//! - 1 modulo 4: the rest is the payload, raw bytes, signed here with a key made at start-up
//!   so the signature passes and the closed schema is what gets exercised. Never a panic;
//!   when the file is accepted, every record must keep the schema's promises.
//! - 3 modulo 4: the rest is an HTTP JSON API body (`identity::represent::answer`) for one
//!   delegate: never a panic, and an accepted answer names only that delegate.

#![no_main]

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::represent::Source;
use identity::represent::answer::{Answer, AnswerInput, AnswerLimits};
use identity::represent::signed_file::{FileLimits, SignedFile, TYP as SIGNED_FILE_TYP};
use jose::{Jwks, Signer};
use libfuzzer_sys::fuzz_target;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// A P-256 public key whose private key no longer exists (the one `sdjwt_presentation` uses).
const PORTAL: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "portal-1",
  "x": "9E9dUG2Ex01W1Q7CZl8Zagf_UyiEjXOkMBN_E2IumR8",
  "y": "7l7MmblmaHBQGdjIi6IXRH-nmzvZDymSQpKaPz3mFko"}]}"#;
const ISSUER: &str = "https://portale.example.it";
const NOW: u64 = 1_780_000_000;

static KEYLESS: LazyLock<SignedFile> = LazyLock::new(|| {
    let keys = Jwks::from_json(PORTAL.as_bytes()).expect("key");
    SignedFile::new("portale", ISSUER, keys, FileLimits::default())
});

/// This target's own portal: the key pair signs the fuzzed payloads, the source trusts it.
static OWN: LazyLock<(EcdsaKeyPair, SignedFile)> = LazyLock::new(|| {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("gen");
    let signer = Signer::es256_from_pkcs8(pkcs8.as_ref(), Some("fuzz"), &rng).expect("signer");
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
        .expect("pair");
    let keys = Jwks::from_keys(vec![signer.jwk().clone()]).expect("jwks");
    let limits = FileLimits {
        max_bytes: 256 * 1024,
        max_records: 64,
        max_services: 8,
    };
    (pair, SignedFile::new("portale", ISSUER, keys, limits))
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 3 == 3 {
        const DELEGATE: &str = "TINIT-BNCGNN80A01F205W";
        let input = AnswerInput::Body {
            delegate: DELEGATE,
            bytes: rest,
        };
        if let Ok(reps) = Answer::http("api", AnswerLimits::default()).verify(input, NOW) {
            assert!(reps.len() <= AnswerLimits::default().max_records);
            assert!(reps.iter().all(|r| r.delegate() == DELEGATE));
        }
        return;
    }
    if mode & 1 == 0 {
        if KEYLESS.verify(rest, NOW).is_ok() {
            panic!("representation file verified without the portal's key");
        }
        return;
    }
    let (pair, source) = &*OWN;
    let header = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"alg":"ES256","kid":"fuzz","typ":"{SIGNED_FILE_TYP}"}}"#
    ));
    let mut file = format!("{header}.{}", URL_SAFE_NO_PAD.encode(rest));
    let Ok(sig) = pair.sign(&SystemRandom::new(), file.as_bytes()) else {
        return;
    };
    file.push('.');
    file.push_str(&URL_SAFE_NO_PAD.encode(sig.as_ref()));
    let Ok(reps) = source.verify(file.as_bytes(), NOW) else {
        return;
    };
    assert!(reps.len() <= 64);
    assert!(reps.issued_at().is_some_and(|iat| iat <= NOW + 60));
    for r in reps.iter() {
        assert!(r.not_before() < r.not_after());
        let services: Vec<&str> = r.services().collect();
        assert!(!services.is_empty() && services.len() <= 8);
        for s in services.iter().chain([&r.reference()]) {
            assert!(!s.is_empty() && s.bytes().all(|c| c.is_ascii_graphic()));
        }
        assert!(r.delegate().starts_with("TINIT-") || r.delegate().starts_with("EIDAS:"));
        assert!(std::ptr::eq(
            reps.by_reference(r.reference()).expect("indexed"),
            r
        ));
        assert!(reps.for_delegate(r.delegate()).any(|o| std::ptr::eq(o, r)));
    }
});
