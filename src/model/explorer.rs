//! The exhaustive explorer: breadth-first search over every interleaving of a scenario's
//! steps, running the real core, expanding each distinct state (by [`fingerprint`]) once.
//!
//! Breadth-first means the first violation found has the shortest trace there is. The frontier
//! is expanded in batches. A batch is cut into small chunks that the calling thread and `jobs - 1`
//! worker threads (started once per search) take in turn; the results are merged in chunk
//! order, so the outcome (counts, trace) does not depend on the number of jobs or on timing.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, RwLock};

use super::driver::{Bounds, Passwords, World};
use super::fingerprint::{fingerprint, permutations, Fingerprint};
use super::invariants::Violation;
use super::step::{Step, User};
use super::visited::Visited;
use crate::core::Config;

/// States expanded between two merges (and progress reports).
const BATCH_LEN: usize = 1024;
/// States a thread takes from a batch at a time: small enough to balance the threads' loads,
/// large enough that taking is cheap.
const CHUNK_LEN: usize = 32;

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
            // Scenarios open the original client's relays; the reference model follows.
            bare_relay_allowed: true,
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

/// States waiting to be expanded, with their ids.
type Chunk = Vec<(u32, Box<World>)>;

/// What every expansion reads: the scenario, the renamings, and the fingerprints seen so far
/// (written only between batches, while no expansion runs).
struct Shared<'a> {
    scenario: &'a Scenario,
    renamings: &'a [Vec<User>],
    visited: RwLock<Visited>,
}

/// Explores `scenario` breadth-first. `progress` is called after every batch.
pub fn explore(scenario: &Scenario, limits: Limits, progress: &mut dyn FnMut(&Progress)) -> Report {
    let renamings: Vec<Vec<User>> = if scenario.symmetry {
        permutations(scenario.bounds.users)
    } else {
        vec![(0..scenario.bounds.users as User).collect()]
    };
    let shared = Shared { scenario, renamings: &renamings, visited: RwLock::default() };
    let workers = limits.jobs.max(1) - 1;
    std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (batches, inbox) = mpsc::channel::<(Arc<Batch>, mpsc::Sender<Done>)>();
            let shared = &shared;
            scope.spawn(move || inbox.iter().for_each(|(batch, done)| batch.run(shared, &done)));
            senders.push(batches);
        }
        search(&shared, limits.states_max, &senders, progress)
    })
}

