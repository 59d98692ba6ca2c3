//! The ACS form fields around the Response (issue 18): the `RelayState` the SAML bindings
//! cap at 80 bytes, and a repeated one, are refused before any lookup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use broker::routes::acs::consume;
use fixture::{BROWSER, REQUEST_ID, config, fixture_now, ready, signed_body, state};

fn consume_code(body: &str) -> Result<(), &'static str> {
    let config = config("");
    let s = state(&config, fixture_now);
    ready(consume(&s, body.as_bytes(), Some(BROWSER)))
        .map(|_| ())
        .map_err(|f| f.code())
}

#[test]
fn relay_state_over_80_bytes_is_refused() {
    let genuine = signed_body();
    // 81 bytes: the request ID padded; 80 bytes exactly is within the limit (the lookup
    // then misses and the Response's own InResponseTo finds the pending login).
    let long = format!("{REQUEST_ID}{}", "x".repeat(81 - REQUEST_ID.len()));
    let at_limit = format!("{REQUEST_ID}{}", "x".repeat(80 - REQUEST_ID.len()));
    let with = |relay: &str| {
        genuine.replace(
            &format!("RelayState={REQUEST_ID}"),
            &format!("RelayState={relay}"),
        )
    };
    assert_eq!(
        consume_code(&with(&long)),
        Err("broker_relay_state_too_long")
    );
    assert_eq!(consume_code(&with(&at_limit)), Ok(()));
    assert_eq!(consume_code(&genuine), Ok(()));
}

#[test]
fn repeated_relay_state_is_refused() {
    let body = format!("{}&RelayState={REQUEST_ID}", signed_body());
    assert_eq!(consume_code(&body), Err("broker_duplicate_field"));
}
