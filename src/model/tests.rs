//! Tests of the explorer: pinned state counts, and the planted bugs it must find.

use std::ops::ControlFlow;

use super::driver::{Bounds, STALL_STEPS_DEFAULT};
use super::explorer::{explore, Limits, Report, Search};
use super::invariants::Invariant;
use super::step::{Op, Step};
use crate::core::planted::Planted;

fn scenario(users: usize, ops: u8, faults: u8) -> Search {
    Search::new(Bounds {
        users,
        ops,
        faults,
        tickets: false,
        intruders: false,
        stalls: 0,
        stall_steps: STALL_STEPS_DEFAULT,
        pipeline: 1,
    })
}

fn run(scenario: &Search, jobs: usize) -> Report {
    explore(scenario, Limits { states_max: u64::MAX, jobs }, &mut |_| ControlFlow::Continue(()))
}

fn planted(bug: Planted, users: usize, ops: u8) -> Report {
    let mut scenario = scenario(users, ops, 0);
    scenario.config.planted = bug;
    run(&scenario, 1)
}

/// Unique state counts of small scenarios, pinned so that any change to the state space is
/// noticed. They change when the step alphabet, the fingerprint (what counts as the same state),
/// the symmetry reduction, or the core's behaviour on these steps changes; if a change is
/// intended, update the numbers and say why in the commit.
#[test]
fn state_counts_are_pinned() {
    for (users, ops, faults, unique, depth) in [
        (1, 1, 0, 4, 1),
        (1, 2, 0, 9, 2),
        (2, 1, 0, 10, 2),
        (2, 2, 0, 63, 5),
        (2, 2, 1, 180, 6),
        (3, 1, 0, 20, 3),
        (2, 3, 0, 281, 8),
    ] {
        let report = run(&scenario(users, ops, faults), 1);
        assert!(report.complete, "{users}/{ops}/{faults}: {:?}", report.counterexample);
        assert_eq!(
            (report.progress.unique, report.progress.depth),
            (unique, depth),
            "users {users}, ops {ops}, faults {faults}"
        );
    }
}

#[test]
fn symmetry_reduction_only_merges_states() {
    let mut plain = scenario(2, 2, 1);
    plain.symmetry = false;
    let without = run(&plain, 1).progress;
    let with = run(&scenario(2, 2, 1), 1).progress;
    assert!(with.unique < without.unique, "{with:?} vs {without:?}");
    assert_eq!(with.depth, without.depth);
}

#[test]
fn results_do_not_depend_on_the_number_of_jobs() {
    let one = run(&scenario(2, 3, 0), 1);
    let two = run(&scenario(2, 3, 0), 2);
    assert_eq!(one.progress, two.progress);
}

#[test]
fn counterexamples_and_bounds_do_not_depend_on_the_number_of_jobs() {
    // Three threads on a small search: chunks finish in any order, the merge must not care.
    let mut buggy = scenario(2, 3, 0);
    buggy.config.planted = Planted::DeleteKeepsQueue;
    let (one, three) = (run(&buggy, 1), run(&buggy, 3));
    assert!(one.counterexample.is_some());
    assert_eq!(one.counterexample, three.counterexample);
    assert_eq!(one.progress, three.progress);
    let bounded = |jobs| {
        explore(&scenario(2, 3, 1), Limits { states_max: 500, jobs }, &mut |_| {
            ControlFlow::Continue(())
        })
    };
    assert_eq!(bounded(1).progress, bounded(3).progress);
}

#[test]
fn the_state_bound_stops_the_search() {
    let scenario = scenario(2, 3, 0);
    let report =
        explore(&scenario, Limits { states_max: 100, jobs: 1 }, &mut |_| ControlFlow::Continue(()));
    assert!(!report.complete);
    assert_eq!(report.progress.unique, 100);
}

#[test]
fn finds_a_delete_that_leaves_the_queue_to_a_new_account_with_the_name() {
    let report = planted(Planted::DeleteKeepsQueue, 2, 3);
    let found = report.counterexample.expect("the planted bug is found");
    assert_eq!(found.violation.invariant, Invariant::ReusedName, "{found:?}");
    // Register the recipient and the sender, send, delete the recipient, register it again.
    assert_eq!(found.steps.len(), 5, "{found:?}");
    assert_eq!(
        found.steps.last(),
        Some(&Step::Op { user: found_user(&found.steps), op: Op::Register })
    );
}

#[test]
fn finds_a_takeover_that_loses_a_message() {
    let report = planted(Planted::TakeoverLosesMessage, 2, 2);
    let found = report.counterexample.expect("the planted bug is found");
    assert_eq!(found.violation.invariant, Invariant::MessageLost, "{found:?}");
    // Two registrations, a send, then the recipient logs in again from a new connection.
    assert_eq!(found.steps.len(), 4, "{found:?}");
    assert!(matches!(found.steps[3], Step::Op { op: Op::Login, .. }), "{found:?}");
}

#[test]
fn finds_a_list_that_shows_deleted_users() {
    let report = planted(Planted::ListShowsDeleted, 2, 2);
    let found = report.counterexample.expect("the planted bug is found");
    assert_eq!(found.violation.invariant, Invariant::ReplyDisagrees, "{found:?}");
    // Register two users, delete one, list from the other.
    assert_eq!(found.steps.len(), 4, "{found:?}");
    assert!(matches!(found.steps[3], Step::Op { op: Op::List, .. }), "{found:?}");
}

/// The user of the last step.
fn found_user(steps: &[Step]) -> u8 {
    match steps.last() {
        Some(Step::Op { user, .. }) => *user,
        other => panic!("the trace ends with {other:?}"),
    }
}

#[test]
fn a_counterexample_replays_to_the_same_violation() {
    let mut scenario = scenario(2, 2, 0);
    scenario.config.planted = Planted::TakeoverLosesMessage;
    let found = run(&scenario, 1).counterexample.expect("found");
    let (at, violation) = scenario.replay(&found.steps).expect_err("replays");
    assert_eq!(at, found.steps.len() - 1);
    assert_eq!(violation, found.violation);
    let text = super::trace::to_sim_scenario(&found, "test");
    assert!(text.starts_with("chatroom-sim 1\n"), "{text}");
    assert!(text.contains("clients 3\n"), "the takeover is played by a third client: {text}");
}

#[test]
fn a_ticketed_relay_keeps_messages_until_acknowledged_and_after_a_reset() {
    let (u0, u1) = (0, 1);
    let op = |user, op| Step::Op { user, op };
    let mut scenario = scenario(2, 9, 1);
    scenario.bounds.tickets = true;
    let steps = [
        op(u0, Op::Register),
        op(u1, Op::Register),
        op(u1, Op::TicketRelay),
        op(u0, Op::Send { to: u1 }),
        op(u0, Op::Send { to: u1 }),
        Step::Confirm { user: u1 },
        Step::DropRelay { user: u1 },
        op(u1, Op::TicketRelay),
    ];
    let world = scenario.replay(&steps).expect("the core agrees with the model");
    let queue = &world.model.users[1].account.as_ref().expect("registered").queue;
    assert_eq!(queue.len(), 1, "the unacknowledged message waits: {queue:?}");
    let relay = world.users[1].relay.as_ref().expect("the second relay is bound");
    assert!(relay.acks);
    assert_eq!(relay.received.len(), 1, "only the second message is pushed again");
    assert_eq!(relay.received[0].seq, 1);
}

#[test]
fn state_counts_with_ticketed_relays_and_intruders_are_pinned() {
    // Pinned like `state_counts_are_pinned`, with the ticketed relay in the alphabet.
    let mut tickets = scenario(2, 2, 1);
    tickets.bounds.tickets = true;
    let report = run(&tickets, 1);
    assert!(report.complete, "{:?}", report.counterexample);
    // 241 (285 before messages were renumbered in the fingerprint; 266 before that, when
    // whether a session asked for a ticket, which makes it refuse bare handshakes, was not
    // part of the state).
    assert_eq!((report.progress.unique, report.progress.depth), (241, 6));
    let mut intruders = scenario(2, 2, 1);
    intruders.bounds.intruders = true;
    let report = run(&intruders, 1);
    assert!(report.complete, "{:?}", report.counterexample);
    // The same count as without intruders: against the real core a refused intrusion only
    // spends budget, which other ops without effect (a list while logged out) spend too. That
    // intruder steps do reach new states when the core is wrong is shown by
    // `finds_a_relay_bound_by_username_alone_only_with_intruders`.
    assert_eq!((report.progress.unique, report.progress.depth), (180, 6));
}

