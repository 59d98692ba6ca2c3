//! CNS client-certificate verification (`broker::features::cns::verify` and the forwarded-header
//! decoding), against CAs and cards generated here with rcgen: one named test per way a card
//! can be refused (expired, not yet valid, another CA, a CA posing as a card, wrong key usage,
//! malformed subjects, a bad fiscal-code check character, revoked, stale CRL, junk bytes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime};

use broker::features::cns::{CnsError, Trust, from_header, verify};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber, date_time_ymd,
};
use rustls_pki_types::CertificateDer;

/// 2026-06-01T00:00:00Z, the injected "now" of every test.
fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_272_000)
}

const CF: &str = "RSSMRA80A01H501U";

/// OIDs rcgen has no name for.
fn oid(last: u64) -> DnType {
    DnType::CustomDnType(vec![2, 5, 4, last])
}
const SERIAL_NUMBER: u64 = 5;
const SURNAME: u64 = 4;
const GIVEN_NAME: u64 = 42;
const DN_QUALIFIER: u64 = 46;

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    key_pem: String,
    pem: String,
    der: CertificateDer<'static>,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, "IT");
    dn.push(DnType::OrganizationName, "Regione di Prova");
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    params
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = ca_params(name);
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        issuer: Issuer::new(params, key),
    }
}

/// An intermediate CA signed by `parent`.
fn intermediate(parent: &Ca, name: &str) -> Ca {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let params = ca_params(name);
    let cert = params.signed_by(&key, &parent.issuer).unwrap();
    Ca {
        pem: cert.pem(),
        der: cert.der().clone(),
        key_pem: key.serialize_pem(),
        issuer: Issuer::new(params, key),
    }
}

/// What a card certificate says; `Card::good()` follows the CNS profile.
#[derive(Clone)]
struct Card {
    subject: Vec<(DnType, String)>,
    key_usages: Vec<KeyUsagePurpose>,
    eku: Vec<ExtendedKeyUsagePurpose>,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
    serial: u64,
}

impl Card {
    fn good() -> Card {
        Card {
            subject: vec![
                (DnType::CountryName, "IT".into()),
                (DnType::OrganizationName, "Regione di Prova".into()),
                (
                    DnType::CommonName,
                    format!("{CF}/7420000012345678.Zm9vYmFy"),
                ),
                (oid(SURNAME), "ROSSI".into()),
                (oid(GIVEN_NAME), "MARIO".into()),
                (oid(DN_QUALIFIER), "20250101123456".into()),
            ],
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            not_before: (2025, 1, 1),
            not_after: (2031, 1, 1),
            serial: 0x1234,
        }
    }

    fn with_cn(mut self, cn: &str) -> Card {
        self.subject.retain(|(t, _)| *t != DnType::CommonName);
        self.subject.push((DnType::CommonName, cn.into()));
        self
    }

    fn issue(&self, by: &Ca) -> CertificateDer<'static> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = DistinguishedName::new();
        for (t, v) in &self.subject {
            dn.push(t.clone(), v.as_str());
        }
        params.distinguished_name = dn;
        // basicConstraints CA:FALSE, as cards carry; it also makes rcgen write the
        // extensions when there is no extended key usage.
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = self.key_usages.clone();
        params.extended_key_usages = self.eku.clone();
        let (y, m, d) = self.not_before;
        params.not_before = date_time_ymd(y, m, d);
        let (y, m, d) = self.not_after;
        params.not_after = date_time_ymd(y, m, d);
        params.serial_number = Some(SerialNumber::from(self.serial));
        params.signed_by(&key, &by.issuer).unwrap().der().clone()
    }
}

fn trust(cas: &[&Ca]) -> Trust {
    let bundle: String = cas.iter().map(|c| c.pem.clone()).collect();
    Trust::from_pem(bundle.as_bytes(), &[]).unwrap()
}

