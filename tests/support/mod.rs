//! Raw-frame helpers for end-to-end tests over real TCP: a test sees exactly the bytes.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use chatroom::net::{ServerConfig, ServerHandle};
use chatroom::wire::{encode, Decoder};

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn start() -> ServerHandle {
    start_with(|_| {})
}

/// A server for tests of the original client's protocol: it accepts the bare relay handshake
/// (which the shipped defaults refuse; `start_strict_with` keeps them) and many connections
/// from loopback.
pub fn start_with(change: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    start_strict_with(|config| {
        config.core.bare_relay_allowed = true;
        change(config);
    })
}

/// A server with the shipped relay rules (tickets only), and many connections and registrations
/// from loopback (where every test client comes from).
pub fn start_strict_with(change: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = ServerConfig::ephemeral();
    config.core.connections_per_peer_max = 1_000;
    config.core.registrations_per_peer_max = 100_000;
    change(&mut config);
    ServerHandle::start(config).expect("server starts")
}

/// One TCP connection that speaks frames.
pub struct Conn {
    pub stream: TcpStream,
    decoder: Decoder,
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        Conn::try_connect(addr).expect("connect")
    }

    /// Connects, or `None` if nothing listens at `addr` (the server died).
    pub fn try_connect(addr: SocketAddr) -> Option<Conn> {
        let stream = TcpStream::connect(addr).ok()?;
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Some(Conn { stream, decoder: Decoder::new(1 << 20) })
    }

    pub fn raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, body: &str) {
        self.send_bytes(body.as_bytes());
    }

    pub fn send_bytes(&mut self, body: &[u8]) {
        let mut frame = Vec::new();
        encode(body, &mut frame);
        self.raw(&frame);
    }

    /// The next frame's body; panics after [`TIMEOUT`].
    pub fn recv(&mut self) -> String {
        self.try_recv().expect("a frame before the connection ended")
    }

    /// The next frame's body, or `None` if the connection ended.
    pub fn try_recv(&mut self) -> Option<String> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(body) = self.decoder.decode().expect("server frames are valid") {
                return Some(String::from_utf8(body).expect("server frames are UTF-8"));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.decoder.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed (timeout?): {e}"),
            }
        }
    }

    pub fn request(&mut self, body: &str) -> String {
        self.send(body);
        self.recv()
    }

    /// Sends `body` and returns the reply, or `None` if the connection broke on the way (the
    /// server died): then the request may or may not have taken effect.
    pub fn try_request(&mut self, body: &str) -> Option<String> {
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        self.stream.write_all(&frame).ok()?;
        self.try_recv()
    }

    /// Asserts the server closed the connection (after any frames it sent before).
    pub fn assert_closed(&mut self) {
        if let Some(frame) = self.try_recv() {
            panic!("expected the connection closed, got frame {frame:?}");
        }
    }
}

/// A logged-in user: its command connection (registered on first use).
pub fn user(server: &ServerHandle, name: &str) -> Conn {
    user_at(server.command_addr(), name)
}

/// [`user`] for a server known by its command address (a server in another process).
pub fn user_at(command_addr: SocketAddr, name: &str) -> Conn {
    let mut conn = Conn::connect(command_addr);
    let reply = conn.request(&format!("3\n{name}\npw"));
    if reply != "0\nSuccessful Created and logged in" {
        assert_eq!(conn.request(&format!("1\n{name}\npw")), "0\nSuccessful Login");
    }
    conn
}

/// The original client's relay: the bare username.
pub fn bare_relay(server: &ServerHandle, name: &str) -> Conn {
    let mut relay = Conn::connect(server.relay_addr());
    relay.send(name);
    relay
}

/// A relay opened with a fresh ticket from `command`.
pub fn ticket_relay(server: &ServerHandle, command: &mut Conn, name: &str) -> Conn {
    ticket_relay_at(server.relay_addr(), command, name)
}

/// [`ticket_relay`] for a server known by its relay address.
pub fn ticket_relay_at(relay_addr: SocketAddr, command: &mut Conn, name: &str) -> Conn {
    let ticket = command.request("6");
    let ticket = ticket.strip_prefix("0\n").expect("ticket granted");
    let mut relay = Conn::connect(relay_addr);
    relay.send(&format!("{name}\n{ticket}"));
    relay
}

/// A push on an acknowledging relay, `7\nID\nSENDER\nTEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedPush {
    pub id: u64,
    pub from: String,
    pub text: String,
}

impl AckedPush {
    pub fn parse(body: &str) -> AckedPush {
        let mut parts = body.splitn(4, '\n');
        let (code, id, from, text) = (parts.next(), parts.next(), parts.next(), parts.next());
        assert_eq!(code, Some("7"), "not an acknowledged push: {body:?}");
        let id = id.and_then(|id| id.parse().ok()).unwrap_or_else(|| panic!("bad id: {body:?}"));
        let (from, text) = (from.expect("sender").to_owned(), text.expect("text").to_owned());
        AckedPush { id, from, text }
    }
}

