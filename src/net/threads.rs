//! Connection threads: spawned with a small stack, counted so that shutdown can wait for all
//! of them without keeping a handle per connection, and capped below the count at which the
//! system would refuse one in a way that aborts the process.

use std::io;

use crate::host::sync::{thread, Arc, Condvar, Mutex};

#[derive(Clone)]
pub(crate) struct Threads {
    counter: Arc<Counter>,
    stack_bytes: usize,
    live_max: usize,
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
    /// Threads of `stack_bytes` each, at most `live_max` at once.
    pub fn new(stack_bytes: usize, live_max: usize) -> Self {
        let counter = Arc::new(Counter { live: Mutex::new(0), ended: Condvar::new() });
        Threads { counter, stack_bytes, live_max }
    }

    /// Spawns a counted thread; an error means the cap is reached or the system refused.
    pub fn spawn(&self, name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<()> {
        {
            let mut live = self.counter.live.lock().expect("threads lock");
            if *live >= self.live_max {
                return Err(io::Error::other(format!(
                    "{} threads running, the most this process can hold",
                    *live
                )));
            }
            *live += 1;
        }
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

/// Memory maps a thread takes: its stack and the signal stack Rust's runtime gives it, each
/// with a guard page.
const MAPS_PER_THREAD: usize = 4;
/// Memory maps left for everything else: the binary, libraries, heap arenas, large buffers.
const MAPS_RESERVED: usize = 4096;

/// The most threads this process can run. At `vm.max_map_count` a new thread's signal stack
/// guard cannot be set up and Rust's runtime aborts the whole process (seen at 16,360 threads
/// with the default 65,530 maps), so the cap stays below it and a connection beyond it is
/// refused instead.
pub(crate) fn live_max_by_memory_maps() -> usize {
    let maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(65_530);
    maps.saturating_sub(MAPS_RESERVED) / MAPS_PER_THREAD
}