/// The relay-binding hole of the original server: with it planted, the plain search is
/// complete and finds nothing (it never names another user in a handshake), while the search
/// with intruder steps reaches a state it never does, an intruder's relay bound to the
/// victim's account, and reports it as a wrong recipient.
#[test]
fn finds_a_relay_bound_by_username_alone_only_with_intruders() {
    let mut plain = scenario(2, 2, 1);
    plain.config.planted = Planted::BindByNameOnly;
    let without = run(&plain, 1);
    assert!(without.complete && without.counterexample.is_none(), "{without:?}");
    assert_eq!(without.progress.unique, 180, "the same states as the real core");
    let mut intruders = plain.clone();
    intruders.bounds.intruders = true;
    let with = run(&intruders, 1);
    let found = with.counterexample.expect("intruder steps reach the hijacked relay");
    assert_eq!(found.violation.invariant, Invariant::WrongRecipient, "{found:?}");
    // The victim logs in (registers), the intruder names it in a bare handshake.
    assert_eq!(found.steps.len(), 2, "{found:?}");
    assert!(matches!(found.steps[1], Step::Op { op: Op::RelayAs { .. }, .. }), "{found:?}");
    assert_ne!(with.progress, without.progress, "the searches explore different states");
}

#[test]
fn a_counterexample_becomes_a_sim_scenario_file() {
    let mut scenario = scenario(2, 2, 0);
    scenario.config.planted = Planted::TakeoverLosesMessage;
    let found = run(&scenario, 1).counterexample.expect("found");
    let text = super::trace::to_sim_scenario(&found, "chatroom check --users 2 --ops 2");
    let expected = "chatroom-sim 1
# written by: chatroom check --users 2 --ops 2
# violated: message-lost: m0 from u0 to u1 is neither delivered nor queued
# client 2 is u1 logging in from a second connection
seed 0
clients 3
at 1000 client 0 register u0 pw
at 2000 client 1 register u1 pw
at 3000 client 0 send u1 m0
at 4000 client 2 login u1 pw
";
    assert_eq!(text, expected);
    let described = super::trace::describe(&found);
    assert!(described.starts_with("shortest counterexample (4 steps):\n    1. u0 register\n"));
}

#[test]
fn fingerprints_merge_renamed_users_and_separate_real_differences() {
    use super::fingerprint::{fingerprint, permutations};
    let scenario = scenario(3, 3, 0);
    let op = |user, op| Step::Op { user, op };
    let print = |steps: &[Step], renamings: &[Vec<u8>]| {
        let world = scenario.replay(steps).expect("no violation");
        fingerprint(&world, renamings, &mut Vec::new())
    };
    let all = permutations(3);
    let identity = [vec![0, 1, 2]];
    let a = [op(0, Op::Register), op(2, Op::Register), op(0, Op::Send { to: 2 })];
    let renamed = [op(1, Op::Register), op(0, Op::Register), op(1, Op::Send { to: 0 })];
    assert_eq!(print(&a, &all), print(&renamed, &all), "u0<->u1, u2->u0 is a symmetry");
    assert_ne!(print(&a, &identity), print(&renamed, &identity));
    // The recipient registered before the sender: `list` shows another order, another state.
    let swapped = [op(2, Op::Register), op(0, Op::Register), op(0, Op::Send { to: 2 })];
    assert_ne!(print(&a, &all), print(&swapped, &all));
    // A message queued versus one delivered.
    let with_relay =
        [op(2, Op::Register), op(2, Op::Relay), op(0, Op::Register), op(0, Op::Send { to: 2 })];
    let mut delivered = with_relay.to_vec();
    delivered.push(Step::Confirm { user: 2 });
    assert_ne!(print(&with_relay, &all), print(&delivered, &all));
}

/// The scenario file a counterexample becomes is one the simulator reads and, with the same
/// bug planted, fails on; without the bug the same file passes.
#[test]
fn a_counterexample_file_replays_in_the_simulator() {
    use crate::sim::{run_scenario, RunOptions};
    let mut scenario = scenario(2, 2, 0);
    scenario.config.planted = Planted::TakeoverLosesMessage;
    let found = run(&scenario, 1).counterexample.expect("found");
    let text = super::trace::to_sim_scenario(&found, "test");
    let parsed: crate::sim::Scenario = text.parse().expect("the simulator reads the file");
    let planted = RunOptions { planted: Planted::TakeoverLosesMessage, ..RunOptions::default() };
    let outcome = run_scenario(&parsed, &planted);
    let violation = outcome.violation.expect("the simulator finds the bug the checker found");
    assert_eq!(violation.invariant, "no acknowledged message is lost");
    let clean = run_scenario(&parsed, &RunOptions::default());
    assert_eq!(clean.violation, None, "without the bug the scenario passes");
}

/// Sleep sets skip transitions, never states: every scenario has the same states at the same
/// depths with and without them (the claim argued in `por`), and fewer transitions.
#[test]
fn sleep_sets_keep_every_state_at_its_depth() {
    let mut fewer = false;
    for (users, ops, faults, tickets, intruders) in [
        (2, 3, 1, false, false),
        (2, 3, 2, true, true),
        (3, 2, 1, true, false),
        (3, 2, 0, false, true),
    ] {
        let mut reduced = scenario(users, ops, faults);
        reduced.bounds.tickets = tickets;
        reduced.bounds.intruders = intruders;
        reduced.por = true;
        let mut full = reduced.clone();
        full.por = false;
        let (with, without) = (run(&reduced, 1), run(&full, 1));
        assert!(with.complete && without.complete);
        let what = format!("{users}/{ops}/{faults} tickets {tickets} intruders {intruders}");
        assert_eq!(with.progress.unique, without.progress.unique, "{what}");
        assert_eq!(with.progress.depth, without.progress.depth, "{what}");
        assert!(with.progress.explored <= without.progress.explored, "{what}");
        fewer |= with.progress.explored < without.progress.explored;
        // Without symmetry too (sleep sets are then never renamed).
        reduced.symmetry = false;
        full.symmetry = false;
        let (with, without) = (run(&reduced, 1), run(&full, 1));
        assert_eq!(with.progress.unique, without.progress.unique, "{what}, no symmetry");
        assert_eq!(with.progress.depth, without.progress.depth, "{what}, no symmetry");
    }
    assert!(fewer, "the reduction skips something");
}

/// Every planted bug the checker can see is found with sleep sets as without them, with a
/// counterexample of the same length (and, with sleep sets, whatever the number of jobs).
#[test]
fn sleep_sets_find_every_planted_bug_at_the_same_length() {
    let bugs = [
        (Planted::DeleteKeepsQueue, 2, 3, 0),
        (Planted::TakeoverLosesMessage, 2, 2, 0),
        (Planted::ListShowsDeleted, 2, 2, 0),
        (Planted::RequeueOutOfOrder, 2, 3, 0),
        (Planted::BindByNameOnly, 2, 2, 0),
        (Planted::DropOnDetach, 2, 3, 1),
        (Planted::ReplyBeforeDurable, 2, 2, 1),
        (Planted::TakeoverLosesMessage, 3, 2, 1),
    ];
    let mut found = 0;
    for (bug, users, ops, faults) in bugs {
        let mut reduced = scenario(users, ops, faults);
        reduced.bounds.tickets = true;
        reduced.bounds.intruders = true;
        reduced.config.planted = bug;
        reduced.por = true;
        let mut full = reduced.clone();
        full.por = false;
        let length = |report: Report| report.counterexample.map(|c| c.steps.len());
        let with = run(&reduced, 1);
        assert_eq!(with.progress, run(&reduced, 2).progress, "{bug:?}");
        let (with, without) = (length(with), length(run(&full, 1)));
        assert_eq!(with, without, "{bug:?} in {users}/{ops}/{faults}");
        found += usize::from(with.is_some());
    }
    assert!(found >= 4, "the three bugs the checker is known to find, and more: {found}");
}

