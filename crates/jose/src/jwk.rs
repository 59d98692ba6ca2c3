//! Public signature keys: JWK (RFC 7517/7518) and JWK Sets, parsed strictly.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::alg::Alg;
use crate::error::clip;

/// Most keys accepted in one key set: federation entities publish a handful (current and
/// next); a set of thousands would only make every `kid` lookup the attacker's business.
pub const MAX_KEYS: usize = 32;

/// Longest accepted `kid` (RFC 7638 thumbprints are 43 characters).
const MAX_KID: usize = 256;

/// Elliptic curve of an EC key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (ES256).
    P256,
    /// NIST P-384 (ES384).
    P384,
}

impl Curve {
    fn coordinate_len(self) -> usize {
        match self {
            Curve::P256 => 32,
            Curve::P384 => 48,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }
}

/// What a key's own `alg` member allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyAlg {
    /// No `alg`: any algorithm of the key's type.
    Any,
    /// This algorithm only.
    Only(Alg),
    /// An `alg` outside the allow-list (HS256, RSA-OAEP, ...): never verifies here.
    Unusable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Material {
    /// Modulus and exponent, big-endian without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// Uncompressed SEC1 point `04 ‖ x ‖ y`.
    Ec { curve: Curve, point: Vec<u8> },
}

/// One public signature key with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    kid: String,
    material: Material,
    /// The key's own `alg`: when it names one the key verifies that algorithm only.
    alg: KeyAlg,
    /// `use` or `key_ops` say this key is not for verifying signatures (e.g. `use: enc`).
    not_for_signatures: bool,
}

