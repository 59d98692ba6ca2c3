//! Differential tests of exclusive XML canonicalization against `xmlsec1`.
//!
//! The vectors, their manifest and the expected outputs (goldens, produced
//! by `xmlsec1`) live in `tests/vectors/c14n/`; see its README.md.
//!
//! * `manifest_covers_every_vector`: the manifest is well formed, has at
//!   least 50 cases, lists every `.xml` file, and every golden belongs to a case.
//! * `c14n_matches_golden_files`: our output equals the committed goldens.
//! * `c14n_matches_xmlsec1`: `xmlsec1` is run at test time for every case;
//!   our output must equal its output, and so must the golden. The test FAILS
//!   when `xmlsec1` is missing. With `VARCO_C14N_BLESS=1` it (re)writes the
//!   goldens from `xmlsec1` instead of comparing them.

mod c14n_support;

use std::collections::BTreeSet;

use c14n_support::{Case, DSIG_NS, Target, load_manifest, show, vectors_dir};
use saml_xml::{Document, Element, Limits};

/// Depth-first search for the first element whose `ID` attribute is `id`.
fn find_by_id<'a, 'd>(e: Element<'a, 'd>, id: &str) -> Option<Element<'a, 'd>> {
    if e.attribute("ID") == Some(id) {
        return Some(e);
    }
    e.child_elements().find_map(|c| find_by_id(c, id))
}

/// Canonicalizes one case with saml-xml. `Err` describes why no output was made.
fn ours(case: &Case) -> Result<Vec<u8>, String> {
    let path = vectors_dir().join(&case.file);
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let doc =
        Document::parse(&bytes, &Limits::default()).map_err(|e| format!("parse error: {e:?}"))?;
    let root = doc.root();
    let target = match &case.target {
        Target::Root => root,
        Target::Id(id) => {
            find_by_id(root, id).ok_or_else(|| format!("no element with ID={id:?}"))?
        }
        Target::Path(path) => {
            let mut e = root;
            for (depth, &idx) in path.iter().enumerate() {
                e = e.child_elements().nth(idx - 1).ok_or_else(|| {
                    format!("path step {} (child #{idx}) does not exist", depth + 1)
                })?;
            }
            e
        }
    };
    let exclude = if case.exclude_signature {
        let sig = target
            .child_elements()
            .find(|c| c.local_name() == "Signature" && c.namespace() == Some(DSIG_NS))
            .ok_or("exclude-signature is set but the target has no ds:Signature child")?;
        Some(sig.node_id())
    } else {
        None
    };
    let prefixes: Vec<&str> = case.prefixes.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    saml_xml::c14n::canonicalize(
        target,
        &saml_xml::c14n::Options {
            with_comments: case.with_comments,
            inclusive_prefixes: &prefixes,
            exclude,
        },
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    Ok(out)
}

fn cases() -> Vec<Case> {
    match load_manifest() {
        Ok(c) => c,
        Err(e) => panic!("bad manifest: {e}"),
    }
}

fn finish(what: &str, total: usize, failures: &[String]) {
    if !failures.is_empty() {
        panic!(
            "{} of {total} c14n cases failed ({what}):\n\n{}\n",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

#[test]
fn manifest_covers_every_vector() {
    let cases = cases();
    assert!(
        cases.len() >= 50,
        "manifest has only {} cases, want at least 50",
        cases.len()
    );

    let mut problems = Vec::new();
    let mut listed = BTreeSet::new();
    let mut goldens = BTreeSet::new();
    for case in &cases {
        listed.insert(case.file.clone());
        if !goldens.insert(case.golden_name()) {
            problems.push(format!(
                "{}: golden name used twice (add a distinct VARIANT)",
                case.describe()
            ));
        }
        if !vectors_dir().join(&case.file).is_file() {
            problems.push(format!("{}: input file missing", case.describe()));
        }
        if !vectors_dir().join(case.golden_name()).is_file() {
            problems.push(format!("{}: golden file missing", case.describe()));
        }
    }
    let entries = std::fs::read_dir(vectors_dir()).expect("vectors dir readable");
    for entry in entries {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".xml") && !listed.contains(&name) {
            problems.push(format!("{name} is not in manifest.txt"));
        }
        if name.ends_with(".c14n") && !goldens.contains(&name) {
            problems.push(format!(
                "{name} belongs to no manifest case (stale golden?)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "manifest problems:\n{}",
        problems.join("\n")
    );
}

#[test]
fn c14n_matches_golden_files() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let golden_path = vectors_dir().join(case.golden_name());
        let golden = match std::fs::read(&golden_path) {
            Ok(g) => g,
            Err(e) => {
                failures.push(format!("{}: cannot read golden: {e}", case.describe()));
                continue;
            }
        };
        match ours(case) {
            Ok(out) if out == golden => {}
            Ok(out) => failures.push(format!(
                "{}\n  golden:   {}\n  saml-xml: {}",
                case.describe(),
                show(&golden),
                show(&out)
            )),
            Err(e) => failures.push(format!(
                "{}\n  golden:   {}\n  saml-xml: {e}",
                case.describe(),
                show(&golden)
            )),
        }
    }
    finish("saml-xml vs golden files", cases.len(), &failures);
}

#[test]
fn c14n_matches_xmlsec1() {
    let bin = match c14n_support::xmlsec1_binary() {
        Ok(b) => b,
        Err(e) => panic!("{e}"),
    };
    let cases = cases();
    let dir = c14n_support::unique_temp_dir("c14n-xmlsec").expect("temp dir");
    let expected = c14n_support::oracle_all(&bin, &dir, &cases);
    let bless = std::env::var_os("VARCO_C14N_BLESS").is_some_and(|v| v == "1");

    let mut failures = Vec::new();
    for (case, expected) in cases.iter().zip(&expected) {
        let expected = match expected {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{}\n  xmlsec1 oracle failed: {e}", case.describe()));
                continue;
            }
        };
        let golden_path = vectors_dir().join(case.golden_name());
        if bless {
            if let Err(e) = std::fs::write(&golden_path, expected) {
                failures.push(format!("{}: cannot write golden: {e}", case.describe()));
            }
        } else {
            match std::fs::read(&golden_path) {
                Ok(g) if &g == expected => {}
                Ok(g) => failures.push(format!(
                    "{}: golden file disagrees with xmlsec1 (regenerate with VARCO_C14N_BLESS=1 after checking)\n  \
                     xmlsec1: {}\n  golden:  {}",
                    case.describe(),
                    show(expected),
                    show(&g)
                )),
                Err(e) => failures.push(format!("{}: cannot read golden: {e}", case.describe())),
            }
        }
        match ours(case) {
            Ok(out) if &out == expected => {}
            Ok(out) => failures.push(format!(
                "{}\n  xmlsec1:  {}\n  saml-xml: {}",
                case.describe(),
                show(expected),
                show(&out)
            )),
            Err(e) => failures.push(format!(
                "{}\n  xmlsec1:  {}\n  saml-xml: {e}",
                case.describe(),
                show(expected)
            )),
        }
    }
    if std::env::var_os("VARCO_C14N_KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        eprintln!("xmlsec1 inputs kept in {}", dir.display());
    }
    finish("saml-xml vs xmlsec1", cases.len(), &failures);
}
