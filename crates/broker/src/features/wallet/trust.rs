//! Which key verifies a PID issuer's signature: the trust decision, taken from
//! configuration only. Today an issuer is trusted by its configured JWKS
//! (`[[wallet.issuer]]`); the credential's `kid` selects among those keys and nothing in
//! the credential adds one.
//!
//! Two more sources answer with keys the same way, so the verification below them does not
//! change: an X.509 trust list ([`TrustList`], `x5c` chaining to configured anchors) and
//! OpenID Federation ([`Federation`]: the `iss` resolved to a trust chain by the broker's
//! one federation fetcher, the one the OIDC login uses; the keys are the `jwks` of the
//! chain's resolved `openid_credential_issuer` metadata). One source per credential.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[[wallet.issuer]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIssuer {
    /// The issuer identifier (`iss` of the PID), an https URL.
    iss: String,
    /// The issuer's public keys, a JWKS file (signature keys only, `kid` on each).
    jwks_file: PathBuf,
}

/// How an issuer is trusted.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Its keys, as configured.
    Jwks(jose::Jwks),
}

/// The trusted PID issuers, by `iss`.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    by_iss: BTreeMap<String, Trust>,
}

impl Issuers {
    /// The keys that may verify a credential (or a status list) of `iss`: `None` when the
    /// issuer is not trusted.
    #[must_use]
    pub fn keys(&self, iss: &str) -> Option<&jose::Jwks> {
        match self.by_iss.get(iss)? {
            Trust::Jwks(k) => Some(k),
        }
    }

    /// How many issuers are trusted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_iss.len()
    }

    /// Whether none is.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_iss.is_empty()
    }
}

pub(crate) fn validate(
    raw: &[RawIssuer],
    other_source: bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Issuers> {
    let mut ok = true;
    if raw.is_empty() && !other_source {
        bad(
            "wallet.issuer",
            "no trusted PID issuer: configure [[wallet.issuer]] (iss and jwks_file), \
             wallet.trust_list_file or [wallet.federation]"
                .into(),
        );
        ok = false;
    }
    let keys = validate_keys(raw, "wallet.issuer", resolve, bad);
    keys.filter(|_| ok)
}

/// The `iss` + `jwks_file` entries under `prefix` (`wallet.issuer`,
/// `wallet.wallet_providers.provider`), each an https identifier with a non-empty JWKS,
/// none listed twice.
pub(crate) fn validate_keys(
    raw: &[RawIssuer],
    prefix: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Issuers> {
    let mut by_iss = BTreeMap::new();
    let mut ok = true;
    for (i, r) in raw.iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        if !r.iss.starts_with("https://") || r.iss.len() > 1024 {
            bad(&format!("{key}.iss"), "an https URL".into());
            ok = false;
        }
        let jwks = std::fs::read(resolve(&r.jwks_file))
            .map_err(|e| format!("{}: {e}", r.jwks_file.display()))
            .and_then(|b| jose::Jwks::from_json(&b).map_err(|e| e.to_string()));
        match jwks {
            Ok(k) if !k.is_empty() => {
                if by_iss.insert(r.iss.clone(), Trust::Jwks(k)).is_some() {
                    bad(&format!("{key}.iss"), format!("{:?} listed twice", r.iss));
                    ok = false;
                }
            }
            Ok(_) => {
                bad(&format!("{key}.jwks_file"), "no signature key".into());
                ok = false;
            }
            Err(e) => {
                bad(&format!("{key}.jwks_file"), e);
                ok = false;
            }
        }
    }
    ok.then_some(Issuers { by_iss })
}

/// Issuers trusted through an X.509 trust list (`wallet.trust_list_file`): the credential's
/// `x5c` chain must lead to one of these anchors (rustls-webpki: signatures, validity at
/// the injected time, basic constraints), its leaf must carry `keyUsage` with
/// `digitalSignature`, name the credential's `iss` in its subjectAltName (URI equal to
/// `iss`, or a dNSName equal to its host), and hold a P-256 or P-384 key, which then
/// verifies the credential. The anchors are the trust; nothing in the chain adds one.
pub struct TrustList {
    anchors: Vec<rustls_pki_types::TrustAnchor<'static>>,
}

impl std::fmt::Debug for TrustList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TrustList({} anchors)", self.anchors.len())
    }
}

