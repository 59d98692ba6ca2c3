//! The PostgreSQL audit sink against a real PostgreSQL (the Debian `postgresql` package,
//! which `make test` installs): a throwaway cluster in a temporary directory, reached over a
//! Unix socket there, stopped at the end. Concurrent appends form one verifiable chain per
//! writer; edited, deleted and reordered rows are caught; a second process claiming the same
//! writer name cannot fork the chain; a stopped database fails appends closed, and the sink
//! recovers when it is back; retention prunes old rows under an anchor that keeps the chain
//! verifiable; `varco audit export --postgres` gives an auditor the records of a window and a
//! subject; TLS (`verify-full` with a CA made here, `require`) reaches a server that refuses
//! plain connections, and a wrong CA or a wrong host name is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use broker::features::audit::AuditError;
use broker::features::audit::chain::ChainError;
use broker::features::audit::postgres::{PgOptions, PgSink, Tls, verify};
use testkit::Postgres;

/// The cluster of a test, and SQL through the driver Varco itself uses.
async fn sql(cluster: &Postgres, statement: &str) {
    let (client, conn) = tokio_postgres::connect(&cluster.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(statement).await.unwrap();
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000)
}

fn options(cluster: &Postgres, writer: &str) -> PgOptions {
    PgOptions {
        url: cluster.url(),
        writer: writer.into(),
        key: None,
        tls: Tls::Disable,
        retention: Duration::from_secs(731 * 86_400),
    }
}

/// `varco audit verify --postgres URL`: exit code and stdout.
fn cli_verify(cluster: &Postgres) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_varco"))
        .args(["audit", "verify", "--postgres", &cluster.url()])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

