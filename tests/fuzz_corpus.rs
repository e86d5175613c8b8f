//! Every fuzz target's logic over its committed corpus (`fuzz/corpus/<target>/`), so that stable
//! `cargo test` replays the seeds and every crash ever found. A crash that fuzzing finds is
//! committed there as `crash-<what-broke>` and gets a named test in a `regressions` module here,
//! with a paragraph on the bug.

use std::path::{Path, PathBuf};

use chatroom::core::Record;
use chatroom::fuzzing;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable corpus entry").path())
        .collect();
    files.sort();
    files.into_iter().map(|path| (path.clone(), std::fs::read(&path).expect("readable"))).collect()
}

/// Runs `target` on every corpus file, naming the file that fails.
fn replay(target: &str, run: fn(&[u8])) {
    let files = corpus(target);
    assert!(files.len() >= 10, "the {target} corpus has only {} files", files.len());
    for (path, data) in files {
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target} fails on {}", path.display());
    }
}

#[test]
fn frame_decoder_corpus() {
    replay("frame_decoder", fuzzing::frame_decoder);
}

#[test]
fn request_parser_corpus() {
    replay("request_parser", fuzzing::request_parser);
}

#[test]
fn core_streams_corpus() {
    replay("core_streams", fuzzing::core_streams);
}

#[test]
fn log_recovery_corpus() {
    replay("log_recovery", fuzzing::log_recovery);
}

/// The committed seed that uses the ticketed-handshake operation really reaches the
/// acknowledgement path: a ticketed relay receives a push (`7\nID\n...`) and the message is then
/// recorded delivered, which on a ticketed relay only its acknowledgement does.
#[test]
fn ticket_seed_reaches_acknowledgements() {
    let data = std::fs::read(corpus_dir("core_streams").join("ticket_and_acks")).expect("the seed");
    let mut driver = fuzzing::core_streams_driver(&data).expect("a non-empty seed");
    let pushed: Vec<u64> = driver
        .conn_ids()
        .into_iter()
        .flat_map(|conn| driver.take(conn))
        .filter_map(|frame| frame.strip_prefix("7\n")?.split('\n').next()?.parse().ok())
        .collect();
    assert!(!pushed.is_empty(), "no ticketed relay received a push");
    let acknowledged: Vec<u64> = driver
        .records()
        .iter()
        .filter_map(|(_, record)| match record {
            Record::Delivered { ids, .. } => Some(ids.iter().map(|id| id.0)),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(
        pushed.iter().any(|id| acknowledged.contains(id)),
        "pushed {pushed:?} on ticketed relays, recorded delivered {acknowledged:?}"
    );
}

/// Named regressions: each input that once broke a target, with what the bug was.
mod regressions {
    use super::*;

    fn corpus_file(target: &str, name: &str) -> Vec<u8> {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target).join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A bug in the harness, not the store: the `log_recovery` target's "cut a file" damage
    /// truncated without syncing, so a later power loss (`MemDisk::crash`) rightly brought back
    /// the cut records, which the target then took for records the store invented. Damage now
    /// stands for what the medium holds and is synced. (The store itself syncs its own cuts.)
    #[test]
    fn log_recovery_unsynced_damage_undone_by_crash() {
        fuzzing::log_recovery(&corpus_file(
            "log_recovery",
            "regression_unsynced_damage_undone_by_crash",
        ));
    }

    /// A core bug, found by the CI's fuzz smoke run: a connection the core had closed for a bad
    /// frame header was still its user's session's command connection, so a takeover
    /// (`end_session`) armed its login deadline again, and the deadline sent a "Login timed
    /// out" notice after the close. A connection being closed now gets nothing more.
    #[test]
    fn core_streams_notice_after_close() {
        fuzzing::core_streams(&corpus_file("core_streams", "crash-notice-after-close"));
    }

    /// A store bug: recovery returned records that were written but never synced (the server
    /// process died before its fsync, the page cache kept them) and reported them durable, without
    /// syncing them. The restarted server acts on durable records (pushes them, builds on them);
    /// a power loss before its next fsync then took them away. Recovery now syncs every segment
    /// it reads before returning.
    #[test]
    fn log_recovery_recovered_records_are_synced() {
        use chatroom::core::{AccountId, Lsn, Record};
        use chatroom::store::{MemDisk, StoreOptions, Wal};
        use rand::SeedableRng;

        let options = StoreOptions::default();
        let (mut wal, _) = Wal::open(MemDisk::new(), options).expect("a new store");
        for lsn in 1..=3 {
            let record = Record::Register {
                account: AccountId(lsn),
                name: format!("u{lsn}"),
                password_hash: "h".into(),
            };
            wal.append(Lsn(lsn), &record).expect("append");
        }
        wal.flush().expect("flush");
        // The process dies before syncing; the restarted one finds the records.
        let (wal, recovered) = Wal::open(wal.into_disk(), options).expect("restart");
        assert_eq!((recovered.last_lsn, wal.durable_lsn()), (Lsn(3), Lsn(3)));
        // Power loss: what the restarted server took for durable must survive it.
        let mut disk = wal.into_disk();
        disk.crash(&mut rand_chacha::ChaCha20Rng::seed_from_u64(115));
        let (_, after_crash) = Wal::open(disk, options).expect("after the power loss");
        assert_eq!(after_crash.last_lsn, Lsn(3));
        fuzzing::log_recovery(&corpus_file("log_recovery", "regression_recovered_but_unsynced"));
    }
}
