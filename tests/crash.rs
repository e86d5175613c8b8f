//! Crash test over real processes: the `chatroom` binary is killed with SIGKILL at seeded
//! moments while several clients send to offline users; after each restart every acknowledged
//! message must be delivered exactly once, in order per sender, and accounts and deletions must
//! have survived.
//!
//! Each round starts the server on the same data directory, checks what the previous round
//! left (accounts, then every queue drained through acknowledging relays), creates and deletes
//! accounts, and lets the senders run until a seeded number of sends is acknowledged; then the
//! process is killed. A send whose reply never arrived may or may not have been kept, but never
//! twice, and if it was not delivered by the drain after the crash it must never appear later.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use support::*;

/// The root seed, unless `CRASH_SEED` (decimal or 0x-hex) names another.
const SEED: u64 = 0x5eed_c4a5;
const KILLS: usize = 5;
const SENDERS: usize = 6;
const RECIPIENTS: usize = 3;
/// Small enough that snapshots happen every few batches, so that some kills land in one.
const SNAPSHOT_LOG_BYTES_MIN: u64 = 2048;
const CHECKER: &str = "checker";

/// The `chatroom server` child process, killed on drop so a failing test leaves none behind.
struct ServerProcess {
    child: Child,
    command_addr: SocketAddr,
    relay_addr: SocketAddr,
}

impl ServerProcess {
    fn start(dir: &Path, log: &Path) -> ServerProcess {
        let stderr = File::options().create(true).append(true).open(log).expect("log file");
        let snapshot_min = SNAPSHOT_LOG_BYTES_MIN.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatroom"))
            .args(["server", "--command-port", "0", "--relay-port", "0"])
            .args(["--argon2-memory-kib", "8", "--argon2-iterations", "1"])
            // Every test client registers from loopback.
            .args(["--registrations-per-address-max", "100000"])
            .args(["--snapshot-log-bytes-min", &snapshot_min, "--fsync", "always"])
            .arg("--data-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn chatroom server");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the server's first line");
        let Some((command_addr, relay_addr)) = parse_listening(&line) else {
            let _ = child.kill();
            let log = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the server did not start: stdout {line:?}, stderr:\n{log}");
        };
        // Keep reading, so that a later line never meets a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        ServerProcess { child, command_addr, relay_addr }
    }

    /// SIGKILL: no shutdown path runs, buffers in the process are lost.
    fn kill(mut self) {
        self.child.kill().expect("kill the server");
        self.child.wait().expect("reap the server");
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `chatroom server: command ADDR relay ADDR (...)`.
fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let rest = line.strip_prefix("chatroom server: command ")?;
    let mut words = rest.split_whitespace();
    let command = words.next()?.parse().ok()?;
    let relay = words.nth(1)?.parse().ok()?;
    Some((command, relay))
}

fn sender_name(i: usize) -> String {
    format!("s{i}")
}

fn recipient_name(i: usize) -> String {
    format!("r{i}")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// `0\nSent to recipient` arrived: must be delivered.
    Acked,
    /// Sent, but the server died before replying: may be delivered, at most once.
    Unknown,
    /// Unknown and not delivered by the drain after the crash: must never appear.
    Lost,
}

/// Everything one sender sent, by sequence number (sequence numbers increase over the run).
#[derive(Default)]
struct SenderLog {
    seq_next: u64,
    sent: BTreeMap<u64, (usize, Status)>,
}

/// One sender's round: log in, send to seeded recipients until the connection breaks.
fn send_until_killed(
    command_addr: SocketAddr,
    me: usize,
    mut log: SenderLog,
    mut rng: ChaCha8Rng,
    acked_len: &AtomicU64,
) -> SenderLog {
    let Some(mut conn) = Conn::try_connect(command_addr) else { return log };
    match conn.try_request(&format!("1\n{}\npw", sender_name(me))).as_deref() {
        Some("0\nSuccessful Login") => {}
        None => return log,
        Some(other) => panic!("sender {me} cannot log in: {other:?}"),
    }
    loop {
        let (seq, to) = (log.seq_next, rng.gen_range(0..RECIPIENTS));
        log.seq_next += 1;
        log.sent.insert(seq, (to, Status::Unknown));
        let body = format!("2\n{}\n{} n{seq}", recipient_name(to), sender_name(me));
        match conn.try_request(&body).as_deref() {
            Some("0\nSent to recipient") => {
                log.sent.insert(seq, (to, Status::Acked));
                acked_len.fetch_add(1, Ordering::Relaxed);
            }
            None => return log,
            Some(other) => panic!("sender {me}: unexpected reply {other:?}"),
        }
    }
}

/// What the test knows: what each sender sent and what each recipient received.
struct Ledger {
    senders: Vec<SenderLog>,
    delivered: BTreeSet<(usize, u64)>,
    /// The last sequence number delivered per (sender, recipient), for the order check.
    last_seq: BTreeMap<(usize, usize), u64>,
    /// Accounts that must exist, lower-case.
    accounts: BTreeSet<String>,
    /// Accounts deleted in the previous round, which must be gone and whose queue must not
    /// reach a new account of the same name.
    deleted: Vec<String>,
}

impl Ledger {
    fn new() -> Self {
        let mut accounts: BTreeSet<String> = (0..SENDERS).map(sender_name).collect();
        accounts.extend((0..RECIPIENTS).map(recipient_name));
        accounts.insert(CHECKER.to_owned());
        let senders = (0..SENDERS).map(|_| SenderLog::default()).collect();
        Ledger {
            senders,
            delivered: BTreeSet::new(),
            last_seq: BTreeMap::new(),
            accounts,
            deleted: Vec::new(),
        }
    }

