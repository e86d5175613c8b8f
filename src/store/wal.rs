//! The write-ahead log: segment files of framed records, snapshots that let old segments go,
//! and the recovery that reads them back after a crash.
//!
//! Files in the store directory:
//!
//! - `log-<first_lsn:020>.wal`: a segment, the frames of consecutive lsns from `first_lsn` on,
//!   then zeros: space filled ahead of the frames ([`StoreOptions::prealloc_bytes`]) so that the
//!   fdatasync of a batch overwrites allocated blocks of a file whose size does not change, and
//!   commits no file-system metadata. Only the last segment is ever written to; a new one starts
//!   after each snapshot.
//! - `snapshot-<lsn:020>.snap`: the records that rebuild the state as of `lsn`, checksummed as a
//!   whole. Written as `<name>.tmp`, synced, renamed, then the directory synced.
//!
//! Recovery takes the newest valid snapshot, then every logged record after it. A segment's
//! frames end where only zero bytes remain (its filled-ahead space, in any segment). Damage is
//! judged by where it is. The end of the last segment is where a crash tears writes, so there an
//! incomplete frame, or a frame with a bad checksum followed by nothing but zeros, is cut off
//! with a [`RecoveryWarning::TornTail`]. Anywhere else (bad checksum, bad length, an lsn out
//! of sequence, a gap between segments) it is [`RecoveryError::Corrupt`], and the store refuses
//! to start unless [`StoreOptions::accept_data_loss`] is set; then it cuts the log there, with a
//! [`RecoveryWarning::DataLoss`]. A damaged last frame cannot be told from a torn one, so a
//! synced last record that the disk later corrupts is lost with a warning rather than refused.

use std::fmt;

use thiserror::Error;

use super::codec::{self, FrameError};
use super::disk::{Disk, DiskError, SyncHandle};
use super::{StoreError, StoreOptions};
use crate::core::record::{Lsn, Record};

const SEGMENT_PREFIX: &str = "log-";
const SEGMENT_SUFFIX: &str = ".wal";
const SNAPSHOT_PREFIX: &str = "snapshot-";
const SNAPSHOT_SUFFIX: &str = ".snap";
const TEMP_SUFFIX: &str = ".tmp";

/// The most a fill adds at a time: [`StoreOptions::prealloc_bytes`] is how far ahead the
/// writer keeps filled, topped up in pieces of this much so that one fill (a write and an
/// fdatasync) holds records up for about one sync, not for a whole step's worth of zeros.
pub const FILL_PIECE_LEN_MAX: u64 = 256 << 10;

/// The name of the segment whose first record is `first`.
pub fn segment_name(first: Lsn) -> String {
    format!("{SEGMENT_PREFIX}{:020}{SEGMENT_SUFFIX}", first.0)
}

/// The name of the snapshot of the state as of `lsn`.
pub fn snapshot_name(lsn: Lsn) -> String {
    format!("{SNAPSHOT_PREFIX}{:020}{SNAPSHOT_SUFFIX}", lsn.0)
}

fn parse_numbered(name: &str, prefix: &str, suffix: &str) -> Option<Lsn> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
    let well_formed = digits.len() == 20 && digits.bytes().all(|b| b.is_ascii_digit());
    well_formed.then(|| digits.parse().ok().map(Lsn)).flatten()
}

fn next(lsn: Lsn) -> Lsn {
    Lsn(lsn.0.saturating_add(1))
}

/// Why the store refuses to start.
#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error(
        "store file {file} is damaged at offset {offset}: {reason}; refusing to start \
         (accepting the data loss cuts the damage off and loses what follows it)"
    )]
    Corrupt { file: String, offset: u64, reason: String },
    #[error(transparent)]
    Disk(#[from] DiskError),
}

/// Something recovery repaired or ignored; each names the file concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecoveryWarning {
    /// The end of the last segment held a torn write, cut off. Expected after a crash.
    TornTail { file: String, offset: u64, bytes_cut: u64, reason: String },
    /// Damage before the end of the log, cut off because data loss was accepted.
    DataLoss { file: String, offset: u64, bytes_cut: u64, reason: String },
    /// A segment after damage, removed because data loss was accepted.
    SegmentDiscarded { file: String },
    /// A damaged snapshot, removed because data loss was accepted; an older one was used.
    SnapshotDiscarded { file: String, reason: String },
    /// A snapshot that was being written when the server stopped, removed.
    TempFileRemoved { file: String },
    /// A file that is not the store's, left alone.
    UnknownFile { file: String },
}

impl fmt::Display for RecoveryWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TornTail { file, offset, bytes_cut, reason } => {
                write!(f, "{file}: torn write at offset {offset} ({reason}); cut {bytes_cut} bytes")
            }
            Self::DataLoss { file, offset, bytes_cut, reason } => write!(
                f,
                "DATA LOST: {file} is damaged at offset {offset} ({reason}); \
                 cut {bytes_cut} bytes and everything logged after them"
            ),
            Self::SegmentDiscarded { file } => {
                write!(f, "DATA LOST: removed {file}, which follows damaged data")
            }
            Self::SnapshotDiscarded { file, reason } => {
                write!(f, "DATA LOST: removed damaged snapshot {file} ({reason})")
            }
            Self::TempFileRemoved { file } => write!(f, "removed unfinished snapshot {file}"),
            Self::UnknownFile { file } => write!(f, "ignored {file}, which is not a store file"),
        }
    }
}

/// What recovery found: the records to replay through the core, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The lsn of the snapshot used, `Lsn(0)` if none.
    pub snapshot_lsn: Lsn,
    /// How many of `records` (the first ones) come from the snapshot.
    pub snapshot_records_len: usize,
    /// The snapshot's records, then every logged record after `snapshot_lsn`, in lsn order.
    pub records: Vec<Record>,
    /// The last lsn recovered; the next record must be `last_lsn + 1`.
    pub last_lsn: Lsn,
    pub warnings: Vec<RecoveryWarning>,
}

impl Recovered {
    /// The logged records (those after the snapshot's) with their lsns.
    pub fn log_records(&self) -> impl Iterator<Item = (Lsn, &Record)> {
        let first = self.snapshot_lsn.0 + 1;
        self.records[self.snapshot_records_len..].iter().zip(first..).map(|(r, lsn)| (Lsn(lsn), r))
    }
}

/// A snapshot being written in pieces; see [`Wal::begin_snapshot`].
#[derive(Clone, Debug)]
pub struct SnapshotWrite {
    lsn: Lsn,
    temp: String,
    /// Log bytes counted when it began: those the snapshot makes unnecessary.
    bytes_at_start: u64,
}

impl SnapshotWrite {
    /// The lsn the snapshot covers.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }
}

/// A write-ahead log over a [`Disk`]. Not thread-safe by itself: [`super::GroupCommit`] owns one
/// on its own thread; the simulator drives one directly (and the model checker clones one with
/// every state it copies).
#[derive(Clone, Debug)]
pub struct Wal<D: Disk> {
    disk: D,
    options: StoreOptions,
    /// The segment written to.
    active: String,
    /// Where the next frame goes in `active`: the end of its frames.
    active_len: u64,
    /// The length of `active`: past `active_len` it holds zeros filled ahead.
    active_allocated: u64,
    /// Frames appended but not yet handed to the disk.
    buffer: Vec<u8>,
    last_lsn: Lsn,
    /// The last lsn handed to the disk (synced or not).
    flushed_lsn: Lsn,
    durable_lsn: Lsn,
    snapshot_lsn: Lsn,
    log_bytes_since_snapshot: u64,
    /// Set by any failed disk operation: after a failed write or fsync the file's contents are
    /// unknown, so every later write is refused rather than built on them.
    poisoned: bool,
}

