//! DeviceResponses made at test time by independent libraries (`tests/py/mdoc.py`:
//! pymdoccbor and pycose for the issuer's MSO and COSE_Sign1, cbor2 and cryptography for
//! the device signature over the OpenID4VP 1.0 session transcript), verified here; one
//! scenario per attack class, each refused with its code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;

use mdoc::{DeviceResponse, Error, Expect, Limits, Verified, session_transcript};
use serde_json::Value;

fn vectors() -> &'static Value {
    static V: OnceLock<Value> = OnceLock::new();
    V.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/mdoc.py");
        serde_json::from_slice(&testkit::python::run("wallet", &script, &[], None)).unwrap()
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn verify(bytes: &[u8]) -> Result<Verified, Error> {
    let v = vectors();
    let transcript = session_transcript(
        v["client_id"].as_str().unwrap(),
        v["nonce"].as_str().unwrap(),
        Some(&hex(v["thumbprint"].as_str().unwrap())),
        v["response_uri"].as_str().unwrap(),
    );
    let expect = Expect {
        now: v["now"].as_u64().unwrap(),
        skew: 60,
        doctype: "eu.europa.ec.eudi.pid.1",
        transcript: &transcript,
    };
    let r = DeviceResponse::parse(bytes, &Limits::default())?;
    r.verify(&hex(v["issuer_point"].as_str().unwrap()), &expect)
}

#[test]
fn every_scenario_answers_its_expected_code() {
    let mut wrong = Vec::new();
    let scenarios = vectors()["scenarios"].as_object().unwrap();
    assert!(scenarios.len() >= 19);
    for (name, sc) in scenarios {
        let got = match verify(&hex(sc["cbor"].as_str().unwrap())) {
            Ok(_) => "ok".to_owned(),
            Err(e) => e.code().to_owned(),
        };
        if got != sc["expect"].as_str().unwrap() {
            wrong.push(format!("{name}: got {got}, expected {}", sc["expect"]));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn the_pid_is_disclosed() {
    let sc = &vectors()["scenarios"]["ok"];
    let bytes = hex(sc["cbor"].as_str().unwrap());
    let chain = DeviceResponse::parse(&bytes, &Limits::default())
        .unwrap()
        .issuer_x5chain()
        .unwrap();
    assert_eq!(chain.len(), 1);
    let v = verify(&bytes).unwrap();
    let pid = &v.namespaces["eu.europa.ec.eudi.pid.1"];
    assert_eq!(pid["family_name"], "Rossi");
    assert_eq!(pid["birth_date"], "1980-01-10");
    assert_eq!(pid["age_over_18"], true);
    assert_eq!(pid["nationality"][0], "IT");
    assert_eq!(v.valid_until, 1_893_542_399);
}

fn named(names: &[&str]) {
    for n in names {
        let sc = &vectors()["scenarios"][*n];
        let got = verify(&hex(sc["cbor"].as_str().unwrap())).unwrap_err();
        assert_eq!(got.code(), sc["expect"].as_str().unwrap(), "{n}");
    }
}

#[test]
fn forged_issuer_signature_refused() {
    named(&["forged_issuer_signature"]);
}

#[test]
fn tampered_foreign_or_duplicate_elements_refused() {
    named(&["tampered_element", "foreign_element", "duplicate_element"]);
}

#[test]
fn expired_mdoc_refused() {
    named(&["expired"]);
}

#[test]
fn device_signature_bound_to_this_request() {
    named(&[
        "device_signature_other_key",
        "device_signature_other_nonce",
        "device_signature_other_client",
        "device_signature_other_doctype",
        "device_alg_unsupported",
        "device_mac_refused",
    ]);
}

#[test]
fn doctype_mismatch_refused() {
    named(&["doctype_mismatch"]);
}

#[test]
fn malformed_or_oversized_cbor_refused() {
    named(&[
        "not_cbor",
        "indefinite_length",
        "duplicate_map_key",
        "deep_nesting",
        "trailing_bytes",
        "too_large",
    ]);
}

#[test]
fn lengths_beyond_the_input_are_refused_before_allocating() {
    // A byte string claiming 2^63 bytes, an array claiming 2^32 elements.
    // Then a map with an array key and one with a float key.
    for bytes in [
        &[0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0][..],
        &[0x9a, 0xff, 0xff, 0xff, 0xff, 0x00][..],
        &[0xa1, 0x80, 0x00][..],
        &[0xa1, 0xf9, 0x3c, 0x00, 0x00][..],
    ] {
        assert_eq!(
            mdoc::cbor::parse(bytes, 16).unwrap_err().code(),
            "mdoc.cbor"
        );
    }
}

#[test]
fn every_error_code_is_distinct_and_prefixed() {
    let samples = [
        Error::TooLarge { len: 0, max: 0 },
        Error::Cbor { reason: "x" },
        Error::Structure { reason: "x" },
        Error::Alg,
        Error::IssuerSignature,
        Error::DeviceSignature,
        Error::DigestAlg,
        Error::Digest,
        Error::Duplicate,
        Error::DocType,
        Error::Expired,
        Error::NotYetValid,
    ];
    let mut codes: Vec<&str> = samples.iter().map(Error::code).collect();
    assert!(codes.iter().all(|c| c.starts_with("mdoc.")));
    assert!(samples.iter().all(|e| !e.to_string().is_empty()));
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), samples.len());
}
