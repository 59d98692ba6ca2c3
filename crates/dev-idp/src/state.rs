//! The login state carried from `/sso` to `/login` in the hidden `state` form field: the
//! request fields, URL-encoded, base64url, with an HMAC-SHA256 tag under a key that lives
//! only in this process (a restart invalidates pages already shown). The tag keeps a client
//! from pointing a Response at an ACS URL the SP did not ask for; it is no secrecy.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use ring::rand::SystemRandom;
use saml::Level;

use crate::request::{IncomingRequest, SignatureCheck, unique_params};

/// Seals and opens login states.
pub(crate) struct Sealer {
    key: hmac::Key,
}

impl Sealer {
    /// A sealer with a fresh random key.
    pub(crate) fn new(rng: &SystemRandom) -> Result<Self, String> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, rng).map_err(|_| "no randomness")?;
        Ok(Sealer { key })
    }

    /// The `state` field value for `request`.
    pub(crate) fn seal(&self, request: &IncomingRequest) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("id", &request.id)
            .append_pair("sp", &request.issuer)
            .append_pair("acs", &request.acs_url)
            .append_pair("lvl", level_number(request.level))
            .append_pair("rs", &request.relay_state)
            .append_pair(
                "sig",
                match request.signature {
                    SignatureCheck::Verified => "1",
                    SignatureCheck::NotChecked => "0",
                },
            );
        if let Some((min, max)) = request.age_limit {
            form.append_pair("age", &format!("{min}-{max}"));
        }
        if let Some(index) = request.attribute_index {
            form.append_pair("aci", &index.to_string());
        }
        if let Some(names) = &request.released {
            form.append_pair("attrs", &names.join(" "));
        }
        let payload = form.finish();
        let tag = hmac::sign(&self.key, payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        )
    }

    /// The request sealed in `state`, if the tag verifies.
    pub(crate) fn open(&self, state: &str) -> Result<IncomingRequest, String> {
        const BAD: &str = "the login state is malformed, altered, or from before a restart";
        let (payload, tag) = state.trim().split_once('.').ok_or(BAD)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| BAD)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| BAD)?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| BAD)?;
        let params = unique_params(&payload)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or(BAD)
        };
        Ok(IncomingRequest {
            id: get("id")?,
            issuer: get("sp")?,
            acs_url: get("acs")?,
            level: parse_level(&get("lvl")?).ok_or(BAD)?,
            relay_state: get("rs")?,
            signature: if get("sig")? == "1" {
                SignatureCheck::Verified
            } else {
                SignatureCheck::NotChecked
            },
            attribute_index: match get("aci") {
                Ok(v) => Some(v.parse().map_err(|_| BAD)?),
                Err(_) => None,
            },
            released: get("attrs")
                .ok()
                .map(|v| v.split_whitespace().map(str::to_owned).collect()),
            age_limit: match get("age") {
                Ok(v) => {
                    let (min, max) = v.split_once('-').ok_or(BAD)?;
                    Some((min.parse().map_err(|_| BAD)?, max.parse().map_err(|_| BAD)?))
                }
                Err(_) => None,
            },
        })
    }
}

/// `"1"`, `"2"` or `"3"`.
pub(crate) fn level_number(level: Level) -> &'static str {
    match level {
        Level::L1 => "1",
        Level::L2 => "2",
        Level::L3 => "3",
    }
}

/// The level for `"1"`, `"2"`, `"3"` (also accepted: `SpidL2` and the full URI).
pub(crate) fn parse_level(s: &str) -> Option<Level> {
    let s = s.trim();
    Level::ALL
        .into_iter()
        .find(|l| s == level_number(*l) || s == l.uri() || s.eq_ignore_ascii_case(&l.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let rng = SystemRandom::new();
        let sealer = Sealer::new(&rng).unwrap();
        let request = IncomingRequest {
            id: "_abc".into(),
            issuer: "https://sp.example/?a=1&b=2".into(),
            acs_url: "https://sp.example/acs".into(),
            level: Level::L3,
            attribute_index: Some(2),
            released: Some(vec!["name".into(), "fiscalNumber".into()]),
            relay_state: "x y&z".into(),
            signature: SignatureCheck::Verified,
            age_limit: Some((14, 17)),
        };
        let sealed = sealer.seal(&request);
        let opened = sealer.open(&sealed).unwrap();
        assert_eq!(opened.id, request.id);
        assert_eq!(opened.issuer, request.issuer);
        assert_eq!(opened.acs_url, request.acs_url);
        assert_eq!(opened.level, Level::L3);
        assert_eq!(opened.attribute_index, Some(2));
        assert_eq!(opened.released, request.released);
        assert_eq!(opened.relay_state, request.relay_state);
        assert_eq!(opened.signature, SignatureCheck::Verified);
        assert_eq!(opened.age_limit, Some((14, 17)));

        let mut bytes = sealed.into_bytes();
        bytes[3] = if bytes[3] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open(&String::from_utf8(bytes).unwrap()).is_err());
        assert!(sealer.open("").is_err());
        assert!(sealer.open("...").is_err());
        let other = Sealer::new(&rng).unwrap();
        assert!(other.open(&sealer.seal(&request)).is_err());
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_level("2"), Some(Level::L2));
        assert_eq!(parse_level("SpidL3"), Some(Level::L3));
        assert_eq!(
            parse_level("https://www.spid.gov.it/SpidL1"),
            Some(Level::L1)
        );
        assert_eq!(parse_level("4"), None);
    }
}
