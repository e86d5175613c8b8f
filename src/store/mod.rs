//! Persistence of the core's records: a write-ahead log with snapshots, and recovery.
//!
//! The core emits `Output::Persist { lsn, record }`; its owner hands each record to a store and
//! feeds back `Input::Durable { lsn }` once every record up to `lsn` survives a crash. On start,
//! recovery returns the records to replay through the same core. The pieces:
//!
//! - [`codec`]: the byte format of records, log frames and snapshot files (total decoding).
//! - [`disk`]: the [`Disk`] trait (files with explicit sync), [`FsDisk`] and [`MemDisk`].
//! - [`wal`]: [`Wal`], the log of segment files and snapshots over any disk, and its recovery.
//! - [`commit`]: [`commit::Committer`], the log writer's decisions (batches, the sync in
//!   flight, durable reports, snapshot steps) with no thread of its own: the server's writer and
//!   the simulator's store drive the same one.
//! - [`writer`]: [`GroupCommit`], the thread that batches records into one fsync for the server;
//!   [`syncer`] and [`queue`] are its hand-offs with its sync thread and its submitters.
//! - [`memory`]: [`MemoryStore`], which calls everything durable at once (benchmarks, early use).
//! - [`snapshotting`]: [`snapshotting::Snapshotting`], a snapshot written in steps between
//!   batches of records (the writer's, and the simulator's).
//! - [`pause`]: [`SnapshotPause`], a test seam that holds a snapshot half written.
//!
//! **Durability rule:** a record counts as durable only after the fsync of the segment holding it
//! and, if that segment is new, of the directory naming it. Nothing in this module reads a clock
//! or an unseeded random source, so the simulator can drive [`Wal`] over [`MemDisk`]
//! deterministically.

pub mod codec;
pub mod commit;
pub mod disk;
pub mod memory;
pub mod pause;
pub mod queue;
pub mod snapshotting;
pub mod syncer;
pub mod wal;
pub mod writer;

pub use disk::{Disk, DiskError, FsDisk, MemDisk};
pub use memory::MemoryStore;
pub use pause::SnapshotPause;
pub use wal::{Recovered, RecoveryError, RecoveryWarning, Wal};
pub use writer::{DurableCallback, GroupCommit, SnapshotBuilder};

use crate::core::record::Lsn;
use thiserror::Error;

/// Whether the group-commit writer fsyncs each batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// fsync every batch before reporting it durable: survives power loss.
    #[default]
    Always,
    /// Write every batch to the OS but never fsync: survives a process crash, not a power loss.
    /// For benchmarks and throwaway servers.
    Never,
}

