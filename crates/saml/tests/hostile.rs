//! Issue 17 at the SAML layer: each worst-case input of `testkit::hostile`, through the
//! entry points the broker calls (the SingleLogoutService's two bindings and the ACS's
//! `validate_response`), is refused with its typed error after work bounded by a small
//! constant times its length, counted by `saml_xml::work` (never timed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use saml::{
    Expected, Federation, IdpDescriptor, IncomingSlo, Level, LogoutError, parse_instant,
    validate_logout_request, validate_response,
};
use saml_xml::c14n::OUTPUT_SLACK;
use saml_xml::work;
use testkit::hostile::{self, Parties};
use xmldsig::TrustedKey;

const IDP_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.crt.pem");
const SKEW: Duration = Duration::from_secs(60);
/// The broker's SingleLogoutService body cap (crates/broker/src/routes/slo.rs `MAX_BODY`).
const SLO_BODY: usize = 64 * 1024;

/// Steps per input byte for one message, end to end: form and base64 decoding (2), the
/// parse (`2 + max_attributes / 8` = 6), and two canonicalizations, the signed element's
/// and SignedInfo's (up to 6 each with their output, `crates/saml-xml/tests/work.rs`).
const STEPS_PER_BYTE: u64 = 2 + 6 + 2 * 6;

fn at(s: &str) -> SystemTime {
    parse_instant(s).unwrap()
}

fn idp(p: &Parties) -> IdpDescriptor {
    IdpDescriptor {
        entity_id: p.idp.clone(),
        federation: Federation::Spid,
        sso_redirect_url: Some(format!("{}/sso", p.idp)),
        sso_post_url: None,
        signing_keys: vec![TrustedKey::from_certificate_pem(IDP_CERT).unwrap()],
        single_logout: Vec::new(),
    }
}

fn post_body(xml: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    format!("SAMLRequest={}", hostile::form_encode(&b64)).into_bytes()
}

/// The SLO path for an HTTP-POST body: the error code, and the steps counted.
fn slo_post(body: &[u8], p: &Parties) -> (String, u64) {
    let (r, steps) = work::measure(|| {
        let msg = IncomingSlo::from_post(body)?;
        validate_logout_request(
            &msg,
            &p.destination,
            &idp(p),
            at("2025-03-14T09:27:00Z"),
            SKEW,
            SKEW,
        )
    });
    (code(r), steps)
}

fn slo_redirect(query: &str, p: &Parties) -> (Result<(), LogoutError>, u64) {
    work::measure(|| {
        let msg = IncomingSlo::from_redirect(query)?;
        validate_logout_request(
            &msg,
            &p.destination,
            &idp(p),
            at("2025-03-14T09:27:00Z"),
            SKEW,
            SKEW,
        )
        .map(|_| ())
    })
}

fn code<T>(r: Result<T, LogoutError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(LogoutError::Signature(e)) => e.code().into(),
        Err(e) => e.code().into(),
    }
}

fn assert_bounded(name: &str, bytes: usize, steps: u64) {
    let per_byte = steps as f64 / bytes as f64;
    eprintln!("{name}: {bytes} bytes, {steps} steps, {per_byte:.2} per byte");
    assert!(
        steps <= STEPS_PER_BYTE * bytes as u64 + 2 * OUTPUT_SLACK as u64,
        "{name}: {steps} steps for {bytes} bytes"
    );
}

#[test]
fn the_issue_17_logout_request_is_refused_at_its_prefix_list() {
    // The reported input: 62 KB, thousands of listed prefixes over a deep, wide tree, naming
    // a trusted IdP. It took 16 s of CPU. At 62 KB it is now over the logout message limit
    // (refused after decoding, before any parse); the same shape within the limit is refused
    // when the transform is read, before any canonicalization, by the PrefixList cap.
    let p = Parties::default();
    let xml = hostile::issue17_logout_request(&p, 62 * 1024, 4096);
    let body = post_body(&xml);
    let (code, steps) = slo_post(&body, &p);
    assert_eq!(code, "slo_binding");
    assert_bounded("issue 17 request", body.len(), steps);

    // At 30 KiB its tree is over the logout node limit; at 10 KiB the PrefixList refuses it.
    let xml = hostile::issue17_logout_request(&p, 30 * 1024, 2048);
    let (code, _) = slo_post(&post_body(&xml), &p);
    assert_eq!(code, "xml_too_many_nodes");
    let xml = hostile::issue17_logout_request(&p, 10 * 1024, 1024);
    let body = post_body(&xml);
    let (code, steps) = slo_post(&body, &p);
    assert_eq!(code, "dsig_invalid_prefix_list");
    assert_bounded("issue 17 request, 10 KiB", body.len(), steps);
}

