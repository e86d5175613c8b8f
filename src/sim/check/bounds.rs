//! Upper bounds judged on the disk: "a per-recipient queue is bounded" (PROTOCOL.md), the
//! configured cap on accounts and the bound on the bytes of all waiting messages (each counts
//! its text and [`MESSAGE_OVERHEAD_BYTES`], as `core::Config::queued_bytes_max` defines it). The rest of the checker judges refusals (a full queue had at
//! least its bound of messages sent to it), which a server that lets a queue grow one past its
//! bound passes; this judges acceptances. A client cannot count a queue (it cannot see which
//! pushes were acknowledged in time), but the records the server wrote tell exactly which
//! messages wait for whom and which accounts exist: a message record queues a message, a
//! delivered record removes it, a register record creates an account and a delete record
//! removes it with its queue. A crash may lose the records not yet synced; the server's
//! recovery then says where its log ends, and what the lost records did is taken back.
//! The same counts judge refusals from the other side: a request refused for the accounts cap
//! or the store's bytes was decided between its send and its reply, so the most the disk held
//! in that time must reach the bound ([`DiskPeak`]).
//!
//! Also a deadline's end: a relay the server has written pushes to completed its handshake,
//! so its handshake deadline ("a connection must log in within 60 s", the relay's handshake
//! being its login) no longer runs. And two bounds on what a writer takes at once, in flight
//! until written: a relay's pushes not yet recorded delivered (its window), a command
//! connection's replies (its pipeline).

use std::collections::{BTreeMap, BTreeSet};

use super::spec::Notice;
use super::{AccountId, Checker, ConnNo};

/// What a waiting message counts against the bound on bytes besides its text
/// (`core::Config::queued_bytes_max`: "each counts its text plus 96").
pub(super) const MESSAGE_OVERHEAD_BYTES: u64 = 96;

/// The most the disk held between a request's send and now: bytes of waiting messages and
/// accounts.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct DiskPeak {
    pub queued_bytes: u64,
    pub accounts: usize,
}

/// What one record did to the counts, kept to take it back if a crash loses the record.
#[derive(Debug, Clone)]
enum Change {
    Queued {
        to: AccountId,
        id: u64,
    },
    /// The ids that were waiting (a repeated acknowledgement removes nothing).
    Delivered {
        to: AccountId,
        ids: Vec<u64>,
    },
    Registered {
        account: AccountId,
    },
    Deleted {
        account: AccountId,
        queue: BTreeSet<u64>,
    },
}

/// The queues and accounts the disk shows.
#[derive(Debug, Default, Clone)]
pub(super) struct DiskBounds {
    /// Each live account's waiting message ids.
    queues: BTreeMap<AccountId, BTreeSet<u64>>,
    /// Every record's change, by lsn (increasing).
    journal: Vec<(u64, Change)>,
    /// Pushes written to acknowledging relays and not recorded delivered: id to the relays.
    in_flight: BTreeMap<u64, Vec<ConnNo>>,
    /// How many of them each relay has.
    in_flight_len: BTreeMap<ConnNo, usize>,
    /// Every message id recorded delivered (a push written after its record, answering a
    /// lying early acknowledgement, is not in flight).
    delivered_ids: BTreeSet<u64>,
    /// Every message's cost against the bound on bytes, by id.
    costs: BTreeMap<u64, u64>,
    /// The waiting messages' costs together.
    queued_bytes: u64,
}

impl DiskBounds {
    fn queued(&mut self, lsn: u64, to: AccountId, id: u64, text_len: usize) -> usize {
        self.costs.insert(id, text_len as u64 + MESSAGE_OVERHEAD_BYTES);
        let queue = self.queues.entry(to).or_default();
        if !queue.insert(id) {
            return queue.len();
        }
        let len = queue.len();
        self.queued_bytes += self.costs[&id];
        self.journal.push((lsn, Change::Queued { to, id }));
        len
    }

