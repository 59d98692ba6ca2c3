//! Single Logout: the SP's signed `LogoutRequest` (its shape, and an `xmlsec1 --verify` oracle
//! for the HTTP-POST signature), and validation of the IdP's `LogoutResponse` and
//! IdP-initiated `LogoutRequest` over both bindings, one named test per attack class. IdP
//! messages are built here with the IdP test key (the crate's own builders with the IdP as
//! issuer, or hand-made queries where a test needs to break the encoding).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use saml::{
    ExpectedLogoutResponse, Federation, IdpDescriptor, IncomingSlo, LogoutError, LogoutRequest,
    LogoutResponse, LogoutSubject, STATUS_RESPONDER, STATUS_SUCCESS, SloKind, SpConfig,
    parse_instant, quote_plus, validate_logout_request, validate_logout_response,
};
use saml_xml::{Document, Limits};
use xmldsig::{DigestMethod, SignatureMethod, SigningKey, TrustedKey, sign_enveloped};

const IDP_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.key.pem");
const IDP_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.crt.pem");
const SP_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.key.pem");
const SP_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.crt.pem");
const ATTACKER_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/attacker-rsa2048.key.pem");
const ATTACKER_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/attacker-rsa2048.crt.pem");

const IDP: &str = "https://idp.spid.example.org";
const IDP_SLO: &str = "https://idp.spid.example.org/slo";
const SP: &str = "https://sp.varco.example.org";
const SP_SLO: &str = "https://sp.varco.example.org/saml/slo";
const OUR_REQUEST: &str = "_0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
const THEIR_ID: &str = "_f0e1d2c3b4a5968778695a4b3c2d1e0f12345678";
const NAME_ID: &str = "_e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0";
const SESSION: &str = "_5e551011de8";
const SKEW: Duration = Duration::from_secs(60);
const MAX_AGE: Duration = Duration::from_secs(300);
const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";

fn at(s: &str) -> SystemTime {
    parse_instant(s).unwrap()
}

/// When our request was sent.
fn sent() -> SystemTime {
    at("2025-03-14T09:26:53Z")
}

/// When the answer arrives.
fn now() -> SystemTime {
    at("2025-03-14T09:27:00Z")
}

fn key(k: &[u8], c: &[u8]) -> SigningKey {
    SigningKey::from_pem(k, c).unwrap()
}

fn idp_key() -> SigningKey {
    key(IDP_KEY, IDP_CERT)
}

fn attacker_key() -> SigningKey {
    key(ATTACKER_KEY, ATTACKER_CERT)
}

fn sp() -> SpConfig {
    SpConfig {
        entity_id: SP.into(),
        acs_url: format!("{SP}/saml/acs"),
        acs_index: Some(0),
        attribute_consuming_service_index: Some(0),
    }
}

/// The IdP seen as the issuer of its messages (the builders only use `entity_id`).
fn idp_as_issuer() -> SpConfig {
    SpConfig {
        entity_id: IDP.into(),
        acs_url: String::new(),
        acs_index: None,
        attribute_consuming_service_index: None,
    }
}

fn idp() -> IdpDescriptor {
    IdpDescriptor {
        entity_id: IDP.into(),
        federation: Federation::Spid,
        sso_redirect_url: Some(format!("{IDP}/sso")),
        sso_post_url: None,
        signing_keys: vec![TrustedKey::from_certificate_pem(IDP_CERT).unwrap()],
        single_logout: Vec::new(),
    }
}

fn expected() -> ExpectedLogoutResponse<'static> {
    ExpectedLogoutResponse {
        request_id: OUR_REQUEST,
        request_issue_instant: sent(),
        destination: SP_SLO,
        idp_entity_id: IDP,
    }
}

