//! Admission control of CPU-heavy work (issue 17, item 2), over real HTTP on loopback: with
//! every heavy worker held by real work, `/auth` still answers on the one async worker of a
//! current-thread runtime, and each request that needs the pool (the ACS validation, the
//! AuthnRequest signature, the SLO validation) gets 503 `broker_busy` with `Retry-After`,
//! counted by the rejection metric. Nothing is timed: the held jobs wait on a channel the
//! test releases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use broker::features::admission::heavy::Work;
use broker::leaf::session::Purpose;
use broker::routes::acs::consume;
use broker::state::State;
use fixture::{
    BROWSER, config, exchange, fixture_now, put_fixture_pending, ready, serve, signed_body, state,
};

fn clock() -> SystemTime {
    fixture_now()
}

fn rejected(state: &State, work: &str) -> u64 {
    state
        .metrics
        .heavy_rejected
        .with_label_values(&[work])
        .get()
}

/// An IdP-initiated LogoutRequest naming the trusted IdP (unsigned: it never gets as far as
/// its verification here).
fn logout_request_body() -> String {
    let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_l1" Version="2.0" IssueInstant="2025-03-14T09:26:58Z" Destination="https://sp.varco.example.org/saml/slo"><saml:Issuer>https://idp.spid.example.org</saml:Issuer><saml:NameID>x</saml:NameID><samlp:SessionIndex>s</samlp:SessionIndex></samlp:LogoutRequest>"#;
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    format!(
        "SAMLRequest={}",
        form_urlencoded::byte_serialize(b64.as_bytes()).collect::<String>()
    )
}

/// The head of an ACS post from the browser that started the fixture's pending login.
fn acs_head(s: &State) -> String {
    format!(
        "POST /saml/acs HTTP/1.1\r\nCookie: {}={BROWSER}\r\n\
         Content-Type: application/x-www-form-urlencoded",
        broker::state::login::login_cookie(s)
    )
}

/// One async worker: if heavy work ran on it, nothing else could answer meanwhile.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Holds one heavy worker with a job that returns `value` once the returned sender is
/// used; returns when the job is running.
async fn hold(
    s: &Arc<State>,
    value: u32,
) -> (
    std::sync::mpsc::Sender<()>,
    tokio::task::JoinHandle<Result<u32, broker::features::admission::heavy::Refused>>,
) {
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
    let pool = s.clone();
    let job = tokio::spawn(async move {
        pool.heavy
            .run(Work::Response, move || {
                started_tx.send(()).unwrap();
                wait.recv().unwrap();
                value
            })
            .await
    });
    started.recv().await.unwrap();
    (release, job)
}

