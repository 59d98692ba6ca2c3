//! SPID and CIE over OpenID Connect: `GET /.well-known/openid-federation` (our Entity
//! Configuration), `GET /oidc/login` (authorization request) and `GET /oidc/callback`
//! (authorization response, token exchange, ID token and UserInfo checks, then the session
//! exactly as the ACS opens it: `state::login::complete`).
//!
//! The pending login lives in the same store, under the same browser binding and byte
//! budget as a SAML one: its key is `state`, its `request_xml` is our signed request object
//! (the audit record's "request"), where the `nonce` is read back from. The PKCE verifier
//! is not stored: it is an HMAC of `state` under a key derived from the session key, so
//! only Varco can compute it, and every replica the same.
//!
//! May import: `state`, `config`, `features`, the leaf.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use identity::Loa;
use oidfed::oidc::{self, IdToken, OidcError};
use serde_json::{Map, Value};

use crate::features::admission::heavy::{BUSY, Work};
use crate::features::audit;
use crate::features::federation::http::{get_bearer, post_form};
use crate::features::federation::resolve::{FedError, OidcRp, Resolved};
use crate::features::store::Pending;
use crate::leaf::clock::unix;
use crate::leaf::http::{Body, cookie, html, internal, set};
use crate::leaf::pages;
use crate::leaf::session::{Session, random_hex};
use crate::state::State;
use crate::state::current::current_session;
use crate::state::login::{
    audit_unavailable, complete, login_cookie, login_cookie_value, requested_level,
    store_unavailable, timed_append, unavailable_page,
};

/// The media type of an Entity Configuration.
const ENTITY_STATEMENT: &str = "application/entity-statement+jwt";

/// Longest query string accepted at the callback (a code, a state, `iss`, an error text).
const MAX_CALLBACK_QUERY: usize = 8 * 1024;

/// `GET /.well-known/openid-federation`.
pub fn entity_configuration(state: &State) -> Response<Body> {
    let Some(rp) = &state.oidc else {
        return html(
            StatusCode::NOT_FOUND,
            pages::simple("Pagina non trovata", "Not found", "", ""),
        );
    };
    match rp.entity_configuration(unix((state.clock)())) {
        Ok(jwt) => {
            let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::from(
                jwt.as_bytes().to_vec(),
            )));
            set(&mut r, header::CONTENT_TYPE, ENTITY_STATEMENT);
            set(&mut r, header::CACHE_CONTROL, "max-age=300");
            r
        }
        Err(_) => internal("broker_oidc_entity_configuration"),
    }
}

fn loa(l: saml::Level) -> Loa {
    match l {
        saml::Level::L1 => Loa::Low,
        saml::Level::L2 => Loa::Substantial,
        saml::Level::L3 => Loa::High,
    }
}

/// The PKCE verifier of the login whose `state` is `s`: HMAC-SHA-256 of it under a key
/// derived from the session key (43 characters, the RFC 7636 minimum, full entropy).
fn code_verifier(session_key: &[u8; 32], s: &str) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, session_key);
    let derived = ring::hmac::sign(&k, b"varco oidc pkce v1");
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref());
    URL_SAFE_NO_PAD.encode(ring::hmac::sign(&k, s.as_bytes()).as_ref())
}

fn bad_request(state: &State, code: &'static str, it: &str, en: &str) -> Response<Body> {
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
}

fn op_unavailable(state: &State, e: &FedError) -> Response<Body> {
    let code = e.code();
    tracing::warn!(event = "login_refused", code = %code, detail = %e);
    state
        .metrics
        .logins_refused
        .with_label_values(&[code, ""])
        .inc();
    unavailable_page(code, None)
}

