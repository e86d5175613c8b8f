//! The simulated disk behind the server: records handed to the server's real log writer, made
//! durable by a (timed) sync, and a crash that keeps what was synced, maybe some of what was
//! not, and maybe a torn last record.
//!
//! The simulator talks to storage through the [`SimStore`] seam. [`WriterStore`] runs the
//! server's log writer (its decisions, [`Committer`], and its queue, [`CommitQueue`]) over the
//! real write-ahead log on the store's in-memory disk ([`MemDisk`]), the writer's threads
//! played by the world's events; so a simulated crash goes through the real batching, syncs,
//! durable reports, snapshot steps and recovery, planted bugs included. [`WalStore`] is the
//! model checker's: the log alone, every append written through, synced and crashed by choice.

use rand_chacha::ChaCha20Rng;

#[cfg(any(test, feature = "planted"))]
use crate::core::planted::Planted;
use crate::core::{Lsn, Record};
use crate::store::codec::{self, frame_len_declared};
use crate::store::commit::{self, Command, Committer, SnapshotStep, Wait};
use crate::store::queue::CommitQueue;
use crate::store::{Disk, FsyncPolicy, MemDisk, StoreOptions, Wal};

/// The simulated log's preallocation step: small, so that a run fills space many times, both
/// ahead (after a sync, as the writer does when idle) and in a flush that outruns it.
pub const SIM_PREALLOC_BYTES: u64 = 512;

/// Commands the simulated writer takes at once (the server's is
/// [`crate::store::writer::BATCH_LEN_MAX`]): small, so that takes are capped and their
/// leftovers wake the writer again, as a loaded server's do.
pub const SIM_BATCH_LEN_MAX: usize = 3;

/// The most rounds of the store's threads ([`SimStore::run_round`]) a stop or a snapshot at
/// rest may take to end.
pub const ROUNDS_MAX: usize = 1_000;

/// What the simulator needs from a store: the server's side (records and snapshot requests
/// submitted), the store's threads' turns (run when the world's events say), and the faults.
pub trait SimStore {
    /// The server submits a record to the writer's queue: nothing is durable until a sync
    /// that covers it has ended and the writer has said so.
    fn submit(&mut self, lsn: Lsn, record: &Record);
    /// The server asks for a snapshot of `records`, the state as of `lsn` (the last submitted).
    fn request_snapshot(&mut self, lsn: Lsn, records: &[Record]);
    /// Whether enough was logged to ask for a snapshot now (and none asked for is unfinished).
    fn snapshot_due(&self) -> bool;
    /// Whether the writer has a reason to run now: what it waits for is queued.
    fn writer_ready(&self) -> bool;
    /// Whether the writer, with nothing queued, comes back after
    /// [`commit::SNAPSHOT_POLL_MS`] anyway (a snapshot has work).
    fn writer_polls(&self) -> bool;
    /// The writer thread's turn: takes what it waits for and does what it decides.
    fn writer_turn(&mut self) -> WriterTurn;
    /// The sync thread's sync ends (successfully): its report is queued for the writer.
    fn sync_done(&mut self);
    /// The helper that encodes the snapshot begun is done.
    fn snapshot_encoded(&mut self);
    /// Whether the sync thread is making a sync (handed out by a writer's turn, not yet
    /// ended by [`SimStore::sync_done`]).
    fn syncing(&self) -> bool;
    /// One round of the store's threads without the world's clock: the writer's turn, the
    /// helper's end, the sync's end, in that order (at rest, at a stop, in tests).
    fn run_round(&mut self) -> WriterTurn {
        let turn = self.writer_turn();
        self.snapshot_encoded();
        self.sync_done();
        turn
    }
    /// Power loss: keeps what was synced and, if `torn_writes`, maybe some of the rest.
    fn crash(&mut self, rng: &mut ChaCha20Rng, torn_writes: bool);
    /// The process dies: what it wrote stays on the disk as it was, synced or not (what it
    /// held in its own buffers and queues is gone).
    fn kill(&mut self);
    /// A graceful shutdown: the writer is told to stop and runs, with its sync thread and
    /// its helper, until it has committed everything submitted and ended (false if it has not
    /// after [`ROUNDS_MAX`] rounds); the disk then waits for recovery, as after a kill.
    fn stop(&mut self) -> bool;
    /// What recovery finds on the disk: the records to replay and the last lsn.
    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String>;
    /// Whether records were submitted that the writer has not reported durable.
    fn has_unsynced(&self) -> bool;
    /// Whether a snapshot is asked for and not finished (begun or not, in place or not, with
    /// every file it covers freed or not).
    fn snapshotting(&self) -> bool;
    /// The log bytes the store counts towards its next snapshot.
    fn log_bytes_since_snapshot(&self) -> Option<u64>;
    /// The files on its disk.
    fn file_names(&self) -> Option<Vec<String>>;
}

