//! SAML Single Logout (SAML 2.0 profiles §4.4) as SPID describes it: the SP's signed
//! `LogoutRequest` and `LogoutResponse`, and validation of the IdP's `LogoutResponse` and
//! IdP-initiated `LogoutRequest`, over HTTP-Redirect and HTTP-POST.
//!
//! Incoming messages are decoded once ([`IncomingSlo`]), then validated against one IdP's
//! metadata keys: HTTP-POST messages must carry an enveloped signature on the root; HTTP-Redirect
//! messages must carry `SigAlg` and `Signature`, checked over the query-string octets exactly as
//! received (SAML bindings §3.4.4.1). SHA-1 and unknown algorithms are refused by name. Every
//! value is read from the verified element only. One-time use (the pending request, the IdP
//! request ID) is the broker's job, as for logins.

use std::fmt;
use std::fmt::Write as _;
use std::io::Read as _;
use std::time::{Duration, SystemTime};

use flate2::read::DeflateDecoder;
use saml_xml::{Document, Element, Limits, escape};
use xmldsig::{DSIG_NS, Policy, SignatureMethod, SigningKey};

use crate::binding::{self, PostForm, decode_base64};
use crate::error::RequestError;
use crate::read::{
    Fault, check_issuer, check_status, check_version, instant_attr, required_attr, required_child,
};
use crate::request::is_valid_id;
use crate::time::{exceeds, expired, format_instant, truncate_to_seconds};
use crate::types::{
    Federation, IdpDescriptor, NAMEID_ENTITY, NAMEID_TRANSIENT, SAML_NS, SAMLP_NS, SpConfig,
};

/// Top-level `StatusCode` for a request the responder refuses as malformed or unknown.
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
/// Top-level `StatusCode` for a failure on the responder's side.
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
/// Second-level `StatusCode`: some sessions could not be ended.
pub const STATUS_PARTIAL_LOGOUT: &str = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout";

/// Largest logout message accepted, as XML, by either binding (issue 17). A signed SPID
/// LogoutRequest or LogoutResponse is 2-5 KB (a KeyInfo certificate included); the general
/// message limit (256 KiB, sized for Responses) would let one hostile logout message cost
/// tens of normal logins.
pub const MAX_LOGOUT_XML: usize = 32 * 1024;
/// Most nodes in a logout message: a SPID one has about twenty.
const MAX_LOGOUT_NODES: usize = 1024;
/// Largest inflated HTTP-Redirect message accepted.
const MAX_INFLATED: u64 = MAX_LOGOUT_XML as u64;
/// Most bytes an HTTP-Redirect message may inflate to per byte of DEFLATE data, beyond
/// [`INFLATE_FLOOR`]. DEFLATE reaches about 1000:1 on repetitive input, so without a ratio a
/// query of a few hundred bytes would buy a parse of [`MAX_INFLATED`] bytes; XML messages
/// compress 3-10:1 (issue 17).
const MAX_INFLATE_RATIO: u64 = 32;
/// Inflated size always allowed, whatever the ratio: a SPID LogoutRequest is 1-2 KB.
const INFLATE_FLOOR: u64 = 16 * 1024;

/// The parser limits of a logout message: the message defaults, with the byte and node
/// limits above.
fn logout_limits() -> Limits {
    Limits {
        max_bytes: MAX_LOGOUT_XML,
        max_nodes: MAX_LOGOUT_NODES,
        ..Limits::default()
    }
}

