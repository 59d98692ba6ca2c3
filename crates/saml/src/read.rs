//! Reading a parsed SAML protocol message: the structural checks that a Response (the ACS)
//! and the logout messages share.
//!
//! The helpers return a [`Fault`], the common subset of [`crate::Error`] and
//! [`crate::LogoutError`]; each of those converts it with `From`, so the callers use `?` and
//! their public variants and stable codes stay their own. Element paths are constants of this
//! crate, never message content.

use std::time::SystemTime;

use saml_xml::Element;

use crate::time::parse_instant;
use crate::types::{NAMEID_ENTITY, SAMLP_NS, STATUS_SUCCESS};

/// Longest `Status` string kept (the rest is cut: log hygiene, and the value is attacker
/// text from the unsigned part of a message).
const MAX_STATUS_TEXT: usize = 256;

/// Why a shared check failed. Converted into the caller's own error; never public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    MissingElement {
        element: &'static str,
    },
    DuplicateElement {
        element: &'static str,
    },
    MissingAttribute {
        element: &'static str,
        attribute: &'static str,
    },
    UnsupportedVersion {
        element: &'static str,
    },
    MalformedInstant {
        element: &'static str,
        attribute: &'static str,
    },
    IssuerMismatch {
        element: &'static str,
    },
    IssuerFormat {
        element: &'static str,
    },
    MissingStatus,
    /// A `StatusCode` other than Success; every string bounded by [`MAX_STATUS_TEXT`].
    Status {
        code: String,
        sub_code: Option<String>,
        message: Option<String>,
    },
}

/// A required attribute; absent, empty or white-space-only is a missing attribute.
pub(crate) fn required_attr<'d>(
    el: Element<'d, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<&'d str, Fault> {
    el.attribute(attribute)
        .filter(|v| !v.trim().is_empty())
        .ok_or(Fault::MissingAttribute { element, attribute })
}

/// A required attribute holding a strict UTC `xs:dateTime`.
pub(crate) fn instant_attr(
    el: Element<'_, '_>,
    element: &'static str,
    attribute: &'static str,
) -> Result<SystemTime, Fault> {
    parse_instant(required_attr(el, element, attribute)?)
        .ok_or(Fault::MalformedInstant { element, attribute })
}

/// The one child `{ns}local` of `el`, if any; two or more is a duplicate (an attacker's
/// second copy must never be silently ignored).
pub(crate) fn unique_child<'d, 'a>(
    el: Element<'d, 'a>,
    ns: &str,
    local: &str,
    element: &'static str,
) -> Result<Option<Element<'d, 'a>>, Fault> {
    let mut found = el.child_elements().filter(|c| c.is(ns, local));
    let first = found.next();
    if found.next().is_some() {
        return Err(Fault::DuplicateElement { element });
    }
    Ok(first)
}

/// [`unique_child`], and absent is a missing element.
pub(crate) fn required_child<'d, 'a>(
    el: Element<'d, 'a>,
    ns: &str,
    local: &str,
    element: &'static str,
) -> Result<Element<'d, 'a>, Fault> {
    unique_child(el, ns, local, element)?.ok_or(Fault::MissingElement { element })
}

/// `Version` must be exactly `2.0`.
pub(crate) fn check_version(el: Element<'_, '_>, element: &'static str) -> Result<(), Fault> {
    match el.attribute("Version") {
        Some("2.0") => Ok(()),
        None | Some("") => Err(Fault::MissingAttribute {
            element,
            attribute: "Version",
        }),
        Some(_) => Err(Fault::UnsupportedVersion { element }),
    }
}

/// `Issuer` text equal to `idp` (surrounding white space ignored); `Format`, if present, the
/// entity format; absent only when `format_required` is false.
pub(crate) fn check_issuer(
    issuer: Element<'_, '_>,
    element: &'static str,
    idp: &str,
    format_required: bool,
) -> Result<(), Fault> {
    let text = issuer.text();
    let text = text.trim();
    if text.is_empty() || text != idp {
        return Err(Fault::IssuerMismatch { element });
    }
    match issuer.attribute("Format") {
        Some(NAMEID_ENTITY) => Ok(()),
        None if !format_required => Ok(()),
        _ => Err(Fault::IssuerFormat { element }),
    }
}

/// `Status/StatusCode/@Value` of `root` must be Success. `status` and `status_code` are the
/// paths of those two elements, for the error. Anything but Success is [`Fault::Status`],
/// with the nested code and the `StatusMessage` if present.
pub(crate) fn check_status(
    root: Element<'_, '_>,
    status: &'static str,
    status_code: &'static str,
) -> Result<(), Fault> {
    let status_el = unique_child(root, SAMLP_NS, "Status", status)?.ok_or(Fault::MissingStatus)?;
    let code_el = unique_child(status_el, SAMLP_NS, "StatusCode", status_code)?
        .ok_or(Fault::MissingStatus)?;
    let code = code_el
        .attribute("Value")
        .filter(|v| !v.trim().is_empty())
        .ok_or(Fault::MissingStatus)?;
    if code == STATUS_SUCCESS {
        return Ok(());
    }
    let sub_code = code_el
        .child_elements()
        .find(|c| c.is(SAMLP_NS, "StatusCode"))
        .and_then(|c| c.attribute("Value"))
        .map(bounded);
    let message = status_el
        .child_elements()
        .find(|c| c.is(SAMLP_NS, "StatusMessage"))
        .map(|m| bounded(m.text().trim()));
    Err(Fault::Status {
        code: bounded(code),
        sub_code,
        message,
    })
}

fn bounded(s: &str) -> String {
    s.chars().take(MAX_STATUS_TEXT).collect()
}
