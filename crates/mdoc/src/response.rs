//! The DeviceResponse (ISO/IEC 18013-5 §8.3.2.1.2.2) as an OpenID4VP `vp_token` carries it.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value as Json};

use crate::Error;
use crate::cbor::{self, Item, Value};
use crate::cose::{EcKey, Sign1};
use crate::tdate;

/// Bounds checked before and while reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The whole DeviceResponse. Default 512 KiB (a PID without portrait is 2–4 KiB; the
    /// bound leaves room for a portrait of a few hundred KiB).
    pub max_bytes: usize,
    /// CBOR nesting. Default 16.
    pub max_depth: usize,
    /// Elements per namespace. Default 128.
    pub max_elements: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 512 * 1024,
            max_depth: 16,
            max_elements: 128,
        }
    }
}

/// What the verification expects: the request this response answers, and the clock.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// Now, seconds since the epoch.
    pub now: u64,
    /// Allowed clock skew, seconds.
    pub skew: u64,
    /// The document type asked for, e.g. `eu.europa.ec.eudi.pid.1`.
    pub doctype: &'a str,
    /// The session transcript of this request ([`session_transcript`]).
    pub transcript: &'a [u8],
}

/// A verified document.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// `docType`.
    pub doctype: String,
    /// The issuer-signed elements by namespace, as JSON (text, integers, booleans, dates
    /// as text, byte strings as base64url).
    pub namespaces: BTreeMap<String, Map<String, Json>>,
    /// `validUntil`, seconds since the epoch.
    pub valid_until: u64,
    /// Base64url SHA-256 of the DeviceResponse as received (the audit digest).
    pub digest: String,
    /// The signed MSO's Token Status List reference (`status.status_list`), for the caller
    /// to fetch and check; `None` when the MSO has no `status`.
    pub status: Option<MsoStatus>,
}

/// A Token Status List reference from a signed MSO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsoStatus {
    /// `idx`.
    pub idx: u64,
    /// `uri` (an https URL of at most 2048 bytes).
    pub uri: String,
}

/// A DeviceResponse parsed (strict CBOR, one document), not verified.
#[derive(Debug, Clone)]
pub struct DeviceResponse {
    root: Item,
    bytes: Vec<u8>,
    limits: Limits,
}

fn shape(reason: &'static str) -> Error {
    Error::Structure { reason }
}

/// The OpenID4VP 1.0 session transcript (Appendix B.2.6.1):
/// `[null, null, ["OpenID4VPHandover", SHA-256(cbor([client_id, nonce, jwk_thumbprint /
/// null, response_uri]))]]`, `jwk_thumbprint` being the SHA-256 thumbprint bytes of the
/// key the response was encrypted to.
#[must_use]
pub fn session_transcript(
    client_id: &str,
    nonce: &str,
    jwk_thumbprint: Option<&[u8]>,
    response_uri: &str,
) -> Vec<u8> {
    let mut info = Vec::new();
    cbor::head(&mut info, 4, 4);
    cbor::tstr(&mut info, client_id);
    cbor::tstr(&mut info, nonce);
    match jwk_thumbprint {
        Some(t) => cbor::bstr(&mut info, t),
        None => info.push(0xf6),
    }
    cbor::tstr(&mut info, response_uri);
    let hash = ring::digest::digest(&ring::digest::SHA256, &info);
    let mut out = vec![0x83, 0xf6, 0xf6, 0x82];
    cbor::tstr(&mut out, "OpenID4VPHandover");
    cbor::bstr(&mut out, hash.as_ref());
    out
}

/// The bytes inside a tag-24 (encoded CBOR data item) wrapper.
fn tag24(item: &Item) -> Option<&[u8]> {
    match &item.value {
        Value::Tag(24, inner) => inner.bytes(),
        _ => None,
    }
}

fn to_json(item: &Item) -> Json {
    match &item.value {
        Value::Uint(u) => Json::from(*u),
        Value::Nint(_) => item.int().map_or(Json::Null, Json::from),
        Value::Text(t) => Json::String(t.clone()),
        Value::Bytes(b) => Json::String(URL_SAFE_NO_PAD.encode(b)),
        Value::Simple(20) => Json::Bool(false),
        Value::Simple(21) => Json::Bool(true),
        // full-date (1004) and tdate (0) are text underneath.
        Value::Tag(0 | 1004, inner) => to_json(inner),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .filter_map(|(k, v)| Some((k.text()?.to_owned(), to_json(v))))
                .collect(),
        ),
        _ => Json::Null,
    }
}

fn time(validity: &Item, name: &str) -> Result<u64, Error> {
    match validity.get(name).map(|i| &i.value) {
        Some(Value::Tag(0, inner)) => inner.text().and_then(tdate::parse),
        _ => None,
    }
    .ok_or(shape("validityInfo time is not a tdate"))
}

