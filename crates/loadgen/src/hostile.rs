//! # varco-hostile: the CPU of worst-case requests against a normal SPID Response
//!
//! ```text
//! varco-hostile [--rounds K] [--acs-bytes N]
//! varco-hostile [--acs-bytes N] --only CASE --calls N
//! varco-hostile [--acs-bytes N] --write DIR --idp ENTITY_ID --sp BASE_URL
//! ```
//!
//! In process, one thread: the CPU time (the thread's own, from `/proc/thread-self/schedstat`,
//! so other processes on the machine do not count) of
//! - `normal`: `saml::validate_response` of the 8 KB SPID fixture Response signed by the test
//!   IdP (`crates/xmldsig/tests/fixtures/response-spid.xml`), validated to the end;
//! - `slo_worst`: `IncomingSlo::from_post` + `validate_logout_request` of the costliest
//!   LogoutRequest shape of `testkit::hostile` (`namespace_heavy`: every namespace
//!   declaration the parser allows, 31 prefixed attributes per element) naming the trusted
//!   IdP as Issuer, as large as a logout message may be (`saml::MAX_LOGOUT_XML`, within the
//!   64 KiB `/saml/slo` body);
//! - `slo_worst_signed`: the same with a `ds:Signature` the IdP really made (over a small
//!   LogoutRequest with the same ID) grafted in: the signature verifies, so the whole body is
//!   canonicalized and hashed before the digest refuses it, the costliest path;
//! - `acs_worst`: `validate_response` of the same shape with its root renamed to a
//!   `samlp:Response` answering the pending request (the ACS path), `--acs-bytes` large
//!   (default: within the broker's `saml.max_response_bytes`);
//! - `acs_worst_signed`: the same with the genuine Response signature of the fixture grafted
//!   in (any account holder receives signed Responses).
//!
//! The per-shape table of every hostile input is `cargo bench -p saml --bench hostile`
//! (docs/PERFORMANCE.md, "Worst-case inputs"); this tool adds the two bodies the HTTP flood
//! of `scripts/load-hostile.sh` posts.
//!
//! Each is the median of K rounds (a round is a batch of calls, many scheduler ticks long); the
//! ratio to `normal` is issue 17's target (at most 10×). `--only CASE --calls N` runs one case
//! N times untimed, for `scripts/hostile-instructions.sh` (instruction counts under
//! callgrind, which other tenants of the machine do not disturb).
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
    worst_at(
        idp,
        sp,
        root,
        extra,
        budget,
        "2025-03-14T09:26:58Z",
        HOSTILE_ID,
    )
}

