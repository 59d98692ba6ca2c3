//! The `varco` command line: the top of the crate (nothing imports it). May import anything.
//!
//! ```text
//! varco serve --config FILE [--idp-metadata FILE]...
//! varco check-config FILE [--idp-metadata FILE]...
//! varco metadata --config FILE [--federation spid|cie|eidas]
//! varco metadata sources --config FILE
//! varco audit verify DIR|--postgres URL [--key-file FILE]
//! varco audit export DIR|--postgres URL --from DATE --to DATE [--sub SUB] [--key-file FILE]
//! varco legacy hash [--fiscal-code CF --profile PROFILE [--category CATEGORY]]
//! varco switchoff report --audit DIR [--from DATE] [--to DATE] [--list] [--key-file FILE]
//! ```
//!
//! Configuration is validated completely before any port is bound; a bad configuration exits
//! with status 64 (EX_USAGE) and lists every problem. `VARCO_LISTEN` and
//! `VARCO_PUBLIC_BASE_URL` override `server.listen` and `server.public_base_url`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::config::{self, Config, Overrides};
use crate::features::registry::{self, Refresher};
use crate::features::store::Store;
use crate::leaf::clock;
use crate::server;
use crate::state::State;

const EX_USAGE: u8 = 64;

const USAGE: &str = "usage:
  varco serve --config FILE [--idp-metadata FILE]...
  varco check-config FILE [--idp-metadata FILE]...
  varco metadata --config FILE [--federation spid|cie|eidas]
  varco metadata sources --config FILE
  varco audit verify|export ... (varco audit for details)
  varco legacy hash ... (varco legacy for details)
  varco switchoff report ... (varco switchoff for details)";

enum Command {
    Serve,
    CheckConfig,
    /// Print the signed SP metadata of one federation.
    Metadata,
    /// Load every IdP metadata source once and print its state.
    MetadataSources,
}

