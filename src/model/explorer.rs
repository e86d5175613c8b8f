//! The exhaustive explorer: breadth-first search over every interleaving of a scenario's
//! steps, running the real core, expanding each distinct state (by [`fingerprint`]) once.
//!
//! Breadth-first means the first violation found has the shortest trace there is.
//!
//! Memory: the search keeps no world between batches. Every distinct state gets an id in the
//! order it is found; the search keeps its fingerprint (in [`Visited`]) and its parent link
//! (the parent's id and the step, 8 bytes), nothing else. States are found layer by layer and a
//! parent's children get consecutive ids, so a layer is a range of ids, sorted by their paths
//! from the root. To expand a state, a thread rebuilds its world by replaying the steps from the
//! root; it keeps the worlds of the path it replayed last, so consecutive states only replay
//! the steps below the ancestor they share (a layer's states mostly share all but the last
//! one or two). Replaying is deterministic, so the rebuilt world is the one first found.
//! In all, the search holds 29 to 51 bytes per state seen (the visited set is between three
//! eighths and three quarters full) and a few worlds per thread.
//!
//! With `por` on, sleep sets (see [`super::por`]) skip transitions that only run two
//! independent steps in the other order: the same states, at the same depths, with fewer
//! transitions. Each state of the layer being expanded keeps its sleep set (17 bytes), and the
//! layer being found keeps an index from fingerprint to id, to intersect the sleep sets its
//! states are offered.
//!
//! With `persistent` on, persistent sets (see [`super::por`]) run only some of a state's steps:
//! fewer states, every step still run observing what it observes in the full search, but a
//! violation perhaps deeper; [`explore`] then searches again without them, bounded to that
//! depth (`Search::depth_max`), and reports what that finds, a shortest counterexample.
//!
//! With `subsume` on, a new state is skipped when a state that differs from it only in having
//! spent less of a budget was visited: one fault, one stall, one step of the current stall or
//! one of a user's operations less ([`lowered`] gives their fingerprints; the search looks
//! them up in the visited set, it never merges two fingerprints). Why that keeps every
//! violation, each at its shortest length: budgets only ever enable steps (a step is offered
//! while its budget is not spent up; a stall's steps only count towards its forced end), and
//! nothing else reads them (the fingerprint already leaves out the rng a crash reseeds), so the
//! less-spent state can take every step the skipped one can, observing the same and meeting
//! the same checks, into states that are again the same but for having spent less. It was
//! visited before, so breadth-first at a depth no greater: every trace from the skipped state
//! has a trace as long from it, and a counterexample through the skipped state has one no
//! longer through it. A skipped state's fingerprint is kept in the visited set, without an id
//! (it is never expanded): found again it is skipped again, and a state that spent more than
//! it is covered, by transitivity, by the state that covers it. The lookups are made in the
//! merge order against the set as it stands (and, in the threads, against the set as it stood
//! before the batch), so the result does not depend on the number of jobs.
//!
//! The argument is about the model's state, which is what the fingerprint encodes; the core is
//! not fingerprinted, so it holds of the core only if the core keeps no state that the
//! fingerprint leaves out and a later step can observe (a planted core kept what a deleted
//! account left, which is why the fingerprint keeps, with `subsume`, how many accounts each
//! name has had, and what a crash leaves of that count). That is tested, not only argued:
//! `tests::subsumed_states_observe_what_their_subsumers_observe` takes pairs of states that a
//! real search would skip one for the other, on the shipped core and on every planted one, and
//! runs every continuation of two steps and seeded random continuations to the end in both:
//! each step must be possible in the subsumer, pass or fail the same invariant in both, and
//! leave them a pair again.
//!
//! Each layer is expanded in batches. A batch is cut into small chunks that the calling thread
//! and `jobs - 1` worker threads (started once per search) take in turn; the results are merged
//! in chunk order, so the outcome (counts, trace) does not depend on the number of jobs or on
//! timing.
//!
//! [`lowered`]: super::fingerprint::lowered

