//! The HTTP JSON source: `GET <url>?delegate=<sub>` on the portal's API, authenticated with a
//! bearer token and/or a TLS client certificate, with a whole-request deadline, a body cap,
//! no redirects and status 200 only; the body is verified by `identity::represent::answer`.
//! Answers are reused per delegate for `cache_seconds` (by the injected clock). Every failure
//! is a [`SourceError`]: the caller fails closed.
//!
//! ureq in `spawn_blocking`, as the metadata fetcher does (docs/ARCHITECTURE.md, "Why these
//! choices"): one client library for outbound HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use identity::Principal;
use identity::represent::answer::{Answer, AnswerInput, AnswerLimits};
use identity::represent::{Representations, Source as _, SourceKind};

use super::source::{
    DEFAULT_CACHE_SECONDS, DEFAULT_TIMEOUT_MS, Lookup, RawSource, RepresentationSource, SourceError,
};

/// A configured HTTP JSON source.
pub struct HttpSource {
    id: String,
    fetcher: Arc<Fetcher>,
    verifier: Answer,
    cache: moka::sync::Cache<String, (u64, Arc<Representations>)>,
    cache_seconds: u64,
}

/// Whether `url` may carry credentials: https, or http to a loopback address (a sidecar, a
/// test).
fn url_ok(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?']).next().unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

fn read_pem_certs(path: &Path) -> Result<Vec<ureq::tls::Certificate<'static>>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{}: no certificate", path.display()));
    }
    Ok(certs)
}

pub(super) fn validate(
    raw: &RawSource,
    key: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<HttpSource> {
    let Some(url) = &raw.url else {
        bad(key, "an http source needs url".into());
        return None;
    };
    if !url_ok(url) || url.contains('#') {
        bad(
            &format!("{key}.url"),
            format!("{url:?}: https, or http to a loopback address; no fragment"),
        );
        return None;
    }
    let bearer = match &raw.bearer_token_file {
        None => None,
        Some(f) => {
            let p = resolve(f);
            match std::fs::read_to_string(&p) {
                Ok(t) if !t.trim().is_empty() && t.trim().bytes().all(|c| c.is_ascii_graphic()) => {
                    Some(t.trim().to_owned())
                }
                Ok(_) => {
                    bad(
                        &format!("{key}.bearer_token_file"),
                        format!("{}: empty or not printable ASCII", p.display()),
                    );
                    return None;
                }
                Err(e) => {
                    bad(
                        &format!("{key}.bearer_token_file"),
                        format!("{}: {e}", p.display()),
                    );
                    return None;
                }
            }
        }
    };
    let client_cert = match (&raw.client_cert_file, &raw.client_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            let key_path = resolve(k);
            let cert = read_pem_certs(&resolve(c));
            let private = std::fs::read(&key_path)
                .map_err(|e| format!("{}: {e}", key_path.display()))
                .and_then(|pem| {
                    ureq::tls::PrivateKey::from_pem(&pem)
                        .map(|k| k.to_owned())
                        .map_err(|e| format!("{}: {e}", key_path.display()))
                });
            match (cert, private) {
                (Ok(chain), Ok(pk)) => Some(ureq::tls::ClientCert::new_with_certs(&chain, pk)),
                (Err(e), _) | (_, Err(e)) => {
                    bad(&format!("{key}.client_cert_file"), e);
                    return None;
                }
            }
        }
        _ => {
            bad(
                key,
                "client_cert_file and client_key_file go together".into(),
            );
            return None;
        }
    };
    if bearer.is_none() && client_cert.is_none() {
        bad(
            key,
            "an http source needs bearer_token_file or client_cert_file (the portal must know it is Varco asking)".into(),
        );
        return None;
    }
    let mut tls = ureq::tls::TlsConfig::builder().client_cert(client_cert);
    if let Some(ca) = &raw.ca_file {
        match read_pem_certs(&resolve(ca)) {
            Ok(roots) => tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&roots)),
            Err(e) => {
                bad(&format!("{key}.ca_file"), e);
                return None;
            }
        }
    }
    let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(100..=30_000).contains(&timeout_ms) {
        bad(&format!("{key}.timeout_ms"), "from 100 to 30000".into());
    }
    let limits = AnswerLimits {
        max_bytes: raw.max_bytes.unwrap_or(AnswerLimits::default().max_bytes),
        max_records: raw
            .max_records
            .unwrap_or(AnswerLimits::default().max_records),
        ..AnswerLimits::default()
    };
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(timeout_ms)))
        .http_status_as_error(false)
        // The configured URL is the one trusted with the token: never follow elsewhere.
        .max_redirects(0)
        .user_agent("varco-represent")
        .tls_config(tls.build())
        .build();
    let cache_seconds = raw.cache_seconds.unwrap_or(DEFAULT_CACHE_SECONDS);
    Some(HttpSource {
        id: raw.id.clone(),
        fetcher: Arc::new(Fetcher {
            url: url.clone(),
            bearer,
            agent: ureq::Agent::new_with_config(config),
            max_bytes: limits.max_bytes,
        }),
        verifier: Answer::http(&raw.id, limits),
        cache: super::source::answer_cache_at(Duration::from_secs(cache_seconds.max(1))),
        cache_seconds,
    })
}

