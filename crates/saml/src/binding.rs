//! SAML bindings for outgoing requests: HTTP-Redirect (DEFLATE, query-string signature) and
//! HTTP-POST (enveloped signature, auto-submitting form).

use std::io::Write as _;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use xmldsig::{DigestMethod, SigningKey, sign_enveloped};

use crate::request::{RequestError, escape};

/// The HTTP-Redirect binding: the URL to send the browser to (with a 302).
///
/// `SAMLRequest` is the raw DEFLATE (RFC 1951, no zlib header) of `xml`, base64-encoded. The
/// signature (the key's default method: RSA-SHA256 for RSA keys) covers the octets
/// `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as they appear in the URL, each value encoded
/// like Python's `urllib.parse.quote_plus` (uppercase hex, space as `+`, only
/// `A-Z a-z 0-9 _ . - ~` left as is), which is how spid-sp-test rebuilds it. An empty
/// `relay_state` is left out of both the URL and the signed string (SAML bindings §3.4.4.1);
/// SPID wants one, and it must be opaque (no URL in it).
pub fn redirect_url(
    destination: &str,
    xml: &str,
    relay_state: &str,
    key: &SigningKey,
) -> Result<String, RequestError> {
    redirect_message(destination, "SAMLRequest", xml, relay_state, key)
}

/// [`redirect_url`] for a message carried in `param`: `SAMLRequest` for requests,
/// `SAMLResponse` for responses (a `LogoutResponse`).
pub(crate) fn redirect_message(
    destination: &str,
    param: &str,
    xml: &str,
    relay_state: &str,
    key: &SigningKey,
) -> Result<String, RequestError> {
    let mut encoder = DeflateEncoder::new(Vec::with_capacity(xml.len()), Compression::default());
    encoder
        .write_all(xml.as_bytes())
        .map_err(|_| RequestError::Deflate)?;
    let deflated = encoder.finish().map_err(|_| RequestError::Deflate)?;
    let method = key.default_method();

    let mut query = String::with_capacity(deflated.len() * 2 + 512);
    query.push_str(param);
    query.push('=');
    query.push_str(&quote_plus(&b64(&deflated)));
    if !relay_state.is_empty() {
        query.push_str("&RelayState=");
        query.push_str(&quote_plus(relay_state));
    }
    query.push_str("&SigAlg=");
    query.push_str(&quote_plus(method.uri()));
    let signature = key
        .sign(method, query.as_bytes())
        .map_err(RequestError::Signing)?;
    query.push_str("&Signature=");
    query.push_str(&quote_plus(&b64(&signature)));

    let separator = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{separator}{query}"))
}

/// An HTTP-POST binding message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostForm {
    /// The request with its enveloped `ds:Signature` (after `saml:Issuer`).
    pub signed_xml: String,
    /// The `SAMLRequest` form value: base64 of `signed_xml`.
    pub saml_request: String,
    /// A complete HTML page whose form posts `SAMLRequest` and `RelayState` to the
    /// destination, submitted by a script (a button inside `noscript` otherwise). Every value
    /// is HTML-escaped. Serve it with a `Content-Security-Policy` that allows that script,
    /// e.g. through `script_nonce`.
    pub html: String,
}

/// The HTTP-POST binding: signs `xml` (whose root has `ID` = `id`) with an enveloped
/// signature in the profile `xmldsig::verify` accepts (exclusive C14N, the key's default
/// method, SHA-256 digest, the certificate in `KeyInfo`) and wraps it in an auto-submitting
/// form. `RelayState` is always sent (spid-sp-test requires the input).
pub fn post_form(
    destination: &str,
    xml: &str,
    id: &str,
    relay_state: &str,
    key: &SigningKey,
    script_nonce: Option<&str>,
) -> Result<PostForm, RequestError> {
    post_message(
        destination,
        "SAMLRequest",
        xml,
        id,
        relay_state,
        key,
        script_nonce,
    )
}

