//! Disclosures (SD-JWT §4.2): decode each once, then put each back into the signed payload
//! at the one place its digest names.
//!
//! The signed payload is walked once; each `_sd` entry and each `{"...": digest}` array
//! element is looked up in a map built from the presented disclosures. Every digest may
//! appear once in the whole credential (payload and disclosures together), every
//! disclosure must be used exactly once, and a disclosed name may not shadow a plain claim.
//! Work is linear in the payload plus the disclosures: each node is visited once and each
//! disclosure is moved out of the map when used, so no cycle or reuse is possible.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

use crate::Error;
use crate::error::clip;

/// Names that SD-JWT VC (§3.2.2.2) requires to be plain claims of the credential: they
/// decide whether it is valid at all, so a holder may not withhold them.
const PLAIN_ONLY: [&str; 6] = ["iss", "nbf", "exp", "cnf", "vct", "status"];

/// The base64url SHA-256 digest of a disclosure as presented (its ASCII characters, not
/// the decoded JSON: re-encoding would let two encodings share one digest).
#[must_use]
pub fn digest(disclosure: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        disclosure.as_bytes(),
    ))
}

/// One decoded disclosure.
#[derive(Debug, Clone)]
pub(crate) struct Disclosure {
    pub(crate) digest: String,
    /// `Some` for an object property `[salt, name, value]`, `None` for an array element
    /// `[salt, value]`.
    name: Option<String>,
    value: Value,
}

fn bad(reason: &'static str) -> Error {
    Error::Disclosure { reason }
}

/// Decodes one disclosure (the caller has bounded its length).
pub(crate) fn decode(s: &str, max_depth: usize) -> Result<Disclosure, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad("not canonical unpadded base64url"))?;
    let v = jose::json::parse(&bytes, max_depth).map_err(|e| match e {
        jose::Error::JsonDuplicateKey => bad("duplicate member name"),
        jose::Error::JsonDepth => Error::Depth,
        _ => bad("not JSON"),
    })?;
    let Value::Array(mut a) = v else {
        return Err(bad("not a JSON array"));
    };
    let (name, value) = match a.len() {
        3 => {
            let value = a.pop().unwrap_or(Value::Null);
            let Some(Value::String(name)) = a.pop() else {
                return Err(bad("claim name is not a string"));
            };
            if name == "_sd" {
                return Err(Error::ReservedName { name: "_sd" });
            }
            if name == "..." {
                return Err(Error::ReservedName { name: "..." });
            }
            (Some(name), value)
        }
        2 => (None, a.pop().unwrap_or(Value::Null)),
        _ => return Err(bad("not 2 or 3 elements")),
    };
    if !a.first().is_some_and(Value::is_string) {
        return Err(bad("salt is not a string"));
    }
    Ok(Disclosure {
        digest: digest(s),
        name,
        value,
    })
}

/// Refuses the same disclosure twice (same characters, hence same digest).
pub(crate) fn check_unique(discs: &[Disclosure]) -> Result<(), Error> {
    let mut set = HashSet::with_capacity(discs.len());
    if discs.iter().all(|d| set.insert(d.digest.as_str())) {
        Ok(())
    } else {
        Err(Error::DuplicateDisclosure)
    }
}

struct Resolver {
    by_digest: HashMap<String, usize>,
    discs: Vec<Option<(Option<String>, Value)>>,
    seen: HashSet<String>,
    max_depth: usize,
    nodes: usize,
}

/// Resolves `payload` (the verified issuer claims without `_sd_alg`) against `discs`:
/// the disclosed claims, and the number of JSON nodes visited.
pub(crate) fn resolve(
    payload: Map<String, Value>,
    discs: Vec<Disclosure>,
    max_depth: usize,
) -> Result<(Map<String, Value>, usize), Error> {
    check_unique(&discs)?;
    let n = discs.len();
    let mut by_digest = HashMap::with_capacity(n);
    let mut values = Vec::with_capacity(n);
    for (i, d) in discs.into_iter().enumerate() {
        by_digest.insert(d.digest, i);
        values.push(Some((d.name, d.value)));
    }
    let mut r = Resolver {
        by_digest,
        discs: values,
        seen: HashSet::with_capacity(n * 2),
        max_depth,
        nodes: 0,
    };
    let out = r.object(payload, 0, true)?;
    if r.discs.iter().any(Option::is_some) {
        return Err(Error::UnreferencedDisclosure);
    }
    Ok((out, r.nodes))
}

impl Resolver {
    /// Takes the disclosure `digest` names, if presented; a digest seen before is refused.
    fn take(&mut self, digest: &Value) -> Result<Option<(Option<String>, Value)>, Error> {
        let Value::String(d) = digest else {
            return Err(bad("digest is not a string"));
        };
        if !self.seen.insert(d.clone()) {
            return Err(Error::DuplicateDigest);
        }
        Ok(match self.by_digest.get(d.as_str()) {
            Some(&i) => self.discs.get_mut(i).and_then(Option::take),
            None => None, // a decoy or an undisclosed claim
        })
    }

    fn value(&mut self, v: Value, depth: usize) -> Result<Value, Error> {
        if depth > self.max_depth {
            return Err(Error::Depth);
        }
        self.nodes += 1;
        Ok(match v {
            Value::Object(m) => Value::Object(self.object(m, depth, false)?),
            Value::Array(a) => Value::Array(self.array(a, depth)?),
            other => other,
        })
    }

    fn object(
        &mut self,
        mut m: Map<String, Value>,
        depth: usize,
        root: bool,
    ) -> Result<Map<String, Value>, Error> {
        let sd = m.remove("_sd");
        if m.contains_key("_sd_alg") {
            return Err(Error::ReservedName { name: "_sd_alg" });
        }
        if m.contains_key("...") {
            return Err(Error::ReservedName { name: "..." });
        }
        let mut out = Map::new();
        for (k, v) in m {
            let v = self.value(v, depth + 1)?;
            out.insert(k, v);
        }
        let Some(sd) = sd else { return Ok(out) };
        let Value::Array(digests) = sd else {
            return Err(bad("_sd is not an array"));
        };
        for d in &digests {
            let Some((name, value)) = self.take(d)? else {
                continue;
            };
            let Some(name) = name else {
                return Err(Error::DisclosureKind);
            };
            if root {
                if let Some(p) = PLAIN_ONLY.iter().find(|p| **p == name) {
                    return Err(Error::ReservedName { name: p });
                }
            }
            if out.contains_key(&name) {
                return Err(Error::ClaimCollision { name: clip(&name) });
            }
            let value = self.value(value, depth + 1)?;
            out.insert(name, value);
        }
        Ok(out)
    }

    fn array(&mut self, a: Vec<Value>, depth: usize) -> Result<Vec<Value>, Error> {
        let mut out = Vec::with_capacity(a.len());
        for item in a {
            let digest = match &item {
                Value::Object(o) if o.contains_key("...") => {
                    if o.len() != 1 {
                        return Err(Error::ReservedName { name: "..." });
                    }
                    o.get("...")
                }
                _ => None,
            };
            match digest {
                Some(d) => match self.take(d)? {
                    Some((None, value)) => out.push(self.value(value, depth + 1)?),
                    Some((Some(_), _)) => return Err(Error::DisclosureKind),
                    None => {} // an element the holder did not disclose
                },
                None => out.push(self.value(item, depth + 1)?),
            }
        }
        Ok(out)
    }
}
