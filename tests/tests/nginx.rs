//! Varco behind the real nginx (Debian package, started here on loopback) with
//! `auth_request`, using the snippets shipped in deploy/nginx/: an anonymous request to the
//! portal is sent to the login page; after a login through the demo IdP (every hop through
//! nginx) the portal receives Varco's identity headers and token; identity headers a client
//! sends itself never reach the portal; a step-up route sends a level-2 session to a level-3
//! login.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use e2e::stack::{Stack, idp_answer_from, post_to_acs};
use e2e::{Browser, Process, free_port, header_values};

/// The portal: answers every request with the request head it received, so the test sees
/// exactly which headers nginx passed on.
fn start_portal() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let body = String::from_utf8_lossy(&head).into_owned();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// nginx on `port` with the deploy/nginx snippets: Varco's endpoints, and `/` protected.
fn start_nginx(port: u16, varco_port: u16, portal_port: u16) -> Process {
    let deploy = e2e::nginx::deploy_dir();
    let mut p = e2e::nginx::start(
        "nginx",
        &format!(
            "  upstream varco {{ server 127.0.0.1:{varco_port}; keepalive 8; }}\n\
               upstream portal {{ server 127.0.0.1:{portal_port}; }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    server_name 127.0.0.1;\n\
                 include {deploy}/varco-endpoints.conf;\n\
                 location /public/ {{ proxy_pass http://portal; }}\n\
                 location / {{\n      include {deploy}/varco-protect.conf;\n      proxy_pass http://portal;\n    }}\n\
               }}",
            deploy = deploy.display(),
        ),
    );
    p.wait_ready(&format!("http://127.0.0.1:{port}/public/ping"));
    p
}

struct Site {
    stack: Stack,
    base: String,
    _nginx: Process,
}

fn site() -> Site {
    site_with(&|_| String::new())
}

/// [`site`] with extra configuration (made from nginx's port) before the routes.
fn site_with(extra: &dyn Fn(u16) -> String) -> Site {
    let nport = free_port();
    let extra = extra(nport);
    let base = format!("http://127.0.0.1:{nport}");
    let portal = start_portal();
    let stack = Stack::start_public(
        Some(&base),
        &format!(
            "{extra}[[route]]\npath_prefix = \"/\"\nmin_loa = \"substantial\"\n\
             [[route]]\npath_prefix = \"/riservato\"\nmin_loa = \"high\"\n"
        ),
    );
    let vport: u16 = stack.varco.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = start_nginx(nport, vport, portal);
    Site {
        stack,
        base,
        _nginx: nginx,
    }
}

