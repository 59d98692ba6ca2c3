//! The `varco` command line: the top of the crate (nothing imports it). May import anything.
//!
//! Every subcommand and flag is declared here, on clap, so each one has `--help`/`-h` and
//! `--version`; the features keep only the work (`features::audit::cli::run`,
//! `features::switchoff::report::run`, `features::legacy::hash_cli`). `varco help` prints the
//! whole tree.
//!
//! Exit status, the same for every subcommand: 0 done (also when the reader of standard
//! output went away, `varco metadata | head`); 1 the work failed (the server could not run,
//! an audit chain is broken, a required metadata source has nothing usable); 64 (EX_USAGE) a
//! usage error or a configuration refused, with every problem listed, before any port is
//! bound. `VARCO_LISTEN` and `VARCO_PUBLIC_BASE_URL` override `server.listen` and
//! `server.public_base_url`.

mod init;
mod keys;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

use crate::config::{self, Config, Overrides};
use crate::features::registry::{self, Refresher};
use crate::features::store::Store;
use crate::leaf::{clock, output};
use crate::server;
use crate::state::State;

use crate::leaf::output::EX_USAGE;

/// Varco: an identity broker for Italian public online services (SPID, CIE, eIDAS, CNS).
#[derive(Parser)]
#[command(
    name = "varco",
    version,
    propagate_version = true,
    arg_required_else_help = true,
    after_help = "Exit status: 0 done; 1 the work failed; 64 usage error or configuration refused.\n\
                  Every configuration key: docs/OPERATIONS.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker.
    Serve {
        /// The configuration file (varco.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        idps: IdpFiles,
    },
    /// Validate a configuration file completely (keys, certificates, metadata files) and exit.
    CheckConfig {
        /// The configuration file (varco.toml).
        #[arg(value_name = "FILE")]
        config: PathBuf,
        #[command(flatten)]
        idps: IdpFiles,
    },
    /// Print the signed SP metadata of one federation (or, with `sources`, the IdP sources).
    #[command(subcommand_negates_reqs = true, args_conflicts_with_subcommands = true)]
    Metadata {
        /// The configuration file (varco.toml).
        #[arg(long, value_name = "FILE", required = true)]
        config: Option<PathBuf>,
        /// Which federation's metadata.
        #[arg(long, value_enum, default_value_t = Federation::Spid)]
        federation: Federation,
        #[command(subcommand)]
        sources: Option<MetadataCommand>,
    },
    /// Verify or export the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Legacy credentials: hash a password for the credential file.
    #[command(subcommand)]
    Legacy(LegacyCommand),
    /// Switch-off adoption figures from the audit trail.
    #[command(subcommand)]
    Switchoff(SwitchoffCommand),
    /// Generate the SP key and certificate, the session key and the token key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Write a commented starter configuration for a portal.
    Init(init::InitArgs),
}

#[derive(ClapArgs)]
struct IdpFiles {
    /// A local SPID IdP metadata file, added to the configured sources (repeatable).
    #[arg(long = "idp-metadata", value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Federation {
    Spid,
    Cie,
    Eidas,
}

#[derive(Subcommand)]
enum MetadataCommand {
    /// Load every IdP metadata source once and print its state (exit 1 if a required one has
    /// nothing usable). Backing files are read, never written.
    Sources {
        /// The configuration file (varco.toml).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// The flags `verify` and `export` share.
#[derive(ClapArgs)]
struct AuditSource {
    /// The audit directory (the file sink).
    #[arg(
        value_name = "DIR",
        required_unless_present = "postgres",
        conflicts_with = "postgres"
    )]
    dir: Option<PathBuf>,
    /// Read the PostgreSQL sink instead of a directory.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// TLS to PostgreSQL.
    #[arg(long, value_name = "MODE", requires = "postgres", value_parser = ["disable", "require", "verify-full"])]
    tls: Option<String>,
    /// CA certificate for `--tls verify-full`.
    #[arg(long, value_name = "FILE", requires = "postgres")]
    ca_file: Option<PathBuf>,
    /// The record key (64 hex digits) of an encrypted trail.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Verify the hash chain (exit 1 at the first broken record, printed with its code).
    ///
    /// Reads v1 records (one line each) and v2 records (a line, then the completed login's
    /// Response kept beside it, raw, checked against the length and SHA-256 its line states);
    /// a chain may mix both.
    Verify {
        #[command(flatten)]
        source: AuditSource,
    },
    /// Verify, then print the login records of a period as JSON lines.
    Export {
        #[command(flatten)]
        source: AuditSource,
        /// First day, YYYY-MM-DD (UTC), or an instant YYYY-MM-DDTHH:MM:SSZ.
        #[arg(long, value_name = "DATE", value_parser = |s: &str| date(s, false))]
        from: std::time::SystemTime,
        /// Last day, included (YYYY-MM-DD), or an instant (excluded).
        #[arg(long, value_name = "DATE", value_parser = |s: &str| date(s, true))]
        to: std::time::SystemTime,
        /// Only this subject.
        #[arg(long, value_name = "SUB")]
        sub: Option<String>,
    },
}

