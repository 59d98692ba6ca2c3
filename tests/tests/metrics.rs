//! `/metrics` over HTTP against the built binary, checked by the real `promtool check
//! metrics` (Debian package `prometheus`): after a completed login, a refused one and
//! forward-auth checks, the counters say so, with bounded labels; peers outside
//! `metrics.allow` get 403.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use e2e::Browser;
use e2e::stack::{Stack, idp_answer_from, post_to_acs};

fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (make test installs the Debian package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// The value of the sample whose line starts with `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn scrape_after_logins_passes_promtool_and_counts() {
    let stack = Stack::start();
    let mut b = Browser::default();
    let answer = idp_answer_from(
        &mut b,
        &stack.login_url(2, "/"),
        &[("user", "mario.rossi"), ("level", "2")],
    );
    assert_eq!(post_to_acs(&mut b, &answer).status, 303);
    for _ in 0..3 {
        let r = b.get_with(&format!("{}/auth", stack.varco), &[("X-Original-URI", "/")]);
        assert_eq!(r.status, 200);
    }
    // A refused login: level 1 asserted for a level-3 request.
    let mut other = Browser::default();
    let answer = idp_answer_from(
        &mut other,
        &stack.login_url(3, "/"),
        &[("user", "mario.rossi"), ("level", "1")],
    );
    assert_eq!(post_to_acs(&mut other, &answer).status, 400);
    assert_eq!(
        Browser::default()
            .get_with(&format!("{}/auth", stack.varco), &[("X-Original-URI", "/")])
            .status,
        401
    );

    let scrape = b.get(&format!("{}/metrics", stack.management));
    assert_eq!(scrape.status, 200, "{}", scrape.body);
    assert!(
        scrape
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = scrape.body;
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool check metrics:\n{said}\n{text}");

    let idp = &stack.idp;
    let eq = |series: &str, v: f64| {
        assert_eq!(sample(&text, series), Some(v), "{series}\n{text}");
    };
    eq(
        &format!(
            "varco_logins_started_total{{federation=\"spid\",idp=\"{idp}\",level=\"SpidL2\"}}"
        ),
        1.0,
    );
    eq(
        &format!(
            "varco_logins_completed_total{{idp=\"{idp}\",loa=\"substantial\",method=\"spid\"}}"
        ),
        1.0,
    );
    eq(
        "varco_logins_refused_total{code=\"saml_level_too_low\",spid_error=\"\"}",
        1.0,
    );
    eq("varco_access_decisions_total{outcome=\"allow\"}", 3.0);
    eq("varco_access_decisions_total{outcome=\"no_session\"}", 1.0);
    eq("varco_tokens_minted_total", 1.0);
    eq("varco_metadata_idps", 2.0);
    eq(
        "varco_http_requests_total{route=\"saml_acs\",status=\"3xx\"}",
        1.0,
    );
    eq(
        "varco_http_requests_total{route=\"saml_acs\",status=\"4xx\"}",
        1.0,
    );
    // Both logins (the completed one and the refused one) were made durable, one after the
    // other: two records, each alone in its group commit.
    eq("varco_audit_append_duration_seconds_count", 2.0);
    eq("varco_audit_batch_records_count", 2.0);
    eq("varco_audit_batch_records_sum", 2.0);
    // Pre-initialised: the first audit failure moves a series that already exists, so the
    // alert's increase() sees it.
    eq(
        "varco_audit_failures_total{code=\"audit_unavailable\"}",
        0.0,
    );
    eq("varco_audit_failures_total{code=\"audit_encode\"}", 0.0);
    eq("varco_audit_up", 1.0);
    eq(
        "varco_seconds_to_expiry{kind=\"sp_certificate\",name=\"sp\"}",
        sample(
            &text,
            "varco_seconds_to_expiry{kind=\"sp_certificate\",name=\"sp\"}",
        )
        .filter(|s| *s > 300.0 * 86_400.0 && *s <= 365.0 * 86_400.0)
        .unwrap_or(-1.0),
    );
    assert!(text.contains("varco_build_info{version=\""), "{text}");
    assert!(
        text.contains("varco_http_request_duration_seconds_bucket{route=\"auth\",le=\"0.001\"}")
    );
    assert!(
        text.contains("varco_metadata_source_state{source=\"idp-0\",state=\"fresh\"} 1"),
        "{text}"
    );
}

#[test]
fn metrics_are_refused_outside_the_allowed_networks() {
    let stack = Stack::start_with("[metrics]\nallow = [\"10.0.0.0/8\"]\n");
    let r = Browser::default().get(&format!("{}/metrics", stack.management));
    assert_eq!(r.status, 403, "{}", r.body);
}

#[test]
fn issue18_metrics_are_off_the_public_listener_by_default() {
    // Behind an ingress every peer is the ingress, so the peer check cannot protect
    // /metrics there: it is served on the management listener only.
    let stack = Stack::start();
    let mut b = Browser::default();
    let public = b.get(&format!("{}/metrics", stack.varco));
    assert_eq!(public.status, 404, "{}", public.body);
    assert!(!public.body.contains("varco_build_info"));
    let scrape = b.get(&format!("{}/metrics", stack.management));
    assert_eq!(scrape.status, 200);
    assert!(scrape.body.contains("varco_build_info"), "{}", scrape.body);
    // The probes answer there too; nothing else does.
    assert_eq!(b.get(&format!("{}/healthz", stack.management)).status, 200);
    assert_eq!(b.get(&format!("{}/readyz", stack.management)).status, 200);
    for path in ["/auth", "/saml/login", "/login", "/whoami", "/"] {
        let r = b.get(&format!("{}{path}", stack.management));
        assert_eq!(r.status, 404, "{path}: {r:?}");
    }
}

#[test]
fn metrics_public_serves_them_on_the_public_listener_too() {
    let stack = Stack::start_with("[metrics]\npublic = true\n");
    let r = Browser::default().get(&format!("{}/metrics", stack.varco));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("varco_build_info"));
}

