//! # varco-dev-idp: a demo SAML identity provider — DEVELOPMENT AND TESTS ONLY
//!
//! **NEVER DEPLOY THIS. NEVER TRUST ITS CERTIFICATE IN A REAL DEPLOYMENT.** It logs anyone in
//! as one of a few fixed, invented users, chosen with a button; its key is generated into a
//! plain directory; without `--sp-metadata` it accepts unsigned and unverified requests from
//! any SP. It exists so that Varco (and its end-to-end tests) can be run without the real
//! SPID, CIE or FICEP infrastructure.
//!
//! ```text
//! varco-dev-idp --listen 127.0.0.1:PORT [--base-url http://127.0.0.1:PORT] --state-dir DIR
//!               [--entity-id URL] [--sp-metadata FILE|http://URL]...
//! ```
//!
//! - `--listen`: address to bind; port 0 picks a free port.
//! - `--base-url`: the URL the browser and the SP use for this IdP (default
//!   `http://<bound address>`); `/sso` and `/metadata` are under it.
//! - `--state-dir`: where the signing key (`idp-key.pem`, PKCS#8) and self-signed certificate
//!   (`idp-cert.pem`) live. On first start an ECDSA P-256 pair is generated; afterwards it is
//!   reused. Put an RSA (or P-384) PKCS#8 key and certificate there to sign with RSA.
//! - `--entity-id`: the IdP entityID (default: the base URL).
//! - `--sp-metadata` (repeatable): SP metadata, a file or an `http://` URL (such as
//!   Varco's `http://localhost:8080/saml/metadata`). Files must parse at start; every source
//!   is read again for each AuthnRequest (so the SP may start later, and Varco's default
//!   `AssertionConsumerServiceIndex` resolves). With at least one, only those SPs are
//!   served, their requests must be signed and are verified (HTTP-Redirect: over the query
//!   string parts as received; HTTP-POST: the enveloped signature), `AssertionConsumerService`
//!   indexes resolve, a sent ACS URL must be in the metadata, and an
//!   `AttributeConsumingServiceIndex` limits the released attributes to the ones requested.
//!   Without any, every request is accepted unverified (the login page says so), and the
//!   request must carry `AssertionConsumerServiceURL`.
//!
//! On start it prints one line to standard output, `varco-dev-idp listening on <base URL>`;
//! logs go to standard error.
//!
//! ## Routes
//!
//! - `GET /metadata`: signed IdP metadata (`IDPSSODescriptor`, signing certificate,
//!   `SingleSignOnService` HTTP-Redirect and HTTP-POST at `<base>/sso`).
//! - `GET /sso?SAMLRequest=…&RelayState=…&SigAlg=…&Signature=…` (HTTP-Redirect) and
//!   `POST /sso` with form fields `SAMLRequest`, `RelayState` (HTTP-POST): the login page, or
//!   400 with the reason. Nothing from the SP side selects a user or a level.
//! - `POST /login` (form, `application/x-www-form-urlencoded`), what the login page submits
//!   and what tests post without a browser:
//!   - `state`: the hidden field of the login page (the request, HMAC-sealed; valid until
//!     the IdP restarts);
//!   - `user`: a test user id (`mario.rossi`, `giulia.bianchi`, `luca.verdi`,
//!     `anna.schmidt`, `esempio.srl`); and `level`: `1`, `2` or `3` (default: the requested
//!     level; a lower one is allowed, to test the SP's refusal);
//!   - or `action=cancel`: a signed Response with status `Responder`/`AuthnFailed` and
//!     `StatusMessage` `ErrorCode nr25`, no Assertion.
//!
//!   SPID for minors: when the request carries `samlp:Extensions/spid:AgeLimit` (shown on
//!   the login page; a malformed one is a 400), a user whose age from `dateOfBirth` (in
//!   completed years, UTC date) is outside `MinAge`..`MaxAge` (99: no upper limit), or who
//!   has no `dateOfBirth`, gets the AgID refusal page ("Spiacente <nome>, ma non hai l'età
//!   richiesta da <SP> per accedere al servizio") whose button posts a signed Response
//!   `Responder`/`AuthnFailed`, `StatusMessage` `spid:AgeLimit not met` (the guidelines give
//!   no `ErrorCode` number), no Assertion.
//!
//!   The answer is an auto-submitting page posting `SAMLResponse` (base64) and `RelayState`
//!   to the ACS URL. A successful Response follows SPID: Assertion signed, then Response
//!   signed; Issuer with entity Format; transient `NameID` with `NameQualifier`; bearer
//!   confirmation with Recipient, InResponseTo and NotOnOrAfter (+5 min); Conditions with
//!   the SP as Audience; AuthnStatement with SessionIndex and `SpidL{level}`; the user's
//!   attributes as `xs:string`.
//! - `GET /`: a summary; `GET /healthz`: `ok`.

