//! AgID's spid-sp-test 1.2.18 against the running `varco` binary, over HTTP: the published
//! metadata (SPID, CIE and eIDAS profiles), the AuthnRequest `/saml/login` sends (HTTP-Redirect
//! and HTTP-POST bindings) and the Response phase `-tr`, where the tool signs its crafted
//! Responses (111 cases; 109 for cie-sp-public) with a fresh test-IdP key and posts them to
//! `/saml/acs`.
//!
//! The tool comes from `scripts/spid-sp-test-venv.sh`, the test IdP key and certificate from
//! `scripts/spid-sp-test-idp-cert.sh` (the one the tool ships expired on 2025-03-08); Varco
//! trusts the IdP through `serve --idp-metadata` with the tool's own `--idp-metadata` export.
//!
//! spid-sp-test exits 0 when a phase is skipped (a login URL answering anything but 200 or
//! 302), so a run is judged from its JSON report and stderr: no CRITICAL and no traceback,
//! exactly the three phases, each with checks, no failed check, the Response phase with the
//! expected number of distinct cases, the summary line and exit code agreeing. Varco's own
//! log is cross-checked: every case reached the ACS once, the logins it completed are exactly
//! the cases the tool saw accepted, and no case was refused for a reason outside the
//! Response (another browser, an internal error). See tests/spid-sp-test/README.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use e2e::{Browser, Process, binary, free_port, scratch};

