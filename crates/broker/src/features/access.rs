//! Who may pass and what downstream services are told: the token keys, the protected routes
//! with their policies, which proxies are believed about the original URL, where a login may
//! return to, the identity headers, and the attribute mapping of each federation.
//!
//! The raw tables (`[token]`, `[[route]]`, `[forward_auth]`, `[mapping.*]`) are read by
//! [`crate::config`] and validated here into [`Access`]; keys and defaults are documented in
//! docs/OPERATIONS.md.
//!
//! May import: the leaf.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use hyper::header::HeaderName;
use identity::{KeySet, KeyState, Loa, Mapping, Method, Policy, Principal, Profile, SigningKey};
use ring::rand::SystemRandom;
use serde::Deserialize;

use crate::leaf::problem::Problem;

// === Raw form ===

/// `[token]`: the downstream JWS.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    issuer: Option<String>,
    audience: Option<String>,
    #[serde(default = "default_token_ttl")]
    ttl_seconds: u64,
    #[serde(default)]
    key: Vec<RawTokenKey>,
}

impl Default for RawToken {
    fn default() -> Self {
        RawToken {
            issuer: None,
            audience: None,
            ttl_seconds: default_token_ttl(),
            key: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenKey {
    kid: String,
    file: PathBuf,
    /// The date (YYYY-MM-DD, UTC) by which this key is to be rotated out: a PKCS#8 key has
    /// no validity period of its own, so the operator's rotation plan is its expiry.
    not_after: Option<String>,
    #[serde(default = "default_key_state")]
    state: String,
}

/// `[[route]]`: one protected host and path prefix.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRoute {
    host: Option<String>,
    #[serde(default = "default_prefix")]
    path_prefix: String,
    min_loa: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    #[serde(default)]
    profiles: Vec<String>,
    audience: Option<String>,
    upstream: Option<String>,
    service: Option<String>,
    /// `"normalized"` (default) or `"exact"`.
    #[serde(rename = "match")]
    matching: Option<String>,
    /// Age limits from the login's `dateOfBirth` (SPID for minors, issue 24).
    min_age: Option<u32>,
    max_age: Option<u32>,
    /// The PID claims a wallet login for this route asks for (default `wallet.claims`).
    wallet_claims: Option<Vec<String>>,
}

/// The indexes of the routes that set `wallet_claims`.
pub(crate) fn routes_with_wallet_claims(routes: &[RawRoute]) -> Vec<usize> {
    routes
        .iter()
        .enumerate()
        .filter(|(_, r)| r.wallet_claims.is_some())
        .map(|(i, _)| i)
        .collect()
}

/// The `service` names the routes declare (what `[[switchoff.exception]] services` name).
pub(crate) fn route_services(routes: &[RawRoute]) -> Vec<String> {
    routes.iter().filter_map(|r| r.service.clone()).collect()
}

/// `[metrics]`: who may read `/metrics`, and where.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    #[serde(default = "default_metrics_allow")]
    allow: Vec<String>,
    #[serde(default)]
    public: bool,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            allow: default_metrics_allow(),
            public: false,
        }
    }
}

/// Loopback and the private ranges where Prometheus usually runs (a Kubernetes pod network).
fn default_metrics_allow() -> Vec<String> {
    [
        "127.0.0.0/8",
        "::1",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]
    .map(String::from)
    .to_vec()
}

/// `[proxy]`: timeouts toward upstreams in reverse-proxy mode.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProxy {
    #[serde(default = "default_connect_timeout")]
    connect_timeout_seconds: u64,
    #[serde(default = "default_response_timeout")]
    response_timeout_seconds: u64,
    #[serde(default = "default_tunnel_check")]
    tunnel_check_seconds: u64,
}

fn default_tunnel_check() -> u64 {
    5
}

impl Default for RawProxy {
    fn default() -> Self {
        RawProxy {
            connect_timeout_seconds: default_connect_timeout(),
            response_timeout_seconds: default_response_timeout(),
            tunnel_check_seconds: default_tunnel_check(),
        }
    }
}

fn default_connect_timeout() -> u64 {
    5
}
fn default_response_timeout() -> u64 {
    60
}

/// `[forward_auth]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawForwardAuth {
    #[serde(default = "default_trusted_proxies")]
    trusted_proxies: Vec<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    headers: Option<BTreeMap<String, String>>,
    #[serde(default = "default_unknown_host")]
    unknown_host: String,
}

impl Default for RawForwardAuth {
    fn default() -> Self {
        RawForwardAuth {
            trusted_proxies: default_trusted_proxies(),
            allowed_hosts: Vec::new(),
            headers: None,
            unknown_host: default_unknown_host(),
        }
    }
}

fn default_unknown_host() -> String {
    "deny".into()
}

/// `[mapping.spid]`, `[mapping.cie]`, `[mapping.eidas]`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMappings {
    spid: Option<Mapping>,
    cie: Option<Mapping>,
    eidas: Option<Mapping>,
}

fn default_token_ttl() -> u64 {
    300
}
fn default_key_state() -> String {
    "active".into()
}
fn default_prefix() -> String {
    "/".into()
}
fn default_trusted_proxies() -> Vec<String> {
    vec!["127.0.0.1".into(), "::1".into()]
}

// === Validated form ===

/// A value a header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// `sub`.
    Sub,
    /// Normalized LoA (`low`, `substantial`, `high`).
    Loa,
    /// `spid`, `cie`, `eidas`, `cns`, `legacy`.
    Method,
    /// `citizen`, `professional`, `business`, `intermediary`.
    Profile,
    /// Source IdP entity id.
    Idp,
    /// Source level, verbatim.
    Level,
    /// Given name.
    GivenName,
    /// Family name.
    FamilyName,
    /// E-mail.
    Email,
    /// Mobile phone.
    PhoneNumber,
    /// Date of birth.
    Birthdate,
    /// Broker session id.
    Sid,
    /// `Bearer <jwt>` for the route's audience.
    Token,
}

impl Claim {
    const ALL: [(&'static str, Claim); 13] = [
        ("sub", Claim::Sub),
        ("loa", Claim::Loa),
        ("method", Claim::Method),
        ("profile", Claim::Profile),
        ("idp", Claim::Idp),
        ("level", Claim::Level),
        ("given_name", Claim::GivenName),
        ("family_name", Claim::FamilyName),
        ("email", Claim::Email),
        ("phone_number", Claim::PhoneNumber),
        ("birthdate", Claim::Birthdate),
        ("sid", Claim::Sid),
        ("token", Claim::Token),
    ];

    fn parse(s: &str) -> Option<Claim> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, c)| *c)
    }

    /// The value of this claim for `p` (`Token` is filled in by the caller).
    pub fn value(self, p: &Principal) -> Option<&str> {
        match self {
            Claim::Sub => Some(&p.sub),
            Claim::Loa => Some(p.auth.loa.as_str()),
            Claim::Method => Some(p.auth.method.as_str()),
            Claim::Profile => Some(p.profile.as_str()),
            Claim::Idp => Some(&p.auth.idp),
            Claim::Level => Some(&p.auth.level),
            Claim::GivenName => p.given_name.as_deref(),
            Claim::FamilyName => p.family_name.as_deref(),
            Claim::Email => p.email.as_deref(),
            Claim::PhoneNumber => p.phone_number.as_deref(),
            Claim::Birthdate => p.birthdate.as_deref(),
            Claim::Sid => Some(&p.auth.sid),
            Claim::Token => None,
        }
    }
}

