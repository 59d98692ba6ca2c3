//! Hostile federations cost a bounded number of fetches and a bounded depth; the state
//! machine refuses misuse. Federations here are built with our own signer (see
//! `federation_pyjwt.rs` for the independent one).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::fed::{OP, SA, SA2, TA, three_hop};
use oidfed::{Error, FetchFailed, Resolver, Step};
use serde_json::json;

const NOW: u64 = 1_800_000_000;

#[test]
fn three_hop_chain_resolves_in_seven_fetches() {
    let mut f = three_hop(NOW);
    let mut cfg = f.config_for(&[TA]);
    // Two intermediates (SA, SA2) are the default maximum.
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    let chain = r.unwrap();
    assert_eq!(asked, 7);
    assert_eq!(chain.statements().len(), 5);
    let md = chain.metadata_of("openid_provider").unwrap();
    assert_eq!(
        md["id_token_signing_alg_values_supported"],
        json!(["RS256", "ES256"])
    );
    assert_eq!(md["scopes_supported"], json!(["openid", "offline_access"]));
    // With one intermediate allowed, SA2 is one level too many.
    cfg.max_intermediates = 1;
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap_err().code(), "oidfed.path_too_long");
    assert_eq!(asked, 3, "OP, SA, SA->OP; SA2 is not fetched");
}

#[test]
fn rs256_three_hop_chain_resolves() {
    let mut f = common::fed::three_hop_rsa(NOW);
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap().statements().len(), 5);
    assert_eq!(asked, 7);
}

/// A path that fails must leave nothing behind: here the first superior the subject names
/// vouches for another key for it and claims the anchor as its own superior, but the
/// anchor never issued a statement about it. The chain found next, through SA, must carry
/// the subject's real key.
#[test]
fn a_failed_path_leaves_nothing_behind() {
    let evil = "https://evil.example.it";
    let mut f = three_hop(NOW);
    f.config(OP, &[evil, SA], json!({"federation_entity": {}}));
    f.config(evil, &[TA], json!({"federation_entity": {}}));
    // evil's statement about OP names evil's own key as OP's.
    let evil_keys = f.jwks(evil).to_value();
    f.statement_with_jwks(evil, OP, evil_keys);
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    let chain = r.unwrap();
    assert_eq!(
        asked, 11,
        "OP, evil, evil->OP, TA, TA->evil (missing), then the SA path"
    );
    assert_eq!(chain.keys_of(OP), Some(&f.jwks(OP)));
    assert!(chain.keys_of(evil).is_none());
}

#[test]
fn wide_authority_hints_bounded_by_max_fetches() {
    // The subject names 16 superiors that all exist and all point at 16 more: without the
    // fetch bound this is 16 * 16 * ... documents.
    let mut f = common::fed::Fed::new(NOW);
    let first: Vec<String> = (0..16)
        .map(|i| format!("https://a{i}.example.it"))
        .collect();
    let second: Vec<String> = (0..16)
        .map(|i| format!("https://b{i}.example.it"))
        .collect();
    let refs2: Vec<&str> = second.iter().map(String::as_str).collect();
    let refs1: Vec<&str> = first.iter().map(String::as_str).collect();
    for a in &first {
        f.config(a, &refs2, json!({"federation_entity": {}}));
        f.statement(a, OP, None);
    }
    for b in &second {
        f.config(b, &[TA], json!({"federation_entity": {}}));
    }
    f.config(OP, &refs1, json!({"federation_entity": {}}));
    f.config(TA, &[], json!({"federation_entity": {}}));
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap_err(), Error::TooManyFetches { max: 16 });
    assert_eq!(asked, 16);
}

#[test]
fn loops_in_the_federation_graph_end() {
    // SA and SA2 name each other; neither leads to the anchor.
    let mut f = common::fed::Fed::new(NOW);
    f.config(OP, &[SA], json!({"federation_entity": {}}));
    f.config(SA, &[SA2], json!({"federation_entity": {}}));
    f.config(SA2, &[SA], json!({"federation_entity": {}}));
    f.statement(SA, OP, None);
    f.statement(SA2, SA, None);
    f.config(TA, &[], json!({"federation_entity": {}}));
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap_err().code(), "oidfed.no_trust_anchor");
    assert_eq!(asked, 5);
}

