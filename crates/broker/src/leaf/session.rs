//! Sessions live in a cookie sealed with ChaCha20-Poly1305 (ring): nothing to store server
//! side, and nothing a browser can read or change. The cookie carries its own expiry, checked
//! on every read against the injected clock.
//!
//! May import: nothing in the crate.

use std::collections::BTreeMap;

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// One logged-in person: the normalized identity plus what the SAML layer needs later
/// (logout, audit).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Session {
    /// Session identifier (random).
    pub sid: String,
    /// IdP entityID.
    pub idp: String,
    /// The IdP's transient NameID.
    pub name_id: String,
    /// `NameID/@NameQualifier`.
    pub name_qualifier: String,
    /// `AuthnStatement/@SessionIndex`, when the IdP gave one (SAML logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_index: Option<String>,
    /// The Assertion ID (for the audit trail).
    pub assertion_id: String,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// The normalized identity (crate `identity`).
    pub principal: identity::Principal,
    /// Legacy logins: the person's switch-off exception category, if any (route policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_category: Option<String>,
    /// Per route service, whom the person chose to act as (issue 24): at most
    /// [`MAX_ACTING_SERVICES`] entries. A new optional field, so sessions sealed before it
    /// open unchanged (no choice yet) and the AAD keeps its version.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub acting: BTreeMap<String, ActingAs>,
}

/// Most services one session keeps a choice for.
pub const MAX_ACTING_SERVICES: usize = 16;

/// Whom a person acts as on one service. Only the *reference* of a representation is kept:
/// the representation itself is asked of its source again on every request, so a revoked or
/// expired one stops at the next `/auth`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "as", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActingAs {
    /// Themselves.
    Myself,
    /// Someone else, through the representation `reference` of source `source`.
    Other {
        /// Source id.
        source: String,
        /// The source's reference.
        reference: String,
    },
}

/// The buffer a seal starts with: a session's JSON (about 600 bytes with a SPID identity)
/// with its nonce and tag, without growing.
const SEAL_CAPACITY: usize = 1024;

/// Seals and opens session cookies with one key.
pub struct Sealer {
    key: LessSafeKey,
    rng: SystemRandom,
}

/// Purpose strings bind a sealed value to its use, so a login cookie can never be replayed
/// as a session cookie.
#[derive(Clone, Copy)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// The anti-CSRF token of the legacy login form (bound to the `varco_legacy` cookie).
    LegacyForm,
    /// The token of the logout confirmation form (bound to the session it ends).
    LogoutForm,
    /// The token of the "act on behalf of" chooser form (bound to the session and service).
    RepresentForm,
    /// An OpenID authorization request waiting for a login (`/oidc/authorize?resume=`).
    OidcRequest,
    /// A wallet login's state in the store (browser binding, outcome, the PID).
    WalletRequest,
    /// A wallet login's response key and the claims asked for, in the store.
    WalletKey,
}

impl Purpose {
    fn aad(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"varco-session-v1",
            Purpose::LegacyForm => b"varco-legacy-form-v1",
            Purpose::LogoutForm => b"varco-logout-form-v1",
            Purpose::RepresentForm => b"varco-represent-form-v1",
            Purpose::OidcRequest => b"varco-oidc-request-v1",
            Purpose::WalletRequest => b"varco-wallet-request-v1",
            Purpose::WalletKey => b"varco-wallet-key-v1",
        }
    }
}

impl Sealer {
    /// A sealer with a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Option<Self> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).ok()?;
        Some(Sealer {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
        })
    }

    /// Serializes and seals; base64url without padding. The nonce, the sealed JSON and the
    /// tag are built in one buffer, sized for a session (issue 20: the JSON's growth and a
    /// copy behind the nonce were a third of a seal's allocations).
    pub fn seal<T: Serialize>(&self, purpose: Purpose, value: &T) -> Option<String> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut out = Vec::with_capacity(SEAL_CAPACITY);
        out.extend_from_slice(&nonce);
        serde_json::to_writer(&mut out, value).ok()?;
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.aad()),
                out.get_mut(NONCE_LEN..)?,
            )
            .ok()?;
        out.extend_from_slice(tag.as_ref());
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a sealed value; `None` for anything tampered, truncated or sealed for another
    /// purpose.
    pub fn open<T: for<'de> Deserialize<'de>>(&self, purpose: Purpose, text: &str) -> Option<T> {
        if text.len() > 8192 {
            return None;
        }
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, sealed) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.aad()), &mut sealed)
            .ok()?;
        serde_json::from_slice(plain).ok()
    }
}

/// Random hex of `bytes` bytes (at most 64).
pub fn random_hex(rng: &SystemRandom, bytes: usize) -> Option<String> {
    let mut buf = [0u8; 64];
    let buf = buf.get_mut(..bytes)?;
    rng.fill(buf).ok()?;
    Some(hex(buf))
}

/// Lower-case hex of `bytes`, in one allocation (issue 20: a request id and a session id
/// are made per request and per login).
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.extend(hex_byte(b).map(char::from));
    }
    out
}

/// The two lower-case hex digits of `b`.
pub fn hex_byte(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let principal = identity::normalize(
            vec![("fiscalNumber".into(), vec!["TINIT-RSSMRA85T10A562S".into()])],
            &identity::Source {
                method: identity::Method::Spid,
                idp: "i",
                level: identity::SPID_L2,
                auth_time: 1,
                session_id: "s",
            },
            &identity::Mapping::default(),
        )
        .unwrap();
        Session {
            sid: "s".into(),
            idp: "i".into(),
            name_id: "n".into(),
            name_qualifier: "q".into(),
            session_index: None,
            assertion_id: "a".into(),
            iat: 1,
            exp: 2,
            principal,
            legacy_category: None,
            acting: BTreeMap::new(),
        }
    }

    #[test]
    fn sessions_sealed_before_acting_open_without_a_choice() {
        let s = Sealer::new(&[7; 32]).unwrap();
        let mut v = serde_json::to_value(session()).unwrap();
        assert!(v.get("acting").is_none(), "an empty choice is not written");
        v.as_object_mut().unwrap().remove("acting");
        let old = s.seal(Purpose::Session, &v).unwrap();
        let opened: Session = s.open(Purpose::Session, &old).unwrap();
        assert!(opened.acting.is_empty());
        let mut chosen = session();
        chosen.acting.insert(
            "tributi".into(),
            ActingAs::Other {
                source: "portale".into(),
                reference: "D-1".into(),
            },
        );
        chosen.acting.insert("scuola".into(), ActingAs::Myself);
        let sealed = s.seal(Purpose::Session, &chosen).unwrap();
        assert_eq!(s.open::<Session>(Purpose::Session, &sealed), Some(chosen));
    }

    #[test]
    fn sealed_session_round_trips_and_resists_tampering() {
        let s = Sealer::new(&[7; 32]).unwrap();
        let sealed = s.seal(Purpose::Session, &session()).unwrap();
        assert_eq!(
            s.open::<Session>(Purpose::Session, &sealed),
            Some(session())
        );
        let mut bytes = sealed.into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(s.open::<Session>(Purpose::Session, &tampered), None);
        let other = Sealer::new(&[8; 32]).unwrap();
        let sealed = s.seal(Purpose::Session, &session()).unwrap();
        assert_eq!(other.open::<Session>(Purpose::Session, &sealed), None);
        assert_eq!(s.open::<Session>(Purpose::Session, "!!!"), None);
    }
}
