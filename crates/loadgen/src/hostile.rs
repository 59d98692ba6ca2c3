//! # varco-hostile: the CPU of worst-case requests against a normal SPID Response
//!
//! ```text
//! varco-hostile [--rounds K]
//! varco-hostile --write DIR --idp ENTITY_ID --sp BASE_URL
//! ```
//!
//! In process, one thread: the CPU time (the thread's own, from `/proc/thread-self/schedstat`,
//! so other processes on the machine do not count) of
//! - `normal`: `saml::validate_response` of the 8 KB SPID fixture Response signed by the test
//!   IdP (`crates/xmldsig/tests/fixtures/response-spid.xml`), validated to the end;
//! - `slo_worst`: `IncomingSlo::from_post` + `validate_logout_request` of the costliest
//!   LogoutRequest shape of `testkit::hostile` (`namespace_heavy`: every namespace
//!   declaration the parser allows, 31 prefixed attributes per element) naming the trusted
//!   IdP as Issuer, as large as `/saml/slo`'s 256 KiB form body allows;
//! - `acs_worst`: `validate_response` of the same document with its root renamed to a
//!   `samlp:Response` answering the pending request (the ACS path), as large as the parser
//!   takes.
//!
//! The per-shape table of every hostile input is `cargo bench -p saml --bench hostile`
//! (docs/PERFORMANCE.md, "Worst-case inputs"); this tool adds the two bodies the HTTP flood
//! of `scripts/load-hostile.sh` posts.
//!
//! Each is the median of K rounds (a round is a batch of calls, many scheduler ticks long); the ratio to `normal` is issue 17's target (at most 10×).
//! The worst cases are refused, as they must be: what is measured is what the refusal costs.
//!
//! `--write` instead writes the two worst-case bodies for a running stack (`slo.form`: the
//! `/saml/slo` form body; `response.xml`: the Response, whose `InResponseTo` the flooding
//! client sets to its own pending login's ID before posting it), naming `ENTITY_ID` as Issuer and `BASE_URL` as
//! Varco: `scripts/load-hostile.sh` floods with them.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use xmldsig::{DigestMethod, SignatureMethod, SigningKey, sign_enveloped};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../xmldsig/tests/fixtures/response-spid.xml"
);
const IDP: &str = "https://idp.spid.example.org";
const SP: &str = "https://sp.varco.example.org";
const REQUEST_ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";

/// CPU time of this thread, nanoseconds.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Median over `rounds` of the CPU per call of `f`, microseconds, each round a batch of
/// `batch` calls: the kernel updates a thread's CPU time at scheduler ticks, so a round must
/// last many ticks.
fn median_cpu_us(rounds: usize, batch: usize, mut f: impl FnMut()) -> f64 {
    let mut v: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t0 = thread_cpu_ns();
            for _ in 0..batch.max(1) {
                f();
            }
            (thread_cpu_ns() - t0) as f64 / 1e3 / batch.max(1) as f64
        })
        .collect();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The wall clock, for bodies a running Varco checks against its own (a harness, not a
/// validation path: the clock rule is for the crates under test).
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

fn fixture_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_741_944_420)
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{path}: {e}"))
}

fn signed_fixture() -> Result<String, String> {
    let key = SigningKey::from_pem(
        &read(&format!("{KEYS}/idp-rsa2048.key.pem"))?,
        &read(&format!("{KEYS}/idp-rsa2048.crt.pem"))?,
    )
    .map_err(|e| format!("key: {e:?}"))?;
    let mut xml = String::from_utf8(read(FIXTURE)?).map_err(|_| "fixture not UTF-8")?;
    while let Some(start) = xml.find("<ds:Signature>") {
        let end = xml[start..]
            .find("</ds:Signature>")
            .ok_or("unclosed template")?
            + start
            + "</ds:Signature>".len();
        xml.replace_range(start..end, "");
    }
    let sign = |xml: &str, id: &str| {
        sign_enveloped(
            xml,
            id,
            &key,
            SignatureMethod::RsaSha256,
            DigestMethod::Sha256,
        )
        .map_err(|e| format!("sign: {e:?}"))
    };
    let once = sign(&xml, "_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f")?;
    sign(&once, "_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b")
}

