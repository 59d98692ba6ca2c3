//! What the repository hands to operators and to the reuse catalogue, read as they read it:
//!
//! - the alert rules (deploy/prometheus/alerts.yml): every alert has a summary, a
//!   description and an absolute `runbook_url` into docs/OPERATIONS.md whose anchor is a
//!   heading there, and fires in at least one case of alerts.test.yml (which `promtool test
//!   rules` runs in crates/broker/tests/deploy_files.rs, with the metric-name checks);
//! - the Grafana dashboard: every panel is described, and audit latency and failures,
//!   configuration reloads and rate limits have panels;
//! - publiccode.yml: valid against the publiccode.yml JSON Schema (scripts/publiccode-check.py,
//!   which also refuses a broken copy here), and agreeing with LICENSE, Cargo.toml and the
//!   runbook links;
//! - LICENSE: the EUPL-1.2 text exactly as the SPDX License List publishes it.
//!
//! YAML is read by PyYAML from scripts/deploy-venv.sh (the venv also holds the schema).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::scratch;
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv_bin() -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/deploy-venv.sh"))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "deploy-venv.sh:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A YAML file as JSON (dates as strings).
fn yaml(bin: &Path, file: &Path) -> Value {
    let out = Command::new(bin.join("python"))
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1])), default=str))",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The anchors GitHub-style renderers give docs/OPERATIONS.md's headings.
fn operations_anchors() -> Vec<String> {
    let ops = std::fs::read_to_string(root().join("docs/OPERATIONS.md")).unwrap();
    ops.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            h.trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
                .map(|c| if c == ' ' { '-' } else { c })
                .collect()
        })
        .collect()
}

fn repository(bin: &Path) -> String {
    let publiccode = yaml(bin, &root().join("publiccode.yml"));
    publiccode["url"].as_str().unwrap().to_owned()
}

#[test]
fn every_alert_is_described_has_a_runbook_and_fires_in_a_test() {
    let bin = venv_bin();
    let prom = root().join("deploy/prometheus");
    let rules = yaml(&bin, &prom.join("alerts.yml"));
    let tests = yaml(&bin, &prom.join("alerts.test.yml"));
    let anchors = operations_anchors();
    let runbooks = format!("{}/blob/main/docs/OPERATIONS.md#", repository(&bin));
    assert!(runbooks.starts_with("https://"), "{runbooks}");
    let fired: Vec<&str> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap())
        .filter(|c| !c["exp_alerts"].as_array().unwrap().is_empty())
        .map(|c| c["alertname"].as_str().unwrap())
        .collect();
    let mut alerts = 0;
    for group in rules["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            let Some(name) = rule["alert"].as_str() else {
                continue;
            };
            alerts += 1;
            let ann = &rule["annotations"];
            for key in ["summary", "description"] {
                assert!(
                    ann[key].as_str().is_some_and(|s| s.len() > 20),
                    "{name}: no {key}"
                );
            }
            assert!(ann.get("runbook").is_none(), "{name}: relative `runbook`");
            let url = ann["runbook_url"].as_str().unwrap_or("");
            let anchor = url
                .strip_prefix(&runbooks)
                .unwrap_or_else(|| panic!("{name}: runbook_url {url:?} is not under {runbooks}"));
            assert!(
                anchors.iter().any(|a| a == anchor),
                "{name}: no heading in docs/OPERATIONS.md has the anchor #{anchor}"
            );
            assert!(
                fired.contains(&name),
                "{name} never fires in alerts.test.yml"
            );
        }
    }
    assert!(alerts >= 10, "{alerts} alerts");
}

#[test]
fn dashboard_panels_are_described_and_cover_audit_reloads_and_rate_limits() {
    let text = std::fs::read_to_string(root().join("deploy/grafana/varco.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    let mut ids = Vec::new();
    for p in panels {
        let title = p["title"].as_str().unwrap();
        assert!(
            p["description"].as_str().is_some_and(|d| d.len() > 40),
            "panel {title:?} has no description"
        );
        ids.push(p["id"].as_u64().unwrap());
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), panels.len(), "panel ids repeat");
    let queries: Vec<&str> = panels
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    for metric in [
        "varco_audit_append_duration_seconds_bucket",
        "varco_audit_failures_total",
        "varco_config_reloads_total",
        "varco_config_last_reload_successful",
        "varco_legacy_throttled_total",
    ] {
        assert!(
            queries.iter().any(|q| q.contains(metric)),
            "no panel shows {metric}"
        );
    }
}

#[test]
fn publiccode_yml_is_valid_and_agrees_with_license_cargo_and_runbooks() {
    let bin = venv_bin();
    let check = |file: &Path| {
        Command::new(bin.join("python"))
            .arg(root().join("scripts/publiccode-check.py"))
            .arg(file)
            .output()
            .unwrap()
    };
    let file = root().join("publiccode.yml");
    let out = check(&file);
    assert!(
        out.status.success(),
        "publiccode.yml:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator refuses what the catalogue would: no `legal`, a date that is none.
    let text = std::fs::read_to_string(&file).unwrap();
    let dir = scratch("publiccode");
    for (from, to, expected) in [
        ("\nlegal:", "\nlegalese:", "'legal' is a required property"),
        (
            "releaseDate: \"",
            "releaseDate: \"2026-13-",
            "is not a 'date'",
        ),
    ] {
        assert!(text.contains(from));
        let broken = dir.join("publiccode.yml");
        std::fs::write(&broken, text.replacen(from, to, 1)).unwrap();
        let out = check(&broken);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(expected), "{err}");
    }

    let doc = yaml(&bin, &file);
    let cargo = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let license = doc["legal"]["license"].as_str().unwrap();
    assert_eq!(license, "EUPL-1.2");
    assert!(cargo.contains(&format!("license = \"{license}\"")));
    let version = doc["softwareVersion"].as_str().unwrap();
    assert!(
        cargo.contains(&format!("\nversion = \"{version}\"")),
        "{version}"
    );
    let url = doc["url"].as_str().unwrap();
    let alerts = std::fs::read_to_string(root().join("deploy/prometheus/alerts.yml")).unwrap();
    assert!(
        alerts.contains(&format!("runbook_url: \"{url}/")),
        "the runbook links must follow publiccode.yml's url"
    );
}

/// LICENSE is the EUPL-1.2 text as the SPDX License List publishes it (the npm package
/// spdx-license-list 6.12.0, `spdx-full.json`, plus the final newline; word for word the
/// text of spdx/license-list-XML's src/EUPL-1.2.xml, and byte for byte its
/// test/simpleTestForGenerator/EUPL-1.2.txt). Any edit shows here.
#[test]
fn license_is_the_spdx_eupl_1_2_text() {
    let out = Command::new("sha256sum")
        .arg(root().join("LICENSE"))
        .output()
        .unwrap();
    let sum = String::from_utf8(out.stdout).unwrap();
    assert!(
        sum.starts_with("57fb42fbcd0b037ce528ed8f72f1ec095d67bc6825ecf1448ff39be1fe68a4b4 "),
        "{sum}"
    );
}
