//! `varco init`: a commented starter configuration for one portal. It names the files `varco
//! keys generate` writes (same directory) and the SPID registry as the IdP source, so once the
//! registry's signing certificate is saved beside it, `varco check-config` passes unchanged.
//! Every other choice is a commented line pointing at docs/OPERATIONS.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::leaf::output::EX_USAGE;

/// The flags of `varco init`.
#[derive(Args)]
pub(super) struct InitArgs {
    /// The portal's organization, e.g. "Comune di Esempio" (OrganizationName in the metadata).
    #[arg(long, value_name = "NAME")]
    portal: String,
    /// The https address citizens reach Varco at; fixes the entityID and the ACS URL.
    #[arg(long, value_name = "URL")]
    public_base_url: String,
    /// The organization's IPA code (public SPs), e.g. c_h501.
    #[arg(long, value_name = "CODE")]
    ipa_code: String,
    /// The contact e-mail published in the metadata.
    #[arg(long, value_name = "ADDRESS")]
    email: String,
    /// The organization's web site (default: the public base URL).
    #[arg(long, value_name = "URL")]
    org_url: Option<String>,
    /// Write here instead of standard output (an existing file is never replaced).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// A TOML basic string holding `s`.
fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The starter configuration's text.
fn render(a: &InitArgs) -> String {
    let base = a.public_base_url.trim_end_matches('/');
    let org_url = a.org_url.as_deref().unwrap_or(base);
    format!(
        r#"# Varco for {portal_comment}. Written by `varco init`; every key, its default and its error
# codes: docs/OPERATIONS.md ("Configuration reference"). Relative paths are relative to this
# file. Check it with: varco check-config varco.toml

[server]
listen = "0.0.0.0:8080"
# Restart-only: it fixes the entityID (<this>/saml/metadata) and the ACS URL.
public_base_url = {base}
# shutdown_grace_seconds = 20   # how long in-flight requests may finish after SIGTERM

[sp]
# Made by: varco keys generate --entity-id {entity_comment} --org-name ... --org-id PA:IT-{ipa_comment} --locality ...
key_file = "sp.key.pem"
cert_file = "sp.crt.pem"
binding = "redirect"
default_level = 2               # SPID level requested when /saml/login names none

[sp.organization]
name = {portal}
display_name = {portal}
url = {org_url}
sector = "public"
ipa_code = {ipa}
email = {email}
# phone = "+390600000000"
# fiscal_code = "80000000000"
# municipality = "H501"         # ISTAT code: needed for the CIE metadata (/saml/metadata/cie)

[session]
key_file = "session.key"        # 64 hex digits; varco keys generate writes it
ttl_seconds = 28800
idle_timeout_seconds = 1800

[state]
# Last-known-good copies of the IdP metadata: keep it on storage that survives a restart.
dir = "state"

[audit]
# The 24-month login trail SPID requires, hash-chained and fsynced before each cookie.
dir = "audit"

# The SPID IdPs: AgID's registry, verified against the registry's signing certificate
# (download it from AgID and save it as spid-registry.crt beside this file).
[[metadata]]
name = "spid-registry"
federation = "spid"
url = "https://registry.spid.gov.it/entities-idp?&output=xml"
signing_cert_file = "spid-registry.crt"

# CIE and eIDAS (FICEP): add one [[metadata]] each once the federation has given you its
# metadata URL and signing certificate (docs/OPERATIONS.md, "Onboarding").

[[token.key]]
kid = "1"
file = "token.key"              # P-256; varco keys generate writes it

# Which requests need a login, and at what level. Forward-auth (nginx auth_request, Traefik
# ForwardAuth) by default; add `upstream = "http://portal:8000"` to proxy instead.
[[route]]
path_prefix = "/"
min_loa = "substantial"
"#,
        portal_comment = a.portal.replace('\n', " "),
        entity_comment = format_args!("{base}/saml/metadata"),
        ipa_comment = a.ipa_code.replace('\n', " "),
        base = quoted(base),
        portal = quoted(&a.portal),
        org_url = quoted(org_url),
        ipa = quoted(&a.ipa_code),
        email = quoted(&a.email),
    )
}

/// Runs `varco init`.
pub(super) fn run(args: &InitArgs) -> ExitCode {
    if !args.public_base_url.starts_with("https://") {
        eprintln!("varco init: --public-base-url must be an https URL");
        return ExitCode::from(EX_USAGE);
    }
    let text = render(args);
    match &args.out {
        None => crate::leaf::output::text(&text),
        Some(path) => {
            let written = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
            if let Err(e) = written {
                eprintln!("varco init: {}: {e}", path.display());
                return ExitCode::from(EX_USAGE);
            }
        }
    }
    ExitCode::SUCCESS
}
