//! SAML metadata of identity providers: parse a metadata document (one `EntityDescriptor`
//! or an `EntitiesDescriptor` aggregate, such as the SPID registry's), optionally verify its
//! signature against a pinned certificate, and extract one [`saml::IdpDescriptor`] per IdP.
//!
//! The crate is pure: bytes and `now` in, decisions out. It also holds what the broker's
//! refresher needs that does no I/O: `validUntil`/`cacheDuration` ([`validity`]), the refresh
//! schedule ([`schedule`]), the per-source record and its counters ([`source`]) and the
//! lock-free [`Registry`] the login path reads. Fetching, backing files and the clock live in
//! the broker.
//!
//! Invariants, stated as absences:
//! - no signing key comes from anywhere but a `KeyDescriptor` (use `signing` or unspecified)
//!   of the IdP's own `IDPSSODescriptor`;
//! - no IdP without a signing key is returned: it could never have a Response accepted, and
//!   an empty key list must never be read as "skip verification" (samael's bug);
//! - no document is trusted when a pinned certificate was given and its signature does not
//!   verify with it.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

pub mod registry;
pub mod schedule;
pub mod source;
pub mod validity;

pub use registry::{IdpEntry, Registry, Snapshot};
pub use schedule::RefreshBounds;
pub use source::{FailureReason, Origin, SourceRecord, SourceState, SourceStats};
pub use validity::{Validity, parse_duration};

use saml::{BINDING_POST, BINDING_REDIRECT, Federation, IdpDescriptor, SloEndpoint};
use saml_xml::{Document, Element, Limits};
use xmldsig::{DSIG_NS, Policy, TrustedKey};

/// The metadata user-interface extension namespace (`mdui:`).
pub const MDUI_NS: &str = "urn:oasis:names:tc:SAML:metadata:ui";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

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
    /// `validUntil` or `cacheDuration` on the root is not a valid value.
    InvalidValidity(&'static str),
    /// The document's `validUntil` has passed.
    Expired,
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
            Self::InvalidValidity(_) => "metadata_invalid_validity",
            Self::Expired => "metadata_expired",
        }
    }

    /// The class of failure, for a source's counters.
    pub fn reason(&self) -> FailureReason {
        match self {
            Self::Signature(_) => FailureReason::Signature,
            Self::Expired => FailureReason::Expired,
            _ => FailureReason::Invalid,
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
            Self::InvalidValidity(what) => write!(f, "{what} is not a valid value"),
            Self::Expired => f.write_str("metadata validUntil has passed"),
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
    let (entries, _) = entries(root, federation, None)?;
    Ok(entries.into_iter().map(|e| e.descriptor).collect())
}

/// A metadata document accepted by [`load_document`].
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The root's `validUntil` (no later than the `ceiling` given to
    /// [`load_document_capped`]) and `cacheDuration`.
    pub validity: Validity,
    /// Its IdPs, tagged with the source name.
    pub idps: Vec<Arc<IdpEntry>>,
    /// IdP entries of the aggregate left out because they are malformed (the others are
    /// served): for the operator's log.
    pub skipped: Vec<Skipped>,
}

/// An IdP entry of an `EntitiesDescriptor` left out because it is malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entityID, or `?` when it is missing.
    pub entity_id: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Loads one source's document at `now`: parses it, verifies its root signature against
/// `pinned` (unless `pinned` is empty, which the caller allows only for sources marked
/// unsigned), refuses it when its root `validUntil` has passed, skips nested entities whose
/// own `validUntil` has passed, and extracts each IdP with its display name and logo.
pub fn load_document(
    bytes: &[u8],
    federation: Federation,
    pinned: &[TrustedKey],
    now: SystemTime,
    source: &str,
) -> Result<Loaded, Error> {
    load_document_capped(bytes, federation, pinned, now, source, None)
}

