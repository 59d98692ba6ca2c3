//! Response validation end to end: SPID Responses built from the xmldsig fixture template
//! (`response-spid.xml`, its signature templates stripped), changed one defect at a time, and
//! signed with `xmldsig::sign_enveloped` (the Assertion first, then the Response) with the
//! test IdP key. One named test per rule; numbers in comments are spid-sp-test's Response
//! cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use saml::{
    Assertion, Error, Expected, Federation, IdpDescriptor, Lang, Level, anomaly_message,
    parse_instant, response_in_response_to, validate_response,
};
use saml_xml::{Document, Limits};
use xmldsig::{DigestMethod, SignatureMethod, SigningKey, TrustedKey, sign_enveloped};

const TEMPLATE: &str = include_str!("../../xmldsig/tests/fixtures/response-spid.xml");
const IDP_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.key.pem");
const IDP_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.crt.pem");
const ATTACKER_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/attacker-rsa2048.key.pem");
const ATTACKER_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/attacker-rsa2048.crt.pem");

const IDP: &str = "https://idp.spid.example.org";
const SP: &str = "https://sp.varco.example.org";
const ACS: &str = "https://sp.varco.example.org/saml/acs";
const REQUEST_ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";
const RESPONSE_ID: &str = "_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b";
const ASSERTION_ID: &str = "_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f";
const NAME_ID: &str = "_e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0";

const ISSUER: &str = "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">https://idp.spid.example.org</saml:Issuer>";
const ASSERTION_OPEN: &str = "<saml:Assertion ID=\"_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f\" Version=\"2.0\" IssueInstant=\"2025-03-14T09:26:53Z\">";
const NAME_ID_EL: &str = "<saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\" NameQualifier=\"https://idp.spid.example.org\">_e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0</saml:NameID>";
const SC_OPEN: &str = "<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">";
const SCD: &str = "<saml:SubjectConfirmationData Recipient=\"https://sp.varco.example.org/saml/acs\" NotOnOrAfter=\"2025-03-14T09:31:53Z\" InResponseTo=\"_4d38c302617b5bf98951e65b4cf304711e2166df20\"/>";
const CONDITIONS_OPEN: &str =
    "<saml:Conditions NotBefore=\"2025-03-14T09:26:53Z\" NotOnOrAfter=\"2025-03-14T09:31:53Z\">";
const AUDIENCE_RESTRICTION: &str = "<saml:AudienceRestriction>\n        <saml:Audience>https://sp.varco.example.org</saml:Audience>\n      </saml:AudienceRestriction>";
const CLASS_REF: &str =
    "<saml:AuthnContextClassRef>https://www.spid.gov.it/SpidL2</saml:AuthnContextClassRef>";
const STATUS: &str = "<samlp:Status>\n    <samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Success\"/>\n  </samlp:Status>";

const SKEW: Duration = Duration::from_secs(60);

fn at(s: &str) -> SystemTime {
    parse_instant(s).expect(s)
}

/// 7 s after the Response was issued, well inside its 5-minute window.
fn now() -> SystemTime {
    at("2025-03-14T09:27:00Z")
}

fn idp_key() -> SigningKey {
    SigningKey::from_pem(IDP_KEY, IDP_CERT).unwrap()
}

fn attacker_key() -> SigningKey {
    SigningKey::from_pem(ATTACKER_KEY, ATTACKER_CERT).unwrap()
}

fn idp() -> IdpDescriptor {
    IdpDescriptor {
        entity_id: IDP.into(),
        federation: Federation::Spid,
        sso_redirect_url: Some(format!("{IDP}/sso")),
        sso_post_url: Some(format!("{IDP}/sso")),
        signing_keys: vec![TrustedKey::from_certificate_pem(IDP_CERT).unwrap()],
        single_logout: Vec::new(),
    }
}

fn expected() -> Expected<'static> {
    Expected {
        request_id: REQUEST_ID,
        acs_url: ACS,
        sp_entity_id: SP,
        requested_level: Level::L2,
        idp_entity_id: IDP,
        request_issue_instant: at("2025-03-14T09:26:41Z"),
    }
}

/// The fixture with its `ds:Signature` templates removed.
fn unsigned_template() -> String {
    let mut xml = TEMPLATE.to_owned();
    while let Some(start) = xml.find("<ds:Signature>") {
        let end = xml[start..].find("</ds:Signature>").unwrap() + start;
        xml.replace_range(start..end + "</ds:Signature>".len(), "");
    }
    xml
}

/// Which key, if any, signs a part.
#[derive(Clone, Copy)]
enum Signer {
    None,
    Idp,
    Attacker,
}

/// A Response under construction: edits apply to the unsigned text, then it is signed.
struct Build {
    xml: String,
    assertion: Signer,
    response: Signer,
}

impl Build {
    fn new() -> Self {
        Build {
            xml: unsigned_template(),
            assertion: Signer::Idp,
            response: Signer::Idp,
        }
    }

    /// Replaces the one occurrence of `from`.
    fn set(self, from: &str, to: &str) -> Self {
        assert_eq!(self.xml.matches(from).count(), 1, "not unique: {from}");
        self.set_nth(from, to, 0)
    }

    /// Replaces the `n`th (0-based) occurrence of `from`.
    fn set_nth(mut self, from: &str, to: &str, n: usize) -> Self {
        let (at, _) = self.xml.match_indices(from).nth(n).expect(from);
        self.xml.replace_range(at..at + from.len(), to);
        self
    }

    fn sign_assertion(mut self, s: Signer) -> Self {
        self.assertion = s;
        self
    }

    fn sign_response(mut self, s: Signer) -> Self {
        self.response = s;
        self
    }

    fn signed(&self) -> String {
        let (response_id, assertion_id) = {
            let doc = Document::parse(self.xml.as_bytes(), &Limits::default()).unwrap();
            let root = doc.root();
            let assertion = root
                .child_elements()
                .find(|c| c.local_name() == "Assertion")
                .and_then(|a| a.attribute("ID").map(str::to_owned));
            (root.attribute("ID").map(str::to_owned), assertion)
        };
        let mut xml = self.xml.clone();
        for (signer, id) in [(self.assertion, assertion_id), (self.response, response_id)] {
            let key = match signer {
                Signer::None => continue,
                Signer::Idp => idp_key(),
                Signer::Attacker => attacker_key(),
            };
            let Some(id) = id.filter(|id| !id.is_empty()) else {
                continue;
            };
            xml = sign_enveloped(
                &xml,
                &id,
                &key,
                SignatureMethod::RsaSha256,
                DigestMethod::Sha256,
            )
            .unwrap();
        }
        xml
    }

