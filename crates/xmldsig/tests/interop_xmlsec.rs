//! Interoperability with the real xmlsec1 (1.2.37, OpenSSL backend), both ways: what xmlsec1
//! signs, `xmldsig::verify` accepts (and points at the right element); what `sign_enveloped`
//! makes, xmlsec1 verifies with the key from the certificate file. Algorithm combinations that
//! ring cannot verify end in a typed error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::thread;
use std::time::Instant;

use saml_xml::{Document, Element, Limits};
use support::xmlsec::{
    ASSERTION, ASSERTION_ID, AUTHN_REQUEST, AUTHN_REQUEST_ID, Key, RESPONSE, RESPONSE_ID, SAML_NS,
    alg, call_stats, fixture, sign_response_and_assertion, template_with_algorithms,
    verify as oracle_verify, verify_with_id_attrs,
};
use xmldsig::{
    DSIG_NS, DigestMethod, Error, KeyKind, Policy, SignatureMethod, SigningKey, TrustedKey,
    sign_enveloped, verify,
};

const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const ENTITY_DESCRIPTOR: (&str, &str) = ("EntityDescriptor", MD_NS);
const ENTITY_ID: &str = "_9f8e7d6c5b4a39281706f5e4d3c2b1a0";

const RSA_METHODS: [SignatureMethod; 3] = [
    SignatureMethod::RsaSha256,
    SignatureMethod::RsaSha384,
    SignatureMethod::RsaSha512,
];

/// Every (key, method, digest) that both xmlsec1 1.2.37 and this crate support. RSA-PSS is
/// missing: xmlsec1 1.2 has no RSA-PSS (see `rsa_pss_signatures_are_ours_only`).
fn common_combinations() -> Vec<(Key, SignatureMethod, DigestMethod)> {
    let mut out = Vec::new();
    for digest in DigestMethod::ALL {
        for key in [Key::Rsa2048, Key::Rsa3072] {
            for method in RSA_METHODS {
                out.push((key, method, digest));
            }
        }
        out.push((Key::P256, SignatureMethod::EcdsaP256Sha256, digest));
        out.push((Key::P384, SignatureMethod::EcdsaP384Sha384, digest));
    }
    out
}

/// Runs `f` on every item, one thread each (most of the time is spent waiting for xmlsec1).
/// A panic in any thread is re-raised here with its own message.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let f = &f;
    thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|it| s.spawn(move || f(it))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn trusted(key: Key) -> TrustedKey {
    TrustedKey::from_certificate_pem(&std::fs::read(key.cert_pem()).unwrap()).unwrap()
}

fn signing_key(key: Key) -> SigningKey {
    SigningKey::from_pem(
        &std::fs::read(key.key_pem()).unwrap(),
        &std::fs::read(key.cert_pem()).unwrap(),
    )
    .unwrap()
}

fn parse(xml: &str) -> Document<'_> {
    Document::parse(xml.as_bytes(), &Limits::default()).unwrap()
}

/// The Response (root) and its Assertion.
fn response_and_assertion<'d, 'a>(doc: &'d Document<'a>) -> (Element<'d, 'a>, Element<'d, 'a>) {
    let response = doc.root();
    assert!(response.is(RESPONSE.1, RESPONSE.0));
    let assertion = response
        .child_elements()
        .find(|e| e.is(SAML_NS, "Assertion"))
        .expect("Response has an Assertion");
    (response, assertion)
}

/// Verifies `element` with `keys` and checks what the proof stands for: it names `element`
/// itself, it holds under a policy admitting only `method` and `digest` (so those were the
/// algorithms used), `keys[key_index]` made it (without that key it no longer verifies), and
/// the signature is the element's one enveloped `ds:Signature` child.
fn assert_verifies(
    what: &str,
    element: Element<'_, '_>,
    id: &str,
    keys: &[TrustedKey],
    key_index: usize,
    method: SignatureMethod,
    digest: DigestMethod,
) {
    let only = Policy {
        signature_methods: vec![method],
        digest_methods: vec![digest],
    };
    let v = verify(element, keys, &only)
        .unwrap_or_else(|e| panic!("{what}: {id} must verify with {method:?}/{digest:?}: {e:?}"));
    assert_eq!(v.element(), element, "{what}: Verified points elsewhere");
    assert_eq!(v.element().attribute("ID"), Some(id), "{what}");
    let others: Vec<TrustedKey> = keys
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != key_index)
        .map(|(_, k)| k.clone())
        .collect();
    assert!(
        verify(element, &others, &Policy::default()).is_err(),
        "{what}: verifies without key {key_index}, so another key made it"
    );
    let signatures: Vec<_> = element
        .child_elements()
        .filter(|c| c.is(DSIG_NS, "Signature"))
        .collect();
    assert_eq!(signatures.len(), 1, "{what}: not one enveloped signature");
}

