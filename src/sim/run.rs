//! Running worlds: one seed, one scenario, or a sweep of seeds over several threads.
//!
//! Each thread runs whole seeds, so a seed's behaviour never depends on the thread count.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

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
    sweep_watched(seeds, opts, jobs, twice, on_done, None)
}

/// A sweep's watchdog: a seed that has run longer than `after` (wall time) is stuck, and
/// `on_stuck` is told its seed and how long it has run. The simulated clock cannot see a
/// server that loops inside one step (it never advances), so only wall time can; it decides
/// nothing about any world, it only stops waiting for one.
pub struct Watchdog<'a> {
    pub after: Duration,
    pub on_stuck: &'a (dyn Fn(u64, Duration) + Sync),
}

/// The seed that has run longest, if longer than `after`: `running` holds, per thread, the
/// seed it runs and when it began.
fn stuck(
    running: &[Option<(u64, Instant)>],
    now: Instant,
    after: Duration,
) -> Option<(u64, Duration)> {
    let ran = running.iter().flatten().map(|&(seed, began)| (seed, now.duration_since(began)));
    ran.filter(|&(_, ran)| ran > after).max_by_key(|&(_, ran)| ran)
}

/// [`sweep`], watched by `watchdog`, if given: every [`WATCH_PERIOD`] it looks at the
/// seeds running and tells of one that has run too long (once).
pub fn sweep_watched(
    seeds: &[u64],
    opts: &RunOptions,
    jobs: usize,
    twice: bool,
    on_done: &(dyn Fn() + Sync),
    watchdog: Option<Watchdog<'_>>,
) -> SweepReport {
    let jobs = jobs.max(1);
    let sweep = Sweep {
        seeds,
        opts,
        twice,
        on_done,
        next: AtomicUsize::new(0),
        report: Mutex::new(SweepReport::default()),
        running: Mutex::new(vec![None; jobs]),
        finished: AtomicBool::new(false),
    };
    std::thread::scope(|scope| {
        let sweep = &sweep;
        let workers: Vec<_> = (0..jobs).map(|job| scope.spawn(move || sweep.run(job))).collect();
        let watcher = watchdog.map(|watchdog| scope.spawn(move || sweep.watch(&watchdog)));
        for worker in workers {
            worker.join().expect("a sweep thread panicked");
        }
        sweep.finished.store(true, Ordering::Relaxed);
        // Woken, not left to finish its wait: a sweep of a few seeds ends when they do.
        if let Some(watcher) = watcher {
            watcher.thread().unpark();
        }
    });
    let mut report = sweep.report.into_inner().expect("a sweep thread panicked");
    report.failures.sort_by_key(|o| o.seed);
    report.per_seed.sort_by_key(|r| r.outcome.seed);
    report.nondeterministic.sort();
    report
}

/// How often a sweep's watchdog looks.
pub const WATCH_PERIOD: Duration = Duration::from_millis(500);

/// A sweep in progress, shared by its threads.
struct Sweep<'a> {
    seeds: &'a [u64],
    opts: &'a RunOptions,
    twice: bool,
    on_done: &'a (dyn Fn() + Sync),
    /// The index of the next seed to run.
    next: AtomicUsize,
    report: Mutex<SweepReport>,
    /// Per thread, the seed it runs and when it began.
    running: Mutex<Vec<Option<(u64, Instant)>>>,
    /// Every seed has run: the watchdog may stop.
    finished: AtomicBool,
}

impl Sweep<'_> {
    /// Thread `job`: takes the next seed until none is left.
    fn run(&self, job: usize) {
        while let Some(&seed) = self.seeds.get(self.next.fetch_add(1, Ordering::Relaxed)) {
            let started = Instant::now();
            self.running.lock().expect("a sweep thread panicked")[job] = Some((seed, started));
            let outcome = run_seed(seed, self.opts);
            let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
            let difference = if self.twice { determinism(seed, self.opts, &outcome) } else { None };
            self.running.lock().expect("a sweep thread panicked")[job] = None;
            let mut report = self.report.lock().expect("a sweep thread panicked");
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
            (self.on_done)();
        }
    }

    /// The watchdog's thread: until the sweep is over, looks at the seeds running every
    /// [`WATCH_PERIOD`] and tells of the first one that has run too long.
    fn watch(&self, watchdog: &Watchdog<'_>) {
        while !self.finished.load(Ordering::Relaxed) {
            std::thread::park_timeout(WATCH_PERIOD.min(watchdog.after));
            let running = self.running.lock().expect("a sweep thread panicked");
            if let Some((seed, ran)) = stuck(&running, Instant::now(), watchdog.after) {
                drop(running);
                return (watchdog.on_stuck)(seed, ran);
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_names_the_seed_that_has_run_longest_past_its_limit() {
        let now = Instant::now();
        let began =
            |ago_ms| now.checked_sub(Duration::from_millis(ago_ms)).expect("a past instant");
        let after = Duration::from_millis(1_000);
        let running =
            [Some((7, began(500))), None, Some((9, began(3_000))), Some((4, began(2_000)))];
        assert_eq!(stuck(&running, now, after), Some((9, Duration::from_millis(3_000))));
        assert_eq!(stuck(&running[..2], now, after), None, "within the limit");
        assert_eq!(stuck(&[None, None], now, after), None, "nothing running");
    }
}