/// `GET /oidc/login?op=<name or entity id>&level=<1|2|3>&return_to=<local path>`.
pub async fn login(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let Some(rp) = state.oidc.clone() else {
        return bad_request(
            state,
            "broker_oidc_disabled",
            "L'accesso OpenID Connect non è attivo.",
            "OpenID Connect sign-in is not enabled.",
        );
    };
    let query = req.uri().query().unwrap_or("");
    let (mut op, mut lvl, mut return_to) = (None, None, None);
    for (k, v) in crate::leaf::form::text_pairs(query.as_bytes()) {
        match k.as_ref() {
            "op" => op = Some(v.into_owned()),
            "level" => lvl = Some(v.into_owned()),
            "return_to" => return_to = Some(v.into_owned()),
            _ => {}
        }
    }
    let unknown = |state| {
        bad_request(
            state,
            "broker_oidc_unknown_op",
            "Il gestore di identità indicato non è tra quelli accettati.",
            "The identity provider named is not one of those accepted.",
        )
    };
    let Some(op) = op.as_deref().and_then(|o| rp.op(o)) else {
        return unknown(state);
    };
    if !rp.config.protocols(op.federation).oidc() {
        return unknown(state);
    }
    let Some(level) = requested_level(lvl.as_deref(), state.config.default_level) else {
        return bad_request(
            state,
            "broker_invalid_level",
            "Livello SPID non valido.",
            "Invalid SPID level.",
        );
    };
    let return_to = return_to.unwrap_or_else(|| "/".into());
    if state.config.return_to(&return_to).is_none() {
        return bad_request(
            state,
            "broker_invalid_return_to",
            "L'indirizzo di ritorno deve essere una pagina di questo sito.",
            "The return address must be a page of this site or of a protected portal.",
        );
    }
    let now = (state.clock)();
    let resolved = match rp.provider(&op.entity_id, unix(now)).await {
        Ok(r) => r,
        Err(e) => return op_unavailable(state, &e),
    };
    if !state.audit.is_up() {
        return audit_unavailable(state, audit::AuditError::Unavailable);
    }
    let (Some(s), Some(nonce), Some(jti)) = (
        random_hex(&state.rng, 20),
        random_hex(&state.rng, 20),
        random_hex(&state.rng, 16),
    ) else {
        return internal("broker_rng");
    };
    let browser = cookie(req, login_cookie(state))
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .or_else(|| random_hex(&state.rng, 16));
    let Some(browser) = browser else {
        return internal("broker_rng");
    };
    let verifier = code_verifier(&state.config.session_key, &s);
    let claims = oidc::default_claims_request();
    let acr = [level.uri()];
    let request = oidc::AuthRequest {
        client_id: &rp.config.entity_id,
        redirect_uri: &rp.config.redirect_uri,
        state: &s,
        nonce: &nonce,
        code_verifier: &verifier,
        acr_values: &acr,
        claims: &claims,
        now: unix(now),
        ttl: state.config.pending_ttl.as_secs(),
        jti: &jti,
    };
    let signed = {
        let rp = rp.clone();
        let provider = resolved.provider.clone();
        let request = OwnedRequest::from(&request);
        state
            .heavy
            .run(Work::Sign, move || {
                let acr: Vec<&str> = request.acr.iter().map(String::as_str).collect();
                oidc::authorization_url(
                    &provider,
                    &request.as_request(&acr),
                    &rp.config.signing_key,
                    &ring::rand::SystemRandom::new(),
                )
            })
            .await
    };
    let (url, request_jwt) = match signed {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return internal(e.code()),
        Err(_) => return state.heavy.busy_page(),
    };
    let stored = state
        .store
        .put_pending(
            s.clone(),
            Pending {
                idp: op.entity_id.clone(),
                level,
                return_to,
                issued_at: now,
                browser: browser.clone(),
                request_xml: request_jwt,
            },
        )
        .await;
    if let Err(e) = stored {
        return store_unavailable(state, e);
    }
    let level_label = level.to_string();
    tracing::info!(event = "login_started", protocol = "oidc", state = %s, idp = %op.entity_id, requested_level = %level_label);
    state
        .metrics
        .logins_started
        .with_label_values(&[op.federation.method().as_str(), &op.entity_id, &level_label])
        .inc();
    let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    match HeaderValue::from_str(&url) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return internal("broker_oidc_url"),
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    let value = login_cookie_value(state, &browser, state.config.pending_ttl.as_secs());
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// An owned copy of an [`oidc::AuthRequest`], to move into the heavy pool.
struct OwnedRequest {
    client_id: String,
    redirect_uri: String,
    state: String,
    nonce: String,
    code_verifier: String,
    acr: Vec<String>,
    claims: Value,
    now: u64,
    ttl: u64,
    jti: String,
}

impl OwnedRequest {
    fn from(r: &oidc::AuthRequest<'_>) -> OwnedRequest {
        OwnedRequest {
            client_id: r.client_id.to_owned(),
            redirect_uri: r.redirect_uri.to_owned(),
            state: r.state.to_owned(),
            nonce: r.nonce.to_owned(),
            code_verifier: r.code_verifier.to_owned(),
            acr: r.acr_values.iter().map(|a| (*a).to_owned()).collect(),
            claims: r.claims.clone(),
            now: r.now,
            ttl: r.ttl,
            jti: r.jti.to_owned(),
        }
    }

    fn as_request<'a>(&'a self, acr: &'a [&'a str]) -> oidc::AuthRequest<'a> {
        oidc::AuthRequest {
            client_id: &self.client_id,
            redirect_uri: &self.redirect_uri,
            state: &self.state,
            nonce: &self.nonce,
            code_verifier: &self.code_verifier,
            acr_values: acr,
            claims: &self.claims,
            now: self.now,
            ttl: self.ttl,
            jti: &self.jti,
        }
    }
}

