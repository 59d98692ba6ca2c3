//! Arbitrary bytes into `saml_xml::Document::parse`: never a panic, and on success every
//! accessor of the whole tree works and agrees with the tree's own invariants.
//!
//! Asserted: spans lie inside the source on character boundaries and cover `<...>`; a child's
//! parent is its element and lies inside it; every `ID`/`Id`/`id`/`xml:id` finds its element
//! again; the nodes reached from the root (elements, text, comments, processing instructions)
//! respect the node limit; and a document accepted under tight limits is accepted, with as
//! many nodes, under the default ones. And the tokenizer agrees with the quick-xml reader it
//! replaced (`saml_xml::differential_check`, feature `reference`): the same tree, or both
//! refuse.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_xml::{Child, Document, Element, Limits, XML_NS};

/// Much smaller than the defaults, so that every limit is reachable by a small input.
fn tight() -> Limits {
    Limits {
        max_bytes: 2048,
        max_depth: 6,
        max_nodes: 48,
        max_attributes: 4,
        max_namespace_declarations: 6,
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Err(report) = saml_xml::differential_check(data, &limits, false) {
        panic!("the tokenizer and quick-xml disagree: {report}");
    }
    let full_nodes = Document::parse(data, &limits).ok().map(|doc| {
        let root = doc.root();
        assert!(root.parent().is_none());
        let nodes = walk(&doc, root, 1);
        assert!(nodes <= limits.max_nodes);
        nodes
    });
    if let Ok(small) = Document::parse(data, &tight()) {
        // Limits only ever refuse: what passes the tight ones passes the defaults, the same.
        let Some(full_nodes) = full_nodes else {
            panic!("accepted under tight limits, refused under the defaults");
        };
        let nodes = walk(&small, small.root(), 1);
        assert!(nodes <= tight().max_nodes);
        assert_eq!(nodes, full_nodes);
    }
});

/// Checks `el` and its subtree; returns how many nodes the subtree holds, `el` included.
fn walk(doc: &Document<'_>, el: Element<'_, '_>, depth: usize) -> usize {
    let src = doc.source();
    let span = el.span();
    let content = el.content_span();
    let outer = src
        .get(span.clone())
        .expect("element span on char boundaries");
    assert!(outer.starts_with('<') && outer.ends_with('>'), "{outer:?}");
    assert!(src.get(content.clone()).is_some(), "content span");
    assert!(span.start < content.start && content.start <= content.end && content.end <= span.end);
    assert!(depth <= Limits::default().max_depth);

    let _ = el.local_name();
    let _ = el.prefix();
    if let Some(uri) = el.namespace() {
        assert!(el.is(uri, el.local_name()));
    }
    let _ = el.has_comments_or_pis();
    let _ = el.text();
    assert!(el.contains(el.node_id()));
    assert_eq!(doc.element(el.node_id()), Some(el));

    for (ans, local, value) in el.attributes() {
        match ans {
            None => assert_eq!(el.attribute(local), Some(value)),
            Some(uri) => assert_eq!(el.attribute_ns(uri, local), Some(value)),
        }
        let is_id = match ans {
            None => matches!(local, "ID" | "Id" | "id"),
            Some(uri) => uri == XML_NS && local == "id",
        };
        if is_id {
            assert_eq!(doc.element_by_id(value), Some(el), "ID {value:?}");
        }
    }
    let mut nodes = 1;
    for child in el.children() {
        nodes += 1;
        match child {
            Child::Element(c) => {
                assert_eq!(c.parent(), Some(el));
                assert!(el.contains(c.node_id()));
                assert!(c.span().start >= content.start && c.span().end <= content.end);
                nodes += walk(doc, c, depth + 1) - 1;
            }
            Child::Text(t) => {
                std::hint::black_box(t.len());
            }
            Child::Comment(c) => assert!(!c.contains("--")),
            Child::ProcessingInstruction { target, data } => {
                assert!(!target.is_empty());
                std::hint::black_box(data.len());
            }
        }
    }
    nodes
}
