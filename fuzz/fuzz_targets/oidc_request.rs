//! The OpenID Provider's request checks (crate `oidc`), as the broker calls them: the input
//! is split like a query string or form body (`&`, then the first `=`, `form_urlencoded`
//! decoding) into pairs, which go through `Params::new`, then the authorization request
//! (against a fixed registry of one confidential, one public and one `private_key_jwt`
//! client whose private key no longer exists), the token request and client authentication,
//! and the end-session request. Never a panic; and a client assertion must **never**
//! authenticate the `private_key_jwt` client (its key has no private half anywhere).

#![no_main]

use std::sync::LazyLock;

use identity::Loa;
use jose::Jwks;
use libfuzzer_sys::fuzz_target;
use oidc::token::{Endpoint, Grant, authenticate};
use oidc::{AuthMethod, AuthRequest, Client, Params, Scopes, SecretHash, SubjectType};

/// A P-256 public key whose private key no longer exists (the one `sdjwt_presentation` uses).
const KEYLESS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "kid": "portal-1",
  "x": "9E9dUG2Ex01W1Q7CZl8Zagf_UyiEjXOkMBN_E2IumR8",
  "y": "7l7MmblmaHBQGdjIi6IXRH-nmzvZDymSQpKaPz3mFko"}]}"#;
const NOW: u64 = 1_780_000_000;

fn client(id: &str, m: AuthMethod) -> Client {
    Client {
        id: id.into(),
        auth_method: m,
        secret: Some(SecretHash::of(b"fuzz-secret-fuzz-secret-fuzz-secret")),
        jwks: Some(Jwks::from_json(KEYLESS.as_bytes()).expect("keys")),
        redirect_uris: vec!["https://rp.example/cb".into()],
        post_logout_redirect_uris: vec!["https://rp.example/bye".into()],
        scopes: Scopes::all(),
        min_loa: Loa::Substantial,
        methods: vec![],
        require_pkce: true,
        backchannel_logout_uri: None,
        refresh_tokens: true,
        subject_type: SubjectType::Public,
    }
}

static CLIENTS: LazyLock<Vec<Client>> = LazyLock::new(|| {
    vec![
        client("rp", AuthMethod::SecretBasic),
        client("app", AuthMethod::None),
        client("jwt", AuthMethod::PrivateKeyJwt),
    ]
});

fn lookup(id: &str) -> Option<&'static Client> {
    CLIENTS.iter().find(|c| c.id == id)
}

fuzz_target!(|data: &[u8]| {
    let pairs: Vec<(String, String)> = data
        .split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = match p.iter().position(|&b| b == b'=') {
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, &p[..0]),
            };
            let dec = |b: &[u8]| {
                form_urlencoded::parse(&[b"x=", b].concat())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            (dec(k), dec(v))
        })
        .collect();
    let Ok(params) = Params::new(pairs) else {
        return;
    };
    let _ = AuthRequest::parse(&params, lookup);
    let _ = Grant::parse(&params);
    let endpoint = Endpoint {
        issuer: "https://varco.example",
        token_endpoint: "https://varco.example/oidc/token",
    };
    if let Ok(a) = authenticate(&params, None, lookup, endpoint, NOW) {
        assert_ne!(
            a.client.id, "jwt",
            "an assertion verified with a keyless key"
        );
    }
    let _ = oidc::logout::end_session(&params, lookup, |_| None);
});
