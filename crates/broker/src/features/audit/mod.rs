//! The audit trail (issue 8): one record per completed or refused login, durably written
//! before the session cookie leaves, in a hash chain of append-only files.
//!
//! - [`chain`]: the line format, hashing, encryption framing and whole-chain verification,
//!   pure (bytes in, bytes out, time passed in);
//! - [`file`]: the file sink: one writer thread, group commit (one `fdatasync` per batch of
//!   concurrent logins), rotation, crash recovery, retention pruning under an anchor record;
//! - [`postgres`]: the same lines in a PostgreSQL table, one chain per writer (replica);
//! - [`cli`]: `varco audit verify` and `varco audit export`.
//!
//! The ACS handler fills an [`Evidence`] while it decides, turns it into a JSON record with
//! [`Evidence::record`], and awaits [`Sink::append`]: the answer comes after the fsync.
//!
//! May import: the leaf; its submodules.

pub mod append;
pub mod chain;
pub mod cli;
pub mod file;
pub mod postgres;

pub use append::{AuditError, Durable};
pub use file::Expected;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use ring::digest::{SHA256, digest};

use crate::leaf::clock::unix;

/// Largest SAMLResponse (base64 as received) kept verbatim in the record of a *refused*
/// login; above it the record keeps its size and SHA-256 only, so junk posts cannot fill the
/// disk at 512 KB a time. Completed logins always keep the whole Response.
pub const MAX_REFUSED_RESPONSE: usize = 64 * 1024;

/// The hex SHA-256 a refused login's record keeps instead of a Response over
/// [`MAX_REFUSED_RESPONSE`] (`None` for one kept verbatim): for the ACS to compute on the heavy
/// pool with the decoding, so that a junk post costs the async worker no work that grows
/// with its size ([`Evidence::response_sha256`]).
pub fn refused_response_digest(b64: &[u8]) -> Option<String> {
    (b64.len() > MAX_REFUSED_RESPONSE).then(|| chain::hex(digest(&SHA256, b64).as_ref()))
}

/// One record for a sink: its JSON object, and the bytes kept beside it, if any (the file
/// sink's v2 record, `chain`: a completed SAML login's Response, raw, instead of base64 inside
/// the JSON).
#[derive(Debug, Clone)]
pub struct Record {
    /// The JSON object.
    pub json: Vec<u8>,
    /// Kept beside the JSON, covered by the chain through its SHA-256.
    pub blob: Option<Arc<[u8]>>,
}

impl From<Vec<u8>> for Record {
    fn from(json: Vec<u8>) -> Record {
        Record { json, blob: None }
    }
}

/// The TCP peer of a connection, put in each request's extensions by the server loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// Where records go.
pub enum Sink {
    /// Audit switched off (`audit.enabled = false`): for benchmarks and tests only.
    Off,
    /// Append-only chained files with group commit.
    File(file::FileSink),
    /// A PostgreSQL table, one chain per writer, group commit by transaction.
    Postgres(postgres::PgSink),
}

/// Where the configuration says records go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Files in a directory.
    File(file::Options),
    /// A PostgreSQL database.
    Postgres(postgres::PgOptions),
}

impl Sink {
    /// Whether appends can succeed now, as far as the sink knows: false while the PostgreSQL
    /// sink has no open chain (down at start, or its last batch failed).
    pub fn is_up(&self) -> bool {
        match self {
            Sink::Off | Sink::File(_) => true,
            Sink::Postgres(p) => p.is_up(),
        }
    }

    /// Appends one record (a JSON object) and returns once it is on stable storage (or at
    /// once, with `None`, when audit is off).
    pub async fn append(
        &self,
        now: SystemTime,
        payload: Vec<u8>,
    ) -> Result<Option<Durable>, AuditError> {
        self.append_as(now, payload, &Expected::default()).await
    }