use std::collections::BTreeMap;
use std::ops::{ControlFlow, Range};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, RwLock};

use super::driver::{Bounds, Passwords, State};
use super::fingerprint::{canonical_renamings, fingerprint, permutations, Encodings, Fingerprint};
use super::invariants::Violation;
use super::por::{persistent, StepSet};
use super::step::{Step, User, USERS_MAX};
use super::visited::Visited;
use crate::core::Config;

/// States expanded between two merges (and progress reports).
const BATCH_LEN: u32 = 1024;
/// States a thread takes from a batch at a time: small enough to balance the threads' loads,
/// large enough that taking is cheap and that the replayed paths of consecutive states share
/// most of their steps.
const CHUNK_LEN: u32 = 32;

/// What to explore: the bounds and settings of one exhaustive search (not a script of steps,
/// which is what the simulator calls a `Scenario`).
#[derive(Clone, Debug)]
pub struct Search {
    pub bounds: Bounds,
    /// The core's configuration; [`Search::new`] lifts the login throttles out of reach.
    pub config: Config,
    pub passwords: Arc<Passwords>,
    /// Count states equal up to renaming users once.
    pub symmetry: bool,
    /// Skip transitions that only reorder independent steps (sleep sets): the same states at
    /// the same depths, fewer transitions. Off in [`Search::new`]: on the scenarios measured
    /// it skips at most an eighth of the transitions and costs more than that in bookkeeping.
    pub por: bool,
    /// Skip a state when a state that differs from it only in having spent less of a budget
    /// was visited (see the module docs). Off in [`Search::new`], so that the pinned state
    /// counts and the strength report measure the search without it; on in `chatroom check`.
    /// Not used with `por` (sleep sets assume every state they were offered for is expanded).
    pub subsume: bool,
    /// Persistent sets (see [`super::por::persistent`]): from each state, run only the steps of
    /// a set of users that no other user's possible steps can interfere with. Fewer states;
    /// every maximal path of the full search has one that reorders independent steps explored,
    /// so every step is still run with what it observes there, but perhaps deeper: a violation
    /// found is then searched again without the reduction, bounded to its depth, for a
    /// shortest one ([`explore`] does it). Off in [`Search::new`]; not with `por` (sleep sets
    /// assume every step of a state they were not offered is run).
    pub persistent: bool,
    /// Expand no state at this depth or deeper (violations up to this many steps are found).
    /// `None` in [`Search::new`].
    pub depth_max: Option<usize>,
    /// Attackers guess passwords ([`Step::Guess`]) against login-failure limits this small:
    /// `n` checks per (name, address) and `2n` per address. `None` in [`Search::new`].
    pub throttle: Option<u8>,
    /// The server accepts ticketed handshakes only (its default, `bare_relay_allowed` off),
    /// users open ticketed relays only, and hijackers open bare relays from their targets'
    /// hosts ([`Step::Hijack`]). Off in [`Search::new`].
    pub race: bool,
}

impl Search {
    /// A scenario with the default core configuration, except that failed-login throttling
    /// (which depends on time, and which no scenario could reach usefully) is out of reach, so
    /// the fingerprint may leave it out.
    pub fn new(bounds: Bounds) -> Self {
        let config = Config {
            login_failures_max: usize::MAX >> 1,
            login_failures_per_peer_max: usize::MAX >> 1,
            // Scenarios open the original client's relays; the reference model follows.
            bare_relay_allowed: true,
            // The least pipeline, so that a client pipelining a burst of two meets the bound
            // (a sequential client never does).
            pipeline_len_max: 1,
            ..Config::default()
        };
        Search {
            bounds,
            config,
            passwords: Arc::new(Passwords::Model),
            symmetry: true,
            por: false,
            subsume: false,
            persistent: false,
            depth_max: None,
            throttle: None,
            race: false,
        }
    }

