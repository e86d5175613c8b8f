//! Recovery from damaged files, from outside: a data directory written by a real server is
//! damaged the ways a disk or an operator damages it, then `chatroom server` (the binary) is
//! started on it. A damaged snapshot (a flipped byte, cut in half, emptied) refuses to start
//! with an error naming the file and `--accept-data-loss`, and serves nothing; with that flag
//! it starts and says what it lost. A log cut inside its last record (a torn write) recovers
//! every record before the tear, each delivered once and in order.

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use support::*;

fn data_dir(name: &str) -> ScratchDir {
    fresh_dir("outside-rec", name)
}

/// The files in `dir` whose names end in `ext`, sorted.
fn files_ending(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    files
}

/// A data directory holding a snapshot (and a log after it): alice sent `sends` messages to
/// offline bob through an in-process server that snapshots every few records.
fn directory_with_a_snapshot(name: &str, sends: usize) -> ScratchDir {
    let dir = data_dir(name);
    let server = {
        let dir = dir.path_buf();
        start_with(move |c| {
            c.data_dir = Some(dir);
            c.store.snapshot_log_bytes_min = 1024;
        })
    };
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    for i in 0..sends {
        assert_eq!(alice.request(&format!("2\nbob\nm{i}")), "0\nSent to recipient");
    }
    wait_until("a snapshot is written", || !files_ending(&dir, "snap").is_empty());
    drop((alice, bob));
    server.shutdown();
    dir
}

/// `chatroom server` on `dir` with `extra` flags: its exit status if it exited by itself
/// within the deadline (else it is killed: `None`), its stdout and stderr.
fn run_binary(dir: &Path, extra: &[&str]) -> (Option<ExitStatus>, String, String) {
    let ports = ["--command-port", "0", "--relay-port", "0"];
    run_to_exit(server_binary(dir, &ports).args(extra))
}

/// Runs `chatroom server` until it prints its listening line (or exits), then kills it:
/// returns what it printed on stderr before that and whether it listened.
fn start_binary_and_kill(dir: &Path, extra: &[&str]) -> (bool, String) {
    let stderr_path = dir.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let ports = ["--command-port", "0", "--relay-port", "0"];
    let mut child = server_binary(dir, &ports)
        .args(extra)
        .stderr(stderr)
        .spawn()
        .expect("spawn chatroom server");
    let mut stdout = child.stdout.take().unwrap();
    // The first line, or end of file if the server exited: read byte by byte up to '\n'.
    let mut line = Vec::new();
    let mut byte = [0u8];
    while stdout.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0]);
    }
    let _ = child.kill();
    let _ = child.wait();
    let listened = String::from_utf8_lossy(&line).starts_with("chatroom server: command");
    let printed = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let _ = std::fs::remove_file(&stderr_path);
    (listened, printed)
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
    }
}

/// One way to damage a file's bytes.
type Damage = fn(&mut Vec<u8>);

#[test]
fn a_damaged_snapshot_refuses_to_start_naming_it_and_starts_only_accepting_the_loss() {
    let original = directory_with_a_snapshot("snap", 200);
    let damages: [(&str, Damage); 3] = [
        ("a flipped byte", |b| {
            let middle = b.len() / 2;
            b[middle] ^= 0xff;
        }),
        ("cut in half", |b| b.truncate(b.len() / 2)),
        ("emptied", |b| b.clear()),
    ];
    for (what, damage) in damages {
        let dir = data_dir("snap-damaged");
        copy_dir(&original, &dir);
        let snapshot = files_ending(&dir, "snap").pop().expect("a snapshot");
        let mut bytes = std::fs::read(&snapshot).unwrap();
        damage(&mut bytes);
        std::fs::write(&snapshot, bytes).unwrap();
        let name = snapshot.file_name().unwrap().to_str().unwrap().to_owned();

        let (status, stdout, stderr) = run_binary(&dir, &[]);
        let status = status.unwrap_or_else(|| panic!("{what}: the server ran: {stdout:?}"));
        assert!(!status.success(), "{what}: exited with success");
        assert!(!stdout.contains("chatroom server: command"), "{what}: it served: {stdout:?}");
        assert!(stderr.contains(&name), "{what}: the error does not name {name}: {stderr}");
        assert!(stderr.contains("--accept-data-loss"), "{what}: no way out named: {stderr}");
        assert!(files_ending(&dir, "snap").contains(&snapshot), "{what}: the snapshot was removed");

        let (listened, stderr) = start_binary_and_kill(&dir, &["--accept-data-loss"]);
        assert!(listened, "{what}: with --accept-data-loss it did not start: {stderr}");
        assert!(stderr.contains("DATA LOST") && stderr.contains(&name), "{what}: {stderr}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::remove_dir_all(&original).unwrap();
}

#[test]
fn a_log_torn_inside_its_last_record_recovers_every_record_before_it_once_and_in_order() {
    let dir = data_dir("torn");
    let start = |dir: &Path| {
        let dir = dir.to_path_buf();
        start_with(move |c| {
            c.data_dir = Some(dir);
            // The file ends where the records do, so cutting its end tears the last record.
            c.store.prealloc_bytes = 0;
        })
    };
    let server = start(&dir);
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    let sends = 50;
    for i in 0..sends {
        assert_eq!(alice.request(&format!("2\nbob\nm{i}")), "0\nSent to recipient");
    }
    drop((alice, bob));
    server.shutdown();
    let segment = files_ending(&dir, "wal").pop().expect("a log segment");
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(len - 3).unwrap();

    let (listened, stderr) = start_binary_and_kill(&dir, &[]);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(listened, "a torn tail refused to start: {stderr}");
    assert!(stderr.contains(name) && stderr.contains("torn"), "no warning naming it: {stderr}");

    let server = start(&dir);
    assert_eq!(server.queue_len("bob"), Some(sends - 1), "the torn send is the only one lost");
    // The original client's relay: bob logs in, then names himself on the relay port.
    let mut bob = Conn::connect(server.command_addr());
    assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
    let mut relay = bare_relay(&server, "bob");
    for i in 0..sends - 1 {
        assert_eq!(relay.recv(), format!("0\nalice:m{i}"));
    }
    wait_queue_len(&server, "bob", 0);
    drop((relay, bob));
    server.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}
