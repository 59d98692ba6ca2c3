//! Acting for someone else (issue 24), end to end through the demo IdP and the built `varco`:
//! one flow per representation type (delegation and guardianship from the portal's HTTP API,
//! parental authority from a file the portal signs — signed here by PyJWT, an independent
//! JOSE implementation —, a company's legal representative from the SPID legal-person
//! attributes, an amministrazione di sostegno and an intermediary (for a company and for a
//! person) from the portal's API, a minor with their own SPID against the service's age limits), and each
//! refusal by name: an expired delegation, a service out of scope, a delegation revoked
//! mid-session, the source down (fail closed, with a clear page), a forged `act`, a minor
//! below the service's age, a session cookie copied before a switch.
//!
//! The portal's API is a small HTTP server in this test (it plays the portal); it checks the
//! bearer token and answers from a table the test edits between requests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use e2e::stack::{Stack, idp_answer_from, pct, post_to_acs};
use e2e::{Browser, Reply, form_input, scratch};
use serde_json::{Value, json};

const TOKEN: &str = "portal-api-secret-0123456789";
const ISSUER: &str = "https://portale.test";
const ELDER_CF: &str = "VRDLGU60M01L219V";
const CHILD_CF: &str = "RSSLCU15A41H501A";
const WARD_CF: &str = "RSSMRA85T10A562S";
const DAY: u64 = 86_400;

/// The wall clock: the records' validity must bracket the time the built `varco` reads.
#[allow(clippy::disallowed_methods)]
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The portal: `GET /representations?delegate=<sub>` answers the records stored for that
/// delegate (with the bearer token only), `down` makes it drop every connection unanswered;
/// any other path echoes the request head (the upstream of the proxy-mode test).
#[derive(Clone, Default)]
struct Portal {
    records: Arc<Mutex<BTreeMap<String, Vec<Value>>>>,
    down: Arc<AtomicBool>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl Portal {
    fn start() -> (Portal, u16) {
        let portal = Portal::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let p = portal.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let p = p.clone();
                std::thread::spawn(move || p.serve(stream));
            }
        });
        (portal, port)
    }

    fn set(&self, delegate: &str, records: Vec<Value>) {
        self.records
            .lock()
            .unwrap()
            .insert(delegate.to_owned(), records);
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut out = stream;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        if self.down.load(Ordering::SeqCst) {
            return; // a crashed portal: the connection closes unanswered
        }
        let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
        let (status, body) = if let Some(q) = target.strip_prefix("/representations?delegate=") {
            let authorized = head
                .lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {TOKEN}")));
            let delegate = q.replace("%3A", ":");
            self.asked.lock().unwrap().push(delegate.clone());
            if authorized {
                let list = self
                    .records
                    .lock()
                    .unwrap()
                    .get(&delegate)
                    .cloned()
                    .unwrap_or_default();
                ("200 OK", json!({ "representations": list }).to_string())
            } else {
                ("401 Unauthorized", "{}".to_owned())
            }
        } else {
            ("200 OK", head)
        };
        let _ = write!(
            out,
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = reader.read(&mut [0u8; 1]);
    }
}

fn pyjwt() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pyjwt-venv.sh");
    let out = Command::new("bash").arg(script).output().expect("bash");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

const SIGN: &str = r#"
import json, sys, jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm
key = serialization.load_pem_private_key(open(sys.argv[2], "rb").read(), None)
if sys.argv[1] == "jwks":
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "portale-1"
    print(json.dumps({"keys": [jwk]}))
else:
    print(jwt.encode(json.loads(sys.argv[3]), key, algorithm="ES256",
                     headers={"kid": "portale-1", "typ": "varco-representations+jwt"}))
"#;

/// The portal's signing key and its representation file, written by PyJWT.
struct SignedFile {
    python: PathBuf,
    key: PathBuf,
    file: PathBuf,
    jwks: PathBuf,
    iat: Mutex<u64>,
}

impl SignedFile {
    fn new() -> SignedFile {
        let dir = scratch("represent-file");
        let key = dir.join("portale.pem");
        let st = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let python = pyjwt();
        let out = Command::new(&python)
            .args(["-c", SIGN, "jwks"])
            .arg(&key)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let jwks = dir.join("portale.jwks");
        std::fs::write(&jwks, &out.stdout).unwrap();
        let f = SignedFile {
            python,
            key,
            file: dir.join("representations.jws"),
            jwks,
            iat: Mutex::new(now() - 120),
        };
        f.write(&[]);
        f
    }

    /// Signs and writes a file listing `records`, each newer than the last.
    fn write(&self, records: &[Value]) {
        let mut iat = self.iat.lock().unwrap();
        *iat += 1;
        let payload =
            json!({"iss": ISSUER, "iat": *iat, "exp": now() + DAY, "representations": records});
        let out = Command::new(&self.python)
            .args(["-c", SIGN, "sign"])
            .arg(&self.key)
            .arg(payload.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, &out.stdout).unwrap();
        std::fs::rename(&tmp, &self.file).unwrap();
    }
}

struct Fixture {
    stack: Stack,
    portal: Portal,
    file: SignedFile,
}

fn fixture() -> Fixture {
    fixture_with("")
}

/// The OpenID Provider client of the `tributi` service (issues 22 + 24) and one without a
/// service, both for Authlib.
const OIDC_SECRET: &str = "authlib-secret-0123456789abcdefghijklmnop";
const OIDC_REDIRECT: &str = "http://127.0.0.1:9/cb";

