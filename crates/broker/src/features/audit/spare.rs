//! Audit files written with zeros ahead of their use (issue 20, target 2).
//!
//! Why: appending to a file changes its size and its extents, so every `fdatasync` of a
//! growing file also commits the file system's journal, and on ext4 (`data=ordered`, the
//! default) a commit first writes out the other files' newly allocated dirty data: the
//! broker's own log, the IdP's, anything else on the disk. An audit sync then waits for
//! someone else's writeback, tens of milliseconds at the start of a load test whose
//! preparation left megabytes of log behind (docs/PERFORMANCE.md, "Target 2: files written
//! ahead"). Overwriting blocks that are already written, and whose allocation the journal has
//! already committed, changes nothing `fdatasync` must make durable but the data: the sync is
//! the data's write and the device's flush, and no journal commit. PostgreSQL fills its WAL
//! segments with zeros before use for the same reason.
//!
//! The zeroer thread prepares one spare at a time, under a name no chain file can have
//! ([`SPARE_NAME`]): it writes the spare whole with zeros in small steps, syncing every
//! [`SYNC_EVERY`] so that what it queues at the device ahead of an audit sync stays small,
//! makes it durable and hands it over. The writer takes it at its next rotation: it links it
//! under the new file's name (a link fails if that name exists, so no written file is ever
//! replaced), removes the spare's name and syncs the directory. A preallocated file that is
//! closed is cut back to its records by the zeroer, off the login path; until then, and
//! forever if the broker stops first, its zero tail is not part of the chain
//! ([`super::chain::written`]).
//!
//! The cost is the bytes: every audit byte is written twice, once as a zero. Nothing waits
//! for a spare: while none is ready the writer appends to a growing file as before.
//!
//! May import: the leaf.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The spare's name in the chain's directory: not an audit file name
/// ([`super::chain::parse_file_name`]), so `list`, `verify` and pruning never see it.
pub const SPARE_NAME: &str = "audit-spare.tmp";
/// Bytes of zeros per write.
const STEP: usize = 256 * 1024;
/// The zeroer syncs the spare every this many bytes.
const SYNC_EVERY: u64 = 1024 * 1024;
/// Pause after each step: at most 64 MiB/s of zeros, so a 64 MiB spare takes about a second
/// of a disk that the audit syncs share.
const PAUSE: Duration = Duration::from_millis(4);

enum Task {
    /// Write a spare of this many bytes (unless one is ready).
    Prepare(u64),
    /// Cut a closed file back to its records.
    Trim(Arc<File>, u64, String),
}

/// The writer's handle on the zeroer thread.
pub struct Spares {
    dir: PathBuf,
    ready: Arc<Mutex<Option<File>>>,
    tx: Sender<Task>,
}