/// The tool's test IdP. Set explicitly so an `IDP_ENTITYID` in the caller's environment
/// cannot make the exported metadata and the signed Responses disagree.
const IDP_ENTITY_ID: &str = "https://localhost:8443";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn require_command(cmd: &str, arg: &str, hint: &str) {
    let ok = Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{cmd}` is required by the spid-sp-test suite but is missing or broken; install it \
         ({hint}, or run `make deps`)"
    );
}

/// Runs one of the repository's scripts and returns the last line it printed on stdout.
fn script(name: &str, args: &[&Path]) -> String {
    let path = repo_root().join("scripts").join(name);
    let out = Command::new("bash")
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.trim().lines().last().unwrap_or_default().to_owned()
}

/// The `spid_sp_test` executable, installed once per test binary (idempotent script).
fn tool() -> &'static Path {
    static TOOL: OnceLock<PathBuf> = OnceLock::new();
    TOOL.get_or_init(|| {
        require_command(
            "python3",
            "--version",
            "Debian: apt-get install python3 python3-venv",
        );
        require_command("xmlsec1", "--version", "Debian: apt-get install xmlsec1");
        require_command("openssl", "version", "Debian: apt-get install openssl");
        let path = PathBuf::from(script("spid-sp-test-venv.sh", &[]));
        assert!(path.is_file(), "spid_sp_test not found at {path:?}");
        path
    })
}

/// The test IdP: a fresh key/certificate directory (`IDP_CERT_PATH`) and the metadata the
/// tool exports for it, written once per test binary.
struct TestIdp {
    cert_dir: PathBuf,
    metadata: PathBuf,
}

fn test_idp() -> &'static TestIdp {
    static IDP: OnceLock<TestIdp> = OnceLock::new();
    IDP.get_or_init(|| {
        let dir = scratch("spid-sp-test-idp");
        let cert_dir = PathBuf::from(script("spid-sp-test-idp-cert.sh", &[&dir.join("idp")]));
        let out = Command::new(tool())
            .arg("--idp-metadata")
            .env("IDP_CERT_PATH", &cert_dir)
            .env("IDP_ENTITYID", IDP_ENTITY_ID)
            .env("PYTHONWARNINGS", "ignore")
            .output()
            .expect("spawn spid_sp_test --idp-metadata");
        let xml = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success() && xml.contains(&format!("entityID=\"{IDP_ENTITY_ID}\"")),
            "spid_sp_test --idp-metadata ({}):\n{xml}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        // The exported certificate must be the fresh one, not the expired built-in one.
        let pem = std::fs::read_to_string(cert_dir.join("public.cert")).unwrap();
        let b64: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<String>();
        assert!(
            xml.contains(&b64[..64]),
            "IdP metadata lacks the fresh cert"
        );
        let metadata = dir.join("idp-metadata.xml");
        std::fs::write(&metadata, xml).unwrap();
        TestIdp { cert_dir, metadata }
    })
}

/// A `varco serve` trusting the test IdP, with the given request binding.
struct Varco {
    base: String,
    dir: PathBuf,
    proc: Process,
}

impl Varco {
    fn start(binding: &str) -> Varco {
        let idp = test_idp();
        let dir = scratch(&format!("spid-sp-test-{binding}"));
        let port = free_port();
        // `localhost`, as spid-sp-test's own examples: the SP entityID, ACS and the tool's
        // cookie jar all use this host name.
        let base = format!("http://localhost:{port}");
        e2e::sp_credentials(&dir, "varco-spid-sp-test");
        // `municipality` makes Varco publish /saml/metadata/cie too.
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"{base}\"\n\
             [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
             binding = \"{binding}\"\n\
             [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
             url = \"https://www.example.org\"\nipa_code = \"c_h501\"\n\
             email = \"spid@example.org\"\nphone = \"+390600000000\"\n\
             municipality = \"H501\"\nprovince = \"RM\"\ncountry = \"IT\"\n\
             [session]\nkey_file = \"session.key\"\ncookie_secure = false\n"
        );
        std::fs::write(dir.join("varco.toml"), config).unwrap();
        let mut proc = Process::start(
            "varco",
            &binary("varco"),
            &[
                "serve",
                "--config",
                dir.join("varco.toml").to_str().unwrap(),
                "--idp-metadata",
                idp.metadata.to_str().unwrap(),
            ],
            &dir,
        );
        proc.wait_ready(&format!("{base}/healthz"));
        Varco { base, dir, proc }
    }

    fn login_url(&self, idp: &str) -> String {
        format!("{}/saml/login?idp={idp}&level=2", self.base)
    }

    /// Varco's log events with this name, as JSON objects.
    fn events(&self, name: &str) -> Vec<serde_json::Value> {
        self.proc
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["event"] == name)
            .collect()
    }
}

/// What one run of the tool found.
#[derive(Debug, Default)]
struct Outcome {
    /// Checks per report section, in the order asked.
    checks: Vec<(String, usize)>,
    /// Response cases whose final HTTP status was 200 (accepted by Varco).
    accepted: Vec<String>,
    warnings: Vec<String>,
}

const SECTIONS: [&str; 3] = ["metadata_extra", "authnrequest_extra", "response"];

/// Runs the three phases against `varco` with the metadata at `metadata_path`, the tool
/// profile `profile` and the login URL `login`, and judges the run (see the file doc).
fn try_run(
    name: &str,
    varco: &Varco,
    metadata_path: &str,
    profile: &str,
    login: &str,
    response_cases: usize,
) -> Result<Outcome, String> {
    let report = varco.dir.join(format!("{name}.json"));
    let metadata_url = format!("{}{metadata_path}", varco.base);
    let args = [
        "--metadata-url",
        &metadata_url,
        "--authn-url",
        login,
        "-pr",
        profile,
        "--extra",
        "-tr",
        "-d",
        "WARNING",
        "-rf",
        "json",
        "-o",
        report.to_str().unwrap(),
    ];
    let out = Command::new(tool())
        .args(args)
        .env("IDP_CERT_PATH", &test_idp().cert_dir)
        .env("IDP_ENTITYID", IDP_ENTITY_ID)
        .env("PYTHONWARNINGS", "ignore")
        .current_dir(&varco.dir)
        .output()
        .expect("spawn spid_sp_test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = || {
        format!(
            "spid_sp_test {} -> {}\n--- stderr\n{stderr}\n--- stdout (tail)\n{}\n--- varco log \
             (tail)\n{}",
            args.join(" "),
            out.status,
            tail(&stdout, 40),
            tail(&varco.proc.log(), 40)
        )
    };
    if stderr.contains("CRITICAL") || stderr.contains("Traceback") {
        return Err(format!("a phase crashed or was skipped: {}", context()));
    }
    let text = std::fs::read_to_string(&report)
        .map_err(|e| format!("no JSON report {}: {e}\n{}", report.display(), context()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("bad JSON report: {e}\n{}", context()))?;
    let sp = json["test"]["sp"]
        .as_object()
        .ok_or_else(|| format!("report without test.sp: {}", context()))?;
    if let Some(extra) = sp.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
        return Err(format!(
            "unexpected report section `{extra}`: {}",
            context()
        ));
    }

    let mut outcome = Outcome::default();
    let mut failures = Vec::new();
    for section in SECTIONS {
        let results: Vec<&serde_json::Value> = sp
            .get(section)
            .and_then(|v| v.as_object())
            .ok_or_else(|| {
                format!(
                    "report has no `{section}` section (phase skipped): {}",
                    context()
                )
            })?
            .values()
            .filter_map(|v| v.as_array())
            .flatten()
            .collect();
        if results.is_empty() {
            return Err(format!(
                "section `{section}` ran zero checks: {}",
                context()
            ));
        }
        outcome.checks.push((section.to_owned(), results.len()));
        for r in &results {
            let describe = || {
                format!(
                    "[{section}] {} {} | {}",
                    r["method"].as_str().unwrap_or(""),
                    r["test"].as_str().unwrap_or(""),
                    r["value"].as_str().unwrap_or("")
                )
            };
            match r["result"].as_str() {
                Some("success") => {}
                Some("warning") => outcome.warnings.push(describe()),
                _ => failures.push(describe()),
            }
        }
        if section == "response" {
            let mut ids: Vec<&str> = results
                .iter()
                .filter_map(|r| r["test_id"].as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if results.len() != response_cases || ids.len() != response_cases {
                return Err(format!(
                    "Response phase ran {} checks over {} cases, expected {response_cases}: {}",
                    results.len(),
                    ids.len(),
                    context()
                ));
            }
            outcome.accepted = results
                .iter()
                .filter(|r| r["value"].as_str() == Some("[http status_code: 200]"))
                .filter_map(|r| r["test_id"].as_str().map(str::to_owned))
                .collect();
        }
    }
    if !failures.is_empty() {
        return Err(format!(
            "{} failed checks:\n{}\n{}",
            failures.len(),
            failures.join("\n"),
            context()
        ));
    }
    let total: usize = outcome.checks.iter().map(|(_, n)| n).sum();
    let summary = format!("Spid QA: executed {total} tests, 0 failed.");
    if !stdout.contains(&summary) {
        return Err(format!("summary line `{summary}` missing: {}", context()));
    }
    if !out.status.success() {
        return Err(format!("non-zero exit: {}", context()));
    }

    // Varco's side: one ACS outcome per case, the completed logins are the accepted cases,
    // and no refusal came from outside the Response itself.
    let completed = varco.events("login_completed").len();
    let refused = varco.events("login_refused");
    if completed != outcome.accepted.len() || completed + refused.len() != response_cases {
        return Err(format!(
            "varco completed {completed} and refused {} logins, the tool saw {} accepted of \
             {response_cases}: {}",
            refused.len(),
            outcome.accepted.len(),
            context()
        ));
    }
    let wrong = ["broker_browser_mismatch", "broker_rng", "broker_seal"];
    if let Some(e) = refused
        .iter()
        .find(|e| wrong.contains(&e["code"].as_str().unwrap_or("")))
    {
        return Err(format!(
            "a case was refused for the wrong reason {e}: {}",
            context()
        ));
    }
    if !varco.events("internal_error").is_empty() {
        return Err(format!("varco logged an internal error: {}", context()));
    }
    Ok(outcome)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Starts Varco with `binding`, checks that `/saml/login` really uses it, and runs the tool
/// with `profile` on the metadata at `metadata_path`.
fn conformance(binding: &str, metadata_path: &str, profile: &str, response_cases: usize) {
    let varco = Varco::start(binding);
    let login = varco.login_url(IDP_ENTITY_ID);
    let first = Browser::default().get(&login);
    let expected_status = if binding == "post" { 200 } else { 302 };
    assert_eq!(first.status, expected_status, "{}", first.body);
    assert_eq!(
        Browser::default()
            .get(&format!("{}{metadata_path}", varco.base))
            .status,
        200
    );
    // The probe started a login but posted nothing: Varco's ACS counts stay the tool's.

    let name = format!("{binding}-{profile}");
    let outcome = try_run(
        &name,
        &varco,
        metadata_path,
        profile,
        &login,
        response_cases,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"));
    let counts: Vec<String> = outcome
        .checks
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!(
        "{name}: {} ({} warnings); Response cases accepted: {}",
        counts.join(", "),
        outcome.warnings.len(),
        outcome.accepted.join(" ")
    );
    for w in &outcome.warnings {
        println!("  warning: {w}");
    }
    // The cases whose expected outcome is "Ok" for an L2 request (95 and 96: L2 and L3
    // asserted; 94, L1, must be refused), plus 103 (a different attribute set), which the
    // tool lets the SP accept or refuse and Varco accepts.
    let mut accepted = outcome.accepted;
    accepted.sort_unstable();
    assert_eq!(
        accepted,
        ["1", "103", "109", "110", "31", "95", "96"],
        "{name}"
    );
}

#[test]
fn redirect_binding_spid_public() {
    conformance("redirect", "/saml/metadata", "spid-sp-public", 111);
}

#[test]
fn redirect_binding_cie_public() {
    conformance("redirect", "/saml/metadata/cie", "cie-sp-public", 109);
}

#[test]
fn redirect_binding_eidas() {
    conformance("redirect", "/saml/metadata/eidas", "ficep-eidas-sp", 111);
}

#[test]
fn post_binding_spid_public() {
    conformance("post", "/saml/metadata", "spid-sp-public", 111);
}

#[test]
fn post_binding_cie_public() {
    conformance("post", "/saml/metadata/cie", "cie-sp-public", 109);
}

#[test]
fn post_binding_eidas() {
    conformance("post", "/saml/metadata/eidas", "ficep-eidas-sp", 111);
}

/// The judge itself: a login URL Varco refuses (an IdP it does not trust, 400) makes the
/// tool skip the AuthnRequest and Response phases and still exit 0; that must be an error.
#[test]
fn skipped_phases_fail_the_run() {
    let varco = Varco::start("redirect");
    let login = varco.login_url("https%3A%2F%2Funknown.example");
    assert_eq!(Browser::default().get(&login).status, 400);
    let err = try_run(
        "skipped",
        &varco,
        "/saml/metadata",
        "spid-sp-public",
        &login,
        111,
    )
    .unwrap_err();
    assert!(err.contains("crashed or was skipped"), "{err}");
}
