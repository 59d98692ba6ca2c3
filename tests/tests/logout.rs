//! End to end: SAML Single Logout between `varco` and the demo IdP, over HTTP against the
//! built binaries. SP-initiated: `/logout` ends the session at once, sends a signed
//! LogoutRequest, the IdP ends its own session and answers, and the answer is accepted once.
//! IdP-initiated: the IdP's signed LogoutRequest ends exactly the matching session and gets a
//! signed LogoutResponse the IdP verifies. Forged (unsigned, wrong key) and replayed IdP
//! LogoutRequests end nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::stack::{Stack, follow, idp_answer_from, post_to_acs};
use e2e::{Browser, Reply};

/// Logs `user` in at the SPID demo IdP; returns the browser holding the session.
fn login(stack: &Stack, user: &str) -> Browser {
    let mut b = Browser::default();
    let answer = idp_answer_from(
        &mut b,
        &stack.login_url(2, "/"),
        &[("user", user), ("level", "2")],
    );
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    assert_eq!(stack.whoami(&mut b).status, 200);
    b
}

/// The demo IdP's `/sessions` report.
fn idp_report(stack: &Stack) -> String {
    Browser::default()
        .get(&format!("{}/sessions", stack.idp))
        .body
}

/// The SessionIndex of `user`'s open session at the demo IdP.
fn session_index(stack: &Stack, user: &str) -> String {
    let report = idp_report(stack);
    report
        .lines()
        .filter_map(|l| l.strip_prefix("session "))
        .find(|l| l.split(' ').nth(2) == Some(user))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no IdP session for {user}: {report}"))
        .to_owned()
}

/// A browser holding only a copy of `b`'s session cookie.
fn thief(b: &Browser) -> Browser {
    let mut t = Browser::default();
    t.cookies
        .insert("varco_session".into(), b.cookies["varco_session"].clone());
    t
}

fn metrics(stack: &Stack) -> String {
    Browser::default()
        .get(&format!("{}/metrics", stack.management))
        .body
}

fn location(r: &Reply) -> String {
    r.header("location").expect("a redirect").to_owned()
}

