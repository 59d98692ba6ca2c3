//! The tree builder driven by the quick-xml reader it used before its own tokenizer
//! (`token.rs`), kept as the reference of a differential test (`differential.rs`) and of the
//! `xml_parse` fuzz target (feature `reference`, never enabled in Varco's builds).

// Without the feature only the crate's own test reaches these.
#![cfg_attr(not(feature = "reference"), allow(unreachable_pub))]

use std::borrow::Cow;

use quick_xml::events::Event;
use quick_xml::events::attributes::Attributes;
use quick_xml::reader::Reader;

use super::{Builder, Document, Error, Limits, check_chars, normalize_eol, resolve_reference};

impl<'a> Builder<'a, '_> {
    /// The builder driven by quick-xml's reader, configured as Varco configured it.
    fn run_quick_xml(&mut self) -> Result<(), Error> {
        let mut reader = Reader::from_str(self.src);
        let cfg = reader.config_mut();
        cfg.check_comments = true;
        cfg.check_end_names = true;
        cfg.allow_unmatched_ends = false;
        cfg.allow_dangling_amp = false;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
        let malformed = |offset: usize| Error::Malformed {
            offset,
            reason: "quick-xml".into(),
        };
        let src = self.src;
        let slice = |start: usize, len: usize| src.get(start..start + len).ok_or(malformed(start));
        let mut first = true;
        loop {
            let start = reader.buffer_position() as usize;
            let event = reader
                .read_event()
                .map_err(|_| malformed(reader.error_position() as usize))?;
            let end = reader.buffer_position() as usize;
            self.steps += 1;
            let was_first = std::mem::replace(&mut first, false);
            match event {
                Event::Decl(d) => {
                    if !was_first {
                        return Err(Error::UnsupportedDeclaration);
                    }
                    let version = d.version().map_err(|_| Error::UnsupportedDeclaration)?;
                    if version.as_ref() != "1.0" {
                        return Err(Error::UnsupportedDeclaration);
                    }
                    if let Some(enc) = d.encoding() {
                        let enc = enc.map_err(|_| Error::UnsupportedDeclaration)?;
                        if !enc.eq_ignore_ascii_case("utf-8") {
                            return Err(Error::UnsupportedDeclaration);
                        }
                    }
                }
                Event::DocType(_) => return Err(Error::Doctype),
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    let content = slice(start + 1, e.len())?;
                    let name_len = e.name().as_ref().len();
                    let qname = content.get(..name_len).ok_or(Error::InvalidName)?;
                    let mut attrs = Vec::new();
                    let mut attr_error = None;
                    let mut iter = Attributes::new(content, name_len);
                    iter.with_checks(false);
                    for attr in iter {
                        let Ok(attr) = attr else {
                            attr_error = Some(start);
                            break;
                        };
                        let at = |part: &str| {
                            let offset = (part.as_ptr() as usize) - (content.as_ptr() as usize);
                            content.get(offset..offset + part.len()).unwrap_or("")
                        };
                        let Cow::Borrowed(v) = attr.value else {
                            attr_error = Some(start);
                            break;
                        };
                        attrs.push((at(attr.key.as_ref()), at(v)));
                    }
                    self.start_element(qname, &attrs, attr_error, start, end, empty)?;
                }
                Event::End(e) => {
                    let name = e.name().as_ref().to_owned();
                    self.end_element(&name, start, end)?;
                }
                Event::Text(t) => {
                    let raw = slice(start, t.len())?;
                    self.add_text(normalize_eol(raw), start)?;
                }
                Event::CData(t) => {
                    let raw = slice(start + 9, t.len())?;
                    self.add_text(normalize_eol(raw), start)?;
                }
                Event::GeneralRef(r) => {
                    let c = resolve_reference(&r, start)?;
                    self.add_text(Cow::Owned(c.to_string()), start)?;
                }
                Event::Comment(c) => {
                    let content = slice(start + 4, c.len())?;
                    self.flush_text()?;
                    if !self.open.is_empty() {
                        self.push_node(super::Kind::Comment(normalize_eol(content)))?;
                    }
                }
                Event::PI(pi) => {
                    let content = slice(start + 2, pi.len())?;
                    let target = content.get(..pi.target().len()).unwrap_or("");
                    if target.eq_ignore_ascii_case("xml") {
                        return Err(Error::UnsupportedDeclaration);
                    }
                    if !super::is_ncname(target) {
                        return Err(Error::InvalidName);
                    }
                    let data = content
                        .get(target.len()..)
                        .unwrap_or("")
                        .trim_start_matches([' ', '\t', '\r', '\n']);
                    self.flush_text()?;
                    if !self.open.is_empty() {
                        let data = normalize_eol(data);
                        self.push_node(super::Kind::Pi { target, data })?;
                    }
                }
                Event::Eof => break,
            }
        }
        self.flush_text()?;
        if !self.open.is_empty() {
            return Err(malformed(self.src.len()));
        }
        if !self.seen_root {
            return Err(Error::NoRootElement);
        }
        Ok(())
    }
}

