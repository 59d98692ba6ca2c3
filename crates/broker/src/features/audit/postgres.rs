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
//!
//! Retention: at start and at the first batch of each UTC day, the writer's oldest rows older
//! than the retention period are deleted after a committed `pruned` record names the last
//! deleted record (the same anchor as the file sink's), so the shortened chain still verifies.
//!
//! Start-up ([`PgSink::start`]): the server need not be up. The writer task keeps trying to
//! open the chain (1 s, doubling to 30 s between attempts); until it has, every append fails
//! at once with `audit_unavailable` (a login then answers 503 and gets no session), and
//! [`PgSink::is_up`] says so, for `/readyz` and `varco_audit_up`. Sessions need no audit, so
//! they keep working: the same as a Redis store that is down at start.
//!
//! TLS ([`Tls`]): off, required without authenticating the server, or required with the
//! server's certificate checked against a configured CA and its name against the host
//! (rustls through `tokio-postgres-rustls`).
//!
//! May import: the leaf, `audit::chain`, `audit::append` and `audit::file` (its job queue).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use ring::rand::SystemRandom;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::sync::mpsc;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::append::AuditError;
use super::chain::{self, RecordKey, ZERO_HASH};
use super::file::{Job, MAX_BATCH, OpenError};
use crate::leaf::clock::unix;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS varco_audit (\
    writer text NOT NULL, seq bigint NOT NULL, line text NOT NULL, PRIMARY KEY (writer, seq))";

/// Rows read per query when verifying, exporting or pruning: memory stays bounded whatever
/// the retention period.
const PAGE: i64 = 5000;

/// How the connection to PostgreSQL is protected (`audit.postgres_tls`).
#[derive(Debug, Clone)]
pub enum Tls {
    /// Plain TCP or a Unix socket.
    Disable,
    /// TLS, but the server is not authenticated: protects against passive listeners only.
    Require,
    /// TLS with the server's certificate checked against these roots and its name against
    /// the host of the connection string.
    VerifyFull(Arc<RootCertStore>),
}

impl Tls {
    /// The mode from its configuration spelling, with the CA file `verify-full` needs.
    pub fn from_config(mode: &str, ca_file: Option<&Path>) -> Result<Tls, String> {
        match (mode, ca_file) {
            ("disable", None) => Ok(Tls::Disable),
            ("require", None) => Ok(Tls::Require),
            ("verify-full", Some(ca)) => load_roots(ca).map(|r| Tls::VerifyFull(Arc::new(r))),
            ("verify-full", None) => Err("verify-full needs a CA file".into()),
            ("disable" | "require", Some(_)) => {
                Err("a CA file is only used with verify-full".into())
            }
            (other, _) => Err(format!(
                "{other:?}: expected disable, require or verify-full"
            )),
        }
    }
}

/// The certificates of a PEM file as trust roots; at least one must be usable.
pub fn load_roots(path: &Path) -> Result<RootCertStore, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("{}: no usable CA certificate", path.display()));
    }
    Ok(roots)
}

/// Checks that a connection string parses and fits the TLS mode: TLS needs a TCP host, and
/// a string asking for `sslmode=require` is not taken with TLS off.
pub fn check_url(url: &str, tls: &Tls) -> Result<(), String> {
    let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
    let unix_host = config
        .get_hosts()
        .iter()
        .any(|h| !matches!(h, Host::Tcp(_)));
    if unix_host && !matches!(tls, Tls::Disable) {
        return Err("TLS needs a TCP host; a Unix socket is never encrypted".into());
    }
    // The string's own sslmode is overridden: never silently downgrade one that asks for TLS.
    if config.get_ssl_mode() == SslMode::Require && matches!(tls, Tls::Disable) {
        return Err("sslmode=require in the connection string: set the TLS mode instead".into());
    }
    Ok(())
}

