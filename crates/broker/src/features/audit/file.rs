//! The file sink: append-only chained files in one directory, written by one thread.
//!
//! Group commit in two stages, each on its own thread (issue 20):
//! - the *writer* takes everything queued (up to [`MAX_BATCH`]), encodes it onto the chain and
//!   writes it with one `write`, then hands the batch to the syncer and goes back for more;
//! - the *syncer* takes every batch written since its last sync, makes them durable with one
//!   `fdatasync`, and only then answers their senders.
//!
//! So the sync rate follows the arrival rate with no timer: a lone login is synced at once,
//! and under load each sync starts as soon as the previous one ends and carries everything
//! that arrived meanwhile, encoded and written while the disk was busy. The encoding no
//! longer adds to the time a batch waits, and a slow sync (a disk stall) makes the next batch
//! bigger instead of queueing syncs behind it.
//!
//! Adaptive wait (leader/follower with expected followers): a login whose record is on its
//! way holds an [`Expected`] from the moment its Response is read until its record is
//! written. A sync that is due while such logins are still being validated waits for them,
//! at most [`Options::commit_interval`], and starts the moment the last of them is written:
//! when nothing is in progress (a quiet broker, or a lone login) it starts at once; under
//! load the logins in progress share it instead of each paying a sync (about 70 µs of kernel
//! CPU on the CI machine, docs/PERFORMANCE.md); saturated, syncs are at most one per
//! interval. Batches are bounded: a write round takes at most [`MAX_BATCH`] records and
//! [`MAX_BATCH_BYTES`], and the writer stops [`MAX_UNSYNCED_BYTES`] ahead of the syncer.
//!
//! Durability is unchanged: no sender is answered before an `fdatasync` covering its bytes
//! returned, and the chain state the next batch builds on is only taken as durable once
//! the syncer says so (the writer's own is tentative).
//!
//! Failure: if a write or sync fails, the batch is answered with an error (the logins fail
//! closed), so is every batch written after it and not yet synced (an *epoch* number tells
//! them apart), and the writer truncates the file back to its last durable length and takes
//! the chain state back to the last durable record before it accepts anything again; if even
//! that fails, every later record fails too. Rotation waits until everything written is
//! durable, so a failure never spans two files.
//!
//! Restart: the last file is re-read; a partial last line (a write cut by a crash) is moved
//! out of the file into a `recovery` record, so the chain stays whole and the torn bytes stay
//! visible. Retention: at start and at each rotation, the oldest files whose newest record
//! is past the retention period are deleted after a `pruned` record names the last pruned
//! record's sequence number and hash, which lets `verify` accept the missing prefix.
//!
//! May import: the leaf, `audit::chain` and `audit::append`.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use ring::rand::SystemRandom;
use tokio::sync::{mpsc, oneshot};

use super::append::{AuditError, Durable};
use super::chain::{self, RecordKey, ZERO_HASH};
use crate::leaf::clock::unix;

/// Most records one write round takes.
pub const MAX_BATCH: usize = 1024;
/// A write round stops taking records once it holds this many payload bytes (it always takes
/// at least one record, whatever its size): a completed login's record carries the whole
/// Response, up to `saml.max_response_bytes` of XML as base64, so a count alone does not
/// bound the bytes of one `write`.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Most bytes written to the file and not yet durable. Past it the writer waits for the
/// syncer before writing more (the queue then fills and senders wait): a disk that stalls
/// holds at most this much in the page cache on Varco's account, and one sync never has
/// more than this (plus one round) to flush.
pub const MAX_UNSYNCED_BYTES: u64 = 16 * 1024 * 1024;
/// The default of [`Options::commit_interval`] (`audit.commit_interval_us`): a due sync
/// waits at most 1 ms for the logins still in progress (none in progress: no wait), so a
/// saturated broker makes at most about a thousand syncs a second (docs/PERFORMANCE.md,
/// issue 20).
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(1);
/// Records waiting for the writer; senders wait when it is full.
const QUEUE: usize = 8192;
/// The writer keeps its write buffer for the next round while its capacity is at most this
/// (a few dozen completed logins' records); a bigger one, after a burst, is freed.
const KEEP_BUFFER: usize = 1024 * 1024;

/// What the sink needs to open.
#[derive(Debug, Clone)]
pub struct Options {
    /// The directory of the chain (created if missing).
    pub dir: PathBuf,
    /// A file is closed and a new one started once it reaches this size (also at each UTC
    /// day change).
    pub max_file_bytes: u64,
    /// Records older than this are pruned (whole files).
    pub retention: Duration,
    /// Encryption at rest of login records.
    pub key: Option<[u8; 32]>,
    /// Longest a due sync waits for the logins still in progress ([`Expected`]) before it
    /// starts (`audit.commit_interval_us`); zero syncs as soon as the previous sync is done,
    /// whatever is in progress.
    pub commit_interval: Duration,
}

/// Why the sink could not open.
#[derive(Debug)]
pub enum OpenError {
    /// Directory or file I/O.
    Io(String),
    /// The last file does not continue a valid chain.
    Chain(chain::ChainError),
    /// Key refused by the AEAD.
    Key,
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io(e) => write!(f, "{e}"),
            OpenError::Chain(e) => write!(f, "{} ({})", e, e.code()),
            OpenError::Key => write!(f, "audit key refused"),
        }
    }
}

/// One record waiting for its writer, and where to send the answer.
pub(super) struct Job {
    pub(super) ts: SystemTime,
    pub(super) payload: Vec<u8>,
    /// Bytes kept beside the record (a v2 record's blob: a completed login's Response).
    pub(super) blob: Option<Arc<[u8]>>,
    pub(super) reply: oneshot::Sender<Result<Durable, AuditError>>,
    /// The login's [`Expected`], handed over with its record: released once it is written.
    pub(super) promise: Option<Promise>,
}

/// The handle request tasks use; clones share one writer.
#[derive(Clone)]
pub struct FileSink {
    tx: mpsc::Sender<Job>,
    coming: Arc<Coming>,
}

/// A batch written, for the syncer to make durable.
type ToSync = (Vec<Job>, Written);

