//! The login page over HTTP against the built binaries: language from `Accept-Language` or
//! `?lang=`, one link per IdP carrying the level and return address, federations without
//! IdPs hidden, `/` showing the same page to anonymous visitors, the assets route, and the
//! security headers on HTML pages; IdP display names, the CIE block and the SPID order
//! changing between requests; the POST-binding form's script nonce. The browser test
//! (browser.rs) drives the same page in Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use e2e::stack::{Stack, pct};
use e2e::{Browser, Process, Reply, binary, free_port, scratch};

fn get(b: &mut Browser, url: &str, lang: Option<&str>) -> Reply {
    match lang {
        Some(l) => b.get_with(url, &[("Accept-Language", l)]),
        None => b.get(url),
    }
}

fn link(idp: &str, level: u8, return_to: &str) -> String {
    format!(
        "href=\"/saml/login?idp={}&amp;level={level}&amp;return_to={}\"",
        pct(idp),
        pct(return_to)
    )
}

#[test]
fn login_page_languages_links_assets_and_headers() {
    let stack = Stack::start();
    let mut b = Browser::default();

    // English from Accept-Language, the requested level on every link.
    let url = format!("{}/login?level=3&return_to=%2Faccount", stack.varco);
    let en = get(&mut b, &url, Some("en-GB,en;q=0.9,it;q=0.5"));
    assert_eq!(en.status, 200, "{}", en.body);
    assert!(en.body.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(en.body.contains("Sign in with SPID"), "{}", en.body);
    assert!(
        en.body.contains(&link(&stack.idp, 3, "/account")),
        "{}",
        en.body
    );
    assert!(en.body.contains(&link(&stack.eidas_idp, 3, "/account")));
    assert!(en.body.contains("Login with eIDAS"));
    assert!(
        !en.body.contains("cie-h"),
        "no CIE IdP configured: no CIE block"
    );
    assert!(
        en.body
            .contains("href=\"/login?lang=it&amp;level=3&amp;return_to=%2Faccount\""),
        "the switch keeps the parameters: {}",
        en.body
    );
    let csp = en.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'self';"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(en.header("cache-control"), Some("no-store"));
    assert_eq!(en.header("vary"), Some("Accept-Language"));
    assert!(!en.body.contains("<script") && !en.body.contains("<style"));

    // `?lang=` wins over the header; no header means Italian; no level means the default (2).
    let it = get(&mut b, &format!("{url}&lang=it"), Some("en"));
    assert!(it.body.starts_with("<!DOCTYPE html>\n<html lang=\"it\">"));
    assert!(it.body.contains("Entra con SPID"));
    let plain = get(
        &mut b,
        &format!("{}/login?return_to=%2Fx", stack.varco),
        None,
    );
    assert!(plain.body.contains("<html lang=\"it\">"));
    assert!(
        plain.body.contains(&link(&stack.idp, 2, "/x")),
        "{}",
        plain.body
    );
    assert!(
        plain
            .body
            .contains("href=\"/login?lang=en&amp;return_to=%2Fx\"")
    );

    // The home page shows the same choice to an anonymous visitor, returning to `/`.
    let home = get(&mut b, &format!("{}/", stack.varco), Some("it"));
    assert_eq!(home.status, 200);
    assert!(
        home.body.contains(&link(&stack.idp, 2, "/")),
        "{}",
        home.body
    );
    assert!(home.body.contains("href=\"/?lang=en\""));

    // The stylesheet and icons the page names are served by Varco, cacheable for a year.
    let css = plain
        .body
        .split("href=\"")
        .find_map(|s| s.strip_prefix("/assets/varco.css?v="))
        .map(|s| format!("/assets/varco.css?v={}", &s[..s.find('"').unwrap()]))
        .unwrap();
    let r = b.get(&format!("{}{css}", stack.varco));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert!(
        r.header("cache-control")
            .unwrap()
            .contains("max-age=31536000"),
        "{r:?}"
    );
    assert!(r.body.contains(".btn"));
    let svg = b.get(&format!("{}/assets/spid.svg", stack.varco));
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(svg.body.starts_with("<svg"));
    assert_eq!(
        b.get(&format!("{}/assets/missing.css", stack.varco)).status,
        404
    );

    // Error pages wear the same layout and headers.
    let missing = b.get(&format!("{}/nowhere", stack.varco));
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("/assets/varco.css?v="));
    assert!(missing.header("content-security-policy").is_some());

    // A return address off the allowed hosts is refused before any IdP is offered.
    let evil = b.get(&format!(
        "{}/login?return_to={}",
        stack.varco,
        pct("https://evil.example/")
    ));
    assert_eq!(evil.status, 400);
    assert!(!evil.body.contains("/saml/login"));
}

