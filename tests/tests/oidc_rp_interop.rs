//! Varco's OpenID Connect relying party against the real SPID/CIE OpenID Connect federation
//! (issue 21): `spid-cie-oidc` (the reference implementation, started by `testkit::spidcie`)
//! as Trust Anchor, SPID OP and CIE OP, Varco as the built binary. The operator's onboarding
//! as OPERATIONS.md tells it: Varco serves its Entity Configuration, the anchor registers
//! its federation keys and issues the trust mark, the mark goes into the configuration (a
//! reload), then a citizen logs in at each OP through Varco and reaches `/whoami`, `/auth`
//! and the downstream token; a replayed callback is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::stack::{Stack, pct};
use e2e::{Browser, Reply};
use serde_json::Value;
use testkit::spidcie::{Federation, Profile, TaOptions, TestUser, jwt_claims};

fn openssl(args: &[&str], out: &Path) {
    let st = Command::new("openssl")
        .args(args)
        .arg("-out")
        .arg(out)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl {args:?}");
}

fn rsa_key(out: &Path) {
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        out,
    );
}

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

/// Varco with `[oidc_rp]` naming the federation's anchor and both OPs, and no trust mark yet
/// (the anchor issues it once it knows our keys).
fn varco(fed: &Federation) -> Stack {
    let keys = e2e::scratch("oidc-rp-keys");
    for name in ["federation", "signing", "encryption"] {
        rsa_key(&keys.join(format!("{name}.pem")));
    }
    let token_key = keys.join("token.pem");
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ],
        &token_key,
    );
    let ta_jwks = keys.join("ta.jwks.json");
    std::fs::write(&ta_jwks, fed.ta_jwks().to_string()).unwrap();
    let ta = fed.ta_id();
    Stack::start_with(&format!(
        "[token]\nissuer = \"https://varco.test\"\nttl_seconds = 120\n\
         [[token.key]]\nkid = \"es-1\"\nfile = \"{token}\"\n\
         [forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"127.0.0.1\"]\n\
         [[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\naudience = \"portal\"\n\
         [oidc_rp]\n\
         federation_key_file = \"{k}/federation.pem\"\n\
         signing_key_file = \"{k}/signing.pem\"\n\
         encryption_key_file = \"{k}/encryption.pem\"\n\
         authority_hints = [\"{ta}\"]\n\
         organization_name = \"Comune di Prova\"\n\
         homepage_uri = \"https://www.example.org\"\n\
         policy_uri = \"https://www.example.org/privacy\"\n\
         logo_uri = \"https://www.example.org/logo.svg\"\n\
         contacts = [\"protocollo@pec.example.org\"]\n\
         allow_http = true\n\
         [[oidc_rp.trust_anchor]]\nentity_id = \"{ta}\"\njwks_file = \"{jwks}\"\n\
         accept_trust_marks_without_exp = true\n\
         [[oidc_rp.op]]\nname = \"spid-op\"\nentity_id = \"{spid}\"\nfederation = \"spid\"\n\
         display_name = \"SPID OP\"\n\
         [[oidc_rp.op]]\nname = \"cie-op\"\nentity_id = \"{cie}\"\nfederation = \"cie\"\n\
         display_name = \"CIE OP\"\n",
        token = token_key.display(),
        k = keys.display(),
        jwks = ta_jwks.display(),
        spid = fed.op(Profile::Spid).entity_id(),
        cie = fed.op(Profile::Cie).entity_id(),
    ))
}

