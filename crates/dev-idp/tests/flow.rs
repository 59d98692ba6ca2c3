//! End-to-end: the dev IdP binary answers real `saml::AuthnRequest`s (HTTP-Redirect and
//! HTTP-POST) with Responses that pass `saml::validate_response` with the key from its own
//! signed metadata; Cancel yields SPID anomaly 25; bad input gets 400 pages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use base64::Engine as _;
use saml::{
    Assertion, AuthnRequest, Error, Expected, IdpDescriptor, Level, SpConfig, validate_response,
};
use support::{
    DevIdp, client, fetch_idp, form_action, get, input_value, now, post, temp_dir, test_key,
};

const SP: &str = "https://sp.varco.test";
const ACS: &str = "http://127.0.0.1:9/saml/acs";

fn sp_config(acs_index: Option<u16>, attribute_index: Option<u16>) -> SpConfig {
    SpConfig {
        entity_id: SP.into(),
        acs_url: ACS.into(),
        acs_index,
        attribute_consuming_service_index: attribute_index,
    }
}

fn request(idp: &DevIdp, sp: &SpConfig, id: &str, level: Level) -> AuthnRequest {
    AuthnRequest::new(sp, &idp.sso_url(), id, level, now()).unwrap()
}

/// Posts `/login` like the page's form would, and returns the ACS form's decoded
/// `SAMLResponse` and `RelayState`.
fn login(
    agent: &ureq::Agent,
    idp: &DevIdp,
    page: &str,
    fields: &[(&str, &str)],
) -> (Vec<u8>, String) {
    let state = input_value(page, "state");
    let mut form = vec![("state", state.as_str())];
    form.extend_from_slice(fields);
    let (status, html) = post(agent, &format!("{}/login", idp.base_url), &form);
    assert_eq!(status, 200, "{html}");
    assert_eq!(form_action(&html), ACS);
    let xml = base64::engine::general_purpose::STANDARD
        .decode(input_value(&html, "SAMLResponse"))
        .unwrap();
    (xml, input_value(&html, "RelayState"))
}

fn validate(xml: &[u8], req: &AuthnRequest, idp: &IdpDescriptor) -> Result<Assertion, Error> {
    let expected = Expected {
        request_id: req.id(),
        acs_url: ACS,
        sp_entity_id: SP,
        requested_level: req.level(),
        idp_entity_id: &idp.entity_id,
        request_issue_instant: req.issue_instant(),
    };
    validate_response(xml, &expected, idp, now(), Duration::from_secs(60))
}

/// The SPID layout: both signatures right after their Issuers, children in schema order,
/// string-typed attribute values.
fn assert_spid_shape(xml: &[u8]) {
    let doc = saml_xml::Document::parse(xml, &saml_xml::Limits::default()).unwrap();
    let names = |e: saml_xml::Element<'_, '_>| -> Vec<String> {
        e.child_elements()
            .map(|c| c.local_name().to_owned())
            .collect()
    };
    let root = doc.root();
    assert_eq!(names(root), ["Issuer", "Signature", "Status", "Assertion"]);
    let assertion = root.child_elements().nth(3).unwrap();
    assert_eq!(
        names(assertion),
        [
            "Issuer",
            "Signature",
            "Subject",
            "Conditions",
            "AuthnStatement",
            "AttributeStatement"
        ]
    );
    for issuer in [root, assertion].map(|e| e.child_elements().next().unwrap()) {
        assert_eq!(issuer.attribute("Format"), Some(saml::NAMEID_ENTITY));
    }
    let statement = assertion.child_elements().nth(5).unwrap();
    for attribute in statement.child_elements() {
        let value = attribute.child_elements().next().unwrap();
        assert_eq!(
            value.attribute_ns("http://www.w3.org/2001/XMLSchema-instance", "type"),
            Some("xs:string")
        );
    }
}

