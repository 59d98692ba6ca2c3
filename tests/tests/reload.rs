//! Configuration reload against the built binaries: SIGHUP with a changed configuration (a
//! new protected route, another header mapping, another trusted proxy) takes effect while a
//! session opened before it keeps working and a login started before it completes; an
//! invalid file or a restart-only change is refused with the old configuration kept, a log
//! line saying why and `varco_config_reloads_total` counting it; editing the file without a
//! signal reloads it too (the poll). Also the structured log: every line is JSON, each request
//! has one line with its id, and that id is the reference on the error page and in
//! `X-Request-Id` (believed from trusted proxies only, and passed to proxied upstreams).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use e2e::Browser;
use e2e::stack::{Stack, idp_answer_from, post_to_acs};

const V1: &str = "\
[forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"127.0.0.1\"]\n\
[[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\naudience = \"portal\"\n";

/// V1 plus a route needing level 3 and a header table replacing the default headers.
const V2: &str = "\
[forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\nallowed_hosts = [\"127.0.0.1\"]\n\
[forward_auth.headers]\nX-User = \"sub\"\nX-Level = \"loa\"\n\
[[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\naudience = \"portal\"\n\
[[route]]\npath_prefix = \"/tax\"\nmin_loa = \"high\"\naudience = \"tax-office\"\n";

