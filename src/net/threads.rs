//! Connection threads: spawned with a small stack, counted so that shutdown can wait for all
//! of them without keeping a handle per connection, and capped below the count at which the
//! system would refuse one in a way that aborts the process.
//!
//! Each thread costs the process two memory maps, its stack and the stack's guard page, and
//! no more: the threads are started with `pthread_create` rather than `std::thread`, whose
//! start-up gives every thread a signal stack of its own (12 KiB and a guard page: two more
//! maps) so that a stack overflow can print its thread's name before the process aborts. With
//! four maps a thread, `vm.max_map_count` (65,530 by default) capped a server at about 15,000
//! threads, fewer than the open-file limit allows clients; with two, the open-file limit binds
//! first. A stack overflow still stops at the guard page and ends the process (by SIGSEGV,
//! without the message). Under loom the threads are loom's.

use std::io;

use crate::host::sync::{Arc, Condvar, Mutex};

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

/// Counts its thread as ended when dropped, also when the thread's body panics.
struct Ending(Arc<Counter>);

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.ended_one();
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
        let ending = Ending(self.counter.clone());
        let body = move || {
            let _ending = ending;
            body();
        };
        // On failure the closure is dropped unrun, and its `Ending` uncounts the thread.
        spawn_os(name, self.stack_bytes, Box::new(body))
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

/// Starts `body` on a detached thread named `name` with a stack of `stack_bytes`.
#[cfg(loom)]
fn spawn_os(name: &str, stack_bytes: usize, body: Box<dyn FnOnce() + Send>) -> io::Result<()> {
    let builder = loom::thread::Builder::new().name(name.to_owned()).stack_size(stack_bytes);
    builder.spawn(body).map(drop)
}

/// Starts `body` on a detached thread named `name` with a stack of `stack_bytes` (glibc adds
/// the guard page below it) and no signal stack: see the module's documentation.
#[cfg(not(loom))]
fn spawn_os(name: &str, stack_bytes: usize, body: Box<dyn FnOnce() + Send>) -> io::Result<()> {
    use std::ffi::{c_void, CString};

    struct Start {
        name: CString,
        body: Box<dyn FnOnce() + Send>,
    }

    extern "C" fn run(start: *mut c_void) -> *mut c_void {
        // SAFETY: `start` is the box `spawn_os` leaked for this thread alone.
        let start = unsafe { Box::from_raw(start.cast::<Start>()) };
        // SAFETY: a name of at most 15 bytes and a NUL, for this thread; failure only leaves
        // the thread nameless.
        unsafe { libc::pthread_setname_np(libc::pthread_self(), start.name.as_ptr()) };
        // A panic must not unwind into C. The panic hook has printed it; the body's `Ending`
        // has counted the thread out while unwinding.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(start.body));
        std::ptr::null_mut()
    }

    let check = |code: libc::c_int| match code {
        0 => Ok(()),
        code => Err(io::Error::from_raw_os_error(code)),
    };
    // Linux takes thread names of at most 15 bytes.
    let short: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    let name = CString::new(short).expect("NUL bytes were removed");
    let stack_bytes = stack_bytes.max(libc::PTHREAD_STACK_MIN);
    let start = Box::into_raw(Box::new(Start { name, body }));
    // SAFETY: `attr` is initialised before use and destroyed once; `start` goes to the new
    // thread, or is taken back here if no thread was created.
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        check(libc::pthread_attr_init(&mut attr))?;
        let created = check(libc::pthread_attr_setstacksize(&mut attr, stack_bytes))
            .and_then(|()| {
                check(libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED))
            })
            .and_then(|()| {
                let mut id: libc::pthread_t = 0;
                check(libc::pthread_create(&mut id, &attr, run, start.cast()))
            });
        libc::pthread_attr_destroy(&mut attr);
        if created.is_err() {
            drop(Box::from_raw(start));
        }
        created
    }
}

/// Memory maps a connection thread takes: its stack and the stack's guard page.
#[cfg(not(loom))]
pub(crate) const MAPS_PER_THREAD: usize = 2;
#[cfg(loom)]
pub(crate) const MAPS_PER_THREAD: usize = 4;
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_runs_named_and_is_counted_out_even_when_it_panics() {
        let threads = Threads::new(64 * 1024, 2);
        let (tx, rx) = std::sync::mpsc::channel();
        let gate = Arc::new(std::sync::Barrier::new(2));
        let inside = gate.clone();
        threads
            .spawn("a-long-thread-name-here", move || {
                let comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
                tx.send(comm).unwrap();
                inside.wait();
            })
            .unwrap();
        assert_eq!(rx.recv().unwrap().trim(), "a-long-thread-n");
        assert_eq!(threads.live(), 1);
        gate.wait();
        threads.wait_all();
        threads.spawn("panics", || panic!("planted panic in a counted thread")).unwrap();
        // Counted out while unwinding: otherwise this would wait forever.
        threads.wait_all();
        assert_eq!(threads.live(), 0);
    }

    #[test]
    fn the_cap_refuses_a_thread_beyond_it() {
        let threads = Threads::new(64 * 1024, 1);
        let gate = Arc::new(std::sync::Barrier::new(2));
        let inside = gate.clone();
        threads
            .spawn("held", move || {
                inside.wait();
            })
            .unwrap();
        assert!(threads.spawn("refused", || {}).is_err());
        gate.wait();
        threads.wait_all();
        threads.spawn("after", || {}).unwrap();
        threads.wait_all();
    }
}
