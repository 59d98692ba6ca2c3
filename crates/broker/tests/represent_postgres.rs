//! The PostgreSQL representation source against a real PostgreSQL (a throwaway cluster, as
//! the audit tests use): the documented table, one row per representation, read per
//! delegate through the same record schema as the signed file; a revoked row stops the
//! representation at the next lookup; another delegate's rows are never read; a malformed
//! row refuses the whole answer; a stopped database fails closed and the source recovers
//! when it is back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use broker::features::audit::postgres::Tls;
use broker::features::represent::{PgSource, RepresentationSource, SourceError};
use identity::represent::{self, Refusal};
use identity::{Mapping, Method, Principal, SPID_L2, normalize};
use testkit::Postgres;

const NOW: u64 = 1_795_000_000;
const DAY: u64 = 86_400;
const DELEGATE: &str = "TINIT-BNCGNN80A01F205W";
const OTHER: &str = "TINIT-RSSMRA85T10A562S";
const ELDER_CF: &str = "VRDLGU60M01L219V";

const SCHEMA: &str = "CREATE TABLE varco_representation (\
    ref text PRIMARY KEY, type text NOT NULL, delegate text NOT NULL, \
    represented jsonb NOT NULL, services text[] NOT NULL, \
    not_before bigint NOT NULL, not_after bigint NOT NULL, revoked_at bigint); \
    CREATE INDEX ON varco_representation (delegate);";

fn delegate(sub: &str) -> Principal {
    let source = identity::Source {
        method: Method::Spid,
        idp: "https://idp.example.it",
        level: SPID_L2,
        auth_time: NOW - 5,
        session_id: "sid-1",
    };
    normalize(
        vec![("fiscalNumber".to_owned(), vec![sub.to_owned()])],
        &source,
        &Mapping::default(),
    )
    .unwrap()
}

