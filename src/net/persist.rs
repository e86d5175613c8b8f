//! The file store behind the adapter: recovery at start, group commit while running.
//!
//! The group-commit writer reports durability through a callback on its own thread. That
//! callback must never wait for the core's lock: a thread holding the lock may be blocked in
//! `submit` waiting for room in the writer's queue, which only the writer can make. So it calls
//! [`Shared::durable`], which feeds the core only if the lock is free and otherwise leaves the
//! report to the thread holding it: no thread of its own, no hand-off.

use std::io;
use std::path::Path;

use rand_chacha::ChaCha20Rng;

use super::driver::Shared;
use crate::core::{self, Lsn, Record, Server, SnapshotView};
use crate::host::sync::{Arc, Mutex};
use crate::host::RecordSink;
use crate::store::{
    FsDisk, FsyncPolicy, GroupCommit, SnapshotPause, StoreError, StoreOptions, Wal,
};

/// Records go to the write-ahead log through the group-commit writer.
pub(crate) struct WalSink {
    writer: Option<GroupCommit>,
}

impl RecordSink for WalSink {
    fn persist(&mut self, lsn: Lsn, record: Record) {
        let writer = self.writer.as_ref().expect("persist after shutdown");
        if let Err(error) = writer.submit(lsn, record) {
            fatal(&error);
        }
    }

    fn is_synchronous(&self) -> bool {
        false
    }

    fn snapshot_due(&self) -> bool {
        self.writer.as_ref().is_some_and(GroupCommit::snapshot_due)
    }

    fn request_snapshot(&mut self, view: SnapshotView) {
        let writer = self.writer.as_ref().expect("snapshot after shutdown");
        // Only the Arc clone was taken under the lock; the records are built by the writer.
        let lsn = view.lsn();
        if let Err(error) = writer.request_snapshot_with(lsn, Box::new(move || view.records())) {
            fatal(&error);
        }
    }

    fn shutdown(&mut self) {
        if let Some(writer) = self.writer.take() {
            if let Err(error) = writer.shutdown() {
                fatal(&error);
            }
        }
    }
}

/// A log that cannot be written leaves the server unable to acknowledge anything, and after a
/// failed fsync the file's contents are unknown. As databases do, stop at once: recovery from
/// the log on the next start is the only safe way on.
fn fatal(error: &StoreError) -> ! {
    tracing::error!(%error, "the write-ahead log failed; stopping the server");
    eprintln!("chatroom: the write-ahead log failed: {error}; stopping (restart recovers)");
    std::process::abort();
}

/// Where the writer's callback reports: the adapter's [`Shared`], known only once the server
/// recovered from the store (and let go at shutdown, which ends the cycle
/// `Shared` -> sink -> writer -> callback -> `Shared`).
#[derive(Default)]
pub(crate) struct Durability {
    shared: Mutex<Option<Arc<Shared>>>,
}

impl Durability {
    /// Reports go to `shared` from now on.
    pub fn attach(&self, shared: Arc<Shared>) {
        *self.shared.lock().expect("durability lock") = Some(shared);
    }

    /// Lets go of the adapter (shutdown, after the writer's last report).
    pub fn detach(&self) {
        self.shared.lock().expect("durability lock").take();
    }

    fn report(&self, lsn: Lsn) {
        let shared = self.shared.lock().expect("durability lock").clone();
        // No record is persisted before the adapter exists, so none is reported before.
        if let Some(shared) = shared {
            shared.durable(lsn);
        }
    }
}

impl WalSink {
    /// Holds the writer's snapshots where `pause` says (tests only; see [`SnapshotPause`]).
    pub(crate) fn set_snapshot_pause(&self, pause: SnapshotPause) {
        if let Some(writer) = &self.writer {
            writer.set_snapshot_pause(pause);
        }
    }
}

/// Opens (or creates) the store in `dir`, recovers the server from it, and starts the writer.
pub(crate) fn open(
    dir: &Path,
    fsync: FsyncPolicy,
    options: StoreOptions,
    config: core::Config,
    rng: ChaCha20Rng,
    durability: Arc<Durability>,
) -> io::Result<(Server, WalSink)> {
    let started = std::time::Instant::now();
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    let disk = FsDisk::open(dir).map_err(|e| io::Error::other(e.to_string()))?;
    let (wal, recovered) = Wal::open(disk, options).map_err(|e| {
        invalid(format!(
            "{e} (in {}); to start anyway, start with --accept-data-loss",
            dir.display()
        ))
    })?;
    for warning in &recovered.warnings {
        tracing::warn!(%warning, "recovery");
    }
    let records_len = recovered.records.len();
    let (snapshot_lsn, last_lsn) = (recovered.snapshot_lsn, recovered.last_lsn);
    let server = Server::recover(config, rng, recovered.records, last_lsn)
        .map_err(|e| invalid(format!("{e} (in {})", dir.display())))?;
    tracing::info!(
        dir = %dir.display(),
        records = records_len,
        snapshot_lsn = snapshot_lsn.0,
        last_lsn = last_lsn.0,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered"
    );
    let callback = Box::new(move |report: Result<Lsn, &StoreError>| match report {
        Ok(lsn) => durability.report(lsn),
        Err(error) => fatal(error),
    });
    let writer =
        GroupCommit::spawn(wal, fsync, callback).map_err(|e| io::Error::other(e.to_string()))?;
    Ok((server, WalSink { writer: Some(writer) }))
}
