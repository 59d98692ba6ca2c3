//! The downstream token: a compact JWS over the principal, and the rotating key set.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::represent::Acting;
use crate::{Error, Principal};

/// Signature algorithm of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256, fixed-length (r‖s) signature (RFC 7518 §3.4).
    Es256,
    /// Ed25519 (RFC 8037).
    EdDsa,
}

impl Algorithm {
    /// The JOSE `alg` value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Es256 => "ES256",
            Algorithm::EdDsa => "EdDSA",
        }
    }
}

/// ring key pair behind a [`SigningKey`].
enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// One signing key with its id.
pub struct SigningKey {
    kid: String,
    pair: Pair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No private material, ever.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm().as_str())
            .finish_non_exhaustive()
    }
}

/// Longest accepted key id.
const MAX_KID: usize = 64;

fn check_kid(kid: &str) -> Result<(), Error> {
    let ok = !kid.is_empty()
        && kid.len() <= MAX_KID
        && kid
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok { Ok(()) } else { Err(Error::InvalidKid) }
}

impl SigningKey {
    /// An ES256 key from a PKCS#8 (DER) P-256 private key. `kid` must match
    /// `[A-Za-z0-9._-]{1,64}`.
    pub fn es256_from_pkcs8(
        kid: &str,
        pkcs8: &[u8],
        rng: &dyn SecureRandom,
    ) -> Result<Self, Error> {
        check_kid(kid)?;
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng).map_err(
            |_| Error::InvalidKey {
                kid: kid.to_owned(),
            },
        )?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            pair: Pair::Ec(pair),
        })
    }

    /// An EdDSA key from a PKCS#8 (DER, v1 or v2) Ed25519 private key.
    pub fn ed25519_from_pkcs8(kid: &str, pkcs8: &[u8]) -> Result<Self, Error> {
        check_kid(kid)?;
        // v2 (ring's own format) is checked against its embedded public key; v1 (OpenSSL's
        // `genpkey`) carries none, so the public key is derived.
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map_err(|_| Error::InvalidKey {
                kid: kid.to_owned(),
            })?;
        Ok(SigningKey {
            kid: kid.to_owned(),
            pair: Pair::Ed(pair),
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    #[must_use]
    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ec(_) => Algorithm::Es256,
            Pair::Ed(_) => Algorithm::EdDsa,
        }
    }

    /// Raw public key: uncompressed SEC1 point (`04‖x‖y`, 65 bytes) for ES256, 32 bytes for
    /// Ed25519.
    #[must_use]
    pub fn public_key(&self) -> &[u8] {
        match &self.pair {
            Pair::Ec(p) => p.public_key().as_ref(),
            Pair::Ed(p) => p.public_key().as_ref(),
        }
    }

    /// The public JWK (RFC 7517/7518/8037) with `kid`, `use: "sig"` and `alg`.
    #[must_use]
    pub fn jwk(&self) -> Value {
        let public = self.public_key();
        match self.pair {
            Pair::Ec(_) => {
                // ring returns the uncompressed point: 0x04, 32 bytes x, 32 bytes y.
                let (x, y) = match public {
                    [0x04, xy @ ..] if xy.len() == 64 => xy.split_at(32),
                    _ => (&[][..], &[][..]),
                };
                json!({
                    "kty": "EC", "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                    "kid": self.kid, "use": "sig", "alg": "ES256",
                })
            }
            Pair::Ed(_) => json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(public),
                "kid": self.kid, "use": "sig", "alg": "EdDSA",
            }),
        }
    }

    fn sign_bytes(&self, msg: &[u8], rng: &dyn SecureRandom) -> Result<Vec<u8>, Error> {
        match &self.pair {
            Pair::Ec(p) => p
                .sign(rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Crypto),
            Pair::Ed(p) => Ok(p.sign(msg).as_ref().to_vec()),
        }
    }
}

/// Lifecycle state of a key in a [`KeySet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// In the JWKS so verifiers can cache it, but not signing yet.
    Published,
    /// The one key that signs; in the JWKS.
    Active,
    /// No longer signs; stays in the JWKS while `now < until` (unix seconds), i.e. until the
    /// last token it signed has expired.
    Retiring {
        /// Unix seconds after which the key leaves the JWKS.
        until: u64,
    },
}

/// What a token is for: issuer, audience and lifetime.
#[derive(Debug, Clone, Copy)]
pub struct TokenParams<'a> {
    /// `iss`.
    pub issuer: &'a str,
    /// `aud` (one audience per upstream).
    pub audience: &'a str,
    /// Lifetime in seconds: `exp = iat + ttl`.
    pub ttl: u64,
}

/// The signing keys, with rotation overlap.
///
/// Invariants: at most one key is [`KeyState::Active`]; key ids are unique; a key becomes
/// active through [`KeySet::rotate`] only after having been [`KeyState::Published`].
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<(SigningKey, KeyState)>,
}

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

#[derive(Serialize)]
struct Claims<'a, S: Serialize> {
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    jti: &'a str,
    /// A [`Principal`], or an [`Acting`] (the represented principal plus `act` and
    /// `representation`).
    #[serde(flatten)]
    subject: &'a S,
}

impl KeySet {
    /// An empty key set.
    #[must_use]
    pub fn new() -> Self {
        KeySet::default()
    }