/// Why a logout message was refused. Every variant is a reason to refuse attacker-supplied
/// bytes, except [`LogoutError::Status`] (the IdP reports that it could not log out).
/// [`LogoutError::code`] is stable and bounded, for logs and metric labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutError {
    /// The bytes are not a well-formed, bounded XML document.
    Xml(saml_xml::Error),
    /// The binding encoding is wrong: no message parameter, a parameter sent twice, both
    /// `SAMLRequest` and `SAMLResponse`, not base64, not raw DEFLATE, or too large.
    Binding {
        /// What is wrong (a constant of this crate).
        reason: &'static str,
    },
    /// The message is not the one expected here (a request where a response is awaited, or
    /// a root element other than `samlp:LogoutRequest` / `samlp:LogoutResponse`).
    WrongMessage,
    /// A required element is absent.
    MissingElement {
        /// Path of the missing element.
        element: &'static str,
    },
    /// An element that must occur at most once occurs more than once.
    DuplicateElement {
        /// Path of the repeated element.
        element: &'static str,
    },
    /// A required attribute is absent or empty.
    MissingAttribute {
        /// Path of the element.
        element: &'static str,
        /// The attribute's local name.
        attribute: &'static str,
    },
    /// `Version` is not `2.0`.
    UnsupportedVersion,
    /// A time attribute is not a UTC `xs:dateTime`.
    MalformedInstant {
        /// The attribute's local name.
        attribute: &'static str,
    },
    /// The message carries no signature: no `SigAlg`/`Signature` (HTTP-Redirect) or no
    /// `ds:Signature` child of the root (HTTP-POST).
    Unsigned,
    /// `SigAlg` names a weak algorithm (SHA-1, MD5, HMAC).
    WeakSignatureAlgorithm,
    /// `SigAlg` names an algorithm this crate does not know.
    UnknownSignatureAlgorithm,
    /// The HTTP-Redirect query signature does not verify with any of the IdP's keys.
    RedirectSignature,
    /// The enveloped signature (HTTP-POST) does not verify with the IdP's keys.
    Signature(xmldsig::Error),
    /// `Destination` is not our SingleLogoutService URL.
    DestinationMismatch,
    /// `Issuer` is empty or not the IdP's entityID.
    IssuerMismatch,
    /// `Issuer/@Format` is not the entity format (or absent where SPID requires it).
    IssuerFormat,
    /// `InResponseTo` is not the ID of our pending `LogoutRequest`.
    InResponseToMismatch,
    /// `IssueInstant` is in the future beyond the skew.
    IssuedInFuture,
    /// The `LogoutResponse` was issued before our `LogoutRequest` (beyond the skew).
    IssuedBeforeRequest,
    /// `NotOnOrAfter` has passed, or the `IssueInstant` of an IdP `LogoutRequest` is older
    /// than the accepted age (beyond the skew).
    Expired,
    /// An IdP `LogoutRequest` names no `SessionIndex` (SPID requires one; without it the
    /// request would end every session of the subject).
    MissingSessionIndex,
    /// `Status` or its `StatusCode/@Value` is absent.
    MissingStatus,
    /// The IdP's `LogoutResponse` reports a failure.
    Status {
        /// The top-level `StatusCode/@Value` (bounded).
        code: String,
        /// The nested `StatusCode/@Value`, if any (bounded).
        sub_code: Option<String>,
    },
}

impl LogoutError {
    /// A short, stable identifier for logs and metric labels. The set is closed; XML errors
    /// keep their own `xml_*` codes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Xml(e) => e.code(),
            Self::Binding { .. } => "slo_binding",
            Self::WrongMessage => "slo_wrong_message",
            Self::MissingElement { .. } => "slo_missing_element",
            Self::DuplicateElement { .. } => "slo_duplicate_element",
            Self::MissingAttribute { .. } => "slo_missing_attribute",
            Self::UnsupportedVersion => "slo_unsupported_version",
            Self::MalformedInstant { .. } => "slo_malformed_instant",
            Self::Unsigned => "slo_unsigned",
            Self::WeakSignatureAlgorithm => "slo_weak_signature_algorithm",
            Self::UnknownSignatureAlgorithm => "slo_unknown_signature_algorithm",
            Self::RedirectSignature => "slo_redirect_signature",
            Self::Signature(_) => "slo_signature",
            Self::DestinationMismatch => "slo_destination_mismatch",
            Self::IssuerMismatch => "slo_issuer_mismatch",
            Self::IssuerFormat => "slo_issuer_format",
            Self::InResponseToMismatch => "slo_in_response_to_mismatch",
            Self::IssuedInFuture => "slo_issued_in_future",
            Self::IssuedBeforeRequest => "slo_issued_before_request",
            Self::Expired => "slo_expired",
            Self::MissingSessionIndex => "slo_missing_session_index",
            Self::MissingStatus => "slo_missing_status",
            Self::Status { .. } => "slo_status",
        }
    }
}

