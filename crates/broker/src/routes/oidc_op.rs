//! Varco as an OpenID Provider (issue 22): `/.well-known/openid-configuration`, `/oidc/jwks`,
//! `/oidc/authorize`, `/oidc/token`, `/oidc/userinfo`, `/oidc/end_session`.
//!
//! The rules live in the pure `oidc` crate; this module reads requests, keeps codes, grants
//! and tokens in the store (`features::oidc_op::records`), signs with the `[token]` keys, and
//! writes the audit record of every token issued. Not configured (`[oidc]` absent): 404.
//!
//! May import: `state`, `config`, `features`, the leaf.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use identity::Loa;
use oidc::authorize::{SessionCheck, check_session};
use oidc::token::{Endpoint, Grant as TokenGrant};
use oidc::{AuthRequest, Client, ClientAuthFailure, Error, Params, Scope, Scopes};
use serde_json::{Value, json};

use crate::features::oidc_op::{Oidc, records};
use crate::leaf::clock::unix;
use crate::leaf::form::{Mode, decode, encode, text_pairs};
use crate::leaf::http::{Body, html, internal, not_found, set};
use crate::leaf::pages;
use crate::leaf::session::{Purpose, random_hex};
use crate::state::State;
use crate::state::acting::{Outcome, Subject, again, refusal_page, resolve_service};
use crate::state::current::view;
use crate::state::views::{spid_level, step_up_url};

/// Largest token request body: a client assertion and a few parameters.
const MAX_TOKEN_BODY: usize = 16 * 1024;
/// How long a client may take to send it.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest authorization query kept while the person logs in.
const MAX_QUERY: usize = 4096;
/// Longest sealed request carried in `resume` (the whole return address must stay under the
/// login's 1 KiB `return_to` bound); longer ones are kept in the store.
const MAX_SEALED_REQUEST: usize = 900;