fn check(trust: &Trust, chain: &[CertificateDer<'static>]) -> Result<String, CnsError> {
    verify(trust, chain, now()).map(|id| id.fiscal_code)
}

#[test]
fn a_card_of_a_configured_issuer_gives_its_fiscal_code_and_names() {
    let ca = ca("CA CNS di Prova");
    let card = Card::good().issue(&ca);
    let id = verify(&trust(&[&ca]), &[card], now()).unwrap();
    assert_eq!(id.fiscal_code, CF);
    assert_eq!(id.given_name.as_deref(), Some("MARIO"));
    assert_eq!(id.family_name.as_deref(), Some("ROSSI"));
    assert!(id.issuer.contains("CA CNS di Prova"), "{}", id.issuer);
    assert_eq!(id.serial, "12:34");
}

#[test]
fn a_card_under_an_intermediate_chains_to_the_configured_root() {
    let root = ca("Root CNS");
    let sub = intermediate(&root, "Sub CNS");
    let card = Card::good().issue(&sub);
    let t = trust(&[&root]);
    assert_eq!(check(&t, &[card.clone(), sub.der.clone()]).unwrap(), CF);
    // Without the intermediate the path cannot be built.
    assert_eq!(check(&t, &[card]), Err(CnsError::UntrustedChain));
}

#[test]
fn expired_card_is_refused() {
    let ca = ca("CA");
    let card = Card {
        not_before: (2020, 1, 1),
        not_after: (2026, 1, 1),
        ..Card::good()
    }
    .issue(&ca);
    assert_eq!(check(&trust(&[&ca]), &[card]), Err(CnsError::Expired));
}

#[test]
fn not_yet_valid_card_is_refused() {
    let ca = ca("CA");
    let card = Card {
        not_before: (2026, 7, 1),
        not_after: (2032, 1, 1),
        ..Card::good()
    }
    .issue(&ca);
    assert_eq!(check(&trust(&[&ca]), &[card]), Err(CnsError::NotYetValid));
}

#[test]
fn card_from_another_ca_is_untrusted_whatever_its_dates() {
    let configured = ca("CA CNS");
    // Same name, another key: only the key counts.
    let other = ca("CA CNS");
    let t = trust(&[&configured]);
    assert_eq!(
        check(&t, &[Card::good().issue(&other)]),
        Err(CnsError::UntrustedChain)
    );
    let expired = Card {
        not_after: (2026, 1, 1),
        ..Card::good()
    };
    assert_eq!(
        check(&t, &[expired.issue(&other)]),
        Err(CnsError::UntrustedChain),
        "a forged card must not learn that only its date is wrong"
    );
    // A chain that names the other CA as an intermediate does not help either.
    assert_eq!(
        check(&t, &[Card::good().issue(&other), other.der.clone()]),
        Err(CnsError::UntrustedChain)
    );
}

#[test]
fn self_signed_card_is_untrusted() {
    let me = ca(&format!("{CF}/1.x"));
    let t = trust(&[&ca("CA")]);
    assert_eq!(
        check(&t, std::slice::from_ref(&me.der)),
        Err(CnsError::UntrustedChain)
    );
}

#[test]
fn ca_certificate_presented_as_a_card_is_refused() {
    let root = ca("Root");
    let sub = intermediate(&root, &format!("{CF}/123.abc"));
    assert_eq!(
        check(&trust(&[&root]), std::slice::from_ref(&sub.der)),
        Err(CnsError::UntrustedChain)
    );
}

#[test]
fn wrong_key_usage_is_refused() {
    let ca = ca("CA");
    let t = trust(&[&ca]);
    let encipher_only = Card {
        key_usages: vec![KeyUsagePurpose::KeyEncipherment],
        ..Card::good()
    };
    assert_eq!(
        check(&t, &[encipher_only.issue(&ca)]),
        Err(CnsError::KeyUsage)
    );
    let no_key_usage = Card {
        key_usages: vec![],
        ..Card::good()
    };
    assert_eq!(
        check(&t, &[no_key_usage.issue(&ca)]),
        Err(CnsError::KeyUsage)
    );
    let signing_only = Card {
        key_usages: vec![KeyUsagePurpose::ContentCommitment],
        ..Card::good()
    };
    assert_eq!(
        check(&t, &[signing_only.issue(&ca)]),
        Err(CnsError::KeyUsage)
    );
    let server_auth = Card {
        eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ..Card::good()
    };
    assert_eq!(
        check(&t, &[server_auth.issue(&ca)]),
        Err(CnsError::KeyUsage)
    );
    // No extended key usage at all is the CNS norm and accepted.
    let no_eku = Card {
        eku: vec![],
        ..Card::good()
    };
    assert_eq!(check(&t, &[no_eku.issue(&ca)]).unwrap(), CF);
}

#[test]
fn malformed_subjects_are_refused() {
    let ca = ca("CA");
    let t = trust(&[&ca]);
    let bad = |card: Card| check(&t, &[card.issue(&ca)]);
    for cn in [
        CF,                           // no card identifier
        &format!("{CF}/"),            // empty card identifier
        &format!("/{CF}"),            // empty fiscal code
        &format!("{CF}//123"),        // empty part
        &format!("{CF} /123.abc"),    // space
        &format!("{CF}/123 abc"),     // space in the card part
        &format!("{CF}/123\u{7}abc"), // control character
        &format!("{CF}/1è"),          // not ASCII
        "RSSMRA80A01H501/123.abc",    // 15 characters
        "RSSMRA80A01H501UX/123.abc",  // 17 characters
        "rssmra80a01h501u/123.abc",   // lower case
        "Mario Rossi",                // not the CNS form
    ] {
        assert_eq!(
            bad(Card::good().with_cn(cn)),
            Err(CnsError::BadSubject),
            "{cn:?}"
        );
    }
    let mut no_cn = Card::good();
    no_cn.subject.retain(|(t, _)| *t != DnType::CommonName);
    assert_eq!(bad(no_cn), Err(CnsError::BadSubject));
    let mut other_serial = Card::good();
    other_serial
        .subject
        .push((oid(SERIAL_NUMBER), "TINIT-VRDGPP80A01H501K".into()));
    assert_eq!(
        bad(other_serial),
        Err(CnsError::BadSubject),
        "serialNumber names someone else"
    );
    let mut other_qualifier = Card::good();
    other_qualifier
        .subject
        .retain(|(t, _)| *t != oid(DN_QUALIFIER));
    other_qualifier
        .subject
        .push((oid(DN_QUALIFIER), "VRDGPP80A01H501K".into()));
    assert_eq!(bad(other_qualifier), Err(CnsError::BadSubject));
}

/// A card issued with the real `openssl` (rcgen cannot repeat an attribute in a name):
/// key, request with `subj`, signed by `ca`. Returns the certificate and a moment inside
/// its validity (openssl starts it now).
fn openssl_card(ca: &Ca, subj: &str) -> (CertificateDer<'static>, SystemTime) {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!(
        "varco-cns-openssl-{}-{}",
        std::process::id(),
        subj.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), &ca.pem).unwrap();
    std::fs::write(dir.join("ca.key"), ca.key_pem.as_bytes()).unwrap();
    std::fs::write(
        dir.join("ext"),
        "keyUsage=critical,digitalSignature\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("openssl (make test installs it)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "card.key",
        "-out",
        "card.csr",
        "-subj",
        subj,
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "card.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-days",
        "3650",
        "-set_serial",
        "77",
        "-extfile",
        "ext",
        "-outform",
        "DER",
        "-out",
        "card.der",
    ]);
    let der = std::fs::read(dir.join("card.der")).unwrap();
    let (_, cert) = x509_parser::prelude::FromDer::from_der(der.as_slice())
        .map(|(r, c): (&[u8], x509_parser::prelude::X509Certificate<'_>)| (r.len(), c))
        .unwrap();
    let inside = SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(cert.validity().not_before.timestamp()).unwrap())
        + Duration::from_secs(86_400);
    let _ = std::fs::remove_dir_all(&dir);
    (CertificateDer::from(der), inside)
}

