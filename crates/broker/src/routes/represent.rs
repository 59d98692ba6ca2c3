//! `GET /represent` and `POST /represent`: the "Entra per conto di… / Act on behalf of…"
//! chooser (issue 24). `/auth` and the proxy send a person here when they hold
//! representations for the route's service and have not chosen yet; they may also come back
//! at any time to switch, without a new login.
//!
//! The page is one HTML form, no script, Italian and English labels side by side, a
//! `fieldset` of radio buttons with a `legend`; the form carries a token sealed for this
//! session and service (as the logout confirmation does), so another site cannot choose for
//! the person. The choice is checked against the source before it is stored, stored in the
//! session (sealed again under a new session id, the previous id revoked, as a re-login
//! does), and written to the audit trail with both persons before the cookie leaves.
//!
//! May import: `state`, `config`, `features`, the leaf.

use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use crate::features::represent::{Offer, audit_record};
use crate::leaf::clock::unix;
use crate::leaf::http::{Body, html, internal, set};
use crate::leaf::pages::{self, escape};
use crate::leaf::session::{ActingAs, MAX_ACTING_SERVICES, Purpose, Session};
use crate::state::State;
use crate::state::acting::{Refusal, refusal_page, refused, source_down};
use crate::state::current::current_session;
use crate::state::login::{audit_unavailable, set_session_cookie, timed_append};

/// How long a chooser form stays valid, seconds.
const FORM_TTL: u64 = 900;
/// Largest `POST /represent` body.
const MAX_FORM: usize = 4096;
/// Longest sealed session this route writes: under the 4096 bytes browsers keep for a
/// cookie, with room for its name and attributes.
const MAX_SESSION_COOKIE: usize = 3800;

/// The token of a chooser form: which session and service it may set, until when.
#[derive(serde::Serialize, serde::Deserialize)]
struct FormToken {
    sid: String,
    service: String,
    exp: u64,
}