/// What a writer's turn did that the world must act on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriterTurn {
    /// Every record up to this lsn is durable: the writer's report to the server.
    pub durable: Option<Lsn>,
    /// A sync was handed to the sync thread: the world ends it later.
    pub sync_started: bool,
    /// A snapshot was begun: its helper starts encoding.
    pub snapshot_began: bool,
    /// The take was capped with commands left queued.
    pub capped: bool,
    /// Records were appended while a sync was in flight (they wait for the next).
    pub appended_while_syncing: bool,
    /// A sync was handed to the sync thread while its last one was still in flight, which
    /// the hand-off (`store::syncer::SyncSlot`: one request at a time) does not allow.
    pub second_sync: bool,
}

/// The server's log writer over the in-memory disk. See the [module docs](self).
pub struct WriterStore {
    committer: Option<Committer<MemDisk>>,
    /// The writer's queue; a snapshot request brings its encoded bytes.
    queue: CommitQueue<Command<Vec<u8>>>,
    /// Scratch space for a take (the server's writer keeps one too).
    commands: Vec<Command<Vec<u8>>>,
    /// The disk between a crash and the recovery that reopens it.
    crashed: Option<MemDisk>,
    options: StoreOptions,
    /// The sync the sync thread is making.
    sync: Option<(Lsn, crate::store::disk::SyncHandle)>,
    /// The snapshot's bytes while its helper encodes them, then once it is done.
    encoding: Option<Vec<u8>>,
    encoded: Option<Vec<u8>>,
    /// The writer waits for the helper's bytes (its turn ended blocked on them).
    waits_for_bytes: bool,
    /// As the server's writer publishes them: a snapshot asked for and not finished, and the
    /// log bytes since the last snapshot as of the last batch.
    snapshot_pending: bool,
    log_bytes_since_snapshot: u64,
    submitted: Lsn,
    reported: Lsn,
    /// The writer has stopped (after a shutdown).
    stopped: bool,
}

impl WriterStore {
    /// A new, empty store; `snapshot_log_bytes_min` small enough to snapshot during a run. Its
    /// log fills [`SIM_PREALLOC_BYTES`] of zeros ahead at a time, as the server's does (in
    /// bigger steps), so that crashes tear overwrites of filled space and recovery reads
    /// zero tails.
    pub fn new(snapshot_log_bytes_min: u64) -> Self {
        Self::with_options(store_options(snapshot_log_bytes_min))
    }

    /// A store with `bug` planted in its log or its writer (see [`planted_options`]).
    #[cfg(any(test, feature = "planted"))]
    pub fn planted(bug: Planted, snapshot_log_bytes_min: u64) -> Self {
        Self::with_options(planted_options(bug, store_options(snapshot_log_bytes_min)))
    }

    fn with_options(options: StoreOptions) -> Self {
        let disk = MemDisk::new().with_sync_handles();
        let mut store = WriterStore {
            committer: None,
            queue: CommitQueue::new(usize::MAX),
            commands: Vec::new(),
            crashed: Some(disk),
            options,
            sync: None,
            encoding: None,
            encoded: None,
            waits_for_bytes: false,
            snapshot_pending: false,
            log_bytes_since_snapshot: 0,
            submitted: Lsn(0),
            reported: Lsn(0),
            stopped: false,
        };
        let (records, _) = store.recover().expect("an empty disk opens");
        assert!(records.is_empty());
        store
    }

