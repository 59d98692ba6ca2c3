//! The Redis store against a real `redis-server` started here on a Unix socket in a temp
//! dir: two stores stand for two replicas. One-time use holds across them (pending requests,
//! Assertion IDs, also under concurrent submits through the whole ACS path), logout on one
//! holds on the other, a Redis outage fails logins closed while sessions keep being answered
//! from the replica's own memory (also when Redis stops answering rather than refusing), and
//! everything recovers by itself when Redis is back.
//! The `[store]` configuration is validated before anything connects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::Arc;
use std::time::Duration;

use broker::features::store::redis::{RedisOptions, RedisStore};
use broker::features::store::{Activity, Pending, PendingLogout, Store, StoreError};
use fixture::{BROWSER, config, fixture_now, put_fixture_pending, signed_body, state_with_store};
use testkit::Redis;

fn options(url: &str) -> RedisOptions {
    RedisOptions {
        url: url.to_owned(),
        key_prefix: "test:".into(),
        connect_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_millis(500),
        pool_size: 2,
        tls: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn redis_store(rt: &tokio::runtime::Runtime, url: &str) -> Store {
    let _in = rt.enter();
    Store::Redis(
        RedisStore::new(
            &options(url),
            Duration::from_secs(600),
            Duration::from_secs(3600),
        )
        .unwrap(),
    )
}

fn pending(browser: &str) -> Pending {
    Pending {
        idp: "https://idp.example.org".into(),
        level: saml::Level::L3,
        return_to: "/area?x=1".into(),
        issued_at: fixture_now(),
        browser: browser.into(),
        request_xml: "<samlp:AuthnRequest/>".into(),
    }
}

/// Retries `f` until it is `Ok` (bounded: 10 s): the first command after Redis comes back
/// may still see the old connection fail.
async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    for _ in 0..100 {
        if let Ok(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store did not recover");
}

#[test]
fn pending_requests_round_trip_and_are_taken_once_across_replicas() {
    let redis = Redis::start("pending");
    let rt = runtime();
    let (a, b) = (
        redis_store(&rt, &redis.url()),
        redis_store(&rt, &redis.url()),
    );
    rt.block_on(async {
        a.put_pending("_r1".into(), pending("b1")).await.unwrap();
        let read = b.get_pending("_r1").await.unwrap().unwrap();
        assert_eq!(read.idp, "https://idp.example.org");
        assert_eq!(read.level, saml::Level::L3);
        assert_eq!(read.return_to, "/area?x=1");
        assert_eq!(read.issued_at, fixture_now());
        assert_eq!(read.browser, "b1");
        assert_eq!(read.request_xml, "<samlp:AuthnRequest/>");
        assert!(b.get_pending("_unknown").await.unwrap().is_none());
        assert!(b.get_pending(&"x".repeat(10_000)).await.unwrap().is_none());
    });
    // Twenty concurrent takes, half on each replica: one winner.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let winners: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { s.take_pending("_r1").await.unwrap().is_some() })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.unwrap());
        }
        n
    });
    assert_eq!(winners, 1);
}

