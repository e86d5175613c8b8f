//! [`GroupCommit`]: the thread that writes the real server's log, one fsync per batch.
//!
//! The server submits each record as the core emits it and goes on; the writer drains everything
//! queued, appends it, syncs once and reports the last lsn of the batch durable. Under load a
//! batch grows to whatever arrived during the previous fsync, so the fsync cost is shared by
//! many records without any timer. With [`FsyncPolicy::Always`] the fsync runs on a sync
//! thread of its own ([`super::syncer`]), one at a time: while it runs, the writer reports the
//! previous batch and appends what arrives, which is synced as soon as the sync in flight is
//! done; so the report's work (the core's lock, the writes it releases) is off the disk's path. A failed write is fatal: the writer reports it through the
//! callback, stops, and every later call returns an error, since acknowledging a change that may
//! not be on disk would break the write-ahead rule.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::codec;
use super::commit::{self, Command, Committer, SnapshotStep, Wait, SNAPSHOT_POLL_MS};
use super::disk::{Disk, SyncHandle};
use super::pause::SnapshotPause;
use super::queue::CommitQueue;
use super::syncer::SyncSlot;
use super::wal::Wal;
use super::{FsyncPolicy, StoreError};
use crate::core::record::{Lsn, Record};

/// Records the queue holds before [`GroupCommit::submit`] blocks: back-pressure on a server
/// that produces records faster than the disk takes them.
pub const QUEUE_LEN_MAX: usize = 65_536;

/// Records appended before a batch is committed even if more are queued, bounding the memory
/// one batch buffers and the delay before its first record is reported.
pub const BATCH_LEN_MAX: usize = 4_096;

/// Told `Ok(lsn)` after each batch (every record up to `lsn` is durable), or `Err` once if the
/// writer fails, after which it stops. Runs on the writer thread: it must not call
/// [`GroupCommit::submit`], which could wait on a full queue that only this thread drains.
pub type DurableCallback = Box<dyn FnMut(Result<Lsn, &StoreError>) + Send>;

/// Builds a snapshot's records; run on the writer thread, off the caller's locks.
pub type SnapshotBuilder = Box<dyn FnOnce() -> Vec<Record> + Send>;

/// The writer's queue, shared with its submitters and its sync thread.
type Queue = CommitQueue<Command<SnapshotBuilder>>;

/// What the sync thread makes durable: the log's file, through every record up to `lsn`.
struct SyncRequest {
    lsn: Lsn,
    file: SyncHandle,
}

/// The group-commit writer thread and the handle to feed it.
#[derive(Debug)]
pub struct GroupCommit {
    queue: Arc<Queue>,
    thread: Option<JoinHandle<Result<(), StoreError>>>,
    /// Shared with the writer thread, which updates them after each batch.
    published: Arc<Published>,
    snapshot_log_bytes_min: u64,
}

/// What the writer thread tells the submitting side.
#[derive(Debug, Default)]
struct Published {
    log_bytes_since_snapshot: AtomicU64,
    /// A snapshot was requested and is not written yet. Until it is, asking for another would
    /// only copy the whole state again for nothing, under the caller's lock.
    snapshot_pending: AtomicBool,
    /// A test's hold on snapshots (see [`SnapshotPause`]); unset in every real server.
    snapshot_pause: OnceLock<SnapshotPause>,
}