fn date(s: &str, end_of_day: bool) -> Result<std::time::SystemTime, String> {
    crate::features::audit::cli::parse_date(s, end_of_day)
        .ok_or_else(|| "expected YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ".into())
}

fn day(s: &str, end: bool) -> Result<u64, String> {
    crate::features::switchoff::report::day(s, end).ok_or_else(|| "expected YYYY-MM-DD".into())
}

#[derive(Subcommand)]
enum LegacyCommand {
    /// Hash the password on the first line of standard input (Argon2id). Without
    /// --fiscal-code the PHC string is printed; with it, the whole credential-file line.
    Hash {
        /// The holder's fiscal code.
        #[arg(long, value_name = "CF", requires = "profile")]
        fiscal_code: Option<String>,
        /// citizen, professional, business or intermediary.
        #[arg(long, value_name = "PROFILE", requires = "fiscal_code")]
        profile: Option<String>,
        /// The exception category kept on listed services.
        #[arg(long, value_name = "CATEGORY", requires = "fiscal_code")]
        category: Option<String>,
    },
}

#[derive(Subcommand)]
enum SwitchoffCommand {
    /// Per-week legacy share and the people still on legacy credentials.
    Report {
        /// The audit directory.
        #[arg(long = "audit", value_name = "DIR")]
        dir: PathBuf,
        /// First day, YYYY-MM-DD (UTC).
        #[arg(long, value_name = "DATE", value_parser = |s: &str| day(s, false))]
        from: Option<u64>,
        /// Last day, included.
        #[arg(long, value_name = "DATE", value_parser = |s: &str| day(s, true))]
        to: Option<u64>,
        /// One line per person still on legacy credentials.
        #[arg(long)]
        list: bool,
        /// The record key of an encrypted trail.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write sp.key.pem and sp.crt.pem (the SP certificate in the AgID profile of Avviso SPID
    /// n. 29 v3), session.key and token.key into a directory. Existing files are never
    /// overwritten.
    Generate(keys::GenerateArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to standard output with 0; usage errors to standard error
            // with 64, as a refused configuration does.
            let code = if e.use_stderr() {
                ExitCode::from(EX_USAGE)
            } else {
                ExitCode::SUCCESS
            };
            if let Err(io) = e.print() {
                output::gone(&io);
            }
            return code;
        }
    };
    let overrides = |idps: IdpFiles| Overrides {
        idp_metadata: idps.files,
        ..Overrides::from_env()
    };
    match cli.command {
        Command::Serve { config, idps } => {
            let overrides = overrides(idps);
            match load(&config, &overrides) {
                Ok(c) => serve(c, config, overrides),
                Err(code) => code,
            }
        }
        Command::CheckConfig { config, idps } => check_config(&config, &overrides(idps)),
        Command::Metadata {
            sources: Some(MetadataCommand::Sources { config }),
            ..
        } => match load(&config, &Overrides::from_env()) {
            Ok(c) => metadata_sources(&c),
            Err(code) => code,
        },
        Command::Metadata {
            config, federation, ..
        } => {
            let Some(config) = config else {
                return ExitCode::from(EX_USAGE);
            };
            match load(&config, &Overrides::from_env()) {
                Ok(c) => print_metadata(&c, federation),
                Err(code) => code,
            }
        }
        Command::Audit(command) => {
            let (export, source, from, to, sub) = match command {
                AuditCommand::Verify { source } => (false, source, None, None, None),
                AuditCommand::Export {
                    source,
                    from,
                    to,
                    sub,
                } => (true, source, Some(from), Some(to), sub),
            };
            crate::features::audit::cli::run(crate::features::audit::cli::Args {
                export,
                dir: source.dir.unwrap_or_default(),
                key_file: source.key_file,
                from,
                to,
                sub,
                postgres: source.postgres,
                tls: source.tls,
                ca_file: source.ca_file,
            })
        }
        Command::Legacy(LegacyCommand::Hash {
            fiscal_code,
            profile,
            category,
        }) => crate::features::legacy::hash_cli(fiscal_code, profile, category),
        Command::Switchoff(SwitchoffCommand::Report {
            dir,
            from,
            to,
            list,
            key_file,
        }) => crate::features::switchoff::report::run(crate::features::switchoff::report::Args {
            dir,
            from: from.unwrap_or(0),
            to: to.unwrap_or(u64::MAX),
            list,
            key_file,
        }),
        Command::Keys(KeysCommand::Generate(args)) => keys::generate(&args),
        Command::Init(args) => init::run(&args),
    }
}

