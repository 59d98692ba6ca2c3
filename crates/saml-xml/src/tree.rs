//! The read-only tree and its builder.
//!
//! Nodes live in one arena in document order (pre-order), so a subtree is a contiguous range of
//! node indices: `id .. end`. That makes canonicalization a linear walk and lets a signature
//! check ask "is node X inside element E?" with two integer comparisons.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;

use crate::error::Error;
use crate::limits::Limits;
use crate::scope::{Scope, same};
use crate::token::{self, Token, Tokenizer};

/// The namespace bound to the `xml` prefix by definition.
pub const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
/// The namespace of namespace declarations themselves; it may never be declared.
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// Index of a node in its [`Document`]. Only meaningful for the document that produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

impl NodeId {
    fn index(self) -> usize {
        self.0 as usize
    }
}

pub(crate) fn node_index(id: NodeId) -> u32 {
    id.0
}

/// Index into [`Document::namespaces`]; 0 is "no namespace", 1 is [`XML_NS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ns(u32);

impl Ns {
    pub(crate) const NONE: Ns = Ns(0);
    const XML: Ns = Ns(1);
}

const NO_PARENT: u32 = u32::MAX;

#[derive(Debug)]
pub(crate) struct NodeData<'a> {
    parent: u32,
    /// One past the last node of this node's subtree.
    pub(crate) end: u32,
    pub(crate) kind: Kind<'a>,
}

#[derive(Debug)]
pub(crate) enum Kind<'a> {
    Element(ElementData<'a>),
    Text(Cow<'a, str>),
    Comment(Cow<'a, str>),
    Pi { target: &'a str, data: Cow<'a, str> },
}

#[derive(Debug)]
pub(crate) struct ElementData<'a> {
    /// Empty when the name is unprefixed.
    pub(crate) prefix: &'a str,
    pub(crate) local: &'a str,
    pub(crate) ns: Ns,
    pub(crate) attrs: Range<u32>,
    pub(crate) decls: Range<u32>,
    /// Byte offsets: start of `<`, end of the start tag, start of the end tag, end of element.
    /// The name as written follows the `<` at `span[0]` (C14N copies `<` and the name from
    /// there in one piece).
    pub(crate) span: [u32; 4],
}

#[derive(Debug)]
pub(crate) struct AttrData<'a> {
    /// Empty when the name is unprefixed.
    pub(crate) prefix: &'a str,
    pub(crate) local: &'a str,
    pub(crate) ns: Ns,
    pub(crate) value: Cow<'a, str>,
    /// The value holds no byte that C14N escapes in an attribute (`&`, `<`, `"`, TAB, LF,
    /// CR), so its canonical form is the value itself. Known while parsing: it is exactly when
    /// the raw value has none of them (then nothing was normalized either).
    pub(crate) verbatim: bool,
    /// `name="value"` as the source writes it, when that is the attribute's canonical form
    /// (a verbatim value, double quotes, no white space around `=`), so C14N copies it in one
    /// piece; empty otherwise.
    pub(crate) source: &'a str,
}

/// One namespace declaration as written on an element. `ns` is [`Ns::NONE`] for `xmlns=""`.
#[derive(Debug)]
pub(crate) struct Decl<'a> {
    /// Empty for the default namespace.
    pub(crate) prefix: &'a str,
    pub(crate) ns: Ns,
}

/// A parsed document: immutable, namespace-resolved, with a unique-ID index.
///
/// It borrows the input, so values that need no unescaping cost no copy.
#[derive(Debug)]
pub struct Document<'a> {
    source: &'a str,
    pub(crate) nodes: Vec<NodeData<'a>>,
    pub(crate) attrs: Vec<AttrData<'a>>,
    pub(crate) decls: Vec<Decl<'a>>,
    namespaces: Vec<Cow<'a, str>>,
    /// For each namespace, true when its URI needs no C14N escaping as an attribute value.
    ns_verbatim: Vec<bool>,
    ids: HashMap<Cow<'a, str>, NodeId>,
}

impl<'a> Document<'a> {
    /// Parses untrusted bytes.
    ///
    /// Refuses, with a typed [`Error`]: input over the limits, anything but UTF-8 XML 1.0, any
    /// DOCTYPE, entity references other than the predefined ones, unbound prefixes, duplicate
    /// attributes, duplicate identifiers, and any ill-formed markup.
    pub fn parse(input: &'a [u8], limits: &Limits) -> Result<Self, Error> {
        if input.len() > limits.max_bytes {
            return Err(Error::TooLarge {
                limit: limits.max_bytes,
            });
        }
        // SIMD validation: the same verdict as `std::str::from_utf8`, several times faster on
        // the mostly-ASCII text of SAML messages.
        let text = simdutf8::basic::from_utf8(input).map_err(|_| Error::InvalidUtf8)?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        // Whether the input holds a TAB or a CR at all: without either, the character screen
        // is cheaper and no CR needs looking for again.
        let tab_or_cr = memchr::memchr2(b'\t', b'\r', text.as_bytes()).is_some();
        check_chars(text.as_bytes(), tab_or_cr)?;
        let mut builder = Builder::new(text, limits, tab_or_cr);
        let result = builder.run();
        crate::work::record(builder.steps + builder.scope.steps);
        result.map(|()| builder.doc)
    }