#[test]
fn repeated_subject_attributes_are_refused() {
    let ca = ca("CA");
    let t = trust(&[&ca]);
    // The control: the same shape with each attribute once is accepted.
    let (good, at) = openssl_card(&ca, &format!("/C=IT/CN={CF}\\/74200.Zm9v/SN=ROSSI"));
    assert_eq!(
        verify(&t, &[good], at).map(|i| i.fiscal_code),
        Ok(CF.to_owned())
    );
    for subj in [
        format!("/C=IT/CN={CF}\\/74200.Zm9v/CN=VRDGPP80A01H501K\\/1.a"),
        format!("/C=IT/CN={CF}\\/74200.Zm9v/GN=MARIO/GN=LUIGI"),
        format!("/C=IT/CN={CF}\\/74200.Zm9v/serialNumber=TINIT-{CF}/serialNumber=X"),
    ] {
        let (card, at) = openssl_card(&ca, &subj);
        assert_eq!(
            verify(&t, &[card], at).map(|i| i.fiscal_code),
            Err(CnsError::BadSubject),
            "{subj}"
        );
    }
}

#[test]
fn serial_number_and_dn_qualifier_repeating_the_fiscal_code_are_accepted() {
    let ca = ca("CA");
    let t = trust(&[&ca]);
    for serial in [format!("TINIT-{CF}"), format!("IT:{CF}"), CF.to_owned()] {
        let mut card = Card::good();
        card.subject.push((oid(SERIAL_NUMBER), serial.clone()));
        assert_eq!(check(&t, &[card.issue(&ca)]).unwrap(), CF, "{serial}");
    }
    let mut card = Card::good();
    card.subject.retain(|(t, _)| *t != oid(DN_QUALIFIER));
    card.subject.push((oid(DN_QUALIFIER), CF.into()));
    assert_eq!(check(&t, &[card.issue(&ca)]).unwrap(), CF);
}