fn classify(e: &ureq::Error) -> &'static str {
    match e {
        ureq::Error::Timeout(_) => "timeout",
        ureq::Error::BodyExceedsLimit(_) => "too_large",
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => "timeout",
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed | ureq::Error::Tls(_) => {
            "connect"
        }
        ureq::Error::Io(_) => "connect",
        _ => "io",
    }
}

/// What one GET needs, shared with the blocking thread that runs it.
struct Fetcher {
    url: String,
    bearer: Option<String>,
    agent: ureq::Agent,
    max_bytes: usize,
}

impl Fetcher {
    /// One GET, blocking.
    fn fetch(&self, delegate: &str) -> Result<Vec<u8>, SourceError> {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{sep}delegate={}",
            self.url,
            crate::leaf::form::encode(delegate)
        );
        let fail = |e: ureq::Error| SourceError::Unavailable {
            reason: classify(&e),
            detail: e.to_string(),
        };
        let mut req = self.agent.get(&url).header("accept", "application/json");
        if let Some(t) = &self.bearer {
            req = req.header("authorization", &format!("Bearer {t}"));
        }
        let mut resp = req.call().map_err(fail)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(SourceError::Unavailable {
                reason: "status",
                detail: format!("HTTP status {status}"),
            });
        }
        resp.body_mut()
            .with_config()
            .limit(self.max_bytes as u64)
            .read_to_vec()
            .map_err(fail)
    }
}