impl fmt::Display for LogoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xml(e) => write!(f, "XML refused: {e}"),
            Self::Binding { reason } => write!(f, "binding encoding: {reason}"),
            Self::WrongMessage => f.write_str("not the logout message expected here"),
            Self::MissingElement { element } => write!(f, "{element} is missing"),
            Self::DuplicateElement { element } => write!(f, "{element} occurs more than once"),
            Self::MissingAttribute { element, attribute } => {
                write!(f, "{element}/@{attribute} is missing or empty")
            }
            Self::UnsupportedVersion => f.write_str("Version is not 2.0"),
            Self::MalformedInstant { attribute } => {
                write!(f, "@{attribute} is not a UTC xs:dateTime")
            }
            Self::Unsigned => f.write_str("the message is not signed"),
            Self::WeakSignatureAlgorithm => f.write_str("SigAlg is a weak algorithm"),
            Self::UnknownSignatureAlgorithm => f.write_str("SigAlg is not a known algorithm"),
            Self::RedirectSignature => {
                f.write_str("the query signature does not verify with the IdP's keys")
            }
            Self::Signature(e) => write!(f, "signature: {e}"),
            Self::DestinationMismatch => f.write_str("Destination is not our logout URL"),
            Self::IssuerMismatch => f.write_str("Issuer is not the expected IdP"),
            Self::IssuerFormat => f.write_str("Issuer/@Format is not the entity format"),
            Self::InResponseToMismatch => {
                f.write_str("InResponseTo does not match our logout request")
            }
            Self::IssuedInFuture => f.write_str("issued in the future"),
            Self::IssuedBeforeRequest => f.write_str("issued before our logout request"),
            Self::Expired => f.write_str("the message has expired"),
            Self::MissingSessionIndex => f.write_str("LogoutRequest has no SessionIndex"),
            Self::MissingStatus => f.write_str("Status or StatusCode missing"),
            Self::Status { code, sub_code } => {
                write!(f, "logout failed at the IdP: {code}")?;
                if let Some(sub) = sub_code {
                    write!(f, " / {sub}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LogoutError {}

impl From<saml_xml::Error> for LogoutError {
    fn from(e: saml_xml::Error) -> Self {
        LogoutError::Xml(e)
    }
}

/// The shared checks' faults, in this error's coarser variants (which name no element where
/// the logout codes never did; the `StatusMessage` is not kept).
impl From<Fault> for LogoutError {
    fn from(f: Fault) -> Self {
        match f {
            Fault::MissingElement { element } => LogoutError::MissingElement { element },
            Fault::DuplicateElement { element } => LogoutError::DuplicateElement { element },
            Fault::MissingAttribute { element, attribute } => {
                LogoutError::MissingAttribute { element, attribute }
            }
            Fault::UnsupportedVersion { .. } => LogoutError::UnsupportedVersion,
            Fault::MalformedInstant { attribute, .. } => {
                LogoutError::MalformedInstant { attribute }
            }
            Fault::IssuerMismatch { .. } => LogoutError::IssuerMismatch,
            Fault::IssuerFormat { .. } => LogoutError::IssuerFormat,
            Fault::MissingStatus => LogoutError::MissingStatus,
            Fault::Status { code, sub_code, .. } => LogoutError::Status { code, sub_code },
        }
    }
}

// === Outgoing ===

/// Whose session a `LogoutRequest` ends: the values the IdP asserted at login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogoutSubject<'a> {
    /// The transient `NameID` of the Assertion.
    pub name_id: &'a str,
    /// Its `NameQualifier`.
    pub name_qualifier: &'a str,
    /// `AuthnStatement/@SessionIndex`, when the IdP gave one.
    pub session_index: Option<&'a str>,
}

/// A signed-on-send SAML message of ours: a `LogoutRequest` or a `LogoutResponse`.
#[derive(Debug, Clone)]
struct Outgoing {
    id: String,
    issue_instant: SystemTime,
    destination: String,
    xml: String,
}

impl Outgoing {
    /// The HTTP-Redirect URL carrying the message as `param`, with the query-string signature.
    fn redirect_url(
        &self,
        param: &str,
        relay_state: &str,
        key: &SigningKey,
    ) -> Result<String, RequestError> {
        binding::redirect_message(&self.destination, param, &self.xml, relay_state, key)
    }

    /// The HTTP-POST form carrying the message as `param`, with an enveloped signature.
    fn post_form(
        &self,
        param: &str,
        relay_state: &str,
        key: &SigningKey,
        script_nonce: Option<&str>,
    ) -> Result<PostForm, RequestError> {
        binding::post_message(
            &self.destination,
            param,
            &self.xml,
            &self.id,
            relay_state,
            key,
            script_nonce,
        )
    }
}

/// The SP's `samlp:LogoutRequest` (SPID): `ID`, `Version`, `IssueInstant`, `Destination`;
/// `saml:Issuer` with `Format` entity and `NameQualifier`; `saml:NameID` transient with its
/// `NameQualifier`; `samlp:SessionIndex` when known.
#[derive(Debug, Clone)]
pub struct LogoutRequest(Outgoing);

/// The SP's `samlp:LogoutResponse` to an IdP-initiated `LogoutRequest`.
#[derive(Debug, Clone)]
pub struct LogoutResponse(Outgoing);

fn check_common(
    sp: &SpConfig,
    destination: &str,
    id: &str,
    now: SystemTime,
) -> Result<(SystemTime, String), RequestError> {
    if !is_valid_id(id) {
        return Err(RequestError::InvalidId);
    }
    for (field, value) in [
        ("destination", destination),
        ("sp.entity_id", sp.entity_id.as_str()),
    ] {
        if value.is_empty() {
            return Err(RequestError::EmptyValue { field });
        }
    }
    let issue_instant = truncate_to_seconds(now);
    let instant = format_instant(issue_instant).ok_or(RequestError::InvalidInstant)?;
    Ok((issue_instant, instant))
}

fn issuer(sp: &SpConfig) -> String {
    let entity = escape(&sp.entity_id);
    format!(
        "<saml:Issuer Format=\"{NAMEID_ENTITY}\" NameQualifier=\"{entity}\">{entity}</saml:Issuer>"
    )
}

impl LogoutRequest {
    /// Builds the request. `id` comes from a CSPRNG (an NCName); `destination` is the IdP's
    /// `SingleLogoutService` `Location` for the binding that will carry it.
    pub fn new(
        sp: &SpConfig,
        destination: &str,
        id: &str,
        subject: &LogoutSubject<'_>,
        now: SystemTime,
    ) -> Result<Self, RequestError> {
        let (issue_instant, instant) = check_common(sp, destination, id, now)?;
        if subject.name_id.is_empty() {
            return Err(RequestError::EmptyValue {
                field: "subject.name_id",
            });
        }
        let mut xml = String::with_capacity(1024);
        let _ = write!(
            xml,
            "<samlp:LogoutRequest xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" \
             ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\" Destination=\"{}\">{}\
             <saml:NameID Format=\"{NAMEID_TRANSIENT}\" NameQualifier=\"{}\">{}</saml:NameID>",
            escape(destination),
            issuer(sp),
            escape(subject.name_qualifier),
            escape(subject.name_id),
        );
        if let Some(index) = subject.session_index.filter(|s| !s.is_empty()) {
            let _ = write!(
                xml,
                "<samlp:SessionIndex>{}</samlp:SessionIndex>",
                escape(index)
            );
        }
        xml.push_str("</samlp:LogoutRequest>");
        Ok(LogoutRequest(Outgoing {
            id: id.to_owned(),
            issue_instant,
            destination: destination.to_owned(),
            xml,
        }))
    }

    /// The request `ID`: store it to match the `LogoutResponse`'s `InResponseTo`.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The `IssueInstant` as written: [`ExpectedLogoutResponse::request_issue_instant`].
    pub fn issue_instant(&self) -> SystemTime {
        self.0.issue_instant
    }

    /// The unsigned XML.
    pub fn xml(&self) -> &str {
        &self.0.xml
    }

    /// The HTTP-Redirect URL (`SAMLRequest`, query-string signature).
    pub fn redirect_url(
        &self,
        relay_state: &str,
        key: &SigningKey,
    ) -> Result<String, RequestError> {
        self.0.redirect_url("SAMLRequest", relay_state, key)
    }

    /// The HTTP-POST form (`SAMLRequest`, enveloped signature).
    pub fn post_form(
        &self,
        relay_state: &str,
        key: &SigningKey,
        script_nonce: Option<&str>,
    ) -> Result<PostForm, RequestError> {
        self.0
            .post_form("SAMLRequest", relay_state, key, script_nonce)
    }
}

impl LogoutResponse {
    /// Builds the response to the IdP `LogoutRequest` with ID `in_response_to`. `status` is
    /// [`crate::STATUS_SUCCESS`], or a failure code with an optional second-level code (such as
    /// [`STATUS_PARTIAL_LOGOUT`]).
    pub fn new(
        sp: &SpConfig,
        destination: &str,
        id: &str,
        in_response_to: &str,
        status: (&str, Option<&str>),
        now: SystemTime,
    ) -> Result<Self, RequestError> {
        let (issue_instant, instant) = check_common(sp, destination, id, now)?;
        if in_response_to.is_empty() {
            return Err(RequestError::EmptyValue {
                field: "in_response_to",
            });
        }
        let mut xml = String::with_capacity(1024);
        let _ = write!(
            xml,
            "<samlp:LogoutResponse xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" \
             ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{instant}\" Destination=\"{}\" \
             InResponseTo=\"{}\">{}<samlp:Status>\
             <samlp:StatusCode Value=\"{}\"",
            escape(destination),
            escape(in_response_to),
            issuer(sp),
            escape(status.0),
        );
        match status.1 {
            Some(sub) => {
                let _ = write!(
                    xml,
                    "><samlp:StatusCode Value=\"{}\"/></samlp:StatusCode>",
                    escape(sub)
                );
            }
            None => xml.push_str("/>"),
        }
        xml.push_str("</samlp:Status></samlp:LogoutResponse>");
        Ok(LogoutResponse(Outgoing {
            id: id.to_owned(),
            issue_instant,
            destination: destination.to_owned(),
            xml,
        }))
    }

    /// The response `ID`.
    pub fn id(&self) -> &str {
        &self.0.id
    }

    /// The unsigned XML.
    pub fn xml(&self) -> &str {
        &self.0.xml
    }

    /// The HTTP-Redirect URL (`SAMLResponse`, query-string signature).
    pub fn redirect_url(
        &self,
        relay_state: &str,
        key: &SigningKey,
    ) -> Result<String, RequestError> {
        self.0.redirect_url("SAMLResponse", relay_state, key)
    }

    /// The HTTP-POST form (`SAMLResponse`, enveloped signature).
    pub fn post_form(
        &self,
        relay_state: &str,
        key: &SigningKey,
        script_nonce: Option<&str>,
    ) -> Result<PostForm, RequestError> {
        self.0
            .post_form("SAMLResponse", relay_state, key, script_nonce)
    }
}

// === Incoming ===

/// Which kind of message arrived at the SingleLogoutService.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SloKind {
    /// `SAMLRequest`: an IdP-initiated `LogoutRequest`.
    Request,
    /// `SAMLResponse`: the answer to our `LogoutRequest`.
    Response,
}

/// The HTTP-Redirect signature parts, checked only once the IdP is known.
#[derive(Debug, Clone)]
struct QuerySignature {
    /// The octets the signature covers, exactly as received.
    signed: String,
    /// `SigAlg`, percent-decoded.
    sig_alg: Option<String>,
    /// `Signature`, percent-decoded (still base64).
    signature: Option<String>,
}

/// A logout message as a binding delivered it, decoded but not yet trusted.
#[derive(Debug, Clone)]
pub struct IncomingSlo {
    kind: SloKind,
    xml: Vec<u8>,
    relay_state: Option<String>,
    /// `Some` for HTTP-Redirect, `None` for HTTP-POST.
    query: Option<QuerySignature>,
}

impl IncomingSlo {
    /// Decodes an HTTP-Redirect message from the raw query string, exactly as received (the
    /// signature covers its octets, not a re-encoding).
    pub fn from_redirect(raw_query: &str) -> Result<Self, LogoutError> {
        let bad = |reason| LogoutError::Binding { reason };
        let mut raw: [Option<&str>; 5] = [None; 5];
        const NAMES: [&str; 5] = [
            "SAMLRequest",
            "SAMLResponse",
            "RelayState",
            "SigAlg",
            "Signature",
        ];
        for part in raw_query.split('&') {
            let name = part.split_once('=').map_or(part, |(n, _)| n);
            if let Some(i) = NAMES.iter().position(|n| *n == name) {
                if raw[i].is_some() {
                    return Err(bad("a parameter is sent more than once"));
                }
                raw[i] = Some(part);
            }
        }
        let [request, response, relay, sig_alg, signature] = raw;
        let (kind, message) = match (request, response) {
            (Some(m), None) => (SloKind::Request, m),
            (None, Some(m)) => (SloKind::Response, m),
            (Some(_), Some(_)) => return Err(bad("both SAMLRequest and SAMLResponse")),
            (None, None) => return Err(bad("no SAMLRequest or SAMLResponse")),
        };
        let value = |part: &str| {
            let raw = part.split_once('=').map_or("", |(_, v)| v);
            String::from_utf8(binding::form_decode(raw.as_bytes())).map_err(|_| bad("not UTF-8"))
        };
        let deflated = decode_base64(&value(message)?).ok_or(bad("message is not base64"))?;
        let cap = (deflated.len() as u64)
            .saturating_mul(MAX_INFLATE_RATIO)
            .clamp(INFLATE_FLOOR, MAX_INFLATED);
        let mut xml = Vec::new();
        let inflated = DeflateDecoder::new(deflated.as_slice())
            .take(cap + 1)
            .read_to_end(&mut xml);
        // Decoding work: the query once, the output at most `cap + 1` bytes.
        saml_xml::work::record(raw_query.len() as u64 + xml.len() as u64);
        inflated.map_err(|_| bad("message is not raw DEFLATE data"))?;
        if xml.len() as u64 > cap {
            return Err(bad("message inflates beyond the limit"));
        }
        let signed = [Some(message), relay, sig_alg]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("&");
        Ok(IncomingSlo {
            kind,
            xml,
            relay_state: relay.map(value).transpose()?,
            query: Some(QuerySignature {
                signed,
                sig_alg: sig_alg.map(value).transpose()?,
                signature: signature.map(value).transpose()?,
            }),
        })
    }

    /// Decodes an HTTP-POST message from the `application/x-www-form-urlencoded` body.
    pub fn from_post(body: &[u8]) -> Result<Self, LogoutError> {
        let bad = |reason| LogoutError::Binding { reason };
        // Decoding work: the form once, then its base64 value once.
        saml_xml::work::record(2 * body.len() as u64);
        let mut fields: [Option<Vec<u8>>; 3] = [None, None, None];
        const NAMES: [&[u8]; 3] = [b"SAMLRequest", b"SAMLResponse", b"RelayState"];
        for pair in body.split(|&b| b == b'&') {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let key = binding::form_decode(key);
            if let Some(i) = NAMES.iter().position(|n| *n == key.as_slice()) {
                if fields[i].is_some() {
                    return Err(bad("a parameter is sent more than once"));
                }
                fields[i] = Some(binding::form_decode(value));
            }
        }
        let [request, response, relay] = fields;
        let (kind, message) = match (request, response) {
            (Some(m), None) => (SloKind::Request, m),
            (None, Some(m)) => (SloKind::Response, m),
            (Some(_), Some(_)) => return Err(bad("both SAMLRequest and SAMLResponse")),
            (None, None) => return Err(bad("no SAMLRequest or SAMLResponse")),
        };
        let text = String::from_utf8(message).map_err(|_| bad("not UTF-8"))?;
        let xml = decode_base64(&text).ok_or(bad("message is not base64"))?;
        if xml.len() > MAX_LOGOUT_XML {
            return Err(bad("message larger than the limit"));
        }
        let relay_state = relay
            .map(|r| String::from_utf8(r).map_err(|_| bad("not UTF-8")))
            .transpose()?;
        Ok(IncomingSlo {
            kind,
            xml,
            relay_state,
            query: None,
        })
    }

    /// Request or response.
    pub fn kind(&self) -> SloKind {
        self.kind
    }

    /// `RelayState`, if sent. Untrusted.
    pub fn relay_state(&self) -> Option<&str> {
        self.relay_state.as_deref()
    }

    /// The decoded XML. Untrusted.
    pub fn xml(&self) -> &[u8] {
        &self.xml
    }

    /// Whether it came by HTTP-Redirect.
    pub fn is_redirect(&self) -> bool {
        self.query.is_some()
    }

    /// The `Issuer` text, to choose which IdP's keys to verify with. **Untrusted**: a lookup
    /// key only; validation checks it again.
    pub fn issuer_hint(&self) -> Option<String> {
        let doc = Document::parse(&self.xml, &logout_limits()).ok()?;
        let issuer = doc
            .root()
            .child_elements()
            .find(|c| c.is(SAML_NS, "Issuer"))?;
        let text = issuer.text().trim().to_owned();
        (!text.is_empty()).then_some(text)
    }

    /// A `LogoutResponse`'s `InResponseTo`, to find our pending request. **Untrusted**.
    pub fn in_response_to_hint(&self) -> Option<String> {
        let doc = Document::parse(&self.xml, &logout_limits()).ok()?;
        doc.root()
            .attribute("InResponseTo")
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

/// What the broker expects of a `LogoutResponse`: what it stored when it sent the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedLogoutResponse<'a> {
    /// Our `LogoutRequest` `ID`.
    pub request_id: &'a str,
    /// Its `IssueInstant`.
    pub request_issue_instant: SystemTime,
    /// Our SingleLogoutService URL: the `Destination`.
    pub destination: &'a str,
    /// The IdP the request went to; must equal the descriptor's entityID.
    pub idp_entity_id: &'a str,
}

/// A validated `LogoutResponse` reporting success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLogoutResponse {
    /// The response `ID`.
    pub id: String,
}

/// A validated IdP-initiated `LogoutRequest`: every value read from the verified message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLogoutRequest {
    /// The request `ID`: the `InResponseTo` of our answer, and the key for one-time use.
    pub id: String,
    /// The IdP entityID (the `Issuer`).
    pub issuer: String,
    /// The `NameID` text, trimmed.
    pub name_id: String,
    /// `NameID/@NameQualifier`, if given.
    pub name_qualifier: Option<String>,
    /// Every `SessionIndex` (at least one).
    pub session_indexes: Vec<String>,
    /// Until when to remember [`ValidLogoutRequest::id`] against replay: `NotOnOrAfter`, or
    /// `IssueInstant` plus the accepted age.
    pub remember_until: SystemTime,
}