fn assert_refused(what: &str, element: Element<'_, '_>, keys: &[TrustedKey]) -> Error {
    match verify(element, keys, &Policy::default()) {
        Ok(v) => panic!("{what}: verified with the wrong key: {v:?}"),
        Err(e) => {
            assert!(
                matches!(e, Error::BadSignature | Error::UntrustedKeyInfo),
                "{what}: expected BadSignature or UntrustedKeyInfo, got {e:?}"
            );
            e
        }
    }
}

/// Removes the `n`-th (0-based, document order) `ds:KeyInfo` element.
fn without_key_info(xml: &str, n: usize) -> String {
    let (start, _) = xml
        .match_indices("<ds:KeyInfo>")
        .nth(n)
        .expect("KeyInfo present");
    let end = start + xml[start..].find("</ds:KeyInfo>").unwrap() + "</ds:KeyInfo>".len();
    format!("{}{}", &xml[..start], &xml[end..])
}

/// A fixture with its xmlsec1 `ds:Signature` templates (and the white space before them)
/// removed: the unsigned document `sign_enveloped` expects.
fn without_templates(xml: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    while let Some(start) = rest.find("<ds:Signature>") {
        out.push_str(rest[..start].trim_end());
        let end = start + rest[start..].find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
        rest = &rest[end..];
    }
    out.push_str(rest);
    assert!(!out.contains("ds:Signature"));
    out
}

#[test]
fn xmlsec1_signed_documents_verify() {
    let start = Instant::now();
    let template = fixture("response-spid.xml");
    let attacker = trusted(Key::Attacker);
    let combos = common_combinations();
    par_map(&combos, |&(key, method, digest)| {
        let what = format!("{key:?} {method:?} {digest:?}");
        let signed = sign_response_and_assertion(
            &template_with_algorithms(&template, method.uri(), digest.uri()),
            key,
        );
        let doc = parse(&signed);
        let (response, assertion) = response_and_assertion(&doc);
        let right = trusted(key);
        for (element, id) in [(assertion, ASSERTION_ID), (response, RESPONSE_ID)] {
            assert_verifies(
                &what,
                element,
                id,
                std::slice::from_ref(&right),
                0,
                method,
                digest,
            );
            // The right key among others: found, and reported by its index.
            let keys = [attacker.clone(), trusted(Key::Sp), right.clone()];
            assert_verifies(&what, element, id, &keys, 2, method, digest);
            // Only the attacker's key: KeyInfo names a certificate that is not trusted.
            let e = assert_refused(&what, element, std::slice::from_ref(&attacker));
            assert_eq!(e, Error::UntrustedKeyInfo, "{what}");
        }
    });

    // Signed by the attacker (who puts its own certificate in KeyInfo), IdP key trusted.
    let idp = trusted(Key::Rsa2048);
    let attacker_combos: Vec<_> = combos
        .iter()
        .filter(|c| c.0 == Key::Rsa2048)
        .copied()
        .collect();
    par_map(&attacker_combos, |&(_, method, digest)| {
        let what = format!("attacker {method:?} {digest:?}");
        let signed = sign_response_and_assertion(
            &template_with_algorithms(&template, method.uri(), digest.uri()),
            Key::Attacker,
        );
        let doc = parse(&signed);
        let (response, assertion) = response_and_assertion(&doc);
        for element in [response, assertion] {
            let e = assert_refused(&what, element, std::slice::from_ref(&idp));
            assert_eq!(e, Error::UntrustedKeyInfo, "{what}");
        }
        // Without KeyInfo the trusted key is tried, and the signature value does not verify.
        // KeyInfo #0 is the Response's (outside the Assertion), #1 the Assertion's.
        let no_ki = without_key_info(&signed, 0);
        let doc = parse(&no_ki);
        let (response, _) = response_and_assertion(&doc);
        let e = assert_refused(&what, response, std::slice::from_ref(&idp));
        assert_eq!(e, Error::BadSignature, "{what}: Response");
        let no_ki = without_key_info(&signed, 1);
        let doc = parse(&no_ki);
        let (_, assertion) = response_and_assertion(&doc);
        let e = assert_refused(&what, assertion, std::slice::from_ref(&idp));
        assert_eq!(e, Error::BadSignature, "{what}: Assertion");
    });
    let (calls, total) = call_stats();
    eprintln!(
        "{} combinations + {} attacker ones in {:?}; {calls} xmlsec1 calls, {:?} of xmlsec1 time",
        combos.len(),
        attacker_combos.len(),
        start.elapsed(),
        total
    );
}

