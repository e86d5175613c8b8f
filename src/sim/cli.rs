//! `chatroom sim`: run one seed, sweep a range of seeds, replay a scenario file.
//!
//! Every run prints `SEED=` and every option it derived; a failing run prints the violated
//! invariant, the last events that led to it, and the exact command that replays it.
//! Exit codes: 0 all good, 1 a violation (or nondeterminism), 2 a usage error.

use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::options::{FaultMode, RunOptions};
use super::run::{determinism, run_scenario, run_seed, sweep, SweepReport};
use super::scenario::Scenario;
use super::workload::Workload;
use super::world::Outcome;

/// Run seeded simulated worlds against the real server core and check its invariants.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Run this one seed.
    #[arg(long, conflicts_with_all = ["seeds", "replay"])]
    pub seed: Option<u64>,
    /// Sweep a range of seeds, `A..B` (B excluded).
    #[arg(long, value_parser = parse_range, conflicts_with = "replay")]
    pub seeds: Option<(u64, u64)>,
    /// Run only every N-th seed of the sweep starting at the K-th (`K/N`, 0 <= K < N).
    #[arg(long, value_parser = parse_shard, requires = "seeds")]
    pub shard: Option<(u64, u64)>,
    /// Threads for a sweep (each runs whole seeds).
    #[arg(long, default_value_t = default_jobs())]
    pub jobs: usize,
    /// Which faults to inject.
    #[arg(long, value_enum, default_value_t = FaultMode::Swarm)]
    pub faults: FaultMode,
    /// Random clients per world.
    #[arg(long, default_value_t = RunOptions::default().clients)]
    pub clients: usize,
    /// Operations per random client.
    #[arg(long, default_value_t = RunOptions::default().ops)]
    pub ops: usize,
    /// Usernames the random clients share.
    #[arg(long, default_value_t = RunOptions::default().names)]
    pub names: usize,
    /// What the random clients do (`chat`: register, open a relay, then only send).
    #[arg(long, value_enum, default_value_t = Workload::Mixed)]
    pub workload: Workload,
    /// Replay a scenario file instead of a random world.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Write the trace (one line per event) of a single run to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Run each seed twice and compare trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn parse_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text.split_once("..").ok_or("expected A..B, for example 0..1000")?;
    let a: u64 = a.parse().map_err(|_| format!("bad start {a:?}"))?;
    let b: u64 = b.parse().map_err(|_| format!("bad end {b:?}"))?;
    if a >= b {
        return Err(format!("empty range {a}..{b}"));
    }
    Ok((a, b))
}

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (k, n) = text.split_once('/').ok_or("expected K/N, for example 0/4")?;
    let k: u64 = k.parse().map_err(|_| format!("bad shard index {k:?}"))?;
    let n: u64 = n.parse().map_err(|_| format!("bad shard count {n:?}"))?;
    if n == 0 || k >= n {
        return Err(format!("shard {k}/{n}: need 0 <= K < N"));
    }
    Ok((k, n))
}

