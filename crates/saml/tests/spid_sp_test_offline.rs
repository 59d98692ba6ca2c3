//! Conformance with AgID's spid-sp-test 1.2.18, offline and without the broker: our signed
//! metadata for every federation profile, and our AuthnRequest in both bindings, are written
//! to files and checked by the real tool (`--metadata-url file://…`, `--authn-url
//! file://…`), installed on demand by `scripts/spid-sp-test-venv.sh` into `.venv/`.
//!
//! Each run must exit 0, log nothing CRITICAL and no traceback, and its JSON report must hold
//! every expected phase with at least one check and no failure: spid-sp-test exits 0 when a
//! phase is skipped, so the exit code alone proves nothing. Warnings are printed, not fatal.
//! A missing python3/venv, xmlsec1 or openssl fails the tests with the command to install it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use saml::{
    Address, AssertionConsumerService, AttributeConsumingService, AuthnRequest, BillingContact,
    CieContact, Contact, Level, Localized, MetadataProfile, Organization, Sector,
    SingleLogoutService, SloBinding, SpConfig, SpMetadata, VatId, sp_metadata,
};
use xmldsig::SigningKey;

const SP_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.key.pem");
const SP_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.crt.pem");

const ENTITY_ID: &str = "https://varco.example.org/saml/metadata";
const ACS_URL: &str = "https://varco.example.org/saml/acs";
/// Where spid-sp-test's built-in IdP (`https://localhost:8443`) receives requests: the only
/// `Destination` its AuthnRequest checks accept besides the bare entityID.
const TEST_IDP_SSO: &str = "https://localhost:8443/samlsso";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sp_key() -> SigningKey {
    SigningKey::from_pem(SP_KEY, SP_CERT).unwrap()
}

/// Runs `cmd --version`-like probes; panics with an install hint when the command is absent.
fn require_command(cmd: &str, arg: &str, hint: &str) {
    let ok = Command::new(cmd)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "`{cmd}` is required by the spid-sp-test conformance tests but is missing or broken; \
         install it ({hint}, or run `make deps`)"
    );
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
        let venv = Command::new("python3")
            .args(["-m", "venv", "--help"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            venv,
            "python3 has no working `venv` module; install it (Debian: apt-get install \
             python3-venv, or run `make deps`)"
        );
        require_command("xmlsec1", "--version", "Debian: apt-get install xmlsec1");
        require_command("openssl", "version", "Debian: apt-get install openssl");
        let script = repo_root().join("scripts/spid-sp-test-venv.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}):\n{}{}",
            script.display(),
            out.status,
            stdout,
            String::from_utf8_lossy(&out.stderr)
        );
        let path = PathBuf::from(stdout.trim().lines().last().unwrap_or_default());
        assert!(
            path.is_file(),
            "spid_sp_test not found at {path:?} after {}",
            script.display()
        );
        path
    })
}

/// A fresh directory for this test binary's files, under Cargo's per-target tmp dir.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("spid-sp-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

fn organization() -> Organization {
    Organization {
        name: Localized::it_en("Comune di Varco", "Municipality of Varco"),
        display_name: Localized::it_en("Comune di Varco", "Varco"),
        url: Localized::it_en(
            "https://www.comune.varco.example.it",
            "https://www.comune.varco.example.it/en",
        ),
    }
}

