//! The wait a registration refused for its address's limit is told. PROTOCOL.md: registrations
//! per address are limited, and a refusal "says plainly what happened and what the user can
//! do": here, when a registration will be taken again. That is when the oldest of the newest
//! `limit` registrations the server counted from the address leaves its window, so the wait is
//! never longer than that. The server counted each registration when it read it, between its
//! send and its end, and decided this refusal between its send and now; a registration it did
//! not count (refused, or forgotten by a restart) only makes the bound looser, so every
//! registration sent from the address but this one stands in the bound, at its end (or now,
//! while in flight).

use super::{spec, Checker, Pending};

impl Checker {
    /// Every registration sent from `client`'s address, by any client there, with the client
    /// that sent it: (sent, ended; `u64::MAX` while in flight).
    pub(super) fn registers_from(
        &self,
        client: usize,
    ) -> impl Iterator<Item = (usize, &(u64, u64))> + '_ {
        let host = self.clients.get(client).map(|c| c.host);
        let same_host = self.clients.iter().enumerate().filter(move |(_, c)| Some(c.host) == host);
        same_host.flat_map(|(at, c)| c.registers_ms.iter().map(move |r| (at, r)))
    }

    /// `client`'s registration `p` was refused at `now_ms` for its address's limit, with `text`.
    pub(super) fn registration_wait_bounded(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        text: &str,
        what: impl Fn() -> String,
    ) {
        let (Some(limits), Some(wait_s)) = (self.limits, spec::retry_after_s(text)) else {
            return;
        };
        let mut ends_ms: Vec<u64> = self
            .registers_from(client)
            .filter(|&(at, r)| !(at == client && *r == (p.sent_ms, u64::MAX)))
            .map(|(_, r)| r.1.min(now_ms))
            .collect();
        ends_ms.sort_unstable_by(|a, b| b.cmp(a));
        let Some(&oldest_ms) = ends_ms.get(limits.registrations_per_peer_max.max(1) - 1) else {
            // Too few to reach the limit: `refusal_fits` judges the refusal itself.
            return;
        };
        let frees_ms = oldest_ms + limits.registration_window_ms;
        let bound_s = frees_ms.saturating_sub(p.sent_ms).div_ceil(1000).max(1);
        self.coverage.count("registrations: wait bounded");
        let invariant = "a registration limit's wait ends when a registration leaves the window";
        self.expect(wait_s <= bound_s, now_ms, invariant, || {
            format!("{}; a registration it counted leaves the window within {bound_s} s", what())
        });
    }
}