    /// The text the document was parsed from (without a byte-order mark). Element spans index
    /// into it.
    pub fn source(&self) -> &'a str {
        self.source
    }

    /// The root element.
    pub fn root(&self) -> Element<'_, 'a> {
        // The builder refuses documents without a root element, and the root is always the
        // first node pushed.
        Element {
            doc: self,
            id: NodeId(0),
        }
    }

    /// The element whose `ID` (or `Id`, `id`, `xml:id`) attribute has this value. Identifiers
    /// are unique in a parsed document.
    pub fn element_by_id(&self, id: &str) -> Option<Element<'_, 'a>> {
        self.ids.get(id).map(|&id| Element { doc: self, id })
    }

    /// The node with this identifier, if it is an element.
    pub fn element(&self, id: NodeId) -> Option<Element<'_, 'a>> {
        match self.nodes.get(id.index())?.kind {
            Kind::Element(_) => Some(Element { doc: self, id }),
            _ => None,
        }
    }

    pub(crate) fn node(&self, id: u32) -> Option<&NodeData<'a>> {
        self.nodes.get(id as usize)
    }

    pub(crate) fn ns_uri(&self, ns: Ns) -> &str {
        self.namespaces.get(ns.0 as usize).map_or("", |s| s)
    }

    /// True when [`Document::ns_uri`] of `ns` is its own canonical form as an attribute value.
    pub(crate) fn ns_verbatim(&self, ns: Ns) -> bool {
        self.ns_verbatim
            .get(ns.0 as usize)
            .copied()
            .unwrap_or(false)
    }

    /// The namespace declarations written on node `id` (none unless it is an element).
    pub(crate) fn decls_of(&self, id: u32) -> &[Decl<'a>] {
        match self.node(id).map(|n| &n.kind) {
            Some(Kind::Element(e)) => self
                .decls
                .get(e.decls.start as usize..e.decls.end as usize)
                .unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// A view of one element of a [`Document`].
#[derive(Clone, Copy)]
pub struct Element<'d, 'a> {
    doc: &'d Document<'a>,
    id: NodeId,
}

impl std::fmt::Debug for Element<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Element({:?} {{{}}}{})",
            self.id,
            self.namespace().unwrap_or(""),
            self.local_name()
        )
    }
}

impl PartialEq for Element<'_, '_> {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.doc, other.doc) && self.id == other.id
    }
}

impl Eq for Element<'_, '_> {}

/// A child node of an element.
#[derive(Debug, Clone, Copy)]
pub enum Child<'d, 'a> {
    /// A child element.
    Element(Element<'d, 'a>),
    /// Character data, with references resolved and line ends normalized. Adjacent text and
    /// CDATA sections form one node; a comment or processing instruction splits text.
    Text(&'d str),
    /// A comment's content.
    Comment(&'d str),
    /// A processing instruction.
    ProcessingInstruction {
        /// Its target.
        target: &'d str,
        /// Its data, without the separating white space.
        data: &'d str,
    },
}

impl<'d, 'a> Element<'d, 'a> {
    fn data(&self) -> &'d ElementData<'a> {
        match self.doc.nodes.get(self.id.index()).map(|n| &n.kind) {
            Some(Kind::Element(e)) => e,
            // An `Element` is only ever made for an element node of its own document.
            _ => unreachable!("Element view over a non-element node"),
        }
    }

    fn node(&self) -> &'d NodeData<'a> {
        &self.doc.nodes[self.id.index()]
    }

    /// The document this element belongs to.
    pub fn document(&self) -> &'d Document<'a> {
        self.doc
    }

    /// This element's node identifier.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// Local name (without prefix).
    pub fn local_name(&self) -> &'d str {
        self.data().local
    }

    /// The prefix as written, if any.
    pub fn prefix(&self) -> Option<&'d str> {
        let p = self.data().prefix;
        (!p.is_empty()).then_some(p)
    }

