//! Configuration reload in process (`broker::reload`): a valid new file is swapped in whole
//! while the state a request already holds keeps the old configuration; the store, the
//! sealer and the ephemeral token key outlive the swap (a session sealed before opens after,
//! a pending login is still there); an invalid file and restart-only changes are refused with
//! the old state kept; SIGHUP with the same file reloads again (referenced key files are read
//! anew) while the poll finding the contents in force does nothing; the poll sees contents,
//! not mtime.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "fixture/mod.rs"]
mod fixture;

use std::sync::Arc;

use broker::config::Overrides;
use broker::leaf::session::{Purpose, Session};
use broker::routes::acs::consume;
use broker::state::live::{Live, Outcome, Trigger, restart_only};
use fixture::{BROWSER, REQUEST_ID, config_in_fixed_file, fixture_now, ready, signed_body, state};

fn config(extra: &str) -> Arc<broker::config::Config> {
    config_in_fixed_file("", extra)
}

fn config_with(session: &str, extra: &str) -> Arc<broker::config::Config> {
    config_in_fixed_file(session, extra)
}

/// `config_with` writes one file per process: tests here run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const ROUTE: &str = "[[route]]\npath_prefix = \"/tax\"\nmin_loa = \"high\"\naudience = \"tax\"\n";

/// The live state over the fixture's configuration file, as `varco serve` builds it.
fn live(extra: &str) -> (Live, std::path::PathBuf) {
    let config = config(extra);
    let dir = std::env::temp_dir().join(format!("varco-bench-acs-{}", std::process::id()));
    let path = dir.join("varco.toml");
    assert!(!config.source_sha256.is_empty());
    let state = state(&config, fixture_now);
    (Live::new(state, path.clone(), Overrides::default()), path)
}

#[test]
fn a_valid_file_is_swapped_in_and_what_must_survive_survives() {
    let _one = serial();
    let (live, path) = live("");
    let before = live.state();
    assert!(
        before
            .config
            .access
            .route("sp.varco.example.org", "/tax")
            .is_ok()
    );
    assert_eq!(
        before
            .config
            .access
            .route("sp.varco.example.org", "/tax")
            .unwrap()
            .path_prefix,
        "/",
        "the default route covers /tax before the reload"
    );
    let ephemeral_kid = before.config.access.keys.active().unwrap().kid().to_owned();
    // A pending login started before the reload (a copy of the fixture's).
    let pending = ready(before.store.get_pending(REQUEST_ID))
        .unwrap()
        .unwrap();
    ready(
        before
            .store
            .put_pending("_pending-across-reload".into(), (*pending).clone()),
    )
    .unwrap();
    // A session sealed before the reload.
    let (session, _) = ready(consume(&before, signed_body().as_bytes(), Some(BROWSER)))
        .unwrap_or_else(|f| panic!("{}", f.code()));
    let cookie = before.sealer.seal(Purpose::Session, &session).unwrap();

    let _ = config(ROUTE);
    assert!(live.file_changed());
    let outcome = live.reload(Trigger::Signal);
    assert!(matches!(outcome, Outcome::Applied), "{outcome:?}");
    assert!(!live.file_changed(), "the poll has nothing new to see");

    let after = live.state();
    assert!(!Arc::ptr_eq(&before, &after));
    assert_eq!(
        after
            .config
            .access
            .route("sp.varco.example.org", "/tax/f24")
            .unwrap()
            .path_prefix,
        "/tax"
    );
    // A request that loaded the state before the swap finishes with the old configuration.
    assert_eq!(
        before
            .config
            .access
            .route("sp.varco.example.org", "/tax/f24")
            .unwrap()
            .path_prefix,
        "/"
    );
    let opened: Session = after.sealer.open(Purpose::Session, &cookie).unwrap();
    assert_eq!(opened, session);
    assert!(
        ready(after.store.get_pending("_pending-across-reload"))
            .unwrap()
            .is_some()
    );
    assert!(Arc::ptr_eq(&before.store, &after.store));
    assert!(Arc::ptr_eq(&before.metrics, &after.metrics));
    assert_eq!(
        after.config.access.keys.active().unwrap().kid(),
        ephemeral_kid,
        "the key generated at start keeps signing"
    );
    assert_ne!(before.config.source_sha256, after.config.source_sha256);
    let text = after.metrics.render(&after.refresher, fixture_now());
    assert!(text.contains(&format!(
        "varco_config_info{{sha256=\"{}\"}} 1",
        after.config.source_sha256
    )));
    assert!(text.contains("varco_config_reloads_total{outcome=\"applied\",trigger=\"sighup\"} 1"));

    // Once more with the same file: the poll has nothing to do; SIGHUP reloads anyway (a key
    // file the configuration names may have been replaced in place).
    let outcome = live.reload(Trigger::File);
    assert!(matches!(outcome, Outcome::Unchanged), "{outcome:?}");
    assert!(Arc::ptr_eq(&after, &live.state()));
    let outcome = live.reload(Trigger::Signal);
    assert!(matches!(outcome, Outcome::Applied), "{outcome:?}");
    let again = live.state();
    assert!(!Arc::ptr_eq(&after, &again));
    assert_eq!(again.config.source_sha256, after.config.source_sha256);
    let opened: Session = again.sealer.open(Purpose::Session, &cookie).unwrap();
    assert_eq!(opened, session);
    drop(path);
}

