//! The reference model: the chat semantics of PROTOCOL.md for scenario users, written for
//! clarity and nothing else. It shares no code with the core; it predicts, for every step, what
//! each client observes, and keeps the state the core must agree with (which accounts exist, who
//! is logged in, which messages wait for whom).
//!
//! Durability (PROTOCOL.md: what the server acknowledged survives a crash): every change to
//! accounts and queues is an [`Effect`], durable at once unless the disk is stalled, when it
//! waits in `pending` for the sync. A crash keeps what was durable and a prefix of what was
//! not (the server writes its effects in the order it accepts them); nothing acknowledged can
//! be among the lost ones, since the server answers only what is durable.
//!
//! Simplifications that the scenarios make true: every user uses the right password, time does
//! not pass (no deadline fires), every relay uses the bare handshake right after logging in, and
//! the server is not near any limit.

use std::borrow::Cow;
use std::collections::VecDeque;

use super::step::{message_text, user_name, MsgKey, Observed, Op, Port, Seen, Step, User};

/// A reply body: one of the [`text`] constants, or built for the occasion.
type Reply = Cow<'static, str>;

/// Reply bodies, spelled as PROTOCOL.md gives them.
pub mod text {
    pub const LOGIN_OK: &str = "0\nSuccessful Login";
    pub const LOGIN_FAILED: &str =
        "-1\nInvalid Login, credential doesn't exist or password invalid";
    pub const REGISTER_OK: &str = "0\nSuccessful Created and logged in";
    pub const NAME_TAKEN: &str = "-1\nThis username has been used";
    pub const NEEDS_LOGIN: &str = "-1\nInvalid Command, you can only choose to login or register";
    pub const SEND_OK: &str = "0\nSent to recipient";
    pub const UNKNOWN_RECIPIENT: &str = "-1\ninvalid recipient";
    pub const DELETE_OK: &str = "0\naccount deleted";
    pub const LOGOUT_OK: &str = "0\nLogging out";
    // Situations PROTOCOL.md leaves to the server's wording ("say plainly what happened"); the
    // model pins the wording the server chose, so a change is noticed.
    pub const TAKEN_OVER: &str = "-1\nLogged in elsewhere; this session has ended";
    pub const DELETED: &str = "-1\nThis account was deleted; the relay is closed";
    pub const RELAY_NO_SESSION: &str = "-1\nRelay refused: no live session for this user";
    pub const RELAY_TAKEN: &str = "-1\nRelay refused: this session already has a relay";
    pub const RELAY_OTHER_ADDRESS: &str =
        "-1\nRelay refused: no live session for this user from this address";
    pub const RELAY_SESSION_TICKETED: &str =
        "-1\nRelay refused: this session uses tickets; a bare handshake is refused";
    /// A handshake with a ticket that was already presented once (tickets are single use).
    pub const RELAY_TICKET_USED: &str = "-1\nRelay refused: unknown or already used ticket";
    /// A granted ticket; the driver writes the random ticket this way.
    pub const TICKET: &str = "0\n<ticket>";
}

/// The reference state of a scenario.
#[derive(Debug, PartialEq, Eq)]
pub struct Model {
    pub users: Vec<UserState>,
    /// Accounts created so far (numbers accounts in creation order, which `list` follows).
    pub accounts_created: u64,
    /// What a crash now would certainly keep. Shared between states until an effect becomes
    /// durable (most steps make none), so copying a state skips it.
    pub durable: std::sync::Arc<Durable>,
    /// Effects accepted but not yet durable (only while the disk is stalled), oldest first.
    pub pending: Vec<Effect>,
    /// The disk is stalled: effects wait in `pending` until the sync.
    pub stalled: bool,
    /// Requests the server reads from a connection ahead of their replies being written (its
    /// pipeline bound): a pipelining client's later requests wait, unread, until then.
    pub pipeline_len_max: u8,
    /// Users with replies held back by the stalled disk, in the order of their first held
    /// reply: the order in which the sync releases them and the server reads on.
    pub held: Vec<User>,
}

clone_reusing!(Model {
    users,
    accounts_created,
    durable,
    pending,
    stalled,
    pipeline_len_max,
    held
});

