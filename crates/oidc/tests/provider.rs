//! The provider's rules, one named test per refusal the issue lists (docs/THREATS.md, "OpenID
//! Provider"): redirect URI mismatch, PKCE missing or wrong, each client-authentication
//! failure, an unregistered post-logout redirect URI, a level the client does not allow.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity::{Auth, Loa, Method, Principal, Profile};
use jose::{Jwks, Signer};
use oidc::authorize::{Current, SessionCheck, check_session};
use oidc::token::{Endpoint, Grant, JWT_BEARER, authenticate, check_pkce};
use oidc::{
    AuthMethod, AuthRequest, Client, ClientAuthFailure, Error, Params, Scope, Scopes, SecretHash,
    SubjectType,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use serde_json::{Map, Value, json};

const SECRET: &str = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t";
const ISSUER: &str = "https://varco.example";
const TOKEN: &str = "https://varco.example/oidc/token";
const NOW: u64 = 1_800_000_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn client(id: &str, method: AuthMethod) -> Client {
    Client {
        id: id.into(),
        auth_method: method,
        secret: matches!(method, AuthMethod::SecretBasic | AuthMethod::SecretPost)
            .then(|| SecretHash::of(SECRET.as_bytes())),
        jwks: None,
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        scopes: Scopes::all(),
        min_loa: Loa::Substantial,
        methods: vec![],
        require_pkce: false,
        backchannel_logout_uri: None,
        refresh_tokens: false,
        subject_type: SubjectType::Public,
    }
}

fn signer() -> Signer {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    Signer::es256_from_pkcs8(pkcs8.as_ref(), Some("k1"), &rng).unwrap()
}

struct Clients(Vec<Client>);

impl Clients {
    fn standard() -> (Clients, Signer) {
        let s = signer();
        let mut jwt = client("jwt", AuthMethod::PrivateKeyJwt);
        jwt.jwks = Some(Jwks::from_keys(vec![s.jwk().clone()]).unwrap());
        let mut public = client("app", AuthMethod::None);
        public.redirect_uris = vec!["http://127.0.0.1:9/cb".into()];
        (
            Clients(vec![
                client("basic", AuthMethod::SecretBasic),
                client("post", AuthMethod::SecretPost),
                jwt,
                public,
            ]),
            s,
        )
    }
    fn get(&self, id: &str) -> Option<&Client> {
        self.0.iter().find(|c| c.id == id)
    }
}

fn params(pairs: &[(&str, &str)]) -> Params {
    Params::new(pairs.iter().copied()).unwrap()
}

fn authorize(clients: &Clients, pairs: &[(&str, &str)]) -> Result<AuthRequest, oidc::Refusal> {
    AuthRequest::parse(&params(pairs), |id| clients.get(id)).map(|(r, _)| r)
}

fn base() -> Vec<(&'static str, &'static str)> {
    vec![
        ("response_type", "code"),
        ("client_id", "basic"),
        ("redirect_uri", "https://rp.example/cb"),
        ("scope", "openid profile"),
        ("state", "xyz"),
        ("nonce", "n-0S6_WzA2Mj"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
}

fn with(over: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<_> = base()
        .into_iter()
        .filter(|(k, _)| !over.iter().any(|(o, _)| o == k))
        .collect();
    v.extend(over.iter().filter(|(_, val)| !val.is_empty()).copied());
    v
}

#[test]
fn a_valid_request_is_accepted() {
    let (c, _) = Clients::standard();
    let r = authorize(&c, &base()).unwrap();
    assert_eq!(r.client_id, "basic");
    assert_eq!(r.state.as_deref(), Some("xyz"));
    assert_eq!(r.code_challenge.as_deref(), Some(CHALLENGE));
    assert!(r.scopes.contains(Scope::Profile));
    assert_eq!(r.min_loa, Loa::Substantial);
}

#[test]
fn redirect_uri_mismatch_is_shown_not_redirected() {
    let (c, _) = Clients::standard();
    for uri in [
        "https://rp.example/cb/",
        "https://rp.example/cb?x=1",
        "https://RP.example/cb",
        "https://rp.example/c",
        "https://evil.example/cb",
    ] {
        let e = authorize(&c, &with(&[("redirect_uri", uri)])).unwrap_err();
        assert_eq!(e.error, Error::RedirectUri, "{uri}");
        assert!(e.target.is_none(), "never redirect to {uri}");
        assert!(!e.error.redirectable());
    }
    let e = authorize(&c, &with(&[("redirect_uri", "")])).unwrap_err();
    assert!(e.target.is_none());
    let e = authorize(&c, &with(&[("client_id", "nobody")])).unwrap_err();
    assert_eq!(e.error, Error::UnknownClient);
    assert!(e.target.is_none());
}

#[test]
fn repeated_parameters_are_refused() {
    let e = Params::new([("scope", "openid"), ("scope", "openid")]).unwrap_err();
    assert_eq!(e, Error::Duplicate { name: "scope" });
    // An empty copy still counts.
    let e = Params::new([("state", ""), ("state", "x")]).unwrap_err();
    assert_eq!(e.code(), "oidc.duplicate_parameter");
    let many: Vec<(String, String)> = (0..40).map(|i| (format!("p{i}"), "v".into())).collect();
    assert_eq!(Params::new(many).unwrap_err(), Error::TooLarge);
}

#[test]
fn errors_after_the_redirect_uri_go_back_with_state() {
    let (c, _) = Clients::standard();
    let e = authorize(&c, &with(&[("response_type", "token")])).unwrap_err();
    assert_eq!(e.error.oauth(), "unsupported_response_type");
    let t = e.target.unwrap();
    assert_eq!(t.redirect_uri, "https://rp.example/cb");
    assert_eq!(t.state.as_deref(), Some("xyz"));
    for (over, code) in [
        (("scope", "profile"), "oidc.scope"),
        (("scope", "openid admin"), "oidc.scope"),
        (("response_mode", "fragment"), "oidc.response_mode"),
        (("request", "eyJ"), "oidc.request_object"),
        (("request_uri", "urn:x"), "oidc.request_object"),
        (("prompt", "none login"), "oidc.prompt"),
        (("prompt", "bogus"), "oidc.prompt"),
        (("max_age", "-1"), "oidc.invalid_parameter"),
        (("acr_values", "urn:unknown"), "oidc.acr_values"),
        (("nonce", "a b"), "oidc.invalid_parameter"),
    ] {
        let e = authorize(&c, &with(&[over])).unwrap_err();
        assert_eq!(e.error.code(), code, "{over:?}");
        assert!(e.target.is_some(), "{over:?}");
    }
    // A state that could not be echoed safely is refused, and not echoed.
    let e = authorize(&c, &with(&[("state", "a\r\nb")])).unwrap_err();
    assert_eq!(e.target.unwrap().state, None);
}

#[test]
fn pkce_missing_is_refused_for_public_clients() {
    let (c, _) = Clients::standard();
    let public = |over: &[(&'static str, &'static str)]| {
        let mut v = with(&[
            ("client_id", "app"),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ]);
        v.retain(|(k, _)| !over.iter().any(|(o, _)| o == k));
        v.extend(over.iter().filter(|(_, val)| !val.is_empty()).copied());
        authorize(&c, &v)
    };
    assert!(public(&[]).is_ok());
    let e = public(&[("code_challenge", ""), ("code_challenge_method", "")]).unwrap_err();
    assert_eq!(e.error, Error::PkceMissing);
    // A confidential client without `require_pkce` may omit PKCE.
    assert!(
        authorize(
            &c,
            &with(&[("code_challenge", ""), ("code_challenge_method", "")])
        )
        .is_ok()
    );
}

#[test]
fn pkce_plain_or_missing_method_is_refused() {
    let (c, _) = Clients::standard();
    for m in ["plain", "", "S512", "s256"] {
        let e = authorize(&c, &with(&[("code_challenge_method", m)])).unwrap_err();
        assert_eq!(e.error, Error::PkceMethod, "{m:?}");
    }
    let e = authorize(&c, &with(&[("code_challenge", "short")])).unwrap_err();
    assert_eq!(
        e.error,
        Error::Invalid {
            name: "code_challenge"
        }
    );
}

#[test]
fn pkce_wrong_verifier_is_refused() {
    // RFC 7636 Appendix B.
    assert_eq!(check_pkce(Some(CHALLENGE), Some(VERIFIER)), Ok(()));
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXl";
    assert_eq!(
        check_pkce(Some(CHALLENGE), Some(wrong)),
        Err(Error::PkceVerifier)
    );
    assert_eq!(check_pkce(Some(CHALLENGE), None), Err(Error::PkceVerifier));
    assert_eq!(
        check_pkce(Some(CHALLENGE), Some("short")),
        Err(Error::PkceVerifier)
    );
    // A verifier for a code issued without a challenge: a downgrade, refused.
    assert_eq!(check_pkce(None, Some(VERIFIER)), Err(Error::PkceVerifier));
    assert_eq!(check_pkce(None, None), Ok(()));
}

#[test]
fn acr_values_raise_the_level_never_lower_it() {
    let (c, _) = Clients::standard();
    let r = authorize(
        &c,
        &with(&[("acr_values", "http://eidas.europa.eu/LoA/high")]),
    )
    .unwrap();
    assert_eq!(r.min_loa, Loa::High);
    // Below the client's minimum: the client's minimum stands.
    let r = authorize(
        &c,
        &with(&[("acr_values", "https://www.spid.gov.it/SpidL1")]),
    )
    .unwrap();
    assert_eq!(r.min_loa, Loa::Substantial);
    // A preference list: the lowest named is enough.
    let r = authorize(
        &c,
        &with(&[(
            "acr_values",
            "http://eidas.europa.eu/LoA/high https://www.spid.gov.it/SpidL2",
        )]),
    )
    .unwrap();
    assert_eq!(r.min_loa, Loa::Substantial);
}

#[test]
fn loa_the_client_does_not_allow_steps_up_or_fails_with_prompt_none() {
    let (c, _) = Clients::standard();
    let r = authorize(
        &c,
        &with(&[("acr_values", "http://eidas.europa.eu/LoA/high")]),
    )
    .unwrap();
    assert_eq!(
        check_session(&r, cur(Loa::Substantial, NOW), None, NOW),
        Ok(SessionCheck::StepUp(Loa::High))
    );
    assert_eq!(
        check_session(&r, cur(Loa::High, NOW), None, NOW),
        Ok(SessionCheck::Issue)
    );
    let r = authorize(&c, &with(&[("prompt", "none")])).unwrap();
    assert_eq!(
        check_session(&r, cur(Loa::Low, NOW), None, NOW),
        Err(Error::LoginRequired)
    );
    assert_eq!(
        check_session(&r, None, None, NOW),
        Err(Error::LoginRequired)
    );
}

fn cur(loa: Loa, auth_time: u64) -> Option<Current> {
    Some(Current {
        loa,
        auth_time,
        started: auth_time,
    })
}

#[test]
fn prompt_login_and_max_age_force_a_new_login() {
    let (c, _) = Clients::standard();
    let r = authorize(&c, &with(&[("prompt", "login")])).unwrap();
    let s = cur(Loa::High, NOW - 10);
    assert_eq!(check_session(&r, s, None, NOW), Ok(SessionCheck::Login));
    // Logged in after the prompt started: that login is the fresh one.
    assert_eq!(
        check_session(&r, cur(Loa::High, NOW), Some(NOW - 5), NOW),
        Ok(SessionCheck::Issue)
    );
    assert_eq!(
        check_session(&r, s, Some(NOW - 5), NOW),
        Ok(SessionCheck::Login)
    );
    let r = authorize(&c, &with(&[("max_age", "60")])).unwrap();
    assert_eq!(
        check_session(&r, cur(Loa::High, NOW - 61), None, NOW),
        Ok(SessionCheck::Login)
    );
    assert_eq!(
        check_session(&r, cur(Loa::High, NOW - 60), None, NOW),
        Ok(SessionCheck::Issue)
    );
    // max_age=0 right after the login it asked for: the IdP's clock says a second ago, the
    // broker started the session after the request: issued, not sent round again.
    let r = authorize(&c, &with(&[("max_age", "0"), ("prompt", "login")])).unwrap();
    let after = Some(Current {
        loa: Loa::High,
        auth_time: NOW - 3,
        started: NOW - 1,
    });
    assert_eq!(
        check_session(&r, after, Some(NOW - 2), NOW),
        Ok(SessionCheck::Issue)
    );
    assert_eq!(
        check_session(&r, after, Some(NOW), NOW),
        Ok(SessionCheck::Login)
    );
}

fn endpoint() -> Endpoint<'static> {
    Endpoint {
        issuer: ISSUER,
        token_endpoint: TOKEN,
    }
}

fn auth(c: &Clients, pairs: &[(&str, &str)], basic: Option<(&str, &str)>) -> Result<String, Error> {
    authenticate(&params(pairs), basic, |id| c.get(id), endpoint(), NOW)
        .map(|a| a.client.id.clone())
}

fn failure(r: Result<String, Error>) -> ClientAuthFailure {
    match r {
        Err(Error::ClientAuth(f)) => f,
        other => panic!("expected a client-authentication failure, got {other:?}"),
    }
}

#[test]
fn client_secret_basic_and_post() {
    let (c, _) = Clients::standard();
    assert_eq!(auth(&c, &[], Some(("basic", SECRET))).unwrap(), "basic");
    assert_eq!(
        auth(
            &c,
            &[("client_id", "post"), ("client_secret", SECRET)],
            None
        )
        .unwrap(),
        "post"
    );
}

#[test]
fn client_auth_wrong_secret_is_refused() {
    let (c, _) = Clients::standard();
    let f = failure(auth(&c, &[], Some(("basic", "s3cr3t"))));
    assert_eq!(f, ClientAuthFailure::Secret);
    let f = failure(auth(
        &c,
        &[("client_id", "post"), ("client_secret", "x")],
        None,
    ));
    assert_eq!(f, ClientAuthFailure::Secret);
}

#[test]
fn client_auth_unknown_client_is_refused() {
    let (c, _) = Clients::standard();
    let f = failure(auth(&c, &[], Some(("nobody", SECRET))));
    assert_eq!(f, ClientAuthFailure::UnknownClient);
}

#[test]
fn client_auth_wrong_method_is_refused() {
    let (c, _) = Clients::standard();
    // A `client_secret_basic` client sending its secret in the body.
    let f = failure(auth(
        &c,
        &[("client_id", "basic"), ("client_secret", SECRET)],
        None,
    ));
    assert_eq!(f, ClientAuthFailure::WrongMethod);
    let f = failure(auth(&c, &[], Some(("post", SECRET))));
    assert_eq!(f, ClientAuthFailure::WrongMethod);
}

#[test]
fn client_auth_missing_or_multiple_is_refused() {
    let (c, _) = Clients::standard();
    let f = failure(auth(&c, &[("client_id", "basic")], None));
    assert_eq!(f, ClientAuthFailure::Missing);
    let f = failure(auth(
        &c,
        &[("client_secret", SECRET)],
        Some(("basic", SECRET)),
    ));
    assert_eq!(f, ClientAuthFailure::Multiple);
    let f = failure(auth(&c, &[("client_id", "post")], Some(("basic", SECRET))));
    assert_eq!(f, ClientAuthFailure::ClientIdMismatch);
    // A public client names itself, and has no secret to send.
    assert_eq!(auth(&c, &[("client_id", "app")], None).unwrap(), "app");
}

fn assertion(s: &Signer, claims: Value) -> String {
    let Value::Object(m) = claims else { panic!() };
    s.sign("JWT", &m, &SystemRandom::new()).unwrap()
}

fn jwt_claims() -> Map<String, Value> {
    let Value::Object(m) = json!({
        "iss": "jwt", "sub": "jwt", "aud": TOKEN, "jti": "j-1",
        "iat": NOW, "exp": NOW + 60,
    }) else {
        panic!()
    };
    m
}

fn jwt_auth(c: &Clients, token: &str) -> Result<String, Error> {
    auth(
        c,
        &[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", token),
        ],
        None,
    )
}

#[test]
fn private_key_jwt_is_verified_with_the_registered_keys() {
    let (c, s) = Clients::standard();
    let token = assertion(&s, Value::Object(jwt_claims()));
    let a = authenticate(
        &params(&[
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &token),
        ]),
        None,
        |id| c.get(id),
        endpoint(),
        NOW,
    )
    .unwrap();
    assert_eq!(a.client.id, "jwt");
    assert_eq!(a.assertion_jti, Some(("j-1".into(), NOW + 60)));
    // The issuer identifier is an accepted audience too.
    let mut m = jwt_claims();
    m.insert("aud".into(), json!([ISSUER]));
    assert!(jwt_auth(&c, &assertion(&s, Value::Object(m))).is_ok());
}

#[test]
fn private_key_jwt_failures_are_refused() {
    let (c, s) = Clients::standard();
    let other = signer();
    // Another key (same kid): the signature fails.
    let f = failure(jwt_auth(
        &c,
        &assertion(&other, Value::Object(jwt_claims())),
    ));
    assert_eq!(f, ClientAuthFailure::AssertionSignature);
    // Tampered payload.
    let good = assertion(&s, Value::Object(jwt_claims()));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut m = jwt_claims();
    m.insert("exp".into(), json!(NOW + 500));
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&m).unwrap());
    let f = failure(jwt_auth(&c, &parts.join(".")));
    assert_eq!(f, ClientAuthFailure::AssertionSignature);
    let cases: [(&str, Value, ClientAuthFailure); 7] = [
        ("iss", json!("basic"), ClientAuthFailure::AssertionClaims),
        (
            "aud",
            json!("https://other.example/token"),
            ClientAuthFailure::AssertionClaims,
        ),
        (
            "aud",
            json!([TOKEN, "https://other.example"]),
            ClientAuthFailure::AssertionClaims,
        ),
        ("exp", json!(NOW - 1), ClientAuthFailure::AssertionTime),
        ("exp", json!(NOW + 7200), ClientAuthFailure::AssertionTime),
        ("iat", json!(NOW + 3600), ClientAuthFailure::AssertionTime),
        ("jti", json!(""), ClientAuthFailure::AssertionReplay),
    ];
    for (name, value, want) in cases {
        let mut m = jwt_claims();
        m.insert(name.into(), value.clone());
        let f = failure(jwt_auth(&c, &assertion(&s, Value::Object(m))));
        assert_eq!(f, want, "{name}={value}");
    }
    let mut m = jwt_claims();
    m.remove("exp");
    assert_eq!(
        failure(jwt_auth(&c, &assertion(&s, Value::Object(m)))),
        ClientAuthFailure::AssertionTime
    );
    // A `sub` naming a secret client: its method is not private_key_jwt.
    let mut m = jwt_claims();
    m.insert("sub".into(), json!("basic"));
    m.insert("iss".into(), json!("basic"));
    assert_eq!(
        failure(jwt_auth(&c, &assertion(&s, Value::Object(m)))),
        ClientAuthFailure::WrongMethod
    );
    let f = failure(auth(
        &c,
        &[
            ("client_assertion_type", "urn:other"),
            ("client_assertion", &good),
        ],
        None,
    ));
    assert_eq!(f, ClientAuthFailure::AssertionType);
    let f = failure(jwt_auth(&c, "not.a.jws"));
    assert_eq!(f, ClientAuthFailure::AssertionSignature);
}