#[test]
fn an_invalid_file_keeps_the_state_in_force_and_is_seen_once() {
    let _one = serial();
    let (live, path) = live("");
    let before = live.state();
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        good.replace("[session]", "[session]\nttl_seconds = \"long\""),
    )
    .unwrap();
    assert!(live.file_changed());
    match live.reload(Trigger::File) {
        Outcome::Invalid(problems) => assert!(
            problems
                .iter()
                .any(|p| p.to_string().contains("ttl_seconds")),
            "{problems:?}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(Arc::ptr_eq(&before, &live.state()));
    assert!(!live.file_changed(), "a bad file is reported once");
    // Touching the file (same contents) is no change either.
    std::fs::write(&path, std::fs::read(&path).unwrap()).unwrap();
    assert!(!live.file_changed());
    let text = before.metrics.render(&before.refresher, fixture_now());
    assert!(text.contains("varco_config_reloads_total{outcome=\"invalid\",trigger=\"file\"} 1"));
    assert!(text.contains("varco_config_last_reload_successful 0"));
    // Putting the file in force back clears it: the poll sees a change from the bad contents,
    // and finds the configuration in force.
    let _ = config("");
    assert!(live.file_changed());
    assert!(matches!(live.reload(Trigger::File), Outcome::Unchanged));
    assert!(Arc::ptr_eq(&before, &live.state()));
    let text = before.metrics.render(&before.refresher, fixture_now());
    assert!(
        text.contains("varco_config_last_reload_successful 1"),
        "{text}"
    );
    assert!(text.contains(&format!(
        "varco_config_info{{sha256=\"{}\"}} 1",
        before.config.source_sha256
    )));
}

#[test]
fn restart_only_settings_are_named_and_refused() {
    let _one = serial();
    let base = config("");
    assert!(restart_only(&base, &config(ROUTE)).is_empty());
    assert!(restart_only(&base, &config("[log]\nformat = \"json\"\n")).is_empty());
    let cases = [
        ("", "[log]\nlevel = \"debug\"\n", "log.level"),
        ("", "[log]\nformat = \"text\"\n", "log.format"),
        ("cookie_name = \"other\"", "", "session.cookie_name"),
        ("ttl_seconds = 600", "", "session.ttl_seconds"),
        (
            "",
            "[saml]\nmax_pending_requests = 10\n",
            "saml.max_pending_requests",
        ),
        ("", "[state]\ndir = \"elsewhere\"\n", "state.dir"),
        ("", "[audit]\nenabled = false\n", "audit"),
    ];
    for (session, extra, key) in cases {
        let changed = config_with(session, extra);
        assert_eq!(restart_only(&base, &changed), [key], "{session} {extra}");
    }
    // The session key: another file with other bytes.
    let (live, path) = live("");
    let dir = path.parent().unwrap();
    std::fs::write(dir.join("session2.key"), "ab".repeat(32)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("key_file = \"session.key\"", "key_file = \"session2.key\""),
    )
    .unwrap();
    let before = live.state();
    match live.reload(Trigger::Signal) {
        Outcome::RestartRequired(keys) => assert_eq!(keys, ["session.key_file"]),
        other => panic!("{other:?}"),
    }
    assert!(Arc::ptr_eq(&before, &live.state()));
}
