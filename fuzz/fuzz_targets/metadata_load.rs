//! IdP metadata as a source serves it: bytes → `metadata::load_document_capped` (parse,
//! optional root-signature check, validity, entities, keys, names). The first input byte
//! picks the mode. Unpinned: never a panic, whatever the document. Pinned to the test
//! federation certificate `idp-rsa3072`, which signed no seed and cannot be used by the
//! fuzzer: never `Ok` either, since an accepted document would be a forgery.

#![no_main]

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use saml::Federation;
use xmldsig::TrustedKey;

static PINNED: LazyLock<Vec<TrustedKey>> = LazyLock::new(|| {
    vec![
        TrustedKey::from_certificate_der(include_bytes!(
            "../../crates/xmldsig/tests/keys/idp-rsa3072.crt.der"
        ))
        .expect("test certificate"),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_763_900_000);
    let ceiling = Some(now + Duration::from_secs(7 * 86_400));
    let federation = match mode % 3 {
        0 => Federation::Spid,
        1 => Federation::Cie,
        _ => Federation::Eidas,
    };
    let pinned: &[TrustedKey] = if mode & 0x80 != 0 { &PINNED } else { &[] };
    match metadata::load_document_capped(bytes, federation, pinned, now, "fuzz", ceiling) {
        Ok(loaded) if !pinned.is_empty() => {
            panic!(
                "accepted metadata no trusted key signed: {} IdPs",
                loaded.idps.len()
            )
        }
        Ok(loaded) => {
            std::hint::black_box(loaded.idps.len());
        }
        Err(e) => {
            std::hint::black_box((e.code(), e.to_string()));
        }
    }
});
