//! `GET /legacy/login` and `POST /legacy/login`: the username-and-password login kept during
//! the switch-off, within what the calendar (`features::switchoff`) allows. The credential
//! file, the throttle and the password check are `features::legacy`.
//!
//! May import: `state`, `features`, the leaf.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use identity::Method;
use serde::{Deserialize, Serialize};

use crate::features::admission::heavy::{BUSY, Refused, Work};
use crate::features::audit;
use crate::features::legacy::{LEGACY_IDP, MAX_PASSWORD, client_key, verify};
use crate::features::switchoff::Verdict;
use crate::leaf::clock::unix;
use crate::leaf::http::{Body, cookie, html, set};
use crate::leaf::pages::{self, escape};
use crate::leaf::session::{Purpose, Session, random_hex};
use crate::state::State;

/// Largest accepted form body.
const MAX_FORM: usize = 4096;

/// How long a client may take to send the form.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a verification may wait for a permit before the form answers 503.
const PERMIT_WAIT: Duration = Duration::from_secs(5);

/// The client address (see `Access::client_ip`).
fn client_ip<B>(state: &State, req: &Request<B>) -> Option<IpAddr> {
    let peer = req.extensions().get::<crate::leaf::http::Peer>()?.0.ip();
    Some(state.config.access.client_ip(peer, req.headers()))
}

// === Routes ===

/// The sealed anti-CSRF token: the browser binding, when the form was made, where to go.
#[derive(Serialize, Deserialize)]
struct FormToken {
    /// The `varco_legacy` cookie value.
    b: String,
    /// Issued at, Unix seconds.
    t: u64,
    /// The checked return address.
    r: String,
}

fn form_cookie(state: &State) -> &'static str {
    if state.config.cookie_secure {
        "__Host-varco_legacy"
    } else {
        "varco_legacy"
    }
}

fn not_configured() -> Response<Body> {
    html(
        StatusCode::NOT_FOUND,
        pages::simple("Pagina non trovata", "Page not found", "", ""),
    )
}

