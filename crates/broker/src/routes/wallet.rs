//! The wallet login (OpenID4VP 1.0, issue 23):
//!
//! - `GET /wallet/login?return_to=&device=same`: a new request (fresh `state`, `nonce`,
//!   response key, the DCQL query for the PID claims of the route `return_to` lands on),
//!   bound to this browser with the login cookie, kept in the login store (any replica can
//!   serve the next steps: `features::wallet::pending`); same-device: 303 to the wallet
//!   (`openid4vp://…?client_id&request_uri`), otherwise 303 to the waiting page;
//! - `GET /wallet/wait?id=` (and `&format=json`): the cross-device page (QR code, link,
//!   status); once the wallet has answered, this browser's visit completes the login;
//! - `GET|POST /wallet/request/<id>`: the signed request object, served once;
//! - `POST /wallet/response`: the wallet's `direct_post.jwt` answer, decrypted, bound and
//!   verified (issuer trust, disclosures, key binding to this request's nonce and our
//!   client id, expiry, status list; the wallet attestation when `[wallet.wallet_providers]`
//!   requires one), then kept for the browser; the same-device wallet
//!   gets a `redirect_uri` with a one-use response code;
//! - `GET /wallet/complete?id=&response_code=`: the same-device browser's return.
//!
//! The login ends as the SAML one does (`state::login::complete`): session, audit record
//! (with the presentation's digest), method `wallet`, LoA high.
//!
//! May import: `state`, `config`, `features`, the leaf.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::features::admission::heavy::{Refused, Work};
use crate::features::audit;
use crate::features::wallet::attestation::Providers;
use crate::features::wallet::pending::{
    Entry, KIND_JAR, KIND_KEY, KIND_REQUEST, Key, Outcome, Presented,
};
use crate::features::wallet::trust::{ChainError, Federation, FederationError};
use crate::features::wallet::{PID_QUERY, Wallet};
use crate::leaf::clock::unix;
use crate::leaf::form::{Field, form_field, text_pairs};
use crate::leaf::http::{Body, cookie, html, internal, set};
use crate::leaf::pages::{self, Lang};
use crate::leaf::session::{Session, random_hex};
use crate::state::State;
use crate::state::login::{login_cookie, login_cookie_value, timed_append};
use openid4vp::attestation::{AttestationError, Attested};

/// Largest `/wallet/response` body: the JWE bound of `openid4vp` (256 KiB) plus the form
/// encoding's growth.
const MAX_BODY: usize = 384 * 1024;

/// How long a wallet may take to send its answer's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The stable codes of this route (the verifier crates add their own: `openid4vp.*`,
/// `sdjwt.*`, `jose.*`).
pub mod codes {
    /// `[wallet]` is not configured.
    pub const DISABLED: &str = "wallet_disabled";
    /// No request with that id (unknown or expired).
    pub const UNKNOWN: &str = "wallet_unknown_request";
    /// The request object was already fetched.
    pub const REQUEST_SERVED: &str = "wallet_request_already_served";
    /// A second answer to a request.
    pub const REPLAY: &str = "wallet_replay";
    /// The response form has no (or two) `response` field, or its JWE names no known key.
    pub const BAD_RESPONSE: &str = "wallet_bad_response";
    /// The PID issuer is not trusted.
    pub const UNTRUSTED_ISSUER: &str = "wallet_untrusted_issuer";
    /// An mdoc PID without a status list reference while `require_status` is on.
    pub const STATUS_MISSING: &str = "wallet_status_missing";
    /// The status list could not be fetched or verified (fail closed).
    pub const STATUS_UNAVAILABLE: &str = "wallet_status_unavailable";
    /// The browser completing the login is not the one that started it.
    pub const BROWSER_MISMATCH: &str = "broker_browser_mismatch";
    /// The same-device response code does not match.
    pub const RESPONSE_CODE: &str = "wallet_response_code";
    /// Too many requests made by this replica waiting (`wallet.max_pending`,
    /// `wallet.max_pending_bytes`).
    pub const FULL: &str = "wallet_too_many_pending";
    /// A claim the request asked for is not in the presentation.
    pub const CLAIM_MISSING: &str = "wallet_claim_missing";
    /// The body was over the limit or late.
    pub const BODY: &str = "broker_body_too_large";
    /// The wallet attestation's provider is not trusted (no configured key, no trust list
    /// for its `x5c`, no federation).
    pub const UNTRUSTED_PROVIDER: &str = "wallet_untrusted_provider";
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    text_pairs(req.uri().query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'q>(q: &'q [(String, String)], name: &str) -> Option<&'q str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn lang_of(q: &[(String, String)]) -> Lang {
    match param(q, "lang") {
        Some("en") => Lang::En,
        _ => Lang::It,
    }
}

