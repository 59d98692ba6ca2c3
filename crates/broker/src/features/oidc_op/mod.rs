//! Varco as an OpenID Provider (issue 22), the broker's half beside the pure `oidc` crate:
//! the `[oidc]` table and its `[[oidc.client]]` registry ([`validate`]), the records kept in
//! the store for codes, grants and tokens ([`records`]), and the Back-Channel Logout sender
//! ([`backchannel`]). Serves no route: `routes::oidc_op` does.
//!
//! May import: the leaf, `features::access` (method names).

pub mod backchannel;
pub mod records;

use std::path::{Path, PathBuf};
use std::time::Duration;

use identity::{Loa, Method};
use oidc::{AuthMethod, Client, Scope, Scopes, SecretHash, SubjectType};
use serde::Deserialize;

/// `[oidc]`: the provider's settings and its clients.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOidc {
    issuer: Option<String>,
    #[serde(default = "default_code_ttl")]
    code_ttl_seconds: u64,
    #[serde(default = "default_short_ttl")]
    id_token_ttl_seconds: u64,
    #[serde(default = "default_short_ttl")]
    access_token_ttl_seconds: u64,
    #[serde(default = "default_refresh_ttl")]
    refresh_token_ttl_seconds: u64,
    pairwise_salt_file: Option<PathBuf>,
    #[serde(default = "default_backchannel_timeout")]
    backchannel_timeout_ms: u64,
    #[serde(default = "default_backchannel_queue")]
    backchannel_queue: usize,
    #[serde(default)]
    client: Vec<RawClient>,
}

fn default_code_ttl() -> u64 {
    60
}
fn default_short_ttl() -> u64 {
    300
}
fn default_refresh_ttl() -> u64 {
    8 * 3600
}
fn default_backchannel_timeout() -> u64 {
    5000
}
fn default_backchannel_queue() -> usize {
    1024
}

/// `[[oidc.client]]`: one registered client.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: String,
    secret_file: Option<PathBuf>,
    /// A JWKS as JSON text (for `private_key_jwt`).
    jwks: Option<String>,
    jwks_file: Option<PathBuf>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    post_logout_redirect_uris: Vec<String>,
    scopes: Option<Vec<String>>,
    min_loa: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    token_endpoint_auth_method: Option<String>,
    backchannel_logout_uri: Option<String>,
    #[serde(default = "default_true")]
    require_pkce: bool,
    #[serde(default)]
    refresh_tokens: bool,
    subject_type: Option<String>,
    sector: Option<String>,
    /// The `[[represent.service]]` this client is (issue 24): a session acting for someone
    /// there gives the client the represented party as `sub`, the delegate as `act`.
    service: Option<String>,
}

fn default_true() -> bool {
    true
}

/// The validated `[oidc]` table.
#[derive(Debug)]
pub struct Oidc {
    /// The issuer identifier (`iss`, the discovery base).
    pub issuer: String,
    /// Registered clients.
    pub clients: Vec<Client>,
    /// Authorization code lifetime.
    pub code_ttl: Duration,
    /// ID token lifetime, seconds.
    pub id_token_ttl: u64,
    /// Access token lifetime, seconds.
    pub access_token_ttl: u64,
    /// Refresh token lifetime, seconds (the whole rotation family).
    pub refresh_token_ttl: u64,
    /// Back-channel delivery settings.
    pub backchannel: backchannel::Settings,
    /// Client id -> its `service` (representation, issue 24), for the clients that name one.
    pub services: std::collections::BTreeMap<String, String>,
}

impl Oidc {
    /// The client `id`, if registered.
    #[must_use]
    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// The represent service of client `id`, if it names one.
    #[must_use]
    pub fn service_of(&self, id: &str) -> Option<&str> {
        self.services.get(id).map(String::as_str)
    }

    /// The token endpoint URL.
    #[must_use]
    pub fn token_endpoint(&self) -> String {
        format!("{}{}", self.issuer, oidc::discovery::paths::TOKEN)
    }
}

/// The services the clients name: they are services for `[[represent.service]]` as the
/// routes' are (checked against it in `config`).
pub(crate) fn client_services(raw: &RawOidc) -> Vec<String> {
    raw.client
        .iter()
        .filter_map(|c| c.service.clone())
        .collect()
}

/// Shortest accepted client secret, characters: with at least this much randomness a plain
/// SHA-256 of it cannot be reversed by guessing.
pub const MIN_SECRET: usize = 32;

