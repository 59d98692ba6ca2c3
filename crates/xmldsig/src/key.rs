//! Keys: trusted verification keys from X.509 certificates (configuration or IdP metadata
//! only), and signing keys.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_lc_rs::signature::ParsedPublicKey;

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair};
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_PKCS1_RSAENCRYPTION,
};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::alg::{KeyKind, SignatureMethod};

/// Why a key or certificate could not be loaded. These come from configuration and metadata,
/// never from a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The bytes are not a DER X.509 certificate (or the PEM holds none).
    InvalidCertificate,
    /// The certificate's key is neither RSA nor EC on P-256/P-384.
    UnsupportedKeyType,
    /// The private key is not PKCS#8 for a supported algorithm.
    InvalidPrivateKey,
    /// A PEM private key in another format (its PEM label: `RSA PRIVATE KEY` is PKCS#1,
    /// `EC PRIVATE KEY` SEC1, `ENCRYPTED PRIVATE KEY` a PKCS#8 key under a passphrase).
    NotPkcs8(&'static str),
    /// The private key is not the one of the certificate.
    KeyMismatch,
    /// An RSA key shorter than 2048 bits (its size).
    RsaTooShort(usize),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidCertificate => "not an X.509 certificate",
            Self::UnsupportedKeyType => "certificate key is not RSA, P-256 or P-384",
            Self::InvalidPrivateKey => {
                "not a supported PKCS#8 private key (PEM `BEGIN PRIVATE KEY`, RSA or EC P-256/P-384)"
            }
            Self::NotPkcs8("ENCRYPTED PRIVATE KEY") => {
                "the private key is encrypted (no passphrase is read): decrypt it with \
                 `openssl pkcs8 -in KEY -out KEY.pkcs8`"
            }
            Self::NotPkcs8(_) => {
                "the private key is PKCS#1 or SEC1, not PKCS#8: convert it with \
                 `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8`"
            }
            Self::KeyMismatch => "the private key does not belong to the certificate",
            Self::RsaTooShort(bits) => {
                return write!(
                    f,
                    "RSA-{bits} is too short: at least 2048 bits are required (3072 recommended); \
                     make a new key and certificate"
                );
            }
        })
    }
}

impl std::error::Error for KeyError {}

/// A public key that may verify signatures, taken from a certificate the operator trusts
/// (configuration, or metadata whose own signature was verified).
#[derive(Clone)]
pub struct TrustedKey {
    kind: KeyKind,
    /// RSA: PKCS#1 RSAPublicKey; EC: the uncompressed point. What ring expects.
    public_key: Vec<u8>,
    certificate: Vec<u8>,
    /// The certificate in unwrapped standard base64, to match `KeyInfo` without decoding.
    certificate_base64: String,
    not_before: i64,
    not_after: i64,
    /// The key prepared for each signature method (indexed by [`SignatureMethod::index`]),
    /// parsed at its first use and kept: aws-lc caches the modulus' Montgomery constants in a
    /// parsed RSA key, where an unparsed key recomputes them at every verification (issue 20,
    /// docs/PERFORMANCE.md). `None` when the library refuses the key for that method (an RSA
    /// modulus under 2048 bits, say): every verification with it then fails. Shared by clones.
    prepared: Arc<[OnceLock<Option<ParsedPublicKey>>; SignatureMethod::ALL.len()]>,
}

