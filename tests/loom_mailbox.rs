//! loom models of the mailbox between the TCP adapter's threads, and of the relay loop on top.
//!
//! Run with `.ci/loom`, i.e.
//! `RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test --release --test loom_mailbox`.
//!
//! Every model asserts, in every interleaving loom explores: no accepted item lost, none
//! delivered twice, none delivered after the consumer saw `Closed`, no deadlock (loom panics
//! on one), no thread left blocked (every thread is joined), no leak (loom checks its `Arc`s at
//! the end of each execution). The planted-bug tests run the same models against the broken
//! variants of `Mailbox` and assert that loom does find each bug, so this file fails if the
//! models ever grow too weak to notice.
//!
//! Small models run exhaustively (no preemption bound). The larger ones honour
//! `LOOM_MAX_PREEMPTIONS`, defaulting to `loom_support::PREEMPTIONS_MAX_DEFAULT` (3).
#![cfg(loom)]

mod loom_support;

use chatroom::host::mailbox::{Mailbox, PlantedBug, PushError, Taken};
use chatroom::host::sync::atomic::{AtomicBool, Ordering};
use chatroom::host::sync::{thread, Arc, Condvar, Mutex};
use chatroom::store::queue::{CommitQueue, PlantedQueueBug, Wake};
use chatroom::store::syncer::{PlantedSyncBug, SyncSlot};
use loom_support::{check, check_finds_bug, Bound, Expect};

fn mailbox(len_max: usize, bug: Option<PlantedBug>) -> Arc<Mailbox<u32>> {
    Arc::new(match bug {
        None => Mailbox::new(len_max),
        Some(bug) => Mailbox::with_planted_bug(len_max, bug),
    })
}

/// The consumer's loop: takes until `Closed`, returns everything taken in order.
fn drain(mailbox: &Mailbox<u32>) -> Vec<u32> {
    let (mut delivered, mut batch) = (Vec::new(), Vec::new());
    while mailbox.take_all(&mut batch) == Taken::Open {
        delivered.append(&mut batch);
    }
    delivered
}

/// Asserts that `delivered` holds each accepted item exactly once, each producer's items in
/// its order, and nothing else.
fn assert_delivered_exactly(accepted_per_producer: &[Vec<u32>], delivered: &[u32]) {
    for accepted in accepted_per_producer {
        let seen: Vec<u32> =
            delivered.iter().copied().filter(|item| accepted.contains(item)).collect();
        for item in accepted {
            let count = seen.iter().filter(|seen| *seen == item).count();
            assert!(count > 0, "item {item} accepted but lost");
            assert_eq!(count, 1, "item {item} duplicated");
        }
        assert_eq!(&seen, accepted, "one producer's order not kept");
    }
    let accepted_len: usize = accepted_per_producer.iter().map(Vec::len).sum();
    assert_eq!(delivered.len(), accepted_len, "delivered an item never accepted");
}

/// Pushes `items` in order; returns those accepted. A refusal must be `Closed`, and after one
/// every later push is refused too (close is permanent).
fn push_all(mailbox: &Mailbox<u32>, items: &[u32]) -> Vec<u32> {
    let mut accepted = Vec::new();
    let mut refused = false;
    for &item in items {
        match mailbox.push(item) {
            Ok(()) => {
                assert!(!refused, "item {item} accepted after an earlier push saw Closed");
                accepted.push(item);
            }
            Err(PushError::Closed(back)) => {
                assert_eq!(back, item, "push handed back another item");
                refused = true;
            }
            Err(PushError::Full(_)) => panic!("mailbox full in a model sized not to fill"),
        }
    }
    accepted
}

/// After the consumer saw `Closed`, nothing may be left for it: an item found here was
/// accepted and then stranded.
fn assert_nothing_after_closed(mailbox: &Mailbox<u32>) {
    let mut late = Vec::new();
    let taken = mailbox.try_take_all(&mut late);
    assert!(late.is_empty(), "items {late:?} landed after Closed: lost");
    assert_eq!(taken, Taken::Closed);
}

// ---------------------------------------------------------------------------------------------
// Model 1: pushes racing a close.

