//! Partial-order reduction: which steps commute, sets of steps, sleep sets (which skip
//! transitions) and persistent sets (which skip states).
//!
//! Two steps of different users that touch disjoint parts of the state commute: run in either
//! order from a state where both are possible, both stay possible, each observes the same, and
//! both orders end in the same state (the same fingerprint). A breadth-first search that tries
//! both orders computes the same state twice; sleep sets skip the second order.
//!
//! # What commutes
//!
//! A step's footprint is the set of users whose state it reads or writes, whether it reads or
//! writes the directory (which accounts exist, in creation order), whether it spends the fault
//! budget, and whether it touches everything (a crash):
//!
//! - `register`, `delete`: the user, and they write the directory (creation order, `list`);
//! - `list`: the user, and it reads the directory;
//! - `send to v`: the sender and `v` (its queue, its relay);
//! - `relay-as v`: the user (its address, its connection) and `v` (whose session it asks for);
//! - every other operation and `relay-confirms`: the user alone;
//! - `drop-command`, `drop-relay`: the user, and the fault budget (one drop can use up the
//!   budget another needs);
//! - `crash`, `disk-stalls`, `fsync-completes`: everything.
//!
//! Every other step also touches the log: `register`, `delete`, `send` and `relay-confirms`
//! write a record, and every step's outputs wait behind unsynced records, so it reads it (a
//! `list` run before a stalled `send` is answered at once, after it only at the sync). That
//! matters only while the disk is stalled: otherwise every record is synced within the step
//! that writes it, nothing waits, and the order of two records changes only their lsns.
//!
//! Two steps are independent in a state whose disk is not stalled when their user sets are
//! disjoint, at most one touches the directory, or both only read it, at most one spends the
//! fault budget, and neither touches everything; in a state whose disk is stalled, no two are
//! (every step lengthens the stall, whose bound disables all but the sync and a crash). See
//! [`independent_in`]: the relation depends on the state only through whether the disk is
//! stalled, which no step independent of another changes.
//! Budgets of operations are per user. What the core shares between users beyond that (the
//! next id, lsn and connection number, the random generator) is left out of the fingerprint
//! already: it names things without changing what happens. The relation is checked, not only
//! argued: `tests::independent_steps_commute` runs both orders of every independent pair in
//! every state of small scenarios and compares the results.
//!
//! # The search
//!
//! Each state `s` has a sleep set `Z(s)` of steps that need not be run from it. The root's is
//! empty. Expanding `s` runs its possible steps not in `Z(s)`, in the fixed order of
//! [`State::enabled`](super::driver::State::enabled); the child through the `i`-th run step
//! `t` is offered the sleep set `{u in Z(s) or run before t from s : u independent of t}`. A
//! state is expanded once, at the depth it is first found, with the intersection of the sleep
//! sets offered by every parent at the depth before (all of them are known before the layer is
//! expanded). Offers from deeper parents, found later, are ignored.
//!
//! **Claim:** every state is still found, at the same depth as without the reduction. Take a
//! state `x` at distance `n` and, among the paths of length `n` to it, the least in the order
//! that compares paths step by step (steps compared in the `enabled` order). Suppose, by
//! induction, that its first `k` steps were run, reaching `s_k` at depth `k`; this parent is
//! one at the depth before `s_{k+1}`, so `Z(s_k)` is within the sleep set the path's own
//! parent offered. If step `a_{k+1}` were in it, then following the offers back along the path,
//! it was run from some `s_{j-1}` before `a_j` and is independent of `a_j .. a_k`: moving it to
//! position `j` gives a path to `x` of the same length that is smaller, a contradiction. So
//! every step of the path is run, and `x` is found at depth `n`.
//!
//! A violation is what a step observes, not a state; independence includes that each step of
//! an independent pair observes the same in either order. So if a skipped step would have
//! violated, the same step run from the state where it was not skipped violates too, at a
//! depth no greater; since the reduction only ever skips steps, the first violation found has
//! the same length as without it. (The trace may differ: another violating step of the same
//! depth may come first.)
//!
//! Symmetry: a state stands for every renaming of itself. Sleep sets are kept renamed to the
//! canonical form (the renaming the fingerprint chose), so offers from parents that reached
//! renamed copies of a state can be intersected. A state symmetric in itself has several
//! canonical renamings; an offer is then renamed by each and the results intersected, so the
//! set does not depend on which one is used to rename it back.
//!
//! The argument rests on the relation above being true of the core, which is what is being
//! checked: a core whose steps of different users interfered where the protocol says they do
//! not could hide that interference from the reduced search. The pinned planted bugs are found
//! with and without the reduction, with equal counterexample lengths (`tests.rs`). The
//! reduction is opt-in (`chatroom check --por`): on the scenarios measured it skips few
//! transitions (13% of `--users 3 --ops 3 --faults 0`, under 1% of `--users 2 --ops 4
//! --faults 1`, where stalled states have none independent), because most redundant
//! transitions are not reorderings but different steps of one user with the same effect
//! (operations refused alike, which only spend budget), and the bookkeeping costs more than
//! it saves (6% and 19% longer).
//!
//! # Persistent sets
//!
//! A set `P` of the steps enabled in `s` is persistent when every step of every path from `s`
//! that takes no step of `P` is independent of each step of `P`. A search that runs from each
//! state only a (nonempty, where anything is enabled) persistent set, [`persistent`], keeps
//! fewer states, and still runs every step with what it observes in the full search:
//!
//! **Claim:** from every state `s` it expands, every maximal path `w` of the full graph has an
//! equivalent path it explores (the same steps, each pair of dependent ones in the same
//! order). Every path ends: each step spends an operation, a fault or a stall, or is a sync
//! (one per stall) or confirms a push (one per message and relay, and opening a relay spends an
//! operation), so the budgets left and the pushes to come rank the states, and the claim goes
//! by induction on the longest path from `s`.
//! If `w` has a step of `P(s)`, let `t` be the first: every step before it is outside `P` on a
//! path avoiding `P`, so independent of `t`, and `t` moves to the front (independent steps keep
//! each other possible); the rest is a maximal path from `s·t`, which is explored. If `w` has
//! none, every step of `w` is independent of a step `t` of `P(s)`, which stays possible along
//! `w` and so past its end: `w` was not maximal. Swapping two adjacent independent steps leaves
//! what each observes unchanged (the relation includes that), so each step of `w` is run in the
//! explored path observing what it observes in `w`: a violation in the full graph is a
//! violation in the reduced one, perhaps at another depth. The explorer makes the reported one
//! a shortest one by searching again without the reduction, bounded to that depth.
//!
//! Symmetry: a state is expanded through its representative world, and renaming users maps
//! paths, independence and persistent sets onto each other, so the claim holds of the
//! canonical states. Subsumption: a skipped state's every path is a path of the less-spent
//! state that was visited, observed alike, and that state's maximal paths are covered as above.
//!
//! Where the sets are smaller: [`persistent`] takes all enabled steps while a fault or a stall
//! may still come (a crash, a stall and a sync depend on every step) and while the disk is
//! stalled; and a user with operations left may send to any user, so it is independent of no
//! user with anything to do. What is left to reduce is the end of a run, where the users
//! outside the set have spent their operations and only confirm their relays' pushes; the
//! states it skips are mostly reached on other paths (see the README's figures). The tests
//! check the sets against the real core: `tests::persistent_sets_are_persistent` explores every
//! path avoiding each smaller set, and `tests::persistent_sets_keep_every_end_and_every_observation`
//! compares the reduced and the full graph.

