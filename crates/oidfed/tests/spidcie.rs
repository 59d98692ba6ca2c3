//! Interop with the reference implementation: trust chains served live by spid-cie-oidc
//! (PyPI 1.6.3, the Django Trust Anchor and OPs of the SPID/CIE OpenID Connect federations,
//! started on loopback by `testkit::spidcie`) resolved and verified by our [`Resolver`], with
//! the anchor's keys as configuration and every document fetched over HTTP from the entities
//! themselves.
//!
//! What the package does and we accept or refuse on purpose is stated in each test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use jose::Jwks;
use oidfed::trust_mark::{self, Options};
use oidfed::{Error, FetchFailed, Resolver, ResolverConfig, Step, TrustAnchor, TrustChain};
use serde_json::{Value, json};
use testkit::spidcie::{Federation, Profile, get, jwt_claims};

/// The federation's clock: the `iat` of a configuration the anchor signs on request. The
/// package stamps its documents with the wall clock; the test reads the time from them
/// rather than from the system (the clock is an argument of the pure crate).
fn now() -> u64 {
    jwt_claims(&fed().ta_configuration())["iat"]
        .as_u64()
        .unwrap()
}

fn fed() -> &'static Federation {
    Federation::shared()
}

/// The anchor as a relying party would configure it; `http` allowed (loopback only).
fn config(anchor_jwks: &Value) -> ResolverConfig {
    let mut cfg = ResolverConfig::new(vec![TrustAnchor {
        entity_id: fed().ta_id().to_owned(),
        jwks: Jwks::from_value(anchor_jwks).unwrap(),
    }]);
    cfg.allow_http = true;
    cfg
}

/// Resolves `subject` against the live federation: every document the resolver asks for is
/// fetched from the URL it names; a non-200 answer is a failed fetch. Also returns the URLs.
fn resolve(cfg: &ResolverConfig, subject: &str) -> (Result<TrustChain, Error>, Vec<String>) {
    let (mut r, mut fetch) = Resolver::start(cfg, subject, now()).unwrap();
    let mut urls = Vec::new();
    loop {
        urls.push(fetch.url().to_owned());
        let (status, body) = get(fetch.url());
        let fed_body = if status == 200 {
            Ok(body.as_str())
        } else {
            Err(FetchFailed)
        };
        match r.feed(fed_body) {
            Ok(Step::Fetch(f)) => fetch = f,
            Ok(Step::Done(chain)) => return (Ok(*chain), urls),
            Err(e) => return (Err(e), urls),
        }
    }
}

fn resolved(subject: &str) -> TrustChain {
    let (r, urls) = resolve(&config(&fed().ta_jwks()), subject);
    r.unwrap_or_else(|e| panic!("{subject}: {e} (fetched {urls:?})\n{}", fed().logs()))
}

fn op_chain(p: Profile) {
    let op = fed().op(p).entity_id().to_owned();
    let chain = resolved(&op);
    assert_eq!(chain.subject(), op);
    assert_eq!(chain.anchor(), fed().ta_id());
    // The subject's configuration, the anchor's statement about it, the anchor's configuration.
    let st = chain.statements();
    assert_eq!(st.len(), 3, "{st:?}");
    let (ec, sub, ta) = (jwt_claims(&st[0]), jwt_claims(&st[1]), jwt_claims(&st[2]));
    assert_eq!(
        (ec["iss"].as_str(), ec["sub"].as_str()),
        (Some(&*op), Some(&*op))
    );
    assert_eq!(sub["iss"], json!(fed().ta_id()));
    assert_eq!(sub["sub"], json!(op));
    assert_eq!(ta["sub"], json!(fed().ta_id()));
    // The statement is the one the anchor's fetch endpoint serves (the same claims; the
    // package signs afresh on every request, with new iat/exp).
    let fetched = jwt_claims(&fed().subordinate_statement(&op));
    assert_eq!(fetched["jwks"], sub["jwks"]);
    assert_eq!(fetched["metadata_policy"], sub["metadata_policy"]);
    // Expiry: the smallest along the chain.
    let min_exp = [&ec, &sub, &ta]
        .iter()
        .map(|c| c["exp"].as_u64().unwrap())
        .min()
        .unwrap();
    assert_eq!(chain.exp(), min_exp);
    // The OP's keys are those the anchor's statement vouches for.
    assert_eq!(
        chain.keys_of(&op).unwrap(),
        &Jwks::from_value(&sub["jwks"]).unwrap()
    );
    // The anchor's default policy for OPs (spid_cie_oidc.authority.settings) was applied:
    // `value` replaces the OP's ["pairwise", "public"], `subset_of` keeps the algorithms both
    // lists have, and the OP's own parameters pass through.
    let md = chain
        .metadata_of("openid_provider")
        .expect("openid_provider");
    assert_eq!(md["subject_types_supported"], json!(["pairwise"]));
    assert_eq!(
        md["token_endpoint_auth_methods_supported"],
        json!(["private_key_jwt"])
    );
    assert_eq!(
        md["id_token_signing_alg_values_supported"],
        json!(["RS256", "RS512", "ES256"])
    );
    assert_eq!(md["issuer"], json!(op));
    assert_eq!(
        md["authorization_endpoint"],
        json!(format!("{op}/authorization"))
    );
    assert!(md["jwks"]["keys"].as_array().is_some_and(|k| !k.is_empty()));
}