/// The IdP's `LogoutResponse` XML (unsigned).
fn response_xml(status: &str) -> String {
    LogoutResponse::new(
        &idp_as_issuer(),
        SP_SLO,
        THEIR_ID,
        OUR_REQUEST,
        (status, None),
        now() - Duration::from_secs(2),
    )
    .unwrap()
    .xml()
    .to_owned()
}

/// An IdP-initiated `LogoutRequest` XML (unsigned).
fn request_xml(session_index: Option<&str>) -> String {
    LogoutRequest::new(
        &idp_as_issuer(),
        SP_SLO,
        THEIR_ID,
        &LogoutSubject {
            name_id: NAME_ID,
            name_qualifier: IDP,
            session_index,
        },
        now() - Duration::from_secs(2),
    )
    .unwrap()
    .xml()
    .to_owned()
}

/// An HTTP-Redirect query for `xml` in `param`, signed by `key` with `sig_alg` over the
/// octets as sent (or unsigned with `None`).
fn query(param: &str, xml: &str, relay: &str, signer: Option<(&SigningKey, &str)>) -> String {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(xml.as_bytes()).unwrap();
    let deflated = enc.finish().unwrap();
    let mut q = format!(
        "{param}={}&RelayState={}",
        quote_plus(&base64::engine::general_purpose::STANDARD.encode(deflated)),
        quote_plus(relay)
    );
    if let Some((k, alg)) = signer {
        q.push_str("&SigAlg=");
        q.push_str(&quote_plus(alg));
        let method = SignatureMethod::from_uri(alg).unwrap_or(SignatureMethod::RsaSha256);
        let sig = k.sign(method, q.as_bytes()).unwrap();
        q.push_str("&Signature=");
        q.push_str(&quote_plus(
            &base64::engine::general_purpose::STANDARD.encode(sig),
        ));
    }
    q
}

fn signed_query(param: &str, xml: &str) -> String {
    query(
        param,
        xml,
        "rs1",
        Some((&idp_key(), SignatureMethod::RsaSha256.uri())),
    )
}

/// An HTTP-POST form body for `xml` in `param`, enveloped-signed by `key` (or not).
fn post_body(param: &str, xml: &str, id: &str, signer: Option<&SigningKey>) -> Vec<u8> {
    let xml = match signer {
        Some(k) => sign_enveloped(xml, id, k, k.default_method(), DigestMethod::Sha256).unwrap(),
        None => xml.to_owned(),
    };
    format!(
        "{param}={}&RelayState=rs1",
        quote_plus(&base64::engine::general_purpose::STANDARD.encode(xml))
    )
    .into_bytes()
}

fn check_response(msg: &IncomingSlo) -> Result<saml::ValidLogoutResponse, LogoutError> {
    validate_logout_response(msg, &expected(), &idp(), now(), SKEW)
}

fn check_request(msg: &IncomingSlo) -> Result<saml::ValidLogoutRequest, LogoutError> {
    validate_logout_request(msg, SP_SLO, &idp(), now(), SKEW, MAX_AGE)
}

fn redirect(q: &str) -> IncomingSlo {
    IncomingSlo::from_redirect(q).unwrap()
}

// === Our LogoutRequest ===

#[test]
fn sp_logout_request_has_the_spid_shape() {
    let r = LogoutRequest::new(
        &sp(),
        IDP_SLO,
        OUR_REQUEST,
        &LogoutSubject {
            name_id: NAME_ID,
            name_qualifier: IDP,
            session_index: Some(SESSION),
        },
        sent(),
    )
    .unwrap();
    assert_eq!(r.id(), OUR_REQUEST);
    let doc = Document::parse(r.xml().as_bytes(), &Limits::default()).unwrap();
    let root = doc.root();
    assert!(root.is(saml::SAMLP_NS, "LogoutRequest"));
    assert_eq!(root.attribute("Version"), Some("2.0"));
    assert_eq!(root.attribute("Destination"), Some(IDP_SLO));
    assert_eq!(root.attribute("IssueInstant"), Some("2025-03-14T09:26:53Z"));
    let children: Vec<_> = root.child_elements().collect();
    let names: Vec<&str> = children.iter().map(|e| e.local_name()).collect();
    assert_eq!(names, ["Issuer", "NameID", "SessionIndex"]);
    assert_eq!(children[0].attribute("Format"), Some(saml::NAMEID_ENTITY));
    assert_eq!(children[0].attribute("NameQualifier"), Some(SP));
    assert_eq!(children[0].text(), SP);
    assert_eq!(
        children[1].attribute("Format"),
        Some(saml::NAMEID_TRANSIENT)
    );
    assert_eq!(children[1].attribute("NameQualifier"), Some(IDP));
    assert_eq!(children[1].text(), NAME_ID);
    assert_eq!(children[2].text(), SESSION);
}

