//! The system under load: the built `varco` and `varco-dev-idp` started on free loopback
//! ports, with keys made by `openssl` in a scratch directory, and what `/proc` says of
//! Varco's process.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start the stack.
pub(crate) struct StackOptions {
    /// Directory of the built binaries.
    pub(crate) bin_dir: PathBuf,
    /// `taskset -c` list for Varco, if pinned.
    pub(crate) varco_cpus: Option<String>,
    /// `taskset -c` list for the demo IdP, if pinned.
    pub(crate) idp_cpus: Option<String>,
    /// `on` (chain in the work directory), `off`, or a directory for the chain.
    pub(crate) audit: String,
    /// `audit.commit_interval_us`, when not the default.
    pub(crate) commit_interval_us: Option<u64>,
    /// `admission.heavy_nice`, when not the default.
    pub(crate) heavy_nice: Option<u32>,
    /// `admission.heavy_queue`, when not the default.
    pub(crate) heavy_queue: Option<u32>,
    /// The IdP's signing key: `rsa2048` (as SPID IdPs) or `p256` (the demo IdP's default).
    pub(crate) idp_key: String,
    /// Keep the work directory at exit.
    pub(crate) keep: bool,
    /// Run Varco under `valgrind --tool=callgrind` with instrumentation off until
    /// [`Stack::callgrind`] turns it on; the profile goes to this file.
    pub(crate) callgrind: Option<PathBuf>,
    /// Protect `/` with a route at level 2 (what `/auth` checks), as `scripts/load-auth.sh`.
    pub(crate) route: bool,
}

/// Varco and the demo IdP, killed when dropped.
pub(crate) struct Stack {
    /// Varco's `host:port`.
    pub(crate) varco: String,
    /// The demo IdP's base URL (its entityID).
    pub(crate) idp: String,
    /// Varco's management listener `host:port` (`/metrics` is not on the public one).
    management: String,
    /// Varco's SP entityID.
    pub(crate) sp_entity_id: String,
    /// The scratch directory.
    pub(crate) dir: PathBuf,
    /// The audit chain's directory when `--audit DIR` put it outside the scratch directory
    /// (removed with it: a run in /dev/shm leaves hundreds of megabytes of memory otherwise).
    audit_dir: Option<PathBuf>,
    children: Vec<Child>,
    keep: bool,
    callgrind: bool,
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn spawn(
    cpus: Option<&str>,
    callgrind: Option<&Path>,
    bin: &Path,
    args: &[&str],
    log: &Path,
) -> Result<Child, String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut cmd = match (cpus, callgrind) {
        (_, Some(out)) => {
            let mut c = Command::new("valgrind");
            c.args(["--tool=callgrind", "--instr-atstart=no"])
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(bin);
            c
        }
        (Some(list), None) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(list).arg(bin);
            c
        }
        (None, None) => Command::new(bin),
    };
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))
}

impl Stack {
    /// Varco's `/metrics` page, and a reader of one series' value on it.
    fn metrics(&self) -> Option<impl Fn(String) -> Option<f64>> {
        let (status, body) = get(&format!("http://{}/metrics", self.management)).ok()?;
        if status != 200 {
            return None;
        }
        Some(move |series: String| {
            body.lines()
                .find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok())
        })
    }

    /// The share of a histogram's observations above each of `bounds` (bucket bounds as
    /// Prometheus prints them, e.g. `"0.0025"`), from Varco's `/metrics`.
    pub(crate) fn histogram_over(&self, name: &str, bounds: &[&str]) -> Option<Vec<f64>> {
        let value = self.metrics()?;
        let count = value(format!("{name}_count "))?;
        if count <= 0.0 {
            return None;
        }
        bounds
            .iter()
            .map(|b| {
                value(format!("{name}_bucket{{le=\"{b}\"}} ")).map(|under| 1.0 - under / count)
            })
            .collect()
    }

    /// `name_sum / name_count` of a histogram on Varco's `/metrics`, if it has samples.
    pub(crate) fn histogram_mean(&self, name: &str) -> Option<f64> {
        let value = self.metrics()?;
        let (sum, count) = (
            value(format!("{name}_sum "))?,
            value(format!("{name}_count "))?,
        );
        (count > 0.0).then(|| sum / count)
    }
}

/// Blocking GET of `http://host:port/path` with a fresh connection (startup only).
fn get(url: &str) -> Result<(u16, String), String> {
    use std::io::{Read as _, Write as _};
    let (host, path) = crate::http::split_url(url).ok_or("not an http:// URL")?;
    let mut s = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("bad status line")?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    if text.contains("Transfer-Encoding: chunked") || text.contains("transfer-encoding: chunked") {
        return Err("chunked startup answer not supported".into());
    }
    Ok((status, body))
}

fn wait_ready(url: &str, child: &mut Child, log: &Path) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("{} exited ({st}):\n{text}", log.display()));
        }
        if let Ok((200, body)) = get(url) {
            return Ok(body);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{url} not ready after 120 s"))
}

