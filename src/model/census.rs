//! A census of the state space (`chatroom check --census`): what tells apart the states found
//! at each depth, measured, so that reductions are designed from data.
//!
//! For every new state the search finds, the census computes the fingerprint of the state with
//! one component of it erased (a *projection*: the fault budget spent set to zero, the pending
//! disk effects cleared, ...) and counts, per depth, the distinct projections. A depth with `n`
//! states and `p` distinct projections under a component has on average `n / p` states per
//! class that differ only in that component: the factor that component multiplies the layer by.
//!
//! It counts the states by the disk's phase: keeping up, stalled but holding nothing back yet,
//! or at each step of a stall that holds records back (on `--users 3 --ops 3 --faults 1`, 93%
//! of the states are at a step of a stall that holds records back, and the states after one
//! are few, since a crash or a sync leaves a state that the same steps reach without the
//! stall, which subsumption skips).
//!
//! It also counts the states that a *subsumption* check would skip: a state one of whose
//! budgets (the faults, the stalls, one user's operations, the steps a stall has lasted),
//! lowered by one, gives a state seen already (at this depth or before).
//!
//! Measurement only: it costs a fingerprint per component per state, and its sets hold every
//! state seen. Counts are exact with one job (with more, a state may be observed twice, which
//! the sets absorb, but which of two states is seen first may differ).

use std::sync::Mutex;

use super::driver::State;
use super::fingerprint::{fingerprint, Fingerprint};
use super::reference::Effect;
use super::step::User;
use super::visited::Visited;

/// One component of a state, which the census erases to measure what it tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// Faults spent.
    Faults,
    /// Stalls spent.
    Stalls,
    /// Operations spent, every user's.
    Ops,
    /// Steps the current stall has lasted.
    StallLen,
    /// Effects accepted but not yet durable.
    Pending,
    /// The durable accounts and queues (what a crash keeps).
    Durable,
    /// Outputs owed to clients but held behind unsynced records.
    Owed,
    /// Pushes written but not yet confirmed.
    Unconfirmed,
    /// What each relay received (the latest message of each sender).
    Received,
    /// Relays closed whose close is still held.
    Closing,
    /// Messages discarded with deleted accounts.
    Discarded,
    /// The accounts' creation order.
    Created,
    /// The accounts' queues.
    Queues,
    /// Messages sent, per user (what numbers the next one).
    Sends,
    /// Every budget at once: faults, stalls, operations and the stall's length.
    Budgets,
}

impl Component {
    pub const ALL: [Component; 15] = [
        Component::Faults,
        Component::Stalls,
        Component::Ops,
        Component::StallLen,
        Component::Budgets,
        Component::Pending,
        Component::Durable,
        Component::Owed,
        Component::Unconfirmed,
        Component::Received,
        Component::Closing,
        Component::Discarded,
        Component::Created,
        Component::Queues,
        Component::Sends,
    ];

    fn name(self) -> &'static str {
        match self {
            Component::Faults => "faults spent",
            Component::Stalls => "stalls spent",
            Component::Ops => "ops spent",
            Component::StallLen => "stall length",
            Component::Budgets => "all budgets",
            Component::Pending => "pending effects",
            Component::Durable => "durable state",
            Component::Owed => "held outputs",
            Component::Unconfirmed => "unconfirmed pushes",
            Component::Received => "relay received",
            Component::Closing => "closing relays",
            Component::Discarded => "discarded msgs",
            Component::Created => "creation order",
            Component::Queues => "queues",
            Component::Sends => "send counters",
        }
    }
}

