//! Acting for someone else in the broker (issue 24): where representations come from, per
//! service. The decision itself (`check`, `act`) and every source's verification live in
//! `identity::represent`; this module owns the `[represent]` configuration, the I/O each
//! source needs (a file read, an HTTP GET, a SQL query, the login's own attributes) and the
//! short cache in front of it.
//!
//! Sources sit behind one trait, [`RepresentationSource`]: given the delegate's verified login
//! and the time, an answer (the delegate's representations, verified by the matching
//! `identity` source) or a [`SourceError`]. Every error fails closed: the broker never guesses
//! that a person has no representation, nor that a chosen one still holds. A later EU wallet
//! source (power-of-representation attestation) fits the same trait: the attestation is
//! verified at login and kept with the session, and `lookup` reads it like the SPID
//! legal-person source reads the login's attributes.
//!
//! May import: the leaf, `audit` (the PostgreSQL connection and TLS settings it already has).

mod file;
mod http;
mod postgres;
mod source;
mod spid;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use identity::Principal;
use identity::represent;
use serde::Deserialize;

pub use file::FileSource;
pub use http::HttpSource;
pub use postgres::PgSource;
pub use source::{
    DEFAULT_CACHE_SECONDS, DEFAULT_RELOAD_SECONDS, DEFAULT_SPID_TTL, DEFAULT_TIMEOUT_MS, Lookup,
    RepresentationSource, SOURCE_UNAVAILABLE, SourceError,
};
pub use spid::SpidSource;

use source::RawSource;

// === Raw form ===

/// `[represent]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRepresent {
    #[serde(default)]
    source: Vec<RawSource>,
    #[serde(default)]
    service: Vec<RawService>,
}

/// `[[represent.service]]`: the sources asked for one route service.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    service: String,
    sources: Vec<String>,
    #[serde(default)]
    required: bool,
}

// === Validated form ===

/// The sources asked for one service.
#[derive(Clone)]
pub struct ServiceRule {
    /// In configuration order.
    pub sources: Vec<Arc<dyn RepresentationSource>>,
    /// Whether a person must act for someone on this service ("myself" is not offered).
    pub required: bool,
}

/// The validated `[represent]` table.
#[derive(Clone, Default)]
pub struct Represent {
    services: BTreeMap<String, ServiceRule>,
}

impl std::fmt::Debug for Represent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.services.iter().map(|(s, r)| {
                (
                    s,
                    r.sources
                        .iter()
                        .map(|x| x.id().to_owned())
                        .collect::<Vec<_>>(),
                )
            }))
            .finish()
    }
}

/// One representation the chooser offers: enough to show it and to name it in the form.
#[derive(Debug, Clone)]
pub struct Offer {
    /// Source id.
    pub source: String,
    /// The source's reference.
    pub reference: String,
    /// The legal ground.
    pub kind: represent::Kind,
    /// Whom: name when known, else the `sub`.
    pub label: String,
    /// Valid until (unix seconds).
    pub not_after: u64,
}

impl Represent {
    /// Whether any service has sources.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// The rule of `service`, if representations are configured for it.
    #[must_use]
    pub fn service(&self, service: &str) -> Option<&ServiceRule> {
        self.services.get(service)
    }

    /// Every representation `delegate` may use on `service` at `now`, from every source of
    /// the service, or the first source error (fail closed: a person is never shown a
    /// partial list as if it were complete). Returns also how many of the delegate's
    /// records were refused, for the log.
    pub async fn offers(
        &self,
        rule: &ServiceRule,
        delegate: &Principal,
        service: &str,
        now: u64,
    ) -> Result<(Vec<Offer>, usize), SourceError> {
        let mut offers = Vec::new();
        let mut refused = 0;
        for source in &rule.sources {
            let reps = source.lookup(delegate, now).await?;
            let choice = represent::decide(delegate, service, now, &reps);
            refused += choice.refused.len();
            offers.extend(choice.usable.into_iter().map(|r| Offer {
                source: r.source().to_owned(),
                reference: r.reference().to_owned(),
                kind: r.kind(),
                label: label(r.party()),
                not_after: r.not_after(),
            }));
        }
        Ok((offers, refused))
    }

    /// The acting identity for the chosen `(source, reference)` on `service`, asked of the
    /// source again now: the outer error is the source's (fail closed), the inner one the
    /// decision's refusal (revoked, expired, out of scope…).
    pub async fn act(
        &self,
        rule: &ServiceRule,
        delegate: &Principal,
        source: &str,
        reference: &str,
        service: &str,
        now: u64,
    ) -> Result<Result<represent::Acting, represent::Refusal>, SourceError> {
        // A choice made for a source this service no longer asks is not honoured here.
        let Some(src) = rule.sources.iter().find(|s| s.id() == source) else {
            return Ok(Err(represent::Refusal::OutOfScope));
        };
        let reps = src.lookup(delegate, now).await?;
        Ok(represent::act(delegate, reference, service, now, &reps))
    }
}

