//! `[wallet.wallet_providers]`: which Wallet Providers Varco trusts, and whether a wallet
//! login must carry a Wallet Attestation from one of them (issue 23, docs/THREATS.md W3).
//!
//! The trust sources have the shapes the PID issuers have: configured keys
//! (`[[wallet.wallet_providers.provider]]`, `iss` + `jwks_file`), an X.509 trust list (the
//! attestation's `x5c` chaining to `trust_list_file`, its leaf naming the provider), or
//! OpenID Federation (`[wallet.wallet_providers.federation]`: the provider's chain from the
//! `[oidc_rp]` fetcher, its keys the `jwks` of its `wallet_provider` metadata, its required
//! trust marks verified). The attestation itself is checked by `openid4vp::attestation`.
//!
//! Default: not required. The IT-Wallet 1.x remote flow has the Relying Party check the
//! presented credentials, their issuers' trust, the holder's proof of possession and the
//! revocation status ("Remote Flow", steps 19-22); the Wallet Provider is vouched for to
//! the PID Provider at issuance. Requiring the attestation is this deployment's choice.
//!
//! May import: the leaf. Never `config`, `state`, `routes`, `server` or `cli`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::trust;

/// `[wallet.wallet_providers]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProviders {
    /// Ask every wallet for a Wallet Attestation and refuse a login without a valid one.
    #[serde(default)]
    require_attestation: bool,
    /// Accepted attestation `vct` values (required with `require_attestation`).
    #[serde(default)]
    vct: Vec<String>,
    /// Longest accepted attestation life (`exp - iat`), seconds.
    #[serde(default = "default_max_lifetime")]
    max_lifetime_seconds: u64,
    /// Providers trusted by configured keys.
    #[serde(default)]
    provider: Vec<trust::RawIssuer>,
    /// PEM CA certificates: providers whose attestation `x5c` chains to one are trusted.
    trust_list_file: Option<PathBuf>,
    /// Providers trusted through OpenID Federation.
    pub(crate) federation: Option<trust::RawFederation>,
}

/// IT-Wallet 1.x: the Wallet Provider issues attestations valid for less than 24 hours.
fn default_max_lifetime() -> u64 {
    86_400
}

/// `[wallet.wallet_providers]`, validated.
#[derive(Debug)]
pub struct Providers {
    /// Ask for and require the attestation.
    pub require: bool,
    /// Accepted attestation `vct` values.
    pub vct: Vec<String>,
    /// Longest accepted attestation life, seconds.
    pub max_lifetime: u64,
    /// Providers trusted by configured keys, by `iss`.
    pub keys: trust::Issuers,
    /// Providers trusted by X.509.
    pub trust_list: Option<trust::TrustList>,
    /// Providers trusted through OpenID Federation.
    pub federation: Option<trust::Federation>,
}

impl Providers {
    /// The DCQL query for the attestation (no claim paths: the credential itself).
    #[must_use]
    pub fn query(&self) -> openid4vp::CredentialQuery {
        openid4vp::CredentialQuery {
            id: openid4vp::attestation::QUERY_ID.into(),
            format: openid4vp::Format::SdJwt {
                vct_values: self.vct.clone(),
            },
            claims: Vec::new(),
        }
    }
}

/// Validates `[wallet.wallet_providers]`; `mdoc` says the PID is an mdoc (whose device
/// key the attestation cannot be bound to yet).
pub(crate) fn validate(
    raw: &RawProviders,
    mdoc: bool,
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Providers> {
    const K: &str = "wallet.wallet_providers";
    let mut ok = true;
    if raw.require_attestation && raw.vct.is_empty() {
        bad(
            &format!("{K}.vct"),
            "at least one wallet attestation vct with require_attestation = true".into(),
        );
        ok = false;
    }
    if let Some(v) = raw.vct.iter().find(|v| v.is_empty() || v.len() > 256) {
        bad(&format!("{K}.vct"), format!("{v:?}: 1 to 256 characters"));
        ok = false;
    }
    if raw.max_lifetime_seconds == 0 || raw.max_lifetime_seconds > 86_400 {
        bad(
            &format!("{K}.max_lifetime_seconds"),
            "from 1 to 86400 (IT-Wallet attestations live less than 24 hours)".into(),
        );
        ok = false;
    }
    if raw.require_attestation
        && raw.provider.is_empty()
        && raw.trust_list_file.is_none()
        && raw.federation.is_none()
    {
        bad(
            K,
            "require_attestation = true needs a trusted Wallet Provider: \
             [[wallet.wallet_providers.provider]], trust_list_file or federation"
                .into(),
        );
        ok = false;
    }
    if raw.require_attestation && mdoc {
        bad(
            &format!("{K}.require_attestation"),
            "not available with format = \"mso_mdoc\" yet (the attestation binds an \
             SD-JWT VC holder key)"
                .into(),
        );
        ok = false;
    }
    let keys = trust::validate_keys(&raw.provider, &format!("{K}.provider"), resolve, bad);
    let trust_list = match &raw.trust_list_file {
        None => Some(None),
        Some(f) => match std::fs::read(resolve(f)) {
            Ok(b) => {
                let t = trust::TrustList::from_pem(&b);
                if t.is_none() {
                    bad(
                        &format!("{K}.trust_list_file"),
                        "no CA certificate usable as a trust anchor in the file".into(),
                    );
                }
                t.map(Some)
            }
            Err(e) => {
                bad(
                    &format!("{K}.trust_list_file"),
                    format!("{}: {e}", f.display()),
                );
                None
            }
        },
    };
    let federation = match &raw.federation {
        None => Some(None),
        Some(f) => {
            trust::validate_federation_at(f, &format!("{K}.federation"), "wallet_provider", bad)
                .map(Some)
        }
    };
    if !ok {
        return None;
    }
    Some(Providers {
        require: raw.require_attestation,
        vct: raw.vct.clone(),
        max_lifetime: raw.max_lifetime_seconds,
        keys: keys?,
        trust_list: trust_list?,
        federation: federation?,
    })
}
