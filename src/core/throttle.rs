//! Password-guess throttling: per (name, address) and per address, with growing delays.
//!
//! Every password check (a login, or a deletion's confirmation) reserves a slot before its job
//! starts and settles it when the job comes back, so concurrent guesses count as soon as they
//! are made: N logins in flight at once cannot all be verified. Counts are kept per
//! (name, address), so an attacker's address is slowed without locking the owner out from
//! elsewhere, plus a larger budget per address that bounds guesses over many names. Each key
//! has a number of free attempts; after them, every failure doubles the wait before the next
//! attempt (from `backoff_base_ms`, at most `window_ms`), and a key is forgotten after
//! `window_ms` without a failure. Names are keyed by their lower-cased text, never by whether
//! an account exists, so the throttle treats existing and unknown names alike.

use std::collections::BTreeMap;

#[cfg(any(test, feature = "planted"))]
use super::planted::Planted;
use super::Peer;

/// One key's record: failures in the current streak, the latest one, and checks in flight.
#[derive(Debug, Clone, Default)]
struct Entry {
    failures: u32,
    last_failure_ms: u64,
    pending: u32,
}

impl Entry {
    /// When this key may start another check, if not now.
    fn blocked_until_ms(&self, limits: &Limits, now_ms: u64) -> Option<u64> {
        let used = self.failures.saturating_add(self.pending);
        if used < limits.free {
            return None;
        }
        if self.pending > 0 {
            // The free attempts are spoken for by checks still running; their outcome decides.
            return Some(now_ms.saturating_add(limits.backoff_base_ms));
        }
        let beyond = self.failures - limits.free;
        let cap_ms = limits.window_ms;
        #[cfg(any(test, feature = "planted"))]
        let cap_ms =
            if limits.planted == Planted::ThrottleBackoffUncapped { u64::MAX } else { cap_ms };
        #[cfg(any(test, feature = "planted"))]
        let late = limits.planted == Planted::ThrottleDoublingLate;
        #[cfg(any(test, feature = "planted"))]
        let beyond = if late { beyond.saturating_sub(1) } else { beyond };
        let delay_ms = limits.backoff_base_ms.saturating_mul(1 << beyond.min(32)).min(cap_ms);
        let until_ms = self.last_failure_ms.saturating_add(delay_ms);
        (until_ms > now_ms).then_some(until_ms)
    }

    fn is_stale(&self, limits: &Limits, now_ms: u64) -> bool {
        #[cfg(any(test, feature = "planted"))]
        let in_flight = self.pending > 0 && limits.planted != Planted::ThrottleSweepsInFlight;
        #[cfg(not(any(test, feature = "planted")))]
        let in_flight = self.pending > 0;
        !in_flight && self.last_failure_ms.saturating_add(limits.window_ms) <= now_ms
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    free: u32,
    backoff_base_ms: u64,
    window_ms: u64,
    /// The planted bug, if one of the throttle's ([`Throttle::plant`]).
    #[cfg(any(test, feature = "planted"))]
    planted: Planted,
}

/// Guesses by (name, address) and by address.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    by_name: BTreeMap<(String, Peer), Entry>,
    by_peer: BTreeMap<Peer, Entry>,
    name_limits: Limits,
    peer_limits: Limits,
}

/// What a check reserved; hand it back to [`Throttle::settle`] or [`Throttle::release`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reservation {
    name: String,
    peer: Peer,
    /// False when the reservation was not counted (the planted `ThrottleCountedLate`).
    counted: bool,
}

impl Throttle {
    pub fn new(
        per_name_free: usize,
        per_peer_free: usize,
        backoff_base_ms: u64,
        window_ms: u64,
    ) -> Self {
        let limits = |free: usize| Limits {
            free: u32::try_from(free.max(1)).unwrap_or(u32::MAX),
            backoff_base_ms: backoff_base_ms.max(1),
            window_ms: window_ms.max(1),
            #[cfg(any(test, feature = "planted"))]
            planted: Planted::None,
        };
        Throttle {
            by_name: BTreeMap::new(),
            by_peer: BTreeMap::new(),
            name_limits: limits(per_name_free),
            peer_limits: limits(per_peer_free),
        }
    }

    /// Plants `bug` where it is one of the throttle's: `ThrottleLocksOwner` (names counted
    /// over every address together), `ThrottleFreeOffByOne` (a (name, address) gets one more
    /// free check than configured: `<=` where `<` was meant), `ThrottleSuccessClearsAddress`,
    /// `ThrottleSuccessKeepsStreak`, `ThrottleWaitRoundedDown`, `ThrottleDoublingLate`,
    /// `ThrottleBackoffUncapped` and `ThrottleSweepsInFlight`.
    #[cfg(any(test, feature = "planted"))]
    pub fn plant(&mut self, bug: Planted) {
        self.name_limits.planted = bug;
        self.peer_limits.planted = bug;
        if bug == Planted::ThrottleFreeOffByOne {
            self.name_limits.free += 1;
        }
    }

