//! Test-only helpers that start the real servers Varco talks to in production, each in its
//! own throwaway directory and stopped when dropped: a PostgreSQL cluster ([`Postgres`]),
//! `redis-server` ([`Redis`]) and the path of `nginx` ([`nginx_binary`]).
//!
//! `make test` installs the Debian packages (`postgresql`, `redis-server`, `nginx`); a helper
//! panics with that hint when a binary is missing, so a test never passes without its server.
//! Used by `crates/broker/tests` and by the black-box suite in `tests/`, which otherwise held
//! two copies of the same start-up code.
//!
//! [`hostile`] makes worst-case inputs (issue 17): the largest bodies the limits allow, shaped
//! for the most work, for the pure crates' counting tests and benchmarks and the load harness.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod hostile;
mod postgres;
mod redis;

pub use postgres::{Postgres, PostgresTls};
pub use redis::Redis;

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

/// A fresh, empty directory under the system temp dir, named after `label`, this process
/// and a counter: tests of one binary run in parallel and may share a label.
pub fn fresh_dir(label: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("varco-{label}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
