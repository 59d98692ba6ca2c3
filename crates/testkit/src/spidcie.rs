//! A real OpenID Federation on loopback: `spid-cie-oidc` (the Django reference implementation
//! of the SPID/CIE OpenID Connect federations, PyPI, pinned in
//! `tests/peers/spidcie/requirements.txt`) started as a Trust Anchor, a SPID OP, a CIE OP and,
//! on request, its own reference RP, each its own process with its own SQLite file.
//!
//! [`Federation::start`] picks the ports, starts the entities, waits for each to say it is
//! serving, onboards the OPs (and the reference RP) at the Trust Anchor and gives each its
//! trust mark. A test then onboards its relying party ([`Federation::onboard_rp`]), adds users
//! to an OP ([`Federation::add_user`]) and plays the user at the OP ([`Federation::login`]).
//!
//! The Django project that runs the package (settings, URLs, the entities' metadata, the
//! token-guarded control endpoints used here) is ours: `tests/peers/spidcie`. Every process
//! ends when its [`Entity`] is dropped, and also when this test process exits whatever way it
//! does (each reads its stdin until it closes), so a shared federation in a `static`
//! ([`Federation::shared`]) leaves nothing behind.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::port::free_port;
use crate::scratch::fresh_dir;

/// Longest wait for one entity to be serving: the first start on a machine also creates the
/// migrated database template (about 6 s idle), and the machine may be loaded.
const START_LIMIT: Duration = Duration::from_secs(180);

/// Which OP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// The SPID OP (`OIDCFED_PROVIDER_PROFILE = "spid"`).
    Spid,
    /// The CIE OP (`"cie"`: CIE request and response schemas, CIE claim names).
    Cie,
}

/// What [`Federation::start`] starts besides the Trust Anchor.
#[derive(Debug, Clone)]
pub struct TaOptions {
    /// A SPID OP. Default true.
    pub spid_op: bool,
    /// A CIE OP. Default true.
    pub cie_op: bool,
    /// The package's own reference RP, onboarded and offering both OPs. Default false.
    pub reference_rp: bool,
    /// The OPs accept only relying parties whose Entity Configuration carries the trust
    /// mark the anchor issued them ([`Federation::rp_trust_mark_type`]), as the SPID and CIE
    /// federations demand. Default false: the OPs then resolve the chain only.
    pub require_rp_trust_mark: bool,
}

impl Default for TaOptions {
    fn default() -> Self {
        TaOptions {
            spid_op: true,
            cie_op: true,
            reference_rp: false,
            require_rp_trust_mark: false,
        }
    }
}

/// One running entity.
pub struct Entity {
    entity_id: String,
    base: String,
    child: Child,
    /// Held open: the process removes its state and exits when it closes.
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl Entity {
    /// Its Entity Identifier (`http://127.0.0.1:<port>` for the anchor, `…/oidc/op` for an
    /// OP, `…/oidc/rp` for the reference RP).
    pub fn entity_id(&self) -> &str {
        &self.entity_id
    }
    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base
    }
    /// Where its Entity Configuration is served.
    pub fn configuration_url(&self) -> String {
        format!("{}/.well-known/openid-federation", self.entity_id)
    }
    /// What the process wrote on stderr so far (the package logs every refusal there).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Entity {
    fn drop(&mut self) {
        // Closing stdin asks it to clean up and exit; a process that does not is killed.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the anchor issued when it onboarded an entity.
#[derive(Debug, Clone)]
pub struct Onboarded {
    /// The Subordinate Statement about it, as the fetch endpoint serves it.
    pub statement: String,
    /// Its trust marks, for its own Entity Configuration's `trust_marks`.
    pub trust_marks: Vec<TrustMark>,
}

/// One `trust_marks` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustMark {
    /// `trust_mark_type` (the package also writes it as `id` and `trust_mark_id`).
    pub trust_mark_type: String,
    /// The signed trust mark (`typ` `trust-mark+jwt`).
    pub trust_mark: String,
}

/// A user of an OP.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Login name at the OP.
    pub username: String,
    /// Password at the OP.
    pub password: String,
    /// What the OP may release, keyed by the claim name a relying party requests: the
    /// package's OP looks each requested claim up by that exact name (UserInfo for both
    /// profiles, and the ID token for CIE). SPID names the fiscal number
    /// `https://attributes.eid.gov.it/fiscal_number`, CIE `fiscal_number`;
    /// [`TestUser::citizen`] sets both.
    pub attributes: Value,
}