fn query_field(req: &Request<Incoming>, name: &str) -> Option<String> {
    crate::leaf::form::text_pairs(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `return_to` if the access rules allow it, else `/`.
fn checked_return_to(state: &State, return_to: Option<&str>) -> String {
    return_to
        .and_then(|t| state.config.return_to(t))
        .unwrap_or("/")
        .to_owned()
}

fn page(status: StatusCode, it: &str, en: &str, code: &'static str) -> Response<Body> {
    refusal_page(
        &Refusal {
            status,
            code,
            it: escape(it).into_owned(),
            en: escape(en).into_owned(),
        },
        status,
    )
}

/// 303 to `location` (an address already checked), not cached.
fn see_other(location: &str) -> Response<Body> {
    let mut r = Response::new(http_body_util::Full::new(bytes::Bytes::new()));
    *r.status_mut() = StatusCode::SEE_OTHER;
    if let Ok(v) = header::HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

/// `GET /represent?service=…&return_to=…`.
pub async fn chooser(state: &State, req: &Request<Incoming>) -> Response<Body> {
    let return_to = checked_return_to(state, query_field(req, "return_to").as_deref());
    let Some(session) = current_session(state, req).await else {
        let login = format!(
            "{}/login?return_to={}",
            state.config.public_base_url,
            crate::leaf::form::encode(&return_to)
        );
        return see_other(&login);
    };
    let service = query_field(req, "service").unwrap_or_default();
    let Some(rule) = state.config.represent.service(&service) else {
        return page(
            StatusCode::NOT_FOUND,
            "Per questo servizio non si può agire per conto di altri.",
            "Acting on behalf of others is not available for this service.",
            "represent.unknown_service",
        );
    };
    let now = unix((state.clock)());
    let offers = match state
        .config
        .represent
        .offers(rule, &session.principal, &service, now)
        .await
    {
        Ok((o, _)) => o,
        Err(e) => {
            let r = source_down(state, "offers", &e);
            return refusal_page(&r, r.status);
        }
    };
    if offers.is_empty() && rule.required {
        state
            .metrics
            .represent_decisions
            .with_label_values(&["represent.required"])
            .inc();
        return page(
            StatusCode::FORBIDDEN,
            "Questo servizio si usa solo per conto di altri, e non risultano deleghe o rappresentanze a tuo nome.",
            "This service is used only on behalf of others, and no delegation or representation is recorded in your name.",
            "represent.required",
        );
    }
    let token = FormToken {
        sid: session.sid.clone(),
        service: service.clone(),
        exp: now + FORM_TTL,
    };
    let Some(sealed) = state.sealer.seal(Purpose::RepresentForm, &token) else {
        return internal("broker_rng");
    };
    let current = session.acting.get(&service);
    let mut r = html(
        StatusCode::OK,
        chooser_page(
            &sealed,
            &service,
            &return_to,
            &offers,
            current,
            !rule.required,
            &session,
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn kind_label(k: identity::represent::Kind) -> (&'static str, &'static str) {
    use identity::represent::Kind as K;
    match k {
        K::Delegation => ("delega", "delegation"),
        K::Parental => ("genitore", "parent"),
        K::Guardianship => ("tutela", "guardianship"),
        K::SupportAdministration => ("amministrazione di sostegno", "support administration"),
        K::LegalRepresentative => ("rappresentante legale", "legal representative"),
        K::Intermediary => ("intermediario", "intermediary"),
    }
}

fn date(unix: u64) -> String {
    identity::CalendarDate::italy_at(unix).to_string()
}

/// The chooser: one form, one radio group.
fn chooser_page(
    token: &str,
    service: &str,
    return_to: &str,
    offers: &[Offer],
    current: Option<&ActingAs>,
    myself: bool,
    session: &Session,
) -> String {
    let mut radios = String::new();
    let mut first = true;
    let mut radio = |value: &str, label_it: &str, label_en: &str, checked: bool| {
        let id = format!("c{}", radios.matches("<input").count());
        radios.push_str(&format!(
            "<div class=\"choice\"><input type=\"radio\" name=\"choice\" id=\"{id}\" value=\"{}\"{}{}>\
             <label for=\"{id}\">{} <span lang=\"en\">/ {}</span></label></div>",
            escape(value),
            if checked { " checked" } else { "" },
            if first { " required" } else { "" },
            escape(label_it),
            escape(label_en),
        ));
        first = false;
    };
    if myself {
        let name = match (
            &session.principal.given_name,
            &session.principal.family_name,
        ) {
            (Some(g), Some(f)) => format!("{g} {f}"),
            _ => session.principal.sub.clone(),
        };
        radio(
            "myself",
            &format!("Me stesso ({name})"),
            "Myself",
            matches!(current, Some(ActingAs::Myself) | None),
        );
    }
    for o in offers {
        let (k_it, k_en) = kind_label(o.kind);
        let checked = matches!(current, Some(ActingAs::Other { source, reference }) if *source == o.source && *reference == o.reference);
        radio(
            &format!("{}:{}", o.source, o.reference),
            &format!("{} ({k_it}, valida fino al {})", o.label, date(o.not_after)),
            // The name is not repeated: only the words differ between the languages.
            &format!("{k_en}, valid until {}", date(o.not_after)),
            checked
                || (!myself
                    && current.is_none()
                    && o.reference == offers[0].reference
                    && o.source == offers[0].source),
        );
    }
    let main = format!(
        "<div class=\"panel\"><h1>Entra per conto di… <span lang=\"en\">/ Act on behalf of…</span></h1>\
         <p>Servizio: <strong>{svc}</strong>. Scegli per chi agire; potrai cambiare scelta in \
         ogni momento da questa pagina. <span lang=\"en\">Service: <strong>{svc}</strong>. \
         Choose whom to act for; you can change it at any time on this page.</span></p>\
         <form method=\"post\" action=\"/represent\">\
         <fieldset><legend>Per conto di <span lang=\"en\">/ On behalf of</span></legend>{radios}</fieldset>\
         <input type=\"hidden\" name=\"token\" value=\"{}\">\
         <input type=\"hidden\" name=\"service\" value=\"{svc}\">\
         <input type=\"hidden\" name=\"return_to\" value=\"{}\">\
         <button type=\"submit\">Continua <span lang=\"en\">/ Continue</span></button></form></div>",
        escape(token),
        escape(return_to),
        svc = escape(service),
    );
    pages::layout(
        pages::Lang::It,
        "Entra per conto di… / Act on behalf of…",
        None,
        &main,
    )
}

/// `POST /represent` (`token`, `service`, `return_to`, `choice` = `myself` or
/// `<source>:<reference>`).
pub async fn choose(state: &State, req: Request<Incoming>) -> Response<Body> {
    let session = current_session(state, &req).await;
    let client = req
        .extensions()
        .get::<crate::leaf::http::Peer>()
        .map(|p| p.0.ip().to_string());
    let collect = Limited::new(req.into_body(), MAX_FORM).collect();
    let body = match tokio::time::timeout(Duration::from_secs(10), collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Richiesta non valida.",
                "Invalid request.",
                "represent.bad_form",
            );
        }
    };
    let (mut token, mut service, mut return_to, mut choice) = (None, None, None, None);
    for (k, v) in crate::leaf::form::text_pairs(&body) {
        let slot = match k.as_ref() {
            "token" => &mut token,
            "service" => &mut service,
            "return_to" => &mut return_to,
            "choice" => &mut choice,
            _ => continue,
        };
        *slot = Some(v.into_owned());
    }
    let now = unix((state.clock)());
    let service = service.unwrap_or_default();
    let valid = session.as_ref().is_some_and(|s| {
        token
            .as_deref()
            .and_then(|t| state.sealer.open::<FormToken>(Purpose::RepresentForm, t))
            .is_some_and(|t| t.sid == s.sid && t.service == service && now < t.exp)
    });
    let (Some(session), true) = (session, valid) else {
        tracing::info!(event = "represent_refused", code = "represent.csrf");
        return page(
            StatusCode::FORBIDDEN,
            "La scelta non è valida o è scaduta. Riapri la pagina e scegli di nuovo.",
            "The choice is invalid or expired. Open the page again and choose again.",
            "represent.csrf",
        );
    };
    let return_to = checked_return_to(state, return_to.as_deref());
    let Some(rule) = state.config.represent.service(&service) else {
        return page(
            StatusCode::NOT_FOUND,
            "Per questo servizio non si può agire per conto di altri.",
            "Acting on behalf of others is not available for this service.",
            "represent.unknown_service",
        );
    };
    let chooser = crate::state::acting::chooser_url(
        &state.config.public_base_url,
        &service,
        &crate::leaf::form::encode(&return_to),
    );
    let m = &state.metrics.represent_decisions;
    let (chosen, acting) = match choice.as_deref() {
        Some("myself") if !rule.required => (ActingAs::Myself, None),
        Some(c) if c.contains(':') && c != "myself" => {
            let (source, reference) = c.split_once(':').unwrap_or_default();
            match state
                .config
                .represent
                .act(rule, &session.principal, source, reference, &service, now)
                .await
            {
                Err(e) => {
                    let r = source_down(state, source, &e);
                    return refusal_page(&r, r.status);
                }
                Ok(Err(why)) => {
                    m.with_label_values(&[why.code()]).inc();
                    tracing::info!(event = "represent_refused", code = %why.code(), sid = %session.sid, source = %source, reference = %reference);
                    let r = refused(why, &chooser);
                    return refusal_page(&r, r.status);
                }
                Ok(Ok(a)) => (
                    ActingAs::Other {
                        source: source.to_owned(),
                        reference: reference.to_owned(),
                    },
                    Some(a),
                ),
            }
        }
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "Scegli per chi agire.",
                "Choose whom to act for.",
                "represent.bad_form",
            );
        }
    };
    let mut next = session.clone();
    next.acting.insert(service.clone(), chosen);
    // A switch is a new session, as a new login is: a new id, the previous one revoked below,
    // so a copy of the cookie taken before the switch (another browser, a shared computer)
    // does not keep acting with the old choice. The absolute expiry does not move.
    let Some(sid) = crate::leaf::session::random_hex(&state.rng, 16) else {
        return internal("broker_rng");
    };
    next.sid = sid;
    // Browsers drop a cookie over 4096 bytes (and the person with it): other services'
    // choices give way, one at a time, until the sealed session fits. A dropped choice only
    // means the chooser asks again on that service.
    let sealed = loop {
        let Some(sealed) = state.sealer.seal(Purpose::Session, &next) else {
            return internal("broker_rng");
        };
        let over = next.acting.len() > MAX_ACTING_SERVICES || sealed.len() > MAX_SESSION_COOKIE;
        let other = next.acting.keys().find(|k| **k != service).cloned();
        match (over, other) {
            (true, Some(k)) => {
                next.acting.remove(&k);
            }
            _ => break sealed,
        }
    };
    let at = (state.clock)();
    let record = audit_record(
        &next,
        &session.sid,
        &service,
        acting.as_ref(),
        client.as_deref(),
        at,
    );
    if let Err(e) = timed_append(state, at, record).await {
        return audit_unavailable(state, e);
    }
    let remaining = Duration::from_secs(session.exp.saturating_sub(now));
    // IdP-initiated logout finds the session by (IdP, NameID, SessionIndex): point that at the
    // new id first. If it cannot be written, the switch is refused and the old cookie stays
    // the person's session (still indexed), rather than leaving a session the IdP's logout
    // could no longer end.
    if let Some(index) = &next.session_index {
        if let Err(e) = state
            .store
            .index_session_for_logout(&next.idp, &next.name_id, index, &next.sid, remaining)
            .await
        {
            tracing::warn!(event = "represent_refused", code = "broker_store_unavailable", detail = %e.code(), sid = %session.sid);
            return crate::state::login::unavailable_page(
                crate::state::login::STORE_UNAVAILABLE,
                None,
            );
        }
    }
    crate::state::provider::revoke_session(state, &session.sid, remaining).await;
    state.store.touch_session(&next.sid, now).await;
    m.with_label_values(&["chosen"]).inc();
    tracing::info!(
        event = "represent_chosen",
        sid = %next.sid,
        previous_sid = %session.sid,
        service = %service,
        acting = acting.is_some(),
        source = acting.as_ref().map_or("", |a| a.representation().source()),
        reference = acting.as_ref().map_or("", |a| a.representation().reference()),
    );
    let mut r = see_other(&return_to);
    set_session_cookie(state, &mut r, &sealed);
    r
}
