//! The tokenizer: the validated input `&str` cut into the tokens the tree builder reads, by
//! byte positions.
//!
//! Why our own and not quick-xml's reader (issue 20, target 3): the input is UTF-8-checked
//! once, whole, before tokenizing, and quick-xml checks every token again; its events and its
//! attribute iterator cost more than the narrow language accepted here needs. Every token
//! here is a sub-slice of the input cut at an ASCII delimiter, so slicing is an O(1)
//! boundary check and nothing is copied.
//!
//! The language is the one the quick-xml reader accepted with Varco's configuration (comments
//! checked for `--`, end names checked, no dangling `&`, empty elements not expanded), with
//! the same verdicts; a differential test (`tree.rs`, `differential`) runs both over the
//! fixtures, the fuzz seeds and mutations of them. What stays for the builder: names
//! (`split_qname`), references, attribute normalization, declaration rules, limits.
//! What the tokenizer itself refuses:
//! - `<!DOCTYPE` in any case, on sight ([`Error::Doctype`]): nothing after it is read;
//! - any other `<!` than a comment or `<![CDATA[`;
//! - an unclosed tag, comment, CDATA section, processing instruction or reference;
//! - `--` inside a comment (including a comment ending `--->`);
//! - `<?>`, and an attribute without `=` or without a quoted value.
//!
//! Each token costs the bytes it covers plus a constant; long runs (text, values, comments)
//! are searched with `memchr`.

use memchr::{memchr, memchr2, memchr3, memchr3_iter, memmem};

use crate::error::Error;