/// A metadata-like EntityDescriptor: no Issuer, so the signature becomes the first child.
fn entity_descriptor() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <md:EntityDescriptor xmlns:md=\"{MD_NS}\" ID=\"{ENTITY_ID}\" \
         entityID=\"https://sp.varco.example.org\">\n  \
         <md:SPSSODescriptor AuthnRequestsSigned=\"true\" WantAssertionsSigned=\"true\" \
         protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n    \
         <md:AssertionConsumerService index=\"0\" isDefault=\"true\" \
         Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\" \
         Location=\"https://sp.varco.example.org/saml/acs\"/>\n  \
         </md:SPSSODescriptor>\n\
         </md:EntityDescriptor>\n"
    )
}

#[test]
fn our_signatures_verify_with_xmlsec1() {
    let start = Instant::now();
    let unsigned = without_templates(&fixture("response-spid.xml"));
    let combos = common_combinations();
    par_map(&combos, |&(key, method, digest)| {
        let what = format!("{key:?} {method:?} {digest:?}");
        let sk = signing_key(key);
        let inner = sign_enveloped(&unsigned, ASSERTION_ID, &sk, method, digest).unwrap();
        let signed = sign_enveloped(&inner, RESPONSE_ID, &sk, method, digest).unwrap();
        assert_eq!(signed.matches("<ds:Signature ").count(), 2, "{what}");

        // Our own verifier first: a failure here is not an interop problem.
        let doc = parse(&signed);
        let (response, assertion) = response_and_assertion(&doc);
        let keys = [trusted(key)];
        assert_verifies(&what, assertion, ASSERTION_ID, &keys, 0, method, digest);
        assert_verifies(&what, response, RESPONSE_ID, &keys, 0, method, digest);
        // Each signature sits right after its element's Issuer.
        for el in [response, assertion] {
            let kids: Vec<_> = el.child_elements().take(2).collect();
            assert_eq!(kids[0].local_name(), "Issuer", "{what}");
            assert!(kids[1].is(DSIG_NS, "Signature"), "{what}");
        }

        for (id_attr, id) in [(ASSERTION, ASSERTION_ID), (RESPONSE, RESPONSE_ID)] {
            if let Err(e) =
                verify_with_id_attrs(&signed, &key.cert_pem(), &[RESPONSE, ASSERTION], Some(id))
            {
                panic!("{what}: xmlsec1 rejects our {} signature: {e}", id_attr.0);
            }
        }
        if digest == DigestMethod::Sha256 {
            // The oracle takes the key from the file, not from our KeyInfo.
            assert!(
                oracle_verify(
                    &signed,
                    &Key::Attacker.cert_pem(),
                    ASSERTION,
                    Some(ASSERTION_ID)
                )
                .is_err(),
                "{what}"
            );
        }
    });

    // AuthnRequest (SP key), and metadata in both its forms (with content, self-closing).
    let sp = signing_key(Key::Sp);
    let authn = without_templates(&fixture("authnrequest.xml"));
    let method = SignatureMethod::RsaSha256;
    let digest = DigestMethod::Sha256;
    let signed = sign_enveloped(&authn, AUTHN_REQUEST_ID, &sp, method, digest).unwrap();
    let doc = parse(&signed);
    let kids: Vec<_> = doc.root().child_elements().take(2).collect();
    assert_eq!(kids[0].local_name(), "Issuer");
    assert!(kids[1].is(DSIG_NS, "Signature"));
    assert_verifies(
        "AuthnRequest",
        doc.root(),
        AUTHN_REQUEST_ID,
        &[trusted(Key::Sp)],
        0,
        method,
        digest,
    );
    oracle_verify(
        &signed,
        &Key::Sp.cert_pem(),
        AUTHN_REQUEST,
        Some(AUTHN_REQUEST_ID),
    )
    .unwrap_or_else(|e| panic!("AuthnRequest: {e}"));
    assert!(
        oracle_verify(
            &signed.replacen("SpidL2", "SpidL1", 1),
            &Key::Sp.cert_pem(),
            AUTHN_REQUEST,
            None
        )
        .is_err()
    );

    let full = entity_descriptor();
    let empty = format!(
        "<md:EntityDescriptor xmlns:md=\"{MD_NS}\" ID=\"{ENTITY_ID}\" entityID=\"https://sp.varco.example.org\"/>"
    );
    for (name, xml) in [("metadata", full), ("self-closing metadata", empty)] {
        for (key, method) in [
            (Key::Sp, SignatureMethod::RsaSha256),
            (Key::P256, SignatureMethod::EcdsaP256Sha256),
        ] {
            let what = format!("{name} {key:?}");
            let signed = sign_enveloped(&xml, ENTITY_ID, &signing_key(key), method, digest)
                .unwrap_or_else(|e| panic!("{what}: {e:?}"));
            let doc = Document::parse(signed.as_bytes(), &Limits::metadata()).unwrap();
            let root = doc.root();
            assert!(root.is(MD_NS, "EntityDescriptor"), "{what}");
            let first = root.child_elements().next().unwrap();
            assert!(
                first.is(DSIG_NS, "Signature"),
                "{what}: not the first child"
            );
            assert_verifies(&what, root, ENTITY_ID, &[trusted(key)], 0, method, digest);
            oracle_verify(&signed, &key.cert_pem(), ENTITY_DESCRIPTOR, Some(ENTITY_ID))
                .unwrap_or_else(|e| panic!("{what}: xmlsec1 rejects it: {e}"));
        }
    }
    let (calls, total) = call_stats();
    eprintln!(
        "{} combinations + AuthnRequest + metadata in {:?}; {calls} xmlsec1 calls, {:?} of xmlsec1 time",
        combos.len(),
        start.elapsed(),
        total
    );
}

