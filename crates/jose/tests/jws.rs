//! The JWS profile, one named test per attack class, with tokens made here (our signer,
//! and hand-assembled ones for what no honest signer makes).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{Alg, Error, Jwk, Jwks, Jws, Limits, Signer, Typ, json};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Map, Value, json};

const TYP: Typ = Typ::Exactly("entity-statement+jwt");

fn es256(kid: &str) -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), Some(kid), &rng).unwrap()
}

fn claims() -> Map<String, Value> {
    json!({"iss": "https://a.example", "sub": "https://a.example", "n": 1})
        .as_object()
        .unwrap()
        .clone()
}

fn jwks_of(signers: &[&Signer]) -> Jwks {
    Jwks::from_keys(signers.iter().map(|s| s.jwk().clone()).collect()).unwrap()
}

fn b64(s: &str) -> String {
    URL_SAFE_NO_PAD.encode(s)
}

fn hand(header: &str, payload: &str, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64(header),
        b64(payload),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

fn code(token: &str, keys: &Jwks) -> &'static str {
    match Jws::decode(token, TYP, &Limits::default()).and_then(|j| j.verify(keys)) {
        Ok(()) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn es256_round_trip() {
    let s = es256("k1");
    let t = s
        .sign("entity-statement+jwt", &claims(), &SystemRandom::new())
        .unwrap();
    let jws = Jws::decode(&t, TYP, &Limits::default()).unwrap();
    assert_eq!(jws.alg(), Alg::Es256);
    assert_eq!(jws.kid(), "k1");
    assert_eq!(jws.into_verified_claims(&jwks_of(&[&s])).unwrap(), claims());
}

#[test]
fn default_kid_is_the_rfc7638_thumbprint_shape() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let s = Signer::es256_from_pkcs8(pkcs8.as_ref(), None, &rng).unwrap();
    assert_eq!(s.kid().len(), 43); // base64url of 32 bytes
}

#[test]
fn tampered_payload_refused() {
    let s = es256("k1");
    let t = s
        .sign("entity-statement+jwt", &claims(), &SystemRandom::new())
        .unwrap();
    let parts: Vec<&str> = t.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(r#"{"iss":"https://evil.example"}"#),
        parts[2]
    );
    assert_eq!(code(&forged, &jwks_of(&[&s])), "jose.signature");
}

#[test]
fn alg_none_refused_in_any_case() {
    let keys = jwks_of(&[&es256("k1")]);
    for alg in ["none", "None", "NONE"] {
        let h = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"entity-statement+jwt"}}"#);
        assert_eq!(
            code(&format!("{}.{}.", b64(&h), b64("{}")), &keys),
            "jose.alg_none"
        );
    }
}

#[test]
fn hs256_with_the_public_key_as_secret_refused() {
    let s = es256("k1");
    let secret = serde_json::to_vec(&s.jwk().to_value()).unwrap();
    let h = b64(r#"{"alg":"HS256","kid":"k1","typ":"entity-statement+jwt"}"#);
    let p = b64(r#"{"iss":"https://evil.example"}"#);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let tag = ring::hmac::sign(&key, format!("{h}.{p}").as_bytes());
    let t = format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()));
    assert_eq!(code(&t, &jwks_of(&[&s])), "jose.alg_hmac");
    for alg in ["HS384", "HS512", "hs256"] {
        let h = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"entity-statement+jwt"}}"#);
        assert_eq!(
            code(&hand(&h, "{}", b"x"), &jwks_of(&[&s])),
            "jose.alg_hmac"
        );
    }
}

#[test]
fn unsupported_alg_refused() {
    for alg in ["ES512", "EdDSA", "RS1", ""] {
        let h = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"entity-statement+jwt"}}"#);
        assert_eq!(
            code(&hand(&h, "{}", b"x"), &Jwks::default()),
            "jose.alg_unsupported"
        );
    }
    let h = r#"{"kid":"k1","typ":"entity-statement+jwt"}"#;
    assert_eq!(
        code(&hand(h, "{}", b"x"), &Jwks::default()),
        "jose.alg_missing"
    );
}