/// The durable part of the state: every user's account and discarded messages, and the
/// creation counter, and how many accounts each name has had durably.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Durable {
    pub accounts: Vec<(Option<Account>, Vec<MsgKey>)>,
    pub accounts_created: u64,
    /// [`UserState::generation`] as a crash leaves it: a registration the crash lost leaves
    /// no trace in the core, so it must leave none in what the fingerprint keeps.
    pub generations: Vec<u32>,
}

/// One change to what must survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Register(User),
    /// A message accepted for the user.
    Message(User, MsgKey),
    Delete(User),
    /// The user's oldest queued message was delivered.
    Delivered(User),
}

impl Effect {
    pub fn user(self) -> User {
        match self {
            Effect::Register(u)
            | Effect::Message(u, _)
            | Effect::Delete(u)
            | Effect::Delivered(u) => u,
        }
    }

    fn apply(self, account: &mut Option<Account>, discarded: &mut Vec<MsgKey>, created: &mut u64) {
        match self {
            Effect::Register(_) => {
                *account = Some(Account { created: *created, queue: VecDeque::new() });
                *created += 1;
            }
            Effect::Message(_, key) => {
                account.as_mut().expect("the recipient exists").queue.push_back(key);
            }
            Effect::Delete(_) => {
                let deleted = account.take().expect("the account exists");
                discarded.extend(deleted.queue);
            }
            Effect::Delivered(_) => {
                let account = account.as_mut().expect("a bound relay's account");
                account.queue.pop_front().expect("a push was pending");
            }
        }
    }
}

/// One user: their account, their command connection and their relay.
#[derive(Debug, PartialEq, Eq)]
pub struct UserState {
    pub account: Option<Account>,
    /// How many accounts this name has had (a re-registered name is a new account).
    pub generation: u32,
    pub command: Command,
    /// The relay bound to the user's session (only while logged in).
    pub relay: Option<Relay>,
    /// The session asked for a relay ticket, so it refuses bare handshakes (only while logged
    /// in).
    pub asked_ticket: bool,
    /// Sends served so far (attempted), which numbers the next one served (the driver numbers
    /// a send it writes after these and the sends still waiting unread).
    pub sends: u32,
    /// The user was granted a ticket, and presented it (so any later use is a replay).
    pub ticket_spent: bool,
    /// Replies to the user's requests held back by the stalled disk (not yet written).
    pub unanswered: u8,
    /// Requests the user pipelined that the server has not read yet, oldest first.
    pub deferred: Vec<Op>,
    /// Messages discarded with this name's deleted accounts. Nothing in the protocol depends on
    /// them; the invariant that a later account never receives them does, so they are part of
    /// the state.
    pub discarded: Vec<MsgKey>,
}

clone_reusing!(UserState {
    account,
    generation,
    command,
    relay,
    asked_ticket,
    sends,
    ticket_spent,
    unanswered,
    deferred,
    discarded
});

/// How a relay was opened, which decides how its pushes look and how they are confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Relay {
    /// The original client's bare-username handshake: a push written is a push delivered.
    Bare,
    /// A ticketed handshake: pushes carry an id and are delivered when acknowledged.
    Ticketed,
}

/// The state of a user's current command connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    /// No connection (never opened, reset, or the server restarted).
    Absent,
    LoggedOut,
    LoggedIn,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Account {
    /// Position in creation order.
    pub created: u64,
    /// Messages accepted for this account and not yet delivered, oldest first. While a relay
    /// is bound, every one of them has been pushed on it.
    pub queue: VecDeque<MsgKey>,
}

clone_reusing!(Account { created, queue });

impl Model {
    pub fn new(users: usize) -> Self {
        let user = UserState {
            account: None,
            generation: 0,
            command: Command::Absent,
            relay: None,
            asked_ticket: false,
            sends: 0,
            ticket_spent: false,
            unanswered: 0,
            deferred: Vec::new(),
            discarded: Vec::new(),
        };
        let durable = std::sync::Arc::new(Durable {
            accounts: vec![(None, Vec::new()); users],
            accounts_created: 0,
            generations: vec![0; users],
        });
        Model {
            users: vec![user; users],
            accounts_created: 0,
            durable,
            pending: Vec::new(),
            stalled: false,
            pipeline_len_max: u8::MAX,
            held: Vec::new(),
        }
    }

