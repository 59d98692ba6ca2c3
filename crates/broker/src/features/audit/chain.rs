//! The audit line format and its hash chain: pure functions over bytes, no I/O, time passed in.
//!
//! One record is one line:
//!
//! ```text
//! v1 TAB seq TAB ts TAB prev TAB payload TAB hash LF
//! ```
//!
//! - `seq`: decimal sequence number, +1 per record across all files of one chain (0 = genesis);
//! - `ts`: Unix seconds when the writer appended it;
//! - `prev`: the `hash` of the record before (64 hex digits; 64 zeros for the genesis);
//! - `payload`: a JSON object (serde_json escapes control characters, so it holds no TAB or
//!   LF), or `e1:` and base64 of `nonce ‖ ChaCha20-Poly1305(JSON)` when encryption at rest is
//!   on; the header `v1 TAB seq TAB ts TAB prev TAB` is the AEAD's associated data;
//! - `hash`: SHA-256 of everything before it on the line, TAB included, in lower-case hex.
//!
//! A record may carry a *blob* beside its line (version 2, issue 20: the raw SAML Response of
//! a completed login, which a v1 record held as base64 inside its JSON):
//!
//! ```text
//! v2 TAB seq TAB ts TAB prev TAB payload TAB len:sha TAB hash LF blob LF
//! ```
//!
//! - `len`: the blob's length in bytes (decimal); `sha`: SHA-256 of the blob as stored, hex;
//!   the line's `hash` covers both, so the chain covers the blob through its digest, and the
//!   blob is hashed once (by the writer; again by `verify`);
//! - `blob`: `len` raw bytes (they may hold any byte, LF and TAB included: readers skip them
//!   by length, never by looking for LF), then one LF; with encryption at rest it is
//!   `nonce ‖ ChaCha20-Poly1305(blob)`, sealed under the same associated data as the payload
//!   (`v2 TAB seq TAB ts TAB prev TAB`), with a nonce of its own.
//!
//! v1 lines (no blob) are still written for every record without one, and read as before: a
//! chain may mix both.
//!
//! Files are named `audit-<first seq, 20 digits>.log`; the first record of a file points at
//! the last record of the previous file, so files chain like records do. Control records
//! (`genesis`, `pruned`, `recovery`) are never encrypted: the chain, including the anchor
//! that allows a pruned prefix, is checkable without the key.
//!
//! May import: nothing in the crate (bytes in, bytes out, time as an argument).

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// Hash of the record before the genesis.
pub const ZERO_HASH: [u8; 32] = [0; 32];

/// Prefix of an encrypted payload.
const ENCRYPTED: &str = "e1:";

/// Start of a record line that carries a blob beside it.
const V2: &[u8] = b"v2\t";

/// Longest blob a reader accepts (1 GiB): a bound on the length field of a hostile file, far
/// above what the writer stores (a Response is at most `saml.max_response_bytes`).
const MAX_BLOB: usize = 1 << 30;

/// Name of the file whose first record has sequence number `seq`.
pub fn file_name(seq: u64) -> String {
    format!("audit-{seq:020}.log")
}

/// The first sequence number a file name announces, if it is an audit file name.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("audit-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    crate::leaf::session::hex(bytes)
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *slot = u8::from_str_radix(text, 16).ok()?;
    }
    // Only the canonical (lower-case) spelling is accepted: one record, one byte string.
    (hex(&out) == s).then_some(out)
}

/// The key encrypting login records at rest.
pub struct RecordKey {
    key: LessSafeKey,
}

impl RecordKey {
    /// A key from 32 bytes.
    pub fn new(bytes: &[u8; 32]) -> Option<Self> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?;
        Some(RecordKey {
            key: LessSafeKey::new(unbound),
        })
    }
}

/// Why a record could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// No randomness for the nonce, or the AEAD refused.
    Crypto,
}

/// Encodes one record line (with its final LF) and returns it with its hash.
/// `payload` must be a JSON object as serde_json writes it (no raw TAB or LF).
pub fn encode(
    seq: u64,
    ts: u64,
    prev: &[u8; 32],
    payload: &[u8],
    key: Option<(&RecordKey, &SystemRandom)>,
) -> Result<(Vec<u8>, [u8; 32]), EncodeError> {
    let mut line = Vec::with_capacity(payload.len() + 160);
    let hash = encode_into(&mut line, seq, ts, prev, payload, None, key)?;
    Ok((line, hash))
}