    /// The rest of a turn after its batch: a step of the snapshot in progress, and the
    /// turn's end.
    fn finish_turn(&mut self) {
        let Some(committer) = self.committer.as_mut() else { return };
        let encoded = &mut self.encoded;
        let step = committer.step_snapshot(|_| encoded.take().map(Ok), None);
        match step.expect("snapshots to a memory disk cannot fail") {
            SnapshotStep::MustWaitForBytes => self.waits_for_bytes = true,
            SnapshotStep::Done => {
                self.log_bytes_since_snapshot = committer.log_bytes_since_snapshot();
                self.snapshot_pending = false;
            }
            SnapshotStep::Idle | SnapshotStep::Stepped => {}
        }
        self.stopped = committer.end_turn().expect("filling a memory disk cannot fail");
    }

    /// The process is gone: its queue, its sync thread's sync and its helper with it.
    fn forget_process(&mut self) -> MemDisk {
        let committer = self.committer.take().expect("the store is open");
        self.queue = CommitQueue::new(usize::MAX);
        self.sync = None;
        self.encoding = None;
        self.encoded = None;
        self.waits_for_bytes = false;
        self.snapshot_pending = false;
        committer.into_wal().into_disk()
    }
}

impl SimStore for WriterStore {
    fn submit(&mut self, lsn: Lsn, record: &Record) {
        self.submitted = lsn;
        let queued = self.queue.push(Command::Record(lsn, record.clone()), false);
        assert!(queued.is_ok(), "the simulated writer's queue is never closed");
    }

    fn request_snapshot(&mut self, lsn: Lsn, records: &[Record]) {
        let bytes = codec::encode_snapshot(lsn, records).expect("a snapshot's records encode");
        self.snapshot_pending = true;
        let queued = self.queue.push(Command::Snapshot(lsn, bytes), true);
        assert!(queued.is_ok(), "the simulated writer's queue is never closed");
    }

    fn snapshot_due(&self) -> bool {
        let min = self.options.snapshot_log_bytes_min;
        commit::snapshot_due(self.snapshot_pending, self.log_bytes_since_snapshot, min)
    }

    fn writer_ready(&self) -> bool {
        let Some(committer) = &self.committer else { return false };
        match committer.wait() {
            _ if self.waits_for_bytes => false,
            Wait::For(wake) | Wait::Briefly(wake) => self.queue.ready(wake),
            Wait::No => true,
        }
    }

    fn writer_polls(&self) -> bool {
        let waits = self.committer.as_ref().map(Committer::wait);
        !self.waits_for_bytes && matches!(waits, Some(Wait::Briefly(_)))
    }

    fn writer_turn(&mut self) -> WriterTurn {
        let mut turn = WriterTurn::default();
        let runs = !self.waits_for_bytes && !self.stopped;
        let Some(committer) = self.committer.as_mut().filter(|_| runs) else { return turn };
        let mut commands = std::mem::take(&mut self.commands);
        if committer.wait() != Wait::No {
            self.queue.try_take(&mut commands, SIM_BATCH_LEN_MAX);
        }
        turn.capped = self.queue.ready(crate::store::queue::Wake::Any);
        turn.appended_while_syncing =
            committer.syncing() && commands.iter().any(|c| matches!(c, Command::Record(..)));
        for command in commands.drain(..) {
            let began = committer.apply(command).expect("a memory disk cannot fail");
            if let Some((_, bytes)) = began {
                self.encoding = Some(bytes);
                turn.snapshot_began = true;
            }
        }
        let end = committer.end_batch().expect("syncing a memory disk cannot fail");
        if end.snapshot_skipped {
            self.snapshot_pending = false;
        }
        if let Some(sync) = end.sync {
            turn.second_sync = self.sync.is_some();
            self.sync = Some(sync);
            turn.sync_started = true;
        }
        self.log_bytes_since_snapshot = committer.log_bytes_since_snapshot();
        if let Some(lsn) = end.durable {
            self.reported = lsn;
            turn.durable = Some(lsn);
        }
        self.commands = commands;
        self.finish_turn();
        turn
    }

