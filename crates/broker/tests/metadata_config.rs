//! `[[metadata]]` validation in `broker::config::load`: the refresh bound and maximum age
//! limits, names that would collide with `[[idp]]` sources, `display_name` only on file
//! sources, and `unsigned` only for a loopback URL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use broker::config::{Overrides, load};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");

fn dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("varco-mdconf-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("session.key"), "ef".repeat(32)).unwrap();
    dir
}

/// The keys `load` reports for a configuration with `metadata` as its sources (or `Ok`).
fn problems(test: &str, metadata: &str) -> Vec<String> {
    let dir = dir(test);
    let toml = format!(
        "[server]\npublic_base_url = \"https://sp.varco.example.org\"\n\
         [sp]\nentity_id = \"https://sp.varco.example.org\"\n\
         key_file = \"{KEYS}/sp-rsa2048.key.pem\"\ncert_file = \"{KEYS}/sp-rsa2048.crt.pem\"\n\
         [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
         url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
         [session]\nkey_file = \"session.key\"\n\
         [state]\ndir = \"state\"\n{metadata}"
    );
    std::fs::write(dir.join("varco.toml"), toml).unwrap();
    match load(&dir.join("varco.toml"), &Overrides::default()) {
        Ok(_) => Vec::new(),
        Err(problems) => problems.into_iter().map(|p| p.key).collect(),
    }
}

fn source(extra: &str) -> String {
    format!(
        "[[metadata]]\nname = \"registry\"\nfederation = \"spid\"\n\
         url = \"https://registry.example/idps.xml\"\n\
         signing_cert_file = \"{KEYS}/idp-rsa3072.crt.pem\"\n{extra}"
    )
}

#[test]
fn refresh_bound_and_max_age_have_upper_limits() {
    assert_eq!(problems("ok", &source("")), Vec::<String>::new());
    assert_eq!(
        problems("max7d", &source("max_refresh_seconds = 604800\n")),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(
            "huge",
            &source("max_refresh_seconds = 18446744073709551615\n")
        ),
        ["metadata[0].max_refresh_seconds"]
    );
    assert_eq!(
        problems("over7d", &source("max_refresh_seconds = 604801\n")),
        ["metadata[0].max_refresh_seconds"]
    );
    assert_eq!(
        problems("age90", &source("max_age_seconds = 7776000\n")),
        Vec::<String>::new()
    );
    for bad in ["0", "7776001"] {
        assert_eq!(
            problems("age", &source(&format!("max_age_seconds = {bad}\n"))),
            ["metadata[0].max_age_seconds"],
            "{bad}"
        );
    }
}

#[test]
fn metadata_names_must_not_take_the_idp_sources_names() {
    let named = source("").replace("name = \"registry\"", "name = \"idp-0\"");
    assert_eq!(problems("idp0", &named), ["metadata[0].name"]);
}

#[test]
fn display_name_only_on_file_sources() {
    assert_eq!(
        problems("display", &source("display_name = \"Every IdP\"\n")),
        ["metadata[0].display_name"]
    );
}

#[test]
fn unsigned_only_for_a_loopback_url() {
    let unsigned = |url: &str| {
        format!(
            "[[metadata]]\nname = \"dev\"\nfederation = \"spid\"\nurl = \"{url}\"\nunsigned = true\n"
        )
    };
    for ok in [
        "http://127.0.0.1:8081/metadata",
        "http://localhost/metadata",
        "http://[::1]:9000/m",
    ] {
        assert_eq!(
            problems("loop", &unsigned(ok)),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    for bad in [
        "https://registry.example/idps.xml",
        "http://registry.example/idps.xml",
        "http://127.0.0.1.evil.example/m",
        "http://localhost@evil.example/m",
        "http://localhost.evil.example/m",
    ] {
        assert_eq!(
            problems("notloop", &unsigned(bad)),
            ["metadata[0].unsigned"],
            "{bad}"
        );
    }
}