fn count(state: &State, endpoint: &str, outcome: &str) {
    state
        .metrics
        .oidc_requests
        .with_label_values(&[endpoint, outcome])
        .inc();
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, "application/json");
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The OAuth error answer of the token and UserInfo endpoints (RFC 6749 §5.2).
fn oauth_error(state: &State, endpoint: &str, e: &Error) -> Response<Body> {
    count(state, endpoint, e.code());
    tracing::info!(event = "oidc_refused", endpoint = %endpoint, code = %e.code());
    let status = match e {
        Error::ClientAuth(_) | Error::AccessToken => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = json_response(
        status,
        &json!({ "error": e.oauth(), "error_description": e.to_string() }),
    );
    let challenge = match e {
        Error::ClientAuth(_) => Some("Basic realm=\"varco\"".to_owned()),
        Error::AccessToken => Some("Bearer error=\"invalid_token\"".to_owned()),
        _ => None,
    };
    if let Some(v) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn store_error(
    state: &State,
    endpoint: &str,
    e: crate::features::store::StoreError,
) -> Response<Body> {
    count(state, endpoint, e.code());
    tracing::warn!(event = "oidc_store_failed", endpoint = %endpoint, code = %e.code());
    crate::state::login::unavailable_page(e.code(), None)
}

/// `GET /.well-known/openid-configuration`.
pub fn discovery(state: &State) -> Response<Body> {
    let Some(oidc) = &state.config.oidc else {
        return not_found();
    };
    let alg = state
        .config
        .access
        .keys
        .active()
        .map_or("ES256", |k| k.algorithm().as_str());
    let mut r = json_response(
        StatusCode::OK,
        &oidc::discovery::document(&oidc.issuer, alg),
    );
    set(&mut r, header::CACHE_CONTROL, "public, max-age=300");
    r
}

/// `GET /oidc/jwks`: the `[token]` key set, with its rotation.
pub fn jwks(state: &State) -> Response<Body> {
    if state.config.oidc.is_none() {
        return not_found();
    }
    let now = unix((state.clock)());
    let body = state.config.access.keys.jwks(now).to_string();
    let mut r = Response::new(Full::new(Bytes::from(body)));
    set(&mut r, header::CONTENT_TYPE, "application/jwk-set+json");
    set(&mut r, header::CACHE_CONTROL, "public, max-age=300");
    r
}

fn error_page(state: &State, e: &Error) -> Response<Body> {
    count(state, "authorize", e.code());
    tracing::info!(event = "oidc_refused", endpoint = "authorize", code = %e.code());
    let mut r = html(
        StatusCode::BAD_REQUEST,
        pages::simple(
            "Richiesta non valida",
            "Invalid request",
            &format!(
                "L'applicazione ha inviato una richiesta di accesso non valida ({}).",
                e.code()
            ),
            &format!(
                "The application sent an invalid sign-in request ({}).",
                e.code()
            ),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// `redirect_uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    let mut sep = if uri.contains('?') { '&' } else { '?' };
    for (k, v) in pairs {
        out.push(sep);
        out.push_str(k);
        out.push('=');
        out.push_str(&encode(v));
        sep = '&';
    }
    out
}

fn redirect(location: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(location) {
        Ok(v) => {
            r.headers_mut().insert(header::LOCATION, v);
        }
        Err(_) => return internal("oidc_location"),
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The error redirect of the authorization endpoint, with `state` and `iss` (RFC 9207).
fn redirect_error(
    state: &State,
    oidc: &Oidc,
    redirect_uri: &str,
    st: Option<&str>,
    e: &Error,
) -> Response<Body> {
    count(state, "authorize", e.code());
    tracing::info!(event = "oidc_refused", endpoint = "authorize", code = %e.code());
    let mut pairs = vec![("error", e.oauth()), ("error_description", e.code())];
    if let Some(s) = st {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &oidc.issuer));
    redirect(&with_query(redirect_uri, &pairs))
}

/// `GET /oidc/authorize`: checks the request, then issues a code for the current session, or
/// sends the browser to log in (no session, `prompt=login`, `max_age`) or to step up (level
/// too low), coming back here through `?resume=<id>`.
pub async fn authorize(state: &State, req: &Request<Incoming>) -> Response<Body> {
    authorize_with(state, req, req.uri().query().unwrap_or("")).await
}

/// `POST /oidc/authorize` (OpenID Connect Core §3.1.2.1: GET and POST): the form body is
/// the request, read within the same bounds as the query of a GET.
pub async fn authorize_post(state: &State, req: Request<Incoming>) -> Response<Body> {
    if state.config.oidc.is_none() {
        return not_found();
    }
    let (parts, body) = req.into_parts();
    let collect = Limited::new(body, MAX_QUERY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return error_page(state, &Error::TooLarge),
    };
    let Ok(form) = std::str::from_utf8(&body) else {
        return error_page(state, &Error::Invalid { name: "other" });
    };
    let req = Request::from_parts(parts, ());
    authorize_with(state, &req, form).await
}

async fn authorize_with<B>(state: &State, req: &Request<B>, raw_query: &str) -> Response<Body> {
    let Some(oidc) = &state.config.oidc else {
        return not_found();
    };
    let now = unix((state.clock)());
    // A resumed request: the query kept when the login started, and when that was.
    let resumed = text_pairs(raw_query.as_bytes())
        .find(|(k, _)| k == "resume")
        .map(|(_, v)| v.into_owned());
    let waiting_ttl = (state.config.pending_ttl * 4).as_secs();
    let (query, waiting_id, fresh_after) = match resumed {
        // Kept in the store (a request too long to travel sealed).
        Some(id) if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
            match state.store.get_record(records::REQUEST, &id).await {
                Ok(Some(b)) => match records::decode::<records::Waiting>(&b) {
                    Some(w) => (w.query, Some(id), Some(w.created)),
                    None => return internal("oidc_corrupt_request"),
                },
                Ok(None) => return error_page(state, &Error::Invalid { name: "other" }),
                Err(e) => return store_error(state, "authorize", e),
            }
        }
        // Sealed into the return address itself: nothing stored for a browser that has not
        // logged in yet.
        Some(sealed) => match state
            .sealer
            .open::<records::Waiting>(Purpose::OidcRequest, &sealed)
        {
            Some(w) if w.created.saturating_add(waiting_ttl) >= now => {
                (w.query, Some(sealed), Some(w.created))
            }
            _ => return error_page(state, &Error::Invalid { name: "other" }),
        },
        None => (raw_query.to_owned(), None, None),
    };
    if query.len() > MAX_QUERY {
        return error_page(state, &Error::TooLarge);
    }
    let params = match Params::new(text_pairs(query.as_bytes())) {
        Ok(p) => p,
        Err(e) => return error_page(state, &e),
    };
    let (request, client) = match AuthRequest::parse(&params, |id| oidc.client(id)) {
        Ok(x) => x,
        Err(refusal) => {
            return match refusal.target {
                Some(t) => redirect_error(
                    state,
                    oidc,
                    &t.redirect_uri,
                    t.state.as_deref(),
                    &refusal.error,
                ),
                None => error_page(state, &refusal.error),
            };
        }
    };
    let back = |e: &Error| {
        redirect_error(
            state,
            oidc,
            &request.redirect_uri,
            request.state.as_deref(),
            e,
        )
    };
    let current = view(state, req, now).await;
    let session = current.as_ref().map(|v| &v.session);
    if let Some(s) = session {
        if !client.allows_method(s.principal.auth.method) {
            return back(&Error::MethodNotAllowed);
        }
    }
    let decision = check_session(
        &request,
        session.map(|s| oidc::authorize::Current {
            loa: s.principal.auth.loa,
            auth_time: s.principal.auth.auth_time,
            started: s.iat,
        }),
        fresh_after,
        now,
    );
    // Keep the request while the person logs in (or chooses whom to act for); come back
    // through `resume`: sealed into the address when it fits the return address' bound,
    // else in the store.
    let query_ref = &query;
    let resume_to = |waiting_id: Option<String>| async move {
        let id = match waiting_id {
            Some(id) => id,
            None => {
                let w = records::Waiting {
                    query: query_ref.clone(),
                    created: now,
                };
                match state.sealer.seal(Purpose::OidcRequest, &w) {
                    Some(sealed) if sealed.len() <= MAX_SEALED_REQUEST => sealed,
                    _ => {
                        let Some(id) = random_hex(&state.rng, 16) else {
                            return Err(internal("broker_rng"));
                        };
                        let Some(bytes) = records::encode(&w) else {
                            return Err(internal("oidc_encode"));
                        };
                        if let Err(e) = state
                            .store
                            .put_record(
                                records::REQUEST,
                                &id,
                                bytes,
                                Duration::from_secs(waiting_ttl),
                            )
                            .await
                        {
                            return Err(store_error(state, "authorize", e));
                        }
                        id
                    }
                }
            }
        };
        Ok(encode(&format!(
            "{}?resume={id}",
            oidc::discovery::paths::AUTHORIZE
        )))
    };
    let resume_to = &resume_to;
    let waiting_ref = &waiting_id;
    let login_at = |loa: Option<Loa>| async move {
        let return_to = match resume_to(waiting_ref.clone()).await {
            Ok(r) => r,
            Err(resp) => return resp,
        };
        let base = &state.config.public_base_url;
        // Logging in again (prompt=login, max_age) keeps the session's level: the new
        // session replaces it and must not open less than it did.
        let level = loa.unwrap_or_else(|| {
            session.map_or(request.min_loa, |s| {
                request.min_loa.max(s.principal.auth.loa)
            })
        });
        count(state, "authorize", "login");
        match session {
            // The same IdP again (or the choice page for a legacy session), as `/auth` does.
            Some(s) => redirect(&step_up_url(base, s, level, &return_to)),
            None => redirect(&format!(
                "{base}/login?level={}&return_to={return_to}",
                spid_level(level)
            )),
        }
    };
    match decision {
        Err(e) => back(&e),
        Ok(SessionCheck::Login) => login_at(None).await,
        Ok(SessionCheck::StepUp(loa)) => login_at(Some(loa)).await,
        Ok(SessionCheck::Issue) => {
            let Some(s) = session else {
                return internal("oidc_no_session");
            };
            // Whom the client is told about: the person, or whom they act for on the
            // client's service (issue 24), checked against its source now, as `/auth` does.
            let service = oidc.service_of(&client.id);
            let return_to = match service {
                Some(_) => match resume_to(waiting_id.clone()).await {
                    Ok(r) => r,
                    Err(resp) => return resp,
                },
                None => String::new(),
            };
            let acting = match resolve_service(state, s, service, &return_to, now).await {
                Outcome::Go(Subject::Own) => None,
                Outcome::Go(Subject::Acting(a)) => {
                    let rep = a.acting.representation();
                    Some(records::ActingRef {
                        service: service.unwrap_or_default().to_owned(),
                        source: rep.source().to_owned(),
                        reference: rep.reference().to_owned(),
                    })
                }
                Outcome::Choose(url) => {
                    count(state, "authorize", "represent_chooser");
                    return redirect(&url);
                }
                Outcome::Refused(r) => {
                    count(state, "authorize", r.code);
                    return refusal_page(&r, r.status);
                }
            };
            issue_code(state, oidc, &request, client, s, acting).await
        }
    }
}

async fn issue_code(
    state: &State,
    oidc: &Oidc,
    request: &AuthRequest,
    client: &Client,
    session: &crate::leaf::session::Session,
    acting: Option<records::ActingRef>,
) -> Response<Body> {
    let (Some(code), Some(grant)) = (random_code(state), random_hex(&state.rng, 16)) else {
        return internal("broker_rng");
    };
    let record = records::Code {
        grant,
        client_id: client.id.clone(),
        redirect_uri: request.redirect_uri.clone(),
        challenge: request.code_challenge.clone(),
        nonce: request.nonce.clone(),
        scopes: request.scopes.bits(),
        sid: session.sid.clone(),
        session_exp: session.exp,
        principal: session.principal.clone(),
        acting,
    };
    let Some(bytes) = records::encode(&record) else {
        return internal("oidc_encode");
    };
    if let Err(e) = state
        .store
        .put_record(
            records::CODE,
            &records::digest_key(&code),
            bytes,
            oidc.code_ttl,
        )
        .await
    {
        return store_error(state, "authorize", e);
    }
    count(state, "authorize", "ok");
    tracing::info!(event = "oidc_code_issued", client = %client.id, sid = %session.sid);
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &request.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", &oidc.issuer));
    redirect(&with_query(&request.redirect_uri, &pairs))
}

/// 256 random bits, base64url: codes and tokens.
fn random_code(state: &State) -> Option<String> {
    use base64::Engine as _;
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 32];
    state.rng.fill(&mut b).ok()?;
    Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// The decoded `Authorization: Basic` pair (each half form-decoded, RFC 6749 §2.3.1);
/// `Err` for a header that is present but not a usable Basic pair.
fn basic_credentials<B>(req: &Request<B>) -> Result<Option<(String, String)>, Error> {
    use base64::Engine as _;
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let (Some(v), None) = (values.next(), values.next()) else {
        return if req.headers().contains_key(header::AUTHORIZATION) {
            Err(Error::ClientAuth(ClientAuthFailure::Multiple))
        } else {
            Ok(None)
        };
    };
    let bad = Error::ClientAuth(ClientAuthFailure::Secret);
    let v = v.to_str().map_err(|_| bad.clone())?;
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return Err(bad);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad.clone())?;
    let colon = raw
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| bad.clone())?;
    let text = |b: &[u8]| {
        decode(b, Mode::Form)
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| bad.clone())
    };
    Ok(Some((text(&raw[..colon])?, text(&raw[colon + 1..])?)))
}

/// `POST /oidc/token`. Generic over the body so the benchmark can call it in process.
pub async fn token<B>(state: &State, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    const EP: &str = "token";
    let Some(oidc) = &state.config.oidc else {
        return not_found();
    };
    if req.method() != Method::POST {
        return oauth_error(state, EP, &Error::Invalid { name: "other" });
    }
    let basic = match basic_credentials(&req) {
        Ok(b) => b,
        Err(e) => return oauth_error(state, EP, &e),
    };
    let collect = Limited::new(req.into_body(), MAX_TOKEN_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => return oauth_error(state, EP, &Error::TooLarge),
    };
    let params = match Params::new(text_pairs(&body)) {
        Ok(p) => p,
        Err(e) => return oauth_error(state, EP, &e),
    };
    let now = unix((state.clock)());
    let token_endpoint = oidc.token_endpoint();
    let authenticated = match oidc::token::authenticate(
        &params,
        basic.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
        |id| oidc.client(id),
        Endpoint {
            issuer: &oidc.issuer,
            token_endpoint: &token_endpoint,
        },
        now,
    ) {
        Ok(a) => a,
        Err(e) => return oauth_error(state, EP, &e),
    };
    let client = authenticated.client;
    if let Some((jti, exp)) = &authenticated.assertion_jti {
        // One use per assertion id and client, remembered until the assertion expires.
        let id = format!("oidc-jti\0{}\0{jti}", client.id);
        let ttl = Duration::from_secs(exp.saturating_sub(now) + oidc::token::SKEW);
        match state.store.consume_assertion(&id, ttl).await {
            Ok(true) => {}
            Ok(false) => {
                return oauth_error(
                    state,
                    EP,
                    &Error::ClientAuth(ClientAuthFailure::AssertionReplay),
                );
            }
            Err(e) => return store_error(state, EP, e),
        }
    }
    let grant = match TokenGrant::parse(&params) {
        Ok(g) => g,
        Err(e) => return oauth_error(state, EP, &e),
    };
    match grant {
        TokenGrant::Code {
            code,
            redirect_uri,
            code_verifier,
        } => {
            exchange_code(
                state,
                oidc,
                client,
                &code,
                &redirect_uri,
                code_verifier.as_deref(),
                now,
            )
            .await
        }
        TokenGrant::Refresh { refresh_token } => {
            refresh(state, oidc, client, &refresh_token, now).await
        }
    }
}

/// Revokes grant `grant` (all tokens issued from it), after a replayed code or a reused
/// refresh token.
async fn revoke_grant(state: &State, grant: &str, why: &'static str) {
    match state.store.delete_record(records::GRANT, grant).await {
        Ok(()) => tracing::warn!(event = "oidc_grant_revoked", code = %why, grant = %grant),
        Err(e) => {
            tracing::error!(event = "oidc_grant_revoke_failed", code = %e.code(), grant = %grant)
        }
    }
}

async fn exchange_code(
    state: &State,
    oidc: &Oidc,
    client: &Client,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
    now: u64,
) -> Response<Body> {
    const EP: &str = "token";
    let key = records::digest_key(code);
    let taken = match state.store.take_record(records::CODE, &key).await {
        Ok(t) => t,
        Err(e) => return store_error(state, EP, e),
    };
    let Some(record) = taken.and_then(|b| records::decode::<records::Code>(&b)) else {
        // Unknown, expired, or used: a code seen before names the grant to revoke
        // (RFC 6749 §4.1.2, "the authorization server ... SHOULD revoke").
        match state.store.get_record(records::CODE_USED, &key).await {
            Ok(Some(grant)) => {
                let grant = String::from_utf8_lossy(&grant).into_owned();
                revoke_grant(state, &grant, "oidc.code_replayed").await;
                count(state, EP, "oidc.code_replayed");
            }
            Ok(None) => {}
            Err(e) => return store_error(state, EP, e),
        }
        return oauth_error(state, EP, &Error::Grant);
    };
    // Used from now on, whatever follows: a code is good for one attempt. Remembered as
    // long as the access tokens it gave live (a replay then still revokes the grant, its
    // refresh tokens included), at least ten code lifetimes.
    let used_ttl = Duration::from_secs(oidc.access_token_ttl).max(oidc.code_ttl * 10);
    if let Err(e) = state
        .store
        .put_record(
            records::CODE_USED,
            &key,
            record.grant.clone().into_bytes(),
            used_ttl,
        )
        .await
    {
        return store_error(state, EP, e);
    }
    if record.client_id != client.id || record.redirect_uri != redirect_uri {
        return oauth_error(state, EP, &Error::Grant);
    }
    if let Err(e) = oidc::token::check_pkce(record.challenge.as_deref(), verifier) {
        return oauth_error(state, EP, &e);
    }
    if !session_live(state, &record.sid, record.session_exp, now).await {
        return oauth_error(state, EP, &Error::Grant);
    }
    let grant = records::Grant {
        client_id: record.client_id,
        scopes: record.scopes,
        sid: record.sid,
        session_exp: record.session_exp,
        principal: record.principal,
        acting: record.acting,
    };
    issue_tokens(
        state,
        oidc,
        client,
        &record.grant,
        &grant,
        record.nonce.as_deref(),
        now,
        "authorization_code",
    )
    .await
}

/// Whether broker session `sid` is still live: not past its expiry, not ended.
async fn session_live(state: &State, sid: &str, exp: u64, now: u64) -> bool {
    exp > now
        && !matches!(
            state.store.peek_session(sid).await,
            crate::features::store::Activity::Revoked
        )
}

async fn refresh(
    state: &State,
    oidc: &Oidc,
    client: &Client,
    token: &str,
    now: u64,
) -> Response<Body> {
    const EP: &str = "token";
    let key = records::digest_key(token);
    let taken = match state.store.take_record(records::REFRESH, &key).await {
        Ok(t) => t,
        Err(e) => return store_error(state, EP, e),
    };
    let Some(grant_id) = taken.map(|b| String::from_utf8_lossy(&b).into_owned()) else {
        // A rotated-out refresh token used again: someone else holds a copy; the whole
        // family (the grant) is revoked (RFC 9700 §4.14.2).
        match state.store.get_record(records::REFRESH_USED, &key).await {
            Ok(Some(grant)) => {
                let grant = String::from_utf8_lossy(&grant).into_owned();
                revoke_grant(state, &grant, "oidc.refresh_reused").await;
                count(state, EP, "oidc.refresh_reused");
            }
            Ok(None) => {}
            Err(e) => return store_error(state, EP, e),
        }
        return oauth_error(state, EP, &Error::Grant);
    };
    let used_ttl = Duration::from_secs(oidc.refresh_token_ttl);
    if let Err(e) = state
        .store
        .put_record(
            records::REFRESH_USED,
            &key,
            grant_id.clone().into_bytes(),
            used_ttl,
        )
        .await
    {
        return store_error(state, EP, e);
    }
    let grant = match state.store.get_record(records::GRANT, &grant_id).await {
        Ok(Some(b)) => records::decode::<records::Grant>(&b),
        Ok(None) => None,
        Err(e) => return store_error(state, EP, e),
    };
    let Some(grant) = grant else {
        return oauth_error(state, EP, &Error::Grant);
    };
    if grant.client_id != client.id
        || !session_live(state, &grant.sid, grant.session_exp, now).await
    {
        return oauth_error(state, EP, &Error::Grant);
    }
    issue_tokens(
        state,
        oidc,
        client,
        &grant_id,
        &grant,
        None,
        now,
        "refresh_token",
    )
    .await
}

/// Stores the grant and its tokens, signs the ID token, appends the audit record, answers.
#[allow(clippy::too_many_arguments)]
async fn issue_tokens(
    state: &State,
    oidc: &Oidc,
    client: &Client,
    grant_id: &str,
    grant: &records::Grant,
    nonce: Option<&str>,
    now: u64,
    kind: &'static str,
) -> Response<Body> {
    const EP: &str = "token";
    // An acting grant: the representation asked of its source again; no longer holding (or
    // no answer), no tokens.
    let acting = match &grant.acting {
        None => None,
        Some(r) => match again(
            state,
            &grant.principal,
            &r.service,
            &r.source,
            &r.reference,
            now,
        )
        .await
        {
            Ok(a) => Some(a),
            Err(code) => {
                count(state, EP, code);
                return oauth_error(state, EP, &Error::Grant);
            }
        },
    };
    let Some(access) = random_code(state) else {
        return internal("broker_rng");
    };
    let scopes = Scopes::from_bits(grant.scopes);
    let refresh = if client.refresh_tokens && scopes.contains(Scope::OfflineAccess) {
        match random_code(state) {
            Some(r) => Some(r),
            None => return internal("broker_rng"),
        }
    } else {
        None
    };
    // Nothing outlives the session it came from.
    let remaining = grant.session_exp.saturating_sub(now);
    let at_ttl = oidc.access_token_ttl.min(remaining);
    let grant_ttl = Duration::from_secs(
        oidc.access_token_ttl
            .max(if refresh.is_some() {
                oidc.refresh_token_ttl
            } else {
                0
            })
            .min(remaining),
    );
    let Some(grant_bytes) = records::encode(grant) else {
        return internal("oidc_encode");
    };
    let store = &state.store;
    let writes = async {
        store
            .put_record(records::GRANT, grant_id, grant_bytes, grant_ttl)
            .await?;
        store
            .put_record(
                records::ACCESS,
                &records::digest_key(&access),
                grant_id.as_bytes().to_vec(),
                Duration::from_secs(at_ttl),
            )
            .await?;
        if let Some(r) = &refresh {
            store
                .put_record(
                    records::REFRESH,
                    &records::digest_key(r),
                    grant_id.as_bytes().to_vec(),
                    grant_ttl,
                )
                .await?;
        }
        store
            .add_member(
                records::SESSION,
                &grant.sid,
                &format!("{} {grant_id}", client.id),
                Duration::from_secs(remaining),
            )
            .await
    };
    if let Err(e) = writes.await {
        return store_error(state, EP, e);
    }
    let keys = &state.config.access.keys;
    let alg = keys.active().map_or("", |k| k.algorithm().as_str());
    let at_hash = oidc::claims::at_hash(alg, &access);
    let subject = acting.as_ref().map_or(&grant.principal, |a| a.principal());
    let mut claims = oidc::claims::id_token(
        client,
        subject,
        &oidc::claims::IdTokenParams {
            issuer: &oidc.issuer,
            nonce,
            sid: &grant.sid,
            at_hash: at_hash.as_deref(),
            now,
            ttl: oidc.id_token_ttl,
        },
    );
    if let Some(a) = &acting {
        oidc::claims::add_acting(client, a, &mut claims);
    }
    let id_token = match keys.sign_claims("JWT", &claims, &state.rng) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(event = "oidc_sign_failed", code = %e.code());
            return internal("oidc_sign");
        }
    };
    // The tokens are an audit record: which client got which person's identity, from which
    // session, when; digests only, never a usable token.
    let record = json!({
        "event": "oidc_tokens_issued",
        "grant_type": kind,
        "client_id": client.id,
        "sub": subject.sub,
        "act": acting.as_ref().map(|a| json!({
            "sub": a.actor().sub(),
            "representation_type": a.representation().kind().as_str(),
            "source": a.representation().source(),
            "ref": a.representation().reference(),
        })),
        "sid": grant.sid,
        "grant": grant_id,
        "scope": scopes.to_string_list(),
        "method": grant.principal.auth.method.as_str(),
        "loa": grant.principal.auth.loa.as_str(),
        "access_token_sha256": records::digest_key(&access),
        "id_token_sha256": records::digest_key(&id_token),
        "refresh_token_sha256": refresh.as_deref().map(records::digest_key),
        "ts": now,
    });
    if let Err(e) =
        crate::state::login::timed_append(state, (state.clock)(), record.to_string().into_bytes())
            .await
    {
        // Not answered without its record: the tokens stored above die unused.
        let _ = state.store.delete_record(records::GRANT, grant_id).await;
        count(state, EP, e.code());
        return crate::state::login::audit_unavailable(state, e);
    }
    count(state, EP, "ok");
    tracing::info!(event = "oidc_tokens_issued", client = %client.id, sid = %grant.sid, grant_type = kind);
    let mut body = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": at_ttl,
        "id_token": id_token,
        "scope": scopes.to_string_list(),
    });
    if let Some(r) = refresh {
        body["refresh_token"] = Value::String(r);
    }
    let mut r = json_response(StatusCode::OK, &body);
    set(&mut r, header::PRAGMA, "no-cache");
    r
}

