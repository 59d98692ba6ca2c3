//! Exclusive XML Canonicalization 1.0 (<http://www.w3.org/2001/10/xml-exc-c14n#>) of one
//! element's subtree, optionally with comments, with an InclusiveNamespaces PrefixList, and
//! with one node left out (the enveloped-signature transform).
//!
//! Only what XML-DSig needs for SAML: the node-set is always "an element and everything in
//! it, minus at most one subtree", so the general XPath node-set machinery is not needed.
//! The rules applied, with their section in the exc-c14n recommendation:
//! - a namespace declaration is output on an element when its prefix is visibly utilized by
//!   that element (its own prefix, or the prefix of one of its attributes) or listed in the
//!   PrefixList, and no output ancestor already output the same binding (§3);
//! - the default namespace is visibly utilized by an unprefixed element; `xmlns=""` is output
//!   only to undo a non-empty default output by an ancestor (§3, C14N 1.0 §2.3);
//! - `xml:*` attributes of ancestors are not imported (§3, unlike inclusive C14N);
//! - declarations sort by prefix, attributes by (namespace URI, local name), unqualified first;
//! - character escaping as in C14N 1.0 §2.3; empty elements become start/end pairs.

use crate::scope::{Scope, same};
use crate::special::{ATTR_SPECIAL, TEXT_SPECIAL};
use crate::tree::{Kind, Ns};
use crate::{Element, Error, NodeId};

/// What to canonicalize besides the element itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'o> {
    /// Keep comments (the `#WithComments` variant).
    pub with_comments: bool,
    /// The InclusiveNamespaces PrefixList: prefixes treated as in inclusive C14N. `#default`
    /// names the default namespace. Repeats are harmless (the list is deduplicated); its
    /// length costs O(n log n) once, not per element.
    pub inclusive_prefixes: &'o [&'o str],
    /// A node whose whole subtree is left out (the enveloped signature).
    pub exclude: Option<NodeId>,
}

/// The canonical form may be at most this many times the element's source length, plus
/// [`OUTPUT_SLACK`] bytes.
///
/// Exclusive C14N repeats a namespace declaration on every element that uses its prefix when
/// no output ancestor rendered it, so a long URI declared once and used by thousands of
/// siblings would otherwise canonicalize to a quadratic number of bytes (and as much hashing).
/// Real messages stay near 1x: SAML Attributes re-render `xmlns:xsi` on each `AttributeValue`,
/// which is the largest legitimate repetition seen, under 2x even for an empty value.
pub const OUTPUT_FACTOR: usize = 3;
/// The additive part of the output bound, so small elements never meet it.
pub const OUTPUT_SLACK: usize = 64 * 1024;

/// Appends the canonical form of `element`'s subtree to `out`.
///
/// Work and output are linear in the element's source length: each node is visited once, each
/// prefix lookup costs O(1) (see `scope.rs`), the PrefixList is consulted at the apex and on
/// elements that redeclare a listed prefix only, and the output is refused with
/// [`Error::CanonicalFormTooLarge`] past [`OUTPUT_FACTOR`] x source + [`OUTPUT_SLACK`]
/// (`out` then holds a truncated form, to be discarded). Steps are counted in
/// [`crate::work`].
pub fn canonicalize(
    element: Element<'_, '_>,
    opts: &Options<'_>,
    out: &mut Vec<u8>,
) -> Result<(), Error> {
    let mut steps = 0u64;
    let start = out.len();
    let mut rendered = Scope::new();
    let mut in_scope = Scope::new();
    let r = run(element, opts, out, &mut steps, &mut rendered, &mut in_scope);
    // Every output byte is a step too: writing and escaping cost the output's length, which
    // is where an amplification attack puts its work.
    let written = out.len().saturating_sub(start) as u64;
    crate::work::record(steps + rendered.steps + in_scope.steps + written);
    r
}