#[test]
fn single_logout_state_is_shared_and_one_time_across_replicas() {
    let redis = Redis::start("slo");
    let rt = runtime();
    let (a, b) = (
        redis_store(&rt, &redis.url()),
        redis_store(&rt, &redis.url()),
    );
    let minute = Duration::from_secs(60);
    rt.block_on(async {
        // The session a login indexed on replica A is found by an IdP LogoutRequest on B.
        a.index_session_for_logout("https://idp", "n1", "s1", "sid-1", minute)
            .await
            .unwrap();
        assert_eq!(
            b.session_for_logout("https://idp", "n1", "s1")
                .await
                .unwrap()
                .as_deref(),
            Some("sid-1")
        );
        assert_eq!(
            b.session_for_logout("https://idp", "n1", "s2")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            b.session_for_logout("https://other", "n1", "s1")
                .await
                .unwrap(),
            None
        );
        // An IdP LogoutRequest honoured on A is a replay on B.
        assert!(a.consume_logout_request("idp\0_lr", minute).await.unwrap());
        assert!(!b.consume_logout_request("idp\0_lr", minute).await.unwrap());
        // A logout started on A is answered on B, once.
        let p = PendingLogout {
            idp: "https://idp".into(),
            issued_at: fixture_now(),
            return_to: Some("/bye".into()),
        };
        a.put_pending_logout("_l1".into(), p).await.unwrap();
        let read = b.get_pending_logout("_l1").await.unwrap().unwrap();
        assert_eq!(read.idp, "https://idp");
        assert_eq!(read.issued_at, fixture_now());
        assert_eq!(read.return_to.as_deref(), Some("/bye"));
        assert!(b.take_pending_logout("_l1").await.unwrap().is_some());
        assert!(a.take_pending_logout("_l1").await.unwrap().is_none());
    });
    // Redis gone: logout state operations are errors, never "nothing found".
    drop(redis);
    rt.block_on(async {
        assert!(b.get_pending_logout("_l2").await.is_err());
        assert!(b.consume_logout_request("idp\0_lr2", minute).await.is_err());
        assert!(
            b.session_for_logout("https://idp", "n1", "s1")
                .await
                .is_err()
        );
    });
}

#[test]
fn assertion_ids_are_consumed_once_across_replicas_even_concurrently() {
    let redis = Redis::start("assertion");
    let rt = runtime();
    let (a, b) = (
        Arc::new(redis_store(&rt, &redis.url())),
        Arc::new(redis_store(&rt, &redis.url())),
    );
    let firsts: usize = rt.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move {
                    s.consume_assertion("_assertion-1", Duration::from_secs(60))
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut n = 0;
        for t in tasks {
            n += usize::from(t.await.unwrap());
        }
        n
    });
    assert_eq!(firsts, 1);
    rt.block_on(async {
        assert!(
            a.consume_assertion("_assertion-2", Duration::from_secs(60))
                .await
                .unwrap()
        );
        assert!(
            !b.consume_assertion("_assertion-2", Duration::from_secs(60))
                .await
                .unwrap()
        );
    });
}

