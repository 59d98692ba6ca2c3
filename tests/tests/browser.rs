//! A citizen's login in a real browser: the Debian `chromium`, headless, driven by
//! playwright-core (tests/browser/login.mjs, npm packages installed by
//! scripts/browser-deps.sh). A route protects `/whoami`; forward-auth sends the anonymous
//! browser to the login page; the page passes axe-core in Italian and English and loads
//! nothing from other origins (CNS configured, so its block is checked too); the SPID button leads to the demo IdP, where mario.rossi signs
//! in; the browser comes back to `/whoami` with his identity. Screenshots of the login page
//! are written to `<target>/artifacts/` and their paths printed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::Browser;
use e2e::stack::{Stack, pct};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    target.join("artifacts")
}

#[test]
fn protected_page_login_page_spid_demo_idp_and_back_in_chromium() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium missing: make test installs the Debian package chromium"
    );
    let deps = Command::new(workspace().join("scripts/browser-deps.sh"))
        .status()
        .expect("scripts/browser-deps.sh");
    assert!(deps.success(), "scripts/browser-deps.sh failed");

    // CNS configured too (forwarded mode: a CA file and the proxy secret), so the page and axe
    // see the CNS block.
    let pki = e2e::scratch("browser-cns");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(pki.join("ca.pem"), ca.self_signed(&key).unwrap().pem()).unwrap();
    // The forwarded mode needs the proxy's shared secret too (issue 18).
    std::fs::write(pki.join("proxy-secret"), "ab".repeat(32)).unwrap();
    let stack = Stack::start_with(&format!(
        "[[route]]\npath_prefix = \"/whoami\"\nmin_loa = \"substantial\"\n\
         [cns]\nca_file = \"{}\"\nheader = \"X-Client-Cert\"\nsecret_file = \"{}\"\n",
        pki.join("ca.pem").display(),
        pki.join("proxy-secret").display()
    ));
    let host = stack.varco.trim_start_matches("http://").to_owned();

    // The protected address, as a Traefik ForwardAuth would ask for it: no session, so a
    // redirect to the login page carrying the level and the address to come back to.
    let mut b = Browser::default();
    let r = b.get_with(
        &format!("{}/auth?mode=redirect", stack.varco),
        &[
            ("X-Forwarded-Proto", "http"),
            ("X-Forwarded-Host", &host),
            ("X-Forwarded-Uri", "/whoami"),
        ],
    );
    assert_eq!(r.status, 302, "{r:?}");
    let login = r.header("location").unwrap().to_owned();
    assert_eq!(
        login,
        format!(
            "{}/login?level=2&return_to={}",
            stack.varco,
            pct(&format!("{}/whoami", stack.varco))
        )
    );

    let out_dir = artifacts();
    let out = Command::new("node")
        .arg(workspace().join("tests/browser/login.mjs"))
        .args([
            stack.varco.as_str(),
            login.as_str(),
            stack.idp.as_str(),
            out_dir.to_str().unwrap(),
        ])
        .output()
        .expect("node (the machine's Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "browser login failed ({}):\n{stdout}\n{stderr}\nvarco log:\n{}",
        out.status,
        stack.varco_log()
    );

    // Every step reported, and the screenshots exist as PNG files.
    for step in [
        "ok - protected address without a session: 401",
        "ok - axe-core on the Italian login page",
        "ok - axe-core on the English login page",
        "ok - SPID button opened from the keyboard",
        "ok - back on the protected address with the identity: Mario Rossi",
        "ok - home page greets the signed-in citizen",
        "ok - no third-party request",
    ] {
        assert!(stdout.contains(step), "missing step {step:?} in:\n{stdout}");
    }
    for name in ["login-page.png", "login-page-en.png"] {
        let path = out_dir.join(name);
        assert!(
            stdout.contains(&format!("artifact: {}", path.display())),
            "{stdout}"
        );
        let png = std::fs::read(&path).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000);
        println!("screenshot: {}", path.display());
    }
}
