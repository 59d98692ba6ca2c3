//! The monitoring files in deploy/ speak about metrics that exist: every `varco_*` name in
//! the Grafana dashboard and the Prometheus alert rules (and their unit tests) is a family
//! `crates/broker/src/features/metrics.rs` registers, every registered family is rendered on a
//! scrape and has a row in the docs/OPERATIONS.md metrics table, and the rules pass the real
//! `promtool check rules` and `promtool test rules`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

#[path = "fixture/mod.rs"]
mod fixture;

use broker::features::metrics::{Metrics, names};
use broker::features::registry::Refresher;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Every `varco_…` identifier in `text`.
fn metric_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("varco_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            out.push(text[start..end].to_owned());
        }
        i = end;
    }
    out
}

fn family_of(name: &str) -> &str {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if names::ALL.contains(&base) {
                return base;
            }
        }
    }
    name
}

#[test]
fn dashboard_and_alerts_use_only_existing_metrics() {
    let files = [
        deploy().join("grafana/varco.json"),
        deploy().join("prometheus/alerts.yml"),
        deploy().join("prometheus/alerts.test.yml"),
    ];
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let used = metric_names(&text);
        assert!(!used.is_empty(), "{} names no metric", file.display());
        for name in used {
            assert!(
                names::ALL.contains(&family_of(&name)),
                "{} uses {name}, which Varco does not export",
                file.display()
            );
        }
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "panel {} has no query", panel["title"]);
    }
}

#[test]
fn every_named_family_is_exported() {
    let now = broker::leaf::clock::system();
    let m = Metrics::new();
    // Labelled families appear once they have a child: give each one.
    m.http_requests.with_label_values(&["auth", "2xx"]).inc();
    m.http_duration.with_label_values(&["auth"]).observe(0.001);
    m.logins_started
        .with_label_values(&["spid", "https://id.example", "SpidL2"])
        .inc();
    m.logins_completed
        .with_label_values(&["spid", "https://id.example", "substantial"])
        .inc();
    m.logins_refused
        .with_label_values(&["saml_status", "nr25"])
        .inc();
    m.proxy_failures.with_label_values(&["proxy_timeout"]).inc();
    m.audit_failures
        .with_label_values(&["audit_unavailable"])
        .inc();
    m.store_duration
        .with_label_values(&["take_pending"])
        .observe(0.000_3);
    m.store_errors
        .with_label_values(&["take_pending", "store_timeout"])
        .inc();
    // Metadata families come from the sources' statistics: a loaded file with validUntil,
    // and an unreachable URL (failure counters).
    let dir = std::env::temp_dir().join(format!("varco-deploy-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert: String = std::fs::read_to_string(format!("{}/idp-rsa2048.crt.pem", fixture::KEYS))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    std::fs::write(
        dir.join("idp.xml"),
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://id.example" validUntil="2099-01-01T00:00:00Z"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://id.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
    )
    .unwrap();
    let file = broker::features::registry::SourceConfig {
        name: "file".into(),
        federation: saml::Federation::Spid,
        location: broker::features::registry::Location::File(dir.join("idp.xml")),
        pinned: Vec::new(),
        unsigned: true,
        required: true,
        bounds: metadata::RefreshBounds::default(),
        timeout: std::time::Duration::from_secs(1),
        max_bytes: 1 << 20,
        display_name: None,
        max_age: broker::features::registry::DEFAULT_MAX_AGE,
    };
    let source = broker::features::registry::SourceConfig {
        name: "registry".into(),
        federation: saml::Federation::Spid,
        location: broker::features::registry::Location::Url("http://127.0.0.1:9/metadata".into()),
        pinned: Vec::new(),
        unsigned: true,
        required: true,
        bounds: metadata::RefreshBounds::default(),
        timeout: std::time::Duration::from_secs(1),
        max_bytes: 1024,
        display_name: None,
        max_age: broker::features::registry::DEFAULT_MAX_AGE,
    };
    let refresher = Refresher::new(
        vec![file, source],
        None,
        Arc::new(metadata::Registry::default()),
        false,
        now,
    );
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(refresher.refresh_all(now));
    m.expiries(std::iter::once(("sp_certificate", "sp", 86_400)), 0);
    let text = m.render(&refresher, now);
    for name in names::ALL {
        assert!(
            text.contains(&format!("# TYPE {name} ")),
            "{name} is named but not exported:\n{text}"
        );
    }
}

#[test]
fn alert_rules_pass_promtool() {
    let dir = deploy().join("prometheus");
    for args in [
        &["check", "rules", "alerts.yml"][..],
        &["test", "rules", "alerts.test.yml"][..],
        // The scrape configuration (management port) with the rules it loads.
        &["check", "config", "scrape.yml"][..],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool (make test installs the Debian package prometheus)");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_metric_is_documented_in_operations() {
    let ops = std::fs::read_to_string(deploy().join("../docs/OPERATIONS.md")).unwrap();
    for name in names::ALL {
        assert!(
            ops.contains(&format!("| `{name}` |")),
            "{name} has no row in the docs/OPERATIONS.md metrics table"
        );
    }
}
