//! Our own signatures: the Entity Configuration and, later, request objects and client
//! assertions.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;
use ring::signature::{
    self, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RsaKeyPair,
    RsaPublicKeyComponents,
};
use serde_json::{Map, Value};

use crate::jwk::{Curve, Material, thumbprint};
use crate::{Alg, Error, Jwk};

enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

/// A private signing key with its `kid` and algorithm.
pub struct Signer {
    kid: String,
    alg: Alg,
    pair: Pair,
    public: Jwk,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .field("alg", &self.alg.name())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// An RSA signer (`alg` one of RS256/384/512, PS256/384/512) from a PKCS#8 (DER) key of
    /// at least 2048 bits. `kid` defaults to the RFC 7638 thumbprint.
    pub fn rsa_from_pkcs8(alg: Alg, pkcs8: &[u8], kid: Option<&str>) -> Result<Signer, Error> {
        if !alg.is_rsa() {
            return Err(Error::SigningKey);
        }
        let pair = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| Error::SigningKey)?;
        if pair.public().modulus_len() < 256 {
            return Err(Error::JwkRsaTooSmall {
                bits: pair.public().modulus_len() * 8,
            });
        }
        let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        let material = Material::Rsa {
            n: parts.n,
            e: parts.e,
        };
        Ok(Signer::with(alg, Pair::Rsa(pair), material, kid))
    }

    /// An ES256 signer from a PKCS#8 (DER) P-256 key. `kid` defaults to the thumbprint.
    pub fn es256_from_pkcs8(
        pkcs8: &[u8],
        kid: Option<&str>,
        rng: &dyn SecureRandom,
    ) -> Result<Signer, Error> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, rng)
            .map_err(|_| Error::SigningKey)?;
        let material = Material::Ec {
            curve: Curve::P256,
            point: pair.public_key().as_ref().to_vec(),
        };
        Ok(Signer::with(Alg::Es256, Pair::Ec(pair), material, kid))
    }

    fn with(alg: Alg, pair: Pair, material: Material, kid: Option<&str>) -> Signer {
        let kid = kid.map_or_else(|| thumbprint(&material), str::to_owned);
        Signer {
            public: Jwk::from_parts(kid.clone(), material, alg),
            kid,
            alg,
            pair,
        }
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm.
    #[must_use]
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The public key, with `kid`, `alg` and `use: sig`.
    #[must_use]
    pub fn jwk(&self) -> &Jwk {
        &self.public
    }

    /// Signs `claims` as a compact JWS with header `{"alg", "kid", "typ"}`.
    pub fn sign(
        &self,
        typ: &str,
        claims: &Map<String, Value>,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        self.sign_with(typ, &Map::new(), claims, rng)
    }

    /// Like [`Signer::sign`], with further header members (`x5c` for an X.509-identified
    /// request object, `trust_chain` for a federation one). `alg`, `kid` and `typ` are
    /// always this signer's: `extra` cannot override them.
    pub fn sign_with(
        &self,
        typ: &str,
        extra: &Map<String, Value>,
        claims: &Map<String, Value>,
        rng: &dyn SecureRandom,
    ) -> Result<String, Error> {
        let mut header = extra.clone();
        header.insert("alg".into(), Value::String(self.alg.name().into()));
        header.insert("kid".into(), Value::String(self.kid.clone()));
        header.insert("typ".into(), Value::String(typ.into()));
        let header = serde_json::to_vec(&header).map_err(|_| Error::Crypto)?;
        let payload = serde_json::to_vec(claims).map_err(|_| Error::Crypto)?;
        let mut out = URL_SAFE_NO_PAD.encode(header);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let sig = match &self.pair {
            Pair::Rsa(p) => {
                let encoding: &'static dyn signature::RsaEncoding = match self.alg {
                    Alg::Rs384 => &signature::RSA_PKCS1_SHA384,
                    Alg::Rs512 => &signature::RSA_PKCS1_SHA512,
                    Alg::Ps256 => &signature::RSA_PSS_SHA256,
                    Alg::Ps384 => &signature::RSA_PSS_SHA384,
                    Alg::Ps512 => &signature::RSA_PSS_SHA512,
                    _ => &signature::RSA_PKCS1_SHA256,
                };
                let mut sig = vec![0; p.public().modulus_len()];
                p.sign(encoding, rng, out.as_bytes(), &mut sig)
                    .map_err(|_| Error::Crypto)?;
                sig
            }
            Pair::Ec(p) => p
                .sign(rng, out.as_bytes())
                .map_err(|_| Error::Crypto)?
                .as_ref()
                .to_vec(),
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        Ok(out)
    }
}
