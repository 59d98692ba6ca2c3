//! Rate limits (issue 17, item 4) over real HTTP on loopback, with the clock injected so a
//! burst is counted, never timed: a client gets its burst, then 429 with `Retry-After` and
//! the code; another client (by the trusted proxy's `X-Forwarded-For`) has its own bucket,
//! while an untrusted `X-Forwarded-For` names nobody; the global limit holds for all clients
//! together. With Redis (a real `redis-server`), two replicas share the buckets, and with
//! Redis stopped each replica falls back to its own (still limited).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::features::admission::rate::Gcra;
use broker::features::store::Store;
use broker::features::store::redis::{RedisOptions, RedisStore};
use broker::state::State;
use fixture::{config, exchange, fixture_now, serve, state, state_with_store};
use testkit::Redis;

fn clock() -> SystemTime {
    fixture_now()
}

const LOGIN: &str = "GET /saml/login?idp=https%3A%2F%2Fidp.spid.example.org HTTP/1.1";

fn limited(s: &State, route: &str, scope: &str) -> u64 {
    s.metrics
        .rate_limited
        .with_label_values(&[route, scope])
        .get()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_client_gets_its_burst_then_429_and_other_clients_keep_theirs() {
    let config =
        config("[admission]\nclient_per_minute = 1\nclient_burst = 3\nglobal_per_second = 0\n");
    let s = Arc::new(state(&config, clock));
    runtime().block_on(async {
        let addr = serve(s.clone()).await;
        let from = |ip: &str| format!("{LOGIN}\r\nX-Forwarded-For: {ip}");
        for n in 0..3 {
            let (status, head, _) = exchange(addr, &from("192.0.2.1"), "").await;
            assert_eq!(status, 302, "request {n} of the burst: {head}");
        }
        let (status, head, body) = exchange(addr, &from("192.0.2.1"), "").await;
        assert_eq!(status, 429, "{head}");
        // One request a minute: the next is admitted one interval later.
        assert!(head.contains("\r\nretry-after: 60"), "{head}");
        assert!(body.contains("broker_rate_limited"), "{body}");
        assert_eq!(limited(&s, "saml_login", "client"), 1);

        // The proxy appends the address it saw last: what the client wrote before is not
        // trusted, so a forged first entry does not buy a new bucket.
        let (status, _, _) = exchange(addr, &from("198.51.100.7, 192.0.2.1"), "").await;
        assert_eq!(
            status, 429,
            "a forged X-Forwarded-For entry opened a bucket"
        );
        // Another client, its own burst.
        let (status, _, _) = exchange(addr, &from("192.0.2.2"), "").await;
        assert_eq!(status, 302);
        // IPv6 clients share a bucket per /64.
        for n in 0..3 {
            let ip = format!("2001:db8:1:2::{n}");
            let (status, _, _) = exchange(addr, &from(&ip), "").await;
            assert_eq!(status, 302);
        }
        let (status, _, _) = exchange(addr, &from("2001:db8:1:2:ffff::9"), "").await;
        assert_eq!(status, 429, "same /64, same bucket");

        // Routes have their own buckets: the ACS is not spent by logins.
        let acs = "POST /saml/acs HTTP/1.1\r\nX-Forwarded-For: 192.0.2.1\r\n\
                   Content-Type: application/x-www-form-urlencoded";
        let (status, _, _) = exchange(addr, acs, "RelayState=x").await;
        assert_eq!(status, 400, "refused by the ACS itself, not by the limit");
        assert_eq!(limited(&s, "acs", "client"), 0);
        // Pages that are not limited stay open to the limited client.
        let (status, _, _) = exchange(
            addr,
            "GET /login HTTP/1.1\r\nX-Forwarded-For: 192.0.2.1",
            "",
        )
        .await;
        assert_eq!(status, 200);
    });
}

#[test]
fn the_global_limit_holds_for_all_clients_together() {
    let config =
        config("[admission]\nclient_per_minute = 0\nglobal_per_second = 1\nglobal_burst = 5\n");
    let s = Arc::new(state(&config, clock));
    runtime().block_on(async {
        let addr = serve(s.clone()).await;
        for n in 0..5 {
            let head = format!("{LOGIN}\r\nX-Forwarded-For: 203.0.113.{n}");
            assert_eq!(exchange(addr, &head, "").await.0, 302);
        }
        let head = format!("{LOGIN}\r\nX-Forwarded-For: 203.0.113.99");
        let (status, head, _) = exchange(addr, &head, "").await;
        assert_eq!(status, 429);
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert_eq!(limited(&s, "saml_login", "global"), 1);
        assert_eq!(limited(&s, "saml_login", "client"), 0);
    });
}

fn redis_state(rt: &tokio::runtime::Runtime, url: &str, extra: &str) -> Arc<State> {
    let store = {
        let _in = rt.enter();
        Store::Redis(
            RedisStore::new(
                &RedisOptions {
                    url: url.to_owned(),
                    key_prefix: "rate-test:".into(),
                    connect_timeout: Duration::from_millis(500),
                    command_timeout: Duration::from_millis(500),
                    pool_size: 1,
                    tls: None,
                },
                Duration::from_secs(600),
                Duration::from_secs(3600),
            )
            .unwrap(),
        )
    };
    let config = config(extra);
    Arc::new(state_with_store(
        &config,
        clock,
        broker::features::audit::Sink::Off,
        store,
    ))
}

#[test]
fn with_redis_the_replicas_share_the_buckets_and_fall_back_to_their_own_when_it_is_down() {
    let mut redis = Redis::start("rate-limits");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A limit slow enough that Redis's clock cannot refill a bucket during the test.
    let limits = "[admission]\nclient_per_minute = 1\nclient_burst = 4\nglobal_per_second = 0\n";
    let a = redis_state(&rt, &redis.url(), limits);
    let b = redis_state(&rt, &redis.url(), limits);
    rt.block_on(async {
        let (addr_a, addr_b) = (serve(a.clone()).await, serve(b.clone()).await);
        let from = format!("{LOGIN}\r\nX-Forwarded-For: 192.0.2.50");
        // Four requests in all, alternating replicas: the burst is spent across both.
        for addr in [addr_a, addr_b, addr_a, addr_b] {
            assert_eq!(exchange(addr, &from, "").await.0, 302);
        }
        assert_eq!(
            exchange(addr_a, &from, "").await.0,
            429,
            "shared bucket, replica a"
        );
        assert_eq!(
            exchange(addr_b, &from, "").await.0,
            429,
            "shared bucket, replica b"
        );
        assert_eq!(limited(&a, "saml_login", "client"), 1);
        assert_eq!(limited(&b, "saml_login", "client"), 1);
        // The limiter reads the shared bucket directly too: one script step, microseconds.
        let gcra = Gcra::new(1, Duration::from_secs(60), 4).unwrap();
        let wait = a
            .store
            .shared_rate("saml_login:192.0.2.50", gcra.interval_us, gcra.tolerance_us)
            .await
            .unwrap()
            .unwrap();
        assert!(wait > 0 && wait <= 60_000_000, "{wait}");
    });

    // Redis down: each replica decides with its own buckets, still limited (never opened).
    redis.stop();
    rt.block_on(async {
        let fresh = format!("{LOGIN}\r\nX-Forwarded-For: 192.0.2.60");
        let (addr_a, addr_b) = (serve(a.clone()).await, serve(b.clone()).await);
        for _ in 0..4 {
            assert_eq!(
                exchange(addr_a, &fresh, "").await.0,
                503,
                "login needs the store"
            );
        }
        // The limit runs before the handler: the fifth is limited locally, not stored.
        let (status, _, _) = exchange(addr_a, &fresh, "").await;
        assert_eq!(status, 429, "replica a, its own bucket");
        // Replica b has its own bucket for this client during the outage.
        let (status, _, _) = exchange(addr_b, &fresh, "").await;
        assert_eq!(
            status, 503,
            "replica b admitted it (then the store refused the login)"
        );
    });
}
