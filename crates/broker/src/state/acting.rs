//! Whom a request is for (issue 24): the person logged in, or someone they represent on the
//! route's service; and the service's age limits. Shared by `/auth` and the reverse proxy,
//! so both decide alike.
//!
//! The session keeps only the *choice* (`Session::acting`, a source id and reference); every
//! request asks the source again (through its short cache) and `identity::represent::act`
//! checks the record against the delegate, the service and the time. A choice that no
//! longer holds (revoked, expired, out of scope) is refused with its code, never silently
//! turned into "myself"; a source that cannot answer fails closed.
//!
//! May import: the state, `features`, the leaf.

use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::{HeaderName, HeaderValue};
use identity::represent::Acting;
use identity::{AgeRefusal, CalendarDate, Principal, TokenParams};

use crate::features::access::Route;
use crate::features::represent::SourceError;
use crate::leaf::session::{ActingAs, Session};
use crate::state::State;
use crate::state::views::View;

/// An acting identity with its header values, built once per request.
pub(crate) struct ActingView {
    /// The acting identity (represented party, delegate as `act`, representation).
    pub acting: Acting,
    /// The identity headers of the represented party plus the `X-Varco-Act-*` and
    /// `X-Varco-Representation-*` headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

/// Whom the request is for.
pub(crate) enum Subject {
    /// The person logged in.
    Own,
    /// Someone they represent.
    Acting(Arc<ActingView>),
}

impl Subject {
    /// The principal the route's policy and age limits are checked on: the represented
    /// party (whose `auth` is the delegate's login) or the person logged in.
    pub(crate) fn principal<'a>(&'a self, session: &'a Session) -> &'a Principal {
        match self {
            Subject::Own => &session.principal,
            Subject::Acting(a) => a.acting.principal(),
        }
    }
}

/// What the caller answers.
pub(crate) enum Outcome {
    /// Go on with this subject.
    Go(Subject),
    /// Send the browser to the chooser (this URL).
    Choose(String),
    /// Refuse, with a page.
    Refused(Refusal),
}

/// A refusal: status, stable code and the page's text.
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub code: &'static str,
    pub it: String,
    pub en: String,
}

/// The page of a refusal with `status`, the code in `X-Varco-Reason`.
pub(crate) fn refusal_page(
    r: &Refusal,
    status: StatusCode,
) -> hyper::Response<crate::leaf::http::Body> {
    let mut resp = crate::leaf::http::html(
        status,
        crate::leaf::pages::bilingual(
            "Accesso non consentito / Access not allowed",
            &format!("<h1>Accesso non consentito</h1><p>{}</p>", r.it),
            &format!("<h2>Access not allowed</h2><p>{}</p>", r.en),
            " error",
        ),
    );
    if let Ok(v) = HeaderValue::from_str(r.code) {
        resp.headers_mut()
            .insert(HeaderName::from_static("x-varco-reason"), v);
    }
    crate::leaf::http::set(&mut resp, hyper::header::CACHE_CONTROL, "no-store");
    resp
}

/// The chooser's address for `service`, coming back to `return_to` (already encoded).
pub(crate) fn chooser_url(base: &str, service: &str, return_to: &str) -> String {
    format!(
        "{base}/represent?service={}&return_to={return_to}",
        crate::leaf::form::encode(service)
    )
}

/// The page and code for a source that could not answer.
pub(crate) fn source_down(state: &State, source_hint: &str, e: &SourceError) -> Refusal {
    let reason = match e {
        SourceError::Unavailable { reason, .. } => reason,
        SourceError::Refused(e) => e.code(),
    };
    state
        .metrics
        .represent_source_errors
        .with_label_values(&[source_hint, reason])
        .inc();
    tracing::warn!(event = "represent_source_failed", code = %e.code(), source = %source_hint, error = %e);
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: e.code(),
        it: format!(
            "Non è possibile verificare ora le deleghe e le rappresentanze per questo servizio, \
             quindi l'accesso è sospeso. Riprova tra qualche minuto. Codice: {}",
            e.code()
        ),
        en: format!(
            "Delegations and representations for this service cannot be checked right now, \
             so access is on hold. Please try again in a few minutes. Code: {}",
            e.code()
        ),
    }
}

