//! SAML 2.0 for an Italian public-service SP (SPID, CIE, eIDAS through FICEP): SPID
//! AuthnRequests, the HTTP-Redirect and HTTP-POST bindings that carry them, validation of
//! the Responses that come back, and our own signed SP metadata for each federation
//! ([`sp_metadata`]).
//!
//! Built on `saml-xml` (the one parser) and `xmldsig` (the one way to obtain a
//! [`xmldsig::Verified`]). The crate is pure: time is an argument, randomness (request IDs)
//! comes from the caller, nothing is read or written outside memory.
//!
//! Invariants, stated as absences:
//! - no I/O and no clock: [`validate_response`] and [`AuthnRequest::new`] take `now`;
//! - no second parse: a Response is parsed once, and signatures are checked on that tree;
//! - no identity value is ever read from outside the verified Assertion: [`Assertion`] is built
//!   by one private function whose only access to the document is a [`xmldsig::Verified`];
//! - no key from the message: signatures verify only with [`IdpDescriptor::signing_keys`];
//! - no unsigned Assertion, no second Assertion anywhere in the document, no
//!   `EncryptedAssertion`, no `Advice`, no comment or processing instruction inside the
//!   Assertion is ever accepted;
//! - no lower level than requested and no unknown class reference is ever accepted;
//! - no one-time-use bookkeeping here: the broker's shared store records
//!   [`Assertion::id`] until [`Assertion::not_on_or_after`] (plus skew) and consumes the
//!   pending request ID; this crate cannot see other requests.

mod anomaly;
mod binding;
mod error;
mod logout;
mod metadata;
mod read;
mod request;
mod response;
mod schema;
mod time;
mod types;

pub use anomaly::{Lang, anomaly_message};
pub use binding::{PostForm, form_decode, post_form, quote_plus, redirect_url};
pub use error::{Error, RequestError};
pub use logout::{
    ExpectedLogoutResponse, IncomingSlo, LogoutError, LogoutRequest, LogoutResponse, LogoutSubject,
    MAX_LOGOUT_XML, STATUS_PARTIAL_LOGOUT, STATUS_REQUESTER, STATUS_RESPONDER, SloKind,
    ValidLogoutRequest, ValidLogoutResponse, validate_logout_request, validate_logout_response,
};
pub use metadata::{
    Address, AssertionConsumerService, AttributeConsumingService, BillingContact, CIE_ATTRIBUTES,
    CIE_EXTENSIONS_NS, CieContact, Contact, EIDAS_FULL_SET_INDEX, EIDAS_MINIMUM_SET_INDEX,
    Localized, MD_NS, MetadataError, MetadataProfile, Organization, SPID_ATTRIBUTES,
    SPID_EXTENSIONS_NS, SPID_INVOICING_NS, Sector, SingleLogoutService, SloBinding, SpMetadata,
    VatId, sp_metadata,
};
pub use request::{AuthnRequest, MAX_ID_LEN};
pub use response::{
    Assertion, Expected, MAX_RELAY_STATE, response_in_response_to, validate_response,
};
pub use time::{format_instant, parse_instant};
pub use types::{
    BINDING_POST, BINDING_REDIRECT, CM_BEARER, Federation, IdpDescriptor, Level, NAMEID_ENTITY,
    NAMEID_TRANSIENT, SAML_NS, SAMLP_NS, STATUS_SUCCESS, SloEndpoint, SpConfig,
};
