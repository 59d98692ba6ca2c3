//! SPID/CIE over OpenID Connect against Varco's real routes: a Trust Anchor and an OpenID
//! Provider built in-test from `jose::Signer` and the oidfed test federation, served over
//! HTTP on loopback (federation documents, token, UserInfo and revocation endpoints). The
//! test OP checks what a real one checks of Varco (request object signed with the keys of
//! our Entity Configuration, PKCE S256, `private_key_jwt`, one use per code), and each
//! attack class of docs/THREATS.md ("OpenID Connect relying party") has a named test here.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../../oidfed/tests/common/fed.rs"]
mod fed;
#[path = "fixture/mod.rs"]
mod fixture;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fed::Fed;
use jose::{Jwks, Jws, Signer, Typ};
use ring::rand::SystemRandom;
use serde_json::{Map, Value, json};

const KEYS: &str = fixture::KEYS;
const FISCAL: &str = "TINIT-RSSMRA85T10A562S";
const SPID_L2: &str = "https://www.spid.gov.it/SpidL2";
/// The fixture rewrites its shared files on every call: one configuration at a time.
static FIXTURE: Mutex<()> = Mutex::new(());
const TM_TYPE: &str = "https://registry.example.it/openid_provider/public";

fn now() -> u64 {
    broker::leaf::clock::system()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Builds an ID token from its claims (a forged or malformed one).
type Forge = fn(&Map<String, Value>) -> String;

/// How the test OP misbehaves (all default: it behaves).
#[derive(Default, Clone)]
struct Mode {
    /// Claims merged over the ID token's.
    id_claims: Map<String, Value>,
    /// Replaces the signed ID token with this function of the claims.
    id_token: Option<Forge>,
    /// Claims merged over UserInfo's (a `null` one is left out).
    userinfo_claims: Map<String, Value>,
}

struct Op {
    issuer: String,
    signer: Signer,
    rp_jwks: Option<Jwks>,
    rp_enc: Option<Value>,
    client_id: String,
    codes: HashMap<String, (String, String)>,
    access_tokens: HashMap<String, String>,
    mode: Mode,
    token_calls: usize,
    revoked: usize,
}

struct World {
    rt: tokio::runtime::Runtime,
    ta: String,
    op: String,
    docs: Arc<Mutex<HashMap<String, String>>>,
    fed: Fed,
    provider: Arc<Mutex<Op>>,
    state: Arc<broker::state::State>,
    varco: SocketAddr,
    base: String,
}

fn signer_es256() -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), None, &rng).unwrap()
}

fn op_metadata(op: &str, jwks: &Jwks) -> Value {
    json!({
        "federation_entity": {"organization_name": "Test OP"},
        "openid_provider": {
            "issuer": op,
            "authorization_endpoint": format!("{op}/authorization"),
            "token_endpoint": format!("{op}/token"),
            "userinfo_endpoint": format!("{op}/userinfo"),
            "revocation_endpoint": format!("{op}/revoke"),
            "jwks": jwks.to_value(),
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "acr_values_supported": ["https://www.spid.gov.it/SpidL1", SPID_L2, "https://www.spid.gov.it/SpidL3"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "client_registration_types_supported": ["automatic"],
            "scopes_supported": ["openid"],
        }
    })
}

/// Builds the federation (TA → OP), starts the HTTP peer and Varco configured to trust the
/// TA. `tweak` may change the federation documents before they are served; `anchor_extra`
/// is appended to the `[[oidc_rp.trust_anchor]]` table.
fn world_with(
    tweak: impl FnOnce(&mut Fed, &str, &str, &Jwks),
    anchor_extra: &str,
    federation: &str,
) -> World {
    world_full(tweak, anchor_extra, federation, "", None)
}

/// [`world_with`], with `rp_extra` keys added to `[oidc_rp]`.
fn world_full(
    tweak: impl FnOnce(&mut Fed, &str, &str, &Jwks),
    anchor_extra: &str,
    federation: &str,
    rp_extra: &str,
    audit_dir: Option<&std::path::Path>,
) -> World {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (ta, op) = (format!("{base}/ta"), format!("{base}/op"));
    let mut f = Fed::new(now());
    let op_signer = signer_es256();
    let op_jwks = Jwks::from_keys(vec![op_signer.jwk().clone()]).unwrap();
    f.config(
        &ta,
        &[],
        json!({"federation_entity": {"organization_name": "TA"}}),
    );
    f.statement(&ta, &op, None);
    f.config(&op, &[&ta], op_metadata(&op, &op_jwks));
    tweak(&mut f, &ta, &op, &op_jwks);
    let docs = Arc::new(Mutex::new(f.docs.clone()));
    let provider = Arc::new(Mutex::new(Op {
        issuer: op.clone(),
        signer: op_signer,
        rp_jwks: None,
        rp_enc: None,
        client_id: String::new(),
        codes: HashMap::new(),
        access_tokens: HashMap::new(),
        mode: Mode::default(),
        token_calls: 0,
        revoked: 0,
    }));
    rt.spawn(serve_peer(
        listener,
        base.clone(),
        docs.clone(),
        provider.clone(),
    ));

    let dir = std::env::temp_dir().join(format!(
        "varco-oidc-{}-{}",
        std::process::id(),
        URL_SAFE_NO_PAD.encode(
            ring::rand::generate::<[u8; 6]>(&SystemRandom::new())
                .unwrap()
                .expose()
        )
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ta_jwks = dir.join("ta.jwks.json");
    std::fs::write(&ta_jwks, f.jwks(&ta).to_value().to_string()).unwrap();
    let extra = format!(
        r#"
[oidc_rp]
federation_key_file = "{KEYS}/idp-rsa3072.key.pem"
signing_key_file = "{KEYS}/sp-rsa2048.key.pem"
encryption_key_file = "{KEYS}/idp-rsa2048.key.pk8.der"
authority_hints = ["{ta}"]
organization_name = "Comune di Prova"
homepage_uri = "https://www.example.org"
policy_uri = "https://www.example.org/privacy"
logo_uri = "https://www.example.org/logo.svg"
contacts = ["protocollo@pec.example.org"]
allow_http = true
fetch_timeout_ms = 5000
{rp_extra}

[[oidc_rp.trust_anchor]]
entity_id = "{ta}"
jwks_file = "{}"
{anchor_extra}

[[oidc_rp.op]]
name = "test-op"
entity_id = "{op}"
federation = "{federation}"
display_name = "Test OP"
"#,
        ta_jwks.display()
    );
    let config = {
        let _one = FIXTURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The test federation is http on loopback: a development deployment.
        fixture::config_with_server("allow_plain_http = true", &extra)
    };
    let store =
        broker::features::store::Store::memory(Duration::from_secs(600), 1000, config.session_ttl);
    let state = Arc::new(fixture::state_with_store(
        &config,
        broker::leaf::clock::system,
        match audit_dir {
            None => broker::features::audit::Sink::Off,
            Some(d) => broker::features::audit::Sink::File(
                broker::features::audit::file::FileSink::open(
                    &broker::features::audit::file::Options {
                        dir: d.to_path_buf(),
                        max_file_bytes: 1 << 20,
                        retention: Duration::from_secs(86_400),
                        key: None,
                        commit_interval: Duration::ZERO,
                    },
                    broker::leaf::clock::system(),
                )
                .unwrap(),
            ),
        },
        store,
    ));
    {
        let rp = config.oidc_rp.as_ref().unwrap();
        let mut p = provider.lock().unwrap();
        p.rp_jwks = Some(Jwks::from_value(&rp.rp.rp_jwks).unwrap());
        p.rp_enc = rp.rp.rp_jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["use"] == "enc")
            .cloned();
        p.client_id = rp.entity_id.clone();
    }
    let varco = rt.block_on(fixture::serve(state.clone()));
    World {
        rt,
        ta,
        op,
        docs,
        fed: f,
        provider,
        state,
        varco,
        base,
    }
}

fn world() -> World {
    world_with(|_, _, _, _| {}, "", "spid")
}

/// One HTTP/1.1 exchange with Varco (`Connection: close`): status, head (case kept), body.
async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cookie = cookie
        .map(|c| format!("\r\nCookie: {c}"))
        .unwrap_or_default();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: sp.varco.example.org{cookie}\r\nConnection: close\r\n\r\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer)
        .await
        .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head[9..12].parse().unwrap(),
        head.to_owned(),
        body.to_owned(),
    )
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn query_of(url: &str) -> HashMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// === The test peer: federation documents and the OP endpoints ===

