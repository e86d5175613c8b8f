//! [`MemoryStore`]: a store that keeps nothing and calls every record durable at once.
//!
//! For running the server before (or without) durability, and for benchmarks that measure the
//! core rather than the disk. A server using it loses everything on restart.

use crate::core::record::{Lsn, Record};

/// Counts the records it is given and reports each durable immediately.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryStore {
    records_len: u64,
    last_lsn: Lsn,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes `record` as `lsn` and returns the lsn now durable: `lsn` itself.
    pub fn persist(&mut self, lsn: Lsn, _record: &Record) -> Lsn {
        self.records_len += 1;
        self.last_lsn = self.last_lsn.max(lsn);
        self.last_lsn
    }

    /// How many records it was given.
    pub fn records_len(&self) -> u64 {
        self.records_len
    }

    /// The highest lsn it was given (`Lsn(0)` if none).
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::AccountId;

    #[test]
    fn every_record_is_durable_at_once_and_counted() {
        let mut store = MemoryStore::new();
        assert_eq!(store.last_lsn(), Lsn(0));
        for n in 1..=3 {
            assert_eq!(store.persist(Lsn(n), &Record::Delete { account: AccountId(n) }), Lsn(n));
        }
        assert_eq!((store.records_len(), store.last_lsn()), (3, Lsn(3)));
    }
}