/// The default header mapping (`[forward_auth.headers]` absent).
const DEFAULT_HEADERS: [(&str, &str); 8] = [
    ("X-Varco-Sub", "sub"),
    ("X-Varco-Loa", "loa"),
    ("X-Varco-Method", "method"),
    ("X-Varco-Profile", "profile"),
    ("X-Varco-Idp", "idp"),
    ("X-Varco-Given-Name", "given_name"),
    ("X-Varco-Family-Name", "family_name"),
    ("Authorization", "token"),
];

/// How a route compares request paths with its prefix (`[[route]] match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matching {
    /// Every spelling a common upstream serves as the same resource matches: see
    /// [`fold_segment`] and [`segment_matches`].
    Normalized,
    /// Only the byte-exact, case-sensitive prefix (the operator's explicit opt-out).
    Exact,
}

/// One protected route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Lower-case `host[:port]`, or `None` for any host.
    pub host: Option<String>,
    /// Path prefix, matched on segment boundaries.
    pub path_prefix: String,
    /// What a session must satisfy.
    pub policy: Policy,
    /// The `aud` of tokens minted for this route.
    pub audience: String,
    /// `http://host:port` of the service Varco proxies this route to (reverse-proxy mode),
    /// or `None` when a proxy in front asks `/auth` instead.
    pub upstream: Option<String>,
    /// The service name (`[[route]] service`) switch-off exceptions refer to.
    pub service: Option<String>,
    /// How paths are compared with `path_prefix`.
    pub matching: Matching,
    /// The service's age limits (`min_age`, `max_age`), checked on the person the request
    /// is for: the one logged in, or the one represented.
    pub age: identity::AgeLimits,
    /// The PID claims a wallet login returning here asks for (`wallet_claims`); `None`:
    /// `wallet.claims`.
    pub wallet_claims: Option<Vec<String>>,
    /// `path_prefix`'s segments, folded (empty for `/`).
    folded: Vec<String>,
}

impl Route {
    /// Whether the path (given raw and as folded segments) lies under this route's prefix.
    fn matches_path(&self, path: &str, folded: &[String]) -> bool {
        match self.matching {
            Matching::Exact => {
                let p = self.path_prefix.as_str();
                p == "/"
                    || path == p
                    || (path.starts_with(p)
                        && (p.ends_with('/') || path.as_bytes().get(p.len()) == Some(&b'/')))
            }
            Matching::Normalized => {
                folded.len() >= self.folded.len()
                    && self
                        .folded
                        .iter()
                        .zip(folded)
                        .all(|(r, q)| segment_matches(q, r))
            }
        }
    }

    /// How strict the policy is, for choosing between equally specific routes: the level
    /// first, then whether methods and profiles are restricted at all, then how narrowly.
    fn strictness(&self) -> Strictness {
        let p = &self.policy;
        (
            p.min_loa,
            !p.methods.is_empty(),
            !p.profiles.is_empty(),
            std::cmp::Reverse(p.methods.len()),
            std::cmp::Reverse(p.profiles.len()),
        )
    }

    /// Host-specific beats any host, then more prefix segments beat fewer.
    fn specificity(&self) -> (bool, usize) {
        (self.host.is_some(), self.folded.len())
    }
}

/// A policy's strictness, ordered: see [`Route::strictness`].
type Strictness = (
    Loa,
    bool,
    bool,
    std::cmp::Reverse<usize>,
    std::cmp::Reverse<usize>,
);

/// One path segment as normalized routes compare it: what follows `;` dropped (matrix
/// parameters, `;jsessionid`), percent escapes decoded, cut at a NUL (C-string upstreams),
/// lower-cased (Unicode, as case-insensitive servers fold), trailing dots and spaces
/// removed (Windows and IIS drop them). A request segment and a prefix segment are folded
/// alike, so the fold can only widen what a route matches.
pub fn fold_segment(segment: &str) -> String {
    let segment = segment.split(';').next().unwrap_or_default();
    let b = segment.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut bytes = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                bytes.push(u8::try_from(h * 16 + l).unwrap_or(0));
                i += 3;
                continue;
            }
        }
        bytes.push(b[i]);
        i += 1;
    }
    if let Some(nul) = bytes.iter().position(|&c| c == 0) {
        bytes.truncate(nul);
    }
    // One allocation per segment on the common ASCII path (issue 20: `/auth` folds every
    // request's segments): ASCII lower-cases the same under Unicode rules, in place.
    let mut folded = if bytes.is_ascii() {
        bytes.make_ascii_lowercase();
        String::from_utf8(bytes).unwrap_or_default()
    } else {
        String::from_utf8_lossy(&bytes).to_lowercase()
    };
    let kept = folded.trim_end_matches(['.', ' ']).len();
    folded.truncate(kept);
    folded
}

/// Whether a folded request segment names the folded prefix segment `route`: equal, or
/// `route` followed by a format suffix (`riservato.json`), an NTFS stream name
/// (`riservato::$DATA`) or a space-separated tail. Over-matching protects more than asked,
/// never less.
pub fn segment_matches(request: &str, route: &str) -> bool {
    #[cfg(test)]
    tests::COMPARISONS.with(|c| c.set(c.get() + 1));
    request == route
        || (request.starts_with(route)
            && matches!(
                request.as_bytes().get(route.len()),
                Some(b'.' | b':' | b' ')
            ))
}

/// The path's segments folded for matching (an empty last segment, a trailing `/`,
/// dropped: `/riservato/` lies under `/riservato`).
fn folded_segments(path: &str) -> Vec<String> {
    folded_prefix(path, usize::MAX)
}

/// The first `depth` of [`folded_segments`]: a route prefix of `n` segments reads only the
/// first `n` (and whether there are that many), so a request path is folded no deeper than
/// the longest prefix (issue 20: none at all when every route is `/`). Equal to
/// `folded_segments(path)` cut at `depth`, the dropped trailing empty segment included:
/// when more than `depth` segments are read, the last one read is not the path's last.
fn folded_prefix(path: &str, depth: usize) -> Vec<String> {
    if depth == 0 {
        return Vec::new();
    }
    let mut segments: Vec<String> = path
        .strip_prefix('/')
        .unwrap_or(path)
        .split('/')
        .take(depth.saturating_add(1))
        .map(fold_segment)
        .collect();
    if segments.len() > depth {
        segments.truncate(depth);
    } else if segments.last().is_some_and(String::is_empty) {
        segments.pop();
    }
    segments
}

/// Whether `path` (no query) is in the one form Varco and every upstream read the same way,
/// so the route Varco checks is the resource the upstream serves. Refused: `\`, `;` (matrix
/// parameters some servers strip), empty segments (`//`), `.` and `..` segments, control
/// characters and non-ASCII bytes, invalid percent escapes, and percent-encoded characters
/// that need no encoding or change the path's structure (unreserved characters, `/`, `\`,
/// `%`, `;`) or are control characters (`%00`, `%0a`): `/%72iservato` and `/a/%2e%2e/riservato` would otherwise reach `/riservato`
/// past a route that does not match them.
pub fn canonical_path(path: &str) -> bool {
    let b = path.as_bytes();
    if b.first() != Some(&b'/') || b.len() > 8192 {
        return false;
    }
    let hex = |c: u8| (c as char).to_digit(16);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' | b';' => return false,
            c if c.is_ascii_control() || !c.is_ascii() => return false,
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return false;
                };
                let c = u8::try_from(h * 16 + l).unwrap_or(0);
                if c.is_ascii_alphanumeric() || c.is_ascii_control() || b"-._~/\\%;".contains(&c) {
                    return false;
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    // No `.`/`..` segment, and no empty one but the last (a trailing `/`); read without
    // collecting the segments (issue 20: `/auth` checks every request's path).
    let mut segments = path[1..].split('/').peekable();
    while let Some(seg) = segments.next() {
        if matches!(seg, "." | "..") || (seg.is_empty() && segments.peek().is_some()) {
            return false;
        }
    }
    true
}