/// The logins whose records are on their way, and how to wake the syncer when none is left.
/// A syncer waiting for them sleeps on `none_left` and is woken once, by the last release,
/// not by every batch written meanwhile (issue 20: a wake-up per record cost a context
/// switch per login); batches wait in the channel until it syncs.
struct Coming {
    count: AtomicUsize,
    idle: Mutex<()>,
    none_left: Condvar,
}

impl Coming {
    /// Waits until no login is in progress or `deadline` passes, whichever comes first.
    fn wait_none_left(&self, deadline: std::time::Instant) {
        let mut guard = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock the last release takes to notify: no wake-up is lost.
        while self.count.load(Ordering::Acquire) > 0 {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            guard = self
                .none_left
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// One login's record on its way (counted in [`Coming`]); dropping it releases the count.
pub(super) struct Promise(Arc<Coming>);

impl Promise {
    fn new(coming: &Arc<Coming>) -> Promise {
        coming.count.fetch_add(1, Ordering::AcqRel);
        Promise(coming.clone())
    }
}

impl Drop for Promise {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _guard = self.0.idle.lock().unwrap_or_else(PoisonError::into_inner);
            self.0.none_left.notify_one();
        }
    }
}

/// A login whose audit record will follow: taken when its Response has been read, handed
/// to the sink with the record ([`FileSink::append_as`]), released by the writer once the
/// record is written, or on drop if the login never gets that far. A sync that is due while
/// any is held waits for them (up to [`Options::commit_interval`]). A clone holds nothing.
#[derive(Default)]
pub struct Expected(Mutex<Option<Promise>>);

impl Expected {
    fn take(&self) -> Option<Promise> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Clone for Expected {
    fn clone(&self) -> Self {
        Expected::default()
    }
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.lock().map(|p| p.is_some()).unwrap_or(false);
        f.debug_tuple("Expected").field(&held).finish()
    }
}

/// The chain as it is on stable storage, shared by the writer and the syncer.
struct Durability {
    /// Bytes of the current file known to be on stable storage.
    len: u64,
    next_seq: u64,
    prev: [u8; 32],
    last_ts: u64,
    /// Batches written under another epoch were cut off by a repair: never acknowledged.
    epoch: u64,
    /// A sync failed; the writer must repair before writing again.
    failed: bool,
    /// `fdatasync` calls made by the syncer (for tests: batches per sync).
    syncs: u64,
}

struct Shared {
    state: Mutex<Durability>,
    /// Signalled whenever the syncer moves `state`.
    moved: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Durability> {
        // The state is plain data updated in one step; a panicking holder cannot leave it
        // half-written, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A batch written but not yet synced, and the chain state right after it.
struct Written {
    first: u64,
    file: Arc<File>,
    end_len: u64,
    next_seq: u64,
    prev: [u8; 32],
    last_ts: u64,
    epoch: u64,
}

impl FileSink {
    /// Opens (or creates) the chain in `opts.dir`, recovers a torn tail, prunes what is past
    /// retention at `now`, and starts the writer thread.
    pub fn open(opts: &Options, now: SystemTime) -> Result<FileSink, OpenError> {
        let mut writer = Writer::open(opts, now)?;
        writer
            .prune(now)
            .map_err(|e| OpenError::Io(format!("retention pruning: {e}")))?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let coming = writer.start(rx)?;
        Ok(FileSink { tx, coming })
    }

    /// A login's promise that its record will follow (see [`Expected`]).
    pub fn expect(&self) -> Expected {
        Expected(Mutex::new(Some(Promise::new(&self.coming))))
    }

    /// Appends one record; resolves once it is durable.
    pub async fn append(&self, ts: SystemTime, payload: Vec<u8>) -> Result<Durable, AuditError> {
        self.append_as(ts, payload, None, &Expected::default())
            .await
    }

    /// [`Self::append`] for the login that took `expected`: its promise travels with the
    /// record and is released once the record is written.
    /// `blob`, if any, is kept beside the record (a v2 record, `chain`).
    pub async fn append_as(
        &self,
        ts: SystemTime,
        payload: Vec<u8>,
        blob: Option<Arc<[u8]>>,
        expected: &Expected,
    ) -> Result<Durable, AuditError> {
        let (reply, answer) = oneshot::channel();
        let promise = expected.take();
        self.tx
            .send(Job {
                ts,
                payload,
                blob,
                reply,
                promise,
            })
            .await
            .map_err(|_| AuditError::Unavailable)?;
        answer.await.unwrap_or(Err(AuditError::Unavailable))
    }
}

struct Writer {
    dir: PathBuf,
    file: Arc<File>,
    name: String,
    /// Bytes written to the current file (durable up to `shared.len`).
    durable_len: u64,
    /// UTC day (Unix days) the current file belongs to.
    day: u64,
    next_seq: u64,
    prev: [u8; 32],
    /// A write or sync failed and the file was not yet cut back to `durable_len`.
    poisoned: bool,
    max_file_bytes: u64,
    retention: Duration,
    key: Option<RecordKey>,
    rng: SystemRandom,
    commit_interval: Duration,
    /// Unix seconds of the newest durable record (the anchor time of the file in progress).
    last_ts: u64,
    /// The epoch this writer's batches are written under.
    epoch: u64,
    shared: Arc<Shared>,
    /// The write buffer, kept between rounds (at most [`KEEP_BUFFER`] of capacity).
    buf: Vec<u8>,
}

fn io(context: &str, path: &Path, e: std::io::Error) -> OpenError {
    OpenError::Io(format!("{context} {}: {e}", path.display()))
}

/// The audit files of `dir`, in chain order.
pub fn list(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| chain::parse_file_name(n).is_some())
        .collect();
    names.sort();
    Ok(names)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The first record of a file, its own hash checked: sequence number, time, `prev`. `None`
/// for an empty file.
fn first_record(path: &Path) -> std::io::Result<Option<(u64, u64, [u8; 32])>> {
    use std::io::BufRead as _;
    let mut line = Vec::new();
    std::io::BufReader::new(File::open(path)?).read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: first record unreadable", path.display()),
        )
    };
    let raw = line.strip_suffix(b"\n").ok_or_else(invalid)?;
    // The line alone: a v2 line's hash covers its blob's digest, and only seq, ts and prev
    // are needed here.
    let (record, _) = chain::parse_header(raw, raw.starts_with(b"v2\t")).map_err(|_| invalid())?;
    Ok(Some((record.seq, record.ts, record.prev)))
}

/// The last complete record of a file: sequence number, time, hash, end offset.
type Tail = (u64, u64, [u8; 32], usize);

/// The last complete record of a file's bytes, checking the file's internal chain on the way.
fn tail_of(name: &str, bytes: &[u8]) -> Result<Option<Tail>, OpenError> {
    let (lines, _) = chain::split_lines(bytes);
    let mut last: Option<Tail> = None;
    for (offset, raw) in lines {
        let line = chain::parse_line(raw).map_err(|altered| {
            OpenError::Chain(if altered {
                chain::ChainError::Altered {
                    file: name.into(),
                    offset,
                    seq: None,
                }
            } else {
                chain::ChainError::Malformed {
                    file: name.into(),
                    offset,
                }
            })
        })?;
        if let Some((seq, _, hash, _)) = last {
            if line.seq != seq + 1 || line.prev != hash {
                return Err(OpenError::Chain(chain::ChainError::Broken {
                    file: name.into(),
                    offset,
                    seq: line.seq,
                }));
            }
        }
        last = Some((line.seq, line.ts, line.hash, offset + raw.len() + 1));
    }
    Ok(last)
}

impl Writer {
    fn open(opts: &Options, now: SystemTime) -> Result<Writer, OpenError> {
        let dir = opts.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| io("cannot create", &dir, e))?;
        let key = match &opts.key {
            Some(k) => Some(RecordKey::new(k).ok_or(OpenError::Key)?),
            None => None,
        };
        let names = list(&dir).map_err(|e| io("cannot list", &dir, e))?;
        let mut w = Writer {
            file: Arc::new(File::open(&dir).map_err(|e| io("cannot open", &dir, e))?),
            dir,
            name: String::new(),
            durable_len: 0,
            day: unix(now) / 86_400,
            next_seq: 0,
            prev: ZERO_HASH,
            poisoned: false,
            max_file_bytes: opts.max_file_bytes,
            retention: opts.retention,
            key,
            rng: SystemRandom::new(),
            commit_interval: opts.commit_interval,
            last_ts: unix(now),
            epoch: 0,
            buf: Vec::new(),
            shared: Arc::new(Shared {
                state: Mutex::new(Durability {
                    len: 0,
                    next_seq: 0,
                    prev: ZERO_HASH,
                    last_ts: unix(now),
                    epoch: 0,
                    failed: false,
                    syncs: 0,
                }),
                moved: Condvar::new(),
            }),
        };
        let Some(last_name) = names.last() else {
            w.start_file(0)
                .map_err(|e| io("cannot create a file in", &w.dir, e))?;
            let genesis = format!("{{\"kind\":\"genesis\",\"at\":{}}}", unix(now));
            w.write_records(&[(now, genesis.as_bytes(), None)], false, true)
                .map_err(|e| io("cannot write the genesis record in", &w.dir, e))?;
            return Ok(w);
        };
        // The chain tail: the last file, or the one before it if the last is still empty
        // (a crash between creating a file and writing to it).
        let mut torn: Option<(usize, Vec<u8>)> = None;
        let mut tail = None;
        for (i, name) in names.iter().enumerate().rev() {
            let path = w.dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| io("cannot read", &path, e))?;
            let (_, torn_at) = chain::split_lines(&bytes);
            let found = tail_of(name, &bytes)?;
            if name == last_name {
                if let Some(off) = torn_at {
                    torn = Some((off, bytes[off..].to_vec()));
                }
            } else if torn_at.is_some() {
                return Err(OpenError::Chain(chain::ChainError::Torn {
                    file: name.clone(),
                    offset: torn_at.unwrap_or(0),
                }));
            }
            if let Some(t) = found {
                tail = Some(t);
                break;
            }
            if i == 0 {
                break;
            }
        }
        let Some((seq, ts, hash, _)) = tail else {
            return Err(OpenError::Chain(chain::ChainError::Empty));
        };
        w.next_seq = seq + 1;
        w.prev = hash;
        w.day = ts / 86_400;
        w.last_ts = ts;
        let path = w.dir.join(last_name);
        let first = chain::parse_file_name(last_name).unwrap_or(u64::MAX);
        if first > seq + 1 {
            return Err(OpenError::Chain(chain::ChainError::Misnamed {
                file: last_name.clone(),
            }));
        }
        w.file = Arc::new(
            OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| io("cannot open", &path, e))?,
        );
        w.name = last_name.clone();
        let len = std::fs::metadata(&path)
            .map_err(|e| io("cannot stat", &path, e))?
            .len();
        w.durable_len = len;
        if let Some((offset, bytes)) = torn {
            // Cut the partial record out and put it, whole, into the chain as evidence.
            w.durable_len = offset as u64;
            w.file
                .set_len(w.durable_len)
                .and_then(|()| w.file.sync_all())
                .map_err(|e| io("cannot truncate the torn record of", &path, e))?;
            let record = serde_json::json!({
                "kind": "recovery",
                "at": unix(now),
                "file": last_name,
                "offset": offset,
                "torn_bytes": bytes.len(),
                "torn_b64": base64::engine::general_purpose::STANDARD.encode(&bytes),
            });
            tracing::info!(event = "audit_torn_record_recovered", file = %last_name, offset = %offset);
            w.write_records(&[(now, record.to_string().as_bytes(), None)], false, true)
                .map_err(|e| io("cannot write the recovery record in", &path, e))?;
        }
        w.publish();
        Ok(w)
    }

    /// Takes this writer's chain state as durable. Only right after a synchronous write,
    /// with nothing in flight at the syncer (at open, and at rotation after [`Self::settle`]).
    fn publish(&self) {
        let mut st = self.shared.lock();
        st.len = self.durable_len;
        st.next_seq = self.next_seq;
        st.prev = self.prev;
        st.last_ts = self.last_ts;
        self.shared.moved.notify_all();
    }

    /// Waits until everything written is durable, or a sync failed.
    fn settle(&self) {
        let mut st = self.shared.lock();
        while st.next_seq != self.next_seq && !st.failed && st.epoch == self.epoch {
            st = self
                .shared
                .moved
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Waits while [`MAX_UNSYNCED_BYTES`] or more are written and not yet durable (or until
    /// a sync failed, which the next write round repairs).
    fn throttle(&self) {
        let mut st = self.shared.lock();
        while must_wait(self.durable_len, st.len) && !st.failed && st.epoch == self.epoch {
            st = self
                .shared
                .moved
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// After a failed write or sync: cuts the file back to its durable length and the chain
    /// back to its durable head, and opens a new epoch so that no batch written before is
    /// acknowledged (the syncer checks the epoch after its sync, under the same lock).
    fn repair(&mut self) -> Result<(), AuditError> {
        let mut st = self.shared.lock();
        if !self.poisoned && !st.failed && st.epoch == self.epoch {
            return Ok(());
        }
        st.epoch += 1;
        st.failed = false;
        self.epoch = st.epoch;
        self.poisoned = true;
        let repaired = self
            .file
            .set_len(st.len)
            .and_then(|()| self.file.sync_all());
        if let Err(e) = repaired {
            tracing::warn!(event = "audit_unavailable", error = %e);
            return Err(AuditError::Unavailable);
        }
        self.poisoned = false;
        self.durable_len = st.len;
        self.next_seq = st.next_seq;
        self.prev = st.prev;
        self.last_ts = st.last_ts;
        Ok(())
    }

    /// Starts the writer and syncer threads; returns the count of logins in progress
    /// that the syncer waits for.
    fn start(self, rx: mpsc::Receiver<Job>) -> Result<Arc<Coming>, OpenError> {
        let (to_sync, pending) = std::sync::mpsc::channel::<ToSync>();
        let shared = self.shared.clone();
        let coming = Arc::new(Coming {
            count: AtomicUsize::new(0),
            idle: Mutex::new(()),
            none_left: Condvar::new(),
        });
        let linger = self.commit_interval;
        let waited = coming.clone();
        std::thread::Builder::new()
            .name("varco-audit-sync".into())
            .spawn(move || syncer(&shared, &pending, &waited, linger))
            .map_err(|e| OpenError::Io(format!("cannot start the audit syncer: {e}")))?;
        std::thread::Builder::new()
            .name("varco-audit".into())
            .spawn(move || self.run(rx, to_sync))
            .map_err(|e| OpenError::Io(format!("cannot start the audit writer: {e}")))?;
        Ok(coming)
    }

    /// Creates file `audit-<seq>.log` and makes its directory entry durable. An empty file of
    /// that name (left by an earlier attempt whose directory sync failed) is taken over.
    fn start_file(&mut self, seq: u64) -> std::io::Result<()> {
        let name = chain::file_name(seq);
        let path = self.dir.join(&name);
        let file = Arc::new(OpenOptions::new().append(true).create(true).open(&path)?);
        if file.metadata()?.len() != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists and is not empty", path.display()),
            ));
        }
        sync_dir(&self.dir)?;
        self.file = file;
        self.name = name;
        self.durable_len = 0;
        Ok(())
    }

    fn run(mut self, mut rx: mpsc::Receiver<Job>, to_sync: std::sync::mpsc::Sender<ToSync>) {
        while let Some(job) = rx.blocking_recv() {
            self.throttle();
            let mut batch = take_batch(job, &mut rx);
            // Released after the batch reaches the syncer, so that the syncer, woken by the
            // last release, finds the batch already there.
            let promises: Vec<Promise> =
                batch.iter_mut().filter_map(|j| j.promise.take()).collect();
            match self.write_batch(&batch) {
                // If the syncer is gone the jobs are dropped with the message and their
                // senders see the sink as unavailable.
                Ok(written) => {
                    let _ = to_sync.send((batch, written));
                }
                Err(e) => {
                    for job in batch {
                        // A sender that gave up (client gone) is not an error of the sink.
                        let _ = job.reply.send(Err(e));
                    }
                }
            }
            drop(promises);
        }
    }

    /// Encodes and writes one batch (not synced); returns where it ends in the chain.
    fn write_batch(&mut self, batch: &[Job]) -> Result<Written, AuditError> {
        self.repair()?;
        let latest = batch
            .iter()
            .map(|j| j.ts)
            .max()
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if self.durable_len > 0
            && (self.durable_len >= self.max_file_bytes || unix(latest) / 86_400 != self.day)
        {
            // A file is closed only once all of it is durable, so that a failed sync never
            // has to cut back a file that is no longer the current one.
            self.settle();
            self.repair()?;
            self.rotate(latest).map_err(|e| {
                tracing::warn!(event = "audit_unavailable", error = %format!("rotation: {e}"));
                AuditError::Unavailable
            })?;
        }
        let first = self.next_seq;
        let records: Vec<Plain<'_>> = batch
            .iter()
            .map(|j| (j.ts, j.payload.as_slice(), j.blob.as_deref()))
            .collect();
        self.write_records(&records, true, false).map_err(|e| {
            tracing::warn!(event = "audit_unavailable", error = %e);
            if e.kind() == std::io::ErrorKind::InvalidData {
                AuditError::Encode
            } else {
                AuditError::Unavailable
            }
        })?;
        Ok(Written {
            first,
            file: self.file.clone(),
            end_len: self.durable_len,
            next_seq: self.next_seq,
            prev: self.prev,
            last_ts: self.last_ts,
            epoch: self.epoch,
        })
    }

    /// Encodes and writes records, and syncs them when `sync` (control records, written
    /// with nothing in flight; login batches are synced by the syncer); the in-memory chain
    /// state moves only on success. `encrypt` is false for control records, which stay
    /// readable without the key.
    fn write_records(
        &mut self,
        records: &[Plain<'_>],
        encrypt: bool,
        sync: bool,
    ) -> std::io::Result<()> {
        // The lines are encoded straight into the write buffer, kept from round to round
        // while it is small ([`KEEP_BUFFER`]).
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.reserve(
            records
                .iter()
                .map(|r| r.1.len() + r.2.map_or(0, |b| b.len() + 120) + 160)
                .sum(),
        );
        let (mut seq, mut prev) = (self.next_seq, self.prev);
        let key = if encrypt {
            self.key.as_ref().map(|k| (k, &self.rng))
        } else {
            None
        };
        for (ts, payload, blob) in records {
            prev = chain::encode_into(&mut buf, seq, unix(*ts), &prev, payload, *blob, key)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "encode"))?;
            seq += 1;
        }
        let written = (&*self.file)
            .write_all(&buf)
            .and_then(|()| if sync { self.file.sync_data() } else { Ok(()) });
        let len = buf.len() as u64;
        if buf.capacity() <= KEEP_BUFFER {
            self.buf = buf;
        }
        if let Err(e) = written {
            self.poisoned = true;
            return Err(e);
        }
        self.durable_len += len;
        self.next_seq = seq;
        self.prev = prev;
        if let Some((ts, _, _)) = records.last() {
            self.last_ts = self.last_ts.max(unix(*ts));
        }
        if sync {
            self.publish();
        }
        Ok(())
    }

    fn rotate(&mut self, now: SystemTime) -> std::io::Result<()> {
        let closed = self.name.clone();
        self.start_file(self.next_seq)?;
        self.publish();
        self.day = unix(now) / 86_400;
        tracing::info!(event = "audit_file_closed", file = %closed, last_seq = %self.next_seq.saturating_sub(1), head = %chain::hex(&self.prev));
        if let Err(e) = self.prune(now) {
            // Pruning late is not a reason to refuse logins; it is retried at the next
            // rotation.
            tracing::warn!(event = "audit_prune_failed", error = %e);
        }
        Ok(())
    }

    /// Deletes the oldest files whose newest record is older than the retention period,
    /// after a durable `pruned` record anchors the chain at the last deleted record.
    ///
    /// A closed file's newest record is known without reading the file: the next file's
    /// first record points at it (`prev`, `seq - 1`) and was appended after it, so its `ts`
    /// stands in for the newest record's (records carry their login's clock: two in a row
    /// may differ by a second the wrong way, nothing against a retention of months). Each
    /// candidate costs one line of its successor, not a re-read of 64 MB at every rotation.
    fn prune(&mut self, now: SystemTime) -> std::io::Result<()> {
        let cutoff = unix(now).saturating_sub(self.retention.as_secs());
        let names = list(&self.dir)?;
        let mut through = None;
        for (i, pair) in names.windows(2).enumerate() {
            let (name, next) = (&pair[0], &pair[1]);
            if *name == self.name {
                break;
            }
            let successor = first_record(&self.dir.join(next))?;
            let (seq, ts, hash) = match successor {
                Some((seq, ts, prev)) => (seq.saturating_sub(1), ts, prev),
                // The file in progress, still empty right after a rotation: the newest
                // record is the one this writer made durable last.
                None if *next == self.name => {
                    (self.next_seq.saturating_sub(1), self.last_ts, self.prev)
                }
                // An empty leftover file between closed files: decide on the one after it.
                None => continue,
            };
            if ts >= cutoff {
                break;
            }
            // Empty leftovers skipped above go with the files before them.
            through = Some((i, seq, hash));
        }
        let Some((last, seq, hash)) = through else {
            return Ok(());
        };
        let doomed = &names[..=last];
        let record = serde_json::json!({
            "kind": "pruned",
            "at": unix(now),
            "before": cutoff,
            "through_seq": seq,
            "through_hash": chain::hex(&hash),
            "files": doomed,
        });
        self.write_records(&[(now, record.to_string().as_bytes(), None)], false, true)?;
        for name in doomed {
            std::fs::remove_file(self.dir.join(name))?;
        }
        sync_dir(&self.dir)?;
        tracing::info!(event = "audit_pruned", through_seq = %seq, files = %doomed.len());
        Ok(())
    }
}

