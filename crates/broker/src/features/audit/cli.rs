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

const EX_USAGE: u8 = 64;

const USAGE: &str = "usage:
  varco audit verify DIR|--postgres URL [--key-file FILE]
  varco audit export DIR|--postgres URL --from DATE --to DATE [--sub SUB] [--key-file FILE]
DATE is YYYY-MM-DD (UTC; --to includes that whole day) or YYYY-MM-DDTHH:MM:SSZ;
with --postgres: [--tls disable|require|verify-full] [--ca-file FILE] (default disable)";

struct Args {
    export: bool,
    dir: PathBuf,
    key_file: Option<PathBuf>,
    from: Option<SystemTime>,
    to: Option<SystemTime>,
    sub: Option<String>,
    postgres: Option<String>,
    tls: Option<String>,
    ca_file: Option<PathBuf>,
}

fn parse_date(s: &str, end_of_day: bool) -> Option<SystemTime> {
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

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let export = match args.next().as_deref() {
        Some("verify") => false,
        Some("export") => true,
        Some(other) => return Err(format!("unknown audit command {other:?}")),
        None => return Err("no audit command".into()),
    };
    let mut a = Args {
        export,
        dir: PathBuf::new(),
        key_file: None,
        from: None,
        to: None,
        sub: None,
        postgres: None,
        tls: None,
        ca_file: None,
    };
    let mut dir = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--key-file" => a.key_file = Some(PathBuf::from(value()?)),
            "--from" if export => {
                let v = value()?;
                a.from = Some(parse_date(&v, false).ok_or(format!("--from {v:?}: not a date"))?);
            }
            "--to" if export => {
                let v = value()?;
                a.to = Some(parse_date(&v, true).ok_or(format!("--to {v:?}: not a date"))?);
            }
            "--sub" if export => a.sub = Some(value()?),
            "--postgres" => a.postgres = Some(value()?),
            "--tls" => a.tls = Some(value()?),
            "--ca-file" => a.ca_file = Some(PathBuf::from(value()?)),
            other if dir.is_none() && !other.starts_with("--") => dir = Some(PathBuf::from(other)),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    match dir {
        Some(d) if a.postgres.is_none() => a.dir = d,
        None if a.postgres.is_some() => {}
        _ => return Err("give either an audit directory or --postgres URL".into()),
    }
    if a.postgres.is_none() && (a.tls.is_some() || a.ca_file.is_some()) {
        return Err("--tls and --ca-file go with --postgres".into());
    }
    if export && (a.from.is_none() || a.to.is_none()) {
        return Err("export needs --from and --to".into());
    }
    Ok(a)
}

/// Reads one audit file of `dir`.
fn read(dir: &Path, name: &str) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(dir.join(name)).map_err(|e| {
        eprintln!("varco audit: cannot read {name}: {e}");
        ExitCode::from(EX_USAGE)
    })
}

/// Runs `varco audit ...` (the arguments after `audit`).
pub fn main(args: impl Iterator<Item = String>) -> ExitCode {
    let args = match parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("varco audit: {e}\n{USAGE}");
            return ExitCode::from(EX_USAGE);
        }
    };
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
            println!("FAILED {}: {e}", e.code());
            return ExitCode::FAILURE;
        }
    }
    let verified = match verifier.finish() {
        Ok(v) => v,
        Err(e) => {
            println!("FAILED {}: {e}", e.code());
            return ExitCode::FAILURE;
        }
    };
    if let Some((file, offset, len)) = &verified.torn_tail {
        println!(
            "torn final record: {file} at byte {offset} ({len} bytes), not a valid record \
             (a write cut by a crash; the login it was for got no session)"
        );
    }
    if !args.export {
        println!(
            "ok: {} records, seq {}..{}, {} decrypted, head {}",
            verified.records,
            verified.first_seq,
            verified.last_seq,
            verified.decrypted,
            chain::hex(&verified.head)
        );
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
        println!("FAILED audit_empty: no audit record found");
        return ExitCode::FAILURE;
    }
    let mut ok = true;
    for (writer, verdict) in chains {
        match verdict {
            Ok(v) if !args.export => println!(
                "ok: writer {writer}: {} records, seq {}..{}, {} decrypted, head {}",
                v.records,
                v.first_seq,
                v.last_seq,
                v.decrypted,
                chain::hex(&v.head)
            ),
            Ok(_) => {}
            Err(e) => {
                ok = false;
                println!("FAILED writer {writer}: {}: {e}", e.code());
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
        std::io::Write::write_all(
            &mut out,
            format!("{}\n", serde_json::Value::Object(record)).as_bytes(),
        )
        .map_err(|e| e.to_string())?;
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
            record.insert("seq".into(), line.seq.into());
            if std::io::Write::write_all(
                &mut out,
                format!("{}\n", serde_json::Value::Object(record)).as_bytes(),
            )
            .is_err()
            {
                return ExitCode::FAILURE;
            }
            n += 1;
        }
    }
    eprintln!("varco audit: {n} records exported");
    ExitCode::SUCCESS
}
