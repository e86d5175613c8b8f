//! Where the host sends records: the write-ahead log in production and in the simulator, or
//! nowhere (every record durable at once).

use super::Outgoing;
use crate::core::{ConnId, Lsn, Record, SnapshotView};

/// Where records go. A synchronous sink makes records durable before `persist` returns (the
/// host then feeds durability itself); an asynchronous one reports durability later through
/// the driver, as [`Event::Durable`](crate::core::Event::Durable).
pub trait RecordSink {
    /// Accepts a record for persistence.
    fn persist(&mut self, lsn: Lsn, record: Record);
    /// Whether `persist` makes records durable before returning.
    fn is_synchronous(&self) -> bool;
    /// Whether the log has grown enough since the last snapshot to write a new one.
    fn snapshot_due(&self) -> bool {
        false
    }
    /// Writes a snapshot of the state `view` captured (after every record up to its lsn),
    /// building its records off the driver's lock.
    fn request_snapshot(&mut self, _view: SnapshotView) {}
    /// Flushes and stops; called once, without the driver's lock held.
    fn shutdown(&mut self) {}
    /// The host is handing `conn`'s writer something its peer will see: a frame (`Some`) or
    /// the close (`None`). Called as each such output leaves the core, in order with
    /// [`persist`](Self::persist), so a sink that checks the write-ahead rule (the model
    /// checker's) sees here whether a record emitted before it is still not durable.
    fn releasing(&mut self, _conn: ConnId, _item: Option<&Outgoing>) {}
}

impl<T: RecordSink + ?Sized> RecordSink for Box<T> {
    fn persist(&mut self, lsn: Lsn, record: Record) {
        (**self).persist(lsn, record);
    }
    fn is_synchronous(&self) -> bool {
        (**self).is_synchronous()
    }
    fn snapshot_due(&self) -> bool {
        (**self).snapshot_due()
    }
    fn request_snapshot(&mut self, view: SnapshotView) {
        (**self).request_snapshot(view);
    }
    fn shutdown(&mut self) {
        (**self).shutdown();
    }
    fn releasing(&mut self, conn: ConnId, item: Option<&Outgoing>) {
        (**self).releasing(conn, item);
    }
}

/// The sink that keeps nothing: every record counts as durable at once (no restart survives).
#[derive(Debug, Default, Clone)]
pub struct MemorySink;

impl RecordSink for MemorySink {
    fn persist(&mut self, _lsn: Lsn, _record: Record) {}
    fn is_synchronous(&self) -> bool {
        true
    }
}