impl Spares {
    /// Starts the zeroer for `dir`. A spare left by an earlier run is removed: it may be
    /// partly written, and a new one costs only zeros.
    pub fn start(dir: &Path) -> std::io::Result<Spares> {
        match std::fs::remove_file(dir.join(SPARE_NAME)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let ready = Arc::new(Mutex::new(None));
        let (d, r) = (dir.to_path_buf(), ready.clone());
        std::thread::Builder::new()
            .name("varco-audit-zero".into())
            .spawn(move || zeroer(&d, &r, &rx))?;
        Ok(Spares {
            dir: dir.to_path_buf(),
            ready,
            tx,
        })
    }

    /// Asks for a spare of `size` bytes.
    pub fn prepare(&self, size: u64) {
        let _ = self.tx.send(Task::Prepare(size));
    }

    /// Whether a spare is ready to be taken.
    pub fn is_ready(&self) -> bool {
        self.lock().is_some()
    }

    /// Moves the ready spare, if any, to `path` (which must not exist) and makes the new
    /// name durable. On failure the spare stays ready and the error is returned.
    pub fn take_as(&self, path: &Path) -> std::io::Result<Option<File>> {
        let mut slot = self.lock();
        if slot.is_none() {
            return Ok(None);
        }
        let spare = self.dir.join(SPARE_NAME);
        std::fs::hard_link(&spare, path)?;
        // The name must still be ours: another sink on this directory (a second process,
        // or a sink reopened while the old zeroer finishes) may have replaced the spare,
        // and records written into a file no name points at would be lost.
        let ours = |f: &File| -> std::io::Result<bool> {
            use std::os::unix::fs::MetadataExt as _;
            let (a, b) = (std::fs::metadata(path)?, f.metadata()?);
            Ok((a.dev(), a.ino()) == (b.dev(), b.ino()))
        };
        let checked = match slot.as_ref() {
            Some(f) => ours(f),
            None => Ok(false),
        };
        let moved = match checked {
            Ok(true) => std::fs::remove_file(&spare).and_then(|()| sync_dir(&self.dir)),
            Ok(false) => {
                slot.take();
                Err(std::io::Error::other("the spare was replaced"))
            }
            Err(e) => Err(e),
        };
        if let Err(e) = moved {
            // The new name holds nothing but zeros, or no record: removed, so the caller
            // starts a plain file under it.
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(slot.take())
    }

    /// Cuts a closed file back to its `len` bytes of records, in the background.
    pub fn trim(&self, file: Arc<File>, len: u64, name: String) {
        let _ = self.tx.send(Task::Trim(file, len, name));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<File>> {
        // An `Option` set or taken in one step: a poisoned lock is still consistent.
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The zeroer's loop: one task at a time, until the writer is gone.
fn zeroer(dir: &Path, ready: &Mutex<Option<File>>, rx: &Receiver<Task>) {
    while let Ok(task) = rx.recv() {
        match task {
            Task::Prepare(size) => {
                if ready
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some()
                {
                    continue;
                }
                match write_spare(dir, size) {
                    Ok(file) => {
                        *ready.lock().unwrap_or_else(PoisonError::into_inner) = Some(file);
                    }
                    Err(e) => {
                        // No spare: the writer keeps appending to growing files, and asks
                        // again at its next rotation.
                        tracing::warn!(event = "audit_spare_failed", error = %e);
                        let _ = std::fs::remove_file(dir.join(SPARE_NAME));
                    }
                }
            }
            Task::Trim(file, len, name) => {
                if let Err(e) = file.set_len(len).and_then(|()| file.sync_all()) {
                    // The zero tail stays; readers skip it (`chain::written`).
                    tracing::warn!(event = "audit_trim_failed", file = %name, error = %e);
                }
            }
        }
    }
}

/// Writes the spare whole with zeros and makes it durable, blocks and size.
fn write_spare(dir: &Path, size: u64) -> std::io::Result<File> {
    let path = dir.join(SPARE_NAME);
    let _ = std::fs::remove_file(&path);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let zeros = vec![0u8; STEP];
    let mut at = 0u64;
    let mut unsynced = 0u64;
    while at < size {
        let n = (size - at).min(STEP as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
        unsynced += n as u64;
        if unsynced >= SYNC_EVERY {
            file.sync_data()?;
            unsynced = 0;
        }
        std::thread::sleep(PAUSE);
    }
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_is_written_whole_with_zeros_then_moved_under_its_new_name_only() {
        let dir = std::env::temp_dir().join(format!("varco-spare-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A leftover of an earlier run is replaced.
        std::fs::write(dir.join(SPARE_NAME), b"partly written").unwrap();
        let spares = Spares::start(&dir).unwrap();
        assert!(!dir.join(SPARE_NAME).exists());
        assert!(spares.take_as(&dir.join("x.log")).unwrap().is_none());
        spares.prepare(3 * STEP as u64 + 10);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !spares.is_ready() {
            assert!(std::time::Instant::now() < deadline, "no spare");
            std::thread::sleep(Duration::from_millis(5));
        }
        let bytes = std::fs::read(dir.join(SPARE_NAME)).unwrap();
        assert_eq!(bytes.len(), 3 * STEP + 10);
        assert!(bytes.iter().all(|&b| b == 0));
        // A name that exists is never replaced: the spare stays ready.
        std::fs::write(dir.join("taken.log"), b"records").unwrap();
        assert!(spares.take_as(&dir.join("taken.log")).is_err());
        assert_eq!(std::fs::read(dir.join("taken.log")).unwrap(), b"records");
        assert!(spares.is_ready());
        let file = spares.take_as(&dir.join("new.log")).unwrap().unwrap();
        assert!(!dir.join(SPARE_NAME).exists() && !spares.is_ready());
        assert_eq!(file.metadata().unwrap().len(), 3 * STEP as u64 + 10);
        // A closed file is cut back to its records in the background.
        file.write_all_at(b"rec\n", 0).unwrap();
        spares.trim(Arc::new(file), 4, "new.log".into());
        while std::fs::metadata(dir.join("new.log")).unwrap().len() != 4 {
            assert!(std::time::Instant::now() < deadline, "not trimmed");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(std::fs::read(dir.join("new.log")).unwrap(), b"rec\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
