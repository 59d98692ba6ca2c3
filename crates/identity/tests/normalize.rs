//! Normalization of attributes into a `Principal`: `sub` forms, fiscal-code validation
//! (checksum, omocodia), attribute mapping (rename, require, drop), LoA mapping, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use identity::{
    EIDAS_HIGH, EIDAS_LOW, EIDAS_SUBSTANTIAL, Error, Loa, Mapping, Method, Profile, SPID_L1,
    SPID_L2, SPID_L3, Source, normalize, normalize_fiscal_code,
};

const IDP: &str = "https://idp.example.it";

fn src(method: Method, level: &str) -> Source<'_> {
    Source {
        method,
        idp: IDP,
        level,
        auth_time: 1_700_000_000,
        session_id: "s-1",
    }
}

fn attrs(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect()
}

#[test]
fn fiscal_codes_checksum_and_omocodia() {
    // Vectors computed with an independent implementation of the check-character table.
    for ok in [
        "RSSMRA85T10A562S",
        "RSSMRA85T10A56NH",
        "RSSMRA85T10A5RNS",
        "BNCLRA80A41H501D",
        "RSSMRAURTMLARSNL",
    ] {
        assert_eq!(normalize_fiscal_code(ok).unwrap(), ok);
    }
    assert_eq!(
        normalize_fiscal_code("TINIT-rssmra85t10a562s").unwrap(),
        "RSSMRA85T10A562S"
    );
    for bad in [
        "RSSMRA85T10A562T", // wrong check character
        "RSSMRA85T10A562",  // too short
        "RSSMRA85Z10A562S", // unknown month letter
        "RSSMRA85T00A562S", // day 0
        "RSSMRA85T10A56WS", // W is not an omocodia letter
        "1SSMRA85T10A562S", // digit in a letter position
        "TINIT-TINIT-RSSMRA85T10A562S",
        "",
    ] {
        assert!(normalize_fiscal_code(bad).is_err(), "{bad} accepted");
    }
}

#[test]
fn spid_full_principal_serializes_to_schema() {
    let a = attrs(&[
        ("fiscalNumber", &["TINIT-RSSMRA85T10A562S"]),
        ("name", &["Mario"]),
        ("familyName", &["Rossi"]),
        ("dateOfBirth", &["1985-12-10"]),
        ("email", &["mario@example.it"]),
        ("mobilePhone", &["+393331234567"]),
        ("address", &["Via Roma 1 00100 Roma RM"]),
        ("companyName", &["ACME srl"]),
        ("ivaCode", &["VATIT-12345678901"]),
        ("spid:Purpose", &["PG"]),
        ("spidCode", &["ABCD123"]),
    ]);
    let p = normalize(a, &src(Method::Spid, SPID_L2), &Mapping::default()).unwrap();
    let v = serde_json::to_value(&p).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "sub": "TINIT-RSSMRA85T10A562S",
            "given_name": "Mario",
            "family_name": "Rossi",
            "birthdate": "1985-12-10",
            "email": "mario@example.it",
            "phone_number": "+393331234567",
            "address": {"formatted": "Via Roma 1 00100 Roma RM"},
            "legal_person": {"company_name": "ACME srl", "iva_code": "VATIT-12345678901", "purpose": "PG"},
            "profile": "business",
            "auth": {
                "method": "spid", "idp": IDP, "level": SPID_L2, "loa": "substantial",
                "auth_time": 1_700_000_000, "sid": "s-1"
            }
        })
    );
    let back: identity::Principal = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}

#[test]
fn cie_without_prefix_and_minimal() {
    let a = attrs(&[("fiscalNumber", &["rssmra85t10a562s"])]);
    let p = normalize(a, &src(Method::Cie, SPID_L3), &Mapping::default()).unwrap();
    assert_eq!(p.sub, "TINIT-RSSMRA85T10A562S");
    assert_eq!(p.auth.loa, Loa::High);
    assert!(p.legal_person.is_none() && p.given_name.is_none());
    let json = serde_json::to_string(&p).unwrap();
    assert!(!json.contains("given_name") && !json.contains("legal_person"));
}