    /// The namespace URI, if the element is in one.
    pub fn namespace(&self) -> Option<&'d str> {
        let ns = self.data().ns;
        (ns != Ns::NONE).then(|| self.doc.ns_uri(ns))
    }

    /// True when the element has this namespace URI and local name.
    pub fn is(&self, namespace: &str, local: &str) -> bool {
        self.local_name() == local && self.namespace() == Some(namespace)
    }

    /// The value of the unqualified attribute `local`.
    pub fn attribute(&self, local: &str) -> Option<&'d str> {
        self.attrs()
            .iter()
            .find(|a| a.ns == Ns::NONE && a.local == local)
            .map(|a| a.value.as_ref())
    }

    /// The value of the attribute `{namespace}local`.
    pub fn attribute_ns(&self, namespace: &str, local: &str) -> Option<&'d str> {
        self.attrs()
            .iter()
            .find(|a| a.ns != Ns::NONE && a.local == local && self.doc.ns_uri(a.ns) == namespace)
            .map(|a| a.value.as_ref())
    }

    /// All attributes except namespace declarations, in document order, as
    /// `(namespace, local name, value)`.
    pub fn attributes(
        &self,
    ) -> impl Iterator<Item = (Option<&'d str>, &'d str, &'d str)> + use<'d, 'a> {
        let doc = self.doc;
        self.attrs().iter().map(move |a| {
            let ns = (a.ns != Ns::NONE).then(|| doc.ns_uri(a.ns));
            (ns, a.local, a.value.as_ref())
        })
    }

    fn attrs(&self) -> &'d [AttrData<'a>] {
        let r = &self.data().attrs;
        self.doc
            .attrs
            .get(r.start as usize..r.end as usize)
            .unwrap_or(&[])
    }

    /// The parent element, `None` for the root.
    pub fn parent(&self) -> Option<Element<'d, 'a>> {
        let p = self.node().parent;
        (p != NO_PARENT).then_some(Element {
            doc: self.doc,
            id: NodeId(p),
        })
    }

    /// True when `other` is this element or lies inside it.
    pub fn contains(&self, other: NodeId) -> bool {
        self.id.0 <= other.0 && other.0 < self.node().end
    }

    /// The child nodes, in document order.
    pub fn children(&self) -> Children<'d, 'a> {
        Children {
            doc: self.doc,
            next: self.id.0 + 1,
            end: self.node().end,
        }
    }

    /// The child elements, in document order.
    pub fn child_elements(&self) -> impl Iterator<Item = Element<'d, 'a>> + use<'d, 'a> {
        self.children().filter_map(|c| match c {
            Child::Element(e) => Some(e),
            _ => None,
        })
    }

    /// The text of this element: the concatenation of all its text children. Comments and
    /// processing instructions between text pieces are skipped, never used as terminators, so
    /// `a<!---->b` reads `ab` (the comment-injection class of CVE-2017-11427).
    pub fn text(&self) -> Cow<'d, str> {
        let mut texts = self.children().filter_map(|c| match c {
            Child::Text(t) => Some(t),
            _ => None,
        });
        let Some(first) = texts.next() else {
            return Cow::Borrowed("");
        };
        match texts.next() {
            None => Cow::Borrowed(first),
            Some(second) => {
                let mut s = String::with_capacity(first.len() + second.len());
                s.push_str(first);
                s.push_str(second);
                texts.for_each(|t| s.push_str(t));
                Cow::Owned(s)
            }
        }
    }

    /// True when the element has a comment or processing instruction among its descendants.
    pub fn has_comments_or_pis(&self) -> bool {
        let range = self.id.index()..self.node().end as usize;
        self.doc
            .nodes
            .get(range)
            .unwrap_or(&[])
            .iter()
            .any(|n| matches!(n.kind, Kind::Comment(_) | Kind::Pi { .. }))
    }

    /// Byte range of the whole element in [`Document::source`].
    pub fn span(&self) -> Range<usize> {
        let s = self.data().span;
        s[0] as usize..s[3] as usize
    }

    /// Byte range of the element's content (between its start and end tags). Empty, at the end
    /// of the element, for a self-closing tag.
    pub fn content_span(&self) -> Range<usize> {
        let s = self.data().span;
        s[1] as usize..s[2] as usize
    }
}

/// Iterator over the children of an element.
pub struct Children<'d, 'a> {
    doc: &'d Document<'a>,
    next: u32,
    end: u32,
}

impl<'d, 'a> Iterator for Children<'d, 'a> {
    type Item = Child<'d, 'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.end {
            return None;
        }
        let id = self.next;
        let node = self.doc.node(id)?;
        self.next = node.end;
        Some(match &node.kind {
            Kind::Element(_) => Child::Element(Element {
                doc: self.doc,
                id: NodeId(id),
            }),
            Kind::Text(t) => Child::Text(t),
            Kind::Comment(c) => Child::Comment(c),
            Kind::Pi { target, data } => Child::ProcessingInstruction { target, data },
        })
    }
}

// === Parsing ===

/// Refuses bytes XML 1.0 never allows: C0 controls other than tab, LF, CR, and the
/// non-characters U+FFFE / U+FFFF (EF BF BE / EF BF BF in UTF-8). Chunks are screened with a
/// branch-free test the compiler vectorizes; only a suspicious chunk is looked at byte by byte.
/// The screen is exact but for 0xEF (a lead byte of any character from U+F000), so the chunk
/// only sets how much a rare false alarm costs; 256 bytes amortize the per-chunk test and
/// reduction (a quarter fewer instructions than 64 on an 11 KB Response).
///
/// Most messages hold neither TAB nor CR (`tab_or_cr`, one `memchr2` in the caller): their
/// screen then leaves out the two comparisons, which cannot matter, and costs about a third
/// less.
fn check_chars(b: &[u8], tab_or_cr: bool) -> Result<(), Error> {
    if !tab_or_cr {
        check_chars_with(b, |c: u8| (c < 0x20) & (c != b'\n') | (c == 0xEF))
    } else {
        check_chars_with(b, |c: u8| {
            (c < 0x20) & (c != b'\t') & (c != b'\n') & (c != b'\r') | (c == 0xEF)
        })
    }
}