    /// A login's promise that its record will follow, taken once its Response has been
    /// read: the file sink's syncer holds a due sync for such logins (at most
    /// `audit.commit_interval_us`) so that they share it. Holds nothing for the other sinks.
    pub fn expect(&self) -> Expected {
        match self {
            Sink::File(f) => f.expect(),
            Sink::Off | Sink::Postgres(_) => Expected::default(),
        }
    }

    /// [`Self::append`] for the login that took `expected` (its promise is released once
    /// the record is written).
    pub async fn append_as(
        &self,
        now: SystemTime,
        payload: Vec<u8>,
        expected: &Expected,
    ) -> Result<Option<Durable>, AuditError> {
        self.append_record(now, payload.into(), expected).await
    }

    /// [`Self::append_as`] of a record that may keep bytes beside it ([`Self::record`]).
    pub async fn append_record(
        &self,
        now: SystemTime,
        record: Record,
        expected: &Expected,
    ) -> Result<Option<Durable>, AuditError> {
        match self {
            Sink::Off => Ok(None),
            Sink::File(f) => f
                .append_as(now, record.json, record.blob, expected)
                .await
                .map(Some),
            // [`Self::record`] never gives this sink a blob; one would be lost: refused.
            Sink::Postgres(_) if record.blob.is_some() => Err(AuditError::Encode),
            Sink::Postgres(p) => p.append(now, record.json).await.map(Some),
        }
    }

    /// The record of `evidence` for this sink: the file sink keeps a completed login's
    /// Response beside the record ([`Evidence::record_beside`]); the others get the JSON
    /// with the Response inside ([`Evidence::record`]).
    pub fn record(&self, evidence: &Evidence, outcome: Outcome<'_>, now: SystemTime) -> Record {
        match self {
            Sink::File(_) => evidence.record_beside(outcome, now),
            Sink::Off | Sink::Postgres(_) => evidence.record(outcome, now).into(),
        }
    }
}

/// What the ACS learned about one login attempt, filled as it goes; every field is optional
/// because a refusal can happen at any step.
#[derive(Debug, Default, Clone)]
pub struct Evidence {
    /// Client address (the TCP peer).
    pub client: Option<String>,
    /// The AuthnRequest ID this Response answers (once a pending request matched).
    pub request_id: Option<String>,
    /// Its IssueInstant.
    pub request_issue_instant: Option<SystemTime>,
    /// The AuthnRequest as Varco built it (unsigned XML; the Redirect signature is in the URL).
    pub request_xml: Option<String>,
    /// The IdP entityID (of the pending request, then the Assertion's Issuer).
    pub idp: Option<String>,
    /// `spid`, `cie`, `eidas` or `legacy`.
    pub method: Option<&'static str>,
    /// The person's profile (`citizen`, `professional`, `business`, `intermediary`), once
    /// known: for the switch-off adoption report.
    pub profile: Option<&'static str>,
    /// Legacy logins: the switch-off exception category, if any.
    pub category: Option<String>,
    /// The SAMLResponse form value as received, white space removed (base64).
    pub response_b64: Option<Vec<u8>>,
    /// The same Response decoded (the XML the ACS validated), once the form decoded: a
    /// completed login's record keeps these bytes beside it in the file sink
    /// ([`Evidence::record_beside`]), not their base64 inside the JSON. Base64 decoding is
    /// strict (canonical padding and bits), so `response_b64` is exactly their encoding.
    pub response_xml: Option<Arc<[u8]>>,
    /// Hex SHA-256 of `response_b64`, when the ACS computed it off the async worker
    /// ([`refused_response_digest`]); `None`: the record computes it if it needs it.
    pub response_sha256: Option<String>,
    /// Response ID.
    pub response_id: Option<String>,
    /// Assertion ID.
    pub assertion_id: Option<String>,
    /// NameID.
    pub name_id: Option<String>,
    /// NameID/@NameQualifier.
    pub name_qualifier: Option<String>,
    /// The normalized subject: fiscalNumber when asserted, else the NameID.
    pub sub: Option<String>,
    /// Level asserted (1-3).
    pub level: Option<u8>,
    /// AuthnInstant.
    pub authn_instant: Option<SystemTime>,
    /// SPID anomaly number of a refusal, if the IdP sent one.
    pub spid_error: Option<u8>,
    /// CNS logins: the end-entity client certificate presented (DER, base64).
    pub certificate_b64: Option<String>,
    /// Wallet logins: base64url SHA-256 of the presentation as received (the SD-JWT VC with
    /// its disclosures and KB-JWT, or the mdoc DeviceResponse).
    pub presentation_sha256: Option<String>,
    /// The login's promise to the sink that this record will follow ([`Sink::expect`]);
    /// not part of the record.
    pub expected: Expected,
    /// Wallet logins with a wallet attestation: the Wallet Provider that vouched for the
    /// wallet instance (the attestation's `iss`, once its signature verified).
    pub wallet_provider: Option<String>,
    /// Wallet logins with a wallet attestation: base64url SHA-256 of the attestation as
    /// received.
    pub wallet_attestation_sha256: Option<String>,
}