    /// The key of a name's count: the name and the address it is tried from.
    fn name_key(&self, name: &str, peer: Peer) -> (String, Peer) {
        #[cfg(any(test, feature = "planted"))]
        if self.name_limits.planted == Planted::ThrottleLocksOwner {
            return (name.to_owned(), Peer(0));
        }
        (name.to_owned(), peer)
    }

    /// Seconds to wait before a check of `name` from `peer` may start, if it may not now.
    /// `name` is a name key (lower case).
    pub fn wait_s(&self, name: &str, peer: Peer, now_ms: u64) -> Option<u64> {
        let by_name = self
            .by_name
            .get(&self.name_key(name, peer))
            .and_then(|e| e.blocked_until_ms(&self.name_limits, now_ms));
        let by_peer =
            self.by_peer.get(&peer).and_then(|e| e.blocked_until_ms(&self.peer_limits, now_ms));
        let until_ms = by_name.into_iter().chain(by_peer).max()?;
        #[cfg(any(test, feature = "planted"))]
        if self.name_limits.planted == Planted::ThrottleWaitRoundedDown {
            return Some((until_ms.saturating_sub(now_ms) / 1000).max(1));
        }
        Some(until_ms.saturating_sub(now_ms).div_ceil(1000).max(1))
    }

    /// Reserves a slot for a check that is starting (call only when [`Throttle::wait_s`] is
    /// `None`). `counted: false` skips the reservation: the bug of counting only at the end.
    pub fn reserve(&mut self, name: &str, peer: Peer, counted: bool) -> Reservation {
        if counted {
            let key = self.name_key(name, peer);
            self.by_name.entry(key).or_default().pending += 1;
            self.by_peer.entry(peer).or_default().pending += 1;
        }
        Reservation { name: name.to_owned(), peer, counted }
    }

    /// The check came back: a failure extends the streaks, a success ends the (name, address)
    /// streak (the address keeps its count: one right guess does not excuse many wrong ones).
    pub fn settle(&mut self, reservation: Reservation, ok: bool, now_ms: u64) {
        let Reservation { name, peer, counted } = reservation;
        let key = self.name_key(&name, peer);
        let by_name = self.by_name.entry(key).or_default();
        let by_peer = self.by_peer.entry(peer).or_default();
        for entry in [&mut *by_name, &mut *by_peer] {
            if counted {
                entry.pending = entry.pending.saturating_sub(1);
            }
            if !ok {
                entry.failures = entry.failures.saturating_add(1);
                entry.last_failure_ms = now_ms;
            }
        }
        #[cfg(any(test, feature = "planted"))]
        let ok = ok && self.name_limits.planted != Planted::ThrottleSuccessKeepsStreak;
        if ok {
            by_name.failures = 0;
            #[cfg(any(test, feature = "planted"))]
            if self.name_limits.planted == Planted::ThrottleSuccessClearsAddress {
                by_peer.failures = 0;
            }
        }
    }

    /// The check was abandoned (its connection closed first): nobody learned its outcome.
    pub fn release(&mut self, reservation: Reservation) {
        if !reservation.counted {
            return;
        }
        let key = self.name_key(&reservation.name, reservation.peer);
        if let Some(entry) = self.by_name.get_mut(&key) {
            entry.pending = entry.pending.saturating_sub(1);
        }
        if let Some(entry) = self.by_peer.get_mut(&reservation.peer) {
            entry.pending = entry.pending.saturating_sub(1);
        }
    }

    /// Forgets keys whose last failure is a window old and that have nothing in flight.
    pub fn sweep(&mut self, now_ms: u64) {
        let (name_limits, peer_limits) = (self.name_limits, self.peer_limits);
        self.by_name.retain(|_, e| !e.is_stale(&name_limits, now_ms));
        self.by_peer.retain(|_, e| !e.is_stale(&peer_limits, now_ms));
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty() && self.by_peer.is_empty()
    }
}

/// Registrations per address over a sliding window: each one's start time, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registrations {
    started_ms: BTreeMap<Peer, std::collections::VecDeque<u64>>,
}

impl Registrations {
    /// Seconds until `peer` may start another registration, if it has used `max` in the last
    /// `window_ms`.
    pub fn wait_s(&self, peer: Peer, max: usize, window_ms: u64, now_ms: u64) -> Option<u64> {
        let times = self.started_ms.get(&peer)?;
        let recent = times.iter().filter(|&&t| t + window_ms > now_ms).count();
        if recent < max.max(1) {
            return None;
        }
        let frees_ms = times.iter().rev().nth(max.max(1) - 1).map_or(now_ms, |&t| t + window_ms);
        Some(frees_ms.saturating_sub(now_ms).div_ceil(1000).max(1))
    }

