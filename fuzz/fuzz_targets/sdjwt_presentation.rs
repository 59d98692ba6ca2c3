//! SD-JWT VC presentations and status list tokens as a verifier receives them. The first
//! input byte picks the mode:
//!
//! - even: the rest is a presentation → `sdjwt::Presentation::parse`, then `verify` with
//!   an issuer key whose private half was thrown away when it was made (`ISSUER` below) and
//!   the loosest expectations. It must **never verify**: that would be a forgery. The
//!   unverified payload also goes through the PID reader.
//! - odd: the rest is a status list token → `sdjwt::status::check` with the same key, which
//!   must never succeed either; and `status::value_at` on the raw bytes. Never a panic.

#![no_main]

use std::sync::LazyLock;

use jose::Jwks;
use libfuzzer_sys::fuzz_target;
use sdjwt::status::{self, StatusLimits, StatusRef};
use sdjwt::{Expect, IssuerKey, Limits, Pid, Presentation};

/// A P-256 public key made for this target; the private key no longer exists.
const ISSUER: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "issuer-1",
  "x": "9E9dUG2Ex01W1Q7CZl8Zagf_UyiEjXOkMBN_E2IumR8",
  "y": "7l7MmblmaHBQGdjIi6IXRH-nmzvZDymSQpKaPz3mFko"}]}"#;

static KEYS: LazyLock<Jwks> = LazyLock::new(|| Jwks::from_json(ISSUER.as_bytes()).expect("key"));

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let now = 1_800_000_000;
    if mode & 1 == 0 {
        let Ok(p) = Presentation::parse(text, &Limits::default()) else {
            return;
        };
        std::hint::black_box((p.issuer_unverified(), p.issuer_kid(), p.digest()));
        let expect = Expect {
            now,
            aud: "aud",
            nonce: "nonce",
            vct: &["urn:eudi:pid:it:1"],
            iss: None,
            skew: u64::MAX,
            kb_max_age: u64::MAX,
            require_status: false,
        };
        if let Ok(v) = p.verify(IssuerKey::Set(&KEYS), &expect) {
            panic!("presentation verified without the issuer key: {}", v.issuer);
        }
        if let Ok(serde_json::Value::Object(m)) = jose::json::parse(rest, 8) {
            let _ = Pid::from_claims(&m);
        }
        return;
    }
    let r = StatusRef {
        idx: u64::from(rest.first().copied().unwrap_or(0)),
        uri: "https://pid.example.it/status/1".into(),
    };
    if status::check(
        text,
        IssuerKey::Set(&KEYS),
        &r,
        now,
        &StatusLimits::default(),
    )
    .is_ok()
    {
        panic!("status list accepted without the issuer key");
    }
    for bits in [1, 2, 4, 8] {
        std::hint::black_box(status::value_at(rest, bits, r.idx.wrapping_mul(977)));
    }
});
