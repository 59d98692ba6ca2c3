//! Making enveloped signatures, in exactly the profile [`crate::verify`] accepts.

use std::fmt::Write as _;

use base64::Engine as _;
use saml_xml::c14n::{self, canonicalize};
use saml_xml::{Document, Limits};

use crate::alg::{DSIG_NS, ENVELOPED, EXC_C14N};
use crate::{DigestMethod, Error, SignatureMethod, SigningKey};

/// Signs the element of `xml` whose `ID` is `id` with an enveloped signature, and returns the
/// document with the `ds:Signature` inserted: right after the element's first child when that
/// child is an `Issuer` (where SAML's schema puts it), else as its first child (metadata).
///
/// The digest is computed over the element before insertion; the enveloped-signature
/// transform removes exactly the inserted bytes, so the verifier sees the same canonical
/// form. SignedInfo is written already canonical, so what is signed is what is sent.
pub fn sign_enveloped(
    xml: &str,
    id: &str,
    key: &SigningKey,
    method: SignatureMethod,
    digest: DigestMethod,
) -> Result<String, Error> {
    if method.key_kind() != key.kind() {
        return Err(Error::KeyMethodMismatch);
    }
    let doc =
        Document::parse(xml.as_bytes(), &Limits::metadata()).map_err(|_| Error::SigningTarget)?;
    let element = doc.element_by_id(id).ok_or(Error::SigningTarget)?;
    if element.attribute("ID") != Some(id) {
        return Err(Error::SigningTarget);
    }

    let mut canonical = Vec::with_capacity(element.span().len());
    canonicalize(element, &c14n::Options::default(), &mut canonical)
        .map_err(|_| Error::SigningTarget)?;
    let digest_value = b64(ring::digest::digest(digest.ring(), &canonical).as_ref());

    let mut signed_info = String::with_capacity(1024);
    // Written in canonical form: start/end pairs, the one namespace it uses declared on it.
    let _ = write!(
        signed_info,
        "<ds:SignedInfo xmlns:ds=\"{DSIG_NS}\">\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"></ds:CanonicalizationMethod>\
         <ds:SignatureMethod Algorithm=\"{}\"></ds:SignatureMethod>\
         <ds:Reference URI=\"#{}\">\
         <ds:Transforms>\
         <ds:Transform Algorithm=\"{ENVELOPED}\"></ds:Transform>\
         <ds:Transform Algorithm=\"{EXC_C14N}\"></ds:Transform>\
         </ds:Transforms>\
         <ds:DigestMethod Algorithm=\"{}\"></ds:DigestMethod>\
         <ds:DigestValue>{digest_value}</ds:DigestValue>\
         </ds:Reference>\
         </ds:SignedInfo>",
        method.uri(),
        escape_attr(id),
        digest.uri(),
    );
    let signature_value = b64(&key.sign(method, signed_info.as_bytes())?);
    let certificate = b64(key.certificate_der());

    let mut signature = String::with_capacity(signed_info.len() + 2048);
    let _ = write!(
        signature,
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\">{signed_info}\
         <ds:SignatureValue>{signature_value}</ds:SignatureValue>\
         <ds:KeyInfo><ds:X509Data><ds:X509Certificate>{certificate}</ds:X509Certificate>\
         </ds:X509Data></ds:KeyInfo></ds:Signature>"
    );

    let at = match element.child_elements().next() {
        Some(first) if first.local_name() == "Issuer" => first.span().end,
        _ => element.content_span().start,
    };
    let self_closing = element.content_span().start == element.span().end;
    let mut out = String::with_capacity(xml.len() + signature.len() + 64);
    let src = doc.source();
    if self_closing {
        // `<X .../>` becomes `<X ...>Signature</X>`.
        let span = element.span();
        let tag = &src[span.start..span.end - 2];
        out.push_str(&src[..span.start]);
        out.push_str(tag.trim_end());
        out.push('>');
        out.push_str(&signature);
        out.push_str("</");
        out.push_str(&src[span.start + 1..span.start + 1 + qname_len(tag)]);
        out.push('>');
        out.push_str(&src[span.end..]);
    } else {
        out.push_str(&src[..at]);
        out.push_str(&signature);
        out.push_str(&src[at..]);
    }
    Ok(out)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn qname_len(tag: &str) -> usize {
    tag[1..]
        .find(|c: char| c.is_ascii_whitespace() || c == '/')
        .unwrap_or(tag.len() - 1)
}

fn escape_attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('"', "&quot;")
}