#[test]
fn eidas_default_mapping() {
    let a = attrs(&[
        (
            "http://eidas.europa.eu/attributes/naturalperson/PersonIdentifier",
            &["ES/IT/12345678Z"],
        ),
        ("CurrentGivenName", &["Juan"]),
        ("CurrentFamilyName", &["García"]),
        ("DateOfBirth", &["1970-01-31"]),
    ]);
    let p = normalize(
        a,
        &src(Method::Eidas, EIDAS_SUBSTANTIAL),
        &Mapping::default_for(Method::Eidas),
    )
    .unwrap();
    assert_eq!(p.sub, "EIDAS:ES/IT/12345678Z");
    assert_eq!(p.given_name.as_deref(), Some("Juan"));
    assert_eq!(p.family_name.as_deref(), Some("García"));
    assert_eq!(p.auth.loa, Loa::Substantial);

    let bad = attrs(&[("PersonIdentifier", &["ES/IT/1 2"])]);
    let e = normalize(
        bad,
        &src(Method::Eidas, EIDAS_HIGH),
        &Mapping::default_for(Method::Eidas),
    );
    assert_eq!(e.unwrap_err().code(), "identity.invalid_person_identifier");
}

#[test]
fn ficep_spid_code_and_spid_level() {
    // FICEP answers as a SPID IdP: the eIDAS PersonIdentifier arrives as `spidCode` and the
    // level as a SPID class ref.
    let a = attrs(&[
        ("spidCode", &["DE/IT/0f3a9c5e7b2d4816"]),
        ("name", &["Anna"]),
        ("familyName", &["Schmidt"]),
    ]);
    let p = normalize(
        a,
        &src(Method::Eidas, SPID_L2),
        &Mapping::default_for(Method::Eidas),
    )
    .unwrap();
    assert_eq!(p.sub, "EIDAS:DE/IT/0f3a9c5e7b2d4816");
    assert_eq!(p.auth.loa, Loa::Substantial);
    assert_eq!(p.profile, Profile::Citizen);
    // Without the eIDAS mapping, the subject attribute is missing and named.
    let a = attrs(&[("spidCode", &["DE/IT/0f3a9c5e7b2d4816"])]);
    let e = normalize(a, &src(Method::Eidas, SPID_L2), &Mapping::default()).unwrap_err();
    assert_eq!(e.code(), "identity.missing_attribute");
    assert!(e.to_string().contains("PersonIdentifier"), "{e}");
}

