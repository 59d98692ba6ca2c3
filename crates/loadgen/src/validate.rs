//! # varco-validate-files: Varco's in-process Response validation over fixture files
//!
//! ```text
//! varco-validate-files DIR [--rounds K]
//! ```
//!
//! DIR is what `varco-loadgen fixtures` wrote. Each round takes every `SAMLResponse` file
//! in `manifest.tsv`, base64-decodes it and runs `saml::validate_response` against the
//! pending request it answers (the RelayState is the request ID), the demo IdP's metadata
//! (parsed once, outside the timing) and the SP's entityID and ACS URL, with the clock set
//! to when the fixtures were written (the clock is an argument, so the files stay valid).
//! That is the work pysaml2's `parse_authn_request_response` does on the same files in
//! `scripts/pysaml2-validate.py`: decode, parse, verify both signatures, check the
//! conditions, audience, recipient and `InResponseTo`. Not included: the store and session
//! work of the ACS route (see the `acs` criterion bench for the whole decision).
//!
//! Prints per-Response times (median, best and worst round) and one machine-readable line,
//! `varco_us_per_response=…`. Exit status 1 if any Response fails validation.

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, UNIX_EPOCH};

use base64::Engine as _;

struct Fixture {
    xml_b64: Vec<u8>,
    request_id: String,
}

fn env_value<'a>(env: &'a str, key: &str) -> Result<&'a str, String> {
    env.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .ok_or_else(|| format!("sp.env has no {key}"))
}

fn run() -> Result<bool, String> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or("usage: varco-validate-files DIR [--rounds K]")?;
    let mut rounds = 20usize;
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--rounds", Some(v)) => rounds = v.parse().map_err(|_| "--rounds: a count")?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    let dir = Path::new(&dir);
    let read = |f: &str| std::fs::read(dir.join(f)).map_err(|e| format!("{f}: {e}"));
    let env = String::from_utf8(read("sp.env")?).map_err(|_| "sp.env is not UTF-8")?;
    let sp_entity_id = env_value(&env, "SP_ENTITY_ID")?;
    let acs_url = env_value(&env, "ACS_URL")?;
    let idp_entity_id = env_value(&env, "IDP_ENTITY_ID")?;
    let ms = |k| -> Result<u64, String> {
        env_value(&env, k)?
            .parse()
            .map_err(|_| format!("{k}: milliseconds"))
    };
    let issued_after = UNIX_EPOCH + Duration::from_millis(ms("REQUESTS_ISSUED_AFTER_MS")?);
    let now = UNIX_EPOCH + Duration::from_millis(ms("GENERATED_MS")?);

    let idps =
        metadata::parse_idp_metadata(&read("idp-metadata.xml")?, saml::Federation::Spid, &[])
            .map_err(|e| format!("idp-metadata.xml: {e}"))?;
    let idp = idps
        .into_iter()
        .find(|d| d.entity_id == idp_entity_id)
        .ok_or("the IdP is not in idp-metadata.xml")?;

    let manifest = String::from_utf8(read("manifest.tsv")?).map_err(|_| "manifest not UTF-8")?;
    let mut fixtures = Vec::new();
    for line in manifest.lines().filter(|l| !l.is_empty()) {
        let (file, request_id) = line.split_once('\t').ok_or("manifest: FILE\\tID")?;
        fixtures.push(Fixture {
            xml_b64: read(file)?,
            request_id: request_id.to_owned(),
        });
    }
    if fixtures.is_empty() {
        return Err("no fixtures".into());
    }

    let mut per_round = Vec::with_capacity(rounds);
    let mut failures = 0usize;
    for _ in 0..rounds.max(1) {
        let t0 = Instant::now();
        for f in &fixtures {
            let expected = saml::Expected {
                request_id: &f.request_id,
                acs_url,
                sp_entity_id,
                requested_level: saml::Level::L2,
                idp_entity_id,
                // No IssueInstant of a Response may precede the request's (beyond the skew):
                // the requests were all issued after this instant.
                request_issue_instant: issued_after,
            };
            let ok = base64::engine::general_purpose::STANDARD
                .decode(f.xml_b64.trim_ascii())
                .ok()
                .map(|xml| {
                    saml::validate_response(&xml, &expected, &idp, now, Duration::from_secs(60))
                });
            match ok {
                Some(Ok(a)) => {
                    std::hint::black_box(a);
                }
                Some(Err(e)) => {
                    failures += 1;
                    if failures <= 3 {
                        eprintln!("refused: {}", e.code());
                    }
                }
                None => failures += 1,
            }
        }
        per_round.push(t0.elapsed().as_secs_f64() * 1e6 / fixtures.len() as f64);
    }
    per_round.sort_by(f64::total_cmp);
    let median = per_round[per_round.len() / 2];
    println!(
        "varco saml::validate_response (base64 decode + parse + 2 signatures + rules), {} Responses x {} rounds: median {median:.1} µs per Response (best round {:.1}, worst {:.1})",
        fixtures.len(),
        per_round.len(),
        per_round[0],
        per_round[per_round.len() - 1]
    );
    println!("varco_us_per_response={median:.2}");
    Ok(failures == 0)
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("varco-validate-files: some Responses were refused");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("varco-validate-files: {e}");
            ExitCode::from(2)
        }
    }
}
