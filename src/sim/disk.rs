//! The simulated disk behind the server: records appended, made durable by a (timed) sync, and
//! a crash that keeps what was synced, maybe some of what was not, and maybe a torn last record.
//!
//! The simulator talks to storage through the [`SimStore`] seam. [`WalStore`] runs the real
//! write-ahead log ([`crate::store::Wal`]) over the store's in-memory disk ([`MemDisk`]), so a
//! simulated crash goes through the real recovery code, planted bugs included
//! (`WalStore::replaying_torn_records`, in test builds).

use rand_chacha::ChaCha20Rng;

#[cfg(any(test, feature = "planted"))]
use crate::core::planted::Planted;
use crate::core::{Lsn, Record};
use crate::store::codec::{self, frame_len_declared};
use crate::store::snapshotting::{Progress, Snapshotting};
use crate::store::{Disk, MemDisk, StoreOptions, Wal};

/// The simulated log's preallocation step: small, so that a run fills space many times, both
/// ahead (after a sync, as the writer does when idle) and in a flush that outruns it.
pub const SIM_PREALLOC_BYTES: u64 = 512;

/// What the simulator needs from a store.
pub trait SimStore {
    /// Buffers a record; it is not durable until [`SimStore::sync`].
    fn append(&mut self, lsn: Lsn, record: &Record);
    /// Makes everything appended durable; returns the durable lsn.
    fn sync(&mut self) -> Lsn;
    /// Power loss: keeps what was synced and, if `torn_writes`, maybe some of the rest.
    fn crash(&mut self, rng: &mut ChaCha20Rng, torn_writes: bool);
    /// The process dies: what it wrote stays on the disk as it was, synced or not (what it
    /// held in its own buffers is gone).
    fn kill(&mut self);
    /// What recovery finds on the disk: the records to replay and the last lsn.
    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String>;
    /// Whether enough was logged to compact into a snapshot now.
    fn snapshot_due(&self) -> bool {
        false
    }
    /// Begins to compact the log into `records`, the state as of `lsn` (the last appended):
    /// everything up to `lsn` is durable afterwards, and the snapshot is written once
    /// [`SimStore::snapshot_encoded`] says its bytes are made, between later syncs.
    fn snapshot(&mut self, _lsn: Lsn, _records: &[Record]) {}
    /// The helper that encodes the snapshot in progress is done (the world's event for it).
    fn snapshot_encoded(&mut self) {}
    /// Whether a snapshot is in progress (begun, and not yet in place with every file it
    /// covers freed).
    fn snapshotting(&self) -> bool {
        false
    }
    /// The log bytes the store counts towards its next snapshot, if it counts them.
    fn log_bytes_since_snapshot(&self) -> Option<u64> {
        None
    }
    /// The files on its disk, if it keeps files.
    fn file_names(&self) -> Option<Vec<String>> {
        None
    }
}

/// The real write-ahead log over the store's simulated disk. The model checker uses it too
/// (cloned with every state it copies, crashed by choice with [`WalStore::crash_keeping`]).
#[derive(Clone, Debug)]
pub struct WalStore {
    wal: Option<Wal<MemDisk>>,
    /// The disk between a crash and the recovery that reopens it.
    crashed: Option<MemDisk>,
    options: StoreOptions,
    /// Hand every append to the disk at once (unsynced), so a crash can tear it.
    write_through: bool,
    /// The snapshot in progress, driven by the same steps as the server's writer: one after
    /// each sync, and one when its bytes are encoded.
    snapshot: Option<Snapshotting>,
    /// Its bytes, made at the request and handed over when the helper would be done.
    snapshot_bytes: Option<Vec<u8>>,
}

impl WalStore {
    /// A new, empty store; `snapshot_log_bytes_min` small enough to snapshot during a run. Its
    /// log fills [`SIM_PREALLOC_BYTES`] of zeros ahead at a time, as the server's does (in
    /// bigger steps), so that crashes tear overwrites of filled space and recovery reads
    /// zero tails.
    pub fn new(write_through: bool, snapshot_log_bytes_min: u64) -> Self {
        let prealloc_bytes = SIM_PREALLOC_BYTES;
        let options =
            StoreOptions { snapshot_log_bytes_min, prealloc_bytes, ..StoreOptions::default() };
        let (wal, recovered) = Wal::open(MemDisk::new(), options).expect("an empty disk opens");
        assert!(recovered.records.is_empty());
        WalStore {
            wal: Some(wal),
            crashed: None,
            options,
            write_through,
            snapshot: None,
            snapshot_bytes: None,
        }
    }

    /// A store with `bug` planted in its recovery, where it is one of the log's bugs: a torn
    /// record replayed ([`StoreOptions::replay_torn_tail`]), the log's size since the
    /// snapshot forgotten ([`StoreOptions::forget_log_size`]), a segment read without
    /// syncing it ([`StoreOptions::read_unsynced`]), a snapshot's segment created without
    /// syncing its name ([`StoreOptions::segment_name_unsynced`]), a snapshot that frees only
    /// the first file it covers ([`StoreOptions::covered_first_only`]).
    #[cfg(any(test, feature = "planted"))]
    pub fn planted(bug: Planted, write_through: bool, snapshot_log_bytes_min: u64) -> Self {
        let mut store = WalStore::new(write_through, snapshot_log_bytes_min);
        let options = &mut store.options;
        options.replay_torn_tail = bug == Planted::ReplayTornRecord;
        options.forget_log_size = bug == Planted::RecoveryForgetsLogSize;
        options.read_unsynced = bug == Planted::RecoveryReadsUnsynced;
        options.segment_name_unsynced = bug == Planted::SnapshotSegmentNameUnsynced;
        options.covered_first_only = bug == Planted::SnapshotFreesFirstCovered;
        store
    }

