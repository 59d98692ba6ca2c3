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

use super::source::{DEFAULT_RELOAD_SECONDS, Lookup, RawSource, RepresentationSource, SourceError};

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use identity::represent::signed_file::TYP;
    use ring::rand::SystemRandom;
    use serde_json::{Value, json};

    const NOW: u64 = 1_795_000_000;
    const DAY: u64 = 86_400;
    const DELEGATE: &str = "TINIT-BNCGNN80A01F205W";

    struct Files {
        dir: PathBuf,
        signer: jose::Signer,
    }

    impl Files {
        fn new(label: &str) -> Files {
            let dir = std::env::temp_dir().join(format!(
                "varco-represent-file-{label}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let rng = SystemRandom::new();
            let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &rng,
            )
            .unwrap();
            let signer = jose::Signer::es256_from_pkcs8(pkcs8.as_ref(), Some("k1"), &rng).unwrap();
            let jwks = json!({"keys": [signer.jwk().to_value()]});
            std::fs::write(dir.join("keys.jwks"), jwks.to_string()).unwrap();
            Files { dir, signer }
        }

        /// Writes a file issued at `iat`, valid until `exp`, with records named `refs`.
        fn write(&self, iat: u64, exp: u64, refs: &[&str]) {
            let records: Vec<Value> = refs
                .iter()
                .map(|r| {
                    json!({"ref": r, "type": "delegation", "delegate": DELEGATE,
                       "represented": {"person": {"fiscal_code": "VRDLGU60M01L219V"}},
                       "services": ["tributi"], "not_before": NOW - DAY, "not_after": NOW + DAY})
                })
                .collect();
            let payload = json!({"iss": "https://portale.test", "iat": iat, "exp": exp,
                                 "representations": records});
            let Value::Object(m) = payload else {
                unreachable!()
            };
            let jws = self.signer.sign(TYP, &m, &SystemRandom::new()).unwrap();
            // A new inode and a distinct size or time: what a portal's atomic rename leaves.
            let tmp = self.dir.join("reps.tmp");
            std::fs::write(&tmp, jws).unwrap();
            std::fs::rename(&tmp, self.dir.join("reps.jws")).unwrap();
        }

        fn source(&self, now: u64) -> Result<FileSource, Vec<String>> {
            let raw: RawSource = toml::from_str(
                "id = \"registro\"\nkind = \"signed_file\"\nfile = \"reps.jws\"\n\
                 issuer = \"https://portale.test\"\njwks_file = \"keys.jwks\"\nreload_seconds = 0\n",
            )
            .unwrap();
            let mut problems = Vec::new();
            let dir = self.dir.clone();
            validate(
                &raw,
                "represent.source[0]",
                &|p| dir.join(p),
                now,
                &mut |k, m| {
                    problems.push(format!("{k}: {m}"));
                },
            )
            .ok_or(problems)
        }
    }

    fn who() -> Principal {
        identity::normalize(
            vec![("fiscalNumber".to_owned(), vec![DELEGATE.to_owned()])],
            &identity::Source {
                method: identity::Method::Spid,
                idp: "i",
                level: identity::SPID_L2,
                auth_time: NOW,
                session_id: "s",
            },
            &identity::Mapping::default(),
        )
        .unwrap()
    }

    fn refs(r: &Representations) -> Vec<String> {
        r.iter().map(|x| x.reference().to_owned()).collect()
    }

    #[tokio::test]
    async fn a_newer_file_replaces_the_held_one() {
        let f = Files::new("newer");
        f.write(NOW - 10, NOW + DAY, &["A"]);
        let s = f.source(NOW).unwrap();
        assert_eq!(refs(&s.lookup(&who(), NOW).await.unwrap()), ["A"]);
        f.write(NOW - 5, NOW + DAY, &["A", "B"]);
        assert_eq!(refs(&s.lookup(&who(), NOW + 1).await.unwrap()), ["A", "B"]);
    }

    #[tokio::test]
    async fn attack_rollback_to_an_older_file_refused() {
        let f = Files::new("rollback");
        f.write(NOW - 10, NOW + DAY, &["A"]);
        let s = f.source(NOW).unwrap();
        // An older file still listing a revoked record, put back in place.
        f.write(NOW - 100, NOW + DAY, &["A", "REVOKED"]);
        assert_eq!(refs(&s.lookup(&who(), NOW + 1).await.unwrap()), ["A"]);
    }

    #[tokio::test]
    async fn a_refused_new_file_keeps_the_held_one_until_its_exp() {
        let f = Files::new("refused");
        f.write(NOW - 10, NOW + 100, &["A"]);
        let s = f.source(NOW).unwrap();
        std::fs::write(
            f.dir.join("reps.jws"),
            "not a jws, and longer than before......",
        )
        .unwrap();
        assert_eq!(refs(&s.lookup(&who(), NOW + 1).await.unwrap()), ["A"]);
        // Past the held file's exp with nothing newer: fail closed.
        match s.lookup(&who(), NOW + 100).await {
            Err(SourceError::Unavailable { reason, .. }) => assert_eq!(reason, "file_expired"),
            other => panic!("{:?}", other.map(|r| r.len())),
        }
    }

    #[test]
    fn a_missing_or_refused_file_at_start_is_a_configuration_error() {
        let f = Files::new("start");
        let problems = f.source(NOW).err().unwrap();
        assert!(
            problems[0].starts_with("represent.source[0].file"),
            "{problems:?}"
        );
        f.write(NOW - 10, NOW - 1, &["A"]);
        let problems = f.source(NOW).err().unwrap();
        assert!(problems[0].contains("expired"), "{problems:?}");
    }
}
