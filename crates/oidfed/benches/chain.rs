//! Resolving a 3-hop trust chain (subject → SA → SA2 → Trust Anchor: seven documents, every
//! signature ES256, or RS256 with the RSA test keys) from documents already in memory, with the metadata policies of two
//! superiors merged and applied; and the policy work alone. Numbers: docs/PERFORMANCE.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    unreachable_pub
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use oidfed::{FetchFailed, Resolver, Step, policy};
use serde_json::{Map, Value, json};

#[path = "../tests/common/fed.rs"]
mod fed;

const NOW: u64 = 1_800_000_000;

fn resolve(cfg: &oidfed::ResolverConfig, docs: &std::collections::HashMap<String, String>) {
    let (mut r, mut fetch) = Resolver::start(cfg, fed::OP, NOW).unwrap();
    loop {
        match r.feed(docs.get(fetch.url()).map(String::as_str).ok_or(FetchFailed)) {
            Ok(Step::Fetch(f)) => fetch = f,
            Ok(Step::Done(chain)) => {
                black_box(chain);
                return;
            }
            Err(e) => panic!("{e}"),
        }
    }
}

fn benches(c: &mut Criterion) {
    let mut f = fed::three_hop(NOW);
    let cfg = f.config_for(&[fed::TA]);
    c.bench_function("oidfed/resolve_3_hop_es256", |b| {
        b.iter(|| resolve(&cfg, &f.docs));
    });
    let mut f = fed::three_hop_rsa(NOW);
    let cfg = f.config_for(&[fed::TA]);
    c.bench_function("oidfed/resolve_3_hop_rs256", |b| {
        b.iter(|| resolve(&cfg, &f.docs));
    });

    let ta = json!({"openid_relying_party": {
        "grant_types": {"default": ["authorization_code"],
                        "subset_of": ["authorization_code", "refresh_token"],
                        "superset_of": ["authorization_code"]},
        "token_endpoint_auth_method": {"one_of": ["private_key_jwt"], "essential": true},
        "id_token_signed_response_alg": {"one_of": ["RS256", "RS512", "ES256"]},
        "contacts": {"add": ["helpdesk@federation.example.org"]}
    }});
    let sa = json!({"openid_relying_party": {
        "grant_types": {"subset_of": ["authorization_code"]},
        "contacts": {"add": ["helpdesk@sa.example.org"]}
    }});
    let md = json!({"openid_relying_party": {
        "redirect_uris": ["https://rp.example.it/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "id_token_signed_response_alg": "RS256",
        "contacts": ["ops@rp.example.it"]
    }});
    let (ta, sa, md): (Map<String, Value>, Map<String, Value>, Map<String, Value>) = (
        ta.as_object().unwrap().clone(),
        sa.as_object().unwrap().clone(),
        md.as_object().unwrap().clone(),
    );
    c.bench_function("oidfed/policy_parse_merge_apply", |b| {
        b.iter(|| {
            let mut p = policy::parse(black_box(&ta), &[]).unwrap();
            policy::merge(&mut p, policy::parse(black_box(&sa), &[]).unwrap()).unwrap();
            let mut m = md.clone();
            policy::apply(&p, &mut m).unwrap();
            black_box(m);
        });
    });
}

criterion_group!(oidfed_benches, benches);
criterion_main!(oidfed_benches);
