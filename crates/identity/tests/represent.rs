//! Representations: the signed-file source (with its attack tests), the decision, and the
//! acting identity in the token and headers. Files are signed with jose's real ES256 signer
//! and verified with the real verifier; no step is stubbed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::represent::signed_file::{FileLimits, SignedFile, TYP as SIGNED_FILE_TYP};
use identity::represent::{self, Kind, Refusal, Representations, Source};
use identity::{
    KeySet, KeyState, Loa, Mapping, Method, Principal, SPID_L2, SigningKey, TokenParams, normalize,
};
use jose::{Jwks, Signer};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED, Ed25519KeyPair, UnparsedPublicKey};
use serde_json::{Map, Value, json};

/// 2026-05-28 20:26:40 UTC.
const NOW: u64 = 1_780_000_000;
const DAY: u64 = 86_400;
const ISSUER: &str = "https://portale.example.it";
/// The delegate (Giovanni Bianchi) and the people he may represent.
const DELEGATE: &str = "TINIT-BNCGNN80A01F205W";
const CHILD_CF: &str = "RSSLCU15A41H501A";
const ELDER_CF: &str = "VRDLGU60M01L219V";
const OTHER_PERSON: &str = "TINIT-RSSMRA85T10A562S";

fn signer(kid: &str) -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), Some(kid), &rng).unwrap()
}

fn source_for(s: &Signer) -> SignedFile {
    SignedFile::new(
        "portale",
        ISSUER,
        Jwks::from_keys(vec![s.jwk().clone()]).unwrap(),
        FileLimits::default(),
    )
}

fn sign(s: &Signer, payload: &Value) -> String {
    let Value::Object(m) = payload else { panic!() };
    s.sign(SIGNED_FILE_TYP, m, &SystemRandom::new()).unwrap()
}

fn delegation(reference: &str) -> Value {
    json!({
        "ref": reference,
        "type": "delegation",
        "delegate": DELEGATE,
        "represented": {"person": {"fiscal_code": ELDER_CF, "given_name": "Luigi", "family_name": "Verdi"}},
        "services": ["tributi", "anagrafe"],
        "not_before": NOW - 30 * DAY,
        "not_after": NOW + 30 * DAY,
    })
}

fn file_with(records: Vec<Value>) -> Value {
    json!({"iss": ISSUER, "iat": NOW - 60, "exp": NOW + DAY, "representations": records})
}

fn standard_records() -> Vec<Value> {
    vec![
        delegation("D-1"),
        json!({
            "ref": "P-1", "type": "parental", "delegate": DELEGATE,
            "represented": {"person": {"fiscal_code": CHILD_CF, "given_name": "Lucia", "birthdate": "2015-01-01"}},
            "services": ["scuola"], "not_before": NOW - DAY, "not_after": NOW + 365 * DAY,
        }),
        json!({
            "ref": "C-1", "type": "legal_representative", "delegate": DELEGATE,
            "represented": {"company": {"vat": "01234567897", "name": "ACME S.r.l."}},
            "services": ["suap"], "not_before": NOW - DAY, "not_after": NOW + DAY,
        }),
        json!({
            "ref": "X-1", "type": "delegation", "delegate": DELEGATE,
            "represented": {"person": {"fiscal_code": ELDER_CF}},
            "services": ["tributi"], "not_before": NOW - 60 * DAY, "not_after": NOW - DAY,
        }),
        json!({
            "ref": "F-1", "type": "delegation", "delegate": DELEGATE,
            "represented": {"person": {"fiscal_code": ELDER_CF}},
            "services": ["tributi"], "not_before": NOW + DAY, "not_after": NOW + 60 * DAY,
        }),
        json!({
            "ref": "O-1", "type": "guardianship", "delegate": OTHER_PERSON,
            "represented": {"person": {"fiscal_code": ELDER_CF}},
            "services": ["tributi"], "not_before": NOW - DAY, "not_after": NOW + DAY,
        }),
    ]
}