    /// The initial state.
    pub fn world(&self) -> State {
        let mut config = self.config.clone();
        if let Some(n) = self.throttle {
            config.login_failures_max = usize::from(n);
            config.login_failures_per_peer_max = 2 * usize::from(n);
        }
        if self.race {
            config.bare_relay_allowed = false;
        }
        let mut world = State::new(config, self.bounds.users, Arc::clone(&self.passwords));
        world.throttle = self.throttle.is_some();
        world.race = self.race;
        world.hostile = self.bounds.intruders && self.bounds.tickets;
        world.pipeline = self.bounds.pipeline.max(1);
        world.stall_steps = self.bounds.stall_steps.max(1);
        world.subsume = self.subsume && !self.por;
        world
    }

    /// Runs `steps` from the initial state; the first violation, if any, with its step index.
    pub fn replay(&self, steps: &[Step]) -> Result<State, (usize, Violation)> {
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
    /// States found at the next depth so far, waiting to be expanded.
    pub frontier_len: usize,
    /// States skipped because a visited state had spent less of a budget and was otherwise
    /// the same (not counted in `unique`).
    pub subsumed: u64,
}

/// The result of a search.
#[derive(Clone, Debug)]
pub struct Report {
    pub progress: Progress,
    /// Steps replayed to rebuild worlds (not transitions: each was run before). Unlike the
    /// progress counters, this depends on how the threads shared the work.
    pub replayed: u64,
    /// Every reachable state was expanded (no bound was hit, no violation stopped the search).
    pub complete: bool,
    pub counterexample: Option<Counterexample>,
    /// States kept at each depth (the last one as far as it got).
    pub layers: Vec<u64>,
    /// With persistent sets, when they found a violation: the counters of the search without
    /// them, bounded to its depth, that gave the counterexample (a shortest one).
    pub shortest_rerun: Option<Progress>,
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
    New {
        parent: u32,
        step: Step,
        fingerprint: Fingerprint,
        sleep: Sleep,
        lowered: Lowered,
    },
    /// A state not seen before that a state visited before this batch subsumes.
    Subsumed {
        fingerprint: Fingerprint,
    },
    Violated {
        parent: u32,
        step: Step,
        violation: Box<Violation>,
    },
}

/// The fingerprints of the states that differ from a new state only in having spent one less
/// of a budget ([`lowered`](super::fingerprint::lowered)): if one of them is visited by the time the new state is merged,
/// the new state is subsumed.
#[derive(Clone, Copy, Debug)]
struct Lowered {
    prints: [Fingerprint; LOWERED_MAX],
    len: u8,
}

/// Budgets a state can spend: faults, stalls, the current stall's steps, each user's operations.
const LOWERED_MAX: usize = 3 + USERS_MAX;

impl Lowered {
    const NONE: Lowered = Lowered { prints: [0; LOWERED_MAX], len: 0 };

    fn of(prints: &[Fingerprint]) -> Lowered {
        let mut lowered = Lowered::NONE;
        lowered.prints[..prints.len()].copy_from_slice(prints);
        lowered.len = prints.len() as u8;
        lowered
    }

    fn any_in(&self, visited: &Visited) -> bool {
        self.prints[..self.len as usize].iter().any(|&print| visited.contains(print))
    }
}

/// The outcomes of expanding part of a batch, how many transitions that took, and how many
/// steps rebuilding the worlds took.
struct Expanded {
    transitions: u64,
    replayed: u64,
    outcomes: Vec<Outcome>,
}

/// A state's sleep set, renamed to the state's canonical form, and the index of a renaming
/// that maps its representative world (the first found) to that form.
#[derive(Clone, Copy, Debug)]
struct Sleep {
    set: StepSet,
    renaming: u8,
}

/// The sleep sets of a layer's states, by id from the layer's first: the sets and the
/// renamings apart, 17 bytes a state (a [`Sleep`] takes 32, aligned).
#[derive(Default)]
struct Sleeps {
    sets: Vec<StepSet>,
    renamings: Vec<u8>,
}

impl Sleeps {
    fn push(&mut self, sleep: Sleep) {
        self.sets.push(sleep.set);
        self.renamings.push(sleep.renaming);
    }

