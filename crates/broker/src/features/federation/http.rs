//! The back-channel calls of the OIDC flow: the token request (form POST), the UserInfo
//! request (GET with the bearer token) and token revocation. The same client as the
//! metadata fetcher (ureq over rustls): a whole-request deadline, a body cap, no redirects
//! (the endpoint the chain states is the one trusted). Blocking calls run in
//! `spawn_blocking`.
//!
//! May import: the leaf.

use std::time::Duration;

/// Why a back-channel call failed. Codes are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// Connection, TLS, timeout or body over the cap.
    Transport,
    /// A status other than 200.
    Status(u16),
}

impl CallError {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            CallError::Transport => "broker_oidc_backchannel",
            CallError::Status(_) => "broker_oidc_backchannel_status",
        }
    }
}

fn agent(timeout: Duration) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent("varco-oidc")
        .build();
    ureq::Agent::new_with_config(config)
}

fn body(mut r: ureq::http::Response<ureq::Body>, max: u64) -> Result<String, CallError> {
    let status = r.status().as_u16();
    if status != 200 {
        return Err(CallError::Status(status));
    }
    r.body_mut()
        .with_config()
        .limit(max)
        .read_to_string()
        .map_err(|_| CallError::Transport)
}

/// POSTs `form` (already `application/x-www-form-urlencoded`) to `url`.
pub async fn post_form(
    url: &str,
    form: String,
    timeout: Duration,
    max: u64,
) -> Result<String, CallError> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || {
        let r = agent(timeout)
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form.as_bytes())
            .map_err(|_| CallError::Transport)?;
        body(r, max)
    })
    .await
    .map_err(|_| CallError::Transport)?
}

/// GETs `url` with `Authorization: Bearer <token>`.
pub async fn get_bearer(
    url: &str,
    token: &str,
    timeout: Duration,
    max: u64,
) -> Result<String, CallError> {
    let (url, auth) = (url.to_owned(), format!("Bearer {token}"));
    tokio::task::spawn_blocking(move || {
        let r = agent(timeout)
            .get(&url)
            .header("authorization", &auth)
            .call()
            .map_err(|_| CallError::Transport)?;
        body(r, max)
    })
    .await
    .map_err(|_| CallError::Transport)?
}