async fn serve_peer(
    listener: tokio::net::TcpListener,
    base: String,
    docs: Arc<Mutex<HashMap<String, String>>>,
    op: Arc<Mutex<Op>>,
) {
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let (docs, op, base) = (docs.clone(), op.clone(), base.clone());
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (docs, op, base) = (docs.clone(), op.clone(), base.clone());
                    async move {
                        let url = format!("{base}{}", req.uri());
                        let auth = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_owned);
                        let body = http_body_util::BodyExt::collect(req.into_body())
                            .await
                            .unwrap()
                            .to_bytes();
                        let (status, text) = peer_answer(&url, auth.as_deref(), &body, &docs, &op);
                        let mut r = hyper::Response::new(http_body_util::Full::new(
                            bytes::Bytes::from(text),
                        ));
                        *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                        Ok::<_, std::convert::Infallible>(r)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn peer_answer(
    url: &str,
    auth: Option<&str>,
    body: &[u8],
    docs: &Mutex<HashMap<String, String>>,
    op: &Mutex<Op>,
) -> (u16, String) {
    if let Some(d) = docs.lock().unwrap().get(url) {
        return (200, d.clone());
    }
    let mut op = op.lock().unwrap();
    if url == format!("{}/token", op.issuer) {
        return token_endpoint(&mut op, body);
    }
    if url == format!("{}/userinfo", op.issuer) {
        return userinfo_endpoint(&op, auth);
    }
    if url == format!("{}/revoke", op.issuer) {
        op.revoked += 1;
        return (200, String::new());
    }
    (404, String::new())
}

fn at_hash(token: &str) -> String {
    let h = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(&h.as_ref()[..16])
}

fn token_endpoint(op: &mut Op, body: &[u8]) -> (u16, String) {
    op.token_calls += 1;
    let form: HashMap<String, String> = form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    // private_key_jwt with a key of the RP's Entity Configuration.
    let assertion = Jws::decode(
        &form["client_assertion"],
        Typ::JwtOrAbsent,
        &Default::default(),
    )
    .unwrap()
    .into_verified_claims(op.rp_jwks.as_ref().unwrap())
    .unwrap();
    assert_eq!(assertion["iss"], json!(op.client_id));
    assert_eq!(assertion["aud"], json!(format!("{}/token", op.issuer)));
    assert_eq!(form["grant_type"], "authorization_code");
    // One use per code.
    let Some((nonce, challenge)) = op.codes.remove(&form["code"]) else {
        return (400, r#"{"error":"invalid_grant"}"#.into());
    };
    // PKCE S256.
    assert_eq!(
        oidfed::oidc::pkce_challenge(&form["code_verifier"]),
        challenge
    );
    let access = format!("at-{}", form["code"]);
    let n = now();
    let mut claims: Map<String, Value> = json!({
        "iss": op.issuer, "sub": "pairwise-sub-1", "aud": op.client_id,
        "iat": n, "exp": n + 300, "nonce": nonce, "acr": SPID_L2,
        "at_hash": at_hash(&access), "jti": format!("jti-{}", form["code"]),
        "given_name": "Mario", "family_name": "Rossi",
    })
    .as_object()
    .unwrap()
    .clone();
    claims.extend(op.mode.id_claims.clone());
    let id_token = match op.mode.id_token {
        Some(f) => f(&claims),
        None => op
            .signer
            .sign("JWT", &claims, &SystemRandom::new())
            .unwrap(),
    };
    op.access_tokens
        .insert(access.clone(), "pairwise-sub-1".into());
    (
        200,
        json!({"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token})
            .to_string(),
    )
}

fn userinfo_endpoint(op: &Op, auth: Option<&str>) -> (u16, String) {
    let Some(sub) = auth
        .and_then(|a| a.strip_prefix("Bearer "))
        .and_then(|t| op.access_tokens.get(t))
    else {
        return (401, String::new());
    };
    let mut claims: Map<String, Value> = json!({
        "iss": op.issuer, "aud": op.client_id, "sub": sub,
        "given_name": "Mario", "family_name": "Rossi",
        "https://attributes.eid.gov.it/fiscal_number": FISCAL,
        "email": "mario.rossi@example.org",
    })
    .as_object()
    .unwrap()
    .clone();
    claims.extend(op.mode.userinfo_claims.clone());
    claims.retain(|_, v| !v.is_null());
    let jws = op
        .signer
        .sign("JWT", &claims, &SystemRandom::new())
        .unwrap();
    let jwe = jose::encrypt_to(
        op.rp_enc.as_ref().unwrap(),
        jose::KeyAlg::RsaOaep,
        jose::CbcHs::A256CbcHs512,
        Some("JWT"),
        jws.as_bytes(),
        &SystemRandom::new(),
    )
    .unwrap();
    (200, jwe)
}

/// The OP's authorization endpoint, as the browser reaches it: checks the request object
/// against our Entity Configuration's keys and answers with the callback query.
fn authorize(w: &World, location: &str) -> String {
    let q = query_of(location);
    let mut op = w.provider.lock().unwrap();
    let req = Jws::decode(
        &q["request"],
        Typ::Exactly("oauth-authz-req+jwt"),
        &Default::default(),
    )
    .unwrap()
    .into_verified_claims(op.rp_jwks.as_ref().unwrap())
    .unwrap();
    assert_eq!(req["client_id"], json!(op.client_id));
    assert_eq!(req["response_type"], "code");
    assert_eq!(req["scope"], "openid");
    assert_eq!(req["code_challenge_method"], "S256");
    assert_eq!(req["prompt"], "consent login");
    assert_eq!(req["acr_values"], SPID_L2);
    assert_eq!(
        req["redirect_uri"],
        "https://sp.varco.example.org/oidc/callback"
    );
    assert_eq!(q["scope"], "openid");
    assert_eq!(q["client_id"], op.client_id);
    let code = format!("code{}", op.codes.len());
    op.codes.insert(
        code.clone(),
        (
            req["nonce"].as_str().unwrap().to_owned(),
            req["code_challenge"].as_str().unwrap().to_owned(),
        ),
    );
    form_urlencoded::Serializer::new(String::new())
        .append_pair("code", &code)
        .append_pair("state", req["state"].as_str().unwrap())
        .append_pair("iss", &op.issuer)
        .finish()
}

/// `/oidc/login`: the OP's authorization URL and the login cookie (`name=value`).
fn start(w: &World) -> (String, String) {
    let (status, head, body) = w.rt.block_on(get(
        w.varco,
        "/oidc/login?op=test-op&level=2&return_to=/",
        None,
    ));
    assert_eq!(status, 303, "{head}\n{body}");
    let location = header(&head, "location").unwrap().to_owned();
    assert!(location.starts_with(&format!("{}/authorization?", w.op)));
    let cookie = header(&head, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    (location, cookie)
}

fn callback(w: &World, query: &str, cookie: &str) -> (u16, String, String) {
    w.rt.block_on(get(
        w.varco,
        &format!("/oidc/callback?{query}"),
        Some(cookie),
    ))
}

/// A whole login with the OP in `mode`: the callback's answer.
fn login_with(w: &World, mode: Mode) -> (u16, String, String) {
    w.provider.lock().unwrap().mode = mode;
    let (location, cookie) = start(w);
    let q = authorize(w, &location);
    callback(w, &q, &cookie)
}

fn code_of(body: &str) -> &str {
    // The failure page shows the stable code.
    ["oidc.", "jose.", "broker_", "identity"]
        .iter()
        .find_map(|p| body.find(p).map(|i| &body[i..]))
        .map(|s| {
            s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '_'))
                .next()
                .unwrap()
        })
        .unwrap_or("")
}

fn refused_with(w: &World, mode: Mode, code: &str) {
    let (status, head, body) = login_with(w, mode);
    assert!((400..500).contains(&status), "{status}\n{head}\n{body}");
    assert!(header(&head, "set-cookie").is_none_or(|c| !c.starts_with("__Host-varco=")));
    assert_eq!(code_of(&body), code, "{body}");
}

fn claim(k: &str, v: Value) -> Mode {
    let mut m = Mode::default();
    m.id_claims.insert(k.into(), v);
    m
}

// === The happy path ===

#[test]
fn spid_oidc_login_opens_a_session_with_the_normalized_identity() {
    let w = world();
    let (status, head, body) = login_with(&w, Mode::default());
    assert_eq!(status, 303, "{head}\n{body}");
    assert_eq!(header(&head, "location"), Some("/"));
    let session = header(&head, "set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, who) = w.rt.block_on(get(w.varco, "/whoami", Some(&session)));
    assert_eq!(status, 200, "{who}");
    let who: Value = serde_json::from_str(&who).unwrap();
    assert_eq!(who["principal"]["sub"], FISCAL);
    assert_eq!(who["principal"]["given_name"], "Mario");
    assert_eq!(who["principal"]["auth"]["loa"], "substantial");
    assert_eq!(who["principal"]["auth"]["method"], "spid");
    assert_eq!(who["idp"], json!(w.op));
    // The access token is revoked at once, in the background.
    for _ in 0..100 {
        if w.provider.lock().unwrap().revoked == 1 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(w.provider.lock().unwrap().revoked, 1);
}

#[test]
fn entity_configuration_is_signed_by_the_federation_key_and_lists_the_oidc_keys() {
    let w = world();
    let (status, head, body) =
        w.rt.block_on(get(w.varco, "/.well-known/openid-federation", None));
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("application/entity-statement+jwt")
    );
    let jws = Jws::decode(
        &body,
        Typ::Exactly("entity-statement+jwt"),
        &Default::default(),
    )
    .unwrap();
    let claims = jws.claims_unverified().clone();
    let own = Jwks::from_value(&claims["jwks"]).unwrap();
    jws.verify(&own).unwrap();
    let rp = &claims["metadata"]["openid_relying_party"];
    assert_eq!(rp["client_id"], claims["sub"]);
    assert_eq!(claims["authority_hints"], json!([w.ta]));
    // Three distinct keys: federation, OIDC signing, OIDC encryption.
    let rp_keys = rp["jwks"]["keys"].as_array().unwrap();
    assert_eq!(rp_keys.len(), 2);
    let fed_kid = claims["jwks"]["keys"][0]["kid"].as_str().unwrap();
    assert!(rp_keys.iter().all(|k| k["kid"] != fed_kid));
    assert!(rp_keys.iter().any(|k| k["use"] == "enc"));
}

#[test]
fn chains_are_cached_and_resolved_once_under_concurrent_logins() {
    let w = world();
    let rp = w.state.oidc.clone().unwrap();
    let results = w.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let rp = rp.clone();
            set.spawn(async move { rp.provider("test-op", now()).await.is_ok() });
        }
        set.join_all().await
    });
    assert!(results.iter().all(|ok| *ok));
    // Single flight: one resolution, three documents (OP configuration, TA configuration,
    // the TA's statement about the OP), however many callers.
    assert_eq!(rp.resolution_count(), 1);
    assert_eq!(rp.fetch_count(), 3);
    for _ in 0..3 {
        start(&w);
    }
    assert_eq!(rp.fetch_count(), 3);
}

#[test]
fn last_known_good_chain_survives_a_failed_refresh_until_it_expires() {
    let w = world();
    let rp = w.state.oidc.clone().unwrap();
    let t = now();
    w.rt.block_on(rp.provider("test-op", t)).unwrap();
    // The federation goes away; a refresh fails but the chain is still valid.
    w.docs.lock().unwrap().clear();
    let next = w.rt.block_on(rp.refresh_due(t + 7_000));
    assert!(next.is_some());
    assert!(w.rt.block_on(rp.provider("test-op", t + 3_000)).is_ok());
    // Past the chain's exp (the OP's configuration: +3600), nothing is served.
    let e =
        w.rt.block_on(rp.provider("test-op", t + 3_700))
            .unwrap_err();
    assert_eq!(e.code(), "oidfed.fetch_failed");
}

// === Federation attacks ===

fn login_refused_at_start(w: &World, code: &str) {
    let (status, _, body) = w.rt.block_on(get(
        w.varco,
        "/oidc/login?op=test-op&level=2&return_to=/",
        None,
    ));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains(code), "want {code}: {body}");
}