/// `producers` producers push one item each while a closer closes; the consumer (the
/// model's main thread) drains until `Closed`.
fn push_racing_close(producers: u32, bug: Option<PlantedBug>) {
    let mailbox = mailbox(8, bug);
    let producers: Vec<_> = (1..=producers)
        .map(|item| {
            let mailbox = mailbox.clone();
            thread::spawn(move || push_all(&mailbox, &[item]))
        })
        .collect();
    let closer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || mailbox.close())
    };
    let delivered = drain(&mailbox);
    let accepted: Vec<Vec<u32>> = producers.into_iter().map(|p| p.join().unwrap()).collect();
    closer.join().unwrap();
    assert_delivered_exactly(&accepted, &delivered);
    assert_nothing_after_closed(&mailbox);
}

/// One producer pushes two items while a closer closes: the order half of the contract, and
/// close is permanent (no second item accepted after a refused first).
fn pushes_racing_close(bug: Option<PlantedBug>) {
    let mailbox = mailbox(8, bug);
    let producer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || push_all(&mailbox, &[1, 2]))
    };
    let closer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || mailbox.close())
    };
    let delivered = drain(&mailbox);
    let accepted = producer.join().unwrap();
    closer.join().unwrap();
    assert_delivered_exactly(&[accepted], &delivered);
    assert_nothing_after_closed(&mailbox);
}

#[test]
fn push_racing_close_small() {
    check("push_racing_close (1 producer x 1 item)", Bound::Exhaustive, || {
        push_racing_close(1, None)
    });
}

#[test]
fn pushes_racing_close_small() {
    check("pushes_racing_close (1 producer x 2 items)", Bound::Exhaustive, || {
        pushes_racing_close(None)
    });
}

#[test]
fn push_racing_close_larger() {
    check("push_racing_close (2 producers x 1 item)", Bound::FromEnv, || {
        push_racing_close(2, None)
    });
}

#[test]
fn planted_push_check_then_act_is_found() {
    // The one item is accepted after the consumer saw `Closed`, so it never arrives.
    check_finds_bug(
        "push_racing_close + PushCheckThenAct",
        Bound::Exhaustive,
        Expect::Assertion("item 1 accepted but lost"),
        || push_racing_close(1, Some(PlantedBug::PushCheckThenAct)),
    );
}

// ---------------------------------------------------------------------------------------------
// Model 2: a consumer blocked while pushes and shutdown arrive.

/// The consumer waits with nothing queued; a producer pushes one item and, separately,
/// shutdown closes. The consumer must wake for each and finish with the item.
fn consumer_blocked_while_shutdown_closes(bug: Option<PlantedBug>) {
    let mailbox = mailbox(2, bug);
    let consumer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || drain(&mailbox))
    };
    let producer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || push_all(&mailbox, &[1]))
    };
    mailbox.close(); // shutdown, on the model's main thread
    let accepted = producer.join().unwrap();
    let delivered = consumer.join().unwrap();
    assert_delivered_exactly(&[accepted], &delivered);
    assert_nothing_after_closed(&mailbox);
}

/// The consumer waits; a producer pushes one item; only that push can wake it. The close
/// comes after both have finished, so a lost wake-up leaves the consumer blocked for ever.
fn take_woken_by_push(bug: Option<PlantedBug>) {
    let mailbox = mailbox(2, bug);
    let producer = {
        let mailbox = mailbox.clone();
        thread::spawn(move || mailbox.push(1).unwrap())
    };
    let mut batch = Vec::new();
    assert_eq!(mailbox.take_all(&mut batch), Taken::Open);
    assert_eq!(batch, [1]);
    producer.join().unwrap();
    mailbox.close();
    assert_eq!(mailbox.take_all(&mut batch), Taken::Closed);
}

#[test]
fn consumer_blocked_while_shutdown_closes_small() {
    check("consumer_blocked_while_shutdown_closes", Bound::Exhaustive, || {
        consumer_blocked_while_shutdown_closes(None)
    });
}

#[test]
fn take_woken_by_push_small() {
    check("take_woken_by_push", Bound::Exhaustive, || take_woken_by_push(None));
}