#[test]
fn grant_parsing() {
    let g = Grant::parse(&params(&[
        ("grant_type", "authorization_code"),
        ("code", "c"),
        ("redirect_uri", "https://rp.example/cb"),
    ]))
    .unwrap();
    assert!(matches!(
        g,
        Grant::Code {
            code_verifier: None,
            ..
        }
    ));
    assert_eq!(
        Grant::parse(&params(&[("grant_type", "password")])),
        Err(Error::GrantType)
    );
    assert_eq!(
        Grant::parse(&params(&[
            ("grant_type", "authorization_code"),
            ("code", "c")
        ])),
        Err(Error::Missing {
            name: "redirect_uri"
        })
    );
}

fn principal() -> Principal {
    Principal {
        sub: "TINIT-RSSMRA80A01H501U".into(),
        given_name: Some("Mario".into()),
        family_name: Some("Rossi".into()),
        birthdate: Some("1980-01-01".into()),
        email: Some("mario@example.org".into()),
        phone_number: None,
        address: None,
        legal_person: None,
        profile: Profile::Citizen,
        auth: Auth {
            method: Method::Spid,
            idp: "https://idp.example".into(),
            level: identity::SPID_L2.into(),
            loa: Loa::Substantial,
            auth_time: NOW - 5,
            sid: "sid-1".into(),
        },
    }
}

