//! Login with a CNS smart card (Carta Nazionale dei Servizi, DPR 117/2004): a TLS client
//! certificate, verified here against the configured CNS issuers, becomes a normal Varco
//! session with method `cns`.
//!
//! Two ways for the certificate to arrive at `GET /cns/login?return_to=…`:
//! - **TLS terminated by Varco** on a dedicated listener (`[cns] listen`): rustls asks for a
//!   client certificate on that listener only, checks that the client holds its private key
//!   (the handshake signature), and hands the presented chain to the handler. The chain is
//!   *not* judged during the handshake, so a refused card gets a page with a code instead
//!   of a TLS alert the browser cannot explain.
//! - **Forwarded by nginx** (`[cns] header`): nginx terminates TLS with `ssl_verify_client
//!   optional_no_ca` (or `on`) and passes `$ssl_client_escaped_cert` (URL-encoded PEM) in a
//!   header, which is believed only from `[cns] trusted_proxies`. nginx's own verdict is not
//!   used: the chain is verified here exactly as in the first mode.
//!
//! [`verify`] is the whole decision, pure (chain bytes, trust, time in; identity or a typed
//! error out): the chain to a configured CNS issuer with rustls-webpki (signatures,
//! validity at the injected time of every certificate, basic constraints, extended key usage
//! `clientAuth` when present, CRLs when configured), then on the end-entity certificate with
//! x509-parser: key usage `digitalSignature`, and the CNS subject profile (the fiscal code
//! before the `/` of the commonName, cross-checked with `serialNumber` and `dnQualifier`
//! when they carry one; the check character validated by the identity crate).
//!
//! Why rustls-webpki for the chain, rather than x509-parser + ring by hand: it is already in
//! the tree (rustls uses it), it is maintained by the rustls team, fuzzed, and does path
//! building with the checks that are easy to get wrong by hand (basic constraints, path
//! length, name chaining, CRL signatures and scopes). It does not read key usage or subject
//! attributes, so x509-parser (already used by `xmldsig`) reads those.
//!
//! This module is the configuration and the decision; the `/cns/login` route is
//! `routes::cns`, and the TLS listener `server::serve_tls`. May import: the leaf and
//! `features::access`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use serde::Deserialize;
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, KeyUsage, OwnedCertRevocationList,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::oid_registry::{
    OID_X509_COMMON_NAME, OID_X509_DN_QUALIFIER, OID_X509_GIVEN_NAME, OID_X509_SERIALNUMBER,
    OID_X509_SURNAME,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::features::access::Network;
use crate::leaf::clock::unix;

/// Longest chain accepted (end entity plus intermediates).
const MAX_CHAIN: usize = 6;
/// Largest accepted certificate (DER).
const MAX_CERT_BYTES: usize = 16 * 1024;
/// Largest accepted header value (URL-encoded PEM of the end-entity certificate).
const MAX_HEADER_BYTES: usize = 48 * 1024;
/// How long a client may take to finish the TLS handshake on the CNS listener.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

// === Configuration ===

/// `[cns]` as the file says it (docs/OPERATIONS.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCns {
    ca_file: PathBuf,
    #[serde(default)]
    crl_files: Vec<PathBuf>,
    listen: Option<String>,
    public_url: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    header: Option<String>,
    #[serde(default = "default_trusted_proxies")]
    trusted_proxies: Vec<String>,
    #[serde(default = "default_verify_header")]
    verify_header: String,
    #[serde(default = "default_secret_header")]
    secret_header: String,
    secret_file: Option<PathBuf>,
}

fn default_verify_header() -> String {
    "X-Client-Verify".into()
}

fn default_secret_header() -> String {
    "X-Varco-Cns-Secret".into()
}

/// Shortest accepted proxy secret (bytes, after trimming): 128 bits as hex.
const MIN_SECRET_BYTES: usize = 32;