impl fmt::Debug for TrustedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKey")
            .field("kind", &self.kind)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl TrustedKey {
    /// Loads the key of a DER certificate. Validity dates are recorded, not enforced: SAML
    /// trust pins the key, and the metadata layer decides what an expired certificate means.
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, KeyError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| KeyError::InvalidCertificate)?;
        if !rest.is_empty() {
            return Err(KeyError::InvalidCertificate);
        }
        let spki = cert.public_key();
        let alg = &spki.algorithm;
        let kind = if alg.algorithm == OID_PKCS1_RSAENCRYPTION {
            KeyKind::Rsa
        } else if alg.algorithm == OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = alg.parameters.as_ref().and_then(|p| p.as_oid().ok());
            match curve {
                Some(c) if c == OID_EC_P256 => KeyKind::EcP256,
                Some(c) if c == OID_NIST_EC_P384 => KeyKind::EcP384,
                _ => return Err(KeyError::UnsupportedKeyType),
            }
        } else {
            return Err(KeyError::UnsupportedKeyType);
        };
        let validity = cert.validity();
        Ok(TrustedKey {
            kind,
            public_key: spki.subject_public_key.data.to_vec(),
            certificate: der.to_vec(),
            certificate_base64: base64::engine::general_purpose::STANDARD.encode(der),
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            prepared: Arc::default(),
        })
    }

    /// Loads the key of the first certificate in a PEM document.
    pub fn from_certificate_pem(pem: &[u8]) -> Result<Self, KeyError> {
        Self::from_certificate_der(&pem_block(pem, "CERTIFICATE")?)
    }

    /// Loads a certificate given as the base64 text of an `X509Certificate` element (white
    /// space allowed), as found in SAML metadata.
    pub fn from_certificate_base64(text: &str) -> Result<Self, KeyError> {
        let der = decode_base64(text).ok_or(KeyError::InvalidCertificate)?;
        Self::from_certificate_der(&der)
    }

    /// The key family.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The modulus size of an RSA key, in bits.
    pub fn rsa_bits(&self) -> Option<usize> {
        let (_, cert) = X509Certificate::from_der(&self.certificate).ok()?;
        match cert.public_key().parsed().ok()? {
            x509_parser::public_key::PublicKey::RSA(k) => Some(k.key_size()),
            _ => None,
        }
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// The certificate, unwrapped standard base64.
    pub fn certificate_base64(&self) -> &str {
        &self.certificate_base64
    }

    /// Start of the certificate's validity, seconds since the Unix epoch.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }

    /// End of the certificate's validity, seconds since the Unix epoch.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }

    /// Verifies a detached signature over `message` with this key: the HTTP-Redirect
    /// binding's query-string signature (SAML bindings §3.4.4.1), where no XML is involved.
    /// `false` when the method does not fit the key or the signature does not verify; only the
    /// methods of [`SignatureMethod`] exist, so SHA-1 cannot even be asked for.
    pub fn verify_detached(&self, method: SignatureMethod, message: &[u8], sig: &[u8]) -> bool {
        self.verify(method, message, sig)
    }

    pub(crate) fn verify(&self, method: SignatureMethod, message: &[u8], sig: &[u8]) -> bool {
        if method.key_kind() != self.kind {
            return false;
        }
        let Some(slot) = self.prepared.get(method.index()) else {
            return false;
        };
        slot.get_or_init(|| ParsedPublicKey::new(method.verification(), &self.public_key).ok())
            .as_ref()
            .is_some_and(|key| key.verify_sig(message, sig).is_ok())
    }
}

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair, KeyKind),
}