/// Seals `plain` under `aad` with a fresh random nonce: `nonce ‖ ciphertext ‖ tag`.
fn seal(
    k: &RecordKey,
    rng: &SystemRandom,
    aad: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut nonce).map_err(|_| EncodeError::Crypto)?;
    let mut blob = Vec::with_capacity(NONCE_LEN + plain.len() + CHACHA20_POLY1305.tag_len());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plain);
    let (_, sealed) = blob.split_at_mut(NONCE_LEN);
    let tag = k
        .key
        .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
        .map_err(|_| EncodeError::Crypto)?;
    blob.extend_from_slice(tag.as_ref());
    Ok(blob)
}

/// Opens what [`seal`] made; `None` if it does not open (wrong key or altered).
fn open(k: &RecordKey, aad: &[u8], blob: &[u8]) -> Option<Vec<u8>> {
    if blob.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = blob.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut buf = sealed.to_vec();
    let plain = k.key.open_in_place(nonce, Aad::from(aad), &mut buf).ok()?;
    let n = plain.len();
    buf.truncate(n);
    Some(buf)
}

/// [`encode`] appending the record to `out` (the file sink's write buffer: the payload is
/// copied once, straight to where it is written); returns its hash. With a `blob` the record
/// is a v2 line followed by the blob (sealed too when `key` is given). On error `out` is as
/// it was.
pub fn encode_into(
    out: &mut Vec<u8>,
    seq: u64,
    ts: u64,
    prev: &[u8; 32],
    payload: &[u8],
    blob: Option<&[u8]>,
    key: Option<(&RecordKey, &SystemRandom)>,
) -> Result<[u8; 32], EncodeError> {
    use std::io::Write as _;
    let start = out.len();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "{}\t{seq}\t{ts}\t",
        if blob.is_some() { "v2" } else { "v1" }
    );
    push_hex(out, prev);
    out.push(b'\t');
    let header_end = out.len();
    let sealed_blob = match (key, blob) {
        (Some((k, rng)), Some(b)) => match seal(k, rng, &out[start..header_end], b) {
            Ok(s) => Some(s),
            Err(e) => {
                out.truncate(start);
                return Err(e);
            }
        },
        _ => None,
    };
    match key {
        None => out.extend_from_slice(payload),
        Some((k, rng)) => {
            let sealed = match seal(k, rng, &out[start..header_end], payload) {
                Ok(s) => s,
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            };
            out.extend_from_slice(ENCRYPTED.as_bytes());
            out.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(sealed)
                    .as_bytes(),
            );
        }
    }
    out.push(b'\t');
    let stored = sealed_blob.as_deref().or(blob);
    if let Some(b) = stored {
        let _ = write!(out, "{}:", b.len());
        push_hex(out, &sha256(b));
        out.push(b'\t');
    }
    let hash = sha256(&out[start..]);
    push_hex(out, &hash);
    out.push(b'\n');
    if let Some(b) = stored {
        out.extend_from_slice(b);
        out.push(b'\n');
    }
    Ok(hash)
}

/// Appends lower-case hex of `bytes`.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.extend_from_slice(&crate::leaf::session::hex_byte(b));
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// One record as read back from a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Unix seconds when it was appended.
    pub ts: u64,
    /// Hash of the previous record.
    pub prev: [u8; 32],
    /// The payload as stored (JSON or `e1:` base64).
    pub payload: &'a [u8],
    /// This record's hash (checked against its content).
    pub hash: [u8; 32],
    /// The AEAD associated data (the header).
    header: &'a [u8],
    /// A v2 record's blob as stored (its length and digest checked against the line).
    pub blob: Option<&'a [u8]>,
}

impl Line<'_> {
    /// Whether the payload is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.payload.starts_with(ENCRYPTED.as_bytes())
    }

    /// The JSON payload: as stored, or decrypted with `key`. `None` if it is encrypted and no
    /// key is given, or if the key does not open it (wrong key or altered record).
    pub fn json(&self, key: Option<&RecordKey>) -> Option<Vec<u8>> {
        let Some(b64) = self.payload.strip_prefix(ENCRYPTED.as_bytes()) else {
            return Some(self.payload.to_vec());
        };
        let blob = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        open(key?, self.header, &blob)
    }

    /// A v2 record's blob in clear: as stored when the payload is not encrypted, opened with
    /// `key` when it is. `None`: no blob, or encrypted and no key (or a key that does not
    /// open it).
    pub fn blob_plain(&self, key: Option<&RecordKey>) -> Option<Vec<u8>> {
        let blob = self.blob?;
        if !self.is_encrypted() {
            return Some(blob.to_vec());
        }
        open(key?, self.header, blob)
    }
}

