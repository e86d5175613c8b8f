//! loom models of the shipped command/relay thread pair: the real core behind the real
//! `Shared`, the real command and relay thread bodies, over in-memory sockets
//! (`chatroom::net::loom_models`).
//!
//! Run with `.ci/loom`. Each model asserts, in every interleaving loom explores: no accepted
//! message lost, none delivered twice (on one relay, or once written and again from the core's
//! queue), none written after the relay's closing notice or to another account's relay, no
//! deadlock and no thread left blocked (all joined), no leak (loom's `Arc` check), every socket
//! shut down. The planted-bug tests run the same models with a broken mailbox under the relay
//! and assert that loom finds the bug through the glue.
#![cfg(loom)]

mod loom_support;

use std::sync::Arc;

use chatroom::host::mailbox::PlantedBug;
use chatroom::net::loom_models::{self as models, Fixture, Racer};
use loom_support::{check, check_finds_bug, Bound, Expect};

/// Preemption bound of these models unless `LOOM_MAX_PREEMPTIONS` says otherwise. Every
/// execution runs the whole core, so they cost more than the mailbox's; 2 preemptions keep
/// `.ci/loom` within its budget and already reach every bug planted or found so far (the lost
/// `Written` report needs one).
const GLUE_PREEMPTIONS_MAX_DEFAULT: usize = 2;

/// The password hash is built once per test, outside loom.
fn fixture() -> Arc<Fixture> {
    Arc::new(Fixture::new())
}

#[test]
fn push_racing_close() {
    let fixture = fixture();
    check("glue: push_racing_close", Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT), move || {
        models::push_racing_close(&fixture, None)
    });
}

/// Regression: the relay reader reported the close before the writer reported what it wrote.
#[test]
fn relay_hangup_mid_write() {
    let fixture = fixture();
    check("glue: relay_hangup_mid_write", Bound::Exhaustive, move || {
        models::relay_hangup_mid_write(&fixture)
    });
}

#[test]
fn send_wakes_blocked_relay() {
    let fixture = fixture();
    check(
        "glue: send_wakes_blocked_relay",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::send_wakes_blocked_relay(&fixture, None),
    );
}

/// The log writer's durability report, which never waits for the core's lock, racing the
/// command and relay threads that hold it.
#[test]
fn durable_report_racing_send() {
    let fixture = fixture();
    check(
        "glue: durable_report_racing_send",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::durable_report_racing_send(&fixture),
    );
}

/// The durability report writing m1 straight to bob's idle (ticketed) relay.
#[test]
fn durable_report_writes_through() {
    let fixture = fixture();
    check(
        "glue: durable_report_writes_through",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::durable_report_writes_through(&fixture, false),
    );
}

/// The same while bob's client resets the relay.
#[test]
fn durable_report_writes_through_racing_reset() {
    let fixture = fixture();
    check(
        "glue: durable_report_writes_through_racing_reset",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::durable_report_writes_through(&fixture, true),
    );
}

/// A pipelined request read ahead of the reply its predecessor waits for, racing the command
/// thread's own reads and the durability reports.
#[test]
fn read_ahead_racing_reply() {
    let fixture = fixture();
    check(
        "glue: read_ahead_racing_reply",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::read_ahead_racing_reply(&fixture),
    );
}

fn mid_write(racer: Racer, two_messages: bool) {
    let fixture = fixture();
    let name =
        format!("glue: relay_mid_write_racing {racer:?} ({} queued)", 1 + two_messages as u8);
    check(&name, Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT), move || {
        models::relay_mid_write_racing(&fixture, racer, two_messages)
    });
}

#[test]
fn relay_mid_write_racing_logout() {
    mid_write(Racer::Logout, false);
}

#[test]
fn relay_mid_write_racing_takeover() {
    mid_write(Racer::Takeover, false);
}

#[test]
fn relay_mid_write_racing_takeover_two_queued() {
    mid_write(Racer::Takeover, true);
}

#[test]
fn relay_mid_write_racing_delete() {
    mid_write(Racer::Delete, false);
}

#[test]
fn relay_mid_write_racing_disconnect() {
    mid_write(Racer::Disconnect, false);
}

#[test]
fn ack_racing_redelivery() {
    let fixture = fixture();
    check(
        "glue: ack_racing_redelivery",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::ack_racing_redelivery(&fixture),
    );
}

#[test]
fn shutdown_with_threads_blocked() {
    let fixture = fixture();
    check(
        "glue: shutdown_with_threads_blocked",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        move || models::shutdown_with_threads_blocked(&fixture),
    );
}

#[test]
fn planted_push_check_then_act_is_found_through_the_glue() {
    let fixture = fixture();
    check_finds_bug(
        "glue: push_racing_close + PushCheckThenAct",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        Expect::Assertion("item(s) stranded in a closed relay's mailbox"),
        move || models::push_racing_close(&fixture, Some(PlantedBug::PushCheckThenAct)),
    );
}

#[test]
fn planted_notify_before_enqueue_is_found_through_the_glue() {
    let fixture = fixture();
    check_finds_bug(
        "glue: send_wakes_blocked_relay + NotifyBeforeEnqueue",
        Bound::FromEnvOr(GLUE_PREEMPTIONS_MAX_DEFAULT),
        // Threads: the main one (bob's client), the command thread (1, done once alice's
        // client hung up), the relay writer (2, waiting in its mailbox) and reader (3).
        Expect::LostWakeup { waiting: 2, done: 1 },
        move || models::send_wakes_blocked_relay(&fixture, Some(PlantedBug::NotifyBeforeEnqueue)),
    );
}
