//! The whole ACS decision in process: form body in, session cookie value out.
//!
//! Per iteration: decode the form and base64, look up the pending request, check the
//! browser binding, parse once, verify the Response and Assertion signatures (RSA-2048),
//! check every SAML/SPID rule, consume the request and the assertion ID in the store, and
//! seal the session cookie. Each iteration gets a fresh store with the pending request in
//! it (setup, not measured), so one signed Response can be replayed through the real
//! one-time-use path.
//!
//! Input: `crates/xmldsig/tests/fixtures/response-spid.xml` with its signature templates
//! removed, signed by `sign_enveloped` with the test key `idp-rsa2048` (Assertion, then
//! Response): 11 KB, 19 attributes.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use std::hint::black_box;

use broker::leaf::session::Purpose;
use broker::routes::acs::consume;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::Duration;

use fixture::{BROWSER, config, fixture_now, ready, signed_body, state, state_with};

fn benches(c: &mut Criterion) {
    let config = config("");
    let body = signed_body();
    // Sanity: the measured path accepts it, and a second submit is refused.
    let s = state(&config, fixture_now);
    ready(consume(&s, body.as_bytes(), Some(BROWSER))).unwrap_or_else(|f| panic!("{}", f.code()));
    assert!(ready(consume(&s, body.as_bytes(), Some(BROWSER))).is_err());

    c.bench_function("acs_consume_and_seal_11k_rsa2048", |b| {
        b.iter_batched(
            || state(&config, fixture_now),
            |s| {
                let (session, to) = ready(consume(&s, black_box(body.as_bytes()), Some(BROWSER)))
                    .unwrap_or_else(|f| panic!("{}", f.code()));
                let sealed = s.sealer.seal(Purpose::Session, &session);
                // Returned, so the store is dropped outside the measurement.
                (s, black_box((sealed, to)))
            },
            BatchSize::SmallInput,
        )
    });
}

/// The forward-auth check of an existing session, as `/auth` runs it after HTTP parsing:
/// open the sealed cookie, pick the route, decide the policy, fetch the cached token and
/// build the identity headers. The first call mints the token; the measured calls reuse it.
fn forward_auth(c: &mut Criterion) {
    use broker::leaf::http::Peer;
    use broker::routes::forward_auth::auth;
    let config = config("");
    let s = state(&config, fixture_now);
    let (session, _) = ready(consume(&s, signed_body().as_bytes(), Some(BROWSER)))
        .unwrap_or_else(|f| panic!("{}", f.code()));
    let sealed = s.sealer.seal(Purpose::Session, &session).unwrap();
    let request = hyper::Request::builder()
        .uri("/auth")
        .header("host", "sp.varco.example.org")
        .header("x-original-uri", "/account/documents?page=2")
        .header("x-forwarded-host", "sp.varco.example.org")
        .header(
            "cookie",
            format!("other=1; {}={sealed}", config.cookie_name),
        )
        .extension(Peer("127.0.0.1:50000".parse().unwrap()))
        .body(())
        .unwrap();
    let first = ready(auth(&s, &request));
    assert_eq!(first.status(), 200);
    let token = first.headers().get("authorization").cloned().unwrap();
    c.bench_function("forward_auth_check_cached_token", |b| {
        b.iter(|| {
            let r = ready(auth(&s, black_box(&request)));
            debug_assert_eq!(r.headers().get("authorization"), Some(&token));
            r
        })
    });
    c.bench_function("session_cookie_open", |b| {
        b.iter(|| {
            s.sealer
                .open::<broker::leaf::session::Session>(Purpose::Session, black_box(&sealed))
        })
    });
}

/// ACS throughput with the durable audit record (file sink, fdatasync, group commit) against
/// the same work without it. N tasks (logins in flight) on a two-worker runtime each take the next login
/// until all are done: decide (consume, seal), build the record and, with audit on, await its
/// fsync before taking the next, as `acs()` awaits it before sending the cookie. States (one
/// fresh store per login) are built before the clock starts.
fn concurrent_audit(c: &mut Criterion) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let config = config("");
    let body = Arc::new(signed_body());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    // VARCO_BENCH_AUDIT_DIR=/dev/shm separates the disk's share (sync latency, bandwidth)
    // from the CPU's (hashing, encoding) in the audit cost.
    let base = std::env::var_os("VARCO_BENCH_AUDIT_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let dir = base.join(format!("varco-bench-audit-acs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = broker::features::audit::file::FileSink::open(
        &broker::features::audit::file::Options {
            dir: dir.clone(),
            max_file_bytes: 64 * 1024 * 1024,
            retention: Duration::from_secs(731 * 86_400),
            key: None,
            // VARCO_BENCH_COMMIT_INTERVAL_US compares other intervals with the default.
            commit_interval: std::env::var("VARCO_BENCH_COMMIT_INTERVAL_US")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(
                    broker::features::audit::file::DEFAULT_COMMIT_INTERVAL,
                    Duration::from_micros,
                ),
        },
        fixture_now(),
    )
    .unwrap();
    let mut group = c.benchmark_group("acs_throughput");
    group.throughput(criterion::Throughput::Elements(1));
    for (in_flight, audit_on) in [(32, false), (32, true), (128, false), (128, true)] {
        let name = format!(
            "{}_{in_flight}_in_flight",
            if audit_on { "audit_on" } else { "audit_off" }
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let states: Arc<Vec<broker::state::State>> = Arc::new(
                    (0..iters)
                        .map(|_| {
                            let sink = if audit_on {
                                broker::features::audit::Sink::File(sink.clone())
                            } else {
                                broker::features::audit::Sink::Off
                            };
                            state_with(&config, fixture_now, sink)
                        })
                        .collect(),
                );
                let next = Arc::new(AtomicUsize::new(0));
                let start = std::time::Instant::now();
                rt.block_on(async {
                    let workers: Vec<_> = (0..in_flight)
                        .map(|_| {
                            let (states, next, body) = (states.clone(), next.clone(), body.clone());
                            tokio::spawn(async move {
                                loop {
                                    let i = next.fetch_add(1, Ordering::Relaxed);
                                    let Some(s) = states.get(i) else { break };
                                    let mut evidence = broker::features::audit::Evidence::default();
                                    let (session, _) = broker::routes::acs::consume_recorded(
                                        s,
                                        hyper::body::Bytes::copy_from_slice(body.as_bytes()),
                                        Some(BROWSER),
                                        &mut evidence,
                                    )
                                    .await
                                    .unwrap_or_else(|f| panic!("{}", f.code()));
                                    let sealed = s.sealer.seal(Purpose::Session, &session);
                                    let record = evidence.record(
                                        broker::features::audit::Outcome::Completed {
                                            sid: &session.sid,
                                        },
                                        fixture_now(),
                                    );
                                    s.audit.append(fixture_now(), record).await.unwrap();
                                    black_box(sealed);
                                }
                            })
                        })
                        .collect();
                    for w in workers {
                        w.await.unwrap();
                    }
                });
                let elapsed = start.elapsed();
                // Dropped outside the measurement.
                drop(states);
                elapsed
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(acs, benches, forward_auth, concurrent_audit);
criterion_main!(acs);
