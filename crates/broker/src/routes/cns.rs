//! `GET /cns/login`: a CNS smart-card login, from the client certificate of the CNS TLS
//! listener or, behind a TLS-terminating proxy, from its header. The verification itself is
//! `features::cns::verify`.
//!
//! May import: `state`, `features`, the leaf.

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::features::audit;
use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use ring::rand::SystemRandom;
use rustls::pki_types::CertificateDer;

use crate::features::cns::{Cns, CnsError, TlsClient, from_header, verify};
use crate::leaf::clock::unix;
use crate::leaf::http::{Body, html, set};
use crate::leaf::pages;
use crate::leaf::session::{Purpose, Session, random_hex};
use crate::state::State;

/// Where the certificate of this request comes from.
enum Presented {
    Chain(Vec<CertificateDer<'static>>),
    /// Go to the TLS listener instead.
    Redirect(String),
}

/// `GET /cns/login?return_to=<url>`.
pub async fn login<B>(state: &State, req: &Request<B>) -> Response<Body> {
    let Some(cns) = state.config.cns.as_ref() else {
        return html(
            StatusCode::NOT_FOUND,
            pages::simple("Pagina non trovata", "Page not found", "", ""),
        );
    };
    let peer = req
        .extensions()
        .get::<crate::leaf::http::Peer>()
        .map(|p| p.0);
    let return_to = crate::leaf::form::text_pairs(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "return_to")
        .map_or_else(|| "/".to_owned(), |(_, v)| v.into_owned());
    if state.config.return_to(&return_to).is_none() {
        tracing::info!(event = "login_refused", code = %"broker_invalid_return_to");
        state
            .metrics
            .logins_refused
            .with_label_values(&["broker_invalid_return_to", ""])
            .inc();
        return html(
            StatusCode::BAD_REQUEST,
            pages::simple(
                "Richiesta non valida",
                "Invalid request",
                "L'indirizzo di ritorno deve essere una pagina di questo sito.",
                "The return address must be a page of this site or of a protected portal.",
            ),
        );
    }
    let mut evidence = audit::Evidence {
        client: peer.map(|p| p.to_string()),
        method: Some("cns"),
        ..audit::Evidence::default()
    };
    let on_tls = req.extensions().get::<TlsClient>().cloned();
    let presented = match on_tls {
        Some(TlsClient(chain)) => Ok(Presented::Chain(chain.as_ref().clone())),
        None => presented_by_proxy(state, cns, req, peer.map(|p| p.ip()), &return_to),
    };
    let chain = match presented {
        Ok(Presented::Chain(c)) => c,
        Ok(Presented::Redirect(url)) => return see_other(&url),
        Err(e) => return refuse(state, evidence, e).await,
    };
    if let Some(leaf) = chain.first() {
        evidence.certificate_b64 =
            Some(base64::engine::general_purpose::STANDARD.encode(leaf.as_ref()));
    }
    let now = (state.clock)();
    let id = match verify(&cns.trust, &chain, now) {
        Ok(id) => id,
        Err(e) => return refuse(state, evidence, e).await,
    };
    evidence.idp = Some(id.issuer.clone());
    evidence.name_id = Some(id.serial.clone());
    evidence.name_qualifier = Some(id.issuer.clone());
    evidence.authn_instant = Some(now);
    let Some(sid) = random_hex(&state.rng, 16) else {
        return crate::leaf::http::internal("broker_rng");
    };
    let mut attributes = vec![(
        identity::attr::FISCAL_NUMBER.to_owned(),
        vec![id.fiscal_code.clone()],
    )];
    if let Some(n) = &id.given_name {
        attributes.push((identity::attr::NAME.to_owned(), vec![n.clone()]));
    }
    if let Some(n) = &id.family_name {
        attributes.push((identity::attr::FAMILY_NAME.to_owned(), vec![n.clone()]));
    }
    let iat = unix(now);
    // CNS logins carry no attributes beyond the subject: no mapping table applies.
    let Ok(principal) = identity::normalize(
        attributes,
        &identity::Source {
            method: identity::Method::Cns,
            idp: &id.issuer,
            level: "cns",
            auth_time: iat,
            session_id: &sid,
        },
        &identity::Mapping::default(),
    ) else {
        // The fiscal code was validated already; kept fail-closed all the same.
        return refuse(state, evidence, CnsError::BadFiscalCode).await;
    };
    evidence.sub = Some(principal.sub.clone());
    evidence.profile = Some(principal.profile.as_str());
    let session = Session {
        sid,
        idp: id.issuer.clone(),
        name_id: id.serial.clone(),
        name_qualifier: id.issuer,
        session_index: None,
        assertion_id: format!("cns:{}", id.serial),
        iat,
        exp: iat + state.config.session_ttl.as_secs(),
        principal,
        legacy_category: None,
        acting: std::collections::BTreeMap::new(),
    };
    let location = if req.extensions().get::<TlsClient>().is_some() && return_to.starts_with('/') {
        format!("{}{return_to}", state.config.public_base_url)
    } else {
        return_to
    };
    complete(state, req, evidence, session, &location).await
}

/// Mode (b), or the way to mode (a), for a request on the main listener.
fn presented_by_proxy<B>(
    state: &State,
    cns: &Cns,
    req: &Request<B>,
    peer: Option<IpAddr>,
    return_to: &str,
) -> Result<Presented, CnsError> {
    let forwarded = cns
        .header
        .as_ref()
        .and_then(|h| req.headers().get(&h.name).map(|v| (h, v)));
    match forwarded {
        Some((mode, value)) => {
            if !peer.is_some_and(|ip| mode.trusted_proxies.iter().any(|n| n.contains(ip))) {
                return Err(CnsError::UntrustedProxy);
            }
            mode.check_proof(req.headers())?;
            if value.is_empty() {
                return Err(CnsError::NoCertificate);
            }
            Ok(Presented::Chain(vec![from_header(value.as_bytes())?]))
        }
        None => match &cns.tls {
            Some(_) => Ok(Presented::Redirect(
                cns.login_url(&state.config.public_base_url, return_to),
            )),
            None => Err(CnsError::NoCertificate),
        },
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

/// Records the refusal, counts it, and answers with the page for its code.
async fn refuse(state: &State, evidence: audit::Evidence, e: CnsError) -> Response<Body> {
    let now = (state.clock)();
    let record = evidence.record(audit::Outcome::Refused { code: e.code() }, now);
    if let Err(err) = crate::state::login::timed_append(state, now, record).await {
        tracing::info!(event = "audit_refusal_not_recorded", code = %err.code(), refusal = %e.code());
    }
    state
        .metrics
        .logins_refused
        .with_label_values(&[e.code(), ""])
        .inc();
    let correlation = random_hex(&SystemRandom::new(), 8).unwrap_or_else(|| "-".into());
    tracing::info!(event = "login_refused", code = %e.code(), method = %"cns", correlation = %correlation);
    let (it, en) = e.explain();
    let mut r = html(
        e.status(),
        pages::simple(
            "Accesso con CNS non riuscito",
            "CNS sign-in failed",
            &format!("{it} Codice: {} · riferimento {correlation}", e.code()),
            &format!("{en} Code: {} · reference {correlation}", e.code()),
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// The session cookie and the redirect, after the durable audit record (as the ACS does).
async fn complete<B>(
    state: &State,
    req: &Request<B>,
    evidence: audit::Evidence,
    session: Session,
    location: &str,
) -> Response<Body> {
    let previous = crate::state::current::current_session(state, req).await;
    let Some(sealed) = state.sealer.seal(Purpose::Session, &session) else {
        return crate::leaf::http::internal("broker_seal");
    };
    let now = (state.clock)();
    let record = evidence.record(audit::Outcome::Completed { sid: &session.sid }, now);
    if let Err(e) = crate::state::login::timed_append(state, now, record).await {
        return crate::state::login::audit_unavailable(state, e);
    }
    if let Some(old) = previous {
        let remaining = Duration::from_secs(old.exp.saturating_sub(old.iat));
        crate::state::provider::revoke_session(state, &old.sid, remaining).await;
    }
    state.store.touch_session(&session.sid, session.iat).await;
    let auth = &session.principal.auth;
    tracing::info!(event = "login_completed", sid = %session.sid, idp = %session.idp, loa = %auth.loa.as_str(), method = %auth.method.as_str(), certificate_serial = %session.name_id);
    // The idp label stays bounded: every CNS issuer counts as `cns`.
    state.metrics.login_completed(
        auth.method,
        "cns",
        auth.loa,
        session.principal.profile,
        None,
    );
    let mut r = see_other(location);
    crate::state::login::set_session_cookie(state, &mut r, &sealed);
    r
}