fn oidc_fixture() -> Fixture {
    let dir = scratch("represent-oidc-conf");
    let secret = dir.join("client.secret");
    std::fs::write(&secret, OIDC_SECRET).unwrap();
    fixture_with(&format!(
        "[oidc]
         [[oidc.client]]
id = \"tributi-app\"
secret_file = \"{s}\"
service = \"tributi\"
         redirect_uris = [\"{OIDC_REDIRECT}\"]
         [[oidc.client]]
id = \"plain-app\"
secret_file = \"{s}\"
         redirect_uris = [\"{OIDC_REDIRECT}\"]
",
        s = secret.display()
    ))
}

/// Authlib (tests/py/oidc_authlib.py), as in the OpenID Provider tests.
fn authlib(args: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("py/oidc_authlib.py");
    String::from_utf8(testkit::python::run("authlib", &script, args, None))
        .unwrap()
        .trim()
        .to_owned()
}

fn fixture_with(extra: &str) -> Fixture {
    let (portal, port) = Portal::start();
    let file = SignedFile::new();
    let dir = scratch("represent-conf");
    let token = dir.join("api.token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let stack = Stack::start_with(&format!(
        "[[sp.attribute_consuming_service]]\nindex = 0\nservice_name = \"Servizi\"\n\
         attributes = [\"spidCode\", \"name\", \"familyName\", \"fiscalNumber\", \"email\", \
         \"dateOfBirth\", \"companyName\", \"ivaCode\", \"companyFiscalNumber\"]\n\
         [forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"127.0.0.1\"]\n\
         [[route]]\npath_prefix = \"/tributi\"\nservice = \"tributi\"\naudience = \"tributi\"\n\
         [[route]]\npath_prefix = \"/assistenza\"\nservice = \"assistenza\"\n\
         [[route]]\npath_prefix = \"/scuola\"\nservice = \"scuola\"\nmax_age = 13\n\
         [[route]]\npath_prefix = \"/suap\"\nservice = \"suap\"\nprofiles = [\"business\"]\n\
         [[route]]\npath_prefix = \"/adulti\"\nservice = \"adulti\"\nmin_age = 18\n\
         [[route]]\npath_prefix = \"/giovani\"\nservice = \"giovani\"\nmin_age = 14\nmax_age = 17\n\
         [[route]]\npath_prefix = \"/sportello\"\nservice = \"sportello\"\nupstream = \"http://127.0.0.1:{port}\"\n\
         [[represent.source]]\nid = \"portale\"\nkind = \"http\"\n\
         url = \"http://127.0.0.1:{port}/representations\"\nbearer_token_file = \"{}\"\ncache_seconds = 0\n\
         [[represent.source]]\nid = \"registro\"\nkind = \"signed_file\"\nfile = \"{}\"\n\
         issuer = \"{ISSUER}\"\njwks_file = \"{}\"\nreload_seconds = 0\n\
         [[represent.source]]\nid = \"spid\"\nkind = \"spid_legal_person\"\n\
         [[represent.service]]\nservice = \"tributi\"\nsources = [\"portale\"]\n\
         [[represent.service]]\nservice = \"assistenza\"\nsources = [\"portale\"]\n\
         [[represent.service]]\nservice = \"sportello\"\nsources = [\"portale\"]\n\
         [[represent.service]]\nservice = \"scuola\"\nsources = [\"registro\"]\n\
         [[represent.service]]\nservice = \"suap\"\nsources = [\"spid\"]\nrequired = true\n{extra}",
        token.display(),
        file.file.display(),
        file.jwks.display(),
    ));
    Fixture {
        stack,
        portal,
        file,
    }
}

/// `/auth` as nginx asks it for `uri`.
fn auth(f: &Fixture, b: &mut Browser, uri: &str) -> Reply {
    b.get_with(
        &format!("{}/auth", f.stack.varco),
        &[
            ("X-Original-URI", uri),
            ("X-Forwarded-Host", "127.0.0.1"),
            ("X-Forwarded-Proto", "http"),
        ],
    )
}

/// Logs `user` in through the demo IdP; returns their `sub`.
fn login(f: &Fixture, b: &mut Browser, user: &str) -> String {
    login_to(f, b, user, &format!("{}/", f.stack.varco))
}

/// [`login`] for a login coming back to `return_to`.
fn login_to(f: &Fixture, b: &mut Browser, user: &str, return_to: &str) -> String {
    let url = f.stack.login_url(2, return_to);
    let answer = idp_answer_from(b, &url, &[("user", user), ("level", "2")]);
    let acs = post_to_acs(b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let me: Value = serde_json::from_str(&f.stack.whoami(b).body).unwrap();
    me["principal"]["sub"].as_str().unwrap().to_owned()
}

fn record(
    reference: &str,
    kind: &str,
    delegate: &str,
    represented: Value,
    services: &[&str],
) -> Value {
    json!({
        "ref": reference, "type": kind, "delegate": delegate, "represented": represented,
        "services": services, "not_before": now() - DAY, "not_after": now() + 30 * DAY,
    })
}

fn elder() -> Value {
    json!({"person": {"fiscal_code": ELDER_CF, "given_name": "Luigi", "family_name": "Verdi"}})
}

/// `/auth` sends the person to the chooser; the chooser lists `expected`; the choice of
/// `value` is posted. Returns the chooser page.
fn choose(f: &Fixture, b: &mut Browser, uri: &str, expected: &str, value: &str) -> Reply {
    let first = auth(f, b, uri);
    assert_eq!(first.status, 401, "{}", first.body);
    assert_eq!(first.header("x-varco-reason"), Some("represent_chooser"));
    let chooser = first.header("x-varco-login").unwrap().to_owned();
    assert!(chooser.contains("/represent?service="), "{chooser}");
    let page = b.get(&chooser);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Entra per conto di"), "{}", page.body);
    assert!(page.body.contains("Act on behalf of"));
    assert!(page.body.contains(expected), "{}", page.body);
    assert!(!page.body.contains("<script"), "no script needed");
    post_choice(f, b, &page, value)
}

fn post_choice(f: &Fixture, b: &mut Browser, page: &Reply, value: &str) -> Reply {
    let token = form_input(&page.body, "token").unwrap();
    let service = form_input(&page.body, "service").unwrap();
    let return_to = form_input(&page.body, "return_to").unwrap();
    b.post_form(
        &format!("{}/represent", f.stack.varco),
        &[
            ("token", &token),
            ("service", &service),
            ("return_to", &return_to),
            ("choice", value),
        ],
    )
}

fn token_claims(r: &Reply) -> Value {
    let bearer = r.header("authorization").unwrap();
    let jwt = bearer.strip_prefix("Bearer ").unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn audit_lines(f: &Fixture) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(f.stack.dir.join("audit"))
        .unwrap()
        .flatten()
    {
        all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    all
}

#[test]
fn delegation_from_the_api_chooser_acting_identity_and_switch_back() {
    let f = fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "mario.rossi");
    f.portal.set(
        &me,
        vec![record("D-1", "delegation", &me, elder(), &["tributi"])],
    );

    let done = choose(
        &f,
        &mut b,
        "/tributi/dichiarazione",
        "Luigi Verdi",
        "portale:D-1",
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some("http://127.0.0.1/tributi/dichiarazione")
    );
    let ok = auth(&f, &mut b, "/tributi/dichiarazione");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let elder_sub = format!("TINIT-{ELDER_CF}");
    assert_eq!(ok.header("x-varco-sub"), Some(elder_sub.as_str()));
    assert_eq!(ok.header("x-varco-given-name"), Some("Luigi"));
    assert_eq!(ok.header("x-varco-act-sub"), Some(me.as_str()));
    assert_eq!(ok.header("x-varco-act-loa"), Some("substantial"));
    assert_eq!(ok.header("x-varco-representation-type"), Some("delegation"));
    assert_eq!(ok.header("x-varco-representation-ref"), Some("D-1"));
    let claims = token_claims(&ok);
    assert_eq!(claims["sub"], elder_sub.as_str());
    assert_eq!(claims["aud"], "tributi");
    assert_eq!(claims["act"]["sub"], me.as_str());
    assert_eq!(claims["act"]["method"], "spid");
    assert_eq!(claims["representation"]["type"], "delegation");
    assert_eq!(claims["representation"]["source"], "portale");
    let who: Value = serde_json::from_str(
        &b.get(&format!("{}/whoami?service=tributi", f.stack.varco))
            .body,
    )
    .unwrap();
    assert_eq!(who["principal"]["sub"], elder_sub.as_str());
    assert_eq!(who["act"]["sub"], me.as_str());
    // The audit trail names both persons.
    let audit = audit_lines(&f);
    let line = audit
        .lines()
        .find(|l| l.contains("\"kind\":\"represent\""))
        .unwrap_or_else(|| panic!("no represent record: {audit}"));
    let record: Value =
        serde_json::from_str(&line[line.find('{').unwrap()..=line.rfind('}').unwrap()]).unwrap();
    assert_eq!(record["sub"], elder_sub.as_str());
    assert_eq!(record["act"]["sub"], me.as_str());
    assert_eq!(record["service"], "tributi");
    assert_eq!(record["representation"]["ref"], "D-1");
    // The choice started a new session id; the record links it to the login's.
    assert_ne!(record["sid"], record["previous_sid"]);
    assert!(
        audit.contains(&format!("\"sid\":{}", record["previous_sid"])),
        "{audit}"
    );

    // Switch back to myself without a new login.
    let page = b.get(&format!(
        "{}/represent?service=tributi&return_to={}",
        f.stack.varco,
        pct("http://127.0.0.1/tributi/")
    ));
    assert!(page.body.contains("value=\"myself\""), "{}", page.body);
    assert!(
        page.body.contains("value=\"portale:D-1\" checked"),
        "{}",
        page.body
    );
    assert_eq!(post_choice(&f, &mut b, &page, "myself").status, 303);
    let own = auth(&f, &mut b, "/tributi/dichiarazione");
    assert_eq!(own.status, 200);
    assert_eq!(own.header("x-varco-sub"), Some(me.as_str()));
    assert!(own.header("x-varco-act-sub").is_none());
    assert!(token_claims(&own).get("act").is_none());
}

#[test]
fn guardianship_from_the_api() {
    let f = fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "franca.neri");
    let ward =
        json!({"person": {"fiscal_code": WARD_CF, "given_name": "Mario", "family_name": "Rossi"}});
    f.portal.set(
        &me,
        vec![record("T-9", "guardianship", &me, ward, &["assistenza"])],
    );
    assert_eq!(
        choose(&f, &mut b, "/assistenza/", "Mario Rossi", "portale:T-9").status,
        303
    );
    let ok = auth(&f, &mut b, "/assistenza/");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.header("x-varco-sub"),
        Some(format!("TINIT-{WARD_CF}").as_str())
    );
    assert_eq!(
        ok.header("x-varco-representation-type"),
        Some("guardianship")
    );
}

