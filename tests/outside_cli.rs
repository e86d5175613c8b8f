//! The server's command line, from outside: every limit is validated before the server opens
//! anything. A zero that would make the server refuse every client (no queue room, no
//! connection, no request body, no login time, no password check) or an absurd value (a login
//! deadline whose milliseconds do not fit in 64 bits) is refused with an error naming the flag
//! and a non-zero exit, instead of a server that starts and then closes or refuses everyone.
//!
//! Before these checks `--login-deadline-s 18446744073709552` started a server whose login
//! deadline was 384 ms (the seconds times 1000 wrapped), and `--login-deadline-s` of `u64::MAX`
//! one that closed every new connection at once.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitStatus, Stdio};

/// Runs `chatroom server` on ephemeral ports with `flag value`; returns its exit status (None:
/// it kept running), stdout and stderr.
fn run_server(flag: &str, value: &str) -> (Option<ExitStatus>, String, String) {
    run_server_with(flag, &["--command-port", "0", "--relay-port", "0", flag, value])
}

/// Runs `chatroom server` with `args` (which choose the ports) in a fresh data directory.
fn run_server_with(name: &str, args: &[&str]) -> (Option<ExitStatus>, String, String) {
    let dir = support::fresh_dir("outside-cli", name.trim_start_matches('-'));
    let outcome = support::run_to_exit(&mut support::server_binary(&dir, args));
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

fn assert_refused(flag: &str, value: &str) {
    let (status, stdout, stderr) = run_server(flag, value);
    let status = status.unwrap_or_else(|| {
        panic!("`{flag} {value}` was accepted: the server ran; stdout {stdout:?}")
    });
    assert!(!status.success(), "`{flag} {value}` exited with success: {stdout:?} {stderr:?}");
    assert!(!stdout.contains("chatroom server: command"), "`{flag} {value}` served: {stdout:?}");
    assert!(
        stderr.contains(flag),
        "`{flag} {value}`: the error does not name the flag: {stderr:?}"
    );
}

#[test]
fn a_zero_that_would_refuse_every_client_is_refused_with_the_flag_named() {
    for flag in [
        "--queue-len-max",
        "--connections-max",
        "--connections-per-peer-max",
        "--login-deadline-s",
        "--frame-len-max",
        "--hash-jobs-max",
    ] {
        assert_refused(flag, "0");
    }
}

#[test]
fn a_login_deadline_whose_milliseconds_overflow_is_refused() {
    // 2^64 / 1000 rounded up: times 1000 it wraps to 384 ms.
    assert_refused("--login-deadline-s", "18446744073709552");
    assert_refused("--login-deadline-s", &u64::MAX.to_string());
}

#[test]
fn a_request_limit_beyond_what_the_log_can_record_is_refused() {
    // A log record holds 16 MiB at most; a message of this size could never be logged.
    assert_refused("--frame-len-max", &(16 << 20).to_string());
}

/// `chatroom client --timeout-s 0` was read as 1 s without a word; a zero wait for every
/// reply is refused like the server's zeros, before the client connects.
#[test]
fn the_client_refuses_a_zero_reply_timeout_naming_the_flag() {
    // A port that answers, so that a client that accepted the flag would connect and run.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut client = Command::new(env!("CARGO_BIN_EXE_chatroom"));
    client
        .args(["client", "--command-port", &port, "--relay-port", &port, "--timeout-s", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let (status, stdout, stderr) = support::run_to_exit(&mut client);
    let status = status.expect("the client exits by itself");
    assert!(!status.success(), "--timeout-s 0 was accepted: {stdout:?}");
    assert!(!stdout.contains("Connected"), "it connected: {stdout:?}");
    assert!(stderr.contains("--timeout-s"), "the error does not name the flag: {stderr:?}");
}

/// One port for both channels cannot work (the second bind fails); it used to fail with a bare
/// "Address already in use" that named neither port nor flag. Refused before binding, naming
/// both flags.
#[test]
fn one_port_for_both_channels_is_refused_naming_both_flags() {
    // A port nothing listens on: bound and released, so only the flag check can refuse it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let port = port.to_string();
    let (status, stdout, stderr) =
        run_server_with("same-port", &["--command-port", &port, "--relay-port", &port]);
    let status = status.unwrap_or_else(|| panic!("one port for both was accepted: {stdout:?}"));
    assert!(!status.success(), "exited with success: {stdout:?}");
    assert!(!stdout.contains("chatroom server: command"), "it served: {stdout:?}");
    for flag in ["--command-port", "--relay-port"] {
        assert!(stderr.contains(flag), "the error does not name {flag}: {stderr:?}");
    }
}

/// A port another program holds: the error names the channel, the address and the flag that
/// chose it, not only the system's "Address already in use" (which says neither which port
/// nor which of the two).
#[test]
fn a_port_held_by_another_program_is_named_in_the_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let args = ["--bind", "127.0.0.1", "--command-port", "0", "--relay-port", &port];
    let (status, stdout, stderr) = run_server_with("held-port", &args);
    let status = status.unwrap_or_else(|| panic!("a held port was bound: {stdout:?}"));
    assert!(!status.success(), "{stderr:?}");
    let addr = format!("127.0.0.1:{port}");
    assert!(stderr.contains(&addr), "the error does not name {addr}: {stderr:?}");
    assert!(stderr.contains("--relay-port"), "the error does not name the flag: {stderr:?}");
    drop(holder);
}

/// `--frame-len-max N` promises request bodies up to N bytes once logged in. Above the
/// server's unconfigurable 256 KiB bound on bytes buffered from a connection, a single request
/// within N was refused as "Too much sent without waiting for replies" and its connection
/// closed.
#[test]
fn a_request_within_a_raised_frame_len_max_is_served() {
    let frame_len_max = 1 << 20;
    let dir = support::fresh_dir("outside-cli", "frame-len");
    let frame_len = frame_len_max.to_string();
    let args = ["--command-port", "0", "--relay-port", "0", "--frame-len-max", &frame_len];
    let mut child = support::server_binary(&dir, &args)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn chatroom server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let command_addr = line
        .strip_prefix("chatroom server: command ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.parse().ok());
    let Some(command_addr) = command_addr else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the server did not start: {line:?}");
    };
    let mut alice = support::user_at(command_addr, "alice");
    // Well inside the flag's limit, and more than the 256 KiB buffered by default.
    let body = format!("2\nalice\n{}", "x".repeat(frame_len_max - 100));
    let reply = alice.request(&body);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(reply, "0\nSent to recipient");
}