/// Why a callback was refused; the code is stable (logs, metrics, the page).
struct Failure {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

fn fail(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Failure {
    Failure {
        status,
        code,
        detail: detail.into(),
    }
}

impl From<OidcError> for Failure {
    fn from(e: OidcError) -> Self {
        fail(StatusCode::BAD_REQUEST, e.code(), e.to_string())
    }
}

/// `GET /oidc/callback?code=…&state=…&iss=…` (or `error=…&state=…`).
pub async fn callback(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let browser = cookie(req, login_cookie(state)).map(str::to_owned);
    let previous = current_session(state, req).await;
    let mut evidence = audit::Evidence {
        client: req
            .extensions()
            .get::<crate::leaf::http::Peer>()
            .map(|p| p.0.to_string()),
        ..audit::Evidence::default()
    };
    let query = req.uri().query().unwrap_or("").to_owned();
    match check_response(state, &query, browser.as_deref(), &mut evidence).await {
        Ok((session, return_to)) => {
            let idp = session.idp.clone();
            complete(state, previous, &evidence, session, &return_to, &idp).await
        }
        Err(f) => refused(state, evidence, f).await,
    }
}

async fn refused(state: &State, mut evidence: audit::Evidence, f: Failure) -> Response<Body> {
    let now = (state.clock)();
    evidence.spid_error = None;
    let record = evidence.record(audit::Outcome::Refused { code: f.code }, now);
    if let Err(e) = timed_append(state, now, record).await {
        tracing::warn!(event = "audit_refusal_not_recorded", code = %e.code(), refusal = %f.code);
    }
    let correlation = crate::leaf::logging::request_id()
        .map(|id| id.as_str().to_owned())
        .or_else(|| random_hex(&state.rng, 8))
        .unwrap_or_else(|| "-".into());
    state
        .metrics
        .logins_refused
        .with_label_values(&[f.code, ""])
        .inc();
    if matches!(
        f.code,
        "broker_replay" | "broker_unknown_request" | "broker_browser_mismatch" | "broker_oidc_iss"
    ) {
        state
            .metrics
            .replays_refused
            .with_label_values(&[f.code])
            .inc();
    }
    tracing::info!(event = "login_refused", protocol = "oidc", code = f.code, idp = evidence.idp.as_deref().unwrap_or(""), correlation = %correlation, detail = %f.detail);
    if f.code == BUSY {
        return state.heavy.busy_page();
    }
    if f.status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable_page(f.code, Some(&correlation));
    }
    html(
        f.status,
        pages::login_failed(&pages::Failure {
            code: f.code,
            correlation: &correlation,
            spid_error: None,
        }),
    )
}

/// The parameters of an authorization response, each at most once.
#[derive(Default)]
struct Params {
    code: Option<String>,
    state: Option<String>,
    iss: Option<String>,
    error: Option<String>,
}

fn params(query: &str) -> Result<Params, Failure> {
    let bad = |d: &str| fail(StatusCode::BAD_REQUEST, "broker_oidc_bad_response", d);
    if query.len() > MAX_CALLBACK_QUERY {
        return Err(bad("query string over the limit"));
    }
    let mut p = Params::default();
    for (k, v) in crate::leaf::form::text_pairs(query.as_bytes()) {
        let slot = match k.as_ref() {
            "code" => &mut p.code,
            "state" => &mut p.state,
            "iss" => &mut p.iss,
            "error" => &mut p.error,
            _ => continue,
        };
        if slot.is_some() {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "broker_duplicate_field",
                "a response parameter given twice",
            ));
        }
        *slot = Some(v.into_owned());
    }
    Ok(p)
}

