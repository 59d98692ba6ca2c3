//! The PostgreSQL audit sink against a real PostgreSQL (the Debian `postgresql` package,
//! which `make test` installs): a throwaway cluster in a temporary directory, reached over a
//! Unix socket there, stopped at the end. Concurrent appends form one verifiable chain per
//! writer; edited, deleted and reordered rows are caught; a second process claiming the same
//! writer name cannot fork the chain; a stopped database fails appends closed, and the sink
//! recovers when it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::audit::AuditError;
use broker::audit::chain::ChainError;
use broker::audit::postgres::{PgOptions, PgSink, verify};

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

/// Runs a PostgreSQL tool; as root, as the `postgres` user (the server refuses root).
fn run_pg(name: &str, args: &[&str]) {
    let bin = pg_bin(name);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let out = cmd
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{} ({e}): make test installs postgresql", bin.display()));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway cluster listening only on a Unix socket in its own directory.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn start(label: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("varco-pg-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres", dir.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let data = dir.join("data");
        run_pg(
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
        let c = Cluster { dir };
        c.pg_ctl("start");
        c
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!("-k {} -c listen_addresses=''", self.dir.display());
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-w",
            "-l",
            log.to_str().unwrap(),
        ];
        match action {
            "start" => args.extend(["-o", &options, "start"]),
            _ => args.extend(["-m", "immediate", "stop"]),
        }
        run_pg("pg_ctl", &args);
    }

    fn url(&self) -> String {
        format!("host={} user=postgres dbname=postgres", self.dir.display())
    }

    async fn sql(&self, statement: &str) {
        let (client, conn) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client.batch_execute(statement).await.unwrap();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(pg_bin("pg_ctl"));
            c
        } else {
            Command::new(pg_bin("pg_ctl"))
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
}

fn options(cluster: &Cluster, writer: &str) -> PgOptions {
    PgOptions {
        url: cluster.url(),
        writer: writer.into(),
        key: None,
    }
}

/// `varco audit verify --postgres URL`: exit code and stdout.
fn cli_verify(cluster: &Cluster) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_varco"))
        .args(["audit", "verify", "--postgres", &cluster.url()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn verdict(cluster: &Cluster, writer: &str) -> Result<u64, ChainError> {
    let chains = verify(&cluster.url(), None).await.unwrap();
    let (_, v) = chains.into_iter().find(|(w, _)| w == writer).unwrap();
    v.map(|v| v.records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_chains_verify_and_tampering_is_caught() {
    let cluster = Cluster::start("chain");
    let sink = Arc::new(
        PgSink::connect(&options(&cluster, "replica-a"), now())
            .await
            .unwrap(),
    );
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let s = sink.clone();
            tokio::spawn(async move {
                s.append(
                    now(),
                    format!("{{\"kind\":\"login\",\"i\":{i}}}").into_bytes(),
                )
                .await
                .unwrap()
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for t in tasks {
        seqs.push(t.await.unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    // A second replica has its own chain in the same table.
    let other = PgSink::connect(&options(&cluster, "replica-b"), now())
        .await
        .unwrap();
    assert_eq!(other.append(now(), b"{}".to_vec()).await, Ok(1));
    assert_eq!(verdict(&cluster, "replica-a").await, Ok(101));
    assert_eq!(verdict(&cluster, "replica-b").await, Ok(2));

    // A second process claiming the same writer name cannot fork the chain: its first insert
    // collides with the rows the first one writes.
    let twin = PgSink::connect(&options(&cluster, "replica-a"), now())
        .await
        .unwrap();
    assert_eq!(sink.append(now(), b"{}".to_vec()).await, Ok(101));
    assert_eq!(
        twin.append(now(), b"{}".to_vec()).await,
        Err(AuditError::Unavailable)
    );
    assert_eq!(verdict(&cluster, "replica-a").await, Ok(102));
    let (code, out) = cli_verify(&cluster);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: writer replica-a: 102 records"), "{out}");
    assert!(out.contains("ok: writer replica-b: 2 records"), "{out}");

    let w = "writer = 'replica-a'";
    // Edit a record.
    cluster
        .sql(&format!(
            "UPDATE varco_audit SET line = replace(line, '\"kind\":\"login\"', '\"kind\":\"lagin\"') WHERE {w} AND seq = 7"
        ))
        .await;
    assert_eq!(
        verdict(&cluster, "replica-a").await.unwrap_err().code(),
        "audit_record_altered"
    );
    cluster
        .sql(&format!(
            "UPDATE varco_audit SET line = replace(line, '\"kind\":\"lagin\"', '\"kind\":\"login\"') WHERE {w} AND seq = 7"
        ))
        .await;
    assert_eq!(verdict(&cluster, "replica-a").await, Ok(102));
    // Reorder two rows (swap their seq keys).
    cluster
        .sql(&format!(
            "UPDATE varco_audit SET seq = -1 WHERE {w} AND seq = 10; \
             UPDATE varco_audit SET seq = 10 WHERE {w} AND seq = 11; \
             UPDATE varco_audit SET seq = 11 WHERE {w} AND seq = -1"
        ))
        .await;
    assert_eq!(
        verdict(&cluster, "replica-a").await.unwrap_err().code(),
        "audit_record_missing"
    );
    let (code, out) = cli_verify(&cluster);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED writer replica-a: audit_record_missing"),
        "{out}"
    );
    // Delete a record.
    cluster
        .sql(&format!("DELETE FROM varco_audit WHERE {w} AND seq = 20"))
        .await;
    assert!(verdict(&cluster, "replica-a").await.is_err());
    // Delete the genesis only (on the untouched chain).
    cluster
        .sql("DELETE FROM varco_audit WHERE writer = 'replica-b' AND seq = 0")
        .await;
    assert_eq!(
        verdict(&cluster, "replica-b").await.unwrap_err().code(),
        "audit_record_missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_fails_appends_closed_and_the_sink_recovers() {
    let cluster = Cluster::start("down");
    let sink = PgSink::connect(&options(&cluster, "r"), now())
        .await
        .unwrap();
    assert_eq!(sink.append(now(), b"{}".to_vec()).await, Ok(1));
    cluster.pg_ctl("stop");
    assert_eq!(
        sink.append(now(), b"{}".to_vec()).await,
        Err(AuditError::Unavailable)
    );
    cluster.pg_ctl("start");
    // The writer reconnects and re-reads its tail before the next batch.
    assert_eq!(sink.append(now(), b"{}".to_vec()).await, Ok(2));
    assert_eq!(verdict(&cluster, "r").await, Ok(3));
}