    fn sync_done(&mut self) {
        let Some((lsn, file)) = self.sync.take() else { return };
        let queued = self.queue.push(Command::synced(lsn, &file), true);
        assert!(queued.is_ok(), "the simulated writer's queue is never closed");
    }

    fn syncing(&self) -> bool {
        self.sync.is_some()
    }

    fn snapshot_encoded(&mut self) {
        let Some(bytes) = self.encoding.take() else { return };
        self.encoded = Some(bytes);
        // A writer blocked on the bytes goes on with its turn as soon as they come.
        if std::mem::take(&mut self.waits_for_bytes) {
            self.finish_turn();
        }
    }

    fn crash(&mut self, rng: &mut ChaCha20Rng, torn_writes: bool) {
        let mut disk = self.forget_process();
        disk.crash_with(rng, torn_writes);
        self.crashed = Some(disk);
    }

    fn kill(&mut self) {
        self.crashed = Some(self.forget_process());
    }

    fn stop(&mut self) -> bool {
        let queued = self.queue.push(Command::Shutdown, true);
        assert!(queued.is_ok(), "the simulated writer's queue is never closed");
        for _ in 0..ROUNDS_MAX {
            if self.stopped {
                break;
            }
            self.run_round();
        }
        let stopped = self.stopped;
        self.crashed = Some(self.forget_process());
        stopped
    }

    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String> {
        let disk = self.crashed.take().expect("recovery follows a crash");
        let (wal, recovered) = Wal::open(disk, self.options).map_err(|e| e.to_string())?;
        self.log_bytes_since_snapshot = wal.log_bytes_since_snapshot();
        self.committer = Some(Committer::new(wal, FsyncPolicy::Always, true));
        self.stopped = false;
        self.submitted = recovered.last_lsn;
        self.reported = recovered.last_lsn;
        Ok((recovered.records, recovered.last_lsn))
    }

    fn has_unsynced(&self) -> bool {
        self.submitted > self.reported
    }

    fn snapshotting(&self) -> bool {
        self.snapshot_pending
    }

    fn log_bytes_since_snapshot(&self) -> Option<u64> {
        self.committer.as_ref().map(|c| c.log_bytes_since_snapshot())
    }

    fn file_names(&self) -> Option<Vec<String>> {
        let wal = self.committer.as_ref()?.wal();
        Some(wal.disk().list().expect("listing a memory disk cannot fail"))
    }
}

/// The simulated store's options: snapshots after `snapshot_log_bytes_min` log bytes, and
/// [`SIM_PREALLOC_BYTES`] filled ahead.
fn store_options(snapshot_log_bytes_min: u64) -> StoreOptions {
    let prealloc_bytes = SIM_PREALLOC_BYTES;
    StoreOptions { snapshot_log_bytes_min, prealloc_bytes, ..StoreOptions::default() }
}

