//! Shared helpers: start the dev IdP binary, a blocking HTTP client, HTML field extraction.

#![allow(dead_code)]

use std::fs::{self, File};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use saml::{Federation, IdpDescriptor};
use saml_xml::{Document, Element, Limits};
use xmldsig::{Policy, SigningKey, TrustedKey};

/// A running `varco-dev-idp`, killed on drop.
pub(crate) struct DevIdp {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base_url: String,
    /// The state directory.
    pub(crate) dir: PathBuf,
}

impl DevIdp {
    /// Starts the binary on a free port with `dir` as its state directory.
    pub(crate) fn start(dir: &Path, extra: &[&str]) -> DevIdp {
        fs::create_dir_all(dir).unwrap();
        let log = File::create(dir.join("stderr.log")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_varco-dev-idp"))
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(dir)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let base_url = match line.trim().strip_prefix("varco-dev-idp listening on ") {
            Some(url) => url.to_owned(),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let log = fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                panic!("dev IdP did not start: {line:?}\n{log}");
            }
        };
        DevIdp {
            child,
            base_url,
            dir: dir.to_owned(),
        }
    }

    /// `<base>/sso`.
    pub(crate) fn sso_url(&self) -> String {
        format!("{}/sso", self.base_url)
    }

    /// Stops the process and waits for it.
    pub(crate) fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// True while the process runs.
    pub(crate) fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh, empty directory under the target's temporary directory.
pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dev-idp-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// The wall clock (tests only).
#[allow(clippy::disallowed_methods)]
pub(crate) fn now() -> SystemTime {
    SystemTime::now()
}

/// A blocking client: no redirects followed, no proxy, 4xx/5xx are answers, not errors.
pub(crate) fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET: status and body.
pub(crate) fn get(agent: &ureq::Agent, url: &str) -> (u16, String) {
    let mut r = agent.get(url).call().unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

/// POST a form: status and body.
pub(crate) fn post(agent: &ureq::Agent, url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let mut r = agent.post(url).send_form(form.iter().copied()).unwrap();
    let status = r.status().as_u16();
    (status, r.body_mut().read_to_string().unwrap())
}

/// The `value` of the input named `name` in `html`, unescaped.
pub(crate) fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    unescape(&html[start..end])
}

/// The `action` of the first form in `html`, unescaped.
pub(crate) fn form_action(html: &str) -> String {
    let marker = "<form method=\"post\" action=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    unescape(&html[start..end])
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Directory of the repository's test keys.
pub(crate) fn keys_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../xmldsig/tests/keys")
}

/// A signing key from the test keys (`sp-rsa2048`, `attacker-rsa2048`, ...).
pub(crate) fn test_key(stem: &str) -> SigningKey {
    let read = |suffix: &str| fs::read(keys_dir().join(format!("{stem}.{suffix}"))).unwrap();
    SigningKey::from_pem(&read("key.pem"), &read("crt.pem")).unwrap()
}

/// Fetches `/metadata`, checks its signature with the certificate it carries, and returns
/// the IdP as the SP would configure it.
pub(crate) fn fetch_idp(agent: &ureq::Agent, idp: &DevIdp) -> (IdpDescriptor, String) {
    let (status, xml) = get(agent, &format!("{}/metadata", idp.base_url));
    assert_eq!(status, 200);
    let doc = Document::parse(xml.as_bytes(), &Limits::metadata()).unwrap();
    let root = doc.root();
    let md = "urn:oasis:names:tc:SAML:2.0:metadata";
    assert!(root.is(md, "EntityDescriptor"));
    let sso = child(root, md, "IDPSSODescriptor");
    let key_descriptor = child(sso, md, "KeyDescriptor");
    assert_eq!(key_descriptor.attribute("use"), Some("signing"));
    let cert = find(key_descriptor, xmldsig::DSIG_NS, "X509Certificate").unwrap();
    let key = TrustedKey::from_certificate_base64(&cert.text()).unwrap();
    let verified = xmldsig::verify(root, std::slice::from_ref(&key), &Policy::default()).unwrap();
    assert_eq!(verified.element(), root);

    let mut redirect = None;
    let mut post = None;
    for s in sso
        .child_elements()
        .filter(|c| c.is(md, "SingleSignOnService"))
    {
        let location = s.attribute("Location").map(str::to_owned);
        match s.attribute("Binding") {
            Some(saml::BINDING_REDIRECT) => redirect = location,
            Some(saml::BINDING_POST) => post = location,
            _ => {}
        }
    }
    assert_eq!(redirect.as_deref(), Some(idp.sso_url().as_str()));
    assert_eq!(post.as_deref(), Some(idp.sso_url().as_str()));
    let entity_id = root.attribute("entityID").unwrap().to_owned();
    (
        IdpDescriptor {
            entity_id,
            federation: Federation::Spid,
            sso_redirect_url: redirect,
            sso_post_url: post,
            signing_keys: vec![key],
            single_logout: Vec::new(),
        },
        cert.text().trim().to_owned(),
    )
}

fn child<'d, 'a>(el: Element<'d, 'a>, ns: &str, local: &str) -> Element<'d, 'a> {
    el.child_elements()
        .find(|c| c.is(ns, local))
        .unwrap_or_else(|| panic!("no {local}"))
}

fn find<'d, 'a>(el: Element<'d, 'a>, ns: &str, local: &str) -> Option<Element<'d, 'a>> {
    if el.is(ns, local) {
        return Some(el);
    }
    el.child_elements().find_map(|c| find(c, ns, local))
}