/// [`Document::parse`] with the quick-xml reader as tokenizer.
pub fn parse_reference<'a>(input: &'a [u8], limits: &Limits) -> Result<Document<'a>, Error> {
    if input.len() > limits.max_bytes {
        return Err(Error::TooLarge {
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|_| Error::InvalidUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    // Found by a plain scan here, not `memchr2` as in `Document::parse`.
    let tab_or_cr = text.bytes().any(|b| b == b'\t' || b == b'\r');
    check_chars(text.as_bytes(), tab_or_cr)?;
    let mut builder = Builder::new(text, limits, tab_or_cr);
    builder.run_quick_xml().map(|()| builder.doc)
}

/// Everything the tree holds, in a comparable form (IDs sorted: the index is a hash map).
pub(crate) fn dump(r: &Result<Document<'_>, Error>) -> String {
    match r {
        Err(e) => e.code().to_owned(),
        Ok(d) => {
            let mut ids: Vec<_> = d.ids.iter().collect();
            ids.sort();
            format!(
                "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{ids:?}",
                d.nodes, d.attrs, d.decls, d.namespaces, d.ns_verbatim
            )
        }
    }
}

/// Refusals the two tokenizers may name differently, both refusing. Ours refuses a DOCTYPE
/// on sight even when it is unterminated or has no name (quick-xml: a syntax error); a tag
/// whose name holds a quote is cut differently (quick-xml looks for its end outside quotes
/// first, so a quote in the name makes it unclosed), so one reports the name and the other the
/// syntax; a second byte-order mark is text outside the root for us (quick-xml skipped one
/// more).
pub(crate) fn same_refusal(ours: &str, theirs: &str) -> bool {
    ours == theirs
        || matches!(
            (ours, theirs),
            ("xml_doctype", "xml_malformed")
                | ("xml_invalid_name", "xml_malformed")
                | ("xml_malformed", "xml_invalid_name")
                | ("xml_unsupported_declaration", "xml_malformed")
                | ("xml_content_outside_root", "xml_malformed")
        )
}

/// Compares [`Document::parse`] with [`parse_reference`] on one input: the same tree, or
/// both refused (with the same code when `strict_codes`, up to [`same_refusal`]); the one
/// intended difference is that every pseudo-attribute of the XML declaration must be
/// readable. `Err` with both results on disagreement; `Ok(Some(codes))` when both refused
/// with different codes (allowed without `strict_codes`, reported for counting).
pub fn differential_check(
    input: &[u8],
    limits: &Limits,
    strict_codes: bool,
) -> Result<Option<(String, String)>, String> {
    let ours = dump(&Document::parse(input, limits));
    let theirs = dump(&parse_reference(input, limits));
    let refused = !ours.contains('\n') && !theirs.contains('\n');
    // Stricter on purpose: every pseudo-attribute of the XML declaration must be readable.
    let stricter_declaration = ours == "xml_unsupported_declaration"
        && input
            .strip_prefix("\u{feff}".as_bytes())
            .unwrap_or(input)
            .starts_with(b"<?xml");
    let agree = if stricter_declaration || (refused && !strict_codes) {
        true
    } else if refused {
        same_refusal(&ours, &theirs)
    } else {
        ours == theirs
    };
    if !agree {
        return Err(format!(
            "input {:?}\n ours:   {}\n theirs: {}",
            String::from_utf8_lossy(input),
            ours.chars().take(300).collect::<String>(),
            theirs.chars().take(300).collect::<String>()
        ));
    }
    Ok((refused && ours != theirs).then_some((ours, theirs)))
}
