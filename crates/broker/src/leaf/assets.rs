//! The static files of Varco's pages (stylesheet, icons), compiled into the binary and served
//! at `/assets/<name>`: the pages load nothing from any other origin.
//!
//! Pages link an asset as `/assets/<name>?v=<digest>`, where the digest is that of the file's
//! bytes, so the long cache lifetime is safe: a changed file is a new URL.
//!
//! May import: nothing in the crate.

use std::sync::LazyLock;

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
        name: "wallet.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../assets/wallet.js"),
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

/// The content type and bytes of the asset at `path` (`/assets/<name>`); `None` when no such
/// asset exists. The route that serves it is `routes::assets`.
pub fn find(path: &str) -> Option<(&'static str, &'static [u8])> {
    let name = path.strip_prefix("/assets/")?;
    let asset = ASSETS.iter().find(|a| a.name == name)?;
    Some((asset.content_type, asset.bytes))
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, find, url};

    #[test]
    fn every_asset_has_a_versioned_url_and_is_found() {
        for a in ASSETS {
            let u = url(a.name);
            assert!(u.starts_with(&format!("/assets/{}?v=", a.name)), "{u}");
            assert_eq!(u.len(), format!("/assets/{}?v=", a.name).len() + 12);
            let (content_type, _) = find(&format!("/assets/{}", a.name)).unwrap();
            assert_eq!(content_type, a.content_type);
        }
        assert!(find("/assets/../Cargo.toml").is_none());
        assert!(find("/assets/").is_none());
        assert!(find("/assets/nope.css").is_none());
    }
}
