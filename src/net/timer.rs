//! The timer thread: sleeps until the core's next deadline, then feeds it a tick.
//!
//! The deadline is reset after every drain; the thread is woken only when it moves earlier.

use std::time::Duration;

use super::driver::Shared;
use crate::core::Event;
use crate::host::sync::{Condvar, Mutex};

#[derive(Default)]
pub(crate) struct TimerState {
    state: Mutex<Deadline>,
    changed: Condvar,
    /// The planted `TimerMissesEarlierDeadline` ([`TimerState::planted`]).
    #[cfg(any(test, feature = "planted"))]
    misses_earlier: bool,
}

#[derive(Default)]
struct Deadline {
    next_ms: Option<u64>,
    stop: bool,
}

impl TimerState {
    /// A timer with `TimerMissesEarlierDeadline` planted if that is `bug`.
    #[cfg(any(test, feature = "planted"))]
    pub fn planted(bug: crate::core::planted::Planted) -> Self {
        let misses_earlier = bug == crate::core::planted::Planted::TimerMissesEarlierDeadline;
        TimerState { misses_earlier, ..TimerState::default() }
    }

    /// Records the core's next deadline, and wakes the timer thread if it is earlier than the
    /// one the thread sleeps until.
    pub fn set(&self, next_ms: Option<u64>) {
        let mut state = self.state.lock().expect("timer lock");
        let earlier = match (next_ms, state.next_ms) {
            (Some(new), Some(old)) => new < old,
            (Some(_), None) => true,
            (None, _) => false,
        };
        #[cfg(any(test, feature = "planted"))]
        let earlier = earlier && !(self.misses_earlier && state.next_ms.is_some());
        state.next_ms = next_ms;
        if earlier {
            self.changed.notify_one();
        }
    }

    pub fn stop(&self) {
        self.state.lock().expect("timer lock").stop = true;
        self.changed.notify_one();
    }
}

/// The timer thread's body: returns when stopped.
pub(crate) fn run(shared: &Shared) {
    loop {
        {
            let mut state = shared.timer.state.lock().expect("timer lock");
            loop {
                if state.stop {
                    return;
                }
                let now_ms = shared.now_ms();
                match state.next_ms {
                    Some(next_ms) if next_ms <= now_ms => break,
                    Some(next_ms) => {
                        let wait = Duration::from_millis(next_ms - now_ms);
                        state =
                            shared.timer.changed.wait_timeout(state, wait).expect("timer lock").0;
                    }
                    None => state = shared.timer.changed.wait(state).expect("timer lock"),
                }
            }
            // Ticking resets the deadline through `Shared::handle`.
            state.next_ms = None;
        }
        shared.handle(Event::Tick);
    }
}