struct Args {
    command: Command,
    federation: String,
    config: PathBuf,
    overrides: Overrides,
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = args.peekable();
    let command = match args.next().as_deref() {
        Some("serve") => Command::Serve,
        Some("check-config") => Command::CheckConfig,
        Some("metadata") if args.peek().map(String::as_str) == Some("sources") => {
            args.next();
            Command::MetadataSources
        }
        Some("metadata") => Command::Metadata,
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("no command".into()),
    };
    let mut config = None;
    let mut federation = "spid".to_owned();
    let mut overrides = Overrides::from_env();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => config = args.next().map(PathBuf::from),
            "--federation" if matches!(command, Command::Metadata) => {
                federation = args.next().ok_or("--federation needs spid, cie or eidas")?;
            }
            "--idp-metadata" => {
                let file = args.next().ok_or("--idp-metadata needs a file")?;
                overrides.idp_metadata.push(PathBuf::from(file));
            }
            other if matches!(command, Command::CheckConfig) && config.is_none() => {
                config = Some(PathBuf::from(other));
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let config = config.ok_or("no configuration file given")?;
    Ok(Args {
        command,
        federation,
        config,
        overrides,
    })
}

fn load(args: &Args) -> Result<Config, ExitCode> {
    config::load(&args.config, &args.overrides).map_err(|problems| {
        eprintln!("{}: configuration refused:", args.config.display());
        for p in &problems {
            eprintln!("  - {p}");
        }
        ExitCode::from(EX_USAGE)
    })
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        Some("audit") => return crate::features::audit::cli::main(std::env::args().skip(2)),
        Some("legacy") => return crate::features::legacy::cli(std::env::args().skip(2)),
        Some("switchoff") => {
            return crate::features::switchoff::report::main(std::env::args().skip(2));
        }
        _ => {}
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("varco: {e}\n{USAGE}");
            return ExitCode::from(EX_USAGE);
        }
    };
    let config = match load(&args) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match args.command {
        Command::CheckConfig => {
            println!(
                "{}: ok ({} metadata sources, sha256 {})",
                args.config.display(),
                config.metadata_sources.len(),
                config.source_sha256
            );
            ExitCode::SUCCESS
        }
        Command::Serve => serve(config, args),
        Command::MetadataSources => metadata_sources(&config),
        Command::Metadata => {
            let path = match args.federation.as_str() {
                "spid" => "/saml/metadata",
                "cie" => "/saml/metadata/cie",
                "eidas" => "/saml/metadata/eidas",
                other => {
                    eprintln!("varco: unknown federation {other:?}\n{USAGE}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            match config.metadata.iter().find(|(p, _)| *p == path) {
                Some((_, xml)) => {
                    println!("{xml}");
                    ExitCode::SUCCESS
                }
                None => {
                    eprintln!(
                        "varco: no {} metadata: CIE metadata needs sp.organization.municipality",
                        args.federation
                    );
                    ExitCode::from(EX_USAGE)
                }
            }
        }
    }
}

fn serve(config: Config, args: Args) -> ExitCode {
    // From here on, everything is a log line in the configured format.
    crate::leaf::logging::init(config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(event = "runtime_failed", error = %e);
            return ExitCode::FAILURE;
        }
    };
    let store = match &config.store {
        config::StoreBackend::Memory => {
            Store::memory_with(config.pending_ttl, config.budgets, config.session_ttl)
        }
        config::StoreBackend::Redis(options) => {
            let _entered = runtime.enter();
            let redis = match crate::features::store::redis::RedisStore::new(
                options,
                config.pending_ttl,
                config.session_ttl,
            ) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("varco: store: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            // Not fatal: sessions are served while Redis is down, and logins answer 503
            // until it is back (the failed ping logs `store_unavailable`).
            if runtime.block_on(redis.ping()).is_ok() {
                tracing::info!(event = "store_connected", backend = %"redis");
            }
            Store::Redis(redis)
        }
    };
    if config.access.ephemeral_key {
        tracing::warn!(
            event = "token_key_ephemeral",
            detail = "no [[token.key]] configured: tokens are signed with a key generated at start (one replica only)"
        );
    }
    let audit = match &config.audit {
        None => {
            tracing::warn!(event = "audit_disabled");
            crate::features::audit::Sink::Off
        }
        Some(crate::features::audit::Target::File(options)) => {
            match crate::features::audit::file::FileSink::open(options, clock::system()) {
                Ok(sink) => crate::features::audit::Sink::File(sink),
                Err(e) => {
                    tracing::error!(
                        event = "audit_sink_failed",
                        dir = %options.dir.display(),
                        error = %format!("cannot open the audit sink: {e}"),
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
        Some(crate::features::audit::Target::Postgres(options)) => {
            let connected = runtime.block_on(crate::features::audit::postgres::PgSink::connect(
                options,
                clock::system(),
            ));
            match connected {
                Ok(sink) => crate::features::audit::Sink::Postgres(sink),
                Err(e) => {
                    tracing::error!(
                        event = "audit_sink_failed",
                        sink = "postgres",
                        error = %format!("cannot open the audit sink: {e}"),
                    );
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let refresher = Arc::new(start_metadata(&config, &runtime, true));
    let Some(state) = State::new(
        Arc::new(config),
        store,
        refresher.clone(),
        audit,
        clock::system,
    ) else {
        tracing::error!(
            event = "session_key_refused",
            error = "session key refused by the AEAD"
        );
        return ExitCode::from(EX_USAGE);
    };
    let live = Arc::new(crate::state::live::Live::new(
        state,
        args.config,
        args.overrides,
    ));
    runtime.block_on(async move {
        let _refresh = refresher.spawn(clock::system);
        let _reload = crate::reload::spawn(live.clone());
        server::run(live).await
    })
}

/// The metadata refresher, with backing files and local-file sources loaded (so a setup of
/// local files only is ready before the port is bound). URL sources are fetched by the
/// background task or by the caller.
fn start_metadata(config: &Config, runtime: &tokio::runtime::Runtime, persist: bool) -> Refresher {
    let now = clock::system();
    let refresher = Refresher::new(
        config.metadata_sources.clone(),
        config.state_dir.as_deref(),
        Arc::new(metadata::Registry::default()),
        persist,
        now,
    );
    refresher.load_backing_files(now);
    runtime.block_on(refresher.refresh_local(now));
    refresher
}

/// `varco metadata sources`: one attempt on every source, then its state. Backing files are
/// read, never written. Exits 1 when a required source has nothing usable.
fn metadata_sources(config: &Config) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("varco: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let refresher = start_metadata(config, &runtime, false);
    let now = clock::system();
    // Local files were just read; this fetches the URL sources.
    runtime.block_on(refresher.refresh_due(now));
    print!("{}", registry::describe(&refresher, now));
    if refresher.registry().is_ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
