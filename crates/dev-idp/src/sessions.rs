//! The demo IdP's memory of logins and logouts: open sessions (one per Response it issued),
//! IdP-initiated logouts awaiting the SP's answer, and the event log `/sessions` shows. A leaf:
//! the routes call its methods, each of which takes the lock once.

use std::sync::Mutex;
use std::time::SystemTime;

/// One login this IdP answered.
#[derive(Debug, Clone)]
pub(crate) struct IdpSession {
    /// The `SessionIndex` of the `AuthnStatement`.
    pub(crate) session_index: String,
    /// The transient `NameID`.
    pub(crate) name_id: String,
    /// The test user.
    pub(crate) user: String,
    /// The SP's entityID.
    pub(crate) sp: String,
}

/// An IdP-initiated logout awaiting the SP's answer.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Our `LogoutRequest` `ID`.
    pub(crate) id: String,
    /// The SP it went to.
    pub(crate) sp: String,
    /// Its `IssueInstant`.
    pub(crate) issued_at: SystemTime,
}

/// Sessions, pending IdP-initiated logouts and the event log.
#[derive(Debug, Default)]
pub(crate) struct LogoutState {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: Vec<IdpSession>,
    pending: Vec<Pending>,
    events: Vec<String>,
}

impl LogoutState {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        // A panic elsewhere while holding the lock leaves plain data behind: keep serving.
        let mut guard = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut guard)
    }

    /// Records a login.
    pub(crate) fn open_session(&self, s: IdpSession) {
        self.with(|i| i.sessions.push(s));
    }

    /// Appends to the event log (and standard error).
    pub(crate) fn event(&self, e: String) {
        eprintln!("varco-dev-idp: {e}");
        self.with(|i| i.events.push(e));
    }

    /// The open session with this `SessionIndex`, if any.
    pub(crate) fn session(&self, session_index: &str) -> Option<IdpSession> {
        self.with(|i| {
            i.sessions
                .iter()
                .find(|s| s.session_index == session_index)
                .cloned()
        })
    }

    /// Ends the sessions of `name_id` at `sp` whose `SessionIndex` is one of
    /// `session_indexes` (an SP-initiated logout); returns how many ended.
    pub(crate) fn end_sessions(
        &self,
        sp: &str,
        name_id: &str,
        session_indexes: &[String],
    ) -> usize {
        self.with(|i| {
            let before = i.sessions.len();
            i.sessions.retain(|s| {
                !(s.sp == sp && s.name_id == name_id && session_indexes.contains(&s.session_index))
            });
            before - i.sessions.len()
        })
    }

    /// Starts an IdP-initiated logout: the session ends and `pending` awaits the SP's answer.
    pub(crate) fn start_logout(&self, session_index: &str, pending: Pending) {
        self.with(|i| {
            i.sessions.retain(|s| s.session_index != session_index);
            i.pending.push(pending);
        });
    }

    /// Removes and returns the pending logout whose request `ID` is `id` (one answer each).
    pub(crate) fn take_pending(&self, id: &str) -> Option<Pending> {
        self.with(|i| {
            let at = i.pending.iter().position(|p| p.id == id)?;
            Some(i.pending.remove(at))
        })
    }

    /// The `/sessions` text.
    pub(crate) fn report(&self) -> String {
        self.with(|i| {
            let mut out = String::new();
            for s in &i.sessions {
                out.push_str(&format!(
                    "session {} {} {} {}\n",
                    s.session_index, s.name_id, s.user, s.sp
                ));
            }
            for e in &i.events {
                out.push_str(&format!("event {e}\n"));
            }
            out
        })
    }
}
