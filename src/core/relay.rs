//! The relay channel: the handshake and its binding rules, pushes with a bounded window,
//! and what counts as delivered (written for the original client, acknowledged for the rest).

use super::server::{Binding, Role, Server};
use super::timers::Timer;
use super::{AccountId, ConnId, MsgId, Output, Record};
use crate::wire::{parse_relay_frame, parse_relay_hello, reply, RelayFrame};

impl Server {
    pub(super) fn relay_hello(&mut self, conn: ConnId, body: &[u8]) {
        match parse_relay_hello(body) {
            Err(error) => self.fail_and_close(conn, &error.to_string()),
            Ok(hello) => match self.relay_binding(conn, &hello.name, hello.ticket.as_deref()) {
                Ok((account, acks)) => self.bind_relay(conn, account, acks),
                // The original client prints every frame on its relay as a chat message: a
                // refused bare handshake is simply closed (PROTOCOL.md).
                Err(_) if self.bare_refusal_is_silent(hello.ticket.is_none()) => self.close(conn),
                Err(reason) => self.fail_and_close(conn, &format!("Relay refused: {reason}")),
            },
        }
    }

    /// The account a handshake binds to, and whether that relay acknowledges, or why not.
    fn relay_binding(
        &mut self,
        conn: ConnId,
        name: &str,
        ticket: Option<&str>,
    ) -> Result<(AccountId, bool), String> {
        let no_session = || "no live session for this user".to_owned();
        let account = self.account_id(name).ok_or_else(no_session)?;
        let session = self.sessions.get(&account).ok_or_else(no_session)?;
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == super::planted::Planted::BindByNameOnly && session.relay.is_none()
        {
            return Ok((account, false));
        }
        let acks = match ticket {
            Some(ticket) => {
                // A ticket is spent by any attempt, so a second use always reads as reuse.
                #[cfg(any(test, feature = "planted"))]
                let issued = if self.config.planted == super::planted::Planted::TicketReusable {
                    self.tickets.get(ticket).cloned()
                } else {
                    self.tickets.remove(ticket)
                };
                #[cfg(not(any(test, feature = "planted")))]
                let issued = self.tickets.remove(ticket);
                let issued = issued.ok_or("unknown or already used ticket")?;
                #[cfg(any(test, feature = "planted"))]
                let expiry_checked =
                    self.config.planted != super::planted::Planted::TicketExpiryLeftToSweep;
                #[cfg(not(any(test, feature = "planted")))]
                let expiry_checked = true;
                let expired = issued.expires_ms <= self.now_ms;
                #[cfg(any(test, feature = "planted"))]
                let expired = expired
                    && !self.planted_is(
                        super::planted::Planted::TicketBindsAtExpiry,
                        issued.expires_ms == self.now_ms,
                    );
                if expiry_checked && expired {
                    return Err("the ticket has expired".to_owned());
                }
                if issued.account != account || issued.session != session.command {
                    return Err("the ticket belongs to another session".to_owned());
                }
                true
            }
            None => {
                if !self.bare_relay_allowed() {
                    return Err(
                        "this server accepts ticketed handshakes only (request code 6)".into()
                    );
                }
                let other_address = session.peer != self.conns[&conn].peer;
                #[cfg(any(test, feature = "planted"))]
                let other_address = other_address
                    && !self.planted_is(super::planted::Planted::BareRelayAnyAddress, true);
                if other_address {
                    return Err("no live session for this user from this address".to_owned());
                }
                // A client that asked for a ticket will use it: a bare handshake for its
                // session can only be someone else's.
                if session.tickets_issued > 0 {
                    return Err("this session uses tickets; a bare handshake is refused".into());
                }
                let window_ms = self.config.bare_relay_window_ms;
                #[cfg(any(test, feature = "planted"))]
                let window_ms = if self.planted_is(super::planted::Planted::BareRelayAnyTime, true)
                {
                    u64::MAX
                } else {
                    window_ms
                };
                #[cfg(any(test, feature = "planted"))]
                let window_ms =
                    window_ms
                        - u64::from(self.planted_is(
                            super::planted::Planted::BareWindowExclusive,
                            window_ms > 0,
                        ));
                if self.now_ms.saturating_sub(session.login_ms) > window_ms {
                    let window = super::config::duration_text(window_ms);
                    return Err(format!(
                        "a bare handshake must follow the login within {window}; use a ticket"
                    ));
                }
                false
            }
        };
        if session.relay.is_some() {
            return Err("this session already has a relay".to_owned());
        }
        Ok((account, acks))
    }

