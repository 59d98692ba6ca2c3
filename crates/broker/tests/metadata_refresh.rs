//! Metadata sources end to end: a real HTTP server on 127.0.0.1 serves an aggregate signed by
//! `xmlsec1` with a test federation key; the refresher is driven with injected times. Normal
//! load, a rotated IdP certificate, a removed IdP, every kind of failure keeping the last good
//! snapshot, expiry of the last good document, and a restart during an outage served from the
//! backing file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../xmldsig/tests/support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use broker::features::registry::{Location, Refresher, SourceConfig};
use metadata::{FailureReason, Origin, RefreshBounds, Registry, SourceState};
use saml::Federation;
use support::xmlsec::{self, Key};
use xmldsig::TrustedKey;

const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const IDP_A: &str = "https://idp-a.example.org";
const IDP_B: &str = "https://idp-b.example.org";
const FEDERATION_KEY: Key = Key::Rsa3072;

/// 2026-01-01T00:00:00Z: the injected "now" of the first pass.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// `t0` plus `days`: every step moves far past any backoff or refresh bound.
fn day(days: u64) -> SystemTime {
    t0() + Duration::from_secs(days * 86_400)
}

fn cert_b64(key: Key) -> String {
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(key.cert_der()).unwrap())
}

fn entity(entity_id: &str, cert: Key, name: &str) -> String {
    format!(
        r#"<md:EntityDescriptor entityID="{entity_id}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:Extensions><mdui:UIInfo xmlns:mdui="urn:oasis:names:tc:SAML:metadata:ui"><mdui:DisplayName xml:lang="en">{name} (en)</mdui:DisplayName><mdui:DisplayName xml:lang="it">{name}</mdui:DisplayName><mdui:Logo height="16" width="16">{entity_id}/logo.png</mdui:Logo></mdui:UIInfo></md:Extensions><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{entity_id}/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        cert_b64(cert)
    )
}

/// An aggregate of `entities`, signed by `signer` with xmlsec1.
fn aggregate(entities: &[String], valid_until: &str, signer: Key) -> Vec<u8> {
    let template = format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<md:EntitiesDescriptor xmlns:md="{MD_NS}" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" ID="_registry" Name="test-federation" validUntil="{valid_until}" cacheDuration="PT6H">
<ds:Signature><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/><ds:Reference URI="#_registry"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue></ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate></ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>
{}
</md:EntitiesDescriptor>
"##,
        entities.concat()
    );
    xmlsec::sign(&template, signer, &[("EntitiesDescriptor", MD_NS)]).into_bytes()
}

const FUTURE: &str = "2030-01-01T00:00:00Z";

fn good_doc() -> Vec<u8> {
    aggregate(
        &[
            entity(IDP_A, Key::Rsa2048, "Alfa ID"),
            entity(IDP_B, Key::P256, "Beta ID"),
        ],
        FUTURE,
        FEDERATION_KEY,
    )
}

// === A small, scriptable HTTP server ===

#[derive(Clone)]
enum Mode {
    Serve(Vec<u8>),
    Status(u16),
    /// Sends the headers and then sleeps past any test timeout.
    Hang,
    /// Announces the full length, sends half, closes.
    Truncate(Vec<u8>),
    /// A 302 to this URL.
    Redirect(String),
}

struct Server {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(mode));
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        let (m, s, r) = (mode.clone(), stop.clone(), requests.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                r.fetch_add(1, Ordering::SeqCst);
                let mode = m.lock().unwrap().clone();
                thread::spawn(move || respond(stream, mode));
            }
        });
        Server {
            port,
            mode,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/registry.xml", self.port)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Closes the listening socket: later connections are refused.
    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

fn respond(mut stream: TcpStream, mode: Mode) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    // Read the request head.
    while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        if line == "\r\n" {
            break;
        }
        line.clear();
    }
    let head = |status: &str, len: usize| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/samlmetadata+xml\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let _ = match mode {
        Mode::Serve(body) => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body)),
        Mode::Status(code) => stream.write_all(head(&format!("{code} Oops"), 0).as_bytes()),
        Mode::Hang => {
            let _ = stream.write_all(head("200 OK", 1000).as_bytes());
            thread::sleep(Duration::from_secs(8));
            Ok(())
        }
        Mode::Truncate(body) => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|()| stream.write_all(&body[..body.len() / 2])),
        Mode::Redirect(to) => stream.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
    };
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let mut sink = Vec::new();
    let _ = reader.read_to_end(&mut sink);
}

