//! Incoming AuthnRequests: binding decoding, parsing, and (with SP metadata) signature
//! checks. Every failure is a message for a 400 page, never a panic.

use std::io::Read as _;

use base64::Engine as _;
use flate2::read::DeflateDecoder;
use saml::{BINDING_POST, Level, SAML_NS, SAMLP_NS};
use saml_xml::{Document, Limits};
use x509_parser::prelude::{FromDer as _, X509Certificate};
use xmldsig::{KeyKind, Policy, SignatureMethod, TrustedKey};

use crate::sp::SpInfo;

/// Longest inflated AuthnRequest accepted (the saml-xml message limit).
const MAX_XML: u64 = 256 * 1024;
/// Longest request `ID` accepted.
const MAX_ID: usize = 256;

/// What was established about the SP's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureCheck {
    /// Verified with a key from the SP's metadata.
    Verified,
    /// Not checked: no `--sp-metadata` was given.
    NotChecked,
}

/// A parsed AuthnRequest and where the answer must go.
#[derive(Debug, Clone)]
pub(crate) struct IncomingRequest {
    /// The request `ID` (the Response's `InResponseTo`).
    pub(crate) id: String,
    /// The SP's entityID (the request `Issuer`).
    pub(crate) issuer: String,
    /// Where the Response is posted.
    pub(crate) acs_url: String,
    /// The lowest level the SP accepts.
    pub(crate) level: Level,
    /// `AttributeConsumingServiceIndex`, if sent.
    pub(crate) attribute_index: Option<u16>,
    /// The attribute names to release, when the SP's metadata lists the ones requested by
    /// that `AttributeConsumingService`; `None` releases every attribute of the user.
    pub(crate) released: Option<Vec<String>>,
    /// The `RelayState` to send back (empty if none).
    pub(crate) relay_state: String,
    /// What was done about the signature.
    pub(crate) signature: SignatureCheck,
}

/// Decodes an HTTP-Redirect request. `raw_query` is the query string exactly as received:
/// the signature covers its `SAMLRequest`, `RelayState` and `SigAlg` parts as sent.
pub(crate) fn from_redirect(
    raw_query: &str,
    sso_url: &str,
    sps: &[SpInfo],
) -> Result<IncomingRequest, String> {
    let params = unique_params(raw_query.as_bytes())?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let encoded = get("SAMLRequest").ok_or("SAMLRequest is missing")?;
    let deflated = decode_base64(encoded).ok_or("SAMLRequest is not base64")?;
    let mut xml = Vec::new();
    DeflateDecoder::new(deflated.as_slice())
        .take(MAX_XML + 1)
        .read_to_end(&mut xml)
        .map_err(|_| "SAMLRequest is not raw DEFLATE data")?;
    if xml.len() as u64 > MAX_XML {
        return Err("SAMLRequest inflates to more than 256 KiB".into());
    }
    let relay_state = get("RelayState").unwrap_or_default().to_owned();

    let doc = Document::parse(&xml, &Limits::default())
        .map_err(|e| format!("SAMLRequest is not acceptable XML: {e}"))?;
    let mut parsed = parse(&doc, sso_url, sps)?;
    parsed.relay_state = relay_state;

    if let Some(sp) = sps.iter().find(|s| s.entity_id == parsed.issuer) {
        let sig_alg = get("SigAlg").ok_or("the request is not signed (no SigAlg)")?;
        let signature = get("Signature").ok_or("the request is not signed (no Signature)")?;
        let method = SignatureMethod::from_uri(sig_alg)
            .ok_or_else(|| format!("SigAlg {sig_alg:?} is not accepted"))?;
        let signature = decode_base64(signature).ok_or("Signature is not base64")?;
        let signed = signed_octets(raw_query);
        if !sp
            .signing_keys
            .iter()
            .any(|k| verify_raw(k, method, signed.as_bytes(), &signature))
        {
            return Err("the request signature does not verify with the SP's metadata".into());
        }
        parsed.signature = SignatureCheck::Verified;
    }
    Ok(parsed)
}

