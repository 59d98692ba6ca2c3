//! The crate's error types that other modules share: why a Response was refused ([`Error`])
//! and why an outgoing message could not be built or encoded ([`RequestError`], for the
//! AuthnRequest, the logout messages and both bindings). They sit here, below every module
//! that returns them, so that no two modules need each other for an error type.

use std::fmt;

use crate::anomaly::parse_spid_error;
use crate::read::Fault;
use crate::types::Level;

/// Why [`crate::validate_response`] refused a Response.
///
/// Every variant is a reason to refuse attacker-supplied bytes. [`Error::code`] is a stable,
/// bounded label for logs and metrics; the fields (element and attribute names are constants of
/// this crate, never message content, except in [`Error::Status`]) help operators.
///
/// [`Error::Status`] is the one "expected" failure: the IdP reports that authentication did
/// not succeed. Its content comes from the Response's unsigned parts and serves only to pick a
/// message for the user (see [`crate::anomaly_message`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a well-formed, bounded XML document (see `saml_xml::Error`).
    Xml(saml_xml::Error),
    /// The root element is not `samlp:Response`.
    NotAResponse,
    /// A required element is absent. `element` names it, e.g. `"Assertion/Subject"`.
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
    UnsupportedVersion {
        /// `"Response"` or `"Assertion"`.
        element: &'static str,
    },
    /// A time attribute is not a UTC `xs:dateTime` (`YYYY-MM-DDTHH:MM:SS[.f]Z`).
    MalformedInstant {
        /// Path of the element.
        element: &'static str,
        /// The attribute's local name.
        attribute: &'static str,
    },
    /// An `IssueInstant` lies in the future by more than the allowed skew.
    IssuedInFuture {
        /// `"Response"` or `"Assertion"`.
        element: &'static str,
    },
    /// An `IssueInstant` is earlier than the AuthnRequest's (beyond the skew): this cannot
    /// answer that request.
    IssuedBeforeRequest {
        /// `"Response"` or `"Assertion"`.
        element: &'static str,
    },
    /// `Response/@Destination` is not our ACS URL.
    DestinationMismatch,
    /// `InResponseTo` (on the Response or on `SubjectConfirmationData`) is not the ID of the
    /// request this Response is being matched with. Unsolicited Responses end here too.
    InResponseToMismatch {
        /// Path of the element.
        element: &'static str,
    },
    /// An `Issuer` is empty or is not the expected IdP's entityID.
    IssuerMismatch {
        /// `"Response/Issuer"` or `"Assertion/Issuer"`.
        element: &'static str,
    },
    /// An `Issuer/@Format` is present but not `…nameid-format:entity`, or is absent where the
    /// federation requires it (a SPID or eIDAS Assertion).
    IssuerFormat {
        /// `"Response/Issuer"` or `"Assertion/Issuer"`.
        element: &'static str,
    },
    /// `Status` or its `StatusCode` is absent, or the `StatusCode` has no `Value`.
    MissingStatus,
    /// The IdP reports a failure: `StatusCode` is not Success.
    Status {
        /// The top-level `StatusCode/@Value`.
        code: String,
        /// The nested `StatusCode/@Value`, if any.
        sub_code: Option<String>,
        /// The `StatusMessage` text, if any.
        message: Option<String>,
        /// The SPID anomaly number from a `StatusMessage` of the form `ErrorCode nrNN`, when
        /// NN is in 19..=30 (user anomalies). See [`crate::anomaly_message`].
        spid_error: Option<u8>,
    },
    /// The document does not hold exactly one `saml:Assertion`, as a child of the Response
    /// (none with a Success status, several, or one anywhere else: signature wrapping).
    AssertionCount {
        /// How many `saml:Assertion` elements the whole document holds.
        found: usize,
    },
    /// The document holds a `saml:EncryptedAssertion`; SPID, CIE and FICEP never encrypt, and
    /// this crate never decrypts.
    EncryptedAssertion,
    /// The Response carries a `ds:Signature` that does not verify with the IdP's keys.
    ResponseSignature(xmldsig::Error),
    /// The Assertion's signature is absent or does not verify with the IdP's keys.
    AssertionSignature(xmldsig::Error),
    /// The Assertion holds a comment or processing instruction (comment injection, refused
    /// outright as defence in depth).
    CommentInAssertion,
    /// The Assertion holds an `Advice`, which SPID forbids (it could smuggle assertions).
    Advice,
    /// An element has a child the SAML 2.0 schema does not allow there (unknown, out of
    /// order, repeated beyond its bound, or a required one missing), or text where only
    /// elements may stand. `element` names the parent (a constant, or `"unknown"`).
    SchemaViolation {
        /// Local name of the element whose content is wrong.
        element: &'static str,
    },
    /// `NameID/@Format` is not transient.
    NameIdFormat,
    /// `SubjectConfirmation/@Method` is not bearer.
    NotBearer,
    /// `SubjectConfirmationData/@Recipient` is not our ACS URL.
    RecipientMismatch,
    /// A `NotOnOrAfter` has passed (beyond the skew).
    Expired {
        /// Path of the element.
        element: &'static str,
    },
    /// `Conditions/@NotBefore` is in the future (beyond the skew).
    NotYetValid,
    /// No `AudienceRestriction` names our entityID (each one present must).
    AudienceMismatch,
    /// `AuthnContextClassRef` is not one of the three SPID level URIs.
    UnknownAuthnContext,
    /// The asserted level is lower than the one requested.
    LevelTooLow {
        /// Level requested.
        requested: Level,
        /// Level asserted.
        received: Level,
    },
    /// An `AttributeStatement` has no `Attribute`, or an `Attribute` has no `Name` or no
    /// `AttributeValue`.
    MalformedAttribute,
}

