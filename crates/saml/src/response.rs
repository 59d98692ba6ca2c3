//! Validation of a `samlp:Response` received at the ACS.

use std::time::{Duration, SystemTime};

use saml_xml::{Document, Element, Limits};
use xmldsig::{DSIG_NS, Policy, Verified};

use crate::error::Error;
use crate::read::{
    check_issuer, check_status, check_version, instant_attr, required_attr, required_child,
    unique_child,
};
use crate::time::{exceeds, expired};
use crate::types::{
    CM_BEARER, Federation, IdpDescriptor, Level, NAMEID_TRANSIENT, SAML_NS, SAMLP_NS,
};

/// The longest `RelayState` the SAML bindings allow (saml-bindings-2.0-os §3.4.3 and
/// §3.5.3: "MUST NOT exceed 80 bytes"). A longer one is refused, not cut.
pub const MAX_RELAY_STATE: usize = 80;

/// What the broker expects of a Response: the values it stored when it sent the AuthnRequest
/// (bound to the browser session) and its own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected<'a> {
    /// The AuthnRequest `ID`: `InResponseTo` on the Response and on `SubjectConfirmationData`.
    pub request_id: &'a str,
    /// The ACS URL the Response arrived at: `Destination` and `Recipient`.
    pub acs_url: &'a str,
    /// Our entityID: the `Audience`.
    pub sp_entity_id: &'a str,
    /// The level requested; a higher asserted level is accepted, a lower one refused.
    pub requested_level: Level,
    /// The IdP the request was sent to: both `Issuer`s. Must equal
    /// [`IdpDescriptor::entity_id`] of the descriptor passed along.
    pub idp_entity_id: &'a str,
    /// The AuthnRequest `IssueInstant`: no `IssueInstant` of the Response may be earlier
    /// (beyond the skew).
    pub request_issue_instant: SystemTime,
}

/// A validated authentication: everything here was read from the signed Assertion, except
/// [`Assertion::response_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The Assertion `ID`: the key for one-time use.
    pub id: String,
    /// The enclosing Response `ID` (signed only if the Response was signed); for logs.
    pub response_id: String,
    /// The Assertion `Issuer`: the IdP entityID.
    pub issuer: String,
    /// The transient `NameID`, surrounding white space removed.
    pub name_id: String,
    /// `NameID/@NameQualifier`.
    pub name_qualifier: String,
    /// `AuthnStatement/@SessionIndex`, needed for SAML logout; SPID IdPs omit it at L2/L3.
    pub session_index: Option<String>,
    /// The level the IdP asserted (at least the one requested).
    pub level: Level,
    /// `AuthnStatement/@AuthnInstant`.
    pub authn_instant: SystemTime,
    /// The earliest of `Conditions/@NotOnOrAfter` and `SubjectConfirmationData/@NotOnOrAfter`:
    /// keep [`Assertion::id`] in the replay store until this instant plus the skew.
    pub not_on_or_after: SystemTime,
    /// Every `Attribute`, in document order: `Name` and the text of each `AttributeValue`
    /// (surrounding white space removed).
    pub attributes: Vec<(String, Vec<String>)>,
}

