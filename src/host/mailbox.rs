//! The hand-off between the threads that produce a connection's pushes and its relay thread.
//!
//! Each relay connection owns one [`Mailbox`]. Whoever has something for that relay (the
//! command thread of another client sending a message, the log writer releasing a durable
//! push, a timer, shutdown) pushes into it or closes it; the relay thread blocks in
//! [`Mailbox::take_all`] and writes what it gets. The mailbox is deliberately dumb: it holds
//! items in order, bounds them, and says when no more will come. Delivery guarantees live in
//! the core, which keeps every message until the relay reports it written (or acknowledged)
//! and re-pushes whatever is unremoved to the next relay; so a mailbox that is closed with
//! items still in it loses nothing that matters.
//!
//! Its locks and condition variable come from [`crate::host::sync`], so the loom models in
//! `tests/loom_mailbox.rs` explore this very code.

use std::fmt;
#[cfg(any(test, loom))]
use std::ops::ControlFlow;
use std::sync::PoisonError;

use std::cell::{RefCell, RefMut};
use std::ops::DerefMut;

use crate::host::sync::{Condvar, Mutex, MutexGuard};

/// How a mailbox guards its state: what the threads that share it need.
///
/// [`Threads`] (the default, and what the TCP adapter and loom use) keeps it under a mutex,
/// with a condition variable for a consumer that blocks. [`OneThread`] is for a driver that
/// runs every producer and the consumer on one thread (the simulator): the same code over a
/// `RefCell`, without the two atomic operations per call that an uncontended mutex still
/// costs (the simulator's profile showed them). Such a mailbox is not `Sync`, so it cannot be
/// shared between threads by mistake; it has no blocking [`Mailbox::take_all`].
pub trait Flavour {
    /// The lock over a mailbox's state.
    type Lock<U>: Lock<U>;
}

/// A mailbox shared between threads; see [`Flavour`].
#[derive(Debug)]
pub struct Threads;

/// A mailbox whose producers and consumer run on one thread; see [`Flavour`].
#[derive(Debug)]
pub struct OneThread;

impl Flavour for Threads {
    type Lock<U> = Mutex<U>;
}

impl Flavour for OneThread {
    type Lock<U> = RefCell<U>;
}

/// Exclusive access to a value, as a [`Flavour`] provides it.
pub trait Lock<U> {
    type Guard<'a>: DerefMut<Target = U>
    where
        Self: 'a;
    fn new(value: U) -> Self;
    fn lock(&self) -> Self::Guard<'_>;
}

impl<U> Lock<U> for Mutex<U> {
    type Guard<'a>
        = MutexGuard<'a, U>
    where
        Self: 'a;

    fn new(value: U) -> Self {
        Mutex::new(value)
    }

    fn lock(&self) -> MutexGuard<'_, U> {
        // No critical section here can panic halfway through an update, so a poisoned lock
        // still guards a consistent queue; recovering keeps one panicking thread from taking
        // every relay down with it.
        Mutex::lock(self).unwrap_or_else(PoisonError::into_inner)
    }
}

impl<U> Lock<U> for RefCell<U> {
    type Guard<'a>
        = RefMut<'a, U>
    where
        Self: 'a;

    fn new(value: U) -> Self {
        RefCell::new(value)
    }

    fn lock(&self) -> RefMut<'_, U> {
        self.borrow_mut()
    }
}