/// One token. Positions are the tokenizer's before and after it.
#[derive(Debug)]
pub(crate) enum Token<'a> {
    /// Character data up to the next `<` or `&`, raw (line ends not yet normalized).
    Text(&'a str),
    /// The name between `&` and `;`.
    Ref(&'a str),
    /// A start tag. Its attributes, `(name, raw value)`, are in the vector passed to
    /// [`Tokenizer::next`]; `attr_error` is a syntax error found among them, which the builder
    /// reports after its own checks of the element (as the reader it replaces did).
    Start {
        name: &'a str,
        empty: bool,
        attr_error: Option<usize>,
    },
    /// An end tag's name, trailing white space removed.
    End(&'a str),
    /// A comment's content.
    Comment(&'a str),
    /// A CDATA section's content.
    CData(&'a str),
    /// A processing instruction: its target (up to the first white space) and the rest, raw.
    Pi { target: &'a str, data: &'a str },
    /// `<?xml …?>`: the content after `xml`.
    Decl(&'a str),
    /// The end of the input.
    Eof,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Bytes that end a run, as bit flags of one table (one load and test per byte).
const ENDS_NAME: u8 = 1;
const ENDS_KEY: u8 = 2;
const ENDS_KEY_IN_TAG: u8 = 4;
const ENDS: [u8; 256] = {
    let mut t = [0u8; 256];
    let spaces = [b' ', b'\t', b'\r', b'\n'];
    let mut k = 0;
    while k < spaces.len() {
        t[spaces[k] as usize] = ENDS_NAME | ENDS_KEY | ENDS_KEY_IN_TAG;
        k += 1;
    }
    // A tag's name ends at white space, `>` or `/`; an attribute's name at white space or
    // `=`, and in a tag also at `>` or `/`.
    t[b'>' as usize] = ENDS_NAME | ENDS_KEY_IN_TAG;
    t[b'/' as usize] = ENDS_NAME | ENDS_KEY_IN_TAG;
    t[b'=' as usize] = ENDS_KEY | ENDS_KEY_IN_TAG;
    t
};

/// The offset of the first byte at or after `from` that ends a run of kind `ends` (or the
/// input's end).
fn scan(b: &[u8], from: usize, ends: u8) -> usize {
    let rest = b.get(from..).unwrap_or(&[]);
    from + rest
        .iter()
        .position(|&c| ENDS[c as usize] & ends != 0)
        .unwrap_or(rest.len())
}

fn malformed(offset: usize, reason: &str) -> Error {
    Error::Malformed {
        offset,
        reason: reason.into(),
    }
}

pub(crate) struct Tokenizer<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Tokenizer<'a> {
    pub(crate) fn new(src: &'a str) -> Self {
        Tokenizer { src, pos: 0 }
    }

    /// Byte offset of the next token.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    fn slice(&self, from: usize, to: usize) -> Result<&'a str, Error> {
        // Every cut is next to an ASCII delimiter, so it is a character boundary; `get`
        // checks it anyway (O(1)) rather than trusting that.
        self.src
            .get(from..to)
            .ok_or_else(|| malformed(from, "token boundary"))
    }

    /// The next token. `attrs` is cleared and receives a start tag's attributes.
    pub(crate) fn next(&mut self, attrs: &mut Vec<(&'a str, &'a str)>) -> Result<Token<'a>, Error> {
        let b = self.src.as_bytes();
        let pos = self.pos;
        let Some(rest) = b.get(pos..).filter(|r| !r.is_empty()) else {
            return Ok(Token::Eof);
        };
        match find2(b'<', b'&', rest) {
            None => {
                self.pos = b.len();
                Ok(Token::Text(self.slice(pos, b.len())?))
            }
            Some(0) if rest[0] == b'&' => self.reference(pos),
            Some(0) => self.markup(pos, attrs),
            Some(i) => {
                self.pos = pos + i;
                Ok(Token::Text(self.slice(pos, pos + i)?))
            }
        }
    }

    /// At `&`: the name up to `;`, which must come before any `&` or `<`.
    fn reference(&mut self, pos: usize) -> Result<Token<'a>, Error> {
        let b = self.src.as_bytes();
        let after = b.get(pos + 1..).unwrap_or(&[]);
        match memchr3(b';', b'&', b'<', after) {
            Some(i) if after[i] == b';' => {
                self.pos = pos + i + 2;
                Ok(Token::Ref(self.slice(pos + 1, pos + 1 + i)?))
            }
            _ => Err(malformed(pos, "unclosed reference")),
        }
    }

    /// At `<`.
    fn markup(
        &mut self,
        pos: usize,
        attrs: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Token<'a>, Error> {
        let b = self.src.as_bytes();
        match b.get(pos + 1) {
            None => Err(malformed(pos, "unclosed tag")),
            Some(b'!') => self.bang(pos),
            Some(b'?') => self.question(pos),
            Some(b'/') => {
                // The first `>`: a quote in an end tag can only be part of its name, which
                // then matches no start tag (a start tag's name never holds one) and is refused
                // as a mismatch, wherever the tag is taken to end.
                let end = find(b'>', b.get(pos..).unwrap_or(&[]))
                    .map(|k| pos + k)
                    .ok_or_else(|| malformed(pos, "unclosed end tag"))?;
                let content = b.get(pos + 2..end).unwrap_or(&[]);
                let len = content
                    .iter()
                    .rposition(|&c| !is_space(c))
                    .map_or(0, |p| p + 1);
                self.pos = end + 1;
                Ok(Token::End(self.slice(pos + 2, pos + 2 + len)?))
            }
            Some(_) => self.start_tag(pos, attrs),
        }
    }

    /// At `<!`: a comment, a CDATA section, or a refusal.
    fn bang(&mut self, pos: usize) -> Result<Token<'a>, Error> {
        let b = self.src.as_bytes();
        let rest = b.get(pos..).unwrap_or(&[]);
        if rest.starts_with(b"<!--") {
            let body = pos + 4;
            let k = memmem::find(b.get(body..).unwrap_or(&[]), b"-->")
                .map(|k| body + k)
                .ok_or_else(|| malformed(pos, "unclosed comment"))?;
            // `--` is not allowed in a comment, nor a `-` right before the closing `-->`.
            let content = b.get(body..k).unwrap_or(&[]);
            for i in memchr::memchr_iter(b'-', content) {
                if b.get(body + i + 1) == Some(&b'-') {
                    return Err(malformed(body + i, "'--' in comment"));
                }
            }
            self.pos = k + 3;
            return Ok(Token::Comment(self.slice(body, k)?));
        }
        if rest.starts_with(b"<![CDATA[") {
            let body = pos + 9;
            let k = memmem::find(b.get(body..).unwrap_or(&[]), b"]]>")
                .map(|k| body + k)
                .ok_or_else(|| malformed(pos, "unclosed CDATA section"))?;
            self.pos = k + 3;
            return Ok(Token::CData(self.slice(body, k)?));
        }
        if rest
            .get(2..9)
            .is_some_and(|d| d.eq_ignore_ascii_case(b"DOCTYPE"))
        {
            return Err(Error::Doctype);
        }
        Err(malformed(pos, "unknown markup declaration"))
    }

    /// At `<?`: the XML declaration or a processing instruction, up to the first `?>`.
    fn question(&mut self, pos: usize) -> Result<Token<'a>, Error> {
        let b = self.src.as_bytes();
        // The `?` of `<?` may be the one of `?>`: `<?>` is found, then refused as too short.
        let q = memmem::find(b.get(pos + 1..).unwrap_or(&[]), b"?>")
            .map(|k| pos + 1 + k)
            .ok_or_else(|| malformed(pos, "unclosed processing instruction"))?;
        if q < pos + 2 {
            return Err(malformed(pos, "empty processing instruction"));
        }
        self.pos = q + 2;
        let content = self.slice(pos + 2, q)?;
        let c = content.as_bytes();
        if c.starts_with(b"xml") && c.get(3).is_none_or(|&x| is_space(x)) {
            return Ok(Token::Decl(content.get(3..).unwrap_or("")));
        }
        let name_len = c.iter().position(|&x| is_space(x)).unwrap_or(c.len());
        Ok(Token::Pi {
            target: content.get(..name_len).unwrap_or(""),
            data: content.get(name_len..).unwrap_or(""),
        })
    }

    /// At `<` of a start tag: its name and attributes in one pass.
    fn start_tag(
        &mut self,
        pos: usize,
        attrs: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Token<'a>, Error> {
        let b = self.src.as_bytes();
        attrs.clear();
        let name_start = pos + 1;
        let mut i = scan(b, name_start, ENDS_NAME);
        let name = self.slice(name_start, i)?;
        loop {
            while b.get(i).is_some_and(|&c| is_space(c)) {
                i += 1;
            }
            match b.get(i) {
                None => return Err(malformed(pos, "unclosed tag")),
                Some(b'>') => {
                    self.pos = i + 1;
                    return Ok(Token::Start {
                        name,
                        empty: false,
                        attr_error: None,
                    });
                }
                Some(b'/') if b.get(i + 1) == Some(&b'>') => {
                    self.pos = i + 2;
                    return Ok(Token::Start {
                        name,
                        empty: true,
                        attr_error: None,
                    });
                }
                Some(_) => match attribute(b, i, true) {
                    Ok((key, value, next)) => {
                        attrs.push((self.slice(key.0, key.1)?, self.slice(value.0, value.1)?));
                        i = next;
                    }
                    Err(Unclosed) => return Err(malformed(pos, "unclosed attribute value")),
                    Err(Bad(at)) => {
                        // The element is still delimited by the first `>` outside quotes;
                        // the builder reports the attribute error after its own checks.
                        let end = tag_end(b, pos).ok_or_else(|| malformed(pos, "unclosed tag"))?;
                        self.pos = end + 1;
                        let empty = end > name_start && b.get(end - 1) == Some(&b'/');
                        return Ok(Token::Start {
                            name,
                            empty,
                            attr_error: Some(at),
                        });
                    }
                },
            }
        }
    }
}