/// `GET|POST /oidc/userinfo` with `Authorization: Bearer <access token>`.
pub async fn userinfo<B>(state: &State, req: &Request<B>) -> Response<Body> {
    const EP: &str = "userinfo";
    let Some(oidc) = &state.config.oidc else {
        return not_found();
    };
    let mut values = req.headers().get_all(header::AUTHORIZATION).iter();
    let token = match (values.next().and_then(|v| v.to_str().ok()), values.next()) {
        (Some(v), None) => v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256),
        _ => None,
    };
    let Some(token) = token else {
        return oauth_error(state, EP, &Error::AccessToken);
    };
    let now = unix((state.clock)());
    let grant_id = match state
        .store
        .get_record(records::ACCESS, &records::digest_key(token))
        .await
    {
        Ok(Some(g)) => String::from_utf8_lossy(&g).into_owned(),
        Ok(None) => return oauth_error(state, EP, &Error::AccessToken),
        Err(e) => return store_error(state, EP, e),
    };
    let grant = match state.store.get_record(records::GRANT, &grant_id).await {
        Ok(Some(b)) => records::decode::<records::Grant>(&b),
        Ok(None) => None,
        Err(e) => return store_error(state, EP, e),
    };
    // A revoked grant (replayed code, reused refresh token, ended session) or an ended
    // session: the token opens nothing.
    let Some(grant) = grant else {
        return oauth_error(state, EP, &Error::AccessToken);
    };
    if !session_live(state, &grant.sid, grant.session_exp, now).await {
        return oauth_error(state, EP, &Error::AccessToken);
    }
    let Some(client) = oidc.client(&grant.client_id) else {
        return oauth_error(state, EP, &Error::AccessToken);
    };
    // Acting: the representation is asked of its source again at every call; one that no
    // longer holds makes the token worthless (401 invalid_token), like an ended session.
    let acting = match &grant.acting {
        None => None,
        Some(r) => match again(
            state,
            &grant.principal,
            &r.service,
            &r.source,
            &r.reference,
            now,
        )
        .await
        {
            Ok(a) => Some(a),
            Err(code) => {
                count(state, EP, code);
                return oauth_error(state, EP, &Error::AccessToken);
            }
        },
    };
    count(state, EP, "ok");
    let subject = acting.as_ref().map_or(&grant.principal, |a| a.principal());
    let mut claims = oidc::claims::userinfo(client, subject, Scopes::from_bits(grant.scopes));
    if let Some(a) = &acting {
        oidc::claims::add_acting(client, a, &mut claims);
    }
    json_response(StatusCode::OK, &Value::Object(claims))
}

