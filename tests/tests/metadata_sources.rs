//! Metadata sources through the `varco` binary: a registry on loopback serves an aggregate
//! signed by `xmlsec1` with a test federation key. `/readyz` turns 200 once it is loaded; an
//! IdP removed from the registry is refused at `/saml/login` after the next refresh; a restart
//! during a registry outage serves from the backing file; `varco metadata sources` reports it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use e2e::{Browser, Process, binary, free_port, scratch};

const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const IDP_A: &str = "https://idp-a.example.org";
const IDP_B: &str = "https://idp-b.example.org";

/// The xmldsig crate's test keys (fixtures, read as files).
fn keys() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/xmldsig/tests/keys")
}

fn cert_b64(stem: &str) -> String {
    let pem = std::fs::read_to_string(keys().join(format!("{stem}.crt.pem"))).unwrap();
    pem.lines().filter(|l| !l.starts_with("-----")).collect()
}

fn entity(entity_id: &str) -> String {
    format!(
        r#"<md:EntityDescriptor entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{entity_id}/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        cert_b64("idp-rsa2048")
    )
}

/// An aggregate of `entity_ids`, signed with the federation key by the real `xmlsec1`.
fn signed_aggregate(dir: &Path, entity_ids: &[&str]) -> Vec<u8> {
    let entities: String = entity_ids.iter().map(|e| entity(e)).collect();
    let template = format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<md:EntitiesDescriptor xmlns:md="{MD_NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_registry" validUntil="2099-01-01T00:00:00Z" cacheDuration="PT1S"><ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_registry"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>{entities}</md:EntitiesDescriptor>
"##
    );
    let input = dir.join("template.xml");
    let output = dir.join("signed.xml");
    std::fs::write(&input, template).unwrap();
    let key = format!(
        "{},{}",
        keys().join("idp-rsa3072.key.pem").display(),
        keys().join("idp-rsa3072.crt.pem").display()
    );
    let out = Command::new("xmlsec1")
        .args(["--sign", "--privkey-pem", &key, "--id-attr:ID"])
        .arg(format!("{MD_NS}:EntitiesDescriptor"))
        .arg("--output")
        .arg(&output)
        .arg(&input)
        .output()
        .expect("xmlsec1 (make test installs it)");
    assert!(
        out.status.success(),
        "xmlsec1: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&output).unwrap()
}

/// A registry on loopback: serves the current body, or 503 when there is none.
struct Registry {
    port: u16,
    body: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Registry {
    fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = Arc::new(Mutex::new(None::<Vec<u8>>));
        let shared = body.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let body = shared.lock().unwrap().clone();
                thread::spawn(move || answer(stream, body));
            }
        });
        Registry { port, body }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/spid-entities-idps.xml", self.port)
    }

    fn serve(&self, body: Option<Vec<u8>>) {
        *self.body.lock().unwrap() = body;
    }
}

fn answer(mut stream: TcpStream, body: Option<Vec<u8>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) && line != "\r\n" {
        line.clear();
    }
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("503 Service Unavailable", Vec::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

fn config(dir: &Path, port: u16, registry: &str) -> PathBuf {
    let file = dir.join("varco.toml");
    std::fs::write(
        &file,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n\
             [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
             [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
             url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
             [session]\nkey_file = \"session.key\"\ncookie_secure = false\n\
             [state]\ndir = \"state\"\n\
             [[metadata]]\nname = \"spid-registry\"\nfederation = \"spid\"\nurl = \"{registry}\"\n\
             signing_cert_file = \"{}\"\nmin_refresh_seconds = 1\nmax_refresh_seconds = 1\n\
             timeout_seconds = 5\n",
            keys().join("idp-rsa3072.crt.pem").display()
        ),
    )
    .unwrap();
    file
}

fn login_status(base: &str, idp: &str) -> u16 {
    let url = format!("{base}/saml/login?idp={}", form_urlencoded_component(idp));
    Browser::default().get(&url).status
}

fn form_urlencoded_component(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn registry_driven_idps_through_the_binary() {
    let dir = scratch("metadata");
    e2e::sp_credentials(&dir, "varco-metadata");
    let registry = Registry::start();
    let both = signed_aggregate(&dir, &[IDP_A, IDP_B]);
    let only_a = signed_aggregate(&dir, &[IDP_A]);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let file = config(&dir, port, &registry.url());

    // The registry is down at first: the port is bound, readiness is not given.
    let mut varco = Process::start(
        "varco",
        &binary("varco"),
        &["serve", "--config", file.to_str().unwrap()],
        &dir,
    );
    varco.wait_ready(&format!("{base}/healthz"));
    assert_eq!(
        Browser::default().get(&format!("{base}/readyz")).status,
        503
    );
    assert_eq!(login_status(&base, IDP_A), 400);

    registry.serve(Some(both));
    varco.wait_ready(&format!("{base}/readyz"));
    assert_eq!(login_status(&base, IDP_A), 302);
    assert_eq!(login_status(&base, IDP_B), 302);

    // IdP B leaves the federation: refused once the refresher has seen it.
    registry.serve(Some(only_a));
    let deadline = Instant::now() + Duration::from_secs(60);
    while login_status(&base, IDP_B) != 400 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(login_status(&base, IDP_B), 400, "{}", varco.log());
    assert_eq!(login_status(&base, IDP_A), 302);
    drop(varco);

    // Restart during a registry outage: the backing file serves.
    registry.serve(None);
    let mut varco = Process::start(
        "varco-restarted",
        &binary("varco"),
        &["serve", "--config", file.to_str().unwrap()],
        &dir,
    );
    varco.wait_ready(&format!("{base}/readyz"));
    assert_eq!(login_status(&base, IDP_A), 302, "{}", varco.log());
    assert_eq!(login_status(&base, IDP_B), 400);
    assert!(varco.log().contains("\"from\":\"backing_file\""));
    drop(varco);

    // The operator's view, during the outage.
    let out = Command::new(binary("varco"))
        .args(["metadata", "sources", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(report.contains("source spid-registry (spid)"), "{report}");
    assert!(
        report.contains("state:        stale (from the backing file)"),
        "{report}"
    );
    // The document says 2099; the source's max_age_seconds (default 7 days, counted from
    // when the backing file was written, moments ago) ends it sooner.
    assert!(
        report.contains("valid until:  ") && report.contains(" (in 6 days)"),
        "{report}"
    );
    assert!(!report.contains("2099-01-01"), "{report}");
    assert!(report.contains("metadata_fetch_status"), "{report}");
    assert!(
        report.contains(IDP_A) && !report.contains(IDP_B),
        "{report}"
    );
    assert!(report.contains("certificates expire: "), "{report}");
}
