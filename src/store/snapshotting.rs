//! [`Snapshotting`]: a snapshot written while the log goes on, as a sequence of steps with no
//! thread and no clock of its own. The log writer's decisions ([`super::commit::Committer`])
//! drive its steps between batches of records, on the server's writer thread and in the
//! simulator's store alike, so the simulator crashes the server at every point of the writing
//! that ships:
//! after the new segment is begun, between pieces, before the rename, while covered files are
//! freed.
//!
//! Begun at the request ([`Wal::begin_snapshot`]: the log synced, a new segment, a temporary
//! file); its bytes are made elsewhere (a helper thread encodes them off the writer's path) and
//! handed over with [`Snapshotting::encoded`]; from the first batch after the one that began it
//! is durable, each step writes and syncs one piece, puts the snapshot in place after the last
//! ([`Wal::finish_snapshot`]), then frees a piece of a covered file.

use super::disk::Disk;
use super::wal::{SnapshotWrite, Wal};
use super::StoreError;
use crate::core::record::Lsn;

/// Bytes of a snapshot written (and synced) between two batches of records, so that records
/// wait at most for one piece, never for the whole snapshot. Covered files are freed 16
/// pieces at a time.
pub const SNAPSHOT_PIECE_LEN: usize = 1 << 20;

/// A snapshot in progress.
#[derive(Clone, Debug)]
pub struct Snapshotting {
    /// `None` once the snapshot is in place and the files it covers are being removed.
    write: Option<SnapshotWrite>,
    /// Its bytes, once encoded, until the last piece is written.
    bytes: Option<Vec<u8>>,
    written_len: usize,
    /// Files the snapshot covers, still to remove (a piece at a time, like the writing).
    covered: Vec<String>,
    /// The log's bytes since the last snapshot when this one began.
    log_bytes_at_start: u64,
    /// The last lsn of the batch that began it: it is written only once that is durable
    /// (the records it covers must be on disk before it replaces their files).
    after: Lsn,
}

/// What a step found to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// The bytes are not encoded yet: nothing was done.
    WaitingForBytes,
    /// A piece was written, the snapshot put in place, or a covered file freed.
    Stepped,
    /// Everything is done: the snapshot is in place and every file it covers is gone.
    Done,
}

impl Snapshotting {
    /// Begins a snapshot of the state as of `lsn` (the last lsn appended); `None` if the last
    /// snapshot already covers it.
    pub fn begin<D: Disk>(wal: &mut Wal<D>, lsn: Lsn) -> Result<Option<Self>, StoreError> {
        let log_bytes_at_start = wal.log_bytes_since_snapshot();
        let Some(write) = wal.begin_snapshot(lsn)? else { return Ok(None) };
        Ok(Some(Snapshotting {
            write: Some(write),
            bytes: None,
            written_len: 0,
            covered: Vec::new(),
            log_bytes_at_start,
            after: lsn,
        }))
    }

    /// The batch that began it ended at `lsn`: no piece is written before that is durable.
    pub fn began_in_batch_ending(&mut self, lsn: Lsn) {
        self.after = self.after.max(lsn);
    }

    /// Whether a step may run once everything up to `durable` is durable.
    pub fn may_step(&self, durable: Lsn) -> bool {
        durable >= self.after
    }

    /// Whether it is still being written (not yet in place).
    pub fn writing(&self) -> bool {
        self.write.is_some()
    }

    /// Whether its bytes are still awaited.
    pub fn wants_bytes(&self) -> bool {
        self.write.is_some() && self.bytes.is_none()
    }

    /// Its bytes, as [`super::codec::encode_snapshot`] made them.
    pub fn encoded(&mut self, bytes: Vec<u8>) {
        self.bytes = Some(bytes);
    }

    /// The log's bytes since the last snapshot when this one began.
    pub fn log_bytes_at_start(&self) -> u64 {
        self.log_bytes_at_start
    }

    /// Pieces written so far.
    pub fn pieces_written(&self) -> usize {
        self.written_len.div_ceil(SNAPSHOT_PIECE_LEN)
    }

    /// Does the next piece of work: writes a piece, puts the snapshot in place after the last,
    /// or frees a piece of a covered file.
    pub fn step<D: Disk>(&mut self, wal: &mut Wal<D>) -> Result<Progress, StoreError> {
        let Some(write) = &self.write else {
            let Some(file) = self.covered.first() else { return Ok(Progress::Done) };
            if wal.remove_covered_piece(file, SNAPSHOT_PIECE_LEN as u64 * 16)? {
                self.covered.remove(0);
                #[cfg(any(test, feature = "planted"))]
                if wal.options().covered_first_only {
                    self.covered.clear();
                }
            }
            return Ok(if self.covered.is_empty() { Progress::Done } else { Progress::Stepped });
        };
        let Some(bytes) = &self.bytes else { return Ok(Progress::WaitingForBytes) };
        let end = (self.written_len + SNAPSHOT_PIECE_LEN).min(bytes.len());
        wal.write_snapshot_piece(write, &bytes[self.written_len..end])?;
        self.written_len = end;
        if end == bytes.len() {
            self.bytes = None;
            let write = self.write.take().expect("matched above");
            self.covered = wal.finish_snapshot(write)?;
        }
        Ok(Progress::Stepped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{AccountId, Record};
    use crate::store::codec::encode_snapshot;
    use crate::store::wal::{segment_name, snapshot_name};
    use crate::store::{MemDisk, StoreOptions};

    fn delete(n: u64) -> Record {
        Record::Delete { account: AccountId(n) }
    }

    /// Appends and syncs records `from..=to`, then writes a snapshot of them in steps, as the
    /// writer does, to the end.
    fn snapshot_in_steps(wal: &mut Wal<MemDisk>, from: u64, to: u64) {
        for n in from..=to {
            wal.append(Lsn(n), &delete(n)).expect("append");
        }
        wal.sync().expect("sync");
        let mut job = Snapshotting::begin(wal, Lsn(to)).expect("begin").expect("not covered");
        assert_eq!(job.step(wal).expect("step"), Progress::WaitingForBytes);
        let records: Vec<Record> = (1..=to).map(delete).collect();
        job.encoded(encode_snapshot(Lsn(to), &records).expect("encodes"));
        let mut steps = 0;
        while job.step(wal).expect("step") != Progress::Done {
            steps += 1;
            assert!(steps < 100, "a small snapshot is done in a few steps");
        }
    }

    /// Once a snapshot's steps are done, the disk holds it and the segment after it, nothing it
    /// covers: neither the segments before it nor the snapshot before it (a snapshot that
    /// freed only some would leak the disk, one covered file per snapshot).
    #[test]
    fn a_snapshot_done_leaves_no_file_it_covers_unless_planted() {
        for covered_first_only in [false, true] {
            let options =
                StoreOptions { prealloc_bytes: 0, covered_first_only, ..StoreOptions::default() };
            let (mut wal, _) = Wal::open(MemDisk::new(), options).expect("an empty disk opens");
            snapshot_in_steps(&mut wal, 1, 4);
            snapshot_in_steps(&mut wal, 5, 9);
            let mut files = wal.disk().list().expect("list");
            files.sort();
            let mut expected = vec![snapshot_name(Lsn(9)), segment_name(Lsn(10))];
            expected.sort();
            // Planted, the snapshot before stays: nothing is lost, but the disk only grows.
            assert_eq!(files == expected, !covered_first_only, "{files:?}");
            let (_, recovered) = Wal::open(wal.into_disk(), options).expect("recovers");
            assert_eq!(recovered.records, (1..=9).map(delete).collect::<Vec<_>>());
        }
    }
}
