//! One Entity-Statement-sized ES256 JWS (about 1.5 KB): `decode` alone (base64, strict JSON,
//! header checks), `decode` + `verify`, and ring's ECDSA P-256 verification alone, the floor.
//! Numbers: docs/PERFORMANCE.md.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jose::{Jwks, Jws, Limits, Signer, Typ};
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde_json::json;

fn benches(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let signer = Signer::es256_from_pkcs8(pkcs8.as_ref(), None, &rng).unwrap();
    let keys = Jwks::from_keys(vec![signer.jwk().clone()]).unwrap();
    let claims = json!({
        "iss": "https://sa.example.it", "sub": "https://op.example.it",
        "iat": 1_800_000_000u64, "exp": 1_800_086_400u64,
        "jwks": keys.to_value(),
        "metadata_policy": {"openid_provider": {
            "id_token_signing_alg_values_supported": {"subset_of": ["RS256", "RS512", "ES256"]},
            "token_endpoint_auth_methods_supported": {"subset_of": ["private_key_jwt"], "essential": true},
            "client_registration_types_supported": {"superset_of": ["automatic"]},
            "scopes_supported": {"add": ["openid"]},
            "acr_values_supported": {"essential": true}
        }},
        "trust_marks_issued_by": ["https://sa.example.it", "https://ta.example.it"]
    });
    let token = signer
        .sign("entity-statement+jwt", claims.as_object().unwrap(), &rng)
        .unwrap();
    let limits = Limits::default();
    let typ = Typ::Exactly("entity-statement+jwt");
    c.bench_function("jose/decode_es256_statement", |b| {
        b.iter(|| black_box(Jws::decode(black_box(&token), typ, &limits).unwrap()));
    });
    c.bench_function("jose/decode_verify_es256_statement", |b| {
        b.iter(|| {
            let jws = Jws::decode(black_box(&token), typ, &limits).unwrap();
            jws.verify(&keys).unwrap();
        });
    });
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let msg = token.rsplit_once('.').unwrap().0.as_bytes().to_vec();
    let sig = pair.sign(&rng, &msg).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    c.bench_function("ring/ecdsa_p256_verify_only", |b| {
        b.iter(|| {
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
                .verify(black_box(&msg), sig.as_ref())
                .unwrap();
        });
    });
}

criterion_group!(jose_benches, benches);
criterion_main!(jose_benches);
