//! The SPID AuthnRequest.

use std::fmt::Write as _;
use std::time::SystemTime;

use saml_xml::escape;
use xmldsig::SigningKey;

use crate::binding::{self, PostForm};
use crate::error::RequestError;
use crate::time::{format_instant, truncate_to_seconds};
use crate::types::{
    BINDING_POST, Level, NAMEID_ENTITY, NAMEID_TRANSIENT, SAML_NS, SAMLP_NS, SpConfig,
};

/// Longest request ID accepted. SPID IDs are typically `_` plus 32-64 hex digits.
pub const MAX_ID_LEN: usize = 256;

/// A SPID `samlp:AuthnRequest`, ready to send with either binding.
///
/// The XML is fixed at construction: `ID` (caller-supplied, from a CSPRNG), `Version="2.0"`,
/// `IssueInstant` (UTC, whole seconds), `Destination` (the IdP's SSO URL for the chosen
/// binding), `ForceAuthn="true"` for L2 and L3, `AssertionConsumerServiceIndex` (or
/// `AssertionConsumerServiceURL` with `ProtocolBinding` HTTP-POST),
/// `AttributeConsumingServiceIndex`; children `saml:Issuer` (`Format` entity,
/// `NameQualifier` = our entityID), `samlp:NameIDPolicy` (`Format` transient, no
/// `AllowCreate`), `samlp:RequestedAuthnContext` (`Comparison="minimum"`, one class ref). No
/// `IsPassive`, no `Subject`.
#[derive(Debug, Clone)]
pub struct AuthnRequest {
    id: String,
    issue_instant: SystemTime,
    destination: String,
    level: Level,
    xml: String,
}

impl AuthnRequest {
    /// Builds the request. `id` must be unpredictable (the caller draws it from a CSPRNG) and
    /// an NCName starting with a letter or `_`; `destination` is the IdP's
    /// `SingleSignOnService` location for the binding that will carry the request.
    pub fn new(
        sp: &SpConfig,
        destination: &str,
        id: &str,
        level: Level,
        now: SystemTime,
    ) -> Result<Self, RequestError> {
        if !is_valid_id(id) {
            return Err(RequestError::InvalidId);
        }
        for (field, value) in [
            ("destination", destination),
            ("sp.entity_id", sp.entity_id.as_str()),
            ("sp.acs_url", sp.acs_url.as_str()),
        ] {
            if value.is_empty() {
                return Err(RequestError::EmptyValue { field });
            }
        }
        let issue_instant = truncate_to_seconds(now);
        let instant = format_instant(issue_instant).ok_or(RequestError::InvalidInstant)?;

        let mut xml = String::with_capacity(1024);
        let _ = write!(
            xml,
            "<samlp:AuthnRequest xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" \
             ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\" Destination=\"{}\"",
            escape(destination)
        );
        if level >= Level::L2 {
            xml.push_str(" ForceAuthn=\"true\"");
        }
        match sp.acs_index {
            Some(index) => {
                let _ = write!(xml, " AssertionConsumerServiceIndex=\"{index}\"");
            }
            None => {
                let _ = write!(
                    xml,
                    " AssertionConsumerServiceURL=\"{}\" ProtocolBinding=\"{BINDING_POST}\"",
                    escape(&sp.acs_url)
                );
            }
        }
        if let Some(index) = sp.attribute_consuming_service_index {
            let _ = write!(xml, " AttributeConsumingServiceIndex=\"{index}\"");
        }
        let entity = escape(&sp.entity_id);
        let _ = write!(
            xml,
            "><saml:Issuer Format=\"{NAMEID_ENTITY}\" NameQualifier=\"{entity}\">{entity}\
             </saml:Issuer>\
             <samlp:NameIDPolicy Format=\"{NAMEID_TRANSIENT}\"/>\
             <samlp:RequestedAuthnContext Comparison=\"minimum\">\
             <saml:AuthnContextClassRef>{}</saml:AuthnContextClassRef>\
             </samlp:RequestedAuthnContext>\
             </samlp:AuthnRequest>",
            level.uri()
        );
        Ok(AuthnRequest {
            id: id.to_owned(),
            issue_instant,
            destination: destination.to_owned(),
            level,
            xml,
        })
    }