#[test]
fn a_saturated_heavy_pool_answers_503_and_auth_still_answers() {
    let config = config("[admission]\nheavy_workers = 2\nheavy_queue = 0\n");
    let s = state(&config, clock);
    // A session, while the pool is free.
    let (session, _) = ready(consume(&s, signed_body().as_bytes(), Some(BROWSER)))
        .unwrap_or_else(|f| panic!("{}", f.code()));
    let cookie = s.sealer.seal(Purpose::Session, &session).unwrap();
    // The ACS request below needs a pending login to reach its validation.
    ready(put_fixture_pending(&s.store)).unwrap();
    let s = Arc::new(s);

    // One async worker: if heavy work ran on it, nothing below could answer.
    let rt = current_thread();
    rt.block_on(async {
        let addr = serve(s.clone()).await;
        // Hold both workers with real work: each job verifies an Argon2id password (the
        // legacy login's own check), reports, then waits for the release.
        let hash = broker::features::legacy::hash_password(b"correct horse").unwrap();
        let (started_tx, mut started) = tokio::sync::mpsc::unbounded_channel();
        let mut releases = Vec::new();
        let mut held = Vec::new();
        for _ in 0..2 {
            let (release, wait) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let (hash, started_tx) = (hash.clone(), started_tx.clone());
            let pool = s.clone();
            held.push(tokio::spawn(async move {
                pool.heavy
                    .run(Work::Password, move || {
                        let ok = broker::features::legacy::verify(&hash, b"correct horse");
                        started_tx.send(ok).unwrap();
                        wait.recv().unwrap();
                        ok
                    })
                    .await
            }));
        }
        for _ in 0..2 {
            assert_eq!(started.recv().await, Some(true), "real work ran");
        }
        assert_eq!(s.metrics.heavy_in_flight.get(), 2, "every worker is held");
        assert_eq!(s.heavy.running(), 2);

        // The forward-auth path answers, with and without a session.
        let (status, _, _) = exchange(
            addr,
            &format!(
                "GET /auth HTTP/1.1\r\nX-Original-URI: /\r\nCookie: {}={cookie}",
                s.config.cookie_name
            ),
            "",
        )
        .await;
        assert_eq!(status, 200, "/auth with a session");
        let (status, _, _) = exchange(addr, "GET /auth HTTP/1.1\r\nX-Original-URI: /", "").await;
        assert_eq!(status, 401, "/auth without a session");

        // Each heavy request is refused at once (queue 0), with Retry-After and the code.
        let login = "GET /saml/login?idp=https%3A%2F%2Fidp.spid.example.org HTTP/1.1";
        let (status, head, body) = exchange(addr, login, "").await;
        assert_eq!(status, 503, "AuthnRequest signature: {body}");
        assert!(head.contains("\r\nretry-after: 2"), "{head}");
        assert!(body.contains("broker_busy"), "{body}");
        assert_eq!(rejected(&s, "sign"), 1);

        let acs = acs_head(&s);
        let (status, head, body) = exchange(addr, &acs, &signed_body()).await;
        assert_eq!(status, 503, "Response validation: {body}");
        assert!(head.contains("\r\nretry-after: 2"), "{head}");
        assert!(body.contains("broker_busy"), "{body}");
        assert_eq!(rejected(&s, "response"), 1);

        let slo = "POST /saml/slo HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded";
        let (status, head, body) = exchange(addr, slo, &logout_request_body()).await;
        assert_eq!(status, 503, "LogoutRequest validation: {body}");
        assert!(head.contains("\r\nretry-after: 2"), "{head}");
        assert_eq!(rejected(&s, "logout"), 1);
        assert_eq!(rejected(&s, "password"), 0, "the held jobs were admitted");

        // Released, the pool serves again: the login is signed and redirected.
        for r in releases {
            r.send(()).unwrap();
        }
        for h in held {
            assert_eq!(h.await.unwrap(), Ok(true));
        }
        assert_eq!(s.metrics.heavy_in_flight.get(), 0);
        let (status, head, _) = exchange(addr, login, "").await;
        assert_eq!(status, 302, "{head}");
        assert!(head.contains("samlrequest="), "{head}");
        assert_eq!(rejected(&s, "sign"), 1, "no further refusal");
    });
}

#[test]
fn a_waiting_job_runs_when_a_worker_frees_and_one_past_the_queue_is_refused() {
    let config = config("[admission]\nheavy_workers = 1\nheavy_queue = 1\nheavy_wait_ms = 10000\n");
    let s = Arc::new(state(&config, clock));
    let rt = current_thread();
    rt.block_on(async {
        let (release, first) = hold(&s, 1).await;
        // The second waits in the queue (its one slot)...
        let pool = s.clone();
        let second = tokio::spawn(async move { pool.heavy.run(Work::Response, || 2).await });
        while s.heavy.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // ...so the third finds the queue full and is refused without waiting.
        let third = s.heavy.run(Work::Response, || 3).await;
        assert_eq!(
            third,
            Err(broker::features::admission::heavy::Refused::Busy)
        );
        assert_eq!(rejected(&s, "response"), 1);
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2), "the queued job ran");
        assert_eq!(rejected(&s, "response"), 1);
        assert_eq!(s.metrics.heavy_in_flight.get(), 0);
    });
}

