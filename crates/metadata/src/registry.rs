//! The set of trusted IdPs the login path reads: an immutable [`Snapshot`] behind an
//! [`ArcSwap`]. A refresh builds a new snapshot and swaps it in whole; a reader loads the
//! current one without a lock and without allocating, and an in-flight login that already
//! holds an [`IdpEntry`] keeps it even if the next snapshot drops that IdP.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use saml::IdpDescriptor;

/// One trusted IdP, as the last good metadata of its source described it.
#[derive(Debug, Clone)]
pub struct IdpEntry {
    /// What the SAML layer needs (entityID, endpoints, signing keys).
    pub descriptor: IdpDescriptor,
    /// A human name for the login page: `mdui:DisplayName` (Italian first, then English),
    /// else `md:OrganizationDisplayName`.
    pub display_name: Option<String>,
    /// `mdui:Logo` URL, when published.
    pub logo: Option<String>,
    /// Name of the configured source that listed it.
    pub source: Arc<str>,
    /// When this entry stops being usable: the earliest of the document's `validUntil`
    /// (capped by the source's maximum age), every enclosing `EntitiesDescriptor`'s and its
    /// own `EntityDescriptor`'s. `None`: no limit was published or configured.
    pub valid_until: Option<SystemTime>,
}

impl IdpEntry {
    /// The entityID.
    pub fn entity_id(&self) -> &str {
        &self.descriptor.entity_id
    }

    /// True when the entry may be used at `now`: no `valid_until`, or `now` before it.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.valid_until.is_none_or(|v| now < v)
    }

    /// The earliest `notAfter` (Unix seconds) among its signing certificates.
    pub fn earliest_cert_expiry(&self) -> Option<i64> {
        self.descriptor
            .signing_keys
            .iter()
            .map(xmldsig::TrustedKey::not_after)
            .min()
    }
}

/// An immutable view of every trusted IdP, by entityID.
#[derive(Debug, Default)]
pub struct Snapshot {
    by_id: HashMap<String, Arc<IdpEntry>>,
    /// The same entries sorted by entityID, for listings.
    sorted: Vec<Arc<IdpEntry>>,
}

impl Snapshot {
    /// Builds a snapshot. An entityID listed more than once (by two sources, possibly of
    /// different federations, or twice by one) is served by none of them: which listing
    /// would win must not depend on the order sources load in or come and go, and two
    /// federations' claims to one entityID are a conflict for the operator to resolve. Every
    /// refused entry is returned so the caller can report it.
    pub fn build(
        entries: impl IntoIterator<Item = Arc<IdpEntry>>,
    ) -> (Snapshot, Vec<Arc<IdpEntry>>) {
        let mut listed: HashMap<String, Vec<Arc<IdpEntry>>> = HashMap::new();
        for e in entries {
            listed.entry(e.entity_id().to_owned()).or_default().push(e);
        }
        let mut by_id = HashMap::new();
        let mut duplicates = Vec::new();
        for (id, mut all) in listed {
            match (all.pop(), all.is_empty()) {
                (Some(only), true) => {
                    by_id.insert(id, only);
                }
                (Some(last), false) => {
                    duplicates.append(&mut all);
                    duplicates.push(last);
                }
                (None, _) => {}
            }
        }
        duplicates.sort_by(|a, b| (a.entity_id(), &*a.source).cmp(&(b.entity_id(), &*b.source)));
        let mut sorted: Vec<_> = by_id.values().cloned().collect();
        sorted.sort_by(|a, b| a.entity_id().cmp(b.entity_id()));
        (Snapshot { by_id, sorted }, duplicates)
    }

    /// The IdP with this entityID.
    pub fn get(&self, entity_id: &str) -> Option<&Arc<IdpEntry>> {
        self.by_id.get(entity_id)
    }

    /// Every IdP, sorted by entityID.
    pub fn idps(&self) -> &[Arc<IdpEntry>] {
        &self.sorted
    }

    /// Number of IdPs.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// True when no IdP is trusted.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

/// The current snapshot and the readiness flag, shared by the refresher (writer) and the
/// request handlers (readers).
#[derive(Debug, Default)]
pub struct Registry {
    current: ArcSwap<Snapshot>,
    ready: AtomicBool,
}

impl Registry {
    /// A registry serving `snapshot`, not ready.
    pub fn new(snapshot: Snapshot) -> Self {
        Registry {
            current: ArcSwap::from_pointee(snapshot),
            ready: AtomicBool::new(false),
        }
    }

    /// The IdP with this entityID in the current snapshot. Lock-free and allocation-free:
    /// one atomic load of the snapshot, one hash lookup by `&str`, one reference count.
    pub fn get(&self, entity_id: &str) -> Option<Arc<IdpEntry>> {
        self.current.load().get(entity_id).cloned()
    }

    /// The IdP with this entityID when its entry is still valid at `now` (see
    /// [`IdpEntry::is_valid_at`]): what the login path uses, so that an expired entry is
    /// refused at once, whether or not the refresher has run since. Lock-free like [`get`].
    ///
    /// [`get`]: Registry::get
    pub fn get_valid(&self, entity_id: &str, now: SystemTime) -> Option<Arc<IdpEntry>> {
        self.current
            .load()
            .get(entity_id)
            .filter(|e| e.is_valid_at(now))
            .cloned()
    }

    /// The current snapshot, for listings.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the current snapshot atomically.
    pub fn publish(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(snapshot));
    }

    /// True once every required source has loaded at least once.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}
