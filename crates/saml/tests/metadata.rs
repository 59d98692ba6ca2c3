//! `saml::sp_metadata` without external tools: the structure each profile must have (parsed
//! back with `saml-xml`), the enveloped signature (verified with `xmldsig` and the SP
//! certificate), and every configuration error. spid-sp-test itself runs in
//! `spid_sp_test_offline.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use saml::{
    Address, AssertionConsumerService, AttributeConsumingService, BillingContact,
    CIE_EXTENSIONS_NS, CieContact, Contact, Localized, MD_NS, MetadataError, MetadataProfile,
    Organization, SPID_EXTENSIONS_NS, SPID_INVOICING_NS, Sector, SingleLogoutService, SloBinding,
    SpMetadata, VatId, sp_metadata,
};
use saml_xml::{Document, Element, Limits};
use xmldsig::{Policy, SigningKey, TrustedKey};

const SP_KEY: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.key.pem");
const SP_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/sp-rsa2048.crt.pem");
const ATTACKER_CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/attacker-rsa2048.crt.pem");
const ID: &str = "_md1";

fn key() -> SigningKey {
    SigningKey::from_pem(SP_KEY, SP_CERT).unwrap()
}

fn public_sp() -> SpMetadata {
    SpMetadata {
        entity_id: "https://sp.varco.example.org".into(),
        assertion_consumer_services: vec![
            AssertionConsumerService {
                index: 1,
                url: "https://sp.varco.example.org/acs/1".into(),
            },
            AssertionConsumerService {
                index: 0,
                url: "https://sp.varco.example.org/acs?a=1&b=2".into(),
            },
        ],
        single_logout_services: vec![SingleLogoutService {
            binding: SloBinding::HttpRedirect,
            url: "https://sp.varco.example.org/slo".into(),
        }],
        organization: Organization {
            name: Localized::it("Comune di Varco & Uniti"),
            display_name: Localized::it("Varco"),
            url: Localized::it("https://www.varco.example.it"),
        },
        sector: Sector::Public,
        ipa_code: Some("c_x999".into()),
        vat_number: None,
        fiscal_code: Some("01234567890".into()),
        contact: Contact {
            email: "spid@varco.example.it".into(),
            phone: Some("+390612345678".into()),
        },
        billing: None,
        cie: Some(CieContact {
            municipality: "H501".into(),
            province: Some("RM".into()),
            country: Some("IT".into()),
            nace2_code: None,
        }),
        attribute_consuming_services: vec![AttributeConsumingService {
            index: 0,
            service_name: Localized::it("Servizi"),
            attributes: vec!["fiscalNumber".into(), "name".into()],
        }],
        cie_attribute_consuming_services: None,
    }
}

fn private_sp() -> SpMetadata {
    SpMetadata {
        sector: Sector::Private,
        ipa_code: None,
        vat_number: Some("IT01234567890".into()),
        billing: Some(BillingContact {
            contact: Contact {
                email: "billing@varco.example.it".into(),
                phone: None,
            },
            name: "Varco S.p.A.".into(),
            vat: Some(VatId {
                country: "IT".into(),
                code: "01234567890".into(),
            }),
            fiscal_code: None,
            address: Address {
                street: "Via Roma".into(),
                number: None,
                postal_code: "00100".into(),
                municipality: "Roma".into(),
                province: None,
                country: "IT".into(),
            },
        }),
        cie: Some(CieContact {
            nace2_code: Some("62.01".into()),
            ..public_sp().cie.unwrap()
        }),
        ..public_sp()
    }
}

fn build(cfg: &SpMetadata, profile: MetadataProfile) -> String {
    sp_metadata(cfg, profile, &key(), ID).unwrap()
}

fn children<'d, 'a>(e: Element<'d, 'a>, local: &str) -> Vec<Element<'d, 'a>> {
    e.child_elements()
        .filter(|c| c.local_name() == local)
        .collect()
}

fn only<'d, 'a>(e: Element<'d, 'a>, local: &str) -> Element<'d, 'a> {
    let found = children(e, local);
    assert_eq!(found.len(), 1, "exactly one {local}");
    found[0]
}

fn contacts(xml: &str) -> Vec<(String, Vec<String>)> {
    let doc = Document::parse(xml.as_bytes(), &Limits::metadata()).unwrap();
    children(doc.root(), "ContactPerson")
        .into_iter()
        .map(|c| {
            let ext = only(c, "Extensions")
                .child_elements()
                .map(|e| format!("{}:{}", e.prefix().unwrap_or(""), e.local_name()))
                .collect();
            (c.attribute("contactType").unwrap().to_owned(), ext)
        })
        .collect()
}

