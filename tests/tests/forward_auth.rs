//! Forward-auth (`GET /auth`, as nginx `auth_request` and Traefik ForwardAuth call it) and
//! the downstream token over HTTP against the built binaries: anonymous → 401/302 with the
//! login URL; after login → 200 with the identity headers and a bearer token that an
//! independent JOSE implementation (PyJWT with `cryptography`, from a local venv) verifies
//! against Varco's JWKS; a route needing a higher level → step-up login at the same IdP;
//! a route for another method → 403; forwarding headers believed only from trusted proxies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::stack::{Stack, idp_answer_from, pct, post_to_acs};
use e2e::{Browser, Reply, scratch};

/// Token keys generated with the real `openssl`: an active P-256 key and a published
/// Ed25519 key (in the JWKS, not signing yet).
fn token_keys() -> (PathBuf, PathBuf) {
    let dir = scratch("token-keys");
    let es = dir.join("es256.pem");
    let ed = dir.join("ed25519.pem");
    for (args, out) in [
        (
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ][..],
            &es,
        ),
        (&["genpkey", "-algorithm", "ed25519"][..], &ed),
    ] {
        let st = Command::new("openssl")
            .args(args)
            .arg("-out")
            .arg(out)
            .status()
            .expect("openssl");
        assert!(st.success());
    }
    (es, ed)
}

const ROUTES: &str = "\
[[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\naudience = \"portal\"\n\
[[route]]\npath_prefix = \"/tax\"\nmin_loa = \"high\"\naudience = \"tax-office\"\n\
[[route]]\npath_prefix = \"/cie-only\"\nmethods = [\"cie\"]\n";

fn stack(trusted: &str) -> Stack {
    let (es, ed) = token_keys();
    Stack::start_with(&format!(
        "[token]\nissuer = \"https://varco.test\"\nttl_seconds = 120\n\
         [[token.key]]\nkid = \"es-1\"\nfile = \"{}\"\n\
         [[token.key]]\nkid = \"ed-next\"\nfile = \"{}\"\nstate = \"published\"\n\
         [forward_auth]\ntrusted_proxies = [{trusted}]\nallowed_hosts = [\"127.0.0.1\"]\n{ROUTES}",
        es.display(),
        ed.display()
    ))
}

/// `/auth` as nginx calls it for a request to `uri` on the portal.
fn auth(stack: &Stack, b: &mut Browser, uri: &str) -> Reply {
    b.get_with(
        &format!("{}/auth", stack.varco),
        &[
            ("X-Original-URI", uri),
            ("X-Forwarded-Host", "127.0.0.1"),
            ("X-Forwarded-Proto", "http"),
        ],
    )
}

/// Logs `user` in at `level` through the SPID demo IdP.
fn login(stack: &Stack, b: &mut Browser, url: &str, user: &str, level: &str) {
    let answer = idp_answer_from(b, url, &[("user", user), ("level", level)]);
    let acs = post_to_acs(b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let _ = stack;
}

fn pyjwt() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pyjwt-venv.sh");
    let out = Command::new("bash").arg(script).output().expect("bash");
    assert!(
        out.status.success(),
        "pyjwt-venv.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

const VERIFY: &str = r#"
import json, sys, jwt
jwks, token, aud, iss = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
kid = jwt.get_unverified_header(token)["kid"]
keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(jwks).keys}
claims = jwt.decode(token, key=keys[kid], algorithms=["ES256", "EdDSA"], audience=aud,
                    issuer=iss, options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]})
print(json.dumps(claims))
"#;

