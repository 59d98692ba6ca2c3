//! The static files of Varco's pages (stylesheet, icons), compiled into the binary and served
//! at `/assets/<name>`: the pages load nothing from any other origin.
//!
//! Pages link an asset as `/assets/<name>?v=<digest>`, where the digest is that of the file's
//! bytes, so the long cache lifetime is safe: a changed file is a new URL.

use std::sync::LazyLock;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use crate::leaf::http::{Body, set};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "varco.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../assets/varco.css"),
    },
    Asset {
        name: "spid.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/spid.svg"),
    },
    Asset {
        name: "cie.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/cie.svg"),
    },
    Asset {
        name: "eidas.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/eidas.svg"),
    },
    Asset {
        name: "cns.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/cns.svg"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../assets/favicon.svg"),
    },
];

/// `(name, versioned URL)` of every asset, computed once.
static URLS: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|a| {
            let digest = ring::digest::digest(&ring::digest::SHA256, a.bytes);
            let version: String = digest
                .as_ref()
                .iter()
                .take(6)
                .map(|b| format!("{b:02x}"))
                .collect();
            (a.name, format!("/assets/{}?v={version}", a.name))
        })
        .collect()
});

/// The URL pages use for asset `name` (versioned by content), or the plain path for a name
/// that is not embedded.
pub fn url(name: &str) -> String {
    URLS.iter()
        .find(|(n, _)| *n == name)
        .map_or_else(|| format!("/assets/{name}"), |(_, u)| u.clone())
}

/// `GET /assets/<name>`: the file with its content type and a one-year immutable cache
/// lifetime; `None` when no such asset exists.
pub fn serve(path: &str) -> Option<Response<Body>> {
    let name = path.strip_prefix("/assets/")?;
    let asset = ASSETS.iter().find(|a| a.name == name)?;
    let mut r = Response::new(Full::new(Bytes::from_static(asset.bytes)));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    set(
        &mut r,
        header::CACHE_CONTROL,
        "public, max-age=31536000, immutable",
    );
    set(&mut r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // An SVG opened directly must not run anything.
    set(
        &mut r,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'",
    );
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, serve, url};

    #[test]
    fn every_asset_has_a_versioned_url_and_is_served() {
        for a in ASSETS {
            let u = url(a.name);
            assert!(u.starts_with(&format!("/assets/{}?v=", a.name)), "{u}");
            assert_eq!(u.len(), format!("/assets/{}?v=", a.name).len() + 12);
            let r = serve(&format!("/assets/{}", a.name)).unwrap();
            assert_eq!(r.headers()["content-type"], a.content_type);
            assert!(
                r.headers()["cache-control"]
                    .to_str()
                    .unwrap()
                    .contains("max-age=31536000")
            );
        }
        assert!(serve("/assets/../Cargo.toml").is_none());
        assert!(serve("/assets/").is_none());
        assert!(serve("/assets/nope.css").is_none());
    }
}