/// A login cookie value of ours: 32 hex digits.
fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A request id of ours: the `kid` of its response key, an RFC 7638 thumbprint (43
/// base64url characters).
fn valid_request_id(id: &str) -> bool {
    id.len() == 43
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn refused(state: &State, status: StatusCode, code: &str) -> Response<Body> {
    state
        .metrics
        .logins_refused
        .with_label_values(&[code, ""])
        .inc();
    tracing::info!(event = "login_refused", method = "wallet", code = %code);
    let (it, en) = explain(code);
    let mut r = html(
        status,
        pages::simple(
            "Accesso con wallet non riuscito",
            "Wallet sign-in failed",
            &format!("{it} Codice: {code}"),
            &format!("{en} Code: {code}"),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// What the citizen reads for a refusal code.
fn explain(code: &str) -> (&'static str, &'static str) {
    match code {
        codes::DISABLED => (
            "L'accesso con wallet non è attivo su questo servizio.",
            "Wallet sign-in is not enabled on this service.",
        ),
        codes::UNKNOWN => (
            "La richiesta è scaduta o non è valida. Ricomincia l'accesso.",
            "The request has expired or is not valid. Please start again.",
        ),
        codes::BROWSER_MISMATCH | codes::RESPONSE_CODE => (
            "L'accesso è stato avviato da un altro browser. Ricomincia da questo dispositivo.",
            "The sign-in was started from another browser. Please start again here.",
        ),
        codes::UNTRUSTED_ISSUER
        | "wallet_issuer_chain"
        | "wallet_issuer_anchor"
        | "wallet_issuer_metadata"
        | "wallet_issuer_trust_mark" => (
            "La credenziale presentata non proviene da un emittente riconosciuto.",
            "The credential presented does not come from a recognised issuer.",
        ),
        "sdjwt.revoked" | "sdjwt.suspended" => (
            "La credenziale presentata è stata revocata o sospesa.",
            "The credential presented has been revoked or suspended.",
        ),
        "sdjwt.expired" => (
            "La credenziale presentata è scaduta.",
            "The credential presented has expired.",
        ),
        codes::STATUS_UNAVAILABLE => (
            "Non è stato possibile verificare la validità della credenziale; riprova più tardi.",
            "The validity of the credential could not be checked; please try again later.",
        ),
        "openid4vp.wallet_error" => (
            "Il wallet non ha condiviso i dati richiesti.",
            "The wallet did not share the data requested.",
        ),
        _ => (
            "La presentazione del wallet non è valida.",
            "The wallet's presentation is not valid.",
        ),
    }
}

fn see_other(location: &str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(value.to_string())));
    *r.status_mut() = status;
    set(&mut r, header::CONTENT_TYPE, "application/json");
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn request_uri(state: &State, id: &str) -> String {
    format!("{}/wallet/request/{id}", state.config.public_base_url)
}

fn authorization_url(state: &State, wallet: &Wallet, id: &str) -> String {
    openid4vp::authorization_url(
        &wallet.wallet_url,
        wallet.verifier.client_id(),
        &request_uri(state, id),
    )
}

/// `GET /wallet/login?return_to=<local path>&device=same&lang=en`.
pub async fn login(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let Some(wallet) = state.config.wallet.as_ref() else {
        return refused(state, StatusCode::NOT_FOUND, codes::DISABLED);
    };
    let q = query(req);
    let return_to = param(&q, "return_to").unwrap_or("/").to_owned();
    if state.config.return_to(&return_to).is_none() {
        return refused(state, StatusCode::BAD_REQUEST, "broker_invalid_return_to");
    }
    if !state.audit.is_up() {
        return crate::state::login::audit_unavailable(state, audit::AuditError::Unavailable);
    }
    let same_device = param(&q, "device") == Some("same");
    let browser = cookie(req, login_cookie(state))
        .filter(|c| valid_id(c))
        .map(str::to_owned)
        .or_else(|| random_hex(&state.rng, 16));
    let Some(browser) = browser else {
        return internal("broker_rng");
    };
    // The claims of the route the login returns to, else `wallet.claims`.
    let claims = crate::state::login::route_of(state, &return_to)
        .and_then(|r| r.wallet_claims.clone())
        .unwrap_or_else(|| wallet.claims.clone());
    let now = unix((state.clock)());
    let (jar, pending) =
        match wallet
            .verifier
            .request(&wallet.queries_for(&claims), now, &state.rng)
        {
            Ok(r) => r,
            Err(e) => return internal(e.code()),
        };
    // The request's id is its response key's `kid`: what the wallet's answer names.
    let id = pending.key_id().to_owned();
    let entry = Entry {
        id: id.clone(),
        browser: browser.clone(),
        return_to,
        same_device,
        expires_at: pending.expires_at(),
        outcome: Outcome::Waiting,
    };
    let key = pending.export().ok().map(|pending| Key {
        id: id.clone(),
        pending,
        claims,
    });
    drop(pending);
    let (Some(sealed_entry), Some(sealed_key)) = (
        entry.seal(&state.sealer),
        key.and_then(|k| k.seal(&state.sealer)),
    ) else {
        return internal("broker_seal");
    };
    if state
        .wallet
        .admit(&id, jar.len() + sealed_entry.len() + sealed_key.len())
        .is_err()
    {
        return crate::state::login::unavailable_page(codes::FULL, None);
    }
    let ttl = entry.ttl(now);
    let stored = async {
        state
            .store
            .put_record(KIND_KEY, &id, sealed_key, ttl)
            .await?;
        state
            .store
            .put_record(KIND_JAR, &id, jar.into_bytes(), ttl)
            .await?;
        state
            .store
            .put_record(KIND_REQUEST, &id, sealed_entry, ttl)
            .await
    };
    if let Err(e) = stored.await {
        return crate::state::login::store_unavailable(state, e);
    }
    tracing::info!(event = "login_started", method = "wallet", wallet_request = %id, same_device);
    state
        .metrics
        .logins_started
        .with_label_values(&["wallet", "wallet", "high"])
        .inc();
    let location = if same_device {
        authorization_url(state, wallet, &id)
    } else {
        let lang = if lang_of(&q) == Lang::En {
            "&lang=en"
        } else {
            ""
        };
        format!("/wallet/wait?id={id}{lang}")
    };
    let mut r = see_other(&location);
    let max_age = wallet.ttl.as_secs() + 120;
    if let Ok(v) = HeaderValue::from_str(&login_cookie_value(state, &browser, max_age)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET|POST /wallet/request/<id>`: the signed request object, once (on any replica).
pub async fn request_object(state: &State, path: &str) -> Response<Body> {
    let id = path.trim_start_matches("/wallet/request/");
    let unknown = |code: &str| {
        json(
            StatusCode::NOT_FOUND,
            &serde_json::json!({"error": "invalid_request_uri", "error_description": code}),
        )
    };
    if !valid_request_id(id) {
        return unknown(codes::UNKNOWN);
    }
    let jar = match state.store.take_record(KIND_JAR, id).await {
        Ok(j) => j,
        Err(e) => return store_error(e),
    };
    match jar.map(String::from_utf8) {
        Some(Ok(jar)) => {
            let mut r = Response::new(Full::new(Bytes::from(jar)));
            set(
                &mut r,
                header::CONTENT_TYPE,
                "application/oauth-authz-req+jwt",
            );
            set(&mut r, header::CACHE_CONTROL, "no-store");
            r
        }
        Some(Err(_)) => store_error(crate::features::store::StoreError::Corrupt),
        // Gone: served already if its login is still there.
        None => match state.store.get_record(KIND_REQUEST, id).await {
            Ok(Some(_)) => unknown(codes::REQUEST_SERVED),
            Ok(None) => unknown(codes::UNKNOWN),
            Err(e) => store_error(e),
        },
    }
}

/// The wallet's (or the polling script's) answer when the store cannot answer: 503, the
/// store's code; nothing is decided on a store that is down (fail closed).
fn store_error(e: crate::features::store::StoreError) -> Response<Body> {
    tracing::warn!(event = "wallet_store_unavailable", code = %e.code());
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"error": "temporarily_unavailable", "error_description": e.code()}),
    )
}

/// The login `id` as the store has it: `Ok(None)` when it is not there (unknown, expired)
/// or does not open under our key.
async fn entry_of(
    state: &State,
    id: &str,
) -> Result<Option<Entry>, crate::features::store::StoreError> {
    let bytes = state.store.get_record(KIND_REQUEST, id).await?;
    Ok(bytes.and_then(|b| Entry::open(&state.sealer, id, &b)))
}

/// Writes the login's entry back (its outcome changed), for the rest of its lifetime.
async fn put_entry(state: &State, entry: &Entry) -> Result<(), crate::features::store::StoreError> {
    let Some(sealed) = entry.seal(&state.sealer) else {
        return Err(crate::features::store::StoreError::Corrupt);
    };
    let ttl = entry.ttl(unix((state.clock)()));
    state
        .store
        .put_record(KIND_REQUEST, &entry.id, sealed, ttl)
        .await
}

/// The `kid` of a compact JWE's protected header (an untrusted lookup key), bounded.
fn jwe_kid(jwe: &str) -> Option<String> {
    let header = jwe.split('.').next()?;
    if header.len() > 4096 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .ok()?;
    let h = jose::json::parse_object(&bytes, 4, "JWE header").ok()?;
    match h.get("kid") {
        Some(serde_json::Value::String(k)) if !k.is_empty() && k.len() <= 128 => Some(k.clone()),
        _ => None,
    }
}

fn wallet_error(status: StatusCode, code: &str) -> Response<Body> {
    json(
        status,
        &serde_json::json!({"error": "invalid_request", "error_description": code}),
    )
}

/// `POST /wallet/response`: the wallet's `direct_post.jwt` answer.
pub async fn response(state: &State, req: Request<Incoming>) -> Response<Body> {
    let Some(wallet) = state.config.wallet.as_ref() else {
        return wallet_error(StatusCode::NOT_FOUND, codes::DISABLED);
    };
    let mut evidence = audit::Evidence {
        client: req
            .extensions()
            .get::<crate::leaf::http::Peer>()
            .map(|p| p.0.to_string()),
        method: Some("wallet"),
        ..audit::Evidence::default()
    };
    let collect = Limited::new(req.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => {
            return refuse_response(
                state,
                &evidence,
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::BODY,
                None,
            )
            .await;
        }
    };
    let jwe = match form_field(&body, b"response") {
        Field::One(v) => String::from_utf8(v).ok(),
        _ => None,
    };
    let id = jwe
        .as_deref()
        .and_then(jwe_kid)
        .filter(|kid| valid_request_id(kid));
    let (Some(jwe), Some(id)) = (jwe, id) else {
        return refuse_response(
            state,
            &evidence,
            StatusCode::BAD_REQUEST,
            codes::BAD_RESPONSE,
            None,
        )
        .await;
    };
    // One answer per request, across replicas: the key record is taken here (one taker
    // wins); a second answer finds it gone while the login is still there.
    let taken = match state.store.take_record(KIND_KEY, &id).await {
        Ok(key) => entry_of(state, &id).await.map(|entry| (key, entry)),
        Err(e) => Err(e),
    };
    let (key, entry) = match taken {
        Ok(both) => both,
        Err(e) => {
            return refuse_response(
                state,
                &evidence,
                StatusCode::SERVICE_UNAVAILABLE,
                e.code(),
                None,
            )
            .await;
        }
    };
    let Some(mut entry) = entry else {
        return refuse_response(
            state,
            &evidence,
            StatusCode::BAD_REQUEST,
            codes::BAD_RESPONSE,
            None,
        )
        .await;
    };
    evidence.request_id = Some(id.clone());
    let Some(key) = key else {
        state
            .metrics
            .replays_refused
            .with_label_values(&[codes::REPLAY])
            .inc();
        return refuse_response(
            state,
            &evidence,
            StatusCode::BAD_REQUEST,
            codes::REPLAY,
            None,
        )
        .await;
    };
    let opened = Key::open(&state.sealer, &id, &key)
        .and_then(|k| Some((openid4vp::Pending::import(&k.pending).ok()?, k.claims)));
    let Some((pending, claims)) = opened else {
        // Not sealed by this deployment's key (another session key, or written by
        // someone else): nothing to open the answer with.
        return refuse_response(
            state,
            &evidence,
            StatusCode::SERVICE_UNAVAILABLE,
            crate::features::store::StoreError::Corrupt.code(),
            Some(&id),
        )
        .await;
    };
    let verified = verify(state, wallet, pending, claims, jwe, &mut evidence).await;
    match verified {
        Ok(mut presented) => {
            let Some(code) = random_hex(&state.rng, 16) else {
                return internal("broker_rng");
            };
            presented.response_code = code.clone();
            entry.outcome = Outcome::Presented(Box::new(presented));
            if let Err(e) = put_entry(state, &entry).await {
                return refuse_response(
                    state,
                    &evidence,
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.code(),
                    Some(&id),
                )
                .await;
            }
            tracing::info!(event = "wallet_presented", wallet_request = %id, issuer = evidence.idp.as_deref().unwrap_or(""));
            // Same device: the wallet sends the browser back with the response code (the
            // browser's login cookie must match too). Cross device: the browser polls.
            let answer = if entry.same_device {
                serde_json::json!({"redirect_uri": format!(
                    "{}/wallet/complete?id={id}&response_code={code}",
                    state.config.public_base_url
                )})
            } else {
                serde_json::json!({})
            };
            json(StatusCode::OK, &answer)
        }
        Err((status, code)) => {
            entry.outcome = Outcome::Refused(code.to_owned());
            // The browser's page says why; if the store cannot take it, the page says
            // the request expired, which is also true enough to start again.
            if let Err(e) = put_entry(state, &entry).await {
                tracing::warn!(event = "wallet_outcome_not_stored", code = %e.code());
            }
            refuse_response(state, &evidence, status, code, Some(&id)).await
        }
    }
}

/// Records and counts a refused answer; the wallet gets a JSON error.
async fn refuse_response(
    state: &State,
    evidence: &audit::Evidence,
    status: StatusCode,
    code: &str,
    id: Option<&str>,
) -> Response<Body> {
    let now = (state.clock)();
    let record = evidence.record(audit::Outcome::Refused { code }, now);
    if let Err(e) = timed_append(state, now, record).await {
        tracing::warn!(event = "audit_refusal_not_recorded", code = %e.code(), refusal = %code);
    }
    state
        .metrics
        .logins_refused
        .with_label_values(&[code, ""])
        .inc();
    tracing::info!(event = "login_refused", method = "wallet", code = %code, wallet_request = id.unwrap_or(""));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        return json(
            status,
            &serde_json::json!({"error": "temporarily_unavailable", "error_description": code}),
        );
    }
    wallet_error(status, code)
}

type Failure = (StatusCode, &'static str);

/// The key(s) the trust decision gave for one credential: they verify its signature and
/// its status list.
enum IssuerTrust {
    /// The issuer's configured keys.
    Set(jose::Jwks),
    /// The leaf key of an `x5c` chain the trust list accepted.
    Key(jose::Jwk),
}

impl IssuerTrust {
    fn key(&self) -> sdjwt::IssuerKey<'_> {
        match self {
            IssuerTrust::Set(k) => sdjwt::IssuerKey::Set(k),
            IssuerTrust::Key(k) => sdjwt::IssuerKey::Key(k),
        }
    }
}

fn heavy_refused(r: Refused) -> Failure {
    match r {
        Refused::Busy => (StatusCode::SERVICE_UNAVAILABLE, r.code()),
        Refused::Failed => (StatusCode::INTERNAL_SERVER_ERROR, r.code()),
    }
}

/// Opens and verifies the answer: decryption with this request's key, `state`, the
/// presentation (issuer trusted by configuration, disclosures, key binding to this
/// request's nonce and our client id, expiry), every claim asked for (`claims`), the PID,
/// then the status list.
async fn verify(
    state: &State,
    wallet: &Wallet,
    pending: openid4vp::Pending,
    claims: Vec<String>,
    jwe: String,
    evidence: &mut audit::Evidence,
) -> Result<Presented, Failure> {
    let bad = |code: &'static str| (StatusCode::BAD_REQUEST, code);
    let now = unix((state.clock)());
    let config = state.config.clone();
    // Decryption, signatures and digests: on the heavy pool, like a SAML Response.
    let job = move || -> Result<(Step, Option<AttestationInput>), Refusal> {
        let Some(wallet) = config.wallet.as_ref() else {
            return Err((codes::DISABLED, None));
        };
        let opened = pending
            .open(&jwe, now, &openid4vp::ResponseLimits::default())
            .map_err(|e| match e {
                openid4vp::Error::Missing { id } if id == openid4vp::attestation::QUERY_ID => {
                    (AttestationError::Missing.code(), None)
                }
                e => (e.code(), None),
            })?;
        let attestation = opened
            .vp_token
            .get(openid4vp::attestation::QUERY_ID)
            .and_then(|v| v.first())
            .map(|p| AttestationInput {
                presentation: p.clone(),
                nonce: opened.nonce.clone(),
                aud: opened.client_id.clone(),
            });
        let presentation = opened
            .vp_token
            .get(PID_QUERY)
            .and_then(|v| v.first())
            .ok_or((codes::BAD_RESPONSE, None))?
            .clone();
        let step = match &wallet.mdoc_doctype {
            None => check_sd_jwt(wallet, opened, presentation, now, None),
            Some(doctype) => {
                check_mdoc(wallet, &opened, &presentation, doctype, now).map(Step::Done)
            }
        }?;
        Ok((step, attestation))
    };
    let mut attestation = None;
    let step = run_check(state, job).await.map(|(step, a)| {
        attestation = a;
        step
    });
    let checked = match step {
        Err((status, code, digest)) => {
            if code == AttestationError::Missing.code() {
                state
                    .metrics
                    .wallet_attestations
                    .with_label_values(&["missing"])
                    .inc();
            }
            evidence.presentation_sha256 = digest;
            return Err((status, code));
        }
        Ok(Step::Done(c)) => c,
        // The issuer is known only through OpenID Federation: its chain is fetched off the
        // heavy pool (network), then the credential verified with the chain's keys only.
        Ok(Step::Federation {
            opened,
            presentation,
            iss,
            digest,
        }) => {
            let keys = match federated_keys(state, wallet.federation.as_ref(), &iss, now).await {
                Ok(k) => k,
                Err(e) => {
                    let code = e.map_or(codes::UNTRUSTED_ISSUER, FederationError::code);
                    evidence.presentation_sha256 = Some(digest);
                    return Err(bad(code));
                }
            };
            let config = state.config.clone();
            let job = move || -> Result<Step, Refusal> {
                let Some(wallet) = config.wallet.as_ref() else {
                    return Err((codes::DISABLED, None));
                };
                check_sd_jwt(wallet, opened, presentation, now, Some(keys))
            };
            match run_check(state, job).await {
                Ok(Step::Done(c)) => c,
                // Keys were given: a second federation step cannot happen.
                Ok(Step::Federation { digest, .. }) => {
                    evidence.presentation_sha256 = Some(digest);
                    return Err(bad(codes::UNTRUSTED_ISSUER));
                }
                Err((status, code, digest)) => {
                    evidence.presentation_sha256 = digest;
                    return Err((status, code));
                }
            }
        }
    };
    evidence.presentation_sha256 = Some(checked.digest.clone());
    evidence.idp = Some(checked.issuer.clone());
    // What the route asked for must all be there (a wallet may disclose less than asked).
    if let Some(c) = claims.iter().find(|c| !checked.claims.contains_key(*c)) {
        tracing::info!(event = "wallet_claim_missing", claim = %c);
        return Err(bad(codes::CLAIM_MISSING));
    }
    let pid = sdjwt::Pid::from_claims(&checked.claims).map_err(|e| bad(e.code()))?;
    let mut wallet_attestation = None;
    if let Some(providers) = wallet.providers.as_ref().filter(|p| p.require) {
        let attested =
            check_wallet_attestation(state, wallet, providers, attestation, &checked.holder, now)
                .await;
        let result = match &attested {
            Ok(_) => "accepted",
            // Cannot happen (`Pending::open` refuses a response without it, counted above).
            Err((_, code)) if *code == AttestationError::Missing.code() => "missing",
            Err(_) => "refused",
        };
        state
            .metrics
            .wallet_attestations
            .with_label_values(&[result])
            .inc();
        let attested = attested?;
        evidence.wallet_provider = Some(attested.provider.clone());
        evidence.wallet_attestation_sha256 = Some(attested.digest.clone());
        wallet_attestation = Some((attested.provider, attested.digest));
    }
    if let (Some(reference), Some(trust)) = (&checked.status, &checked.trust) {
        check_status(state, wallet, trust, reference, now).await?;
    }
    Ok(Presented {
        attributes: crate::features::wallet::attributes(&pid),
        issuer: checked.issuer,
        holder: checked.holder,
        digest: checked.digest,
        response_code: String::new(),
        wallet_attestation,
    })
}

/// The attestation presentation and the request it must answer, taken from the opened
/// response before the PID check consumes it.
#[derive(Clone)]
struct AttestationInput {
    presentation: String,
    nonce: String,
    aud: String,
}

/// Where an attestation check on the heavy pool ended.
enum AttestationStep {
    /// Verified, with the key(s) that verified it (its status list too).
    Done(Attested, IssuerTrust),
    /// Its provider is known only through OpenID Federation: resolve the chain first.
    Federation { iss: String },
}

/// The wallet attestation `[wallet.wallet_providers]` requires: the provider trusted (its
/// configured keys, its `x5c` under the providers' trust list, or its federation chain),
/// then `openid4vp::attestation`'s rule with this request and the PID's holder key, then
/// the attestation's own status list if it names one.
async fn check_wallet_attestation(
    state: &State,
    wallet: &Wallet,
    providers: &Providers,
    input: Option<AttestationInput>,
    holder: &str,
    now: u64,
) -> Result<Attested, Failure> {
    let bad = |code: &'static str| (StatusCode::BAD_REQUEST, code);
    let input = input.ok_or(bad(AttestationError::Missing.code()))?;
    let pass = |federated: Option<jose::Jwks>| {
        let config = state.config.clone();
        let (input, holder) = (input.clone(), holder.to_owned());
        move || -> Result<AttestationStep, Refusal> {
            let Some((w, p)) = config
                .wallet
                .as_ref()
                .and_then(|w| Some((w, w.providers.as_ref()?)))
            else {
                return Err((codes::DISABLED, None));
            };
            check_attestation(w, p, &input, &holder, now, federated).map_err(|c| (c, None))
        }
    };
    let (attested, trust) = match run_check(state, pass(None)).await {
        Ok(AttestationStep::Done(a, t)) => (a, t),
        Ok(AttestationStep::Federation { iss }) => {
            let keys = federated_keys(state, providers.federation.as_ref(), &iss, now)
                .await
                .map_err(|e| {
                    bad(e.map_or(codes::UNTRUSTED_PROVIDER, FederationError::provider_code))
                })?;
            match run_check(state, pass(Some(keys))).await {
                Ok(AttestationStep::Done(a, t)) => (a, t),
                // Keys were given: a second federation step cannot happen.
                Ok(AttestationStep::Federation { .. }) => {
                    return Err(bad(codes::UNTRUSTED_PROVIDER));
                }
                Err((status, code, _)) => return Err((status, code)),
            }
        }
        Err((status, code, _)) => return Err((status, code)),
    };
    if let Some(reference) = &attested.status {
        check_status(state, wallet, &trust, reference, now).await?;
    }
    Ok(attested)
}

/// One pass of the attestation check (heavy pool): the trust decision for its provider,
/// then the pure rule.
fn check_attestation(
    wallet: &Wallet,
    providers: &Providers,
    input: &AttestationInput,
    holder: &str,
    now: u64,
    federated: Option<jose::Jwks>,
) -> Result<AttestationStep, &'static str> {
    let parsed = openid4vp::attestation::parse(&input.presentation).map_err(|e| e.code())?;
    let iss = parsed.issuer_unverified().unwrap_or("").to_owned();
    let trust = if parsed.issuer_x5c().is_empty() {
        match (providers.keys.keys(&iss), federated) {
            (Some(keys), _) => IssuerTrust::Set(keys.clone()),
            (None, Some(keys)) => IssuerTrust::Set(keys),
            (None, None) if providers.federation.is_some() => {
                return Ok(AttestationStep::Federation { iss });
            }
            (None, None) => return Err(codes::UNTRUSTED_PROVIDER),
        }
    } else {
        let list = providers
            .trust_list
            .as_ref()
            .ok_or(codes::UNTRUSTED_PROVIDER)?;
        let key = list
            .issuer_key(parsed.issuer_x5c(), &iss, now)
            .map_err(ChainError::provider_code)?;
        IssuerTrust::Key(key)
    };
    let vct: Vec<&str> = providers.vct.iter().map(String::as_str).collect();
    let rules = openid4vp::attestation::Rules {
        vct: &vct,
        max_lifetime: providers.max_lifetime,
        skew: wallet.skew,
        kb_max_age: wallet.kb_max_age,
    };
    let ctx = openid4vp::attestation::Context {
        now,
        nonce: &input.nonce,
        aud: &input.aud,
        holder,
    };
    let attested = openid4vp::attestation::verify(parsed, trust.key(), &iss, &ctx, &rules)
        .map_err(|e| e.code())?;
    Ok(AttestationStep::Done(attested, trust))
}

/// Where a check on the heavy pool ended.
enum Step {
    /// Verified.
    Done(Checked),
    /// The SD-JWT VC's issuer is neither configured nor carries `x5c`, and issuers may be
    /// trusted through OpenID Federation: its chain must be resolved first.
    Federation {
        opened: openid4vp::Opened,
        presentation: String,
        iss: String,
        digest: String,
    },
}

/// Runs `job` on the heavy pool: its outcome, or the status, code and presentation digest
/// of its refusal.
async fn run_check<T: Send + 'static>(
    state: &State,
    job: impl FnOnce() -> Result<T, Refusal> + Send + 'static,
) -> Result<T, (StatusCode, &'static str, Option<String>)> {
    match state.heavy.run(Work::Presentation, job).await {
        Err(r) => {
            let (status, code) = heavy_refused(r);
            Err((status, code, None))
        }
        Ok(Err((code, digest))) => Err((StatusCode::BAD_REQUEST, code, digest)),
        Ok(Ok(step)) => Ok(step),
    }
}

/// The keys of an issuer (or a Wallet Provider) trusted through OpenID Federation: its
/// chain from the broker's federation fetcher (`[oidc_rp]`, cached), judged by `fed`
/// (`[wallet.federation]`, `[wallet.wallet_providers.federation]`). `Err(None)`: no
/// federation to ask.
async fn federated_keys(
    state: &State,
    fed: Option<&Federation>,
    iss: &str,
    now: u64,
) -> Result<jose::Jwks, Option<FederationError>> {
    let (Some(fed), Some(rp)) = (fed, state.oidc.as_ref()) else {
        return Err(None);
    };
    let chain = rp
        .entity_chain(iss, now)
        .await
        .map_err(|_| Some(FederationError::Chain))?;
    let accept_without_exp = rp
        .config
        .anchors
        .iter()
        .find(|a| a.anchor.entity_id == chain.anchor())
        .is_some_and(|a| a.accept_trust_marks_without_exp);
    fed.keys(&chain, iss, now, accept_without_exp).map_err(Some)
}

/// A presentation whose signatures and bindings verified, whatever its format.
struct Checked {
    issuer: String,
    holder: String,
    digest: String,
    claims: serde_json::Map<String, serde_json::Value>,
    status: Option<sdjwt::status::StatusRef>,
    trust: Option<IssuerTrust>,
}

type Refusal = (&'static str, Option<String>);

/// SD-JWT VC: the trust source (the chain the credential carries, judged by the trust
/// list; else the keys configured for its `iss`; else, when `[wallet.federation]` is set,
/// the keys of its federation chain, given as `federated` on the second pass; never two),
/// then every check of `sdjwt` with this request's nonce and our client id.
fn check_sd_jwt(
    wallet: &Wallet,
    opened: openid4vp::Opened,
    presentation: String,
    now: u64,
    federated: Option<jose::Jwks>,
) -> Result<Step, Refusal> {
    let parsed = sdjwt::Presentation::parse(&presentation, &sdjwt::Limits::default())
        .map_err(|e| (e.code(), None))?;
    let digest = parsed.digest().to_owned();
    let iss = parsed.issuer_unverified().unwrap_or("").to_owned();
    let trust = if parsed.issuer_x5c().is_empty() {
        match (wallet.issuers.keys(&iss), federated) {
            (Some(keys), _) => IssuerTrust::Set(keys.clone()),
            (None, Some(keys)) => IssuerTrust::Set(keys),
            (None, None) if wallet.federation.is_some() => {
                drop(parsed);
                return Ok(Step::Federation {
                    opened,
                    presentation,
                    iss,
                    digest,
                });
            }
            (None, None) => return Err((codes::UNTRUSTED_ISSUER, Some(digest))),
        }
    } else {
        let Some(list) = wallet.trust_list.as_ref() else {
            return Err((codes::UNTRUSTED_ISSUER, Some(digest)));
        };
        let key = list
            .issuer_key(parsed.issuer_x5c(), &iss, now)
            .map_err(|e| (e.code(), Some(digest.clone())))?;
        IssuerTrust::Key(key)
    };
    let vct: Vec<&str> = wallet.vct.iter().map(String::as_str).collect();
    let expect = sdjwt::Expect {
        now,
        aud: &opened.client_id,
        nonce: &opened.nonce,
        vct: &vct,
        iss: Some(&iss),
        skew: wallet.skew,
        kb_max_age: wallet.kb_max_age,
        require_status: wallet.require_status,
    };
    let verified = parsed
        .verify(trust.key(), &expect)
        .map_err(|e| (e.code(), Some(digest.clone())))?;
    Ok(Step::Done(Checked {
        issuer: verified.issuer,
        holder: verified.holder,
        digest,
        claims: verified.claims,
        status: verified.status,
        trust: Some(trust),
    }))
}

/// ISO mdoc: base64url DeviceResponse; the issuer known by its `x5chain` under the trust
/// list; the device signature over the OpenID4VP session transcript of this request.
fn check_mdoc(
    wallet: &Wallet,
    opened: &openid4vp::Opened,
    presentation: &str,
    doctype: &str,
    now: u64,
) -> Result<Checked, Refusal> {
    let limits = mdoc::Limits::default();
    // Base64 grows 3 bytes into 4: bound the text before decoding it.
    if presentation.len() > limits.max_bytes.div_ceil(3) * 4 {
        return Err(("mdoc.too_large", None));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(presentation.trim_end_matches('='))
        .map_err(|_| (codes::BAD_RESPONSE, None))?;
    let parsed = mdoc::DeviceResponse::parse(&bytes, &limits).map_err(|e| (e.code(), None))?;
    let digest = {
        let d = ring::digest::digest(&ring::digest::SHA256, &bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d)
    };
    let Some(list) = wallet.trust_list.as_ref() else {
        return Err((codes::UNTRUSTED_ISSUER, Some(digest)));
    };
    let chain = parsed
        .issuer_x5chain()
        .map_err(|e| (e.code(), Some(digest.clone())))?;
    let leaf = list
        .leaf(&chain, now)
        .map_err(|e| (e.code(), Some(digest.clone())))?;
    let transcript = mdoc::session_transcript(
        &opened.client_id,
        &opened.nonce,
        Some(&opened.jwk_thumbprint),
        &opened.response_uri,
    );
    let expect = mdoc::Expect {
        now,
        skew: wallet.skew,
        doctype,
        transcript: &transcript,
    };
    let verified = parsed
        .verify(&leaf.point, &expect)
        .map_err(|e| (e.code(), Some(digest.clone())))?;
    let claims = verified
        .namespaces
        .get(doctype)
        .cloned()
        .unwrap_or_default();
    let status = match verified.status {
        Some(s) => Some(sdjwt::status::StatusRef {
            idx: s.idx,
            uri: s.uri,
        }),
        None if wallet.require_status => {
            return Err((codes::STATUS_MISSING, Some(verified.digest)));
        }
        None => None,
    };
    Ok(Checked {
        issuer: leaf.subject,
        holder: format!("mdoc:{doctype}"),
        digest: verified.digest,
        claims,
        status,
        // The status list is verified with the document signer's key, as for SD-JWT VC.
        trust: Some(IssuerTrust::Key(leaf.jwk)),
    })
}

/// The credential's entry in its Token Status List: fetched (cached) off the async
/// workers, verified with the issuer's trusted keys. Anything but VALID refuses.
async fn check_status(
    state: &State,
    wallet: &Wallet,
    trust: &IssuerTrust,
    reference: &sdjwt::status::StatusRef,
    now: u64,
) -> Result<(), Failure> {
    let cache = state.wallet_status.clone();
    let uri = reference.uri.clone();
    let config = wallet.status.clone();
    let fetched = tokio::task::spawn_blocking(move || cache.get(&uri, &config)).await;
    let token = match fetched {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            tracing::warn!(event = "wallet_status_fetch_failed", uri = %reference.uri, error = %e);
            return Err((StatusCode::SERVICE_UNAVAILABLE, codes::STATUS_UNAVAILABLE));
        }
        Err(_) => return Err((StatusCode::SERVICE_UNAVAILABLE, codes::STATUS_UNAVAILABLE)),
    };
    match sdjwt::status::check(
        &token,
        trust.key(),
        reference,
        now,
        &sdjwt::status::StatusLimits::default(),
    ) {
        Ok(()) => Ok(()),
        Err(e) => {
            let code = e.code();
            // A list that does not verify is not kept; a verified REVOKED answer is.
            if !matches!(
                e,
                sdjwt::Error::Revoked | sdjwt::Error::Suspended | sdjwt::Error::StatusOther { .. }
            ) {
                state.wallet_status.forget(&reference.uri);
                tracing::warn!(event = "wallet_status_invalid", uri = %reference.uri, code = %code);
            }
            Err((StatusCode::BAD_REQUEST, code))
        }
    }
}

/// `GET /wallet/wait?id=<id>[&format=json][&lang=en]`: the cross-device page, or the
/// login's completion once the wallet has answered.
pub async fn wait(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let Some(wallet) = state.config.wallet.as_ref() else {
        return refused(state, StatusCode::NOT_FOUND, codes::DISABLED);
    };
    let q = query(req);
    let id = param(&q, "id").unwrap_or("");
    let as_json = param(&q, "format") == Some("json");
    let entry = if valid_request_id(id) {
        match entry_of(state, id).await {
            Ok(e) => e,
            Err(e) if as_json => return store_error(e),
            Err(e) => return crate::state::login::store_unavailable(state, e),
        }
    } else {
        None
    };
    let Some(entry) = entry else {
        if as_json {
            return json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"status": "unknown"}),
            );
        }
        return refused(state, StatusCode::NOT_FOUND, codes::UNKNOWN);
    };
    let browser = cookie(req, login_cookie(state));
    if browser != Some(entry.browser.as_str()) {
        if as_json {
            return json(
                StatusCode::FORBIDDEN,
                &serde_json::json!({"status": "forbidden"}),
            );
        }
        return refused(state, StatusCode::FORBIDDEN, codes::BROWSER_MISMATCH);
    }
    let status = match &entry.outcome {
        Outcome::Waiting if unix((state.clock)()) > entry.expires_at => "expired",
        Outcome::Waiting => "waiting",
        Outcome::Presented(_) => "presented",
        Outcome::Refused(_) => "refused",
        Outcome::Done => "done",
    };
    if as_json {
        return json(StatusCode::OK, &serde_json::json!({ "status": status }));
    }
    if status != "waiting" {
        return finish(state, req, entry, None).await;
    }
    let lang = lang_of(&q);
    let (this, other) = match lang {
        Lang::En => ("&lang=en", "&lang=it"),
        Lang::It => ("", "&lang=en"),
    };
    let self_url = format!("/wallet/wait?id={id}{this}");
    let mut r = html(
        StatusCode::OK,
        crate::leaf::wallet_page::waiting(&crate::leaf::wallet_page::Waiting {
            lang,
            authorization_url: &authorization_url(state, wallet, id),
            request_uri: &request_uri(state, id),
            self_url: &self_url,
            status_url: &format!("/wallet/wait?id={id}&format=json"),
            switch: &format!("/wallet/wait?id={id}{other}"),
        }),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// `GET /wallet/complete?id=<id>&response_code=<code>`: the same-device return.
pub async fn complete(state: &State, req: &Request<Incoming>) -> Response<Body> {
    if state.config.wallet.is_none() {
        return refused(state, StatusCode::NOT_FOUND, codes::DISABLED);
    }
    let q = query(req);
    let id = param(&q, "id").unwrap_or("");
    let entry = if valid_request_id(id) {
        match entry_of(state, id).await {
            Ok(e) => e,
            Err(e) => return crate::state::login::store_unavailable(state, e),
        }
    } else {
        None
    };
    let Some(entry) = entry else {
        return refused(state, StatusCode::NOT_FOUND, codes::UNKNOWN);
    };
    let code = param(&q, "response_code").unwrap_or("").to_owned();
    finish(state, req, entry, Some(&code)).await
}

/// Whether `entry` may be collected by this browser (its login cookie, and on the same
/// device the response code): the result, or the refusal code.
fn collectable<'e>(
    entry: &'e Entry,
    browser: Option<&str>,
    response_code: Option<&str>,
) -> Result<&'e Presented, String> {
    if browser != Some(entry.browser.as_str()) {
        return Err(codes::BROWSER_MISMATCH.to_owned());
    }
    match &entry.outcome {
        Outcome::Presented(p)
            if response_code.is_some_and(|c| c != p.response_code)
                || (entry.same_device && response_code.is_none()) =>
        {
            Err(codes::RESPONSE_CODE.to_owned())
        }
        Outcome::Presented(p) => Ok(p),
        Outcome::Refused(code) => Err(code.clone()),
        Outcome::Waiting | Outcome::Done => Err(codes::UNKNOWN.to_owned()),
    }
}

/// The browser collects the result: it must be the browser that started the login (and,
/// on the same device, bring the response code); one winner across replicas (the entry is
/// taken from the store, then put back as done).
async fn finish(
    state: &State,
    req: &Request<Incoming>,
    entry: Entry,
    response_code: Option<&str>,
) -> Response<Body> {
    let browser = cookie(req, login_cookie(state));
    let checked = match collectable(&entry, browser, response_code) {
        Ok(_) => match state.store.take_record(KIND_REQUEST, &entry.id).await {
            // Taken: still presented to this browser (no other completion came first).
            Ok(Some(b)) => match Entry::open(&state.sealer, &entry.id, &b) {
                Some(mut taken) => match collectable(&taken, browser, response_code) {
                    Ok(p) => {
                        let p = p.clone();
                        taken.outcome = Outcome::Done;
                        if let Err(e) = put_entry(state, &taken).await {
                            tracing::warn!(event = "wallet_outcome_not_stored", code = %e.code());
                        }
                        Ok((p, taken.return_to))
                    }
                    Err(code) => Err(code),
                },
                None => Err(codes::UNKNOWN.to_owned()),
            },
            Ok(None) => Err(codes::UNKNOWN.to_owned()),
            Err(e) => return crate::state::login::store_unavailable(state, e),
        },
        Err(code) => Err(code),
    };
    let (presented, return_to) = match checked {
        Ok(t) => t,
        Err(code) => {
            let status = if code == codes::BROWSER_MISMATCH || code == codes::RESPONSE_CODE {
                state
                    .metrics
                    .replays_refused
                    .with_label_values(&[code.as_str()])
                    .inc();
                StatusCode::FORBIDDEN
            } else {
                StatusCode::BAD_REQUEST
            };
            return refused(state, status, &code);
        }
    };
    let previous = crate::state::current::current_session(state, req).await;
    let now = (state.clock)();
    let Some(sid) = random_hex(&state.rng, 16) else {
        return internal("broker_rng");
    };
    let iat = unix(now);
    let mut evidence = audit::Evidence {
        client: req
            .extensions()
            .get::<crate::leaf::http::Peer>()
            .map(|p| p.0.to_string()),
        method: Some("wallet"),
        idp: Some(presented.issuer.clone()),
        name_id: Some(presented.holder.clone()),
        name_qualifier: Some(presented.issuer.clone()),
        authn_instant: Some(now),
        presentation_sha256: Some(presented.digest.clone()),
        wallet_provider: presented.wallet_attestation.as_ref().map(|a| a.0.clone()),
        wallet_attestation_sha256: presented.wallet_attestation.as_ref().map(|a| a.1.clone()),
        ..audit::Evidence::default()
    };
    let principal = match identity::normalize(
        presented.attributes,
        &identity::Source {
            method: identity::Method::Wallet,
            idp: &presented.issuer,
            level: "pid",
            auth_time: iat,
            session_id: &sid,
        },
        &identity::Mapping::default(),
    ) {
        Ok(p) => p,
        Err(e) => {
            let code = e.code();
            let record = evidence.record(audit::Outcome::Refused { code }, now);
            if let Err(err) = timed_append(state, now, record).await {
                tracing::warn!(event = "audit_refusal_not_recorded", code = %err.code(), refusal = %code);
            }
            return refused(state, StatusCode::BAD_REQUEST, code);
        }
    };
    evidence.sub = Some(principal.sub.clone());
    evidence.profile = Some(principal.profile.as_str());
    let session = Session {
        sid,
        idp: presented.issuer.clone(),
        name_id: presented.holder.clone(),
        name_qualifier: presented.issuer.clone(),
        session_index: None,
        assertion_id: format!("wallet:{}", presented.digest),
        iat,
        exp: iat + state.config.session_ttl.as_secs(),
        principal,
        legacy_category: None,
        acting: std::collections::BTreeMap::new(),
    };
    // The idp label stays bounded: every PID issuer counts as `wallet`.
    crate::state::login::complete(state, previous, &evidence, session, &return_to, "wallet").await
}
