//! `chatroom client` driven through its stdin, as a script (or a patient person) would.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chatroom::client::Client;
use chatroom::net::{ServerConfig, ServerHandle};

const TIMEOUT: Duration = Duration::from_secs(20);

/// `chatroom client` on `server`'s ports, its standard streams piped.
fn spawn_client(server: &ServerHandle) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .args(["client", "--command-port", &server.command_addr().port().to_string()])
        .args(["--relay-port", &server.relay_addr().port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the chatroom binary runs")
}

#[test]
fn the_terminal_client_logs_in_shows_queued_pushes_and_logs_out() {
    let server = ServerHandle::start(ServerConfig::ephemeral()).expect("server starts");
    // carol exists and has a message waiting from dave.
    let mut carol = Client::connect(server.command_addr()).unwrap();
    assert!(carol.register("carol", "pw").unwrap().ok);
    assert!(carol.logout().unwrap().ok);
    let mut dave = Client::connect(server.command_addr()).unwrap();
    assert!(dave.register("dave", "pw").unwrap().ok);
    assert!(dave.send("carol", "while you were away").unwrap().ok);

    let mut child = spawn_client(&server);
    let mut stdin = child.stdin.take().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        stdout.lines().map_while(Result::ok).for_each(|l| {
            let _ = lines_tx.send(l);
        })
    });
    let mut seen = Vec::new();
    let mut wait_for = |needle: &str| loop {
        let line = lines.recv_timeout(TIMEOUT).unwrap_or_else(|_| {
            panic!("no line containing {needle:?} within {TIMEOUT:?}; saw {seen:#?}")
        });
        seen.push(line.clone());
        if line.contains(needle) {
            return line;
        }
    };

    wait_for("Welcome! Connected to the server.");
    stdin.write_all(b"1\ncarol\npw\n").unwrap();
    wait_for("Successful Login");
    wait_for("[message from dave] while you were away");
    assert!(dave.send("carol", "live now").unwrap().ok);
    wait_for("[message from dave] live now");
    // Both messages are acknowledged once shown (the acknowledgement follows the printing).
    let deadline = std::time::Instant::now() + TIMEOUT;
    while server.queue_len("carol") != Some(0) {
        assert!(std::time::Instant::now() < deadline, "carol's pushes were never acknowledged");
        std::thread::sleep(Duration::from_millis(5));
    }
    stdin.write_all(b"4\n\n").unwrap();
    wait_for("carol dave ");
    stdin.write_all(b"2\nnobody\nhi\n").unwrap();
    wait_for("invalid recipient");
    stdin.write_all(b"-1\nq\n").unwrap();
    wait_for("Logging out");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", output.status);
    // Its input is a pipe, so passwords cannot be hidden: it says so.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("input is not a terminal: passwords are read as plain lines"),
        "{stderr}"
    );
    server.shutdown();
}

/// `chatroom client ... | head -1`: when whatever reads its output goes away, the client ends
/// quietly, as command-line tools do (by SIGPIPE), instead of panicking with "failed printing
/// to stdout" (exit code 101, a backtrace on stderr).
#[test]
fn the_client_ends_quietly_when_its_output_is_closed() {
    let server = ServerHandle::start(ServerConfig::ephemeral()).expect("server starts");
    let mut child = spawn_client(&server);
    drop(child.stdout.take());
    // Choices it answers on stdout, all written after its output is gone; then end of input.
    let mut stdin = child.stdin.take().unwrap();
    let _ = stdin.write_all("9\n".repeat(100).as_bytes());
    drop(stdin);
    let deadline = std::time::Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the client never ended");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "the client panicked: {stderr}");
    assert_ne!(status.code(), Some(101), "{stderr}");
    server.shutdown();
}
