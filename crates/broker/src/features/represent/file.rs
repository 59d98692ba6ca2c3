//! The signed-file source: a JWS file the portal writes (`identity::represent::signed_file`),
//! read at start (a missing or refused file is a configuration error) and looked at again
//! every `reload_seconds`: when its size or modification time changed, it is read and
//! verified off the async workers. A new file that is refused, older than the one held
//! (`iat` going back: a rollback to a list with revoked records still in it) or missing
//! leaves the held one in force, but never past the held file's own `exp`: after that the
//! source is unavailable and every lookup fails closed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use identity::Principal;
use identity::represent::signed_file::{FileLimits, SignedFile};
use identity::represent::{Representations, Source as _, SourceKind};

use super::{DEFAULT_RELOAD_SECONDS, Lookup, RawSource, RepresentationSource, SourceError};

/// A configured signed file.
pub struct FileSource {
    id: String,
    path: PathBuf,
    verifier: SignedFile,
    reload: u64,
    held: Mutex<Held>,
    /// One reload at a time; the others keep using what is held.
    reloading: tokio::sync::Mutex<()>,
}

struct Held {
    reps: Option<Arc<Representations>>,
    /// Size and modification time of the file `reps` came from (or was refused).
    stamp: Option<(u64, SystemTime)>,
    checked_at: u64,
}

fn stamp(path: &Path) -> std::io::Result<(u64, SystemTime)> {
    let m = std::fs::metadata(path)?;
    Ok((m.len(), m.modified()?))
}

/// Reads and verifies the file: blocking (file I/O, a signature over up to 8 MiB).
fn load(
    verifier: &SignedFile,
    path: &Path,
    now: u64,
) -> Result<((u64, SystemTime), Representations), SourceError> {
    let unavailable = |e: std::io::Error| SourceError::Unavailable {
        reason: "no_file",
        detail: format!("{}: {e}", path.display()),
    };
    let st = stamp(path).map_err(unavailable)?;
    let bytes = std::fs::read(path).map_err(unavailable)?;
    let reps = verifier.verify(&bytes, now).map_err(SourceError::Refused)?;
    Ok((st, reps))
}

pub(super) fn validate(
    raw: &RawSource,
    key: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
    now: u64,
    bad: &mut dyn FnMut(&str, String),
) -> Option<FileSource> {
    let (Some(file), Some(issuer), Some(jwks_file)) = (&raw.file, &raw.issuer, &raw.jwks_file)
    else {
        bad(
            key,
            "a signed_file source needs file, issuer and jwks_file".into(),
        );
        return None;
    };
    let jwks_path = resolve(jwks_file);
    let keys = match std::fs::read(&jwks_path)
        .map_err(|e| e.to_string())
        .and_then(|b| jose::Jwks::from_json(&b).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(e) => {
            bad(
                &format!("{key}.jwks_file"),
                format!("{}: {e}", jwks_path.display()),
            );
            return None;
        }
    };
    let mut limits = FileLimits::default();
    if let Some(b) = raw.max_bytes {
        limits.max_bytes = b;
    }
    if let Some(r) = raw.max_records {
        limits.max_records = r;
    }
    let verifier = SignedFile::new(&raw.id, issuer, keys, limits);
    let path = resolve(file);
    match load(&verifier, &path, now) {
        Ok((st, reps)) => Some(FileSource {
            id: raw.id.clone(),
            path,
            verifier,
            reload: raw.reload_seconds.unwrap_or(DEFAULT_RELOAD_SECONDS),
            held: Mutex::new(Held {
                reps: Some(Arc::new(reps)),
                stamp: Some(st),
                checked_at: now,
            }),
            reloading: tokio::sync::Mutex::new(()),
        }),
        Err(e) => {
            bad(&format!("{key}.file"), format!("{}: {e}", path.display()));
            None
        }
    }
}

impl FileSource {
    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Looks at the file again if `reload_seconds` have passed and nobody else is.
    async fn maybe_reload(&self, now: u64) {
        let (due, old_stamp, old_iat) = {
            let h = self.held();
            (
                now >= h.checked_at.saturating_add(self.reload),
                h.stamp,
                h.reps.as_ref().and_then(|r| r.issued_at()),
            )
        };
        if !due {
            return;
        }
        let Ok(_guard) = self.reloading.try_lock() else {
            return;
        };
        self.held().checked_at = now;
        let path = self.path.clone();
        let verifier = self.verifier.clone();
        let id = self.id.clone();
        let done = tokio::task::spawn_blocking(move || match stamp(&path) {
            Ok(st) if Some(st) == old_stamp => None,
            Err(e) => {
                tracing::warn!(event = "represent_file_missing", source = %id, error = %e);
                None
            }
            Ok(st) => Some((st, load(&verifier, &path, now))),
        })
        .await;
        match done {
            Ok(Some((_, Ok((st, reps))))) => {
                if let (Some(old), Some(new)) = (old_iat, reps.issued_at()) {
                    if new < old {
                        tracing::warn!(event = "represent_file_refused", source = %self.id, code = "represent.rollback", "the new file is older than the one in force; kept the one in force");
                        self.held().stamp = Some(st);
                        return;
                    }
                }
                tracing::info!(event = "represent_file_loaded", source = %self.id, records = reps.len());
                let mut h = self.held();
                h.reps = Some(Arc::new(reps));
                h.stamp = Some(st);
            }
            Ok(Some((st, Err(e)))) => {
                tracing::warn!(event = "represent_file_refused", source = %self.id, code = %e.code(), error = %e, "kept the file in force");
                // Not read again until it changes.
                self.held().stamp = Some(st);
            }
            Ok(None) | Err(_) => {}
        }
    }
}

impl RepresentationSource for FileSource {
    fn id(&self) -> &str {
        &self.id
    }

    fn kind(&self) -> SourceKind {
        SourceKind::SignedFile
    }

    fn lookup<'a>(&'a self, _delegate: &'a Principal, now: u64) -> Lookup<'a> {
        Box::pin(async move {
            self.maybe_reload(now).await;
            let reps = self.held().reps.clone();
            match reps {
                Some(r) if r.expires_at().is_none_or(|exp| now < exp) => Ok(r),
                Some(_) => Err(SourceError::Unavailable {
                    reason: "file_expired",
                    detail: format!("{}: exp passed and no newer file", self.path.display()),
                }),
                None => Err(SourceError::Unavailable {
                    reason: "no_file",
                    detail: self.path.display().to_string(),
                }),
            }
        })
    }
}
