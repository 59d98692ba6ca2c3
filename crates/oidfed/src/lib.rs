//! OpenID Federation 1.0 for a relying party, with the SPID/CIE OpenID Connect profile's
//! choices: entity statements, trust chain resolution, metadata policies, trust marks, and
//! our own Entity Configuration.
//!
//! Pure, like `saml`: no network, no file, no clock. The trust chain [`Resolver`] is a
//! state machine that says which document to fetch next and takes the bodies the caller
//! fetched; `now` is an argument everywhere. The broker does the I/O, the caching and the
//! refresh.
//!
//! Invariants, stated as absences:
//! - no key from the document being checked: a Trust Anchor's keys come from configuration
//!   only; every other statement is verified with the keys its issuer's superior states
//!   (the chain is re-verified from the anchor down before it is returned);
//! - no chain without an end: depth and the number of fetches are bounded, loops skipped;
//! - no "best effort" metadata: a policy that cannot be merged or that the metadata
//!   violates refuses the chain; an unknown critical operator or claim refuses it too;
//! - no trust mark from an issuer the anchor does not list for its type, none about another
//!   entity, none expired, none without `exp` unless the caller opts in.

mod chain;
mod configuration;
mod error;
pub mod oidc;
pub mod policy;
mod statement;
pub mod trust_mark;

pub use chain::{
    Fetch, FetchFailed, Resolver, ResolverConfig, Step, TrustAnchor, TrustChain, configuration_url,
};
pub use configuration::RelyingParty;
pub use error::Error;
pub use statement::{Constraints, ENTITY_STATEMENT_TYP, Statement, TrustMarkEntry, is_entity_id};
pub use trust_mark::{TRUST_MARK_TYP, TrustMark};