/// The nonce of our own request object (stored by us, so read without verification).
fn our_nonce(request_jwt: &str) -> Option<String> {
    let payload = request_jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_owned)
}

async fn check_response(
    state: &State,
    query: &str,
    browser: Option<&str>,
    evidence: &mut audit::Evidence,
) -> Result<(Session, String), Failure> {
    let store_failure = |e: crate::features::store::StoreError| {
        fail(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::state::login::STORE_UNAVAILABLE,
            format!("login state store: {}", e.code()),
        )
    };
    let Some(rp) = state.oidc.clone() else {
        return Err(fail(
            StatusCode::NOT_FOUND,
            "broker_oidc_disabled",
            "OpenID Connect not enabled",
        ));
    };
    let p = params(query)?;
    let s = p.state.ok_or_else(|| {
        fail(
            StatusCode::BAD_REQUEST,
            "broker_oidc_missing_state",
            "no state (unsolicited responses are refused)",
        )
    })?;
    if s.len() > 64 {
        return Err(fail(
            StatusCode::BAD_REQUEST,
            "broker_unknown_request",
            "state is not one of ours",
        ));
    }
    let pending = state
        .store
        .get_pending(&s)
        .await
        .map_err(store_failure)?
        // Only a pending OIDC login (its request is our request object, carrying the nonce)
        // is answered here: a SAML pending request under the same key is not ours.
        .and_then(|p| our_nonce(&p.request_xml).map(|n| (p, n)))
        .ok_or_else(|| {
            fail(
                StatusCode::BAD_REQUEST,
                "broker_unknown_request",
                "state matches no pending request",
            )
        })?;
    let (pending, nonce) = pending;
    evidence.request_id = Some(s.clone());
    evidence.request_issue_instant = Some(pending.issued_at);
    evidence.request_xml = Some(pending.request_xml.clone());
    evidence.idp = Some(pending.idp.clone());
    if browser != Some(pending.browser.as_str()) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "broker_browser_mismatch",
            "the login was started by another browser",
        ));
    }
    let now = (state.clock)();
    let resolved = rp
        .provider(&pending.idp, unix(now))
        .await
        .map_err(|e| match e {
            FedError::UnknownOp => fail(
                StatusCode::BAD_REQUEST,
                "broker_unknown_idp",
                "the OP of the request is no longer configured",
            ),
            e => fail(StatusCode::SERVICE_UNAVAILABLE, e.code(), e.to_string()),
        })?;
    let method = resolved.op.federation.method();
    evidence.method = Some(method.as_str());
    // RFC 9207 against mix-up: the `iss` parameter, when present, must be this OP; CIE
    // requires it, so its absence is refused for CIE.
    match (&p.iss, resolved.op.federation) {
        (Some(iss), _) if *iss != resolved.provider.issuer => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "broker_oidc_iss",
                "the response names another issuer than the OP the request went to",
            ));
        }
        (None, crate::features::federation::OpFederation::Cie) => {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "broker_oidc_iss",
                "no iss parameter (required by CIE against mix-up)",
            ));
        }
        _ => {}
    }
    // One winner per request, even under concurrent callbacks: a replayed response (or a
    // replayed code) finds nothing.
    if state
        .store
        .take_pending(&s)
        .await
        .map_err(store_failure)?
        .is_none()
    {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "broker_replay",
            "request already consumed",
        ));
    }
    if let Some(e) = &p.error {
        let e: String = e.chars().take(64).collect();
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "broker_oidc_op_error",
            format!("the OP answered error={e}"),
        ));
    }
    let code = p
        .code
        .filter(|c| !c.is_empty() && c.len() <= 2048)
        .ok_or_else(|| {
            fail(
                StatusCode::BAD_REQUEST,
                "broker_oidc_bad_response",
                "no code",
            )
        })?;
    let verifier = code_verifier(&state.config.session_key, &s);
    let (id_token, claims, access_token) =
        exchange(state, &rp, &resolved, &code, &verifier, &s, &nonce).await?;
    evidence.response_b64 = Some(id_token.raw.clone().into_bytes());
    let id_token_only = id_token
        .raw
        .split('~')
        .next()
        .unwrap_or_default()
        .to_owned();
    evidence.name_id = Some(id_token.token.sub.clone());
    evidence.name_qualifier = Some(resolved.provider.issuer.clone());
    evidence.authn_instant = Some(std::time::UNIX_EPOCH + Duration::from_secs(id_token.token.iat));
    let asserted = Loa::from_source(method, &id_token.token.acr)
        .map_err(|e| fail(StatusCode::BAD_REQUEST, "broker_oidc_acr", e.to_string()))?;
    evidence.level = Some(match asserted {
        Loa::Low => 1,
        Loa::Substantial => 2,
        _ => 3,
    });
    if asserted < loa(pending.level) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "broker_oidc_acr",
            "the OP authenticated at a lower level than requested",
        ));
    }
    // One use per ID token, as per SAML assertion: the same token cannot open two sessions.
    let token_id = format!(
        "oidc:{}",
        URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            id_token_only.as_bytes()
        ))
    );
    evidence.assertion_id = Some(token_id.clone());
    if !state
        .store
        .consume_assertion(
            &token_id,
            state.config.pending_ttl + state.config.clock_skew,
        )
        .await
        .map_err(store_failure)?
    {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "broker_replay",
            "ID token already used",
        ));
    }
    revoke_later(&rp, &resolved, access_token, unix(now));
    let sid = random_hex(&state.rng, 16).ok_or_else(|| {
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "broker_rng",
            "no randomness",
        )
    })?;
    let iat = unix(now);
    let principal = identity::normalize(
        oidc::claims_to_attributes(&claims),
        &identity::Source {
            method,
            idp: &resolved.provider.issuer,
            level: &id_token.token.acr,
            auth_time: id_token.token.iat,
            session_id: &sid,
        },
        state.config.access.mapping(method),
    )
    .map_err(|e| fail(StatusCode::BAD_REQUEST, e.code(), e.to_string()))?;
    evidence.sub = Some(principal.sub.clone());
    evidence.profile = Some(principal.profile.as_str());
    let session = Session {
        sid,
        idp: resolved.provider.issuer.clone(),
        name_id: id_token.token.sub.clone(),
        name_qualifier: resolved.provider.issuer.clone(),
        session_index: None,
        assertion_id: token_id,
        iat,
        exp: iat + state.config.session_ttl.as_secs(),
        principal,
        legacy_category: None,
        acting: std::collections::BTreeMap::new(),
    };
    Ok((session, pending.return_to.clone()))
}

