//! `chatroom bench` smoke runs with tiny parameters: each benchmark completes and reports what
//! it measured (figures are not asserted; only that nothing was lost or left unset up).

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .arg("bench")
        .args(args)
        .output()
        .expect("the chatroom binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "bench {args:?} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("cores available"), "{stdout}");
    stdout
}

#[test]
fn relay_delivers_everything_it_accepted() {
    let out = bench(&[
        "relay",
        "--pairs",
        "2",
        "--rate",
        "400",
        "--duration-s",
        "1",
        "--runs",
        "2",
        "--fsync",
        "never",
        "--fsync-probes",
        "10",
    ]);
    let run = out.lines().find(|l| l.starts_with("run 1:")).expect("a run line");
    // "run 1: delivered N of N accepted (0 refused, N sent)": everything sent was accepted and
    // delivered.
    let words: Vec<&str> = run.split_whitespace().collect();
    assert_eq!(words[3], words[5], "{run}");
    assert_eq!(words[7], "(0", "{run}");
    assert_eq!(words[9], words[3], "{run}");
    assert!(out.contains("disk: fdatasync after append:"), "{out}");
    assert!(out.contains("fsync never"), "{out}");
    assert!(out.contains("server CPU"), "{out}");
    assert!(out.contains("median (min-max) of 2 runs:"), "{out}");
}

#[test]
fn backlog_drains_every_queued_message_in_order() {
    let out = bench(&["backlog", "--messages", "3000", "--fsync", "never"]);
    assert!(out.contains("drained 3000 messages"), "{out}");
}

#[test]
fn idle_holds_the_clients_it_was_asked_for() {
    let out = bench(&["idle", "--clients", "20"]);
    assert!(out.contains("measuring 20"), "{out}");
    assert!(out.contains("run 1: 20 idle clients with relays"), "{out}");
    assert!(!out.contains("stopped early"), "{out}");
}

#[test]
fn idle_bare_holds_connections_that_never_log_in() {
    let out = bench(&["idle", "--clients", "20", "--bare"]);
    assert!(out.contains("run 1: 20 bare connections"), "{out}");
    assert!(!out.contains("stopped early"), "{out}");
}

#[test]
fn relay_at_full_speed_pinned_delivers_everything() {
    let out =
        bench(&["relay", "--pairs", "3", "--duration-s", "1", "--pin", "--fsync-probes", "0"]);
    let run = out.lines().find(|l| l.starts_with("run 1:")).expect("a run line");
    let words: Vec<&str> = run.split_whitespace().collect();
    assert_eq!(words[3], words[5], "{run}");
    assert!(out.contains("placement: pinned"), "{out}");
}