/// `options` with `bug` planted, where it is one of the log's or its writer's bugs: a torn
/// record replayed ([`StoreOptions::replay_torn_tail`]), the log's size since the snapshot
/// forgotten ([`StoreOptions::forget_log_size`]), a segment read without syncing it
/// ([`StoreOptions::read_unsynced`]), a snapshot's segment created without syncing its name
/// ([`StoreOptions::segment_name_unsynced`]), a snapshot that frees only the first file it
/// covers ([`StoreOptions::covered_first_only`]), a batch reported durable when its sync
/// begins ([`StoreOptions::report_on_flush`]) or the last record appended reported durable
/// when a sync ends ([`StoreOptions::report_last_append`]), the writer stopped with a sync
/// in flight ([`StoreOptions::stop_while_syncing`]) or a second sync started during one
/// ([`StoreOptions::sync_while_syncing`]).
#[cfg(any(test, feature = "planted"))]
pub fn planted_options(bug: Planted, mut options: StoreOptions) -> StoreOptions {
    options.replay_torn_tail = bug == Planted::ReplayTornRecord;
    options.forget_log_size = bug == Planted::RecoveryForgetsLogSize;
    options.read_unsynced = bug == Planted::RecoveryReadsUnsynced;
    options.segment_name_unsynced = bug == Planted::SnapshotSegmentNameUnsynced;
    options.covered_first_only = bug == Planted::SnapshotFreesFirstCovered;
    options.report_on_flush = bug == Planted::DurableBeforeSync;
    options.report_last_append = bug == Planted::SyncedReportsLast;
    options.stop_while_syncing = bug == Planted::StopWhileSyncing;
    options.sync_while_syncing = bug == Planted::SyncWhileSyncing;
    options
}

/// The model checker's store: the real write-ahead log over the store's in-memory disk, every
/// append handed to the disk at once (unsynced, so a crash can keep or tear it), synced when
/// the model says, crashed by choice with [`WalStore::crash_keeping`]. Cloned with every state
/// the model copies.
#[derive(Clone, Debug)]
pub struct WalStore {
    wal: Option<Wal<MemDisk>>,
    /// The disk between a crash and the recovery that reopens it.
    crashed: Option<MemDisk>,
    options: StoreOptions,
}

impl WalStore {
    /// A new, empty store that never snapshots.
    pub fn new() -> Self {
        Self::with_options(store_options(u64::MAX))
    }

    /// A store with `bug` planted in its log (see [`planted_options`]).
    #[cfg(any(test, feature = "planted"))]
    pub fn planted(bug: Planted) -> Self {
        Self::with_options(planted_options(bug, store_options(u64::MAX)))
    }

    fn with_options(options: StoreOptions) -> Self {
        let (wal, recovered) = Wal::open(MemDisk::new(), options).expect("an empty disk opens");
        assert!(recovered.records.is_empty());
        WalStore { wal: Some(wal), crashed: None, options }
    }

    /// Appends a record and hands it to the disk, unsynced.
    pub fn append(&mut self, lsn: Lsn, record: &Record) {
        let wal = self.wal();
        wal.append(lsn, record).expect("appending to a memory disk cannot fail");
        wal.flush().expect("writing to a memory disk cannot fail");
    }

    /// Makes everything appended durable; returns the durable lsn.
    pub fn sync(&mut self) -> Lsn {
        let wal = self.wal();
        let durable = wal.sync().expect("syncing a memory disk cannot fail");
        // The server's writer fills ahead once everything is durable: so does the model.
        wal.extend_ahead().expect("filling a memory disk cannot fail");
        durable
    }

    /// A power loss chosen rather than drawn: of the records appended since the last sync, the
    /// first `kept` survive whole and, if `torn`, the one after them survives but for its last
    /// non-zero byte and what follows it (a torn write); everything else unsynced is lost.
    /// Follow with [`WalStore::recover`].
    pub fn crash_keeping(&mut self, kept: usize, torn: bool) {
        let mut disk = self.wal.take().expect("the store is open").into_disk();
        disk.crash_keeping(|_, tail| {
            let frame_end = |at: usize| {
                frame_len_declared(&tail[at..]).map(|len| at + len).filter(|&end| end <= tail.len())
            };
            let mut at = 0;
            for _ in 0..kept {
                match frame_end(at) {
                    Some(end) => at = end,
                    None => return at,
                }
            }
            match frame_end(at) {
                // Cut before the frame's last non-zero byte: cut where the frame ends in
                // zeros, over filled space that holds zeros, it would still read whole.
                Some(end) if torn => {
                    at + tail[at..end].iter().rposition(|&b| b != 0).expect("a length is set")
                }
                _ => at,
            }
        });
        self.crashed = Some(disk);
    }

