//! Verification of one enveloped signature on one element.

use saml_xml::c14n::{self, canonicalize};
use saml_xml::{Child, Element};

use crate::alg::{DSIG_NS, ENVELOPED, EXC_C14N, EXC_C14N_WITH_COMMENTS, is_weak};
use crate::key::decode_base64;
use crate::{DigestMethod, Error, SignatureMethod, TrustedKey};

/// Which algorithms a caller accepts. The default accepts every method this crate knows;
/// none of them is weak.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Accepted signature methods.
    pub signature_methods: Vec<SignatureMethod>,
    /// Accepted reference digest methods.
    pub digest_methods: Vec<DigestMethod>,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            signature_methods: SignatureMethod::ALL.to_vec(),
            digest_methods: DigestMethod::ALL.to_vec(),
        }
    }
}

/// Proof that `element` carried an enveloped signature, made by one of the trusted keys, over
/// exactly its own subtree.
///
/// Only [`verify`] makes one: the field is private and there is no other constructor. Code
/// that extracts data from a signed element takes a `Verified` and reads from
/// [`Verified::element`], so it can only read what was signed. Nothing else is exposed (which
/// key, which algorithms, which `ds:Signature` node): no caller decides anything on them, and
/// a proof that carries only the element cannot be misread.
#[derive(Debug, Clone, Copy)]
pub struct Verified<'d, 'a> {
    element: Element<'d, 'a>,
}

impl<'d, 'a> Verified<'d, 'a> {
    /// The signed element: the one whose `ID` the single Reference named.
    pub fn element(&self) -> Element<'d, 'a> {
        self.element
    }
}