/// The root `ID` of the worst-case documents without a grafted signature.
const HOSTILE_ID: &str = "_hostile0000000000000000000000000000000000";
/// The Response `ID` of the signed fixture (its second signature covers it).
const RESPONSE_ID: &str = "_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b";
const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// [`worst_for`] issued at `instant` (a running stack checks it against its own clock), with
/// root `ID` `id`.
fn worst_at(
    idp: &str,
    sp: &str,
    root: &str,
    extra: &str,
    budget: usize,
    instant: &str,
    id: &str,
) -> String {
    let parties = testkit::hostile::Parties {
        idp: idp.to_owned(),
        destination: format!("{sp}/saml/{extra}"),
        id: id.to_owned(),
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

/// The `ds:Signature` element of `xml` whose Reference names `#id`, with the `ds` namespace
/// declared on it (so it can be moved into another document).
fn signature_of(xml: &str, id: &str) -> Result<String, String> {
    let at = xml
        .find(&format!("URI=\"#{id}\""))
        .ok_or("no reference to the ID")?;
    let start = ["<ds:Signature>", "<ds:Signature "]
        .iter()
        .filter_map(|tag| xml[..at].rfind(tag))
        .max()
        .ok_or("no ds:Signature")?;
    let end = at
        + xml[at..]
            .find("</ds:Signature>")
            .ok_or("unclosed ds:Signature")?;
    let sig = &xml[start..end + "</ds:Signature>".len()];
    if sig.starts_with("<ds:Signature xmlns:ds=") {
        Ok(sig.to_owned())
    } else {
        Ok(sig.replacen(
            "<ds:Signature",
            &format!("<ds:Signature xmlns:ds=\"{DSIG_NS}\""),
            1,
        ))
    }
}

/// `hostile` with its (never valid) `ds:Signature` replaced by `genuine`: the attacker who
/// copies the signature of a message the IdP really signed (any account holder receives
/// signed Responses, and SLO messages pass through the browser). The signature over
/// SignedInfo then verifies, and the reference digest of the whole hostile body is computed
/// before the mismatch refuses it: the costliest path a signature can buy.
fn graft(hostile: &str, genuine: &str) -> Result<String, String> {
    let start = hostile.find("<ds:Signature").ok_or("no ds:Signature")?;
    let end = start
        + hostile[start..]
            .find("</ds:Signature>")
            .ok_or("unclosed ds:Signature")?
        + "</ds:Signature>".len();
    Ok(format!("{}{genuine}{}", &hostile[..start], &hostile[end..]))
}

fn worst(root: &str, extra: &str, budget: usize) -> String {
    worst_for(IDP, SP, root, extra, budget)
}

/// The `/saml/slo` form body of `xml`.
fn slo_form(xml: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(xml);
    format!("SAMLRequest={}", testkit::hostile::form_encode(&b64))
}

/// The `/saml/slo` form body of the worst-case LogoutRequest: the largest logout message
/// (`saml::MAX_LOGOUT_XML`) within the 64 KiB body cap.
fn slo_body(idp: &str, sp: &str) -> String {
    let mut budget = saml::MAX_LOGOUT_XML;
    loop {
        let xml = worst_for(idp, sp, "LogoutRequest", "slo", budget);
        let body = slo_form(&xml);
        if body.len() <= SLO_BODY && xml.len() <= saml::MAX_LOGOUT_XML {
            return body;
        }
        budget -= 256;
    }
}

/// The broker's `/saml/slo` body cap (crates/broker/src/routes/slo.rs).
const SLO_BODY: usize = 64 * 1024;

/// One measured case: a name, the size of what it feeds, and the call.
struct Case<'a> {
    name: &'static str,
    bytes: usize,
    what: &'static str,
    batch: usize,
    call: Box<dyn FnMut() -> String + 'a>,
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut rounds = 5usize;
    // Within the broker's default `saml.max_response_bytes` (40 KiB), with room for the
    // generator's rounding; `--acs-bytes 261888` is the parser's own limit.
    let mut acs_bytes = 40 * 1024 - 256;
    let (mut write, mut idp_id, mut sp_base) = (None, None, None);
    let (mut only, mut calls) = (None, 0usize);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next()) {
            ("--rounds", Some(v)) => rounds = v.parse().map_err(|_| "--rounds: a count")?,
            ("--write", Some(v)) => write = Some(v),
            ("--idp", Some(v)) => idp_id = Some(v),
            ("--sp", Some(v)) => sp_base = Some(v),
            ("--acs-bytes", Some(v)) => {
                acs_bytes = v.parse().map_err(|_| "--acs-bytes: a size in bytes")?;
            }
            ("--only", Some(v)) => only = Some(v),
            ("--calls", Some(v)) => calls = v.parse().map_err(|_| "--calls: a count")?,
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
        let response = worst_at(&idp, &sp, "Response", "acs", acs_bytes, &later, HOSTILE_ID);
        std::fs::write(dir.join("response.xml"), response).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("slo.form"), slo_body(&idp, &sp)).map_err(|e| e.to_string())?;
        return Ok(());
    }
    let idp = idp()?;
    let now = fixture_now();
    let skew = Duration::from_secs(60);
    let acs_url = format!("{SP}/saml/acs");
    let expected = saml::Expected {
        request_id: REQUEST_ID,
        acs_url: &acs_url,
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
    let key = SigningKey::from_pem(
        &read(&format!("{KEYS}/idp-rsa2048.key.pem"))?,
        &read(&format!("{KEYS}/idp-rsa2048.crt.pem"))?,
    )
    .map_err(|e| format!("key: {e:?}"))?;
    // A genuine LogoutRequest signature by the IdP, over a small message with the hostile
    // document's ID.
    let small = testkit::hostile::logout_request(
        &testkit::hostile::Parties {
            idp: IDP.to_owned(),
            destination: format!("{SP}/saml/slo"),
            id: HOSTILE_ID.to_owned(),
            issue_instant: "2025-03-14T09:26:58Z".to_owned(),
        },
        "",
        "",
        "",
    );
    let small_signed = sign_enveloped(
        &small,
        HOSTILE_ID,
        &key,
        SignatureMethod::RsaSha256,
        DigestMethod::Sha256,
    )
    .map_err(|e| format!("sign: {e:?}"))?;
    let slo_genuine = signature_of(&small_signed, HOSTILE_ID)?;
    let acs_genuine = signature_of(&normal, RESPONSE_ID)?;

    let slo = slo_body(IDP, SP);
    let slo_signed = {
        let mut budget = saml::MAX_LOGOUT_XML;
        loop {
            let xml = graft(
                &worst_for(IDP, SP, "LogoutRequest", "slo", budget),
                &slo_genuine,
            )?;
            // The signature was made over the small message: the grafted body's digest
            // cannot match, which is the point.
            let body = slo_form(&xml);
            if body.len() <= SLO_BODY && xml.len() <= saml::MAX_LOGOUT_XML {
                break body;
            }
            budget -= 256;
        }
    };
    let acs = worst("Response", "acs", acs_bytes);
    // The genuine signature carries a certificate: room for it within the size.
    let acs_signed = graft(
        &worst_at(
            IDP,
            SP,
            "Response",
            "acs",
            acs_bytes - 2048,
            "2025-03-14T09:26:58Z",
            RESPONSE_ID,
        ),
        &acs_genuine,
    )?;
    let destination = format!("{SP}/saml/slo");
    let slo_call = |body: &str| {
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
        match r {
            Ok(_) => "accepted!".to_owned(),
            Err(saml::LogoutError::Signature(e)) => e.code().to_owned(),
            Err(e) => e.code().to_owned(),
        }
    };
    let acs_call =
        |xml: &str| match saml::validate_response(xml.as_bytes(), &expected, &idp, now, skew) {
            Ok(_) => "validated".to_owned(),
            Err(saml::Error::ResponseSignature(e)) => {
                format!("saml_response_signature: {}", e.code())
            }
            Err(e) => e.code().to_owned(),
        };
    let mut cases = vec![
        Case {
            name: "normal",
            bytes: normal.len(),
            what: "B XML ",
            batch: 5000,
            call: Box::new(|| acs_call(&normal)),
        },
        Case {
            name: "slo_worst",
            bytes: slo.len(),
            what: "B body",
            batch: 1000,
            call: Box::new(|| slo_call(&slo)),
        },
        Case {
            name: "slo_worst_signed",
            bytes: slo_signed.len(),
            what: "B body",
            batch: 1000,
            call: Box::new(|| slo_call(&slo_signed)),
        },
        Case {
            name: "acs_worst",
            bytes: acs.len(),
            what: "B XML ",
            batch: 400,
            call: Box::new(|| acs_call(&acs)),
        },
        Case {
            name: "acs_worst_signed",
            bytes: acs_signed.len(),
            what: "B XML ",
            batch: 400,
            call: Box::new(|| acs_call(&acs_signed)),
        },
    ];

    // Under callgrind: run one case `calls` times and nothing else, untimed. The script
    // subtracts a run with `--calls 0` (same setup) to get the instructions per call.
    if let Some(name) = only {
        let case = cases
            .iter_mut()
            .find(|c| c.name == name)
            .ok_or_else(|| format!("--only: no case {name}"))?;
        let mut outcome = String::new();
        for _ in 0..calls {
            outcome = std::hint::black_box((case.call)());
        }
        println!("{} {} {outcome}", case.name, case.bytes);
        return Ok(());
    }

    let mut normal_us = 0.0;
    let mut ratios = Vec::new();
    for case in &mut cases {
        let mut outcome = String::new();
        let us = median_cpu_us(rounds, case.batch, || outcome = (case.call)());
        if case.name == "normal" {
            normal_us = us;
        }
        let ratio = us / normal_us;
        println!(
            "{:<17} {:>7} {}  {us:>10.1} µs CPU  {ratio:>5.1}x  ({outcome})",
            case.name, case.bytes, case.what
        );
        ratios.push(format!("hostile_ratio_{}={ratio:.1}", case.name));
    }
    println!("{}", ratios[1..].join(" "));
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
