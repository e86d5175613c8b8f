//! The models: each builds a small world, starts the shipped thread bodies, joins every thread
//! (loom reports any left blocked as a deadlock), and checks what the clients received against
//! what the core still holds.
//!
//! The delivery rule checked for the original client's relay (bare handshake, "written counts
//! as delivered"): an accepted message is written on the relay exactly once and then no longer
//! queued, or not written and still queued for the next relay. Written *and* still queued means
//! the next relay would deliver it a second time; neither means it was lost.

use super::memsocket::frame_bodies;
use super::rig::{Endpoint, Fixture, LeakOnPanic, LogQueue, Rig};
use crate::core::Channel;
use crate::host::mailbox::{PlantedBug, Taken};
use crate::host::sync::thread::{self, JoinHandle};

/// The message texts of the pushes among `frames` (bodies as a client decodes them), in order.
/// Asserts that no push follows a failure frame: a failure is the last word before a close.
fn pushes(frames: &[String]) -> Vec<String> {
    let mut texts = Vec::new();
    let mut failed = None;
    for frame in frames {
        let text = if let Some(plain) = frame.strip_prefix("0\n") {
            plain.split_once(':').expect("a plain push is SENDER:TEXT").1
        } else if let Some(acked) = frame.strip_prefix("7\n") {
            acked.rsplit('\n').next().expect("an acked push ends with its text")
        } else {
            assert!(frame.starts_with("-1\n"), "unexpected frame {frame:?} on a relay");
            failed = Some(frame);
            continue;
        };
        assert!(failed.is_none(), "push {text:?} written after the closing notice {failed:?}");
        texts.push(text.to_owned());
    }
    texts
}

/// The relay's pushes, each message at most once.
fn pushes_once(relay: &Endpoint) -> Vec<String> {
    let texts = pushes(&relay.client.received());
    for text in &texts {
        let count = texts.iter().filter(|t| *t == text).count();
        assert_eq!(count, 1, "message {text:?} written {count} times on one relay: {texts:?}");
    }
    texts
}

/// The delivery rule of the module docs, for each of `messages`.
fn assert_written_xor_queued(messages: &[&str], written: &[String], queued: &[String]) {
    for message in messages {
        let was_written = written.iter().any(|w| w == message);
        let is_queued = queued.iter().any(|q| q == message);
        assert!(
            !(was_written && is_queued),
            "message {message:?} written on the relay and still queued: the next relay would \
             deliver it twice (written {written:?}, queued {queued:?})"
        );
        assert!(
            was_written || is_queued,
            "message {message:?} lost: neither written nor queued (written {written:?})"
        );
    }
}

/// After the relay's threads ended through the mailbox's close, nothing may be left in it: an
/// item found here was accepted after the writer saw `Closed`, and stranded.
fn assert_nothing_stranded(relay: &Endpoint) {
    let mut late = Vec::new();
    let taken = relay.mailbox.try_take_all(&mut late);
    assert!(late.is_empty(), "{} item(s) stranded in a closed relay's mailbox", late.len());
    assert_eq!(taken, Taken::Closed, "the relay's mailbox was never closed");
}

fn join_all(threads: impl IntoIterator<Item = JoinHandle<()>>) {
    for thread in threads {
        thread.join().expect("a connection thread panicked");
    }
}

/// Asserts that every connection thread shut its socket down.
fn assert_shut_down(endpoints: &[&Endpoint]) {
    for endpoint in endpoints {
        assert!(endpoint.client.is_shut_down(), "{:?} left its socket open", endpoint.conn);
    }
}

/// alice and bob logged in, bob with a relay (ticketed or bare), `bug` planted in its mailbox.
fn alice_and_bob(
    world: &mut Rig<'_>,
    ticketed: bool,
    bug: Option<PlantedBug>,
) -> (Endpoint, Endpoint, Endpoint) {
    let alice = world.user("alice");
    let bob = world.user("bob");
    let relay = world.relay(&bob, "bob", ticketed, bug);
    (alice, bob, relay)
}

/// A send's push racing the relay's close: alice's command thread sends m1 to bob while bob's
/// relay client hangs up, so the relay reader closes the mailbox and reports the close.
pub fn push_racing_close(fixture: &Fixture, bug: Option<PlantedBug>) {
    let mut world = Rig::new(fixture);
    let (alice, _bob, relay) = alice_and_bob(&mut world, false, bug);
    alice.client.send("2\nbob\nm1");
    alice.client.close();
    relay.client.close();
    let command = world.spawn_command(&alice);
    let [writer, reader] = world.spawn_relay(&relay);
    join_all([command, writer, reader]);

    assert_eq!(alice.client.received(), ["0\nSent to recipient"]);
    assert_written_xor_queued(&["m1"], &pushes_once(&relay), &world.queued_texts("bob"));
    assert_nothing_stranded(&relay);
    assert_shut_down(&[&alice, &relay]);
    assert_eq!(world.connection_count(), 1, "only bob's command connection is left");
}

