//! Smoke test of the load harness on a tiny N against the debug builds of `varco` and
//! `varco-dev-idp` (`make test` builds every binary first): the generator prepares real
//! pending requests and signed Responses, every ACS post and every full login succeeds with
//! durable audit on, the fixture files it writes validate in process, and a Response
//! validated for the wrong request is refused. No timing is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

fn bin_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("debug");
    assert!(
        dir.join("varco").exists() && dir.join("varco-dev-idp").exists(),
        "build the binaries first: cargo build -p broker -p varco-dev-idp --bins"
    );
    dir
}

fn loadgen(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_varco-loadgen"))
        .args(args)
        .arg("--bin-dir")
        .arg(bin_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "varco-loadgen {args:?}: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn acs_mode_posts_every_prepared_response() {
    let out = loadgen(&["acs", "--n", "6", "--concurrency", "3"]);
    assert!(out.contains("ACS posts: 6 ok, 0 failed"), "{out}");
    assert!(
        out.contains("varco CPU:") && out.contains("peak RSS (VmHWM)"),
        "{out}"
    );
    // Read from the management listener: /metrics is not on the public one (issue 18).
    assert!(out.contains("records per group commit"), "{out}");
}

#[test]
fn full_mode_at_a_rate_completes_every_login() {
    let out = loadgen(&["full", "--n", "4", "--rate", "20", "--concurrency", "2"]);
    assert!(out.contains("full logins: 4 ok, 0 failed"), "{out}");
    assert!(out.contains("varco's share (login + ACS answers)"), "{out}");
}

#[test]
fn fixtures_validate_in_process_and_a_swapped_request_is_refused() {
    let dir = std::env::temp_dir().join(format!("varco-loadgen-smoke-{}", std::process::id()));
    loadgen(&["fixtures", "--n", "3", "--out", dir.to_str().unwrap()]);
    let validate = |d: &PathBuf| {
        Command::new(env!("CARGO_BIN_EXE_varco-validate-files"))
            .arg(d)
            .args(["--rounds", "2"])
            .output()
            .unwrap()
    };
    let ok = validate(&dir);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("varco_us_per_response="), "{text}");

    // Each Response answers its own request: pair the first file with the second's ID.
    let manifest = std::fs::read_to_string(dir.join("manifest.tsv")).unwrap();
    let lines: Vec<(&str, &str)> = manifest
        .lines()
        .map(|l| l.split_once('\t').unwrap())
        .collect();
    std::fs::write(
        dir.join("manifest.tsv"),
        format!("{}\t{}\n", lines[0].0, lines[1].1),
    )
    .unwrap();
    let swapped = validate(&dir);
    assert_eq!(swapped.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&swapped.stderr).contains("refused: "),
        "{}",
        String::from_utf8_lossy(&swapped.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `get` against a loopback server that answers every request 204 on keep-alive connections
/// and closes each after its third answer (`Connection: close`, as nginx does after 1,000):
/// every request answered, none an error, and the lines `scripts/load-auth.sh` reads are there.
#[test]
fn get_mode_answers_every_request_at_its_rate() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                let mut answered = 0;
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        answered += 1;
                        let last = answered == 3;
                        let answer: &[u8] = if last {
                            b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
                        } else {
                            b"HTTP/1.1 204 No Content\r\n\r\n"
                        };
                        if stream.write_all(answer).is_err() || last {
                            return;
                        }
                    }
                }
            });
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_varco-loadgen"))
        .args([
            "get",
            "--url",
            &format!("http://{address}/auth"),
            "--rate",
            "400",
        ])
        .args(["--duration", "0.5", "--concurrency", "4"])
        .args(["--header", "X-Original-URI: /pratiche"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", out.status);
    assert!(
        stdout.contains("200 sent in") && stdout.contains("200 answered 2xx, 0 errors"),
        "{stdout}"
    );
    assert!(stdout.contains("latency from due time: p50 "), "{stdout}");
    assert!(
        stdout.contains("generator lateness (due → dispatched): "),
        "{stdout}"
    );
}
