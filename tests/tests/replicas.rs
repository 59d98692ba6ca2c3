//! Two `varco` replicas sharing one real `redis-server` (started here on a Unix socket),
//! behind the real nginx balancing round-robin, with the same SP key and session sealing
//! key: a login started on one replica completes on the other; a Response replayed to the
//! other replica is refused, and 20 concurrent submissions of one Response (10 to each
//! replica) open exactly one session; logout on one replica holds on the other. With Redis
//! stopped, new logins get 503 (stable code, IT/EN page, metric, log line) while an existing
//! session still passes `/auth` on both replicas; with Redis started again, logins work
//! without restarting Varco.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use e2e::stack::{Stack, idp_answer_from, pct, post_to_acs};
use e2e::{Browser, Process, Reply, binary, form_input, free_port};

/// nginx on `port` balancing Varco's endpoints over both replicas (round-robin, the
/// default), protecting `/` (a portal served by nginx itself echoes the subject it got).
fn start_nginx(port: u16, replicas: [u16; 2]) -> Process {
    let portal = free_port();
    let deploy = e2e::nginx::deploy_dir();
    let mut p = e2e::nginx::start(
        "nginx-replicas",
        &format!(
            "  upstream varco {{ server 127.0.0.1:{a}; server 127.0.0.1:{b}; }}\n\
               server {{\n    listen 127.0.0.1:{portal};\n\
                 location / {{ return 200 \"portal sub=$http_x_varco_sub\\n\"; }}\n  }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    server_name 127.0.0.1;\n\
                 include {deploy}/varco-endpoints.conf;\n\
                 location /public/ {{ return 200 \"ok\\n\"; }}\n\
                 location / {{\n      include {deploy}/varco-protect.conf;\n      proxy_pass http://127.0.0.1:{portal};\n    }}\n\
               }}",
            deploy = deploy.display(),
            a = replicas[0],
            b = replicas[1],
        ),
    );
    p.wait_ready(&format!("http://127.0.0.1:{port}/public/ping"));
    p
}

struct Site {
    /// Replica A (the stack's Varco) and its demo IdPs.
    stack: Stack,
    /// Replica B's base URL.
    b: String,
    b_proc: Process,
    /// nginx's base URL (the public one).
    base: String,
    redis: testkit::Redis,
    _nginx: Process,
}

impl Site {
    fn a(&self) -> &str {
        &self.stack.varco
    }

    fn logs(&self) -> [String; 2] {
        [self.stack.varco_log(), self.b_proc.log()]
    }
}

fn site() -> Site {
    let redis = testkit::Redis::start("replicas");
    let nport = free_port();
    let base = format!("http://127.0.0.1:{nport}");
    let stack = Stack::start_public(
        Some(&base),
        &format!(
            "[store]\nbackend = \"redis\"\nurl = \"redis+unix://{}\"\n\
             command_timeout_ms = 300\nkey_prefix = \"e2e:\"\n\
             [[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\n",
            redis.socket().display()
        ),
    );
    // Replica B: the same file (same SP key, session key, IdPs, Redis), another port.
    let a_port: u16 = stack.varco.rsplit(':').next().unwrap().parse().unwrap();
    let b_port = free_port();
    let text = std::fs::read_to_string(stack.dir.join("varco.toml")).unwrap();
    let text = text.replace(
        &format!("listen = \"127.0.0.1:{a_port}\""),
        &format!("listen = \"127.0.0.1:{b_port}\""),
    );
    // And its own management port.
    let a_management = stack.management.trim_start_matches("http://");
    let text = text.replace(
        &format!("management_listen = \"{a_management}\""),
        &format!("management_listen = \"127.0.0.1:{}\"", free_port()),
    );
    // Each replica keeps its own audit chain.
    let text = format!("{text}\n[audit]\ndir = \"audit-b\"\n");
    std::fs::write(stack.dir.join("varco-b.toml"), text).unwrap();
    let mut b_proc = Process::start(
        "varco-b",
        &binary("varco"),
        &[
            "serve",
            "--config",
            stack.dir.join("varco-b.toml").to_str().unwrap(),
        ],
        &stack.dir,
    );
    let b = format!("http://127.0.0.1:{b_port}");
    b_proc.wait_ready(&format!("{b}/healthz"));
    let nginx = start_nginx(nport, [a_port, b_port]);
    Site {
        stack,
        b,
        b_proc,
        base,
        redis,
        _nginx: nginx,
    }
}