/// Regression model for the lost `Written` report (the first bug loom found here): m1 sits in
/// bob's relay mailbox, and bob's client hangs up (end-of-file, no reset) while the relay writer
/// takes and writes it. The reader used to report the close at once; when the core handled it
/// before the writer's `Written`, the report was ignored and m1, already written, stayed queued
/// for the next relay. Only the two relay threads run, so loom explores it exhaustively.
pub fn relay_hangup_mid_write(fixture: &Fixture) {
    let mut world = Rig::new(fixture);
    let (alice, _bob, relay) = alice_and_bob(&mut world, false, None);
    assert_eq!(world.request(&alice, "2\nbob\nm1"), ["0\nSent to recipient"]);
    relay.client.close();
    join_all(world.spawn_relay(&relay));

    assert_written_xor_queued(&["m1"], &pushes_once(&relay), &world.queued_texts("bob"));
    assert_nothing_stranded(&relay);
    assert_shut_down(&[&relay]);
    assert_eq!(world.connection_count(), 2, "alice's and bob's command connections are left");
}

/// A push is the only thing that can wake the blocked relay writer: alice sends m1, and bob's
/// client hangs up only once it has received m1. A lost wake-up leaves everyone waiting.
pub fn send_wakes_blocked_relay(fixture: &Fixture, bug: Option<PlantedBug>) {
    // The main thread blocks too (as bob's client): see `LeakOnPanic`.
    let mut world = LeakOnPanic::new(Rig::new(fixture));
    let endpoints = LeakOnPanic::new(alice_and_bob(&mut world, false, bug));
    let (alice, _bob, relay) = &*endpoints;
    alice.client.send("2\nbob\nm1");
    alice.client.close();
    let command = world.spawn_command(alice);
    let [writer, reader] = world.spawn_relay(relay);
    let received = relay.client.wait_received();
    relay.client.close();
    join_all([command, writer, reader]);

    assert_eq!(pushes(&received), ["m1"]);
    assert_written_xor_queued(&["m1"], &pushes_once(relay), &world.queued_texts("bob"));
    assert_nothing_stranded(relay);
    assert_shut_down(&[alice, relay]);
}

/// alice sends m1 to bob and hangs up, while the log writer reports m1 durable: the command
/// thread, bob's relay threads and the log writer run; their handles, in that order.
fn send_m1_reported_durable(
    world: &Rig<'_>,
    alice: &Endpoint,
    relay: &Endpoint,
    log: LogQueue,
) -> [JoinHandle<()>; 4] {
    log.arm();
    alice.client.send("2\nbob\nm1");
    alice.client.close();
    let command = world.spawn_command(alice);
    let [writer, reader] = world.spawn_relay(relay);
    let shared = world.shared.clone();
    let log_writer = thread::spawn(move || log.report_next(&shared));
    [command, writer, reader, log_writer]
}

/// The log writer reports m1 durable while alice's command thread waits for her reply and
/// bob's relay writer for the push, both taking the core's lock: the writer never waits for
/// that lock (it feeds the core only when the lock is free, else the holder feeds it when
/// letting go), and neither the reply nor the push may be left behind.
pub fn durable_report_racing_send(fixture: &Fixture) {
    let log = LogQueue::default();
    // The main thread blocks too (as bob's client): see `LeakOnPanic`.
    let mut world = LeakOnPanic::new(Rig::with_log(fixture, &log));
    let endpoints = LeakOnPanic::new(alice_and_bob(&mut world, false, None));
    let (alice, _bob, relay) = &*endpoints;
    let [command, writer, reader, log_writer] = send_m1_reported_durable(&world, alice, relay, log);
    let received = relay.client.wait_received();
    relay.client.close();
    join_all([command, writer, reader, log_writer]);

    assert_eq!(alice.client.received(), ["0\nSent to recipient"]);
    assert_eq!(pushes(&received), ["m1"]);
    assert_shut_down(&[alice, relay]);
}

