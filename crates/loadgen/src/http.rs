//! A minimal HTTP/1.1 keep-alive client over hyper's connection API: one connection per
//! worker, reopened when the server closes it. Enough for loopback load, nothing more.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderMap, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// An answer, read whole.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Reply {
    /// The first value of header `name`, if it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The value of cookie `name` among the `Set-Cookie` headers.
    pub(crate) fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                let first = c.split(';').next()?;
                let (n, v) = first.split_once('=')?;
                (n.trim() == name).then(|| v.trim().to_owned())
            })
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One keep-alive connection to `host` (`127.0.0.1:PORT`), or a fresh connection per
/// request for a server that closes each one.
pub(crate) struct Conn {
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    one_shot: bool,
}

impl Conn {
    pub(crate) fn new(host: &str) -> Conn {
        Conn {
            host: host.to_owned(),
            sender: None,
            one_shot: false,
        }
    }

    /// A connection per request, each sent with `Connection: close`: for servers that close
    /// after every answer (gunicorn's sync workers), where reusing one would race the close.
    pub(crate) fn one_shot(host: &str) -> Conn {
        Conn {
            one_shot: true,
            ..Conn::new(host)
        }
    }

    /// Opens the connection now, if it is not open, instead of at the first request.
    pub(crate) async fn warm(&mut self) -> Result<(), String> {
        self.connect().await.map(|_| ())
    }

    async fn connect(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(&self.host)
                .await
                .map_err(|e| format!("connect {}: {e}", self.host))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends one request (`path` with its query) and reads the whole answer.
    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Reply, String> {
        let host = self.host.clone();
        let one_shot = self.one_shot;
        let sender = self.connect().await?;
        sender.ready().await.map_err(|e| format!("ready: {e}"))?;
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if one_shot {
            req = req.header("connection", "close");
        }
        if method == "POST" {
            req = req.header(
                "content-type",
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let answer = sender.send_request(req).await;
        if one_shot || answer.is_err() {
            self.sender = None;
        }
        let answer = answer.map_err(|e| format!("send: {e}"))?;
        let (parts, body) = answer.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok(Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }
}

/// Splits `http://host:port/path?query` into `("host:port", "/path?query")`.
pub(crate) fn split_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    match rest.find('/') {
        Some(i) => Some((&rest[..i], &rest[i..])),
        None => Some((rest, "/")),
    }
}

/// The value of the form input `name` in an HTML page (`name="…" … value="…"`), unescaped.
pub(crate) fn form_input(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\"");
    let at = html.find(&needle)?;
    let tag_end = html[at..].find('>')? + at;
    let tag = &html[at..tag_end];
    let v = tag.find("value=\"")? + "value=\"".len();
    let end = tag[v..].find('"')? + v;
    Some(unescape(&tag[v..end]))
}

/// The `action` of the first form in an HTML page, unescaped.
pub(crate) fn form_action(html: &str) -> Option<String> {
    let at = html.find("action=\"")? + "action=\"".len();
    let end = html[at..].find('"')? + at;
    Some(unescape(&html[at..end]))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Percent-encodes every byte outside the unreserved set.
pub(crate) fn pct(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// What the demo IdP's auto-submitting form carries back to a service provider.
pub(crate) struct IdpAnswer {
    pub(crate) saml_response: String,
    pub(crate) relay_state: String,
    /// The form's `action`: the ACS the IdP posts to.
    pub(crate) action: String,
}

/// One login at the demo IdP: its page at `sso` (the AuthnRequest, by `method`), then its
/// login form answered as Mario Rossi at SPID level 2, then the form it returns.
pub(crate) async fn idp_login(
    idp: &mut Conn,
    method: &str,
    sso: &str,
    body: Bytes,
) -> Result<IdpAnswer, String> {
    let page = idp.send(method, sso, &[], body).await?;
    if page.status != 200 {
        return Err(format!("IdP /sso {}: {}", page.status, page.text()));
    }
    let state = form_input(&page.text(), "state").ok_or("no state on the IdP page")?;
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("state", &state)
        .append_pair("user", "mario.rossi")
        .append_pair("level", "2")
        .finish();
    let answer = idp.send("POST", "/login", &[], form.into()).await?;
    if answer.status != 200 {
        return Err(format!("IdP /login {}", answer.status));
    }
    let html = answer.text();
    Ok(IdpAnswer {
        saml_response: form_input(&html, "SAMLResponse").ok_or("no SAMLResponse")?,
        relay_state: form_input(&html, "RelayState").unwrap_or_default(),
        action: form_action(&html).ok_or("no form action")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_form_fields_and_urls() {
        let page = "<form method=\"post\" action=\"http://127.0.0.1:9/saml/acs?a=1&amp;b=2\">\
                    <input type=\"hidden\" name=\"SAMLResponse\" value=\"PD94+/=\">\
                    <input type=\"hidden\" name=\"RelayState\" value=\"_a&amp;&quot;b\">";
        assert_eq!(form_input(page, "SAMLResponse").unwrap(), "PD94+/=");
        assert_eq!(form_input(page, "RelayState").unwrap(), "_a&\"b");
        assert_eq!(form_input(page, "state"), None);
        assert_eq!(
            form_action(page).unwrap(),
            "http://127.0.0.1:9/saml/acs?a=1&b=2"
        );
        assert_eq!(
            split_url("http://127.0.0.1:8080/sso?x=1"),
            Some(("127.0.0.1:8080", "/sso?x=1"))
        );
        assert_eq!(split_url("https://x/"), None);
        assert_eq!(pct("http://a b/"), "http%3A%2F%2Fa%20b%2F");
    }
}
