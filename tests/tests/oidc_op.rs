//! Varco as an OpenID Provider (issue 22), end to end with a real relying party: Authlib
//! (PyPI, `scripts/authlib-venv.sh`) discovers the provider, builds the authorization request
//! (PKCE S256, state, nonce), exchanges the code with each client-authentication method,
//! validates the ID token against the JWKS, calls UserInfo, and validates the Back-Channel
//! Logout token Varco POSTs when the session ends. The browser part (login at the demo IdP)
//! is driven here. Named negative tests: a replayed code revokes what it issued, PKCE
//! missing or wrong, a nonce mismatch, each client-authentication failure at the endpoint, an
//! unregistered `post_logout_redirect_uri`, a level below the client's minimum.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use base64::Engine as _;
use e2e::stack::{Stack, idp_answer_from, pct, post_to_acs};
use e2e::{Browser, Reply, free_port, scratch};

const SECRET: &str = "authlib-secret-0123456789abcdefghijklmnop";
const USER: &str = "mario.rossi";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("py/oidc_authlib.py")
}

fn py(args: &[&str]) -> String {
    String::from_utf8(testkit::python::run("authlib", &script(), args, None))
        .unwrap()
        .trim()
        .to_owned()
}

/// A receiver of back-channel logout POSTs: each body arrives on the channel.
fn backchannel_receiver() -> (String, Receiver<String>) {
    // Bound here and kept: the port is ours from the start, with no window for another.
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (format!("http://127.0.0.1:{port}/backchannel"), rx)
}

struct Op {
    stack: Stack,
    dir: PathBuf,
    redirect: String,
    backchannel: Receiver<String>,
}

/// Percent-decodes a query value (test side; `+` is a space).
fn unpct(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

fn query_param(url: &str, name: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| unpct(v))
}

fn start(extra_clients: &str) -> Op {
    start_with_redirect(|_, _| extra_clients.to_owned())
}

/// A token request to `base` (a replica) with HTTP Basic client authentication.
fn token_at(base: &str, basic: (&str, &str), form: &[(&str, &str)]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let v = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", basic.0, basic.1));
    let mut r = agent
        .post(&format!("{base}/oidc/token"))
        .header("Authorization", &format!("Basic {v}"))
        .send_form(form.iter().copied())
        .unwrap();
    Reply {
        status: r.status().as_u16(),
        headers: vec![],
        body: r.body_mut().read_to_string().unwrap(),
    }
}

/// The stack with further clients, written from the redirect URI and the secret file path.
fn start_with_redirect(extra: impl Fn(&str, &str) -> String) -> Op {
    let dir = scratch("oidc-op");
    std::fs::write(dir.join("secret"), SECRET).unwrap();
    let redirect = format!("http://127.0.0.1:{}/cb", free_port());
    let (bc, backchannel) = backchannel_receiver();
    let secret = dir.join("secret");
    let extra_clients = extra(&redirect, &secret.display().to_string());
    let stack = Stack::start_with(&format!(
        "[oidc]\n\
         [[oidc.client]]\nid = \"authlib\"\nsecret_file = \"{secret}\"\n\
         redirect_uris = [\"{redirect}\"]\n\
         post_logout_redirect_uris = [\"http://127.0.0.1:9/bye\"]\n\
         backchannel_logout_uri = \"{bc}\"\n\
         [[oidc.client]]\nid = \"authlib-post\"\nsecret_file = \"{secret}\"\n\
         token_endpoint_auth_method = \"client_secret_post\"\n\
         redirect_uris = [\"{redirect}\"]\n\
         [[oidc.client]]\nid = \"high-only\"\nsecret_file = \"{secret}\"\nmin_loa = \"high\"\n\
         redirect_uris = [\"{redirect}\"]\n\
         {extra_clients}",
        secret = secret.display(),
    ));
    Op {
        stack,
        dir,
        redirect,
        backchannel,
    }
}

impl Op {
    fn issuer(&self) -> &str {
        &self.stack.varco
    }