/// Found by the `oidfed_statement` fuzz target: an `alg` whose second character is
/// multi-byte once panicked in the `HS` prefix check.
#[test]
fn fuzz_regression_multibyte_alg() {
    for alg in ["T\u{304}56", "H\u{e9}256", "\u{e9}", "H"] {
        let h = format!(r#"{{"alg":"{alg}","kid":"k1","typ":"entity-statement+jwt"}}"#);
        assert_eq!(
            code(&hand(&h, "{}", b"x"), &Jwks::default()),
            "jose.alg_unsupported"
        );
    }
}

#[test]
fn missing_or_empty_kid_refused() {
    for h in [
        r#"{"alg":"ES256","typ":"entity-statement+jwt"}"#,
        r#"{"alg":"ES256","kid":"","typ":"entity-statement+jwt"}"#,
        r#"{"alg":"ES256","kid":7,"typ":"entity-statement+jwt"}"#,
    ] {
        assert_eq!(
            code(&hand(h, "{}", b"x"), &Jwks::default()),
            "jose.kid_missing"
        );
    }
}

#[test]
fn unknown_kid_refused() {
    let a = es256("k1");
    let b = es256("k2");
    let t = a
        .sign("entity-statement+jwt", &claims(), &SystemRandom::new())
        .unwrap();
    assert_eq!(code(&t, &jwks_of(&[&b])), "jose.kid_unknown");
}

#[test]
fn key_of_another_type_under_the_same_kid_refused() {
    // An RS256 header naming an EC key: the key cannot verify that algorithm.
    let s = es256("k1");
    let h = r#"{"alg":"RS256","kid":"k1","typ":"entity-statement+jwt"}"#;
    assert_eq!(
        code(&hand(h, "{}", &[1; 256]), &jwks_of(&[&s])),
        "jose.key_alg_mismatch"
    );
    // A key published for encryption does not verify signatures.
    let mut v = s.jwk().to_value();
    v["use"] = json!("enc");
    let enc = Jwks::from_value(&json!({"keys": [v]})).unwrap();
    let t = s
        .sign("entity-statement+jwt", &claims(), &SystemRandom::new())
        .unwrap();
    assert_eq!(code(&t, &enc), "jose.key_alg_mismatch");
}

#[test]
fn typ_checked() {
    let s = es256("k1");
    let rng = SystemRandom::new();
    let keys = jwks_of(&[&s]);
    let t = s.sign("JWT", &claims(), &rng).unwrap();
    assert_eq!(code(&t, &keys), "jose.typ");
    // Media type comparison: case-insensitive, `application/` prefix optional.
    let t = s
        .sign("application/Entity-Statement+JWT", &claims(), &rng)
        .unwrap();
    assert_eq!(code(&t, &keys), "ok");
    let h = r#"{"alg":"ES256","kid":"k1"}"#;
    assert_eq!(code(&hand(h, "{}", b"x"), &keys), "jose.typ");
    let t = s.sign("trust-mark+jwt", &claims(), &rng).unwrap();
    assert_eq!(code(&t, &keys), "jose.typ");
}

#[test]
fn crit_and_key_carrying_headers_refused() {
    let h = r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt","crit":["exp"],"exp":1}"#;
    assert_eq!(code(&hand(h, "{}", b"x"), &Jwks::default()), "jose.crit");
    for name in ["jwk", "jku", "x5u", "x5c"] {
        let h =
            format!(r#"{{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt","{name}":{{}}}}"#);
        assert_eq!(
            code(&hand(&h, "{}", b"x"), &Jwks::default()),
            "jose.header_key"
        );
    }
}

#[test]
fn duplicate_members_refused_anywhere() {
    let h = r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt","kid":"k2"}"#;
    assert_eq!(
        code(&hand(h, "{}", b"x"), &Jwks::default()),
        "jose.json_duplicate_key"
    );
    let h = r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt"}"#;
    let p = r#"{"a":{"sub":"x","sub":"y"}}"#;
    assert_eq!(
        code(&hand(h, p, b"x"), &Jwks::default()),
        "jose.json_duplicate_key"
    );
}

#[test]
fn oversized_token_refused_before_decoding() {
    let limits = Limits::default();
    let t = "a".repeat(limits.max_token_bytes + 1);
    let e = Jws::decode(&t, TYP, &limits).unwrap_err();
    assert_eq!(e.code(), "jose.too_large");
    // An oversized header alone.
    let big = format!(r#"{{"alg":"ES256","kid":"{}"}}"#, "k".repeat(4000));
    assert_eq!(
        code(&hand(&big, "{}", b"x"), &Jwks::default()),
        "jose.too_large"
    );
}

#[test]
fn deeply_nested_json_refused() {
    let h = r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt"}"#;
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let p = format!(r#"{{"a":{deep}}}"#);
    assert_eq!(
        code(&hand(h, &p, b"x"), &Jwks::default()),
        "jose.json_depth"
    );
    // Exactly at the limit is fine; one more is not.
    assert!(json::parse(b"[[[[[[[[[[1]]]]]]]]]]", 10).is_ok());
    assert_eq!(
        json::parse(b"[[[[[[[[[[[1]]]]]]]]]]]", 10).unwrap_err(),
        Error::JsonDepth
    );
}

#[test]
fn malformed_compact_forms_refused() {
    let keys = Jwks::default();
    for t in [
        "", "a", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.c=", "!!.b.c",
    ] {
        let c = code(t, &keys);
        assert!(
            ["jose.malformed", "jose.base64", "jose.json"].contains(&c),
            "{t:?}: {c}"
        );
    }
    // Padding is not canonical base64url.
    let h = format!(
        "{}=",
        b64(r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt"}"#)
    );
    assert_eq!(code(&format!("{h}.e30.eA"), &keys), "jose.base64");
    // A payload that is not an object.
    let h = r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt"}"#;
    assert_eq!(code(&hand(h, "[1]", b"x"), &keys), "jose.json");
}

#[test]
fn jwks_strictness() {
    let s = es256("k1");
    let good = s.jwk().to_value();
    let mut dup = vec![good.clone(), good.clone()];
    let e = Jwks::from_value(&json!({ "keys": dup.clone() })).unwrap_err();
    assert_eq!(e.code(), "jose.jwks_duplicate_kid");
    dup.truncate(1);
    assert!(Jwks::from_value(&json!({ "keys": dup })).is_ok());
    let oct = json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]});
    assert_eq!(
        Jwks::from_value(&oct).unwrap_err().code(),
        "jose.jwk_symmetric"
    );
    let mut private = good.clone();
    private["d"] = json!("AAAA");
    let e = Jwks::from_value(&json!({ "keys": [private] })).unwrap_err();
    assert_eq!(e.code(), "jose.jwk_private");
    let small = json!({"keys": [{"kty": "RSA", "kid": "r", "e": "AQAB",
        "n": URL_SAFE_NO_PAD.encode([0xc5u8; 128])}]});
    assert_eq!(
        Jwks::from_value(&small).unwrap_err(),
        Error::JwkRsaTooSmall { bits: 1024 }
    );
    let mut p521 = good.clone();
    p521["crv"] = json!("P-521");
    assert_eq!(
        Jwks::from_value(&json!({ "keys": [p521] }))
            .unwrap_err()
            .code(),
        "jose.jwk"
    );
    let many: Vec<Value> = (0..=jose::MAX_KEYS)
        .map(|i| {
            let mut k = good.clone();
            k["kid"] = json!(format!("k{i}"));
            k
        })
        .collect();
    assert_eq!(
        Jwks::from_value(&json!({ "keys": many }))
            .unwrap_err()
            .code(),
        "jose.jwks"
    );
    // Key types not used for signatures here are left out, not fatal.
    let okp = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "o", "x": "AA"}, good]});
    assert_eq!(Jwks::from_value(&okp).unwrap().keys().len(), 1);
    let no_kid = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]});
    assert_eq!(Jwks::from_value(&no_kid).unwrap_err().code(), "jose.jwk");
}