/// A private key with its certificate, for signing AuthnRequests, metadata and logout messages.
pub struct SigningKey {
    signer: Signer,
    certificate: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kind", &self.kind())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A PKCS#8 DER private key (RSA, or EC P-256/P-384) and its DER certificate.
    pub fn from_pkcs8_der(key: &[u8], certificate_der: &[u8]) -> Result<Self, KeyError> {
        let cert = TrustedKey::from_certificate_der(certificate_der)?;
        let rng = SystemRandom::new();
        let signer = match cert.kind {
            KeyKind::Rsa => {
                // ring refuses keys under 2048 bits with a bare "invalid key": say why.
                if let Some(bits) = cert.rsa_bits().filter(|b| *b < 2048) {
                    return Err(KeyError::RsaTooShort(bits));
                }
                Signer::Rsa(RsaKeyPair::from_pkcs8(key).map_err(|_| KeyError::InvalidPrivateKey)?)
            }
            KeyKind::EcP256 | KeyKind::EcP384 => {
                let alg = if cert.kind == KeyKind::EcP256 {
                    &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pair = EcdsaKeyPair::from_pkcs8(alg, key, &rng)
                    .map_err(|_| KeyError::InvalidPrivateKey)?;
                Signer::Ecdsa(pair, cert.kind)
            }
        };
        let public = match &signer {
            Signer::Rsa(k) => ring::signature::KeyPair::public_key(k).as_ref().to_vec(),
            Signer::Ecdsa(k, _) => ring::signature::KeyPair::public_key(k).as_ref().to_vec(),
        };
        if public != cert.public_key {
            return Err(KeyError::KeyMismatch);
        }
        Ok(SigningKey {
            signer,
            certificate: cert.certificate,
            rng,
        })
    }

    /// A PEM `PRIVATE KEY` (PKCS#8) and a PEM certificate.
    pub fn from_pem(key_pem: &[u8], certificate_pem: &[u8]) -> Result<Self, KeyError> {
        // The common wrong formats, named so the operator gets the conversion command rather
        // than "not PKCS#8" (each label's BEGIN line is distinct from `BEGIN PRIVATE KEY`).
        for label in ["RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"] {
            if pem_block(key_pem, label).is_ok() {
                return Err(KeyError::NotPkcs8(label));
            }
        }
        let key = pem_block(key_pem, "PRIVATE KEY").map_err(|_| KeyError::InvalidPrivateKey)?;
        let cert = pem_block(certificate_pem, "CERTIFICATE")?;
        Self::from_pkcs8_der(&key, &cert)
    }

    /// The key family.
    pub fn kind(&self) -> KeyKind {
        match &self.signer {
            Signer::Rsa(_) => KeyKind::Rsa,
            Signer::Ecdsa(_, kind) => *kind,
        }
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }

    /// The method used when the caller does not choose: RSA-SHA256 for RSA keys (SPID's
    /// requirement), ECDSA with the curve's hash otherwise.
    pub fn default_method(&self) -> SignatureMethod {
        match self.kind() {
            KeyKind::Rsa => SignatureMethod::RsaSha256,
            KeyKind::EcP256 => SignatureMethod::EcdsaP256Sha256,
            KeyKind::EcP384 => SignatureMethod::EcdsaP384Sha384,
        }
    }

    /// Signs `message` with `method`, which must suit the key.
    pub fn sign(&self, method: SignatureMethod, message: &[u8]) -> Result<Vec<u8>, crate::Error> {
        use ring::signature as s;
        match &self.signer {
            Signer::Rsa(k) => {
                let padding: &'static dyn s::RsaEncoding = match method {
                    SignatureMethod::RsaSha256 => &s::RSA_PKCS1_SHA256,
                    SignatureMethod::RsaSha384 => &s::RSA_PKCS1_SHA384,
                    SignatureMethod::RsaSha512 => &s::RSA_PKCS1_SHA512,
                    SignatureMethod::RsaPssSha256 => &s::RSA_PSS_SHA256,
                    SignatureMethod::RsaPssSha384 => &s::RSA_PSS_SHA384,
                    SignatureMethod::RsaPssSha512 => &s::RSA_PSS_SHA512,
                    _ => return Err(crate::Error::KeyMethodMismatch),
                };
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(padding, &self.rng, message, &mut sig)
                    .map_err(|_| crate::Error::SigningFailed)?;
                Ok(sig)
            }
            Signer::Ecdsa(k, kind) => {
                if method.key_kind() != *kind {
                    return Err(crate::Error::KeyMethodMismatch);
                }
                let sig = k
                    .sign(&self.rng, message)
                    .map_err(|_| crate::Error::SigningFailed)?;
                Ok(sig.as_ref().to_vec())
            }
        }
    }
}

/// The base64 engine of [`decode_base64`] and [`decode_base64_compact`], the one strict
/// decoder of signed bytes (XML-DSig values, certificates, and the broker's `SAMLResponse`):
/// the crate's SIMD decoder (chosen once at run time, its scalar one where the CPU has no AVX2
/// or NEON) with `STANDARD`'s strict configuration; the quads it does not decode itself, the
/// last one included, go to the scalar decoder `STANDARD` uses, so its verdicts are
/// `STANDARD`'s (tests `the_simd_engine_decides_as_the_standard_one`, here and in the broker's
/// `routes::acs`). On targets the crate has no SIMD code for, `STANDARD` itself.
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
))]
static BASE64: std::sync::LazyLock<base64::engine::Simd> = std::sync::LazyLock::new(|| {
    base64::engine::Simd::standard(base64::engine::general_purpose::PAD)
});
#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "aarch64", target_feature = "neon")
)))]
static BASE64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Decodes strict base64 with no white space in it: padding required, canonical, no trailing
/// bits; `None` for anything else.
pub fn decode_base64_compact(compact: &[u8]) -> Option<Vec<u8>> {
    BASE64.decode(compact).ok()
}