/// The log writer makes m1 durable while bob's ticketed relay writer waits on its empty
/// mailbox: the thread that feeds the report to the core (the log writer, or the command or
/// relay-reader thread holding the lock then) writes the push straight to the idle relay's
/// socket (`Host::write_through`), or leaves it to the relay writer when that is not idle.
/// With `reset`, bob's client resets the relay meanwhile instead of waiting for the push.
///
/// Checked: alice gets her reply; the push is written at most once and, without the reset,
/// exactly once; since bob never acknowledges, m1 stays queued for his next relay; every
/// thread ends (the relay writer is not left waiting for an item that was written for it).
pub fn durable_report_writes_through(fixture: &Fixture, reset: bool) {
    let log = LogQueue::default();
    // The main thread blocks too (as bob's client): see `LeakOnPanic`.
    let mut world = LeakOnPanic::new(Rig::with_log(fixture, &log));
    let endpoints = LeakOnPanic::new(alice_and_bob(&mut world, true, None));
    let (alice, _bob, relay) = &*endpoints;
    let [command, writer, reader, log_writer] = send_m1_reported_durable(&world, alice, relay, log);
    if reset {
        relay.client.reset();
    } else {
        let received = relay.client.wait_received();
        assert_eq!(pushes(&received), ["m1"]);
        relay.client.close();
    }
    join_all([command, writer, reader, log_writer]);

    assert_eq!(alice.client.received(), ["0\nSent to recipient"]);
    let written = pushes_once(relay);
    assert!(reset || written == ["m1"], "m1 not written on the relay: {written:?}");
    assert_eq!(world.queued_texts("bob"), ["m1"], "m1 was never acknowledged");
    assert_shut_down(&[alice]);
}

/// What ends bob's relay while its writer holds a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Racer {
    /// bob's command thread logs out.
    Logout,
    /// A second command connection logs in as bob.
    Takeover,
    /// bob's command thread deletes the account.
    Delete,
    /// bob's relay client resets the connection.
    Disconnect,
}

/// m1 (and, with `two_messages`, m2) sit in bob's relay mailbox when the model starts; the relay
/// writer takes the batch and writes it while `racer` ends the relay.
pub fn relay_mid_write_racing(fixture: &Fixture, racer: Racer, two_messages: bool) {
    let mut world = Rig::new(fixture);
    let (alice, bob, relay) = alice_and_bob(&mut world, false, None);
    let messages: &[&str] = if two_messages { &["m1", "m2"] } else { &["m1"] };
    for message in messages {
        let reply = world.request(&alice, &format!("2\nbob\n{message}"));
        assert_eq!(reply, ["0\nSent to recipient"]);
    }
    let bob_again = world.open(Channel::Command, None);
    let (racing, request, reply) = match racer {
        Racer::Logout => (Some(&bob), "-1\n", "0\nLogging out"),
        Racer::Takeover => (Some(&bob_again), "1\nbob\npw", "0\nSuccessful Login"),
        Racer::Delete => (Some(&bob), "5\nbob\npw", "0\naccount deleted"),
        Racer::Disconnect => (None, "", ""),
    };
    let mut threads = Vec::from(world.spawn_relay(&relay));
    if let Some(racing) = racing {
        racing.client.send(request);
        racing.client.close();
        threads.push(world.spawn_command(racing));
    } else {
        relay.client.reset();
    }
    join_all(threads);

    if let Some(racing) = racing {
        assert_eq!(racing.client.received(), [reply], "{racer:?}");
        assert_shut_down(&[racing]);
    }
    // The relay is the original client's (bare), which would print a closing notice as a
    // message: whatever ends it, it gets pushes only, then a plain close.
    let frames = relay.client.received();
    assert!(frames.iter().all(|f| f.starts_with("0\n")), "{racer:?}: {frames:?}");
    let written = pushes_once(&relay);
    let queued = world.queued_texts("bob");
    if racer == Racer::Delete {
        assert!(world.shared.with_server(|s| s.account_id("bob")).is_none(), "bob deleted");
        assert!(queued.is_empty(), "a deleted account's queue is discarded");
    } else {
        assert_written_xor_queued(messages, &written, &queued);
    }
    if racer != Racer::Disconnect {
        // Only a failed write may end a writer before its mailbox is closed and drained.
        assert_nothing_stranded(&relay);
    }
    assert_shut_down(&[&relay]);
    // alice and whichever of bob's two command connections no thread of the model closed.
    let left = if racer == Racer::Disconnect { 3 } else { 2 };
    assert_eq!(world.connection_count(), left, "{racer:?}: connections left");
}

