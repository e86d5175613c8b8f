//! The store seen through the whole server: damage to the log files on disk and what a restart
//! makes of it (a torn tail, damage accepted as data loss, a snapshot interrupted before its
//! rename), and compaction keeping the log bounded while messages flow.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chatroom::core::{Config, Lsn, Server};
use chatroom::net::{ServerConfig, ServerHandle};
use chatroom::store::{Disk, DiskError, FsDisk, FsyncPolicy, StoreOptions, Wal};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use support::*;

fn data_dir(name: &str) -> ScratchDir {
    fresh_dir("store", name)
}

fn config_in(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    config.data_dir = Some(dir.to_path_buf());
    // `assert_bob_receives` reads with the original client's bare relay.
    config.core.bare_relay_allowed = true;
    config
}

/// A log sink for tracing that the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts a server and returns it with what it logged while starting (recovery runs on the
/// starting thread).
fn start_logged(config: ServerConfig) -> (ServerHandle, String) {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    let server = tracing::subscriber::with_default(subscriber, || ServerHandle::start(config))
        .expect("server starts");
    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).expect("UTF-8 log");
    (server, logged)
}

fn text(i: usize) -> String {
    format!("msg-{i:03}")
}

/// A store where alice sent `len` messages to bob, who is offline.
fn store_with_messages(dir: &Path, len: usize) {
    let server = ServerHandle::start(config_in(dir)).expect("server starts");
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    for i in 0..len {
        assert_eq!(alice.request(&format!("2\nbob\n{}", text(i))), "0\nSent to recipient");
    }
    drop((alice, bob));
    server.shutdown();
}

