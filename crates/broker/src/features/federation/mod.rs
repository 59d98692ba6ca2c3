//! `[oidc_rp]`: Varco as a relying party of the SPID and CIE OpenID Connect federations
//! (OpenID Federation 1.0). This module owns the configuration table and its validation;
//! [`resolve`] drives the pure `oidfed` resolver with real HTTP fetches and caches the
//! chains; [`http`] is the small client for the token, UserInfo and revocation endpoints.
//!
//! Keys, all from files named here and never from a peer: the federation signing key (our
//! Entity Configuration), the OIDC core signing key (request objects, client assertions) and
//! the OIDC encryption key (UserInfo JWE), kept apart as the SPID/CIE rules recommend; the
//! Trust Anchors' federation keys (JWKS files).
//!
//! May import: the leaf, `features::registry` (its HTTP fetcher), `features::metrics`.

pub mod http;
pub mod resolve;

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use jose::{Alg, Jwks, RsaDecrypter, Signer};
use oidfed::{RelyingParty, TrustAnchor, TrustMarkEntry};
use ring::rand::SystemRandom;
use serde::Deserialize;

/// `[oidc_rp]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidcRp {
    entity_id: Option<String>,
    federation_key_file: PathBuf,
    #[serde(default = "default_alg")]
    federation_key_alg: String,
    signing_key_file: PathBuf,
    #[serde(default = "default_alg")]
    signing_key_alg: String,
    encryption_key_file: PathBuf,
    #[serde(default = "default_enc_alg")]
    userinfo_encrypted_response_alg: String,
    #[serde(default = "default_enc_enc")]
    userinfo_encrypted_response_enc: String,
    authority_hints: Vec<String>,
    #[serde(default)]
    trust_mark: Vec<RawTrustMark>,
    organization_name: String,
    homepage_uri: String,
    policy_uri: String,
    logo_uri: String,
    contacts: Vec<String>,
    client_name: Option<String>,
    #[serde(default = "default_ec_ttl")]
    entity_configuration_ttl_seconds: u64,
    #[serde(default = "default_fetch_ms")]
    fetch_timeout_ms: u64,
    #[serde(default = "default_doc_bytes")]
    max_document_bytes: u64,
    #[serde(default = "default_refresh_before")]
    refresh_before_seconds: u64,
    #[serde(default)]
    allow_http: bool,
    #[serde(default = "default_protocol")]
    spid_protocol: String,
    #[serde(default = "default_protocol")]
    cie_protocol: String,
    #[serde(default)]
    trust_anchor: Vec<RawAnchor>,
    #[serde(default)]
    op: Vec<RawOp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrustMark {
    #[serde(rename = "type")]
    trust_mark_type: String,
    jwt_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnchor {
    entity_id: String,
    jwks_file: PathBuf,
    #[serde(default)]
    required_trust_marks: Vec<String>,
    #[serde(default)]
    accept_trust_marks_without_exp: bool,
    list_ops: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    name: String,
    entity_id: String,
    federation: String,
    display_name: Option<String>,
}

fn default_alg() -> String {
    "RS256".into()
}
fn default_enc_alg() -> String {
    "RSA-OAEP".into()
}
fn default_enc_enc() -> String {
    "A256CBC-HS512".into()
}
fn default_ec_ttl() -> u64 {
    86_400
}
fn default_fetch_ms() -> u64 {
    5_000
}
fn default_doc_bytes() -> u64 {
    64 * 1024
}
fn default_refresh_before() -> u64 {
    3_600
}
fn default_protocol() -> String {
    "both".into()
}

impl RawOidcRp {
    /// The configured Trust Anchors' Entity Identifiers (other features reference them).
    pub(crate) fn trust_anchor_ids(&self) -> impl Iterator<Item = &str> {
        self.trust_anchor.iter().map(|a| a.entity_id.as_str())
    }
}

/// Which protocols a federation is offered over on the login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocols {
    /// SAML only (the OIDC OPs of this federation are not shown).
    Saml,
    /// OpenID Connect only (the SAML IdPs of this federation are not shown).
    Oidc,
    /// Both.
    Both,
}

