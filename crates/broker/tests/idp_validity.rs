//! The ACS refuses an IdP whose metadata entry is past its `validUntil` at the moment of the
//! lookup, even when no refresh has run since (the refresher may be stuck on a fetch).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use broker::routes::acs::consume;
use fixture::{BROWSER, config, fixture_now, ready, signed_body, state};

static OFFSET: AtomicU64 = AtomicU64::new(0);

fn clock() -> SystemTime {
    fixture_now() + Duration::from_secs(OFFSET.load(Ordering::SeqCst))
}

#[test]
fn the_acs_refuses_an_idp_past_its_valid_until_without_a_refresh() {
    let config = config("");
    // The IdP's metadata, read when the state is built, ends 30 s after the fixture's now.
    let file = match &config.metadata_sources[0].location {
        broker::features::registry::Location::File(f) => f.clone(),
        other => panic!("{other:?}"),
    };
    let xml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        xml.replacen(
            r#"entityID="https://idp.spid.example.org""#,
            r#"entityID="https://idp.spid.example.org" validUntil="2025-03-14T09:27:30Z""#,
            1,
        ),
    )
    .unwrap();

    OFFSET.store(0, Ordering::SeqCst);
    let s = state(&config, clock);
    assert_eq!(
        s.registry
            .get("https://idp.spid.example.org")
            .unwrap()
            .valid_until,
        saml::parse_instant("2025-03-14T09:27:30Z")
    );
    ready(consume(&s, signed_body().as_bytes(), Some(BROWSER)))
        .unwrap_or_else(|f| panic!("{}", f.code()));

    let s = state(&config, clock);
    OFFSET.store(31, Ordering::SeqCst);
    let refused = ready(consume(&s, signed_body().as_bytes(), Some(BROWSER))).unwrap_err();
    assert_eq!(refused.code(), "broker_unknown_idp");
}
