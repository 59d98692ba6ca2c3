//! Shared by `tests/c14n_xmlsec.rs`: the c14n vector manifest and the
//! `xmlsec1` oracle. Nothing here depends on `saml_xml`, so the oracle can be
//! exercised on its own.
//!
//! The oracle: `xmlsec1 --sign --store-references` prints, for every
//! `<ds:Reference>`, the bytes it hashes ("PreDigest data"). We insert a
//! signature template whose single Reference selects the target element and
//! whose last transform is exclusive c14n with the case's parameters, and we
//! read that buffer back.
//!
//! * The template goes right after the root start tag, with no whitespace
//!   around it, so no text node of the document changes. It carries
//!   `Id="varco-oracle"` and is removed again by the enveloped-signature
//!   transform (and skipped by the path expressions below).
//! * The target is selected with `#xpointer(...)` URIs, never bare-name `#id`
//!   (XML-DSig strips comments from bare-name references even for
//!   `#WithComments`; XPointer keeps them). `/*` selects the root element and
//!   its subtree, not the document node, so comments and PIs outside the root
//!   element are left out, exactly as when canonicalizing the root `Element`.
//! * "exclude signature" is an XPath 1.0 filter transform that drops the
//!   first `ds:Signature` child element of the target and everything under it
//!   (node identity via `count(A | B) != count(A)`).
//! * Signing uses an HMAC key that xmlsec1 generates in memory
//!   (`--gen-key:k hmac-192`): no key files, no openssl run.

use std::fmt::Write as _;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The XML-DSig namespace.
pub(crate) const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// `Id` of the template we insert; no vector may use it.
const TEMPLATE_ID: &str = "varco-oracle";

/// Directory holding the vectors, the manifest and the goldens.
pub(crate) fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/c14n")
}

/// Which element of the document is canonicalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The document element.
    Root,
    /// 1-based indexes of element children, starting below the root.
    Path(Vec<usize>),
    /// The first element (document order) whose `ID` attribute has this value.
    Id(String),
}

/// One manifest line.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    /// Line number in manifest.txt (1-based).
    pub(crate) line: usize,
    /// Input file name, `NNN-short-name.xml`.
    pub(crate) file: String,
    pub(crate) target: Target,
    pub(crate) with_comments: bool,
    /// InclusiveNamespaces PrefixList entries (`#default` for the default namespace).
    pub(crate) prefixes: Vec<String>,
    /// Leave out the first `ds:Signature` child element of the target.
    pub(crate) exclude_signature: bool,
    /// Distinguishes several runs over the same input file.
    pub(crate) variant: Option<String>,
}

impl Case {
    /// Name of the golden file: `NNN-short-name.c14n` or `NNN-short-name.VARIANT.c14n`.
    pub(crate) fn golden_name(&self) -> String {
        let stem = self.file.strip_suffix(".xml").unwrap_or(&self.file);
        match &self.variant {
            Some(v) => format!("{stem}.{v}.c14n"),
            None => format!("{stem}.c14n"),
        }
    }

    /// Short description used in failure reports.
    pub(crate) fn describe(&self) -> String {
        format!(
            "{} (manifest line {}: target {}, comments {}, prefixes {}, exclude-signature {})",
            self.golden_name(),
            self.line,
            match &self.target {
                Target::Root => "/".to_owned(),
                Target::Path(p) => p.iter().fold(String::new(), |mut s, i| {
                    let _ = write!(s, "/{i}");
                    s
                }),
                Target::Id(id) => id.clone(),
            },
            if self.with_comments { "yes" } else { "no" },
            if self.prefixes.is_empty() {
                "-".to_owned()
            } else {
                self.prefixes.join(",")
            },
            if self.exclude_signature { "yes" } else { "no" },
        )
    }
}

