//! The router: `GET /`, `GET /metadata`, `GET /sso`, `POST /sso`, `POST /login`,
//! `GET /healthz`, and Single Logout: `GET|POST /slo`, `GET /logout/start`, `GET /sessions`
//! (handled in `slo`). The login flow's handlers (`sso`, `login`) live here too. Handlers
//! never panic and never fail: bad input becomes a 400 page. Nothing imports this module but
//! `main`.

use std::convert::Infallible;
use std::sync::Arc;

use base64::Engine as _;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::app::{AppState, wall_clock};
use crate::http::{Body, bad_request, html, plain, plain_owned, read_body, with_headers};
use crate::pages;
use crate::request::{self, IncomingRequest, unique_params};
use crate::response::{self, random_id};
use crate::sessions::IdpSession;
use crate::slo;
use crate::sp;
use crate::state::parse_level;
use crate::users;

/// Handles one request.
pub(crate) async fn handle(
    state: Arc<AppState>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let response = match (&method, path.as_str()) {
        (&Method::GET, "/") => html(
            StatusCode::OK,
            pages::home(
                &state.idp.entity_id,
                &state.idp.sso_url,
                &state.metadata_url,
                state.sp_sources.len(),
            ),
        ),
        (&Method::GET, "/healthz") => plain(StatusCode::OK, "ok\n"),
        (&Method::GET, "/metadata") => with_headers(
            StatusCode::OK,
            "application/samlmetadata+xml",
            state.metadata.clone(),
        ),
        (&Method::GET, "/sso") => {
            let query = req.uri().query().unwrap_or_default().to_owned();
            match sp::load_all(&state.sp_sources).await {
                Ok(sps) => sso(
                    &state,
                    request::from_redirect(&query, &state.idp.sso_url, &sps),
                ),
                Err(reason) => bad_request(&reason),
            }
        }
        (&Method::POST, "/sso") => match read_body(req).await {
            Ok(body) => match sp::load_all(&state.sp_sources).await {
                Ok(sps) => sso(&state, request::from_post(&body, &state.idp.sso_url, &sps)),
                Err(reason) => bad_request(&reason),
            },
            Err(r) => r,
        },
        (&Method::POST, "/login") => match read_body(req).await {
            Ok(body) => login(&state, &body),
            Err(r) => r,
        },
        (&Method::GET, "/slo") => {
            let query = req.uri().query().unwrap_or_default().to_owned();
            slo::receive(&state, saml::IncomingSlo::from_redirect(&query)).await
        }
        (&Method::POST, "/slo") => match read_body(req).await {
            Ok(body) => slo::receive(&state, saml::IncomingSlo::from_post(&body)).await,
            Err(r) => r,
        },
        (&Method::GET, "/logout/start") => {
            let query = req.uri().query().unwrap_or_default().to_owned();
            slo::start(&state, &query).await
        }
        (&Method::GET, "/sessions") => plain_owned(StatusCode::OK, state.logout.report()),
        (
            _,
            "/" | "/healthz" | "/metadata" | "/sso" | "/login" | "/slo" | "/logout/start"
            | "/sessions",
        ) => html(
            StatusCode::METHOD_NOT_ALLOWED,
            pages::message("Metodo non ammesso", "Method not allowed", method.as_str()),
        ),
        _ => html(
            StatusCode::NOT_FOUND,
            pages::message("Pagina non trovata", "Page not found", &path),
        ),
    };
    eprintln!(
        "varco-dev-idp: {method} {path:?} -> {}",
        response.status().as_u16()
    );
    Ok(response)
}

/// `/sso`, both bindings: the login page, or 400 with the reason.
fn sso(state: &AppState, parsed: Result<IncomingRequest, String>) -> Response<Body> {
    match parsed {
        Ok(request) => {
            eprintln!(
                "varco-dev-idp: AuthnRequest {:?} from {:?} (level {}, ACS {:?}, signature {:?})",
                request.id, request.issuer, request.level, request.acs_url, request.signature
            );
            let sealed = state.sealer.seal(&request);
            html(
                StatusCode::OK,
                pages::login(&request, &users::all(), &sealed),
            )
        }
        Err(reason) => bad_request(&reason),
    }
}