/// Validates the IdP's `LogoutResponse` to our `LogoutRequest`: signed with one of the IdP's
/// metadata keys (as the binding requires), `Version` 2.0, `IssueInstant` neither in the
/// future nor before our request (beyond `skew`), `Destination` ours, `InResponseTo` our
/// request, `Issuer` the IdP (entity `Format`; required outside CIE), `Status` Success.
/// The caller consumes the pending request (one-time use).
pub fn validate_logout_response(
    msg: &IncomingSlo,
    expected: &ExpectedLogoutResponse<'_>,
    idp: &IdpDescriptor,
    now: SystemTime,
    skew: Duration,
) -> Result<ValidLogoutResponse, LogoutError> {
    if msg.kind != SloKind::Response {
        return Err(LogoutError::WrongMessage);
    }
    if idp.entity_id != expected.idp_entity_id {
        return Err(LogoutError::IssuerMismatch);
    }
    let doc = Document::parse(&msg.xml, &logout_limits())?;
    if !doc.root().is(SAMLP_NS, "LogoutResponse") {
        return Err(LogoutError::WrongMessage);
    }
    let verified = verify(msg, &doc, idp)?;
    let root = verified.element();
    const EL: &str = "LogoutResponse";
    let id = required_attr(root, EL, "ID")?;
    check_version(root, EL)?;
    let issued = instant_attr(root, EL, "IssueInstant")?;
    if exceeds(issued, now, skew) {
        return Err(LogoutError::IssuedInFuture);
    }
    if exceeds(expected.request_issue_instant, issued, skew) {
        return Err(LogoutError::IssuedBeforeRequest);
    }
    if required_attr(root, EL, "Destination")? != expected.destination {
        return Err(LogoutError::DestinationMismatch);
    }
    if required_attr(root, EL, "InResponseTo")? != expected.request_id {
        return Err(LogoutError::InResponseToMismatch);
    }
    check_idp_issuer(root, "LogoutResponse/Issuer", idp)?;
    check_status(
        root,
        "LogoutResponse/Status",
        "LogoutResponse/Status/StatusCode",
    )?;
    Ok(ValidLogoutResponse { id: id.to_owned() })
}

