//! The whole ACS decision in process: form body in, session cookie value out.
//!
//! Per iteration: decode the form and base64, look up the pending request, check the
//! browser binding, parse once, verify the Response and Assertion signatures (RSA-2048),
//! check every SAML/SPID rule, consume the request and the assertion ID in the store, and
//! seal the session cookie. Each iteration gets a fresh store with the pending request in
//! it (setup, not measured), so one signed Response can be replayed through the real
//! one-time-use path.
//!
//! Input: `crates/xmldsig/tests/fixtures/response-spid.xml` with its signature templates
//! removed, signed by `sign_enveloped` with the test key `idp-rsa2048` (Assertion, then
//! Response): 11 KB, 19 attributes.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use broker::config::{Overrides, load};
use broker::server::{State, consume};
use broker::session::{Purpose, Sealer};
use broker::store::{Pending, Store};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ring::rand::SystemRandom;
use xmldsig::{DigestMethod, SignatureMethod, SigningKey, sign_enveloped};

const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../xmldsig/tests/fixtures/response-spid.xml"
);
const REQUEST_ID: &str = "_4d38c302617b5bf98951e65b4cf304711e2166df20";
const BROWSER: &str = "0123456789abcdef0123456789abcdef";

/// 2025-03-14T09:27:00Z, seven seconds after the fixture's IssueInstant.
fn fixture_now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_741_944_420)
}

fn strip_signature_templates(xml: &str) -> String {
    let mut out = xml.to_owned();
    while let Some(start) = out.find("<ds:Signature>") {
        let end = out[start..].find("</ds:Signature>").unwrap() + start + "</ds:Signature>".len();
        out.replace_range(start..end, "");
    }
    out
}

fn signed_response() -> String {
    let read = |f: &str| std::fs::read(format!("{KEYS}/{f}")).unwrap();
    let key =
        SigningKey::from_pem(&read("idp-rsa2048.key.pem"), &read("idp-rsa2048.crt.pem")).unwrap();
    let xml = strip_signature_templates(&std::fs::read_to_string(FIXTURE).unwrap());
    let sign = |xml: &str, id: &str| {
        sign_enveloped(
            xml,
            id,
            &key,
            SignatureMethod::RsaSha256,
            DigestMethod::Sha256,
        )
        .unwrap()
    };
    let once = sign(&xml, "_5a9c7e3f1b2d4e6f8a0b1c2d3e4f5a6b7c8d9e0f");
    sign(&once, "_b7d1f3c2a9e84f6d8c0a1e2f3b4c5d6e7f809a1b")
}

