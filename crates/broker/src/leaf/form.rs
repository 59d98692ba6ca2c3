//! The crate's one decoder of `%XX` escapes: query strings, `application/x-www-form-urlencoded`
//! bodies (the ACS form, the logout and legacy forms), and the certificate header a
//! TLS-terminating proxy forwards. Every decoding caller in the broker comes through
//! [`decode`]; [`encode`] is the one encoder of a query-string value.
//!
//! May import: nothing in the crate.

use std::borrow::Cow;

/// How `+` and a malformed escape are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Form encoding: `+` is a space, and a `%` not followed by two hex digits stays as it
    /// was typed (what browsers and the WHATWG URL standard do).
    Form,
    /// Plain escapes, as nginx writes `$ssl_client_escaped_cert`: `+` is itself (nginx
    /// escapes a space as `%20`), and a bad escape refuses the whole value.
    Strict,
}

/// `s` with its escapes decoded under `mode`; `None` only in [`Mode::Strict`], for a bad
/// escape. One pass, output no longer than the input.
pub fn decode(s: &[u8], mode: Mode) -> Option<Vec<u8>> {
    let hex = |b: u8| (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        // A run with nothing to decode is copied whole (a base64 SAMLResponse is mostly one),
        // found with a vectorized search rather than byte by byte.
        let run = memchr::memchr2(b'%', b'+', &s[i..]).unwrap_or(s.len() - i);
        if run > 0 {
            out.extend_from_slice(&s[i..i + run]);
            i += run;
            continue;
        }
        match b {
            b'+' if mode == Mode::Form => out.push(b' '),
            b'%' => match (
                s.get(i + 1).copied().and_then(hex),
                s.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ if mode == Mode::Strict => return None,
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

/// `s` escaped for a query-string value (`form_urlencoded`'s byte serializer: space as `+`,
/// everything but `*-._` and alphanumerics as `%XX`).
pub fn encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Form decoding never refuses.
fn form_decode(s: &[u8]) -> Vec<u8> {
    decode(s, Mode::Form).unwrap_or_default()
}

/// The `name=value` pairs of a query string or form body, decoded as bytes. Empty pairs
/// (`a=1&&b=2`) are skipped; a pair without `=` has an empty value.
pub fn pairs(s: &[u8]) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    s.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(i) => (form_decode(&pair[..i]), form_decode(&pair[i + 1..])),
            None => (form_decode(pair), Vec::new()),
        })
}

/// [`pairs`] as text, invalid UTF-8 replaced by U+FFFD: the query parameters and form fields
/// the routes compare with known names and values.
pub fn text_pairs(s: &[u8]) -> impl Iterator<Item = (Cow<'static, str>, Cow<'static, str>)> + '_ {
    pairs(s).map(|(k, v)| (lossy(k), lossy(v)))
}

