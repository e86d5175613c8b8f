//! Shrinking: a failing run reduced to a small scenario that fails the same invariant.
//!
//! A failing seed is first written down as a [`Scenario`] ([`super::run::record_seed`]: each
//! client's operations at the times they ran, the faults, the mix; it replays them at the same
//! times, event for event for nearly every seed, since scripted wake-ups and faults are queued
//! where the random world queued them; the rare rest part at a tie in some millisecond, which
//! is why the caller checks that it fails the same way), then reduced by delta debugging over
//! that scenario, never by drawing seeds again. Removals stay local because each connection
//! draws its timing from its own stream (`super::rng`): removing one client's step leaves the
//! others' latencies and writer delays, and so their races, as they were. Every candidate is replayed
//! through [`run_scenario`], the path `chatroom sim --replay` takes, and kept only if it fails
//! the same invariant (compared by name). The passes, repeated until none helps:
//!
//! 1. fewest clients: drop one client with its operations and the faults aimed at it (the
//!    later clients are renumbered);
//! 2. fewest knobs: a constant latency (so that removing a write no longer shifts the latency
//!    of every later write, which loses races the failure needs), then each knob of the fault
//!    mix back to its `--faults none` value;
//! 3. fewest steps: ddmin (Zeller and Hildebrandt) over the timed steps, operations and faults
//!    together: remove chunks, halving their size down to single steps; then, once the
//!    scenario is small, pairs of steps (a login and the logout undoing it);
//! 4. smallest bursts: a pipelined burst becomes a single send, or the fewest sends that
//!    still fail (binary search);
//! 5. smallest texts: every message text becomes `x`;
//! 6. shortest faults: a partition's or a crash's duration halved while it still fails;
//! 7. at a fixpoint of the above, clients merged into one another (their steps kept, so that
//!    the other passes can try again).
//!
//! Greedy descents end in different local minima: the shrink runs the passes three times from
//! the start (the knobs before the steps; after them; after them and without the pairs) and
//! keeps the smallest result.
//!
//! The shrinker reads no clock: its caller says when to stop (the `keep_going` callback, told
//! the progress after every candidate), so the result is a function of the scenario and of
//! how many candidates the caller allowed.

use super::options::{FaultMix, RunOptions};
use super::run::run_scenario;
use super::scenario::{Action, Op, Scenario, Step};
use super::world::Outcome;

/// A recorded run ([`super::run::record_seed`]) as a scenario: each client's operations at the
/// times they ran (a client that still had work at the end idles until then, so that the
/// workload does not end earlier than it did), the faults, the mix. The login storm's clients
/// move last, where a scenario keeps them. `None` if the run was not recorded.
pub fn written_down(outcome: &Outcome) -> Option<Scenario> {
    let recorded = outcome.recorded.as_ref()?;
    let count = recorded.clients.len();
    let storm = recorded.storm.clone().unwrap_or(0..0);
    let order: Vec<usize> = (0..count)
        .filter(|c| !storm.contains(c))
        .chain(storm.clone().filter(|&c| c < count))
        .collect();
    let renumber = |old: usize| order.iter().position(|&c| c == old).unwrap_or(old);
    let mut steps: Vec<Step> = (recorded.faults.iter())
        .map(|step| {
            let mut step = step.clone();
            if let Action::Partition { client, .. } | Action::Reset { client, .. } =
                &mut step.action
            {
                *client = renumber(*client);
            }
            step
        })
        .collect();
    for (client, &old) in order.iter().enumerate() {
        let (ops, busy) = &recorded.clients[old];
        steps.extend(ops.iter().map(|(at_ms, op)| Step {
            at_ms: *at_ms,
            action: Action::Client { client, op: op.clone() },
        }));
        if *busy {
            // Just after the end: at the end itself the client's wake-up could come before
            // the failing event, and the world, every client done, would end the workload.
            let (at_ms, op) = (recorded.end_ms + 1, Op::Idle);
            steps.push(Step { at_ms, action: Action::Client { client, op } });
        }
    }
    steps.sort_by_key(|s| s.at_ms);
    Some(Scenario { seed: outcome.seed, mix: outcome.mix, clients: count, steps, planted: None })
}

