//! CNS smart-card login end to end, against the built `varco` with a test CA and cards
//! generated here (rcgen, written as PEM files):
//! - mode (a), TLS terminated by Varco's CNS listener: the real `curl` presents the card with
//!   `--cert/--key`; a good card opens a session with method `cns`, recorded in the audit
//!   trail; no card, an expired card and a card of another CA get their 4xx pages;
//! - mode (b), the real nginx terminates TLS (`ssl_verify_client optional_no_ca`, the
//!   deploy/nginx/varco-cns.conf location) and forwards `$ssl_client_escaped_cert`: a good card
//!   logs in, a card nginx let through but no configured CA issued is refused by Varco, and
//!   the same header sent straight to Varco from an address that is not the trusted proxy is
//!   refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::stack::{Stack, pct};
use e2e::{Browser, Process, free_port, scratch};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, date_time_ymd,
};

const CF: &str = "RSSMRA80A01H501U";

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IT");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        issuer: Issuer::new(params, key),
        pem,
    }
}

/// Writes `<name>.pem` and `<name>.key` for a card issued by `by`, valid from `from` to `to`
/// (years), and returns the certificate path.
fn card(dir: &Path, name: &str, by: &Ca, from: i32, to: i32) -> PathBuf {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IT");
    dn.push(DnType::OrganizationName, "Regione di Prova");
    dn.push(
        DnType::CommonName,
        format!("{CF}/7420000012345678.Zm9vYmFy"),
    );
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 4]), "ROSSI");
    dn.push(DnType::CustomDnType(vec![2, 5, 4, 42]), "MARIO");
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(to, 1, 1);
    let cert = params.signed_by(&key, &by.issuer).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    dir.join(format!("{name}.pem"))
}

/// A TLS server certificate for 127.0.0.1, issued by its own CA: `server.pem`,
/// `server.key`, `server-ca.pem` in `dir`.
fn server_cert(dir: &Path) {
    let server_ca = ca("Server CA di prova");
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &server_ca.issuer).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("server-ca.pem"), &server_ca.pem).unwrap();
}

/// The PKI of a test: the configured CNS CA, another CA, and cards.
struct Pki {
    dir: PathBuf,
}

fn pki() -> Pki {
    let dir = scratch("cns-pki");
    let cns_ca = ca("CA CNS di prova");
    let other = ca("CA CNS di prova");
    std::fs::write(dir.join("cns-ca.pem"), &cns_ca.pem).unwrap();
    card(&dir, "good", &cns_ca, 2024, 2099);
    card(&dir, "expired", &cns_ca, 2015, 2020);
    card(&dir, "foreign", &other, 2024, 2099);
    server_cert(&dir);
    Pki { dir }
}

impl Pki {
    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }
}

/// One `curl` request: status, response head, body.
struct Curl {
    status: u16,
    head: String,
    body: String,
}

impl Curl {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
}

fn curl(pki: &Pki, card: Option<&str>, url: &str, extra: &[&str]) -> Curl {
    let out_dir = scratch("cns-curl");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "--max-time",
        "20",
        "--cacert",
        &pki.path("server-ca.pem"),
    ])
    .arg("-D")
    .arg(out_dir.join("head"))
    .arg("-o")
    .arg(out_dir.join("body"))
    .args(["-w", "%{http_code}"]);
    if let Some(c) = card {
        cmd.args([
            "--cert",
            &pki.path(&format!("{c}.pem")),
            "--key",
            &pki.path(&format!("{c}.key")),
        ]);
    }
    cmd.args(extra).arg(url);
    let out = cmd.output().expect("curl (make test installs it)");
    assert!(
        out.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Curl {
        status: String::from_utf8_lossy(&out.stdout).trim().parse().unwrap(),
        head: std::fs::read_to_string(out_dir.join("head")).unwrap_or_default(),
        body: std::fs::read_to_string(out_dir.join("body")).unwrap_or_default(),
    }
}

/// The session cookie (`varco_session=…`) a response sets.
fn session_cookie(r: &Curl) -> String {
    let set = r
        .head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim())
        .find(|v| v.starts_with("varco_session="))
        .unwrap_or_else(|| panic!("no session cookie:\n{}", r.head));
    set.split(';').next().unwrap().to_owned()
}

