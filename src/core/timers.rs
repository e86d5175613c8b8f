//! The core's named timers and their deadline table.

use std::collections::{BTreeMap, BTreeSet};

use super::shared::Shared;
use super::ConnId;

/// Everything the core may wait for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Timer {
    /// The connection has not logged in (command) or completed its handshake (relay) in time.
    Login(ConnId),
    /// A frame started arriving on the connection and has not been completed in time.
    Frame(ConnId),
    /// Expired tickets and stale login failures are forgotten.
    Sweep,
}

/// Deadlines by timer; at most one deadline per timer.
///
/// Shared with copies of the server until one changes them; a cancel of a timer that is not set
/// (the usual case: most inputs cancel a frame deadline) changes nothing, so it copies nothing.
#[derive(Debug, Default, Clone)]
pub(crate) struct Timers {
    /// Both indexes in one shared value: a change copies them together, with one allocation
    /// for the pair rather than one each.
    table: Shared<Table>,
}

#[derive(Debug, Default, Clone)]
struct Table {
    by_timer: BTreeMap<Timer, u64>,
    by_deadline: BTreeSet<(u64, Timer)>,
}

impl Timers {
    /// Sets (or moves) `timer` to fire at `deadline_ms`.
    pub fn set(&mut self, timer: Timer, deadline_ms: u64) {
        let table = &mut *self.table;
        if let Some(old_ms) = table.by_timer.insert(timer, deadline_ms) {
            table.by_deadline.remove(&(old_ms, timer));
        }
        table.by_deadline.insert((deadline_ms, timer));
    }

    /// Sets `timer` unless it is already set.
    pub fn set_if_unset(&mut self, timer: Timer, deadline_ms: u64) {
        if !self.table.by_timer.contains_key(&timer) {
            self.set(timer, deadline_ms);
        }
    }

    pub fn cancel(&mut self, timer: Timer) {
        // Looked up before changing anything (see the type's docs).
        if let Some(&deadline_ms) = self.table.by_timer.get(&timer) {
            let table = &mut *self.table;
            table.by_timer.remove(&timer);
            table.by_deadline.remove(&(deadline_ms, timer));
        }
    }

    /// The earliest deadline.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.table.by_deadline.first().map(|(deadline_ms, _)| *deadline_ms)
    }

    /// Removes and returns one timer due at `now_ms`, earliest first.
    pub fn pop_due(&mut self, now_ms: u64) -> Option<Timer> {
        let &(deadline_ms, timer) = self.table.by_deadline.first()?;
        if deadline_ms > now_ms {
            return None;
        }
        self.cancel(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_moves() {
        let mut timers = Timers::default();
        timers.set(Timer::Login(ConnId(1)), 50);
        timers.set(Timer::Frame(ConnId(1)), 20);
        timers.set(Timer::Login(ConnId(1)), 10);
        timers.set_if_unset(Timer::Frame(ConnId(1)), 5);
        assert_eq!(timers.next_deadline_ms(), Some(10));
        assert_eq!(timers.pop_due(9), None);
        assert_eq!(timers.pop_due(100), Some(Timer::Login(ConnId(1))));
        assert_eq!(timers.pop_due(100), Some(Timer::Frame(ConnId(1))));
        assert_eq!(timers.pop_due(100), None);
    }
}
