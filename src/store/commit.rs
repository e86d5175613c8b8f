//! [`Committer`]: what the log writer decides, with no thread, queue or clock of its own.
//!
//! The server's writer thread ([`super::writer`]) takes commands from its queue, hands them to
//! a `Committer`, and does what it says: hand a sync to the sync thread, report records
//! durable, feed a snapshot its encoded bytes. The simulator's store (`sim::disk::WriterStore`)
//! drives the same `Committer` from the world's events (the writer's turn, the sync's end, the
//! encoder's end), so the batching, the sync in flight, the durable reports and the snapshot's
//! steps that ship are what the simulator crashes, not a copy of them.
//!
//! A turn is: [`Committer::wait`] says what to take; each command taken goes to
//! [`Committer::apply`]; [`Committer::end_batch`] starts the next sync and says what became
//! durable; [`Committer::step_snapshot`] advances a snapshot in progress; [`Committer::end_turn`]
//! fills the log's space ahead when idle and says whether the writer is done.

use super::disk::{Disk, DiskError, SyncHandle};
use super::pause::SnapshotPause;
use super::queue::Wake;
use super::snapshotting::{Progress, Snapshotting};
use super::wal::Wal;
use super::{FsyncPolicy, StoreError};
use crate::core::record::{Lsn, Record};

/// What the writer's queue carries; `B` is what a snapshot request brings to build its bytes
/// from (a closure for the server, the encoded bytes for the simulator).
pub enum Command<B> {
    Record(Lsn, Record),
    /// A snapshot of the state as of the lsn, the last submitted before it.
    Snapshot(Lsn, B),
    /// From the sync thread: the sync of every record up to the lsn is done.
    Synced(Lsn, Result<(), DiskError>),
    Shutdown,
}

impl<B> Command<B> {
    /// The sync thread's work: syncs `file` through every record up to `lsn`, and says how
    /// it went.
    pub fn synced(lsn: Lsn, file: &SyncHandle) -> Self {
        Command::Synced(lsn, file.sync())
    }

    /// Whether it must wake a writer that waits for its sync thread (see [`super::queue`]):
    /// everything but a record, which waits for the sync in flight to end anyway.
    pub fn is_urgent(&self) -> bool {
        !matches!(self, Command::Record(..))
    }
}

/// Whether the server should ask for a snapshot: enough logged since the last one
/// (`log_bytes_since_snapshot` as of the writer's last batch, against `log_bytes_min`), and
/// none already asked for is unfinished (`pending`): asking again would only copy the whole
/// state again for nothing.
pub fn snapshot_due(pending: bool, log_bytes_since_snapshot: u64, log_bytes_min: u64) -> bool {
    !pending && log_bytes_since_snapshot >= log_bytes_min
}

/// What the writer waits for before its next take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Take once a command `Wake` asks for is queued.
    For(Wake),
    /// The same, but a snapshot has work: come back after [`SNAPSHOT_POLL_MS`] at most.
    Briefly(Wake),
    /// Stopping with no sync in flight: take nothing, finish the turn.
    No,
}

/// How long a writer with snapshot work waits for records before it steps the snapshot.
pub const SNAPSHOT_POLL_MS: u64 = 1;

/// What a batch's end asks of the writer's owner.
#[derive(Default)]
pub struct BatchEnd {
    /// A sync to hand to the sync thread: every record up to the lsn, through the handle.
    pub sync: Option<(Lsn, SyncHandle)>,
    /// Every record up to this lsn is durable now: report it.
    pub durable: Option<Lsn>,
    /// A snapshot was asked for that the last one already covers: none is in progress.
    pub snapshot_skipped: bool,
}

/// What a snapshot step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotStep {
    /// No snapshot may step now (none in progress, the batch that began it is not durable,
    /// its bytes are not ready, or a test's pause holds it).
    Idle,
    /// The writer must wait for the bytes before it does anything else: the log grew too far
    /// past the snapshot, or the writer is stopping.
    MustWaitForBytes,
    Stepped,
    /// The snapshot is in place and every file it covers is gone.
    Done,
}

/// The log writer's state between turns. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Committer<D: Disk> {
    wal: Wal<D>,
    fsync: FsyncPolicy,
    /// Syncs go to a sync thread ([`BatchEnd::sync`]) rather than run on the writer.
    sync_thread: bool,
    /// The last lsn made durable (with [`FsyncPolicy::Never`]: handed to the disk).
    durable: Lsn,
    reported: Lsn,
    snapshot: Option<Snapshotting>,
    /// A snapshot was begun in this batch.
    snapshot_began: bool,
    snapshot_skipped: bool,
    stopping: bool,
    /// The lsn the sync thread is making durable, while it is.
    syncing: Option<Lsn>,
}