/// The outcome a record states.
pub enum Outcome<'a> {
    /// A session was opened with this `sid`.
    Completed {
        /// Session id.
        sid: &'a str,
    },
    /// Refused with this code.
    Refused {
        /// Stable error code.
        code: &'a str,
    },
}

/// Whether serde_json writes `bytes` as a JSON string unchanged: printable ASCII with no
/// quote or backslash (base64 always is). Checked in blocks the compiler vectorizes.
fn needs_no_escaping(bytes: &[u8]) -> bool {
    bytes.chunks(64).all(|block| {
        block.iter().fold(true, |plain, &b| {
            plain & (b' '..=b'~').contains(&b) & (b != b'"') & (b != b'\\')
        })
    })
}

/// Appends `value` to a JSON text as a string, or `null`: copied whole when it needs no
/// escaping (checked), through serde's escaper otherwise; bytes that are not UTF-8 are
/// written as `null` (a refused Response that is not even text is kept by its size only).
fn push_json_string(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) if needs_no_escaping(v) => {
            out.reserve(v.len() + 2);
            out.push(b'"');
            out.extend_from_slice(v);
            out.push(b'"');
        }
        other => {
            let text = other.and_then(|v| std::str::from_utf8(v).ok());
            // Writing a string to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &text);
        }
    }
}

fn instant(t: Option<SystemTime>) -> Option<String> {
    t.and_then(saml::format_instant)
}

/// Appends `,"key":` (keys are plain ASCII: written as they are; the record's first member
/// is written with its opening brace).
fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends `value` as a JSON string, or `null`, as serde_json writes it.
fn push_str(out: &mut Vec<u8>, value: Option<&str>) {
    push_json_string(out, value.map(str::as_bytes));
}

/// Appends `"key":value` unless `value` is `None` (a field serde skipped when empty).
fn push_skipped(out: &mut Vec<u8>, key: &str, value: Option<&str>) {
    if let Some(v) = value {
        push_key(out, key);
        push_str(out, Some(v));
    }
}

