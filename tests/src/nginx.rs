//! nginx (the Debian package) in front of Varco, as an operator runs it with the snippets
//! in `deploy/nginx`: one configuration per test, checked with `nginx -t`, in the
//! foreground, stopped with the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Process, scratch};

/// `deploy/nginx`, absolute: what a test's configuration `include`s.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/nginx")
        .canonicalize()
        .unwrap()
}

/// Starts nginx with `http_body` (upstreams and servers) inside an `http` block whose
/// logs, pid and temporary paths live in a fresh scratch directory named after `label`.
/// Readiness is the caller's to wait for: each test knows a URL that only answers once its
/// own server block is up.
pub fn start(label: &str, http_body: &str) -> Process {
    let dir = scratch(label);
    let conf = format!(
        "worker_processes 1;\nerror_log {dir}/error.log info;\npid {dir}/nginx.pid;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n\
           client_body_temp_path {dir}/body;\n  proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n  uwsgi_temp_path {dir}/uwsgi;\n  scgi_temp_path {dir}/scgi;\n\
         {http_body}\n}}\n",
        dir = dir.display(),
    );
    let file = dir.join("nginx.conf");
    std::fs::write(&file, conf).unwrap();
    let check = Command::new(testkit::nginx_binary())
        .arg("-t")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t:\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    Process::start(
        "nginx",
        &testkit::nginx_binary(),
        &[
            "-p",
            dir.to_str().unwrap(),
            "-c",
            file.to_str().unwrap(),
            "-g",
            // One process: the harness stops it with SIGKILL, which a master process would
            // not pass on, leaving its workers behind after the test (seen: twenty orphaned
            // workers after one `make test`).
            "daemon off; master_process off;",
        ],
        &dir,
    )
}