/// The whole ACS decision on two replicas sharing Redis, the same Response submitted 20
/// times at once (10 per replica): exactly one session.
#[test]
fn concurrent_replays_of_one_response_across_replicas_open_one_session() {
    let redis = Redis::start("acs");
    let rt = runtime();
    let config = config("");
    let a = {
        let store = redis_store(&rt, &redis.url());
        rt.block_on(put_fixture_pending(&store)).unwrap();
        Arc::new(state_with_store(
            &config,
            fixture_now,
            broker::features::audit::Sink::Off,
            store,
        ))
    };
    let b = Arc::new(state_with_store(
        &config,
        fixture_now,
        broker::features::audit::Sink::Off,
        redis_store(&rt, &redis.url()),
    ));
    let body = Arc::new(signed_body());
    let outcomes: Vec<Result<String, &'static str>> = rt.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                let body = body.clone();
                tokio::spawn(async move {
                    broker::routes::acs::consume(&s, body.as_bytes(), Some(BROWSER))
                        .await
                        .map(|(session, _)| session.sid)
                        .map_err(|f| f.code())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    let sessions = outcomes.iter().filter(|o| o.is_ok()).count();
    assert_eq!(sessions, 1, "{outcomes:?}");
    for o in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert!(
            matches!(*o, "broker_replay" | "broker_unknown_request"),
            "{o}"
        );
    }
}

#[test]
fn logout_on_one_replica_holds_on_the_other_and_activity_is_shared() {
    let redis = Redis::start("sessions");
    let rt = runtime();
    let (a, b) = (
        redis_store(&rt, &redis.url()),
        redis_store(&rt, &redis.url()),
    );
    rt.block_on(async {
        assert_eq!(a.check_session("s1", 100).await, Activity::Seen(None));
        assert_eq!(b.check_session("s1", 150).await, Activity::Seen(Some(100)));
        assert_eq!(a.check_session("s1", 160).await, Activity::Seen(Some(150)));
        b.revoke_session("s1", Duration::from_secs(60)).await;
        assert_eq!(a.check_session("s1", 170).await, Activity::Revoked);
        assert_eq!(b.check_session("s1", 170).await, Activity::Revoked);
        assert_eq!(a.check_session("s2", 170).await, Activity::Seen(None));
    });
}

#[test]
fn redis_down_fails_logins_closed_keeps_sessions_and_recovers_by_itself() {
    let mut redis = Redis::start("outage");
    let rt = runtime();
    let metrics = broker::features::metrics::Metrics::new();
    let (a, b) = (
        redis_store(&rt, &redis.url()),
        redis_store(&rt, &redis.url()),
    );
    a.bind_metrics(&metrics);
    rt.block_on(async {
        a.put_pending("_before".into(), pending("b")).await.unwrap();
        assert_eq!(a.check_session("live", 100).await, Activity::Seen(None));
        assert_eq!(a.check_session("ended", 100).await, Activity::Seen(None));
        b.revoke_session("ended", Duration::from_secs(600)).await;
        // Seen revoked on A once: A remembers it.
        assert_eq!(a.check_session("ended", 110).await, Activity::Revoked);
    });

    redis.stop();
    rt.block_on(async {
        // Every login-state operation fails, none passes by default.
        for _ in 0..2 {
            assert!(a.put_pending("_during".into(), pending("b")).await.is_err());
            assert!(a.get_pending("_before").await.is_err());
            assert!(a.take_pending("_before").await.is_err());
            assert!(
                a.consume_assertion("_x", Duration::from_secs(60))
                    .await
                    .is_err()
            );
        }
        // Sessions: answered from A's memory.
        assert_eq!(
            a.check_session("live", 130).await,
            Activity::Seen(Some(100))
        );
        assert_eq!(a.check_session("ended", 130).await, Activity::Revoked);
        // A logout during the outage holds on A at once...
        a.revoke_session("live", Duration::from_secs(600)).await;
        assert_eq!(a.check_session("live", 140).await, Activity::Revoked);
    });
    let errors = |code: &str| {
        metrics
            .store_errors
            .with_label_values(&["put_pending", code])
            .get()
    };
    assert_eq!(errors("store_unavailable") + errors("store_timeout"), 2);

    redis.restart();
    rt.block_on(async {
        eventually(|| a.put_pending("_after".into(), pending("b"))).await;
        assert!(a.take_pending("_after").await.unwrap().is_some());
        // ...and reaches Redis (so B) once A talks to Redis again.
        for _ in 0..100 {
            let _ = a.check_session("other", 200).await;
            if b.check_session("live", 200).await == Activity::Revoked {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(b.check_session("live", 201).await, Activity::Revoked);
    });
}

/// A Redis that accepts commands but does not answer (`CLIENT PAUSE`): logins fail with
/// `store_timeout` after `command_timeout_ms`, never pass; sessions are answered from memory.
#[test]
fn a_redis_that_stops_answering_times_out_logins_and_keeps_sessions() {
    let redis = Redis::start("paused");
    let rt = runtime();
    let metrics = broker::features::metrics::Metrics::new();
    let a = redis_store(&rt, &redis.url());
    a.bind_metrics(&metrics);
    rt.block_on(async {
        assert_eq!(a.check_session("live", 100).await, Activity::Seen(None));
        let client = redis::Client::open(redis.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(3000)
            .arg("ALL")
            .query_async::<()>(&mut c)
            .await
            .unwrap();
        assert_eq!(
            a.put_pending("_p".into(), pending("b")).await.unwrap_err(),
            StoreError::Timeout
        );
        assert_eq!(
            a.consume_assertion("_x", Duration::from_secs(60))
                .await
                .unwrap_err(),
            StoreError::Timeout
        );
        assert_eq!(
            a.check_session("live", 130).await,
            Activity::Seen(Some(100))
        );
        // Answers again once the pause ends.
        eventually(|| a.put_pending("_p".into(), pending("b"))).await;
    });
    let timeouts = |op: &str| {
        metrics
            .store_errors
            .with_label_values(&[op, "store_timeout"])
            .get()
    };
    assert!(timeouts("put_pending") >= 1);
    assert_eq!(timeouts("consume_assertion"), 1);
}

#[test]
fn a_value_varco_did_not_write_is_an_error_not_a_login() {
    let redis = Redis::start("corrupt");
    let rt = runtime();
    let a = redis_store(&rt, &redis.url());
    rt.block_on(async {
        let client = redis::Client::open(redis.url()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("SET")
            .arg("test:pending:_bad")
            .arg("{not json")
            .query_async::<()>(&mut c)
            .await
            .unwrap();
        assert_eq!(
            a.get_pending("_bad").await.unwrap_err(),
            StoreError::Corrupt
        );
        // Keys live under the configured prefix only.
        a.put_pending("_mine".into(), pending("b")).await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("*")
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(keys.iter().all(|k| k.starts_with("test:")), "{keys:?}");
    });
}

#[test]
fn store_configuration_is_validated_before_anything_connects() {
    let problems = |extra: &str| -> Vec<String> {
        match fixture::try_config_with("", extra) {
            Ok(_) => Vec::new(),
            Err(p) => p.into_iter().map(|p| p.key).collect(),
        }
    };
    assert!(problems("").is_empty());
    assert!(problems("[store]\nbackend = \"memory\"").is_empty());
    // Nothing listens there: still a valid configuration.
    assert!(problems("[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1:1/0\"").is_empty());
    assert_eq!(
        problems("[store]\nbackend = \"memcached\""),
        ["store.backend"]
    );
    assert_eq!(problems("[store]\nbackend = \"redis\""), ["store.url"]);
    // TLS: the files only with rediss://, the pair together, no #insecure.
    assert!(problems("[store]\nbackend = \"redis\"\nurl = \"rediss://r.example.org/\"").is_empty());
    assert_eq!(
        problems("[store]\nbackend = \"redis\"\nurl = \"rediss://r.example.org/#insecure\""),
        ["store.url"]
    );
    assert_eq!(
        problems(
            "[store]\nbackend = \"redis\"\nurl = \"redis://r.example.org/\"\nca_file = \"ca.pem\""
        ),
        ["store.ca_file"]
    );
    assert_eq!(
        problems(
            "[store]\nbackend = \"redis\"\nurl = \"rediss://r.example.org/\"\n\
             client_key_file = \"/nonexistent/key.pem\""
        ),
        ["store.client_key_file", "store.client_cert_file"]
    );
    assert_eq!(
        problems("[store]\nbackend = \"redis\"\nurl = \"http://r.example.org/\""),
        ["store.url"]
    );
    assert_eq!(
        problems("[store]\nurl = \"redis://127.0.0.1/\""),
        ["store.url"],
        "a URL with the memory backend is a mistake"
    );
    assert_eq!(
        problems("[store]\nbackend = \"redis\"\nurl_file = \"/nonexistent/redis-url\""),
        ["store.url_file"]
    );
    assert_eq!(
        problems(
            "[store]\nbackend = \"redis\"\nurl = \"redis://127.0.0.1/\"\npool_size = 0\n\
             command_timeout_ms = 0\nconnect_timeout_ms = 0\nkey_prefix = \"a b\""
        ),
        [
            "store.connect_timeout_ms",
            "store.command_timeout_ms",
            "store.pool_size",
            "store.key_prefix"
        ]
    );
    let secret = std::env::temp_dir().join(format!("varco-redis-url-{}", std::process::id()));
    std::fs::write(&secret, "redis://:s3cret@127.0.0.1:6379/2\n").unwrap();
    let config = fixture::try_config_with(
        "",
        &format!(
            "[store]\nbackend = \"redis\"\nurl_file = \"{}\"",
            secret.display()
        ),
    )
    .unwrap();
    match &config.store {
        broker::config::StoreBackend::Redis(o) => {
            assert_eq!(o.url, "redis://:s3cret@127.0.0.1:6379/2");
            assert!(
                !format!("{o:?}").contains("s3cret"),
                "the password is never printed"
            );
        }
        broker::config::StoreBackend::Memory => panic!("memory"),
    }
    let _ = std::fs::remove_file(secret);
}

/// `rediss://` against a `redis-server` whose TLS port requires a client certificate: the
/// store works with the configured CA and client certificate, and is refused by the server
/// without a client certificate, and refuses a server whose certificate another CA issued.
#[test]
fn rediss_with_a_ca_file_and_a_client_certificate_and_nothing_less() {
    use broker::features::store::redis::RedisTls;
    let (_redis, tls) = Redis::start_tls("tls");
    let rt = runtime();
    let url = format!("rediss://localhost:{}/0", tls.port);
    let read = |p: &std::path::Path| std::fs::read(p).unwrap();
    let store = |ca: &std::path::Path, client: bool| {
        let _in = rt.enter();
        let mut o = options(&url);
        o.tls = Some(RedisTls {
            ca: Some(read(ca)),
            client: client.then(|| (read(&tls.client_cert), read(&tls.client_key))),
        });
        assert_eq!(o.tls.as_ref().unwrap().check(), Ok(()));
        RedisStore::new(&o, Duration::from_secs(600), Duration::from_secs(3600)).unwrap()
    };
    let good = store(&tls.ca_file, true);
    rt.block_on(good.ping()).unwrap();
    // Real work over TLS: one-time use of a pending request.
    let good = Store::Redis(good);
    rt.block_on(good.put_pending("id-tls".into(), pending(BROWSER)))
        .unwrap();
    assert!(rt.block_on(good.take_pending("id-tls")).unwrap().is_some());
    assert!(rt.block_on(good.take_pending("id-tls")).unwrap().is_none());

    let anonymous = store(&tls.ca_file, false);
    assert!(rt.block_on(anonymous.ping()).is_err());
    let wrong_ca = store(&tls.other_ca_file, true);
    assert!(rt.block_on(wrong_ca.ping()).is_err());
    // Plain text to the TLS port is no way round it.
    let plain = {
        let _in = rt.enter();
        RedisStore::new(
            &options(&format!("redis://localhost:{}/0", tls.port)),
            Duration::from_secs(600),
            Duration::from_secs(3600),
        )
        .unwrap()
    };
    assert!(rt.block_on(plain.ping()).is_err());
}

#[test]
fn an_open_tunnels_peek_sees_another_replicas_logout_and_marks_nothing() {
    // Issue 18: a WebSocket tunnel on replica A rechecks its session with `peek_session`;
    // a logout on replica B must reach it, and the checks must not count as activity (or
    // the idle timeout would never end a session with an open tunnel).
    let redis = Redis::start("tunnels");
    let rt = runtime();
    let (a, b) = (
        redis_store(&rt, &redis.url()),
        redis_store(&rt, &redis.url()),
    );
    rt.block_on(async {
        assert_eq!(a.check_session("t1", 100).await, Activity::Seen(None));
        assert_eq!(b.peek_session("t1").await, Activity::Seen(Some(100)));
        assert_eq!(a.peek_session("t1").await, Activity::Seen(Some(100)));
        // Peeks left the mark where the last request put it.
        assert_eq!(b.check_session("t1", 200).await, Activity::Seen(Some(100)));
        assert_eq!(a.peek_session("t1").await, Activity::Seen(Some(200)));
        assert_eq!(a.peek_session("never-seen").await, Activity::Seen(None));
        b.revoke_session("t1", Duration::from_secs(60)).await;
        assert_eq!(a.peek_session("t1").await, Activity::Revoked);
    });
}