/// Whether `uri` is an absolute `https` URL, or `http` on a loopback host (development and
/// native apps, RFC 8252 §7.3), without a fragment.
fn acceptable_uri(uri: &str) -> bool {
    if uri.contains('#') || uri.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return false;
    }
    let Ok(parsed) = uri.parse::<hyper::Uri>() else {
        return false;
    };
    match (parsed.scheme_str(), parsed.host()) {
        (Some("https"), Some(h)) => !h.is_empty(),
        (Some("http"), Some(h)) => h == "127.0.0.1" || h == "localhost" || h == "[::1]",
        _ => false,
    }
}

/// Validates `[oidc]`. `audiences` are the routes' token audiences: a client id equal to one
/// would let a downstream token of that route pass as an ID token for the client (same keys,
/// same issuer). Problems go to `bad` with their dotted key.
pub(crate) fn validate(
    raw: &RawOidc,
    public_base_url: &str,
    audiences: &[String],
    resolve: &dyn Fn(&Path) -> PathBuf,
    bad: &mut dyn FnMut(&str, String),
) -> Option<Oidc> {
    let issuer = raw
        .issuer
        .clone()
        .unwrap_or_else(|| public_base_url.to_owned());
    let mut ok = true;
    if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
        || issuer.ends_with('/')
        || issuer.contains(['?', '#'])
    {
        bad(
            "oidc.issuer",
            format!(
                "{issuer:?}: expected an http(s) URL without a trailing slash, query or fragment"
            ),
        );
        ok = false;
    }
    if raw.code_ttl_seconds == 0 || raw.code_ttl_seconds > 600 {
        bad(
            "oidc.code_ttl_seconds",
            "expected 1 to 600 (RFC 6749 §4.1.2: short-lived)".into(),
        );
        ok = false;
    }
    for (key, v) in [
        ("oidc.id_token_ttl_seconds", raw.id_token_ttl_seconds),
        (
            "oidc.access_token_ttl_seconds",
            raw.access_token_ttl_seconds,
        ),
    ] {
        if v == 0 || v > 86_400 {
            bad(key, "expected 1 to 86400".into());
            ok = false;
        }
    }
    if raw.refresh_token_ttl_seconds == 0 {
        bad(
            "oidc.refresh_token_ttl_seconds",
            "expected at least 1".into(),
        );
        ok = false;
    }
    if raw.backchannel_queue == 0 || raw.backchannel_timeout_ms == 0 {
        bad(
            "oidc.backchannel_queue",
            "backchannel_queue and backchannel_timeout_ms must be positive".into(),
        );
        ok = false;
    }
    let salt = match &raw.pairwise_salt_file {
        None => None,
        Some(p) => match std::fs::read(resolve(p)) {
            Ok(b) if b.trim_ascii().len() >= 16 => Some(b.trim_ascii().to_vec()),
            Ok(_) => {
                bad(
                    "oidc.pairwise_salt_file",
                    "the salt must have at least 16 bytes".into(),
                );
                ok = false;
                None
            }
            Err(e) => {
                bad("oidc.pairwise_salt_file", format!("{}: {e}", p.display()));
                ok = false;
                None
            }
        },
    };
    let mut clients: Vec<Client> = Vec::new();
    let mut services = std::collections::BTreeMap::new();
    for (i, c) in raw.client.iter().enumerate() {
        let at = format!("oidc.client[{i}]");
        let mut fail = |key: &str, msg: String| {
            bad(&format!("{at}.{key}"), msg);
            ok = false;
        };
        if c.id.is_empty()
            || c.id.len() > oidc::authorize::MAX_CLIENT_ID
            || !c.id.bytes().all(|b| (0x21..=0x7e).contains(&b))
        {
            fail("id", "expected 1 to 128 printable ASCII characters".into());
        }
        if clients.iter().any(|x| x.id == c.id) {
            fail("id", format!("{:?} registered twice", c.id));
        }
        if audiences.contains(&c.id) || c.id == issuer {
            fail(
                "id",
                format!(
                    "{:?} is also a route's token audience (or the issuer): a downstream token must never pass as this client's ID token",
                    c.id
                ),
            );
        }
        let auth_method = match c.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::SecretBasic,
            Some(m) => AuthMethod::parse(m).unwrap_or_else(|| {
                fail(
                    "token_endpoint_auth_method",
                    format!("{m:?}: expected client_secret_basic, client_secret_post, private_key_jwt or none"),
                );
                AuthMethod::SecretBasic
            }),
        };
        let secret = match (&c.secret_file, auth_method) {
            (Some(p), AuthMethod::SecretBasic | AuthMethod::SecretPost) => {
                match std::fs::read(resolve(p)) {
                    Ok(b) => {
                        let b = b.trim_ascii();
                        if b.len() < MIN_SECRET {
                            fail(
                                "secret_file",
                                format!("the secret must have at least {MIN_SECRET} characters"),
                            );
                        }
                        Some(SecretHash::of(b))
                    }
                    Err(e) => {
                        fail("secret_file", format!("{}: {e}", p.display()));
                        None
                    }
                }
            }
            (None, AuthMethod::SecretBasic | AuthMethod::SecretPost) => {
                fail(
                    "secret_file",
                    format!("required with {}", auth_method.as_str()),
                );
                None
            }
            (Some(_), _) => {
                fail(
                    "secret_file",
                    format!("not used with {}", auth_method.as_str()),
                );
                None
            }
            (None, _) => None,
        };
        let jwks_text = match (&c.jwks, &c.jwks_file) {
            (Some(_), Some(_)) => {
                fail("jwks", "jwks and jwks_file are exclusive".into());
                None
            }
            (Some(t), None) => Some(t.clone().into_bytes()),
            (None, Some(p)) => match std::fs::read(resolve(p)) {
                Ok(b) => Some(b),
                Err(e) => {
                    fail("jwks_file", format!("{}: {e}", p.display()));
                    None
                }
            },
            (None, None) => None,
        };
        let jwks = match (jwks_text, auth_method) {
            (Some(t), AuthMethod::PrivateKeyJwt) => match jose::Jwks::from_json(&t) {
                Ok(k) if !k.is_empty() => Some(k),
                Ok(_) => {
                    fail("jwks", "the key set is empty".into());
                    None
                }
                Err(e) => {
                    fail("jwks", format!("{e} ({})", e.code()));
                    None
                }
            },
            (None, AuthMethod::PrivateKeyJwt) => {
                fail(
                    "jwks",
                    "required with private_key_jwt (jwks or jwks_file)".into(),
                );
                None
            }
            (Some(_), _) => {
                fail("jwks", format!("not used with {}", auth_method.as_str()));
                None
            }
            (None, _) => None,
        };
        if c.redirect_uris.is_empty() {
            fail(
                "redirect_uris",
                "at least one redirect URI is required".into(),
            );
        }
        for u in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
            if !acceptable_uri(u) {
                fail(
                    "redirect_uris",
                    format!(
                        "{u:?}: expected an https URL (http only on a loopback host), no fragment"
                    ),
                );
            }
        }
        if let Some(u) = &c.backchannel_logout_uri {
            if !acceptable_uri(u) {
                fail(
                    "backchannel_logout_uri",
                    format!("{u:?}: expected an https URL (http only on a loopback host)"),
                );
            }
        }
        let scopes = match &c.scopes {
            None => Scopes::all(),
            Some(list) => {
                let mut s = Scopes::empty();
                for name in list {
                    match Scope::parse(name) {
                        Some(x) => s.insert(x),
                        None => fail(
                            "scopes",
                            format!(
                                "{name:?}: expected openid, profile, email, phone, address or offline_access"
                            ),
                        ),
                    }
                }
                s
            }
        };
        let min_loa = match c.min_loa.as_deref() {
            None | Some("substantial") => Loa::Substantial,
            Some("low") => Loa::Low,
            Some("high") => Loa::High,
            Some(other) => {
                fail(
                    "min_loa",
                    format!("{other:?}: expected low, substantial or high"),
                );
                Loa::Substantial
            }
        };
        let mut methods = Vec::new();
        for m in &c.methods {
            match crate::features::access::parse_method(m) {
                Some(m) => methods.push(m),
                None => fail(
                    "methods",
                    format!("{m:?}: expected spid, cie, eidas, cns or legacy"),
                ),
            }
        }
        if methods.is_empty() {
            // Legacy credentials are switched off by route (`[switchoff]`); a client has no
            // route, so it gets them only by naming them.
            methods = vec![Method::Spid, Method::Cie, Method::Eidas, Method::Cns];
        }
        if auth_method == AuthMethod::None && !c.require_pkce {
            fail(
                "require_pkce",
                "a public client (token_endpoint_auth_method = \"none\") always uses PKCE".into(),
            );
        }
        let subject_type = match c.subject_type.as_deref() {
            None | Some("public") => SubjectType::Public,
            Some("pairwise") => match &salt {
                Some(s) => SubjectType::Pairwise {
                    sector: c.sector.clone().unwrap_or_else(|| c.id.clone()),
                    salt: s.clone(),
                },
                None => {
                    fail(
                        "subject_type",
                        "pairwise needs oidc.pairwise_salt_file".into(),
                    );
                    SubjectType::Public
                }
            },
            Some(other) => {
                fail(
                    "subject_type",
                    format!("{other:?}: expected public or pairwise"),
                );
                SubjectType::Public
            }
        };
        if let Some(service) = &c.service {
            // The routes' rule: the name travels in the chooser's URL and the session.
            if !crate::leaf::problem::valid_name(service) {
                fail("service", format!("{service:?}: 1-64 of a-z, 0-9, _ and -"));
            }
            services.insert(c.id.clone(), service.clone());
        }
        clients.push(Client {
            id: c.id.clone(),
            auth_method,
            secret,
            jwks,
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            scopes,
            min_loa,
            methods,
            require_pkce: c.require_pkce,
            backchannel_logout_uri: c.backchannel_logout_uri.clone(),
            refresh_tokens: c.refresh_tokens,
            subject_type,
        });
    }
    ok.then(|| Oidc {
        issuer,
        clients,
        code_ttl: Duration::from_secs(raw.code_ttl_seconds),
        id_token_ttl: raw.id_token_ttl_seconds,
        access_token_ttl: raw.access_token_ttl_seconds,
        refresh_token_ttl: raw.refresh_token_ttl_seconds,
        backchannel: backchannel::Settings {
            timeout: Duration::from_millis(raw.backchannel_timeout_ms),
            queue: raw.backchannel_queue,
        },
        services,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str, audiences: &[String]) -> (Option<Oidc>, Vec<String>) {
        let raw: RawOidc = toml::from_str(toml_text).unwrap();
        let dir = std::env::temp_dir().join(format!("varco-oidc-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("secret"), "0123456789abcdef0123456789abcdef!").unwrap();
        std::fs::write(dir.join("short"), "too-short").unwrap();
        let resolve = |p: &Path| dir.join(p);
        let mut problems = Vec::new();
        let mut bad = |k: &str, m: String| problems.push(format!("{k}: {m}"));
        let out = validate(&raw, "https://varco.example", audiences, &resolve, &mut bad);
        (out, problems)
    }

    #[test]
    fn a_valid_client_and_its_defaults() {
        let (o, p) = check(
            "[[client]]\nid = \"app\"\nsecret_file = \"secret\"\nredirect_uris = [\"https://app.example/cb\"]\n",
            &[],
        );
        assert!(p.is_empty(), "{p:?}");
        let o = o.unwrap();
        assert_eq!(o.issuer, "https://varco.example");
        let c = o.client("app").unwrap();
        assert_eq!(c.auth_method, AuthMethod::SecretBasic);
        assert!(c.require_pkce);
        assert_eq!(c.min_loa, Loa::Substantial);
        assert!(
            !c.methods.contains(&Method::Legacy),
            "legacy only when named"
        );
        assert!(
            c.secret
                .as_ref()
                .unwrap()
                .matches(b"0123456789abcdef0123456789abcdef!")
        );
    }

    #[test]
    fn every_problem_of_every_client_is_reported_with_its_key() {
        let (o, p) = check(
            "[[client]]\nid = \"a\"\nsecret_file = \"short\"\nredirect_uris = [\"http://app.example/cb\", \"https://x/#f\"]\n\
             scopes = [\"openid\", \"admin\"]\nmin_loa = \"medium\"\nmethods = [\"spid\", \"passport\"]\n\
             [[client]]\nid = \"a\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\nredirect_uris = [\"https://a/cb\"]\n\
             [[client]]\nid = \"pub\"\ntoken_endpoint_auth_method = \"none\"\nrequire_pkce = false\nredirect_uris = [\"https://a/cb\"]\n\
             [[client]]\nid = \"https://portal.example\"\nsecret_file = \"secret\"\nredirect_uris = [\"https://a/cb\"]\n\
             [[client]]\nid = \"pw\"\nsecret_file = \"secret\"\nsubject_type = \"pairwise\"\nredirect_uris = [\"https://a/cb\"]\n\
             [[client]]\nid = \"svc\"\nsecret_file = \"secret\"\nservice = \"Tributi Locali\"\nredirect_uris = [\"https://a/cb\"]\n",
            &["https://portal.example".to_owned()],
        );
        assert!(o.is_none());
        let all = p.join("\n");
        for want in [
            "oidc.client[0].secret_file: the secret must have at least 32",
            "oidc.client[0].redirect_uris: \"http://app.example/cb\"",
            "oidc.client[0].redirect_uris: \"https://x/#f\"",
            "oidc.client[0].scopes: \"admin\"",
            "oidc.client[0].min_loa",
            "oidc.client[0].methods: \"passport\"",
            "oidc.client[1].id: \"a\" registered twice",
            "oidc.client[1].jwks: required with private_key_jwt",
            "oidc.client[2].require_pkce",
            "oidc.client[3].id: \"https://portal.example\" is also a route's token audience",
            "oidc.client[4].subject_type: pairwise needs oidc.pairwise_salt_file",
            "oidc.client[5].service: \"Tributi Locali\": 1-64 of a-z",
        ] {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
    }
}