/// The independence relation of `por` holds of the real core: in every state of small
/// scenarios (with and without a stalled disk), two steps independent in that state run in
/// either order both stay possible, both succeed, and end in the same state (compared without
/// symmetry: the very same users).
#[test]
fn independent_steps_commute() {
    use super::driver::State;
    use super::fingerprint::fingerprint;
    use super::por::independent_in;
    use super::visited::Visited;
    let mut pairs = 0;
    for (users, ops, faults, stalls) in [(3, 2, 1, 0), (2, 3, 1, 0), (3, 2, 1, 1), (2, 3, 0, 1)] {
        let mut scenario = with_stalls(users, ops, faults, stalls);
        scenario.bounds.tickets = true;
        scenario.bounds.intruders = true;
        let identity: Vec<Vec<u8>> = vec![(0..users as u8).collect()];
        let print = |world: &State| fingerprint(world, &identity, &mut Vec::new());
        let mut seen = Visited::default();
        let mut layer = vec![scenario.world()];
        seen.insert(print(&layer[0]));
        let mut steps = Vec::new();
        while !layer.is_empty() {
            let mut next = Vec::new();
            for world in &layer {
                world.enabled(&scenario.bounds, &mut steps);
                for (at, &t) in steps.iter().enumerate() {
                    let mut after_t = world.clone();
                    after_t.step(t).expect("no bug planted");
                    let stalled = world.disk_stalled();
                    let independent = |&&u: &&Step| independent_in(t, u, stalled);
                    for &u in steps[at + 1..].iter().filter(independent) {
                        pairs += 1;
                        let mut tu = after_t.clone();
                        assert!(tu.possible(u), "{u} after {t}");
                        tu.step(u).unwrap_or_else(|v| panic!("{u} after {t}: {v}"));
                        let mut ut = world.clone();
                        ut.step(u).expect("no bug planted");
                        assert!(ut.possible(t), "{t} after {u}");
                        ut.step(t).unwrap_or_else(|v| panic!("{t} after {u}: {v}"));
                        assert_eq!(print(&tu), print(&ut), "{t} and {u} do not commute");
                    }
                    if seen.insert(print(&after_t)) {
                        next.push(after_t);
                    }
                }
            }
            layer = next;
        }
    }
    assert!(pairs > 1000, "{pairs}");
}

fn with_stalls(users: usize, ops: u8, faults: u8, stalls: u8) -> Search {
    let mut scenario = scenario(users, ops, faults);
    scenario.bounds.stalls = stalls;
    scenario
}

/// A send acknowledged before its record is durable breaks the write-ahead rule the moment the
/// acknowledgement leaves the core, stall or not: register both, send.
#[test]
fn finds_a_reply_released_before_its_record_is_durable() {
    let mut scenario = with_stalls(2, 2, 0, 0);
    scenario.config.planted = Planted::ReplyBeforeDurable;
    let found = run(&scenario, 1).counterexample.expect("the planted bug is found");
    assert_eq!(found.violation.invariant, Invariant::ReleasedEarly, "{found:?}");
    assert_eq!(found.steps.len(), 3, "{found:?}");
    assert!(matches!(found.steps[2], Step::Op { op: Op::Send { .. }, .. }), "{found:?}");
}

/// Recovery that replays a torn last record: the disk stalls, a send's record is written but
/// not synced, the crash tears it, and recovery returns a message that was never written.
/// Without stalls no record is ever unsynced at a crash, so nothing is found.
#[test]
fn finds_a_recovery_that_replays_a_torn_record_only_with_a_stalled_disk() {
    let mut plain = with_stalls(2, 2, 1, 0);
    plain.config.planted = Planted::ReplayTornRecord;
    let without = run(&plain, 1);
    assert!(without.complete && without.counterexample.is_none(), "{without:?}");
    let mut stalled = plain.clone();
    stalled.bounds.stalls = 1;
    let found = run(&stalled, 1).counterexample.expect("the planted bug is found");
    assert_eq!(found.violation.invariant, Invariant::RecoveryWrong, "{found:?}");
    // Register both, stall, send, crash tearing the message.
    assert_eq!(found.steps.len(), 5, "{found:?}");
    assert_eq!(found.steps[4], Step::Crash { kept: 0, torn: true }, "{found:?}");
}

/// The real recovery over a stalled disk: an unacknowledged send may be lost or kept, and
/// either way the core and the model agree; synced records survive every crash.
#[test]
fn a_crash_keeps_a_chosen_prefix_of_unsynced_records() {
    let op = |user, op| Step::Op { user, op };
    let scenario = with_stalls(2, 9, 1, 1);
    let prefix = [op(0, Op::Register), op(1, Op::Register), Step::Stall];
    let sends = [op(0, Op::Send { to: 1 }), op(1, Op::Send { to: 0 })];
    for (kept, torn, queued) in
        [(0, false, 0), (0, true, 0), (1, false, 1), (1, true, 1), (2, false, 2)]
    {
        let mut steps = prefix.to_vec();
        steps.extend(sends);
        steps.push(Step::Crash { kept, torn });
        let world = scenario.replay(&steps).expect("the core agrees with the model");
        let queues: usize = world
            .model
            .users
            .iter()
            .map(|u| u.account.as_ref().expect("registered before the stall").queue.len())
            .sum();
        assert_eq!(queues, queued, "kept {kept}, torn {torn}");
    }
    // While stalled, the sender waits for the acknowledgement: no second send.
    let world = scenario.replay(&[prefix.as_slice(), &sends[..1]].concat()).expect("agrees");
    assert!(!world.possible(op(0, Op::Send { to: 1 })), "u0 waits for its reply");
    assert!(world.possible(op(1, Op::List)), "u1 does not");
    let mut steps = [prefix.as_slice(), &sends[..1]].concat();
    steps.push(Step::Sync);
    let world = scenario.replay(&steps).expect("the reply arrives at the sync");
    assert!(world.possible(op(0, Op::Send { to: 1 })));
}

/// The state counts with a stalled disk, pinned like `state_counts_are_pinned`. A stall lasts
/// at most `STALL_STEPS_DEFAULT` steps, and how long it has lasted is part of the state, which is
/// why a bounded stall counted more states here than an unbounded one did (1,227 and 343):
/// the bound pays off with three users, where an unbounded stall left `--users 3 --ops 3
/// --faults 1` beyond five million states and the bounded one checks it in 4.5 million (2.8
/// million since the fingerprint renumbers messages, 2.3 million with the lazy stall). The
/// lazy stall (counted from its first record, ended only after one) took these from 1,558
/// and 481. A refused bare handshake is now simply closed, without a failure frame whose
/// write was a state of its own: 1,079 became 1,071.
#[test]
fn state_counts_with_stalls_are_pinned() {
    for (users, ops, faults, stalls, unique, depth) in [(2, 2, 1, 1, 1071, 8), (2, 2, 0, 1, 305, 7)]
    {
        let report = run(&with_stalls(users, ops, faults, stalls), 1);
        assert!(report.complete, "{:?}", report.counterexample);
        assert_eq!(
            (report.progress.unique, report.progress.depth),
            (unique, depth),
            "users {users}, ops {ops}, faults {faults}, stalls {stalls}"
        );
    }
}

/// A shorter stall (`--stall-steps`) checks fewer states: behind a held record, every user's
/// possible requests multiply them. The bugs the stall is there for are found by a stall of
/// two steps as soon as by the default three (the scenario of
/// `the_acceptance_scenario_finds_the_disk_and_hostile_bugs`); a stall of one step holds only
/// the record's own step, so a pipelined burst behind a held reply never happens and the core
/// that reads past its pipeline bound is missed: the cost of the cheapest setting.
#[test]
fn a_shorter_stall_checks_fewer_states_and_finds_the_disk_bugs_as_soon() {
    let counts: Vec<_> = (1..=3)
        .map(|steps| {
            let mut scenario = with_stalls(3, 2, 1, 1);
            scenario.bounds.stall_steps = steps;
            let report = run(&scenario, 1);
            assert!(report.complete, "{:?}", report.counterexample);
            report.progress.unique
        })
        .collect();
    assert_eq!(counts, [8318, 14874, 23859]);
    for (bug, length) in [
        (Planted::ReplyBeforeDurable, 3),
        (Planted::ReplayTornRecord, 5),
        (Planted::ReleaseOneEarly, 1),
    ] {
        let mut scenario = with_stalls(3, 3, 1, 1);
        scenario.bounds.stall_steps = 2;
        scenario.config.planted = bug;
        let found = run(&scenario, 2).counterexample.expect("found");
        assert_eq!(found.steps.len(), length, "{bug:?}: {found:?}");
    }
    let mut burst = pipelining(2, 2, 0);
    burst.config.planted = Planted::PipelineUnbounded;
    burst.bounds.stall_steps = 2;
    let found = run(&burst, 1).counterexample.expect("a burst of two behind a held reply");
    assert_eq!(found.steps.len(), 3, "{found:?}");
    burst.bounds.stall_steps = 1;
    let report = run(&burst, 1);
    assert!(report.complete && report.counterexample.is_none(), "{:?}", report.counterexample);
}

fn hostile(users: usize, ops: u8, faults: u8) -> Search {
    let mut scenario = scenario(users, ops, faults);
    scenario.bounds.tickets = true;
    scenario.bounds.intruders = true;
    scenario
}

