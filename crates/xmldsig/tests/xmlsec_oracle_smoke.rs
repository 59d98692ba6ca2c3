//! Proves the xmlsec1 oracle in `tests/support/xmlsec.rs` works, using only
//! that module (not the crate under test): for every key and algorithm pair,
//! a Response signed by xmlsec1 verifies with the right certificate, and fails
//! with the attacker's certificate and after a one-byte change.

mod support;

use std::time::Instant;

use support::xmlsec::{
    ASSERTION, ASSERTION_ID, AUTHN_REQUEST, AUTHN_REQUEST_ID, Key, RESPONSE, RESPONSE_ID, alg,
    call_stats, fixture, sign, sign_node, sign_response_and_assertion,
    sign_response_and_assertion_with, template_with_algorithms, transforms, try_sign_node, verify,
    xmlsec1,
};

const FISCAL: &str = "TINIT-RSSMRA80A01H501U";
const FISCAL_TAMPERED: &str = "TINIT-RSSMRA80A01H501V";

const RSA_METHODS: [&str; 3] = [alg::RSA_SHA256, alg::RSA_SHA384, alg::RSA_SHA512];
const EC_METHODS: [&str; 3] = [alg::ECDSA_SHA256, alg::ECDSA_SHA384, alg::ECDSA_SHA512];
const DIGESTS: [&str; 3] = [alg::SHA256, alg::SHA384, alg::SHA512];

/// The two signatures of a Response: what they cover, the ID attribute to
/// declare, and the `--node-id` that selects them.
const SIGNATURES: [(&str, (&str, &str), &str); 2] = [
    ("Response", RESPONSE, RESPONSE_ID),
    ("Assertion", ASSERTION, ASSERTION_ID),
];

fn tamper(signed: &str) -> String {
    assert_eq!(
        signed.matches(FISCAL).count(),
        1,
        "fiscal number must occur once"
    );
    let t = signed.replacen(FISCAL, FISCAL_TAMPERED, 1);
    assert_eq!(t.len(), signed.len());
    assert_eq!(
        t.bytes()
            .zip(signed.bytes())
            .filter(|(a, b)| a != b)
            .count(),
        1
    );
    t
}

fn assert_filled(signed: &str) {
    for empty in [
        "<ds:DigestValue/>",
        "<ds:DigestValue></ds:DigestValue>",
        "<ds:SignatureValue/>",
        "<ds:SignatureValue></ds:SignatureValue>",
        "<ds:X509Certificate/>",
        "<ds:X509Certificate></ds:X509Certificate>",
    ] {
        assert!(!signed.contains(empty), "xmlsec1 left {empty} unfilled");
    }
}

fn matrix(key: Key, methods: &[&str]) {
    matrix_with(key, methods, &DIGESTS);
}

fn matrix_with(key: Key, methods: &[&str], digests: &[&str]) {
    let start = Instant::now();
    let template = fixture("response-spid.xml");
    for method in methods {
        for digest in digests {
            let what = format!("{key:?} {method} {digest}");
            let signed = sign_response_and_assertion(
                &template_with_algorithms(&template, method, digest),
                key,
            );
            assert_filled(&signed);
            assert_eq!(
                signed.matches(&format!("Algorithm=\"{method}\"")).count(),
                2,
                "{what}"
            );
            assert_eq!(
                signed.matches(&format!("Algorithm=\"{digest}\"")).count(),
                2,
                "{what}"
            );
            let tampered = tamper(&signed);
            for (name, id_attr, id) in SIGNATURES {
                if let Err(e) = verify(&signed, &key.cert_pem(), id_attr, Some(id)) {
                    panic!("{what}: {name} signature must verify: {e}");
                }
                assert!(
                    verify(&signed, &Key::Attacker.cert_pem(), id_attr, Some(id)).is_err(),
                    "{what}: {name} signature verified with the attacker's certificate"
                );
                assert!(
                    verify(&tampered, &key.cert_pem(), id_attr, Some(id)).is_err(),
                    "{what}: {name} signature verified after tampering"
                );
            }
        }
    }
    let (calls, total) = call_stats();
    eprintln!(
        "{key:?}: {:?} for {} combinations; process so far: {calls} xmlsec1 calls, {:?} each on average",
        start.elapsed(),
        methods.len() * digests.len(),
        total / calls.max(1) as u32
    );
}