    /// Counts a registration starting now; keeps at most `max` times per address.
    pub fn record(&mut self, peer: Peer, max: usize, now_ms: u64) {
        let times = self.started_ms.entry(peer).or_default();
        times.push_back(now_ms);
        while times.len() > max.max(1) {
            times.pop_front();
        }
    }

    pub fn sweep(&mut self, window_ms: u64, now_ms: u64) {
        self.started_ms.retain(|_, times| {
            while times.front().is_some_and(|&t| t + window_ms <= now_ms) {
                times.pop_front();
            }
            !times.is_empty()
        });
    }

    pub fn is_empty(&self) -> bool {
        self.started_ms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_per_address_over_a_sliding_window() {
        let mut registrations = Registrations::default();
        for t in 0..3 {
            assert_eq!(registrations.wait_s(Peer(1), 3, 10_000, t), None);
            registrations.record(Peer(1), 3, t);
        }
        assert_eq!(registrations.wait_s(Peer(1), 3, 10_000, 5), Some(10));
        assert_eq!(registrations.wait_s(Peer(2), 3, 10_000, 5), None);
        assert_eq!(registrations.wait_s(Peer(1), 3, 10_000, 10_000), None);
        registrations.sweep(10_000, 10_003);
        assert!(registrations.is_empty());
    }

    fn fail(throttle: &mut Throttle, name: &str, peer: Peer, now_ms: u64) {
        assert_eq!(throttle.wait_s(name, peer, now_ms), None, "{name} at {now_ms}");
        let reservation = throttle.reserve(name, peer, true);
        throttle.settle(reservation, false, now_ms);
    }

    #[test]
    fn free_attempts_then_doubling_delays_then_forgotten() {
        let mut throttle = Throttle::new(3, 100, 1_000, 60_000);
        let peer = Peer(7);
        for t in 0..3 {
            fail(&mut throttle, "bob", peer, t);
        }
        assert_eq!(throttle.wait_s("bob", peer, 10), Some(1));
        fail(&mut throttle, "bob", peer, 1_002);
        assert_eq!(throttle.wait_s("bob", peer, 1_010), Some(2));
        fail(&mut throttle, "bob", peer, 3_002);
        assert_eq!(throttle.wait_s("bob", peer, 3_010), Some(4));
        // Another address, and another name from this address, are not slowed.
        assert_eq!(throttle.wait_s("bob", Peer(8), 3_010), None);
        assert_eq!(throttle.wait_s("carol", peer, 3_010), None);
        throttle.sweep(63_002);
        assert!(throttle.is_empty());
    }

    #[test]
    fn checks_in_flight_count_before_they_finish() {
        let mut throttle = Throttle::new(2, 100, 1_000, 60_000);
        let peer = Peer(1);
        let first = throttle.reserve("bob", peer, true);
        let _second = throttle.reserve("bob", peer, true);
        assert_eq!(throttle.wait_s("bob", peer, 0), Some(1));
        throttle.release(first);
        assert_eq!(throttle.wait_s("bob", peer, 0), None);
    }

    /// A key's last failure is a window old (or it has none) while a check on it is still
    /// being hashed: the sweep must keep it, or the next guesses start on fresh free checks.
    #[test]
    fn a_sweep_keeps_a_key_with_checks_in_flight_unless_planted() {
        for (bug, kept) in [(Planted::None, true), (Planted::ThrottleSweepsInFlight, false)] {
            let mut throttle = Throttle::new(1, 1, 1_000, 60_000);
            throttle.plant(bug);
            let peer = Peer(1);
            let in_flight = throttle.reserve("bob", peer, true);
            throttle.sweep(60_000);
            assert_eq!(throttle.wait_s("bob", peer, 60_000).is_some(), kept, "{bug:?}");
            throttle.settle(in_flight, false, 60_010);
            assert!(throttle.wait_s("bob", peer, 60_010).is_some(), "{bug:?}: a failure counts");
        }
    }

    #[test]
    fn the_address_budget_spans_names() {
        let mut throttle = Throttle::new(100, 3, 1_000, 60_000);
        for (t, name) in ["a", "b", "c"].into_iter().enumerate() {
            fail(&mut throttle, name, Peer(1), t as u64);
        }
        assert_eq!(throttle.wait_s("d", Peer(1), 5), Some(1));
        assert_eq!(throttle.wait_s("d", Peer(2), 5), None);
    }
}