impl<D: Disk> Committer<D> {
    /// A writer that owns `wal`; with `sync_thread` (and [`FsyncPolicy::Always`]) its syncs
    /// are handed out, else made on the writer's own turn.
    pub fn new(wal: Wal<D>, fsync: FsyncPolicy, sync_thread: bool) -> Self {
        let durable = wal.durable_lsn();
        Committer {
            wal,
            fsync,
            sync_thread,
            durable,
            reported: durable,
            snapshot: None,
            snapshot_began: false,
            snapshot_skipped: false,
            stopping: false,
            syncing: None,
        }
    }

    /// What to take next. While a sync is in flight, records wait for it to end (the next
    /// sync starts then), so only its report, a snapshot request or the shutdown is worth
    /// waking for.
    pub fn wait(&self) -> Wait {
        let wake = if self.syncing.is_some() { Wake::Urgent } else { Wake::Any };
        match (self.stopping, self.syncing.is_some()) {
            // Only the sync thread's report can still come.
            (true, true) => Wait::For(Wake::Urgent),
            (true, false) => Wait::No,
            // Records first, but do not sleep while a snapshot has work.
            (false, false) if self.snapshot.is_some() => Wait::Briefly(wake),
            (false, _) => Wait::For(wake),
        }
    }

    /// Applies one command taken; a snapshot request that begins a snapshot gives back its lsn
    /// and what it brought, for the owner to encode its bytes from.
    pub fn apply<B>(&mut self, command: Command<B>) -> Result<Option<(Lsn, B)>, StoreError> {
        match command {
            Command::Record(lsn, record) => self.wal.append(lsn, &record)?,
            Command::Snapshot(lsn, build) => {
                // The owner asks for no second snapshot while one is in progress.
                debug_assert!(self.snapshot.is_none(), "a snapshot requested while one is written");
                match Snapshotting::begin(&mut self.wal, lsn)? {
                    Some(steps) => {
                        self.snapshot = Some(steps);
                        self.snapshot_began = true;
                        return Ok(Some((lsn, build)));
                    }
                    None => self.snapshot_skipped = true,
                }
            }
            Command::Synced(lsn, result) => {
                result?;
                self.wal.synced(lsn);
                self.syncing = None;
                self.durable = self.durable.max(self.synced_report(lsn));
            }
            // Submitted last: nothing follows it.
            Command::Shutdown => self.stopping = true,
        }
        Ok(None)
    }

    /// Ends the batch of commands applied: starts the next sync before the last one is
    /// reported (the report wakes the threads that write the released pushes and replies, and
    /// they run while the disk syncs), and says what to report.
    pub fn end_batch(&mut self) -> Result<BatchEnd, StoreError> {
        let mut end = BatchEnd {
            snapshot_skipped: std::mem::take(&mut self.snapshot_skipped),
            ..BatchEnd::default()
        };
        if let (true, Some(steps)) = (std::mem::take(&mut self.snapshot_began), &mut self.snapshot)
        {
            steps.began_in_batch_ending(self.wal.last_lsn());
        }
        if (self.syncing.is_none() || self.syncs_twice()) && self.wal.last_lsn() > self.durable {
            let offload = self.sync_thread && !self.stopping && self.fsync == FsyncPolicy::Always;
            let handed = if offload { self.wal.flush_for_sync()? } else { None };
            match handed {
                Some((lsn, file)) => {
                    self.syncing = Some(lsn);
                    self.report_flushed(lsn);
                    end.sync = Some((lsn, file));
                }
                None => self.durable = commit(&mut self.wal, self.fsync)?,
            }
        }
        if self.durable > self.reported {
            self.reported = self.durable;
            end.durable = Some(self.durable);
        }
        Ok(end)
    }

    /// One step of the snapshot in progress, once the batch that began it is durable.
    /// `bytes(wait)` gives its encoded bytes if they are ready while it still wants them
    /// (`wait`: the writer stops, or the log outgrew the snapshot threshold three times over
    /// meanwhile, so it must wait for them rather than go on); `pause` is a test's hold.
    pub fn step_snapshot(
        &mut self,
        bytes: impl FnOnce(bool) -> Option<Result<Vec<u8>, StoreError>>,
        pause: Option<&SnapshotPause>,
    ) -> Result<SnapshotStep, StoreError> {
        let Some(steps) = self.snapshot.as_mut().filter(|s| s.may_step(self.durable)) else {
            return Ok(SnapshotStep::Idle);
        };
        if steps.wants_bytes() {
            let grown =
                self.wal.log_bytes_since_snapshot().saturating_sub(steps.log_bytes_at_start());
            let behind = grown >= self.wal.options().snapshot_log_bytes_min.saturating_mul(3);
            let wait = self.stopping || behind;
            match bytes(wait) {
                Some(encoded) => steps.encoded(encoded?),
                None if wait => return Ok(SnapshotStep::MustWaitForBytes),
                None => return Ok(SnapshotStep::Idle),
            }
        }
        if steps.writing() && pause.is_some_and(|p| !p.allows(steps.pieces_written())) {
            return Ok(SnapshotStep::Idle);
        }
        if steps.step(&mut self.wal)? == Progress::Done {
            self.snapshot = None;
            return Ok(SnapshotStep::Done);
        }
        Ok(SnapshotStep::Stepped)
    }