/// Verifies `token` with PyJWT against `jwks`; the claims, or PyJWT's complaint.
fn verify(python: &Path, jwks: &str, token: &str, aud: &str) -> Result<serde_json::Value, String> {
    let out = Command::new(python)
        .args(["-c", VERIFY, jwks, token, aud, "https://varco.test"])
        .output()
        .expect("python");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn anonymous_requests_get_the_login_url() {
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    let r = auth(&stack, &mut b, "/account?x=1");
    assert_eq!(r.status, 401, "{}", r.body);
    let login = r.header("x-varco-login").unwrap();
    assert_eq!(
        login,
        format!(
            "{}/login?level=2&return_to={}",
            stack.varco, "http%3A%2F%2F127.0.0.1%2Faccount%3Fx%3D1"
        )
    );
    // Traefik: the same answer as a redirect.
    let r = b.get_with(
        &format!("{}/auth?mode=redirect", stack.varco),
        &[
            ("X-Forwarded-Uri", "/tax/f24"),
            ("X-Forwarded-Host", "127.0.0.1"),
        ],
    );
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().contains("level=3"), "{r:?}");
    // The login page carries level and return address on to every IdP link.
    let page = b.get(login);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains("level=2&amp;return_to=http%3A%2F%2F127.0.0.1%2Faccount")
    );
    assert!(
        !page.body.contains("level=1&amp;"),
        "a level-2 route offers no L1 link"
    );
    // A return address off the allowed hosts is refused by the login page itself.
    let evil = b.get(&format!(
        "{}/login?return_to={}",
        stack.varco,
        pct("https://evil.example/")
    ));
    assert_eq!(evil.status, 400);
}

#[test]
fn session_passes_with_headers_and_a_token_pyjwt_verifies() {
    let python = pyjwt();
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");

    let r = auth(&stack, &mut b, "/account");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-varco-sub"), Some("TINIT-RSSMRA80A01H501U"));
    assert_eq!(r.header("x-varco-loa"), Some("substantial"));
    assert_eq!(r.header("x-varco-method"), Some("spid"));
    assert_eq!(r.header("x-varco-profile"), Some("citizen"));
    assert_eq!(r.header("x-varco-idp"), Some(stack.idp.as_str()));
    assert_eq!(r.header("x-varco-given-name"), Some("Mario"));
    let bearer = r.header("authorization").unwrap().to_owned();
    let token = bearer.strip_prefix("Bearer ").unwrap();

    // Cached per session and audience: the next check returns the same token.
    let again = auth(&stack, &mut b, "/other");
    assert_eq!(again.header("authorization"), Some(bearer.as_str()));

    let jwks = b.get(&format!("{}/.well-known/jwks.json", stack.varco));
    assert_eq!(jwks.status, 200);
    let set: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
    let kids: Vec<&str> = set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        ["es-1", "ed-next"],
        "published key announced before it signs"
    );

    let claims = verify(&python, &jwks.body, token, "portal").unwrap();
    assert_eq!(claims["sub"], "TINIT-RSSMRA80A01H501U");
    assert_eq!(claims["aud"], "portal");
    assert_eq!(claims["auth"]["loa"], "substantial");
    assert_eq!(claims["auth"]["method"], "spid");
    assert_eq!(claims["profile"], "citizen");

    // PyJWT refuses the same token for another audience, and a token whose claims were
    // altered (the LoA raised) after signing.
    assert!(verify(&python, &jwks.body, token, "tax-office").is_err());
    let parts: Vec<&str> = token.split('.').collect();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap();
    let forged = payload.replace("\"substantial\"", "\"high\"");
    assert_ne!(forged, payload);
    let forged = format!("{}.{}.{}", parts[0], b64.encode(forged), parts[2]);
    let err = verify(&python, &jwks.body, &forged, "portal").unwrap_err();
    assert!(err.contains("Signature verification failed"), "{err}");
}

#[test]
fn too_low_a_level_gets_a_step_up_not_a_dead_end() {
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let r = auth(&stack, &mut b, "/tax/f24");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("step_up"));
    let step_up = r.header("x-varco-login").unwrap().to_owned();
    assert!(
        step_up.starts_with(&format!(
            "{}/saml/login?idp={}&level=3&",
            stack.varco,
            pct(&stack.idp)
        )),
        "{step_up}"
    );
    // Following it: the same person authenticates again at L3 and comes back to the page.
    let answer = idp_answer_from(&mut b, &step_up, &[("user", "mario.rossi"), ("level", "3")]);
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    assert_eq!(acs.header("location"), Some("http://127.0.0.1/tax/f24"));
    let r = auth(&stack, &mut b, "/tax/f24");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-varco-loa"), Some("high"));
}

#[test]
fn a_route_for_another_method_is_forbidden() {
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let r = auth(&stack, &mut b, "/cie-only/x");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.header("x-varco-reason"),
        Some("identity.method_not_allowed")
    );
    assert!(r.header("x-varco-sub").is_none() && r.header("authorization").is_none());
}

