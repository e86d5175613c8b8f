//! Failed-login throttling per account and per address, over a sliding window.

use std::collections::{BTreeMap, VecDeque};

use super::{AccountId, Peer};

/// Recent failure times per key, oldest first. Bounded: a key keeps at most `len_max` entries
/// and stale keys are swept.
#[derive(Debug, Clone)]
struct Window<K: Ord> {
    failures: BTreeMap<K, VecDeque<u64>>,
    len_max: usize,
}

impl<K: Ord + Copy> Window<K> {
    fn new(len_max: usize) -> Self {
        Window { failures: BTreeMap::new(), len_max }
    }

    fn record(&mut self, key: K, now_ms: u64) {
        let times = self.failures.entry(key).or_default();
        times.push_back(now_ms);
        while times.len() > self.len_max {
            times.pop_front();
        }
    }

    /// When `key` may try again, if it is throttled now.
    fn blocked_until_ms(&self, key: K, now_ms: u64, window_ms: u64) -> Option<u64> {
        let times = self.failures.get(&key)?;
        let recent = times.iter().filter(|&&t| t + window_ms > now_ms).count();
        (recent >= self.len_max).then(|| times.front().map_or(now_ms, |&t| t + window_ms))
    }

    fn sweep(&mut self, now_ms: u64, window_ms: u64) {
        self.failures.retain(|_, times| {
            while times.front().is_some_and(|&t| t + window_ms <= now_ms) {
                times.pop_front();
            }
            !times.is_empty()
        });
    }
}

/// Failed logins by account and by address.
#[derive(Debug, Clone)]
pub(crate) struct Throttle {
    by_account: Window<AccountId>,
    by_peer: Window<Peer>,
    window_ms: u64,
}

impl Throttle {
    pub fn new(per_account_max: usize, per_peer_max: usize, window_ms: u64) -> Self {
        Throttle {
            by_account: Window::new(per_account_max.max(1)),
            by_peer: Window::new(per_peer_max.max(1)),
            window_ms,
        }
    }

    pub fn record_failure(&mut self, account: Option<AccountId>, peer: Peer, now_ms: u64) {
        if let Some(account) = account {
            self.by_account.record(account, now_ms);
        }
        self.by_peer.record(peer, now_ms);
    }

    /// Seconds to wait, if logins for this account or from this address are throttled.
    pub fn wait_s(&self, account: Option<AccountId>, peer: Peer, now_ms: u64) -> Option<u64> {
        let by_account =
            account.and_then(|a| self.by_account.blocked_until_ms(a, now_ms, self.window_ms));
        let by_peer = self.by_peer.blocked_until_ms(peer, now_ms, self.window_ms);
        let until_ms = by_account.into_iter().chain(by_peer).max()?;
        Some(until_ms.saturating_sub(now_ms).div_ceil(1000).max(1))
    }

    pub fn sweep(&mut self, now_ms: u64) {
        self.by_account.sweep(now_ms, self.window_ms);
        self.by_peer.sweep(now_ms, self.window_ms);
    }

    pub fn is_empty(&self) -> bool {
        self.by_account.failures.is_empty() && self.by_peer.failures.is_empty()
    }

    pub fn forget_account(&mut self, account: AccountId) {
        self.by_account.failures.remove(&account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_and_recovers() {
        let mut throttle = Throttle::new(3, 10, 60_000);
        let (account, peer) = (Some(AccountId(1)), Peer(7));
        for t in 0..3 {
            assert_eq!(throttle.wait_s(account, peer, t), None);
            throttle.record_failure(account, peer, t);
        }
        assert_eq!(throttle.wait_s(account, peer, 10), Some(60));
        assert_eq!(throttle.wait_s(Some(AccountId(2)), peer, 10), None);
        assert_eq!(throttle.wait_s(account, peer, 60_000), None);
        throttle.sweep(70_000);
        assert!(throttle.by_account.failures.is_empty());
    }

    #[test]
    fn throttles_per_address() {
        let mut throttle = Throttle::new(3, 2, 1_000);
        throttle.record_failure(None, Peer(1), 0);
        throttle.record_failure(Some(AccountId(9)), Peer(1), 0);
        assert_eq!(throttle.wait_s(None, Peer(1), 1), Some(1));
        assert_eq!(throttle.wait_s(None, Peer(2), 1), None);
    }
}