/// The length a v2 line announces for its blob (the `len` of its next-to-last field), read
/// without checking anything else: for [`split_lines`] to find where the record ends.
fn announced_blob_len(line: &[u8]) -> Option<usize> {
    if !line.starts_with(V2) {
        return None;
    }
    let cut = line.iter().rposition(|&b| b == b'\t')?;
    let before = &line[..cut];
    let field = &before[before.iter().rposition(|&b| b == b'\t')? + 1..];
    let digits = &field[..field.iter().position(|&b| b == b':')?];
    if digits.is_empty() || digits.len() > 10 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let len: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
    (len <= MAX_BLOB).then_some(len)
}

/// Parses one record (a line without its LF; for v2, the line, its LF and the blob, as
/// [`split_lines`] cuts it) and checks its own hash, and a blob's length and digest.
/// `Err(true)` when a hash does not match the content (altered), `Err(false)` when the line
/// is not a record at all.
pub fn parse_line(raw: &[u8]) -> Result<Line<'_>, bool> {
    if !raw.starts_with(V2) {
        return parse_header(raw, false).map(|(l, _)| l);
    }
    let lf = raw.iter().position(|&b| b == b'\n').ok_or(false)?;
    let (line, blob) = (&raw[..lf], &raw[lf + 1..]);
    let (mut parsed, (len, sha)) = parse_header(line, true)?;
    let described = described(len, sha).ok_or(false)?;
    if described.0 != blob.len() || described.1 != sha256(blob) {
        return Err(true);
    }
    parsed.blob = Some(blob);
    Ok(parsed)
}

/// A v2 line's blob field, split at `:`: the length and the hex digest, unchecked (both
/// empty for a v1 line).
pub type BlobField<'a> = (&'a [u8], &'a [u8]);

/// The (length, digest) a v2 line's blob field states.
fn described(len: &[u8], sha: &[u8]) -> Option<(usize, [u8; 32])> {
    if len.is_empty() || len.len() > 10 || !len.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: usize = std::str::from_utf8(len).ok()?.parse().ok()?;
    let digest = unhex32(std::str::from_utf8(sha).ok()?)?;
    (n <= MAX_BLOB).then_some((n, digest))
}

/// Parses a record's line alone (without its LF, and without a v2 record's blob): its fields
/// and its own hash. For a v2 line (`v2` true) also returns the blob field, split at `:`, for
/// the caller to check against the blob. A v2 line's hash covers its blob's digest, so this
/// is all [`first_record`](super::file)-style readers of seq, ts and prev need.
pub fn parse_header(line: &[u8], v2: bool) -> Result<(Line<'_>, BlobField<'_>), bool> {
    let cut = line.iter().rposition(|&b| b == b'\t').ok_or(false)?;
    let (body, hash_hex) = (&line[..=cut], &line[cut + 1..]);
    let hash = std::str::from_utf8(hash_hex)
        .ok()
        .and_then(unhex32)
        .ok_or(false)?;
    let (fields_end, described) = if v2 {
        let inner = &body[..body.len() - 1];
        let at = inner.iter().rposition(|&b| b == b'\t').ok_or(false)?;
        let field = &inner[at + 1..];
        let colon = field.iter().position(|&b| b == b':').ok_or(false)?;
        (at, (&field[..colon], &field[colon + 1..]))
    } else {
        (body.len() - 1, (&b""[..], &b""[..]))
    };
    let mut fields = body[..fields_end].splitn(5, |&b| b == b'\t');
    let mut text = || fields.next().and_then(|f| std::str::from_utf8(f).ok());
    if text() != Some(if v2 { "v2" } else { "v1" }) {
        return Err(false);
    }
    let number = |s: Option<&str>| {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
    };
    let seq = number(text()).ok_or(false)?;
    let ts = number(text()).ok_or(false)?;
    let prev = text().and_then(unhex32).ok_or(false)?;
    let payload = fields.next().ok_or(false)?;
    let header_len = fields_end - payload.len();
    if sha256(body) != hash {
        return Err(true);
    }
    Ok((
        Line {
            seq,
            ts,
            prev,
            payload,
            hash,
            header: &body[..header_len],
            blob: None,
        },
        described,
    ))
}

