//! The wallet login (issue 23): Varco as an OpenID4VP 1.0 verifier of the Person
//! Identification Data (PID) held in an EUDI Wallet or the IT-Wallet.
//!
//! - the `[wallet]` table, validated into [`Wallet`]: who we are to the wallet (`client_id`
//!   `x509_hash` with the relying-party access certificate and its key, or
//!   `openid_federation` with our entity id), the DCQL query for the PID claims, the
//!   trusted PID issuers, the status list fetch;
//! - [`pending`]: the requests waiting for a wallet, as records of the login store
//!   (`[store]`: memory or Redis), so any replica can serve each step of a login;
//! - [`trust`]: which key verifies an issuer's signature (configured JWKS, an X.509 trust
//!   list, or an OpenID Federation trust chain resolved by the `[oidc_rp]` fetcher);
//! - [`status`]: the Token Status List fetch (bounded, cached, fail closed);
//! - [`attestation`]: the trusted Wallet Providers and whether a Wallet Attestation is
//!   required (`[wallet.wallet_providers]`).
//!
//! Replicas: the response is encrypted to a fresh P-256 key per request whose private
//! scalar is sealed (the session key's AEAD) into the request's record in the store, and
//! taken from there once by whichever replica the wallet's answer reaches.
//!
//! The claims asked for: `wallet.claims`, or the `wallet_claims` of the `[[route]]` the
//! login returns to ([`Wallet::query_for`]); each one asked must be in the presentation.
//!
//! May import: the leaf. Never `config`, `state`, `routes`, `server` or `cli`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub mod attestation;
pub mod pending;
pub mod status;
pub mod trust;

/// `[wallet]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWallet {
    /// `x509_hash` or `openid_federation`.
    client_id_scheme: String,
    /// PKCS#8 PEM, P-256: signs the request objects.
    signing_key_file: PathBuf,
    /// `x509_hash`: the relying-party access certificate chain, PEM, leaf first.
    certificate_chain_file: Option<PathBuf>,
    /// `openid_federation`: our Entity Identifier (default `server.public_base_url`).
    entity_id: Option<String>,
    /// `openid_federation`: the `kid` of the signing key in our Entity Configuration.
    signing_kid: Option<String>,
    #[serde(default = "default_wallet_url")]
    wallet_url: String,
    #[serde(default = "default_ttl")]
    request_ttl_seconds: u64,
    #[serde(default = "default_max_pending")]
    max_pending: u64,
    #[serde(default = "default_max_pending_bytes")]
    max_pending_bytes: u64,
    /// `dc+sd-jwt` (SD-JWT VC) or `mso_mdoc` (ISO mdoc).
    #[serde(default = "default_format")]
    format: String,
    /// `mso_mdoc`: the document type (also the claims' namespace).
    #[serde(default = "default_doctype")]
    doctype: String,
    #[serde(default = "default_vct")]
    vct: Vec<String>,
    #[serde(default = "default_claims")]
    claims: Vec<String>,
    #[serde(default = "default_true")]
    require_status: bool,
    #[serde(default = "default_kb_max_age")]
    kb_max_age_seconds: u64,
    #[serde(default = "default_skew")]
    clock_skew_seconds: u64,
    #[serde(default)]
    issuer: Vec<trust::RawIssuer>,
    /// PEM CA certificates: issuers whose `x5c` chains to one of them are trusted.
    trust_list_file: Option<PathBuf>,
    #[serde(default)]
    status: status::RawStatus,
    /// Issuers trusted through OpenID Federation (`[wallet.federation]`).
    federation: Option<trust::RawFederation>,
    /// Trusted Wallet Providers and the wallet attestation rule.
    wallet_providers: Option<attestation::RawProviders>,
}

fn default_wallet_url() -> String {
    "openid4vp://".into()
}
fn default_format() -> String {
    "dc+sd-jwt".into()
}
fn default_doctype() -> String {
    "eu.europa.ec.eudi.pid.1".into()
}
fn default_ttl() -> u64 {
    300
}
fn default_max_pending() -> u64 {
    10_000
}
fn default_max_pending_bytes() -> u64 {
    16 << 20
}
fn default_vct() -> Vec<String> {
    vec![
        "urn:eudi:pid:it:1".into(),
        "urn:eudi:pid:1".into(),
        "urn:eu.europa.ec.eudi:pid:1".into(),
    ]
}
fn default_claims() -> Vec<String> {
    ["given_name", "family_name", "birth_date", "tax_id_code"]
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}
fn default_true() -> bool {
    true
}
fn default_kb_max_age() -> u64 {
    300
}
fn default_skew() -> u64 {
    60
}

/// The DCQL credential id of the PID in our requests.
pub const PID_QUERY: &str = "pid";

