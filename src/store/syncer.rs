//! The hand-off between the group-commit writer and its sync threads.
//!
//! With `--fsync always` the writer appends a batch, hands "make this durable" to a sync
//! thread and goes on: it reports the previous batch and appends the next one while the disk
//! syncs, so a commit cycle costs the longer of the sync and the writer's work, not their sum.
//! The writer keeps a few requests outstanding at most (two: a record written while a sync
//! runs need not wait for the rest of that sync before its own starts), one sync thread per
//! request; it asks again only after a sync thread has told it (through the writer's own
//! queue) that a sync is done, and what was appended meanwhile goes into the next request.
//! Requests are served in the order made, each by whichever thread is free. A sync thread
//! only ever calls `fdatasync`: woken, it blocks in the disk at once, so on a busy core its
//! wake-up preempts nobody for long.
//!
//! Its lock and condition variable come from [`crate::host::sync`], so the loom model in
//! `tests/loom_mailbox.rs` (`sync_slot_*`) explores this very code.

use std::collections::VecDeque;
use std::sync::PoisonError;

use crate::host::sync::{Condvar, Mutex, MutexGuard};

/// The sync requests not yet taken, and a stop flag. See the [module docs](self).
pub struct SyncSlot<R> {
    state: Mutex<SlotState<R>>,
    /// Signalled when a request is stored or the slot is stopped.
    ready: Condvar,
    #[cfg(loom)]
    planted: Option<PlantedSyncBug>,
}

struct SlotState<R> {
    /// Oldest first; the writer bounds how many are outstanding.
    requests: VecDeque<R>,
    stopped: bool,
}

/// A bug to plant in a [`SyncSlot`], so that the loom model proves it would catch it.
#[cfg(loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedSyncBug {
    /// The sync thread checks the stop flag before the request, so a request stored just
    /// before the stop is never served: a writer waiting for that sync waits forever.
    StopBeforeRequest,
    /// The stop wakes one waiting sync thread, as it did when there was one: another one
    /// waits for good, and so does whoever joins it.
    StopWakesOne,
}

impl<R> Default for SyncSlot<R> {
    fn default() -> Self {
        SyncSlot {
            state: Mutex::new(SlotState { requests: VecDeque::new(), stopped: false }),
            ready: Condvar::new(),
            #[cfg(loom)]
            planted: None,
        }
    }
}

impl<R> SyncSlot<R> {
    /// A slot with `bug` planted (loom builds only).
    #[cfg(loom)]
    pub fn with_planted_bug(bug: PlantedSyncBug) -> Self {
        SyncSlot { planted: Some(bug), ..SyncSlot::default() }
    }

    /// Hands `request` to a free sync thread (the writer keeps at most as many outstanding as
    /// there are threads).
    pub fn request(&self, request: R) {
        self.lock().requests.push_back(request);
        self.ready.notify_one();
    }

    /// Ends every [`SyncSlot::serve`] once the requests already made are served.
    pub fn stop(&self) {
        self.lock().stopped = true;
        #[cfg(loom)]
        if self.planted == Some(PlantedSyncBug::StopWakesOne) {
            self.ready.notify_one(); // BUG: the other waiting thread sleeps on.
            return;
        }
        self.ready.notify_all();
    }

    /// A sync thread's body: serves requests with `serve`, taking them in order, until
    /// stopped. Several threads may serve one slot.
    pub fn serve(&self, mut serve: impl FnMut(R)) {
        while let Some(request) = self.next() {
            serve(request);
        }
    }

    /// Waits for the next request; `None` once stopped with none left.
    fn next(&self) -> Option<R> {
        let mut state = self.lock();
        loop {
            #[cfg(loom)]
            if self.planted == Some(PlantedSyncBug::StopBeforeRequest) && state.stopped {
                return None; // BUG: a request stored before the stop is dropped.
            }
            if let Some(request) = state.requests.pop_front() {
                return Some(request);
            }
            if state.stopped {
                return None;
            }
            state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState<R>> {
        // Every critical section is a field assignment: a poisoned lock guards a sound state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