/// [`check_chars`] with a screen that flags every byte the exact test below may refuse.
fn check_chars_with(b: &[u8], suspicious: impl Fn(u8) -> bool) -> Result<(), Error> {
    const CHUNK: usize = 256;
    for (n, chunk) in b.chunks(CHUNK).enumerate() {
        if !chunk.iter().fold(false, |acc, &c| acc | suspicious(c)) {
            continue;
        }
        for (k, &c) in chunk.iter().enumerate() {
            let i = n * CHUNK + k;
            let bad = match c {
                b'\t' | b'\n' | b'\r' => false,
                0..0x20 => true,
                0xEF => b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)),
                _ => false,
            };
            if bad {
                return Err(Error::IllegalCharacter { offset: i });
            }
        }
    }
    Ok(())
}

fn is_legal_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A loose NCName check: what matters here is that names cannot smuggle markup or colons.
/// Non-ASCII bytes are accepted as name characters. The one name check of the workspace
/// (the verifier applies it to PrefixList entries).
pub fn is_ncname(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else {
        return false;
    };
    NAME_START[first as usize] && s.bytes().all(|c| NAME_CHAR[c as usize])
}

/// Bytes that may start a name: ASCII letters, `_`, and any byte of a non-ASCII character.
const NAME_START: [bool; 256] = name_table(false);
/// Bytes that may continue a name: also digits, `-` and `.`.
const NAME_CHAR: [bool; 256] = name_table(true);

const fn name_table(continuation: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphabetic()
            || c == b'_'
            || c >= 0x80
            || (continuation && (c.is_ascii_digit() || c == b'-' || c == b'.'));
        b += 1;
    }
    t
}

/// Splits a QName into (prefix, local); the prefix is empty when there is none. Both parts
/// must be names in the sense of [`is_ncname`]. One pass of table lookups classifies every
/// byte (name character, colon, anything else); the colon is looked for only when there is
/// exactly one.
fn split_qname(name: &str) -> Result<(&str, &str), Error> {
    let bytes = name.as_bytes();
    // One addition per byte: the low half of the sum counts colons, the high half bytes that
    // are not name characters. Below 2^32 bytes neither half can overflow; a longer name
    // (only under a configured input limit past 4 GiB) is refused.
    if u32::try_from(bytes.len()).is_err() {
        return Err(Error::InvalidName);
    }
    let sum = bytes
        .iter()
        .fold(0u64, |acc, &c| acc + QNAME_WEIGHT[c as usize]);
    if sum >> 32 != 0 {
        return Err(Error::InvalidName);
    }
    let colons = sum & u64::from(u32::MAX);
    let starts = |part: &str| {
        part.as_bytes()
            .first()
            .is_some_and(|&c| NAME_START[c as usize])
    };
    let (prefix, local) = match colons {
        0 => ("", name),
        1 => {
            // No `Error` is made unless returned: building one eagerly (`ok_or`) and dropping
            // it cost a call per prefixed name.
            let parts = bytes
                .iter()
                .position(|&c| c == b':')
                .and_then(|colon| Some((name.get(..colon)?, name.get(colon + 1..)?)));
            match parts {
                Some((prefix, local)) if starts(prefix) => (prefix, local),
                _ => return Err(Error::InvalidName),
            }
        }
        _ => return Err(Error::InvalidName),
    };
    if !starts(local) {
        return Err(Error::InvalidName);
    }
    Ok((prefix, local))
}

/// For [`split_qname`]: [`NAME_CHAR`] bytes weigh 0, `:` weighs 1, every other byte 2^32.
const QNAME_WEIGHT: [u64; 256] = {
    let mut t = [1u64 << 32; 256];
    let mut b = 0;
    while b < 256 {
        if NAME_CHAR[b] {
            t[b] = 0;
        }
        b += 1;
    }
    t[b':' as usize] = 1;
    t
};

/// Resolves one reference body (`lt`, `#x41`, ...) to its character.
fn resolve_reference(name: &str, offset: usize) -> Result<char, Error> {
    let c = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "apos" => '\'',
        "quot" => '"',
        _ => {
            let Some(num) = name.strip_prefix('#') else {
                return Err(Error::UndeclaredEntity {
                    name: name.chars().take(64).collect(),
                });
            };
            let bad = || Error::InvalidCharacterReference { offset };
            let (digits, radix) = match num.strip_prefix('x') {
                Some(hex) => (hex, 16),
                None => (num, 10),
            };
            if digits.is_empty() || digits.len() > 8 {
                return Err(bad());
            }
            let n = u32::from_str_radix(digits, radix).map_err(|_| bad())?;
            let c = char::from_u32(n).ok_or_else(bad)?;
            if !is_legal_char(c) {
                return Err(bad());
            }
            c
        }
    };
    Ok(c)
}

/// Line-end normalization of character data (XML 1.0 §2.11): CRLF and lone CR become LF.
fn normalize_eol(s: &str) -> Cow<'_, str> {
    if !s.contains('\r') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\r' {
            if chars.peek() == Some(&'\n') {
                chars.next();
            }
            out.push('\n');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Attribute-value normalization (XML 1.0 §3.3.3) for CDATA attributes: references resolved,
