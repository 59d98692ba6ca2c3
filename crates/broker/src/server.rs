//! The HTTP surface. Paths are a contract other tests and deployments rely on:
//! `/saml/metadata`, `/saml/metadata/cie`, `/saml/metadata/eidas`, `/saml/login`,
//! `/saml/acs`, `/saml/slo`, `/whoami`, `/healthz`, `/readyz`, `/`, `/login`, `/assets/*`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use ring::rand::SystemRandom;

use crate::audit;
use crate::clock::{Clock, unix};
use crate::config::{Binding, Config};
use crate::pages;
use crate::session::{Purpose, Sealer, Session, random_hex};
use crate::store::{Pending, Store};

/// Largest accepted request body (the ACS form). SPID Responses are 10-30 KB.
const MAX_BODY: usize = 512 * 1024;
/// The cookie binding a login to the browser that started it. Over https it carries the
/// `__Host-` prefix, so no sibling domain or plain-http page can plant one (login CSRF by
/// cookie tossing); plain-http development hosts cannot use the prefix.
pub(crate) fn login_cookie(state: &State) -> &'static str {
    if state.config.cookie_secure {
        "__Host-varco_login"
    } else {
        "varco_login"
    }
}

/// How long a client may take to send the ACS form body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything a request handler needs; shared by all connections.
pub struct State {
    /// Validated configuration (shared: several states may serve one configuration).
    pub config: Arc<Config>,
    /// Pending requests and consumed assertions (kept across reloads).
    pub store: Arc<Store>,
    /// Session cookie sealer (kept across reloads: the session key is restart-only).
    pub sealer: Arc<Sealer>,
    /// Randomness for IDs and nonces.
    pub rng: SystemRandom,
    /// The clock.
    pub clock: Clock,
    /// Opened sessions with their identity headers and tokens (forward-auth path); built
    /// from the configuration, so a reload starts an empty one.
    pub views: crate::forward_auth::SessionViews,
    /// The HTTP client toward upstreams (reverse-proxy routes).
    pub upstreams: crate::proxy::Upstreams,
    /// Trusted IdPs from metadata, swapped by the refresher; read without a lock.
    pub registry: Arc<metadata::Registry>,
    /// The metadata refresher (its per-source statistics feed `/metrics`).
    pub refresher: Arc<crate::registry::Refresher>,
    /// Counters and histograms (`/metrics`), kept across reloads.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The login audit trail: written before any session cookie is sent.
    pub audit: Arc<audit::Sink>,
    /// Failure counters and verification permits of the legacy login (`[legacy]`).
    pub legacy: Option<Arc<crate::legacy::Throttle>>,
}

impl State {
    /// The state for `config` with a given store, metadata refresher, audit sink and clock.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        refresher: Arc<crate::registry::Refresher>,
        audit: audit::Sink,
        clock: Clock,
    ) -> Option<State> {
        let registry = refresher.registry().clone();
        let sealer = Sealer::new(&config.session_key)?;
        let views = crate::forward_auth::SessionViews::new(100_000, config.session_ttl);
        let upstreams = crate::proxy::Upstreams::new(
            config.access.connect_timeout,
            config.access.response_timeout,
        );
        let metrics = crate::metrics::Metrics::new();
        store.bind_metrics(&metrics);
        Some(State {
            store: Arc::new(store),
            sealer: Arc::new(sealer),
            rng: SystemRandom::new(),
            clock,
            views,
            upstreams,
            registry,
            refresher,
            metrics: Arc::new(metrics),
            audit: Arc::new(audit),
            legacy: config
                .legacy
                .as_ref()
                .map(|c| Arc::new(crate::legacy::Throttle::new(c))),
            config,
        })
    }

    /// The state for a reloaded `config`, sharing everything that must outlive a reload
    /// (store, sealer, metadata, metrics, audit) with `self`. What is derived from the
    /// configuration starts anew: the session-view cache (identity headers and tokens per
    /// audience) and the upstream client (its timeouts). See [`crate::reload`].
    pub fn reconfigured(&self, config: Arc<Config>) -> State {
        State {
            views: crate::forward_auth::SessionViews::new(100_000, config.session_ttl),
            upstreams: crate::proxy::Upstreams::new(
                config.access.connect_timeout,
                config.access.response_timeout,
            ),
            store: self.store.clone(),
            sealer: self.sealer.clone(),
            rng: SystemRandom::new(),
            clock: self.clock,
            registry: self.registry.clone(),
            refresher: self.refresher.clone(),
            metrics: self.metrics.clone(),
            audit: self.audit.clone(),
            // The legacy failure counts survive a reload (a reload must not hand a password
            // guesser fresh attempts); a new throttle only when its own settings changed.
            legacy: match (
                &self.legacy,
                self.config.legacy.as_ref(),
                config.legacy.as_ref(),
            ) {
                (Some(t), Some(old), Some(new))
                    if old.throttle_settings() == new.throttle_settings() =>
                {
                    Some(t.clone())
                }
                (_, _, new) => new.map(|c| Arc::new(crate::legacy::Throttle::new(c))),
            },
            config,
        }
    }
}

/// Response body type of every route.
pub(crate) type Body = Full<Bytes>;

/// Paths Varco answers itself, never proxied.
fn reserved(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/metrics" | "/whoami" | "/auth" | "/login" | "/logout"
    ) || path.starts_with("/saml/")
        || path.starts_with("/legacy/")
        || path.starts_with("/.well-known/")
        || path.starts_with("/assets/")
        || path == "/cns/login"
}