mod app;
mod http;
mod keys;
mod pages;
mod request;
mod response;
mod server;
mod sessions;
mod slo;
mod sp;
mod state;
mod users;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::rand::SystemRandom;
use tokio::net::TcpListener;

use crate::app::AppState;
use crate::response::Idp;
use crate::sessions::LogoutState;
use crate::state::Sealer;

const USAGE: &str = "usage: varco-dev-idp --listen ADDR:PORT [--base-url URL] --state-dir DIR \
                     [--entity-id URL] [--sp-metadata FILE|URL]...\n\
                     DEVELOPMENT AND TESTS ONLY: never deploy this IdP.";

/// Command-line options.
#[derive(Debug)]
struct Options {
    listen: SocketAddr,
    base_url: Option<String>,
    state_dir: PathBuf,
    entity_id: Option<String>,
    sp_metadata: Vec<sp::Source>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut listen = None;
    let mut base_url = None;
    let mut state_dir = None;
    let mut entity_id = None;
    let mut sp_metadata = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if name == "--help" || name == "-h" {
            return Err(String::new());
        }
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("{name} needs a value"))?,
        };
        match name.as_str() {
            "--listen" => {
                listen = Some(
                    value
                        .parse::<SocketAddr>()
                        .map_err(|_| format!("--listen {value:?} is not ADDR:PORT"))?,
                );
            }
            "--base-url" => base_url = Some(value.trim_end_matches('/').to_owned()),
            "--state-dir" => state_dir = Some(PathBuf::from(value)),
            "--entity-id" => entity_id = Some(value),
            "--sp-metadata" => sp_metadata.push(sp::Source::from_arg(&value)),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(Options {
        listen: listen.ok_or("--listen is required")?,
        base_url,
        state_dir: state_dir.ok_or("--state-dir is required")?,
        entity_id,
        sp_metadata,
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("varco-dev-idp: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("varco-dev-idp: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    // Files must be readable now (a typo fails fast); URLs are fetched when requests come,
    // so the SP may start after the IdP.
    for source in &options.sp_metadata {
        if let sp::Source::File(path) = source {
            sp::load(path)?;
        }
    }
    let listener = TcpListener::bind(options.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", options.listen))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?;
    let base_url = options
        .base_url
        .unwrap_or_else(|| format!("http://{bound}"));
    let entity_id = options.entity_id.unwrap_or_else(|| base_url.clone());
    let key = keys::load_or_generate(&options.state_dir, &entity_id)?;
    let rng = SystemRandom::new();
    let sealer = Sealer::new(&rng)?;
    let idp = Idp {
        entity_id,
        sso_url: format!("{base_url}/sso"),
        slo_url: format!("{base_url}/slo"),
        key,
        rng,
    };
    let metadata = response::metadata(&idp)?;
    let state = Arc::new(AppState {
        idp,
        sp_sources: options.sp_metadata,
        sealer,
        metadata,
        metadata_url: format!("{base_url}/metadata"),
        logout: LogoutState::default(),
    });

    eprintln!(
        "varco-dev-idp: DEVELOPMENT AND TESTS ONLY, never deploy. entityID {}, {} SP metadata \
         source(s){}",
        state.idp.entity_id,
        state.sp_sources.len(),
        if state.sp_sources.is_empty() {
            " (requests accepted UNVERIFIED)"
        } else {
            ""
        }
    );
    println!("varco-dev-idp listening on {base_url}");
    let _ = std::io::stdout().flush();

    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        eprintln!("varco-dev-idp: accept: {e}");
                        continue;
                    }
                };
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let service = service_fn(move |req| server::handle(Arc::clone(&state), req));
                    if let Err(e) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        eprintln!("varco-dev-idp: connection: {e}");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_parse() {
        let o = parse_args(args(&[
            "--listen",
            "127.0.0.1:0",
            "--state-dir=/tmp/x",
            "--base-url",
            "http://idp.test/",
            "--sp-metadata",
            "a.xml",
            "--sp-metadata",
            "b.xml",
        ]))
        .unwrap();
        assert_eq!(o.listen.port(), 0);
        assert_eq!(o.base_url.as_deref(), Some("http://idp.test"));
        assert_eq!(o.sp_metadata.len(), 2);
        assert!(parse_args(args(&["--listen", "nope", "--state-dir", "x"])).is_err());
        assert!(parse_args(args(&["--state-dir", "x"])).is_err());
        assert!(parse_args(args(&["--listen"])).is_err());
        assert!(parse_args(args(&["--bogus", "1"])).is_err());
        assert_eq!(parse_args(args(&["--help"])).unwrap_err(), "");
    }
}
