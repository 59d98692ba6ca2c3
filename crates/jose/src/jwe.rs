//! Compact JWE for one profile only: `alg: ECDH-ES` (direct key agreement on P-256) with
//! `enc: A128GCM` or `A256GCM`, decrypted with a key pair we generated ourselves. This is
//! what an OpenID4VP `direct_post.jwt` response is (and the only JWE Varco receives).
//!
//! The private key is an aws-lc-rs agreement key (ring's agreement keys cannot leave the
//! process that made them). [`EcdhKey::decrypt`] consumes the key: in one process an
//! [`EcdhKey`] decrypts exactly one message and is gone, whatever the outcome. To let any
//! replica of a deployment open the answer, the scalar can be exported
//! ([`EcdhKey::secret`]) and the key rebuilt from it ([`EcdhKey::from_secret`]): the
//! caller seals the export and keeps it where one-time use holds across processes (a
//! record taken atomically). One key per request, one response per key.
//!
//! Key derivation is the Concat KDF of NIST SP 800-56A as RFC 7518 §4.6.2 profiles it:
//! `SHA-256(00000001 ‖ Z ‖ len‖enc ‖ len‖apu ‖ len‖apv ‖ keybits)`, one round (the
//! longest key is 256 bits). The protected header, as received, is the AEAD's additional
//! data, so a header changed in transit fails decryption.

use aws_lc_rs::agreement::{self as lc_agreement, PrivateKey};
use aws_lc_rs::encoding::AsBigEndian as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::json::parse_object;

/// Content encryption algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enc {
    /// AES-128 in GCM mode.
    A128Gcm,
    /// AES-256 in GCM mode.
    A256Gcm,
}

impl Enc {
    /// The JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Enc::A128Gcm => "A128GCM",
            Enc::A256Gcm => "A256GCM",
        }
    }

    /// The algorithm of a JOSE name, if accepted.
    #[must_use]
    pub fn from_name(n: &str) -> Option<Enc> {
        match n {
            "A128GCM" => Some(Enc::A128Gcm),
            "A256GCM" => Some(Enc::A256Gcm),
            _ => None,
        }
    }

    fn aead(self) -> &'static aead::Algorithm {
        match self {
            Enc::A128Gcm => &aead::AES_128_GCM,
            Enc::A256Gcm => &aead::AES_256_GCM,
        }
    }
}

/// Bounds checked before any decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JweLimits {
    /// The whole compact JWE, in bytes. Default 256 KiB (a response with a few
    /// credential presentations).
    pub max_bytes: usize,
    /// The decoded protected header, in bytes. Default 2 KiB.
    pub max_header_bytes: usize,
}

impl Default for JweLimits {
    fn default() -> Self {
        JweLimits {
            max_bytes: 256 * 1024,
            max_header_bytes: 2048,
        }
    }
}

/// Longest `apu` / `apv` accepted, decoded.
const MAX_PARTY_INFO: usize = 256;

/// A P-256 key agreement key pair of ours, for one JWE.
pub struct EcdhKey {
    private: PrivateKey,
    /// Uncompressed SEC1 point `04 ‖ x ‖ y`.
    public: Vec<u8>,
    kid: String,
}

impl std::fmt::Debug for EcdhKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("EcdhKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn bad(reason: &'static str) -> Error {
    Error::Jwe { reason }
}

fn b64(seg: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD.decode(seg).map_err(|_| Error::Base64)
}

/// Bytes of a P-256 private scalar.
const SCALAR_LEN: usize = 32;

impl EcdhKey {
    /// A fresh key pair, its scalar drawn from `rng`; its `kid` is the RFC 7638 thumbprint
    /// of the public key.
    pub fn generate(rng: &dyn SecureRandom) -> Result<EcdhKey, Error> {
        // A uniformly random 256-bit string is a valid scalar (non-zero, below the group
        // order) but for a chance of about 2^-32; draw again then.
        for _ in 0..8 {
            let mut d = [0u8; SCALAR_LEN];
            rng.fill(&mut d).map_err(|_| Error::Crypto)?;
            let key = EcdhKey::from_secret(&d);
            d.fill(0);
            if let Ok(k) = key {
                return Ok(k);
            }
        }
        Err(Error::Crypto)
    }

