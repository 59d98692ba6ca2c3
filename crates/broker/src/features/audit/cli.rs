//! `varco audit verify DIR|--postgres URL [--key-file FILE]` and
//! `varco audit export DIR|--postgres URL --from DATE --to DATE [--sub SUB] [--key-file FILE]`,
//! with `--tls disable|require|verify-full [--ca-file FILE]` for `--postgres`.
//!
//! Exit status: 0 the chain is whole (a torn final record, the trace of a crash mid-write,
//! is reported on stdout and not counted); 1 the chain is broken (the first problem is
//! printed with its code); 64 usage.
//!
//! May import: the leaf and the other `audit` modules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use super::chain::{self, RecordKey};
use super::file;
use crate::leaf::output;

const EX_USAGE: u8 = 64;

/// The parsed arguments of `varco audit verify|export` (the command line itself is read by
/// `crate::cli`, which owns every flag and its `--help`).
pub struct Args {
    /// `export` rather than `verify`.
    pub export: bool,
    /// The audit directory (empty with `postgres`).
    pub dir: PathBuf,
    /// `--key-file`: the record key of an encrypted trail.
    pub key_file: Option<PathBuf>,
    /// `--from` (export).
    pub from: Option<SystemTime>,
    /// `--to` (export; exclusive).
    pub to: Option<SystemTime>,
    /// `--sub` (export).
    pub sub: Option<String>,
    /// `--postgres URL`.
    pub postgres: Option<String>,
    /// `--tls` (with `postgres`).
    pub tls: Option<String>,
    /// `--ca-file` (with `postgres`).
    pub ca_file: Option<PathBuf>,
}

/// A command-line date: `YYYY-MM-DD` (UTC midnight; with `end_of_day` the midnight after, so
/// `--to` includes that whole day) or `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_date(s: &str, end_of_day: bool) -> Option<SystemTime> {
    if s.len() == 10 {
        let t = saml::parse_instant(&format!("{s}T00:00:00Z"))?;
        return Some(if end_of_day {
            t + Duration::from_secs(86_400)
        } else {
            t
        });
    }
    saml::parse_instant(s)
}

/// Reads one audit file of `dir`.
fn read(dir: &Path, name: &str) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(dir.join(name)).map_err(|e| {
        eprintln!("varco audit: cannot read {name}: {e}");
        ExitCode::from(EX_USAGE)
    })
}

/// Runs `varco audit verify|export`.
pub fn run(args: Args) -> ExitCode {
    let key = match &args.key_file {
        None => None,
        Some(path) => {
            let parsed = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| crate::leaf::problem::parse_session_key(&b))
                .ok()
                .and_then(|k| RecordKey::new(&k));
            match parsed {
                Some(k) => Some(k),
                None => {
                    eprintln!(
                        "varco audit: {}: not a usable key (64 hex digits)",
                        path.display()
                    );
                    return ExitCode::from(EX_USAGE);
                }
            }
        }
    };
    if let Some(url) = &args.postgres {
        let tls = super::postgres::Tls::from_config(
            args.tls.as_deref().unwrap_or("disable"),
            args.ca_file.as_deref(),
        )
        .and_then(|tls| super::postgres::check_url(url, &tls).map(|()| tls));
        let tls = match tls {
            Ok(t) => t,
            Err(e) => {
                eprintln!("varco audit: --postgres: {e}");
                return ExitCode::from(EX_USAGE);
            }
        };
        return postgres(&args, url, &tls, key.as_ref());
    }
    let names = match file::list(&args.dir) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("varco audit: cannot read {}: {e}", args.dir.display());
            return ExitCode::from(EX_USAGE);
        }
    };
    let mut verifier = chain::Verifier::new(key.as_ref());
    for name in &names {
        let bytes = match read(&args.dir, name) {
            Ok(b) => b,
            Err(code) => return code,
        };
        if let Err(e) = verifier.file(name, &bytes) {
            output::line(format_args!("FAILED {}: {e}", e.code()));
            return ExitCode::FAILURE;
        }
    }
    let verified = match verifier.finish() {
        Ok(v) => v,
        Err(e) => {
            output::line(format_args!("FAILED {}: {e}", e.code()));
            return ExitCode::FAILURE;
        }
    };
    if let Some((file, offset, len)) = &verified.torn_tail {
        output::line(format_args!(
            "torn final record: {file} at byte {offset} ({len} bytes), not a valid record \
             (a write cut by a crash; the login it was for got no session)"
        ));
    }
    if !args.export {
        output::line(format_args!(
            "ok: {} records, seq {}..{}, {} decrypted, head {}",
            verified.records,
            verified.first_seq,
            verified.last_seq,
            verified.decrypted,
            chain::hex(&verified.head)
        ));
        return ExitCode::SUCCESS;
    }
    export(&args, &names, key.as_ref())
}

