//! SAML metadata of identity providers: parse a metadata document (one `EntityDescriptor`
//! or an `EntitiesDescriptor` aggregate, such as the SPID registry's), optionally verify its
//! signature against a pinned certificate, and extract one [`saml::IdpDescriptor`] per IdP.
//!
//! This first part is pure: bytes in, descriptors out. Fetching, caching, refresh and
//! last-known-good arrive with issue 4.
//!
//! Invariants, stated as absences:
//! - no signing key comes from anywhere but a `KeyDescriptor` (use `signing` or unspecified)
//!   of the IdP's own `IDPSSODescriptor`;
//! - no IdP without a signing key is returned: it could never have a Response accepted, and
//!   an empty key list must never be read as "skip verification" (samael's bug);
//! - no document is trusted when a pinned certificate was given and its signature does not
//!   verify with it.

use std::fmt;

use saml::{BINDING_POST, BINDING_REDIRECT, Federation, IdpDescriptor};
use saml_xml::{Document, Element, Limits};
use xmldsig::{DSIG_NS, Policy, TrustedKey};

/// SAML 2.0 metadata namespace.
pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// The SAML 2.0 protocol support enumeration an IdP must declare.
const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";

/// Why a metadata document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The document is not acceptable XML.
    Xml(saml_xml::Error),
    /// A pinned certificate was given and the document's signature does not verify with it.
    Signature(xmldsig::Error),
    /// The root is neither `md:EntityDescriptor` nor `md:EntitiesDescriptor`.
    NotMetadata,
    /// The document describes no identity provider with a signing key and an SSO endpoint.
    NoIdentityProvider,
    /// An IdP entry is malformed (which one and why, for the operator).
    InvalidEntity {
        /// The entityID, or `?` when it is missing.
        entity_id: String,
        /// What is wrong.
        reason: &'static str,
    },
}

impl Error {
    /// A short, stable identifier for logs and metric labels.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Xml(e) => e.code(),
            Self::Signature(e) => e.code(),
            Self::NotMetadata => "metadata_not_metadata",
            Self::NoIdentityProvider => "metadata_no_identity_provider",
            Self::InvalidEntity { .. } => "metadata_invalid_entity",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xml(e) => write!(f, "metadata is not acceptable XML: {e}"),
            Self::Signature(e) => write!(f, "metadata signature not accepted: {e}"),
            Self::NotMetadata => f.write_str("not a SAML metadata document"),
            Self::NoIdentityProvider => f.write_str("no usable identity provider in metadata"),
            Self::InvalidEntity { entity_id, reason } => {
                write!(f, "identity provider {entity_id}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}

/// Parses IdP metadata. With `pinned` non-empty, the root element must carry an enveloped
/// signature that verifies with one of those certificates; with `pinned` empty the document
/// is trusted as given (a local file the operator placed, or a development setup).
pub fn parse_idp_metadata(
    bytes: &[u8],
    federation: Federation,
    pinned: &[TrustedKey],
) -> Result<Vec<IdpDescriptor>, Error> {
    let doc = Document::parse(bytes, &Limits::metadata()).map_err(Error::Xml)?;
    let root = doc.root();
    if !pinned.is_empty() {
        xmldsig::verify(root, pinned, &Policy::default()).map_err(Error::Signature)?;
    }
    let mut out = Vec::new();
    if root.is(MD_NS, "EntityDescriptor") {
        if let Some(idp) = entity(root, federation)? {
            out.push(idp);
        }
    } else if root.is(MD_NS, "EntitiesDescriptor") {
        collect(root, federation, &mut out)?;
    } else {
        return Err(Error::NotMetadata);
    }
    if out.is_empty() {
        return Err(Error::NoIdentityProvider);
    }
    Ok(out)
}

fn collect(
    group: Element<'_, '_>,
    federation: Federation,
    out: &mut Vec<IdpDescriptor>,
) -> Result<(), Error> {
    for child in group.child_elements() {
        if child.is(MD_NS, "EntityDescriptor") {
            if let Some(idp) = entity(child, federation)? {
                out.push(idp);
            }
        } else if child.is(MD_NS, "EntitiesDescriptor") {
            collect(child, federation, out)?;
        }
    }
    Ok(())
}

/// One `EntityDescriptor`: `None` when it describes no IdP (an SP entry in an aggregate).
fn entity(el: Element<'_, '_>, federation: Federation) -> Result<Option<IdpDescriptor>, Error> {
    let Some(sso) = el
        .child_elements()
        .find(|c| c.is(MD_NS, "IDPSSODescriptor"))
    else {
        return Ok(None);
    };
    let entity_id = el.attribute("entityID").unwrap_or("").trim().to_owned();
    let invalid = |reason| Error::InvalidEntity {
        entity_id: if entity_id.is_empty() {
            "?".into()
        } else {
            entity_id.clone()
        },
        reason,
    };
    if entity_id.is_empty() {
        return Err(invalid("missing entityID"));
    }
    let protocols = sso.attribute("protocolSupportEnumeration").unwrap_or("");
    if !protocols.split_ascii_whitespace().any(|p| p == PROTOCOL) {
        return Err(invalid("IDPSSODescriptor does not support SAML 2.0"));
    }

    let mut signing_keys = Vec::new();
    for kd in sso
        .child_elements()
        .filter(|c| c.is(MD_NS, "KeyDescriptor"))
    {
        if !matches!(kd.attribute("use"), None | Some("signing")) {
            continue;
        }
        let certs = kd
            .child_elements()
            .filter(|c| c.is(DSIG_NS, "KeyInfo"))
            .flat_map(|ki| ki.child_elements().filter(|c| c.is(DSIG_NS, "X509Data")))
            .flat_map(|xd| {
                xd.child_elements()
                    .filter(|c| c.is(DSIG_NS, "X509Certificate"))
            });
        for cert in certs {
            let key = TrustedKey::from_certificate_base64(&cert.text())
                .map_err(|_| invalid("signing certificate is not a usable X.509 certificate"))?;
            signing_keys.push(key);
        }
    }
    if signing_keys.is_empty() {
        return Err(invalid("no signing certificate"));
    }

    let endpoint = |binding: &str| {
        sso.child_elements()
            .filter(|c| c.is(MD_NS, "SingleSignOnService"))
            .find(|c| c.attribute("Binding") == Some(binding))
            .and_then(|c| c.attribute("Location"))
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
    };
    let sso_redirect_url = endpoint(BINDING_REDIRECT);
    let sso_post_url = endpoint(BINDING_POST);
    if sso_redirect_url.is_none() && sso_post_url.is_none() {
        return Err(invalid(
            "no SingleSignOnService for HTTP-Redirect or HTTP-POST",
        ));
    }
    Ok(Some(IdpDescriptor {
        entity_id,
        federation,
        sso_redirect_url,
        sso_post_url,
        signing_keys,
    }))
}
