//! Connection threads: spawned with a small stack, counted so that shutdown can wait for all
//! of them without keeping a handle per connection.

use std::io;

use crate::host::sync::{thread, Arc, Condvar, Mutex};

#[derive(Clone)]
pub(crate) struct Threads {
    counter: Arc<Counter>,
    stack_bytes: usize,
}

struct Counter {
    live: Mutex<usize>,
    ended: Condvar,
}

impl Counter {
    fn ended_one(&self) {
        *self.live.lock().expect("threads lock") -= 1;
        self.ended.notify_all();
    }
}

impl Threads {
    pub fn new(stack_bytes: usize) -> Self {
        let counter = Arc::new(Counter { live: Mutex::new(0), ended: Condvar::new() });
        Threads { counter, stack_bytes }
    }

    /// Spawns a counted thread; an error means the system refused a new thread.
    pub fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        *self.counter.live.lock().expect("threads lock") += 1;
        let counter = self.counter.clone();
        let spawned = thread::Builder::new()
            .name(name.to_owned())
            .stack_size(self.stack_bytes)
            .spawn(move || {
                body();
                counter.ended_one();
            });
        spawned.map(drop).inspect_err(|_| self.counter.ended_one())
    }

    /// Blocks until every counted thread has ended.
    pub fn wait_all(&self) {
        let mut live = self.counter.live.lock().expect("threads lock");
        while *live > 0 {
            live = self.counter.ended.wait(live).expect("threads lock");
        }
    }

    /// Threads currently running.
    pub fn live(&self) -> usize {
        *self.counter.live.lock().expect("threads lock")
    }
}