#[test]
fn sp_logout_request_redirect_signature_verifies_over_the_query() {
    let r = LogoutRequest::new(
        &sp(),
        IDP_SLO,
        OUR_REQUEST,
        &LogoutSubject {
            name_id: NAME_ID,
            name_qualifier: IDP,
            session_index: Some(SESSION),
        },
        sent(),
    )
    .unwrap();
    let url = r.redirect_url("rs1", &key(SP_KEY, SP_CERT)).unwrap();
    let q = url.strip_prefix(&format!("{IDP_SLO}?")).unwrap();
    let msg = redirect(q);
    assert_eq!(msg.kind(), SloKind::Request);
    assert_eq!(msg.relay_state(), Some("rs1"));
    assert_eq!(msg.xml(), r.xml().as_bytes());
    // Verified as the IdP would, with the SP's key: the decoder's signed octets are right.
    let mut sp_as_idp = idp();
    sp_as_idp.entity_id = SP.into();
    sp_as_idp.signing_keys = vec![TrustedKey::from_certificate_pem(SP_CERT).unwrap()];
    let e = validate_logout_request(&msg, IDP_SLO, &sp_as_idp, now(), SKEW, MAX_AGE)
        .expect("SP request verifies with the SP key");
    assert_eq!(e.session_indexes, [SESSION]);
    assert_eq!(
        validate_logout_request(&msg, IDP_SLO, &idp(), now(), SKEW, MAX_AGE).unwrap_err(),
        LogoutError::RedirectSignature
    );
}

