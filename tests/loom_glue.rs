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

use chatroom::net::loom_models::{self as models, Fixture, Racer};
use chatroom::net::mailbox::PlantedBug;
use loom_support::{check, check_finds_bug, Bound};

/// The password hash is built once per test, outside loom.
fn fixture() -> Arc<Fixture> {
    Arc::new(Fixture::new())
}

#[test]
fn push_racing_close() {
    let fixture = fixture();
    check("glue: push_racing_close", Bound::FromEnv, move || {
        models::push_racing_close(&fixture, None)
    });
}

#[test]
fn send_wakes_blocked_relay() {
    let fixture = fixture();
    check("glue: send_wakes_blocked_relay", Bound::FromEnv, move || {
        models::send_wakes_blocked_relay(&fixture, None)
    });
}

fn mid_write(racer: Racer, two_messages: bool) {
    let fixture = fixture();
    let name =
        format!("glue: relay_mid_write_racing {racer:?} ({} queued)", 1 + two_messages as u8);
    check(&name, Bound::FromEnv, move || {
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
    check("glue: ack_racing_redelivery", Bound::FromEnv, move || {
        models::ack_racing_redelivery(&fixture)
    });
}

#[test]
fn shutdown_with_threads_blocked() {
    let fixture = fixture();
    check("glue: shutdown_with_threads_blocked", Bound::FromEnv, move || {
        models::shutdown_with_threads_blocked(&fixture)
    });
}

#[test]
fn planted_push_check_then_act_is_found_through_the_glue() {
    let fixture = fixture();
    check_finds_bug(
        "glue: push_racing_close + PushCheckThenAct",
        Bound::FromEnv,
        "stranded",
        move || models::push_racing_close(&fixture, Some(PlantedBug::PushCheckThenAct)),
    );
}

#[test]
fn planted_notify_before_enqueue_is_found_through_the_glue() {
    let fixture = fixture();
    check_finds_bug(
        "glue: send_wakes_blocked_relay + NotifyBeforeEnqueue",
        Bound::FromEnv,
        "deadlock",
        move || models::send_wakes_blocked_relay(&fixture, Some(PlantedBug::NotifyBeforeEnqueue)),
    );
}