#[test]
fn planted_notify_before_enqueue_is_found() {
    check_finds_bug(
        "take_woken_by_push + NotifyBeforeEnqueue",
        Bound::Exhaustive,
        // The consumer (the main thread) waits in the mailbox; the producer has finished.
        Expect::LostWakeup { waiting: 0, done: 1 },
        || take_woken_by_push(Some(PlantedBug::NotifyBeforeEnqueue)),
    );
}

#[test]
fn planted_waiters_read_unlocked_is_found() {
    check_finds_bug(
        "take_woken_by_push + WaitersReadUnlocked",
        Bound::Exhaustive,
        Expect::LostWakeup { waiting: 0, done: 1 },
        || take_woken_by_push(Some(PlantedBug::WaitersReadUnlocked)),
    );
}

/// The TCP adapter's deferred wake (`Host::defer_wakes`, `Shared::unlock`): the producer
/// queues under the core's lock with `push_deferred`, lets the lock go, and only then wakes
/// the consumer if it was owed a wake, while the consumer, like a relay writer, takes what it
/// was handed and then takes the core's lock to report it. The close comes after both have
/// finished, so a wake lost between the push and the late `wake` leaves the consumer blocked
/// for ever.
fn take_woken_by_deferred_wake(bug: Option<PlantedBug>) {
    let mailbox = mailbox(2, bug);
    let core = Arc::new(Mutex::new(0u32));
    let producer = {
        let (mailbox, core) = (mailbox.clone(), core.clone());
        thread::spawn(move || {
            let owed = {
                let _core = core.lock().unwrap();
                mailbox.push_deferred(1).unwrap()
            };
            if owed {
                mailbox.wake();
            }
        })
    };
    let mut batch = Vec::new();
    assert_eq!(mailbox.take_all(&mut batch), Taken::Open);
    assert_eq!(batch, [1]);
    *core.lock().unwrap() += 1; // the writer reports what it wrote
    producer.join().unwrap();
    mailbox.close();
    assert_eq!(mailbox.take_all(&mut batch), Taken::Closed);
}

#[test]
fn take_woken_by_deferred_wake_small() {
    check("take_woken_by_deferred_wake", Bound::Exhaustive, || take_woken_by_deferred_wake(None));
}

#[test]
fn planted_deferred_wake_not_owed_is_found() {
    check_finds_bug(
        "take_woken_by_deferred_wake + DeferredWakeNotOwed",
        Bound::Exhaustive,
        Expect::LostWakeup { waiting: 0, done: 1 },
        || take_woken_by_deferred_wake(Some(PlantedBug::DeferredWakeNotOwed)),
    );
}

// ---------------------------------------------------------------------------------------------
// Model 3: a relay mid-write racing a takeover.

/// The core's side of one recipient, as the adapter holds it under its one mutex.
struct Core {
    /// Messages not yet reported written, oldest first: the core's delivery queue.
    pending: Vec<u32>,
    /// The mailbox of the relay currently attached.
    relay: Arc<Mailbox<u32>>,
    /// Every effective report: (relay id, item). An item appears here once it is removed
    /// from `pending`, and never again.
    reported: Vec<(u32, u32)>,
}

/// A relay connection's socket: what reached the client, and whether it was shut down.
struct Socket {
    written: Mutex<Vec<u32>>,
    shut: AtomicBool,
}

impl Socket {
    fn new() -> Arc<Self> {
        Arc::new(Socket { written: Mutex::new(Vec::new()), shut: AtomicBool::new(false) })
    }

    /// Writes one item; fails once the socket was shut down.
    fn write(&self, item: u32) -> Result<(), ()> {
        if self.shut.load(Ordering::SeqCst) {
            return Err(());
        }
        self.written.lock().unwrap().push(item);
        Ok(())
    }

    fn written(&self) -> Vec<u32> {
        self.written.lock().unwrap().clone()
    }
}