/// Why an `x5c` chain was not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// No path to an anchor (or a bad signature, or a malformed certificate).
    Untrusted,
    /// The leaf (or an intermediate) is expired or not yet valid.
    Validity,
    /// The leaf has no `digitalSignature` key usage, or declares extended key usages
    /// without the mdoc document signer one.
    KeyUsage,
    /// The leaf does not name the issuer (`iss`).
    Name,
    /// The leaf key is not an EC P-256/P-384 key.
    Key,
}

impl ChainError {
    /// The stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            ChainError::Untrusted => "wallet_untrusted_issuer",
            ChainError::Validity => "wallet_issuer_certificate_validity",
            ChainError::KeyUsage => "wallet_issuer_key_usage",
            ChainError::Name => "wallet_issuer_name",
            ChainError::Key => "wallet_issuer_key",
        }
    }

    /// The stable code when the chain is a Wallet Provider's (its wallet attestation).
    #[must_use]
    pub fn provider_code(self) -> &'static str {
        match self {
            ChainError::Untrusted => "wallet_untrusted_provider",
            ChainError::Validity => "wallet_provider_certificate_validity",
            ChainError::KeyUsage => "wallet_provider_key_usage",
            ChainError::Name => "wallet_provider_name",
            ChainError::Key => "wallet_provider_key",
        }
    }
}

/// id-kp for the mdoc document signer (ISO/IEC 18013-5, 1.0.18013.5.1.2), DER content.
const MDOC_DS_EKU: &[u8] = &[0x28, 0x81, 0x8c, 0x5d, 0x05, 0x01, 0x02];