#[test]
fn wrong_trust_anchor_is_refused() {
    // The OP's only superior is another anchor, signed by keys we never configured.
    let w = world_with(
        |f, _ta, op, jwks| {
            let rogue = format!("{}-rogue", op.trim_end_matches("/op"));
            f.config(&rogue, &[], json!({"federation_entity": {}}));
            f.statement(&rogue, op, None);
            f.config(op, &[&rogue], op_metadata(op, jwks));
        },
        "",
        "spid",
    );
    login_refused_at_start(&w, "oidfed.");
}

#[test]
fn expired_statement_is_refused() {
    let w = world_with(
        |f, ta, op, _| {
            let jwks = f.jwks(op).to_value();
            let c = json!({"iss": ta, "sub": op, "iat": now() - 7200, "exp": now() - 3600, "jwks": jwks});
            let t = f.sign_as(ta, c, "entity-statement+jwt");
            let url = format!(
                "{}?sub={}",
                fed::fetch_endpoint(ta),
                form_urlencoded::byte_serialize(op.as_bytes()).collect::<String>()
            );
            f.docs.insert(url, t);
        },
        "",
        "spid",
    );
    login_refused_at_start(&w, "oidfed.expired");
}

#[test]
fn broken_chain_is_refused() {
    // The TA's statement names other keys for the OP than those signing its configuration.
    let w = world_with(
        |f, ta, op, _| {
            let other = f.jwks("https://someone-else.example.it").to_value();
            f.statement_with_jwks(ta, op, other);
        },
        "",
        "spid",
    );
    login_refused_at_start(&w, "jose.kid_unknown");
}