/// `GET /legacy/login?return_to=<url>`: the form.
pub fn form<B>(state: &State, req: &Request<B>) -> Response<Body> {
    if state.config.legacy.is_none() {
        return not_configured();
    }
    let return_to = crate::leaf::form::text_pairs(req.uri().query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "return_to")
        .map_or_else(|| "/".to_owned(), |(_, v)| v.into_owned());
    if state.config.return_to(&return_to).is_none() {
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
    let browser = cookie(req, form_cookie(state))
        .filter(|c| c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned)
        .or_else(|| random_hex(&state.rng, 16));
    let Some(browser) = browser else {
        return crate::leaf::http::internal("broker_rng");
    };
    form_response(state, StatusCode::OK, &browser, &return_to, None)
}

/// The form page with a fresh token, and the binding cookie.
fn form_response(
    state: &State,
    status: StatusCode,
    browser: &str,
    return_to: &str,
    error: Option<(&str, &str)>,
) -> Response<Body> {
    let token = FormToken {
        b: browser.to_owned(),
        t: unix((state.clock)()),
        r: return_to.to_owned(),
    };
    let Some(sealed) = state.sealer.seal(Purpose::LegacyForm, &token) else {
        return crate::leaf::http::internal("broker_seal");
    };
    let error = error
        .map(|(it, en)| {
            format!(
                "<div class=\"panel error\" role=\"alert\"><p>{}</p><p lang=\"en\">{}</p></div>",
                escape(it),
                escape(en)
            )
        })
        .unwrap_or_default();
    let main = format!(
        "<h1>Accesso con le credenziali del portale</h1>\
         <p class=\"lead\" lang=\"en\">Sign in with the portal's own credentials</p>\
         <p class=\"note\">Credenziali in dismissione: accedi con SPID, CIE o CNS appena puoi. \
         <span lang=\"en\">These credentials are being retired: use SPID, CIE or CNS as soon as \
         you can.</span> <a href=\"/login\">SPID / CIE / CNS</a></p>\
         {error}\
         <form class=\"form\" method=\"post\" action=\"/legacy/login\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <p><label for=\"fiscal_code\">Codice fiscale <span lang=\"en\">/ Fiscal code</span></label>\
         <input id=\"fiscal_code\" name=\"fiscal_code\" autocomplete=\"username\" required \
         maxlength=\"32\" autocapitalize=\"characters\" spellcheck=\"false\"></p>\
         <p><label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" \
         required maxlength=\"256\"></p>\
         <p><button class=\"btn\" type=\"submit\">Accedi <span lang=\"en\">/ Sign in</span></button></p>\
         </form>",
        escape(&sealed)
    );
    let mut r = html(
        status,
        pages::layout(pages::Lang::It, "Accesso / Sign in", None, &main),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    let secure = if state.config.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    let ttl = state
        .config
        .legacy
        .as_ref()
        .map_or(1800, |l| l.form_ttl.as_secs());
    let value = format!(
        "{}={browser}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}",
        form_cookie(state)
    );
    if let Ok(v) = HeaderValue::from_str(&value) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A refused form submission: its code, status and the page to show.
struct Refusal {
    code: &'static str,
    status: StatusCode,
}

/// `POST /legacy/login`: `csrf`, `fiscal_code`, `password`.
pub async fn submit<B>(state: &State, req: Request<B>) -> Response<Body>
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Some(legacy) = state.config.legacy.as_ref() else {
        return not_configured();
    };
    let Some(throttle) = state.legacy.as_ref() else {
        return not_configured();
    };
    let browser = cookie(&req, form_cookie(state)).map(str::to_owned);
    let ip = client_ip(state, &req);
    let mut evidence = audit::Evidence {
        client: req
            .extensions()
            .get::<crate::leaf::http::Peer>()
            .map(|p| p.0.to_string()),
        method: Some("legacy"),
        idp: Some(LEGACY_IDP.to_owned()),
        ..audit::Evidence::default()
    };
    let previous = crate::state::current::current_session(state, &req).await;
    let collect = Limited::new(req.into_body(), MAX_FORM).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, collect).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => {
            return refuse(
                state,
                evidence,
                Refusal {
                    code: "legacy_body_too_large",
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                },
            )
            .await;
        }
        Err(_) => {
            return refuse(
                state,
                evidence,
                Refusal {
                    code: "legacy_body_timeout",
                    status: StatusCode::REQUEST_TIMEOUT,
                },
            )
            .await;
        }
    };
    let mut csrf = None;
    let mut fiscal_code = None;
    let mut password: Option<String> = None;
    let mut repeated = false;
    for (k, v) in crate::leaf::form::text_pairs(&body) {
        let slot = match k.as_ref() {
            "csrf" => &mut csrf,
            "fiscal_code" => &mut fiscal_code,
            "password" => &mut password,
            _ => continue,
        };
        repeated |= slot.is_some();
        *slot = Some(v.into_owned());
    }
    // The form must come from a page this browser got from us, recently.
    let now = (state.clock)();
    let token = csrf
        .as_deref()
        .and_then(|c| state.sealer.open::<FormToken>(Purpose::LegacyForm, c));
    let token = match (token, browser.as_deref()) {
        (Some(t), Some(b))
            if t.b == b && unix(now).saturating_sub(t.t) <= legacy.form_ttl.as_secs() =>
        {
            t
        }
        _ => {
            return refuse(
                state,
                evidence,
                Refusal {
                    code: "legacy_csrf",
                    status: StatusCode::FORBIDDEN,
                },
            )
            .await;
        }
    };
    let browser = token.b.clone();
    let (Some(fiscal_code), Some(password), false) = (fiscal_code, password, repeated) else {
        return refuse(
            state,
            evidence,
            Refusal {
                code: "legacy_bad_form",
                status: StatusCode::BAD_REQUEST,
            },
        )
        .await;
    };
    // The throttle key: the normalized code, or the raw text (bounded) for malformed ones.
    let normalized = identity::normalize_fiscal_code(&fiscal_code).ok();
    let user_key = normalized.clone().unwrap_or_else(|| {
        fiscal_code
            .trim()
            .to_ascii_uppercase()
            .chars()
            .take(32)
            .collect()
    });
    evidence.sub = normalized.as_ref().map(|c| format!("TINIT-{c}"));
    let client_key = ip.map(client_key).unwrap_or_default();
    // Both limits are reserved now and given back on success: a failure keeps its count.
    if !throttle.reserve_attempt(&user_key, &client_key, legacy) {
        state.metrics.legacy_throttled.inc();
        return refuse_form(
            state,
            evidence,
            Refusal {
                code: "legacy_throttled",
                status: StatusCode::TOO_MANY_REQUESTS,
            },
            &browser,
            &token.r,
            (
                "Troppi tentativi non riusciti. Riprova più tardi.",
                "Too many failed attempts. Please try again later.",
            ),
        )
        .await;
    }
    let entry = normalized
        .as_deref()
        .and_then(|c| legacy.credentials.get(c));
    let phc = entry.map_or_else(|| legacy.credentials.dummy.clone(), |e| e.phc.clone());
    let over_long = password.len() > MAX_PASSWORD;
    let Ok(Ok(_permit)) = tokio::time::timeout(PERMIT_WAIT, throttle.permits().acquire()).await
    else {
        throttle.give_back(&user_key, &client_key);
        return refuse(
            state,
            evidence,
            Refusal {
                code: "legacy_busy",
                status: StatusCode::SERVICE_UNAVAILABLE,
            },
        )
        .await;
    };
    let checked = state
        .heavy
        .run(Work::Password, move || {
            // An over-long password is still hashed (against the dummy's cost) and never matches.
            let ok = verify(&phc, password.as_bytes());
            ok && !over_long
        })
        .await;
    drop(_permit);
    let checked = match checked {
        Ok(checked) => checked,
        Err(Refused::Busy) => {
            // Nothing was verified: the reserved attempts are not failures.
            throttle.give_back(&user_key, &client_key);
            return refuse(
                state,
                evidence,
                Refusal {
                    code: BUSY,
                    status: StatusCode::SERVICE_UNAVAILABLE,
                },
            )
            .await;
        }
        Err(Refused::Failed) => false,
    };
    let Some(entry) = entry.filter(|_| checked) else {
        // The reserved attempts stay counted: they are the failures.
        return refuse_form(
            state,
            evidence,
            Refusal {
                code: "legacy_bad_credentials",
                status: StatusCode::UNAUTHORIZED,
            },
            &browser,
            &token.r,
            (
                "Codice fiscale o password non corretti.",
                "Wrong fiscal code or password.",
            ),
        )
        .await;
    };
    throttle.succeeded(&user_key, &client_key);
    let Some(code) = normalized else {
        return crate::leaf::http::internal("legacy_state");
    };
    evidence.profile = Some(entry.profile.as_str());
    evidence.category = entry.category.clone();
    // The switch-off policy, now.
    let now = (state.clock)();
    let now_unix = i64::try_from(unix(now)).unwrap_or(i64::MAX);
    let verdict = state
        .config
        .switchoff
        .login(entry.profile, entry.category.as_deref(), now_unix);
    if let Verdict::Refused { since } = verdict {
        let record = evidence.record(
            audit::Outcome::Refused {
                code: "legacy_switched_off",
            },
            now,
        );
        if let Err(e) = crate::state::login::timed_append(state, now, record).await {
            tracing::info!(event = "audit_refusal_not_recorded", code = %e.code(), refusal = %"legacy_switched_off");
        }
        count_refused(state, "legacy_switched_off");
        tracing::info!(event = "login_refused", code = %"legacy_switched_off", profile = %entry.profile.as_str());
        return switched_off_page(since);
    }
    let Some(sid) = random_hex(&state.rng, 16) else {
        return crate::leaf::http::internal("broker_rng");
    };
    let principal = identity::normalize(
        vec![(
            identity::attr::FISCAL_NUMBER.to_owned(),
            vec![format!("TINIT-{code}")],
        )],
        &identity::Source {
            method: Method::Legacy,
            idp: LEGACY_IDP,
            level: "legacy",
            auth_time: unix(now),
            session_id: &sid,
        },
        &identity::Mapping::default(),
    );
    let mut principal = match principal {
        Ok(p) => p,
        Err(e) => return crate::leaf::http::internal(e.code()),
    };
    // The credential store knows the profile; nothing is inferred.
    principal.profile = entry.profile;
    evidence.sub = Some(principal.sub.clone());
    let iat = unix(now);
    let session = Session {
        sid,
        idp: LEGACY_IDP.to_owned(),
        name_id: String::new(),
        name_qualifier: String::new(),
        session_index: None,
        assertion_id: String::new(),
        iat,
        exp: iat + state.config.session_ttl.as_secs(),
        principal,
        legacy_category: entry.category.clone(),
        acting: std::collections::BTreeMap::new(),
    };
    let Some(sealed) = state.sealer.seal(Purpose::Session, &session) else {
        return crate::leaf::http::internal("broker_seal");
    };
    // No session without its durable audit record: fail closed.
    let record = evidence.record(audit::Outcome::Completed { sid: &session.sid }, now);
    if let Err(e) = crate::state::login::timed_append(state, now, record).await {
        return crate::state::login::audit_unavailable(state, e);
    }
    if let Some(old) = previous {
        let remaining = Duration::from_secs(old.exp.saturating_sub(old.iat));
        crate::state::provider::revoke_session(state, &old.sid, remaining).await;
    }
    state.store.touch_session(&session.sid, session.iat).await;
    tracing::info!(event = "login_completed", sid = %session.sid, idp = %LEGACY_IDP, loa = %session.principal.auth.loa.as_str(), method = %"legacy", profile = %entry.profile.as_str(), switchoff = %verdict.label());
    state.metrics.login_completed(
        Method::Legacy,
        LEGACY_IDP,
        session.principal.auth.loa,
        entry.profile,
        entry.category.as_deref(),
    );
    // An exception that a representation replaces (issue 24): say so at every login.
    let replaced_by = match &verdict {
        Verdict::Restricted { category, .. } => state
            .config
            .switchoff
            .exception(category)
            .and_then(|e| e.replaced_by),
        _ => None,
    };
    let mut r = match &verdict {
        Verdict::Notice { from } => notice_page(*from, &token.r, None, None),
        Verdict::Restricted {
            notice: Some(until),
            services,
            ..
        } => notice_page(*until, &token.r, Some(services), replaced_by),
        Verdict::Restricted { .. } if replaced_by.is_some() => replaced_page(&token.r, replaced_by),
        _ => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::SEE_OTHER;
            if let Ok(v) = HeaderValue::from_str(&token.r) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
    };
    crate::state::login::set_session_cookie(state, &mut r, &sealed);
    set(&mut r, header::CACHE_CONTROL, "no-store");
    r
}