/// each literal white-space character (CRLF counting as one) becomes a space. With the value,
/// whether it holds no byte C14N escapes in an attribute value (see `AttrData::verbatim`).
fn normalize_attr(raw: &str, offset: usize) -> Result<(Cow<'_, str>, bool), Error> {
    // One pass of table lookups, no early exit: `"` only matters to C14N, the others to both.
    let mut seen = 0u8;
    for b in raw.bytes() {
        seen |= ATTR_CLASS[b as usize];
    }
    let (quote, other) = (seen & 1 != 0, seen & 2 != 0);
    if !other {
        return Ok((Cow::Borrowed(raw), !quote));
    }
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '<', '\t', '\n', '\r']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        rest = &rest[i + 1..];
        match c {
            b'<' => {
                return Err(Error::Malformed {
                    offset,
                    reason: "'<' in attribute value".into(),
                });
            }
            b'&' => {
                let end = rest.find(';').ok_or_else(|| Error::Malformed {
                    offset,
                    reason: "unterminated reference in attribute value".into(),
                })?;
                out.push(resolve_reference(&rest[..end], offset)?);
                rest = &rest[end + 1..];
            }
            b'\r' => {
                out.push(' ');
                rest = rest.strip_prefix('\n').unwrap_or(rest);
            }
            _ => out.push(' '),
        }
    }
    out.push_str(rest);
    Ok((Cow::Owned(out), false))
}

/// `key="value"` in `src`, when `key` and `value` (both slices of `src`) are written exactly so:
/// nothing between the name and `="`, and a double quote after the value. Empty otherwise.
fn canonical_source<'a>(src: &'a str, key: &str, value: &str) -> &'a str {
    let base = src.as_ptr() as usize;
    let k = (key.as_ptr() as usize).wrapping_sub(base);
    let v = (value.as_ptr() as usize).wrapping_sub(base);
    let b = src.as_bytes();
    // Checked: a slice from elsewhere (never, today) falls back instead of overflowing.
    let exact = k.checked_add(key.len() + 2) == Some(v)
        && b.get(k + key.len()) == Some(&b'=')
        && b.get(v - 1) == Some(&b'"')
        && b.get(v + value.len()) == Some(&b'"');
    if exact {
        src.get(k..v + value.len() + 1).unwrap_or("")
    } else {
        ""
    }
}

/// For [`normalize_attr`]: `"` is 1; `&`, `<`, TAB, LF and CR are 2; other bytes 0.
const ATTR_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'&' as usize] = 2;
    t[b'<' as usize] = 2;
    t[b'\t' as usize] = 2;
    t[b'\n' as usize] = 2;
    t[b'\r' as usize] = 2;
    t
};

/// `xmlns` or `xmlns:…`: a namespace declaration, not an attribute.
fn is_xmlns(key: &str) -> bool {
    let k = key.as_bytes();
    k.len() >= 5 && &k[..5] == b"xmlns" && (k.len() == 5 || k.get(5) == Some(&b':'))
}

fn is_id_attribute(prefix: &str, local: &str) -> bool {
    match prefix {
        "" => matches!(local, "ID" | "Id" | "id"),
        "xml" => local == "id",
        _ => false,
    }
}

struct Open<'a> {
    node: u32,
    scope_mark: usize,
    /// The start tag's name as written, which the end tag must repeat.
    name: &'a str,
}

struct Builder<'a, 'l> {
    src: &'a str,
    limits: &'l Limits,
    doc: Document<'a>,
    /// In-scope namespace bindings, innermost last.
    scope: Scope<'a, Ns>,
    /// Namespace URI to its index in `doc.namespaces`, once there are more than a few (a scan
    /// of the list per declaration would be quadratic in the declarations: 64 Ki of them are
    /// allowed in metadata).
    uris: Option<HashMap<Cow<'a, str>, u32>>,
    /// Work done, for [`crate::work`].
    steps: u64,
    open: Vec<Open<'a>>,
    /// Text being accumulated for the current text node: adjacent text, references and CDATA
    /// form one node.
    text: Option<Cow<'a, str>>,
    text_start: usize,
    seen_root: bool,
    /// Whether the input holds a CR at all: without one, character data needs no line-end
    /// normalization.
    has_cr: bool,
}

impl<'a, 'l> Builder<'a, 'l> {
    /// `tab_or_cr`: whether `src` holds a TAB or a CR (false rules out a CR without a search).
    fn new(src: &'a str, limits: &'l Limits, tab_or_cr: bool) -> Self {
        let mut namespaces = Vec::with_capacity(8);
        namespaces.push(Cow::Borrowed(""));
        namespaces.push(Cow::Borrowed(XML_NS));
        Builder {
            src,
            limits,
            doc: Document {
                source: src,
                nodes: Vec::with_capacity(src.len() / 24),
                attrs: Vec::with_capacity(src.len() / 64),
                // Room for the few declarations, namespaces and identifiers of a SAML message
                // from the start: growing from empty cost a reallocation or two each.
                decls: Vec::with_capacity(8),
                namespaces,
                ns_verbatim: {
                    let mut v = Vec::with_capacity(8);
                    v.extend([true, true]);
                    v
                },
                ids: HashMap::with_capacity(4),
            },
            scope: {
                let mut scope = Scope::new();
                scope.push("xml", Ns::XML);
                scope
            },
            uris: None,
            steps: 0,
            open: Vec::with_capacity(16),
            text: None,
            text_start: 0,
            seen_root: false,
            has_cr: tab_or_cr && memchr::memchr(b'\r', src.as_bytes()).is_some(),
        }
    }