async fn verdict(cluster: &Postgres, writer: &str) -> Result<u64, ChainError> {
    let chains = verify(&cluster.url(), &Tls::Disable, None).await.unwrap();
    let (_, v) = chains.into_iter().find(|(w, _)| w == writer).unwrap();
    v.map(|v| v.records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_chains_verify_and_tampering_is_caught() {
    let cluster = Postgres::start("chain");
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
                .seq
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
    assert_eq!(
        other.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(1)
    );
    assert_eq!(verdict(&cluster, "replica-a").await, Ok(101));
    assert_eq!(verdict(&cluster, "replica-b").await, Ok(2));

    // A second process claiming the same writer name cannot fork the chain: its first insert
    // collides with the rows the first one writes.
    let twin = PgSink::connect(&options(&cluster, "replica-a"), now())
        .await
        .unwrap();
    assert_eq!(
        sink.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(101)
    );
    assert_eq!(
        twin.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Err(AuditError::Unavailable)
    );
    assert_eq!(verdict(&cluster, "replica-a").await, Ok(102));
    let (code, out) = cli_verify(&cluster);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: writer replica-a: 102 records"), "{out}");
    assert!(out.contains("ok: writer replica-b: 2 records"), "{out}");

    let w = "writer = 'replica-a'";
    // Edit a record.
    sql(&cluster, &format!(
            "UPDATE varco_audit SET line = replace(line, '\"kind\":\"login\"', '\"kind\":\"lagin\"') WHERE {w} AND seq = 7"
        ))
        .await;
    assert_eq!(
        verdict(&cluster, "replica-a").await.unwrap_err().code(),
        "audit_record_altered"
    );
    sql(&cluster, &format!(
            "UPDATE varco_audit SET line = replace(line, '\"kind\":\"lagin\"', '\"kind\":\"login\"') WHERE {w} AND seq = 7"
        ))
        .await;
    assert_eq!(verdict(&cluster, "replica-a").await, Ok(102));
    // Reorder two rows (swap their seq keys).
    sql(
        &cluster,
        &format!(
            "UPDATE varco_audit SET seq = -1 WHERE {w} AND seq = 10; \
             UPDATE varco_audit SET seq = 10 WHERE {w} AND seq = 11; \
             UPDATE varco_audit SET seq = 11 WHERE {w} AND seq = -1"
        ),
    )
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
    sql(
        &cluster,
        &format!("DELETE FROM varco_audit WHERE {w} AND seq = 20"),
    )
    .await;
    assert!(verdict(&cluster, "replica-a").await.is_err());
    // Delete the genesis only (on the untouched chain).
    sql(
        &cluster,
        "DELETE FROM varco_audit WHERE writer = 'replica-b' AND seq = 0",
    )
    .await;
    assert_eq!(
        verdict(&cluster, "replica-b").await.unwrap_err().code(),
        "audit_record_missing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_fails_appends_closed_and_the_sink_recovers() {
    let cluster = Postgres::start("down");
    let sink = PgSink::connect(&options(&cluster, "r"), now())
        .await
        .unwrap();
    assert_eq!(
        sink.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(1)
    );
    cluster.stop();
    assert_eq!(
        sink.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Err(AuditError::Unavailable)
    );
    cluster.restart();
    // The writer reconnects and re-reads its tail before the next batch.
    assert_eq!(
        sink.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(2)
    );
    assert_eq!(verdict(&cluster, "r").await, Ok(3));
}

fn day(n: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(n * 86_400 + 3600)
}

/// `varco audit ARGS` with `--postgres URL`: exit code and stdout + stderr.
fn cli(args: &[&str], url: &str) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_varco"))
        .arg("audit")
        .args(args)
        .args(["--postgres", url])
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn count_rows(cluster: &Postgres, writer: &str) -> i64 {
    let client = broker::features::audit::postgres::connect(&cluster.url(), &Tls::Disable)
        .await
        .unwrap();
    client
        .query_one(
            "SELECT count(*) FROM varco_audit WHERE writer = $1",
            &[&writer],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_old_rows_under_an_anchor_and_the_chain_still_verifies() {
    let cluster = Postgres::start("prune");
    let opts = PgOptions {
        retention: Duration::from_secs(10 * 86_400),
        ..options(&cluster, "r")
    };
    let sink = PgSink::connect(&opts, day(100)).await.unwrap();
    for d in [100, 101, 102] {
        sink.append(day(d), b"{\"kind\":\"login\"}".to_vec())
            .await
            .unwrap();
    }
    assert_eq!(count_rows(&cluster, "r").await, 4);
    // Day 120: the first batch of the day is answered, then rows older than 10 days go.
    assert_eq!(
        sink.append(day(120), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(4)
    );
    // The writer is sequential: this answer comes after the pruning pass.
    assert_eq!(
        sink.append(day(120), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(6)
    );
    let chains = verify(&cluster.url(), &Tls::Disable, None).await.unwrap();
    let v = chains[0].1.as_ref().unwrap();
    assert_eq!((v.first_seq, v.last_seq, v.records), (4, 6, 3));
    assert_eq!(count_rows(&cluster, "r").await, 3);
    let (code, out) = cli(&["verify"], &cluster.url());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("ok: writer r: 3 records, seq 4..6"), "{out}");

    // A restart long after prunes at once, before any login; the head (record 6) is kept,
    // so the writer always has a tail to continue from.
    drop(sink);
    let later = PgSink::connect(&opts, day(200)).await.unwrap();
    assert_eq!(
        later.append(day(200), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(8)
    );
    let chains = verify(&cluster.url(), &Tls::Disable, None).await.unwrap();
    let v = chains[0].1.as_ref().unwrap();
    assert_eq!((v.first_seq, v.last_seq), (6, 8));

    // A role kept to SELECT and INSERT records but cannot prune: nothing is appended for
    // it, nothing deleted, and logins are still recorded.
    sql(
        &cluster,
        "CREATE ROLE keeper LOGIN; GRANT SELECT, INSERT ON varco_audit TO keeper",
    )
    .await;
    let keeper = PgOptions {
        url: cluster.url().replace("user=postgres", "user=keeper"),
        ..options(&cluster, "k")
    };
    let k = PgSink::connect(&keeper, day(100)).await.unwrap();
    assert_eq!(
        k.append(day(100), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(1)
    );
    drop(k);
    let k = PgSink::connect(&keeper, day(5000)).await.unwrap();
    assert_eq!(
        k.append(day(5000), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(2)
    );
    assert_eq!(count_rows(&cluster, "k").await, 3);

    // Without its anchor the shortened chain is a missing prefix.
    sql(
        &cluster,
        "DELETE FROM varco_audit WHERE writer = 'r' AND line LIKE '%\"kind\":\"pruned\"%'",
    )
    .await;
    let (code, out) = cli(&["verify"], &cluster.url());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED writer r: audit_record_missing"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_gives_the_records_of_a_window_and_a_subject_and_misplaced_rows_are_caught() {
    let cluster = Postgres::start("export");
    let key_file = cluster.dir().join("audit.key");
    std::fs::write(&key_file, "ab".repeat(32)).unwrap();
    let opts = PgOptions {
        key: Some([0xab; 32]),
        ..options(&cluster, "w1")
    };
    let sink = PgSink::connect(&opts, day(20_000)).await.unwrap();
    // 2024-10-04 and 2024-10-05 (days 20000 and 20001).
    for (d, sub) in [(20_000, "A"), (20_000, "B"), (20_001, "A")] {
        let record = format!("{{\"kind\":\"login\",\"sub\":\"{sub}\",\"d\":{d}}}");
        sink.append(day(d), record.into_bytes()).await.unwrap();
    }
    let key = key_file.to_str().unwrap();
    let export = |extra: &[&str]| {
        let mut args = vec!["export", "--key-file", key];
        args.extend_from_slice(extra);
        cli(&args, &cluster.url())
    };
    let (code, out) = export(&["--from", "2024-10-04", "--to", "2024-10-05"]);
    assert_eq!(code, Some(0), "{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[0]["writer"], "w1");
    assert_eq!(lines[0]["seq"], 1);
    let (_, out) = export(&["--from", "2024-10-04", "--to", "2024-10-04", "--sub", "A"]);
    let subs: Vec<&str> = out.lines().filter(|l| l.starts_with('{')).collect();
    assert_eq!(subs.len(), 1, "{out}");
    assert!(subs[0].contains("\"d\":20000"), "{out}");
    // Encrypted at rest: without the key the export refuses (exit 64), verify still works.
    let (code, out) = cli(
        &["export", "--from", "2024-10-04", "--to", "2024-10-05"],
        &cluster.url(),
    );
    assert_eq!(code, Some(64), "{out}");
    let (code, out) = cli(&["verify", "--key-file", key], &cluster.url());
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("3 decrypted"), "{out}");

    // A row moved to another key, its content untouched.
    sql(
        &cluster,
        "UPDATE varco_audit SET seq = 1000 WHERE writer = 'w1' AND seq = 3",
    )
    .await;
    let (code, out) = cli(&["verify"], &cluster.url());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("FAILED writer w1: audit_record_misplaced"),
        "{out}"
    );
    // Export verifies first: nothing is exported from a broken chain.
    let (code, out) = export(&["--from", "2024-10-04", "--to", "2024-10-05"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(!out.contains("\"sub\""), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_full_reaches_a_tls_only_server_and_a_wrong_ca_or_name_is_refused() {
    let (cluster, tls) = Postgres::start_tls("tls");
    let (port, ca_file) = (tls.port, tls.ca_file);
    let good = Tls::from_config("verify-full", Some(&ca_file)).unwrap();
    let url =
        format!("host=localhost hostaddr=127.0.0.1 port={port} user=postgres dbname=postgres");
    // The server takes only TLS on TCP, and says so on a connection of the client's own.
    let client = broker::features::audit::postgres::connect(&url, &good)
        .await
        .unwrap();
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    let plain = broker::features::audit::postgres::connect(&url, &Tls::Disable).await;
    assert!(
        plain.unwrap_err().contains("no encryption"),
        "plain TCP was accepted"
    );

    // The sink over verify-full: records and verifies.
    let opts = PgOptions {
        url: url.clone(),
        tls: good.clone(),
        ..options(&cluster, "tls")
    };
    let sink = PgSink::connect(&opts, now()).await.unwrap();
    assert_eq!(
        sink.append(now(), b"{}".to_vec()).await.map(|d| d.seq),
        Ok(1)
    );
    let chains = verify(&url, &good, None).await.unwrap();
    assert_eq!(chains[0].1.as_ref().unwrap().records, 2);
    let ca = ca_file.to_str().unwrap();
    let (code, out) = cli(&["verify", "--tls", "verify-full", "--ca-file", ca], &url);
    assert_eq!(code, Some(0), "{out}");

    // `require` encrypts without authenticating the server.
    let client = broker::features::audit::postgres::connect(&url, &Tls::Require).await;
    assert!(client.is_ok(), "{:?}", client.err());

    // A CA that did not issue the server's certificate.
    let other_key = rcgen::KeyPair::generate().unwrap();
    let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let other = other.self_signed(&other_key).unwrap();
    let wrong_ca = cluster.dir().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, other.pem()).unwrap();
    let wrong = Tls::from_config("verify-full", Some(&wrong_ca)).unwrap();
    let refused = broker::features::audit::postgres::connect(&url, &wrong)
        .await
        .unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    let refused = PgSink::connect(
        &PgOptions {
            tls: wrong,
            ..opts.clone()
        },
        now(),
    )
    .await;
    assert!(refused.is_err());
    let (code, out) = cli(
        &[
            "verify",
            "--tls",
            "verify-full",
            "--ca-file",
            wrong_ca.to_str().unwrap(),
        ],
        &url,
    );
    assert_eq!(code, Some(64), "{out}");
    assert!(out.contains("UnknownIssuer"), "{out}");

    // The right CA, but a host name the certificate does not name.
    let by_ip = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");
    let refused = broker::features::audit::postgres::connect(&by_ip, &good)
        .await
        .unwrap_err();
    assert!(refused.contains("not valid for name"), "{refused}");

    // Configuration mistakes are refused before any connection.
    assert!(Tls::from_config("verify-full", None).is_err());
    assert!(Tls::from_config("require", Some(&ca_file)).is_err());
    assert!(Tls::from_config("prefer", None).is_err());
    assert!(Tls::from_config("verify-full", Some(&cluster.dir().join("server.key"))).is_err());
    assert!(broker::features::audit::postgres::check_url(&cluster.url(), &Tls::Require).is_err());
    assert!(broker::features::audit::postgres::check_url(&url, &good).is_ok());
    let asks_tls = format!("{url} sslmode=require");
    assert!(broker::features::audit::postgres::check_url(&asks_tls, &Tls::Disable).is_err());
    assert!(broker::features::audit::postgres::check_url(&asks_tls, &Tls::Require).is_ok());
}