impl<D: Disk> Wal<D> {
    /// Recovers the store on `disk` (an empty disk is a new store) and opens it for appending.
    pub fn open(mut disk: D, options: StoreOptions) -> Result<(Self, Recovered), RecoveryError> {
        let mut warnings = Vec::new();
        let layout = Layout::scan(&mut disk, &mut warnings)?;
        let snapshot = load_snapshot(&mut disk, &layout.snapshots, options, &mut warnings)?;
        let base = snapshot.as_ref().map_or(Lsn(0), |s| s.lsn);
        let replay = LogReplay::run(&mut disk, &layout.segments, base, options, &mut warnings)?;
        let (active, active_len) = replay.active_segment(&mut disk)?;
        let active_allocated = disk.len(&active)?;
        remove_covered(&mut disk, &layout, &replay, snapshot.as_ref())?;
        disk.sync_dir()?;

        let snapshot_records = snapshot.map_or_else(Vec::new, |s| s.records);
        let snapshot_records_len = snapshot_records.len();
        let mut records = snapshot_records;
        records.extend(replay.records);
        let recovered = Recovered {
            snapshot_lsn: base,
            snapshot_records_len,
            records,
            last_lsn: replay.last_lsn,
            warnings,
        };
        let wal = Wal {
            disk,
            options,
            active,
            active_len,
            active_allocated,
            buffer: Vec::new(),
            last_lsn: replay.last_lsn,
            flushed_lsn: replay.last_lsn,
            durable_lsn: replay.last_lsn,
            snapshot_lsn: base,
            log_bytes_since_snapshot: replay.log_bytes,
            poisoned: false,
        };
        #[cfg(any(test, feature = "planted"))]
        let wal =
            if options.forget_log_size { Wal { log_bytes_since_snapshot: 0, ..wal } } else { wal };
        Ok((wal, recovered))
    }

    /// Buffers `record` as `lsn`, which must follow the last appended lsn. Nothing is durable
    /// until [`Wal::sync`].
    pub fn append(&mut self, lsn: Lsn, record: &Record) -> Result<(), StoreError> {
        self.check_usable()?;
        let expected = next(self.last_lsn);
        if lsn != expected {
            return Err(StoreError::LsnOutOfOrder { expected, got: lsn });
        }
        codec::encode_frame(lsn, record, &mut self.buffer)?;
        self.last_lsn = lsn;
        Ok(())
    }

    /// Hands everything appended to the disk without syncing: it survives the process, not the
    /// machine. [`super::FsyncPolicy::Never`] uses this alone.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.guarded(Self::flush_inner)
    }

    /// Makes everything appended durable with one fsync; returns the durable lsn.
    pub fn sync(&mut self) -> Result<Lsn, StoreError> {
        self.guarded(Self::sync_inner)?;
        Ok(self.durable_lsn)
    }

    /// Hands everything appended to the disk and returns the lsn it reaches with a handle that
    /// makes it durable from another thread ([`Disk::sync_handle`]), while this log goes on
    /// appending; report the sync's success with [`Wal::synced`]. `None` when everything is
    /// durable already, or when the disk has no such handle (then [`Wal::sync`] it here).
    pub fn flush_for_sync(&mut self) -> Result<Option<(Lsn, SyncHandle)>, StoreError> {
        if self.durable_lsn == self.last_lsn {
            return Ok(None);
        }
        // The handle is made after the flush: a disk's handle may promise no more than what
        // was written before it was made (`MemDisk`'s). Without one, the flush was only early.
        self.guarded(|wal| {
            wal.flush_inner()?;
            let Some(handle) = wal.disk.sync_handle(&wal.active)? else { return Ok(None) };
            Ok(Some((wal.last_lsn, handle)))
        })
    }

    /// Fills one more piece ([`FILL_PIECE_LEN_MAX`] at most) of zeros ahead of the frames, and
    /// syncs it, when less than [`StoreOptions::prealloc_bytes`] of filled space is left;
    /// returns whether it did. The writer calls it when it has nothing else to do, so that a
    /// flush rarely has to fill space first, and a piece at a time, so that records arriving
    /// meanwhile wait for one small write and sync, not for a whole step's. Nothing to do with
    /// preallocation off.
    pub fn extend_ahead(&mut self) -> Result<bool, StoreError> {
        let spare = self.options.prealloc_bytes;
        self.guarded(|wal| wal.reserve(spare))
    }

    /// A sync through a handle from [`Wal::flush_for_sync`] succeeded: every record up to `lsn`
    /// is durable.
    pub fn synced(&mut self, lsn: Lsn) {
        debug_assert!(lsn <= self.last_lsn, "synced past the last append");
        self.durable_lsn = self.durable_lsn.max(lsn);
    }

    /// Writes the snapshot of the state as of `lsn` (which must be the last appended lsn), then
    /// starts a new segment and removes the files the snapshot covers. Syncs the log first, so on
    /// return everything up to `lsn` is durable.
    pub fn write_snapshot(&mut self, lsn: Lsn, records: &[Record]) -> Result<(), StoreError> {
        self.check_usable()?;
        if lsn != self.last_lsn {
            return Err(StoreError::SnapshotLsnMismatch { snapshot: lsn, last: self.last_lsn });
        }
        if lsn == self.snapshot_lsn {
            // Nothing was logged since the last snapshot, which therefore already says this.
            return Ok(());
        }
        let bytes = codec::encode_snapshot(lsn, records)?;
        self.guarded(|wal| wal.write_snapshot_inner(lsn, &bytes))
    }

    /// Starts a snapshot of the state as of `lsn` (the last appended lsn) that is written in
    /// pieces while the log goes on: syncs the log, starts a new segment at `lsn + 1` (so later
    /// records never land in a file the snapshot covers) and creates the snapshot's temporary
    /// file. `None` if the last snapshot already covers `lsn`. Until
    /// [`Wal::finish_snapshot`], a crash leaves the old files, which still hold everything,
    /// and a temporary file that recovery removes.
    pub fn begin_snapshot(&mut self, lsn: Lsn) -> Result<Option<SnapshotWrite>, StoreError> {
        self.check_usable()?;
        if lsn != self.last_lsn {
            return Err(StoreError::SnapshotLsnMismatch { snapshot: lsn, last: self.last_lsn });
        }
        if lsn == self.snapshot_lsn {
            return Ok(None);
        }
        self.guarded(|wal| {
            wal.sync_inner()?;
            let segment = segment_name(next(lsn));
            if segment != wal.active {
                wal.disk.write_new(&segment, &[])?;
                // Records synced into the segment are acknowledged before the snapshot's
                // rename syncs the directory: the segment's name must be durable first.
                #[cfg(any(test, feature = "planted"))]
                let sync_name = !wal.options.segment_name_unsynced;
                #[cfg(not(any(test, feature = "planted")))]
                let sync_name = true;
                if sync_name {
                    wal.disk.sync_dir()?;
                }
                wal.start_segment(segment);
            }
            let temp = format!("{}{TEMP_SUFFIX}", snapshot_name(lsn));
            wal.disk.write_new(&temp, &[])?;
            let bytes_at_start = wal.log_bytes_since_snapshot;
            Ok(Some(SnapshotWrite { lsn, temp, bytes_at_start }))
        })
    }

    /// Appends the next piece of the snapshot's bytes (as [`codec::encode_snapshot`] makes
    /// them) and syncs it, so that no single sync has the whole snapshot to write.
    pub fn write_snapshot_piece(
        &mut self,
        write: &SnapshotWrite,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.guarded(|wal| {
            wal.disk.append(&write.temp, bytes)?;
            wal.disk.sync(&write.temp)?;
            Ok(())
        })
    }

    /// Puts the written snapshot in place and returns the files it covers, for
    /// [`Wal::remove_covered_piece`] (until they are gone, recovery skips them).
    pub fn finish_snapshot(&mut self, write: SnapshotWrite) -> Result<Vec<String>, StoreError> {
        self.guarded(|wal| {
            let SnapshotWrite { lsn, temp, bytes_at_start } = write;
            let name = snapshot_name(lsn);
            wal.disk.sync(&temp)?;
            wal.disk.rename(&temp, &name)?;
            wal.disk.sync_dir()?;
            let segment = segment_name(next(lsn));
            let covered = Layout::scan(&mut wal.disk, &mut Vec::new())?.files_before(lsn, &segment);
            wal.snapshot_lsn = lsn;
            // What was logged after `lsn` stays; the snapshot replaces the rest.
            wal.log_bytes_since_snapshot =
                wal.log_bytes_since_snapshot.saturating_sub(bytes_at_start);
            Ok(covered)
        })
    }

    /// Frees up to `piece_len` bytes of `file`, a file a snapshot covers, from its end, and
    /// removes it once it is that short; true once it is gone. (Freeing a large file in one
    /// call holds up the log for as long as the file system takes to free every block.)
    pub fn remove_covered_piece(&mut self, file: &str, piece_len: u64) -> Result<bool, StoreError> {
        self.guarded(|wal| {
            let len = wal.disk.len(file)?;
            if len > piece_len {
                wal.disk.truncate(file, len - piece_len)?;
                return Ok(false);
            }
            wal.disk.remove(file)?;
            Ok(true)
        })
    }

    /// The last lsn appended.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// The last lsn known to be durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// Bytes logged since the last snapshot (or, after recovery, that recovery replayed).
    pub fn log_bytes_since_snapshot(&self) -> u64 {
        self.log_bytes_since_snapshot + self.buffer.len() as u64
    }

    /// Whether enough has been logged since the last snapshot to make a new one worthwhile.
    pub fn snapshot_due(&self) -> bool {
        self.log_bytes_since_snapshot() >= self.options.snapshot_log_bytes_min
    }

    /// The options the log was opened with.
    pub fn options(&self) -> StoreOptions {
        self.options
    }

    /// The disk, for inspection.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// Gives the disk back, dropping anything appended but not flushed (as a crash would).
    pub fn into_disk(self) -> D {
        self.disk
    }

    fn check_usable(&self) -> Result<(), StoreError> {
        if self.poisoned {
            Err(StoreError::Poisoned)
        } else {
            Ok(())
        }
    }

    fn guarded<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.check_usable()?;
        let result = f(self);
        self.poisoned = result.is_err();
        result
    }

    fn flush_inner(&mut self) -> Result<(), StoreError> {
        if !self.buffer.is_empty() {
            self.reserve(0)?;
            self.disk.write_at(&self.active, self.active_len, &self.buffer)?;
            let len = self.buffer.len() as u64;
            self.active_len += len;
            self.active_allocated = self.active_allocated.max(self.active_len);
            self.log_bytes_since_snapshot += len;
            self.buffer.clear();
            self.flushed_lsn = self.last_lsn;
        }
        Ok(())
    }

    /// With preallocation on, makes sure the buffered frames fit the filled space with
    /// `spare` bytes left over, filling (past the frames, if they do not fit) one more piece of
    /// zeros if not, and syncing it, so that the file's new size and blocks are committed now
    /// rather than by a batch's sync. Returns whether it filled.
    ///
    /// Never while frames handed to the disk are not known durable (a sync in flight on the
    /// sync thread, or frames flushed without a sync): the fill's sync would make them durable
    /// unasked, behind the back of whoever decides when they are. Then the frames go past the
    /// filled space, as plain appends, and the next fill starts after them.
    fn reserve(&mut self, spare: u64) -> Result<bool, StoreError> {
        let chunk = self.options.prealloc_bytes;
        let end = self.active_len + self.buffer.len() as u64;
        let fits = end.saturating_add(spare) <= self.active_allocated;
        if chunk == 0 || fits || self.flushed_lsn > self.durable_lsn {
            return Ok(false);
        }
        let piece = chunk.min(FILL_PIECE_LEN_MAX);
        let target = end.max(self.active_allocated).saturating_add(piece);
        self.disk.write_zeros(
            &self.active,
            self.active_allocated,
            target - self.active_allocated,
        )?;
        self.disk.sync(&self.active)?;
        self.active_allocated = target;
        Ok(true)
    }

    /// Makes the new, empty segment `name` the one written to.
    fn start_segment(&mut self, name: String) {
        self.active = name;
        self.active_len = 0;
        self.active_allocated = 0;
    }

    fn sync_inner(&mut self) -> Result<(), StoreError> {
        if self.durable_lsn == self.last_lsn {
            return Ok(());
        }
        self.flush_inner()?;
        self.disk.sync(&self.active)?;
        self.durable_lsn = self.last_lsn;
        Ok(())
    }

    fn write_snapshot_inner(&mut self, lsn: Lsn, bytes: &[u8]) -> Result<(), StoreError> {
        self.sync_inner()?;
        let name = snapshot_name(lsn);
        let temp = format!("{name}{TEMP_SUFFIX}");
        self.disk.write_new(&temp, bytes)?;
        self.disk.sync(&temp)?;
        self.disk.rename(&temp, &name)?;
        let segment = segment_name(next(lsn));
        if segment != self.active {
            self.disk.write_new(&segment, &[])?;
        }
        self.disk.sync_dir()?;
        // Only once the snapshot is durable may what it covers go. A crash that undoes these
        // removals leaves covered files, which the next recovery removes again.
        let covered = Layout::scan(&mut self.disk, &mut Vec::new())?.files_before(lsn, &segment);
        for file in covered {
            self.disk.remove(&file)?;
        }
        if segment != self.active {
            self.start_segment(segment);
        }
        self.snapshot_lsn = lsn;
        self.log_bytes_since_snapshot = 0;
        Ok(())
    }
}