fn b64(obj: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Error> {
    let s = obj.get(name).and_then(Value::as_str).ok_or(Error::Jwk {
        reason: "missing key parameter",
    })?;
    URL_SAFE_NO_PAD.decode(s).map_err(|_| Error::Jwk {
        reason: "key parameter is not base64url",
    })
}

impl Jwk {
    /// Parses one JWK object. `Ok(None)` for a key type this crate does not verify with
    /// (e.g. `OKP`), which a set may carry for other uses; `oct` keys and private material
    /// are errors.
    pub fn from_value(v: &Value) -> Result<Option<Jwk>, Error> {
        Jwk::parse(v, true)
    }

    /// Parses one JWK that stands alone, such as the holder key in a credential's
    /// `cnf.jwk`: `kid` is optional (when absent it becomes the RFC 7638 thumbprint), and a
    /// key type this crate cannot verify with is an error rather than `None`. All other
    /// rules of [`Jwk::from_value`] apply (no `oct`, no private material, sizes, curves).
    pub fn from_value_standalone(v: &Value) -> Result<Jwk, Error> {
        Jwk::parse(v, false)?.ok_or(Error::Jwk {
            reason: "key type is not RSA or EC",
        })
    }

    fn parse(v: &Value, kid_required: bool) -> Result<Option<Jwk>, Error> {
        let obj = v.as_object().ok_or(Error::Jwk {
            reason: "not a JSON object",
        })?;
        let kty = obj.get("kty").and_then(Value::as_str).ok_or(Error::Jwk {
            reason: "missing kty",
        })?;
        // Private members of RSA (RFC 7518 §6.3.2) and EC (§6.2.2) keys, and the `oct` secret.
        if ["d", "p", "q", "dp", "dq", "qi", "oth", "k"]
            .iter()
            .any(|m| obj.contains_key(*m))
        {
            return Err(if kty == "oct" {
                Error::JwkSymmetric
            } else {
                Error::JwkPrivate
            });
        }
        let kid = match obj.get("kid") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_KID => Some(s.clone()),
            None if !kid_required => None,
            _ => {
                return Err(Error::Jwk {
                    reason: "kid missing, empty, too long or not a string",
                });
            }
        };
        let material = match kty {
            "oct" => return Err(Error::JwkSymmetric),
            "RSA" => {
                let n = b64(obj, "n")?;
                let e = b64(obj, "e")?;
                if n.first().is_none_or(|b| *b == 0) || e.first().is_none_or(|b| *b == 0) {
                    return Err(Error::Jwk {
                        reason: "RSA n or e empty or with a leading zero octet",
                    });
                }
                let bits = n.len() * 8 - n[0].leading_zeros() as usize;
                if bits < 2048 {
                    return Err(Error::JwkRsaTooSmall { bits });
                }
                if bits > 8192 || e.len() > 4 {
                    return Err(Error::Jwk {
                        reason: "RSA modulus over 8192 bits or exponent over 32 bits",
                    });
                }
                Material::Rsa { n, e }
            }
            "EC" => {
                let curve = match obj.get("crv").and_then(Value::as_str) {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    _ => {
                        return Err(Error::Jwk {
                            reason: "EC curve is not P-256 or P-384",
                        });
                    }
                };
                let x = b64(obj, "x")?;
                let y = b64(obj, "y")?;
                let len = curve.coordinate_len();
                if x.len() != len || y.len() != len {
                    return Err(Error::Jwk {
                        reason: "EC coordinate of the wrong length",
                    });
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::Ec { curve, point }
            }
            _ => return Ok(None),
        };
        let alg = match obj.get("alg") {
            None => KeyAlg::Any,
            Some(Value::String(a)) => match Alg::from_name(a) {
                Ok(alg) => KeyAlg::Only(alg),
                // A key published for an algorithm we refuse (or for encryption, e.g.
                // RSA-OAEP) never verifies a signature here.
                Err(_) => KeyAlg::Unusable,
            },
            Some(_) => {
                return Err(Error::Jwk {
                    reason: "alg is not a string",
                });
            }
        };
        let use_not_sig = match obj.get("use") {
            None => false,
            Some(Value::String(u)) => u != "sig",
            Some(_) => {
                return Err(Error::Jwk {
                    reason: "use is not a string",
                });
            }
        };
        let ops_not_verify = match obj.get("key_ops") {
            None => false,
            Some(Value::Array(ops)) => !ops.iter().any(|o| o.as_str() == Some("verify")),
            Some(_) => {
                return Err(Error::Jwk {
                    reason: "key_ops is not an array",
                });
            }
        };
        let kid = kid.unwrap_or_else(|| thumbprint(&material));
        Ok(Some(Jwk {
            kid,
            material,
            alg,
            not_for_signatures: use_not_sig || ops_not_verify,
        }))
    }

    /// The key id.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Whether this key may verify a signature made with `alg`: the key type and curve
    /// fit, the key is for signatures, and its own `alg` (if any) is the same.
    #[must_use]
    pub fn accepts(&self, alg: Alg) -> bool {
        let alg_ok = match self.alg {
            KeyAlg::Any => true,
            KeyAlg::Only(a) => a == alg,
            KeyAlg::Unusable => false,
        };
        if self.not_for_signatures || !alg_ok {
            return false;
        }
        match (&self.material, alg) {
            (Material::Rsa { .. }, a) => a.is_rsa(),
            (Material::Ec { curve, .. }, Alg::Es256) => *curve == Curve::P256,
            (Material::Ec { curve, .. }, Alg::Es384) => *curve == Curve::P384,
            (Material::Ec { .. }, _) => false,
        }
    }

    /// The RFC 7638 thumbprint (SHA-256, base64url) of the public key: a stable name for a
    /// key that came without a `kid` (audit records, logs).
    #[must_use]
    pub fn thumbprint(&self) -> String {
        thumbprint(&self.material)
    }

    pub(crate) fn material(&self) -> &Material {
        &self.material
    }

    pub(crate) fn from_parts(kid: String, material: Material, alg: Alg) -> Jwk {
        Jwk {
            kid,
            material,
            alg: KeyAlg::Only(alg),
            not_for_signatures: false,
        }
    }

    /// The public JWK as JSON (`kty`, the public parameters, `kid`, and `alg`/`use` when
    /// known).
    #[must_use]
    pub fn to_value(&self) -> Value {
        let mut v = match &self.material {
            Material::Rsa { n, e } => json!({
                "kty": "RSA", "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
            }),
            Material::Ec { curve, point } => {
                let len = curve.coordinate_len();
                json!({
                    "kty": "EC", "crv": curve.name(),
                    "x": URL_SAFE_NO_PAD.encode(&point[1..=len]),
                    "y": URL_SAFE_NO_PAD.encode(&point[1 + len..]),
                })
            }
        };
        if let Value::Object(m) = &mut v {
            m.insert("kid".into(), Value::String(self.kid.clone()));
            if let KeyAlg::Only(a) = self.alg {
                m.insert("alg".into(), Value::String(a.name().into()));
            }
            if !self.not_for_signatures {
                m.insert("use".into(), Value::String("sig".into()));
            }
        }
        v
    }
}

/// RFC 7638 thumbprint (SHA-256, base64url) of a public key: the `kid` the federation
/// specification recommends.
pub(crate) fn thumbprint(material: &Material) -> String {
    // The required members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = match material {
        Material::Rsa { n, e } => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(e),
            URL_SAFE_NO_PAD.encode(n)
        ),
        Material::Ec { curve, point } => {
            let len = curve.coordinate_len();
            format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                URL_SAFE_NO_PAD.encode(&point[1..=len]),
                URL_SAFE_NO_PAD.encode(&point[1 + len..])
            )
        }
    };
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        canonical.as_bytes(),
    ))
}