fn loaded() -> Representations {
    let s = signer("portal-1");
    let file = sign(&s, &file_with(standard_records()));
    source_for(&s).verify(file.as_bytes(), NOW).unwrap()
}

fn delegate() -> Principal {
    let attrs = vec![
        ("fiscalNumber".to_owned(), vec![DELEGATE.to_owned()]),
        ("name".to_owned(), vec!["Giovanni".to_owned()]),
        ("familyName".to_owned(), vec!["Bianchi".to_owned()]),
    ];
    let source = identity::Source {
        method: Method::Spid,
        idp: "https://idp.example.it",
        level: SPID_L2,
        auth_time: NOW - 5,
        session_id: "sid-1",
    };
    normalize(attrs, &source, &Mapping::default()).unwrap()
}

fn code_of(s: &Signer, payload: &Value) -> &'static str {
    let file = sign(s, payload);
    source_for(s)
        .verify(file.as_bytes(), NOW)
        .unwrap_err()
        .code()
}

// ---- the signed file: what it accepts -------------------------------------------------------

#[test]
fn signed_file_loads_every_type_and_indexes_by_delegate() {
    let reps = loaded();
    assert_eq!(reps.len(), 6);
    assert_eq!(reps.source(), "portale");
    assert_eq!(reps.for_delegate(DELEGATE).count(), 5);
    assert_eq!(reps.for_delegate(OTHER_PERSON).count(), 1);
    let c = reps.by_reference("C-1").unwrap();
    assert_eq!(c.kind(), Kind::LegalRepresentative);
    assert_eq!(c.party().sub(), "VATIT-01234567897");
    assert_eq!(c.source(), "portale");
    assert_eq!(reps.issued_at(), Some(NOW - 60));
    let refs: Vec<&str> = reps.iter().map(|r| r.reference()).collect();
    assert_eq!(refs, ["D-1", "P-1", "C-1", "X-1", "F-1", "O-1"]);
}

#[test]
fn signed_file_tolerates_one_trailing_newline_only() {
    let s = signer("k");
    let file = sign(&s, &file_with(vec![delegation("D-1")]));
    assert!(
        source_for(&s)
            .verify(format!("{file}\n").as_bytes(), NOW)
            .is_ok()
    );
    assert!(
        source_for(&s)
            .verify(format!("{file}\n\n").as_bytes(), NOW)
            .is_err()
    );
    assert!(
        source_for(&s)
            .verify(format!(" {file}").as_bytes(), NOW)
            .is_err()
    );
}

// ---- the signed file: attacks ---------------------------------------------------------------

#[test]
fn attack_bad_signature_refused() {
    let s = signer("k");
    let file = sign(&s, &file_with(vec![delegation("D-1")]));
    // Swap the payload for another one (more services) and keep the signature.
    let mut forged = delegation("D-1");
    forged["services"] = json!(["tributi", "anagrafe", "sanita"]);
    let payload = serde_json::to_vec(&file_with(vec![forged])).unwrap();
    let parts: Vec<&str> = file.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload),
        parts[2]
    );
    let err = source_for(&s).verify(tampered.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.code(), "represent.bad_signature");
}