#[test]
fn policy_violation_is_refused() {
    // The anchor allows only RS512 ID tokens; the OP declares ES256 and RS256.
    let w = world_with(
        |f, ta, op, _| {
            let jwks = f.jwks(op).to_value();
            f.statement_full(
                ta,
                op,
                Some(json!({"openid_provider": {
                    "id_token_signing_alg_values_supported": {"one_of": ["RS512"]}
                }})),
                jwks,
            );
        },
        "",
        "spid",
    );
    login_refused_at_start(&w, "oidfed.policy");
}

#[test]
fn unregistered_trust_mark_is_refused() {
    // The anchor requires a trust mark; the OP shows one, issued by an entity the anchor
    // does not accredit for that type.
    let w = world_with(
        |f, ta, op, jwks| {
            let issuer = format!("{}-issuer", op);
            let mark = f.sign_as(
                &issuer,
                json!({"iss": issuer, "sub": op, "iat": now() - 10, "exp": now() + 3600, "trust_mark_type": TM_TYPE, "id": TM_TYPE}),
                "trust-mark+jwt",
            );
            f.config(
                ta,
                &[],
                json!({"federation_entity": {"organization_name": "TA"}}),
            );
            let mut md = op_metadata(op, jwks);
            md["federation_entity"]["organization_name"] = json!("OP");
            f.config(op, &[ta], md);
            // Re-sign the OP configuration with the mark listed.
            let mut c: Map<String, Value> = Jws::decode(
                &f.docs[&oidfed::configuration_url(op)],
                Typ::Exactly("entity-statement+jwt"),
                &Default::default(),
            )
            .unwrap()
            .claims_unverified()
            .clone();
            c.insert(
                "trust_marks".into(),
                json!([{"trust_mark_type": TM_TYPE, "id": TM_TYPE, "trust_mark": mark}]),
            );
            let t = f.sign_as(op, Value::Object(c), "entity-statement+jwt");
            f.docs.insert(oidfed::configuration_url(op), t);
        },
        &format!("required_trust_marks = [\"{TM_TYPE}\"]"),
        "spid",
    );
    login_refused_at_start(&w, "broker_oidc_trust_mark");
}

