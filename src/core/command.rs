//! Requests on the command channel: help, register, login, send, list, delete, logout, ticket.

use rand::RngCore;

use std::ops::Bound;

use super::names::{name_key, validate_name, validate_password, Glob};
#[cfg(any(test, feature = "planted"))]
use super::planted::Planted;
use super::server::{Conn, JobKind, PendingJob, Role, Server, Session, Ticket};
use super::throttle::Reservation;
use super::timers::Timer;
use super::Record;
use super::{AccountId, ConnId, JobId, MsgId, Output, PasswordJob, PasswordOutcome, PasswordWork};
use crate::wire::reply::*;
use crate::wire::{parse_request, Request};

impl Server {
    pub(super) fn handle_command(&mut self, conn: ConnId, body: &[u8]) {
        let request = parse_request(body);
        #[cfg(any(test, feature = "planted"))]
        let request = self.planted_request(body, request);
        let request = match request {
            Ok(request) => request,
            Err(error) => return self.reply(conn, false, &error.to_string()),
        };
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == Planted::LoginDeadlineRearmed && self.session_of(conn).is_none() {
            let deadline_ms = self.now_ms.saturating_add(self.config.login_deadline_ms);
            self.timers.set(Timer::Login(conn), deadline_ms);
        }
        match (request, self.session_of(conn)) {
            (Request::Help, _) => self.reply(conn, true, HELP),
            (Request::Login { name, password }, _) => self.start_login(conn, &name, password),
            (Request::Register { name, password }, _) => self.start_register(conn, name, password),
            (_, None) => self.reply(conn, false, NEEDS_LOGIN),
            (Request::Send { to, text }, Some(from)) => self.send(conn, from, &to, text),
            (Request::List { pattern }, Some(_)) => self.list(conn, &pattern),
            (Request::Delete { name, password }, Some(account)) => {
                self.start_delete(conn, account, &name, password)
            }
            (Request::Logout, Some(account)) => {
                self.end_session(account, None);
                self.reply(conn, true, LOGOUT_OK);
            }
            (Request::Ticket, Some(account)) => self.issue_ticket(conn, account),
        }
    }

    fn peer(&self, conn: ConnId) -> super::Peer {
        self.conns[&conn].peer
    }

    /// Reserves a password check of `name` from `conn`'s address, or replies that it is
    /// throttled. The reply's text depends only on the name's text and the address, never on
    /// whether the account exists.
    fn reserve_check(&mut self, conn: ConnId, name: &str) -> Option<Reservation> {
        let (key, peer) = (name_key(name), self.peer(conn));
        #[cfg(any(test, feature = "planted"))]
        let key = if self.config.planted == Planted::ThrottleNameCaseSensitive {
            name.to_owned()
        } else {
            key
        };
        if let Some(wait_s) = self.throttle.wait_s(&key, peer, self.now_ms) {
            let text = format!("Too many failed attempts; try again in {wait_s} s");
            self.reply(conn, false, &text);
            return None;
        }
        #[cfg(any(test, feature = "planted"))]
        let counted = self.config.planted != super::planted::Planted::ThrottleCountedLate;
        #[cfg(not(any(test, feature = "planted")))]
        let counted = true;
        let reservation = self.throttle.reserve(&key, peer, counted);
        self.arm_sweep();
        Some(reservation)
    }

    fn start_login(&mut self, conn: ConnId, name: &str, password: String) {
        let Some(reservation) = self.reserve_check(conn, name) else { return };
        let account = self.account_id(name);
        if validate_password(&password).is_err() {
            self.throttle.settle(reservation, false, self.now_ms);
            return self.reply(conn, false, LOGIN_FAILED);
        }
        let hash = account.map(|a| self.accounts[&a].password_hash.clone());
        let kind = JobKind::Login { account, reservation };
        self.start_job(conn, password, PasswordWork::Verify { hash }, kind);
    }