/// What the PostgreSQL sink needs.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// libpq-style connection string (`host=/run/postgresql dbname=varco user=varco`) or URL;
    /// its own `sslmode` is overridden by `tls`.
    pub url: String,
    /// Transport protection.
    pub tls: Tls,
    /// This replica's chain name.
    pub writer: String,
    /// Encryption at rest of login records.
    pub key: Option<[u8; 32]>,
    /// Rows older than this are pruned under an anchor.
    pub retention: Duration,
}

/// The handle request tasks use; clones share one writer task.
#[derive(Clone)]
pub struct PgSink {
    tx: mpsc::Sender<Job>,
    /// The writer holds an open chain and its last batch committed.
    up: Arc<AtomicBool>,
}

/// First and longest wait between attempts to open the chain at start.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);

/// `require`: the handshake signatures are checked (the channel is bound to whatever key the
/// server showed), the certificate is not.
#[derive(Debug)]
struct NoServerAuth(Arc<CryptoProvider>);

impl ServerCertVerifier for NoServerAuth {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(tls: &Tls) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    Ok(match tls {
        Tls::VerifyFull(roots) => builder
            .with_root_certificates(roots.clone())
            .with_no_client_auth(),
        _ => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerAuth(provider)))
            .with_no_client_auth(),
    })
}

/// A connection, its driver task spawned on the current runtime.
pub async fn connect(url: &str, tls: &Tls) -> Result<Client, String> {
    let mut config: tokio_postgres::Config = url.parse().map_err(text)?;
    let client = match tls {
        Tls::Disable => {
            config.ssl_mode(SslMode::Disable);
            let (client, connection) = config.connect(NoTls).await.map_err(text)?;
            tokio::spawn(drive(connection));
            client
        }
        Tls::Require | Tls::VerifyFull(_) => {
            config.ssl_mode(SslMode::Require);
            let connector = MakeRustlsConnect::new(client_config(tls)?);
            let (client, connection) = config.connect(connector).await.map_err(text)?;
            tokio::spawn(drive(connection));
            client
        }
    };
    Ok(client)
}

async fn drive<F: Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::warn!(event = "audit_postgres_connection", error = %e.to_string());
    }
}

