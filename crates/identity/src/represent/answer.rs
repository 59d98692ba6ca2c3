//! Sources that answer per delegate without a signature of their own: the portal's HTTP JSON
//! API (trusted through TLS and the broker's credentials toward it) and the portal's
//! PostgreSQL table (trusted through the database login). The broker does the I/O; this
//! module reads what came back against the same closed record schema as the signed file,
//! with the strict JSON reader (duplicate members and deep nesting refused), and refuses the
//! whole answer if any record names another delegate than the one asked about.

use serde_json::Value;

use super::signed_file::record;
use super::{Error, Representations, Source, SourceKind};

/// Bounds on one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnswerLimits {
    /// Body (or all rows together) in bytes (default 256 KiB: one person's records).
    pub max_bytes: usize,
    /// Records in one answer (default 256).
    pub max_records: usize,
    /// Services per record (default 64).
    pub max_services: usize,
}

impl Default for AnswerLimits {
    fn default() -> Self {
        AnswerLimits {
            max_bytes: 256 * 1024,
            max_records: 256,
            max_services: 64,
        }
    }
}

/// JSON depth of an HTTP body: body object, `representations` array, record object,
/// `represented` object, its `person`/`company` object. A row is one record: three less.
const BODY_DEPTH: usize = 5;
const ROW_DEPTH: usize = 3;

/// An answer source: [`SourceKind::HttpJson`] or [`SourceKind::Postgres`].
#[derive(Debug, Clone)]
pub struct Answer {
    id: String,
    kind: SourceKind,
    limits: AnswerLimits,
}

/// What the broker fetched for one delegate.
#[derive(Debug, Clone, Copy)]
pub enum AnswerInput<'a> {
    /// An HTTP body: `{"representations": [<record>, …]}`.
    Body {
        /// The `sub` the broker asked about.
        delegate: &'a str,
        /// The body, as received.
        bytes: &'a [u8],
    },
    /// PostgreSQL rows, each one record as JSON text (the query builds it with
    /// `json_build_object`, see docs/OPERATIONS.md).
    Rows {
        /// The `sub` the broker asked about.
        delegate: &'a str,
        /// One JSON record per row.
        rows: &'a [String],
    },
}

impl Answer {
    /// An HTTP JSON source.
    #[must_use]
    pub fn http(id: &str, limits: AnswerLimits) -> Answer {
        Answer {
            id: id.to_owned(),
            kind: SourceKind::HttpJson,
            limits,
        }
    }

    /// A PostgreSQL source.
    #[must_use]
    pub fn postgres(id: &str, limits: AnswerLimits) -> Answer {
        Answer {
            id: id.to_owned(),
            kind: SourceKind::Postgres,
            limits,
        }
    }
}

fn schema(at: &str, reason: &'static str) -> Error {
    Error::Schema {
        at: at.to_owned(),
        reason,
    }
}

fn malformed(_: &jose::Error) -> Error {
    schema(
        "answer",
        "not strict JSON (syntax, duplicate member or too deep)",
    )
}

impl Source for Answer {
    type Input<'a> = AnswerInput<'a>;

    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> SourceKind {
        self.kind
    }

    fn verify(&self, input: AnswerInput<'_>, _now: u64) -> Result<Representations, Error> {
        let too_many = |what, max| Error::TooMany { what, max };
        let (delegate, values) = match input {
            AnswerInput::Body { delegate, bytes } => {
                if bytes.len() > self.limits.max_bytes {
                    return Err(too_many("bytes", self.limits.max_bytes));
                }
                let mut body = jose::json::parse(bytes, BODY_DEPTH).map_err(|e| malformed(&e))?;
                let Some(obj) = body.as_object_mut() else {
                    return Err(schema("answer", "not a JSON object"));
                };
                if obj.len() != 1 {
                    return Err(schema("answer", "exactly one member, representations"));
                }
                let Some(Value::Array(list)) = obj.remove("representations") else {
                    return Err(schema("answer.representations", "missing or not an array"));
                };
                if list.len() > self.limits.max_records {
                    return Err(too_many("records", self.limits.max_records));
                }
                (delegate, list)
            }
            AnswerInput::Rows { delegate, rows } => {
                if rows.len() > self.limits.max_records {
                    return Err(too_many("records", self.limits.max_records));
                }
                let total: usize = rows.iter().map(String::len).sum();
                if total > self.limits.max_bytes {
                    return Err(too_many("bytes", self.limits.max_bytes));
                }
                let list = rows
                    .iter()
                    .map(|r| jose::json::parse(r.as_bytes(), ROW_DEPTH).map_err(|e| malformed(&e)))
                    .collect::<Result<Vec<_>, _>>()?;
                (delegate, list)
            }
        };
        let mut records = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            let r = record(&self.id, self.limits.max_services, i, v)?;
            // An answer about someone else is a broken or confused source: none of it is used.
            if r.delegate() != delegate {
                return Err(Error::Schema {
                    at: format!("representations[{i}].delegate"),
                    reason: "not the delegate asked about",
                });
            }
            records.push(r);
        }
        Representations::index(&self.id, None, records)
    }
}