#[test]
fn every_worst_case_logout_request_is_refused_after_linear_work() {
    let p = Parties::default();
    // The largest logout message (its form body fits the SLO cap: base64 is 4/3, and `+`
    // `/` `=` are percent-encoded).
    let largest = saml::MAX_LOGOUT_XML;
    for budget in [8 * 1024, largest] {
        for (name, xml) in hostile::xml_shapes(&p, budget, xmldsig::MAX_INCLUSIVE_PREFIXES) {
            let body = post_body(&xml);
            assert!(body.len() <= SLO_BODY, "{name}: body {}", body.len());
            let (code, steps) = slo_post(&body, &p);
            // None is signed by the IdP's key: each must be refused, whatever the reason.
            assert_ne!(code, "ok", "{name}");
            assert_bounded(
                &format!("{name} {}k: {code}", budget / 1024),
                body.len(),
                steps,
            );
        }
    }
}

#[test]
fn every_worst_case_document_at_the_acs_is_refused_after_linear_work() {
    // The same shapes as the ACS sees them (a LogoutRequest root is refused as not a
    // Response, after the parse), and as a Response root.
    let p = Parties::default();
    let expected = Expected {
        request_id: "_4d38c302617b5bf98951e65b4cf304711e2166df20",
        acs_url: &p.destination,
        sp_entity_id: "https://sp.varco.example.org",
        requested_level: Level::L2,
        idp_entity_id: &p.idp,
        request_issue_instant: at("2025-03-14T09:26:41Z"),
    };
    for (name, xml) in hostile::xml_shapes(&p, 250 * 1024, xmldsig::MAX_INCLUSIVE_PREFIXES) {
        let as_response = xml
            .replace("samlp:LogoutRequest", "samlp:Response")
            .replacen(
                " Version=",
                " InResponseTo=\"_4d38c302617b5bf98951e65b4cf304711e2166df20\" Version=",
                1,
            );
        for doc in [&xml, &as_response] {
            let (r, steps) = work::measure(|| {
                validate_response(
                    doc.as_bytes(),
                    &expected,
                    &idp(&p),
                    at("2025-03-14T09:27:00Z"),
                    SKEW,
                )
            });
            let code = r.map(|_| "ok").unwrap_or_else(|e| e.code());
            assert_ne!(code, "ok", "{name}");
            assert_bounded(&format!("acs {name}: {code}"), doc.len(), steps);
        }
    }
}

#[test]
fn a_deflate_bomb_stops_at_the_ratio_cap() {
    // About 8 KB of query inflating to 8 MB: decoding stops at 32 times the DEFLATE data
    // (or 16 KiB), and never past the 32 KiB logout message limit.
    let p = Parties::default();
    let query = hostile::deflate_bomb_query(8 * 1024 * 1024);
    let (r, steps) = slo_redirect(&query, &p);
    assert_eq!(
        r.unwrap_err(),
        LogoutError::Binding {
            reason: "message inflates beyond the limit"
        }
    );
    eprintln!(
        "deflate bomb: {} bytes of query, {steps} steps",
        query.len()
    );
    assert!(
        steps <= 1 + query.len() as u64 * (1 + 32),
        "{steps} steps for {} bytes",
        query.len()
    );
}

#[test]
fn a_well_compressed_message_inflates_within_the_floor() {
    // Positive control for the ratio: a LogoutRequest of 12 KB that compresses 100:1 is
    // still decoded (it is under the 16 KiB floor), then refused for its missing signature.
    let p = Parties::default();
    let xml = hostile::logout_request(&p, "", "", &" ".repeat(12 * 1024));
    let b64 = base64::engine::general_purpose::STANDARD.encode(hostile::deflate(xml.as_bytes()));
    let query = format!("SAMLRequest={}", hostile::form_encode(&b64));
    let (r, _) = slo_redirect(&query, &p);
    assert_eq!(r.unwrap_err(), LogoutError::Unsigned);
}