/// The server's message when there is one ("db error" alone says nothing), and the cause of
/// a TLS or I/O failure.
fn text(e: tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{e}: {}", db.message());
    }
    match std::error::Error::source(&e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

fn pg(e: String) -> OpenError {
    OpenError::Io(format!("postgres: {e}"))
}

struct PgWriter {
    opts: PgOptions,
    client: Client,
    next_seq: u64,
    prev: [u8; 32],
    key: Option<RecordKey>,
    rng: SystemRandom,
    /// UTC day (Unix days) of the last pruning pass.
    pruned_day: u64,
    /// Shared with the [`PgSink`]s: false while the last batch failed.
    up: Arc<AtomicBool>,
}

impl PgSink {
    /// Connects, creates the table if needed, reads this writer's chain tail (or writes its
    /// genesis), prunes what is past retention at `now` and starts the writer task. Must run
    /// inside a tokio runtime.
    pub async fn connect(opts: &PgOptions, now: SystemTime) -> Result<PgSink, OpenError> {
        let up = Arc::new(AtomicBool::new(false));
        let w = open(opts, now, up.clone()).await?;
        up.store(true, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(8192);
        tokio::spawn(w.run(rx));
        Ok(PgSink { tx, up })
    }

    /// Like [`PgSink::connect`], but a server that cannot be reached or refuses is not an
    /// error: the writer task then keeps trying to open the chain (see the module's
    /// "Start-up"), reading the time from `clock` when it does. Only a configuration the
    /// server cannot fix (an unusable record key) is an error. Must run inside a tokio
    /// runtime.
    pub async fn start(opts: &PgOptions, clock: fn() -> SystemTime) -> Result<PgSink, OpenError> {
        let up = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel(8192);
        match open(opts, clock(), up.clone()).await {
            Ok(w) => {
                up.store(true, Ordering::Relaxed);
                tokio::spawn(w.run(rx));
            }
            Err(OpenError::Key) => return Err(OpenError::Key),
            Err(e) => {
                tracing::warn!(
                    event = "audit_unavailable",
                    sink = "postgres",
                    error = %format!("cannot open the audit sink, retrying: {e}"),
                );
                tokio::spawn(opening(opts.clone(), clock, up.clone(), rx));
            }
        }
        Ok(PgSink { tx, up })
    }

    /// Whether the chain is open and the last batch committed.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }
}

/// Connects, creates the table if needed, reads the writer's chain tail (or writes its
/// genesis) and prunes what is past retention at `now`.
async fn open(
    opts: &PgOptions,
    now: SystemTime,
    up: Arc<AtomicBool>,
) -> Result<PgWriter, OpenError> {
    let client = connect(&opts.url, &opts.tls).await.map_err(pg)?;
    // Created only when missing: a role granted just SELECT and INSERT on an existing
    // table has no CREATE on the schema, and PostgreSQL checks that even for IF NOT EXISTS.
    let exists: bool = client
        .query_one("SELECT to_regclass('varco_audit') IS NOT NULL", &[])
        .await
        .map_err(|e| pg(text(e)))?
        .get(0);
    if !exists {
        client
            .batch_execute(SCHEMA)
            .await
            .map_err(|e| pg(text(e)))?;
    }
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
        pruned_day: unix(now) / 86_400,
        up,
    };
    if !w.load_tail().await.map_err(|e| pg(text(e)))? {
        let genesis = format!("{{\"kind\":\"genesis\",\"at\":{}}}", unix(now));
        w.insert(&[(now, genesis.as_bytes())], false)
            .await
            .map_err(|e| OpenError::Io(format!("postgres genesis: {e}")))?;
    }
    // Pruning is housekeeping: a chain it cannot prune still takes records.
    if let Err(e) = w.prune(now).await {
        tracing::warn!(event = "audit_prune_failed", error = %e);
    }
    Ok(w)
}

/// The writer task of [`PgSink::start`] after a failed first attempt: waits, opens the
/// chain, retrying with backoff and failing every job that arrives meanwhile, then runs as
/// [`PgSink::connect`]'s does.
async fn opening(
    opts: PgOptions,
    clock: fn() -> SystemTime,
    up: Arc<AtomicBool>,
    mut rx: mpsc::Receiver<Job>,
) {
    let mut delay = RETRY_FIRST;
    loop {
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                job = rx.recv() => match job {
                    Some(job) => {
                        let _ = job.reply.send(Err(AuditError::Unavailable));
                    }
                    None => return,
                },
            }
        }
        delay = (delay * 2).min(RETRY_MAX);
        if let Ok(w) = open(&opts, clock(), up.clone()).await {
            up.store(true, Ordering::Relaxed);
            tracing::info!(event = "audit_recovered", sink = "postgres");
            return w.run(rx).await;
        }
    }
}

impl PgSink {
    /// Appends one record; resolves once committed.
    pub async fn append(
        &self,
        ts: SystemTime,
        payload: Vec<u8>,
    ) -> Result<super::append::Durable, AuditError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send(Job {
                ts,
                payload,
                blob: None,
                reply,
                promise: None,
            })
            .await
            .map_err(|_| AuditError::Unavailable)?;
        answer.await.unwrap_or(Err(AuditError::Unavailable))
    }
}