#[test]
fn redirect_login_cancel_and_bad_input_without_sp_metadata() {
    let dir = temp_dir("redirect");
    let mut idp = DevIdp::start(&dir, &[]);
    let agent = client();
    let (descriptor, _) = fetch_idp(&agent, &idp);
    assert_eq!(descriptor.entity_id, idp.base_url);

    // SPID citizen at the requested level.
    let sp = sp_config(None, Some(0));
    let req = request(&idp, &sp, "_req0001", Level::L2);
    let url = req
        .redirect_url("relay-1", &test_key("sp-rsa2048"))
        .unwrap();
    let (status, page) = get(&agent, &url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("NON verificata"), "unverified notice");
    assert!(page.contains("<option value=\"2\" selected>"));
    for user in [
        "mario.rossi",
        "giulia.bianchi",
        "luca.verdi",
        "anna.schmidt",
        "esempio.srl",
    ] {
        assert!(page.contains(&format!("value=\"{user}\"")), "{user}");
    }

    let (xml, relay) = login(&agent, &idp, &page, &[("user", "mario.rossi")]);
    assert_eq!(relay, "relay-1");
    let a = validate(&xml, &req, &descriptor).unwrap();
    assert_eq!(a.level, Level::L2);
    assert_eq!(a.issuer, idp.base_url);
    assert_eq!(a.name_qualifier, idp.base_url);
    assert!(a.session_index.is_some());
    assert_eq!(
        a.attribute("fiscalNumber").unwrap(),
        ["TINIT-RSSMRA80A01H501U"]
    );
    assert_eq!(a.attribute("name").unwrap(), ["Mario"]);
    assert_eq!(a.attribute("gender").unwrap(), ["M"]);
    assert_spid_shape(&xml);

    // Same page, a level above the requested one: accepted, and reported.
    let (xml, _) = login(
        &agent,
        &idp,
        &page,
        &[("user", "giulia.bianchi"), ("level", "3")],
    );
    let a = validate(&xml, &req, &descriptor).unwrap();
    assert_eq!(a.level, Level::L3);
    assert_eq!(a.attribute("familyName").unwrap(), ["Bianchi"]);

    // A level below the requested one: the SP must refuse it.
    let (xml, _) = login(
        &agent,
        &idp,
        &page,
        &[("user", "luca.verdi"), ("level", "1")],
    );
    assert!(matches!(
        validate(&xml, &req, &descriptor),
        Err(Error::LevelTooLow { .. })
    ));

    // eIDAS and legal-person users.
    let (xml, _) = login(&agent, &idp, &page, &[("user", "anna.schmidt")]);
    let a = validate(&xml, &req, &descriptor).unwrap();
    assert!(a.attribute("fiscalNumber").is_none());
    assert!(a.attribute("spidCode").unwrap()[0].starts_with("DE/IT/"));
    let (xml, _) = login(&agent, &idp, &page, &[("user", "esempio.srl")]);
    let a = validate(&xml, &req, &descriptor).unwrap();
    assert_eq!(a.attribute("ivaCode").unwrap(), ["VATIT-12345678903"]);

    // Cancel: a signed status error with SPID anomaly 25.
    let (xml, relay) = login(&agent, &idp, &page, &[("action", "cancel")]);
    assert_eq!(relay, "relay-1");
    match validate(&xml, &req, &descriptor) {
        Err(Error::Status {
            code,
            sub_code,
            spid_error,
            ..
        }) => {
            assert_eq!(code, "urn:oasis:names:tc:SAML:2.0:status:Responder");
            assert_eq!(
                sub_code.as_deref(),
                Some("urn:oasis:names:tc:SAML:2.0:status:AuthnFailed")
            );
            assert_eq!(spid_error, Some(25));
        }
        other => panic!("expected a status error, got {other:?}"),
    }

    // Bad input: 400 pages, never a crash.
    let base = idp.base_url.clone();
    let state = input_value(&page, "state");
    let mut tampered = state.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (status, body) in [
        get(&agent, &format!("{base}/sso")),
        get(&agent, &format!("{base}/sso?SAMLRequest=%%%")),
        get(
            &agent,
            &format!("{base}/sso?SAMLRequest=bm90IGRlZmxhdGU%3D"),
        ),
        post(&agent, &format!("{base}/sso"), &[("SAMLRequest", "PHg+")]),
        post(&agent, &format!("{base}/login"), &[]),
        post(&agent, &format!("{base}/login"), &[("state", "x.y")]),
        post(
            &agent,
            &format!("{base}/login"),
            &[("state", &tampered), ("user", "mario.rossi")],
        ),
        post(
            &agent,
            &format!("{base}/login"),
            &[("state", &state), ("user", "nobody")],
        ),
        post(
            &agent,
            &format!("{base}/login"),
            &[("state", &state), ("user", "mario.rossi"), ("level", "9")],
        ),
        post(
            &agent,
            &format!("{base}/login"),
            &[("state", &state), ("action", "steal")],
        ),
    ] {
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(get(&agent, &format!("{base}/nope")).0, 404);

    // An ACS index cannot be resolved without SP metadata.
    let indexed = request(&idp, &sp_config(Some(0), Some(0)), "_req0002", Level::L2);
    let url = indexed.redirect_url("r", &test_key("sp-rsa2048")).unwrap();
    let (status, body) = get(&agent, &url);
    assert_eq!(status, 400);
    assert!(body.contains("--sp-metadata"), "{body}");

    // A request for another IdP (Destination) is refused.
    let other =
        AuthnRequest::new(&sp, "http://127.0.0.1:9/sso", "_req0003", Level::L1, now()).unwrap();
    let url =
        saml::redirect_url(&idp.sso_url(), other.xml(), "r", &test_key("sp-rsa2048")).unwrap();
    assert_eq!(get(&agent, &url).0, 400);

    assert!(idp.alive());
}

#[test]
fn post_binding_without_sp_metadata() {
    let dir = temp_dir("post");
    let idp = DevIdp::start(&dir, &[]);
    let agent = client();
    let (descriptor, _) = fetch_idp(&agent, &idp);
    let req = request(&idp, &sp_config(None, None), "_post0001", Level::L1);
    let form = req.post_form("rs", &test_key("sp-rsa2048"), None).unwrap();
    let (status, page) = post(
        &agent,
        &idp.sso_url(),
        &[("SAMLRequest", &form.saml_request), ("RelayState", "rs")],
    );
    assert_eq!(status, 200, "{page}");
    let (xml, relay) = login(&agent, &idp, &page, &[("user", "mario.rossi")]);
    assert_eq!(relay, "rs");
    assert_eq!(validate(&xml, &req, &descriptor).unwrap().level, Level::L1);
}

/// SP metadata with the test SP certificate: ACS index 0 and an AttributeConsumingService
/// index 0 that asks for three attributes.
fn sp_metadata(dir: &std::path::Path) -> std::path::PathBuf {
    let pem = std::fs::read_to_string(support::keys_dir().join("sp-rsa2048.crt.pem")).unwrap();
    let cert: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let xml = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{SP}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="true">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:AssertionConsumerService index="0" isDefault="true" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}"/>
    <md:AttributeConsumingService index="0">
      <md:ServiceName xml:lang="it">Test</md:ServiceName>
      <md:RequestedAttribute Name="name"/>
      <md:RequestedAttribute Name="familyName"/>
      <md:RequestedAttribute Name="fiscalNumber"/>
    </md:AttributeConsumingService>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#
    );
    let path = dir.join("sp-metadata.xml");
    std::fs::write(&path, xml).unwrap();
    path
}