use super::driver::{Bounds, State};
use super::step::{Op, Step, User, USERS_MAX};

/// Slots per user in a [`StepSet`]: seven operations, `relay-as`, `send`, `replay-ticket-of`
/// and `forge-ack-of` per user, `relay-confirms`, the two resets, then `guesses-password-of`
/// per user and `guess-checked`, then `bare-relay-from-host-of` per user.
const PER_USER: usize = 7 + 6 * USERS_MAX + 4;
/// The slot of [`Step::Stall`], then [`Step::Sync`], then the crashes ([`Step::Crash`], two
/// per number of records kept).
const STALL: usize = PER_USER * USERS_MAX;
const CRASH: usize = STALL + 2;
/// The most unsynced records a crash step may keep.
pub const CRASH_KEPT_MAX: u8 = 7;
const SLOTS: usize = CRASH + 2 * (CRASH_KEPT_MAX as usize + 1);
const _: () = assert!(SLOTS <= 256, "a step set is two u128s");

/// A set of steps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepSet([u128; 2]);

impl StepSet {
    /// No step.
    pub const EMPTY: StepSet = StepSet([0; 2]);

    pub fn contains(self, step: Step) -> bool {
        let at = slot(step);
        self.0[at / 128] & (1 << (at % 128)) != 0
    }

