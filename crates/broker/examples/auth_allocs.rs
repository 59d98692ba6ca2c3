//! Runs the `/auth` decision for a valid session N times in process, for counting what one
//! request costs with valgrind (issue 20 part 5), deterministically on a loaded machine:
//!
//! ```text
//! cargo build -p broker --example auth_allocs
//! valgrind --tool=memcheck target/debug/examples/auth_allocs 1000 2>&1 | grep 'total heap usage'
//! valgrind --tool=memcheck target/debug/examples/auth_allocs 2000 2>&1 | grep 'total heap usage'
//! ```
//!
//! The difference of the two totals over 1,000 is the allocations per `/auth` request (the
//! setup, the ACS login that opens the session and the first `/auth`, which mints the token
//! and caches the view, are the same in both runs). `--tool=callgrind` on a release build
//! gives instructions per request the same way.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/fixture/mod.rs"]
mod fixture;

use broker::leaf::http::Peer;
use broker::leaf::session::Purpose;
use broker::routes::acs::consume;
use broker::routes::forward_auth::auth;

use fixture::{BROWSER, config, fixture_now, ready, signed_body, state};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
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
    // The first answer mints the token and caches the view: outside the difference.
    let first = ready(auth(&s, &request));
    assert_eq!(first.status(), 200);
    let token = first.headers().get("authorization").cloned().unwrap();
    for _ in 0..n {
        let r = ready(auth(&s, std::hint::black_box(&request)));
        assert_eq!(r.headers().get("authorization"), Some(&token));
    }
    println!("{n} /auth answers");
}
