//! Scratch directories for the servers the helpers start (a leaf: `postgres` and `redis` use
//! it, and the crate root only re-exports it).

use std::path::PathBuf;

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