/// Decodes an HTTP-POST request from the form body.
pub(crate) fn from_post(
    body: &[u8],
    sso_url: &str,
    sps: &[SpInfo],
) -> Result<IncomingRequest, String> {
    let params = unique_params(body)?;
    let get = |name: &str| {
        params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let encoded = get("SAMLRequest").ok_or("SAMLRequest is missing")?;
    let xml = decode_base64(encoded).ok_or("SAMLRequest is not base64")?;
    let doc = Document::parse(&xml, &Limits::default())
        .map_err(|e| format!("SAMLRequest is not acceptable XML: {e}"))?;
    let mut parsed = parse(&doc, sso_url, sps)?;
    parsed.relay_state = get("RelayState").unwrap_or_default().to_owned();
    if let Some(sp) = sps.iter().find(|s| s.entity_id == parsed.issuer) {
        xmldsig::verify(doc.root(), &sp.signing_keys, &Policy::default())
            .map_err(|e| format!("the request signature does not verify: {e}"))?;
        parsed.signature = SignatureCheck::Verified;
    }
    Ok(parsed)
}

/// Reads the AuthnRequest fields and resolves the ACS URL. With SP metadata loaded, the
/// issuer must be one of those SPs, and a sent ACS URL must be one of its locations.
fn parse(doc: &Document<'_>, sso_url: &str, sps: &[SpInfo]) -> Result<IncomingRequest, String> {
    let root = doc.root();
    if !root.is(SAMLP_NS, "AuthnRequest") {
        return Err("the root element is not samlp:AuthnRequest".into());
    }
    let id = root
        .attribute("ID")
        .filter(|id| !id.is_empty() && id.len() <= MAX_ID)
        .ok_or("AuthnRequest/@ID is missing, empty or too long")?;
    if root.attribute("Version") != Some("2.0") {
        return Err("AuthnRequest/@Version is not 2.0".into());
    }
    if let Some(destination) = root.attribute("Destination") {
        if destination != sso_url {
            return Err(format!(
                "AuthnRequest/@Destination {destination:?} is not this IdP's {sso_url:?}"
            ));
        }
    }
    let issuer = root
        .child_elements()
        .find(|c| c.is(SAML_NS, "Issuer"))
        .map(|i| i.text().trim().to_owned())
        .filter(|i| !i.is_empty())
        .ok_or("AuthnRequest/Issuer is missing or empty")?;
    if let Some(binding) = root.attribute("ProtocolBinding") {
        if binding != BINDING_POST {
            return Err(format!(
                "ProtocolBinding {binding:?}: this IdP answers with HTTP-POST only"
            ));
        }
    }
    let acs_index = match root.attribute("AssertionConsumerServiceIndex") {
        Some(v) => Some(
            v.parse::<u16>()
                .map_err(|_| "AssertionConsumerServiceIndex is not a number")?,
        ),
        None => None,
    };
    let attribute_index = match root.attribute("AttributeConsumingServiceIndex") {
        Some(v) => Some(
            v.parse::<u16>()
                .map_err(|_| "AttributeConsumingServiceIndex is not a number")?,
        ),
        None => None,
    };
    let level = requested_level(doc)?;

    let sp = sps.iter().find(|s| s.entity_id == issuer);
    if !sps.is_empty() && sp.is_none() {
        return Err(format!(
            "SP {issuer:?} is in none of the --sp-metadata files"
        ));
    }
    let acs_url = match (root.attribute("AssertionConsumerServiceURL"), acs_index) {
        (Some(_), Some(_)) => {
            return Err(
                "AssertionConsumerServiceURL and AssertionConsumerServiceIndex are exclusive"
                    .into(),
            );
        }
        (Some(url), None) => {
            if let Some(sp) = sp {
                if !sp.has_acs(url) {
                    return Err(format!(
                        "AssertionConsumerServiceURL {url:?} is not in the SP's metadata"
                    ));
                }
            }
            url.to_owned()
        }
        (None, Some(index)) => match sp {
            Some(sp) => sp
                .acs_by_index(index)
                .ok_or_else(|| {
                    format!("the SP's metadata has no HTTP-POST ACS with index {index}")
                })?
                .to_owned(),
            None => {
                return Err(format!(
                    "AssertionConsumerServiceIndex {index} can only be resolved with \
                     --sp-metadata; start the IdP with the SP's metadata, or send \
                     AssertionConsumerServiceURL"
                ));
            }
        },
        (None, None) => sp
            .and_then(SpInfo::default_acs)
            .ok_or("no ACS in the request and no SP metadata to take one from")?
            .to_owned(),
    };
    if acs_url.is_empty() {
        return Err("AssertionConsumerServiceURL is empty".into());
    }
    let released = attribute_index
        .and_then(|index| sp.and_then(|sp| sp.requested_attributes(index)))
        .map(<[String]>::to_vec);
    Ok(IncomingRequest {
        id: id.to_owned(),
        issuer,
        acs_url,
        level,
        attribute_index,
        released,
        relay_state: String::new(),
        signature: SignatureCheck::NotChecked,
    })
}

/// The lowest level among the `AuthnContextClassRef`s of `RequestedAuthnContext` (SPID
/// requires one).
fn requested_level(doc: &Document<'_>) -> Result<Level, String> {
    let context = doc
        .root()
        .child_elements()
        .find(|c| c.is(SAMLP_NS, "RequestedAuthnContext"))
        .ok_or("RequestedAuthnContext is missing (SPID requires it)")?;
    let mut level: Option<Level> = None;
    for class_ref in context
        .child_elements()
        .filter(|c| c.is(SAML_NS, "AuthnContextClassRef"))
    {
        let text = class_ref.text();
        let l = Level::from_uri(text.trim())
            .ok_or_else(|| format!("AuthnContextClassRef {:?} is not a SPID level", text.trim()))?;
        level = Some(level.map_or(l, |m| m.min(l)));
    }
    level.ok_or_else(|| "RequestedAuthnContext has no AuthnContextClassRef".into())
}

/// Form or query pairs, percent-decoded; a name sent twice is refused.
pub(crate) fn unique_params(input: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(input) {
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("parameter {name:?} is sent more than once"));
        }
        out.push((name.into_owned(), value.into_owned()));
    }
    Ok(out)
}