#[test]
fn attack_wrong_key_same_kid_refused() {
    let portal = signer("portal-1");
    let attacker = signer("portal-1");
    let file = sign(&attacker, &file_with(vec![delegation("D-1")]));
    let err = source_for(&portal)
        .verify(file.as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(err.code(), "represent.bad_signature");
}

#[test]
fn attack_unknown_kid_refused() {
    let portal = signer("portal-1");
    let attacker = signer("attacker");
    let file = sign(&attacker, &file_with(vec![delegation("D-1")]));
    let err = source_for(&portal)
        .verify(file.as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(err.code(), "represent.unknown_key");
}

#[test]
fn attack_key_in_header_refused() {
    // The attacker signs with their own key and ships it in `jwk`: never used.
    let attacker = signer("portal-1");
    let mut extra = Map::new();
    extra.insert("jwk".into(), attacker.jwk().to_value());
    let Value::Object(claims) = file_with(vec![delegation("D-1")]) else {
        panic!()
    };
    let file = attacker
        .sign_with(SIGNED_FILE_TYP, &extra, &claims, &SystemRandom::new())
        .unwrap();
    let err = source_for(&signer("portal-1"))
        .verify(file.as_bytes(), NOW)
        .unwrap_err();
    assert_eq!(err.code(), "represent.malformed");
}

#[test]
fn attack_other_token_type_refused() {
    // A JWT signed by the same key for another purpose is not a representation file.
    let s = signer("k");
    let Value::Object(m) = file_with(vec![delegation("D-1")]) else {
        panic!()
    };
    let jwt = s.sign("JWT", &m, &SystemRandom::new()).unwrap();
    let err = source_for(&s).verify(jwt.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.code(), "represent.malformed");
}

#[test]
fn attack_unsigned_alg_none_refused() {
    let s = signer("k");
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k","typ":"varco-representations+jwt"}"#);
    let payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&file_with(vec![delegation("D-1")])).unwrap());
    let token = format!("{header}.{payload}.");
    let err = source_for(&s).verify(token.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.code(), "represent.malformed");
}

#[test]
fn attack_file_expired_refused() {
    // A stale file could still list representations revoked since.
    let s = signer("k");
    let mut f = file_with(vec![delegation("D-1")]);
    f["exp"] = json!(NOW);
    assert_eq!(code_of(&s, &f), "represent.file_expired");
    let mut f = file_with(vec![delegation("D-1")]);
    f["iat"] = json!(NOW + 3600);
    assert_eq!(code_of(&s, &f), "represent.file_not_yet_issued");
    let mut f = file_with(vec![delegation("D-1")]);
    f.as_object_mut().unwrap().remove("exp");
    assert_eq!(code_of(&s, &f), "represent.schema");
}

#[test]
fn attack_wrong_issuer_refused() {
    let s = signer("k");
    let mut f = file_with(vec![delegation("D-1")]);
    f["iss"] = json!("https://altro.example.it");
    assert_eq!(code_of(&s, &f), "represent.wrong_issuer");
}

#[test]
fn attack_unknown_type_refused() {
    let s = signer("k");
    for kind in ["procura", "Delegation", "", "parental "] {
        let mut r = delegation("D-1");
        r["type"] = json!(kind);
        let file = sign(&s, &file_with(vec![r]));
        let err = source_for(&s).verify(file.as_bytes(), NOW).unwrap_err();
        assert_eq!(
            err,
            represent::Error::Schema {
                at: "representations[0].type".into(),
                reason: "unknown type"
            },
            "{kind}"
        );
    }
}

#[test]
fn attack_unknown_member_refused_at_every_level() {
    let s = signer("k");
    let mut f = file_with(vec![delegation("D-1")]);
    f["act"] = json!({"sub": OTHER_PERSON});
    assert_eq!(code_of(&s, &f), "represent.schema");
    let mut r = delegation("D-1");
    r["scope"] = json!("*");
    assert_eq!(code_of(&s, &file_with(vec![r])), "represent.schema");
    let mut r = delegation("D-1");
    r["represented"]["person"]["loa"] = json!("high");
    assert_eq!(code_of(&s, &file_with(vec![r])), "represent.schema");
    let mut r = delegation("D-1");
    r["represented"] =
        json!({"person": {"fiscal_code": ELDER_CF}, "company": {"vat": "01234567897"}});
    assert_eq!(code_of(&s, &file_with(vec![r])), "represent.schema");
}

