//! One identity for every source: the normalized [`Principal`] built from the attributes of a
//! SPID, CIE, eIDAS (FICEP), CNS or legacy login; the ordered [`Loa`] scale every source level
//! maps onto; and the downstream token, a compact JWS (ES256, or EdDSA) signed by a rotating
//! [`KeySet`] that also serves the JWKS. [`represent`] adds acting for someone else
//! (delegation, parental authority, guardianship, legal representation), and [`AgeLimits`]
//! the per-service age limits of SPID for minors.
//!
//! The crate is pure: attributes, times and randomness come in as arguments, strings and
//! values go out. Schema and LoA table: `docs/IDENTITY.md`, `docs/identity.schema.json`.
//!
//! Invariants, stated as absences:
//! - no SAML, XML, HTTP or clock: the crate knows attribute lists, not assertions, and never
//!   reads the wall clock (`now` and `auth_time` are passed in);
//! - no `sub` from an unvalidated identifier: a fiscal code whose structure or check
//!   character is wrong, or an empty/control-character eIDAS `PersonIdentifier`, is refused;
//! - no silent default level: an unknown source level is an error, never `Low` nor `High`;
//! - no silent choice between values: a single-valued attribute with two distinct values is
//!   refused;
//! - no attribute outside the schema reaches the token, and no dropped attribute either;
//! - no token signed by a key that was not published first (except the initial key
//!   inserted as active), and no key leaves the JWKS before its retiring window ends;
//! - no header field chosen by the caller: `alg`, `kid`, `typ` are fixed by the key set;
//! - no private key material in `Debug` output or errors, and no attribute value in errors;
//! - no `act` a client wrote: an acting identity ([`represent::Acting`]) is made only by
//!   [`represent::act`] from a source-verified [`represent::Representation`], and neither
//!   deserializes;
//! - no age guessed: a service with an age limit refuses a person without a usable
//!   `birthdate`, and "today" is the civil date in Rome, not in UTC.

mod age;
pub mod attr;
mod error;
mod fiscal_code;
mod loa;
mod method;
mod policy;
mod principal;
pub mod represent;
mod token;

pub use age::{AgeLimits, AgeRefusal, CalendarDate};
pub use error::Error;
pub use fiscal_code::normalize_fiscal_code;
pub use loa::{EIDAS_HIGH, EIDAS_LOW, EIDAS_SUBSTANTIAL, Loa, SPID_L1, SPID_L2, SPID_L3};
pub use method::Method;
pub use policy::{Decision, Policy};
pub use principal::{Address, Auth, LegalPerson, Mapping, Principal, Profile, Source, normalize};
pub use token::{Algorithm, KeySet, KeyState, SigningKey, TokenParams};
