//! "A message accepted for a user whose relay is attached is pushed to that relay": PROTOCOL.md's
//! messages are "pushed as soon as a relay is attached, with no polling delay", which holds for
//! a message that arrives while the relay is attached as much as for the backlog a new relay
//! finds. The liveness phase alone cannot see a server that forgets to push a send: a fresh
//! login and relay push everything queued. This rule needs no timing bound, so slow readers,
//! partitions, disk stalls and writer delays cannot make it fire on a correct server:
//!
//! - Relay `R` of client `c` is *attached* to name `K` from the first push for `K` that arrives
//!   on it (a push proves the handshake bound it; before one, the checker cannot tell a bound
//!   relay from a handshake still on its way).
//! - Its attachment *may end* from the earliest send, after `R` was opened, of a login,
//!   register or delete of `K` by any client (a takeover), of a login, register, logout or
//!   delete by `c` (its own session changes), or `c` closing its command connection or `R` (the
//!   server may have bound `R` long before the proof arrived, and such a request may have been
//!   answered in between: default-faults seed 522); from the proof itself if
//!   such a request was still unanswered then (a takeover whose password check is running) or
//!   `c`'s command connection had already ended;
//!   and at the latest when the relay's end of stream reaches `c`.
//! - It *may have ended unseen*, and `R` owes nothing, if `c`'s command connection (the one it
//!   held when `R` was attached) was closed by the server or a fault (the server logs it out
//!   when it notices, at a time no client sees), if the server wrote on `R` a failure frame
//!   other than the takeover and deletion notices (a deadline, a lie the client told), or if the
//!   server crashed.
//! - A message to `K`, sent after `R` was attached and acknowledged to its sender before its
//!   attachment may end, is *owed to `R`* if at most `push_window_len` messages to `K` were
//!   sent up to that acknowledgement (so earlier pushes awaiting acknowledgement cannot fill
//!   the relay's window).
//! - When the server closes `R` (its end of stream reaches `c`; not a fault, not `c`'s own
//!   close), every message owed to `R` has arrived on it: the server released the push with
//!   the acknowledgement and writes what it released before it closes a relay.
//!
//! Judged once the world has settled (nothing in flight: see `World::settle`), so that an
//! excuse that reaches the checker after the relay's end of stream (a command connection's
//! close over a slower link) still counts, and so that a relay the server never closed is
//! judged too: every message owed to it has arrived on it by then.
//!
//! "A session's end closes its relay" (PROTOCOL.md: "a new login takes over, and the older
//! session is logged out and its relay closed"; "deleting an account ends its session"): a
//! relay attached to `K` before a login, register or delete of `K` was sent that succeeded
//! (its reply says so) was bound to a session that request ended, or to one ended before it,
//! so once the world has settled its end of stream has reached its client, unless a fault,
//! a crash, a failure frame the rule cannot place or its client ended it first. A relay left
//! open there is bound to nothing: pushes no longer go to it, and nothing will close it.

use super::{Checker, ConnNo, NameId};
use crate::sim::scenario::Op;
use crate::sim::spec::Notice;

