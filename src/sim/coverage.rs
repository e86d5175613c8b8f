//! The reachability report ("sometimes" properties, as Antithesis and stateright call them):
//! how often each refusal, record kind, fault, limit and hostile action happened in a run,
//! summed over a sweep and printed by `chatroom sim --coverage`. A row that stays at zero over
//! the default sweep is a branch of the server no run tests; `expected_rows` lists the rows
//! that must not (checked by `sim::tests`).
//!
//! Counting is a map update under a `&'static str` key: no text is formatted in a run.
//!
//! Not a row: a full outgoing mailbox (the host's hang-up). Its bound follows from the core's
//! own (push window, pipeline), so no run can reach it (ARCHITECTURE.md); the loom models and
//! `host`'s tests plant the bugs that would. A row for the inbound buffer's close is counted
//! but not expected: a client that pipelines waits in the kernel's buffers, so only a client
//! that writes past a frame limit without reading meets it.

use std::collections::BTreeMap;
use std::fmt;

/// The rows of the hostile clients' acts and what they got, one per
/// `check::Observation::kinds()` entry, as `hostile: KIND` (a test keeps the two lists
/// together); they are expected rows.
pub const HOSTILE_ROWS: &[&str] = &[
    "hostile: ack-forged",
    "hostile: ack-early",
    "hostile: ack-dup",
    "hostile: ack-cross",
    "hostile: ticket-stolen",
    "hostile: ticket-replay",
    "hostile: ticket-expired",
    "hostile: ticket-hoard",
    "hostile: ticket-evicted",
    "hostile: ticket-after-logout",
    "hostile: frame-dribbled",
    "hostile: frame-over",
    "hostile: frame-at-limit",
    "hostile: bad-utf8",
    "hostile: extra-field",
    "hostile: unknown-code",
    "hostile: empty-text",
    "hostile: relay-hello-at-limit",
    "hostile: relay-hello-over",
    "hostile: relay-ack-at-limit",
    "hostile: relay-ack-over",
    "hostile: bad-header-0",
    "hostile: bad-header-1",
    "hostile: bad-header-2",
    "hostile: bad-header-3",
    "hostile: bad-header-4",
    "hostile: bad-header-5",
    "hostile: bad-header-6",
    "hostile: bad-header-7",
    "hostile: bad-header-8",
    "hostile: bad-header-9",
    "hostile: hostile-relay-opened",
    "hostile: relay-refused",
    "hostile: relay-closed",
    "hostile: relay-failure",
    "hostile: ticket-refused",
    "hostile: name-case",
    "hostile: list-glob",
];

/// The row of a hostile observation of kind `kind` (`None` for a kind without a row).
pub fn hostile_row(kind: &str) -> Option<&'static str> {
    HOSTILE_ROWS.iter().copied().find(|row| row.strip_prefix("hostile: ") == Some(kind))
}