    /// Whether a refused handshake is closed without a failure frame: a bare one is (the
    /// planted `BareRefusalFramed` words its refusal as for a ticketed one).
    fn bare_refusal_is_silent(&self, bare: bool) -> bool {
        #[cfg(any(test, feature = "planted"))]
        let bare = bare && !self.planted_is(super::planted::Planted::BareRefusalFramed, true);
        bare
    }

    fn bare_relay_allowed(&self) -> bool {
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == super::planted::Planted::BareRelayByDefault {
            return true;
        }
        self.config.bare_relay_allowed
    }

    fn bind_relay(&mut self, conn: ConnId, account: AccountId, acks: bool) {
        let limit = self.config.relay_frame_len_max;
        #[cfg(any(test, feature = "planted"))]
        let limit = self.planted_relay_limit(limit);
        let c = self.conns.get_mut(&conn).expect("the relay being bound is open");
        c.role = Role::Relay(Binding { account, acks, pushed_through: MsgId(0) });
        c.decoder.set_body_len_max(limit);
        #[cfg(any(test, feature = "planted"))]
        if self.planted_is(super::planted::Planted::RelayKeepsHandshakeDeadline, true) {
            return self.planted_bind_keeping_deadline(conn, account);
        }
        self.timers.cancel(Timer::Login(conn));
        self.sessions.get_mut(&account).expect("checked by relay_binding").relay = Some(conn);
        self.pump(account);
    }

    /// A frame on a bound relay: an acknowledgement (collected into `acks`) or an error.
    pub(super) fn relay_frame(&mut self, conn: ConnId, body: &[u8], acks: &mut Vec<MsgId>) {
        let Some(Role::Relay(binding)) = self.conns.get(&conn).map(|c| &c.role) else { return };
        match parse_relay_frame(body) {
            Err(error) => self.reply(conn, false, &error.to_string()),
            Ok(RelayFrame::Ack(_)) if !binding.acks => self.reply(
                conn,
                false,
                "This relay was opened without a ticket and takes no acknowledgements",
            ),
            Ok(RelayFrame::Ack(id)) if MsgId(id) > binding.pushed_through || id == 0 => {
                self.reply(conn, false, &format!("No message {id} was pushed on this relay"))
            }
            Ok(RelayFrame::Ack(id)) => acks.push(MsgId(id)),
        }
    }

