//! `chatroom strength`: how strong the harness is, measured by the bugs it must catch.
//!
//! Every planted bug (`core::planted::Planted::ALL`) is run against every checker
//! that can run inside this binary: the simulator (a sweep of seeds `0..N` in the worlds of
//! `sim::tests`, stopping at the first failing seed, whose run is then shrunk, and the shrunk
//! file replayed from its text: a replay that does not fail the same invariant is shown in the
//! row), the model checker (the bounds of `model::tests`, for the bugs its step alphabet can
//! reach) and the core driver of the fuzz targets (`fuzzing::CoreDriver`, for the two bugs its
//! checks name).
//! Checkers that cannot run here are listed with the command that runs them, never counted as
//! a catch: the loom models (they need a `--cfg loom` build: `.ci/loom`) and the core's unit
//! tests (`cargo test`).
//!
//! Planted bugs exist only in test builds and in builds with the `planted` cargo feature; a
//! default build's `chatroom strength` says so and exits 2. Exit 1 if some planted bug is caught
//! by none of the checkers run here and has no other checker listed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

/// `chatroom strength [--seeds N] [--jobs J] [--shrink-budget-s S] [--bug NAME]...`.
#[derive(Debug, Args)]
pub struct StrengthArgs {
    /// Seeds the simulator sweeps per bug (`0..N`); it stops at the first failing seed. The
    /// default is the swarm range `sim::tests` searches (a takeover racing an old relay's writer
    /// is won about once in a thousand seeds).
    #[arg(long, default_value_t = 2_000)]
    pub seeds: u64,
    /// Threads for the simulator's sweeps and the model checker.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Wall-time budget of each shrink, in seconds.
    #[arg(long, default_value_t = 60)]
    pub shrink_budget_s: u64,
    /// States the model checker may visit per bug before giving up.
    #[arg(long, default_value_t = 2_000_000)]
    pub model_states_max: u64,
    /// Only these planted bugs (by name, repeatable); all of them by default.
    #[arg(long = "bug")]
    pub bugs: Vec<String>,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl StrengthArgs {
    /// Runs the report: 0 every planted bug caught, 1 one escaped, 2 no planted bugs here.
    pub fn run(self) -> ExitCode {
        #[cfg(any(test, feature = "planted"))]
        {
            report::run(&self)
        }
        #[cfg(not(any(test, feature = "planted")))]
        {
            eprintln!(
                "chatroom strength: this build has no planted bugs (they never reach a default \
                 build); run it from the source tree with\n  \
                 cargo run --release --features planted -- strength"
            );
            ExitCode::from(2)
        }
    }
}

#[cfg(any(test, feature = "planted"))]
pub mod report {
    //! The checkers and the table (built only where planted bugs exist).

    use std::fmt::Write as _;
    use std::ops::ControlFlow;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use super::StrengthArgs;
    use crate::core::planted::Planted;
    use crate::core::Config;
    use crate::model::driver::{Bounds, STALL_STEPS_DEFAULT};
    use crate::model::explorer::{explore, Limits, Search};
    use crate::sim::cli::{replay_command, shrink_seed, stuck_exit, SEED_TIMEOUT_S_DEFAULT};
    use crate::sim::workload::Workload;
    use crate::sim::{
        run_scenario, shrink, sweep_watched, FaultMode, RunOptions, Scenario, Watchdog,
    };

    /// One line of the table.
    #[derive(Debug, Clone, PartialEq)]
    pub struct Row {
        pub bug: String,
        pub checker: String,
        pub found: Found,
        /// The invariant (or assertion) that reported it.
        pub invariant: String,
        /// Operations of the shrunk scenario (simulator), steps of the shortest
        /// counterexample (model checker).
        pub size: String,
        pub shrink_s: Option<f64>,
    }

    /// What a checker did with a bug.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Found {
        /// Caught; how much search it took (seeds, states, inputs).
        Caught(String),
        /// Run, and the bug escaped within the bounds given.
        Escaped(String),
        /// Not run by this command; how to run it.
        Elsewhere(String),
    }

