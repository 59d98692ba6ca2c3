//! The routes: one module per endpoint family. Each reads the state in force, the HTTP
//! kernel and the features it needs.
//!
//! May import: `state`, `config`, `features`, the leaf. Never the router (`server`), `cli`, or
//! another route: what two routes share lives in `state` (e.g. `state::login`).

pub mod acs;
pub mod assets;
pub mod choice;
pub mod cns;
pub mod forward_auth;
pub mod health;
pub mod legacy;
pub mod login;
pub mod logout;
pub mod metadata;
pub mod metrics;
pub mod oidc;
pub mod oidc_op;
pub mod proxy;
pub mod represent;
pub mod slo;
pub mod wallet;
pub mod whoami;
