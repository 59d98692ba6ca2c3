//! The parser's refusals, one named test per class, and the tree it builds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use saml_xml::{Child, Document, Error, Limits};

fn parse(s: &str) -> Result<Document<'_>, Error> {
    Document::parse(s.as_bytes(), &Limits::default())
}

fn code(s: &str) -> &'static str {
    match parse(s) {
        Ok(_) => "ok",
        Err(e) => e.code(),
    }
}

#[test]
fn doctype_is_refused_even_when_empty() {
    assert_eq!(code("<!DOCTYPE a><a/>"), "xml_doctype");
}

#[test]
fn billion_laughs_is_refused_before_any_expansion() {
    let doc = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<lolz>&lol2;</lolz>"#;
    assert_eq!(code(doc), "xml_doctype");
}

#[test]
fn external_entity_is_refused() {
    let doc = r#"<!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>"#;
    assert_eq!(code(doc), "xml_doctype");
}

#[test]
fn undeclared_entity_reference_is_refused() {
    assert_eq!(code("<a>&xxe;</a>"), "xml_undeclared_entity");
    assert_eq!(code(r#"<a b="&xxe;"/>"#), "xml_undeclared_entity");
}

#[test]
fn predefined_and_character_references_are_resolved() {
    let d = parse(r#"<a b="&lt;&#x41;&#66;&quot;">&amp;&gt;&#x263A;&apos;</a>"#).unwrap();
    assert_eq!(d.root().attribute("b"), Some("<AB\""));
    assert_eq!(d.root().text(), "&>\u{263A}'");
}

#[test]
fn illegal_character_references_are_refused() {
    assert_eq!(code("<a>&#0;</a>"), "xml_invalid_char_ref");
    assert_eq!(code("<a>&#x1;</a>"), "xml_invalid_char_ref");
    assert_eq!(code("<a>&#xD800;</a>"), "xml_invalid_char_ref");
    assert_eq!(code("<a>&#xFFFFFFFFF;</a>"), "xml_invalid_char_ref");
}

#[test]
fn control_characters_are_refused() {
    assert_eq!(code("<a>\u{1}</a>"), "xml_illegal_character");
    assert_eq!(code("<a>\u{FFFE}</a>"), "xml_illegal_character");
}

/// The character screen has one form for input without TAB and CR and one for input with
/// them: each control character is refused in both, wherever it falls in a long document;
/// TAB, LF and CR are accepted in both.
#[test]
fn control_characters_are_refused_with_and_without_tab_or_cr() {
    for extra in ["", "\t", "\r", "\r\n\t"] {
        for c in (0u8..0x20).map(char::from) {
            for pad in [0, 7, 255, 256, 300] {
                let xml = format!("<a>{extra}{}{c}</a>", "x".repeat(pad));
                let allowed = matches!(c, '\t' | '\n' | '\r');
                assert_eq!(parse(&xml).is_ok(), allowed, "{:?} {c:?} {pad}", extra);
                if !allowed {
                    assert_eq!(code(&xml), "xml_illegal_character");
                }
            }
        }
        for bad in ["\u{FFFE}", "\u{FFFF}"] {
            let xml = format!("<a>{extra}{}{bad}</a>", "x".repeat(260));
            assert_eq!(code(&xml), "xml_illegal_character");
        }
        let fine = format!("<a>{extra}\u{FFFD}\u{F000}</a>");
        assert!(parse(&fine).is_ok());
    }
}

#[test]
fn malformed_utf8_is_refused() {
    let bytes = b"<a>\xff\xfe</a>";
    let err = Document::parse(bytes, &Limits::default()).unwrap_err();
    assert_eq!(err, Error::InvalidUtf8);
}

#[test]
fn other_encodings_and_xml_1_1_are_refused() {
    assert_eq!(
        code(r#"<?xml version="1.0" encoding="ISO-8859-1"?><a/>"#),
        "xml_unsupported_declaration"
    );
    assert_eq!(
        code(r#"<?xml version="1.1"?><a/>"#),
        "xml_unsupported_declaration"
    );
    assert_eq!(code(r#"<?xml version="1.0" encoding="utf-8"?><a/>"#), "ok");
    assert_eq!(
        code(r#"<a/><?xml version="1.0"?>"#),
        "xml_unsupported_declaration"
    );
}

#[test]
fn unbound_prefixes_are_refused() {
    assert_eq!(code("<p:a/>"), "xml_unbound_prefix");
    assert_eq!(code(r#"<a p:b="1"/>"#), "xml_unbound_prefix");
    // A prefix declared on a sibling is not in scope.
    assert_eq!(
        code(r#"<r><x xmlns:p="u"/><p:a/></r>"#),
        "xml_unbound_prefix"
    );
}

#[test]
fn reserved_namespace_declarations_are_refused() {
    assert_eq!(
        code(r#"<a xmlns:p=""/>"#),
        "xml_invalid_namespace_declaration"
    );
    assert_eq!(
        code(r#"<a xmlns:xml="urn:x"/>"#),
        "xml_invalid_namespace_declaration"
    );
    assert_eq!(
        code(r#"<a xmlns:xmlns="urn:x"/>"#),
        "xml_invalid_namespace_declaration"
    );
    assert_eq!(
        code(r#"<a xmlns:p="http://www.w3.org/XML/1998/namespace"/>"#),
        "xml_invalid_namespace_declaration"
    );
}

#[test]
fn duplicate_attributes_are_refused_by_qualified_and_expanded_name() {
    assert_eq!(code(r#"<a b="1" b="2"/>"#), "xml_duplicate_attribute");
    assert_eq!(
        code(r#"<a xmlns="u" xmlns="v"/>"#),
        "xml_duplicate_attribute"
    );
    assert_eq!(
        code(r#"<a xmlns:p="u" xmlns:p="v"/>"#),
        "xml_duplicate_attribute"
    );
    assert_eq!(
        code(r#"<a xmlns:p="u" xmlns:q="u" p:b="1" q:b="2"/>"#),
        "xml_duplicate_attribute"
    );
}

#[test]
fn duplicate_ids_are_refused_whatever_the_id_attribute_spelling() {
    assert_eq!(code(r#"<r><a ID="x"/><b ID="x"/></r>"#), "xml_duplicate_id");
    assert_eq!(code(r#"<r><a ID="x"/><b Id="x"/></r>"#), "xml_duplicate_id");
    assert_eq!(
        code(r#"<r><a ID="x"/><b xml:id="x"/></r>"#),
        "xml_duplicate_id"
    );
    assert_eq!(code(r#"<r><a ID="x"/><b ID="y"/></r>"#), "ok");
}

#[test]
fn element_by_id_finds_the_one_element() {
    let d = parse(r#"<r ID="r"><a ID="x"><b/></a></r>"#).unwrap();
    let a = d.element_by_id("x").unwrap();
    assert_eq!(a.local_name(), "a");
    assert!(d.root().contains(a.node_id()));
    assert!(!a.contains(d.root().node_id()));
    assert!(d.element_by_id("nope").is_none());
}

#[test]
fn limits_are_enforced() {
    let tight = Limits {
        max_bytes: 10,
        ..Limits::default()
    };
    assert_eq!(
        Document::parse(b"<a>0123456789</a>", &tight)
            .unwrap_err()
            .code(),
        "xml_too_large"
    );
    let deep = "<a>".repeat(40) + &"</a>".repeat(40);
    assert_eq!(code(&deep), "xml_too_deep");
    let wide = format!("<a>{}</a>", "<b/>".repeat(9000));
    assert_eq!(code(&wide), "xml_too_many_nodes");
    let attrs: String = (0..40).map(|i| format!(" a{i}=\"1\"")).collect();
    assert_eq!(code(&format!("<a{attrs}/>")), "xml_too_many_attributes");
    let decls: String = (0..20).map(|i| format!(" xmlns:p{i}=\"u{i}\"")).collect();
    let few = Limits {
        max_namespace_declarations: 10,
        ..Limits::default()
    };
    let d = format!("<a{decls}/>");
    assert_eq!(
        Document::parse(d.as_bytes(), &few).unwrap_err().code(),
        "xml_too_many_namespace_declarations"
    );
}

#[test]
fn comment_does_not_truncate_text() {
    // CVE-2017-11427 family: a comment inside NameID must not cut the value.
    let d = parse("<NameID>victim@example.com<!---->.evil.example</NameID>").unwrap();
    assert_eq!(d.root().text(), "victim@example.com.evil.example");
    assert!(d.root().has_comments_or_pis());
    let kinds: Vec<_> = d
        .root()
        .children()
        .map(|c| match c {
            Child::Text(_) => "text",
            Child::Comment(_) => "comment",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["text", "comment", "text"]);
}

#[test]
fn cdata_and_references_join_adjacent_text() {
    let d = parse("<a>x<![CDATA[<y>]]>&amp;z</a>").unwrap();
    assert_eq!(d.root().children().count(), 1);
    assert_eq!(d.root().text(), "x<y>&z");
}

#[test]
fn line_ends_are_normalized_in_text_and_attributes() {
    let d = parse("<a b=\"1\r\n2\t3\">x\r\ny\rz&#13;</a>").unwrap();
    assert_eq!(d.root().attribute("b"), Some("1 2 3"));
    assert_eq!(d.root().text(), "x\ny\nz\r");
}

#[test]
fn structure_outside_the_root_is_refused() {
    assert_eq!(code("<a/><b/>"), "xml_content_outside_root");
    assert_eq!(code("<a/>text"), "xml_content_outside_root");
    assert_eq!(code("text<a/>"), "xml_content_outside_root");
    assert_eq!(code(""), "xml_no_root_element");
    assert_eq!(code("  \n"), "xml_no_root_element");
    assert_eq!(code("<!-- c --><a/><!-- d -->\n"), "ok");
}

#[test]
fn ill_formed_markup_is_refused() {
    for bad in [
        "<a>",
        "<a></b>",
        "</a>",
        "<a b=1/>",
        "<a b='1/>",
        "<a><!-- -- --></a>",
        "<a b=\"<\"/>",
        "<1a/>",
        "<a:b:c xmlns:a=\"u\"/>",
    ] {
        assert_ne!(code(bad), "ok", "{bad}");
    }
}

#[test]
fn namespaces_are_resolved() {
    let d =
        parse(r#"<r xmlns="urn:d" xmlns:p="urn:p"><p:a p:x="1" y="2"/><b xmlns=""/></r>"#).unwrap();
    let r = d.root();
    assert!(r.is("urn:d", "r"));
    let kids: Vec<_> = r.child_elements().collect();
    assert!(kids[0].is("urn:p", "a"));
    assert_eq!(kids[0].prefix(), Some("p"));
    assert_eq!(kids[0].attribute_ns("urn:p", "x"), Some("1"));
    assert_eq!(kids[0].attribute("y"), Some("2"));
    assert_eq!(kids[0].attribute("x"), None);
    assert_eq!(kids[1].namespace(), None);
    assert_eq!(kids[1].parent(), Some(r));
}

#[test]
fn spans_point_into_the_source() {
    let src = r#"<r><a x="1">hi</a><b/></r>"#;
    let d = parse(src).unwrap();
    let kids: Vec<_> = d.root().child_elements().collect();
    assert_eq!(&src[kids[0].span()], r#"<a x="1">hi</a>"#);
    assert_eq!(&src[kids[0].content_span()], "hi");
    assert_eq!(&src[kids[1].span()], "<b/>");
    assert_eq!(&src[d.root().span()], src);
}

#[test]
fn byte_order_mark_is_skipped() {
    assert!(Document::parse("\u{feff}<a/>".as_bytes(), &Limits::default()).is_ok());
}

// === The tokenizer's refusals (src/token.rs), one test per class, with their codes ===

#[test]
fn doctype_in_any_case_is_refused_on_sight_even_unterminated() {
    for doc in [
        "<!doctype a><a/>",
        "<!DocType a><a/>",
        "<!DOCTYPE",
        "<!DOCTYPE a [",
        "<a><!DOCTYPE a></a>",
    ] {
        assert_eq!(code(doc), "xml_doctype", "{doc}");
    }
    // Not a DOCTYPE: an unknown declaration.
    assert_eq!(code("<!DOCTYP a><a/>"), "xml_malformed");
}

#[test]
fn unknown_markup_declarations_are_refused() {
    for doc in [
        "<a><!x></a>",
        "<a><!-x></a>",
        "<a><![x]]></a>",
        "<a><![cdata[x]]></a>",
        "<a><!ELEMENT a ANY></a>",
    ] {
        assert_eq!(code(doc), "xml_malformed", "{doc}");
    }
}

#[test]
fn unclosed_markup_is_refused() {
    for doc in [
        "<",
        "<a",
        "<a/",
        "<a x='1'",
        "<a x='1>",
        "<a></a",
        "<a><!-- c </a>",
        "<a><![CDATA[x]></a>",
        "<a><?pi </a>",
        "<a>&amp</a>",
        "<a>&amp<b/></a>",
        "<a>&</a>",
        "<a>&a&b;</a>",
    ] {
        assert_eq!(code(doc), "xml_malformed", "{doc}");
    }
}

#[test]
fn double_hyphen_in_a_comment_is_refused() {
    assert_eq!(code("<a><!-- a -- b --></a>"), "xml_malformed");
    assert_eq!(code("<a><!-- a ---></a>"), "xml_malformed");
    assert_eq!(code("<a><!----></a>"), "ok");
    assert_eq!(code("<a><!-- a - b --></a>"), "ok");
}

#[test]
fn attributes_need_an_equals_sign_and_a_quoted_value() {
    for doc in ["<a x/>", "<a x>", "<a x=>", "<a x=1>", "<a x='1' / >"] {
        assert_eq!(code(doc), "xml_malformed", "{doc}");
    }
    assert_eq!(code("<a =\"1\"/>"), "xml_invalid_name");
    // White space around `=`, either quote, `>` and the other quote inside a value.
    let d = parse("<a x = \"1>'2\" y='\"'/>").unwrap();
    assert_eq!(d.root().attribute("x"), Some("1>'2"));
    assert_eq!(d.root().attribute("y"), Some("\""));
}

#[test]
fn end_tags_must_repeat_the_start_tag_name() {
    assert_eq!(code("<a></b>"), "xml_malformed");
    assert_eq!(code("<a:b xmlns:a='u'></b>"), "xml_malformed");
    assert_eq!(code("<a></ a>"), "xml_malformed");
    assert_eq!(code("<a></a\">"), "xml_malformed");
    assert_eq!(code("</a>"), "xml_malformed");
    assert_eq!(code("<a></a \n>"), "ok");
}

#[test]
fn processing_instructions_need_a_target_and_no_xml_one() {
    assert_eq!(code("<a><?></a>"), "xml_malformed");
    assert_eq!(code("<a><??></a>"), "xml_invalid_name");
    assert_eq!(code("<a><?9pi x?></a>"), "xml_invalid_name");
    assert_eq!(code("<a><?XML x?></a>"), "xml_unsupported_declaration");
    assert_eq!(code("<a><?xml-stylesheet x?></a>"), "ok");
}

#[test]
fn declaration_pseudo_attributes_must_all_be_readable() {
    assert_eq!(
        code("<?xml version='1.0' encoding='UTF-8' standalone='yes'?><a/>"),
        "ok"
    );
    for doc in [
        "<?xml?><a/>",
        "<?xml encoding='UTF-8' version='1.0'?><a/>",
        "<?xml version=1.0?><a/>",
        "<?xml version='1.0' encoding='UTF-8' junk?><a/>",
        "<?xml version='1.0' ='x'?><a/>",
        " <?xml version='1.0'?><a/>",
    ] {
        assert_eq!(code(doc), "xml_unsupported_declaration", "{doc}");
    }
}

/// An element without declarations of its own takes its parent's namespace for a shared
/// prefix without a lookup (issue 20); a redeclaration on it or on the parent still counts.
#[test]
fn a_prefix_shared_with_the_parent_resolves_as_a_lookup_would() {
    let d = parse(
        r#"<a:x xmlns:a="u1"><a:y><a:z xmlns:a="u2"><a:w/></a:z><a:v b:c="1" xmlns:b="u3"/></a:y><b:q xmlns:b="u4"/></a:x>"#,
    )
    .unwrap();
    let ns = |e: saml_xml::Element<'_, '_>| e.namespace().unwrap_or("").to_owned();
    let x = d.root();
    let y = x.child_elements().next().unwrap();
    let mut ys = y.child_elements();
    let z = ys.next().unwrap();
    let v = ys.next().unwrap();
    let w = z.child_elements().next().unwrap();
    let q = x.child_elements().nth(1).unwrap();
    let got = [x, y, z, w, v, q].map(ns);
    assert_eq!(got, ["u1", "u1", "u2", "u2", "u1", "u4"]);
    assert_eq!(v.attribute_ns("u3", "c"), Some("1"));

    let d = parse(r#"<x xmlns="d"><y/><z xmlns=""><w/></z></x>"#).unwrap();
    let x = d.root();
    let mut xs = x.child_elements();
    let (y, z) = (xs.next().unwrap(), xs.next().unwrap());
    let w = z.child_elements().next().unwrap();
    assert_eq!(
        [x, y, z, w].map(|e| e.namespace()),
        [Some("d"), Some("d"), None, None]
    );
    assert_eq!(
        code("<a:x xmlns:a='u'><a:y><b:z/></a:y></a:x>"),
        "xml_unbound_prefix"
    );
}