    /// The simulator's worlds for `bug`: those of `sim::tests` (small, so that hundreds of
    /// seeds take seconds, except for one rare bug), in the crash-heavy mode for the bugs
    /// that need a crash at the right moment (right after an unsynced write; a power loss
    /// after a killed process's recovery).
    pub fn sim_options(bug: Planted) -> RunOptions {
        let faults = match bug {
            Planted::ReplayTornRecord
            | Planted::ReplyBeforeDurable
            | Planted::ReleaseOneEarly
            | Planted::RecoveryReadsUnsynced
            | Planted::SnapshotSegmentNameUnsynced
            | Planted::DurableBeforeSync
            | Planted::SyncedReportsLast
            | Planted::StopWhileSyncing => FaultMode::Crashes,
            _ => FaultMode::Swarm,
        };
        // The takeover this one needs while the old relay's writer still holds a push is rare
        // in small worlds: it is searched in worlds of the default size (as `sim::tests` does).
        if bug == Planted::PushBeforeOldRelayEnds {
            return RunOptions { faults, planted: bug, ..RunOptions::default() };
        }
        // A sweep while a returning storm's first check is hashed: the hostile workload's
        // worlds of the default size (as `sim::tests` searches it).
        if bug == Planted::ThrottleSweepsInFlight {
            let workload = Workload::Hostile;
            return RunOptions { faults, workload, planted: bug, ..RunOptions::default() };
        }
        RunOptions { faults, clients: 3, ops: 25, names: 4, planted: bug, ..RunOptions::default() }
    }

    /// The model checker's bounds for the bugs its plain steps can reach (as `model::tests`
    /// plants them); `None` for bugs outside that world: there password jobs finish within a
    /// step and the original client's bare handshake is allowed (the throttle bugs and the
    /// bare-relay default need [`model_hostile`]'s options), and the host's writers finish at
    /// once, with no thread (the host bugs, a push before the old relay ends) and no frame at
    /// a limit.
    pub fn model_bounds(bug: Planted) -> Option<Bounds> {
        let b = |users, ops, faults, tickets, intruders, stalls, pipeline| {
            let stall_steps = STALL_STEPS_DEFAULT;
            Some(Bounds { users, ops, faults, tickets, intruders, stalls, stall_steps, pipeline })
        };
        match bug {
            Planted::DeleteKeepsQueue => b(2, 3, 0, false, false, 0, 1),
            Planted::TakeoverLosesMessage | Planted::ListShowsDeleted => {
                b(2, 2, 0, false, false, 0, 1)
            }
            Planted::RequeueOutOfOrder => b(2, 3, 0, true, false, 0, 1),
            Planted::BindByNameOnly => b(2, 2, 0, false, true, 0, 1),
            Planted::DropOnDetach => b(2, 3, 1, true, false, 0, 1),
            Planted::ReplyBeforeDurable => b(2, 2, 0, false, false, 0, 1),
            Planted::ReplayTornRecord | Planted::ReleaseOneEarly => b(3, 3, 1, false, false, 1, 1),
            Planted::TicketReusable | Planted::AckAnyAccount => b(3, 3, 1, true, true, 1, 1),
            Planted::PipelineUnbounded => b(2, 2, 0, false, false, 1, 2),
            Planted::SendDoesNotPump => b(2, 3, 0, true, false, 0, 1),
            _ => None,
        }
    }

    /// The model checker's hostile options, for the bugs only they reach (as `model::tests`
    /// plants them): attackers' concurrent wrong-password logins against a throttle of one
    /// (`--throttle 1`), and hijackers' bare handshakes racing owners' ticketed relays
    /// (`--race`). Returns the bounds, the throttle and whether hijackers race.
    pub fn model_hostile(bug: Planted) -> Option<(Bounds, Option<u8>, bool)> {
        let bounds = |tickets| Bounds {
            users: 2,
            ops: 3,
            faults: 0,
            tickets,
            intruders: false,
            stalls: 0,
            stall_steps: STALL_STEPS_DEFAULT,
            pipeline: 1,
        };
        match bug {
            Planted::ThrottleCountedLate | Planted::ThrottleFreeOffByOne => {
                Some((bounds(false), Some(1), false))
            }
            Planted::BareRelayByDefault => Some((bounds(true), None, true)),
            _ => None,
        }
    }

