//! Test-only helpers that start the real servers Varco talks to in production, each in its
//! own throwaway directory and stopped when dropped: a PostgreSQL cluster ([`Postgres`]),
//! `redis-server` ([`Redis`]) and the path of `nginx` ([`nginx_binary`]).
//!
//! `make test` installs the Debian packages (`postgresql`, `redis-server`, `nginx`); a helper
//! panics with that hint when a binary is missing, so a test never passes without its server.
//! Used by `crates/broker/tests` and by the black-box suite in `tests/`, which otherwise held
//! two copies of the same start-up code.
//!
//! [`python`] runs the independent Python implementations that interop tests check
//! against, from the project's venvs.
//!
//! [`spidcie`] starts a real OpenID Federation (spid-cie-oidc's Trust Anchor, SPID and CIE
//! OPs, reference RP) on loopback and plays the user at its OPs.
//!
//! [`hostile`] makes worst-case inputs (issue 17): the largest bodies the limits allow, shaped
//! for the most work, for the pure crates' counting tests and benchmarks and the load harness.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod hostile;
mod port;
mod postgres;
pub mod python;
mod redis;
mod scratch;
pub mod spidcie;

pub use port::free_port;
pub use postgres::{Postgres, PostgresTls};
pub use redis::Redis;
pub use scratch::fresh_dir;

use std::path::{Path, PathBuf};

/// `nginx` from the Debian package.
pub fn nginx_binary() -> PathBuf {
    for p in ["/usr/sbin/nginx", "/usr/bin/nginx"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("nginx not installed (make test installs the Debian package)");
}