/// One lifetime for the document's names and the PrefixList's: both only live as long as
/// this call.
fn run<'p>(
    element: Element<'p, 'p>,
    opts: &Options<'p>,
    out: &mut Vec<u8>,
    steps: &mut u64,
    rendered: &mut Scope<'p, Ns>,
    in_scope: &mut Scope<'p, Ns>,
) -> Result<(), Error> {
    let doc = element.document();
    let apex = node_index(element.node_id());
    let Some(apex_node) = doc.node(apex) else {
        return Ok(());
    };
    let end = apex_node.end;
    let span = element.span().len();
    let limit = span
        .saturating_mul(OUTPUT_FACTOR)
        .saturating_add(OUTPUT_SLACK);
    let out_start = out.len();

    // The PrefixList, as a sorted set of keys ("" for #default, `xml` left out: it is never
    // declared). Sorting once makes the per-element membership test O(log n).
    let mut inclusive: Vec<&str> = opts
        .inclusive_prefixes
        .iter()
        .map(|&p| if p == "#default" { "" } else { p })
        .filter(|&p| p != "xml")
        .collect();
    inclusive.sort_unstable();
    inclusive.dedup();
    *steps += opts.inclusive_prefixes.len() as u64;

    // Scratch for the node indices of the apex's ancestors here, then for the order of one
    // element's attributes in the walk: one allocation for both.
    let mut indices: Vec<usize> = Vec::with_capacity(16);

    // Bindings in scope in the input, at the apex: its ancestors' declarations, outermost
    // first, collected once.
    let mut up = element.parent();
    while let Some(a) = up {
        indices.push(node_index(a.node_id()) as usize);
        up = a.parent();
    }
    for &a in indices.iter().rev() {
        for d in doc.decls_of(a as u32) {
            *steps += 1;
            in_scope.push(d.prefix, d.ns);
        }
    }

    // Bindings output by output ancestors. The empty default namespace is "already output"
    // at the apex: nothing above it is in the output.
    rendered.push("", Ns::NONE);
    let mut open: Vec<Open<'_>> = Vec::with_capacity(16);
    let src = doc.source().as_bytes();
    let mut needed: Vec<(&str, Ns)> = Vec::with_capacity(8);
    let exclude = opts.exclude.map(node_index);

    let mut i = apex;
    while i < end {
        *steps += 1;
        while let Some(&(close_at, prefix, local, mark, scope_mark, _, source_end)) = open.last() {
            if close_at > i {
                break;
            }
            if source_end.is_empty() {
                end_tag(out, prefix, local);
            } else {
                out.extend_from_slice(source_end);
            }
            rendered.truncate(mark);
            in_scope.truncate(scope_mark);
            open.pop();
        }
        if out.len() - out_start > limit {
            return Err(Error::CanonicalFormTooLarge { limit });
        }
        let Some(node) = doc.node(i) else { break };
        if Some(i) == exclude {
            i = node.end;
            continue;
        }
        match &node.kind {
            Kind::Element(e) => {
                let scope_mark = in_scope.mark();
                let own_decls = doc.decls_of(i);
                for d in own_decls {
                    in_scope.push(d.prefix, d.ns);
                }
                // Which bindings does this element need in the output? Its own prefix and
                // its attributes' prefixes (visibly utilized; their namespaces were
                // resolved by the parser)...
                needed.clear();
                // The element's own binding, unless its output parent has the same one: the
                // parent needed it, so it is rendered there or above (the common case of a
                // child in its parent's namespace, which then costs no lookup).
                let parent_same = shortcuts()
                    && open
                        .last()
                        .is_some_and(|o| o.5 == e.ns && same(o.1, e.prefix));
                if e.prefix != "xml" && !parent_same {
                    needed.push((e.prefix, e.ns));
                }
                let own_attrs = doc
                    .attrs
                    .get(e.attrs.start as usize..e.attrs.end as usize)
                    .unwrap_or(&[]);
                for a in own_attrs {
                    if !a.prefix.is_empty() && a.prefix != "xml" {
                        push_unique(&mut needed, a.prefix, a.ns, steps);
                    }
                }
                // ...and the listed prefixes. At the apex, every listed prefix in scope. Below
                // it, the parent already rendered the binding each listed prefix had there,
                // so only a binding this element declares itself can differ.
                if i == apex {
                    for &key in &inclusive {
                        match in_scope.get(key) {
                            Some(ns) => push_unique(&mut needed, key, ns, steps),
                            None if key.is_empty() => push_unique(&mut needed, "", Ns::NONE, steps),
                            None => {}
                        }
                    }
                } else if !inclusive.is_empty() {
                    for d in own_decls {
                        *steps += 1 + inclusive.len().ilog2() as u64;
                        if inclusive.binary_search(&d.prefix).is_ok() {
                            push_unique(&mut needed, d.prefix, d.ns, steps);
                        }
                    }
                }
                let mark = rendered.mark();
                // Of those, the bindings no output ancestor rendered, sorted by prefix (the
                // default, "", first).
                needed.retain(|&(prefix, ns)| rendered.get(prefix) != Some(ns));
                let new = &mut needed;
                new.sort_unstable_by(|a, b| {
                    *steps += 1;
                    order(a.0, b.0)
                });

                // `<` and the name, as the source writes them right at the element's start.
                let name_len = qname_len(e.prefix, e.local);
                let at = e.span[0] as usize;
                match src.get(at..at + 1 + name_len).filter(|_| shortcuts()) {
                    Some(tag) => out.extend_from_slice(tag),
                    None => {
                        out.push(b'<');
                        qname(out, e.prefix, e.local);
                    }
                }
                for &(prefix, ns) in new.iter() {
                    rendered.push(prefix, ns);
                    if prefix.is_empty() {
                        out.extend_from_slice(b" xmlns=\"");
                    } else {
                        out.extend_from_slice(b" xmlns:");
                        out.extend_from_slice(prefix.as_bytes());
                        out.extend_from_slice(b"=\"");
                    }
                    let uri = doc.ns_uri(ns);
                    if doc.ns_verbatim(ns) {
                        out.extend_from_slice(uri.as_bytes());
                    } else {
                        escape_attr(out, uri);
                    }
                    out.push(b'"');
                }
                let attrs = &mut indices;
                attrs.clear();
                attrs.extend(0..own_attrs.len());
                attrs.sort_unstable_by(|&x, &y| {
                    *steps += 1;
                    let (a, b) = (&own_attrs[x], &own_attrs[y]);
                    // Same namespace index means same URI: skip comparing URIs.
                    let by_ns = if a.ns == b.ns {
                        std::cmp::Ordering::Equal
                    } else {
                        order(doc.ns_uri(a.ns), doc.ns_uri(b.ns))
                    };
                    by_ns.then_with(|| order(a.local, b.local))
                });
                for &k in attrs.iter() {
                    let a = &own_attrs[k];
                    out.push(b' ');
                    if !a.source.is_empty() && shortcuts() {
                        // `name="value"` as written is already canonical.
                        out.extend_from_slice(a.source.as_bytes());
                        continue;
                    }
                    qname(out, a.prefix, a.local);
                    out.extend_from_slice(b"=\"");
                    if a.verbatim {
                        out.extend_from_slice(a.value.as_bytes());
                    } else {
                        escape_attr(out, &a.value);
                    }
                    out.push(b'"');
                }
                out.push(b'>');
                // The source's end tag is the canonical one when it is exactly `</name>` (not
                // `</name >`, and not the self-closing tag of an empty element).
                let end_tag = src
                    .get(e.span[2] as usize..e.span[3] as usize)
                    .filter(|t| t.len() == name_len + 3 && shortcuts())
                    .unwrap_or(&[]);
                open.push((node.end, e.prefix, e.local, mark, scope_mark, e.ns, end_tag));
            }
            Kind::Text(t) => escape_text(out, t),
            Kind::Comment(c) => {
                if opts.with_comments {
                    out.extend_from_slice(b"<!--");
                    out.extend_from_slice(c.as_bytes());
                    out.extend_from_slice(b"-->");
                }
            }
            Kind::Pi { target, data } => {
                out.extend_from_slice(b"<?");
                out.extend_from_slice(target.as_bytes());
                if !data.is_empty() {
                    out.push(b' ');
                    out.extend_from_slice(data.as_bytes());
                }
                out.extend_from_slice(b"?>");
            }
        }
        i += 1;
    }
    while let Some((_, prefix, local, _, _, _, source_end)) = open.pop() {
        if source_end.is_empty() {
            end_tag(out, prefix, local);
        } else {
            out.extend_from_slice(source_end);
        }
    }
    if out.len() - out_start > limit {
        return Err(Error::CanonicalFormTooLarge { limit });
    }
    Ok(())
}

