//! Exclusive C14N of parsed documents: never a panic, and the canonical form is a fixed point.
//!
//! For the root and for one element picked by the input, with and without comments, with an
//! InclusiveNamespaces PrefixList, and for the root with the picked element left out (the
//! enveloped-signature case): `c14n(parse(c14n(x))) == c14n(x)`. The canonical form must
//! itself parse; it is re-parsed with relaxed limits, since canonical output legitimately
//! repeats namespace declarations that the source declared once.

#![no_main]

use libfuzzer_sys::fuzz_target;
use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Element, Limits};

fn relaxed() -> Limits {
    Limits {
        max_bytes: usize::MAX,
        max_depth: Limits::default().max_depth,
        max_nodes: usize::MAX,
        max_attributes: usize::MAX,
        max_namespace_declarations: usize::MAX,
    }
}

fn elements<'d, 'a>(el: Element<'d, 'a>, out: &mut Vec<Element<'d, 'a>>) {
    out.push(el);
    for c in el.child_elements() {
        elements(c, out);
    }
}

fn fixed_point(el: Element<'_, '_>, opts: &Options<'_>) {
    let mut first = Vec::new();
    // The output bound (c14n::OUTPUT_FACTOR) may refuse an amplifying input: not a bug.
    if canonicalize(el, opts, &mut first).is_err() {
        return;
    }
    let again = Document::parse(&first, &relaxed()).unwrap_or_else(|e| {
        panic!(
            "canonical form does not parse: {e:?}\n{}",
            String::from_utf8_lossy(&first)
        )
    });
    let mut second = Vec::new();
    let opts = Options {
        exclude: None,
        ..*opts
    };
    // A canonical form canonicalizes to itself, so it can never meet the bound.
    canonicalize(again.root(), &opts, &mut second).expect("canonical form within the bound");
    assert!(
        first == second,
        "not idempotent:\n first: {}\nsecond: {}",
        String::from_utf8_lossy(&first),
        String::from_utf8_lossy(&second)
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = Document::parse(data, &Limits::default()) else {
        return;
    };
    let mut all = Vec::new();
    elements(doc.root(), &mut all);
    let pick = data.last().map_or(0, |&b| b as usize) % all.len();
    let picked = all[pick];

    let prefixes: Vec<&str> = ["#default"].into_iter().chain(picked.prefix()).collect();
    for el in [doc.root(), picked] {
        for with_comments in [false, true] {
            fixed_point(
                el,
                &Options {
                    with_comments,
                    ..Options::default()
                },
            );
        }
        fixed_point(
            el,
            &Options {
                inclusive_prefixes: &prefixes,
                ..Options::default()
            },
        );
    }
    if picked != doc.root() {
        fixed_point(
            doc.root(),
            &Options {
                exclude: Some(picked.node_id()),
                ..Options::default()
            },
        );
    }
});