    /// Whether a reply produced now waits for the disk: every output waits behind an
    /// unsynced effect.
    fn reply_held(&self) -> bool {
        self.stalled && !self.pending.is_empty()
    }

    /// Applies `effect` to the live state, and to the durable state unless the disk is stalled.
    fn commit(&mut self, effect: Effect) {
        let state = &mut self.users[effect.user() as usize];
        effect.apply(&mut state.account, &mut state.discarded, &mut self.accounts_created);
        if self.stalled {
            self.pending.push(effect);
        } else {
            self.make_durable(effect);
        }
    }

    fn make_durable(&mut self, effect: Effect) {
        let durable = std::sync::Arc::make_mut(&mut self.durable);
        let (account, discarded) = &mut durable.accounts[effect.user() as usize];
        effect.apply(account, discarded, &mut durable.accounts_created);
        if let Effect::Register(user) = effect {
            durable.generations[user as usize] += 1;
        }
    }

    /// Whether `user` is logged in.
    pub fn logged_in(&self, user: User) -> bool {
        self.users[user as usize].command == Command::LoggedIn
    }

    /// Applies a step and returns what each connection should observe.
    pub fn apply(&mut self, step: Step) -> Observed {
        let mut seen = Observed::new();
        match step {
            Step::Op { user, op } => self.op(user, op, &mut seen),
            // The oldest push was written (original client) or acknowledged: delivered.
            Step::Confirm { user } => self.commit(Effect::Delivered(user)),
            Step::DropCommand { user } => {
                // Requests the server never read die with the connection.
                let state = self.user_mut(user);
                state.deferred.clear();
                state.unanswered = 0;
                self.held.retain(|&u| u != user);
                let was_logged_in = self.logged_in(user);
                self.user_mut(user).command = Command::Absent;
                if was_logged_in {
                    self.end_session(user, None, &mut seen);
                }
            }
            Step::DropRelay { user } => self.user_mut(user).relay = None,
            // An attacker's guesses go on connections of their own, whose replies are judged
            // by the driver (any failure), and change no account, queue or session.
            // So does a hijacker's handshake, which the server must refuse (the driver judges
            // what its connection receives).
            Step::Guess { .. } | Step::GuessChecked { .. } | Step::Hijack { .. } => {}
            Step::Stall => self.stalled = true,
            Step::Sync => {
                self.stalled = false;
                self.sync_pending();
                let order = std::mem::take(&mut self.held);
                for &user in &order {
                    self.user_mut(user).unanswered = 0;
                }
                self.read_deferred(&order, &mut seen);
            }
            Step::Crash { kept, .. } => {
                // What was durable survives, and the first `kept` effects that were not (a torn
                // one is lost); connections and sessions do not.
                let pending = std::mem::take(&mut self.pending);
                for &effect in pending.iter().take(kept as usize) {
                    self.make_durable(effect);
                }
                self.stalled = false;
                self.held.clear();
                self.accounts_created = self.durable.accounts_created;
                for (user, (state, (account, discarded))) in
                    self.users.iter_mut().zip(&self.durable.accounts).enumerate()
                {
                    state.generation = self.durable.generations[user];
                    state.account.clone_from(account);
                    state.discarded.clone_from(discarded);
                    state.command = Command::Absent;
                    state.relay = None;
                    state.asked_ticket = false;
                    state.unanswered = 0;
                    state.deferred.clear();
                }
            }
        }
        seen
    }

    fn sync_pending(&mut self) {
        for effect in std::mem::take(&mut self.pending) {
            self.make_durable(effect);
        }
    }