impl TestUser {
    /// A citizen with the given fiscal number (`TINIT-…`) and names; email
    /// `<username>@example.invalid`, password `password-<username>`, a birth date and place.
    pub fn citizen(username: &str, fiscal_number: &str, given: &str, family: &str) -> TestUser {
        TestUser {
            username: username.to_owned(),
            password: format!("password-{username}"),
            attributes: json!({
                "https://attributes.eid.gov.it/fiscal_number": fiscal_number,
                "fiscal_number": fiscal_number,
                "given_name": given,
                "family_name": family,
                "email": format!("{username}@example.invalid"),
                "birthdate": "1980-01-01",
                "place_of_birth": "H501",
                "gender": "M",
            }),
        }
    }
}

/// Where the OP sent the browser back: the relying party's `redirect_uri` with its
/// parameters.
#[derive(Debug, Clone)]
pub struct Callback {
    /// The whole URL.
    pub url: String,
    /// `code`.
    pub code: Option<String>,
    /// `state`.
    pub state: Option<String>,
    /// `iss` (RFC 9207).
    pub iss: Option<String>,
    /// `error`, when the OP refused.
    pub error: Option<String>,
    /// Every query parameter.
    pub params: BTreeMap<String, String>,
}

/// Where [`Federation::drive`] stopped.
#[derive(Debug, Clone)]
pub struct Driven {
    /// The last URL: a redirect target at the stop prefix, or the page that was neither the
    /// login nor the consent form.
    pub url: String,
    /// Its status.
    pub status: u16,
    /// Its body (empty for a redirect target, which is not fetched).
    pub body: String,
    /// The query parameters of `url`.
    pub params: BTreeMap<String, String>,
}

/// A running test federation.
pub struct Federation {
    /// The Trust Anchor.
    pub ta: Entity,
    /// The SPID OP, if started.
    pub spid_op: Option<Entity>,
    /// The CIE OP, if started.
    pub cie_op: Option<Entity>,
    /// The reference RP, if started.
    pub rp: Option<Entity>,
    token: String,
    python: PathBuf,
    /// How long [`Federation::start`] took (processes, readiness, onboarding).
    pub startup: Duration,
}

fn peer_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/peers/spidcie")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GET `url`: status and body.
pub fn get(url: &str) -> (u16, String) {
    let mut r = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), body)
}