#[test]
fn oversized_federation_document_is_refused() {
    let w = world_with(
        |f, _ta, op, _| {
            f.docs
                .insert(oidfed::configuration_url(op), "A".repeat(70 * 1024));
        },
        "",
        "spid",
    );
    login_refused_at_start(&w, "oidfed.fetch_failed");
}

// === ID token and UserInfo attacks ===

#[test]
fn id_token_with_wrong_aud_is_refused() {
    refused_with(
        &world(),
        claim("aud", json!("https://another-rp.example.it")),
        "oidc.aud",
    );
}

#[test]
fn id_token_with_several_audiences_and_no_azp_is_refused() {
    let w = world();
    let client = w.provider.lock().unwrap().client_id.clone();
    refused_with(
        &w,
        claim("aud", json!([client, "https://another-rp.example.it"])),
        "oidc.aud",
    );
}

#[test]
fn id_token_with_wrong_nonce_is_refused() {
    refused_with(
        &world(),
        claim("nonce", json!("not-our-nonce")),
        "oidc.nonce",
    );
}

#[test]
fn id_token_with_wrong_iss_is_refused() {
    refused_with(
        &world(),
        claim("iss", json!("https://op.elsewhere.example.it")),
        "oidc.iss",
    );
}

#[test]
fn expired_id_token_is_refused() {
    refused_with(&world(), claim("exp", json!(now() - 3600)), "oidc.expired");
}

#[test]
fn id_token_without_at_hash_binding_is_refused() {
    refused_with(
        &world(),
        claim("at_hash", json!("AAAAAAAAAAAAAAAAAAAAAA")),
        "oidc.at_hash",
    );
}

#[test]
fn id_token_below_the_requested_level_is_refused() {
    refused_with(
        &world(),
        claim("acr", json!("https://www.spid.gov.it/SpidL1")),
        "broker_oidc_acr",
    );
}

fn unsigned(header: Value, claims: &Map<String, Value>, sig: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
        URL_SAFE_NO_PAD.encode(sig)
    )
}

#[test]
fn id_token_with_alg_none_is_refused() {
    let mode = Mode {
        id_token: Some(|c| unsigned(json!({"alg": "none", "kid": "x"}), c, b"")),
        ..Mode::default()
    };
    let (status, _, body) = login_with(&world(), mode);
    assert_eq!(status, 400);
    // An empty signature segment is malformed before `alg` matters; with one, `none`.
    assert!(
        body.contains("jose.malformed") || body.contains("jose.alg_none"),
        "{body}"
    );
    let mode = Mode {
        id_token: Some(|c| unsigned(json!({"alg": "none", "kid": "x"}), c, b"x")),
        ..Mode::default()
    };
    refused_with(&world(), mode, "jose.alg_none");
}

#[test]
fn id_token_hs256_with_the_public_key_as_secret_is_refused() {
    let mode = Mode {
        id_token: Some(|c| {
            // The classic confusion: HMAC keyed with the OP's public key bytes.
            let key = ring::hmac::Key::new(
                ring::hmac::HMAC_SHA256,
                b"{\"kty\":\"EC\",\"crv\":\"P-256\"}",
            );
            let h = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "kid": "k"}).to_string());
            let p = URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).unwrap());
            let sig = ring::hmac::sign(&key, format!("{h}.{p}").as_bytes());
            format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }),
        ..Mode::default()
    };
    refused_with(&world(), mode, "jose.alg_hmac");
}

#[test]
fn id_token_signed_by_another_key_is_refused() {
    let mode = Mode {
        id_token: Some(|c| signer_es256().sign("JWT", c, &SystemRandom::new()).unwrap()),
        ..Mode::default()
    };
    refused_with(&world(), mode, "jose.kid_unknown");
}

#[test]
fn oversized_id_token_is_refused() {
    refused_with(
        &world(),
        claim("pad", json!("x".repeat(20_000))),
        "jose.too_large",
    );
}

#[test]
fn deeply_nested_id_token_is_refused() {
    let mut deep = json!(1);
    for _ in 0..50 {
        deep = json!([deep]);
    }
    refused_with(&world(), claim("deep", deep), "jose.json_depth");
}

#[test]
fn userinfo_for_another_subject_is_refused() {
    let mut mode = Mode::default();
    mode.userinfo_claims
        .insert("sub".into(), json!("someone-else"));
    refused_with(&world(), mode, "oidc.sub_mismatch");
}