/// Handles one request. Never fails: every error becomes a response.
pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<crate::proxy::OutBody>, Infallible> {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let request_id = request_id(&state, &req);
    let span = tracing::info_span!("request", request_id = %request_id);
    let (label, mut response) = crate::logging::with_request_id(
        request_id.clone(),
        route(&state, req, &path).instrument(span),
    )
    .await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    let latency = started.elapsed();
    tracing::info!(
        event = "request",
        request_id = %request_id,
        method = %method,
        route = label,
        status = response.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
    );
    let m = &state.metrics;
    m.http_requests
        .with_label_values(&[
            label,
            crate::metrics::status_label(response.status().as_u16()),
        ])
        .inc();
    m.http_duration
        .with_label_values(&[label])
        .observe(latency.as_secs_f64());
    Ok(response)
}

/// The request's correlation id: the `X-Request-Id` a trusted proxy sent (when well formed),
/// else a fresh random one. A client that is not a trusted proxy cannot choose it, so an id
/// in the logs always names requests of one origin.
fn request_id<B>(state: &State, req: &Request<B>) -> Arc<str> {
    let trusted = req
        .extensions()
        .get::<crate::forward_auth::Peer>()
        .is_some_and(|p| state.config.access.trusts(p.0.ip()));
    if trusted {
        let mut given = req.headers().get_all("x-request-id").iter();
        if let (Some(v), None) = (given.next(), given.next()) {
            if let Some(id) = v
                .to_str()
                .ok()
                .filter(|v| crate::logging::valid_request_id(v))
            {
                return Arc::from(id);
            }
        }
    }
    crate::logging::new_request_id(&state.rng)
}

async fn route(
    state: &State,
    req: Request<Incoming>,
    path: &str,
) -> (&'static str, Response<crate::proxy::OutBody>) {
    if !reserved(path) {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let https = state.config.public_base_url.starts_with("https://");
        let host = crate::access::normalize_host(host, https);
        if let Some(route) = state
            .config
            .access
            .route(&host, path)
            .filter(|r| r.upstream.is_some())
        {
            return ("proxy", crate::proxy::forward(state, route, req).await);
        }
    }
    let label = crate::metrics::route_label(path);
    let response = match (req.method(), path) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metrics") => metrics(state, &req),
        (&Method::GET, "/readyz") if state.registry.is_ready() => text(StatusCode::OK, "ready\n"),
        (&Method::GET, "/readyz") => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: IdP metadata not loaded yet\n",
        ),
        (&Method::GET, "/") => home(state, &req).await,
        (&Method::GET, "/whoami") => whoami(state, &req).await,
        (&Method::GET, "/auth") => crate::forward_auth::auth(state, &req).await,
        (&Method::GET, "/.well-known/jwks.json") => crate::forward_auth::jwks(state),
        (&Method::GET, "/login") => login_page(state, &req),
        (&Method::GET, "/logout") => logout(state, &req).await,
        (&Method::POST, "/logout") => logout_confirmed(state, req).await,
        (&Method::GET, "/saml/login") => login(state, &req).await,
        (&Method::POST, "/saml/acs") => acs(state, req).await,
        (&Method::GET, "/cns/login") => crate::cns::login(state, &req).await,
        (&Method::GET, "/legacy/login") => crate::legacy::form(state, &req),
        (&Method::POST, "/legacy/login") => crate::legacy::submit(state, req).await,
        (&Method::GET | &Method::POST, "/saml/slo") => crate::slo::endpoint(state, req).await,
        (&Method::GET, p) if p.starts_with("/saml/metadata") => metadata(state, p),
        (&Method::GET, p) if p.starts_with("/assets/") => {
            crate::assets::serve(p).unwrap_or_else(not_found)
        }
        (
            _,
            "/healthz"
            | "/readyz"
            | "/metrics"
            | "/"
            | "/whoami"
            | "/saml/login"
            | "/saml/acs"
            | "/cns/login"
            | "/saml/slo"
            | "/auth"
            | "/login"
            | "/logout"
            | "/legacy/login"
            | "/.well-known/jwks.json",
        ) => html(
            StatusCode::METHOD_NOT_ALLOWED,
            pages::simple("Metodo non ammesso", "Method not allowed", "", ""),
        ),
        _ => not_found(),
    };
    (label, crate::proxy::own(response))
}

fn not_found() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        pages::simple("Pagina non trovata", "Page not found", "", ""),
    )
}

// === Routes ===

/// `GET /`: who is signed in, or the login page.
async fn home(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let name = current_session(state, req).await.as_ref().map(display_name);
    crate::choice::home(state, req, name.as_deref())
}

/// `GET /login?level=<1|2|3>&return_to=<url>`: the identity-provider choice, carrying the
/// level a route needs and where to return (checked again by `/saml/login`).
fn login_page(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let mut level = None;
    let mut return_to = None;
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "level" if matches!(v.as_ref(), "1" | "2" | "3") => level = v.parse::<u8>().ok(),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let allow_http = state.config.public_base_url.starts_with("http://");
    if state
        .config
        .access
        .return_to(return_to.as_deref().unwrap_or("/"), allow_http)
        .is_none()
    {
        return html(
            StatusCode::BAD_REQUEST,
            pages::simple(
                "Richiesta non valida",
                "Invalid request",
                "L'indirizzo di ritorno non è tra quelli ammessi.",
                "The return address is not one of those allowed.",
            ),
        );
    }
    crate::choice::page(state, req, "/login", level, return_to.as_deref())
}