    /// What the messages `ids` cost against the bound on bytes.
    fn cost_of<'a>(&self, ids: impl IntoIterator<Item = &'a u64>) -> u64 {
        ids.into_iter().map(|id| self.costs.get(id).copied().unwrap_or(0)).sum()
    }

    /// What the disk holds now (a [`DiskPeak`] of this instant).
    pub(super) fn held(&self) -> DiskPeak {
        DiskPeak { queued_bytes: self.queued_bytes, accounts: self.queues.len() }
    }

    fn delivered(&mut self, lsn: u64, to: AccountId, ids: impl IntoIterator<Item = u64>) {
        let mut removed = Vec::new();
        for id in ids {
            self.delivered_ids.insert(id);
            for conn in self.in_flight.remove(&id).unwrap_or_default() {
                self.in_flight_len.entry(conn).and_modify(|len| *len -= 1);
            }
            if self.queues.get_mut(&to).is_some_and(|queue| queue.remove(&id)) {
                removed.push(id);
            }
        }
        self.queued_bytes -= self.cost_of(&removed);
        self.journal.push((lsn, Change::Delivered { to, ids: removed }));
    }

    /// Pushes `ids` were written to relay `conn`: how many it now has in flight.
    fn pushes_written(&mut self, conn: ConnNo, ids: &[u64]) -> usize {
        let len = self.in_flight_len.entry(conn).or_default();
        for &id in ids.iter().filter(|id| !self.delivered_ids.contains(id)) {
            self.in_flight.entry(id).or_default().push(conn);
            *len += 1;
        }
        *len
    }

    fn registered(&mut self, lsn: u64, account: AccountId) -> usize {
        self.queues.entry(account).or_default();
        self.journal.push((lsn, Change::Registered { account }));
        self.queues.len()
    }

    fn deleted(&mut self, lsn: u64, account: AccountId) {
        let queue = self.queues.remove(&account).unwrap_or_default();
        self.queued_bytes -= self.cost_of(&queue);
        self.journal.push((lsn, Change::Deleted { account, queue }));
    }

    /// The disk ends at `last_lsn`: takes back what the later records did, newest first.
    fn recovered(&mut self, last_lsn: u64) {
        let lost_at = self.journal.partition_point(|(lsn, _)| *lsn <= last_lsn);
        let lost: Vec<(u64, Change)> = self.journal.drain(lost_at..).collect();
        for (_, change) in lost.into_iter().rev() {
            match change {
                Change::Queued { to, id } => {
                    if self.queues.get_mut(&to).is_some_and(|queue| queue.remove(&id)) {
                        self.queued_bytes -= self.cost_of([&id]);
                    }
                }
                Change::Delivered { to, ids } => {
                    let cost = self.cost_of(&ids);
                    if let Some(queue) = self.queues.get_mut(&to) {
                        self.queued_bytes += cost;
                        queue.extend(ids);
                    }
                }
                Change::Registered { account } => {
                    let queue = self.queues.remove(&account).unwrap_or_default();
                    self.queued_bytes -= self.cost_of(&queue);
                }
                Change::Deleted { account, queue } => {
                    self.queued_bytes += self.cost_of(&queue);
                    self.queues.insert(account, queue);
                }
            }
        }
    }
}

impl Checker {
    /// The server wrote message `id` (of a text `text_len` bytes long) for account `to` at
    /// `lsn`: the queue it joined must be within its bound, and so must the bytes of every
    /// waiting message.
    pub fn queued_on_disk(
        &mut self,
        now_ms: u64,
        lsn: u64,
        to: AccountId,
        id: u64,
        text_len: usize,
    ) {
        let len = self.disk_bounds.queued(lsn, to, id, text_len);
        self.disk_peaks_update();
        let Some(limits) = self.limits else { return };
        let max = limits.queue_len_max;
        self.expect(len <= max, now_ms, "a recipient's queue holds at most its bound", || {
            format!("m{id} made {to:?}'s queue {len} messages long (bound {max})")
        });
        let (bytes, max) = (self.disk_bounds.queued_bytes, limits.queued_bytes_max);
        self.expect(
            bytes <= max,
            now_ms,
            "waiting messages stay within their bound on bytes",
            || format!("m{id} made the waiting messages {bytes} bytes (bound {max})"),
        );
    }

    /// Raises every request in flight's [`DiskPeak`] to what the disk holds now.
    fn disk_peaks_update(&mut self) {
        let now = self.disk_bounds.held();
        for p in self.clients.iter_mut().flat_map(|c| c.pending.iter_mut()) {
            p.disk_peak.queued_bytes = p.disk_peak.queued_bytes.max(now.queued_bytes);
            p.disk_peak.accounts = p.disk_peak.accounts.max(now.accounts);
        }
    }

    /// The server wrote that messages `ids` of account `to` are delivered, at `lsn`.
    pub fn delivered_on_disk(
        &mut self,
        lsn: u64,
        to: AccountId,
        ids: impl IntoIterator<Item = u64>,
    ) {
        self.disk_bounds.delivered(lsn, to, ids);
    }