impl Error {
    /// A short, stable identifier for logs and metric labels. The set is closed; XML errors
    /// keep their own `xml_*` codes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Xml(e) => e.code(),
            Self::NotAResponse => "saml_not_a_response",
            Self::MissingElement { .. } => "saml_missing_element",
            Self::DuplicateElement { .. } => "saml_duplicate_element",
            Self::MissingAttribute { .. } => "saml_missing_attribute",
            Self::UnsupportedVersion { .. } => "saml_unsupported_version",
            Self::MalformedInstant { .. } => "saml_malformed_instant",
            Self::IssuedInFuture { .. } => "saml_issued_in_future",
            Self::IssuedBeforeRequest { .. } => "saml_issued_before_request",
            Self::DestinationMismatch => "saml_destination_mismatch",
            Self::InResponseToMismatch { .. } => "saml_in_response_to_mismatch",
            Self::IssuerMismatch { .. } => "saml_issuer_mismatch",
            Self::IssuerFormat { .. } => "saml_issuer_format",
            Self::MissingStatus => "saml_missing_status",
            Self::Status { .. } => "saml_status",
            Self::AssertionCount { .. } => "saml_assertion_count",
            Self::EncryptedAssertion => "saml_encrypted_assertion",
            Self::ResponseSignature(_) => "saml_response_signature",
            Self::AssertionSignature(_) => "saml_assertion_signature",
            Self::CommentInAssertion => "saml_comment_in_assertion",
            Self::Advice => "saml_advice",
            Self::SchemaViolation { .. } => "saml_schema_violation",
            Self::NameIdFormat => "saml_name_id_format",
            Self::NotBearer => "saml_not_bearer",
            Self::RecipientMismatch => "saml_recipient_mismatch",
            Self::Expired { .. } => "saml_expired",
            Self::NotYetValid => "saml_not_yet_valid",
            Self::AudienceMismatch => "saml_audience_mismatch",
            Self::UnknownAuthnContext => "saml_unknown_authn_context",
            Self::LevelTooLow { .. } => "saml_level_too_low",
            Self::MalformedAttribute => "saml_malformed_attribute",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xml(e) => write!(f, "XML refused: {e}"),
            Self::NotAResponse => f.write_str("root element is not samlp:Response"),
            Self::MissingElement { element } => write!(f, "{element} is missing"),
            Self::DuplicateElement { element } => write!(f, "{element} occurs more than once"),
            Self::MissingAttribute { element, attribute } => {
                write!(f, "{element}/@{attribute} is missing or empty")
            }
            Self::UnsupportedVersion { element } => write!(f, "{element}/@Version is not 2.0"),
            Self::MalformedInstant { element, attribute } => {
                write!(f, "{element}/@{attribute} is not a UTC xs:dateTime")
            }
            Self::IssuedInFuture { element } => write!(f, "{element} issued in the future"),
            Self::IssuedBeforeRequest { element } => {
                write!(f, "{element} issued before the request")
            }
            Self::DestinationMismatch => f.write_str("Destination is not our ACS URL"),
            Self::InResponseToMismatch { element } => {
                write!(f, "{element}/@InResponseTo does not match the request")
            }
            Self::IssuerMismatch { element } => write!(f, "{element} is not the expected IdP"),
            Self::IssuerFormat { element } => {
                write!(f, "{element}/@Format is not the entity format")
            }
            Self::MissingStatus => f.write_str("Status or StatusCode missing"),
            Self::Status {
                code,
                sub_code,
                message,
                ..
            } => {
                write!(f, "authentication failed: {code}")?;
                if let Some(sub) = sub_code {
                    write!(f, " / {sub}")?;
                }
                if let Some(m) = message {
                    write!(f, " ({m:?})")?;
                }
                Ok(())
            }
            Self::AssertionCount { found } => {
                write!(
                    f,
                    "expected exactly one Assertion child, document has {found}"
                )
            }
            Self::EncryptedAssertion => f.write_str("encrypted assertions are not accepted"),
            Self::ResponseSignature(e) => write!(f, "Response signature: {e}"),
            Self::AssertionSignature(e) => write!(f, "Assertion signature: {e}"),
            Self::CommentInAssertion => {
                f.write_str("comments or processing instructions inside the Assertion")
            }
            Self::Advice => f.write_str("Assertion/Advice is not accepted"),
            Self::SchemaViolation { element } => {
                write!(f, "{element}: content not allowed by the SAML 2.0 schema")
            }
            Self::NameIdFormat => f.write_str("NameID Format is not transient"),
            Self::NotBearer => f.write_str("SubjectConfirmation Method is not bearer"),
            Self::RecipientMismatch => f.write_str("Recipient is not our ACS URL"),
            Self::Expired { element } => write!(f, "{element}/@NotOnOrAfter has passed"),
            Self::NotYetValid => f.write_str("Conditions/@NotBefore is in the future"),
            Self::AudienceMismatch => f.write_str("Audience is not our entityID"),
            Self::UnknownAuthnContext => f.write_str("AuthnContextClassRef is not a SPID level"),
            Self::LevelTooLow {
                requested,
                received,
            } => write!(
                f,
                "level {received} is lower than the requested {requested}"
            ),
            Self::MalformedAttribute => f.write_str("malformed AttributeStatement"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Xml(e) => Some(e),
            Self::ResponseSignature(e) | Self::AssertionSignature(e) => Some(e),
            _ => None,
        }
    }
}

