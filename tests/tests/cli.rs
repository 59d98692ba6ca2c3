//! The command line: configuration is validated before any port is bound (exit 64 listing
//! every problem), `check-config` and `metadata` work on a good file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use e2e::{binary, free_port, scratch};

/// A minimal IdP metadata file with a real certificate (the SP's own, for the test).
fn idp_metadata(dir: &Path) {
    let pem = std::fs::read_to_string(dir.join("sp.crt.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::write(
        dir.join("idp.xml"),
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
    )
    .unwrap();
}

fn good_config(dir: &Path, port: u16) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"https://sp.example.org\"\n\
         [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
         [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
         url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
         phone = \"+390600000000\"\nmunicipality = \"H501\"\n\
         [session]\nkey_file = \"session.key\"\n\
         [[idp]]\nmetadata_file = \"{}\"\n",
        dir.join("idp.xml").display()
    )
}

fn setup() -> std::path::PathBuf {
    let dir = scratch("cli");
    e2e::sp_credentials(&dir, "varco-cli");
    idp_metadata(&dir);
    dir
}

#[test]
fn bad_configuration_exits_64_listing_every_problem_before_binding() {
    let dir = setup();
    let port = free_port();
    let bad = good_config(&dir, port)
        .replace("sp.key.pem", "missing.pem")
        .replace("session.key", "nope.key")
        .replace("[sp]\n", "[sp]\nbinding = \"carrier-pigeon\"\n");
    let file = dir.join("bad.toml");
    std::fs::write(&file, bad).unwrap();
    for args in [
        vec!["check-config", file.to_str().unwrap()],
        vec!["serve", "--config", file.to_str().unwrap()],
    ] {
        let out = Command::new(binary("varco")).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        for key in ["sp.key_file", "session.key_file", "sp.binding"] {
            assert!(err.contains(key), "{args:?}: {key} missing from:\n{err}");
        }
    }
    // Nothing listens on the configured port.
    assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
}

#[test]
fn unknown_keys_and_plain_http_with_secure_cookies_are_refused() {
    let dir = setup();
    let file = dir.join("c.toml");
    std::fs::write(&file, good_config(&dir, free_port()) + "[oops]\nx = 1\n").unwrap();
    let out = Command::new(binary("varco"))
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));

    let http =
        good_config(&dir, free_port()).replace("https://sp.example.org", "http://sp.example.org");
    std::fs::write(&file, http).unwrap();
    let out = Command::new(binary("varco"))
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("session.cookie_secure"));
}

