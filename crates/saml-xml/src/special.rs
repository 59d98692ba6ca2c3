//! The bytes canonical XML escapes (C14N 1.0 §2.3), as lookup tables. Their own module
//! because both the parser (which records, once per document, which values need no escaping)
//! and the canonicalizer (which escapes) read them, and neither may import the other.

/// True when attribute-value escaping (`c14n::escape_attr`) would change `s`. The parser
/// records the answer for namespace URIs once per document, so the canonical form copies the
/// usual URI without looking at it.
pub(crate) fn needs_attr_escape(s: &str) -> bool {
    s.bytes().any(|b| ATTR_SPECIAL[b as usize])
}

/// Bytes that need escaping, as a lookup table: text.
pub(crate) const TEXT_SPECIAL: [bool; 256] = special(b"&<>\r");
/// Bytes that need escaping, as a lookup table: attribute values.
pub(crate) const ATTR_SPECIAL: [bool; 256] = special(b"&<\"\t\n\r");

const fn special(bytes: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        table[bytes[i] as usize] = true;
        i += 1;
    }
    table
}