/// SHA-256 of a secret: compared digest to digest, so the comparison takes the same time
/// whatever the lengths and wherever the first difference lies.
fn secret_digest(secret: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn default_trusted_proxies() -> Vec<String> {
    vec!["127.0.0.1".into(), "::1".into()]
}

/// The CNS issuers and their revocation lists.
pub struct Trust {
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    crls: Vec<CertRevocationList<'static>>,
}

impl Trust {
    /// Trust in the certificates of a PEM bundle (each a CNS issuer), with optional CRLs
    /// (DER or PEM). Every certificate must parse; an empty bundle is an error.
    pub fn from_pem(bundle: &[u8], crls: &[Vec<u8>]) -> Result<Trust, String> {
        let mut anchors = Vec::new();
        for (i, cert) in CertificateDer::pem_slice_iter(bundle).enumerate() {
            let cert = cert.map_err(|e| format!("certificate {}: {e}", i + 1))?;
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| format!("certificate {}: {e}", i + 1))?;
            anchors.push(anchor.to_owned());
        }
        if anchors.is_empty() {
            return Err("no PEM certificate in the bundle".into());
        }
        let mut lists = Vec::new();
        for (i, bytes) in crls.iter().enumerate() {
            let der = match CertificateRevocationListDer::from_pem_slice(bytes) {
                Ok(d) => d.as_ref().to_vec(),
                Err(_) => bytes.clone(),
            };
            let crl = OwnedCertRevocationList::from_der(&der)
                .map_err(|e| format!("CRL {}: {e}", i + 1))?;
            lists.push(CertRevocationList::from(crl));
        }
        Ok(Trust {
            anchors,
            crls: lists,
        })
    }

    /// The subjects of the trust anchors (DER, without the outer SEQUENCE).
    fn subjects(&self) -> impl Iterator<Item = &[u8]> {
        self.anchors.iter().map(|a| a.subject.as_ref())
    }
}

/// The TLS listener of the first mode.
pub struct TlsListen {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The URL browsers use to reach it (`https://host:port`, no trailing slash).
    pub public_url: String,
    /// rustls configuration: our server certificate, client certificates requested.
    pub server: Arc<rustls::ServerConfig>,
}

/// The forwarded-header mode.
pub struct HeaderMode {
    /// Header carrying `$ssl_client_escaped_cert`.
    pub name: HeaderName,
    /// Peers whose header is believed.
    pub trusted_proxies: Vec<Network>,
    /// Header carrying the proxy's verdict on the TLS client authentication
    /// (`$ssl_client_verify`); only `SUCCESS` lets the certificate be judged.
    pub verify: HeaderName,
    /// Header carrying the shared secret that proves the request passed the proxy's CNS
    /// location (not a generic one that forwards client headers).
    pub secret_header: HeaderName,
    secret: [u8; 32],
}

impl HeaderMode {
    /// The proxy's proof, checked before the certificate is looked at: the shared secret
    /// (compared in constant time) and then the verification verdict. A certificate alone is
    /// public; only a proxy that verified the TLS handshake (the key's possession) may
    /// vouch for it.
    pub fn check_proof(&self, headers: &hyper::HeaderMap) -> Result<(), CnsError> {
        let mut secrets = headers.get_all(&self.secret_header).iter();
        let (Some(given), None) = (secrets.next(), secrets.next()) else {
            return Err(CnsError::ProxyUnproven);
        };
        let given = secret_digest(given.as_bytes());
        let differs = given
            .iter()
            .zip(self.secret.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if differs != 0 {
            return Err(CnsError::ProxyUnproven);
        }
        let mut verdicts = headers.get_all(&self.verify).iter();
        match (verdicts.next(), verdicts.next()) {
            (Some(v), None) if v.as_bytes() == b"SUCCESS" => Ok(()),
            _ => Err(CnsError::ProxyNotVerified),
        }
    }
}

/// The validated `[cns]` table.
pub struct Cns {
    /// Each CRL file's `nextUpdate`: (configuration key, file, Unix seconds).
    pub crl_next_update: Vec<(String, String, i64)>,
    /// The CNS issuers.
    pub trust: Trust,
    /// Mode (a), when configured.
    pub tls: Option<TlsListen>,
    /// Mode (b), when configured.
    pub header: Option<HeaderMode>,
}

impl Cns {
    /// Where the login page sends a CNS login: the TLS listener, else this host.
    pub fn login_url(&self, public_base_url: &str, return_to: &str) -> String {
        let query = crate::leaf::form::encode(return_to);
        match &self.tls {
            Some(t) => {
                // On another origin a local path would be relative to the CNS listener.
                let absolute = if return_to.starts_with('/') {
                    format!("{public_base_url}{return_to}")
                } else {
                    return_to.to_owned()
                };
                let q = crate::leaf::form::encode(&absolute);
                format!("{}/cns/login?return_to={q}", t.public_url)
            }
            None => format!("/cns/login?return_to={query}"),
        }
    }
}

/// A CRL's `nextUpdate` (Unix seconds), PEM or DER; `None` when it has none or does not
/// parse (then [`Trust::from_pem`] reports it).
fn next_update(bytes: &[u8]) -> Option<i64> {
    let der = match CertificateRevocationListDer::from_pem_slice(bytes) {
        Ok(d) => d.as_ref().to_vec(),
        Err(_) => bytes.to_vec(),
    };
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&der).ok()?;
    crl.next_update().map(|t| t.timestamp())
}