/// Validates an IdP-initiated `LogoutRequest`: signed with one of the IdP's metadata keys,
/// `Version` 2.0, `IssueInstant` not in the future and not older than `max_age` (each beyond
/// `skew`), `NotOnOrAfter` (if any) not passed, `Destination` = `destination` (our
/// SingleLogoutService URL), `Issuer` the IdP, one `saml:NameID` with text, and at least one
/// `SessionIndex`. The caller records [`ValidLogoutRequest::id`] for one-time use.
pub fn validate_logout_request(
    msg: &IncomingSlo,
    destination: &str,
    idp: &IdpDescriptor,
    now: SystemTime,
    skew: Duration,
    max_age: Duration,
) -> Result<ValidLogoutRequest, LogoutError> {
    if msg.kind != SloKind::Request {
        return Err(LogoutError::WrongMessage);
    }
    let doc = Document::parse(&msg.xml, &logout_limits())?;
    if !doc.root().is(SAMLP_NS, "LogoutRequest") {
        return Err(LogoutError::WrongMessage);
    }
    let verified = verify(msg, &doc, idp)?;
    let root = verified.element();
    const EL: &str = "LogoutRequest";
    let id = required_attr(root, EL, "ID")?;
    check_version(root, EL)?;
    let issued = instant_attr(root, EL, "IssueInstant")?;
    if exceeds(issued, now, skew) {
        return Err(LogoutError::IssuedInFuture);
    }
    if exceeds(now, issued + max_age, skew) {
        return Err(LogoutError::Expired);
    }
    let mut remember_until = issued + max_age;
    if root.attribute("NotOnOrAfter").is_some() {
        let limit = instant_attr(root, EL, "NotOnOrAfter")?;
        if expired(limit, now, skew) {
            return Err(LogoutError::Expired);
        }
        remember_until = remember_until.max(limit);
    }
    if required_attr(root, EL, "Destination")? != destination {
        return Err(LogoutError::DestinationMismatch);
    }
    check_idp_issuer(root, "LogoutRequest/Issuer", idp)?;
    let name_id = required_child(root, SAML_NS, "NameID", "LogoutRequest/NameID")?;
    let name_id_value = name_id.text().trim().to_owned();
    if name_id_value.is_empty() {
        return Err(LogoutError::MissingElement {
            element: "LogoutRequest/NameID",
        });
    }
    let session_indexes: Vec<String> = root
        .child_elements()
        .filter(|c| c.is(SAMLP_NS, "SessionIndex"))
        .map(|c| c.text().trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if session_indexes.is_empty() {
        return Err(LogoutError::MissingSessionIndex);
    }
    Ok(ValidLogoutRequest {
        id: id.to_owned(),
        issuer: idp.entity_id.clone(),
        name_id: name_id_value,
        name_qualifier: name_id
            .attribute("NameQualifier")
            .filter(|q| !q.is_empty())
            .map(str::to_owned),
        session_indexes,
        remember_until: remember_until + skew,
    })
}

/// The message's signature, by its binding, with the IdP's metadata keys only. Returns the
/// root as the element every value is read from.
fn verify<'d, 'a>(
    msg: &IncomingSlo,
    doc: &'d Document<'a>,
    idp: &IdpDescriptor,
) -> Result<Verified<'d, 'a>, LogoutError> {
    let root = doc.root();
    match &msg.query {
        Some(q) => {
            let (Some(sig_alg), Some(signature)) = (&q.sig_alg, &q.signature) else {
                return Err(LogoutError::Unsigned);
            };
            if xmldsig::is_weak_algorithm(sig_alg) {
                return Err(LogoutError::WeakSignatureAlgorithm);
            }
            let method =
                SignatureMethod::from_uri(sig_alg).ok_or(LogoutError::UnknownSignatureAlgorithm)?;
            let signature = decode_base64(signature).ok_or(LogoutError::RedirectSignature)?;
            if idp
                .signing_keys
                .iter()
                .any(|k| k.verify_detached(method, q.signed.as_bytes(), &signature))
            {
                Ok(Verified::Query(root))
            } else {
                Err(LogoutError::RedirectSignature)
            }
        }
        None => {
            if !root.child_elements().any(|c| c.is(DSIG_NS, "Signature")) {
                return Err(LogoutError::Unsigned);
            }
            xmldsig::verify(root, &idp.signing_keys, &Policy::default())
                .map(Verified::Enveloped)
                .map_err(LogoutError::Signature)
        }
    }
}

/// The proof that a message's signature verified: the root element, by either binding.
enum Verified<'d, 'a> {
    /// The HTTP-Redirect query signature covered the whole (inflated) message.
    Query(Element<'d, 'a>),
    /// The enveloped signature covered this element.
    Enveloped(xmldsig::Verified<'d, 'a>),
}

impl<'d, 'a> Verified<'d, 'a> {
    fn element(&self) -> Element<'d, 'a> {
        match self {
            Verified::Query(e) => *e,
            Verified::Enveloped(v) => v.element(),
        }
    }
}

/// The root's one `Issuer` must be `idp`, with the entity `Format` (which CIE may omit).
fn check_idp_issuer(
    root: Element<'_, '_>,
    element: &'static str,
    idp: &IdpDescriptor,
) -> Result<(), LogoutError> {
    let issuer = required_child(root, SAML_NS, "Issuer", element)?;
    let format_required = idp.federation != Federation::Cie;
    Ok(check_issuer(
        issuer,
        element,
        &idp.entity_id,
        format_required,
    )?)
}