/// The IdP's answer (the auto-POST page) for a login started at `start_base`.
fn answer_via(site: &Site, b: &mut Browser, start_base: &str) -> Reply {
    idp_answer_from(
        b,
        &format!(
            "{start_base}/saml/login?idp={}&level=2&return_to={}",
            pct(&site.stack.idp),
            pct("/")
        ),
        &[("user", "mario.rossi"), ("level", "2")],
    )
}

/// Posts the IdP's answer to the ACS at `base` (a given replica, or nginx).
fn post_acs_at(b: &mut Browser, answer: &Reply, base: &str) -> Reply {
    let saml_response = form_input(&answer.body, "SAMLResponse").unwrap();
    let relay_state = form_input(&answer.body, "RelayState").unwrap_or_default();
    b.post_form(
        &format!("{base}/saml/acs"),
        &[
            ("SAMLResponse", &saml_response),
            ("RelayState", &relay_state),
        ],
    )
}

fn count(log: &str, event: &str) -> usize {
    log.matches(&format!("\"event\":\"{event}\"")).count()
}

/// The replica (0 = A, 1 = B) whose log has exactly one `event`, the other none.
fn replica_with(site: &Site, event: &str) -> usize {
    let logs = site.logs();
    match (count(&logs[0], event), count(&logs[1], event)) {
        (1, 0) => 0,
        (0, 1) => 1,
        other => panic!("{event}: {other:?}\nA:\n{}\nB:\n{}", logs[0], logs[1]),
    }
}

fn auth_at(b: &mut Browser, replica: &str) -> u16 {
    b.get_with(&format!("{replica}/auth"), &[("X-Original-URI", "/")])
        .status
}

#[test]
fn a_login_started_on_one_replica_completes_on_the_other_and_logout_holds_on_both() {
    let site = site();
    let mut b = Browser::default();
    // Through nginx: `/saml/login` and `/saml/acs` are consecutive requests, so round-robin
    // gives them to different replicas (the logs tell which).
    let answer = answer_via(&site, &mut b, &site.base);
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let started = replica_with(&site, "login_started");
    let completed = replica_with(&site, "login_completed");
    assert_ne!(
        started, completed,
        "round-robin sent both steps to one replica"
    );

    // The session works on both replicas, directly and through nginx's auth_request.
    assert_eq!(auth_at(&mut b, site.a()), 200);
    assert_eq!(auth_at(&mut b, &site.b), 200);
    for _ in 0..4 {
        let page = b.get(&format!("{}/pratiche", site.base));
        assert_eq!(page.status, 200, "{page:?}");
        assert!(
            page.body.contains("sub=TINIT-RSSMRA80A01H501U"),
            "{}",
            page.body
        );
    }

    // Logout on A: B refuses the cookie too. A sends a LogoutRequest to the demo IdP, whose
    // answer comes back through nginx to either replica: the pending logout is shared.
    let hops = e2e::stack::follow(&mut b, &format!("{}/logout", site.a()));
    let out = hops.last().unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.body.contains("Signed out"), "{}", out.body);
    assert!(
        hops.iter().any(|h| h
            .header("location")
            .is_some_and(|l| l.contains("/saml/slo?SAMLResponse="))),
        "{hops:?}"
    );
    assert_eq!(auth_at(&mut b, &site.b), 401);
    assert_eq!(auth_at(&mut b, site.a()), 401);
}

#[test]
fn a_response_replayed_to_the_other_replica_is_refused() {
    let site = site();
    let mut b = Browser::default();
    let answer = answer_via(&site, &mut b, site.a());
    let first = post_acs_at(&mut b, &answer, site.a());
    assert_eq!(first.status, 303, "{}", first.body);
    // The same Response, same browser, at replica B.
    let mut thief = Browser::default();
    thief.cookies = b.cookies.clone();
    thief.cookies.remove("varco_session");
    let replay = post_acs_at(&mut thief, &answer, &site.b);
    // Its pending request is gone (taken on A): `broker_unknown_request`.
    assert_eq!(replay.status, 400, "{}", replay.body);
    assert!(
        replay.body.contains("broker_unknown_request"),
        "{}",
        replay.body
    );
    assert!(!thief.cookies.contains_key("varco_session"));
    assert_eq!(count(&site.logs()[1], "login_completed"), 0);
}