/// A ticket that is not spent by its handshake: only a replayed ticket shows it. The search
/// with tickets but no hostile steps is complete and clean; with them, the user replays the
/// ticket its own relay was bound with and is refused for the wrong reason.
#[test]
fn finds_a_reusable_ticket_only_with_replayed_tickets() {
    let mut plain = scenario(2, 3, 0);
    plain.bounds.tickets = true;
    plain.config.planted = Planted::TicketReusable;
    let without = run(&plain, 1);
    assert!(without.complete && without.counterexample.is_none(), "{without:?}");
    let mut with = hostile(2, 3, 0);
    with.config.planted = Planted::TicketReusable;
    let found = run(&with, 1).counterexample.expect("a replayed ticket shows it");
    assert_eq!(found.violation.invariant, Invariant::ReplyDisagrees, "{found:?}");
    // Register, open a ticketed relay, replay its ticket.
    assert_eq!(found.steps.len(), 3, "{found:?}");
    assert!(matches!(found.steps[2], Step::Op { op: Op::ReplayTicket { .. }, .. }), "{found:?}");
}

/// An acknowledgement that removes a message from whichever account holds it: only a forged,
/// cross-user acknowledgement shows it, as another user's message lost.
#[test]
fn finds_an_acknowledgement_of_another_accounts_message_only_with_forged_acks() {
    let mut plain = scenario(2, 4, 0);
    plain.bounds.tickets = true;
    plain.config.planted = Planted::AckAnyAccount;
    let without = run(&plain, 1);
    assert!(without.complete && without.counterexample.is_none(), "{without:?}");
    let mut with = hostile(2, 4, 0);
    with.config.planted = Planted::AckAnyAccount;
    let found = run(&with, 1).counterexample.expect("a forged acknowledgement shows it");
    assert_eq!(found.violation.invariant, Invariant::MessageLost, "{found:?}");
    // u0 registers and opens a ticketed relay, u1 registers, u0 sends to u1, u1 sends to u0
    // (pushed on u0's relay, a later id), u0 acknowledges the id of u1's queued message.
    assert_eq!(found.steps.len(), 6, "{found:?}");
    assert!(matches!(found.steps[5], Step::Op { op: Op::ForgeAck { .. }, .. }), "{found:?}");
}

/// Against the real core every hostile step is refused and changes nothing but the budget it
/// spends, so the model predicts every reply to them and the search finds no violation; the
/// state count grows only by whether a ticket was spent (which a replay depends on).
#[test]
fn hostile_steps_are_refused_as_the_model_predicts() {
    let report = run(&hostile(2, 3, 1), 1);
    assert!(report.complete, "{:?}", report.counterexample);
    assert_eq!((report.progress.unique, report.progress.depth), (1944, 9));
}

fn pipelining(users: usize, ops: u8, faults: u8) -> Search {
    let mut scenario = with_stalls(users, ops, faults, 1);
    scenario.bounds.pipeline = 2;
    scenario
}

/// A client sends a second request while the reply to the first waits for the disk: the core
/// reads it only once that reply is written (its pipeline bound is one request in the model's
/// scenarios), and the model answers both at the sync, in order.
#[test]
fn a_pipelined_burst_waits_for_the_reply_before_it() {
    let op = |user, op| Step::Op { user, op };
    let scenario = pipelining(2, 4, 0);
    let burst = [
        op(0, Op::Register),
        op(1, Op::Register),
        Step::Stall,
        op(0, Op::Send { to: 1 }),
        op(0, Op::Send { to: 1 }),
    ];
    let world = scenario.replay(&burst).expect("the core agrees with the model");
    assert_eq!(world.model.users[0].deferred, vec![Op::Send { to: 1 }], "the second is unread");
    assert!(!world.possible(op(0, Op::List)), "a burst of two at most");
    let queue = |world: &super::driver::State| {
        world.model.users[1].account.as_ref().expect("registered").queue.len()
    };
    assert_eq!(queue(&world), 1);
    let mut steps = burst.to_vec();
    steps.push(Step::Sync);
    let world = scenario.replay(&steps).expect("both answered at the sync, in order");
    assert_eq!(queue(&world), 2);
    assert!(world.owed.is_empty());
    assert!(world.possible(op(0, Op::List)));
    let report = run(&scenario, 1);
    assert!(report.complete, "{:?}", report.counterexample);
    // 26,584 before a refused bare handshake was simply closed (no failure frame to write).
    assert_eq!((report.progress.unique, report.progress.depth), (26570, 12));
}

/// Two sends waiting unread behind a held reply are two messages: the driver numbers each as
/// the model will when it serves it (it numbered both by the sends served so far, so both went
/// out as `m0`, and `chatroom check --users 2 --ops 4 --faults 1 --pipeline 3` reported the
/// second lost). The core queues both, in order, and the whole search agrees.
#[test]
fn sends_waiting_unread_behind_a_held_reply_are_numbered_as_sent() {
    let op = |user, op| Step::Op { user, op };
    let mut scenario = pipelining(2, 4, 1);
    scenario.bounds.pipeline = 3;
    let steps = [
        op(0, Op::Register),
        Step::Stall,
        op(1, Op::Register),
        op(1, Op::Send { to: 0 }),
        op(1, Op::Send { to: 0 }),
        Step::Sync,
    ];
    let world = scenario.replay(&steps).expect("both sends are queued, as the model says");
    let queue = &world.model.users[0].account.as_ref().expect("registered").queue;
    assert_eq!(queue.len(), 2);
    let report = run(&scenario, 1);
    assert!(report.complete && report.counterexample.is_none(), "{:?}", report.counterexample);
}

/// After a sync the server reads the requests that waited in rounds, one more per connection
/// once a record is written: u1's second pipelined send is read after u0's pipelined logout,
/// so it queues for u0 offline rather than reaching u0's relay (the reference served all of
/// u1's first and expected both pushes, `--stall-steps 5 --pipeline 3`).
#[test]
fn requests_that_waited_behind_a_stall_are_read_a_round_at_a_time() {
    let op = |user, op| Step::Op { user, op };
    let mut scenario = pipelining(2, 5, 1);
    (scenario.bounds.pipeline, scenario.bounds.stall_steps) = (3, 5);
    let steps = [
        op(0, Op::Register),
        op(0, Op::Relay),
        Step::Stall,
        op(1, Op::Register),
        op(0, Op::Register),
        op(0, Op::Logout),
        op(1, Op::Send { to: 0 }),
        op(1, Op::Send { to: 0 }),
        Step::Sync,
    ];
    let world = scenario.replay(&steps).expect("the core reads as the model says");
    let queue = &world.model.users[0].account.as_ref().expect("registered").queue;
    assert_eq!(queue.len(), 2, "neither send reached u0's relay before it closed");
}

/// A pipelining client's requests the server has not read yet are part of the state: behind a
/// held reply, a deferred `send` and a deferred `list` leave everything else alike (the replies
/// they are owed come only once they are served), yet the sync serves different requests.
#[test]
fn fingerprints_separate_deferred_requests() {
    use super::fingerprint::{fingerprint, permutations};
    let op = |user, op| Step::Op { user, op };
    let scenario = pipelining(2, 4, 0);
    let renamings = permutations(2);
    let print = |steps: &[Step]| {
        let world = scenario.replay(steps).expect("the core agrees with the model");
        fingerprint(&world, &renamings, &mut Vec::new())
    };
    let held = [op(0, Op::Register), op(1, Op::Register), Step::Stall, op(0, Op::Send { to: 1 })];
    let deferred = |second| [held.as_slice(), &[op(0, second)]].concat();
    assert_ne!(print(&deferred(Op::List)), print(&deferred(Op::Send { to: 1 })));
    assert_ne!(print(&deferred(Op::List)), print(&deferred(Op::Logout)));
}

/// The pipelining bug of the host issue, planted back: the core decodes every pipelined
/// request at once, whatever its bound. The model's client pipelines a burst of two behind a
/// held reply: the stalled disk holds a registration's reply, the client pipelines a logout,
/// and the core logs the user out before it may read the request.
#[test]
fn finds_a_core_that_reads_past_its_pipeline_bound() {
    let mut scenario = pipelining(2, 2, 0);
    scenario.config.planted = Planted::PipelineUnbounded;
    let found = run(&scenario, 1).counterexample.expect("the planted bug is found");
    assert_eq!(found.violation.invariant, Invariant::StateDisagrees, "{found:?}");
    assert_eq!(found.steps.len(), 3, "{found:?}");
    assert_eq!(found.steps[2], Step::Op { user: found_user(&found.steps), op: Op::Logout });
}