/// `GET /metrics`, for peers in `metrics.allow` only.
fn metrics(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let allowed = req
        .extensions()
        .get::<crate::forward_auth::Peer>()
        .is_some_and(|p| {
            state
                .config
                .access
                .metrics_allow
                .iter()
                .any(|n| n.contains(p.0.ip()))
        });
    if !allowed {
        return html(
            StatusCode::FORBIDDEN,
            pages::simple("Accesso non consentito", "Access not allowed", "", ""),
        );
    }
    let body = state.metrics.render(&state.refresher, (state.clock)());
    let mut r = Response::new(Full::new(Bytes::from(body)));
    set(
        &mut r,
        header::CONTENT_TYPE,
        "text/plain; version=0.0.4; charset=utf-8",
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

async fn whoami(state: &State, req: &Request<Incoming>) -> Response<Body> {
    match current_session(state, req).await {
        Some(s) => {
            let body = serde_json::to_string_pretty(&s).unwrap_or_else(|_| "{}".into());
            let mut r = Response::new(Full::new(Bytes::from(body)));
            set(&mut r, header::CONTENT_TYPE, "application/json");
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"{\"error\":\"no_session\"}")));
            *r.status_mut() = StatusCode::UNAUTHORIZED;
            set(&mut r, header::CONTENT_TYPE, "application/json");
            r
        }
    }
}

fn metadata(state: &State, path: &str) -> Response<Body> {
    match state.config.metadata.iter().find(|(p, _)| *p == path) {
        Some((_, xml)) => {
            let mut r = Response::new(Full::new(Bytes::from(xml.clone())));
            set(&mut r, header::CONTENT_TYPE, "application/samlmetadata+xml");
            r
        }
        None => html(
            StatusCode::NOT_FOUND,
            pages::simple("Pagina non trovata", "Page not found", "", ""),
        ),
    }
}

/// `GET /logout[?return_to=<url>]`: ends the session locally first (its ID is refused from
/// now on, the cookie is cleared), then, when the session's IdP publishes a
/// SingleLogoutService, sends it a signed LogoutRequest (see [`crate::slo`]); otherwise shows
/// a page, or returns to `return_to` when allowed.
///
/// A browser that says the navigation came from another site (`Sec-Fetch-Site:
/// cross-site`) gets a confirmation form instead (`POST /logout` with a token sealed for
/// this session): any site can link here, so logging out on a foreign link would let it
/// end citizens' sessions at will. Links from the portal itself (`same-origin`,
/// `same-site`), typed URLs (`none`) and clients that send no such header (older browsers,
/// scripts) log out at once.
async fn logout(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let return_to = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "return_to")
        .map(|(_, v)| v.into_owned());
    let return_to = allowed_return_to(state, return_to.as_deref());
    let session = current_session(state, req).await;
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    match session {
        Some(s) if cross_site => {
            let now = unix((state.clock)());
            let token = LogoutToken {
                sid: s.sid.clone(),
                exp: now + LOGOUT_CONFIRM_TTL,
            };
            let Some(sealed) = state.sealer.seal(Purpose::LogoutForm, &token) else {
                return internal("broker_rng");
            };
            tracing::info!(event = "logout_confirmation_asked", sid = %s.sid);
            let mut r = html(
                StatusCode::OK,
                pages::logout_confirm(&sealed, return_to.as_deref()),
            );
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
        session => end_session(state, session, return_to).await,
    }
}

/// How long a logout confirmation form stays valid, seconds.
const LOGOUT_CONFIRM_TTL: u64 = 600;
/// Largest `POST /logout` body (a token and a return address).
const MAX_LOGOUT_FORM: usize = 4096;

/// The token of a logout confirmation form: which session it may end, until when.
#[derive(serde::Serialize, serde::Deserialize)]
struct LogoutToken {
    sid: String,
    exp: u64,
}

/// `return_to` if the access rules allow it as a destination after logout.
fn allowed_return_to(state: &State, return_to: Option<&str>) -> Option<String> {
    let allow_http = state.config.public_base_url.starts_with("http://");
    return_to
        .and_then(|t| state.config.access.return_to(t, allow_http))
        .map(str::to_owned)
}