/// The `aud` of an ID token we signed (expired or not) with issuer `issuer`, verified with the
/// current key set.
fn hint_audience(state: &State, issuer: &str, hint: &str) -> Option<String> {
    let now = unix((state.clock)());
    let keys = jose::Jwks::from_value(&state.config.access.keys.jwks(now)).ok()?;
    let jws = jose::Jws::decode(hint, jose::Typ::JwtOrAbsent, &jose::Limits::default()).ok()?;
    let claims = jws.into_verified_claims(&keys).ok()?;
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return None;
    }
    claims.get("aud").and_then(Value::as_str).map(str::to_owned)
}

/// `GET /oidc/end_session` (RP-Initiated Logout 1.0): ends the browser's session (grants
/// revoked, back-channel logout to the other clients) and returns to a registered
/// `post_logout_redirect_uri` with `state`, or shows the "signed out" page.
///
/// Without a verified `id_token_hint`, a cross-site navigation is sent to `/logout`, which
/// asks the person to confirm: any site could link here.
pub async fn end_session(state: &State, req: &Request<Incoming>) -> Response<Body> {
    const EP: &str = "end_session";
    let Some(oidc) = &state.config.oidc else {
        return not_found();
    };
    let params = match Params::new(text_pairs(req.uri().query().unwrap_or("").as_bytes())) {
        Ok(p) => p,
        Err(e) => return end_session_page(state, &e),
    };
    let checked = oidc::logout::end_session(
        &params,
        |id| oidc.client(id),
        |hint| hint_audience(state, &oidc.issuer, hint),
    );
    let request = match checked {
        Ok(r) => r,
        Err(e) => return end_session_page(state, &e),
    };
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site && !params.has("id_token_hint") {
        count(state, EP, "confirm");
        return redirect(&format!("{}/logout", state.config.public_base_url));
    }
    let now = unix((state.clock)());
    let current = view(state, req, now).await;
    let mut r = match &request.post_logout_redirect_uri {
        Some(uri) => {
            let mut pairs = Vec::new();
            if let Some(s) = &request.state {
                pairs.push(("state", s.as_str()));
            }
            let mut r = redirect(&with_query(uri, &pairs));
            *r.status_mut() = StatusCode::SEE_OTHER;
            r
        }
        None => {
            let mut r = html(
                StatusCode::OK,
                pages::simple(
                    "Sei uscito",
                    "Signed out",
                    "La sessione è chiusa.",
                    "Your session has ended.",
                ),
            );
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
    };
    if let Some(v) = current {
        let s = &v.session;
        let remaining = Duration::from_secs(s.exp.saturating_sub(now));
        crate::state::provider::revoke_session(state, &s.sid, remaining).await;
        state.metrics.logouts.inc();
        crate::state::login::clear_session_cookie(state, &mut r);
        tracing::info!(event = "oidc_end_session", sid = %s.sid, client = request.client_id.as_deref().unwrap_or(""));
    }
    count(state, EP, "ok");
    r
}

fn end_session_page(state: &State, e: &Error) -> Response<Body> {
    count(state, "end_session", e.code());
    tracing::info!(event = "oidc_refused", endpoint = "end_session", code = %e.code());
    html(
        StatusCode::BAD_REQUEST,
        pages::simple(
            "Richiesta non valida",
            "Invalid request",
            &format!("La richiesta di uscita non è valida ({}).", e.code()),
            &format!("The sign-out request is not valid ({}).", e.code()),
        ),
    )
}
