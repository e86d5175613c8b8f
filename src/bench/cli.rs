//! `chatroom bench`: flags, runs, and the printed figures.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::backlog::{self, BacklogRun};
use super::disk::{self, SyncPattern};
use super::idle::{self, IdleRun};
use super::relay::{self, RelayPlan, RelayRun, ServerCost};
use super::system::{allowed_cpus, pin_current_thread};
use super::target::{data_root, remove_scratch, scratch_dir, Broker};
use super::{machine_summary, median, BenchError, Target, TargetOptions};

/// Measure throughput, latency and memory over real TCP.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub bench: Bench,
}

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Pairs of clients sending to each other: delivered messages/s and push latency.
    Relay(RelayArgs),
    /// Queue messages for a user who is away, then time their delivery at login.
    Backlog(BacklogArgs),
    /// Hold many idle logged-in clients with relays; report the server's memory per client.
    Idle(IdleArgs),
}

/// Where the server comes from (shared by `relay` and `backlog`).
#[derive(Debug, clap::Args)]
pub struct ServerChoice {
    /// Use a running server's command port (HOST:PORT) instead of starting a child server. It
    /// must allow many connections per address (--connections-per-peer-max) and, for
    /// `backlog`, a long enough queue (--queue-len-max); cheap argon2 settings speed up setup.
    #[arg(long, requires = "relay_addr")]
    pub addr: Option<SocketAddr>,
    /// The running server's relay port (HOST:PORT), with --addr.
    #[arg(long)]
    pub relay_addr: Option<SocketAddr>,
    /// The running server's process id, with --addr, to report its CPU, threads and memory.
    #[arg(long, requires = "addr")]
    pub server_pid: Option<u32>,
    /// The child server's fsync policy.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,
    /// Run the server on the first core this process may use and the load generator on the
    /// others (Linux sched_setaffinity; needs at least 2 cores).
    #[arg(long)]
    pub pin: bool,
    /// Repeat the measurement this many times (fresh server each time) and print medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Run `chatroom server` from this executable instead of this one (e.g. another build, to
    /// compare two servers under the same load generator).
    #[arg(long, conflicts_with = "addr")]
    pub server_exe: Option<std::path::PathBuf>,
}

/// `--fsync` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    Always,
    Never,
}

impl Fsync {
    fn flag(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Never => "never",
        }
    }
}

/// Which cores the server and the load generator run on.
struct Placement {
    server: Option<Vec<usize>>,
    generator: Option<Vec<usize>>,
}

impl Placement {
    /// With `pin`, the server gets the first allowed core and this process the rest; the calling
    /// thread (and every thread it starts later) is pinned now.
    fn choose(pin: bool) -> Result<Placement, BenchError> {
        if !pin {
            return Ok(Placement { server: None, generator: None });
        }
        let cpus = allowed_cpus()?;
        let Some((&first, rest)) = cpus.split_first().filter(|(_, rest)| !rest.is_empty()) else {
            return Err(BenchError::Other(format!(
                "--pin needs 2 cores, this process has {cpus:?}"
            )));
        };
        pin_current_thread(rest)?;
        Ok(Placement { server: Some(vec![first]), generator: Some(rest.to_vec()) })
    }

    fn describe(&self) -> String {
        match (&self.server, &self.generator) {
            (Some(server), Some(generator)) => {
                format!("pinned: server on cores {server:?}, load generator on cores {generator:?}")
            }
            _ => "not pinned: server and load generator share every core".to_owned(),
        }
    }
}