/// Appends `value` in decimal, or `null`.
fn push_number(out: &mut Vec<u8>, value: Option<u64>) {
    let Some(mut v) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends the base64 of `value` as a JSON string (base64 never needs escaping), or `null`;
/// encoded straight into `out`.
fn push_base64(out: &mut Vec<u8>, value: Option<&[u8]>) {
    let Some(v) = value else {
        out.extend_from_slice(b"null");
        return;
    };
    let engine = &base64::engine::general_purpose::STANDARD;
    out.push(b'"');
    let at = out.len();
    out.resize(at + v.len().div_ceil(3) * 4, 0);
    // The room is exactly the padded length, so encoding cannot fail; were it ever to,
    // the record would say `""` rather than hold zeros.
    match engine.encode_slice(v, &mut out[at..]) {
        Ok(n) => out.truncate(at + n),
        Err(_) => out.truncate(at),
    }
    out.push(b'"');
}

impl Evidence {
    /// The record's JSON bytes for this outcome at `now`, the Response (as received, base64)
    /// inside.
    pub fn record(&self, outcome: Outcome<'_>, now: SystemTime) -> Vec<u8> {
        self.json(outcome, now, false)
    }

    /// The record for the file sink: for a completed login whose Response decoded, the JSON
    /// says `"response_b64":null,"response_beside":true` (with `response_bytes`, the base64
    /// length, as before) and the decoded Response goes beside it, raw (a quarter smaller
    /// than its base64, hashed once, by the chain); otherwise as [`Self::record`].
    pub fn record_beside(&self, outcome: Outcome<'_>, now: SystemTime) -> Record {
        let blob = match (&outcome, &self.response_xml) {
            (Outcome::Completed { .. }, Some(xml)) if self.response_b64.is_some() => {
                Some(xml.clone())
            }
            _ => None,
        };
        Record {
            json: self.json(outcome, now, blob.is_some()),
            blob,
        }
    }

    /// The record's JSON, written field by field in its fixed order: the bytes serde_json
    /// wrote for the record as one struct (test `the_record_is_the_one_serde_wrote`), without
    /// its per-byte escaper on keys and on values that need no escaping (issue 20: the
    /// base64 AuthnRequest, ~2.7 KB a login, is encoded straight into the record).
    fn json(&self, outcome: Outcome<'_>, now: SystemTime, beside: bool) -> Vec<u8> {
        let (outcome, code, sid) = match outcome {
            Outcome::Completed { sid } => ("completed", None, Some(sid)),
            Outcome::Refused { code } => ("refused", Some(code), None),
        };
        let response = self.response_b64.as_deref();
        let keep = response
            .filter(|_| !beside)
            .filter(|r| outcome == "completed" || r.len() <= MAX_REFUSED_RESPONSE);
        // Only when the Response itself is not kept: hashing 15 KB per login costs as much
        // CPU as the chain's own hash.
        let response_sha256 = response.filter(|_| keep.is_none() && !beside).map(|r| {
            self.response_sha256
                .clone()
                .unwrap_or_else(|| chain::hex(digest(&SHA256, r).as_ref()))
        });
        let request = self.request_xml.as_deref().map(str::as_bytes);
        // One buffer, sized for the Response and the AuthnRequest, so that it is not moved
        // as it grows.
        let size =
            keep.map_or(0, <[u8]>::len) + request.map_or(0, |x| x.len().div_ceil(3) * 4) + 1024;
        let mut record = Vec::with_capacity(size);
        let out = &mut record;
        out.extend_from_slice(b"{\"kind\":\"login\"");
        push_key(out, "outcome");
        push_str(out, Some(outcome));
        push_skipped(out, "code", code);
        push_skipped(out, "sid", sid);
        push_key(out, "at");
        push_str(out, Some(&saml::format_instant(now).unwrap_or_default()));
        push_key(out, "at_unix");
        push_number(out, Some(unix(now)));
        push_key(out, "client");
        push_str(out, self.client.as_deref());
        push_key(out, "method");
        push_str(out, self.method);
        // Added with issue 7; absent from older records (readers treat absence as unknown).
        push_skipped(out, "profile", self.profile);
        push_skipped(out, "category", self.category.as_deref());
        push_key(out, "idp");
        push_str(out, self.idp.as_deref());
        push_key(out, "request_id");
        push_str(out, self.request_id.as_deref());
        push_key(out, "request_issue_instant");
        push_str(out, instant(self.request_issue_instant).as_deref());
        push_key(out, "request_b64");
        push_base64(out, request);
        push_key(out, "response_id");
        push_str(out, self.response_id.as_deref());
        push_key(out, "assertion_id");
        push_str(out, self.assertion_id.as_deref());
        push_key(out, "name_id");
        push_str(out, self.name_id.as_deref());
        push_key(out, "name_qualifier");
        push_str(out, self.name_qualifier.as_deref());
        push_key(out, "sub");
        push_str(out, self.sub.as_deref());
        push_key(out, "level");
        push_number(out, self.level.map(u64::from));
        push_key(out, "authn_instant");
        push_str(out, instant(self.authn_instant).as_deref());
        if let Some(n) = self.spid_error {
            push_key(out, "spid_error");
            push_number(out, Some(u64::from(n)));
        }
        push_key(out, "response_b64");
        // Base64 is ASCII; anything else was refused before decoding and is kept by hash.
        push_json_string(out, keep);
        // The Response is kept beside the record, raw (a v2 record's blob).
        if beside {
            push_key(out, "response_beside");
            out.extend_from_slice(b"true");
        }
        push_key(out, "response_bytes");
        push_number(out, response.map(|r| r.len() as u64));
        push_skipped(out, "response_sha256", response_sha256.as_deref());
        push_skipped(out, "certificate_b64", self.certificate_b64.as_deref());
        push_skipped(
            out,
            "presentation_sha256",
            self.presentation_sha256.as_deref(),
        );
        push_skipped(out, "wallet_provider", self.wallet_provider.as_deref());
        push_skipped(
            out,
            "wallet_attestation_sha256",
            self.wallet_attestation_sha256.as_deref(),
        );
        out.push(b'}');
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The record as serde_json wrote it before the hand-written encoder: the reference the
    /// record must stay byte-identical to (chains and the tests that read them pin it).
    #[derive(serde::Serialize)]
    struct SerdeRecord<'a> {
        kind: &'static str,
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        sid: Option<&'a str>,
        at: String,
        at_unix: u64,
        client: Option<&'a str>,
        method: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        profile: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        category: Option<&'a str>,
        idp: Option<&'a str>,
        request_id: Option<&'a str>,
        request_issue_instant: Option<String>,
        request_b64: Option<String>,
        response_id: Option<&'a str>,
        assertion_id: Option<&'a str>,
        name_id: Option<&'a str>,
        name_qualifier: Option<&'a str>,
        sub: Option<&'a str>,
        level: Option<u8>,
        authn_instant: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        spid_error: Option<u8>,
        response_b64: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        response_beside: Option<bool>,
        response_bytes: Option<usize>,
        #[serde(skip_serializing_if = "Option::is_none")]
        response_sha256: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        certificate_b64: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        presentation_sha256: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        wallet_provider: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        wallet_attestation_sha256: Option<&'a str>,
    }

    fn serde_record(e: &Evidence, outcome: Outcome<'_>, now: SystemTime, beside: bool) -> Vec<u8> {
        let (outcome, code, sid) = match outcome {
            Outcome::Completed { sid } => ("completed", None, Some(sid)),
            Outcome::Refused { code } => ("refused", Some(code), None),
        };
        let response = e.response_b64.as_deref();
        let keep = response
            .filter(|_| !beside)
            .filter(|r| outcome == "completed" || r.len() <= MAX_REFUSED_RESPONSE);
        serde_json::to_vec(&SerdeRecord {
            kind: "login",
            outcome,
            code,
            sid,
            at: saml::format_instant(now).unwrap_or_default(),
            at_unix: unix(now),
            client: e.client.as_deref(),
            method: e.method,
            profile: e.profile,
            category: e.category.as_deref(),
            idp: e.idp.as_deref(),
            request_id: e.request_id.as_deref(),
            request_issue_instant: instant(e.request_issue_instant),
            request_b64: e
                .request_xml
                .as_ref()
                .map(|x| base64::engine::general_purpose::STANDARD.encode(x)),
            response_id: e.response_id.as_deref(),
            assertion_id: e.assertion_id.as_deref(),
            name_id: e.name_id.as_deref(),
            name_qualifier: e.name_qualifier.as_deref(),
            sub: e.sub.as_deref(),
            level: e.level,
            authn_instant: instant(e.authn_instant),
            spid_error: e.spid_error,
            response_b64: keep.and_then(|k| std::str::from_utf8(k).ok()),
            response_beside: beside.then_some(true),
            response_bytes: response.map(<[u8]>::len),
            response_sha256: response.filter(|_| keep.is_none() && !beside).map(|r| {
                e.response_sha256
                    .clone()
                    .unwrap_or_else(|| chain::hex(digest(&SHA256, r).as_ref()))
            }),
            certificate_b64: e.certificate_b64.as_deref(),
            presentation_sha256: e.presentation_sha256.as_deref(),
            wallet_provider: e.wallet_provider.as_deref(),
            wallet_attestation_sha256: e.wallet_attestation_sha256.as_deref(),
        })
        .unwrap()
    }

    #[test]
    fn the_record_is_the_one_serde_wrote() {
        let full = Evidence {
            client: Some("192.0.2.7:50123".into()),
            request_id: Some("_a1b2".into()),
            request_issue_instant: Some(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000),
            ),
            request_xml: Some(
                "<samlp:AuthnRequest ID=\"_a1b2\">è\u{0}</samlp:AuthnRequest>".into(),
            ),
            idp: Some("https://idp.example/\"q\"".into()),
            method: Some("spid"),
            profile: Some("citizen"),
            category: Some("cat\tegory\u{1f}".into()),
            response_b64: Some(b"PHNhbWxwOlJlc3BvbnNlLz4=".to_vec()),
            response_xml: Some(Arc::from(&b"<samlp:Response/>"[..])),
            response_sha256: None,
            response_id: Some("_r\\1".into()),
            assertion_id: Some("_as/1".into()),
            name_id: Some("SPID-ÄÖ\u{2028}\n\r\u{8}\u{c}\u{7f}".into()),
            name_qualifier: Some(String::new()),
            sub: Some("TINIT-RSSMRA80A01H501U".into()),
            level: Some(2),
            authn_instant: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_799)),
            spid_error: Some(25),
            certificate_b64: Some("MIIB".into()),
            presentation_sha256: Some("p".into()),
            expected: Expected::default(),
            wallet_provider: Some("https://wp.example".into()),
            wallet_attestation_sha256: Some("3q2-7w".into()),
        };
        let empty_request = Evidence {
            request_xml: Some(String::new()),
            level: Some(0),
            ..Evidence::default()
        };
        let junk = Evidence {
            response_b64: Some(b"a\"b\\c\n\xc3\xa9".to_vec()),
            request_xml: Some("ab".into()),
            ..Evidence::default()
        };
        let not_text = Evidence {
            response_b64: Some(b"\xff\xfe".to_vec()),
            request_xml: Some("abcd".into()),
            ..Evidence::default()
        };
        let large = Evidence {
            response_b64: Some(vec![b'A'; MAX_REFUSED_RESPONSE + 1]),
            ..Evidence::default()
        };
        let digested = Evidence {
            response_sha256: Some("d".repeat(64)),
            ..large.clone()
        };
        // Years beyond 9999: `at` is then the empty string, as before.
        let times = [
            SystemTime::UNIX_EPOCH,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_100_000),
            SystemTime::UNIX_EPOCH + Duration::from_secs(253_402_300_800),
        ];
        for e in [
            &full,
            &empty_request,
            &junk,
            &not_text,
            &large,
            &digested,
            &Evidence::default(),
        ] {
            for now in times {
                let outcomes: [fn() -> Outcome<'static>; 2] = [
                    || Outcome::Completed { sid: "s1" },
                    || Outcome::Refused { code: "saml_\"x" },
                ];
                for outcome in outcomes {
                    for beside in [false, true] {
                        let ours = e.json(outcome(), now, beside);
                        let theirs = serde_record(e, outcome(), now, beside);
                        assert_eq!(
                            String::from_utf8_lossy(&ours),
                            String::from_utf8_lossy(&theirs)
                        );
                        assert_eq!(ours, theirs);
                    }
                }
            }
        }
    }

    #[test]
    fn wallet_records_carry_the_presentation_digest() {
        let e = Evidence {
            method: Some("wallet"),
            presentation_sha256: Some("q83vEjRWeJA".into()),
            wallet_provider: Some("https://wp.example".into()),
            wallet_attestation_sha256: Some("3q2-7w".into()),
            ..Evidence::default()
        };
        let v: serde_json::Value = serde_json::from_slice(
            &e.record(Outcome::Completed { sid: "s" }, SystemTime::UNIX_EPOCH),
        )
        .unwrap();
        assert_eq!(v["method"], "wallet");
        assert_eq!(v["presentation_sha256"], "q83vEjRWeJA");
        assert_eq!(v["wallet_provider"], "https://wp.example");
        assert_eq!(v["wallet_attestation_sha256"], "3q2-7w");
        // Absent from every other kind of login.
        let other: serde_json::Value = serde_json::from_slice(
            &Evidence::default().record(Outcome::Refused { code: "x" }, SystemTime::UNIX_EPOCH),
        )
        .unwrap();
        assert!(other.get("presentation_sha256").is_none());
        assert!(other.get("wallet_provider").is_none());
    }

    #[test]
    fn the_response_is_copied_whole_only_when_it_needs_no_escaping() {
        let now = SystemTime::UNIX_EPOCH;
        let record = |response: &[u8], outcome: Outcome<'_>| {
            let e = Evidence {
                response_b64: Some(response.to_vec()),
                name_id: Some("a\"b\\c\u{1}".into()),
                request_xml: Some("<samlp:AuthnRequest/>".into()),
                spid_error: Some(19),
                presentation_sha256: Some("p".into()),
                ..Evidence::default()
            };
            let bytes = e.record(outcome, now);
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            (String::from_utf8(bytes).unwrap(), v)
        };
        // Base64: verbatim, in its place between spid_error and response_bytes.
        let (text, v) = record(b"PHNhbWxwOlJlc3BvbnNlLz4=", Outcome::Completed { sid: "s" });
        assert!(text.contains(
            r#""spid_error":19,"response_b64":"PHNhbWxwOlJlc3BvbnNlLz4=","response_bytes":24,"presentation_sha256":"p"}"#
        ));
        assert_eq!(v["name_id"], "a\"b\\c\u{1}");
        // Bytes that need escaping go through serde's escaper and read back as they were.
        for junk in [&b"a\"b"[..], b"a\\b", b"a\nb\x7f", b"\xc3\xa9"] {
            let (_, v) = record(junk, Outcome::Refused { code: "x" });
            assert_eq!(v["response_b64"].as_str().unwrap().as_bytes(), junk);
            assert_eq!(v["response_bytes"], junk.len());
        }
        // Not UTF-8: kept by its size only, as before.
        let (text, v) = record(b"\xff\xfe", Outcome::Refused { code: "x" });
        assert!(text.contains(r#""response_b64":null,"response_bytes":2,"#));
        assert!(v["response_b64"].is_null());
        // No Response at all.
        let (text, _) = record(b"", Outcome::Refused { code: "x" });
        assert!(text.contains(r#""response_b64":"","response_bytes":0,"#));
        let none = Evidence::default().record(Outcome::Refused { code: "x" }, now);
        let text = String::from_utf8(none).unwrap();
        assert!(text.ends_with(r#""response_b64":null,"response_bytes":null}"#));
        assert!(
            !needs_no_escaping(b"\t") && needs_no_escaping(b" ~") && !needs_no_escaping(&[0x80])
        );
    }

    #[test]
    fn a_completed_login_keeps_its_response_beside_the_record_in_the_file_sink() {
        let xml: Arc<[u8]> = Arc::from(&b"<samlp:Response/>"[..]);
        let e = Evidence {
            response_b64: Some(b"PHNhbWxwOlJlc3BvbnNlLz4=".to_vec()),
            response_xml: Some(xml.clone()),
            ..Evidence::default()
        };
        let now = SystemTime::UNIX_EPOCH;
        let done = e.record_beside(Outcome::Completed { sid: "s" }, now);
        assert_eq!(done.blob.as_deref(), Some(&xml[..]));
        let text = String::from_utf8(done.json).unwrap();
        assert!(
            text.ends_with(r#""response_b64":null,"response_beside":true,"response_bytes":24}"#),
            "{text}"
        );
        // The JSON alone, for the other sinks, keeps the base64 inside as before.
        let inline: serde_json::Value =
            serde_json::from_slice(&e.record(Outcome::Completed { sid: "s" }, now)).unwrap();
        assert_eq!(inline["response_b64"], "PHNhbWxwOlJlc3BvbnNlLz4=");
        assert!(inline.get("response_beside").is_none());
        // A refusal keeps the Response inside its JSON, as before: no blob.
        let refused = e.record_beside(Outcome::Refused { code: "x" }, now);
        assert!(refused.blob.is_none());
        assert_eq!(refused.json, e.record(Outcome::Refused { code: "x" }, now));
        // Nothing decoded (a form refused before decoding): no blob either.
        let raw = Evidence {
            response_xml: None,
            ..e.clone()
        };
        assert!(
            raw.record_beside(Outcome::Completed { sid: "s" }, now)
                .blob
                .is_none()
        );
        // The strict decoder the ACS uses gives back exactly the base64 received.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        assert_eq!(
            b64.encode(&xml[..]).as_bytes(),
            &e.response_b64.unwrap()[..]
        );
        assert!(b64.decode("PHNhbWxwOlJlc3BvbnNlLz5=").is_err());
    }

    #[test]
    fn refused_records_keep_large_junk_by_hash_only() {
        let e = Evidence {
            response_b64: Some(vec![b'A'; MAX_REFUSED_RESPONSE + 1]),
            ..Evidence::default()
        };
        let now = SystemTime::UNIX_EPOCH;
        let refused: serde_json::Value =
            serde_json::from_slice(&e.record(Outcome::Refused { code: "x" }, now)).unwrap();
        assert!(refused["response_b64"].is_null());
        assert_eq!(refused["response_bytes"], MAX_REFUSED_RESPONSE + 1);
        assert_eq!(refused["code"], "x");
        assert_eq!(refused["response_sha256"].as_str().unwrap().len(), 64);
        let done: serde_json::Value =
            serde_json::from_slice(&e.record(Outcome::Completed { sid: "s" }, now)).unwrap();
        assert_eq!(
            done["response_b64"].as_str().unwrap().len(),
            MAX_REFUSED_RESPONSE + 1
        );
        assert_eq!(done["outcome"], "completed");
        assert!(done.get("response_sha256").is_none());
        // The digest the ACS computes on the heavy pool is the one the record would compute.
        let junk = vec![b'A'; MAX_REFUSED_RESPONSE + 1];
        assert_eq!(refused_response_digest(&junk[..MAX_REFUSED_RESPONSE]), None);
        let pre = Evidence {
            response_sha256: refused_response_digest(&junk),
            response_b64: Some(junk),
            ..Evidence::default()
        };
        let early: serde_json::Value =
            serde_json::from_slice(&pre.record(Outcome::Refused { code: "x" }, now)).unwrap();
        assert_eq!(early["response_sha256"], refused["response_sha256"]);
        assert_eq!(done["at"], "1970-01-01T00:00:00Z");
    }
}