/// A JSON Web Key Set of public signature keys, every `kid` unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Jwk>,
}

impl Jwks {
    /// Parses `{"keys": [...]}`. At most [`MAX_KEYS`] entries; a duplicate `kid`, an `oct`
    /// key, private material or a malformed supported key is an error; keys of other types
    /// are left out.
    pub fn from_value(v: &Value) -> Result<Jwks, Error> {
        let keys = v
            .as_object()
            .and_then(|o| o.get("keys"))
            .and_then(Value::as_array)
            .ok_or(Error::Jwks {
                reason: "not an object with a keys array",
            })?;
        if keys.len() > MAX_KEYS {
            return Err(Error::Jwks {
                reason: "too many keys",
            });
        }
        let mut out: Vec<Jwk> = Vec::with_capacity(keys.len());
        let mut kids: Vec<&str> = Vec::with_capacity(keys.len());
        for k in keys {
            // Uniqueness over every kid in the set, usable here or not: a kid must never
            // name two keys.
            if let Some(kid) = k.get("kid").and_then(Value::as_str) {
                if kids.contains(&kid) {
                    return Err(Error::JwksDuplicateKid { kid: clip(kid) });
                }
                kids.push(kid);
            }
            if let Some(jwk) = Jwk::from_value(k)? {
                out.push(jwk);
            }
        }
        Ok(Jwks { keys: out })
    }

    /// Parses a JWKS document from bytes with the strict JSON reader (configuration files).
    pub fn from_json(bytes: &[u8]) -> Result<Jwks, Error> {
        let v = crate::json::parse(bytes, 8)?;
        Jwks::from_value(&v)
    }

    /// A set of the given keys; a duplicate `kid` is an error.
    pub fn from_keys(keys: Vec<Jwk>) -> Result<Jwks, Error> {
        if keys.len() > MAX_KEYS {
            return Err(Error::Jwks {
                reason: "too many keys",
            });
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.kid == k.kid) {
                return Err(Error::JwksDuplicateKid { kid: clip(&k.kid) });
            }
        }
        Ok(Jwks { keys })
    }

    /// The key with this `kid`.
    #[must_use]
    pub fn get(&self, kid: &str) -> Option<&Jwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }

    /// The keys.
    #[must_use]
    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Whether the set holds no usable key.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `{"keys": [...]}`.
    #[must_use]
    pub fn to_value(&self) -> Value {
        json!({ "keys": self.keys.iter().map(Jwk::to_value).collect::<Vec<_>>() })
    }
}