impl From<saml_xml::Error> for Error {
    fn from(e: saml_xml::Error) -> Self {
        Error::Xml(e)
    }
}

impl From<Fault> for Error {
    fn from(f: Fault) -> Self {
        match f {
            Fault::MissingElement { element } => Error::MissingElement { element },
            Fault::DuplicateElement { element } => Error::DuplicateElement { element },
            Fault::MissingAttribute { element, attribute } => {
                Error::MissingAttribute { element, attribute }
            }
            Fault::UnsupportedVersion { element } => Error::UnsupportedVersion { element },
            Fault::MalformedInstant { element, attribute } => {
                Error::MalformedInstant { element, attribute }
            }
            Fault::IssuerMismatch { element } => Error::IssuerMismatch { element },
            Fault::IssuerFormat { element } => Error::IssuerFormat { element },
            Fault::MissingStatus => Error::MissingStatus,
            Fault::Status {
                code,
                sub_code,
                message,
            } => {
                let spid_error = message.as_deref().and_then(parse_spid_error);
                Error::Status {
                    code,
                    sub_code,
                    message,
                    spid_error,
                }
            }
        }
    }
}

/// Why a request could not be built or encoded. Every variant is a caller or configuration
/// problem, never attacker input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The ID is empty, longer than [`crate::MAX_ID_LEN`], does not start with a letter or `_`, or
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