/// Verifies the enveloped signature of `element` with one of `keys`.
///
/// The profile is narrow on purpose (see docs/THREATS.md): exactly one `ds:Signature` child
/// of `element`; `SignedInfo` with exclusive C14N, an accepted signature method and exactly
/// one `Reference`; `URI="#" + element's ID`; transforms exactly enveloped-signature then
/// exclusive C14N; an accepted digest; no `ds:Object`. Keys come only from the caller;
/// `KeyInfo` can only narrow the choice among them, never add a key.
pub fn verify<'d, 'a>(
    element: Element<'d, 'a>,
    keys: &[TrustedKey],
    policy: &Policy,
) -> Result<Verified<'d, 'a>, Error> {
    if keys.is_empty() {
        return Err(Error::NoTrustedKeys);
    }
    let id = element
        .attribute("ID")
        .filter(|id| !id.is_empty())
        .ok_or(Error::MissingId)?;

    let mut signatures = element
        .child_elements()
        .filter(|c| c.is(DSIG_NS, "Signature"));
    let signature = signatures.next().ok_or(Error::Unsigned)?;
    if signatures.next().is_some() {
        return Err(Error::MultipleSignatures);
    }

    // Signature := SignedInfo SignatureValue KeyInfo?   (no Object)
    let parts = elements_only(signature, "Signature")?;
    let (signed_info, signature_value, key_info) = match parts.as_slice() {
        [si, sv] => (*si, *sv, None),
        [si, sv, ki] => (*si, *sv, Some(*ki)),
        _ => return Err(structure("Signature children")),
    };
    expect(signed_info, "SignedInfo")?;
    expect(signature_value, "SignatureValue")?;
    if let Some(ki) = key_info {
        expect(ki, "KeyInfo")?;
    }

    // SignedInfo := CanonicalizationMethod SignatureMethod Reference
    let si_parts = elements_only(signed_info, "SignedInfo")?;
    let refs = si_parts
        .as_slice()
        .iter()
        .filter(|e| e.is(DSIG_NS, "Reference"))
        .count();
    if refs != 1 {
        return Err(Error::ReferenceCount);
    }
    let [c14n_method, sig_method, reference] = si_parts.as_slice() else {
        return Err(structure("SignedInfo children"));
    };
    expect(*c14n_method, "CanonicalizationMethod")?;
    expect(*sig_method, "SignatureMethod")?;
    expect(*reference, "Reference")?;

    let si_c14n = c14n_params(*c14n_method)?.ok_or(Error::UnsupportedCanonicalization)?;
    let method = algorithm(*sig_method, SignatureMethod::from_uri)?;
    if !policy.signature_methods.contains(&method) {
        return Err(Error::UnsupportedAlgorithm);
    }
    if !elements_only(*sig_method, "SignatureMethod")?.is_empty() {
        // HMACOutputLength and friends.
        return Err(structure("SignatureMethod content"));
    }

    // Reference URI="#ID" := Transforms DigestMethod DigestValue
    let expected_uri = reference.attribute("URI").and_then(|u| u.strip_prefix('#'));
    if expected_uri != Some(id) {
        return Err(Error::ReferenceUriMismatch);
    }
    // IDs are unique in a parsed document, so this only guards against a future change there.
    if element.document().element_by_id(id) != Some(element) {
        return Err(Error::ReferenceUriMismatch);
    }
    let ref_parts = elements_only(*reference, "Reference")?;
    let [transforms, digest_method, digest_value] = ref_parts.as_slice() else {
        return Err(structure("Reference children"));
    };
    expect(*transforms, "Transforms")?;
    expect(*digest_method, "DigestMethod")?;
    expect(*digest_value, "DigestValue")?;
    let digest = algorithm(*digest_method, DigestMethod::from_uri)?;
    if !policy.digest_methods.contains(&digest) {
        return Err(Error::UnsupportedAlgorithm);
    }
    if !elements_only(*digest_method, "DigestMethod")?.is_empty() {
        return Err(structure("DigestMethod content"));
    }
    let ref_c14n = reference_transforms(*transforms)?;
    let expected =
        decode_base64(&text_only(*digest_value, "DigestValue")?).ok_or(Error::InvalidBase64)?;

    // The signature over the canonical SignedInfo first, the reference digest last (issue 17).
    // SignedInfo is a few hundred bytes whatever the element's size, so a message without a
    // valid signature costs one small C14N and one public-key operation, never a C14N and hash
    // of a large body. The verdict is the same in either order (both must hold); only which
    // error a doubly broken signature reports changes: the signature's.
    let mut buf = Vec::with_capacity(1024);
    let opts = c14n::Options {
        with_comments: si_c14n.0,
        inclusive_prefixes: &si_c14n.1,
        exclude: None,
    };
    canonicalize(signed_info, &opts, &mut buf).map_err(|_| Error::CanonicalFormTooLarge)?;
    let sig = decode_base64(&text_only(signature_value, "SignatureValue")?)
        .ok_or(Error::InvalidBase64)?;

    // Which trusted keys the KeyInfo certificate names, if it names one: compared in base64
    // form first (no decoding on the common path), then as DER, so the verdict is the one a
    // DER comparison gives.
    let pinned: Option<Named> = match key_info.map(key_info_certificate).transpose()? {
        Some(Some(text)) => {
            let mut named = Named::new(keys, |k| same_base64(&text, k.certificate_base64()));
            if !named.any() {
                let der = decode_base64(&text).ok_or(Error::InvalidBase64)?;
                named = Named::new(keys, |k| k.certificate_der() == der.as_slice());
            }
            Some(named)
        }
        _ => None,
    };
    let mut compatible = false;
    let mut verified = false;
    for (index, key) in keys.iter().enumerate() {
        if pinned.as_ref().is_some_and(|named| !named.get(index)) {
            continue;
        }
        if key.kind() != method.key_kind() {
            continue;
        }
        compatible = true;
        if key.verify(method, &buf, &sig) {
            verified = true;
            break;
        }
    }
    if !verified {
        if pinned.as_ref().is_some_and(|named| !named.any()) {
            return Err(Error::UntrustedKeyInfo);
        }
        if !compatible {
            return Err(Error::NoCompatibleKey);
        }
        return Err(Error::BadSignature);
    }

    // Digest of the element minus its signature, as the transforms define it. A buffer of
    // the element's size, allocated now (not by growing the SignedInfo buffer, which would
    // copy it).
    drop(buf);
    let mut buf = Vec::with_capacity(element.span().len());
    let opts = c14n::Options {
        with_comments: false,
        inclusive_prefixes: &ref_c14n,
        exclude: Some(signature.node_id()),
    };
    canonicalize(element, &opts, &mut buf).map_err(|_| Error::CanonicalFormTooLarge)?;
    let actual = ring::digest::digest(digest.ring(), &buf);
    if actual.as_ref() != expected.as_slice() {
        return Err(Error::DigestMismatch);
    }
    Ok(Verified { element })
}