#[test]
fn bad_fiscal_code_check_character_is_refused() {
    let ca = ca("CA");
    let card = Card::good().with_cn("RSSMRA80A01H501X/7420000012345678.Zm9v");
    assert_eq!(
        check(&trust(&[&ca]), &[card.issue(&ca)]),
        Err(CnsError::BadFiscalCode)
    );
    // Month letter that does not exist.
    let card = Card::good().with_cn("RSSMRA80Z01H501U/7420000012345678.Zm9v");
    assert_eq!(
        check(&trust(&[&ca]), &[card.issue(&ca)]),
        Err(CnsError::BadFiscalCode)
    );
}

#[test]
fn junk_and_empty_chains_are_typed_errors() {
    let t = trust(&[&ca("CA")]);
    assert_eq!(check(&t, &[]), Err(CnsError::NoCertificate));
    assert_eq!(
        check(
            &t,
            &[CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00])]
        ),
        Err(CnsError::BadCertificate)
    );
    assert_eq!(
        check(&t, &[CertificateDer::from(vec![0u8; 40_000])]),
        Err(CnsError::BadCertificate)
    );
    let card = Card::good().issue(&ca("CA"));
    let long: Vec<CertificateDer<'static>> = std::iter::repeat_n(card, 7).collect();
    assert_eq!(check(&t, &long), Err(CnsError::BadCertificate));
}

