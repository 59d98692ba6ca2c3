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