    fn get(&self, at: usize) -> Sleep {
        Sleep { set: self.sets[at], renaming: self.renamings[at] }
    }

    /// Narrows the sleep set of state `at` to what `set` allows too.
    fn narrow(&mut self, at: usize, set: StepSet) {
        self.sets[at] = self.sets[at].intersection(set);
    }
}

/// Everything the search remembers about the states it found: their fingerprints, and how each
/// was first reached. Written only between batches, while no expansion runs.
#[derive(Default)]
struct Found {
    visited: Visited,
    parents: Parents,
    /// With `por`: the first id of the layer being expanded, and the sleep sets of its states.
    layer_start: u32,
    layer_sleeps: Sleeps,
    /// With `por`: the states of the layer being found (in `visited` too), by fingerprint and as a
    /// set, and their sleep sets.
    next_ids: BTreeMap<Fingerprint, u32>,
    next: Visited,
    next_sleeps: Sleeps,
}

/// Called with each state a thread finds new (with its depth), for measurements of the state
/// space ([`super::census`]). With several jobs a state may be reported more than once.
pub type Observer<'a> = &'a (dyn Fn(usize, &State) + Sync);

/// What every expansion reads: the scenario, the renamings, and the states found so far.
struct Shared<'a> {
    scenario: &'a Search,
    renamings: &'a [Vec<User>],
    found: RwLock<Found>,
    observe: Option<Observer<'a>>,
}

/// Explores `scenario` breadth-first. `progress` is called after every batch; the search stops
/// (incomplete) when it breaks.
pub fn explore(
    scenario: &Search,
    limits: Limits,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Report {
    explore_observed(scenario, limits, progress, None)
}

/// [`explore`], calling `observe` with every new state a thread finds.
pub fn explore_observed(
    scenario: &Search,
    limits: Limits,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    observe: Option<Observer<'_>>,
) -> Report {
    let renamings: Vec<Vec<User>> = if scenario.symmetry {
        permutations(scenario.bounds.users)
    } else {
        vec![(0..scenario.bounds.users as User).collect()]
    };
    let shared = Shared { scenario, renamings: &renamings, found: RwLock::default(), observe };
    let workers = limits.jobs.max(1) - 1;
    let report = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (batches, inbox) = mpsc::channel::<(Arc<Batch>, mpsc::Sender<Done>)>();
            let shared = &shared;
            scope.spawn(move || {
                let mut path = Path::new(shared.scenario.world());
                inbox.iter().for_each(|(batch, done)| batch.run(shared, &mut path, &done));
            });
            senders.push(batches);
        }
        search(&shared, limits.states_max, &senders, progress)
    });
    shortest(scenario, limits, report)
}

/// A violation that persistent sets found may be deeper than a shortest one (the reduced search
/// runs each step, but perhaps after others it does not depend on): searches again without
/// them, bounded to its depth, and keeps what that finds (a shortest counterexample). The
/// counters stay those of the reduced search. Should the bounded search stop before (at
/// `states_max`), the reduced counterexample stays, and `shortest_rerun` says how far it got.
fn shortest(scenario: &Search, limits: Limits, mut report: Report) -> Report {
    let Some(found) = report.counterexample.as_ref().filter(|_| scenario.persistent) else {
        return report;
    };
    let mut full = scenario.clone();
    full.persistent = false;
    full.depth_max = Some(found.steps.len());
    let rerun = explore(&full, limits, &mut |_| ControlFlow::Continue(()));
    if let Some(shorter) = rerun.counterexample {
        report.counterexample = Some(shorter);
    }
    report.shortest_rerun = Some(rerun.progress);
    report
}