    /// The server wrote the registration of `account` at `lsn`: the accounts must be within
    /// their cap.
    pub fn registered_on_disk(&mut self, now_ms: u64, lsn: u64, account: AccountId) {
        let len = self.disk_bounds.registered(lsn, account);
        self.disk_peaks_update();
        let Some(max) = self.limits.map(|l| l.accounts_max) else { return };
        self.expect(len <= max, now_ms, "accounts never exceed their cap", || {
            format!("{account:?} made {len} accounts (cap {max})")
        });
    }

    /// The server wrote the deletion of `account` at `lsn`.
    pub fn deleted_on_disk(&mut self, lsn: u64, account: AccountId) {
        self.disk_bounds.deleted(lsn, account);
    }

    /// The server's writer wrote pushes `ids` to the acknowledging relay `conn`: the pushes
    /// on it that no delivered record covers must fit its window (the server counts a push
    /// in flight from when it pushes it, before its writer writes it, until it reads its
    /// acknowledgement, which it records delivered at once).
    pub fn acked_pushes_written(&mut self, now_ms: u64, conn: ConnNo, ids: &[u64]) {
        let len = self.disk_bounds.pushes_written(conn, ids);
        let Some(window) = self.limits.map(|l| l.push_window_len) else { return };
        let invariant = "an acknowledging relay has at most its window of pushes in flight";
        self.expect(len <= window, now_ms, invariant, || {
            format!("relay {conn} has {len} pushes written and not acknowledged (window {window})")
        });
    }

    /// A command connection's writer took `answers` replies at once (close notices left
    /// out): the server reads at most `pipeline_len_max` requests ahead of the replies its
    /// writer has written, so no more than that many can be waiting together.
    pub fn replies_taken(&mut self, now_ms: u64, conn: ConnNo, answers: usize) {
        let Some(max) = self.limits.map(|l| l.pipeline_len_max) else { return };
        let invariant = "a pipeline holds at most its bound of unwritten replies";
        self.expect(answers <= max, now_ms, invariant, || {
            format!("connection {conn}'s writer took {answers} replies at once (bound {max})")
        });
    }

    /// The server wrote a failure frame `text` that closes relay `conn`, after pushes to it
    /// (`pushed`: in this write or an earlier one).
    pub fn relay_notice_written(&mut self, now_ms: u64, conn: ConnNo, text: &str, pushed: bool) {
        let pushed = pushed || self.hostile.written.contains_key(&conn);
        // Either deadline's words: a server that forgot the deadline was a relay's may word it
        // as the command connection's.
        let timed_out = matches!(
            Notice::of(text),
            Some(Notice::RelayHandshakeDeadline | Notice::LoginDeadline)
        );
        let invariant = "a relay that was pushed to outlives its handshake deadline";
        self.expect(!(pushed && timed_out), now_ms, invariant, || {
            format!("relay {conn} got pushes, then {text:?}")
        });
    }

    /// The counts after a recovery that ended the log at `last_lsn`.
    pub(super) fn bounds_recovered(&mut self, last_lsn: u64) {
        self.disk_bounds.recovered(last_lsn);
        self.disk_peaks_update();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crash_takes_back_what_its_lost_records_did() {
        let mut bounds = DiskBounds::default();
        let bytes = |text_len: u64| text_len + MESSAGE_OVERHEAD_BYTES;
        assert_eq!(bounds.registered(1, AccountId(1)), 1);
        assert_eq!(bounds.queued(2, AccountId(1), 2, 10), 1);
        assert_eq!(bounds.queued(3, AccountId(1), 3, 20), 2);
        assert_eq!(bounds.held().queued_bytes, bytes(10) + bytes(20));
        bounds.delivered(4, AccountId(1), [2, 2, 9]);
        assert_eq!(bounds.held().queued_bytes, bytes(20), "m2 delivered, once");
        bounds.deleted(5, AccountId(1));
        assert_eq!(bounds.held().queued_bytes, 0, "m3 went with its recipient");
        assert_eq!(bounds.registered(6, AccountId(6)), 1);
        bounds.recovered(3);
        assert_eq!(bounds.queues.len(), 1, "account 6 was lost, account 1 is back");
        assert_eq!(bounds.held().queued_bytes, bytes(10) + bytes(20), "m2 and m3 wait again");
        assert_eq!(bounds.queued(4, AccountId(1), 4, 0), 3, "m2 and m3 wait again, with m4");
        assert_eq!(bounds.held().accounts, 1);
    }
}