/// Rows the default 1,000-seed swarm sweep must reach.
pub fn expected_rows() -> Vec<&'static str> {
    let mut rows = vec![
        // Replies PROTOCOL.md spells, when they refuse.
        "refusal: login failed",
        "refusal: name taken",
        "refusal: needs login",
        "refusal: unknown recipient",
        "refusal: delete refused",
        // Refusals worded by the server (`spec::Refusal`).
        "refusal: queue full",
        "refusal: store full",
        "refusal: throttled",
        "refusal: registrations per address",
        "refusal: accounts limit",
        "refusal: invalid password",
        "refusal: invalid name",
        "list: truncated",
        "list: scan stop checked",
        // What the outside tester's checks need to see happen: a deletion naming another
        // account refused, a list showing a name whose registered spelling the oracle knows.
        "delete: another account refused",
        "list: spelling checked",
        // Failure frames before a close (`spec::Notice`).
        "close: frame too large",
        "close: login deadline",
        "close: relay handshake deadline",
        "close: frame deadline",
        "close: connections per address",
        "close: connection limit",
        "close: relay refused",
        "close: taken over",
        "close: account deleted",
        // What the server wrote to its disk.
        "record: register",
        "record: delete",
        "record: message",
        "record: delivered",
        "snapshot",
        // Faults.
        "fault: reset",
        "fault: partition",
        "fault: crash",
        "fault: crash after a snapshot",
        "fault: crash while a snapshot is written",
        "fault: crash losing unsynced records",
        "fault: process killed",
        "fault: process killed with unsynced records",
        "fault: crash while a sync is in flight",
        "fault: server stopped",
        "fault: server stopped with unsynced records",
        // The server's log writer, which the simulated store runs.
        "store: records appended while a sync is in flight",
        "store: a writer's take capped, the rest left queued",
        // Limits reached.
        "limit: push window full",
        "limit: pipeline full",
        "limit: reads held for owed replies",
        "limit: ticket expired",
        // The throttle's doubling wait told at its cap (a patient guesser's run).
        "throttle: wait at its cap",
        // A check sent as long as the wait told after it was throttled, with no other check
        // from its address meanwhile: judged ("a throttled wait, waited out, is enough").
        "throttle: waited out",
        "throttle: counts bounded",
        "throttle: free checks certainly spent",
        // A registration refused for its address's limit, its wait judged.
        "registrations: wait bounded",
        // The world fell quiet after the liveness phase, and a relay whose session a takeover
        // or a deletion ended was judged closed then.
        "settle: quiet",
        "pump: a session's end closed its relay",
        // The TCP adapter's path for a push to an idle acknowledging relay, which the
        // simulator's server runs too (`Host::write_through`): whole, and cut short.
        "relay: a push written straight to an idle relay",
        "relay: a push cut short by a full send buffer",
        // The TCP adapter's read ahead of owed replies, which the simulated server does too.
        "limit: a request read ahead of owed replies",
        // Every seed judged at rest recovers its whole state from a snapshot once.
        "rest: recovered from a snapshot of everything",
        // Hostile clients of the mixed workload's own.
        "hostile: bare handshake in another name",
        "hostile: login storm",
        "hostile: login storm back after a quiet window",
        "hostile: pipelined burst",
        "hostile: patient guesser",
    ];
    rows.extend_from_slice(HOSTILE_ROWS);
    rows
}

/// Counts per row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    rows: BTreeMap<&'static str, u64>,
}

impl Coverage {
    /// One more of `row`.
    pub fn count(&mut self, row: &'static str) {
        *self.rows.entry(row).or_insert(0) += 1;
    }

    /// `n` more of `row`.
    pub fn add(&mut self, row: &'static str, n: u64) {
        *self.rows.entry(row).or_insert(0) += n;
    }

    /// The count of `row`.
    pub fn get(&self, row: &str) -> u64 {
        self.rows.get(row).copied().unwrap_or(0)
    }

    /// Adds every row of `other` (a sweep sums its seeds).
    pub fn merge(&mut self, other: &Coverage) {
        for (row, n) in &other.rows {
            self.add(row, *n);
        }
    }

    /// Expected rows that stayed at zero.
    pub fn missing(&self) -> Vec<&'static str> {
        expected_rows().into_iter().filter(|row| self.get(row) == 0).collect()
    }

    /// Every row counted or expected, with its count, in row order.
    pub fn rows(&self) -> Vec<(&'static str, u64)> {
        let mut rows = self.rows.clone();
        for row in expected_rows() {
            rows.entry(row).or_insert(0);
        }
        rows.into_iter().collect()
    }
}

impl fmt::Display for Coverage {
    /// The table: one row a line, `count  row`, zeros of expected rows marked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let expected = expected_rows();
        for (row, n) in self.rows() {
            let mark = if n == 0 && expected.contains(&row) { "  <- never reached" } else { "" };
            writeln!(f, "{n:>10}  {row}{mark}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of hostile observation has its row, and every row a kind.
    #[test]
    fn hostile_rows_are_the_observation_kinds() {
        let kinds = crate::sim::check::Observation::kinds();
        for kind in &kinds {
            assert!(hostile_row(kind).is_some(), "no row for {kind}");
        }
        assert_eq!(HOSTILE_ROWS.len(), kinds.len());
    }
}