    /// The key pair of a P-256 scalar (32 bytes, big-endian), as [`EcdhKey::secret`]
    /// exported it. `kid` and public key are derived again.
    pub fn from_secret(d: &[u8]) -> Result<EcdhKey, Error> {
        let private =
            PrivateKey::from_private_key(&lc_agreement::ECDH_P256, d).map_err(|_| Error::Crypto)?;
        let public = private
            .compute_public_key()
            .map_err(|_| Error::Crypto)?
            .as_ref()
            .to_vec();
        if public.len() != 65 || public[0] != 0x04 {
            return Err(Error::Crypto);
        }
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(&public[1..33]),
            URL_SAFE_NO_PAD.encode(&public[33..])
        );
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            canonical.as_bytes(),
        ));
        Ok(EcdhKey {
            private,
            public,
            kid,
        })
    }

    /// The private scalar, 32 bytes big-endian: for the caller to seal and keep with the
    /// request this key answers (see the module documentation). Whoever holds it can read
    /// the response: never log it, never store it unsealed.
    pub fn secret(&self) -> Result<Vec<u8>, Error> {
        let bin: aws_lc_rs::encoding::EcPrivateKeyBin<'static> =
            self.private.as_be_bytes().map_err(|_| Error::Crypto)?;
        let d = bin.as_ref().to_vec();
        if d.len() == SCALAR_LEN {
            Ok(d)
        } else {
            Err(Error::Crypto)
        }
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK for an encryption key set (`use: enc`, `alg: ECDH-ES`).
    #[must_use]
    pub fn public_jwk(&self) -> Value {
        json!({
            "kty": "EC", "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&self.public[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&self.public[33..]),
            "use": "enc", "alg": "ECDH-ES", "kid": self.kid,
        })
    }

    /// Decrypts a compact JWE made for this key with one of `allowed` content encryptions;
    /// the key is consumed. Checked, in order: size; five segments with an empty encrypted
    /// key; the header (strict JSON; `alg` exactly `ECDH-ES`; `enc` allowed; no `zip`,
    /// `crit`, `jku`, `jwk`, `x5u`, `x5c`; `kid`, if present, ours; `epk` a P-256 public
    /// key); IV and tag lengths; then key agreement and authenticated decryption.
    pub fn decrypt(
        self,
        token: &str,
        allowed: &[Enc],
        limits: &JweLimits,
    ) -> Result<Vec<u8>, Error> {
        if token.len() > limits.max_bytes {
            return Err(Error::TooLarge {
                len: token.len(),
                max: limits.max_bytes,
            });
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(ek), Some(iv64), Some(ct64), Some(tag64), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("not five segments"));
        };
        if h64.is_empty() || ct64.is_empty() {
            return Err(bad("empty header or ciphertext"));
        }
        if h64.len() > limits.max_header_bytes.div_ceil(3) * 4 {
            return Err(Error::TooLarge {
                len: h64.len(),
                max: limits.max_header_bytes,
            });
        }
        let header = parse_object(&b64(h64)?, 4, "JWE header")?;
        let enc = check_header(&header, allowed, &self.kid)?;
        if !ek.is_empty() {
            return Err(bad("encrypted key present under direct key agreement"));
        }
        let epk = epk_point(&header)?;
        let apu = party_info(&header, "apu")?;
        let apv = party_info(&header, "apv")?;
        let iv = b64(iv64)?;
        let tag = b64(tag64)?;
        let nonce = Nonce::try_assume_unique_for_key(&iv).map_err(|_| bad("IV is not 96 bits"))?;
        if tag.len() != 16 {
            return Err(bad("tag is not 128 bits"));
        }
        let mut buf = b64(ct64)?;
        buf.extend_from_slice(&tag);
        let peer = lc_agreement::UnparsedPublicKey::new(&lc_agreement::ECDH_P256, &epk);
        let cek = lc_agreement::agree(&self.private, peer, Error::JweDecrypt, |z| {
            Ok(concat_kdf(z, enc, &apu, &apv))
        })?;
        let key =
            UnboundKey::new(enc.aead(), &cek[..enc.aead().key_len()]).map_err(|_| Error::Crypto)?;
        let plain = LessSafeKey::new(key)
            .open_in_place(nonce, Aad::from(h64.as_bytes()), &mut buf)
            .map_err(|_| Error::JweDecrypt)?;
        Ok(plain.to_vec())
    }
}