impl GroupCommit {
    /// Starts the writer thread, which owns `wal` from now on.
    pub fn spawn<D: Disk + Send + 'static>(
        wal: Wal<D>,
        fsync: FsyncPolicy,
        mut on_durable: DurableCallback,
    ) -> Result<Self, StoreError> {
        let queue = Arc::new(Queue::new(QUEUE_LEN_MAX));
        let published = Arc::new(Published::default());
        published.log_bytes_since_snapshot.store(wal.log_bytes_since_snapshot(), Ordering::Relaxed);
        let snapshot_log_bytes_min = wal.options().snapshot_log_bytes_min;
        let for_writer = Arc::clone(&published);
        let syncer = match fsync {
            FsyncPolicy::Always => Some(Syncer::spawn(Arc::clone(&queue))?),
            FsyncPolicy::Never => None,
        };
        let receiver = Arc::clone(&queue);
        let thread = thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || {
                let slot = syncer.as_ref().map(|syncer| &*syncer.slot);
                let result = run(wal, fsync, &receiver, &mut on_durable, &for_writer, slot);
                // No one will take what comes now: submitters get an error instead of waiting
                // for room, and the sync thread's report is dropped.
                receiver.close();
                drop(syncer);
                if let Err(error) = &result {
                    tracing::error!(%error, "the log writer failed and stopped");
                    on_durable(Err(error));
                }
                result
            })
            .map_err(StoreError::Spawn)?;
        Ok(GroupCommit { queue, thread: Some(thread), published, snapshot_log_bytes_min })
    }

    /// Queues `record` as `lsn`. Lsns must be submitted in order, from one thread at a time (or
    /// under the lock that orders them). Blocks while the queue is full.
    pub fn submit(&self, lsn: Lsn, record: Record) -> Result<(), StoreError> {
        self.send(Command::Record(lsn, record))
    }

    /// Queues a snapshot of the state as of `lsn`, the last lsn submitted before it; it is
    /// written after those records, and replaces the log they are in.
    pub fn request_snapshot(&self, lsn: Lsn, records: Vec<Record>) -> Result<(), StoreError> {
        self.request_snapshot_with(lsn, Box::new(move || records))
    }

    /// [`GroupCommit::request_snapshot`] with records built later, by `build` on the writer
    /// thread: the caller only captures the state (e.g. a [`crate::core::SnapshotView`], an
    /// `Arc` clone) and never waits for the serialisation.
    pub fn request_snapshot_with(
        &self,
        lsn: Lsn,
        build: SnapshotBuilder,
    ) -> Result<(), StoreError> {
        // Set before sending, so the writer's clearing always comes after it.
        self.published.snapshot_pending.store(true, Ordering::Relaxed);
        self.send(Command::Snapshot(lsn, build))
    }

    /// Holds every later snapshot where `pause` says (a test seam; set it once, before the
    /// first snapshot is requested). A second pause is ignored.
    pub fn set_snapshot_pause(&self, pause: SnapshotPause) {
        let _ = self.published.snapshot_pause.set(pause);
    }

    /// Bytes logged since the last snapshot, as of the last batch committed.
    pub fn log_bytes_since_snapshot(&self) -> u64 {
        self.published.log_bytes_since_snapshot.load(Ordering::Relaxed)
    }

    /// Whether enough has been logged since the last snapshot to ask for a new one, and no
    /// snapshot already requested is still waiting to be written.
    pub fn snapshot_due(&self) -> bool {
        let pending = self.published.snapshot_pending.load(Ordering::Relaxed);
        commit::snapshot_due(pending, self.log_bytes_since_snapshot(), self.snapshot_log_bytes_min)
    }

    /// Commits everything submitted, stops the thread and returns the error that stopped it
    /// earlier, if one did.
    pub fn shutdown(mut self) -> Result<(), StoreError> {
        self.finish()
    }

    fn send(&self, command: Command<SnapshotBuilder>) -> Result<(), StoreError> {
        let urgent = command.is_urgent();
        self.queue.push(command, urgent).map_err(|_| StoreError::WriterStopped)
    }

    fn finish(&mut self) -> Result<(), StoreError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        // A failed send means the thread has already stopped; joining it reports why.
        let _ = self.send(Command::Shutdown);
        thread.join().unwrap_or(Err(StoreError::WriterPanicked))
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        if let Err(error) = self.finish() {
            tracing::error!(%error, "the log writer had failed");
        }
    }
}

/// The sync thread: makes each batch durable while the writer goes on (see
/// [`super::syncer`]), and reports back through the writer's own queue.
struct Syncer {
    slot: Arc<SyncSlot<SyncRequest>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn spawn(reports: Arc<Queue>) -> Result<Self, StoreError> {
        let slot = Arc::new(SyncSlot::default());
        let served = Arc::clone(&slot);
        let thread = thread::Builder::new()
            .name("store-sync".into())
            .spawn(move || {
                served.serve(|SyncRequest { lsn, file }| {
                    // Fails only once the writer has stopped, which asks for no more.
                    let _ = reports.push(Command::synced(lsn, &file), true);
                });
            })
            .map_err(StoreError::Spawn)?;
        Ok(Syncer { slot, thread: Some(thread) })
    }
}

