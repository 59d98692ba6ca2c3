//! Access policy for one protected route: minimum level of assurance, allowed methods and
//! allowed profiles, and the decision for a given principal.

use serde::{Deserialize, Serialize};

use crate::{Loa, Method, Principal, Profile};

/// What a route asks of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Lowest acceptable level of assurance.
    pub min_loa: Loa,
    /// Accepted methods; empty means every method.
    pub methods: Vec<Method>,
    /// Accepted profiles; empty means every profile.
    pub profiles: Vec<Profile>,
}

/// The outcome of [`Policy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The session satisfies the route.
    Allow,
    /// Right person, right method and profile, level too low: authenticate again at (at
    /// least) this level. Not a dead end: the broker sends the browser to a step-up login.
    StepUp(Loa),
    /// The method used is not accepted by the route.
    MethodNotAllowed,
    /// The person's profile is not accepted by the route.
    ProfileNotAllowed,
}

impl Decision {
    /// A short, stable identifier for logs and metric labels.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::StepUp(_) => "identity.step_up",
            Decision::MethodNotAllowed => "identity.method_not_allowed",
            Decision::ProfileNotAllowed => "identity.profile_not_allowed",
        }
    }
}

impl Policy {
    /// A policy accepting any method and profile at `min_loa` or above.
    #[must_use]
    pub fn at_least(min_loa: Loa) -> Policy {
        Policy {
            min_loa,
            methods: Vec::new(),
            profiles: Vec::new(),
        }
    }

    /// Decides for `principal`. Method and profile are checked before the level: stepping
    /// up is offered only when a higher level would actually open the route.
    #[must_use]
    pub fn decide(&self, principal: &Principal) -> Decision {
        if !self.methods.is_empty() && !self.methods.contains(&principal.auth.method) {
            return Decision::MethodNotAllowed;
        }
        if !self.profiles.is_empty() && !self.profiles.contains(&principal.profile) {
            return Decision::ProfileNotAllowed;
        }
        if principal.auth.loa < self.min_loa {
            return Decision::StepUp(self.min_loa);
        }
        Decision::Allow
    }
}