    fn statefile(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// Authlib's authorization URL for `client`.
    fn authorize_url(&self, client: &str, statefile: &str) -> String {
        py(&["start", self.issuer(), client, &self.redirect, statefile])
    }

    /// Authlib's authorization URL for `client` with `scope`.
    fn authorize_url_scope(&self, client: &str, statefile: &str, scope: &str) -> String {
        py(&[
            "start",
            self.issuer(),
            client,
            &self.redirect,
            statefile,
            scope,
        ])
    }

    /// The browser from the authorization URL through the demo IdP back to the client's
    /// redirect URI: the callback URL carrying the code.
    fn browse(&self, b: &mut Browser, url: &str, level: &str) -> String {
        let first = b.get(url);
        if first.status == 302
            && first
                .header("location")
                .is_some_and(|l| l.starts_with(&self.redirect))
        {
            return first.header("location").unwrap().to_owned();
        }
        assert_eq!(first.status, 302, "{}", first.body);
        let login = first.header("location").unwrap().to_owned();
        let return_to = query_param(&login, "return_to").expect("return_to");
        assert!(
            return_to.starts_with("/oidc/authorize?resume="),
            "{return_to}"
        );
        let answer = idp_answer_from(
            b,
            &self.stack.login_url(level.parse().unwrap(), &return_to),
            &[("user", USER), ("level", level)],
        );
        let acs = post_to_acs(b, &answer);
        assert_eq!(acs.status, 303, "{}", acs.body);
        assert_eq!(acs.header("location"), Some(return_to.as_str()));
        let back = b.get(&format!("{}{return_to}", self.stack.varco));
        assert_eq!(back.status, 302, "{}", back.body);
        back.header("location").unwrap().to_owned()
    }

    fn finish(
        &self,
        client: &str,
        auth: &str,
        statefile: &str,
        callback: &str,
    ) -> serde_json::Value {
        self.finish_with(client, auth, SECRET, statefile, callback)
    }

    fn finish_with(
        &self,
        client: &str,
        auth: &str,
        secret: &str,
        statefile: &str,
        callback: &str,
    ) -> serde_json::Value {
        let out = py(&[
            "finish",
            self.issuer(),
            client,
            auth,
            secret,
            &self.redirect,
            statefile,
            callback,
        ]);
        serde_json::from_str(&out).unwrap()
    }

    fn token(&self, basic: Option<(&str, &str)>, form: &[(&str, &str)]) -> Reply {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.post(&format!("{}/oidc/token", self.stack.varco));
        if let Some((id, secret)) = basic {
            let v = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
            req = req.header("Authorization", &format!("Basic {v}"));
        }
        let mut r = req.send_form(form.iter().copied()).unwrap();
        Reply {
            status: r.status().as_u16(),
            headers: vec![],
            body: r.body_mut().read_to_string().unwrap(),
        }
    }

    fn userinfo(&self, access_token: &str) -> u16 {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        agent
            .get(&format!("{}/oidc/userinfo", self.stack.varco))
            .header("Authorization", &format!("Bearer {access_token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    }
}

#[test]
fn authlib_logs_in_calls_userinfo_and_verifies_the_backchannel_logout_token() {
    let op = start("");
    let sf = op.statefile("s1");
    let url = op.authorize_url("authlib", &sf);
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "2");
    let got = op.finish("authlib", "client_secret_basic", &sf, &callback);
    assert_eq!(got["userinfo"]["sub"], "TINIT-RSSMRA80A01H501U", "{got}");
    assert_eq!(got["userinfo"]["given_name"], "Mario", "{got}");
    assert_eq!(
        got["id_token"]["acr"],
        "http://eidas.europa.eu/LoA/substantial"
    );
    assert_eq!(got["id_token"]["amr"], serde_json::json!(["spid"]));
    let sid = got["id_token"]["sid"].as_str().unwrap().to_owned();

    // A second client in the same session: no new login, a code at once.
    let sf2 = op.statefile("s2");
    let url = op.authorize_url("authlib-post", &sf2);
    let callback = op.browse(&mut b, &url, "2");
    let got2 = op.finish("authlib-post", "client_secret_post", &sf2, &callback);
    assert_eq!(got2["userinfo"]["sub"], "TINIT-RSSMRA80A01H501U");

    // Logout at Varco: the session ends, its tokens die, the client hears of it.
    let out = b.get(&format!("{}/logout", op.stack.varco));
    assert!(matches!(out.status, 200 | 302 | 303), "{}", out.body);
    let body = op
        .backchannel
        .recv_timeout(Duration::from_secs(30))
        .expect("a back-channel logout POST");
    let token = query_param(&format!("?{body}"), "logout_token").expect("logout_token");
    let claims = py(&["logout", op.issuer(), "authlib", &token, &sid]);
    assert!(claims.contains("backchannel-logout"), "{claims}");
    assert_eq!(op.userinfo(got["access_token"].as_str().unwrap()), 401);
    assert_eq!(op.userinfo(got2["access_token"].as_str().unwrap()), 401);
}

#[test]
fn a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it() {
    let op = start("");
    let sf = op.statefile("s");
    let url = op.authorize_url("authlib", &sf);
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "2");
    let got = op.finish("authlib", "client_secret_basic", &sf, &callback);
    let access = got["access_token"].as_str().unwrap();
    assert_eq!(op.userinfo(access), 200);
    // The issue of tokens is an audit record, with digests and never a usable token.
    let audit: String = std::fs::read_dir(op.stack.dir.join("audit"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
        .collect();
    assert!(audit.contains("oidc_tokens_issued"), "{audit}");
    assert!(audit.contains("\"client_id\":\"authlib\""), "{audit}");
    assert!(
        !audit.contains(access),
        "no access token in the audit trail"
    );
    let code = query_param(&callback, "code").unwrap();
    let verifier: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sf).unwrap()).unwrap();
    let again = op.token(
        Some(("authlib", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &op.redirect),
            ("code_verifier", verifier["verifier"].as_str().unwrap()),
        ],
    );
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("invalid_grant"), "{}", again.body);
    assert_eq!(
        op.userinfo(access),
        401,
        "the first exchange's token is revoked"
    );
    assert!(op.stack.varco_log().contains("oidc.code_replayed"));
}

/// A fresh code for `client` (PKCE with Authlib's verifier), and the verifier.
fn fresh_code(op: &Op, b: &mut Browser, client: &str, name: &str) -> (String, String) {
    let sf = op.statefile(name);
    let url = op.authorize_url(client, &sf);
    let callback = op.browse(b, &url, "2");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sf).unwrap()).unwrap();
    (
        query_param(&callback, "code").unwrap(),
        saved["verifier"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn pkce_missing_or_wrong_at_the_token_endpoint_is_refused() {
    let op = start("");
    let mut b = Browser::default();
    for (i, verifier) in [None, Some("x".repeat(43))].into_iter().enumerate() {
        let (code, _) = fresh_code(&op, &mut b, "authlib", &format!("p{i}"));
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", op.redirect.as_str()),
        ];
        if let Some(v) = &verifier {
            form.push(("code_verifier", v));
        }
        let r = op.token(Some(("authlib", SECRET)), &form);
        assert_eq!(r.status, 400, "{}", r.body);
        assert!(
            r.body.contains("invalid_grant") && r.body.contains("code_verifier"),
            "{}",
            r.body
        );
    }
    // And at the authorization endpoint: `plain` is refused back to the client.
    let url = format!(
        "{}/oidc/authorize?response_type=code&client_id=authlib&redirect_uri={}&scope=openid&state=s&code_challenge=abc&code_challenge_method=plain",
        op.stack.varco,
        pct(&op.redirect)
    );
    let r = b.get(&url);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(&op.redirect) && loc.contains("error=invalid_request"),
        "{loc}"
    );
    assert!(
        loc.contains("oidc.pkce_method") && loc.contains("state=s"),
        "{loc}"
    );
}