#[test]
fn support_administration_from_the_api() {
    let f = fixture();
    let mut b = Browser::default();
    // Rosa Ferrari is amministratrice di sostegno of Luigi Verdi (decree of the giudice
    // tutelare, kept by the portal) for the social-care service.
    let me = login(&f, &mut b, "rosa.ferrari");
    f.portal.set(
        &me,
        vec![record(
            "AS-4",
            "support_administration",
            &me,
            elder(),
            &["assistenza"],
        )],
    );
    let done = choose(
        &f,
        &mut b,
        "/assistenza/domanda",
        "Luigi Verdi",
        "portale:AS-4",
    );
    assert_eq!(done.status, 303, "{}", done.body);
    let ok = auth(&f, &mut b, "/assistenza/domanda");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let elder_sub = format!("TINIT-{ELDER_CF}");
    assert_eq!(ok.header("x-varco-sub"), Some(elder_sub.as_str()));
    assert_eq!(ok.header("x-varco-act-sub"), Some(me.as_str()));
    assert_eq!(
        ok.header("x-varco-representation-type"),
        Some("support_administration")
    );
    assert_eq!(ok.header("x-varco-representation-ref"), Some("AS-4"));
    let claims = token_claims(&ok);
    assert_eq!(claims["sub"], elder_sub.as_str());
    assert_eq!(claims["act"]["sub"], me.as_str());
    assert_eq!(claims["representation"]["type"], "support_administration");
    // The chooser names the ground in both languages.
    let page = b.get(&format!(
        "{}/represent?service=assistenza&return_to={}",
        f.stack.varco,
        pct("http://127.0.0.1/assistenza/")
    ));
    assert!(
        page.body.contains("amministrazione di sostegno")
            && page.body.contains("support administration"),
        "{}",
        page.body
    );
    // The record covers assistenza only: on tributi she is herself (no record there).
    let own = auth(&f, &mut b, "/tributi/");
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.header("x-varco-sub"), Some(me.as_str()));
    assert!(own.header("x-varco-act-sub").is_none());
}