impl Protocols {
    /// Whether OIDC is offered.
    pub fn oidc(self) -> bool {
        matches!(self, Protocols::Oidc | Protocols::Both)
    }
    /// Whether SAML is offered.
    pub fn saml(self) -> bool {
        matches!(self, Protocols::Saml | Protocols::Both)
    }
}

/// The federation an OP belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpFederation {
    /// SPID.
    Spid,
    /// CIE id.
    Cie,
}

impl OpFederation {
    /// The identity method of its logins.
    pub fn method(self) -> identity::Method {
        match self {
            OpFederation::Spid => identity::Method::Spid,
            OpFederation::Cie => identity::Method::Cie,
        }
    }
}

/// One configured OpenID Provider.
#[derive(Debug, Clone)]
pub struct OpConfig {
    /// Short name (`/oidc/login?op=<name>`, metric labels).
    pub name: String,
    /// Entity Identifier.
    pub entity_id: String,
    /// SPID or CIE.
    pub federation: OpFederation,
    /// Name on the login page.
    pub display_name: String,
}

/// A Trust Anchor with what an OP under it must show.
#[derive(Debug, Clone)]
pub struct AnchorConfig {
    /// Entity Identifier and keys.
    pub anchor: TrustAnchor,
    /// Trust mark types an OP resolved to this anchor must carry, each verified.
    pub required_trust_marks: Vec<String>,
    /// Accept such a mark without `exp` (spid-cie-oidc issues them; its status endpoint is
    /// not consulted).
    pub accept_trust_marks_without_exp: bool,
    /// Offer the OPs the anchor's `federation_list_endpoint` lists, as logins of this
    /// federation (`None`: only the configured `[[oidc_rp.op]]`).
    pub list_ops: Option<OpFederation>,
}

/// `[oidc_rp]`, validated.
pub struct OidcRpConfig {
    /// Our Entity Identifier and `client_id`.
    pub entity_id: String,
    /// Our callback, `<public_base_url>/oidc/callback`.
    pub redirect_uri: String,
    /// What our Entity Configuration declares.
    pub rp: RelyingParty,
    /// Signs our Entity Configuration.
    pub federation_key: Signer,
    /// Signs request objects and client assertions.
    pub signing_key: Signer,
    /// Decrypts UserInfo.
    pub encryption_key: RsaDecrypter,
    /// Lifetime of our Entity Configuration.
    pub entity_configuration_ttl: u64,
    /// Whole-fetch deadline for federation documents and OP endpoints.
    pub fetch_timeout: Duration,
    /// Largest federation document or endpoint answer.
    pub max_document_bytes: u64,
    /// Refresh a chain this long before its `exp`.
    pub refresh_before: u64,
    /// `http` entity identifiers (loopback test federations only).
    pub allow_http: bool,
    /// SPID protocol choice.
    pub spid: Protocols,
    /// CIE protocol choice.
    pub cie: Protocols,
    /// Trust Anchors.
    pub anchors: Vec<AnchorConfig>,
    /// OpenID Providers, in login-page order.
    pub ops: Vec<OpConfig>,
}

impl std::fmt::Debug for OidcRpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcRpConfig")
            .field("entity_id", &self.entity_id)
            .field("ops", &self.ops.len())
            .finish_non_exhaustive()
    }
}

impl OidcRpConfig {
    /// The OP named `key`: by short name or by Entity Identifier.
    pub fn op(&self, key: &str) -> Option<&OpConfig> {
        self.ops
            .iter()
            .find(|o| o.name == key || o.entity_id == key)
    }

    /// Protocols offered for a federation.
    pub fn protocols(&self, f: OpFederation) -> Protocols {
        match f {
            OpFederation::Spid => self.spid,
            OpFederation::Cie => self.cie,
        }
    }

