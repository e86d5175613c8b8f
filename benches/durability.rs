//! What durability costs: acknowledged sends per second with `fsync` always and never under
//! concurrent senders over real TCP, the latency of one acknowledged send, and the time to
//! recover a log of a million records.
//!
//! ```text
//! cargo bench --bench durability -- [sends|latency|recovery|all] [--runs N] [--senders N]
//!                                    [--seconds S] [--records N] [--fsync always|never|both]
//! ```
//!
//! Each figure is printed per run, then the median over the runs. The server runs in this
//! process (`ServerHandle`, store in a temporary directory); the clients are threads speaking
//! the wire protocol over loopback, so clients and server share the machine's cores.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use chatroom::core::{AccountId, Config, Lsn, MsgId, Record, Server};
use chatroom::net::{ServerConfig, ServerHandle};
use chatroom::store::{FsDisk, FsyncPolicy, StoreOptions, Wal};
use chatroom::wire::{encode, Decoder};
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const USAGE: &str = "usage: cargo bench --bench durability -- [sends|latency|recovery|all] \
                     [--runs N] [--senders N] [--seconds S] [--records N] \
                     [--fsync always|never|both]";

#[derive(Debug, Clone)]
struct Options {
    which: String,
    runs: usize,
    senders: usize,
    seconds: f64,
    records: u64,
    policies: Vec<FsyncPolicy>,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        which: "all".into(),
        runs: 5,
        senders: 64,
        seconds: 3.0,
        records: 1_000_000,
        policies: vec![FsyncPolicy::Always, FsyncPolicy::Never],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            // cargo bench passes --bench to every bench binary.
            "--bench" => {}
            "--runs" => options.runs = parse(&value("--runs")?)?,
            "--senders" => options.senders = parse(&value("--senders")?)?,
            "--seconds" => options.seconds = parse(&value("--seconds")?)?,
            "--records" => options.records = parse(&value("--records")?)?,
            "--fsync" => {
                options.policies = match value("--fsync")?.as_str() {
                    "always" => vec![FsyncPolicy::Always],
                    "never" => vec![FsyncPolicy::Never],
                    "both" => vec![FsyncPolicy::Always, FsyncPolicy::Never],
                    other => return Err(format!("--fsync always|never|both, not {other:?}")),
                }
            }
            "sends" | "latency" | "recovery" | "all" => options.which = arg,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if options.runs == 0 || options.senders == 0 || options.seconds <= 0.0 {
        return Err(format!("--runs, --senders and --seconds must be positive\n{USAGE}"));
    }
    Ok(options)
}

fn parse<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("not a valid number: {text:?}"))
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("durability bench: {options:?}; {cores} cores; store under {:?}", scratch_root());
    let all = options.which == "all";
    if all || options.which != "recovery" {
        probe_fsync();
    }
    if all || options.which == "sends" {
        bench_sends(&options);
    }
    if all || options.which == "latency" {
        bench_latency(&options);
    }
    if all || options.which == "recovery" {
        bench_recovery(&options);
    }
    let _ = std::fs::remove_dir_all(scratch_root());
    ExitCode::SUCCESS
}

// ---- helpers ------------------------------------------------------------------------------

fn scratch_root() -> PathBuf {
    std::env::temp_dir().join(format!("chatroom-bench-durability-{}", std::process::id()))
}

/// A fresh, empty directory under the scratch root.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = scratch_root().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn policy_name(fsync: FsyncPolicy) -> &'static str {
    match fsync {
        FsyncPolicy::Always => "always",
        FsyncPolicy::Never => "never",
    }
}

/// One blocking client connection that speaks frames.
struct Client {
    stream: TcpStream,
    decoder: Decoder,
    frame: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        Client { stream, decoder: Decoder::new(1 << 20), frame: Vec::new() }
    }

    fn request(&mut self, body: &str) -> String {
        self.frame.clear();
        encode(body.as_bytes(), &mut self.frame);
        self.stream.write_all(&self.frame).expect("write");
        let mut buf = [0u8; 4096];
        loop {
            if let Some(body) = self.decoder.decode().expect("valid frames") {
                return String::from_utf8(body).expect("UTF-8");
            }
            let n = self.stream.read(&mut buf).expect("read");
            assert!(n > 0, "the server closed the connection");
            self.decoder.feed(&buf[..n]);
        }
    }

    /// Registers `name` and stays logged in.
    fn register(addr: SocketAddr, name: &str) -> Client {
        let mut client = Client::connect(addr);
        let reply = client.request(&format!("3\n{name}\npw"));
        assert_eq!(reply, "0\nSuccessful Created and logged in", "registering {name}");
        client
    }
}