fn attribute_service() -> AttributeConsumingService {
    AttributeConsumingService {
        index: 0,
        service_name: Localized::it_en("Servizi online", "Online services"),
        attributes: [
            "spidCode",
            "name",
            "familyName",
            "fiscalNumber",
            "email",
            "dateOfBirth",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// A public administration: SPID public, CIE public and eIDAS documents.
fn public_sp() -> SpMetadata {
    SpMetadata {
        entity_id: ENTITY_ID.into(),
        assertion_consumer_services: vec![
            AssertionConsumerService {
                index: 0,
                url: ACS_URL.into(),
            },
            AssertionConsumerService {
                index: 1,
                url: "https://varco.example.org/saml/acs/1".into(),
            },
        ],
        single_logout_services: vec![
            SingleLogoutService {
                binding: SloBinding::HttpPost,
                url: "https://varco.example.org/saml/slo".into(),
            },
            SingleLogoutService {
                binding: SloBinding::HttpRedirect,
                url: "https://varco.example.org/saml/slo".into(),
            },
        ],
        organization: organization(),
        sector: Sector::Public,
        ipa_code: Some("c_x999".into()),
        vat_number: Some("IT01234567890".into()),
        fiscal_code: Some("01234567890".into()),
        contact: Contact {
            email: "spid.tech@comune.varco.example.it".into(),
            phone: Some("+390612345678".into()),
        },
        billing: None,
        cie: Some(CieContact {
            municipality: "H501".into(),
            province: Some("RM".into()),
            country: Some("IT".into()),
            nace2_code: None,
        }),
        attribute_consuming_services: vec![
            attribute_service(),
            AttributeConsumingService {
                index: 1,
                service_name: Localized::it("Solo codice fiscale"),
                attributes: vec!["fiscalNumber".into()],
            },
        ],
        cie_attribute_consuming_services: Some(vec![AttributeConsumingService {
            index: 0,
            service_name: Localized::it("urn:uuid:6f1c8e8a-4b7e-4c47-9d4a-2b1f0e9c5a31"),
            attributes: ["name", "familyName", "dateOfBirth", "fiscalNumber"]
                .map(String::from)
                .to_vec(),
        }]),
    }
}

/// A private operator: SPID private (with the billing contact) and CIE private documents.
fn private_sp() -> SpMetadata {
    SpMetadata {
        sector: Sector::Private,
        ipa_code: None,
        organization: Organization {
            name: Localized::it("Varco S.p.A."),
            display_name: Localized::it("Varco"),
            url: Localized::it("https://www.varco.example.it"),
        },
        billing: Some(BillingContact {
            contact: Contact {
                email: "fatture@varco.example.it".into(),
                phone: Some("+390698765432".into()),
            },
            name: "Varco S.p.A.".into(),
            vat: Some(VatId {
                country: "IT".into(),
                code: "01234567890".into(),
            }),
            fiscal_code: Some("01234567890".into()),
            address: Address {
                street: "Via del Corso".into(),
                number: Some("1".into()),
                postal_code: "00186".into(),
                municipality: "Roma".into(),
                province: Some("RM".into()),
                country: "IT".into(),
            },
        }),
        cie: Some(CieContact {
            municipality: "H501".into(),
            province: Some("RM".into()),
            country: Some("IT".into()),
            nace2_code: Some("62.01".into()),
        }),
        ..public_sp()
    }
}

fn write_metadata(name: &str, cfg: &SpMetadata, profile: MetadataProfile) -> PathBuf {
    let xml = sp_metadata(cfg, profile, &sp_key(), "_varco-metadata-1").unwrap();
    let path = workdir().join(format!("{name}.xml"));
    std::fs::write(&path, xml).unwrap();
    path
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Results of one spid-sp-test run, per report section.
#[derive(Debug, Default)]
struct Counts {
    passed: usize,
    warnings: Vec<String>,
    failures: Vec<String>,
}

/// Runs spid-sp-test with `args` plus `--extra -rf json -o <report>` and judges the run:
/// `Err` unless it exited 0, logged nothing CRITICAL and no traceback, its report holds
/// exactly the `sections` expected, each with at least one check, no check failed, and the
/// summary line agrees with the report.
fn try_run(name: &str, args: &[&str], sections: &[&str]) -> Result<Counts, String> {
    let report = workdir().join(format!("{name}.json"));
    let _ = std::fs::remove_file(&report);
    let out = Command::new(tool())
        .args(args)
        .args(["--extra", "-d", "WARNING", "-rf", "json", "-o"])
        .arg(&report)
        .env("PYTHONWARNINGS", "ignore")
        .current_dir(workdir())
        .output()
        .expect("spawn spid_sp_test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = format!(
        "spid_sp_test {} -> {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        args.join(" "),
        out.status
    );
    if stderr.contains("CRITICAL") || stderr.contains("Traceback") {
        return Err(format!("a phase crashed or was skipped: {context}"));
    }
    let text = std::fs::read_to_string(&report)
        .map_err(|e| format!("no JSON report {}: {e}\n{context}", report.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("bad JSON report: {e}\n{context}"))?;
    let sp = json["test"]["sp"]
        .as_object()
        .ok_or_else(|| format!("report without test.sp: {context}"))?;
    if let Some(extra) = sp.keys().find(|k| !sections.contains(&k.as_str())) {
        return Err(format!("unexpected report section `{extra}`: {context}"));
    }

    let mut counts = Counts::default();
    let mut total = 0;
    for section in sections {
        let results: Vec<&serde_json::Value> = sp
            .get(*section)
            .and_then(|v| v.as_object())
            .ok_or_else(|| format!("report has no `{section}` section: {context}"))?
            .values()
            .filter_map(|v| v.as_array())
            .flatten()
            .collect();
        if results.is_empty() {
            return Err(format!("section `{section}` ran zero checks: {context}"));
        }
        total += results.len();
        for r in results {
            let describe = || {
                format!(
                    "[{section}] {} {} | {}",
                    r["method"].as_str().unwrap_or(""),
                    r["test"].as_str().unwrap_or(""),
                    r["value"].as_str().unwrap_or("")
                )
            };
            match r["result"].as_str() {
                Some("success") => counts.passed += 1,
                Some("warning") => counts.warnings.push(describe()),
                _ => counts.failures.push(describe()),
            }
        }
    }
    println!(
        "{name}: {total} checks, {} passed, {} warnings, {} failed",
        counts.passed,
        counts.warnings.len(),
        counts.failures.len()
    );
    for w in &counts.warnings {
        println!("  warning: {w}");
    }
    if !counts.failures.is_empty() {
        return Err(format!(
            "{} failed checks:\n{}\n{context}",
            counts.failures.len(),
            counts.failures.join("\n")
        ));
    }
    let summary = format!("Spid QA: executed {total} tests, 0 failed.");
    if !stdout.contains(&summary) {
        return Err(format!("summary line `{summary}` missing: {context}"));
    }
    if !out.status.success() {
        return Err(format!("non-zero exit: {context}"));
    }
    Ok(counts)
}

fn run(name: &str, args: &[&str], sections: &[&str]) -> Counts {
    try_run(name, args, sections).unwrap_or_else(|e| panic!("{e}"))
}

/// The SPID documents against AgID's Avviso n. 29 v3 schema (`spid:` and `fpa:` extensions
/// validated too), which spid-sp-test only tries when its plainer SPID schema fails.
fn assert_avviso29_schema(path: &Path) {
    let python = tool().with_file_name("python");
    let script = "import sys, os, spid_sp_test, xmlschema\n\
        xml = open(sys.argv[1]).read()\n\
        os.chdir(os.path.join(os.path.dirname(spid_sp_test.__file__), 'xsd'))\n\
        schema = xmlschema.XMLSchema(open('saml-schema-metadata-sp-spid-av29.xsd', 'rb'))\n\
        errors = [str(e) for e in schema.iter_errors(xml)]\n\
        print('\\n'.join(errors))\n\
        sys.exit(1 if errors else 0)\n";
    let out = Command::new(python)
        .args(["-c", script])
        .arg(path)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not validate against saml-schema-metadata-sp-spid-av29.xsd:\n{}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn metadata_run(name: &str, cfg: &SpMetadata, profile: MetadataProfile, tool_profile: &str) {
    let path = write_metadata(name, cfg, profile);
    if profile != MetadataProfile::Cie {
        assert_avviso29_schema(&path);
    }
    run(
        name,
        &["--metadata-url", &file_url(&path), "-pr", tool_profile],
        &["metadata_extra"],
    );
}

#[test]
fn metadata_spid_public() {
    metadata_run(
        "spid-public",
        &public_sp(),
        MetadataProfile::SpidPublic,
        "spid-sp-public",
    );
}

#[test]
fn metadata_spid_private() {
    metadata_run(
        "spid-private",
        &private_sp(),
        MetadataProfile::SpidPrivate,
        "spid-sp-private",
    );
}

#[test]
fn metadata_cie_public() {
    metadata_run(
        "cie-public",
        &public_sp(),
        MetadataProfile::Cie,
        "cie-sp-public",
    );
}

#[test]
fn metadata_cie_private() {
    metadata_run(
        "cie-private",
        &private_sp(),
        MetadataProfile::Cie,
        "cie-sp-private",
    );
}

#[test]
fn metadata_eidas() {
    metadata_run(
        "eidas",
        &public_sp(),
        MetadataProfile::Eidas,
        "ficep-eidas-sp",
    );
}

/// The eIDAS document is the SPID one plus two attribute sets: it passes the SPID profile too.
#[test]
fn metadata_eidas_is_also_spid() {
    metadata_run(
        "eidas-as-spid",
        &public_sp(),
        MetadataProfile::Eidas,
        "spid-sp-public",
    );
}

/// The harness itself: a failed check (a document altered after signing) and a skipped
/// phase (an AuthnRequest file that does not exist, which spid-sp-test only logs and then
/// exits 0) are both reported as errors.
#[test]
fn harness_rejects_failures_and_skipped_phases() {
    let good = write_metadata("neg-md", &public_sp(), MetadataProfile::SpidPublic);
    let tampered = std::fs::read_to_string(&good).unwrap().replace(
        "<md:Company>Comune di Varco<",
        "<md:Company>Comune di Altrove<",
    );
    let bad = workdir().join("neg-tampered.xml");
    std::fs::write(&bad, tampered).unwrap();
    let err = try_run(
        "neg-tampered",
        &["--metadata-url", &file_url(&bad), "-pr", "spid-sp-public"],
        &["metadata_extra"],
    )
    .unwrap_err();
    assert!(err.contains("failed checks"), "{err}");
    assert!(
        err.contains("test_xmldsig") || err.contains("signature"),
        "{err}"
    );

    let missing = workdir().join("neg-no-such-request.url");
    let err = try_run(
        "neg-skipped",
        &[
            "--metadata-url",
            &file_url(&good),
            "--authn-url",
            &file_url(&missing),
        ],
        &["metadata_extra", "authnrequest_extra"],
    )
    .unwrap_err();
    assert!(err.contains("crashed or was skipped"), "{err}");
}

fn request(level: Level) -> AuthnRequest {
    let sp = SpConfig {
        entity_id: ENTITY_ID.into(),
        acs_url: ACS_URL.into(),
        acs_index: Some(0),
        attribute_consuming_service_index: Some(0),
    };
    // spid-sp-test checks only the form of IssueInstant (UTC), not its distance from now.
    let issued = UNIX_EPOCH + Duration::from_secs(1_767_225_600); // 2026-01-01T00:00:00Z
    AuthnRequest::new(
        &sp,
        TEST_IDP_SSO,
        "_5f0c2d9e8b7a4c3d2e1f0a9b8c7d6e5f4a3b2c1d",
        level,
        issued,
    )
    .unwrap()
}

/// File mode: the file holds the HTTP-Redirect URL (`?SAMLRequest=…&RelayState=…&SigAlg=…
/// &Signature=…`), checked with the SPID metadata that publishes the signing certificate.
#[test]
fn authn_request_http_redirect() {
    let metadata = write_metadata(
        "authn-md-redirect",
        &public_sp(),
        MetadataProfile::SpidPublic,
    );
    let url = request(Level::L2)
        .redirect_url("rs-7f3a9c2e", &sp_key())
        .unwrap();
    let path = workdir().join("authn-redirect.url");
    std::fs::write(&path, url).unwrap();
    run(
        "authn-redirect",
        &[
            "--metadata-url",
            &file_url(&metadata),
            "--authn-url",
            &file_url(&path),
        ],
        &["metadata_extra", "authnrequest_extra"],
    );
}

/// File mode: the file holds the HTTP-POST binding page (form with `SAMLRequest` and
/// `RelayState`), whose enveloped signature spid-sp-test verifies with xmlsec1.
#[test]
fn authn_request_http_post() {
    let metadata = write_metadata("authn-md-post", &public_sp(), MetadataProfile::SpidPublic);
    let form = request(Level::L2)
        .post_form("rs-7f3a9c2e", &sp_key(), None)
        .unwrap();
    let path = workdir().join("authn-post.html");
    std::fs::write(&path, form.html).unwrap();
    run(
        "authn-post",
        &[
            "--metadata-url",
            &file_url(&metadata),
            "--authn-url",
            &file_url(&path),
        ],
        &["metadata_extra", "authnrequest_extra"],
    );
}

/// `scripts/spid-sp-test-idp-cert.sh` makes a key pair the tool accepts as its test IdP: the
/// exported IdP metadata carries the fresh certificate instead of the expired built-in one.
#[test]
fn fresh_test_idp_certificate() {
    let dir = workdir().join("idp");
    let script = repo_root().join("scripts/spid-sp-test-idp-cert.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        dir.to_str().unwrap()
    );
    let pem = std::fs::read_to_string(dir.join("public.cert")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(dir.join("private.key").is_file());

    let out = Command::new(tool())
        .arg("--idp-metadata")
        .env("IDP_CERT_PATH", &dir)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap();
    let metadata = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let compact: String = metadata.split_whitespace().collect();
    assert!(
        compact.contains(&b64),
        "IdP metadata does not carry the fresh certificate:\n{metadata}"
    );
    assert!(metadata.contains("entityID=\"https://localhost:8443\""));
}
