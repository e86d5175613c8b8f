//! `chatroom sim`: run one seed, sweep a range of seeds, replay a scenario file.
//!
//! Every run prints `SEED=` and every option it derived; a failing run prints the violated
//! invariant, the last events that led to it, and the exact command that replays it.
//! Exit codes: 0 all good, 1 a violation (or nondeterminism), 2 a usage error.
//!
//! `--json FILE` and `--junit FILE` also write the results for machines (one JSON line or JUnit
//! test case per seed, see [`crate::results`]); `chatroom sim merge` joins the JSON lines of a
//! sharded sweep.

use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::options::{FaultMode, RunOptions};
use super::run::{
    determinism, planted_unavailable, record_seed, run_scenario, run_seed, sweep_watched, SeedRun,
    SweepReport, Watchdog,
};
use super::scenario::Scenario;
use super::shrink::{self, Progress, Shrunk};
use super::workload::Workload;
use super::world::Outcome;
use crate::results::{self, Failure, ResultFiles, RunResult};

/// Run seeded simulated worlds against the real server core and check its invariants.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SimArgs {
    #[command(subcommand)]
    pub command: Option<SimCommand>,
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
    /// Write the trace (one line per event) of a single run to this file (`-`: standard
    /// output, after the run's summary).
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Run each seed twice and compare trace hashes.
    #[arg(long)]
    pub check_determinism: bool,
    /// Write the space-time diagram of a single run (`--seed` or `--replay`) to this HTML file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Shrink a failing run to a small scenario failing the same invariant, written to
    /// `--out` (with `--seeds`, every failing seed, each to `--out DIR/seed-N.scn`).
    #[arg(long, requires = "out", conflicts_with = "replay")]
    pub shrink: bool,
    /// Where `--shrink` writes: a scenario file for `--seed`, a directory for `--seeds`.
    #[arg(long, requires = "shrink")]
    pub out: Option<PathBuf>,
    /// Wall-time budget of one shrink, in seconds (it then keeps the smallest failing
    /// scenario found so far).
    #[arg(long, default_value_t = 60)]
    pub shrink_budget_s: u64,
    /// Plant this bug in the server (`core::planted::Planted`, by name; builds with the
    /// `planted` feature only), for example to shrink a planted bug's failing seed.
    #[cfg(any(test, feature = "planted"))]
    #[arg(long, value_parser = parse_planted)]
    pub planted: Option<crate::core::planted::Planted>,
    /// Wall time, in seconds, after which a sweep stops waiting for a seed that has not
    /// finished (a server looping within one step, which the simulated clock cannot see): it
    /// names the seed, with the command that replays it, and exits with code 3. 0: wait for
    /// ever.
    #[arg(long, default_value_t = SEED_TIMEOUT_S_DEFAULT)]
    pub seed_timeout_s: u64,
    /// Print the reachability report: how often each refusal, record kind, fault, limit and
    /// hostile action happened (summed over a sweep); expected rows still at zero are marked.
    #[arg(long)]
    pub coverage: bool,
    #[command(flatten)]
    pub results: ResultFiles,
}

/// What `chatroom sim` does besides running worlds.
#[derive(Debug, clap::Subcommand)]
pub enum SimCommand {
    /// Merge JSON-lines results (the shards of a sweep, or several runs) into one JSON-lines
    /// and one JUnit file, ordered by seed. Exit code 1 if any result failed.
    Merge(MergeArgs),
}

/// `chatroom sim merge FILE... [--json OUT] [--junit OUT]`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// JSON-lines files written by `--json`.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Where the merged results go.
    #[command(flatten)]
    pub results: ResultFiles,
}

impl MergeArgs {
    /// Runs the merge: 0 every result passed, 1 some failed, 2 a file could not be read.
    pub fn run(&self) -> ExitCode {
        match self.merge() {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(message) => {
                eprintln!("chatroom sim merge: {message}");
                ExitCode::from(2)
            }
        }
    }