/// Validates `[cns]`; problems go to `bad` with their key.
pub(crate) fn validate(
    raw: &RawCns,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Cns> {
    let bundle = std::fs::read(resolve(&raw.ca_file))
        .map_err(|e| bad("cns.ca_file", format!("{}: {e}", raw.ca_file.display())))
        .ok();
    let mut crls = Vec::new();
    let mut crl_next_update = Vec::new();
    for (i, f) in raw.crl_files.iter().enumerate() {
        match std::fs::read(resolve(f)) {
            Ok(b) => {
                if let Some(t) = next_update(&b) {
                    crl_next_update.push((
                        format!("cns.crl_files[{i}]"),
                        f.display().to_string(),
                        t,
                    ));
                }
                crls.push(b)
            }
            Err(e) => bad(
                &format!("cns.crl_files[{i}]"),
                format!("{}: {e}", f.display()),
            ),
        }
    }
    let trust = bundle.and_then(|b| {
        Trust::from_pem(&b, &crls)
            .map_err(|e| bad("cns.ca_file", format!("{}: {e}", raw.ca_file.display())))
            .ok()
    });
    if raw.listen.is_none() && raw.header.is_none() {
        bad(
            "cns",
            "set listen (Varco terminates TLS) or header (a proxy forwards the certificate), or both"
                .into(),
        );
    }
    let tls = match &raw.listen {
        None => {
            for (key, set) in [
                ("cns.public_url", raw.public_url.is_some()),
                ("cns.cert_file", raw.cert_file.is_some()),
                ("cns.key_file", raw.key_file.is_some()),
            ] {
                if set {
                    bad(key, "only with cns.listen".into());
                }
            }
            None
        }
        Some(listen) => {
            let addr = listen
                .parse::<SocketAddr>()
                .map_err(|e| bad("cns.listen", format!("{e} (expected host:port)")))
                .ok();
            let public_url = raw
                .public_url
                .as_deref()
                .map(|u| u.trim_end_matches('/').to_owned());
            match &public_url {
                Some(u) if u.starts_with("https://") && u.len() > 8 && !u[8..].contains('/') => {}
                _ => bad(
                    "cns.public_url",
                    "required with cns.listen: https://host[:port], no path".into(),
                ),
            }
            let server = match (&raw.cert_file, &raw.key_file, &trust) {
                (Some(c), Some(k), Some(t)) => server_config(&resolve(c), &resolve(k), t)
                    .map_err(|e| bad("cns.cert_file", e))
                    .ok(),
                (c, k, _) => {
                    if c.is_none() {
                        bad("cns.cert_file", "required with cns.listen".into());
                    }
                    if k.is_none() {
                        bad("cns.key_file", "required with cns.listen".into());
                    }
                    None
                }
            };
            match (addr, public_url, server) {
                (Some(listen), Some(public_url), Some(server)) => Some(TlsListen {
                    listen,
                    public_url,
                    server,
                }),
                _ => None,
            }
        }
    };
    let header = match &raw.header {
        None => None,
        Some(name) => {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad("cns.header", format!("{name:?} is not a header name")))
                .ok();
            let mut proxies = Vec::new();
            for (i, p) in raw.trusted_proxies.iter().enumerate() {
                match Network::parse(p) {
                    Some(n) => proxies.push(n),
                    None => bad(
                        &format!("cns.trusted_proxies[{i}]"),
                        format!("{p:?}: expected an IP address or CIDR"),
                    ),
                }
            }
            if proxies.is_empty() {
                bad(
                    "cns.trusted_proxies",
                    "must name the proxy that forwards the certificate".into(),
                );
            }
            let mut header_name = |key: &str, value: &str| {
                HeaderName::from_bytes(value.as_bytes())
                    .map_err(|_| bad(key, format!("{value:?} is not a header name")))
                    .ok()
            };
            let verify = header_name("cns.verify_header", &raw.verify_header);
            let secret_header = header_name("cns.secret_header", &raw.secret_header);
            // A certificate is public: without a secret only the configured proxy knows,
            // any location that forwards client headers would let anyone log in as anyone.
            let secret = match &raw.secret_file {
                None => {
                    bad(
                        "cns.secret_file",
                        "required with cns.header: the secret the proxy sends in cns.secret_header"
                            .into(),
                    );
                    None
                }
                Some(f) => match std::fs::read(resolve(f)) {
                    Err(e) => {
                        bad("cns.secret_file", format!("{}: {e}", f.display()));
                        None
                    }
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes);
                        let secret = text.trim();
                        if secret.len() < MIN_SECRET_BYTES || HeaderValue::from_str(secret).is_err()
                        {
                            bad(
                                "cns.secret_file",
                                format!(
                                    "{}: at least {MIN_SECRET_BYTES} printable characters (e.g. openssl rand -hex 32)",
                                    f.display()
                                ),
                            );
                            None
                        } else {
                            Some(secret_digest(secret.as_bytes()))
                        }
                    }
                },
            };
            match (name, verify, secret_header, secret) {
                (Some(name), Some(verify), Some(secret_header), Some(secret)) => Some(HeaderMode {
                    name,
                    trusted_proxies: proxies,
                    verify,
                    secret_header,
                    secret,
                }),
                _ => None,
            }
        }
    };
    let trust = trust?;
    if raw.listen.is_some() && tls.is_none() || raw.header.is_some() && header.is_none() {
        return None;
    }
    Some(Cns {
        trust,
        tls,
        header,
        crl_next_update,
    })
}