    pub fn insert(&mut self, step: Step) {
        let at = slot(step);
        self.0[at / 128] |= 1 << (at % 128);
    }

    /// The steps in either.
    pub fn union(self, other: StepSet) -> StepSet {
        StepSet([self.0[0] | other.0[0], self.0[1] | other.0[1]])
    }

    /// The steps in both.
    pub fn intersection(self, other: StepSet) -> StepSet {
        StepSet([self.0[0] & other.0[0], self.0[1] & other.0[1]])
    }

    /// The steps of this set that are independent of `step` in a state whose disk is
    /// `stalled` or not (see [`independent_in`]).
    pub fn independent_of(self, step: Step, stalled: bool) -> StepSet {
        let mut kept = StepSet::EMPTY;
        for member in self.steps() {
            if independent_in(member, step, stalled) {
                kept.insert(member);
            }
        }
        kept
    }

    /// The set with users renamed by `rename` (old -> new).
    pub fn renamed(self, rename: &[User]) -> StepSet {
        let mut renamed = StepSet::EMPTY;
        for member in self.steps() {
            renamed.insert(rename_step(member, rename));
        }
        renamed
    }

    /// The set with the renaming `rename` (old -> new) undone.
    pub fn renamed_back(self, rename: &[User]) -> StepSet {
        let mut back = [0 as User; USERS_MAX];
        for (old, &new) in rename.iter().enumerate() {
            back[new as usize] = old as User;
        }
        self.renamed(&back[..rename.len()])
    }

    fn steps(self) -> impl Iterator<Item = Step> {
        let mut words = self.0;
        let mut word = 0;
        std::iter::from_fn(move || {
            while word < 2 && words[word] == 0 {
                word += 1;
            }
            let bits = words.get_mut(word)?;
            let at = bits.trailing_zeros() as usize;
            *bits &= bits.wrapping_sub(1);
            Some(step_at(word * 128 + at))
        })
    }
}

/// Whether `a` and `b` commute (see the module documentation).
/// In a state whose disk is not stalled: see [`independent_in`].
pub fn independent(a: Step, b: Step) -> bool {
    let (a, b) = (footprint(a), footprint(b));
    let directory_conflict = a.directory.max(b.directory) == Directory::Write
        && a.directory != Directory::None
        && b.directory != Directory::None;
    let conflict = a.everything
        || b.everything
        || a.users & b.users != 0
        || directory_conflict
        || (a.fault && b.fault);
    !conflict
}

/// Whether `a` and `b` commute in a state whose disk is `stalled` or not.
///
/// While the disk is stalled, no two steps are independent: a step that writes a record makes
/// the stall hold something back, every step from then on lengthens it, and once it reaches [`Bounds::stall_steps`](super::driver::Bounds::stall_steps) only the sync or a
/// crash may come, so any step can disable any other (and each step's outputs wait behind the
/// records the others write). Otherwise every record a step writes is synced within the step
/// and holds nothing back, so writing the log is no conflict: the records of two independent
/// steps land in the other order, with other lsns, which name things without changing what
/// happens (the fingerprint leaves them out). A stall touches everything, so no step
/// independent of another changes whether the disk is stalled.
pub fn independent_in(a: Step, b: Step, stalled: bool) -> bool {
    !stalled && independent(a, b)
}