/// The breadth-first search proper, handing each batch to the `workers` and the calling thread.
fn search(
    shared: &Shared<'_>,
    states_max: u64,
    workers: &[mpsc::Sender<(Arc<Batch>, mpsc::Sender<Done>)>],
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Report {
    let root = shared.scenario.world();
    let root_print = fingerprint(&root, shared.renamings, &mut Vec::new());
    {
        let mut found = write(&shared.found);
        found.visited.insert(root_print);
        found.parents.push(u32::MAX, Step::Sync);
        found.layer_sleeps.push(Sleep { set: StepSet::EMPTY, renaming: 0 });
    }
    let por = shared.scenario.por;
    let mut path = Path::new(root);
    let mut stats = Progress { unique: 1, frontier_len: 1, ..Progress::default() };
    let mut replayed = 0;
    // The ids of the states at the depth being expanded.
    let mut layer = 0..1u32;
    let mut layers = vec![1];
    let mut depth = 0;
    while !layer.is_empty() && shared.scenario.depth_max.is_none_or(|max| depth < max) {
        let next_start = layer.end;
        for ids in (StepBy { range: layer.clone(), len: BATCH_LEN }) {
            let batch = Arc::new(Batch::new(ids, depth));
            let expanded = batch.expand(shared, &mut path, workers);
            stats.explored += expanded.iter().map(|e| e.transitions).sum::<u64>();
            replayed += expanded.iter().map(|e| e.replayed).sum::<u64>();
            let mut found = write(&shared.found);
            for outcome in expanded.into_iter().flat_map(|e| e.outcomes) {
                match outcome {
                    Outcome::Violated { parent, step, violation } => {
                        let violation = *violation;
                        let mut steps = found.parents.trace(parent);
                        steps.push(step);
                        stats.frontier_len = 0;
                        let users = shared.scenario.bounds.users;
                        let counterexample = Counterexample { users, steps, violation };
                        return Report {
                            progress: stats,
                            replayed,
                            complete: false,
                            counterexample: Some(counterexample),
                            layers: with_layer(layers, found.parents.len() - next_start),
                            shortest_rerun: None,
                        };
                    }
                    Outcome::Subsumed { fingerprint } => {
                        if found.visited.insert(fingerprint) {
                            stats.subsumed += 1;
                        }
                    }
                    Outcome::New { parent, step, fingerprint, sleep, lowered } => {
                        // Into the set before the subsumption check: a state skipped is kept
                        // in it without an id, so that found again it is skipped again, and a
                        // state it subsumes is subsumed by what subsumes it.
                        if !found.visited.insert(fingerprint) {
                            // Found again at this depth: it is offered a sleep set too.
                            if let Some(&id) = found.next_ids.get(&fingerprint) {
                                found.next_sleeps.narrow((id - next_start) as usize, sleep.set);
                            }
                            continue;
                        }
                        if lowered.any_in(&found.visited) {
                            stats.subsumed += 1;
                            continue;
                        }
                        if por {
                            let id = found.parents.len();
                            found.next_ids.insert(fingerprint, id);
                            found.next.insert(fingerprint);
                            found.next_sleeps.push(sleep);
                        }
                        found.parents.push(parent, step);
                        stats.unique += 1;
                        stats.depth = depth + 1;
                        if stats.unique >= states_max {
                            stats.frontier_len = (found.parents.len() - next_start) as usize;
                            return Report {
                                progress: stats,
                                replayed,
                                complete: false,
                                counterexample: None,
                                layers: with_layer(layers, found.parents.len() - next_start),
                                shortest_rerun: None,
                            };
                        }
                    }
                }
            }
            let next_end = found.parents.len();
            drop(found);
            stats.frontier_len = (next_end - next_start) as usize;
            if progress(&stats).is_break() {
                let layers = with_layer(layers, next_end - next_start);
                return Report {
                    progress: stats,
                    replayed,
                    complete: false,
                    counterexample: None,
                    layers,
                    shortest_rerun: None,
                };
            }
        }
        let mut found = write(&shared.found);
        layer = next_start..found.parents.len();
        if !layer.is_empty() {
            layers.push(u64::from(layer.end - layer.start));
        }
        if por {
            found.layer_start = next_start;
            found.layer_sleeps = std::mem::take(&mut found.next_sleeps);
            found.next_ids = BTreeMap::new();
            found.next = Visited::default();
        }
        drop(found);
        depth += 1;
    }
    let complete = layer.is_empty();
    Report {
        progress: stats,
        replayed,
        complete,
        counterexample: None,
        layers,
        shortest_rerun: None,
    }
}

/// `layers` and the size of the layer being found.
fn with_layer(mut layers: Vec<u64>, len: u32) -> Vec<u64> {
    layers.push(u64::from(len));
    layers
}

/// Cuts a range of ids into ranges of at most `len`.
struct StepBy {
    range: Range<u32>,
    len: u32,
}

impl Iterator for StepBy {
    type Item = Range<u32>;

    fn next(&mut self) -> Option<Range<u32>> {
        if self.range.is_empty() {
            return None;
        }
        let end = self.range.end.min(self.range.start.saturating_add(self.len));
        let taken = self.range.start..end;
        self.range.start = end;
        Some(taken)
    }
}

fn write(found: &RwLock<Found>) -> std::sync::RwLockWriteGuard<'_, Found> {
    found.write().expect("no expansion panics while holding the set")
}