#[test]
fn intermediary_from_the_api_for_a_company_and_a_person_switching_clients() {
    let f = fixture();
    let mut b = Browser::default();
    // Carlo Gallo, commercialista, files taxes for a company and for a private client.
    let me = login(&f, &mut b, "carlo.gallo");
    let company = json!({"company": {"vat": "01234567897", "name": "ACME S.r.l."}});
    f.portal.set(
        &me,
        vec![
            record("I-1", "intermediary", &me, company, &["tributi"]),
            record("I-2", "intermediary", &me, elder(), &["tributi"]),
        ],
    );
    let first = auth(&f, &mut b, "/tributi/f24");
    assert_eq!(first.status, 401, "{}", first.body);
    let page = b.get(first.header("x-varco-login").unwrap());
    assert!(
        page.body.contains("ACME S.r.l.") && page.body.contains("Luigi Verdi"),
        "{}",
        page.body
    );
    assert!(page.body.contains("intermediario"), "{}", page.body);
    assert_eq!(post_choice(&f, &mut b, &page, "portale:I-1").status, 303);
    let ok = auth(&f, &mut b, "/tributi/f24");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("x-varco-sub"), Some("VATIT-01234567897"));
    assert_eq!(ok.header("x-varco-act-sub"), Some(me.as_str()));
    assert_eq!(
        ok.header("x-varco-representation-type"),
        Some("intermediary")
    );
    let claims = token_claims(&ok);
    assert_eq!(claims["sub"], "VATIT-01234567897");
    assert_eq!(claims["act"]["sub"], me.as_str());
    assert_eq!(claims["representation"]["type"], "intermediary");

    // The next client, without logging in again.
    let page = b.get(&format!(
        "{}/represent?service=tributi&return_to={}",
        f.stack.varco,
        pct("http://127.0.0.1/tributi/f24")
    ));
    assert!(
        page.body.contains("value=\"portale:I-1\" checked"),
        "{}",
        page.body
    );
    assert_eq!(post_choice(&f, &mut b, &page, "portale:I-2").status, 303);
    let next = auth(&f, &mut b, "/tributi/f24");
    assert_eq!(next.status, 200, "{}", next.body);
    assert_eq!(
        next.header("x-varco-sub"),
        Some(format!("TINIT-{ELDER_CF}").as_str())
    );
    assert_eq!(next.header("x-varco-representation-ref"), Some("I-2"));
    assert_eq!(next.header("x-varco-act-sub"), Some(me.as_str()));
}

#[test]
fn parental_from_the_signed_file_for_a_child_under_14() {
    let f = fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "paolo.esposito");
    // The parent on a service for children under 14, as himself: too old.
    let own = auth(&f, &mut b, "/scuola/");
    assert_eq!(own.status, 403, "no representation yet: {}", own.body);
    assert_eq!(
        own.header("x-varco-reason"),
        Some("identity.age_above_maximum")
    );
    let child = json!({"person": {"fiscal_code": CHILD_CF, "given_name": "Lucia", "family_name": "Esposito", "birthdate": "2015-01-01"}});
    f.file
        .write(&[record("P-1", "parental", &me, child, &["scuola"])]);
    assert_eq!(
        choose(
            &f,
            &mut b,
            "/scuola/pagella",
            "Lucia Esposito",
            "registro:P-1"
        )
        .status,
        303
    );
    let ok = auth(&f, &mut b, "/scuola/pagella");
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.header("x-varco-sub"),
        Some(format!("TINIT-{CHILD_CF}").as_str())
    );
    assert_eq!(ok.header("x-varco-representation-type"), Some("parental"));
    assert_eq!(ok.header("x-varco-representation-source"), Some("registro"));
    assert_eq!(token_claims(&ok)["birthdate"], "2015-01-01");
}

#[test]
fn legal_representative_from_the_spid_legal_person_attributes() {
    let f = fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "marco.colombo");
    let page_value = "spid:spid:VATIT-";
    let first = auth(&f, &mut b, "/suap/pratiche");
    assert_eq!(first.status, 401, "{}", first.body);
    let page = b.get(first.header("x-varco-login").unwrap());
    assert!(page.body.contains("Esempio S.r.l."), "{}", page.body);
    assert!(
        !page.body.contains("value=\"myself\""),
        "the service requires a representation"
    );
    let value = page
        .body
        .split("value=\"")
        .find(|v| v.starts_with(page_value))
        .unwrap();
    let value = value.split('"').next().unwrap().to_owned();
    assert_eq!(post_choice(&f, &mut b, &page, &value).status, 303);
    let ok = auth(&f, &mut b, "/suap/pratiche");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let company = value.strip_prefix("spid:spid:").unwrap();
    assert_eq!(ok.header("x-varco-sub"), Some(company));
    assert_eq!(ok.header("x-varco-profile"), Some("business"));
    assert_eq!(ok.header("x-varco-act-sub"), Some(me.as_str()));
    assert_eq!(
        ok.header("x-varco-representation-type"),
        Some("legal_representative")
    );
}

#[test]
fn minor_with_own_spid_and_refused_below_the_services_age() {
    let f = fixture();
    let mut b = Browser::default();
    // Coming back to an age-limited service, the AuthnRequest carries spid:AgeLimit (14-17),
    // which the demo IdP checks: Sofia, 15, passes.
    login_to(&f, &mut b, "sofia.esposito", "http://127.0.0.1/giovani/");
    let young = auth(&f, &mut b, "/giovani/");
    assert_eq!(young.status, 200, "{}", young.body);
    assert_eq!(
        young.header("x-varco-birthdate"),
        None,
        "not a default header"
    );
    let adults = auth(&f, &mut b, "/adulti/");
    assert_eq!(adults.status, 403);
    assert_eq!(
        adults.header("x-varco-reason"),
        Some("identity.age_below_minimum")
    );
    assert!(adults.body.contains("almeno 18 anni"), "{}", adults.body);
    assert!(adults.body.contains("aged 18 or over"));
}