/// A bounded multi-producer, single-consumer hand-off with explicit close.
///
/// # Contract
///
/// - **Producers** (any number of threads) call [`push`](Self::push). It never blocks: it
///   queues the item, or hands it back as [`PushError::Full`] when `len_max` items are
///   waiting, or as [`PushError::Closed`] once the mailbox is closed. On `Full` the adapter
///   closes the relay rather than wait for it: a slow reader must not grow server memory.
/// - **The consumer** (the one relay thread) calls [`take_all`](Self::take_all), which blocks
///   until at least one item is queued or the mailbox is closed, then moves every queued item
///   into its buffer. Only one thread may block in `take_all` at a time.
///   [`try_take_all`](Self::try_take_all) is the same without blocking; any thread may call it,
///   e.g. a closer discarding the backlog of a relay it is replacing.
/// - **Order**: items come out in the order their pushes took effect. Pushes from one thread
///   take effect in program order; pushes from different threads, in the order they got the
///   lock.
/// - **Close rule**: [`close`](Self::close) is idempotent and may be called from any thread.
///   A push that returns `Ok` happened before the close and its item will be handed to the
///   consumer; a push after the close fails with `Closed` and gives the item back, so no item
///   is ever accepted and then silently dropped. The consumer receives every accepted item,
///   then [`Taken::Closed`], and nothing after that.
///
/// # Example
///
/// ```
/// use chatroom::host::mailbox::{Mailbox, PushError, Taken};
///
/// let mailbox = Mailbox::new(2);
/// mailbox.push("hello").unwrap();
/// mailbox.push("world").unwrap();
/// assert_eq!(mailbox.push("!"), Err(PushError::Full("!")));
/// mailbox.close();
///
/// let mut batch = Vec::new();
/// assert_eq!(mailbox.take_all(&mut batch), Taken::Open);
/// assert_eq!(batch, ["hello", "world"]);
/// assert_eq!(mailbox.take_all(&mut batch), Taken::Closed);
/// ```
pub struct Mailbox<T, F: Flavour = Threads> {
    state: F::Lock<State<T>>,
    /// Signalled when an item is queued or the mailbox closes: the only two events that end
    /// the consumer's wait.
    ready: Condvar,
    len_max: usize,
    #[cfg(any(test, loom))]
    planted: Option<planted::Planted>,
}

#[doc(hidden)]
pub struct State<T> {
    /// Oldest first. A `Vec`, not a deque: the consumer always takes everything, so a take
    /// swaps buffers (or appends, one copy) instead of moving items one by one.
    items: Vec<T>,
    closed: bool,
    /// Consumers blocked in `take_all`. A notification is a system call even with nobody to
    /// wake, and the relay thread is usually busy writing when a push comes: skip it then.
    waiting: u32,
}

/// Why [`Mailbox::push`] refused an item; the item comes back so the caller decides its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError<T> {
    /// `len_max` items are already waiting: the consumer is not keeping up.
    Full(T),
    /// The mailbox was closed before this push.
    Closed(T),
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Full(_) => f.write_str("mailbox full: the relay is not keeping up"),
            PushError::Closed(_) => f.write_str("mailbox closed"),
        }
    }
}

impl<T: fmt::Debug> std::error::Error for PushError<T> {}

/// What [`Mailbox::push_or_write`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    /// Written in full by the pusher: nothing was queued.
    Written,
    /// Queued (all of it, or what was left to write); `wake`: the consumer is owed a
    /// [`Mailbox::wake`].
    Queued { wake: bool },
}

/// What a take learned about the mailbox besides the items it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "Taken::Closed means no item will ever come again"]
pub enum Taken {
    /// The mailbox may still deliver items; this take moved zero or more (at least one for
    /// the blocking [`Mailbox::take_all`]).
    Open,
    /// Closed and empty: nothing was moved and nothing will come again.
    Closed,
}

impl<T> Mailbox<T> {
    /// An open, empty mailbox that holds at most `len_max` waiting items.
    ///
    /// # Panics
    ///
    /// If `len_max` is zero: such a mailbox could never accept anything.
    pub fn new(len_max: usize) -> Self {
        Mailbox::of_flavour(len_max)
    }
}

impl<T, F: Flavour> Mailbox<T, F> {
    /// [`Mailbox::new`] of any [`Flavour`].
    ///
    /// # Panics
    ///
    /// If `len_max` is zero.
    pub fn of_flavour(len_max: usize) -> Self {
        assert!(len_max > 0, "a mailbox needs room for at least one item");
        Mailbox {
            state: Lock::new(State { items: Vec::new(), closed: false, waiting: 0 }),
            ready: Condvar::new(),
            len_max,
            #[cfg(any(test, loom))]
            planted: None,
        }
    }

