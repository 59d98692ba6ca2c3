//! The per-login cryptography of the SPID/CIE OpenID Connect relying party, in process: the
//! ID token checks (one RS256 verification and the claim rules) and the UserInfo checks
//! (RSA-OAEP unwrap with our 2048-bit key, A256CBC-HS512, then one RS256 verification), as
//! `routes/oidc.rs` runs them on the heavy pool. Numbers: docs/PERFORMANCE.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::hint::black_box;

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use jose::{Alg, CbcHs, Jwks, KeyAlg, RsaDecrypter, Signer};
use oidfed::oidc::{self, Expected, Provider};
use ring::rand::SystemRandom;
use serde_json::{Map, Value, json};

const OP_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.key.pk8.der");
const RP_ENC_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.key.pk8.der");
const NOW: u64 = 1_800_000_000;
const OP: &str = "https://op.example.it";
const RP: &str = "https://rp.example.it";

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn benches(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let op = Signer::rsa_from_pkcs8(Alg::Rs256, OP_KEY, None).unwrap();
    let provider = Provider {
        issuer: OP.into(),
        authorization_endpoint: format!("{OP}/authorization"),
        token_endpoint: format!("{OP}/token"),
        userinfo_endpoint: format!("{OP}/userinfo"),
        revocation_endpoint: None,
        jwks: Jwks::from_keys(vec![op.jwk().clone()]).unwrap(),
        acr_values_supported: vec![],
        algs: vec![Alg::Rs256],
    };
    let access = "access-token-0123456789";
    let h = ring::digest::digest(&ring::digest::SHA256, access.as_bytes());
    let at_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&h.as_ref()[..16]);
    let id_token = op
        .sign(
            "JWT",
            &obj(json!({
                "iss": OP, "sub": "pairwise-1", "aud": RP, "iat": NOW, "exp": NOW + 300,
                "nonce": "n-0123456789", "acr": "https://www.spid.gov.it/SpidL2",
                "at_hash": at_hash, "jti": "j1",
            })),
            &rng,
        )
        .unwrap();
    let expected = Expected {
        client_id: RP,
        nonce: "n-0123456789",
        access_token: access,
        now: NOW,
        skew: 60,
    };
    let key = RsaDecrypter::from_pkcs8(RP_ENC_KEY, None).unwrap();
    let inner = op
        .sign(
            "JWT",
            &obj(json!({
                "iss": OP, "aud": RP, "sub": "pairwise-1", "given_name": "Mario",
                "family_name": "Rossi",
                "https://attributes.eid.gov.it/fiscal_number": "TINIT-RSSMRA85T10A562S",
            })),
            &rng,
        )
        .unwrap();
    let jwe = jose::encrypt_to(
        &key.public_jwk(KeyAlg::RsaOaep),
        KeyAlg::RsaOaep,
        CbcHs::A256CbcHs512,
        Some("JWT"),
        inner.as_bytes(),
        &rng,
    )
    .unwrap();
    let token = oidc::validate_id_token(&id_token, &provider, &expected).unwrap();

    c.bench_function("oidc/id_token_rs256", |b| {
        b.iter(|| black_box(oidc::validate_id_token(&id_token, &provider, &expected).unwrap()))
    });
    c.bench_function("oidc/userinfo_rsa_oaep_a256cbc_hs512_rs256", |b| {
        b.iter(|| black_box(oidc::validate_userinfo(&jwe, &key, &provider, &token, RP).unwrap()))
    });
    c.bench_function("oidc/id_token_and_userinfo", |b| {
        b.iter(|| {
            let t = oidc::validate_id_token(&id_token, &provider, &expected).unwrap();
            black_box(oidc::validate_userinfo(&jwe, &key, &provider, &t, RP).unwrap())
        })
    });
}

criterion_group!(group, benches);
criterion_main!(group);