/// Why an attribute could not be read.
pub(crate) enum AttrSyntax {
    /// No `=` or no quoted value at this offset.
    Bad(usize),
    /// An opening quote with no closing one: the tag never ends.
    Unclosed,
}
use AttrSyntax::{Bad, Unclosed};

type Span = (usize, usize);

/// One `name = "value"` (or single quotes) starting at `i`, white space allowed around `=`:
/// the name's and the value's spans and the offset after the closing quote. The name ends at
/// white space or `=`, and in a tag (`in_tag`) also at `>` or `/`; whether it is a name is for
/// the builder to say.
pub(crate) fn attribute(
    b: &[u8],
    mut i: usize,
    in_tag: bool,
) -> Result<(Span, Span, usize), AttrSyntax> {
    let key_start = i;
    i = scan(b, i, if in_tag { ENDS_KEY_IN_TAG } else { ENDS_KEY });
    let key = (key_start, i);
    while b.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    if b.get(i) != Some(&b'=') {
        return Err(Bad(i));
    }
    i += 1;
    while b.get(i).is_some_and(|&c| is_space(c)) {
        i += 1;
    }
    let Some(&quote @ (b'"' | b'\'')) = b.get(i) else {
        return Err(Bad(i));
    };
    let value_start = i + 1;
    let len = find(quote, b.get(value_start..).unwrap_or(&[])).ok_or(Unclosed)?;
    Ok((key, (value_start, value_start + len), value_start + len + 1))
}