    /// Gives `item` back unless the mailbox, whose lock `state` is, takes it: a closed or a full
    /// mailbox refuses it. Called in the same critical section as the enqueue, so that an item
    /// can never land after the consumer has seen Closed.
    fn admit(&self, state: &State<T>, item: T) -> Result<T, PushError<T>> {
        if state.closed {
            Err(PushError::Closed(item))
        } else if state.items.len() >= self.len_max {
            Err(PushError::Full(item))
        } else {
            Ok(item)
        }
    }

    /// Queues `item` for the consumer. Never waits for the consumer (only, briefly, for the
    /// lock that every method holds for a few instructions).
    ///
    /// # Errors
    ///
    /// [`PushError::Closed`] after [`close`](Self::close), [`PushError::Full`] when `len_max`
    /// items are waiting; both give the item back.
    pub fn push(&self, item: T) -> Result<(), PushError<T>> {
        #[cfg(any(test, loom))]
        let item = match self.push_planted(item) {
            ControlFlow::Break(result) => return result,
            ControlFlow::Continue(item) => item,
        };

        let mut state = self.lock();
        let item = self.admit(&state, item)?;
        state.items.push(item);
        // Notify with the item already visible and the lock held, so a consumer that checked
        // "empty" is either waiting (counted, and gets this notification) or has not checked
        // yet.
        if state.waiting > 0 {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// [`push`](Self::push) without waking the consumer: `Ok(true)` means the consumer was
    /// waiting when the item was queued, and the caller owes it one [`wake`](Self::wake),
    /// later, e.g. once it has let go of a lock the consumer will want next (a consumer woken
    /// at once would only preempt the pusher and block on that lock).
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn push_deferred(&self, item: T) -> Result<bool, PushError<T>> {
        // A planted push bug (which wakes by itself) stands in for this push too, so that the
        // models of the adapter, which pushes only this way, still meet it.
        #[cfg(any(test, loom))]
        let item = match self.push_planted(item) {
            ControlFlow::Break(result) => return result.map(|()| false),
            ControlFlow::Continue(item) => item,
        };
        let mut state = self.lock();
        let item = self.admit(&state, item)?;
        state.items.push(item);
        // Read under the same lock as the enqueue: a consumer counted here is inside its wait
        // (which let go of the lock atomically), so the later `wake` reaches it, or it has
        // woken meanwhile and will see the item when it rechecks. One not counted has not
        // checked yet and will see the item.
        #[cfg(any(test, loom))]
        if self.planted_bug() == Some(planted::PlantedBug::DeferredWakeNotOwed) {
            return Ok(false); // BUG: the waiting consumer is never woken.
        }
        Ok(state.waiting > 0)
    }

    /// Like [`push_deferred`](Self::push_deferred), but when the consumer is idle (waiting in
    /// [`take_all`](Self::take_all) with nothing queued) the item goes to `write` instead,
    /// which does the consumer's work itself (the TCP adapter writes a push straight to an idle
    /// relay's socket, without waking its writer). `write` runs under the mailbox's lock, so
    /// the consumer cannot start writing meanwhile; it must not block, and gives back what it
    /// could not do (`Some`: the rest of the frame), which is queued as the next item.
    ///
    /// # Errors
    ///
    /// As [`push`](Self::push).
    pub fn push_or_write(
        &self,
        item: T,
        write: impl FnOnce(T) -> Option<T>,
    ) -> Result<Handed, PushError<T>> {
        #[cfg(any(test, loom))]
        let item = match self.push_planted(item) {
            ControlFlow::Break(result) => return result.map(|()| Handed::Queued { wake: false }),
            ControlFlow::Continue(item) => item,
        };
        let mut state = self.lock();
        let item = self.admit(&state, item)?;
        // Counted as waiting with nothing queued: the consumer is inside its wait, holds no
        // batch, and cannot leave the wait before this lock is let go.
        let rest = if state.waiting > 0 && state.items.is_empty() {
            match write(item) {
                None => return Ok(Handed::Written),
                Some(rest) => rest,
            }
        } else {
            item
        };
        state.items.push(rest);
        Ok(Handed::Queued { wake: state.waiting > 0 })
    }

    /// Wakes the consumer a [`push_deferred`](Self::push_deferred) left waiting. Needs no lock;
    /// a wake with nobody waiting is harmless (the consumer rechecks).
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    /// Closes the mailbox: every later push fails, and the consumer, once it has taken what
    /// is queued, gets [`Taken::Closed`]. Idempotent; callable from any thread.
    pub fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        // notify_all, not notify_one: close must wake every waiter, even a misused second one.
        if state.waiting > 0 {
            self.ready.notify_all();
        }
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Whether [`close`](Self::close) has been called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Like [`take_all`](Self::take_all) but never waits for an item: [`Taken::Open`] may have
    /// moved nothing. Any thread may call it.
    pub fn try_take_all(&self, out: &mut Vec<T>) -> Taken {
        let mut state = self.lock();
        if state.items.is_empty() && state.closed {
            return Taken::Closed;
        }
        move_all(&mut state.items, out);
        Taken::Open
    }

    fn lock(&self) -> <F::Lock<State<T>> as Lock<State<T>>>::Guard<'_> {
        self.state.lock()
    }
}

impl<T> Mailbox<T, Threads> {
    /// Blocks until an item is queued or the mailbox is closed, then appends every queued
    /// item to `out`, oldest first.
    ///
    /// Returns [`Taken::Open`] having moved at least one item, or [`Taken::Closed`] having
    /// moved nothing because the mailbox is closed and empty. Only the consumer calls this.
    pub fn take_all(&self, out: &mut Vec<T>) -> Taken {
        let mut state = self.lock();
        loop {
            if !state.items.is_empty() {
                move_all(&mut state.items, out);
                return Taken::Open;
            }
            if state.closed {
                return Taken::Closed;
            }
            // Checked under the lock and waited on atomically with releasing it, so a push or
            // close between the check and the wait cannot slip by unnoticed.
            state.waiting += 1;
            state = self.ready.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
    }
}

impl<T> Mailbox<T, OneThread> {
    /// The consumer's [`take_all`](Mailbox::take_all) wait, for a driver that runs it on the
    /// producers' thread (the simulator): when nothing is queued and the mailbox is open, the
    /// consumer counts as waiting from now until [`unpark`](Self::unpark), exactly as a thread
    /// blocked in `take_all` does, so pushes meanwhile say a wake is owed and
    /// [`push_or_write`](Mailbox::push_or_write) may write for it. Returns whether it parked
    /// (false: something is queued, or the mailbox is closed, and `take_all` would not wait).
    pub fn park(&self) -> bool {
        let mut state = self.lock();
        let waits = state.items.is_empty() && !state.closed;
        state.waiting += u32::from(waits);
        waits
    }