/// The disk's own fsync latency, which bounds an acknowledged send from below.
fn probe_fsync() {
    let dir = scratch_dir("probe");
    let mut file = std::fs::File::create(dir.join("probe")).expect("create the probe file");
    let mut latency_us = latency_histogram();
    for _ in 0..200 {
        let started = Instant::now();
        file.write_all(&[b'x'; 100]).expect("write");
        file.sync_data().expect("fdatasync");
        latency_us.saturating_record(started.elapsed().as_micros() as u64);
    }
    print_latency("fdatasync of a 100-byte append (this disk, now)", &latency_us);
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- acknowledged sends -------------------------------------------------------------------

/// What one measurement of concurrent acknowledged sends gave.
struct SendRun {
    sends_per_s: f64,
    latency_us: Histogram<u64>,
}

fn server_config(dir: &Path, fsync: FsyncPolicy) -> ServerConfig {
    let mut config = ServerConfig::ephemeral();
    config.data_dir = Some(dir.to_path_buf());
    config.fsync = fsync;
    config.connections_max = Some(10_000);
    let core = &mut config.core;
    core.connections_per_peer_max = 10_000;
    // Every sender registers from loopback.
    core.registrations_per_peer_max = usize::MAX;
    // Recipients stay offline: their queues hold everything sent during the run.
    core.queue_len_max = 10_000_000;
    core.queued_bytes_max = u64::MAX / 2;
    config
}

/// `senders` clients each send to their own offline recipient, one request at a time, for
/// `seconds` after a short warm-up; every send waits for `0\nSent to recipient`.
fn measure_sends(fsync: FsyncPolicy, senders: usize, seconds: f64) -> SendRun {
    let dir = scratch_dir(&format!("sends-{}", policy_name(fsync)));
    let server = ServerHandle::start(server_config(&dir, fsync)).expect("server starts");
    let addr = server.command_addr();
    for i in 0..senders {
        let mut recipient = Client::register(addr, &format!("r{i}"));
        assert_eq!(recipient.request("-1\n"), "0\nLogging out");
    }
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(senders + 1));
    let threads: Vec<_> = (0..senders)
        .map(|i| {
            let (measuring, stop, ready) = (measuring.clone(), stop.clone(), ready.clone());
            std::thread::spawn(move || {
                let mut client = Client::register(addr, &format!("s{i}"));
                let body = format!("2\nr{i}\na message of about forty bytes from s{i}");
                let mut latency_us = latency_histogram();
                let mut sent = 0u64;
                ready.wait();
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    let reply = client.request(&body);
                    assert_eq!(reply, "0\nSent to recipient");
                    if measuring.load(Ordering::Relaxed) {
                        latency_us.saturating_record(started.elapsed().as_micros() as u64);

                        sent += 1;
                    }
                }
                (sent, latency_us)
            })
        })
        .collect();
    ready.wait();
    std::thread::sleep(Duration::from_millis(300));
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    measuring.store(false, Ordering::Relaxed);
    let elapsed_s = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut latency_us = latency_histogram();
    let mut sent_total = 0;
    for thread in threads {
        let (sent, histogram) = thread.join().expect("sender");
        sent_total += sent;
        latency_us.add(histogram).expect("same bounds");
    }
    server.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    SendRun { sends_per_s: sent_total as f64 / elapsed_s, latency_us }
}

/// Microseconds from 1 µs to 100 s at 3 significant digits; slower sends are clamped to 100 s.
fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000, 3).expect("valid bounds")
}

fn print_latency(label: &str, latency_us: &Histogram<u64>) {
    println!(
        "  {label}: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} samples)",
        latency_us.value_at_quantile(0.50) as f64 / 1000.0,
        latency_us.value_at_quantile(0.99) as f64 / 1000.0,
        latency_us.max() as f64 / 1000.0,
        latency_us.len()
    );
}