    /// Removes acknowledged messages from the queue (one record for the batch) and pushes more.
    pub(super) fn acknowledged(&mut self, conn: ConnId, mut ids: Vec<MsgId>) {
        let Some(Role::Relay(binding)) = self.conns.get(&conn).map(|c| &c.role) else { return };
        let to = binding.account;
        #[cfg(any(test, feature = "planted"))]
        if self.planted_ack_any_account(&ids) {
            return;
        }
        let Some(account) = self.accounts.get(&to) else { return };
        // Acknowledging twice, or after another relay already delivered it, is harmless.
        ids.retain(|id| account.queue.binary_search_by_key(id, |q| q.id).is_ok());
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            self.commit(Record::Delivered { to, ids });
            self.pump(to);
        }
    }

    /// The relay wrote pushes through `last`. For the original client that is delivery; for a
    /// relay that acknowledges, delivery waits for the acknowledgement.
    pub(super) fn written(&mut self, conn: ConnId, last: MsgId) {
        // A relay being closed still reports what it managed to write: those messages did reach
        // the client, so counting them avoids pushing them again on the next relay.
        let Some(Role::Relay(binding)) = self.conns.get(&conn).map(|c| &c.role) else { return };
        if binding.acks {
            return;
        }
        let to = binding.account;
        let through = last.min(binding.pushed_through);
        let Some(account) = self.accounts.get(&to) else { return };
        let ids: Vec<MsgId> =
            account.queue.iter().map(|q| q.id).take_while(|&id| id <= through).collect();
        if !ids.is_empty() {
            self.commit(Record::Delivered { to, ids });
        }
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == super::planted::Planted::WrittenDoesNotPump {
            return;
        }
        self.pump(to);
    }

    /// Forgets that `conn` is `account`'s relay (it is closing or closed). Nothing is lost:
    /// whatever it had not delivered stays queued for the next relay.
    pub(super) fn detach_relay(&mut self, account: AccountId, conn: ConnId) {
        #[cfg(any(test, feature = "planted"))]
        let conn = match self.sessions.get(&account).and_then(|session| session.relay) {
            Some(bound) if self.config.planted == super::planted::Planted::DetachAnyRelay => bound,
            _ => conn,
        };
        // Looked up before anything is changed: a change to a shared table copies it (`Shared`).
        if self.sessions.get(&account).is_some_and(|session| session.relay == Some(conn)) {
            if let Some(session) = self.sessions.get_mut(&account) {
                session.relay = None;
                #[cfg(any(test, feature = "planted"))]
                if self.config.planted == super::planted::Planted::DropOnDetach {
                    self.planted_drop_first(account)
                }
            }
        }
    }

    /// An original client's relay that was being closed is gone: its writer reported all it
    /// wrote, so what is still queued may go to the account's next relay.
    pub(super) fn closing_bare_relay_ended(&mut self, account: AccountId) {
        if let Some(n) = self.closing_bare_relays.get_mut(&account) {
            *n -= 1;
            if *n == 0 {
                self.closing_bare_relays.remove(&account);
            }
        }
        self.pump(account);
    }

    /// Pushes queued messages to `account`'s relay, keeping at most `push_window_len` in flight.
    pub(super) fn pump(&mut self, account: AccountId) {
        let Some(relay) = self.sessions.get(&account).and_then(|s| s.relay) else { return };
        let old_relay_closing = self.closing_bare_relays.contains_key(&account);
        #[cfg(any(test, feature = "planted"))]
        let old_relay_closing = old_relay_closing
            && self.config.planted != super::planted::Planted::PushBeforeOldRelayEnds;
        if old_relay_closing {
            return;
        }
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == super::planted::Planted::RequeueOutOfOrder
            && self.planted_swap_first_two(account, relay)
        {
            return self.pump(account);
        }
        let Some(Role::Relay(binding)) = self.conns.get_mut(&relay).map(|c| &mut c.role) else {
            return;
        };
        let Some(state) = self.accounts.get(&account) else { return };
        let in_flight = state.queue.partition_point(|q| q.id <= binding.pushed_through);
        let room = self.config.push_window_len.saturating_sub(in_flight);
        #[cfg(any(test, feature = "planted"))]
        let room =
            room + usize::from(self.config.planted == super::planted::Planted::PushWindowOneOver);
        for queued in state.queue.iter().skip(in_flight).take(room) {
            let frame = if binding.acks {
                reply::push_acked(queued.id.0, &queued.from, &queued.text)
            } else {
                reply::push_plain(&queued.from, &queued.text)
            };
            binding.pushed_through = queued.id;
            let output = Output::Push { conn: relay, msg: queued.id, frame };
            self.outbox.push_gated(self.last_lsn, output);
        }
    }
}