    /// The parked consumer leaves its wait (it was woken and runs): no longer counted.
    pub fn unpark(&self) {
        let mut state = self.lock();
        state.waiting = state.waiting.saturating_sub(1);
    }
}

/// Appends every item of `items` to `out`, leaving `items` empty: a swap of buffers when `out`
/// is empty (the usual case), so both keep their capacity and nothing is copied.
fn move_all<T>(items: &mut Vec<T>, out: &mut Vec<T>) {
    if out.is_empty() {
        std::mem::swap(items, out);
    } else {
        out.append(items);
    }
}

/// A mailbox of its own holding the same items, open or closed alike, for a driver that copies
/// a whole host on one thread (the model checker): nobody waits on the copy.
impl<T: Clone, F: Flavour> Clone for Mailbox<T, F> {
    fn clone(&self) -> Self {
        let state = self.lock();
        let copy = State { items: state.items.clone(), closed: state.closed, waiting: 0 };
        Mailbox {
            state: <F::Lock<State<T>> as Lock<State<T>>>::new(copy),
            ready: Condvar::new(),
            len_max: self.len_max,
            #[cfg(any(test, loom))]
            planted: self.planted.clone(),
        }
    }
}

impl<T, F: Flavour> fmt::Debug for Mailbox<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Mailbox")
            .field("len", &state.items.len())
            .field("len_max", &self.len_max)
            .field("closed", &state.closed)
            .finish()
    }
}

#[cfg(any(test, loom))]
pub use planted::PlantedBug;