    fn run(&mut self) -> Result<(), Error> {
        let mut tokens = Tokenizer::new(self.src);
        let mut attrs = Vec::new();
        let mut first = true;
        loop {
            let start = tokens.position();
            let token = tokens.next(&mut attrs)?;
            let end = tokens.position();
            self.steps += 1;
            let was_first = std::mem::replace(&mut first, false);
            match token {
                Token::Decl(content) => {
                    if !was_first {
                        return Err(Error::UnsupportedDeclaration);
                    }
                    check_declaration(content)?;
                }
                Token::Start {
                    name,
                    empty,
                    attr_error,
                } => {
                    self.start_element(name, &attrs, attr_error, start, end, empty)?;
                }
                Token::End(name) => self.end_element(name, start, end)?,
                Token::Text(raw) | Token::CData(raw) => {
                    let text = self.normalize_eol(raw);
                    self.add_text(text, start)?;
                }
                Token::Ref(name) => {
                    let c = resolve_reference(name, start)?;
                    self.add_char(c, start)?;
                }
                Token::Comment(content) => {
                    self.flush_text()?;
                    if !self.open.is_empty() {
                        // Line ends are normalized in all character data, comments included.
                        let content = self.normalize_eol(content);
                        self.push_node(Kind::Comment(content))?;
                    }
                }
                Token::Pi { target, data } => {
                    if target.eq_ignore_ascii_case("xml") {
                        return Err(Error::UnsupportedDeclaration);
                    }
                    if !is_ncname(target) {
                        return Err(Error::InvalidName);
                    }
                    let data = data.trim_start_matches([' ', '\t', '\r', '\n']);
                    self.flush_text()?;
                    if !self.open.is_empty() {
                        let data = self.normalize_eol(data);
                        self.push_node(Kind::Pi { target, data })?;
                    }
                }
                Token::Eof => break,
            }
        }
        self.flush_text()?;
        if !self.open.is_empty() {
            return Err(Error::Malformed {
                offset: self.src.len(),
                reason: "unclosed element at end of input".into(),
            });
        }
        if !self.seen_root {
            return Err(Error::NoRootElement);
        }
        Ok(())
    }

    /// Line-end normalization, skipped whole when the document holds no CR (one `memchr`
    /// over the input, instead of one per piece of character data).
    #[inline]
    fn normalize_eol(&self, s: &'a str) -> Cow<'a, str> {
        if self.has_cr {
            normalize_eol(s)
        } else {
            Cow::Borrowed(s)
        }
    }

    #[inline(always)]
    fn push_node(&mut self, kind: Kind<'a>) -> Result<u32, Error> {
        let id = self.next_node()?;
        let parent = self.open.last().map_or(NO_PARENT, |o| o.node);
        self.doc.nodes.push(NodeData {
            parent,
            end: id + 1,
            kind,
        });
        Ok(id)
    }

    /// The id the next node pushed gets, refused past the node limit.
    fn next_node(&self) -> Result<u32, Error> {
        if self.doc.nodes.len() >= self.limits.max_nodes {
            return Err(Error::TooManyNodes {
                limit: self.limits.max_nodes,
            });
        }
        Ok(self.doc.nodes.len() as u32)
    }

    fn add_text(&mut self, piece: Cow<'a, str>, offset: usize) -> Result<(), Error> {
        if self.open.is_empty() {
            // Outside the root only white space may appear.
            if piece.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
                return Ok(());
            }
            return Err(Error::ContentOutsideRoot);
        }
        match &mut self.text {
            None => {
                self.text = Some(piece);
                self.text_start = offset;
            }
            Some(t) => t.to_mut().push_str(&piece),
        }
        Ok(())
    }

    /// A resolved reference: one character of text, appended without a string of its own.
    fn add_char(&mut self, c: char, offset: usize) -> Result<(), Error> {
        if self.open.is_empty() {
            return if matches!(c, ' ' | '\t' | '\n' | '\r') {
                Ok(())
            } else {
                Err(Error::ContentOutsideRoot)
            };
        }
        match &mut self.text {
            None => {
                self.text = Some(Cow::Owned(c.to_string()));
                self.text_start = offset;
            }
            Some(t) => t.to_mut().push(c),
        }
        Ok(())
    }

    fn flush_text(&mut self) -> Result<(), Error> {
        if let Some(t) = self.text.take() {
            self.push_node(Kind::Text(t))?;
        }
        Ok(())
    }