    /// A power loss chosen rather than drawn: of the records appended since the last sync, the
    /// first `kept` survive whole and, if `torn`, the one after them survives but for its last
    /// non-zero byte and what follows it (a torn write); everything else unsynced is lost. Follow with [`SimStore::recover`].
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

    fn wal(&mut self) -> &mut Wal<MemDisk> {
        self.wal.as_mut().expect("the store is open (not crashed)")
    }

    /// One step of the snapshot in progress, if the batch that began it is durable: as the
    /// server's writer does after each batch.
    fn step_snapshot(&mut self) {
        let (Some(wal), Some(job)) = (self.wal.as_mut(), self.snapshot.as_mut()) else { return };
        if !job.may_step(wal.durable_lsn()) {
            return;
        }
        let progress = job.step(wal).expect("snapshots to a memory disk cannot fail");
        if progress == Progress::Done {
            self.snapshot = None;
        }
    }

    /// A crash or a kill ends the snapshot in progress with the process.
    fn forget_snapshot(&mut self) {
        self.snapshot = None;
        self.snapshot_bytes = None;
    }
}

impl SimStore for WalStore {
    fn append(&mut self, lsn: Lsn, record: &Record) {
        let write_through = self.write_through;
        let wal = self.wal();
        wal.append(lsn, record).expect("appending to a memory disk cannot fail");
        if write_through {
            wal.flush().expect("writing to a memory disk cannot fail");
        }
    }

    fn sync(&mut self) -> Lsn {
        let wal = self.wal();
        let durable = wal.sync().expect("syncing a memory disk cannot fail");
        // The server's writer fills ahead once everything is durable: so does the simulation.
        wal.extend_ahead().expect("filling a memory disk cannot fail");
        self.step_snapshot();
        durable
    }

    fn crash(&mut self, rng: &mut ChaCha20Rng, _torn_writes: bool) {
        let mut disk = self.wal.take().expect("the store is open").into_disk();
        disk.crash(rng);
        self.crashed = Some(disk);
        self.forget_snapshot();
    }

    fn kill(&mut self) {
        self.crashed = Some(self.wal.take().expect("the store is open").into_disk());
        self.forget_snapshot();
    }

    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String> {
        let disk = self.crashed.take().expect("recovery follows a crash");
        let (wal, recovered) = Wal::open(disk, self.options).map_err(|e| e.to_string())?;
        self.wal = Some(wal);
        Ok((recovered.records, recovered.last_lsn))
    }

    fn snapshot_due(&self) -> bool {
        // As the writer's `snapshot_pending`: no second request while one is in progress.
        self.snapshot.is_none() && self.wal.as_ref().is_some_and(Wal::snapshot_due)
    }

    fn snapshot(&mut self, lsn: Lsn, records: &[Record]) {
        let begun = Snapshotting::begin(self.wal(), lsn);
        let Some(job) = begun.expect("snapshots to a memory disk cannot fail") else { return };
        let bytes = codec::encode_snapshot(lsn, records).expect("a snapshot's records encode");
        self.snapshot = Some(job);
        self.snapshot_bytes = Some(bytes);
    }

    fn snapshot_encoded(&mut self) {
        let (Some(job), Some(bytes)) = (self.snapshot.as_mut(), self.snapshot_bytes.take()) else {
            return;
        };
        job.encoded(bytes);
        // The writer does not sleep while a snapshot has work: the first piece goes at once.
        self.step_snapshot();
    }

    fn snapshotting(&self) -> bool {
        self.snapshot.is_some()
    }

    fn log_bytes_since_snapshot(&self) -> Option<u64> {
        self.wal.as_ref().map(Wal::log_bytes_since_snapshot)
    }

    fn file_names(&self) -> Option<Vec<String>> {
        self.wal.as_ref().map(|wal| wal.disk().list().expect("listing a memory disk cannot fail"))
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

    #[test]
    fn the_wal_store_recovers_synced_records_after_a_crash() {
        for seed in 0..20 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut store = WalStore::new(seed % 2 == 0, 64);
            for n in 1..=10 {
                store.append(Lsn(n), &delete(n));
                if n == 4 {
                    assert_eq!(store.sync(), Lsn(4));
                }
                if n == 6 && store.snapshot_due() {
                    store.snapshot(Lsn(6), &(1..=6).map(delete).collect::<Vec<_>>());
                }
            }
            store.crash(&mut rng, true);
            let (records, last) = store.recover().unwrap();
            assert!(last.0 >= 4, "synced records survive: {last:?}");
            assert_eq!(records, (1..=last.0).map(delete).collect::<Vec<_>>());
            store.append(Lsn(last.0 + 1), &delete(99));
        }
    }

    #[test]
    fn a_chosen_crash_keeps_whole_records_and_tears_the_next() {
        for (kept, torn, survivors) in [(0, false, 2), (1, false, 3), (1, true, 3), (3, true, 5)] {
            let mut store = WalStore::new(true, u64::MAX);
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
