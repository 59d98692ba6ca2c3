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

use broker::server::consume;
use broker::session::Purpose;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use fixture::{BROWSER, config, fixture_now, signed_body, state};

fn benches(c: &mut Criterion) {
    let config = config("");
    let body = signed_body();
    // Sanity: the measured path accepts it, and a second submit is refused.
    let s = state(&config, fixture_now);
    consume(&s, body.as_bytes(), Some(BROWSER)).unwrap_or_else(|f| panic!("{}", f.code()));
    assert!(consume(&s, body.as_bytes(), Some(BROWSER)).is_err());

    c.bench_function("acs_consume_and_seal_11k_rsa2048", |b| {
        b.iter_batched(
            || state(&config, fixture_now),
            |s| {
                let (session, to) = consume(&s, black_box(body.as_bytes()), Some(BROWSER))
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
    use broker::forward_auth::{Peer, auth};
    let config = config("");
    let s = state(&config, fixture_now);
    let (session, _) = consume(&s, signed_body().as_bytes(), Some(BROWSER))
        .unwrap_or_else(|f| panic!("{}", f.code()));
    let sealed = s.sealer.seal(Purpose::Session, &session).unwrap();
    let request = hyper::Request::builder()
        .uri("/auth")
        .header("host", "sp.varco.example.org")
        .header("x-original-uri", "/account/documents?page=2")
        .header("x-forwarded-host", "sp.varco.example.org")
        .header("cookie", format!("other=1; varco_session={sealed}"))
        .extension(Peer("127.0.0.1:50000".parse().unwrap()))
        .body(())
        .unwrap();
    let first = auth(&s, &request);
    assert_eq!(first.status(), 200);
    let token = first.headers().get("authorization").cloned().unwrap();
    c.bench_function("forward_auth_check_cached_token", |b| {
        b.iter(|| {
            let r = auth(&s, black_box(&request));
            debug_assert_eq!(r.headers().get("authorization"), Some(&token));
            r
        })
    });
    c.bench_function("session_cookie_open", |b| {
        b.iter(|| {
            s.sealer
                .open::<broker::session::Session>(Purpose::Session, black_box(&sealed))
        })
    });
}

criterion_group!(acs, benches, forward_auth);
criterion_main!(acs);