/// The store's files, by kind, each sorted by lsn.
struct Layout {
    segments: Vec<(Lsn, String)>,
    snapshots: Vec<(Lsn, String)>,
}

impl Layout {
    /// Lists the disk, removing leftover temporary snapshots on the way.
    fn scan<D: Disk>(disk: &mut D, warnings: &mut Vec<RecoveryWarning>) -> Result<Self, DiskError> {
        let mut layout = Layout { segments: Vec::new(), snapshots: Vec::new() };
        for file in disk.list()? {
            if let Some(lsn) = parse_numbered(&file, SEGMENT_PREFIX, SEGMENT_SUFFIX) {
                layout.segments.push((lsn, file));
            } else if let Some(lsn) = parse_numbered(&file, SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX) {
                layout.snapshots.push((lsn, file));
            } else if file.starts_with(SNAPSHOT_PREFIX) && file.ends_with(TEMP_SUFFIX) {
                disk.remove(&file)?;
                warnings.push(RecoveryWarning::TempFileRemoved { file });
            } else {
                warnings.push(RecoveryWarning::UnknownFile { file });
            }
        }
        layout.segments.sort();
        layout.snapshots.sort();
        Ok(layout)
    }

    /// Segments other than `keep` starting at or before `lsn`, and snapshots older than `lsn`.
    fn files_before(self, lsn: Lsn, keep: &str) -> Vec<String> {
        let segments =
            self.segments.into_iter().filter(|(first, name)| *first <= lsn && name != keep);
        let snapshots = self.snapshots.into_iter().filter(|(at, _)| *at < lsn);
        segments.chain(snapshots).map(|(_, name)| name).collect()
    }
}

struct LoadedSnapshot {
    lsn: Lsn,
    records: Vec<Record>,
}

/// The newest valid snapshot. A damaged one refuses recovery, or with data loss accepted is
/// removed and the next older one tried.
fn load_snapshot<D: Disk>(
    disk: &mut D,
    snapshots: &[(Lsn, String)],
    options: StoreOptions,
    warnings: &mut Vec<RecoveryWarning>,
) -> Result<Option<LoadedSnapshot>, RecoveryError> {
    for (lsn, file) in snapshots.iter().rev() {
        let reason = match codec::decode_snapshot(&disk.read(file)?) {
            Ok((inner, records)) if inner == *lsn => {
                return Ok(Some(LoadedSnapshot { lsn: *lsn, records }))
            }
            Ok((inner, _)) => format!("it holds lsn {} but its name says {}", inner.0, lsn.0),
            Err(e) => e.to_string(),
        };
        if !options.accept_data_loss {
            return Err(RecoveryError::Corrupt { file: file.clone(), offset: 0, reason });
        }
        disk.remove(file)?;
        warnings.push(RecoveryWarning::SnapshotDiscarded { file: file.clone(), reason });
    }
    Ok(None)
}