/// Sends one request on `s` and reads the answer's first bytes: `None` when the server closed
/// the connection without answering.
fn one_exchange(s: &mut std::net::TcpStream) -> Option<String> {
    use std::io::Read as _;
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    if s.write_all(b"GET /auth HTTP/1.1\r\nHost: x\r\nX-Original-URI: /\r\n\r\n")
        .is_err()
    {
        return None;
    }
    let mut buf = [0u8; 512];
    match s.read(&mut buf) {
        Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).into_owned()),
        _ => None,
    }
}

#[test]
fn connections_over_the_cap_are_closed_at_accept_and_counted() {
    // `admission.max_connections = 16`: sixteen idle keep-alive connections hold every slot;
    // the seventeenth is closed without an answer and counted; once one of the sixteen
    // closes, a new connection is served again.
    let stack = Stack::start_with("[admission]\nmax_connections = 16\n");
    let addr = stack.varco.strip_prefix("http://").unwrap().to_owned();
    let scrape = || {
        Browser::default()
            .get(&format!("{}/metrics", stack.management))
            .body
    };
    // The readiness probe's connections are closed by the time the server answers it, but
    // the server may notice a moment later: wait until none is open.
    while sample(&scrape(), "varco_connections_open") != Some(0.0) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut held = Vec::new();
    for i in 0..16 {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let answer = one_exchange(&mut s).unwrap_or_else(|| panic!("connection {i} refused"));
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        held.push(s);
    }
    let text = scrape();
    assert_eq!(sample(&text, "varco_connections_open"), Some(16.0));
    assert_eq!(
        sample(&text, "varco_connections_refused_total{listener=\"main\"}"),
        Some(0.0)
    );

    let mut over = std::net::TcpStream::connect(&addr).unwrap();
    assert_eq!(
        one_exchange(&mut over),
        None,
        "the 17th is closed unanswered"
    );
    let text = scrape();
    assert_eq!(
        sample(&text, "varco_connections_refused_total{listener=\"main\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "varco_connections_open"), Some(16.0));

    drop(held.pop());
    while sample(&scrape(), "varco_connections_open") != Some(15.0) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut again = std::net::TcpStream::connect(&addr).unwrap();
    let answer = one_exchange(&mut again).expect("a slot is free again");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}