/// Where a shrink is, after each candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Candidates replayed so far.
    pub candidates: u64,
    /// The smallest failing scenario so far: its operations, faults and clients.
    pub ops: usize,
    pub faults: usize,
    pub clients: usize,
}

/// The result of a shrink.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest scenario found that fails `invariant`.
    pub scenario: Scenario,
    pub invariant: &'static str,
    /// Operations and faults of the scenario the shrink started from.
    pub ops_before: usize,
    pub faults_before: usize,
    pub candidates: u64,
    /// False if `keep_going` stopped the shrink before no pass could remove anything more.
    pub complete: bool,
}

/// Client operations in `scenario` (the size `shrunk: A -> B operations` reports).
pub fn ops(scenario: &Scenario) -> usize {
    scenario.steps.iter().filter(|s| matches!(s.action, Action::Client { .. })).count()
}

/// Fault steps (partitions, resets, crashes, heals) in `scenario`.
pub fn faults(scenario: &Scenario) -> usize {
    scenario.steps.len() - ops(scenario)
}

/// Shrinks `start`, which must fail, to a small scenario failing the same invariant.
/// `keep_going` is called after every candidate; returning false stops the shrink (it then
/// returns the smallest failing scenario found so far).
pub fn shrink(
    start: &Scenario,
    opts: &RunOptions,
    keep_going: &mut dyn FnMut(&Progress) -> bool,
) -> Result<Shrunk, String> {
    let opts = RunOptions { keep_trace: false, ..opts.clone() };
    let outcome = run_scenario(start, &opts);
    let Some(violation) = outcome.violation else {
        return Err("the scenario does not fail, so there is nothing to shrink".into());
    };
    let mut shrinker = Shrinker {
        opts,
        target: violation.invariant.sentence(),
        best: start.clone(),
        smallest: start.clone(),
        candidates: 0,
        stopped: false,
        keep_going,
    };
    for (knobs_first, pairs) in [(true, true), (false, true), (false, false)] {
        shrinker.best = start.clone();
        shrinker.descend(knobs_first, pairs);
        if size(&shrinker.best) < size(&shrinker.smallest) {
            shrinker.smallest = shrinker.best.clone();
        }
        if shrinker.stopped {
            break;
        }
    }
    Ok(Shrunk {
        invariant: shrinker.target,
        ops_before: ops(start),
        faults_before: faults(start),
        candidates: shrinker.candidates,
        complete: !shrinker.stopped,
        scenario: shrinker.smallest,
    })
}

/// What "smaller" means: fewer operations, then fewer faults, clients and steps.
fn size(scenario: &Scenario) -> (usize, usize, usize, usize) {
    (ops(scenario), faults(scenario), scenario.clients, scenario.steps.len())
}

/// The pair pass runs only on scenarios at most this long (it replays n²/2 candidates).
const PAIRS_STEPS_MAX: usize = 40;

struct Shrinker<'a> {
    opts: RunOptions,
    target: &'static str,
    /// The smallest failing scenario of the current descent.
    best: Scenario,
    /// The smallest of every descent so far.
    smallest: Scenario,
    candidates: u64,
    stopped: bool,
    keep_going: &'a mut dyn FnMut(&Progress) -> bool,
}

