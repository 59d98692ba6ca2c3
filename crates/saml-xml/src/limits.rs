//! The parse limits: a leaf, below the tree that enforces them (and outside the crate root,
//! so no module needs an item of `lib.rs`).

/// Hard limits applied while parsing. Defaults suit SAML protocol messages; metadata documents
/// need larger ones.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Maximum input length in bytes.
    pub max_bytes: usize,
    /// Maximum element nesting depth.
    pub max_depth: usize,
    /// Maximum number of nodes (elements, text, comments, processing instructions).
    pub max_nodes: usize,
    /// Maximum number of attributes on one element, namespace declarations included.
    pub max_attributes: usize,
    /// Maximum number of namespace declarations in the whole document.
    pub max_namespace_declarations: usize,
}

impl Default for Limits {
    /// Limits for SAML protocol messages: a SPID Response is 8-20 KB, 9 levels deep, with
    /// a few hundred nodes.
    fn default() -> Self {
        Limits {
            max_bytes: 256 * 1024,
            max_depth: 32,
            max_nodes: 8 * 1024,
            max_attributes: 32,
            max_namespace_declarations: 256,
        }
    }
}

impl Limits {
    /// Limits for metadata documents, such as the SPID registry's aggregate: up to 32 MiB and
    /// a million nodes.
    pub fn metadata() -> Self {
        Limits {
            max_bytes: 32 * 1024 * 1024,
            max_depth: 32,
            max_nodes: 1024 * 1024,
            max_attributes: 64,
            max_namespace_declarations: 64 * 1024,
        }
    }
}
