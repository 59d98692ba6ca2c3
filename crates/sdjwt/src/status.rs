//! Token Status List (draft-ietf-oauth-status-list): the credential's reference, and the
//! check of a status list token the caller fetched from that reference's `uri`.
//!
//! The list is a bit string of `bits` (1, 2, 4 or 8) bits per credential, zlib-compressed
//! and base64url-encoded in `status_list.lst`. Entry `idx` sits in byte `idx * bits / 8`,
//! starting at the least significant bit. Decompression stops at
//! [`StatusLimits::max_list_bytes`], so a small token cannot inflate into a large buffer.

use std::io::Read as _;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jose::{Jws, Typ};
use serde_json::Value;

use crate::{Error, IssuerKey};

/// Longest accepted status list `uri`.
const MAX_URI: usize = 2048;

/// The credential's `status.status_list` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRef {
    /// Index of the credential in the list.
    pub idx: u64,
    /// Where the status list token is published (an `https` URL): the caller fetches it.
    pub uri: String,
}

fn bad_ref(reason: &'static str) -> Error {
    Error::StatusRef { reason }
}

fn bad_list(reason: &'static str) -> Error {
    Error::StatusList { reason }
}

impl StatusRef {
    /// Reads `{"status_list": {"idx": <uint>, "uri": "https://..."}}`. Another status
    /// mechanism alone is refused: it could not be checked.
    pub fn from_claim(status: &Value) -> Result<StatusRef, Error> {
        let sl = status
            .as_object()
            .and_then(|o| o.get("status_list"))
            .and_then(Value::as_object)
            .ok_or(bad_ref("no status_list object"))?;
        let idx = sl
            .get("idx")
            .and_then(Value::as_u64)
            .ok_or(bad_ref("idx is not a non-negative integer"))?;
        let uri = match sl.get("uri") {
            Some(Value::String(u))
                if u.len() <= MAX_URI
                    && u.len() > 8
                    && u[..8].eq_ignore_ascii_case("https://")
                    && !u.contains('#') =>
            {
                u.clone()
            }
            _ => return Err(bad_ref("uri is not an https URL")),
        };
        Ok(StatusRef { idx, uri })
    }
}

/// Bounds for a status list token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusLimits {
    /// The token (sizes and JSON depth). Default: 1 MiB, depth 4.
    pub jws: jose::Limits,
    /// The decompressed list, in bytes. Default 4 MiB (32 million credentials at 1 bit).
    pub max_list_bytes: usize,
    /// Allowed clock skew for `exp` and `iat`, seconds. Default 60.
    pub skew: u64,
}

impl Default for StatusLimits {
    fn default() -> Self {
        StatusLimits {
            jws: jose::Limits {
                max_token_bytes: 1024 * 1024,
                max_header_bytes: 2048,
                max_depth: 4,
            },
            max_list_bytes: 4 * 1024 * 1024,
            skew: 60,
        }
    }
}

/// The status value of entry `idx` in a decompressed list of `bits`-bit entries, or `None`
/// beyond its end.
#[must_use]
pub fn value_at(list: &[u8], bits: u8, idx: u64) -> Option<u8> {
    let bit = idx.checked_mul(u64::from(bits))?;
    let byte = *list.get(usize::try_from(bit / 8).ok()?)?;
    let mask = u8::try_from((1u16 << bits) - 1).ok()?;
    Some((byte >> (bit % 8)) & mask)
}

/// Checks the status list token `token` (fetched by the caller from `reference.uri`) and
/// the credential's entry in it: `Ok(())` for VALID (0) only. The token must be
/// `typ: statuslist+jwt`, signed by `key`, with `sub` equal to the reference's `uri`, not
/// expired, and a well-formed list long enough for the index.
pub fn check(
    token: &str,
    key: IssuerKey<'_>,
    reference: &StatusRef,
    now: u64,
    limits: &StatusLimits,
) -> Result<(), Error> {
    const WHAT: &str = "status list";
    let jose_err = |cause| Error::Jose { what: WHAT, cause };
    let jws = match key {
        IssuerKey::Set(set) => {
            let jws = Jws::decode(token, Typ::Exactly("statuslist+jwt"), &limits.jws)
                .map_err(jose_err)?;
            jws.verify(set).map_err(jose_err)?;
            jws
        }
        IssuerKey::Key(k) => {
            let jws = Jws::decode_unkeyed(token, Typ::Exactly("statuslist+jwt"), &limits.jws)
                .map_err(jose_err)?;
            jws.verify_with(k).map_err(jose_err)?;
            jws
        }
    };
    let c = jws.claims_unverified();
    if c.get("sub").and_then(Value::as_str) != Some(reference.uri.as_str()) {
        return Err(bad_list("sub is not the credential's status uri"));
    }
    let late = now.saturating_add(limits.skew);
    match c.get("iat").map(Value::as_u64) {
        Some(Some(iat)) if iat <= late => {}
        Some(Some(_)) => return Err(Error::NotYetValid),
        _ => {
            return Err(Error::Claim {
                what: WHAT,
                claim: "iat",
            });
        }
    }
    match c.get("exp").map(Value::as_u64) {
        None => {}
        Some(Some(exp)) if now <= exp.saturating_add(limits.skew) => {}
        Some(Some(_)) => return Err(Error::StatusListExpired),
        Some(None) => {
            return Err(Error::Claim {
                what: WHAT,
                claim: "exp",
            });
        }
    }
    let sl = c
        .get("status_list")
        .and_then(Value::as_object)
        .ok_or(bad_list("no status_list object"))?;
    let bits = match sl.get("bits").and_then(Value::as_u64) {
        Some(b @ (1 | 2 | 4 | 8)) => b as u8,
        _ => return Err(bad_list("bits is not 1, 2, 4 or 8")),
    };
    let lst = sl
        .get("lst")
        .and_then(Value::as_str)
        .ok_or(bad_list("no lst string"))?;
    let compressed = URL_SAFE_NO_PAD
        .decode(lst)
        .map_err(|_| bad_list("lst is not base64url"))?;
    let list = inflate(&compressed, limits.max_list_bytes)?;
    match value_at(&list, bits, reference.idx) {
        None => Err(Error::StatusIndex),
        Some(0) => Ok(()),
        Some(1) => Err(Error::Revoked),
        Some(2) => Err(Error::Suspended),
        Some(value) => Err(Error::StatusOther { value }),
    }
}

/// zlib (RFC 1950) decompression that stops after `max` bytes of output.
fn inflate(compressed: &[u8], max: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let cap = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::ZlibDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|_| bad_list("lst is not zlib"))?;
    if out.len() > max {
        return Err(Error::TooLarge {
            what: "status list",
            len: out.len(),
            max,
        });
    }
    Ok(out)
}