/// SPID for minors: the refusal page (with the failed Response behind its button) when
/// `user`'s age in completed years is outside `(min, max)` (max 99: no upper limit), or
/// `None` when it fits. A user without a usable `dateOfBirth` (a company, an eIDAS identity)
/// is refused too: the IdP cannot vouch for an age it does not know.
fn age_refusal(
    state: &AppState,
    request: &IncomingRequest,
    user: &users::TestUser,
    (min, max): (u32, u32),
    now: std::time::SystemTime,
) -> Option<Response<Body>> {
    // The date in UTC: a demo IdP; Varco itself counts on the Italian date.
    let today = saml::format_instant(now)?;
    let age = user
        .attribute("dateOfBirth")
        .and_then(|born| request::completed_years(born, today.get(..10)?));
    if age.is_some_and(|a| a >= min && (max >= 99 || a <= max)) {
        return None;
    }
    eprintln!(
        "varco-dev-idp: {:?} refused {}: age {age:?} outside spid:AgeLimit {min}-{max}",
        request.id, user.id
    );
    let xml = response::failed(&state.idp, request, now, response::AGE_LIMIT_MESSAGE).ok()?;
    let saml_response = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
    Some(html(
        StatusCode::OK,
        pages::age_refused(
            user.attribute("name").unwrap_or(user.id),
            &request.issuer,
            &request.acs_url,
            &saml_response,
            &request.relay_state,
        ),
    ))
}

/// `POST /login`: fields `state` (from the login page), then either `user` (a test user id)
/// with optional `level` (1, 2 or 3; default the requested level), or `action=cancel`.
fn login(state: &AppState, body: &[u8]) -> Response<Body> {
    let params = match unique_params(body) {
        Ok(p) => p,
        Err(reason) => return bad_request(&reason),
    };
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(sealed) = get("state") else {
        return bad_request("the state field is missing");
    };
    let request = match state.sealer.open(sealed) {
        Ok(r) => r,
        Err(reason) => return bad_request(&reason),
    };
    let now = wall_clock();
    let xml = match get("action") {
        Some("cancel") => {
            eprintln!("varco-dev-idp: {:?} cancelled", request.id);
            response::cancelled(&state.idp, &request, now)
        }
        Some(other) if other != "login" => {
            return bad_request(&format!("unknown action {other:?} (login or cancel)"));
        }
        _ => {
            let Some(user_id) = get("user") else {
                return bad_request("the user field is missing");
            };
            let Some(user) = users::find(user_id) else {
                return bad_request(&format!("no test user {user_id:?}"));
            };
            let level = match get("level") {
                None | Some("") => request.level,
                Some(l) => match parse_level(l) {
                    Some(level) => level,
                    None => return bad_request(&format!("level {l:?} is not 1, 2 or 3")),
                },
            };
            if let Some((min, max)) = request.age_limit {
                if let Some(page) = age_refusal(state, &request, &user, (min, max), now) {
                    return page;
                }
            }
            eprintln!(
                "varco-dev-idp: {:?} logged in as {} at {level}",
                request.id, user.id
            );
            let (Ok(name_id), Ok(session_index)) =
                (random_id(&state.idp.rng), random_id(&state.idp.rng))
            else {
                return bad_request("no randomness");
            };
            let xml = response::success(
                &state.idp,
                &request,
                &user,
                level,
                request.released.as_deref(),
                (&name_id, &session_index),
                now,
            );
            if xml.is_ok() {
                state.logout.open_session(IdpSession {
                    session_index,
                    name_id,
                    user: user.id.to_owned(),
                    sp: request.issuer.clone(),
                });
            }
            xml
        }
    };
    let xml = match xml {
        Ok(x) => x,
        Err(reason) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                pages::message("Errore interno", "Internal error", &reason),
            );
        }
    };
    let saml_response = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
    let nonce = random_id(&state.idp.rng).unwrap_or_else(|_| "n".into());
    let mut response = html(
        StatusCode::OK,
        pages::auto_post(
            &request.acs_url,
            &saml_response,
            &request.relay_state,
            &nonce,
        ),
    );
    if let Ok(csp) = HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-{nonce}'"
    )) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}