/// [`load_document`] with a ceiling on validity: the document, and each of its IdPs, is
/// treated as if its root `validUntil` were no later than `ceiling` (the source's maximum
/// age counted from when the document was accepted), so that a document that publishes no
/// `validUntil` (the AgID aggregate) is not trusted forever. A ceiling at or before `now`
/// refuses the document as expired.
pub fn load_document_capped(
    bytes: &[u8],
    federation: Federation,
    pinned: &[TrustedKey],
    now: SystemTime,
    source: &str,
    ceiling: Option<SystemTime>,
) -> Result<Loaded, Error> {
    let doc = Document::parse(bytes, &Limits::metadata()).map_err(Error::Xml)?;
    let root = doc.root();
    // The root's name first: an error page is "not metadata", not a signature failure.
    if !(root.is(MD_NS, "EntityDescriptor") || root.is(MD_NS, "EntitiesDescriptor")) {
        return Err(Error::NotMetadata);
    }
    if !pinned.is_empty() {
        xmldsig::verify(root, pinned, &Policy::default()).map_err(Error::Signature)?;
    }
    let mut validity = validity_of(root)?;
    validity.valid_until = earliest(validity.valid_until, ceiling);
    if !validity.usable_at(now) {
        return Err(Error::Expired);
    }
    let source: Arc<str> = source.into();
    let (found, skipped) = entries(root, federation, Some(now))?;
    let idps = found
        .into_iter()
        .map(|e| {
            Arc::new(IdpEntry {
                descriptor: e.descriptor,
                display_name: e.ui.0,
                logo: e.ui.1,
                source: source.clone(),
                valid_until: earliest(validity.valid_until, e.valid_until),
            })
        })
        .collect();
    Ok(Loaded {
        validity,
        idps,
        skipped,
    })
}

/// The earlier of two optional instants (`None` is "no limit").
fn earliest(a: Option<SystemTime>, b: Option<SystemTime>) -> Option<SystemTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `validUntil` and `cacheDuration` of `el`.
fn validity_of(el: Element<'_, '_>) -> Result<Validity, Error> {
    let valid_until = el
        .attribute("validUntil")
        .map(|v| saml::parse_instant(v.trim()).ok_or(Error::InvalidValidity("validUntil")))
        .transpose()?;
    let cache_duration = el
        .attribute("cacheDuration")
        .map(|v| parse_duration(v).ok_or(Error::InvalidValidity("cacheDuration")))
        .transpose()?;
    Ok(Validity {
        valid_until,
        cache_duration,
    })
}

/// Display name and logo.
type Ui = (Option<String>, Option<String>);

/// One IdP found in a document.
struct Found {
    descriptor: IdpDescriptor,
    ui: Ui,
    /// The earliest `validUntil` of the enclosing `EntitiesDescriptor`s below the root and of
    /// the `EntityDescriptor` itself (the root's is in the document's [`Validity`]).
    valid_until: Option<SystemTime>,
}

/// Every IdP under `root`, and the malformed IdP entries of an aggregate that were left out.
/// With `now`, nested elements whose own `validUntil` has passed (or is unreadable) are
/// skipped with everything under them. A malformed root `EntityDescriptor` is an error; in
/// an `EntitiesDescriptor` a malformed entry is skipped, and the document is refused only
/// when no usable IdP remains (with the first entry's error, when there was one).
fn entries(
    root: Element<'_, '_>,
    federation: Federation,
    now: Option<SystemTime>,
) -> Result<(Vec<Found>, Vec<Skipped>), Error> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    if root.is(MD_NS, "EntityDescriptor") {
        if let Some((descriptor, ui)) = entity(root, federation)? {
            out.push(Found {
                descriptor,
                ui,
                valid_until: None,
            });
        }
    } else if root.is(MD_NS, "EntitiesDescriptor") {
        collect(root, federation, now, None, &mut out, &mut skipped);
    } else {
        return Err(Error::NotMetadata);
    }
    if out.is_empty() {
        return Err(match skipped.into_iter().next() {
            Some(Skipped { entity_id, reason }) => Error::InvalidEntity { entity_id, reason },
            None => Error::NoIdentityProvider,
        });
    }
    Ok((out, skipped))
}

/// A nested element's `validUntil`: `Ok(None)` without one, `Err(())` when it is unreadable
/// or (with `now`) has passed.
fn nested_valid_until(
    el: Element<'_, '_>,
    now: Option<SystemTime>,
) -> Result<Option<SystemTime>, ()> {
    let Some(v) = el.attribute("validUntil") else {
        return Ok(None);
    };
    let Some(v) = saml::parse_instant(v.trim()) else {
        return match now {
            Some(_) => Err(()),
            None => Ok(None),
        };
    };
    match now {
        Some(now) if now >= v => Err(()),
        _ => Ok(Some(v)),
    }
}

