//! Shared test helpers: scripts of the independent wallet (`scripts/wallet-venv.sh`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// Runs a script under `tests/py/` with the wallet venv (`scripts/wallet-venv.sh`: sd-jwt,
/// jwcrypto, cryptography, cbor2); its stdout.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    String::from_utf8(testkit::python::run("wallet", &path, args, None)).expect("utf-8")
}