/// The relay thread: take a batch, write it item by item, report each write to the core.
/// A failed write ends the relay; whatever it did not report stays pending in the core.
fn relay_loop(id: u32, mailbox: &Mailbox<u32>, socket: &Socket, core: &Mutex<Core>) {
    let mut batch = Vec::new();
    while mailbox.take_all(&mut batch) == Taken::Open {
        for item in batch.drain(..) {
            if socket.write(item).is_err() {
                return;
            }
            let mut core = core.lock().unwrap();
            // A report for an item the other relay already reported changes nothing.
            if let Some(at) = core.pending.iter().position(|pending| *pending == item) {
                core.pending.remove(at);
                core.reported.push((id, item));
            }
        }
    }
}

/// Queues `item` in the core and pushes it to the attached relay, as a send does.
fn send(core: &Mutex<Core>, item: u32) {
    let mut core = core.lock().unwrap();
    core.pending.push(item);
    // Close and re-attach happen under this same lock, so the attached relay is open here.
    core.relay.push(item).expect("the attached relay's mailbox refused a push");
}

/// A new login takes over: shut the old relay's socket, close its mailbox, attach the new
/// relay and re-push everything still pending to it, all under the core's lock.
fn take_over(core: &Mutex<Core>, old_socket: &Socket, new_mailbox: Arc<Mailbox<u32>>) {
    let mut core = core.lock().unwrap();
    old_socket.shut.store(true, Ordering::SeqCst);
    core.relay.close();
    core.relay = new_mailbox;
    for &item in &core.pending {
        core.relay.push(item).expect("the new relay's mailbox refused a re-push");
    }
}

/// Relay 1 holds items 1 and 2 and is writing them when a takeover attaches relay 2; with
/// `with_send`, a send of item 3 races both. At the end every item was reported exactly once
/// (by one relay or the other), none is pending, and no relay wrote an item twice or out of
/// order.
fn relay_mid_write_racing_takeover(with_send: bool) {
    let mailbox_1 = mailbox(4, None);
    let mailbox_2 = mailbox(4, None);
    let (socket_1, socket_2) = (Socket::new(), Socket::new());
    let core = Arc::new(Mutex::new(Core {
        pending: Vec::new(),
        relay: mailbox_1.clone(),
        reported: Vec::new(),
    }));
    send(&core, 1);
    send(&core, 2);

    let relay_1 = {
        let (mailbox, socket, core) = (mailbox_1.clone(), socket_1.clone(), core.clone());
        thread::spawn(move || relay_loop(1, &mailbox, &socket, &core))
    };
    let relay_2 = {
        let (mailbox, socket, core) = (mailbox_2.clone(), socket_2.clone(), core.clone());
        thread::spawn(move || relay_loop(2, &mailbox, &socket, &core))
    };
    let sender = with_send.then(|| {
        let core = core.clone();
        thread::spawn(move || send(&core, 3))
    });
    take_over(&core, &socket_1, mailbox_2.clone());
    if let Some(sender) = sender {
        sender.join().unwrap();
    }
    relay_1.join().unwrap();
    mailbox_2.close(); // shutdown once every push is in
    relay_2.join().unwrap();
    // Whatever relay 1 left in its mailbox when its write failed is dropped with it: the
    // checks below show the core still had it and relay 2 delivered it.

    let items: Vec<u32> = if with_send { vec![1, 2, 3] } else { vec![1, 2] };
    let core = core.lock().unwrap();
    assert!(core.pending.is_empty(), "still pending: {:?}", core.pending);
    for item in &items {
        let reports = core.reported.iter().filter(|(_, r)| r == item).count();
        assert!(reports > 0, "item {item} lost");
        assert_eq!(reports, 1, "item {item} reported twice");
    }
    for socket in [&socket_1, &socket_2] {
        let written = socket.written();
        assert!(
            written.windows(2).all(|pair| pair[0] < pair[1]),
            "one relay wrote {written:?}: duplicated or out of order"
        );
    }
}

#[test]
fn relay_mid_write_racing_takeover_small() {
    check("relay_mid_write_racing_takeover (2 queued)", Bound::Exhaustive, || {
        relay_mid_write_racing_takeover(false)
    });
}

#[test]
fn relay_mid_write_racing_takeover_and_send_larger() {
    check("relay_mid_write_racing_takeover (2 queued + 1 send)", Bound::FromEnv, || {
        relay_mid_write_racing_takeover(true)
    });
}

// ---------------------------------------------------------------------------------------------
// Model 4: an acknowledgement racing redelivery.