fn check_header(h: &Map<String, Value>, allowed: &[Enc], our_kid: &str) -> Result<Enc, Error> {
    match h.get("alg") {
        Some(Value::String(a)) if a == "ECDH-ES" => {}
        Some(Value::String(a)) if a.eq_ignore_ascii_case("none") => return Err(Error::AlgNone),
        _ => return Err(Error::JweAlg),
    }
    let enc = h
        .get("enc")
        .and_then(Value::as_str)
        .and_then(Enc::from_name)
        .filter(|e| allowed.contains(e))
        .ok_or(Error::JweAlg)?;
    header_rules(h, our_kid)?;
    Ok(enc)
}

/// The header rules every JWE we decrypt obeys, whatever its key management: no
/// compression, no `crit`, no header that carries or points at a key, and a `kid`, if any,
/// naming our key. Shared with `jwe_rsa`, so the two decrypters cannot drift apart.
pub(crate) fn header_rules(h: &Map<String, Value>, our_kid: &str) -> Result<(), Error> {
    if h.contains_key("zip") {
        // Compression before encryption leaks through lengths and inflates without bound.
        return Err(bad("zip refused"));
    }
    if h.contains_key("crit") {
        return Err(Error::Crit);
    }
    if let Some(name) = ["jku", "jwk", "x5u", "x5c"]
        .iter()
        .find(|n| h.contains_key(**n))
    {
        return Err(Error::HeaderKey { name });
    }
    match h.get("kid") {
        None => Ok(()),
        Some(Value::String(k)) if k == our_kid => Ok(()),
        Some(_) => Err(Error::JweKid),
    }
}

/// The sender's ephemeral public key, as an uncompressed P-256 point (aws-lc checks that it
/// is on the curve during agreement).
fn epk_point(h: &Map<String, Value>) -> Result<Vec<u8>, Error> {
    let epk = h
        .get("epk")
        .and_then(Value::as_object)
        .ok_or(bad("no epk object"))?;
    if epk.get("kty").and_then(Value::as_str) != Some("EC")
        || epk.get("crv").and_then(Value::as_str) != Some("P-256")
    {
        return Err(bad("epk is not an EC P-256 key"));
    }
    if epk.contains_key("d") {
        return Err(bad("epk carries private material"));
    }
    let coord = |n: &str| -> Result<Vec<u8>, Error> {
        let v = epk
            .get(n)
            .and_then(Value::as_str)
            .ok_or(bad("epk coordinate missing"))?;
        let b = b64(v)?;
        if b.len() == 32 {
            Ok(b)
        } else {
            Err(bad("epk coordinate is not 32 bytes"))
        }
    };
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&coord("x")?);
    point.extend_from_slice(&coord("y")?);
    Ok(point)
}

fn party_info(h: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Error> {
    match h.get(name) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => {
            let b = b64(s)?;
            if b.len() > MAX_PARTY_INFO {
                return Err(bad("apu or apv too long"));
            }
            Ok(b)
        }
        Some(_) => Err(bad("apu or apv is not a string")),
    }
}

fn len_prefixed(out: &mut Vec<u8>, data: &[u8]) {
    // Lengths are bounded (header size, MAX_PARTY_INFO) far below u32::MAX.
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(data);
}

/// RFC 7518 §4.6.2: the content encryption key for `enc` (its first `key_len` bytes).
fn concat_kdf(z: &[u8], enc: Enc, apu: &[u8], apv: &[u8]) -> Vec<u8> {
    let bits: u32 = match enc {
        Enc::A128Gcm => 128,
        Enc::A256Gcm => 256,
    };
    let mut input = Vec::with_capacity(4 + z.len() + 64 + apu.len() + apv.len());
    input.extend_from_slice(&1u32.to_be_bytes());
    input.extend_from_slice(z);
    len_prefixed(&mut input, enc.name().as_bytes());
    len_prefixed(&mut input, apu);
    len_prefixed(&mut input, apv);
    input.extend_from_slice(&bits.to_be_bytes());
    ring::digest::digest(&ring::digest::SHA256, &input)
        .as_ref()
        .to_vec()
}