/// How the chooser names a represented party.
fn label(p: &represent::Party) -> String {
    match p {
        represent::Party::Person {
            given_name,
            family_name,
            ..
        } => match (given_name, family_name) {
            (Some(g), Some(f)) => format!("{g} {f}"),
            (Some(n), None) | (None, Some(n)) => n.clone(),
            (None, None) => p.sub(),
        },
        represent::Party::Company { name, .. } => name.clone().unwrap_or_else(|| p.sub()),
    }
}

/// A source id: what headers, claims and the session carry (`[a-z0-9_-]`, 1 to 64).
fn id_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'_')
}

/// Validates `[represent]` against the route services (`services`); `at_start` says the
/// signed files are read now (always: a missing or invalid file is a configuration error).
pub(crate) fn validate(
    raw: &RawRepresent,
    services: &[String],
    resolve: &dyn Fn(&Path) -> PathBuf,
    now: u64,
    bad: &mut dyn FnMut(&str, String),
) -> Represent {
    let mut sources: BTreeMap<String, Arc<dyn RepresentationSource>> = BTreeMap::new();
    // A SPID source covers exactly the services that list it.
    let mut spid_services: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for s in &raw.service {
        for id in &s.sources {
            spid_services
                .entry(id.as_str())
                .or_default()
                .insert(s.service.clone());
        }
    }
    for (i, s) in raw.source.iter().enumerate() {
        let key = format!("represent.source[{i}]");
        if !id_ok(&s.id) {
            bad(
                &format!("{key}.id"),
                format!("{:?}: 1 to 64 of a-z, 0-9, - and _", s.id),
            );
            continue;
        }
        if sources.contains_key(&s.id) {
            bad(&format!("{key}.id"), format!("{:?} repeated", s.id));
            continue;
        }
        let mut not_for = |names: &[(&str, bool)]| {
            for (n, set) in names {
                if *set {
                    bad(
                        &format!("{key}.{n}"),
                        format!("not used by kind {:?}", s.kind),
                    );
                }
            }
        };
        let built: Option<Arc<dyn RepresentationSource>> = match s.kind.as_str() {
            "signed_file" => {
                not_for(&[
                    ("url", s.url.is_some()),
                    ("bearer_token_file", s.bearer_token_file.is_some()),
                    ("client_cert_file", s.client_cert_file.is_some()),
                    ("table", s.table.is_some()),
                    ("pool_size", s.pool_size.is_some()),
                    ("ttl_seconds", s.ttl_seconds.is_some()),
                ]);
                file::validate(s, &key, resolve, now, bad).map(|f| Arc::new(f) as _)
            }
            "http" => {
                not_for(&[
                    ("file", s.file.is_some()),
                    ("issuer", s.issuer.is_some()),
                    ("jwks_file", s.jwks_file.is_some()),
                    ("table", s.table.is_some()),
                    ("pool_size", s.pool_size.is_some()),
                    ("ttl_seconds", s.ttl_seconds.is_some()),
                ]);
                http::validate(s, &key, resolve, bad).map(|h| Arc::new(h) as _)
            }
            "postgres" => {
                not_for(&[
                    ("file", s.file.is_some()),
                    ("issuer", s.issuer.is_some()),
                    ("jwks_file", s.jwks_file.is_some()),
                    ("bearer_token_file", s.bearer_token_file.is_some()),
                    ("client_cert_file", s.client_cert_file.is_some()),
                    ("ttl_seconds", s.ttl_seconds.is_some()),
                ]);
                postgres::validate(s, &key, resolve, bad).map(|p| Arc::new(p) as _)
            }
            "spid_legal_person" => {
                not_for(&[
                    ("file", s.file.is_some()),
                    ("url", s.url.is_some()),
                    ("table", s.table.is_some()),
                    ("pool_size", s.pool_size.is_some()),
                    ("bearer_token_file", s.bearer_token_file.is_some()),
                    ("cache_seconds", s.cache_seconds.is_some()),
                ]);
                let services = spid_services
                    .get(s.id.as_str())
                    .cloned()
                    .unwrap_or_default();
                Some(Arc::new(SpidSource::new(
                    &s.id,
                    services,
                    s.ttl_seconds.unwrap_or(DEFAULT_SPID_TTL),
                )) as _)
            }
            other => {
                bad(
                    &format!("{key}.kind"),
                    format!("{other:?}: expected signed_file, http, postgres or spid_legal_person"),
                );
                None
            }
        };
        if let Some(b) = built {
            sources.insert(s.id.clone(), b);
        }
    }
    let mut out = BTreeMap::new();
    for (i, s) in raw.service.iter().enumerate() {
        let key = format!("represent.service[{i}]");
        if !services.contains(&s.service) {
            bad(
                &format!("{key}.service"),
                format!("{:?} is no [[route]] service", s.service),
            );
        }
        if s.sources.is_empty() {
            bad(&format!("{key}.sources"), "empty".into());
        }
        let mut list = Vec::new();
        for id in &s.sources {
            match sources.get(id) {
                Some(src)
                    if !list
                        .iter()
                        .any(|x: &Arc<dyn RepresentationSource>| x.id() == id) =>
                {
                    list.push(src.clone());
                }
                Some(_) => bad(&format!("{key}.sources"), format!("{id:?} repeated")),
                None => bad(
                    &format!("{key}.sources"),
                    format!("{id:?} is no [[represent.source]] id"),
                ),
            }
        }
        let rule = ServiceRule {
            sources: list,
            required: s.required,
        };
        if out.insert(s.service.clone(), rule).is_some() {
            bad(
                &format!("{key}.service"),
                format!("{:?} listed twice", s.service),
            );
        }
    }
    Represent { services: out }
}

