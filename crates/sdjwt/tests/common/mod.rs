//! Shared test helpers: the independent wallet's python (`scripts/wallet-venv.sh`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The python of the wallet venv (sd-jwt, jwcrypto, cryptography, cbor2).
pub fn python() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/wallet-venv.sh");
    let out = Command::new("bash").arg(script).output().expect("bash");
    assert!(
        out.status.success(),
        "wallet-venv.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim())
}

/// Runs a script under `tests/py/` with the wallet python; its stdout.
pub fn run_py(script: &str, args: &[&str]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new(python())
        .arg(path)
        .args(args)
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}