    fn start_register(&mut self, conn: ConnId, name: String, password: String) {
        let name_valid = validate_name(&name);
        #[cfg(any(test, feature = "planted"))]
        let name_valid = self.planted_name_valid(&name, name_valid);
        if let Err(text) = name_valid.and(validate_password(&password)) {
            return self.reply(conn, false, text);
        }
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == Planted::PasswordLimitExclusive
            && password.len() == super::names::PASSWORD_LEN_MAX
        {
            return self.reply(conn, false, "Invalid password: use 1 to 128 bytes");
        }
        if let Some(text) = self.register_refusal(&name) {
            return self.reply(conn, false, &text);
        }
        let (peer, max) = (self.peer(conn), self.config.registrations_per_peer_max);
        let window_ms = self.config.registration_window_ms;
        let wait_s = self.registrations.wait_s(peer, max, window_ms, self.now_ms);
        #[cfg(any(test, feature = "planted"))]
        let wait_s = match self.planted_is(Planted::RegistrationWaitNewest, wait_s.is_some()) {
            // Limited as before; the wait is the newest registration's (the wait a limit of
            // one would tell).
            true => self.registrations.wait_s(peer, 1, window_ms, self.now_ms),
            false => wait_s,
        };
        if let Some(wait_s) = wait_s {
            let window = super::config::duration_text(window_ms);
            let text = format!(
                "Too many registrations from your address (limit {max} per {window}); \
                 try again in {wait_s} s"
            );
            return self.reply(conn, false, &text);
        }
        #[cfg(any(test, feature = "planted"))]
        let counted_now = self.config.planted != super::planted::Planted::RegistrationUnlimited;
        #[cfg(not(any(test, feature = "planted")))]
        let counted_now = true;
        if counted_now {
            self.registrations.record(peer, max, self.now_ms);
            self.arm_sweep();
        }
        let mut salt = [0u8; 16];
        self.rng.fill_bytes(&mut salt);
        #[cfg(any(test, feature = "planted"))]
        let salt = if self.planted_is(Planted::SaltNotDrawn, true) { [0; 16] } else { salt };
        self.start_job(conn, password, PasswordWork::Hash { salt }, JobKind::Register { name });
    }

    /// Why `name` cannot be registered now (checked again when hashing is done, since another
    /// connection may have taken the name meanwhile).
    fn register_refusal(&self, name: &str) -> Option<String> {
        if self.names.contains_key(&name_key(name)) {
            return Some(NAME_TAKEN.to_owned());
        }
        let max = self.config.accounts_max;
        let full = self.accounts.len() >= max;
        #[cfg(any(test, feature = "planted"))]
        let full =
            full && !self.planted_is(Planted::AccountsOneOverCap, self.accounts.len() == max);
        full.then(|| format!("The server has reached its limit of {max} accounts"))
    }

    fn start_delete(&mut self, conn: ConnId, account: AccountId, name: &str, password: String) {
        let other_name = name_key(name) != name_key(&self.accounts[&account].name);
        #[cfg(any(test, feature = "planted"))]
        let other_name = other_name && self.config.planted != Planted::DeleteIgnoresName;
        if other_name {
            return self.reply(conn, false, DELETE_REFUSED);
        }
        let Some(reservation) = self.reserve_check(conn, name) else { return };
        let hash = Some(self.accounts[&account].password_hash.clone());
        let kind = JobKind::Delete { account, reservation };
        self.start_job(conn, password, PasswordWork::Verify { hash }, kind);
    }

    fn start_job(&mut self, conn: ConnId, password: String, work: PasswordWork, kind: JobKind) {
        let job = JobId(self.next_job);
        self.next_job += 1;
        if let Some(Conn { role: Role::Command { busy, .. }, .. }) = self.conns.get_mut(&conn) {
            *busy = Some(job);
        }
        self.jobs.insert(job, PendingJob { conn, kind });
        self.outbox.push_immediate(Output::Password(PasswordJob { job, conn, password, work }));
    }