fn insert(reference: &str, delegate: &str, services: &str) -> String {
    format!(
        "INSERT INTO varco_representation VALUES ('{reference}', 'delegation', '{delegate}', \
         '{{\"person\": {{\"fiscal_code\": \"{ELDER_CF}\", \"given_name\": \"Luigi\"}}}}', \
         '{services}', {}, {});",
        NOW - DAY,
        NOW + DAY
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_table_source_reads_revokes_and_fails_closed() {
    let cluster = Postgres::start("represent");
    cluster.psql(SCHEMA);
    cluster.psql(&insert("D-1", DELEGATE, "{tributi,anagrafe}"));
    cluster.psql(&insert("D-2", DELEGATE, "{scuola}"));
    cluster.psql(&insert("X-1", OTHER, "{tributi}"));
    // cache_seconds 0: every lookup asks the table (the revocation below is seen at once).
    let source = PgSource::new(
        "pg",
        &cluster.url(),
        Tls::Disable,
        "varco_representation",
        0,
    )
    .unwrap();
    let me = delegate(DELEGATE);

    let reps = source.lookup(&me, NOW).await.unwrap();
    assert_eq!(reps.len(), 2, "only this delegate's rows");
    let acting = represent::act(&me, "D-1", "tributi", NOW, &reps).unwrap();
    assert_eq!(acting.principal().sub, format!("TINIT-{ELDER_CF}"));
    assert_eq!(acting.representation().source(), "pg");
    assert_eq!(
        represent::act(&me, "X-1", "tributi", NOW, &reps).unwrap_err(),
        Refusal::NotFound,
        "another delegate's record is not even read"
    );

    // Revoked mid-session: the next lookup no longer states it.
    cluster.psql(&format!(
        "UPDATE varco_representation SET revoked_at = {NOW} WHERE ref = 'D-1';"
    ));
    let reps = source.lookup(&me, NOW + 1).await.unwrap();
    assert_eq!(
        represent::act(&me, "D-1", "tributi", NOW + 1, &reps).unwrap_err(),
        Refusal::NotFound
    );

    // A malformed row (a company for a delegation) refuses the whole answer.
    cluster.psql(&format!(
        "INSERT INTO varco_representation VALUES ('D-3', 'delegation', '{DELEGATE}', \
         '{{\"company\": {{\"vat\": \"01234567897\"}}}}', '{{x}}', {}, {});",
        NOW - DAY,
        NOW + DAY
    ));
    match source.lookup(&me, NOW + 2).await {
        Err(SourceError::Refused(e)) => assert_eq!(e.code(), "represent.schema"),
        other => panic!("{:?}", other.map(|r| r.len())),
    }
    cluster.psql("DELETE FROM varco_representation WHERE ref = 'D-3';");

    // Down: fail closed; back: answers again.
    cluster.stop();
    match source.lookup(&me, NOW + 3).await {
        Err(e @ SourceError::Unavailable { .. }) => {
            assert_eq!(e.code(), "represent.source_unavailable");
        }
        other => panic!("{:?}", other.map(|r| r.len())),
    }
    cluster.restart();
    let reps = source.lookup(&me, NOW + 4).await.unwrap();
    assert_eq!(reps.len(), 1);
    assert!(reps.by_reference("D-2").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_are_reused_for_cache_seconds_by_the_injected_clock() {
    let cluster = Postgres::start("represent-cache");
    cluster.psql(SCHEMA);
    cluster.psql(&insert("D-1", DELEGATE, "{tributi}"));
    let source = PgSource::new(
        "pg",
        &cluster.url(),
        Tls::Disable,
        "varco_representation",
        30,
    )
    .unwrap();
    let me = delegate(DELEGATE);
    assert_eq!(source.lookup(&me, NOW).await.unwrap().len(), 1);
    cluster.psql("DELETE FROM varco_representation;");
    // Within the cache window the answer stands; after it, the revocation is seen.
    assert_eq!(source.lookup(&me, NOW + 29).await.unwrap().len(), 1);
    assert_eq!(source.lookup(&me, NOW + 30).await.unwrap().len(), 0);
}

/// A view over the table whose every row takes 0.4 s to read, so lookups overlap long
/// enough to be counted in `pg_stat_activity`.
fn slow_view(cluster: &Postgres, name: &str) {
    cluster.psql(&format!(
        "CREATE OR REPLACE FUNCTION slow_row() RETURNS boolean LANGUAGE plpgsql VOLATILE \
         COST 10000 AS $$ BEGIN PERFORM pg_sleep(0.4); RETURN true; END $$; \
         CREATE VIEW {name} AS SELECT * FROM varco_representation WHERE slow_row();"
    ));
}

/// Runs `n` concurrent lookups of the delegate through `source` and counts, in PostgreSQL
/// itself, the most queries on `view` seen running at once; returns it with the number of
/// backends the source opened on `view` (still open in its pool afterwards).
async fn count_parallel(cluster: &Postgres, source: PgSource, view: &str, n: usize) -> (i64, i64) {
    let source = std::sync::Arc::new(source);
    let me = delegate(DELEGATE);
    let monitor = broker::features::audit::postgres::connect(&cluster.url(), &Tls::Disable)
        .await
        .unwrap();
    let like = format!("%FROM {view} %");
    let count = |active: bool| {
        let monitor = &monitor;
        let like = like.clone();
        async move {
            let sql = if active {
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND query LIKE $1 AND pid <> pg_backend_pid()"
            } else {
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 \
                 AND pid <> pg_backend_pid()"
            };
            monitor
                .query_one(sql, &[&like])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let lookups: Vec<_> = (0..n)
        .map(|_| {
            let (s, me) = (source.clone(), me.clone());
            tokio::spawn(async move { s.lookup(&me, NOW).await.map(|r| r.len()) })
        })
        .collect();
    let mut most = 0;
    while lookups.iter().any(|l| !l.is_finished()) {
        most = most.max(count(true).await);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for l in lookups {
        assert_eq!(l.await.unwrap(), Ok(1), "every lookup answered");
    }
    (most, count(false).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_runs_lookups_in_parallel_up_to_pool_size() {
    let cluster = Postgres::start("represent-pool");
    cluster.psql(SCHEMA);
    cluster.psql(&insert("D-1", DELEGATE, "{tributi}"));
    slow_view(&cluster, "slow_a");
    slow_view(&cluster, "slow_b");
    // Six lookups, pool of three: they overlap, never more than three at once, on three
    // connections kept for the next lookups.
    let pooled = PgSource::new("pg", &cluster.url(), Tls::Disable, "slow_a", 0)
        .unwrap()
        .with_pool_size(3);
    let (most, connections) = count_parallel(&cluster, pooled, "slow_a", 6).await;
    assert!(
        (2..=3).contains(&most),
        "{most} queries at once with a pool of 3"
    );
    assert_eq!(
        connections, 3,
        "the pool holds at most pool_size connections"
    );
    // A pool of one is the old behaviour: one query at a time, one connection.
    let single = PgSource::new("pg", &cluster.url(), Tls::Disable, "slow_b", 0)
        .unwrap()
        .with_pool_size(1);
    let (most, connections) = count_parallel(&cluster, single, "slow_b", 3).await;
    assert_eq!((most, connections), (1, 1));
}
