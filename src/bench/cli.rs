//! `chatroom bench`: flags, runs, and the printed figures.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::backlog::{self, BacklogRun};
use super::idle::{self, IdleRun};
use super::relay::{self, RelayPlan, RelayRun};
use super::{machine_summary, median, BenchError, Target, TargetOptions};
use crate::store::FsyncPolicy;

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
    /// Use a running server's command port (HOST:PORT) instead of starting one in-process. It
    /// must allow many connections per address (--connections-per-peer-max) and, for
    /// `backlog`, a long enough queue (--queue-len-max); cheap argon2 settings speed up setup.
    #[arg(long, requires = "relay_addr")]
    pub addr: Option<SocketAddr>,
    /// The running server's relay port (HOST:PORT), with --addr.
    #[arg(long)]
    pub relay_addr: Option<SocketAddr>,
    /// Give the in-process server a file log with this fsync policy (default: log in memory).
    #[arg(long, value_enum)]
    pub fsync: Option<Fsync>,
    /// Repeat the measurement this many times (fresh server each time) and print medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
}

/// `--fsync` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    Always,
    Never,
}

impl Fsync {
    fn policy(self) -> FsyncPolicy {
        match self {
            Fsync::Always => FsyncPolicy::Always,
            Fsync::Never => FsyncPolicy::Never,
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::Never => "never",
        }
    }
}

impl ServerChoice {
    fn options(&self, queue_len_max: usize) -> TargetOptions {
        TargetOptions {
            external: self.addr.zip(self.relay_addr),
            fsync: self.fsync.map(Fsync::policy),
            queue_len_max,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct RelayArgs {
    /// Sender/receiver pairs, each sender sending only to its receiver.
    #[arg(long, default_value_t = 4)]
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
    /// Sends in flight per sender (pipelined in one write).
    #[arg(long, default_value_t = 64)]
    pub window: usize,
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
    /// fsync policy of the child server's log.
    #[arg(long, value_enum, default_value_t = Fsync::Never)]
    pub fsync: Fsync,
    /// Repeat the measurement this many times and print medians.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
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

impl RelayArgs {
    fn run(self) -> Result<(), BenchError> {
        check_size(self.size)?;
        let plan = RelayPlan {
            pairs: self.pairs.max(1),
            size_bytes: self.size,
            rate: self.rate,
            duration: Duration::from_secs(self.duration_s.max(1)),
            window: self.window.max(1),
        };
        let rate = match plan.rate {
            0 => "as fast as possible".to_owned(),
            r => format!("{r} msgs/s"),
        };
        println!(
            "bench relay: {} pairs, {} B messages, {rate}, {} s, window {}",
            plan.pairs, plan.size_bytes, self.duration_s, plan.window
        );
        let options = self.server.options(10_000);
        let runs =
            repeat(&self.server, &options, |t, run| relay::run_once(t, run, plan), show_relay)?;
        if runs.len() > 1 {
            let m = |f: fn(&RelayRun) -> f64| median(&runs.iter().map(f).collect::<Vec<_>>());
            println!(
                "median of {}: {:.0} msgs/s delivered, latency p50 {:.3} ms p99 {:.3} ms p99.9 {:.3} ms",
                runs.len(),
                m(RelayRun::delivered_per_s),
                m(|r| ms(r.latency_ns.value_at_quantile(0.5))),
                m(|r| ms(r.latency_ns.value_at_quantile(0.99))),
                m(|r| ms(r.latency_ns.value_at_quantile(0.999))),
            );
        }
        Ok(())
    }
}

fn show_relay(run: &RelayRun) -> String {
    let q = |q| ms(run.latency_ns.value_at_quantile(q));
    format!(
        "{:.0} msgs/s delivered ({} of {} accepted, {} refused, in {:.2} s); latency p50 {:.3} ms \
         p99 {:.3} ms p99.9 {:.3} ms max {:.3} ms",
        run.delivered_per_s(),
        run.delivered,
        run.sent_ok,
        run.refused,
        run.elapsed.as_secs_f64(),
        q(0.5),
        q(0.99),
        q(0.999),
        ms(run.latency_ns.max()),
    )
}

impl BacklogArgs {
    fn run(self) -> Result<(), BenchError> {
        check_size(self.size)?;
        println!(
            "bench backlog: {} messages of {} B queued, then one login",
            self.messages, self.size
        );
        let queue_len_max = usize::try_from(self.messages).unwrap_or(usize::MAX).max(10_000);
        let options = self.server.options(queue_len_max);
        let (messages, size) = (self.messages, self.size);
        let once = |t: &Target, run| backlog::run_once(t, run, messages, size);
        let runs = repeat(&self.server, &options, once, show_backlog)?;
        if runs.len() > 1 {
            let drained: Vec<f64> = runs.iter().map(BacklogRun::drained_per_s).collect();
            let filled: Vec<f64> = runs.iter().map(BacklogRun::filled_per_s).collect();
            println!(
                "median of {}: drained {:.0} msgs/s, queued {:.0} msgs/s",
                runs.len(),
                median(&drained),
                median(&filled)
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
        let fit = limit.map_or(self.clients, idle::clients_that_fit);
        let clients = self.clients.min(fit);
        match limit {
            Some(limit) => println!(
                "open-file limit {limit} per process: each client holds 2 sockets here and 2 in \
                 the server, so at most {fit} clients fit; measuring {clients}"
            ),
            None => println!("open-file limit unknown; measuring {clients} clients"),
        }
        println!(
            "server: child process `chatroom server`, file log with fsync {}",
            self.fsync.flag()
        );
        let mut runs = Vec::new();
        for run in 0..self.runs.max(1) {
            let result = idle::run_once(run, clients, self.fsync.flag())?;
            println!("run {}: {}", run + 1, show_idle(&result));
            runs.push(result);
        }
        if runs.len() > 1 {
            let per: Vec<f64> = runs.iter().map(IdleRun::server_kib_per_client).collect();
            println!("median of {}: {:.1} KiB server memory per client", runs.len(), median(&per));
        }
        Ok(())
    }
}

fn show_idle(run: &IdleRun) -> String {
    let stopped = match &run.stopped_by {
        Some(cause) => format!(" [setup stopped early: {cause}]"),
        None => String::new(),
    };
    format!(
        "{} idle clients with relays (set up in {:.1} s): server VmRSS {} -> {} KiB = {:.1} KiB per \
         client, {} server threads; this (client) process grew {} KiB{stopped}",
        run.clients,
        run.setup.as_secs_f64(),
        run.server_rss_kib_before,
        run.server_rss_kib_after,
        run.server_kib_per_client(),
        run.server_threads_after,
        run.bench_rss_kib_delta,
    )
}
