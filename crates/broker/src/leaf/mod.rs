//! The leaf: what every other room may use and what uses nothing else in the crate. The
//! clock, session sealing, the HTTP kernel (bodies, responses, cookies, the one form decoder),
//! pages and assets, the header-read deadline's timer, the configuration error type with its shared parse helpers, and logging.
//!
//! May import: only other leaf modules (never `features`, `config`, `state`, `routes`,
//! `server`, `cli`).

pub mod assets;
pub mod clock;
pub mod form;
pub mod http;
pub mod logging;
pub mod output;
pub mod pages;
pub mod problem;
pub mod session;
pub mod timer;
pub mod wallet_page;