/// The syncer's loop: takes every batch written since its last sync; while logins are still
/// in progress (`coming`), waits for their batches, at most `linger`; then syncs the group.
fn syncer(
    shared: &Shared,
    pending: &std::sync::mpsc::Receiver<ToSync>,
    coming: &Coming,
    linger: Duration,
) {
    while let Ok(first) = pending.recv() {
        let deadline = std::time::Instant::now() + linger;
        coming.wait_none_left(deadline);
        let mut group = vec![first];
        group.extend(pending.try_iter());
        sync_group(shared, group);
    }
}

/// Whether a writer that wrote `written` bytes of the current file, of which `durable` are
/// on stable storage, must wait for the syncer before writing more.
fn must_wait(written: u64, durable: u64) -> bool {
    written.saturating_sub(durable) >= MAX_UNSYNCED_BYTES
}

/// A record to encode: its time, JSON payload and blob.
type Plain<'a> = (SystemTime, &'a [u8], Option<&'a [u8]>);

/// The bytes a queued record brings to a write round: its payload and its blob.
fn job_bytes(j: &Job) -> usize {
    j.payload.len() + j.blob.as_ref().map_or(0, |b| b.len())
}

/// One write round: `first` and whatever else is queued now, up to [`MAX_BATCH`] records
/// and [`MAX_BATCH_BYTES`] of payload and blobs.
fn take_batch(first: Job, rx: &mut mpsc::Receiver<Job>) -> Vec<Job> {
    let mut bytes = job_bytes(&first);
    let mut batch = Vec::with_capacity(64);
    batch.push(first);
    while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
        match rx.try_recv() {
            Ok(j) => {
                bytes += job_bytes(&j);
                batch.push(j);
            }
            Err(_) => break,
        }
    }
    batch
}

