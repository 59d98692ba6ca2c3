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