/// Onboarding: the anchor registers the federation keys of Varco's served Entity
/// Configuration; the trust mark it issues is saved and listed in the configuration, and
/// Varco reloads it (SIGHUP). Returns when Varco publishes the mark.
fn onboard(fed: &Federation, stack: &mut Stack) {
    let mut b = Browser::default();
    let ec = b.get(&format!("{}/.well-known/openid-federation", stack.varco));
    assert_eq!(ec.status, 200, "{}", ec.body);
    let claims = jwt_claims(&ec.body);
    let rp_id = claims["sub"].as_str().unwrap().to_owned();
    let on = fed.onboard_rp(&rp_id, Some(&claims["jwks"]));
    let mark = on
        .trust_marks
        .iter()
        .find(|m| m.trust_mark_type == fed.rp_trust_mark_type())
        .expect("the anchor issues the relying party's trust mark");
    let file = stack.dir.join("trust-mark.jwt");
    std::fs::write(&file, &mark.trust_mark).unwrap();
    let config = stack.dir.join("varco.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "[[oidc_rp.trust_mark]]\ntype = \"{}\"\njwt_file = \"{}\"\n",
        mark.trust_mark_type,
        file.display()
    ));
    let tmp = stack.dir.join("varco.toml.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &config).unwrap();
    stack.varco_process().hangup();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ec = b.get(&format!("{}/.well-known/openid-federation", stack.varco));
        let marks = jwt_claims(&ec.body)["trust_marks"].clone();
        if marks.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the trust mark was not published after the reload:\n{}",
            stack.varco_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A whole login at one OP: Varco's `/oidc/login`, the OP's login and consent forms, the
/// callback back into Varco with the same cookie jar. Returns the callback URL (for replay)
/// and Varco's answer to it.
fn login(
    fed: &Federation,
    stack: &Stack,
    b: &mut Browser,
    op: &str,
    user: &TestUser,
) -> (String, Reply) {
    let start = b.get(&format!(
        "{}/oidc/login?op={op}&level=2&return_to={}",
        stack.varco,
        pct("/")
    ));
    assert_eq!(
        start.status,
        303,
        "{}\n{}\n{}",
        start.body,
        stack.varco_log(),
        fed.logs()
    );
    let authz = start.header("location").unwrap().to_owned();
    let redirect_uri = format!("{}/oidc/callback", stack.public);
    let cb = fed.login(&authz, user, &redirect_uri);
    assert!(
        cb.error.is_none(),
        "the OP refused: {:?}\n{}",
        cb.params,
        fed.logs()
    );
    let answer = b.get(&cb.url);
    (cb.url, answer)
}

fn check_session(stack: &Stack, b: &mut Browser, fiscal: &str, method: &str, op_id: &str) {
    let who = stack.whoami(b);
    assert_eq!(who.status, 200, "{}", who.body);
    let who: Value = serde_json::from_str(&who.body).unwrap();
    let text = who.to_string();
    assert!(text.contains(&format!("TINIT-{fiscal}")), "{text}");

    let r = auth(stack, b, "/account");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("x-varco-sub"),
        Some(format!("TINIT-{fiscal}").as_str())
    );
    assert_eq!(r.header("x-varco-loa"), Some("substantial"));
    assert_eq!(r.header("x-varco-method"), Some(method));
    assert_eq!(r.header("x-varco-idp"), Some(op_id));
    let bearer = r.header("authorization").unwrap();
    let token = jwt_claims(bearer.strip_prefix("Bearer ").unwrap());
    assert_eq!(token["sub"], format!("TINIT-{fiscal}"));
    assert_eq!(token["aud"], "portal");
    assert_eq!(token["iss"], "https://varco.test");
    let token_text = token.to_string();
    assert!(token_text.contains("substantial"), "{token_text}");
    assert!(token_text.contains(method), "{token_text}");
}

#[test]
fn spid_and_cie_logins_through_the_reference_ops() {
    let t0 = Instant::now();
    let fed = Federation::start(TaOptions {
        require_rp_trust_mark: true,
        ..TaOptions::default()
    });
    let mut stack = varco(&fed);
    onboard(&fed, &mut stack);

    for (profile, op, fiscal, method) in [
        (Profile::Spid, "spid-op", "RSSMRA80A01H501U", "spid"),
        (Profile::Cie, "cie-op", "RSSMRA85T10A562S", "cie"),
    ] {
        // The SPID/CIE `fiscal_number` claim carries the TIN with its country prefix.
        let user = TestUser::citizen(
            &format!("user-{op}"),
            &format!("TINIT-{fiscal}"),
            "Mario",
            "Rossi",
        );
        fed.add_user(profile, &user);
        let mut b = Browser::default();
        let (callback, answer) = login(&fed, &stack, &mut b, op, &user);
        assert_eq!(
            answer.status,
            303,
            "{}\n{}\n{}",
            answer.body,
            stack.varco_log(),
            fed.logs()
        );
        check_session(&stack, &mut b, fiscal, method, fed.op(profile).entity_id());

        // The same callback again, in the same browser: the pending login is spent and the
        // code already redeemed, so it is refused and no second session is made.
        let mut other = Browser::default();
        other.cookies = b.cookies.clone();
        other.cookies.remove("varco_session");
        let replay = other.get(&callback);
        assert!(
            (400..500).contains(&replay.status),
            "replayed callback: {} {}",
            replay.status,
            replay.body
        );
        assert!(
            replay.body.contains("broker_unknown_request"),
            "{}",
            replay.body
        );
        assert_eq!(stack.whoami(&mut other).status, 401);
    }
    eprintln!(
        "oidc_rp_interop: federation start {:?}, whole test {:?}",
        fed.startup,
        t0.elapsed()
    );
}
