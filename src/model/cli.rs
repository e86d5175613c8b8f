//! `chatroom check`: explores a small scenario exhaustively and reports the shortest violation.
//!
//! Exit codes: 0 no violation (exhaustive, or stopped by `--max-states` or `--max-memory`,
//! which the summary says), 1 a violation (printed, and written as a scenario file), 2 a usage
//! error. `--json FILE` and `--junit FILE` also write the result for machines
//! ([`crate::results`]).
//!
//! Memory is the process's resident set as Linux reports it (`/proc/self/statm`); where that
//! cannot be read, `--max-memory` cannot be checked and the progress line leaves memory out.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::census::Census;
use super::driver::State;
use super::driver::{Bounds, Passwords, STALL_STEPS_DEFAULT};
use super::estimate::estimate;
use super::explorer::{explore_observed, Limits, Observer, Progress, Report, Search};
use super::fingerprint::permutations;
use super::step::User;
use super::trace::{describe, to_sim_scenario};
use crate::auth::{HashCost, Hasher};
use crate::results::{Failure, ResultFiles, RunResult};

/// Model-check every interleaving of a small scenario against the reference model.
///
/// Each user may perform up to `--ops` operations (register, login, logout, send to another
/// user, list, delete, open a relay), in every order and interleaving with the other users;
/// relays report their writes as separate steps; up to `--faults` faults (a command or relay
/// connection reset, a server crash and recovery) strike anywhere. Every state is checked
/// against the invariants and the reference model; the first violation found is a shortest one.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Users in the scenario (1 to 5).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub users: u8,
    /// Operations per user (0 to 30).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=30))]
    pub ops: u8,
    /// Faults in total (0 to 30): connection resets and server crashes.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=30))]
    pub faults: u8,
    /// Disk stalls in total (0 to 30): windows in which the log's fsync is slow, records stay
    /// unsynced and every output behind them waits, so that a crash can lose them or tear the
    /// last one. A stall is lazy: it lasts up to three steps counted from the first record it
    /// holds back, and the sync or a crash ends it only after one (until then it changes
    /// nothing) [default: 1 if there are faults, else 0].
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=30))]
    pub stalls: Option<u8>,
    /// The most steps a stall lasts once it holds something back, the step that wrote its
    /// first record included (1 to 8): behind a held record, every user's possible requests
    /// multiply the states, so each step more costs much (on `--users 3 --ops 4 --faults 1`,
    /// 1, 2 and 3 steps: 4.3, 15.5 and 47.9 million states). With 1, only the record's own
    /// step is held; with 2, one more request waits behind it.
    #[arg(long, default_value_t = STALL_STEPS_DEFAULT, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub stall_steps: u8,
    /// Requests a client may send before the replies to the earlier ones arrive (1 to 4;
    /// 1: each waits). Only sends, lists and logouts are pipelined, and the server reads one
    /// request ahead of its replies, so a burst waits in the socket while a stalled disk holds
    /// the replies back.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=4))]
    pub pipeline: u8,
    /// Stop after this many unique states (the search is then not exhaustive). Memory grows
    /// with the states kept: 30 to 50 bytes per state seen.
    #[arg(long, default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_states: u64,
    /// Stop when the resident memory reaches this size (the search is then not exhaustive):
    /// bytes, or with a unit: KiB, MiB, GiB, TiB (or K, M, G, T), KB, MB, GB, TB. Checked after
    /// every batch of states; the set of states seen grows by doubling, so the peak can pass
    /// the bound by that set's size (about two thirds of the memory in use).
    #[arg(long, value_parser = parse_size)]
    pub max_memory: Option<u64>,
    /// Threads expanding states [default: the number of cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: Option<u16>,
    /// Users may also open ticketed relays, whose pushes they acknowledge.
    #[arg(long)]
    pub tickets: bool,
    /// Users may also try to open a relay in another user's name.
    #[arg(long)]
    pub intruders: bool,
    /// Attackers guess passwords: each user may also send logins with a wrong password in any
    /// user's name from an address of its own, several in flight at once, against
    /// login-failure limits this small (N checks per name and address, 2N per address).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=20))]
    pub throttle: Option<u8>,
    /// Hijackers race the owners' relays: the server accepts ticketed handshakes only (its
    /// default), users open ticketed relays only (implies `--tickets`), and each user may also
    /// open a relay with a bare handshake in another user's name from that user's host.
    #[arg(long)]
    pub race: bool,
    /// Count states that differ only by a renaming of users separately.
    #[arg(long)]
    pub no_symmetry: bool,
    /// Do not skip subsumed states (the default skips them). A state is skipped when a state
    /// that differs from it only in having spent less of a budget (one fault, one stall, one
    /// step of the current stall, one of a user's operations) was visited: that state can take
    /// every step this one can, observing the same, and leads to states that subsume this
    /// one's successors in turn; and breadth-first, it was found at a depth no greater, so
    /// every violation is still found, and a shortest counterexample keeps its length. The
    /// check looks up the less-spent state's fingerprint in the set of states visited; it
    /// never merges two states. The argument holds of the model's state; that the core has no
    /// state hidden from the fingerprint that tells the two apart is tested, on the real core
    /// and every planted one, by running continuations from pairs of such states
    /// (`model::tests::subsumed_states_observe_what_their_subsumers_observe`). Off with
    /// `--por`.
    #[arg(long)]
    pub no_subsume: bool,
    /// Skip subsumed states: the default (kept so that older commands still run).
    #[arg(long, hide = true, conflicts_with = "no_subsume")]
    pub subsume: bool,
    /// Partial-order reduction (sleep sets): run independent steps of different users in one
    /// order only. The same states at the same depths, fewer transitions; not faster on the
    /// scenarios measured (it skips at most an eighth of the transitions and the bookkeeping
    /// costs more), and it holds a little over 100 bytes more per state of the widest layer.
    #[arg(long)]
    pub por: bool,
    /// Partial-order reduction that skips states (persistent sets): where no fault or stall is
    /// left to come and the disk is not stalled, run from each state only the steps of a set of
    /// users that no other user's possible steps (bounded by their budgets) can interfere
    /// with. Every step is still run with what it observes in the full search, but a violation
    /// may be found deeper; it is then searched again without the reduction, bounded to its
    /// depth, so the counterexample printed is a shortest one. Works with symmetry and
    /// subsumption; not with --por. It saves little: all steps run while a fault or a stall may
    /// still come, and a user with operations left may send to anyone, so only the end of a
    /// run reduces, whose states other paths reach anyway (--users 3 --ops 4: the same 352,737
    /// states, 0.5% fewer transitions; --users 3 --ops 5 --faults 1: the same layers).
    #[arg(long, conflicts_with = "por")]
    pub persistent: bool,
    /// Measure what tells the states of each depth apart (a census, printed at the end): per
    /// component of the state (budgets spent, held outputs, pending disk effects, ...), how
    /// many states share each value of the rest, and how many states a budget lowered by one
    /// would subsume. Slow (a fingerprint per component per state); for designing reductions.
    #[arg(long)]
    pub census: bool,
    /// Instead of searching, estimate how many distinct states the search would find, per
    /// depth, from this many sample states per depth (a few hundred: the estimate's spread
    /// across seeds shows its noise). For scenarios too large to explore: measured where counts
    /// are known it gave 0.69 to 7.8 times the exact count (1,000 samples, seeds 1 to 5; see the
    /// README), so run several seeds. It estimates the search without subsumption, and ignores
    /// --por, --max-states and --jobs.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub estimate: Option<u64>,
    /// The seed of --estimate's sampling.
    #[arg(long, default_value_t = 1)]
    pub estimate_seed: u64,
    /// Run password jobs with argon2id (cheapest cost) instead of the instant stand-in.
    #[arg(long)]
    pub argon2: bool,
    /// Where to write a counterexample, as a scenario file for `chatroom sim --replay`.
    #[arg(long, default_value = "check-counterexample.scenario")]
    pub out: PathBuf,
    /// Write a counterexample's space-time diagram to this HTML file (its scenario replayed in
    /// the simulator).
    #[arg(long)]
    pub html: Option<PathBuf>,
    #[command(flatten)]
    pub results: ResultFiles,
}