/// The demo IdP's login page for a login started toward `return_to`: it shows the
/// `spid:AgeLimit` the AuthnRequest carried, if any.
fn idp_login_page(f: &Fixture, b: &mut Browser, return_to: &str) -> String {
    let start = b.get(&f.stack.login_url(2, return_to));
    assert_eq!(start.status, 302, "{}", start.body);
    let page = b.get(start.header("location").unwrap());
    assert_eq!(page.status, 200, "{}", page.body);
    page.body
}

#[test]
fn login_asks_the_idp_for_the_age_limits_of_the_route_it_returns_to() {
    let f = fixture();
    let mut b = Browser::default();
    let limits = |body: &str| {
        body.split("(spid:AgeLimit)</th><td>")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .map(str::to_owned)
    };
    // A route with both limits, one with a minimum only (MaxAge 99 = none), relative and
    // absolute return addresses.
    let page = idp_login_page(&f, &mut b, "http://127.0.0.1/giovani/iscrizione?x=1");
    assert_eq!(limits(&page).as_deref(), Some("14–17"), "{page}");
    let page = idp_login_page(&f, &mut b, "/adulti/");
    assert_eq!(limits(&page).as_deref(), Some("18–99"), "{page}");
    // A route without limits, and a limited route whose service takes representations (a
    // parent may log in for a child: Varco checks the person represented instead).
    for to in ["/tributi/", "http://127.0.0.1/", "/scuola/pagella"] {
        let page = idp_login_page(&f, &mut b, to);
        assert!(page.contains("AuthnRequest ID"), "{page}");
        assert_eq!(limits(&page), None, "{to}: {page}");
    }
}

#[test]
fn minor_below_the_limit_refused_at_the_idp_with_a_clear_page() {
    let f = fixture();
    let mut b = Browser::default();
    // Sofia (15) logs in to come back to a service for adults only.
    let url = f.stack.login_url(2, "http://127.0.0.1/adulti/");
    let answer = idp_answer_from(&mut b, &url, &[("user", "sofia.esposito"), ("level", "2")]);
    assert!(
        answer
            .body
            .contains("Spiacente Sofia, ma non hai l'età richiesta"),
        "{}",
        answer.body
    );
    assert!(
        !answer.body.contains("<script"),
        "the person reads it first"
    );
    let refused = post_to_acs(&mut b, &answer);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(
        refused
            .body
            .contains("la tua età non rientra nei limiti del servizio")
            && refused
                .body
                .contains("your age is outside the service's limits"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("saml_"), "{}", refused.body);
    // No session: the SP received no data about her.
    assert_eq!(f.stack.whoami(&mut b).status, 401);
    // The same person within the limits gets in (the IdP checks, it does not just refuse).
    let url = f.stack.login_url(2, "http://127.0.0.1/giovani/");
    let answer = idp_answer_from(&mut b, &url, &[("user", "sofia.esposito"), ("level", "2")]);
    assert_eq!(post_to_acs(&mut b, &answer).status, 303);
    // An adult on the young people's service is refused at the IdP as well.
    let mut p = Browser::default();
    let url = f.stack.login_url(2, "http://127.0.0.1/giovani/");
    let answer = idp_answer_from(&mut p, &url, &[("user", "paolo.esposito"), ("level", "2")]);
    assert!(answer.body.contains("Spiacente Paolo"), "{}", answer.body);
    assert_eq!(post_to_acs(&mut p, &answer).status, 401);
}

/// Logs mario in, gives him `D-1` on tributi and chooses it.
fn acting_mario(f: &Fixture, b: &mut Browser) -> String {
    let me = login(f, b, "mario.rossi");
    f.portal.set(
        &me,
        vec![record("D-1", "delegation", &me, elder(), &["tributi"])],
    );
    assert_eq!(
        choose(f, b, "/tributi/", "Luigi Verdi", "portale:D-1").status,
        303
    );
    assert_eq!(auth(f, b, "/tributi/").status, 200);
    me
}

/// A browser holding only a copy of `b`'s session cookie.
fn copy_of(b: &Browser) -> Browser {
    let mut t = Browser::default();
    t.cookies
        .insert("varco_session".into(), b.cookies["varco_session"].clone());
    t
}

#[test]
fn attack_cookie_copied_before_a_switch_keeps_no_choice() {
    let f = fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "mario.rossi");
    f.portal.set(
        &me,
        vec![record("D-1", "delegation", &me, elder(), &["tributi"])],
    );
    // A copy taken while Mario has not chosen yet (a shared computer, another browser).
    let mut before = copy_of(&b);
    assert_eq!(
        choose(&f, &mut b, "/tributi/", "Luigi Verdi", "portale:D-1").status,
        303
    );
    assert_eq!(auth(&f, &mut b, "/tributi/").status, 200);
    // The switch revoked the copied session, as a re-login would: not logged in at all.
    let r = auth(&f, &mut before, "/tributi/");
    assert_eq!(r.status, 401, "{}", r.body);
    assert_ne!(r.header("x-varco-reason"), Some("represent_chooser"));
    assert!(r.header("x-varco-sub").is_none());

    // A copy taken while acting for Luigi stops when Mario switches back to himself.
    let mut acting_copy = copy_of(&b);
    assert_eq!(
        auth(&f, &mut acting_copy, "/tributi/").header("x-varco-sub"),
        Some(format!("TINIT-{ELDER_CF}").as_str())
    );
    let page = b.get(&format!(
        "{}/represent?service=tributi&return_to={}",
        f.stack.varco,
        pct("http://127.0.0.1/tributi/")
    ));
    assert_eq!(post_choice(&f, &mut b, &page, "myself").status, 303);
    assert_eq!(
        auth(&f, &mut b, "/tributi/").header("x-varco-sub"),
        Some(me.as_str())
    );
    let r = auth(&f, &mut acting_copy, "/tributi/");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("x-varco-sub").is_none());
    // A form token of the old session cannot set a choice on the new one.
    let replay = post_choice(&f, &mut b, &page, "portale:D-1");
    assert_eq!(replay.status, 403, "{}", replay.body);
    assert!(replay.body.contains("non è valida"), "{}", replay.body);

    // The IdP's logout still finds the session after the switches (re-indexed to the new id).
    let report = Browser::default()
        .get(&format!("{}/sessions", f.stack.idp))
        .body;
    let index = report
        .lines()
        .filter_map(|l| l.strip_prefix("session "))
        .find(|l| l.split(' ').nth(2) == Some("mario.rossi"))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("no IdP session: {report}"))
        .to_owned();
    let mut idp = Browser::default();
    let start = idp.get(&format!(
        "{}/logout/start?session_index={index}",
        f.stack.idp
    ));
    assert_eq!(start.status, 302, "{}", start.body);
    let to_varco = start.header("location").unwrap().to_owned();
    assert_eq!(idp.get(&to_varco).status, 302);
    assert_eq!(auth(&f, &mut b, "/tributi/").status, 401);
}