impl Assertion {
    /// The values of the attribute `name`, if the Assertion has it.
    pub fn attribute(&self, name: &str) -> Option<&[String]> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Validates a SAML Response (the decoded `SAMLResponse` bytes) against the request it
/// answers, and returns the authentication it carries.
///
/// The document is parsed once (saml-xml default limits); signature checks and every read
/// use that one tree. In order:
///
/// 1. root `samlp:Response` with `ID`, `Version="2.0"`, `IssueInstant` (UTC, not in the
///    future and not before the request, both beyond `skew`), `Destination` = ACS URL,
///    `InResponseTo` = request ID; one `Issuer` equal to the IdP, `Format` entity if present;
/// 2. if the Response has a `ds:Signature` child, it must verify with the IdP's keys;
/// 3. `Status/StatusCode` Success, else [`Error::Status`];
/// 4. exactly one `saml:Assertion` in the whole document, a child of the Response, and no
///    `EncryptedAssertion`;
/// 5. the Assertion's signature must verify with the IdP's keys; from then on every value is
///    read from the verified element only (see `read_assertion`);
/// 6. the whole tree matches the SAML 2.0 content model of the elements read (`schema`):
///    no unknown element outside `Extensions`, the schema's order and counts, no stray text.
///
/// Not done here: one-time use. The caller must record [`Assertion::id`] atomically in a
/// store shared by all instances until [`Assertion::not_on_or_after`] + `skew`, refuse an ID
/// already there, and consume the pending request ID on first use.
pub fn validate_response(
    xml: &[u8],
    expected: &Expected<'_>,
    idp: &IdpDescriptor,
    now: SystemTime,
    skew: Duration,
) -> Result<Assertion, Error> {
    let doc = Document::parse(xml, &Limits::default())?;
    let root = doc.root();
    if !root.is(SAMLP_NS, "Response") {
        return Err(Error::NotAResponse);
    }
    // The caller's two statements of the IdP must agree; otherwise fail closed.
    if idp.entity_id != expected.idp_entity_id {
        return Err(Error::IssuerMismatch {
            element: "Response/Issuer",
        });
    }

    let response_id = required_attr(root, "Response", "ID")?;
    check_version(root, "Response")?;
    let issued = instant_attr(root, "Response", "IssueInstant")?;
    check_issue_instant(issued, "Response", expected, now, skew)?;
    if required_attr(root, "Response", "Destination")? != expected.acs_url {
        return Err(Error::DestinationMismatch);
    }
    if required_attr(root, "Response", "InResponseTo")? != expected.request_id {
        return Err(Error::InResponseToMismatch {
            element: "Response",
        });
    }
    let issuer = required_child(root, SAML_NS, "Issuer", "Response/Issuer")?;
    check_issuer(issuer, "Response/Issuer", expected.idp_entity_id, false)?;

    let policy = Policy::default();
    if root.child_elements().any(|c| c.is(DSIG_NS, "Signature")) {
        xmldsig::verify(root, &idp.signing_keys, &policy).map_err(Error::ResponseSignature)?;
    }

    check_status(root, "Response/Status", "Response/Status/StatusCode")?;

    let (assertions, encrypted) = count_assertions(root);
    if encrypted {
        return Err(Error::EncryptedAssertion);
    }
    let assertion = match root.child_elements().find(|c| c.is(SAML_NS, "Assertion")) {
        Some(a) if assertions == 1 => a,
        _ => return Err(Error::AssertionCount { found: assertions }),
    };
    let verified = xmldsig::verify(assertion, &idp.signing_keys, &policy)
        .map_err(Error::AssertionSignature)?;
    let assertion = read_assertion(verified, response_id, expected, idp.federation, now, skew)?;
    // Last, so that the specific checks above name a fault first; nothing is returned
    // from a tree whose content model is wrong anywhere.
    crate::schema::check_response(root)?;
    Ok(assertion)
}

/// The `InResponseTo` of a Response, for finding the pending request (and so the IdP and
/// expectations) to validate it against.
///
/// **Untrusted**: nothing is verified. Use the value only as a lookup key, then call
/// [`validate_response`], which checks it again against the request found. `None` when the
/// bytes do not parse, the root is not `samlp:Response`, or the attribute is absent or empty.
pub fn response_in_response_to(xml: &[u8]) -> Option<String> {
    let doc = Document::parse(xml, &Limits::default()).ok()?;
    let root = doc.root();
    if !root.is(SAMLP_NS, "Response") {
        return None;
    }
    root.attribute("InResponseTo")
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Builds the [`Assertion`] from the verified element, and only from it: this function has no
/// access to the rest of the document except through `verified`.
fn read_assertion(
    verified: Verified<'_, '_>,
    response_id: &str,
    expected: &Expected<'_>,
    federation: Federation,
    now: SystemTime,
    skew: Duration,
) -> Result<Assertion, Error> {
    let a = verified.element();
    if a.has_comments_or_pis() {
        return Err(Error::CommentInAssertion);
    }
    let id = required_attr(a, "Assertion", "ID")?;
    check_version(a, "Assertion")?;
    let issued = instant_attr(a, "Assertion", "IssueInstant")?;
    check_issue_instant(issued, "Assertion", expected, now, skew)?;

    let issuer = required_child(a, SAML_NS, "Issuer", "Assertion/Issuer")?;
    let format_required = federation != Federation::Cie;
    check_issuer(
        issuer,
        "Assertion/Issuer",
        expected.idp_entity_id,
        format_required,
    )?;
    if unique_child(a, SAML_NS, "Advice", "Assertion/Advice")?.is_some() {
        return Err(Error::Advice);
    }

    // Subject
    let subject = required_child(a, SAML_NS, "Subject", "Assertion/Subject")?;
    let name_id = required_child(subject, SAML_NS, "NameID", "Assertion/Subject/NameID")?;
    let name_id_value = name_id.text().trim().to_owned();
    if name_id_value.is_empty() {
        return Err(Error::MissingElement {
            element: "Assertion/Subject/NameID",
        });
    }
    if required_attr(name_id, "Assertion/Subject/NameID", "Format")? != NAMEID_TRANSIENT {
        return Err(Error::NameIdFormat);
    }
    let name_qualifier = required_attr(name_id, "Assertion/Subject/NameID", "NameQualifier")?;

    const SC: &str = "Assertion/Subject/SubjectConfirmation";
    const SCD: &str = "Assertion/Subject/SubjectConfirmation/SubjectConfirmationData";
    let confirmation = required_child(subject, SAML_NS, "SubjectConfirmation", SC)?;
    if required_attr(confirmation, SC, "Method")? != CM_BEARER {
        return Err(Error::NotBearer);
    }
    let data = required_child(confirmation, SAML_NS, "SubjectConfirmationData", SCD)?;
    if required_attr(data, SCD, "Recipient")? != expected.acs_url {
        return Err(Error::RecipientMismatch);
    }
    if required_attr(data, SCD, "InResponseTo")? != expected.request_id {
        return Err(Error::InResponseToMismatch { element: SCD });
    }
    let scd_not_on_or_after = instant_attr(data, SCD, "NotOnOrAfter")?;
    if expired(scd_not_on_or_after, now, skew) {
        return Err(Error::Expired { element: SCD });
    }

    // Conditions
    const CONDITIONS: &str = "Assertion/Conditions";
    let conditions = required_child(a, SAML_NS, "Conditions", CONDITIONS)?;
    let not_before = instant_attr(conditions, CONDITIONS, "NotBefore")?;
    let not_on_or_after = instant_attr(conditions, CONDITIONS, "NotOnOrAfter")?;
    if exceeds(not_before, now, skew) {
        return Err(Error::NotYetValid);
    }
    if expired(not_on_or_after, now, skew) {
        return Err(Error::Expired {
            element: CONDITIONS,
        });
    }
    check_audience(conditions, expected.sp_entity_id)?;

    // AuthnStatement
    const STATEMENT: &str = "Assertion/AuthnStatement";
    let statement = required_child(a, SAML_NS, "AuthnStatement", STATEMENT)?;
    let authn_instant = instant_attr(statement, STATEMENT, "AuthnInstant")?;
    let session_index = statement
        .attribute("SessionIndex")
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let context = required_child(
        statement,
        SAML_NS,
        "AuthnContext",
        "Assertion/AuthnStatement/AuthnContext",
    )?;
    let class_ref = required_child(
        context,
        SAML_NS,
        "AuthnContextClassRef",
        "Assertion/AuthnStatement/AuthnContext/AuthnContextClassRef",
    )?;
    let level = Level::from_uri(class_ref.text().trim()).ok_or(Error::UnknownAuthnContext)?;
    if level < expected.requested_level {
        return Err(Error::LevelTooLow {
            requested: expected.requested_level,
            received: level,
        });
    }

    let attributes = read_attributes(a)?;

    Ok(Assertion {
        id: id.to_owned(),
        response_id: response_id.to_owned(),
        issuer: issuer.text().trim().to_owned(),
        name_id: name_id_value,
        name_qualifier: name_qualifier.to_owned(),
        session_index,
        level,
        authn_instant,
        not_on_or_after: not_on_or_after.min(scd_not_on_or_after),
        attributes,
    })
}

/// Every `AudienceRestriction` must name `sp_entity_id` in one of its `Audience`s, and there
/// must be at least one.
fn check_audience(conditions: Element<'_, '_>, sp_entity_id: &str) -> Result<(), Error> {
    let mut restrictions = 0;
    for restriction in conditions
        .child_elements()
        .filter(|c| c.is(SAML_NS, "AudienceRestriction"))
    {
        restrictions += 1;
        let mut audiences = restriction
            .child_elements()
            .filter(|c| c.is(SAML_NS, "Audience"))
            .peekable();
        if audiences.peek().is_none() {
            return Err(Error::MissingElement {
                element: "Assertion/Conditions/AudienceRestriction/Audience",
            });
        }
        if !audiences.any(|aud| aud.text().trim() == sp_entity_id) {
            return Err(Error::AudienceMismatch);
        }
    }
    if restrictions == 0 {
        return Err(Error::MissingElement {
            element: "Assertion/Conditions/AudienceRestriction",
        });
    }
    Ok(())
}

/// All `AttributeStatement`s of the Assertion, flattened. An empty statement, an attribute
/// without a name or without values is refused (spid-sp-test 98, 99).
fn read_attributes(a: Element<'_, '_>) -> Result<Vec<(String, Vec<String>)>, Error> {
    let mut out = Vec::new();
    for statement in a
        .child_elements()
        .filter(|c| c.is(SAML_NS, "AttributeStatement"))
    {
        let mut any = false;
        for attribute in statement
            .child_elements()
            .filter(|c| c.is(SAML_NS, "Attribute"))
        {
            any = true;
            let name = attribute
                .attribute("Name")
                .filter(|n| !n.is_empty())
                .ok_or(Error::MalformedAttribute)?;
            let values: Vec<String> = attribute
                .child_elements()
                .filter(|c| c.is(SAML_NS, "AttributeValue"))
                .map(|v| v.text().trim().to_owned())
                .collect();
            if values.is_empty() {
                return Err(Error::MalformedAttribute);
            }
            out.push((name.to_owned(), values));
        }
        if !any {
            return Err(Error::MalformedAttribute);
        }
    }
    Ok(out)
}

/// Counts `saml:Assertion` elements in the whole tree, and tells whether any
/// `saml:EncryptedAssertion` is there. Wrapping attacks hide a second assertion anywhere
/// (Extensions, Object, inside another assertion); none is tolerated.
fn count_assertions(root: Element<'_, '_>) -> (usize, bool) {
    let mut count = 0;
    let mut encrypted = false;
    let mut stack = vec![root];
    while let Some(el) = stack.pop() {
        if el.is(SAML_NS, "Assertion") {
            count += 1;
        } else if el.is(SAML_NS, "EncryptedAssertion") {
            encrypted = true;
        }
        stack.extend(el.child_elements());
    }
    (count, encrypted)
}

/// `IssueInstant` not in the future and not before the request, each beyond `skew`.
fn check_issue_instant(
    issued: SystemTime,
    element: &'static str,
    expected: &Expected<'_>,
    now: SystemTime,
    skew: Duration,
) -> Result<(), Error> {
    if exceeds(issued, now, skew) {
        return Err(Error::IssuedInFuture { element });
    }
    if exceeds(expected.request_issue_instant, issued, skew) {
        return Err(Error::IssuedBeforeRequest { element });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_in_response_to_reads_only_the_root_attribute() {
        let xml = format!("<samlp:Response xmlns:samlp=\"{SAMLP_NS}\" InResponseTo=\"_abc\"/>");
        assert_eq!(
            response_in_response_to(xml.as_bytes()).as_deref(),
            Some("_abc")
        );
        let xml = format!("<samlp:Response xmlns:samlp=\"{SAMLP_NS}\" InResponseTo=\"\"/>");
        assert_eq!(response_in_response_to(xml.as_bytes()), None);
        let xml = format!("<samlp:Other xmlns:samlp=\"{SAMLP_NS}\" InResponseTo=\"_abc\"/>");
        assert_eq!(response_in_response_to(xml.as_bytes()), None);
        assert_eq!(response_in_response_to(b"<!DOCTYPE x><x/>"), None);
    }
}