impl SimArgs {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        let result = if let Some(path) = &self.replay {
            self.replay(path)
        } else if let Some((a, b)) = self.seeds {
            self.sweep(a, b)
        } else {
            self.single(self.seed.unwrap_or(0))
        };
        match result {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(message) => {
                eprintln!("chatroom sim: {message}");
                ExitCode::from(2)
            }
        }
    }

    fn options(&self) -> RunOptions {
        RunOptions {
            faults: self.faults,
            clients: self.clients,
            ops: self.ops,
            names: self.names,
            workload: self.workload,
            keep_trace: self.trace.is_some(),
            ..RunOptions::default()
        }
    }

    /// The command that replays `seed` with these options.
    fn replay_command(&self, seed: u64) -> String {
        format!(
            "chatroom sim --seed {seed} --faults {} --clients {} --ops {} --names {} --workload {}",
            self.faults, self.clients, self.ops, self.names, self.workload
        )
    }

    fn single(&self, seed: u64) -> Result<bool, String> {
        let opts = self.options();
        println!(
            "SEED={seed} faults={} clients={} ops={} names={} workload={}",
            opts.faults, opts.clients, opts.ops, opts.names, opts.workload
        );
        let started = Instant::now();
        let outcome = run_seed(seed, &opts);
        let wall = started.elapsed();
        println!("mix: {}", outcome.mix);
        self.write_trace(&outcome)?;
        let mut good = report_outcome(&outcome, wall.as_secs_f64());
        if self.check_determinism {
            if let Some(difference) = determinism(seed, &opts, &outcome) {
                println!("NONDETERMINISTIC: {difference}");
                good = false;
            } else {
                println!("determinism: ok (hash repeated)");
            }
        }
        if outcome.violation.is_some() {
            print_last_events(seed, &opts);
            println!("replay: {}", self.replay_command(seed));
        }
        Ok(good)
    }

    fn replay(&self, path: &PathBuf) -> Result<bool, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let scenario: Scenario = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
        println!("SEED={} scenario={} clients={}", scenario.seed, path.display(), scenario.clients);
        println!("mix: {}", scenario.mix);
        let mut opts = self.options();
        let started = Instant::now();
        let outcome = run_scenario(&scenario, &opts);
        self.write_trace(&outcome)?;
        let good = report_outcome(&outcome, started.elapsed().as_secs_f64());
        if outcome.violation.is_some() {
            opts.keep_trace = true;
            let kept = run_scenario(&scenario, &opts);
            print_tail(&kept.trace);
            println!("replay: chatroom sim --replay {}", path.display());
        }
        Ok(good)
    }

    fn write_trace(&self, outcome: &Outcome) -> Result<(), String> {
        let Some(path) = &self.trace else { return Ok(()) };
        let mut text = outcome.trace.join("\n");
        text.push('\n');
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn sweep(&self, a: u64, b: u64) -> Result<bool, String> {
        if self.trace.is_some() {
            return Err("--trace needs a single run (--seed or --replay)".into());
        }
        let (k, n) = self.shard.unwrap_or((0, 1));
        let seeds: Vec<u64> = (a..b).filter(|s| (s - a) % n == k).collect();
        let opts = self.options();
        println!(
            "SEEDS={a}..{b} shard={k}/{n} faults={} clients={} ops={} names={} workload={} jobs={}",
            opts.faults, opts.clients, opts.ops, opts.names, opts.workload, self.jobs
        );
        let bar = ProgressBar::new(seeds.len() as u64);
        if std::io::stderr().is_terminal() {
            bar.set_style(
                ProgressStyle::with_template("{bar:40} {pos}/{len} seeds {elapsed} eta {eta}")
                    .expect("valid template"),
            );
        } else {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let started = Instant::now();
        let report = sweep(&seeds, &opts, self.jobs, self.check_determinism, &|| bar.inc(1));
        bar.finish_and_clear();
        Ok(self.report_sweep(&report, started.elapsed().as_secs_f64()))
    }

    fn report_sweep(&self, report: &SweepReport, wall_s: f64) -> bool {
        println!(
            "runs={} events={} delivered={} checks={} wall_s={wall_s:.2} failures={} nondeterministic={}",
            report.runs,
            report.events,
            report.delivered,
            report.checks,
            report.failures.len(),
            report.nondeterministic.len()
        );
        for outcome in &report.failures {
            let v = outcome.violation.as_ref().expect("failures have a violation");
            println!("FAIL seed={} at {} ms: {}: {}", outcome.seed, v.at_ms, v.invariant, v.detail);
            println!("  mix: {}", outcome.mix);
            println!("  replay: {}", self.replay_command(outcome.seed));
        }
        for (seed, difference) in &report.nondeterministic {
            println!("NONDETERMINISTIC seed={seed}: {difference}");
        }
        let _ = std::io::stdout().flush();
        report.failures.is_empty() && report.nondeterministic.is_empty()
    }
}

/// Prints the summary of one run; returns whether it passed.
fn report_outcome(outcome: &Outcome, wall_s: f64) -> bool {
    let ratio = outcome.sim_ms as f64 / 1000.0 / wall_s.max(1e-9);
    let delivered_per_s = outcome.delivered as f64 / wall_s.max(1e-9);
    println!(
        "events={} sim_ms={} wall_ms={:.1} sim/wall={ratio:.0}x delivered={} \
         delivered/s={delivered_per_s:.0} checks={} crashes={} hash={:016x}",
        outcome.events,
        outcome.sim_ms,
        wall_s * 1000.0,
        outcome.delivered,
        outcome.checks,
        outcome.crashes,
        outcome.hash
    );
    match &outcome.violation {
        None => {
            println!("result: ok");
            true
        }
        Some(v) => {
            println!("VIOLATION at {} ms: {}: {}", v.at_ms, v.invariant, v.detail);
            println!("result: FAILED");
            false
        }
    }
}

fn print_last_events(seed: u64, opts: &RunOptions) {
    let kept = run_seed(seed, &RunOptions { keep_trace: true, ..opts.clone() });
    print_tail(&kept.trace);
}

fn print_tail(trace: &[String]) {
    const SHOWN: usize = 30;
    println!("last {} events:", SHOWN.min(trace.len()));
    for line in &trace[trace.len().saturating_sub(SHOWN)..] {
        println!("  {line}");
    }
}