#[test]
fn attack_duplicate_member_refused() {
    // `{"type":"delegation","type":"parental"}` would mean different things to different
    // parsers: jose's reader refuses it before the signature is even checked.
    let s = signer("k");
    let payload = format!(
        r#"{{"iss":"{ISSUER}","iat":{},"exp":{},"iss":"{ISSUER}","representations":[]}}"#,
        NOW - 60,
        NOW + DAY
    );
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"k","typ":"varco-representations+jwt"}"#);
    let token = format!("{header}.{}.AAAA", URL_SAFE_NO_PAD.encode(payload));
    let err = source_for(&s).verify(token.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.code(), "represent.malformed");
}

#[test]
fn attack_oversized_file_refused_before_parsing() {
    let s = signer("k");
    let limits = FileLimits {
        max_bytes: 4096,
        ..FileLimits::default()
    };
    let records: Vec<Value> = (0..40).map(|i| delegation(&format!("D-{i}"))).collect();
    let file = sign(&s, &file_with(records));
    assert!(file.len() > 4096);
    let src = SignedFile::new(
        "portale",
        ISSUER,
        Jwks::from_keys(vec![s.jwk().clone()]).unwrap(),
        limits,
    );
    let err = src.verify(file.as_bytes(), NOW).unwrap_err();
    assert_eq!(err.code(), "represent.too_many");
    // Invalid bytes of that size are refused by size, not by content.
    let junk = vec![b'!'; 4097];
    assert_eq!(
        src.verify(&junk, NOW).unwrap_err().code(),
        "represent.too_many"
    );
}

#[test]
fn attack_too_many_records_or_services_refused() {
    let s = signer("k");
    let limits = FileLimits {
        max_records: 3,
        max_services: 2,
        ..FileLimits::default()
    };
    let src = SignedFile::new(
        "portale",
        ISSUER,
        Jwks::from_keys(vec![s.jwk().clone()]).unwrap(),
        limits,
    );
    let records: Vec<Value> = (0..4).map(|i| delegation(&format!("D-{i}"))).collect();
    let file = sign(&s, &file_with(records));
    assert_eq!(
        src.verify(file.as_bytes(), NOW).unwrap_err(),
        represent::Error::TooMany {
            what: "records",
            max: 3
        }
    );
    let mut r = delegation("D-1");
    r["services"] = json!(["a", "b", "c"]);
    let file = sign(&s, &file_with(vec![r]));
    assert_eq!(
        src.verify(file.as_bytes(), NOW).unwrap_err().code(),
        "represent.too_many"
    );
}

#[test]
fn attack_deep_json_refused() {
    let s = signer("k");
    let mut r = delegation("D-1");
    r["represented"]["person"]["given_name"] = json!([[["x"]]]);
    assert_eq!(code_of(&s, &file_with(vec![r])), "represent.malformed");
}

/// One change to a valid record.
type Edit = Box<dyn Fn(&mut Value)>;

#[test]
fn attack_malformed_records_refused() {
    let s = signer("k");
    let cases: Vec<(&str, Edit)> = vec![
        (
            "bad delegate check char",
            Box::new(|r| r["delegate"] = json!("TINIT-BNCGNN80A01F205X")),
        ),
        (
            "delegate without prefix",
            Box::new(|r| r["delegate"] = json!("BNCGNN80A01F205W")),
        ),
        (
            "bad represented fiscal code",
            Box::new(|r| r["represented"]["person"]["fiscal_code"] = json!("RSSLCU15A41H501B")),
        ),
        ("no services", Box::new(|r| r["services"] = json!([]))),
        (
            "wildcard-looking service with space",
            Box::new(|r| r["services"] = json!(["tributi *"])),
        ),
        (
            "repeated service",
            Box::new(|r| r["services"] = json!(["tributi", "tributi"])),
        ),
        (
            "validity reversed",
            Box::new(|r| r["not_after"] = r["not_before"].clone()),
        ),
        ("negative time", Box::new(|r| r["not_before"] = json!(-1))),
        ("float time", Box::new(|r| r["not_after"] = json!(1.9e9))),
        (
            "ref with newline",
            Box::new(|r| r["ref"] = json!("D-1\r\nX-Varco-Sub: x")),
        ),
        (
            "name with newline",
            Box::new(|r| r["represented"]["person"]["given_name"] = json!("Luigi\r\nX: y")),
        ),
        (
            "nonexistent birthdate",
            Box::new(|r| r["represented"]["person"]["birthdate"] = json!("2023-02-29")),
        ),
        (
            "company for a delegation",
            Box::new(|r| r["represented"] = json!({"company": {"vat": "01234567897"}})),
        ),
        (
            "person for a legal representative",
            Box::new(|r| r["type"] = json!("legal_representative")),
        ),
    ];
    for (name, edit) in cases {
        let mut r = delegation("D-1");
        edit(&mut r);
        assert_eq!(
            code_of(&s, &file_with(vec![r])),
            "represent.schema",
            "{name}"
        );
    }
}