// === Helpers ===

fn state_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("varco-md-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn source(url: String) -> SourceConfig {
    SourceConfig {
        name: "registry".into(),
        federation: Federation::Spid,
        location: Location::Url(url),
        pinned: vec![
            TrustedKey::from_certificate_pem(&std::fs::read(FEDERATION_KEY.cert_pem()).unwrap())
                .unwrap(),
        ],
        unsigned: false,
        required: true,
        bounds: RefreshBounds {
            min: Duration::from_secs(60),
            max: Duration::from_secs(3600),
        },
        timeout: Duration::from_secs(2),
        max_bytes: 64 * 1024,
        display_name: None,
        // Longer than any test's span of injected days, unless a test shortens it.
        max_age: Duration::from_secs(30 * 86_400),
    }
}

fn refresher(url: String, dir: &Path) -> Refresher {
    Refresher::new(
        vec![source(url)],
        Some(dir),
        Arc::new(Registry::default()),
        true,
        t0(),
    )
}

fn signing_cert(registry: &Registry, idp: &str) -> Vec<u8> {
    registry.get(idp).unwrap().descriptor.signing_keys[0]
        .certificate_der()
        .to_vec()
}

/// The reason recorded when the server is gone: normally a refused connection, but the
/// freed loopback port may meanwhile belong to another process on this machine, which can
/// reset the connection instead.
fn down(reason: Option<FailureReason>) -> bool {
    matches!(reason, Some(FailureReason::Connect | FailureReason::Io))
}

/// `doc` with its signature removed.
fn unsigned(doc: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(doc.to_vec()).unwrap();
    let start = text.find("<ds:Signature>").unwrap();
    let end = text.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    format!("{}{}", &text[..start], &text[end..]).into_bytes()
}

fn der(key: Key) -> Vec<u8> {
    std::fs::read(key.cert_der()).unwrap()
}

// === Tests ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_picks_up_rotation_and_drops_removed_idps() {
    let dir = state_dir("rotation");
    let server = Server::start(Mode::Serve(good_doc()));
    let r = refresher(server.url(), &dir);
    let registry = r.registry().clone();

    assert!(!registry.is_ready(), "nothing loaded yet");
    assert!(registry.get(IDP_A).is_none());
    assert_eq!(r.refresh_due(t0()).await, 1);
    assert!(registry.is_ready());
    assert_eq!(registry.snapshot().len(), 2);
    let a = registry.get(IDP_A).unwrap();
    assert_eq!(a.display_name.as_deref(), Some("Alfa ID"));
    assert_eq!(
        a.logo.as_deref(),
        Some("https://idp-a.example.org/logo.png")
    );
    assert_eq!(&*a.source, "registry");
    assert_eq!(signing_cert(&registry, IDP_A), der(Key::Rsa2048));
    let record = &r.records_snapshot()[0];
    assert_eq!(record.state, SourceState::Fresh);
    assert_eq!(record.origin, Some(Origin::Source));
    assert_eq!(
        record.validity.cache_duration,
        Some(Duration::from_secs(6 * 3600))
    );
    // Written to the backing file as served.
    let backing = r.backing_file("registry").unwrap();
    assert_eq!(std::fs::read(&backing).unwrap(), good_doc_bytes_of(&server));

    // Not due again before the next attempt the schedule chose (cacheDuration 6 h, clamped
    // to the 1 h maximum, minus jitter).
    assert_eq!(r.refresh_due(t0() + Duration::from_secs(30)).await, 0);

    // The federation rotates IdP A's certificate.
    server.set(Mode::Serve(aggregate(
        &[
            entity(IDP_A, Key::P384, "Alfa ID"),
            entity(IDP_B, Key::P256, "Beta ID"),
        ],
        FUTURE,
        FEDERATION_KEY,
    )));
    // An in-flight login holding the old entry keeps it.
    let held = registry.get(IDP_A).unwrap();
    assert_eq!(r.refresh_due(day(1)).await, 1);
    assert_eq!(signing_cert(&registry, IDP_A), der(Key::P384));
    assert_eq!(
        held.descriptor.signing_keys[0].certificate_der(),
        der(Key::Rsa2048)
    );

    // IdP B leaves the federation.
    server.set(Mode::Serve(aggregate(
        &[entity(IDP_A, Key::P384, "Alfa ID")],
        FUTURE,
        FEDERATION_KEY,
    )));
    assert_eq!(r.refresh_due(day(2)).await, 1);
    assert!(registry.get(IDP_B).is_none(), "removed IdP still trusted");
    assert!(registry.get(IDP_A).is_some());
    let stats = r.stats(day(2));
    assert_eq!(stats[0].attempts, 3);
    assert!(stats[0].failures.iter().all(|(_, n)| *n == 0));
    assert_eq!(stats[0].idp_cert_expiry.len(), 1);
    assert_eq!(stats[0].idp_cert_expiry[0].0, IDP_A);
    assert!(stats[0].seconds_to_valid_until.unwrap() > 0);
}

