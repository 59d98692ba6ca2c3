//! The unsigned answer sources (HTTP JSON body, PostgreSQL rows) and the SPID legal-person
//! source: what they accept, and one named test per way they refuse.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use identity::represent::answer::{Answer, AnswerInput, AnswerLimits};
use identity::represent::spid_legal::SpidLegalPerson;
use identity::represent::{self, Kind, Source};
use identity::{Mapping, Method, Principal, SPID_L2, normalize};
use serde_json::{Value, json};

const NOW: u64 = 1_780_000_000;
const DAY: u64 = 86_400;
const DELEGATE: &str = "TINIT-BNCGNN80A01F205W";
const ELDER_CF: &str = "VRDLGU60M01L219V";

fn rec(reference: &str, delegate: &str) -> Value {
    json!({
        "ref": reference, "type": "delegation", "delegate": delegate,
        "represented": {"person": {"fiscal_code": ELDER_CF, "given_name": "Luigi"}},
        "services": ["tributi"], "not_before": NOW - DAY, "not_after": NOW + DAY,
    })
}

fn body(records: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "representations": records })).unwrap()
}

fn http() -> Answer {
    Answer::http("api", AnswerLimits::default())
}

fn verify_body(bytes: &[u8]) -> Result<represent::Representations, represent::Error> {
    http().verify(
        AnswerInput::Body {
            delegate: DELEGATE,
            bytes,
        },
        NOW,
    )
}

fn login(attrs: &[(&str, &str)]) -> Principal {
    let mut all = vec![("fiscalNumber".to_owned(), vec![DELEGATE.to_owned()])];
    all.extend(
        attrs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), vec![(*v).to_owned()])),
    );
    let source = identity::Source {
        method: Method::Spid,
        idp: "https://idp.example.it",
        level: SPID_L2,
        auth_time: NOW - 5,
        session_id: "sid-1",
    };
    normalize(all, &source, &Mapping::default()).unwrap()
}

#[test]
fn http_answer_reads_the_shared_record_schema() {
    let reps = verify_body(&body(&[rec("A-1", DELEGATE), rec("A-2", DELEGATE)])).unwrap();
    assert_eq!(reps.len(), 2);
    assert_eq!(reps.source(), "api");
    let d = login(&[]);
    let acting = represent::act(&d, "A-1", "tributi", NOW, &reps).unwrap();
    assert_eq!(acting.principal().sub, format!("TINIT-{ELDER_CF}"));
    assert_eq!(acting.actor().sub(), DELEGATE);
}

#[test]
fn attack_answer_about_another_delegate_refused_whole() {
    let e = verify_body(&body(&[
        rec("A-1", DELEGATE),
        rec("A-2", "TINIT-RSSMRA85T10A562S"),
    ]))
    .unwrap_err();
    assert_eq!(e.code(), "represent.schema");
    assert!(e.to_string().contains("representations[1].delegate"), "{e}");
}

#[test]
fn attack_answer_duplicate_member_refused() {
    let text = format!(
        "{{\"representations\":[],\"representations\":[{}]}}",
        rec("A-1", DELEGATE)
    );
    assert_eq!(
        verify_body(text.as_bytes()).unwrap_err().code(),
        "represent.schema"
    );
}

#[test]
fn attack_answer_unknown_member_or_shape_refused() {
    for bad in [
        json!({"representations": [], "extra": 1}),
        json!({"representations": {}}),
        json!([]),
        json!({"representations": [{"ref": "A", "type": "delegation"}]}),
    ] {
        let bytes = serde_json::to_vec(&bad).unwrap();
        assert_eq!(
            verify_body(&bytes).unwrap_err().code(),
            "represent.schema",
            "{bad}"
        );
    }
}

#[test]
fn attack_answer_oversized_or_too_many_refused_before_reading() {
    let limits = AnswerLimits {
        max_bytes: 64,
        max_records: 1,
        max_services: 64,
    };
    let small = Answer::http("api", limits);
    let big = vec![b' '; 65];
    let e = small
        .verify(
            AnswerInput::Body {
                delegate: DELEGATE,
                bytes: &big,
            },
            NOW,
        )
        .unwrap_err();
    assert_eq!(e.code(), "represent.too_many");
    let rows = vec!["{}".to_owned(), "{}".to_owned()];
    let pg = Answer::postgres("pg", limits);
    let e = pg
        .verify(
            AnswerInput::Rows {
                delegate: DELEGATE,
                rows: &rows,
            },
            NOW,
        )
        .unwrap_err();
    assert_eq!(e.code(), "represent.too_many");
}

#[test]
fn postgres_rows_are_records() {
    let rows = vec![
        rec("R-1", DELEGATE).to_string(),
        rec("R-2", DELEGATE).to_string(),
    ];
    let reps = Answer::postgres("pg", AnswerLimits::default())
        .verify(
            AnswerInput::Rows {
                delegate: DELEGATE,
                rows: &rows,
            },
            NOW,
        )
        .unwrap();
    assert_eq!(reps.len(), 2);
    assert!(reps.by_reference("R-2").is_some());
    // Two rows with one reference: the table's key was not respected.
    let twice = vec![rows[0].clone(), rows[0].clone()];
    let e = Answer::postgres("pg", AnswerLimits::default())
        .verify(
            AnswerInput::Rows {
                delegate: DELEGATE,
                rows: &twice,
            },
            NOW,
        )
        .unwrap_err();
    assert_eq!(e.code(), "represent.duplicate_reference");
}

fn spid_source() -> SpidLegalPerson {
    SpidLegalPerson::new("spid-lp", ["suap".to_owned()].into(), 3600)
}

#[test]
fn spid_legal_person_login_represents_the_company() {
    let d = login(&[
        ("companyName", "ACME S.r.l."),
        ("ivaCode", "VATIT-01234567897"),
        ("spid:Purpose", "LP"),
    ]);
    let reps = spid_source().verify(&d, NOW).unwrap();
    assert_eq!(reps.len(), 1);
    let r = reps.iter().next().unwrap();
    assert_eq!(r.kind(), Kind::LegalRepresentative);
    assert_eq!(r.party().sub(), "VATIT-01234567897");
    assert_eq!(r.not_before(), NOW - 5);
    assert_eq!(r.not_after(), NOW - 5 + 3600);
    let acting = represent::act(&d, r.reference(), "suap", NOW, &reps).unwrap();
    assert_eq!(acting.principal().sub, "VATIT-01234567897");
    assert_eq!(acting.principal().profile, identity::Profile::Business);
    assert_eq!(
        represent::act(&d, r.reference(), "tributi", NOW, &reps).unwrap_err(),
        represent::Refusal::OutOfScope
    );
}

#[test]
fn spid_professional_or_plain_login_represents_nobody() {
    for attrs in [
        &[
            ("companyName", "ACME"),
            ("ivaCode", "VATIT-01234567897"),
            ("spid:Purpose", "PF"),
        ][..],
        &[][..],
    ] {
        assert!(spid_source().verify(&login(attrs), NOW).unwrap().is_empty());
    }
}

#[test]
fn attack_spid_legal_person_bad_company_number_refused() {
    let d = login(&[("ivaCode", "VATIT-01234567890"), ("spid:Purpose", "LP")]);
    assert_eq!(
        spid_source().verify(&d, NOW).unwrap_err().code(),
        "represent.schema"
    );
}
