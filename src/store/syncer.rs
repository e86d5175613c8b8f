//! The hand-off between the group-commit writer and its sync thread.
//!
//! With `--fsync always` the writer appends a batch, hands "make this durable" to the sync
//! thread and goes on: it reports the previous batch and appends the next one while the disk
//! syncs, so a commit cycle costs the longer of the sync and the writer's work, not their sum.
//! At most one request is outstanding: the writer asks again only after the sync thread has
//! told it (through the writer's own queue) that the last one is done, and what was appended
//! meanwhile goes into the next request. The sync thread only ever calls `fdatasync`: woken,
//! it blocks in the disk at once, so on a busy core its wake-up preempts nobody for long.
//!
//! Its lock and condition variable come from [`crate::host::sync`], so the loom model in
//! `tests/loom_mailbox.rs` (`sync_slot_*`) explores this very code.

use std::sync::PoisonError;

use crate::host::sync::{Condvar, Mutex, MutexGuard};

/// One outstanding sync request at most, and a stop flag. See the [module docs](self).
pub struct SyncSlot<R> {
    state: Mutex<SlotState<R>>,
    /// Signalled when a request is stored or the slot is stopped.
    ready: Condvar,
    #[cfg(loom)]
    planted: Option<PlantedSyncBug>,
}

struct SlotState<R> {
    request: Option<R>,
    stopped: bool,
}

/// A bug to plant in a [`SyncSlot`], so that the loom model proves it would catch it.
#[cfg(loom)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlantedSyncBug {
    /// The sync thread checks the stop flag before the request, so a request stored just
    /// before the stop is never served: a writer waiting for that sync waits forever.
    StopBeforeRequest,
}

impl<R> Default for SyncSlot<R> {
    fn default() -> Self {
        SyncSlot {
            state: Mutex::new(SlotState { request: None, stopped: false }),
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

    /// Hands `request` to the sync thread. Only once the previous request was served: the
    /// writer keeps one sync in flight.
    pub fn request(&self, request: R) {
        let mut state = self.lock();
        debug_assert!(state.request.is_none(), "one sync in flight at a time");
        state.request = Some(request);
        drop(state);
        // After the unlock: the woken sync thread preempts the writer on a busy core, and
        // would otherwise only block on this lock and hand the core back before it can sync.
        self.ready.notify_one();
    }

    /// Ends [`SyncSlot::serve`] once it has served a request already made.
    pub fn stop(&self) {
        self.lock().stopped = true;
        self.ready.notify_one();
    }

    /// The sync thread's body: serves every request with `serve`, in order, until stopped.
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
            if let Some(request) = state.request.take() {
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
