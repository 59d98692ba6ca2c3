//! Federation documents as a resolver receives them. The first input byte picks the mode:
//!
//! - even: the rest is a compact JWS → `jose::Jws::decode`, `oidfed::Statement::decode` and
//!   its self-signature check; then fed to a resolver as the Entity Configuration of a
//!   configured Trust Anchor whose only key is `ANCHOR` below. Its private half was thrown
//!   away when it was made, so the resolver must **never return a chain**: that would be a
//!   forgery. Fed also as a leaf's configuration, which may only ask for the next document
//!   or fail.
//! - odd: the rest is JSON → strict parse → `policy::parse`, merged with itself, applied to
//!   itself as metadata. Never a panic.

#![no_main]

use std::sync::LazyLock;

use jose::{Jwks, Jws, Limits, Typ};
use libfuzzer_sys::fuzz_target;
use oidfed::{Resolver, ResolverConfig, Statement, Step, TrustAnchor, policy};

const TA: &str = "https://ta.example.org";

/// A P-256 public key made for this target; the private key no longer exists.
const ANCHOR: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "fuzz-anchor",
  "x": "9E9dUG2Ex01W1Q7CZl8Zagf_UyiEjXOkMBN_E2IumR8",
  "y": "7l7MmblmaHBQGdjIi6IXRH-nmzvZDymSQpKaPz3mFko"}]}"#;

static CONFIG: LazyLock<ResolverConfig> = LazyLock::new(|| {
    let jwks = Jwks::from_json(ANCHOR.as_bytes()).expect("anchor key");
    let mut cfg = ResolverConfig::new(vec![TrustAnchor {
        entity_id: TA.to_owned(),
        jwks,
    }]);
    cfg.allow_http = true;
    cfg
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limits = Limits::default();
    if mode & 1 == 1 {
        let Ok(serde_json::Value::Object(m)) = jose::json::parse(rest, limits.max_depth) else {
            return;
        };
        if let Ok(mut p) = policy::parse(&m, &[]) {
            if let Ok(again) = policy::parse(&m, &[]) {
                let _ = policy::merge(&mut p, again);
            }
            let mut md = m.clone();
            let _ = policy::apply(&p, &mut md);
            std::hint::black_box(policy::to_value(&p));
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let _ = Jws::decode(text, Typ::JwtOrAbsent, &limits);
    if let Ok(st) = Statement::decode(text, &limits, true) {
        let _ = st.verify(st.jwks(), "entity configuration");
        let _ = st.check_time(1_800_000_000, 60);
    }
    let now = 1_800_000_000;
    if let Ok((mut r, _)) = Resolver::start(&CONFIG, TA, now) {
        if let Ok(Step::Done(chain)) = r.feed(Ok(text)) {
            panic!(
                "trust anchor configuration accepted without its key: {}",
                chain.subject()
            );
        }
    }
    if let Ok((mut r, _)) = Resolver::start(&CONFIG, "https://rp.example.org", now) {
        if let Ok(Step::Done(_)) = r.feed(Ok(text)) {
            panic!("a chain from one document");
        }
    }
});