fn config() -> Arc<broker::config::Config> {
    let dir = std::env::temp_dir().join(format!("varco-bench-acs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert_pem = std::fs::read_to_string(format!("{KEYS}/idp-rsa2048.crt.pem")).unwrap();
    let cert: String = cert_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    std::fs::write(
        dir.join("idp.xml"),
        format!(
            r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.spid.example.org"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.spid.example.org/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
        ),
    )
    .unwrap();
    std::fs::write(dir.join("session.key"), "ef".repeat(32)).unwrap();
    let toml = format!(
        "[server]\npublic_base_url = \"https://sp.varco.example.org\"\n\
         [sp]\nentity_id = \"https://sp.varco.example.org\"\n\
         key_file = \"{KEYS}/sp-rsa2048.key.pem\"\ncert_file = \"{KEYS}/sp-rsa2048.crt.pem\"\n\
         [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
         url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
         [session]\nkey_file = \"session.key\"\n\
         [[idp]]\nmetadata_file = \"idp.xml\"\n"
    );
    std::fs::write(dir.join("varco.toml"), toml).unwrap();
    let config =
        load(&dir.join("varco.toml"), &Overrides::default()).unwrap_or_else(|p| panic!("{p:?}"));
    Arc::new(config)
}

fn state(config: &Arc<broker::config::Config>) -> State {
    state_with(config, broker::audit::Sink::Off)
}

fn state_with(config: &Arc<broker::config::Config>, audit: broker::audit::Sink) -> State {
    let store = Store::memory(Duration::from_secs(600), 1000);
    store.put_pending(
        REQUEST_ID.into(),
        Pending {
            idp: "https://idp.spid.example.org".into(),
            level: saml::Level::L2,
            return_to: "/".into(),
            issued_at: fixture_now() - Duration::from_secs(10),
            browser: BROWSER.into(),
            request_xml: String::new(),
        },
    );
    State {
        config: config.clone(),
        store,
        sealer: Sealer::new(&config.session_key).unwrap(),
        rng: SystemRandom::new(),
        clock: fixture_now,
        audit,
    }
}

fn benches(c: &mut Criterion) {
    let config = config();
    let xml = signed_response();
    let body = format!(
        "SAMLResponse={}&RelayState={REQUEST_ID}",
        form_urlencoded::byte_serialize(
            base64::engine::general_purpose::STANDARD
                .encode(&xml)
                .as_bytes()
        )
        .collect::<String>()
    );
    // Sanity: the measured path accepts it, and a second submit is refused.
    let s = state(&config);
    consume(&s, body.as_bytes(), Some(BROWSER)).unwrap_or_else(|f| panic!("{}", f.code()));
    assert!(consume(&s, body.as_bytes(), Some(BROWSER)).is_err());

    c.bench_function("acs_consume_and_seal_11k_rsa2048", |b| {
        b.iter_batched(
            || state(&config),
            |s| {
                let (session, to) = consume(&s, black_box(body.as_bytes()), Some(BROWSER))
                    .unwrap_or_else(|f| panic!("{}", f.code()));
                let sealed = s.sealer.seal(Purpose::Session, &session);
                // Returned, so the store is dropped outside the measurement.
                (s, black_box((sealed, to)))
            },
            BatchSize::SmallInput,
        )
    });
}

/// ACS throughput with the durable audit record (file sink, fdatasync, group commit) against
/// the same work without it. N tasks (logins in flight) on a two-worker runtime each take the next login
/// until all are done: decide (consume, seal), build the record and, with audit on, await its
/// fsync before taking the next, as `acs()` awaits it before sending the cookie. States (one
/// fresh store per login) are built before the clock starts.
fn concurrent_audit(c: &mut Criterion) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let config = config();
    let xml = signed_response();
    let body = Arc::new(format!(
        "SAMLResponse={}&RelayState={REQUEST_ID}",
        form_urlencoded::byte_serialize(
            base64::engine::general_purpose::STANDARD
                .encode(&xml)
                .as_bytes()
        )
        .collect::<String>()
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    // VARCO_BENCH_AUDIT_DIR=/dev/shm separates the disk's share (sync latency, bandwidth)
    // from the CPU's (hashing, encoding) in the audit cost.
    let base = std::env::var_os("VARCO_BENCH_AUDIT_DIR")
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let dir = base.join(format!("varco-bench-audit-acs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let sink = broker::audit::file::FileSink::open(
        &broker::audit::file::Options {
            dir: dir.clone(),
            max_file_bytes: 64 * 1024 * 1024,
            retention: Duration::from_secs(731 * 86_400),
            key: None,
        },
        fixture_now(),
    )
    .unwrap();
    let mut group = c.benchmark_group("acs_throughput");
    group.throughput(criterion::Throughput::Elements(1));
    for (in_flight, audit_on) in [(32, false), (32, true), (128, false), (128, true)] {
        let name = format!(
            "{}_{in_flight}_in_flight",
            if audit_on { "audit_on" } else { "audit_off" }
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let states: Arc<Vec<State>> = Arc::new(
                    (0..iters)
                        .map(|_| {
                            let sink = if audit_on {
                                broker::audit::Sink::File(sink.clone())
                            } else {
                                broker::audit::Sink::Off
                            };
                            state_with(&config, sink)
                        })
                        .collect(),
                );
                let next = Arc::new(AtomicUsize::new(0));
                let start = std::time::Instant::now();
                rt.block_on(async {
                    let workers: Vec<_> = (0..in_flight)
                        .map(|_| {
                            let (states, next, body) = (states.clone(), next.clone(), body.clone());
                            tokio::spawn(async move {
                                loop {
                                    let i = next.fetch_add(1, Ordering::Relaxed);
                                    let Some(s) = states.get(i) else { break };
                                    let mut evidence = broker::audit::Evidence::default();
                                    let (session, _) = broker::server::consume_recorded(
                                        s,
                                        body.as_bytes(),
                                        Some(BROWSER),
                                        &mut evidence,
                                    )
                                    .unwrap_or_else(|f| panic!("{}", f.code()));
                                    let sealed = s.sealer.seal(Purpose::Session, &session);
                                    let record = evidence.record(
                                        broker::audit::Outcome::Completed { sid: &session.sid },
                                        fixture_now(),
                                    );
                                    s.audit.append(fixture_now(), record).await.unwrap();
                                    black_box(sealed);
                                }
                            })
                        })
                        .collect();
                    for w in workers {
                        w.await.unwrap();
                    }
                });
                let elapsed = start.elapsed();
                // Dropped outside the measurement.
                drop(states);
                elapsed
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(acs, benches, concurrent_audit);
criterion_main!(acs);
