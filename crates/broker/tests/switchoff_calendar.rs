//! The switch-off in process, with the clock injected: the legacy login form walked across
//! the (illustrative) INPS timeline of docs/SWITCH-OFF.md — notice before each cut-off,
//! refusal from 00:00 Rome time on the day, businesses kept longer than citizens, a minor
//! kept on the `minori` service only — and a legacy session opened before a cut-off ending
//! with it on the forward-auth path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use broker::leaf::http::Peer;
use broker::routes::forward_auth::auth;
use broker::state::State;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The instant every handler reads, Unix seconds.
static NOW: AtomicU64 = AtomicU64::new(0);

fn clock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(NOW.load(Ordering::SeqCst))
}

fn set(instant: &str) {
    NOW.store(
        broker::leaf::clock::unix(saml::parse_instant(instant).unwrap()),
        Ordering::SeqCst,
    );
}

const CITIZEN: &str = "RSSMRA85T10A562S";
const BUSINESS: &str = "VRDGPP80A01H501U";
const MINOR: &str = "BNCLRA10A41H501K";
const PASSWORD: &str = "una password lunga";

fn state() -> State {
    let dir = std::env::temp_dir().join(format!("varco-switchoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hash = broker::features::legacy::hash_password(PASSWORD.as_bytes()).unwrap();
    let file = dir.join("legacy.txt");
    std::fs::write(
        &file,
        format!(
            "{CITIZEN} citizen - {hash}\n{BUSINESS} business - {hash}\n{MINOR} citizen minor {hash}\n"
        ),
    )
    .unwrap();
    let config = fixture::config(&format!(
        r#"
[legacy]
credentials_file = "{}"
[switchoff]
notice_days = 30
[switchoff.profile.citizen]
legacy_until = "2021-10-01"
[switchoff.profile.business]
legacy_until = "2024-09-01"
[[switchoff.exception]]
category = "minor"
services = ["minori"]
[[route]]
path_prefix = "/minori"
service = "minori"
min_loa = "low"
[[route]]
path_prefix = "/"
min_loa = "low"
"#,
        file.display()
    ));
    fixture::state(&config, clock)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Answer {
    status: u16,
    body: String,
    session: Option<String>,
}

/// One form round trip: GET the form, POST the credentials with its token and cookie.
fn login(s: &State, rt: &tokio::runtime::Runtime, code: &str, password: &str) -> Answer {
    let get = hyper::Request::builder()
        .uri("/legacy/login?return_to=/minori/x")
        .body(())
        .unwrap();
    let form = broker::routes::legacy::form(s, &get);
    assert_eq!(form.status(), 200);
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .next()
        .unwrap();
    let page = String::from_utf8(
        rt.block_on(form.into_body().collect())
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_owned();
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", &csrf)
        .append_pair("fiscal_code", code)
        .append_pair("password", password)
        .finish();
    let post = hyper::Request::builder()
        .method("POST")
        .uri("/legacy/login")
        .header("cookie", cookie)
        .extension(Peer("127.0.0.1:40000".parse().unwrap()))
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let r = rt.block_on(broker::routes::legacy::submit(s, post));
    let status = r.status().as_u16();
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{}=", s.config.cookie_name)));
    let body = String::from_utf8(
        rt.block_on(r.into_body().collect())
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    Answer {
        status,
        body,
        session,
    }
}

fn check(s: &State, session: &str, path: &str) -> u16 {
    let req = hyper::Request::builder()
        .uri("/auth")
        .header("host", "sp.varco.example.org")
        .header("x-original-uri", path)
        .header("cookie", session)
        .extension(Peer("127.0.0.1:40000".parse().unwrap()))
        .body(())
        .unwrap();
    runtime().block_on(auth(s, &req)).status().as_u16()
}

#[test]
fn legacy_logins_walk_the_inps_calendar() {
    let s = state();
    let rt = runtime();

    // 2020-10-01: no new PINs are issued (outside Varco); existing ones work, no notice.
    set("2020-10-01T08:00:00Z");
    let a = login(&s, &rt, CITIZEN, PASSWORD);
    assert_eq!(a.status, 303, "{}", a.body);
    let early = a.session.unwrap();
    assert_eq!(check(&s, &early, "/anything"), 200);

    // A wrong password is refused whatever the date.
    let a = login(&s, &rt, CITIZEN, "wrong password");
    assert_eq!(a.status, 401);
    assert!(a.session.is_none());

    // Within 30 days of 1 October 2021: the notice, and the session.
    set("2021-09-30T21:59:59Z");
    let a = login(&s, &rt, CITIZEN, PASSWORD);
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.contains("1 ottobre 2021"), "{}", a.body);
    assert!(
        a.body
            .contains("From <strong>1 October 2021</strong> you will need SPID, CIE or CNS")
    );
    let last_day = a.session.unwrap();
    assert_eq!(check(&s, &last_day, "/anything"), 200);
    // A WebSocket tunnel opened on that session (issue 18): open now, closed at the cut-off.
    let tunnel_ends = |s: &State, cookie: &str| {
        let value = cookie.split_once('=').unwrap().1;
        let session: broker::leaf::session::Session = s
            .sealer
            .open(broker::leaf::session::Purpose::Session, value)
            .unwrap();
        let route = s
            .config
            .access
            .route("sp.varco.example.org", "/anything")
            .unwrap()
            .clone();
        runtime().block_on(broker::routes::proxy::tunnel_ended(s, &session, &route))
    };
    assert_eq!(tunnel_ends(&s, &last_day), None);

    // 00:00 on 1 October 2021, Rome time: refused with the explanation; the session opened a
    // second earlier ends with the cut-off.
    set("2021-09-30T22:00:00Z");
    let a = login(&s, &rt, CITIZEN, PASSWORD);
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body.contains("Dal <strong>1 ottobre 2021</strong>"),
        "{}",
        a.body
    );
    assert!(a.body.contains("How to get a digital identity"));
    assert!(a.session.is_none());
    assert_eq!(tunnel_ends(&s, &last_day), Some("switch_off"));
    assert_eq!(check(&s, &last_day, "/anything"), 403);
    // A wrong password after the cut-off still says only "wrong credentials".
    let a = login(&s, &rt, CITIZEN, "wrong password");
    assert_eq!(a.status, 401);
    assert!(!a.body.contains("1 ottobre 2021"));

    // Businesses go on until 1 September 2024, with a notice in August.
    let a = login(&s, &rt, BUSINESS, PASSWORD);
    assert_eq!(a.status, 303, "{}", a.body);
    set("2024-08-15T10:00:00Z");
    let a = login(&s, &rt, BUSINESS, PASSWORD);
    assert_eq!(a.status, 200);
    assert!(a.body.contains("1 settembre 2024"));
    set("2024-08-31T22:00:00Z");
    assert_eq!(login(&s, &rt, BUSINESS, PASSWORD).status, 403);

    // A minor keeps legacy access after the citizens' cut-off, to the minori service only.
    let a = login(&s, &rt, MINOR, PASSWORD);
    assert_eq!(a.status, 303, "{}", a.body);
    let minor = a.session.unwrap();
    assert_eq!(check(&s, &minor, "/minori/domanda"), 200);
    assert_eq!(check(&s, &minor, "/pensioni"), 403);
}