/// The new planted bugs are found by the scenario of `chatroom check --users 3 --ops 3
/// --faults 1` (one stall by default; the hostile ones with `--tickets --intruders`), with the
/// shortest counterexamples the small scenarios above find.
#[test]
fn the_acceptance_scenario_finds_the_disk_and_hostile_bugs() {
    for (bug, hostile, length) in [
        (Planted::ReplyBeforeDurable, false, 3),
        (Planted::ReplayTornRecord, false, 5),
        // The outbox's gate one record early: the first reply leaves before its record syncs.
        (Planted::ReleaseOneEarly, false, 1),
        (Planted::TicketReusable, true, 3),
        // Seven, not six as with two users and four operations: with three operations
        // each, the victim is a third user.
        (Planted::AckAnyAccount, true, 7),
    ] {
        let mut scenario = with_stalls(3, 3, 1, 1);
        scenario.bounds.tickets = hostile;
        scenario.bounds.intruders = hostile;
        scenario.config.planted = bug;
        let found = run(&scenario, 2).counterexample.expect("found");
        assert_eq!(found.steps.len(), length, "{bug:?}: {found:?}");
    }
}

/// `scenario` with attackers guessing passwords against a throttle of `n` checks per (name,
/// address), `2n` per address.
fn throttled(users: usize, ops: u8, n: u8) -> Search {
    let mut scenario = scenario(users, ops, 0);
    scenario.throttle = Some(n);
    scenario
}

/// Concurrent logins beyond the throttle: an attacker's wrong-password logins in flight at
/// once. The real core reserves a check before its job starts, so the checks that run stay
/// within the limits; with the reservation counted only when the job ends
/// (`ThrottleCountedLate`), two guesses issued before either is checked both run, one more
/// than the limit of one: guess, guess, checked, checked.
#[test]
fn concurrent_guesses_beyond_the_throttle_are_found_only_when_counted_late() {
    let clean = run(&throttled(2, 3, 1), 1);
    assert!(clean.complete && clean.counterexample.is_none(), "{:?}", clean.counterexample);
    assert_eq!((clean.progress.unique, clean.progress.depth), (3677, 10));
    let mut late = throttled(2, 3, 1);
    late.config.planted = Planted::ThrottleCountedLate;
    let found = run(&late, 1).counterexample.expect("the late count lets two guesses run");
    assert_eq!(found.violation.invariant, Invariant::GuessesPerAccount, "{found:?}");
    assert_eq!(found.steps.len(), 4, "{found:?}");
    assert!(matches!(found.steps[1], Step::Guess { .. }), "{found:?}");
    late.por = true;
    let reduced = run(&late, 1).counterexample.expect("guesses depend on everything");
    assert_eq!(reduced.steps.len(), 4, "sleep sets find it as soon: {reduced:?}");
    let mut by_address = throttled(2, 3, 1);
    by_address.config.planted = Planted::ThrottleFreeOffByOne;
    let found = run(&by_address, 1).counterexample.expect("one more free check per name");
    assert_eq!(found.violation.invariant, Invariant::GuessesPerAccount, "{found:?}");
    assert_eq!(found.steps.len(), 4, "{found:?}");
}

/// `scenario` with owners on ticketed relays only and hijackers racing them with bare
/// handshakes from their hosts.
fn racing(users: usize, ops: u8) -> Search {
    let mut scenario = scenario(users, ops, 0);
    scenario.bounds.tickets = true;
    scenario.race = true;
    scenario
}

/// A bare handshake racing the owner's relay: the real core refuses every bare handshake
/// (ticketed handshakes only), so no hijacker's relay ever receives anything; with the setting
/// read from the old default (`BareRelayByDefault`) or the handshake bound by name alone
/// (`BindByNameOnly`), a hijacker on the owner's host binds the owner's session.
#[test]
fn a_bare_handshake_racing_the_owners_relay_is_found_only_when_accepted() {
    let clean = run(&racing(2, 3), 1);
    assert!(clean.complete && clean.counterexample.is_none(), "{:?}", clean.counterexample);
    assert_eq!((clean.progress.unique, clean.progress.depth), (281, 8));
    for bug in [Planted::BareRelayByDefault, Planted::BindByNameOnly] {
        let mut planted = racing(2, 3);
        planted.config.planted = bug;
        // With a message waiting, the hijacker's relay receives it.
        let op = |user, op| Step::Op { user, op };
        let steps = [
            op(0, Op::Register),
            op(1, Op::Register),
            op(1, Op::Send { to: 0 }),
            Step::Hijack { user: 1, target: 0 },
        ];
        let (at, violation) = planted.replay(&steps).expect_err("the hijacker reads u0's message");
        assert_eq!((at, violation.invariant), (3, Invariant::RelayOwnUser), "{bug:?}: {violation}");
        assert!(racing(2, 3).replay(&steps).is_ok(), "the real core refuses the handshake");
        let found = run(&planted, 1).counterexample.expect("a hijacker binds the session");
        if bug == Planted::BindByNameOnly {
            // Found as soon without a hijacker: a ticketed handshake bound as a bare one.
            assert_eq!(found.steps.len(), 3, "{found:?}");
            continue;
        }
        // Shortest: u0 registers, u1's bare handshake binds u0's session, and u0's own
        // ticketed relay is refused ("this session already has a relay").
        assert_eq!(found.steps[1], Step::Hijack { user: 1, target: 0 }, "{bug:?}: {found:?}");
        let seen = (found.violation.invariant, found.steps.len());
        assert_eq!(seen, (Invariant::ReplyDisagrees, 3), "{bug:?}: {found:?}");
        assert!(found.violation.detail.contains("already has a relay"), "{found:?}");
        planted.por = true;
        let reduced = run(&planted, 1).counterexample.expect("hijacks depend on everything");
        assert_eq!(reduced.steps.len(), 3, "sleep sets find it as soon: {reduced:?}");
    }
}

/// Budget `at` of `world`: the faults, the stalls, the stall's steps, then each user's
/// operations.
fn budget(world: &mut super::driver::State, at: usize) -> &mut u8 {
    match at {
        0 => &mut world.faults_used,
        1 => &mut world.stalls_used,
        2 => &mut world.stall_len,
        user => &mut world.ops_used[user - 3],
    }
}

/// `world` and every state that differs from it only in having spent less: each budget from
/// zero to what `world` spent.
fn less_spent(world: &super::driver::State) -> Vec<super::driver::State> {
    let mut out = vec![world.clone()];
    for at in 0..3 + world.users.len() {
        let mut next = Vec::new();
        for state in &out {
            for value in 0..*budget(&mut state.clone(), at) {
                let mut less = state.clone();
                *budget(&mut less, at) = value;
                next.push(less);
            }
        }
        out.extend(next);
    }
    out
}

/// The fingerprints [`lowered`](super::fingerprint::lowered) gives are those of the states
/// themselves, each with one budget lowered by one (computed on a copy with the field changed),
/// in every state of a scenario with faults and a stall.
#[test]
fn lowered_fingerprints_are_those_of_states_that_spent_less() {
    use super::fingerprint::{fingerprint, lowered, permutations};
    use std::sync::Mutex;
    let renamings = permutations(2);
    let mut search = with_stalls(2, 2, 1, 1);
    search.subsume = false;
    let checked = Mutex::new(0u32);
    let observe = |_: usize, world: &super::driver::State| {
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        lowered(world, &renamings, &mut buf, &mut out);
        let mut expected = Vec::new();
        for at in 0..5 {
            let mut less = world.clone();
            if let Some(n) = budget(&mut less, at).checked_sub(1) {
                *budget(&mut less, at) = n;
                expected.push(fingerprint(&less, &renamings, &mut buf));
            }
        }
        assert_eq!(out, expected);
        *checked.lock().unwrap() += 1;
    };
    let limits = Limits { states_max: u64::MAX, jobs: 1 };
    let report = super::explorer::explore_observed(
        &search,
        limits,
        &mut |_| ControlFlow::Continue(()),
        Some(&observe),
    );
    assert!(report.complete);
    assert_eq!(u64::from(*checked.lock().unwrap()) + 1, report.progress.unique);
}