/// Deliberately broken variants, so the loom models can prove they catch each bug.
///
/// Compiled only under `cfg(test)` or `cfg(loom)`; a release build has no trace of them.
/// Each variant is the correct code with one well-known mistake, kept here beside the code
/// it corrupts so the two cannot drift apart.
#[cfg(any(test, loom))]
mod planted {
    use super::{Flavour, Mailbox, PushError};
    use std::ops::ControlFlow;

    /// One concurrency bug to plant in a [`Mailbox`] (test and loom builds only).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum PlantedBug {
        /// Lost wake-up: `push` notifies the consumer before the item is queued, so a consumer
        /// that wakes, finds nothing, and waits again sleeps through the item.
        NotifyBeforeEnqueue,
        /// Check-then-act: `push` checks `closed` in one critical section and enqueues in
        /// another, so an item can land after the consumer saw `Closed` and be silently lost.
        PushCheckThenAct,
        /// Lost wake-up: `push` reads whether the consumer waits in one critical section and
        /// enqueues in another, so a consumer that starts waiting in between is never woken.
        WaitersReadUnlocked,
        /// Lost wake-up: `push_deferred` never says a wake is owed, so a consumer already
        /// waiting sleeps through the item.
        DeferredWakeNotOwed,
    }

    #[derive(Clone)]
    pub(super) struct Planted {
        bug: PlantedBug,
    }

    impl<T> Mailbox<T> {
        /// A mailbox with `bug` planted (test and loom builds only).
        pub fn with_planted_bug(len_max: usize, bug: PlantedBug) -> Self {
            let mut mailbox = Mailbox::new(len_max);
            mailbox.planted = Some(Planted { bug });
            mailbox
        }
    }

    impl<T, F: Flavour> Mailbox<T, F> {
        pub(super) fn planted_bug(&self) -> Option<PlantedBug> {
            self.planted.as_ref().map(|planted| planted.bug)
        }

        /// The buggy `push` when a push bug is planted (`Break`), else the item back.
        pub(super) fn push_planted(&self, item: T) -> ControlFlow<Result<(), PushError<T>>, T> {
            let result = match self.planted_bug() {
                Some(PlantedBug::NotifyBeforeEnqueue) => {
                    self.ready.notify_one(); // BUG: the item is not visible yet.
                    let mut state = self.lock();
                    if state.closed {
                        Err(PushError::Closed(item))
                    } else if state.items.len() >= self.len_max {
                        Err(PushError::Full(item))
                    } else {
                        state.items.push(item);
                        Ok(())
                    }
                }
                Some(PlantedBug::PushCheckThenAct) => {
                    if self.lock().closed {
                        return ControlFlow::Break(Err(PushError::Closed(item)));
                    }
                    // BUG: the lock was released; a close can happen right here.
                    let mut state = self.lock();
                    if state.items.len() >= self.len_max {
                        Err(PushError::Full(item))
                    } else {
                        state.items.push(item);
                        self.ready.notify_one();
                        Ok(())
                    }
                }
                Some(PlantedBug::WaitersReadUnlocked) => {
                    let waiting = self.lock().waiting > 0;
                    // BUG: the lock was released; the consumer may start waiting right here.
                    let mut state = self.lock();
                    if state.closed {
                        Err(PushError::Closed(item))
                    } else if state.items.len() >= self.len_max {
                        Err(PushError::Full(item))
                    } else {
                        state.items.push(item);
                        if waiting {
                            self.ready.notify_one();
                        }
                        Ok(())
                    }
                }
                _ => return ControlFlow::Continue(item),
            };
            ControlFlow::Break(result)
        }
    }
}

