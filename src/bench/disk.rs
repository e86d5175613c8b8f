//! This disk's fdatasync latency: the floor under the latency of a durable message, since the
//! server acknowledges a send (and pushes it) only after the log record is on disk.
//!
//! Two patterns are timed. `append` grows the file before each sync, as the log does today: the
//! sync must also commit the new file size (on ext4, a journal commit). `overwrite` rewrites
//! blocks of a file whose size and blocks were synced beforehand, so each sync writes data only:
//! what a log with preallocated segments would pay.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::BenchError;

/// Bytes written before each sync: about one small log record.
pub const RECORD_LEN: usize = 128;

/// How the probe writes before each sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPattern {
    /// Append a record (the file grows).
    Append,
    /// Overwrite a record inside an already synced file of the final size.
    Overwrite,
}

/// Writes `count` records of [`RECORD_LEN`] bytes to a new file in `dir` in `pattern`, calling
/// fdatasync after each as the log's writer does, and returns each sync's latency in
/// nanoseconds.
pub fn fdatasync_latency(
    dir: &Path,
    count: usize,
    pattern: SyncPattern,
) -> Result<Histogram<u64>, BenchError> {
    let io = |e: std::io::Error| BenchError::Other(format!("measuring fdatasync: {e}"));
    let path = dir.join("fdatasync-probe");
    let mut file =
        OpenOptions::new().create(true).truncate(true).write(true).open(&path).map_err(io)?;
    if pattern == SyncPattern::Overwrite {
        preallocate(&mut file, count * RECORD_LEN).map_err(io)?;
    }
    let record = [b'r'; RECORD_LEN];
    let mut latency_ns = Histogram::new_with_bounds(1_000, 10_000_000_000, 3).expect("bounds");
    for _ in 0..count {
        file.write_all(&record).map_err(io)?;
        let started = Instant::now();
        file.sync_data().map_err(io)?;
        latency_ns.saturating_record(started.elapsed().as_nanos() as u64);
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(latency_ns)
}

/// Writes `len` zero bytes (real blocks, not a hole), syncs them and the size, and rewinds.
fn preallocate(file: &mut File, len: usize) -> std::io::Result<()> {
    file.write_all(&vec![0; len])?;
    file.sync_all()?;
    file.seek(SeekFrom::Start(0))?;
    Ok(())
}
