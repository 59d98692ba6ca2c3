//! Test-time XML-DSig oracle: drives the real `xmlsec1` CLI (Debian `xmlsec1`
//! 1.2.37, OpenSSL backend) to sign templates and verify signatures.
//!
//! Every call runs `xmlsec1` through `std::process::Command` in a fresh
//! temporary directory that is removed afterwards (set
//! `XMLSEC_ORACLE_KEEP=1` to keep it for debugging).
//!
//! Limits of the oracle, so nobody reads more into a pass than it says:
//! * `xmlsec1 --verify` checks ONE `ds:Signature`: the first one in document
//!   order, or the first one under the element whose ID is `node_id`.
//! * it does not check that the Reference points at the signature's parent
//!   element (no SAML profile checks): that is the library's job.
//! * the verification key is always the certificate passed in: see [`verify`].
#![allow(dead_code, unreachable_pub)] // each test binary uses a subset

use std::ffi::OsString;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// SAML 2.0 protocol namespace (`samlp:`).
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace (`saml:`).
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// `(local name, namespace)` of elements whose `ID` attribute is an XML ID.
pub const RESPONSE: (&str, &str) = ("Response", SAMLP_NS);
/// See [`RESPONSE`].
pub const ASSERTION: (&str, &str) = ("Assertion", SAML_NS);
/// See [`RESPONSE`].
pub const AUTHN_REQUEST: (&str, &str) = ("AuthnRequest", SAMLP_NS);
/// All the SAML elements the fixtures carry an `ID` on.
pub const SAML_ID_ATTRS: &[(&str, &str)] = &[RESPONSE, ASSERTION, AUTHN_REQUEST];

/// IDs used by the fixtures (see `tests/fixtures/README.md`).
pub const RESPONSE_ID: &str = "_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b";
/// See [`RESPONSE_ID`].
pub const ASSERTION_ID: &str = "_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f";
/// See [`RESPONSE_ID`]; also the `InResponseTo` of the Responses.
pub const AUTHN_REQUEST_ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";

/// Algorithm URIs. Everything here is supported by xmlsec1 1.2.37 except
/// [`alg::RSA_PSS_SHA256_MGF1`] (RSA-PSS arrived in xmlsec 1.3).
pub mod alg {
    pub const RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
    pub const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
    pub const RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
    pub const RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
    /// NOT supported by xmlsec1 1.2.37 (`transform not found`).
    pub const RSA_PSS_SHA256_MGF1: &str = "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1";
    pub const ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
    pub const ECDSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384";
    pub const ECDSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512";
    pub const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
    pub const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
    pub const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
    pub const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
    pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
    pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
}

/// Test-only key pairs in `tests/keys/` (see the README there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `idp-rsa2048`: the IdP's usual key.
    Rsa2048,
    /// `idp-rsa3072`.
    Rsa3072,
    /// `idp-p256`: EC P-256.
    P256,
    /// `idp-p384`: EC P-384.
    P384,
    /// `attacker-rsa2048`: unrelated RSA-2048, never trusted.
    Attacker,
    /// `sp-rsa2048`: the SP (Varco) key, signs AuthnRequests.
    Sp,
}

impl Key {
    /// Every key.
    pub const ALL: [Key; 6] = [
        Key::Rsa2048,
        Key::Rsa3072,
        Key::P256,
        Key::P384,
        Key::Attacker,
        Key::Sp,
    ];

