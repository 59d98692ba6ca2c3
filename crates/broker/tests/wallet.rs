//! The wallet login over HTTP against an independent test wallet (`tests/py/wallet_http.py`:
//! jwcrypto, cryptography and the OpenWallet Foundation `sd-jwt` from PyPI, in the
//! `wallet` venv), with the PID issuer's Token Status List served over real HTTPS (rustls,
//! a test CA). Both flows end in a session whose principal comes from the PID; every named
//! attack is refused with its code, over HTTP against the routes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../oidfed/tests/common/fed.rs"]
mod fed;
#[path = "fixture/mod.rs"]
mod fixture;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PUBLIC: &str = "https://sp.varco.example.org";
const ISS: &str = "https://pid.example.it";
const KID: &str = "pid-issuer-1";
/// The status list index the issuer marks revoked.
const REVOKED_IDX: u64 = 3;

struct Setup {
    dir: PathBuf,
    /// The relying party's request-signing key, public (what a federation publishes).
    rp_jwk: Value,
    issuer_key_pem: String,
    /// `x5c` chains (standard base64 DER, leaf first) for the issuer key: under the
    /// configured trust list, under another CA, and naming another issuer.
    chains: Value,
    status_uri: String,
    addr: SocketAddr,
    _state: Arc<broker::state::State>,
}

fn wallet(mode: &str, input: &Value) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/wallet_http.py");
    let out = testkit::python::run(
        "wallet",
        &script,
        &[mode],
        Some(&serde_json::to_vec(input).unwrap()),
    );
    if mode == "status_list" {
        return Value::String(String::from_utf8(out).unwrap().trim().to_owned());
    }
    serde_json::from_slice(&out).unwrap()
}

/// Serves `body` at every path over HTTPS with `cert`/`key` (one connection at a time).
async fn https_status_server(
    listener: tokio::net::TcpListener,
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
    body: String,
) {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![rustls_pki_types::CertificateDer::from(cert_der)],
        rustls_pki_types::PrivateKeyDer::Pkcs8(key_der.into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/statuslist+jwt\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
}

fn setup(rt: &tokio::runtime::Runtime) -> Setup {
    setup_with(rt, "", "", "")
}

/// [`setup`] with `session` keys added to `[session]`, `wallet` keys to `[wallet]`, and
/// `more` tables at the end.
fn setup_with(rt: &tokio::runtime::Runtime, session: &str, wallet_keys: &str, more: &str) -> Setup {
    setup_on(rt, session, wallet_keys, more, None)
}

/// A login store on the Redis at `url` (what each replica of a deployment has).
fn redis_store(rt: &tokio::runtime::Runtime, url: &str) -> broker::features::store::Store {
    use broker::features::store::redis::{RedisOptions, RedisStore};
    let _in = rt.enter();
    let options = RedisOptions {
        url: url.to_owned(),
        key_prefix: "wallet-test:".into(),
        connect_timeout: std::time::Duration::from_millis(500),
        command_timeout: std::time::Duration::from_millis(500),
        pool_size: 2,
        tls: None,
    };
    broker::features::store::Store::Redis(
        RedisStore::new(
            &options,
            std::time::Duration::from_secs(600),
            std::time::Duration::from_secs(3600),
        )
        .unwrap(),
    )
}

/// [`setup_with`], the broker's login store on the Redis at `redis` when given (else in
/// memory).
fn setup_on(
    rt: &tokio::runtime::Runtime,
    session: &str,
    wallet_keys: &str,
    more: &str,
    redis: Option<&str>,
) -> Setup {
    // One directory per test of this binary (they run in parallel).
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "varco-wallet-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    // The relying-party access certificate (x509_hash) and its key.
    let rp_key = KeyPair::generate().unwrap();
    let rp_cert = CertificateParams::new(vec!["sp.varco.example.org".to_owned()])
        .unwrap()
        .self_signed(&rp_key)
        .unwrap();
    std::fs::write(dir.join("rp.key.pem"), rp_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("rp.crt.pem"), rp_cert.pem()).unwrap();
    // The PID issuer: its key for the Python side, its JWKS for Varco.
    let issuer_key = KeyPair::generate().unwrap();
    let signer = jose::Signer::es256_from_pkcs8(
        &issuer_key.serialize_der(),
        Some(KID),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    std::fs::write(
        dir.join("issuer.jwks.json"),
        json!({"keys": [signer.jwk().to_value()]}).to_string(),
    )
    .unwrap();
    // The X.509 trust list: a PID provider CA; the issuer key certified under it (and, for
    // the attacks, under a CA nobody configured, and for another name).
    let chain_for = |ca_name: &str, san: &str, trusted_ca: Option<&Issuer<'_, KeyPair>>| {
        use base64::Engine as _;
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.subject_alt_names = vec![rcgen::SanType::URI(san.try_into().unwrap())];
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let other_key = KeyPair::generate().unwrap();
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, ca_name);
        other.distinguished_name = dn;
        let other = Issuer::new(other, other_key);
        let ca = trusted_ca.unwrap_or(&other);
        let cert = leaf.signed_by(&issuer_key, ca).unwrap();
        json!([base64::engine::general_purpose::STANDARD.encode(cert.der())])
    };
    let pid_ca_key = KeyPair::generate().unwrap();
    let mut pid_ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    pid_ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "PID Provider CA (test)");
    pid_ca_params.distinguished_name = dn;
    let pid_ca_cert = pid_ca_params.self_signed(&pid_ca_key).unwrap();
    std::fs::write(dir.join("pid-trust-list.pem"), pid_ca_cert.pem()).unwrap();
    let pid_ca = Issuer::new(pid_ca_params, pid_ca_key);
    let chains = json!({
        "x509": chain_for("unused", ISS, Some(&pid_ca)),
        "x509_untrusted_ca": chain_for("Someone else's CA", ISS, None),
        "x509_other_name": chain_for("unused", "https://another-issuer.example.it", Some(&pid_ca)),
    });
    // The status list host: a test CA and a server certificate for 127.0.0.1.
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("status-ca.pem"), ca_cert.pem()).unwrap();
    let ca = Issuer::new(ca_params, ca_key);
    let host_key = KeyPair::generate().unwrap();
    let host_cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&host_key, &ca)
        .unwrap();
    // The list names the URI it is served at: bind first, sign, then serve.
    let issuer_key_pem = issuer_key.serialize_pem();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let status_uri = format!(
        "https://127.0.0.1:{}/status/1",
        listener.local_addr().unwrap().port()
    );
    let list = wallet(
        "status_list",
        &json!({"issuer_key_pem": issuer_key_pem, "kid": KID, "uri": status_uri,
                "revoked": [REVOKED_IDX]}),
    );
    rt.block_on(https_status_server(
        listener,
        host_cert.der().to_vec(),
        host_key.serialize_der(),
        list.as_str().unwrap().to_owned(),
    ));
    // The relying party's identity: x509_hash unless the test names another scheme.
    let identity = if wallet_keys.contains("client_id_scheme") {
        String::new()
    } else {
        format!(
            "client_id_scheme = \"x509_hash\"\ncertificate_chain_file = \"{}/rp.crt.pem\"\n",
            dir.display()
        )
    };
    let rp_jwk = jose::Signer::es256_from_pkcs8(
        &rp_key.serialize_der(),
        None,
        &ring::rand::SystemRandom::new(),
    )
    .unwrap()
    .jwk()
    .to_value();
    let extra = format!(
        "[wallet]\n{wallet_keys}{identity}\
         signing_key_file = \"{d}/rp.key.pem\"\n\
         trust_list_file = \"{d}/pid-trust-list.pem\"\n\
         [[wallet.issuer]]\niss = \"{ISS}\"\njwks_file = \"{d}/issuer.jwks.json\"\n\
         [wallet.status]\nca_file = \"{d}/status-ca.pem\"\n{more}",
        d = dir.display()
    );
    // The in-test federation is served over loopback http: `oidc_rp.allow_http` is accepted
    // only on a development deployment, so those tests declare one.
    let config = if more.contains("allow_http = true") {
        assert!(
            session.is_empty(),
            "the federation tests set no [session] keys"
        );
        fixture::config_with_server("allow_plain_http = true", &extra)
    } else {
        fixture::config_with(session, &extra)
    };
    let state = Arc::new(match redis {
        Some(url) => fixture::state_with_store(
            &config,
            broker::leaf::clock::system,
            broker::features::audit::Sink::Off,
            redis_store(rt, url),
        ),
        None => fixture::state(&config, broker::leaf::clock::system),
    });
    let addr = rt.block_on(fixture::serve(state.clone()));
    Setup {
        dir,
        rp_jwk,
        issuer_key_pem,
        chains,
        status_uri,
        addr,
        _state: state,
    }
}

