//! `POST /saml/acs`: the Assertion Consumer Service. The pending request started by the same
//! browser is the only source of the expected IdP, level and return path; the session cookie
//! is set only after the Response validated and its audit record is durable.
//!
//! May import: `state`, `config`, `features`, the leaf.

use std::time::Duration;

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use ring::rand::SystemRandom;

use crate::features::admission::heavy::{BUSY, Refused, Work};
use crate::features::audit;
use crate::features::registry::federation_method;
use crate::leaf::clock::unix;
use crate::leaf::form::{Field, form_fields};
use crate::leaf::http::{Body, cookie, html};
use crate::leaf::pages;
use crate::leaf::session::{Session, random_hex};
use crate::state::State;
use crate::state::current::current_session;
use crate::state::login::{STORE_UNAVAILABLE, login_cookie, timed_append_as, unavailable_page};

/// Largest accepted request body (the ACS form). SPID Responses are 10-30 KB.
const MAX_BODY: usize = 512 * 1024;

/// How long a client may take to send the ACS form body.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Why an ACS post was refused; the code is stable (logs, metrics, the page).
pub struct AcsFailure {
    status: StatusCode,
    code: &'static str,
    spid_error: Option<u8>,
    /// The IdP refused a login whose request carried `spid:AgeLimit`, with no SPID anomaly
    /// number (the AgID guidelines for minors define none for it): the page explains the
    /// service's age limits.
    age_limited: bool,
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
            age_limited: false,
            detail: detail.into(),
        }
    }
}