#[test]
fn spid_public_document_structure_and_signature() {
    let xml = build(&public_sp(), MetadataProfile::SpidPublic);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<md:EntityDescriptor "));
    let doc = Document::parse(xml.as_bytes(), &Limits::metadata()).unwrap();
    let root = doc.root();
    assert!(root.is(MD_NS, "EntityDescriptor"));
    assert_eq!(
        root.attribute("entityID"),
        Some("https://sp.varco.example.org")
    );
    assert_eq!(root.attribute("ID"), Some(ID));

    // Schema order: Signature, SPSSODescriptor, Organization, ContactPerson.
    let names: Vec<&str> = root.child_elements().map(|e| e.local_name()).collect();
    assert_eq!(
        names,
        [
            "Signature",
            "SPSSODescriptor",
            "Organization",
            "ContactPerson"
        ]
    );
    let trusted = TrustedKey::from_certificate_pem(SP_CERT).unwrap();
    let verified = xmldsig::verify(root, &[trusted], &Policy::default()).unwrap();
    assert_eq!(verified.element(), root);
    let attacker = TrustedKey::from_certificate_pem(ATTACKER_CERT).unwrap();
    assert!(xmldsig::verify(root, &[attacker], &Policy::default()).is_err());

    let sp = only(root, "SPSSODescriptor");
    assert_eq!(
        sp.attribute("protocolSupportEnumeration"),
        Some("urn:oasis:names:tc:SAML:2.0:protocol")
    );
    assert_eq!(sp.attribute("AuthnRequestsSigned"), Some("true"));
    assert_eq!(sp.attribute("WantAssertionsSigned"), Some("true"));
    let sp_names: Vec<&str> = sp.child_elements().map(|e| e.local_name()).collect();
    assert_eq!(
        sp_names,
        [
            "KeyDescriptor",
            "SingleLogoutService",
            "NameIDFormat",
            "AssertionConsumerService",
            "AssertionConsumerService",
            "AttributeConsumingService"
        ]
    );
    let kd = only(sp, "KeyDescriptor");
    assert_eq!(kd.attribute("use"), Some("signing"));
    let published = only(only(only(kd, "KeyInfo"), "X509Data"), "X509Certificate").text();
    let published = TrustedKey::from_certificate_base64(&published).unwrap();
    assert_eq!(published.certificate_der(), key().certificate_der());

    // ACS sorted by index, index 0 the only default, HTTP-POST, URL escaped and read back.
    let acs = children(sp, "AssertionConsumerService");
    assert_eq!(acs[0].attribute("index"), Some("0"));
    assert_eq!(acs[0].attribute("isDefault"), Some("true"));
    assert_eq!(
        acs[0].attribute("Location"),
        Some("https://sp.varco.example.org/acs?a=1&b=2")
    );
    assert_eq!(
        acs[0].attribute("Binding"),
        Some("urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    );
    assert_eq!(acs[1].attribute("index"), Some("1"));
    assert_eq!(acs[1].attribute("isDefault"), Some("false"));
    let ras: Vec<&str> = children(only(sp, "AttributeConsumingService"), "RequestedAttribute")
        .iter()
        .map(|r| r.attribute("Name").unwrap())
        .collect();
    assert_eq!(ras, ["fiscalNumber", "name"]);

    let org = only(root, "Organization");
    assert_eq!(
        only(org, "OrganizationName").text(),
        "Comune di Varco & Uniti"
    );

    let c = only(root, "ContactPerson");
    assert_eq!(c.attribute("contactType"), Some("other"));
    let ext: Vec<(Option<&str>, &str)> = only(c, "Extensions")
        .child_elements()
        .map(|e| (e.namespace(), e.local_name()))
        .collect();
    let spid = Some(SPID_EXTENSIONS_NS);
    assert_eq!(
        ext,
        [(spid, "IPACode"), (spid, "FiscalCode"), (spid, "Public")]
    );
    assert_eq!(only(c, "Company").text(), "Comune di Varco & Uniti");
    assert_eq!(only(c, "TelephoneNumber").text(), "+390612345678");
}

#[test]
fn spid_private_has_billing_and_no_ipa_code() {
    let xml = build(&private_sp(), MetadataProfile::SpidPrivate);
    assert_eq!(
        contacts(&xml),
        [
            (
                "other".to_owned(),
                vec![
                    "spid:VATNumber".to_owned(),
                    "spid:FiscalCode".to_owned(),
                    "spid:Private".to_owned()
                ]
            ),
            (
                "billing".to_owned(),
                vec!["fpa:CessionarioCommittente".to_owned()]
            ),
        ]
    );
    assert!(!xml.contains("IPACode"));
    assert!(xml.contains(&format!("xmlns:fpa=\"{SPID_INVOICING_NS}\"")));
    assert!(xml.contains(
        "<fpa:IdFiscaleIVA><fpa:IdPaese>IT</fpa:IdPaese><fpa:IdCodice>01234567890</fpa:IdCodice>"
    ));
    assert!(xml.contains("<md:Company>Varco S.p.A.</md:Company>"));
}

#[test]
fn cie_documents_use_the_cie_contact_profile() {
    let xml = build(&public_sp(), MetadataProfile::Cie);
    assert!(xml.contains(&format!("xmlns:cie=\"{CIE_EXTENSIONS_NS}\"")));
    assert!(!xml.contains("spid:"));
    assert_eq!(
        contacts(&xml),
        [(
            "administrative".to_owned(),
            [
                "cie:Public",
                "cie:IPACode",
                "cie:Municipality",
                "cie:Province",
                "cie:Country"
            ]
            .map(String::from)
            .to_vec()
        )]
    );

    let xml = build(&private_sp(), MetadataProfile::Cie);
    assert_eq!(
        contacts(&xml)[0].1,
        [
            "cie:Private",
            "cie:VATNumber",
            "cie:FiscalCode",
            "cie:NACE2Code",
            "cie:Municipality",
            "cie:Province",
            "cie:Country"
        ]
    );
}

#[test]
fn cie_can_have_its_own_attribute_sets() {
    let mut cfg = public_sp();
    cfg.attribute_consuming_services[0]
        .attributes
        .push("email".into());
    assert_eq!(
        sp_metadata(&cfg, MetadataProfile::Cie, &key(), ID).unwrap_err(),
        MetadataError::Attribute {
            profile: MetadataProfile::Cie,
            name: "email".into()
        }
    );
    cfg.cie_attribute_consuming_services = Some(vec![AttributeConsumingService {
        index: 0,
        service_name: Localized::it("urn:uuid:00000000-0000-4000-8000-000000000000"),
        attributes: vec!["fiscalNumber".into()],
    }]);
    let xml = build(&cfg, MetadataProfile::Cie);
    assert!(!xml.contains("\"email\""));
    assert!(build(&cfg, MetadataProfile::SpidPublic).contains("Name=\"email\""));
}

#[test]
fn eidas_adds_the_ficep_sets_99_and_100() {
    let xml = build(&public_sp(), MetadataProfile::Eidas);
    let doc = Document::parse(xml.as_bytes(), &Limits::metadata()).unwrap();
    let sp = only(doc.root(), "SPSSODescriptor");
    let sets: Vec<(String, String, Vec<String>)> = children(sp, "AttributeConsumingService")
        .into_iter()
        .map(|s| {
            (
                s.attribute("index").unwrap().to_owned(),
                only(s, "ServiceName").text().into_owned(),
                children(s, "RequestedAttribute")
                    .iter()
                    .map(|r| r.attribute("Name").unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(sets.len(), 3);
    assert_eq!(sets[0].0, "0");
    assert_eq!(sets[1].0, "99");
    assert_eq!(sets[1].1, "eIDAS Natural Person Minimum Attribute Set");
    assert_eq!(sets[1].2, ["spidCode", "name", "familyName", "dateOfBirth"]);
    assert_eq!(sets[2].0, "100");
    assert_eq!(sets[2].1, "eIDAS Natural Person Full Attribute Set");
    assert_eq!(
        sets[2].2,
        [
            "spidCode",
            "name",
            "familyName",
            "dateOfBirth",
            "placeOfBirth",
            "address",
            "gender"
        ]
    );
    // Same contacts as the SPID document of the sector.
    assert_eq!(contacts(&xml)[0].0, "other");
    assert_eq!(
        contacts(&build(&private_sp(), MetadataProfile::Eidas)).len(),
        2
    );
}

#[test]
fn configuration_errors() {
    let err = |cfg: &SpMetadata, profile| sp_metadata(cfg, profile, &key(), ID).unwrap_err();
    let public = MetadataProfile::SpidPublic;

    assert_eq!(
        sp_metadata(&public_sp(), public, &key(), "1bad").unwrap_err(),
        MetadataError::InvalidId
    );
    assert_eq!(
        err(&public_sp(), MetadataProfile::SpidPrivate),
        MetadataError::SectorMismatch {
            profile: MetadataProfile::SpidPrivate
        }
    );
    assert_eq!(
        err(&private_sp(), public),
        MetadataError::SectorMismatch { profile: public }
    );

    let mut cfg = public_sp();
    cfg.ipa_code = None;
    assert_eq!(
        err(&cfg, public),
        MetadataError::Missing { field: "ipa_code" }
    );
    assert_eq!(
        err(&cfg, MetadataProfile::Cie),
        MetadataError::Missing { field: "ipa_code" }
    );

    let mut cfg = private_sp();
    cfg.billing = None;
    assert_eq!(
        err(&cfg, MetadataProfile::SpidPrivate),
        MetadataError::Missing { field: "billing" }
    );
    let mut cfg = private_sp();
    cfg.cie.as_mut().unwrap().nace2_code = None;
    assert_eq!(
        err(&cfg, MetadataProfile::Cie),
        MetadataError::Missing {
            field: "cie.nace2_code"
        }
    );
    let mut cfg = public_sp();
    cfg.cie = None;
    assert_eq!(
        err(&cfg, MetadataProfile::Cie),
        MetadataError::Missing { field: "cie" }
    );

    let mut cfg = public_sp();
    cfg.assertion_consumer_services.retain(|a| a.index != 0);
    assert_eq!(err(&cfg, public), MetadataError::NoDefaultAcs);
    let mut cfg = public_sp();
    cfg.assertion_consumer_services[0].index = 0;
    assert_eq!(
        err(&cfg, public),
        MetadataError::DuplicateIndex {
            element: "AssertionConsumerService",
            index: 0
        }
    );
    let mut cfg = public_sp();
    cfg.attribute_consuming_services[0].index = 99;
    assert!(sp_metadata(&cfg, public, &key(), ID).is_ok());
    assert_eq!(
        err(&cfg, MetadataProfile::Eidas),
        MetadataError::DuplicateIndex {
            element: "AttributeConsumingService",
            index: 99
        }
    );

    let mut cfg = public_sp();
    cfg.attribute_consuming_services[0]
        .attributes
        .push("name".into());
    assert_eq!(
        err(&cfg, public),
        MetadataError::Attribute {
            profile: public,
            name: "name".into()
        }
    );
    let mut cfg = public_sp();
    cfg.attribute_consuming_services[0].attributes = vec!["nickname".into()];
    assert_eq!(err(&cfg, public).code(), "metadata_attribute");

    let mut cfg = public_sp();
    cfg.organization.name.en = Some("Varco".into());
    assert_eq!(err(&cfg, public), MetadataError::LanguageMismatch);

    let mut cfg = public_sp();
    cfg.contact.phone = Some("+39 06 1234567".into());
    assert_eq!(
        err(&cfg, public),
        MetadataError::Invalid {
            field: "contact.phone"
        }
    );
    let mut cfg = public_sp();
    cfg.contact.email = "not-an-address".into();
    assert_eq!(
        err(&cfg, public),
        MetadataError::Invalid {
            field: "contact.email"
        }
    );
    let mut cfg = private_sp();
    cfg.billing.as_mut().unwrap().contact.email = "x@y".into();
    assert_eq!(
        err(&cfg, MetadataProfile::SpidPrivate),
        MetadataError::Invalid {
            field: "billing.contact.email"
        }
    );
    let mut cfg = public_sp();
    cfg.vat_number = Some("01234567890".into());
    assert_eq!(
        err(&cfg, public),
        MetadataError::Invalid {
            field: "vat_number"
        }
    );
    let mut cfg = private_sp();
    cfg.billing.as_mut().unwrap().address.postal_code = "1234".into();
    assert_eq!(
        err(&cfg, MetadataProfile::SpidPrivate),
        MetadataError::Invalid {
            field: "billing.address.postal_code"
        }
    );
    let mut cfg = public_sp();
    cfg.single_logout_services.clear();
    assert_eq!(
        err(&cfg, public),
        MetadataError::Missing {
            field: "single_logout_services"
        }
    );
    let mut cfg = public_sp();
    cfg.entity_id = " ".into();
    assert_eq!(
        err(&cfg, public),
        MetadataError::Missing { field: "entity_id" }
    );
}

#[test]
fn error_codes_are_stable_and_displayed() {
    let cases = [
        (MetadataError::InvalidId, "metadata_invalid_id"),
        (
            MetadataError::Missing { field: "ipa_code" },
            "metadata_missing",
        ),
        (
            MetadataError::Invalid { field: "phone" },
            "metadata_invalid",
        ),
        (
            MetadataError::SectorMismatch {
                profile: MetadataProfile::Cie,
            },
            "metadata_sector_mismatch",
        ),
        (MetadataError::NoDefaultAcs, "metadata_no_default_acs"),
        (
            MetadataError::DuplicateIndex {
                element: "AttributeConsumingService",
                index: 1,
            },
            "metadata_duplicate_index",
        ),
        (
            MetadataError::Attribute {
                profile: MetadataProfile::Eidas,
                name: "x".into(),
            },
            "metadata_attribute",
        ),
        (
            MetadataError::LanguageMismatch,
            "metadata_language_mismatch",
        ),
        (
            MetadataError::Signing(xmldsig::Error::SigningFailed),
            "metadata_signing",
        ),
    ];
    for (e, code) in cases {
        assert_eq!(e.code(), code);
        assert!(!e.to_string().is_empty());
    }
}
