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

use super::spec::text::{LOGIN_FAILED, LOGIN_OK};
use super::spec::Refusal;
use super::{Checker, NameId, Op, Pending};

/// One password check: a login or a deletion.
#[derive(Debug, Clone)]
pub(super) struct Check {
    client: usize,
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
    /// A login refused for its password (or its unknown name): a failure.
    Failed,
    /// Any other answer: it may have failed, or been a right password.
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
        let answered_ms = u64::MAX;
        let check = Check { client, host, name, sent_ms, crashes, answered_ms, outcome };
        self.counts.push(check);
        Some(self.counts.len() - 1)
    }

    /// Whether a password check from `host`, other than `client`'s sent at one of `own_ms`,
    /// was sent by `now_ms` and answered no earlier than `since_ms` (or never).
    pub(super) fn other_check_between(
        &self,
        host: u128,
        client: usize,
        own_ms: [u64; 2],
        since_ms: u64,
        now_ms: u64,
    ) -> bool {
        (self.counts.iter())
            .filter(|c| c.host == host && !(c.client == client && own_ms.contains(&c.sent_ms)))
            .any(|c| c.sent_ms <= now_ms && c.answered_ms >= since_ms)
    }

    /// `client`'s request `p` got the reply `text` (`ok`: status 0): what it tells of a
    /// password check, after judging a verdict against the counts.
    pub(super) fn counts_replied(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        ok: bool,
        text: &str,
    ) -> Outcome {
        let login = matches!(p.op, Op::Login { .. });
        let outcome = match Refusal::of(text) {
            _ if ok && text == LOGIN_OK && login => Outcome::LoggedIn,
            Some(Refusal::Throttled) if !ok => Outcome::Throttled,
            _ if !ok && text == LOGIN_FAILED && login => Outcome::Failed,
            _ => Outcome::Other,
        };
        if matches!(outcome, Outcome::LoggedIn | Outcome::Failed) {
            let what = || format!("client {client} sent `{}` and got {text:?}", p.op);
            self.counts_verdict(now_ms, client, p, what);
        }
        outcome
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

    /// `client`'s check `p` got a password verdict at `now_ms`: where its counts certainly
    /// reached their free checks, and their wait had not run out, it should have been
    /// throttled.
    ///
    /// The bound from below, per count: failures answered before this check was sent, since
    /// the last crash, in a streak the server cannot have forgotten (each one answered, so
    /// holding its slot, less than a window after the one before it was sent, and this check
    /// answered less than a window after the last was sent: the count was never idle a
    /// window long), and for the name, with no check between them and this one that may
    /// have been a right password. Their doubled wait runs from the last one's sending at the
    /// earliest.
    fn counts_verdict(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        what: impl Fn() -> String,
    ) {
        let Some(limits) = self.limits else { return };
        let host = self.client(client).host;
        let window_ms = self.throttle_window_ms.max(1);
        let base_ms = limits.login_backoff_base_ms.max(1);
        let frees = [limits.login_failures_max.max(1), limits.login_failures_per_peer_max.max(1)];
        for (count, free) in [p.target, None].into_iter().zip(frees) {
            let Some((failures, last_sent_ms)) = self.streak(host, count, p, window_ms) else {
                continue;
            };
            if failures < free {
                continue;
            }
            self.coverage.count("throttle: free checks certainly spent");
            let beyond = u32::try_from(failures - free).unwrap_or(u32::MAX).min(32);
            let delay_ms = base_ms.saturating_mul(1 << beyond).min(window_ms);
            if now_ms >= last_sent_ms.saturating_add(delay_ms) {
                continue;
            }
            let of = if count.is_some() { "the name from its address" } else { "the address" };
            let invariant =
                "the throttle refuses where its counts certainly reached their free checks";
            self.expect(false, now_ms, invariant, || {
                format!(
                    "{}: {failures} failures of {of} certainly counted ({free} free), the \
                     last sent at {last_sent_ms} ms, so a wait of {delay_ms} ms at least",
                    what()
                )
            });
            return;
        }
    }

    /// The failures certainly counted for `p`, from `host` (of the name `name`, or all names
    /// where `None`), in the streak that ends with the latest of them, and when that one was
    /// sent.
    fn streak(
        &self,
        host: u128,
        name: Option<NameId>,
        p: &Pending,
        window_ms: u64,
    ) -> Option<(usize, u64)> {
        let ours = || {
            (self.counts.iter().enumerate())
                .filter(move |&(i, c)| {
                    Some(i) != p.check && c.host == host && c.crashes == p.crashes
                })
                .filter(move |(_, c)| name.is_none() || c.name == name)
                .map(|(_, c)| c)
        };
        // A check of the name that may have been a right password, settled between a failure
        // and this check's reading, may have ended the streak.
        let may_end = |f: &Check| {
            name.is_some()
                && ours().any(|s| {
                    !matches!(s.outcome, Outcome::Failed | Outcome::Throttled)
                        && s.answered_ms > f.sent_ms
                        && s.sent_ms <= p.reply_ms
                })
        };
        let mut chain: Vec<&Check> = ours()
            .filter(|c| c.outcome == Outcome::Failed && c.answered_ms < p.sent_ms)
            .filter(|f| !may_end(f))
            .collect();
        chain.sort_by_key(|c| c.sent_ms);
        let last = chain.pop()?;
        let mut failures = 1;
        let mut later = last;
        while let Some(earlier) = chain.pop() {
            if later.answered_ms >= earlier.sent_ms.saturating_add(window_ms) {
                break;
            }
            (failures, later) = (failures + 1, earlier);
        }
        (p.reply_ms < last.sent_ms.saturating_add(window_ms)).then_some((failures, last.sent_ms))
    }
}