impl CheckArgs {
    /// `--stalls`, or its default: a stall without a crash only holds replies back, so it is
    /// worth its states only where a crash can follow.
    fn stalls(&self) -> u8 {
        self.stalls.unwrap_or(u8::from(self.faults > 0))
    }

    /// Whether `--stall-steps` differs from its default where it matters (with stalls).
    fn stall_steps_set(&self) -> bool {
        self.stalls() > 0 && self.stall_steps != STALL_STEPS_DEFAULT
    }

    /// `--stall-steps` for the summary line, where it matters.
    fn stall_steps_shown(&self) -> String {
        if self.stalls() > 0 {
            format!(", stall steps {}", self.stall_steps)
        } else {
            String::new()
        }
    }

    /// `--stall-steps` for a command line, when not its default.
    fn stall_steps_flag(&self) -> String {
        if self.stall_steps_set() {
            format!(" --stall-steps {}", self.stall_steps)
        } else {
            String::new()
        }
    }

    /// Runs the command.
    pub fn run(self) -> ExitCode {
        let bounds = Bounds {
            users: self.users as usize,
            ops: self.ops,
            faults: self.faults,
            tickets: self.tickets || self.race,
            intruders: self.intruders,
            stalls: self.stalls(),
            stall_steps: self.stall_steps,
            pipeline: self.pipeline,
        };
        let mut scenario = Search::new(bounds);
        scenario.symmetry = !self.no_symmetry;
        scenario.por = self.por;
        scenario.persistent = self.persistent;
        scenario.subsume = !self.no_subsume;
        scenario.throttle = self.throttle;
        scenario.race = self.race;
        if self.argon2 {
            let hasher = Hasher::new(HashCost::CHEAPEST).expect("the cheapest cost is valid");
            scenario.passwords = Arc::new(Passwords::Argon2(hasher));
        }
        self.check(scenario)
    }