/// An IdP metadata document for `entity_id` (signing certificate: the SP's own, enough for a
/// configuration that is only rendered, never logged into).
fn entity(dir: &Path, entity_id: &str) -> String {
    let pem = std::fs::read_to_string(dir.join("sp.crt.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{entity_id}/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    )
}

#[test]
fn display_names_cie_block_and_spid_order_per_request() {
    let dir = scratch("login-names");
    e2e::sp_credentials(&dir, "varco-names");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("a.xml", &entity(&dir, "https://id.a.example"));
    write("b.xml", &entity(&dir, "https://b.example/idp"));
    write("cie.xml", &entity(&dir, "https://cie.example/idp"));
    write(
        "both.xml",
        &format!(
            "<md:EntitiesDescriptor xmlns:md=\"urn:oasis:names:tc:SAML:2.0:metadata\">{}{}\
             </md:EntitiesDescriptor>",
            entity(&dir, "https://c.example"),
            entity(&dir, "https://d.example")
        ),
    );
    let port = free_port();
    let base = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n\
         [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\nbinding = \"post\"\n\
         [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
         url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
         [session]\nkey_file = \"session.key\"\ncookie_secure = false\n"
    );

    // A name is for one IdP: on an aggregate it is a configuration error.
    write(
        "bad.toml",
        &format!("{base}[[idp]]\nmetadata_file = \"both.xml\"\ndisplay_name = \"Both\"\n"),
    );
    let out = Command::new(binary("varco"))
        .args(["check-config", dir.join("bad.toml").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("idp[0].display_name"), "{stderr}");

    write(
        "varco.toml",
        &format!(
            "{base}[[idp]]\nmetadata_file = \"a.xml\"\ndisplay_name = \"Gestore <A>\"\n\
             [[idp]]\nmetadata_file = \"b.xml\"\n\
             [[idp]]\nmetadata_file = \"cie.xml\"\nfederation = \"cie\"\n"
        ),
    );
    let mut varco = Process::start(
        "varco",
        &binary("varco"),
        &[
            "serve",
            "--config",
            dir.join("varco.toml").to_str().unwrap(),
        ],
        &dir,
    );
    let url = format!("http://127.0.0.1:{port}");
    varco.wait_ready(&format!("{url}/healthz"));
    let mut b = Browser::default();
    let page = b.get(&format!("{url}/login?return_to=%2F"));
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains(">Gestore &lt;A&gt;</a>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(">b.example</a>"),
        "host as the default name"
    );
    assert!(page.body.contains("Entra con CIE"));
    assert!(
        page.body.contains(&format!(
            "id=\"cie-button\" {}",
            link("https://cie.example/idp", 2, "/")
        )),
        "one CIE IdP: the button is the link: {}",
        page.body
    );
    assert!(
        !page.body.contains("eidas-h"),
        "no eIDAS node: no eIDAS block"
    );

    // The SPID list is shuffled per request: over 40 pages both orders of two IdPs appear
    // (the chance that one order comes out 40 times running is 2^-39).
    let mut orders = std::collections::HashSet::new();
    for _ in 0..40 {
        let body = b.get(&format!("{url}/login")).body;
        let a = body.find("id.a.example").unwrap();
        let b_ = body.find("b.example%2Fidp").unwrap();
        orders.insert(a < b_);
    }
    assert_eq!(orders.len(), 2, "the SPID order never changed");

    // The HTTP-POST binding's self-submitting form: its one script is allowed by a nonce.
    let form = b.get(&format!(
        "{url}/saml/login?idp={}&level=2&return_to=%2F",
        pct("https://id.a.example")
    ));
    assert_eq!(form.status, 200, "{}", form.body);
    let csp = form.header("content-security-policy").unwrap().to_owned();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|n| n.split('\'').next())
        .unwrap();
    assert_eq!(nonce.len(), 32, "{csp}");
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(
        form.body.contains(&format!("<script nonce=\"{nonce}\">")),
        "{}",
        form.body
    );
}
