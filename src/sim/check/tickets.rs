//! Tickets that must bind. PROTOCOL.md: a `6` request "returns `0\nTICKET` (single use,
//! short-lived)" for the session that asked, which may hold a few at once (the server forgets
//! the oldest when it grants one more). So an honest ticketed handshake refused as an unknown
//! or used ticket is a lost ticket when its ticket was granted less than its lifetime before
//! the refusal came back, was among the newest its session may hold, and its session lived
//! throughout. That last is proven only later: by a reply to a request that needs a login,
//! sent after the refusal arrived on the same command connection, with no login, logout,
//! deletion or lost connection of the client between the grant and that request, and no crash
//! (a session ends only by one of those, or by another client's login, which the client then
//! sees as its own logout).

use super::{Checker, Pending};
use crate::sim::scenario::Op;

/// How the server words the refusal of a ticket it does not hold.
const TICKET_UNKNOWN: &str = "unknown or already used ticket";

/// One client's tickets in its current session.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientTickets {
    /// Logins, logouts, deletions and lost command connections so far.
    session_changes: u64,
    /// Tickets granted since the last change, oldest first.
    grants: Vec<Grant>,
    /// A refused handshake whose session is yet to be proven alive.
    refused: Option<(u64, Grant)>,
}

/// A ticket granted: when its request was sent, and the session and server it was for.
#[derive(Debug, Clone, Copy)]
struct Grant {
    sent_ms: u64,
    crashes: u64,
    session_changes: u64,
}

impl ClientTickets {
    /// Logins, logouts, deletions and lost command connections so far.
    pub(super) fn session_changes(&self) -> u64 {
        self.session_changes
    }
}

impl Checker {
    /// `client` sent `op`, or lost its command connection (`None`): whatever ends or begins a
    /// session ends the tickets the checker follows.
    pub(super) fn tickets_sent(&mut self, client: usize, op: Option<&Op>) {
        let changes = op.is_none_or(|op| {
            matches!(
                op,
                Op::Login { .. }
                    | Op::Register { .. }
                    | Op::Logout
                    | Op::Delete { .. }
                    | Op::Disconnect
            )
        });
        if changes {
            let tickets = &mut self.client(client).tickets;
            tickets.session_changes += 1;
            tickets.grants.clear();
            tickets.refused = None;
        }
    }

    /// A ticket was granted to `client` for the request `p`.
    pub(super) fn ticket_granted(&mut self, client: usize, p: &Pending) {
        let crashes = self.crashes;
        let tickets = &mut self.client(client).tickets;
        let session_changes = tickets.session_changes;
        tickets.grants.push(Grant { sent_ms: p.sent_ms, crashes, session_changes });
    }

    /// An honest ticketed handshake of `client` was refused with `text`; its ticket was
    /// granted `newer` tickets before the client's newest.
    pub(super) fn ticket_refused(&mut self, now_ms: u64, client: usize, newer: usize, text: &str) {
        let Some(limits) = self.limits else { return };
        let crashes = self.crashes;
        let tickets = &mut self.client(client).tickets;
        let Some(at) = tickets.grants.len().checked_sub(newer + 1) else { return };
        let grant = tickets.grants[at];
        let fresh = now_ms.saturating_sub(grant.sent_ms) < limits.ticket_ttl_ms;
        let held = newer < limits.tickets_per_session_max;
        if text.contains(TICKET_UNKNOWN) && fresh && held && grant.crashes == crashes {
            tickets.refused = Some((now_ms, grant));
        }
    }

    /// `client`'s request `p`, which needs a login, was answered as from a live session.
    pub(super) fn ticket_session_lived(&mut self, now_ms: u64, client: usize, p: &Pending) {
        let crashes = self.crashes;
        let tickets = &mut self.client(client).tickets;
        let Some((refused_ms, grant)) = tickets.refused else { return };
        if p.sent_ms < refused_ms {
            return;
        }
        tickets.refused = None;
        let lived = grant.session_changes == tickets.session_changes && grant.crashes == crashes;
        self.expect(!lived, now_ms, "a fresh ticket binds", || {
            format!(
                "client {client}'s ticket, asked for at {} ms, was refused as unknown at \
                 {refused_ms} ms while its session lived",
                grant.sent_ms
            )
        });
    }
}