    /// Our signed Entity Configuration at `now` (Unix seconds).
    pub fn entity_configuration(&self, now: u64) -> Result<String, oidfed::Error> {
        let rng = SystemRandom::new();
        let ttl = self.entity_configuration_ttl;
        if self.allow_http {
            self.rp
                .sign_allow_http(&self.federation_key, &[], now, ttl, &rng)
        } else {
            self.rp.sign(&self.federation_key, &[], now, ttl, &rng)
        }
    }
}

/// PKCS#8 DER from a file holding PEM (`-----BEGIN PRIVATE KEY-----`) or DER.
pub fn read_pkcs8(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    if !text.contains("-----BEGIN") {
        return Ok(bytes.to_vec());
    }
    if !text.contains("-----BEGIN PRIVATE KEY-----") {
        return Err("not a PKCS#8 key (expected -----BEGIN PRIVATE KEY-----)".into());
    }
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN PRIVATE KEY-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .map(str::trim)
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "PEM body is not base64".to_owned())
}

fn signer(alg: &str, pkcs8: &[u8]) -> Result<Signer, String> {
    let alg = Alg::from_name(alg).map_err(|e| e.to_string())?;
    if alg == Alg::Es256 {
        Signer::es256_from_pkcs8(pkcs8, None, &SystemRandom::new()).map_err(|e| e.to_string())
    } else {
        Signer::rsa_from_pkcs8(alg, pkcs8, None).map_err(|e| e.to_string())
    }
}

fn protocols(s: &str) -> Option<Protocols> {
    match s {
        "saml" => Some(Protocols::Saml),
        "oidc" => Some(Protocols::Oidc),
        "both" => Some(Protocols::Both),
        _ => None,
    }
}