/// PID claims a principal can be built from; `claims` may only name these.
const KNOWN_CLAIMS: [&str; 8] = [
    "given_name",
    "family_name",
    "birth_date",
    "birthdate",
    "tax_id_code",
    "personal_administrative_number",
    "birth_place",
    "nationalities",
];

/// `[wallet]`, validated.
#[derive(Debug)]
pub struct Wallet {
    /// Signs request objects and opens responses (`openid4vp`).
    pub verifier: openid4vp::Verifier,
    /// Where the same-device flow sends the browser (`openid4vp://`, `haip-vp://`, or a
    /// wallet's universal link).
    pub wallet_url: String,
    /// How long a request stays answerable.
    pub ttl: Duration,
    /// Most requests this replica puts in the store at once.
    pub max_pending: u64,
    /// Most estimated bytes of requests this replica puts in the store at once.
    pub max_pending_bytes: u64,
    /// The PID query's format (SD-JWT VC with the `vct` values, or mdoc).
    pub format: openid4vp::Format,
    /// The PID claims asked for by default (`wallet.claims`).
    pub claims: Vec<String>,
    /// Accepted `vct` values.
    pub vct: Vec<String>,
    /// `mso_mdoc`: the PID document type; `None`: SD-JWT VC.
    pub mdoc_doctype: Option<String>,
    /// Refuse a PID without a status list reference.
    pub require_status: bool,
    /// Oldest KB-JWT accepted, seconds.
    pub kb_max_age: u64,
    /// Clock skew with wallets and issuers, seconds.
    pub skew: u64,
    /// Trusted PID issuers, by configured keys.
    pub issuers: trust::Issuers,
    /// Issuers trusted by X.509 (`x5c` chaining to these anchors).
    pub trust_list: Option<trust::TrustList>,
    /// Issuers trusted through OpenID Federation (chains resolved by the `[oidc_rp]`
    /// federation fetcher).
    pub federation: Option<trust::Federation>,
    /// The status list fetch.
    pub status: status::StatusConfig,
    /// `notAfter` of the relying-party access certificate (`x509_hash`), Unix seconds.
    pub certificate_not_after: Option<i64>,
    /// `[wallet.wallet_providers]` (`None`: no attestation asked for).
    pub providers: Option<attestation::Providers>,
}

fn read_pem_certs(bytes: &[u8]) -> Vec<Vec<u8>> {
    ureq::tls::parse_pem(bytes)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c.der().to_vec()),
            _ => None,
        })
        .collect()
}

fn read_pkcs8(bytes: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(bytes)
        .ok()
        .map(|k| k.secret_pkcs8_der().to_vec())
}