/// Subsumption skips states, never behaviours: every state the full search reaches at depth
/// `d` is covered by a state the reduced search expanded at a depth no greater that is the
/// same but for having spent no more of each budget. (A reduction that merged states
/// differing in budgets, or compared with states not yet visited, fails this.)
#[test]
fn subsumption_covers_every_state_at_a_depth_no_greater() {
    use super::fingerprint::{fingerprint, permutations, Fingerprint};
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    for (users, ops, faults, stalls) in [(2, 3, 1, 1), (3, 2, 1, 1), (2, 2, 2, 0)] {
        let renamings = permutations(users);
        let mut reduced = with_stalls(users, ops, faults, stalls);
        reduced.subsume = true;
        let mut full = reduced.clone();
        full.subsume = false;
        let limits = Limits { states_max: u64::MAX, jobs: 1 };
        // Reduced: the depth at which each expanded state was found.
        let kept = Mutex::new(BTreeMap::<Fingerprint, usize>::new());
        let keep = |depth: usize, world: &super::driver::State| {
            let print = fingerprint(world, &renamings, &mut Vec::new());
            kept.lock().unwrap().entry(print).or_insert(depth);
        };
        let no_stop = &mut |_: &_| ControlFlow::Continue(());
        let with = super::explorer::explore_observed(&reduced, limits, no_stop, Some(&keep));
        let mut kept = kept.into_inner().unwrap();
        // The initial state is expanded without being observed.
        kept.insert(fingerprint(&reduced.world(), &renamings, &mut Vec::new()), 0);
        let uncovered = Mutex::new(0u32);
        let check = |depth: usize, world: &super::driver::State| {
            let covered = less_spent(world).iter_mut().any(|less| {
                // Fingerprinted as the reduced search does (keeping the names' accounts).
                less.subsume = true;
                let print = fingerprint(less, &renamings, &mut Vec::new());
                kept.get(&print).is_some_and(|&at| at <= depth)
            });
            if !covered {
                *uncovered.lock().unwrap() += 1;
            }
        };
        let without = super::explorer::explore_observed(&full, limits, no_stop, Some(&check));
        let what = format!("{users}/{ops}/{faults}/{stalls}");
        assert!(with.complete && without.complete, "{what}");
        assert_eq!(*uncovered.lock().unwrap(), 0, "{what}");
        assert!(with.progress.subsumed > 0, "{what}");
        assert!(with.progress.unique < without.progress.unique, "{what}");
        assert!(with.progress.depth <= without.progress.depth, "{what}");
    }
}

/// A crash inside a stall that keeps and tears only records written before the stall's last
/// step is not run (`State::enabled`): it is the same crash one step earlier (before the stall,
/// if that step began to hold records back), with that step's budget unspent. Checked on the
/// real core and every planted one, in every state of small searches (with pipelining,
/// hostile steps and two faults): each such crash observes what the earlier one observes
/// (passes, or fails the same invariant) and, passing, leads to the state the earlier one leads
/// to but for having spent no less of each budget. (Skipping also the crashes that keep or
/// tear a record of the last step fails this: the earlier state cannot run them.)
#[test]
fn skipped_crashes_are_those_of_the_state_before() {
    use super::driver::State;
    use super::fingerprint::fingerprint;
    use super::por::CRASH_KEPT_MAX;
    // The state with every budget zeroed, and what it spent.
    let unspent = |world: &State| -> (State, Vec<u8>) {
        let mut world = world.clone();
        let spent =
            (0..3 + world.users.len()).map(|at| std::mem::take(budget(&mut world, at))).collect();
        (world, spent)
    };
    let mut compared = 0;
    let configs =
        [(2, 2, 1, 1, false), (2, 2, 1, 2, false), (2, 2, 2, 1, false), (2, 2, 1, 1, true)];
    for bug in std::iter::once(Planted::None).chain(Planted::ALL) {
        let configs = if bug == Planted::None { &configs[..] } else { &configs[..1] };
        for &(users, ops, faults, pipeline, hostile) in configs {
            let mut search = with_stalls(users, ops, faults, 1);
            search.bounds.pipeline = pipeline;
            search.bounds.tickets = hostile;
            search.bounds.intruders = hostile;
            search.config.planted = bug;
            search.throttle = format!("{bug:?}").starts_with("Throttle").then_some(1);
            let renamings = [(0..users as u8).collect()];
            let print = |world: &State| fingerprint(world, &renamings, &mut Vec::new());
            let what = format!("{bug:?} in {users}/{ops}/{faults}, pipeline {pipeline}");
            let states = reached_with_parents(&search, print);
            for (world, parent) in &states {
                if !world.disk_stalled() || world.faults_used >= faults {
                    continue;
                }
                // The state the skipped crashes are run from instead.
                let mut earlier = *parent;
                while states[earlier].0.disk_stalled() && !states[earlier].0.holding() {
                    earlier = states[earlier].1;
                }
                let earlier = &states[earlier].0;
                for kept in 0..=CRASH_KEPT_MAX {
                    for torn in [false, true] {
                        let crash = Step::Crash { kept, torn };
                        if !world.possible(crash) || kept + u8::from(torn) >= world.crash_floor {
                            continue;
                        }
                        let what = format!("{what}: {crash}");
                        assert!(earlier.possible(crash), "{what}");
                        let (mut late, mut early) = (world.clone(), earlier.clone());
                        match (late.step(crash), early.step(crash)) {
                            (Ok(()), Ok(())) => {
                                let ((late, late_spent), (early, early_spent)) =
                                    (unspent(&late), unspent(&early));
                                assert_eq!(print(&late), print(&early), "{what}");
                                let more = late_spent.iter().zip(&early_spent).all(|(l, e)| l >= e);
                                assert!(more, "{what}: {late_spent:?} {early_spent:?}");
                            }
                            (Err(late), Err(early)) => {
                                assert_eq!(late.invariant, early.invariant, "{what}")
                            }
                            (late, early) => panic!("{what}: {late:?} but earlier {early:?}"),
                        }
                        compared += 1;
                    }
                }
            }
        }
    }
    assert!(compared > 10_000, "{compared}");
}

/// Every state `search` reaches (without symmetry or subsumption: states told apart by
/// `print`), breadth-first, each with the index of the state it was first reached from.
fn reached_with_parents(
    search: &Search,
    print: impl Fn(&super::driver::State) -> super::fingerprint::Fingerprint,
) -> Vec<(super::driver::State, usize)> {
    let mut states = vec![(search.world(), usize::MAX)];
    let mut seen = std::collections::BTreeSet::from([print(&states[0].0)]);
    let (mut at, mut steps) = (0, Vec::new());
    while at < states.len() {
        states[at].0.enabled(&search.bounds, &mut steps);
        for &step in &steps {
            let mut child = states[at].0.clone();
            if child.step(step).is_ok() && seen.insert(print(&child)) {
                states.push((child, at));
            }
        }
        at += 1;
    }
    states
}

/// Planted bugs a reduction must still find at the same length, each with the smallest
/// scenario (users, operations, faults, stalls) that shows it, with tickets and intruders on.
const PLANTED_FOR_REDUCTIONS: [(Planted, usize, u8, u8, u8); 12] = [
    (Planted::DeleteKeepsQueue, 2, 3, 0, 0),
    (Planted::TakeoverLosesMessage, 2, 2, 0, 0),
    (Planted::ListShowsDeleted, 2, 2, 0, 0),
    (Planted::RequeueOutOfOrder, 2, 3, 0, 0),
    (Planted::BindByNameOnly, 2, 2, 0, 0),
    (Planted::DropOnDetach, 2, 3, 1, 0),
    (Planted::ReplyBeforeDurable, 2, 2, 1, 1),
    (Planted::ReplayTornRecord, 2, 3, 1, 1),
    (Planted::ReleaseOneEarly, 2, 2, 1, 1),
    (Planted::TicketReusable, 2, 3, 1, 1),
    (Planted::AckAnyAccount, 2, 4, 0, 0),
    (Planted::TakeoverLosesMessage, 3, 2, 1, 1),
];

/// Every planted bug the checker can see is found with subsumption as without it, with a
/// counterexample of the same length, whatever the number of jobs.
#[test]
fn subsumption_finds_every_planted_bug_at_the_same_length() {
    let mut found = 0;
    for (bug, users, ops, faults, stalls) in PLANTED_FOR_REDUCTIONS {
        let mut reduced = with_stalls(users, ops, faults, stalls);
        reduced.bounds.tickets = true;
        reduced.bounds.intruders = true;
        reduced.config.planted = bug;
        reduced.subsume = true;
        let mut full = reduced.clone();
        full.subsume = false;
        let length = |report: Report| report.counterexample.map(|c| c.steps.len());
        let with = run(&reduced, 1);
        let two = run(&reduced, 2);
        assert_eq!(with.progress, two.progress, "{bug:?}");
        assert_eq!(with.counterexample, two.counterexample, "{bug:?}");
        let (with, without) = (length(with), length(run(&full, 1)));
        assert_eq!(with, without, "{bug:?} in {users}/{ops}/{faults}/{stalls}");
        found += usize::from(with.is_some());
    }
    assert!(found >= 8, "{found}");
}

