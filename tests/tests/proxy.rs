//! Reverse-proxy mode over HTTP against the built binary: Varco itself serves a portal
//! route (`[[route]] upstream`). Anonymous → login page; after login the upstream sees
//! Varco's identity headers and token and none of the client's own; bodies stream both
//! ways (larger than any buffer); a WebSocket upgrade is tunnelled (other upgrades are not);
//! an unreachable upstream is a 502 page and a slow one a 504 page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use e2e::stack::{Stack, idp_answer_from, post_to_acs};
use e2e::{Browser, free_port, header_values};

/// The portal: echoes the request head; `/size` answers the body's length; `/big` sends
/// 4 MiB; `/slow` waits 3 s; an `Upgrade: websocket` request is switched and echoed raw
/// (the handshake's key is not checked: the tunnel, not WebSocket framing, is under test).
fn start_portal() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    port
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let lower = head.to_ascii_lowercase();
        let length: usize = lower
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        let chunked = lower.contains("transfer-encoding: chunked");
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).unwrap();
        let mut received = body.len();
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0u8; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                received += n;
            }
        }
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        if lower.contains("upgrade: websocket") {
            out.write_all(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            )
            .unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let _ = out.write_all(&buf[..n]);
                    }
                }
            }
        }
        let reply = match path.as_str() {
            "/slow" => {
                std::thread::sleep(Duration::from_secs(3));
                b"late".to_vec()
            }
            "/size" => received.to_string().into_bytes(),
            "/big" => vec![b'x'; 4 << 20],
            _ => head.into_bytes(),
        };
        let _ = write!(
            out,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        let _ = out.write_all(&reply);
    }
}

fn stack() -> Stack {
    let portal = start_portal();
    let closed = free_port();
    Stack::start_with(&format!(
        "[proxy]\nresponse_timeout_seconds = 1\ntunnel_check_seconds = 1\n\
         [forward_auth]\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
         [[route]]\npath_prefix = \"/\"\nupstream = \"http://127.0.0.1:{portal}\"\n\
         [[route]]\npath_prefix = \"/down\"\nupstream = \"http://127.0.0.1:{closed}\"\n"
    ))
}

