//! Work bounded by counting (issue 17): for every worst-case shape of `testkit::hostile`,
//! parsing and exclusive C14N do at most a small constant number of steps
//! (`saml_xml::work`) per input byte. No timing is asserted; docs/PERFORMANCE.md has the CPU.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Element, Limits, work};
use testkit::hostile::{self, Parties, message_limits};

/// Parse steps allowed per input byte: 2 for tokens, names and lookups, plus the
/// duplicate-attribute check, which compares each attribute with the ones before it on its
/// element: at most `max_attributes / 2` comparisons for an attribute of at least 4 bytes
/// (` a=""`). The measured worst is printed by each test (3.3, for `attribute_heavy`); a
/// loop that multiplies two input sizes exceeds the bound by orders of magnitude on these
/// inputs.
const STEPS_PER_BYTE: u64 = 2 + message_limits::MAX_ATTRIBUTES as u64 / 8;
/// C14N steps allowed per input byte: its output may be `OUTPUT_FACTOR` (3) times the input,
/// each output byte is a step, and the walk adds about 1.5 (measured worst: 3.8, for
/// `namespace_heavy`, whose every element renders 31 declarations).
const C14N_STEPS_PER_BYTE: u64 = 6;

const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

fn signature<'d, 'a>(root: Element<'d, 'a>) -> Option<Element<'d, 'a>> {
    root.child_elements().find(|e| e.is(DSIG_NS, "Signature"))
}

/// Parse steps and c14n steps (the reference digest's canonicalization, with `prefixes`).
fn costs(xml: &str, limits: &Limits, prefixes: &[&str]) -> (u64, u64, Result<usize, String>) {
    let (doc, parse) = work::measure(|| Document::parse(xml.as_bytes(), limits));
    let doc = doc.unwrap();
    let root = doc.root();
    let opts = Options {
        with_comments: false,
        inclusive_prefixes: prefixes,
        exclude: signature(root).map(|s| s.node_id()),
    };
    let mut out = Vec::new();
    let (r, c14n) = work::measure(|| canonicalize(root, &opts, &mut out));
    (
        parse,
        c14n,
        r.map(|()| out.len()).map_err(|e| e.code().into()),
    )
}

fn assert_linear(name: &str, bytes: usize, steps: u64) {
    let per_byte = steps as f64 / bytes as f64;
    eprintln!("{name}: {bytes} bytes, {steps} steps, {per_byte:.2} per byte");
    assert!(
        steps <= STEPS_PER_BYTE * bytes as u64,
        "{name}: {steps} steps for {bytes} bytes"
    );
}

/// C14N counts each output byte as a step, and its output may reach
/// `OUTPUT_FACTOR` x source + `OUTPUT_SLACK` before it is refused.
fn assert_c14n_linear(name: &str, bytes: usize, steps: u64) {
    let per_byte = steps as f64 / bytes as f64;
    eprintln!("{name}: {bytes} bytes, {steps} steps, {per_byte:.2} per byte");
    assert!(
        steps <= C14N_STEPS_PER_BYTE * bytes as u64 + saml_xml::c14n::OUTPUT_SLACK as u64,
        "{name}: {steps} steps for {bytes} bytes"
    );
}

#[test]
fn the_generator_knows_the_parser_limits() {
    let l = Limits::default();
    assert_eq!(l.max_bytes, message_limits::MAX_BYTES);
    assert_eq!(l.max_depth, message_limits::MAX_DEPTH);
    assert_eq!(l.max_nodes, message_limits::MAX_NODES);
    assert_eq!(l.max_attributes, message_limits::MAX_ATTRIBUTES);
    assert_eq!(
        l.max_namespace_declarations,
        message_limits::MAX_NAMESPACE_DECLARATIONS
    );
}

#[test]
fn c14n_work_does_not_grow_with_the_prefix_list() {
    // The issue's document: thousands of listed prefixes over a deep, wide tree. C14N used to
    // look every listed prefix up through every ancestor of every element (1.4 s for 62 KB);
    // now the list is consulted at the apex and where an element redeclares a listed prefix.
    let p = Parties::default();
    for (budget, prefixes) in [(62 * 1024, 4096), (250 * 1024, 16_000)] {
        let xml = hostile::issue17_logout_request(&p, budget, prefixes);
        let list = hostile::prefix_list(prefixes);
        let list: Vec<&str> = list.split(' ').collect();
        let (parse, c14n, out) = costs(&xml, &Limits::default(), &list);
        out.unwrap();
        assert_linear(
            &format!("issue17 {prefixes} prefixes parse"),
            xml.len(),
            parse,
        );
        assert_c14n_linear(
            &format!("issue17 {prefixes} prefixes c14n"),
            xml.len(),
            c14n,
        );
    }
}

#[test]
fn parse_and_c14n_work_is_linear_for_every_shape() {
    let p = Parties::default();
    for budget in [16 * 1024, 62 * 1024, message_limits::MAX_BYTES] {
        for (name, xml) in hostile::xml_shapes(&p, budget, 64) {
            assert!(xml.len() <= budget, "{name}: {} > {budget}", xml.len());
            // The PrefixList the shape's reference transform carries, if any.
            let doc = Document::parse(xml.as_bytes(), &Limits::default()).unwrap();
            let list: Vec<String> = prefix_list_of(doc.root());
            let list: Vec<&str> = list.iter().map(String::as_str).collect();
            let (parse, c14n, out) = costs(&xml, &Limits::default(), &list);
            let name = format!("{name} {}k", budget / 1024);
            assert_linear(&format!("{name} parse"), xml.len(), parse);
            assert_c14n_linear(&format!("{name} c14n"), xml.len(), c14n);
            match out {
                Ok(len) => assert!(len <= 3 * xml.len() + 64 * 1024, "{name}: {len} bytes out"),
                Err(code) => assert_eq!(code, "xml_c14n_too_large", "{name}"),
            }
        }
    }
}

fn prefix_list_of(root: Element<'_, '_>) -> Vec<String> {
    let mut stack = vec![root];
    while let Some(e) = stack.pop() {
        if e.local_name() == "InclusiveNamespaces" {
            return e
                .attribute("PrefixList")
                .unwrap_or("")
                .split(' ')
                .map(str::to_owned)
                .collect();
        }
        stack.extend(e.child_elements());
    }
    Vec::new()
}

#[test]
fn amplified_canonical_form_is_refused_at_its_bound() {
    let p = Parties::default();
    let xml = hostile::namespace_amplification(&p, 62 * 1024);
    let (_, c14n, out) = costs(&xml, &Limits::default(), &[]);
    // Unbounded, this would be about 3,900 siblings x 31 KB: 120 MB.
    assert_eq!(out, Err("xml_c14n_too_large".into()));
    assert_c14n_linear("amplification c14n", xml.len(), c14n);
}

#[test]
fn namespace_interning_is_linear_in_metadata() {
    // Metadata limits allow 64 Ki declarations; each distinct URI used to be found by a scan
    // of all those interned before it (quadratic: 2 x 10^9 comparisons here).
    let xml = hostile::metadata_distinct_namespaces(4 * 1024 * 1024, 60_000);
    let (parse, c14n, out) = costs(&xml, &Limits::metadata(), &[]);
    out.unwrap();
    assert_linear("60k namespaces parse", xml.len(), parse);
    assert_c14n_linear("60k namespaces c14n", xml.len(), c14n);
}