    /// Unit tests that also plant the bug (run by `cargo test`).
    fn unit_tests(bug: Planted) -> &'static [&'static str] {
        match bug {
            Planted::ThrottleLocksOwner => &[
                "core::hardening_tests::an_attackers_failures_do_not_lock_the_owner_out_unless_keyed_by_name_only",
            ],
            Planted::RegistrationUnlimited => &[
                "core::hardening_tests::a_burst_of_registrations_from_one_address_is_limited_unless_counted_late",
            ],
            Planted::EmptyTextAccepted => {
                &["core::hardening_tests::empty_texts_are_refused_unless_planted"]
            }
            // The outside tester's pass: rules the simulator's clients never put to the test.
            Planted::CloseKeepsSession => &[
                "core::rules_tests::closing_the_command_connection_logs_the_session_out_unless_planted",
            ],
            Planted::FrameDeadlineRearmed => &[
                "core::rules_tests::a_frame_dribbled_byte_by_byte_times_out_from_its_start_unless_planted",
            ],
            Planted::ListPatternLimitExclusive => &[
                "core::rules_tests::a_list_pattern_exactly_at_the_limit_is_served_unless_planted",
            ],
            Planted::PasswordLimitExclusive => &[
                "core::rules_tests::a_password_of_exactly_128_bytes_is_accepted_unless_planted",
            ],
            Planted::ThrottleSuccessClearsAddress => &[
                "core::rules_tests::a_right_password_does_not_excuse_an_addresss_wrong_ones_unless_planted",
            ],
            Planted::LoginDeadlineRearmed => {
                &["core::rules_tests::requests_do_not_extend_the_login_deadline_unless_planted"]
            }
            Planted::WrittenDoesNotPump => &[
                "core::rules_tests::a_bare_relay_gets_a_backlog_larger_than_its_window_unless_planted",
            ],
            Planted::AbandonedCheckKeepsSlot => &[
                "core::rules_tests::a_check_abandoned_by_a_dropped_connection_gives_its_slot_back_unless_planted",
            ],
            // The outside tester's second pass: limits at their bound, logout, relay deadlines,
            // the bare handshake's window, salts and snapshots.
            Planted::QueueOneOverBound => {
                &["core::rules_tests::a_queue_holds_exactly_its_bound_unless_planted"]
            }
            Planted::AccountsOneOverCap => {
                &["core::rules_tests::accounts_stop_exactly_at_their_limit_unless_planted"]
            }
            Planted::SaltNotDrawn => {
                &["core::rules_tests::every_account_gets_its_own_salt_unless_planted"]
            }
            Planted::RelayKeepsHandshakeDeadline => &[
                "core::rules_tests::a_bound_relay_outlives_the_handshake_deadline_unless_planted",
            ],
            Planted::BareRelayAnyTime => &[
                "core::rules_tests::a_bare_handshake_long_after_the_login_is_refused_unless_planted",
            ],
            Planted::LogoutArmsNoDeadline => &[
                "core::rules_tests::a_logged_out_connection_must_log_in_again_within_the_deadline_unless_planted",
            ],
            Planted::BareRefusalFramed => {
                &["core::rules_tests::a_refused_bare_handshake_is_simply_closed_unless_planted"]
            }
            // The third pass: a ticket at the millisecond it expires.
            Planted::TicketBindsAtExpiry => &[
                "core::rules_tests::a_ticket_binds_until_its_expiry_and_not_at_it_unless_planted",
            ],
            Planted::ListReplyOneByteShort => &[
                "core::rules_tests::a_list_reply_exactly_at_its_byte_bound_is_served_whole_unless_planted",
            ],
            Planted::ThrottleBackoffUncapped => &[
                "core::rules_tests::the_wait_after_failed_logins_never_exceeds_its_cap_unless_planted",
            ],
            Planted::ThrottleSweepsInFlight => &[
                "core::throttle::tests::a_sweep_keeps_a_key_with_checks_in_flight_unless_planted",
            ],
            Planted::SendDoesNotPump => &[
                "core::rules_tests::an_online_recipient_gets_a_message_at_once_unless_planted",
            ],
            // The fourth pass: the password hasher.
            Planted::HashSaltIgnored => {
                &["auth::tests::a_hash_uses_the_salt_the_core_drew_unless_planted"]
            }
            Planted::HashCostIgnored => {
                &["auth::tests::a_hash_has_the_configured_cost_unless_planted"]
            }
            Planted::DummyHashCheapest => {
                &["auth::tests::an_unknown_name_costs_what_a_stored_hash_costs_unless_planted"]
            }
            Planted::RecoveryForgetsLogSize => &[
                "store::wal::tests::a_restart_remembers_the_log_bytes_since_the_snapshot_unless_planted",
            ],
            Planted::SnapshotFreesFirstCovered => &[
                "store::snapshotting::tests::a_snapshot_done_leaves_no_file_it_covers_unless_planted",
            ],
            Planted::SnapshotSegmentNameUnsynced => &[
                "store::wal::tests::records_synced_while_a_snapshot_is_written_survive_a_crash_before_it_is_in_place_unless_planted",
            ],
            Planted::DeadlineFlagInSeconds => {
                &["net::cli::tests::every_flag_reaches_the_server_config_unless_planted"]
            }
            Planted::TicketEvictsNewest => {
                &["core::rules_tests::a_new_ticket_replaces_the_oldest_unless_planted"]
            }
            Planted::TicketOldestByExpiry => &[
                "core::rules_tests::tickets_issued_in_one_millisecond_are_forgotten_oldest_first_unless_planted",
            ],
            // The fifth pass: limits at their exact bound, timers and the sweep.
            Planted::PushWindowOneOver => &[
                "core::rules_tests::an_acking_relay_has_exactly_its_window_in_flight_unless_planted",
            ],
            Planted::BareWindowExclusive => &[
                "core::rules_tests::a_bare_handshake_at_the_end_of_its_window_binds_unless_planted",
            ],
            Planted::TimersFireLate => &[
                "core::rules_tests::a_connection_is_closed_exactly_at_its_login_deadline_unless_planted",
            ],
            Planted::SweepNotRearmed => &[
                "core::rules_tests::the_sweep_forgets_everything_that_lapsed_unless_planted",
            ],
            Planted::PipelineOneOver => &[
                "core::rules_tests::a_pipeline_decodes_exactly_its_bound_ahead_unless_planted",
            ],
            Planted::InboundBoundExclusive => &[
                "core::rules_tests::a_connection_may_buffer_exactly_its_inbound_bound_unless_planted",
            ],
            Planted::SnapshotLowercasesNames => &[
                "core::rules_tests::a_server_recovered_from_its_snapshot_is_the_same_server_unless_planted",
            ],
            // The sixth pass: the TCP adapter's own decisions, against a server on loopback.
            Planted::RelayPartialWriteUnreported => &[
                "net::tests::a_relay_cut_off_mid_batch_by_the_write_timeout_gets_each_message_once_unless_planted",
            ],
            Planted::RelayReaderNotRearmed => &[
                "net::tests::a_burst_of_acknowledgements_longer_than_a_turn_is_read_to_its_end_unless_planted",
            ],
            Planted::CommandWriteFailureIgnored => {
                &["net::tests::a_client_that_never_reads_its_replies_is_closed_unless_planted"]
            }
            Planted::HashSlotNotHandedOn => &[
                "net::tests::logins_beyond_the_hashing_slots_all_finish_even_when_some_are_abandoned_unless_planted",
            ],
            Planted::TimerMissesEarlierDeadline => &[
                "net::tests::an_earlier_deadline_wakes_a_timer_asleep_until_a_later_one_unless_planted",
            ],
            Planted::FrameDeadlineSpansFrames => &[
                "core::rules_tests::a_client_whose_reads_end_inside_frames_is_not_timed_out_while_they_complete_unless_planted",
                "core::rules_tests::whole_frames_held_back_by_the_pipeline_bound_run_no_frame_deadline_unless_planted",
                "core::rules_tests::part_of_a_frame_behind_a_full_pipeline_runs_no_frame_deadline_unless_planted",
            ],
            Planted::FrameFlagKeepsInboundBound => &[
                "net::cli::tests::a_raised_frame_len_max_buffers_one_whole_request_unless_planted",
            ],
            Planted::InboundBoundWithoutRead => &[
                "net::cli::tests::a_raised_frame_len_max_buffers_a_request_and_a_read_unless_planted",
            ],
            _ => &[],
        }
    }

    /// The loom models' planted bugs (in `host::mailbox`, the log's sync thread `store::syncer`
    /// and the log writer's queue `store::queue`, compiled only under `cfg(loom)`), with the
    /// tests of `.ci/loom` that must find them.
    const LOOM: [(&str, &str); 7] = [
        (
            "mailbox PushCheckThenAct",
            "loom_mailbox::planted_push_check_then_act_is_found, \
             loom_glue::planted_push_check_then_act_is_found_through_the_glue",
        ),
        (
            "mailbox NotifyBeforeEnqueue",
            "loom_mailbox::planted_notify_before_enqueue_is_found, \
             loom_glue::planted_notify_before_enqueue_is_found_through_the_glue",
        ),
        ("mailbox WaitersReadUnlocked", "loom_mailbox::planted_waiters_read_unlocked_is_found"),
        ("mailbox DeferredWakeNotOwed", "loom_mailbox::planted_deferred_wake_not_owed_is_found"),
        (
            "sync thread StopBeforeRequest",
            "loom_mailbox::planted_sync_stop_before_request_is_found",
        ),
        (
            "writer queue UrgentWaitsForRoom",
            "loom_mailbox::planted_commit_queue_urgent_waits_for_room_is_found",
        ),
        (
            "writer queue TakeForgetsRoom",
            "loom_mailbox::planted_commit_queue_take_forgets_room_is_found",
        ),
    ];

    /// Runs the report and prints the table; the exit code says whether a bug escaped.
    pub fn run(args: &StrengthArgs) -> ExitCode {
        let mut bugs = Vec::new();
        for name in &args.bugs {
            match Planted::from_name(name).filter(|&b| b != Planted::None) {
                Some(bug) => bugs.push(bug),
                None => {
                    eprintln!("chatroom strength: no planted bug {name:?}");
                    return ExitCode::from(2);
                }
            }
        }
        if bugs.is_empty() {
            bugs = Planted::ALL.to_vec();
        }
        let started = Instant::now();
        let mut rows = Vec::new();
        for &bug in &bugs {
            rows.extend(check_bug(bug, args));
        }
        if args.bugs.is_empty() {
            for (bug, tests) in LOOM {
                let command = format!("bash .ci/loom ({tests})");
                rows.push(elsewhere(bug, "loom", command));
            }
        }
        let escaped = escaped(&bugs, &rows);
        let table = table(&rows);
        print!("{table}");
        println!("{}", summary(&rows, &escaped, started.elapsed().as_secs_f64()));
        if let Some(path) = &args.out {
            if let Err(e) = std::fs::write(path, &table) {
                eprintln!("chatroom strength: cannot write {}: {e}", path.display());
                return ExitCode::from(2);
            }
        }
        if escaped.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }

    fn elsewhere(bug: &str, checker: &str, how: String) -> Row {
        let (invariant, size) = ("-".into(), "-".into());
        let found = Found::Elsewhere(how);
        Row { bug: bug.into(), checker: checker.into(), found, invariant, size, shrink_s: None }
    }

    /// Every checker this binary runs against `bug`, plus the ones it only names.
    pub fn check_bug(bug: Planted, args: &StrengthArgs) -> Vec<Row> {
        eprintln!("strength: {}", bug.name());
        let mut rows = vec![simulator(bug, args)];
        if let Some(bounds) = model_bounds(bug) {
            rows.push(model(bug, Search::new(bounds), args));
        }
        if let Some((bounds, throttle, race)) = model_hostile(bug) {
            let mut search = Search::new(bounds);
            (search.throttle, search.race) = (throttle, race);
            rows.push(model(bug, search, args));
        }
        if let Some(row) = core_driver(bug) {
            rows.push(row);
        }
        for test in unit_tests(bug) {
            rows.push(elsewhere(&bug.name(), "unit test", format!("cargo test --lib {test}")));
        }
        rows
    }

    /// The first failing seed of `0..seeds` (in batches of a few seeds per thread, so that
    /// the sweep stops soon after it), then its shrink.
    fn simulator(bug: Planted, args: &StrengthArgs) -> Row {
        let opts = sim_options(bug);
        let batch = 8 * args.jobs.max(1) as u64;
        let mut first = None;
        let mut start = 0;
        while start < args.seeds && first.is_none() {
            let seeds: Vec<u64> = (start..(start + batch).min(args.seeds)).collect();
            let on_stuck = |seed, ran| stuck_exit(&replay_command(seed, &opts), ran);
            let watchdog = Watchdog {
                after: Duration::from_secs(SEED_TIMEOUT_S_DEFAULT),
                on_stuck: &on_stuck,
            };
            let report = sweep_watched(&seeds, &opts, args.jobs, false, &|| {}, Some(watchdog));
            first = report.failures.into_iter().next();
            start += batch;
        }
        let checker = match opts.workload {
            Workload::Mixed => format!("simulator ({} faults)", opts.faults),
            workload => format!("simulator ({} faults, {workload} workload)", opts.faults),
        };
        let mut row = Row {
            bug: bug.name(),
            checker,
            found: Found::Escaped(format!("not in {} seeds", args.seeds)),
            invariant: "-".into(),
            size: "-".into(),
            shrink_s: None,
        };
        let Some(outcome) = first else { return row };
        let violation = outcome.violation.expect("failures have a violation");
        row.found = Found::Caught(format!("seed {} ({} seeds)", outcome.seed, outcome.seed + 1));
        row.invariant = violation.invariant.to_string();
        match shrink_seed(outcome.seed, &opts, args.shrink_budget_s, false) {
            Ok(timed) => {
                let s = &timed.shrunk;
                let (ops, faults) = (shrink::ops(&s.scenario), shrink::faults(&s.scenario));
                let cut = if s.complete { "" } else { ", budget spent" };
                row.size = format!("{} -> {ops} ops, {faults} faults{cut}", s.ops_before);
                row.shrink_s = Some(timed.wall_s);
                // The shrunk file, replayed from its text as `chatroom sim --replay` would:
                // it must fail the invariant the seed failed.
                let replayed = s.scenario.to_string().parse::<Scenario>().map(|scenario| {
                    run_scenario(&scenario, &RunOptions::default()).violation.map(|v| v.invariant)
                });
                if replayed != Ok(Some(violation.invariant)) {
                    let got = replayed.map_or_else(|e| e.to_string(), |v| format!("{v:?}"));
                    row.size.push_str(&format!(", but its replay fails {got}"));
                }
            }
            Err(e) => row.size = format!("not shrunk: {e}"),
        }
        row
    }

    fn model(bug: Planted, mut search: Search, args: &StrengthArgs) -> Row {
        search.config.planted = bug;
        let limits = Limits { states_max: args.model_states_max, jobs: args.jobs.max(1) };
        let report = explore(&search, limits, &mut |_| ControlFlow::Continue(()));
        let b = &search.bounds;
        let mut checker = format!("model checker ({}u/{}op/{}f", b.users, b.ops, b.faults);
        checker.push_str(if b.tickets { "/tickets" } else { "" });
        checker.push_str(if b.intruders { "/intruders" } else { "" });
        if let Some(n) = search.throttle {
            checker.push_str(&format!("/throttle {n}"));
        }
        checker.push_str(if search.race { "/race" } else { "" });
        checker.push(')');
        let states = report.progress.unique;
        let (found, invariant, size) = match &report.counterexample {
            Some(c) => (
                Found::Caught(format!("{states} states")),
                c.violation.invariant.name().to_owned(),
                format!("{} steps (shortest)", c.steps.len()),
            ),
            None if report.complete => {
                (Found::Escaped(format!("all {states} states")), "-".into(), "-".into())
            }
            None => (Found::Escaped(format!("{states} states, cut")), "-".into(), "-".into()),
        };
        Row { bug: bug.name(), checker, found, invariant, size, shrink_s: None }
    }

    /// The fuzz targets' `CoreDriver`, for the two bugs its own checks name (as its unit
    /// tests plant them): an unbounded inbound buffer, an acknowledgement before durability.
    fn core_driver(bug: Planted) -> Option<Row> {
        let config = Config { planted: bug, ..Config::default() };
        let input: fn(Config) = match bug {
            Planted::InboundUnbounded => crate::fuzzing::probe_inbound_flood,
            Planted::ReplyBeforeDurable => crate::fuzzing::probe_send_while_not_durable,
            _ => return None,
        };
        let message = panic_message(|| input(config));
        let (found, invariant) = match message {
            Some(message) => (Found::Caught("1 input".into()), message),
            None => (Found::Escaped("its input".into()), "-".into()),
        };
        let (checker, size) = ("core driver (fuzz)".into(), "-".into());
        Some(Row { bug: bug.name(), checker, found, invariant, size, shrink_s: None })
    }

    /// The first line of the panic `f` raised (the driver's check that failed), if it did,
    /// without printing it.
    fn panic_message(f: impl FnOnce()) -> Option<String> {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = catch_unwind(AssertUnwindSafe(f));
        std::panic::set_hook(hook);
        let payload = result.err()?;
        let text = (payload.downcast_ref::<String>().cloned())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        Some(text.lines().next().unwrap_or_default().chars().take(80).collect())
    }

    /// The bugs no checker run here caught and no other checker is listed for.
    pub fn escaped(bugs: &[Planted], rows: &[Row]) -> Vec<String> {
        let covered = |bug: &str| {
            rows.iter()
                .any(|r| r.bug == bug && matches!(r.found, Found::Caught(_) | Found::Elsewhere(_)))
        };
        bugs.iter().map(|b| b.name()).filter(|b| !covered(b)).collect()
    }

    /// The table, in Markdown.
    pub fn table(rows: &[Row]) -> String {
        let mut out = String::from(
            "| bug | checker | first detection | invariant | shrunk size | shrink time |\n\
             | --- | --- | --- | --- | --- | --- |\n",
        );
        for r in rows {
            let found = match &r.found {
                Found::Caught(how) => how.clone(),
                Found::Escaped(how) => format!("**escaped** ({how})"),
                Found::Elsewhere(how) => format!("not run here: {how}"),
            };
            let time = r.shrink_s.map_or("-".into(), |s| format!("{s:.2} s"));
            let line = [&r.bug, &r.checker, &found, &r.invariant, &r.size, &time];
            let cells: Vec<String> = line.iter().map(|c| c.replace('|', "/")).collect();
            writeln!(out, "| {} |", cells.join(" | ")).expect("writing to a String");
        }
        out
    }

    /// Totals, the shrink times (median and worst) and the verdict.
    pub fn summary(rows: &[Row], escaped: &[String], wall_s: f64) -> String {
        let mut times: Vec<f64> = rows.iter().filter_map(|r| r.shrink_s).collect();
        times.sort_by(f64::total_cmp);
        let caught = rows.iter().filter(|r| matches!(r.found, Found::Caught(_))).count();
        let mut out = format!("checkers run: {caught} catches; wall time {wall_s:.1} s\n");
        if let (Some(worst), false) = (times.last(), times.is_empty()) {
            let median = times[times.len() / 2];
            writeln!(
                out,
                "shrink time over {} bugs: median {median:.2} s, worst {worst:.2} s",
                times.len()
            )
            .expect("writing to a String");
        }
        if escaped.is_empty() {
            out.push_str("result: every planted bug is caught");
        } else {
            write!(out, "result: ESCAPED: {}", escaped.join(", ")).expect("writing to a String");
        }
        out
    }
}

#[cfg(test)]
mod tests;