impl RepresentationSource for HttpSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> SourceKind {
        SourceKind::HttpJson
    }

    fn lookup<'a>(&'a self, delegate: &'a Principal, now: u64) -> Lookup<'a> {
        Box::pin(async move {
            if let Some((at, reps)) = self.cache.get(&delegate.sub) {
                if now >= at && now < at.saturating_add(self.cache_seconds) {
                    return Ok(reps);
                }
            }
            let fetcher = self.fetcher.clone();
            let sub = delegate.sub.clone();
            let body = tokio::task::spawn_blocking(move || fetcher.fetch(&sub))
                .await
                .map_err(|e| SourceError::Unavailable {
                    reason: "io",
                    detail: e.to_string(),
                })??;
            let reps = self
                .verifier
                .verify(
                    AnswerInput::Body {
                        delegate: &delegate.sub,
                        bytes: &body,
                    },
                    now,
                )
                .map_err(SourceError::Refused)?;
            let reps = Arc::new(reps);
            self.cache.insert(delegate.sub.clone(), (now, reps.clone()));
            Ok(reps)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;

    const DELEGATE: &str = "TINIT-BNCGNN80A01F205W";
    const NOW: u64 = 1_795_000_000;

    struct Ca {
        pem: String,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str) -> Ca {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf for `names` signed by `by`: (certificate PEM, key PEM).
    fn leaf(by: &Ca, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let params =
            CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
                .unwrap();
        let cert = params.signed_by(&key, &by.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// The portal's API over TLS, requiring a client certificate from `clients`; answers
    /// one delegation for whoever is asked about. Returns its port.
    fn portal(server: &(String, String), clients: &Ca) -> u16 {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(clients.pem.as_bytes()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain = vec![CertificateDer::from_pem_slice(server.0.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(server.1.as_bytes()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for sock in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, sock);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match tls.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let body = serde_json::json!({"representations": [{
                    "ref": "D-1", "type": "delegation", "delegate": DELEGATE,
                    "represented": {"person": {"fiscal_code": "VRDLGU60M01L219V"}},
                    "services": ["tributi"], "not_before": NOW - 60, "not_after": NOW + 60}]})
                .to_string();
                let _ = write!(
                    tls,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.flush();
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        port
    }

    fn source(dir: &Path, port: u16, client: Option<&(String, String)>) -> HttpSource {
        let mut toml_text = format!(
            "id = \"api\"\nkind = \"http\"\nurl = \"https://127.0.0.1:{port}/r\"\n\
             ca_file = \"ca.pem\"\nbearer_token_file = \"token\"\ncache_seconds = 0\n"
        );
        if let Some((cert, key)) = client {
            std::fs::write(dir.join("client.pem"), cert).unwrap();
            std::fs::write(dir.join("client.key"), key).unwrap();
            toml_text
                .push_str("client_cert_file = \"client.pem\"\nclient_key_file = \"client.key\"\n");
        }
        let raw: RawSource = toml::from_str(&toml_text).unwrap();
        let mut problems = Vec::new();
        let d = dir.to_owned();
        let s = validate(&raw, "represent.source[0]", &|p| d.join(p), &mut |k, m| {
            problems.push(format!("{k}: {m}"));
        });
        assert!(problems.is_empty(), "{problems:?}");
        s.unwrap()
    }

    fn who() -> Principal {
        identity::normalize(
            vec![("fiscalNumber".to_owned(), vec![DELEGATE.to_owned()])],
            &identity::Source {
                method: identity::Method::Spid,
                idp: "i",
                level: identity::SPID_L2,
                auth_time: NOW,
                session_id: "s",
            },
            &identity::Mapping::default(),
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn mtls_client_certificate_is_presented_and_required() {
        let dir = std::env::temp_dir().join(format!("varco-represent-mtls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let server_ca = ca("Portale server CA");
        let client_ca = ca("Portale client CA");
        std::fs::write(dir.join("ca.pem"), &server_ca.pem).unwrap();
        std::fs::write(dir.join("token"), "t0ken\n").unwrap();
        let port = portal(&leaf(&server_ca, &["127.0.0.1"]), &client_ca);

        let good = source(&dir, port, Some(&leaf(&client_ca, &["varco"])));
        let reps = good.lookup(&who(), NOW).await.unwrap();
        assert_eq!(reps.len(), 1);
        assert!(reps.by_reference("D-1").is_some());

        // No client certificate, or one from another CA: the portal refuses the handshake,
        // and the lookup fails closed.
        let stranger = ca("Someone else");
        for s in [
            source(&dir, port, None),
            source(&dir, port, Some(&leaf(&stranger, &["varco"]))),
        ] {
            match s.lookup(&who(), NOW).await {
                Err(SourceError::Unavailable { reason, .. }) => {
                    assert!(matches!(reason, "connect" | "io"), "{reason}");
                }
                other => panic!("{:?}", other.map(|r| r.len())),
            }
        }
    }
}
