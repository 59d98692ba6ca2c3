//! Compact JWE as the SPID/CIE OpenID Connect profile encrypts UserInfo to a relying party:
//! key encryption `RSA-OAEP` or `RSA-OAEP-256` to our RSA key, content encryption
//! `A128CBC-HS256` or `A256CBC-HS512` (RFC 7518 §5.2: AES-CBC, then HMAC-SHA-2 over the
//! protected header, IV, ciphertext and header length). Nothing else is accepted.
//!
//! Order of work, so that forged input costs one RSA private operation at most and never
//! reaches the block cipher: size bounds, five segments, strict header (allow-listed `alg`
//! and `enc`, no `zip`, no `crit`, no key-carrying member, our `kid` if any), IV and tag
//! lengths, RSA-OAEP unwrap, CEK length for `enc`, then the HMAC tag compared in constant
//! time, and only then AES-CBC with PKCS#7 padding. The tag check before decryption closes
//! padding oracles: a ciphertext whose tag fails is never decrypted.
//!
//! [`encrypt_to`] is the same construction in the other direction, for the test peers that
//! play an OpenID Provider (Varco itself never encrypts to a peer).

use aws_lc_rs::cipher::{
    AES_128, AES_256, DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey,
    PaddedBlockEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::SecureRandom;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::JweLimits;
use crate::json::parse_object;

/// Key encryption algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (the default of the SPID/CIE reference code).
    RsaOaep,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256.
    RsaOaep256,
}

impl KeyAlg {
    /// The JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
        }
    }

    /// The algorithm named `n`, if accepted.
    #[must_use]
    pub fn from_name(n: &str) -> Option<KeyAlg> {
        match n {
            "RSA-OAEP" => Some(KeyAlg::RsaOaep),
            "RSA-OAEP-256" => Some(KeyAlg::RsaOaep256),
            _ => None,
        }
    }

    fn oaep(self) -> &'static OaepAlgorithm {
        match self {
            KeyAlg::RsaOaep => &OAEP_SHA1_MGF1SHA1,
            KeyAlg::RsaOaep256 => &OAEP_SHA256_MGF1SHA256,
        }
    }
}

/// Content encryption algorithms accepted (RFC 7518 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CbcHs {
    /// AES-128-CBC with HMAC-SHA-256 truncated to 128 bits; 256-bit CEK.
    A128CbcHs256,
    /// AES-256-CBC with HMAC-SHA-512 truncated to 256 bits; 512-bit CEK.
    A256CbcHs512,
}

impl CbcHs {
    /// The JOSE name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CbcHs::A128CbcHs256 => "A128CBC-HS256",
            CbcHs::A256CbcHs512 => "A256CBC-HS512",
        }
    }

    /// The algorithm named `n`, if accepted.
    #[must_use]
    pub fn from_name(n: &str) -> Option<CbcHs> {
        match n {
            "A128CBC-HS256" => Some(CbcHs::A128CbcHs256),
            "A256CBC-HS512" => Some(CbcHs::A256CbcHs512),
            _ => None,
        }
    }

    /// Half the CEK: the MAC key length, the AES key length and the tag length alike.
    fn half(self) -> usize {
        match self {
            CbcHs::A128CbcHs256 => 16,
            CbcHs::A256CbcHs512 => 32,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            CbcHs::A128CbcHs256 => hmac::HMAC_SHA256,
            CbcHs::A256CbcHs512 => hmac::HMAC_SHA512,
        }
    }

    fn aes(self) -> &'static aws_lc_rs::cipher::Algorithm {
        match self {
            CbcHs::A128CbcHs256 => &AES_128,
            CbcHs::A256CbcHs512 => &AES_256,
        }
    }
}

fn bad(reason: &'static str) -> Error {
    Error::Jwe { reason }
}

fn b64(seg: &str) -> Result<Vec<u8>, Error> {
    URL_SAFE_NO_PAD.decode(seg).map_err(|_| Error::Base64)
}