/// Which trusted keys the KeyInfo certificate names, by index: a bit per key up to 64 keys
/// (no allocation on the common path of one or a few keys), a list past that.
enum Named {
    Bits(u64),
    List(Vec<bool>),
}

impl Named {
    fn new(keys: &[TrustedKey], mut names: impl FnMut(&TrustedKey) -> bool) -> Self {
        if keys.len() <= 64 {
            let mut bits = 0u64;
            for (i, k) in keys.iter().enumerate() {
                bits |= u64::from(names(k)) << i;
            }
            Named::Bits(bits)
        } else {
            Named::List(keys.iter().map(names).collect())
        }
    }

    fn get(&self, index: usize) -> bool {
        match self {
            Named::Bits(bits) => index < 64 && bits >> index & 1 == 1,
            Named::List(list) => list.get(index) == Some(&true),
        }
    }

    fn any(&self) -> bool {
        match self {
            Named::Bits(bits) => *bits != 0,
            Named::List(list) => list.contains(&true),
        }
    }
}

fn structure(context: &'static str) -> Error {
    Error::UnexpectedStructure { context }
}

/// The child elements of a signature part. White-space text is layout; any other text, and
/// any comment or processing instruction, has no place in a signature and is refused.
fn elements_only<'d, 'a>(
    el: Element<'d, 'a>,
    context: &'static str,
) -> Result<Parts<'d, 'a>, Error> {
    let mut out = Parts::Inline([el; INLINE_PARTS], 0);
    for child in el.children() {
        match child {
            Child::Element(e) => out.push(e),
            Child::Text(t) if t.bytes().all(|b| b.is_ascii_whitespace()) => {}
            _ => return Err(structure(context)),
        }
    }
    Ok(out)
}

/// No signature part has more than three child elements when it is well formed.
const INLINE_PARTS: usize = 4;

/// The child elements [`elements_only`] found: kept inline up to [`INLINE_PARTS`] (no
/// allocation on the path of a well-formed signature, which reads about ten parts per
/// signature), on the heap past that.
enum Parts<'d, 'a> {
    /// The first `.1` entries are the elements; the rest is filler.
    Inline([Element<'d, 'a>; INLINE_PARTS], usize),
    Heap(Vec<Element<'d, 'a>>),
}

impl<'d, 'a> Parts<'d, 'a> {
    fn push(&mut self, e: Element<'d, 'a>) {
        match self {
            Parts::Inline(items, len) => match items.get_mut(*len) {
                Some(slot) => {
                    *slot = e;
                    *len += 1;
                }
                None => {
                    let mut all = items.to_vec();
                    all.push(e);
                    *self = Parts::Heap(all);
                }
            },
            Parts::Heap(all) => all.push(e),
        }
    }

    fn as_slice(&self) -> &[Element<'d, 'a>] {
        match self {
            Parts::Inline(items, len) => items.get(..*len).unwrap_or(&[]),
            Parts::Heap(all) => all,
        }
    }

    fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

/// `text`, white space ignored, equals the unwrapped base64 `b64`. Compared a run at a time
/// (the lines between white space, eight bytes per step): the certificate in KeyInfo is over
/// a kilobyte and is compared on every verification.
fn same_base64(text: &str, b64: &str) -> bool {
    let (text, want) = (text.as_bytes(), b64.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        let n = common_prefix(text.get(i..).unwrap_or(&[]), want.get(j..).unwrap_or(&[]));
        i += n;
        j += n;
        match text.get(i) {
            None => return j == want.len(),
            Some(b) if b.is_ascii_whitespace() => i += 1,
            Some(_) => return false,
        }
    }
}

/// The length of the longest common prefix of `a` and `b`.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let word = |c: &[u8]| <[u8; 8]>::try_from(c).map_or(0, u64::from_ne_bytes);
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        if word(x) != word(y) {
            break;
        }
        n += 8;
    }
    while a.get(n).is_some_and(|x| Some(x) == b.get(n)) {
        n += 1;
    }
    n
}

/// The text of a value element (digest, signature, certificate). Anything but text inside it
/// is refused, so no other reader could see a different value than the one checked.
fn text_only<'d>(
    el: Element<'d, '_>,
    context: &'static str,
) -> Result<std::borrow::Cow<'d, str>, Error> {
    if el.children().any(|c| !matches!(c, Child::Text(_))) {
        return Err(structure(context));
    }
    Ok(el.text())
}

fn expect(el: Element<'_, '_>, local: &'static str) -> Result<(), Error> {
    if el.is(DSIG_NS, local) {
        Ok(())
    } else {
        Err(structure(local))
    }
}

/// The `Algorithm` attribute, mapped through `parse`; weak algorithms get their own error.
fn algorithm<T>(el: Element<'_, '_>, parse: fn(&str) -> Option<T>) -> Result<T, Error> {
    let uri = el.attribute("Algorithm").unwrap_or("");
    if is_weak(uri) {
        return Err(Error::WeakAlgorithm);
    }
    parse(uri).ok_or(Error::UnsupportedAlgorithm)
}

/// Exclusive C14N parameters of a CanonicalizationMethod or Transform element: (with
/// comments, PrefixList). `Ok(None)` when it is not exclusive C14N or has unexpected content;
/// an unacceptable PrefixList is [`Error::InvalidPrefixList`].
fn c14n_params<'d>(el: Element<'d, '_>) -> Result<Option<(bool, Vec<&'d str>)>, Error> {
    let with_comments = match el.attribute("Algorithm") {
        Some(EXC_C14N) => false,
        Some(EXC_C14N_WITH_COMMENTS) => true,
        _ => return Ok(None),
    };
    let Ok(children) = elements_only(el, "c14n") else {
        return Ok(None);
    };
    let prefixes = match children.as_slice() {
        [] => Vec::new(),
        [inc] if inc.is(EXC_C14N, "InclusiveNamespaces") => {
            prefix_list(inc.attribute("PrefixList").unwrap_or(""))?
        }
        _ => return Ok(None),
    };
    Ok(Some((with_comments, prefixes)))
}

/// Most prefixes an `InclusiveNamespaces` PrefixList may name. Real signers list a handful
/// (`xs`, `xsi`, `saml`, `ds`...); a long list only adds work for the verifier (issue 17).
pub const MAX_INCLUSIVE_PREFIXES: usize = 64;