#[test]
fn refused_expired_delegation() {
    let f = fixture();
    let mut b = Browser::default();
    let me = acting_mario(&f, &mut b);
    let mut expired = record("D-1", "delegation", &me, elder(), &["tributi"]);
    expired["not_before"] = json!(now() - 30 * DAY);
    expired["not_after"] = json!(now() - 1);
    f.portal.set(&me, vec![expired]);
    let r = auth(&f, &mut b, "/tributi/");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("represent.expired"));
    assert!(
        r.body.contains("scaduta") && r.body.contains("expired"),
        "{}",
        r.body
    );
}

#[test]
fn refused_service_out_of_scope() {
    let f = fixture();
    let mut b = Browser::default();
    let me = acting_mario(&f, &mut b);
    // The portal narrows the delegation to another service.
    f.portal.set(
        &me,
        vec![record("D-1", "delegation", &me, elder(), &["anagrafe"])],
    );
    let r = auth(&f, &mut b, "/tributi/");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("represent.out_of_scope"));
}

#[test]
fn refused_delegation_revoked_mid_session() {
    let f = fixture();
    let mut b = Browser::default();
    let me = acting_mario(&f, &mut b);
    f.portal.set(&me, vec![]);
    let r = auth(&f, &mut b, "/tributi/");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("represent.not_found"));
    assert!(r.body.contains("revocata") && r.body.contains("revoked"));
    // Never silently turned into the delegate's own identity.
    assert!(r.header("x-varco-sub").is_none());

    // The same through the signed file: a newer file without the record.
    let mut p = Browser::default();
    let parent = login(&f, &mut p, "paolo.esposito");
    let child = json!({"person": {"fiscal_code": CHILD_CF, "birthdate": "2015-01-01"}});
    f.file
        .write(&[record("P-1", "parental", &parent, child, &["scuola"])]);
    assert_eq!(
        choose(&f, &mut p, "/scuola/", CHILD_CF, "registro:P-1").status,
        303
    );
    assert_eq!(auth(&f, &mut p, "/scuola/").status, 200);
    f.file.write(&[]);
    let r = auth(&f, &mut p, "/scuola/");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("represent.not_found"));
}

#[test]
fn refused_source_down_fails_closed_with_a_clear_page() {
    let f = fixture();
    let mut b = Browser::default();
    acting_mario(&f, &mut b);
    f.portal.down.store(true, Ordering::SeqCst);
    let r = auth(&f, &mut b, "/tributi/");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.header("x-varco-reason"),
        Some("represent.source_unavailable")
    );
    assert!(r.body.contains("Riprova tra qualche minuto"), "{}", r.body);
    // The chooser and the proxy say the same, with 503.
    let page = b.get(&format!("{}/represent?service=tributi", f.stack.varco));
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("try again in a few minutes"));
    // A person with no choice yet is not let in as themselves either.
    let mut other = Browser::default();
    login(&f, &mut other, "giulia.bianchi");
    let r = auth(&f, &mut other, "/tributi/");
    assert_eq!(
        r.header("x-varco-reason"),
        Some("represent.source_unavailable")
    );
    let metrics = b.get(&format!("{}/metrics", f.stack.management)).body;
    assert!(
        metrics
            .contains("varco_represent_source_errors_total{reason=\"connect\",source=\"portale\"}")
            || metrics
                .contains("varco_represent_source_errors_total{reason=\"io\",source=\"portale\"}"),
        "{metrics}"
    );
}

#[test]
fn attack_forged_act_claim_from_the_client() {
    let f = fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "mario.rossi");
    f.portal.set(
        &me,
        vec![record("D-1", "delegation", &me, elder(), &["tributi"])],
    );
    let first = auth(&f, &mut b, "/tributi/");
    let page = b.get(first.header("x-varco-login").unwrap());
    // A reference the source never gave this person (someone else's record).
    let r = post_choice(&f, &mut b, &page, "portale:SOMEONE-ELSES");
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("represent.not_found"));
    // A source the service does not ask.
    let r = post_choice(&f, &mut b, &page, "registro:D-1");
    assert_eq!(r.header("x-varco-reason"), Some("represent.out_of_scope"));
    // A form token not sealed by Varco for this session.
    let r = b.post_form(
        &format!("{}/represent", f.stack.varco),
        &[
            ("token", "forged"),
            ("service", "tributi"),
            ("choice", "portale:D-1"),
        ],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-varco-reason"), Some("represent.csrf"));
    // Reverse-proxy mode: `act` headers written by the client reach no upstream, acting or
    // not; the upstream sees only what Varco decided.
    f.portal.set(
        &me,
        vec![record("S-1", "delegation", &me, elder(), &["sportello"])],
    );
    let sportello = format!("{}/sportello/", f.stack.varco);
    let first = b.get(&sportello);
    assert_eq!(first.status, 302, "{}", first.body);
    let page = b.get(first.header("location").unwrap());
    assert_eq!(post_choice(&f, &mut b, &page, "portale:S-1").status, 303);
    let forged = [
        ("X-Varco-Act-Sub", "TINIT-FORGED"),
        ("X_Varco_Act_Sub", "TINIT-FORGED"),
        ("X-Varco-Representation-Ref", "forged"),
        ("X-Varco-Sub", "TINIT-FORGED"),
    ];
    let acting = b.get_with(&sportello, &forged);
    assert_eq!(acting.status, 200, "{}", acting.body);
    let head = acting.body.to_ascii_lowercase();
    assert!(!head.contains("forged"), "{head}");
    assert!(
        head.contains(&format!("x-varco-act-sub: {}", me.to_ascii_lowercase())),
        "{head}"
    );
    assert!(
        head.contains(&format!(
            "x-varco-sub: tinit-{}",
            ELDER_CF.to_ascii_lowercase()
        )),
        "{head}"
    );
    // Back to myself: no act header at all, forged or not.
    let page = b.get(&format!("{}/represent?service=sportello", f.stack.varco));
    assert_eq!(post_choice(&f, &mut b, &page, "myself").status, 303);
    let own = b.get_with(&sportello, &forged);
    assert_eq!(own.status, 200, "{}", own.body);
    let head = own.body.to_ascii_lowercase();
    assert!(
        !head.contains("forged") && !head.contains("x-varco-act-"),
        "{head}"
    );
    assert!(
        head.contains(&format!("x-varco-sub: {}", me.to_ascii_lowercase())),
        "{head}"
    );
}