    fn intern(&mut self, uri: Cow<'a, str>) -> Ns {
        /// Up to this many URIs, a scan is cheaper than hashing.
        const LINEAR: usize = 8;
        if uri.is_empty() {
            return Ns::NONE;
        }
        let namespaces = &mut self.doc.namespaces;
        match &mut self.uris {
            None => {
                if let Some(i) = namespaces.iter().position(|u| *u == uri) {
                    self.steps += i as u64 + 1;
                    return Ns(i as u32);
                }
                self.steps += namespaces.len() as u64;
                if namespaces.len() >= LINEAR {
                    let map = namespaces
                        .iter()
                        .enumerate()
                        .map(|(i, u)| (u.clone(), i as u32))
                        .collect();
                    self.uris = Some(map);
                }
            }
            Some(map) => {
                self.steps += 1;
                if let Some(&i) = map.get(&uri) {
                    return Ns(i);
                }
            }
        }
        let index = namespaces.len() as u32;
        if let Some(map) = &mut self.uris {
            map.insert(uri.clone(), index);
        }
        self.doc
            .ns_verbatim
            .push(!crate::special::needs_attr_escape(&uri));
        self.doc.namespaces.push(uri);
        Ns(index)
    }

    /// The binding of `prefix` in scope; the default namespace is "none" unless declared.
    fn resolve(&mut self, prefix: &str) -> Option<Ns> {
        let found = self.scope.get(prefix);
        match found {
            None if prefix.is_empty() => Some(Ns::NONE),
            other => other,
        }
    }

    fn start_element(
        &mut self,
        qname: &'a str,
        attributes: &[(&'a str, &'a str)],
        attr_error: Option<usize>,
        start: usize,
        end: usize,
        empty: bool,
    ) -> Result<(), Error> {
        self.flush_text()?;
        if self.open.is_empty() {
            if self.seen_root {
                return Err(Error::ContentOutsideRoot);
            }
            self.seen_root = true;
        }
        if self.open.len() >= self.limits.max_depth {
            return Err(Error::TooDeep {
                limit: self.limits.max_depth,
            });
        }
        let (prefix, local) = split_qname(qname)?;

        // Normalize the raw attributes once, straight into the document's attribute list
        // (the name as written in `local`, the namespace not yet known); declarations must be
        // known before any prefix on this element can be resolved. Duplicates are caught
        // below (expanded names for attributes, prefixes for declarations).
        let attr_start = self.doc.attrs.len();
        for (n, &(key, value)) in attributes.iter().enumerate() {
            if n >= self.limits.max_attributes {
                return Err(Error::TooManyAttributes {
                    limit: self.limits.max_attributes,
                });
            }
            self.steps += 1;
            let (normalized, verbatim) = normalize_attr(value, start)?;
            let source = if verbatim {
                canonical_source(self.src, key, value)
            } else {
                ""
            };
            self.doc.attrs.push(AttrData {
                prefix: "",
                local: key,
                ns: Ns::NONE,
                value: normalized,
                verbatim,
                source,
            });
        }
        if let Some(at) = attr_error {
            return Err(Error::Malformed {
                offset: at,
                reason: "attribute without '=' and a quoted value".into(),
            });
        }

        let scope_mark = self.scope.mark();
        let decl_start = self.doc.decls.len() as u32;
        let mut k = attr_start;
        while let Some(a) = self.doc.attrs.get(k) {
            k += 1;
            let key = a.local;
            let declared = if key == "xmlns" {
                ""
            } else if let Some(p) = key.strip_prefix("xmlns:") {
                if p.is_empty() || !is_ncname(p) {
                    return Err(Error::InvalidName);
                }
                p
            } else {
                continue;
            };
            let value = a.value.clone();
            let uri: &str = &value;
            let reserved = uri == XML_NS || uri == XMLNS_NS;
            match declared {
                "xmlns" => return Err(Error::InvalidNamespaceDeclaration),
                "xml" if uri != XML_NS => return Err(Error::InvalidNamespaceDeclaration),
                // Re-declaring `xml` to its own URI is allowed and changes nothing.
                "xml" => continue,
                "" if reserved => return Err(Error::InvalidNamespaceDeclaration),
                "" => {}
                _ if uri.is_empty() || reserved => {
                    return Err(Error::InvalidNamespaceDeclaration);
                }
                _ => {}
            }
            // Bounded by the attribute limit: declarations count as attributes.
            let mine = self.doc.decls.get(decl_start as usize..).unwrap_or(&[]);
            self.steps += mine.len() as u64 + 1;
            if mine.iter().any(|d| same(d.prefix, declared)) {
                return Err(Error::DuplicateAttribute);
            }
            if self.doc.decls.len() >= self.limits.max_namespace_declarations {
                return Err(Error::TooManyNamespaceDeclarations {
                    limit: self.limits.max_namespace_declarations,
                });
            }
            let ns = self.intern(value);
            self.scope.push(declared, ns);
            self.doc.decls.push(Decl {
                prefix: declared,
                ns,
            });
        }
        let decl_end = self.doc.decls.len() as u32;

        // Without declarations of its own an element sees its parent's bindings, so a prefix
        // it shares with its parent means the parent's namespace (no lookup).
        let inherited = if decl_start == decl_end {
            self.open.last().and_then(|o| {
                match self.doc.nodes.get(o.node as usize).map(|n| &n.kind) {
                    Some(Kind::Element(p)) if same(p.prefix, prefix) => Some(p.ns),
                    _ => None,
                }
            })
        } else {
            None
        };
        let ns = match inherited {
            Some(ns) => ns,
            None => self.resolve(prefix).ok_or_else(|| Error::UnboundPrefix {
                prefix: prefix.chars().take(64).collect(),
            })?,
        };
        if !prefix.is_empty() && ns == Ns::NONE {
            return Err(Error::UnboundPrefix {
                prefix: prefix.chars().take(64).collect(),
            });
        }

        // The element's node is pushed once its attributes are known, with this id: nothing
        // pushes a node in between. The limit is checked here, as before the attributes.
        let node = self.next_node()?;
        // The attributes proper, resolved in place and moved down over the declarations
        // (which are not attributes): `kept` of them so far, from `attr_start`.
        let mut kept = attr_start;
        for k in attr_start..self.doc.attrs.len() {
            let Some(key) = self.doc.attrs.get(k).map(|a| a.local) else {
                break;
            };
            if is_xmlns(key) {
                continue;
            }
            let (aprefix, alocal) = split_qname(key)?;
            let ans = if aprefix.is_empty() {
                Ns::NONE
            } else {
                match self.resolve(aprefix) {
                    Some(ns) if ns != Ns::NONE => ns,
                    _ => {
                        return Err(Error::UnboundPrefix {
                            prefix: aprefix.chars().take(64).collect(),
                        });
                    }
                }
            };
            // Expanded-name uniqueness (Namespaces in XML §6.3): `a:x` and `b:x` bound to the
            // same URI are the same attribute. Quadratic in one element's attributes, which
            // the attribute limit bounds: at most that limit per attribute.
            let siblings = self.doc.attrs.get(attr_start..kept).unwrap_or(&[]);
            self.steps += siblings.len() as u64 + 1;
            if siblings
                .iter()
                .any(|a| a.ns == ans && same(a.local, alocal))
            {
                return Err(Error::DuplicateAttribute);
            }
            if is_id_attribute(aprefix, alocal) {
                let value = self
                    .doc
                    .attrs
                    .get(k)
                    .map_or(Cow::Borrowed(""), |a| a.value.clone());
                if self.doc.ids.contains_key(value.as_ref()) {
                    return Err(Error::DuplicateId {
                        id: value.chars().take(128).collect(),
                    });
                }
                self.doc.ids.insert(value, NodeId(node));
            }
            self.doc.attrs.swap(kept, k);
            if let Some(a) = self.doc.attrs.get_mut(kept) {
                a.prefix = aprefix;
                a.local = alocal;
                a.ns = ans;
            }
            kept += 1;
        }
        // What is left past `kept` are the declarations, now recorded in `decls`.
        self.doc.attrs.truncate(kept);
        let (attr_start, attr_end) = (attr_start as u32, kept as u32);

        self.push_node(Kind::Element(ElementData {
            prefix,
            local,
            ns,
            attrs: attr_start..attr_end,
            decls: decl_start..decl_end,
            span: [start as u32, end as u32, end as u32, end as u32],
        }))?;
        if empty {
            self.scope.truncate(scope_mark);
        } else {
            self.open.push(Open {
                node,
                scope_mark,
                name: qname,
            });
        }
        Ok(())
    }