    /// Whether records were appended since the last sync.
    pub fn has_unsynced(&self) -> bool {
        self.wal.as_ref().is_some_and(|wal| wal.last_lsn() > wal.durable_lsn())
    }

    /// What recovery finds on the disk after a crash: the records to replay and the last lsn.
    pub fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String> {
        let disk = self.crashed.take().expect("recovery follows a crash");
        let (wal, recovered) = Wal::open(disk, self.options).map_err(|e| e.to_string())?;
        self.wal = Some(wal);
        Ok((recovered.records, recovered.last_lsn))
    }

    fn wal(&mut self) -> &mut Wal<MemDisk> {
        self.wal.as_mut().expect("the store is open (not crashed)")
    }
}

impl Default for WalStore {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::AccountId;
    use rand::SeedableRng;

    fn delete(n: u64) -> Record {
        Record::Delete { account: AccountId(n) }
    }

    /// Runs the writer's turns, its syncs and its snapshot's encoding until it has nothing to
    /// do; returns the last lsn it reported durable.
    fn drain(store: &mut WriterStore) -> Option<Lsn> {
        let mut durable = None;
        for _ in 0..100 {
            if !store.writer_ready() && !store.writer_polls() && !store.syncing() {
                break;
            }
            durable = store.run_round().durable.or(durable);
        }
        durable
    }

    #[test]
    fn the_writer_store_recovers_what_it_reported_durable_after_a_crash() {
        for seed in 0..20 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut store = WriterStore::new(64);
            for n in 1..=10 {
                store.submit(Lsn(n), &delete(n));
                if n == 4 {
                    assert_eq!(drain(&mut store), Some(Lsn(4)));
                    assert!(!store.has_unsynced());
                }
                if n == 6 && store.snapshot_due() {
                    store.request_snapshot(Lsn(6), &(1..=6).map(delete).collect::<Vec<_>>());
                }
                if n == 8 {
                    // A sync under way, records queued behind it: a crash may take them.
                    store.writer_turn();
                }
            }
            assert!(store.has_unsynced());
            store.crash(&mut rng, true);
            let (records, last) = store.recover().unwrap();
            assert!(last.0 >= 4, "reported records survive: {last:?}");
            assert_eq!(records, (1..=last.0).map(delete).collect::<Vec<_>>());
            store.submit(Lsn(last.0 + 1), &delete(99));
            assert_eq!(drain(&mut store), Some(Lsn(last.0 + 1)));
        }
    }

    #[test]
    fn a_snapshot_asked_for_is_written_by_the_writers_turns() {
        let mut store = WriterStore::new(1);
        store.submit(Lsn(1), &delete(1));
        drain(&mut store);
        assert!(store.snapshot_due());
        store.request_snapshot(Lsn(1), &[delete(1)]);
        assert!(store.snapshotting() && !store.snapshot_due(), "one at a time");
        drain(&mut store);
        assert!(!store.snapshotting());
        let mut files = store.file_names().expect("open");
        files.sort();
        assert_eq!(files.len(), 2, "the snapshot and the segment after it: {files:?}");
        store.kill();
        let (records, last) = store.recover().unwrap();
        assert_eq!((records, last), (vec![delete(1)], Lsn(1)));
    }

    #[test]
    fn a_chosen_crash_keeps_whole_records_and_tears_the_next() {
        for (kept, torn, survivors) in [(0, false, 2), (1, false, 3), (1, true, 3), (3, true, 5)] {
            let mut store = WalStore::new();
            for n in 1..=2 {
                store.append(Lsn(n), &delete(n));
            }
            store.sync();
            for n in 3..=5 {
                store.append(Lsn(n), &delete(n));
            }
            assert!(store.has_unsynced());
            store.crash_keeping(kept, torn);
            let (records, last) = store.recover().unwrap();
            assert_eq!(last, Lsn(survivors), "kept {kept}, torn {torn}");
            assert_eq!(records, (1..=survivors).map(delete).collect::<Vec<_>>());
        }
    }
}