    /// The held replies were written, in the order they were held: the server reads on from
    /// each connection the requests that waited behind them, in rounds. A connection's next
    /// request is read once the reply before it is written, and a reply waits for every record
    /// written before it: so within a round, once a request has written a record, each
    /// connection gets one more request read, and the rest wait for the round's records to be
    /// synced (pipelined sends of one user and another user's pipelined logout interleave
    /// so: `chatroom check --users 2 --ops 5 --faults 1 --stall-steps 5 --pipeline 3`).
    fn read_deferred(&mut self, order: &[User], seen: &mut Observed) {
        while order.iter().any(|&user| !self.user(user).deferred.is_empty()) {
            // The round's records stay pending until its end, as behind a stall.
            self.stalled = true;
            for &user in order {
                while !self.user(user).deferred.is_empty() {
                    let op = self.user_mut(user).deferred.remove(0);
                    self.serve(user, op, seen);
                    if !self.pending.is_empty() {
                        break;
                    }
                }
            }
            self.stalled = false;
            self.sync_pending();
        }
    }

    fn op(&mut self, user: User, op: Op, seen: &mut Observed) {
        let on_command = !matches!(
            op,
            Op::Relay | Op::RelayAs { .. } | Op::ReplayTicket { .. } | Op::ForgeAck { .. }
        );
        if on_command && self.user(user).unanswered >= self.pipeline_len_max {
            // Sent, not read: the server reads it once the replies before it are written.
            self.user_mut(user).deferred.push(op);
            return;
        }
        self.serve(user, op, seen);
        if on_command && self.reply_held() {
            self.user_mut(user).unanswered += 1;
            if !self.held.contains(&user) {
                self.held.push(user);
            }
        }
    }

    fn serve(&mut self, user: User, op: Op, seen: &mut Observed) {
        // Every request but the relay handshake goes to the command connection, which the
        // client opens first if it has none.
        let handshake_only = matches!(
            op,
            Op::Relay | Op::RelayAs { .. } | Op::ReplayTicket { .. } | Op::ForgeAck { .. }
        );
        if !handshake_only && self.user(user).command == Command::Absent {
            self.user_mut(user).command = Command::LoggedOut;
        }
        let logged_in = self.logged_in(user);
        let reply = match op {
            Op::Register => self.register(user),
            Op::Login => self.login(user, seen),
            Op::Relay => return self.relay(user, Relay::Bare, seen),
            Op::RelayAs { target } if target == user => return self.relay(user, Relay::Bare, seen),
            Op::RelayAs { target } => return self.intrude(user, target, seen),
            Op::ReplayTicket { target } => {
                // Refused: the ticket was spent by its first handshake (checked after the
                // session, which a replay for a user without one does not get to).
                let refusal = if self.logged_in(target) {
                    text::RELAY_TICKET_USED
                } else {
                    text::RELAY_NO_SESSION
                };
                push(seen, user, Port::NewRelay, Seen::Frame(refusal.into()));
                push(seen, user, Port::NewRelay, Seen::Closed);
                return;
            }
            // An acknowledgement of a message never pushed on this relay changes nothing (the
            // driver tolerates a failure frame, which PROTOCOL.md leaves open).
            Op::ForgeAck { .. } => return,
            Op::TicketRelay if logged_in => {
                push(seen, user, Port::Command, Seen::Frame(text::TICKET.into()));
                self.user_mut(user).asked_ticket = true;
                self.user_mut(user).ticket_spent = true;
                return self.relay(user, Relay::Ticketed, seen);
            }
            _ if !logged_in => text::NEEDS_LOGIN.into(),
            Op::TicketRelay => unreachable!("handled above"),
            Op::Logout => {
                self.end_session(user, None, seen);
                text::LOGOUT_OK.into()
            }
            Op::Send { to } => self.send(user, to, seen),
            Op::List => self.list(),
            Op::Delete => {
                self.commit(Effect::Delete(user));
                self.end_session(user, Some(text::DELETED), seen);
                text::DELETE_OK.into()
            }
        };
        push(seen, user, Port::Command, Seen::Frame(reply));
    }

    fn register(&mut self, user: User) -> Reply {
        if self.user(user).account.is_some() {
            return text::NAME_TAKEN.into();
        }
        self.commit(Effect::Register(user));
        let state = self.user_mut(user);
        state.generation += 1;
        state.command = Command::LoggedIn;
        state.relay = None;
        text::REGISTER_OK.into()
    }