    fn end_element(&mut self, name: &str, start: usize, end: usize) -> Result<(), Error> {
        let open = self.open.pop().ok_or_else(|| Error::Malformed {
            offset: start,
            reason: "end tag without start tag".into(),
        })?;
        if !same(open.name, name) {
            return Err(Error::Malformed {
                offset: start,
                reason: "end tag does not match the start tag".into(),
            });
        }
        self.flush_text()?;
        self.scope.truncate(open.scope_mark);
        let node_end = self.doc.nodes.len() as u32;
        if let Some(n) = self.doc.nodes.get_mut(open.node as usize) {
            n.end = node_end;
            if let Kind::Element(e) = &mut n.kind {
                e.span[2] = start as u32;
                e.span[3] = end as u32;
            }
        }
        Ok(())
    }
}

/// The XML declaration's pseudo-attributes (after `xml`): `version="1.0"` first, and if an
/// encoding is named, UTF-8. Every pseudo-attribute must be readable as `name="value"` (the
/// quick-xml reader stopped reading at the encoding and let garbage after it pass).
fn check_declaration(content: &str) -> Result<(), Error> {
    let b = content.as_bytes();
    let mut i = 0;
    let mut first = true;
    let mut encoding_seen = false;
    loop {
        while b
            .get(i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let (key, value, next) =
            token::attribute(b, i, false).map_err(|_| Error::UnsupportedDeclaration)?;
        let key = content.get(key.0..key.1).unwrap_or("");
        let value = content.get(value.0..value.1).unwrap_or("");
        if key.is_empty() {
            return Err(Error::UnsupportedDeclaration);
        }
        if std::mem::replace(&mut first, false) && (key != "version" || value != "1.0") {
            return Err(Error::UnsupportedDeclaration);
        }
        if key == "encoding"
            && !std::mem::replace(&mut encoding_seen, true)
            && !value.eq_ignore_ascii_case("utf-8")
        {
            return Err(Error::UnsupportedDeclaration);
        }
        i = next;
    }
    if first {
        // No version at all.
        return Err(Error::UnsupportedDeclaration);
    }
    Ok(())
}

#[cfg(test)]
mod differential;
#[cfg(any(test, feature = "reference"))]
pub(crate) mod reference;