#[test]
fn sp_initiated_logout_ends_both_sessions_and_its_answer_is_accepted_once() {
    let stack = Stack::start();
    let mut b = login(&stack, "mario.rossi");
    let mut copy = thief(&b);
    assert!(idp_report(&stack).contains(" mario.rossi "));

    let out = b.get(&format!("{}/logout", stack.varco));
    assert_eq!(out.status, 302, "{}", out.body);
    let to_idp = location(&out);
    assert!(
        to_idp.starts_with(&format!("{}/slo?SAMLRequest=", stack.idp)),
        "{to_idp}"
    );
    assert!(to_idp.contains("&SigAlg=") && to_idp.contains("&Signature="));
    assert!(out.headers.iter().any(|(k, v)| k == "set-cookie"
        && v.starts_with("varco_session=;")
        && v.contains("Max-Age=0")));
    // Fail safe: dead here before the IdP has even seen the request.
    assert_eq!(stack.whoami(&mut copy).status, 401);

    let idp_answer = b.get(&to_idp);
    assert_eq!(idp_answer.status, 302, "{}", idp_answer.body);
    let back = location(&idp_answer);
    assert!(
        back.starts_with(&format!("{}/saml/slo?SAMLResponse=", stack.varco)),
        "{back}"
    );
    let done = b.get(&back);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("anche presso il gestore")
            && done.body.contains("at the identity provider too"),
        "{}",
        done.body
    );

    // The IdP verified our signature (it refuses unsigned requests from a known SP) and
    // ended its session.
    let report = idp_report(&stack);
    assert!(!report.contains(" mario.rossi "), "{report}");
    assert!(
        report.contains("event sp-logout ") && report.contains("ended=1"),
        "{report}"
    );
    assert_eq!(stack.whoami(&mut copy).status, 401);

    // Replayed LogoutResponse: the pending request was consumed.
    let again = b.get(&back);
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("broker_unknown_logout"),
        "{}",
        again.body
    );

    let m = metrics(&stack);
    assert!(
        m.contains("varco_slo_started_total{binding=\"redirect\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("varco_slo_completed_total{initiator=\"sp\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("varco_slo_refused_total{code=\"broker_unknown_logout\"} 1"),
        "{m}"
    );
}

#[test]
fn idp_initiated_logout_ends_the_matching_session_only_and_is_answered_signed() {
    let stack = Stack::start();
    let mut mario = login(&stack, "mario.rossi");
    let mut giulia = login(&stack, "giulia.bianchi");
    let index = session_index(&stack, "mario.rossi");

    let mut b = Browser::default(); // the IdP-side browser: no Varco cookie needed
    let start = b.get(&format!("{}/logout/start?session_index={index}", stack.idp));
    assert_eq!(start.status, 302, "{}", start.body);
    let to_varco = location(&start);
    assert!(
        to_varco.starts_with(&format!("{}/saml/slo?SAMLRequest=", stack.varco)),
        "{to_varco}"
    );
    let answer = b.get(&to_varco);
    assert_eq!(answer.status, 302, "{}", answer.body);
    let to_idp = location(&answer);
    assert!(
        to_idp.starts_with(&format!("{}/slo?SAMLResponse=", stack.idp))
            && to_idp.contains("&SigAlg=")
            && to_idp.contains("&Signature="),
        "{to_idp}"
    );

    // Mario's session is revoked; Giulia's is untouched.
    assert_eq!(stack.whoami(&mut mario).status, 401);
    assert_eq!(stack.whoami(&mut giulia).status, 200);

    // The IdP verifies our signed LogoutResponse with the key in our metadata.
    let fin = b.get(&to_idp);
    assert_eq!(fin.status, 200, "{}", fin.body);
    let report = idp_report(&stack);
    assert!(
        report.contains("event idp-logout-response ") && report.contains(" ok verified redirect"),
        "{report}"
    );

    // Replayed IdP LogoutRequest: refused.
    let again = b.get(&to_varco);
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains("broker_replay"), "{}", again.body);

    let m = metrics(&stack);
    assert!(
        m.contains("varco_slo_completed_total{initiator=\"idp\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("varco_slo_refused_total{code=\"broker_replay\"} 1"),
        "{m}"
    );
}

#[test]
fn forged_idp_logout_requests_log_no_one_out() {
    let stack = Stack::start();
    let mut mario = login(&stack, "mario.rossi");
    let index = session_index(&stack, "mario.rossi");
    let mut b = Browser::default();
    for (forge, code) in [
        ("unsigned", "slo_unsigned"),
        ("key", "slo_redirect_signature"),
    ] {
        let start = b.get(&format!(
            "{}/logout/start?session_index={index}&forge={forge}",
            stack.idp
        ));
        assert_eq!(start.status, 302, "{}", start.body);
        let hops = follow(&mut b, &location(&start));
        let r = hops.last().unwrap();
        assert_eq!(r.status, 400, "{forge}: {}", r.body);
        assert!(r.body.contains(code), "{forge}: {}", r.body);
        assert!(r.header("location").is_none());
        assert_eq!(stack.whoami(&mut mario).status, 200, "{forge}");
    }
    // A message with no SAML at all, and a LogoutResponse nobody asked for.
    let r = b.get(&format!("{}/saml/slo?foo=bar", stack.varco));
    assert_eq!(r.status, 400);
    assert!(r.body.contains("slo_binding"), "{}", r.body);
    assert_eq!(stack.whoami(&mut mario).status, 200);
    let m = metrics(&stack);
    assert!(
        m.contains("varco_slo_refused_total{code=\"slo_unsigned\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("varco_slo_refused_total{code=\"slo_redirect_signature\"} 1"),
        "{m}"
    );
}

/// Logout CSRF: a link on another site (the browser says `Sec-Fetch-Site: cross-site`) gets
/// a confirmation form, and the session lives until the citizen confirms; the form's token
/// works once, for this session only, and a post without it (what a foreign page can send)
/// is refused. The portal's own links (`same-origin`) log out at once.
#[test]
fn a_logout_link_from_another_site_asks_for_confirmation_and_forged_posts_are_refused() {
    let stack = Stack::start();
    let logout = format!("{}/logout?return_to=%2Fbye", stack.varco);
    let mut b = login(&stack, "mario.rossi");

    let asked = b.get_with(&logout, &[("sec-fetch-site", "cross-site")]);
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert!(asked.body.contains("action=\"/logout\""), "{}", asked.body);
    assert!(
        !asked.headers.iter().any(|(k, _)| k == "set-cookie"),
        "nothing ends before the confirmation"
    );
    assert_eq!(stack.whoami(&mut b).status, 200);
    let token = e2e::form_input(&asked.body, "token").expect("the form's token");
    assert_eq!(
        e2e::form_input(&asked.body, "return_to").as_deref(),
        Some("/bye")
    );

    // What a foreign page can post: no token, a made-up one, or the token of another
    // citizen's confirmation form.
    let mut other = login(&stack, "giulia.bianchi");
    let others = other.get_with(&logout, &[("sec-fetch-site", "cross-site")]);
    let others_token = e2e::form_input(&others.body, "token").unwrap();
    for forged in [
        vec![],
        vec![("token", "AAAA")],
        vec![("token", others_token.as_str())],
    ] {
        let r = b.post_form(&format!("{}/logout", stack.varco), &forged);
        assert_eq!(r.status, 403, "{forged:?}: {}", r.body);
        assert!(r.body.contains("logout_csrf"), "{}", r.body);
        assert_eq!(stack.whoami(&mut b).status, 200, "{forged:?}");
    }

    // A foreign page's auto-submitted form comes without the (SameSite=Lax) session cookie:
    // nothing to end, and the answer must not delete the cookie either.
    let cookieless = Browser::default().post_form(&format!("{}/logout", stack.varco), &[]);
    assert_eq!(cookieless.status, 200, "{}", cookieless.body);
    assert!(
        !cookieless.headers.iter().any(|(k, _)| k == "set-cookie"),
        "{:?}",
        cookieless.headers
    );
    assert_eq!(stack.whoami(&mut b).status, 200);

    // The citizen confirms: the session ends and Single Logout starts, as from a plain link.
    let done = b.post_form(
        &format!("{}/logout", stack.varco),
        &[("token", token.as_str()), ("return_to", "/bye")],
    );
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(location(&done).starts_with(&format!("{}/slo?SAMLRequest=", stack.idp)));
    assert_eq!(stack.whoami(&mut b).status, 401);
    assert_eq!(stack.whoami(&mut other).status, 200);

    // A link of the portal itself logs out at once.
    let out = other.get_with(&logout, &[("sec-fetch-site", "same-origin")]);
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(stack.whoami(&mut other).status, 401);
}