/// Validates `[oidc_rp]`: every key file read and parsed, every anchor's JWKS parsed, the
/// Entity Configuration signed once (so a bad field is a configuration error, not a 500).
/// `development`: Varco itself runs as a development deployment (an `http` public URL, only
/// accepted on loopback, or `server.allow_plain_http`); only then may `allow_http` be set.
pub(crate) fn validate(
    raw: &RawOidcRp,
    public_base_url: &str,
    development: bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<OidcRpConfig> {
    let mut ok = true;
    // OpenID Federation 1.0 and the SPID/CIE rules want https Entity Identifiers and
    // endpoints: plain http lets anyone on the path rewrite a statement's transport and
    // read the OP's answers. It stays possible for loopback test federations (the reference
    // implementation serves http only), never beside an https production deployment.
    if raw.allow_http && !development {
        bad(
            "oidc_rp.allow_http",
            "is true but this is not a development deployment: http federation entities are \
             for loopback test federations only (server.public_base_url http:// on this \
             machine, or server.allow_plain_http = true)"
                .into(),
        );
        ok = false;
    }
    let key = |k: &str, file: &Path, alg: Option<&str>, bad: &mut dyn FnMut(&str, String)| {
        let der = std::fs::read(resolve(file))
            .map_err(|e| format!("{}: {e}", file.display()))
            .and_then(|b| read_pkcs8(&b));
        match (der, alg) {
            (Ok(d), Some(a)) => match signer(a, &d) {
                Ok(s) => Some((Some(s), None)),
                Err(e) => {
                    bad(k, format!("{}: {e}", file.display()));
                    None
                }
            },
            (Ok(d), None) => match RsaDecrypter::from_pkcs8(&d, None) {
                Ok(r) => Some((None, Some(r))),
                Err(e) => {
                    bad(k, format!("{}: {e}", file.display()));
                    None
                }
            },
            (Err(e), _) => {
                bad(k, e);
                None
            }
        }
    };
    let fed = key(
        "oidc_rp.federation_key_file",
        &raw.federation_key_file,
        Some(&raw.federation_key_alg),
        bad,
    )
    .and_then(|(s, _)| s);
    let sig = key(
        "oidc_rp.signing_key_file",
        &raw.signing_key_file,
        Some(&raw.signing_key_alg),
        bad,
    )
    .and_then(|(s, _)| s);
    let enc = key(
        "oidc_rp.encryption_key_file",
        &raw.encryption_key_file,
        None,
        bad,
    )
    .and_then(|(_, r)| r);
    let enc_alg = jose::KeyAlg::from_name(&raw.userinfo_encrypted_response_alg);
    if enc_alg.is_none() {
        bad(
            "oidc_rp.userinfo_encrypted_response_alg",
            "must be RSA-OAEP or RSA-OAEP-256".into(),
        );
        ok = false;
    }
    if jose::CbcHs::from_name(&raw.userinfo_encrypted_response_enc).is_none() {
        bad(
            "oidc_rp.userinfo_encrypted_response_enc",
            "must be A128CBC-HS256 or A256CBC-HS512".into(),
        );
        ok = false;
    }
    let (spid, cie) = (protocols(&raw.spid_protocol), protocols(&raw.cie_protocol));
    for (k, v) in [
        ("oidc_rp.spid_protocol", spid),
        ("oidc_rp.cie_protocol", cie),
    ] {
        if v.is_none() {
            bad(k, "must be saml, oidc or both".into());
            ok = false;
        }
    }
    let mut trust_marks = Vec::new();
    for (i, t) in raw.trust_mark.iter().enumerate() {
        match std::fs::read_to_string(resolve(&t.jwt_file)) {
            Ok(jwt) => trust_marks.push(TrustMarkEntry {
                trust_mark_type: t.trust_mark_type.clone(),
                trust_mark: jwt.trim().to_owned(),
            }),
            Err(e) => {
                bad(
                    &format!("oidc_rp.trust_mark[{i}].jwt_file"),
                    format!("{}: {e}", t.jwt_file.display()),
                );
                ok = false;
            }
        }
    }
    let mut anchors = Vec::new();
    for (i, a) in raw.trust_anchor.iter().enumerate() {
        if a.list_ops
            .as_deref()
            .is_some_and(|l| !matches!(l, "spid" | "cie"))
        {
            bad(
                &format!("oidc_rp.trust_anchor[{i}].list_ops"),
                "must be spid or cie".into(),
            );
            ok = false;
        }
        if !oidfed::is_entity_id(&a.entity_id, raw.allow_http) {
            bad(
                &format!("oidc_rp.trust_anchor[{i}].entity_id"),
                "not an https URL without query or fragment".into(),
            );
            ok = false;
        }
        match std::fs::read(resolve(&a.jwks_file))
            .map_err(|e| e.to_string())
            .and_then(|b| Jwks::from_json(&b).map_err(|e| e.to_string()))
        {
            Ok(jwks) if !jwks.is_empty() => anchors.push(AnchorConfig {
                anchor: TrustAnchor {
                    entity_id: a.entity_id.clone(),
                    jwks,
                },
                required_trust_marks: a.required_trust_marks.clone(),
                accept_trust_marks_without_exp: a.accept_trust_marks_without_exp,
                list_ops: match a.list_ops.as_deref() {
                    Some("spid") => Some(OpFederation::Spid),
                    Some("cie") => Some(OpFederation::Cie),
                    _ => None,
                },
            }),
            Ok(_) => {
                bad(
                    &format!("oidc_rp.trust_anchor[{i}].jwks_file"),
                    "no signature key".into(),
                );
                ok = false;
            }
            Err(e) => {
                bad(
                    &format!("oidc_rp.trust_anchor[{i}].jwks_file"),
                    format!("{}: {e}", a.jwks_file.display()),
                );
                ok = false;
            }
        }
    }
    if raw.trust_anchor.is_empty() {
        bad(
            "oidc_rp.trust_anchor",
            "at least one [[oidc_rp.trust_anchor]] is required".into(),
        );
        ok = false;
    }
    let mut ops: Vec<OpConfig> = Vec::new();
    for (i, o) in raw.op.iter().enumerate() {
        let federation = match o.federation.as_str() {
            "spid" => OpFederation::Spid,
            "cie" => OpFederation::Cie,
            _ => {
                bad(
                    &format!("oidc_rp.op[{i}].federation"),
                    "must be spid or cie".into(),
                );
                ok = false;
                continue;
            }
        };
        if !crate::leaf::problem::valid_name(&o.name)
            || ops
                .iter()
                .any(|p| p.name == o.name || p.entity_id == o.entity_id)
        {
            bad(
                &format!("oidc_rp.op[{i}].name"),
                "letters, digits, - and _ only, and unique (as is entity_id)".into(),
            );
            ok = false;
        }
        if !oidfed::is_entity_id(&o.entity_id, raw.allow_http) {
            bad(
                &format!("oidc_rp.op[{i}].entity_id"),
                "not an https URL without query or fragment".into(),
            );
            ok = false;
        }
        ops.push(OpConfig {
            name: o.name.clone(),
            entity_id: o.entity_id.clone(),
            federation,
            display_name: o.display_name.clone().unwrap_or_else(|| o.name.clone()),
        });
    }
    for (k, v, min, max) in [
        (
            "oidc_rp.entity_configuration_ttl_seconds",
            raw.entity_configuration_ttl_seconds,
            60,
            30 * 86_400,
        ),
        (
            "oidc_rp.fetch_timeout_ms",
            raw.fetch_timeout_ms,
            100,
            60_000,
        ),
        (
            "oidc_rp.max_document_bytes",
            raw.max_document_bytes,
            4096,
            1 << 20,
        ),
    ] {
        if !(min..=max).contains(&v) {
            bad(k, format!("must be between {min} and {max}"));
            ok = false;
        }
    }
    let entity_id = raw
        .entity_id
        .clone()
        .unwrap_or_else(|| public_base_url.to_owned());
    let redirect_uri = format!("{}/oidc/callback", public_base_url.trim_end_matches('/'));
    let (Some(fed), Some(sig), Some(enc), Some(enc_alg), Some(spid), Some(cie), true) =
        (fed, sig, enc, enc_alg, spid, cie, ok)
    else {
        return None;
    };
    let rp_jwks = serde_json::json!({
        "keys": [sig.jwk().to_value(), enc.public_jwk(enc_alg)]
    });
    let rp = RelyingParty {
        entity_id: entity_id.clone(),
        authority_hints: raw.authority_hints.clone(),
        trust_marks,
        organization_name: raw.organization_name.clone(),
        homepage_uri: raw.homepage_uri.clone(),
        policy_uri: raw.policy_uri.clone(),
        logo_uri: raw.logo_uri.clone(),
        contacts: raw.contacts.clone(),
        federation_resolve_endpoint: None,
        client_name: raw
            .client_name
            .clone()
            .unwrap_or_else(|| raw.organization_name.clone()),
        redirect_uris: vec![redirect_uri.clone()],
        rp_jwks,
        id_token_signed_response_alg: sig.alg().name().into(),
        userinfo_signed_response_alg: sig.alg().name().into(),
        userinfo_encrypted_response_alg: raw.userinfo_encrypted_response_alg.clone(),
        userinfo_encrypted_response_enc: raw.userinfo_encrypted_response_enc.clone(),
    };
    // Sign once now: a field the Entity Configuration refuses is a configuration error.
    let rng = SystemRandom::new();
    let signed = if raw.allow_http {
        rp.sign_allow_http(&fed, &[], 0, 60, &rng)
    } else {
        rp.sign(&fed, &[], 0, 60, &rng)
    };
    if let Err(e) = signed {
        bad("oidc_rp", format!("entity configuration: {e}"));
        return None;
    }
    Some(OidcRpConfig {
        entity_id,
        redirect_uri,
        rp,
        federation_key: fed,
        signing_key: sig,
        encryption_key: enc,
        entity_configuration_ttl: raw.entity_configuration_ttl_seconds,
        fetch_timeout: Duration::from_millis(raw.fetch_timeout_ms),
        max_document_bytes: raw.max_document_bytes,
        refresh_before: raw.refresh_before_seconds,
        allow_http: raw.allow_http,
        spid,
        cie,
        anchors,
        ops,
    })
}
