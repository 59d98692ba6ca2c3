//! Shared test helpers: the PyJWT interpreter and a resolver driver over a map of documents.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod fed;

use std::collections::HashMap;
use std::path::Path;

use oidfed::{Error, FetchFailed, Resolver, ResolverConfig, Step, TrustChain};

/// Runs a script under `tests/py/` with the project's PyJWT venv (`scripts/pyjwt-venv.sh`,
/// PyJWT + cryptography); its stdout.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    String::from_utf8(testkit::python::run("pyjwt", &path, args, None)).expect("utf-8")
}

/// Drives a resolution over `docs` (URL → body; a missing URL is a failed fetch). Returns
/// the outcome and the number of documents the resolver asked for.
pub fn resolve(
    cfg: &ResolverConfig,
    subject: &str,
    now: u64,
    docs: &HashMap<String, String>,
) -> (Result<TrustChain, Error>, usize) {
    let (mut r, mut fetch) = match Resolver::start(cfg, subject, now) {
        Ok(x) => x,
        Err(e) => return (Err(e), 0),
    };
    let mut asked = 1;
    loop {
        let body = docs.get(fetch.url()).map(String::as_str).ok_or(FetchFailed);
        match r.feed(body) {
            Ok(Step::Fetch(f)) => {
                asked += 1;
                fetch = f;
            }
            Ok(Step::Done(chain)) => return (Ok(*chain), asked),
            Err(e) => return (Err(e), asked),
        }
        assert!(
            asked <= cfg.max_fetches,
            "resolver asked past its own bound"
        );
    }
}