/// Persistent sets: narrows `steps`, the steps enabled in `world`, to a persistent set, the
/// enabled steps of a set of users `U` such that no step of a user outside `U`, on any path
/// from `world` that takes no step of `U`, depends on one of them (see the module
/// documentation). Leaves `steps` as it is where no such set is smaller, or where the
/// reduction does not apply: while a fault or a stall may still come, or the disk is stalled
/// (a crash, a stall and a sync depend on everything, and while stalled nothing is
/// independent), and with guesses or hijacks (which touch everything).
///
/// The future steps of a user `v` outside `U` are over-approximated from its budgets: with
/// operations left, anything (it may send to or relay as any user, and register or delete);
/// without, only its relay's confirms, and only if a push waits to be confirmed now or a user
/// outside `U` with operations left could send it one. `U` is closed under "a user outside
/// may take a step that touches a user of `U` (which could change what `U` may do) or
/// conflicts with an enabled step of `U`" (and, with tickets and intruders, a user of `U` with
/// operations left reads every user: replaying a ticket or forging an acknowledgement is
/// possible or not by the target's state). Among the closures of each single user with an
/// enabled step, the smallest (ties: the first user) gives the set, so it depends only on the
/// world, not on the order of the search or the number of jobs.
pub fn persistent(world: &State, bounds: &Bounds, steps: &mut Vec<Step>) {
    let reducible = !world.disk_stalled()
        && world.faults_used >= bounds.faults
        && world.stalls_used >= bounds.stalls
        && !world.throttle
        && !world.race;
    if !reducible {
        return;
    }
    let users = bounds.users;
    let all: u8 = if users >= 8 { u8::MAX } else { (1u8 << users) - 1 };
    let bit = |user: usize| 1u8 << user;
    // Per user: the users and the directory its enabled steps touch.
    let mut now = [(0u8, Directory::None); USERS_MAX];
    let mut has = 0u8;
    for &step in steps.iter() {
        let Some(user) = step.user() else { return };
        let print = footprint(step);
        if print.everything || print.fault {
            return;
        }
        let user = user as usize;
        now[user].0 |= print.users;
        now[user].1 = now[user].1.max(print.directory);
        has |= bit(user);
    }
    let ops_left = |user: usize| world.ops_used[user] < bounds.ops;
    let reads_all = bounds.intruders && bounds.tickets;
    // What user `v` may do on a path on which the users of `set` take no step.
    let future = |v: usize, set: u8| -> (u8, Directory) {
        if ops_left(v) {
            return (all, Directory::Write);
        }
        let pushed = (0..users).any(|w| w != v && set & bit(w) == 0 && ops_left(w));
        if pushed || world.possible(Step::Confirm { user: v as User }) {
            (bit(v), Directory::None)
        } else {
            (0, Directory::None)
        }
    };
    let mut best: Option<u8> = None;
    for first in (0..users).filter(|&u| has & bit(u) != 0) {
        let mut set = bit(first);
        loop {
            let (mut touched, mut directory) = (set, Directory::None);
            for u in (0..users).filter(|&u| set & bit(u) != 0) {
                touched |= now[u].0;
                if reads_all && ops_left(u) {
                    touched = all;
                }
                directory = directory.max(now[u].1);
            }
            let mut grown = set;
            for v in (0..users).filter(|&v| set & bit(v) == 0) {
                let (their_users, their_directory) = future(v, set);
                let directory_conflict = their_directory != Directory::None
                    && directory != Directory::None
                    && their_directory.max(directory) == Directory::Write;
                if their_users & touched != 0 || directory_conflict {
                    grown |= bit(v);
                }
            }
            if grown == set {
                break;
            }
            set = grown;
        }
        if best.is_none_or(|b| set.count_ones() < b.count_ones()) {
            best = Some(set);
        }
    }
    if let Some(set) = best {
        steps.retain(|step| step.user().is_some_and(|u| set & bit(u as usize) != 0));
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Directory {
    None,
    Read,
    Write,
}

struct Footprint {
    /// Bit `u` for user `u`.
    users: u8,
    directory: Directory,
    fault: bool,
    everything: bool,
}

fn footprint(step: Step) -> Footprint {
    let bit = |user: User| 1u8 << user;
    let mut print =
        Footprint { users: 0, directory: Directory::None, fault: false, everything: false };
    match step {
        Step::Op { user, op } => {
            print.users = bit(user);
            match op {
                Op::Register | Op::Delete => print.directory = Directory::Write,
                Op::List => print.directory = Directory::Read,
                Op::Send { to: other }
                | Op::RelayAs { target: other }
                | Op::ReplayTicket { target: other }
                | Op::ForgeAck { target: other } => print.users |= bit(other),
                Op::Login | Op::Logout | Op::Relay | Op::TicketRelay => {}
            }
        }
        Step::Confirm { user } => print.users = bit(user),
        Step::DropCommand { user } | Step::DropRelay { user } => {
            print.users = bit(user);
            print.fault = true;
        }
        // A guess touches the throttle, which every user's logins and deletions read (and,
        // by address and by name, other users' guesses), and a hijack the target's session:
        // dependent on everything.
        Step::Stall
        | Step::Sync
        | Step::Crash { .. }
        | Step::Guess { .. }
        | Step::GuessChecked { .. }
        | Step::Hijack { .. } => print.everything = true,
    }
    print
}

fn rename_step(step: Step, rename: &[User]) -> Step {
    let r = |user: User| rename[user as usize];
    match step {
        Step::Op { user, op } => {
            let op = match op {
                Op::Send { to } => Op::Send { to: r(to) },
                Op::RelayAs { target } => Op::RelayAs { target: r(target) },
                Op::ReplayTicket { target } => Op::ReplayTicket { target: r(target) },
                Op::ForgeAck { target } => Op::ForgeAck { target: r(target) },
                other => other,
            };
            Step::Op { user: r(user), op }
        }
        Step::Confirm { user } => Step::Confirm { user: r(user) },
        Step::DropCommand { user } => Step::DropCommand { user: r(user) },
        Step::DropRelay { user } => Step::DropRelay { user: r(user) },
        Step::Guess { user, target } => Step::Guess { user: r(user), target: r(target) },
        Step::GuessChecked { user } => Step::GuessChecked { user: r(user) },
        Step::Hijack { user, target } => Step::Hijack { user: r(user), target: r(target) },
        Step::Stall | Step::Sync | Step::Crash { .. } => step,
    }
}

/// The operations with a slot of their own, in slot order.
const PLAIN_OPS: [Op; 7] =
    [Op::Register, Op::Login, Op::Logout, Op::List, Op::Delete, Op::Relay, Op::TicketRelay];

fn slot(step: Step) -> usize {
    let at = |user: User, offset: usize| user as usize * PER_USER + offset;
    match step {
        Step::Op { user, op: Op::RelayAs { target } } => at(user, 7 + target as usize),
        Step::Op { user, op: Op::Send { to } } => at(user, 7 + USERS_MAX + to as usize),
        Step::Op { user, op: Op::ReplayTicket { target } } => {
            at(user, 7 + 2 * USERS_MAX + target as usize)
        }
        Step::Op { user, op: Op::ForgeAck { target } } => {
            at(user, 7 + 3 * USERS_MAX + target as usize)
        }
        Step::Op { user, op } => {
            at(user, PLAIN_OPS.iter().position(|&o| o == op).expect("a plain operation"))
        }
        Step::Confirm { user } => at(user, 7 + 4 * USERS_MAX),
        Step::DropCommand { user } => at(user, 8 + 4 * USERS_MAX),
        Step::DropRelay { user } => at(user, 9 + 4 * USERS_MAX),
        Step::Guess { user, target } => at(user, 10 + 4 * USERS_MAX + target as usize),
        Step::GuessChecked { user } => at(user, 10 + 5 * USERS_MAX),
        Step::Hijack { user, target } => at(user, 11 + 5 * USERS_MAX + target as usize),
        Step::Stall => STALL,
        Step::Sync => STALL + 1,
        Step::Crash { kept, torn } => CRASH + 2 * kept as usize + usize::from(torn),
    }
}

fn step_at(slot: usize) -> Step {
    match slot {
        STALL => return Step::Stall,
        s if s == STALL + 1 => return Step::Sync,
        s if s >= CRASH => {
            let kept = ((s - CRASH) / 2) as u8;
            return Step::Crash { kept, torn: (s - CRASH) % 2 == 1 };
        }
        _ => {}
    }
    let (user, offset) = ((slot / PER_USER) as User, slot % PER_USER);
    match offset {
        0..7 => Step::Op { user, op: PLAIN_OPS[offset] },
        7..12 => Step::Op { user, op: Op::RelayAs { target: (offset - 7) as User } },
        12..17 => Step::Op { user, op: Op::Send { to: (offset - 12) as User } },
        17..22 => Step::Op { user, op: Op::ReplayTicket { target: (offset - 17) as User } },
        22..27 => Step::Op { user, op: Op::ForgeAck { target: (offset - 22) as User } },
        27 => Step::Confirm { user },
        28 => Step::DropCommand { user },
        29 => Step::DropRelay { user },
        30..35 => Step::Guess { user, target: (offset - 30) as User },
        35 => Step::GuessChecked { user },
        _ => Step::Hijack { user, target: (offset - 36) as User },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_step() -> Vec<Step> {
        (0..SLOTS).map(step_at).collect()
    }

    #[test]
    fn slots_name_every_step_once() {
        for (at, step) in every_step().into_iter().enumerate() {
            assert_eq!(slot(step), at, "{step:?}");
        }
    }

    #[test]
    fn sets_rename_and_rename_back() {
        let mut set = StepSet::EMPTY;
        set.insert(Step::Op { user: 0, op: Op::Send { to: 2 } });
        set.insert(Step::Confirm { user: 1 });
        set.insert(Step::Crash { kept: 7, torn: true });
        let rename = [2, 0, 1];
        let renamed = set.renamed(&rename);
        assert!(renamed.contains(Step::Op { user: 2, op: Op::Send { to: 1 } }));
        assert!(renamed.contains(Step::Confirm { user: 0 }));
        assert!(renamed.contains(Step::Crash { kept: 7, torn: true }));
        assert!(!renamed.contains(Step::Confirm { user: 1 }));
        assert_eq!(renamed.renamed_back(&rename), set);
        assert_eq!(renamed.steps().count(), 3);
        assert_eq!(StepSet::EMPTY.steps().count(), 0);
    }

    #[test]
    fn independence_is_symmetric_and_irreflexive() {
        let steps = every_step();
        for &a in &steps {
            assert!(!independent(a, a), "{a:?}");
            for &b in &steps {
                assert_eq!(independent(a, b), independent(b, a), "{a:?} {b:?}");
            }
        }
        let op = |user, op| Step::Op { user, op };
        assert!(independent(op(0, Op::Login), op(1, Op::Logout)));
        // A send writes the log, behind which every other step's outputs wait.
        assert!(independent(op(0, Op::Login), op(1, Op::Send { to: 2 })));
        assert!(!independent(op(0, Op::Login), op(1, Op::Send { to: 0 })));
        assert!(!independent(op(0, Op::Register), op(1, Op::List)));
        assert!(independent(op(0, Op::List), op(1, Op::List)));
        assert!(!independent(Step::DropCommand { user: 0 }, Step::DropRelay { user: 1 }));
        assert!(!independent(Step::Crash { kept: 0, torn: false }, Step::Confirm { user: 0 }));
        assert!(!independent(Step::Sync, op(0, Op::List)));
        // Records are no conflict while the disk keeps up; nothing is independent while stalled.
        assert!(independent_in(op(0, Op::Send { to: 1 }), op(2, Op::Register), false));
        assert!(!independent_in(op(0, Op::Send { to: 1 }), op(2, Op::Register), true));
        assert!(!independent_in(op(0, Op::Login), op(1, Op::Logout), true));
        assert!(!independent(op(0, Op::Send { to: 1 }), op(1, Op::Register)));
        assert!(!independent(op(0, Op::Register), op(1, Op::Register)));
    }
}