/// The claims of a compact JWS, unverified (for tests that want to look, not to trust).
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let part = jwt.split('.').nth(1).expect("JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

fn random_token() -> String {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn query_params(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let q = q.split('#').next().unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

struct Spawned {
    entity: Entity,
    ready: mpsc::Receiver<String>,
}

fn spawn(
    python: &Path,
    role: &str,
    port: u16,
    entity_id: &str,
    dir: &Path,
    env: &[(&str, String)],
) -> Spawned {
    let state = dir.join(role);
    let template = python
        .parent()
        .and_then(Path::parent)
        .expect("venv dir")
        .join("varco-peer-db");
    let log = dir.join(format!("{role}.log"));
    let mut cmd = Command::new(python);
    cmd.arg(peer_dir().join("serve.py"))
        .arg(role)
        .arg(port.to_string())
        .arg(entity_id)
        .arg(&state)
        .arg(&template)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).expect("log file"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let stdout = child.stdout.take().expect("stdout");
    let (tx, ready) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    Spawned {
        entity: Entity {
            entity_id: entity_id.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            stdin: child.stdin.take(),
            child,
            log,
        },
        ready,
    }
}

impl Spawned {
    /// Waits for `READY` on its stdout (printed once its socket is bound and its own
    /// configuration written), then checks that it serves that configuration.
    fn wait(self) -> Entity {
        let line = self.ready.recv_timeout(START_LIMIT).unwrap_or_default();
        let e = self.entity;
        assert!(
            line.starts_with("READY "),
            "spid-cie-oidc {} did not start:\n{}",
            e.entity_id,
            e.log()
        );
        let (status, body) = get(&e.configuration_url());
        assert_eq!(
            status,
            200,
            "{}: {body}\n{}",
            e.configuration_url(),
            e.log()
        );
        e
    }
}

impl Federation {
    /// Starts a federation: ports from [`free_port`], one process per entity, all started
    /// at once; returns when every entity serves its configuration and the OPs (and the
    /// reference RP) are onboarded with their trust marks.
    pub fn start(opts: TaOptions) -> Federation {
        let t0 = Instant::now();
        let python = crate::python::python("spidcie");
        let dir = fresh_dir("spidcie");
        let token = random_token();
        let ta_port = free_port();
        let ta_id = format!("http://127.0.0.1:{ta_port}");
        let required = if opts.require_rp_trust_mark {
            format!("{ta_id}/openid_relying_party/public")
        } else {
            String::new()
        };
        let common = |extra: Vec<(&'static str, String)>| {
            let mut env = vec![
                ("VARCO_PEER_TOKEN", token.clone()),
                ("VARCO_PEER_TA", ta_id.clone()),
                ("VARCO_PEER_REQUIRED_TRUST_MARKS", required.clone()),
            ];
            env.extend(extra);
            env
        };
        let ta = spawn(&python, "ta", ta_port, &ta_id, &dir, &common(vec![]));
        let op = |on: bool, role: &str| {
            on.then(|| {
                let port = free_port();
                let id = format!("http://127.0.0.1:{port}/oidc/op");
                spawn(&python, role, port, &id, &dir, &common(vec![]))
            })
        };
        let spid = op(opts.spid_op, "spid-op");
        let cie = op(opts.cie_op, "cie-op");
        let rp = opts.reference_rp.then(|| {
            let port = free_port();
            let id = format!("http://127.0.0.1:{port}/oidc/rp");
            let mut ops = Vec::new();
            if let Some(s) = &spid {
                ops.push(format!("spid={}", s.entity.entity_id));
            }
            if let Some(c) = &cie {
                ops.push(format!("cie={}", c.entity.entity_id));
            }
            spawn(
                &python,
                "rp",
                port,
                &id,
                &dir,
                &common(vec![("VARCO_PEER_OPS", ops.join(" "))]),
            )
        });
        let fed = Federation {
            ta: ta.wait(),
            spid_op: spid.map(Spawned::wait),
            cie_op: cie.map(Spawned::wait),
            rp: rp.map(Spawned::wait),
            token,
            python,
            startup: Duration::ZERO,
        };
        for (e, kind) in [
            (&fed.spid_op, "openid_provider"),
            (&fed.cie_op, "openid_provider"),
            (&fed.rp, "openid_relying_party"),
        ] {
            if let Some(e) = e {
                let on = fed.onboard(e.entity_id(), kind, None);
                fed.set_trust_marks(e, &on.trust_marks);
            }
        }
        Federation {
            startup: t0.elapsed(),
            ..fed
        }
    }

    /// One federation with both OPs and the reference RP for the whole test binary, started
    /// on first use. Its processes end when the test binary exits.
    pub fn shared() -> &'static Federation {
        static SHARED: OnceLock<Federation> = OnceLock::new();
        SHARED.get_or_init(|| {
            Federation::start(TaOptions {
                reference_rp: true,
                ..TaOptions::default()
            })
        })
    }

    /// The Trust Anchor's Entity Identifier.
    pub fn ta_id(&self) -> &str {
        self.ta.entity_id()
    }

    /// An OP; panics when it was not started.
    pub fn op(&self, p: Profile) -> &Entity {
        match p {
            Profile::Spid => self.spid_op.as_ref(),
            Profile::Cie => self.cie_op.as_ref(),
        }
        .unwrap_or_else(|| panic!("{p:?} OP not started (TaOptions)"))
    }

    /// The anchor's Entity Configuration (compact JWS), as served.
    pub fn ta_configuration(&self) -> String {
        let (status, body) = get(&self.ta.configuration_url());
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The anchor's Federation Entity Keys (`{"keys": [...]}`), read from its configuration:
    /// what an operator copies into the relying party's Trust Anchor setting.
    pub fn ta_jwks(&self) -> Value {
        jwt_claims(&self.ta_configuration())["jwks"].clone()
    }

    /// The anchor's Subordinate Statement about `sub`, from its fetch endpoint.
    pub fn subordinate_statement(&self, sub: &str) -> String {
        let url = format!(
            "{}/fetch?{}",
            self.ta_id(),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("sub", sub)
                .finish()
        );
        let (status, body) = get(&url);
        assert_eq!(status, 200, "{url}: {body}");
        body
    }

    /// The trust mark type the anchor gives relying parties.
    pub fn rp_trust_mark_type(&self) -> String {
        format!("{}/openid_relying_party/public", self.ta_id())
    }

    /// Onboards a relying party: the anchor records `rp_entity_id` as its subordinate with
    /// the keys `jwks` (`{"keys": [...]}`), or, when `None`, with the keys of the RP's own
    /// Entity Configuration, fetched now from `<rp_entity_id>/.well-known/openid-federation`
    /// (its self-signature checked), so the RP must be serving it. Onboarding again replaces
    /// the entry. Returns the statement and the trust mark for the RP's configuration.
    pub fn onboard_rp(&self, rp_entity_id: &str, jwks: Option<&Value>) -> Onboarded {
        self.onboard(rp_entity_id, "openid_relying_party", jwks)
    }

    /// Onboards any entity type (`openid_relying_party`, `openid_provider`).
    pub fn onboard(&self, sub: &str, entity_type: &str, jwks: Option<&Value>) -> Onboarded {
        let mut body = json!({ "sub": sub, "type": entity_type });
        if let Some(j) = jwks {
            body["jwks"] = j.clone();
        }
        let r = self.control(&self.ta, "descendant", &body);
        Onboarded {
            statement: r["statement"].as_str().expect("statement").to_owned(),
            trust_marks: r["trust_marks"]
                .as_array()
                .expect("trust_marks")
                .iter()
                .map(|m| TrustMark {
                    trust_mark_type: m["trust_mark_type"].as_str().expect("type").to_owned(),
                    trust_mark: m["trust_mark"].as_str().expect("trust_mark").to_owned(),
                })
                .collect(),
        }
    }

    /// Adds (or replaces) a user of an OP.
    pub fn add_user(&self, op: Profile, user: &TestUser) {
        self.control(
            self.op(op),
            "user",
            &json!({
                "username": user.username,
                "password": user.password,
                "attributes": user.attributes,
            }),
        );
    }

    /// Plays `user` at the OP from `authorization_url` (the URL a relying party sent the
    /// browser to) up to the redirect to `redirect_uri`, which is not followed: the login
    /// form, then the consent form, with the OP's cookies only. Panics if the OP answers
    /// anything else (its log is in the message); an error redirect to `redirect_uri` is a
    /// [`Callback`] with `error` set.
    pub fn login(&self, authorization_url: &str, user: &TestUser, redirect_uri: &str) -> Callback {
        let d = self
            .drive(authorization_url, user, Some(redirect_uri))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.logs()));
        assert!(
            d.url.starts_with(redirect_uri),
            "the OP did not send the browser back to {redirect_uri}: {} ({})\n{}",
            d.url,
            d.status,
            d.body
        );
        Callback {
            code: d.params.get("code").cloned(),
            state: d.params.get("state").cloned(),
            iss: d.params.get("iss").cloned(),
            error: d.params.get("error").cloned(),
            params: d.params,
            url: d.url,
        }
    }

    /// Follows redirects from `start_url` with one cookie jar, fills the OP's login and
    /// consent forms, and stops at a redirect to `stop` (not fetched) or at the first other
    /// page. From a reference RP URL this is a whole login. `Err` holds what the last server
    /// answered (a refused request, a wrong password).
    pub fn drive(
        &self,
        start_url: &str,
        user: &TestUser,
        stop: Option<&str>,
    ) -> Result<Driven, String> {
        let mut cmd = Command::new(&self.python);
        cmd.arg(peer_dir().join("drive.py"))
            .arg(start_url)
            .arg(&user.username)
            .arg(&user.password);
        if let Some(s) = stop {
            cmd.arg(s);
        }
        let out = cmd.output().expect("python");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let v: Value = serde_json::from_slice(&out.stdout).expect("drive.py JSON");
        let url = v["url"].as_str().unwrap_or_default().to_owned();
        Ok(Driven {
            params: query_params(&url),
            status: v["status"].as_u64().unwrap_or(0) as u16,
            body: v["body"].as_str().unwrap_or_default().to_owned(),
            url,
        })
    }

    /// Replaces the `trust_marks` of one of the federation's own entities (an OP, the
    /// reference RP) in its Entity Configuration.
    pub fn set_trust_marks(&self, e: &Entity, marks: &[TrustMark]) {
        let marks: Vec<Value> = marks
            .iter()
            .map(|m| {
                // The package's own shape: the type under all three names it reads.
                json!({
                    "trust_mark_type": m.trust_mark_type,
                    "id": m.trust_mark_type,
                    "trust_mark_id": m.trust_mark_type,
                    "trust_mark": m.trust_mark,
                })
            })
            .collect();
        self.control(e, "trust_marks", &json!({ "trust_marks": marks }));
    }

    /// Every entity's log, for a failing test's message.
    pub fn logs(&self) -> String {
        [
            Some(&self.ta),
            self.spid_op.as_ref(),
            self.cie_op.as_ref(),
            self.rp.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|e| format!("--- {} ---\n{}", e.entity_id(), e.log()))
        .collect()
    }

    /// Has `e` (an OP or the reference RP) build the trust chain of `sub` to the anchor
    /// afresh, with the package's own discovery, verification and metadata policy, as an OP
    /// does for an unknown RP's first authorization request. `Ok` holds what the package
    /// stored (`status`, `metadata`, `exp`, `parties_involved`, `trust_marks`); `Err` its
    /// refusal, with the entity's log.
    pub fn resolve_at(&self, e: &Entity, sub: &str) -> Result<Value, String> {
        self.try_control(e, "resolve", &json!({ "sub": sub }))
    }

    fn control(&self, e: &Entity, what: &str, body: &Value) -> Value {
        self.try_control(e, what, body)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    fn try_control(&self, e: &Entity, what: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}/__varco_peer__/{what}", e.base_url());
        let mut r = agent()
            .post(&url)
            .header("Authorization", &format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|err| panic!("POST {url}: {err}"));
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        if status != 200 {
            return Err(format!("POST {url}: {status} {text}\n{}", e.log()));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}
