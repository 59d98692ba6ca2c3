//! Service providers known from `--sp-metadata` (files, or `http://` URLs such as Varco's
//! own `/saml/metadata`). Their metadata signatures are NOT checked: the sources come from
//! the developer's command line. Sources are read again for every AuthnRequest, so an SP
//! started after the IdP, or a metadata file rewritten, is picked up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::rt::TokioIo;

use saml_xml::{Document, Element, Limits};
use xmldsig::TrustedKey;

/// SAML metadata namespace.
pub(crate) const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";

/// What the IdP needs of one SP.
#[derive(Debug, Clone)]
pub(crate) struct SpInfo {
    /// The SP's entityID.
    pub(crate) entity_id: String,
    /// `AssertionConsumerService` elements with the HTTP-POST binding: index, location,
    /// `isDefault`.
    pub(crate) acs: Vec<(u16, String, bool)>,
    /// `AttributeConsumingService` index and the names of its `RequestedAttribute`s.
    pub(crate) attribute_services: Vec<(u16, Vec<String>)>,
    /// Keys of `KeyDescriptor`s with `use="signing"` or without `use`.
    pub(crate) signing_keys: Vec<TrustedKey>,
    /// `SingleLogoutService` endpoints (HTTP-Redirect and HTTP-POST only), in order.
    pub(crate) single_logout: Vec<saml::SloEndpoint>,
}

impl SpInfo {
    /// The ACS location with this index.
    pub(crate) fn acs_by_index(&self, index: u16) -> Option<&str> {
        self.acs
            .iter()
            .find(|(i, _, _)| *i == index)
            .map(|(_, url, _)| url.as_str())
    }

    /// The default ACS: the one marked `isDefault="true"`, else the first.
    pub(crate) fn default_acs(&self) -> Option<&str> {
        self.acs
            .iter()
            .find(|(_, _, d)| *d)
            .or_else(|| self.acs.first())
            .map(|(_, url, _)| url.as_str())
    }

    /// True if `url` is one of the SP's ACS locations.
    pub(crate) fn has_acs(&self, url: &str) -> bool {
        self.acs.iter().any(|(_, u, _)| u == url)
    }

    /// The attribute names requested by the AttributeConsumingService with this index.
    pub(crate) fn requested_attributes(&self, index: u16) -> Option<&[String]> {
        self.attribute_services
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, names)| names.as_slice())
    }
}

/// Where one `--sp-metadata` comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A local file.
    File(PathBuf),
    /// An `http://` URL, fetched with a plain GET (no TLS: a dev tool on loopback).
    Url(String),
}

impl Source {
    /// `http://…` is a URL, anything else a path.
    pub(crate) fn from_arg(arg: &str) -> Source {
        if arg.starts_with("http://") || arg.starts_with("https://") {
            Source::Url(arg.to_owned())
        } else {
            Source::File(PathBuf::from(arg))
        }
    }
}

/// Reads every source; any failure is an error naming the source.
pub(crate) async fn load_all(sources: &[Source]) -> Result<Vec<SpInfo>, String> {
    let mut out = Vec::new();
    for source in sources {
        match source {
            Source::File(path) => out.extend(load(path)?),
            Source::Url(url) => {
                let bytes = fetch(url)
                    .await
                    .map_err(|e| format!("SP metadata {url}: {e}"))?;
                out.extend(parse(&bytes).map_err(|e| format!("SP metadata {url}: {e}"))?);
            }
        }
    }
    Ok(out)
}