static ALGORITHMS: &[&dyn rustls_pki_types::SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

impl TrustList {
    /// The anchors of a PEM bundle; `None` when it holds no usable CA certificate.
    #[must_use]
    pub fn from_pem(pem: &[u8]) -> Option<TrustList> {
        use rustls_pki_types::pem::PemObject as _;
        let mut anchors = Vec::new();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.ok()?;
            anchors.push(webpki::anchor_from_trusted_cert(&cert).ok()?.to_owned());
        }
        (!anchors.is_empty()).then_some(TrustList { anchors })
    }

    /// The key that verifies a credential of `iss` whose issuer header carries `chain`
    /// (DER, leaf first), at `now` (Unix seconds): the chain trusted ([`TrustList::leaf`])
    /// and its leaf naming `iss`.
    pub fn issuer_key(
        &self,
        chain: &[Vec<u8>],
        iss: &str,
        now: u64,
    ) -> Result<jose::Jwk, ChainError> {
        let leaf = self.leaf(chain, now)?;
        let host = iss
            .strip_prefix("https://")
            .and_then(|r| r.split(['/', ':', '?', '#']).next())
            .unwrap_or("");
        let named = leaf.uris.iter().any(|u| u == iss)
            || (!host.is_empty() && leaf.dns.iter().any(|d| d.eq_ignore_ascii_case(host)));
        if !named {
            return Err(ChainError::Name);
        }
        Ok(leaf.jwk)
    }

    /// The leaf of `chain` (DER, leaf first) once the chain is trusted at `now`: a path to
    /// an anchor, validity, `digitalSignature`, an EC P-256/P-384 key.
    pub fn leaf(&self, chain: &[Vec<u8>], now: u64) -> Result<Leaf, ChainError> {
        use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
        let (leaf_der, rest) = chain.split_first().ok_or(ChainError::Untrusted)?;
        let leaf_der = rustls_pki_types::CertificateDer::from(leaf_der.as_slice());
        let intermediates: Vec<_> = rest
            .iter()
            .map(|c| rustls_pki_types::CertificateDer::from(c.as_slice()))
            .collect();
        let end = webpki::EndEntityCert::try_from(&leaf_der).map_err(|_| ChainError::Untrusted)?;
        let at = rustls_pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now));
        match end.verify_for_usage(
            ALGORITHMS,
            &self.anchors,
            &intermediates,
            at,
            webpki::KeyUsage::required_if_present(MDOC_DS_EKU),
            None,
            None,
        ) {
            Ok(_) => {}
            Err(webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. }) => {
                return Err(ChainError::Validity);
            }
            Err(webpki::Error::RequiredEkuNotFoundContext(_)) => return Err(ChainError::KeyUsage),
            Err(_) => return Err(ChainError::Untrusted),
        }
        let (_, leaf) = X509Certificate::from_der(&leaf_der).map_err(|_| ChainError::Untrusted)?;
        match leaf.key_usage() {
            Ok(Some(ku)) if ku.value.digital_signature() => {}
            _ => return Err(ChainError::KeyUsage),
        }
        let (mut uris, mut dns) = (Vec::new(), Vec::new());
        if let Ok(Some(san)) = leaf.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::URI(u) => uris.push((*u).to_owned()),
                    GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                    _ => {}
                }
            }
        }
        let point = &leaf.public_key().subject_public_key.data;
        let (crv, n) = match point.len() {
            65 => ("P-256", 32),
            97 => ("P-384", 48),
            _ => return Err(ChainError::Key),
        };
        if point.first() != Some(&4) {
            return Err(ChainError::Key);
        }
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let jwk = serde_json::json!({
            "kty": "EC", "crv": crv,
            "x": b64(&point[1..=n]), "y": b64(&point[1 + n..]),
        });
        Ok(Leaf {
            jwk: jose::Jwk::from_value_standalone(&jwk).map_err(|_| ChainError::Key)?,
            point: point.to_vec(),
            subject: leaf.subject().to_string(),
            uris,
            dns,
        })
    }
}

/// The leaf certificate of a trusted chain.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// Its key as a JWK.
    pub jwk: jose::Jwk,
    /// Its key as an uncompressed SEC1 point (what `mdoc` verifies with).
    pub point: Vec<u8>,
    /// Its subject distinguished name.
    pub subject: String,
    /// subjectAltName URIs.
    pub uris: Vec<String>,
    /// subjectAltName dNSNames.
    pub dns: Vec<String>,
}

/// `[wallet.federation]` as written: issuers trusted through OpenID Federation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFederation {
    /// Entity Identifiers of the Trust Anchors an issuer's chain may end at; each must be a
    /// configured `[[oidc_rp.trust_anchor]]` (its keys and the one federation fetcher).
    trust_anchors: Vec<String>,
    /// The entity type whose metadata states the keys (default `openid_credential_issuer`
    /// for issuers, `wallet_provider` for wallet providers).
    entity_type: Option<String>,
    /// Trust mark types the issuer must show, each verified against its chain.
    #[serde(default)]
    required_trust_marks: Vec<String>,
}

/// Issuers trusted through OpenID Federation: the credential's `iss` is an Entity
/// Identifier, resolved by the broker's federation fetcher to a chain ending at one of
/// `trust_anchors`; the keys are the `jwks` of the chain's resolved `entity_type`
/// metadata, and nothing else.
#[derive(Debug, Clone)]
pub struct Federation {
    /// Accepted Trust Anchors (Entity Identifiers).
    pub trust_anchors: Vec<String>,
    /// The entity type (IT-Wallet: `openid_credential_issuer`).
    pub entity_type: String,
    /// Required trust mark types.
    pub required_trust_marks: Vec<String>,
}

