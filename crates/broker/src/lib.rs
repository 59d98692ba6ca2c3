//! The `varco` broker: configuration, the HTTP server and its routes, sessions and the
//! short-lived login store. The only crate of the workspace that does I/O or reads the clock
//! (through [`leaf::clock`]).
//!
//! Invariants, stated as absences:
//! - no port is bound before the whole configuration validated ([`config::load`]);
//! - no session cookie is set for a Response that did not pass `saml::validate_response`, whose
//!   pending request was not started by the same browser, or whose request or assertion was
//!   already consumed;
//! - no unsolicited Response is accepted: the pending request is the only source of the
//!   expected IdP, level and return path;
//! - no redirect leaves the site: return paths are local;
//! - no CNS login without a chain to a configured CNS issuer verified here ([`features::cns`]), and no
//!   forwarded certificate believed from a peer outside `cns.trusted_proxies`;
//! - no attacker byte produces a 5xx or a panic: every failure is a typed code and a 4xx page;
//! - no IdP is trusted that the current metadata snapshot does not list ([`features::registry`]): a
//!   removed IdP is refused at `/saml/login` and at the ACS, and expired or unverified
//!   metadata never enters the snapshot.
//!
//! The modules are layers, and imports only point down: [`leaf`] < [`features`] <
//! [`config`] < [`state`] < [`routes`] < [`server`] < [`cli`] (with [`reload`]). No route
//! imports another. `tests/tests/layers.rs` in the e2e suite checks it from the source, and
//! docs/ARCHITECTURE.md ("Inside the broker") draws the arrows.

pub mod cli;
pub mod config;
pub mod features;
pub mod leaf;
pub mod reload;
pub mod routes;
pub mod server;
pub mod state;
