//! Legacy credentials against the built binaries: the `/legacy/login` form over HTTP with
//! hashes written by `varco legacy hash`; the anti-CSRF token (missing, from another browser,
//! tampered: refused); a wrong password; the failure throttle per fiscal code and per client;
//! the notice before a profile's cut-off and the refusal after it (dates set relative to
//! today, so the real clock walks past them); a malformed credential file refused by
//! `varco check-config` with exit 64; and `varco switchoff report` over the audit file those
//! logins wrote.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use e2e::stack::{Stack, idp_answer_from, post_to_acs};
use e2e::{Browser, Reply, binary, form_input, scratch};

const CITIZEN: &str = "RSSMRA85T10A562S";
const BUSINESS: &str = "VRDGPP80A01H501U";
const PROFESSIONAL: &str = "BNCLRA10A41H501K";
const PASSWORD: &str = "una password lunga";

/// `varco legacy hash` with the password on standard input: one credential-file line.
fn hash_line(code: &str, profile: &str, password: &str) -> String {
    let mut child = Command::new(binary("varco"))
        .args([
            "legacy",
            "hash",
            "--fiscal-code",
            code,
            "--profile",
            profile,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let line = String::from_utf8(out.stdout).unwrap();
    assert!(
        line.starts_with(&format!("{code} {profile} - $argon2id$v=19$")),
        "{line}"
    );
    line
}

/// A day relative to today, `YYYY-MM-DD` (from date(1), the test's only clock).
fn day(offset_days: i64) -> String {
    let out = Command::new("date")
        .args(["-u", "+%F", "-d", &format!("{offset_days} days")])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn credentials(dir: &Path) -> std::path::PathBuf {
    let file = dir.join("legacy.txt");
    let text = [
        hash_line(CITIZEN, "citizen", PASSWORD),
        hash_line(BUSINESS, "business", PASSWORD),
        hash_line(PROFESSIONAL, "professional", PASSWORD),
    ]
    .concat();
    std::fs::write(&file, text).unwrap();
    file
}

/// Citizens switched off since yesterday; businesses in ten days (notice); professionals
/// without a date.
fn stack(label: &str, throttle: &str) -> Stack {
    let dir = scratch(label);
    let file = credentials(&dir);
    Stack::start_with(&format!(
        "[legacy]\ncredentials_file = \"{}\"\n{throttle}\n\
         [switchoff]\nnotice_days = 30\n\
         [switchoff.profile.citizen]\nlegacy_until = \"{}\"\n\
         [switchoff.profile.business]\nlegacy_until = \"{}\"\n\
         [[route]]\npath_prefix = \"/\"\nmin_loa = \"low\"\n",
        file.display(),
        day(-1),
        day(10)
    ))
}

/// GET the form: its token (and the browser's binding cookie in the jar).
fn form(s: &Stack, b: &mut Browser) -> String {
    let r = b.get(&format!("{}/legacy/login?return_to=/whoami", s.varco));
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(b.cookies.contains_key("varco_legacy"));
    form_input(&r.body, "csrf").unwrap()
}

fn submit(s: &Stack, b: &mut Browser, csrf: &str, code: &str, password: &str) -> Reply {
    b.post_form(
        &format!("{}/legacy/login", s.varco),
        &[
            ("csrf", csrf),
            ("fiscal_code", code),
            ("password", password),
        ],
    )
}

fn login(s: &Stack, b: &mut Browser, code: &str, password: &str) -> Reply {
    let csrf = form(s, b);
    submit(s, b, &csrf, code, password)
}

#[test]
fn legacy_form_refuses_missing_foreign_or_tampered_csrf_tokens() {
    let s = stack("legacy-csrf", "");
    let url = format!("{}/legacy/login", s.varco);
    // No token, no cookie.
    let mut b = Browser::default();
    let r = b.post_form(&url, &[("fiscal_code", BUSINESS), ("password", PASSWORD)]);
    assert_eq!(r.status, 403, "{}", r.body);
    // A token without its cookie (a cross-site post: the SameSite=Strict cookie stays home).
    let mut victim = Browser::default();
    let token = form(&s, &mut victim);
    let mut attacker = Browser::default();
    let r = submit(&s, &mut attacker, &token, BUSINESS, PASSWORD);
    assert_eq!(r.status, 403);
    // A token bound to another browser's cookie.
    let _ = form(&s, &mut attacker);
    let r = submit(&s, &mut attacker, &token, BUSINESS, PASSWORD);
    assert_eq!(r.status, 403);
    assert!(!attacker.cookies.contains_key("varco_session"));
    // A tampered token.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let r = submit(
        &s,
        &mut victim,
        &String::from_utf8(tampered).unwrap(),
        BUSINESS,
        PASSWORD,
    );
    assert_eq!(r.status, 403);
    assert!(!victim.cookies.contains_key("varco_session"));
    // The untouched token with its own cookie works.
    let r = submit(&s, &mut victim, &token, PROFESSIONAL, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(victim.cookies.contains_key("varco_session"));
}

#[test]
fn legacy_login_notice_refusal_and_identity() {
    let mut s = stack("legacy-login", "");
    // The login page offers the legacy form only where a legacy session could be enough.
    let mut b = Browser::default();
    let low = b.get(&format!("{}/login?level=1&return_to=/whoami", s.varco));
    assert!(
        low.body
            .contains("href=\"/legacy/login?return_to=%2Fwhoami\""),
        "{}",
        low.body
    );
    let substantial = b.get(&format!("{}/login?level=2&return_to=/whoami", s.varco));
    assert!(!substantial.body.contains("/legacy/login"));

    // No date for professionals: straight to the service, method legacy at LoA low.
    let mut b = Browser::default();
    let r = login(&s, &mut b, PROFESSIONAL, PASSWORD);
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/whoami"));
    let who = s.whoami(&mut b);
    assert_eq!(who.status, 200);
    let v: serde_json::Value = serde_json::from_str(&who.body).unwrap();
    let p = &v["principal"];
    assert_eq!(p["sub"], format!("TINIT-{PROFESSIONAL}"));
    assert_eq!(p["auth"]["method"], "legacy");
    assert_eq!(p["auth"]["loa"], "low");
    assert_eq!(p["profile"], "professional");

    // Businesses: the notice with the date, and the session.
    let mut b = Browser::default();
    let r = login(&s, &mut b, BUSINESS, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body.contains("you will need SPID, CIE or CNS"),
        "{}",
        r.body
    );
    assert!(r.body.contains("servirà SPID, CIE o CNS"));
    assert!(r.body.contains("href=\"/whoami\""));
    assert_eq!(s.whoami(&mut b).status, 200);

    // Citizens: switched off since yesterday; the refusal explains how to get SPID/CIE.
    let mut b = Browser::default();
    let r = login(&s, &mut b, CITIZEN, PASSWORD);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("legacy_switched_off"));
    assert!(r.body.contains("Credenziali non più valide"));
    assert!(r.body.contains("How to get a digital identity"));
    assert!(!b.cookies.contains_key("varco_session"));

    // A wrong password: the form again, nothing about dates.
    let r = login(&s, &mut b, CITIZEN, "not the password");
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong fiscal code or password"));
    assert!(!r.body.contains("Credenziali non più valide"));
    // An unknown fiscal code gets the very same answer.
    let r = login(&s, &mut b, "MRORSS80A01H501U", PASSWORD);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("Wrong fiscal code or password"));

    // The adoption figures: one SPID login of a citizen beside the legacy ones.
    let mut spid = Browser::default();
    let answer = idp_answer_from(
        &mut spid,
        &s.login_url(2, "/"),
        &[("user", "mario.rossi"), ("level", "2")],
    );
    assert_eq!(post_to_acs(&mut spid, &answer).status, 303);
    let metrics = Browser::default()
        .get(&format!("{}/metrics", s.management))
        .body;
    for line in [
        "varco_logins_by_profile_total{category=\"none\",method=\"legacy\",profile=\"professional\"} 1",
        "varco_logins_by_profile_total{category=\"none\",method=\"legacy\",profile=\"business\"} 1",
        "varco_logins_by_profile_total{category=\"none\",method=\"legacy\",profile=\"citizen\"} 0",
        "varco_logins_by_profile_total{category=\"none\",method=\"spid\",profile=\"citizen\"} 1",
        "varco_logins_refused_total{code=\"legacy_switched_off\",spid_error=\"\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} not in\n{metrics}");
    }

    // The report over the audit file these logins wrote (Varco stopped: files complete).
    s.varco_process().terminate();
    let audit = s.dir.join("audit");
    let out = Command::new(binary("varco"))
        .args(["switchoff", "report", "--audit"])
        .arg(&audit)
        .args(["--from", &day(-1), "--to", &day(0), "--list"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let week = text
        .lines()
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    assert!(week.contains("-W"), "{text}");
    for row in [
        format!("{week:<9} business           1       1  100.0%"),
        format!("{week:<9} citizen            1       0    0.0%"),
        format!("{week:<9} professional       1       1  100.0%"),
        "users still on legacy: 2 (of 2 who signed in with legacy credentials in the period)"
            .to_owned(),
        format!("TINIT-{BUSINESS} business -"),
        format!("TINIT-{PROFESSIONAL} professional -"),
    ] {
        assert!(text.contains(&row), "{row:?} not in\n{text}");
    }
    // A report outside the period counts nothing; a broken chain gives no figures.
    let out = Command::new(binary("varco"))
        .args(["switchoff", "report", "--audit"])
        .arg(&audit)
        .args(["--from", "2001-01-01", "--to", "2001-01-31"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("users still on legacy: 0 (of 0 ")
    );
    let name = std::fs::read_dir(&audit)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let bytes = std::fs::read_to_string(&name).unwrap();
    std::fs::write(&name, bytes.replacen("\"legacy\"", "\"spid\"", 1)).unwrap();
    let out = Command::new(binary("varco"))
        .args(["switchoff", "report", "--audit"])
        .arg(&audit)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("FAILED audit_record_altered")
    );
}

#[test]
fn legacy_throttle_stops_password_guessing() {
    let s = stack(
        "legacy-throttle",
        "max_failures_per_user = 3\nmax_failures_per_client = 5",
    );
    let mut b = Browser::default();
    for _ in 0..3 {
        assert_eq!(login(&s, &mut b, BUSINESS, "guess").status, 401);
    }
    // The fourth attempt is refused before any check, even with the right password.
    let r = login(&s, &mut b, BUSINESS, PASSWORD);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many failed attempts"));
    // Another person from the same address is still served…
    assert_eq!(login(&s, &mut b, PROFESSIONAL, "guess").status, 401);
    assert_eq!(login(&s, &mut b, PROFESSIONAL, "guess").status, 401);
    // …until the address has failed five times: then everyone from it waits.
    let r = login(&s, &mut b, PROFESSIONAL, PASSWORD);
    assert_eq!(r.status, 429);
    let metrics = Browser::default()
        .get(&format!("{}/metrics", s.management))
        .body;
    assert!(
        metrics.contains("varco_legacy_throttled_total 2"),
        "{metrics}"
    );
}

#[test]
fn malformed_credential_files_are_refused_before_serving() {
    let dir = scratch("legacy-config");
    std::fs::write(dir.join("session.key"), "ab".repeat(32)).unwrap();
    e2e::sp_credentials(&dir, "legacy-config");
    // A minimal trusted IdP (the SP's own certificate will do for a configuration check).
    let pem = std::fs::read_to_string(dir.join("sp.crt.pem")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    std::fs::write(
        dir.join("idp.xml"),
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
    )
    .unwrap();
    let good = hash_line(BUSINESS, "business", PASSWORD);
    let phc = good.split_whitespace().nth(3).unwrap().to_owned();
    for (label, file) in [
        ("fields", format!("{BUSINESS} business {phc}\n")),
        ("checksum", format!("VRDGPP80A01H501J business - {phc}\n")),
        (
            "variant",
            format!(
                "{BUSINESS} business - {}\n",
                phc.replacen("argon2id", "argon2i", 1)
            ),
        ),
        ("category", format!("{BUSINESS} business minor {phc}\n")),
        ("twice", format!("{good}{good}")),
    ] {
        std::fs::write(dir.join("legacy.txt"), file).unwrap();
        std::fs::write(
            dir.join("varco.toml"),
            "[server]\npublic_base_url = \"http://127.0.0.1:1\"\n\
             [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
             [sp.organization]\nname = \"Comune\"\ndisplay_name = \"C\"\n\
             url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"a@example.org\"\n\
             [session]\nkey_file = \"session.key\"\ncookie_secure = false\n\
             [[idp]]\nmetadata_file = \"idp.xml\"\n\
             [legacy]\ncredentials_file = \"legacy.txt\"\n",
        )
        .unwrap();
        let out = Command::new(binary("varco"))
            .arg("check-config")
            .arg(dir.join("varco.toml"))
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(64), "{label}: {err}");
        assert!(err.contains("legacy.credentials_file"), "{label}: {err}");
        assert!(err.contains("line "), "{label}: {err}");
        assert!(!err.contains("$argon2"), "{label}: a hash leaked: {err}");
    }
    std::fs::write(dir.join("legacy.txt"), &good).unwrap();
    let out = Command::new(binary("varco"))
        .arg("check-config")
        .arg(dir.join("varco.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Issue 24: an exception category that a representation replaces (here guardianship) keeps
/// its legacy access, and every login under it points to the representation.
#[test]
fn exception_replaced_by_a_representation_points_to_it() {
    let dir = scratch("legacy-replaced");
    let file = dir.join("legacy.txt");
    let line = hash_line(CITIZEN, "citizen", PASSWORD).replacen(" - ", " guardianship ", 1);
    std::fs::write(&file, line).unwrap();
    let s = Stack::start_with(&format!(
        "[legacy]\ncredentials_file = \"{}\"\n\
         [switchoff.profile.citizen]\nlegacy_until = \"{}\"\n\
         [[switchoff.exception]]\ncategory = \"guardianship\"\nservices = [\"assistenza\"]\n\
         replaced_by = \"guardianship\"\n\
         [[route]]\npath_prefix = \"/\"\nmin_loa = \"low\"\nservice = \"assistenza\"\n",
        file.display(),
        day(-1)
    ));
    let mut b = Browser::default();
    let r = login(&s, &mut b, CITIZEN, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("Entra per conto di"), "{}", r.body);
    assert!(r.body.contains("il tutore") && r.body.contains("the guardian"));
    assert!(
        r.body.contains("href=\"/whoami\""),
        "then on to the service"
    );
    // The switch-off report counts the exception's logins beside the acting choices.
    let mut s = s;
    s.varco_process().terminate();
    let out = Command::new(binary("varco"))
        .args(["switchoff", "report", "--audit"])
        .arg(s.dir.join("audit"))
        .args(["--from", &day(-1), "--to", &day(0)])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("guardianship                        1       1\n"),
        "{text}"
    );
    assert!(
        text.contains("acting for someone       choices  delegates\n"),
        "{text}"
    );
}