/// The reference SPID/CIE OP (spid-cie-oidc) signs UserInfo with `sub` and the claims only:
/// `iss` and `aud` are SHOULD there (OIDC Core 5.3.2), so their absence is accepted.
#[test]
fn userinfo_without_iss_and_aud_is_accepted() {
    let mut mode = Mode::default();
    mode.userinfo_claims.insert("iss".into(), Value::Null);
    mode.userinfo_claims.insert("aud".into(), Value::Null);
    let (status, head, body) = login_with(&world(), mode);
    assert_eq!(status, 303, "{head}\n{body}");
}

/// ... but when present they must be this OP and us.
#[test]
fn userinfo_naming_another_issuer_or_audience_is_refused() {
    for (k, v, code) in [
        ("iss", json!("https://op.elsewhere.example.it"), "oidc.iss"),
        ("aud", json!("https://rp.elsewhere.example.it"), "oidc.aud"),
    ] {
        let mut mode = Mode::default();
        mode.userinfo_claims.insert(k.into(), v);
        refused_with(&world(), mode, code);
    }
}

// === Response-level attacks ===

#[test]
fn replayed_code_and_state_are_refused() {
    let w = world();
    let (location, cookie) = start(&w);
    let q = authorize(&w, &location);
    let (status, _, _) = callback(&w, &q, &cookie);
    assert_eq!(status, 303);
    let (status, _, body) = callback(&w, &q, &cookie);
    assert_eq!(status, 400, "{body}");
    assert_eq!(code_of(&body), "broker_unknown_request");
    // The code reached the OP once.
    assert_eq!(w.provider.lock().unwrap().token_calls, 1);
}

#[test]
fn mix_up_response_naming_another_issuer_is_refused() {
    let w = world();
    let (location, cookie) = start(&w);
    let q = authorize(&w, &location);
    let q = q.replace(
        &form_urlencoded::byte_serialize(w.op.as_bytes()).collect::<String>(),
        "https%3A%2F%2Fother-op.example.it",
    );
    let (status, _, body) = callback(&w, &q, &cookie);
    assert_eq!(status, 400, "{body}");
    assert_eq!(code_of(&body), "broker_oidc_iss");
    // Nothing was sent to any token endpoint.
    assert_eq!(w.provider.lock().unwrap().token_calls, 0);
}

#[test]
fn cie_response_without_iss_is_refused() {
    let w = world_with(|_, _, _, _| {}, "", "cie");
    let (location, cookie) = start(&w);
    let q = authorize(&w, &location);
    let q: String = q
        .split('&')
        .filter(|p| !p.starts_with("iss="))
        .collect::<Vec<_>>()
        .join("&");
    let (status, _, body) = callback(&w, &q, &cookie);
    assert_eq!(status, 400, "{body}");
    assert_eq!(code_of(&body), "broker_oidc_iss");
}

#[test]
fn state_from_another_browser_is_refused() {
    let w = world();
    let (location, _cookie) = start(&w);
    let q = authorize(&w, &location);
    let (status, _, body) = callback(
        &w,
        &q,
        "__Host-varco_login=ffffffffffffffffffffffffffffffff",
    );
    assert_eq!(status, 403, "{body}");
    assert_eq!(code_of(&body), "broker_browser_mismatch");
    assert_eq!(w.provider.lock().unwrap().token_calls, 0);
}

#[test]
fn unsolicited_or_duplicated_parameters_are_refused() {
    let w = world();
    let (status, _, body) = callback(&w, "code=abc", "x=y");
    assert_eq!(status, 400);
    assert_eq!(code_of(&body), "broker_oidc_missing_state");
    let (status, _, body) = callback(&w, "code=a&state=b&state=c", "x=y");
    assert_eq!(status, 400);
    assert_eq!(code_of(&body), "broker_duplicate_field");
    let long = "a".repeat(9000);
    let (status, _, _) = callback(&w, &format!("state={long}"), "x=y");
    assert_eq!(status, 400);
    let _ = (&w.base, &w.fed);
}

// === Login page and configuration ===

#[test]
fn login_page_offers_the_oidc_providers() {
    let w = world();
    let (status, _, body) = w.rt.block_on(get(w.varco, "/login?level=2", None));
    assert_eq!(status, 200);
    assert!(
        body.contains("/oidc/login?op=test-op&amp;level=2&amp;return_to=%2F"),
        "{body}"
    );
    assert!(body.contains("Test OP"));
}

#[test]
fn check_config_reports_every_oidc_problem_offline() {
    let dir = std::env::temp_dir().join(format!("varco-oidc-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let jwks = dir.join("bad.jwks.json");
    std::fs::write(
        &jwks,
        r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"h"}]}"#,
    )
    .unwrap();
    let extra = format!(
        r#"
[oidc_rp]
federation_key_file = "{KEYS}/missing.pem"
signing_key_file = "{KEYS}/sp-rsa2048.crt.pem"
encryption_key_file = "{KEYS}/idp-p256.key.pk8.der"
userinfo_encrypted_response_enc = "A128GCM"
authority_hints = ["https://ta.example.it"]
organization_name = "Comune di Prova"
homepage_uri = "https://www.example.org"
policy_uri = "https://www.example.org/privacy"
logo_uri = "https://www.example.org/logo.svg"
contacts = ["protocollo@pec.example.org"]
spid_protocol = "smoke-signals"

[[oidc_rp.trust_anchor]]
entity_id = "http://ta.example.it"
jwks_file = "{}"

[[oidc_rp.op]]
name = "op one"
entity_id = "https://op.example.it"
federation = "eidas"
"#,
        jwks.display()
    );
    let problems = {
        let _one = FIXTURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match fixture::try_config_with("", &extra) {
            Ok(_) => panic!("accepted"),
            Err(p) => p,
        }
    };
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for want in [
        "oidc_rp.federation_key_file",
        "oidc_rp.signing_key_file",
        "oidc_rp.encryption_key_file",
        "oidc_rp.userinfo_encrypted_response_enc",
        "oidc_rp.spid_protocol",
        "oidc_rp.trust_anchor[0].entity_id",
        "oidc_rp.trust_anchor[0].jwks_file",
        "oidc_rp.op[0].federation",
    ] {
        assert!(keys.contains(&want), "{want} not reported: {problems:?}");
    }
}