/// The RFC 7518 §5.2.2.1 tag: HMAC over `AAD ‖ IV ‖ ciphertext ‖ AL`, AL the AAD length in
/// bits as a 64-bit big-endian integer, truncated to half the MAC output.
fn tag(enc: CbcHs, mac_key: &[u8], aad: &[u8], iv: &[u8], ct: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(enc.hmac(), mac_key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(aad);
    ctx.update(iv);
    ctx.update(ct);
    let al = (aad.len() as u64).saturating_mul(8);
    ctx.update(&al.to_be_bytes());
    ctx.sign().as_ref()[..enc.half()].to_vec()
}

/// An RSA private key of ours that JWEs are encrypted to (`use: enc`).
pub struct RsaDecrypter {
    key: OaepPrivateDecryptingKey,
    kid: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RsaDecrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the private key.
        f.debug_struct("RsaDecrypter")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl RsaDecrypter {
    /// From a PKCS#8 (DER) RSA key of at least 2048 bits. `kid` defaults to the RFC 7638
    /// thumbprint of the public key.
    pub fn from_pkcs8(pkcs8: &[u8], kid: Option<&str>) -> Result<RsaDecrypter, Error> {
        let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| Error::SigningKey)?;
        if private.key_size_bits() < 2048 {
            return Err(Error::JwkRsaTooSmall {
                bits: private.key_size_bits(),
            });
        }
        // ring reads the same PKCS#8 for the public components (n, e) of the JWK.
        let pair = ring::signature::RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| Error::SigningKey)?;
        let parts = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(
            ring::signature::KeyPair::public_key(&pair),
        );
        let key = OaepPrivateDecryptingKey::new(private).map_err(|_| Error::SigningKey)?;
        let kid = kid.map_or_else(
            || {
                let canonical = format!(
                    r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                    URL_SAFE_NO_PAD.encode(&parts.e),
                    URL_SAFE_NO_PAD.encode(&parts.n)
                );
                URL_SAFE_NO_PAD.encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    canonical.as_bytes(),
                ))
            },
            str::to_owned,
        );
        Ok(RsaDecrypter {
            key,
            kid,
            n: parts.n,
            e: parts.e,
        })
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK for our key set: `use: enc`, `alg` the key encryption
    /// algorithm we ask peers to use.
    #[must_use]
    pub fn public_jwk(&self, alg: KeyAlg) -> Value {
        json!({
            "kty": "RSA",
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
            "use": "enc",
            "alg": alg.name(),
            "kid": self.kid,
        })
    }

    /// Decrypts a compact JWE made for this key with an allowed `alg` and `enc`. Checked
    /// in the order the module documentation gives; the plaintext is returned as is (the
    /// caller decides what it must be, e.g. a signed JWT).
    pub fn decrypt(
        &self,
        token: &str,
        algs: &[KeyAlg],
        encs: &[CbcHs],
        limits: &JweLimits,
    ) -> Result<Vec<u8>, Error> {
        if token.len() > limits.max_bytes {
            return Err(Error::TooLarge {
                len: token.len(),
                max: limits.max_bytes,
            });
        }
        let mut parts = token.split('.');
        let (Some(h64), Some(ek64), Some(iv64), Some(ct64), Some(tag64), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("not five segments"));
        };
        if h64.is_empty() || ek64.is_empty() || ct64.is_empty() {
            return Err(bad("empty header, encrypted key or ciphertext"));
        }
        if h64.len() > limits.max_header_bytes.div_ceil(3) * 4 {
            return Err(Error::TooLarge {
                len: h64.len(),
                max: limits.max_header_bytes,
            });
        }
        let header = parse_object(&b64(h64)?, 4, "JWE header")?;
        let (alg, enc) = check_header(&header, algs, encs, &self.kid)?;
        let ek = b64(ek64)?;
        if ek.len() != self.key.key_size_bytes() {
            return Err(bad("encrypted key is not one RSA block"));
        }
        let iv = b64(iv64)?;
        let iv: [u8; 16] = iv
            .as_slice()
            .try_into()
            .map_err(|_| bad("IV is not 128 bits"))?;
        let got_tag = b64(tag64)?;
        if got_tag.len() != enc.half() {
            return Err(bad("tag length does not fit enc"));
        }
        let ct = b64(ct64)?;
        if ct.len() % 16 != 0 {
            return Err(bad("ciphertext is not whole blocks"));
        }
        let mut cek = vec![0u8; self.key.min_output_size()];
        let cek = self
            .key
            .decrypt(alg.oaep(), &ek, &mut cek, None)
            .map_err(|_| Error::JweDecrypt)?;
        if cek.len() != 2 * enc.half() {
            // A CEK of another length is a failure like any other: not distinguishable
            // from a bad tag by its code.
            return Err(Error::JweDecrypt);
        }
        let (mac_key, enc_key) = cek.split_at(enc.half());
        let want = tag(enc, mac_key, h64.as_bytes(), &iv, &ct);
        aws_lc_rs::constant_time::verify_slices_are_equal(&want, &got_tag)
            .map_err(|_| Error::JweDecrypt)?;
        let key = UnboundCipherKey::new(enc.aes(), enc_key).map_err(|_| Error::Crypto)?;
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).map_err(|_| Error::Crypto)?;
        let mut buf = ct;
        let plain = key
            .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv)))
            .map_err(|_| Error::JweDecrypt)?;
        Ok(plain.to_vec())
    }
}

