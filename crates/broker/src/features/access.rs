//! Who may pass and what downstream services are told: the token keys, the protected routes
//! with their policies, which proxies are believed about the original URL, where a login may
//! return to, the identity headers, and the attribute mapping of each federation.
//!
//! The raw tables (`[token]`, `[[route]]`, `[forward_auth]`, `[mapping.*]`) are read by
//! [`crate::config`] and validated here into [`Access`]; keys and defaults are documented in
//! docs/OPERATIONS.md.
//!
//! May import: the leaf.

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
}

/// The `service` names the routes declare (what `[[switchoff.exception]] services` name).
pub(crate) fn route_services(routes: &[RawRoute]) -> Vec<String> {
    routes.iter().filter_map(|r| r.service.clone()).collect()
}

/// `[metrics]`: who may read `/metrics`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    #[serde(default = "default_metrics_allow")]
    allow: Vec<String>,
}

impl Default for RawMetrics {
    fn default() -> Self {
        RawMetrics {
            allow: default_metrics_allow(),
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
}

impl Default for RawProxy {
    fn default() -> Self {
        RawProxy {
            connect_timeout_seconds: default_connect_timeout(),
            response_timeout_seconds: default_response_timeout(),
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
}

impl Default for RawForwardAuth {
    fn default() -> Self {
        RawForwardAuth {
            trusted_proxies: default_trusted_proxies(),
            allowed_hosts: Vec::new(),
            headers: None,
        }
    }
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
}

impl Route {
    fn matches(&self, host: &str, path: &str) -> bool {
        if let Some(h) = &self.host {
            if !h.eq_ignore_ascii_case(host) {
                return false;
            }
        }
        let p = self.path_prefix.as_str();
        p == "/"
            || path == p
            || (path.starts_with(p)
                && (p.ends_with('/') || path.as_bytes().get(p.len()) == Some(&b'/')))
    }
}

/// Whether `path` (no query) is in the one form Varco and every upstream read the same way,
/// so the route Varco checks is the resource the upstream serves. Refused: `\`, `;` (matrix
/// parameters some servers strip), empty segments (`//`), `.` and `..` segments, control
/// characters and non-ASCII bytes, invalid percent escapes, and percent-encoded characters
/// that need no encoding or change the path's structure (unreserved characters, `/`, `\`,
/// `%`, `;`): `/%72iservato` and `/a/%2e%2e/riservato` would otherwise reach `/riservato`
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
                if c.is_ascii_alphanumeric() || b"-._~/\\%;".contains(&c) {
                    return false;
                }
                i += 3;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    !segments
        .iter()
        .enumerate()
        .any(|(n, seg)| matches!(*seg, "." | "..") || (seg.is_empty() && n < last))
}

/// The host as routes name it: lower-case, without a trailing dot, without the scheme's
/// default port.
pub fn normalize_host(host: &str, https: bool) -> String {
    let default_port = if https { ":443" } else { ":80" };
    let h = host.strip_suffix(default_port).unwrap_or(host);
    let h = match h.rsplit_once(':') {
        // host:port (an IPv6 literal without a port ends with `]`).
        Some((name, port)) if !h.ends_with(']') => {
            format!("{}:{port}", name.trim_end_matches('.'))
        }
        _ => h.trim_end_matches('.').to_owned(),
    };
    h.to_ascii_lowercase()
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

/// The validated access configuration.
pub struct Access {
    /// Token signing keys (and the JWKS).
    pub keys: std::sync::Arc<KeySet>,
    /// Whether the signing key was generated at start because none was configured.
    pub ephemeral_key: bool,
    /// `iss` of minted tokens.
    pub issuer: String,
    /// Token lifetime, seconds.
    pub token_ttl: u64,
    /// Routes, most specific first (host before any-host, then longer prefixes).
    pub routes: Vec<Route>,
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
    /// Connect timeout toward upstreams.
    pub connect_timeout: Duration,
    /// How long an upstream may take to start answering.
    pub response_timeout: Duration,
}

impl Access {
    /// The route protecting `host` + `path`, if any.
    pub fn route(&self, host: &str, path: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(host, path))
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
        let authority = authority.to_ascii_lowercase();
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
    for (i, k) in token.key.iter().enumerate() {
        let at = format!("token.key[{i}]");
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
        }
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
        let host = r.host.map(|h| h.to_ascii_lowercase());
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
        if host
            .as_deref()
            .is_some_and(|h| h.is_empty() || h.contains(['/', '@', ' ']))
        {
            bad(format!("{at}.host"), "must be host or host:port".into());
        }
        out_routes.push(Route {
            host,
            path_prefix,
            policy: Policy {
                min_loa,
                methods,
                profiles,
            },
            audience: r.audience.unwrap_or_else(|| default_audience.clone()),
            upstream,
            service: r.service,
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
    let public_host = public_base_url
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or("").to_ascii_lowercase())
        .unwrap_or_default();
    allowed_hosts.push(public_host);
    allowed_hosts.extend(out_routes.iter().filter_map(|r| r.host.clone()));
    for h in &forward_auth.allowed_hosts {
        allowed_hosts.push(h.to_ascii_lowercase());
    }
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
        issuer,
        token_ttl: token.ttl_seconds,
        routes: out_routes,
        trusted_proxies,
        allowed_hosts,
        headers,
        token_header,
        mappings,
        metrics_allow,
        connect_timeout: Duration::from_secs(proxy.connect_timeout_seconds.clamp(1, 300)),
        response_timeout: Duration::from_secs(proxy.response_timeout_seconds.clamp(1, 3600)),
    })
}

fn parse_method(s: &str) -> Option<Method> {
    [
        Method::Spid,
        Method::Cie,
        Method::Eidas,
        Method::Cns,
        Method::Legacy,
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

    #[test]
    fn hosts_are_normalized_like_routes() {
        assert_eq!(
            normalize_host("Portal.Example.org:443", true),
            "portal.example.org"
        );
        assert_eq!(
            normalize_host("portal.example.org.", true),
            "portal.example.org"
        );
        assert_eq!(
            normalize_host("portal.example.org.:8443", true),
            "portal.example.org:8443"
        );
        assert_eq!(
            normalize_host("portal.example.org:80", false),
            "portal.example.org"
        );
        assert_eq!(
            normalize_host("portal.example.org:80", true),
            "portal.example.org:80"
        );
        assert_eq!(normalize_host("[::1]", false), "[::1]");
        assert_eq!(normalize_host("[::1]:8080", false), "[::1]:8080");
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
        assert_eq!(loa("x.org", "/"), Loa::Low);
        assert_eq!(loa("x.org", "/tax"), Loa::Substantial);
        assert_eq!(loa("x.org", "/tax/anything"), Loa::Substantial);
        assert_eq!(loa("x.org", "/taxes"), Loa::Low, "not a segment boundary");
        assert_eq!(loa("portal.example.org", "/tax/f24/x"), Loa::High);
        assert_eq!(loa("PORTAL.example.org", "/tax/f24"), Loa::High);
        assert_eq!(loa("other.org", "/tax/f24"), Loa::Substantial);
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
}