fn logged_in(stack: &Stack) -> Browser {
    let mut b = Browser::default();
    let answer = idp_answer_from(
        &mut b,
        &stack.login_url(2, "/pratiche"),
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    b
}

#[test]
fn proxied_portal_gets_varco_identity_only() {
    let stack = stack();
    let mut anon = Browser::default();
    let r = anon.get(&format!("{}/pratiche?n=1", stack.varco));
    assert_eq!(r.status, 302, "{r:?}");
    let login = r.header("location").unwrap();
    assert!(
        login.starts_with(&format!("{}/login?level=2&return_to=", stack.varco)),
        "{login}"
    );

    let mut b = logged_in(&stack);
    let r = b.get_with(
        &format!("{}/pratiche?n=1", stack.varco),
        &[
            ("X-Varco-Sub", "TINIT-FORGED00A00A000A"),
            ("X-Varco-Custom", "forged"),
            ("Authorization", "Bearer forged"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = &r.body;
    assert!(echo.starts_with("GET /pratiche?n=1 HTTP/1.1"), "{echo}");
    assert_eq!(
        header_values(echo, "x-varco-sub"),
        ["TINIT-RSSMRA80A01H501U"],
        "{echo}"
    );
    assert!(header_values(echo, "x-varco-custom").is_empty(), "{echo}");
    let auth = header_values(echo, "authorization");
    assert!(
        auth.len() == 1 && auth[0].starts_with("Bearer ey"),
        "{echo}"
    );
    assert_eq!(
        header_values(echo, "x-forwarded-for"),
        ["127.0.0.1"],
        "{echo}"
    );
}

#[test]
fn bodies_stream_both_ways() {
    let stack = stack();
    let b = logged_in(&stack);
    // 6 MiB up (above the ACS's 512 KiB cap, which does not apply to proxied routes).
    let cookie = format!("varco_session={}", b.cookies["varco_session"]);
    let agent = ureq::Agent::new_with_defaults();
    let up = vec![b'a'; 6 << 20];
    let mut r = agent
        .post(&format!("{}/size", stack.varco))
        .header("Cookie", &cookie)
        .send(&up[..])
        .unwrap();
    assert_eq!(
        r.body_mut().read_to_string().unwrap(),
        (6 << 20).to_string()
    );
    let mut r = agent
        .get(&format!("{}/big", stack.varco))
        .header("Cookie", &cookie)
        .call()
        .unwrap();
    let big = r
        .body_mut()
        .with_config()
        .limit(8 << 20)
        .read_to_vec()
        .unwrap();
    assert_eq!(big.len(), 4 << 20);
}

#[test]
fn upgrades_are_tunnelled() {
    let stack = stack();
    let b = logged_in(&stack);
    let addr = stack.varco.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: varco_session={}\r\n\r\n",
        b.cookies["varco_session"]
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    for msg in ["ciao", "hello, tunnel"] {
        s.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        reader.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    // Without a session the upgrade is refused before reaching the portal.
    let mut anon = TcpStream::connect(addr).unwrap();
    write!(
        anon,
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    )
    .unwrap();
    let mut status = String::new();
    BufReader::new(anon).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 302"), "{status}");
}

#[test]
fn unreachable_and_slow_upstreams_get_plain_pages() {
    let stack = stack();
    let mut b = logged_in(&stack);
    let r = b.get(&format!("{}/down/x", stack.varco));
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body.contains("Servizio non raggiungibile") && r.body.contains("Service unreachable")
    );
    let r = b.get(&format!("{}/slow", stack.varco));
    assert_eq!(r.status, 504, "{}", r.body);
    assert!(r.body.contains("Service too slow"), "{}", r.body);
    // Varco's own paths are never proxied.
    assert_eq!(b.get(&format!("{}/healthz", stack.varco)).body, "ok\n");
}

#[test]
fn client_spellings_cookies_and_addresses_do_not_reach_the_upstream() {
    let stack = stack();
    let mut b = logged_in(&stack);
    let r = b.get_with(
        &format!("{}/pratiche", stack.varco),
        &[
            ("X_Varco_Email", "forged@example.org"),
            ("x-varco_given_name", "Forged"),
            ("X-Forwarded-For", "203.0.113.9"),
            ("Forwarded", "for=203.0.113.9"),
            ("X-Real-IP", "203.0.113.9"),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.body.to_ascii_lowercase();
    assert!(!echo.contains("forged"), "{echo}");
    assert!(!echo.contains("203.0.113.9"), "{echo}");
    assert_eq!(
        header_values(&echo, "x-forwarded-for"),
        ["127.0.0.1"],
        "{echo}"
    );
    // Varco's session cookie stays with Varco; the portal's own cookies pass.
    // (A fresh browser: the jar would add the session cookie a second time.)
    let r = Browser::default().get_with(
        &format!("{}/pratiche", stack.varco),
        &[(
            "Cookie",
            &format!(
                "portal_pref=it; varco_session={}",
                b.cookies["varco_session"]
            ),
        )],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let cookies = header_values(&r.body, "cookie");
    assert_eq!(cookies, ["portal_pref=it"], "{}", r.body);
}

#[test]
fn non_canonical_paths_and_other_upgrades_are_refused() {
    let stack = stack();
    let mut b = logged_in(&stack);
    for path in [
        "/public/../pratiche",
        "/%70ratiche",
        "//pratiche",
        "/pratiche;jsessionid=1",
    ] {
        let r = b.get(&format!("{}{path}", stack.varco));
        assert_eq!(r.status, 400, "{path}: {}", r.body);
    }
    // `Upgrade: echo` is not WebSocket: never tunnelled (an h2c upgrade would escape every
    // later check); the request reaches the portal as a plain request.
    let addr = stack.varco.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: h2c\r\nConnection: Upgrade\r\nCookie: varco_session={}\r\n\r\n",
        b.cookies["varco_session"]
    )
    .unwrap();
    let mut status = String::new();
    BufReader::new(s).read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_zero() {
    let portal = start_portal();
    // The default drain bound (20 s) is far above the portal's 3 s.
    let mut stack = Stack::start_with(&format!(
        "[proxy]\nresponse_timeout_seconds = 10\n\
         [[route]]\npath_prefix = \"/\"\nupstream = \"http://127.0.0.1:{portal}\"\n"
    ));
    let b = logged_in(&stack);
    let url = format!("{}/slow", stack.varco);
    let cookie = format!("varco_session={}", b.cookies["varco_session"]);
    // A request that takes 3 s at the portal is in flight when SIGTERM arrives.
    let in_flight = std::thread::spawn(move || {
        let mut r = ureq::Agent::new_with_defaults()
            .get(&url)
            .header("Cookie", &cookie)
            .call()
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    });
    std::thread::sleep(Duration::from_millis(700));
    let varco = stack.varco.clone();
    let p = stack.varco_process();
    p.terminate();
    // New connections are refused at once, while the old request completes.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        TcpStream::connect(varco.strip_prefix("http://").unwrap()).is_err(),
        "still accepting after SIGTERM"
    );
    let (status, body) = in_flight.join().unwrap();
    assert_eq!((status, body.as_str()), (200, "late"));
    let exit = p
        .wait_exit(Duration::from_secs(10))
        .expect("varco did not exit");
    assert!(exit.success(), "{exit}");
    assert!(p.log().contains("\"event\":\"draining\""), "{}", p.log());
}

#[test]
fn issue18_other_spellings_of_a_protected_path_get_its_route_in_proxy_mode() {
    let portal = start_portal();
    let stack = Stack::start_with(&format!(
        "[[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\nupstream = \"http://127.0.0.1:{portal}\"\n\
         [[route]]\npath_prefix = \"/riservato\"\nmin_loa = \"high\"\nupstream = \"http://127.0.0.1:{portal}\"\n"
    ));
    let mut b = logged_in(&stack);
    let ok = b.get(&format!("{}/pratiche", stack.varco));
    assert_eq!(ok.status, 200, "{ok:?}");
    for spelling in [
        "/Riservato",
        "/RISERVATO/doc",
        "/riservato.json",
        "/riservato%20",
        "/riservato.",
    ] {
        let r = b.get(&format!("{}{spelling}", stack.varco));
        assert_eq!(r.status, 302, "{spelling}: {r:?}");
        let location = r.header("location").unwrap();
        assert!(location.contains("level=3"), "{spelling}: {location}");
        assert!(
            !r.body.contains("GET "),
            "the portal was not reached: {spelling}"
        );
    }
}

#[test]
fn issue18_rewrite_headers_do_not_reach_the_upstream() {
    // Each of these makes some upstream serve or trust another request than the one Varco
    // checked (IIS/Symfony read X-Original-URL as the path). The portal echoes what it got.
    let stack = stack();
    let mut b = logged_in(&stack);
    let sent = [
        ("X-Original-URL", "/riservato-a"),
        ("X-Rewrite-URL", "/riservato-b"),
        ("X-Forwarded-Uri", "/riservato-c"),
        ("X-Original-URI", "/riservato-d"),
        ("X-Forwarded-Server", "riservato-e.example"),
        ("X-Client-Cert", "riservato-f"),
        ("X_Original_URL", "/riservato-g"),
        ("X-HTTP-Method-Override", "riservato-h"),
        ("X-Forwarded-Client-Cert", "riservato-i"),
        ("X-SSL-Client-Verify", "riservato-j"),
    ];
    for (name, value) in sent {
        let r = b.get_with(&format!("{}/pratiche", stack.varco), &[(name, value)]);
        assert_eq!(r.status, 200, "{name}: {}", r.body);
        assert!(r.body.starts_with("GET /pratiche "), "{}", r.body);
        assert!(
            !r.body.contains(value),
            "{name} reached the upstream: {}",
            r.body
        );
    }
}

/// Opens a WebSocket tunnel through Varco with `cookie` and checks one echo through it.
fn open_tunnel(stack: &Stack, cookie: &str) -> (TcpStream, BufReader<TcpStream>) {
    let addr = stack.varco.strip_prefix("http://").unwrap();
    let mut s = TcpStream::connect(addr).unwrap();
    // A deadline for the whole test, not a measurement: the tunnel must close well before.
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /chat HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nCookie: varco_session={cookie}\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    s.write_all(b"ciao").unwrap();
    let mut back = [0u8; 4];
    reader.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ciao");
    (s, reader)
}

/// Whether Varco closed the tunnel: the read ends (EOF or reset) instead of timing out.
fn closed_by_varco(reader: &mut BufReader<TcpStream>) -> bool {
    let mut buf = [0u8; 16];
    match reader.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn issue18_a_tunnel_closes_at_logout() {
    let stack = stack();
    let mut b = logged_in(&stack);
    let (_s, mut reader) = open_tunnel(&stack, &b.cookies["varco_session"].clone());
    let mut other_tab = logged_in(&stack);
    let (_s2, mut untouched) = open_tunnel(&stack, &other_tab.cookies["varco_session"].clone());
    // Both open before the logout (the second login did not end the first session).
    let mut s1 = reader.get_ref().try_clone().unwrap();
    s1.write_all(b"prima").unwrap();
    let mut back = [0u8; 5];
    reader.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"prima");
    let hops = e2e::stack::follow(&mut b, &format!("{}/logout", stack.varco));
    assert_eq!(hops.last().unwrap().status, 200, "{hops:?}");
    assert!(
        closed_by_varco(&mut reader),
        "the tunnel outlived the logout"
    );
    let log = stack.varco_log();
    assert!(
        log.lines()
            .any(|l| l.contains("\"tunnel_closed\"") && l.contains("\"revoked\"")),
        "{log}"
    );
    // Another session's tunnel stays open and working.
    let (mut s2, _) = (untouched.get_ref().try_clone().unwrap(), ());
    s2.write_all(b"ancora").unwrap();
    let mut back = [0u8; 6];
    untouched.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"ancora");
    let _ = other_tab.get(&format!("{}/pratiche", stack.varco));
}