/// What the rule keeps of one relay.
#[derive(Debug, Clone)]
pub(super) struct Attachment {
    /// When the first push for a name its client held arrived, and that name.
    pub attached: Option<(u64, NameId)>,
    /// The client's command connection (its count of connections so far) when it was attached.
    pub command_no: u64,
    /// The earliest send that may have ended the attachment (`u64::MAX`: none yet).
    pub may_end_ms: u64,
    /// Before the proof: sends of logins, registers and deletes by other clients, and the
    /// names they were for (those for the name the proof shows may have ended it).
    pub ends_before_proof: Vec<(u64, NameId)>,
    /// The server may have ended it unseen (see the module's list).
    pub excused: bool,
    /// The client closed it.
    pub closed_by_client: bool,
    /// When the server's end of stream reached the client (not a fault).
    pub ended_ms: Option<u64>,
    /// The first request that ended the session it was attached to, with when its success
    /// was told (a takeover or a deletion of the attached name sent after the proof).
    pub ended_by: Option<(u64, &'static str)>,
}

impl Attachment {
    pub(super) fn new() -> Self {
        Attachment {
            attached: None,
            command_no: 0,
            may_end_ms: u64::MAX,
            ends_before_proof: Vec::new(),
            excused: false,
            closed_by_client: false,
            ended_ms: None,
            ended_by: None,
        }
    }
}

/// Whether a request may end its client's session (and so the relay bound to it).
pub(super) fn ends_session(op: &Op) -> bool {
    matches!(op, Op::Register { .. } | Op::Login { .. } | Op::Delete { .. } | Op::Logout)
}

pub(super) const INVARIANT: &str =
    "a message accepted for a user whose relay is attached is pushed to it";

pub(super) const CLOSES: &str = "a session's end closes its relay";

impl Checker {
    /// A push of a message to `key` arrived on `conn`, whose client held `key`.
    pub(super) fn pump_pushed(&mut self, now_ms: u64, conn: ConnNo, key: NameId) {
        let Some(relay) = self.relays.get(&conn).filter(|r| r.pump.attached.is_none()) else {
            return;
        };
        let client = &self.clients[relay.client];
        let command_no = client.command_no;
        // A request sent before the proof and still unanswered may end the attachment at any
        // time after it (a takeover whose password check is still running).
        let name = &self.names[key.0 as usize].1;
        let in_flight = !client.command_open
            || name.logins_in_flight > 0
            || name.mutations_in_flight > 0
            || client.pending.iter().any(|p| ends_session(&p.op));
        let relay = self.relays.get_mut(&conn).expect("looked up above");
        let a = &mut relay.pump;
        a.attached = Some((now_ms, key));
        a.command_no = command_no;
        if in_flight {
            a.may_end_ms = now_ms;
        }
        let takeovers = a.ends_before_proof.iter().filter(|(_, k)| *k == key);
        a.may_end_ms = takeovers.fold(a.may_end_ms, |end, &(sent_ms, _)| end.min(sent_ms));
        a.ends_before_proof = Vec::new();
    }

    /// `client` sent a request that may end attachments: a login, register or delete of `key`
    /// ends those to `key`; any of those or a logout ends the client's own.
    pub(super) fn pump_session_request(&mut self, now_ms: u64, client: usize, key: Option<NameId>) {
        for (_, relay) in self.relays.iter_mut() {
            let a = &mut relay.pump;
            let to_key = a.attached.is_some_and(|(_, k)| Some(k) == key);
            if relay.client == client || to_key {
                a.may_end_ms = a.may_end_ms.min(now_ms);
            } else if let (None, Some(key)) = (a.attached, key) {
                a.ends_before_proof.push((now_ms, key));
            }
        }
    }

    /// `client` closed connection `conn` (its relay, or its command connection).
    pub fn client_closed(&mut self, now_ms: u64, client: usize, conn: ConnNo) {
        if let Some(relay) = self.relays.get_mut(&conn) {
            relay.pump.closed_by_client = true;
            relay.pump.ends_before_proof = Vec::new();
        } else {
            self.client(client).command_open = false;
            self.pump_session_request(now_ms, client, None);
        }
    }

    /// The server (or a fault) closed `client`'s command connection: its session ended at a
    /// time no client sees.
    pub(super) fn pump_command_dropped(&mut self, client: usize) {
        let state = self.client(client);
        state.command_open = false;
        let command_no = state.command_no;
        for (_, relay) in self.relays.iter_mut() {
            // A relay not yet attached may be proven after the client reconnected.
            let attached_then =
                relay.pump.attached.is_none() || relay.pump.command_no == command_no;
            if relay.client == client && attached_then {
                relay.pump.excused = true;
            }
        }
    }

    /// The server crashed: every relay's writes may have been cut.
    pub(super) fn pump_crashed(&mut self) {
        for (_, relay) in self.relays.iter_mut() {
            relay.pump.excused = true;
        }
    }

    /// The server wrote a failure frame with `text` on relay `conn`.
    pub fn relay_failure_written(&mut self, conn: ConnNo, text: &str) {
        let known = matches!(Notice::of(text), Some(Notice::TakenOver | Notice::AccountDeleted));
        if let (false, Some(relay)) = (known, self.relays.get_mut(&conn)) {
            relay.pump.excused = true;
        }
    }

    /// The server's end of stream on relay `conn` reached its client (no fault cut it).
    pub fn relay_ended(&mut self, now_ms: u64, conn: ConnNo) {
        if let Some(relay) = self.relays.get_mut(&conn) {
            // No proof can come after the end: what waited for one is not needed.
            relay.pump.ends_before_proof = Vec::new();
            relay.pump.ended_ms.get_or_insert(now_ms);
            relay.pump.may_end_ms = relay.pump.may_end_ms.min(now_ms);
        }
    }

