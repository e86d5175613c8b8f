//! The exhaustive explorer: breadth-first search over every interleaving of a scenario's
//! steps, running the real core, expanding each distinct state (by [`fingerprint`]) once.
//!
//! Breadth-first means the first violation found has the shortest trace there is. The frontier
//! is expanded in batches; with `jobs > 1` each batch is split into contiguous parts expanded on
//! scoped threads, and the results are merged in order, so the outcome (counts, trace) does not
//! depend on the number of jobs.

use std::sync::Arc;

use super::driver::{Bounds, Passwords, World};
use super::fingerprint::{fingerprint, permutations, Fingerprint};
use super::invariants::Violation;
use super::step::{Step, User};
use super::visited::Visited;
use crate::core::Config;

/// States expanded between two merges (and progress reports).
const BATCH_LEN: usize = 1024;

/// What to explore.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub bounds: Bounds,
    /// The core's configuration; [`Scenario::new`] lifts the login throttles out of reach.
    pub config: Config,
    pub passwords: Arc<Passwords>,
    /// Count states equal up to renaming users once.
    pub symmetry: bool,
}

impl Scenario {
    /// A scenario with the default core configuration, except that failed-login throttling
    /// (which depends on time, and which no scenario could reach usefully) is out of reach, so
    /// the fingerprint may leave it out.
    pub fn new(bounds: Bounds) -> Self {
        let config = Config {
            login_failures_max: usize::MAX >> 1,
            login_failures_per_peer_max: usize::MAX >> 1,
            ..Config::default()
        };
        Scenario { bounds, config, passwords: Arc::new(Passwords::Model), symmetry: true }
    }

    /// The initial state.
    pub fn world(&self) -> World {
        World::new(self.config.clone(), self.bounds.users, Arc::clone(&self.passwords))
    }

    /// Runs `steps` from the initial state; the first violation, if any, with its step index.
    pub fn replay(&self, steps: &[Step]) -> Result<World, (usize, Violation)> {
        let mut world = self.world();
        for (at, &step) in steps.iter().enumerate() {
            if !world.possible(step) {
                let detail = format!("step {} ({step}) is not possible here", at + 1);
                let invariant = super::invariants::Invariant::StateDisagrees;
                return Err((at, Violation::new(invariant, detail)));
            }
            world.step(step).map_err(|v| (at, v))?;
        }
        Ok(world)
    }
}

/// How far and how wide to search.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Stop after this many unique states.
    pub states_max: u64,
    /// Threads expanding a batch.
    pub jobs: usize,
}

/// Counters, reported while the search runs and at its end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Transitions run (successor states computed, including ones seen before).
    pub explored: u64,
    /// Distinct states (up to symmetry).
    pub unique: u64,
    /// Steps from the initial state to the deepest state found.
    pub depth: usize,
    /// States waiting to be expanded at the current depth and the next.
    pub frontier_len: usize,
}

/// The result of a search.
#[derive(Clone, Debug)]
pub struct Report {
    pub progress: Progress,
    /// Every reachable state was expanded (no bound was hit, no violation stopped the search).
    pub complete: bool,
    pub counterexample: Option<Counterexample>,
}

/// A shortest trace from the initial state to a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counterexample {
    pub users: usize,
    pub steps: Vec<Step>,
    pub violation: Violation,
}

/// What expanding one transition gave, unless it led to a state seen before (those are only
/// counted, keeping batches small).
enum Outcome {
    New { parent: u32, step: Step, fingerprint: Fingerprint, world: Box<World> },
    Violated { parent: u32, step: Step, violation: Box<Violation> },
}

/// The outcomes of expanding part of a batch, and how many transitions that took.
struct Expanded {
    transitions: u64,
    outcomes: Vec<Outcome>,
}