#[test]
fn idp_rsa2048_every_rsa_algorithm() {
    matrix(Key::Rsa2048, &RSA_METHODS);
}

#[test]
fn idp_rsa3072_every_rsa_algorithm() {
    matrix(Key::Rsa3072, &RSA_METHODS);
}

#[test]
fn sp_rsa2048_one_algorithm() {
    // Same key type as Rsa2048: one combination is enough.
    matrix_with(Key::Sp, &[alg::RSA_SHA256], &[alg::SHA256]);
}

#[test]
fn idp_p256_every_ecdsa_algorithm() {
    matrix(Key::P256, &EC_METHODS);
}

#[test]
fn idp_p384_every_ecdsa_algorithm() {
    matrix(Key::P384, &EC_METHODS);
}

#[test]
fn default_node_is_the_first_signature_in_document_order() {
    let signed = sign_response_and_assertion(&fixture("response-spid.xml"), Key::Rsa2048);
    verify(&signed, &Key::Rsa2048.cert_pem(), RESPONSE, None).unwrap();
    let tampered = tamper(&signed);
    assert!(verify(&tampered, &Key::Rsa2048.cert_pem(), RESPONSE, None).is_err());
}

#[test]
fn signatures_sit_right_after_their_issuer() {
    for name in [
        "response-spid.xml",
        "response-spid-assertion-only.xml",
        "authnrequest.xml",
    ] {
        let t = fixture(name);
        let sigs = t.matches("<ds:Signature>").count();
        let after_issuer = t
            .match_indices("</saml:Issuer>")
            .filter(|(i, _)| {
                t[i + "</saml:Issuer>".len()..]
                    .trim_start()
                    .starts_with("<ds:Signature>")
            })
            .count();
        assert!(sigs > 0, "{name}");
        assert_eq!(
            sigs, after_issuer,
            "{name}: every ds:Signature must follow a saml:Issuer"
        );
    }
    let t = fixture("response-spid.xml");
    assert_eq!(t.matches("<ds:Signature>").count(), 2);
    assert_eq!(
        fixture("response-spid-assertion-only.xml")
            .matches("<ds:Signature>")
            .count(),
        1
    );
}

#[test]
fn signing_outer_first_breaks_the_outer_signature() {
    // Why sign_response_and_assertion signs the Assertion first.
    let t = fixture("response-spid.xml");
    let outer_first = sign_node(&t, Key::Rsa2048, &[RESPONSE, ASSERTION], Some(RESPONSE_ID));
    let both = sign_node(
        &outer_first,
        Key::Rsa2048,
        &[RESPONSE, ASSERTION],
        Some(ASSERTION_ID),
    );
    verify(
        &both,
        &Key::Rsa2048.cert_pem(),
        ASSERTION,
        Some(ASSERTION_ID),
    )
    .unwrap();
    assert!(verify(&both, &Key::Rsa2048.cert_pem(), RESPONSE, Some(RESPONSE_ID)).is_err());
}