fn idp() -> Result<saml::IdpDescriptor, String> {
    let pem = String::from_utf8(read(&format!("{KEYS}/idp-rsa2048.crt.pem"))?)
        .map_err(|_| "certificate not UTF-8")?;
    let cert: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let md = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{IDP}/slo"/><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{IDP}/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
    );
    metadata::parse_idp_metadata(md.as_bytes(), saml::Federation::Spid, &[])
        .map_err(|e| format!("metadata: {e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| "no IdP".into())
}

/// The costliest shape of `testkit::hostile` within `budget` bytes of XML, naming `idp` as
/// Issuer and `sp`'s endpoint as Destination: a LogoutRequest for `/saml/slo`, or, for the
/// ACS, the same document as a Response answering `REQUEST_ID` (it must answer a pending
/// request, or it is refused before any signature work).
fn worst_for(idp: &str, sp: &str, root: &str, extra: &str, budget: usize) -> String {
    worst_at(idp, sp, root, extra, budget, "2025-03-14T09:26:58Z")
}

/// [`worst_for`] issued at `instant` (a running stack checks it against its own clock).
fn worst_at(idp: &str, sp: &str, root: &str, extra: &str, budget: usize, instant: &str) -> String {
    let parties = testkit::hostile::Parties {
        idp: idp.to_owned(),
        destination: format!("{sp}/saml/{extra}"),
        id: "_hostile0000000000000000000000000000000000".into(),
        issue_instant: instant.to_owned(),
    };
    let xml = testkit::hostile::namespace_heavy(&parties, budget);
    if root == "Response" {
        xml.replacen(
            "<samlp:LogoutRequest ",
            &format!("<samlp:Response InResponseTo=\"{REQUEST_ID}\" "),
            1,
        )
        .replace("</samlp:LogoutRequest>", "</samlp:Response>")
    } else {
        xml
    }
}

fn worst(root: &str, extra: &str, budget: usize) -> String {
    worst_for(IDP, SP, root, extra, budget)
}

/// The `/saml/slo` form body of the worst-case LogoutRequest, within 256 KiB.
fn slo_body(idp: &str, sp: &str) -> String {
    let mut budget = 190_000;
    loop {
        let xml = worst_for(idp, sp, "LogoutRequest", "slo", budget);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&xml);
        let body = format!("SAMLRequest={}", testkit::hostile::form_encode(&b64));
        if body.len() <= 256 * 1024 {
            return body;
        }
        budget -= 2_000;
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut rounds = 5usize;
    let (mut write, mut idp_id, mut sp_base) = (None, None, None);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--rounds", Some(v)) => rounds = v.parse().map_err(|_| "--rounds: a count")?,
            ("--write", Some(v)) => write = Some(v),
            ("--idp", Some(v)) => idp_id = Some(v),
            ("--sp", Some(v)) => sp_base = Some(v),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if let Some(dir) = write {
        let (Some(idp), Some(sp)) = (idp_id, sp_base) else {
            return Err("--write needs --idp and --sp".into());
        };
        let dir = std::path::Path::new(&dir);
        // Issued half a skew (60 s) ahead: the flood's own AuthnRequests, made during the next
        // minute, do not postdate it by more than the skew, nor it the clock.
        let later = saml::format_instant(wall_clock() + Duration::from_secs(30))
            .ok_or("clock before 1970")?;
        let response = worst_at(&idp, &sp, "Response", "acs", 256 * 1024 - 256, &later);
        std::fs::write(dir.join("response.xml"), response).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("slo.form"), slo_body(&idp, &sp)).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let idp = idp()?;
    let now = fixture_now();
    let skew = Duration::from_secs(60);
    let expected = saml::Expected {
        request_id: REQUEST_ID,
        acs_url: &format!("{SP}/saml/acs"),
        sp_entity_id: SP,
        requested_level: saml::Level::L2,
        idp_entity_id: IDP,
        request_issue_instant: now - Duration::from_secs(10),
    };

    let normal = signed_fixture()?;
    if let Err(e) = saml::validate_response(normal.as_bytes(), &expected, &idp, now, skew) {
        return Err(format!(
            "the normal Response does not validate: {}",
            e.code()
        ));
    }
    let normal_us = median_cpu_us(rounds, 500, || {
        let _ = std::hint::black_box(saml::validate_response(
            normal.as_bytes(),
            &expected,
            &idp,
            now,
            skew,
        ));
    });
    println!(
        "normal      {:>7} B XML   {normal_us:>12.1} µs CPU   1.0x   (validated)",
        normal.len()
    );

    let body = slo_body(IDP, SP);
    let destination = format!("{SP}/saml/slo");
    let mut outcome = String::new();
    let slo_us = median_cpu_us(rounds, 20, || {
        let r = saml::IncomingSlo::from_post(body.as_bytes()).and_then(|m| {
            saml::validate_logout_request(
                &m,
                &destination,
                &idp,
                now,
                skew,
                Duration::from_secs(300),
            )
        });
        outcome = match r {
            Ok(_) => "accepted!".into(),
            Err(e) => e.code().to_owned(),
        };
    });
    println!(
        "slo_worst   {:>7} B body  {slo_us:>12.1} µs CPU   {:.1}x   (refused: {outcome})",
        body.len(),
        slo_us / normal_us
    );

    let acs_xml = worst("Response", "acs", 256 * 1024 - 256);
    let acs_us = median_cpu_us(rounds, 20, || {
        outcome = match saml::validate_response(acs_xml.as_bytes(), &expected, &idp, now, skew) {
            Ok(_) => "accepted!".into(),
            Err(e) => e.code().to_owned(),
        };
    });
    println!(
        "acs_worst   {:>7} B XML   {acs_us:>12.1} µs CPU   {:.1}x   (refused: {outcome})",
        acs_xml.len(),
        acs_us / normal_us
    );
    println!(
        "hostile_ratio_slo={:.1} hostile_ratio_acs={:.1}",
        slo_us / normal_us,
        acs_us / normal_us
    );
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("varco-hostile: {e}");
            ExitCode::from(2)
        }
    }
}