fn read(found: &RwLock<Found>) -> std::sync::RwLockReadGuard<'_, Found> {
    found.read().expect("the set is written between batches")
}

/// Parent links: for state `id`, the state it was first reached from and the step. Stored in
/// blocks of fixed size, so that growing never copies (nor holds twice) what is there.
#[derive(Default)]
struct Parents {
    blocks: Vec<Vec<(u32, Step)>>,
}

// A parent link stays 8 bytes however many step kinds there are.
const _: () = assert!(std::mem::size_of::<(u32, Step)>() == 8);

/// Entries per block of [`Parents`] (8 MiB).
const PARENTS_BLOCK_LEN: usize = 1 << 20;

impl Parents {
    fn len(&self) -> u32 {
        let full = self.blocks.len().saturating_sub(1) * PARENTS_BLOCK_LEN;
        let len = full + self.blocks.last().map_or(0, Vec::len);
        u32::try_from(len).expect("fewer than 2^32 states")
    }

    fn push(&mut self, parent: u32, step: Step) {
        if self.blocks.last().is_none_or(|b| b.len() == PARENTS_BLOCK_LEN) {
            self.blocks.push(Vec::with_capacity(PARENTS_BLOCK_LEN));
        }
        let block = self.blocks.last_mut().expect("pushed above");
        block.push((parent, step));
    }

    fn get(&self, id: u32) -> (u32, Step) {
        let id = id as usize;
        self.blocks[id / PARENTS_BLOCK_LEN][id % PARENTS_BLOCK_LEN]
    }

    /// The steps from the root to state `id`.
    fn trace(&self, mut id: u32) -> Vec<Step> {
        let mut steps = Vec::new();
        while id != 0 {
            let (parent, step) = self.get(id);
            steps.push(step);
            id = parent;
        }
        steps.reverse();
        steps
    }
}

/// The worlds on the path from the root to the parent of the state a thread rebuilt last:
/// `worlds[d]` is the state at depth `d`, with its id.
struct Path {
    worlds: Vec<(u32, State)>,
    /// Scratch: ids to replay, deepest first.
    replay: Vec<u32>,
}

impl Path {
    fn new(root: State) -> Self {
        Path { worlds: vec![(0, root)], replay: Vec::new() }
    }

