//! Configuration types shared by requests and response validation.

use std::fmt;

use xmldsig::TrustedKey;

/// SAML 2.0 protocol namespace (`samlp:`).
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace (`saml:`).
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// `NameID` format of entity identifiers (Issuers).
pub const NAMEID_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";
/// `NameID` format of the transient identifiers SPID uses for subjects.
pub const NAMEID_TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";
/// The bearer subject confirmation method.
pub const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
/// The `StatusCode` of a successful Response.
pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
/// The HTTP-POST binding URI.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
/// The HTTP-Redirect binding URI.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// SPID extensions (`spid:`): metadata contact extensions, and the AuthnRequest's
/// `spid:AgeLimit` (SPID for minors).
pub const SPID_EXTENSIONS_NS: &str = "https://spid.gov.it/saml-extensions";

/// A SPID assurance level. Ordered: `L1 < L2 < L3`. CIE uses the same three class URIs, and
/// the Italian eIDAS node (FICEP) answers as a SPID IdP with them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `https://www.spid.gov.it/SpidL1`: single factor.
    L1,
    /// `https://www.spid.gov.it/SpidL2`: two factors. Requests at this level force
    /// re-authentication.
    L2,
    /// `https://www.spid.gov.it/SpidL3`: two factors, one a hardware token or smart card.
    L3,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 3] = [Level::L1, Level::L2, Level::L3];

    /// The `AuthnContextClassRef` URI of this level.
    pub fn uri(self) -> &'static str {
        match self {
            Level::L1 => "https://www.spid.gov.it/SpidL1",
            Level::L2 => "https://www.spid.gov.it/SpidL2",
            Level::L3 => "https://www.spid.gov.it/SpidL3",
        }
    }

    /// The level whose URI is exactly `uri`. Legacy or look-alike forms (such as
    /// `urn:oasis:names:tc:SAML:2.0:ac:classes:SpidL1`) are `None`.
    pub fn from_uri(uri: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.uri() == uri)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::L1 => "SpidL1",
            Level::L2 => "SpidL2",
            Level::L3 => "SpidL3",
        })
    }
}

/// The identity federation an IdP belongs to. It selects the few rules that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Federation {
    /// SPID: the Assertion's `Issuer` must carry `Format="…nameid-format:entity"`.
    Spid,
    /// CIE ("Entra con CIE"): the Assertion's `Issuer` may omit `Format` (if present it must
    /// be the entity format).
    Cie,
    /// eIDAS through the Italian node (FICEP), which answers as a SPID IdP: SPID rules.
    Eidas,
}

/// This service provider, as registered in its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpConfig {
    /// Our entityID: the AuthnRequest `Issuer` (and its `NameQualifier`), and the `Audience`
    /// every Assertion must name.
    pub entity_id: String,
    /// The AssertionConsumerService URL: Responses must name it as `Destination` and
    /// `Recipient`.
    pub acs_url: String,
    /// The metadata index of that AssertionConsumerService. When `None`, requests carry
    /// `AssertionConsumerServiceURL` and `ProtocolBinding` (HTTP-POST) instead.
    pub acs_index: Option<u16>,
    /// The metadata index of the AttributeConsumingService to request. SPID requires one on
    /// every request; `None` omits the attribute (and spid-sp-test will flag it).
    pub attribute_consuming_service_index: Option<u16>,
}

/// An identity provider, from metadata the operator trusts.
#[derive(Debug, Clone)]
pub struct IdpDescriptor {
    /// The IdP's entityID; Responses and Assertions must name it as `Issuer`.
    pub entity_id: String,
    /// Which federation's rules apply to its Responses.
    pub federation: Federation,
    /// `SingleSignOnService` location for the HTTP-Redirect binding, if it offers one.
    pub sso_redirect_url: Option<String>,
    /// `SingleSignOnService` location for the HTTP-POST binding, if it offers one.
    pub sso_post_url: Option<String>,
    /// The IdP's signing keys. Signatures are checked against these only, never against a key
    /// carried in a message. An empty list makes every Response fail.
    pub signing_keys: Vec<TrustedKey>,
    /// The IdP's `SingleLogoutService` endpoints for HTTP-Redirect and HTTP-POST, in
    /// metadata order; empty when it publishes none (logout then stays local).
    pub single_logout: Vec<SloEndpoint>,
}

impl IdpDescriptor {
    /// The `SingleLogoutService` for `binding` (a binding URI), if the IdP publishes one.
    pub fn slo_endpoint(&self, binding: &str) -> Option<&SloEndpoint> {
        self.single_logout.iter().find(|e| e.binding == binding)
    }
}

/// One `SingleLogoutService` of an IdP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SloEndpoint {
    /// [`BINDING_REDIRECT`] or [`BINDING_POST`].
    pub binding: &'static str,
    /// `Location`: where requests go.
    pub location: String,
    /// `ResponseLocation`: where responses go, when it differs from `location`.
    pub response_location: Option<String>,
}

impl SloEndpoint {
    /// Where a `LogoutResponse` goes: `ResponseLocation`, else `Location`.
    pub fn response_url(&self) -> &str {
        self.response_location.as_deref().unwrap_or(&self.location)
    }
}
