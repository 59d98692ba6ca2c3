//! The wallet's `direct_post.jwt` answer: decrypted with this request's key, bound to this
//! request's `state`, and mapped to the credential ids asked for.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{EcdhKey, Enc, JweLimits};
use serde_json::Value;

use crate::Error;
use crate::error::clip;

/// Bounds for a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// The JWE (sizes checked before decoding). Default 256 KiB.
    pub jwe: JweLimits,
    /// JSON nesting of the decrypted payload. Default 6.
    pub max_depth: usize,
    /// Presentations per credential id. Default 1 (DCQL `multiple` is never requested).
    pub max_per_credential: usize,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        ResponseLimits {
            jwe: JweLimits::default(),
            max_depth: 6,
            max_per_credential: 1,
        }
    }
}

/// A request waiting for the wallet: keep it with the login it belongs to, and open the
/// answer with it once. It is consumed by [`Pending::open`] whatever the outcome. Several
/// replicas: [`Pending::export`] gives it, private key included, for the caller to seal and
/// keep in a shared store where it is taken once; [`Pending::import`] rebuilds it on the
/// replica the wallet's answer reaches.
#[derive(Debug)]
pub struct Pending {
    pub(crate) state: String,
    pub(crate) nonce: String,
    pub(crate) client_id: String,
    pub(crate) response_uri: String,
    pub(crate) ids: Vec<String>,
    pub(crate) expires_at: u64,
    pub(crate) encs: Vec<Enc>,
    pub(crate) key: EcdhKey,
}

/// A response opened and bound to its request; its presentations are not verified yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The presentations, by DCQL credential id (every requested id, no other).
    pub vp_token: BTreeMap<String, Vec<String>>,
    /// The request's nonce: the `nonce` every presentation's key binding must carry.
    pub nonce: String,
    /// Our `client_id`: the `aud` every presentation's key binding must carry.
    pub client_id: String,
    /// Our `response_uri` (an mdoc session transcript input).
    pub response_uri: String,
    /// SHA-256 thumbprint (RFC 7638) of the key the response was encrypted to (an mdoc
    /// session transcript input).
    pub jwk_thumbprint: Vec<u8>,
}

/// Version of the exported form.
const EXPORT_VERSION: u64 = 1;

fn import_error() -> Error {
    Error::Config {
        what: "stored pending request",
    }
}

impl Pending {
    /// The whole pending request as a JSON object, the response key's private scalar
    /// (`d`, base64url) included: whoever reads it can decrypt the answer. Seal it (AEAD
    /// under a key of the deployment) before it leaves the process; never log it.
    pub fn export(&self) -> Result<Value, Error> {
        let d = self.key.secret().map_err(|cause| Error::Jose {
            what: "encryption key",
            cause,
        })?;
        let encs: Vec<&str> = self.encs.iter().map(|e| e.name()).collect();
        Ok(serde_json::json!({
            "v": EXPORT_VERSION,
            "state": self.state,
            "nonce": self.nonce,
            "client_id": self.client_id,
            "response_uri": self.response_uri,
            "ids": self.ids,
            "exp": self.expires_at,
            "encs": encs,
            "d": URL_SAFE_NO_PAD.encode(d),
        }))
    }

