//! End to end: browser → `varco` `/saml/login` → demo IdP → `/saml/acs` → `/whoami`, over
//! HTTP against the built binaries, for SPID L2 and L3, CIE and eIDAS users; replays,
//! cancellations and a lower level than requested are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use e2e::{Browser, Process, Reply, binary, form_action, form_input, free_port, scratch};

/// Varco and the demo IdP, wired to trust each other.
struct Stack {
    varco: String,
    idp: String,
    _idp_proc: Process,
    _varco_proc: Process,
}

fn write(path: &PathBuf, text: &str) {
    std::fs::write(path, text).unwrap();
}

impl Stack {
    fn start() -> Stack {
        let dir = scratch("login");
        let (vport, iport) = (free_port(), free_port());
        let varco = format!("http://127.0.0.1:{vport}");
        let idp = format!("http://127.0.0.1:{iport}");

        let idp_dir = dir.join("idp");
        let mut idp_proc = Process::start(
            "idp",
            &binary("varco-dev-idp"),
            &[
                "--listen",
                &format!("127.0.0.1:{iport}"),
                "--base-url",
                &idp,
                "--state-dir",
                idp_dir.to_str().unwrap(),
                "--sp-metadata",
                &format!("{varco}/saml/metadata"),
            ],
            &dir,
        );
        idp_proc.wait_ready(&format!("{idp}/metadata"));
        let metadata = Browser::default().get(&format!("{idp}/metadata")).body;
        write(&dir.join("idp-metadata.xml"), &metadata);

        e2e::sp_credentials(&dir, "varco-e2e");
        write(
            &dir.join("varco.toml"),
            &format!(
                "[server]\nlisten = \"127.0.0.1:{vport}\"\npublic_base_url = \"{varco}\"\n\
                 [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
                 [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
                 url = \"https://www.example.org\"\nipa_code = \"c_h501\"\n\
                 email = \"spid@example.org\"\nphone = \"+390600000000\"\n\
                 [session]\nkey_file = \"session.key\"\ncookie_secure = false\n\
                 [[idp]]\nmetadata_file = \"idp-metadata.xml\"\n"
            ),
        );
        let mut varco_proc = Process::start(
            "varco",
            &binary("varco"),
            &[
                "serve",
                "--config",
                dir.join("varco.toml").to_str().unwrap(),
            ],
            &dir,
        );
        varco_proc.wait_ready(&format!("{varco}/healthz"));
        Stack {
            varco,
            idp,
            _idp_proc: idp_proc,
            _varco_proc: varco_proc,
        }
    }

    fn login_url(&self, level: u8, return_to: &str) -> String {
        let idp: String = self.idp.bytes().map(|b| format!("%{b:02X}")).collect();
        format!(
            "{}/saml/login?idp={idp}&level={level}&return_to={return_to}",
            self.varco
        )
    }
}

/// Follows the login up to the IdP's answer: the auto-POST page carrying the Response.
fn idp_answer(b: &mut Browser, stack: &Stack, level: u8, fields: &[(&str, &str)]) -> Reply {
    let start = b.get(&stack.login_url(level, "/account"));
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.header("location").unwrap().to_owned();
    assert!(
        location.starts_with(&format!("{}/sso?SAMLRequest=", stack.idp)),
        "{location}"
    );
    assert!(location.contains("&SigAlg=") && location.contains("&Signature="));
    assert!(b.cookies.contains_key("varco_login"));

    let page = b.get(&location);
    assert_eq!(page.status, 200, "{}", page.body);
    let state = form_input(&page.body, "state").expect("state field");
    let mut form = vec![("state", state.as_str())];
    form.extend_from_slice(fields);
    let answer = b.post_form(&format!("{}/login", stack.idp), &form);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

/// Posts the IdP's auto-POST form to the ACS, as the browser's script would.
fn post_to_acs(b: &mut Browser, answer: &Reply) -> Reply {
    let action = form_action(&answer.body).unwrap();
    let saml_response = form_input(&answer.body, "SAMLResponse").unwrap();
    let relay_state = form_input(&answer.body, "RelayState").unwrap_or_default();
    b.post_form(
        &action,
        &[
            ("SAMLResponse", &saml_response),
            ("RelayState", &relay_state),
        ],
    )
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
    b.get(&format!("{}/whoami", stack.varco))
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
    assert!(me.body.contains("\"level\": 2"), "{}", me.body);
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
    assert!(me.body.contains("\"level\": 3"), "{}", me.body);
}

#[test]
fn higher_level_than_requested_is_accepted() {
    let stack = Stack::start();
    let (mut b, acs) = login(&stack, "mario.rossi", 1, "2");
    assert_eq!(acs.status, 303, "{}", acs.body);
    assert!(whoami(&mut b, &stack).body.contains("\"level\": 2"));
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
    assert!(whoami(&mut b, &stack).body.contains("fiscalNumber"));

    let (mut b, acs) = login(&stack, "anna.schmidt", 2, "2");
    assert_eq!(acs.status, 303, "{}", acs.body);
    let me = whoami(&mut b, &stack).body;
    assert!(
        me.contains("spidCode") && !me.contains("fiscalNumber"),
        "{me}"
    );
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