    /// Explores `scenario` (built from these arguments) and reports.
    fn check(&self, scenario: Search) -> ExitCode {
        if let Some(particles) = self.estimate {
            return self.estimate(&scenario, particles as usize);
        }
        let started = Instant::now();
        let (report, memory_reached) = self.explore(&scenario);
        self.summarise(&report, memory_reached, started.elapsed(), &scenario)
    }

    /// Runs the search, showing progress; the report, and the resident memory if
    /// `--max-memory` stopped it.
    fn explore(&self, scenario: &Search) -> (Report, Option<u64>) {
        let jobs = self.jobs.map_or_else(default_jobs, usize::from);
        let limits = Limits { states_max: self.max_states, jobs };
        // The hostile worlds are named only when on, so other runs print as before.
        let hostile: String = scenario
            .throttle
            .map(|n| format!(", throttle {n}"))
            .into_iter()
            .chain(scenario.race.then(|| ", race".to_owned()))
            .chain(scenario.persistent.then(|| ", persistent on".to_owned()))
            .collect();
        println!(
            "chatroom check: users {}, ops {}, faults {}, stalls {}{}, max-states {}, \
             jobs {jobs}, symmetry {}, por {}, subsume {}{hostile}",
            self.users,
            self.ops,
            self.faults,
            self.stalls(),
            self.stall_steps_shown(),
            self.max_states,
            if scenario.symmetry { "on" } else { "off" },
            if scenario.por { "on" } else { "off" },
            if scenario.subsume && !scenario.por { "on" } else { "off" },
        );
        let started = Instant::now();
        let mut last_shown = started;
        let mut memory_reached = None;
        let census = self.census.then(|| {
            let users = scenario.bounds.users;
            let renamings = if scenario.symmetry {
                permutations(users)
            } else {
                vec![(0..users as User).collect()]
            };
            Census::new(renamings)
        });
        let observe = |depth: usize, world: &State| {
            if let Some(census) = &census {
                census.observe(depth, world);
            }
        };
        let observer: Option<Observer<'_>> = census.is_some().then_some(&observe);
        let report = explore_observed(
            scenario,
            limits,
            &mut |progress| {
                let resident = resident_bytes();
                if let (Some(max), Some(resident)) = (self.max_memory, resident) {
                    if resident >= max {
                        memory_reached = Some(resident);
                        return ControlFlow::Break(());
                    }
                }
                if last_shown.elapsed() >= Duration::from_secs(1) {
                    last_shown = Instant::now();
                    eprintln!("{}", progress_line(progress, resident, started.elapsed()));
                }
                ControlFlow::Continue(())
            },
            observer,
        );
        if let Some(census) = &census {
            print!("{}", census.table());
        }
        (report, memory_reached)
    }

