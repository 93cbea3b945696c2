//! Who evaluates the alert rules when several collectors share one store.
//!
//! Every collector of a ClickHouse deployment would evaluate every rule and
//! send every notification; a [`Lease`] makes that happen once: only its
//! holder evaluates (and so enqueues notifications). With one collector
//! (SQLite) there is no lease: it always evaluates.

/// A lease on alert evaluation, shared by the collectors of one store.
pub trait Lease: Send + Sync {
    /// Takes or renews the lease if it is free, expired or already ours;
    /// true when this collector holds it until at least `now_ms` plus a
    /// safety margin. A failure to reach the lease's storage is `Err` (and
    /// the caller does not evaluate).
    fn hold(&self, now_ms: i64) -> Result<bool, String>;

    /// This collector's id among the holders.
    fn holder(&self) -> &str;

    /// The epoch of the term held, as of the last [`Lease::hold`] that
    /// returned true; it only grows. Fences what a holder writes for the
    /// others (alert state snapshots): a stale holder's epoch is lower.
    fn epoch(&self) -> Option<u64> {
        None
    }
}
