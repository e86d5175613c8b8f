//! The simulated disk behind the server: records appended, made durable by a (timed) sync, and
//! a crash that keeps what was synced, maybe some of what was not, and maybe a torn last record.
//!
//! The simulator talks to storage through the [`SimStore`] seam, so the store under test can be
//! swapped: [`MemStore`] here is the simulator's own model of a log; once `crate::store` lands,
//! a `Wal<MemDisk>` behind the same seam runs the real log and the real recovery.

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use crate::core::{Lsn, Record};

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
    pub replay_torn: bool,
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
