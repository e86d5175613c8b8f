//! This disk's fdatasync latency: the floor under the latency of a durable message, since the
//! server acknowledges a send (and pushes it) only after the log record is on disk.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;

use super::BenchError;

/// Bytes appended before each sync: about one small log record.
const RECORD_LEN: usize = 128;

/// Appends `count` records of [`RECORD_LEN`] bytes to a new file in `dir`, calling fdatasync
/// after each as the log's writer does, and returns the latency of each sync in nanoseconds.
pub fn fdatasync_latency(dir: &Path, count: usize) -> Result<Histogram<u64>, BenchError> {
    let io = |e: std::io::Error| BenchError::Other(format!("measuring fdatasync: {e}"));
    let path = dir.join("fdatasync-probe");
    let mut file =
        OpenOptions::new().create(true).truncate(true).write(true).open(&path).map_err(io)?;
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