/// The host as routes name it: lower-case, without a trailing dot, without the scheme's
/// default port (`:443`, `:0443` for https; `:80`, `:080` for http), the port without
/// leading zeros. `None` for anything else than one `name[:port]` or `[v6][:port]`: a list
/// (`portal.example, other`: some proxies join repeated headers), spaces, userinfo, an
/// empty label, a port that is not 1-65535. Routes and allowed hosts go through the same
/// function, so one spelling per host is compared.
pub fn normalize_host(host: &str, https: bool) -> Option<String> {
    normalize_host_borrowed(host, https).map(Cow::into_owned)
}

/// [`normalize_host`], borrowing `host` (or its name without the default port) when it is
/// already in normal form, as a proxy sends it: no allocation then (issue 20, every
/// forward-auth answer normalizes a host).
pub fn normalize_host_borrowed(host: &str, https: bool) -> Option<Cow<'_, str>> {
    if host.is_empty() || host.len() > 261 {
        return None;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        // An IPv6 literal: `[hex:...]` optionally followed by `:port`.
        let (literal, after) = rest.split_once(']')?;
        if literal.is_empty()
            || !literal
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return None;
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':')?),
        };
        (
            Cow::Owned(format!("[{}]", literal.to_ascii_lowercase())),
            port,
        )
    } else {
        // `split_once(':')` by position: a host is short, and the searcher's setup was most
        // of its cost (issue 20).
        let (name, port) = match host.bytes().position(|b| b == b':') {
            Some(i) => (host.get(..i)?, Some(host.get(i + 1..)?)),
            None => (host, None),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        // Every label non-empty, at most 63 bytes of letters, digits, `-` and `_`: one pass
        // over the bytes (every forward-auth answer normalizes a host, issue 20).
        let mut label = 0usize;
        let mut upper = false;
        for &b in name.as_bytes() {
            upper |= b.is_ascii_uppercase();
            if b == b'.' {
                if label == 0 {
                    return None;
                }
                label = 0;
            } else if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                label += 1;
                if label > 63 {
                    return None;
                }
            } else {
                return None;
            }
        }
        // An empty name, or an empty last label (`a..` once the trailing dot is gone).
        if label == 0 {
            return None;
        }
        if upper {
            (Cow::Owned(name.to_ascii_lowercase()), port)
        } else {
            (Cow::Borrowed(name), port)
        }
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u16 = p.parse().ok().filter(|&n| n != 0)?;
            Some(n)
        }
    };
    Some(match port {
        Some(443) if https => name,
        Some(80) if !https => name,
        Some(n) => Cow::Owned(format!("{name}:{n}")),
        None => name,
    })
}

/// An address or network whose forwarding headers are believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// An address (`10.0.0.1`) or a CIDR network (`10.0.0.0/8`).
    pub(crate) fn parse(s: &str) -> Option<Network> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a.parse::<IpAddr>().ok()?, p.parse::<u8>().ok()?),
            None => {
                let a = s.parse::<IpAddr>().ok()?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(Network { addr, prefix })
    }

    /// Whether `ip` lies in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), self.prefix),
            _ => return false,
        };
        if bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(bits));
        a & mask == b & mask
    }
}

/// No route covers the path.
pub const NO_ROUTE: &str = "broker_no_route";
/// The host is none of the allowed hosts while host-specific routes exist.
pub const UNKNOWN_HOST: &str = "broker_unknown_host";
/// The host header is not one valid `host[:port]`.
pub const BAD_HOST: &str = "broker_bad_host";

/// The validated access configuration.
pub struct Access {
    /// Token signing keys (and the JWKS).
    pub keys: std::sync::Arc<KeySet>,
    /// Whether the signing key was generated at start because none was configured.
    pub ephemeral_key: bool,
    /// `[[token.key]] not_after` of the active and published keys: (configuration key, kid,
    /// Unix seconds).
    pub key_expiry: Vec<(String, String, u64)>,
    /// `iss` of minted tokens.
    pub issuer: String,
    /// Token lifetime, seconds.
    pub token_ttl: u64,
    /// Routes, most specific first (host before any-host, then longer prefixes).
    pub routes: Vec<Route>,
    /// Whether a host outside `allowed_hosts` is refused (`forward_auth.unknown_host =
    /// "deny"`, the default, and at least one route names a host): with host-specific
    /// routes, a spelling of a host that misses them would otherwise get the any-host ones.
    pub deny_unknown_hosts: bool,
    /// Peers whose `X-Forwarded-*` / `X-Original-URI` headers are believed.
    pub trusted_proxies: Vec<Network>,
    /// Lower-case `host[:port]` a login may return to (the public host, route hosts, and
    /// `forward_auth.allowed_hosts`).
    pub allowed_hosts: Vec<String>,
    /// Identity headers on a forward-auth 200 (all but the token).
    pub headers: Vec<(HeaderName, Claim)>,
    /// The header carrying `Bearer <jwt>`, if any.
    pub token_header: Option<HeaderName>,
    /// Attribute mapping of SPID, CIE and eIDAS logins.
    pub mappings: [Mapping; 3],
    /// Peers allowed to read `/metrics`.
    pub metrics_allow: Vec<Network>,
    /// Whether the public listener serves `/metrics` too (`metrics.public`, default false:
    /// behind an ingress every peer is the ingress, so the peer check cannot tell a
    /// Prometheus from the Internet there).
    pub metrics_public: bool,
    /// Connect timeout toward upstreams.
    pub connect_timeout: Duration,
    /// How long an upstream may take to start answering.
    pub response_timeout: Duration,
    /// How often an open tunnel (WebSocket) rechecks its session: the bound on how long it
    /// outlives a logout, a revocation, the idle timeout or a switch-off cut-off.
    pub tunnel_check: Duration,
}