    /// The world of state `id`, at `depth`, rebuilt from the deepest ancestor kept.
    fn world(&mut self, id: u32, depth: usize, parents: &Parents, replayed: &mut u64) -> State {
        if depth == 0 {
            return self.worlds[0].1.clone();
        }
        let (mut at, step) = parents.get(id);
        let mut at_depth = depth - 1;
        self.replay.clear();
        while self.worlds.get(at_depth).is_none_or(|&(kept, _)| kept != at) {
            self.replay.push(at);
            at = parents.get(at).0;
            at_depth -= 1;
        }
        self.worlds.truncate(at_depth + 1);
        *replayed += self.replay.len() as u64 + 1;
        while let Some(ancestor) = self.replay.pop() {
            let world = self.child(parents.get(ancestor).1);
            self.worlds.push((ancestor, world));
        }
        self.child(step)
    }

    /// The deepest world kept, after `step`.
    fn child(&self, step: Step) -> State {
        let mut world = self.worlds.last().expect("the root is kept").1.clone();
        if let Err(violation) = world.step(step) {
            panic!("replaying {step}, which passed when first run, failed: {violation}");
        }
        world
    }
}

/// A finished chunk: its index in the batch, and its outcomes (or the panic that stopped it).
type Done = (usize, std::thread::Result<Expanded>);

/// One batch of states (a range of ids at one depth), cut into chunks that the threads take in
/// turn; results are put back in chunk order, so the outcome does not depend on which thread
/// expanded what.
struct Batch {
    chunks: Vec<Range<u32>>,
    depth: usize,
    taken: AtomicUsize,
}

impl Batch {
    fn new(ids: Range<u32>, depth: usize) -> Batch {
        let chunks = StepBy { range: ids, len: CHUNK_LEN }.collect();
        Batch { chunks, depth, taken: AtomicUsize::new(0) }
    }

    /// Expands every chunk on the calling thread and the workers; the results in chunk order.
    fn expand(
        self: Arc<Self>,
        shared: &Shared<'_>,
        path: &mut Path,
        workers: &[mpsc::Sender<(Arc<Batch>, mpsc::Sender<Done>)>],
    ) -> Vec<Expanded> {
        let (done, results) = mpsc::channel();
        let helpers = workers.len().min(self.chunks.len() - 1);
        for worker in &workers[..helpers] {
            worker.send((Arc::clone(&self), done.clone())).expect("workers outlive the search");
        }
        self.run(shared, path, &done);
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

    /// Takes and expands chunks until none is left.
    fn run(&self, shared: &Shared<'_>, path: &mut Path, done: &mpsc::Sender<Done>) {
        // What this thread found in this batch. A thread takes chunks in increasing order, so
        // a state it finds again was found first, in merge order, by this same thread.
        let mut seen = Visited::default();
        let mut scratch = Scratch::default();
        loop {
            let index = self.taken.fetch_add(1, Ordering::Relaxed);
            let Some(chunk) = self.chunks.get(index) else { break };
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let found = read(&shared.found);
                let mut expanded = Expanded { transitions: 0, replayed: 0, outcomes: Vec::new() };
                for id in chunk.clone() {
                    let world = path.world(id, self.depth, &found.parents, &mut expanded.replayed);
                    let sleep = if shared.scenario.por {
                        let Sleep { set, renaming } =
                            found.layer_sleeps.get((id - found.layer_start) as usize);
                        set.renamed_back(&shared.renamings[renaming as usize])
                    } else {
                        StepSet::EMPTY
                    };
                    let known =
                        Known { visited: &found.visited, next: &found.next, seen: &mut seen };
                    let at = (id, self.depth + 1);
                    expand(at, world, sleep, shared, known, &mut scratch, &mut expanded);
                }
                expanded
            }));
            // The receiver is gone only if the search itself stopped; so do we.
            if done.send((index, result)).is_err() {
                return;
            }
        }
    }
}

/// Buffers reused from one expansion to the next.
#[derive(Default)]
struct Scratch {
    steps: Vec<Step>,
    encoding: Vec<u8>,
    /// The encodings of the last state fingerprinted, for its lowered fingerprints.
    encodings: Encodings,
    least: Vec<usize>,
    lowered: Vec<Fingerprint>,
    /// The last successor computed by a copy: the next copy is made over it
    /// ([`Clone::clone_from`]), reusing its buffers instead of dropping them and allocating
    /// afresh.
    child: Option<State>,
}