#[test]
fn attack_company_identifiers_refused_when_ambiguous_or_invalid() {
    let s = signer("k");
    let company = |c: Value| {
        json!({
            "ref": "C-1", "type": "legal_representative", "delegate": DELEGATE,
            "represented": {"company": c}, "services": ["suap"],
            "not_before": NOW - DAY, "not_after": NOW + DAY,
        })
    };
    for c in [
        json!({"vat": "01234567897", "fiscal_number": "12345678903"}),
        json!({"name": "ACME"}),
        json!({"vat": "01234567890"}),
        json!({"vat": "VATIT-01234567897"}),
    ] {
        assert_eq!(
            code_of(&s, &file_with(vec![company(c.clone())])),
            "represent.schema",
            "{c}"
        );
    }
    assert!(
        source_for(&s)
            .verify(
                sign(
                    &s,
                    &file_with(vec![company(json!({"fiscal_number": "12345678903"}))])
                )
                .as_bytes(),
                NOW
            )
            .is_ok()
    );
}

#[test]
fn attack_parental_without_birthdate_refused() {
    let s = signer("k");
    let r = json!({
        "ref": "P-1", "type": "parental", "delegate": DELEGATE,
        "represented": {"person": {"fiscal_code": CHILD_CF}},
        "services": ["scuola"], "not_before": NOW - DAY, "not_after": NOW + DAY,
    });
    assert_eq!(code_of(&s, &file_with(vec![r])), "represent.schema");
}

#[test]
fn attack_duplicate_reference_refused() {
    let s = signer("k");
    let f = file_with(vec![
        delegation("D-1"),
        delegation("D-2"),
        delegation("D-1"),
    ]);
    let file = sign(&s, &f);
    assert_eq!(
        source_for(&s).verify(file.as_bytes(), NOW).unwrap_err(),
        represent::Error::DuplicateReference { index: 2 }
    );
}

// ---- the decision ---------------------------------------------------------------------------

fn refusal_of(reps: &Representations, reference: &str, service: &str) -> Refusal {
    represent::act(&delegate(), reference, service, NOW, reps).unwrap_err()
}

#[test]
fn decision_lists_usable_and_refused_for_the_delegate_only() {
    let reps = loaded();
    let choice = represent::decide(&delegate(), "tributi", NOW, &reps);
    let usable: Vec<&str> = choice.usable.iter().map(|r| r.reference()).collect();
    assert_eq!(usable, ["D-1"]);
    let mut refused: Vec<(&str, &str)> = choice
        .refused
        .iter()
        .map(|(r, why)| (r.reference(), why.code()))
        .collect();
    refused.sort_unstable();
    assert_eq!(
        refused,
        [
            ("C-1", "represent.out_of_scope"),
            ("F-1", "represent.not_yet_valid"),
            ("P-1", "represent.out_of_scope"),
            ("X-1", "represent.expired"),
        ]
    );
}

#[test]
fn refused_expired_delegation() {
    assert_eq!(refusal_of(&loaded(), "X-1", "tributi"), Refusal::Expired);
}

