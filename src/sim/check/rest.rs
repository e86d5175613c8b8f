//! A server at rest holds nothing of its clients. After a run judged clean the world closes
//! every connection and lets time pass beyond every window the server keeps something for
//! (a ticket's lifetime, the login-failure and registration windows: README's limits) and
//! one sweep more; then what the server holds in memory beside its accounts must be gone:
//! state kept for a connection, a session, a ticket, a password check, a failure or a
//! registration, and any timer. A leak of it is invisible to clients: each connection that
//! left something behind makes the server a little bigger, until it is full. The world reports
//! the sizes; the rule is that each is zero.
//!
//! Then, every record being durable, the world crashes the resting server and recovers it
//! from its disk: the recovered server must hold what the resting one held (accounts with
//! their names, hashes and queues, every id), whatever mix of snapshot and log the disk holds.
//! The world compares the shortest records that rebuild each; the rule is their equality. And
//! the store recovered must count as many log bytes towards its next snapshot as the one that
//! crashed (they are on the disk): a count lost at each restart means a server restarted
//! often enough never compacts its log.

use super::Checker;

impl Checker {
    /// The server, at rest at `now_ms`, holds `held`: what, and how many.
    pub fn rested(&mut self, now_ms: u64, held: &[(&'static str, u64)]) {
        let left: Vec<String> =
            held.iter().filter(|(_, n)| *n > 0).map(|(what, n)| format!("{what}: {n}")).collect();
        self.coverage.count("rest: the server was judged at rest");
        let invariant =
            "a server whose clients have gone holds nothing of them once its windows lapse";
        self.expect(left.is_empty(), now_ms, invariant, || {
            format!(
                "every connection closed and every window lapsed, it still holds {}",
                left.join(", ")
            )
        });
    }

    /// The world restarted the resting server from its disk; `same` is whether the recovered
    /// server holds what it held (the world compares them).
    pub fn judge_recovery(
        &mut self,
        now_ms: u64,
        same: bool,
        invariant: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        self.coverage.count("rest: recovered from the disk and compared");
        self.expect(same, now_ms, invariant, detail);
    }
}
