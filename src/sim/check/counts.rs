//! The throttle's counts, bounded from above. README: each (account, address) has
//! `login_failures_max` free password checks and each address `login_failures_per_peer_max`;
//! a check counts from the moment it starts; a right password ends its (account, address)
//! streak but not the address's; a restart forgets every count. So a throttled check is fair
//! only where one of the two counts may have reached its free checks when the server read it.
//!
//! The bound counts, for the check's address and for its (name, address), every other check
//! sent before its reply (the server may have read it first) that was not itself throttled
//! (a throttled check never starts), since the last crash before the check was sent; for the
//! name, less those certainly ended by a right password: a login that succeeded and was
//! answered before this check was sent, sent after they were answered. A check whose answer
//! was lost counts: it may have failed. Forgetting a count a window after its last failure is
//! left out (a bound that forgets nothing stays a bound).

use super::{Checker, NameId, Op, Pending};

/// One password check: a login or a deletion.
#[derive(Debug, Clone)]
pub(super) struct Check {
    host: u128,
    name: Option<NameId>,
    sent_ms: u64,
    crashes: u64,
    /// When answered (`u64::MAX` while in flight, or if its answer was lost).
    answered_ms: u64,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// In flight, or lost: it may have failed.
    Unknown,
    /// A login that succeeded: it ended its (name, address) streak.
    LoggedIn,
    /// Refused by the throttle: it never started.
    Throttled,
    /// Any other answer: it may have failed.
    Other,
}

impl Checker {
    /// `client` sent `p`: a password check is logged, and its place returned.
    pub(super) fn counts_sent(&mut self, client: usize, p: &Pending) -> Option<usize> {
        if !matches!(p.op, Op::Login { .. } | Op::Delete { .. }) {
            return None;
        }
        let host = self.client(client).host;
        let (name, sent_ms, crashes) = (p.target, p.sent_ms, p.crashes);
        let outcome = Outcome::Unknown;
        let check = Check { host, name, sent_ms, crashes, answered_ms: u64::MAX, outcome };
        self.counts.push(check);
        Some(self.counts.len() - 1)
    }

    /// Check `p` was answered at `now_ms` with `outcome`.
    pub(super) fn counts_answered(&mut self, now_ms: u64, p: &Pending, outcome: Outcome) {
        if let Some(check) = p.check.and_then(|i| self.counts.get_mut(i)) {
            (check.answered_ms, check.outcome) = (now_ms, outcome);
        }
    }

    /// `client`'s check `p`, answered at `now_ms`, was throttled: one of its counts must
    /// have been able to reach its free checks.
    pub(super) fn counts_throttled(&mut self, now_ms: u64, client: usize, p: &Pending, what: &str) {
        let Some(limits) = self.limits else { return };
        let host = self.client(client).host;
        let name = p.target;
        // A login that succeeded and was answered before this check was sent holds nothing;
        // the latest such login of the name ended every check of it answered before it was
        // sent.
        let settled_login = |c: &Check| c.outcome == Outcome::LoggedIn && c.answered_ms < p.sent_ms;
        let ended_before_ms = (self.counts.iter())
            .filter(|s| s.host == host && s.name == name && s.crashes == p.crashes)
            .filter(|s| settled_login(s))
            .map(|s| s.sent_ms)
            .max()
            .unwrap_or(0);
        let counted = |&(i, c): &(usize, &Check)| {
            c.host == host
                && Some(i) != p.check
                && c.outcome != Outcome::Throttled
                && !settled_login(c)
                && c.sent_ms <= now_ms
                && c.crashes == p.crashes
        };
        let by_peer = self.counts.iter().enumerate().filter(counted).count();
        let by_name = (self.counts.iter().enumerate().filter(counted))
            .filter(|(_, c)| c.name == name && c.answered_ms >= ended_before_ms)
            .count();
        let (name_free, peer_free) =
            (limits.login_failures_max.max(1), limits.login_failures_per_peer_max.max(1));
        self.coverage.count("throttle: counts bounded");
        let fair = by_name >= name_free || by_peer >= peer_free;
        self.expect(fair, now_ms, "the throttle refuses only at its counts", || {
            format!(
                "{what}: at most {by_name} checks of the name from its address could count \
                 ({name_free} free), at most {by_peer} from the address ({peer_free} free)"
            )
        });
    }
}