fn bench_sends(options: &Options) {
    let senders = options.senders;
    println!(
        "\n(a) acknowledged sends/s, {senders} concurrent senders over TCP, {} s per run",
        options.seconds
    );
    let mut medians = Vec::new();
    for &fsync in &options.policies {
        let mut rates = Vec::new();
        let mut p99s = Vec::new();
        for run in 0..options.runs {
            let result = measure_sends(fsync, senders, options.seconds);
            println!(
                "  fsync {:<6} run {run}: {:>9.0} sends/s",
                policy_name(fsync),
                result.sends_per_s
            );
            print_latency("      latency", &result.latency_us);
            rates.push(result.sends_per_s);
            p99s.push(result.latency_us.value_at_quantile(0.99) as f64 / 1000.0);
        }
        let rate = median(&mut rates);
        println!(
            "  fsync {:<6} median: {rate:.0} sends/s (p99 median {:.2} ms)",
            policy_name(fsync),
            median(&mut p99s)
        );
        medians.push(rate);
    }
    if let [always, never] = medians[..] {
        println!("  always / never = {:.2}", always / never);
    }
}

// ---- latency of one acknowledged send ---------------------------------------------------

fn bench_latency(options: &Options) {
    println!(
        "\n(b) latency of an acknowledged send: 1 sender (unloaded) and {} senders, {} s per run",
        options.senders, options.seconds
    );
    for senders in [1, options.senders] {
        for &fsync in &options.policies {
            let (mut p50s, mut p99s) = (Vec::new(), Vec::new());
            for _ in 0..options.runs {
                let result = measure_sends(fsync, senders, options.seconds);
                p50s.push(result.latency_us.value_at_quantile(0.50) as f64 / 1000.0);
                p99s.push(result.latency_us.value_at_quantile(0.99) as f64 / 1000.0);
            }
            println!(
                "  {senders:>3} sender(s), fsync {:<6}: median p50 {:.3} ms  median p99 {:.3} ms  \
                 (p50s {:.3?}, p99s {:.3?})",
                policy_name(fsync),
                median(&mut p50s.clone()),
                median(&mut p99s.clone()),
                p50s,
                p99s
            );
        }
    }
}

// ---- recovery ----------------------------------------------------------------------------

const ACCOUNTS: u64 = 4;

/// Writes `records` records with the log directly: a few accounts, then messages to them.
fn write_log(dir: &Path, records: u64) {
    let disk = FsDisk::open(dir).expect("open the store");
    let (mut wal, _) = Wal::open(disk, StoreOptions::default()).expect("a new store");
    let hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$3i0fYbhxPpOKcHMp3zTYXQ";
    for lsn in 1..=records {
        let record = if lsn <= ACCOUNTS {
            let name = format!("user{lsn}");
            Record::Register { account: AccountId(lsn), name, password_hash: hash.into() }
        } else {
            Record::Message {
                id: MsgId(lsn),
                from: format!("user{}", lsn % ACCOUNTS + 1),
                to: AccountId((lsn * 7) % ACCOUNTS + 1),
                text: format!("message number {lsn} of the recovery benchmark"),
            }
        };
        wal.append(Lsn(lsn), &record).expect("append");
        if lsn % 10_000 == 0 {
            wal.flush().expect("flush");
        }
    }
    wal.sync().expect("sync");
}

fn bench_recovery(options: &Options) {
    let records = options.records;
    let dir = scratch_dir("recovery");
    let started = Instant::now();
    write_log(&dir, records);
    let log_bytes: u64 = std::fs::read_dir(&dir)
        .expect("list")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    println!(
        "\n(c) recovery of {records} records ({:.1} MB of log, written in {:.2} s; page cache warm)",
        log_bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let (mut opens, mut replays, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    for run in 0..options.runs {
        let started = Instant::now();
        let disk = FsDisk::open(&dir).expect("open the store");
        let (wal, recovered) = Wal::open(disk, StoreOptions::default()).expect("recovers");
        let opened = started.elapsed().as_secs_f64();
        assert_eq!(recovered.records.len() as u64, records);
        let rng = ChaCha20Rng::seed_from_u64(run as u64);
        let last_lsn = recovered.last_lsn;
        let server =
            Server::recover(Config::default(), rng, recovered.records, last_lsn).expect("replays");
        let total = started.elapsed().as_secs_f64();
        println!(
            "  run {run}: Wal::open {opened:.3} s + Server::recover {:.3} s = {total:.3} s",
            total - opened
        );
        assert_eq!(server.last_lsn(), Lsn(records));
        drop((wal, server));
        opens.push(opened);
        replays.push(total - opened);
        totals.push(total);
    }
    println!(
        "  median: Wal::open {:.3} s + Server::recover {:.3} s = {:.3} s ({:.0} records/s)",
        median(&mut opens),
        median(&mut replays),
        median(&mut totals.clone()),
        records as f64 / median(&mut totals)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