/// Items 1 and 2 are pending and queued to relay 1 of a client that acknowledges. Relay 1
/// writes them one at a time. Meanwhile the client acknowledges whatever it has received on relay 1, and a
/// takeover attaches relay 2: the core closes relay 1, discards its backlog, and redelivers
/// every unacknowledged item to relay 2.
///
/// Checked: no relay writes an item twice or out of order; relay 2 gets exactly what was
/// unacknowledged at the takeover (so nothing acknowledged is redelivered); every item ends
/// acknowledged (having reached the client) or written to relay 2.
fn ack_racing_redelivery() {
    let mailbox_1 = mailbox(4, None);
    let mailbox_2 = mailbox(4, None);
    let (socket_1, socket_2) = (Socket::new(), Socket::new());
    // Unacknowledged items, and what the takeover redelivered.
    let core = Arc::new(Mutex::new((vec![1, 2], Vec::new())));
    mailbox_1.push(1).unwrap();
    mailbox_1.push(2).unwrap();

    let relay_1 = {
        let (mailbox, socket) = (mailbox_1.clone(), socket_1.clone());
        thread::spawn(move || {
            let mut batch = Vec::new();
            while mailbox.take_all(&mut batch) == Taken::Open {
                for item in batch.drain(..) {
                    if socket.write(item).is_err() {
                        return;
                    }
                }
            }
        })
    };
    let client_acks = {
        let (socket, core) = (socket_1.clone(), core.clone());
        thread::spawn(move || {
            for item in socket.written() {
                core.lock().unwrap().0.retain(|pending| *pending != item);
            }
        })
    };
    {
        // The takeover, on the model's main thread.
        let mut core = core.lock().unwrap();
        socket_1.shut.store(true, Ordering::SeqCst);
        mailbox_1.close();
        let mut discarded = Vec::new();
        let _ = mailbox_1.try_take_all(&mut discarded);
        core.1 = core.0.clone();
        for &item in &core.1 {
            mailbox_2.push(item).unwrap();
        }
    }
    relay_1.join().unwrap();
    client_acks.join().unwrap();
    mailbox_2.close();
    let written_2 = drain(&mailbox_2);
    for &item in &written_2 {
        socket_2.write(item).unwrap();
    }

    let (unacked, redelivered) = &*core.lock().unwrap();
    let (written_1, written_2) = (socket_1.written(), socket_2.written());
    for written in [&written_1, &written_2] {
        assert!(
            written.windows(2).all(|pair| pair[0] < pair[1]),
            "one relay wrote {written:?}: duplicated or out of order"
        );
    }
    assert_eq!(&written_2, redelivered, "relay 2 got other than the unacked items");
    for item in [1, 2] {
        let acked = !unacked.contains(&item);
        assert!(!acked || written_1.contains(&item), "item {item} acked unseen");
        assert!(
            acked || written_2.contains(&item),
            "item {item} lost: neither acknowledged nor redelivered"
        );
    }
}

#[test]
fn ack_racing_redelivery_small() {
    check("ack_racing_redelivery", Bound::Exhaustive, ack_racing_redelivery);
}

// The log writer's sync thread (src/store/syncer.rs): the writer hands it one sync request
// at a time, waits for its report before asking again, and stops it at shutdown right after
// its last request. Every request must be served, in order, and the sync thread must end.

/// The writer asks for sync 1, waits for its report (in production it comes back through the
/// writer's queue), asks for sync 2 and stops the sync thread at once.
fn sync_requests_then_stop(bug: Option<PlantedSyncBug>) {
    let slot = Arc::new(match bug {
        None => SyncSlot::default(),
        Some(bug) => SyncSlot::with_planted_bug(bug),
    });
    let reports = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
    let syncer = {
        let (slot, reports) = (slot.clone(), reports.clone());
        thread::spawn(move || {
            slot.serve(|lsn: u64| {
                let (served, reported) = &*reports;
                served.lock().unwrap().push(lsn);
                reported.notify_one();
            })
        })
    };
    slot.request(1);
    {
        let (served, reported) = &*reports;
        let mut served = served.lock().unwrap();
        while served.is_empty() {
            served = reported.wait(served).unwrap();
        }
    }
    slot.request(2);
    slot.stop();
    syncer.join().unwrap();
    let served = reports.0.lock().unwrap().clone();
    assert!(served.contains(&2), "sync request 2, made before the stop, was never served");
    assert_eq!(served, [1, 2], "sync requests served out of order or twice");
}

