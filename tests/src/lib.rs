//! Harness for the black-box suite: start the built `varco` and `varco-dev-idp` binaries on
//! free loopback ports with generated configuration, and drive them like a browser (a cookie
//! jar, no automatic redirects), with nginx in front where a test needs it ([`nginx`]).
//! Nothing here links Varco's crates.

// Test harness: failing loudly with context is its job.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub mod nginx;
pub mod stack;

/// The workspace's target directory (CARGO_TARGET_DIR or `<workspace>/target`).
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// Path of a built binary of the workspace (debug profile). `make test` builds them first.
pub fn binary(name: &str) -> PathBuf {
    let path = target_dir().join("debug").join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// A fresh, unique scratch directory.
pub fn scratch(label: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "varco-e2e-{label}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Loopback ports for the stacks: below the kernel's ephemeral range, never one twice.
pub use testkit::free_port;

/// A child process killed when dropped; its stderr is kept in a file for diagnosis.
pub struct Process {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` with `args`, stderr to `<dir>/<name>.log`.
    pub fn start(name: &str, binary: &Path, args: &[&str], dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Process {
            child,
            name: name.into(),
            log,
        }
    }

    /// Kills the process at once (SIGKILL on Unix), as a crash would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM (with the system's `kill`), as an orchestrator stopping it would.
    pub fn terminate(&mut self) {
        let st = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success(), "kill -TERM {}", self.name);
    }

    /// Sends SIGHUP (with the system's `kill`), as `systemctl reload` or an operator would.
    pub fn hangup(&mut self) {
        let st = Command::new("kill")
            .arg("-HUP")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success(), "kill -HUP {}", self.name);
    }

    /// Waits up to `limit` for the process to exit; its status, if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// What the process wrote on stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `url` answers 200, or panics with the process log.
    pub fn wait_ready(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let agent = agent();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if let Ok(r) = agent.get(url).call() {
                if r.status() == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} not ready at {url}:\n{}", self.name, self.log());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .max_redirects(0)
        .max_redirects_will_error(false)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// An HTTP response, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, lower-case names, in order.
    pub headers: Vec<(String, String)>,
    /// Body as text.
    pub body: String,
}

impl Reply {
    /// The first header with this (lower-case) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A browser: a cookie jar (name → value, no domain or path logic: one test, one site pair)
/// and no automatic redirects, so each hop is visible.
pub struct Browser {
    agent: ureq::Agent,
    /// Cookies by name.
    pub cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            agent: agent(),
            cookies: BTreeMap::new(),
        }
    }
}

impl Browser {
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Reply {
        self.try_finish(r).expect("HTTP request failed")
    }

    fn try_finish(
        &mut self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Option<Reply> {
        let mut r = r.ok()?;
        let headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        for (k, v) in &headers {
            if k == "set-cookie" {
                if let Some((name, rest)) = v.split_once('=') {
                    let value = rest.split(';').next().unwrap_or("");
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        let mut body = String::new();
        // A body cut short still leaves the status and headers the browser acted on.
        let _ = r.body_mut().as_reader().read_to_string(&mut body);
        Some(Reply {
            status: r.status().as_u16(),
            headers,
            body,
        })
    }

    /// GET with the jar's cookies.
    pub fn get(&mut self, url: &str) -> Reply {
        self.get_with(url, &[])
    }

    /// GET with the jar's cookies and extra request headers.
    pub fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(url);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.call();
        self.finish(r)
    }

    /// POST an `application/x-www-form-urlencoded` form with the jar's cookies.
    pub fn post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(url);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        let r = req.send_form(fields.iter().copied());
        self.finish(r)
    }

    /// [`Browser::get`], `None` when the connection or the read fails (a killed server).
    pub fn try_get(&mut self, url: &str) -> Option<Reply> {
        let mut req = self.agent.get(url);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        let r = req.call();
        self.try_finish(r)
    }

    /// [`Browser::post_form`], `None` when the connection or the read fails.
    pub fn try_post_form(&mut self, url: &str, fields: &[(&str, &str)]) -> Option<Reply> {
        let mut req = self.agent.post(url);
        if !self.cookies.is_empty() {
            req = req.header("Cookie", &self.cookie_header());
        }
        let r = req.send_form(fields.iter().copied());
        self.try_finish(r)
    }
}

/// The value of the `<input ... name="NAME" value="...">` in an HTML page (HTML entities of
/// the form Varco and the demo IdP write are decoded).
pub fn form_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker)?;
    let tag_start = html[..at].rfind('<')?;
    let tag_end = at + html[at..].find('>')?;
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"")? + 7;
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

/// The `action` of the first form in an HTML page.
pub fn form_action(html: &str) -> Option<String> {
    let form = html.find("<form")?;
    let a = html[form..].find("action=\"")? + form + 8;
    let end = html[a..].find('"')? + a;
    Some(unescape(&html[a..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&#47;", "/")
        .replace("&amp;", "&")
}

/// Writes a fresh self-signed RSA-2048 SP key and certificate (`sp.key.pem`, `sp.crt.pem`)
/// and a session key (`session.key`) into `dir`, with the real `openssl`.
pub fn sp_credentials(dir: &Path, common_name: &str) {
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "365",
        ])
        .arg("-subj")
        .arg(format!("/CN={common_name}"))
        .arg("-keyout")
        .arg(dir.join("sp.key.pem"))
        .arg("-out")
        .arg(dir.join("sp.crt.pem"))
        .output()
        .expect("openssl (make test installs it)");
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.join("session.key"), "ab".repeat(32)).expect("session key");
}

/// The values of header `name` (case-insensitive) in an HTTP request or response head given
/// as text, one `Name: value` per line (what the test portals echo back).
pub fn header_values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .collect()
}