impl DeviceResponse {
    /// Size first, then strict CBOR; `version` `1.0`, `status` 0, exactly one document.
    pub fn parse(bytes: &[u8], limits: &Limits) -> Result<DeviceResponse, Error> {
        if bytes.len() > limits.max_bytes {
            return Err(Error::TooLarge {
                len: bytes.len(),
                max: limits.max_bytes,
            });
        }
        let root = cbor::parse(bytes, limits.max_depth)?;
        if root.get("version").and_then(Item::text) != Some("1.0") {
            return Err(shape("version is not 1.0"));
        }
        if root.get("status").and_then(Item::int) != Some(0) {
            return Err(shape("status is not 0 (OK)"));
        }
        match root.get("documents").and_then(Item::array) {
            Some([_]) => {}
            _ => return Err(shape("not exactly one document")),
        }
        Ok(DeviceResponse {
            root,
            bytes: bytes.to_vec(),
            limits: *limits,
        })
    }

    fn document(&self) -> Result<&Item, Error> {
        self.root
            .get("documents")
            .and_then(Item::array)
            .and_then(<[Item]>::first)
            .ok_or(shape("no document"))
    }

    /// The certificates (DER) of the issuer's `x5chain` (COSE label 33), read before any
    /// signature is checked: for the caller's X.509 trust decision, which yields the key
    /// given to [`DeviceResponse::verify`].
    pub fn issuer_x5chain(&self) -> Result<Vec<Vec<u8>>, Error> {
        let auth = self
            .document()?
            .get("issuerSigned")
            .and_then(|s| s.get("issuerAuth"))
            .ok_or(shape("no issuerAuth"))?;
        let s = Sign1::decode(auth)?;
        match s.unprotected.get_int(33).map(|i| &i.value) {
            Some(Value::Bytes(b)) => Ok(vec![b.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|c| {
                    c.bytes()
                        .map(<[u8]>::to_vec)
                        .ok_or(shape("x5chain entry is not a bstr"))
                })
                .collect(),
            _ => Err(shape("no x5chain")),
        }
    }

    /// Verifies, in order: the issuer's COSE_Sign1 with `issuer_key` (an uncompressed
    /// SEC1 point the caller trusts); the MSO (`digestAlgorithm` SHA-256, `docType`,
    /// validity with skew); every IssuerSignedItem's digest, each digest id and element
    /// once; the device's COSE_Sign1 (key from the MSO) over `DeviceAuthentication` with
    /// `expect.transcript`. Device-signed elements and MAC authentication are refused.
    pub fn verify(self, issuer_key: &[u8], expect: &Expect<'_>) -> Result<Verified, Error> {
        let doc = self.document()?;
        let doctype = doc
            .get("docType")
            .and_then(Item::text)
            .ok_or(shape("no docType"))?;
        let issuer_signed = doc.get("issuerSigned").ok_or(shape("no issuerSigned"))?;
        let auth = Sign1::decode(
            issuer_signed
                .get("issuerAuth")
                .ok_or(shape("no issuerAuth"))?,
        )?;
        if !auth.verify(&EcKey(issuer_key.to_vec()), None)? {
            return Err(Error::IssuerSignature);
        }
        let payload = auth.payload.ok_or(shape("MSO payload missing"))?;
        let wrapped = cbor::parse(payload, self.limits.max_depth)?;
        let mso = cbor::parse(
            tag24(&wrapped).ok_or(shape("MSO is not tag 24"))?,
            self.limits.max_depth,
        )?;
        if mso.get("digestAlgorithm").and_then(Item::text) != Some("SHA-256") {
            return Err(Error::DigestAlg);
        }
        if mso.get("docType").and_then(Item::text) != Some(doctype) || doctype != expect.doctype {
            return Err(Error::DocType);
        }
        let validity = mso.get("validityInfo").ok_or(shape("no validityInfo"))?;
        let (from, until) = (time(validity, "validFrom")?, time(validity, "validUntil")?);
        if from > expect.now.saturating_add(expect.skew) {
            return Err(Error::NotYetValid);
        }
        if expect.now > until.saturating_add(expect.skew) {
            return Err(Error::Expired);
        }
        let status = match mso.get("status") {
            None => None,
            Some(s) => {
                let list = s
                    .get("status_list")
                    .ok_or(shape("status without status_list"))?;
                let idx = match list.get("idx").map(|i| &i.value) {
                    Some(Value::Uint(u)) => *u,
                    _ => return Err(shape("status_list idx is not an unsigned integer")),
                };
                let uri = list
                    .get("uri")
                    .and_then(Item::text)
                    .filter(|u| u.starts_with("https://") && u.len() <= 2048)
                    .ok_or(shape("status_list uri is not an https URL"))?;
                Some(MsoStatus {
                    idx,
                    uri: uri.to_owned(),
                })
            }
        };
        let digests = mso.get("valueDigests").ok_or(shape("no valueDigests"))?;
        let device_key = EcKey::from_cose(
            mso.get("deviceKeyInfo")
                .and_then(|d| d.get("deviceKey"))
                .ok_or(shape("no deviceKey"))?,
        )?;

        let mut namespaces = BTreeMap::new();
        for (ns, items) in issuer_signed
            .get("nameSpaces")
            .and_then(Item::map)
            .ok_or(shape("no issuer nameSpaces"))?
        {
            let ns = ns.text().ok_or(shape("namespace is not text"))?;
            let items = items.array().ok_or(shape("namespace is not an array"))?;
            if items.len() > self.limits.max_elements {
                return Err(shape("too many elements in a namespace"));
            }
            let listed = digests.get(ns).ok_or(Error::Digest)?;
            let mut seen_ids = Vec::with_capacity(items.len());
            let mut out = Map::new();
            for item in items {
                let inner = cbor::parse(
                    tag24(item).ok_or(shape("IssuerSignedItemBytes is not tag 24"))?,
                    self.limits.max_depth,
                )?;
                let id = match inner.get("digestID").map(|i| &i.value) {
                    Some(Value::Uint(u)) => *u,
                    _ => return Err(shape("digestID is not an unsigned integer")),
                };
                let name = inner
                    .get("elementIdentifier")
                    .and_then(Item::text)
                    .ok_or(shape("elementIdentifier is not text"))?;
                if inner
                    .get("random")
                    .and_then(Item::bytes)
                    .is_none_or(|r| r.len() < 16)
                {
                    return Err(shape("random is not a bstr of at least 16 bytes"));
                }
                let value = inner.get("elementValue").ok_or(shape("no elementValue"))?;
                // The digest is over the tag-24 item exactly as received.
                let got = ring::digest::digest(
                    &ring::digest::SHA256,
                    self.bytes.get(item.start..item.end).ok_or(Error::Digest)?,
                );
                let want = listed
                    .map()
                    .and_then(|m| m.iter().find(|(k, _)| k.value == Value::Uint(id)))
                    .and_then(|(_, v)| v.bytes());
                if want != Some(got.as_ref()) {
                    return Err(Error::Digest);
                }
                if seen_ids.contains(&id) || out.contains_key(name) {
                    return Err(Error::Duplicate);
                }
                seen_ids.push(id);
                out.insert(name.to_owned(), to_json(value));
            }
            namespaces.insert(ns.to_owned(), out);
        }

        let device = doc.get("deviceSigned").ok_or(shape("no deviceSigned"))?;
        let dns = device
            .get("nameSpaces")
            .ok_or(shape("no device nameSpaces"))?;
        let dns_map = cbor::parse(
            tag24(dns).ok_or(shape("device nameSpaces is not tag 24"))?,
            4,
        )?;
        if dns_map.map().is_none_or(|m| !m.is_empty()) {
            return Err(shape("device-signed elements are not accepted"));
        }
        let dauth = device.get("deviceAuth").ok_or(shape("no deviceAuth"))?;
        if dauth.map().is_none_or(|m| m.len() != 1) {
            return Err(shape("deviceAuth must hold deviceSignature only"));
        }
        let dsig = Sign1::decode(
            dauth
                .get("deviceSignature")
                .ok_or(shape("no deviceSignature (MAC refused)"))?,
        )?;
        // DeviceAuthenticationBytes = #6.24(bstr .cbor ["DeviceAuthentication",
        // SessionTranscript, DocType, DeviceNameSpacesBytes]).
        let raw_dns = self.bytes.get(dns.start..dns.end).ok_or(shape("span"))?;
        let mut da = Vec::with_capacity(64 + expect.transcript.len() + raw_dns.len());
        cbor::head(&mut da, 4, 4);
        cbor::tstr(&mut da, "DeviceAuthentication");
        da.extend_from_slice(expect.transcript);
        cbor::tstr(&mut da, expect.doctype);
        da.extend_from_slice(raw_dns);
        let mut dab = vec![0xd8, 24];
        cbor::bstr(&mut dab, &da);
        if !dsig.verify(&device_key, Some(&dab))? {
            return Err(Error::DeviceSignature);
        }
        Ok(Verified {
            doctype: doctype.to_owned(),
            namespaces,
            valid_until: until,
            digest: URL_SAFE_NO_PAD
                .encode(ring::digest::digest(&ring::digest::SHA256, &self.bytes)),
            status,
        })
    }
}