// std threads cannot drive loom's primitives outside a model, so these run only without loom;
// `tests/loom_mailbox.rs` covers the interleavings.
#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::Duration;

    /// How long a test waits for a thread that should finish at once before declaring it
    /// stuck. Only a failure deadline: nothing waits for it to pass.
    const STUCK_AFTER_S: u64 = 30;

    #[test]
    fn a_parked_consumer_is_owed_a_wake_and_written_for_as_a_waiting_one_is() {
        let mailbox: Mailbox<u32, OneThread> = Mailbox::of_flavour(4);
        assert_eq!(mailbox.push_deferred(1), Ok(false), "nobody waits yet");
        assert!(!mailbox.park(), "something is queued: take_all would not wait");
        let mut items = Vec::new();
        assert_eq!(mailbox.try_take_all(&mut items), Taken::Open);
        assert!(mailbox.park());
        assert_eq!(mailbox.push_or_write(2, |_| None), Ok(Handed::Written), "idle: written for");
        assert_eq!(mailbox.push_or_write(3, Some), Ok(Handed::Queued { wake: true }));
        assert_eq!(mailbox.push_deferred(4), Ok(true), "still waiting: a wake is owed");
        mailbox.unpark();
        assert_eq!(mailbox.push_deferred(5), Ok(false), "woken: no wake owed");
        mailbox.close();
        items.clear();
        let _ = mailbox.try_take_all(&mut items);
        assert_eq!(items, [3, 4, 5]);
        assert!(!mailbox.park(), "closed: take_all returns");
    }

    fn every_variant() -> Vec<Mailbox<u32>> {
        vec![
            Mailbox::new(3),
            Mailbox::with_planted_bug(3, PlantedBug::NotifyBeforeEnqueue),
            Mailbox::with_planted_bug(3, PlantedBug::PushCheckThenAct),
        ]
    }

    /// Runs `f` on its own thread and returns its result, failing the test if it blocks.
    fn finishes<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || done_tx.send(f()).unwrap());
        done_rx.recv_timeout(Duration::from_secs(STUCK_AFTER_S)).expect("the thread stayed blocked")
    }

    #[test]
    fn keeps_push_order_and_appends_to_out() {
        let mailbox = Mailbox::new(8);
        for item in 1..=3 {
            mailbox.push(item).unwrap();
        }
        let mut out = vec![0];
        assert_eq!(mailbox.take_all(&mut out), Taken::Open);
        assert_eq!(out, [0, 1, 2, 3]);
        mailbox.push(4).unwrap();
        assert_eq!(mailbox.try_take_all(&mut out), Taken::Open);
        assert_eq!(out, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn try_take_all_on_empty_open_mailbox_moves_nothing() {
        let mailbox = Mailbox::<u32>::new(1);
        let mut out = Vec::new();
        assert_eq!(mailbox.try_take_all(&mut out), Taken::Open);
        assert!(out.is_empty());
    }

    #[test]
    fn refuses_when_full_and_accepts_again_once_drained() {
        let mailbox = Mailbox::new(2);
        mailbox.push(1).unwrap();
        mailbox.push(2).unwrap();
        assert_eq!(mailbox.push(3), Err(PushError::Full(3)));
        let mut out = Vec::new();
        assert_eq!(mailbox.take_all(&mut out), Taken::Open);
        assert_eq!(out, [1, 2]);
        assert_eq!(mailbox.push(3), Ok(()));
    }

    #[test]
    fn delivers_everything_pushed_before_close_then_reports_closed() {
        let mailbox = Mailbox::new(4);
        mailbox.push(1).unwrap();
        mailbox.push(2).unwrap();
        mailbox.close();
        mailbox.close(); // idempotent
        assert!(mailbox.is_closed());
        assert_eq!(mailbox.push(3), Err(PushError::Closed(3)));
        let mut out = Vec::new();
        assert_eq!(mailbox.take_all(&mut out), Taken::Open);
        assert_eq!(out, [1, 2]);
        assert_eq!(mailbox.take_all(&mut out), Taken::Closed);
        assert_eq!(mailbox.try_take_all(&mut out), Taken::Closed);
        assert_eq!(out, [1, 2], "Closed must move nothing");
    }

    #[test]
    fn closed_wins_over_full() {
        let mailbox = Mailbox::new(1);
        mailbox.push(1).unwrap();
        mailbox.close();
        assert_eq!(mailbox.push(2), Err(PushError::Closed(2)));
    }

    /// Starts a consumer that meets the caller at a barrier and then calls `take_all` once;
    /// the receiver yields what that take returned.
    fn take_once_after_barrier(
        mailbox: &Arc<Mailbox<u32>>,
    ) -> (Arc<Barrier>, mpsc::Receiver<(Taken, Vec<u32>)>) {
        let start = Arc::new(Barrier::new(2));
        let (done_tx, done_rx) = mpsc::channel();
        let (mailbox, consumer_start) = (mailbox.clone(), start.clone());
        thread::spawn(move || {
            consumer_start.wait();
            let mut out = Vec::new();
            let taken = mailbox.take_all(&mut out);
            done_tx.send((taken, out)).unwrap();
        });
        (start, done_rx)
    }

    #[test]
    fn blocked_take_is_woken_by_push() {
        let mailbox = Arc::new(Mailbox::new(4));
        let (start, done) = take_once_after_barrier(&mailbox);
        start.wait();
        mailbox.push(7).unwrap();
        let result = done.recv_timeout(Duration::from_secs(STUCK_AFTER_S));
        assert_eq!(result, Ok((Taken::Open, vec![7])), "the push did not wake the take");
    }

    #[test]
    fn blocked_take_is_woken_by_close() {
        let mailbox = Arc::new(Mailbox::new(4));
        let (start, done) = take_once_after_barrier(&mailbox);
        start.wait();
        mailbox.close();
        let result = done.recv_timeout(Duration::from_secs(STUCK_AFTER_S));
        assert_eq!(result, Ok((Taken::Closed, vec![])), "the close did not wake the take");
    }

    #[test]
    fn many_producers_lose_nothing_and_keep_each_producers_order() {
        const PRODUCERS: u32 = 4;
        const ITEMS_PER_PRODUCER: u32 = 2_000;
        let mailbox = Arc::new(Mailbox::new((PRODUCERS * ITEMS_PER_PRODUCER) as usize));
        let producers: Vec<_> = (0..PRODUCERS)
            .map(|producer| {
                let mailbox = mailbox.clone();
                thread::spawn(move || {
                    for seq in 0..ITEMS_PER_PRODUCER {
                        mailbox.push((producer, seq)).unwrap();
                    }
                })
            })
            .collect();
        let consumer = {
            let mailbox = mailbox.clone();
            move || {
                let (mut delivered, mut batch) = (Vec::new(), Vec::new());
                while mailbox.take_all(&mut batch) == Taken::Open {
                    delivered.append(&mut batch);
                }
                delivered
            }
        };
        let (done_tx, done_rx) = mpsc::channel();
        thread::spawn(move || done_tx.send(consumer()).unwrap());
        for producer in producers {
            producer.join().unwrap();
        }
        mailbox.close();
        let delivered = done_rx
            .recv_timeout(Duration::from_secs(STUCK_AFTER_S))
            .expect("the consumer never saw the close");
        for producer in 0..PRODUCERS {
            let seqs: Vec<u32> = delivered
                .iter()
                .filter(|(from, _)| *from == producer)
                .map(|(_, seq)| *seq)
                .collect();
            assert_eq!(seqs, (0..ITEMS_PER_PRODUCER).collect::<Vec<_>>());
        }
    }

    /// The planted bugs are pure concurrency bugs: run on one thread, every variant keeps the
    /// contract, so a loom model failing on one of them is failing on the interleaving.
    #[test]
    fn planted_variants_keep_the_contract_on_one_thread() {
        for mailbox in every_variant() {
            let name = format!("{:?}", mailbox.planted_bug());
            for item in 1..=3 {
                mailbox.push(item).unwrap();
            }
            assert_eq!(mailbox.push(4), Err(PushError::Full(4)), "{name}");
            let mut batch = Vec::new();
            assert_eq!(mailbox.take_all(&mut batch), Taken::Open, "{name}");
            assert_eq!(batch, [1, 2, 3], "{name}");
            mailbox.push(4).unwrap();
            mailbox.close();
            assert_eq!(mailbox.push(5), Err(PushError::Closed(5)), "{name}");
            let taken = finishes(move || {
                let mut out = Vec::new();
                while mailbox.take_all(&mut out) == Taken::Open {}
                out
            });
            assert_eq!(taken, [4], "{name}");
        }
    }

    #[test]
    fn push_error_says_why() {
        assert!(PushError::Full(()).to_string().contains("full"));
        assert!(PushError::Closed(()).to_string().contains("closed"));
    }

    #[test]
    #[should_panic(expected = "at least one item")]
    fn zero_len_max_is_refused() {
        let _ = Mailbox::<u32>::new(0);
    }
}
