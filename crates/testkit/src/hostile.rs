//! Worst-case inputs: the largest body a limit lets through, shaped so that the code reading it
//! does as much work as it can (issue 17).
//!
//! Every generator takes a byte budget and returns at most that many bytes, so a test or a
//! load harness can ask for "the biggest body the ACS or SLO accepts" and get the costliest
//! one. The shapes aim at the loops that read attacker data: the exclusive-C14N PrefixList,
//! namespace declarations and lookups, depth, attributes, the ID index, DEFLATE ratio, query
//! and form parameters. None is signed by a trusted key: the work under test happens before
//! (or regardless of) the signature check, which is what makes it reachable without a key.
//!
//! The XML shapes name a SPID IdP as `Issuer` (entity IDs are public) and carry a
//! `ds:Signature` whose values are well-formed base64 of the right length, so validation runs
//! as far as the reference digest, the step an attacker can always reach.
//!
//! This module has no dependency on Varco's own crates (see the crate documentation): it
//! makes bytes, and the tests feed them to whatever they test.

use std::fmt::Write as _;
use std::io::Write as _;

use base64::Engine as _;

/// SAML protocol namespace.
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML assertion namespace.
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// XML-DSig namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// Exclusive C14N (and the `InclusiveNamespaces` element's namespace).
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// The SAML metadata namespace.
pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// The entity NameID format.
pub const NAMEID_ENTITY: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity";

/// The identifiers and addresses the XML shapes use; tests configure the IdP and the SP with
/// these to make validation reach the signature.
#[derive(Debug, Clone)]
pub struct Parties {
    /// The IdP entityID written as `Issuer`.
    pub idp: String,
    /// The `Destination` (our SingleLogoutService or ACS URL).
    pub destination: String,
    /// The root `ID` (the signature's reference target).
    pub id: String,
    /// `IssueInstant`, an `xs:dateTime` in UTC.
    pub issue_instant: String,
}

impl Default for Parties {
    fn default() -> Self {
        Parties {
            idp: "https://idp.spid.example.org".into(),
            destination: "https://sp.varco.example.org/saml/slo".into(),
            id: "_hostile0000000000000000000000000000000000".into(),
            issue_instant: "2025-03-14T09:26:58Z".into(),
        }
    }
}

/// The message parameters of the SAML parser that Varco applies to protocol messages (the
/// defaults of `saml_xml::Limits`), repeated here because this crate does not depend on it.
/// A test asserts that the two agree.
pub mod message_limits {
    /// Bytes.
    pub const MAX_BYTES: usize = 256 * 1024;
    /// Element depth.
    pub const MAX_DEPTH: usize = 32;
    /// Nodes.
    pub const MAX_NODES: usize = 8 * 1024;
    /// Attributes on one element, declarations included.
    pub const MAX_ATTRIBUTES: usize = 32;
    /// Namespace declarations in a document.
    pub const MAX_NAMESPACE_DECLARATIONS: usize = 256;
}

/// A `ds:Signature` whose reference transform (and, with `si_list`, the SignedInfo
/// canonicalization) carries `prefix_list`. The digest and signature are base64 of the sizes
/// SHA-256 and RSA-2048 give, all zero: well-formed, never valid.
pub fn signature(id: &str, prefix_list: &str, si_list: bool) -> String {
    let zeros = |n: usize| base64::engine::general_purpose::STANDARD.encode(vec![0u8; n]);
    let inclusive = |list: &str| {
        if list.is_empty() {
            String::new()
        } else {
            format!("<ec:InclusiveNamespaces xmlns:ec=\"{EXC_C14N}\" PrefixList=\"{list}\"/>")
        }
    };
    let si = if si_list {
        inclusive(prefix_list)
    } else {
        String::new()
    };
    format!(
        "<ds:Signature xmlns:ds=\"{DSIG_NS}\"><ds:SignedInfo>\
         <ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\">{si}</ds:CanonicalizationMethod>\
         <ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
         <ds:Reference URI=\"#{id}\"><ds:Transforms>\
         <ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
         <ds:Transform Algorithm=\"{EXC_C14N}\">{}</ds:Transform></ds:Transforms>\
         <ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>\
         <ds:DigestValue>{}</ds:DigestValue></ds:Reference></ds:SignedInfo>\
         <ds:SignatureValue>{}</ds:SignatureValue></ds:Signature>",
        inclusive(prefix_list),
        zeros(32),
        zeros(256),
    )
}

/// A space-separated PrefixList of `n` distinct NCNames (`p0 p1 …`).
pub fn prefix_list(n: usize) -> String {
    let mut s = String::with_capacity(n * 6);
    for i in 0..n {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "p{i}");
    }
    s
}