impl Drop for Syncer {
    /// Ends the thread once it has served what it was asked.
    fn drop(&mut self) {
        self.slot.stop();
        if self.thread.take().is_some_and(|thread| thread.join().is_err()) {
            tracing::error!("the log's sync thread panicked");
        }
    }
}

/// Starts the helper thread that builds a snapshot's records from the captured state and
/// encodes them, off the writer's path.
fn spawn_encoder(
    lsn: Lsn,
    build: SnapshotBuilder,
) -> Result<Receiver<Result<Vec<u8>, StoreError>>, StoreError> {
    let (sender, encoded) = mpsc::channel();
    thread::Builder::new()
        .name("store-snapshot".into())
        .spawn(move || {
            let bytes = codec::encode_snapshot(lsn, &build()).map_err(StoreError::from);
            let _ = sender.send(bytes);
        })
        .map_err(StoreError::Spawn)?;
    Ok(encoded)
}

/// The encoder's bytes, if it is done (waiting for it if `wait`).
fn receive(
    encoded: Option<&Receiver<Result<Vec<u8>, StoreError>>>,
    wait: bool,
) -> Option<Result<Vec<u8>, StoreError>> {
    let encoded = encoded?;
    if wait {
        return Some(encoded.recv().unwrap_or(Err(StoreError::WriterPanicked)));
    }
    match encoded.try_recv() {
        Ok(bytes) => Some(bytes),
        Err(mpsc::TryRecvError::Empty) => None,
        Err(mpsc::TryRecvError::Disconnected) => Some(Err(StoreError::WriterPanicked)),
    }
}

/// The writer's loop: takes what its [`Committer`] waits for, applies it, and does what the
/// committer asks. With a sync thread (`syncer`), a batch is appended and handed to it, and
/// while it syncs the writer reports the previous batch and appends what comes meanwhile,
/// which goes into the next sync; without one (`--fsync never`, or a disk that cannot sync
/// from another thread) each batch is committed here.
fn run<D: Disk>(
    wal: Wal<D>,
    fsync: FsyncPolicy,
    queue: &Queue,
    on_durable: &mut DurableCallback,
    published: &Published,
    syncer: Option<&SyncSlot<SyncRequest>>,
) -> Result<(), StoreError> {
    let mut committer = Committer::new(wal, fsync, syncer.is_some());
    let mut encoded = None;
    let mut commands = Vec::new();
    loop {
        match committer.wait() {
            Wait::For(wake) => queue.take(&mut commands, BATCH_LEN_MAX, wake, None),
            Wait::Briefly(wake) => {
                let poll = Some(Duration::from_millis(SNAPSHOT_POLL_MS));
                queue.take(&mut commands, BATCH_LEN_MAX, wake, poll);
            }
            Wait::No => commands.clear(),
        }
        for command in commands.drain(..) {
            if let Some((lsn, build)) = committer.apply(command)? {
                encoded = Some(spawn_encoder(lsn, build)?);
            }
        }
        let end = committer.end_batch()?;
        if end.snapshot_skipped {
            published.snapshot_pending.store(false, Ordering::Relaxed);
        }
        if let (Some((lsn, file)), Some(slot)) = (end.sync, syncer) {
            slot.request(SyncRequest { lsn, file });
        }
        publish_log_bytes(published, &committer);
        if let Some(lsn) = end.durable {
            on_durable(Ok(lsn));
        }
        // On shutdown a snapshot in progress is finished first: it was asked for, and it is
        // cheap to complete compared with replaying the log it replaces. Told to wait for its
        // bytes, the encoder's channel blocks until they come.
        let pause = published.snapshot_pause.get();
        let step = committer.step_snapshot(|wait| receive(encoded.as_ref(), wait), pause)?;
        if step == SnapshotStep::Done {
            encoded = None;
            publish_log_bytes(published, &committer);
            // After the byte count, so the count that made the snapshot due is gone first.
            published.snapshot_pending.store(false, Ordering::Relaxed);
        }
        if committer.end_turn()? {
            return Ok(());
        }
    }
}

