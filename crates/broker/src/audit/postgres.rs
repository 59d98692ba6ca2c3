//! The PostgreSQL sink, for several replicas: the same lines as the file sink, one chain per
//! writer (`audit.writer`, unique per replica), in one table:
//!
//! ```sql
//! CREATE TABLE IF NOT EXISTS varco_audit (
//!     writer text   NOT NULL,
//!     seq    bigint NOT NULL,
//!     line   text   NOT NULL,
//!     PRIMARY KEY (writer, seq)
//! );
//! ```
//!
//! Group commit as in the file sink: one task drains the queue and inserts the batch in one
//! transaction; each sender is answered after `COMMIT` (durable with the server's default
//! `synchronous_commit = on`). The primary key makes a second process with the same writer
//! name fail instead of forking the chain. After a failed batch the task reconnects if needed
//! and re-reads its chain tail before accepting more.

use std::time::SystemTime;

use ring::rand::SystemRandom;
use tokio::sync::mpsc;
use tokio_postgres::{Client, NoTls};

use super::AuditError;
use super::chain::{self, RecordKey, ZERO_HASH};
use super::file::{Job, MAX_BATCH, OpenError};
use crate::clock::unix;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS varco_audit (\
    writer text NOT NULL, seq bigint NOT NULL, line text NOT NULL, PRIMARY KEY (writer, seq))";

/// What the PostgreSQL sink needs.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// libpq-style connection string (`host=/run/postgresql dbname=varco user=varco`) or URL.
    pub url: String,
    /// This replica's chain name.
    pub writer: String,
    /// Encryption at rest of login records.
    pub key: Option<[u8; 32]>,
}

/// The handle request tasks use; clones share one writer task.
#[derive(Clone)]
pub struct PgSink {
    tx: mpsc::Sender<Job>,
}

async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(event = "audit_postgres_connection", error = %e);
        }
    });
    Ok(client)
}

/// The server's message when there is one ("db error" alone says nothing).
fn text(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => e.to_string(),
    }
}

fn pg(e: tokio_postgres::Error) -> OpenError {
    OpenError::Io(format!("postgres: {}", text(e)))
}

struct PgWriter {
    opts: PgOptions,
    client: Client,
    next_seq: u64,
    prev: [u8; 32],
    key: Option<RecordKey>,
    rng: SystemRandom,
}

impl PgSink {
    /// Connects, creates the table if needed, reads this writer's chain tail (or writes its
    /// genesis) and starts the writer task. Must run inside a tokio runtime.
    pub async fn connect(opts: &PgOptions, now: SystemTime) -> Result<PgSink, OpenError> {
        let client = connect(&opts.url).await.map_err(pg)?;
        client.batch_execute(SCHEMA).await.map_err(pg)?;
        let key = match &opts.key {
            Some(k) => Some(RecordKey::new(k).ok_or(OpenError::Key)?),
            None => None,
        };
        let mut w = PgWriter {
            opts: opts.clone(),
            client,
            next_seq: 0,
            prev: ZERO_HASH,
            key,
            rng: SystemRandom::new(),
        };
        if !w.load_tail().await.map_err(pg)? {
            let genesis = format!("{{\"kind\":\"genesis\",\"at\":{}}}", unix(now));
            w.insert(&[(now, genesis.as_bytes())], false)
                .await
                .map_err(|e| OpenError::Io(format!("postgres genesis: {e}")))?;
        }
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(w.run(rx));
        Ok(PgSink { tx })
    }

    /// Appends one record; resolves with its sequence number once committed.
    pub async fn append(&self, ts: SystemTime, payload: Vec<u8>) -> Result<u64, AuditError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job { ts, payload, reply })
            .await
            .map_err(|_| AuditError::Unavailable)?;
        answer.await.unwrap_or(Err(AuditError::Unavailable))
    }
}

impl PgWriter {
    /// Reads the last line of this writer's chain; `false` if it has none.
    async fn load_tail(&mut self) -> Result<bool, tokio_postgres::Error> {
        let row = self
            .client
            .query_opt(
                "SELECT line FROM varco_audit WHERE writer = $1 ORDER BY seq DESC LIMIT 1",
                &[&self.opts.writer],
            )
            .await?;
        let Some(row) = row else {
            self.next_seq = 0;
            self.prev = ZERO_HASH;
            return Ok(false);
        };
        let line: String = row.get(0);
        // A stored line that does not parse leaves the tail unknown: refuse to extend it.
        let parsed = chain::parse_line(line.as_bytes()).ok();
        match parsed {
            Some(l) => {
                self.next_seq = l.seq + 1;
                self.prev = l.hash;
                Ok(true)
            }
            None => {
                self.next_seq = u64::MAX;
                Ok(true)
            }
        }
    }

