//! Password jobs run on the requesting connection's thread, a bounded number at a time, so
//! that a crowd logging in cannot take every core from the clients already chatting.

use crate::auth::Hasher;
use crate::core::{PasswordJob, PasswordOutcome};
use crate::host::sync::{Condvar, Mutex};

pub(crate) struct HashPool {
    hasher: Hasher,
    slots: Mutex<Slots>,
    freed: Condvar,
    running_max: usize,
    #[cfg(any(test, feature = "planted"))]
    planted: crate::core::planted::Planted,
}

#[derive(Default)]
struct Slots {
    running: usize,
    waiting: usize,
    /// While set no job starts ([`HashPool::hold`]).
    held: bool,
}

impl HashPool {
    pub fn new(hasher: Hasher, running_max: usize) -> Self {
        HashPool {
            hasher,
            slots: Mutex::new(Slots::default()),
            freed: Condvar::new(),
            running_max: running_max.max(1),
            #[cfg(any(test, feature = "planted"))]
            planted: crate::core::planted::Planted::None,
        }
    }

    /// Plants `bug` in the pool (the core's planted bug, which may be the pool's own).
    #[cfg(any(test, feature = "planted"))]
    pub fn plant(&mut self, bug: crate::core::planted::Planted) {
        self.planted = bug;
    }

    /// Runs a job once a slot is free.
    pub fn run(&self, job: &PasswordJob) -> PasswordOutcome {
        {
            let mut slots = self.slots.lock().expect("hash pool lock");
            slots.waiting += 1;
            while slots.held || slots.running >= self.running_max {
                slots = self.freed.wait(slots).expect("hash pool lock");
            }
            slots.waiting -= 1;
            slots.running += 1;
        }
        let outcome = self.hasher.run(job);
        self.slots.lock().expect("hash pool lock").running -= 1;
        #[cfg(any(test, feature = "planted"))]
        if self.planted == crate::core::planted::Planted::HashSlotNotHandedOn {
            return outcome;
        }
        self.freed.notify_one();
        outcome
    }

    /// Holds every job not yet started (`true`) or lets them run (`false`): for tests that must
    /// show the server serving others while every password job waits.
    pub fn hold(&self, held: bool) {
        self.slots.lock().expect("hash pool lock").held = held;
        self.freed.notify_all();
    }

    /// Jobs waiting for a slot.
    pub fn waiting(&self) -> usize {
        self.slots.lock().expect("hash pool lock").waiting
    }
}
