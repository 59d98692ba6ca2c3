//! The SAML 2.0 content model (saml-schema-protocol-2.0.xsd, saml-schema-assertion-2.0.xsd)
//! of the Response elements Varco reads, checked on the whole tree before anything is read:
//! which children an element may have, in which order and how many times, and where text is
//! allowed. An element the schema does not allow at a place (a foreign element among
//! `samlp:Response`'s children, a second `Status`, `Conditions` after `AuthnStatement`) is
//! refused rather than skipped: a reader that skips what it does not know is the reader a
//! wrapping attack counts on, and a second implementation behind Varco (an audit tool, a
//! pysaml2 comparison) might read the smuggled element instead.
//!
//! Open content stays open where the schema makes it so (`Extensions`, `StatusDetail`,
//! `SubjectConfirmationData`, `AttributeValue`, `Advice`, statements Varco does not read,
//! encrypted elements); `ds:Signature` is the xmldsig crate's to check.

use saml_xml::{Child, Element};

use crate::error::Error;
use crate::types::{SAML_NS, SAMLP_NS};

const DS_NS: &str = xmldsig::DSIG_NS;

/// How often a particle may occur.
const MANY: u32 = u32::MAX;

/// One position in a sequence: any of `names`, `min..=max` times.
struct Particle {
    names: &'static [(&'static str, &'static str)],
    min: u32,
    max: u32,
}

const fn p(names: &'static [(&'static str, &'static str)], min: u32, max: u32) -> Particle {
    Particle { names, min, max }
}

