//! The log writer's input queue: records from the server, reports from the sync thread.
//!
//! `std::sync::mpsc` wakes its receiver for every item sent while it waits. The writer needs no
//! such wake for a record that arrives while a sync is in flight: it will append the record
//! only once that sync is done (the next sync is started then), and the sync thread's report is
//! what wakes it. So the writer says, each time it waits, what is worth waking it for
//! ([`Wake`]), and a submitter wakes it only for that: a record is never urgent, the sync's
//! report, a snapshot request and the shutdown always are. Under load this takes about one
//! context switch per message off the server (the writer's; `bench relay` counts them by
//! thread), and what the writer takes it takes all at once, a swap of buffers.
//!
//! Records are bounded ([`CommitQueue::push`] waits for room: back-pressure on a server that
//! outruns the disk); urgent items never wait, since the writer may be waiting for exactly
//! one of them while records fill the queue.
//!
//! Its lock and condition variables come from [`crate::host::sync`], so the loom models in
//! `tests/loom_mailbox.rs` (`commit_queue_*`) explore this very code.

use std::sync::PoisonError;
use std::time::Duration;

use crate::host::sync::{Condvar, Mutex, MutexGuard};

/// What the consumer waits for in [`CommitQueue::take`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// Any item.
    Any,
    /// An urgent item (or records left over from a take that was capped).
    Urgent,
}

/// A bounded multi-producer, single-consumer queue whose consumer chooses which items wake it.
/// See the [module docs](self).
pub struct CommitQueue<T> {
    state: Mutex<State<T>>,
    /// Signalled when an item the waiting consumer asked for is queued.
    arrived: Condvar,
    /// Signalled when a take made room and a producer waits for it, or on close.
    room: Condvar,
    len_max: usize,
    #[cfg(loom)]
    planted: Option<PlantedQueueBug>,
}

struct State<T> {
    /// Oldest first.
    items: Vec<T>,
    /// Items that are not records, or a capped take's leftovers: the consumer has a reason to
    /// run even if it waits for urgent items only.
    urgent: bool,
    /// What the blocked consumer waits for; `None` when it does not wait.
    waiting: Option<Wake>,
    /// Producers blocked for room.
    producers_waiting: usize,
    /// The consumer is gone: nothing is accepted any more.
    closed: bool,
}

/// A bug to plant in a [`CommitQueue`], so that the loom models prove they would catch it
/// (planted only in loom builds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedQueueBug {
    /// Urgent items wait for room like records: a consumer waiting for the sync's report while
    /// records fill the queue never gets it.
    UrgentWaitsForRoom,
    /// A take does not tell the producers waiting for room.
    TakeForgetsRoom,
}

impl<T> CommitQueue<T> {
    /// An empty queue holding at most `len_max` records (urgent items come on top).
    ///
    /// # Panics
    ///
    /// If `len_max` is zero.
    pub fn new(len_max: usize) -> Self {
        assert!(len_max > 0, "a queue of no records");
        CommitQueue {
            state: Mutex::new(State {
                items: Vec::new(),
                urgent: false,
                waiting: None,
                producers_waiting: 0,
                closed: false,
            }),
            arrived: Condvar::new(),
            room: Condvar::new(),
            len_max,
            #[cfg(loom)]
            planted: None,
        }
    }

    /// A queue with `bug` planted (loom builds only).
    #[cfg(loom)]
    pub fn with_planted_bug(len_max: usize, bug: PlantedQueueBug) -> Self {
        CommitQueue { planted: Some(bug), ..CommitQueue::new(len_max) }
    }

    /// Queues `item`, waking the consumer if it waits for such an item. A record (`urgent`
    /// false) waits while `len_max` items are queued; an urgent item never waits. Gives the
    /// item back once the consumer has [closed](Self::close) the queue.
    pub fn push(&self, item: T, urgent: bool) -> Result<(), T> {
        let mut state = self.lock();
        let waits_for_room = !urgent || self.is_planted(PlantedQueueBug::UrgentWaitsForRoom);
        while waits_for_room && state.items.len() >= self.len_max && !state.closed {
            state.producers_waiting += 1;
            state = self.room.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.producers_waiting -= 1;
        }
        if state.closed {
            return Err(item);
        }
        state.items.push(item);
        state.urgent |= urgent;
        let wake = match state.waiting {
            Some(Wake::Any) => true,
            Some(Wake::Urgent) => state.urgent,
            None => false,
        };
        drop(state);
        // After the unlock: on a busy core the woken writer would otherwise run only to block
        // on this lock. Only the consumer waits on `arrived`, and it clears `waiting` itself,
        // so a second push before it runs notifies again, harmlessly.
        if wake {
            self.arrived.notify_one();
        }
        Ok(())
    }

    /// Moves the oldest items, at most `len_max_taken`, into `out` (emptied first), waiting
    /// first until there is an item `wake` asks for, or until `timeout` (then `out` may stay
    /// empty). Only one thread takes.
    pub fn take(
        &self,
        out: &mut Vec<T>,
        len_max_taken: usize,
        wake: Wake,
        timeout: Option<Duration>,
    ) {
        out.clear();
        let mut state = self.lock();
        let wanted = |state: &State<T>| match wake {
            Wake::Any => !state.items.is_empty(),
            Wake::Urgent => state.urgent,
        };
        if !wanted(&state) {
            state.waiting = Some(wake);
            match timeout {
                None => {
                    while !wanted(&state) {
                        state = self.arrived.wait(state).unwrap_or_else(PoisonError::into_inner);
                    }
                }
                Some(timeout) => {
                    // One wait: the caller comes back after a timeout or a spurious wake-up
                    // anyway, to do its other work.
                    let (guard, _) = self
                        .arrived
                        .wait_timeout(state, timeout)
                        .unwrap_or_else(PoisonError::into_inner);
                    state = guard;
                }
            }
            state.waiting = None;
        }
        self.move_out(state, out, len_max_taken);
    }

