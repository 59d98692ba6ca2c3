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