/// The octets an HTTP-Redirect signature covers: the `SAMLRequest`, `RelayState` (if
/// present) and `SigAlg` parts of the query, exactly as received, joined by `&`
/// (SAML bindings §3.4.4.1).
fn signed_octets(raw_query: &str) -> String {
    let part = |name: &str| {
        raw_query
            .split('&')
            .find(|p| p.split_once('=').map_or(*p, |(n, _)| n) == name)
    };
    ["SAMLRequest", "RelayState", "SigAlg"]
        .into_iter()
        .filter_map(part)
        .collect::<Vec<_>>()
        .join("&")
}

/// Verifies a detached signature (HTTP-Redirect) with a key from SP metadata.
fn verify_raw(key: &TrustedKey, method: SignatureMethod, message: &[u8], sig: &[u8]) -> bool {
    use ring::signature as s;
    let alg: &'static dyn s::VerificationAlgorithm = match (key.kind(), method) {
        (KeyKind::Rsa, SignatureMethod::RsaSha256) => &s::RSA_PKCS1_2048_8192_SHA256,
        (KeyKind::Rsa, SignatureMethod::RsaSha384) => &s::RSA_PKCS1_2048_8192_SHA384,
        (KeyKind::Rsa, SignatureMethod::RsaSha512) => &s::RSA_PKCS1_2048_8192_SHA512,
        (KeyKind::Rsa, SignatureMethod::RsaPssSha256) => &s::RSA_PSS_2048_8192_SHA256,
        (KeyKind::Rsa, SignatureMethod::RsaPssSha384) => &s::RSA_PSS_2048_8192_SHA384,
        (KeyKind::Rsa, SignatureMethod::RsaPssSha512) => &s::RSA_PSS_2048_8192_SHA512,
        (KeyKind::EcP256, SignatureMethod::EcdsaP256Sha256) => &s::ECDSA_P256_SHA256_FIXED,
        (KeyKind::EcP384, SignatureMethod::EcdsaP384Sha384) => &s::ECDSA_P384_SHA384_FIXED,
        _ => return false,
    };
    let Ok((_, cert)) = X509Certificate::from_der(key.certificate_der()) else {
        return false;
    };
    s::UnparsedPublicKey::new(alg, &cert.public_key().subject_public_key.data)
        .verify(message, sig)
        .is_ok()
}

/// Standard base64, white space ignored.
pub(crate) fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_octets_keep_the_raw_encoding_and_order() {
        let q = "Signature=c2ln&SigAlg=http%3A%2F%2Fx&RelayState=a%2Fb&SAMLRequest=AbC%2B&extra=1";
        assert_eq!(
            signed_octets(q),
            "SAMLRequest=AbC%2B&RelayState=a%2Fb&SigAlg=http%3A%2F%2Fx"
        );
        assert_eq!(
            signed_octets("SAMLRequest=x&SigAlg=y"),
            "SAMLRequest=x&SigAlg=y"
        );
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        for q in [
            "",
            "SAMLRequest=",
            "SAMLRequest=!!!",
            "SAMLRequest=AAAA",
            "SAMLRequest=a&SAMLRequest=b",
        ] {
            assert!(from_redirect(q, "http://idp/sso", &[]).is_err(), "{q}");
        }
        assert!(from_post(b"SAMLRequest=PHgvPg%3D%3D", "http://idp/sso", &[]).is_err());
    }
}