#[test]
fn anonymous_to_login_then_the_portal_gets_the_identity() {
    let site = site();
    let mut b = Browser::default();
    let forged = [
        ("X-Varco-Sub", "TINIT-FORGED00A00A000A"),
        ("X-Varco-Loa", "high"),
        // A forged `act` (issue 24): the snippet sets every acting header from Varco's answer.
        ("X-Varco-Act-Sub", "TINIT-FORGED00A00A000A"),
        ("X-Varco-Representation-Ref", "forged"),
    ];

    // Anonymous, even with forged identity headers: to the login page, not the portal.
    let r = b.get_with(&format!("{}/pratiche/123?x=1", site.base), &forged);
    assert_eq!(r.status, 302, "{r:?}");
    let login = r.header("location").unwrap().to_owned();
    assert_eq!(
        login,
        format!(
            "{}/login?level=2&return_to={}",
            site.base,
            e2e::stack::pct(&format!("{}/pratiche/123?x=1", site.base))
        )
    );

    // The login page (through nginx) links every IdP with the level and the return URL.
    let page = b.get(&login);
    assert_eq!(page.status, 200, "{}", page.body);
    let spid_link = format!(
        "/saml/login?idp={}",
        e2e::stack::pct(&site.stack.idp).replace("%2E", ".")
    );
    let href_start = page
        .body
        .find(&spid_link)
        .unwrap_or_else(|| panic!("{}", page.body));
    let href = &page.body[href_start..];
    let href = href[..href.find('"').unwrap()].replace("&amp;", "&");
    assert!(href.contains("level=2"), "{href}");

    // The login itself, every hop through nginx: /saml/login → IdP → POST /saml/acs.
    let answer = idp_answer_from(
        &mut b,
        &format!("{}{href}", site.base),
        &[("user", "mario.rossi"), ("level", "2")],
    );
    assert!(
        e2e::form_action(&answer.body)
            .unwrap()
            .starts_with(&site.base),
        "the IdP posts to the public ACS"
    );
    let acs = post_to_acs(&mut b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
    let back = acs.header("location").unwrap().to_owned();
    assert_eq!(back, format!("{}/pratiche/123?x=1", site.base));

    // Back on the portal: nginx passes Varco's identity, not the client's.
    let page = b.get_with(&back, &forged);
    assert_eq!(page.status, 200, "{}", page.body);
    let echo = &page.body;
    assert!(echo.starts_with("GET /pratiche/123?x=1 "), "{echo}");
    assert_eq!(
        header_values(echo, "X-Varco-Sub"),
        ["TINIT-RSSMRA80A01H501U"],
        "{echo}"
    );
    assert_eq!(
        header_values(echo, "X-Varco-Loa"),
        ["substantial"],
        "{echo}"
    );
    assert_eq!(header_values(echo, "X-Varco-Method"), ["spid"], "{echo}");
    assert!(header_values(echo, "X-Varco-Act-Sub").is_empty(), "{echo}");
    assert!(
        header_values(echo, "X-Varco-Representation-Ref").is_empty(),
        "{echo}"
    );
    assert_eq!(
        header_values(echo, "X-Varco-Given-Name"),
        ["Mario"],
        "{echo}"
    );
    let auth = header_values(echo, "Authorization");
    assert!(
        auth.len() == 1 && auth[0].starts_with("Bearer ey"),
        "{echo}"
    );
    // Claims Varco is not configured to send are absent even when the client sent them.
    let page = b.get_with(&back, &[("X-Varco-Email", "forged@example.org")]);
    assert!(
        header_values(&page.body, "X-Varco-Email").is_empty(),
        "{}",
        page.body
    );

    // A step-up area: the level-2 session is sent to a level-3 login at the same IdP.
    let r = b.get(&format!("{}/riservato/doc", site.base));
    assert_eq!(r.status, 302, "{r:?}");
    let step_up = r.header("location").unwrap();
    assert!(
        step_up.starts_with(&format!("{}/saml/login?idp=", site.base))
            && step_up.contains("level=3"),
        "{step_up}"
    );

    // Logout through nginx reaches Varco (not the portal) and ends the session there.
    // Varco sends a LogoutRequest to the demo IdP, whose answer comes back through nginx.
    let hops = e2e::stack::follow(&mut b, &format!("{}/logout", site.base));
    let out = hops.last().unwrap();
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(out.body.contains("Signed out"), "{}", out.body);
    assert!(
        hops.iter().any(|h| h
            .header("location")
            .is_some_and(|l| l.starts_with(&format!("{}/saml/slo?SAMLResponse=", site.base)))),
        "{hops:?}"
    );
    let r = b.get(&format!("{}/pratiche/123", site.base));
    assert_eq!(r.status, 302, "{r:?}");
}

/// Logs `b` in at level 2 (the `/` route's level, below `/riservato`'s).
fn level_two(site: &Site, b: &mut Browser) {
    let answer = idp_answer_from(
        b,
        &site.stack.login_url(2, "/"),
        &[("user", "mario.rossi"), ("level", "2")],
    );
    let acs = post_to_acs(b, &answer);
    assert_eq!(acs.status, 303, "{}", acs.body);
}

#[test]
fn issue18_other_spellings_of_a_protected_path_get_its_route_through_nginx() {
    // Each of these got 200 with `X-Varco-Loa: substantial` from the `/` route, and a
    // case-insensitive upstream served the protected page.
    let site = site();
    let mut b = Browser::default();
    level_two(&site, &mut b);
    let ok = b.get(&format!("{}/pratiche", site.base));
    assert_eq!(ok.status, 200, "{ok:?}");
    for spelling in [
        "/Riservato",
        "/RISERVATO/doc",
        "/riservato.json",
        "/riservato%20",
        "/riservato.",
        "/Riservato.JSON?x=1",
    ] {
        let r = b.get(&format!("{}{spelling}", site.base));
        assert_eq!(r.status, 302, "{spelling}: {r:?}");
        let location = r.header("location").unwrap();
        assert!(location.contains("level=3"), "{spelling}: {location}");
        assert!(
            header_values(&r.body, "X-Varco-Loa").is_empty(),
            "{spelling}"
        );
    }
    // Spellings a server could resolve to another path are refused outright.
    for spelling in ["/riservato%00.json", "/%52iservato"] {
        let r = b.get(&format!("{}{spelling}", site.base));
        assert!(r.status >= 400, "{spelling}: {r:?}");
        assert!(
            header_values(&r.body, "X-Varco-Sub").is_empty(),
            "{spelling}"
        );
    }
}

#[test]
fn issue18_nginx_outside_the_trusted_proxies_gets_refusals_not_the_root_policy() {
    // nginx connects from 127.0.0.1, but only 10.0.0.0/8 is trusted (the container-network
    // mistake): every protected request is refused, none is decided for `/`.
    let site = site_with(&|_| "[forward_auth]\ntrusted_proxies = [\"10.0.0.0/8\"]\n".into());
    let mut b = Browser::default();
    level_two(&site, &mut b);
    for path in ["/pratiche", "/riservato/doc"] {
        let r = b.get(&format!("{}{path}", site.base));
        assert_eq!(r.status, 403, "{path}: {r:?}");
        assert!(header_values(&r.body, "X-Varco-Sub").is_empty(), "{path}");
    }
    assert!(site.stack.varco_log().contains("auth_untrusted_peer"));
}

#[test]
fn issue18_a_host_missing_the_host_specific_routes_is_denied_through_nginx() {
    // The portal's routes name its host; nginx (one server block, as many sites run it)
    // accepts any Host. Another host, or an odd spelling of this one, used to fall to the
    // any-host routes; now it is denied unless it normalizes to the named host.
    let site = site_with(&|nport| {
        format!(
            "[[route]]\nhost = \"127.0.0.1:{nport}\"\npath_prefix = \"/riservato\"\nmin_loa = \"high\"\n"
        )
    });
    let mut b = Browser::default();
    level_two(&site, &mut b);
    let r = b.get(&format!("{}/riservato/doc", site.base));
    assert_eq!(r.status, 302, "{r:?}");
    assert!(r.header("location").unwrap().contains("level=3"), "{r:?}");
    for host in ["other.example", "portal.example", "127.0.0.2"] {
        let r = b.get_with(&format!("{}/riservato/doc", site.base), &[("Host", host)]);
        assert_eq!(r.status, 403, "{host}: {r:?}");
        assert!(header_values(&r.body, "X-Varco-Sub").is_empty(), "{host}");
    }
}