/// Validates `[wallet]`; every problem goes to `bad` (key, message). `public_base_url` is
/// where wallets reach us (must be https: the request and response URIs derive from it).
pub(crate) fn validate(
    raw: &RawWallet,
    public_base_url: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Wallet> {
    let rng = ring::rand::SystemRandom::new();
    if !public_base_url.starts_with("https://") {
        bad(
            "wallet",
            "server.public_base_url must be https: wallets only talk to https verifiers".into(),
        );
        return None;
    }
    let key = std::fs::read(resolve(&raw.signing_key_file))
        .map_err(|e| {
            bad(
                "wallet.signing_key_file",
                format!("{}: {e}", raw.signing_key_file.display()),
            )
        })
        .ok()
        .and_then(|b| {
            let k = read_pkcs8(&b);
            if k.is_none() {
                bad(
                    "wallet.signing_key_file",
                    "no PKCS#8 private key (BEGIN PRIVATE KEY) in the file".into(),
                );
            }
            k
        });
    let mut certificate_not_after = None;
    let client = match raw.client_id_scheme.as_str() {
        "x509_hash" => {
            let Some(file) = &raw.certificate_chain_file else {
                bad(
                    "wallet.certificate_chain_file",
                    "required with client_id_scheme = \"x509_hash\"".into(),
                );
                return None;
            };
            let chain = std::fs::read(resolve(file))
                .map_err(|e| {
                    bad(
                        "wallet.certificate_chain_file",
                        format!("{}: {e}", file.display()),
                    )
                })
                .ok()
                .map(|b| read_pem_certs(&b))
                .unwrap_or_default();
            let Some(leaf) = chain.first() else {
                bad(
                    "wallet.certificate_chain_file",
                    "no certificate in the file".into(),
                );
                return None;
            };
            match x509_parser::parse_x509_certificate(leaf) {
                Ok((_, cert)) => {
                    certificate_not_after = Some(cert.validity().not_after.timestamp());
                    // The certificate must certify the key that signs the requests: a
                    // wallet verifies the request object with the x5c leaf.
                    let spki = cert.public_key().subject_public_key.data.to_vec();
                    if let Some(k) = &key {
                        let ours = ring::signature::EcdsaKeyPair::from_pkcs8(
                            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                            k,
                            &rng,
                        )
                        .map(|p| ring::signature::KeyPair::public_key(&p).as_ref().to_vec());
                        if ours.as_deref().ok() != Some(spki.as_slice()) {
                            bad(
                                "wallet.certificate_chain_file",
                                "the leaf certificate does not certify wallet.signing_key_file's key"
                                    .into(),
                            );
                        }
                    }
                }
                Err(_) => {
                    bad(
                        "wallet.certificate_chain_file",
                        "the first certificate is not DER X.509".into(),
                    );
                    return None;
                }
            }
            openid4vp::ClientId::X509Hash { chain }
        }
        "openid_federation" => openid4vp::ClientId::Federation {
            entity_id: raw
                .entity_id
                .clone()
                .unwrap_or_else(|| public_base_url.to_owned()),
        },
        other => {
            bad(
                "wallet.client_id_scheme",
                format!("{other:?}: expected \"x509_hash\" or \"openid_federation\""),
            );
            return None;
        }
    };
    if !(raw.wallet_url.ends_with("://") || raw.wallet_url.starts_with("https://"))
        || raw.wallet_url.len() > 512
        || raw.wallet_url.contains(['"', '<', '>', ' '])
    {
        bad(
            "wallet.wallet_url",
            "a scheme such as \"openid4vp://\" or \"haip-vp://\", or an https universal link"
                .into(),
        );
    }
    if raw.max_pending == 0 {
        bad("wallet.max_pending", "must be positive".into());
    }
    if raw.max_pending_bytes < 64 * 1024 {
        bad("wallet.max_pending_bytes", "at least 65536".into());
    }
    if raw.clock_skew_seconds > 300 {
        bad("wallet.clock_skew_seconds", "at most 300".into());
    }
    if raw.kb_max_age_seconds == 0 || raw.kb_max_age_seconds > 3600 {
        bad("wallet.kb_max_age_seconds", "from 1 to 3600".into());
    }
    if raw.vct.is_empty() {
        bad("wallet.vct", "at least one PID vct".into());
    }
    validate_claims(&raw.claims, "wallet.claims", bad);
    let trust_list = raw
        .trust_list_file
        .as_ref()
        .and_then(|f| match std::fs::read(resolve(f)) {
            Ok(b) => {
                let t = trust::TrustList::from_pem(&b);
                if t.is_none() {
                    bad(
                        "wallet.trust_list_file",
                        "no CA certificate usable as a trust anchor in the file".into(),
                    );
                }
                t
            }
            Err(e) => {
                bad("wallet.trust_list_file", format!("{}: {e}", f.display()));
                None
            }
        });
    match raw.format.as_str() {
        "dc+sd-jwt" => {}
        // An mdoc issuer is known only by its x5chain: the trust list is its one source.
        "mso_mdoc" if raw.trust_list_file.is_none() => bad(
            "wallet.trust_list_file",
            "required with format = \"mso_mdoc\" (mdoc issuers are trusted by X.509)".into(),
        ),
        "mso_mdoc" => {}
        other => bad(
            "wallet.format",
            format!("{other:?}: expected \"dc+sd-jwt\" or \"mso_mdoc\""),
        ),
    }
    if raw.doctype.is_empty() || raw.doctype.len() > 128 {
        bad("wallet.doctype", "1 to 128 characters".into());
    }
    let federation = match &raw.federation {
        None => Some(None),
        Some(f) => trust::validate_federation(f, bad).map(Some),
    };
    let issuers = trust::validate(
        &raw.issuer,
        trust_list.is_some() || raw.federation.is_some(),
        resolve,
        bad,
    );
    let status = status::validate(&raw.status, resolve, bad);
    let providers = match &raw.wallet_providers {
        None => Some(None),
        Some(p) => attestation::validate(p, raw.format == "mso_mdoc", resolve, bad).map(Some),
    };
    let signer = match (&key, &client) {
        (Some(k), openid4vp::ClientId::Federation { .. }) => {
            jose::Signer::es256_from_pkcs8(k, raw.signing_kid.as_deref(), &rng).ok()
        }
        (Some(k), openid4vp::ClientId::X509Hash { .. }) => {
            jose::Signer::es256_from_pkcs8(k, None, &rng).ok()
        }
        (None, _) => None,
    };
    let Some(signer) = signer else {
        if key.is_some() {
            bad(
                "wallet.signing_key_file",
                "not a P-256 (ES256) PKCS#8 key".into(),
            );
        }
        return None;
    };
    let verifier = openid4vp::Verifier::new(
        client,
        signer,
        &format!("{public_base_url}/wallet/response"),
        raw.request_ttl_seconds,
        vec![jose::Enc::A128Gcm, jose::Enc::A256Gcm],
    )
    .map_err(|e| bad("wallet", e.to_string()))
    .ok()?;
    let (format, mdoc_doctype) = match raw.format.as_str() {
        "mso_mdoc" => (
            openid4vp::Format::MsoMdoc {
                doctype: raw.doctype.clone(),
            },
            Some(raw.doctype.clone()),
        ),
        _ => (
            openid4vp::Format::SdJwt {
                vct_values: raw.vct.clone(),
            },
            None,
        ),
    };
    let providers = providers?;
    Some(Wallet {
        verifier,
        wallet_url: raw.wallet_url.clone(),
        ttl: Duration::from_secs(raw.request_ttl_seconds),
        max_pending: raw.max_pending,
        max_pending_bytes: raw.max_pending_bytes,
        format,
        claims: raw.claims.clone(),
        vct: raw.vct.clone(),
        mdoc_doctype,
        require_status: raw.require_status,
        kb_max_age: raw.kb_max_age_seconds,
        skew: raw.clock_skew_seconds,
        issuers: issuers?,
        trust_list,
        federation: federation?,
        status: status?,
        certificate_not_after,
        providers,
    })
}

/// Checks a list of PID claims to ask for (`wallet.claims`, a route's `wallet_claims`,
/// named `key` in the messages): only claims Varco maps, no repeats, and enough for a
/// principal (the names, the birth date, an identifier).
pub(crate) fn validate_claims(claims: &[String], key: &str, bad: &mut dyn FnMut(&str, String)) {
    if let Some(c) = claims.iter().find(|c| !KNOWN_CLAIMS.contains(&c.as_str())) {
        bad(
            key,
            format!(
                "{c:?} is not a PID claim Varco maps ({})",
                KNOWN_CLAIMS.join(", ")
            ),
        );
    }
    if let Some((i, c)) = claims
        .iter()
        .enumerate()
        .find(|(i, c)| claims[..*i].contains(c))
    {
        bad(key, format!("{c:?} is listed twice (entry {i})"));
    }
    for needed in ["given_name", "family_name"] {
        if !claims.iter().any(|c| c == needed) {
            bad(key, format!("must include {needed:?}"));
        }
    }
    if !claims.iter().any(|c| c == "birth_date" || c == "birthdate") {
        bad(key, "must include \"birth_date\"".into());
    }
    if !claims
        .iter()
        .any(|c| c == "tax_id_code" || c == "personal_administrative_number")
    {
        bad(
            key,
            "must include \"tax_id_code\" or \"personal_administrative_number\"".into(),
        );
    }
}

impl Wallet {
    /// The DCQL query for the PID with `claims` (each as a claim path: the name, or for
    /// mdoc the doctype namespace and the name). Data minimisation: nothing else is asked.
    #[must_use]
    pub fn query_for(&self, claims: &[String]) -> openid4vp::CredentialQuery {
        let paths = claims
            .iter()
            .map(|c| match &self.mdoc_doctype {
                Some(doctype) => vec![doctype.clone(), c.clone()],
                None => vec![c.clone()],
            })
            .collect();
        openid4vp::CredentialQuery {
            id: PID_QUERY.into(),
            format: self.format.clone(),
            claims: paths,
        }
    }

    /// Every credential a request asks for: the PID with `claims` ([`Self::query_for`]), then
    /// the wallet attestation when `[wallet.wallet_providers] require_attestation`.
    #[must_use]
    pub fn queries_for(&self, claims: &[String]) -> Vec<openid4vp::CredentialQuery> {
        let mut queries = vec![self.query_for(claims)];
        if let Some(p) = self.providers.as_ref().filter(|p| p.require) {
            queries.push(p.query());
        }
        queries
    }
}

/// The PID attributes as the principal's canonical attributes (`identity::attr`): the tax
/// code as `fiscalNumber` (kept with its `TINIT-` prefix, which normalisation strips), the
/// personal administrative number as `personIdentifier` when there is no tax code.
#[must_use]
pub fn attributes(pid: &sdjwt::Pid) -> Vec<(String, Vec<String>)> {
    let mut a: BTreeMap<&str, String> = BTreeMap::new();
    a.insert(identity::attr::NAME, pid.given_name.clone());
    a.insert(identity::attr::FAMILY_NAME, pid.family_name.clone());
    a.insert(identity::attr::DATE_OF_BIRTH, pid.birth_date.clone());
    match (&pid.tax_id_code, &pid.personal_administrative_number) {
        (Some(cf), _) => {
            a.insert(identity::attr::FISCAL_NUMBER, cf.clone());
        }
        (None, Some(pan)) => {
            a.insert(identity::attr::PERSON_IDENTIFIER, pan.clone());
        }
        (None, None) => {}
    }
    a.into_iter()
        .map(|(k, v)| (k.to_owned(), vec![v]))
        .collect()
}
