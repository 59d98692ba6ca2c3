//! Trust chain resolution as a sans-I/O state machine.
//!
//! The caller owns the network: [`Resolver::start`] says which document to fetch first, and
//! each [`Resolver::feed`] of the fetched body (or of the failure) answers with the next
//! fetch or with the verified [`TrustChain`]. Time is an argument; nothing here blocks.
//!
//! Discovery walks up `authority_hints` depth-first (configured Trust Anchors first), with
//! a loop check, a bound on intermediates and a bound on fetches. A path that fails (a
//! document that does not parse, verify or fit) is abandoned and the next hint is tried;
//! when none is left, the last failure is the answer.
//!
//! Once a path reaches a configured Trust Anchor, the whole chain is verified again from
//! the top: the anchor's Entity Configuration and every statement it issued with the
//! configured keys only; every other statement with the keys its issuer's superior states
//! for it; every Entity Configuration with the keys its superior states for it. The keys a
//! document carries about its own issuer are never what makes it trusted.

use std::collections::VecDeque;

use jose::{Jwks, Limits};
use serde_json::{Map, Value};

use crate::statement::{Constraints, Statement, TrustMarkEntry, is_url};
use crate::{Error, policy};

/// A configured Trust Anchor: its Entity Identifier and its Federation Entity Keys, both
/// from configuration.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    /// Entity Identifier.
    pub entity_id: String,
    /// Keys that must sign its Entity Configuration and its Subordinate Statements.
    pub jwks: Jwks,
}

/// Resolution settings.
#[derive(Debug, Clone)]
pub struct ResolverConfig {
    /// The Trust Anchors a chain may end at.
    pub anchors: Vec<TrustAnchor>,
    /// Most intermediates between the subject and the anchor. Default 2 (the SPID and CIE
    /// federations have at most one, an aggregator).
    pub max_intermediates: usize,
    /// Most documents fetched for one resolution, failed paths included. Default 16.
    pub max_fetches: usize,
    /// Allowed clock skew in seconds for `iat` and `exp`. Default 60.
    pub skew: u64,
    /// JWS size and depth limits.
    pub limits: Limits,
    /// Accept `http` Entity Identifiers (loopback test federations only). Default false.
    pub allow_http: bool,
}

impl ResolverConfig {
    /// Defaults for the given anchors.
    #[must_use]
    pub fn new(anchors: Vec<TrustAnchor>) -> Self {
        ResolverConfig {
            anchors,
            max_intermediates: 2,
            max_fetches: 16,
            skew: 60,
            limits: Limits::default(),
            allow_http: false,
        }
    }

    fn anchor(&self, id: &str) -> Option<&TrustAnchor> {
        self.anchors.iter().find(|a| a.entity_id == id)
    }
}

/// A document the caller must fetch (HTTP GET of `url`) and feed back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetch {
    /// An Entity Configuration, at `url` = Entity Identifier + `/.well-known/openid-federation`.
    EntityConfiguration {
        /// The entity.
        entity_id: String,
        /// Where to get it.
        url: String,
    },
    /// A Subordinate Statement from the issuer's `federation_fetch_endpoint`.
    SubordinateStatement {
        /// The superior that issues it.
        issuer: String,
        /// The entity it is about.
        subject: String,
        /// Where to get it (fetch endpoint with `sub`).
        url: String,
    },
}

impl Fetch {
    /// The URL to GET.
    #[must_use]
    pub fn url(&self) -> &str {
        match self {
            Fetch::EntityConfiguration { url, .. } | Fetch::SubordinateStatement { url, .. } => url,
        }
    }
}

/// What the resolver wants next.
#[derive(Debug)]
pub enum Step {
    /// Fetch this and feed the answer.
    Fetch(Fetch),
    /// Resolution finished with a verified chain.
    Done(Box<TrustChain>),
}

/// A verified trust chain and what it establishes about its subject.
#[derive(Debug, Clone)]
pub struct TrustChain {
    subject: String,
    anchor: String,
    statements: Vec<String>,
    exp: u64,
    metadata: Map<String, Value>,
    /// Federation Entity Keys of every entity on the chain, as the chain vouches for them
    /// (the anchor's from configuration), subject first.
    keys: Vec<(String, Jwks)>,
    trust_marks: Vec<TrustMarkEntry>,
    trust_mark_issuers: Option<std::collections::BTreeMap<String, Vec<String>>>,
    trust_mark_owner_types: Vec<String>,
    pub(crate) allow_http: bool,
}

