//! The server at its open-file limit, as a `chatroom server` child started with a low
//! `RLIMIT_NOFILE` (set in the child before it runs the server, so the server reads it at
//! start).
//!
//! What PROTOCOL.md and README.md promise there: a connection beyond the server's connection
//! cap gets a failure reply that says so, then is closed (not the kernel's silence of a
//! connection left in the listen backlog), and the cap is derived from the open-file limit
//! unless `--connections-max` says otherwise. Given a cap above what the limit allows, the
//! server runs out of descriptors: it keeps serving every open connection, accepts a waiting
//! one once another closes, and still shuts down on Ctrl-C.
//!
//! The limit is checked by descriptor number (a new descriptor must be below it), so the tests
//! count the server's descriptors in `/proc/PID/fd` rather than assume which numbers are free,
//! and the child starts with only its standard streams: a descriptor the test runner leaves
//! open (inherited without close-on-exec) would otherwise shift the count, or sit above the
//! limit where no count reaches it. A test that fails prints the server's log and descriptors.

mod support;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{ticket_relay_at, user_at, AckedPush, Conn};

/// The open-file limit each test server runs under: the server's own files (stdio, log, lock,
/// listeners, epoll, waker) and the 64 descriptors it keeps for them leave room for a handful
/// of connections, so reaching the limit takes few clients.
const OPEN_FILES_MAX: u64 = 80;

/// How long the tests wait for the server to do something before failing: generous, for a
/// busy machine; a passing run waits far less.
const DEADLINE: Duration = Duration::from_secs(20);