/// A validated ID token; `raw` is the ID token and the UserInfo JWS as received, `~`-joined.
struct Checked {
    token: IdToken,
    raw: String,
}

/// The back channel: token request with `private_key_jwt`, ID token checks, UserInfo
/// request and checks. The claims returned are the ID token's overlaid by UserInfo's.
async fn exchange(
    state: &State,
    rp: &std::sync::Arc<OidcRp>,
    resolved: &std::sync::Arc<Resolved>,
    code: &str,
    verifier: &str,
    s: &str,
    nonce: &str,
) -> Result<(Checked, Map<String, Value>, String), Failure> {
    let cfg = &rp.config;
    let now = unix((state.clock)());
    let jti = random_hex(&state.rng, 16).ok_or_else(|| {
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            "broker_rng",
            "no randomness",
        )
    })?;
    let assertion = oidc::client_assertion(
        &cfg.signing_key,
        &cfg.entity_id,
        &resolved.provider.token_endpoint,
        now,
        &jti,
        &state.rng,
    )?;
    let form = oidc::token_request_body(
        &cfg.entity_id,
        code,
        verifier,
        &cfg.redirect_uri,
        s,
        &assertion,
    );
    // The OP refusing what it was sent (a forged or replayed code reaches the token
    // endpoint this way) is the response's fault: a 4xx. An unreachable or failing OP is a
    // 502.
    let backchannel = |e: crate::features::federation::http::CallError| match e {
        crate::features::federation::http::CallError::Status(s) if (400..500).contains(&s) => fail(
            StatusCode::BAD_REQUEST,
            "broker_oidc_grant_refused",
            format!("the OP refused the request: HTTP {s}"),
        ),
        e => fail(StatusCode::BAD_GATEWAY, e.code(), format!("{e:?}")),
    };
    let body = post_form(
        &resolved.provider.token_endpoint,
        form,
        cfg.fetch_timeout,
        oidc::MAX_TOKEN_RESPONSE as u64,
    )
    .await
    .map_err(backchannel)?;
    let tokens = oidc::parse_token_response(body.as_bytes())?;
    let userinfo = get_bearer(
        &resolved.provider.userinfo_endpoint,
        &tokens.access_token,
        cfg.fetch_timeout,
        oidc::userinfo_limits().max_bytes as u64,
    )
    .await
    .map_err(backchannel)?;
    // Signature checks and the RSA decryption run on the heavy pool.
    let job = {
        let (rp, resolved, nonce) = (rp.clone(), resolved.clone(), nonce.to_owned());
        let skew = state.config.clock_skew.as_secs();
        move || -> Result<(Checked, Map<String, Value>, String), OidcError> {
            let token = oidc::validate_id_token(
                &tokens.id_token,
                &resolved.provider,
                &oidc::Expected {
                    client_id: &rp.config.entity_id,
                    nonce: &nonce,
                    access_token: &tokens.access_token,
                    now,
                    skew,
                },
            )?;
            let info = oidc::validate_userinfo(
                &userinfo,
                &rp.config.encryption_key,
                &resolved.provider,
                &token,
                &rp.config.entity_id,
            )?;
            let mut claims = token.claims.clone();
            claims.extend(info.claims);
            Ok((
                Checked {
                    token,
                    // The audit evidence: both signed documents, `~`-joined (a character
                    // neither compact JWS can contain).
                    raw: format!("{}~{}", tokens.id_token, info.jws),
                },
                claims,
                tokens.access_token,
            ))
        }
    };
    let checked = state.heavy.run(Work::Response, job).await.map_err(|r| {
        let status = match r {
            crate::features::admission::heavy::Refused::Busy => StatusCode::SERVICE_UNAVAILABLE,
            crate::features::admission::heavy::Refused::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        };
        fail(status, r.code(), "validation not run: heavy-work pool")
    })?;
    Ok(checked?)
}

/// Varco needs the access token only for the UserInfo call: it is revoked at once, in the
/// background and best effort (a failure is logged; the login does not wait for it).
fn revoke_later(rp: &std::sync::Arc<OidcRp>, resolved: &Resolved, token: String, now: u64) {
    let Some(endpoint) = resolved.provider.revocation_endpoint.clone() else {
        return;
    };
    let Some(jti) = random_hex(&ring::rand::SystemRandom::new(), 16) else {
        return;
    };
    let cfg = rp.config.clone();
    tokio::spawn(async move {
        let Ok(assertion) = oidc::client_assertion(
            &cfg.signing_key,
            &cfg.entity_id,
            &endpoint,
            now,
            &jti,
            &ring::rand::SystemRandom::new(),
        ) else {
            return;
        };
        let form = oidc::revocation_body(&cfg.entity_id, &token, &assertion);
        if let Err(e) = post_form(&endpoint, form, cfg.fetch_timeout, 4096).await {
            tracing::warn!(event = "oidc_revocation_failed", code = %e.code());
        }
    });
}