    pub(super) fn finish_job(&mut self, conn: ConnId, kind: JobKind, outcome: PasswordOutcome) {
        let now_ms = self.now_ms;
        match (kind, outcome) {
            (
                JobKind::Login { account: Some(account), reservation },
                PasswordOutcome::Verified(true),
            ) if self.accounts.contains_key(&account) => {
                self.throttle.settle(reservation, true, now_ms);
                self.log_in(conn, account);
                self.reply(conn, true, LOGIN_OK);
            }
            (JobKind::Login { reservation, .. }, _) => {
                self.throttle.settle(reservation, false, now_ms);
                self.reply(conn, false, LOGIN_FAILED);
            }
            (JobKind::Register { name }, PasswordOutcome::Hashed(password_hash)) => {
                if let Some(text) = self.register_refusal(&name) {
                    return self.reply(conn, false, &text);
                }
                #[cfg(any(test, feature = "planted"))]
                if self.config.planted == super::planted::Planted::RegistrationUnlimited {
                    let (peer, max) = (self.peer(conn), self.config.registrations_per_peer_max);
                    self.registrations.record(peer, max, self.now_ms);
                }
                let account = AccountId(self.next_lsn().0);
                self.commit(Record::Register { account, name, password_hash });
                self.log_in(conn, account);
                self.reply(conn, true, REGISTER_OK);
            }
            (JobKind::Delete { account, reservation }, PasswordOutcome::Verified(matched))
                if self.session_of(conn) == Some(account) && self.deletion_verified(matched) =>
            {
                self.throttle.settle(reservation, true, now_ms);
                self.commit(Record::Delete { account });
                self.end_session(account, Some("This account was deleted; the relay is closed"));
                self.reply(conn, true, DELETE_OK);
            }
            (JobKind::Delete { reservation, .. }, _) => {
                self.throttle.settle(reservation, false, now_ms);
                self.reply(conn, false, DELETE_REFUSED);
            }
            (JobKind::Register { .. }, PasswordOutcome::Verified(_)) => {
                panic!("a hash job came back as a verification")
            }
        }
    }

    /// Whether a deletion's password check came back matching (the planted
    /// `DeleteSkipsPassword` reads any outcome as a match).
    fn deletion_verified(&self, matched: bool) -> bool {
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == Planted::DeleteSkipsPassword {
            return true;
        }
        matched
    }

    /// A password job that nobody waits for any more (its connection closed or moved on):
    /// its check no longer counts, since nobody learns its outcome.
    pub(super) fn abandon_job(&mut self, kind: JobKind) {
        match kind {
            JobKind::Login { reservation, .. } | JobKind::Delete { reservation, .. } => {
                self.throttle.release(reservation)
            }
            JobKind::Register { .. } => {}
        }
    }

    /// Starts a session for `account` on `conn`, ending this connection's previous session and
    /// taking over any other session of the same account.
    fn log_in(&mut self, conn: ConnId, account: AccountId) {
        if let Some(current) = self.session_of(conn) {
            self.end_session(current, None);
        }
        #[cfg(any(test, feature = "planted"))]
        self.planted_takeover_loss(account);
        self.end_session(account, Some("Logged in elsewhere; this session has ended"));
        let peer = self.peer(conn);
        let session =
            Session { command: conn, relay: None, login_ms: self.now_ms, peer, tickets_issued: 0 };
        self.sessions.insert(account, session);
        let limit = self.config.frame_len_max;
        #[cfg(any(test, feature = "planted"))]
        let limit = self.planted_limit_logged_in(limit);
        let c = self.conns.get_mut(&conn).expect("a logging-in connection is open");
        c.decoder.set_body_len_max(limit);
        if let Role::Command { account: logged_in, .. } = &mut c.role {
            *logged_in = Some(account);
        }
        self.timers.cancel(Timer::Login(conn));
    }