    fn login(&mut self, user: User, seen: &mut Observed) -> Reply {
        if self.logged_in(user) {
            // The client logs in from a new connection: the old session is taken over.
            self.end_session(user, Some(text::TAKEN_OVER), seen);
        }
        if self.user(user).account.is_none() {
            return text::LOGIN_FAILED.into();
        }
        self.user_mut(user).command = Command::LoggedIn;
        text::LOGIN_OK.into()
    }

    fn send(&mut self, user: User, to: User, seen: &mut Observed) -> Reply {
        let seq = self.user(user).sends;
        self.user_mut(user).sends += 1;
        let relay = self.user(to).relay;
        if self.user(to).account.is_none() {
            return text::UNKNOWN_RECIPIENT.into();
        }
        let key = MsgKey { from: user, seq };
        self.commit(Effect::Message(to, key));
        if let Some(relay) = relay {
            push(seen, to, Port::Relay, push_frame(relay, key));
        }
        text::SEND_OK.into()
    }

    fn list(&self) -> Reply {
        let mut existing: Vec<(u64, User)> = (0..self.users.len() as User)
            .filter_map(|u| self.user(u).account.as_ref().map(|a| (a.created, u)))
            .collect();
        existing.sort();
        let names: String = existing.iter().map(|&(_, u)| format!("{} ", user_name(u))).collect();
        format!("0\n{names}").into()
    }

    fn relay(&mut self, user: User, kind: Relay, seen: &mut Observed) {
        let refusal = if !self.logged_in(user) {
            Some(text::RELAY_NO_SESSION)
        } else if kind == Relay::Bare && self.user(user).asked_ticket {
            Some(text::RELAY_SESSION_TICKETED)
        } else if self.user(user).relay.is_some() {
            Some(text::RELAY_TAKEN)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // A refused bare handshake is simply closed: the original client would print a
            // failure frame as a chat message.
            if kind == Relay::Ticketed {
                push(seen, user, Port::NewRelay, Seen::Frame(refusal.into()));
            }
            push(seen, user, Port::NewRelay, Seen::Closed);
            return;
        }
        self.user_mut(user).relay = Some(kind);
        let queue = self.user(user).account.as_ref().expect("logged in").queue.clone();
        for key in queue {
            push(seen, user, Port::NewRelay, push_frame(kind, key));
        }
    }

    /// `user` opens a relay naming `target`, from `user`'s own address: always refused, and
    /// without revealing whether the session has a relay already.
    fn intrude(&mut self, user: User, _target: User, seen: &mut Observed) {
        // A bare handshake: refused by a plain close, whatever the reason.
        push(seen, user, Port::NewRelay, Seen::Closed);
    }

    /// Ends `user`'s session: the relay, if any, gets `notice` (a ticketed relay only: the
    /// original client would print it as a message) and is closed; the command connection (if
    /// it still exists) stays open, logged out.
    fn end_session(&mut self, user: User, notice: Option<&'static str>, seen: &mut Observed) {
        let state = self.user_mut(user);
        if state.command == Command::LoggedIn {
            state.command = Command::LoggedOut;
        }
        state.asked_ticket = false;
        if let Some(kind) = state.relay.take() {
            if let (Some(notice), Relay::Ticketed) = (notice, kind) {
                push(seen, user, Port::Relay, Seen::Frame(notice.into()));
            }
            push(seen, user, Port::Relay, Seen::Closed);
        }
    }

    fn user(&self, user: User) -> &UserState {
        &self.users[user as usize]
    }

    fn user_mut(&mut self, user: User) -> &mut UserState {
        &mut self.users[user as usize]
    }
}

/// A push: `0\nSENDER:TEXT` for the original client, `7\nID\nSENDER\nTEXT` on a ticketed
/// relay (the driver checks the id and writes it as `#`).
fn push_frame(kind: Relay, key: MsgKey) -> Seen {
    let (from, text) = (user_name(key.from), message_text(key.seq));
    Seen::Frame(Cow::Owned(match kind {
        Relay::Bare => format!("0\n{from}:{text}"),
        Relay::Ticketed => format!("7\n#\n{from}\n{text}"),
    }))
}

fn push(seen: &mut Observed, user: User, port: Port, what: Seen) {
    seen.push((user, port), what);
}