    /// Prints `--estimate`'s figures: per depth and in total.
    fn estimate(&self, scenario: &Search, particles: usize) -> ExitCode {
        let started = Instant::now();
        println!(
            "chatroom check --estimate {particles}: users {}, ops {}, faults {}, stalls {}{}, \
             symmetry {}, seed {}",
            self.users,
            self.ops,
            self.faults,
            self.stalls(),
            self.stall_steps_shown(),
            if scenario.symmetry { "on" } else { "off" },
            self.estimate_seed,
        );
        let estimate = estimate(scenario, particles, self.estimate_seed);
        let layers: Vec<String> = estimate.layers.iter().map(|n| format!("{n:.0}")).collect();
        println!("per depth (estimated): {}", layers.join(" "));
        println!("depth:                 {}", estimate.layers.len() - 1);
        println!("states (estimated):    {:.3e}", estimate.total());
        println!("violations sampled:    {}", estimate.violations);
        println!("steps run:             {}", estimate.steps);
        println!("elapsed:               {:.3} s", started.elapsed().as_secs_f64());
        ExitCode::SUCCESS
    }

    fn summarise(
        &self,
        report: &Report,
        memory: Option<u64>,
        elapsed: Duration,
        scenario: &Search,
    ) -> ExitCode {
        let result = self.result_of(report, elapsed);
        if let Err(message) = self.results.write("chatroom check", &[result]) {
            eprintln!("chatroom check: {message}");
            return ExitCode::from(2);
        }
        let p = report.progress;
        let seconds = elapsed.as_secs_f64().max(1e-9);
        println!("states explored: {}", p.explored);
        println!("steps replayed:  {} (rebuilding worlds)", report.replayed);
        println!("unique states:   {}", p.unique);
        println!("subsumed:        {} (skipped: a visited state had spent less)", p.subsumed);
        println!("depth:           {}", p.depth);
        let layers: Vec<String> = report.layers.iter().map(u64::to_string).collect();
        println!("per depth:       {}", layers.join(" "));
        println!("elapsed:         {:.3} s", elapsed.as_secs_f64());
        println!(
            "states/s:        {:.0} unique, {:.0} explored",
            p.unique as f64 / seconds,
            p.explored as f64 / seconds
        );
        let Some(counterexample) = &report.counterexample else {
            if report.complete {
                println!("result: ok, every reachable state checked");
            } else if let Some(resident) = memory {
                println!(
                    "result: ok so far; stopped at --max-memory {} with {} resident \
                     (not exhaustive)",
                    show_size(self.max_memory.unwrap_or(0)),
                    show_size(resident)
                );
            } else {
                println!(
                    "result: ok so far; stopped at --max-states {} (not exhaustive)",
                    self.max_states
                );
            }
            return ExitCode::SUCCESS;
        };
        if let Some(rerun) = report.shortest_rerun {
            println!(
                "shortest:        searched again without persistent sets, to depth {}: {} \
                 states{}",
                rerun.depth,
                rerun.unique,
                if rerun.unique >= self.max_states {
                    " (stopped at --max-states: the trace may not be a shortest one)"
                } else {
                    ""
                }
            );
        }
        print!("{}", describe(counterexample));
        let command = format!(
            "chatroom check --users {} --ops {} --faults {} --stalls {}{}",
            self.users,
            self.ops,
            self.faults,
            self.stalls(),
            self.stall_steps_flag()
        );
        let scenario_text = to_sim_scenario(counterexample, &command);
        if let Some(path) = &self.html {
            match write_diagram(path, &scenario_text, &command, counterexample, scenario) {
                Ok(()) => println!("diagram written to {}", path.display()),
                Err(error) => eprintln!("chatroom check: {error}"),
            }
        }
        match std::fs::write(&self.out, scenario_text) {
            Ok(()) => println!(
                "scenario written to {}; replay it with: chatroom sim --replay {}",
                self.out.display(),
                self.out.display()
            ),
            Err(error) => eprintln!("chatroom check: cannot write {}: {error}", self.out.display()),
        }
        println!("result: VIOLATION");
        ExitCode::from(1)
    }
}