    /// Whether a take with `wake` would return at once, with something taken (the
    /// simulator's writer runs only then, as the server's wakes only then).
    pub fn ready(&self, wake: Wake) -> bool {
        let state = self.lock();
        match wake {
            Wake::Any => !state.items.is_empty(),
            Wake::Urgent => state.urgent,
        }
    }

    /// [`CommitQueue::take`] without waiting.
    pub fn try_take(&self, out: &mut Vec<T>, len_max_taken: usize) {
        out.clear();
        let state = self.lock();
        self.move_out(state, out, len_max_taken);
    }

    /// The consumer is gone: every later push fails, and producers waiting for room give up.
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
    }

    fn move_out(&self, mut state: MutexGuard<'_, State<T>>, out: &mut Vec<T>, len_max: usize) {
        if state.items.len() <= len_max {
            std::mem::swap(&mut state.items, out);
        } else {
            out.extend(state.items.drain(..len_max));
        }
        // Leftovers are a reason to come back at once.
        state.urgent = !state.items.is_empty();
        let forgets = self.is_planted(PlantedQueueBug::TakeForgetsRoom);
        let notify = state.producers_waiting > 0 && !out.is_empty() && !forgets;
        drop(state);
        if notify {
            self.room.notify_all();
        }
    }

    /// Whether `bug` is planted: never outside loom builds.
    fn is_planted(&self, bug: PlantedQueueBug) -> bool {
        #[cfg(loom)]
        return self.planted == Some(bug);
        #[cfg(not(loom))]
        {
            let _ = bug;
            false
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // Every critical section leaves the state whole (a push, a swap, a flag): a poisoned
        // lock guards a sound state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T> std::fmt::Debug for CommitQueue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("CommitQueue")
            .field("len", &state.items.len())
            .field("len_max", &self.len_max)
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn a_consumer_waiting_for_urgent_items_takes_the_records_with_them() {
        let queue = Arc::new(CommitQueue::new(8));
        queue.push(1, false).expect("open");
        queue.push(2, false).expect("open");
        let mut out = Vec::new();
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.push(3, true).expect("open"))
        };
        queue.take(&mut out, 100, Wake::Urgent, None);
        producer.join().expect("pushed");
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn a_capped_take_leaves_the_rest_and_comes_back_for_it() {
        let queue = CommitQueue::new(8);
        (1..=5).for_each(|n| queue.push(n, false).expect("open"));
        let mut out = Vec::new();
        queue.take(&mut out, 2, Wake::Any, None);
        assert_eq!(out, [1, 2]);
        // Leftovers count as a reason to run, whatever the consumer waits for.
        queue.take(&mut out, 2, Wake::Urgent, None);
        assert_eq!(out, [3, 4]);
        queue.try_take(&mut out, 2);
        assert_eq!(out, [5]);
        queue.try_take(&mut out, 2);
        assert!(out.is_empty());
    }

    #[test]
    fn ready_says_whether_a_take_would_return_at_once() {
        let queue = CommitQueue::new(8);
        assert!(!queue.ready(Wake::Any) && !queue.ready(Wake::Urgent));
        queue.push(1, false).expect("open");
        assert!(queue.ready(Wake::Any), "a record is worth any take");
        assert!(!queue.ready(Wake::Urgent), "a record alone does not wake an urgent take");
        queue.push(2, true).expect("open");
        assert!(queue.ready(Wake::Urgent));
        let mut out = Vec::new();
        queue.try_take(&mut out, 1);
        assert!(queue.ready(Wake::Urgent), "a capped take's leftovers are urgent");
        queue.try_take(&mut out, 1);
        assert!(!queue.ready(Wake::Any) && !queue.ready(Wake::Urgent));
    }

    #[test]
    fn records_wait_for_room_but_urgent_items_do_not() {
        let queue = Arc::new(CommitQueue::new(1));
        queue.push(1, false).expect("open");
        queue.push(2, true).expect("an urgent item goes past the bound");
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.push(3, false))
        };
        let mut taken = Vec::new();
        let mut out = Vec::new();
        while taken.len() < 3 {
            queue.take(&mut out, 100, Wake::Any, None);
            taken.append(&mut out);
        }
        producer.join().expect("pushed").expect("open");
        assert_eq!(taken, [1, 2, 3]);
    }

    #[test]
    fn a_closed_queue_gives_items_back_and_releases_waiting_producers() {
        let queue = Arc::new(CommitQueue::new(1));
        queue.push(1, false).expect("open");
        let producer = {
            let queue = Arc::clone(&queue);
            thread::spawn(move || queue.push(2, false))
        };
        queue.close();
        assert_eq!(producer.join().expect("returns"), Err(2));
        assert_eq!(queue.push(3, true), Err(3));
    }
}