struct Server {
    child: Child,
    command_addr: SocketAddr,
    relay_addr: SocketAddr,
    /// The child's stderr (its log), a line at a time.
    log: Receiver<String>,
    /// Every line the child has logged, printed if the test fails.
    log_kept: Arc<Mutex<Vec<String>>>,
    /// Held open: the server prints to stdout when it stops, and a closed pipe would fail it.
    _stdout: BufReader<ChildStdout>,
    _dir: ScratchDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("the server's descriptors: {}", self.fd_targets().join(", "));
            eprintln!("the server's log:");
            for line in self.log_kept.lock().unwrap().iter() {
                eprintln!("  {line}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory removed on drop.
struct ScratchDir(std::path::PathBuf);

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    /// Starts `chatroom server` with the open-file limit [`OPEN_FILES_MAX`] and `args`.
    fn start(name: &str, args: &[&str]) -> Server {
        let dir =
            std::env::temp_dir().join(format!("chatroom-fd-limit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut command = Command::new(env!("CARGO_BIN_EXE_chatroom"));
        command
            .args(["server", "--command-port", "0", "--relay-port", "0", "--fsync", "never"])
            .args(["--argon2-memory-kib", "8", "--argon2-iterations", "1"])
            .args(["--connections-per-peer-max", "1000", "--registrations-per-address-max", "1000"])
            .args(args)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit and close_range are async-signal-safe, and the closure touches
        // nothing else. Every descriptor above the standard streams is closed on exec (the one
        // reporting a failed exec to the parent already is).
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit { rlim_cur: OPEN_FILES_MAX, rlim_max: OPEN_FILES_MAX };
                let flags = libc::CLOSE_RANGE_CLOEXEC as libc::c_int;
                match (
                    libc::close_range(3, libc::c_uint::MAX, flags),
                    libc::setrlimit(libc::RLIMIT_NOFILE, &limit),
                ) {
                    (0, 0) => Ok(()),
                    _ => Err(std::io::Error::last_os_error()),
                }
            });
        }
        let mut child = command.spawn().expect("the chatroom binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let address_after = |word: &str| -> SocketAddr {
            let mut words = first.split_whitespace();
            words.find(|w| *w == word);
            let addr = words.next().unwrap_or_else(|| panic!("no {word} address in {first:?}"));
            addr.parse().unwrap()
        };
        let (command_addr, relay_addr) = (address_after("command"), address_after("relay"));
        let (tx, log) = mpsc::channel();
        let log_kept = Arc::new(Mutex::new(Vec::new()));
        let kept = log_kept.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let line = without_colours(&line);
                kept.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let _dir = ScratchDir(dir);
        Server { child, command_addr, relay_addr, log, log_kept, _stdout: stdout, _dir }
    }

    /// Waits for a log line containing `text`, returning it.
    fn log_line(&self, text: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("the server never logged a line with {text:?}"),
            }
        }
    }

    /// Descriptors the server has open now.
    fn open_fds(&self) -> u64 {
        let dir = format!("/proc/{}/fd", self.child.id());
        std::fs::read_dir(dir).expect("the server's descriptors").count() as u64
    }

    /// What each of the server's descriptors is open on (`3 -> socket:[1234]`), for a failure.
    fn fd_targets(&self) -> Vec<String> {
        let dir = format!("/proc/{}/fd", self.child.id());
        let Ok(entries) = std::fs::read_dir(dir) else { return vec!["(gone)".to_owned()] };
        let mut targets: Vec<String> = entries
            .map_while(Result::ok)
            .map(|e| {
                let target = std::fs::read_link(e.path()).unwrap_or_default();
                format!("{} -> {}", e.file_name().to_string_lossy(), target.display())
            })
            .collect();
        targets.sort_by_key(|t| t.split(' ').next().and_then(|n| n.parse::<u32>().ok()));
        targets
    }

    /// A logged-in user with a ticketed relay (acknowledging pushes).
    fn user(&self, name: &str) -> (Conn, Conn) {
        let mut command = user_at(self.command_addr, name);
        let relay = ticket_relay_at(self.relay_addr, &mut command, name);
        (command, relay)
    }

    /// Opens command connections that never log in until the server holds every descriptor
    /// below its limit, each known to be accepted by its reply to a request (`0` is help).
    ///
    /// Linux reserves a descriptor for an `accept` when the call starts, not when a connection
    /// arrives, so the relay port's accept, blocked while no relay connects, holds one that
    /// `/proc/PID/fd` does not list: the server is full at one listed descriptor below its
    /// limit, and says so as its command port's next accept fails.
    fn fill_to_the_limit(&self) -> Vec<Conn> {
        let mut fillers = Vec::new();
        while self.open_fds() < OPEN_FILES_MAX - 1 {
            let mut filler = Conn::connect(self.command_addr);
            let reply = filler.try_request("0");
            assert!(
                reply.as_deref().is_some_and(|r| r.starts_with("0\n")),
                "a connection made with {} of {OPEN_FILES_MAX} descriptors open was not served: \
                 {reply:?}",
                self.open_fds(),
            );
            fillers.push(filler);
        }
        fillers
    }

    /// Sends SIGINT (Ctrl-C) and waits for the server to exit.
    fn interrupt(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: a signal to our own child, which has not been waited for (so its pid is ours).
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "the server did not stop after Ctrl-C");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `from` sends `text` to `to`, whose relay receives it (and acknowledges it).
fn chat(from: (&str, &mut Conn), to: (&str, &mut Conn), text: &str) {
    let (from_name, from) = from;
    let (to_name, relay) = to;
    assert_eq!(from.request(&format!("2\n{to_name}\n{text}")), "0\nSent to recipient");
    let push = AckedPush::parse(&relay.recv());
    assert_eq!((push.from.as_str(), push.text.as_str()), (from_name, text));
    relay.send(&format!("7\n{}", push.id));
}

/// `line` without the terminal's colour codes (`ESC [ ... m`) that the log is written with.
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            plain.push(c);
        }
    }
    plain
}

/// A number logged as `key=N` in `line`.
fn logged_number(line: &str, key: &str) -> u64 {
    let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key} in {line:?}"));
    let digits: String =
        line[at + key.len() + 1..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| panic!("no number after {key} in {line:?}"))
}