/// `POST /saml/acs`: `SAMLResponse` (base64) and `RelayState`.
pub async fn acs(state: &State, req: Request<Incoming>) -> Response<Body> {
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
            .get::<crate::leaf::http::Peer>()
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
    // From here on this request ends in an audit record: a sync that falls due meanwhile
    // may wait for it (features/audit/file.rs).
    evidence.expected = state.audit.expect();
    match consume_recorded(state, body, browser.as_deref(), &mut evidence).await {
        Ok((session, return_to)) => {
            let idp = session.idp.clone();
            crate::state::login::complete(state, previous, &evidence, session, &return_to, &idp)
                .await
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
    if let Err(e) = timed_append_as(state, now, record.into(), &evidence.expected).await {
        tracing::warn!(event = "audit_refusal_not_recorded", code = %e.code(), refusal = %f.code);
    }
    acs_failed(state, f, &evidence)
}

/// A login step whose store operation failed: refused (fail closed), 503.
fn store_failure(e: crate::features::store::StoreError) -> AcsFailure {
    AcsFailure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        STORE_UNAVAILABLE,
        format!("login state store: {}", e.code()),
    )
}

/// A validation the heavy pool did not run: 503 `broker_busy` (retry later) or 500.
fn heavy_refused(r: Refused) -> AcsFailure {
    let status = match r {
        Refused::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Refused::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    AcsFailure::new(status, r.code(), "validation not run: heavy-work pool")
}

/// The ACS decision for one form body: the session to open and where to send the browser,
/// or why not. `browser` is the value of the login cookie the request carried.
pub async fn consume(
    state: &State,
    body: &[u8],
    browser: Option<&str>,
) -> Result<(Session, String), AcsFailure> {
    let body = hyper::body::Bytes::copy_from_slice(body);
    consume_recorded(state, body, browser, &mut audit::Evidence::default()).await
}

/// [`consume`], filling `evidence` with what the audit record needs as it goes.
pub async fn consume_recorded(
    state: &State,
    body: hyper::body::Bytes,
    browser: Option<&str>,
    evidence: &mut audit::Evidence,
) -> Result<(Session, String), AcsFailure> {
    let bad = |code, detail: &str| AcsFailure::new(StatusCode::BAD_REQUEST, code, detail);
    // Form decoding, white-space removal, base64 and (without RelayState) the InResponseTo
    // parse grow with the body: one heavy job, so the async worker's share of an ACS post is
    // the same whatever its size (issue 17). The job owns the body (a shared handle, no copy).
    // With the in-process store the same job also reads the pending request RelayState
    // names and, when it is this browser's and its IdP still trusted, validates the Response
    // against it ([`early`]): one hand-off to the heavy pool per login instead of two
    // (issue 20). Anything else is decided below, as for the Redis store.
    let max = state.config.max_response_bytes;
    let ahead = Ahead {
        store: state.store.clone(),
        registry: state.registry.clone(),
        config: state.config.clone(),
        clock: state.clock,
        browser: browser.map(str::to_owned),
    };
    // The body waits with the job: counted against `admission.heavy_queue_bytes`.
    let held = body.len();
    let (decoded, early) = state
        .heavy
        .run_holding(Work::Response, held, move || {
            let decoded = decode_form(&body, max);
            let early = ahead.early(&decoded);
            (decoded, early)
        })
        .await
        .map_err(heavy_refused)?;
    evidence.response_b64 = decoded.response_b64;
    evidence.response_sha256 = decoded.response_sha256;
    let Form {
        xml,
        relay_state,
        hint,
    } = decoded.form?;
    // The file sink keeps a completed login's Response beside its record, raw (a shared
    // handle, no copy).
    evidence.response_xml = Some(xml.clone());

    // The pending request is found by the RelayState Varco sent (the request ID), or else by
    // the Response's InResponseTo. Both are untrusted lookup keys: validation below requires
    // the signed InResponseTo to equal the pending request's ID. RelayState first spares a
    // second parse of the document.
    let (found, decided) = match early {
        Some(e) => (
            Some((e.request_id, e.pending)),
            Some((e.entry, e.now, e.validated)),
        ),
        None => (None, None),
    };
    let found = match (found, relay_state) {
        (Some(found), _) => Some(found),
        (None, Some(r)) => state
            .store
            .get_pending(&r)
            .await
            .map_err(store_failure)?
            .map(|p| (r, p)),
        (None, None) => None,
    };
    let (request_id, pending) = match found {
        Some(found) => found,
        None => {
            let hint = match hint {
                Some(h) => h,
                // A RelayState that named nothing: the whole parse for the hint, on the heavy
                // pool too.
                None => {
                    let doc = xml.clone();
                    state
                        .heavy
                        .run(Work::Response, move || saml::response_in_response_to(&doc))
                        .await
                        .map_err(heavy_refused)?
                }
            };
            let request_id = hint.ok_or_else(|| {
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
    let (entry, now, validated) = match decided {
        // Checked and validated in the first job, against this same pending request.
        Some((entry, now, validated)) => {
            evidence.method = Some(federation_method(entry.descriptor.federation).as_str());
            (entry, now, validated)
        }
        None => {
            // The current snapshot decides: an IdP dropped by a refresh since the login
            // started is no longer trusted, and a rotated key applies at once; so does its
            // validUntil.
            let entry = state
                .registry
                .get_valid(&pending.idp, (state.clock)())
                .ok_or_else(|| {
                    bad(
                        "broker_unknown_idp",
                        "the IdP of the request is no longer trusted",
                    )
                })?;
            evidence.method = Some(federation_method(entry.descriptor.federation).as_str());
            let now = (state.clock)();
            // Parse, canonicalize and verify on the heavy pool, never on an async worker:
            // the job owns what it reads (the decoded bytes, the IdP entry, the
            // expectations).
            let job = {
                let config = state.config.clone();
                let entry = entry.clone();
                let request_id = request_id.clone();
                let pending = pending.clone();
                move || validate(&xml, &config, &entry, &request_id, &pending, now)
            };
            let validated = state
                .heavy
                .run(Work::Response, job)
                .await
                .map_err(heavy_refused)?;
            (entry, now, validated)
        }
    };
    let method = federation_method(entry.descriptor.federation);
    let assertion = validated.map_err(|e| {
        let spid_error = match &e {
            saml::Error::Status { spid_error, .. } => *spid_error,
            _ => None,
        };
        // A SPID IdP checking spid:AgeLimit answers the anomaly status (Responder /
        // AuthnFailed) without a number: not attacker bytes, a person outside the limits.
        let age_limited = matches!(
            &e,
            saml::Error::Status {
                spid_error: None,
                ..
            }
        ) && pending.request_xml.contains("<spid:AgeLimit");
        let status = if spid_error.is_some() || age_limited {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        AcsFailure {
            status,
            code: e.code(),
            spid_error,
            age_limited,
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
        acting: std::collections::BTreeMap::new(),
    };
    Ok((session, pending.return_to.clone()))
}

/// What the heavy pool read from an ACS form body: what the audit record keeps of the
/// Response whatever happens next, and the form's fields or why they were refused.
struct Decoded {
    /// The SAMLResponse value, white space removed (`None`: no single SAMLResponse field).
    response_b64: Option<Vec<u8>>,
    /// Its digest, when a refused record would keep it by hash only.
    response_sha256: Option<String>,
    form: Result<Form, AcsFailure>,
}

/// The decoded fields of an ACS form.
struct Form {
    /// The Response's bytes, at most `saml.max_response_bytes`.
    xml: std::sync::Arc<[u8]>,
    /// RelayState as UTF-8, at most the bindings' 80 bytes (`None`: absent or not UTF-8).
    relay_state: Option<String>,
    /// Without a RelayState, the Response's untrusted InResponseTo, read in the same job
    /// (`Some(None)`: the document names none).
    hint: Option<Option<String>>,
}

/// What the first heavy job needs to look ahead: the pending request, the IdP entry, and
/// the validation ([`Ahead::early`]).
struct Ahead {
    store: std::sync::Arc<crate::features::store::Store>,
    registry: std::sync::Arc<metadata::Registry>,
    config: std::sync::Arc<crate::config::Config>,
    clock: crate::leaf::clock::Clock,
    browser: Option<String>,
}

/// A login decided in the first heavy job: the pending request RelayState named (this
/// browser's), its IdP's entry as trusted at `now`, and the Response validated against them.
struct Early {
    request_id: String,
    pending: std::sync::Arc<crate::features::store::Pending>,
    entry: std::sync::Arc<metadata::IdpEntry>,
    now: std::time::SystemTime,
    validated: Result<saml::Assertion, saml::Error>,
}

impl Ahead {
    /// On the heavy pool, after the form decoded: with the in-process store (answers without
    /// I/O), the pending request RelayState names; if it is this browser's and its IdP is
    /// still trusted, the Response validated against it. `None` whenever any of that does
    /// not hold: the async side then takes every step itself, in the usual order, with the
    /// usual refusals (a browser mismatch, an unknown IdP), so the outcome is the same.
    fn early(self, decoded: &Decoded) -> Option<Early> {
        let form = decoded.form.as_ref().ok()?;
        let request_id = form.relay_state.clone()?;
        let pending = self.store.get_pending_now(&request_id)??;
        if self.browser.as_deref() != Some(pending.browser.as_str()) {
            return None;
        }
        let entry = self.registry.get_valid(&pending.idp, (self.clock)())?;
        let now = (self.clock)();
        let validated = validate(&form.xml, &self.config, &entry, &request_id, &pending, now);
        Some(Early {
            request_id,
            pending,
            entry,
            now,
            validated,
        })
    }
}

/// `saml::validate_response` of `xml` for the pending request `request_id`, against the
/// IdP's `entry`, at `now`. Runs on the heavy pool.
fn validate(
    xml: &[u8],
    config: &crate::config::Config,
    entry: &metadata::IdpEntry,
    request_id: &str,
    pending: &crate::features::store::Pending,
    now: std::time::SystemTime,
) -> Result<saml::Assertion, saml::Error> {
    let expected = saml::Expected {
        request_id,
        acs_url: &config.sp.acs_url,
        sp_entity_id: &config.sp.entity_id,
        requested_level: pending.level,
        idp_entity_id: &pending.idp,
        request_issue_instant: pending.issued_at,
    };
    saml::validate_response(xml, &expected, &entry.descriptor, now, config.clock_skew)
}

/// Decodes the ACS form body: `SAMLResponse` (once, base64, white space allowed, at most
/// `max` bytes decoded) and `RelayState` (at most once, at most the bindings' 80 bytes).
/// Runs on the heavy pool: each step is linear in the body, and the order of the checks is
/// the order of the error codes an ACS post has always got.
fn decode_form(body: &[u8], max: usize) -> Decoded {
    let bad = |code, detail: &str| AcsFailure::new(StatusCode::BAD_REQUEST, code, detail);
    let refused = |f: AcsFailure| Decoded {
        response_b64: None,
        response_sha256: None,
        form: Err(f),
    };
    // Both fields in one pass over the body.
    let [response, relay_state] = form_fields(body, [&b"SAMLResponse"[..], b"RelayState"]);
    let mut compact = match response {
        Field::One(v) => v,
        Field::Missing => return refused(bad("broker_missing_saml_response", "no SAMLResponse")),
        Field::Repeated => {
            return refused(bad("broker_duplicate_field", "SAMLResponse given twice"));
        }
    };
    // White space (line breaks every 64 or 76 characters from some IdPs) is removed in
    // place; most Responses have none, which two vectorized searches for ASCII's five white
    // space bytes tell (half the instructions of a fold over the bytes in blocks).
    let spaced = memchr::memchr3(b' ', b'\n', b'\r', &compact).is_some()
        || memchr::memchr2(b'\t', b'\x0C', &compact).is_some();
    if spaced {
        compact.retain(|b| !b.is_ascii_whitespace());
    }
    let form = read_form(&compact, relay_state, max);
    Decoded {
        response_sha256: audit::refused_response_digest(&compact),
        response_b64: Some(compact),
        form,
    }
}

/// The rest of [`decode_form`], once the SAMLResponse value is known.
fn read_form(compact: &[u8], relay_state: Field, max: usize) -> Result<Form, AcsFailure> {
    let bad = |code, detail: &str| AcsFailure::new(StatusCode::BAD_REQUEST, code, detail);
    // Over `saml.max_response_bytes` is refused before decoding (base64 is 4 characters per
    // 3 bytes) and checked exactly after: what a hostile Response can cost grows with its
    // size, and a real one is 10-20 KB (issue 17).
    let too_large = || {
        AcsFailure::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "broker_response_too_large",
            "SAMLResponse larger than saml.max_response_bytes",
        )
    };
    if compact.len() > max.div_ceil(3).saturating_mul(4) {
        return Err(too_large());
    }
    let xml: std::sync::Arc<[u8]> = decode_base64(compact)
        .ok_or_else(|| bad("broker_invalid_base64", "SAMLResponse is not base64"))?
        .into();
    if xml.len() > max {
        return Err(too_large());
    }
    // The bindings cap RelayState at 80 bytes; Varco's own are far shorter, so a longer one
    // is not Varco's and is refused rather than looked up or cut. A repeated one is refused
    // like a repeated SAMLResponse.
    let relay_state = match relay_state {
        Field::One(v) if v.len() > saml::MAX_RELAY_STATE => {
            return Err(bad(
                "broker_relay_state_too_long",
                "RelayState longer than the 80 bytes the SAML bindings allow",
            ));
        }
        Field::One(v) => String::from_utf8(v).ok(),
        Field::Repeated => return Err(bad("broker_duplicate_field", "RelayState given twice")),
        Field::Missing => None,
    };
    let hint = match relay_state {
        Some(_) => None,
        None => Some(saml::response_in_response_to(&xml)),
    };
    Ok(Form {
        xml,
        relay_state,
        hint,
    })
}

/// `compact` (base64, white space already removed) decoded: strict, as `STANDARD` (padding
/// required, canonical, no trailing bits), `None` for anything else. The decoder is
/// `xmldsig`'s, vectorized (the scalar loop was ~80,000 instructions of a ~17 KB Response on
/// the heavy pool, issue 20).
fn decode_base64(compact: &[u8]) -> Option<Vec<u8>> {
    xmldsig::decode_base64_compact(compact)
}

fn acs_failed(state: &State, f: AcsFailure, evidence: &audit::Evidence) -> Response<Body> {
    // The reference on the page is the request id of the log lines and `X-Request-Id`.
    let correlation = crate::leaf::logging::request_id()
        .map(|id| id.as_str().to_owned())
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
    if f.code == BUSY {
        return state.heavy.busy_page();
    }
    if f.status == StatusCode::SERVICE_UNAVAILABLE {
        return unavailable_page(f.code, Some(&correlation));
    }
    let failure = pages::Failure {
        code: f.code,
        correlation: &correlation,
        spid_error: f.spid_error,
    };
    let page = if f.age_limited {
        pages::login_failed_age_limit(&failure)
    } else {
        pages::login_failed(&failure)
    };
    html(f.status, page)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::{decode_base64, decode_form};

    /// What `decode_form` made of `body`: the Response's bytes or the refusal's code.
    fn decoded(body: &[u8]) -> Result<Vec<u8>, &'static str> {
        decode_form(body, 1 << 20)
            .form
            .map(|f| f.xml.to_vec())
            .map_err(|e| e.code())
    }

    /// ASCII's five white space bytes, raw, form-escaped or as `+`, alone or in runs, at the
    /// start, inside and at the end of the value, are removed before decoding, as they were
    /// by the per-byte check; a vertical tab or a non-breaking space is not white space and
    /// fails the decoding.
    #[test]
    fn white_space_is_removed_wherever_it_is_and_only_it() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(b"<samlp:Response ID=\"_1\"/>");
        let want = Ok(b"<samlp:Response ID=\"_1\"/>".to_vec());
        assert_eq!(decoded(format!("SAMLResponse={b64}").as_bytes()), want);
        let spaces = [
            " ", "\t", "\n", "\x0C", "\r", "+", "%20", "%09", "%0A", "%0c", "%0D", "\r\n",
            "%0D%0A", "++",
        ];
        for ws in spaces {
            for at in [0, 1, 4, b64.len() / 2, b64.len() - 2, b64.len()] {
                let (a, b) = b64.split_at(at);
                let body = format!("SAMLResponse={a}{ws}{b}&RelayState=r");
                assert_eq!(decoded(body.as_bytes()), want, "{body:?}");
            }
        }
        for not_space in ["\x0B", "%0B", "%C2%A0", "%00"] {
            let (a, b) = b64.split_at(4);
            let body = format!("SAMLResponse={a}{not_space}{b}");
            assert_eq!(
                decoded(body.as_bytes()),
                Err("broker_invalid_base64"),
                "{body:?}"
            );
        }
    }

    /// The old decoder, the reference.
    fn standard(b: &[u8]) -> Option<Vec<u8>> {
        base64::engine::general_purpose::STANDARD.decode(b).ok()
    }

    /// A small deterministic generator (xorshift), so that a failure names its input.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }

    #[test]
    fn the_simd_engine_decides_as_the_standard_one() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let std_b64 = base64::engine::general_purpose::STANDARD;
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Valid encodings of every length around the SIMD block sizes (32 in, 24 out) and of
        // a Response's size, then each with one byte changed to every interesting value at
        // every kind of position: the start, inside a SIMD block, the last block, the padding.
        let lengths = (0..200).chain([767, 768, 769, 12_000, 12_001, 12_002]);
        for n in lengths {
            let raw: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            let good = std_b64.encode(&raw).into_bytes();
            if good.is_empty() {
                cases.push(good);
                continue;
            }
            let last = good.len() - 1;
            let spots = [
                0,
                good.len() / 2,
                last.saturating_sub(33),
                last.saturating_sub(4),
                last.saturating_sub(1),
                last,
            ];
            for at in spots {
                for b in [
                    b'=', b'-', b'_', b' ', b'\n', b'%', b'+', b'/', b'A', b'z', 0, 0x80, 0xff,
                ] {
                    let mut bad = good.clone();
                    bad[at] = b;
                    cases.push(bad);
                }
            }
            // Truncated, extended, padding added or removed.
            cases.push(good[..last].to_vec());
            cases.push([&good[..], b"="].concat());
            cases.push([&good[..], b"=="].concat());
            cases.push([&good[..], b"AAAA"].concat());
            cases.push(good.iter().copied().filter(|&b| b != b'=').collect());
            // A quad with non-zero trailing bits: the last symbol before the padding moved by one.
            if good.ends_with(b"=") {
                let mut bits = good.clone();
                let i = good.iter().rposition(|&b| b != b'=').unwrap_or(0);
                bits[i] = if bits[i] == b'A' { b'B' } else { b'A' };
                cases.push(bits);
            }
            cases.push(good);
        }
        // Every byte value in a block the SIMD loop reads whole and in one it leaves to the
        // scalar tail: its alphabet check must refuse exactly the bytes `STANDARD` refuses.
        let long = std_b64
            .encode((0..3_000).map(|i| (i * 7 % 256) as u8).collect::<Vec<u8>>())
            .into_bytes();
        for at in [5, 37, 1_000, long.len() - 6, long.len() - 3] {
            for b in 0..=255u8 {
                let mut v = long.clone();
                v[at] = b;
                cases.push(v);
            }
        }
        // Random bytes from alphabets that are mostly base64.
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        for _ in 0..3_000 {
            let n = rng.below(300);
            let junk = rng.below(4);
            cases.push(
                (0..n)
                    .map(|_| {
                        if junk > 0 && rng.below(50 * junk) == 0 {
                            rng.next() as u8
                        } else {
                            alphabet[rng.below(alphabet.len())]
                        }
                    })
                    .collect(),
            );
        }
        // Padding in every place of a block.
        for n in 1..80 {
            for at in 0..n {
                let mut v = vec![b'Q'; n];
                v[at] = b'=';
                cases.push(v.clone());
                if at + 1 < n {
                    v[at + 1] = b'=';
                    cases.push(v);
                }
            }
        }
        let mut accepted = 0;
        for case in &cases {
            let want = standard(case);
            accepted += usize::from(want.is_some());
            assert_eq!(
                decode_base64(case),
                want,
                "{:?}",
                String::from_utf8_lossy(case)
            );
        }
        // Both verdicts are exercised, in numbers.
        assert!(
            accepted > 200 && cases.len() - accepted > 10_000,
            "{accepted} of {}",
            cases.len()
        );
    }
}