#[test]
fn waiting_bodies_are_bounded_in_bytes_and_one_past_the_budget_is_refused() {
    // The queue has slots to spare; the bytes the waiting jobs hold decide. Without the byte
    // budget, waiting bodies grow with heavy_queue × the largest body a route takes.
    let config = config(
        "[admission]\nheavy_workers = 1\nheavy_queue = 8\nheavy_queue_bytes = 1000\nheavy_wait_ms = 10000\n",
    );
    let s = Arc::new(state(&config, clock));
    let rt = current_thread();
    rt.block_on(async {
        let (release, first) = hold(&s, 1).await;
        let pool = s.clone();
        let second =
            tokio::spawn(async move { pool.heavy.run_holding(Work::Response, 600, || 2).await });
        while s.heavy.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(s.heavy.waiting_bytes(), 600);
        // 600 + 600 > 1000: refused at once, though seven queue slots are free: the answer
        // is there at the first poll (a job let wait would be pending until a worker frees).
        use std::future::Future as _;
        let third = std::pin::pin!(s.heavy.run_holding(Work::Response, 600, || 3));
        let third = third.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()));
        assert_eq!(
            third,
            std::task::Poll::Ready(Err(broker::features::admission::heavy::Refused::Busy))
        );
        assert_eq!(rejected(&s, "response"), 1);
        assert_eq!(s.heavy.waiting(), 1, "the refused job left no slot taken");
        assert_eq!(s.heavy.waiting_bytes(), 600, "nor any bytes");
        // 600 + 400 = 1000 fits.
        let pool = s.clone();
        let fourth =
            tokio::spawn(async move { pool.heavy.run_holding(Work::Response, 400, || 4).await });
        while s.heavy.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(s.heavy.waiting_bytes(), 1000);
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(fourth.await.unwrap(), Ok(4));
        assert_eq!(
            s.heavy.waiting_bytes(),
            0,
            "every waiting job gave its bytes back"
        );
        // A job that finds a worker free never waits, so its bytes never count.
        assert_eq!(
            s.heavy.run_holding(Work::Response, 1_000_000, || 5).await,
            Ok(5)
        );
        assert_eq!(rejected(&s, "response"), 1);
    });
}

#[test]
fn acs_form_and_base64_decoding_wait_for_the_heavy_pool() {
    // The async worker reads the capped body and nothing more: decoding the form, the base64
    // and the size checks are heavy work. Proof by order of answers: with the one worker held
    // (queue 0), every ACS post is 503 `broker_busy`, even ones the decoding would refuse
    // (no SAMLResponse, not base64, too large), so nothing looked at their content first.
    // Released, the same bodies get their usual codes (stable), and the refusals of the
    // decoding never reached the store (the pending login is still there).
    let config = config(
        "[admission]\nheavy_workers = 1\nheavy_queue = 0\n\
         client_per_minute = 0\nglobal_per_second = 0\n",
    );
    let s = state(&config, clock);
    ready(put_fixture_pending(&s.store)).unwrap();
    let s = Arc::new(s);
    let rt = current_thread();
    rt.block_on(async {
        let addr = serve(s.clone()).await;
        let acs = acs_head(&s);
        let too_large = format!(
            "SAMLResponse={}",
            "A".repeat(s.config.max_response_bytes.div_ceil(3) * 4 + 4)
        );
        let cases = [
            ("RelayState=x", "broker_missing_saml_response", 400),
            ("SAMLResponse=%%%%", "broker_invalid_base64", 400),
            (
                "SAMLResponse=QQ&SAMLResponse=QQ",
                "broker_duplicate_field",
                400,
            ),
            (too_large.as_str(), "broker_response_too_large", 413),
        ];

        let (release, held) = hold(&s, 0).await;
        for (i, (body, _, _)) in cases.iter().enumerate() {
            let (status, head, answer) = exchange(addr, &acs, body).await;
            assert_eq!(status, 503, "case {i}: {answer}");
            assert!(head.contains("\r\nretry-after: 2"), "{head}");
            assert!(answer.contains("broker_busy"), "case {i}: {answer}");
            assert_eq!(rejected(&s, "response"), u64::try_from(i + 1).unwrap());
        }

        release.send(()).unwrap();
        assert_eq!(held.await.unwrap(), Ok(0));
        for (body, code, want) in cases {
            let (status, _, answer) = exchange(addr, &acs, body).await;
            assert_eq!(status, want, "{code}: {answer}");
            assert!(answer.contains(code), "{code}: {answer}");
            let refused = s
                .metrics
                .logins_refused
                .with_label_values(&[code, ""])
                .get();
            assert_eq!(refused, 1, "{code} counted once");
        }
        let held_off = u64::try_from(cases.len()).unwrap();
        assert_eq!(
            rejected(&s, "response"),
            held_off,
            "no further refusal for capacity"
        );
        // A Response that decodes reaches the pending login, the signature and the session.
        let (status, head, answer) = exchange(addr, &acs, &signed_body()).await;
        assert_eq!(status, 303, "{head}{answer}");
    });
}