#[test]
fn refused_expiry_is_exclusive_and_start_inclusive() {
    let reps = loaded();
    let d = reps.by_reference("D-1").unwrap();
    assert_eq!(
        represent::check(d, &delegate(), "tributi", d.not_after()),
        Err(Refusal::Expired)
    );
    assert_eq!(
        represent::check(d, &delegate(), "tributi", d.not_after() - 1),
        Ok(())
    );
    assert_eq!(
        represent::check(d, &delegate(), "tributi", d.not_before()),
        Ok(())
    );
    assert_eq!(
        represent::check(d, &delegate(), "tributi", d.not_before() - 1),
        Err(Refusal::NotYetValid)
    );
}

#[test]
fn refused_not_yet_valid() {
    assert_eq!(
        refusal_of(&loaded(), "F-1", "tributi"),
        Refusal::NotYetValid
    );
}

#[test]
fn refused_service_out_of_scope() {
    assert_eq!(refusal_of(&loaded(), "D-1", "sanita"), Refusal::OutOfScope);
    // No prefix or case games: `tributi-admin` and `TRIBUTI` are other services.
    assert_eq!(
        refusal_of(&loaded(), "D-1", "tributi-admin"),
        Refusal::OutOfScope
    );
    assert_eq!(refusal_of(&loaded(), "D-1", "TRIBUTI"), Refusal::OutOfScope);
}

#[test]
fn refused_wrong_delegate() {
    // O-1 names someone else as delegate: a session cannot pick it by reference.
    assert_eq!(
        refusal_of(&loaded(), "O-1", "tributi"),
        Refusal::WrongDelegate
    );
}

#[test]
fn refused_revoked_between_two_requests() {
    // The session chose D-1; the portal then publishes a file without it.
    let s = signer("k");
    let before = source_for(&s)
        .verify(
            sign(&s, &file_with(vec![delegation("D-1")])).as_bytes(),
            NOW,
        )
        .unwrap();
    assert!(represent::act(&delegate(), "D-1", "tributi", NOW, &before).is_ok());
    let after = source_for(&s)
        .verify(
            sign(&s, &file_with(vec![delegation("D-2")])).as_bytes(),
            NOW + 60,
        )
        .unwrap();
    assert_eq!(
        represent::act(&delegate(), "D-1", "tributi", NOW + 60, &after).unwrap_err(),
        Refusal::NotFound
    );
}

#[test]
fn refused_parental_once_the_child_is_of_age() {
    // Lucia is born on 2015-01-01: 18 on 2033-01-01 in Rome, i.e. 2032-12-31T23:00Z.
    let s = signer("k");
    let r = json!({
        "ref": "P-1", "type": "parental", "delegate": DELEGATE,
        "represented": {"person": {"fiscal_code": CHILD_CF, "birthdate": "2015-01-01"}},
        "services": ["scuola"], "not_before": NOW - DAY, "not_after": 2_000_000_000,
    });
    let mut f = file_with(vec![r]);
    f["exp"] = json!(2_000_000_000u64);
    let reps = source_for(&s).verify(sign(&s, &f).as_bytes(), NOW).unwrap();
    let p = reps.by_reference("P-1").unwrap();
    let eighteen = 1_988_146_800; // 2033-01-01T00:00+01:00
    assert_eq!(
        represent::check(p, &delegate(), "scuola", eighteen - 1),
        Ok(())
    );
    assert_eq!(
        represent::check(p, &delegate(), "scuola", eighteen),
        Err(Refusal::RepresentedOfAge)
    );
}

#[test]
fn refused_self_representation() {
    let s = signer("k");
    let mut r = delegation("S-1");
    r["represented"]["person"]["fiscal_code"] = json!("BNCGNN80A01F205W");
    let reps = source_for(&s)
        .verify(sign(&s, &file_with(vec![r])).as_bytes(), NOW)
        .unwrap();
    assert_eq!(
        refusal_of(&reps, "S-1", "tributi"),
        Refusal::SelfRepresentation
    );
}