    /// Ends the turn: with everything durable and no sync in flight, fills the log's space
    /// ahead (when less than a whole step is filled ahead), so no batch waits behind this
    /// fill's sync; true once the writer has stopped (shut down, everything durable, no
    /// snapshot left).
    pub fn end_turn(&mut self) -> Result<bool, StoreError> {
        let idle = self.syncing.is_none() && self.wal.last_lsn() == self.durable;
        if self.stopping && (idle || self.stops_early()) && self.snapshot.is_none() {
            return Ok(true);
        }
        if idle && !self.stopping {
            self.wal.extend_ahead()?;
        }
        Ok(false)
    }

    /// The log bytes since the last snapshot, as the owner publishes them.
    pub fn log_bytes_since_snapshot(&self) -> u64 {
        self.wal.log_bytes_since_snapshot()
    }

    /// Whether a sync is in flight on the sync thread.
    pub fn syncing(&self) -> bool {
        self.syncing.is_some()
    }

    /// Whether records were appended that are not durable yet.
    pub fn has_unsynced(&self) -> bool {
        self.wal.last_lsn() > self.durable
    }

    /// The log it writes.
    pub fn wal(&self) -> &Wal<D> {
        &self.wal
    }

    /// Gives the log back (its snapshot in progress, if any, is abandoned).
    pub fn into_wal(self) -> Wal<D> {
        self.wal
    }

    /// What a sync of every record up to `lsn` makes durable: `lsn` itself, but for a planted
    /// bug that reports the last record appended (appended after the sync began).
    fn synced_report(&self, lsn: Lsn) -> Lsn {
        #[cfg(any(test, feature = "planted"))]
        if self.wal.options().report_last_append {
            return self.wal.last_lsn();
        }
        lsn
    }

    /// The planted bug of starting a sync while one is in flight; never outside test and
    /// `planted` builds.
    fn syncs_twice(&self) -> bool {
        #[cfg(any(test, feature = "planted"))]
        if self.wal.options().sync_while_syncing {
            return true;
        }
        false
    }

    /// The planted bug of stopping on the shutdown while a sync is in flight, dropping the
    /// records taken behind it; never outside test and `planted` builds.
    fn stops_early(&self) -> bool {
        #[cfg(any(test, feature = "planted"))]
        if self.wal.options().stop_while_syncing {
            return true;
        }
        false
    }

    /// The planted bug of reporting a batch durable once it is handed to the sync thread,
    /// before its sync ends; nothing outside test and `planted` builds.
    fn report_flushed(&mut self, _lsn: Lsn) {
        #[cfg(any(test, feature = "planted"))]
        if self.wal.options().report_on_flush {
            self.durable = self.durable.max(_lsn);
        }
    }
}