/// Signs the two-signature Response with xmlsec1 using algorithm URIs as given, checks that
/// xmlsec1 itself accepts both signatures (so the documents are genuinely signed), and returns
/// what `xmldsig::verify` says of the Assertion and the Response.
fn xmlsec1_signed_with(
    key: Key,
    method_uri: &str,
    digest_uri: &str,
) -> (String, [Result<(), Error>; 2]) {
    let t = template_with_algorithms(&fixture("response-spid.xml"), method_uri, digest_uri);
    let signed = sign_response_and_assertion(&t, key);
    for (attr, id) in [(ASSERTION, ASSERTION_ID), (RESPONSE, RESPONSE_ID)] {
        oracle_verify(&signed, &key.cert_pem(), attr, Some(id))
            .unwrap_or_else(|e| panic!("xmlsec1 rejects its own {method_uri} signature: {e}"));
    }
    let results = {
        let doc = parse(&signed);
        let (response, assertion) = response_and_assertion(&doc);
        let keys = [trusted(key)];
        [assertion, response].map(|el| verify(el, &keys, &Policy::default()).map(|_| ()))
    };
    (signed, results)
}

#[test]
fn ecdsa_p256_with_sha384_is_unsupported_cleanly() {
    // ring verifies P-256 only with SHA-256 (ECDSA_P256_SHA256_FIXED). The method URI maps to
    // EcdsaP384Sha384, which needs a P-384 key: none is trusted.
    let (_, results) = xmlsec1_signed_with(Key::P256, alg::ECDSA_SHA384, alg::SHA256);
    assert_eq!(
        results,
        [Err(Error::NoCompatibleKey), Err(Error::NoCompatibleKey)]
    );
    let e = sign_enveloped(
        &without_templates(&fixture("response-spid.xml")),
        ASSERTION_ID,
        &signing_key(Key::P256),
        SignatureMethod::EcdsaP384Sha384,
        DigestMethod::Sha256,
    );
    assert_eq!(e, Err(Error::KeyMethodMismatch));
}

#[test]
fn ecdsa_p384_with_sha256_is_unsupported_cleanly() {
    let (_, results) = xmlsec1_signed_with(Key::P384, alg::ECDSA_SHA256, alg::SHA384);
    assert_eq!(
        results,
        [Err(Error::NoCompatibleKey), Err(Error::NoCompatibleKey)]
    );
    let e = sign_enveloped(
        &without_templates(&fixture("response-spid.xml")),
        ASSERTION_ID,
        &signing_key(Key::P384),
        SignatureMethod::EcdsaP256Sha256,
        DigestMethod::Sha384,
    );
    assert_eq!(e, Err(Error::KeyMethodMismatch));
}