    fn validate(&self) -> Result<Assertion, Error> {
        validate_response(self.signed().as_bytes(), &expected(), &idp(), now(), SKEW)
    }

    #[track_caller]
    fn refused(&self) -> Error {
        match self.validate() {
            Ok(a) => panic!("accepted: {a:?}"),
            Err(e) => e,
        }
    }
}

#[track_caller]
fn refused_with(build: Build, code: &str) -> Error {
    let e = build.refused();
    assert_eq!(e.code(), code, "{e}");
    e
}

// === Accepted ===

#[test]
fn correct_response_is_accepted_with_every_field() {
    let a = Build::new().validate().unwrap();
    assert_eq!(a.id, ASSERTION_ID);
    assert_eq!(a.response_id, RESPONSE_ID);
    assert_eq!(a.issuer, IDP);
    assert_eq!(a.name_id, NAME_ID);
    assert_eq!(a.name_qualifier, IDP);
    assert_eq!(
        a.session_index.as_deref(),
        Some("_c0ffee5e55101d2b8a7f6e5d4c3b2a1908f7e6d5")
    );
    assert_eq!(a.level, Level::L2);
    assert_eq!(a.authn_instant, at("2025-03-14T09:26:51Z"));
    assert_eq!(a.not_on_or_after, at("2025-03-14T09:31:53Z"));
    assert_eq!(a.attributes.len(), 19);
    assert_eq!(
        a.attributes[0],
        ("spidCode".into(), vec!["SPID-0021A9B3C7D5E".into()])
    );
    assert_eq!(
        a.attribute("fiscalNumber"),
        Some(&["TINIT-RSSMRA80A01H501U".to_owned()][..])
    );
    assert_eq!(a.attribute("nope"), None);
}

#[test]
fn response_issuer_without_format_is_accepted() {
    // 31
    let b = Build::new().set_nth(
        ISSUER,
        "<saml:Issuer>https://idp.spid.example.org</saml:Issuer>",
        0,
    );
    assert!(b.validate().is_ok());
}

#[test]
fn fractional_seconds_are_accepted() {
    // 110
    let b = Build::new().set(
        "IssueInstant=\"2025-03-14T09:26:53Z\"\n",
        "IssueInstant=\"2025-03-14T09:26:53.123456Z\"\n",
    );
    assert!(b.validate().is_ok());
}

#[test]
fn unsigned_response_with_signed_assertion_is_accepted() {
    // SPID: the Response signature is optional, the Assertion's mandatory.
    assert!(Build::new().sign_response(Signer::None).validate().is_ok());
}

#[test]
fn higher_level_than_requested_is_accepted() {
    // 96 with an L2 request
    let b = Build::new().set(
        CLASS_REF,
        "<saml:AuthnContextClassRef>https://www.spid.gov.it/SpidL3</saml:AuthnContextClassRef>",
    );
    assert_eq!(b.validate().unwrap().level, Level::L3);
}

#[test]
fn name_id_white_space_is_trimmed_and_session_index_is_optional() {
    let b = Build::new()
        .set(
            &format!(">{NAME_ID}<"),
            &format!(">\n        {NAME_ID}\n    <"),
        )
        .set(
            " SessionIndex=\"_c0ffee5e55101d2b8a7f6e5d4c3b2a1908f7e6d5\"",
            "",
        );
    let a = b.validate().unwrap();
    assert_eq!(a.name_id, NAME_ID);
    assert_eq!(a.session_index, None);
}

#[test]
fn times_within_the_skew_are_accepted() {
    let xml = Build::new().signed();
    // Just before NotOnOrAfter + skew.
    let late = at("2025-03-14T09:32:52Z");
    assert!(validate_response(xml.as_bytes(), &expected(), &idp(), late, SKEW).is_ok());
    // IdP clock ahead of ours by less than the skew.
    let early = at("2025-03-14T09:26:00Z");
    assert!(validate_response(xml.as_bytes(), &expected(), &idp(), early, SKEW).is_ok());
}

#[test]
fn cie_assertion_issuer_may_omit_format() {
    let b = Build::new().set_nth(
        ISSUER,
        "<saml:Issuer>https://idp.spid.example.org</saml:Issuer>",
        1,
    );
    let mut cie = idp();
    cie.federation = Federation::Cie;
    let xml = b.signed();
    assert!(validate_response(xml.as_bytes(), &expected(), &cie, now(), SKEW).is_ok());
    // SPID (71) and eIDAS require it.
    assert_eq!(b.refused().code(), "saml_issuer_format");
    let mut eidas = idp();
    eidas.federation = Federation::Eidas;
    let e = validate_response(xml.as_bytes(), &expected(), &eidas, now(), SKEW).unwrap_err();
    assert_eq!(e.code(), "saml_issuer_format");
}

#[test]
fn in_response_to_helper_reads_the_unverified_value() {
    let xml = Build::new().signed();
    assert_eq!(
        response_in_response_to(xml.as_bytes()).as_deref(),
        Some(REQUEST_ID)
    );
}

// === Document and Response envelope ===