#[test]
fn the_connection_cap_follows_the_open_file_limit_and_a_connection_beyond_it_is_told_so() {
    let server = Server::start("cap", &[]);
    let line = server.log_line("connections capped");
    let cap = logged_number(&line, "connections_max");
    assert!(line.contains(&format!("open-file limit {OPEN_FILES_MAX}")), "{line}");
    assert!((6..OPEN_FILES_MAX).contains(&cap), "{line}");

    // Two users, then connections that never log in, up to the cap.
    let (mut alice, mut alice_relay) = server.user("alice");
    let (mut bob, mut bob_relay) = server.user("bob");
    // A relay is accepted on its own port: a push arriving shows it is open and counted.
    chat(("alice", &mut alice), ("bob", &mut bob_relay), "hi bob");
    chat(("bob", &mut bob), ("alice", &mut alice_relay), "hi alice");
    let mut idle: Vec<Conn> = (4..cap).map(|_| Conn::connect(server.command_addr)).collect();
    // The cap is counted as connections open: wait until every idle one is (a reply to a
    // request says so; `0` is help).
    for conn in &mut idle {
        assert!(conn.request("0").starts_with("0\n"));
    }

    // One more: a failure reply that says why, then the connection closes.
    let mut refused = Conn::connect(server.command_addr);
    assert_eq!(refused.recv(), "-1\nThe server is at its connection limit; try again later");
    refused.assert_closed();
    // The open ones are served throughout.
    chat(("alice", &mut alice), ("bob", &mut bob_relay), "still there?");

    // Once one closes, a new user gets in (the server counts the closed one out on its own
    // time, so a refusal until then is retried).
    drop(idle.pop());
    let deadline = Instant::now() + DEADLINE;
    let mut carol = loop {
        let mut conn = Conn::connect(server.command_addr);
        match conn.try_request("3\ncarol\npw").as_deref() {
            Some("0\nSuccessful Created and logged in") => break conn,
            Some("-1\nThe server is at its connection limit; try again later") | None => {}
            Some(other) => panic!("unexpected reply {other:?}"),
        }
        assert!(Instant::now() < deadline, "no connection was let in after one closed");
        std::thread::sleep(Duration::from_millis(10));
    };
    chat(("carol", &mut carol), ("alice", &mut alice_relay), "let in");
    chat(("bob", &mut bob), ("alice", &mut alice_relay), "hello");
}

#[test]
fn out_of_descriptors_the_server_serves_its_clients_accepts_when_one_leaves_and_stops() {
    // A cap above what the limit allows, given explicitly: the server says so at start, then
    // runs out of descriptors before it reaches the cap.
    let mut server = Server::start("emfile", &["--connections-max", "1000"]);
    let line = server.log_line("connections_max");
    assert!(line.contains("WARN") && line.contains("connections_max=1000"), "{line}");
    assert!(line.contains(&format!("open-file limit {OPEN_FILES_MAX}")), "{line}");

    let (mut alice, mut alice_relay) = server.user("alice");
    let (mut bob, mut bob_relay) = server.user("bob");
    let (mut carol, mut carol_relay) = server.user("carol");
    // A relay is accepted on its own port: a push arriving shows it is open.
    chat(("alice", &mut alice), ("bob", &mut bob_relay), "hi bob");
    chat(("bob", &mut bob), ("carol", &mut carol_relay), "hi carol");
    chat(("carol", &mut carol), ("alice", &mut alice_relay), "hi alice");
    let fillers = server.fill_to_the_limit();
    server.log_line("Too many open files");

    // Dave connects: the kernel completes the handshake into the listen backlog, but the
    // server has no descriptor to accept him with, and keeps serving the others.
    let addr = (server.command_addr, server.relay_addr);
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let mut command = user_at(addr.0, "dave");
        let relay = ticket_relay_at(addr.1, &mut command, "dave");
        let _ = done_tx.send((command, relay));
    });
    chat(("alice", &mut alice), ("bob", &mut bob_relay), "still there?");
    assert!(done.try_recv().is_err(), "dave was served without a descriptor");

    // Carol leaves: her two descriptors close, and dave gets in.
    drop((carol, carol_relay));
    let (mut dave, mut dave_relay) = done.recv_timeout(DEADLINE).expect("dave is let in");
    server.log_line("accepting again");
    chat(("alice", &mut alice), ("dave", &mut dave_relay), "welcome");
    chat(("dave", &mut dave), ("bob", &mut bob_relay), "hello bob");
    chat(("bob", &mut bob), ("alice", &mut alice_relay), "hello alice");

    // Every descriptor in use again: Ctrl-C still stops the server (waking its accept loops
    // must not need a descriptor).
    let _more = server.fill_to_the_limit();
    let status = server.interrupt();
    assert!(status.success(), "{status}");
    server.log_line("chatroom server stopped");
    drop(fillers);
}