impl TrustChain {
    /// The subject's Entity Identifier.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }
    /// The Trust Anchor the chain ends at.
    #[must_use]
    pub fn anchor(&self) -> &str {
        &self.anchor
    }
    /// The chain as the specification orders it: the subject's Entity Configuration, the
    /// Subordinate Statements upwards, the anchor's Entity Configuration.
    #[must_use]
    pub fn statements(&self) -> &[String] {
        &self.statements
    }
    /// The chain's expiry: the smallest `exp` of every document used.
    #[must_use]
    pub fn exp(&self) -> u64 {
        self.exp
    }
    /// Whether a cached chain may still be used at `now`: before its expiry, with `skew`.
    #[must_use]
    pub fn is_valid_at(&self, now: u64, skew: u64) -> bool {
        now < self.exp.saturating_add(skew)
    }
    /// The subject's resolved metadata (superior's `metadata`, then `allowed_entity_types`,
    /// then the merged policy applied).
    #[must_use]
    pub fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }
    /// The resolved metadata of one entity type.
    #[must_use]
    pub fn metadata_of(&self, entity_type: &str) -> Option<&Map<String, Value>> {
        self.metadata.get(entity_type)?.as_object()
    }
    /// The Federation Entity Keys the chain vouches for, for an entity on the chain.
    #[must_use]
    pub fn keys_of(&self, entity_id: &str) -> Option<&Jwks> {
        self.keys
            .iter()
            .find(|(id, _)| id == entity_id)
            .map(|(_, k)| k)
    }
    /// The subject's trust marks, as its (verified) Entity Configuration lists them; each
    /// must still pass [`crate::trust_mark::verify`].
    #[must_use]
    pub fn trust_marks(&self) -> &[TrustMarkEntry] {
        &self.trust_marks
    }
    /// The anchor's `trust_mark_issuers` (type → accredited issuers).
    #[must_use]
    pub fn trust_mark_issuers(&self) -> Option<&std::collections::BTreeMap<String, Vec<String>>> {
        self.trust_mark_issuers.as_ref()
    }
    /// Trust mark types the anchor lists in `trust_mark_owners`.
    #[must_use]
    pub fn trust_mark_owner_types(&self) -> &[String] {
        &self.trust_mark_owner_types
    }
}

/// One entity on the current path, subject first.
struct Node {
    id: String,
    ec: Statement,
    /// Hints not tried yet.
    hints: VecDeque<String>,
    /// The statement this entity issued about the entity below it (none for the subject).
    down: Option<Statement>,
}

enum Pending {
    /// The Entity Configuration of this entity.
    Config(String),
    /// The superior's statement about the top of the path; the superior's configuration.
    Subordinate(Box<Statement>),
    /// Nothing: finished.
    Nothing,
}

/// The resolution of one subject's trust chain.
pub struct Resolver<'c> {
    cfg: &'c ResolverConfig,
    subject: String,
    now: u64,
    path: Vec<Node>,
    pending: Pending,
    fetches: usize,
    last_error: Option<Error>,
}

/// The caller could not fetch the document (network error, non-200, timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchFailed;

/// Where an entity's configuration lives.
#[must_use]
pub fn configuration_url(entity_id: &str) -> String {
    format!(
        "{}/.well-known/openid-federation",
        entity_id.trim_end_matches('/')
    )
}

fn fetch_url(endpoint: &str, sub: &str) -> String {
    let sep = if endpoint.contains('?') { '&' } else { '?' };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("sub", sub)
        .finish();
    format!("{endpoint}{sep}{q}")
}

impl<'c> Resolver<'c> {
    /// Starts resolving `subject` at time `now`; the first step is its Entity Configuration.
    pub fn start(
        cfg: &'c ResolverConfig,
        subject: &str,
        now: u64,
    ) -> Result<(Resolver<'c>, Fetch), Error> {
        if !crate::statement::is_entity_id(subject, cfg.allow_http) {
            return Err(Error::EntityId { what: "subject" });
        }
        let mut r = Resolver {
            cfg,
            subject: subject.to_owned(),
            now,
            path: Vec::new(),
            pending: Pending::Nothing,
            fetches: 0,
            last_error: None,
        };
        let fetch = r.ask_config(subject)?;
        Ok((r, fetch))
    }

