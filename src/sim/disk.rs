//! The simulated disk behind the server: records appended, made durable by a (timed) sync, and
//! a crash that keeps what was synced, maybe some of what was not, and maybe a torn last record.
//!
//! The simulator talks to storage through the [`SimStore`] seam. [`WalStore`] runs the real
//! write-ahead log ([`crate::store::Wal`]) over the store's in-memory disk ([`MemDisk`]), so a
//! simulated crash goes through the real recovery code; [`MemStore`] is the simulator's own
//! small model of a log, kept for the planted torn-record bug (which needs a recovery that can
//! be made wrong on purpose).

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use crate::core::{Lsn, Record};
use crate::store::{MemDisk, StoreOptions, Wal};

/// What the simulator needs from a store.
pub trait SimStore {
    /// Buffers a record; it is not durable until [`SimStore::sync`].
    fn append(&mut self, lsn: Lsn, record: &Record);
    /// Makes everything appended durable; returns the durable lsn.
    fn sync(&mut self) -> Lsn;
    /// Power loss: keeps what was synced and, if `torn_writes`, maybe some of the rest.
    fn crash(&mut self, rng: &mut ChaCha20Rng, torn_writes: bool);
    /// What recovery finds on the disk: the records to replay and the last lsn.
    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String>;
    /// Whether enough was logged to compact into a snapshot now.
    fn snapshot_due(&self) -> bool {
        false
    }
    /// Compacts the log into `records`, the state as of `lsn` (the last appended); everything
    /// up to `lsn` is durable afterwards.
    fn snapshot(&mut self, _lsn: Lsn, _records: &[Record]) {}
}

/// The real write-ahead log over the store's simulated disk.
#[derive(Debug)]
pub struct WalStore {
    wal: Option<Wal<MemDisk>>,
    /// The disk between a crash and the recovery that reopens it.
    crashed: Option<MemDisk>,
    options: StoreOptions,
    /// Hand every append to the disk at once (unsynced), so a crash can tear it.
    write_through: bool,
}

impl WalStore {
    /// A new, empty store; `snapshot_log_bytes_min` small enough to snapshot during a run.
    pub fn new(write_through: bool, snapshot_log_bytes_min: u64) -> Self {
        let options = StoreOptions { snapshot_log_bytes_min, ..StoreOptions::default() };
        let (wal, recovered) = Wal::open(MemDisk::new(), options).expect("an empty disk opens");
        assert!(recovered.records.is_empty());
        WalStore { wal: Some(wal), crashed: None, options, write_through }
    }

    fn wal(&mut self) -> &mut Wal<MemDisk> {
        self.wal.as_mut().expect("the store is open (not crashed)")
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
        self.wal().sync().expect("syncing a memory disk cannot fail")
    }

    fn crash(&mut self, rng: &mut ChaCha20Rng, _torn_writes: bool) {
        let mut disk = self.wal.take().expect("the store is open").into_disk();
        disk.crash(rng);
        self.crashed = Some(disk);
    }

    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String> {
        let disk = self.crashed.take().expect("recovery follows a crash");
        let (wal, recovered) = Wal::open(disk, self.options).map_err(|e| e.to_string())?;
        self.wal = Some(wal);
        Ok((recovered.records, recovered.last_lsn))
    }

    fn snapshot_due(&self) -> bool {
        self.wal.as_ref().is_some_and(Wal::snapshot_due)
    }

    fn snapshot(&mut self, lsn: Lsn, records: &[Record]) {
        self.wal().write_snapshot(lsn, records).expect("snapshots to a memory disk cannot fail");
    }
}

/// The simulator's model of a write-ahead log.
#[derive(Debug, Default)]
pub struct MemStore {
    records: Vec<(Lsn, Record)>,
    synced_len: usize,
    /// A record whose write was cut short by the crash: its checksum fails, so recovery must
    /// drop it.
    torn: Option<(Lsn, Record)>,
    /// Planted bug: recovery replays the torn record (its text cut short) as if it were whole.
    #[cfg(test)]
    replay_torn: bool,
}

impl MemStore {
    /// A store with the planted torn-record recovery bug.
    #[cfg(test)]
    pub fn replaying_torn_records() -> Self {
        MemStore { replay_torn: true, ..MemStore::default() }
    }
}

impl SimStore for MemStore {
    fn append(&mut self, lsn: Lsn, record: &Record) {
        if let Some((last, _)) = self.records.last() {
            assert_eq!(lsn.0, last.0 + 1, "records are appended in lsn order");
        }
        self.records.push((lsn, record.clone()));
    }

    fn sync(&mut self) -> Lsn {
        self.synced_len = self.records.len();
        self.records.last().map_or(Lsn(0), |(lsn, _)| *lsn)
    }

    fn crash(&mut self, rng: &mut ChaCha20Rng, torn_writes: bool) {
        let unsynced = self.records.len() - self.synced_len;
        let kept = if torn_writes && unsynced > 0 { rng.gen_range(0..=unsynced) } else { 0 };
        let cut = self.synced_len + kept;
        self.torn = None;
        if torn_writes && cut < self.records.len() && rng.gen_bool(0.5) {
            self.torn = Some(self.records[cut].clone());
        }
        self.records.truncate(cut);
        self.synced_len = cut;
    }

    fn recover(&mut self) -> Result<(Vec<Record>, Lsn), String> {
        #[cfg(test)]
        if self.replay_torn {
            if let Some((lsn, Record::Message { id, from, to, text })) = self.torn.take() {
                let text = text[..text.len() / 2].to_owned();
                self.records.push((lsn, Record::Message { id, from, to, text }));
                self.synced_len = self.records.len();
            }
        }
        self.torn = None;
        let last = self.records.last().map_or(Lsn(0), |(lsn, _)| *lsn);
        Ok((self.records.iter().map(|(_, r)| r.clone()).collect(), last))
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
    fn a_crash_keeps_synced_records_and_at_most_a_prefix_of_the_rest() {
        for seed in 0..50 {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            let mut store = MemStore::default();
            for n in 1..=3 {
                store.append(Lsn(n), &delete(n));
            }
            assert_eq!(store.sync(), Lsn(3));
            for n in 4..=6 {
                store.append(Lsn(n), &delete(n));
            }
            store.crash(&mut rng, seed % 2 == 0);
            let (records, last) = store.recover().unwrap();
            assert!((3..=6).contains(&last.0), "{last:?}");
            assert_eq!(records, (1..=last.0).map(delete).collect::<Vec<_>>());
            if seed % 2 == 1 {
                assert_eq!(last, Lsn(3), "without torn writes nothing unsynced survives");
            }
            store.append(Lsn(last.0 + 1), &delete(9));
        }
    }
}