impl CheckArgs {
    /// The machine-readable result of a search. Its hash digests what the search found (the
    /// counts, whether it was complete, the counterexample), which do not depend on `--jobs`.
    fn result_of(&self, report: &Report, elapsed: Duration) -> RunResult {
        let p = report.progress;
        let flag = |on: bool| if on { "on" } else { "off" }.to_owned();
        let options = vec![
            ("users".to_owned(), self.users.to_string()),
            ("ops".to_owned(), self.ops.to_string()),
            ("faults".to_owned(), self.faults.to_string()),
            ("stalls".to_owned(), self.stalls().to_string()),
            ("max_states".to_owned(), self.max_states.to_string()),
            ("tickets".to_owned(), flag(self.tickets)),
            ("intruders".to_owned(), flag(self.intruders)),
            ("symmetry".to_owned(), flag(!self.no_symmetry)),
            ("argon2".to_owned(), flag(self.argon2)),
        ];
        // Only when set, so that the results of runs without it read as before.
        let options: Vec<(String, String)> = options
            .into_iter()
            .chain(self.throttle.map(|n| ("throttle".to_owned(), n.to_string())))
            .chain(self.race.then(|| ("race".to_owned(), "on".to_owned())))
            .chain(
                self.stall_steps_set()
                    .then(|| ("stall_steps".to_owned(), self.stall_steps.to_string())),
            )
            .chain(self.no_subsume.then(|| ("subsume".to_owned(), "off".to_owned())))
            .collect();
        let name = options
            .iter()
            .take(3)
            .map(|(k, v)| format!("{k}={v}"))
            .chain(self.tickets.then(|| "tickets".to_owned()))
            .chain(self.intruders.then(|| "intruders".to_owned()))
            .chain(self.throttle.map(|n| format!("throttle={n}")))
            .chain(self.race.then(|| "race".to_owned()))
            .collect::<Vec<_>>()
            .join(" ");
        let counterexample = report.counterexample.as_ref().map(describe).unwrap_or_default();
        let digest =
            format!("{} {} {} {} {counterexample}", p.explored, p.unique, p.depth, report.complete);
        RunResult {
            tool: "check".into(),
            name: format!("check {name}"),
            seed: None,
            options,
            failure: report.counterexample.as_ref().map(|c| Failure {
                invariant: c.violation.invariant.name().to_owned(),
                detail: c.violation.detail.clone(),
                at_ms: None,
            }),
            hash: format!("{:016x}", fnv1a(digest.as_bytes())),
            wall_ms: elapsed.as_secs_f64() * 1000.0,
            stats: vec![
                ("explored".to_owned(), p.explored),
                ("unique".to_owned(), p.unique),
                ("depth".to_owned(), p.depth as u64),
                ("complete".to_owned(), u64::from(report.complete)),
            ],
        }
    }
}

/// Replays a counterexample's scenario in the simulator and writes its space-time diagram.
fn write_diagram(
    path: &PathBuf,
    scenario_text: &str,
    command: &str,
    counterexample: &super::explorer::Counterexample,
    #[allow(unused_variables)] checked: &Search,
) -> Result<(), String> {
    use crate::sim::{diagram, run_scenario, RunOptions};
    let scenario: crate::sim::Scenario = scenario_text.parse().map_err(|e| format!("{e}"))?;
    #[allow(unused_mut)]
    let mut opts = RunOptions { keep_trace: true, ..RunOptions::default() };
    #[cfg(any(test, feature = "planted"))]
    {
        // A bug planted in the checked core is planted in the replay too.
        opts.planted = checked.config.planted;
    }
    let outcome = run_scenario(&scenario, &opts);
    let v = &counterexample.violation;
    let note = format!(
        "the counterexample of {command} ({}: {}), {} steps, replayed in the simulator",
        v.invariant,
        v.detail,
        counterexample.steps.len()
    );
    let page = diagram::html(&diagram::Diagram {
        title: command,
        lines: &outcome.trace,
        events: &outcome.kept,
        violation: outcome.violation.as_ref(),
        note: Some(&note),
    });
    std::fs::write(path, page).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// 64-bit FNV-1a: a fixed hash, the same on every machine and build.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn progress_line(p: &Progress, resident: Option<u64>, elapsed: Duration) -> String {
    let rate = p.unique as f64 / elapsed.as_secs_f64().max(1e-9);
    let memory =
        resident.map_or_else(String::new, |bytes| format!(", memory {}", show_size(bytes)));
    format!(
        "[{:>5.1} s] depth {}, {} unique, {} explored, {:.0} unique/s, frontier {}{memory}",
        elapsed.as_secs_f64(),
        p.depth,
        p.unique,
        p.explored,
        rate,
        p.frontier_len
    )
}