#[test]
fn redirect_uri_mismatch_is_shown_never_redirected() {
    let op = start("");
    let mut b = Browser::default();
    let url = format!(
        "{}/oidc/authorize?response_type=code&client_id=authlib&redirect_uri={}&scope=openid&state=s",
        op.stack.varco,
        pct("http://127.0.0.1:9/evil")
    );
    let r = b.get(&url);
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.header("location").is_none());
    assert!(r.body.contains("oidc.redirect_uri"), "{}", r.body);
    // At the token endpoint: a code bound to another redirect URI.
    let (code, verifier) = fresh_code(&op, &mut b, "authlib", "r");
    let r = op.token(
        Some(("authlib", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:9/evil"),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("invalid_grant"), "{}", r.body);
}

#[test]
fn each_client_authentication_failure_is_refused_at_the_token_endpoint() {
    let op = start("");
    let mut b = Browser::default();
    type Case<'a> = (
        &'a str,
        Option<(&'a str, &'a str)>,
        Vec<(&'a str, &'a str)>,
        &'a str,
    );
    let cases: [Case<'_>; 5] = [
        (
            "wrong secret",
            Some(("authlib", "wrong-secret")),
            vec![],
            "oidc.client_secret",
        ),
        (
            "unknown client",
            Some(("nobody", SECRET)),
            vec![],
            "oidc.client_unknown",
        ),
        (
            "no credentials",
            None,
            vec![("client_id", "authlib")],
            "oidc.client_auth_missing",
        ),
        (
            "wrong method",
            None,
            vec![("client_id", "authlib"), ("client_secret", SECRET)],
            "oidc.client_auth_method",
        ),
        (
            "two methods",
            Some(("authlib", SECRET)),
            vec![("client_secret", SECRET)],
            "oidc.client_auth_multiple",
        ),
    ];
    for (i, (what, basic, extra, code_want)) in cases.into_iter().enumerate() {
        let (code, verifier) = fresh_code(&op, &mut b, "authlib", &format!("c{i}"));
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", op.redirect.as_str()),
            ("code_verifier", verifier.as_str()),
        ];
        form.extend(extra);
        let r = op.token(basic, &form);
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(r.body.contains("invalid_client"), "{what}: {}", r.body);
        assert!(r.body.contains(code_want), "{what}: {}", r.body);
    }
}

