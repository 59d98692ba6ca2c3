//! The ACS form fields around the Response (issue 18): the `RelayState` the SAML bindings
//! cap at 80 bytes, and a repeated one, are refused before any lookup.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixture;

use broker::routes::acs::consume;
use fixture::{BROWSER, REQUEST_ID, config, fixture_now, ready, signed_body, state};

/// The fixture writes its configuration files to one directory per process: the tests of this
/// file build theirs one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn consume_code(body: &str) -> Result<(), &'static str> {
    let _one = serial();
    let config = config("");
    let s = state(&config, fixture_now);
    ready(consume(&s, body.as_bytes(), Some(BROWSER)))
        .map(|_| ())
        .map_err(|f| f.code())
}

#[test]
fn relay_state_over_80_bytes_is_refused() {
    let genuine = signed_body();
    // 81 bytes: the request ID padded; 80 bytes exactly is within the limit (the lookup
    // then misses and the Response's own InResponseTo finds the pending login).
    let long = format!("{REQUEST_ID}{}", "x".repeat(81 - REQUEST_ID.len()));
    let at_limit = format!("{REQUEST_ID}{}", "x".repeat(80 - REQUEST_ID.len()));
    let with = |relay: &str| {
        genuine.replace(
            &format!("RelayState={REQUEST_ID}"),
            &format!("RelayState={relay}"),
        )
    };
    assert_eq!(
        consume_code(&with(&long)),
        Err("broker_relay_state_too_long")
    );
    assert_eq!(consume_code(&with(&at_limit)), Ok(()));
    assert_eq!(consume_code(&genuine), Ok(()));
}

#[test]
fn repeated_relay_state_is_refused() {
    let body = format!("{}&RelayState={REQUEST_ID}", signed_body());
    assert_eq!(consume_code(&body), Err("broker_duplicate_field"));
}

/// The base64 SAMLResponse of [`signed_body`], form-decoded.
fn signed_response_b64() -> String {
    let body = signed_body();
    let field = body
        .split('&')
        .find_map(|p| p.strip_prefix("SAMLResponse="))
        .unwrap();
    form_urlencoded::parse(format!("x={field}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

#[test]
fn a_response_wrapped_with_white_space_is_accepted() {
    // Base64 broken into lines (CRLF every 76 characters, as MIME writes it) and a space
    // sent as `+`: the white space is removed before decoding, as IdPs that wrap rely on.
    let b64 = signed_response_b64();
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let wrapped = format!("{}\r\n", lines.join("\r\n"));
    let enc: String = form_urlencoded::byte_serialize(wrapped.as_bytes()).collect();
    assert!(enc.contains("%0D%0A"));
    let body = format!("SAMLResponse=+{enc}&RelayState={REQUEST_ID}");
    assert_eq!(consume_code(&body), Ok(()));
}

#[test]
fn a_response_over_saml_max_response_bytes_is_refused_and_one_at_it_is_accepted() {
    use base64::Engine as _;
    // The genuine signed Response padded with white space after its root element (outside
    // what the signatures cover) to exactly the limit, then to one byte over.
    let field = signed_response_b64();
    let xml = base64::engine::general_purpose::STANDARD
        .decode(field)
        .unwrap();
    let max = 16 * 1024;
    assert!(xml.len() < max);
    let with_size = |n: usize| {
        let mut padded = xml.clone();
        padded.resize(n, b'\n');
        let b64 = base64::engine::general_purpose::STANDARD.encode(&padded);
        let enc: String = form_urlencoded::byte_serialize(b64.as_bytes()).collect();
        format!("SAMLResponse={enc}&RelayState={REQUEST_ID}")
    };
    let _one = serial();
    let config = config("[saml]\nmax_response_bytes = 16384\n");
    let code = |body: &str| {
        let s = state(&config, fixture_now);
        ready(consume(&s, body.as_bytes(), Some(BROWSER)))
            .map(|_| ())
            .map_err(|f| f.code())
    };
    assert_eq!(code(&with_size(max)), Ok(()));
    assert_eq!(code(&with_size(max + 1)), Err("broker_response_too_large"));
    // Far over: refused from the base64 length, before decoding.
    assert_eq!(code(&with_size(4 * max)), Err("broker_response_too_large"));
}