#[test]
fn many_query_parameters_and_percent_encoded_forms_cost_their_length() {
    let p = Parties::default();
    // A message small enough for the inflate floor (a 60 KB tree of `<a>` compresses far
    // beyond the ratio and is refused for that).
    let small = hostile::deep_wide_request(&p, 8 * 1024);
    let query = hostile::many_params_query(&small, 200 * 1024);
    let (r, steps) = slo_redirect(&query, &p);
    assert_eq!(r.unwrap_err(), LogoutError::Unsigned);
    assert_bounded("many parameters", query.len(), steps);

    let xml = hostile::deep_wide_request(&p, 16 * 1024);
    let body = hostile::percent_heavy_form("SAMLRequest", &xml, SLO_BODY);
    let (code, steps) = slo_post(&body, &p);
    assert_ne!(code, "ok");
    assert_bounded("percent-encoded form", body.len(), steps);
}

#[test]
fn a_logout_message_over_its_size_limit_is_refused_by_either_binding() {
    // The limit is a binding error before any parse; one byte under it the message reaches
    // validation (and is refused there, unsigned: the positive control).
    let p = Parties::default();
    let pad = |n: usize| {
        let bare = hostile::logout_request(&p, "", "", "");
        hostile::logout_request(&p, "", "", &" ".repeat(n - bare.len()))
    };
    let over = pad(saml::MAX_LOGOUT_XML + 1);
    let at = pad(saml::MAX_LOGOUT_XML);
    assert_eq!(over.len(), saml::MAX_LOGOUT_XML + 1);

    let (code, _) = slo_post(&post_body(&over), &p);
    assert_eq!(code, "slo_binding");
    let (code, _) = slo_post(&post_body(&at), &p);
    assert_eq!(code, "slo_unsigned");

    // HTTP-Redirect: filler of hex digests (compresses about 2:1), so the ratio cap is not
    // what refuses it.
    let redirect = |xml: &str| {
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(hostile::deflate(xml.as_bytes()));
        format!("SAMLRequest={}", hostile::form_encode(&b64))
    };
    let noisy = |n: usize| {
        let bare = hostile::logout_request(&p, "", "", "");
        let mut filler = String::new();
        let mut i = 0u64;
        while filler.len() < n - bare.len() {
            let d = ring::digest::digest(&ring::digest::SHA256, &i.to_be_bytes());
            filler.extend(d.as_ref().iter().map(|b| format!("{b:02x}")));
            i += 1;
        }
        filler.truncate(n - bare.len());
        hostile::logout_request(&p, "", "", &format!("<!--{}-->", &filler[7..]))
    };
    let (r, _) = slo_redirect(&redirect(&noisy(saml::MAX_LOGOUT_XML + 1)), &p);
    assert_eq!(
        r.unwrap_err(),
        LogoutError::Binding {
            reason: "message inflates beyond the limit"
        }
    );
    let (r, _) = slo_redirect(&redirect(&noisy(saml::MAX_LOGOUT_XML)), &p);
    assert_eq!(r.unwrap_err(), LogoutError::Unsigned);
}

#[test]
fn a_body_without_a_valid_signature_is_never_canonicalized_whole() {
    // The signature over SignedInfo is checked before the reference digest, so a worst-case
    // body that no trusted key signed costs its parse, a canonical SignedInfo (a few hundred
    // bytes) and one RSA verification: the verifier's own work does not grow with the body.
    // Counted for each shape at 8 KiB and at the largest document, the verifier's steps must
    // stay under a constant far below either body's size.
    const VERIFY_STEPS: u64 = 8 * 1024;
    let p = Parties::default();
    let keys = [TrustedKey::from_certificate_pem(IDP_CERT).unwrap()];
    for budget in [8 * 1024, 250 * 1024] {
        for (name, xml) in hostile::xml_shapes(&p, budget, xmldsig::MAX_INCLUSIVE_PREFIXES) {
            let doc =
                saml_xml::Document::parse(xml.as_bytes(), &saml_xml::Limits::default()).unwrap();
            let root = doc.root();
            let (r, steps) =
                work::measure(|| xmldsig::verify(root, &keys, &xmldsig::Policy::default()));
            let code = r.map(|_| "ok").unwrap_or_else(|e| e.code());
            eprintln!("{name} {}k: {code}, {steps} verifier steps", budget / 1024);
            assert!(
                matches!(code, "dsig_bad_signature" | "dsig_invalid_prefix_list"),
                "{name}: {code}"
            );
            assert!(
                steps <= VERIFY_STEPS,
                "{name} {}k: {steps} steps",
                budget / 1024
            );
        }
    }
}