/// The oracle: the HTTP-POST `LogoutRequest` we send verifies with `xmlsec1 --verify`, the
/// key given only as the SP certificate.
#[test]
fn sp_logout_request_post_signature_verifies_with_xmlsec1() {
    let r = LogoutRequest::new(
        &sp(),
        IDP_SLO,
        OUR_REQUEST,
        &LogoutSubject {
            name_id: NAME_ID,
            name_qualifier: IDP,
            session_index: Some(SESSION),
        },
        sent(),
    )
    .unwrap();
    let form = r
        .post_form("rs1", &key(SP_KEY, SP_CERT), Some("n0nce"))
        .unwrap();
    assert!(form.html.contains("name=\"SAMLRequest\""));
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xmldsig/tests/keys");
    let dir = std::env::temp_dir().join(format!("varco-slo-oracle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let verify = |xml: &str, cert: &str| {
        let input = dir.join("logout-request.xml");
        std::fs::write(&input, xml).unwrap();
        std::process::Command::new(xmlsec1())
            .args(["--verify", "--enabled-reference-uris", "same-doc"])
            .args(["--enabled-key-data", "key-name", "--pubkey-cert-pem"])
            .arg(keys.join(cert))
            .args([
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
            ])
            .arg(&input)
            .output()
            .expect("xmlsec1 runs")
    };
    let ok = verify(&form.signed_xml, "sp-rsa2048.crt.pem");
    assert!(
        ok.status.success(),
        "xmlsec1 refused our LogoutRequest: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The oracle is not a rubber stamp: another key, or one altered byte, fails.
    let wrong = verify(&form.signed_xml, "attacker-rsa2048.crt.pem");
    assert!(!wrong.status.success());
    let altered = form.signed_xml.replace(SESSION, "_5e551011de9");
    assert!(!verify(&altered, "sp-rsa2048.crt.pem").status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

fn xmlsec1() -> PathBuf {
    std::env::var_os("XMLSEC1").map_or_else(|| PathBuf::from("xmlsec1"), PathBuf::from)
}

// === The IdP's LogoutResponse ===

#[test]
fn valid_logout_response_is_accepted_by_both_bindings() {
    let xml = response_xml(STATUS_SUCCESS);
    let r = check_response(&redirect(&signed_query("SAMLResponse", &xml))).unwrap();
    assert_eq!(r.id, THEIR_ID);
    let body = post_body("SAMLResponse", &xml, THEIR_ID, Some(&idp_key()));
    let msg = IncomingSlo::from_post(&body).unwrap();
    assert_eq!(msg.in_response_to_hint().as_deref(), Some(OUR_REQUEST));
    assert_eq!(check_response(&msg).unwrap().id, THEIR_ID);
}

#[test]
fn unsigned_logout_response_is_refused() {
    let xml = response_xml(STATUS_SUCCESS);
    let msg = redirect(&query("SAMLResponse", &xml, "rs1", None));
    assert_eq!(check_response(&msg).unwrap_err(), LogoutError::Unsigned);
    let msg = IncomingSlo::from_post(&post_body("SAMLResponse", &xml, THEIR_ID, None)).unwrap();
    assert_eq!(check_response(&msg).unwrap_err(), LogoutError::Unsigned);
    // SigAlg without Signature is unsigned too.
    let q = signed_query("SAMLResponse", &xml);
    let cut = &q[..q.find("&Signature=").unwrap()];
    assert_eq!(
        check_response(&redirect(cut)).unwrap_err(),
        LogoutError::Unsigned
    );
}

#[test]
fn logout_response_signed_with_a_key_not_in_metadata_is_refused() {
    let xml = response_xml(STATUS_SUCCESS);
    let q = query(
        "SAMLResponse",
        &xml,
        "rs1",
        Some((&attacker_key(), SignatureMethod::RsaSha256.uri())),
    );
    assert_eq!(
        check_response(&redirect(&q)).unwrap_err(),
        LogoutError::RedirectSignature
    );
    let body = post_body("SAMLResponse", &xml, THEIR_ID, Some(&attacker_key()));
    let msg = IncomingSlo::from_post(&body).unwrap();
    assert_eq!(check_response(&msg).unwrap_err().code(), "slo_signature");
}

#[test]
fn sha1_sig_alg_is_refused_before_any_verification() {
    let xml = response_xml(STATUS_SUCCESS);
    let q = query("SAMLResponse", &xml, "rs1", Some((&idp_key(), RSA_SHA1)));
    assert_eq!(
        check_response(&redirect(&q)).unwrap_err(),
        LogoutError::WeakSignatureAlgorithm
    );
    let q = query(
        "SAMLResponse",
        &xml,
        "rs1",
        Some((&idp_key(), "urn:example:made-up")),
    );
    assert_eq!(
        check_response(&redirect(&q)).unwrap_err(),
        LogoutError::UnknownSignatureAlgorithm
    );
}

#[test]
fn redirect_signature_over_an_altered_query_is_refused() {
    let xml = response_xml(STATUS_SUCCESS);
    let q = signed_query("SAMLResponse", &xml);
    // Another RelayState under the same signature.
    let altered = q.replace("RelayState=rs1", "RelayState=rs2");
    assert_eq!(
        check_response(&redirect(&altered)).unwrap_err(),
        LogoutError::RedirectSignature
    );
    // The same values re-encoded (lowercase hex): the signature covers the octets as
    // received, so this no longer verifies.
    let reencoded = q.replace("%3A%2F%2F", "%3a%2f%2f");
    assert_ne!(reencoded, q);
    assert_eq!(
        check_response(&redirect(&reencoded)).unwrap_err(),
        LogoutError::RedirectSignature
    );
    // The parameters in another order still verify: the signed string is rebuilt from the
    // received parts in the order the binding fixes.
    let mut parts: Vec<&str> = q.split('&').collect();
    parts.reverse();
    assert!(check_response(&redirect(&parts.join("&"))).is_ok());
}

#[test]
fn logout_response_with_wrong_destination_is_refused() {
    let xml = response_xml(STATUS_SUCCESS).replace(SP_SLO, "https://evil.example.org/saml/slo");
    assert_eq!(
        check_response(&redirect(&signed_query("SAMLResponse", &xml))).unwrap_err(),
        LogoutError::DestinationMismatch
    );
}

#[test]
fn logout_response_from_an_unknown_issuer_is_refused() {
    let xml = response_xml(STATUS_SUCCESS).replace(
        &format!(">{IDP}</saml:Issuer>"),
        ">https://other-idp.example.org</saml:Issuer>",
    );
    assert_eq!(
        check_response(&redirect(&signed_query("SAMLResponse", &xml))).unwrap_err(),
        LogoutError::IssuerMismatch
    );
    // The caller's expectation and the descriptor disagree: fail closed.
    let mut e = expected();
    e.idp_entity_id = "https://other-idp.example.org";
    let msg = redirect(&signed_query("SAMLResponse", &response_xml(STATUS_SUCCESS)));
    assert_eq!(
        validate_logout_response(&msg, &e, &idp(), now(), SKEW).unwrap_err(),
        LogoutError::IssuerMismatch
    );
}

#[test]
fn logout_response_to_another_request_is_refused() {
    let xml = response_xml(STATUS_SUCCESS).replace(OUR_REQUEST, "_someoneelse");
    assert_eq!(
        check_response(&redirect(&signed_query("SAMLResponse", &xml))).unwrap_err(),
        LogoutError::InResponseToMismatch
    );
}

#[test]
fn logout_response_issued_in_the_future_or_before_the_request_is_refused() {
    let xml = response_xml(STATUS_SUCCESS);
    let msg = redirect(&signed_query("SAMLResponse", &xml));
    let early = sent() - Duration::from_secs(600);
    let mut e = expected();
    e.request_issue_instant = early;
    assert_eq!(
        validate_logout_response(&msg, &e, &idp(), early, SKEW).unwrap_err(),
        LogoutError::IssuedInFuture
    );
    e.request_issue_instant = now() + Duration::from_secs(300);
    assert_eq!(
        validate_logout_response(&msg, &e, &idp(), now(), SKEW).unwrap_err(),
        LogoutError::IssuedBeforeRequest
    );
}

#[test]
fn logout_response_with_a_failure_status_is_reported() {
    let xml = response_xml(STATUS_RESPONDER);
    let err = check_response(&redirect(&signed_query("SAMLResponse", &xml))).unwrap_err();
    assert_eq!(err.code(), "slo_status");
    let xml = response_xml(STATUS_SUCCESS).replace(
        &format!("<samlp:Status><samlp:StatusCode Value=\"{STATUS_SUCCESS}\"/></samlp:Status>"),
        "",
    );
    assert_eq!(
        check_response(&redirect(&signed_query("SAMLResponse", &xml))).unwrap_err(),
        LogoutError::MissingStatus
    );
}

#[test]
fn a_logout_request_is_not_taken_for_a_response() {
    let xml = request_xml(Some(SESSION));
    let msg = redirect(&signed_query("SAMLRequest", &xml));
    assert_eq!(check_response(&msg).unwrap_err(), LogoutError::WrongMessage);
    // A LogoutRequest root under the SAMLResponse name.
    let msg = redirect(&signed_query("SAMLResponse", &xml));
    assert_eq!(check_response(&msg).unwrap_err(), LogoutError::WrongMessage);
}

#[test]
fn malformed_binding_encodings_are_refused() {
    for q in [
        "",
        "RelayState=x",
        "SAMLResponse=!!!",
        "SAMLResponse=AAAA",
        "SAMLResponse=a&SAMLResponse=b",
        "SAMLRequest=a&SAMLResponse=b",
    ] {
        assert_eq!(
            IncomingSlo::from_redirect(q).unwrap_err().code(),
            "slo_binding",
            "{q}"
        );
    }
    for body in [
        &b""[..],
        b"SAMLResponse=%%%",
        b"SAMLRequest=a&SAMLRequest=a",
    ] {
        assert_eq!(
            IncomingSlo::from_post(body).unwrap_err().code(),
            "slo_binding"
        );
    }
    // A deflate bomb stops at the limit.
    let zeros = vec![b' '; 2 * 1024 * 1024];
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&zeros).unwrap();
    let q = format!(
        "SAMLResponse={}",
        quote_plus(&base64::engine::general_purpose::STANDARD.encode(enc.finish().unwrap()))
    );
    assert_eq!(
        IncomingSlo::from_redirect(&q).unwrap_err(),
        LogoutError::Binding {
            reason: "message inflates beyond the limit"
        }
    );
}

// === IdP-initiated LogoutRequest ===

#[test]
fn valid_idp_logout_request_is_accepted_by_both_bindings() {
    let xml = request_xml(Some(SESSION));
    let msg = redirect(&signed_query("SAMLRequest", &xml));
    assert_eq!(msg.issuer_hint().as_deref(), Some(IDP));
    let r = check_request(&msg).unwrap();
    assert_eq!(r.id, THEIR_ID);
    assert_eq!(r.issuer, IDP);
    assert_eq!(r.name_id, NAME_ID);
    assert_eq!(r.name_qualifier.as_deref(), Some(IDP));
    assert_eq!(r.session_indexes, [SESSION]);
    assert!(r.remember_until > now());
    let body = post_body("SAMLRequest", &xml, THEIR_ID, Some(&idp_key()));
    let r = check_request(&IncomingSlo::from_post(&body).unwrap()).unwrap();
    assert_eq!(r.name_id, NAME_ID);
}

#[test]
fn forged_unsigned_idp_logout_request_is_refused() {
    let xml = request_xml(Some(SESSION));
    let msg = redirect(&query("SAMLRequest", &xml, "", None));
    assert_eq!(check_request(&msg).unwrap_err(), LogoutError::Unsigned);
    let msg = IncomingSlo::from_post(&post_body("SAMLRequest", &xml, THEIR_ID, None)).unwrap();
    assert_eq!(check_request(&msg).unwrap_err(), LogoutError::Unsigned);
}

#[test]
fn idp_logout_request_signed_with_the_wrong_key_is_refused() {
    let xml = request_xml(Some(SESSION));
    let q = query(
        "SAMLRequest",
        &xml,
        "rs1",
        Some((&attacker_key(), SignatureMethod::RsaSha256.uri())),
    );
    assert_eq!(
        check_request(&redirect(&q)).unwrap_err(),
        LogoutError::RedirectSignature
    );
    let body = post_body("SAMLRequest", &xml, THEIR_ID, Some(&attacker_key()));
    assert_eq!(
        check_request(&IncomingSlo::from_post(&body).unwrap())
            .unwrap_err()
            .code(),
        "slo_signature"
    );
}

#[test]
fn idp_logout_request_with_sha1_is_refused() {
    let xml = request_xml(Some(SESSION));
    let q = query("SAMLRequest", &xml, "rs1", Some((&idp_key(), RSA_SHA1)));
    assert_eq!(
        check_request(&redirect(&q)).unwrap_err(),
        LogoutError::WeakSignatureAlgorithm
    );
}

#[test]
fn idp_logout_request_for_another_destination_is_refused() {
    let xml = request_xml(Some(SESSION)).replace(SP_SLO, "https://other-sp.example.org/slo");
    assert_eq!(
        check_request(&redirect(&signed_query("SAMLRequest", &xml))).unwrap_err(),
        LogoutError::DestinationMismatch
    );
}

#[test]
fn idp_logout_request_from_an_unknown_issuer_is_refused() {
    let xml = request_xml(Some(SESSION)).replace(
        &format!(">{IDP}</saml:Issuer>"),
        ">https://other-idp.example.org</saml:Issuer>",
    );
    assert_eq!(
        check_request(&redirect(&signed_query("SAMLRequest", &xml))).unwrap_err(),
        LogoutError::IssuerMismatch
    );
    let xml =
        request_xml(Some(SESSION)).replace(&format!(" Format=\"{}\"", saml::NAMEID_ENTITY), "");
    assert_eq!(
        check_request(&redirect(&signed_query("SAMLRequest", &xml))).unwrap_err(),
        LogoutError::IssuerFormat
    );
}

#[test]
fn expired_idp_logout_request_is_refused() {
    let msg = redirect(&signed_query("SAMLRequest", &request_xml(Some(SESSION))));
    let late = now() + MAX_AGE + SKEW + Duration::from_secs(1);
    assert_eq!(
        validate_logout_request(&msg, SP_SLO, &idp(), late, SKEW, MAX_AGE).unwrap_err(),
        LogoutError::Expired
    );
    let early = now() - SKEW - Duration::from_secs(10);
    assert_eq!(
        validate_logout_request(&msg, SP_SLO, &idp(), early, SKEW, MAX_AGE).unwrap_err(),
        LogoutError::IssuedInFuture
    );
    // NotOnOrAfter already passed.
    let xml = request_xml(Some(SESSION)).replace(
        " Version=\"2.0\"",
        " Version=\"2.0\" NotOnOrAfter=\"2025-03-14T09:20:00Z\"",
    );
    assert_eq!(
        check_request(&redirect(&signed_query("SAMLRequest", &xml))).unwrap_err(),
        LogoutError::Expired
    );
}

#[test]
fn idp_logout_request_without_session_index_is_refused() {
    let msg = redirect(&signed_query("SAMLRequest", &request_xml(None)));
    assert_eq!(
        check_request(&msg).unwrap_err(),
        LogoutError::MissingSessionIndex
    );
}

#[test]
fn idp_logout_request_without_name_id_is_refused() {
    let xml = request_xml(Some(SESSION));
    let start = xml.find("<saml:NameID").unwrap();
    let end = xml.find("</saml:NameID>").unwrap() + "</saml:NameID>".len();
    let xml = format!("{}{}", &xml[..start], &xml[end..]);
    assert_eq!(
        check_request(&redirect(&signed_query("SAMLRequest", &xml))).unwrap_err(),
        LogoutError::MissingElement {
            element: "LogoutRequest/NameID"
        }
    );
}

#[test]
fn idp_logout_request_values_come_from_the_signed_message_only() {
    // A signed POST request with a second, unsigned NameID smuggled in after signing.
    let xml = request_xml(Some(SESSION));
    let signed = sign_enveloped(
        &xml,
        THEIR_ID,
        &idp_key(),
        SignatureMethod::RsaSha256,
        DigestMethod::Sha256,
    )
    .unwrap();
    let tampered = signed.replace(
        "</samlp:LogoutRequest>",
        "<samlp:SessionIndex>_victim</samlp:SessionIndex></samlp:LogoutRequest>",
    );
    let body = format!(
        "SAMLRequest={}",
        quote_plus(&base64::engine::general_purpose::STANDARD.encode(tampered))
    );
    let err = check_request(&IncomingSlo::from_post(body.as_bytes()).unwrap()).unwrap_err();
    assert_eq!(err.code(), "slo_signature");
}
