//! Opened sessions as the forward-auth path and the reverse proxy see them: the cache of
//! opened cookies with their identity headers and tokens, and the step-up address.
//!
//! May import: `features`, the leaf (not the state itself: the state holds this cache).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};
use identity::Loa;

use crate::leaf::session::Session;

/// Opened sessions, so the forward-auth path neither decrypts nor parses a cookie it has
/// already seen, with the identity header values built once and the bearer tokens minted
/// for the session.
///
/// Keyed by the cookie's last 32 characters (they cover the AEAD tag); a hit counts only if
/// the whole cookie is equal to the one that was opened, so the cache never accepts a cookie
/// the sealer did not. Entries live at most `session.ttl_seconds`; the session's own expiry
/// is checked on every use.
pub struct SessionViews {
    pub(crate) cache: moka::sync::Cache<ViewKey, Arc<View>>,
}

/// A cookie's last [`VIEW_KEY`] bytes, the key of its view. Equal only when all of them are;
/// hashed by the last 16 alone, which a sealed cookie's AEAD tag fills with random bytes
/// (base64url): the cache's SipHash over 16 bytes instead of 32 and the length was a tenth of
/// a cache hit (issue 20). A forged cookie can choose them, but only looks up: it is never
/// inserted (only an opened cookie is), so no one can fill a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ViewKey([u8; VIEW_KEY]);

impl ViewKey {
    /// The key of `cookie`, `None` when it is shorter than [`VIEW_KEY`].
    pub(crate) fn of(cookie: &str) -> Option<ViewKey> {
        let tail = cookie
            .as_bytes()
            .get(cookie.len().checked_sub(VIEW_KEY)?..)?;
        Some(ViewKey(tail.try_into().ok()?))
    }
}

impl std::hash::Hash for ViewKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for word in self.0.rchunks_exact(8).take(2) {
            state.write_u64(u64::from_le_bytes(word.try_into().unwrap_or_default()));
        }
    }
}

/// One opened session, ready for forward-auth answers.
pub struct View {
    pub(crate) cookie: Box<str>,
    /// The session.
    pub session: Session,
    /// The session's key in the store's activity marks, derived once (a keyed digest of
    /// its ID, `Store::session_key`): the revocation and idle checks still run on every use.
    pub(crate) store_key: crate::features::store::SessionKey,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// `(audience, "Bearer <jwt>", minted at)`, reissued once half the lifetime is gone.
    pub(crate) tokens: Mutex<Vec<(Box<str>, HeaderValue, u64)>>,
    /// The headers of an allowed `/auth` answer for the session itself, per audience, with
    /// the token they carry (`state::current::own_answer`): cloned per answer instead of
    /// built (hashed) header by header; rebuilt when the token is reissued.
    pub(crate) answers: Mutex<Vec<Answer>>,
}

/// `(audience, the token it carries, the answer's headers)`.
pub(crate) type Answer = (Box<str>, Option<HeaderValue>, HeaderMap);

pub(crate) const VIEW_KEY: usize = 32;

impl View {
    /// The identity headers (all but the token), built once for this session.
    pub(crate) fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }
}

impl SessionViews {
    /// A cache bounded to `budget` estimated bytes, none kept longer than `ttl`. An evicted
    /// view costs only a new opening of its cookie.
    pub fn new(budget: u64, ttl: Duration) -> Self {
        SessionViews {
            cache: moka::sync::Cache::builder()
                .max_capacity(budget)
                .weigher(weigh)
                .time_to_live(ttl)
                .build(),
        }
    }
}

fn weigh(key: &ViewKey, view: &Arc<View>) -> u32 {
    u32::try_from(key.0.len() + view_weight(view)).unwrap_or(u32::MAX)
}

/// The estimated bytes of one view: the cookie, the session's strings and attributes, the
/// header values and up to the tokens minted when it was cached, plus the cache entry.
pub fn view_weight(v: &View) -> usize {
    let s = &v.session;
    let headers: usize = v
        .headers
        .iter()
        .map(|(n, val)| n.as_str().len() + val.len() + 64)
        .sum();
    // Tokens and the answers that carry them are built after the view is cached: counted at
    // a typical three audiences of 1 KiB of token and an answer of the headers, the token
    // and `Cache-Control` (about 128 bytes an entry: name, value and index), the weight
    // being fixed at insertion.
    let answers = 3 * (v.headers.len() + 2) * 128;
    crate::features::store::memory::ENTRY_OVERHEAD
        + size_of::<View>()
        + v.cookie.len()
        + s.sid.len()
        + s.idp.len()
        + s.name_id.len()
        + s.name_qualifier.len()
        + s.session_index.as_ref().map_or(0, String::len)
        + s.assertion_id.len()
        + 1024 // the principal's strings and attribute map
        + headers
        + 3 * 1024
        + answers
}

/// Where a session whose level is too low logs in again: the same SAML IdP at the level the
/// route needs, or, for a legacy session (whose credential cannot go higher), the choice page.
pub(crate) fn step_up_url(base: &str, session: &Session, loa: Loa, return_to: &str) -> String {
    if session.principal.auth.method == identity::Method::Legacy {
        return format!(
            "{base}/login?level={}&return_to={return_to}",
            spid_level(loa)
        );
    }
    format!(
        "{base}/saml/login?idp={}&level={}&return_to={return_to}",
        crate::leaf::form::encode(&session.idp),
        spid_level(loa),
    )
}

pub(crate) fn spid_level(loa: Loa) -> u8 {
    match loa {
        Loa::Low => 1,
        Loa::Substantial => 2,
        Loa::High => 3,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_view_key_is_a_cookies_last_bytes_and_equal_only_when_all_are() {
        let cookie = "x".repeat(10) + "0123456789abcdefghijklmnopqrstuv";
        let key = ViewKey::of(&cookie).unwrap();
        assert_eq!(&key.0, b"0123456789abcdefghijklmnopqrstuv");
        assert!(ViewKey::of(&"y".repeat(VIEW_KEY - 1)).is_none());
        assert!(ViewKey::of(&"y".repeat(VIEW_KEY)).is_some());
        // The same hashed half, another first half: a different key.
        let other = ViewKey::of("_123456789abcdefghijklmnopqrstuv").unwrap();
        assert_ne!(key, other);
        let cache: moka::sync::Cache<ViewKey, u8> = moka::sync::Cache::new(10);
        cache.insert(key, 1);
        assert_eq!(cache.get(&key), Some(1));
        assert_eq!(cache.get(&other), None);
    }
}