#[test]
fn claims_follow_the_scopes_and_pairwise_sub_differs_per_sector() {
    let (c, _) = Clients::standard();
    let basic = c.get("basic").unwrap();
    let p = principal();
    let only_openid = Scopes::parse_list("openid").unwrap();
    let u = oidc::claims::userinfo(basic, &p, only_openid);
    assert_eq!(u.len(), 1);
    assert_eq!(u["sub"], "TINIT-RSSMRA80A01H501U");
    let u = oidc::claims::userinfo(basic, &p, Scopes::parse_list("openid profile").unwrap());
    assert_eq!(u["name"], "Mario Rossi");
    assert!(!u.contains_key("email"));
    let mut a = basic.clone();
    a.subject_type = SubjectType::Pairwise {
        sector: "a".into(),
        salt: b"salt".to_vec(),
    };
    let mut b = a.clone();
    b.subject_type = SubjectType::Pairwise {
        sector: "b".into(),
        salt: b"salt".to_vec(),
    };
    let (sa, sb) = (oidc::claims::subject(&a, &p), oidc::claims::subject(&b, &p));
    assert_ne!(sa, sb);
    assert!(!sa.contains("RSSMRA"));
    let id = oidc::claims::id_token(
        &a,
        &p,
        &oidc::claims::IdTokenParams {
            issuer: ISSUER,
            nonce: Some("n"),
            sid: "sid-1",
            at_hash: None,
            now: NOW,
            ttl: 300,
        },
    );
    assert_eq!(id["sub"], sa.as_str());
    assert_eq!(id["acr"], "http://eidas.europa.eu/LoA/substantial");
    assert_eq!(id["amr"], json!(["spid"]));
    assert_eq!(id["nonce"], "n");
    assert_ne!(
        id["sid"], "sid-1",
        "the broker's own session id never leaves"
    );
}

