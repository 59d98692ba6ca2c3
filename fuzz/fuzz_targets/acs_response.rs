//! The ACS input path: an `application/x-www-form-urlencoded` body → `SAMLResponse` →
//! base64 → `saml::validate_response`, as the broker runs it. Never a panic, and never `Ok`:
//! the trusted IdP key (`idp-rsa3072`) signed no seed and cannot be used by the fuzzer, so
//! an accepted Response would be a forgery.

#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use saml::{Expected, Federation, IdpDescriptor, Level, validate_response};
use xmldsig::TrustedKey;

static IDP: LazyLock<IdpDescriptor> = LazyLock::new(|| IdpDescriptor {
    entity_id: "https://idp.spid.example.org".into(),
    federation: Federation::Spid,
    sso_redirect_url: Some("https://idp.spid.example.org/sso".into()),
    sso_post_url: None,
    signing_keys: vec![
        TrustedKey::from_certificate_der(include_bytes!(
            "../../crates/xmldsig/tests/keys/idp-rsa3072.crt.der"
        ))
        .expect("test certificate"),
    ],
    single_logout: Vec::new(),
});

fuzz_target!(|body: &[u8]| {
    let Some(encoded) = form_urlencoded::parse(body)
        .find(|(k, _)| k == "SAMLResponse")
        .map(|(_, v)| v.into_owned())
    else {
        return;
    };
    let compact: Vec<u8> = encoded
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let Ok(xml) = base64::engine::general_purpose::STANDARD.decode(compact) else {
        return;
    };
    let request_id = saml::response_in_response_to(&xml).unwrap_or_default();
    // The fixture's instants: 2025-03-14T09:26:53Z.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_741_944_413);
    let expected = Expected {
        request_id: &request_id,
        acs_url: "https://sp.varco.example.org/saml/acs",
        sp_entity_id: "https://sp.varco.example.org",
        requested_level: Level::L2,
        idp_entity_id: &IDP.entity_id,
        request_issue_instant: now - Duration::from_secs(5),
    };
    match validate_response(&xml, &expected, &IDP, now, Duration::from_secs(60)) {
        Ok(a) => panic!("accepted a Response no trusted key signed: {}", a.id),
        Err(e) => {
            std::hint::black_box((e.code(), e.to_string()));
        }
    }
});