/// Below this many bytes a plain loop finds a byte in fewer instructions than `memchr`'s
/// dispatch and setup; most runs (indentation, attribute values) are shorter.
const SHORT: usize = 24;

/// The first `x` in `hay`.
fn find(x: u8, hay: &[u8]) -> Option<usize> {
    let head = hay.get(..SHORT).unwrap_or(hay);
    if let Some(i) = find_short(head, |v| zero_byte(v ^ splat(x)), |c| c == x) {
        return Some(i);
    }
    memchr(x, hay.get(head.len()..)?).map(|i| head.len() + i)
}

/// The first `x` or `y` in `hay`.
fn find2(x: u8, y: u8, hay: &[u8]) -> Option<usize> {
    let head = hay.get(..SHORT).unwrap_or(hay);
    let words = |v: u64| zero_byte(v ^ splat(x)) | zero_byte(v ^ splat(y));
    if let Some(i) = find_short(head, words, |c| c == x || c == y) {
        return Some(i);
    }
    memchr2(x, y, hay.get(head.len()..)?).map(|i| head.len() + i)
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte of a word.
fn splat(b: u8) -> u64 {
    LOW_BITS * u64::from(b)
}

/// The high bit of the first zero byte of `v` (in memory order: the word is read little
/// endian) is its lowest set bit. Bits above it may be set falsely (a borrow), never below,
/// so the lowest set bit locates the first zero exactly, and a zero result means none.
fn zero_byte(v: u64) -> u64 {
    v.wrapping_sub(LOW_BITS) & !v & HIGH_BITS
}

/// The first byte of a short `head` that `hit` accepts: eight bytes per step through `words`
/// (which must mark exactly the bytes `hit` accepts, as [`zero_byte`] does), the tail byte by
/// byte.
fn find_short(head: &[u8], words: impl Fn(u64) -> u64, hit: impl Fn(u8) -> bool) -> Option<usize> {
    let mut chunks = head.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let m = words(u64::from_le_bytes(bytes));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = chunks.remainder();
    tail.iter().position(|&c| hit(c)).map(|i| at + i)
}

/// The `>` that ends the tag starting at `pos`: the first one outside single or double
/// quotes.
fn tag_end(b: &[u8], pos: usize) -> Option<usize> {
    let rest = b.get(pos..)?;
    let mut quote = None;
    for i in memchr3_iter(b'>', b'\'', b'"', rest) {
        let c = rest[i];
        match quote {
            None if c == b'>' => return Some(pos + i),
            None => quote = Some(c),
            Some(q) if q == c => quote = None,
            Some(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{find, find2};

    /// The word-at-a-time search finds what a plain scan finds: the targets at every offset
    /// of the short head and past it, next to bytes one above and below them (where a borrow
    /// could mark a false byte), alone, in pairs, and absent.
    #[test]
    fn short_search_agrees_with_a_scan() {
        let fill = [b'a', 0x00, 0x01, 0x80, 0xFF, b'<' - 1, b'<' + 1, b'&' + 1];
        for &f in &fill {
            for len in 0..40 {
                for i in 0..=len {
                    for j in i..=len {
                        let mut hay = vec![f; len];
                        if i < len {
                            hay[i] = b'<';
                        }
                        if j < len {
                            hay[j] = b'&';
                        }
                        let want1 = hay.iter().position(|&c| c == b'<');
                        let want2 = hay.iter().position(|&c| c == b'<' || c == b'&');
                        assert_eq!(find(b'<', &hay), want1, "{hay:?}");
                        assert_eq!(find2(b'<', b'&', &hay), want2, "{hay:?}");
                        assert_eq!(find2(b'&', b'<', &hay), want2, "{hay:?}");
                    }
                }
            }
        }
        // A zero target byte (the all-zero splat) next to ones.
        let hay = [1u8, 1, 1, 0, 1, 0, 1, 1, 1, 1];
        assert_eq!(find(0, &hay), Some(3));
        assert_eq!(find(1, &hay), Some(0));
    }
}