impl Stack {
    pub(crate) fn start(o: &StackOptions) -> Result<Stack, String> {
        let dir = std::env::temp_dir().join(format!("varco-loadgen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("idp")).map_err(|e| e.to_string())?;
        let mut stack = Stack {
            varco: String::new(),
            management: String::new(),
            idp: String::new(),
            sp_entity_id: String::new(),
            dir: dir.clone(),
            audit_dir: None,
            children: Vec::new(),
            keep: o.keep,
            callgrind: o.callgrind.is_some(),
        };
        let d = |f: &str| dir.join(f).to_string_lossy().into_owned();

        // Keys: Varco's SP pair (RSA-2048, signs every AuthnRequest), the session key, and
        // the IdP's pair (RSA-2048 like SPID IdPs, unless p256 is asked for).
        run(Command::new("openssl").args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=varco-loadgen",
            "-keyout",
            &d("sp.key.pem"),
            "-out",
            &d("sp.crt.pem"),
        ]))?;
        let hex: String = {
            let out = Command::new("openssl")
                .args(["rand", "-hex", "32"])
                .output()
                .map_err(|e| e.to_string())?;
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        };
        std::fs::write(dir.join("session.key"), hex).map_err(|e| e.to_string())?;
        let key_args: &[&str] = match o.idp_key.as_str() {
            "rsa2048" => &["-newkey", "rsa:2048"],
            "p256" => &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
            other => return Err(format!("--idp-key {other}: rsa2048 or p256")),
        };
        let mut req = Command::new("openssl");
        req.args(["req", "-x509"]).args(key_args).args([
            "-nodes",
            "-sha256",
            "-days",
            "2",
            "-subj",
            "/CN=varco-loadgen-idp",
            "-keyout",
            &d("idp/idp-key.pem"),
            "-out",
            &d("idp/idp-cert.pem"),
        ]);
        run(&mut req)?;

        let vport = free_port()?;
        let iport = free_port()?;
        stack.varco = format!("127.0.0.1:{vport}");
        stack.management = format!("127.0.0.1:{}", free_port()?);
        stack.idp = format!("http://127.0.0.1:{iport}");
        let varco_url = format!("http://{}", stack.varco);

        let idp_bin = o.bin_dir.join("varco-dev-idp");
        let idp_log = dir.join("idp.log");
        let mut idp = spawn(
            o.idp_cpus.as_deref(),
            None,
            &idp_bin,
            &[
                "--listen",
                &format!("127.0.0.1:{iport}"),
                "--base-url",
                &stack.idp,
                "--state-dir",
                &d("idp"),
                "--sp-metadata",
                &format!("{varco_url}/saml/metadata"),
            ],
            &idp_log,
        )?;
        let metadata = wait_ready(&format!("{}/metadata", stack.idp), &mut idp, &idp_log);
        stack.children.push(idp);
        std::fs::write(dir.join("idp-metadata.xml"), metadata?).map_err(|e| e.to_string())?;

        let mut audit = match o.audit.as_str() {
            "on" => "[audit]\n".to_owned(),
            "off" => "[audit]\nenabled = false\n".to_owned(),
            path => {
                let audit_dir = PathBuf::from(path).join(format!("varco-loadgen-{vport}"));
                let line = format!("[audit]\ndir = \"{}\"\n", audit_dir.display());
                stack.audit_dir = Some(audit_dir);
                line
            }
        };
        if let Some(us) = o.commit_interval_us {
            audit.push_str(&format!("commit_interval_us = {us}\n"));
        }
        let mut nice = o
            .heavy_nice
            .map(|n| format!("heavy_nice = {n}\n"))
            .unwrap_or_default();
        if let Some(q) = o.heavy_queue {
            nice.push_str(&format!("heavy_queue = {q}\n"));
        }
        let route = if o.route {
            "[[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\n"
        } else {
            ""
        };
        // Rate limits off (the load must reach the ACS). The store's budgets are the defaults
        // (docs/OPERATIONS.md): they hold 2,000 logins/s of 5-minute Assertions and the
        // sessions of 500 logins/s within the idle window.
        let config = format!(
            "[server]\nlisten = \"{}\"\nmanagement_listen = \"{}\"\n\
             public_base_url = \"{varco_url}\"\n\
             [sp]\nkey_file = \"sp.key.pem\"\ncert_file = \"sp.crt.pem\"\n\
             [sp.organization]\nname = \"Load\"\ndisplay_name = \"Load\"\n\
             url = \"https://www.example.org\"\nipa_code = \"c_h501\"\n\
             email = \"spid@example.org\"\nphone = \"+390600000000\"\n\
             [session]\nkey_file = \"session.key\"\ncookie_secure = false\n\
             [admission]\nclient_per_minute = 0\nglobal_per_second = 0\n{nice}\
             [[idp]]\nmetadata_file = \"idp-metadata.xml\"\n{audit}{route}",
            stack.varco, stack.management
        );
        std::fs::write(dir.join("varco.toml"), config).map_err(|e| e.to_string())?;
        let varco_log = dir.join("varco.log");
        let mut varco = spawn(
            o.varco_cpus.as_deref(),
            o.callgrind.as_deref(),
            &o.bin_dir.join("varco"),
            &["serve", "--config", &d("varco.toml")],
            &varco_log,
        )?;
        let ready = wait_ready(&format!("{varco_url}/healthz"), &mut varco, &varco_log);
        stack.children.push(varco);
        ready?;
        stack.sp_entity_id = format!("{varco_url}/saml/metadata");
        Ok(stack)
    }