    /// Ends `account`'s session, if any: its relay is closed (after `relay_notice`, if given),
    /// its tickets are void, and its command connection stays open, logged out.
    pub(super) fn end_session(&mut self, account: AccountId, relay_notice: Option<&str>) {
        // Looked up before anything is removed: a change to a shared table copies it (`Shared`).
        if !self.sessions.contains_key(&account) {
            return;
        }
        let Some(session) = self.sessions.remove(&account) else { return };
        if let Some(relay) = session.relay {
            if let Some(notice) = relay_notice {
                self.reply(relay, false, notice);
            }
            self.close(relay);
        }
        #[cfg(any(test, feature = "planted"))]
        let void = !self.planted_is(Planted::TicketOutlivesSession, true);
        #[cfg(not(any(test, feature = "planted")))]
        let void = true;
        if void && self.tickets.values().any(|t| t.account == account) {
            self.tickets.retain(|_, t| t.account != account);
        }
        let before_login = self.config.frame_len_max_before_login;
        #[cfg(any(test, feature = "planted"))]
        let before_login = if self.planted_is(Planted::LogoutKeepsFrameLimit, true) {
            self.config.frame_len_max
        } else {
            before_login
        };
        if let Some(c) = self.conns.get_mut(&session.command) {
            c.decoder.set_body_len_max(before_login);
            if let Role::Command { account, .. } = &mut c.role {
                *account = None;
            }
            let deadline_ms = self.now_ms.saturating_add(self.config.login_deadline_ms);
            #[cfg(any(test, feature = "planted"))]
            if self.planted_is(Planted::LogoutArmsNoDeadline, true) {
                return;
            }
            self.timers.set(Timer::Login(session.command), deadline_ms);
        }
    }

    fn send(&mut self, conn: ConnId, from: AccountId, to: &str, text: String) {
        #[cfg(any(test, feature = "planted"))]
        let text = match self.planted_is(Planted::SendTextFirstLine, true) {
            true => text.split('\n').next().unwrap_or_default().to_owned(),
            false => text,
        };
        #[cfg(any(test, feature = "planted"))]
        let refuse_empty = self.config.planted != super::planted::Planted::EmptyTextAccepted;
        #[cfg(not(any(test, feature = "planted")))]
        let refuse_empty = true;
        if refuse_empty && text.is_empty() {
            return self.reply(conn, false, EMPTY_TEXT);
        }
        #[cfg(any(test, feature = "planted"))]
        let to = if self.config.planted == super::planted::Planted::SendNameCaseSensitive {
            self.names.get(to).copied()
        } else {
            self.account_id(to)
        };
        #[cfg(not(any(test, feature = "planted")))]
        let to = self.account_id(to);
        let Some(to) = to else {
            return self.reply(conn, false, UNKNOWN_RECIPIENT);
        };
        let recipient = &self.accounts[&to];
        let full = recipient.queue.len() >= self.config.queue_len_max;
        #[cfg(any(test, feature = "planted"))]
        let full = full
            && !self.planted_is(
                Planted::QueueOneOverBound,
                recipient.queue.len() == self.config.queue_len_max,
            );
        if full {
            let text = format!(
                "{}'s mailbox is full ({} messages waiting); try again later",
                recipient.name,
                recipient.queue.len()
            );
            return self.reply(conn, false, &text);
        }
        let max = self.config.queued_bytes_max;
        #[cfg(any(test, feature = "planted"))]
        let max = max - u64::from(self.planted_is(Planted::StoreFullAtBound, max > 0));
        if self.queued_bytes + super::server::queued_cost(&text) > max {
            return self.reply(conn, false, "The server's message store is full; try again later");
        }
        let from = self.accounts[&from].name.clone();
        let id = MsgId(self.next_lsn().0);
        self.commit(Record::Message { id, from, to, text });
        self.reply(conn, true, SEND_OK);
        #[cfg(any(test, feature = "planted"))]
        if self.planted_is(Planted::SendDoesNotPump, true) {
            return;
        }
        self.pump(to);
    }

