//! IdP metadata parsing and pinned-certificate verification.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use metadata::parse_idp_metadata;
use saml::Federation;
use xmldsig::{DigestMethod, SignatureMethod, SigningKey, TrustedKey};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{KEYS}/{name}")).unwrap()
}

fn idp_cert_b64() -> String {
    base64::engine::general_purpose::STANDARD.encode(read("idp-rsa2048.crt.der"))
}

fn entity(entity_id: &str, key_use: &str, cert: &str) -> String {
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}" ID="_m1"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor{key_use}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/sso-post"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

fn registry_key() -> SigningKey {
    SigningKey::from_pem(&read("idp-p256.key.pem"), &read("idp-p256.crt.pem")).unwrap()
}

fn registry_cert() -> TrustedKey {
    TrustedKey::from_certificate_pem(&read("idp-p256.crt.pem")).unwrap()
}

#[test]
fn single_entity_descriptor_gives_one_idp() {
    let xml = entity("https://idp.example", r#" use="signing""#, &idp_cert_b64());
    let idps = parse_idp_metadata(xml.as_bytes(), Federation::Spid, &[]).unwrap();
    assert_eq!(idps.len(), 1);
    assert_eq!(idps[0].entity_id, "https://idp.example");
    assert_eq!(
        idps[0].sso_redirect_url.as_deref(),
        Some("https://idp.example/sso")
    );
    assert_eq!(
        idps[0].sso_post_url.as_deref(),
        Some("https://idp.example/sso-post")
    );
    assert_eq!(idps[0].signing_keys.len(), 1);
    assert_eq!(idps[0].federation, Federation::Spid);
}

#[test]
fn aggregate_skips_service_providers() {
    let idp = entity("https://idp.example", "", &idp_cert_b64()).replace(r#" ID="_m1""#, "");
    let sp = r#"<md:EntityDescriptor entityID="https://sp.example"><md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>"#;
    let xml = format!(
        r#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#">{}{sp}</md:EntitiesDescriptor>"#,
        idp.replace(r#" xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#""#, "")
    );
    let idps = parse_idp_metadata(xml.as_bytes(), Federation::Cie, &[]).unwrap();
    assert_eq!(idps.len(), 1);
    assert_eq!(idps[0].federation, Federation::Cie);
}

#[test]
fn encryption_only_key_is_not_a_signing_key() {
    let xml = entity(
        "https://idp.example",
        r#" use="encryption""#,
        &idp_cert_b64(),
    );
    let err = parse_idp_metadata(xml.as_bytes(), Federation::Spid, &[]).unwrap_err();
    assert_eq!(err.code(), "metadata_invalid_entity");
}

#[test]
fn idp_without_signing_key_is_refused_not_trusted_blindly() {
    let xml = entity("https://idp.example", "", "").replace("<ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo>", "");
    let err = parse_idp_metadata(xml.as_bytes(), Federation::Spid, &[]).unwrap_err();
    assert_eq!(err.code(), "metadata_invalid_entity");
}

#[test]
fn pinned_certificate_must_have_signed_the_document() {
    let xml = entity("https://idp.example", "", &idp_cert_b64());
    let signed = xmldsig::sign_enveloped(
        &xml,
        "_m1",
        &registry_key(),
        SignatureMethod::EcdsaP256Sha256,
        DigestMethod::Sha256,
    )
    .unwrap();
    let idps = parse_idp_metadata(signed.as_bytes(), Federation::Spid, &[registry_cert()]).unwrap();
    assert_eq!(idps.len(), 1);

    // Unsigned document with a pin: refused.
    let err = parse_idp_metadata(xml.as_bytes(), Federation::Spid, &[registry_cert()]).unwrap_err();
    assert_eq!(err.code(), "dsig_unsigned");

    // A changed SSO location after signing: refused.
    let tampered = signed.replace("https://idp.example/sso\"", "https://evil.example/sso\"");
    let err =
        parse_idp_metadata(tampered.as_bytes(), Federation::Spid, &[registry_cert()]).unwrap_err();
    assert_eq!(err.code(), "dsig_digest_mismatch");

    // Signed by a key other than the pinned one: refused.
    let other = TrustedKey::from_certificate_pem(&read("idp-p384.crt.pem")).unwrap();
    let err = parse_idp_metadata(signed.as_bytes(), Federation::Spid, &[other]).unwrap_err();
    assert!(
        matches!(
            err.code(),
            "dsig_untrusted_key_info" | "dsig_no_compatible_key"
        ),
        "{err}"
    );
}

#[test]
fn not_metadata_is_refused() {
    let err = parse_idp_metadata(b"<a/>", Federation::Spid, &[]).unwrap_err();
    assert_eq!(err.code(), "metadata_not_metadata");
    let err = parse_idp_metadata(b"<!DOCTYPE a><a/>", Federation::Spid, &[]).unwrap_err();
    assert_eq!(err.code(), "xml_doctype");
}

#[test]
fn keys_for_encryption_or_outside_the_idpssodescriptor_never_sign() {
    let b64 = |name: &str| base64::engine::general_purpose::STANDARD.encode(read(name));
    let kd = |key_use: &str, cert: &str| {
        format!(
            r#"<md:KeyDescriptor{key_use}><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
        )
    };
    let doc = |idp_keys: &str| {
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example">{entity_level}<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{sp_key}<md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/acs"/></md:SPSSODescriptor><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{idp_keys}<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
            entity_level = kd(r#" use="signing""#, &b64("attacker-rsa2048.crt.der")),
            sp_key = kd(r#" use="signing""#, &b64("idp-p384.crt.der")),
        )
    };
    let encryption = kd(r#" use="encryption""#, &b64("idp-p256.crt.der"));
    let signing = kd(r#" use="signing""#, &b64("idp-rsa2048.crt.der"));
    let idps = parse_idp_metadata(
        doc(&format!("{encryption}{signing}")).as_bytes(),
        Federation::Spid,
        &[],
    )
    .unwrap();
    let keys: Vec<_> = idps[0]
        .signing_keys
        .iter()
        .map(|k| k.certificate_der().to_vec())
        .collect();
    assert_eq!(keys, [read("idp-rsa2048.crt.der")]);
    // Without the IdP's own signing key, none of the others stands in for it.
    let err = parse_idp_metadata(doc(&encryption).as_bytes(), Federation::Spid, &[]).unwrap_err();
    assert_eq!(err.code(), "metadata_invalid_entity");
    assert!(err.to_string().contains("no signing certificate"), "{err}");
}

#[test]
fn single_logout_services_are_exposed_for_the_two_bindings_only() {
    let xml = entity("https://idp.example", r#" use="signing""#, &idp_cert_b64()).replace(
        "<md:SingleSignOnService ",
        concat!(
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://idp.example/soap"/>"#,
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location=" https://idp.example/slo " ResponseLocation="https://idp.example/slo-back"/>"#,
            r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location=""/>"#,
            "<md:SingleSignOnService "
        ),
    );
    // The replace hit both SingleSignOnService elements: the endpoints appear twice.
    let idps = parse_idp_metadata(xml.as_bytes(), Federation::Spid, &[]).unwrap();
    let slo = &idps[0].single_logout;
    assert!(!slo.is_empty());
    assert!(slo.iter().all(|e| e.binding == saml::BINDING_REDIRECT));
    let redirect = idps[0].slo_endpoint(saml::BINDING_REDIRECT).unwrap();
    assert_eq!(redirect.location, "https://idp.example/slo");
    assert_eq!(redirect.response_url(), "https://idp.example/slo-back");
    assert!(
        idps[0].slo_endpoint(saml::BINDING_POST).is_none(),
        "empty Location is no endpoint"
    );

    let plain = entity("https://idp.example", r#" use="signing""#, &idp_cert_b64());
    let idps = parse_idp_metadata(plain.as_bytes(), Federation::Spid, &[]).unwrap();
    assert!(idps[0].single_logout.is_empty());
}