/// `world` with `component` erased.
fn erase(world: &mut State, component: Component) {
    let users = world.users.len();
    match component {
        Component::Faults => world.faults_used = 0,
        Component::Stalls => world.stalls_used = 0,
        Component::Ops => world.ops_used = Default::default(),
        Component::StallLen => world.stall_len = 0,
        Component::Budgets => {
            for c in [Component::Faults, Component::Stalls, Component::Ops, Component::StallLen] {
                erase(world, c);
            }
        }
        Component::Pending => world.model.pending.clear(),
        Component::Durable => {
            let durable = std::sync::Arc::make_mut(&mut world.model.durable);
            durable.accounts.iter_mut().for_each(|a| *a = (None, Vec::new()));
        }
        Component::Owed => world.owed.clear(),
        Component::Unconfirmed => {
            for relay in world.users.iter_mut().filter_map(|c| c.relay.as_mut()) {
                relay.unreported.clear();
            }
        }
        Component::Received => {
            for relay in world.users.iter_mut().filter_map(|c| c.relay.as_mut()) {
                relay.received.clear();
            }
        }
        Component::Closing => world.closing.clear(),
        Component::Discarded => world.model.users.iter_mut().for_each(|u| u.discarded.clear()),
        Component::Created => {
            for account in world.model.users.iter_mut().filter_map(|u| u.account.as_mut()) {
                account.created = 0;
            }
        }
        Component::Queues => {
            for account in world.model.users.iter_mut().filter_map(|u| u.account.as_mut()) {
                account.queue.clear();
            }
            // Pending deliveries of a cleared queue would name nothing.
            world.model.pending.retain(|e| !matches!(e, Effect::Delivered(_)));
        }
        Component::Sends => {
            for user in 0..users {
                world.model.users[user].sends = 0;
            }
        }
    }
}

/// The budgets a subsumption check lowers by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Budget {
    Faults,
    Stalls,
    Ops(User),
    StallLen,
}

impl Budget {
    fn name(self) -> String {
        match self {
            Budget::Faults => "faults".into(),
            Budget::Stalls => "stalls".into(),
            Budget::Ops(_) => "ops (some user)".into(),
            Budget::StallLen => "stall length".into(),
        }
    }

    /// Lowers the budget by one in `world`; false if it is zero already.
    fn lower(self, world: &mut State) -> bool {
        let field = match self {
            Budget::Faults => &mut world.faults_used,
            Budget::Stalls => &mut world.stalls_used,
            Budget::Ops(user) => &mut world.ops_used[user as usize],
            Budget::StallLen => &mut world.stall_len,
        };
        if *field == 0 {
            return false;
        }
        *field -= 1;
        true
    }
}

/// Per depth: states, distinct projections per component, states subsumed per budget.
#[derive(Default)]
struct Layer {
    states: u64,
    projections: Vec<Visited>,
    subsumed_any: u64,
    subsumed: [u64; 4],
}

/// What the census gathered; fed by [`Census::observe`], printed by [`Census::table`].
pub struct Census {
    renamings: Vec<Vec<User>>,
    inner: Mutex<Inner>,
}

struct Inner {
    all: Visited,
    /// States by the disk's phase ([`phase`]).
    phases: Vec<u64>,
    /// Distinct projections per component over every depth.
    projections: Vec<Visited>,
    layers: Vec<Layer>,
    buf: Vec<u8>,
}

impl Census {
    pub fn new(renamings: Vec<Vec<User>>) -> Self {
        let projections = Component::ALL.iter().map(|_| Visited::default()).collect();
        let inner = Inner {
            all: Visited::default(),
            phases: Vec::new(),
            projections,
            layers: Vec::new(),
            buf: Vec::new(),
        };
        Census { renamings, inner: Mutex::new(inner) }
    }