/// Whether the shortcuts above are taken (copying tags from the source, skipping the lookup
/// of the parent's binding). Always in production; a test turns them off to compare the
/// output with the plain path byte for byte (`tree/differential.rs`).
#[cfg(not(test))]
fn shortcuts() -> bool {
    true
}

#[cfg(test)]
thread_local! {
    pub(crate) static SHORTCUTS: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

#[cfg(test)]
fn shortcuts() -> bool {
    SHORTCUTS.with(std::cell::Cell::get)
}

/// An open element of the walk: (subtree end, qname parts, rendered mark, in-scope mark,
/// namespace, the source's end tag when it is canonical, else empty).
type Open<'p> = (u32, &'p str, &'p str, usize, usize, Ns, &'p [u8]);

fn node_index(id: NodeId) -> u32 {
    // NodeId's field is private to the tree module; its Debug-free accessor lives here.
    crate::tree::node_index(id)
}

/// Code-point order of two short names, by an inline loop: `str::cmp` becomes a `memcmp`
/// call whose fixed cost dominates for names of a few bytes.
fn order(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Adds a binding unless its prefix is already there. `needed` holds at most one entry per
/// attribute of one element plus one, so the scan is bounded by the attribute limit.
fn push_unique<'a>(needed: &mut Vec<(&'a str, Ns)>, prefix: &'a str, ns: Ns, steps: &mut u64) {
    *steps += needed.len() as u64;
    if !needed.iter().any(|(p, _)| same(p, prefix)) {
        needed.push((prefix, ns));
    }
}