/// One HTTP/1.1 exchange; status, headers (names lowercased, values as sent), body.
async fn http(addr: SocketAddr, head: &str) -> (u16, Vec<(String, String)>, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nHost: sp.varco.example.org\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let mut lines = head.lines();
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

fn header<'h>(h: &'h [(String, String)], name: &str) -> Option<&'h str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// The `name=value` of a `Set-Cookie` named `name`.
fn cookie(h: &[(String, String)], name: &str) -> Option<String> {
    h.iter()
        .filter(|(k, _)| k == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap_or("").to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// A browser: starts a login, keeps its login cookie.
struct Browser {
    login_cookie: String,
    /// Same device: the wallet URL; cross device: the waiting page's path.
    location: String,
}

async fn start(s: &Setup, same_device: bool) -> Browser {
    let device = if same_device { "&device=same" } else { "" };
    let (status, h, body) = http(
        s.addr,
        &format!("GET /wallet/login?return_to=%2Fhello{device} HTTP/1.1"),
    )
    .await;
    assert_eq!(status, 303, "{body}");
    Browser {
        login_cookie: cookie(&h, "__Host-varco_login").unwrap(),
        location: header(&h, "location").unwrap().to_owned(),
    }
}

/// The wallet presents for `authorization_url` with `scenario`; its HTTP status and answer.
fn present(s: &Setup, authorization_url: &str, scenario: &str, status_idx: u64) -> Value {
    wallet(
        "present",
        &json!({
            "issuer_key_pem": s.issuer_key_pem, "kid": KID, "iss": ISS,
            "status_uri": s.status_uri, "status_idx": status_idx,
            "authorization_url": authorization_url, "public_base": PUBLIC,
            "origin": format!("http://{}", s.addr), "scenario": scenario,
            "x5c": s.chains.get(scenario), "verifier_jwk": s.rp_jwk,
        }),
    )
}

/// Reads an attribute's value from the page.
/// Follows the wallet's `redirect_uri` (`out`, the Python wallet's answer) in the browser
/// that started the login (`login_cookie`), at `addr`: it must answer 303; its headers.
async fn finish(addr: SocketAddr, out: &Value, login_cookie: &str) -> Vec<(String, String)> {
    let path = out["body"]["redirect_uri"]
        .as_str()
        .unwrap()
        .trim_start_matches(PUBLIC)
        .to_owned();
    let (status, h, body) = http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nCookie: {login_cookie}"),
    )
    .await;
    assert_eq!(status, 303, "{body}");
    h
}

fn attr(page: &str, name: &str) -> String {
    let start = page.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
    let end = page[start..].find('"').unwrap() + start;
    page[start..end].replace("&amp;", "&")
}

async fn whoami(s: &Setup, session_cookie: &str) -> Value {
    let (status, _, body) = http(
        s.addr,
        &format!("GET /whoami HTTP/1.1\r\nCookie: {session_cookie}"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn same_device_login_with_an_independent_wallet() {
    let rt = runtime();
    let s = setup(&rt);
    rt.block_on(async {
        let b = start(&s, true).await;
        assert!(
            b.location
                .starts_with("openid4vp://?client_id=x509_hash%3A"),
            "{}",
            b.location
        );
        let out = present(&s, &b.location, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        let redirect = out["body"]["redirect_uri"].as_str().unwrap();
        assert!(redirect.starts_with(&format!("{PUBLIC}/wallet/complete?id=")));
        let path = redirect.trim_start_matches(PUBLIC);
        // Another browser (no login cookie) cannot collect it.
        let (status, _, _) = http(s.addr, &format!("GET {path} HTTP/1.1")).await;
        assert_eq!(status, 403);
        // Nor can the right browser without the response code.
        let id_only = path.split('&').next().unwrap();
        let (status, _, _) = http(
            s.addr,
            &format!("GET {id_only} HTTP/1.1\r\nCookie: {}", b.login_cookie),
        )
        .await;
        assert_eq!(status, 403);
        let (status, h, body) = http(
            s.addr,
            &format!("GET {path} HTTP/1.1\r\nCookie: {}", b.login_cookie),
        )
        .await;
        assert_eq!(status, 303, "{body}");
        assert_eq!(header(&h, "location"), Some("/hello"));
        let session = cookie(&h, "__Host-varco_session").unwrap();
        let me = whoami(&s, &session).await;
        let p = &me["principal"];
        assert_eq!(p["sub"], "TINIT-RSSMRA80A10H501W", "{me}");
        assert_eq!(p["auth"]["method"], "wallet");
        assert_eq!(p["auth"]["loa"], "high");
        assert_eq!(p["family_name"], "Rossi");
        // Downstream: the forward-auth headers and the signed token carry the method.
        let (status, h, _) = http(
            s.addr,
            &format!("GET /auth HTTP/1.1\r\nX-Original-URI: /\r\nCookie: {session}"),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(header(&h, "x-varco-method"), Some("wallet"));
        assert_eq!(header(&h, "x-varco-loa"), Some("high"));
        assert_eq!(header(&h, "x-varco-sub"), Some("TINIT-RSSMRA80A10H501W"));
        let token = header(&h, "authorization")
            .unwrap()
            .trim_start_matches("Bearer ");
        let claims: Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                token.split('.').nth(1).unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(claims.to_string().contains("\"wallet\""), "{claims}");
        // One login per presentation: the same return is refused.
        let (status, _, _) = http(
            s.addr,
            &format!("GET {path} HTTP/1.1\r\nCookie: {}", b.login_cookie),
        )
        .await;
        assert_eq!(status, 400);
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn cross_device_login_polls_and_completes() {
    let rt = runtime();
    let s = setup(&rt);
    rt.block_on(async {
        let b = start(&s, false).await;
        assert!(b.location.starts_with("/wallet/wait?id="), "{}", b.location);
        let (status, h, page) = http(
            s.addr,
            &format!("GET {} HTTP/1.1\r\nCookie: {}", b.location, b.login_cookie),
        )
        .await;
        assert_eq!(status, 200);
        assert!(header(&h, "content-security-policy").is_some());
        assert!(page.contains("<svg") && page.contains("http-equiv=\"refresh\""));
        let request_uri = attr(&page, "data-request-uri");
        assert!(request_uri.starts_with(&format!("{PUBLIC}/wallet/request/")));
        let auth = attr(&page, "id=\"wallet-link\" href");
        let status_url = attr(&page, "data-status-url");
        let poll_head = format!("GET {status_url} HTTP/1.1\r\nCookie: {}", b.login_cookie);
        let poll = || http(s.addr, &poll_head);
        assert_eq!(poll().await.2, "{\"status\":\"waiting\"}");
        let out = present(&s, &auth, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        assert_eq!(out["body"], json!({}), "no redirect_uri across devices");
        assert_eq!(poll().await.2, "{\"status\":\"presented\"}");
        // A browser that did not start the login cannot finish it.
        let (status, _, _) = http(
            s.addr,
            &format!(
                "GET {} HTTP/1.1\r\nCookie: __Host-varco_login=0123456789abcdef0123456789abcdef",
                b.location
            ),
        )
        .await;
        assert_eq!(status, 403);
        let (status, h, _) = http(
            s.addr,
            &format!("GET {} HTTP/1.1\r\nCookie: {}", b.location, b.login_cookie),
        )
        .await;
        assert_eq!(status, 303);
        let session = cookie(&h, "__Host-varco_session").unwrap();
        assert_eq!(
            whoami(&s, &session).await["principal"]["auth"]["method"],
            "wallet"
        );
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Each named attack, over HTTP against `/wallet/response`: the wallet's HTTP status and
/// the refusal code Varco answers with.
#[test]
fn named_attacks_are_refused_at_the_response_endpoint() {
    let rt = runtime();
    let s = setup(&rt);
    let cases: [(&str, u64, u16, &str); 12] = [
        ("wrong_nonce", 0, 400, "sdjwt.nonce"),
        ("wrong_aud", 0, 400, "sdjwt.audience"),
        (
            "tampered_disclosure",
            0,
            400,
            "sdjwt.unreferenced_disclosure",
        ),
        ("missing_kb", 0, 400, "sdjwt.kb_missing"),
        ("unbound_kb", 0, 400, "jose.signature"),
        ("revoked", REVOKED_IDX, 400, "sdjwt.revoked"),
        ("expired_credential", 0, 400, "sdjwt.expired"),
        ("untrusted_issuer", 0, 400, "wallet_untrusted_issuer"),
        ("alg_confusion", 0, 400, "jose.alg_hmac"),
        ("oversized_presentation", 0, 400, "sdjwt.too_large"),
        ("x509_untrusted_ca", 0, 400, "wallet_untrusted_issuer"),
        ("x509_other_name", 0, 400, "wallet_issuer_name"),
    ];
    let mut wrong = Vec::new();
    rt.block_on(async {
        for (scenario, idx, want_status, want_code) in cases {
            let b = start(&s, true).await;
            let out = present(
                &s,
                &b.location,
                if scenario == "revoked" {
                    "ok"
                } else {
                    scenario
                },
                idx,
            );
            let got = (
                out["status"].as_u64().unwrap_or(0),
                out["body"]["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            if got != (u64::from(want_status), want_code.to_owned()) {
                wrong.push(format!(
                    "{scenario}: got {got:?}, want {want_status} {want_code}"
                ));
            }
        }
    });
    assert!(wrong.is_empty(), "{wrong:#?}");
    let _ = std::fs::remove_dir_all(&s.dir);
}

#[test]
fn replayed_response_oversized_body_and_second_request_fetch_are_refused() {
    let rt = runtime();
    let s = setup(&rt);
    rt.block_on(async {
        let b = start(&s, true).await;
        let out = present(&s, &b.location, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        // The same POST again: the request's key was consumed by the first answer.
        let posted = out["posted"].as_str().unwrap();
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let req = format!(
            "POST /wallet/response HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{posted}",
            posted.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("wallet_replay"), "{answer}");
        // The request object is served once.
        let q = b.location.split("request_uri=").nth(1).unwrap();
        let uri = q
            .split('&')
            .next()
            .unwrap()
            .replace("%3A", ":")
            .replace("%2F", "/");
        let (status, _, body) = http(
            s.addr,
            &format!("GET {} HTTP/1.1", uri.trim_start_matches(PUBLIC)),
        )
        .await;
        assert_eq!(status, 404);
        assert!(body.contains("wallet_request_already_served"));

        // request_uri_method post: the wallet may POST (wallet_metadata, wallet_nonce) for
        // the object; the same one-time rule applies.
        let b2 = start(&s, true).await;
        let q = b2.location.split("request_uri=").nth(1).unwrap();
        let uri = q
            .split('&')
            .next()
            .unwrap()
            .replace("%3A", ":")
            .replace("%2F", "/");
        let path = uri.trim_start_matches(PUBLIC).to_owned();
        let mut stream = tokio::net::TcpStream::connect(s.addr).await.unwrap();
        let body = "wallet_nonce=abc";
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(req.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            answer.contains("application/oauth-authz-req+jwt"),
            "{answer}"
        );
        let (status, _, _) = http(s.addr, &format!("GET {path} HTTP/1.1")).await;
        assert_eq!(status, 404);

        let b = start(&s, true).await;
        let out = present(&s, &b.location, "oversized_body", 0);
        assert_eq!(out["status"], 413, "{out}");
        assert_eq!(out["body"]["error_description"], "broker_body_too_large");
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// The cross-device page in Chromium (tests/browser/wallet.mjs, playwright-core over the
/// Debian `chromium`): the page shows the QR code, the test's wallet presents for the
/// request the page names, and the page completes the login by itself.
#[test]
fn cross_device_page_in_chromium() {
    use std::io::{BufRead as _, Write as _};
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium missing: make test installs the Debian package chromium"
    );
    let deps = std::process::Command::new(workspace.join("scripts/browser-deps.sh"))
        .status()
        .expect("scripts/browser-deps.sh");
    assert!(deps.success(), "scripts/browser-deps.sh failed");
    let rt = runtime();
    // Plain loopback http in the browser: cookies without Secure (the development setting).
    let s = setup_with(&rt, "cookie_secure = false", "", "");
    let artifacts = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("artifacts");
    let mut node = std::process::Command::new("node")
        .arg(workspace.join("tests/browser/wallet.mjs"))
        .args([&format!("http://{}", s.addr), artifacts.to_str().unwrap()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("node (the machine's Node.js)");
    let mut stdin = node.stdin.take().unwrap();
    let stdout = std::io::BufReader::new(node.stdout.take().unwrap());
    let mut seen = Vec::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        println!("{line}");
        if let Some(url) = line.strip_prefix("request: ") {
            let out = present(&s, url, "ok", 0);
            assert_eq!(out["status"], 200, "{out}");
            writeln!(stdin, "presented").unwrap();
        }
        seen.push(line);
    }
    let status = node.wait().unwrap();
    let all = seen.join("\n");
    assert!(status.success(), "{all}");
    for step in [
        "ok - login page offers Entra con IT-Wallet",
        "ok - waiting page shows the QR code",
        "ok - axe-core on the waiting page",
        "ok - page completed the login by itself: Mario Rossi",
        "ok - no third-party request, no console error",
    ] {
        assert!(all.contains(step), "missing {step:?} in:\n{all}");
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// An issuer trusted through the X.509 trust list: its credential carries `x5c`, the chain
/// leads to the configured PID provider CA and names the issuer; the login completes and
/// the status list is verified with the leaf's key.
#[test]
fn x509_trust_list_issuer_logs_in() {
    let rt = runtime();
    let s = setup(&rt);
    rt.block_on(async {
        let b = start(&s, true).await;
        let out = present(&s, &b.location, "x509", 0);
        assert_eq!(out["status"], 200, "{out}");
        let h = finish(s.addr, &out, &b.login_cookie).await;
        let session = cookie(&h, "__Host-varco_session").unwrap();
        assert_eq!(
            whoami(&s, &session).await["principal"]["auth"]["method"],
            "wallet"
        );
        // Revoked under the X.509 path too: the status list verified with the leaf key.
        let b = start(&s, true).await;
        let out = present(&s, &b.location, "x509", REVOKED_IDX);
        assert_eq!(out["body"]["error_description"], "sdjwt.revoked", "{out}");
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// `/wallet/login` is rate-limited per client like `/saml/login` (a flood of requests, each
/// a key and a pending entry, is turned away before any is made).
#[test]
fn wallet_login_is_rate_limited() {
    let rt = runtime();
    let s = setup_with(
        &rt,
        "",
        "",
        "[admission]\nclient_per_minute = 1\nclient_burst = 2\nglobal_per_second = 0\n",
    );
    rt.block_on(async {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let (status, _, _) = http(s.addr, "GET /wallet/login?return_to=%2F HTTP/1.1").await;
            statuses.push(status);
        }
        assert_eq!(statuses, [303, 303, 429]);
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// `check-config` (the same validation as start-up) names each wallet problem by its key.
#[test]
fn wallet_configuration_problems_are_named() {
    let dir = std::env::temp_dir().join(format!("varco-wallet-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = KeyPair::generate().unwrap();
    let other = KeyPair::generate().unwrap();
    std::fs::write(dir.join("rp.key.pem"), key.serialize_pem()).unwrap();
    // A certificate for another key: the wallet would verify our requests with it.
    let cert = CertificateParams::new(vec!["x".to_owned()])
        .unwrap()
        .self_signed(&other)
        .unwrap();
    std::fs::write(dir.join("other.crt.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("empty.jwks"), "{\"keys\": []}").unwrap();
    let d = dir.display();
    let problems = |wallet: &str| -> Vec<String> {
        match fixture::try_config_with("", wallet) {
            Ok(_) => Vec::new(),
            Err(p) => p.into_iter().map(|p| p.key).collect(),
        }
    };
    let cases = [
        (
            "[wallet]\nclient_id_scheme = \"pre-registered\"\nsigning_key_file = \"{d}/rp.key.pem\"\n[[wallet.issuer]]\niss = \"https://i.example\"\njwks_file = \"{d}/empty.jwks\"\n",
            "wallet.client_id_scheme",
        ),
        (
            "[wallet]\nclient_id_scheme = \"x509_hash\"\nsigning_key_file = \"{d}/rp.key.pem\"\n",
            "wallet.certificate_chain_file",
        ),
        (
            "[wallet]\nclient_id_scheme = \"x509_hash\"\nsigning_key_file = \"{d}/rp.key.pem\"\ncertificate_chain_file = \"{d}/other.crt.pem\"\n[[wallet.issuer]]\niss = \"https://i.example\"\njwks_file = \"{d}/empty.jwks\"\n",
            "wallet.certificate_chain_file",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/missing.pem\"\n[[wallet.issuer]]\niss = \"https://i.example\"\njwks_file = \"{d}/empty.jwks\"\n",
            "wallet.signing_key_file",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\n",
            "wallet.issuer",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\n[[wallet.issuer]]\niss = \"https://i.example\"\njwks_file = \"{d}/empty.jwks\"\n",
            "wallet.issuer[0].jwks_file",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\nclaims = [\"given_name\", \"family_name\", \"birth_date\", \"portrait\"]\ntrust_list_file = \"{d}/missing.pem\"\n",
            "wallet.claims",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\ntrust_list_file = \"{d}/missing.pem\"\n",
            "wallet.trust_list_file",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\nmax_pending_bytes = 1000\n",
            "wallet.max_pending_bytes",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\nclaims = [\"given_name\", \"family_name\", \"given_name\", \"birth_date\", \"tax_id_code\"]\n",
            "wallet.claims",
        ),
        (
            // A federation anchor must be one of [[oidc_rp.trust_anchor]] (none here).
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\n[wallet.federation]\ntrust_anchors = [\"https://ta.example\"]\n",
            "wallet.federation.trust_anchors[0]",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\n[wallet.federation]\ntrust_anchors = []\n",
            "wallet.federation.trust_anchors",
        ),
        (
            // Required, with no attestation type and no trusted provider.
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\ntrust_list_file = \"{d}/missing.pem\"\n[wallet.wallet_providers]\nrequire_attestation = true\n",
            "wallet.wallet_providers.vct",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\ntrust_list_file = \"{d}/missing.pem\"\n[wallet.wallet_providers]\nrequire_attestation = true\nvct = [\"urn:x\"]\n",
            "wallet.wallet_providers",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\ntrust_list_file = \"{d}/missing.pem\"\n[wallet.wallet_providers]\nmax_lifetime_seconds = 604800\n",
            "wallet.wallet_providers.max_lifetime_seconds",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\ntrust_list_file = \"{d}/missing.pem\"\n[wallet.wallet_providers]\n[[wallet.wallet_providers.provider]]\niss = \"https://wp.example\"\njwks_file = \"{d}/empty.jwks\"\n",
            "wallet.wallet_providers.provider[0].jwks_file",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\n[wallet.federation]\ntrust_anchors = [\"https://ta.example\"]\n[wallet.wallet_providers.federation]\ntrust_anchors = [\"https://ta.example\"]\n",
            "wallet.wallet_providers.federation.trust_anchors[0]",
        ),
        (
            "[wallet]\nclient_id_scheme = \"openid_federation\"\nsigning_key_file = \"{d}/rp.key.pem\"\nformat = \"mso_mdoc\"\ntrust_list_file = \"{d}/missing.pem\"\n[wallet.wallet_providers]\nrequire_attestation = true\nvct = [\"urn:x\"]\ntrust_list_file = \"{d}/missing.pem\"\n",
            "wallet.wallet_providers.require_attestation",
        ),
    ];
    for (toml, key) in cases {
        let toml = toml.replace("{d}", &d.to_string());
        let got = problems(&toml);
        assert!(
            got.iter().any(|k| k == key),
            "{key} not in {got:?} for\n{toml}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The PID as an ISO mdoc (`format = "mso_mdoc"`): the issuer known by its `x5chain` under
/// the trust list, the device signature over this request's session transcript. A
/// DeviceResponse made for another nonce, or by an issuer under another CA, is refused.
#[test]
fn mdoc_pid_logs_in_and_its_attacks_are_refused() {
    let rt = runtime();
    let s = setup_with(&rt, "", "format = \"mso_mdoc\"\n", "");
    let mdoc = &s;
    rt.block_on(async {
        let b = start(mdoc, true).await;
        let out = present(mdoc, &b.location, "x509", 0);
        assert_eq!(out["status"], 200, "{out}");
        let h = finish(mdoc.addr, &out, &b.login_cookie).await;
        let session = cookie(&h, "__Host-varco_session").unwrap();
        let me = whoami(mdoc, &session).await;
        assert_eq!(me["principal"]["sub"], "TINIT-RSSMRA80A10H501W", "{me}");
        assert_eq!(me["principal"]["auth"]["method"], "wallet");
        for (scenario, code) in [
            ("mdoc_wrong_nonce", "mdoc.device_signature"),
            ("x509_untrusted_ca", "wallet_untrusted_issuer"),
            ("mdoc_revoked", "sdjwt.revoked"),
        ] {
            let b = start(mdoc, true).await;
            let chain = if scenario.starts_with("mdoc_") {
                "x509"
            } else {
                scenario
            };
            let idx = if scenario == "mdoc_revoked" {
                REVOKED_IDX
            } else {
                0
            };
            let out = wallet(
                "present",
                &json!({
                    "issuer_key_pem": mdoc.issuer_key_pem, "kid": KID, "iss": ISS,
                    "status_uri": mdoc.status_uri, "status_idx": idx,
                    "authorization_url": b.location, "public_base": PUBLIC,
                    "origin": format!("http://{}", mdoc.addr), "scenario": scenario,
                    "x5c": mdoc.chains.get(chain),
                }),
            );
            assert_eq!(out["body"]["error_description"], code, "{scenario}: {out}");
        }
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// `client_id_scheme = "openid_federation"`: the request carries `openid_federation:<entity
/// id>` and is signed with the key our Entity Configuration publishes (given to the wallet
/// here as the federation would); the KB-JWT `aud` is that client id.
#[test]
fn openid_federation_client_id_logs_in() {
    let rt = runtime();
    let s = setup_with(
        &rt,
        "",
        "client_id_scheme = \"openid_federation\"\nentity_id = \"https://rp.varco.example.org\"\n",
        "",
    );
    rt.block_on(async {
        let b = start(&s, true).await;
        assert!(
            b.location
                .starts_with("openid4vp://?client_id=openid_federation%3Ahttps%3A%2F%2Frp.varco"),
            "{}",
            b.location
        );
        let out = present(&s, &b.location, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        // A KB-JWT bound to the x509_hash form of our identity is refused here.
        let b = start(&s, true).await;
        let out = present(&s, &b.location, "wrong_aud", 0);
        assert_eq!(out["body"]["error_description"], "sdjwt.audience", "{out}");
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// A reload that adds `[wallet]` sizes the replica's ledger from it; one that changes
/// nothing keeps the ledger (the logins in flight are in the store either way).
#[test]
fn reload_sizes_or_keeps_the_wallet_requests() {
    let plain = fixture::config("");
    let s = fixture::state(&plain, broker::leaf::clock::system);
    assert_eq!(s.wallet.settings().0, 1);
    let rt = runtime();
    let w = setup(&rt);
    let with_wallet = w._state.config.clone();
    let re = s.reconfigured(with_wallet.clone());
    assert_eq!(re.wallet.settings().0, 10_000);
    let again = re.reconfigured(with_wallet);
    assert!(Arc::ptr_eq(&again.wallet, &re.wallet));
    assert!(Arc::ptr_eq(&again.wallet_status, &re.wallet_status));
    let _ = std::fs::remove_dir_all(&w.dir);
}

/// Revocation cannot be skipped by making the status list unreachable: a credential whose
/// list cannot be fetched is refused (503, fail closed), and so is one whose list is
/// served by a host the status fetch does not trust (the HTTPS certificate is checked).
#[test]
fn unreachable_status_list_fails_closed() {
    let rt = runtime();
    let s = setup(&rt);
    // A port nothing listens on (bound, then closed).
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    rt.block_on(async {
        for uri in [
            format!("https://127.0.0.1:{closed}/status/1"),
            // The status server, by a name its certificate does not carry.
            s.status_uri.replace("127.0.0.1", "localhost"),
        ] {
            let b = start(&s, true).await;
            let out = wallet(
                "present",
                &json!({
                    "issuer_key_pem": s.issuer_key_pem, "kid": KID, "iss": ISS,
                    "status_uri": uri, "status_idx": 0,
                    "authorization_url": b.location, "public_base": PUBLIC,
                    "origin": format!("http://{}", s.addr), "scenario": "ok",
                }),
            );
            assert_eq!(out["status"], 503, "{uri}: {out}");
            assert_eq!(
                out["body"]["error_description"],
                "wallet_status_unavailable"
            );
        }
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

// === Issuers trusted through OpenID Federation ([wallet.federation]) ===

/// Serves the federation documents of `docs` (keyed by full URL) over HTTP on `listener`.
async fn serve_federation(
    listener: tokio::net::TcpListener,
    base: String,
    docs: std::collections::HashMap<String, String>,
) {
    let docs = Arc::new(docs);
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        let (docs, base) = (docs.clone(), base.clone());
        tokio::spawn(async move {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let path = head.split(' ').nth(1).unwrap_or("/");
            let (status, body) = match docs.get(&format!("{base}{path}")) {
                Some(d) => ("200 OK", d.clone()),
                None => ("404 Not Found", String::new()),
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/entity-statement+jwt\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
        });
    }
}

/// How the in-test federation (Trust Anchor -> PID issuer) is built.
struct FedWorld {
    s: Setup,
    /// The issuer's Entity Identifier (the PID's `iss`).
    issuer: String,
    /// An Entity Identifier on the same host that no anchor knows.
    stranger: String,
    /// A Wallet Provider of the federation (`wallet_provider` metadata with its key), as
    /// the Python wallet signs attestations with it.
    provider: Value,
}

/// A Trust Anchor and a PID issuer served on loopback; Varco trusts the anchor through
/// `[[oidc_rp.trust_anchor]]` and `[wallet.federation]`. The issuer's
/// `openid_credential_issuer` metadata states `issuer_jwks` (`None`: the PID signing key);
/// `age` moves the federation's clock into the past (an expired chain); `wallet_fed` is
/// appended to `[wallet.federation]` (`{ta}` in it: the anchor's Entity Identifier); with
/// `other_anchor`, the wallet accepts only a second `[[oidc_rp.trust_anchor]]`, not the one
/// the issuer's chain ends at. A Wallet Provider is a member too (`FedWorld::provider`).
fn fed_world(
    rt: &tokio::runtime::Runtime,
    issuer_jwks: Option<Value>,
    age: u64,
    wallet_fed: &str,
    other_anchor: bool,
) -> FedWorld {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (ta, issuer) = (format!("{base}/ta"), format!("{base}/pid-issuer"));
    let wallet_fed = wallet_fed.replace("{ta}", &ta);
    let now = broker::leaf::clock::unix(broker::leaf::clock::system());
    let mut f = fed::Fed::new(now - age);
    f.config(
        &ta,
        &[],
        json!({"federation_entity": {"organization_name": "TA"}}),
    );
    f.statement(&ta, &issuer, None);
    let provider_iss = format!("{base}/wallet-provider");
    let provider_key = KeyPair::generate().unwrap();
    let provider_jwk = jose::Signer::es256_from_pkcs8(
        &provider_key.serialize_der(),
        Some("wp-1"),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap()
    .jwk()
    .to_value();
    f.config(
        &provider_iss,
        &[&ta],
        json!({
            "federation_entity": {"organization_name": "Wallet Provider (test)"},
            "wallet_provider": {"jwks": {"keys": [provider_jwk]}},
        }),
    );
    f.statement(&ta, &provider_iss, None);
    let dir = std::env::temp_dir().join(format!(
        "varco-wallet-fed-{}-{}",
        std::process::id(),
        listener.local_addr().unwrap().port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ta_jwks = dir.join("ta.jwks.json");
    std::fs::write(&ta_jwks, f.jwks(&ta).to_value().to_string()).unwrap();
    // The PID key is made by setup: build Varco first, then the issuer's configuration
    // with that key (the federation is served only once complete).
    let other = format!("{base}/other-ta");
    let accepted = if other_anchor { &other } else { &ta };
    let more = format!(
        "[wallet.federation]\ntrust_anchors = [\"{accepted}\"]\n{wallet_fed}\n\
         [oidc_rp]\n\
         federation_key_file = \"{k}/idp-rsa3072.key.pem\"\n\
         signing_key_file = \"{k}/sp-rsa2048.key.pem\"\n\
         encryption_key_file = \"{k}/idp-rsa2048.key.pk8.der\"\n\
         authority_hints = [\"{ta}\"]\n\
         organization_name = \"Comune di Prova\"\n\
         homepage_uri = \"https://www.example.org\"\n\
         policy_uri = \"https://www.example.org/privacy\"\n\
         logo_uri = \"https://www.example.org/logo.svg\"\n\
         contacts = [\"protocollo@pec.example.org\"]\n\
         allow_http = true\n\
         [[oidc_rp.trust_anchor]]\nentity_id = \"{ta}\"\njwks_file = \"{j}\"\n\
         [[oidc_rp.trust_anchor]]\nentity_id = \"{other}\"\njwks_file = \"{j}\"\n",
        j = ta_jwks.display(),
        k = fixture::KEYS,
    );
    let s = setup_with(rt, "", "", &more);
    let pid_jwks = {
        let key = KeyPair::from_pem(&s.issuer_key_pem).unwrap();
        let signer = jose::Signer::es256_from_pkcs8(
            &key.serialize_der(),
            Some(KID),
            &ring::rand::SystemRandom::new(),
        )
        .unwrap();
        json!({"keys": [signer.jwk().to_value()]})
    };
    f.config(
        &issuer,
        &[&ta],
        json!({
            "federation_entity": {"organization_name": "PID Provider (test)"},
            "openid_credential_issuer": {
                "credential_issuer": issuer,
                "jwks": issuer_jwks.unwrap_or(pid_jwks),
            },
        }),
    );
    rt.spawn(serve_federation(listener, base.clone(), f.docs.clone()));
    let _ = std::fs::remove_dir_all(&dir);
    FedWorld {
        s,
        issuer,
        stranger: format!("{base}/not-a-member"),
        provider: json!({"key_pem": provider_key.serialize_pem(), "kid": "wp-1",
                         "iss": provider_iss, "vct": WA_VCT}),
    }
}

/// The wallet presents a PID issued as `iss` (signed with the setup's PID key).
fn present_as(s: &Setup, authorization_url: &str, iss: &str, status_idx: u64) -> Value {
    wallet(
        "present",
        &json!({
            "issuer_key_pem": s.issuer_key_pem, "kid": KID, "iss": iss,
            "status_uri": s.status_uri, "status_idx": status_idx,
            "authorization_url": authorization_url, "public_base": PUBLIC,
            "origin": format!("http://{}", s.addr), "scenario": "ok",
            "x5c": Value::Null, "verifier_jwk": s.rp_jwk,
        }),
    )
}

/// A PID whose issuer is known only through the federation logs in: its chain resolved by
/// the broker's federation fetcher, the signature and the status list verified with the
/// keys of the chain's `openid_credential_issuer` metadata.
#[test]
fn federated_issuer_pid_logs_in() {
    let rt = runtime();
    let w = fed_world(&rt, None, 0, "", false);
    rt.block_on(async {
        let b = start(&w.s, true).await;
        let out = present_as(&w.s, &b.location, &w.issuer, 0);
        assert_eq!(out["status"], 200, "{out}");
        let h = finish(w.s.addr, &out, &b.login_cookie).await;
        let session = cookie(&h, "__Host-varco_session").unwrap();
        let me = whoami(&w.s, &session).await;
        assert_eq!(me["principal"]["auth"]["method"], "wallet", "{me}");
        // The chain is cached: a second presentation fetches nothing from the federation,
        // and its revoked status is read with the chain's keys.
        let oidc = w.s._state.oidc.as_ref().unwrap();
        let fetched = oidc.fetch_count();
        assert_eq!(
            fetched, 3,
            "issuer configuration, anchor configuration, statement"
        );
        let b = start(&w.s, true).await;
        let out = present_as(&w.s, &b.location, &w.issuer, REVOKED_IDX);
        assert_eq!(out["body"]["error_description"], "sdjwt.revoked", "{out}");
        assert_eq!(oidc.fetch_count(), fetched);
    });
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

/// The wallet presents as `iss` and Varco must refuse with `code`.
fn fed_refused(w: &FedWorld, rt: &tokio::runtime::Runtime, iss: &str, code: &str) {
    rt.block_on(async {
        let b = start(&w.s, true).await;
        let out = present_as(&w.s, &b.location, iss, 0);
        assert_eq!(out["status"], 400, "{out}");
        assert_eq!(out["body"]["error_description"], code, "{out}");
    });
}

#[test]
fn issuer_not_in_the_federation_is_refused() {
    let rt = runtime();
    let w = fed_world(&rt, None, 0, "", false);
    fed_refused(&w, &rt, &w.stranger, "wallet_issuer_chain");
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

#[test]
fn expired_federation_chain_is_refused() {
    let rt = runtime();
    // Every statement expired long ago (exp is at most two hours after its iat).
    let w = fed_world(&rt, None, 86_400, "", false);
    let issuer = w.issuer.clone();
    fed_refused(&w, &rt, &issuer, "wallet_issuer_chain");
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

#[test]
fn key_not_in_the_chains_metadata_is_refused() {
    let rt = runtime();
    // The metadata states another key under the same kid: the PID's signature must fail.
    let other = KeyPair::generate().unwrap();
    let other = jose::Signer::es256_from_pkcs8(
        &other.serialize_der(),
        Some(KID),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let w = fed_world(
        &rt,
        Some(json!({"keys": [other.jwk().to_value()]})),
        0,
        "",
        false,
    );
    let issuer = w.issuer.clone();
    fed_refused(&w, &rt, &issuer, "jose.signature");
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

#[test]
fn federated_issuer_without_a_required_trust_mark_is_refused() {
    let rt = runtime();
    let w = fed_world(
        &rt,
        None,
        0,
        "required_trust_marks = [\"https://registry.example/pid-provider\"]",
        false,
    );
    let issuer = w.issuer.clone();
    fed_refused(&w, &rt, &issuer, "wallet_issuer_trust_mark");
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

/// A chain that ends at an anchor the OIDC login trusts but `[wallet.federation]` does not
/// accept is refused.
#[test]
fn chain_to_an_anchor_the_wallet_does_not_accept_is_refused() {
    let rt = runtime();
    let w = fed_world(&rt, None, 0, "", true);
    let issuer = w.issuer.clone();
    fed_refused(&w, &rt, &issuer, "wallet_issuer_anchor");
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

// === Replicas, claims per route, fetch bounds (issue 23, the wallet across replicas) ===

/// The wallet presents for `authorization_url`, fetching the request object from replica
/// `fetch_at` and posting the answer to replica `post_at`.
fn present_across(
    s: &Setup,
    authorization_url: &str,
    fetch_at: SocketAddr,
    post_at: SocketAddr,
    scenario: &str,
) -> Value {
    wallet(
        "present",
        &json!({
            "issuer_key_pem": s.issuer_key_pem, "kid": KID, "iss": ISS,
            "status_uri": s.status_uri, "status_idx": 0,
            "authorization_url": authorization_url, "public_base": PUBLIC,
            "origin": format!("http://{fetch_at}"),
            "response_origin": format!("http://{post_at}"),
            "scenario": scenario, "x5c": Value::Null, "verifier_jwk": s.rp_jwk,
        }),
    )
}

/// Two replicas (two brokers of one configuration, each with its own connections to one
/// real `redis-server`): the browser starts at A, the wallet fetches the request object
/// from A and answers at B, the browser polls B and completes at A. The same answer again
/// at A is a replay; the request object is gone from B too. Same device: started at B,
/// answered at A, completed at B. No `/wallet/*` request needs the replica that made the
/// request.
#[test]
fn wallet_login_across_two_replicas_sharing_one_redis() {
    let redis = testkit::Redis::start("wallet");
    let rt = runtime();
    let a = setup_on(&rt, "", "", "", Some(&redis.url()));
    let b_state = Arc::new(fixture::state_with_store(
        &a._state.config,
        broker::leaf::clock::system,
        broker::features::audit::Sink::Off,
        redis_store(&rt, &redis.url()),
    ));
    let b_addr = rt.block_on(fixture::serve(b_state));
    rt.block_on(async {
        // Cross device: start at A.
        let br = start(&a, false).await;
        let (status, _, page) = http(
            a.addr,
            &format!(
                "GET {} HTTP/1.1\r\nCookie: {}",
                br.location, br.login_cookie
            ),
        )
        .await;
        assert_eq!(status, 200);
        let auth = attr(&page, "id=\"wallet-link\" href");
        let status_url = attr(&page, "data-status-url");
        let out = present_across(&a, &auth, a.addr, b_addr, "ok");
        assert_eq!(out["status"], 200, "{out}");
        // B sees the outcome A's request is waiting for.
        let (_, _, polled) = http(
            b_addr,
            &format!("GET {status_url} HTTP/1.1\r\nCookie: {}", br.login_cookie),
        )
        .await;
        assert_eq!(polled, "{\"status\":\"presented\"}");
        // The same answer again, at A: the key was taken at B.
        let posted = out["posted"].as_str().unwrap();
        let (status, _, body) = fixture::exchange(
            a.addr,
            "POST /wallet/response HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            posted,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("wallet_replay"), "{body}");
        // Completed at A.
        let (status, h, _) = http(
            a.addr,
            &format!(
                "GET {} HTTP/1.1\r\nCookie: {}",
                br.location, br.login_cookie
            ),
        )
        .await;
        assert_eq!(status, 303);
        let session = cookie(&h, "__Host-varco_session").unwrap();
        assert_eq!(
            whoami(&a, &session).await["principal"]["sub"],
            "TINIT-RSSMRA80A10H501W"
        );
        // And only once, wherever: B refuses the second completion.
        let (status, _, _) = http(
            b_addr,
            &format!(
                "GET {} HTTP/1.1\r\nCookie: {}",
                br.location, br.login_cookie
            ),
        )
        .await;
        assert_eq!(status, 400);

        // Same device: start at B, the wallet fetches from A and answers at A, the
        // browser returns to B.
        let (status, h, _) = http(
            b_addr,
            "GET /wallet/login?return_to=%2Fhello&device=same HTTP/1.1",
        )
        .await;
        assert_eq!(status, 303);
        let login_cookie = cookie(&h, "__Host-varco_login").unwrap();
        let location = header(&h, "location").unwrap().to_owned();
        let out = present_across(&a, &location, a.addr, a.addr, "ok");
        assert_eq!(out["status"], 200, "{out}");
        // The request object was served once, by A: B knows it is gone.
        let q = location.split("request_uri=").nth(1).unwrap();
        let uri = q
            .split('&')
            .next()
            .unwrap()
            .replace("%3A", ":")
            .replace("%2F", "/");
        let (status, _, body) = http(
            b_addr,
            &format!("GET {} HTTP/1.1", uri.trim_start_matches(PUBLIC)),
        )
        .await;
        assert_eq!(status, 404);
        assert!(body.contains("wallet_request_already_served"), "{body}");
        let h = finish(b_addr, &out, &login_cookie).await;
        assert_eq!(header(&h, "location"), Some("/hello"));
    });
    let _ = std::fs::remove_dir_all(&a.dir);
}

/// DCQL per route: a `[[route]]` with `wallet_claims` asks for exactly those (here the
/// place of birth besides the default four); another route asks for `wallet.claims`. The
/// independent wallet discloses only what was asked; a presentation that withholds a
/// claim the route asked for is refused (`wallet_claim_missing`), even one Varco would not
/// need for the principal.
#[test]
fn dcql_claims_follow_the_route_and_a_withheld_claim_is_refused() {
    let rt = runtime();
    let s = setup_with(
        &rt,
        "",
        "",
        "[[route]]\npath_prefix = \"/anagrafe\"\n\
         wallet_claims = [\"given_name\", \"family_name\", \"birth_date\", \"birth_place\", \"tax_id_code\"]\n\
         [[route]]\npath_prefix = \"/\"\n",
    );
    rt.block_on(async {
        let addr = s.addr;
        let login = move |return_to: &'static str| async move {
            let (status, h, body) = http(
                addr,
                &format!("GET /wallet/login?return_to={return_to}&device=same HTTP/1.1"),
            )
            .await;
            assert_eq!(status, 303, "{body}");
            header(&h, "location").unwrap().to_owned()
        };
        let names = |v: &Value| {
            let mut n: Vec<String> = v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_owned())
                .collect();
            n.sort();
            n
        };
        let default = ["birth_date", "family_name", "given_name", "tax_id_code"];
        let out = present(&s, &login("%2Fhello").await, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        assert_eq!(names(&out["asked"]), default);
        assert_eq!(names(&out["disclosed"]), default, "only what was asked");
        let out = present(&s, &login("%2Fanagrafe%2Fcertificati").await, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        let with_place = [
            "birth_date",
            "birth_place",
            "family_name",
            "given_name",
            "tax_id_code",
        ];
        assert_eq!(names(&out["asked"]), with_place);
        assert_eq!(names(&out["disclosed"]), with_place);
        let out = present(&s, &login("%2Fanagrafe").await, "withhold:birth_place", 0);
        assert_eq!(out["status"], 400, "{out}");
        assert_eq!(out["body"]["error_description"], "wallet_claim_missing");
        // A claim Varco needs, withheld on the default route: the same refusal.
        let out = present(&s, &login("%2F").await, "withhold:tax_id_code", 0);
        assert_eq!(out["body"]["error_description"], "wallet_claim_missing");
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// `check-config` names a route's bad `wallet_claims` by its key, and a route that sets
/// them without `[wallet]`.
#[test]
fn route_wallet_claims_are_checked() {
    let rt = runtime();
    let s = setup(&rt);
    let w = s._state.config.wallet.as_ref().unwrap();
    assert_eq!(
        w.claims,
        ["given_name", "family_name", "birth_date", "tax_id_code"]
    );
    let problems = |extra: &str| -> Vec<String> {
        match fixture::try_config_with("", extra) {
            Ok(_) => Vec::new(),
            Err(p) => p
                .into_iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect(),
        }
    };
    let p = problems(
        "[[route]]\nwallet_claims = [\"given_name\", \"family_name\", \"birth_date\", \"tax_id_code\"]\n",
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("route[0].wallet_claims: set, but [wallet]")),
        "{p:?}"
    );
    let p = problems("[[route]]\nwallet_claims = [\"given_name\", \"shoe_size\"]\n");
    for want in [
        "route[0].wallet_claims: \"shoe_size\" is not a PID claim",
        "route[0].wallet_claims: must include \"family_name\"",
        "route[0].wallet_claims: must include \"birth_date\"",
        "route[0].wallet_claims: must include \"tax_id_code\" or",
    ] {
        assert!(p.iter().any(|m| m.starts_with(want)), "{want}: {p:?}");
    }
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// Accepts connections on `listener` and counts them (each a fetch attempt: plain HTTP
/// requests and TLS handshakes alike); answers 404 to whatever arrives.
async fn counting_server(
    listener: tokio::net::TcpListener,
    hits: Arc<std::sync::atomic::AtomicUsize>,
) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        });
    }
}

/// What a hostile `iss` can make Varco fetch, counted by a local server that answers 404
/// to everything: with `[wallet.federation]`, an unknown issuer is resolved as an Entity
/// Identifier (one fetch of its Entity Configuration, at most the resolver's
/// `max_fetches` = 16 per presentation in any graph), and only for an answer to a live
/// request: N hostile presentations, N requests made (the `/wallet/login` rate limit
/// allows N), N fetches. A replayed answer, an answer naming no request, and answers over
/// the `/wallet/response` rate limit fetch nothing; a status list URI in an untrusted
/// credential is never fetched (the signature comes first); nor is anything for an
/// issuer whose key is configured.
#[test]
fn fetches_a_hostile_issuer_can_cause_are_counted_and_bounded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const N: usize = 4;
    let rt = runtime();
    let w = fed_world(
        &rt,
        None,
        0,
        &format!("[admission]\nclient_per_minute = 1\nclient_burst = {N}\nglobal_per_second = 0\n"),
        false,
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let hostile = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    rt.spawn(counting_server(listener, hits.clone()));
    let oidc = w.s._state.oidc.as_ref().unwrap();
    let before = oidc.fetch_count();
    rt.block_on(async {
        let mut posted = Vec::new();
        for k in 0..N {
            let b = start(&w.s, true).await;
            // Each presentation names a different hostile issuer and a hostile status
            // list on the same host.
            let out = wallet(
                "present",
                &json!({
                    "issuer_key_pem": w.s.issuer_key_pem, "kid": KID,
                    "iss": format!("{hostile}/issuer-{k}"),
                    "status_uri": format!("{}/status-{k}", hostile.replace("http:", "https:")),
                    "status_idx": 0, "authorization_url": b.location, "public_base": PUBLIC,
                    "origin": format!("http://{}", w.s.addr), "scenario": "ok",
                    "x5c": Value::Null, "verifier_jwk": w.s.rp_jwk,
                }),
            );
            assert_eq!(out["status"], 400, "{out}");
            assert_eq!(out["body"]["error_description"], "wallet_issuer_chain");
            posted.push(out["posted"].as_str().unwrap().to_owned());
        }
        assert_eq!(
            hits.load(Ordering::SeqCst),
            N,
            "one Entity Configuration fetch each"
        );
        assert_eq!(oidc.fetch_count() - before, N as u64);
        // The login rate limit: no (N+1)th request, so no (N+1)th answer can be opened.
        let (status, _, _) = http(w.s.addr, "GET /wallet/login?return_to=%2F HTTP/1.1").await;
        assert_eq!(status, 429);
        // Over the response rate limit (burst N spent): refused before any work.
        let (status, _, _) = fixture::exchange(
            w.s.addr,
            "POST /wallet/response HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            &posted[0],
        )
        .await;
        assert_eq!(status, 429);
        assert_eq!(hits.load(Ordering::SeqCst), N, "nothing more fetched");
    });
    let _ = std::fs::remove_dir_all(&w.s.dir);

    // Without a rate limit in the way: replays and answers naming no request fetch
    // nothing; a resolution through a hostile graph stops at the resolver's bound.
    let w = fed_world(&rt, None, 0, "", false);
    let oidc = w.s._state.oidc.as_ref().unwrap();
    rt.block_on(async {
        let b = start(&w.s, true).await;
        let out = present_as(&w.s, &b.location, &format!("{hostile}/issuer-x"), 0);
        assert_eq!(out["body"]["error_description"], "wallet_issuer_chain");
        let seen = hits.load(Ordering::SeqCst);
        let fetched = oidc.fetch_count();
        let posted = out["posted"].as_str().unwrap();
        for _ in 0..10 {
            let (status, _, body) = fixture::exchange(
                w.s.addr,
                "POST /wallet/response HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
                posted,
            )
            .await;
            assert_eq!(status, 400);
            assert!(body.contains("wallet_replay"), "{body}");
        }
        // A JWE naming a key of no request.
        let header = base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            json!({"alg": "ECDH-ES", "enc": "A128GCM", "kid": "A".repeat(43)}).to_string(),
        );
        let (status, _, body) = fixture::exchange(
            w.s.addr,
            "POST /wallet/response HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded",
            &format!("response={header}..AAAA.AAAA.AAAA"),
        )
        .await;
        assert_eq!(status, 400);
        assert!(body.contains("wallet_bad_response"), "{body}");
        assert_eq!(hits.load(Ordering::SeqCst), seen);
        assert_eq!(oidc.fetch_count(), fetched);
        // A trusted issuer's credential fetches its own status list only.
        let b = start(&w.s, true).await;
        let out = present(&w.s, &b.location, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
        assert_eq!(
            oidc.fetch_count(),
            fetched,
            "a configured issuer: no federation fetch"
        );
        assert_eq!(hits.load(Ordering::SeqCst), seen);
    });
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

/// The bytes a replica puts in the store for wallet logins are counted and bounded: each
/// login is counted by its records' sizes (a few KB with the `x5c` request object), and
/// beyond `max_pending` (or `max_pending_bytes`) a new login is refused with 503
/// `wallet_too_many_pending`, while the logins already made still complete.
#[test]
fn a_replica_refuses_wallet_logins_beyond_its_ledger() {
    let rt = runtime();
    let s = setup_with(&rt, "", "max_pending = 2\n", "");
    rt.block_on(async {
        let first = start(&s, true).await;
        let (n, bytes) = s._state.wallet.usage();
        assert_eq!(n, 1);
        assert!(
            (2_000..16_000).contains(&bytes),
            "{bytes} bytes for one login"
        );
        let _second = start(&s, true).await;
        let (status, _, body) = http(s.addr, "GET /wallet/login?return_to=%2F HTTP/1.1").await;
        assert_eq!(status, 503);
        assert!(body.contains("wallet_too_many_pending"), "{body}");
        let out = present(&s, &first.location, "ok", 0);
        assert_eq!(out["status"], 200, "{out}");
    });
    let _ = std::fs::remove_dir_all(&s.dir);
}

const WALLET_PROVIDER: &str = "https://wallet-provider.example.it";
const WA_VCT: &str = "urn:test:wallet_attestation:1";

/// A Wallet Provider key, its JWKS in a file for `[[wallet.wallet_providers.provider]]`,
/// and what the Python wallet needs to sign attestations with it.
fn wallet_provider(tag: &str) -> (PathBuf, Value) {
    let key = KeyPair::generate().unwrap();
    let signer = jose::Signer::es256_from_pkcs8(
        &key.serialize_der(),
        Some("wp-1"),
        &ring::rand::SystemRandom::new(),
    )
    .unwrap();
    let jwks = std::env::temp_dir().join(format!(
        "varco-wallet-provider-{}-{tag}.jwks.json",
        std::process::id()
    ));
    std::fs::write(
        &jwks,
        json!({"keys": [signer.jwk().to_value()]}).to_string(),
    )
    .unwrap();
    let provider = json!({"key_pem": key.serialize_pem(), "kid": "wp-1",
                          "iss": WALLET_PROVIDER, "vct": WA_VCT});
    (jwks, provider)
}

fn providers_table(jwks: &Path) -> String {
    format!(
        "[wallet.wallet_providers]\nrequire_attestation = true\nvct = [\"{WA_VCT}\"]\n\
         [[wallet.wallet_providers.provider]]\niss = \"{WALLET_PROVIDER}\"\n\
         jwks_file = \"{}\"\n",
        jwks.display()
    )
}

/// The wallet presents the PID and, when asked, a wallet attestation by `provider`.
fn present_attested(s: &Setup, authorization_url: &str, scenario: &str, provider: &Value) -> Value {
    wallet(
        "present",
        &json!({
            "issuer_key_pem": s.issuer_key_pem, "kid": KID, "iss": ISS,
            "status_uri": s.status_uri, "status_idx": 0,
            "authorization_url": authorization_url, "public_base": PUBLIC,
            "origin": format!("http://{}", s.addr), "scenario": scenario,
            "verifier_jwk": s.rp_jwk, "provider": provider,
        }),
    )
}

/// `[wallet.wallet_providers] require_attestation`: the request asks for the attestation
/// beside the PID; a wallet whose provider is configured logs in (and the audit names the
/// provider); every named attack on the attestation is refused with its code.
#[test]
fn wallet_attestation_is_required_and_its_attacks_are_refused() {
    let rt = runtime();
    let (jwks, provider) = wallet_provider("attacks");
    let s = setup_with(&rt, "", "", &providers_table(&jwks));
    let cases: [(&str, u16, &str); 7] = [
        ("wa_missing", 400, "openid4vp.attestation_missing"),
        ("wa_untrusted_provider", 400, "wallet_untrusted_provider"),
        ("wa_expired", 400, "openid4vp.attestation_expired"),
        ("wa_unbound", 400, "openid4vp.attestation_unbound"),
        (
            "wa_forged_signature",
            400,
            "openid4vp.attestation_signature",
        ),
        ("wa_alg_confusion", 400, "openid4vp.attestation_alg"),
        ("wa_long_lived", 400, "openid4vp.attestation_lifetime"),
    ];
    rt.block_on(async {
        let b = start(&s, true).await;
        let out = present_attested(&s, &b.location, "ok", &provider);
        assert_eq!(out["status"], 200, "{out}");
        let h = finish(s.addr, &out, &b.login_cookie).await;
        let session = cookie(&h, "__Host-varco_session").unwrap();
        assert_eq!(
            whoami(&s, &session).await["principal"]["auth"]["method"],
            "wallet"
        );
        let mut wrong = Vec::new();
        for (scenario, want_status, want_code) in cases {
            let b = start(&s, true).await;
            let out = present_attested(&s, &b.location, scenario, &provider);
            let got = (
                out["status"].as_u64().unwrap_or(0),
                out["body"]["error_description"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
            );
            if got != (u64::from(want_status), want_code.to_owned()) {
                wrong.push(format!(
                    "{scenario}: got {got:?}, want {want_status} {want_code}"
                ));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
    });
    // The counter saw one accepted, one missing, the rest refused.
    let metrics = s
        ._state
        .metrics
        .render(&s._state.refresher, broker::leaf::clock::system());
    for (result, n) in [("accepted", 1), ("missing", 1), ("refused", 6)] {
        let line = format!("varco_wallet_attestations_total{{result=\"{result}\"}} {n}");
        assert!(metrics.contains(&line), "{line} not in metrics");
    }
    let _ = std::fs::remove_dir_all(&s.dir);
    let _ = std::fs::remove_file(&jwks);
}

/// Without `require_attestation` the request asks for the PID alone (the IT-Wallet 1.x
/// default): the wallet, which attaches its (here: untrusted) attestation only when asked,
/// logs in with the PID.
#[test]
fn wallet_attestation_is_not_asked_for_by_default() {
    let rt = runtime();
    let (jwks, provider) = wallet_provider("default");
    let table = providers_table(&jwks).replace("require_attestation = true\n", "");
    let s = setup_with(&rt, "", "", &table);
    rt.block_on(async {
        let b = start(&s, true).await;
        let out = present_attested(&s, &b.location, "wa_untrusted_provider", &provider);
        assert_eq!(out["status"], 200, "{out}");
    });
    let _ = std::fs::remove_dir_all(&s.dir);
    let _ = std::fs::remove_file(&jwks);
}

/// A Wallet Provider known only through OpenID Federation: its attestation is verified with
/// the keys of its chain's `wallet_provider` metadata, and the login completes; the same
/// attestation named as coming from an entity the anchor does not know is refused (no
/// chain, no key), as is a genuine member's attestation signed with another key.
#[test]
fn federated_wallet_provider_attestation_logs_in_and_strangers_are_refused() {
    let rt = runtime();
    let w = fed_world(
        &rt,
        None,
        0,
        &format!(
            "[wallet.wallet_providers]\nrequire_attestation = true\nvct = [\"{WA_VCT}\"]\n\
             [wallet.wallet_providers.federation]\ntrust_anchors = [\"{{ta}}\"]\n"
        ),
        false,
    );
    rt.block_on(async {
        let b = start(&w.s, true).await;
        let out = present_attested(&w.s, &b.location, "ok", &w.provider);
        assert_eq!(out["status"], 200, "{out}");
        let h = finish(w.s.addr, &out, &b.login_cookie).await;
        let session = cookie(&h, "__Host-varco_session").unwrap();
        assert_eq!(
            whoami(&w.s, &session).await["principal"]["auth"]["method"],
            "wallet"
        );
        // Not a member: no chain, so no key to verify with.
        let mut stranger = w.provider.clone();
        stranger["iss"] = json!(w.stranger);
        let b = start(&w.s, true).await;
        let out = present_attested(&w.s, &b.location, "ok", &stranger);
        assert_eq!(out["status"], 400, "{out}");
        let code = out["body"]["error_description"].as_str().unwrap_or("");
        assert!(
            code == "wallet_untrusted_provider" || code.starts_with("wallet_provider_"),
            "{out}"
        );
        // A member's name, someone else's key: the chain's keys do not verify it.
        let b = start(&w.s, true).await;
        let out = present_attested(&w.s, &b.location, "wa_forged_signature", &w.provider);
        assert_eq!(out["status"], 400, "{out}");
        assert_eq!(
            out["body"]["error_description"], "openid4vp.attestation_signature",
            "{out}"
        );
    });
    let _ = std::fs::remove_dir_all(&w.s.dir);
}

/// A Wallet Provider trusted by X.509 (`[wallet.wallet_providers] trust_list_file`): its
/// attestation carries `x5c`, a certificate naming the provider (SAN URI) under a configured
/// CA, and the login completes; the same provider certified by a CA nobody configured, and a
/// certificate under the configured CA that names another provider, are refused.
#[test]
fn x509_wallet_provider_attestation_logs_in_and_foreign_chains_are_refused() {
    use base64::Engine as _;
    let rt = runtime();
    let dir = std::env::temp_dir().join(format!("varco-wallet-wp-x509-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = |name: &str| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CommonName, name);
        params.distinguished_name = dn;
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), Issuer::new(params, key))
    };
    let (trusted_pem, trusted) = ca("Wallet Provider CA (test)");
    let (_, foreign) = ca("Someone else's CA");
    std::fs::write(dir.join("wp-trust-list.pem"), trusted_pem).unwrap();
    let provider_key = KeyPair::generate().unwrap();
    let chain = |san: &str, ca: &Issuer<'_, KeyPair>| {
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.subject_alt_names = vec![rcgen::SanType::URI(san.try_into().unwrap())];
        leaf.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        let cert = leaf.signed_by(&provider_key, ca).unwrap();
        json!([base64::engine::general_purpose::STANDARD.encode(cert.der())])
    };
    let provider = |x5c: Value| {
        json!({"key_pem": provider_key.serialize_pem(), "kid": "wp-1",
               "iss": WALLET_PROVIDER, "vct": WA_VCT, "x5c": x5c})
    };
    let s = setup_with(
        &rt,
        "",
        "",
        &format!(
            "[wallet.wallet_providers]\nrequire_attestation = true\nvct = [\"{WA_VCT}\"]\n\
             trust_list_file = \"{}\"\n",
            dir.join("wp-trust-list.pem").display()
        ),
    );
    rt.block_on(async {
        let b = start(&s, true).await;
        let out = present_attested(
            &s,
            &b.location,
            "ok",
            &provider(chain(WALLET_PROVIDER, &trusted)),
        );
        assert_eq!(out["status"], 200, "{out}");
        let h = finish(s.addr, &out, &b.login_cookie).await;
        let session = cookie(&h, "__Host-varco_session").unwrap();
        assert_eq!(
            whoami(&s, &session).await["principal"]["auth"]["method"],
            "wallet"
        );
        for (x5c, want) in [
            (
                chain(WALLET_PROVIDER, &foreign),
                "wallet_untrusted_provider",
            ),
            (
                chain("https://another-provider.example.it", &trusted),
                "wallet_provider_name",
            ),
        ] {
            let b = start(&s, true).await;
            let out = present_attested(&s, &b.location, "ok", &provider(x5c));
            assert_eq!(out["status"], 400, "{out}");
            assert_eq!(out["body"]["error_description"], want, "{out}");
        }
    });
    let _ = std::fs::remove_dir_all(&s.dir);
    let _ = std::fs::remove_dir_all(&dir);
}