// ---- the acting identity: token and headers -------------------------------------------------

fn claims_of(token: &str, keys: &KeySet) -> Value {
    let parts: Vec<&str> = token.split('.').collect();
    let jwk = &keys.jwks(NOW)["keys"][0];
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    let point = [&[4u8][..], &x, &y].concat();
    let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
        .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
}

fn key_set() -> KeySet {
    let rng = SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let mut ks = KeySet::new();
    ks.insert(
        SigningKey::es256_from_pkcs8("k1", pkcs8.as_ref(), &rng).unwrap(),
        KeyState::Active,
    )
    .unwrap();
    ks
}

const PARAMS: TokenParams<'static> = TokenParams {
    issuer: "https://varco.example.it",
    audience: "tributi",
    ttl: 300,
};

#[test]
fn acting_token_has_represented_sub_and_delegate_act() {
    let reps = loaded();
    let acting = represent::act(&delegate(), "D-1", "tributi", NOW, &reps).unwrap();
    let ks = key_set();
    let token = ks
        .sign_acting(&acting, &PARAMS, NOW, &SystemRandom::new())
        .unwrap();
    let c = claims_of(&token, &ks);
    assert_eq!(c["sub"], format!("TINIT-{ELDER_CF}"));
    assert_eq!(c["given_name"], "Luigi");
    assert_eq!(c["profile"], "citizen");
    // The session's authentication is the delegate's login.
    assert_eq!(c["auth"]["loa"], "substantial");
    assert_eq!(
        c["act"],
        json!({"sub": DELEGATE, "given_name": "Giovanni", "family_name": "Bianchi",
               "method": "spid", "idp": "https://idp.example.it", "loa": "substantial"})
    );
    assert_eq!(
        c["representation"],
        json!({"type": "delegation", "services": ["anagrafe", "tributi"],
               "not_before": NOW - 30 * DAY, "not_after": NOW + 30 * DAY,
               "source": "portale", "ref": "D-1"})
    );
    assert_eq!(acting.actor().loa(), Loa::Substantial);
}

#[test]
fn acting_for_a_company_is_a_business_principal() {
    let acting = represent::act(&delegate(), "C-1", "suap", NOW, &loaded()).unwrap();
    let p = acting.principal();
    assert_eq!(p.sub, "VATIT-01234567897");
    assert_eq!(p.profile, identity::Profile::Business);
    let lp = p.legal_person.as_ref().unwrap();
    assert_eq!(lp.company_name.as_deref(), Some("ACME S.r.l."));
    assert_eq!(lp.iva_code.as_deref(), Some("VATIT-01234567897"));
}

#[test]
fn acting_headers_are_the_documented_set() {
    let acting = represent::act(&delegate(), "P-1", "scuola", NOW, &loaded()).unwrap();
    let h = acting.headers();
    let expected = [
        ("X-Varco-Act-Sub", DELEGATE.to_owned()),
        ("X-Varco-Act-Method", "spid".to_owned()),
        ("X-Varco-Act-Loa", "substantial".to_owned()),
        ("X-Varco-Act-Given-Name", "Giovanni".to_owned()),
        ("X-Varco-Act-Family-Name", "Bianchi".to_owned()),
        ("X-Varco-Representation-Type", "parental".to_owned()),
        ("X-Varco-Representation-Source", "portale".to_owned()),
        ("X-Varco-Representation-Ref", "P-1".to_owned()),
        (
            "X-Varco-Representation-Not-After",
            (NOW + 365 * DAY).to_string(),
        ),
    ];
    assert_eq!(h, expected);
    assert_eq!(acting.principal().birthdate.as_deref(), Some("2015-01-01"));
    assert_eq!(acting.claim("no_such_claim"), None);
}