    /// A request of `what` for `key` (a login, register or delete), sent at `sent_ms`,
    /// succeeded, as its reply told at `now_ms`: it ended every session of `key`, so every
    /// relay attached to `key` before it was sent must close.
    pub(super) fn pump_session_ended(
        &mut self,
        now_ms: u64,
        sent_ms: u64,
        key: NameId,
        what: &'static str,
    ) {
        for (_, relay) in self.relays.iter_mut() {
            let a = &mut relay.pump;
            let before = a.attached.is_some_and(|(ms, k)| k == key && ms < sent_ms);
            if before && a.ended_by.is_none() {
                a.ended_by = Some((now_ms, what));
            }
        }
    }

    /// The world has settled (nothing in flight) at `now_ms`: no relay whose session ended
    /// is still open.
    pub(super) fn pump_settled(&mut self, now_ms: u64) {
        // Relays a session's end must have closed that nothing else may have ended first.
        let judged: Vec<_> = (self.relays.iter())
            .filter(|(_, r)| !(r.pump.excused || r.pump.closed_by_client || r.reset))
            .filter(|(_, r)| r.pump.ended_by.is_some())
            .collect();
        self.coverage.add("pump: a session's end closed its relay", judged.len() as u64);
        let open = judged.iter().find(|(_, r)| r.pump.ended_ms.is_none()).and_then(|(conn, r)| {
            let ((attached_ms, key), (told_ms, what)) = (r.pump.attached?, r.pump.ended_by?);
            Some(format!(
                "relay {conn} of client {} was attached to {} (a push for it arrived at \
                 {attached_ms} ms); a {what} of that name sent after that succeeded (told at \
                 {told_ms} ms), and when nothing was in flight any more, at {now_ms} ms, the \
                 relay was still open",
                r.client,
                self.key_of(key),
            ))
        });
        self.checks += 1;
        if let Some(detail) = open {
            self.fail(now_ms, CLOSES, detail);
        }
    }

    /// The world has settled, or the run is over: every relay the server closed got what it
    /// was owed, and so did every relay still open once nothing was in flight (`settled_ms`).
    pub(super) fn pump_finish(&mut self, settled_ms: Option<u64>) {
        let window = self.limits.map_or(usize::MAX, |l| l.push_window_len);
        let mut missing = None;
        for (&conn, relay) in self.relays.iter() {
            let a = &relay.pump;
            // A relay reset by a fault owes nothing from then on; excused covers it when it
            // matters (a crash, its client's command connection) and its client saw it go.
            let open_at_rest = settled_ms.filter(|_| !relay.reset);
            let (Some((attached_ms, key)), Some(ended_ms)) =
                (a.attached, a.ended_ms.or(open_at_rest))
            else {
                continue;
            };
            if a.excused || a.closed_by_client {
                continue;
            }
            self.checks += 1;
            let to_key: Vec<_> = self.msgs.iter().filter(|(_, m)| m.to_key == key).collect();
            let owed = to_key.iter().find(|(tag, m)| {
                let acked_ms = m.acked_ms;
                let owed = m.acked
                    && m.sent_ms > attached_ms
                    && acked_ms < a.may_end_ms
                    && to_key.iter().filter(|(_, o)| o.sent_ms <= acked_ms).count() <= window;
                let arrived = relay
                    .senders
                    .get(tag.0)
                    .is_some_and(|(seen, _)| seen.binary_search(&tag.1).is_ok());
                owed && !arrived
            });
            if let Some(((client, seq), m)) = owed {
                let end = match a.ended_ms {
                    Some(_) => format!("the server closed that relay at {ended_ms} ms"),
                    None => format!("at {ended_ms} ms, nothing in flight, it is still open"),
                };
                missing = Some((
                    ended_ms,
                    format!(
                        "#{client}.{seq} to {} was acknowledged at {} ms while relay {conn} of \
                     client {} was attached (since {attached_ms} ms, first session change at \
                     {}), and {end} without its push",
                        self.key_of(key),
                        m.acked_ms,
                        relay.client,
                        if a.may_end_ms == u64::MAX {
                            "none".into()
                        } else {
                            format!("{} ms", a.may_end_ms)
                        },
                    ),
                ));
                break;
            }
        }
        if let Some((at_ms, detail)) = missing {
            self.fail(at_ms, INVARIANT, detail);
        }
    }
}