#[test]
fn profile_from_purpose_and_legal_attributes() {
    type Attrs<'a> = &'a [(&'a str, &'a [&'a str])];
    let cases: [(Attrs<'_>, Profile); 7] = [
        (&[], Profile::Citizen),
        (&[("spid:Purpose", &["P"])], Profile::Professional),
        (&[("spid:Purpose", &["PX"])], Profile::Professional),
        (&[("spid:Purpose", &["PF"])], Profile::Professional),
        (&[("spid:Purpose", &["LP"])], Profile::Business),
        (&[("spid:Purpose", &["PG"])], Profile::Business),
        (&[("companyName", &["ACME srl"])], Profile::Business),
    ];
    for (extra, expected) in cases {
        let mut a = attrs(&[("fiscalNumber", &["TINIT-RSSMRA85T10A562S"])]);
        a.extend(attrs(extra));
        let p = normalize(a, &src(Method::Spid, SPID_L2), &Mapping::default()).unwrap();
        assert_eq!(p.profile, expected, "{extra:?}");
    }
    for p in [
        Profile::Citizen,
        Profile::Professional,
        Profile::Business,
        Profile::Intermediary,
    ] {
        assert_eq!(Profile::parse(p.as_str()), Some(p));
    }
    assert_eq!(Profile::parse("admin"), None);
}

#[test]
fn mapping_rename_require_drop() {
    let mut m = Mapping::default();
    m.rename
        .insert("urn:oid:2.5.4.5".into(), "fiscalNumber".into());
    m.rename.insert("mail".into(), "email".into());
    m.require.push("email".into());
    m.drop.push("mobilePhone".into());
    let a = attrs(&[
        ("urn:oid:2.5.4.5", &["RSSMRA85T10A562S"]),
        ("mail", &["a@b.it"]),
        ("mobilePhone", &["+39333"]),
    ]);
    let p = normalize(a, &src(Method::Cns, "cns"), &m).unwrap();
    assert_eq!(p.email.as_deref(), Some("a@b.it"));
    assert!(p.phone_number.is_none());
    assert_eq!(p.auth.method, Method::Cns);

    // Required but missing: the error names the attribute and the IdP.
    let a = attrs(&[
        ("urn:oid:2.5.4.5", &["RSSMRA85T10A562S"]),
        ("mail", &["  "]),
    ]);
    let e = normalize(a, &src(Method::Cns, "cns"), &m).unwrap_err();
    assert_eq!(
        e,
        Error::MissingAttribute {
            attribute: "email".into(),
            idp: IDP.into()
        }
    );
    assert_eq!(e.code(), "identity.missing_attribute");
    let text = e.to_string();
    assert!(text.contains("email") && text.contains(IDP));

    // Dropping the subject attribute makes it missing.
    let m = Mapping {
        drop: vec!["fiscalNumber".into()],
        ..Mapping::default()
    };
    let a = attrs(&[("fiscalNumber", &["RSSMRA85T10A562S"])]);
    let e = normalize(a, &src(Method::Spid, SPID_L1), &m).unwrap_err();
    assert_eq!(
        e,
        Error::MissingAttribute {
            attribute: "fiscalNumber".into(),
            idp: IDP.into()
        }
    );
}

#[test]
fn config_mapping_deserializes_and_refuses_unknown_keys() {
    let m: Mapping = serde_json::from_str(
        r#"{"rename":{"mail":"email"},"require":["email"],"drop":["address"]}"#,
    )
    .unwrap();
    assert_eq!(m.rename.get("mail").map(String::as_str), Some("email"));
    assert!(serde_json::from_str::<Mapping>(r#"{"renme":{}}"#).is_err());
}

#[test]
fn value_errors() {
    let two = attrs(&[
        ("fiscalNumber", &["RSSMRA85T10A562S"]),
        ("name", &["A", "B"]),
    ]);
    let e = normalize(two, &src(Method::Spid, SPID_L2), &Mapping::default()).unwrap_err();
    assert_eq!(e.code(), "identity.multiple_values");

    // The same value twice (or split across two attribute entries) is not ambiguous.
    let dup = attrs(&[
        ("fiscalNumber", &["RSSMRA85T10A562S"]),
        ("fiscalNumber", &["TINIT-RSSMRA85T10A562S"]),
    ]);
    // Distinct spellings of the same code are distinct values: refused rather than guessed.
    assert!(normalize(dup, &src(Method::Spid, SPID_L2), &Mapping::default()).is_err());
    let same = attrs(&[
        ("name", &["A", " A "]),
        ("fiscalNumber", &["RSSMRA85T10A562S"]),
    ]);
    assert!(normalize(same, &src(Method::Spid, SPID_L2), &Mapping::default()).is_ok());

    let bad_cf = attrs(&[("fiscalNumber", &["TINIT-RSSMRA85T10A562X"])]);
    let e = normalize(bad_cf, &src(Method::Spid, SPID_L2), &Mapping::default()).unwrap_err();
    assert_eq!(e.code(), "identity.invalid_fiscal_code");
    assert!(!e.to_string().contains("RSSMRA"), "value echoed in error");

    let bad_date = attrs(&[
        ("fiscalNumber", &["RSSMRA85T10A562S"]),
        ("dateOfBirth", &["10/12/1985"]),
    ]);
    let e = normalize(bad_date, &src(Method::Spid, SPID_L2), &Mapping::default()).unwrap_err();
    assert_eq!(e.code(), "identity.invalid_attribute");
}

#[test]
fn loa_scale_and_table() {
    assert!(Loa::Low < Loa::Substantial && Loa::Substantial < Loa::High);
    let table = [
        (Method::Spid, SPID_L1, Loa::Low),
        (Method::Spid, SPID_L2, Loa::Substantial),
        (Method::Spid, SPID_L3, Loa::High),
        (Method::Cie, SPID_L1, Loa::Low),
        (Method::Cie, SPID_L2, Loa::Substantial),
        (Method::Cie, SPID_L3, Loa::High),
        (Method::Eidas, EIDAS_LOW, Loa::Low),
        (Method::Eidas, EIDAS_SUBSTANTIAL, Loa::Substantial),
        (Method::Eidas, EIDAS_HIGH, Loa::High),
        // FICEP translates eIDAS levels into SPID class refs for Italian SPs.
        (Method::Eidas, SPID_L1, Loa::Low),
        (Method::Eidas, SPID_L2, Loa::Substantial),
        (Method::Eidas, SPID_L3, Loa::High),
        (Method::Cns, "anything", Loa::Substantial),
        (Method::Legacy, "", Loa::Low),
        (Method::Wallet, "pid", Loa::High),
    ];
    for (m, level, loa) in table {
        assert_eq!(Loa::from_source(m, level).unwrap(), loa, "{m:?} {level}");
    }
    for (m, level) in [
        (Method::Spid, EIDAS_HIGH),
        (Method::Cie, EIDAS_SUBSTANTIAL),
        (Method::Eidas, "https://www.spid.gov.it/SpidL4"),
        (Method::Spid, "https://www.spid.gov.it/SpidL4"),
        (Method::Spid, "https://www.spid.gov.it/spidl2"),
    ] {
        let e = Loa::from_source(m, level).unwrap_err();
        assert_eq!(e.code(), "identity.unknown_level");
    }
    assert_eq!(serde_json::to_string(&Loa::High).unwrap(), "\"high\"");
}

#[test]
fn route_policy_decisions() {
    use identity::{Decision, Policy};
    let spid_l2 = normalize(
        attrs(&[("fiscalNumber", &["TINIT-RSSMRA85T10A562S"])]),
        &src(Method::Spid, SPID_L2),
        &Mapping::default(),
    )
    .unwrap();
    assert_eq!(Policy::at_least(Loa::Low).decide(&spid_l2), Decision::Allow);
    assert_eq!(
        Policy::at_least(Loa::Substantial).decide(&spid_l2),
        Decision::Allow
    );
    assert_eq!(
        Policy::at_least(Loa::High).decide(&spid_l2),
        Decision::StepUp(Loa::High)
    );
    let cie_only = Policy {
        min_loa: Loa::High,
        methods: vec![Method::Cie],
        profiles: vec![],
    };
    // The method is wrong: stepping up with SPID would not help, so no step-up is offered.
    assert_eq!(cie_only.decide(&spid_l2), Decision::MethodNotAllowed);
    let business_only = Policy {
        min_loa: Loa::Low,
        methods: vec![],
        profiles: vec![Profile::Business, Profile::Intermediary],
    };
    assert_eq!(business_only.decide(&spid_l2), Decision::ProfileNotAllowed);
    assert_eq!(Decision::StepUp(Loa::High).code(), "identity.step_up");
}

#[test]
fn wallet_pid_subject_from_tax_code_else_eidas_form() {
    let m = Mapping::default();
    // Italian PID: the tax code (TINIT- prefix as the PID carries it) makes `sub`.
    let a = attrs(&[
        ("fiscalNumber", &["TINIT-RSSMRA85T10A562S"]),
        ("name", &["Mario"]),
        ("familyName", &["Rossi"]),
        ("dateOfBirth", &["1985-12-10"]),
    ]);
    let p = normalize(a, &src(Method::Wallet, "pid"), &m).unwrap();
    assert_eq!(p.sub, "TINIT-RSSMRA85T10A562S");
    assert_eq!(p.auth.loa, Loa::High);
    assert_eq!(p.auth.method.as_str(), "wallet");
    // Another Member State's PID: the personal administrative number, in the eIDAS form.
    let a = attrs(&[
        ("PersonIdentifier", &["DE/IT/1234567890"]),
        ("name", &["Anna"]),
    ]);
    let p = normalize(a, &src(Method::Wallet, "pid"), &m).unwrap();
    assert_eq!(p.sub, "EIDAS:DE/IT/1234567890");
    // Neither: refused, naming the attribute.
    let e = normalize(
        attrs(&[("name", &["Anna"])]),
        &src(Method::Wallet, "pid"),
        &m,
    )
    .unwrap_err();
    assert!(matches!(e, Error::MissingAttribute { .. }), "{e:?}");
    // A broken tax code is not silently read as a foreign identifier.
    let a = attrs(&[("fiscalNumber", &["TINIT-RSSMRA85T10A562X"])]);
    let e = normalize(a, &src(Method::Wallet, "pid"), &m).unwrap_err();
    assert!(matches!(e, Error::InvalidFiscalCode { .. }), "{e:?}");
}
