//! Interop with the reference implementation: trust chains served live by spid-cie-oidc
//! (PyPI 1.6.3, the Django Trust Anchor and OPs of the SPID/CIE OpenID Connect federations,
//! started on loopback by `testkit::spidcie`) resolved and verified by our [`Resolver`], with
//! the anchor's keys as configuration and every document fetched over HTTP from the entities
//! themselves.
//!
//! What the package does and we accept or refuse on purpose is stated in each test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use jose::{Alg, Jwks, Signer};
use oidfed::trust_mark::{self, Options};
use oidfed::{
    ENTITY_STATEMENT_TYP, Error, FetchFailed, RelyingParty, Resolver, ResolverConfig, Step,
    TrustAnchor, TrustChain,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Map, Value, json};
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

/// Arrays as sorted sets, recursively: `subset_of` and `superset_of` define which values
/// remain, not their order, and the package returns them in set order.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalized).collect();
            items.sort_by_key(Value::to_string);
            items.dedup();
            Value::Array(items)
        }
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalized(v))).collect())
        }
        other => other.clone(),
    }
}

/// Differential: the same metadata under the same anchor policy, resolved by our
/// `Resolver` and by the package (its reference RP resolving an OP, its OP resolving the
/// reference RP), is the same for every entity type.
fn same_metadata_as_the_package(subject: &str, resolver: &testkit::spidcie::Entity) {
    let ours = resolved(subject).metadata().clone();
    let theirs = fed()
        .resolve_at(resolver, subject)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(theirs["status"], "valid");
    // Not two empty documents: federation_entity and the subject's protocol type.
    assert!(
        ours.contains_key("federation_entity") && ours.len() == 2,
        "{ours:?}"
    );
    assert_eq!(
        normalized(&Value::Object(ours)),
        normalized(&theirs["metadata"]),
        "resolved metadata differ"
    );
}

#[test]
fn spid_op_metadata_resolved_as_the_package_resolves_it() {
    let op = fed().op(Profile::Spid).entity_id();
    same_metadata_as_the_package(op, fed().rp.as_ref().unwrap());
}

#[test]
fn cie_op_metadata_resolved_as_the_package_resolves_it() {
    let op = fed().op(Profile::Cie).entity_id();
    same_metadata_as_the_package(op, fed().rp.as_ref().unwrap());
}

/// The anchor's default RP policy has `scope` `superset_of` and `subset_of` operators for a
/// parameter the reference RP does not publish: both implementations leave it absent.
#[test]
fn reference_rp_metadata_resolved_as_the_package_resolves_it() {
    let rp = fed().rp.as_ref().unwrap().entity_id();
    same_metadata_as_the_package(rp, fed().op(Profile::Spid));
    let chain = resolved(rp);
    assert!(
        chain
            .metadata_of("openid_relying_party")
            .unwrap()
            .get("scope")
            .is_none()
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

/// Serves one document at `/.well-known/openid-federation` on a loopback port until dropped.
struct Site {
    entity_id: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
}

impl Site {
    /// Binds first (the Entity Identifier names the port), then serves `make(entity_id)`.
    fn start(make: impl FnOnce(&str) -> String) -> Site {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let entity_id = format!("http://{addr}");
        let body = make(&entity_id);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16_384 {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head);
                let path = line.split_whitespace().nth(1).unwrap_or("");
                let reply = if path == "/.well-known/openid-federation" {
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/entity-statement+jwt\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                } else {
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_owned()
                };
                let _ = c.write_all(reply.as_bytes());
            }
        });
        Site {
            entity_id,
            stop,
            addr,
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn es256() -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), None, &rng).unwrap()
}

fn rsa(alg: Alg) -> Signer {
    // ring cannot generate RSA keys; the PyJWT venv's script makes one (PKCS#8, hex).
    let hex = common::run_py("entity_configuration.py", &["rsa-key"]);
    let hex = hex.trim();
    let der: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    Signer::rsa_from_pkcs8(alg, &der, None).unwrap()
}