fn yes_no(s: &str, what: &str, line: usize) -> Result<bool, String> {
    match s {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(format!(
            "manifest line {line}: {what} must be yes or no, got {s:?}"
        )),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Parses manifest.txt (format documented at its top and in README.md).
pub(crate) fn parse_manifest(text: &str) -> Result<Vec<Case>, String> {
    let mut cases = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        // Blank lines and lines starting with '#' are comments.
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if !(5..=6).contains(&fields.len()) {
            return Err(format!(
                "manifest line {line}: expected 5 or 6 fields, got {}",
                fields.len()
            ));
        }
        let file = fields[0];
        if !file.ends_with(".xml") || !is_token(file) {
            return Err(format!("manifest line {line}: bad file name {file:?}"));
        }
        let target = match fields[1] {
            "/" => Target::Root,
            t if t.starts_with('/') => {
                let mut path = Vec::new();
                for part in t[1..].split('/') {
                    match part.parse::<usize>() {
                        Ok(n) if n >= 1 => path.push(n),
                        _ => return Err(format!("manifest line {line}: bad path target {t:?}")),
                    }
                }
                Target::Path(path)
            }
            t if is_token(t) => Target::Id(t.to_owned()),
            t => return Err(format!("manifest line {line}: bad target {t:?}")),
        };
        let with_comments = yes_no(fields[2], "comments", line)?;
        let prefixes = if fields[3] == "-" {
            Vec::new()
        } else {
            fields[3].split(',').map(str::to_owned).collect::<Vec<_>>()
        };
        for p in &prefixes {
            if p != "#default" && !is_token(p) {
                return Err(format!("manifest line {line}: bad prefix {p:?}"));
            }
        }
        let exclude_signature = yes_no(fields[4], "exclude-signature", line)?;
        let variant = match fields.get(5) {
            Some(v) if is_token(v) => Some((*v).to_owned()),
            Some(v) => return Err(format!("manifest line {line}: bad variant {v:?}")),
            None => None,
        };
        cases.push(Case {
            line,
            file: file.to_owned(),
            target,
            with_comments,
            prefixes,
            exclude_signature,
            variant,
        });
    }
    Ok(cases)
}

/// Reads and parses the manifest.
pub(crate) fn load_manifest() -> Result<Vec<Case>, String> {
    let path = vectors_dir().join("manifest.txt");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_manifest(&text)
}

/// XPath 1.0 expression selecting the target element in the document that
/// holds the template (the template is the root's first element child).
fn target_xpath(target: &Target) -> String {
    match target {
        Target::Root => "/*".to_owned(),
        Target::Id(id) => format!("(//*[@ID='{id}'])[1]"),
        Target::Path(path) => {
            let mut s = "/*".to_owned();
            for (depth, idx) in path.iter().enumerate() {
                if depth == 0 {
                    let _ = write!(s, "/*[not(@Id='{TEMPLATE_ID}')][{idx}]");
                } else {
                    let _ = write!(s, "/*[{idx}]");
                }
            }
            s
        }
    }
}

/// The signature template for one case.
pub(crate) fn template(case: &Case) -> String {
    let target = target_xpath(&case.target);
    let c14n = if case.with_comments {
        "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
    } else {
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    };
    let filter = if case.exclude_signature {
        let sig = format!(
            "{target}/*[local-name()='Signature' and namespace-uri()='{DSIG_NS}' and not(@Id='{TEMPLATE_ID}')][1]"
        );
        format!(
            "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>\
             count(ancestor-or-self::node() | {sig}) != count(ancestor-or-self::node())\
             </ds:XPath></ds:Transform>"
        )
    } else {
        String::new()
    };
    let inclusive = if case.prefixes.is_empty() {
        String::new()
    } else {
        format!(
            "<ec:InclusiveNamespaces xmlns:ec=\"http://www.w3.org/2001/10/xml-exc-c14n#\" PrefixList=\"{}\"/>",
            case.prefixes.join(" ")
        )
    };
    format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\" Id=\"{TEMPLATE_ID}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#hmac-sha256\"/>\
         <ds:Reference URI=\"#xpointer({target})\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
         {filter}<ds:Transform Algorithm=\"{c14n}\">{inclusive}</ds:Transform>\
         </ds:Transforms><ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
         <ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:KeyName>k</ds:KeyName></ds:KeyInfo>\
         </ds:Signature>"
    )
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Inserts `insert` as the first content of the root element, right after its
/// start tag (a self-closing root tag is opened and closed around it).
pub(crate) fn insert_after_root_start(doc: &[u8], insert: &[u8]) -> Result<Vec<u8>, String> {
    let mut i = 0;
    // Skip the prolog: XML declaration, PIs, comments, whitespace, BOM.
    let start = loop {
        let lt = find(doc, b"<", i).ok_or("no root element")?;
        if doc[lt..].starts_with(b"<?") {
            i = find(doc, b"?>", lt).ok_or("unterminated PI")? + 2;
        } else if doc[lt..].starts_with(b"<!--") {
            i = find(doc, b"-->", lt).ok_or("unterminated comment")? + 3;
        } else if doc[lt..].starts_with(b"<!") {
            return Err("DOCTYPE in a vector".to_owned());
        } else {
            break lt;
        }
    };
    // Find the '>' closing the start tag; '>' may appear in attribute values.
    let mut quote = None;
    let mut k = start + 1;
    loop {
        let c = *doc.get(k).ok_or("unterminated root start tag")?;
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => break,
            None => {}
        }
        k += 1;
    }
    let mut out = Vec::with_capacity(doc.len() + insert.len() + 64);
    if doc[k - 1] == b'/' {
        let name_end = doc[start + 1..]
            .iter()
            .position(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>')
            .ok_or("bad root start tag")?
            + start
            + 1;
        out.extend_from_slice(&doc[..k - 1]);
        out.push(b'>');
        out.extend_from_slice(insert);
        out.extend_from_slice(b"</");
        out.extend_from_slice(&doc[start + 1..name_end]);
        out.push(b'>');
    } else {
        out.extend_from_slice(&doc[..=k]);
        out.extend_from_slice(insert);
    }
    out.extend_from_slice(&doc[k + 1..]);
    Ok(out)
}

/// Locates `xmlsec1` (`$XMLSEC1` or `xmlsec1` on PATH) and checks it runs.
pub(crate) fn xmlsec1_binary() -> Result<PathBuf, String> {
    let bin = std::env::var_os("XMLSEC1").map_or_else(|| PathBuf::from("xmlsec1"), PathBuf::from);
    match Command::new(&bin).arg("--version").output() {
        Ok(out) if out.status.success() => Ok(bin),
        Ok(out) => Err(format!(
            "`{} --version` failed ({}): {}",
            bin.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(format!(
            "the xmlsec1 binary ({}) was not found: it is the oracle of this test. \
             Install the Debian package `xmlsec1` (`make test` does), or set XMLSEC1=/path/to/xmlsec1",
            bin.display()
        )),
        Err(e) => Err(format!("cannot run {}: {e}", bin.display())),
    }
}

const START: &[u8] = b"== PreDigest data - start buffer:\n";
const END: &[u8] = b"\n== PreDigest data - end buffer\n";

/// Runs xmlsec1 for one case in `dir`, returning the canonical bytes.
pub(crate) fn oracle(
    bin: &Path,
    dir: &Path,
    index: usize,
    case: &Case,
    doc: &[u8],
) -> Result<Vec<u8>, String> {
    let input = dir.join(format!("case-{index}.xml"));
    let output = dir.join(format!("case-{index}.signed.xml"));
    let doc = insert_after_root_start(doc, template(case).as_bytes())?;
    std::fs::write(&input, &doc).map_err(|e| format!("writing {}: {e}", input.display()))?;
    let out = Command::new(bin)
        .args([
            "--sign",
            "--store-references",
            "--gen-key:k",
            "hmac-192",
            "--output",
        ])
        .arg(&output)
        .arg(&input)
        .output()
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "xmlsec1 failed ({}) on {}:\n{}",
            out.status,
            input.display(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let stdout = out.stdout;
    let s = find(&stdout, START, 0).ok_or("xmlsec1 printed no PreDigest buffer")? + START.len();
    let e = stdout
        .windows(END.len())
        .rposition(|w| w == END)
        .filter(|&e| e >= s)
        .ok_or("xmlsec1 PreDigest buffer not terminated")?;
    if find(&stdout[e + END.len()..], START, 0).is_some() {
        return Err("xmlsec1 printed more than one PreDigest buffer".to_owned());
    }
    Ok(stdout[s..e].to_vec())
}

/// A fresh, uniquely named directory under the system temp dir.
pub(crate) fn unique_temp_dir(tag: &str) -> Result<PathBuf, String> {
    let base = std::env::temp_dir();
    let pid = std::process::id();
    for n in 0..10_000u32 {
        let dir = base.join(format!("varco-{tag}-{pid}-{n}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(format!("creating {}: {e}", dir.display())),
        }
    }
    Err("no free temp dir name".to_owned())
}

/// Canonical bytes from the oracle, or why there are none.
pub(crate) type OracleResult = Result<Vec<u8>, String>;

/// Runs the oracle for every case, in parallel; results are in case order.
pub(crate) fn oracle_all(bin: &Path, dir: &Path, cases: &[Case]) -> Vec<OracleResult> {
    let results: Mutex<Vec<Option<OracleResult>>> = Mutex::new(vec![None; cases.len()]);
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(4, |n| n.get())
        .clamp(1, 8);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(case) = cases.get(i) else { break };
                    let path = vectors_dir().join(&case.file);
                    let r = std::fs::read(&path)
                        .map_err(|e| format!("reading {}: {e}", path.display()))
                        .and_then(|doc| oracle(bin, dir, i, case, &doc));
                    if let Ok(mut guard) = results.lock() {
                        guard[i] = Some(r);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("oracle worker did not finish".to_owned())))
        .collect()
}

/// Renders bytes for a failure report: Rust string escapes make CR, tabs and
/// trailing whitespace visible.
pub(crate) fn show(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}