/// Splits a file's bytes into complete records with their offsets, and the offset of a torn
/// tail (a record cut short: bytes after the last LF, or a v2 line whose blob, or the LF
/// after it, is not all there), if any. A record is a line without its LF or, for a v2
/// line, the line, its LF and the blob (the blob's final LF left out): the blob is skipped
/// by the length its line announces, so LF bytes inside it do not split it. A v2 line whose
/// length field is unreadable is returned as a line alone (and then fails to parse).
pub fn split_lines(bytes: &[u8]) -> (Vec<(usize, &[u8])>, Option<usize>) {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(n) = bytes[start..].iter().position(|&b| b == b'\n') {
        let line_end = start + n;
        let end = match announced_blob_len(&bytes[start..line_end]) {
            None => line_end,
            Some(len) => match (line_end + 1).checked_add(len) {
                // The blob and the LF after it are all there.
                Some(end) if bytes.get(end) == Some(&b'\n') => end,
                // Cut short, or not followed by LF: a torn record, or not a record.
                Some(end) if end >= bytes.len() => break,
                _ => line_end,
            },
        };
        out.push((start, &bytes[start..end]));
        start = end + 1;
    }
    let torn = (start < bytes.len()).then_some(start);
    (out, torn)
}

/// The first problem found in a chain; each has a stable code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// A record's hash does not match its content, or its encrypted payload does not open.
    Altered {
        /// File name.
        file: String,
        /// Byte offset of the line.
        offset: usize,
        /// Its sequence number, when readable.
        seq: Option<u64>,
    },
    /// A line is not a record.
    Malformed {
        /// File name.
        file: String,
        /// Byte offset of the line.
        offset: usize,
    },
    /// A record does not point at the one before it.
    Broken {
        /// File name.
        file: String,
        /// Byte offset of the line.
        offset: usize,
        /// Its sequence number.
        seq: u64,
    },
    /// Records are missing (sequence gap, missing file, or a missing prefix without the
    /// anchor of a retention pruning).
    Missing {
        /// File name where the gap shows.
        file: String,
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A record is cut short inside the chain (not at its very end).
    Torn {
        /// File name.
        file: String,
        /// Byte offset of the partial line.
        offset: usize,
    },
    /// A file name does not match the first record in it.
    Misnamed {
        /// File name.
        file: String,
    },
    /// A database row whose key is not the sequence number of the record it holds.
    Misplaced {
        /// Where (writer and row key).
        place: String,
        /// The row's `seq` key.
        key: u64,
        /// The sequence number inside the record.
        seq: u64,
    },
    /// No record at all.
    Empty,
}

impl ChainError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ChainError::Altered { .. } => "audit_record_altered",
            ChainError::Malformed { .. } => "audit_record_malformed",
            ChainError::Broken { .. } => "audit_chain_broken",
            ChainError::Missing { .. } => "audit_record_missing",
            ChainError::Torn { .. } => "audit_record_torn",
            ChainError::Misnamed { .. } => "audit_file_misnamed",
            ChainError::Misplaced { .. } => "audit_record_misplaced",
            ChainError::Empty => "audit_empty",
        }
    }
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainError::Altered { file, offset, seq } => write!(
                f,
                "{file} at byte {offset}: record {} altered (hash or encryption tag does not match)",
                seq.map_or_else(|| "?".into(), |s| s.to_string())
            ),
            ChainError::Malformed { file, offset } => {
                write!(f, "{file} at byte {offset}: not an audit record")
            }
            ChainError::Broken { file, offset, seq } => write!(
                f,
                "{file} at byte {offset}: record {seq} does not point at the record before it"
            ),
            ChainError::Missing {
                file,
                expected,
                found,
            } => write!(
                f,
                "{file}: record {expected} missing (found {found}): records deleted or reordered"
            ),
            ChainError::Torn { file, offset } => write!(
                f,
                "{file} at byte {offset}: partial record inside the chain"
            ),
            ChainError::Misnamed { file } => {
                write!(f, "{file}: file name does not match its first record")
            }
            ChainError::Misplaced { place, key, seq } => {
                write!(f, "{place}: the row keyed {key} holds record {seq}")
            }
            ChainError::Empty => write!(f, "no audit record found"),
        }
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records checked.
    pub records: u64,
    /// First sequence number present (0 unless a prefix was pruned under an anchor).
    pub first_seq: u64,
    /// Last sequence number.
    pub last_seq: u64,
    /// Hash of the last record: the chain head to keep elsewhere as an external anchor.
    pub head: [u8; 32],
    /// A partial last record (file, offset, length): reported, never counted as a record.
    pub torn_tail: Option<(String, usize, usize)>,
    /// Encrypted records whose payload was opened with the key (0 without a key).
    pub decrypted: u64,
}

/// Checks a whole chain held in memory: `files` in name order (name, bytes). See [`Verifier`].
pub fn verify(
    files: &[(String, Vec<u8>)],
    key: Option<&RecordKey>,
) -> Result<Verified, ChainError> {
    let mut v = Verifier::new(key);
    for (name, bytes) in files {
        v.file(name, bytes)?;
    }
    v.finish()
}