#[test]
fn a_body_over_its_route_cap_is_413_before_any_work() {
    // `/saml/slo` takes at most 64 KiB (a logout message is a few KB), the ACS 512 KiB. One
    // byte over: 413 `broker_body_too_large`, counted, before anything is decoded. At the SLO
    // cap the body is read and decoded (refused as not a message: positive control).
    let config = config("[admission]\nclient_per_minute = 0\nglobal_per_second = 0\n");
    let s = Arc::new(state(&config, clock));
    let rt = current_thread();
    rt.block_on(async {
        let addr = serve(s.clone()).await;
        let slo = "POST /saml/slo HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded";
        let over = format!(
            "RelayState={}",
            "a".repeat(64 * 1024 + 1 - "RelayState=".len())
        );
        let (status, _, body) = exchange(addr, slo, &over).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("broker_body_too_large"), "{body}");
        let refused = |code: &str| s.metrics.slo_refused.with_label_values(&[code]).get();
        assert_eq!(refused("broker_body_too_large"), 1);

        let at = &over[1..];
        let (status, _, body) = exchange(addr, slo, at).await;
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("slo_binding"), "{body}");
        assert_eq!(refused("broker_body_too_large"), 1);

        let acs = acs_head(&s);
        let over = format!(
            "SAMLResponse={}",
            "A".repeat(512 * 1024 + 1 - "SAMLResponse=".len())
        );
        let (status, _, body) = exchange(addr, &acs, &over).await;
        assert_eq!(status, 413, "{body}");
        assert!(body.contains("broker_body_too_large"), "{body}");
    });
}

#[test]
fn heavy_work_runs_below_the_async_workers_priority() {
    use broker::features::admission::heavy::thread_nice;
    // On a core both want, the kernel splits it evenly between a heavy thread and an async
    // worker; lowered by `heavy_nice`, heavy work yields to `/auth`. Read back from the
    // kernel on the thread that ran each job.
    for (nice, expect_lower) in [(7, true), (0, false)] {
        let config = config(&format!(
            "[admission]\nheavy_workers = 1\nheavy_nice = {nice}\n"
        ));
        let s = Arc::new(state(&config, clock));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let base = thread_nice().expect("Linux reports a thread's nice value");
            for _ in 0..3 {
                let inside = s
                    .heavy
                    .run(Work::Response, thread_nice)
                    .await
                    .unwrap()
                    .unwrap();
                let want = if expect_lower {
                    (base + nice).min(19)
                } else {
                    base
                };
                assert_eq!(inside, want, "heavy_nice = {nice}, every job the same");
            }
            assert_eq!(
                thread_nice(),
                Some(base),
                "the async worker keeps its priority"
            );
        });
    }
}

