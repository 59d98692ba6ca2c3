//! Error codes: stable, distinct, prefixed; a JOSE cause keeps its own `jose.*` code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openid4vp::Error;

#[test]
fn every_error_code_is_distinct_and_prefixed() {
    let s = String::new;
    let samples = [
        Error::Config { what: "x" },
        Error::Expired,
        Error::Response { reason: "x" },
        Error::State,
        Error::Wallet { error: s() },
        Error::Unrequested { id: s() },
        Error::Missing { id: s() },
    ];
    let mut codes: Vec<&str> = samples.iter().map(Error::code).collect();
    assert!(
        codes.iter().all(|c| c.starts_with("openid4vp.")),
        "{codes:?}"
    );
    assert!(samples.iter().all(|e| !e.to_string().is_empty()));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), samples.len());
    let wrapped = Error::Jose {
        what: "response",
        cause: jose::Error::JweDecrypt,
    };
    assert_eq!(wrapped.code(), "jose.jwe_decrypt");
}