impl ServerChoice {
    fn options(
        &self,
        queue_len_max: usize,
        connections_max: usize,
        placement: &Placement,
    ) -> TargetOptions {
        TargetOptions {
            external: self.addr.zip(self.relay_addr),
            external_pid: self.server_pid,
            fsync: self.fsync.flag(),
            queue_len_max,
            connections_max,
            server_cpus: placement.server.clone(),
            broker: Broker::Chatroom,
            server_exe: self.server_exe.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Sender/receiver pairs, each sender sending only to its receiver.
    #[arg(long, default_value_t = 16)]
    pub pairs: usize,
    /// Message text size in bytes (at least 41: a timestamp and sequence number lead it).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second over all pairs; 0 sends as fast as the server answers.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// How long senders send, in seconds.
    #[arg(long, default_value_t = 5)]
    pub duration_s: u64,
    /// With --rate 0: unanswered sends per sender.
    #[arg(long, default_value_t = 64)]
    pub window: usize,
    /// The server to start: `chatroom`, or `mosquitto` (from PATH, no persistence) to measure an
    /// MQTT broker with the same load, publishing at --qos.
    #[arg(long, value_enum, default_value_t = Broker::Chatroom)]
    pub broker: Broker,
    /// With --broker mosquitto: publish and subscribe at QoS 0 or 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub qos: u8,
    /// fdatasync calls timed on this disk before the runs (0 skips the measurement).
    #[arg(long, default_value_t = 1_000)]
    pub fsync_probes: usize,
    #[command(flatten)]
    pub server: ServerChoice,
}

#[derive(Debug, clap::Args)]
pub struct BacklogArgs {
    /// Messages queued for the absent user.
    #[arg(long, default_value_t = 100_000)]
    pub messages: u64,
    /// Message text size in bytes (at least 41).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    #[command(flatten)]
    pub server: ServerChoice,
}

#[derive(Debug, clap::Args)]
pub struct IdleArgs {
    /// Idle clients to hold (capped by what the open-file limit allows).
    #[arg(long, default_value_t = 10_000)]
    pub clients: usize,
    /// Hold bare command connections that never log in, instead of logged-in clients with
    /// ticketed relays (the server's cost of an unauthenticated connection).
    #[arg(long)]
    pub bare: bool,
    /// fsync policy of the child server's log.
    #[arg(long, value_enum, default_value_t = Fsync::Never)]
    pub fsync: Fsync,
    /// Repeat the measurement this many times and print medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Run `chatroom server` from this executable instead of this one (another build).
    #[arg(long)]
    pub server_exe: Option<std::path::PathBuf>,
}

impl BenchArgs {
    /// Runs the chosen benchmark and prints its figures.
    pub fn run(self) -> ExitCode {
        println!("{}", machine_summary());
        let outcome = match self.bench {
            Bench::Relay(args) => args.run(),
            Bench::Backlog(args) => args.run(),
            Bench::Idle(args) => args.run(),
        };
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("chatroom bench: {error}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Runs `once` `runs` times against a fresh target each time.
fn repeat<R>(
    choice: &ServerChoice,
    options: &TargetOptions,
    mut once: impl FnMut(&Target, usize) -> Result<R, BenchError>,
    show: impl Fn(&R) -> String,
) -> Result<Vec<R>, BenchError> {
    println!("server: {}", Target::describe(options));
    let mut results = Vec::new();
    for run in 0..choice.runs.max(1) {
        let target = Target::start(options, run)?;
        let result = once(&target, run);
        if result.is_err() {
            eprintln!("{}", target.log_tail());
        }
        target.stop();
        let result = result?;
        println!("run {}: {}", run + 1, show(&result));
        results.push(result);
    }
    Ok(results)
}

fn check_size(size: usize) -> Result<(), BenchError> {
    match size >= 41 {
        true => Ok(()),
        false => Err(BenchError::Other(format!("--size {size} is below the minimum of 41 bytes"))),
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// `median (min-max)` of `values`, each shown with `decimals` decimals.
fn spread(values: &[f64], decimals: usize) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.decimals$} ({min:.decimals$}-{max:.decimals$})", median(values))
}

impl RelayArgs {
    fn run(self) -> Result<(), BenchError> {
        check_size(self.size)?;
        let plan = RelayPlan {
            pairs: self.pairs.max(1),
            size_bytes: self.size,
            rate: self.rate,
            duration: Duration::from_secs(self.duration_s.max(1)),
            window: self.window.max(1),
            mqtt_qos: (self.broker == Broker::Mosquitto).then_some(self.qos),
        };
        let rate = match plan.rate {
            0 => format!("as fast as the server answers (window {} per sender)", plan.window),
            r => format!("{r} msgs/s"),
        };
        println!(
            "bench relay: {} pairs, {} B messages, {rate}, {} s; one event-loop thread drives \
             every connection, a pacer thread releases sends",
            plan.pairs, plan.size_bytes, self.duration_s
        );
        let placement = Placement::choose(self.server.pin)?;
        println!("placement: {}", placement.describe());
        let connections_max = plan.pairs * 3 + 100;
        let mut options = self.server.options(10_000, connections_max, &placement);
        options.broker = self.broker;
        if self.fsync_probes > 0 {
            let dir = scratch_dir("disk", 0)?;
            for pattern in [SyncPattern::Append, SyncPattern::Overwrite] {
                let fsyncs = disk::fdatasync_latency(&dir, self.fsync_probes, pattern);
                let fsyncs = match fsyncs {
                    Ok(fsyncs) => fsyncs,
                    Err(error) => {
                        remove_scratch(&dir);
                        return Err(error);
                    }
                };
                println!(
                    "disk: fdatasync after {:<9} p50 {:.3} ms p99 {:.3} ms max {:.3} ms ({} \
                     writes of {} B, each synced, under {})",
                    match pattern {
                        SyncPattern::Append => "append:",
                        SyncPattern::Overwrite => "overwrite:",
                    },
                    ms(fsyncs.value_at_quantile(0.5)),
                    ms(fsyncs.value_at_quantile(0.99)),
                    ms(fsyncs.max()),
                    fsyncs.len(),
                    disk::RECORD_LEN,
                    data_root().display()
                );
            }
            remove_scratch(&dir);
        }
        let runs =
            repeat(&self.server, &options, |t, run| relay::run_once(t, run, plan), show_relay)?;
        if runs.len() > 1 {
            let of = |f: &dyn Fn(&RelayRun) -> f64, decimals| {
                spread(&runs.iter().map(f).collect::<Vec<_>>(), decimals)
            };
            let q = |q: f64| move |r: &RelayRun| ms(r.latency_ns.value_at_quantile(q));
            println!("median (min-max) of {} runs:", runs.len());
            println!(
                "  delivered {} msgs/s, sent {} msgs/s",
                of(&RelayRun::delivered_per_s, 0),
                of(&RelayRun::sent_per_s, 0)
            );
            println!(
                "  latency (write to push) p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms",
                of(&q(0.5), 3),
                of(&q(0.99), 3),
                of(&q(0.999), 3),
                of(&|r: &RelayRun| ms(r.latency_ns.max()), 3),
            );
            println!(
                "  write to reply p50 {} ms, p99 {} ms",
                of(&|r: &RelayRun| ms(r.ack_latency_ns.value_at_quantile(0.5)), 3),
                of(&|r: &RelayRun| ms(r.ack_latency_ns.value_at_quantile(0.99)), 3),
            );
            if runs.iter().all(|r| r.server.is_some()) {
                let server = |f: fn(&ServerCost) -> f64| {
                    move |r: &RelayRun| r.server.as_ref().map_or(0.0, f)
                };
                let switches = |r: &RelayRun| r.switches_per_msg().map_or(0.0, |(s, _)| s);
                let preemptions = |r: &RelayRun| r.switches_per_msg().map_or(0.0, |(_, p)| p);
                println!(
                    "  server CPU {} cores, {} threads, {} KiB resident, {} context switches \
                     per message ({} preemptions)",
                    of(&|r: &RelayRun| r.server_cores().unwrap_or(0.0), 2),
                    of(&server(|s| s.threads as f64), 0),
                    of(&server(|s| s.rss_kib as f64), 0),
                    of(&switches, 2),
                    of(&preemptions, 2),
                );
            }
            println!("  load generator CPU {} cores", of(&RelayRun::generator_cores, 2));
        }
        Ok(())
    }
}

/// The server's threads that did something, by name, for one line.
fn by_thread(server: &ServerCost, delivered: u64) -> String {
    let per = |n: u64| n as f64 / delivered.max(1) as f64;
    let busy =
        server.by_thread.iter().filter(|(_, cpu_s, switches, _)| *cpu_s > 0.0 || *switches > 0);
    let shown: Vec<String> = busy
        .map(|(name, cpu_s, switches, preemptions)| {
            format!("{name} {cpu_s:.2} s {:.2}/{:.2}", per(*switches), per(*preemptions))
        })
        .collect();
    shown.join(", ")
}

fn show_relay(run: &RelayRun) -> String {
    let q = |h: &hdrhistogram::Histogram<u64>, q| ms(h.value_at_quantile(q));
    let lag = match run.lag_ns.is_empty() {
        true => String::new(),
        false => format!(
            "; pacer lag p99 {:.3} ms max {:.3} ms",
            q(&run.lag_ns, 0.99),
            ms(run.lag_ns.max())
        ),
    };
    let server = match (&run.server, run.server_cores(), run.switches_per_msg()) {
        (Some(s), Some(cores), Some((switches, preemptions))) => format!(
            "server {cores:.2} cores ({:.2} s CPU), {} threads, {} KiB resident, \
             {switches:.2} context switches per message ({preemptions:.2} preemptions)\n  \
             by thread (CPU s, switches and preemptions per message): {}",
            s.cpu_s,
            s.threads,
            s.rss_kib,
            by_thread(s, run.delivered)
        ),
        _ => "server cost unknown (no process id)".to_owned(),
    };
    format!(
        "delivered {} of {} accepted ({} refused, {} sent) = {:.0} msgs/s delivered, {:.0} msgs/s \
         sent, in {:.2} s\n  latency (write to push) p50 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms max \
         {:.3} ms; write to reply p50 {:.3} ms p99 {:.3} ms{lag}\n  {server}; load generator \
         {:.2} cores",
        run.delivered,
        run.acked,
        run.refused,
        run.sent,
        run.delivered_per_s(),
        run.sent_per_s(),
        run.elapsed.as_secs_f64(),
        q(&run.latency_ns, 0.5),
        q(&run.latency_ns, 0.99),
        q(&run.latency_ns, 0.999),
        ms(run.latency_ns.max()),
        q(&run.ack_latency_ns, 0.5),
        q(&run.ack_latency_ns, 0.99),
        run.generator_cores(),
    )
}

impl BacklogArgs {
    fn run(self) -> Result<(), BenchError> {
        check_size(self.size)?;
        println!(
            "bench backlog: {} messages of {} B queued, then one login",
            self.messages, self.size
        );
        let placement = Placement::choose(self.server.pin)?;
        println!("placement: {}", placement.describe());
        let queue_len_max = usize::try_from(self.messages).unwrap_or(usize::MAX).max(10_000);
        let options = self.server.options(queue_len_max, 100, &placement);
        let (messages, size) = (self.messages, self.size);
        let once = |t: &Target, run| backlog::run_once(t, run, messages, size);
        let runs = repeat(&self.server, &options, once, show_backlog)?;
        if runs.len() > 1 {
            let drained: Vec<f64> = runs.iter().map(BacklogRun::drained_per_s).collect();
            let filled: Vec<f64> = runs.iter().map(BacklogRun::filled_per_s).collect();
            println!(
                "median (min-max) of {}: drained {} msgs/s, queued {} msgs/s",
                runs.len(),
                spread(&drained, 0),
                spread(&filled, 0)
            );
        }
        Ok(())
    }
}

fn show_backlog(run: &BacklogRun) -> String {
    format!(
        "drained {} messages in {:.3} s = {:.0} msgs/s (queued them at {:.0} msgs/s)",
        run.messages,
        run.drain.as_secs_f64(),
        run.drained_per_s(),
        run.filled_per_s()
    )
}

impl IdleArgs {
    fn run(self) -> Result<(), BenchError> {
        let limit = idle::fd_limit();
        let sockets = if self.bare { 1 } else { 2 };
        let fit = limit.map_or(self.clients, |l| idle::clients_that_fit(l, sockets));
        let clients = self.clients.min(fit);
        let what = match self.bare {
            true => "bare connections (never logged in)",
            false => "logged-in clients with ticketed relays",
        };
        match limit {
            Some(limit) => println!(
                "open-file limit {limit} per process: each client holds {sockets} socket(s) here \
                 and as many in the server, so at most {fit} fit; measuring {clients} {what}"
            ),
            None => println!("open-file limit unknown; measuring {clients} {what}"),
        }
        println!(
            "server: child process `chatroom server`, file log with fsync {}",
            self.fsync.flag()
        );
        let mut runs = Vec::new();
        for run in 0..self.runs.max(1) {
            let result = idle::run_once(
                run,
                clients,
                self.bare,
                self.fsync.flag(),
                self.server_exe.clone(),
            )?;
            println!("run {}: {}", run + 1, show_idle(&result));
            runs.push(result);
        }
        if runs.len() > 1 {
            let per: Vec<f64> = runs.iter().map(IdleRun::server_kib_per_client).collect();
            println!(
                "median (min-max) of {}: {} KiB server memory per client",
                runs.len(),
                spread(&per, 1)
            );
        }
        Ok(())
    }
}

fn show_idle(run: &IdleRun) -> String {
    let stopped = match &run.stopped_by {
        Some(cause) => format!(" [setup stopped early: {cause}]"),
        None => String::new(),
    };
    let what = match run.bare {
        true => "bare connections",
        false => "idle clients with relays",
    };
    format!(
        "{} {what} (set up in {:.1} s): server VmRSS {} -> {} KiB = {:.1} KiB per client, {} -> \
         {} server threads, {} -> {} memory maps = {:.2} per thread; this (client) process \
         grew {} KiB{stopped}",
        run.clients,
        run.setup.as_secs_f64(),
        run.server_rss_kib_before,
        run.server_rss_kib_after,
        run.server_kib_per_client(),
        run.server_threads_before,
        run.server_threads_after,
        run.server_maps_before,
        run.server_maps_after,
        run.server_maps_per_thread(),
        run.bench_rss_kib_delta,
    )
}