    /// Number of documents asked for so far.
    #[must_use]
    pub fn fetches(&self) -> usize {
        self.fetches
    }

    fn ask_config(&mut self, id: &str) -> Result<Fetch, Error> {
        self.count()?;
        self.pending = Pending::Config(id.to_owned());
        Ok(Fetch::EntityConfiguration {
            entity_id: id.to_owned(),
            url: configuration_url(id),
        })
    }

    fn count(&mut self) -> Result<(), Error> {
        if self.fetches >= self.cfg.max_fetches {
            self.pending = Pending::Nothing;
            return Err(Error::TooManyFetches {
                max: self.cfg.max_fetches,
            });
        }
        self.fetches += 1;
        Ok(())
    }

    /// Feeds the body of the document last asked for, or the failure to fetch it. An error
    /// ends the resolution; so does [`Step::Done`].
    pub fn feed(&mut self, body: Result<&str, FetchFailed>) -> Result<Step, Error> {
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Nothing => Err(Error::State),
            Pending::Config(id) if self.path.is_empty() => {
                let body = body.map_err(|FetchFailed| Error::FetchFailed {
                    url: configuration_url(&id),
                })?;
                self.subject_config(body)
            }
            Pending::Config(id) => {
                let r = body
                    .map_err(|FetchFailed| Error::FetchFailed {
                        url: configuration_url(&id),
                    })
                    .and_then(|b| self.superior_config(&id, b));
                match r {
                    Ok(step) => Ok(step),
                    Err(e) => self.abandon(e),
                }
            }
            Pending::Subordinate(sup) => {
                let r = body
                    .map_err(|FetchFailed| Error::FetchFailed {
                        url: sup.fetch_endpoint().unwrap_or_default().to_owned(),
                    })
                    .and_then(|b| self.subordinate(*sup, b));
                match r {
                    Ok(Some(chain)) => Ok(Step::Done(Box::new(chain))),
                    Ok(None) => self.next(),
                    Err(e) => self.abandon(e),
                }
            }
        }
    }

    fn decode(&self, body: &str) -> Result<Statement, Error> {
        Statement::decode(body.trim(), &self.cfg.limits, self.cfg.allow_http)
    }

    fn check_config(&self, ec: &Statement, id: &str) -> Result<(), Error> {
        if ec.iss != id || ec.sub != id {
            return Err(Error::IssSubMismatch {
                expected: format!("iss = sub = {id}"),
            });
        }
        ec.check_time(self.now, self.cfg.skew)?;
        match self.cfg.anchor(id) {
            // The anchor's own keys are the configured ones, whatever its document says.
            Some(a) => {
                ec.verify(&a.jwks, "entity configuration")
                    .map_err(|e| Error::TrustAnchorKeys {
                        anchor: id.to_owned(),
                        cause: match e {
                            Error::Jose { cause, .. } => cause,
                            _ => jose::Error::Signature,
                        },
                    })
            }
            // Self-signed consistency; trust comes from the superior's statement later.
            None => ec.verify(&ec.jwks, "entity configuration"),
        }
    }

    fn hints_of(&self, ec: &Statement) -> VecDeque<String> {
        // Configured anchors first: the shortest chains are tried before deeper ones.
        let (mut first, rest): (VecDeque<_>, VecDeque<_>) = ec
            .authority_hints
            .iter()
            .cloned()
            .partition(|h| self.cfg.anchor(h).is_some());
        first.extend(rest);
        first
    }

    fn subject_config(&mut self, body: &str) -> Result<Step, Error> {
        let subject = self.subject.clone();
        let ec = self.decode(body)?;
        self.check_config(&ec, &subject)?;
        if self.cfg.anchor(&subject).is_some() {
            self.path.push(Node {
                id: subject,
                ec,
                hints: VecDeque::new(),
                down: None,
            });
            return self.finish().map(|c| Step::Done(Box::new(c)));
        }
        if ec.authority_hints.is_empty() {
            return Err(Error::NoAuthorityHints { entity: subject });
        }
        let hints = self.hints_of(&ec);
        self.path.push(Node {
            id: subject,
            ec,
            hints,
            down: None,
        });
        self.next()
    }

    fn superior_config(&mut self, id: &str, body: &str) -> Result<Step, Error> {
        let ec = self.decode(body)?;
        self.check_config(&ec, id)?;
        let endpoint = ec
            .fetch_endpoint()
            .filter(|e| is_url(e, self.cfg.allow_http, true))
            .ok_or_else(|| Error::NoFetchEndpoint {
                entity: id.to_owned(),
            })?
            .to_owned();
        let below = self.path.last().map(|n| n.id.clone()).ok_or(Error::State)?;
        self.count()?;
        self.pending = Pending::Subordinate(Box::new(ec));
        Ok(Step::Fetch(Fetch::SubordinateStatement {
            issuer: id.to_owned(),
            subject: below.clone(),
            url: fetch_url(&endpoint, &below),
        }))
    }

    /// The superior's statement about the top of the path. `Some(chain)` when the superior
    /// is an anchor and the chain verifies.
    fn subordinate(&mut self, sup: Statement, body: &str) -> Result<Option<TrustChain>, Error> {
        let st = self.decode(body)?;
        let below = self.path.last().ok_or(Error::State)?;
        if st.iss != sup.sub || st.sub != below.id || st.is_configuration() {
            return Err(Error::IssSubMismatch {
                expected: format!("iss = {}, sub = {}", sup.sub, below.id),
            });
        }
        // The issuer must be one the subject names as its superior.
        if !below.ec.authority_hints.contains(&st.iss) {
            return Err(Error::IssSubMismatch {
                expected: "iss among the subject's authority_hints".into(),
            });
        }
        st.check_time(self.now, self.cfg.skew)?;
        let anchor = self.cfg.anchor(&sup.sub);
        let keys = anchor.map_or(&sup.jwks, |a| &a.jwks);
        st.verify(keys, "subordinate statement")?;
        let is_anchor = anchor.is_some();
        let hints = if is_anchor {
            VecDeque::new()
        } else {
            self.hints_of(&sup)
        };
        let id = sup.sub.clone();
        if !is_anchor && sup.authority_hints.is_empty() {
            // An entity with no superior that we do not trust as an anchor: a dead end.
            self.last_error = Some(Error::NoTrustAnchor {
                subject: self.subject.clone(),
            });
        }
        self.path.push(Node {
            id,
            ec: sup,
            hints,
            down: Some(st),
        });
        if is_anchor {
            match self.finish() {
                Ok(chain) => return Ok(Some(chain)),
                Err(e) => {
                    self.path.pop();
                    return Err(e);
                }
            }
        }
        Ok(None)
    }

    fn abandon(&mut self, e: Error) -> Result<Step, Error> {
        if matches!(e, Error::TooManyFetches { .. }) {
            return Err(e);
        }
        self.last_error = Some(e);
        self.next()
    }

    /// The next hint to try, backtracking as needed.
    fn next(&mut self) -> Result<Step, Error> {
        loop {
            let depth = self.path.len();
            let Some(top) = self.path.last_mut() else {
                return Err(self.last_error.take().unwrap_or(Error::NoTrustAnchor {
                    subject: self.subject.clone(),
                }));
            };
            let Some(hint) = top.hints.pop_front() else {
                self.path.pop();
                if self.path.is_empty() {
                    return Err(self.last_error.take().unwrap_or(Error::NoTrustAnchor {
                        subject: self.subject.clone(),
                    }));
                }
                continue;
            };
            if self.path.iter().any(|n| n.id == hint) {
                continue; // a loop in the federation graph
            }
            // `depth - 1` intermediates are on the path; a non-anchor hint adds one more.
            if self.cfg.anchor(&hint).is_none() && depth > self.cfg.max_intermediates {
                self.last_error = Some(Error::PathTooLong);
                continue;
            }
            return self.ask_config(&hint).map(Step::Fetch);
        }
    }

    /// Verifies the complete path top-down, applies constraints and policies.
    fn finish(&mut self) -> Result<TrustChain, Error> {
        let path = &self.path;
        let top = path.len() - 1;
        let anchor = self.cfg.anchor(&path[top].id).ok_or(Error::State)?;
        // keys[j]: the keys of path[j] as vouched by the chain.
        let mut keys: Vec<Jwks> = vec![Jwks::default(); path.len()];
        keys[top] = anchor.jwks.clone();
        for j in (0..top).rev() {
            let issued = path[j + 1].down.as_ref().ok_or(Error::State)?;
            issued.verify(&keys[j + 1], "subordinate statement")?;
            keys[j] = issued.jwks.clone();
            path[j].ec.verify(&keys[j], "entity configuration")?;
        }
        let mut exp = path.iter().map(|n| n.ec.exp).min().unwrap_or(0);
        for n in path {
            if let Some(d) = &n.down {
                exp = exp.min(d.exp);
            }
        }
        // Constraints: each issuer's, counting the intermediates between it and the subject.
        let mut allowed_types: Option<Vec<String>> = None;
        for (j, n) in path.iter().enumerate().skip(1) {
            let mut cs: Vec<&Constraints> = n
                .down
                .iter()
                .filter_map(|d| d.constraints.as_ref())
                .collect();
            if j == top {
                if let Some(c) = &n.ec.constraints {
                    cs.push(c);
                }
            }
            for c in cs {
                if c.max_path_length.is_some_and(|m| (j as u64 - 1) > m) {
                    return Err(Error::Constraint {
                        reason: "max_path_length",
                    });
                }
                for below in &path[..j] {
                    if !naming_ok(c, &below.id) {
                        return Err(Error::Constraint {
                            reason: "naming_constraints",
                        });
                    }
                }
                if let Some(t) = &c.allowed_entity_types {
                    allowed_types = Some(match allowed_types {
                        None => t.clone(),
                        Some(prev) => prev.into_iter().filter(|x| t.contains(x)).collect(),
                    });
                }
            }
        }
        // Metadata: the subject's, the immediate superior's `metadata` over it, the entity
        // type constraint, then the merged policies from the anchor down.
        let subject = &path[0];
        let mut metadata = subject.ec.metadata.clone().unwrap_or_default();
        if let Some(over) = path
            .get(1)
            .and_then(|n| n.down.as_ref())
            .and_then(|d| d.metadata.as_ref())
        {
            for (etype, params) in over {
                if let (Some(Value::Object(md)), Some(params)) =
                    (metadata.get_mut(etype), params.as_object())
                {
                    for (k, v) in params {
                        md.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        if let Some(allowed) = &allowed_types {
            metadata.retain(|etype, _| etype == "federation_entity" || allowed.contains(etype));
        }
        let crit: Vec<String> = path
            .iter()
            .filter_map(|n| n.down.as_ref())
            .flat_map(|d| d.metadata_policy_crit.iter().cloned())
            .collect();
        let mut merged: Option<policy::Policy> = None;
        for n in path.iter().rev() {
            let Some(p) = n.down.as_ref().and_then(|d| d.metadata_policy.as_ref()) else {
                continue;
            };
            let p = policy::parse(p, &crit)?;
            match &mut merged {
                None => merged = Some(p),
                Some(acc) => policy::merge(acc, p)?,
            }
        }
        if let Some(p) = &merged {
            policy::apply(p, &mut metadata)?;
        }
        let anchor_ec = &path[top].ec;
        let mut statements = vec![subject.ec.as_str().to_owned()];
        statements.extend(
            path.iter()
                .filter_map(|n| n.down.as_ref())
                .map(|d| d.as_str().to_owned()),
        );
        if top > 0 {
            statements.push(anchor_ec.as_str().to_owned());
        }
        Ok(TrustChain {
            subject: subject.id.clone(),
            anchor: anchor.entity_id.clone(),
            statements,
            exp,
            metadata,
            keys: path.iter().map(|n| n.id.clone()).zip(keys).collect(),
            trust_marks: subject.ec.trust_marks.clone(),
            trust_mark_issuers: anchor_ec.trust_mark_issuers.clone(),
            trust_mark_owner_types: anchor_ec.trust_mark_owner_types.clone(),
            allow_http: self.cfg.allow_http,
        })
    }
}

/// RFC 5280 §4.2.1.10 host constraints on an Entity Identifier's host.
fn naming_ok(c: &Constraints, entity_id: &str) -> bool {
    let host = entity_id
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(entity_id)
        .split(['/', ':'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let matches = |name: &String| {
        let name = name.to_ascii_lowercase();
        if name.starts_with('.') {
            host.ends_with(&name)
        } else {
            host == name
        }
    };
    if c.excluded.iter().any(matches) {
        return false;
    }
    c.permitted.as_ref().is_none_or(|p| p.iter().any(matches))
}
