//! Untrusted bytes to a bounded, namespace-resolved, read-only XML tree, and Exclusive XML
//! Canonicalization 1.0 of its subtrees.
//!
//! This is the only XML parser on Varco's request path. Signature verification
//! (`xmldsig`) and data extraction (`saml`) read the same [`Document`], so what is signed is
//! what is used: there is no second parser to disagree with, and no re-serialization.
//!
//! Invariants, stated as absences:
//! - no DTD is ever read: a `<!DOCTYPE` is an error, so no entity is ever expanded and nothing
//!   is ever fetched;
//! - no prefix is ever unbound and no identifier (`ID`, `Id`, `id`, `xml:id`) is ever shared by
//!   two elements in a [`Document`];
//! - no input past [`Limits`] is ever fully parsed: limits are checked while tokenizing;
//! - no work grows faster than the input: parsing and canonicalization do a bounded number of
//!   steps per input byte, counted in [`work`] (issue 17; docs/THREATS.md, "Algorithmic
//!   complexity");
//! - no text is ever cut at a comment: adjacent character data is one node, and
//!   [`Element::text`] concatenates all text children.
//!
//! The tokenizer is its own (`token.rs`), over the input validated once as UTF-8; this crate
//! adds namespaces, the rules above and the tree. quick-xml, the tokenizer before it, is kept
//! only as the reference of a differential test and fuzz target (feature `reference`).

mod error;
mod limits;
mod scope;
mod special;
mod token;
mod tree;

pub mod c14n;
pub mod work;

pub use error::Error;
pub use limits::Limits;
/// The quick-xml reader as tokenizer, for the differential fuzz target only.
#[cfg(feature = "reference")]
#[doc(hidden)]
pub use tree::reference::{differential_check, parse_reference};
pub use tree::{Child, Children, Document, Element, NodeId, XML_NS, is_ncname};

/// Escapes text for XML (and HTML) element content or a double- or single-quoted attribute
/// value: `&`, `<`, `>`, `"` and `'` become references. For writing documents and pages;
/// canonical forms have their own rules in [`c14n`].
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s
        .bytes()
        .any(|b| matches!(b, b'&' | b'<' | b'>' | b'"' | b'\''))
    {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}
