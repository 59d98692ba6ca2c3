//! Metadata costs: loading and verifying an aggregate of 15 IdPs (the size of the SPID
//! registry) signed with RSA-2048, and a registry lookup on the login path.
//!
//! `taskset -c 1 cargo bench -p metadata --bench registry`; numbers in docs/PERFORMANCE.md.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use metadata::{Registry, Snapshot, load_document};
use saml::Federation;
use xmldsig::{DigestMethod, SignatureMethod, SigningKey, TrustedKey, sign_enveloped};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{KEYS}/{name}")).unwrap()
}

/// An aggregate shaped like the SPID registry's: 15 IdPs, each with two signing
/// certificates, UI names, an Organization and both SSO bindings.
fn aggregate() -> String {
    let cert = base64::engine::general_purpose::STANDARD.encode(read("idp-rsa2048.crt.der"));
    let mut entities = String::new();
    for i in 0..15 {
        entities.push_str(&format!(
            r#"<md:EntityDescriptor entityID="https://idp{i}.example.org"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="true"><md:Extensions><mdui:UIInfo xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui"><mdui:DisplayName xml:lang="it">Gestore {i}</mdui:DisplayName><mdui:Logo height="32" width="32">https://idp{i}.example.org/logo.svg</mdui:Logo></mdui:UIInfo></md:Extensions><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp{i}.example.org/sso"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp{i}.example.org/sso"/><saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="fiscalNumber"/><saml:Attribute xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" Name="name"/></md:IDPSSODescriptor><md:Organization><md:OrganizationName xml:lang="it">Gestore {i} S.p.A.</md:OrganizationName><md:OrganizationDisplayName xml:lang="it">Gestore {i}</md:OrganizationDisplayName><md:OrganizationURL xml:lang="it">https://idp{i}.example.org</md:OrganizationURL></md:Organization></md:EntityDescriptor>"#
        ));
    }
    let xml = format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_registry" validUntil="2030-01-01T00:00:00Z" cacheDuration="PT12H">{entities}</md:EntitiesDescriptor>"#
    );
    let key =
        SigningKey::from_pem(&read("idp-rsa3072.key.pem"), &read("idp-rsa3072.crt.pem")).unwrap();
    sign_enveloped(
        &xml,
        "_registry",
        &key,
        SignatureMethod::RsaSha256,
        DigestMethod::Sha256,
    )
    .unwrap()
}

fn benches(c: &mut Criterion) {
    let xml = aggregate();
    let pinned = [TrustedKey::from_certificate_pem(&read("idp-rsa3072.crt.pem")).unwrap()];
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let loaded = load_document(xml.as_bytes(), Federation::Spid, &pinned, now, "spid").unwrap();
    assert_eq!(loaded.idps.len(), 15);
    eprintln!("aggregate: {} bytes", xml.len());

    c.bench_function("metadata_load_verify_15_idps", |b| {
        b.iter(|| {
            load_document(
                black_box(xml.as_bytes()),
                Federation::Spid,
                &pinned,
                now,
                "spid",
            )
            .unwrap()
        })
    });

    let registry = Registry::new(Snapshot::build(loaded.idps).0);
    c.bench_function("registry_get_hit", |b| {
        b.iter(|| {
            registry
                .get(black_box("https://idp7.example.org"))
                .is_some()
        })
    });
    c.bench_function("registry_get_miss", |b| {
        b.iter(|| {
            registry
                .get(black_box("https://evil.example.org"))
                .is_some()
        })
    });
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);