/// `allow_http` (http federation entities) is for development deployments only: beside an
/// https public URL without `server.allow_plain_http` it is refused.
#[test]
fn allow_http_is_refused_outside_development() {
    let jwks = std::env::temp_dir().join(format!("varco-oidc-http-{}.json", std::process::id()));
    std::fs::write(&jwks, r#"{"keys":[]}"#).unwrap();
    let extra = format!(
        r#"
[oidc_rp]
federation_key_file = "{KEYS}/idp-rsa3072.key.pem"
signing_key_file = "{KEYS}/sp-rsa2048.key.pem"
encryption_key_file = "{KEYS}/idp-rsa2048.key.pk8.der"
authority_hints = ["http://127.0.0.1:9"]
organization_name = "Comune di Prova"
homepage_uri = "https://www.example.org"
policy_uri = "https://www.example.org/privacy"
logo_uri = "https://www.example.org/logo.svg"
contacts = ["protocollo@pec.example.org"]
allow_http = true

[[oidc_rp.trust_anchor]]
entity_id = "http://127.0.0.1:9"
jwks_file = "{}"
"#,
        jwks.display()
    );
    let problems = {
        let _one = FIXTURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match fixture::try_config_with("", &extra) {
            Ok(_) => panic!("accepted"),
            Err(p) => p,
        }
    };
    assert!(
        problems.iter().any(|p| p.key == "oidc_rp.allow_http"),
        "{problems:?}"
    );
}

#[test]
fn background_refresher_resolves_every_op_off_the_request_path() {
    let w = world();
    let rp = w.state.oidc.clone().unwrap();
    {
        let _in = w.rt.enter();
        broker::features::federation::resolve::OidcRp::spawn(&rp, broker::leaf::clock::system);
    }
    for _ in 0..250 {
        if rp.resolution_count() == 1 && rp.fetch_count() == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!((rp.resolution_count(), rp.fetch_count()), (1, 3));
    // A login then finds the chain cached: no fetch on the request path.
    start(&w);
    assert_eq!(rp.fetch_count(), 3);
    let text = w
        .state
        .metrics
        .render(&w.state.refresher, broker::leaf::clock::system());
    assert!(
        text.contains("varco_oidc_chain_resolutions_total{result=\"ok\"} 1"),
        "{text}"
    );
    assert!(text.contains("varco_oidc_federation_fetches_total{result=\"ok\"} 3"));
}

/// Re-signs `id`'s Entity Configuration with `change` applied to its claims.
fn resign(f: &mut Fed, id: &str, change: impl FnOnce(&mut Map<String, Value>)) {
    let mut c: Map<String, Value> = Jws::decode(
        &f.docs[&oidfed::configuration_url(id)],
        Typ::Exactly("entity-statement+jwt"),
        &Default::default(),
    )
    .unwrap()
    .claims_unverified()
    .clone();
    change(&mut c);
    let t = f.sign_as(id, Value::Object(c), "entity-statement+jwt");
    f.docs.insert(oidfed::configuration_url(id), t);
}

/// A federation whose anchor accredits itself for `TM_TYPE` and issued the OP a mark
/// (`exp` given or not).
fn accredited(f: &mut Fed, ta: &str, op: &str, with_exp: bool) {
    let mut claims =
        json!({"iss": ta, "sub": op, "iat": now() - 10, "trust_mark_type": TM_TYPE, "id": TM_TYPE});
    if with_exp {
        claims["exp"] = json!(now() + 3600);
    }
    let mark = f.sign_as(ta, claims, "trust-mark+jwt");
    resign(f, ta, |c| {
        c.insert("trust_mark_issuers".into(), json!({TM_TYPE: [ta]}));
    });
    resign(f, op, |c| {
        c.insert(
            "trust_marks".into(),
            json!([{"trust_mark_type": TM_TYPE, "id": TM_TYPE, "trust_mark": mark}]),
        );
    });
}

#[test]
fn required_trust_mark_from_an_accredited_issuer_is_accepted() {
    let required = format!("required_trust_marks = [\"{TM_TYPE}\"]");
    let w = world_with(
        |f, ta, op, _| accredited(f, ta, op, true),
        &required,
        "spid",
    );
    let (location, _) = start(&w);
    assert!(location.contains("request="));
    // Without `exp`: refused unless the anchor's table accepts such marks.
    let w = world_with(
        |f, ta, op, _| accredited(f, ta, op, false),
        &required,
        "spid",
    );
    login_refused_at_start(&w, "broker_oidc_trust_mark");
    let lenient = format!("{required}\naccept_trust_marks_without_exp = true");
    let w = world_with(
        |f, ta, op, _| accredited(f, ta, op, false),
        &lenient,
        "spid",
    );
    start(&w);
}

#[test]
fn protocol_choice_decides_which_logins_a_federation_offers() {
    // SPID over OIDC only: its SAML IdPs are not offered, its OPs are.
    let w = world_full(
        |_, _, _, _| {},
        "",
        "spid",
        "spid_protocol = \"oidc\"",
        None,
    );
    assert!(!w.state.config.saml_offered(saml::Federation::Spid));
    assert!(w.state.config.saml_offered(saml::Federation::Cie));
    start(&w);
    // SPID over SAML only: `/oidc/login` refuses its OPs, the page does not list them.
    let w = world_full(
        |_, _, _, _| {},
        "",
        "spid",
        "spid_protocol = \"saml\"",
        None,
    );
    let (status, _, body) = w.rt.block_on(get(w.varco, "/oidc/login?op=test-op", None));
    assert_eq!(status, 400);
    assert!(body.contains("non è tra quelli accettati"), "{body}");
    let (_, _, page) = w.rt.block_on(get(w.varco, "/login", None));
    assert!(!page.contains("/oidc/login"));
}

#[test]
fn a_saml_pending_login_is_not_answered_at_the_oidc_callback() {
    // The same browser, a pending SAML login under the key it names, even for an entity
    // that is also a configured OP: refused as unknown (4xx), never a 5xx.
    let w = world();
    let browser = "0123456789abcdef0123456789abcdef";
    w.rt.block_on(w.state.store.put_pending(
        "_saml-request-1".into(),
        broker::features::store::Pending {
            idp: w.op.clone(),
            level: saml::Level::L2,
            return_to: "/".into(),
            issued_at: broker::leaf::clock::system(),
            browser: browser.into(),
            request_xml: "<samlp:AuthnRequest ID=\"_saml-request-1\"/>".into(),
        },
    ))
    .unwrap();
    let q = format!(
        "code=x&state=_saml-request-1&iss={}",
        form_urlencoded::byte_serialize(w.op.as_bytes()).collect::<String>()
    );
    let (status, _, body) = callback(&w, &q, &format!("__Host-varco_login={browser}"));
    assert_eq!(status, 400, "{body}");
    assert_eq!(code_of(&body), "broker_unknown_request");
    assert_eq!(w.provider.lock().unwrap().token_calls, 0);
}

#[test]
fn a_forged_code_is_a_4xx_not_a_5xx() {
    // A login of the attacker's own browser, answered with a code the OP never issued: the
    // token endpoint refuses it, and so does Varco, with a 4xx.
    let w = world();
    let (location, cookie) = start(&w);
    let q = authorize(&w, &location).replace("code=code0", "code=forged");
    let (status, _, body) = callback(&w, &q, &cookie);
    assert_eq!(status, 400, "{body}");
    assert_eq!(code_of(&body), "broker_oidc_grant_refused");
}

#[test]
fn the_audit_record_holds_the_request_object_and_both_signed_answers() {
    let dir = std::env::temp_dir().join(format!("varco-oidc-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let w = world_full(|_, _, _, _| {}, "", "spid", "", Some(&dir));
    let (status, _, body) = login_with(&w, Mode::default());
    assert_eq!(status, 303, "{body}");
    let mut text = String::new();
    for f in std::fs::read_dir(&dir).unwrap() {
        text.push_str(&std::fs::read_to_string(f.unwrap().path()).unwrap_or_default());
    }
    let record: Value = text
        .lines()
        // version, index, time, previous hash, record, hash: tab-separated.
        .filter_map(|l| serde_json::from_str::<Value>(l.split('\t').nth(4)?).ok())
        .find(|r| r["outcome"] == "completed")
        .unwrap_or_else(|| panic!("no completed record in {text}"));
    assert_eq!(record["method"], "spid");
    assert_eq!(record["sub"], FISCAL);
    assert_eq!(record["name_id"], "pairwise-sub-1");
    let request = base64::engine::general_purpose::STANDARD
        .decode(record["request_b64"].as_str().unwrap())
        .unwrap();
    assert!(request.starts_with(b"ey"), "the request object");
    let response = record["response_b64"].as_str().unwrap();
    let (id_token, userinfo) = response.split_once('~').unwrap();
    // Both still verify with the OP's key: evidence, not a copy of claims.
    let keys = Jwks::from_keys(vec![w.provider.lock().unwrap().signer.jwk().clone()]).unwrap();
    for t in [id_token, userinfo] {
        Jws::decode(t, Typ::JwtOrAbsent, &Default::default())
            .unwrap()
            .verify(&keys)
            .unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ops_listed_by_the_anchor_are_offered_and_still_need_their_own_chain() {
    let w = world_with(
        |f, ta, op, jwks| {
            let op2 = format!("{op}2");
            let op3 = format!("{op}3");
            f.config(&op2, &[ta], op_metadata(&op2, jwks));
            f.statement(ta, &op2, None);
            // op3 is listed, but the anchor issued no statement about it: no chain.
            f.config(&op3, &[ta], op_metadata(&op3, jwks));
            resign(f, ta, |c| {
                c["metadata"]["federation_entity"]["federation_list_endpoint"] =
                    json!(format!("{ta}/list"));
            });
            f.docs.insert(
                format!("{ta}/list?entity_type=openid_provider"),
                json!([op2, op3]).to_string(),
            );
        },
        "list_ops = \"spid\"",
        "spid",
    );
    let rp = w.state.oidc.clone().unwrap();
    w.rt.block_on(rp.refresh_due(now()));
    let ops: Vec<String> = rp.ops().into_iter().map(|o| o.entity_id).collect();
    assert_eq!(
        ops,
        [w.op.clone(), format!("{}2", w.op), format!("{}3", w.op)]
    );
    let (_, _, page) = w.rt.block_on(get(w.varco, "/login", None));
    let op2_param =
        form_urlencoded::byte_serialize(format!("{}2", w.op).as_bytes()).collect::<String>();
    assert!(
        page.contains(&format!("/oidc/login?op={op2_param}")),
        "{page}"
    );
    let (status, head, _) = w.rt.block_on(get(
        w.varco,
        &format!("/oidc/login?op={op2_param}&return_to=/"),
        None,
    ));
    assert_eq!(status, 303);
    assert!(
        header(&head, "location")
            .unwrap()
            .starts_with(&format!("{}2/authorization?", w.op))
    );
    // Listed is not trusted: op3 has no chain to the anchor.
    let op3_param =
        form_urlencoded::byte_serialize(format!("{}3", w.op).as_bytes()).collect::<String>();
    let (status, _, _) = w.rt.block_on(get(
        w.varco,
        &format!("/oidc/login?op={op3_param}&return_to=/"),
        None,
    ));
    assert_eq!(status, 503);
}
