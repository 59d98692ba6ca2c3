//! Error codes: stable, distinct, prefixed; a JOSE cause keeps its own `jose.*` code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use oidfed::Error;

#[test]
fn every_error_code_is_distinct_and_prefixed() {
    let s = String::new;
    let samples = [
        Error::TrustAnchorKeys {
            anchor: s(),
            cause: jose::Error::Signature,
        },
        Error::Claim {
            claim: "x",
            reason: "y",
        },
        Error::EntityId { what: "x" },
        Error::IssSubMismatch { expected: s() },
        Error::Expired { entity: s() },
        Error::NotYetValid { entity: s() },
        Error::Crit,
        Error::NoAuthorityHints { entity: s() },
        Error::NoFetchEndpoint { entity: s() },
        Error::NoTrustAnchor { subject: s() },
        Error::PathTooLong,
        Error::TooManyFetches { max: 0 },
        Error::FetchFailed { url: s() },
        Error::Constraint { reason: "x" },
        Error::Policy {
            at: s(),
            reason: "x",
        },
        Error::PolicyCrit { operator: s() },
        Error::PolicyViolation {
            at: s(),
            operator: "x",
        },
        Error::TrustMarkIssuer {
            trust_mark_type: s(),
        },
        Error::TrustMark { reason: "x" },
        Error::TrustMarkDelegation,
        Error::State,
        Error::Config { what: "x" },
    ];
    let mut codes: Vec<&str> = samples.iter().map(Error::code).collect();
    assert!(codes.iter().all(|c| c.starts_with("oidfed.")), "{codes:?}");
    for e in &samples {
        assert!(!e.to_string().is_empty());
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), samples.len());
    let wrapped = Error::Jose {
        what: "subordinate statement",
        entity: "https://op.example.it".into(),
        cause: jose::Error::Signature,
    };
    assert_eq!(wrapped.code(), "jose.signature");
    assert!(wrapped.to_string().contains("https://op.example.it"));
}