/// Logs bob in and reads exactly `expected` from alice on his relay, then nothing more (alice
/// logs in to send the marker).
fn assert_bob_receives(server: &ServerHandle, expected: &[String]) {
    assert_eq!(server.queue_len("bob"), Some(expected.len()));
    let mut bob = Conn::connect(server.command_addr());
    assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
    let mut relay = bare_relay(server, "bob");
    for text in expected {
        assert_eq!(relay.recv(), format!("0\nalice:{text}"));
    }
    let mut alice = Conn::connect(server.command_addr());
    assert_eq!(alice.request("1\nalice\npw"), "0\nSuccessful Login");
    assert_nothing_before_marker(&mut relay, &mut alice, "alice", "bob");
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

fn last_segment(dir: &Path) -> PathBuf {
    files_with_suffix(dir, ".wal").pop().expect("a log segment")
}

#[test]
fn a_torn_last_record_is_cut_with_a_warning_and_the_rest_is_kept() {
    let dir = data_dir("torn");
    store_with_messages(&dir, 20);
    let segment = last_segment(&dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    let mut end = 0;
    while let Ok(frame) = chatroom::store::codec::decode_frame(&bytes[end..]) {
        end += frame.len;
    }
    assert!(bytes.len() > end, "the segment is filled ahead of its records");
    // The last record is the last message; zeroing its last 5 bytes (as a torn overwrite of
    // the space filled ahead leaves it) makes it half-written.
    bytes[end - 5..end].fill(0);
    std::fs::write(&segment, &bytes).unwrap();

    let (server, logged) = start_logged(config_in(&dir));
    assert!(logged.contains("WARN") && logged.contains("torn write"), "{logged}");
    let file_name = segment.file_name().unwrap().to_str().unwrap();
    assert!(logged.contains(file_name), "{logged}");
    let mut alice = user(&server, "alice");
    assert_eq!(alice.request("2\nbob\nafter the cut"), "0\nSent to recipient");
    drop(alice);
    server.shutdown();

    // What came after the cut was appended where the torn record was, and survives too.
    let (server, logged) = start_logged(config_in(&dir));
    assert!(!logged.contains("WARN"), "{logged}");
    let mut expected: Vec<String> = (0..19).map(text).collect();
    expected.push("after the cut".into());
    assert_bob_receives(&server, &expected);
    server.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accepting_data_loss_starts_with_the_records_before_the_damage() {
    let dir = data_dir("loss");
    store_with_messages(&dir, 20);
    let segment = last_segment(&dir);
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(7).position(|w| w == text(10).as_bytes()).expect("message 10 logged");
    bytes[at] ^= 0x20; // m -> M: the frame's checksum no longer matches
    std::fs::write(&segment, bytes).unwrap();

    let mut config = config_in(&dir);
    config.store.accept_data_loss = true;
    let (server, logged) = start_logged(config);
    assert!(logged.contains("DATA LOST"), "{logged}");
    assert_eq!(server.queue_len("bob"), Some(10));
    let mut alice = user(&server, "alice");
    assert_eq!(alice.request("2\nbob\nafter the loss"), "0\nSent to recipient");
    drop(alice);
    server.shutdown();

    // The damage was cut away: the next start needs no permission.
    let (server, logged) = start_logged(config_in(&dir));
    assert!(!logged.contains("WARN"), "{logged}");
    let mut expected: Vec<String> = (0..10).map(text).collect();
    expected.push("after the loss".into());
    assert_bob_receives(&server, &expected);
    server.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A directory whose renames fail: a snapshot written through it stops after its temporary
/// file is written and synced, exactly where a crash before the rename would leave it.
struct NoRename(FsDisk);

impl Disk for NoRename {
    fn list(&self) -> Result<Vec<String>, DiskError> {
        self.0.list()
    }
    fn read(&self, name: &str) -> Result<Vec<u8>, DiskError> {
        self.0.read(name)
    }
    fn append(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.0.append(name, bytes)
    }
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), DiskError> {
        self.0.write_at(name, offset, bytes)
    }
    fn sync(&mut self, name: &str) -> Result<(), DiskError> {
        self.0.sync(name)
    }
    fn write_new(&mut self, name: &str, bytes: &[u8]) -> Result<(), DiskError> {
        self.0.write_new(name, bytes)
    }
    fn rename(&mut self, from: &str, _to: &str) -> Result<(), DiskError> {
        let source = std::io::Error::other("the process died before the rename");
        Err(DiskError { op: "rename", name: from.to_owned(), source })
    }
    fn sync_dir(&mut self) -> Result<(), DiskError> {
        self.0.sync_dir()
    }
    fn remove(&mut self, name: &str) -> Result<(), DiskError> {
        self.0.remove(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), DiskError> {
        self.0.truncate(name, len)
    }
}

#[test]
fn a_snapshot_interrupted_before_its_rename_loses_nothing() {
    let dir = data_dir("snapshot-tmp");
    store_with_messages(&dir, 20);
    let disk = NoRename(FsDisk::open(dir.path_buf()).unwrap());
    let (mut wal, recovered) = Wal::open(disk, StoreOptions::default()).expect("recovers");
    let rng = ChaCha20Rng::seed_from_u64(1);
    let state = Server::recover(Config::default(), rng, recovered.records, recovered.last_lsn)
        .expect("replays");
    let error = wal.write_snapshot(recovered.last_lsn, &state.snapshot()).expect_err("no rename");
    assert!(error.to_string().contains("rename"), "{error}");
    drop(wal);
    let temp = files_with_suffix(&dir, ".tmp");
    assert_eq!(temp.len(), 1, "the snapshot's temporary file is left beside the log");
    assert_eq!(files_with_suffix(&dir, ".wal").len(), 1);
    assert!(files_with_suffix(&dir, ".snap").is_empty());

    let (server, logged) = start_logged(config_in(&dir));
    assert!(logged.contains("removed unfinished snapshot"), "{logged}");
    assert!(!temp[0].exists(), "the temporary file is removed");
    let mut alice = Conn::connect(server.command_addr());
    assert_eq!(alice.request("1\nalice\npw"), "0\nSuccessful Login");
    let expected: Vec<String> = (0..20).map(text).collect();
    assert_bob_receives(&server, &expected);
    server.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The store's files and their total size.
fn store_size(dir: &Path) -> (Vec<String>, u64) {
    let mut names = Vec::new();
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        // A file removed between listing and stat was being replaced by compaction.
        if let Ok(meta) = entry.metadata() {
            bytes += meta.len();
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    (names, bytes)
}

#[test]
fn snapshots_keep_the_log_bounded_while_messages_are_delivered() {
    const SNAPSHOT_LOG_BYTES_MIN: u64 = 4096;
    const MESSAGES: usize = 3000;
    // Compaction can lag the log by a snapshot or two (a snapshot is written while the log
    // goes on, up to three thresholds more); without it the log reaches ~200 KB.
    const STORE_BYTES_MAX: u64 = 64 * 1024;
    let dir = data_dir("compaction");
    let mut config = config_in(&dir);
    config.store.snapshot_log_bytes_min = SNAPSHOT_LOG_BYTES_MIN;
    // Space filled ahead counts in the files' sizes: a step of a snapshot's size keeps the
    // bound about the log, not the filling.
    config.store.prealloc_bytes = SNAPSHOT_LOG_BYTES_MIN;
    // Durability is not what is tested here; fsync would only make the test slow.
    config.fsync = FsyncPolicy::Never;
    let server = ServerHandle::start(config.clone()).expect("server starts");
    let mut alice = user(&server, "alice");
    let _bob = user(&server, "bob");
    let mut relay = bare_relay(&server, "bob");
    let mut store_bytes_max = 0;
    for i in 0..MESSAGES {
        assert_eq!(alice.request(&format!("2\nbob\n{}", text(i))), "0\nSent to recipient");
        assert_eq!(relay.recv(), format!("0\nalice:{}", text(i)));
        if i % 100 == 99 {
            // Compaction runs on the writer's thread and may lag on a loaded machine: the
            // bound must be reached, not hold at the instant sampled. Without compaction the
            // log only grows (about 200 KB by the end) and never comes back under it.
            let what = format!("at most {STORE_BYTES_MAX} bytes in 5 files after {i} messages");
            wait_until(&what, || {
                let (names, bytes) = store_size(&dir);
                bytes <= STORE_BYTES_MAX && names.len() <= 5
            });
            store_bytes_max = store_bytes_max.max(store_size(&dir).1);
        }
    }
    wait_queue_len(&server, "bob", 0);
    drop((alice, relay));
    server.shutdown();

    let (names, _) = store_size(&dir);
    let snapshot = names.iter().find(|n| n.ends_with(".snap")).expect("a snapshot");
    let first_segment = chatroom::store::wal::segment_name(Lsn(1));
    assert!(!names.contains(&first_segment), "the first segment was compacted away: {names:?}");
    eprintln!("store at most {store_bytes_max} bytes; at the end {names:?} ({snapshot})");
    let server = ServerHandle::start(config).expect("restarts from the snapshot");
    assert_eq!(server.queue_len("bob"), Some(0));
    let mut alice = Conn::connect(server.command_addr());
    assert_eq!(alice.request("1\nalice\npw"), "0\nSuccessful Login");
    server.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_server_on_the_same_data_dir_is_refused_until_the_first_stops() {
    let dir = data_dir("lock");
    let first = ServerHandle::start(config_in(&dir)).expect("the first server starts");
    let error = match ServerHandle::start(config_in(&dir)) {
        Ok(_) => panic!("two servers must not share a log"),
        Err(error) => error,
    };
    assert!(error.to_string().contains("data directory is in use"), "{error}");
    let mut alice = user(&first, "alice");
    assert_eq!(alice.request("2\nalice\nstill serving"), "0\nSent to recipient");
    first.shutdown();
    let second = ServerHandle::start(config_in(&dir)).expect("starts once the first is gone");
    second.shutdown();
}