    /// Adds the SPID age-limit extension (Linee guida SPID per i minori, AgID Determinazione
    /// n. 51/2022, "Limitazione dell'accesso ai servizi in rete"): the IdP checks the
    /// person's age itself and ends the login with its own message when it does not fit, so
    /// the SP never receives a minor's data for a service not meant for them. `max_age`
    /// `None` is written as 99, the guideline's "no upper limit". The extension follows the
    /// `Issuer` (and the enveloped `Signature` the POST binding puts after it), as the
    /// schema orders `samlp:Extensions`.
    #[must_use]
    pub fn with_age_limit(mut self, min_age: u32, max_age: Option<u32>) -> Self {
        let max_age = max_age.unwrap_or(99).min(99);
        let extension = format!(
            "<samlp:Extensions><spid:AgeLimit xmlns:spid=\"{}\">\
             <spid:MinAge>{}</spid:MinAge><spid:MaxAge>{max_age}</spid:MaxAge>\
             </spid:AgeLimit></samlp:Extensions>",
            crate::types::SPID_EXTENSIONS_NS,
            min_age.min(max_age)
        );
        if let Some(at) = self.xml.find("</saml:Issuer>") {
            self.xml.insert_str(at + "</saml:Issuer>".len(), &extension);
        }
        self
    }

    /// The request `ID`: store it (bound to the browser session and the IdP) to match the
    /// Response's `InResponseTo`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The `IssueInstant` as written (whole seconds): store it as
    /// [`crate::Expected::request_issue_instant`].
    pub fn issue_instant(&self) -> SystemTime {
        self.issue_instant
    }

    /// The `Destination`, which is also where the bindings send the request.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The level requested (with `Comparison="minimum"`).
    pub fn level(&self) -> Level {
        self.level
    }

    /// The unsigned XML (the HTTP-Redirect binding signs the query string instead).
    pub fn xml(&self) -> &str {
        &self.xml
    }

    /// The HTTP-Redirect binding URL: see [`binding::redirect_url`].
    pub fn redirect_url(
        &self,
        relay_state: &str,
        key: &SigningKey,
    ) -> Result<String, RequestError> {
        binding::redirect_url(&self.destination, &self.xml, relay_state, key)
    }

    /// The HTTP-POST binding form: see [`binding::post_form`].
    pub fn post_form(
        &self,
        relay_state: &str,
        key: &SigningKey,
        script_nonce: Option<&str>,
    ) -> Result<PostForm, RequestError> {
        binding::post_form(
            &self.destination,
            &self.xml,
            &self.id,
            relay_state,
            key,
            script_nonce,
        )
    }
}

