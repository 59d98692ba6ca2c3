//! `redis-server` on a Unix socket: no TCP port, no persistence; optionally also a loopback
//! port that speaks only TLS and requires a client certificate.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` on a Unix socket in its own directory, killed (and the directory
/// removed) when dropped. [`Redis::stop`] and [`Redis::restart`] let a test take it away
/// and bring it back.
pub struct Redis {
    dir: PathBuf,
    child: Option<Child>,
    /// Server options beyond the socket (the TLS listener).
    extra: Vec<String>,
}

/// The TLS listener of a server started by [`Redis::start_tls`], and the files a client
/// needs (all PEM, in the server's directory).
pub struct RedisTls {
    /// Its loopback port.
    pub port: u16,
    /// The CA that issued the server's certificate (for `localhost` and `127.0.0.1`) and the
    /// client's.
    pub ca_file: PathBuf,
    /// A client certificate the server accepts, and its key.
    pub client_cert: PathBuf,
    /// The key of `client_cert`.
    pub client_key: PathBuf,
    /// A CA that issued nothing here (for the refusal cases).
    pub other_ca_file: PathBuf,
}

impl Redis {
    /// Starts a server in a fresh directory named after `label`.
    pub fn start(label: &str) -> Redis {
        let mut r = Redis {
            dir: crate::scratch::fresh_dir(&format!("redis-{label}")),
            child: None,
            extra: Vec::new(),
        };
        r.restart();
        r
    }

    /// A server that also listens on a loopback port with TLS only (`tls-auth-clients yes`),
    /// its certificates made here by a throwaway CA.
    pub fn start_tls(label: &str) -> (Redis, RedisTls) {
        let dir = crate::scratch::fresh_dir(&format!("redis-{label}"));
        let ca = |name: &str| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            rcgen::CertifiedIssuer::self_signed(params, key).unwrap()
        };
        let (issuer, other) = (ca("varco redis test CA"), ca("unrelated CA"));
        let leaf = |names: Vec<String>| {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
        let (client_cert, client_key) = leaf(vec!["varco".into()]);
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ca_file = write("ca.pem", &issuer.pem());
        let other_ca_file = write("other-ca.pem", &other.pem());
        let server_crt = write("server.crt", &server_cert);
        let server_pem = write("server.key", &server_key);
        let client_cert = write("client.crt", &client_cert);
        let client_key = write("client.key", &client_key);
        let port = crate::free_port();
        let extra = [
            "--bind",
            "127.0.0.1",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            server_crt.to_str().unwrap(),
            "--tls-key-file",
            server_pem.to_str().unwrap(),
            "--tls-ca-cert-file",
            ca_file.to_str().unwrap(),
            "--tls-auth-clients",
            "yes",
        ]
        .map(str::to_owned)
        .to_vec();
        let mut r = Redis {
            dir,
            child: None,
            extra,
        };
        r.restart();
        (
            r,
            RedisTls {
                port,
                ca_file,
                client_cert,
                client_key,
                other_ca_file,
            },
        )
    }

    /// The socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("redis.sock")
    }

    /// The URL Varco's `[store] url` takes.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// (Re)starts the server on the same socket (empty: nothing was persisted) and waits
    /// until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; `make test` installs it)");
        self.child = Some(child);
        // Bounded: 10 s.
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(self.socket()).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not open {}", self.socket().display());
    }

    /// Kills the server (an outage); [`Redis::restart`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