/// The rustls configuration of the CNS listener: our certificate and key, client
/// certificates requested (optional) with the CNS issuers as hints, judged later by [`verify`].
fn server_config(
    cert: &Path,
    key: &Path,
    trust: &Trust,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(PossessionOnly {
        hints: trust
            .subjects()
            .map(rustls::DistinguishedName::in_sequence)
            .collect(),
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client-certificate verifier that checks only that the client holds the private key of
/// the certificate it presents (the handshake signature), and accepts any chain: the chain is
/// judged by [`verify`] in the request handler, against the injected clock, with a page and
/// a stable code for every refusal. Nothing but `/cns/login` is served on this listener.
#[derive(Debug)]
struct PossessionOnly {
    hints: Vec<rustls::DistinguishedName>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::server::danger::ClientCertVerifier for PossessionOnly {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

// === The decision ===

/// Why a CNS certificate was refused. Every variant has a stable [`CnsError::code`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CnsError {
    /// No client certificate was presented (or forwarded).
    NoCertificate,
    /// The certificate (or the header carrying it) could not be decoded.
    BadCertificate,
    /// The chain does not lead to a configured CNS issuer (unknown issuer, bad signature,
    /// CA certificate used as a card, unsupported algorithm…).
    UntrustedChain,
    /// A certificate of the chain is past its `notAfter`.
    Expired,
    /// A certificate of the chain is before its `notBefore`.
    NotYetValid,
    /// The certificate is on a configured CRL.
    Revoked,
    /// A CRL is needed and missing, or past its `nextUpdate`.
    RevocationUnknown,
    /// Key usage without `digitalSignature`, or an extended key usage without `clientAuth`.
    KeyUsage,
    /// The subject does not follow the CNS profile.
    BadSubject,
    /// The fiscal code in the subject is malformed or its check character is wrong.
    BadFiscalCode,
    /// A forwarded certificate came from a peer that is not a trusted proxy.
    UntrustedProxy,
    /// A forwarded certificate came without the proxy's shared secret (or a wrong one).
    ProxyUnproven,
    /// The proxy's verification verdict is not `SUCCESS` (or absent, or repeated).
    ProxyNotVerified,
}

impl CnsError {
    /// Stable code (logs, metrics, pages, audit).
    pub fn code(self) -> &'static str {
        match self {
            CnsError::NoCertificate => "cns.no_certificate",
            CnsError::BadCertificate => "cns.bad_certificate",
            CnsError::UntrustedChain => "cns.untrusted_chain",
            CnsError::Expired => "cns.expired",
            CnsError::NotYetValid => "cns.not_yet_valid",
            CnsError::Revoked => "cns.revoked",
            CnsError::RevocationUnknown => "cns.revocation_unknown",
            CnsError::KeyUsage => "cns.key_usage",
            CnsError::BadSubject => "cns.bad_subject",
            CnsError::BadFiscalCode => "cns.bad_fiscal_code",
            CnsError::UntrustedProxy => "cns.untrusted_proxy",
            CnsError::ProxyUnproven => "cns.proxy_unproven",
            CnsError::ProxyNotVerified => "cns.proxy_not_verified",
        }
    }

    /// Every code, for the metrics preset and the docs test.
    pub const ALL: [CnsError; 13] = [
        CnsError::NoCertificate,
        CnsError::BadCertificate,
        CnsError::UntrustedChain,
        CnsError::Expired,
        CnsError::NotYetValid,
        CnsError::Revoked,
        CnsError::RevocationUnknown,
        CnsError::KeyUsage,
        CnsError::BadSubject,
        CnsError::BadFiscalCode,
        CnsError::UntrustedProxy,
        CnsError::ProxyUnproven,
        CnsError::ProxyNotVerified,
    ];

    pub(crate) fn status(self) -> StatusCode {
        match self {
            CnsError::NoCertificate => StatusCode::UNAUTHORIZED,
            CnsError::BadCertificate => StatusCode::BAD_REQUEST,
            _ => StatusCode::FORBIDDEN,
        }
    }

    /// What the citizen reads, Italian then English.
    pub(crate) fn explain(self) -> (&'static str, &'static str) {
        match self {
            CnsError::NoCertificate => (
                "Nessuna carta presentata. Inserisci la CNS nel lettore, riavvia il browser e riprova; quando il browser chiede un certificato, scegli quello della carta.",
                "No card was presented. Insert the CNS card in the reader, restart the browser and try again; when the browser asks for a certificate, choose the card's.",
            ),
            CnsError::BadCertificate => (
                "Il certificato presentato non è leggibile.",
                "The certificate presented cannot be read.",
            ),
            CnsError::UntrustedChain => (
                "Il certificato non è stato emesso da un ente certificatore CNS accettato da questo servizio.",
                "The certificate was not issued by a CNS certification authority this service accepts.",
            ),
            CnsError::Expired => (
                "La carta è scaduta: rinnovala presso l'ente che l'ha rilasciata, oppure entra con SPID o CIE.",
                "The card has expired: renew it with the body that issued it, or sign in with SPID or CIE.",
            ),
            CnsError::NotYetValid => (
                "Il certificato della carta non è ancora valido. Controlla la data del computer o riprova più tardi.",
                "The card's certificate is not valid yet. Check the computer's date or try again later.",
            ),
            CnsError::Revoked => (
                "Il certificato della carta è stato revocato.",
                "The card's certificate has been revoked.",
            ),
            CnsError::RevocationUnknown => (
                "Non è possibile verificare ora se il certificato è stato revocato; riprova più tardi.",
                "Whether the certificate was revoked cannot be checked now; please try again later.",
            ),
            CnsError::KeyUsage => (
                "Il certificato presentato non è un certificato di autenticazione: scegli il certificato di autenticazione della carta.",
                "The certificate presented is not an authentication certificate: choose the card's authentication certificate.",
            ),
            CnsError::BadSubject | CnsError::BadFiscalCode => (
                "Il certificato non riporta un codice fiscale valido nel formato CNS.",
                "The certificate does not carry a valid fiscal code in the CNS format.",
            ),
            CnsError::UntrustedProxy | CnsError::ProxyUnproven => (
                "La richiesta non è arrivata attraverso il percorso previsto.",
                "The request did not arrive through the expected path.",
            ),
            CnsError::ProxyNotVerified => (
                "La carta non è stata verificata durante la connessione sicura. Riavvia il browser e riprova; quando il browser chiede un certificato, scegli quello della carta.",
                "The card was not verified during the secure connection. Restart the browser and try again; when the browser asks for a certificate, choose the card's.",
            ),
        }
    }
}

impl std::fmt::Display for CnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl std::error::Error for CnsError {}

/// What a verified CNS certificate says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CnsIdentity {
    /// The 16-character fiscal code, check character validated.
    pub fiscal_code: String,
    /// `givenName`, when the subject has one.
    pub given_name: Option<String>,
    /// `surname`, when the subject has one.
    pub family_name: Option<String>,
    /// The issuer's distinguished name (RFC 4514 string).
    pub issuer: String,
    /// The certificate serial number, hex with `:` separators.
    pub serial: String,
}

/// Verifies a presented chain (end entity first) at `now` and reads the identity.
pub fn verify(
    trust: &Trust,
    chain: &[CertificateDer<'_>],
    now: SystemTime,
) -> Result<CnsIdentity, CnsError> {
    let Some(leaf_der) = chain.first() else {
        return Err(CnsError::NoCertificate);
    };
    if chain.len() > MAX_CHAIN || chain.iter().any(|c| c.as_ref().len() > MAX_CERT_BYTES) {
        return Err(CnsError::BadCertificate);
    }
    let (rest, leaf) =
        X509Certificate::from_der(leaf_der.as_ref()).map_err(|_| CnsError::BadCertificate)?;
    if !rest.is_empty() {
        return Err(CnsError::BadCertificate);
    }
    let end_entity = EndEntityCert::try_from(leaf_der).map_err(|_| CnsError::BadCertificate)?;
    let intermediates = &chain[1..];
    let crl_refs: Vec<&CertRevocationList<'_>> = trust.crls.iter().collect();
    let revocation = RevocationOptionsBuilder::new(&crl_refs).ok().map(|b| {
        b.with_depth(RevocationCheckDepth::EndEntity)
            .with_status_policy(UnknownStatusPolicy::Deny)
            .with_expiration_policy(ExpirationPolicy::Enforce)
            .build()
    });
    let at = |t: SystemTime| {
        UnixTime::since_unix_epoch(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
    };
    let chain_at = |t: SystemTime, revocation| {
        end_entity.verify_for_usage(
            ALGORITHMS,
            &trust.anchors,
            intermediates,
            at(t),
            KeyUsage::client_auth(),
            revocation,
            None,
        )
    };
    match chain_at(now, revocation) {
        Ok(_) => {}
        Err(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }) => {
            // A date problem is reported only for a chain that is otherwise trusted: the same
            // chain is checked again at a moment inside the card's validity. A forged card
            // stays `untrusted_chain` whatever dates it carries.
            let not_before = leaf.validity().not_before.timestamp();
            let not_after = leaf.validity().not_after.timestamp();
            let inside = SystemTime::UNIX_EPOCH
                + Duration::from_secs(u64::try_from(not_before.max(0)).unwrap_or(0));
            if chain_at(inside, None).is_err() {
                return Err(CnsError::UntrustedChain);
            }
            let now_s = i64::try_from(unix(now)).unwrap_or(i64::MAX);
            return Err(if now_s < not_before {
                CnsError::NotYetValid
            } else if now_s > not_after {
                CnsError::Expired
            } else {
                // The card is in its validity; an intermediate is not.
                CnsError::Expired
            });
        }
        Err(webpki::Error::CertRevoked) => return Err(CnsError::Revoked),
        Err(webpki::Error::UnknownRevocationStatus | webpki::Error::CrlExpired { .. }) => {
            return Err(CnsError::RevocationUnknown);
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(_)) => {
            return Err(CnsError::KeyUsage);
        }
        Err(_) => return Err(CnsError::UntrustedChain),
    }
    // Key usage: the CNS authentication certificate carries digitalSignature; a certificate
    // without the extension, or without that bit (an encryption or signing-only certificate),
    // is not one.
    match leaf.key_usage() {
        Ok(Some(ku)) if ku.value.digital_signature() => {}
        Ok(_) => return Err(CnsError::KeyUsage),
        Err(_) => return Err(CnsError::BadCertificate),
    }
    let subject = read_subject(&leaf)?;
    Ok(CnsIdentity {
        fiscal_code: subject.fiscal_code,
        given_name: subject.given_name,
        family_name: subject.family_name,
        issuer: leaf.issuer().to_string(),
        serial: leaf.raw_serial_as_string(),
    })
}

/// Signature algorithms accepted in a CNS chain (ring): RSA PKCS#1 and PSS with SHA-2 (2048
/// bits and more), ECDSA P-256/P-384, Ed25519. SHA-1 is refused.
static ALGORITHMS: &[&dyn rustls::pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    webpki::ring::RSA_PKCS1_3072_8192_SHA384,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
];

struct Subject {
    fiscal_code: String,
    given_name: Option<String>,
    family_name: Option<String>,
}

/// The CNS subject profile (DM 9 dicembre 2004, technical rules of the CNS; CNIPA guidelines
/// for issuing the CNS): `commonName` is `<fiscal code>/<card identifier>[…]`; the fiscal code
/// may be repeated in `serialNumber` (bare, `TINIT-` or `IT:` prefixed, as qualified
/// certificates do) or `dnQualifier`; `givenName` and `surname` name the holder.
///
/// Refused: no or several `commonName`, a `commonName` without `/` or with an empty part,
/// characters outside printable ASCII in it, any of the read attributes repeated or not a
/// string, control characters in the names, and a fiscal-code-shaped `serialNumber` or
/// `dnQualifier` that names someone else.
fn read_subject(cert: &X509Certificate<'_>) -> Result<Subject, CnsError> {
    let mut cn = None;
    let mut serial = None;
    let mut qualifier = None;
    let mut given = None;
    let mut family = None;
    for attr in cert.subject().iter_attributes() {
        let slot = match attr.attr_type() {
            t if *t == OID_X509_COMMON_NAME => &mut cn,
            t if *t == OID_X509_SERIALNUMBER => &mut serial,
            t if *t == OID_X509_DN_QUALIFIER => &mut qualifier,
            t if *t == OID_X509_GIVEN_NAME => &mut given,
            t if *t == OID_X509_SURNAME => &mut family,
            _ => continue,
        };
        if slot.is_some() {
            return Err(CnsError::BadSubject);
        }
        let value = attr.as_str().map_err(|_| CnsError::BadSubject)?;
        if value.is_empty() || value.len() > 256 || value.chars().any(char::is_control) {
            return Err(CnsError::BadSubject);
        }
        *slot = Some(value.to_owned());
    }
    let cn = cn.ok_or(CnsError::BadSubject)?;
    if !cn.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(CnsError::BadSubject);
    }
    let mut parts = cn.split('/');
    let code = parts.next().unwrap_or("");
    let card: Vec<&str> = parts.collect();
    if code.is_empty() || card.is_empty() || card.iter().any(|p| p.is_empty()) {
        return Err(CnsError::BadSubject);
    }
    if code.len() != 16 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(CnsError::BadSubject);
    }
    let fiscal_code = identity::normalize_fiscal_code(code).map_err(|_| CnsError::BadFiscalCode)?;
    if fiscal_code != code {
        // Lower case in a CNS commonName is not the profile.
        return Err(CnsError::BadSubject);
    }
    for other in [serial.as_deref(), qualifier.as_deref()]
        .into_iter()
        .flatten()
    {
        let bare = other
            .strip_prefix("TINIT-")
            .or_else(|| other.strip_prefix("IT:"))
            .unwrap_or(other);
        let shaped = bare.len() == 16 && bare.bytes().all(|b| b.is_ascii_alphanumeric());
        if shaped && !bare.eq_ignore_ascii_case(&fiscal_code) {
            return Err(CnsError::BadSubject);
        }
    }
    Ok(Subject {
        fiscal_code,
        given_name: given,
        family_name: family,
    })
}

/// The certificate in a forwarded header: `$ssl_client_escaped_cert`, a URL-encoded PEM
/// (end entity only). Anything else is [`CnsError::BadCertificate`].
pub fn from_header(value: &[u8]) -> Result<CertificateDer<'static>, CnsError> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(CnsError::BadCertificate);
    }
    let decoded: Vec<u8> = crate::leaf::form::decode(value, crate::leaf::form::Mode::Strict)
        .ok_or(CnsError::BadCertificate)?;
    let mut certs = CertificateDer::pem_slice_iter(&decoded);
    let first = certs
        .next()
        .ok_or(CnsError::BadCertificate)?
        .map_err(|_| CnsError::BadCertificate)?;
    if certs.next().is_some() {
        return Err(CnsError::BadCertificate);
    }
    Ok(first)
}