    fn merge(&self) -> Result<bool, String> {
        let mut merged = Vec::new();
        for path in &self.files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let results =
                results::parse_json_lines(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            merged.extend(results);
        }
        // Stable: results without a seed (model checks) keep their order, after the seeds.
        merged.sort_by_key(|r| (r.tool.clone(), r.seed.is_none(), r.seed));
        let mut seen = std::collections::BTreeSet::new();
        for r in merged.iter().filter(|r| r.tool == "sim") {
            if let Some(seed) = r.seed.filter(|&seed| !seen.insert(seed)) {
                return Err(format!("seed {seed} appears twice: do the shards overlap?"));
            }
        }
        let failed = merged.iter().filter(|r| !r.passed()).count();
        println!(
            "merged {} results from {} files: {} passed, {failed} failed",
            merged.len(),
            self.files.len(),
            merged.len() - failed
        );
        for r in merged.iter().filter(|r| !r.passed()) {
            let f = r.failure.as_ref().expect("failed results have a failure");
            println!("FAIL {}: {}: {}", r.name, f.invariant, f.detail);
        }
        self.results.write("chatroom sim", &merged)?;
        Ok(failed == 0)
    }
}

#[cfg(any(test, feature = "planted"))]
pub(crate) fn parse_planted(text: &str) -> Result<crate::core::planted::Planted, String> {
    crate::core::planted::Planted::from_name(text).ok_or_else(|| {
        let names: Vec<String> =
            crate::core::planted::Planted::ALL.iter().map(|b| b.name()).collect();
        format!("unknown planted bug {text:?}; one of: {}", names.join(", "))
    })
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

/// The default of `--seed-timeout-s`: far beyond any seed of the default sizes (tens of
/// milliseconds) or of the largest worlds the README runs (seconds).
pub const SEED_TIMEOUT_S_DEFAULT: u64 = 300;

/// A sweep's seed has run for `ran` without finishing: says so, with the command that replays
/// it, and ends the process (the thread running it cannot be stopped) with code 3.
pub fn stuck_exit(replay: &str, ran: Duration) -> ! {
    eprintln!(
        "a seed has run for {:.0} s of wall time without finishing: the server may be looping \
         within one step (the simulated clock cannot advance past it); replay it alone: {replay}",
        ran.as_secs_f64()
    );
    std::process::exit(3)
}

/// The command that replays the random world of `seed` under `opts`.
pub fn replay_command(seed: u64, opts: &RunOptions) -> String {
    #[allow(unused_mut)]
    let mut command = format!(
        "chatroom sim --seed {seed} --faults {} --clients {} --ops {} --names {} --workload {}",
        opts.faults, opts.clients, opts.ops, opts.names, opts.workload
    );
    #[cfg(any(test, feature = "planted"))]
    if opts.planted != crate::core::planted::Planted::None {
        command.push_str(&format!(" --planted {}", opts.planted.name()));
    }
    command
}

impl SimArgs {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        if let Some(SimCommand::Merge(merge)) = &self.command {
            return merge.run();
        }
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
            keep_trace: self.trace.is_some() || self.html.is_some(),
            #[cfg(any(test, feature = "planted"))]
            planted: self.planted.unwrap_or_default(),
            ..RunOptions::default()
        }
    }

    /// The command that replays `seed` with these options.
    fn replay_command(&self, seed: u64) -> String {
        replay_command(seed, &self.options())
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
        self.write_html(
            &format!("chatroom sim seed {seed}"),
            &outcome,
            &self.replay_command(seed),
        )?;
        let mut good = report_outcome(&outcome, wall.as_secs_f64());
        if self.coverage {
            print!("coverage:\n{}", outcome.coverage);
        }
        let mut result =
            self.result_of(format!("seed {seed}"), &outcome, wall.as_secs_f64() * 1000.0, None);
        if self.check_determinism {
            if let Some(difference) = determinism(seed, &opts, &outcome) {
                println!("NONDETERMINISTIC: {difference}");
                good = false;
                result.failure.get_or_insert(nondeterministic(difference));
            } else {
                println!("determinism: ok (hash repeated)");
            }
        }
        self.write_results(&[result])?;
        if outcome.violation.is_some() {
            print_last_events(seed, &opts);
            println!("replay: {}", self.replay_command(seed));
            if let (true, Some(out)) = (self.shrink, &self.out) {
                self.shrink_to(seed, &opts, out)?;
            }
        } else if self.shrink {
            println!("shrink: the run passed, nothing to shrink");
        }
        Ok(good)
    }

    /// Shrinks the failing `seed` into the scenario file `out` and prints the result.
    fn shrink_to(&self, seed: u64, opts: &RunOptions, out: &Path) -> Result<(), String> {
        let shrunk = shrink_seed(seed, opts, self.shrink_budget_s, true)?;
        let mut text = format!(
            "# Shrunk from: {}\n# Fails: {}\n",
            self.replay_command(seed),
            shrunk.shrunk.invariant
        );
        text.push_str(&shrunk.shrunk.scenario.to_string());
        std::fs::write(out, text).map_err(|e| format!("cannot write {}: {e}", out.display()))?;
        println!("{}", shrunk.summary());
        println!("invariant: {}", shrunk.shrunk.invariant);
        println!("replay: chatroom sim --replay {}", out.display());
        Ok(())
    }

    fn replay(&self, path: &PathBuf) -> Result<bool, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let scenario: Scenario = text.parse().map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(reason) = planted_unavailable(&scenario) {
            return Err(format!("{}: {reason}", path.display()));
        }
        println!("SEED={} scenario={} clients={}", scenario.seed, path.display(), scenario.clients);
        println!("mix: {}", scenario.mix);
        let mut opts = self.options();
        let started = Instant::now();
        let outcome = run_scenario(&scenario, &opts);
        let wall_s = started.elapsed().as_secs_f64();
        self.write_trace(&outcome)?;
        let title = format!("chatroom sim --replay {}", path.display());
        self.write_html(&title, &outcome, &title)?;
        let name = format!("replay {}", path.display());
        let replayed = Some(("scenario".to_owned(), path.display().to_string()));
        self.write_results(&[self.result_of(name, &outcome, wall_s * 1000.0, replayed)])?;
        let good = report_outcome(&outcome, wall_s);
        if self.coverage {
            print!("coverage:\n{}", outcome.coverage);
        }
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
        if path.as_os_str() == "-" {
            print!("{text}");
            return Ok(());
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Writes the space-time diagram of `outcome` (run with its trace kept) to `--html`.
    fn write_html(&self, title: &str, outcome: &Outcome, command: &str) -> Result<(), String> {
        let Some(path) = &self.html else { return Ok(()) };
        let note = format!("replay: {command}; {} events, mix: {}", outcome.events, outcome.mix);
        let page = super::diagram::html(&super::diagram::Diagram {
            title,
            lines: &outcome.trace,
            events: &outcome.kept,
            violation: outcome.violation.as_ref(),
            note: Some(&note),
        });
        std::fs::write(path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("diagram written to {}", path.display());
        Ok(())
    }

    fn sweep(&self, a: u64, b: u64) -> Result<bool, String> {
        if self.trace.is_some() || self.html.is_some() {
            return Err("--trace and --html need a single run (--seed or --replay)".into());
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
        let on_stuck = |seed, ran| stuck_exit(&self.replay_command(seed), ran);
        let watchdog = (self.seed_timeout_s > 0).then(|| Watchdog {
            after: Duration::from_secs(self.seed_timeout_s),
            on_stuck: &on_stuck,
        });
        let (twice, on_done) = (self.check_determinism, &|| bar.inc(1));
        let report = sweep_watched(&seeds, &opts, self.jobs, twice, on_done, watchdog);
        bar.finish_and_clear();
        let results: Vec<RunResult> = report
            .per_seed
            .iter()
            .map(|SeedRun { outcome, wall_ms }| {
                let seed = outcome.seed;
                let mut result = self.result_of(format!("seed {seed}"), outcome, *wall_ms, None);
                let differs = report.nondeterministic.iter().find(|(s, _)| *s == seed);
                if let Some((_, difference)) = differs {
                    result.failure.get_or_insert(nondeterministic(difference.clone()));
                }
                result
            })
            .collect();
        self.write_results(&results)?;
        let good = self.report_sweep(&report, started.elapsed().as_secs_f64());
        if let (true, Some(dir)) = (self.shrink, &self.out) {
            if !report.failures.is_empty() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            for outcome in &report.failures {
                println!("shrinking seed {}:", outcome.seed);
                let file = dir.join(format!("seed-{}.scn", outcome.seed));
                // One seed that cannot be shrunk does not stop the others.
                if let Err(e) = self.shrink_to(outcome.seed, &opts, &file) {
                    println!("shrink: seed {}: {e}", outcome.seed);
                }
            }
        }
        Ok(good)
    }

    /// The machine-readable result of one run; `extra` is one more option (a replayed file).
    fn result_of(
        &self,
        name: String,
        outcome: &Outcome,
        wall_ms: f64,
        extra: Option<(String, String)>,
    ) -> RunResult {
        let opts = self.options();
        let mut options = vec![
            ("faults".to_owned(), opts.faults.to_string()),
            ("clients".to_owned(), opts.clients.to_string()),
            ("ops".to_owned(), opts.ops.to_string()),
            ("names".to_owned(), opts.names.to_string()),
            ("workload".to_owned(), opts.workload.to_string()),
            ("mix".to_owned(), outcome.mix.to_string()),
        ];
        options.extend(extra);
        RunResult {
            tool: "sim".into(),
            name,
            seed: Some(outcome.seed),
            options,
            failure: outcome.violation.as_ref().map(|v| Failure {
                invariant: v.invariant.to_string(),
                detail: v.detail.clone(),
                at_ms: v.at_ms,
            }),
            hash: format!("{:016x}", outcome.hash),
            wall_ms,
            stats: vec![
                ("events".to_owned(), outcome.events),
                ("sim_ms".to_owned(), outcome.sim_ms),
                ("delivered".to_owned(), outcome.delivered),
                ("checks".to_owned(), outcome.checks),
                ("crashes".to_owned(), outcome.crashes),
            ],
        }
    }

    fn write_results(&self, results: &[RunResult]) -> Result<(), String> {
        self.results.write("chatroom sim", results)
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
            let at_ms = v.at_ms.unwrap_or_default();
            println!("FAIL seed={} at {at_ms} ms: {}: {}", outcome.seed, v.invariant, v.detail);
            println!("  mix: {}", outcome.mix);
            println!("  replay: {}", self.replay_command(outcome.seed));
        }
        for (seed, difference) in &report.nondeterministic {
            println!("NONDETERMINISTIC seed={seed}: {difference}");
        }
        if self.coverage {
            let missing = report.coverage.missing();
            print!(
                "coverage ({} expected rows never reached):\n{}",
                missing.len(),
                report.coverage
            );
        }
        let _ = std::io::stdout().flush();
        report.failures.is_empty() && report.nondeterministic.is_empty()
    }
}

/// A shrink and how long it took.
#[derive(Debug, Clone)]
pub struct TimedShrink {
    pub shrunk: Shrunk,
    pub wall_s: f64,
}

impl TimedShrink {
    /// `shrunk: A -> B operations, F faults`.
    pub fn summary(&self) -> String {
        let s = &self.shrunk;
        format!(
            "shrunk: {} -> {} operations, {} faults",
            s.ops_before,
            shrink::ops(&s.scenario),
            shrink::faults(&s.scenario)
        )
    }
}

/// Writes the failing run of `seed` down as a scenario and shrinks it for at most
/// `budget_s` seconds of wall time; with `show`, a progress line on stderr. The scenario names
/// the planted bug of `opts`, if any, so that it replays with it.
pub fn shrink_seed(
    seed: u64,
    opts: &RunOptions,
    budget_s: u64,
    show: bool,
) -> Result<TimedShrink, String> {
    let started = Instant::now();
    let recorded = record_seed(seed, opts);
    let Some(violation) = &recorded.violation else {
        return Err(format!("seed {seed} passes: nothing to shrink"));
    };
    #[allow(unused_mut)]
    let mut scenario = shrink::written_down(&recorded).expect("the run was recorded");
    #[cfg(any(test, feature = "planted"))]
    if opts.planted != crate::core::planted::Planted::None {
        scenario.planted = Some(opts.planted.name());
    }
    let replayed = run_scenario(&scenario, opts).violation.map(|v| v.invariant);
    if replayed != Some(violation.invariant) {
        return Err(format!(
            "seed {seed} fails {:?}, but written down as a scenario it fails {replayed:?}: \
             cannot shrink it",
            violation.invariant
        ));
    }
    let terminal = show && std::io::stderr().is_terminal();
    let mut shown_s = 0.0;
    let mut keep_going = |p: &Progress| {
        let elapsed_s = started.elapsed().as_secs_f64();
        if show && (terminal || elapsed_s - shown_s >= 5.0) {
            shown_s = elapsed_s;
            let line = format!(
                "shrink: {} candidates, {} operations, {} faults, {} clients, {elapsed_s:.1} s",
                p.candidates, p.ops, p.faults, p.clients
            );
            if terminal {
                eprint!("\r{line}\x1b[K");
            } else {
                eprintln!("{line}");
            }
        }
        elapsed_s < budget_s as f64
    };
    let shrunk = shrink::shrink(&scenario, opts, &mut keep_going)?;
    if terminal {
        eprintln!();
    }
    if show {
        let ended = if shrunk.complete { "done" } else { "budget spent" };
        eprintln!(
            "shrink: {ended} after {} candidates in {:.1} s",
            shrunk.candidates,
            started.elapsed().as_secs_f64()
        );
    }
    Ok(TimedShrink { shrunk, wall_s: started.elapsed().as_secs_f64() })
}

/// The failure of a seed whose two runs differed: not a reproducible run, whatever it found.
fn nondeterministic(difference: String) -> Failure {
    Failure { invariant: "the run is deterministic".into(), detail: difference, at_ms: None }
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
            println!(
                "VIOLATION at {} ms: {}: {}",
                v.at_ms.unwrap_or_default(),
                v.invariant,
                v.detail
            );
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::core::planted::Planted;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: SimArgs,
    }

    fn parse(args: &[&str]) -> SimArgs {
        let argv = std::iter::once("sim").chain(args.iter().copied());
        Command::try_parse_from(argv).expect("valid arguments").args
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("chatroom-sim-{}-{name}", std::process::id()))
    }

    fn read_results(path: &PathBuf) -> Vec<RunResult> {
        let text = std::fs::read_to_string(path).expect("results written");
        std::fs::remove_file(path).expect("removable");
        results::parse_json_lines(&text).expect("valid JSON lines")
    }

    /// What a result says apart from its wall time.
    fn without_time(results: Vec<RunResult>) -> Vec<RunResult> {
        results.into_iter().map(|r| RunResult { wall_ms: 0.0, ..r }).collect()
    }

    const SMALL: [&str; 6] = ["--clients", "3", "--ops", "10", "--jobs", "2"];

    #[test]
    fn sharded_sweeps_merge_into_the_unsharded_results() {
        let whole = temp("whole.jsonl");
        let mut argv = vec!["--seeds", "0..30", "--json", whole.to_str().unwrap()];
        argv.extend(SMALL);
        assert_eq!(parse(&argv).run(), ExitCode::SUCCESS);
        let whole = read_results(&whole);
        assert_eq!(
            whole.iter().map(|r| r.seed).collect::<Vec<_>>(),
            (0..30).map(Some).collect::<Vec<_>>()
        );
        let shards: Vec<PathBuf> = (0..3).map(|k| temp(&format!("shard{k}.jsonl"))).collect();
        for (k, path) in shards.iter().enumerate() {
            let shard = format!("{k}/3");
            let mut argv =
                vec!["--seeds", "0..30", "--shard", &shard, "--json", path.to_str().unwrap()];
            argv.extend(SMALL);
            assert_eq!(parse(&argv).run(), ExitCode::SUCCESS);
        }
        let (merged, junit) = (temp("merged.jsonl"), temp("merged.xml"));
        let mut argv = vec!["merge"];
        argv.extend(shards.iter().rev().map(|p| p.to_str().unwrap()));
        argv.extend(["--json", merged.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
        assert_eq!(parse(&argv).run(), ExitCode::SUCCESS);
        assert_eq!(without_time(read_results(&merged)), without_time(whole.clone()));
        let xml = std::fs::read_to_string(&junit).expect("junit written");
        assert!(
            xml.contains("<testsuite name=\"chatroom sim\" tests=\"30\" failures=\"0\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"seed 29\""), "{xml}");
        // Overlapping shards are refused rather than counted twice.
        let mut argv = vec!["merge", shards[0].to_str().unwrap(), shards[0].to_str().unwrap()];
        argv.extend(["--json", merged.to_str().unwrap()]);
        assert_eq!(parse(&argv).run(), ExitCode::from(2));
        for path in shards.iter().chain([&junit]) {
            std::fs::remove_file(path).expect("removable");
        }
    }

    #[test]
    fn a_failing_seed_is_a_failed_result_and_fails_the_merge() {
        let args = parse(&SMALL);
        let opts = RunOptions { planted: Planted::RequeueOutOfOrder, ..args.options() };
        let outcome = (0..100).map(|s| run_seed(s, &opts)).find(|o| o.violation.is_some());
        let outcome = outcome.expect("the planted bug is caught");
        let result = args.result_of(format!("seed {}", outcome.seed), &outcome, 1.5, None);
        let failure = result.failure.clone().expect("a failed result");
        assert_eq!(failure.invariant, "per-sender order is kept");
        assert_eq!(failure.at_ms, outcome.violation.as_ref().and_then(|v| v.at_ms));
        assert_eq!(result.hash, format!("{:016x}", outcome.hash));
        let line = result.to_json_line();
        assert!(
            line.contains("\"result\":\"fail\",\"invariant\":\"per-sender order is kept\""),
            "{line}"
        );
        let (input, junit) = (temp("failing.jsonl"), temp("failing.xml"));
        std::fs::write(&input, line + "\n").expect("writable");
        let argv = ["merge", input.to_str().unwrap(), "--junit", junit.to_str().unwrap()];
        assert_eq!(parse(&argv).run(), ExitCode::from(1));
        let xml = std::fs::read_to_string(&junit).expect("junit written");
        assert!(xml.contains("failures=\"1\""), "{xml}");
        assert!(xml.contains("<failure message=\"per-sender order is kept\""), "{xml}");
        std::fs::remove_file(&input).expect("removable");
        std::fs::remove_file(&junit).expect("removable");
    }

    #[test]
    fn a_single_run_writes_one_result_with_its_options() {
        let json = temp("single.jsonl");
        let mut argv = vec!["--seed", "7", "--json", json.to_str().unwrap()];
        argv.extend(SMALL);
        assert_eq!(parse(&argv).run(), ExitCode::SUCCESS);
        let results = read_results(&json);
        assert_eq!(results.len(), 1);
        let result = &results[0];
        assert_eq!((result.name.as_str(), result.seed, result.passed()), ("seed 7", Some(7), true));
        let option =
            |key: &str| result.options.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        assert_eq!(
            (option("clients"), option("ops"), option("faults")),
            (Some("3"), Some("10"), Some("swarm"))
        );
        assert_eq!(result.hash, format!("{:016x}", run_seed(7, &parse(&SMALL).options()).hash));
    }

    /// The space-time diagram (`--html`, `sim::diagram`).
    mod diagram {
        use crate::core::planted::Planted;
        use crate::sim::diagram::{html, Diagram};
        use crate::sim::world::Outcome;
        use crate::sim::{run_seed, FaultMode, RunOptions};

        /// A failing run of thousands of events: the planted reordering bug in default-sized worlds.
        fn failing_run() -> Outcome {
            let opts = RunOptions {
                planted: Planted::RequeueOutOfOrder,
                faults: FaultMode::Swarm,
                keep_trace: true,
                ..RunOptions::default()
            };
            let failed = (0..200).map(|s| run_seed(s, &opts)).find(|o| o.violation.is_some());
            failed.expect("the planted bug is caught")
        }

        fn page(outcome: &Outcome) -> String {
            html(&Diagram {
                title: "test run",
                lines: &outcome.trace,
                events: &outcome.kept,
                violation: outcome.violation.as_ref(),
                note: Some("a note <with> markup & quotes\""),
            })
        }

        #[test]
        fn the_page_is_self_contained_and_marks_one_violating_event() {
            let outcome = failing_run();
            assert_eq!(outcome.kept.len(), outcome.trace.len(), "a typed event per kept line");
            let page = page(&outcome);
            assert_eq!(page.matches("id=\"violation\"").count(), 1);
            assert!(page.contains("class=\"violation-band\""));
            for external in ["src=", "href=", "http://", "https://", "@import"] {
                let found = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
                assert!(!found.contains(external), "the page loads {external}");
            }
            assert!(page.contains("a note &lt;with&gt; markup &amp; quotes&quot;"));
            assert!(page.contains(">c0 command<") && page.contains(">c0 relay<"));
            assert!(page.contains(">server<") && page.contains(">disk<"));
            assert!(page.matches("class=\"msg\"").count() > 100, "messages are arrows");
            let last = outcome.trace.last().expect("lines were kept");
            let data_i = format!("data-i=\"{}\"", outcome.trace.len() - 1);
            let violating = page.split("<circle").find(|c| c.contains("id=\"violation\"")).unwrap();
            assert!(violating.contains(&data_i), "the last event is the violating one: {last}");
        }

        /// The DOM of `outcome`'s diagram after Chromium loaded it (with `fragment` in the URL)
        /// and its script ran. The tests that need Chromium are built with the `browser`
        /// feature, so that `cargo test` needs nothing but cargo; `.ci/run` installs Chromium
        /// and runs them (`cargo test --features browser --lib diagram`).
        #[cfg(feature = "browser")]
        fn render(outcome: &Outcome, fragment: &str) -> String {
            let path = std::env::temp_dir().join(format!(
                "chatroom-diagram-{}-{}.html",
                std::process::id(),
                fragment.len()
            ));
            std::fs::write(&path, page(outcome)).expect("writable");
            let output = std::process::Command::new(chromium())
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--window-size=1200,800",
                    "--virtual-time-budget=3000",
                    "--dump-dom",
                ])
                .arg(format!("file://{}{fragment}", path.display()))
                .output()
                .expect("chromium runs");
            std::fs::remove_file(&path).expect("removable");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8_lossy(&output.stdout).into_owned()
        }

        /// The client filter hides every lane, event and arrow of the clients it names, and
        /// nothing else.
        #[cfg(feature = "browser")]
        #[test]
        fn headless_chromium_hides_a_filtered_client() {
            let outcome = failing_run();
            let dom = render(&outcome, "#hide=0");
            let elements = |client: &str| -> (usize, usize) {
                let marker = format!("data-c=\"{client}\"");
                let tags: Vec<&str> = dom.split('<').filter(|tag| tag.contains(&marker)).collect();
                let hidden = tags.iter().filter(|tag| tag.contains("display: none")).count();
                (tags.len(), hidden)
            };
            let (c0, c0_hidden) = elements("0");
            assert!(c0 > 10, "client 0 draws lanes, events and arrows: {c0}");
            assert_eq!(c0_hidden, c0, "every element of client 0 is hidden");
            let (c1, c1_hidden) = elements("1");
            assert!(c1 > 10 && c1_hidden == 0, "client 1 stays: {c1_hidden} of {c1} hidden");
        }

        /// Chromium, from `CHROMIUM` or the PATH (`bash .ci/browser` installs it).
        #[cfg(feature = "browser")]
        fn chromium() -> String {
            let candidates = std::env::var("CHROMIUM")
                .into_iter()
                .chain(["chromium", "chromium-browser", "google-chrome"].map(String::from));
            for candidate in candidates {
                let found = std::process::Command::new(&candidate).arg("--version").output();
                if found.is_ok_and(|o| o.status.success()) {
                    return candidate;
                }
            }
            panic!(
                "this test renders the diagram in headless Chromium: install it (bash .ci/browser)"
            );
        }

        /// Renders a failing run's diagram in headless Chromium and reads back what the page's own
        /// script measured in the laid-out page after load: the violating event was scrolled into
        /// the viewport (below the sticky header), the browser's hit test at its centre finds it
        /// (nothing covers it), it is painted crimson, and the info panel shows its trace line.
        /// (Chromium's `--screenshot` paints a scrolled page blank, so the page measures itself.)
        #[cfg(feature = "browser")]
        #[test]
        fn headless_chromium_shows_the_violating_event_highlighted() {
            let outcome = failing_run();
            let dom = render(&outcome, "");
            let body = dom.split("<body").nth(1).expect("a body").split('>').next().unwrap_or("");
            assert!(body.contains("data-violation-visible=\"yes\""), "not in view: <body{body}>");
            assert!(body.contains("data-violation-on-top=\"yes\""), "covered: <body{body}>");
            assert!(body.contains("data-violation-fill=\"rgb(220, 20, 60)\""), "<body{body}>");
            let info = dom.split("<div id=\"info\">").nth(1).expect("the info panel");
            let info = info.split("</div>").next().unwrap_or("");
            let last = outcome.trace.last().expect("lines were kept");
            // A serialized text node escapes only `&`, `<` and `>` (quotes stay as they are).
            let text = last.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
            assert_eq!(info, text, "the info panel shows the violating line");
        }
    }

    /// `--shrink` on a seed and on a sweep: each failing seed's scenario file fails the same
    /// invariant when replayed (it names its planted bug), and a default build refuses it.
    #[test]
    fn shrink_writes_replayable_scenarios_for_a_seed_and_for_a_sweep() {
        let small = ["--clients", "3", "--ops", "25", "--names", "4"];
        let file = temp("shrunk.scn");
        let mut argv = vec!["--seed", "2", "--planted", "RequeueOutOfOrder", "--shrink"];
        argv.extend(["--out", file.to_str().unwrap()]);
        argv.extend(small);
        assert_eq!(parse(&argv).run(), ExitCode::from(1), "the seed fails");
        let text = std::fs::read_to_string(&file).expect("the shrunk scenario is written");
        std::fs::remove_file(&file).expect("removable");
        assert!(text.contains("planted RequeueOutOfOrder"), "{text}");
        let scenario: Scenario = text.parse().expect("it parses");
        assert!(shrink::ops(&scenario) <= 12, "{text}");
        let outcome = run_scenario(&scenario, &RunOptions::default());
        assert_eq!(
            outcome.violation.map(|v| v.invariant.sentence()),
            Some("per-sender order is kept")
        );

        let dir = temp("shrunk-sweep");
        let mut argv = vec!["--seeds", "0..5", "--planted", "RequeueOutOfOrder", "--shrink"];
        argv.extend(["--out", dir.to_str().unwrap(), "--jobs", "2"]);
        argv.extend(small);
        assert_eq!(parse(&argv).run(), ExitCode::from(1));
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .expect("the directory is made")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        std::fs::remove_dir_all(&dir).expect("removable");
        assert!(files.contains(&"seed-2.scn".to_owned()), "{files:?}");
        assert!(files.iter().all(|f| f.starts_with("seed-") && f.ends_with(".scn")), "{files:?}");

        let mut unplantable = scenario;
        unplantable.planted = Some("NoSuchBug".into());
        assert!(planted_unavailable(&unplantable).is_some_and(|r| r.contains("NoSuchBug")));
    }
}