/// GET an `http://host[:port]/path` URL: status 200 and at most 32 MiB, within 10 seconds.
async fn fetch(url: &str) -> Result<Vec<u8>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err("bad URL authority".into());
    }
    let address = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let work = async {
        let stream = tokio::net::TcpStream::connect(&address)
            .await
            .map_err(|e| format!("connect {address}: {e}"))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(connection);
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .body(Empty::new())
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("GET: {e}"))?;
        if response.status() != hyper::StatusCode::OK {
            return Err(format!("status {}", response.status()));
        }
        Limited::new(response.into_body(), 32 * 1024 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .map_err(|e| format!("body: {e}"))
    };
    tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Reads every `SPSSODescriptor` entity in a metadata file (an `EntityDescriptor` or an
/// `EntitiesDescriptor` of them).
pub(crate) fn load(path: &Path) -> Result<Vec<SpInfo>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses SP metadata bytes; see [`load`].
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<SpInfo>, String> {
    let doc = Document::parse(bytes, &Limits::metadata()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let mut stack = vec![doc.root()];
    while let Some(el) = stack.pop() {
        if el.is(MD_NS, "EntitiesDescriptor") {
            stack.extend(el.child_elements());
        } else if el.is(MD_NS, "EntityDescriptor") {
            if let Some(info) = entity(el)? {
                out.push(info);
            }
        }
    }
    if out.is_empty() {
        return Err("no EntityDescriptor with an SPSSODescriptor".into());
    }
    Ok(out)
}

fn entity(el: Element<'_, '_>) -> Result<Option<SpInfo>, String> {
    let Some(sso) = el.child_elements().find(|c| c.is(MD_NS, "SPSSODescriptor")) else {
        return Ok(None);
    };
    let entity_id = el
        .attribute("entityID")
        .filter(|v| !v.is_empty())
        .ok_or("EntityDescriptor without entityID")?
        .to_owned();
    let mut info = SpInfo {
        entity_id,
        acs: Vec::new(),
        attribute_services: Vec::new(),
        signing_keys: Vec::new(),
        single_logout: Vec::new(),
    };
    for child in sso.child_elements() {
        if child.is(MD_NS, "KeyDescriptor") {
            if !matches!(child.attribute("use"), None | Some("signing")) {
                continue;
            }
            for cert in descendants(child, xmldsig::DSIG_NS, "X509Certificate") {
                let key = TrustedKey::from_certificate_base64(&cert.text())
                    .map_err(|e| format!("SP {} certificate: {e}", info.entity_id))?;
                info.signing_keys.push(key);
            }
        } else if child.is(MD_NS, "AssertionConsumerService") {
            if child.attribute("Binding") != Some(saml::BINDING_POST) {
                continue;
            }
            let index = index_attr(child)?;
            let location = child
                .attribute("Location")
                .filter(|v| !v.is_empty())
                .ok_or("AssertionConsumerService without Location")?;
            let default = child.attribute("isDefault") == Some("true");
            info.acs.push((index, location.to_owned(), default));
        } else if child.is(MD_NS, "SingleLogoutService") {
            let binding = match child.attribute("Binding") {
                Some(saml::BINDING_REDIRECT) => saml::BINDING_REDIRECT,
                Some(saml::BINDING_POST) => saml::BINDING_POST,
                _ => continue,
            };
            let location = child
                .attribute("Location")
                .filter(|v| !v.is_empty())
                .ok_or("SingleLogoutService without Location")?;
            info.single_logout.push(saml::SloEndpoint {
                binding,
                location: location.to_owned(),
                response_location: child
                    .attribute("ResponseLocation")
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            });
        } else if child.is(MD_NS, "AttributeConsumingService") {
            let index = index_attr(child)?;
            let names = child
                .child_elements()
                .filter(|c| c.is(MD_NS, "RequestedAttribute"))
                .filter_map(|c| c.attribute("Name").map(str::to_owned))
                .collect();
            info.attribute_services.push((index, names));
        }
    }
    Ok(Some(info))
}

fn index_attr(el: Element<'_, '_>) -> Result<u16, String> {
    el.attribute("index")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("{} without a valid index", el.local_name()))
}

fn descendants<'d, 'a>(
    root: Element<'d, 'a>,
    ns: &'static str,
    local: &'static str,
) -> Vec<Element<'d, 'a>> {
    let mut found = Vec::new();
    let mut stack = vec![root];
    while let Some(el) = stack.pop() {
        if el.is(ns, local) {
            found.push(el);
        }
        stack.extend(el.child_elements());
    }
    found
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_acs_attribute_services_and_skips_other_bindings() {
        let xml = br#"<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">
          <md:EntityDescriptor entityID="https://idp.example"><md:IDPSSODescriptor/></md:EntityDescriptor>
          <md:EntityDescriptor entityID="https://sp.example">
            <md:SPSSODescriptor>
              <md:AssertionConsumerService index="0" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sp.example/no"/>
              <md:AssertionConsumerService index="1" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs1"/>
              <md:AssertionConsumerService index="2" isDefault="true" Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs2"/>
              <md:AttributeConsumingService index="0">
                <md:ServiceName xml:lang="it">x</md:ServiceName>
                <md:RequestedAttribute Name="fiscalNumber"/><md:RequestedAttribute Name="name"/>
              </md:AttributeConsumingService>
            </md:SPSSODescriptor>
          </md:EntityDescriptor>
        </md:EntitiesDescriptor>"#;
        let sps = parse(xml).unwrap();
        assert_eq!(sps.len(), 1);
        let sp = &sps[0];
        assert_eq!(sp.entity_id, "https://sp.example");
        assert_eq!(sp.acs_by_index(0), None);
        assert_eq!(sp.acs_by_index(1), Some("https://sp.example/acs1"));
        assert_eq!(sp.default_acs(), Some("https://sp.example/acs2"));
        assert!(sp.has_acs("https://sp.example/acs1"));
        assert_eq!(
            sp.requested_attributes(0).unwrap(),
            ["fiscalNumber".to_owned(), "name".to_owned()]
        );
        assert!(parse(b"<x/>").is_err());
    }
}