// === The route ===

/// The chain a client presented on the CNS TLS listener, put in each request's extensions.
/// Its presence is what marks a request as arriving on that listener.
#[derive(Clone, Debug)]
pub struct TlsClient(pub Arc<Vec<CertificateDer<'static>>>);

/// Whether the CNS listener serves `path` (everything else is 404 there).
pub fn served_on_tls(path: &str) -> bool {
    path == "/cns/login" || path == "/healthz" || path.starts_with("/assets/")
}

#[cfg(test)]
mod proof_tests {
    use super::*;

    fn mode() -> HeaderMode {
        HeaderMode {
            name: HeaderName::from_static("x-client-cert"),
            trusted_proxies: Vec::new(),
            verify: HeaderName::from_static("x-client-verify"),
            secret_header: HeaderName::from_static("x-varco-cns-secret"),
            secret: secret_digest(b"the-proxy-secret-0123456789abcdef"),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> hyper::HeaderMap {
        let mut h = hyper::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    const SECRET: (&str, &str) = ("x-varco-cns-secret", "the-proxy-secret-0123456789abcdef");
    const SUCCESS: (&str, &str) = ("x-client-verify", "SUCCESS");

    #[test]
    fn the_secret_and_a_success_verdict_are_both_needed() {
        let m = mode();
        assert_eq!(m.check_proof(&headers(&[SECRET, SUCCESS])), Ok(()));
        for (case, expected) in [
            (vec![SUCCESS], CnsError::ProxyUnproven),
            (
                vec![
                    ("x-varco-cns-secret", "the-proxy-secret-0123456789abcdeF"),
                    SUCCESS,
                ],
                CnsError::ProxyUnproven,
            ),
            (
                vec![
                    ("x-varco-cns-secret", "the-proxy-secret-0123456789abcde"),
                    SUCCESS,
                ],
                CnsError::ProxyUnproven,
            ),
            (vec![SECRET, SECRET, SUCCESS], CnsError::ProxyUnproven),
            (vec![SECRET], CnsError::ProxyNotVerified),
            (
                vec![SECRET, ("x-client-verify", "FAILED:unable to get issuer")],
                CnsError::ProxyNotVerified,
            ),
            (
                vec![SECRET, ("x-client-verify", "NONE")],
                CnsError::ProxyNotVerified,
            ),
            (
                vec![SECRET, ("x-client-verify", "success")],
                CnsError::ProxyNotVerified,
            ),
            (vec![SECRET, SUCCESS, SUCCESS], CnsError::ProxyNotVerified),
        ] {
            assert_eq!(m.check_proof(&headers(&case)), Err(expected), "{case:?}");
        }
    }
}