fn whoami(stack: &Stack, cookie: &str) -> serde_json::Value {
    let (name, value) = cookie.split_once('=').unwrap();
    let mut b = Browser::default();
    b.cookies.insert(name.into(), value.into());
    let r = stack.whoami(&mut b);
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// Every audit line of the stack, as text.
fn audit_text(stack: &Stack) -> String {
    let mut out = String::new();
    for entry in std::fs::read_dir(stack.dir.join("audit")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            out.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
    }
    out
}

#[test]
fn mode_a_varco_terminates_tls_and_a_good_card_opens_a_cns_session() {
    let pki = pki();
    let port = free_port();
    let cns_url = format!("https://127.0.0.1:{port}");
    let stack = Stack::start_with(&format!(
        "[cns]\nca_file = \"{}\"\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"{cns_url}\"\n\
         cert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.path("cns-ca.pem"),
        pki.path("server.pem"),
        pki.path("server.key"),
    ));

    // The login page offers CNS, pointing at the CNS listener with an absolute return URL.
    let page = Browser::default().get(&format!("{}/login?return_to=%2Fwhoami", stack.varco));
    assert_eq!(page.status, 200);
    let expected = format!(
        "{cns_url}/cns/login?return_to={}",
        pct(&format!("{}/whoami", stack.varco))
    );
    assert!(page.body.contains("Entra con CNS"), "{}", page.body);
    assert!(
        page.body.contains(&format!(
            "id=\"cns-button\" href=\"{}\"",
            expected.replace('&', "&amp;")
        )),
        "{}\n{expected}",
        page.body
    );

    // Not offered where level 3 is needed: a CNS login is substantial.
    let high = Browser::default().get(&format!("{}/login?level=3", stack.varco));
    assert!(!high.body.contains("cns-button"), "{}", high.body);

    let login = format!("{cns_url}/cns/login?return_to=%2Fwhoami");
    let ok = curl(&pki, Some("good"), &login, &[]);
    assert_eq!(ok.status, 303, "{}\n{}", ok.head, ok.body);
    assert_eq!(
        ok.header("location").unwrap(),
        format!("{}/whoami", stack.varco)
    );
    let me = whoami(&stack, &session_cookie(&ok));
    let p = &me["principal"];
    assert_eq!(p["sub"], format!("TINIT-{CF}"));
    assert_eq!(p["given_name"], "MARIO");
    assert_eq!(p["family_name"], "ROSSI");
    assert_eq!(p["auth"]["method"], "cns");
    assert_eq!(p["auth"]["loa"], "substantial");
    assert!(
        p["auth"]["idp"]
            .as_str()
            .unwrap()
            .contains("CA CNS di prova"),
        "{me}"
    );

    // The completed login is in the audit trail with the card's certificate.
    let audit = audit_text(&stack);
    let record = audit
        .lines()
        .find(|l| l.contains("\"outcome\":\"completed\"") && l.contains("\"method\":\"cns\""))
        .unwrap_or_else(|| panic!("{audit}"));
    assert!(record.contains(&format!("TINIT-{CF}")), "{record}");
    assert!(record.contains("\"certificate_b64\":\"MII"), "{record}");

    // No card, an expired card, a card of another CA: 4xx pages with the code.
    let none = curl(&pki, None, &login, &[]);
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(none.body.contains("cns.no_certificate"), "{}", none.body);
    let expired = curl(&pki, Some("expired"), &login, &[]);
    assert_eq!(expired.status, 403, "{}", expired.body);
    assert!(expired.body.contains("cns.expired"), "{}", expired.body);
    assert!(session_free(&expired));
    let foreign = curl(&pki, Some("foreign"), &login, &[]);
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(
        foreign.body.contains("cns.untrusted_chain"),
        "{}",
        foreign.body
    );
    assert!(session_free(&foreign));
    // Refusals are recorded too.
    let audit = audit_text(&stack);
    assert!(
        audit.contains("\"code\":\"cns.untrusted_chain\""),
        "{audit}"
    );

    // Nothing else is served on the CNS listener; an open redirect is refused.
    let other = curl(&pki, Some("good"), &format!("{cns_url}/whoami"), &[]);
    assert_eq!(other.status, 404);
    let away = curl(
        &pki,
        Some("good"),
        &format!("{cns_url}/cns/login?return_to=https%3A%2F%2Fevil.example%2F"),
        &[],
    );
    assert_eq!(away.status, 400, "{}", away.body);

    // On the main listener, /cns/login sends the browser to the CNS listener.
    let r = Browser::default().get(&format!("{}/cns/login?return_to=%2Fwhoami", stack.varco));
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").unwrap(), expected);

    // Logins and refusals by method and code in the metrics.
    let metrics = Browser::default()
        .get(&format!("{}/metrics", stack.management))
        .body;
    assert!(
        metrics.contains(
            "varco_logins_completed_total{idp=\"cns\",loa=\"substantial\",method=\"cns\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("varco_logins_refused_total{code=\"cns.expired\",spid_error=\"\"} 1"),
        "{metrics}"
    );
}

fn session_free(r: &Curl) -> bool {
    !r.head
        .to_ascii_lowercase()
        .contains("set-cookie: varco_session")
}

/// The shared secret nginx's CNS location sends ([cns] secret_file).
const SECRET: &str = "6b1f0c9a7e3d52c48a0f19e7d6b3a2c5e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3";

fn secret_file(pki: &Pki) -> String {
    let path = pki.path("cns-proxy-secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    path
}

/// nginx on `port` terminating TLS, asking for a client certificate without judging it
/// (`optional_no_ca`), with the deploy/nginx CNS location; it connects to Varco from
/// 127.0.0.2, the only trusted proxy address in this test.
fn start_nginx(pki: &Pki, port: u16, varco_port: u16) -> Process {
    let deploy = e2e::nginx::deploy_dir();
    let p = e2e::nginx::start(
        "cns-nginx",
        &format!(
            "  upstream varco {{ server 127.0.0.1:{varco_port}; }}\n\
               server {{\n    listen 127.0.0.1:{port} ssl;\n    server_name 127.0.0.1;\n\
                 ssl_certificate {cert};\n    ssl_certificate_key {key};\n\
                 ssl_client_certificate {cns_ca};\n\
                 ssl_verify_client optional_no_ca;\n\
                 set $varco_cns_secret \"{SECRET}\";\n\
                 proxy_bind 127.0.0.2;\n\
                 include {deploy}/varco-cns.conf;\n\
                 location /generic/ {{ proxy_pass http://varco/; }}\n\
                 location = /ping {{ return 200 \"pong\"; }}\n\
               }}",
            deploy = deploy.display(),
            cert = pki.path("server.pem"),
            cns_ca = pki.path("cns-ca.pem"),
            key = pki.path("server.key"),
        ),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while curl_ok(pki, &format!("https://127.0.0.1:{port}/ping")).is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "nginx not ready:\n{}",
            p.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    p
}

fn curl_ok(pki: &Pki, url: &str) -> Option<()> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "2",
            "--cacert",
            &pki.path("server-ca.pem"),
            url,
        ])
        .output()
        .ok()?;
    out.status.success().then_some(())
}

#[test]
fn mode_b_nginx_forwards_the_card_and_varco_judges_it_itself() {
    let pki = pki();
    let nport = free_port();
    let public = format!("https://127.0.0.1:{nport}");
    let stack = Stack::start_public(
        Some(&public),
        &format!(
            "[cns]\nca_file = \"{}\"\nheader = \"X-Client-Cert\"\n\
             trusted_proxies = [\"127.0.0.2\"]\nsecret_file = \"{}\"\n",
            pki.path("cns-ca.pem"),
            secret_file(&pki),
        ),
    );
    let vport: u16 = stack.varco.rsplit(':').next().unwrap().parse().unwrap();
    let _nginx = start_nginx(&pki, nport, vport);
    let login = format!("{public}/cns/login?return_to=%2Fwhoami");

    // The login page links the CNS login on this same host.
    let page = Browser::default().get(&format!("{}/login", stack.varco));
    assert!(
        page.body
            .contains("id=\"cns-button\" href=\"/cns/login?return_to=%2F\""),
        "{}",
        page.body
    );

    let ok = curl(&pki, Some("good"), &login, &[]);
    assert_eq!(ok.status, 303, "{}\n{}", ok.head, ok.body);
    assert_eq!(ok.header("location").unwrap(), "/whoami");
    let me = whoami(&stack, &session_cookie(&ok));
    assert_eq!(me["principal"]["sub"], format!("TINIT-{CF}"));
    assert_eq!(me["principal"]["auth"]["method"], "cns");

    // With the CNS issuers as ssl_client_certificate, nginx refuses a card no CNS issuer
    // signed itself (its 400 page, even with optional_no_ca); Varco would refuse its
    // FAILED verdict anyway (features::cns unit tests). No session either way.
    let foreign = curl(&pki, Some("foreign"), &login, &[]);
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert!(session_free(&foreign));
    // nginx itself refuses an expired card even with optional_no_ca (its 400 page): no
    // session either way.
    let expired = curl(&pki, Some("expired"), &login, &[]);
    assert_eq!(expired.status, 400, "{}", expired.body);
    assert!(session_free(&expired));
    let none = curl(&pki, None, &login, &[]);
    assert_eq!(none.status, 401, "{}", none.body);
    assert!(none.body.contains("cns.no_certificate"), "{}", none.body);
    // A client-sent header does not survive nginx: the location overwrites it.
    let good_pem = std::fs::read_to_string(pki.path("good.pem")).unwrap();
    let forged = curl(
        &pki,
        None,
        &login,
        &["-H", &format!("X-Client-Cert: {}", pct(&good_pem))],
    );
    assert_eq!(forged.status, 401, "{}", forged.body);

    // The same header straight to Varco, from 127.0.0.1 (not the trusted proxy): refused.
    let direct = Browser::default().get_with(
        &format!("{}/cns/login?return_to=%2Fwhoami", stack.varco),
        &[("X-Client-Cert", &pct(&good_pem))],
    );
    assert_eq!(direct.status, 403, "{}", direct.body);
    assert!(
        direct.body.contains("cns.untrusted_proxy"),
        "{}",
        direct.body
    );
    assert!(direct.header("set-cookie").is_none());
}

#[test]
fn issue18_a_public_certificate_alone_never_logs_in_through_nginx() {
    // nginx's generic location passes client headers through to Varco, from the trusted
    // proxy address: a client sending someone's public certificate, a SUCCESS verdict and a
    // guessed secret there must not get a CNS session. Only the CNS location, which adds
    // the secret and nginx's own verdict, can vouch for a card.
    let pki = pki();
    let nport = free_port();
    let public = format!("https://127.0.0.1:{nport}");
    let stack = Stack::start_public(
        Some(&public),
        &format!(
            "[cns]\nca_file = \"{}\"\nheader = \"X-Client-Cert\"\n\
             trusted_proxies = [\"127.0.0.2\"]\nsecret_file = \"{}\"\n",
            pki.path("cns-ca.pem"),
            secret_file(&pki),
        ),
    );
    let vport: u16 = stack.varco.rsplit(':').next().unwrap().parse().unwrap();
    let _nginx = start_nginx(&pki, nport, vport);
    let generic = format!("{public}/generic/cns/login?return_to=%2Fwhoami");
    let good_pem = pct(&std::fs::read_to_string(pki.path("good.pem")).unwrap());
    let cert = format!("X-Client-Cert: {good_pem}");
    for extra in [
        vec!["-H", &cert],
        vec!["-H", &cert, "-H", "X-Client-Verify: SUCCESS"],
        vec![
            "-H",
            &cert,
            "-H",
            "X-Client-Verify: SUCCESS",
            "-H",
            "X-Varco-Cns-Secret: 00000000000000000000000000000000000000000000000000000000000000",
        ],
    ] {
        // With and without presenting the card on the TLS connection itself.
        for card in [None, Some("good")] {
            let r = curl(&pki, card, &generic, &extra);
            assert_eq!(r.status, 403, "{extra:?} {card:?}: {}", r.body);
            assert!(r.body.contains("cns.proxy_unproven"), "{}", r.body);
            assert!(session_free(&r));
        }
    }
    // The CNS location with the card: the one way in.
    let ok = curl(
        &pki,
        Some("good"),
        &format!("{public}/cns/login?return_to=%2Fwhoami"),
        &[],
    );
    assert_eq!(ok.status, 303, "{}\n{}", ok.head, ok.body);
}
