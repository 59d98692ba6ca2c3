//! `[cns]` validation in `broker::config::load`: a mode is required, each mode's keys are
//! required with it and refused without it, the CA bundle, CRLs, the listener's certificate
//! and key, the header name and the trusted proxies must all be usable before a port is bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use broker::config::{Overrides, load};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");

fn dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("varco-cnsconf-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("session.key"), "ef".repeat(32)).unwrap();
    // A CNS CA and a TLS certificate for the listener.
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&key).unwrap().pem()).unwrap();
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let server = CertificateParams::new(vec!["cns.example.org".to_owned()]).unwrap();
    std::fs::write(
        dir.join("server.pem"),
        server.self_signed(&key).unwrap().pem(),
    )
    .unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("junk.pem"), "not a certificate").unwrap();
    std::fs::write(dir.join("secret"), format!("{}\n", "5e".repeat(32))).unwrap();
    std::fs::write(dir.join("short"), "too-short").unwrap();
    dir
}

/// The keys `load` reports for a configuration with `cns` as its `[cns]` table (or none).
fn problems(test: &str, cns: &str) -> Vec<String> {
    let dir = dir(test);
    let toml = format!(
        "[server]\npublic_base_url = \"https://sp.varco.example.org\"\n\
         [sp]\nentity_id = \"https://sp.varco.example.org\"\n\
         key_file = \"{KEYS}/sp-rsa2048.key.pem\"\ncert_file = \"{KEYS}/sp-rsa2048.crt.pem\"\n\
         [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
         url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
         [session]\nkey_file = \"session.key\"\n\
         [[metadata]]\nname = \"registry\"\nfederation = \"spid\"\n\
         url = \"https://registry.example/idps.xml\"\n\
         signing_cert_file = \"{KEYS}/idp-rsa3072.crt.pem\"\n\
         [state]\ndir = \"state\"\n[cns]\n{cns}"
    );
    std::fs::write(dir.join("varco.toml"), toml).unwrap();
    match load(&dir.join("varco.toml"), &Overrides::default()) {
        Ok(c) => {
            assert!(c.cns.is_some());
            Vec::new()
        }
        Err(problems) => problems.into_iter().map(|p| p.key).collect(),
    }
}

const LISTEN: &str = "listen = \"127.0.0.1:8443\"\npublic_url = \"https://sp.varco.example.org:8443\"\n\
                      cert_file = \"server.pem\"\nkey_file = \"server.key\"\n";

#[test]
fn both_modes_load_and_one_is_required() {
    assert_eq!(
        problems(
            "header",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"secret\"\n"
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        problems("listen", &format!("ca_file = \"ca.pem\"\n{LISTEN}")),
        Vec::<String>::new()
    );
    assert_eq!(problems("none", "ca_file = \"ca.pem\"\n"), ["cns"]);
}

#[test]
fn ca_bundle_and_crls_must_be_usable() {
    let header = "header = \"X-Client-Cert\"\nsecret_file = \"secret\"\n";
    assert_eq!(
        problems("noca", &format!("ca_file = \"missing.pem\"\n{header}")),
        ["cns.ca_file"]
    );
    assert_eq!(
        problems("junkca", &format!("ca_file = \"junk.pem\"\n{header}")),
        ["cns.ca_file"]
    );
    assert_eq!(
        problems(
            "nocrl",
            &format!("ca_file = \"ca.pem\"\ncrl_files = [\"missing.crl\"]\n{header}")
        ),
        ["cns.crl_files[0]"]
    );
    assert_eq!(
        problems(
            "junkcrl",
            &format!("ca_file = \"ca.pem\"\ncrl_files = [\"junk.pem\"]\n{header}")
        ),
        ["cns.ca_file"]
    );
}

#[test]
fn listener_keys_are_required_with_listen_and_refused_without() {
    assert_eq!(
        problems(
            "bare",
            "ca_file = \"ca.pem\"\nlisten = \"127.0.0.1:8443\"\n"
        ),
        ["cns.public_url", "cns.cert_file", "cns.key_file"]
    );
    assert_eq!(
        problems(
            "http",
            &format!(
                "ca_file = \"ca.pem\"\n{}",
                LISTEN.replace("https://sp", "http://sp")
            )
        ),
        ["cns.public_url"]
    );
    assert_eq!(
        problems(
            "badkey",
            &format!(
                "ca_file = \"ca.pem\"\n{}",
                LISTEN.replace("server.key", "junk.pem")
            )
        ),
        ["cns.cert_file"]
    );
    assert_eq!(
        problems(
            "port",
            &format!(
                "ca_file = \"ca.pem\"\n{}",
                LISTEN.replace("127.0.0.1:8443", "nowhere")
            )
        ),
        ["cns.listen"]
    );
    assert_eq!(
        problems(
            "stray",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"secret\"\ncert_file = \"server.pem\"\n"
        ),
        ["cns.cert_file"]
    );
}

#[test]
fn header_name_and_trusted_proxies_are_checked() {
    assert_eq!(
        problems(
            "hname",
            "ca_file = \"ca.pem\"\nheader = \"X Client Cert\"\nsecret_file = \"secret\"\n"
        ),
        ["cns.header"]
    );
    assert_eq!(
        problems(
            "proxy",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"secret\"\ntrusted_proxies = [\"nope\"]\n"
        ),
        ["cns.trusted_proxies[0]", "cns.trusted_proxies"]
    );
    assert_eq!(
        problems(
            "noproxy",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"secret\"\ntrusted_proxies = []\n"
        ),
        ["cns.trusted_proxies"]
    );
}

#[test]
fn header_mode_requires_a_long_enough_proxy_secret() {
    // Issue 18: a certificate is public; without the proxy's secret any location that
    // forwards client headers would let anyone log in as the card's holder.
    assert_eq!(
        problems(
            "nosecret",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\n"
        ),
        ["cns.secret_file"]
    );
    assert_eq!(
        problems(
            "shortsecret",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"short\"\n"
        ),
        ["cns.secret_file"]
    );
    assert_eq!(
        problems(
            "missingsecret",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"nope\"\n"
        ),
        ["cns.secret_file"]
    );
    assert_eq!(
        problems(
            "badverify",
            "ca_file = \"ca.pem\"\nheader = \"X-Client-Cert\"\nsecret_file = \"secret\"\n\
             verify_header = \"bad header\"\n"
        ),
        ["cns.verify_header"]
    );
}