/// The chooser in Chromium: reached straight after the login, accessible (axe-core), usable
/// from the keyboard alone, and landing on the acting identity (tests/browser/represent.mjs).
#[test]
fn chooser_in_chromium_is_accessible_and_works_from_the_keyboard() {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium missing: make test installs the Debian package chromium"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let deps = Command::new(root.join("scripts/browser-deps.sh"))
        .status()
        .expect("scripts/browser-deps.sh");
    assert!(deps.success(), "scripts/browser-deps.sh failed");
    let f = fixture();
    let mario = "TINIT-RSSMRA80A01H501U";
    f.portal.set(
        mario,
        vec![record("D-7", "delegation", mario, elder(), &["tributi"])],
    );
    let back = format!("{}/whoami?service=tributi", f.stack.varco);
    let chooser = format!(
        "{}/represent?service=tributi&return_to={}",
        f.stack.varco,
        pct(&back)
    );
    let login = f.stack.login_url(2, &chooser);
    let artifacts = root.join("target/browser-artifacts");
    let out = Command::new("node")
        .arg(root.join("tests/browser/represent.mjs"))
        .args([
            login.as_str(),
            chooser.as_str(),
            &format!("TINIT-{ELDER_CF}"),
            artifacts.to_str().unwrap(),
        ])
        .output()
        .expect("node (the machine's Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser chooser failed:\n{stdout}\n{}\nvarco log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        f.stack.varco_log()
    );
    for step in [
        "ok - sign in at the demo IdP and land on the chooser",
        "ok - axe-core on the chooser",
        "ok - choose from the keyboard: portale:D-7",
        "ok - acting for the represented person",
    ] {
        assert!(stdout.contains(step), "missing step {step:?} in:\n{stdout}");
    }
}

/// Choices on many services with long references: the session cookie stays under what
/// browsers keep (4096 bytes), the latest choice always holds, and a service whose choice
/// gave way simply asks again.
#[test]
fn many_choices_keep_the_session_cookie_under_the_browser_limit() {
    let (portal, port) = Portal::start();
    let dir = scratch("represent-many");
    let token = dir.join("api.token");
    std::fs::write(&token, TOKEN).unwrap();
    let services: Vec<String> = (0..20).map(|i| format!("servizio-{i:02}")).collect();
    let mut config = format!(
        "[forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"127.0.0.1\"]\n\
         [[represent.source]]\nid = \"portale\"\nkind = \"http\"\n\
         url = \"http://127.0.0.1:{port}/representations\"\nbearer_token_file = \"{}\"\n",
        token.display()
    );
    for s in &services {
        config.push_str(&format!(
            "[[route]]\npath_prefix = \"/{s}\"\nservice = \"{s}\"\n\
             [[represent.service]]\nservice = \"{s}\"\nsources = [\"portale\"]\n"
        ));
    }
    let stack = Stack::start_with(&config);
    let f = Fixture {
        stack,
        portal,
        file: SignedFile::new(),
    };
    let mut b = Browser::default();
    let me = login(&f, &mut b, "mario.rossi");
    let long = |i: usize| format!("{i:02}-{}", "R".repeat(120));
    let all: Vec<&str> = services.iter().map(String::as_str).collect();
    f.portal.set(
        &me,
        (0..services.len())
            .map(|i| record(&long(i), "delegation", &me, elder(), &all))
            .collect(),
    );
    for (i, s) in services.iter().enumerate() {
        let first = auth(&f, &mut b, &format!("/{s}/"));
        assert_eq!(first.status, 401, "{s}: {}", first.body);
        let page = b.get(first.header("x-varco-login").unwrap());
        let done = post_choice(&f, &mut b, &page, &format!("portale:{}", long(i)));
        assert_eq!(done.status, 303, "{}", done.body);
        let cookie = b.cookies.get("varco_session").cloned().unwrap_or_default();
        assert!(
            !cookie.is_empty() && cookie.len() <= 3800,
            "{} bytes",
            cookie.len()
        );
        let ok = auth(&f, &mut b, &format!("/{s}/"));
        assert_eq!(ok.status, 200, "the latest choice holds: {}", ok.body);
        assert_eq!(
            ok.header("x-varco-representation-ref"),
            Some(long(i).as_str())
        );
    }
    // The first services' choices gave way: the chooser asks again there.
    let again = auth(&f, &mut b, "/servizio-00/");
    assert_eq!(again.header("x-varco-reason"), Some("represent_chooser"));
}

/// The authorization URL for `client` (Authlib), its state file and the user agent's way
/// to the client's redirect URI: `chooser` says whether Varco sends it to the chooser first,
/// where `choice` is posted. Returns the callback URL.
fn oidc_browse(f: &Fixture, b: &mut Browser, url: &str, choice: Option<(&str, &str)>) -> String {
    let first = b.get(url);
    assert_eq!(first.status, 302, "{}", first.body);
    let mut location = first.header("location").unwrap().to_owned();
    if let Some((expected, value)) = choice {
        assert!(
            location.contains("/represent?service=tributi"),
            "{location}"
        );
        let page = b.get(&location);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body.contains(expected), "{}", page.body);
        let done = post_choice(f, b, &page, value);
        assert_eq!(done.status, 303, "{}", done.body);
        let back = done.header("location").unwrap().to_owned();
        assert!(back.starts_with("/oidc/authorize?resume="), "{back}");
        let r = b.get(&format!("{}{back}", f.stack.varco));
        assert_eq!(r.status, 302, "{}", r.body);
        location = r.header("location").unwrap().to_owned();
    }
    assert!(location.starts_with(OIDC_REDIRECT), "{location}");
    assert!(location.contains("code="), "{location}");
    location
}