fn check_header(
    h: &Map<String, Value>,
    algs: &[KeyAlg],
    encs: &[CbcHs],
    our_kid: &str,
) -> Result<(KeyAlg, CbcHs), Error> {
    let alg = match h.get("alg") {
        Some(Value::String(a)) if a.eq_ignore_ascii_case("none") => return Err(Error::AlgNone),
        Some(Value::String(a)) => KeyAlg::from_name(a)
            .filter(|a| algs.contains(a))
            .ok_or(Error::JweAlg)?,
        _ => return Err(Error::JweAlg),
    };
    let enc = h
        .get("enc")
        .and_then(Value::as_str)
        .and_then(CbcHs::from_name)
        .filter(|e| encs.contains(e))
        .ok_or(Error::JweAlg)?;
    crate::jwe::header_rules(h, our_kid)?;
    Ok((alg, enc))
}

/// DER of an X.509 SubjectPublicKeyInfo holding the RSA key (n, e).
fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, l: usize) {
        if l < 0x80 {
            out.push(l as u8);
        } else {
            let bytes: Vec<u8> = l
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend_from_slice(&bytes);
        }
    }
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        len(&mut out, body.len());
        out.extend_from_slice(body);
        out
    }
    fn int(v: &[u8]) -> Vec<u8> {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let mut body = Vec::with_capacity(v.len() + 1);
        if v.first().is_none_or(|b| b & 0x80 != 0) {
            body.push(0);
        }
        body.extend_from_slice(&v);
        tlv(0x02, &body)
    }
    let mut rsa_key = int(n);
    rsa_key.extend(int(e));
    let rsa_key = tlv(0x30, &rsa_key);
    let mut bits = vec![0u8];
    bits.extend(rsa_key);
    // AlgorithmIdentifier rsaEncryption (1.2.840.113549.1.1.1) with NULL parameters.
    let mut spki = vec![
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    spki.extend(tlv(0x03, &bits));
    tlv(0x30, &spki)
}

