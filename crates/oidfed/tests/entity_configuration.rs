//! Our Entity Configuration: built, signed (RS256, PS256, ES256), read back by our own
//! decoder, and verified by PyJWT.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use jose::{Alg, Jwks, Limits, Signer};
use oidfed::{RelyingParty, Statement, TrustMarkEntry};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;

fn rp(core_jwks: Value) -> RelyingParty {
    RelyingParty {
        entity_id: "https://varco.example.it".into(),
        authority_hints: vec!["https://registry.spid.example.it".into()],
        trust_marks: vec![TrustMarkEntry {
            trust_mark_type: "https://registry.example.it/openid_relying_party/public/".into(),
            trust_mark: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into(),
        }],
        organization_name: "Comune di Esempio".into(),
        homepage_uri: "https://www.comune.example.it".into(),
        policy_uri: "https://www.comune.example.it/privacy".into(),
        logo_uri: "https://www.comune.example.it/logo.svg".into(),
        contacts: vec!["protocollo@pec.comune.example.it".into()],
        federation_resolve_endpoint: None,
        client_name: "Servizi online".into(),
        redirect_uris: vec!["https://varco.example.it/oidc/callback".into()],
        rp_jwks: core_jwks,
        id_token_signed_response_alg: "RS256".into(),
        userinfo_signed_response_alg: "RS256".into(),
        userinfo_encrypted_response_alg: "RSA-OAEP-256".into(),
        userinfo_encrypted_response_enc: "A256CBC-HS512".into(),
    }
}

fn rsa_pkcs8() -> Vec<u8> {
    let hex = common::run_py("entity_configuration.py", &["rsa-key"]);
    let hex = hex.trim();
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

fn es256() -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), None, &rng).unwrap()
}