#[test]
fn good_configuration_checks_and_prints_metadata() {
    let dir = setup();
    let file = dir.join("good.toml");
    std::fs::write(&file, good_config(&dir, free_port())).unwrap();
    let out = Command::new(binary("varco"))
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for federation in ["spid", "cie", "eidas"] {
        let out = Command::new(binary("varco"))
            .args([
                "metadata",
                "--config",
                file.to_str().unwrap(),
                "--federation",
                federation,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{federation}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let xml = String::from_utf8(out.stdout).unwrap();
        assert!(
            xml.contains("entityID=\"https://sp.example.org/saml/metadata\""),
            "{xml}"
        );
        assert!(xml.contains("<ds:SignatureValue>"), "{federation}");
        assert!(xml.contains("https://sp.example.org/saml/acs"));
    }
}

#[test]
fn idp_without_signing_key_is_a_configuration_error() {
    let dir = setup();
    let xml = std::fs::read_to_string(dir.join("idp.xml")).unwrap();
    let start = xml.find("<md:KeyDescriptor").unwrap();
    let end = xml.find("</md:KeyDescriptor>").unwrap() + "</md:KeyDescriptor>".len();
    std::fs::write(
        dir.join("idp.xml"),
        format!("{}{}", &xml[..start], &xml[end..]),
    )
    .unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, good_config(&dir, free_port())).unwrap();
    let out = Command::new(binary("varco"))
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no signing certificate"));
}

#[test]
fn bad_metadata_sources_exit_64_with_their_keys() {
    let dir = setup();
    let file = dir.join("c.toml");
    let sources = "[[metadata]]\nname = \"bad name\"\nfederation = \"atlantis\"\n\
                   url = \"ftp://registry.example\"\nmin_refresh_seconds = 0\n\
                   [[metadata]]\nname = \"registry\"\nfederation = \"spid\"\n\
                   url = \"https://registry.example/idps.xml\"\n\
                   signing_cert_file = \"missing.pem\"\ntimeout_seconds = 0\n\
                   [[metadata]]\nname = \"both\"\nfederation = \"cie\"\n\
                   url = \"https://registry.example/cie.xml\"\nfile = \"idp.xml\"\n\
                   unsigned = true\n";
    std::fs::write(&file, good_config(&dir, free_port()) + sources).unwrap();
    let out = Command::new(binary("varco"))
        .args(["check-config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "metadata[0].name",
        "metadata[0].federation",
        "metadata[0].url",
        "metadata[0].signing_cert_file",
        "metadata[0].min_refresh_seconds",
        "metadata[1].signing_cert_file",
        "metadata[1].timeout_seconds",
        "metadata[2]: set exactly one of url or file",
        "state.dir",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
}

/// Runs `varco` with `args`; (exit code, stdout, stderr).
fn varco(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(binary("varco")).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_and_version_on_every_subcommand_and_usage_errors_exit_64() {
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["check-config"],
        &["metadata"],
        &["metadata", "sources"],
        &["audit"],
        &["audit", "verify"],
        &["audit", "export"],
        &["legacy"],
        &["legacy", "hash"],
        &["switchoff"],
        &["switchoff", "report"],
        &["keys"],
        &["keys", "generate"],
        &["init"],
    ];
    let version = format!(" {}", env!("CARGO_PKG_VERSION"));
    for command in commands {
        for flag in ["--help", "-h"] {
            let args = [*command, &[flag]].concat();
            let (code, out, err) = varco(&args);
            assert_eq!(code, Some(0), "{args:?}: {err}");
            assert!(out.contains("Usage: varco"), "{args:?}: {out}");
        }
        let args = [*command, &["--version"]].concat();
        let (code, out, err) = varco(&args);
        assert_eq!(code, Some(0), "{args:?}: {err}");
        // `varco 0.1.0`, or `varco-serve 0.1.0` for a subcommand.
        let out = out.trim();
        assert!(
            out.starts_with("varco") && out.ends_with(&version),
            "{args:?}: {out}"
        );
    }
    // `help` is a command too, and `check-config --help` reads no file called --help.
    let (code, out, _) = varco(&["help", "check-config"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("Usage: varco check-config"), "{out}");
    for args in [
        &["frobnicate"][..],
        &["check-config"],
        &["serve", "--config"],
        &["metadata", "--config", "x.toml", "--federation", "atlantis"],
        &["audit", "verify", "dir", "--postgres", "postgres://h/db"],
        &["legacy", "hash", "--profile", "citizen"],
    ] {
        let (code, _, err) = varco(args);
        assert_eq!(code, Some(64), "{args:?}: {err}");
        assert!(err.starts_with("error:"), "{args:?}: {err}");
    }
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let dir = setup();
    let file = dir.join("good.toml");
    std::fs::write(&file, good_config(&dir, free_port())).unwrap();
    // The read end is closed before the child writes: its first write meets a broken pipe.
    let mut child = Command::new(binary("varco"))
        .args(["metadata", "--config", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// The `spid-compliant-certificates` validator (AgID profile of Avviso SPID 29 v3), from the
/// spid-sp-test venv: `true` when it says the certificate matches the public-sector profile.
fn agid_profile_accepts(cert: &Path) -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("scripts/spid-sp-test-venv.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tool = Path::new(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap(),
    )
    .with_file_name("spid-compliant-certificates");
    let out = Command::new(&tool)
        .args(["validator", "--sector", "public", "--crt-file"])
        .arg(cert)
        .env("PYTHONWARNINGS", "ignore")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // The tool exits 0 either way; its verdict is the summary line.
    let matches = text.contains("matches the public sector specifications");
    let violates = text.contains("violates the public sector specifications");
    assert!(
        matches != violates,
        "no verdict from {}:\n{text}",
        tool.display()
    );
    matches
}

#[test]
fn keys_generate_writes_an_agid_profile_certificate_and_never_overwrites() {
    let dir = scratch("keys");
    let keys = dir.join("keys");
    let args = [
        "keys",
        "generate",
        "--out",
        keys.to_str().unwrap(),
        "--entity-id",
        "https://login.comune.example.it/saml/metadata",
        "--org-name",
        "Comune di Prova",
        "--org-id",
        "PA:IT-c_h501",
        "--locality",
        "Roma",
        "--rsa-bits",
        "2048",
    ];
    let (code, _, err) = varco(&args);
    assert_eq!(code, Some(0), "{err}");
    assert!(agid_profile_accepts(&keys.join("sp.crt.pem")));
    // The control: a certificate with a bare subject is refused by the same validator.
    e2e::sp_credentials(&dir, "plain");
    assert!(!agid_profile_accepts(&dir.join("sp.crt.pem")));

    use std::os::unix::fs::PermissionsExt;
    for (name, mode) in [
        ("sp.key.pem", 0o600),
        ("sp.crt.pem", 0o644),
        ("session.key", 0o600),
        ("token.key", 0o600),
    ] {
        let meta = std::fs::metadata(keys.join(name)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{name}");
    }
    let before = std::fs::read(keys.join("sp.key.pem")).unwrap();
    let (code, _, err) = varco(&args);
    assert_eq!(code, Some(64));
    assert!(err.contains("not overwritten"), "{err}");
    assert_eq!(std::fs::read(keys.join("sp.key.pem")).unwrap(), before);
    // A private-sector identifier is refused for a public SP before any key is made.
    let other = dir.join("other");
    let mut wrong = args.to_vec();
    wrong[3] = other.to_str().unwrap();
    wrong[9] = "VATIT-01234567890";
    let (code, _, err) = varco(&wrong);
    assert_eq!(code, Some(64));
    assert!(err.contains("PA:IT-"), "{err}");
    assert!(!other.join("sp.key.pem").exists());
}

#[test]
fn init_writes_a_starter_configuration_that_check_config_accepts_with_generated_keys() {
    let dir = scratch("init");
    let (code, _, err) = varco(&[
        "keys",
        "generate",
        "--out",
        dir.to_str().unwrap(),
        "--entity-id",
        "https://login.comune.example.it/saml/metadata",
        "--org-name",
        "Comune di \"Prova\"",
        "--org-id",
        "PA:IT-c_h501",
        "--locality",
        "Roma",
        "--rsa-bits",
        "2048",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let config = dir.join("varco.toml");
    let (code, _, err) = varco(&[
        "init",
        "--portal",
        "Comune di \"Prova\"",
        "--public-base-url",
        "https://login.comune.example.it",
        "--ipa-code",
        "c_h501",
        "--email",
        "spid@comune.example.it",
        "--out",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 5,
        "{text}"
    );
    // Without the registry's signing certificate the check names what is missing.
    let (code, _, err) = varco(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, Some(64));
    assert!(err.contains("metadata[0].signing_cert_file"), "{err}");
    // With it (any certificate stands in for AgID's here), the file passes as written.
    std::fs::copy(dir.join("sp.crt.pem"), dir.join("spid-registry.crt")).unwrap();
    let (code, out, err) = varco(&["check-config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}\n{text}");
    assert!(out.contains(": ok (1 metadata sources"), "{out}");
    let (code, xml, err) = varco(&["metadata", "--config", config.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        xml.contains("Comune di &quot;Prova&quot;") || xml.contains("Comune di \"Prova\""),
        "{xml}"
    );
    // An existing file is never replaced.
    let (code, _, _) = varco(&[
        "init",
        "--portal",
        "X",
        "--public-base-url",
        "https://x.example",
        "--ipa-code",
        "x",
        "--email",
        "x@x.example",
        "--out",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(64));
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
}

/// The SP certificate of `dir` re-issued (same RSA key) with `not_after`.
fn sp_certificate_until(dir: &Path, not_after: (i32, u8, u8)) {
    let key_pem = std::fs::read_to_string(dir.join("sp.key.pem")).unwrap();
    let key =
        rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&key_pem, &rcgen::PKCS_RSA_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "varco-cli");
    params.not_before = rcgen::date_time_ymd(2019, 1, 1);
    params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
    std::fs::write(
        dir.join("sp.crt.pem"),
        params.self_signed(&key).unwrap().pem(),
    )
    .unwrap();
}

#[test]
fn expired_certificates_and_keys_are_refused_and_near_ones_warned_about() {
    let dir = setup();
    let file = dir.join("c.toml");
    std::fs::write(&file, good_config(&dir, free_port())).unwrap();
    // Expired in 2020: refused, with the key and the way out.
    sp_certificate_until(&dir, (2020, 3, 1));
    let (code, _, err) = varco(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(
        err.contains("sp.cert_file: the SP certificate: expired on 2020-03-01")
            && err.contains("varco keys generate"),
        "{err}"
    );
    // `varco metadata` no longer signs with it either.
    let (code, _, _) = varco(&["metadata", "--config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64));

    // Valid for a few more days: accepted with a warning. The binary reads the wall clock,
    // so the certificate's date has to come from it too.
    #[allow(clippy::disallowed_methods)]
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(10 * 86_400);
    let days = soon
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    let (y, m, d) = civil(days as i64);
    sp_certificate_until(&dir, (y, m, d));
    let (code, _, err) = varco(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("warning: sp.cert_file: the SP certificate: expires on"),
        "{err}"
    );

    // A token key past its rotation date is refused; a retiring one is not checked.
    e2e::sp_credentials(&dir, "varco-cli");
    let token = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    std::fs::write(dir.join("token.key"), token.serialize_pem()).unwrap();
    let with_key = |state: &str| {
        good_config(&dir, free_port())
            + &format!(
                "[[token.key]]\nkid = \"k1\"\nfile = \"token.key\"\nstate = \"{state}\"\n\
                 not_after = \"2021-01-01\"\n"
            )
    };
    std::fs::write(&file, with_key("active")).unwrap();
    let (code, _, err) = varco(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("token.key[0].not_after"), "{err}");
    std::fs::write(
        &file,
        with_key("retiring")
            + "[[token.key]]\nkid = \"k2\"\nfile = \"token.key\"\nstate = \"active\"\n",
    )
    .unwrap();
    let (code, _, err) = varco(&["check-config", file.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
}

/// (year, month, day) of a count of days since 1970-01-01.
fn civil(days: i64) -> (i32, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    (y, m, d)
}

/// `check-config` on `config` written into `dir`: (exit code, stderr).
fn check(dir: &Path, config: &str) -> (Option<i32>, String) {
    let file = dir.join("check.toml");
    std::fs::write(&file, config).unwrap();
    let (code, _, err) = varco(&["check-config", file.to_str().unwrap()]);
    (code, err)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_key_of_another_certificate_is_named_as_such() {
    let dir = setup();
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    e2e::sp_credentials(&other, "someone-else");
    let config = good_config(&dir, free_port()).replace("sp.key.pem", "other/sp.key.pem");
    let (code, err) = check(&dir, &config);
    assert_eq!(code, Some(64));
    assert!(
        err.contains(
            "sp.key_file: with sp.cert_file: the private key does not belong to the certificate"
        ),
        "{err}"
    );
}

#[test]
fn an_rsa_1024_key_is_refused_for_its_size() {
    let dir = setup();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:1024",
            "-nodes",
            "-sha256",
            "-days",
            "30",
            "-subj",
            "/CN=short",
            "-keyout",
            "short.key",
            "-out",
            "short.crt",
        ],
    );
    let config = good_config(&dir, free_port())
        .replace("sp.key.pem", "short.key")
        .replace("sp.crt.pem", "short.crt");
    let (code, err) = check(&dir, &config);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("RSA-1024 is too short: at least 2048 bits"),
        "{err}"
    );
}

#[test]
fn a_pkcs1_key_is_refused_with_the_conversion_command() {
    let dir = setup();
    openssl(
        &dir,
        &[
            "rsa",
            "-in",
            "sp.key.pem",
            "-traditional",
            "-out",
            "pkcs1.key",
        ],
    );
    assert!(
        std::fs::read_to_string(dir.join("pkcs1.key"))
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let config = good_config(&dir, free_port()).replace("sp.key.pem", "pkcs1.key");
    let (code, err) = check(&dir, &config);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("PKCS#1 or SEC1, not PKCS#8")
            && err.contains("openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8"),
        "{err}"
    );
}

#[test]
fn plain_http_is_refused_off_this_machine_even_without_secure_cookies() {
    let dir = setup();
    let http = good_config(&dir, free_port())
        .replace("https://sp.example.org", "http://sp.example.org")
        .replace("[session]\n", "[session]\ncookie_secure = false\n");
    let (code, err) = check(&dir, &http);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("server.public_base_url: is http:// on a host other than this machine")
            && err.contains("server.allow_plain_http = true"),
        "{err}"
    );
    // The explicit development switch, and this machine, are accepted.
    let (code, err) = check(
        &dir,
        &http.replace("[server]\n", "[server]\nallow_plain_http = true\n"),
    );
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check(
        &dir,
        &http.replace("http://sp.example.org", "http://localhost:8080"),
    );
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn a_missing_sp_table_is_reported_as_such() {
    let dir = setup();
    let config = good_config(&dir, free_port()).replace(
        "[sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n",
        "",
    );
    assert!(config.contains("[sp.organization]"));
    let (code, err) = check(&dir, &config);
    assert_eq!(code, Some(64));
    assert!(
        err.contains("  - sp: the [sp] table is missing (only its sub-tables are there): add [sp] with key_file and cert_file"),
        "{err}"
    );
    // A table that is there but lacks a key names the key.
    let config = good_config(&dir, free_port()).replace("cert_file = \"sp.crt.pem\"\n", "");
    let (code, err) = check(&dir, &config);
    assert_eq!(code, Some(64));
    assert!(err.contains("  - sp.cert_file: required"), "{err}");
}

#[test]
fn sigterm_with_a_delay_withdraws_readiness_while_still_accepting_then_exits() {
    let dir = setup();
    let port = free_port();
    let file = dir.join("delay.toml");
    std::fs::write(
        &file,
        good_config(&dir, port).replace("[server]\n", "[server]\nshutdown_delay_seconds = 5\n"),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut varco = e2e::Process::start(
        "varco",
        &binary("varco"),
        &["serve", "--config", file.to_str().unwrap()],
        &dir,
    );
    varco.wait_ready(&format!("{base}/readyz"));
    varco.terminate();
    // Within the delay: new connections are still served, and readiness is withdrawn (polled
    // a bounded number of times: the signal is handled asynchronously).
    let mut ready = e2e::Browser::default().get(&format!("{base}/readyz"));
    for _ in 0..40 {
        if ready.status == 503 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        ready = e2e::Browser::default().get(&format!("{base}/readyz"));
    }
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body, "not ready: shutting down\n");
    assert_eq!(
        e2e::Browser::default()
            .get(&format!("{base}/healthz"))
            .status,
        200
    );
    let exit = varco
        .wait_exit(std::time::Duration::from_secs(30))
        .expect("varco did not exit");
    assert!(exit.success(), "{exit}");
    let log = varco.log();
    assert!(log.contains("\"event\":\"stopping\""), "{log}");
    assert!(log.contains("\"event\":\"draining\""), "{log}");
}

#[test]
fn an_oidc_client_service_needs_its_represent_service_and_is_one() {
    let dir = setup();
    std::fs::write(
        dir.join("client.secret"),
        "0123456789abcdef0123456789abcdef!",
    )
    .unwrap();
    let client = "[oidc]\n[[oidc.client]]\nid = \"tributi-app\"\nsecret_file = \"client.secret\"\n\
                  service = \"tributi\"\nredirect_uris = [\"https://app.example/cb\"]\n";
    let base = good_config(&dir, free_port());
    // Named, but no `[[represent.service]]`: the person's own identity would be given where
    // a representation was meant, so it is refused.
    let (code, err) = check(&dir, &format!("{base}{client}"));
    assert_eq!(code, Some(64), "{err}");
    assert!(err.contains("oidc.client.service"), "{err}");
    assert!(
        err.contains("\"tributi\" has no [[represent.service]]"),
        "{err}"
    );
    // With it (and no route of that service): the client's service is a service.
    let represent = "[[represent.source]]\nid = \"spid\"\nkind = \"spid_legal_person\"\n\
                     [[represent.service]]\nservice = \"tributi\"\nsources = [\"spid\"]\n";
    let (code, err) = check(&dir, &format!("{base}{client}{represent}"));
    assert_eq!(code, Some(0), "{err}");
}
