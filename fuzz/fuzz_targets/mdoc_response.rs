//! ISO mdoc DeviceResponses as a verifier receives them (base64url-decoded `vp_token`
//! entries): `mdoc::DeviceResponse::parse`, `issuer_x5chain`, then `verify` with an issuer
//! key whose private half was thrown away when it was made (`ISSUER` below). It must
//! **never verify**: that would be a forgery. Also the raw CBOR reader alone. Never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mdoc::{DeviceResponse, Expect, Limits, session_transcript};

/// A P-256 public key (uncompressed SEC1) made for this target; the private key no longer
/// exists. Same key as the other targets' `ISSUER`/`ANCHOR`.
const ISSUER: [u8; 65] = [
    0x04, 0xf4, 0x4f, 0x5d, 0x50, 0x6d, 0x84, 0xc7, 0x4d, 0x56, 0xd5, 0x0e, 0xc2, 0x66, 0x5f, 0x19,
    0x6a, 0x07, 0xff, 0x53, 0x28, 0x84, 0x8d, 0x73, 0xa4, 0x30, 0x13, 0x7f, 0x13, 0x62, 0x2e, 0x99,
    0x1f, 0xee, 0x5e, 0xcc, 0x99, 0xb9, 0x66, 0x68, 0x70, 0x50, 0x19, 0xd8, 0xc8, 0x8b, 0xa2, 0x17,
    0x44, 0x7f, 0xa7, 0x9b, 0x3b, 0xd9, 0x0f, 0x29, 0x92, 0x42, 0x92, 0x9a, 0x3f, 0x3d, 0xe6, 0x16,
    0x4a,
];

fuzz_target!(|data: &[u8]| {
    let _ = mdoc::cbor::parse(data, 16);
    let Ok(r) = DeviceResponse::parse(data, &Limits::default()) else {
        return;
    };
    let _ = r.issuer_x5chain();
    let transcript = session_transcript("x509_hash:abc", "nonce", None, "https://rp.example");
    let expect = Expect {
        now: 1_800_000_000,
        skew: u64::MAX,
        doctype: "eu.europa.ec.eudi.pid.1",
        transcript: &transcript,
    };
    if r.verify(&ISSUER, &expect).is_ok() {
        panic!("DeviceResponse verified without the issuer key");
    }
});
