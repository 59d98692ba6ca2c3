//! What a sink's append answers: [`Durable`] once the record is on disk or committed, or an
//! [`AuditError`] with its stable code. Both sinks (`file`, `postgres`) return these, and the
//! `Sink` in `audit` passes them on; keeping them here lets the sinks import them without
//! importing the module that dispatches to them.
//!
//! May import: nothing in the crate.

/// Why a record could not be made durable; the login then fails closed (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditError {
    /// The sink is stopped, its queue is gone, or a write or fsync failed.
    Unavailable,
    /// The record could not be encoded (randomness or AEAD failure).
    Encode,
}

impl AuditError {
    /// Every error, for pre-initialising the failure counter (so the first failure moves a
    /// series that already exists, and `increase()` sees it).
    pub const ALL: [AuditError; 2] = [AuditError::Unavailable, AuditError::Encode];

    /// Stable code.
    pub fn code(self) -> &'static str {
        match self {
            AuditError::Unavailable => "audit_unavailable",
            AuditError::Encode => "audit_encode",
        }
    }
}

/// A record made durable: its place in the chain and the size of the group commit that
/// carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durable {
    /// Its sequence number.
    pub seq: u64,
    /// Records made durable by the same fsync (file) or transaction (PostgreSQL), itself
    /// included.
    pub batch: usize,
}