/// Makes the batch durable as the policy says and returns the lsn it reached.
fn commit<D: Disk>(wal: &mut Wal<D>, fsync: FsyncPolicy) -> Result<Lsn, StoreError> {
    match fsync {
        FsyncPolicy::Always => wal.sync(),
        FsyncPolicy::Never => wal.flush().map(|()| wal.last_lsn()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::AccountId;
    use crate::store::{MemDisk, StoreOptions};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn delete(n: u64) -> Command<()> {
        Command::Record(Lsn(n), Record::Delete { account: AccountId(n) })
    }

    fn committer(options: StoreOptions) -> Committer<MemDisk> {
        let disk = MemDisk::new().with_sync_handles();
        let (wal, _) = Wal::open(disk, options).expect("an empty disk opens");
        Committer::new(wal, FsyncPolicy::Always, true)
    }

    /// One batch: applies `commands`, ends the batch; returns the sync handed out and the lsn
    /// reported durable.
    fn batch(
        committer: &mut Committer<MemDisk>,
        commands: Vec<Command<()>>,
    ) -> (Option<(Lsn, SyncHandle)>, Option<Lsn>) {
        for command in commands {
            assert!(committer.apply(command).expect("applies").is_none());
        }
        let end = committer.end_batch().expect("ends");
        assert!(!committer.end_turn().expect("ends"));
        (end.sync, end.durable)
    }

    /// What a power loss now leaves: the last lsn recovered.
    fn crash(committer: Committer<MemDisk>) -> Lsn {
        let mut disk = committer.into_wal().into_disk();
        disk.crash_with(&mut ChaCha8Rng::seed_from_u64(0), false);
        let (_, recovered) = Wal::open(disk, StoreOptions::default()).expect("recovers");
        recovered.last_lsn
    }

    /// Records appended while a sync is in flight wait for the next sync, and are reported
    /// durable only after it; a crash loses nothing reported.
    #[test]
    fn a_batch_is_reported_durable_only_once_its_sync_has_ended() {
        let mut c = committer(StoreOptions::default());
        assert_eq!(c.wait(), Wait::For(Wake::Any));
        let (sync, durable) = batch(&mut c, vec![delete(1)]);
        let (lsn, file) = sync.expect("handed to the sync thread");
        assert_eq!((lsn, durable), (Lsn(1), None));
        assert_eq!(c.wait(), Wait::For(Wake::Urgent), "records wait for the sync in flight");
        let (sync, durable) = batch(&mut c, vec![delete(2)]);
        assert!(sync.is_none() && durable.is_none(), "one sync at a time");
        let (sync, durable) = batch(&mut c, vec![Command::synced(lsn, &file)]);
        assert_eq!(durable, Some(Lsn(1)));
        let (lsn, _) = sync.expect("the next sync starts with the report");
        assert_eq!(lsn, Lsn(2));
        assert!(c.has_unsynced());
        assert_eq!(crash(c), Lsn(1), "record 2's sync never ended");
    }

    /// The planted bugs of this module, each seen as a report ahead of the disk.
    #[test]
    fn the_planted_writer_bugs_report_records_a_crash_loses() {
        let early = StoreOptions { report_on_flush: true, ..StoreOptions::default() };
        let mut c = committer(early);
        let (sync, durable) = batch(&mut c, vec![delete(1)]);
        assert!(sync.is_some());
        assert_eq!(durable, Some(Lsn(1)), "reported before its sync ends");
        assert_eq!(crash(c), Lsn(0));

        let last = StoreOptions { report_last_append: true, ..StoreOptions::default() };
        let mut c = committer(last);
        let (sync, _) = batch(&mut c, vec![delete(1)]);
        let (lsn, file) = sync.expect("handed out");
        batch(&mut c, vec![delete(2)]);
        let (_, durable) = batch(&mut c, vec![Command::synced(lsn, &file)]);
        assert_eq!(durable, Some(Lsn(2)), "record 2 was not in the sync");
        assert_eq!(crash(c), Lsn(1));
    }

    #[test]
    fn one_sync_is_in_flight_at_a_time_unless_planted() {
        for planted in [false, true] {
            let options = StoreOptions { sync_while_syncing: planted, ..StoreOptions::default() };
            let mut c = committer(options);
            assert!(batch(&mut c, vec![delete(1)]).0.is_some());
            let (second, _) = batch(&mut c, vec![delete(2)]);
            assert_eq!(second.is_some(), planted);
        }
    }

    /// Without a sync thread, or with `FsyncPolicy::Never`, a batch is committed on the turn.
    #[test]
    fn without_a_sync_thread_a_batch_is_committed_on_its_turn() {
        for (fsync, sync_thread) in [(FsyncPolicy::Always, false), (FsyncPolicy::Never, true)] {
            let disk = MemDisk::new().with_sync_handles();
            let (wal, _) = Wal::open(disk, StoreOptions::default()).expect("opens");
            let mut c = Committer::new(wal, fsync, sync_thread);
            let (sync, durable) = batch(&mut c, vec![delete(1), delete(2)]);
            assert!(sync.is_none());
            assert_eq!(durable, Some(Lsn(2)), "{fsync:?}");
        }
    }

    #[test]
    fn a_shut_down_writer_stops_once_its_sync_in_flight_has_ended() {
        let mut c = committer(StoreOptions::default());
        let (sync, _) = batch(&mut c, vec![delete(1)]);
        let (lsn, file) = sync.expect("handed out");
        assert!(c.apply(Command::<()>::Shutdown).expect("applies").is_none());
        c.end_batch().expect("ends");
        assert!(!c.end_turn().expect("ends"), "the sync in flight is waited for");
        assert_eq!(c.wait(), Wait::For(Wake::Urgent));
        assert!(c.apply(Command::<()>::synced(lsn, &file)).expect("applies").is_none());
        assert_eq!(c.end_batch().expect("ends").durable, Some(Lsn(1)));
        assert!(c.end_turn().expect("ends"));
        assert_eq!(c.wait(), Wait::No);
    }
}
