//! End to end: browser → `varco` `/saml/login` → demo IdP → `/saml/acs` → `/whoami`, over
//! HTTP against the built binaries, for SPID L2 and L3, CIE and eIDAS users; replays,
//! cancellations and a lower level than requested are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use e2e::stack::{Stack, idp_answer_from, post_to_acs};
use e2e::{Browser, Reply, form_action, form_input};

/// Follows the login at the SPID demo IdP up to its answer.
fn idp_answer(b: &mut Browser, stack: &Stack, level: u8, fields: &[(&str, &str)]) -> Reply {
    idp_answer_from(b, &stack.login_url(level, "/account"), fields)
}

fn login(stack: &Stack, user: &str, requested: u8, asserted: &str) -> (Browser, Reply) {
    let mut b = Browser::default();
    let answer = idp_answer(
        &mut b,
        stack,
        requested,
        &[("user", user), ("level", asserted)],
    );
    let acs = post_to_acs(&mut b, &answer);
    (b, acs)
}

fn whoami(b: &mut Browser, stack: &Stack) -> Reply {
    stack.whoami(b)
}

#[test]
fn spid_level2_login_reaches_whoami_and_replay_is_refused() {
    let stack = Stack::start();
    let mut b = Browser::default();
    let answer = idp_answer(
        &mut b,
        &stack,
        2,
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    assert_eq!(acs.header("location"), Some("/account"));
    let set_cookie = acs
        .headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("varco_session="))
        .unwrap();
    assert!(set_cookie.1.contains("HttpOnly") && set_cookie.1.contains("SameSite=Lax"));

    let me = whoami(&mut b, &stack);
    assert_eq!(me.status, 200);
    assert!(me.body.contains("TINIT-RSSMRA80A01H501U"), "{}", me.body);
    assert!(me.body.contains("\"loa\": \"substantial\""), "{}", me.body);
    assert!(me.body.contains("SpidL2"), "{}", me.body);
    assert!(
        me.body.contains(&format!("\"idp\": \"{}\"", stack.idp)),
        "{}",
        me.body
    );

    // The same POST again, from the same browser: the request is consumed.
    let again = post_to_acs(&mut b, &answer);
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("broker_unknown_request"),
        "{}",
        again.body
    );
    assert!(!again.headers.iter().any(|(k, _)| k == "set-cookie"));
}

#[test]
fn spid_level3_login() {
    let stack = Stack::start();
    let (mut b, acs) = login(&stack, "giulia.bianchi", 3, "3");
    assert_eq!(acs.status, 303, "{}", acs.body);
    let me = whoami(&mut b, &stack);
    assert!(me.body.contains("\"loa\": \"high\""), "{}", me.body);
}

#[test]
fn higher_level_than_requested_is_accepted() {
    let stack = Stack::start();
    let (mut b, acs) = login(&stack, "mario.rossi", 1, "2");
    assert_eq!(acs.status, 303, "{}", acs.body);
    assert!(whoami(&mut b, &stack).body.contains("SpidL2"));
}

#[test]
fn lower_level_than_requested_is_refused() {
    let stack = Stack::start();
    let (mut b, acs) = login(&stack, "mario.rossi", 3, "2");
    assert_eq!(acs.status, 400, "{}", acs.body);
    assert!(acs.body.contains("saml_level_too_low"), "{}", acs.body);
    assert_eq!(whoami(&mut b, &stack).status, 401);
}

#[test]
fn cie_and_eidas_style_users_log_in() {
    let stack = Stack::start();
    let (mut b, acs) = login(&stack, "luca.verdi", 2, "2");
    assert_eq!(acs.status, 303, "{}", acs.body);
    let me = whoami(&mut b, &stack).body;
    assert!(me.contains("\"sub\": \"TINIT-VRDLCU90S23F839"), "{me}");

    // Through the IdP registered as the eIDAS node: the person identifier FICEP hands over
    // as spidCode becomes the EIDAS: subject, method eidas.
    let mut b = Browser::default();
    let answer = idp_answer_from(
        &mut b,
        &stack.login_url_at(&stack.eidas_idp, 2, "/"),
        &[("user", "anna.schmidt"), ("level", "2")],
    );
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let me = whoami(&mut b, &stack).body;
    assert!(
        me.contains("\"sub\": \"EIDAS:DE/IT/0f3a9c5e7b2d4816\"")
            && me.contains("\"method\": \"eidas\""),
        "{me}"
    );
}