/// Parses a PrefixList (exc-c14n §4: white-space separated prefixes, `#default` for the
/// default namespace): at most [`MAX_INCLUSIVE_PREFIXES`] entries, each an NCName or
/// `#default`, duplicates removed. Anything else is refused rather than skipped, so no other
/// implementation can read the list differently.
fn prefix_list(list: &str) -> Result<Vec<&str>, Error> {
    let mut prefixes = Vec::new();
    // XML white space only (the parser already turned tab, CR and LF in the attribute into
    // spaces, but the rule is stated where it is applied).
    for p in list
        .split([' ', '\t', '\r', '\n'])
        .filter(|p| !p.is_empty())
    {
        if prefixes.len() == MAX_INCLUSIVE_PREFIXES {
            return Err(Error::InvalidPrefixList);
        }
        if p != "#default" && !saml_xml::is_ncname(p) {
            return Err(Error::InvalidPrefixList);
        }
        prefixes.push(p);
    }
    saml_xml::work::record(prefixes.len() as u64);
    prefixes.sort_unstable();
    prefixes.dedup();
    Ok(prefixes)
}

/// Transforms := enveloped-signature, exc-c14n (no comments: a same-document `#ID`
/// reference drops comments anyway, and nothing else is accepted). Returns the PrefixList.
fn reference_transforms<'d>(transforms: Element<'d, '_>) -> Result<Vec<&'d str>, Error> {
    let list = elements_only(transforms, "Transforms")?;
    let [enveloped, c14n] = list.as_slice() else {
        return Err(Error::UnsupportedTransforms);
    };
    for t in [enveloped, c14n] {
        expect(*t, "Transform").map_err(|_| Error::UnsupportedTransforms)?;
    }
    if enveloped.attribute("Algorithm") != Some(ENVELOPED)
        || !elements_only(*enveloped, "Transform")?.is_empty()
    {
        return Err(Error::UnsupportedTransforms);
    }
    match c14n_params(*c14n)? {
        Some((false, prefixes)) => Ok(prefixes),
        _ => Err(Error::UnsupportedTransforms),
    }
}

/// The certificate named by KeyInfo, if it names one. KeyInfo may hold
/// `X509Data/X509Certificate` (which must then be a trusted certificate), `KeyName` or
/// `KeyValue` (ignored: the trusted keys decide). `RetrievalMethod` and anything else is
/// refused: nothing is ever fetched or derived from the message.
fn key_info_certificate<'d>(
    key_info: Element<'d, '_>,
) -> Result<Option<std::borrow::Cow<'d, str>>, Error> {
    let mut certificate = None;
    for &part in elements_only(key_info, "KeyInfo")?.as_slice() {
        if part.is(DSIG_NS, "X509Data") {
            for &item in elements_only(part, "X509Data")?.as_slice() {
                if item.is(DSIG_NS, "X509Certificate") {
                    let text = text_only(item, "X509Certificate")?;
                    // An empty element names nothing (spid-sp-test's templates carry one);
                    // the trusted keys decide, as without KeyInfo.
                    if text.bytes().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    if certificate.is_some() {
                        return Err(structure("more than one X509Certificate"));
                    }
                    certificate = Some(text);
                } else if item.namespace() != Some(DSIG_NS) {
                    return Err(structure("X509Data"));
                }
            }
        } else if !(part.is(DSIG_NS, "KeyName") || part.is(DSIG_NS, "KeyValue")) {
            return Err(structure("KeyInfo"));
        }
    }
    Ok(certificate)
}

#[cfg(test)]
mod tests {
    use super::same_base64;

    #[test]
    fn base64_comparison_ignores_only_white_space() {
        assert!(same_base64("QUJD\n REVG\t", "QUJDREVG"));
        assert!(!same_base64("QUJDREVH", "QUJDREVG"));
        assert!(!same_base64("QUJD", "QUJDREVG"));
        assert!(!same_base64("QUJDREVGRw==", "QUJDREVG"));
        assert!(same_base64("", ""));
        // Runs longer than one 8-byte step, breaks anywhere, a difference in the last byte.
        let long = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=";
        assert!(same_base64(long, long));
        assert!(same_base64(
            &format!("\n {}\n{}\r\n", &long[..11], &long[11..]),
            long
        ));
        assert!(!same_base64(&long.replace('=', "A"), long));
        assert!(!same_base64(&long[..20], long));
        assert!(!same_base64(long, &long[..20]));
    }
}