/// The page and code for a chosen representation that no longer holds.
pub(crate) fn refused(why: identity::represent::Refusal, chooser: &str) -> Refusal {
    use identity::represent::Refusal as R;
    let (it, en) = match why {
        R::Expired => (
            "La delega o rappresentanza scelta è scaduta.",
            "The chosen delegation or representation has expired.",
        ),
        R::NotYetValid => (
            "La delega o rappresentanza scelta non è ancora valida.",
            "The chosen delegation or representation is not valid yet.",
        ),
        R::OutOfScope => (
            "La delega o rappresentanza scelta non comprende questo servizio.",
            "The chosen delegation or representation does not cover this service.",
        ),
        R::NotFound => (
            "La delega o rappresentanza scelta non esiste più (revocata).",
            "The chosen delegation or representation no longer exists (revoked).",
        ),
        R::RepresentedOfAge => (
            "La persona rappresentata è maggiorenne: la responsabilità genitoriale è cessata.",
            "The represented person is of age: parental authority has ended.",
        ),
        R::WrongDelegate | R::SelfRepresentation => (
            "La delega o rappresentanza scelta non è utilizzabile da te.",
            "You cannot use the chosen delegation or representation.",
        ),
    };
    let chooser = crate::leaf::pages::escape(chooser);
    Refusal {
        status: StatusCode::FORBIDDEN,
        code: why.code(),
        it: format!("{it} <a href=\"{chooser}\">Scegli di nuovo per chi agire</a>."),
        en: format!("{en} <a href=\"{chooser}\">Choose again whom to act for</a>."),
    }
}

/// Whom this request on `route` is for; `return_to` (encoded) is where the chooser comes back.
pub(crate) async fn resolve(
    state: &State,
    view: &View,
    route: &Route,
    return_to: &str,
    now: u64,
) -> Outcome {
    resolve_service(
        state,
        &view.session,
        route.service.as_deref(),
        return_to,
        now,
    )
    .await
}

/// Whom a request of `session` on `service` is for (a route's, or an OpenID Provider
/// client's); `return_to` (encoded) is where the chooser comes back.
pub(crate) async fn resolve_service(
    state: &State,
    session: &Session,
    service: Option<&str>,
    return_to: &str,
    now: u64,
) -> Outcome {
    let m = &state.metrics.represent_decisions;
    let Some((service, rule)) =
        service.and_then(|s| state.config.represent.service(s).map(|r| (s, r)))
    else {
        return Outcome::Go(Subject::Own);
    };
    let base = &state.config.public_base_url;
    let chooser = chooser_url(base, service, return_to);
    let represent = &state.config.represent;
    match session.acting.get(service) {
        Some(ActingAs::Myself) if !rule.required => Outcome::Go(Subject::Own),
        Some(ActingAs::Other { source, reference }) => {
            match represent
                .act(rule, &session.principal, source, reference, service, now)
                .await
            {
                Err(e) => Outcome::Refused(source_down(state, source, &e)),
                Ok(Err(why)) => {
                    m.with_label_values(&[why.code()]).inc();
                    tracing::info!(event = "represent_refused", code = %why.code(), sid = %session.sid, source = %source, reference = %reference);
                    Outcome::Refused(refused(why, &chooser))
                }
                Ok(Ok(acting)) => {
                    m.with_label_values(&["acting"]).inc();
                    Outcome::Go(Subject::Acting(Arc::new(acting_view(state, acting))))
                }
            }
        }
        // No choice yet (or "myself" on a service that requires a representation): ask.
        _ => {
            if rule.required {
                m.with_label_values(&["chooser"]).inc();
                return Outcome::Choose(chooser);
            }
            match represent
                .offers(rule, &session.principal, service, now)
                .await
            {
                Err(e) => Outcome::Refused(source_down(state, "offers", &e)),
                Ok((offers, _)) if offers.is_empty() => {
                    m.with_label_values(&["own"]).inc();
                    Outcome::Go(Subject::Own)
                }
                Ok(_) => {
                    m.with_label_values(&["chooser"]).inc();
                    Outcome::Choose(chooser)
                }
            }
        }
    }
}