    /// Counts `world`, found new at `depth`.
    pub fn observe(&self, depth: usize, world: &State) {
        let mut inner = self.inner.lock().expect("no census panics");
        let Inner { all, phases, projections, layers, buf } = &mut *inner;
        let full = fingerprint(world, &self.renamings, buf);
        if !all.insert(full) {
            return;
        }
        let at = phase(world);
        if phases.len() <= at {
            phases.resize(at + 1, 0);
        }
        phases[at] += 1;
        while layers.len() <= depth {
            let projections = Component::ALL.iter().map(|_| Visited::default()).collect();
            layers.push(Layer { projections, ..Layer::default() });
        }
        let layer = &mut layers[depth];
        layer.states += 1;
        // (States are not `Sync`, so no scratch copy is kept in the shared census.)
        let mut scratch = world.clone();
        for (at, &component) in Component::ALL.iter().enumerate() {
            scratch.clone_from(world);
            erase(&mut scratch, component);
            let print: Fingerprint = fingerprint(&scratch, &self.renamings, buf);
            layer.projections[at].insert(print);
            projections[at].insert(print);
        }
        let mut budgets = vec![Budget::Faults, Budget::Stalls, Budget::StallLen];
        budgets.extend((0..world.users.len() as User).map(Budget::Ops));
        let mut any = false;
        for budget in budgets {
            scratch.clone_from(world);
            if !budget.lower(&mut scratch) {
                continue;
            }
            let print = fingerprint(&scratch, &self.renamings, buf);
            if all.contains(print) {
                any = true;
                let slot = match budget {
                    Budget::Faults => 0,
                    Budget::Stalls => 1,
                    Budget::Ops(_) => 2,
                    Budget::StallLen => 3,
                };
                layer.subsumed[slot] += 1;
            }
        }
        layer.subsumed_any += u64::from(any);
    }

    /// The census as a table: per depth, the states, then per component the states per
    /// distinct projection, then the states a subsumption check would skip.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let inner = self.inner.lock().expect("no census panics");
        let mut out = String::new();
        let states = inner.all.len() as f64;
        let _ = writeln!(out, "census, every depth: {states} states");
        write_phases(&mut out, states, &inner.phases);
        write_classes(&mut out, states, &inner.projections);
        let names = [Budget::Faults, Budget::Stalls, Budget::Ops(0), Budget::StallLen];
        for (depth, layer) in inner.layers.iter().enumerate().filter(|(_, l)| l.states > 0) {
            let _ = writeln!(out, "depth {depth}: {} states", layer.states);
            write_classes(&mut out, layer.states as f64, &layer.projections);
            let share = |n: u64| 100.0 * n as f64 / layer.states as f64;
            let _ = writeln!(
                out,
                "  subsumed (a budget lowered by one was seen): {} ({:.1}%)",
                layer.subsumed_any,
                share(layer.subsumed_any)
            );
            for (budget, &n) in names.iter().zip(&layer.subsumed) {
                let _ = writeln!(out, "    by {:<16} {:>10} ({:.1}%)", budget.name(), n, share(n));
            }
        }
        out
    }
}

/// The disk's phase in `world`: 0 keeping up, 1 stalled but holding nothing back, `1 + k` at
/// step `k` of a stall that holds records back.
fn phase(world: &State) -> usize {
    match (world.disk_stalled(), world.holding()) {
        (false, _) => 0,
        (true, false) => 1,
        (true, true) => 1 + usize::from(world.stall_len),
    }
}

/// One line per phase of the disk ([`phase`]) that some state was in: how many states, and
/// their share of `states`.
fn write_phases(out: &mut String, states: f64, phases: &[u64]) {
    use std::fmt::Write;
    let _ = writeln!(out, "  by the disk's phase:");
    for (at, &n) in phases.iter().enumerate().filter(|(_, &n)| n > 0) {
        let name = match at {
            0 => "keeping up".to_owned(),
            1 => "stalled, nothing held".to_owned(),
            k => format!("stall step {}", k - 1),
        };
        let _ = writeln!(out, "    {name:<22} {n:>10} ({:.1}%)", 100.0 * n as f64 / states);
    }
}

/// One line per component: its distinct projections among `states` states, and how many states
/// share each on average.
fn write_classes(out: &mut String, states: f64, projections: &[Visited]) {
    use std::fmt::Write;
    for (component, distinct) in Component::ALL.iter().zip(projections) {
        let distinct = distinct.len() as f64;
        let _ = writeln!(
            out,
            "  {:<20} {:>10} classes  x{:.3}",
            component.name(),
            distinct,
            states / distinct
        );
    }
}