/// An IdP-initiated `samlp:LogoutRequest` (SPID shape: Issuer, Signature, NameID,
/// SessionIndex) with `root_extra` inside the root start tag, `signature` after the Issuer
/// and `filler` in `samlp:Extensions` after the SessionIndex.
pub fn logout_request(p: &Parties, root_extra: &str, signature: &str, filler: &str) -> String {
    format!(
        "<samlp:LogoutRequest xmlns:samlp=\"{SAMLP_NS}\" xmlns:saml=\"{SAML_NS}\"{root_extra} \
         ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{ii}\" Destination=\"{dest}\">\
         <saml:Issuer Format=\"{NAMEID_ENTITY}\" NameQualifier=\"{idp}\">{idp}</saml:Issuer>\
         {signature}\
         <saml:NameID Format=\"urn:oasis:names:tc:SAML:2.0:nameid-format:transient\" \
         NameQualifier=\"{idp}\">_name</saml:NameID>\
         <samlp:SessionIndex>_session</samlp:SessionIndex>\
         <samlp:Extensions>{filler}</samlp:Extensions></samlp:LogoutRequest>",
        id = p.id,
        ii = p.issue_instant,
        dest = p.destination,
        idp = p.idp,
    )
}

/// Bytes a `logout_request` adds around its filler, for budgeting.
fn envelope_len(p: &Parties, root_extra: &str, signature: &str) -> usize {
    logout_request(p, root_extra, signature, "").len()
}

/// Chains of nested unprefixed elements, `depth` deep, repeated until `budget` bytes are used
/// or `nodes` elements made: the deepest, widest tree the limits allow. `<a>…</a>` costs 7
/// bytes an element, the least an element can cost in a chain.
pub fn deep_wide(budget: usize, depth: usize, nodes: usize) -> String {
    let per_chain = 7 * depth;
    let chains = (budget / per_chain.max(1)).min(nodes / depth.max(1));
    let mut s = String::with_capacity(chains * per_chain);
    for _ in 0..chains {
        s.push_str(&"<a>".repeat(depth));
        s.push_str(&"</a>".repeat(depth));
    }
    s
}

/// The LogoutRequest of issue 17: a PrefixList of `prefixes` entries in the reference
/// transform, over the deepest, widest tree the rest of `budget` holds. Before the PrefixList
/// was capped, exclusive C14N did work proportional to elements × prefixes × depth here
/// (16 s of CPU for 62 KB).
pub fn issue17_logout_request(p: &Parties, budget: usize, prefixes: usize) -> String {
    let sig = signature(&p.id, &prefix_list(prefixes), false);
    let room = budget.saturating_sub(envelope_len(p, "", &sig));
    // Depth: the root, Extensions and the chain stay under the parser's limit.
    let depth = message_limits::MAX_DEPTH - 2;
    let nodes = message_limits::MAX_NODES - 64;
    logout_request(p, "", &sig, &deep_wide(room, depth, nodes))
}

/// Declarations `xmlns:{stem}{i}="urn:{stem}:{i}"` for `i` in `0..count`, spread over a
/// chain of `<w>` wrappers (the attribute limit caps each element), as (opening tags,
/// closing tags, depth used).
fn declaring_wrappers(stem: &str, count: usize) -> (String, String, usize) {
    let per = message_limits::MAX_ATTRIBUTES;
    let mut open = String::new();
    let mut depth = 0;
    let mut i = 0;
    while i < count {
        open.push_str("<w");
        for _ in 0..per.min(count - i) {
            let _ = write!(open, " xmlns:{stem}{i}=\"urn:{stem}:{i}\"");
            i += 1;
        }
        open.push('>');
        depth += 1;
    }
    (open, "</w>".repeat(depth), depth)
}

/// The same tree with a PrefixList at the cap (`prefixes` distinct NCNames `p0 p1 …`, all
/// declared at the top of the tree, so that C14N finds each listed prefix in scope and
/// rendered on the elements that redeclare it): what is left once the list is bounded.
pub fn prefix_list_at_cap(p: &Parties, budget: usize, prefixes: usize) -> String {
    let sig = signature(&p.id, &prefix_list(prefixes), true);
    let (open, close, used) = declaring_wrappers("p", prefixes);
    let room = budget.saturating_sub(envelope_len(p, "", &sig) + open.len() + close.len());
    let depth = message_limits::MAX_DEPTH - 2 - used;
    let tree = deep_wide(room, depth, message_limits::MAX_NODES - 64);
    logout_request(p, "", &sig, &format!("{open}{tree}{close}"))
}