#[test]
fn issue18_forwarding_headers_from_an_untrusted_peer_are_refused() {
    // Only 10.0.0.0/8 is trusted (nginx in a container connecting from elsewhere, say): the
    // check used to be made silently for `/`, putting `/tax` under `/`'s policy. Now it is a
    // 403, counted and logged, with or without forwarding headers.
    let stack = stack("\"10.0.0.0/8\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let nginx_shaped = auth(&stack, &mut b, "/tax/f24");
    let traefik_shaped = b.get_with(
        &format!("{}/auth?mode=redirect", stack.varco),
        &[
            ("X-Forwarded-Uri", "/tax/f24"),
            ("X-Forwarded-Host", "127.0.0.1"),
            ("X-Forwarded-Proto", "http"),
        ],
    );
    let bare = b.get(&format!("{}/auth", stack.varco));
    for r in [&nginx_shaped, &traefik_shaped, &bare] {
        assert_eq!(r.status, 403, "{r:?}");
        assert_eq!(r.header("x-varco-reason"), Some("broker_untrusted_proxy"));
        assert!(r.header("x-varco-sub").is_none() && r.header("x-varco-login").is_none());
    }
    let log = stack.varco_log();
    assert!(
        log.contains("auth_untrusted_peer") && log.contains("127.0.0.1"),
        "{log}"
    );
    // The metric, read from loopback (allowed by the default `[metrics] allow`).
    let scrape = b.get(&format!("{}/metrics", stack.management));
    assert!(
        scrape
            .body
            .contains("varco_access_decisions_total{outcome=\"broker_untrusted_proxy\"} 3"),
        "{}",
        scrape.body
    );
}

#[test]
fn a_trusted_proxy_that_names_no_original_uri_is_refused() {
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let r = b.get_with(
        &format!("{}/auth", stack.varco),
        &[("X-Forwarded-Host", "127.0.0.1")],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.header("x-varco-reason"),
        Some("broker_missing_original_uri")
    );
}

#[test]
fn a_forged_cookie_sharing_a_cached_cookies_tail_is_refused() {
    // The forward-auth path caches opened sessions by the cookie's tail (it covers the AEAD
    // tag). A cookie with the same tail and any other change must not hit that entry.
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    assert_eq!(auth(&stack, &mut b, "/account").status, 200);
    let genuine = b.cookies["varco_session"].clone();
    let mut forged = genuine.clone().into_bytes();
    forged[20] = if forged[20] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    assert_eq!(forged[forged.len() - 32..], genuine[genuine.len() - 32..]);
    b.cookies.insert("varco_session".into(), forged);
    let r = auth(&stack, &mut b, "/account");
    assert_eq!(r.status, 401, "{r:?}");
    assert!(r.header("x-varco-sub").is_none());
    b.cookies.insert("varco_session".into(), genuine);
    assert_eq!(auth(&stack, &mut b, "/account").status, 200);
}

#[test]
fn logout_ends_the_session_and_a_copied_cookie_with_it() {
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    assert_eq!(auth(&stack, &mut b, "/account").status, 200);
    let copy = b.cookies["varco_session"].clone();

    // The demo IdP publishes a SingleLogoutService: the logout goes there and back.
    let hops = e2e::stack::follow(&mut b, &format!("{}/logout", stack.varco));
    let out = &hops[0];
    assert_eq!(out.status, 302, "{}", out.body);
    let last = hops.last().unwrap();
    assert_eq!(last.status, 200, "{}", last.body);
    assert!(last.body.contains("Sei uscito") && last.body.contains("Signed out"));
    let cleared = out.headers.iter().any(|(k, v)| {
        k == "set-cookie" && v.starts_with("varco_session=;") && v.contains("Max-Age=0")
    });
    assert!(cleared, "{:?}", out.headers);
    assert_eq!(auth(&stack, &mut b, "/account").status, 401);

    // Someone who copied the cookie before the logout gets nothing either.
    let mut thief = Browser::default();
    thief.cookies.insert("varco_session".into(), copy);
    assert_eq!(auth(&stack, &mut thief, "/account").status, 401);
    assert_eq!(stack.whoami(&mut thief).status, 401);

    // Logging out again, or without a session, is harmless; return_to is checked.
    let again = b.get(&format!("{}/logout?return_to=%2Fbye", stack.varco));
    assert_eq!(again.status, 303);
    assert_eq!(again.header("location"), Some("/bye"));
    let evil = b.get(&format!(
        "{}/logout?return_to={}",
        stack.varco,
        pct("https://evil.example/")
    ));
    assert_eq!(evil.status, 200, "an unknown host is not followed");
}

#[test]
fn non_canonical_or_ambiguous_original_urls_are_refused() {
    // Upstreams decode `%72`, resolve `..`, strip `;`: a path Varco would match to a weaker
    // route than the resource served must not be checked at all.
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    assert_eq!(auth(&stack, &mut b, "/account").status, 200);
    for path in [
        "/public/../tax/f24",
        "/%74ax/f24",
        "/public/%2e%2e/tax/f24",
        "//tax/f24",
        "/tax;x=1/f24",
        "/tax%2ff24",
    ] {
        let r = auth(&stack, &mut b, path);
        assert_eq!(r.status, 400, "{path}: {r:?}");
        assert_eq!(
            r.header("x-varco-reason"),
            Some("broker_noncanonical_path"),
            "{path}"
        );
        assert!(r.header("x-varco-sub").is_none());
    }
    // A client-added X-Original-URI next to the proxy's X-Forwarded-Uri (Traefik passes
    // client headers through): ambiguous, refused rather than guessed.
    let r = b.get_with(
        &format!("{}/auth", stack.varco),
        &[
            ("X-Forwarded-Uri", "/tax/f24"),
            ("X-Original-URI", "/account"),
        ],
    );
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(
        r.header("x-varco-reason"),
        Some("broker_ambiguous_original_uri")
    );
}

#[test]
fn a_planted_second_session_cookie_is_not_believed() {
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let cookie = b.cookies["varco_session"].clone();
    // Two cookies of the session's name (one tossed from a sibling domain): neither counts.
    let r = Browser::default().get_with(
        &format!("{}/auth", stack.varco),
        &[
            (
                "Cookie",
                &format!("varco_session={cookie}; varco_session={cookie}"),
            ),
            ("X-Original-URI", "/account"),
        ],
    );
    assert_eq!(r.status, 401, "{r:?}");
}

#[test]
fn issue18_other_spellings_of_a_protected_path_get_its_route_with_traefik_headers() {
    // Traefik sends X-Forwarded-Uri/-Host/-Proto; `/tax` is at high, `/` at substantial.
    let stack = stack("\"127.0.0.1\"");
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let traefik = |b: &mut Browser, uri: &str| {
        b.get_with(
            &format!("{}/auth?mode=redirect", stack.varco),
            &[
                ("X-Forwarded-Uri", uri),
                ("X-Forwarded-Host", "127.0.0.1"),
                ("X-Forwarded-Proto", "http"),
                ("X-Forwarded-Method", "GET"),
            ],
        )
    };
    assert_eq!(traefik(&mut b, "/account").status, 200);
    for spelling in [
        "/Tax",
        "/TAX/f24",
        "/tax.json",
        "/tax%20",
        "/tax.",
        "/Tax.Json/f24?x=1",
    ] {
        let r = traefik(&mut b, spelling);
        assert_eq!(r.status, 302, "{spelling}: {r:?}");
        assert_eq!(r.header("x-varco-reason"), Some("step_up"), "{spelling}");
        assert!(r.header("x-varco-loa").is_none(), "{spelling}");
    }
}

#[test]
fn issue18_host_variants_are_normalized_or_refused_with_traefik_headers() {
    // A host-specific route at high, the any-host `/` at substantial. Each variant used to
    // miss the host route and get the any-host one (200 for a level-2 session).
    let stack = Stack::start_with(
        "[forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\n\
         [[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\n\
         [[route]]\nhost = \"portal.example\"\npath_prefix = \"/\"\nmin_loa = \"high\"\n",
    );
    let mut b = Browser::default();
    login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
    let ask = |b: &mut Browser, headers: &[(&str, &str)]| {
        let mut all = vec![("X-Forwarded-Uri", "/doc"), ("X-Forwarded-Proto", "http")];
        all.extend_from_slice(headers);
        b.get_with(&format!("{}/auth", stack.varco), &all)
    };
    // Spellings of portal.example: its route, so a step-up.
    for host in [
        "portal.example",
        "PORTAL.example.",
        "portal.example:80",
        "portal.example:080",
    ] {
        let r = ask(&mut b, &[("X-Forwarded-Host", host)]);
        assert_eq!(r.status, 401, "{host}: {r:?}");
        assert_eq!(r.header("x-varco-reason"), Some("step_up"), "{host}");
    }
    // Another port is another host: unknown, denied.
    let r = ask(&mut b, &[("X-Forwarded-Host", "portal.example:8443")]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.header("x-varco-reason"), Some("broker_unknown_host"));
    // Lists and invalid values: refused.
    for host in [
        "portal.example, other",
        "portal.example:99999",
        "a b",
        "x@portal.example",
    ] {
        let r = ask(&mut b, &[("X-Forwarded-Host", host)]);
        assert_eq!(r.status, 400, "{host}: {r:?}");
        assert_eq!(
            r.header("x-varco-reason"),
            Some("broker_bad_host"),
            "{host}"
        );
    }
    // Two X-Forwarded-Host headers (a client's copy beside the proxy's): refused.
    let r = ask(
        &mut b,
        &[
            ("X-Forwarded-Host", "127.0.0.1"),
            ("X-Forwarded-Host", "portal.example"),
        ],
    );
    assert_eq!(r.status, 400, "{r:?}");
    // Varco's own host is allowed, so the any-host route still serves it.
    let own = stack.varco.trim_start_matches("http://").to_owned();
    let r = ask(&mut b, &[("X-Forwarded-Host", &own)]);
    assert_eq!(r.status, 200, "{r:?}");
}

/// The `request` lines of `/auth` answers in Varco's log, as `(status, request_id)`.
fn auth_request_lines(stack: &Stack) -> Vec<(u64, String)> {
    stack
        .varco_log()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["event"] == "request" && l["route"] == "auth")
        .map(|l| {
            (
                l["status"].as_u64().unwrap(),
                l["request_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn issue20_an_allowed_check_writes_its_request_line_only_when_asked() {
    // By default an allowed check (200) writes no `request` line: the proxy logs the
    // request, the metrics count it. Every other answer keeps its line.
    for (asked, extra) in [(false, ""), (true, "[log]\nforward_auth_allowed = true\n")] {
        let (es, _) = token_keys();
        let stack = Stack::start_with(&format!(
            "{extra}[[token.key]]\nkid = \"es-1\"\nfile = \"{}\"\n\
             [forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"127.0.0.1\"]\n{ROUTES}",
            es.display()
        ));
        let mut b = Browser::default();
        login(&stack, &mut b, &stack.login_url(2, "/"), "mario.rossi", "2");
        let allowed = auth(&stack, &mut b, "/account");
        assert_eq!(allowed.status, 200, "{}", allowed.body);
        let step_up = auth(&stack, &mut b, "/tax");
        assert_eq!(step_up.status, 401);
        let anonymous = auth(&stack, &mut Browser::default(), "/account");
        assert_eq!(anonymous.status, 401);
        // The other lines are written once the answer is sent: wait for both 401 lines.
        let mut lines = Vec::new();
        for _ in 0..100 {
            lines = auth_request_lines(&stack);
            if lines.iter().filter(|(s, _)| *s == 401).count() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let id = |r: &Reply| r.header("x-request-id").unwrap().to_owned();
        assert!(lines.contains(&(401, id(&step_up))), "{lines:?}");
        assert!(lines.contains(&(401, id(&anonymous))), "{lines:?}");
        assert_eq!(
            lines.contains(&(200, id(&allowed))),
            asked,
            "asked {asked}: {lines:?}"
        );
        // Counted either way.
        let metrics = b.get(&format!("{}/metrics", stack.management));
        assert!(
            metrics
                .body
                .contains("varco_access_decisions_total{outcome=\"allow\"} 1"),
            "{}",
            metrics.body
        );
        // Every allowed answer carries its own request id (issue 20: the answer's headers
        // are a clone built once per token, whose id slot the server fills per request).
        let again = auth(&stack, &mut b, "/account");
        assert_eq!(again.status, 200);
        for r in [&allowed, &again] {
            let v = id(r);
            assert!(
                v.len() == 16 && v.bytes().all(|c| c.is_ascii_hexdigit()),
                "{v}"
            );
        }
        assert_ne!(id(&allowed), id(&again));
    }
}