/// Checks that two fresh users can still chat: the server keeps serving everyone else.
pub fn assert_others_still_chat(server: &ServerHandle) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (a, b) = (format!("ctl{n}a"), format!("ctl{n}b"));
    let mut alice = user(server, &a);
    let mut bob = user(server, &b);
    let mut relay = ticket_relay(server, &mut bob, &b);
    assert_eq!(alice.request(&format!("2\n{b}\nping")), "0\nSent to recipient");
    let push = AckedPush::parse(&relay.recv());
    assert_eq!((push.from.as_str(), push.text.as_str()), (a.as_str(), "ping"));
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
}

/// Waits until `name`'s queue holds `len` messages (acknowledgements travel on another socket
/// than the requests that observe them, so tests wait for them to land).
pub fn wait_queue_len(server: &ServerHandle, name: &str, len: usize) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while server.queue_len(name) != Some(len) {
        assert!(std::time::Instant::now() < deadline, "{name}'s queue never reached {len}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `name` has no relay bound (a dropped relay is noticed by another thread).
pub fn wait_no_relay(server: &ServerHandle, name: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while server.has_relay(name) {
        assert!(std::time::Instant::now() < deadline, "{name}'s relay never went away");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `condition` holds, checking every 5 ms, failing after [`TIMEOUT`] with `what`.
pub fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Asserts that `relay` (bound for `to`) receives nothing more before a marker message that
/// `sender` (logged in as `sender_name`) sends now: pushes to one relay keep the order of the
/// sends, so anything still owed to the relay would arrive first. Unlike a silent time window,
/// this cannot pass because the server was slow.
pub fn assert_nothing_before_marker(
    relay: &mut Conn,
    sender: &mut Conn,
    sender_name: &str,
    to: &str,
) {
    let marker = "marker: nothing comes before this";
    assert_eq!(sender.request(&format!("2\n{to}\n{marker}")), "0\nSent to recipient");
    assert_eq!(relay.recv(), format!("0\n{sender_name}:{marker}"));
}

/// Waits until `name` has a relay bound (the handshake travels on its own socket).
pub fn wait_relay(server: &ServerHandle, name: &str) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    while !server.has_relay(name) {
        assert!(std::time::Instant::now() < deadline, "{name}'s relay was never bound");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Far beyond what a start refused at the command line or from the data directory takes on a
/// loaded machine; only a binary that kept running waits this long before it is killed.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(60);

/// A fresh, empty directory under the temporary directory for one test of `suite`, removed
/// when the test passes; a failing test leaves it in place (and names it) to look into.
pub fn fresh_dir(suite: &str, name: &str) -> ScratchDir {
    let file = format!("chatroom-{suite}-{name}-{}", std::process::id());
    let dir = std::env::temp_dir().join(file);
    let _ = std::fs::remove_dir_all(&dir);
    ScratchDir(dir)
}

/// A test's scratch directory (see [`fresh_dir`]): it derefs to its path.
pub struct ScratchDir(std::path::PathBuf);

impl ScratchDir {
    pub fn path_buf(&self) -> std::path::PathBuf {
        self.0.clone()
    }
}

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::path::Path> for ScratchDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("test files kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// `chatroom server` with the cheapest password hashing, quiet logs and piped output, its data
/// in `dir`, and `args` (which choose the ports).
pub fn server_binary(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_chatroom"));
    command
        .arg("server")
        .args(["--argon2-memory-kib", "8", "--argon2-iterations", "1"])
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Runs `command` (stdout and stderr piped) until it exits by itself, killing it at
/// [`EXIT_DEADLINE`]: its exit status (`None`: it kept running), stdout and stderr.
pub fn run_to_exit(
    command: &mut std::process::Command,
) -> (Option<std::process::ExitStatus>, String, String) {
    let mut child = command.spawn().expect("spawn the chatroom binary");
    let status = wait_bounded(&mut child);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    child.stdout.take().expect("piped").read_to_string(&mut stdout).expect("read stdout");
    child.stderr.take().expect("piped").read_to_string(&mut stderr).expect("read stderr");
    (status, stdout, stderr)
}

/// Waits for `child` to exit by itself, killing it at [`EXIT_DEADLINE`] (then `None`).
pub fn wait_bounded(child: &mut std::process::Child) -> Option<std::process::ExitStatus> {
    let start = std::time::Instant::now();
    while start.elapsed() < EXIT_DEADLINE {
        if let Some(status) = child.try_wait().expect("poll the child") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}
