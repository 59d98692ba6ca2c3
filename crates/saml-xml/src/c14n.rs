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

use crate::tree::{Kind, Ns, same};
use crate::{Element, NodeId};

/// What to canonicalize besides the element itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'o> {
    /// Keep comments (the `#WithComments` variant).
    pub with_comments: bool,
    /// The InclusiveNamespaces PrefixList: prefixes treated as in inclusive C14N. `#default`
    /// names the default namespace.
    pub inclusive_prefixes: &'o [&'o str],
    /// A node whose whole subtree is left out (the enveloped signature).
    pub exclude: Option<NodeId>,
}

/// Appends the canonical form of `element`'s subtree to `out`.
pub fn canonicalize(element: Element<'_, '_>, opts: &Options<'_>, out: &mut Vec<u8>) {
    let doc = element.document();
    let apex = element.node_id();
    let Some(apex_node) = doc.node(node_index(apex)) else {
        return;
    };
    let end = apex_node.end;

    // Bindings output by output ancestors, innermost last. The empty default namespace is
    // "already output" at the apex: nothing above it is in the output.
    let mut rendered: Vec<(&str, Ns)> = vec![("", Ns::NONE)];
    // Open elements: (subtree end, qname parts, rendered mark).
    let mut open: Vec<(u32, &str, &str, usize)> = Vec::with_capacity(16);
    let mut needed: Vec<(&str, Ns)> = Vec::with_capacity(8);
    let mut attrs: Vec<usize> = Vec::with_capacity(16);
    let exclude = opts.exclude.map(node_index);

    let mut i = node_index(apex);
    while i < end {
        while let Some(&(close_at, prefix, local, mark)) = open.last() {
            if close_at > i {
                break;
            }
            end_tag(out, prefix, local);
            rendered.truncate(mark);
            open.pop();
        }
        let Some(node) = doc.node(i) else { break };
        if Some(i) == exclude {
            i = node.end;
            continue;
        }
        match &node.kind {
            Kind::Element(e) => {
                // Which bindings does this element need in the output?
                needed.clear();
                if e.prefix != "xml" {
                    needed.push((e.prefix, e.ns));
                }
                let own_attrs = doc
                    .attrs
                    .get(e.attrs.start as usize..e.attrs.end as usize)
                    .unwrap_or(&[]);
                for a in own_attrs {
                    if !a.prefix.is_empty() && a.prefix != "xml" {
                        push_unique(&mut needed, a.prefix, a.ns);
                    }
                }
                for &p in opts.inclusive_prefixes {
                    let key = if p == "#default" { "" } else { p };
                    if key == "xml" {
                        continue;
                    }
                    match doc.lookup_prefix(i, key) {
                        Some(ns) => push_unique(&mut needed, key, ns),
                        None if key.is_empty() => push_unique(&mut needed, "", Ns::NONE),
                        None => {}
                    }
                }
                let mark = rendered.len();
                for &(prefix, ns) in &needed {
                    let current = rendered
                        .iter()
                        .rev()
                        .find(|(p, _)| same(p, prefix))
                        .map(|r| r.1);
                    if current != Some(ns) {
                        rendered.push((prefix, ns));
                    }
                }
                // The new bindings, sorted by prefix (the default, "", first).
                let new = rendered.get_mut(mark..).unwrap_or(&mut []);
                new.sort_unstable_by(|a, b| order(a.0, b.0));

                out.push(b'<');
                qname(out, e.prefix, e.local);
                for &(prefix, ns) in rendered.get(mark..).unwrap_or(&[]) {
                    if prefix.is_empty() {
                        out.extend_from_slice(b" xmlns=\"");
                    } else {
                        out.extend_from_slice(b" xmlns:");
                        out.extend_from_slice(prefix.as_bytes());
                        out.extend_from_slice(b"=\"");
                    }
                    escape_attr(out, doc.ns_uri(ns));
                    out.push(b'"');
                }
                attrs.clear();
                attrs.extend(0..own_attrs.len());
                attrs.sort_unstable_by(|&x, &y| {
                    let (a, b) = (&own_attrs[x], &own_attrs[y]);
                    // Same namespace index means same URI: skip comparing URIs.
                    let by_ns = if a.ns == b.ns {
                        std::cmp::Ordering::Equal
                    } else {
                        order(doc.ns_uri(a.ns), doc.ns_uri(b.ns))
                    };
                    by_ns.then_with(|| order(a.local, b.local))
                });
                for &k in &attrs {
                    let a = &own_attrs[k];
                    out.push(b' ');
                    qname(out, a.prefix, a.local);
                    out.extend_from_slice(b"=\"");
                    escape_attr(out, &a.value);
                    out.push(b'"');
                }
                out.push(b'>');
                open.push((node.end, e.prefix, e.local, mark));
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
    while let Some((_, prefix, local, _)) = open.pop() {
        end_tag(out, prefix, local);
    }
}

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

fn push_unique<'a>(needed: &mut Vec<(&'a str, Ns)>, prefix: &'a str, ns: Ns) {
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

fn end_tag(out: &mut Vec<u8>, prefix: &str, local: &str) {
    out.extend_from_slice(b"</");
    qname(out, prefix, local);
    out.push(b'>');
}

/// Text node escaping (C14N 1.0 §2.3): `&`, `<`, `>` and CR.
fn escape_text(out: &mut Vec<u8>, s: &str) {
    escape(out, s, &TEXT_SPECIAL)
}

/// Attribute value escaping (C14N 1.0 §2.3): `&`, `<`, `"`, TAB, LF and CR.
fn escape_attr(out: &mut Vec<u8>, s: &str) {
    escape(out, s, &ATTR_SPECIAL)
}

/// Bytes that need escaping, as a lookup table: text.
const TEXT_SPECIAL: [bool; 256] = special(b"&<>\r");
/// Bytes that need escaping, as a lookup table: attribute values.
const ATTR_SPECIAL: [bool; 256] = special(b"&<\"\t\n\r");

const fn special(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
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