impl Access {
    /// The route protecting `host` + `path`, if any: the most specific route that matches
    /// (host-specific first, then the most prefix segments); between equally specific
    /// routes, which a normalized spelling can make match together (`/a` and `/a.json` for
    /// `/A.json`), the strictest policy. The work is linear in the path's length times the
    /// number of routes.
    ///
    /// `host` is normalized ([`normalize_host`]). Errors: `broker_unknown_host` (host-specific
    /// routes exist, `host` is not an allowed host, and unknown hosts are denied) and
    /// `broker_no_route`.
    pub fn route(&self, host: &str, path: &str) -> Result<&Route, &'static str> {
        if self.deny_unknown_hosts && !self.allowed_hosts.iter().any(|h| h == host) {
            return Err(UNKNOWN_HOST);
        }
        let depth = self
            .routes
            .iter()
            .map(|r| r.folded.len())
            .max()
            .unwrap_or(0);
        let folded = folded_prefix(path, depth);
        let mut best: Option<&Route> = None;
        for r in &self.routes {
            if r.host
                .as_deref()
                .is_some_and(|h| !h.eq_ignore_ascii_case(host))
                || !r.matches_path(path, &folded)
            {
                continue;
            }
            best = match best {
                Some(b)
                    if (b.specificity(), b.strictness()) >= (r.specificity(), r.strictness()) =>
                {
                    Some(b)
                }
                _ => Some(r),
            };
        }
        best.ok_or(NO_ROUTE)
    }

    /// The attribute mapping of `method`.
    pub fn mapping(&self, method: Method) -> &Mapping {
        match method {
            Method::Cie => &self.mappings[1],
            Method::Eidas => &self.mappings[2],
            _ => &self.mappings[0],
        }
    }

    /// Whether a peer is a trusted proxy.
    pub fn trusts(&self, peer: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(peer))
    }

    /// The client address of a request: the TCP `peer`, or, when the peer is a trusted
    /// proxy, the address it appended last to `X-Forwarded-For` (what an untrusted client
    /// put before it is ignored). The one reader of that header for the legacy throttle and
    /// the rate limits.
    pub fn client_ip(&self, peer: IpAddr, headers: &hyper::HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|s| s.trim().parse::<IpAddr>().ok())
            .unwrap_or(peer)
    }

    /// Checks a login's return address: a local path (`/...`, not `//`), or an absolute
    /// `http(s)` URL on an allowed host (https only, unless the public URL itself is http).
    /// Returns it unchanged when acceptable.
    pub fn return_to<'a>(&self, s: &'a str, allow_http: bool) -> Option<&'a str> {
        if s.len() > MAX_RETURN_TO
            || s.bytes()
                .any(|b| b.is_ascii_control() || !b.is_ascii() || b == b'\\' || b == b' ')
        {
            return None;
        }
        if s.starts_with('/') {
            return (!s.starts_with("//")).then_some(s);
        }
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://").filter(|_| allow_http))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let https = s.starts_with("https://");
        let authority = normalize_host(authority, https)?;
        self.allowed_hosts.contains(&authority).then_some(s)
    }
}

/// The throttle and rate-limit key of a client: its address, IPv6 cut to the /64 a host usually has.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// Longest accepted `return_to`, bytes. It is kept with every pending login and logout, so it
/// is part of their byte budget; 1 KiB holds any real portal path with its query.
pub const MAX_RETURN_TO: usize = 1024;

/// The raw access tables of the configuration file.
pub(crate) struct RawAccess {
    pub(crate) metrics: RawMetrics,
    pub(crate) proxy: RawProxy,
    pub(crate) token: RawToken,
    pub(crate) routes: Vec<RawRoute>,
    pub(crate) forward_auth: RawForwardAuth,
    pub(crate) mappings: RawMappings,
}

