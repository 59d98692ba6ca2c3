//! Differential test of the tokenizer (`token.rs`) against the quick-xml reader it replaced:
//! the same builder driven by each, over the repository's XML fixtures, the fuzz seeds, edge
//! cases written for each refusal, and mutations of all of them (truncations, deletions, and
//! markup fragments inserted at every position of the small ones). Accepted by one means
//! accepted by the other with the same tree (nodes, names, namespaces, attributes, spans,
//! IDs); refused by one means refused by the other, with the same error code except where
//! listed in [`same_refusal`]. On every accepted input, each element's canonical form is also
//! computed with and without the C14N shortcuts (`c14n.rs`, `shortcuts`): byte for byte the
//! same.

use std::path::Path;

use super::reference::differential_check;
use super::{Document, Limits};

/// What the comparison found.
#[derive(Default)]
struct Tally {
    cases: usize,
    /// Both refused, with different codes (counted by pair, ours first; the hand-written
    /// cases must agree up to [`same_refusal`]).
    codes_differ: std::collections::BTreeMap<(String, String), usize>,
    /// One accepted what the other refused, or both accepted different trees.
    failures: Vec<String>,
    /// Elements whose canonical form with the C14N shortcuts differs from the plain one.
    c14n_differ: usize,
}

/// Every element of `doc` canonicalized with and without the C14N shortcuts (with comments,
/// and leaving out its first child element as the enveloped signature would be): the same
/// bytes, or the same error.
fn check_c14n(doc: &Document<'_>, tally: &mut Tally) {
    use crate::c14n::{Options, SHORTCUTS, canonicalize};
    let run = |el: crate::Element<'_, '_>, opts: &Options<'_>, fast: bool| {
        SHORTCUTS.with(|s| s.set(fast));
        let mut out = Vec::new();
        let r = canonicalize(el, opts, &mut out).map_err(|e| e.code());
        SHORTCUTS.with(|s| s.set(true));
        (r, out)
    };
    for i in 0..doc.nodes.len() {
        let Some(el) = doc.element(super::NodeId(i as u32)) else {
            continue;
        };
        let options = [
            Options::default(),
            Options {
                with_comments: true,
                inclusive_prefixes: &["#default", "p", "saml"],
                exclude: el.child_elements().next().map(|c| c.node_id()),
            },
        ];
        for opts in &options {
            if run(el, opts, true) != run(el, opts, false) {
                tally.c14n_differ += 1;
            }
        }
    }
}

fn check(input: &[u8], limits: &Limits, tally: &mut Tally, strict_codes: bool) {
    tally.cases += 1;
    if let Ok(doc) = Document::parse(input, limits) {
        check_c14n(&doc, tally);
    }
    match differential_check(input, limits, strict_codes) {
        Ok(None) => {}
        Ok(Some(codes)) => *tally.codes_differ.entry(codes).or_default() += 1,
        Err(report) if tally.failures.len() < 20 => tally.failures.push(report),
        Err(_) => {}
    }
}