/// Replaces the `extra` part of the stack's configuration file (written last by the stack).
fn rewrite(stack: &Stack, old: &str, new: &str) {
    let path = stack.dir.join("varco.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(old), "{text}");
    // Write-then-rename, as editors and ConfigMap updates do: no reader sees half a file.
    let tmp = stack.dir.join("varco.toml.new");
    std::fs::write(&tmp, text.replace(old, new)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// Varco's log lines, each parsed as JSON (a line that is not JSON fails the test).
fn log_lines(stack: &Stack) -> Vec<serde_json::Value> {
    stack
        .varco_log()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
        })
        .collect()
}

fn events(stack: &Stack, name: &str) -> Vec<serde_json::Value> {
    log_lines(stack)
        .into_iter()
        .filter(|e| e["event"] == name)
        .collect()
}

/// Waits until Varco has logged `count` events named `name`; they, or a panic with the log.
fn wait_events(stack: &Stack, name: &str, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = events(stack, name);
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no {name} event in the log:\n{}",
            stack.varco_log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One sample of `/metrics` (the first line starting with `series`), as a number.
fn metric(stack: &Stack, series: &str) -> Option<f64> {
    let body = Browser::default()
        .get(&format!("{}/metrics", stack.management))
        .body;
    body.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
}

fn sha256_of(path: &std::path::Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// `/auth` as nginx calls it for `uri` on the portal.
fn auth(stack: &Stack, b: &mut Browser, uri: &str) -> e2e::Reply {
    b.get_with(
        &format!("{}/auth", stack.varco),
        &[
            ("X-Original-URI", uri),
            ("X-Forwarded-Host", "127.0.0.1"),
            ("X-Forwarded-Proto", "http"),
        ],
    )
}

fn login(stack: &Stack, b: &mut Browser) {
    let answer = idp_answer_from(
        b,
        &stack.login_url(2, "/"),
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let acs = post_to_acs(b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
}

/// Turns the file poll off (a reload itself, by SIGHUP), so that the SIGHUP tests that follow
/// cannot race the poll for the next edit. Returns once it is applied.
fn poll_off(stack: &mut Stack) {
    rewrite(stack, "[server]\n", "[server]\nconfig_poll_seconds = 0\n");
    stack.varco_process().hangup();
    wait_events(stack, "config_reloaded", 1);
}

fn reloads(stack: &Stack, trigger: &str, outcome: &str) -> f64 {
    metric(
        stack,
        &format!("varco_config_reloads_total{{outcome=\"{outcome}\",trigger=\"{trigger}\"}}"),
    )
    .unwrap_or_else(|| panic!("no reload counter for {trigger}/{outcome}"))
}

#[test]
fn sighup_applies_new_routes_and_headers_and_keeps_sessions_and_pending_logins() {
    let mut stack = Stack::start_with(V1);
    let mut b = Browser::default();
    login(&stack, &mut b);
    poll_off(&mut stack);
    let before = auth(&stack, &mut b, "/account");
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(before.header("x-varco-sub"), Some("TINIT-RSSMRA80A01H501U"));
    // Under V1, `/tax` is covered by `/` (level 2): the session passes.
    assert_eq!(auth(&stack, &mut b, "/tax/f24").status, 200);
    let first_hash = sha256_of(&stack.dir.join("varco.toml"));
    assert_eq!(
        metric(
            &stack,
            &format!("varco_config_info{{sha256=\"{first_hash}\"}}")
        ),
        Some(1.0)
    );

    // A second person is at the IdP when the reload happens.
    let mut pending = Browser::default();
    let answer = idp_answer_from(
        &mut pending,
        &stack.login_url(2, "/"),
        &[("user", "mario.rossi"), ("level", "2")],
    );

    let applied_before = reloads(&stack, "sighup", "applied");
    rewrite(&stack, V1, V2);
    stack.varco_process().hangup();
    let applied = wait_events(&stack, "config_reloaded", 2);
    let new_hash = sha256_of(&stack.dir.join("varco.toml"));
    assert_eq!(applied[1]["sha256"], new_hash.as_str(), "{applied:?}");
    assert_eq!(applied[1]["trigger"], "sighup");

    // The session sealed before the reload still opens; the headers are the new table's.
    let after = auth(&stack, &mut b, "/account");
    assert_eq!(after.status, 200, "{}", after.body);
    assert_eq!(after.header("x-user"), Some("TINIT-RSSMRA80A01H501U"));
    assert_eq!(after.header("x-level"), Some("substantial"));
    assert_eq!(after.header("x-varco-sub"), None, "the old header table");
    // The new route needs level 3: a step-up for the level-2 session.
    let tax = auth(&stack, &mut b, "/tax/f24");
    assert_eq!(tax.status, 401, "{}", tax.body);
    assert!(tax.header("x-varco-login").unwrap().contains("level=3"));

    // The login started before the reload completes after it.
    let acs = post_to_acs(&mut pending, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    assert_eq!(stack.whoami(&mut pending).status, 200);

    assert_eq!(reloads(&stack, "sighup", "applied"), applied_before + 1.0);
    assert_eq!(
        metric(
            &stack,
            &format!("varco_config_info{{sha256=\"{new_hash}\"}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &stack,
            &format!("varco_config_info{{sha256=\"{first_hash}\"}}")
        ),
        None,
        "the old hash is no longer reported"
    );

    // SIGHUP with the same file reloads it again (files it names are read anew); sessions
    // still open.
    stack.varco_process().hangup();
    let again = wait_events(&stack, "config_reloaded", 3);
    assert_eq!(again[2]["sha256"], new_hash.as_str());
    assert_eq!(reloads(&stack, "sighup", "applied"), applied_before + 2.0);
    assert_eq!(auth(&stack, &mut b, "/account").status, 200);
}

#[test]
fn an_invalid_file_is_refused_on_sighup_and_the_old_configuration_stays() {
    let mut stack = Stack::start_with(V1);
    let mut b = Browser::default();
    login(&stack, &mut b);
    poll_off(&mut stack);
    let hash = sha256_of(&stack.dir.join("varco.toml"));
    let applied_before = reloads(&stack, "sighup", "applied");

    let broken = V2.replace("min_loa = \"high\"", "min_loa = \"very-high\"");
    rewrite(&stack, V1, &broken);
    stack.varco_process().hangup();
    let failed = wait_events(&stack, "config_reload_failed", 1);
    let line = &failed[0];
    assert_eq!(line["outcome"], "invalid", "{line}");
    assert_eq!(line["kept_sha256"], hash.as_str(), "{line}");
    let error = line["error"].as_str().unwrap();
    assert!(
        error.contains("min_loa") && error.contains("very-high"),
        "{error}"
    );
    assert_eq!(line["level"], "WARN");
    assert_eq!(reloads(&stack, "sighup", "invalid"), 1.0);
    assert_eq!(reloads(&stack, "file", "invalid"), 0.0);
    assert_eq!(
        metric(&stack, "varco_config_last_reload_successful"),
        Some(0.0)
    );
    assert_eq!(reloads(&stack, "sighup", "applied"), applied_before);
    assert_eq!(
        metric(&stack, &format!("varco_config_info{{sha256=\"{hash}\"}}")),
        Some(1.0)
    );
    // V1 is still in force: default headers, no level-3 route.
    let r = auth(&stack, &mut b, "/tax/f24");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-varco-sub"), Some("TINIT-RSSMRA80A01H501U"));
    assert_eq!(
        events(&stack, "config_reloaded").len(),
        1,
        "the poll_off reload only"
    );
    // `varco check-config` says the same about the file.
    let out = Command::new(e2e::binary("varco"))
        .arg("check-config")
        .arg(stack.dir.join("varco.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("very-high"));
    // The new keys are validated like the others.
    rewrite(
        &stack,
        &broken,
        "[log]\nformat = \"xml\"\nlevel = \"loud\"\n",
    );
    let out = Command::new(e2e::binary("varco"))
        .arg("check-config")
        .arg(stack.dir.join("varco.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("log.format") && stderr.contains("log.level"),
        "{stderr}"
    );
}

#[test]
fn a_restart_only_change_is_refused_naming_the_setting() {
    let mut stack = Stack::start_with(V1);
    let mut b = Browser::default();
    login(&stack, &mut b);
    poll_off(&mut stack);

    // A new cookie name would orphan every session; a new listen address needs a new socket.
    let path = stack.dir.join("varco.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let port = e2e::free_port();
    let changed =
        text.replace(
            "[session]\n",
            "[session]\ncookie_name = \"other_session\"\n",
        )
        .replacen(
            &stack.varco.replace("http://", "listen = \""),
            &format!("listen = \"127.0.0.1:{port}"),
            1,
        ) + "[[route]]\npath_prefix = \"/tax\"\nmin_loa = \"high\"\naudience = \"tax\"\n";
    assert_ne!(changed, text);
    std::fs::write(&path, changed).unwrap();
    stack.varco_process().hangup();
    let refused = wait_events(&stack, "config_reload_refused", 1);
    let error = refused[0]["error"].as_str().unwrap();
    assert!(
        error.contains("session.cookie_name") && error.contains("server.listen"),
        "{error}"
    );
    assert_eq!(refused[0]["outcome"], "restart_required");
    assert_eq!(reloads(&stack, "sighup", "restart_required"), 1.0);
    // Nothing of the file applied, the reloadable part included.
    assert_eq!(auth(&stack, &mut b, "/tax/f24").status, 200);
    assert_eq!(stack.whoami(&mut b).status, 200);
}

#[test]
fn editing_the_file_reloads_it_without_a_signal() {
    let stack = Stack::start_with(V1);
    let mut b = Browser::default();
    login(&stack, &mut b);

    rewrite(&stack, V1, V2);
    let applied = wait_events(&stack, "config_reloaded", 1);
    assert_eq!(applied[0]["trigger"], "file", "{applied:?}");
    let r = auth(&stack, &mut b, "/account");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-user"), Some("TINIT-RSSMRA80A01H501U"));
    assert_eq!(auth(&stack, &mut b, "/tax/f24").status, 401);
    assert_eq!(reloads(&stack, "file", "applied"), 1.0);

    // A bad edit is reported once, not at every poll, and changes nothing.
    rewrite(&stack, "min_loa = \"high\"", "min_loa = 3");
    let failed = wait_events(&stack, "config_reload_failed", 1);
    assert_eq!(failed[0]["trigger"], "file");
    // Two more polls (5 s each by default) see the same bad contents.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(events(&stack, "config_reload_failed").len(), 1);
    assert_eq!(reloads(&stack, "file", "invalid"), 1.0);
    assert_eq!(auth(&stack, &mut b, "/tax/f24").status, 401);
}

#[test]
fn log_lines_are_json_and_the_error_page_reference_is_the_request_id() {
    // 127.0.0.1 is not a trusted proxy here: its X-Request-Id is not believed.
    let untrusted = "[forward_auth]\ntrusted_proxies = [\"192.0.2.1\"]\n";
    let mut stack = Stack::start_with(untrusted);
    let mut b = Browser::default();
    let acs_url = format!("{}/saml/acs", stack.varco);
    let refused = b.post_form(
        &acs_url,
        &[("SAMLResponse", "bm90IHNhbWw="), ("RelayState", "x")],
    );
    assert_eq!(refused.status, 400, "{}", refused.body);
    let id = refused.header("x-request-id").unwrap().to_owned();
    assert_eq!(id.len(), 16, "{id}");
    assert!(
        refused
            .body
            .contains(&format!("riferimento <code>{id}</code>")),
        "{}",
        refused.body
    );

    let lines = log_lines(&stack);
    let request = lines
        .iter()
        .find(|l| l["event"] == "request" && l["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no request line for {id}:\n{}", stack.varco_log()));
    assert_eq!(request["method"], "POST");
    assert_eq!(request["route"], "saml_acs");
    assert_eq!(request["status"], 400);
    assert!(request["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(request["timestamp"].is_string() && request["level"] == "INFO");
    let login_refused = lines
        .iter()
        .find(|l| l["event"] == "login_refused")
        .unwrap();
    assert_eq!(login_refused["span"]["request_id"], id.as_str());
    assert_eq!(login_refused["correlation"], id.as_str());
    assert!(
        login_refused["code"]
            .as_str()
            .unwrap()
            .starts_with("broker_"),
        "{login_refused}"
    );
    // The SAMLResponse never reaches the log.
    assert!(!stack.varco_log().contains("bm90IHNhbWw"));

    // A client that is not a trusted proxy cannot choose its id.
    let r = b.get_with(
        &format!("{}/healthz", stack.varco),
        &[("X-Request-Id", "chosen-by-client")],
    );
    assert_ne!(r.header("x-request-id"), Some("chosen-by-client"));

    // Once 127.0.0.1 is trusted (a reload), its id is used, on the page and in the log.
    rewrite(
        &stack,
        untrusted,
        "[forward_auth]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    );
    stack.varco_process().hangup();
    wait_events(&stack, "config_reloaded", 1);
    let r = b.get_with(
        &format!("{}/healthz", stack.varco),
        &[("X-Request-Id", "edge-42.a_b")],
    );
    assert_eq!(r.header("x-request-id"), Some("edge-42.a_b"));
    // A malformed one is replaced.
    let r = b.get_with(
        &format!("{}/healthz", stack.varco),
        &[("X-Request-Id", "bad id\"<x>")],
    );
    let given = r.header("x-request-id").unwrap();
    assert_eq!(given.len(), 16, "{given}");
    assert!(
        log_lines(&stack)
            .iter()
            .any(|l| l["event"] == "request" && l["request_id"] == "edge-42.a_b")
    );
}

/// An upstream that answers every request with its head as the body.
fn echo_upstream() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                head.len()
            );
        }
    });
    port
}

#[test]
fn a_proxied_request_carries_its_id_to_the_upstream() {
    let portal = echo_upstream();
    let stack = Stack::start_with(&format!(
        "[[route]]\npath_prefix = \"/\"\nupstream = \"http://127.0.0.1:{portal}\"\n"
    ));
    let mut b = Browser::default();
    login(&stack, &mut b);
    let r = b.get_with(
        &format!("{}/pratiche", stack.varco),
        &[("X-Request-Id", "from-the-edge")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let head = r.body.to_ascii_lowercase();
    // 127.0.0.1 is a trusted proxy by default: its id is kept, end to end.
    assert!(head.contains("x-request-id: from-the-edge"), "{head}");
    assert_eq!(r.header("x-request-id"), Some("from-the-edge"));
    let line = log_lines(&stack)
        .into_iter()
        .find(|l| l["event"] == "request" && l["request_id"] == "from-the-edge")
        .unwrap();
    assert_eq!(line["route"], "proxy");
    assert_eq!(line["status"], 200);
}
