//! COSE_Sign1 (RFC 9052 §4.2) with ES256 or ES384, and COSE_Key for EC2 public keys.

use ring::signature::{self, UnparsedPublicKey};

use crate::Error;
use crate::cbor::{self, Item, NULL, Value};

/// COSE algorithm ES256 (ECDSA P-256 with SHA-256).
const ES256: i64 = -7;
/// COSE algorithm ES384 (ECDSA P-384 with SHA-384).
const ES384: i64 = -35;

fn shape(reason: &'static str) -> Error {
    Error::Structure { reason }
}

/// An EC public key as an uncompressed SEC1 point (65 bytes for P-256, 97 for P-384).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EcKey(pub(crate) Vec<u8>);

impl EcKey {
    /// From a COSE_Key map: `kty` 2 (EC2), `crv` 1 (P-256) or 2 (P-384), `x` and `y`.
    pub(crate) fn from_cose(k: &Item) -> Result<EcKey, Error> {
        let bad = || shape("device key is not an EC2 P-256/P-384 COSE_Key");
        if k.get_int(1).and_then(Item::int) != Some(2) {
            return Err(bad());
        }
        let len = match k.get_int(-1).and_then(Item::int) {
            Some(1) => 32,
            Some(2) => 48,
            _ => return Err(bad()),
        };
        if k.get_int(-4).is_some() {
            return Err(shape("device key carries private material"));
        }
        let x = k.get_int(-2).and_then(Item::bytes).ok_or_else(bad)?;
        let y = k.get_int(-3).and_then(Item::bytes).ok_or_else(bad)?;
        if x.len() != len || y.len() != len {
            return Err(bad());
        }
        let mut p = Vec::with_capacity(1 + 2 * len);
        p.push(4);
        p.extend_from_slice(x);
        p.extend_from_slice(y);
        Ok(EcKey(p))
    }
}

/// A COSE_Sign1 decoded, not verified.
pub(crate) struct Sign1<'a> {
    protected: &'a [u8],
    alg: i64,
    /// `None` when detached (`nil`).
    pub(crate) payload: Option<&'a [u8]>,
    signature: &'a [u8],
    pub(crate) unprotected: &'a Item,
}

impl<'a> Sign1<'a> {
    /// `[protected: bstr, unprotected: map, payload: bstr / nil, signature: bstr]`,
    /// optionally under tag 18. The algorithm comes from the protected header only: an
    /// `alg` in the unprotected one, or a `crit` anywhere, is refused.
    pub(crate) fn decode(item: &'a Item) -> Result<Sign1<'a>, Error> {
        let item = match &item.value {
            Value::Tag(18, inner) => inner,
            _ => item,
        };
        let [p, u, payload, sig] = item.array().ok_or(shape("COSE_Sign1 is not an array"))? else {
            return Err(shape("COSE_Sign1 is not four elements"));
        };
        let protected = p.bytes().ok_or(shape("protected header is not a bstr"))?;
        if u.map().is_none() {
            return Err(shape("unprotected header is not a map"));
        }
        if u.get_int(1).is_some() || u.get_int(2).is_some() {
            return Err(shape("alg or crit in the unprotected header"));
        }
        let ph = cbor::parse(protected, 4)?;
        if ph.map().is_none() || ph.get_int(2).is_some() {
            return Err(shape("protected header is not a map, or has crit"));
        }
        let alg = ph.get_int(1).and_then(Item::int).ok_or(Error::Alg)?;
        if alg != ES256 && alg != ES384 {
            return Err(Error::Alg);
        }
        let payload = match &payload.value {
            Value::Bytes(b) => Some(b.as_slice()),
            Value::Simple(NULL) => None,
            _ => return Err(shape("payload is neither bstr nor nil")),
        };
        let signature = sig.bytes().ok_or(shape("signature is not a bstr"))?;
        Ok(Sign1 {
            protected,
            alg,
            payload,
            signature,
            unprotected: u,
        })
    }

    /// Verifies over `Sig_structure = ["Signature1", protected, h'', payload]`, the payload
    /// being the attached one or, when detached, `detached`. `false` for any mismatch of
    /// key and algorithm.
    pub(crate) fn verify(&self, key: &EcKey, detached: Option<&[u8]>) -> Result<bool, Error> {
        let payload = match (self.payload, detached) {
            (Some(p), None) => p,
            (None, Some(p)) => p,
            _ => {
                return Err(shape(
                    "payload attached where detached expected, or missing",
                ));
            }
        };
        let algorithm: &dyn signature::VerificationAlgorithm = match (self.alg, key.0.len()) {
            (ES256, 65) => &signature::ECDSA_P256_SHA256_FIXED,
            (ES384, 97) => &signature::ECDSA_P384_SHA384_FIXED,
            _ => return Err(Error::Alg),
        };
        let mut tbs = Vec::with_capacity(32 + self.protected.len() + payload.len());
        cbor::head(&mut tbs, 4, 4);
        cbor::tstr(&mut tbs, "Signature1");
        cbor::bstr(&mut tbs, self.protected);
        cbor::bstr(&mut tbs, &[]);
        cbor::bstr(&mut tbs, payload);
        Ok(UnparsedPublicKey::new(algorithm, &key.0)
            .verify(&tbs, self.signature)
            .is_ok())
    }
}