#[test]
fn spid_op_trust_chain_from_the_reference_trust_anchor_verifies() {
    op_chain(Profile::Spid);
}

#[test]
fn cie_op_trust_chain_from_the_reference_trust_anchor_verifies() {
    op_chain(Profile::Cie);
}

/// The reference RP's chain, with the anchor's default RP policy (`grant_types` subset_of,
/// `scope` superset_of/subset_of on a parameter the RP does not publish).
#[test]
fn reference_rp_trust_chain_verifies() {
    let rp = fed()
        .rp
        .as_ref()
        .expect("reference RP")
        .entity_id()
        .to_owned();
    let chain = resolved(&rp);
    let md = chain
        .metadata_of("openid_relying_party")
        .expect("openid_relying_party");
    assert_eq!(md["client_id"], json!(rp));
    assert_eq!(
        md["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
}

/// A relying party that configured the wrong keys for the anchor refuses the chain: the
/// package's anchor signs with its own key, which is not the one configured.
#[test]
fn wrong_trust_anchor_keys_refuse_the_reference_chain() {
    let op = fed().op(Profile::Spid).entity_id().to_owned();
    // The OP's own keys in place of the anchor's.
    let op_keys =
        jwt_claims(&get(&format!("{op}/.well-known/openid-federation")).1)["jwks"].clone();
    let (r, _) = resolve(&config(&op_keys), &op);
    let e = r.expect_err("chain accepted with the wrong anchor keys");
    assert_eq!(e.code(), "oidfed.trust_anchor_keys", "{e}");
}

/// The trust marks the package's anchor issues (and our harness puts in each OP's
/// configuration) verify against the chain: issuer listed in the anchor's
/// `trust_mark_issuers`, signed with the anchor's key, about the OP.
///
/// The package issues them without `exp`. OpenID Federation 1.0 §7.1 makes `exp` optional,
/// so this is conformant; our default (refuse a mark that never expires, `exp missing`) is
/// stricter on purpose and the caller must opt in with `accept_without_exp`.
#[test]
fn reference_trust_marks_verify_only_when_marks_without_exp_are_accepted() {
    let op = fed().op(Profile::Spid).entity_id().to_owned();
    let chain = resolved(&op);
    assert_eq!(chain.trust_marks().len(), 1);
    let strict = trust_mark::verify_listed(&chain, now(), &Options::default());
    match &strict[..] {
        [Err(e)] => assert!(
            e.code() == "oidfed.trust_mark" && e.to_string().contains("exp missing"),
            "{e}"
        ),
        other => panic!("expected one refusal for the missing exp, got {other:?}"),
    }
    let lenient = Options {
        accept_without_exp: true,
        ..Options::default()
    };
    let marks = trust_mark::verify_listed(&chain, now(), &lenient);
    let m = marks[0].as_ref().unwrap();
    assert_eq!(m.iss, fed().ta_id());
    assert_eq!(m.sub, op);
    assert_eq!(
        m.trust_mark_type,
        format!("{}/openid_provider/public", fed().ta_id())
    );
    assert_eq!(m.exp, None);
}

/// Not a timing assertion: prints how long the shared federation took to start, for the
/// record (`cargo test -p oidfed --test spidcie -- --nocapture`).
#[test]
fn shared_federation_reports_its_startup() {
    eprintln!(
        "spid-cie-oidc federation (TA, SPID OP, CIE OP, RP) started in {:?}",
        fed().startup
    );
    assert!(fed().spid_op.is_some() && fed().cie_op.is_some() && fed().rp.is_some());
}
