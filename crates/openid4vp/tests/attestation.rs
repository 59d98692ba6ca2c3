//! The Wallet Attestation rule (`openid4vp::attestation`), one named test per way it can be
//! wrong. The attestations are built here with `jose::Signer` (the HTTP tests in the broker
//! use the independent Python wallet); the checks under test are the crate's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openid4vp::attestation::{self, AttestationError, Context, Rules};
use serde_json::{Map, Value, json};

const PROVIDER: &str = "https://wallet-provider.example.it";
const VCT: &str = "urn:test:wallet_attestation:1";
const NOW: u64 = 1_800_000_000;
const NONCE: &str = "n-0S6_WzA2Mj";
const AUD: &str = "x509_hash:verifier";

fn signer(kid: &str) -> jose::Signer {
    let rng = ring::rand::SystemRandom::new();
    let k = rcgen::KeyPair::generate().unwrap();
    jose::Signer::es256_from_pkcs8(&k.serialize_der(), Some(kid), &rng).unwrap()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// `<provider JWT>~<KB-JWT>`: the provider signs `claims` (with `cnf.jwk` = `instance`'s
/// key unless `claims` has one), the instance signs the KB-JWT for `nonce`.
fn attestation(
    provider: &jose::Signer,
    instance: &jose::Signer,
    claims: Value,
    nonce: &str,
) -> String {
    let rng = ring::rand::SystemRandom::new();
    let mut c = obj(json!({
        "iss": PROVIDER, "vct": VCT, "iat": NOW - 60, "exp": NOW + 3600,
        "cnf": {"jwk": instance.jwk().to_value()},
    }));
    c.extend(obj(claims));
    let jwt = provider.sign("dc+sd-jwt", &c, &rng).unwrap();
    let sd_hash = URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        format!("{jwt}~").as_bytes(),
    ));
    let kb = instance
        .sign(
            "kb+jwt",
            &obj(json!({"nonce": nonce, "aud": AUD, "iat": NOW - 5, "sd_hash": sd_hash})),
            &rng,
        )
        .unwrap();
    format!("{jwt}~{kb}")
}

fn check(
    p: &str,
    provider_key: &jose::Jwk,
    holder: &str,
) -> Result<attestation::Attested, AttestationError> {
    let parsed = attestation::parse(p)?;
    let ctx = Context {
        now: NOW,
        nonce: NONCE,
        aud: AUD,
        holder,
    };
    let rules = Rules {
        vct: &[VCT],
        max_lifetime: 86_400,
        skew: 60,
        kb_max_age: 300,
    };
    attestation::verify(
        parsed,
        sdjwt::IssuerKey::Key(provider_key),
        PROVIDER,
        &ctx,
        &rules,
    )
}

fn code(r: Result<attestation::Attested, AttestationError>) -> &'static str {
    r.map(|_| "ok").unwrap_or_else(|e| e.code())
}

#[test]
fn an_attestation_of_the_pid_holder_key_verifies() {
    let (wp, inst) = (signer("wp-1"), signer("inst"));
    let p = attestation(&wp, &inst, json!({}), NONCE);
    let a = check(&p, wp.jwk(), &inst.jwk().thumbprint()).unwrap();
    assert_eq!(a.provider, PROVIDER);
    assert_eq!(a.keys, vec![inst.jwk().thumbprint()]);
}

#[test]
fn a_pid_key_listed_in_attested_keys_is_bound() {
    let (wp, inst, pid_key) = (signer("wp-1"), signer("inst"), signer("pid"));
    let p = attestation(
        &wp,
        &inst,
        json!({"attested_keys": [pid_key.jwk().to_value()]}),
        NONCE,
    );
    assert_eq!(code(check(&p, wp.jwk(), &pid_key.jwk().thumbprint())), "ok");
}

#[test]
fn attestation_whose_cnf_does_not_bind_the_presenting_key_is_refused() {
    let (wp, inst, other) = (signer("wp-1"), signer("inst"), signer("other"));
    let p = attestation(&wp, &inst, json!({}), NONCE);
    assert_eq!(
        code(check(&p, wp.jwk(), &other.jwk().thumbprint())),
        "openid4vp.attestation_unbound"
    );
}

