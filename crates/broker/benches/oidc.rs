//! The OpenID Provider's token endpoint in process: one authorization code exchanged per
//! iteration, as `POST /oidc/token` runs it after HTTP parsing.
//!
//! Per iteration: decode the form, authenticate the client (`client_secret_basic`: Basic
//! header, SHA-256 of the secret, constant-time compare), take the code from the in-memory
//! store, mark it used, check client, `redirect_uri` and PKCE (S256), check the session,
//! store the grant, the access token and the session's grant set, build the ID token
//! claims and sign them with ES256 (the `[token]` key), and write the JSON answer. Audit is
//! off (the durable record's cost is `benches/audit.rs`'s). Each iteration's code is put in
//! the store during setup, not measured.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use broker::features::oidc_op::records;
use broker::routes::oidc_op::token;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http_body_util::Full;

use fixture::{config, fixture_now, ready, state};

const SECRET: &str = "bench-secret-0123456789abcdefghijklmnop";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn principal(now: u64) -> identity::Principal {
    identity::normalize(
        vec![
            ("fiscalNumber".into(), vec!["TINIT-RSSMRA80A01H501U".into()]),
            ("name".into(), vec!["Mario".into()]),
            ("familyName".into(), vec!["Rossi".into()]),
            ("email".into(), vec!["mario.rossi@example.org".into()]),
        ],
        &identity::Source {
            method: identity::Method::Spid,
            idp: "https://idp.example",
            level: identity::SPID_L2,
            auth_time: now,
            session_id: "s1",
        },
        &identity::Mapping::default(),
    )
    .unwrap()
}

fn benches(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("varco-oidc-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    let config = config(&format!(
        "[oidc]\n[[oidc.client]]\nid = \"bench\"\nsecret_file = \"{}\"\n\
         redirect_uris = [\"https://app.example/cb\"]\n",
        dir.join("secret").display()
    ));
    let s = state(&config, fixture_now);
    let now = broker::leaf::clock::unix(fixture_now());
    let principal = principal(now);
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("bench:{SECRET}"))
    );
    let n = std::cell::Cell::new(0u64);
    // A code for the next exchange, put into `s`'s store.
    let fresh_in = |s: &broker::state::State| {
        n.set(n.get() + 1);
        let n = n.get();
        let code = format!("code-{n:032}");
        let record = records::Code {
            grant: format!("{n:032x}"),
            client_id: "bench".into(),
            redirect_uri: "https://app.example/cb".into(),
            challenge: Some(CHALLENGE.into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            scopes: oidc::Scopes::parse_list("openid profile email")
                .unwrap()
                .bits(),
            // A session per code: the grant set of one session is bounded (64).
            sid: format!("s{n}"),
            session_exp: now + 3600,
            principal: principal.clone(),
            acting: None,
        };
        ready(s.store.put_record(
            records::CODE,
            &records::digest_key(&code),
            records::encode(&record).unwrap(),
            Duration::from_secs(60),
        ))
        .unwrap();
        let body = format!(
            "grant_type=authorization_code&code={code}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier={VERIFIER}"
        );
        hyper::Request::builder()
            .method("POST")
            .uri("/oidc/token")
            .header("authorization", &basic)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(bytes::Bytes::from(body)))
            .unwrap()
    };
    let fresh = || fresh_in(&s);
    // Sanity: the measured path issues tokens, and the same code again is refused.
    let req = fresh();
    let (parts, body) = req.into_parts();
    let again = hyper::Request::from_parts(parts.clone(), body.clone());
    let ok = ready(token(&s, hyper::Request::from_parts(parts, body)));
    assert_eq!(ok.status(), 200);
    assert_eq!(ready(token(&s, again)).status(), 400);

    // For instruction counts: `VARCO_OIDC_EXCHANGES=N` runs N exchanges and nothing else,
    // so `valgrind --tool=callgrind --toggle-collect='*oidc_op*token*'` counts exactly the
    // handler's work (the codes are made before, outside it).
    if let Some(n) = std::env::var("VARCO_OIDC_EXCHANGES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        let reqs: Vec<_> = (0..n).map(|_| fresh()).collect();
        for req in reqs {
            assert_eq!(ready(token(&s, req)).status(), 200);
        }
        println!("{n} exchanges");
        return;
    }

    c.bench_function("oidc_token_code_exchange_es256", |b| {
        b.iter_batched(
            fresh,
            |req| black_box(ready(token(&s, req))),
            BatchSize::SmallInput,
        )
    });

    // Open loop on this one thread: the closed-loop rate first, then half of it for a few
    // seconds, each exchange timed from when it was due (so queueing counts), as a client
    // population sending at a steady rate would see it, HTTP parsing aside.
    // A fresh store, so the prepared codes are not pushed out by what the runs above left.
    let s = state(&config, fixture_now);
    let fresh = || fresh_in(&s);
    let closed: Vec<_> = (0..2000).map(|_| fresh()).collect();
    let started = Instant::now();
    for req in closed {
        assert_eq!(ready(token(&s, req)).status(), 200);
    }
    let max_rate = 2000.0 / started.elapsed().as_secs_f64();
    let rate = max_rate / 2.0;
    // Prepared up front, so fewer than the in-memory records budget would hold.
    let n = ((rate * 2.0) as usize).clamp(100, 6000);
    let open: Vec<_> = (0..n).map(|_| fresh()).collect();
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for (i, req) in open.into_iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        assert_eq!(ready(token(&s, req)).status(), 200);
        lat.push(due.elapsed());
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "oidc_token open loop: closed-loop {max_rate:.0}/s on one thread; at {rate:.0}/s for {n} exchanges: p50 {:?}, p99 {:?}, max {:?}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
}

criterion_group!(oidc, benches);
criterion_main!(oidc);
