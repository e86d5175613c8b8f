//! The figures of the hardening issue (13), over real TCP against an in-process server:
//!
//! - `guesses`: wrong-password logins to one account from one address, 60 at a time (a burst
//!   of 60 connections every 100 ms) for `--seconds` (default 60): how many were verified (the
//!   rest were throttled), per minute.
//! - `snapshot`: about `--snapshot-mb` (default 200) MB of messages queued, then a snapshot of
//!   that state written while a bystander sends requests: the bystander's worst round trip
//!   from the moment the snapshot is due until its file is in place.
//! - `list`: `--accounts` (default 25,000) accounts, 8 connections sending `list` with the
//!   names of 32 bytes and a pattern built for the matcher's worst case (no literal prefix, so
//!   every scan goes to its bound) for `--seconds` while a bystander sends requests: the
//!   bystander's worst round trip and the lists answered; first the same 8 connections send
//!   `help` for as long, as a control (what 8 busy clients cost on this machine).
//!
//! ```text
//! cargo bench --bench hardening -- [guesses|snapshot|list|all] [--seconds S]
//!                                  [--snapshot-mb N] [--accounts N]
//! ```
//!
//! Clients and server share the machine's cores; the figures are for this machine only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatroom::net::{ServerConfig, ServerHandle};
use chatroom::store::FsyncPolicy;
use chatroom::wire::{encode, Decoder};

const USAGE: &str = "usage: cargo bench --bench hardening -- [guesses|snapshot|list|all] \
                     [--seconds S] [--snapshot-mb N] [--accounts N]";

struct Options {
    which: String,
    seconds: Option<f64>,
    snapshot_mb: usize,
    accounts: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut options =
        Options { which: "all".into(), seconds: None, snapshot_mb: 200, accounts: 25_000 };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |text: String| text.parse::<f64>().map_err(|e| format!("{text}: {e}"));
        match arg.as_str() {
            "--bench" => {}
            "--seconds" => options.seconds = Some(number(value("--seconds")?)?),
            "--snapshot-mb" => options.snapshot_mb = number(value("--snapshot-mb")?)? as usize,
            "--accounts" => options.accounts = number(value("--accounts")?)? as usize,
            "guesses" | "snapshot" | "list" | "all" => options.which = arg,
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("cores: {cores}");
    let all = options.which == "all";
    if all || options.which == "guesses" {
        guesses(options.seconds.unwrap_or(60.0));
    }
    if all || options.which == "list" {
        list_flood(options.accounts, options.seconds.unwrap_or(5.0));
    }
    if all || options.which == "snapshot" {
        snapshot(options.snapshot_mb);
    }
    ExitCode::SUCCESS
}

/// One framed connection.
struct Conn {
    stream: TcpStream,
    decoder: Decoder,
}

impl Conn {
    fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(Duration::from_secs(120))).expect("timeout");
        Conn { stream, decoder: Decoder::new(1 << 20) }
    }

    fn send(&mut self, body: &str) {
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        self.stream.write_all(&frame).expect("write");
    }

    fn recv(&mut self) -> String {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(body) = self.decoder.decode().expect("valid frames") {
                return String::from_utf8(body).expect("UTF-8");
            }
            let n = self.stream.read(&mut buf).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.decoder.feed(&buf[..n]);
        }
    }

    fn request(&mut self, body: &str) -> String {
        self.send(body);
        self.recv()
    }
}

fn register(addr: SocketAddr, name: &str) -> Conn {
    let mut conn = Conn::connect(addr);
    let reply = conn.request(&format!("3\n{name}\npw"));
    assert_eq!(reply, "0\nSuccessful Created and logged in", "{name}");
    conn
}

/// A test server: loopback clients, no registration limit (every client is on loopback).
fn base_config() -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    config.core.connections_per_peer_max = 100_000;
    config.connections_max = Some(1_000_000);
    config.core.registrations_per_peer_max = usize::MAX;
    config
}

fn guesses(seconds: f64) {
    // The default argon2 cost, so that hashes take as long as in production.
    let config = ServerConfig { hash_cost: chatroom::auth::HashCost::default(), ..base_config() };
    let server = ServerHandle::start(config).expect("server starts");
    drop(register(server.command_addr(), "bob"));
    let mut guessers: Vec<Conn> = (0..60).map(|_| Conn::connect(server.command_addr())).collect();
    let started = Instant::now();
    let (mut verified, mut throttled, mut bursts) = (0u64, 0u64, 0u64);
    while started.elapsed().as_secs_f64() < seconds {
        for guesser in &mut guessers {
            guesser.send("1\nbob\nwrong");
        }
        for guesser in &mut guessers {
            let reply = guesser.recv();
            if reply.starts_with("-1\nInvalid Login") {
                verified += 1;
            } else {
                assert!(reply.starts_with("-1\nToo many failed attempts"), "{reply}");
                throttled += 1;
            }
        }
        bursts += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "guesses: {bursts} bursts of 60 in {:.1} s: {verified} verified, {throttled} throttled: \
         {:.1} verified guesses/min",
        minutes * 60.0,
        verified as f64 / minutes
    );
    server.shutdown();
}