#[test]
fn expired_attestation_is_refused() {
    let (wp, inst) = (signer("wp-1"), signer("inst"));
    let p = attestation(
        &wp,
        &inst,
        json!({"iat": NOW - 7200, "exp": NOW - 3600}),
        NONCE,
    );
    assert_eq!(
        code(check(&p, wp.jwk(), &inst.jwk().thumbprint())),
        "openid4vp.attestation_expired"
    );
}

#[test]
fn long_lived_or_undated_attestation_is_refused() {
    let (wp, inst) = (signer("wp-1"), signer("inst"));
    let holder = inst.jwk().thumbprint();
    let week = attestation(&wp, &inst, json!({"exp": NOW + 7 * 86_400}), NONCE);
    assert_eq!(
        code(check(&week, wp.jwk(), &holder)),
        "openid4vp.attestation_lifetime"
    );
    let mut undated = obj(json!({}));
    undated.insert("iat".into(), Value::Null);
    // A null iat is not a number: the SD-JWT reader refuses the claim itself.
    let p = attestation(&wp, &inst, Value::Object(undated), NONCE);
    assert_ne!(code(check(&p, wp.jwk(), &holder)), "ok");
}

#[test]
fn forged_signature_is_refused() {
    let (wp, forger, inst) = (signer("wp-1"), signer("wp-1"), signer("inst"));
    let p = attestation(&forger, &inst, json!({}), NONCE);
    assert_eq!(
        code(check(&p, wp.jwk(), &inst.jwk().thumbprint())),
        "openid4vp.attestation_signature"
    );
}

#[test]
fn algorithm_confusion_is_refused() {
    // The provider JWT re-signed with HS256, the provider's public key as the secret.
    let (wp, inst) = (signer("wp-1"), signer("inst"));
    let p = attestation(&wp, &inst, json!({}), NONCE);
    let (jwt, kb) = p.split_once('~').unwrap();
    let mut parts = jwt.split('.');
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let payload = parts.next().unwrap();
    let mut h = header.as_object().unwrap().clone();
    h.insert("alg".into(), json!("HS256"));
    let head = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap());
    let secret = wp.jwk().to_value().to_string();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("{head}.{payload}").as_bytes());
    let forged = format!(
        "{head}.{payload}.{}~{kb}",
        URL_SAFE_NO_PAD.encode(tag.as_ref())
    );
    assert_eq!(
        code(check(&forged, wp.jwk(), &inst.jwk().thumbprint())),
        "openid4vp.attestation_alg"
    );
}

#[test]
fn attestation_for_another_request_or_type_or_provider_is_refused() {
    let (wp, inst) = (signer("wp-1"), signer("inst"));
    let holder = inst.jwk().thumbprint();
    let replayed = attestation(&wp, &inst, json!({}), "another-nonce");
    assert_eq!(
        code(check(&replayed, wp.jwk(), &holder)),
        "openid4vp.attestation_key_binding"
    );
    let pid = attestation(&wp, &inst, json!({"vct": "urn:eudi:pid:it:1"}), NONCE);
    assert_eq!(
        code(check(&pid, wp.jwk(), &holder)),
        "openid4vp.attestation_type"
    );
    let other = attestation(&wp, &inst, json!({"iss": "https://other.example"}), NONCE);
    assert_eq!(
        code(check(&other, wp.jwk(), &holder)),
        "openid4vp.attestation_provider"
    );
    let bad_keys = attestation(&wp, &inst, json!({"attested_keys": "all of them"}), NONCE);
    assert_eq!(
        code(check(&bad_keys, wp.jwk(), &holder)),
        "openid4vp.attestation_malformed"
    );
}

#[test]
fn attestation_error_codes_are_distinct() {
    let samples = [
        AttestationError::Missing,
        AttestationError::Lifetime,
        AttestationError::AttestedKeys,
        AttestationError::Unbound,
        AttestationError::Credential(sdjwt::Error::Expired),
        AttestationError::Credential(sdjwt::Error::Vct),
        AttestationError::Credential(sdjwt::Error::Issuer),
        AttestationError::Credential(sdjwt::Error::Nonce),
    ];
    let mut codes: Vec<&str> = samples.iter().map(AttestationError::code).collect();
    assert!(
        codes
            .iter()
            .all(|c| c.starts_with("openid4vp.attestation_"))
    );
    assert!(samples.iter().all(|e| !e.to_string().is_empty()));
    codes.sort_unstable();
    codes.dedup();
    // Missing, lifetime, malformed, unbound, expired, type, provider, key binding.
    assert_eq!(codes.len(), 8);
}