/// Hand-written cases, one or more per refusal of the tokenizer and per corner of the syntax.
const EDGES: &[&str] = &[
    "<a/>",
    "<a></a>",
    "<a></a >",
    "<a></ a>",
    "<a></b>",
    "</a>",
    "<a>",
    "<",
    "<a",
    "<a/",
    "<a/ >",
    "<a x='1'/>",
    "<a x = \"1\" />",
    "<a x=\"1\"y=\"2\"/>",
    "<a x=\"1>2\"/>",
    "<a x='\"'/>",
    "<a x=\"'\">'</a>",
    "<a x>",
    "<a x/>",
    "<a x=>",
    "<a x=1>",
    "<a =\"1\"/>",
    "<a x=\"1/>",
    "<a x=\"1\" / >",
    "<a\"b>",
    "<a\"b\">",
    "<a b\"c=\"d\">",
    "<>",
    "< a/>",
    "<a:b xmlns:a='u'/>",
    "<a>&amp;&lt;&#65;&#x42;</a>",
    "<a>&amp</a>",
    "<a>&amp<b/></a>",
    "<a>&;</a>",
    "<a>& x;</a>",
    "<a>&</a>",
    "&amp;<a/>",
    "<a/>&amp;",
    "<a>]]></a>",
    "<a>x > y</a>",
    "<a><!-- c --></a>",
    "<a><!----></a>",
    "<a><!---></a>",
    "<a><!-- a - b --></a>",
    "<a><!-- a -- b --></a>",
    "<a><!-- a ---></a>",
    "<a><!-x></a>",
    "<a><!-- unclosed </a>",
    "<a><![CDATA[x]]></a>",
    "<a><![CDATA[]]></a>",
    "<a><![CDATA[x]></a>",
    "<a><![cdata[x]]></a>",
    "<a><![x]]></a>",
    "<a><!x></a>",
    "<!DOCTYPE a><a/>",
    "<!doctype a><a/>",
    "<!DOCTYPE>",
    "<!DOCTYPE a",
    "<!DOCTYP a><a/>",
    "<!Dx><a/>",
    "<a><!DOCTYPE a></a>",
    "<?xml version=\"1.0\"?><a/>",
    "<?xml version='1.0' encoding='UTF-8' standalone='yes'?><a/>",
    "<?xml version=\"1.1\"?><a/>",
    "<?xml encoding=\"UTF-8\" version=\"1.0\"?><a/>",
    "<?xml version=\"1.0\" encoding=\"latin1\"?><a/>",
    "<?xml version=\"1.0\"encoding=\"utf-8\"?><a/>",
    "<?xml?><a/>",
    "<?xml ?><a/>",
    "<?xml version=1.0?><a/>",
    " <?xml version=\"1.0\"?><a/>",
    "<a/><?xml version=\"1.0\"?>",
    "<?XML version=\"1.0\"?><a/>",
    "<?xml-stylesheet href=\"x\"?><a/>",
    "<a><?pi data?></a>",
    "<a><?pi?></a>",
    "<a><?pi   x y ?></a>",
    "<a><??></a>",
    "<a><?></a>",
    "<a><?pi</a>",
    "<a><?pi ?? ></a>",
    "<a><?9pi x?></a>",
    "<a>\r\n</a>",
    "<a x=\"\r\n\t\"/>",
    "<a>x\ry</a>",
    "<a><!--\r\n--><?p a\rb?></a>",
    "\u{feff}<a/>",
    "\u{feff}\u{feff}<a/>",
    "<a/><b/>",
    "<a/>x",
    "<a/> \n",
    "x<a/>",
    "",
    "   ",
    "<a xmlns:x=\"u\" x:y=\"1\" y=\"2\" ID=\"i\"/>",
    "<a ID=\"i\"><b ID=\"i\"/></a>",
    "<a x='&lt;' y='&#9;'/>",
    "<a x='<'/>",
    "<a x='&unknown;'/>",
    "<a x='&amp'/>",
];

fn files(dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<_> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "xml") {
            if let Ok(bytes) = std::fs::read(&p) {
                out.push(bytes);
            }
        }
    }
}

/// Fragments inserted by the mutations: every delimiter the tokenizer looks for.
const FRAGMENTS: &[&str] = &[
    "<",
    ">",
    "&",
    "'",
    "\"",
    "/",
    "=",
    " ",
    "?",
    "!",
    "-",
    "]",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<?",
    "?>",
    "</",
    "/>",
    "&amp;",
    "&#x41;",
    "\r",
    "--",
    "<!DOCTYPE a>",
    "<x/>",
    " a='1'",
    "xmlns:p='u' ",
];

#[test]
fn the_tokenizer_agrees_with_quick_xml() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut seeds: Vec<Vec<u8>> = EDGES.iter().map(|s| s.as_bytes().to_vec()).collect();
    for dir in [
        "crates/saml-xml/tests/vectors",
        "crates/xmldsig/tests/fixtures",
        "crates/xmldsig/benches/data",
        "fuzz/seeds",
    ] {
        files(&root.join(dir), &mut seeds);
    }
    assert!(seeds.len() > EDGES.len() + 100, "fixtures not found");
    let limits = Limits::default();
    let tight = Limits {
        max_bytes: 1 << 20,
        max_depth: 4,
        max_nodes: 24,
        max_attributes: 3,
        max_namespace_declarations: 4,
    };
    let mut tally = Tally::default();
    for (n, seed) in seeds.iter().enumerate() {
        // The hand-written cases must also agree on the error code (with the exceptions of
        // `same_refusal`); mutations may find two faults in a different order.
        let strict = n < EDGES.len();
        check(seed, &limits, &mut tally, strict);
        check(seed, &tight, &mut tally, strict);
        // Every position of small inputs, then truncations only (the test runs unoptimized).
        let dense = seed.len() <= 512;
        let stride = if dense { 1 } else { seed.len() / 64 };
        let mut at = 0;
        while at <= seed.len() {
            let (head, tail) = seed.split_at(at);
            check(head, &limits, &mut tally, false);
            if dense {
                if let Some(rest) = tail.get(1..) {
                    check(&[head, rest].concat(), &limits, &mut tally, false);
                }
                for f in FRAGMENTS {
                    check(
                        &[head, f.as_bytes(), tail].concat(),
                        &limits,
                        &mut tally,
                        false,
                    );
                }
            }
            at += stride;
        }
    }
    eprintln!(
        "{} inputs; both refused with different codes: {:?}",
        tally.cases, tally.codes_differ
    );
    assert_eq!(tally.c14n_differ, 0, "canonical forms differ");
    assert!(
        tally.failures.is_empty(),
        "{} disagreements (of {} inputs), first ones:\n{}",
        tally.failures.len(),
        tally.cases,
        tally.failures.join("\n")
    );
}