#[test]
fn jwk_alg_pins_the_algorithm() {
    let s = es256("k1");
    let mut v = s.jwk().to_value();
    v["alg"] = json!("ES384");
    let jwk = Jwk::from_value(&v).unwrap().unwrap();
    assert!(!jwk.accepts(Alg::Es256));
    v["alg"] = json!("HS256");
    let jwk = Jwk::from_value(&v).unwrap().unwrap();
    assert!(!jwk.accepts(Alg::Es256));
}

#[test]
fn work_is_bounded_by_input_size() {
    // A payload of many tiny members: parsing is linear, so a token at the size limit is
    // decoded, and one byte over is refused before any JSON is read.
    let limits = Limits::default();
    let h = r#"{"alg":"ES256","kid":"k1","typ":"entity-statement+jwt"}"#;
    let mut p = String::from("{");
    let mut i = 0;
    while p.len() < (limits.max_token_bytes - 200) * 3 / 4 {
        p.push_str(&format!(r#""m{i}":0,"#));
        i += 1;
    }
    p.push_str(r#""end":0}"#);
    let t = hand(h, &p, &[1; 64]);
    assert!(t.len() <= limits.max_token_bytes, "{}", t.len());
    let jws = Jws::decode(&t, TYP, &limits).unwrap();
    assert_eq!(jws.claims_unverified().len(), i + 1);
}

#[test]
fn strict_json_builds_the_same_values_as_serde_json() {
    // Guards the value builder against serde_json features that change how numbers reach a
    // visitor (`arbitrary_precision` would hand them over as maps).
    let text = br#"{"a":[1,-2,3.5,true,null,"x\u00e9"],"b":{"c":{}},"d":18446744073709551615}"#;
    let ours = json::parse(text, 10).unwrap();
    let theirs: Value = serde_json::from_slice(text).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(json::parse(b"1 2", 10).unwrap_err().code(), "jose.json");
    assert_eq!(
        json::parse(b"{\"a\":1,}", 10).unwrap_err().code(),
        "jose.json"
    );
}

#[test]
fn every_error_code_is_distinct_and_prefixed() {
    let s = String::new;
    let samples = [
        Error::TooLarge { len: 0, max: 0 },
        Error::Malformed,
        Error::Base64,
        Error::Json { context: "x" },
        Error::JsonDepth,
        Error::JsonDuplicateKey,
        Error::AlgMissing,
        Error::AlgNone,
        Error::AlgHmac,
        Error::AlgUnsupported { alg: s() },
        Error::KidMissing,
        Error::KidUnknown { kid: s() },
        Error::KeyAlgMismatch { kid: s() },
        Error::Typ { expected: "x" },
        Error::Crit,
        Error::HeaderKey { name: "x" },
        Error::Signature,
        Error::Jwk { reason: "x" },
        Error::JwkSymmetric,
        Error::JwkPrivate,
        Error::JwkRsaTooSmall { bits: 0 },
        Error::JwksDuplicateKid { kid: s() },
        Error::Jwks { reason: "x" },
        Error::SigningKey,
        Error::Crypto,
        Error::Jwe { reason: "x" },
        Error::JweAlg,
        Error::JweKid,
        Error::JweDecrypt,
    ];
    let mut codes: Vec<&str> = samples.iter().map(Error::code).collect();
    assert!(codes.iter().all(|c| c.starts_with("jose.")));
    for e in &samples {
        assert!(!e.to_string().is_empty());
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), samples.len());
}

/// An ES256 token with a hand-written header (no `kid`), signed by `pair`.
fn es256_hand(pair: &EcdsaKeyPair, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

fn ec_pair() -> (EcdsaKeyPair, Jwk) {
    use ring::signature::KeyPair as _;
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let pt = pair.public_key().as_ref();
    let jwk = json!({"kty": "EC", "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&pt[1..33]), "y": URL_SAFE_NO_PAD.encode(&pt[33..])});
    (pair, Jwk::from_value_standalone(&jwk).unwrap())
}

#[test]
fn unkeyed_token_verifies_only_with_the_given_key() {
    let (pair, jwk) = ec_pair();
    let (_, other) = ec_pair();
    let t = es256_hand(
        &pair,
        r#"{"alg":"ES256","typ":"kb+jwt"}"#,
        r#"{"nonce":"n"}"#,
    );
    let typ = Typ::Exactly("kb+jwt");
    // The keyed decoder still demands a kid.
    assert_eq!(
        Jws::decode(&t, typ, &Limits::default()).unwrap_err().code(),
        "jose.kid_missing"
    );
    let jws = Jws::decode_unkeyed(&t, typ, &Limits::default()).unwrap();
    assert_eq!(jws.kid(), "");
    jws.verify_with(&jwk).unwrap();
    assert_eq!(
        jws.verify_with(&other).unwrap_err().code(),
        "jose.signature"
    );
    // An empty kid names no key of a set, even one holding the right key.
    let set = Jwks::from_keys(vec![jwk]).unwrap();
    assert_eq!(jws.verify(&set).unwrap_err().code(), "jose.kid_unknown");
    // Every other header rule holds for unkeyed tokens too.
    for (h, code) in [
        (r#"{"alg":"none","typ":"kb+jwt"}"#, "jose.alg_none"),
        (r#"{"alg":"HS256","typ":"kb+jwt"}"#, "jose.alg_hmac"),
        (r#"{"alg":"ES256","typ":"JWT"}"#, "jose.typ"),
        (
            r#"{"alg":"ES256","typ":"kb+jwt","jwk":{}}"#,
            "jose.header_key",
        ),
        (
            r#"{"alg":"ES256","typ":"kb+jwt","crit":["x"]}"#,
            "jose.crit",
        ),
        (
            r#"{"alg":"ES256","typ":"kb+jwt","kid":""}"#,
            "jose.kid_missing",
        ),
    ] {
        let t = es256_hand(&pair, h, "{}");
        assert_eq!(
            Jws::decode_unkeyed(&t, typ, &Limits::default())
                .unwrap_err()
                .code(),
            code,
            "{h}"
        );
    }
}

#[test]
fn verify_with_checks_the_key_fits_the_alg() {
    let (pair, _) = ec_pair();
    let t = es256_hand(&pair, r#"{"alg":"ES256","typ":"kb+jwt"}"#, "{}");
    let jws = Jws::decode_unkeyed(&t, Typ::Exactly("kb+jwt"), &Limits::default()).unwrap();
    let rsa = Signer::rsa_from_pkcs8(
        Alg::Rs256,
        include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.key.pk8.der"),
        None,
    )
    .unwrap();
    assert_eq!(
        jws.verify_with(rsa.jwk()).unwrap_err().code(),
        "jose.key_alg_mismatch"
    );
}

#[test]
fn standalone_jwk_kid_defaults_to_thumbprint_and_stays_strict() {
    let (_, jwk) = ec_pair();
    assert_eq!(jwk.kid(), jwk.thumbprint());
    assert_eq!(jwk.kid().len(), 43);
    for (v, code) in [
        (json!({"kty": "oct", "k": "AAAA"}), "jose.jwk_symmetric"),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
            "jose.jwk",
        ),
        (
            json!({"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}),
            "jose.jwk",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA"}),
            "jose.jwk_private",
        ),
        (
            json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "kid": 7}),
            "jose.jwk",
        ),
    ] {
        assert_eq!(
            Jwk::from_value_standalone(&v).unwrap_err().code(),
            code,
            "{v}"
        );
    }
}

#[test]
fn decode_chained_reads_x5c_for_the_caller_and_nothing_else_changes() {
    use base64::engine::general_purpose::STANDARD;
    let signer = es256("k1");
    let rng = SystemRandom::new();
    let cert = vec![0x30u8, 0x82, 0x01, 0x00, 7, 7, 7];
    let mut header = Map::new();
    header.insert("x5c".into(), json!([STANDARD.encode(&cert)]));
    let token = signer
        .sign_with("dc+sd-jwt", &header, &claims(), &rng)
        .unwrap();
    let typ = Typ::Exactly("dc+sd-jwt");
    // The other decoders still refuse a key-carrying header.
    assert_eq!(
        Jws::decode(&token, typ, &Limits::default())
            .unwrap_err()
            .code(),
        "jose.header_key"
    );
    let jws = Jws::decode_chained(&token, typ, &Limits::default()).unwrap();
    assert_eq!(jws.x5c(), [cert]);
    // Verified only with the key the caller chose, never from the chain.
    jws.verify_with(signer.jwk()).unwrap();
    assert_eq!(
        jws.verify_with(es256("k2").jwk()).unwrap_err().code(),
        "jose.signature"
    );
    // Malformed chains and the other key headers are refused.
    for bad in [
        json!({"x5c": []}),
        json!({"x5c": "MIIB"}),
        json!({"x5c": ["!!"]}),
        json!({"x5c": ["AA==", "AA==", "AA==", "AA==", "AA==", "AA=="]}),
        json!({"jwk": signer.jwk().to_value()}),
    ] {
        let Value::Object(h) = bad else {
            unreachable!()
        };
        let t = signer.sign_with("dc+sd-jwt", &h, &claims(), &rng).unwrap();
        assert_eq!(
            Jws::decode_chained(&t, typ, &Limits::default())
                .unwrap_err()
                .code(),
            "jose.header_key",
            "{h:?}"
        );
    }
}