/// The states a thread need not report: those merged before this batch (but, with `por`, not
/// those of the depth being found, whose sleep sets every finding narrows), and those it found
/// in this batch already (without `por`).
struct Known<'a> {
    visited: &'a Visited,
    next: &'a Visited,
    seen: &'a mut Visited,
}

/// Expands state `parent` (whose world is `world`; its successors are at `depth`) except for the
/// steps in `sleep`; the last
/// successor reuses the world itself instead of a clone (it is not needed after its expansion).
fn expand(
    (parent, depth): (u32, usize),
    world: State,
    sleep: StepSet,
    shared: &Shared<'_>,
    known: Known<'_>,
    scratch: &mut Scratch,
    into: &mut Expanded,
) {
    let Scratch { steps, encoding, encodings, least, lowered: lowers, child: spare } = scratch;
    let por = shared.scenario.por;
    world.enabled(&shared.scenario.bounds, steps);
    if shared.scenario.persistent {
        persistent(&world, &shared.scenario.bounds, steps);
    }
    steps.retain(|&step| !sleep.contains(step));
    let stalled = world.disk_stalled();
    let mut world = Some(world);
    // The steps run from this state so far.
    let mut run = StepSet::EMPTY;
    // The last step runs on the world itself; the others on a copy in `spare`.
    let mut last = None;
    for (index, &step) in steps.iter().enumerate() {
        let child = if index + 1 == steps.len() {
            last.insert(world.take().expect("the last step takes the state"))
        } else {
            let parent = world.as_ref().expect("not taken yet");
            match spare {
                Some(spare) => {
                    spare.clone_from(parent);
                    spare
                }
                None => spare.insert(parent.clone()),
            }
        };
        into.transitions += 1;
        // The child may skip what the parent skipped or ran before this step, if independent
        // (worked out only for sleep sets: it costs a twentieth of a transition).
        let offered =
            if por { sleep.union(run).independent_of(step, stalled) } else { StepSet::EMPTY };
        run.insert(step);
        if let Err(violation) = child.step(step) {
            let violation = Box::new(violation);
            into.outcomes.push(Outcome::Violated { parent, step, violation });
            continue;
        }
        if !por {
            let fingerprint = encodings.fingerprint(child, shared.renamings);
            // A state this thread found already would lose to its first finding in the merge
            // anyway: drop it now.
            if !known.visited.contains(fingerprint) && known.seen.insert(fingerprint) {
                let lowered = if shared.scenario.subsume {
                    encodings.lowered(child, shared.renamings, lowers);
                    if lowers.iter().any(|&print| known.visited.contains(print)) {
                        into.outcomes.push(Outcome::Subsumed { fingerprint });
                        continue;
                    }
                    Lowered::of(lowers)
                } else {
                    Lowered::NONE
                };
                if let Some(observe) = shared.observe {
                    observe(depth, child);
                }
                let sleep = Sleep { set: StepSet::EMPTY, renaming: 0 };
                into.outcomes.push(Outcome::New { parent, step, fingerprint, sleep, lowered });
            }
            continue;
        }
        let fingerprint = canonical_renamings(child, shared.renamings, encoding, least);
        if known.visited.contains(fingerprint) && !known.next.contains(fingerprint) {
            continue;
        }
        // In canonical form; every canonical renaming, so that it does not matter which one
        // renames it back.
        let mut set = offered.renamed(&shared.renamings[least[0]]);
        for &renaming in &least[1..] {
            set = set.intersection(offered.renamed(&shared.renamings[renaming]));
        }
        let sleep = Sleep { set, renaming: least[0] as u8 };
        let lowered = Lowered::NONE;
        into.outcomes.push(Outcome::New { parent, step, fingerprint, sleep, lowered });
    }
}