    /// Adds a key in the given state. Refuses a duplicate `kid` and a second active key.
    pub fn insert(&mut self, key: SigningKey, state: KeyState) -> Result<(), Error> {
        if self.keys.iter().any(|(k, _)| k.kid == key.kid) {
            return Err(Error::DuplicateKid { kid: key.kid });
        }
        if state == KeyState::Active && self.active().is_some() {
            return Err(Error::ActiveKey {
                reason: "a key is already active",
            });
        }
        self.keys.push((key, state));
        Ok(())
    }

    /// Makes the published key `kid` active; the previously active key (if any) becomes
    /// [`KeyState::Retiring`] until `now + max_ttl`, so every token it signed can still be
    /// verified against the JWKS.
    pub fn rotate(&mut self, kid: &str, now: u64, max_ttl: u64) -> Result<(), Error> {
        let idx = self
            .keys
            .iter()
            .position(|(k, _)| k.kid == kid)
            .ok_or_else(|| Error::UnknownKid {
                kid: kid.to_owned(),
            })?;
        if self.keys[idx].1 != KeyState::Published {
            return Err(Error::NotPublished {
                kid: kid.to_owned(),
            });
        }
        let until = now.saturating_add(max_ttl);
        for (_, state) in &mut self.keys {
            if *state == KeyState::Active {
                *state = KeyState::Retiring { until };
            }
        }
        self.keys[idx].1 = KeyState::Active;
        Ok(())
    }

    /// Drops retiring keys whose overlap has ended (`until <= now`).
    pub fn prune(&mut self, now: u64) {
        self.keys
            .retain(|(_, s)| !matches!(s, KeyState::Retiring { until } if *until <= now));
    }

    /// The state of key `kid`, if present.
    #[must_use]
    pub fn state(&self, kid: &str) -> Option<KeyState> {
        self.keys
            .iter()
            .find(|(k, _)| k.kid == kid)
            .map(|(_, s)| *s)
    }

    /// The active key, if any.
    #[must_use]
    pub fn active(&self) -> Option<&SigningKey> {
        self.keys
            .iter()
            .find(|(_, s)| *s == KeyState::Active)
            .map(|(k, _)| k)
    }

    /// The JSON Web Key Set (`{"keys":[…]}`) of every key published at `now`: published,
    /// active, and retiring with `now < until`.
    #[must_use]
    pub fn jwks(&self, now: u64) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter(|(_, s)| match s {
                KeyState::Published | KeyState::Active => true,
                KeyState::Retiring { until } => now < *until,
            })
            .map(|(k, _)| k.jwk())
            .collect();
        json!({ "keys": keys })
    }

    /// Mints a compact JWS for `principal` with the active key: header
    /// `{"alg","kid","typ":"JWT"}`, claims = principal + `iss`, `aud`, `iat = now`,
    /// `exp = now + ttl`, `jti` (16 random bytes, base64url). `rng` supplies the `jti` and
    /// the ECDSA nonce.
    pub fn sign(
        &self,
        principal: &Principal,
        params: &TokenParams<'_>,
        now: u64,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        self.sign_subject(principal, params, now, rng)
    }

    /// Mints the token of an acting session: as [`KeySet::sign`], with the represented party
    /// as the principal (`sub`, names, `profile`), the delegate's login as `auth`, the
    /// delegate as `act` (RFC 8693 §4.1) and the `representation` used. Only an [`Acting`]
    /// made by [`crate::represent::act`] can be passed, so no caller-written `act` is signed.
    pub fn sign_acting(
        &self,
        acting: &Acting,
        params: &TokenParams<'_>,
        now: u64,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        self.sign_subject(acting, params, now, rng)
    }

    /// Signs caller-built `claims` with the active key, header `{"alg","kid","typ"}`: for
    /// the OpenID Provider's ID tokens (`typ` `JWT`) and logout tokens (`logout+jwt`), whose
    /// claims the `oidc` crate builds. `alg` and `kid` stay the key set's.
    pub fn sign_claims(
        &self,
        typ: &'static str,
        claims: &serde_json::Map<String, Value>,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        let key = self.active().ok_or(Error::ActiveKey {
            reason: "no active key",
        })?;
        let header = Header {
            alg: key.algorithm().as_str(),
            kid: &key.kid,
            typ,
        };
        let header = serde_json::to_vec(&header).map_err(|_| Error::Serialize)?;
        let claims = serde_json::to_vec(claims).map_err(|_| Error::Serialize)?;
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut out);
        let signature = key.sign_bytes(out.as_bytes(), rng)?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }

    fn sign_subject<S: Serialize>(
        &self,
        subject: &S,
        params: &TokenParams<'_>,
        now: u64,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        let key = self.active().ok_or(Error::ActiveKey {
            reason: "no active key",
        })?;
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| Error::Crypto)?;
        let jti = URL_SAFE_NO_PAD.encode(jti);
        let header = Header {
            alg: key.algorithm().as_str(),
            kid: &key.kid,
            typ: "JWT",
        };
        let claims = Claims {
            iss: params.issuer,
            aud: params.audience,
            iat: now,
            exp: now.saturating_add(params.ttl),
            jti: &jti,
            subject,
        };
        let header = serde_json::to_vec(&header).map_err(|_| Error::Serialize)?;
        let claims = serde_json::to_vec(&claims).map_err(|_| Error::Serialize)?;
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut out);
        let signature = key.sign_bytes(out.as_bytes(), rng)?;
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut out);
        Ok(out)
    }
}
