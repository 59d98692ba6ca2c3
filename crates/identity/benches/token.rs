//! Minting one downstream token: claims serialization, base64url, and the signature, for a
//! fully populated SPID principal, with ES256 (the default) and EdDSA. Also normalization
//! of the attributes of one login. Numbers: docs/PERFORMANCE.md.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use identity::{
    KeySet, KeyState, Mapping, Method, SPID_L2, SigningKey, Source, TokenParams, normalize,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};

fn attributes() -> Vec<(String, Vec<String>)> {
    [
        ("spidCode", "DEVI0000000001"),
        ("fiscalNumber", "TINIT-RSSMRA80A01H501U"),
        ("name", "Mario"),
        ("familyName", "Rossi"),
        ("dateOfBirth", "1980-01-01"),
        ("email", "mario.rossi@example.org"),
        ("mobilePhone", "+393331234567"),
        ("address", "Via Cristoforo Colombo 44 00147 Roma RM"),
        ("placeOfBirth", "H501"),
        ("gender", "M"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), vec![(*v).to_owned()]))
    .collect()
}

fn benches(c: &mut Criterion) {
    let rng = SystemRandom::new();
    let source = Source {
        method: Method::Spid,
        idp: "https://id.example.it",
        level: SPID_L2,
        auth_time: 1_763_900_000,
        session_id: "3f1c0a9e5b7d2c4e6a8b0d1f3e5c7a9b",
    };
    let mapping = Mapping::default();
    let principal = normalize(attributes(), &source, &mapping).unwrap();
    c.bench_function("normalize_spid_10_attributes", |b| {
        b.iter_batched(
            attributes,
            |a| normalize(a, black_box(&source), &mapping).unwrap(),
            criterion::BatchSize::SmallInput,
        )
    });
    let params = TokenParams {
        issuer: "https://varco.example.org",
        audience: "https://portal.example.org",
        ttl: 300,
    };
    let es = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    // The floor: the signature alone over a token-sized message, as ring computes it.
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, es.as_ref(), &rng).unwrap();
    let message = vec![b'x'; 700];
    c.bench_function("ecdsa_p256_sign_only", |b| {
        b.iter(|| pair.sign(&rng, black_box(&message)).unwrap())
    });
    let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    for (name, key) in [
        (
            "mint_token_es256",
            SigningKey::es256_from_pkcs8("es", es.as_ref(), &rng).unwrap(),
        ),
        (
            "mint_token_eddsa",
            SigningKey::ed25519_from_pkcs8("ed", ed.as_ref()).unwrap(),
        ),
    ] {
        let mut keys = KeySet::new();
        keys.insert(key, KeyState::Active).unwrap();
        c.bench_function(name, |b| {
            b.iter(|| {
                keys.sign(black_box(&principal), &params, 1_763_900_010, &rng)
                    .unwrap()
            })
        });
    }
}

criterion_group!(token, benches);
criterion_main!(token);