fn collect(
    group: Element<'_, '_>,
    federation: Federation,
    now: Option<SystemTime>,
    bound: Option<SystemTime>,
    out: &mut Vec<Found>,
    skipped: &mut Vec<Skipped>,
) {
    for child in group.child_elements() {
        let Ok(own) = nested_valid_until(child, now) else {
            continue;
        };
        let bound = earliest(bound, own);
        if child.is(MD_NS, "EntityDescriptor") {
            match entity(child, federation) {
                Ok(Some((descriptor, ui))) => out.push(Found {
                    descriptor,
                    ui,
                    valid_until: bound,
                }),
                Ok(None) => {}
                Err(Error::InvalidEntity { entity_id, reason }) => {
                    skipped.push(Skipped { entity_id, reason });
                }
                Err(e) => skipped.push(Skipped {
                    entity_id: child.attribute("entityID").unwrap_or("?").to_owned(),
                    reason: e.code(),
                }),
            }
        } else if child.is(MD_NS, "EntitiesDescriptor") {
            collect(child, federation, now, bound, out, skipped);
        }
    }
}

/// One `EntityDescriptor`: `None` when it describes no IdP (an SP entry in an aggregate).
fn entity(
    el: Element<'_, '_>,
    federation: Federation,
) -> Result<Option<(IdpDescriptor, Ui)>, Error> {
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
    // SingleLogoutService: only the two bindings we speak; others (SOAP) are ignored.
    let single_logout = sso
        .child_elements()
        .filter(|c| c.is(MD_NS, "SingleLogoutService"))
        .filter_map(|c| {
            let binding = match c.attribute("Binding") {
                Some(BINDING_REDIRECT) => BINDING_REDIRECT,
                Some(BINDING_POST) => BINDING_POST,
                _ => return None,
            };
            let location = c.attribute("Location")?.trim();
            if location.is_empty() {
                return None;
            }
            let response_location = c
                .attribute("ResponseLocation")
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned);
            Some(SloEndpoint {
                binding,
                location: location.to_owned(),
                response_location,
            })
        })
        .collect();
    let ui = ui_info(el, sso);
    Ok(Some((
        IdpDescriptor {
            entity_id,
            federation,
            sso_redirect_url,
            sso_post_url,
            signing_keys,
            single_logout,
        },
        ui,
    )))
}

/// Display name and logo: `mdui:UIInfo` in the IDPSSODescriptor's (or the entity's)
/// `md:Extensions`, else `md:OrganizationDisplayName`. Italian first, then English, then any.
fn ui_info(entity: Element<'_, '_>, sso: Element<'_, '_>) -> Ui {
    let ui = [sso, entity]
        .into_iter()
        .flat_map(|e| e.child_elements().filter(|c| c.is(MD_NS, "Extensions")))
        .flat_map(|x| x.child_elements().filter(|c| c.is(MDUI_NS, "UIInfo")))
        .next();
    let pick = |parent: Option<Element<'_, '_>>, ns: &str, name: &str| -> Option<String> {
        let candidates: Vec<_> = parent?
            .child_elements()
            .filter(|c| c.is(ns, name))
            .map(|c| {
                (
                    c.attribute_ns(XML_NS, "lang").unwrap_or(""),
                    c.text().trim().to_owned(),
                )
            })
            .filter(|(_, t)| !t.is_empty())
            .collect();
        ["it", "en"]
            .iter()
            .find_map(|l| candidates.iter().find(|(lang, _)| lang == l))
            .or(candidates.first())
            .map(|(_, t)| t.clone())
    };
    let organization = entity
        .child_elements()
        .find(|c| c.is(MD_NS, "Organization"));
    let display_name = pick(ui, MDUI_NS, "DisplayName")
        .or_else(|| pick(organization, MD_NS, "OrganizationDisplayName"));
    let logo = pick(ui, MDUI_NS, "Logo");
    (display_name, logo)
}