#[test]
fn ecdsa_sha512_is_unsupported_cleanly() {
    par_map(&[Key::P256, Key::P384], |&key| {
        let (_, results) = xmlsec1_signed_with(key, alg::ECDSA_SHA512, alg::SHA512);
        assert_eq!(
            results,
            [
                Err(Error::UnsupportedAlgorithm),
                Err(Error::UnsupportedAlgorithm)
            ],
            "{key:?}"
        );
    });
}

#[test]
fn sha1_is_refused_as_weak() {
    let cases = [
        (alg::RSA_SHA1, alg::SHA256),
        (alg::RSA_SHA256, alg::SHA1),
        (alg::RSA_SHA1, alg::SHA1),
    ];
    par_map(&cases, |&(method, digest)| {
        let (_, results) = xmlsec1_signed_with(Key::Rsa2048, method, digest);
        assert_eq!(
            results,
            [Err(Error::WeakAlgorithm), Err(Error::WeakAlgorithm)],
            "{method} {digest}"
        );
    });
}

#[test]
fn policy_without_the_method_is_a_typed_error() {
    let (signed, results) = xmlsec1_signed_with(Key::Rsa2048, alg::RSA_SHA512, alg::SHA384);
    assert_eq!(results, [Ok(()), Ok(())]);
    let doc = parse(&signed);
    let (_, assertion) = response_and_assertion(&doc);
    let keys = [trusted(Key::Rsa2048)];
    let no_method = Policy {
        signature_methods: vec![SignatureMethod::RsaSha256],
        ..Policy::default()
    };
    let no_digest = Policy {
        digest_methods: vec![DigestMethod::Sha256],
        ..Policy::default()
    };
    for policy in [no_method, no_digest] {
        assert_eq!(
            verify(assertion, &keys, &policy).map(|_| ()),
            Err(Error::UnsupportedAlgorithm)
        );
    }
}

#[test]
fn signing_with_a_method_the_key_cannot_make_is_a_typed_error() {
    let unsigned = without_templates(&fixture("authnrequest.xml"));
    for key in [Key::Rsa2048, Key::P256, Key::P384] {
        let sk = signing_key(key);
        for method in SignatureMethod::ALL {
            let kind = match method {
                SignatureMethod::EcdsaP256Sha256 => KeyKind::EcP256,
                SignatureMethod::EcdsaP384Sha384 => KeyKind::EcP384,
                _ => KeyKind::Rsa,
            };
            let r = sign_enveloped(
                &unsigned,
                AUTHN_REQUEST_ID,
                &sk,
                method,
                DigestMethod::Sha256,
            );
            if kind == sk.kind() {
                assert!(r.is_ok(), "{key:?} {method:?}: {r:?}");
            } else {
                assert_eq!(r, Err(Error::KeyMethodMismatch), "{key:?} {method:?}");
            }
        }
    }
}

#[test]
fn rsa_pss_signatures_are_ours_only() {
    // xmlsec1 1.2.37 has no RSA-PSS: our PSS signatures verify with our verifier only. This
    // test fails (on purpose) the day the oracle learns PSS, so the interop matrix gains it.
    let unsigned = without_templates(&fixture("response-spid-assertion-only.xml"));
    let sk = signing_key(Key::Rsa2048);
    for method in [
        SignatureMethod::RsaPssSha256,
        SignatureMethod::RsaPssSha384,
        SignatureMethod::RsaPssSha512,
    ] {
        let signed =
            sign_enveloped(&unsigned, ASSERTION_ID, &sk, method, DigestMethod::Sha256).unwrap();
        let doc = parse(&signed);
        let (_, assertion) = response_and_assertion(&doc);
        assert_verifies(
            "PSS",
            assertion,
            ASSERTION_ID,
            &[trusted(Key::Rsa2048)],
            0,
            method,
            DigestMethod::Sha256,
        );
        let e = oracle_verify(
            &signed,
            &Key::Rsa2048.cert_pem(),
            ASSERTION,
            Some(ASSERTION_ID),
        )
        .expect_err("xmlsec1 1.2 verified RSA-PSS");
        assert!(e.contains(method.uri()), "{method:?} failed otherwise: {e}");
    }
}