    /// File stem in `tests/keys/`.
    pub fn stem(self) -> &'static str {
        match self {
            Key::Rsa2048 => "idp-rsa2048",
            Key::Rsa3072 => "idp-rsa3072",
            Key::P256 => "idp-p256",
            Key::P384 => "idp-p384",
            Key::Attacker => "attacker-rsa2048",
            Key::Sp => "sp-rsa2048",
        }
    }
    /// True for the EC keys.
    pub fn is_ec(self) -> bool {
        matches!(self, Key::P256 | Key::P384)
    }
    /// PKCS#8 PEM private key.
    pub fn key_pem(self) -> PathBuf {
        keys_dir().join(format!("{}.key.pem", self.stem()))
    }
    /// PKCS#8 DER private key (what `ring` loads).
    pub fn key_pk8_der(self) -> PathBuf {
        keys_dir().join(format!("{}.key.pk8.der", self.stem()))
    }
    /// Self-signed certificate, PEM.
    pub fn cert_pem(self) -> PathBuf {
        keys_dir().join(format!("{}.crt.pem", self.stem()))
    }
    /// Self-signed certificate, DER.
    pub fn cert_der(self) -> PathBuf {
        keys_dir().join(format!("{}.crt.der", self.stem()))
    }
}

/// The xmldsig crate's directory, also when another crate's tests include this module.
fn xmldsig_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../xmldsig")
}

/// `tests/keys/`.
pub fn keys_dir() -> PathBuf {
    xmldsig_dir().join("tests/keys")
}

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    xmldsig_dir().join("tests/fixtures")
}

/// Contents of `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> String {
    let path = fixtures_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading fixture {}: {e}", path.display()))
}