#[test]
fn with_sp_metadata_signatures_are_verified_and_indexes_resolve() {
    let dir = temp_dir("sp-metadata");
    let metadata = sp_metadata(&dir);
    let idp = DevIdp::start(
        &dir.join("state"),
        &["--sp-metadata", metadata.to_str().unwrap()],
    );
    let agent = client();
    let (descriptor, _) = fetch_idp(&agent, &idp);
    let sp = sp_config(Some(0), Some(0));

    // HTTP-Redirect, signature checked over the raw query; index 0 resolves to the ACS;
    // only the requested attributes are released.
    let req = request(&idp, &sp, "_md0001", Level::L2);
    let url = req.redirect_url("a b/c", &test_key("sp-rsa2048")).unwrap();
    let (status, page) = get(&agent, &url);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Firma della richiesta verificata"));
    let (xml, relay) = login(&agent, &idp, &page, &[("user", "mario.rossi")]);
    assert_eq!(relay, "a b/c");
    let a = validate(&xml, &req, &descriptor).unwrap();
    let names: Vec<&str> = a.attributes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["name", "familyName", "fiscalNumber"]);

    // HTTP-POST, enveloped signature verified.
    let req = request(&idp, &sp, "_md0002", Level::L3);
    let form = req.post_form("rs", &test_key("sp-rsa2048"), None).unwrap();
    let (status, page) = post(
        &agent,
        &idp.sso_url(),
        &[("SAMLRequest", &form.saml_request), ("RelayState", "rs")],
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<option value=\"3\" selected>"));
    let (xml, _) = login(&agent, &idp, &page, &[("user", "giulia.bianchi")]);
    assert_eq!(validate(&xml, &req, &descriptor).unwrap().level, Level::L3);

    // Signed by another key, either binding: refused.
    let url = req
        .redirect_url("rs", &test_key("attacker-rsa2048"))
        .unwrap();
    assert_eq!(get(&agent, &url).0, 400);
    let form = req
        .post_form("rs", &test_key("attacker-rsa2048"), None)
        .unwrap();
    let (status, _) = post(
        &agent,
        &idp.sso_url(),
        &[("SAMLRequest", &form.saml_request)],
    );
    assert_eq!(status, 400);

    // Signature stripped from the redirect: refused.
    let url = req.redirect_url("rs", &test_key("sp-rsa2048")).unwrap();
    let unsigned = &url[..url.find("&SigAlg=").unwrap()];
    assert_eq!(get(&agent, unsigned).0, 400);

    // RelayState altered after signing: refused.
    let altered = url.replace("RelayState=rs", "RelayState=rt");
    assert_eq!(get(&agent, &altered).0, 400);

    // An SP not in the metadata, and an ACS URL not in it: refused.
    let mut stranger = sp_config(None, Some(0));
    stranger.entity_id = "https://other-sp.test".into();
    let r = request(&idp, &stranger, "_md0003", Level::L2);
    let url = r.redirect_url("rs", &test_key("sp-rsa2048")).unwrap();
    assert_eq!(get(&agent, &url).0, 400);
    let mut wrong_acs = sp_config(None, Some(0));
    wrong_acs.acs_url = "http://127.0.0.1:9/elsewhere".into();
    let r = request(&idp, &wrong_acs, "_md0004", Level::L2);
    let url = r.redirect_url("rs", &test_key("sp-rsa2048")).unwrap();
    assert_eq!(get(&agent, &url).0, 400);
}