/// The audit record of a choice at `/represent` (kind `represent`): both persons — `sub` the
/// one the session now acts for on `service`, `act` the person logged in — with the
/// representation used (none when the choice is "myself").
pub fn audit_record(
    session: &crate::leaf::session::Session,
    previous_sid: &str,
    service: &str,
    acting: Option<&represent::Acting>,
    client: Option<&str>,
    now: std::time::SystemTime,
) -> Vec<u8> {
    let p = &session.principal;
    let rep = acting.map(|a| {
        let r = a.representation();
        serde_json::json!({
            "type": r.kind().as_str(),
            "source": r.source(),
            "ref": r.reference(),
            "not_before": r.not_before(),
            "not_after": r.not_after(),
        })
    });
    let record = serde_json::json!({
        "kind": "represent",
        "outcome": "chosen",
        "sid": session.sid,
        // A choice starts a new session id (the previous one is revoked): the link between
        // this record and the login's.
        "previous_sid": previous_sid,
        "at": saml::format_instant(now).unwrap_or_default(),
        "at_unix": crate::leaf::clock::unix(now),
        "client": client,
        "service": service,
        "sub": acting.map_or(p.sub.as_str(), |a| a.principal().sub.as_str()),
        "act": {
            "sub": p.sub,
            "method": p.auth.method.as_str(),
            "idp": p.auth.idp,
            "loa": p.auth.loa.as_str(),
        },
        "representation": rep,
    });
    serde_json::to_vec(&record).unwrap_or_else(|_| b"{\"kind\":\"represent\"}".to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn problems(toml_text: &str) -> Vec<String> {
        let raw: RawRepresent = toml::from_str(toml_text).unwrap();
        let dir = std::env::temp_dir();
        let mut out = Vec::new();
        let _ = validate(
            &raw,
            &["tributi".to_owned(), "suap".to_owned()],
            &|p| dir.join(p),
            0,
            &mut |k, m| out.push(format!("{k}: {m}")),
        );
        out
    }

    #[test]
    fn configuration_errors_name_their_key() {
        let cases = [
            (
                "[[source]]\nid = \"Bad Id\"\nkind = \"spid_legal_person\"\n",
                "represent.source[0].id",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"ldap\"\n",
                "represent.source[0].kind",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"http\"\nurl = \"http://portal.example.it/r\"\nbearer_token_file = \"t\"\n",
                "represent.source[0].url",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"http\"\nurl = \"https://portal.example.it/r\"\n",
                "represent.source[0]: an http source needs bearer_token_file or client_cert_file",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"postgres\"\nurl = \"host=/tmp\"\ntable = \"x; drop\"\n",
                "represent.source[0].table",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"postgres\"\nurl = \"host=/tmp\"\ntable = \"t\"\npool_size = 0\n",
                "represent.source[0].pool_size",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"http\"\nurl = \"https://portal.example.it/r\"\nbearer_token_file = \"t\"\npool_size = 2\n",
                "represent.source[0].pool_size: not used by kind",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"spid_legal_person\"\nurl = \"https://a\"\n",
                "represent.source[0].url: not used by kind",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"spid_legal_person\"\n[[service]]\nservice = \"nope\"\nsources = [\"x\"]\n",
                "represent.service[0].service",
            ),
            (
                "[[service]]\nservice = \"tributi\"\nsources = [\"missing\"]\n",
                "represent.service[0].sources: \"missing\" is no",
            ),
            (
                "[[source]]\nid = \"x\"\nkind = \"spid_legal_person\"\n[[source]]\nid = \"x\"\nkind = \"spid_legal_person\"\n",
                "represent.source[1].id: \"x\" repeated",
            ),
        ];
        for (text, expected) in cases {
            let p = problems(text);
            assert!(p.iter().any(|m| m.starts_with(expected)), "{text}\n{p:?}");
        }
        assert!(
            problems(
                "[[source]]\nid = \"spid\"\nkind = \"spid_legal_person\"\n\
             [[service]]\nservice = \"suap\"\nsources = [\"spid\"]\nrequired = true\n"
            )
            .is_empty()
        );
    }
}
