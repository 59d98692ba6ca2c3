//! Which key verifies a PID issuer's signature: the trust decision, taken from
//! configuration only. Today an issuer is trusted by its configured JWKS
//! (`[[wallet.issuer]]`); the credential's `kid` selects among those keys and nothing in
//! the credential adds one.
//!
//! The seam for more sources is [`Trust`]: an OpenID Federation trust chain for issuers
//! (resolved by the broker's federation fetcher, the same one the OIDC login uses, once it
//! exists) and an X.509 trust list (`x5c` chaining to configured anchors) become further
//! variants, each answering with a `jose::Jwks` for the issuer, so the verification below
//! them does not change.

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
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Issuers> {
    let mut by_iss = BTreeMap::new();
    let mut ok = true;
    if raw.is_empty() {
        bad(
            "wallet.issuer",
            "at least one trusted PID issuer ([[wallet.issuer]] with iss and jwks_file)".into(),
        );
        ok = false;
    }
    for (i, r) in raw.iter().enumerate() {
        let key = format!("wallet.issuer[{i}]");
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
