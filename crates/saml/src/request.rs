//! The SPID AuthnRequest.

pub(crate) use saml_xml::escape;
use std::fmt;
use std::fmt::Write as _;
use std::time::SystemTime;

use xmldsig::SigningKey;

use crate::binding::{self, PostForm};
use crate::time::{format_instant, truncate_to_seconds};
use crate::types::{
    BINDING_POST, Level, NAMEID_ENTITY, NAMEID_TRANSIENT, SAML_NS, SAMLP_NS, SpConfig,
};

/// Longest request ID accepted. SPID IDs are typically `_` plus 32-64 hex digits.
pub const MAX_ID_LEN: usize = 256;

/// Why a request could not be built or encoded. Every variant is a caller or configuration
/// problem, never attacker input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The ID is empty, longer than [`MAX_ID_LEN`], does not start with a letter or `_`, or
    /// holds a character other than ASCII letters, digits, `_`, `-` and `.` (an `xs:ID` must
    /// be an NCName; the stricter ASCII set needs no escaping anywhere).
    InvalidId,
    /// The issue instant cannot be written (before 1970 or after 9999).
    InvalidInstant,
    /// A URL or entity ID is empty.
    EmptyValue {
        /// Which value.
        field: &'static str,
    },
    /// Signing failed (key and method do not match, or the crypto library refused).
    Signing(xmldsig::Error),
    /// Raw DEFLATE compression failed (it does not, for in-memory buffers; kept so the
    /// encoder never panics).
    Deflate,
}

impl RequestError {
    /// A short, stable identifier for logs and metric labels. The set is closed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidId => "request_invalid_id",
            Self::InvalidInstant => "request_invalid_instant",
            Self::EmptyValue { .. } => "request_empty_value",
            Self::Signing(_) => "request_signing",
            Self::Deflate => "request_deflate",
        }
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidId => f.write_str("request ID is not a valid xs:ID"),
            Self::InvalidInstant => f.write_str("issue instant out of range"),
            Self::EmptyValue { field } => write!(f, "{field} is empty"),
            Self::Signing(e) => write!(f, "signing failed: {e}"),
            Self::Deflate => f.write_str("DEFLATE compression failed"),
        }
    }
}

impl std::error::Error for RequestError {}

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