fn publish_log_bytes<D: Disk>(published: &Published, committer: &Committer<D>) {
    let bytes = committer.log_bytes_since_snapshot();
    published.log_bytes_since_snapshot.store(bytes, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{AccountId, MsgId};
    use crate::store::disk::tests::TempDir;
    use crate::store::disk::FsDisk;
    use crate::store::StoreOptions;
    use std::sync::Mutex;

    fn msg(n: u64) -> Record {
        Record::Message {
            id: MsgId(n),
            from: "bo".into(),
            to: AccountId(n % 7),
            text: format!("hello {n}"),
        }
    }

    fn open_wal(dir: &TempDir) -> (Wal<FsDisk>, crate::store::Recovered) {
        let disk = FsDisk::open(&dir.0).expect("open dir");
        Wal::open(disk, StoreOptions::default()).expect("recovers")
    }

    type Reports = Arc<Mutex<Vec<Result<Lsn, String>>>>;

    /// A callback recording every report, and the shared list it records into.
    fn recorder() -> (DurableCallback, Reports) {
        let reports = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&reports);
        let callback: DurableCallback = Box::new(move |report: Result<Lsn, &StoreError>| {
            sink.lock().expect("unpoisoned").push(report.map_err(|e| e.to_string()));
        });
        (callback, reports)
    }

    #[test]
    fn records_from_many_threads_are_all_durable_after_shutdown() {
        let dir = TempDir::new("writer");
        let (wal, _) = open_wal(&dir);
        let (callback, reports) = recorder();
        let writer = GroupCommit::spawn(wal, FsyncPolicy::Always, callback).expect("spawn");
        // Like the server's core, a lock hands out lsns, so they are submitted in order.
        let lsn_next = Mutex::new(1u64);
        thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..250 {
                        let mut next = lsn_next.lock().expect("unpoisoned");
                        writer.submit(Lsn(*next), msg(*next)).expect("submit");
                        *next += 1;
                    }
                });
            }
        });
        writer.shutdown().expect("clean shutdown");

        let reports = reports.lock().expect("unpoisoned").clone();
        let lsns: Vec<u64> = reports.iter().map(|r| r.clone().expect("no failure").0).collect();
        assert!(lsns.windows(2).all(|w| w[0] < w[1]), "reports must increase: {lsns:?}");
        assert_eq!(lsns.last(), Some(&1000));
        let (_, recovered) = open_wal(&dir);
        assert_eq!(recovered.records, (1..=1000).map(msg).collect::<Vec<_>>());
    }

    #[test]
    fn a_snapshot_request_is_written_after_the_records_before_it() {
        let dir = TempDir::new("writer-snapshot");
        let (wal, _) = open_wal(&dir);
        let (callback, reports) = recorder();
        let writer = GroupCommit::spawn(wal, FsyncPolicy::Never, callback).expect("spawn");
        (1..=10).for_each(|n| writer.submit(Lsn(n), msg(n)).expect("submit"));
        writer.request_snapshot(Lsn(10), (1..=10).map(msg).collect()).expect("request");
        (11..=12).for_each(|n| writer.submit(Lsn(n), msg(n)).expect("submit"));
        writer.shutdown().expect("clean shutdown");

        assert_eq!(reports.lock().expect("unpoisoned").last(), Some(&Ok(Lsn(12))));
        let (_, recovered) = open_wal(&dir);
        assert_eq!(recovered.snapshot_lsn, Lsn(10));
        assert_eq!(recovered.records, (1..=12).map(msg).collect::<Vec<_>>());
    }

    #[test]
    fn a_write_error_is_reported_and_stops_the_writer() {
        let dir = TempDir::new("writer-error");
        let (wal, _) = open_wal(&dir);
        let (callback, reports) = recorder();
        let writer = GroupCommit::spawn(wal, FsyncPolicy::Always, callback).expect("spawn");
        writer.submit(Lsn(1), msg(1)).expect("submit");
        writer.submit(Lsn(3), msg(3)).expect("queued before the writer sees it");
        let error = writer.shutdown().expect_err("the gap must surface");
        assert!(
            matches!(error, StoreError::LsnOutOfOrder { expected: Lsn(2), got: Lsn(3) }),
            "{error}"
        );
        let reports = reports.lock().expect("unpoisoned").clone();
        assert!(matches!(reports.last(), Some(Err(text)) if text.contains("lsn")), "{reports:?}");
    }

    #[test]
    fn log_bytes_are_published_after_each_batch() {
        let dir = TempDir::new("writer-bytes");
        let (wal, _) = open_wal(&dir);
        let (done_sender, done) = mpsc::channel();
        let callback: DurableCallback = Box::new(move |report: Result<Lsn, &StoreError>| {
            let _ = done_sender.send(report.is_ok());
        });
        let writer = GroupCommit::spawn(wal, FsyncPolicy::Never, callback).expect("spawn");
        assert_eq!(writer.log_bytes_since_snapshot(), 0);
        writer.submit(Lsn(1), msg(1)).expect("submit");
        assert_eq!(done.recv(), Ok(true));
        assert!(writer.log_bytes_since_snapshot() > 0);
        assert!(!writer.snapshot_due(), "one record is far below the default threshold");
        writer.shutdown().expect("clean shutdown");
    }

    /// A memory disk whose snapshot writes wait until the test lets them through.
    struct HeldSnapshots {
        inner: crate::store::MemDisk,
        release: mpsc::Receiver<()>,
    }

    impl Disk for HeldSnapshots {
        fn list(&self) -> Result<Vec<String>, crate::store::DiskError> {
            self.inner.list()
        }
        fn read(&self, name: &str) -> Result<Vec<u8>, crate::store::DiskError> {
            self.inner.read(name)
        }
        fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), crate::store::DiskError> {
            self.inner.append(name, bytes)
        }
        fn write_at(
            &mut self,
            name: &str,
            offset: u64,
            bytes: &[u8],
        ) -> Result<(), crate::store::DiskError> {
            self.inner.write_at(name, offset, bytes)
        }
        fn sync(&mut self, name: &str) -> Result<(), crate::store::DiskError> {
            self.inner.sync(name)
        }
        fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), crate::store::DiskError> {
            if name.ends_with(".tmp") {
                self.release.recv().expect("the test releases the snapshot");
            }
            self.inner.write_new(name, bytes)
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), crate::store::DiskError> {
            self.inner.rename(from, to)
        }
        fn sync_dir(&mut self) -> Result<(), crate::store::DiskError> {
            self.inner.sync_dir()
        }
        fn remove(&mut self, name: &str) -> Result<(), crate::store::DiskError> {
            self.inner.remove(name)
        }
        fn truncate(&mut self, name: &str, len: u64) -> Result<(), crate::store::DiskError> {
            self.inner.truncate(name, len)
        }
    }

    #[test]
    fn a_snapshot_is_not_due_again_while_one_is_being_written() {
        let (release_sender, release) = mpsc::channel();
        let disk = HeldSnapshots { inner: crate::store::MemDisk::new(), release };
        let options = StoreOptions { snapshot_log_bytes_min: 1, ..StoreOptions::default() };
        let (wal, _) = Wal::open(disk, options).expect("recovers");
        let (done_sender, done) = mpsc::channel();
        let callback: DurableCallback = Box::new(move |report: Result<Lsn, &StoreError>| {
            let _ = done_sender.send(report.map_err(|e| e.to_string()));
        });
        let writer = GroupCommit::spawn(wal, FsyncPolicy::Always, callback).expect("spawn");
        writer.submit(Lsn(1), msg(1)).expect("submit");
        assert_eq!(done.recv(), Ok(Ok(Lsn(1))));
        assert!(writer.snapshot_due());
        writer.request_snapshot(Lsn(1), vec![msg(1)]).expect("request");
        // The writer is held inside the snapshot (or has not reached it): the log still holds
        // every byte that made it due, yet asking again would only copy the state twice.
        assert!(!writer.snapshot_due());
        writer.submit(Lsn(2), msg(2)).expect("submit");
        assert!(!writer.snapshot_due());
        release_sender.send(()).expect("release");
        assert_eq!(done.recv(), Ok(Ok(Lsn(2))));
        // The snapshot is written in pieces after the batch that asked for it: wait for it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !writer.snapshot_due() {
            assert!(std::time::Instant::now() < deadline, "due again once the snapshot is written");
            thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(writer.log_bytes_since_snapshot() > 0, "record 2 was logged after the snapshot");
        writer.shutdown().expect("clean shutdown");
    }
}
