//! Exclusive canonicalization: hand-checked cases for each rule. The differential corpus
//! against xmlsec1 is in `c14n_xmlsec.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Limits};

fn c14n_of(src: &str, id: Option<&str>, opts: Options<'_>) -> String {
    let doc = Document::parse(src.as_bytes(), &Limits::default()).unwrap();
    let el = match id {
        Some(id) => doc.element_by_id(id).unwrap(),
        None => doc.root(),
    };
    let mut out = Vec::new();
    canonicalize(el, &opts, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn only_visibly_utilized_namespaces_are_output() {
    let src =
        r#"<r xmlns:a="urn:a" xmlns:b="urn:b" xmlns="urn:d"><a:x ID="1" b:y="v"><z/></a:x></r>"#;
    assert_eq!(
        c14n_of(src, Some("1"), Options::default()),
        r#"<a:x xmlns:a="urn:a" xmlns:b="urn:b" ID="1" b:y="v"><z xmlns="urn:d"></z></a:x>"#
    );
}

#[test]
fn bindings_already_output_by_an_ancestor_are_not_repeated() {
    let src =
        r#"<a:r xmlns:a="urn:a"><a:x><a:y xmlns:a="urn:a"/><a:z xmlns:a="urn:other"/></a:x></a:r>"#;
    assert_eq!(
        c14n_of(src, None, Options::default()),
        r#"<a:r xmlns:a="urn:a"><a:x><a:y></a:y><a:z xmlns:a="urn:other"></a:z></a:x></a:r>"#
    );
}

#[test]
fn empty_default_is_output_only_to_undo_a_rendered_default() {
    let src = r#"<r xmlns="urn:d"><x xmlns=""><y/></x></r>"#;
    assert_eq!(
        c14n_of(src, None, Options::default()),
        r#"<r xmlns="urn:d"><x xmlns=""><y></y></x></r>"#
    );
    // At the apex nothing was output above, so no xmlns="" is needed.
    let src = r#"<r xmlns="urn:d"><x xmlns="" ID="1"/></r>"#;
    assert_eq!(
        c14n_of(src, Some("1"), Options::default()),
        r#"<x ID="1"></x>"#
    );
}

#[test]
fn attributes_sort_by_namespace_uri_then_local_name() {
    let src = r#"<r xmlns:z="urn:a" xmlns:a="urn:b" b="1" a:c="2" z:d="3" a="4"/>"#;
    assert_eq!(
        c14n_of(src, None, Options::default()),
        r#"<r xmlns:a="urn:b" xmlns:z="urn:a" a="4" b="1" z:d="3" a:c="2"></r>"#
    );
}

#[test]
fn xml_attributes_of_ancestors_are_not_imported() {
    let src = r#"<r xml:lang="it"><x ID="1" xml:space="preserve"/></r>"#;
    assert_eq!(
        c14n_of(src, Some("1"), Options::default()),
        r#"<x ID="1" xml:space="preserve"></x>"#
    );
}

#[test]
fn escaping_follows_c14n() {
    let src = "<r a=\"&lt;&amp;&quot;&#9;&#10;&#13;&gt;'\">&lt;&amp;&gt;&#13;\"'</r>";
    assert_eq!(
        c14n_of(src, None, Options::default()),
        "<r a=\"&lt;&amp;&quot;&#x9;&#xA;&#xD;>'\">&lt;&amp;&gt;&#xD;\"'</r>"
    );
}

#[test]
fn comments_only_with_comments_and_pis_always() {
    let src = "<r><!-- c --><?pi  data?><?bare?>t</r>";
    assert_eq!(
        c14n_of(src, None, Options::default()),
        "<r><?pi data?><?bare?>t</r>"
    );
    let with = Options {
        with_comments: true,
        ..Options::default()
    };
    assert_eq!(
        c14n_of(src, None, with),
        "<r><!-- c --><?pi data?><?bare?>t</r>"
    );
}

#[test]
fn inclusive_prefixes_are_output_when_in_scope() {
    let src = r#"<r xmlns:xs="urn:xs" xmlns:xsi="urn:xsi" xmlns="urn:d"><v ID="1" xsi:type="xs:string">x</v></r>"#;
    assert_eq!(
        c14n_of(src, Some("1"), Options::default()),
        r#"<v xmlns="urn:d" xmlns:xsi="urn:xsi" ID="1" xsi:type="xs:string">x</v>"#
    );
    let opts = Options {
        inclusive_prefixes: &["xs", "nope"],
        ..Options::default()
    };
    assert_eq!(
        c14n_of(src, Some("1"), opts),
        r#"<v xmlns="urn:d" xmlns:xs="urn:xs" xmlns:xsi="urn:xsi" ID="1" xsi:type="xs:string">x</v>"#
    );
}

#[test]
fn excluded_subtree_is_left_out_with_surrounding_text_kept() {
    let src = r#"<r ID="1"> <s><t/></s> <u/></r>"#;
    let doc = Document::parse(src.as_bytes(), &Limits::default()).unwrap();
    let s = doc.root().child_elements().next().unwrap();
    let mut out = Vec::new();
    canonicalize(
        doc.root(),
        &Options {
            exclude: Some(s.node_id()),
            ..Options::default()
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        r#"<r ID="1">  <u></u></r>"#
    );
}

#[test]
fn canonical_form_is_a_fixed_point() {
    let src = r#"<r xmlns:a="urn:a" b='x' a:c="&#x20;y"><a:s/>  text &amp; more<!-- k --></r>"#;
    let once = c14n_of(src, None, Options::default());
    let twice = c14n_of(&once, None, Options::default());
    assert_eq!(once, twice);
}