/// Decodes base64 that may be wrapped with white space, as XML-DSig and metadata write it.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    // White space is ASCII's: space, LF, CR, and the rare TAB and form feed. Without the rare
    // two (one vectorized search tells), the breaks are found by `memchr3`, a few per
    // signature value instead of a test per byte.
    let rare = memchr::memchr2(b'\t', b'\x0C', bytes).is_some();
    let mut breaks = memchr::memchr3_iter(b' ', b'\n', b'\r', bytes).peekable();
    if !rare && breaks.peek().is_none() {
        return decode_base64_compact(bytes);
    }
    // The runs between white space (lines, in practice) are copied whole.
    let mut compact = Vec::with_capacity(text.len());
    if rare {
        for run in bytes.split(u8::is_ascii_whitespace) {
            compact.extend_from_slice(run);
        }
    } else {
        let mut from = 0;
        for at in breaks {
            compact.extend_from_slice(bytes.get(from..at).unwrap_or(&[]));
            from = at + 1;
        }
        compact.extend_from_slice(bytes.get(from..).unwrap_or(&[]));
    }
    decode_base64_compact(&compact)
}

/// The contents of the first PEM block with this label.
fn pem_block(pem: &[u8], label: &str) -> Result<Vec<u8>, KeyError> {
    let text = std::str::from_utf8(pem).map_err(|_| KeyError::InvalidCertificate)?;
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin).ok_or(KeyError::InvalidCertificate)? + begin.len();
    let stop = text[start..]
        .find(&end)
        .ok_or(KeyError::InvalidCertificate)?
        + start;
    decode_base64(&text[start..stop]).ok_or(KeyError::InvalidCertificate)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::decode_base64;

    /// Every verdict and every output of `STANDARD`, over valid encodings of many lengths,
    /// each with one byte replaced at the start, the middle and the end, and over random
    /// near-base64 junk.
    #[test]
    fn the_simd_engine_decides_as_the_standard_one() {
        let standard = base64::engine::general_purpose::STANDARD;
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        let mut cases: Vec<Vec<u8>> = Vec::new();
        for n in (0..160).chain([256, 257, 258, 1_200]) {
            let raw: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            let good = standard.encode(&raw).into_bytes();
            for at in [
                0,
                good.len() / 2,
                good.len().saturating_sub(2),
                good.len().saturating_sub(1),
            ] {
                for b in [b'=', b'-', b'!', b'A', b'/', 0x80] {
                    let mut bad = good.clone();
                    if let Some(x) = bad.get_mut(at) {
                        *x = b;
                    }
                    cases.push(bad);
                }
            }
            cases.push(good);
        }
        for _ in 0..2_000 {
            let n = (next() % 200) as usize;
            cases.push((0..n).map(|_| alphabet[(next() % 65) as usize]).collect());
        }
        for case in cases {
            // The cases hold no white space; what is not UTF-8 is not a `&str` either.
            let Ok(text) = std::str::from_utf8(&case) else {
                continue;
            };
            assert_eq!(decode_base64(text), standard.decode(&case).ok(), "{text:?}");
        }
    }

    /// The line breaks found by `memchr3` and the per-byte split of the rare case remove the
    /// same white space: every ASCII white-space byte, alone or in runs, anywhere (first,
    /// last, inside a quantum, around the padding), decodes as the compact text does; other
    /// bytes (a non-breaking space, a vertical tab) are still refused by the decoder.
    #[test]
    fn white_space_anywhere_decodes_as_the_compact_text() {
        let compact = "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsu";
        let want = decode_base64(compact).unwrap();
        assert_eq!(want, b"Many hands make light work.");
        for ws in [" ", "\n", "\r\n", "\t", "\x0C", " \t\n", "\r"] {
            for at in 0..=compact.len() {
                let (a, b) = compact.split_at(at);
                for text in [
                    format!("{a}{ws}{b}"),
                    format!("{ws}{a}{ws}{b}{ws}"),
                    format!("{a}{ws}{ws}{b}\n"),
                ] {
                    assert_eq!(decode_base64(&text).as_deref(), Some(&want[..]), "{text:?}");
                }
            }
        }
        let padded = "YWJjZA==";
        assert_eq!(decode_base64("YWJj\nZA=\n=").as_deref(), Some(&b"abcd"[..]));
        assert_eq!(decode_base64(padded).as_deref(), Some(&b"abcd"[..]));
        assert_eq!(decode_base64("YWJj\u{a0}ZA=="), None);
        assert_eq!(decode_base64("YWJj\x0BZA=="), None);
        assert_eq!(decode_base64("YWJj!ZA=="), None);
    }
}