#[test]
fn missing_subject_attribute_is_refused_naming_attribute_and_idp() {
    // anna.schmidt has no fiscal code: through a SPID IdP there is no subject to build.
    let stack = Stack::start();
    let (mut b, acs) = login(&stack, "anna.schmidt", 2, "2");
    assert_eq!(acs.status, 400, "{}", acs.body);
    assert!(
        acs.body.contains("identity.missing_attribute"),
        "{}",
        acs.body
    );
    // The operator's log names the attribute and the IdP.
    let log = stack.varco_log();
    let line = log
        .lines()
        .find(|l| l.contains("identity.missing_attribute"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("fiscalNumber") && line.contains(&stack.idp),
        "{line}"
    );
    assert_eq!(whoami(&mut b, &stack).status, 401);
}

#[test]
fn cancelled_login_shows_the_spid_anomaly_page() {
    let stack = Stack::start();
    let mut b = Browser::default();
    let answer = idp_answer(&mut b, &stack, 2, &[("action", "cancel")]);
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 401, "{}", acs.body);
    assert!(acs.body.contains("Accesso annullato"), "{}", acs.body);
    assert!(acs.body.contains("Sign-in cancelled"), "{}", acs.body);
}

#[test]
fn response_posted_from_another_browser_is_refused() {
    let stack = Stack::start();
    let mut victim = Browser::default();
    let answer = idp_answer(
        &mut victim,
        &stack,
        2,
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let mut attacker = Browser::default();
    let acs = post_to_acs(&mut attacker, &answer);
    assert_eq!(acs.status, 403, "{}", acs.body);
    assert!(acs.body.contains("broker_browser_mismatch"));
    // The victim's own login still completes: the refused attempt consumed nothing.
    let ok = post_to_acs(&mut victim, &answer);
    assert_eq!(ok.status, 303, "{}", ok.body);
}

#[test]
fn open_redirect_and_unknown_idp_are_refused() {
    let stack = Stack::start();
    let mut b = Browser::default();
    let url = stack.login_url(2, "//evil.example/");
    assert_eq!(b.get(&url).status, 400);
    let unknown = format!(
        "{}/saml/login?idp=https%3A%2F%2Fevil.example&level=2",
        stack.varco
    );
    assert_eq!(b.get(&unknown).status, 400);
}

#[test]
fn garbage_at_the_acs_is_a_4xx_never_a_5xx() {
    let stack = Stack::start();
    let mut b = Browser::default();
    let acs = format!("{}/saml/acs", stack.varco);
    for body in [
        vec![],
        vec![("SAMLResponse", "%%%not-base64")],
        vec![("SAMLResponse", "PGEvPg==")],                 // <a/>
        vec![("SAMLResponse", "PCFET0NUWVBFIGE+PGEvPg==")], // <!DOCTYPE a><a/>
    ] {
        let r = b.post_form(&acs, &body);
        assert!(
            (400..500).contains(&r.status),
            "{body:?}: {} {}",
            r.status,
            r.body
        );
    }
}

#[test]
fn oversized_or_ambiguous_acs_bodies_are_refused() {
    let stack = Stack::start();
    let mut b = Browser::default();
    let acs = format!("{}/saml/acs", stack.varco);
    let huge = "A".repeat(600 * 1024);
    let r = b.post_form(&acs, &[("SAMLResponse", &huge)]);
    assert_eq!(r.status, 413, "{}", r.body);
    assert!(r.body.contains("broker_body_too_large"));
    let r = b.post_form(
        &acs,
        &[("SAMLResponse", "PGEvPg=="), ("SAMLResponse", "PGEvPg==")],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("broker_duplicate_field"), "{}", r.body);
}

#[test]
fn genuine_response_without_a_pending_request_is_refused() {
    // A Response genuinely signed by the trusted IdP, but for a login this Varco never
    // started (here: started on another Varco sharing the IdP): unsolicited, refused.
    let stack = Stack::start();
    let other = Stack::start();
    let mut b = Browser::default();
    let answer = idp_answer(
        &mut b,
        &other,
        2,
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let saml_response = form_input(&answer.body, "SAMLResponse").unwrap();
    let r = b.post_form(
        &format!("{}/saml/acs", stack.varco),
        &[("SAMLResponse", &saml_response)],
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("broker_unknown_request"), "{}", r.body);
}

#[test]
fn relay_state_of_another_login_does_not_redirect_the_response() {
    // Varco finds the pending request by the RelayState it sent. A Response posted with the
    // RelayState of another pending login of the same browser must still be checked against
    // that login's request ID (signed InResponseTo), and refused without consuming either.
    let stack = Stack::start();
    let mut b = Browser::default();
    let first = idp_answer(
        &mut b,
        &stack,
        2,
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let second = idp_answer(
        &mut b,
        &stack,
        2,
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let action = form_action(&first.body).unwrap();
    let saml_response = form_input(&first.body, "SAMLResponse").unwrap();
    let other_relay = form_input(&second.body, "RelayState").unwrap();
    let mixed = b.post_form(
        &action,
        &[
            ("SAMLResponse", &saml_response),
            ("RelayState", &other_relay),
        ],
    );
    assert_eq!(mixed.status, 400, "{}", mixed.body);
    assert!(
        mixed.body.contains("saml_in_response_to_mismatch"),
        "{}",
        mixed.body
    );
    // Both logins are still pending and complete with their own RelayState.
    assert_eq!(post_to_acs(&mut b, &second).status, 303);
    assert_eq!(post_to_acs(&mut b, &first).status, 303);
}