#[test]
fn a_nonce_mismatch_is_caught_by_the_client() {
    let op = start("");
    let mut b = Browser::default();
    let sf = op.statefile("n");
    let url = op.authorize_url("authlib", &sf);
    let callback = op.browse(&mut b, &url, "2");
    // The client remembers another nonce than the one it sent: Authlib must refuse the ID
    // token Varco signed with the sent one.
    let mut saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sf).unwrap()).unwrap();
    saved["nonce"] = "another-nonce".into();
    std::fs::write(&sf, saved.to_string()).unwrap();
    let out = std::process::Command::new(testkit::python::python("authlib"))
        .arg(script())
        .args([
            "finish",
            op.issuer(),
            "authlib",
            "client_secret_basic",
            SECRET,
            &op.redirect,
            &sf,
            &callback,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonce"), "{err}");
}

#[test]
fn a_level_below_the_client_minimum_steps_up_and_prompt_none_fails() {
    let op = start("");
    let mut b = Browser::default();
    // Logged in at SPID level 2 for the first client.
    let (_, _) = fresh_code(&op, &mut b, "authlib", "l");
    // `high-only` needs level 3: the same session is sent to step up at the IdP, never
    // given a code.
    let sf = op.statefile("h");
    let url = op.authorize_url("high-only", &sf);
    let r = b.get(&url);
    assert_eq!(r.status, 302, "{}", r.body);
    let loc = r.header("location").unwrap();
    assert!(
        loc.contains("/saml/login?") && loc.contains("level=3"),
        "{loc}"
    );
    // With prompt=none: login_required back to the client.
    let r = b.get(&format!("{url}&prompt=none"));
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(&op.redirect) && loc.contains("error=login_required"),
        "{loc}"
    );
    // acr_values asking for high on a substantial client: the same step-up.
    let sf = op.statefile("a");
    let url = op.authorize_url("authlib", &sf);
    let r = b.get(&format!(
        "{url}&acr_values={}",
        pct("http://eidas.europa.eu/LoA/high")
    ));
    let loc = r.header("location").unwrap();
    assert!(
        loc.contains("level=3") && !loc.starts_with(&op.redirect),
        "{loc}"
    );
}