fn qname(out: &mut Vec<u8>, prefix: &str, local: &str) {
    if !prefix.is_empty() {
        out.extend_from_slice(prefix.as_bytes());
        out.push(b':');
    }
    out.extend_from_slice(local.as_bytes());
}

/// The length of `prefix:local` (or `local`).
fn qname_len(prefix: &str, local: &str) -> usize {
    if prefix.is_empty() {
        local.len()
    } else {
        prefix.len() + 1 + local.len()
    }
}

fn end_tag(out: &mut Vec<u8>, prefix: &str, local: &str) {
    out.extend_from_slice(b"</");
    qname(out, prefix, local);
    out.push(b'>');
}

/// Text node escaping (C14N 1.0 §2.3): `&`, `<`, `>` and CR. Long texts (a certificate, a
/// signature value) are searched with vectorized `memchr`, which copies the runs between
/// special bytes whole; short ones (mostly indentation) go byte by byte through the table.
fn escape_text(out: &mut Vec<u8>, s: &str) {
    /// Below this length the per-call cost of `memchr` exceeds the table's.
    const SEARCH_FROM: usize = 32;
    let bytes = s.as_bytes();
    if bytes.len() < SEARCH_FROM {
        // Mostly indentation: one branch-free screen, then one copy.
        if !bytes
            .iter()
            .fold(false, |acc, &b| acc | TEXT_SPECIAL[b as usize])
        {
            out.extend_from_slice(bytes);
            return;
        }
        return escape(out, s, &TEXT_SPECIAL);
    }
    let end = bytes.len();
    let mut from = 0;
    // The next CR at or after `from`: searched again only once passed, so each byte is
    // searched for a CR at most once, as for the other three by `memchr3`.
    let mut cr = memchr::memchr(b'\r', bytes).unwrap_or(end);
    while let Some(rest) = bytes.get(from..) {
        if cr < from {
            cr = memchr::memchr(b'\r', rest).map_or(end, |k| from + k);
        }
        let other = memchr::memchr3(b'&', b'<', b'>', rest).map_or(end, |k| from + k);
        let i = other.min(cr);
        let Some(&b) = bytes.get(i) else { break };
        out.extend_from_slice(bytes.get(from..i).unwrap_or(&[]));
        out.extend_from_slice(replacement(b));
        from = i + 1;
    }
    out.extend_from_slice(bytes.get(from..).unwrap_or(&[]));
}