/// Pairs of states a search without symmetry finds where the second (found later) has the
/// fingerprint of the first with one budget lowered by one: the pairs subsumption would
/// skip, as (the subsuming state's steps, the subsumed state's steps). At most `pairs_max`,
/// spread evenly over all the search finds.
fn subsumed_pairs(search: &Search, pairs_max: usize) -> Vec<(Vec<Step>, Vec<Step>)> {
    use super::fingerprint::{fingerprint, lowered, Fingerprint};
    use std::collections::BTreeMap;
    let identity = [(0..search.bounds.users as u8).collect::<Vec<_>>()];
    let (mut buf, mut lowers, mut enabled) = (Vec::new(), Vec::new(), Vec::new());
    let root = search.world();
    let mut seen = BTreeMap::<Fingerprint, Vec<Step>>::new();
    seen.insert(fingerprint(&root, &identity, &mut buf), Vec::new());
    let mut layer = vec![(Vec::new(), root)];
    let mut pairs = Vec::new();
    while !layer.is_empty() {
        let mut next = Vec::new();
        for (steps, world) in &layer {
            world.enabled(&search.bounds, &mut enabled);
            for &step in &enabled {
                let mut child = world.clone();
                if child.step(step).is_err() {
                    continue;
                }
                let print = fingerprint(&child, &identity, &mut buf);
                if seen.contains_key(&print) {
                    continue;
                }
                let mut trace: Vec<Step> = steps.clone();
                trace.push(step);
                lowered(&child, &identity, &mut buf, &mut lowers);
                if let Some(by) = lowers.iter().find_map(|print| seen.get(print)) {
                    pairs.push((by.clone(), trace.clone()));
                }
                seen.insert(print, trace.clone());
                next.push((trace, child));
            }
        }
        layer = next;
    }
    let every = pairs.len().div_ceil(pairs_max).max(1);
    pairs.into_iter().step_by(every).collect()
}

/// Runs `step` in the subsumed state `less` and in its subsumer `more`: both must be able to,
/// observe the same (pass, or break the same invariant) and stay a pair: the same
/// fingerprint but for the budgets, of which the subsumer spent no more. The successors, if
/// both passed.
fn step_pair(
    search: &Search,
    (more, less): (&super::driver::State, &super::driver::State),
    step: Step,
    what: &str,
) -> Option<(super::driver::State, super::driver::State)> {
    use super::fingerprint::{fingerprint, fingerprint_spent, Spent};
    let identity = [(0..search.bounds.users as u8).collect::<Vec<_>>()];
    let mut enabled = Vec::new();
    more.enabled(&search.bounds, &mut enabled);
    assert!(enabled.contains(&step), "{what}: {step} is enabled in the subsumed state only");
    let (mut more, mut less) = (more.clone(), less.clone());
    let by_more = more.step(step).map_err(|v| v.invariant);
    let by_less = less.step(step).map_err(|v| v.invariant);
    assert_eq!(by_more, by_less, "{what}: {step} observed differently");
    by_more.ok()?;
    let (spent_more, spent_less) = (Spent::of(&more), Spent::of(&less));
    let no_more = |a: u8, b: u8| a <= b;
    assert!(
        no_more(spent_more.faults, spent_less.faults)
            && no_more(spent_more.stalls, spent_less.stalls)
            && no_more(spent_more.stall_len, spent_less.stall_len)
            && spent_more.ops.iter().zip(spent_less.ops).all(|(&a, b)| a <= b),
        "{what}: after {step} the subsumer spent more ({spent_more:?} > {spent_less:?})"
    );
    let mut buf = Vec::new();
    let as_more = fingerprint_spent(&less, &spent_more, &identity, &mut buf);
    assert_eq!(as_more, fingerprint(&more, &identity, &mut buf), "{what}: after {step}");
    Some((more, less))
}

/// The fingerprint leaves the core out: subsumption (and every merge of states) is sound only
/// if what the fingerprint keeps decides everything the core will be seen to do. A
/// differential check of that on the real core and on every planted one: for pairs of states
/// that subsumption would skip one for the other (found by real searches), every
/// continuation of up to two steps and seeded random continuations to the end are run in
/// both; each step must be possible in the subsumer, observed alike (passing, or failing the
/// same invariant) and leave the two a pair again. Without the accounts each name has had in
/// the fingerprint, `ListShowsDeleted` fails this.
#[test]
fn subsumed_states_observe_what_their_subsumers_observe() {
    let mut pairs_checked = 0;
    for bug in std::iter::once(Planted::None).chain(Planted::ALL) {
        for (users, ops, faults, stalls, hostile) in [(2, 2, 1, 1, true), (2, 3, 0, 0, false)] {
            let mut search = with_stalls(users, ops, faults, stalls);
            search.bounds.tickets = hostile;
            search.bounds.intruders = hostile;
            search.config.planted = bug;
            // The throttle's bugs need a throttle within reach (one lifted out of reach
            // overflows a planted bound).
            search.throttle = format!("{bug:?}").starts_with("Throttle").then_some(1);
            search.symmetry = false;
            search.subsume = true;
            let what = format!("{bug:?} in {users}/{ops}/{faults}/{stalls}");
            for (index, (by, skipped)) in subsumed_pairs(&search, 24).into_iter().enumerate() {
                let more = search.replay(&by).expect("found passing");
                let less = search.replay(&skipped).expect("found passing");
                let what = format!("{what}: {skipped:?} subsumed by {by:?}");
                // Every continuation of up to two steps.
                let mut enabled = Vec::new();
                less.enabled(&search.bounds, &mut enabled);
                for &first in &enabled {
                    let Some((more, less)) = step_pair(&search, (&more, &less), first, &what)
                    else {
                        continue;
                    };
                    let mut then = Vec::new();
                    less.enabled(&search.bounds, &mut then);
                    for &second in &then {
                        step_pair(&search, (&more, &less), second, &what);
                    }
                }
                // Seeded random continuations to the end (xorshift).
                let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ (index as u64 + 1);
                for _ in 0..4 {
                    let (mut more, mut less) = (more.clone(), less.clone());
                    loop {
                        less.enabled(&search.bounds, &mut enabled);
                        if enabled.is_empty() {
                            break;
                        }
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let step = enabled[(seed % enabled.len() as u64) as usize];
                        match step_pair(&search, (&more, &less), step, &what) {
                            Some(pair) => (more, less) = pair,
                            None => break,
                        }
                    }
                }
                pairs_checked += 1;
            }
        }
    }
    assert!(pairs_checked > 1000, "{pairs_checked}");
}

/// What `users` see after a step: their connections and what their relays received (messages
/// are named by sender and the sender's own count, so the view does not depend on the order in
/// which other users' steps ran), and whether the model has them logged in.
fn views(world: &super::driver::State, step: Step) -> String {
    let mut users: Vec<u8> = step.user().into_iter().collect();
    if let Step::Op { op: Op::Send { to: other } | Op::RelayAs { target: other }, .. } = step {
        users.push(other);
    }
    let mut out = String::new();
    for user in users {
        let conns = &world.users[user as usize];
        let relay = conns.relay.as_ref().map(|r| (r.acks, r.unreported.len(), &r.received));
        let logged_in = world.model.logged_in(user);
        let seen = (conns.command.is_some(), conns.old_commands.len(), relay, logged_in);
        out += &format!("{user}: {seen:?}; ");
    }
    out
}

/// A breadth-first search without symmetry, run here rather than by the explorer so that it
/// sees every transition: with `persistent`, from each state only the steps
/// [`persistent`](super::por::persistent) keeps. The states' fingerprints, each transition's
/// step with what its users see after it (and whether it violated), and the fingerprints of
/// the states where no step is possible.
struct Walk {
    states: std::collections::BTreeSet<super::fingerprint::Fingerprint>,
    seen: std::collections::BTreeSet<(Step, String)>,
    terminal: std::collections::BTreeSet<super::fingerprint::Fingerprint>,
    transitions: u64,
}

fn walk(scenario: &Search, persistent: bool) -> Walk {
    use super::fingerprint::fingerprint;
    let identity: Vec<Vec<u8>> = vec![(0..scenario.bounds.users as u8).collect()];
    let print = |world: &super::driver::State| fingerprint(world, &identity, &mut Vec::new());
    let root = scenario.world();
    let mut walked = Walk {
        states: [print(&root)].into(),
        seen: Default::default(),
        terminal: Default::default(),
        transitions: 0,
    };
    let (mut layer, mut steps) = (vec![root], Vec::new());
    while !layer.is_empty() {
        let mut next = Vec::new();
        for world in &layer {
            world.enabled(&scenario.bounds, &mut steps);
            if steps.is_empty() {
                walked.terminal.insert(print(world));
            }
            if persistent {
                super::por::persistent(world, &scenario.bounds, &mut steps);
            }
            for &step in &steps {
                walked.transitions += 1;
                let mut child = world.clone();
                let result = child.step(step);
                let view = format!("{}{:?}", views(&child, step), result.as_ref().err());
                walked.seen.insert((step, view));
                if result.is_ok() && walked.states.insert(print(&child)) {
                    next.push(child);
                }
            }
        }
        layer = next;
    }
    walked
}