impl Shrinker<'_> {
    /// Runs the passes until none removes anything. Greedy descents end in different local
    /// minima depending on whether the timing knobs go before or after the steps and on the
    /// pairs' pass, so [`shrink`] runs three variants and keeps the smallest.
    fn descend(&mut self, knobs_first: bool, pairs: bool) {
        loop {
            let before = self.best.clone();
            self.clients();
            if knobs_first {
                self.knobs();
            }
            self.steps();
            if pairs {
                self.pairs();
            }
            if !knobs_first {
                self.knobs();
            }
            self.bursts();
            self.texts();
            self.durations();
            // Merging keeps every operation, so it runs only at a fixpoint of the passes that
            // remove: the size never grows past what they reached.
            if !self.stopped && self.best == before {
                self.merges();
            }
            if self.stopped || self.best == before {
                return;
            }
        }
    }

    /// Replays `candidate`; keeps it if it fails the target invariant.
    fn attempt(&mut self, candidate: Scenario) -> bool {
        if self.stopped {
            return false;
        }
        self.candidates += 1;
        let outcome = run_scenario(&candidate, &self.opts);
        let fails = outcome.violation.is_some_and(|v| v.invariant == self.target);
        if fails {
            self.best = candidate;
        }
        let smallest =
            if size(&self.best) < size(&self.smallest) { &self.best } else { &self.smallest };
        let progress = Progress {
            candidates: self.candidates,
            ops: ops(smallest),
            faults: faults(smallest),
            clients: smallest.clients,
        };
        self.stopped = !(self.keep_going)(&progress);
        fails
    }

    /// Pass 1 (clients): drop whole clients, last first (the intruder and the storm are last).
    fn clients(&mut self) {
        let mut client = self.best.clients;
        while client > 0 && !self.stopped {
            client -= 1;
            if client < self.best.clients {
                let candidate = without_client(&self.best, client);
                self.attempt(candidate);
            }
        }
    }

    /// Pass 3 (steps): ddmin over the steps: try removing each of `n` chunks; on success keep the
    /// rest and coarsen, otherwise refine until chunks are single steps.
    fn steps(&mut self) {
        let mut n = 2;
        while !self.stopped && !self.best.steps.is_empty() {
            let len = self.best.steps.len();
            let n_now = n.min(len);
            let chunk = len.div_ceil(n_now);
            let mut removed = false;
            for start in (0..len).step_by(chunk).rev() {
                let mut candidate = self.best.clone();
                candidate.steps.drain(start..(start + chunk).min(len));
                if self.attempt(candidate) {
                    removed = true;
                    break;
                }
            }
            if removed {
                n = (n_now - 1).max(2);
            } else if chunk == 1 {
                break;
            } else {
                n = (n_now * 2).min(len);
            }
        }
    }

    /// Pass 3, pairs: remove two steps at once (a login and the logout that undoes it, say), which
    /// a 1-minimal ddmin cannot; only once the scenario is small, as it costs n²/2 replays.
    fn pairs(&mut self) {
        if self.best.steps.len() > PAIRS_STEPS_MAX {
            return;
        }
        let mut first = self.best.steps.len();
        while first > 1 && !self.stopped {
            first -= 1;
            let mut second = first.min(self.best.steps.len());
            while second > 0 && !self.stopped {
                second -= 1;
                if first >= self.best.steps.len() {
                    break;
                }
                let mut candidate = self.best.clone();
                candidate.steps.remove(first);
                candidate.steps.remove(second);
                if self.attempt(candidate) {
                    first = first.min(self.best.steps.len());
                    second = second.min(first);
                }
            }
        }
    }

    /// Pass 7 (merges): fewer clients without fewer operations: client `from`'s steps become client
    /// `into`'s (which may then let ddmin remove some).
    fn merges(&mut self) {
        let mut from = self.best.clients;
        while from > 1 && !self.stopped {
            from -= 1;
            for into in 0..from.min(self.best.clients) {
                if from >= self.best.clients {
                    break;
                }
                let mut candidate = self.best.clone();
                for step in &mut candidate.steps {
                    if let Action::Client { client, .. }
                    | Action::Partition { client, .. }
                    | Action::Reset { client, .. } = &mut step.action
                    {
                        if *client == from {
                            *client = into;
                        }
                    }
                }
                if self.attempt(without_client(&candidate, from)) {
                    break;
                }
            }
        }
    }

    /// Pass 2 (knobs): a constant latency (then removing a write no longer shifts the latency every
    /// later write draws, so races survive the removal of unrelated steps), and every knob back
    /// to its value without faults.
    fn knobs(&mut self) {
        let (min, max) = (self.best.mix.latency_ms_min, self.best.mix.latency_ms_max);
        if min != max {
            for latency_ms in [min, max, 1] {
                let mut candidate = self.best.clone();
                candidate.mix.latency_ms_min = latency_ms;
                candidate.mix.latency_ms_max = latency_ms;
                if self.attempt(candidate) {
                    break;
                }
            }
        }
        let plain = FaultMix::none().knobs();
        for (key, value) in plain {
            let current = self.best.mix.knobs().into_iter().find(|(k, _)| *k == key);
            if current.is_some_and(|(_, v)| v != value) {
                let mut candidate = self.best.clone();
                candidate.mix.set(key, &value.to_string()).expect("a knob of the mix");
                self.attempt(candidate);
            }
        }
    }

    /// Pass 4 (bursts): each burst becomes one send, else the fewest sends that still fail.
    fn bursts(&mut self) {
        for index in 0..self.best.steps.len() {
            let Some((client, to, count)) = burst_at(&self.best, index) else { continue };
            let mut single = self.best.clone();
            let op = Op::Send { to: to.clone(), text: "x".into() };
            single.steps[index].action = Action::Client { client, op };
            if self.attempt(single) {
                continue;
            }
            // The smallest failing count in lo..=hi (hi is known to fail).
            let (mut lo, mut hi) = (1, count);
            while lo < hi && !self.stopped {
                let mid = lo + (hi - lo) / 2;
                let mut candidate = self.best.clone();
                let op = Op::Burst { to: to.clone(), count: mid };
                candidate.steps[index].action = Action::Client { client, op };
                if self.attempt(candidate) {
                    hi = mid;
                } else {
                    lo = mid + 1;
                }
            }
        }
    }

    /// Pass 5 (texts): message texts become `x`.
    fn texts(&mut self) {
        for index in 0..self.best.steps.len() {
            let step = &self.best.steps[index];
            let Action::Client { client, op: Op::Send { to, text } } = &step.action else {
                continue;
            };
            if text.len() > 1 {
                let op = Op::Send { to: to.clone(), text: "x".into() };
                let mut candidate = self.best.clone();
                candidate.steps[index].action = Action::Client { client: *client, op };
                self.attempt(candidate);
            }
        }
    }

    /// Pass 6 (durations): partitions and crashes as short as still fails (halving).
    fn durations(&mut self) {
        for index in 0..self.best.steps.len() {
            loop {
                let mut candidate = self.best.clone();
                match &mut candidate.steps[index].action {
                    Action::Partition { for_ms: ms, .. } | Action::Crash { down_ms: ms, .. }
                        if *ms > 0 =>
                    {
                        *ms /= 2
                    }
                    _ => break,
                }
                if !self.attempt(candidate) {
                    break;
                }
            }
        }
    }
}

fn burst_at(scenario: &Scenario, index: usize) -> Option<(usize, String, u32)> {
    match &scenario.steps[index].action {
        Action::Client { client, op: Op::Burst { to, count } } => {
            Some((*client, to.clone(), *count))
        }
        _ => None,
    }
}

/// `scenario` without client `gone`: its operations and the faults aimed at it removed, later
/// clients renumbered, and the login storm one client smaller if it was one of the storm's.
pub fn without_client(scenario: &Scenario, gone: usize) -> Scenario {
    let mut out = scenario.clone();
    let storm = (scenario.mix.storm_logins as usize).min(scenario.clients);
    if gone >= scenario.clients - storm {
        out.mix.storm_logins = storm as u64 - 1;
    }
    out.clients -= 1;
    out.steps = (scenario.steps.iter())
        .filter_map(|step| {
            let mut step: Step = step.clone();
            if let Action::Client { client, .. }
            | Action::Partition { client, .. }
            | Action::Reset { client, .. } = &mut step.action
            {
                if *client == gone {
                    return None;
                }
                if *client > gone {
                    *client -= 1;
                }
            }
            Some(step)
        })
        .collect();
    out
}

#[cfg(test)]
mod tests;
