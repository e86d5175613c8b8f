//! "Each failure doubles the wait (1 s up to 60 s)" (README's limits table; PROTOCOL.md's
//! throttle): the wait a throttled password check is told never exceeds the cap. The cap is
//! the failure window the world configured (60 s by default), and a check refused while
//! others are in flight waits one back-off step: whichever is longer, in whole seconds as the
//! reply words it, and never less than one.

use super::{spec, Checker};

impl Checker {
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