#[test]
fn unregistered_post_logout_redirect_uri_is_refused() {
    let (c, _) = Clients::standard();
    let lookup = |id: &str| c.get(id);
    let no_hint = |_: &str| None;
    let ok = oidc::logout::end_session(
        &params(&[
            ("client_id", "basic"),
            ("post_logout_redirect_uri", "https://rp.example/bye"),
            ("state", "s"),
        ]),
        lookup,
        no_hint,
    )
    .unwrap();
    assert_eq!(
        ok.post_logout_redirect_uri.as_deref(),
        Some("https://rp.example/bye")
    );
    for uri in ["https://rp.example/bye/", "https://evil.example/bye"] {
        let e = oidc::logout::end_session(
            &params(&[("client_id", "basic"), ("post_logout_redirect_uri", uri)]),
            lookup,
            no_hint,
        )
        .unwrap_err();
        assert_eq!(e, Error::PostLogoutRedirectUri, "{uri}");
    }
    // Without a client, no redirect at all.
    let e = oidc::logout::end_session(
        &params(&[("post_logout_redirect_uri", "https://rp.example/bye")]),
        lookup,
        no_hint,
    )
    .unwrap_err();
    assert_eq!(e, Error::PostLogoutRedirectUri);
    // A hint that does not verify.
    let e = oidc::logout::end_session(&params(&[("id_token_hint", "x.y.z")]), lookup, no_hint)
        .unwrap_err();
    assert_eq!(e, Error::IdTokenHint);
    // A hint for another client than `client_id`.
    let e = oidc::logout::end_session(
        &params(&[("id_token_hint", "h"), ("client_id", "basic")]),
        lookup,
        |_| Some("post".into()),
    )
    .unwrap_err();
    assert_eq!(e, Error::IdTokenHint);
}