/// The acting identity of `delegate` on `service` through the representation `reference` of
/// `source`, asked of the source again now (the OpenID Provider's token and UserInfo
/// requests, after the choice made at authorize). `Err` is the stable code of the refusal
/// (the representation no longer holds, the service has no rule any more, or the source
/// cannot answer: fail closed).
pub(crate) async fn again(
    state: &State,
    delegate: &Principal,
    service: &str,
    source: &str,
    reference: &str,
    now: u64,
) -> Result<Acting, &'static str> {
    let m = &state.metrics.represent_decisions;
    let Some(rule) = state.config.represent.service(service) else {
        return Err(identity::represent::Refusal::OutOfScope.code());
    };
    match state
        .config
        .represent
        .act(rule, delegate, source, reference, service, now)
        .await
    {
        Err(e) => Err(source_down(state, source, &e).code),
        Ok(Err(why)) => {
            m.with_label_values(&[why.code()]).inc();
            tracing::info!(event = "represent_refused", code = %why.code(), source = %source, reference = %reference);
            Err(why.code())
        }
        Ok(Ok(acting)) => {
            m.with_label_values(&["acting"]).inc();
            Ok(acting)
        }
    }
}

/// The route's age limits on the subject (`birthdate` of the person logged in, or of the
/// one represented), on today's Italian civil date.
pub(crate) fn age_check(route: &Route, subject: &Principal, now: u64) -> Result<(), Refusal> {
    // Without limits everyone passes (`AgeLimits::check`): today's Italian date, a time
    // zone computation, is needed only by a route that has one.
    if !route.age.is_set() {
        return Ok(());
    }
    let Err(why) = route
        .age
        .check(subject.birthdate.as_deref(), CalendarDate::italy_at(now))
    else {
        return Ok(());
    };
    let (it, en) = match why {
        AgeRefusal::BelowMinimum { min_age } => (
            format!("Questo servizio è riservato a chi ha almeno {min_age} anni."),
            format!("This service is only for people aged {min_age} or over."),
        ),
        AgeRefusal::AboveMaximum { max_age } => (
            format!("Questo servizio è riservato a chi ha al massimo {max_age} anni."),
            format!("This service is only for people aged {max_age} or under."),
        ),
        AgeRefusal::BirthdateUnknown => (
            "Questo servizio ha limiti di età e l'identità usata non indica la data di nascita."
                .to_owned(),
            "This service has age limits and the identity used does not state a date of birth."
                .to_owned(),
        ),
    };
    Err(Refusal {
        status: StatusCode::FORBIDDEN,
        code: why.code(),
        it,
        en,
    })
}

fn acting_view(state: &State, acting: Acting) -> ActingView {
    let mut headers: Vec<(HeaderName, HeaderValue)> = state
        .config
        .access
        .headers
        .iter()
        .filter_map(|(name, claim)| {
            let v = claim.value(acting.principal())?;
            Some((name.clone(), HeaderValue::from_bytes(v.as_bytes()).ok()?))
        })
        .collect();
    for (name, value) in acting.headers() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.push((n, v));
        }
    }
    ActingView { acting, headers }
}

/// The `Bearer` value of the acting token for `audience`: cached in the session's view
/// beside its own tokens (keyed by audience, source and reference), or minted now. Never
/// valid beyond the session nor the representation.
pub(crate) fn acting_token(
    state: &State,
    view: &View,
    acting: &ActingView,
    audience: &str,
    now: u64,
) -> Option<HeaderValue> {
    let access = &state.config.access;
    let rep = acting.acting.representation();
    let key = format!("{audience}\n{}\n{}", rep.source(), rep.reference());
    let mut tokens = view
        .tokens
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ttl = access
        .token_ttl
        .min(view.session.exp.saturating_sub(now))
        .min(rep.not_after().saturating_sub(now));
    if let Some((_, value, minted)) = tokens.iter().find(|(a, _, _)| **a == *key) {
        if now.saturating_sub(*minted) < access.token_ttl / 2 && now.saturating_sub(*minted) < ttl {
            return Some(value.clone());
        }
    }
    let params = TokenParams {
        issuer: &access.issuer,
        audience,
        ttl,
    };
    let token = match access
        .keys
        .sign_acting(&acting.acting, &params, now, &state.rng)
    {
        Ok(t) => {
            state.metrics.tokens_minted.inc();
            t
        }
        Err(e) => {
            tracing::warn!(event = "token_mint_failed", code = %e.code());
            return None;
        }
    };
    let value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    tokens.retain(|(a, _, _)| **a != *key);
    tokens.push((key.into(), value.clone(), now));
    Some(value)
}