#[test]
fn attack_forged_act_in_a_principal_never_reaches_the_token() {
    // A session or client JSON with `act` and `representation` members deserializes into a
    // plain Principal (the only deserializable identity); they are dropped, and the plain
    // token carries no `act`. Acting itself cannot be deserialized (see the compile_fail
    // doctest on `identity::represent::Acting`).
    let mut forged = serde_json::to_value(delegate()).unwrap();
    forged["sub"] = json!(format!("TINIT-{ELDER_CF}"));
    forged["act"] = json!({"sub": DELEGATE, "method": "spid", "loa": "high"});
    forged["representation"] = json!({"type": "delegation", "services": ["tributi"]});
    let p: Principal = serde_json::from_value(forged).unwrap();
    let ks = key_set();
    let token = ks.sign(&p, &PARAMS, NOW, &SystemRandom::new()).unwrap();
    let c = claims_of(&token, &ks);
    assert!(c.get("act").is_none());
    assert!(c.get("representation").is_none());
}

#[test]
fn ed25519_key_sets_sign_acting_tokens_too() {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let mut ks = KeySet::new();
    ks.insert(
        SigningKey::ed25519_from_pkcs8("ed", pkcs8.as_ref()).unwrap(),
        KeyState::Active,
    )
    .unwrap();
    let acting = represent::act(&delegate(), "D-1", "tributi", NOW, &loaded()).unwrap();
    let token = ks
        .sign_acting(&acting, &PARAMS, NOW, &SystemRandom::new())
        .unwrap();
    assert_eq!(token.split('.').count(), 3);
}

// ---- cost: the index answers per delegate without scanning --------------------------------

#[test]
fn lookups_touch_only_the_delegates_records() {
    // 2 000 records for 1 000 other delegates plus 3 for ours: `decide` sees exactly 3.
    let s = signer("k");
    let others = ["RSSMRA85T10A562S", "VRDLGU60M01L219V"];
    let mut records: Vec<Value> = (0..2000)
        .map(|i| {
            let mut r = delegation(&format!("O-{i}"));
            r["delegate"] = json!(format!("TINIT-{}", others[i % 2]));
            r["represented"]["person"]["fiscal_code"] = json!("BNCGNN80A01F205W");
            r
        })
        .collect();
    records.extend((0..3).map(|i| delegation(&format!("D-{i}"))));
    let reps = source_for(&s)
        .verify(sign(&s, &file_with(records)).as_bytes(), NOW)
        .unwrap();
    let choice = represent::decide(&delegate(), "tributi", NOW, &reps);
    assert_eq!(choice.usable.len() + choice.refused.len(), 3);
}

// ---- age limits apply to the party the service sees ----------------------------------------

#[test]
fn minor_below_the_services_age_refused_when_a_parent_acts() {
    // The route's age limits are checked against `sub`: in an acting session, the child.
    // A parent acting for an 11-year-old on a service from 14 up is refused; on a service
    // for minors the child is in range; a company has no age, so a limited route refuses it.
    let reps = loaded();
    let today = identity::CalendarDate::italy_at(NOW);
    let child = represent::act(&delegate(), "P-1", "scuola", NOW, &reps).unwrap();
    let from_14 = identity::AgeLimits {
        min_age: Some(14),
        max_age: None,
    };
    assert_eq!(
        from_14.check(child.principal().birthdate.as_deref(), today),
        Err(identity::AgeRefusal::BelowMinimum { min_age: 14 })
    );
    let minors = identity::AgeLimits {
        min_age: None,
        max_age: Some(17),
    };
    assert_eq!(
        minors.check(child.principal().birthdate.as_deref(), today),
        Ok(())
    );
    let company = represent::act(&delegate(), "C-1", "suap", NOW, &reps).unwrap();
    assert_eq!(
        from_14.check(company.principal().birthdate.as_deref(), today),
        Err(identity::AgeRefusal::BirthdateUnknown)
    );
}
