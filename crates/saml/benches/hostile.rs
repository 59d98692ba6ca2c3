//! The CPU of each worst-case input (issue 17), next to the validation of a normal 8 KB SPID
//! Response: the target is that no worst case costs more than 10 times the normal one.
//!
//! Normal: `validate_response` on `crates/xmldsig/benches/data/response-spid-8k-signed-rsa2048.xml`
//! (8,354 bytes, Assertion and Response signed by xmlsec1 with the test key
//! `idp-rsa2048`), accepted. Worst cases: the shapes of `testkit::hostile`, as an IdP-initiated
//! `LogoutRequest` posted to the SingleLogoutService (HTTP-POST: form body, base64, parse,
//! signature), validated against an IdP that trusts `idp-rsa2048`; none verifies, each is
//! refused, and what is measured is the work done before it is. Budgets: the issue's 62 KB,
//! and the largest XML the SLO body cap (256 KiB of form) can carry.
//!
//! `taskset -c 1 cargo bench -p saml --bench hostile`; numbers in docs/PERFORMANCE.md.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use criterion::{Criterion, criterion_group, criterion_main};
use saml::{
    Expected, Federation, IdpDescriptor, IncomingSlo, Level, parse_instant,
    validate_logout_request, validate_response,
};
use saml_xml::c14n::{Options, canonicalize};
use saml_xml::{Document, Limits};
use testkit::hostile::{self, Parties};
use xmldsig::TrustedKey;

const RESPONSE: &[u8] =
    include_bytes!("../../xmldsig/benches/data/response-spid-8k-signed-rsa2048.xml");
const CERT: &[u8] = include_bytes!("../../xmldsig/tests/keys/idp-rsa2048.crt.pem");
const SKEW: Duration = Duration::from_secs(60);

fn at(s: &str) -> SystemTime {
    parse_instant(s).unwrap()
}

fn idp(p: &Parties) -> IdpDescriptor {
    IdpDescriptor {
        entity_id: p.idp.clone(),
        federation: Federation::Spid,
        sso_redirect_url: Some(format!("{}/sso", p.idp)),
        sso_post_url: None,
        signing_keys: vec![TrustedKey::from_certificate_pem(CERT).unwrap()],
        single_logout: Vec::new(),
    }
}

fn post(xml: &str) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    format!("SAMLRequest={}", hostile::form_encode(&b64)).into_bytes()
}

fn slo(body: &[u8], p: &Parties, idp: &IdpDescriptor) -> bool {
    let now = at("2025-03-14T09:27:00Z");
    let Ok(msg) = IncomingSlo::from_post(body) else {
        return false;
    };
    validate_logout_request(&msg, &p.destination, idp, now, SKEW, SKEW).is_ok()
}

fn slo_redirect(query: &str, p: &Parties, idp: &IdpDescriptor) -> bool {
    let now = at("2025-03-14T09:27:00Z");
    let Ok(msg) = IncomingSlo::from_redirect(query) else {
        return false;
    };
    validate_logout_request(&msg, &p.destination, idp, now, SKEW, SKEW).is_ok()
}

fn benches(c: &mut Criterion) {
    let p = Parties::default();
    let idp_d = idp(&p);
    let expected = Expected {
        request_id: "_4d38c302617b5bf98951e65b4cf304711e2166df20",
        acs_url: "https://sp.varco.example.org/saml/acs",
        sp_entity_id: "https://sp.varco.example.org",
        requested_level: Level::L2,
        idp_entity_id: &p.idp,
        request_issue_instant: at("2025-03-14T09:26:41Z"),
    };
    let now = at("2025-03-14T09:27:00Z");
    validate_response(RESPONSE, &expected, &idp_d, now, SKEW).expect("the normal Response");
    // HOSTILE_ONLY=<part of a name> runs the benchmarks whose name contains it (profiling).
    let only = std::env::var("HOSTILE_ONLY").ok();
    let wanted = |label: &str| only.as_deref().is_none_or(|o| label.contains(o));
    if wanted("normal_8k_response") {
        c.bench_function("normal_8k_response", |b| {
            b.iter(|| validate_response(black_box(RESPONSE), &expected, &idp_d, now, SKEW).is_ok())
        });
    }
    for budget in [62 * 1024, 190 * 1024] {
        for (name, xml) in hostile::xml_shapes(&p, budget, 64) {
            let label = format!("slo_post_{name}_{}k", budget / 1024);
            if !wanted(&label) {
                continue;
            }
            let body = post(&xml);
            assert!(!slo(&body, &p, &idp_d), "{label} must be refused");
            c.bench_function(&label, |b| b.iter(|| slo(black_box(&body), &p, &idp_d)));
        }
        // The binding encodings: every byte of the base64 percent-encoded, then empty fields.
        let label = format!("slo_post_percent_form_{}k", budget / 1024);
        if wanted(&label) {
            let xml = hostile::deep_wide_request(&p, budget / 3);
            let body = hostile::percent_heavy_form("SAMLRequest", &xml, budget);
            assert!(!slo(&body, &p, &idp_d));
            c.bench_function(&label, |b| b.iter(|| slo(black_box(&body), &p, &idp_d)));
        }
        let label = format!("slo_redirect_many_params_{}k", budget / 1024);
        if wanted(&label) {
            // A message under the inflate floor: a larger tree of `<a>` compresses beyond the
            // ratio and would be refused for that instead.
            let xml = hostile::deep_wide_request(&p, 8 * 1024);
            let query = hostile::many_params_query(&xml, budget);
            assert!(!slo_redirect(&query, &p, &idp_d));
            c.bench_function(&label, |b| {
                b.iter(|| slo_redirect(black_box(&query), &p, &idp_d))
            });
        }
    }
    // C14N alone on the issue's document with its whole PrefixList (thousands of entries,
    // which the verifier now refuses past 64): the canonicalizer's own cost no longer grows
    // with the list. And the parse of metadata with 60,000 distinct namespace URIs.
    if wanted("c14n_issue17_uncapped_list") {
        let xml = hostile::issue17_logout_request(&p, 62 * 1024, 4096);
        let list = hostile::prefix_list(4096);
        let list: Vec<&str> = list.split(' ').collect();
        let doc = Document::parse(xml.as_bytes(), &Limits::default()).unwrap();
        let opts = Options {
            with_comments: false,
            inclusive_prefixes: &list,
            exclude: None,
        };
        c.bench_function("c14n_issue17_uncapped_list_62k", |b| {
            b.iter(|| {
                let mut out = Vec::with_capacity(xml.len());
                canonicalize(doc.root(), &opts, &mut out).unwrap();
                out.len()
            })
        });
    }
    if wanted("parse_metadata_60k_namespaces") {
        let xml = hostile::metadata_distinct_namespaces(4 * 1024 * 1024, 60_000);
        c.bench_function("parse_metadata_60k_namespaces_4m", |b| {
            b.iter(|| Document::parse(black_box(xml.as_bytes()), &Limits::metadata()).is_ok())
        });
    }
    // A DEFLATE bomb: about 11 KB of query that inflates to 8 MB; decoding stops at the cap.
    if wanted("slo_redirect_deflate_bomb") {
        let query = hostile::deflate_bomb_query(8 * 1024 * 1024);
        assert!(!slo_redirect(&query, &p, &idp_d));
        c.bench_function("slo_redirect_deflate_bomb_8m", |b| {
            b.iter(|| slo_redirect(black_box(&query), &p, &idp_d))
        });
    }
}

criterion_group! {
    name = hostile_benches;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(hostile_benches);