/// bob's client acknowledges (ticketed relay). m1 and m2 are queued to its relay; the relay
/// writes them while the client acknowledges what it received, and meanwhile bob logs in again
/// elsewhere (on the model's main thread, with a precomputed password check), takes a ticket
/// and binds a new relay, which re-pushes whatever is unacknowledged.
///
/// Checked: the old relay writes each message at most once; what the core still holds is
/// exactly what the new relay was given, in order; whatever it no longer holds was received on
/// the old relay and acknowledged; nothing is lost.
pub fn ack_racing_redelivery(fixture: &Fixture) {
    let mut world = Rig::new(fixture);
    let (alice, _bob, relay) = alice_and_bob(&mut world, true, None);
    for message in ["m1", "m2"] {
        world.request(&alice, &format!("2\nbob\n{message}"));
    }
    let bob_again = world.open(Channel::Command, None);
    let [writer, reader] = world.spawn_relay(&relay);
    let client = {
        let client = relay.client.clone();
        crate::host::sync::thread::spawn(move || {
            let mut acked = Vec::new();
            for frame in client.wait_received() {
                if let Some(rest) = frame.strip_prefix("7\n") {
                    let (id, rest) = rest.split_once('\n').expect("7\\nID\\nSENDER\\nTEXT");
                    client.send(&format!("7\n{id}"));
                    acked.push(rest.rsplit('\n').next().unwrap_or_default().to_owned());
                }
            }
            acked
        })
    };
    assert_eq!(world.request(&bob_again, "1\nbob\npw"), ["0\nSuccessful Login"]);
    let new_relay = world.relay(&bob_again, "bob", true, None);
    join_all([writer, reader]);
    let acked = client.join().expect("the client thread panicked");

    let written = pushes_once(&relay);
    let queued = world.queued_texts("bob");
    let mut redelivered = Vec::new();
    assert_eq!(new_relay.mailbox.try_take_all(&mut redelivered), Taken::Open);
    let redelivered: Vec<String> = redelivered
        .into_iter()
        .flat_map(|item| match item {
            crate::host::Outgoing::Push { frame, .. } => pushes(&frame_bodies(&frame)),
            other => panic!("unexpected {other:?} on the new relay"),
        })
        .collect();
    assert_eq!(redelivered, queued, "the new relay got other than what the core holds");
    for message in ["m1", "m2"] {
        if !queued.iter().any(|q| q == message) {
            assert!(written.iter().any(|w| w == message), "{message:?} removed, never written");
            assert!(acked.iter().any(|a| a == message), "{message:?} removed, never acked");
        }
    }
    assert_shut_down(&[&relay]);
}

/// Shutdown while every thread of a client waits: alice's command thread has sent m1 and waits
/// for its reply (held back: the log never makes the message durable), bob's relay writer waits
/// on its empty mailbox and its reader on the socket. `Shared::close_all` must wake them all.
pub fn shutdown_with_threads_blocked(fixture: &Fixture) {
    // Registering alice and bob writes the two records that become durable; m1's never does.
    let mut world = Rig::with_durable_records_max(fixture, Some(2));
    let (alice, _bob, relay) = alice_and_bob(&mut world, false, None);
    alice.client.send("2\nbob\nm1");
    let command = world.spawn_command(&alice);
    let [writer, reader] = world.spawn_relay(&relay);
    world.shared.close_all();
    join_all([command, writer, reader]);

    assert!(alice.client.received().is_empty(), "a reply left before its record was durable");
    assert!(relay.client.received().is_empty(), "a push left before its record was durable");
    assert_shut_down(&[&alice, &relay]);
    assert_eq!(world.connection_count(), 1, "only bob's command connection is left");
}

/// alice pipelines: m1 is read by her command thread, which then waits for its reply (the log
/// holds it back until its thread reports it durable); m2 arrives meanwhile, and the relay
/// reader, on its readiness event, reads it ahead of m1's reply (`Shared::read_ahead`), racing
/// the command thread's own read-ahead after feeding m1, its blocking read once the reply is
/// out, and the durability reports.
///
/// Checked: the two requests reach the core in order (bob's queue holds m1 then m2) and each
/// is answered once, in order; every thread ends.
pub fn read_ahead_racing_reply(fixture: &Fixture) {
    let log = LogQueue::default();
    let mut world = LeakOnPanic::new(Rig::with_log(fixture, &log));
    let alice = world.user("alice");
    let _bob = world.user("bob");
    log.arm();
    alice.client.send("2\nbob\nm1");
    let command = world.spawn_command(&alice);
    alice.client.send("2\nbob\nm2");
    alice.client.close();
    let reader = {
        let (shared, conn, stream) = (world.shared.clone(), alice.conn, alice.stream.clone());
        thread::spawn(move || {
            let mut buf = vec![0u8; 64];
            shared.read_ahead(conn, &**stream, &mut buf);
        })
    };
    let log_writer = {
        let shared = world.shared.clone();
        thread::spawn(move || {
            log.report_next(&shared);
            log.report_next(&shared);
        })
    };
    join_all([command, reader, log_writer]);

    assert_eq!(world.queued_texts("bob"), ["m1", "m2"], "requests reached the core out of order");
    assert_eq!(alice.client.received(), ["0\nSent to recipient", "0\nSent to recipient"]);
    assert_shut_down(&[&alice]);
}