/// Namespace declarations: every declaration the limit allows, each with its own prefix and
/// URI, then chains of elements each carrying as many prefixed attributes as the attribute
/// limit allows, from a sliding window over all the prefixes (the oldest bindings are the
/// ones a scan from the innermost binding meets last). This is the shape for "attributes x
/// namespaces in scope": every attribute prefix must be looked up, and every element needs
/// its bindings rendered by C14N, since no ancestor uses them.
pub fn namespace_heavy(p: &Parties, budget: usize) -> String {
    // Leave room for the envelope's own declarations (samlp, saml, ds).
    let count = message_limits::MAX_NAMESPACE_DECLARATIONS - 8;
    let (open, close, used) = declaring_wrappers("n", count);
    let sig = signature(&p.id, "", false);
    let room = budget.saturating_sub(envelope_len(p, "", &sig) + open.len() + close.len());
    let per_el = message_limits::MAX_ATTRIBUTES - 1;
    let depth = message_limits::MAX_DEPTH - 3 - used;
    let mut filler = String::with_capacity(room);
    let mut k = 0usize;
    let mut nodes = 0;
    let mut level = 0;
    loop {
        let mut el = String::from("<n0:e");
        for j in 0..per_el {
            let _ = write!(el, " n{}:a=\"\"", (k + j) % count);
        }
        el.push('>');
        k += per_el;
        let closing = "</n0:e>".len() * (level + 1);
        if filler.len() + el.len() + closing > room || nodes + 64 >= message_limits::MAX_NODES {
            break;
        }
        filler.push_str(&el);
        nodes += 1;
        level += 1;
        if level == depth {
            filler.push_str(&"</n0:e>".repeat(level));
            level = 0;
        }
    }
    filler.push_str(&"</n0:e>".repeat(level));
    logout_request(p, "", &sig, &format!("{open}{filler}{close}"))
}

/// Elements with as many short, distinct, unprefixed attributes as the limit allows
/// (`<e a0="" a1="" …>`): the duplicate-attribute check compares each attribute with the
/// ones before it, so this is its worst case per byte.
pub fn attribute_heavy(p: &Parties, budget: usize) -> String {
    let sig = signature(&p.id, "", false);
    let room = budget.saturating_sub(envelope_len(p, "", &sig));
    let mut el = String::from("<e");
    for j in 0..message_limits::MAX_ATTRIBUTES {
        let _ = write!(el, " {}=\"\"", attribute_name(j));
    }
    el.push_str("/>");
    let count = (room / el.len()).min(message_limits::MAX_NODES - 64);
    logout_request(p, "", &sig, &el.repeat(count))
}

/// Short distinct names: `a`…`z`, then `aa`, `ab`…
fn attribute_name(j: usize) -> String {
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    if j < 26 {
        char::from(letters[j]).to_string()
    } else {
        format!(
            "{}{}",
            char::from(letters[j / 26 - 1]),
            char::from(letters[j % 26])
        )
    }
}

/// As many elements with an `ID` as the budget and the node limit allow, each ID distinct and
/// long, sharing a long common prefix (hashing and comparing them costs their length).
pub fn many_ids(p: &Parties, budget: usize) -> String {
    let sig = signature(&p.id, "", false);
    let room = budget.saturating_sub(envelope_len(p, "", &sig));
    let stem = "_".to_owned() + &"x".repeat(40);
    let mut filler = String::with_capacity(room);
    let mut i = 0usize;
    loop {
        let el = format!("<i ID=\"{stem}{i}\"/>");
        if filler.len() + el.len() > room || i + 64 >= message_limits::MAX_NODES {
            break;
        }
        filler.push_str(&el);
        i += 1;
    }
    logout_request(p, "", &sig, &filler)
}

/// Text and attribute values that need escaping everywhere C14N writes them (`&amp;` in
/// text, `&#xD;` and `&quot;` in attributes): the canonical form is as large as it gets
/// relative to the input.
pub fn escape_heavy(p: &Parties, budget: usize) -> String {
    let sig = signature(&p.id, "", false);
    let room = budget.saturating_sub(envelope_len(p, "", &sig) + 64);
    let half = room / 2;
    let text: String = "&amp;".repeat(half / 5 / 2) + &"&#13;".repeat(half / 5 / 2);
    let attr = "&#9;".repeat(half / 4);
    logout_request(p, "", &sig, &format!("<t v=\"{attr}\">{text}</t>"))
}

/// Output amplification in exclusive C14N: one namespace with a URI of half the budget,
/// declared on the root and used by as many empty siblings as the rest holds. Each sibling
/// renders the declaration again, so without a bound the canonical form would be about
/// (budget / 16) x (budget / 2) bytes.
pub fn namespace_amplification(p: &Parties, budget: usize) -> String {
    let sig = signature(&p.id, "", false);
    let uri_len = budget / 2;
    let decl = format!(" xmlns:big=\"urn:{}\"", "x".repeat(uri_len));
    let room = budget.saturating_sub(envelope_len(p, &decl, &sig));
    let count = (room / "<big:e/>".len()).min(message_limits::MAX_NODES - 64);
    logout_request(p, &decl, &sig, &"<big:e/>".repeat(count))
}