/// Checks a chain one file at a time, in name order, so a long retention period never needs
/// more memory than its largest file. With a key, every encrypted payload must open
/// (authenticated); without it, encrypted payloads are checked by hash only.
pub struct Verifier<'k> {
    key: Option<&'k RecordKey>,
    /// Next sequence number and the hash it must point at.
    expected: Option<(u64, [u8; 32])>,
    /// The first record: its sequence number and predecessor hash.
    start: Option<(u64, [u8; 32])>,
    first_file: Option<String>,
    anchors: Vec<(u64, [u8; 32])>,
    records: u64,
    decrypted: u64,
    /// A partial last line of the file seen last: an error if any file follows.
    torn: Option<(String, usize, usize)>,
}

impl<'k> Verifier<'k> {
    /// A verifier with an optional key.
    pub fn new(key: Option<&'k RecordKey>) -> Self {
        Verifier {
            key,
            expected: None,
            start: None,
            first_file: None,
            anchors: Vec::new(),
            records: 0,
            decrypted: 0,
            torn: None,
        }
    }

    /// Checks the next file of the chain.
    pub fn file(&mut self, name: &str, bytes: &[u8]) -> Result<(), ChainError> {
        if let Some((file, offset, _)) = self.torn.take() {
            return Err(ChainError::Torn { file, offset });
        }
        if self.first_file.is_none() {
            self.first_file = Some(name.to_owned());
        }
        let named = parse_file_name(name).ok_or_else(|| ChainError::Misnamed {
            file: name.to_owned(),
        })?;
        let (lines, torn) = split_lines(bytes);
        if let Some(off) = torn {
            self.torn = Some((name.to_owned(), off, bytes.len() - off));
        }
        if lines.is_empty() {
            // An empty file (a crash right after a rotation) must still sit at its place.
            if let Some((seq, _)) = self.expected {
                if named != seq {
                    return Err(ChainError::Misnamed {
                        file: name.to_owned(),
                    });
                }
            }
        }
        for (n, (offset, raw)) in lines.iter().enumerate() {
            self.line(name, named, n == 0, *offset, raw)?;
        }
        Ok(())
    }

    /// Checks the next record of a chain kept one record per database row, in key order:
    /// `place` names the row in errors, `key` is the row's sequence-number key, `raw` the
    /// line without its LF. The chain rules are those of files; a row whose key differs from
    /// the sequence number inside its record is [`ChainError::Misplaced`].
    pub fn row(&mut self, place: &str, key: u64, raw: &[u8]) -> Result<(), ChainError> {
        if self.first_file.is_none() {
            self.first_file = Some(place.to_owned());
        }
        self.line(place, key, false, 0, raw)?;
        let seq = self.expected.map_or(0, |(next, _)| next - 1);
        if seq != key {
            return Err(ChainError::Misplaced {
                place: place.to_owned(),
                key,
                seq,
            });
        }
        Ok(())
    }

    fn line(
        &mut self,
        name: &str,
        named: u64,
        first_in_file: bool,
        offset: usize,
        raw: &[u8],
    ) -> Result<(), ChainError> {
        let file = || name.to_owned();
        let line = parse_line(raw).map_err(|altered| {
            if altered {
                ChainError::Altered {
                    file: file(),
                    offset,
                    seq: None,
                }
            } else {
                ChainError::Malformed {
                    file: file(),
                    offset,
                }
            }
        })?;
        if first_in_file && line.seq != named {
            return Err(ChainError::Misnamed { file: file() });
        }
        match self.expected {
            Some((seq, prev)) => {
                if line.seq != seq {
                    return Err(ChainError::Missing {
                        file: file(),
                        expected: seq,
                        found: line.seq,
                    });
                }
                if line.prev != prev {
                    return Err(ChainError::Broken {
                        file: file(),
                        offset,
                        seq: line.seq,
                    });
                }
            }
            None => {
                if line.seq == 0 && line.prev != ZERO_HASH {
                    return Err(ChainError::Broken {
                        file: file(),
                        offset,
                        seq: 0,
                    });
                }
                self.start = Some((line.seq, line.prev));
            }
        }
        if line.is_encrypted() {
            if let Some(k) = self.key {
                let blob_opens = line.blob.is_none() || line.blob_plain(Some(k)).is_some();
                if line.json(Some(k)).is_none() || !blob_opens {
                    return Err(ChainError::Altered {
                        file: file(),
                        offset,
                        seq: Some(line.seq),
                    });
                }
                self.decrypted += 1;
            }
        } else if let Some(anchor) = pruned_anchor(line.payload) {
            self.anchors.push(anchor);
        }
        self.records += 1;
        self.expected = Some((line.seq + 1, line.hash));
        Ok(())
    }