/// The process's resident memory in bytes: the second field of `/proc/self/statm`, in pages
/// (4 KiB on the machines this runs on; the page size is not exposed without a libc call).
fn resident_bytes() -> Option<u64> {
    const PAGE_BYTES: u64 = 4096;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * PAGE_BYTES)
}

/// Parses a size: a number of bytes (a fraction allowed with a unit), optionally followed by a
/// unit (binary: `K`, `KiB`, `M`, `MiB`, `G`, `GiB`, `T`, `TiB`; decimal: `KB`, `MB`, `GB`,
/// `TB`), case ignored.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let number_len = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(number_len);
    let number: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a size such as 2GiB or 500MB"))?;
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        other => return Err(format!("unknown unit {other:?} (use KiB, MiB, GiB, TiB, KB, MB...)")),
    };
    let bytes = (number * unit_bytes as f64).floor();
    if bytes >= u64::MAX as f64 {
        return Err(format!("{text:?} is too large"));
    }
    if bytes < 1.0 {
        return Err("the size must be at least a byte".to_owned());
    }
    Ok(bytes as u64)
}

/// A size for people, in MiB (or GiB from 10 GiB on).
fn show_size(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    let mib = bytes as f64 / MIB;
    if mib >= 10_240.0 {
        format!("{:.1} GiB", mib / 1024.0)
    } else {
        format!("{mib:.0} MiB")
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::core::planted::Planted;
    use crate::model::explorer::explore;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        args: CheckArgs,
    }

    fn parse(args: &[&str]) -> Result<CheckArgs, clap::Error> {
        let argv = std::iter::once("check").chain(args.iter().copied());
        Command::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn bounds_are_checked_as_usage_errors() {
        let bad_args: [&[&str]; 6] = [
            &["--users", "0"],
            &["--users", "6"],
            &["--max-states", "0"],
            &["--ops", "x"],
            &["--stall-steps", "0"],
            &["--stall-steps", "9"],
        ];
        for bad in bad_args {
            let error = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
        let args = parse(&["--users", "3", "--ops", "1", "--jobs", "1"]).unwrap();
        assert_eq!((args.users, args.ops, args.faults), (3, 1, 0));
        assert_eq!(args.run(), ExitCode::SUCCESS);
        for bad in [&["--max-memory", "0"][..], &["--max-memory", "2XB"], &["--max-memory", "G"]] {
            let error = parse(bad).err().unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert_eq!(error.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn sizes_take_binary_and_decimal_units() {
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert!(parse_size("99999999999TiB").is_err());
        assert!(parse_size("0.1").is_err());
        assert!(parse_size("1..5G").is_err());
    }

    #[test]
    fn the_memory_bound_stops_the_search_with_a_partial_result() {
        // Any process holds more than a KiB, so the search stops after its first batch.
        let args = parse(&["--users", "2", "--ops", "3", "--jobs", "1", "--max-memory", "1K"]);
        let args = args.unwrap();
        assert_eq!(args.max_memory, Some(1024));
        let scenario = Search::new(Bounds {
            users: 2,
            ops: 3,
            faults: 0,
            tickets: false,
            intruders: false,
            stalls: 0,
            stall_steps: STALL_STEPS_DEFAULT,
            pipeline: 1,
        });
        let (report, memory) = args.explore(&scenario);
        if resident_bytes().is_some() {
            assert!(!report.complete);
            assert!(memory.is_some_and(|bytes| bytes >= 1024), "{memory:?}");
            assert!(report.progress.unique < 456, "{:?}", report.progress);
        } else {
            assert!(report.complete);
        }
        assert_eq!(args.check(scenario), ExitCode::SUCCESS);
    }

    #[test]
    fn a_violation_exits_1_and_writes_the_scenario() {
        let out =
            std::env::temp_dir().join(format!("chatroom-check-{}.scenario", std::process::id()));
        let out_arg = out.to_str().unwrap();
        let html = out.with_extension("html");
        let argv = ["--users", "2", "--ops", "2", "--jobs", "1", "--out", out_arg, "--html"];
        let mut argv = argv.to_vec();
        argv.push(html.to_str().unwrap());
        let args = parse(&argv).unwrap();
        let mut scenario = Search::new(Bounds {
            users: 2,
            ops: 2,
            faults: 0,
            tickets: false,
            intruders: false,
            stalls: 0,
            stall_steps: STALL_STEPS_DEFAULT,
            pipeline: 1,
        });
        scenario.config.planted = Planted::TakeoverLosesMessage;
        assert_eq!(args.check(scenario), ExitCode::from(1));
        let written = std::fs::read_to_string(&out).unwrap();
        std::fs::remove_file(&out).unwrap();
        assert!(written.contains("# violated: message-lost"), "{written}");
        // The diagram replays the counterexample in the simulator, which finds the bug too.
        let page = std::fs::read_to_string(&html).unwrap();
        std::fs::remove_file(&html).unwrap();
        assert!(page.contains("the counterexample of chatroom check --users 2 --ops 2"), "{page}");
        assert!(page.contains("VIOLATION at ") && page.contains("id=\"violation\""));
    }

    #[test]
    fn results_are_written_for_machines_and_do_not_depend_on_jobs() {
        let dir = std::env::temp_dir();
        let path = |name: &str| dir.join(format!("chatroom-check-{}-{name}", std::process::id()));
        let (json_1, json_2, junit) = (path("1.jsonl"), path("2.jsonl"), path("junit.xml"));
        let mut lines = Vec::new();
        for (jobs, json) in [("1", &json_1), ("2", &json_2)] {
            let mut argv = vec!["--users", "2", "--ops", "2", "--jobs", jobs, "--no-subsume"];
            argv.extend(["--json", json.to_str().unwrap(), "--junit", junit.to_str().unwrap()]);
            assert_eq!(parse(&argv).unwrap().run(), ExitCode::SUCCESS);
            let text = std::fs::read_to_string(json).unwrap();
            std::fs::remove_file(json).unwrap();
            let results = crate::results::parse_json_lines(&text).unwrap();
            assert_eq!(results.len(), 1, "{text}");
            lines.push(results[0].clone());
        }
        let (one, two) = (&lines[0], &lines[1]);
        assert_eq!((one.tool.as_str(), one.seed, one.passed()), ("check", None, true));
        assert_eq!(one.name, "check users=2 ops=2 faults=0");
        assert_eq!(one.hash, two.hash, "the hash digests the search, not the threads");
        assert_eq!(one.stats, two.stats);
        assert!(one.stats.contains(&("unique".to_owned(), 63)), "{:?}", one.stats);
        let xml = std::fs::read_to_string(&junit).unwrap();
        std::fs::remove_file(&junit).unwrap();
        assert!(xml.contains("tests=\"1\" failures=\"0\""), "{xml}");
        assert!(xml.contains("name=\"check users=2 ops=2 faults=0\""), "{xml}");
        // By default, subsumption skips 23 of those 63 states: 34 are kept.
        let json = path("default.jsonl");
        let argv = ["--users", "2", "--ops", "2", "--jobs", "1", "--json", json.to_str().unwrap()];
        assert_eq!(parse(&argv).unwrap().run(), ExitCode::SUCCESS);
        let text = std::fs::read_to_string(&json).unwrap();
        std::fs::remove_file(&json).unwrap();
        let results = crate::results::parse_json_lines(&text).unwrap();
        assert!(results[0].stats.contains(&("unique".to_owned(), 34)), "{:?}", results[0].stats);
    }

    #[test]
    fn a_violation_is_a_failed_result_naming_its_invariant() {
        let args = parse(&["--users", "2", "--ops", "2", "--jobs", "1"]).unwrap();
        let mut scenario = Search::new(Bounds {
            users: 2,
            ops: 2,
            faults: 0,
            tickets: false,
            intruders: false,
            stalls: 0,
            stall_steps: STALL_STEPS_DEFAULT,
            pipeline: 1,
        });
        scenario.config.planted = Planted::TakeoverLosesMessage;
        let report = explore(&scenario, Limits { states_max: u64::MAX, jobs: 1 }, &mut |_| {
            std::ops::ControlFlow::Continue(())
        });
        let result = args.result_of(&report, Duration::from_millis(5));
        let failure = result.failure.expect("the planted bug is found");
        assert_eq!(failure.invariant, "message-lost");
        assert!(failure.detail.contains("neither delivered nor queued"), "{}", failure.detail);
        assert_eq!(result.wall_ms, 5.0);
    }
}