    /// Names matching `pattern`, in registration order. The work is bounded whatever the
    /// number of accounts: only names starting with the pattern's leading letters are examined
    /// (a range of the name index), at most `list_scan_max` of them, each matched without
    /// allocating; the reply holds at most `list_len_max` names and `list_reply_bytes_max`
    /// bytes, and says what it left out.
    fn list(&mut self, conn: ConnId, pattern: &str) {
        let pattern_len_max = self.config.list_pattern_len_max;
        let too_long = pattern.len() > pattern_len_max;
        #[cfg(any(test, feature = "planted"))]
        let too_long = too_long
            || (self.config.planted == Planted::ListPatternLimitExclusive
                && pattern.len() == pattern_len_max);
        if too_long {
            let text = format!("Pattern too long: at most {pattern_len_max} bytes");
            return self.reply(conn, false, &text);
        }
        let glob = Glob::new(if pattern.is_empty() { "*" } else { pattern });
        let prefix = glob.literal_prefix();
        #[cfg(any(test, feature = "planted"))]
        let prefix = if self.config.planted == super::planted::Planted::ListPrefixStopsAtStarOnly {
            &pattern[..pattern.find('*').unwrap_or(pattern.len())]
        } else {
            prefix
        };
        let mut matches = Vec::new();
        let mut scanned = 0usize;
        let scan_max = self.config.list_scan_max;
        #[cfg(any(test, feature = "planted"))]
        let scan_max =
            scan_max.saturating_sub(usize::from(self.planted_is(Planted::ListScanOneShort, true)));
        let mut stopped = false;
        for (key, &account) in
            self.names.range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
        {
            if !key.starts_with(prefix) {
                break;
            }
            if scanned == scan_max {
                stopped = true;
                break;
            }
            scanned += 1;
            if glob.matches(key) {
                matches.push(account);
            }
        }
        matches.sort_unstable();
        let reply_bytes_max = self.config.list_reply_bytes_max;
        #[cfg(any(test, feature = "planted"))]
        let reply_bytes_max =
            reply_bytes_max - usize::from(self.planted_is(Planted::ListReplyOneByteShort, true));
        let mut text = String::new();
        let mut shown = 0usize;
        for account in &matches {
            let name = &self.accounts[account].name;
            #[cfg(any(test, feature = "planted"))]
            let lowered = self.planted_list_spelling(name);
            #[cfg(any(test, feature = "planted"))]
            let name = &lowered;
            let space = 1;
            #[cfg(any(test, feature = "planted"))]
            let space = space - usize::from(self.planted_is(Planted::ListReplyOneByteOver, true));
            if shown == self.config.list_len_max
                || text.len() + name.len() + space > reply_bytes_max
            {
                break;
            }
            text.push_str(name);
            text.push(' ');
            shown += 1;
        }
        #[cfg(any(test, feature = "planted"))]
        self.planted_list_deleted(&mut text);
        let hidden = matches.len() - shown;
        if stopped {
            text.push_str(&format!(
                "(stopped after {scanned} names: start the pattern with more letters)"
            ));
        } else if hidden > 0 {
            text.push_str(&format!("(and {hidden} more: narrow the pattern)"));
        }
        self.reply(conn, true, &text);
    }

    /// What orders a session's tickets from oldest to newest: the order they were issued in
    /// (the planted `TicketOldestByExpiry`: their expiry, which ties within a millisecond, so
    /// that the ticket text decides).
    fn ticket_age_key(&self, ticket: &Ticket) -> u64 {
        #[cfg(any(test, feature = "planted"))]
        if self.planted_is(Planted::TicketOldestByExpiry, true) {
            return ticket.expires_ms;
        }
        ticket.issued
    }

    fn issue_ticket(&mut self, conn: ConnId, account: AccountId) {
        let issued = self.sessions.get_mut(&account).map_or(0, |session| {
            session.tickets_issued += 1;
            session.tickets_issued
        });
        // The oldest is the first issued: tickets issued in one millisecond expire together.
        let mine: Vec<(u64, String)> = self
            .tickets
            .iter()
            .filter(|(_, t)| t.session == conn)
            .map(|(key, t)| (self.ticket_age_key(t), key.clone()))
            .collect();
        let max = self.config.tickets_per_session_max;
        #[cfg(any(test, feature = "planted"))]
        let max = max + usize::from(self.planted_is(Planted::TicketsOneOver, true));
        if mine.len() >= max {
            let oldest = mine.iter().min();
            #[cfg(any(test, feature = "planted"))]
            let oldest = if self.planted_is(Planted::TicketEvictsNewest, true) {
                mine.iter().max()
            } else {
                oldest
            };
            if let Some((_, oldest)) = oldest {
                self.tickets.remove(oldest);
            }
        }
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let expires_ms = self.now_ms.saturating_add(self.config.ticket_ttl_ms);
        let ticket_row = Ticket { account, session: conn, expires_ms, issued };
        self.tickets.insert(ticket.clone(), ticket_row);
        self.arm_sweep();
        self.reply(conn, true, &ticket);
    }
}
