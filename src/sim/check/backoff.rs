//! "Each failure doubles the wait (1 s up to 60 s)" (README's limits table; PROTOCOL.md's
//! throttle): the wait a throttled password check is told never exceeds the cap. The cap is
//! the failure window the world configured (60 s by default), and a check refused while
//! others are in flight waits one back-off step: whichever is longer, in whole seconds as the
//! reply words it, and never less than one.
//!
//! And the wait told is enough: a client that waits as long as it was told, then checks the
//! same name again, is not throttled for it, unless some other check from its address was in
//! flight or sent meanwhile (whose failure, or whose slot, may have made the wait longer).

use super::{counts, spec, Checker, NameId, Op, Pending};

/// A throttled check: when it was sent and answered, of which name, and the wait it was told.
#[derive(Debug, Clone, Copy)]
pub(super) struct Told {
    sent_ms: u64,
    answered_ms: u64,
    name: Option<NameId>,
    wait_s: u64,
}

impl Checker {
    /// The throttled reply `text` to `client`'s password check `p`, answered at `now_ms`.
    pub(super) fn throttled(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        text: &str,
        what: impl Fn() -> String,
    ) {
        let fair = self.recently_failed(client, p);
        self.expect(fair, now_ms, "throttling follows failures", &what);
        self.counts_throttled(now_ms, client, p, &what());
        self.throttle_wait_capped(now_ms, text, &what);
        self.throttle_waited_out(now_ms, client, p, &what);
        let Some(wait_s) = spec::retry_after_s(text) else { return };
        let c = self.client(client);
        c.throttled_until_ms = c.throttled_until_ms.max(now_ms + wait_s * 1000);
        let told = Told { sent_ms: p.sent_ms, answered_ms: now_ms, name: p.target, wait_s };
        c.told = Some(told);
    }

    /// `client`'s check `p`, throttled, came after it waited out the wait it was told for the
    /// same name: unfair, unless another check from its address could have counted meanwhile.
    fn throttle_waited_out(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        what: impl Fn() -> String,
    ) {
        let Some(told) = self.client(client).told else { return };
        if !self.waited_out(now_ms, client, p, told) {
            return;
        }
        self.coverage.count("throttle: waited out");
        let invariant = "a throttled wait, waited out, is enough";
        self.expect(false, now_ms, invariant, || {
            let wait_s = told.wait_s;
            format!("{}; it was told to wait {wait_s} s at {} ms", what(), told.answered_ms)
        });
    }

    /// `client`'s request `p` was answered at `now_ms`: if a password check, throttled or
    /// not, it is no longer in flight, and a wait told before it is spent (and counted as
    /// waited out, where it was, and not throttled). A check whose connection was lost stays
    /// in flight: the server may still be running it.
    pub(super) fn password_check_answered(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        outcome: counts::Outcome,
    ) {
        if !matches!(p.op, Op::Login { .. } | Op::Delete { .. }) {
            return;
        }
        self.counts_answered(now_ms, p, outcome);
        let Some(told) = self.client(client).told else { return };
        if told.sent_ms == p.sent_ms {
            return;
        }
        if self.waited_out(now_ms, client, p, told) {
            self.coverage.count("throttle: waited out");
        }
        self.client(client).told = None;
    }

    /// Whether `client`'s check `p` came after it waited out the wait `told`, for the same
    /// name, with no other check from its address in flight or sent meanwhile.
    fn waited_out(&mut self, now_ms: u64, client: usize, p: &Pending, told: Told) -> bool {
        let waited = p.sent_ms >= told.answered_ms + told.wait_s * 1000;
        let check = matches!(p.op, Op::Login { .. } | Op::Delete { .. });
        if !waited || !check || p.target != told.name || self.storm.contains(&client) {
            return false;
        }
        let host = self.client(client).host;
        let own_ms = [told.sent_ms, p.sent_ms];
        !self.other_check_between(host, client, own_ms, told.sent_ms, now_ms)
    }

    /// A throttled reply `text` to a password check, answered at `now_ms`.
    pub(super) fn throttle_wait_capped(
        &mut self,
        now_ms: u64,
        text: &str,
        what: impl Fn() -> String,
    ) {
        let Some(wait_s) = spec::retry_after_s(text) else { return };
        let base_ms = self.limits.map_or(0, |l| l.login_backoff_base_ms);
        let cap_s = self.throttle_window_ms.max(base_ms).div_ceil(1000).max(1);
        self.coverage.count("throttle: wait checked");
        if wait_s == cap_s {
            self.coverage.count("throttle: wait at its cap");
        }
        self.expect(wait_s <= cap_s, now_ms, "a throttled wait never exceeds its cap", || {
            format!("{}; the cap is {cap_s} s", what())
        });
    }
}