/// The body the server currently serves.
fn good_doc_bytes_of(server: &Server) -> Vec<u8> {
    match &*server.mode.lock().unwrap() {
        Mode::Serve(b) => b.clone(),
        _ => panic!("not serving"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_keeps_the_last_good_snapshot_and_records_why() {
    let dir = state_dir("failures");
    let mut server = Server::start(Mode::Serve(good_doc()));
    let r = refresher(server.url(), &dir);
    let registry = r.registry().clone();
    r.refresh_due(t0()).await;
    let backing = r.backing_file("registry").unwrap();
    let good_backing = std::fs::read(&backing).unwrap();

    let rotated_by_attacker = aggregate(
        &[entity(IDP_A, Key::Attacker, "Alfa ID")],
        FUTURE,
        Key::Attacker,
    );
    let expired = aggregate(
        &[entity(IDP_A, Key::Attacker, "Alfa ID")],
        "2025-06-01T00:00:00Z",
        FEDERATION_KEY,
    );
    let oversized = {
        let many: Vec<String> = (0..200)
            .map(|i| entity(&format!("https://idp{i}.example.org"), Key::P384, "X"))
            .collect();
        aggregate(&many, FUTURE, FEDERATION_KEY)
    };
    let mut tampered = good_doc();
    let at = tampered.windows(7).position(|w| w == b"Beta ID").unwrap();
    tampered[at] = b'Z';

    let cases: Vec<(Mode, FailureReason)> = vec![
        (Mode::Status(500), FailureReason::Status),
        (Mode::Status(404), FailureReason::Status),
        (Mode::Hang, FailureReason::Timeout),
        (Mode::Truncate(good_doc()), FailureReason::Io),
        (Mode::Serve(rotated_by_attacker), FailureReason::Signature),
        (Mode::Serve(tampered), FailureReason::Signature),
        (Mode::Serve(unsigned(&good_doc())), FailureReason::Signature),
        (Mode::Serve(expired), FailureReason::Expired),
        (Mode::Serve(oversized), FailureReason::TooLarge),
        (
            Mode::Serve(b"<html>maintenance</html>".to_vec()),
            FailureReason::Invalid,
        ),
    ];
    let mut step = 1;
    for (mode, reason) in cases {
        server.set(mode);
        assert_eq!(r.refresh_due(day(step)).await, 1);
        let record = r.records_snapshot().remove(0);
        assert_eq!(
            record.last_error.as_ref().map(|e| e.reason),
            Some(reason),
            "step {step}: {:?}",
            record.last_error
        );
        assert_eq!(record.state, SourceState::Stale, "step {step}");
        assert!(record.failures.get(&reason).copied().unwrap_or(0) > 0);
        assert_eq!(
            signing_cert(&registry, IDP_A),
            der(Key::Rsa2048),
            "step {step}"
        );
        assert!(registry.get(IDP_B).is_some(), "step {step}");
        assert!(registry.is_ready());
        assert_eq!(
            std::fs::read(&backing).unwrap(),
            good_backing,
            "step {step}"
        );
        step += 1;
    }

    server.shut_down();
    r.refresh_due(day(step)).await;
    let record = r.records_snapshot().remove(0);
    assert!(
        down(record.last_error.as_ref().map(|e| e.reason)),
        "{record:?}"
    );
    assert!(registry.get(IDP_A).is_some());
    let stats = r.stats(day(step));
    let count = |reason| {
        stats[0]
            .failures
            .iter()
            .find(|(r, _)| *r == reason)
            .unwrap()
            .1
    };
    assert_eq!(count(FailureReason::Status), 2);
    assert_eq!(count(FailureReason::Signature), 3);
    assert_eq!(
        count(FailureReason::Connect) + count(FailureReason::Io),
        2,
        "the truncated body and the server being down"
    );
    assert_eq!(stats[0].attempts, 12);
    assert!(server.requests.load(Ordering::SeqCst) >= 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_during_an_outage_serves_from_the_backing_file() {
    let dir = state_dir("restart");
    let mut server = Server::start(Mode::Serve(good_doc()));
    {
        let r = refresher(server.url(), &dir);
        r.refresh_due(t0()).await;
        assert!(r.registry().get(IDP_A).is_some());
    }
    server.shut_down();

    // A new process: the registry is down.
    let r = refresher(server.url(), &dir);
    let registry = r.registry().clone();
    assert!(!registry.is_ready());
    r.load_backing_files(day(1));
    assert!(registry.is_ready(), "the backing file counts as loaded");
    assert_eq!(signing_cert(&registry, IDP_A), der(Key::Rsa2048));
    assert_eq!(r.records_snapshot()[0].origin, Some(Origin::BackingFile));
    // The source stays due: the refresher tries the network at once, fails, keeps serving.
    assert_eq!(r.refresh_due(day(1)).await, 1);
    let record = r.records_snapshot().remove(0);
    assert_eq!(record.state, SourceState::Stale);
    assert!(
        down(record.last_error.as_ref().map(|e| e.reason)),
        "{record:?}"
    );
    assert!(registry.get(IDP_B).is_some());

    // A backing file is verified like a fetch: one tampered with is not trusted.
    let backing = r.backing_file("registry").unwrap();
    let text = std::fs::read_to_string(&backing).unwrap();
    std::fs::write(&backing, text.replace("Beta ID", "Evil ID")).unwrap();
    let r = refresher(server.url(), &dir);
    r.load_backing_files(day(1));
    assert!(!r.registry().is_ready());
    assert!(r.registry().get(IDP_A).is_none());

    // And one past its validUntil is not used either.
    std::fs::write(&backing, text).unwrap();
    let r = refresher(server.url(), &dir);
    r.load_backing_files(SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000 + 1));
    assert!(r.registry().get(IDP_A).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_good_document_is_dropped_at_its_valid_until() {
    let dir = state_dir("expiry");
    let mut server = Server::start(Mode::Serve(aggregate(
        &[entity(IDP_A, Key::Rsa2048, "Alfa ID")],
        "2026-01-03T00:00:00Z",
        FEDERATION_KEY,
    )));
    let r = refresher(server.url(), &dir);
    r.refresh_due(t0()).await;
    assert!(r.registry().get(IDP_A).is_some());
    // validUntil is two days away: the schedule refreshes well before it.
    let next = r.records_snapshot()[0].next_attempt;
    assert!(next <= day(1), "next attempt {next:?} too late");
    server.shut_down();
    r.refresh_due(day(1)).await;
    assert!(r.registry().get(IDP_A).is_some(), "still valid on day 1");
    r.refresh_due(day(2)).await;
    assert!(
        r.registry().get(IDP_A).is_none(),
        "expired metadata must not be used"
    );
    assert_eq!(r.records_snapshot()[0].state, SourceState::Expired);
    assert!(r.stats(day(2))[0].seconds_to_valid_until.unwrap() <= 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_every_required_source() {
    let dir = state_dir("ready");
    let server = Server::start(Mode::Status(503));
    let mut optional = source("http://127.0.0.1:9/none.xml".into());
    optional.name = "optional".into();
    optional.required = false;
    let r = Refresher::new(
        vec![source(server.url()), optional],
        Some(&dir),
        Arc::new(Registry::default()),
        true,
        t0(),
    );
    r.refresh_due(t0()).await;
    assert!(!r.registry().is_ready());
    assert_eq!(r.records_snapshot()[0].state, SourceState::Pending);
    server.set(Mode::Serve(good_doc()));
    r.refresh_due(day(1)).await;
    assert!(
        r.registry().is_ready(),
        "the optional source does not hold readiness"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_document_is_withdrawn_before_a_hanging_fetch() {
    let dir = state_dir("expire-first");
    let server = Server::start(Mode::Serve(aggregate(
        &[entity(IDP_A, Key::Rsa2048, "Alfa ID")],
        "2026-01-03T00:00:00Z",
        FEDERATION_KEY,
    )));
    let r = Arc::new(refresher(server.url(), &dir));
    r.refresh_due(t0()).await;
    assert!(r.registry().get(IDP_A).is_some());
    let requests = server.requests.load(Ordering::SeqCst);
    // The next fetch hangs until its timeout (2 s); the document has expired meanwhile.
    server.set(Mode::Hang);
    let pass = tokio::spawn({
        let r = r.clone();
        async move { r.refresh_due(day(2)).await }
    });
    // Wait (bounded) for the fetch to be in flight.
    for _ in 0..500 {
        if server.requests.load(Ordering::SeqCst) > requests {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(server.requests.load(Ordering::SeqCst) > requests);
    assert!(!pass.is_finished(), "the fetch should still be hanging");
    assert!(
        r.registry().get(IDP_A).is_none(),
        "expired metadata served while a fetch hangs"
    );
    assert_eq!(pass.await.unwrap(), 1);
    assert!(r.registry().get(IDP_A).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_wakeup_ignores_a_valid_until_already_passed() {
    let dir = state_dir("wakeup");
    let mut server = Server::start(Mode::Serve(aggregate(
        &[entity(IDP_A, Key::Rsa2048, "Alfa ID")],
        "2026-01-03T00:00:00Z",
        FEDERATION_KEY,
    )));
    let r = refresher(server.url(), &dir);
    r.refresh_due(t0()).await;
    server.shut_down();
    r.refresh_due(day(2)).await;
    assert_eq!(r.records_snapshot()[0].state, SourceState::Expired);
    // The failed attempt at day 2 retries some seconds later; the validUntil (day 2) is
    // past and must not make the refresh loop wake at once, again and again.
    let now = day(2) + Duration::from_secs(1);
    let next = r.next_wakeup(now).unwrap();
    assert!(next > now, "next wakeup {next:?} is not after {now:?}");
    assert_eq!(next, r.records_snapshot()[0].next_attempt);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_ends_a_document_that_publishes_a_far_valid_until() {
    let dir = state_dir("max-age");
    let mut server = Server::start(Mode::Serve(good_doc()));
    let mut s = source(server.url());
    s.max_age = Duration::from_secs(7 * 86_400);
    let r = Refresher::new(
        vec![s.clone()],
        Some(&dir),
        Arc::new(Registry::default()),
        true,
        t0(),
    );
    r.refresh_due(t0()).await;
    assert_eq!(r.records_snapshot()[0].validity.valid_until, Some(day(7)));
    let backing = r.backing_file("registry").unwrap();
    server.shut_down();
    r.refresh_due(day(6)).await;
    assert!(r.registry().get(IDP_A).is_some(), "within the maximum age");
    r.refresh_due(day(7)).await;
    assert!(
        r.registry().get(IDP_A).is_none(),
        "trusted past max_age although validUntil is in 2030"
    );
    assert_eq!(r.records_snapshot()[0].state, SourceState::Expired);

    // A backing file counts its age from when it was written, not from the restart.
    std::fs::File::options()
        .write(true)
        .open(&backing)
        .unwrap()
        .set_modified(day(1))
        .unwrap();
    let fresh = |now| {
        let r = Refresher::new(
            vec![s.clone()],
            Some(&dir),
            Arc::new(Registry::default()),
            false,
            now,
        );
        r.load_backing_files(now);
        r.registry().get(IDP_A).is_some()
    };
    assert!(fresh(day(7)), "written on day 1: good until day 8");
    assert!(!fresh(day(8)), "written on day 1: too old on day 8");
    // A modification time in the future counts as now.
    std::fs::File::options()
        .write(true)
        .open(&backing)
        .unwrap()
        .set_modified(day(100))
        .unwrap();
    assert!(fresh(day(20)));
    let r = Refresher::new(
        vec![s.clone()],
        Some(&dir),
        Arc::new(Registry::default()),
        false,
        day(20),
    );
    r.load_backing_files(day(20));
    assert_eq!(r.records_snapshot()[0].validity.valid_until, Some(day(27)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idp_listed_by_two_sources_is_served_by_neither() {
    let dir = state_dir("duplicates");
    let spid = Server::start(Mode::Serve(good_doc()));
    let mut cie = Server::start(Mode::Serve(aggregate(
        &[entity(IDP_A, Key::P384, "Alfa CIE")],
        FUTURE,
        FEDERATION_KEY,
    )));
    let mut other = source(cie.url());
    other.name = "cie".into();
    other.federation = Federation::Cie;
    let r = Refresher::new(
        vec![source(spid.url()), other],
        Some(&dir),
        Arc::new(Registry::default()),
        true,
        t0(),
    );
    r.refresh_due(t0()).await;
    assert!(
        r.registry().get(IDP_A).is_none(),
        "a contested entityID is refused"
    );
    assert!(r.registry().get(IDP_B).is_some());
    // Both sources still hold it; neither serves it.
    assert!(
        r.records_snapshot()
            .iter()
            .all(|rec| rec.idps.iter().any(|i| i.entity_id() == IDP_A))
    );
    // When the second source stops listing it, the first one's entry is served.
    cie.set(Mode::Serve(aggregate(
        &[entity("https://idp-c.example.org", Key::P384, "Gamma")],
        FUTURE,
        FEDERATION_KEY,
    )));
    r.refresh_due(day(1)).await;
    let a = r.registry().get(IDP_A).unwrap();
    assert_eq!(&*a.source, "registry");
    cie.shut_down();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_status_failure_not_followed() {
    let dir = state_dir("redirect");
    let target = Server::start(Mode::Serve(good_doc()));
    let server = Server::start(Mode::Redirect(target.url()));
    let r = refresher(server.url(), &dir);
    r.refresh_due(t0()).await;
    let record = r.records_snapshot().remove(0);
    assert_eq!(
        record.last_error.as_ref().map(|e| e.reason),
        Some(FailureReason::Status),
        "{record:?}"
    );
    assert!(r.registry().get(IDP_A).is_none());
    assert_eq!(
        target.requests.load(Ordering::SeqCst),
        0,
        "redirect followed"
    );
}

/// A configuration file with one `[[metadata]]` source at `url` pinned to the federation
/// key, loaded through `broker::config::load` as `varco` would.
fn toml_config(dir: &Path, url: &str) -> broker::config::Config {
    const KEYS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../xmldsig/tests/keys");
    std::fs::write(dir.join("session.key"), "ef".repeat(32)).unwrap();
    let toml = format!(
        "[server]\npublic_base_url = \"https://sp.varco.example.org\"\n\
         [sp]\nentity_id = \"https://sp.varco.example.org\"\n\
         key_file = \"{KEYS}/sp-rsa2048.key.pem\"\ncert_file = \"{KEYS}/sp-rsa2048.crt.pem\"\n\
         [sp.organization]\nname = \"Comune di Prova\"\ndisplay_name = \"Prova\"\n\
         url = \"https://www.example.org\"\nipa_code = \"c_h501\"\nemail = \"spid@example.org\"\n\
         [session]\nkey_file = \"session.key\"\n\
         [state]\ndir = \"{}\"\n\
         [[metadata]]\nname = \"registry\"\nfederation = \"spid\"\nurl = \"{url}\"\n\
         signing_cert_file = \"{}\"\ntimeout_seconds = 2\n",
        dir.join("state").display(),
        FEDERATION_KEY.cert_pem().display(),
    );
    std::fs::write(dir.join("varco.toml"), toml).unwrap();
    broker::config::load(
        &dir.join("varco.toml"),
        &broker::config::Overrides::default(),
    )
    .unwrap_or_else(|p| panic!("{p:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toml_source_with_signing_cert_file_refuses_another_signer() {
    let dir = state_dir("toml-pin");
    let server = Server::start(Mode::Serve(aggregate(
        &[entity(IDP_A, Key::Attacker, "Alfa ID")],
        FUTURE,
        Key::Attacker,
    )));
    let config = toml_config(&dir, &server.url());
    let r = Refresher::new(
        config.metadata_sources.clone(),
        config.state_dir.as_deref(),
        Arc::new(Registry::default()),
        false,
        t0(),
    );
    r.refresh_due(t0()).await;
    let record = r.records_snapshot().remove(0);
    assert_eq!(
        record.last_error.as_ref().map(|e| e.reason),
        Some(FailureReason::Signature),
        "{record:?}"
    );
    assert!(r.registry().get(IDP_A).is_none());
    assert!(!r.registry().is_ready());
    // The same source takes the federation's document: the refusal is the pin's doing.
    server.set(Mode::Serve(good_doc()));
    r.refresh_due(day(1)).await;
    assert!(r.registry().get(IDP_A).is_some());
}
