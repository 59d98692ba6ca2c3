//! Digital Credentials Query Language (OpenID4VP 1.0 §6): what we ask the wallet for.

use serde_json::{Value, json};

/// A credential format and its type constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `dc+sd-jwt` with these accepted `vct` values.
    SdJwt {
        /// `meta.vct_values`.
        vct_values: Vec<String>,
    },
    /// `mso_mdoc` with this document type.
    MsoMdoc {
        /// `meta.doctype_value`, e.g. `eu.europa.ec.eudi.pid.1`.
        doctype: String,
    },
}

/// One credential query: an id (the key of the answer in `vp_token`), a format, and the
/// claim paths the route needs (data minimisation: nothing else is asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialQuery {
    /// Alphanumeric, `_` or `-`, non-empty.
    pub id: String,
    /// The format and its type.
    pub format: Format,
    /// Claim paths, e.g. `["given_name"]`, or for mdoc `["eu.europa.ec.eudi.pid.1",
    /// "family_name"]`.
    pub claims: Vec<Vec<String>>,
}

impl CredentialQuery {
    pub(crate) fn valid_id(&self) -> bool {
        !self.id.is_empty()
            && self.id.len() <= 64
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }
}

/// The `dcql_query` object for these credential queries (every one required).
#[must_use]
pub fn dcql(queries: &[CredentialQuery]) -> Value {
    let credentials: Vec<Value> = queries
        .iter()
        .map(|q| {
            let (format, meta) = match &q.format {
                Format::SdJwt { vct_values } => ("dc+sd-jwt", json!({ "vct_values": vct_values })),
                Format::MsoMdoc { doctype } => ("mso_mdoc", json!({ "doctype_value": doctype })),
            };
            let mut c = json!({ "id": q.id, "format": format, "meta": meta });
            // No claim paths: the credential is asked for itself (a wallet attestation),
            // and DCQL says so by leaving `claims` out, never by an empty array.
            if !q.claims.is_empty() {
                let claims: Vec<Value> = q.claims.iter().map(|p| json!({ "path": p })).collect();
                c["claims"] = Value::Array(claims);
            }
            c
        })
        .collect();
    json!({ "credentials": credentials })
}