/// `--postgres`: verifies every writer's chain (exit 1 if any is broken), then exports.
fn postgres(
    args: &Args,
    url: &str,
    tls: &super::postgres::Tls,
    key: Option<&RecordKey>,
) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("varco audit: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let chains = match runtime.block_on(super::postgres::verify(url, tls, key)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("varco audit: postgres: {e}");
            return ExitCode::from(EX_USAGE);
        }
    };
    if chains.is_empty() {
        output::line("FAILED audit_empty: no audit record found");
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    for (writer, verdict) in chains {
        match verdict {
            Ok(v) if !args.export => output::line(format_args!(
                "ok: writer {writer}: {} records, seq {}..{}, {} decrypted, head {}",
                v.records,
                v.first_seq,
                v.last_seq,
                v.decrypted,
                chain::hex(&v.head)
            )),
            Ok(_) => {}
            Err(e) => {
                ok = false;
                output::line(format_args!("FAILED writer {writer}: {}: {e}", e.code()));
            }
        }
    }
    if !ok {
        return ExitCode::FAILURE;
    }
    if !args.export {
        return ExitCode::SUCCESS;
    }
    let (from, to) = window(args);
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    let mut locked = None;
    let scanned = runtime.block_on(super::postgres::scan(url, tls, key, from, to, &mut |row| {
        let Some(json) = row.json else {
            locked = Some(row.seq);
            return Err("encrypted".into());
        };
        let Some(mut record) = exportable(&json, args.sub.as_deref()) else {
            return Ok(());
        };
        record.insert("writer".into(), row.writer.into());
        record.insert("seq".into(), row.seq.into());
        if let Err(e) = std::io::Write::write_all(
            &mut out,
            format!("{}\n", serde_json::Value::Object(record)).as_bytes(),
        ) {
            output::gone(&e);
        }
        n += 1;
        Ok(())
    }));
    if let Some(seq) = locked {
        eprintln!("varco audit: record {seq} is encrypted: give --key-file");
        return ExitCode::from(EX_USAGE);
    }
    if let Err(e) = scanned {
        eprintln!("varco audit: postgres: {e}");
        return ExitCode::FAILURE;
    }
    eprintln!("varco audit: {n} records exported");
    ExitCode::SUCCESS
}

/// The export window in Unix seconds, `[from, to)`.
fn window(args: &Args) -> (u64, u64) {
    (
        args.from.map_or(0, crate::leaf::clock::unix),
        args.to.map_or(u64::MAX, crate::leaf::clock::unix),
    )
}

/// A login record matching the `--sub` filter, as a JSON object; `None` for control records
/// and other subjects.
fn exportable(
    json: &[u8],
    sub: Option<&str>,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let Ok(serde_json::Value::Object(record)) = serde_json::from_slice(json) else {
        return None;
    };
    if record.get("kind").and_then(|k| k.as_str()) != Some("login") {
        return None;
    }
    if let Some(sub) = sub {
        if record.get("sub").and_then(|s| s.as_str()) != Some(sub) {
            return None;
        }
    }
    Some(record)
}

/// Prints the login records of the (already verified) chain that match the filters.
fn export(args: &Args, names: &[String], key: Option<&RecordKey>) -> ExitCode {
    let (from, to) = window(args);
    let mut out = std::io::stdout().lock();
    let mut n = 0u64;
    for name in names {
        let bytes = match read(&args.dir, name) {
            Ok(b) => b,
            Err(code) => return code,
        };
        let (lines, _) = chain::split_lines(&bytes);
        for (_, raw) in lines {
            let Ok(line) = chain::parse_line(raw) else {
                continue; // unreachable after verify
            };
            if line.ts < from || line.ts >= to {
                continue;
            }
            let Some(json) = line.json(key) else {
                eprintln!(
                    "varco audit: record {} is encrypted: give --key-file",
                    line.seq
                );
                return ExitCode::from(EX_USAGE);
            };
            let Some(mut record) = exportable(&json, args.sub.as_deref()) else {
                continue;
            };
            // A v2 record keeps its Response beside it, raw: exported as the base64 it was
            // received as (the decoding is strict, so this is the same string).
            if let Some(blob) = line.blob_plain(key) {
                use base64::Engine as _;
                record.insert(
                    "response_b64".into(),
                    base64::engine::general_purpose::STANDARD
                        .encode(blob)
                        .into(),
                );
            }
            record.insert("seq".into(), line.seq.into());
            if let Err(e) = std::io::Write::write_all(
                &mut out,
                format!("{}\n", serde_json::Value::Object(record)).as_bytes(),
            ) {
                output::gone(&e);
            }
            n += 1;
        }
    }
    eprintln!("varco audit: {n} records exported");
    ExitCode::SUCCESS
}