/// `POST /logout` (`token`, `return_to`): the confirmation form of [`logout`]. The token must
/// have been sealed for the session this browser holds, and not be expired; otherwise 403
/// `logout_csrf` and the session lives on. Without a session there is nothing to end, and the
/// answer leaves cookies alone.
async fn logout_confirmed(state: &State, req: Request<Incoming>) -> Response<Body> {
    let session = current_session(state, &req).await;
    let collect = Limited::new(req.into_body(), MAX_LOGOUT_FORM).collect();
    let body = match tokio::time::timeout(Duration::from_secs(10), collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return logout_refused("logout_bad_form"),
    };
    let mut token = None;
    let mut return_to = None;
    for (k, v) in form_urlencoded::parse(&body) {
        match k.as_ref() {
            "token" => token = Some(v.into_owned()),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let return_to = allowed_return_to(state, return_to.as_deref());
    // No session: nothing to end, and no cookie is cleared. A foreign page's auto-submitted
    // form arrives without the `SameSite=Lax` session cookie yet could still delete it with
    // a `Set-Cookie` in the answer.
    let Some(session) = session else {
        return signed_out(
            return_to.as_deref(),
            "Non c'è una sessione da chiudere.",
            "There is no session to end.",
        );
    };
    let now = unix((state.clock)());
    if !logout_token_valid(&state.sealer, token.as_deref(), &session.sid, now) {
        tracing::info!(event = "logout_refused", code = %"logout_csrf", sid = %session.sid);
        return logout_refused("logout_csrf");
    }
    end_session(state, Some(session), return_to).await
}

/// Adds the session cookie carrying `sealed` (the whole session lifetime) to `r`.
pub(crate) fn set_session_cookie(state: &State, r: &mut Response<Body>, sealed: &str) {
    session_cookie(state, r, sealed, state.config.session_ttl.as_secs());
}

/// The one place the session cookie's attributes are written (set, or cleared with an empty
/// value and `Max-Age=0`).
fn session_cookie(state: &State, r: &mut Response<Body>, value: &str, max_age: u64) {
    let secure = if state.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        state.config.cookie_name
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Whether `token` is a logout confirmation token sealed for session `sid`, unexpired at
/// `now`.
fn logout_token_valid(sealer: &Sealer, token: Option<&str>, sid: &str, now: u64) -> bool {
    token
        .and_then(|t| sealer.open::<LogoutToken>(Purpose::LogoutForm, t))
        .is_some_and(|t| t.sid == sid && now < t.exp)
}

fn logout_refused(code: &str) -> Response<Body> {
    let mut r = html(
        StatusCode::FORBIDDEN,
        pages::simple(
            "Uscita non confermata",
            "Sign-out not confirmed",
            &format!("La richiesta di uscita non è valida o è scaduta. Codice: {code}"),
            &format!("The sign-out request is invalid or expired. Code: {code}"),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// Ends `session` (when there is one): revoked first, then Single Logout when the IdP
/// offers it; the cookie is cleared in every case.
async fn end_session(
    state: &State,
    session: Option<Session>,
    return_to: Option<String>,
) -> Response<Body> {
    let now = unix((state.clock)());
    let mut single_logout = None;
    if let Some(s) = session {
        // Fail safe: the session is dead here before the IdP hears of it.
        let remaining = Duration::from_secs(s.exp.saturating_sub(now));
        state.store.revoke_session(&s.sid, remaining).await;
        tracing::info!(event = "logout", sid = %s.sid, idp = %s.idp);
        state.metrics.logouts.inc();
        single_logout = crate::slo::start(state, &s, return_to.clone()).await;
    }
    let mut r = single_logout.unwrap_or_else(|| {
        signed_out(
            return_to.as_deref(),
            "La sessione è terminata. Per uscire anche dal gestore di identità, chiudi il browser.",
            "The session has ended. To sign out of the identity provider too, close the browser.",
        )
    });
    session_cookie(state, &mut r, "", 0);
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The end of a logout: a 303 to `return_to` (already checked), or the "signed out" page.
pub(crate) fn signed_out(return_to: Option<&str>, it: &str, en: &str) -> Response<Body> {
    let mut r = match return_to.and_then(|t| HeaderValue::from_str(t).ok()) {
        Some(location) => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r.headers_mut().insert(header::LOCATION, location);
            r
        }
        None => html(
            StatusCode::OK,
            pages::simple("Sei uscito", "Signed out", it, en),
        ),
    };
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// `GET /saml/login?idp=<entityID>&level=<1|2|3>&return_to=<local path>`.
async fn login(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let query = req.uri().query().unwrap_or("");
    let mut idp = None;
    let mut level = None;
    let mut return_to = None;
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "idp" => idp = Some(v.into_owned()),
            "level" => level = Some(v.into_owned()),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let bad = |code: &'static str, it: &str, en: &str| {
        tracing::info!(event = "login_refused", code = %code);
        state
            .metrics
            .logins_refused
            .with_label_values(&[code, ""])
            .inc();
        html(
            StatusCode::BAD_REQUEST,
            pages::simple("Richiesta non valida", "Invalid request", it, en),
        )
    };
    // An entry past its validUntil is refused here, whether or not the refresher has run.
    let Some(entry) = idp.and_then(|id| state.registry.get_valid(&id, (state.clock)())) else {
        return bad(
            "broker_unknown_idp",
            "Il gestore di identità indicato non è tra quelli accettati.",
            "The identity provider named is not one of those accepted.",
        );
    };
    let idp = &entry.descriptor;
    let level = match level.as_deref() {
        None | Some("") => state.config.default_level,
        Some("1") => saml::Level::L1,
        Some("2") => saml::Level::L2,
        Some("3") => saml::Level::L3,
        Some(_) => {
            return bad(
                "broker_invalid_level",
                "Livello SPID non valido.",
                "Invalid SPID level.",
            );
        }
    };
    let return_to = return_to.unwrap_or_else(|| "/".into());
    let allow_http = state.config.public_base_url.starts_with("http://");
    if state
        .config
        .access
        .return_to(&return_to, allow_http)
        .is_none()
    {
        return bad(
            "broker_invalid_return_to",
            "L'indirizzo di ritorno deve essere una pagina di questo sito.",
            "The return address must be a page of this site or of a protected portal.",
        );
    }
    // The configured binding, or the one the IdP offers when it has only the other.
    let (binding, destination) = match (
        state.config.binding,
        idp.sso_redirect_url.as_ref(),
        idp.sso_post_url.as_ref(),
    ) {
        (Binding::Redirect, Some(url), _) | (Binding::Post, Some(url), None) => {
            (Binding::Redirect, url)
        }
        (Binding::Post, _, Some(url)) | (Binding::Redirect, None, Some(url)) => {
            (Binding::Post, url)
        }
        (_, None, None) => return internal("broker_idp_no_endpoint"),
    };
    let Some(id) = random_hex(&state.rng, 20).map(|h| format!("_{h}")) else {
        return internal("broker_rng");
    };
    let browser = cookie(req, login_cookie(state))
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .or_else(|| random_hex(&state.rng, 16));
    let Some(browser) = browser else {
        return internal("broker_rng");
    };
    let now = (state.clock)();
    let request = match saml::AuthnRequest::new(&state.config.sp, destination, &id, level, now) {
        Ok(r) => r,
        Err(e) => return internal(e.code()),
    };
    let stored = state
        .store
        .put_pending(
            id.clone(),
            Pending {
                idp: idp.entity_id.clone(),
                level,
                return_to,
                issued_at: request.issue_instant(),
                browser: browser.clone(),
                request_xml: request.xml().to_owned(),
            },
        )
        .await;
    if let Err(e) = stored {
        return store_unavailable(state, e);
    }
    let level_label = level.to_string();
    tracing::info!(
        event = "login_started",
        authn_request_id = %id,
        idp = %idp.entity_id,
        requested_level = %level_label,
    );
    state
        .metrics
        .logins_started
        .with_label_values(&[
            federation_label(idp.federation),
            &idp.entity_id,
            &level_label,
        ])
        .inc();
    // RelayState is opaque: the return path stays server side with the pending request.
    let relay_state = id;
    let mut response = match binding {
        Binding::Redirect => match request.redirect_url(&relay_state, &state.config.sp_key) {
            Ok(url) => {
                let mut r = Response::new(Full::new(Bytes::new()));
                *r.status_mut() = StatusCode::FOUND;
                match HeaderValue::from_str(&url) {
                    Ok(v) => {
                        r.headers_mut().insert(header::LOCATION, v);
                    }
                    Err(_) => return internal("broker_location"),
                }
                r
            }
            Err(e) => return internal(e.code()),
        },
        Binding::Post => {
            // The form submits itself with a script: allow that one script by its nonce.
            let Some(nonce) = random_hex(&state.rng, 16) else {
                return internal("broker_rng");
            };
            match request.post_form(&relay_state, &state.config.sp_key, Some(&nonce)) {
                Ok(form) => {
                    let mut r = html(StatusCode::OK, form.html);
                    let csp = format!(
                        "default-src 'none'; script-src 'nonce-{nonce}'; base-uri 'none'; \
                         frame-ancestors 'none'"
                    );
                    if let Ok(v) = HeaderValue::from_str(&csp) {
                        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
                    }
                    r
                }
                Err(e) => return internal(e.code()),
            }
        }
    };
    set(&mut response, header::CACHE_CONTROL, "no-store");
    // The IdP posts back cross-site: with https the login cookie must be SameSite=None to
    // come back on that POST; on plain-http development hosts browsers refuse None without
    // Secure, and IdP and SP share a site (localhost), so Lax works there.
    let attrs = if state.config.cookie_secure {
        "; Secure; SameSite=None"
    } else {
        "; SameSite=Lax"
    };
    let max_age = state.config.pending_ttl.as_secs();
    // `__Host-` cookies must have `Path=/`.
    let value = format!(
        "{}={browser}; Path=/; HttpOnly; Max-Age={max_age}{attrs}",
        login_cookie(state)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Why an ACS post was refused; the code is stable (logs, metrics, the page).
pub struct AcsFailure {
    status: StatusCode,
    code: &'static str,
    spid_error: Option<u8>,
    detail: String,
}

impl AcsFailure {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        AcsFailure {
            status,
            code,
            spid_error: None,
            detail: detail.into(),
        }
    }
}

/// `POST /saml/acs`: `SAMLResponse` (base64) and `RelayState`.
async fn acs(state: &State, req: Request<Incoming>) -> Response<Body> {
    let browser = cookie(&req, login_cookie(state)).map(str::to_owned);
    // A new login replaces the browser's previous session (step-up, another identity): the
    // old session ID is ended so a copy of the old cookie opens nothing. Best effort: the
    // Lax session cookie rides along only when the IdP posts from the same site; otherwise
    // the new cookie simply overwrites it in the browser. Fixation is impossible either
    // way: the session ID is always new and chosen here.
    let previous = current_session(state, &req).await;
    let mut evidence = audit::Evidence {
        client: req
            .extensions()
            .get::<crate::forward_auth::Peer>()
            .map(|p| p.0.to_string()),
        ..audit::Evidence::default()
    };
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            let f = AcsFailure::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "broker_body_too_large",
                "request body over the limit or unreadable",
            );
            return audit_refusal(state, evidence, f).await;
        }
        Err(_) => {
            let f = AcsFailure::new(
                StatusCode::REQUEST_TIMEOUT,
                "broker_body_timeout",
                "request body not received in time",
            );
            return audit_refusal(state, evidence, f).await;
        }
    };
    match consume_recorded(state, &body, browser.as_deref(), &mut evidence).await {
        Ok((session, return_to)) => {
            let Some(sealed) = state.sealer.seal(Purpose::Session, &session) else {
                return internal("broker_seal");
            };
            // No session without its durable audit record: fail closed.
            let now = (state.clock)();
            let record = evidence.record(audit::Outcome::Completed { sid: &session.sid }, now);
            if let Err(e) = timed_append(state, now, record).await {
                return audit_unavailable(state, e);
            }
            if let Some(old) = previous {
                let remaining = Duration::from_secs(old.exp.saturating_sub(old.iat));
                state.store.revoke_session(&old.sid, remaining).await;
            }
            state.store.touch_session(&session.sid, session.iat).await;
            // For IdP-initiated logout: the session is found by what the IdP will name. A
            // store failure here costs only that (the login itself is complete and recorded).
            if let Some(index) = &session.session_index {
                if let Err(e) = state
                    .store
                    .index_session_for_logout(
                        &session.idp,
                        &session.name_id,
                        index,
                        &session.sid,
                        state.config.session_ttl,
                    )
                    .await
                {
                    tracing::warn!(event = "logout_index_failed", sid = %session.sid, code = %e.code());
                }
            }
            tracing::info!(event = "login_completed", sid = %session.sid, idp = %session.idp, loa = %session.principal.auth.loa.as_str(), method = %session.principal.auth.method.as_str(), assertion_id = %session.assertion_id);
            let auth = &session.principal.auth;
            state.metrics.login_completed(
                auth.method,
                &session.idp,
                auth.loa,
                session.principal.profile,
                None,
            );
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&return_to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            set_session_cookie(state, &mut r, &sealed);
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
        Err(f) => audit_refusal(state, evidence, f).await,
    }
}

/// Records a refused login, then answers with the refusal page. A sink failure here is
/// logged; the answer stays the refusal (no session is at stake).
async fn audit_refusal(
    state: &State,
    mut evidence: audit::Evidence,
    f: AcsFailure,
) -> Response<Body> {
    let now = (state.clock)();
    evidence.spid_error = f.spid_error;
    let record = evidence.record(audit::Outcome::Refused { code: f.code }, now);
    if let Err(e) = timed_append(state, now, record).await {
        tracing::warn!(event = "audit_refusal_not_recorded", code = %e.code(), refusal = %f.code);
    }
    acs_failed(state, f, &evidence)
}

/// Appends one audit record, timing it and counting failures (`/metrics`).
pub(crate) async fn timed_append(
    state: &State,
    now: std::time::SystemTime,
    record: Vec<u8>,
) -> Result<(), audit::AuditError> {
    let started = std::time::Instant::now();
    let result = state.audit.append(now, record).await;
    state
        .metrics
        .audit_duration
        .observe(started.elapsed().as_secs_f64());
    match result {
        Ok(durable) => {
            if let Some(d) = durable {
                state.metrics.audit_batch.observe(d.batch as f64);
            }
            Ok(())
        }
        Err(e) => {
            state
                .metrics
                .audit_failures
                .with_label_values(&[e.code()])
                .inc();
            Err(e)
        }
    }
}

/// The stable code of a login refused because the store could not answer.
pub const STORE_UNAVAILABLE: &str = "broker_store_unavailable";

/// A login step whose store operation failed: refused (fail closed), 503.
fn store_failure(e: crate::store::StoreError) -> AcsFailure {
    AcsFailure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        STORE_UNAVAILABLE,
        format!("login state store: {}", e.code()),
    )
}

/// 503 for `/saml/login` when the pending request could not be stored.
fn store_unavailable(state: &State, e: crate::store::StoreError) -> Response<Body> {
    state
        .metrics
        .logins_refused
        .with_label_values(&[STORE_UNAVAILABLE, ""])
        .inc();
    tracing::info!(event = "login_refused", code = %STORE_UNAVAILABLE, detail = %e.code());
    unavailable_page(STORE_UNAVAILABLE, None)
}

/// The plain IT/EN "try again later" page with the stable code.
fn unavailable_page(code: &str, correlation: Option<&str>) -> Response<Body> {
    let reference = correlation
        .map(|c| format!(" (rif. {c})"))
        .unwrap_or_default();
    let reference_en = correlation
        .map(|c| format!(" (ref. {c})"))
        .unwrap_or_default();
    let mut r = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::simple(
            "Servizio temporaneamente non disponibile",
            "Service temporarily unavailable",
            &format!(
                "L'accesso non è possibile in questo momento; riprova tra qualche minuto. Codice: {code}{reference}"
            ),
            &format!(
                "Sign-in is not possible right now; please try again in a few minutes. Code: {code}{reference_en}"
            ),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// 503 when the audit record of a completed login could not be made durable.
pub(crate) fn audit_unavailable(state: &State, e: audit::AuditError) -> Response<Body> {
    state
        .metrics
        .logins_refused
        .with_label_values(&[e.code(), ""])
        .inc();
    tracing::info!(event = "login_refused", code = %e.code());
    let mut r = html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::simple(
            "Servizio temporaneamente non disponibile",
            "Service temporarily unavailable",
            &format!(
                "Non è stato possibile registrare l'accesso; riprova più tardi. Codice: {}",
                e.code()
            ),
            &format!(
                "The sign-in could not be recorded; please try again later. Code: {}",
                e.code()
            ),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The ACS decision for one form body: the session to open and where to send the browser,
/// or why not. `browser` is the value of the login cookie the request carried.
pub async fn consume(
    state: &State,
    body: &[u8],
    browser: Option<&str>,
) -> Result<(Session, String), AcsFailure> {
    consume_recorded(state, body, browser, &mut audit::Evidence::default()).await
}

/// [`consume`], filling `evidence` with what the audit record needs as it goes.
pub async fn consume_recorded(
    state: &State,
    body: &[u8],
    browser: Option<&str>,
    evidence: &mut audit::Evidence,
) -> Result<(Session, String), AcsFailure> {
    let bad = |code, detail: &str| AcsFailure::new(StatusCode::BAD_REQUEST, code, detail);
    let encoded = match form_field(body, b"SAMLResponse") {
        Field::One(v) => v,
        Field::Missing => return Err(bad("broker_missing_saml_response", "no SAMLResponse")),
        Field::Repeated => return Err(bad("broker_duplicate_field", "SAMLResponse given twice")),
    };
    let compact: Vec<u8> = encoded
        .into_iter()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    evidence.response_b64 = Some(compact.clone());
    let xml = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| bad("broker_invalid_base64", "SAMLResponse is not base64"))?;

    // The pending request is found by the RelayState Varco sent (the request ID), or else by
    // the Response's InResponseTo. Both are untrusted lookup keys: validation below requires
    // the signed InResponseTo to equal the pending request's ID. RelayState first spares a
    // second parse of the document.
    let relay_state = match form_field(body, b"RelayState") {
        Field::One(v) => String::from_utf8(v).ok(),
        _ => None,
    };
    let found = match relay_state {
        Some(r) => state
            .store
            .get_pending(&r)
            .await
            .map_err(store_failure)?
            .map(|p| (r, p)),
        None => None,
    };
    let (request_id, pending) = match found {
        Some(found) => found,
        None => {
            let request_id = saml::response_in_response_to(&xml).ok_or_else(|| {
                bad(
                    "broker_unsolicited",
                    "no InResponseTo (unsolicited responses are refused)",
                )
            })?;
            let pending = state
                .store
                .get_pending(&request_id)
                .await
                .map_err(store_failure)?
                .ok_or_else(|| {
                    bad(
                        "broker_unknown_request",
                        "InResponseTo matches no pending request",
                    )
                })?;
            (request_id, pending)
        }
    };
    evidence.request_id = Some(request_id.clone());
    evidence.request_issue_instant = Some(pending.issued_at);
    evidence.request_xml = Some(pending.request_xml.clone());
    evidence.idp = Some(pending.idp.clone());
    if browser != Some(pending.browser.as_str()) {
        return Err(AcsFailure::new(
            StatusCode::FORBIDDEN,
            "broker_browser_mismatch",
            "the login was started by another browser",
        ));
    }
    // The current snapshot decides: an IdP dropped by a refresh since the login started is
    // no longer trusted, and a rotated key applies at once; so does its validUntil.
    let entry = state
        .registry
        .get_valid(&pending.idp, (state.clock)())
        .ok_or_else(|| {
            bad(
                "broker_unknown_idp",
                "the IdP of the request is no longer trusted",
            )
        })?;
    let idp = &entry.descriptor;
    evidence.method = Some(match idp.federation {
        saml::Federation::Spid => "spid",
        saml::Federation::Cie => "cie",
        saml::Federation::Eidas => "eidas",
    });
    let now = (state.clock)();
    let expected = saml::Expected {
        request_id: &request_id,
        acs_url: &state.config.sp.acs_url,
        sp_entity_id: &state.config.sp.entity_id,
        requested_level: pending.level,
        idp_entity_id: &pending.idp,
        request_issue_instant: pending.issued_at,
    };
    let assertion = saml::validate_response(&xml, &expected, idp, now, state.config.clock_skew)
        .map_err(|e| {
            let spid_error = match &e {
                saml::Error::Status { spid_error, .. } => *spid_error,
                _ => None,
            };
            let status = if spid_error.is_some() {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            AcsFailure {
                status,
                code: e.code(),
                spid_error,
                detail: e.to_string(),
            }
        })?;
    evidence.response_id = Some(assertion.response_id.clone());
    evidence.assertion_id = Some(assertion.id.clone());
    evidence.idp = Some(assertion.issuer.clone());
    evidence.name_id = Some(assertion.name_id.clone());
    evidence.name_qualifier = Some(assertion.name_qualifier.clone());
    evidence.level = Some(match assertion.level {
        saml::Level::L1 => 1,
        saml::Level::L2 => 2,
        saml::Level::L3 => 3,
    });
    evidence.authn_instant = Some(assertion.authn_instant);
    // One winner per request and per assertion, even under concurrent submits.
    if state
        .store
        .take_pending(&request_id)
        .await
        .map_err(store_failure)?
        .is_none()
    {
        return Err(AcsFailure::new(
            StatusCode::FORBIDDEN,
            "broker_replay",
            "request already consumed",
        ));
    }
    let lifetime = assertion
        .not_on_or_after
        .duration_since(now)
        .unwrap_or(Duration::ZERO)
        + state.config.clock_skew;
    if !state
        .store
        .consume_assertion(&assertion.id, lifetime)
        .await
        .map_err(store_failure)?
    {
        return Err(AcsFailure::new(
            StatusCode::FORBIDDEN,
            "broker_replay",
            "assertion already used",
        ));
    }

    let sid = random_hex(&state.rng, 16).ok_or_else(|| {
        AcsFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "broker_rng",
            "no randomness",
        )
    })?;
    let iat = unix(now);
    let method = match idp.federation {
        saml::Federation::Spid => identity::Method::Spid,
        saml::Federation::Cie => identity::Method::Cie,
        saml::Federation::Eidas => identity::Method::Eidas,
    };
    let principal = identity::normalize(
        assertion.attributes,
        &identity::Source {
            method,
            idp: &assertion.issuer,
            level: assertion.level.uri(),
            auth_time: unix(assertion.authn_instant),
            session_id: &sid,
        },
        state.config.access.mapping(method),
    )
    .map_err(|e| AcsFailure::new(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    evidence.sub = Some(principal.sub.clone());
    evidence.profile = Some(principal.profile.as_str());
    let session = Session {
        sid,
        idp: assertion.issuer,
        name_id: assertion.name_id,
        name_qualifier: assertion.name_qualifier,
        session_index: assertion.session_index,
        assertion_id: assertion.id,
        iat,
        exp: iat + state.config.session_ttl.as_secs(),
        principal,
        legacy_category: None,
    };
    Ok((session, pending.return_to))
}

/// One field of an `application/x-www-form-urlencoded` body.
enum Field {
    Missing,
    One(Vec<u8>),
    Repeated,
}

/// The percent-decoded bytes of field `name` (`+` is a space, as in form encoding). Values
/// stay bytes: a SAMLResponse is base64, and no text decoding is needed to find it.
fn form_field(body: &[u8], name: &[u8]) -> Field {
    let mut found = Field::Missing;
    for pair in body.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if saml::form_decode(key) != name {
            continue;
        }
        if matches!(found, Field::One(_)) {
            return Field::Repeated;
        }
        found = Field::One(saml::form_decode(value));
    }
    found
}

fn acs_failed(state: &State, f: AcsFailure, evidence: &audit::Evidence) -> Response<Body> {
    // The reference on the page is the request id of the log lines and `X-Request-Id`.
    let correlation = crate::logging::request_id()
        .map(|id| id.to_string())
        .or_else(|| random_hex(&SystemRandom::new(), 8))
        .unwrap_or_else(|| "-".into());
    let spid_error = f.spid_error.map(|n| format!("nr{n}")).unwrap_or_default();
    state
        .metrics
        .logins_refused
        .with_label_values(&[f.code, &spid_error])
        .inc();
    if matches!(
        f.code,
        "broker_replay"
            | "broker_unknown_request"
            | "broker_browser_mismatch"
            | "broker_unsolicited"
    ) || f.code.starts_with("saml_in_response_to")
    {
        state
            .metrics
            .replays_refused
            .with_label_values(&[f.code])
            .inc();
    }
    tracing::info!(
        event = "login_refused",
        code = f.code,
        spid_error = %spid_error,
        idp = evidence.idp.as_deref().unwrap_or(""),
        asserted_level = evidence.level.unwrap_or(0),
        correlation = %correlation,
        detail = %f.detail,
    );
    if f.status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable_page(f.code, Some(&correlation));
    }
    let page = pages::login_failed(&pages::Failure {
        code: f.code,
        correlation: &correlation,
        spid_error: f.spid_error,
    });
    html(f.status, page)
}

// === Helpers ===

fn federation_label(f: saml::Federation) -> &'static str {
    match f {
        saml::Federation::Spid => "spid",
        saml::Federation::Cie => "cie",
        saml::Federation::Eidas => "eidas",
    }
}

pub(crate) async fn current_session<B>(state: &State, req: &Request<B>) -> Option<Session> {
    let now = unix((state.clock)());
    crate::forward_auth::view(state, req, now)
        .await
        .map(|v| v.session.clone())
}

fn display_name(s: &Session) -> String {
    let p = &s.principal;
    match (&p.given_name, &p.family_name, &p.legal_person) {
        (Some(n), Some(f), _) => format!("{n} {f}"),
        (_, _, Some(l)) if l.company_name.is_some() => l.company_name.clone().unwrap_or_default(),
        _ => p.sub.clone(),
    }
}

/// The value of cookie `name`, when the request carries exactly one. Two cookies of the same
/// name mean one was planted (from a sibling domain or another path): neither is believed.
pub(crate) fn cookie<'r, B>(req: &'r Request<B>, name: &str) -> Option<&'r str> {
    let mut found = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v);
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

pub(crate) fn set(r: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
    r.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, "text/plain; charset=utf-8");
    r
}

pub(crate) fn html(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(&mut r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(&mut r, header::X_FRAME_OPTIONS, "DENY");
    // Pages load their style and icons from /assets only, and run no script.
    set(
        &mut r,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
    );
    r
}

pub(crate) fn internal(code: &str) -> Response<Body> {
    tracing::error!(event = "internal_error", code = %code);
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::simple(
            "Errore interno",
            "Internal error",
            "Si è verificato un errore. Riprova più tardi.",
            "Something went wrong. Please try again later.",
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::{Field, LogoutToken, Purpose, Sealer, form_field, logout_token_valid};

    #[test]
    fn logout_tokens_open_only_for_their_session_before_they_expire() {
        let sealer = Sealer::new(&[7; 32]).unwrap();
        let token = |sid: &str, exp| {
            let t = LogoutToken {
                sid: sid.into(),
                exp,
            };
            sealer.seal(Purpose::LogoutForm, &t).unwrap()
        };
        let good = token("s1", 1_000);
        assert!(logout_token_valid(&sealer, Some(&good), "s1", 999));
        assert!(
            !logout_token_valid(&sealer, Some(&good), "s1", 1_000),
            "expired"
        );
        assert!(
            !logout_token_valid(&sealer, Some(&good), "s2", 999),
            "another session"
        );
        assert!(!logout_token_valid(&sealer, None, "s1", 999));
        assert!(!logout_token_valid(&sealer, Some("AAAA"), "s1", 999));
        // A sealed value of another purpose (here a session-cookie seal of the same shape)
        // does not open as a logout token.
        let other = sealer
            .seal(
                Purpose::Session,
                &LogoutToken {
                    sid: "s1".into(),
                    exp: 1_000,
                },
            )
            .unwrap();
        assert!(!logout_token_valid(&sealer, Some(&other), "s1", 999));
        // Another key.
        let foreign = Sealer::new(&[8; 32]).unwrap();
        assert!(!logout_token_valid(&foreign, Some(&good), "s1", 999));
    }

    #[test]
    fn form_fields_decode_like_form_urlencoded() {
        assert_eq!(saml::form_decode(b"a%2Bb+c%2f%3D%zz%"), b"a+b c/=%zz%");
        let body = b"RelayState=_r1&SAMLResponse=PGEv%0APg%3D%3D&x=1";
        assert!(matches!(form_field(body, b"SAMLResponse"), Field::One(v) if v == b"PGEv\nPg=="));
        assert!(matches!(form_field(body, b"Nope"), Field::Missing));
        assert!(matches!(form_field(b"a=1&%61=2", b"a"), Field::Repeated));
        assert!(matches!(form_field(b"a", b"a"), Field::One(v) if v.is_empty()));
    }
}