/// What an element may contain.
enum Content {
    /// Child elements in this order (white space between them only).
    Sequence(&'static [Particle]),
    /// Text only, no child elements.
    Text,
    /// Nothing but white space.
    Empty,
    /// Anything (not checked further).
    Any,
    /// `samlp:Extensions`: elements of other namespaces than SAML protocol's, otherwise
    /// unchecked.
    Extensions,
}

const ISSUER: (&str, &str) = (SAML_NS, "Issuer");
const SIGNATURE: (&str, &str) = (DS_NS, "Signature");
const IDS: &[(&str, &str)] = &[
    (SAML_NS, "BaseID"),
    (SAML_NS, "NameID"),
    (SAML_NS, "EncryptedID"),
];

const RESPONSE: &[Particle] = &[
    p(&[ISSUER], 0, 1),
    p(&[SIGNATURE], 0, 1),
    p(&[(SAMLP_NS, "Extensions")], 0, 1),
    p(&[(SAMLP_NS, "Status")], 1, 1),
    p(
        &[(SAML_NS, "Assertion"), (SAML_NS, "EncryptedAssertion")],
        0,
        MANY,
    ),
];
const STATUS: &[Particle] = &[
    p(&[(SAMLP_NS, "StatusCode")], 1, 1),
    p(&[(SAMLP_NS, "StatusMessage")], 0, 1),
    p(&[(SAMLP_NS, "StatusDetail")], 0, 1),
];
const STATUS_CODE: &[Particle] = &[p(&[(SAMLP_NS, "StatusCode")], 0, 1)];
const ASSERTION: &[Particle] = &[
    p(&[ISSUER], 1, 1),
    p(&[SIGNATURE], 0, 1),
    p(&[(SAML_NS, "Subject")], 0, 1),
    p(&[(SAML_NS, "Conditions")], 0, 1),
    p(&[(SAML_NS, "Advice")], 0, 1),
    p(
        &[
            (SAML_NS, "Statement"),
            (SAML_NS, "AuthnStatement"),
            (SAML_NS, "AuthzDecisionStatement"),
            (SAML_NS, "AttributeStatement"),
        ],
        0,
        MANY,
    ),
];
const SUBJECT: &[Particle] = &[
    p(IDS, 0, 1),
    p(&[(SAML_NS, "SubjectConfirmation")], 0, MANY),
];
const SUBJECT_CONFIRMATION: &[Particle] = &[
    p(IDS, 0, 1),
    p(&[(SAML_NS, "SubjectConfirmationData")], 0, 1),
];
const CONDITIONS: &[Particle] = &[p(
    &[
        (SAML_NS, "Condition"),
        (SAML_NS, "AudienceRestriction"),
        (SAML_NS, "OneTimeUse"),
        (SAML_NS, "ProxyRestriction"),
    ],
    0,
    MANY,
)];
const AUDIENCE_RESTRICTION: &[Particle] = &[p(&[(SAML_NS, "Audience")], 1, MANY)];
const PROXY_RESTRICTION: &[Particle] = &[p(&[(SAML_NS, "Audience")], 0, MANY)];
const AUTHN_STATEMENT: &[Particle] = &[
    p(&[(SAML_NS, "SubjectLocality")], 0, 1),
    p(&[(SAML_NS, "AuthnContext")], 1, 1),
];
const AUTHN_CONTEXT: &[Particle] = &[
    p(&[(SAML_NS, "AuthnContextClassRef")], 0, 1),
    p(
        &[
            (SAML_NS, "AuthnContextDecl"),
            (SAML_NS, "AuthnContextDeclRef"),
        ],
        0,
        1,
    ),
    p(&[(SAML_NS, "AuthenticatingAuthority")], 0, MANY),
];
const ATTRIBUTE_STATEMENT: &[Particle] = &[p(
    &[(SAML_NS, "Attribute"), (SAML_NS, "EncryptedAttribute")],
    1,
    MANY,
)];
const ATTRIBUTE: &[Particle] = &[p(&[(SAML_NS, "AttributeValue")], 0, MANY)];

/// The content model of an element a sequence admitted (so its name is known).
fn model(el: Element<'_, '_>) -> Content {
    let ns = el.namespace().unwrap_or("");
    match (ns, el.local_name()) {
        (SAMLP_NS, "Response") => Content::Sequence(RESPONSE),
        (SAMLP_NS, "Status") => Content::Sequence(STATUS),
        (SAMLP_NS, "StatusCode") => Content::Sequence(STATUS_CODE),
        (SAMLP_NS, "StatusMessage") => Content::Text,
        (SAMLP_NS, "Extensions") => Content::Extensions,
        (SAML_NS, "Assertion") => Content::Sequence(ASSERTION),
        (SAML_NS, "Subject") => Content::Sequence(SUBJECT),
        (SAML_NS, "SubjectConfirmation") => Content::Sequence(SUBJECT_CONFIRMATION),
        (SAML_NS, "Conditions") => Content::Sequence(CONDITIONS),
        (SAML_NS, "AudienceRestriction") => Content::Sequence(AUDIENCE_RESTRICTION),
        (SAML_NS, "ProxyRestriction") => Content::Sequence(PROXY_RESTRICTION),
        (SAML_NS, "OneTimeUse" | "SubjectLocality") => Content::Empty,
        (SAML_NS, "AuthnStatement") => Content::Sequence(AUTHN_STATEMENT),
        (SAML_NS, "AuthnContext") => Content::Sequence(AUTHN_CONTEXT),
        (SAML_NS, "AttributeStatement") => Content::Sequence(ATTRIBUTE_STATEMENT),
        (SAML_NS, "Attribute") => Content::Sequence(ATTRIBUTE),
        (
            SAML_NS,
            "Issuer"
            | "NameID"
            | "Audience"
            | "AuthnContextClassRef"
            | "AuthnContextDeclRef"
            | "AuthenticatingAuthority",
        ) => Content::Text,
        // StatusDetail, SubjectConfirmationData, AttributeValue, Advice, Condition,
        // Statement, AuthzDecisionStatement, BaseID, the encrypted elements, AuthnContextDecl
        // and ds:Signature: open or checked elsewhere.
        _ => Content::Any,
    }
}

/// Checks `root` (a `samlp:Response`) and everything below it against the content model.
/// Every node is visited at most once: linear in the document.
pub(crate) fn check_response(root: Element<'_, '_>) -> Result<(), Error> {
    let mut stack = vec![root];
    while let Some(el) = stack.pop() {
        let violation = Error::SchemaViolation {
            element: static_name(el.local_name()),
        };
        match model(el) {
            Content::Any => {}
            Content::Text => {
                if el.child_elements().next().is_some() {
                    return Err(violation);
                }
            }
            Content::Empty => {
                if el.children().any(|c| match c {
                    Child::Element(_) => true,
                    Child::Text(t) => !t.trim().is_empty(),
                    _ => false,
                }) {
                    return Err(violation);
                }
            }
            Content::Extensions => {
                if el
                    .children()
                    .any(|c| is_stray_text(&c) || foreign_to_extensions(&c))
                {
                    return Err(violation);
                }
            }
            Content::Sequence(particles) => {
                if el.children().any(|c| is_stray_text(&c)) {
                    return Err(violation);
                }
                let mut at = 0;
                let mut count = 0u32;
                for child in el.child_elements() {
                    let name = (child.namespace().unwrap_or(""), child.local_name());
                    // Stay on the current particle while it matches and has room; else move
                    // on, checking that each particle left behind occurred often enough.
                    loop {
                        let Some(particle) = particles.get(at) else {
                            return Err(violation);
                        };
                        if particle.names.contains(&name) && count < particle.max {
                            count += 1;
                            break;
                        }
                        if count < particle.min {
                            return Err(violation);
                        }
                        at += 1;
                        count = 0;
                    }
                    stack.push(child);
                }
                if particles
                    .iter()
                    .enumerate()
                    .skip(at)
                    .any(|(i, q)| (if i == at { count } else { 0 }) < q.min)
                {
                    return Err(violation);
                }
            }
        }
    }
    Ok(())
}

/// Non-white-space text where only elements may stand.
fn is_stray_text(c: &Child<'_, '_>) -> bool {
    matches!(c, Child::Text(t) if !t.trim().is_empty())
}

/// A child of `Extensions` the schema's `##other` wildcard does not admit: an unqualified
/// element or one in the SAML protocol namespace.
fn foreign_to_extensions(c: &Child<'_, '_>) -> bool {
    matches!(c, Child::Element(e) if matches!(e.namespace(), None | Some("") | Some(SAMLP_NS)))
}

/// The element's name as a constant of this crate (error fields never carry message
/// content): the known names, else `"unknown"`.
fn static_name(local: &str) -> &'static str {
    const KNOWN: [&str; 23] = [
        "Response",
        "Status",
        "StatusCode",
        "StatusMessage",
        "Extensions",
        "Assertion",
        "Subject",
        "SubjectConfirmation",
        "Conditions",
        "AudienceRestriction",
        "ProxyRestriction",
        "OneTimeUse",
        "SubjectLocality",
        "AuthnStatement",
        "AuthnContext",
        "AttributeStatement",
        "Attribute",
        "Issuer",
        "NameID",
        "Audience",
        "AuthnContextClassRef",
        "AuthnContextDeclRef",
        "AuthenticatingAuthority",
    ];
    KNOWN
        .iter()
        .find(|k| **k == local)
        .copied()
        .unwrap_or("unknown")
}