/// Validates the access tables. `public_base_url` has no trailing slash.
pub(crate) fn validate(
    raw: RawAccess,
    public_base_url: &str,
    default_level: u8,
    resolve: &dyn Fn(&Path) -> PathBuf,
    problems: &mut Vec<Problem>,
) -> Option<Access> {
    let RawAccess {
        metrics,
        proxy,
        token,
        routes,
        forward_auth,
        mappings,
    } = raw;
    let start = problems.len();
    let mut bad = |key: String, message: String| problems.push(Problem { key, message });
    let rng = SystemRandom::new();

    // Token keys.
    if token.ttl_seconds == 0 || token.ttl_seconds > 86_400 {
        bad(
            "token.ttl_seconds".into(),
            "must be between 1 and 86400".into(),
        );
    }
    let mut keys = KeySet::new();
    let mut ephemeral_key = false;
    let mut key_expiry = Vec::new();
    for (i, k) in token.key.iter().enumerate() {
        let at = format!("token.key[{i}]");
        if let Some(day) = &k.not_after {
            match saml::parse_instant(&format!("{day}T00:00:00Z")).filter(|_| day.len() == 10) {
                // Active and published keys must be rotated by then; a retiring key is
                // already on its way out.
                Some(t) if k.state != "retiring" => key_expiry.push((
                    format!("{at}.not_after"),
                    k.kid.clone(),
                    crate::leaf::clock::unix(t),
                )),
                Some(_) => {}
                None => bad(
                    format!("{at}.not_after"),
                    format!("{day:?}: expected a date, YYYY-MM-DD"),
                ),
            }
        }
        let state = match k.state.as_str() {
            "active" => KeyState::Active,
            "published" => KeyState::Published,
            // Kept in the JWKS until every token it signed has expired, counted from start.
            "retiring" => KeyState::Retiring {
                until: crate::leaf::clock::unix(crate::leaf::clock::system())
                    .saturating_add(token.ttl_seconds),
            },
            other => {
                bad(
                    format!("{at}.state"),
                    format!("{other:?}: expected active, published or retiring"),
                );
                continue;
            }
        };
        let path = resolve(&k.file);
        let der = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|pem| pem_private_key(&pem))
        {
            Ok(d) => d,
            Err(e) => {
                bad(format!("{at}.file"), format!("{}: {e}", path.display()));
                continue;
            }
        };
        let key = SigningKey::es256_from_pkcs8(&k.kid, &der, &rng)
            .or_else(|_| SigningKey::ed25519_from_pkcs8(&k.kid, &der));
        match key.and_then(|key| keys.insert(key, state)) {
            Ok(()) => {}
            Err(e) => bad(at, e.to_string()),
        }
    }
    if keys.active().is_none() {
        if token.key.is_empty() {
            // No key configured: one P-256 key for this process's life. Fine for one
            // replica (downstream services refetch the JWKS on an unknown kid); several
            // replicas must share configured keys.
            match ephemeral(&rng) {
                Some(k) => {
                    ephemeral_key = true;
                    if let Err(e) = keys.insert(k, KeyState::Active) {
                        bad("token.key".into(), e.to_string());
                    }
                }
                None => bad("token.key".into(), "cannot generate a key".into()),
            }
        } else {
            bad(
                "token.key".into(),
                "no key has state = \"active\" (exactly one must sign)".into(),
            );
        }
    }
    let issuer = token.issuer.unwrap_or_else(|| public_base_url.to_owned());
    let default_audience = token.audience.unwrap_or_else(|| public_base_url.to_owned());

    // Routes.
    let default_loa = match default_level {
        1 => Loa::Low,
        3 => Loa::High,
        _ => Loa::Substantial,
    };
    let mut out_routes = Vec::new();
    for (i, r) in routes.into_iter().enumerate() {
        let at = format!("route[{i}]");
        if !r.path_prefix.starts_with('/') {
            bad(format!("{at}.path_prefix"), "must start with /".into());
        } else if !canonical_path(&r.path_prefix) {
            bad(
                format!("{at}.path_prefix"),
                "must be a canonical path (no //, . or .. segments, ;, \\ or needless %-escapes)"
                    .into(),
            );
        }
        let matching = match r.matching.as_deref() {
            None | Some("normalized") => Matching::Normalized,
            Some("exact") => Matching::Exact,
            Some(other) => {
                bad(
                    format!("{at}.match"),
                    format!("{other:?}: expected normalized or exact"),
                );
                Matching::Normalized
            }
        };
        let min_loa = match r.min_loa.as_deref() {
            None => default_loa,
            Some("low") => Loa::Low,
            Some("substantial") => Loa::Substantial,
            Some("high") => Loa::High,
            Some(other) => {
                bad(
                    format!("{at}.min_loa"),
                    format!("{other:?}: expected low, substantial or high"),
                );
                continue;
            }
        };
        let mut methods = Vec::new();
        for m in &r.methods {
            match parse_method(m) {
                Some(m) => methods.push(m),
                None => bad(
                    format!("{at}.methods"),
                    format!("{m:?}: expected spid, cie, eidas, cns or legacy"),
                ),
            }
        }
        let mut profiles = Vec::new();
        for p in &r.profiles {
            match Profile::parse(p) {
                Some(p) => profiles.push(p),
                None => bad(
                    format!("{at}.profiles"),
                    format!("{p:?}: expected citizen, professional, business or intermediary"),
                ),
            }
        }
        let upstream = match r.upstream.as_deref().map(|u| u.trim_end_matches('/')) {
            None => None,
            Some(u) => {
                let authority = u.strip_prefix("http://").unwrap_or("");
                if authority.is_empty()
                    || authority.contains(['/', '?', '#', '@', ' '])
                    || hyper::Uri::try_from(u).is_err()
                {
                    bad(
                        format!("{at}.upstream"),
                        format!(
                            "{u:?}: expected http://host:port (TLS toward upstreams is not offered yet)"
                        ),
                    );
                }
                Some(u.to_owned())
            }
        };
        let https = public_base_url.starts_with("https://");
        let host = match r.host.as_deref().map(|h| (h, normalize_host(h, https))) {
            None => None,
            Some((_, Some(h))) => Some(h),
            Some((h, None)) => {
                bad(
                    format!("{at}.host"),
                    format!("{h:?}: must be one host or host:port"),
                );
                None
            }
        };
        // `/tax/` and `/tax` protect the same tree: `/tax` itself must not fall to a broader
        // route.
        let path_prefix = if r.path_prefix.len() > 1 {
            r.path_prefix.trim_end_matches('/').to_owned()
        } else {
            r.path_prefix.clone()
        };
        if let Some(s) = r.service.as_deref() {
            if !crate::leaf::problem::valid_name(s) {
                bad(
                    format!("{at}.service"),
                    format!("{s:?}: 1-64 of a-z, 0-9, _ and -"),
                );
            }
        }
        let age = identity::AgeLimits {
            min_age: r.min_age,
            max_age: r.max_age,
        };
        for (k, v) in [("min_age", r.min_age), ("max_age", r.max_age)] {
            if v.is_some_and(|a| a > 150) {
                bad(format!("{at}.{k}"), "at most 150".into());
            }
        }
        if let (Some(lo), Some(hi)) = (r.min_age, r.max_age) {
            if lo > hi {
                bad(format!("{at}.max_age"), format!("below min_age {lo}"));
            }
        }
        if let Some(claims) = &r.wallet_claims {
            crate::features::wallet::validate_claims(
                claims,
                &format!("{at}.wallet_claims"),
                &mut |k, m| bad(k.to_owned(), m),
            );
        }
        out_routes.push(Route {
            host,
            age,
            wallet_claims: r.wallet_claims,
            folded: folded_segments(&path_prefix),
            path_prefix,
            policy: Policy {
                min_loa,
                methods,
                profiles,
            },
            audience: r.audience.unwrap_or_else(|| default_audience.clone()),
            upstream,
            service: r.service,
            matching,
        });
    }
    if out_routes.is_empty() {
        out_routes.push(Route {
            host: None,
            path_prefix: "/".into(),
            policy: Policy::at_least(default_loa),
            audience: default_audience,
            upstream: None,
            service: None,
            matching: Matching::Normalized,
            age: identity::AgeLimits::default(),
            wallet_claims: None,
            folded: Vec::new(),
        });
    }
    // Most specific first: a host beats any host, then the longer prefix wins.
    out_routes.sort_by(|a, b| {
        b.host
            .is_some()
            .cmp(&a.host.is_some())
            .then(b.path_prefix.len().cmp(&a.path_prefix.len()))
    });

    // Forward auth.
    let mut trusted_proxies = Vec::new();
    for (i, p) in forward_auth.trusted_proxies.iter().enumerate() {
        match Network::parse(p) {
            Some(n) => trusted_proxies.push(n),
            None => bad(
                format!("forward_auth.trusted_proxies[{i}]"),
                format!("{p:?}: expected an IP address or CIDR"),
            ),
        }
    }
    let mut metrics_allow = Vec::new();
    for (i, p) in metrics.allow.iter().enumerate() {
        match Network::parse(p) {
            Some(n) => metrics_allow.push(n),
            None => bad(
                format!("metrics.allow[{i}]"),
                format!("{p:?}: expected an IP address or CIDR"),
            ),
        }
    }
    let mut allowed_hosts: Vec<String> = Vec::new();
    let https = public_base_url.starts_with("https://");
    let public_host = public_base_url
        .split_once("://")
        .and_then(|(_, rest)| normalize_host(rest.split('/').next().unwrap_or(""), https));
    allowed_hosts.extend(public_host);
    allowed_hosts.extend(out_routes.iter().filter_map(|r| r.host.clone()));
    for (i, h) in forward_auth.allowed_hosts.iter().enumerate() {
        match normalize_host(h, https) {
            Some(h) => allowed_hosts.push(h),
            None => bad(
                format!("forward_auth.allowed_hosts[{i}]"),
                format!("{h:?}: must be one host or host:port"),
            ),
        }
    }
    let deny_unknown_hosts = match forward_auth.unknown_host.as_str() {
        "deny" => out_routes.iter().any(|r| r.host.is_some()),
        "any_host_routes" => false,
        other => {
            bad(
                "forward_auth.unknown_host".into(),
                format!("{other:?}: expected deny or any_host_routes"),
            );
            true
        }
    };
    allowed_hosts.sort();
    allowed_hosts.dedup();

    let mut headers = Vec::new();
    let mut token_header = None;
    let configured: Vec<(String, String)> = match forward_auth.headers {
        Some(map) => map.into_iter().collect(),
        None => DEFAULT_HEADERS
            .iter()
            .map(|(h, c)| ((*h).to_owned(), (*c).to_owned()))
            .collect(),
    };
    for (name, claim) in configured {
        let at = format!("forward_auth.headers.{name}");
        match (
            HeaderName::from_bytes(name.as_bytes()),
            Claim::parse(&claim),
        ) {
            (Ok(h), Some(Claim::Token)) => token_header = Some(h),
            (Ok(h), Some(c)) => headers.push((h, c)),
            (Err(_), _) => bad(at, "not a valid header name".into()),
            (_, None) => bad(
                at,
                format!(
                    "{claim:?}: expected one of {}",
                    Claim::ALL.map(|(n, _)| n).join(", ")
                ),
            ),
        }
    }

    // Attribute mapping: configured entries extend the method's defaults.
    let merge = |method: Method, configured: Option<Mapping>| {
        let mut m = Mapping::default_for(method);
        if let Some(c) = configured {
            m.rename.extend(c.rename);
            m.require = c.require;
            m.drop = c.drop;
        }
        m
    };
    let mappings = [
        merge(Method::Spid, mappings.spid),
        merge(Method::Cie, mappings.cie),
        merge(Method::Eidas, mappings.eidas),
    ];

    (problems.len() == start).then_some(Access {
        keys: std::sync::Arc::new(keys),
        ephemeral_key,
        key_expiry,
        issuer,
        token_ttl: token.ttl_seconds,
        routes: out_routes,
        deny_unknown_hosts,
        trusted_proxies,
        allowed_hosts,
        headers,
        token_header,
        mappings,
        metrics_allow,
        metrics_public: metrics.public,
        connect_timeout: Duration::from_secs(proxy.connect_timeout_seconds.clamp(1, 300)),
        response_timeout: Duration::from_secs(proxy.response_timeout_seconds.clamp(1, 3600)),
        tunnel_check: Duration::from_secs(proxy.tunnel_check_seconds.clamp(1, 60)),
    })
}