#[test]
fn unregistered_post_logout_redirect_uri_is_refused() {
    let op = start("");
    let mut b = Browser::default();
    let (code, verifier) = fresh_code(&op, &mut b, "authlib", "e");
    let r = op.token(
        Some(("authlib", SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", &op.redirect),
            ("code_verifier", &verifier),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let tokens: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();
    let end = |uri: &str| {
        format!(
            "{}/oidc/end_session?id_token_hint={id_token}&post_logout_redirect_uri={}&state=st",
            op.stack.varco,
            pct(uri)
        )
    };
    let r = b.get(&end("https://evil.example/bye"));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("oidc.post_logout_redirect_uri"),
        "{}",
        r.body
    );
    assert_eq!(
        op.userinfo(tokens["access_token"].as_str().unwrap()),
        200,
        "nothing ended"
    );
    // The registered one: the session ends and the browser goes back with `state`.
    let r = b.get(&end("http://127.0.0.1:9/bye"));
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("http://127.0.0.1:9/bye?state=st")
    );
    assert_eq!(op.userinfo(tokens["access_token"].as_str().unwrap()), 401);
    assert_eq!(op.stack.whoami(&mut b).status, 401);
}

#[test]
fn authlib_private_key_jwt_client_and_assertion_replay() {
    let keys = scratch("oidc-jwt-key");
    let keyfile = keys.join("client.jwk").display().to_string();
    let jwks = py(&["keygen", &keyfile]);
    let op = start_with_redirect(|redirect, _| {
        format!(
            "[[oidc.client]]\nid = \"authlib-jwt\"\ntoken_endpoint_auth_method = \"private_key_jwt\"\n\
             jwks = '{jwks}'\nredirect_uris = [\"{redirect}\"]\n"
        )
    });
    let sf = op.statefile("j");
    let url = op.authorize_url("authlib-jwt", &sf);
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "2");
    let got = op.finish_with("authlib-jwt", "private_key_jwt", &keyfile, &sf, &callback);
    assert_eq!(got["userinfo"]["sub"], "TINIT-RSSMRA80A01H501U", "{got}");
    // One assertion, two token requests: the second is refused by its `jti`.
    let endpoint = format!("{}/oidc/token", op.stack.varco);
    let assertion = py(&["assertion", &keyfile, "authlib-jwt", &endpoint]);
    let mut answers = Vec::new();
    for name in ["j1", "j2"] {
        let (code, verifier) = fresh_code(&op, &mut b, "authlib-jwt", name);
        answers.push(op.token(
            None,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &op.redirect),
                ("code_verifier", &verifier),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        ));
    }
    assert_eq!(answers[0].status, 200, "{}", answers[0].body);
    assert_eq!(answers[1].status, 401, "{}", answers[1].body);
    assert!(
        answers[1].body.contains("oidc.client_assertion_replay"),
        "{}",
        answers[1].body
    );
}