    /// Varco's process ID.
    pub(crate) fn varco_pid(&self) -> u32 {
        self.children.last().map_or(0, Child::id)
    }

    /// Whether Varco is still running.
    pub(crate) fn varco_alive(&mut self) -> bool {
        self.children
            .last_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Under callgrind: `callgrind_control ARGS` on Varco's process (`-i on`, `-d`…).
    pub(crate) fn callgrind(&self, args: &[&str]) -> Result<(), String> {
        if self.callgrind {
            run(Command::new("callgrind_control")
                .args(args)
                .arg(self.varco_pid().to_string()))?;
        }
        Ok(())
    }

    /// Varco's log so far.
    pub(crate) fn varco_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("varco.log")).unwrap_or_default()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
            if let Some(audit) = &self.audit_dir {
                let _ = std::fs::remove_dir_all(audit);
            }
        }
    }
}

/// User plus system CPU time of process `pid` so far.
pub(crate) fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

/// CPU time of process `root` and every process below it: each one's own user and system
/// time, and apart, the time of the children they have waited for (`cutime`, `cstime`), so a
/// server's workers and the programs they run and reap (pysaml2 forks `xmlsec1` per
/// signature) are all counted. A process that exits between two readings is counted by its
/// parent's children fields once reaped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TreeCpu {
    /// User + system time of the processes alive in the tree.
    pub(crate) own: Duration,
    /// User + system time of the children they have reaped.
    pub(crate) reaped: Duration,
}

impl TreeCpu {
    /// Both parts together.
    pub(crate) fn total(self) -> Duration {
        self.own + self.reaped
    }

    /// The CPU spent between `earlier` and this reading.
    pub(crate) fn since(self, earlier: TreeCpu) -> TreeCpu {
        TreeCpu {
            own: self.own.saturating_sub(earlier.own),
            reaped: self.reaped.saturating_sub(earlier.reaped),
        }
    }
}

/// [`TreeCpu`] of `root` now; `None` if `root` is gone.
pub(crate) fn tree_cpu_time(root: u32) -> Option<TreeCpu> {
    // (pid, parent, (own ticks, reaped ticks)) of every process readable now.
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(at) = stat.rfind(')') else { continue };
        let f: Vec<&str> = stat[at + 2..].split(' ').collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        // Fields after the name: state 0, ppid 1, utime 11, stime 12, cutime 13, cstime 14.
        let (Some(ppid), Some(u), Some(s), Some(cu), Some(cs)) =
            (num(1), num(11), num(12), num(13), num(14))
        else {
            continue;
        };
        procs.push((pid, ppid as u32, (u + s, cu + cs)));
    }
    let (own, reaped) = tree_ticks(&procs, root)?;
    let secs = |ticks: u64| Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64);
    Some(TreeCpu {
        own: secs(own),
        reaped: secs(reaped),
    })
}

/// The ticks of `root` and its descendants among `(pid, parent, (own, reaped))`, summed
/// field by field; `None` if `root` is not there.
fn tree_ticks(procs: &[(u32, u32, (u64, u64))], root: u32) -> Option<(u64, u64)> {
    procs.iter().find(|p| p.0 == root)?;
    let mut tree = vec![root];
    let mut ticks = (0u64, 0u64);
    while let Some(pid) = tree.pop() {
        for p in procs {
            if p.0 == pid {
                ticks.0 += p.2.0;
                ticks.1 += p.2.1;
            }
            // A pid is its own parent only for the kernel's roots, never below `root`.
            if p.1 == pid && p.0 != pid {
                tree.push(p.0);
            }
        }
    }
    Some(ticks)
}

pub(crate) fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100)
    })
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in bytes.
pub(crate) fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.split_whitespace()
            .next()?
            .parse::<u64>()
            .ok()
            .map(|kb| kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_counts_the_root_and_its_descendants_only() {
        // 1 ← 10 (master) ← 11, 12 (workers) ← 13 (a worker's child); 20 is a sibling.
        let procs = [
            (1, 0, (1000, 9000)),
            (10, 1, (5, 0)),
            (11, 10, (70, 600)),
            (12, 10, (20, 0)),
            (13, 11, (300, 1)),
            (20, 1, (4000, 0)),
        ];
        assert_eq!(tree_ticks(&procs, 10), Some((5 + 70 + 20 + 300, 601)));
        assert_eq!(tree_ticks(&procs, 11), Some((370, 601)));
        assert_eq!(tree_ticks(&procs, 13), Some((300, 1)));
        assert_eq!(tree_ticks(&procs, 99), None);
        // The harness's own process is readable, and a pid that cannot exist is not.
        assert!(tree_cpu_time(std::process::id()).is_some());
        assert!(tree_cpu_time(u32::MAX).is_none());
    }
}