/// Persistent sets are persistent on the real core: in every state of small scenarios where
/// [`persistent`](super::por::persistent) keeps fewer steps than are enabled, every step on
/// every path from it that avoids the kept steps is independent of each of them, and each kept
/// step stays possible along the way (explored exhaustively from each such state).
#[test]
fn persistent_sets_are_persistent() {
    use super::fingerprint::fingerprint;
    use super::por::{independent, persistent};
    use std::collections::BTreeSet;
    let mut reduced_states = 0;
    let mut paths_steps = 0;
    for scenario in [scenario(3, 2, 0), with_stalls(2, 3, 1, 1), hostile(2, 2, 0), {
        let mut piped = pipelining(2, 2, 0);
        piped.bounds.stalls = 0;
        piped
    }] {
        let identity: Vec<Vec<u8>> = vec![(0..scenario.bounds.users as u8).collect()];
        let print = |world: &super::driver::State| fingerprint(world, &identity, &mut Vec::new());
        let root = scenario.world();
        let mut states = BTreeSet::from([print(&root)]);
        let (mut layer, mut steps, mut kept) = (vec![root], Vec::new(), Vec::new());
        while !layer.is_empty() {
            let mut next = Vec::new();
            for world in &layer {
                world.enabled(&scenario.bounds, &mut steps);
                kept.clone_from(&steps);
                persistent(world, &scenario.bounds, &mut kept);
                assert!(kept.is_empty() == steps.is_empty(), "{steps:?}");
                if kept.len() < steps.len() {
                    reduced_states += 1;
                    // Every path from `world` that avoids `kept`.
                    let mut avoiding = vec![world.clone()];
                    let mut visited = BTreeSet::from([print(world)]);
                    let mut others = Vec::new();
                    while let Some(at) = avoiding.pop() {
                        for &p in &kept {
                            assert!(at.possible(p), "{p} disabled on a path avoiding {kept:?}");
                        }
                        at.enabled(&scenario.bounds, &mut others);
                        for &t in others.iter().filter(|t| !kept.contains(t)) {
                            paths_steps += 1;
                            for &p in &kept {
                                assert!(independent(t, p), "{t} depends on {p} (kept {kept:?})");
                            }
                            let mut child = at.clone();
                            child.step(t).expect("no bug planted");
                            if visited.insert(print(&child)) {
                                avoiding.push(child);
                            }
                        }
                    }
                }
                for &step in &steps {
                    let mut child = world.clone();
                    child.step(step).expect("no bug planted");
                    if states.insert(print(&child)) {
                        next.push(child);
                    }
                }
            }
            layer = next;
        }
    }
    // Few: the sets are smaller only where every user outside them has spent its operations
    // (one with operations left may send to any user), which these small scenarios rarely reach.
    assert!(reduced_states >= 2 && paths_steps >= 2, "{reduced_states} {paths_steps}");
}

/// Persistent sets keep what matters: on small scenarios, the search that runs only the steps
/// they keep reaches every state where nothing more can happen that the full search reaches,
/// and sees every step with every view its users can have after it (and every violation) that
/// the full search sees; and it runs fewer transitions. (It reaches as many states here: the
/// states it skips are reached on other paths, see the README's figures.)
#[test]
fn persistent_sets_keep_every_end_and_every_observation() {
    let mut fewer = false;
    for scenario in
        [scenario(3, 2, 0), with_stalls(2, 3, 1, 1), hostile(2, 2, 1), scenario(2, 4, 0)]
    {
        let (full, reduced) = (walk(&scenario, false), walk(&scenario, true));
        let what = format!("{:?}", scenario.bounds);
        assert_eq!(full.terminal, reduced.terminal, "{what}");
        let missed: Vec<_> = full.seen.difference(&reduced.seen).take(3).collect();
        assert!(missed.is_empty(), "{what}: {missed:?}");
        assert!(reduced.states.is_subset(&full.states), "{what}");
        assert!(reduced.transitions <= full.transitions, "{what}");
        fewer |= reduced.transitions < full.transitions;
    }
    assert!(fewer, "the reduction skips something");
}

/// Every planted bug the checker can see is found with persistent sets (with subsumption too)
/// as without either, with a counterexample of the same length (a shortest one: the search
/// that found it deeper is run again without the reduction, bounded to its depth), whatever the
/// number of jobs; and the shipped core passes.
#[test]
fn persistent_sets_find_every_planted_bug_at_the_same_length() {
    let shipped = [(Planted::None, 3, 2, 1, 1), (Planted::None, 2, 4, 0, 0)];
    let mut found = 0;
    for (bug, users, ops, faults, stalls) in PLANTED_FOR_REDUCTIONS.into_iter().chain(shipped) {
        let mut full = with_stalls(users, ops, faults, stalls);
        full.bounds.tickets = true;
        full.bounds.intruders = true;
        full.config.planted = bug;
        let mut reduced = full.clone();
        reduced.persistent = true;
        let mut both = reduced.clone();
        both.subsume = true;
        let length = |report: &Report| report.counterexample.as_ref().map(|c| c.steps.len());
        let without = run(&full, 1);
        let what = format!("{bug:?} in {users}/{ops}/{faults}/{stalls}");
        for reduced in [reduced, both] {
            let with = run(&reduced, 1);
            let two = run(&reduced, 2);
            assert_eq!(with.progress, two.progress, "{what}");
            assert_eq!(with.counterexample, two.counterexample, "{what}");
            assert_eq!(length(&with), length(&without), "{what}");
            assert!(with.progress.unique <= without.progress.unique, "{what}");
            assert_eq!(with.shortest_rerun.is_some(), with.counterexample.is_some(), "{what}");
            if bug == Planted::None {
                assert!(with.complete && with.counterexample.is_none(), "{what}");
            }
        }
        found += usize::from(without.counterexample.is_some());
    }
    assert!(found >= 8, "{found}");
}

/// A search bounded in depth expands nothing at that depth: it finds the states up to it,
/// reports itself incomplete when states were left, and finds no violation deeper.
#[test]
fn a_search_bounded_in_depth_stops_there() {
    let mut bounded = scenario(2, 2, 0);
    let full = run(&bounded, 1);
    bounded.depth_max = Some(2);
    let report = run(&bounded, 1);
    assert!(!report.complete);
    assert_eq!(report.layers, full.layers[..3], "{:?}", full.layers);
    let mut planted = scenario(2, 3, 0);
    planted.config.planted = Planted::DeleteKeepsQueue;
    let at = run(&planted, 1).counterexample.expect("found").steps.len();
    planted.depth_max = Some(at - 1);
    assert!(run(&planted, 1).counterexample.is_none());
    planted.depth_max = Some(at);
    assert_eq!(run(&planted, 1).counterexample.map(|c| c.steps.len()), Some(at));
}

/// The census puts every state it counts in one phase of the disk, and a search with a stall
/// has states at every step of it: the phases add up to the states, and the table shows them.
#[test]
fn the_census_counts_each_state_in_one_phase_of_the_disk() {
    use super::census::Census;
    let search = with_stalls(2, 2, 1, 1);
    let census = Census::new(super::fingerprint::permutations(2));
    let observe = |depth: usize, world: &super::driver::State| census.observe(depth, world);
    let limits = Limits { states_max: u64::MAX, jobs: 1 };
    let no_stop = &mut |_: &super::explorer::Progress| ControlFlow::Continue(());
    let report = super::explorer::explore_observed(&search, limits, no_stop, Some(&observe));
    assert!(report.complete);
    let table = census.table();
    let count = |phase: &str| -> u64 {
        let line = table.lines().find(|l| l.trim_start().starts_with(phase));
        let line = line.unwrap_or_else(|| panic!("no {phase:?} in\n{table}"));
        line[phase.len() + 4..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let phases = ["keeping up", "stalled, nothing held", "stall step 1", "stall step 2"];
    let counted: u64 = phases.iter().map(|p| count(p)).sum::<u64>() + count("stall step 3");
    let states: u64 =
        table.lines().next().unwrap().split_whitespace().nth(3).unwrap().parse().unwrap();
    assert_eq!(counted, states, "{table}");
}