/// Our relying party's Entity Configuration: `RelyingParty::metadata` and the claims
/// `RelyingParty::sign` writes, signed by our `jose::Signer`. (`RelyingParty::sign` itself
/// refuses `http` Entity Identifiers, and this federation lives on `http` loopback.)
fn our_configuration(entity_id: &str, signer: &Signer) -> String {
    let core = es256();
    let rp = RelyingParty {
        entity_id: entity_id.to_owned(),
        authority_hints: vec![fed().ta_id().to_owned()],
        trust_marks: Vec::new(),
        organization_name: "Comune di Prova".into(),
        homepage_uri: format!("{entity_id}/"),
        policy_uri: format!("{entity_id}/privacy"),
        logo_uri: format!("{entity_id}/logo.svg"),
        contacts: vec!["protocollo@pec.example.invalid".into()],
        federation_resolve_endpoint: None,
        client_name: "Servizi online".into(),
        redirect_uris: vec![format!("{entity_id}/oidc/callback")],
        rp_jwks: Jwks::from_keys(vec![core.jwk().clone()])
            .unwrap()
            .to_value(),
        id_token_signed_response_alg: "RS256".into(),
        userinfo_signed_response_alg: "RS256".into(),
        userinfo_encrypted_response_alg: "RSA-OAEP".into(),
        userinfo_encrypted_response_enc: "A256CBC-HS512".into(),
    };
    let iat = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(entity_id));
    claims.insert("sub".into(), json!(entity_id));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(iat + 3600));
    claims.insert(
        "jwks".into(),
        Jwks::from_keys(vec![signer.jwk().clone()])
            .unwrap()
            .to_value(),
    );
    claims.insert("metadata".into(), rp.metadata());
    claims.insert("authority_hints".into(), json!(rp.authority_hints));
    signer
        .sign(ENTITY_STATEMENT_TYP, &claims, &SystemRandom::new())
        .unwrap()
}

/// The reference OP resolves our relying party's chain: our Entity Configuration (signed
/// by `signer`), the anchor's statement about us (onboarded with the keys the anchor read
/// from that configuration), the anchor. Returns what the package stored.
fn resolved_by_reference_op(signer: &Signer) -> Result<Value, String> {
    let site = Site::start(|id| our_configuration(id, signer));
    fed().onboard_rp(&site.entity_id, None);
    let r = fed().resolve_at(fed().op(Profile::Spid), &site.entity_id);
    drop(site);
    r
}

fn accepted_by_reference_op(signer: &Signer) {
    let tc = resolved_by_reference_op(signer).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tc["status"], "valid", "{tc}");
    let md = &tc["metadata"]["openid_relying_party"];
    // Our metadata, with the anchor's default RP policy applied by the package.
    assert_eq!(md["token_endpoint_auth_method"], "private_key_jwt", "{tc}");
    // `subset_of` as the package applies it keeps the values but not their order.
    let mut grants: Vec<&str> = md["grant_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    grants.sort_unstable();
    assert_eq!(grants, ["authorization_code", "refresh_token"], "{tc}");
    assert!(md["jwks"]["keys"].as_array().is_some_and(|k| k.len() == 1));
}

#[test]
fn reference_op_resolves_our_es256_entity_configuration() {
    accepted_by_reference_op(&es256());
}

#[test]
fn reference_op_resolves_our_rs256_entity_configuration() {
    accepted_by_reference_op(&rsa(Alg::Rs256));
}

/// PS256 is on our allow-list (the SPID/CIE rules recommend it) but not on the package's
/// (`SIGNING_ALG_VALUES_SUPPORTED`: RS256/384/512, ES256/384/512): onboarded with the right
/// keys, a relying party whose Entity Configuration is PS256-signed still has no trust chain
/// at the reference OP. One meant to join a federation run on this software signs its
/// statements with RS256 or ES256.
#[test]
fn reference_op_refuses_a_ps256_entity_configuration() {
    let signer = rsa(Alg::Ps256);
    let site = Site::start(|id| our_configuration(id, &signer));
    let keys = Jwks::from_keys(vec![signer.jwk().clone()])
        .unwrap()
        .to_value();
    fed().onboard_rp(&site.entity_id, Some(&keys));
    let r = fed().resolve_at(fed().op(Profile::Spid), &site.entity_id);
    let err = r.expect_err("the reference OP accepted a PS256 Entity Configuration");
    assert!(
        err.contains("PS256 has beed disabled"),
        "refused for another reason: {err}"
    );
}