fn load(path: &std::path::Path, overrides: &Overrides) -> Result<Config, ExitCode> {
    config::load(path, overrides).map_err(|problems| {
        eprintln!("{}: configuration refused:", path.display());
        for p in &problems {
            eprintln!("  - {p}");
        }
        ExitCode::from(EX_USAGE)
    })
}

fn check_config(path: &std::path::Path, overrides: &Overrides) -> ExitCode {
    let config = match load(path, overrides) {
        Ok(c) => c,
        Err(code) => return code,
    };
    for w in &config.warnings {
        eprintln!("{}: warning: {w}", path.display());
    }
    output::line(format_args!(
        "{}: ok ({} metadata sources, sha256 {})",
        path.display(),
        config.metadata_sources.len(),
        config.source_sha256
    ));
    ExitCode::SUCCESS
}

fn print_metadata(config: &Config, federation: Federation) -> ExitCode {
    let (path, name) = match federation {
        Federation::Spid => ("/saml/metadata", "spid"),
        Federation::Cie => ("/saml/metadata/cie", "cie"),
        Federation::Eidas => ("/saml/metadata/eidas", "eidas"),
    };
    match config.metadata.iter().find(|(p, _)| *p == path) {
        Some((_, xml)) => {
            output::line(xml);
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("varco: no {name} metadata: CIE metadata needs sp.organization.municipality");
            ExitCode::from(EX_USAGE)
        }
    }
}

fn serve(config: Config, path: PathBuf, overrides: Overrides) -> ExitCode {
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
    // An activity mark is needed for one idle timeout: older, the session is idle anyway,
    // and a missing mark reads as "idle since login" (`state::current::live`). Without an
    // idle timeout, for the session lifetime (nothing reads it then).
    let marks = config
        .idle_timeout
        .map_or(config.session_ttl, |idle| idle.min(config.session_ttl));
    let store = match &config.store {
        config::StoreBackend::Memory => {
            Store::memory_with(config.pending_ttl, config.budgets, marks)
        }
        config::StoreBackend::Redis(options) => {
            let _entered = runtime.enter();
            let redis = match crate::features::store::redis::RedisStore::new(
                options,
                config.pending_ttl,
                config.session_ttl,
            ) {
                Ok(r) => r.with_marks_ttl(marks),
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
    for w in &config.warnings {
        tracing::warn!(event = "config_warning", key = %w.key, detail = %w.message);
    }
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
            // Not fatal when the server is down: the sink opens its chain when it can, and
            // until then logins answer 503 while sessions keep working (as with Redis).
            let started = runtime.block_on(crate::features::audit::postgres::PgSink::start(
                options,
                clock::system,
            ));
            match started {
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
    // Inside the runtime's context, so the state can start its own background tasks (the
    // OIDC trust-chain refresher).
    let entered = runtime.enter();
    let Some(state) = State::new(
        Arc::new(config),
        store,
        refresher.clone(),
        audit,
        clock::system,
    ) else {
        // `State::new` logged why (the session key, or the heavy-work threads).
        return ExitCode::from(EX_USAGE);
    };
    drop(entered);
    let live = Arc::new(crate::state::live::Live::new(state, path, overrides));
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
    output::text(&registry::describe(&refresher, now));
    if refresher.registry().is_ready() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