#[test]
fn sync_slot_serves_every_request_before_stopping() {
    check("sync_slot_serves_every_request_before_stopping", Bound::Exhaustive, || {
        sync_requests_then_stop(None)
    });
}

#[test]
fn planted_sync_stop_before_request_is_found() {
    check_finds_bug(
        "planted_sync_stop_before_request_is_found",
        Bound::Exhaustive,
        Expect::Assertion("was never served"),
        || sync_requests_then_stop(Some(PlantedSyncBug::StopBeforeRequest)),
    );
}

// The log writer's queue (src/store/queue.rs): the server submits records, which wait for
// room; the sync thread submits its report, which never waits; the writer, while a sync is in
// flight, waits for urgent items only and takes the records with them. No item may be lost,
// none duplicated, each producer's in order, and no thread may block for good.

/// One producer submits records 1 and 2 into a queue with room for one; the sync thread
/// submits its report (10, urgent). The writer waits for the report as it does while a sync is
/// in flight, then for anything, until it has all three.
fn commit_queue_records_and_report(bug: Option<PlantedQueueBug>) {
    // Not dropped if loom ends the execution with a panic here (the planted deadlocks, where
    // other threads still hold it): dropping a loom `Arc` then aborts the whole test binary.
    let queue = std::mem::ManuallyDrop::new(Arc::new(match bug {
        None => CommitQueue::new(1),
        Some(bug) => CommitQueue::with_planted_bug(1, bug),
    }));
    // The same for the producers' clones, dropped only once their pushes returned.
    let records = {
        let queue = std::mem::ManuallyDrop::new(Arc::clone(&queue));
        thread::spawn(move || {
            queue.push(1, false).expect("open");
            queue.push(2, false).expect("open");
            drop(std::mem::ManuallyDrop::into_inner(queue));
        })
    };
    let report = {
        let queue = std::mem::ManuallyDrop::new(Arc::clone(&queue));
        thread::spawn(move || {
            queue.push(10, true).expect("open");
            drop(std::mem::ManuallyDrop::into_inner(queue));
        })
    };
    let (mut taken, mut out) = (Vec::new(), Vec::new());
    while !taken.contains(&10) {
        queue.take(&mut out, 8, Wake::Urgent, None);
        taken.append(&mut out);
    }
    while taken.len() < 3 {
        queue.take(&mut out, 8, Wake::Any, None);
        taken.append(&mut out);
    }
    records.join().unwrap();
    report.join().unwrap();
    queue.try_take(&mut out, 8);
    drop(std::mem::ManuallyDrop::into_inner(queue));
    assert!(out.is_empty(), "taken twice: {out:?} after {taken:?}");
    let records: Vec<u32> = taken.iter().copied().filter(|&n| n < 10).collect();
    assert_eq!(records, [1, 2], "records lost, duplicated or out of order: {taken:?}");
}

#[test]
fn commit_queue_delivers_records_and_report() {
    check("commit_queue_delivers_records_and_report", Bound::Exhaustive, || {
        commit_queue_records_and_report(None)
    });
}

#[test]
fn planted_commit_queue_urgent_waits_for_room_is_found() {
    check_finds_bug(
        "planted_commit_queue_urgent_waits_for_room_is_found",
        Bound::Exhaustive,
        Expect::Deadlock { file: "src/store/queue.rs" },
        || commit_queue_records_and_report(Some(PlantedQueueBug::UrgentWaitsForRoom)),
    );
}

#[test]
fn planted_commit_queue_take_forgets_room_is_found() {
    check_finds_bug(
        "planted_commit_queue_take_forgets_room_is_found",
        Bound::Exhaustive,
        Expect::Deadlock { file: "src/store/queue.rs" },
        || commit_queue_records_and_report(Some(PlantedQueueBug::TakeForgetsRoom)),
    );
}
