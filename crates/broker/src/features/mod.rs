//! The features: each owns its raw configuration table, its `validate()` and its runtime
//! types. None of them serves a route.
//!
//! May import: the leaf, and another feature only downward (metrics reads registry and
//! switchoff, switchoff reads access, cns reads access, legacy reads switchoff and audit, the
//! store reports to metrics, admission reads access and store and reports to metrics, represent reads audit's
//! PostgreSQL connection, federation reads registry's fetcher and reports to metrics,
//! oidc_op reads access).
//! Never `config`, `state`, `routes`, `server` or `cli`.

pub mod access;
pub mod admission;
pub mod audit;
pub mod cns;
pub mod federation;
pub mod legacy;
pub mod metrics;
pub mod oidc_op;
pub mod registry;
pub mod represent;
pub mod store;
pub mod switchoff;
pub mod wallet;