/// Damage found in a segment: where, why, and the lsn the segment would continue with if cut
/// there.
struct Damage {
    offset: usize,
    reason: String,
    next_lsn: Lsn,
}

/// The segment recovery ended in, the lsn its next frame would carry, and where it goes.
struct Tail {
    file: String,
    next_lsn: Lsn,
    len: u64,
}

/// The log records recovery read after the snapshot, and where the log ends.
struct LogReplay {
    records: Vec<Record>,
    last_lsn: Lsn,
    log_bytes: u64,
    /// Index of the first segment read; the ones before it are covered by the snapshot.
    start: usize,
    tail: Option<Tail>,
    /// [`StoreOptions::replay_torn_tail`]: the planted bug.
    #[cfg(any(test, feature = "planted"))]
    replay_torn_tail: bool,
    /// [`StoreOptions::read_unsynced`]: the planted bug.
    #[cfg(any(test, feature = "planted"))]
    read_unsynced: bool,
}

impl LogReplay {
    fn run<D: Disk>(
        disk: &mut D,
        segments: &[(Lsn, String)],
        base: Lsn,
        options: StoreOptions,
        warnings: &mut Vec<RecoveryWarning>,
    ) -> Result<Self, RecoveryError> {
        // The last segment starting at or before base+1 holds base+1 if anything does.
        let start = segments.iter().rposition(|(first, _)| *first <= next(base)).unwrap_or(0);
        let mut replay = LogReplay {
            records: Vec::new(),
            last_lsn: base,
            log_bytes: 0,
            start,
            tail: None,
            #[cfg(any(test, feature = "planted"))]
            replay_torn_tail: options.replay_torn_tail,
            #[cfg(any(test, feature = "planted"))]
            read_unsynced: options.read_unsynced,
        };
        for (i, (first, file)) in segments.iter().enumerate().skip(start) {
            let damage = if *first > next(replay.last_lsn) {
                let reason = format!(
                    "lsn gap: the segment starts at {} but the log before it ends at {}",
                    first.0, replay.last_lsn.0
                );
                Some(Damage { offset: 0, reason, next_lsn: *first })
            } else {
                let is_last = i + 1 == segments.len();
                replay.read_segment(disk, *first, file, base, is_last, warnings)?
            };
            if let Some(damage) = damage {
                replay.cut(disk, &segments[i..], damage, options, warnings)?;
                break;
            }
        }
        Ok(replay)
    }

    fn read_segment<D: Disk>(
        &mut self,
        disk: &mut D,
        first: Lsn,
        file: &str,
        base: Lsn,
        is_last: bool,
        warnings: &mut Vec<RecoveryWarning>,
    ) -> Result<Option<Damage>, DiskError> {
        let bytes = disk.read(file)?;
        // What was written but never synced (the process died first) is returned as durable.
        #[cfg(any(test, feature = "planted"))]
        let sync = !self.read_unsynced;
        #[cfg(not(any(test, feature = "planted")))]
        let sync = true;
        if sync {
            disk.sync(file)?;
        }
        let mut offset = 0;
        let mut next_lsn = first;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let frame = match codec::decode_frame(rest) {
                Ok(frame) => frame,
                // Space filled ahead of the frames, never written: the end of the segment.
                Err(_) if all_zero(rest) => break,
                Err(e) if is_last && is_torn_tail(rest, &e) => {
                    #[cfg(any(test, feature = "planted"))]
                    if self.planted_replay_torn(disk, file, offset, rest, next_lsn, base)? {
                        next_lsn = next(next_lsn);
                        offset = disk.len(file)? as usize;
                        break;
                    }
                    cut_file(disk, file, offset)?;
                    let (offset, bytes_cut, reason) =
                        (offset as u64, rest.len() as u64, e.to_string());
                    warnings.push(RecoveryWarning::TornTail {
                        file: file.to_owned(),
                        offset,
                        bytes_cut,
                        reason,
                    });
                    break;
                }
                Err(e) => return Ok(Some(Damage { offset, reason: e.to_string(), next_lsn })),
            };
            let in_sequence =
                frame.lsn == next_lsn && (frame.lsn <= base || frame.lsn == next(self.last_lsn));
            if !in_sequence {
                let reason = format!("lsn {} where {} was expected", frame.lsn.0, next_lsn.0);
                return Ok(Some(Damage { offset, reason, next_lsn }));
            }
            if frame.lsn > base {
                self.records.push(frame.record);
                self.last_lsn = frame.lsn;
                self.log_bytes += frame.len as u64;
            }
            next_lsn = next(frame.lsn);
            offset += frame.len;
        }
        self.tail = Some(Tail { file: file.to_owned(), next_lsn, len: offset as u64 });
        Ok(None)
    }

    /// The planted bug [`StoreOptions::replay_torn_tail`]: a torn message at `offset` of `file`
    /// is replayed with the text the crash left, and written back whole so that the log stays
    /// readable. Returns whether it did.
    #[cfg(any(test, feature = "planted"))]
    fn planted_replay_torn<D: Disk>(
        &mut self,
        disk: &mut D,
        file: &str,
        offset: usize,
        rest: &[u8],
        next_lsn: Lsn,
        base: Lsn,
    ) -> Result<bool, DiskError> {
        if !self.replay_torn_tail {
            return Ok(false);
        }
        // What the crash kept of the frame: the zeros after it are filled space.
        let kept = rest.len() - rest.iter().rev().take_while(|&&b| b == 0).count();
        let Some((lsn, record)) = codec::salvage_torn_message(&rest[..kept]) else {
            return Ok(false);
        };
        if lsn != next_lsn || lsn <= base || lsn != next(self.last_lsn) {
            return Ok(false);
        }
        let mut frame = Vec::new();
        codec::encode_frame(lsn, &record, &mut frame).expect("a salvaged record re-encodes");
        cut_file(disk, file, offset)?;
        disk.append(file, &frame)?;
        disk.sync(file)?;
        self.records.push(record);
        self.last_lsn = lsn;
        self.log_bytes += frame.len() as u64;
        Ok(true)
    }

    /// Handles damage at `damage.offset` of `segments[0]`: refuses, or cuts the log there.
    fn cut<D: Disk>(
        &mut self,
        disk: &mut D,
        segments: &[(Lsn, String)],
        damage: Damage,
        options: StoreOptions,
        warnings: &mut Vec<RecoveryWarning>,
    ) -> Result<(), RecoveryError> {
        let file = &segments[0].1;
        if !options.accept_data_loss {
            let (offset, reason) = (damage.offset as u64, damage.reason);
            return Err(RecoveryError::Corrupt { file: file.clone(), offset, reason });
        }
        let len = disk.read(file)?.len();
        let bytes_cut = len.saturating_sub(damage.offset) as u64;
        let (offset, reason) = (damage.offset as u64, damage.reason);
        warnings.push(RecoveryWarning::DataLoss { file: file.clone(), offset, bytes_cut, reason });
        let doomed = if damage.next_lsn == next(self.last_lsn) {
            cut_file(disk, file, damage.offset)?;
            let len = damage.offset as u64;
            self.tail = Some(Tail { file: file.clone(), next_lsn: damage.next_lsn, len });
            &segments[1..]
        } else {
            // Even cut, this segment could not continue the log (a gap, or it ends before the
            // snapshot, which covers its records): it goes too.
            segments
        };
        for (_, file) in doomed {
            disk.remove(file)?;
            warnings.push(RecoveryWarning::SegmentDiscarded { file: file.clone() });
        }
        Ok(())
    }

    /// The segment to write to, and where its next frame goes: the tail if it continues the
    /// log, else a new one.
    fn active_segment<D: Disk>(&self, disk: &mut D) -> Result<(String, u64), DiskError> {
        let next_lsn = next(self.last_lsn);
        match &self.tail {
            Some(tail) if tail.next_lsn == next_lsn => Ok((tail.file.clone(), tail.len)),
            _ => {
                let file = segment_name(next_lsn);
                disk.write_new(&file, &[])?;
                Ok((file, 0))
            }
        }
    }
}