#[test]
fn discovery_names_only_what_is_supported() {
    let d = oidc::discovery::document(ISSUER, "ES256");
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(d["token_endpoint"], TOKEN);
    assert_eq!(d["response_types_supported"], json!(["code"]));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(
        d["authorization_response_iss_parameter_supported"],
        json!(true)
    );
}

#[test]
fn secret_hash_compares_digests() {
    let h = SecretHash::of(b"abc");
    assert!(h.matches(b"abc"));
    assert!(!h.matches(b"abd"));
    assert!(!h.matches(b""));
    assert_eq!(format!("{h:?}"), "SecretHash(..)");
}

/// An ES256 assertion with no `kid` in its header (as Authlib sends it).
fn assertion_without_kid(pair: &EcdsaKeyPair, claims: &Map<String, Value>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap());
    let input = format!("{header}.{payload}");
    let sig = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

#[test]
fn private_key_jwt_without_kid_needs_exactly_one_fitting_key() {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let s = Signer::es256_from_pkcs8(pkcs8.as_ref(), Some("k1"), &rng).unwrap();
    let (mut c, _) = Clients::standard();
    let jwt = c.0.iter_mut().find(|x| x.id == "jwt").unwrap();
    jwt.jwks = Some(Jwks::from_keys(vec![s.jwk().clone()]).unwrap());
    let token = assertion_without_kid(&pair, &jwt_claims());
    assert_eq!(jwt_auth(&c, &token).unwrap(), "jwt");
    // Two keys that could both have signed it: ambiguous, refused.
    let other = signer();
    let jwt = c.0.iter_mut().find(|x| x.id == "jwt").unwrap();
    jwt.jwks = Some(
        Jwks::from_keys(vec![s.jwk().clone(), {
            let v = other.jwk().to_value();
            let mut v = v.as_object().unwrap().clone();
            v.insert("kid".into(), json!("k2"));
            jose::Jwk::from_value_standalone(&Value::Object(v)).unwrap()
        }])
        .unwrap(),
    );
    assert_eq!(
        failure(jwt_auth(&c, &token)),
        ClientAuthFailure::AssertionSignature
    );
}