/// True for IDs this crate writes: 1..=[`MAX_ID_LEN`] ASCII characters from `[A-Za-z0-9_.-]`,
/// the first a letter or `_`.
pub(crate) fn is_valid_id(id: &str) -> bool {
    let b = id.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b.len() <= MAX_ID_LEN
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::{Duration, UNIX_EPOCH};

    use saml_xml::{Document, Limits};

    use super::*;

    const ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";
    const SSO: &str = "https://idp.spid.example.org/sso";

    fn sp() -> SpConfig {
        SpConfig {
            entity_id: "https://sp.varco.example.org".into(),
            acs_url: "https://sp.varco.example.org/saml/acs".into(),
            acs_index: Some(0),
            attribute_consuming_service_index: Some(1),
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_741_944_401_750)
    }

    #[test]
    fn age_limit_extension_follows_the_issuer() {
        let r = AuthnRequest::new(&sp(), SSO, ID, Level::L2, now())
            .unwrap()
            .with_age_limit(14, Some(17));
        let doc = Document::parse(r.xml().as_bytes(), &Limits::default()).unwrap();
        let kids: Vec<_> = doc.root().child_elements().collect();
        assert_eq!(kids.len(), 4);
        assert!(kids[0].is(SAML_NS, "Issuer"));
        assert!(kids[1].is(SAMLP_NS, "Extensions"));
        let limit: Vec<_> = kids[1].child_elements().collect();
        assert!(limit[0].is(crate::types::SPID_EXTENSIONS_NS, "AgeLimit"));
        let ages: Vec<_> = limit[0].child_elements().map(|e| e.text()).collect();
        assert_eq!(ages, ["14", "17"]);
        // No upper limit is written 99.
        let open = AuthnRequest::new(&sp(), SSO, ID, Level::L2, now())
            .unwrap()
            .with_age_limit(18, None);
        assert!(
            open.xml()
                .contains("<spid:MinAge>18</spid:MinAge><spid:MaxAge>99</spid:MaxAge>")
        );
    }

    #[test]
    fn request_has_every_spid_field() {
        let r = AuthnRequest::new(&sp(), SSO, ID, Level::L2, now()).unwrap();
        let doc = Document::parse(r.xml().as_bytes(), &Limits::default()).unwrap();
        let root = doc.root();
        assert!(root.is(SAMLP_NS, "AuthnRequest"));
        assert_eq!(root.attribute("ID"), Some(ID));
        assert_eq!(root.attribute("Version"), Some("2.0"));
        assert_eq!(root.attribute("IssueInstant"), Some("2025-03-14T09:26:41Z"));
        assert_eq!(root.attribute("Destination"), Some(SSO));
        assert_eq!(root.attribute("ForceAuthn"), Some("true"));
        assert_eq!(root.attribute("AssertionConsumerServiceIndex"), Some("0"));
        assert_eq!(root.attribute("AttributeConsumingServiceIndex"), Some("1"));
        assert_eq!(root.attribute("IsPassive"), None);
        assert_eq!(root.attribute("ProtocolBinding"), None);
        let kids: Vec<_> = root.child_elements().collect();
        assert_eq!(kids.len(), 3);
        assert!(kids[0].is(SAML_NS, "Issuer"));
        assert_eq!(kids[0].attribute("Format"), Some(NAMEID_ENTITY));
        assert_eq!(
            kids[0].attribute("NameQualifier"),
            Some("https://sp.varco.example.org")
        );
        assert_eq!(kids[0].text(), "https://sp.varco.example.org");
        assert!(kids[1].is(SAMLP_NS, "NameIDPolicy"));
        assert_eq!(kids[1].attribute("Format"), Some(NAMEID_TRANSIENT));
        assert_eq!(kids[1].attribute("AllowCreate"), None);
        assert!(kids[2].is(SAMLP_NS, "RequestedAuthnContext"));
        assert_eq!(kids[2].attribute("Comparison"), Some("minimum"));
        let refs: Vec<_> = kids[2].child_elements().collect();
        assert_eq!(refs.len(), 1);
        assert!(refs[0].is(SAML_NS, "AuthnContextClassRef"));
        assert_eq!(refs[0].text(), "https://www.spid.gov.it/SpidL2");
        assert_eq!(
            r.issue_instant(),
            UNIX_EPOCH + Duration::from_secs(1_741_944_401)
        );
    }

    #[test]
    fn level_one_does_not_force_authn() {
        let r = AuthnRequest::new(&sp(), SSO, ID, Level::L1, now()).unwrap();
        assert!(!r.xml().contains("ForceAuthn"));
        assert!(r.xml().contains("https://www.spid.gov.it/SpidL1"));
        let r = AuthnRequest::new(&sp(), SSO, ID, Level::L3, now()).unwrap();
        assert!(r.xml().contains("ForceAuthn=\"true\""));
    }

    #[test]
    fn without_acs_index_the_url_and_binding_are_sent() {
        let mut sp = sp();
        sp.acs_index = None;
        sp.attribute_consuming_service_index = None;
        let r = AuthnRequest::new(&sp, SSO, ID, Level::L2, now()).unwrap();
        let doc = Document::parse(r.xml().as_bytes(), &Limits::default()).unwrap();
        let root = doc.root();
        assert_eq!(
            root.attribute("AssertionConsumerServiceURL"),
            Some("https://sp.varco.example.org/saml/acs")
        );
        assert_eq!(root.attribute("ProtocolBinding"), Some(BINDING_POST));
        assert_eq!(root.attribute("AssertionConsumerServiceIndex"), None);
        assert_eq!(root.attribute("AttributeConsumingServiceIndex"), None);
    }

    #[test]
    fn invalid_ids_are_refused() {
        let long = format!("_{}", "a".repeat(MAX_ID_LEN));
        for bad in [
            "",
            "1abc",
            "-abc",
            "_a b",
            "_a\"b",
            "_a<b",
            "_è",
            long.as_str(),
        ] {
            assert_eq!(
                AuthnRequest::new(&sp(), SSO, bad, Level::L2, now()).unwrap_err(),
                RequestError::InvalidId,
                "{bad:?}"
            );
        }
        assert!(AuthnRequest::new(&sp(), SSO, "a1.b-c_d", Level::L2, now()).is_ok());
    }

    #[test]
    fn empty_destination_and_instant_before_1970_are_refused() {
        let e = AuthnRequest::new(&sp(), "", ID, Level::L2, now()).unwrap_err();
        assert_eq!(e.code(), "request_empty_value");
        let e = AuthnRequest::new(
            &sp(),
            SSO,
            ID,
            Level::L2,
            UNIX_EPOCH - Duration::from_secs(5),
        )
        .unwrap_err();
        assert_eq!(e, RequestError::InvalidInstant);
    }

    #[test]
    fn values_are_escaped() {
        let mut sp = sp();
        sp.entity_id = "https://sp.example.org/?a=1&b=\"2\"".into();
        let r = AuthnRequest::new(&sp, "https://idp/sso?x=<1>", ID, Level::L1, now()).unwrap();
        let doc = Document::parse(r.xml().as_bytes(), &Limits::default()).unwrap();
        assert_eq!(
            doc.root().attribute("Destination"),
            Some("https://idp/sso?x=<1>")
        );
        let issuer = doc.root().child_elements().next().unwrap();
        assert_eq!(issuer.text(), "https://sp.example.org/?a=1&b=\"2\"");
    }
}