/// Explores `scenario` breadth-first. `progress` is called after every batch.
pub fn explore(scenario: &Scenario, limits: Limits, progress: &mut dyn FnMut(&Progress)) -> Report {
    let renamings: Vec<Vec<User>> = if scenario.symmetry {
        permutations(scenario.bounds.users)
    } else {
        vec![(0..scenario.bounds.users as User).collect()]
    };
    let root = scenario.world();
    let mut visited = Visited::default();
    visited.insert(fingerprint(&root, &renamings, &mut Vec::new()));
    // parents[i] = (parent state, step) of unique state i; state 0 is the root.
    let mut parents: Vec<(u32, Step)> = vec![(u32::MAX, Step::Crash)];
    let mut frontier: Vec<(u32, Box<World>)> = vec![(0, Box::new(root))];
    let mut stats = Progress { unique: 1, frontier_len: 1, ..Progress::default() };
    let jobs = limits.jobs.max(1);
    while !frontier.is_empty() {
        let mut next = Vec::new();
        // Expanded states are dropped batch by batch, so at most a batch more than two
        // frontiers is held.
        let mut pending = frontier.into_iter();
        loop {
            let batch: Vec<(u32, Box<World>)> = pending.by_ref().take(BATCH_LEN).collect();
            if batch.is_empty() {
                break;
            }
            let expanded = expand_batch(batch, scenario, &renamings, &visited, jobs);
            stats.explored += expanded.iter().map(|e| e.transitions).sum::<u64>();
            for outcome in expanded.into_iter().flat_map(|e| e.outcomes) {
                match outcome {
                    Outcome::Violated { parent, step, violation } => {
                        let violation = *violation;
                        let mut steps = trace(&parents, parent);
                        steps.push(step);
                        stats.frontier_len = 0;
                        let users = scenario.bounds.users;
                        let counterexample = Counterexample { users, steps, violation };
                        return Report {
                            progress: stats,
                            complete: false,
                            counterexample: Some(counterexample),
                        };
                    }
                    Outcome::New { parent, step, fingerprint, world } => {
                        if !visited.insert(fingerprint) {
                            continue;
                        }
                        let id = u32::try_from(parents.len()).expect("fewer than 2^32 states");
                        parents.push((parent, step));
                        stats.unique += 1;
                        stats.depth = stats.depth.max(depth_of(&parents, id));
                        next.push((id, world));
                        if stats.unique >= limits.states_max {
                            stats.frontier_len = next.len();
                            return Report {
                                progress: stats,
                                complete: false,
                                counterexample: None,
                            };
                        }
                    }
                }
            }
            stats.frontier_len = next.len();
            progress(&stats);
        }
        frontier = next;
    }
    Report { progress: stats, complete: true, counterexample: None }
}

/// The number of steps from the root to state `id` (parents form a tree of small depth).
fn depth_of(parents: &[(u32, Step)], mut id: u32) -> usize {
    let mut depth = 0;
    while id != 0 {
        id = parents[id as usize].0;
        depth += 1;
    }
    depth
}

/// The steps from the root to state `id`.
fn trace(parents: &[(u32, Step)], mut id: u32) -> Vec<Step> {
    let mut steps = Vec::new();
    while id != 0 {
        let (parent, step) = parents[id as usize];
        steps.push(step);
        id = parent;
    }
    steps.reverse();
    steps
}

fn expand_batch(
    batch: Vec<(u32, Box<World>)>,
    scenario: &Scenario,
    renamings: &[Vec<User>],
    visited: &Visited,
    jobs: usize,
) -> Vec<Expanded> {
    if jobs == 1 || batch.len() < 2 * jobs {
        return vec![expand(batch, scenario, renamings, visited)];
    }
    let part_len = batch.len().div_ceil(jobs);
    let mut parts = Vec::with_capacity(jobs);
    let mut rest = batch;
    while rest.len() > part_len {
        let tail = rest.split_off(part_len);
        parts.push(std::mem::replace(&mut rest, tail));
    }
    parts.push(rest);
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || expand(part, scenario, renamings, visited)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("an expansion thread panicked")).collect()
    })
}

/// Expands every state of `part`; the last successor of a state reuses the state itself
/// instead of a clone (the state is not needed after its expansion).
fn expand(
    part: Vec<(u32, Box<World>)>,
    scenario: &Scenario,
    renamings: &[Vec<User>],
    visited: &Visited,
) -> Expanded {
    let mut outcomes = Vec::new();
    let mut transitions = 0;
    let mut steps = Vec::new();
    let mut buf = Vec::new();
    for (parent, world) in part {
        world.enabled(&scenario.bounds, &mut steps);
        let mut world = Some(world);
        for (index, &step) in steps.iter().enumerate() {
            let mut child = if index + 1 == steps.len() {
                world.take().expect("the last step takes the state")
            } else {
                Box::new(World::clone(world.as_ref().expect("not taken yet")))
            };
            transitions += 1;
            if let Err(violation) = child.step(step) {
                let violation = Box::new(violation);
                outcomes.push(Outcome::Violated { parent, step, violation });
                continue;
            }
            let fingerprint = fingerprint(&child, renamings, &mut buf);
            if !visited.contains(fingerprint) {
                outcomes.push(Outcome::New { parent, step, fingerprint, world: child });
            }
        }
    }
    Expanded { transitions, outcomes }
}
