//! SAML bindings for outgoing requests: HTTP-Redirect (DEFLATE, query-string signature) and
//! HTTP-POST (enveloped signature, auto-submitting form).

use std::io::Write as _;

use base64::Engine as _;
use flate2::Compression;
use flate2::write::DeflateEncoder;
use saml_xml::escape;
use xmldsig::{DigestMethod, SigningKey, sign_enveloped};

use crate::error::RequestError;

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
    let engine = &base64::engine::general_purpose::STANDARD;
    // Bytes, not chars: white space is ASCII, and this runs over whole messages (issue 17
    // measured the char-by-char copy at a tenth of an SLO message's cost).
    if !text.bytes().any(|b| b.is_ascii_whitespace()) {
        return engine.decode(text).ok();
    }
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    engine.decode(compact).ok()
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
        // Copy the run up to the next `+` or `%` in one call: most of a SAML form value is
        // base64 letters (issue 17: byte-by-byte pushes were a tenth of an SLO message's cost).
        let run = s
            .get(i..)
            .unwrap_or(&[])
            .iter()
            .position(|&c| c == b'+' || c == b'%')
            .unwrap_or(s.len() - i);
        if run > 0 {
            out.extend_from_slice(s.get(i..i + run).unwrap_or(&[]));
            i += run;
            continue;
        }
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
    use super::*;

    #[test]
    fn form_decode_handles_runs_escapes_and_stray_percents() {
        assert_eq!(form_decode(b"abc"), b"abc");
        assert_eq!(form_decode(b"a+b%2Bc%3d"), b"a b+c=");
        assert_eq!(form_decode(b"%"), b"%");
        assert_eq!(form_decode(b"%4"), b"%4");
        assert_eq!(form_decode(b"x%zz+"), b"x%zz ");
        assert_eq!(form_decode(b"%41%42++%43"), b"AB  C");
        assert_eq!(form_decode(b""), b"");
        assert_eq!(decode_base64("QU\nJD\r\n").as_deref(), Some(&b"ABC"[..]));
        assert_eq!(decode_base64("QUJD").as_deref(), Some(&b"ABC"[..]));
        assert_eq!(decode_base64("QUJ!"), None);
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
}