/// Makes a group of written batches durable with one `fdatasync` per file (one file: the
/// writer rotates only when nothing is in flight), then answers their senders. Batches of a
/// closed epoch are refused without a sync; so is the whole group if a repair started
/// while the sync ran (checked under the lock the repair holds while it truncates).
fn sync_group(shared: &Shared, group: Vec<(Vec<Job>, Written)>) {
    let epoch = {
        let st = shared.lock();
        (!st.failed).then_some(st.epoch)
    };
    let (live, dead): (Vec<_>, Vec<_>) =
        group.into_iter().partition(|(_, w)| Some(w.epoch) == epoch);
    for (jobs, _) in dead {
        for job in jobs {
            let _ = job.reply.send(Err(AuditError::Unavailable));
        }
    }
    let Some((_, last)) = live.last() else {
        return;
    };
    let mut synced: Result<(), std::io::Error> = Ok(());
    for (i, (_, w)) in live.iter().enumerate() {
        let seen = live[..i].iter().any(|(_, o)| Arc::ptr_eq(&o.file, &w.file));
        if !seen && synced.is_ok() {
            synced = w.file.sync_data();
        }
    }
    let ok = {
        let mut st = shared.lock();
        st.syncs += 1;
        let ok = match &synced {
            Ok(()) => !st.failed && st.epoch == last.epoch,
            Err(e) => {
                tracing::warn!(event = "audit_unavailable", error = %e);
                st.failed = true;
                false
            }
        };
        if ok {
            st.len = last.end_len;
            st.next_seq = last.next_seq;
            st.prev = last.prev;
            st.last_ts = last.last_ts;
        }
        shared.moved.notify_all();
        ok
    };
    let size: usize = live.iter().map(|(jobs, _)| jobs.len()).sum();
    for (jobs, w) in live {
        for (i, job) in jobs.into_iter().enumerate() {
            let answer = if ok {
                Ok(Durable {
                    seq: w.first + i as u64,
                    batch: size,
                })
            } else {
                Err(AuditError::Unavailable)
            };
            let _ = job.reply.send(answer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path) -> Options {
        Options {
            dir: dir.to_path_buf(),
            max_file_bytes: 64 * 1024 * 1024,
            retention: Duration::from_secs(731 * 86_400),
            key: None,
            commit_interval: Duration::ZERO,
        }
    }

    fn tempdir(label: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("varco-audit-unit-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn read_all(dir: &Path) -> Vec<(String, Vec<u8>)> {
        list(dir)
            .unwrap()
            .into_iter()
            .map(|n| {
                let b = std::fs::read(dir.join(&n)).unwrap();
                (n, b)
            })
            .collect()
    }

    fn day(n: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(n * 86_400 + 3600)
    }

    #[test]
    fn concurrent_appends_share_fsyncs_and_the_chain_verifies() {
        let dir = tempdir("group");
        let sink = Arc::new(FileSink::open(&opts(&dir), day(20_000)).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let seqs: Vec<u64> = rt.block_on(async {
            let tasks: Vec<_> = (0..200)
                .map(|i| {
                    let s = sink.clone();
                    tokio::spawn(async move {
                        s.append(
                            day(20_000),
                            format!("{{\"kind\":\"login\",\"i\":{i}}}").into_bytes(),
                        )
                        .await
                        .unwrap()
                        .seq
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        let mut sorted = seqs;
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=200).collect::<Vec<_>>());
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!((v.first_seq, v.last_seq, v.records), (0, 200, 201));
    }

    #[test]
    fn a_due_sync_waits_for_the_logins_in_progress_and_no_longer() {
        let dir = tempdir("expected");
        // A wait that would outlast the test: only the logins' own progress ends it.
        let o = Options {
            commit_interval: Duration::from_secs(3600),
            ..opts(&dir)
        };
        let sink = Arc::new(FileSink::open(&o, day(20_000)).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        // Not a timing bound: a liveness guard, far below the hour the syncer could wait.
        let guard = Duration::from_secs(120);
        let batches: Vec<usize> = rt.block_on(async {
            // Two logins in progress; a record (of a third) is written meanwhile: its sync
            // waits for them, and the three records share it.
            let (e1, e2) = (sink.expect(), sink.expect());
            let s = sink.clone();
            let first = tokio::spawn(async move { s.append(day(20_000), b"{}".to_vec()).await });
            let s = sink.clone();
            let second =
                tokio::spawn(
                    async move { s.append_as(day(20_000), b"{}".to_vec(), None, &e1).await },
                );
            let s = sink.clone();
            let third =
                tokio::spawn(
                    async move { s.append_as(day(20_000), b"{}".to_vec(), None, &e2).await },
                );
            let mut out = Vec::new();
            for t in [first, second, third] {
                let d = tokio::time::timeout(guard, t)
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
                out.push(d.batch);
            }
            // Nothing in progress (a promise given up counts as done): synced at once.
            drop(sink.expect());
            let lone = tokio::time::timeout(guard, sink.append(day(20_000), b"{}".to_vec()))
                .await
                .unwrap()
                .unwrap();
            out.push(lone.batch);
            out
        });
        assert_eq!(batches, vec![3, 3, 3, 1]);
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!(v.last_seq, 4);
    }

    #[test]
    fn a_torn_tail_is_reported_then_moved_into_a_recovery_record_on_restart() {
        let dir = tempdir("torn");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        {
            let sink = FileSink::open(&opts(&dir), day(20_000)).unwrap();
            for i in 0..3 {
                rt.block_on(sink.append(day(20_000), format!("{{\"i\":{i}}}").into_bytes()))
                    .unwrap();
            }
        }
        let path = dir.join(chain::file_name(0));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 7);
        let torn_len = bytes.len()
            - bytes[..bytes.len()]
                .iter()
                .rposition(|&b| b == b'\n')
                .unwrap()
            - 1;
        std::fs::write(&path, &bytes).unwrap();
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!(v.last_seq, 2);
        assert_eq!(v.torn_tail.as_ref().map(|t| t.2), Some(torn_len));

        // Restarting keeps the chain whole: the torn bytes become a recovery record.
        let sink = FileSink::open(&opts(&dir), day(20_000)).unwrap();
        let seq = rt
            .block_on(sink.append(day(20_000), b"{\"i\":9}".to_vec()))
            .unwrap()
            .seq;
        assert_eq!(seq, 4);
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!((v.last_seq, v.torn_tail), (4, None));
        let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        assert!(text.contains("\"kind\":\"recovery\""), "{text}");
    }

    #[test]
    fn blobs_beside_records_survive_a_restart_and_a_torn_blob_is_recovered() {
        let dir = tempdir("blob");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let blob: Arc<[u8]> = Arc::from(&b"<Response>\n\tline\n</Response>"[..]);
        {
            let sink = FileSink::open(&opts(&dir), day(20_000)).unwrap();
            for i in 0..3 {
                let d = rt
                    .block_on(sink.append_as(
                        day(20_000),
                        format!("{{\"i\":{i}}}").into_bytes(),
                        Some(blob.clone()),
                        &Expected::default(),
                    ))
                    .unwrap();
                assert_eq!(d.seq, i + 1);
            }
        }
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!((v.last_seq, v.torn_tail), (3, None));
        // A restart continues the chain after the records with blobs.
        {
            let sink = FileSink::open(&opts(&dir), day(20_000)).unwrap();
            let seq = rt
                .block_on(sink.append(day(20_000), b"{}".to_vec()))
                .unwrap()
                .seq;
            assert_eq!(seq, 4);
        }
        // A crash in the middle of the last record's blob: the prefix verifies, the torn
        // record is moved into a recovery record at the next start.
        {
            let sink = FileSink::open(&opts(&dir), day(20_000)).unwrap();
            rt.block_on(sink.append_as(
                day(20_000),
                b"{\"i\":5}".to_vec(),
                Some(blob),
                &Expected::default(),
            ))
            .unwrap();
        }
        let path = dir.join(chain::file_name(0));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 9);
        std::fs::write(&path, &bytes).unwrap();
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!(v.last_seq, 4);
        assert!(v.torn_tail.is_some());
        let sink = FileSink::open(&opts(&dir), day(20_000)).unwrap();
        assert_eq!(
            rt.block_on(sink.append(day(20_000), b"{}".to_vec()))
                .unwrap()
                .seq,
            6
        );
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!((v.last_seq, v.torn_tail), (6, None));
    }

    #[test]
    fn daily_rotation_chains_files_and_retention_prunes_under_an_anchor() {
        let dir = tempdir("prune");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = Options {
            retention: Duration::from_secs(10 * 86_400),
            ..opts(&dir)
        };
        {
            let sink = FileSink::open(&o, day(100)).unwrap();
            for d in [100, 101, 102, 120] {
                rt.block_on(sink.append(day(d), b"{\"kind\":\"login\"}".to_vec()))
                    .unwrap();
            }
        }
        // Day 120: rotation pruned the files of days 100-102 (older than 10 days).
        let files = read_all(&dir);
        assert_eq!(
            files.len(),
            1,
            "{:?}",
            files.iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        let v = chain::verify(&files, None).unwrap();
        assert_eq!(v.first_seq, 4);
        let text = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(text.contains("\"kind\":\"pruned\""), "{text}");
        // Deleting the anchor record's file content is caught: drop the pruned line.
        let kept: Vec<&str> = text.lines().filter(|l| !l.contains("pruned")).collect();
        let without = vec![(
            files[0].0.clone(),
            format!("{}\n", kept.join("\n")).into_bytes(),
        )];
        assert!(chain::verify(&without, None).is_err());
    }

    #[test]
    fn a_failed_write_fails_the_batch_and_a_lost_directory_fails_rotation() {
        let dir = tempdir("fail");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let o = Options {
            max_file_bytes: 1,
            ..opts(&dir)
        };
        let sink = FileSink::open(&o, day(1)).unwrap();
        rt.block_on(sink.append(day(1), b"{}".to_vec())).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            rt.block_on(sink.append(day(1), b"{}".to_vec())),
            Err(AuditError::Unavailable)
        );
        // The directory back: the chain continues where it was durable.
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            rt.block_on(sink.append(day(1), b"{}".to_vec()))
                .map(|d| d.seq),
            Ok(2)
        );

        // A device that refuses writes: the batch fails, nothing is acknowledged.
        let mut w = Writer::open(&opts(&tempdir("full")), day(1)).unwrap();
        w.file = Arc::new(OpenOptions::new().append(true).open("/dev/full").unwrap());
        let (reply, _rx) = oneshot::channel();
        let job = Job {
            ts: day(1),
            payload: b"{}".to_vec(),
            blob: None,
            reply,
            promise: None,
        };
        assert_eq!(
            w.write_batch(&[job]).map(|w| w.first),
            Err(AuditError::Unavailable)
        );
        assert!(w.poisoned);
        assert_eq!(w.next_seq, 1);
    }

    #[test]
    fn rotation_takes_over_an_empty_leftover_file_but_never_a_written_one() {
        let dir = tempdir("leftover");
        let o = Options {
            max_file_bytes: 1,
            ..opts(&dir)
        };
        let mut w = Writer::open(&o, day(1)).unwrap();
        let job = || {
            let (reply, rx) = oneshot::channel();
            let job = Job {
                ts: day(1),
                payload: b"{}".to_vec(),
                blob: None,
                reply,
                promise: None,
            };
            (job, rx)
        };
        std::fs::write(dir.join(chain::file_name(1)), b"").unwrap();
        let (j, mut rx) = job();
        let written = w.write_batch(std::slice::from_ref(&j)).unwrap();
        assert_eq!(written.first, 1);
        sync_group(&w.shared, vec![(vec![j], written)]);
        assert_eq!(rx.try_recv().unwrap().map(|d| d.seq), Ok(1));
        std::fs::write(dir.join(chain::file_name(2)), b"x").unwrap();
        let (j, _rx) = job();
        assert_eq!(
            w.write_batch(&[j]).map(|w| w.first),
            Err(AuditError::Unavailable)
        );
        assert_eq!(w.next_seq, 2);
    }

    fn job(n: u8) -> (Job, oneshot::Receiver<Result<Durable, AuditError>>) {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            ts: day(1),
            payload: format!("{{\"i\":{n}}}").into_bytes(),
            blob: None,
            reply,
            promise: None,
        };
        (job, rx)
    }

    #[test]
    fn a_burst_queued_at_once_is_written_and_synced_once() {
        let dir = tempdir("burst");
        let w = Writer::open(&opts(&dir), day(1)).unwrap();
        let shared = w.shared.clone();
        let (tx, rx) = mpsc::channel(QUEUE);
        let mut answers = Vec::new();
        // All 300 are queued before the threads start: the writer's first round takes them
        // all, so the count below does not depend on scheduling.
        for n in 0..300 {
            let (j, a) = job((n % 200) as u8);
            tx.try_send(j).map_err(|_| "queue").unwrap();
            answers.push(a);
        }
        w.start(rx).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let done: Vec<Durable> = rt.block_on(async {
            let mut out = Vec::new();
            for a in answers {
                out.push(a.await.unwrap().unwrap());
            }
            out
        });
        assert!(done.iter().all(|d| d.batch == 300), "{done:?}");
        assert_eq!(
            done.iter().map(|d| d.seq).collect::<Vec<_>>(),
            (1..=300).collect::<Vec<_>>()
        );
        // The genesis record was synced by the writer at open; the burst took one sync.
        assert_eq!(shared.lock().syncs, 1);
        drop(tx);
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!(v.last_seq, 300);
    }

    #[test]
    fn a_write_round_is_capped_in_records_and_in_bytes() {
        let rounds = |jobs: Vec<Job>| {
            let (tx, mut rx) = mpsc::channel(QUEUE);
            for j in jobs {
                tx.try_send(j).map_err(|_| "queue").unwrap();
            }
            let mut sizes = Vec::new();
            while let Ok(first) = rx.try_recv() {
                sizes.push(take_batch(first, &mut rx).len());
            }
            sizes
        };
        let small: Vec<Job> = (0..MAX_BATCH + 6).map(|n| job(n as u8).0).collect();
        assert_eq!(rounds(small), vec![MAX_BATCH, 6]);
        // Records of a quarter of the cap: four to a round; one over the cap goes alone.
        let big = |len: usize| {
            let (mut j, _) = job(0);
            j.payload = vec![b' '; len];
            j
        };
        let mut jobs: Vec<Job> = (0..10).map(|_| big(MAX_BATCH_BYTES / 4)).collect();
        jobs.insert(0, big(MAX_BATCH_BYTES + 1));
        assert_eq!(rounds(jobs), vec![1, 4, 4, 2]);
    }

    #[test]
    fn the_writer_stops_ahead_of_the_syncer_at_the_unsynced_cap() {
        assert!(!must_wait(MAX_UNSYNCED_BYTES - 1, 0));
        assert!(must_wait(MAX_UNSYNCED_BYTES, 0));
        assert!(!must_wait(MAX_UNSYNCED_BYTES + 10, 11));
        // A durable length past the written one (right after a repair) is no debt.
        assert!(!must_wait(5, 10));
    }

    #[test]
    fn every_answer_follows_a_sync_that_covers_its_record() {
        let dir = tempdir("durable");
        let w = Writer::open(&opts(&dir), day(1)).unwrap();
        let shared = w.shared.clone();
        let (tx, rx) = mpsc::channel(QUEUE);
        let coming = w.start(rx).unwrap();
        let sink = Arc::new(FileSink { tx, coming });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        // Arrivals spread over many write rounds and syncs (each task yields a different
        // number of times first), as logins arrive under load.
        let seen: Vec<(u64, u64, u64)> = rt.block_on(async {
            let tasks: Vec<_> = (0..300u64)
                .map(|i| {
                    let (s, shared) = (sink.clone(), shared.clone());
                    tokio::spawn(async move {
                        for _ in 0..i % 17 {
                            tokio::task::yield_now().await;
                        }
                        let d = s.append(day(1), b"{}".to_vec()).await.unwrap();
                        // What is on stable storage when the answer is in hand.
                        let st = shared.lock();
                        (d.seq, st.next_seq, st.syncs)
                    })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for (seq, durable_next, syncs) in &seen {
            assert!(
                seq < durable_next && *syncs >= 1,
                "record {seq} answered with the durable chain ending before it ({durable_next}, {syncs} syncs)"
            );
        }
        let syncs = shared.lock().syncs;
        assert!((1..=300).contains(&syncs), "{syncs} syncs for 300 records");
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!(v.last_seq, 300);
    }

    #[test]
    fn batches_written_during_a_sync_share_the_next_one_and_wait_for_it() {
        let dir = tempdir("pipeline");
        let mut w = Writer::open(&opts(&dir), day(1)).unwrap();
        let mut group = Vec::new();
        let mut answers = Vec::new();
        // Three write rounds while the syncer is busy (it has not run yet).
        for n in 0..3 {
            let (j, a) = job(n);
            let written = w.write_batch(std::slice::from_ref(&j)).unwrap();
            group.push((vec![j], written));
            answers.push(a);
        }
        // Written is not durable: nobody has an answer before the sync.
        for a in &mut answers {
            assert!(a.try_recv().is_err());
        }
        assert_eq!(w.shared.lock().next_seq, 1);
        sync_group(&w.shared, group);
        let st = w.shared.lock();
        assert_eq!((st.syncs, st.next_seq), (1, 4));
        drop(st);
        for (i, mut a) in answers.into_iter().enumerate() {
            assert_eq!(
                a.try_recv().unwrap(),
                Ok(Durable {
                    seq: i as u64 + 1,
                    batch: 3
                })
            );
        }
    }

    #[test]
    fn a_repair_refuses_every_batch_written_before_it_and_rewrites_the_chain() {
        let dir = tempdir("epoch");
        let mut w = Writer::open(&opts(&dir), day(1)).unwrap();
        let (j1, mut a1) = job(1);
        let w1 = w.write_batch(std::slice::from_ref(&j1)).unwrap();
        // A later write fails (as on a full disk): the writer must cut back to seq 0.
        w.poisoned = true;
        let (j2, mut a2) = job(2);
        let w2 = w.write_batch(std::slice::from_ref(&j2)).unwrap();
        assert_eq!(
            w2.first, 1,
            "the repaired chain continues from the durable head"
        );
        // The first batch reaches the syncer late: its bytes were cut, it is refused.
        sync_group(&w.shared, vec![(vec![j1], w1), (vec![j2], w2)]);
        assert_eq!(a1.try_recv().unwrap(), Err(AuditError::Unavailable));
        assert_eq!(a2.try_recv().unwrap().map(|d| (d.seq, d.batch)), Ok((1, 1)));
        let v = chain::verify(&read_all(&dir), None).unwrap();
        assert_eq!((v.last_seq, v.records), (1, 2));
        let text = String::from_utf8(read_all(&dir)[0].1.clone()).unwrap();
        assert!(
            text.contains("{\"i\":2}") && !text.contains("{\"i\":1}"),
            "{text}"
        );
    }
}