fn count_refused(state: &State, code: &'static str) {
    state
        .metrics
        .logins_refused
        .with_label_values(&[code, ""])
        .inc();
}

/// Records a refused submission and answers with a plain page.
async fn refuse(state: &State, evidence: audit::Evidence, f: Refusal) -> Response<Body> {
    record_refusal(state, &evidence, f.code).await;
    if f.code == BUSY {
        return state.heavy.busy_page();
    }
    let (it, en) = match f.code {
        "legacy_csrf" => (
            "Il modulo è scaduto o non proviene da questo sito. Ricarica la pagina di accesso e riprova.",
            "The form has expired or did not come from this site. Reload the sign-in page and try again.",
        ),
        "legacy_busy" => (
            "Il servizio è momentaneamente occupato. Riprova tra poco.",
            "The service is busy. Please try again shortly.",
        ),
        _ => ("La richiesta non è valida.", "The request is not valid."),
    };
    let mut r = html(
        f.status,
        pages::simple("Accesso non riuscito", "Sign-in failed", it, en),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    if f.status == StatusCode::SERVICE_UNAVAILABLE {
        let after = state.config.admission.retry_after.as_secs().to_string();
        if let Ok(v) = HeaderValue::from_str(&after) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    r
}

/// Records a refused submission and shows the form again with a message.
async fn refuse_form(
    state: &State,
    evidence: audit::Evidence,
    f: Refusal,
    browser: &str,
    return_to: &str,
    message: (&str, &str),
) -> Response<Body> {
    record_refusal(state, &evidence, f.code).await;
    form_response(state, f.status, browser, return_to, Some(message))
}

async fn record_refusal(state: &State, evidence: &audit::Evidence, code: &'static str) {
    let now = (state.clock)();
    let record = evidence.record(audit::Outcome::Refused { code }, now);
    if let Err(e) = crate::state::login::timed_append(state, now, record).await {
        tracing::info!(event = "audit_refusal_not_recorded", code = %e.code(), refusal = %code);
    }
    count_refused(state, code);
    tracing::info!(event = "login_refused", code = %code);
}

/// How to get a digital identity: the same text on the notice and the refusal page.
const HOW_IT: &str = "<h2>Come ottenere un'identità digitale</h2><ul>\
    <li><strong>SPID</strong>: si richiede a uno dei gestori di identità accreditati da AgID \
    (elenco su spid.gov.it), di persona, con la CIE o la CNS, o con riconoscimento via webcam.</li>\
    <li><strong>CIE</strong>: la Carta d'Identità Elettronica si richiede al Comune; con il PIN \
    ricevuto alla consegna si accede con l'app CieID.</li>\
    <li><strong>CNS</strong>: la Carta Nazionale dei Servizi (spesso la tessera sanitaria \
    attivata) con il suo PIN e un lettore di smart card.</li></ul>";

const HOW_EN: &str = "<h3>How to get a digital identity</h3><ul>\
    <li><strong>SPID</strong>: ask one of the identity providers accredited by AgID (listed on \
    spid.gov.it), in person, with a CIE or CNS, or by webcam identification.</li>\
    <li><strong>CIE</strong>: the electronic identity card is issued by the municipality; with \
    the PIN received on delivery, sign in with the CieID app.</li>\
    <li><strong>CNS</strong>: the National Services Card (often the activated health card) with \
    its PIN and a smart-card reader.</li></ul>";

/// The pointer from an exception to the representation that replaces it: the person's
/// representative signs in with their own digital identity and acts for them.
fn replacement(kind: Option<identity::represent::Kind>) -> (String, String) {
    use identity::represent::Kind as K;
    let Some(kind) = kind else {
        return (String::new(), String::new());
    };
    let (who_it, who_en) = match kind {
        K::Parental => ("un genitore", "a parent"),
        K::Guardianship => ("il tutore", "the guardian"),
        K::SupportAdministration => ("l'amministratore di sostegno", "the support administrator"),
        K::LegalRepresentative => ("il rappresentante legale", "the legal representative"),
        K::Intermediary => ("un intermediario", "an intermediary"),
        K::Delegation => ("una persona delegata", "a delegated person"),
    };
    (
        format!(
            "<p>Questa eccezione è sostituita dalla rappresentanza: {who_it} può accedere con la \
             propria identità digitale (SPID, CIE o CNS) e scegliere <strong>Entra per conto \
             di…</strong>. Chiedi al portale di registrare la rappresentanza.</p>"
        ),
        format!(
            "<p>This exception is replaced by representation: {who_en} can sign in with their \
             own digital identity (SPID, CIE or CNS) and choose <strong>Act on behalf \
             of…</strong>. Ask the portal to record the representation.</p>"
        ),
    )
}

/// A login under an exception that a representation replaces: the pointer, then on.
fn replaced_page(return_to: &str, kind: Option<identity::represent::Kind>) -> Response<Body> {
    let (it, en) = replacement(kind);
    let link = escape(return_to);
    let main_it = format!(
        "<h1>Avviso: eccezione in dismissione</h1>{it}\
         <p><a class=\"btn\" href=\"{link}\">Continua</a></p>"
    );
    let main_en = format!(
        "<h2>Notice: exception being retired</h2>{en}<p><a href=\"{link}\">Continue</a></p>"
    );
    html(
        StatusCode::OK,
        pages::bilingual("Avviso / Notice", &main_it, &main_en, ""),
    )
}

/// After a login before the cut-off: the notice, then on to the service.
fn notice_page(
    from: crate::features::switchoff::Day,
    return_to: &str,
    services: Option<&Vec<String>>,
    replaced_by: Option<identity::represent::Kind>,
) -> Response<Body> {
    let (it, en) = match services {
        None => (
            format!(
                "<p>Dal <strong>{}</strong> per accedere servirà SPID, CIE o CNS: le credenziali \
                 del portale non saranno più accettate.</p>",
                escape(&from.italian())
            ),
            format!(
                "<p>From <strong>{}</strong> you will need SPID, CIE or CNS: the portal's own \
                 credentials will no longer be accepted.</p>",
                escape(&from.english())
            ),
        ),
        Some(list) => {
            let joined = list.join(", ");
            let list = escape(&joined);
            (
                format!(
                    "<p>Le tue credenziali restano valide solo per: {list}, e fino al \
                     <strong>{}</strong>. Da quella data servirà SPID, CIE o CNS.</p>",
                    escape(&from.italian())
                ),
                format!(
                    "<p>Your credentials remain valid only for: {list}, and until \
                     <strong>{}</strong>. From that date you will need SPID, CIE or CNS.</p>",
                    escape(&from.english())
                ),
            )
        }
    };
    let (pointer_it, pointer_en) = replacement(replaced_by);
    let (it, en) = (it + &pointer_it, en + &pointer_en);
    let link = escape(return_to);
    let main_it = format!(
        "<h1>Avviso: credenziali in dismissione</h1>{it}{HOW_IT}\
         <p><a class=\"btn\" href=\"{link}\">Continua</a></p>"
    );
    let main_en = format!(
        "<h2>Notice: credentials being retired</h2>{en}{HOW_EN}\
         <p><a href=\"{link}\">Continue</a></p>"
    );
    html(
        StatusCode::OK,
        pages::bilingual("Avviso / Notice", &main_it, &main_en, ""),
    )
}

/// After the cut-off: the refusal, and how to get SPID or CIE.
fn switched_off_page(since: crate::features::switchoff::Day) -> Response<Body> {
    let main_it = format!(
        "<h1>Credenziali non più valide</h1>\
         <p>Dal <strong>{}</strong> le credenziali del portale non sono più accettate per il tuo \
         profilo. Per accedere usa SPID, CIE o CNS.</p>{HOW_IT}\
         <p><a class=\"btn\" href=\"/login\">Accedi con SPID, CIE o CNS</a></p>",
        escape(&since.italian())
    );
    let main_en = format!(
        "<h2>Credentials no longer valid</h2>\
         <p>Since <strong>{}</strong> the portal's own credentials are no longer accepted for \
         your profile. Sign in with SPID, CIE or CNS.</p>{HOW_EN}\
         <p><a href=\"/login\">Sign in with SPID, CIE or CNS</a></p>",
        escape(&since.english())
    );
    let mut r = html(
        StatusCode::FORBIDDEN,
        pages::bilingual(
            "Credenziali non più valide / Credentials no longer valid",
            &main_it,
            &main_en,
            " error",
        ),
    );
    set(&mut r, header::CACHE_CONTROL, "no-store");
    if let Ok(v) = HeaderValue::from_str("legacy_switched_off") {
        r.headers_mut().insert("x-varco-reason", v);
    }
    r
}