    /// Records one delivered chat message to `to`, checking exactly-once and per-sender order.
    fn deliver(&mut self, to: usize, push: &AckedPush) {
        let sender = (0..SENDERS)
            .find(|&i| sender_name(i) == push.from)
            .unwrap_or_else(|| panic!("a message from an unknown sender: {push:?}"));
        let seq: u64 = push
            .text
            .strip_prefix(&format!("{} n", push.from))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a message that no sender wrote: {push:?}"));
        match self.senders[sender].sent.get(&seq) {
            Some(&(addressed, status)) => {
                assert_eq!(addressed, to, "delivered to the wrong recipient: {push:?}");
                assert_ne!(status, Status::Lost, "a message reappeared after a restart: {push:?}");
            }
            None => panic!("a message that was never sent: {push:?}"),
        }
        assert!(self.delivered.insert((sender, seq)), "delivered twice: {push:?}");
        let last = self.last_seq.insert((sender, to), seq);
        assert!(last < Some(seq), "out of order after {last:?}: {push:?}");
    }

    /// After a full drain: every acknowledged message arrived; unknown ones that did not are
    /// lost for good.
    fn settle(&mut self) -> (usize, usize) {
        let (mut acked_len, mut lost_len) = (0, 0);
        for (sender, log) in self.senders.iter_mut().enumerate() {
            for (&seq, (to, status)) in log.sent.iter_mut() {
                let delivered = self.delivered.contains(&(sender, seq));
                match status {
                    Status::Acked => {
                        assert!(delivered, "acknowledged s{sender} n{seq} to r{to} was lost");
                        acked_len += 1;
                    }
                    Status::Unknown if !delivered => {
                        *status = Status::Lost;
                        lost_len += 1;
                    }
                    Status::Unknown | Status::Lost => {}
                }
            }
        }
        (acked_len, lost_len)
    }
}

/// Logs in as `name`, opens an acknowledging relay, and receives (acknowledging each) every
/// queued message up to a marker the checker sends last. Returns the messages before it.
fn drain(server: &ServerProcess, checker: &mut Conn, name: &str, marker: &str) -> Vec<AckedPush> {
    let mut command = Conn::connect(server.command_addr);
    assert_eq!(command.request(&format!("1\n{name}\npw")), "0\nSuccessful Login");
    let mut relay = ticket_relay_at(server.relay_addr, &mut command, name);
    assert_eq!(checker.request(&format!("2\n{name}\n{marker}")), "0\nSent to recipient");
    let mut received = Vec::new();
    loop {
        let push = AckedPush::parse(&relay.recv());
        relay.send(&format!("7\n{}", push.id));
        if push.from == CHECKER && push.text == marker {
            break;
        }
        received.push(push);
    }
    // Acknowledgements get no reply, so the next round's crash could undo them. A refused
    // acknowledgement does get one, released only once every record before it is durable; the
    // second is read after the first is answered, so it follows every real acknowledgement.
    for _ in 0..2 {
        assert_eq!(relay.request("7\n0"), "-1\nNo message 0 was pushed on this relay");
    }
    assert_eq!(command.request("-1\n"), "0\nLogging out");
    received
}

/// Checks what the previous rounds left behind.
fn verify(server: &ServerProcess, ledger: &mut Ledger, round: usize) {
    let mut checker = user_at(server.command_addr, CHECKER);
    let listed = checker.request("4\n");
    let names = listed.strip_prefix("0\n").expect("list succeeds");
    let names: BTreeSet<String> = names.split_whitespace().map(str::to_lowercase).collect();
    assert_eq!(names, ledger.accounts, "accounts after restart {round}");
    for name in ledger.accounts.iter().filter(|n| n.starts_with("keep")) {
        let mut conn = Conn::connect(server.command_addr);
        assert_eq!(conn.request(&format!("1\n{name}\npw")), "0\nSuccessful Login");
    }
    for to in 0..RECIPIENTS {
        let marker = format!("end of round {round}");
        for push in drain(server, &mut checker, &recipient_name(to), &marker) {
            ledger.deliver(to, &push);
        }
    }
    let (acked_len, lost_len) = ledger.settle();
    eprintln!("restart {round}: {acked_len} acknowledged sends delivered, {lost_len} unknown lost");
    // A deleted account's name is free, and a new account under it starts empty.
    for name in std::mem::take(&mut ledger.deleted) {
        let mut conn = Conn::connect(server.command_addr);
        assert_eq!(conn.request(&format!("3\n{name}\npw")), "0\nSuccessful Created and logged in");
        assert_eq!(conn.request("-1\n"), "0\nLogging out");
        let leftovers = drain(server, &mut checker, &name, "fresh");
        assert!(leftovers.is_empty(), "{name} inherited {leftovers:?}");
        assert_eq!(conn.request(&format!("1\n{name}\npw")), "0\nSuccessful Login");
        assert_eq!(conn.request(&format!("5\n{name}\npw")), "0\naccount deleted");
    }
}

/// Creates this round's accounts: one kept, one deleted with a message queued for it.
fn change_accounts(server: &ServerProcess, ledger: &mut Ledger, round: usize) {
    let (keep, gone) = (format!("keep{round}"), format!("gone{round}"));
    let mut conn = user_at(server.command_addr, &keep);
    assert_eq!(conn.request("-1\n"), "0\nLogging out");
    let mut doomed = user_at(server.command_addr, &gone);
    let mut checker = user_at(server.command_addr, CHECKER);
    assert_eq!(checker.request(&format!("2\n{gone}\nfor the old {gone}")), "0\nSent to recipient");
    assert_eq!(doomed.request(&format!("5\n{gone}\npw")), "0\naccount deleted");
    ledger.accounts.insert(keep);
    ledger.deleted.push(gone);
}

/// Runs the senders until `acked_target` sends are acknowledged, then kills the server.
fn send_and_kill(server: ServerProcess, ledger: &mut Ledger, rng: &mut ChaCha8Rng) {
    let acked_target: u64 = rng.gen_range(400..1200);
    let acked_len = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = std::mem::take(&mut ledger.senders)
        .into_iter()
        .enumerate()
        .map(|(me, log)| {
            let (acked_len, addr) = (acked_len.clone(), server.command_addr);
            let rng = ChaCha8Rng::seed_from_u64(rng.gen());
            std::thread::spawn(move || send_until_killed(addr, me, log, rng, &acked_len))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_len.load(Ordering::Relaxed) < acked_target {
        assert!(Instant::now() < deadline, "the senders stalled");
        std::thread::sleep(Duration::from_micros(200));
    }
    // A seeded extra pause spreads the kill over every phase of a group commit.
    std::thread::sleep(Duration::from_micros(rng.gen_range(0..3_000)));
    server.kill();
    ledger.senders = workers.into_iter().map(|w| w.join().expect("sender")).collect();
}

fn root_seed() -> u64 {
    let Ok(text) = std::env::var("CRASH_SEED") else { return SEED };
    let parsed = match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.unwrap_or_else(|_| panic!("CRASH_SEED={text:?} is not a number"))
}

fn fresh_dir(name: &str) -> support::ScratchDir {
    let dir = support::fresh_dir("crash", name);
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

#[test]
fn acknowledged_messages_survive_repeated_sigkill() {
    let root = fresh_dir("crash");
    let (data, log) = (root.join("data"), root.join("server.log"));
    let seed = root_seed();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut ledger = Ledger::new();
    eprintln!(
        "SEED={seed:#x} (rerun: CRASH_SEED={seed:#x} cargo test --test crash; the seed fixes the \
         workload and kill points, thread timing varies); server log in {}",
        log.display()
    );

    let server = ServerProcess::start(&data, &log);
    for name in (0..SENDERS).map(sender_name).chain((0..RECIPIENTS).map(recipient_name)) {
        assert_eq!(user_at(server.command_addr, &name).request("-1\n"), "0\nLogging out");
    }
    let mut server = Some(server);
    for round in 0..KILLS {
        let running = server.take().unwrap_or_else(|| ServerProcess::start(&data, &log));
        if round > 0 {
            verify(&running, &mut ledger, round - 1);
        }
        change_accounts(&running, &mut ledger, round);
        send_and_kill(running, &mut ledger, &mut rng);
    }
    let last = ServerProcess::start(&data, &log);
    verify(&last, &mut ledger, KILLS - 1);
    let unknown_delivered = ledger
        .senders
        .iter()
        .flat_map(|log| log.sent.values())
        .filter(|(_, status)| *status == Status::Unknown)
        .count();
    eprintln!("{unknown_delivered} sends without a reply were kept and delivered once");
    let mut files: Vec<String> = std::fs::read_dir(&data)
        .expect("list the store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    eprintln!("store files at the end: {files:?}");
    let server_log = std::fs::read_to_string(&log).expect("server log");
    for line in server_log.lines().filter(|l| l.contains("recovery")) {
        eprintln!("server: {line}");
    }
    last.kill();
}