#[test]
fn unreachable_superior_falls_back_to_the_next_hint() {
    let mut f = three_hop(NOW);
    // OP also names a superior that does not answer; SA is tried next.
    f.config(
        OP,
        &["https://down.example.it", SA],
        json!({"federation_entity": {}}),
    );
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert!(r.is_ok(), "{:?}", r.err());
    assert_eq!(asked, 8);
}

#[test]
fn subject_that_is_an_anchor_resolves_to_its_configuration() {
    let mut f = three_hop(NOW);
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, TA, NOW, &f.docs);
    let chain = r.unwrap();
    assert_eq!(asked, 1);
    assert_eq!(chain.statements().len(), 1);
}

#[test]
fn fed_out_of_turn_is_an_error() {
    let mut f = three_hop(NOW);
    let cfg = f.config_for(&[TA]);
    let (mut r, _) = Resolver::start(&cfg, SA2, NOW).unwrap();
    let docs = &f.docs;
    let mut fetch = oidfed::configuration_url(SA2);
    loop {
        match r.feed(docs.get(&fetch).map(String::as_str).ok_or(FetchFailed)) {
            Ok(Step::Fetch(next)) => fetch = next.url().to_owned(),
            Ok(Step::Done(_)) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(r.feed(Ok("x")).unwrap_err(), Error::State);
    // The subject's own configuration that cannot be fetched ends the resolution.
    let (mut r, _) = Resolver::start(&cfg, OP, NOW).unwrap();
    assert_eq!(
        r.feed(Err(FetchFailed)).unwrap_err().code(),
        "oidfed.fetch_failed"
    );
}

#[test]
fn subject_must_be_an_entity_identifier() {
    let mut f = three_hop(NOW);
    let cfg = f.config_for(&[TA]);
    for bad in [
        "http://op.example.it",
        "https://op.example.it/?x=1",
        "https://",
        "op",
        "https://u@op.example.it",
    ] {
        assert_eq!(
            Resolver::start(&cfg, bad, NOW).err().map(|e| e.code()),
            Some("oidfed.entity_id"),
            "{bad}"
        );
    }
}

#[test]
fn resolver_and_chain_can_cross_threads() {
    // The broker drives a resolution inside an async task and shares resolved chains.
    fn send<T: Send>() {}
    fn shared<T: Send + Sync>() {}
    send::<Resolver<'static>>();
    shared::<oidfed::TrustChain>();
    shared::<oidfed::ResolverConfig>();
}

#[test]
fn oversized_and_deeply_nested_statements_refused_by_the_resolver() {
    let mut f = three_hop(NOW);
    let cfg = f.config_for(&[TA]);
    // 70 KB of metadata: over the 64 KiB token limit once signed.
    f.config(
        OP,
        &[SA],
        json!({"federation_entity": {"organization_name": "x".repeat(70_000)}}),
    );
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap_err().code(), "jose.too_large");
    assert_eq!(asked, 1);
    // Nesting past the depth limit inside the metadata.
    let mut deep = json!(1);
    for _ in 0..12 {
        deep = json!([deep]);
    }
    f.config(OP, &[SA], json!({"federation_entity": {"x": deep}}));
    let (r, _) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap_err().code(), "jose.json_depth");
    // The same in a superior's document ends that path only; here it was the only path.
    let mut f = three_hop(NOW);
    f.config(
        SA,
        &[SA2],
        json!({"federation_entity": {"x": "y".repeat(70_000)}}),
    );
    let cfg = f.config_for(&[TA]);
    let (r, asked) = common::resolve(&cfg, OP, NOW, &f.docs);
    assert_eq!(r.unwrap_err().code(), "jose.too_large");
    assert_eq!(asked, 2);
}