    async fn insert(
        &mut self,
        records: &[(SystemTime, &[u8])],
        encrypt: bool,
    ) -> Result<(), String> {
        if self.next_seq == u64::MAX {
            return Err("the stored chain tail is not a record".into());
        }
        let (mut seq, mut prev) = (self.next_seq, self.prev);
        let key = if encrypt {
            self.key.as_ref().map(|k| (k, &self.rng))
        } else {
            None
        };
        let mut seqs: Vec<i64> = Vec::with_capacity(records.len());
        let mut lines: Vec<String> = Vec::with_capacity(records.len());
        for (ts, payload) in records {
            let (line, hash) = chain::encode(seq, unix(*ts), &prev, payload, key)
                .map_err(|_| "encode".to_owned())?;
            let mut text = String::from_utf8(line).map_err(|_| "encode".to_owned())?;
            text.pop(); // the LF: one row, one line
            seqs.push(i64::try_from(seq).map_err(|_| "sequence overflow".to_owned())?);
            lines.push(text);
            seq += 1;
            prev = hash;
        }
        let tx = self.client.transaction().await.map_err(text)?;
        tx.execute(
            "INSERT INTO varco_audit (writer, seq, line) \
             SELECT $1, s, l FROM unnest($2::bigint[], $3::text[]) AS t(s, l)",
            &[&self.opts.writer, &seqs, &lines],
        )
        .await
        .map_err(text)?;
        tx.commit().await.map_err(text)?;
        self.next_seq = seq;
        self.prev = prev;
        Ok(())
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Job>) {
        let mut batch: Vec<Job> = Vec::with_capacity(64);
        let mut broken = false;
        while let Some(job) = rx.recv().await {
            batch.push(job);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            if broken {
                broken = !self.repair().await;
            }
            let result = if broken {
                Err(AuditError::Unavailable)
            } else {
                let first = self.next_seq;
                let records: Vec<(SystemTime, &[u8])> =
                    batch.iter().map(|j| (j.ts, j.payload.as_slice())).collect();
                match self.insert(&records, true).await {
                    Ok(()) => Ok(first),
                    Err(e) => {
                        tracing::warn!(event = "audit_unavailable", error = %e);
                        broken = true;
                        Err(AuditError::Unavailable)
                    }
                }
            };
            for (i, job) in batch.drain(..).enumerate() {
                let _ = job.reply.send(result.map(|first| first + i as u64));
            }
        }
    }

    /// After a failure: a fresh connection if the old one is gone, then the chain tail as
    /// the database has it (the failed transaction may or may not have committed).
    async fn repair(&mut self) -> bool {
        if self.client.is_closed() {
            match connect(&self.opts.url).await {
                Ok(c) => self.client = c,
                Err(_) => return false,
            }
        }
        matches!(self.load_tail().await, Ok(true)) && self.next_seq != u64::MAX
    }
}

/// Reads every chain of the table and verifies each, writer by writer, with the same rules
/// as the files (each writer's rows are one virtual file). Returns (writer, verdict) pairs.
pub async fn verify(
    url: &str,
    key: Option<&RecordKey>,
) -> Result<Vec<(String, Result<chain::Verified, chain::ChainError>)>, String> {
    let client = connect(url).await.map_err(text)?;
    let rows = client
        .query(
            "SELECT writer, seq, line FROM varco_audit ORDER BY writer, seq",
            &[],
        )
        .await
        .map_err(text)?;
    let mut out = Vec::new();
    let mut current: Option<(String, i64, Vec<u8>)> = None;
    let finish = |w: String, first: i64, bytes: Vec<u8>| {
        let name = chain::file_name(u64::try_from(first).unwrap_or(u64::MAX));
        let mut v = chain::Verifier::new(key);
        let verdict = v.file(&name, &bytes).and_then(|()| v.finish());
        (w, verdict)
    };
    for row in rows {
        let (writer, seq, line): (String, i64, String) = (row.get(0), row.get(1), row.get(2));
        if current.as_ref().is_some_and(|c| c.0 != writer) {
            if let Some((w, first, bytes)) = current.take() {
                out.push(finish(w, first, bytes));
            }
        }
        let entry = current.get_or_insert_with(|| (writer, seq, Vec::new()));
        entry.2.extend_from_slice(line.as_bytes());
        entry.2.push(b'\n');
    }
    if let Some((w, first, bytes)) = current {
        out.push(finish(w, first, bytes));
    }
    Ok(out)
}