/// [`post_form`] for a message carried in `param` (`SAMLRequest` or `SAMLResponse`).
pub(crate) fn post_message(
    destination: &str,
    param: &str,
    xml: &str,
    id: &str,
    relay_state: &str,
    key: &SigningKey,
    script_nonce: Option<&str>,
) -> Result<PostForm, RequestError> {
    let signed_xml = sign_enveloped(xml, id, key, key.default_method(), DigestMethod::Sha256)
        .map_err(RequestError::Signing)?;
    let saml_request = b64(signed_xml.as_bytes());
    let nonce = script_nonce
        .map(|n| format!(" nonce=\"{}\"", escape(n)))
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"it\"><head><meta charset=\"utf-8\">\
         <title>SPID</title></head><body>\n\
         <form method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"{param}\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"RelayState\" value=\"{}\">\n\
         <noscript><button type=\"submit\">Continua / Continue</button></noscript>\n\
         </form>\n<script{nonce}>document.forms[0].submit();</script>\n</body></html>\n",
        escape(destination),
        escape(&saml_request),
        escape(relay_state),
    );
    Ok(PostForm {
        signed_xml,
        saml_request,
        html,
    })
}

/// Percent-encodes like Python's `urllib.parse.quote_plus(s, safe='')`: bytes of
/// `A-Z a-z 0-9 _ . - ~` are kept, space becomes `+`, every other byte of the UTF-8 form
/// becomes `%XX` with uppercase hex.
pub fn quote_plus(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0x0f)]));
            }
        }
    }
    out
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Standard base64 as the bindings carry it, ASCII white space ignored (line-wrapped form
/// values). `None` when it is not base64.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// `application/x-www-form-urlencoded` decoding of one name or value: `+` is a space,
/// `%XX` a byte; a stray `%` stays itself, as form decoders do. Never fails.
pub fn form_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                s.get(i + 1).and_then(|&h| hex(h)),
                s.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::io::Read as _;
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    use flate2::read::DeflateDecoder;
    use ring::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair};
    use saml_xml::{Document, Limits};
    use xmldsig::{Policy, TrustedKey};

    use super::*;
    use crate::{AuthnRequest, Level, SpConfig};

    const ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";

    fn keys_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xmldsig/tests/keys")
    }

    fn read(name: &str) -> Vec<u8> {
        std::fs::read(keys_dir().join(name)).expect(name)
    }

    fn sp_key() -> SigningKey {
        SigningKey::from_pem(&read("sp-rsa2048.key.pem"), &read("sp-rsa2048.crt.pem")).unwrap()
    }

    fn request(destination: &str) -> AuthnRequest {
        let sp = SpConfig {
            entity_id: "https://sp.varco.example.org".into(),
            acs_url: "https://sp.varco.example.org/saml/acs".into(),
            acs_index: Some(0),
            attribute_consuming_service_index: Some(0),
        };
        let now = UNIX_EPOCH + Duration::from_secs(1_741_944_401);
        AuthnRequest::new(&sp, destination, ID, Level::L2, now).unwrap()
    }

    fn unquote_plus(s: &str) -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' => {
                    let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                    assert_eq!(hex, hex.to_uppercase(), "lowercase hex in {s}");
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 2;
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn quote_plus_matches_python() {
        // Expected values from CPython 3 `urllib.parse.quote_plus`.
        assert_eq!(quote_plus("a b/c+d=e&f"), "a+b%2Fc%2Bd%3De%26f");
        assert_eq!(quote_plus("AZaz09_.-~"), "AZaz09_.-~");
        assert_eq!(
            quote_plus("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
            "http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256"
        );
        assert_eq!(quote_plus("è\n*"), "%C3%A8%0A%2A");
        assert_eq!(quote_plus(""), "");
    }

    #[test]
    fn redirect_url_inflates_and_its_signature_verifies() {
        let r = request("https://idp.spid.example.org/sso");
        let url = r.redirect_url("state 1/2", &sp_key()).unwrap();
        let (base, query) = url.split_once('?').unwrap();
        assert_eq!(base, "https://idp.spid.example.org/sso");
        let params: Vec<(&str, &str)> = query
            .split('&')
            .map(|p| p.split_once('=').unwrap())
            .collect();
        let names: Vec<&str> = params.iter().map(|p| p.0).collect();
        assert_eq!(names, ["SAMLRequest", "RelayState", "SigAlg", "Signature"]);
        assert_eq!(unquote_plus(params[1].1), "state 1/2");
        assert_eq!(
            unquote_plus(params[2].1),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
        );

        // SAMLRequest: base64 of raw DEFLATE of exactly the request XML.
        let deflated = base64::engine::general_purpose::STANDARD
            .decode(unquote_plus(params[0].1))
            .unwrap();
        let mut xml = String::new();
        DeflateDecoder::new(&deflated[..])
            .read_to_string(&mut xml)
            .unwrap();
        assert_eq!(xml, r.xml());

        // The signature covers the query up to SigAlg, rebuilt as spid-sp-test does.
        let signed = format!(
            "SAMLRequest={}&RelayState={}&SigAlg={}",
            quote_plus(&unquote_plus(params[0].1)),
            quote_plus(&unquote_plus(params[1].1)),
            quote_plus(&unquote_plus(params[2].1)),
        );
        assert!(query.starts_with(&signed));
        let sig = base64::engine::general_purpose::STANDARD
            .decode(unquote_plus(params[3].1))
            .unwrap();
        let pair = RsaKeyPair::from_pkcs8(&read("sp-rsa2048.key.pk8.der")).unwrap();
        ring::signature::UnparsedPublicKey::new(
            &RSA_PKCS1_2048_8192_SHA256,
            pair.public_key().as_ref(),
        )
        .verify(signed.as_bytes(), &sig)
        .expect("redirect signature verifies");
        let mut tampered = signed.into_bytes();
        tampered[12] ^= 1;
        assert!(
            ring::signature::UnparsedPublicKey::new(
                &RSA_PKCS1_2048_8192_SHA256,
                pair.public_key().as_ref()
            )
            .verify(&tampered, &sig)
            .is_err()
        );
    }

    #[test]
    fn redirect_url_appends_to_an_existing_query_and_may_omit_relay_state() {
        let r = request("https://idp.example.org/sso?tenant=x");
        let url = r.redirect_url("", &sp_key()).unwrap();
        assert!(url.starts_with("https://idp.example.org/sso?tenant=x&SAMLRequest="));
        assert!(!url.contains("RelayState"));
    }

    #[test]
    fn post_form_signature_verifies_with_xmldsig() {
        let r = request("https://idp.spid.example.org/sso?a=1&b=2");
        let form = r.post_form("rs\"<x>", &sp_key(), Some("n0nce")).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&form.saml_request)
            .unwrap();
        assert_eq!(decoded, form.signed_xml.as_bytes());

        let doc = Document::parse(&decoded, &Limits::default()).unwrap();
        let trusted = TrustedKey::from_certificate_pem(&read("sp-rsa2048.crt.pem")).unwrap();
        let verified = xmldsig::verify(doc.root(), &[trusted], &Policy::default()).unwrap();
        assert_eq!(verified.element(), doc.root());
        // Schema order: Issuer, Signature, NameIDPolicy, RequestedAuthnContext.
        let names: Vec<&str> = doc
            .root()
            .child_elements()
            .map(|e| e.local_name())
            .collect();
        assert_eq!(
            names,
            [
                "Issuer",
                "Signature",
                "NameIDPolicy",
                "RequestedAuthnContext"
            ]
        );

        let attacker = TrustedKey::from_certificate_pem(&read("attacker-rsa2048.crt.pem")).unwrap();
        assert!(xmldsig::verify(doc.root(), &[attacker], &Policy::default()).is_err());

        assert!(form.html.contains(
            "<form method=\"post\" action=\"https://idp.spid.example.org/sso?a=1&amp;b=2\">"
        ));
        assert!(form.html.contains(&format!(
            "name=\"SAMLRequest\" value=\"{}\"",
            form.saml_request
        )));
        assert!(
            form.html
                .contains("name=\"RelayState\" value=\"rs&quot;&lt;x&gt;\"")
        );
        assert!(form.html.contains("<script nonce=\"n0nce\">"));
    }
}