fn oidc_userinfo(f: &Fixture, access: &str) -> Reply {
    b_get_bearer(&format!("{}/oidc/userinfo", f.stack.varco), access)
}

fn b_get_bearer(url: &str, access: &str) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(url)
        .header("Authorization", &format!("Bearer {access}"))
        .call()
        .unwrap();
    Reply {
        status: r.status().as_u16(),
        headers: vec![],
        body: r.body_mut().read_to_string().unwrap(),
    }
}

#[test]
fn oidc_client_of_a_service_gets_the_represented_party_as_sub_and_the_delegate_as_act() {
    let f = oidc_fixture();
    let mut b = Browser::default();
    let me = login(&f, &mut b, "mario.rossi");
    f.portal.set(
        &me,
        vec![record("D-9", "delegation", &me, elder(), &["tributi"])],
    );
    let dir = scratch("represent-oidc");
    let issuer = f.stack.varco.clone();

    // A client without a service: the person's own identity, no chooser.
    let sf = dir.join("plain").display().to_string();
    let url = authlib(&["start", &issuer, "plain-app", OIDC_REDIRECT, &sf]);
    let cb = oidc_browse(&f, &mut b, &url, None);
    let own: Value = serde_json::from_str(&authlib(&[
        "finish",
        &issuer,
        "plain-app",
        "client_secret_basic",
        OIDC_SECRET,
        OIDC_REDIRECT,
        &sf,
        &cb,
    ]))
    .unwrap();
    assert_eq!(own["id_token"]["sub"], me.as_str(), "{own}");
    assert!(own["id_token"].get("act").is_none(), "{own}");
    assert_eq!(own["userinfo"]["sub"], me.as_str());
    assert!(own["userinfo"].get("act").is_none());

    // The client of `tributi`: the person holds a delegation there and has not chosen, so
    // the chooser comes first and the authorization resumes after it. The client tries to
    // put its own `act` and `sub` in the request: ignored, the values are Varco's.
    let sf = dir.join("acting").display().to_string();
    let url = authlib(&["start", &issuer, "tributi-app", OIDC_REDIRECT, &sf]);
    let forged = format!(
        "{url}&act={}&sub={}",
        pct("{\"sub\":\"TINIT-FRGFRG80A01H501X\"}"),
        pct("TINIT-FRGFRG80A01H501X")
    );
    let cb = oidc_browse(&f, &mut b, &forged, Some(("Luigi Verdi", "portale:D-9")));
    let got: Value = serde_json::from_str(&authlib(&[
        "finish",
        &issuer,
        "tributi-app",
        "client_secret_basic",
        OIDC_SECRET,
        OIDC_REDIRECT,
        &sf,
        &cb,
    ]))
    .unwrap();
    let elder_sub = format!("TINIT-{ELDER_CF}");
    for claims in [&got["id_token"], &got["userinfo"]] {
        assert_eq!(claims["sub"], elder_sub.as_str(), "{got}");
        assert_eq!(claims["act"]["sub"], me.as_str(), "{got}");
        assert_eq!(claims["act"]["method"], "spid", "{got}");
        assert_eq!(claims["act"]["loa"], "substantial", "{got}");
        assert_eq!(claims["representation"]["type"], "delegation", "{got}");
        assert_eq!(claims["representation"]["source"], "portale", "{got}");
        assert_eq!(claims["representation"]["ref"], "D-9", "{got}");
        assert!(!claims.to_string().contains("FRGFRG"), "{got}");
    }
    assert_eq!(got["userinfo"]["given_name"], "Luigi", "{got}");
    // The ID token's level is the delegate's login.
    assert_eq!(
        got["id_token"]["acr"],
        "http://eidas.europa.eu/LoA/substantial"
    );
    let audit = audit_lines(&f);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("oidc_tokens_issued") && l.contains("\"ref\":\"D-9\"")),
        "{audit}"
    );

    // Revoked at the source: UserInfo refuses the token at once (asked again every time),
    // never answering the delegate's own identity instead.
    let access = got["access_token"].as_str().unwrap();
    assert_eq!(oidc_userinfo(&f, access).status, 200);
    f.portal.set(&me, vec![]);
    let r = oidc_userinfo(&f, access);
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.body.contains("invalid_token"), "{}", r.body);
    // The next authorization does not issue a code for the revoked choice: the refusal page.
    let sf = dir.join("again").display().to_string();
    let url = authlib(&["start", &issuer, "tributi-app", OIDC_REDIRECT, &sf]);
    let r = b.get(&url);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(r.header("x-varco-reason"), Some("represent.not_found"));

    // Stated again: the stored choice holds, a code at once (no chooser). Revoked between
    // the code and its exchange: the token endpoint asks the source too, `invalid_grant`.
    f.portal.set(
        &me,
        vec![record("D-9", "delegation", &me, elder(), &["tributi"])],
    );
    let sf = dir.join("exchange").display().to_string();
    let url = authlib(&["start", &issuer, "tributi-app", OIDC_REDIRECT, &sf]);
    let cb = oidc_browse(&f, &mut b, &url, None);
    f.portal.set(&me, vec![]);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&sf).unwrap()).unwrap();
    let code = cb
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("tributi-app:{OIDC_SECRET}"));
    let mut r = agent
        .post(&format!("{}/oidc/token", f.stack.varco))
        .header("Authorization", &format!("Basic {basic}"))
        .send_form([
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", OIDC_REDIRECT),
            ("code_verifier", saved["verifier"].as_str().unwrap()),
        ])
        .unwrap();
    let body = r.body_mut().read_to_string().unwrap();
    assert_eq!(r.status().as_u16(), 400, "{body}");
    assert!(body.contains("invalid_grant"), "{body}");
    assert!(!body.contains("id_token"), "{body}");
}