#[test]
fn heavy_work_runs_on_threads_named_for_it() {
    // The load harness splits Varco's CPU between the async workers and heavy work by thread
    // name (`/proc/<pid>/task/*/comm`): a thread that runs heavy work carries the name.
    use broker::features::admission::heavy::THREAD_NAME;
    let config = config("[admission]\nheavy_workers = 1\n");
    let s = Arc::new(state(&config, clock));
    let rt = current_thread();
    let comm = || std::fs::read_to_string("/proc/thread-self/comm").map(|n| n.trim().to_owned());
    let outside = comm().unwrap();
    assert_ne!(outside, THREAD_NAME, "the async side keeps its name");
    let inside = rt
        .block_on(s.heavy.run(Work::Response, comm))
        .unwrap()
        .unwrap();
    assert_eq!(inside, THREAD_NAME);
    assert_eq!(comm().unwrap(), outside);
}

#[test]
fn heavy_work_runs_on_the_pools_own_threads_and_no_more() {
    // tokio's blocking pool started a new thread whenever none was idle at the hand-over,
    // and a one-core process under load grew dozens; the pool's own threads are exactly
    // `heavy_workers`, whatever the load. Thread IDs read back from the kernel in each job.
    let config = config("[admission]\nheavy_workers = 2\nheavy_queue = 512\n");
    let s = Arc::new(state(&config, clock));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tids: Vec<i32> = rt.block_on(async {
        let mut all = Vec::new();
        for _ in 0..20 {
            // Bursts of concurrent jobs, each handed over as another finishes.
            let burst: Vec<_> = (0..16)
                .map(|_| {
                    let s = s.clone();
                    tokio::spawn(async move {
                        s.heavy
                            .run(Work::Response, || {
                                rustix::thread::gettid().as_raw_nonzero().get()
                            })
                            .await
                            .unwrap()
                    })
                })
                .collect();
            for job in burst {
                all.push(job.await.unwrap());
            }
        }
        all
    });
    let mut distinct = tids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(tids.len(), 320);
    // Two threads, or one if it happened to be free for every hand-over; never a third.
    assert!(
        (1..=2).contains(&distinct.len()),
        "every job on the pool's two threads: {distinct:?}"
    );
}

#[test]
fn a_heavy_job_that_panics_is_refused_and_its_thread_lives_on() {
    let config = config("[admission]\nheavy_workers = 1\n");
    let s = Arc::new(state(&config, clock));
    let rt = current_thread();
    rt.block_on(async {
        let tid = || rustix::thread::gettid().as_raw_nonzero().get();
        let before = s.heavy.run(Work::Response, tid).await.unwrap();
        let failed = s
            .heavy
            .run(Work::Response, || -> u8 { panic!("a bug in a heavy job") })
            .await;
        assert_eq!(failed.unwrap_err().code(), "broker_heavy_failed");
        assert_eq!(s.heavy.running(), 0, "the permit came back");
        let after = s.heavy.run(Work::Response, tid).await.unwrap();
        assert_eq!(before, after, "the same thread runs the next job");
    });
}

#[test]
fn a_dropped_pools_threads_end() {
    // A reload that changes `[admission]` replaces the pool; the old one's threads must not
    // pile up, one set per reload. The thread that ran a job is gone once the pool is.
    use broker::features::admission::heavy::Heavy;
    use broker::features::metrics::Metrics;
    let config = config("[admission]\nheavy_workers = 1\n");
    let heavy = Heavy::new(&config.admission, &Metrics::new()).unwrap();
    let tid = current_thread()
        .block_on(heavy.run(Work::Response, || {
            rustix::thread::gettid().as_raw_nonzero().get()
        }))
        .unwrap();
    let task = format!("/proc/self/task/{tid}");
    assert!(std::path::Path::new(&task).exists());
    drop(heavy);
    // The thread ends as soon as it sees the pool closed; how soon is the scheduler's, so
    // wait for it rather than time it.
    for _ in 0..3000 {
        if !std::path::Path::new(&task).exists() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("the heavy thread {tid} outlived its pool by 30 s");
}