/// The two bindings carrying a real AuthnRequest: what the IdP receives must inflate, parse
/// and verify. (Here, not in binding.rs, so that the lower module's tests need nothing above
/// it.)
#[cfg(test)]
mod binding_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::io::Read as _;
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    use base64::Engine as _;
    use flate2::read::DeflateDecoder;
    use ring::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair};
    use saml_xml::{Document, Limits};
    use xmldsig::{Policy, TrustedKey};

    use super::*;
    use crate::binding::quote_plus;

    const ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";

    fn keys_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xmldsig/tests/keys")
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(keys_dir().join(name)).expect(name)
    }

    fn sp_key() -> SigningKey {
        SigningKey::from_pem(&read("sp-rsa2048.key.pem"), &read("sp-rsa2048.crt.pem")).unwrap()
    }

    fn request(destination: &str) -> AuthnRequest {
        let sp = SpConfig {
            entity_id: "https://sp.varco.example.org".into(),
            acs_url: "https://sp.varco.example.org/saml/acs".into(),
            acs_index: Some(0),
            attribute_consuming_service_index: Some(0),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_741_944_401);
        AuthnRequest::new(&sp, destination, ID, Level::L2, now).unwrap()
    }

    fn unquote_plus(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    assert_eq!(hex, hex.to_uppercase(), "lowercase hex in {s}");
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn redirect_url_inflates_and_its_signature_verifies() {
        let r = request("https://idp.spid.example.org/sso");
        let url = r.redirect_url("state 1/2", &sp_key()).unwrap();
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://idp.spid.example.org/sso");
        let params: Vec<(&str, &str)> = query
            .split('&')
            .map(|p| p.split_once('=').unwrap())
            .collect();
        let names: Vec<&str> = params.iter().map(|p| p.0).collect();
        assert_eq!(names, ["SAMLRequest", "RelayState", "SigAlg", "Signature"]);
        assert_eq!(unquote_plus(params[1].1), "state 1/2");
        assert_eq!(
            unquote_plus(params[2].1),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        );

        // SAMLRequest: base64 of raw DEFLATE of exactly the request XML.
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(unquote_plus(params[0].1))
            .unwrap();
        let mut xml = String::new();
        DeflateDecoder::new(&deflated[..])
            .read_to_string(&mut xml)
            .unwrap();
        assert_eq!(xml, r.xml());

        // The signature covers the query up to SigAlg, rebuilt as spid-sp-test does.
        let signed = format!(
            "SAMLRequest={}&RelayState={}&SigAlg={}",
            quote_plus(&unquote_plus(params[0].1)),
            quote_plus(&unquote_plus(params[1].1)),
            quote_plus(&unquote_plus(params[2].1)),
        );
        assert!(query.starts_with(&signed));
        let sig = base64::engine::general_purpose::STANDARD
            .decode(unquote_plus(params[3].1))
            .unwrap();
        let pair = RsaKeyPair::from_pkcs8(&read("sp-rsa2048.key.pk8.der")).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref(),
        )
        .verify(signed.as_bytes(), &sig)
        .expect("redirect signature verifies");
        let mut tampered = signed.into_bytes();
        tampered[12] ^= 1;
        assert!(
            ring::signature::UnparsedPublicKey::new(
                &RSA_PKCS1_2048_8192_SHA256,
                pair.public_key().as_ref()
            )
            .verify(&tampered, &sig)
            .is_err()
        );
    }

    #[test]
    fn redirect_url_appends_to_an_existing_query_and_may_omit_relay_state() {
        let r = request("https://idp.example.org/sso?tenant=x");
        let url = r.redirect_url("", &sp_key()).unwrap();
        assert!(url.starts_with("https://idp.example.org/sso?tenant=x&SAMLRequest="));
        assert!(!url.contains("RelayState"));
    }

    #[test]
    fn age_limit_extension_is_signed_after_the_signature() {
        // The POST binding's enveloped signature goes between the Issuer and the extension,
        // and covers it.
        let r = request("https://idp.spid.example.org/sso").with_age_limit(14, None);
        let form = r.post_form("rs", &sp_key(), None).unwrap();
        let doc = Document::parse(form.signed_xml.as_bytes(), &Limits::default()).unwrap();
        let names: Vec<&str> = doc
            .root()
            .child_elements()
            .map(|e| e.local_name())
            .collect();
        assert_eq!(
            names,
            [
                "Issuer",
                "Signature",
                "Extensions",
                "NameIDPolicy",
                "RequestedAuthnContext"
            ]
        );
        let trusted = TrustedKey::from_certificate_pem(&read("sp-rsa2048.crt.pem")).unwrap();
        assert!(xmldsig::verify(doc.root(), &[trusted], &Policy::default()).is_ok());
    }

    #[test]
    fn post_form_signature_verifies_with_xmldsig() {
        let r = request("https://idp.spid.example.org/sso?a=1&b=2");
        let form = r.post_form("rs\"<x>", &sp_key(), Some("n0nce")).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&form.saml_request)
            .unwrap();
        assert_eq!(decoded, form.signed_xml.as_bytes());

        let doc = Document::parse(&decoded, &Limits::default()).unwrap();
        let trusted = TrustedKey::from_certificate_pem(&read("sp-rsa2048.crt.pem")).unwrap();
        let verified = xmldsig::verify(doc.root(), &[trusted], &Policy::default()).unwrap();
        assert_eq!(verified.element(), doc.root());
        // Schema order: Issuer, Signature, NameIDPolicy, RequestedAuthnContext.
        let names: Vec<&str> = doc
            .root()
            .child_elements()
            .map(|e| e.local_name())
            .collect();
        assert_eq!(
            names,
            [
                "Issuer",
                "Signature",
                "NameIDPolicy",
                "RequestedAuthnContext"
            ]
        );

        let attacker = TrustedKey::from_certificate_pem(&read("attacker-rsa2048.crt.pem")).unwrap();
        assert!(xmldsig::verify(doc.root(), &[attacker], &Policy::default()).is_err());

        assert!(form.html.contains(
            "<form method=\"post\" action=\"https://idp.spid.example.org/sso?a=1&amp;b=2\">"
        ));
        assert!(form.html.contains(&format!(
            "name=\"SAMLRequest\" value=\"{}\"",
            form.saml_request
        )));
        assert!(
            form.html
                .contains("name=\"RelayState\" value=\"rs&quot;&lt;x&gt;\"")
        );
        assert!(form.html.contains("<script nonce=\"n0nce\">"));
    }
}