fn lossy(b: Vec<u8>) -> Cow<'static, str> {
    Cow::Owned(
        String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

/// One field of an `application/x-www-form-urlencoded` body.
pub enum Field {
    /// No pair with that name.
    Missing,
    /// Exactly one, decoded.
    One(Vec<u8>),
    /// Two or more: the body is ambiguous and refused by the caller.
    Repeated,
}

/// The decoded bytes of field `name` (`+` is a space, as in form encoding). Values stay
/// bytes: a SAMLResponse is base64, and no text decoding is needed to find it.
pub fn form_field(body: &[u8], name: &[u8]) -> Field {
    let [field] = form_fields(body, [name]);
    field
}

/// [`form_field`] for each of `names`, in one pass over the body (issue 20: the ACS looked
/// the body through once per field). Only the named fields' values are decoded; every key
/// with an escape is decoded before it is compared, so a percent-encoded name still counts.
/// A field seen twice is [`Field::Repeated`] and its values are not decoded again.
pub fn form_fields<const N: usize>(body: &[u8], names: [&[u8]; N]) -> [Field; N] {
    let mut found: [Field; N] = std::array::from_fn(|_| Field::Missing);
    for pair in memchr::memchr_iter(b'&', body)
        .chain(std::iter::once(body.len()))
        .scan(0, |start, end| {
            let pair = &body[*start..end];
            *start = end + 1;
            Some(pair)
        })
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = match memchr::memchr(b'=', pair) {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let key: Cow<'_, [u8]> = if memchr::memchr2(b'%', b'+', key).is_some() {
            Cow::Owned(form_decode(key))
        } else {
            Cow::Borrowed(key)
        };
        let Some(slot) = names
            .iter()
            .position(|n| *n == &*key)
            .and_then(|i| found.get_mut(i))
        else {
            continue;
        };
        *slot = match slot {
            Field::Missing => Field::One(form_decode(value)),
            Field::One(_) | Field::Repeated => Field::Repeated,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::{Field, Mode, decode, form_field, text_pairs};

    #[test]
    fn form_mode_reads_plus_as_space_and_keeps_bad_escapes() {
        assert_eq!(
            decode(b"a%2Bb+c%2f%3D%zz%", Mode::Form).unwrap(),
            b"a+b c/=%zz%"
        );
        assert_eq!(decode(b"%4", Mode::Form).unwrap(), b"%4");
    }

    #[test]
    fn strict_mode_keeps_plus_and_refuses_bad_escapes() {
        assert_eq!(decode(b"a%20b%0A+", Mode::Strict).unwrap(), b"a b\n+");
        assert!(decode(b"%2", Mode::Strict).is_none());
        assert!(decode(b"%zz", Mode::Strict).is_none());
    }

    #[test]
    fn form_fields_are_found_once_or_refused_when_repeated() {
        let body = b"RelayState=_r1&SAMLResponse=PGEv%0APg%3D%3D&x=1";
        assert!(matches!(form_field(body, b"SAMLResponse"), Field::One(v) if v == b"PGEv\nPg=="));
        assert!(matches!(form_field(body, b"Nope"), Field::Missing));
        assert!(matches!(form_field(b"a=1&%61=2", b"a"), Field::Repeated));
        assert!(matches!(form_field(b"a", b"a"), Field::One(v) if v.is_empty()));
        assert!(matches!(form_field(b"&&a=1&", b"a"), Field::One(v) if v == b"1"));
        assert!(matches!(form_field(b"", b"a"), Field::Missing));
    }

    #[test]
    fn one_pass_finds_each_field_as_a_lookup_per_field_would() {
        let bodies: [&[u8]; 7] = [
            b"RelayState=_r1&SAMLResponse=PGEv%0APg%3D%3D&x=1",
            b"SAMLResponse=a&SAMLResponse=b&RelayState=r",
            b"SAML%52esponse=a+b&Relay%53tate=x&RelayState=y",
            b"&=&SAMLResponse&RelayState=%zz",
            b"x=1&y=2",
            b"SAMLResponse=1&SAMLResponse=2&SAMLResponse=3",
            b"",
        ];
        let show = |f: &Field| match f {
            Field::Missing => "missing".to_owned(),
            Field::One(v) => format!("one {v:?}"),
            Field::Repeated => "repeated".to_owned(),
        };
        for body in bodies {
            let [r, s] = super::form_fields(body, [&b"SAMLResponse"[..], b"RelayState"]);
            assert_eq!(show(&r), show(&form_field_by_pairs(body, b"SAMLResponse")));
            assert_eq!(show(&s), show(&form_field_by_pairs(body, b"RelayState")));
        }
    }

    /// The lookup as it was before the one-pass reader: every pair decoded, first repeat wins.
    fn form_field_by_pairs(body: &[u8], name: &[u8]) -> Field {
        let mut found = Field::Missing;
        for (k, v) in super::pairs(body) {
            if k == name {
                if matches!(found, Field::One(_)) {
                    return Field::Repeated;
                }
                found = Field::One(v);
            }
        }
        found
    }

    #[test]
    fn text_pairs_skip_empty_pairs_and_replace_invalid_utf8() {
        let got: Vec<_> = text_pairs(b"a=1&&b&c=%FF+x")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            got,
            [
                ("a".into(), "1".into()),
                ("b".into(), String::new()),
                ("c".into(), "\u{FFFD} x".into())
            ]
        );
    }
}