/// Path of the `xmlsec1` binary (`$XMLSEC1` if set, else found on `$PATH`).
/// Panics if it is missing: a missing oracle must fail the run, never skip it.
pub fn xmlsec1() -> PathBuf {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("XMLSEC1") {
            return Some(PathBuf::from(p));
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
            .map(|dir| dir.join("xmlsec1"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) if p.is_file() => p.clone(),
        _ => panic!("xmlsec1 not installed: run `make test`, which installs it"),
    }
}

static CALLS: AtomicU64 = AtomicU64::new(0);
static NANOS: AtomicU64 = AtomicU64::new(0);

/// Number of `xmlsec1` runs so far in this process and their total wall time.
pub fn call_stats() -> (u64, Duration) {
    (
        CALLS.load(Ordering::Relaxed),
        Duration::from_nanos(NANOS.load(Ordering::Relaxed)),
    )
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = SEQ.fetch_add(1, Ordering::Relaxed);
            let dir = base.join(format!("varco-xmlsec-{}-{n}", std::process::id()));
            match fs::create_dir(&dir) {
                Ok(()) => return TempDir(dir),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue, // stale, from an old run
                Err(e) => panic!("creating temp dir {}: {e}", dir.display()),
            }
        }
    }
    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, contents).unwrap_or_else(|e| panic!("writing {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("XMLSEC_ORACLE_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

fn run(args: &[OsString]) -> Output {
    let start = Instant::now();
    let out = Command::new(xmlsec1())
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", xmlsec1().display()));
    CALLS.fetch_add(1, Ordering::Relaxed);
    NANOS.fetch_add(start.elapsed().as_nanos() as u64, Ordering::Relaxed);
    out
}

fn id_attr_args(args: &mut Vec<OsString>, id_attrs: &[(&str, &str)]) {
    for (local, ns) in id_attrs {
        args.push("--id-attr:ID".into());
        args.push(format!("{ns}:{local}").into());
    }
}

fn describe(args: &[OsString], out: &Output) -> String {
    let cmd: Vec<_> = args.iter().map(|a| a.to_string_lossy()).collect();
    format!(
        "xmlsec1 {} => {}\n--- stderr ---\n{}--- stdout ---\n{}",
        cmd.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    )
}

/// Signs the first `ds:Signature` template in document order (for the
/// two-signature Response that is the Response's own: use
/// [`sign_response_and_assertion`] there). `id_attrs` lists
/// `(local name, namespace URI)` of elements whose `ID` attribute is an XML ID.
/// Panics with xmlsec1's stderr on failure.
pub fn sign(template: &str, key: Key, id_attrs: &[(&str, &str)]) -> String {
    sign_node(template, key, id_attrs, None)
}

/// Like [`sign`], but signs the first `ds:Signature` at or under the element
/// whose ID is `node_id` (`xmlsec1 --node-id`); that element's ID attribute
/// must be declared through `id_attrs`.
pub fn sign_node(
    template: &str,
    key: Key,
    id_attrs: &[(&str, &str)],
    node_id: Option<&str>,
) -> String {
    try_sign_node(template, key, id_attrs, node_id)
        .unwrap_or_else(|e| panic!("xmlsec1 --sign failed: {e}"))
}

/// [`sign_node`] returning xmlsec1's report instead of panicking, for tests
/// that expect signing to fail (e.g. an algorithm xmlsec1 lacks).
pub fn try_sign_node(
    template: &str,
    key: Key,
    id_attrs: &[(&str, &str)],
    node_id: Option<&str>,
) -> Result<String, String> {
    let dir = TempDir::new();
    let input = dir.write("in.xml", template);
    let output = dir.0.join("out.xml");
    let mut args: Vec<OsString> = vec!["--sign".into(), "--privkey-pem".into()];
    let mut keyarg = key.key_pem().into_os_string();
    keyarg.push(",");
    keyarg.push(key.cert_pem());
    args.push(keyarg);
    id_attr_args(&mut args, id_attrs);
    if let Some(id) = node_id {
        args.push("--node-id".into());
        args.push(id.into());
    }
    args.push("--output".into());
    args.push(output.clone().into());
    args.push(input.into());
    let out = run(&args);
    if !out.status.success() {
        return Err(describe(&args, &out));
    }
    fs::read_to_string(&output).map_err(|e| {
        format!(
            "reading {}: {e}\n{}",
            output.display(),
            describe(&args, &out)
        )
    })
}

/// Value of the `ID="..."` attribute on the first start tag named `tag`
/// (qualified name as written, e.g. `saml:Assertion`).
pub fn id_of(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}");
    let start = xml
        .match_indices(&open)
        .map(|(i, _)| i)
        .find(|&i| {
            xml[i + open.len()..].starts_with(|c: char| c.is_whitespace() || c == '>' || c == '/')
        })
        .unwrap_or_else(|| panic!("no <{tag}> in document"));
    let end = start
        + xml[start..]
            .find('>')
            .unwrap_or_else(|| panic!("unterminated <{tag}>"));
    let head = &xml[start..end];
    let at = head
        .match_indices("ID=")
        .map(|(i, _)| i)
        .find(|&i| head[..i].ends_with(char::is_whitespace))
        .unwrap_or_else(|| panic!("<{tag}> has no ID attribute"));
    let quote = head[at + 3..]
        .chars()
        .next()
        .unwrap_or_else(|| panic!("bad ID on <{tag}>"));
    let value = &head[at + 4..];
    value[..value
        .find(quote)
        .unwrap_or_else(|| panic!("bad ID on <{tag}>"))]
        .to_owned()
}

/// Signs a Response template carrying two signature templates (one after the
/// Response's Issuer, one after the Assertion's) so that both verify:
/// pass 1 signs the Assertion's (`--node-id <assertion ID>`), pass 2 the
/// Response's (`--node-id <response ID>`), whose digest then covers the
/// already-signed Assertion.
pub fn sign_response_and_assertion(template: &str, key: Key) -> String {
    sign_response_and_assertion_with(template, key, key)
}

/// [`sign_response_and_assertion`] with a different key for each signature.
pub fn sign_response_and_assertion_with(
    template: &str,
    response_key: Key,
    assertion_key: Key,
) -> String {
    let response_id = id_of(template, "samlp:Response");
    let assertion_id = id_of(template, "saml:Assertion");
    let inner = sign_node(
        template,
        assertion_key,
        &[RESPONSE, ASSERTION],
        Some(&assertion_id),
    );
    sign_node(
        &inner,
        response_key,
        &[RESPONSE, ASSERTION],
        Some(&response_id),
    )
}

/// Verifies one signature with `xmlsec1 --verify`, the key taken only from
/// `cert_pem`. `node_id` picks the signature (first one at or under that
/// element); `None` means the first `ds:Signature` in the document.
/// `Err` carries xmlsec1's output.
///
/// Flags: `--enabled-reference-uris same-doc` and `--pubkey-cert-pem <cert>`.
/// Key data: `--enabled-key-data key-name`, NOT `x509`: with x509 enabled,
/// xmlsec1 1.2.37 takes the key from the document's own `ds:X509Certificate`
/// whenever that certificate chains to a trusted root, and its OpenSSL
/// backend trusts the system CA store by default. With only `key-name`
/// enabled the document's `X509Data`/`KeyValue` are ignored and the key is
/// the one loaded from `cert_pem`.
pub fn verify(
    xml: &str,
    cert_pem: &Path,
    id_attr: (&str, &str),
    node_id: Option<&str>,
) -> Result<(), String> {
    verify_with_id_attrs(xml, cert_pem, &[id_attr], node_id)
}

/// [`verify`] with several ID-attribute declarations.
pub fn verify_with_id_attrs(
    xml: &str,
    cert_pem: &Path,
    id_attrs: &[(&str, &str)],
    node_id: Option<&str>,
) -> Result<(), String> {
    let dir = TempDir::new();
    let input = dir.write("in.xml", xml);
    let mut args: Vec<OsString> = vec![
        "--verify".into(),
        "--enabled-reference-uris".into(),
        "same-doc".into(),
        "--enabled-key-data".into(),
        "key-name".into(),
        "--pubkey-cert-pem".into(),
        cert_pem.into(),
    ];
    id_attr_args(&mut args, id_attrs);
    if let Some(id) = node_id {
        args.push("--node-id".into());
        args.push(id.into());
    }
    args.push(input.into());
    let out = run(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stderr.lines().any(|l| l.trim() == "OK") {
        Ok(())
    } else {
        Err(describe(&args, &out))
    }
}

/// Rewrites the `Algorithm` of every `SignatureMethod` to `sig_method_uri`
/// and of every `DigestMethod` to `digest_uri`. Panics if there is none.
pub fn template_with_algorithms(template: &str, sig_method_uri: &str, digest_uri: &str) -> String {
    let t = set_algorithm(template, "SignatureMethod", sig_method_uri);
    set_algorithm(&t, "DigestMethod", digest_uri)
}

fn set_algorithm(xml: &str, local: &str, uri: &str) -> String {
    let mut out = String::with_capacity(xml.len());
    let mut rest = xml;
    let mut count = 0;
    while let Some(lt) = rest.find('<') {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        let end = rest.find('>').map_or(rest.len(), |e| e + 1);
        let tag = &rest[..end];
        let name_end = tag[1..]
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .map_or(tag.len(), |i| i + 1);
        let qname = &tag[1..name_end];
        if qname == local || qname.ends_with(&format!(":{local}")) {
            let at = tag
                .find("Algorithm=")
                .unwrap_or_else(|| panic!("<{qname}> without Algorithm"));
            let quote = &tag[at + 10..at + 11];
            let vstart = at + 11;
            let vend = vstart
                + tag[vstart..]
                    .find(quote)
                    .unwrap_or_else(|| panic!("bad Algorithm on <{qname}>"));
            out.push_str(&tag[..vstart]);
            out.push_str(uri);
            out.push_str(&tag[vend..]);
            count += 1;
        } else {
            out.push_str(tag);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    assert!(count > 0, "template has no <{local}>");
    out
}

/// The transform names `xmlsec1 --list-transforms` reports (e.g.
/// `rsa-sha256`, `ecdsa-sha384`, `sha512`).
pub fn transforms() -> Vec<String> {
    let args: Vec<OsString> = vec!["--list-transforms".into()];
    let out = run(&args);
    assert!(out.status.success(), "{}", describe(&args, &out));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| !l.starts_with("Registered"))
        .flat_map(|l| l.split(','))
        .map(|s| s.trim().trim_matches('"').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}
