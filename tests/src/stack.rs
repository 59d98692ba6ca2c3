//! A running login stack: `varco` with two demo identity providers, one registered in the
//! SPID federation and one as the eIDAS node (FICEP), wired to trust each other; and the
//! steps of a browser login through them.

use std::path::Path;

use crate::{Browser, Process, Reply, binary, form_action, form_input, free_port, scratch};

/// Varco and the demo IdPs.
pub struct Stack {
    /// Varco's base URL (where it listens).
    pub varco: String,
    /// Varco's management listener (`/metrics`, the probes).
    pub management: String,
    /// The public base URL browsers use (Varco's own, or a proxy's in front of it).
    pub public: String,
    /// The SPID demo IdP's base URL (its entity ID).
    pub idp: String,
    /// The eIDAS demo IdP's base URL (its entity ID).
    pub eidas_idp: String,
    /// The scratch directory holding the configuration and keys.
    pub dir: std::path::PathBuf,
    _procs: Vec<Process>,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn start_idp(dir: &Path, name: &str, varco: &str) -> (String, Process) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let state = dir.join(name);
    let mut p = Process::start(
        name,
        &binary("varco-dev-idp"),
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--base-url",
            &base,
            "--state-dir",
            state.to_str().unwrap(),
            "--sp-metadata",
            &format!("{varco}/saml/metadata"),
        ],
        dir,
    );
    p.wait_ready(&format!("{base}/metadata"));
    let metadata = Browser::default().get(&format!("{base}/metadata")).body;
    write(&dir.join(format!("{name}-metadata.xml")), &metadata);
    (base, p)
}

impl Stack {
    /// The stack with the default configuration.
    pub fn start() -> Stack {
        Stack::start_with("")
    }

    /// The stack with `extra` TOML appended to Varco's configuration (routes, token keys…).
    pub fn start_with(extra: &str) -> Stack {
        Stack::start_public(None, extra)
    }

    /// The stack with Varco behind a proxy at `public` (its `server.public_base_url`), or
    /// reached directly when `None`.
    pub fn start_public(public: Option<&str>, extra: &str) -> Stack {
        let dir = scratch("stack");
        let vport = free_port();
        let varco = format!("http://127.0.0.1:{vport}");
        let mport = free_port();
        let management = format!("http://127.0.0.1:{mport}");
        let public = public.map_or_else(|| varco.clone(), str::to_owned);
        let (idp, idp_proc) = start_idp(&dir, "idp", &varco);
        let (eidas_idp, eidas_proc) = start_idp(&dir, "eidas-idp", &varco);

        crate::sp_credentials(&dir, "varco-e2e");
        write(
            &dir.join("varco.toml"),
            &format!(
                "[server]\nlisten = \"127.0.0.1:{vport}\"\npublic_base_url = \"{public}\"\n\
                 management_listen = \"127.0.0.1:{mport}\"\n\
                 [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
                 [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
                 url = \"https://www.example.org\"\nipa_code = \"c_h501\"\n\
                 email = \"spid@example.org\"\nphone = \"+390600000000\"\n\
                 [session]\nkey_file = \"session.key\"\ncookie_secure = false\n\
                 [[idp]]\nmetadata_file = \"idp-metadata.xml\"\n\
                 [[idp]]\nmetadata_file = \"eidas-idp-metadata.xml\"\nfederation = \"eidas\"\n\
                 {extra}\n"
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
            management,
            public,
            idp,
            eidas_idp,
            dir,
            _procs: vec![idp_proc, eidas_proc, varco_proc],
        }
    }

    /// `/saml/login` at the SPID demo IdP.
    pub fn login_url(&self, level: u8, return_to: &str) -> String {
        self.login_url_at(&self.idp, level, return_to)
    }

    /// `/saml/login` at a given IdP.
    pub fn login_url_at(&self, idp: &str, level: u8, return_to: &str) -> String {
        format!(
            "{}/saml/login?idp={}&level={level}&return_to={}",
            self.varco,
            pct(idp),
            pct(return_to)
        )
    }

    /// The Varco process.
    pub fn varco_process(&mut self) -> &mut Process {
        self._procs
            .last_mut()
            .expect("varco is started with the stack")
    }

    /// What Varco wrote on stderr so far (its JSON log).
    pub fn varco_log(&self) -> String {
        self._procs.last().map(Process::log).unwrap_or_default()
    }

    /// `GET /whoami`.
    pub fn whoami(&self, b: &mut Browser) -> Reply {
        b.get(&format!("{}/whoami", self.varco))
    }
}

/// Percent-encodes every byte outside unreserved characters.
pub fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Follows a login from a `/saml/login` URL up to the IdP's answer: the auto-POST page
/// carrying the Response.
pub fn idp_answer_from(b: &mut Browser, login_url: &str, fields: &[(&str, &str)]) -> Reply {
    let start = b.get(login_url);
    assert_eq!(start.status, 302, "{}", start.body);
    let location = start.header("location").unwrap().to_owned();
    assert!(location.contains("/sso?SAMLRequest="), "{location}");
    assert!(location.contains("&SigAlg=") && location.contains("&Signature="));
    assert!(b.cookies.contains_key("varco_login"));
    let idp_base = location.split("/sso?").next().unwrap().to_owned();

    let page = b.get(&location);
    assert_eq!(page.status, 200, "{}", page.body);
    let state = form_input(&page.body, "state").expect("state field");
    let mut form = vec![("state", state.as_str())];
    form.extend_from_slice(fields);
    let answer = b.post_form(&format!("{idp_base}/login"), &form);
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer
}

/// Posts the IdP's auto-POST form to the ACS, as the browser's script would.
pub fn post_to_acs(b: &mut Browser, answer: &Reply) -> Reply {
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

/// Follows a chain of GET redirects (302/303, as the HTTP-Redirect binding uses) from `url`,
/// and returns every reply in order; relative locations resolve against the last origin.
/// At most 10 hops.
pub fn follow(b: &mut Browser, url: &str) -> Vec<Reply> {
    let mut replies = Vec::new();
    let mut next = url.to_owned();
    for _ in 0..10 {
        let r = b.get(&next);
        let location = r.header("location").map(str::to_owned);
        let status = r.status;
        replies.push(r);
        match location {
            Some(l) if matches!(status, 301 | 302 | 303 | 307) => {
                next = if l.starts_with('/') {
                    let origin_end = next
                        .find("://")
                        .and_then(|i| next[i + 3..].find('/').map(|j| i + 3 + j))
                        .unwrap_or(next.len());
                    format!("{}{l}", &next[..origin_end])
                } else {
                    l
                };
            }
            _ => break,
        }
    }
    replies
}
