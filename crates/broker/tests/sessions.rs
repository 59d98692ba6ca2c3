//! Session lifetime in process, with the clock injected: the idle timeout ends a session
//! left unused (for good, even if used again later), the absolute timeout ends it whatever
//! the activity, and both apply to the forward-auth path and `/whoami`'s reader alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use broker::leaf::http::Peer;
use broker::leaf::session::Purpose;
use broker::routes::acs::consume;
use broker::routes::forward_auth::auth;
use fixture::{BROWSER, config, fixture_now, ready, signed_body, state};

/// Seconds added to the fixture's instant; the clock every handler reads.
static OFFSET: AtomicU64 = AtomicU64::new(0);

fn clock() -> SystemTime {
    fixture_now() + Duration::from_secs(OFFSET.load(Ordering::SeqCst))
}

/// Tests in this file share `OFFSET`: they run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn check(s: &broker::state::State, cookie: &str) -> u16 {
    let req = hyper::Request::builder()
        .uri("/auth")
        .header("host", "sp.varco.example.org")
        .header("x-original-uri", "/")
        .header("cookie", format!("{}={cookie}", s.config.cookie_name))
        .extension(Peer("127.0.0.1:40000".parse().unwrap()))
        .body(())
        .unwrap();
    ready(auth(s, &req)).status().as_u16()
}

fn logged_in(extra: &str) -> (broker::state::State, String) {
    OFFSET.store(0, Ordering::SeqCst);
    let config = config(extra);
    let s = state(&config, clock);
    let (session, _) = ready(consume(&s, signed_body().as_bytes(), Some(BROWSER)))
        .unwrap_or_else(|f| panic!("{}", f.code()));
    let cookie = s.sealer.seal(Purpose::Session, &session).unwrap();
    (s, cookie)
}

#[test]
fn idle_timeout_ends_a_session_for_good() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (s, cookie) = logged_in("");
    // Default idle timeout: 1800 s.
    assert_eq!(check(&s, &cookie), 200);
    OFFSET.store(1_700, Ordering::SeqCst);
    assert_eq!(check(&s, &cookie), 200, "used within the idle window");
    OFFSET.store(1_700 + 1_800, Ordering::SeqCst);
    assert_eq!(
        check(&s, &cookie),
        200,
        "exactly the idle timeout is still in"
    );
    OFFSET.store(1_700 + 1_800 + 1_801, Ordering::SeqCst);
    assert_eq!(check(&s, &cookie), 401, "idle longer than the timeout");
    OFFSET.store(1_700 + 1_800 + 1_802, Ordering::SeqCst);
    assert_eq!(
        check(&s, &cookie),
        401,
        "ended for good, not revived by the last use"
    );
}

#[test]
fn a_session_without_an_activity_mark_is_idle_since_its_login() {
    // A missing mark (never used, or dropped when `store.max_activity_bytes` is full) reads
    // as "last used at login", never as "just used": first seen after the idle timeout, the
    // session is over. Before the activity budget, a missing mark counted as fresh use.
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (s, cookie) = logged_in("");
    OFFSET.store(1_801, Ordering::SeqCst);
    assert_eq!(check(&s, &cookie), 401, "idle since login");
    OFFSET.store(0, Ordering::SeqCst);
    let (s, cookie) = logged_in("");
    OFFSET.store(1_800, Ordering::SeqCst);
    assert_eq!(
        check(&s, &cookie),
        200,
        "exactly the idle timeout after login"
    );
}

#[test]
fn absolute_timeout_ends_even_an_active_session() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (s, cookie) = logged_in("");
    // Default lifetime: 28800 s; used every 1000 s, it never goes idle.
    let mut t = 0;
    while t < 28_800 {
        OFFSET.store(t, Ordering::SeqCst);
        assert_eq!(check(&s, &cookie), 200, "at {t}");
        t += 1_000;
    }
    OFFSET.store(28_800, Ordering::SeqCst);
    assert_eq!(check(&s, &cookie), 401);
}

#[test]
fn idle_timeout_can_be_disabled() {
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    OFFSET.store(0, Ordering::SeqCst);
    let config = fixture::config_with("idle_timeout_seconds = 0", "");
    assert_eq!(config.idle_timeout, None);
    let s = state(&config, clock);
    let (session, _) = ready(consume(&s, signed_body().as_bytes(), Some(BROWSER)))
        .unwrap_or_else(|f| panic!("{}", f.code()));
    let cookie = s.sealer.seal(Purpose::Session, &session).unwrap();
    assert_eq!(check(&s, &cookie), 200);
    OFFSET.store(20_000, Ordering::SeqCst);
    assert_eq!(check(&s, &cookie), 200, "hours of silence, no idle timeout");
}

#[test]
fn an_open_tunnel_ends_at_the_idle_timeout_logout_and_expiry() {
    // Issue 18: what an open WebSocket tunnel checks every proxy.tunnel_check_seconds. Its
    // checks are not activity: a session used only through a tunnel goes idle.
    let _one = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (s, cookie) = logged_in("");
    let session: broker::leaf::session::Session = s.sealer.open(Purpose::Session, &cookie).unwrap();
    let route = s
        .config
        .access
        .route("sp.varco.example.org", "/")
        .unwrap()
        .clone();
    let ended =
        |s: &broker::state::State| ready(broker::routes::proxy::tunnel_ended(s, &session, &route));
    assert_eq!(check(&s, &cookie), 200);
    assert_eq!(ended(&s), None);
    for t in [600, 1_200, 1_800] {
        OFFSET.store(t, Ordering::SeqCst);
        assert_eq!(ended(&s), None, "at {t}: within the idle window");
    }
    OFFSET.store(1_801, Ordering::SeqCst);
    assert_eq!(ended(&s), Some("idle"), "the checks did not keep it alive");
    assert_eq!(
        check(&s, &cookie),
        401,
        "and the session is over for requests too"
    );

    // Logout (revocation) and expiry.
    let (s, cookie) = logged_in("");
    let session: broker::leaf::session::Session = s.sealer.open(Purpose::Session, &cookie).unwrap();
    assert_eq!(check(&s, &cookie), 200);
    ready(
        s.store
            .revoke_session(&session.sid, Duration::from_secs(60)),
    );
    assert_eq!(
        ready(broker::routes::proxy::tunnel_ended(&s, &session, &route)),
        Some("revoked")
    );
    let config = fixture::config_with("idle_timeout_seconds = 0", "");
    let s = state(&config, clock);
    OFFSET.store(28_800, Ordering::SeqCst);
    assert_eq!(
        ready(broker::routes::proxy::tunnel_ended(&s, &session, &route)),
        Some("expired")
    );
}