    /// The verdict once every file was given.
    pub fn finish(self) -> Result<Verified, ChainError> {
        let (Some((next, head)), Some((first, first_prev))) = (self.expected, self.start) else {
            return Err(ChainError::Empty);
        };
        if first != 0 && !self.anchors.contains(&(first - 1, first_prev)) {
            return Err(ChainError::Missing {
                file: self.first_file.unwrap_or_default(),
                expected: 0,
                found: first,
            });
        }
        Ok(Verified {
            records: self.records,
            first_seq: first,
            last_seq: next - 1,
            head,
            torn_tail: self.torn,
            decrypted: self.decrypted,
        })
    }
}

/// The (last pruned seq, its hash) a `pruned` control record states.
fn pruned_anchor(payload: &[u8]) -> Option<(u64, [u8; 32])> {
    let v: serde_json::Value = serde_json::from_slice(payload).ok()?;
    if v.get("kind")?.as_str()? != "pruned" {
        return None;
    }
    let seq = v.get("through_seq")?.as_u64()?;
    let hash = unhex32(v.get("through_hash")?.as_str()?)?;
    Some((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64, key: Option<&RecordKey>) -> Vec<u8> {
        let rng = SystemRandom::new();
        let mut prev = ZERO_HASH;
        let mut out = Vec::new();
        for seq in 0..n {
            let payload = format!("{{\"kind\":\"login\",\"n\":{seq}}}");
            let (line, hash) = encode(
                seq,
                100 + seq,
                &prev,
                payload.as_bytes(),
                key.map(|k| (k, &rng)),
            )
            .unwrap();
            out.extend_from_slice(&line);
            prev = hash;
        }
        out
    }

    #[test]
    fn a_fresh_chain_verifies_and_round_trips() {
        let bytes = chain(5, None);
        let v = verify(&[(file_name(0), bytes.clone())], None).unwrap();
        assert_eq!(
            (v.records, v.first_seq, v.last_seq, v.torn_tail),
            (5, 0, 4, None)
        );
        let (lines, torn) = split_lines(&bytes);
        assert!(torn.is_none());
        let l = parse_line(lines[3].1).unwrap();
        assert_eq!(l.json(None).unwrap(), b"{\"kind\":\"login\",\"n\":3}");
        assert_eq!(v.head, parse_line(lines[4].1).unwrap().hash);
    }

    #[test]
    fn edits_deletions_reorders_and_tears_are_reported() {
        let bytes = chain(4, None);
        let files = |b: Vec<u8>| vec![(file_name(0), b)];
        // Edit one payload byte of record 1.
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replacen("\"n\":1", "\"n\":7", 1);
        assert_eq!(
            verify(&files(edited.into_bytes()), None)
                .unwrap_err()
                .code(),
            "audit_record_altered"
        );
        let (lines, _) = split_lines(&bytes);
        let join = |order: &[usize]| {
            let mut out = Vec::new();
            for &i in order {
                out.extend_from_slice(lines[i].1);
                out.push(b'\n');
            }
            out
        };
        assert_eq!(
            verify(&files(join(&[0, 2, 3])), None).unwrap_err().code(),
            "audit_record_missing"
        );
        assert_eq!(
            verify(&files(join(&[0, 2, 1, 3])), None)
                .unwrap_err()
                .code(),
            "audit_record_missing"
        );
        // Deleting the genesis is a missing prefix without an anchor.
        let no_genesis = vec![(file_name(1), join(&[1, 2, 3]))];
        assert_eq!(
            verify(&no_genesis, None).unwrap_err().code(),
            "audit_record_missing"
        );
        // A torn last record: the prefix verifies, the tail is reported, not counted.
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 10);
        let v = verify(&files(torn), None).unwrap();
        assert_eq!(v.records, 3);
        assert_eq!(v.torn_tail.as_ref().map(|t| t.1), Some(lines[3].0));
        // The same tear inside the chain (a later file follows) is an error.
        let mut torn = bytes.clone();
        torn.truncate(bytes.len() - 10);
        let two = vec![(file_name(0), torn), (file_name(3), join(&[3]))];
        assert_eq!(verify(&two, None).unwrap_err().code(), "audit_record_torn");
    }

    #[test]
    fn a_rewritten_link_with_a_recomputed_hash_breaks_the_next_link() {
        let bytes = chain(3, None);
        let (lines, _) = split_lines(&bytes);
        let l1 = parse_line(lines[1].1).unwrap();
        let forged_payload = b"{\"kind\":\"login\",\"n\":99}";
        let (forged, _) = encode(1, l1.ts, &l1.prev, forged_payload, None).unwrap();
        let mut out = lines[0].1.to_vec();
        out.push(b'\n');
        out.extend_from_slice(&forged);
        out.extend_from_slice(lines[2].1);
        out.push(b'\n');
        assert!(matches!(
            verify(&[(file_name(0), out)], None).unwrap_err(),
            ChainError::Broken { seq: 2, .. }
        ));
    }

    #[test]
    fn encrypted_records_hide_the_payload_and_need_the_right_key() {
        let key = RecordKey::new(&[7; 32]).unwrap();
        let bytes = chain(3, Some(&key));
        assert!(!String::from_utf8_lossy(&bytes).contains("login"));
        let v = verify(&[(file_name(0), bytes.clone())], Some(&key)).unwrap();
        assert_eq!(v.decrypted, 3);
        // Without the key the chain still verifies by hash.
        assert_eq!(
            verify(&[(file_name(0), bytes.clone())], None)
                .unwrap()
                .decrypted,
            0
        );
        let wrong = RecordKey::new(&[8; 32]).unwrap();
        assert_eq!(
            verify(&[(file_name(0), bytes.clone())], Some(&wrong))
                .unwrap_err()
                .code(),
            "audit_record_altered"
        );
        let (lines, _) = split_lines(&bytes);
        assert_eq!(
            parse_line(lines[2].1).unwrap().json(Some(&key)).unwrap(),
            b"{\"kind\":\"login\",\"n\":2}"
        );
    }

    #[test]
    fn a_pruned_prefix_verifies_only_under_its_anchor() {
        let bytes = chain(3, None);
        let (lines, _) = split_lines(&bytes);
        let l2 = parse_line(lines[2].1).unwrap();
        let anchor = format!(
            "{{\"kind\":\"pruned\",\"through_seq\":1,\"through_hash\":\"{}\"}}",
            hex(&l2.prev)
        );
        let (rec3, _) = encode(3, 200, &l2.hash, anchor.as_bytes(), None).unwrap();
        let mut kept = lines[2].1.to_vec();
        kept.push(b'\n');
        kept.extend_from_slice(&rec3);
        let v = verify(&[(file_name(2), kept.clone())], None).unwrap();
        assert_eq!((v.first_seq, v.last_seq), (2, 3));
        // Renaming the file to hide the gap is caught.
        assert_eq!(
            verify(&[(file_name(0), kept)], None).unwrap_err().code(),
            "audit_file_misnamed"
        );
    }

    #[test]
    fn rows_keyed_by_sequence_number_verify_and_a_moved_row_is_misplaced() {
        let bytes = chain(3, None);
        let (lines, _) = split_lines(&bytes);
        let rows = |keys: &[u64]| {
            let mut v = Verifier::new(None);
            for (key, (_, raw)) in keys.iter().zip(&lines) {
                v.row(&format!("row {key}"), *key, raw)?;
            }
            v.finish()
        };
        assert_eq!(rows(&[0, 1, 2]).unwrap().records, 3);
        let moved = rows(&[0, 1, 7]).unwrap_err();
        assert_eq!(moved.code(), "audit_record_misplaced");
        assert_eq!(moved.to_string(), "row 7: the row keyed 7 holds record 2");
        // Without the genesis the first row needs an anchor.
        let mut v = Verifier::new(None);
        v.row("row 1", 1, lines[1].1).unwrap();
        assert_eq!(v.finish().unwrap_err().code(), "audit_record_missing");
    }

    /// A chain of `n` records, every odd one with a blob of raw bytes holding LF and TAB.
    fn chain_with_blobs(n: u64, key: Option<&RecordKey>) -> Vec<u8> {
        let rng = SystemRandom::new();
        let mut prev = ZERO_HASH;
        let mut out = Vec::new();
        for seq in 0..n {
            let payload = format!("{{\"kind\":\"login\",\"n\":{seq}}}");
            let blob = format!("<Response n=\"{seq}\">\n\tv2\t1\n</Response>\n");
            let blob = (seq % 2 == 1).then_some(blob.as_bytes());
            prev = encode_into(
                &mut out,
                seq,
                100 + seq,
                &prev,
                payload.as_bytes(),
                blob,
                key.map(|k| (k, &rng)),
            )
            .unwrap();
        }
        out
    }

    #[test]
    fn records_with_a_blob_beside_them_verify_among_v1_lines() {
        let bytes = chain_with_blobs(5, None);
        let v = verify(&[(file_name(0), bytes.clone())], None).unwrap();
        assert_eq!((v.records, v.last_seq, v.torn_tail), (5, 4, None));
        let (lines, torn) = split_lines(&bytes);
        assert_eq!((lines.len(), torn), (5, None));
        let l = parse_line(lines[3].1).unwrap();
        assert_eq!(
            l.blob_plain(None).unwrap(),
            b"<Response n=\"3\">\n\tv2\t1\n</Response>\n"
        );
        assert_eq!(l.json(None).unwrap(), b"{\"kind\":\"login\",\"n\":3}");
        assert!(parse_line(lines[2].1).unwrap().blob.is_none());
        // The line alone (as `first_record` reads it) parses, its hash covering the digest.
        let header = &lines[3].1[..lines[3].1.iter().position(|&b| b == b'\n').unwrap()];
        assert_eq!(parse_header(header, true).unwrap().0.seq, 3);
    }

    #[test]
    fn a_tampered_response_blob_fails_verify() {
        let bytes = chain_with_blobs(4, None);
        let text = String::from_utf8(bytes.clone()).unwrap();
        // One byte of record 1's blob, same length: its digest no longer matches.
        let edited = text.replacen("<Response n=\"1\">", "<Response n=\"7\">", 1);
        assert_eq!(edited.len(), text.len());
        let err = verify(&[(file_name(0), edited.into_bytes())], None).unwrap_err();
        assert_eq!(err.code(), "audit_record_altered", "{err}");
        // A blob swapped for another of another length, its line's length field edited to
        // match: the line's own hash breaks.
        let (lines, _) = split_lines(&bytes);
        let rec = String::from_utf8(lines[1].1.to_vec()).unwrap();
        let (line, blob) = rec.split_once('\n').unwrap();
        let len = blob.len().to_string();
        let forged = format!(
            "{}\n{}x\n",
            line.replacen(&format!("\t{len}:"), &format!("\t{}:", blob.len() + 1), 1),
            blob
        );
        let mut out = lines[0].1.to_vec();
        out.push(b'\n');
        out.extend_from_slice(forged.as_bytes());
        for (_, raw) in &lines[2..] {
            out.extend_from_slice(raw);
            out.push(b'\n');
        }
        assert_eq!(
            verify(&[(file_name(0), out)], None).unwrap_err().code(),
            "audit_record_altered"
        );
        // A blob cut short at the end of the chain is a torn tail, not a record.
        let mut torn = chain_with_blobs(2, None);
        torn.truncate(torn.len() - 5);
        let v = verify(&[(file_name(0), torn)], None).unwrap();
        assert_eq!(v.records, 1);
        assert!(v.torn_tail.is_some());
    }

    #[test]
    fn an_encrypted_blob_needs_the_key_and_a_tampered_one_fails() {
        let key = RecordKey::new(&[7; 32]).unwrap();
        let bytes = chain_with_blobs(4, Some(&key));
        assert!(!String::from_utf8_lossy(&bytes).contains("Response"));
        let v = verify(&[(file_name(0), bytes.clone())], Some(&key)).unwrap();
        assert_eq!(v.decrypted, 4);
        assert_eq!(
            verify(&[(file_name(0), bytes.clone())], None)
                .unwrap()
                .records,
            4
        );
        let (lines, _) = split_lines(&bytes);
        let l = parse_line(lines[1].1).unwrap();
        assert_eq!(
            l.blob_plain(Some(&key)).unwrap(),
            b"<Response n=\"1\">\n\tv2\t1\n</Response>\n"
        );
        assert!(l.blob_plain(None).is_none());
        let wrong = RecordKey::new(&[8; 32]).unwrap();
        assert!(l.blob_plain(Some(&wrong)).is_none());
        assert_eq!(
            verify(&[(file_name(0), bytes.clone())], Some(&wrong))
                .unwrap_err()
                .code(),
            "audit_record_altered"
        );
        // The last byte of record 1's sealed blob flipped: its digest breaks first.
        let mut edited = bytes.clone();
        let end = lines[1].0 + lines[1].1.len() - 1;
        edited[end] ^= 1;
        assert_eq!(
            verify(&[(file_name(0), edited)], Some(&key))
                .unwrap_err()
                .code(),
            "audit_record_altered"
        );
    }

    #[test]
    fn lines_that_are_not_records_are_malformed() {
        for bad in [&b""[..], b"v1\t0", b"v2\t0\t0\t00\t{}\tab", b"x\ty"] {
            assert_eq!(
                parse_line(bad),
                Err(false),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("audit-1.log"), None);
    }
}
