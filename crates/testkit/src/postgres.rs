//! A throwaway PostgreSQL cluster (Debian's `postgresql` package), on a Unix socket and,
//! optionally, on a loopback port that accepts only TLS.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A PostgreSQL binary: the newest `/usr/lib/postgresql/<version>/bin`, else the PATH.
fn pg_bin(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.into_iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// Runs a PostgreSQL server tool; as root, as the `postgres` user (the server refuses root).
fn run_pg(name: &str, args: &[&str]) -> Output {
    let bin = pg_bin(name);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): make test installs postgresql", bin.display()))
}

fn run_pg_ok(name: &str, args: &[&str]) {
    let out = run_pg(name, args);
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// As root, hands `path` to the `postgres` user (the server runs as it).
fn give_to_postgres(path: &Path) {
    if is_root() {
        let ok = Command::new("chown")
            .args(["postgres:postgres", path.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success(), "chown {}", path.display());
    }
}

/// The TCP listener of a cluster started by [`Postgres::start_tls`].
pub struct PostgresTls {
    /// Its loopback port.
    pub port: u16,
    /// The CA certificate (PEM) that issued the server's certificate for `localhost`.
    pub ca_file: PathBuf,
}

/// A throwaway cluster: `initdb` in its own directory, trust authentication for the
/// `postgres` user, the socket in that directory. Stopped (immediate) and removed on drop.
pub struct Postgres {
    dir: PathBuf,
    /// Server options beyond the socket directory.
    options: String,
}

impl Postgres {
    /// A cluster on a Unix socket only.
    pub fn start(label: &str) -> Postgres {
        let c = Postgres::init(label);
        c.pg_ctl_start();
        c
    }

    /// A cluster whose TCP listener on 127.0.0.1 requires TLS, with a server certificate
    /// for `localhost` issued by a CA made here (the Unix socket stays plain).
    pub fn start_tls(label: &str) -> (Postgres, PostgresTls) {
        let mut c = Postgres::init(label);
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "varco test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let ca_file = c.dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let (crt, pem) = (c.dir.join("server.crt"), c.dir.join("server.key"));
        std::fs::write(&crt, cert.pem()).unwrap();
        std::fs::write(&pem, key.serialize_pem()).unwrap();
        std::fs::write(
            c.dir.join("data/pg_hba.conf"),
            "local all all trust\n\
             hostnossl all all 127.0.0.1/32 reject\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        give_to_postgres(&crt);
        give_to_postgres(&pem);
        let ok = Command::new("chmod")
            .args(["600", pem.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(ok.success());
        let port = crate::free_port();
        c.options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            crt.display(),
            pem.display()
        );
        c.pg_ctl_start();
        (c, PostgresTls { port, ca_file })
    }

    fn init(label: &str) -> Postgres {
        let dir = crate::scratch::fresh_dir(&format!("pg-{label}"));
        give_to_postgres(&dir);
        let data = dir.join("data");
        run_pg_ok(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        Postgres {
            dir,
            options: "-c listen_addresses=''".into(),
        }
    }

    fn pg_ctl_start(&self) {
        let options = format!("-k {} {}", self.dir.display(), self.options);
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        run_pg_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-w",
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// The cluster's directory: its Unix socket (`host=` of a libpq URL), the TLS CA and
    /// server files, `data/` and `server.log`; a test may keep its own files there too.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server (immediate shutdown: an outage as Varco sees it).
    pub fn stop(&self) {
        let data = self.dir.join("data");
        run_pg_ok(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-w",
                "-m",
                "immediate",
                "stop",
            ],
        );
    }

    /// Starts the stopped server again, with the same options and data.
    pub fn restart(&self) {
        self.pg_ctl_start();
    }

    /// A libpq-style URL for the `postgres` user and database over the Unix socket.
    pub fn url(&self) -> String {
        format!("host={} user=postgres dbname=postgres", self.dir.display())
    }

    /// Runs SQL with `psql` (stopping at the first error) and returns its unaligned output.
    pub fn psql(&self, statement: &str) -> String {
        let out = Command::new(pg_bin("psql"))
            .args(["-h", self.dir.to_str().unwrap(), "-U", "postgres", "-d"])
            .args(["postgres", "-v", "ON_ERROR_STOP=1", "-At", "-c", statement])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {statement}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = run_pg(
            "pg_ctl",
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