    /// The pending request [`Pending::export`] gave (after the caller opened its seal).
    /// Every member must be there with its type, the key must be a P-256 scalar.
    pub fn import(v: &Value) -> Result<Pending, Error> {
        let o = v.as_object().ok_or_else(import_error)?;
        let text = |n: &str| -> Result<String, Error> {
            o.get(n)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(import_error)
        };
        let list = |n: &str| -> Result<Vec<String>, Error> {
            o.get(n)
                .and_then(Value::as_array)
                .ok_or_else(import_error)?
                .iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(import_error))
                .collect()
        };
        if o.get("v").and_then(Value::as_u64) != Some(EXPORT_VERSION) {
            return Err(import_error());
        }
        let encs = list("encs")?
            .iter()
            .map(|n| Enc::from_name(n).ok_or_else(import_error))
            .collect::<Result<Vec<_>, _>>()?;
        let d = URL_SAFE_NO_PAD
            .decode(text("d")?)
            .map_err(|_| import_error())?;
        let key = EcdhKey::from_secret(&d).map_err(|cause| Error::Jose {
            what: "encryption key",
            cause,
        })?;
        Ok(Pending {
            state: text("state")?,
            nonce: text("nonce")?,
            client_id: text("client_id")?,
            response_uri: text("response_uri")?,
            ids: list("ids")?,
            expires_at: o
                .get("exp")
                .and_then(Value::as_u64)
                .ok_or_else(import_error)?,
            encs,
            key,
        })
    }

    /// The `state` of this request: the key under which the caller stores it.
    #[must_use]
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The `kid` of this request's encryption key (its RFC 7638 thumbprint): the wallet's
    /// JWE names it, so the caller can find the pending request an answer is for. A lookup
    /// key only: [`Pending::open`] still requires the JWE to decrypt with this key.
    #[must_use]
    pub fn key_id(&self) -> &str {
        self.key.kid()
    }

    /// The request's `nonce`.
    #[must_use]
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// When the request stops being answerable (seconds since the epoch).
    #[must_use]
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// Opens the `response` form parameter of the wallet's POST: not after expiry; the JWE
    /// decrypts with this request's key; the payload is a JSON object (strict reader) with
    /// our `state`, no `error`, and a `vp_token` object whose keys are exactly the
    /// requested credential ids, each an array of 1..=`max_per_credential` strings.
    pub fn open(self, response: &str, now: u64, limits: &ResponseLimits) -> Result<Opened, Error> {
        if now > self.expires_at {
            return Err(Error::Expired);
        }
        // The kid of our key is its RFC 7638 thumbprint, base64url.
        let jwk_thumbprint = URL_SAFE_NO_PAD.decode(self.key.kid()).unwrap_or_default();
        let plain = self
            .key
            .decrypt(response, &self.encs, &limits.jwe)
            .map_err(|cause| Error::Jose {
                what: "response",
                cause,
            })?;
        let body =
            jose::json::parse_object(&plain, limits.max_depth, "response").map_err(|cause| {
                match cause {
                    jose::Error::Json { .. } => Error::Response {
                        reason: "not a JSON object",
                    },
                    cause => Error::Jose {
                        what: "response",
                        cause,
                    },
                }
            })?;
        if let Some(e) = body.get("error") {
            return Err(Error::Wallet {
                error: clip(e.as_str().unwrap_or("(not a string)")),
            });
        }
        match body.get("state") {
            Some(Value::String(s)) if *s == self.state => {}
            _ => return Err(Error::State),
        }
        let Some(Value::Object(token)) = body.get("vp_token") else {
            return Err(Error::Response {
                reason: "vp_token is not an object",
            });
        };
        let mut vp_token = BTreeMap::new();
        for (id, v) in token {
            if !self.ids.contains(id) {
                return Err(Error::Unrequested { id: clip(id) });
            }
            let list = match v {
                Value::Array(a) if !a.is_empty() && a.len() <= limits.max_per_credential => a
                    .iter()
                    .map(|p| match p {
                        Value::String(s) if !s.is_empty() => Ok(s.clone()),
                        _ => Err(Error::Response {
                            reason: "a presentation is not a non-empty string",
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
                _ => {
                    return Err(Error::Response {
                        reason: "a vp_token entry is not an array of presentations of allowed length",
                    });
                }
            };
            vp_token.insert(id.clone(), list);
        }
        if let Some(id) = self.ids.iter().find(|id| !vp_token.contains_key(*id)) {
            return Err(Error::Missing { id: id.clone() });
        }
        Ok(Opened {
            vp_token,
            nonce: self.nonce,
            client_id: self.client_id,
            response_uri: self.response_uri,
            jwk_thumbprint,
        })
    }
}