/// Attribute value escaping (C14N 1.0 §2.3): `&`, `<`, `"`, TAB, LF and CR.
fn escape_attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, &ATTR_SPECIAL)
}

fn replacement(b: u8) -> &'static [u8] {
    match b {
        b'&' => b"&amp;",
        b'<' => b"&lt;",
        b'>' => b"&gt;",
        b'"' => b"&quot;",
        b'\t' => b"&#x9;",
        b'\n' => b"&#xA;",
        _ => b"&#xD;",
    }
}

fn escape(out: &mut Vec<u8>, s: &str, special: &[bool; 256]) {
    let bytes = s.as_bytes();
    let mut from = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if special[b as usize] {
            out.extend_from_slice(bytes.get(from..i).unwrap_or(&[]));
            out.extend_from_slice(replacement(b));
            from = i + 1;
        }
    }
    out.extend_from_slice(bytes.get(from..).unwrap_or(&[]));
}

#[cfg(test)]
mod tests {
    use super::{Options, TEXT_SPECIAL, canonicalize, escape, escape_text};
    use crate::{Document, Limits};

    /// Values and namespace URIs copied without escaping are exactly those escaping would not
    /// change: a `"` inside single quotes, a reference, a tab, or one in a URI, is escaped.
    #[test]
    fn only_values_without_special_bytes_are_copied_verbatim() {
        let xml =
            r#"<a:r xmlns:a="urn:x?p=1&amp;q=&quot;2&quot;" d="plain" b='say "hi"' c="t&#9;u"/>"#;
        let doc = Document::parse(xml.as_bytes(), &Limits::default()).unwrap();
        let mut out = Vec::new();
        canonicalize(doc.root(), &Options::default(), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"<a:r xmlns:a="urn:x?p=1&amp;q=&quot;2&quot;" b="say &quot;hi&quot;" c="t&#x9;u" d="plain"></a:r>"#
        );
    }

    /// The `memchr` path of long texts writes exactly what the byte-by-byte table writes,
    /// wherever the special bytes fall (first, last, adjacent, CRs before and after the
    /// others, none at all).
    #[test]
    fn long_text_escaping_agrees_with_the_table() {
        let pieces = [
            "&", "<", ">", "\r", "\r\r", "a", "é", "&<>\r", "\n", "\t", "\"",
        ];
        let mut cases = vec!["x".repeat(100), String::new()];
        for (i, p) in pieces.iter().enumerate() {
            for (j, q) in pieces.iter().enumerate() {
                let pad = "y".repeat(17 + i + j);
                cases.push(format!("{p}{pad}{q}{pad}{p}"));
                cases.push(format!("{pad}{p}{q}{pad}{q}{p}"));
            }
        }
        for case in &cases {
            let (mut fast, mut table) = (Vec::new(), Vec::new());
            escape_text(&mut fast, case);
            escape(&mut table, case, &TEXT_SPECIAL);
            assert_eq!(fast, table, "{case:?}");
        }
    }
}