/// Up to [`PAGE`] rows after `(writer, seq)` in key order, of one writer or of all.
async fn page(
    client: &Client,
    only: Option<&str>,
    after: &(String, i64),
) -> Result<Vec<(String, i64, String)>, String> {
    let rows = match only {
        Some(w) => {
            client
                .query(
                    "SELECT writer, seq, line FROM varco_audit WHERE writer = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3",
                    &[&w, &after.1, &PAGE],
                )
                .await
        }
        None => {
            client
                .query(
                    "SELECT writer, seq, line FROM varco_audit WHERE (writer, seq) > ($1, $2) \
                     ORDER BY writer, seq LIMIT $3",
                    &[&after.0, &after.1, &PAGE],
                )
                .await
        }
    }
    .map_err(text)?;
    Ok(rows
        .into_iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
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

    /// Deletes this writer's oldest rows whose record is older than the retention period,
    /// after a committed `pruned` record anchors the chain at the last one deleted. Stops at
    /// the first record not past retention; refuses to prune a prefix whose links do not
    /// hold (that is evidence for `verify`, not garbage). Returns the rows deleted.
    async fn prune(&mut self, now: SystemTime) -> Result<u64, String> {
        let cutoff = unix(now).saturating_sub(self.opts.retention.as_secs());
        let mut after = (self.opts.writer.clone(), -1i64);
        let mut through: Option<(u64, [u8; 32])> = None;
        let mut count = 0u64;
        'pages: loop {
            let rows = page(&self.client, Some(&self.opts.writer), &after).await?;
            if rows.is_empty() {
                break;
            }
            for (_, key, line) in &rows {
                let l = chain::parse_line(line.as_bytes())
                    .map_err(|_| format!("row {key} is not a record: run varco audit verify"))?;
                if l.ts >= cutoff || l.seq + 1 >= self.next_seq {
                    break 'pages;
                }
                let linked = match through {
                    Some((seq, hash)) => l.seq == seq + 1 && l.prev == hash,
                    None => true,
                };
                if !linked || i64::try_from(l.seq).ok() != Some(*key) {
                    return Err(format!(
                        "row {key} breaks the chain: run varco audit verify"
                    ));
                }
                through = Some((l.seq, l.hash));
                count += 1;
                after.1 = *key;
            }
        }
        let Some((seq, hash)) = through else {
            return Ok(0);
        };
        // A role kept to INSERT and SELECT (see docs/THREATS.md) cannot prune: say so
        // instead of appending an anchor whose DELETE would then be refused.
        let may_delete: bool = self
            .client
            .query_one("SELECT has_table_privilege('varco_audit', 'DELETE')", &[])
            .await
            .map_err(text)?
            .get(0);
        if !may_delete {
            return Err("the database role may not DELETE from varco_audit".into());
        }
        let record = serde_json::json!({
            "kind": "pruned",
            "at": unix(now),
            "before": cutoff,
            "through_seq": seq,
            "through_hash": chain::hex(&hash),
            "rows": count,
        });
        self.insert(&[(now, record.to_string().as_bytes())], false)
            .await?;
        let last = i64::try_from(seq).map_err(|_| "sequence overflow".to_owned())?;
        self.client
            .execute(
                "DELETE FROM varco_audit WHERE writer = $1 AND seq <= $2",
                &[&self.opts.writer, &last],
            )
            .await
            .map_err(text)?;
        tracing::info!(event = "audit_pruned", writer = %self.opts.writer, through_seq = %seq.to_string(), rows = %count.to_string());
        Ok(count)
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
            self.up.store(!broken, Ordering::Relaxed);
            let latest = batch
                .iter()
                .map(|j| j.ts)
                .max()
                .unwrap_or(SystemTime::UNIX_EPOCH);
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
                        self.up.store(false, Ordering::Relaxed);
                        Err(AuditError::Unavailable)
                    }
                }
            };
            let size = batch.len();
            for (i, job) in batch.drain(..).enumerate() {
                let _ = job.reply.send(result.map(|first| super::append::Durable {
                    seq: first + i as u64,
                    batch: size,
                }));
            }
            // Once a day, after the batch is answered: pruning never delays a login, and a
            // failure is retried the next day (or at the next start).
            let day = unix(latest) / 86_400;
            if !broken && day != self.pruned_day {
                self.pruned_day = day;
                if let Err(e) = self.prune(latest).await {
                    tracing::warn!(event = "audit_prune_failed", error = %e);
                }
            }
        }
    }

    /// After a failure: a fresh connection if the old one is gone, then the chain tail as
    /// the database has it (the failed transaction may or may not have committed).
    async fn repair(&mut self) -> bool {
        if self.client.is_closed() {
            match connect(&self.opts.url, &self.opts.tls).await {
                Ok(c) => self.client = c,
                Err(_) => return false,
            }
        }
        matches!(self.load_tail().await, Ok(true)) && self.next_seq != u64::MAX
    }
}