/// Whether a frame that fails to decode at `rest` (the end of the last segment) is what a
/// crash leaves: a frame cut short, or a last frame whose bytes did not all reach the disk.
/// A crash keeps a prefix of what was written since the last sync (see [`super::disk`]), so
/// after a torn frame come only zeros: the file's end, or space filled ahead that the frame
/// was overwriting. (Its length field may be torn too, but then it reads shorter than it was,
/// and what follows the length it reads is zeros as well.)
fn is_torn_tail(rest: &[u8], error: &FrameError) -> bool {
    match error {
        FrameError::Incomplete { .. } => true,
        FrameError::Checksum { .. } => {
            codec::frame_len_declared(rest).and_then(|len| rest.get(len..)).is_some_and(all_zero)
        }
        FrameError::TooLong { .. } | FrameError::Record(_) => false,
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

fn cut_file<D: Disk>(disk: &mut D, file: &str, offset: usize) -> Result<(), DiskError> {
    disk.truncate(file, offset as u64)?;
    // Synced now so that records appended after the cut never follow the cut bytes on disk.
    disk.sync(file)
}

/// Removes the segments and snapshots that the snapshot used makes redundant.
fn remove_covered<D: Disk>(
    disk: &mut D,
    layout: &Layout,
    replay: &LogReplay,
    snapshot: Option<&LoadedSnapshot>,
) -> Result<(), DiskError> {
    let Some(snapshot) = snapshot else {
        return Ok(());
    };
    for (_, file) in &layout.segments[..replay.start] {
        disk.remove(file)?;
    }
    for (_, file) in layout.snapshots.iter().filter(|(lsn, _)| *lsn < snapshot.lsn) {
        disk.remove(file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::record::{AccountId, MsgId};
    use crate::store::codec::encode_frame;
    use crate::store::disk::tests::TempDir;
    use crate::store::disk::{FsDisk, MemDisk};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn msg(n: u64) -> Record {
        Record::Message {
            id: MsgId(n),
            from: "ann".into(),
            to: AccountId(2),
            text: format!("message {n:04}"),
        }
    }

    fn msgs(range: std::ops::RangeInclusive<u64>) -> Vec<Record> {
        range.map(msg).collect()
    }

    fn frame(lsn: u64, record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(Lsn(lsn), record, &mut out).expect("encodable");
        out
    }

    /// Filled ahead in small steps, so that tests fill many times and crash inside filled
    /// space.
    const TEST_PREALLOC_BYTES: u64 = 256;

    fn options() -> StoreOptions {
        StoreOptions { prealloc_bytes: TEST_PREALLOC_BYTES, ..StoreOptions::default() }
    }

    fn open<D: Disk>(disk: D) -> (Wal<D>, Recovered) {
        Wal::open(disk, options()).expect("recovers")
    }

    fn accepting_loss() -> StoreOptions {
        StoreOptions { accept_data_loss: true, ..options() }
    }

    /// Where the frames of `file` end: the zeros filled ahead (if any) start there.
    fn frames_end(disk: &impl Disk, file: &str) -> usize {
        let data = disk.read(file).expect("read");
        let mut at = 0;
        while let Ok(frame) = codec::decode_frame(&data[at..]) {
            at += frame.len;
        }
        at
    }

    /// Writes `bytes` where the frames of `file` end, over its filled space: what a torn or
    /// garbled write leaves there.
    fn write_after_frames(disk: &mut impl Disk, file: &str, bytes: &[u8]) {
        let at = frames_end(disk, file) as u64;
        disk.write_at(file, at, bytes).expect("write_at");
    }

    fn append_all<D: Disk>(wal: &mut Wal<D>, range: std::ops::RangeInclusive<u64>) {
        for n in range {
            wal.append(Lsn(n), &msg(n)).expect("append");
        }
    }

    /// A store on MemDisk holding records 1..=n, synced, and its segment's name.
    fn store_with(n: u64) -> (MemDisk, String) {
        let (mut wal, _) = open(MemDisk::new());
        append_all(&mut wal, 1..=n);
        wal.sync().expect("sync");
        (wal.into_disk(), segment_name(Lsn(1)))
    }

    #[test]
    fn file_names_parse_back() {
        assert_eq!(segment_name(Lsn(7)), "log-00000000000000000007.wal");
        assert_eq!(
            parse_numbered(&segment_name(Lsn(u64::MAX)), SEGMENT_PREFIX, SEGMENT_SUFFIX),
            Some(Lsn(u64::MAX))
        );
        assert_eq!(
            parse_numbered(&snapshot_name(Lsn(3)), SNAPSHOT_PREFIX, SNAPSHOT_SUFFIX),
            Some(Lsn(3))
        );
        assert_eq!(parse_numbered("log-7.wal", SEGMENT_PREFIX, SEGMENT_SUFFIX), None);
        assert_eq!(
            parse_numbered("log-+0000000000000000007.wal", SEGMENT_PREFIX, SEGMENT_SUFFIX),
            None
        );
    }

    #[test]
    fn a_new_store_is_empty_and_synced_records_come_back_in_order() {
        let (mut wal, recovered) = open(MemDisk::new());
        assert_eq!((recovered.records.len(), recovered.last_lsn), (0, Lsn(0)));
        assert_eq!(wal.disk().list().expect("list"), vec![segment_name(Lsn(1))]);
        append_all(&mut wal, 1..=5);
        assert_eq!(wal.sync().expect("sync"), Lsn(5));
        let (_, recovered) = open(wal.into_disk());
        assert_eq!(recovered.records, msgs(1..=5));
        assert_eq!(recovered.last_lsn, Lsn(5));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        let lsns: Vec<_> = recovered.log_records().map(|(lsn, _)| lsn.0).collect();
        assert_eq!(lsns, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn appends_must_follow_the_last_lsn() {
        let (mut wal, _) = open(MemDisk::new());
        let refused = wal.append(Lsn(2), &msg(2));
        assert!(matches!(
            refused,
            Err(StoreError::LsnOutOfOrder { expected: Lsn(1), got: Lsn(2) })
        ));
        wal.append(Lsn(1), &msg(1)).expect("in order");
        assert!(wal.append(Lsn(1), &msg(1)).is_err(), "a repeated lsn must be refused");
    }

    #[test]
    fn the_planted_torn_replay_returns_a_cut_text_and_the_log_stays_readable() {
        let (mut disk, file) = store_with(3);
        let torn = frame(4, &msg(4));
        write_after_frames(&mut disk, &file, &torn[..torn.len() - 3]);
        let planted = StoreOptions { replay_torn_tail: true, ..options() };
        let (mut wal, recovered) = Wal::open(disk, planted).expect("opens");
        let cut = Record::Message {
            id: MsgId(4),
            from: "ann".into(),
            to: AccountId(2),
            text: "message 0".into(),
        };
        let mut expected = msgs(1..=3);
        expected.push(cut);
        assert_eq!(recovered.records, expected, "the torn record comes back, cut short");
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        append_all(&mut wal, 5..=5);
        wal.sync().expect("sync");
        let (_, again) = open(wal.into_disk());
        assert_eq!(again.records.len(), 5, "the log stays readable: {:?}", again.warnings);
    }

    #[test]
    fn a_torn_last_record_is_cut_off_with_a_warning_naming_file_and_offset() {
        let (mut disk, file) = store_with(3);
        let synced_len = frames_end(&disk, &file);
        let torn = frame(4, &msg(4));
        write_after_frames(&mut disk, &file, &torn[..torn.len() / 2]);
        let file_len = disk.read(&file).expect("read").len();
        assert!(file_len > synced_len + torn.len() / 2, "zeros follow the torn frame");

        let (mut wal, recovered) = open(disk);
        assert_eq!(recovered.records, msgs(1..=3));
        match recovered.warnings.as_slice() {
            [warning @ RecoveryWarning::TornTail { file: f, offset, bytes_cut, .. }] => {
                assert_eq!(
                    (f, *offset, *bytes_cut),
                    (&file, synced_len as u64, (file_len - synced_len) as u64)
                );
                let shown = warning.to_string();
                assert!(
                    shown.contains(&file) && shown.contains(&format!("offset {synced_len}")),
                    "{shown}"
                );
            }
            other => panic!("expected one torn-tail warning, got {other:?}"),
        }
        assert_eq!(
            wal.disk().read(&file).expect("read").len(),
            synced_len,
            "the tail is truncated"
        );

        append_all(&mut wal, 4..=4);
        wal.sync().expect("sync");
        let (_, recovered) = open(wal.into_disk());
        assert_eq!(recovered.records, msgs(1..=4));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    }

    #[test]
    fn a_complete_last_frame_with_a_bad_checksum_is_a_torn_tail() {
        let mut bad = frame(4, &msg(4));
        let last = bad.len() - 1;
        bad[last] ^= 1;
        for prealloc_bytes in [0, TEST_PREALLOC_BYTES] {
            let (mut wal, _) = open(MemDisk::new());
            wal.options.prealloc_bytes = prealloc_bytes;
            append_all(&mut wal, 1..=3);
            wal.sync().expect("sync");
            let file = segment_name(Lsn(1));
            let mut disk = wal.into_disk();
            write_after_frames(&mut disk, &file, &bad);
            let (_, recovered) = open(disk);
            assert_eq!(recovered.records, msgs(1..=3), "prealloc {prealloc_bytes}");
            assert!(
                matches!(recovered.warnings.as_slice(), [RecoveryWarning::TornTail { .. }]),
                "prealloc {prealloc_bytes}: {:?}",
                recovered.warnings
            );
        }
    }

    #[test]
    fn zeros_past_the_last_record_end_the_log_and_stay_for_the_next_records() {
        let (mut disk, file) = store_with(3);
        let end = frames_end(&disk, &file);
        let file_len = disk.read(&file).expect("read").len();
        assert!(file_len > end, "the segment was filled ahead: {file_len} <= {end}");
        // Zeros a file system left after a crash count the same, filled or not.
        disk.append(&file, &[0; 100]).expect("append");
        let (mut wal, recovered) = open(disk);
        assert_eq!(recovered.records, msgs(1..=3));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(wal.disk().read(&file).expect("read").len(), file_len + 100, "nothing cut");
        append_all(&mut wal, 4..=5);
        wal.sync().expect("sync");
        assert_eq!(frames_end(wal.disk(), &file), end + frame(4, &msg(4)).len() * 2);
        let (_, recovered) = open(wal.into_disk());
        assert_eq!(recovered.records, msgs(1..=5));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    }

    #[test]
    fn a_torn_record_followed_by_zeros_is_cut_wherever_it_tears() {
        let torn = frame(4, &msg(4));
        // Every cut of the frame, its length field included: a torn length reads shorter than
        // it was, and zeros follow whatever it says.
        for kept in 1..torn.len() {
            let (mut disk, file) = store_with(3);
            write_after_frames(&mut disk, &file, &torn[..kept]);
            let (mut wal, recovered) = open(disk);
            assert_eq!(recovered.records, msgs(1..=3), "kept {kept}");
            assert!(
                matches!(recovered.warnings.as_slice(), [RecoveryWarning::TornTail { .. }]),
                "kept {kept}: {:?}",
                recovered.warnings
            );
            append_all(&mut wal, 4..=4);
            wal.sync().expect("sync");
            let (_, recovered) = open(wal.into_disk());
            assert_eq!(recovered.records, msgs(1..=4), "kept {kept}");
        }
    }

    #[test]
    fn a_segment_before_the_last_may_end_in_zeros_but_not_in_a_torn_record() {
        let (mut wal, _) = open(MemDisk::new());
        append_all(&mut wal, 1..=2);
        wal.sync().expect("sync");
        let first = segment_name(Lsn(1));
        let mut disk = wal.into_disk();
        assert!(disk.read(&first).expect("read").len() > frames_end(&disk, &first));
        let mut second = frame(3, &msg(3));
        second.extend([0; 40]);
        disk.write_new(&segment_name(Lsn(3)), &second).expect("write_new");
        let (_, recovered) = open(disk.clone());
        assert_eq!(recovered.records, msgs(1..=3));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);

        let torn = frame(3, &msg(3));
        write_after_frames(&mut disk, &first, &torn[..torn.len() / 2]);
        let error = Wal::open(disk, options()).expect_err("only the last segment tears");
        assert!(matches!(&error, RecoveryError::Corrupt { file, .. } if *file == first), "{error}");
    }

    #[test]
    fn the_log_fills_ahead_in_steps_and_a_flush_that_outruns_it_fills_first() {
        let (mut wal, _) = open(MemDisk::new());
        let file = segment_name(Lsn(1));
        let file_len = |wal: &Wal<MemDisk>| wal.disk().read(&file).expect("read").len() as u64;
        assert!(wal.extend_ahead().expect("fill"), "an empty segment has no space");
        assert_eq!(file_len(&wal), TEST_PREALLOC_BYTES);
        assert!(!wal.extend_ahead().expect("fill"), "a whole chunk is left");
        // Far more than a chunk in one batch: the flush fills to fit it.
        append_all(&mut wal, 1..=20);
        wal.sync().expect("sync");
        let end = frames_end(wal.disk(), &file) as u64;
        assert!(end > TEST_PREALLOC_BYTES);
        assert_eq!(file_len(&wal), end + TEST_PREALLOC_BYTES);
        assert_eq!(wal.disk().synced_len(&file), Some(file_len(&wal) as usize));
        let (_, recovered) = open(wal.into_disk());
        assert_eq!(recovered.records, msgs(1..=20));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
    }

    #[test]
    fn a_corrupt_record_before_the_tail_refuses_to_start_unless_loss_is_accepted() {
        let (mut disk, file) = store_with(5);
        let frame_len = frame(1, &msg(1)).len();
        let offset = 2 * frame_len;
        disk.corrupt(&file, offset + FRAME_HEADER_LEN_FOR_TESTS + 3, b'#').expect("corrupt");

        let error = Wal::open(disk.clone(), options()).expect_err("must refuse");
        let shown = error.to_string();
        assert!(
            matches!(&error, RecoveryError::Corrupt { file: f, offset: o, .. } if *f == file && *o == offset as u64),
            "{error:?}"
        );
        assert!(shown.contains(&file) && shown.contains(&format!("offset {offset}")), "{shown}");

        let (mut wal, recovered) = Wal::open(disk, accepting_loss()).expect("accepts the loss");
        assert_eq!(recovered.records, msgs(1..=2));
        assert!(
            matches!(recovered.warnings.as_slice(), [RecoveryWarning::DataLoss { offset: o, .. }] if *o == offset as u64)
        );
        assert!(recovered.warnings[0].to_string().contains("DATA LOST"));
        append_all(&mut wal, 3..=3);
        wal.sync().expect("sync");
        let (_, recovered) = open(wal.into_disk());
        assert_eq!(recovered.records, msgs(1..=3));
    }

    const FRAME_HEADER_LEN_FOR_TESTS: usize = codec::FRAME_HEADER_LEN;

    #[test]
    fn an_lsn_gap_between_segments_refuses_to_start() {
        let mut disk = MemDisk::new();
        let mut first = frame(1, &msg(1));
        first.extend(frame(2, &msg(2)));
        disk.write_new(&segment_name(Lsn(1)), &first).expect("write");
        disk.write_new(&segment_name(Lsn(4)), &frame(4, &msg(4))).expect("write");

        let error = Wal::open(disk.clone(), options()).expect_err("must refuse");
        assert!(
            matches!(&error, RecoveryError::Corrupt { file, offset: 0, .. } if *file == segment_name(Lsn(4))),
            "{error}"
        );

        let (_, recovered) = Wal::open(disk, accepting_loss()).expect("accepts the loss");
        assert_eq!(recovered.records, msgs(1..=2));
        assert!(recovered
            .warnings
            .contains(&RecoveryWarning::SegmentDiscarded { file: segment_name(Lsn(4)) }));
    }

    #[test]
    fn an_lsn_out_of_sequence_inside_a_segment_is_corruption() {
        let mut disk = MemDisk::new();
        let mut bytes = frame(1, &msg(1));
        bytes.extend(frame(3, &msg(3)));
        bytes.extend(frame(4, &msg(4)));
        disk.write_new(&segment_name(Lsn(1)), &bytes).expect("write");
        let error = Wal::open(disk, options()).expect_err("must refuse");
        assert!(error.to_string().contains("lsn 3 where 2 was expected"), "{error}");
    }

    /// The log's size since the snapshot survives a restart: it decides when the next
    /// snapshot compacts the log, and a server restarted more often than the log reaches its
    /// threshold would otherwise never compact (the log grows without bound). Found by the
    /// outside tester's fourth pass (the mutation escaped every test); planted as
    /// `RecoveryForgetsLogSize`.
    #[test]
    fn a_restart_remembers_the_log_bytes_since_the_snapshot_unless_planted() {
        for (forget_log_size, kept) in [(false, true), (true, false)] {
            let (mut wal, _) = open(MemDisk::new());
            append_all(&mut wal, 1..=3);
            wal.sync().expect("sync");
            wal.write_snapshot(Lsn(3), &msgs(1..=3)).expect("snapshot");
            append_all(&mut wal, 4..=9);
            wal.sync().expect("sync");
            let bytes = wal.log_bytes_since_snapshot();
            assert!(bytes > 0);
            let options = StoreOptions { forget_log_size, ..options() };
            let (wal, _) = Wal::open(wal.into_disk(), options).expect("recovers");
            assert_eq!(wal.log_bytes_since_snapshot() == bytes, kept, "forget {forget_log_size}");
        }
    }

    #[test]
    fn a_snapshot_replaces_the_files_it_covers() {
        let (mut wal, _) = open(MemDisk::new());
        append_all(&mut wal, 1..=5);
        wal.write_snapshot(Lsn(5), &msgs(1..=5)).expect("snapshot");
        assert_eq!(wal.durable_lsn(), Lsn(5));
        assert_eq!(wal.log_bytes_since_snapshot(), 0);
        assert_eq!(
            wal.disk().list().expect("list"),
            vec![segment_name(Lsn(6)), snapshot_name(Lsn(5))]
        );
        append_all(&mut wal, 6..=7);
        wal.sync().expect("sync");
        wal.write_snapshot(Lsn(7), &msgs(1..=7)).expect("snapshot");
        append_all(&mut wal, 8..=8);
        wal.sync().expect("sync");
        assert_eq!(
            wal.disk().list().expect("list"),
            vec![segment_name(Lsn(8)), snapshot_name(Lsn(7))]
        );

        let (_, recovered) = open(wal.into_disk());
        assert_eq!(recovered.records, msgs(1..=8));
        assert_eq!((recovered.snapshot_lsn, recovered.snapshot_records_len), (Lsn(7), 7));
        assert_eq!(recovered.log_records().map(|(lsn, _)| lsn).collect::<Vec<_>>(), vec![Lsn(8)]);
    }

    #[test]
    fn a_snapshot_must_be_at_the_last_appended_lsn() {
        let (mut wal, _) = open(MemDisk::new());
        append_all(&mut wal, 1..=3);
        let refused = wal.write_snapshot(Lsn(2), &msgs(1..=2));
        assert!(matches!(refused, Err(StoreError::SnapshotLsnMismatch { .. })));
        wal.append(Lsn(4), &msg(4)).expect("a refused snapshot does not poison the log");
    }

    #[test]
    fn a_damaged_snapshot_refuses_to_start() {
        let (mut wal, _) = open(MemDisk::new());
        append_all(&mut wal, 1..=3);
        wal.write_snapshot(Lsn(3), &msgs(1..=3)).expect("snapshot");
        let mut disk = wal.into_disk();
        disk.corrupt(&snapshot_name(Lsn(3)), 20, 0xee).expect("corrupt");
        let error = Wal::open(disk.clone(), options()).expect_err("must refuse");
        assert!(error.to_string().contains(&snapshot_name(Lsn(3))), "{error}");
        let (_, recovered) = Wal::open(disk, accepting_loss()).expect("accepts the loss");
        // The snapshot was the only copy of records 1..=3; the segment after it cannot follow
        // nothing, so it goes too.
        assert!(recovered.records.is_empty());
        assert!(
            matches!(recovered.warnings[0], RecoveryWarning::SnapshotDiscarded { .. }),
            "{:?}",
            recovered.warnings
        );
    }

    #[test]
    fn a_failed_write_poisons_the_log() {
        let (mut wal, _) = open(FailAfter::new(MemDisk::new(), None));
        wal.extend_ahead().expect("fill");
        append_all(&mut wal, 1..=2);
        wal.disk.ops_left = Some(1); // the write reaches the disk, its fsync fails
        assert!(matches!(wal.sync(), Err(StoreError::Disk(DiskError { op: "sync", .. }))));
        assert_eq!(wal.durable_lsn(), Lsn(0));
        wal.disk.ops_left = None;
        assert!(matches!(wal.append(Lsn(3), &msg(3)), Err(StoreError::Poisoned)));
        assert!(matches!(wal.sync(), Err(StoreError::Poisoned)));
    }

    /// A disk whose mutating operations start failing after a budget, as a disk that fills up or
    /// a process killed mid-operation would leave things.
    #[derive(Debug)]
    struct FailAfter<D> {
        inner: D,
        ops_left: Option<usize>,
    }

    impl<D: Disk> FailAfter<D> {
        fn new(inner: D, ops_left: Option<usize>) -> Self {
            FailAfter { inner, ops_left }
        }

        fn tick(&mut self, op: &'static str, name: &str) -> Result<(), DiskError> {
            match &mut self.ops_left {
                Some(0) => Err(DiskError {
                    op,
                    name: name.to_owned(),
                    source: std::io::Error::other("injected failure"),
                }),
                Some(n) => {
                    *n -= 1;
                    Ok(())
                }
                None => Ok(()),
            }
        }
    }

    impl<D: Disk> Disk for FailAfter<D> {
        fn list(&self) -> Result<Vec<String>, DiskError> {
            self.inner.list()
        }
        fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
            self.inner.read(name)
        }
        fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
            self.tick("append", name)?;
            self.inner.append(name, bytes)
        }
        fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
            self.tick("write_at", name)?;
            self.inner.write_at(name, offset, bytes)
        }
        fn sync(&mut self, name: &str) -> Result<(), DiskError> {
            self.tick("sync", name)?;
            self.inner.sync(name)
        }
        fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
            self.tick("write_new", name)?;
            self.inner.write_new(name, bytes)
        }
        fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
            self.tick("rename", from)?;
            self.inner.rename(from, to)
        }
        fn sync_dir(&mut self) -> Result<(), DiskError> {
            self.tick("sync_dir", "")?;
            self.inner.sync_dir()
        }
        fn remove(&mut self, name: &str) -> Result<(), DiskError> {
            self.tick("remove", name)?;
            self.inner.remove(name)
        }
        fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
            self.tick("truncate", name)?;
            self.inner.truncate(name, len)
        }
    }

    /// A snapshot written in pieces begins a segment, and records synced before the snapshot
    /// is in place go to it: its name must be durable before they are acknowledged. A power
    /// loss that undoes every directory change since the last directory sync, just before the
    /// snapshot's rename, keeps every synced record. (Without the directory sync when the
    /// segment is created, the planted `SnapshotSegmentNameUnsynced`, the segment and its
    /// synced records are lost.)
    #[test]
    fn records_synced_while_a_snapshot_is_written_survive_a_crash_before_it_is_in_place_unless_planted(
    ) {
        for segment_name_unsynced in [false, true] {
            let (disk, _) = store_with(5);
            let options = StoreOptions { segment_name_unsynced, ..options() };
            let (mut wal, _) = Wal::open(disk, options).expect("recovers");
            let write = wal.begin_snapshot(Lsn(5)).expect("begin").expect("a snapshot to write");
            append_all(&mut wal, 6..=7);
            wal.sync().expect("sync");
            wal.write_snapshot_piece(&write, b"part of a snapshot").expect("piece");
            let mut disk = wal.into_disk();
            disk.crash_keeping(|_, _| 0);
            let (_, recovered) = open(disk);
            let kept = recovered.records == msgs(1..=7);
            assert_eq!(kept, !segment_name_unsynced, "{:?}", recovered.records.len());
        }
    }

    #[test]
    fn a_crash_at_any_step_of_a_snapshot_recovers_every_record() {
        let mut saw_temp_removed = false;
        let mut saw_snapshot_used = false;
        for fail_at in 0..12 {
            for seed in 0..30 {
                let (mut disk, _) = store_with(5);
                let (mut wal, _) = open(FailAfter::new(disk, None));
                append_all(&mut wal, 6..=7); // unsynced: the snapshot syncs them first
                wal.disk.ops_left = Some(fail_at);
                let completed = wal.write_snapshot(Lsn(7), &msgs(1..=7)).is_ok();
                disk = wal.into_disk().inner;
                disk.crash(&mut ChaCha8Rng::seed_from_u64(seed));

                let (_, recovered) = open(disk);
                let context = format!("fail_at {fail_at} seed {seed}: {:?}", recovered.warnings);
                assert!(msgs(1..=7).starts_with(&recovered.records), "{context}");
                assert!(recovered.records.len() >= 5, "synced records lost: {context}");
                if completed {
                    assert_eq!(recovered.records, msgs(1..=7), "{context}");
                }
                saw_temp_removed |= recovered
                    .warnings
                    .iter()
                    .any(|w| matches!(w, RecoveryWarning::TempFileRemoved { .. }));
                saw_snapshot_used |= recovered.snapshot_lsn == Lsn(7);
            }
        }
        assert!(saw_temp_removed, "no run crashed between the snapshot's write and its rename");
        assert!(saw_snapshot_used, "no run recovered from the snapshot");
    }

    /// One crash-and-recover round of random work: appends, syncs, snapshots, then a crash,
    /// possibly in the middle of a disk operation. Returns what was appended and how much of it
    /// was durable.
    fn random_round(
        rng: &mut ChaCha8Rng,
        disk: MemDisk,
        mut appended: Vec<Record>,
        text_next: &mut u64,
        prealloc_bytes: u64,
    ) -> (MemDisk, Vec<Record>, usize) {
        let budget = if rng.gen_bool(0.5) { None } else { Some(rng.gen_range(0..40)) };
        let options = StoreOptions { prealloc_bytes, ..options() };
        let (mut wal, _) =
            Wal::open(FailAfter::new(disk, None), options).expect("a crash never corrupts");
        wal.disk.ops_left = budget;
        let mut durable_len = appended.len();
        for _ in 0..rng.gen_range(1..30) {
            let step = match rng.gen_range(0..11) {
                0..=5 => {
                    *text_next += 1;
                    let record = msg(*text_next);
                    let lsn = Lsn(appended.len() as u64 + 1);
                    appended.push(record.clone());
                    wal.append(lsn, &record).map(|_| ())
                }
                6..=8 => wal.sync().map(|_| durable_len = appended.len()),
                9 => wal.extend_ahead().map(|_| ()),
                _ => {
                    let lsn = Lsn(appended.len() as u64);
                    wal.write_snapshot(lsn, &appended).map(|_| durable_len = appended.len())
                }
            };
            if step.is_err() {
                break;
            }
        }
        let mut disk = wal.into_disk().inner;
        disk.crash(rng);
        (disk, appended, durable_len)
    }

    #[test]
    fn crashes_keep_every_synced_record_and_invent_none() {
        for seed in 0..300 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // Plain appends, and filled space in steps smaller and larger than a batch.
            let prealloc_bytes = [0, 64, TEST_PREALLOC_BYTES][seed as usize % 3];
            let (mut disk, mut appended, mut text_next) = (MemDisk::new(), Vec::new(), 0);
            for round in 0..4 {
                let (crashed, all, durable_len) =
                    random_round(&mut rng, disk, appended, &mut text_next, prealloc_bytes);
                let (wal, recovered) = open(crashed);
                let context = format!("seed {seed} round {round}: {:?}", recovered.warnings);
                assert!(
                    all.starts_with(&recovered.records),
                    "a record that was never appended: {context}"
                );
                assert!(
                    recovered.records.len() >= durable_len,
                    "a synced record was lost: {context}"
                );
                assert_eq!(recovered.last_lsn, Lsn(recovered.records.len() as u64), "{context}");
                appended = recovered.records;
                disk = wal.into_disk();
            }
        }
    }

    #[test]
    fn a_crash_during_recovery_loses_nothing() {
        let mut failed_midway = 0;
        for seed in 0..200 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            // Give recovery work to do: a torn tail to cut and sync, a temp snapshot to remove.
            let (mut disk, file) = store_with(5);
            let torn = frame(6, &msg(6));
            write_after_frames(&mut disk, &file, &torn[..torn.len() - 3]);
            disk.sync(&file).expect("sync");
            let temp = format!("{}{TEMP_SUFFIX}", snapshot_name(Lsn(5)));
            disk.write_new(&temp, b"half a snapshot").expect("write_new");
            disk.sync(&temp).expect("sync");
            disk.sync_dir().expect("sync_dir");

            for attempt in 0..3 {
                let mut failing = FailAfter::new(disk, Some(rng.gen_range(0..6)));
                let result = Wal::open(&mut failing, options()).map(|(_, r)| r);
                match result {
                    Ok(recovered) => assert_eq!(recovered.records, msgs(1..=5), "seed {seed}"),
                    Err(RecoveryError::Disk(_)) => failed_midway += 1,
                    Err(e) => panic!("seed {seed} attempt {attempt}: {e}"),
                }
                disk = failing.inner;
                disk.crash(&mut rng);
            }
            let (_, recovered) = open(disk);
            assert_eq!(recovered.records, msgs(1..=5), "seed {seed}");
        }
        assert!(failed_midway > 0, "no recovery was interrupted");
    }

    #[test]
    fn fs_disk_store_round_trips_through_a_snapshot() {
        let dir = TempDir::new("wal");
        let (mut wal, _) = open(FsDisk::open(&dir.0).expect("open dir"));
        append_all(&mut wal, 1..=100);
        wal.sync().expect("sync");
        wal.write_snapshot(Lsn(100), &msgs(1..=100)).expect("snapshot");
        append_all(&mut wal, 101..=150);
        wal.sync().expect("sync");
        drop(wal);
        let (wal, recovered) = open(FsDisk::open(&dir.0).expect("reopen dir"));
        assert_eq!(recovered.records, msgs(1..=150));
        assert_eq!(recovered.snapshot_lsn, Lsn(100));
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        let files = wal.disk().list().expect("list");
        assert_eq!(files, vec![segment_name(Lsn(101)), snapshot_name(Lsn(100))]);
    }
}