/// How the store opens and when it asks for snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// On damage before the end of the log, truncate there (losing what follows) instead of
    /// refusing to start. Off by default: an operator must choose to lose data.
    pub accept_data_loss: bool,
    /// Log bytes written since the last snapshot after which [`Wal::snapshot_due`] says yes.
    pub snapshot_log_bytes_min: u64,
    /// Bytes of zeros the log keeps filled (and synced) ahead of its records, so that a
    /// batch's fdatasync overwrites allocated space and commits no size or extent change
    /// ([`wal`] module docs); 0 appends instead. The writer tops it up when it is idle, in
    /// pieces of at most [`wal::FILL_PIECE_LEN_MAX`], or when a batch would not fit.
    pub prealloc_bytes: u64,
    /// Planted bug (test builds only): recovery replays a torn last log record, its text cut
    /// where the crash cut it, as if it were whole. The simulator must catch it through the
    /// real log (`sim::tests`).
    #[cfg(any(test, feature = "planted"))]
    pub replay_torn_tail: bool,
    /// A planted bug: recovery forgets how many log bytes follow the snapshot, so a server
    /// that restarts more often than the log reaches `snapshot_log_bytes_min` never compacts
    /// (`Planted::RecoveryForgetsLogSize`).
    #[cfg(any(test, feature = "planted"))]
    pub forget_log_size: bool,
    /// A planted bug: recovery reads each segment without syncing what it read, so records a
    /// killed process wrote and never synced are replayed (and built on) while a power loss
    /// may still take them (`Planted::RecoveryReadsUnsynced`).
    #[cfg(any(test, feature = "planted"))]
    pub read_unsynced: bool,
    /// A planted bug: a snapshot written in pieces creates the segment it begins without
    /// syncing the directory, so records synced into that segment before the snapshot is in
    /// place go with its name when a power loss undoes the directory's changes
    /// (`Planted::SnapshotSegmentNameUnsynced`).
    #[cfg(any(test, feature = "planted"))]
    pub segment_name_unsynced: bool,
    /// Planted bug: a snapshot frees only the first file it covers, so every later snapshot
    /// leaves one more file on the disk (`Planted::SnapshotFreesFirstCovered`).
    #[cfg(any(test, feature = "planted"))]
    pub covered_first_only: bool,
    /// Planted bug: the writer reports a batch durable as soon as it hands it to the sync
    /// thread, before the sync ends (`Planted::DurableBeforeSync`).
    #[cfg(any(test, feature = "planted"))]
    pub report_on_flush: bool,
    /// Planted bug: when a sync ends, the writer reports the last record appended durable,
    /// though records appended during the sync were not in it (`Planted::SyncedReportsLast`).
    #[cfg(any(test, feature = "planted"))]
    pub report_last_append: bool,
    /// Planted bug: told to shut down while a sync is in flight, the writer stops at once,
    /// and the records it took behind that sync are never written
    /// (`Planted::StopWhileSyncing`).
    #[cfg(any(test, feature = "planted"))]
    pub stop_while_syncing: bool,
    /// Planted bug: the writer hands its sync thread a new batch while the last one is still
    /// being synced, which the hand-off does not allow (`Planted::SyncWhileSyncing`).
    #[cfg(any(test, feature = "planted"))]
    pub sync_while_syncing: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            accept_data_loss: false,
            snapshot_log_bytes_min: 64 << 20,
            prealloc_bytes: PREALLOC_BYTES_DEFAULT,
            #[cfg(any(test, feature = "planted"))]
            replay_torn_tail: false,
            #[cfg(any(test, feature = "planted"))]
            forget_log_size: false,
            #[cfg(any(test, feature = "planted"))]
            read_unsynced: false,
            #[cfg(any(test, feature = "planted"))]
            segment_name_unsynced: false,
            #[cfg(any(test, feature = "planted"))]
            covered_first_only: false,
            #[cfg(any(test, feature = "planted"))]
            report_on_flush: false,
            #[cfg(any(test, feature = "planted"))]
            report_last_append: false,
            #[cfg(any(test, feature = "planted"))]
            stop_while_syncing: false,
            #[cfg(any(test, feature = "planted"))]
            sync_while_syncing: false,
        }
    }
}

/// The default [`StoreOptions::prealloc_bytes`].
pub const PREALLOC_BYTES_DEFAULT: u64 = 4 << 20;

/// Why writing to the store failed. Every one of these is fatal for a server: acknowledging a
/// change that may not be durable would break the write-ahead rule.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("record cannot be encoded: {0}")]
    Encode(#[from] codec::EncodeError),
    #[error("lsn {got:?} appended where {expected:?} was expected")]
    LsnOutOfOrder { expected: Lsn, got: Lsn },
    #[error("snapshot at {snapshot:?} requested but the last appended lsn is {last:?}")]
    SnapshotLsnMismatch { snapshot: Lsn, last: Lsn },
    #[error("the log failed earlier and refuses further writes: what reached the disk is unknown")]
    Poisoned,
    #[error("the group-commit writer has stopped")]
    WriterStopped,
    #[error("the group-commit writer panicked")]
    WriterPanicked,
    #[error("cannot start the group-commit writer thread: {0}")]
    Spawn(#[source] std::io::Error),
}
