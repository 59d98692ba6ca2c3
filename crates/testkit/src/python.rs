//! Independent implementations written in Python, for interop tests: the project's venv
//! scripts (`scripts/<name>-venv.sh`, each installing pinned PyPI packages and printing its
//! interpreter) and one way to run a script with JSON or bytes on stdin.
//!
//! One helper for every crate that checks itself against a Python library (jose, oidfed,
//! sdjwt, openid4vp, mdoc), so the venv is made the same way and a failing script always
//! shows its stderr.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

/// The interpreter of `scripts/<name>-venv.sh` (for example `pyjwt` or `wallet`). The script
/// runs once per test process and name; it is idempotent, so parallel processes agree.
pub fn python(name: &str) -> PathBuf {
    static CACHE: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = cache.get(name) {
        return p.clone();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(format!("{name}-venv.sh"));
    let out = Command::new("bash").arg(&script).output().expect("bash");
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let path = PathBuf::from(String::from_utf8(out.stdout).expect("utf-8").trim());
    cache.insert(name.to_owned(), path.clone());
    path
}

/// Runs `script` with the interpreter of venv `name`, `args` on its command line and `stdin`
/// (if any) on its standard input; its standard output. Panics, with the script's stderr,
/// when it exits non-zero.
pub fn run(name: &str, script: &Path, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
    let mut child = Command::new(python(name))
        .arg(script)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
    }
    let out = child.wait_with_output().expect("python");
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