#[test]
fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let op = start_with_redirect(|redirect, secret| {
        format!(
            "[[oidc.client]]\nid = \"authlib-offline\"\nsecret_file = \"{secret}\"\n\
             refresh_tokens = true\nredirect_uris = [\"{redirect}\"]\n"
        )
    });
    let sf = op.statefile("o");
    let url = op.authorize_url_scope("authlib-offline", &sf, "openid offline_access");
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "2");
    let got = op.finish("authlib-offline", "client_secret_basic", &sf, &callback);
    let first = got["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    let out = py(&["refresh", op.issuer(), "authlib-offline", SECRET, &first]);
    let rotated: serde_json::Value = serde_json::from_str(&out).unwrap();
    let second = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    let access = rotated["access_token"].as_str().unwrap();
    assert_eq!(op.userinfo(access), 200);
    // The first one again: someone holds a copy. Refused, and the whole family with it.
    let r = op.token(
        Some(("authlib-offline", SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(op.userinfo(access), 401);
    let r = op.token(
        Some(("authlib-offline", SECRET)),
        &[("grant_type", "refresh_token"), ("refresh_token", &second)],
    );
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn a_code_is_one_time_across_replicas_sharing_redis() {
    let redis = testkit::Redis::start("oidc-op");
    let op = start(&format!(
        "[store]\nbackend = \"redis\"\nurl = \"redis+unix://{}\"\nkey_prefix = \"oidc:\"\n",
        redis.socket().display()
    ));
    // Replica B: the same file (keys, clients, Redis), another port and audit chain.
    let a_port: u16 = op.stack.varco.rsplit(':').next().unwrap().parse().unwrap();
    let b_port = free_port();
    let text = std::fs::read_to_string(op.stack.dir.join("varco.toml")).unwrap();
    let text = text.replace(
        &format!("listen = \"127.0.0.1:{a_port}\""),
        &format!("listen = \"127.0.0.1:{b_port}\""),
    );
    let a_management = op.stack.management.trim_start_matches("http://");
    let text = text.replace(
        &format!("management_listen = \"{a_management}\""),
        &format!("management_listen = \"127.0.0.1:{}\"", free_port()),
    );
    let text = format!("{text}\n[audit]\ndir = \"audit-b\"\n");
    std::fs::write(op.stack.dir.join("varco-b.toml"), text).unwrap();
    let mut b_proc = e2e::Process::start(
        "varco-b",
        &e2e::binary("varco"),
        &[
            "serve",
            "--config",
            op.stack.dir.join("varco-b.toml").to_str().unwrap(),
        ],
        &op.stack.dir,
    );
    let replica_b = format!("http://127.0.0.1:{b_port}");
    b_proc.wait_ready(&format!("{replica_b}/healthz"));

    // The code comes from replica A, is exchanged at B, and replayed at A.
    let mut b = Browser::default();
    let (code, verifier) = fresh_code(&op, &mut b, "authlib", "x");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", op.redirect.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let first = token_at(&replica_b, ("authlib", SECRET), &form);
    assert_eq!(first.status, 200, "{}", first.body);
    let tokens: serde_json::Value = serde_json::from_str(&first.body).unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(op.userinfo(access), 200, "a token from B works at A");
    let again = token_at(&op.stack.varco, ("authlib", SECRET), &form);
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(
        op.userinfo(access),
        401,
        "the replay at A revoked what B issued"
    );
}

/// Runs the openid-client relying party (`tests/oidc-node/client.mjs`); its stdout.
fn node(args: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let deps = std::process::Command::new(root.join("../scripts/oidc-node-deps.sh"))
        .status()
        .expect("scripts/oidc-node-deps.sh");
    assert!(deps.success(), "scripts/oidc-node-deps.sh failed");
    let out = std::process::Command::new("node")
        .arg(root.join("oidc-node/client.mjs"))
        .args(args)
        .output()
        .expect("node");
    assert!(
        out.status.success(),
        "client.mjs {} failed:\n{}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

#[test]
fn openid_client_logs_in_calls_userinfo_and_verifies_the_backchannel_logout_token() {
    let op = start("");
    let sf = op.statefile("node");
    let url = node(&["start", op.issuer(), "authlib", SECRET, &op.redirect, &sf]);
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "3");
    let out = node(&["finish", op.issuer(), "authlib", SECRET, &sf, &callback]);
    let got: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(got["userinfo"]["sub"], "TINIT-RSSMRA80A01H501U", "{got}");
    assert_eq!(got["userinfo"]["family_name"], "Rossi", "{got}");
    assert_eq!(got["id_token"]["acr"], "http://eidas.europa.eu/LoA/high");
    let sid = got["id_token"]["sid"].as_str().unwrap().to_owned();
    let out = b.get(&format!("{}/logout", op.stack.varco));
    assert!(matches!(out.status, 200 | 302 | 303), "{}", out.body);
    let body = op
        .backchannel
        .recv_timeout(Duration::from_secs(30))
        .expect("a back-channel logout POST");
    let token = query_param(&format!("?{body}"), "logout_token").expect("logout_token");
    let claims = node(&["logout", op.issuer(), "authlib", &token, &sid]);
    assert!(claims.contains("backchannel-logout"), "{claims}");
    // A token for another client is refused by the same checks.
    let out = std::process::Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("oidc-node/client.mjs"))
        .args(["logout", op.issuer(), "authlib-post", &token, &sid])
        .output()
        .unwrap();
    assert!(!out.status.success(), "aud is checked");
}

#[test]
fn a_step_up_replaces_the_session_and_the_client_of_the_old_one_is_told() {
    let op = start("");
    let sf = op.statefile("u1");
    let url = op.authorize_url("authlib", &sf);
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "2");
    let got = op.finish("authlib", "client_secret_basic", &sf, &callback);
    let old_sid = got["id_token"]["sid"].as_str().unwrap().to_owned();
    // `high-only` needs level 3: the browser steps up at the same IdP, which replaces the
    // level 2 session; `authlib` held tokens from it and gets a logout token.
    let sf = op.statefile("u2");
    let url = op.authorize_url("high-only", &sf);
    let r = b.get(&url);
    let step_up = r.header("location").unwrap().to_owned();
    assert!(step_up.contains("level=3"), "{step_up}");
    let answer = idp_answer_from(&mut b, &step_up, &[("user", USER), ("level", "3")]);
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let body = op
        .backchannel
        .recv_timeout(Duration::from_secs(30))
        .expect("a back-channel logout POST");
    let token = query_param(&format!("?{body}"), "logout_token").unwrap();
    py(&["logout", op.issuer(), "authlib", &token, &old_sid]);
    assert_eq!(op.userinfo(got["access_token"].as_str().unwrap()), 401);
    // And the stepped-up session gets its code.
    let back = b.get(&format!(
        "{}{}",
        op.stack.varco,
        acs.header("location").unwrap()
    ));
    assert_eq!(back.status, 302);
    let callback = back.header("location").unwrap();
    assert!(
        callback.starts_with(&op.redirect) && callback.contains("code="),
        "{callback}"
    );
    let got = op.finish("high-only", "client_secret_basic", &sf, callback);
    assert_eq!(got["id_token"]["acr"], "http://eidas.europa.eu/LoA/high");
}

#[test]
fn prompt_login_sends_a_signed_in_browser_to_log_in_again_once() {
    let op = start("");
    let mut b = Browser::default();
    let (_, _) = fresh_code(&op, &mut b, "authlib", "pl1");
    let sf = op.statefile("pl2");
    let url = format!("{}&prompt=login", op.authorize_url("authlib", &sf));
    let r = b.get(&url);
    assert_eq!(r.status, 302, "{}", r.body);
    let again = r.header("location").unwrap().to_owned();
    assert!(
        again.contains("/saml/login?"),
        "a new login, not a code: {again}"
    );
    let answer = idp_answer_from(&mut b, &again, &[("user", USER), ("level", "2")]);
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let back = b.get(&format!(
        "{}{}",
        op.stack.varco,
        acs.header("location").unwrap()
    ));
    assert_eq!(back.status, 302);
    let callback = back.header("location").unwrap();
    assert!(
        callback.starts_with(&op.redirect) && callback.contains("code="),
        "{callback}"
    );
    op.finish("authlib", "client_secret_basic", &sf, callback);
}

#[test]
fn a_client_added_or_removed_on_reload_is_served_or_refused_at_once() {
    let mut op = start("");
    let unknown = |op: &Op| {
        let mut b = Browser::default();
        let r = b.get(&format!(
            "{}/oidc/authorize?response_type=code&client_id=late&redirect_uri={}&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            op.stack.varco,
            pct(&op.redirect)
        ));
        r.status == 400 && r.body.contains("oidc.unknown_client")
    };
    assert!(unknown(&op));
    let path = op.stack.dir.join("varco.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let added = format!(
        "{text}\n[[oidc.client]]\nid = \"late\"\nsecret_file = \"{}\"\nredirect_uris = [\"{}\"]\n",
        op.dir.join("secret").display(),
        op.redirect
    );
    // Write-then-rename, as editors and ConfigMap updates do.
    std::fs::write(op.stack.dir.join("varco.toml.new"), &added).unwrap();
    std::fs::rename(op.stack.dir.join("varco.toml.new"), &path).unwrap();
    op.stack.varco_process().hangup();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while unknown(&op) {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            op.stack.varco_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Logged in through the new client; then the client goes away: its token stops working.
    let sf = op.statefile("late");
    let url = op.authorize_url("late", &sf);
    let mut b = Browser::default();
    let callback = op.browse(&mut b, &url, "2");
    let got = op.finish("late", "client_secret_basic", &sf, &callback);
    let access = got["access_token"].as_str().unwrap().to_owned();
    std::fs::write(op.stack.dir.join("varco.toml.new"), &text).unwrap();
    std::fs::rename(op.stack.dir.join("varco.toml.new"), &path).unwrap();
    op.stack.varco_process().hangup();
    while !unknown(&op) {
        assert!(std::time::Instant::now() < deadline + Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(op.userinfo(&access), 401);
}

#[test]
fn a_stock_django_app_with_mozilla_django_oidc_logs_in() {
    let python = testkit::python::python("django-oidc");
    let manage = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/django_rp/manage.py");
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/oidc/callback/");
    let op = start_with_redirect(|_, secret| {
        format!(
            "[[oidc.client]]\nid = \"django\"\nsecret_file = \"{secret}\"\n\
             token_endpoint_auth_method = \"client_secret_post\"\nredirect_uris = [\"{callback}\"]\n"
        )
    });
    let rp = op.dir.join("rp.json");
    std::fs::write(
        &rp,
        serde_json::json!({
            "issuer": op.issuer(),
            "client_id": "django",
            "client_secret": SECRET,
            "db": op.dir.join("rp.sqlite3"),
        })
        .to_string(),
    )
    .unwrap();
    let (manage, rp) = (manage.to_str().unwrap(), rp.to_str().unwrap());
    let migrate = std::process::Command::new(&python)
        .args([manage, rp, "migrate", "--noinput", "-v", "0"])
        .output()
        .unwrap();
    assert!(
        migrate.status.success(),
        "{}",
        String::from_utf8_lossy(&migrate.stderr)
    );
    let listen = format!("127.0.0.1:{port}");
    let mut server = e2e::Process::start(
        "django",
        &python,
        &[manage, rp, "runserver", &listen, "--noreload"],
        &op.dir,
    );
    server.wait_ready(&format!("http://{listen}/healthz"));
    let mut b = Browser::default();
    let start = b.get(&format!("http://{listen}/oidc/authenticate/?next=/me"));
    assert_eq!(start.status, 302, "{}", start.body);
    let authorize = start.header("location").unwrap().to_owned();
    assert!(
        authorize.starts_with(&format!("{}/oidc/authorize?", op.issuer())),
        "{authorize}"
    );
    let back = {
        let first = b.get(&authorize);
        assert_eq!(first.status, 302, "{}", first.body);
        let login = first.header("location").unwrap().to_owned();
        let return_to = query_param(&login, "return_to").unwrap();
        let answer = idp_answer_from(
            &mut b,
            &op.stack.login_url(2, &return_to),
            &[("user", USER), ("level", "2")],
        );
        let acs = post_to_acs(&mut b, &answer);
        let r = b.get(&format!(
            "{}{}",
            op.stack.varco,
            acs.header("location").unwrap()
        ));
        r.header("location").unwrap().to_owned()
    };
    assert!(back.starts_with(&callback), "{back}");
    let done = b.get(&back);
    assert_eq!(done.status, 302, "{}\n{}", done.body, server.log());
    assert_eq!(done.header("location"), Some("/me"), "{}", server.log());
    let me = b.get(&format!("http://{listen}/me"));
    assert_eq!(me.status, 200, "{}\n{}", me.body, server.log());
    assert!(me.body.contains("mario.rossi@example.org"), "{}", me.body);
}

#[test]
fn the_authorization_endpoint_takes_post_too() {
    let op = start("");
    let mut b = Browser::default();
    let (_, _) = fresh_code(&op, &mut b, "authlib", "g");
    let r = b.post_form(
        &format!("{}/oidc/authorize", op.stack.varco),
        &[
            ("response_type", "code"),
            ("client_id", "authlib"),
            ("redirect_uri", &op.redirect),
            ("scope", "openid"),
            ("state", "p"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    );
    assert_eq!(r.status, 302, "{}", r.body);
    let loc = r.header("location").unwrap();
    assert!(
        loc.starts_with(&op.redirect) && loc.contains("code=") && loc.contains("state=p"),
        "{loc}"
    );
}

#[test]
fn a_login_method_the_client_does_not_accept_is_denied() {
    let op = start_with_redirect(|redirect, secret| {
        format!(
            "[[oidc.client]]\nid = \"cie-only\"\nsecret_file = \"{secret}\"\nmethods = [\"cie\"]\n\
             redirect_uris = [\"{redirect}\"]\n"
        )
    });
    let mut b = Browser::default();
    // A SPID session, then a client that accepts CIE only.
    let (_, _) = fresh_code(&op, &mut b, "authlib", "m1");
    let url = op.authorize_url("cie-only", &op.statefile("m2"));
    let r = b.get(&url);
    let loc = r.header("location").unwrap();
    assert!(loc.starts_with(&op.redirect), "{loc}");
    assert!(
        loc.contains("error=access_denied") && loc.contains("oidc.method_not_allowed"),
        "{loc}"
    );
    assert!(!loc.contains("code="), "{loc}");
}

#[test]
fn a_request_too_long_to_travel_sealed_waits_in_the_store() {
    let op = start("");
    let state = "s".repeat(500);
    let nonce = "n".repeat(500);
    let url = format!(
        "{}/oidc/authorize?response_type=code&client_id=authlib&redirect_uri={}&scope=openid&state={state}&nonce={nonce}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        op.stack.varco,
        pct(&op.redirect)
    );
    let mut b = Browser::default();
    let first = b.get(&url);
    let login = first.header("location").unwrap().to_owned();
    let return_to = query_param(&login, "return_to").unwrap();
    let id = return_to.strip_prefix("/oidc/authorize?resume=").unwrap();
    assert_eq!(
        id.len(),
        32,
        "a store key, not the sealed request: {return_to}"
    );
    let callback = op.browse(&mut b, &url, "2");
    assert!(callback.contains(&format!("state={state}")), "{callback}");
    // A short request travels sealed (nothing stored before the login).
    let first = Browser::default().get(&op.authorize_url("authlib", &op.statefile("short")));
    let return_to = query_param(first.header("location").unwrap(), "return_to").unwrap();
    assert!(return_to.len() > 100, "{return_to}");
}