#[test]
fn key_is_generated_once_and_reused() {
    let dir = temp_dir("keys");
    let agent = client();
    let first = DevIdp::start(&dir, &["--entity-id", "https://idp.dev.test"]);
    let (descriptor, cert1) = fetch_idp(&agent, &first);
    assert_eq!(descriptor.entity_id, "https://idp.dev.test");
    first.stop();
    assert!(dir.join("idp-key.pem").exists());
    assert!(dir.join("idp-cert.pem").exists());
    let second = DevIdp::start(&dir, &[]);
    let (_, cert2) = fetch_idp(&agent, &second);
    assert_eq!(cert1, cert2);
    second.stop();
}

/// Serves `body` to every GET on a loopback port (a stand-in for Varco's `/saml/metadata`).
fn serve_forever(body: String) -> String {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/saml/metadata", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/samlmetadata+xml\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn sp_metadata_url_is_fetched_when_requests_come() {
    let dir = temp_dir("sp-url");
    let file = sp_metadata(&dir);
    let url = serve_forever(std::fs::read_to_string(file).unwrap());
    let idp = DevIdp::start(&dir.join("state"), &["--sp-metadata", &url]);
    let agent = client();
    let (descriptor, _) = fetch_idp(&agent, &idp);
    let req = request(&idp, &sp_config(Some(0), Some(0)), "_url0001", Level::L2);
    let (status, page) = get(
        &agent,
        &req.redirect_url("rs", &test_key("sp-rsa2048")).unwrap(),
    );
    assert_eq!(status, 200, "{page}");
    let (xml, _) = login(&agent, &idp, &page, &[("user", "mario.rossi")]);
    assert!(validate(&xml, &req, &descriptor).is_ok());

    // An SP that is not up: the IdP starts, and the request gets a 400 that says why.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/saml/metadata", closed.local_addr().unwrap());
    drop(closed);
    let idp = DevIdp::start(&dir.join("state2"), &["--sp-metadata", &dead]);
    let req = request(&idp, &sp_config(Some(0), Some(0)), "_url0002", Level::L2);
    let (status, body) = get(
        &agent,
        &req.redirect_url("rs", &test_key("sp-rsa2048")).unwrap(),
    );
    assert_eq!(status, 400);
    assert!(body.contains("SP metadata http://"), "{body}");
}