/// The acting identity of `principal()` for the elder Luigi Verdi, as the broker builds it:
/// from a source's answer, through `represent::act`.
fn acting() -> identity::represent::Acting {
    use identity::represent::Source as _;
    use identity::represent::answer::{Answer, AnswerInput, AnswerLimits};
    let delegate = principal();
    let body = json!({"representations": [{
        "ref": "D-1", "type": "delegation", "delegate": delegate.sub,
        "represented": {"person": {"fiscal_code": "VRDLGU60M01L219V",
                                   "given_name": "Luigi", "family_name": "Verdi"}},
        "services": ["tributi"], "not_before": NOW - 10, "not_after": NOW + 1000,
    }]})
    .to_string();
    let reps = Answer::http("portale", AnswerLimits::default())
        .verify(
            AnswerInput::Body {
                delegate: &delegate.sub,
                bytes: body.as_bytes(),
            },
            NOW,
        )
        .unwrap();
    identity::represent::act(&delegate, "D-1", "tributi", NOW, &reps).unwrap()
}

#[test]
fn acting_claims_follow_the_clients_subject_type() {
    let (c, _) = Clients::standard();
    let public = c.get("basic").unwrap();
    let a = acting();
    let mut m =
        oidc::claims::userinfo(public, a.principal(), Scopes::parse_list("openid").unwrap());
    oidc::claims::add_acting(public, &a, &mut m);
    assert_eq!(m["sub"], "TINIT-VRDLGU60M01L219V");
    assert_eq!(m["act"]["sub"], "TINIT-RSSMRA80A01H501U");
    assert_eq!(m["act"]["method"], "spid");
    assert_eq!(m["act"]["loa"], "substantial");
    assert_eq!(m["representation"]["type"], "delegation");
    assert_eq!(m["representation"]["ref"], "D-1");
    assert_eq!(m["representation"]["source"], "portale");

    // Pairwise: neither person's public identifier reaches the client.
    let mut pw = public.clone();
    pw.subject_type = SubjectType::Pairwise {
        sector: "a".into(),
        salt: b"salt".to_vec(),
    };
    let mut m = oidc::claims::userinfo(&pw, a.principal(), Scopes::parse_list("openid").unwrap());
    oidc::claims::add_acting(&pw, &a, &mut m);
    assert_eq!(m["sub"], oidc::claims::subject(&pw, a.principal()));
    assert_eq!(m["act"]["sub"], oidc::claims::subject(&pw, &principal()));
    let text = Value::Object(m).to_string();
    assert!(!text.contains("VRDLGU60M01L219V"), "{text}");
    assert!(!text.contains("RSSMRA80A01H501U"), "{text}");
}