#[test]
fn malformed_xml_is_refused_with_the_parser_code() {
    let e = validate_response(b"<x", &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e.code(), "xml_malformed");
    let doctype = format!("<!DOCTYPE x>{}", Build::new().signed());
    let e = validate_response(doctype.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert!(matches!(e, Error::Xml(_)));
}

#[test]
fn root_other_than_response_is_refused() {
    let xml = format!("<samlp:LogoutResponse xmlns:samlp=\"{}\"/>", saml::SAMLP_NS);
    let e = validate_response(xml.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::NotAResponse);
}

#[test]
fn response_id_empty_or_missing_is_refused() {
    // 8, 9
    let id = format!("ID=\"{RESPONSE_ID}\"");
    refused_with(Build::new().set(&id, "ID=\"\""), "saml_missing_attribute");
    refused_with(Build::new().set(&id, ""), "saml_missing_attribute");
}

#[test]
fn response_version_other_than_2_0_is_refused() {
    // 10
    let e = refused_with(
        Build::new().set("Version=\"2.0\"\n", "Version=\"1.0\"\n"),
        "saml_unsupported_version",
    );
    assert_eq!(
        e,
        Error::UnsupportedVersion {
            element: "Response"
        }
    );
}

#[test]
fn response_issue_instant_missing_or_malformed_is_refused() {
    // 11, 12, 13
    let from = "IssueInstant=\"2025-03-14T09:26:53Z\"\n";
    refused_with(
        Build::new().set(from, "IssueInstant=\"\"\n"),
        "saml_missing_attribute",
    );
    refused_with(Build::new().set(from, "\n"), "saml_missing_attribute");
    refused_with(
        Build::new().set(from, "IssueInstant=\"2018-09-04\"\n"),
        "saml_malformed_instant",
    );
}

#[test]
fn response_issued_before_the_request_is_refused() {
    // 14
    let b = Build::new().set(
        "IssueInstant=\"2025-03-14T09:26:53Z\"\n",
        "IssueInstant=\"2018-01-01T00:00:00Z\"\n",
    );
    let e = refused_with(b, "saml_issued_before_request");
    assert_eq!(
        e,
        Error::IssuedBeforeRequest {
            element: "Response"
        }
    );
}

#[test]
fn response_issued_in_the_future_is_refused() {
    // 15
    let b = Build::new().set(
        "IssueInstant=\"2025-03-14T09:26:53Z\"\n",
        "IssueInstant=\"2099-01-01T00:00:00Z\"\n",
    );
    refused_with(b, "saml_issued_in_future");
}

#[test]
fn response_in_response_to_empty_missing_or_wrong_is_refused() {
    // 16, 17, 18 (Response side)
    let from = format!("InResponseTo=\"{REQUEST_ID}\">");
    refused_with(
        Build::new().set(&from, "InResponseTo=\"\">"),
        "saml_missing_attribute",
    );
    refused_with(Build::new().set(&from, ">"), "saml_missing_attribute");
    let e = refused_with(
        Build::new().set(&from, "InResponseTo=\"_other\">"),
        "saml_in_response_to_mismatch",
    );
    assert_eq!(
        e,
        Error::InResponseToMismatch {
            element: "Response"
        }
    );
}

#[test]
fn wrong_destination_is_refused() {
    // 19, 20, 21
    let from = format!("Destination=\"{ACS}\"");
    refused_with(
        Build::new().set(&from, "Destination=\"\""),
        "saml_missing_attribute",
    );
    refused_with(Build::new().set(&from, ""), "saml_missing_attribute");
    let e = refused_with(
        Build::new().set(&from, "Destination=\"https://evil.example.org/acs\""),
        "saml_destination_mismatch",
    );
    assert_eq!(e, Error::DestinationMismatch);
}

#[test]
fn missing_or_empty_status_is_refused() {
    // 22, 23, 24
    refused_with(
        Build::new().set(STATUS, "<samlp:Status></samlp:Status>"),
        "saml_missing_status",
    );
    refused_with(Build::new().set(STATUS, ""), "saml_missing_status");
    refused_with(
        Build::new().set(
            STATUS,
            "<samlp:Status><samlp:StatusCode Value=\"\"/></samlp:Status>",
        ),
        "saml_missing_status",
    );
}

#[test]
fn unknown_status_code_is_refused() {
    // 26
    let b = Build::new().set(
        STATUS,
        "<samlp:Status><samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Whatever\"/></samlp:Status>",
    );
    let e = refused_with(b, "saml_status");
    assert!(matches!(
        e,
        Error::Status {
            spid_error: None,
            ..
        }
    ));
}

fn spid_failure(nr: u8) -> Build {
    let status = format!(
        "<samlp:Status>\
         <samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:Responder\">\
         <samlp:StatusCode Value=\"urn:oasis:names:tc:SAML:2.0:status:AuthnFailed\"/>\
         </samlp:StatusCode>\
         <samlp:StatusMessage>ErrorCode nr{nr}</samlp:StatusMessage>\
         </samlp:Status>"
    );
    // A failed Response carries no Assertion.
    let mut b = Build::new().set(STATUS, &status);
    let start = b.xml.find("<saml:Assertion ").unwrap();
    let end = b.xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    b.xml.replace_range(start..end, "");
    b.sign_assertion(Signer::None)
}

#[test]
fn spid_user_anomalies_19_to_25_are_mapped() {
    // 104-108, 111
    for nr in [19u8, 20, 21, 22, 23, 25] {
        let e = spid_failure(nr).refused();
        let Error::Status {
            code,
            sub_code,
            message,
            spid_error,
        } = &e
        else {
            panic!("nr{nr}: {e:?}");
        };
        assert_eq!(code, "urn:oasis:names:tc:SAML:2.0:status:Responder");
        assert_eq!(
            sub_code.as_deref(),
            Some("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed")
        );
        assert_eq!(
            message.as_deref(),
            Some(format!("ErrorCode nr{nr}").as_str())
        );
        assert_eq!(*spid_error, Some(nr));
        assert!(anomaly_message(nr, Lang::It).is_some());
        assert!(anomaly_message(nr, Lang::En).is_some());
    }
    // 24 is reserved: parsed, but no user message.
    let e = spid_failure(24).refused();
    assert!(matches!(
        e,
        Error::Status {
            spid_error: Some(24),
            ..
        }
    ));
    assert_eq!(anomaly_message(24, Lang::It), None);
}

#[test]
fn unsigned_status_error_still_needs_the_envelope_to_match() {
    let b = spid_failure(19).set(
        &format!("InResponseTo=\"{REQUEST_ID}\">"),
        "InResponseTo=\"_other\">",
    );
    refused_with(b, "saml_in_response_to_mismatch");
}

#[test]
fn response_issuer_empty_missing_wrong_or_bad_format_is_refused() {
    // 27, 28, 29, 30
    let e = refused_with(
        Build::new().set_nth(ISSUER, "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\"></saml:Issuer>", 0),
        "saml_issuer_mismatch",
    );
    assert_eq!(
        e,
        Error::IssuerMismatch {
            element: "Response/Issuer"
        }
    );
    refused_with(Build::new().set_nth(ISSUER, "", 0), "saml_missing_element");
    refused_with(
        Build::new().set_nth(
            ISSUER,
            "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">https://idp.spid.example.org.evil</saml:Issuer>",
            0,
        ),
        "saml_issuer_mismatch",
    );
    refused_with(
        Build::new().set_nth(
            ISSUER,
            "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\">https://idp.spid.example.org</saml:Issuer>",
            0,
        ),
        "saml_issuer_format",
    );
}

#[test]
fn caller_disagreeing_on_the_idp_fails_closed() {
    let xml = Build::new().signed();
    let mut other = expected();
    other.idp_entity_id = "https://other-idp.example.org";
    let e = validate_response(xml.as_bytes(), &other, &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e.code(), "saml_issuer_mismatch");
}

// === Signatures and assertion count ===

#[test]
fn unsigned_response_and_assertion_is_refused() {
    // 2
    let e = refused_with(
        Build::new()
            .sign_assertion(Signer::None)
            .sign_response(Signer::None),
        "saml_assertion_signature",
    );
    assert_eq!(e, Error::AssertionSignature(xmldsig::Error::Unsigned));
}

#[test]
fn signed_response_with_unsigned_assertion_is_refused() {
    // 3
    let e = refused_with(
        Build::new().sign_assertion(Signer::None),
        "saml_assertion_signature",
    );
    assert_eq!(e, Error::AssertionSignature(xmldsig::Error::Unsigned));
}

#[test]
fn signatures_by_another_key_are_refused() {
    // 4, 5, 100: the attacker's certificate is in KeyInfo.
    let e = refused_with(
        Build::new()
            .sign_assertion(Signer::Attacker)
            .sign_response(Signer::Attacker),
        "saml_response_signature",
    );
    assert!(matches!(e, Error::ResponseSignature(_)));
    refused_with(
        Build::new().sign_assertion(Signer::Attacker),
        "saml_assertion_signature",
    );
    refused_with(
        Build::new().sign_response(Signer::Attacker),
        "saml_response_signature",
    );
    refused_with(
        Build::new()
            .sign_assertion(Signer::Attacker)
            .sign_response(Signer::None),
        "saml_assertion_signature",
    );
}

#[test]
fn no_trusted_key_fails_closed() {
    let xml = Build::new().sign_response(Signer::None).signed();
    let mut keyless = idp();
    keyless.signing_keys.clear();
    let e = validate_response(xml.as_bytes(), &expected(), &keyless, now(), SKEW).unwrap_err();
    assert_eq!(e, Error::AssertionSignature(xmldsig::Error::NoTrustedKeys));
}

#[test]
fn content_changed_after_signing_is_refused() {
    let xml = Build::new().sign_response(Signer::None).signed();
    let tampered = xml.replace("TINIT-RSSMRA80A01H501U", "TINIT-RSSMRA80A01H501V");
    let e = validate_response(tampered.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::AssertionSignature(xmldsig::Error::DigestMismatch));

    let xml = Build::new().signed();
    let tampered = xml.replace("TINIT-RSSMRA80A01H501U", "TINIT-RSSMRA80A01H501V");
    let e = validate_response(tampered.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::ResponseSignature(xmldsig::Error::DigestMismatch));
}

/// The signed Assertion's text, signature included.
fn assertion_text(xml: &str) -> &str {
    let start = xml.find("<saml:Assertion ").unwrap();
    let end = xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    &xml[start..end]
}

/// An unsigned look-alike of the Assertion for another user, with a fresh ID.
fn evil_assertion(xml: &str) -> String {
    let mut evil = assertion_text(xml)
        .replace(ASSERTION_ID, "_evil0000000000000000000000000000000000")
        .replace("TINIT-RSSMRA80A01H501U", "TINIT-VRDGPP13R10B293P");
    if let Some(start) = evil.find("<ds:Signature") {
        let end = evil.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        evil.replace_range(start..end, "");
    }
    evil
}

#[test]
fn two_assertions_are_refused() {
    // xsw3: unsigned evil Assertion before the signed one (Response unsigned).
    let xml = Build::new().sign_response(Signer::None).signed();
    let at = xml.find("<saml:Assertion ").unwrap();
    let mut wrapped = xml.clone();
    wrapped.insert_str(at, &evil_assertion(&xml));
    let e = validate_response(wrapped.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::AssertionCount { found: 2 });
    // ... and after it.
    let end = xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    let mut wrapped = xml.clone();
    wrapped.insert_str(end, &evil_assertion(&xml));
    let e = validate_response(wrapped.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::AssertionCount { found: 2 });
}

#[test]
fn assertion_hidden_elsewhere_is_refused() {
    // xsw4: the signed Assertion wrapped inside an evil one; xsw7: a copy in Extensions.
    let xml = Build::new().sign_response(Signer::None).signed();
    let signed = assertion_text(&xml).to_owned();
    let evil = evil_assertion(&xml);
    let nested = evil.replace("</saml:Assertion>", &format!("{signed}</saml:Assertion>"));
    let wrapped = xml.replace(&signed, &nested);
    let e = validate_response(wrapped.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::AssertionCount { found: 2 });

    let extensions = format!("<samlp:Extensions>{evil}</samlp:Extensions>");
    let wrapped = xml.replacen(STATUS, &format!("{extensions}{STATUS}"), 1);
    let e = validate_response(wrapped.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::AssertionCount { found: 2 });
}

#[test]
fn missing_assertion_with_success_is_refused() {
    // 32
    let mut b = Build::new().sign_assertion(Signer::None);
    let start = b.xml.find("<saml:Assertion ").unwrap();
    let end = b.xml.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    b.xml.replace_range(start..end, "");
    let e = refused_with(b, "saml_assertion_count");
    assert_eq!(e, Error::AssertionCount { found: 0 });
}

#[test]
fn encrypted_assertion_is_refused() {
    let b = Build::new().set(
        STATUS,
        &format!("{STATUS}<saml:EncryptedAssertion><x/></saml:EncryptedAssertion>"),
    );
    assert_eq!(
        refused_with(b, "saml_encrypted_assertion"),
        Error::EncryptedAssertion
    );
}

#[test]
fn assertion_id_empty_or_missing_is_refused() {
    // 33, 34: nothing can reference the Assertion, so its signature cannot be checked.
    let id = format!("ID=\"{ASSERTION_ID}\"");
    let e = refused_with(Build::new().set(&id, "ID=\"\""), "saml_assertion_signature");
    assert_eq!(e, Error::AssertionSignature(xmldsig::Error::MissingId));
    refused_with(Build::new().set(&id, ""), "saml_assertion_signature");
}

// === Assertion ===

fn assertion_open(version: &str, issue_instant: &str) -> String {
    format!("<saml:Assertion ID=\"{ASSERTION_ID}\"{version}{issue_instant}>")
}

#[test]
fn assertion_version_other_than_2_0_is_refused() {
    // 35
    let b = Build::new().set(
        ASSERTION_OPEN,
        &assertion_open(" Version=\"1.0\"", " IssueInstant=\"2025-03-14T09:26:53Z\""),
    );
    assert_eq!(
        refused_with(b, "saml_unsupported_version"),
        Error::UnsupportedVersion {
            element: "Assertion"
        }
    );
}

#[test]
fn assertion_issue_instant_missing_malformed_early_or_late_is_refused() {
    // 36-40
    let open = |ii: &str| assertion_open(" Version=\"2.0\"", ii);
    let cases = [
        (" IssueInstant=\"\"", "saml_missing_attribute"),
        ("", "saml_missing_attribute"),
        (" IssueInstant=\"2025-03-14\"", "saml_malformed_instant"),
        (
            " IssueInstant=\"2000-01-01T00:00:00Z\"",
            "saml_issued_before_request",
        ),
        (
            " IssueInstant=\"2099-01-01T00:00:00Z\"",
            "saml_issued_in_future",
        ),
    ];
    for (ii, code) in cases {
        refused_with(Build::new().set(ASSERTION_OPEN, &open(ii)), code);
    }
}

#[test]
fn assertion_issuer_missing_wrong_or_bad_format_is_refused() {
    // 68, 69, 70, 72 (71 is in cie_assertion_issuer_may_omit_format)
    refused_with(Build::new().set_nth(ISSUER, "", 1), "saml_missing_element");
    let e = refused_with(
        Build::new().set_nth(
            ISSUER,
            "<saml:Issuer Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:entity\">https://other.example.org</saml:Issuer>",
            1,
        ),
        "saml_issuer_mismatch",
    );
    assert_eq!(
        e,
        Error::IssuerMismatch {
            element: "Assertion/Issuer"
        }
    );
    for format in ["", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"] {
        refused_with(
            Build::new().set_nth(
                ISSUER,
                &format!(
                    "<saml:Issuer Format=\"{format}\">https://idp.spid.example.org</saml:Issuer>"
                ),
                1,
            ),
            "saml_issuer_format",
        );
    }
}

#[test]
fn comment_in_name_id_is_refused() {
    // Duo 2018: `user@example.org<!---->.evil.com`. Exclusive C14N drops comments, so a comment
    // added after signing still verifies; both orders are refused.
    let with_comment = NAME_ID_EL.replace(NAME_ID, "_e1f2a3b4<!-- x -->c5d6");
    let e = refused_with(
        Build::new().set(NAME_ID_EL, &with_comment),
        "saml_comment_in_assertion",
    );
    assert_eq!(e, Error::CommentInAssertion);

    let xml = Build::new().signed();
    let injected = xml.replace(NAME_ID, "_e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0<!---->");
    let e = validate_response(injected.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap_err();
    assert_eq!(e, Error::CommentInAssertion);
}

#[test]
fn processing_instruction_in_assertion_is_refused() {
    let b = Build::new().set(CLASS_REF, &format!("<?pi data?>{CLASS_REF}"));
    refused_with(b, "saml_comment_in_assertion");
}

#[test]
fn advice_is_refused() {
    let b = Build::new().set(
        CONDITIONS_OPEN,
        &format!("<saml:Advice></saml:Advice>{CONDITIONS_OPEN}"),
    );
    assert_eq!(refused_with(b, "saml_advice"), Error::Advice);
}

#[test]
fn subject_empty_or_missing_is_refused() {
    // 41, 42
    let mut b = Build::new();
    let start = b.xml.find("<saml:Subject>").unwrap();
    let end = b.xml.find("</saml:Subject>").unwrap();
    b.xml.replace_range(start + "<saml:Subject>".len()..end, "");
    let e = refused_with(b, "saml_missing_element");
    assert_eq!(
        e,
        Error::MissingElement {
            element: "Assertion/Subject/NameID"
        }
    );
    let mut b = Build::new();
    let end = b.xml.find("</saml:Subject>").unwrap() + "</saml:Subject>".len();
    b.xml.replace_range(start..end, "");
    assert_eq!(
        refused_with(b, "saml_missing_element"),
        Error::MissingElement {
            element: "Assertion/Subject"
        }
    );
}

#[test]
fn duplicate_subject_is_refused() {
    let b = Build::new().set(
        "<saml:Subject>",
        "<saml:Subject></saml:Subject><saml:Subject>",
    );
    assert_eq!(
        refused_with(b, "saml_duplicate_element"),
        Error::DuplicateElement {
            element: "Assertion/Subject"
        }
    );
}

#[test]
fn name_id_empty_or_missing_is_refused() {
    // 43, 44
    let empty = "<saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\" NameQualifier=\"\"></saml:NameID>";
    refused_with(Build::new().set(NAME_ID_EL, empty), "saml_missing_element");
    refused_with(Build::new().set(NAME_ID_EL, ""), "saml_missing_element");
}

#[test]
fn name_id_format_empty_missing_or_not_transient_is_refused() {
    // 45, 46, 47
    let f = "Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\" NameQualifier";
    let with = |s: &str| NAME_ID_EL.replace(f, s);
    refused_with(
        Build::new().set(NAME_ID_EL, &with("Format=\"\" NameQualifier")),
        "saml_missing_attribute",
    );
    refused_with(
        Build::new().set(NAME_ID_EL, &with("NameQualifier")),
        "saml_missing_attribute",
    );
    let e = refused_with(
        Build::new().set(
            NAME_ID_EL,
            &with("Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent\" NameQualifier"),
        ),
        "saml_name_id_format",
    );
    assert_eq!(e, Error::NameIdFormat);
}

#[test]
fn name_qualifier_empty_or_missing_is_refused() {
    // 48, 49
    let q = " NameQualifier=\"https://idp.spid.example.org\"";
    for to in [" NameQualifier=\"\"", ""] {
        let e = refused_with(
            Build::new().set(NAME_ID_EL, &NAME_ID_EL.replace(q, to)),
            "saml_missing_attribute",
        );
        assert_eq!(
            e,
            Error::MissingAttribute {
                element: "Assertion/Subject/NameID",
                attribute: "NameQualifier"
            }
        );
    }
}

#[test]
fn subject_confirmation_missing_is_refused() {
    // 51, 52, 56
    refused_with(Build::new().set(SCD, ""), "saml_missing_element");
    let mut b = Build::new();
    let start = b.xml.find(SC_OPEN).unwrap();
    let end =
        b.xml.find("</saml:SubjectConfirmation>").unwrap() + "</saml:SubjectConfirmation>".len();
    b.xml.replace_range(start..end, "");
    assert_eq!(
        refused_with(b, "saml_missing_element"),
        Error::MissingElement {
            element: "Assertion/Subject/SubjectConfirmation"
        }
    );
}

#[test]
fn subject_confirmation_method_not_bearer_is_refused() {
    // 53, 54, 55
    refused_with(
        Build::new().set(SC_OPEN, "<saml:SubjectConfirmation Method=\"\">"),
        "saml_missing_attribute",
    );
    refused_with(
        Build::new().set(SC_OPEN, "<saml:SubjectConfirmation>"),
        "saml_missing_attribute",
    );
    let e = refused_with(
        Build::new().set(
            SC_OPEN,
            "<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:holder-of-key\">",
        ),
        "saml_not_bearer",
    );
    assert_eq!(e, Error::NotBearer);
}

fn scd(recipient: &str, not_on_or_after: &str, in_response_to: &str) -> String {
    format!("<saml:SubjectConfirmationData{recipient}{not_on_or_after}{in_response_to}/>")
}

const R: &str = " Recipient=\"https://sp.varco.example.org/saml/acs\"";
const N: &str = " NotOnOrAfter=\"2025-03-14T09:31:53Z\"";
const I: &str = " InResponseTo=\"_4d38c302617b5bf98951e65b4cf304711e2166df20\"";

#[test]
fn wrong_recipient_is_refused() {
    // 57, 58, 59
    refused_with(
        Build::new().set(SCD, &scd(" Recipient=\"\"", N, I)),
        "saml_missing_attribute",
    );
    refused_with(
        Build::new().set(SCD, &scd("", N, I)),
        "saml_missing_attribute",
    );
    let e = refused_with(
        Build::new().set(
            SCD,
            &scd(" Recipient=\"https://sp.varco.example.org/other\"", N, I),
        ),
        "saml_recipient_mismatch",
    );
    assert_eq!(e, Error::RecipientMismatch);
}

#[test]
fn subject_confirmation_in_response_to_wrong_is_refused() {
    // 60, 61, 62: the signed copy is checked even when the Response's matches.
    refused_with(
        Build::new().set(SCD, &scd(R, N, " InResponseTo=\"\"")),
        "saml_missing_attribute",
    );
    refused_with(
        Build::new().set(SCD, &scd(R, N, "")),
        "saml_missing_attribute",
    );
    let e = refused_with(
        Build::new().set(SCD, &scd(R, N, " InResponseTo=\"_another_request\"")),
        "saml_in_response_to_mismatch",
    );
    assert!(
        matches!(e, Error::InResponseToMismatch { element } if element.ends_with("SubjectConfirmationData"))
    );
}

#[test]
fn subject_confirmation_not_on_or_after_missing_malformed_or_past_is_refused() {
    // 63, 64, 65, 66
    let cases = [
        (" NotOnOrAfter=\"\"", "saml_missing_attribute"),
        ("", "saml_missing_attribute"),
        (
            " NotOnOrAfter=\"14/03/2025 09:31\"",
            "saml_malformed_instant",
        ),
        (" NotOnOrAfter=\"2000-01-01T00:00:00Z\"", "saml_expired"),
    ];
    for (n, code) in cases {
        refused_with(Build::new().set(SCD, &scd(R, n, I)), code);
    }
}

#[test]
fn expired_assertion_is_refused() {
    let xml = Build::new().signed();
    // NotOnOrAfter 09:31:53 plus 60 s skew.
    let e = validate_response(
        xml.as_bytes(),
        &expected(),
        &idp(),
        at("2025-03-14T09:32:53Z"),
        SKEW,
    )
    .unwrap_err();
    assert_eq!(e.code(), "saml_expired");
}

fn conditions(not_before: &str, not_on_or_after: &str) -> String {
    format!("<saml:Conditions{not_before}{not_on_or_after}>")
}

#[test]
fn conditions_missing_or_without_audience_is_refused() {
    // 73, 74, 83/86
    let e = refused_with(
        Build::new().set(AUDIENCE_RESTRICTION, ""),
        "saml_missing_element",
    );
    assert_eq!(
        e,
        Error::MissingElement {
            element: "Assertion/Conditions/AudienceRestriction"
        }
    );
    let mut b = Build::new();
    let start = b.xml.find(CONDITIONS_OPEN).unwrap();
    let end = b.xml.find("</saml:Conditions>").unwrap() + "</saml:Conditions>".len();
    b.xml.replace_range(start..end, "");
    assert_eq!(
        refused_with(b, "saml_missing_element"),
        Error::MissingElement {
            element: "Assertion/Conditions"
        }
    );
    refused_with(
        Build::new().set(
            AUDIENCE_RESTRICTION,
            "<saml:AudienceRestriction></saml:AudienceRestriction>",
        ),
        "saml_missing_element",
    );
}

#[test]
fn conditions_not_before_missing_malformed_or_future_is_refused() {
    // 75, 76, 77, 78
    let n = " NotOnOrAfter=\"2025-03-14T09:31:53Z\"";
    let cases = [
        (" NotBefore=\"\"", "saml_missing_attribute"),
        ("", "saml_missing_attribute"),
        (" NotBefore=\"2025-03-14T09:26\"", "saml_malformed_instant"),
        (" NotBefore=\"2099-01-01T00:00:00Z\"", "saml_not_yet_valid"),
    ];
    for (nb, code) in cases {
        refused_with(Build::new().set(CONDITIONS_OPEN, &conditions(nb, n)), code);
    }
}

#[test]
fn conditions_not_on_or_after_missing_malformed_or_past_is_refused() {
    // 79, 80, 81, 82
    let nb = " NotBefore=\"2025-03-14T09:26:53Z\"";
    let cases = [
        (" NotOnOrAfter=\"\"", "saml_missing_attribute"),
        ("", "saml_missing_attribute"),
        (" NotOnOrAfter=\"tomorrow\"", "saml_malformed_instant"),
        (" NotOnOrAfter=\"2000-01-01T00:00:00Z\"", "saml_expired"),
    ];
    for (n, code) in cases {
        refused_with(Build::new().set(CONDITIONS_OPEN, &conditions(nb, n)), code);
    }
}

#[test]
fn wrong_audience_is_refused() {
    // 85, 87, and a second restriction that leaves us out
    let aud = "<saml:Audience>https://sp.varco.example.org</saml:Audience>";
    for to in [
        "<saml:Audience></saml:Audience>",
        "<saml:Audience>https://other-sp.example.org</saml:Audience>",
        "<saml:Audience>https://sp.varco.example.org.evil</saml:Audience>",
    ] {
        let e = refused_with(Build::new().set(aud, to), "saml_audience_mismatch");
        assert_eq!(e, Error::AudienceMismatch);
    }
    let b = Build::new().set(
        AUDIENCE_RESTRICTION,
        &format!(
            "{AUDIENCE_RESTRICTION}<saml:AudienceRestriction><saml:Audience>https://other-sp.example.org</saml:Audience></saml:AudienceRestriction>"
        ),
    );
    refused_with(b, "saml_audience_mismatch");
}

#[test]
fn authn_statement_or_context_missing_is_refused() {
    // 88, 89, 90, 92, 93
    let mut b = Build::new();
    let start = b.xml.find("<saml:AuthnStatement ").unwrap();
    let end = b.xml.find("</saml:AuthnStatement>").unwrap() + "</saml:AuthnStatement>".len();
    b.xml.replace_range(start..end, "");
    assert_eq!(
        refused_with(b, "saml_missing_element"),
        Error::MissingElement {
            element: "Assertion/AuthnStatement"
        }
    );
    let mut b = Build::new();
    let start = b.xml.find("<saml:AuthnContext>").unwrap();
    let end = b.xml.find("</saml:AuthnContext>").unwrap() + "</saml:AuthnContext>".len();
    b.xml.replace_range(start..end, "");
    refused_with(b, "saml_missing_element");
    refused_with(Build::new().set(CLASS_REF, ""), "saml_missing_element");
    refused_with(
        Build::new().set(
            CLASS_REF,
            "<saml:AuthnContextClassRef></saml:AuthnContextClassRef>",
        ),
        "saml_unknown_authn_context",
    );
}

#[test]
fn lower_level_than_requested_is_refused() {
    // 94 with an L2 request
    let b = Build::new().set(
        CLASS_REF,
        "<saml:AuthnContextClassRef>https://www.spid.gov.it/SpidL1</saml:AuthnContextClassRef>",
    );
    let e = refused_with(b, "saml_level_too_low");
    assert_eq!(
        e,
        Error::LevelTooLow {
            requested: Level::L2,
            received: Level::L1
        }
    );
}

#[test]
fn unknown_class_ref_is_refused() {
    // 97
    for uri in [
        "urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL1",
        "https://www.spid.gov.it/SpidL4",
        "https://www.spid.gov.it/spidl2",
    ] {
        let b = Build::new().set(
            CLASS_REF,
            &format!("<saml:AuthnContextClassRef>{uri}</saml:AuthnContextClassRef>"),
        );
        assert_eq!(
            refused_with(b, "saml_unknown_authn_context"),
            Error::UnknownAuthnContext
        );
    }
}

#[test]
fn authn_instant_missing_or_malformed_is_refused() {
    let from = "AuthnInstant=\"2025-03-14T09:26:51Z\"";
    refused_with(Build::new().set(from, ""), "saml_missing_attribute");
    refused_with(
        Build::new().set(from, "AuthnInstant=\"2025-03-14T09:26:51+01:00\""),
        "saml_malformed_instant",
    );
}

#[test]
fn empty_attribute_statement_or_attribute_without_value_is_refused() {
    // 98, 99
    let mut b = Build::new();
    let start =
        b.xml.find("<saml:AttributeStatement>").unwrap() + "<saml:AttributeStatement>".len();
    let end = b.xml.find("</saml:AttributeStatement>").unwrap();
    b.xml.replace_range(start..end, "");
    assert_eq!(
        refused_with(b, "saml_malformed_attribute"),
        Error::MalformedAttribute
    );
    let b = Build::new().set(
        "<saml:AttributeValue xsi:type=\"xs:string\">Mario</saml:AttributeValue>",
        "",
    );
    refused_with(b, "saml_malformed_attribute");
    let b = Build::new().set(
        "Name=\"gender\" NameFormat=\"urn:oasis:names:tc:SAML:2.0:attrname-format:basic\"",
        "",
    );
    refused_with(b, "saml_malformed_attribute");
}

#[test]
fn every_error_code_is_distinct_and_prefixed() {
    let samples = [
        Error::NotAResponse,
        Error::MissingElement { element: "x" },
        Error::DuplicateElement { element: "x" },
        Error::MissingAttribute {
            element: "x",
            attribute: "y",
        },
        Error::UnsupportedVersion { element: "x" },
        Error::MalformedInstant {
            element: "x",
            attribute: "y",
        },
        Error::IssuedInFuture { element: "x" },
        Error::IssuedBeforeRequest { element: "x" },
        Error::DestinationMismatch,
        Error::InResponseToMismatch { element: "x" },
        Error::IssuerMismatch { element: "x" },
        Error::IssuerFormat { element: "x" },
        Error::MissingStatus,
        Error::Status {
            code: String::new(),
            sub_code: None,
            message: None,
            spid_error: None,
        },
        Error::AssertionCount { found: 0 },
        Error::EncryptedAssertion,
        Error::ResponseSignature(xmldsig::Error::Unsigned),
        Error::AssertionSignature(xmldsig::Error::Unsigned),
        Error::CommentInAssertion,
        Error::Advice,
        Error::NameIdFormat,
        Error::NotBearer,
        Error::RecipientMismatch,
        Error::Expired { element: "x" },
        Error::NotYetValid,
        Error::AudienceMismatch,
        Error::UnknownAuthnContext,
        Error::LevelTooLow {
            requested: Level::L2,
            received: Level::L1,
        },
        Error::MalformedAttribute,
    ];
    let mut codes: Vec<&str> = samples.iter().map(Error::code).collect();
    assert!(codes.iter().all(|c| c.starts_with("saml_")));
    for e in &samples {
        assert!(!e.to_string().is_empty());
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), samples.len());
}

/// spid-sp-test signs with xmlsec1 and leaves `<ds:X509Certificate/>` empty in every Response,
/// its correct case included. An empty certificate names no key: the trusted keys decide.
#[test]
fn empty_x509_certificate_in_key_info_is_accepted() {
    // Response unsigned, so emptying the Assertion's KeyInfo changes no digest.
    let xml = Build::new().sign_response(Signer::None).signed();
    let start = xml.find("<ds:X509Certificate>").unwrap();
    let end = xml.find("</ds:X509Certificate>").unwrap() + "</ds:X509Certificate>".len();
    let mut emptied = xml;
    emptied.replace_range(start..end, "<ds:X509Certificate/>");
    validate_response(emptied.as_bytes(), &expected(), &idp(), now(), SKEW).unwrap();
}

// === Content model (issue 18) ===

#[test]
fn issue18_foreign_element_among_the_response_children_is_refused() {
    // Signed by the IdP (Response and Assertion): the element is still not allowed there.
    let b = Build::new().set(
        STATUS,
        &format!("{STATUS}<x:Note xmlns:x=\"urn:example:x\">smuggled</x:Note>"),
    );
    assert_eq!(
        refused_with(b, "saml_schema_violation"),
        Error::SchemaViolation {
            element: "Response"
        }
    );
}

#[test]
fn foreign_element_inside_extensions_is_accepted() {
    let b = Build::new().set(
        STATUS,
        &format!(
            "<samlp:Extensions><x:Note xmlns:x=\"urn:example:x\">ok</x:Note></samlp:Extensions>{STATUS}"
        ),
    );
    b.validate().unwrap();
}

#[test]
fn protocol_element_or_text_inside_extensions_is_refused() {
    for inner in ["<samlp:Status/>", "<Note>unqualified</Note>", "stray text"] {
        let b = Build::new().set(
            STATUS,
            &format!("<samlp:Extensions>{inner}</samlp:Extensions>{STATUS}"),
        );
        assert_eq!(
            refused_with(b, "saml_schema_violation"),
            Error::SchemaViolation {
                element: "Extensions"
            },
            "{inner}"
        );
    }
}

#[test]
fn extensions_after_status_is_refused() {
    let b = Build::new().set(
        STATUS,
        &format!("{STATUS}<samlp:Extensions><x:N xmlns:x=\"urn:example:x\"/></samlp:Extensions>"),
    );
    refused_with(b, "saml_schema_violation");
}

#[test]
fn unknown_element_in_the_signed_assertion_is_refused() {
    for unknown in [
        "<saml:Unknown/>",
        "<x:Note xmlns:x=\"urn:example:x\"/>",
        "<samlp:Status/>",
    ] {
        let b = Build::new().set(CONDITIONS_OPEN, &format!("{unknown}{CONDITIONS_OPEN}"));
        assert_eq!(
            refused_with(b, "saml_schema_violation"),
            Error::SchemaViolation {
                element: "Assertion"
            },
            "{unknown}"
        );
    }
}

#[test]
fn conditions_after_the_authn_statement_is_refused() {
    // Same elements, the order the schema fixes broken.
    let mut b = Build::new();
    let start = b.xml.find(CONDITIONS_OPEN).unwrap();
    let end = b.xml.find("</saml:Conditions>").unwrap() + "</saml:Conditions>".len();
    let conditions = b.xml[start..end].to_owned();
    b.xml.replace_range(start..end, "");
    let after = b.xml.find("</saml:AuthnStatement>").unwrap() + "</saml:AuthnStatement>".len();
    b.xml.insert_str(after, &conditions);
    assert_eq!(
        refused_with(b, "saml_schema_violation"),
        Error::SchemaViolation {
            element: "Assertion"
        }
    );
}

#[test]
fn unknown_element_deeper_in_the_assertion_is_refused() {
    let cases = [
        (
            NAME_ID_EL,
            format!("{NAME_ID_EL}<x:Y xmlns:x=\"urn:example:x\"/>"),
            "Subject",
        ),
        (
            AUDIENCE_RESTRICTION,
            format!("{AUDIENCE_RESTRICTION}<saml:Foo/>"),
            "Conditions",
        ),
        (
            CLASS_REF,
            format!("<saml:AuthnContextDeclRef>urn:x</saml:AuthnContextDeclRef>{CLASS_REF}"),
            "AuthnContext",
        ),
        (
            "<saml:Audience>https://sp.varco.example.org</saml:Audience>",
            "<saml:Audience>https://sp.varco.example.org<x:Y xmlns:x=\"urn:example:x\"/></saml:Audience>".to_owned(),
            "Audience",
        ),
        (
            NAME_ID_EL,
            format!("stray text{NAME_ID_EL}"),
            "Subject",
        ),
    ];
    for (from, to, element) in cases {
        let b = Build::new().set(from, &to);
        assert_eq!(
            refused_with(b, "saml_schema_violation"),
            Error::SchemaViolation { element },
            "{to}"
        );
    }
}

#[test]
fn unknown_element_in_an_attribute_is_refused() {
    let mut b = Build::new();
    let at = b.xml.find("</saml:Attribute>").unwrap();
    b.xml.insert_str(at, "<x:Y xmlns:x=\"urn:example:x\"/>");
    assert_eq!(
        refused_with(b, "saml_schema_violation"),
        Error::SchemaViolation {
            element: "Attribute"
        }
    );
}