fn check(signer: &Signer, core: &Signer) {
    let rng = SystemRandom::new();
    let core_jwks = Jwks::from_keys(vec![core.jwk().clone()])
        .unwrap()
        .to_value();
    let token = rp(core_jwks.clone())
        .sign(signer, &[], NOW, 86_400, &rng)
        .unwrap();

    // Our own reader: a well-formed, self-signed Entity Configuration.
    let st = Statement::decode(&token, &Limits::default(), false).unwrap();
    assert!(st.is_configuration());
    st.verify(st.jwks(), "entity configuration").unwrap();
    st.check_time(NOW, 0).unwrap();
    assert_eq!(st.authority_hints(), ["https://registry.spid.example.it"]);

    // PyJWT, independently.
    let out = common::run_py(
        "entity_configuration.py",
        &["verify", &token, signer.alg().name()],
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["header"]["typ"], "entity-statement+jwt");
    assert_eq!(v["header"]["kid"], signer.kid());
    let c = &v["claims"];
    assert_eq!(c["iss"], "https://varco.example.it");
    assert_eq!(c["sub"], "https://varco.example.it");
    assert_eq!(c["exp"], NOW + 86_400);
    let rp = &c["metadata"]["openid_relying_party"];
    assert_eq!(rp["client_id"], "https://varco.example.it");
    assert_eq!(rp["client_registration_types"], json!(["automatic"]));
    assert_eq!(rp["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(rp["response_types"], json!(["code"]));
    assert_eq!(rp["jwks"], core_jwks);
    let fe = &c["metadata"]["federation_entity"];
    assert_eq!(fe["organization_name"], "Comune di Esempio");
    let tm = &c["trust_marks"][0];
    assert_eq!(tm["id"], tm["trust_mark_type"]);
}

#[test]
fn rs256_entity_configuration_verified_by_pyjwt() {
    let key = rsa_pkcs8();
    let fed = Signer::rsa_from_pkcs8(Alg::Rs256, &key, None).unwrap();
    check(&fed, &es256());
}

#[test]
fn ps256_entity_configuration_verified_by_pyjwt() {
    let key = rsa_pkcs8();
    let fed = Signer::rsa_from_pkcs8(Alg::Ps256, &key, Some("fed-2026")).unwrap();
    check(&fed, &es256());
}

#[test]
fn es256_entity_configuration_verified_by_pyjwt() {
    check(&es256(), &es256());
}

#[test]
fn invalid_settings_refused_before_signing() {
    let rng = SystemRandom::new();
    let signer = es256();
    let core = Jwks::from_keys(vec![es256().jwk().clone()])
        .unwrap()
        .to_value();
    let mut bad = rp(core.clone());
    bad.entity_id = "http://varco.example.it".into();
    let e = bad.sign(&signer, &[], NOW, 60, &rng).unwrap_err();
    assert_eq!(e.code(), "oidfed.config");
    let mut bad = rp(core.clone());
    bad.authority_hints.clear();
    assert!(bad.sign(&signer, &[], NOW, 60, &rng).is_err());
    let mut bad = rp(core);
    bad.rp_jwks = json!({"keys": [{"kty": "oct", "kid": "s", "k": "AA"}]});
    assert!(bad.sign(&signer, &[], NOW, 60, &rng).is_err());
}

#[test]
fn next_key_published_for_rollover() {
    let rng = SystemRandom::new();
    let current = es256();
    let next = es256();
    let core = Jwks::from_keys(vec![es256().jwk().clone()])
        .unwrap()
        .to_value();
    let token = rp(core)
        .sign(&current, &[next.jwk().clone()], NOW, 60, &rng)
        .unwrap();
    let st = Statement::decode(&token, &Limits::default(), false).unwrap();
    assert_eq!(st.jwks().keys().len(), 2);
    assert!(st.jwks().get(next.kid()).is_some());
}

/// Our Entity Configuration as the leaf of a chain: a Trust Anchor with the relying-party
/// policy the SPID/CIE reference implementation applies by default (spid-cie-oidc 1.6.3,
/// `FEDERATION_DEFAULT_POLICY`), plus the profile's fixed values, resolves it and the trust
/// mark it publishes verifies.
#[test]
fn our_entity_configuration_resolves_under_the_reference_default_policy() {
    use common::fed::Fed;
    use oidfed::trust_mark::{self, Options};
    use oidfed::{ResolverConfig, TrustAnchor, configuration_url};

    let ta = "https://registry.spid.example.it";
    let tm_type = "https://registry.example.it/openid_relying_party/public/";
    let mut f = Fed::new(NOW);
    f.config(
        ta,
        &[],
        json!({"federation_entity": {"organization_name": "TA"}}),
    );
    // The anchor lists itself as the issuer of the RP trust mark (SPID: AgID's registry).
    let ta_claims = json!({
        "iss": ta, "sub": ta, "iat": NOW - 10, "exp": NOW + 3600,
        "jwks": f.jwks(ta).to_value(),
        "metadata": {"federation_entity": {"federation_fetch_endpoint": format!("{ta}/fetch")}},
        "trust_mark_issuers": {tm_type: [ta]}
    });
    let ta_ec = f.sign_as(ta, ta_claims, "entity-statement+jwt");
    f.docs.insert(configuration_url(ta), ta_ec);
    let rp_signer = es256();
    let mark = f.sign_as(
        ta,
        json!({"iss": ta, "sub": "https://varco.example.it", "trust_mark_type": tm_type,
               "iat": NOW - 10, "exp": NOW + 86_400}),
        "trust-mark+jwt",
    );
    let mut ours = rp(Jwks::from_keys(vec![es256().jwk().clone()])
        .unwrap()
        .to_value());
    ours.authority_hints = vec![ta.to_owned()];
    ours.trust_marks = vec![TrustMarkEntry {
        trust_mark_type: tm_type.into(),
        trust_mark: mark,
    }];
    let token = ours
        .sign(&rp_signer, &[], NOW, 86_400, &SystemRandom::new())
        .unwrap();
    f.docs
        .insert(configuration_url("https://varco.example.it"), token);
    let rp_keys = Jwks::from_keys(vec![rp_signer.jwk().clone()])
        .unwrap()
        .to_value();
    f.statement_full(
        ta,
        "https://varco.example.it",
        Some(json!({"openid_relying_party": {
            "grant_types": {"subset_of": ["authorization_code", "refresh_token"]},
            "scope": {"superset_of": ["openid"], "subset_of": ["openid", "offline_access"]},
            "client_registration_types": {"value": ["automatic"]},
            "token_endpoint_auth_method": {"value": "private_key_jwt"},
            "response_types": {"subset_of": ["code"], "essential": true},
            "redirect_uris": {"essential": true},
            "jwks": {"essential": true}
        }})),
        rp_keys,
    );
    let cfg = ResolverConfig::new(vec![TrustAnchor {
        entity_id: ta.into(),
        jwks: f.jwks(ta),
    }]);
    let (r, asked) = common::resolve(&cfg, "https://varco.example.it", NOW, &f.docs);
    let chain = r.unwrap();
    assert_eq!(asked, 3);
    let md = chain.metadata_of("openid_relying_party").unwrap();
    assert_eq!(
        md["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(md["client_registration_types"], json!(["automatic"]));
    let m = trust_mark::require(&chain, &[tm_type], NOW, &Options::default()).unwrap();
    assert_eq!(m.iss, ta);
}
