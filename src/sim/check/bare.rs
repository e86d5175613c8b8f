//! Bare handshakes that must bind. PROTOCOL.md: where the original client's bare handshake is
//! enabled, it "is bound only to a live, logged-in command session of that user, from the same
//! address, that has no relay yet, never asked for a ticket, and logged in moments ago"
//! (README: within `bare_relay_window_ms` of the login). `deadlines.rs` judges that a bound one
//! was read within its window; this judges the other side: an honest client's bare handshake in
//! the name it logged in with, from its own address, on the only relay of the client whose
//! threads the server had not ended (so its session has no other), with no ticket asked since
//! the login, that the server read no later than the window after the login was sent (the
//! server cannot have logged it in earlier) and refused, is a refusal owed nothing, once its
//! session is proven to have lived throughout. As in `tickets.rs`, the
//! proof is a reply as from a live session to a request that needs a login, sent after the
//! handshake was read, with no login, logout, deletion or lost connection of the client
//! between, and no crash.
//!
//! A refusal is told from the server's side: it hangs the relay up in the millisecond it read
//! the handshake, having written nothing on it (a bound relay it hangs up later or after a
//! push, for reasons of its own).

use super::{spec, Checker, ConnNo, Session};

/// What the checker follows of one client's bare handshakes.
#[derive(Debug, Clone, Default)]
pub(super) struct ClientBare {
    /// When the login of its current session was sent, with the crashes then.
    login: Option<(u64, u64)>,
    /// A login or register is in flight (its outcome decides the session).
    login_in_flight: bool,
    /// Its relays whose threads the server has not ended yet: the session may still hold any
    /// of them (a relay being hung up is the session's until it ends).
    open_relays: Vec<ConnNo>,
    /// A ticket was asked for in the current session.
    ticket_asked: bool,
    /// A refusal owed nothing if the session lived: when the handshake was read, and the
    /// session changes and crashes then.
    refused: Option<(u64, u64, u64)>,
}

/// What a request sent does to the session `bare.rs` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BareSent {
    Login,
    Ticket,
    /// A logout, a deletion or a lost connection: the session ends.
    End,
}

impl Checker {
    /// The server accepts bare handshakes: they are judged.
    pub fn allow_bare_relays(&mut self) {
        self.bare_relays_allowed = true;
    }

    /// `client` sent a request that may change its session.
    pub(super) fn bare_sent(&mut self, client: usize, sent: BareSent) {
        let bare = &mut self.client(client).bare;
        match sent {
            BareSent::Login => bare.login_in_flight = true,
            BareSent::Ticket => bare.ticket_asked = true,
            BareSent::End => {
                let open_relays = std::mem::take(&mut bare.open_relays);
                *bare = ClientBare { open_relays, ..ClientBare::default() };
            }
        }
    }

    /// `client`'s login or register, sent at `sent_ms`, was answered: `ok` if it logged in.
    pub(super) fn bare_login_answered(&mut self, client: usize, sent_ms: u64, ok: bool) {
        let crashes = self.crashes;
        let bare = &mut self.client(client).bare;
        bare.login_in_flight = false;
        if ok {
            (bare.login, bare.ticket_asked, bare.refused) = (Some((sent_ms, crashes)), false, None);
        }
    }

    /// `client` opened relay `conn`.
    pub(super) fn bare_relay_opened(&mut self, client: usize, conn: ConnNo) {
        self.client(client).bare.open_relays.push(conn);
    }

    /// Relay `conn`'s threads ended.
    pub(super) fn bare_relay_ended(&mut self, conn: ConnNo) {
        let Some(client) = self.relays.get(&conn).map(|r| r.client) else { return };
        self.client(client).bare.open_relays.retain(|&c| c != conn);
    }

    /// A fault reset connection `conn`.
    pub fn conn_reset(&mut self, conn: ConnNo) {
        if let Some(relay) = self.relays.get_mut(&conn) {
            relay.reset = true;
        }
    }

    /// The server hung relay `conn` up in the millisecond it read its bare handshake in
    /// `name`, at `read_ms`, having written nothing on it, and neither its client nor a fault
    /// closed it: it refused it.
    pub(super) fn bare_refused(&mut self, read_ms: u64, conn: ConnNo, name: &str) {
        let Some(relay) = self.relays.get(&conn) else { return };
        if !self.bare_relays_allowed || relay.pump.closed_by_client || relay.reset {
            return;
        }
        let client = relay.client;
        let (window_ms, crashes) = (self.bare_relay_window_ms, self.crashes);
        let key = self.ids.get(&spec::name_key(name)).copied();
        let state = self.client(client);
        let own_name = matches!(state.session, Some(Session::In { key: k, .. }) if Some(k) == key);
        let changes = state.tickets.session_changes();
        let bare = &mut state.bare;
        let Some((sent_ms, login_crashes)) = bare.login else { return };
        let only = bare.open_relays == [conn] && !bare.login_in_flight;
        let in_window = read_ms.saturating_sub(sent_ms) <= window_ms;
        if own_name && only && !bare.ticket_asked && in_window && login_crashes == crashes {
            bare.refused = Some((read_ms, changes, crashes));
            self.coverage.count("bare handshake: refusal within its window followed");
        }
    }

    /// `client`'s request sent at `sent_ms`, which needs a login, was answered as from a live
    /// session.
    pub(super) fn bare_session_lived(&mut self, now_ms: u64, client: usize, sent_ms: u64) {
        let crashes = self.crashes;
        let state = self.client(client);
        let changes = state.tickets.session_changes();
        let Some((read_ms, refused_changes, refused_crashes)) = state.bare.refused else {
            return;
        };
        if sent_ms < read_ms {
            return;
        }
        state.bare.refused = None;
        let lived = refused_changes == changes && refused_crashes == crashes;
        let window_ms = self.bare_relay_window_ms;
        self.expect(!lived, now_ms, "a bare handshake within its window binds", || {
            format!(
                "client {client}'s bare handshake, read at {read_ms} ms within {window_ms} ms \
                 of its login, was refused while its session lived"
            )
        });
    }
}
