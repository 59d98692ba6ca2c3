//! The one error type of this crate.

use std::fmt;

/// Why a document was refused.
///
/// Every variant is a reason to reject attacker-supplied bytes; none is a bug in the caller.
/// [`Error::code`] gives a stable, bounded label for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The input is longer than [`crate::Limits::max_bytes`].
    TooLarge {
        /// The configured limit, in bytes.
        limit: usize,
    },
    /// The input is not valid UTF-8. SAML messages are UTF-8; other encodings are refused.
    InvalidUtf8,
    /// The input holds a character that XML 1.0 forbids (a C0 control other than tab, LF and
    /// CR, or U+FFFE / U+FFFF), either literally or through a character reference.
    IllegalCharacter {
        /// Byte offset in the input.
        offset: usize,
    },
    /// The document has a `<!DOCTYPE`. DTDs are never processed; their mere presence is refused
    /// so that no other parser could read the document differently (XXE, billion laughs).
    Doctype,
    /// An entity reference other than the five predefined ones (`&lt;` `&gt;` `&amp;` `&apos;`
    /// `&quot;`) or a character reference.
    UndeclaredEntity {
        /// The entity name, as written.
        name: String,
    },
    /// A character reference that is malformed or names no legal XML character.
    InvalidCharacterReference {
        /// Byte offset in the input.
        offset: usize,
    },
    /// The XML declaration asks for something other than XML 1.0 in UTF-8, or is not at the
    /// very start of the document.
    UnsupportedDeclaration,
    /// A prefix is used on an element or attribute without being declared.
    UnboundPrefix {
        /// The undeclared prefix.
        prefix: String,
    },
    /// A namespace declaration that the Namespaces in XML 1.0 recommendation forbids: an empty
    /// prefixed declaration, a rebinding of `xml` or `xmlns`, or the reserved URIs bound to
    /// other prefixes.
    InvalidNamespaceDeclaration,
    /// An element or attribute name that is not a valid qualified name.
    InvalidName,
    /// Two attributes of one element have the same qualified or expanded name.
    DuplicateAttribute,
    /// Two elements carry the same identifier (`ID`, `Id`, `id` or `xml:id`). Identifiers are
    /// what signatures point at, so an ambiguous one is refused outright (signature wrapping).
    DuplicateId {
        /// The repeated identifier value.
        id: String,
    },
    /// Elements are nested deeper than [`crate::Limits::max_depth`].
    TooDeep {
        /// The configured limit.
        limit: usize,
    },
    /// The document has more nodes than [`crate::Limits::max_nodes`].
    TooManyNodes {
        /// The configured limit.
        limit: usize,
    },
    /// An element has more attributes than [`crate::Limits::max_attributes`].
    TooManyAttributes {
        /// The configured limit.
        limit: usize,
    },
    /// The document declares more namespaces than
    /// [`crate::Limits::max_namespace_declarations`].
    TooManyNamespaceDeclarations {
        /// The configured limit.
        limit: usize,
    },
    /// The document has no root element.
    NoRootElement,
    /// Element or non-whitespace text after the root element, or text before it.
    ContentOutsideRoot,
    /// The canonical form of an element would exceed
    /// [`crate::c14n::OUTPUT_FACTOR`] times its source length plus
    /// [`crate::c14n::OUTPUT_SLACK`]: namespace declarations re-rendered on many elements, a
    /// shape only an attack produces (exclusive C14N output amplification).
    CanonicalFormTooLarge {
        /// The bound, in bytes, for this element.
        limit: usize,
    },
    /// The tokenizer found the document ill-formed (unclosed tags, bad syntax, ...).
    Malformed {
        /// Byte offset in the input where the problem was found.
        offset: usize,
        /// The tokenizer's description, for logs only.
        reason: String,
    },
}

impl Error {
    /// A short, stable identifier for logs and metric labels. The set is closed.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "xml_too_large",
            Self::InvalidUtf8 => "xml_invalid_utf8",
            Self::IllegalCharacter { .. } => "xml_illegal_character",
            Self::Doctype => "xml_doctype",
            Self::UndeclaredEntity { .. } => "xml_undeclared_entity",
            Self::InvalidCharacterReference { .. } => "xml_invalid_char_ref",
            Self::UnsupportedDeclaration => "xml_unsupported_declaration",
            Self::UnboundPrefix { .. } => "xml_unbound_prefix",
            Self::InvalidNamespaceDeclaration => "xml_invalid_namespace_declaration",
            Self::InvalidName => "xml_invalid_name",
            Self::DuplicateAttribute => "xml_duplicate_attribute",
            Self::DuplicateId { .. } => "xml_duplicate_id",
            Self::TooDeep { .. } => "xml_too_deep",
            Self::TooManyNodes { .. } => "xml_too_many_nodes",
            Self::TooManyAttributes { .. } => "xml_too_many_attributes",
            Self::TooManyNamespaceDeclarations { .. } => "xml_too_many_namespace_declarations",
            Self::NoRootElement => "xml_no_root_element",
            Self::ContentOutsideRoot => "xml_content_outside_root",
            Self::CanonicalFormTooLarge { .. } => "xml_c14n_too_large",
            Self::Malformed { .. } => "xml_malformed",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "document larger than {limit} bytes"),
            Self::InvalidUtf8 => f.write_str("document is not valid UTF-8"),
            Self::IllegalCharacter { offset } => {
                write!(f, "character not allowed in XML 1.0 at byte {offset}")
            }
            Self::Doctype => f.write_str("document type declarations are not accepted"),
            Self::UndeclaredEntity { name } => write!(f, "entity reference &{name}; refused"),
            Self::InvalidCharacterReference { offset } => {
                write!(f, "invalid character reference at byte {offset}")
            }
            Self::UnsupportedDeclaration => {
                f.write_str("only XML 1.0 in UTF-8, declared at the start, is accepted")
            }
            Self::UnboundPrefix { prefix } => write!(f, "namespace prefix {prefix:?} not declared"),
            Self::InvalidNamespaceDeclaration => f.write_str("invalid namespace declaration"),
            Self::InvalidName => f.write_str("invalid element or attribute name"),
            Self::DuplicateAttribute => f.write_str("duplicate attribute"),
            Self::DuplicateId { id } => write!(f, "identifier {id:?} used more than once"),
            Self::TooDeep { limit } => write!(f, "elements nested deeper than {limit}"),
            Self::TooManyNodes { limit } => write!(f, "more than {limit} nodes"),
            Self::TooManyAttributes { limit } => {
                write!(f, "an element has more than {limit} attributes")
            }
            Self::TooManyNamespaceDeclarations { limit } => {
                write!(f, "more than {limit} namespace declarations")
            }
            Self::NoRootElement => f.write_str("no root element"),
            Self::ContentOutsideRoot => f.write_str("content outside the root element"),
            Self::CanonicalFormTooLarge { limit } => {
                write!(f, "canonical form larger than {limit} bytes")
            }
            Self::Malformed { offset, reason } => {
                write!(f, "malformed XML at byte {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}
