//! Password jobs run on the requesting connection's thread, a bounded number at a time, so
//! that a crowd logging in cannot take every core from the clients already chatting.

use crate::auth::Hasher;
use crate::core::{PasswordJob, PasswordOutcome};
use crate::host::sync::{Condvar, Mutex};

pub(crate) struct HashPool {
    hasher: Hasher,
    running: Mutex<usize>,
    freed: Condvar,
    running_max: usize,
}

impl HashPool {
    pub fn new(hasher: Hasher, running_max: usize) -> Self {
        HashPool {
            hasher,
            running: Mutex::new(0),
            freed: Condvar::new(),
            running_max: running_max.max(1),
        }
    }

    /// Runs a job once a slot is free.
    pub fn run(&self, job: &PasswordJob) -> PasswordOutcome {
        {
            let mut running = self.running.lock().expect("hash pool lock");
            while *running >= self.running_max {
                running = self.freed.wait(running).expect("hash pool lock");
            }
            *running += 1;
        }
        let outcome = self.hasher.run(job);
        *self.running.lock().expect("hash pool lock") -= 1;
        self.freed.notify_one();
        outcome
    }
}