/// The breadth-first search proper, handing each batch to the `workers` and the calling thread.
fn search(
    shared: &Shared<'_>,
    states_max: u64,
    workers: &[mpsc::Sender<(Arc<Batch>, mpsc::Sender<Done>)>],
    progress: &mut dyn FnMut(&Progress),
) -> Report {
    let root = shared.scenario.world();
    let root_print = fingerprint(&root, shared.renamings, &mut Vec::new());
    write(&shared.visited).insert(root_print);
    // parents[i] = (parent state, step) of unique state i; state 0 is the root.
    let mut parents: Vec<(u32, Step)> = vec![(u32::MAX, Step::Crash)];
    let mut frontier: Vec<(u32, Box<World>)> = vec![(0, Box::new(root))];
    let mut stats = Progress { unique: 1, frontier_len: 1, ..Progress::default() };
    let mut depth = 0;
    // States found again in the merge, dropped by the threads expanding the next batch.
    let mut litter = Vec::new();
    while !frontier.is_empty() {
        depth += 1;
        let mut next = Vec::new();
        // Expanded states are dropped batch by batch, so at most a batch more than two
        // frontiers is held.
        let mut pending = frontier.into_iter();
        loop {
            let batch = Batch::new(pending.by_ref().take(BATCH_LEN), std::mem::take(&mut litter));
            let Some(batch) = batch else { break };
            let expanded = batch.expand(shared, workers);
            stats.explored += expanded.iter().map(|e| e.transitions).sum::<u64>();
            let mut visited = write(&shared.visited);
            for outcome in expanded.into_iter().flat_map(|e| e.outcomes) {
                match outcome {
                    Outcome::Violated { parent, step, violation } => {
                        let violation = *violation;
                        let mut steps = trace(&parents, parent);
                        steps.push(step);
                        stats.frontier_len = 0;
                        let users = shared.scenario.bounds.users;
                        let counterexample = Counterexample { users, steps, violation };
                        return Report {
                            progress: stats,
                            complete: false,
                            counterexample: Some(counterexample),
                        };
                    }
                    Outcome::New { parent, step, fingerprint, world } => {
                        if !visited.insert(fingerprint) {
                            litter.push(world);
                            continue;
                        }
                        let id = u32::try_from(parents.len()).expect("fewer than 2^32 states");
                        parents.push((parent, step));
                        stats.unique += 1;
                        stats.depth = depth;
                        next.push((id, world));
                        if stats.unique >= states_max {
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
            drop(visited);
            stats.frontier_len = next.len();
            progress(&stats);
        }
        frontier = next;
    }
    Report { progress: stats, complete: true, counterexample: None }
}

fn write(visited: &RwLock<Visited>) -> std::sync::RwLockWriteGuard<'_, Visited> {
    visited.write().expect("no expansion panics while holding the set")
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

/// States to drop. Boxed as they were found: moving a box is cheaper than moving a world.
#[allow(clippy::vec_box)]
type Litter = Vec<Box<World>>;

/// A finished chunk: its index in the batch, and its outcomes (or the panic that stopped it).
type Done = (usize, std::thread::Result<Expanded>);

/// One batch of states, cut into chunks that the threads take in turn; results are put back in
/// chunk order, so the outcome does not depend on which thread expanded what.
struct Batch {
    chunks: Vec<Mutex<Option<Chunk>>>,
    taken: AtomicUsize,
    /// States to drop once the chunks are taken (by threads that would wait otherwise).
    litter: Vec<Mutex<Litter>>,
    swept: AtomicUsize,
}

impl Batch {
    /// The next batch from `states`, unless there are none left, with `litter` to drop.
    fn new(states: impl Iterator<Item = (u32, Box<World>)>, litter: Litter) -> Option<Arc<Batch>> {
        let mut chunks = Vec::new();
        let mut states = states.peekable();
        while states.peek().is_some() {
            let chunk: Chunk = states.by_ref().take(CHUNK_LEN).collect();
            chunks.push(Mutex::new(Some(chunk)));
        }
        let mut litter = litter.into_iter().peekable();
        let mut bags = Vec::new();
        while litter.peek().is_some() {
            bags.push(Mutex::new(litter.by_ref().take(CHUNK_LEN).collect()));
        }
        let batch =
            Batch { chunks, taken: AtomicUsize::new(0), litter: bags, swept: AtomicUsize::new(0) };
        (!batch.chunks.is_empty()).then(|| Arc::new(batch))
    }

    /// Expands every chunk on the calling thread and the workers; the results in chunk order.
    fn expand(
        self: Arc<Self>,
        shared: &Shared<'_>,
        workers: &[mpsc::Sender<(Arc<Batch>, mpsc::Sender<Done>)>],
    ) -> Vec<Expanded> {
        let (done, results) = mpsc::channel();
        let helpers = workers.len().min(self.chunks.len() - 1);
        for worker in &workers[..helpers] {
            worker.send((Arc::clone(&self), done.clone())).expect("workers outlive the search");
        }
        self.run(shared, &done);
        drop(done);
        let mut expanded: Vec<Option<Expanded>> = self.chunks.iter().map(|_| None).collect();
        for (index, result) in results.iter().take(self.chunks.len()) {
            match result {
                Ok(e) => expanded[index] = Some(e),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        expanded.into_iter().map(|e| e.expect("every chunk was expanded")).collect()
    }

    /// Takes and expands chunks until none is left, then helps drop the litter.
    fn run(&self, shared: &Shared<'_>, done: &mpsc::Sender<Done>) {
        // What this thread found in this batch. A thread takes chunks in increasing order, so
        // a state it finds again was found first, in merge order, by this same thread.
        let mut found = Visited::default();
        loop {
            let index = self.taken.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = self.chunks.get(index) else { break };
            let chunk = chunk.lock().expect("chunks are taken whole").take();
            let chunk = chunk.expect("each chunk is taken once");
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let visited = shared.visited.read().expect("the set is written between batches");
                expand(chunk, shared.scenario, shared.renamings, &visited, &mut found)
            }));
            // The receiver is gone only if the search itself stopped; so do we.
            if done.send((index, result)).is_err() {
                return;
            }
        }
        loop {
            let index = self.swept.fetch_add(1, Ordering::Relaxed);
            let Some(bag) = self.litter.get(index) else { return };
            drop(std::mem::take(&mut *bag.lock().expect("bags are taken whole")));
        }
    }
}

/// Expands every state of `part`; the last successor of a state reuses the state itself
/// instead of a clone (the state is not needed after its expansion).
fn expand(
    part: Chunk,
    scenario: &Scenario,
    renamings: &[Vec<User>],
    visited: &Visited,
    found: &mut Visited,
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
            // A state this thread found already would lose to its first finding in the merge
            // anyway: drop it now, on this thread, while it is in cache.
            if !visited.contains(fingerprint) && found.insert(fingerprint) {
                outcomes.push(Outcome::New { parent, step, fingerprint, world: child });
            }
        }
    }
    Expanded { transitions, outcomes }
}
