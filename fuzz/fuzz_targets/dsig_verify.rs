//! Arbitrary bytes, parsed, then `xmldsig::verify` on every element with fixed trusted keys
//! (the test keys `idp-rsa3072` and `idp-p256`): never a panic, and never `Ok`.
//!
//! No seed is signed with a trusted key (seeds are signed with `attacker-rsa2048`,
//! `sp-rsa2048`, `idp-rsa2048` and `idp-p384`), and nothing a fuzzer writes can be signed by
//! one, so any `Ok` is a real bug: a signature accepted that no trusted key made.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use saml_xml::{Document, Element, Limits};
use xmldsig::{Policy, TrustedKey, verify};

static KEYS: LazyLock<Vec<TrustedKey>> = LazyLock::new(|| {
    [
        &include_bytes!("../../crates/xmldsig/tests/keys/idp-rsa3072.crt.der")[..],
        &include_bytes!("../../crates/xmldsig/tests/keys/idp-p256.crt.der")[..],
    ]
    .iter()
    .map(|der| TrustedKey::from_certificate_der(der).expect("test certificate"))
    .collect()
});

static POLICY: LazyLock<Policy> = LazyLock::new(Policy::default);

fn check(el: Element<'_, '_>) {
    match verify(el, &KEYS, &POLICY) {
        Ok(v) => panic!(
            "verified a signature no trusted key made: element {:?}",
            v.element()
        ),
        Err(e) => {
            std::hint::black_box((e.code(), e.to_string()));
        }
    }
    for c in el.child_elements() {
        check(c);
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(doc) = Document::parse(data, &Limits::default()) {
        check(doc.root());
    }
});