fn crl(ca: &Ca, revoked: &[u64], next_update: (i32, u8, u8)) -> Vec<u8> {
    let (y, m, d) = next_update;
    CertificateRevocationListParams {
        this_update: date_time_ymd(2026, 1, 1),
        next_update: date_time_ymd(y, m, d),
        crl_number: SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|s| RevokedCertParams {
                serial_number: SerialNumber::from(*s),
                revocation_time: date_time_ymd(2026, 2, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap()
    .pem()
    .unwrap()
    .into_bytes()
}

#[test]
fn revoked_card_is_refused_with_a_crl() {
    let ca = ca("CA");
    let t = Trust::from_pem(ca.pem.as_bytes(), &[crl(&ca, &[0x1234], (2026, 12, 1))]).unwrap();
    assert_eq!(
        check(&t, &[Card::good().issue(&ca)]),
        Err(CnsError::Revoked)
    );
    let other = Card {
        serial: 0x99,
        ..Card::good()
    };
    assert_eq!(check(&t, &[other.issue(&ca)]).unwrap(), CF);
}

#[test]
fn stale_or_missing_crl_is_revocation_unknown() {
    let ca = ca("CA");
    let stale = Trust::from_pem(ca.pem.as_bytes(), &[crl(&ca, &[], (2026, 3, 1))]).unwrap();
    assert_eq!(
        check(&stale, &[Card::good().issue(&ca)]),
        Err(CnsError::RevocationUnknown)
    );
    // CRLs configured, but none from this card's issuer: refused, not waved through.
    let second = self::ca("CA 2");
    let bundle = format!("{}{}", ca.pem, second.pem);
    let t = Trust::from_pem(bundle.as_bytes(), &[crl(&ca, &[], (2026, 12, 1))]).unwrap();
    assert_eq!(
        check(&t, &[Card::good().issue(&second)]),
        Err(CnsError::RevocationUnknown)
    );
}

#[test]
fn trust_bundle_must_hold_certificates() {
    assert!(Trust::from_pem(b"", &[]).is_err());
    assert!(
        Trust::from_pem(
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            &[]
        )
        .is_err()
    );
    let ca = ca("CA");
    assert!(Trust::from_pem(ca.pem.as_bytes(), &[b"not a crl".to_vec()]).is_err());
}

/// nginx's `$ssl_client_escaped_cert`: the PEM with everything but unreserved characters
/// percent-encoded.
fn nginx_escape(pem: &str) -> String {
    pem.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn forwarded_header_is_url_encoded_pem_of_one_certificate() {
    let ca = ca("CA");
    let card = Card::good().issue(&ca);
    let pem = rustls_pki_types::pem::PemObject::pem_slice_iter(ca.pem.as_bytes())
        .next()
        .map(|c: Result<CertificateDer<'static>, _>| c.unwrap())
        .unwrap();
    assert_eq!(pem, ca.der);
    let card_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        base64_lines(card.as_ref())
    );
    let decoded = from_header(nginx_escape(&card_pem).as_bytes()).unwrap();
    assert_eq!(decoded, card);
    assert_eq!(check(&trust(&[&ca]), &[decoded]).unwrap(), CF);

    for junk in [
        "".to_owned(),
        "not a certificate".to_owned(),
        "%ZZ".to_owned(),
        nginx_escape(&format!("{card_pem}{card_pem}")),
        "A".repeat(60_000),
    ] {
        assert_eq!(
            from_header(junk.as_bytes()),
            Err(CnsError::BadCertificate),
            "{}",
            &junk[..junk.len().min(40)]
        );
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    b64.as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_code_is_stable_and_namespaced() {
    let codes: Vec<&str> = CnsError::ALL.iter().map(|e| e.code()).collect();
    assert!(codes.iter().all(|c| c.starts_with("cns.")));
    let unique: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len());
}

#[test]
fn any_single_byte_change_to_a_card_is_refused() {
    let ca = ca("CA");
    let t = trust(&[&ca]);
    let card = Card::good().issue(&ca);
    assert_eq!(check(&t, std::slice::from_ref(&card)).unwrap(), CF);
    let der = card.as_ref().to_vec();
    for i in 0..der.len() {
        for flip in [0x01u8, 0x80] {
            let mut bytes = der.clone();
            bytes[i] ^= flip;
            let r = check(&t, &[CertificateDer::from(bytes)]);
            assert!(r.is_err(), "byte {i} ^ {flip:#04x} still verifies: {r:?}");
        }
    }
}