/// Every writer's verdict, in writer order.
pub type Verdicts = Vec<(String, Result<chain::Verified, chain::ChainError>)>;

/// Reads every chain of the table, a page at a time, and verifies each writer's rows in key
/// order with the rules of the files; a row whose key is not its record's sequence number
/// is [`chain::ChainError::Misplaced`]. The first problem of each writer is its verdict.
pub async fn verify(url: &str, tls: &Tls, key: Option<&RecordKey>) -> Result<Verdicts, String> {
    let client = connect(url, tls).await?;
    let mut out: Verdicts = Vec::new();
    let mut current: Option<(String, chain::Verifier<'_>)> = None;
    let mut after = (String::new(), i64::MIN);
    loop {
        let rows = page(&client, None, &after).await?;
        if rows.is_empty() {
            break;
        }
        for (writer, seq, line) in rows {
            after = (writer.clone(), seq);
            if current.as_ref().is_none_or(|c| c.0 != writer) {
                if let Some((w, v)) = current.take() {
                    out.push((w, v.finish()));
                }
                current = Some((writer.clone(), chain::Verifier::new(key)));
            }
            let Some((_, v)) = current.as_mut() else {
                continue;
            };
            let place = format!("writer {writer} row {seq}");
            let checked = match u64::try_from(seq) {
                Ok(k) => v.row(&place, k, line.as_bytes()),
                Err(_) => Err(chain::ChainError::Malformed {
                    file: place,
                    offset: 0,
                }),
            };
            if let Err(e) = checked {
                out.push((writer.clone(), Err(e)));
                current = None;
                // The rest of this writer's rows say nothing more: skip to the next writer.
                after = (writer, i64::MAX);
                break;
            }
        }
    }
    if let Some((w, v)) = current {
        out.push((w, v.finish()));
    }
    Ok(out)
}

/// One record of the table, for `export`: writer, the parsed line's sequence number and
/// time, and its payload opened with `key`. `None` payload: encrypted and no key.
pub struct Row {
    /// The writer (chain) it belongs to.
    pub writer: String,
    /// Sequence number.
    pub seq: u64,
    /// Unix seconds when appended.
    pub ts: u64,
    /// The JSON payload, if readable.
    pub json: Option<Vec<u8>>,
}

/// Calls `each` on every record appended in `[from, to)` (Unix seconds), writer by writer
/// in key order; stops at the first `Err` `each` returns.
pub async fn scan(
    url: &str,
    tls: &Tls,
    key: Option<&RecordKey>,
    from: u64,
    to: u64,
    each: &mut dyn FnMut(Row) -> Result<(), String>,
) -> Result<(), String> {
    let client = connect(url, tls).await?;
    let mut after = (String::new(), i64::MIN);
    loop {
        let rows = page(&client, None, &after).await?;
        if rows.is_empty() {
            return Ok(());
        }
        for (writer, seq, line) in rows {
            after = (writer.clone(), seq);
            let Ok(l) = chain::parse_line(line.as_bytes()) else {
                continue; // not reached after verify
            };
            if l.ts < from || l.ts >= to {
                continue;
            }
            each(Row {
                writer,
                seq: l.seq,
                ts: l.ts,
                json: l.json(key),
            })?;
        }
    }
}