#[test]
fn mixed_keys_verify_each_with_its_own_cert() {
    let t = fixture("response-spid.xml");
    let signed = sign_response_and_assertion_with(&t, Key::Rsa2048, Key::Rsa3072);
    verify(
        &signed,
        &Key::Rsa2048.cert_pem(),
        RESPONSE,
        Some(RESPONSE_ID),
    )
    .unwrap();
    verify(
        &signed,
        &Key::Rsa3072.cert_pem(),
        ASSERTION,
        Some(ASSERTION_ID),
    )
    .unwrap();
    assert!(
        verify(
            &signed,
            &Key::Rsa3072.cert_pem(),
            RESPONSE,
            Some(RESPONSE_ID)
        )
        .is_err()
    );
    assert!(
        verify(
            &signed,
            &Key::Rsa2048.cert_pem(),
            ASSERTION,
            Some(ASSERTION_ID)
        )
        .is_err()
    );
}

#[test]
fn key_comes_from_the_given_cert_not_from_the_document() {
    // Signed by the attacker, who embeds its own certificate in KeyInfo.
    let signed = sign_response_and_assertion(&fixture("response-spid.xml"), Key::Attacker);
    for (name, id_attr, id) in SIGNATURES {
        verify(&signed, &Key::Attacker.cert_pem(), id_attr, Some(id)).unwrap();
        assert!(
            verify(&signed, &Key::Rsa2048.cert_pem(), id_attr, Some(id)).is_err(),
            "{name}: the certificate embedded in the document was used"
        );
    }
}

#[test]
fn assertion_only_response() {
    let signed = sign(
        &fixture("response-spid-assertion-only.xml"),
        Key::Rsa2048,
        &[ASSERTION],
    );
    assert_filled(&signed);
    verify(
        &signed,
        &Key::Rsa2048.cert_pem(),
        ASSERTION,
        Some(ASSERTION_ID),
    )
    .unwrap();
    verify(&signed, &Key::Rsa2048.cert_pem(), ASSERTION, None).unwrap();
    assert!(verify(&signed, &Key::Attacker.cert_pem(), ASSERTION, None).is_err());
    assert!(verify(&tamper(&signed), &Key::Rsa2048.cert_pem(), ASSERTION, None).is_err());
}

#[test]
fn authn_request() {
    let t = fixture("authnrequest.xml");
    let signed = sign(&t, Key::Sp, &[AUTHN_REQUEST]);
    assert_filled(&signed);
    verify(
        &signed,
        &Key::Sp.cert_pem(),
        AUTHN_REQUEST,
        Some(AUTHN_REQUEST_ID),
    )
    .unwrap();
    assert!(verify(&signed, &Key::Rsa2048.cert_pem(), AUTHN_REQUEST, None).is_err());
    let tampered = signed.replacen("SpidL2", "SpidL1", 1);
    assert!(verify(&tampered, &Key::Sp.cert_pem(), AUTHN_REQUEST, None).is_err());
}

#[test]
fn rsa_pss_is_not_supported_by_xmlsec1_1_2() {
    let t = template_with_algorithms(
        &fixture("response-spid-assertion-only.xml"),
        alg::RSA_PSS_SHA256_MGF1,
        alg::SHA256,
    );
    match try_sign_node(&t, Key::Rsa2048, &[ASSERTION], None) {
        Ok(_) => panic!(
            "{} now signs RSA-PSS: add alg::RSA_PSS_SHA256_MGF1 to the RSA matrix",
            xmlsec1().display()
        ),
        // xmlsec1 1.2.37: "xmlSecTransformIdListFindByHref ... href=<the PSS URI>"
        Err(e) => assert!(
            e.contains(alg::RSA_PSS_SHA256_MGF1),
            "failed for another reason: {e}"
        ),
    }
}

#[test]
fn xmlsec1_lists_the_algorithms_the_matrix_uses() {
    let t = transforms();
    for name in [
        "enveloped-signature",
        "exc-c14n",
        "rsa-sha256",
        "rsa-sha384",
        "rsa-sha512",
        "ecdsa-sha256",
        "ecdsa-sha384",
        "ecdsa-sha512",
        "sha256",
        "sha384",
        "sha512",
    ] {
        assert!(t.iter().any(|x| x == name), "xmlsec1 lacks {name}: {t:?}");
    }
}
