//! `redis-server` on a Unix socket: no TCP port, no persistence.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` on a Unix socket in its own directory, killed (and the directory
/// removed) when dropped. [`Redis::stop`] and [`Redis::restart`] let a test take it away
/// and bring it back.
pub struct Redis {
    dir: PathBuf,
    child: Option<Child>,
}

impl Redis {
    /// Starts a server in a fresh directory named after `label`.
    pub fn start(label: &str) -> Redis {
        let mut r = Redis {
            dir: crate::scratch::fresh_dir(&format!("redis-{label}")),
            child: None,
        };
        r.restart();
        r
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