/// Encrypts `plaintext` to the RSA public JWK `recipient` (its `kid` goes in the header),
/// with `cty` when given. For test peers playing an OpenID Provider.
pub fn encrypt_to(
    recipient: &Value,
    alg: KeyAlg,
    enc: CbcHs,
    cty: Option<&str>,
    plaintext: &[u8],
    rng: &dyn SecureRandom,
) -> Result<String, Error> {
    let field = |n: &str| -> Result<Vec<u8>, Error> {
        recipient
            .get(n)
            .and_then(Value::as_str)
            .ok_or(Error::Jwk {
                reason: "RSA n or e missing",
            })
            .and_then(b64)
    };
    let spki = rsa_spki(&field("n")?, &field("e")?);
    let public = PublicEncryptingKey::from_der(&spki).map_err(|_| Error::Jwk {
        reason: "not an RSA public key",
    })?;
    // Round-trip check of the DER encoder above (cheap, and it keeps the encoder honest).
    let _ = public.as_der().map_err(|_| Error::Crypto)?;
    let public = OaepPublicEncryptingKey::new(public).map_err(|_| Error::Crypto)?;
    let mut header = Map::new();
    header.insert("alg".into(), Value::String(alg.name().into()));
    header.insert("enc".into(), Value::String(enc.name().into()));
    if let Some(kid) = recipient.get("kid").and_then(Value::as_str) {
        header.insert("kid".into(), Value::String(kid.into()));
    }
    if let Some(c) = cty {
        header.insert("cty".into(), Value::String(c.into()));
    }
    let h64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|_| Error::Crypto)?);
    let mut cek = vec![0u8; 2 * enc.half()];
    rng.fill(&mut cek).map_err(|_| Error::Crypto)?;
    let mut iv = [0u8; 16];
    rng.fill(&mut iv).map_err(|_| Error::Crypto)?;
    let mut ek = vec![0u8; public.ciphertext_size()];
    let ek = public
        .encrypt(alg.oaep(), &cek, &mut ek, None)
        .map_err(|_| Error::Crypto)?
        .to_vec();
    let (mac_key, enc_key) = cek.split_at(enc.half());
    let key = UnboundCipherKey::new(enc.aes(), enc_key).map_err(|_| Error::Crypto)?;
    let key = PaddedBlockEncryptingKey::cbc_pkcs7(key).map_err(|_| Error::Crypto)?;
    let mut ct = plaintext.to_vec();
    key.less_safe_encrypt(&mut ct, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| Error::Crypto)?;
    let t = tag(enc, mac_key, h64.as_bytes(), &iv, &ct);
    Ok(format!(
        "{h64}.{}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(ek),
        URL_SAFE_NO_PAD.encode(iv),
        URL_SAFE_NO_PAD.encode(ct),
        URL_SAFE_NO_PAD.encode(t)
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7518 Appendix B.1 (A128CBC-HS256): K, P, IV, A and the expected E and T.
    #[test]
    fn rfc7518_b1_tag() {
        let k: Vec<u8> = (0u8..32).collect();
        let iv = hex("1af38c2dc2b96ffdd86694092341bc04");
        let a = b"The second principle of Auguste Kerckhoffs";
        let e = hex(concat!(
            "c80edfa32ddf39d5ef00c0b468834279a2e46a1b8049f792f76bfe54b903a9c9",
            "a94ac9b47ad2655c5f10f9aef71427e2fc6f9b3f399a221489f16362c7032336",
            "09d45ac69864e3321cf82935ac4096c86e133314c54019e8ca7980dfa4b9cf1b",
            "384c486f3a54c51078158ee5d79de59fbd34d848b3d69550a67646344427ade5",
            "4b8851ffb598f7f80074b9473c82e2db"
        ));
        let t = tag(CbcHs::A128CbcHs256, &k[..16], a, &iv, &e);
        assert_eq!(t, hex("652c3fa36b0a7c5b3219fab3a30bc1c4"));
        let key = UnboundCipherKey::new(&AES_128, &k[16..]).unwrap();
        let key = PaddedBlockDecryptingKey::cbc_pkcs7(key).unwrap();
        let mut buf = e;
        let iv16: [u8; 16] = iv.as_slice().try_into().unwrap();
        let p = key
            .decrypt(&mut buf, DecryptionContext::Iv128(FixedLength::from(iv16)))
            .unwrap();
        assert!(p.starts_with(b"A cipher system must not be required to be secret"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