/// Metadata with `count` namespace declarations, each a distinct prefix and URI, on the root
/// (interning every URI), then padded to `budget` with unprefixed elements. For the metadata
/// limits, where tens of thousands of declarations are allowed.
pub fn metadata_distinct_namespaces(budget: usize, count: usize) -> String {
    let mut s = format!("<md:EntitiesDescriptor xmlns:md=\"{MD_NS}\"");
    // Declarations are spread over children, so that no element exceeds its attribute limit.
    s.push('>');
    let mut i = 0;
    while i < count {
        s.push_str("<md:Extensions");
        for _ in 0..32.min(count - i) {
            let _ = write!(s, " xmlns:u{i}=\"urn:distinct:namespace:{i}\"");
            i += 1;
        }
        s.push_str("/>");
    }
    let tail = "</md:EntitiesDescriptor>";
    while s.len() + 4 + tail.len() <= budget {
        s.push_str("<e/>");
    }
    s.push_str(tail);
    s
}

/// Raw DEFLATE of `xml`.
pub fn deflate(xml: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    let _ = enc.write_all(xml);
    enc.finish().unwrap_or_default()
}

/// `application/x-www-form-urlencoded` value encoding (space as `+`, the rest `%XX`).
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => {
                let _ = write!(out, "%{b:02X}");
            }
        }
    }
    out
}

/// An HTTP-Redirect query whose `SAMLRequest` inflates to `inflated` bytes of white space
/// inside a `samlp:LogoutRequest` start (the DEFLATE ratio at its maximum, about 1000:1).
/// A decoder must stop at its own cap, not at the attacker's size.
pub fn deflate_bomb_query(inflated: usize) -> String {
    let mut xml = format!("<samlp:LogoutRequest xmlns:samlp=\"{SAMLP_NS}\"").into_bytes();
    xml.resize(xml.len() + inflated, b' ');
    xml.extend_from_slice(b"/>");
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflate(&xml));
    format!("SAMLRequest={}&SigAlg=x&Signature=AAAA", form_encode(&b64))
}

/// An HTTP-Redirect query of `budget` bytes: the message, then as many short parameters
/// (`&a=`, unknown names) as fit. Every one must be looked at once, and only once.
pub fn many_params_query(message_xml: &str, budget: usize) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(deflate(message_xml.as_bytes()));
    let mut q = format!("SAMLRequest={}", form_encode(&b64));
    while q.len() + 3 <= budget {
        q.push_str("&a=");
    }
    q
}

/// An HTTP-POST form body of `budget` bytes: `name=base64(xml)`, percent-encoding every byte
/// of the base64 (three input bytes per output byte: the costliest form decoding), followed
/// by as many empty fields as fit.
pub fn percent_heavy_form(name: &str, xml: &str, budget: usize) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
    let mut body = format!("{name}=");
    for b in b64.bytes() {
        let _ = write!(body, "%{b:02X}");
    }
    while body.len() + 2 <= budget {
        body.push_str("&x");
    }
    body.into_bytes()
}

/// Base64 with white space between every character (the decoders strip it first): the
/// largest text for a given decoded size.
pub fn spaced_base64(data: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut s = String::with_capacity(b64.len() * 2);
    for c in b64.chars() {
        s.push(c);
        s.push('\n');
    }
    s
}

/// A LogoutRequest whose filler is [`deep_wide`] at the parser's depth and node limits.
pub fn deep_wide_request(p: &Parties, budget: usize) -> String {
    let sig = signature(&p.id, "", false);
    let room = budget.saturating_sub(envelope_len(p, "", &sig));
    let tree = deep_wide(
        room,
        message_limits::MAX_DEPTH - 2,
        message_limits::MAX_NODES - 64,
    );
    logout_request(p, "", &sig, &tree)
}

/// Every XML shape above for one budget, named, for tests and benches that go through all
/// of them. `prefix_cap` is the PrefixList bound the verifier enforces.
pub fn xml_shapes(p: &Parties, budget: usize, prefix_cap: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            // A third of the budget in the list (about 6 bytes an entry), the rest in the tree.
            "issue17_prefix_list",
            issue17_logout_request(p, budget, budget / 18),
        ),
        (
            "prefix_list_at_cap",
            prefix_list_at_cap(p, budget, prefix_cap),
        ),
        ("namespace_heavy", namespace_heavy(p, budget)),
        ("many_ids", many_ids(p, budget)),
        ("attribute_heavy", attribute_heavy(p, budget)),
        ("escape_heavy", escape_heavy(p, budget)),
        (
            "namespace_amplification",
            namespace_amplification(p, budget),
        ),
        ("deep_wide", deep_wide_request(p, budget)),
    ]
}