#[test]
fn twenty_concurrent_submissions_of_one_response_across_replicas_open_one_session() {
    let site = site();
    let mut b = Browser::default();
    let answer = answer_via(&site, &mut b, &site.base);
    let cookies = b.cookies.clone();
    let targets = [site.a().to_owned(), site.b.clone()];
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let answer = answer.clone();
            let cookies = cookies.clone();
            let target = targets[i % 2].clone();
            std::thread::spawn(move || {
                let mut b = Browser::default();
                b.cookies = cookies;
                post_acs_at(&mut b, &answer, &target).status
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    // The others: `broker_replay` (403, lost the take) or `broker_unknown_request` (400,
    // arrived after it).
    assert!(
        statuses.iter().all(|s| matches!(s, 303 | 400 | 403)),
        "{statuses:?}"
    );
    let logs = site.logs();
    assert_eq!(
        count(&logs[0], "login_completed") + count(&logs[1], "login_completed"),
        1
    );
}

#[test]
fn redis_down_refuses_new_logins_keeps_sessions_and_recovers_without_restart() {
    let mut site = site();
    let mut b = Browser::default();
    let answer = answer_via(&site, &mut b, &site.base);
    assert_eq!(post_to_acs(&mut b, &answer).status, 303);

    site.redis.stop();
    // New logins, on either replica: 503 with the stable code and the IT/EN page.
    for replica in [site.a().to_owned(), site.b.clone()] {
        let mut fresh = Browser::default();
        let r = fresh.get(&format!(
            "{replica}/saml/login?idp={}&level=2&return_to=%2F",
            pct(&site.stack.idp)
        ));
        assert_eq!(r.status, 503, "{}", r.body);
        assert!(r.body.contains("broker_store_unavailable"), "{}", r.body);
        assert!(
            r.body.contains("temporaneamente non disponibile"),
            "{}",
            r.body
        );
        assert!(r.body.contains("temporarily unavailable"), "{}", r.body);
    }
    // The Response of that session, submitted again during the outage: the replay checks
    // cannot run, so nothing passes (503, not a session).
    let mut late = Browser::default();
    late.cookies = b.cookies.clone();
    late.cookies.remove("varco_session");
    let replay = post_acs_at(&mut late, &answer, site.a());
    assert_eq!(replay.status, 503, "{}", replay.body);
    assert!(!late.cookies.contains_key("varco_session"));

    // The existing session still passes, on both replicas and through nginx.
    assert_eq!(auth_at(&mut b, site.a()), 200);
    assert_eq!(auth_at(&mut b, &site.b), 200);
    for _ in 0..2 {
        let page = b.get(&format!("{}/pratiche", site.base));
        assert_eq!(page.status, 200, "{page:?}");
    }
    // Counted and logged.
    let metrics = Browser::default()
        .get(&format!("{}/metrics", site.stack.management))
        .body;
    // Every (op, code) series exists from the start (so the alert sees the first error):
    // one that never happened is there at 0, and the outage's moved above it.
    assert!(
        metrics
            .contains("varco_store_errors_total{code=\"store_corrupt\",op=\"revoke_session\"} 0\n"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("varco_store_errors_total{")
                && l.contains("op=\"put_pending\"")
                && !l.ends_with(" 0")),
        "{metrics}"
    );
    assert!(
        metrics.contains("varco_logins_refused_total{code=\"broker_store_unavailable\""),
        "{metrics}"
    );
    for log in site.logs() {
        assert!(count(&log, "store_unavailable") >= 1, "{log}");
    }

    // Redis back (empty: no persistence): logins work again on both replicas, at the first
    // try, with the same Varco processes.
    site.redis.restart();
    for replica in [site.a().to_owned(), site.b.clone()] {
        let mut c = Browser::default();
        let answer = answer_via(&site, &mut c, &replica);
        let acs = post_acs_at(&mut c, &answer, &replica);
        assert_eq!(acs.status, 303, "{}", acs.body);
    }
    for log in site.logs() {
        assert!(count(&log, "store_recovered") >= 1, "{log}");
    }
    assert!(site.b_proc.wait_exit(Duration::from_millis(1)).is_none());
}
