//! The PID view: required attributes, types, and ambiguity refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use sdjwt::Pid;
use serde_json::{Value, json};

fn pid(v: Value) -> Result<Pid, &'static str> {
    Pid::from_claims(v.as_object().unwrap()).map_err(|e| e.code())
}

fn base() -> Value {
    json!({"given_name": "Anna", "family_name": "Bianchi", "birth_date": "1990-12-31",
           "tax_id_code": "TINIT-BNCNNA90T71H501X"})
}

#[test]
fn minimal_pid_read() {
    let p = pid(base()).unwrap();
    assert_eq!(p.family_name, "Bianchi");
    assert_eq!(p.personal_administrative_number, None);
}

#[test]
fn birthdate_spelling_variants_and_their_conflict() {
    let mut v = base();
    let o = v.as_object_mut().unwrap();
    o.remove("birth_date");
    o.insert("birthdate".into(), json!("1990-12-31"));
    assert_eq!(pid(v.clone()).unwrap().birth_date, "1990-12-31");
    v["birth_date"] = json!("1991-01-01");
    assert_eq!(pid(v).unwrap_err(), "sdjwt.pid");
}

#[test]
fn malformed_attributes_refused() {
    for (k, bad) in [
        ("given_name", json!("")),
        ("given_name", json!(7)),
        ("family_name", json!("a\u{0}b")),
        ("family_name", json!("x".repeat(300))),
        ("birth_date", json!("31/12/1990")),
        ("birth_date", json!("1990-13-01")),
        ("nationalities", json!(["ITA"])),
        ("nationalities", json!("IT")),
        ("place_of_birth", json!("Roma")),
    ] {
        let mut v = base();
        v[k] = bad.clone();
        assert_eq!(pid(v).unwrap_err(), "sdjwt.pid", "{k}: {bad}");
    }
}

#[test]
fn an_identifier_is_required() {
    let mut v = base();
    v.as_object_mut().unwrap().remove("tax_id_code");
    assert_eq!(pid(v.clone()).unwrap_err(), "sdjwt.pid");
    v["personal_administrative_number"] = json!("IT-123");
    assert_eq!(
        pid(v).unwrap().personal_administrative_number.as_deref(),
        Some("IT-123")
    );
}