/// Why a federated issuer is not trusted. Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FederationError {
    /// No chain (unreachable, broken, expired, wrong signature, unknown anchor).
    Chain,
    /// The chain ends at an anchor `[wallet.federation]` does not accept.
    Anchor,
    /// The resolved metadata has no such entity type, or no usable `jwks` in it.
    Metadata,
    /// A required trust mark is missing or does not verify.
    TrustMark,
}

impl FederationError {
    /// The stable code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            FederationError::Chain => "wallet_issuer_chain",
            FederationError::Anchor => "wallet_issuer_anchor",
            FederationError::Metadata => "wallet_issuer_metadata",
            FederationError::TrustMark => "wallet_issuer_trust_mark",
        }
    }

    /// The stable code when the chain is a Wallet Provider's.
    #[must_use]
    pub fn provider_code(self) -> &'static str {
        match self {
            FederationError::Chain => "wallet_provider_chain",
            FederationError::Anchor => "wallet_provider_anchor",
            FederationError::Metadata => "wallet_provider_metadata",
            FederationError::TrustMark => "wallet_provider_trust_mark",
        }
    }
}

impl Federation {
    /// The keys a verified `chain` for `iss` gives: the chain's subject is `iss`, its anchor
    /// accepted, each required trust mark verified (`accept_without_exp` from the anchor's
    /// `[[oidc_rp.trust_anchor]]`), and the `jwks` of the resolved metadata of our entity
    /// type non-empty.
    pub fn keys(
        &self,
        chain: &oidfed::TrustChain,
        iss: &str,
        now: u64,
        accept_without_exp: bool,
    ) -> Result<jose::Jwks, FederationError> {
        if chain.subject() != iss {
            return Err(FederationError::Chain);
        }
        if !self.trust_anchors.iter().any(|a| a == chain.anchor()) {
            return Err(FederationError::Anchor);
        }
        let opts = oidfed::trust_mark::Options {
            accept_without_exp,
            ..oidfed::trust_mark::Options::default()
        };
        for required in &self.required_trust_marks {
            let shown = chain
                .trust_marks()
                .iter()
                .filter(|t| &t.trust_mark_type == required)
                .any(|t| {
                    oidfed::trust_mark::verify(&t.trust_mark, chain, None, now, &opts)
                        .is_ok_and(|m| &m.trust_mark_type == required)
                });
            if !shown {
                return Err(FederationError::TrustMark);
            }
        }
        let jwks = chain
            .metadata_of(&self.entity_type)
            .and_then(|m| m.get("jwks"))
            .and_then(|j| jose::Jwks::from_value(j).ok())
            .ok_or(FederationError::Metadata)?;
        if jwks.is_empty() {
            return Err(FederationError::Metadata);
        }
        Ok(jwks)
    }
}

pub(crate) fn validate_federation(
    raw: &RawFederation,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Federation> {
    validate_federation_at(raw, "wallet.federation", "openid_credential_issuer", bad)
}

/// `[wallet.federation]` or `[wallet.wallet_providers.federation]` (`prefix`), with the
/// entity type `default_type` when none is written.
pub(crate) fn validate_federation_at(
    raw: &RawFederation,
    prefix: &str,
    default_type: &str,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Federation> {
    let mut ok = true;
    let entity_type = raw.entity_type.as_deref().unwrap_or(default_type);
    if raw.trust_anchors.is_empty() {
        bad(
            &format!("{prefix}.trust_anchors"),
            "at least one Trust Anchor (an [[oidc_rp.trust_anchor]] entity_id)".into(),
        );
        ok = false;
    }
    if entity_type.is_empty() || entity_type.len() > 128 {
        bad(
            &format!("{prefix}.entity_type"),
            "1 to 128 characters".into(),
        );
        ok = false;
    }
    ok.then(|| Federation {
        trust_anchors: raw.trust_anchors.clone(),
        entity_type: entity_type.to_owned(),
        required_trust_marks: raw.required_trust_marks.clone(),
    })
}
