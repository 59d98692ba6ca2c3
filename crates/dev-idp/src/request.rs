//! Incoming AuthnRequests: binding decoding, parsing, and (with SP metadata) signature
//! checks. Every failure is a message for a 400 page, never a panic.

use std::io::Read as _;

use base64::Engine as _;
use flate2::read::DeflateDecoder;
use saml::{BINDING_POST, Level, SAML_NS, SAMLP_NS, SPID_EXTENSIONS_NS};
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
    /// `spid:AgeLimit` (SPID for minors): the completed years the person must have,
    /// `(MinAge, MaxAge)`, MaxAge 99 meaning no upper limit.
    pub(crate) age_limit: Option<(u32, u32)>,
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
    let age_limit = age_limit(doc)?;

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
        age_limit,
    })
}

/// `samlp:Extensions/spid:AgeLimit`, if present: both `MinAge` and `MaxAge`, each a number of
/// years up to 99 (99 = no upper limit), `MinAge` not above `MaxAge`. A malformed one refuses
/// the request rather than being ignored: an IdP that skipped the check would let a minor in.
fn age_limit(doc: &Document<'_>) -> Result<Option<(u32, u32)>, String> {
    let Some(limit) = doc
        .root()
        .child_elements()
        .filter(|c| c.is(SAMLP_NS, "Extensions"))
        .flat_map(|e| e.child_elements())
        .find(|c| c.is(SPID_EXTENSIONS_NS, "AgeLimit"))
    else {
        return Ok(None);
    };
    let years = |name: &str| -> Result<u32, String> {
        let text = limit
            .child_elements()
            .find(|c| c.is(SPID_EXTENSIONS_NS, name))
            .map(|c| c.text().trim().to_owned())
            .ok_or_else(|| format!("spid:AgeLimit without spid:{name}"))?;
        text.parse::<u32>()
            .ok()
            .filter(|y| *y <= 99 && text.len() <= 2)
            .ok_or_else(|| format!("spid:{name} {text:?} is not a number of years 0-99"))
    };
    let (min, max) = (years("MinAge")?, years("MaxAge")?);
    if min > max {
        return Err(format!("spid:AgeLimit MinAge {min} is above MaxAge {max}"));
    }
    Ok(Some((min, max)))
}

/// Completed years at `today` (`YYYY-MM-DD`) of a person born on `born` (`YYYY-MM-DD`), or
/// `None` if either is not such a date. Born on 29 February: the year completes on 1 March
/// in a common year (string order of `MM-DD` does that).
pub(crate) fn completed_years(born: &str, today: &str) -> Option<u32> {
    let split = |d: &str| -> Option<(u32, String)> {
        let (y, md) = d.split_once('-')?;
        (y.len() == 4 && md.len() == 5).then_some(())?;
        Some((y.parse().ok()?, md.to_owned()))
    };
    let ((by, bmd), (ty, tmd)) = (split(born)?, split(today)?);
    let years = ty.checked_sub(by)?;
    Some(if tmd < bmd {
        years.checked_sub(1)?
    } else {
        years
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
    fn completed_years_count_birthdays() {
        assert_eq!(completed_years("2011-04-15", "2026-04-14"), Some(14));
        assert_eq!(completed_years("2011-04-15", "2026-04-15"), Some(15));
        assert_eq!(completed_years("2008-02-29", "2026-02-28"), Some(17));
        assert_eq!(completed_years("2008-02-29", "2026-03-01"), Some(18));
        assert_eq!(completed_years("2030-01-01", "2026-01-01"), None);
        assert_eq!(completed_years("15/04/2011", "2026-01-01"), None);
    }

    /// An unsigned HTTP-POST AuthnRequest with `extensions` after the Issuer.
    fn post_with(extensions: &str) -> Result<IncomingRequest, String> {
        let xml = format!(
            "<samlp:AuthnRequest xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\" \
             xmlns:spid=\"{SPID_EXTENSIONS_NS}\" ID=\"_r1\" Version=\"2.0\" \
             AssertionConsumerServiceURL=\"https://sp.example/acs\">\
             <saml:Issuer>https://sp.example</saml:Issuer>{extensions}\
             <samlp:RequestedAuthnContext><saml:AuthnContextClassRef>{}\
             </saml:AuthnContextClassRef></samlp:RequestedAuthnContext></samlp:AuthnRequest>",
            Level::L2.uri()
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLRequest", &b64)
            .finish();
        from_post(body.as_bytes(), "http://idp/sso", &[])
    }

    #[test]
    fn age_limit_extension_is_read_and_a_malformed_one_refused() {
        let limit = |min: &str, max: &str| {
            format!(
                "<samlp:Extensions><spid:AgeLimit><spid:MinAge>{min}</spid:MinAge>\
                 <spid:MaxAge>{max}</spid:MaxAge></spid:AgeLimit></samlp:Extensions>"
            )
        };
        assert_eq!(post_with("").unwrap().age_limit, None);
        assert_eq!(
            post_with(&limit("14", "17")).unwrap().age_limit,
            Some((14, 17))
        );
        assert_eq!(
            post_with(&limit("18", "99")).unwrap().age_limit,
            Some((18, 99))
        );
        for (min, max) in [
            ("18", "14"),
            ("-1", "17"),
            ("14", "100"),
            ("x", "17"),
            ("", "17"),
        ] {
            assert!(post_with(&limit(min, max)).is_err(), "{min}-{max}");
        }
        let no_max = "<samlp:Extensions><spid:AgeLimit><spid:MinAge>14</spid:MinAge>\
                      </spid:AgeLimit></samlp:Extensions>";
        assert!(post_with(no_max).is_err());
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
