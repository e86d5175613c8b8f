//! Running worlds: one seed, one scenario, or a sweep of seeds over several threads.
//!
//! Each thread runs whole seeds, so a seed's behaviour never depends on the thread count.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use super::options::RunOptions;
use super::scenario::Scenario;
use super::trace::first_difference;
use super::world::{Outcome, World};

/// Runs the random world of `seed`.
pub fn run_seed(seed: u64, opts: &RunOptions) -> Outcome {
    World::random(seed, opts.clone()).run()
}

/// Runs a scenario (planting the bug it names, in a build that has planted bugs; a default
/// build cannot, and its callers refuse such a scenario: [`planted_unavailable`]).
pub fn run_scenario(scenario: &Scenario, opts: &RunOptions) -> Outcome {
    #[allow(unused_mut)]
    let mut opts = opts.clone();
    #[cfg(any(test, feature = "planted"))]
    if let Some(bug) =
        scenario.planted.as_deref().and_then(crate::core::planted::Planted::from_name)
    {
        opts.planted = bug;
    }
    World::scripted(scenario, opts).run()
}

/// Why `scenario` cannot be replayed by this build, if it cannot: it names a planted bug this
/// build does not have (a default build has none).
pub fn planted_unavailable(scenario: &Scenario) -> Option<String> {
    let bug = scenario.planted.as_deref()?;
    #[cfg(any(test, feature = "planted"))]
    if crate::core::planted::Planted::from_name(bug).is_some() {
        return None;
    }
    Some(format!(
        "the scenario plants the bug {bug}, which this build does not have \
         (planted bugs need `cargo build --features planted`)"
    ))
}

/// Runs the random world of `seed`, recording what its clients performed and its faults
/// (`Outcome::recorded`), which [`super::shrink::written_down`] turns into a scenario.
pub fn record_seed(seed: u64, opts: &RunOptions) -> Outcome {
    World::random(seed, opts.clone()).recording().run()
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub runs: u64,
    pub events: u64,
    pub delivered: u64,
    pub checks: u64,
    /// Failing runs, by seed.
    pub failures: Vec<Outcome>,
    /// Seeds whose two runs hashed differently, with the first differing trace line.
    pub nondeterministic: Vec<(u64, String)>,
    /// Every seed run, by seed (for machine-readable results).
    pub per_seed: Vec<SeedRun>,
    /// The reachability report, summed over the seeds.
    pub coverage: super::coverage::Coverage,
}

/// One seed of a sweep: its outcome (without a trace) and the wall time it took.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub outcome: Outcome,
    /// Wall time of the run (not of a determinism rerun), for reports only: it never
    /// influences a world.
    pub wall_ms: f64,
}

/// Runs `seeds` on `jobs` threads; `on_done` is called after each seed (for progress).
/// With `twice`, runs each seed twice and compares the trace hashes.
pub fn sweep(
    seeds: &[u64],
    opts: &RunOptions,
    jobs: usize,
    twice: bool,
    on_done: &(dyn Fn() + Sync),
) -> SweepReport {
    let next = AtomicUsize::new(0);
    let report = Mutex::new(SweepReport::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(index) else { break };
                let started = Instant::now();
                let outcome = run_seed(seed, opts);
                let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
                let difference = if twice { determinism(seed, opts, &outcome) } else { None };
                let mut report = report.lock().expect("a sweep thread panicked");
                report.runs += 1;
                report.events += outcome.events;
                report.delivered += outcome.delivered;
                report.checks += outcome.checks;
                report.coverage.merge(&outcome.coverage);
                if let Some(difference) = difference {
                    report.nondeterministic.push((seed, difference));
                }
                report.per_seed.push(SeedRun { outcome: outcome.clone(), wall_ms });
                if outcome.violation.is_some() {
                    report.failures.push(outcome);
                }
                drop(report);
                on_done();
            });
        }
    });
    let mut report = report.into_inner().expect("a sweep thread panicked");
    report.failures.sort_by_key(|o| o.seed);
    report.per_seed.sort_by_key(|r| r.outcome.seed);
    report.nondeterministic.sort();
    report
}

/// Runs `seed` again; if the hash differs, reruns both with their traces kept and describes the
/// first line where they part.
pub fn determinism(seed: u64, opts: &RunOptions, first: &Outcome) -> Option<String> {
    let second = run_seed(seed, opts);
    if second.hash == first.hash {
        return None;
    }
    let kept = RunOptions { keep_trace: true, ..opts.clone() };
    let (a, b) = (run_seed(seed, &kept), run_seed(seed, &kept));
    let at = first_difference(&a.trace, &b.trace).unwrap_or(0);
    let line = |t: &[String]| t.get(at).cloned().unwrap_or_else(|| "<end of trace>".into());
    Some(format!("event {at}: {:?} vs {:?}", line(&a.trace), line(&b.trace)))
}
