//! The strict CBOR reader: ciborium-ll's header tokenizer with our own value builder.
//!
//! Refused: indefinite lengths (a DeviceResponse never needs them, and they make sizes
//! unknowable up front), a map key seen twice in one map (two readers would pick different
//! values), a map key that is not an integer or a string, nesting deeper than a limit, a length larger than the bytes left (so no
//! allocation is ever larger than the input), and anything after the first item. Every
//! item keeps its byte span in the input: digests and signatures are computed over the
//! bytes as received. Work is linear in the input, except duplicate-key detection, which
//! is quadratic in one map's size and bounded by [`MAX_MAP`].

use ciborium_ll::{Decoder, Header};

use crate::Error;

/// Most entries in one map: an MSO's digest map for one namespace holds a few dozen.
pub const MAX_MAP: usize = 256;

/// A CBOR value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Major type 0.
    Uint(u64),
    /// Major type 1: the value is `-1 - n`.
    Nint(u64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A text string.
    Text(String),
    /// An array.
    Array(Vec<Item>),
    /// A map, in the order received.
    Map(Vec<(Item, Item)>),
    /// A tagged item.
    Tag(u64, Box<Item>),
    /// `false`, `true`, `null`, `undefined` and other simple values.
    Simple(u8),
    /// A float of any width.
    Float(f64),
}

/// A value with the byte range it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The value.
    pub value: Value,
    /// Offset of its first byte.
    pub start: usize,
    /// Offset after its last byte.
    pub end: usize,
}

/// CBOR `null`.
pub const NULL: u8 = 22;

fn bad(reason: &'static str) -> Error {
    Error::Cbor { reason }
}

impl Item {
    /// The text, if a text string.
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// The bytes, if a byte string.
    #[must_use]
    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The entries, if a map.
    #[must_use]
    pub fn map(&self) -> Option<&[(Item, Item)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, if an array.
    #[must_use]
    pub fn array(&self) -> Option<&[Item]> {
        match &self.value {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// The value under text key `key`, if a map holds it.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Item> {
        self.map()?
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value under integer key `key` (COSE labels), if a map holds it.
    #[must_use]
    pub fn get_int(&self, key: i64) -> Option<&Item> {
        self.map()?
            .iter()
            .find(|(k, _)| k.int() == Some(key))
            .map(|(_, v)| v)
    }

    /// The value as a signed integer, if it is one that fits.
    #[must_use]
    pub fn int(&self) -> Option<i64> {
        match self.value {
            Value::Uint(u) => i64::try_from(u).ok(),
            Value::Nint(n) => i64::try_from(n).ok().map(|n| -1 - n),
            _ => None,
        }
    }
}

/// Parses `bytes` as exactly one CBOR item, nested at most `max_depth` levels.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Item, Error> {
    let mut p = Parser {
        dec: Decoder::from(bytes),
        len: bytes.len(),
        max_depth,
    };
    let item = p.item(0)?;
    if item.end != bytes.len() {
        return Err(bad("bytes after the item"));
    }
    Ok(item)
}

struct Parser<'a> {
    dec: Decoder<&'a [u8]>,
    len: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn left(&mut self) -> usize {
        self.len.saturating_sub(self.dec.offset())
    }

    /// A declared length, checked against the bytes left (each element takes one byte at
    /// least, so this bounds counts as well as string sizes).
    fn length(&mut self, n: Option<usize>) -> Result<usize, Error> {
        let n = n.ok_or(bad("indefinite length"))?;
        if n > self.left() {
            return Err(bad("length beyond the end of the input"));
        }
        Ok(n)
    }

    fn raw(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        let mut buf = vec![0u8; n];
        ciborium_io::Read::read_exact(&mut self.dec, &mut buf).map_err(|_| bad("truncated"))?;
        Ok(buf)
    }

    fn item(&mut self, depth: usize) -> Result<Item, Error> {
        if depth > self.max_depth {
            return Err(bad("nested too deeply"));
        }
        let start = self.dec.offset();
        let header = self.dec.pull().map_err(|_| bad("not CBOR"))?;
        let value = match header {
            Header::Positive(u) => Value::Uint(u),
            Header::Negative(n) => Value::Nint(n),
            Header::Float(f) => Value::Float(f),
            Header::Simple(s) => Value::Simple(s),
            Header::Break => return Err(bad("unexpected break")),
            Header::Bytes(n) => {
                let n = self.length(n)?;
                Value::Bytes(self.raw(n)?)
            }
            Header::Text(n) => {
                let n = self.length(n)?;
                let raw = self.raw(n)?;
                Value::Text(String::from_utf8(raw).map_err(|_| bad("text is not UTF-8"))?)
            }
            Header::Array(n) => {
                let n = self.length(n)?;
                let mut a = Vec::with_capacity(n);
                for _ in 0..n {
                    a.push(self.item(depth + 1)?);
                }
                Value::Array(a)
            }
            Header::Map(n) => {
                let n = self.length(n)?;
                if n > MAX_MAP {
                    return Err(bad("map too large"));
                }
                let mut m: Vec<(Item, Item)> = Vec::with_capacity(n);
                for _ in 0..n {
                    let k = self.item(depth + 1)?;
                    // Keys are integers or strings in every structure read here; other
                    // keys (arrays, floats, tags) would make equality ambiguous.
                    if !matches!(
                        k.value,
                        Value::Uint(_) | Value::Nint(_) | Value::Text(_) | Value::Bytes(_)
                    ) {
                        return Err(bad("map key is not an integer or a string"));
                    }
                    if m.iter().any(|(old, _)| old.value == k.value) {
                        return Err(bad("duplicate map key"));
                    }
                    let v = self.item(depth + 1)?;
                    m.push((k, v));
                }
                Value::Map(m)
            }
            Header::Tag(t) => Value::Tag(t, Box::new(self.item(depth + 1)?)),
        };
        Ok(Item {
            value,
            start,
            end: self.dec.offset(),
        })
    }
}

/// Appends a CBOR head (major type and argument, shortest form).
pub(crate) fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

/// Appends a byte string.
pub(crate) fn bstr(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}

/// Appends a text string.
pub(crate) fn tstr(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}
