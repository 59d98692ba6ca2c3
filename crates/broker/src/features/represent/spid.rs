//! The SPID legal-person source: no I/O, the login's own verified attributes
//! (`identity::represent::spid_legal`).

use std::collections::BTreeSet;
use std::sync::Arc;

use identity::Principal;
use identity::represent::spid_legal::SpidLegalPerson;
use identity::represent::{Source as _, SourceKind};

use super::source::{Lookup, RepresentationSource, SourceError};

/// A configured SPID legal-person source, for the services that list it.
pub struct SpidSource {
    inner: SpidLegalPerson,
}

impl SpidSource {
    /// The source `id` for `services`, valid `ttl` seconds after the login.
    #[must_use]
    pub fn new(id: &str, services: BTreeSet<String>, ttl: u64) -> Self {
        SpidSource {
            inner: SpidLegalPerson::new(id, services, ttl),
        }
    }
}

impl RepresentationSource for SpidSource {
    fn id(&self) -> &str {
        self.inner.id()
    }

    fn kind(&self) -> SourceKind {
        SourceKind::SpidLegalPerson
    }

    fn lookup<'a>(&'a self, delegate: &'a Principal, now: u64) -> Lookup<'a> {
        Box::pin(async move {
            self.inner
                .verify(delegate, now)
                .map(Arc::new)
                .map_err(SourceError::Refused)
        })
    }
}