/// Sends requests in a loop on its own connection and keeps the worst round trip.
struct Bystander {
    stop: Arc<AtomicBool>,
    worst_us: Arc<AtomicU64>,
    count: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Bystander {
    fn start(addr: SocketAddr, name: &str) -> Bystander {
        let mut conn = register(addr, name);
        let stop = Arc::new(AtomicBool::new(false));
        let worst_us = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let (s, w, c) = (stop.clone(), worst_us.clone(), count.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let reply = conn.request("0");
                assert!(reply.starts_with("0\n"), "{reply}");
                w.fetch_max(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
                c.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Bystander { stop, worst_us, count, thread }
    }

    fn reset(&self) {
        self.worst_us.store(0, Ordering::Relaxed);
        self.count.store(0, Ordering::Relaxed);
    }

    /// (worst round trip in ms, requests) since the last reset.
    fn read(&self) -> (f64, u64) {
        let worst_ms = self.worst_us.load(Ordering::Relaxed) as f64 / 1000.0;
        (worst_ms, self.count.load(Ordering::Relaxed))
    }

    fn stop(self) -> (f64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        let figures = self.read();
        self.thread.join().expect("bystander");
        figures
    }
}

fn list_flood(accounts: usize, seconds: f64) {
    let server = ServerHandle::start(base_config()).expect("server starts");
    let addr = server.command_addr();
    let registered = Instant::now();
    let mut conn = Conn::connect(addr);
    for i in 0..accounts {
        // 32 characters, the longest name: the most work per match.
        let reply = conn.request(&format!("3\nuser{i:06}{}\npw", "x".repeat(22)));
        assert_eq!(reply, "0\nSuccessful Created and logged in");
    }
    println!("list: {accounts} accounts registered in {:.1} s", registered.elapsed().as_secs_f64());
    let bystander = Bystander::start(addr, "bystander");
    std::thread::sleep(Duration::from_millis(500));
    let quiet = bystander.read();
    bystander.reset();
    // No literal prefix, so every scan runs to its bound; each name is matched against
    // segments of 16 that fit a 32-byte name at 17 places, compared up to 16 bytes each,
    // the matcher's worst case (name x pattern), and fail only at their last byte.
    let pattern = format!("*{}", "???????????????z*".repeat(3));
    // First 8 connections sending `help` (a control: what 8 busy clients cost the bystander
    // on this machine), then the same 8 sending the list.
    for (what, request) in [("help", "0".to_owned()), ("list", format!("4\n{pattern}"))] {
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let worst_us = Arc::new(AtomicU64::new(0));
        let flooders: Vec<_> = (0..8)
            .map(|i| {
                let mut conn = register(addr, &format!("{what}{i}"));
                let (stop, done, worst) = (stop.clone(), done.clone(), worst_us.clone());
                let request = request.clone();
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let reply = conn.request(&request);
                        assert!(reply.starts_with("0\n"), "{reply}");
                        worst.fetch_max(sent.elapsed().as_micros() as u64, Ordering::Relaxed);
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        bystander.reset();
        std::thread::sleep(Duration::from_secs_f64(seconds));
        stop.store(true, Ordering::Relaxed);
        let (worst_ms, requests) = bystander.read();
        for flooder in flooders {
            flooder.join().expect("flooder");
        }
        let done = done.load(Ordering::Relaxed);
        println!(
            "list: 8 connections sending {what} ({request:?}) for {seconds} s: {done} answered \
             ({:.0}/s, worst round trip {:.1} ms); bystander worst round trip {worst_ms:.2} ms \
             ({requests} requests)",
            done as f64 / seconds,
            worst_us.load(Ordering::Relaxed) as f64 / 1000.0
        );
    }
    bystander.stop();
    println!("list: quiet bystander worst round trip {:.2} ms ({} requests)", quiet.0, quiet.1);
    server.shutdown();
}

fn snapshot_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("snapshot") && !n.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn snapshot(megabytes: usize) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("chatroom-bench-snapshot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = base_config();
    config.data_dir = Some(dir.clone());
    // The shipped policy. (With `never`, the snapshot's start must fsync every byte the log
    // held unsynced, which is most of the 200 MB.)
    config.fsync = FsyncPolicy::Always;
    let text_len = 60 * 1024;
    let messages = megabytes * 1024 * 1024 / text_len;
    // Due once (nearly) everything is logged, so the snapshot holds the whole state.
    config.store.snapshot_log_bytes_min = (messages as u64 * text_len as u64) * 98 / 100;
    let server = ServerHandle::start(config).expect("server starts");
    let addr = server.command_addr();
    let recipients = 100;
    for i in 0..recipients {
        let mut conn = register(addr, &format!("r{i}"));
        assert_eq!(conn.request("-1\n"), "0\nLogging out");
    }
    let mut sender = register(addr, "sender");
    let bystander = Bystander::start(addr, "bystander");
    let text = "x".repeat(text_len);
    let filled = Instant::now();
    let mut worst_fill_ms = 0f64;
    for i in 0..messages {
        let reply = sender.request(&format!("2\nr{}\n{text}", i % recipients));
        assert_eq!(reply, "0\nSent to recipient");
        if i + 1 == messages * 9 / 10 {
            // Before the snapshot is due: the fill's own cost for the bystander.
            worst_fill_ms = bystander.read().0;
            bystander.reset();
        }
    }
    println!(
        "snapshot: {messages} messages of {text_len} B ({megabytes} MB) queued in {:.1} s; \
         bystander worst round trip while filling (before the snapshot was due): {worst_fill_ms:.2} ms",
        filled.elapsed().as_secs_f64()
    );
    // A few more sends make the snapshot due (the writer publishes its byte count per batch).
    let waiting = Instant::now();
    while snapshot_files(&dir).is_empty() {
        assert!(waiting.elapsed() < Duration::from_secs(300), "no snapshot was written");
        let reply = sender.request("2\nr0\nnudge");
        assert_eq!(reply, "0\nSent to recipient");
        std::thread::sleep(Duration::from_millis(5));
    }
    let written_s = waiting.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    let (worst_ms, requests) = bystander.stop();
    println!(
        "snapshot: written {written_s:.2} s after the fill ({:?}); bystander worst round trip from \
         the last 10% of the fill until the snapshot was in place: {worst_ms:.2} ms ({requests} \
         requests)",
        snapshot_files(&dir)
    );
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
}