pub(crate) fn parse_method(s: &str) -> Option<Method> {
    [
        Method::Spid,
        Method::Cie,
        Method::Eidas,
        Method::Cns,
        Method::Legacy,
        Method::Wallet,
    ]
    .into_iter()
    .find(|m| m.as_str() == s)
}

/// A fresh P-256 key with a random kid.
fn ephemeral(rng: &SystemRandom) -> Option<SigningKey> {
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, rng).ok()?;
    let kid = format!("ephemeral-{}", crate::leaf::session::random_hex(rng, 6)?);
    SigningKey::es256_from_pkcs8(&kid, pkcs8.as_ref(), rng).ok()
}

/// The DER of a `-----BEGIN PRIVATE KEY-----` (PKCS#8) PEM block.
fn pem_private_key(pem: &[u8]) -> Result<Vec<u8>, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "not a PEM file".to_owned())?;
    let begin = "-----BEGIN PRIVATE KEY-----";
    let end = "-----END PRIVATE KEY-----";
    let start = text.find(begin).ok_or_else(|| {
        "no PKCS#8 'BEGIN PRIVATE KEY' block (convert with openssl pkcs8 -topk8 -nocrypt)"
            .to_owned()
    })? + begin.len();
    let stop = text[start..]
        .find(end)
        .ok_or_else(|| "unterminated PEM block".to_owned())?
        + start;
    let b64: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "PEM body is not base64".to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn segments_fold_as_the_unicode_rules_say_on_the_ascii_fast_path_too() {
        // The fold as first written (three allocations), the reference for the fast path.
        let reference = |seg: &str| {
            let seg = seg.split(';').next().unwrap_or_default();
            let decoded: Vec<u8> = {
                let b = seg.as_bytes();
                let hex = |c: u8| (c as char).to_digit(16);
                let (mut out, mut i) = (Vec::new(), 0);
                while i < b.len() {
                    let esc = (b[i] == b'%')
                        .then(|| Some((hex(*b.get(i + 1)?)?, hex(*b.get(i + 2)?)?)))
                        .flatten();
                    if let Some((h, l)) = esc {
                        out.push(u8::try_from(h * 16 + l).unwrap_or(0));
                        i += 3;
                    } else {
                        out.push(b[i]);
                        i += 1;
                    }
                }
                let end = out.iter().position(|&c| c == 0).unwrap_or(out.len());
                out[..end].to_vec()
            };
            String::from_utf8_lossy(&decoded)
                .to_lowercase()
                .trim_end_matches(['.', ' '])
                .to_owned()
        };
        for seg in [
            "Account",
            "RISERVATO.. ",
            "a%2E%20",
            "%41bc;jsessionid=X",
            "x%00Y",
            "ÀREA",
            "%C3%80rea",
            "%ff%FEz",
            "İ",
            "",
            "...",
            "%zz",
            "K%e2%84%aa",
        ] {
            assert_eq!(fold_segment(seg), reference(seg), "{seg:?}");
        }
    }

    use super::*;

    #[test]
    fn only_canonical_paths_are_checked() {
        for ok in [
            "/",
            "/riservato/doc",
            "/riservato/doc/",
            "/a%20b",
            "/caf%C3%A8",
            "/x.y/z..w",
            "/.well-known/x",
        ] {
            assert!(canonical_path(ok), "{ok}");
        }
        for bad in [
            "",
            "riservato",
            "/public/../riservato/doc",
            "/public/./riservato",
            "/..",
            "//riservato/doc",
            "/riservato//doc",
            "/%72iservato/doc",
            "/public/%2e%2e/riservato/doc",
            "/public/%2E%2E/riservato",
            "/riservato%2fdoc",
            "/riservato%5cdoc",
            "/riservato;x=1/doc",
            "/a\\b",
            "/%zz",
            "/%4",
            "/%252e%252e/",
            "/a\tb",
            "/cafè",
        ] {
            assert!(!canonical_path(bad), "{bad:?}");
        }
    }

    /// The label rule as it was written before the one-pass loop (issue 20): the reference the
    /// loop is compared with.
    fn labels_ok_by_split(name: &str) -> bool {
        !name.is_empty()
            && name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
    }

    #[test]
    fn host_labels_are_checked_as_by_split() {
        // Every string of up to 5 bytes over an alphabet with each class the rule tells
        // apart, and labels around the 63-byte limit.
        let alphabet = [b'a', b'Z', b'0', b'-', b'_', b'.', b' ', b',', b'@', b'/'];
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        let mut frontier = cases.clone();
        for _ in 0..5 {
            let mut next = Vec::new();
            for s in &frontier {
                for &c in &alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    next.push(t);
                }
            }
            cases.extend(next.iter().cloned());
            frontier = next;
        }
        for n in [62, 63, 64] {
            let l = "a".repeat(n);
            for s in [
                l.clone(),
                format!("{l}.x"),
                format!("x.{l}"),
                format!("{l}."),
                format!(".{l}"),
            ] {
                cases.push(s.into_bytes());
            }
        }
        let mut compared = 0;
        for bytes in cases {
            let Ok(host) = String::from_utf8(bytes) else {
                continue;
            };
            for https in [false, true] {
                let expected = {
                    let name = host.strip_suffix('.').unwrap_or(&host);
                    (host.len() <= 261 && !host.starts_with('[') && labels_ok_by_split(name))
                        .then(|| name.to_ascii_lowercase())
                };
                if host.contains(':') || host.starts_with('[') {
                    continue;
                }
                assert_eq!(normalize_host(&host, https), expected, "{host:?}");
                compared += 1;
            }
        }
        assert!(compared > 100_000, "{compared}");
    }

    #[test]
    fn hosts_are_normalized_like_routes() {
        let n = |h: &str, https: bool| normalize_host(h, https);
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            n("Portal.Example.org:443", true),
            some("portal.example.org")
        );
        assert_eq!(n("portal.example.org.", true), some("portal.example.org"));
        assert_eq!(
            n("portal.example.org.:8443", true),
            some("portal.example.org:8443")
        );
        assert_eq!(
            n("portal.example.org:80", false),
            some("portal.example.org")
        );
        assert_eq!(
            n("portal.example.org:080", false),
            some("portal.example.org")
        );
        assert_eq!(
            n("portal.example.org:0443", true),
            some("portal.example.org")
        );
        assert_eq!(
            n("portal.example.org:80", true),
            some("portal.example.org:80")
        );
        assert_eq!(n("portal.example:08443", true), some("portal.example:8443"));
        assert_eq!(n("[::1]", false), some("[::1]"));
        assert_eq!(n("[::1]:8080", false), some("[::1]:8080"));
        assert_eq!(n("[FE80::1]:443", true), some("[fe80::1]"));
        assert_eq!(n("127.0.0.1:80", false), some("127.0.0.1"));
        for bad in [
            "",
            "portal.example, other",
            "portal.example,other",
            "portal.example other",
            " portal.example",
            "portal.example:",
            "portal.example:0",
            "portal.example:65536",
            "portal.example:8443:1",
            "portal.example:+80",
            "user@portal.example",
            "portal..example",
            ".portal.example",
            "portal.example..",
            "portal.example/x",
            "[::1",
            "[::1]x",
            "[]",
            "[::1]:",
            "::1",
        ] {
            assert_eq!(n(bad, true), None, "{bad:?}");
        }
    }

    #[test]
    fn networks_match_by_prefix() {
        let n = Network::parse("10.1.0.0/16").unwrap();
        assert!(n.contains("10.1.200.3".parse().unwrap()));
        assert!(!n.contains("10.2.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one = Network::parse("::1").unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!(!one.contains("127.0.0.1".parse().unwrap()));
        assert!(
            Network::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(Network::parse("10.0.0.0/33"), None);
        assert_eq!(Network::parse("example.org"), None);
    }

    fn access(routes: Vec<RawRoute>) -> Access {
        let mut problems = Vec::new();
        let a = validate(
            RawAccess {
                metrics: RawMetrics::default(),
                proxy: RawProxy::default(),
                token: RawToken::default(),
                routes,
                forward_auth: RawForwardAuth {
                    allowed_hosts: vec!["Other.Example.org:8443".into()],
                    ..RawForwardAuth::default()
                },
                mappings: RawMappings::default(),
            },
            "https://login.example.org",
            2,
            &|p| p.to_path_buf(),
            &mut problems,
        );
        assert!(problems.is_empty(), "{problems:?}");
        a.unwrap()
    }

    fn route(host: Option<&str>, prefix: &str, loa: &str) -> RawRoute {
        RawRoute {
            host: host.map(str::to_owned),
            path_prefix: prefix.into(),
            min_loa: Some(loa.into()),
            methods: vec![],
            profiles: vec![],
            audience: None,
            upstream: None,
            service: None,
            matching: None,
            min_age: None,
            max_age: None,
            wallet_claims: None,
        }
    }

    #[test]
    fn most_specific_route_wins_on_segment_boundaries() {
        let a = access(vec![
            route(None, "/", "low"),
            route(None, "/tax", "substantial"),
            route(Some("portal.example.org"), "/tax/f24", "high"),
        ]);
        let loa = |h: &str, p: &str| a.route(h, p).unwrap().policy.min_loa;
        let x = "login.example.org";
        assert_eq!(loa(x, "/"), Loa::Low);
        assert_eq!(loa(x, "/tax"), Loa::Substantial);
        assert_eq!(loa(x, "/tax/anything"), Loa::Substantial);
        assert_eq!(loa(x, "/taxes"), Loa::Low, "not a segment boundary");
        assert_eq!(loa("portal.example.org", "/tax/f24/x"), Loa::High);
        assert_eq!(loa("other.example.org:8443", "/tax/f24"), Loa::Substantial);
        // Host-specific routes exist: a host nobody named is refused, not given the
        // any-host routes (`portal.example.org:8443` is not `portal.example.org`).
        for unknown in ["other.org", "portal.example.org:8443", "portal.example"] {
            assert_eq!(
                a.route(unknown, "/tax/f24").err(),
                Some(UNKNOWN_HOST),
                "{unknown}"
            );
        }
    }

    #[test]
    fn return_addresses_stay_on_allowed_hosts() {
        let a = access(vec![route(Some("portal.example.org"), "/", "low")]);
        for ok in [
            "/",
            "/account?x=1",
            "https://portal.example.org/tax",
            "https://login.example.org",
            "https://other.example.org:8443/x",
        ] {
            assert_eq!(a.return_to(ok, false), Some(ok), "{ok}");
        }
        for bad in [
            "//evil.example",
            "https://evil.example/",
            "https://portal.example.org@evil.example/",
            "http://portal.example.org/",
            "https://other.example.org/x",
            "/\\evil.example",
            "javascript:alert(1)",
            "https://portal.example.org.evil.example/",
            "https:/evil.example/",
            "HTTPS://evil.example/",
            "https://portal.example.org:443.evil.example/",
            "/\u{fc}ber",
            "/a\r\nSet-Cookie: x",
            "",
        ] {
            assert_eq!(a.return_to(bad, false), None, "{bad}");
        }
        assert!(a.return_to("http://portal.example.org/", true).is_some());
    }

    #[test]
    fn without_keys_an_ephemeral_key_signs() {
        let a = access(vec![]);
        assert!(a.ephemeral_key);
        assert!(a.keys.active().unwrap().kid().starts_with("ephemeral-"));
        assert_eq!(a.routes.len(), 1);
        assert_eq!(a.routes[0].policy.min_loa, Loa::Substantial);
        assert_eq!(a.headers.len() + 1, DEFAULT_HEADERS.len());
        assert_eq!(
            a.token_header.as_ref().map(|h| h.as_str()),
            Some("authorization")
        );
    }

    #[test]
    fn every_spelling_of_a_protected_path_gets_the_protected_route() {
        // Issue 18: each of these reached the `/` route, and a case-insensitive upstream
        // served the protected page.
        let a = access(vec![
            route(None, "/", "substantial"),
            route(None, "/riservato", "high"),
        ]);
        for spelling in [
            "/riservato",
            "/Riservato",
            "/RISERVATO/doc",
            "/riservato.json",
            "/riservato%20",
            "/riservato.",
            "/riservato. . /doc",
            "/rIsErVaTo::$DATA",
            "/riservato%00.json",
            "/riservato/",
        ] {
            let r = a.route("x.org", spelling).unwrap();
            assert_eq!(r.policy.min_loa, Loa::High, "{spelling}");
        }
        assert_eq!(
            a.route("x.org", "/riservatoX").unwrap().policy.min_loa,
            Loa::Substantial
        );
        // Encoded controls never pass the canonical check in the first place.
        assert!(!canonical_path("/riservato%00.json"));
        assert!(!canonical_path("/riservato%0a"));
    }

    #[test]
    fn an_exact_route_opts_out_of_normalization() {
        let mut exact = route(None, "/Api", "high");
        exact.matching = Some("exact".into());
        let a = access(vec![route(None, "/", "low"), exact]);
        let loa = |p: &str| a.route("x.org", p).unwrap().policy.min_loa;
        assert_eq!(loa("/Api"), Loa::High);
        assert_eq!(loa("/Api/v1"), Loa::High);
        assert_eq!(
            loa("/api"),
            Loa::Low,
            "exact: the operator accepted other spellings"
        );
        assert_eq!(loa("/Api.json"), Loa::Low);
    }

    #[test]
    fn equally_specific_candidates_resolve_to_the_stricter() {
        // `/a.json` at low would give `/A.JSON` less than `/a` asks for a case-insensitive
        // upstream that also strips format suffixes: the stricter of the two decides.
        let a = access(vec![
            route(None, "/a.json", "low"),
            route(None, "/a", "high"),
        ]);
        assert_eq!(a.route("x", "/a.json").unwrap().policy.min_loa, Loa::High);
        let b = access(vec![
            route(None, "/a", "high"),
            route(None, "/a.json", "low"),
        ]);
        assert_eq!(b.route("x", "/a.json").unwrap().policy.min_loa, Loa::High);
        // A more specific route still carves out a weaker subtree.
        let c = access(vec![
            route(None, "/", "high"),
            route(None, "/public", "low"),
        ]);
        assert_eq!(c.route("x", "/PUBLIC/x").unwrap().policy.min_loa, Loa::Low);
    }

    #[test]
    fn a_misconfigured_route_is_refused() {
        let mut problems = Vec::new();
        let mut weird = route(None, "/a", "high");
        weird.matching = Some("fuzzy".into());
        let routes = vec![
            weird,
            route(None, "/a//b", "high"),
            route(None, "/a;x", "low"),
        ];
        let a = validate(
            RawAccess {
                metrics: RawMetrics::default(),
                proxy: RawProxy::default(),
                token: RawToken::default(),
                routes,
                forward_auth: RawForwardAuth::default(),
                mappings: RawMappings::default(),
            },
            "https://login.example.org",
            2,
            &|p| p.to_path_buf(),
            &mut problems,
        );
        assert!(a.is_none());
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "route[0].match",
                "route[1].path_prefix",
                "route[2].path_prefix"
            ]
        );
    }

    #[test]
    fn unknown_hosts_may_be_let_through_explicitly() {
        let build = |unknown_host: &str, hosts: Vec<String>| {
            let mut problems = Vec::new();
            let a = validate(
                RawAccess {
                    metrics: RawMetrics::default(),
                    proxy: RawProxy::default(),
                    token: RawToken::default(),
                    routes: vec![
                        route(None, "/", "low"),
                        route(Some("Portal.Example.org:443"), "/", "high"),
                    ],
                    forward_auth: RawForwardAuth {
                        unknown_host: unknown_host.into(),
                        allowed_hosts: hosts,
                        ..RawForwardAuth::default()
                    },
                    mappings: RawMappings::default(),
                },
                "https://login.example.org",
                2,
                &|p| p.to_path_buf(),
                &mut problems,
            );
            (a, problems)
        };
        let (a, _) = build("any_host_routes", vec![]);
        let a = a.unwrap();
        assert_eq!(a.route("x.org", "/").unwrap().policy.min_loa, Loa::Low);
        assert_eq!(
            a.route("portal.example.org", "/").unwrap().policy.min_loa,
            Loa::High,
            "the configured host was normalized"
        );
        let (a, problems) = build("allow", vec!["a.org, b.org".into(), "ok.org:0443".into()]);
        assert!(a.is_none());
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["forward_auth.allowed_hosts[0]", "forward_auth.unknown_host"]
        );
    }

    thread_local! {
        /// Segment comparisons made by this thread's `segment_matches` calls.
        pub(super) static COMPARISONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn matching_work_is_bounded_by_the_routes_not_the_path() {
        // A hostile path of 4,000 segments (and 8 KiB, the canonical-path cap) against 30
        // routes of up to 3 segments: each route compares at most its own segments, so the
        // work is counted, not timed.
        let mut routes = vec![route(None, "/", "low")];
        for i in 0..29 {
            routes.push(route(None, &format!("/a{i}/b/c"), "high"));
        }
        let a = access(routes);
        let path = "/a1/b/c".to_owned() + &"/d".repeat(4_000);
        assert!(canonical_path(&path));
        COMPARISONS.with(|c| c.set(0));
        let r = a.route("x", &path).unwrap();
        assert_eq!(r.path_prefix, "/a1/b/c");
        let made = COMPARISONS.with(std::cell::Cell::get);
        assert!(made <= 29 * 3, "{made} comparisons");
        // The fold itself is one pass: its output is never longer than its input.
        let folded: usize = folded_segments(&path).iter().map(String::len).sum();
        assert!(folded <= path.len());
    }

    #[test]
    fn folding_only_as_deep_as_the_routes_reads_the_same_segments() {
        // The matcher folds a request path only as deep as the longest route prefix: that
        // must be exactly the whole fold cut at that depth, trailing slashes included.
        let paths = [
            "/",
            "//",
            "/a",
            "/a/",
            "/a//",
            "/a/b",
            "/a/b/",
            "/A/B;x/c",
            "/a/%42/",
            "/a/b/c/d",
            "/a/b/c/d/",
            "/a.json/",
            "/a/b/c/d/e/f/g/",
            "",
        ];
        for path in paths {
            let whole = folded_segments(path);
            for depth in 0..8 {
                let mut cut = whole.clone();
                cut.truncate(depth);
                assert_eq!(folded_prefix(path, depth), cut, "{path:?} at depth {depth}");
            }
        }
    }

    /// SplitMix64: a seeded, dependency-free source for the property test below, so a
    /// failure names its seed and replays exactly.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap()
        }
        fn chance(&mut self, one_in: usize) -> bool {
            self.below(one_in) == 0
        }
    }

    const WORDS: [&str; 7] = ["a", "ab", "riservato", "doc", "x.y", "caff%C3%A8", "v1"];

    /// A spelling of the canonical segment `w` that some common upstream serves as `w`, or
    /// one that Varco must refuse: case changes, trailing dots and spaces, format suffixes,
    /// matrix parameters, NTFS stream names, needless or lower-case percent escapes.
    fn respell(rng: &mut Rng, w: &str) -> String {
        let mut s: String = w
            .chars()
            .map(|c| {
                if rng.chance(2) {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect();
        if w == "caff%C3%A8" && rng.chance(2) {
            s = "CAFF%C3%88".into(); // È: Unicode case folding
        }
        for _ in 0..rng.below(3) {
            s.push_str(
                [
                    ".", "%20", ".json", ";v=1", "::$DATA", "...", "%2e", "%2E%2E", "%2f", " ",
                    "%41", "%00", ".JSON.",
                ][rng.below(13)],
            );
        }
        s
    }

    /// Higher is stricter; a refusal (400) and no route (403) are the strictest outcomes.
    fn outcome(a: &Access, path: &str) -> (u8, Option<Strictness>) {
        if !canonical_path(path) {
            return (2, None);
        }
        match a.route("portal.example", path) {
            Err(_) => (1, None),
            Ok(r) => (0, Some(r.strictness())),
        }
    }

    #[test]
    fn property_no_spelling_is_decided_less_strictly_than_the_canonical_path() {
        let levels = ["low", "substantial", "high"];
        let mut checked = 0;
        for seed in 0..400u64 {
            let mut rng = Rng(seed);
            let mut routes = Vec::new();
            for _ in 0..1 + rng.below(6) {
                let depth = rng.below(4);
                let prefix: String = (0..depth)
                    .map(|_| format!("/{}", WORDS[rng.below(WORDS.len())]))
                    .collect();
                let host = rng.chance(4).then_some("portal.example");
                let mut r = route(
                    host,
                    if prefix.is_empty() { "/" } else { &prefix },
                    levels[rng.below(3)],
                );
                if rng.chance(3) {
                    r.methods = vec!["cie".into()];
                }
                if rng.chance(4) {
                    r.profiles = vec!["citizen".into(), "business".into()];
                }
                routes.push(r);
            }
            let a = access(routes);
            for _ in 0..50 {
                let words: Vec<&str> = (0..rng.below(5))
                    .map(|_| WORDS[rng.below(WORDS.len())])
                    .collect();
                let slash = if rng.chance(3) { "/" } else { "" };
                let canonical = format!("/{}{slash}", words.join("/"));
                let canonical = canonical.replace("//", "/");
                assert!(canonical_path(&canonical), "{canonical}");
                let base = outcome(&a, &canonical);
                for _ in 0..8 {
                    let variant = format!(
                        "/{}{slash}",
                        words
                            .iter()
                            .map(|w| respell(&mut rng, w))
                            .collect::<Vec<_>>()
                            .join("/")
                    );
                    let variant = if variant == "//" { "/".into() } else { variant };
                    let got = outcome(&a, &variant);
                    assert!(
                        got >= base,
                        "seed {seed}: {variant:?} got {got:?}, {canonical:?} got {base:?}"
                    );
                    checked += 1;
                }
            }
        }
        // Counted, so the property is known to have been exercised at the size claimed.
        assert_eq!(checked, 400 * 50 * 8);
    }
}
