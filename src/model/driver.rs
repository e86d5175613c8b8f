//! The driver of the real core: a [`State`] is one state of a scenario (the shipped [`Host`]
//! with the core inside it, the clients' connections, the durable log and the reference model
//! beside them), and [`State::step`] runs one step on the core and on the model, then checks
//! every invariant.
//!
//! The core is driven only through the host, as the TCP adapter and the simulator drive it:
//! [`Host::open`], [`Host::handle`], [`Host::wrote`], and the host's instant writers
//! ([`InstantWriters`]) take what it routed into each connection's mailbox, report it written
//! ([`Host::wrote`]), run the password jobs it hands out and report the end ([`Host::ended`]),
//! after each input. The record sink is the disk ([`RecordSink`]); it also sees each visible
//! output leave the core, where the write-ahead rule is checked.
//!
//! Choices the driver makes, following `core::testkit`:
//! - Records go to the real write-ahead log (`sim::disk::WalStore`: `store::Wal` over the
//!   simulated `MemDisk`), written at once and synced at the end of the step, so a reply is
//!   released in the same step as its request; unless the disk is stalled ([`Step::Stall`]),
//!   when they stay unsynced, and every output behind them held, until [`Step::Sync`] (a lazy
//!   stall: its length counts from its first record, and it ends only after one, see
//!   [`State::holding`]). A
//!   crash ([`Step::Crash`]) loses what was not synced but a chosen prefix, maybe tearing the
//!   next record, and the core is rebuilt by the real recovery code from what the disk holds.
//! - What the model predicts for a connection is owed until the core releases it; a client
//!   sends its next request only once every reply it is owed arrived. An output the core lets
//!   go while a record emitted before it is unsynced is a violation in itself.
//! - A password job completes within the step that started it. A user's requests are sequential
//!   and a job only holds its own connection, so running it later could only move the request's
//!   effect after other users' steps, which the interleaving of whole steps already covers.
//!   Jobs run with [`Passwords::Model`] (a transparent stand-in that the core cannot tell from
//!   argon2, since it treats hashes as opaque strings) or with real argon2 at its cheapest cost.
//! - Clients read at once: a reply is reported written as its writer writes it, and a
//!   connection the core closes is reported closed once its writer has flushed. Pushes are
//!   confirmed one at a time (reported written on a bare relay, acknowledged by the client on a
//!   ticketed one), as a separate [`Step::Confirm`] the scheduler interleaves.
//! - A client's request reaches the core at once, without the host's read gate
//!   ([`Host::may_read`]): with a pipelining client, what is checked is the core's own pipeline
//!   bound, which the gate would hide.
//! - Each user connects from an address of their own, so a bare handshake in another user's
//!   name ([`Op::RelayAs`]) comes from the wrong address.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::invariants::{ensure, Invariant, Violation};
use super::por::CRASH_KEPT_MAX;
use super::reference::Model;
use super::step::{
    message_seq, user_name, user_of_name, MsgKey, Observed, Op, Port, Seen, Step, User, PASSWORD,
    USERS_MAX,
};
use crate::auth::Hasher;
use crate::core::{
    AccountId, Channel, Config, ConnId, Event, Lsn, MsgId, PasswordJob, PasswordOutcome,
    PasswordWork, Peer, Record, Server,
};
use crate::host::instant::{Delivery, InstantWriters};
use crate::host::mailbox::OneThread;
use crate::host::{Batch, Host, Outgoing, RecordSink};
use crate::sim::disk::WalStore;
use crate::wire::{encode_parts, RelayFrame, HEADER_LEN};

/// Whether a client sends `op` without waiting for the replies before (up to
/// [`Bounds::pipeline`] outstanding): operations that neither open a connection nor need a
/// reply's content to go on.
fn pipelined(op: Op) -> bool {
    matches!(op, Op::Send { .. } | Op::List | Op::Logout)
}

/// The most steps a stall lasts once it holds something back (counted from the step that
/// wrote its first unsynced record), unless [`Bounds::stall_steps`] says otherwise: then only
/// the sync or a crash may come. Long enough for every user to act once behind a held record
/// (three users), short enough that a stall does not multiply the whole state space by every
/// place it could end.
pub const STALL_STEPS_DEFAULT: u8 = 3;

/// Time never passes in a scenario: no deadline fires.
const NOW_MS: u64 = 1_000;
/// Each user connects from an address of their own (a bare relay handshake must come from the
/// address of the session it binds to).
fn peer_of(user: User) -> Peer {
    Peer(u128::from(user) + 1)
}

/// The wrong password attackers guess with.
const WRONG_PASSWORD: &str = "guess";

/// Each attacker guesses from an address of its own, not its user's, so the user's own logins
/// are never throttled by its guesses (the model predicts them unthrottled).
fn attacker_peer(user: User) -> Peer {
    Peer(u128::from(user) + 1 + USERS_MAX as u128)
}

/// How password jobs are run.
#[derive(Debug)]
pub enum Passwords {
    /// `Hash` answers `model$PASSWORD`; `Verify` compares with that. Instant and deterministic.
    Model,
    /// Real argon2id (use `HashCost::CHEAPEST`).
    Argon2(Hasher),
}

impl Passwords {
    fn run(&self, job: &PasswordJob) -> PasswordOutcome {
        match (self, &job.work) {
            (Passwords::Argon2(hasher), _) => hasher.run(job),
            (Passwords::Model, PasswordWork::Hash { .. }) => {
                PasswordOutcome::Hashed(format!("model${}", job.password))
            }
            (Passwords::Model, PasswordWork::Verify { hash }) => {
                let expected = format!("model${}", job.password);
                PasswordOutcome::Verified(hash.as_deref() == Some(expected.as_str()))
            }
        }
    }
}

/// The sizes of a scenario: who acts and how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub users: usize,
    /// Operations per user.
    pub ops: u8,
    /// Faults (connection resets and crashes) in total.
    pub faults: u8,
    /// Users may also open ticketed relays (whose pushes are acknowledged).
    pub tickets: bool,
    /// Users may also try to open a relay in another user's name (bare handshake).
    pub intruders: bool,
    /// Disk stalls in total ([`Step::Stall`]): windows in which records stay unsynced.
    pub stalls: u8,
    /// The most steps a stall lasts once it holds something back, that step included (at
    /// least 1; [`STALL_STEPS_DEFAULT`]). Each step more multiplies the states a stall adds:
    /// every user's possible requests behind the held record.
    pub stall_steps: u8,
    /// Requests a client may have sent and not seen answered (1: it waits for every reply).
    /// Only `send`, `list` and `logout` are pipelined.
    pub pipeline: u8,
}

thread_local! {
    /// The writers' scratch buffers, lent to the state a step runs on (see
    /// [`InstantWriters::swap_scratch`]).
    static SCRATCH: std::cell::RefCell<InstantWriters> = std::cell::RefCell::default();
}

/// One state of a scenario.
///
/// Copied per transition: the copy's host shares the mailboxes, which are empty between steps
/// (every writer runs to completion within a step), until a step changes one
/// ([`Host::share_empty_mailboxes`]). Their flavour is [`OneThread`]: a state never leaves the
/// thread that made it.
#[derive(Debug)]
pub struct State {
    /// The shipped host, which owns the core; its sink is the disk.
    host: Host<(), ModelSink, OneThread>,
    /// Every writer runs at once, within the step.
    writers: InstantWriters,
    pub(crate) model: Model,
    pub(crate) users: Vec<Conns>,
    pub(crate) ops_used: [u8; USERS_MAX],
    pub(crate) faults_used: u8,
    pub(crate) stalls_used: u8,
    /// The disk is stalled: records stay unsynced until [`Step::Sync`].
    stalled: bool,
    /// Steps taken since the stalled disk began to hold something back, that step included
    /// (at most `stall_steps`; 0 while it holds nothing: see [`State::holding`]).
    pub(crate) stall_len: u8,
    /// [`Bounds::stall_steps`].
    pub(crate) stall_steps: u8,
    /// The fewest records a crash the search runs from this state keeps or tears (see
    /// [`State::enabled`]): inside a stall, one more than the unsynced records of the state
    /// before the last step; otherwise 0. Not part of the state (the fingerprint leaves it
    /// out): a state reached on two paths may skip the crashes either path's last step allows,
    /// since each is run from that path's earlier state.
    pub(crate) crash_floor: u8,
    /// What the model predicted and the core has not yet released, per connection in order.
    pub(crate) owed: Vec<(ConnId, Seen)>,
    /// Relays the model has closed whose close the core has not yet released.
    pub(crate) closing: Vec<(User, RelayConn)>,
    /// The last ticket each user was granted (spent by the handshake that followed), for a
    /// replay.
    tickets: Vec<Option<String>>,
    /// Hostile steps are in the alphabet: the fingerprint keeps what only they depend on.
    pub(crate) hostile: bool,
    /// [`Bounds::pipeline`].
    pub(crate) pipeline: u8,
    /// The explorer skips subsumed states: the fingerprint keeps how many accounts each name
    /// has had (see `fingerprint::encode_with`).
    pub(crate) subsume: bool,
    /// Attackers guess passwords ([`Step::Guess`]) against the core's configured throttle.
    pub(crate) throttle: bool,
    /// Guesses whose connection is open, oldest first.
    pub(crate) guesses: Vec<Guess>,
    /// Wrong-password checks that ran, by (attacker, name guessed), since the last restart
    /// (the throttle is kept in memory: a restart forgets it, by design).
    pub(crate) guessed: [[u8; USERS_MAX]; USERS_MAX],
    /// The server accepts ticketed handshakes only, and hijackers race the owners' relays
    /// ([`Step::Hijack`]).
    pub(crate) race: bool,
    /// Hijackers' relay connections the core has not closed, with the hijacker.
    pub(crate) hijacks: Vec<(ConnId, User)>,
    next_conn: u64,
    passwords: Arc<Passwords>,
}

clone_reusing!(State {
    host,
    writers,
    model,
    users,
    ops_used,
    faults_used,
    stalls_used,
    stalled,
    stall_len,
    stall_steps,
    crash_floor,
    owed,
    closing,
    tickets,
    hostile,
    pipeline,
    subsume,
    throttle,
    guesses,
    guessed,
    race,
    hijacks,
    next_conn,
    passwords
});

/// A user's connections, as the client sees them.
#[derive(Debug, Default)]
pub(crate) struct Conns {
    pub command: Option<ConnId>,
    /// Command connections left logged out by a login from a new connection.
    pub old_commands: Vec<ConnId>,
    pub relay: Option<RelayConn>,
    /// Requests sent on `command` whose replies the client has not seen.
    pub outstanding: u8,
}

clone_reusing!(Conns { command, old_commands, relay, outstanding });

/// An attacker's guess: its connection and, while it runs, its password job.
#[derive(Clone, Debug)]
pub(crate) struct Guess {
    pub conn: ConnId,
    pub user: User,
    pub target: User,
    pub job: Option<PasswordJob>,
}

/// A relay connection and what it received.
#[derive(Debug)]
pub(crate) struct RelayConn {
    pub conn: ConnId,
    /// The account its handshake named, when it was opened.
    pub account: Option<AccountId>,
    /// Opened with a ticket: the client acknowledges pushes.
    pub acks: bool,
    /// Pushes written to the socket but not yet confirmed (reported written, or acknowledged
    /// on a ticketed relay), oldest first.
    pub unreported: VecDeque<MsgId>,
    /// Every message received on this relay, in order.
    pub received: Vec<MsgKey>,
}

clone_reusing!(RelayConn { conn, account, acks, unreported, received });

/// The host's record sink: the real log over the simulated disk, and what the driver learns
/// from the records. Records are appended at once; the driver syncs them once the writers have
/// settled, unless the disk is stalled.
#[derive(Debug)]
struct ModelSink {
    /// The real log over the simulated disk. Shared between states until a step writes to
    /// it (most do not), so copying a state skips it.
    store: Arc<WalStore>,
    /// Every record the core persisted since the last restart, in lsn order (recovery must
    /// return a prefix of it holding at least every synced record).
    log: Log,
    /// Shared until a step persists a record (most do not), so copying a world skips it.
    registry: Arc<Registry>,
    /// Visible outputs that left the core while a record emitted before them was unsynced:
    /// the connection and what it was (empty between steps).
    early: Vec<(ConnId, String)>,
}

clone_reusing!(ModelSink { store, log, registry, early });

impl RecordSink for ModelSink {
    fn persist(&mut self, lsn: Lsn, record: Record) {
        Arc::make_mut(&mut self.registry).note(&record);
        Arc::make_mut(&mut self.store).append(lsn, &record);
        self.log.push(record);
    }

    fn is_synchronous(&self) -> bool {
        false
    }

    /// The write-ahead rule, seen from outside: nothing visible leaves the core while a record
    /// it emitted earlier is unsynced.
    fn releasing(&mut self, conn: ConnId, item: Option<&Outgoing>) {
        if self.store.has_unsynced() {
            let what = match item {
                Some(Outgoing::Push { msg, .. }) => format!("a push of {msg:?} on {conn:?}"),
                Some(_) => format!("a reply on {conn:?}"),
                None => format!("the close of {conn:?}"),
            };
            self.early.push((conn, format!("{what} while a record before it is not durable")));
        }
    }
}

/// Who each account and message id is, learnt from the records the core persisted.
#[derive(Clone, Debug, Default)]
struct Registry {
    accounts: Vec<(AccountId, User)>,
    messages: Vec<(MsgId, MsgKey, AccountId)>,
}

impl Registry {
    fn note(&mut self, record: &Record) {
        match record {
            Record::Register { account, name, .. } => {
                let user = user_of_name(name).expect("scenario users have scenario names");
                self.accounts.push((*account, user));
            }
            Record::Message { id, from, to, text } => {
                let from = user_of_name(from).expect("scenario sender");
                let seq = message_seq(text).expect("scenario text");
                self.messages.push((*id, MsgKey { from, seq }, *to));
            }
            Record::Delete { .. } | Record::Delivered { .. } => {}
        }
    }

    /// Forgets ids past `last` (records a crash lost: their lsns will be used again).
    fn forget_after(&mut self, last: crate::core::Lsn) {
        self.accounts.retain(|(account, _)| account.0 <= last.0);
        self.messages.retain(|(id, ..)| id.0 <= last.0);
    }

    fn user(&self, account: AccountId) -> Option<User> {
        self.accounts.iter().find(|(a, _)| *a == account).map(|&(_, u)| u)
    }

    fn message(&self, id: MsgId) -> Option<(MsgKey, AccountId)> {
        self.messages.iter().find(|(i, ..)| *i == id).map(|&(_, key, to)| (key, to))
    }
}

/// The durable log, shared between states (a persistent list: cloning a world is O(1) here).
#[derive(Clone, Debug, Default)]
struct Log {
    last: Option<Arc<LogEntry>>,
}

#[derive(Debug)]
struct LogEntry {
    record: Record,
    prev: Option<Arc<LogEntry>>,
}

impl Log {
    fn push(&mut self, record: Record) {
        self.last = Some(Arc::new(LogEntry { record, prev: self.last.take() }));
    }

    /// Keeps the first `len` records.
    fn truncate(&mut self, len: usize) {
        let records = self.records();
        if records.len() > len {
            *self = Log::default();
            records.into_iter().take(len).for_each(|record| self.push(record));
        }
    }

    fn records(&self) -> Vec<Record> {
        let mut records = Vec::new();
        let mut at = self.last.as_deref();
        while let Some(entry) = at {
            records.push(entry.record.clone());
            at = entry.prev.as_deref();
        }
        records.reverse();
        records
    }
}

/// What happened on the wire during one step.
///
/// Its buffers are kept from one step to the next on the thread ([`RUNS`]): a step would
/// otherwise allocate them afresh, several times, for every transition.
#[derive(Default)]
struct Run {
    seen: Vec<(ConnId, Seen)>,
    pushes: Vec<(ConnId, MsgId)>,
    closed: Vec<ConnId>,
    new_relay: Option<(User, RelayConn)>,
    /// The command connection a login from a new connection left behind.
    displaced: Option<ConnId>,
    /// An output the core let go while a record emitted before it was unsynced.
    early: Option<String>,
    /// A guess was answered with something other than a failure.
    guess_answered: Option<String>,
    /// A hijacker's relay received a message: which, and the hijacker.
    hijacked: Option<(MsgId, User)>,
    /// Scratch: the frame a request is encoded into.
    frame: Vec<u8>,
}

impl Run {
    /// Forgets everything, keeping the buffers.
    fn clear(&mut self) {
        let Run {
            seen,
            pushes,
            closed,
            new_relay,
            displaced,
            early,
            guess_answered,
            hijacked,
            frame,
        } = self;
        seen.clear();
        pushes.clear();
        closed.clear();
        *new_relay = None;
        *displaced = None;
        *early = None;
        *guess_answered = None;
        *hijacked = None;
        frame.clear();
    }
}

thread_local! {
    /// The buffers of the last step's [`Run`] on this thread, lent to the next step.
    static RUNS: std::cell::Cell<Option<Box<Run>>> = const { std::cell::Cell::new(None) };
}

impl State {
    /// The initial state: an empty server, no connections.
    pub fn new(config: Config, users: usize, passwords: Arc<Passwords>) -> Self {
        assert!(users <= USERS_MAX, "at most {USERS_MAX} users");
        // Written through (every append reaches the disk unsynced, so a crash can tear it);
        // never compacted (the scenarios are far too small).
        #[cfg(any(test, feature = "planted"))]
        let store = WalStore::planted(config.planted);
        #[cfg(not(any(test, feature = "planted")))]
        let store = WalStore::new();
        let mut model = Model::new(users);
        model.pipeline_len_max = u8::try_from(config.pipeline_len_max).unwrap_or(u8::MAX);
        let sink = ModelSink {
            store: Arc::new(store),
            log: Log::default(),
            registry: Arc::default(),
            early: Vec::new(),
        };
        let mut host = Host::new(Server::new(config, ChaCha20Rng::seed_from_u64(0)), sink);
        host.share_empty_mailboxes();
        State {
            writers: InstantWriters::new(&mut host),
            host,
            model,
            users: vec![Conns::default(); users],
            ops_used: [0; USERS_MAX],
            faults_used: 0,
            stalls_used: 0,
            stalled: false,
            stall_len: 0,
            crash_floor: 0,
            stall_steps: STALL_STEPS_DEFAULT,
            owed: Vec::new(),
            closing: Vec::new(),
            tickets: vec![None; users],
            hostile: false,
            pipeline: 1,
            subsume: false,
            throttle: false,
            guesses: Vec::new(),
            guessed: [[0; USERS_MAX]; USERS_MAX],
            race: false,
            hijacks: Vec::new(),
            next_conn: 1,
            passwords,
        }
    }

    /// The core, inside its host.
    pub(crate) fn server(&self) -> &Server {
        self.host.server()
    }

    /// Whether records the core persisted wait for a sync.
    fn has_unsynced(&self) -> bool {
        self.host.sink().store.has_unsynced()
    }

    /// The steps possible now within `bounds`, in a fixed order, but for the crashes inside a
    /// stall that keep and tear only records written before its last step: the disk they
    /// leave is the one the same crash leaves one step earlier (before the stall, if that step
    /// began to hold records back), where it observes the same, and the state they reach is
    /// that one's with the last step's budget spent; found no deeper, so skipping them loses
    /// no state that subsumption would not skip, and no observation (a fifth of the
    /// transitions of `--users 3 --ops 3 --faults 1`;
    /// `tests::skipped_crashes_are_those_of_the_state_before`).
    pub fn enabled(&self, bounds: &Bounds, out: &mut Vec<Step>) {
        out.clear();
        let users = bounds.users as User;
        let unsynced = self.has_unsynced();
        let stall_over = self.stalled && self.stall_len >= self.stall_steps;
        for user in (0..users).filter(|_| !stall_over) {
            let outstanding = self.users[user as usize].outstanding;
            if self.ops_used[user as usize] < bounds.ops && outstanding > 0 {
                // A pipelining client sends on without waiting.
                let sends = (0..users).filter(|&to| to != user).map(|to| Op::Send { to });
                let ops = [Op::List, Op::Logout].into_iter().chain(sends);
                out.extend(ops.map(|op| Step::Op { user, op }).filter(|&s| self.possible(s)));
            }
            if self.ops_used[user as usize] < bounds.ops && !self.waiting(user) {
                out.extend(
                    [Op::Register, Op::Login, Op::Logout, Op::List, Op::Delete, Op::Relay]
                        .into_iter()
                        // Racing hijackers, the server takes ticketed handshakes only.
                        .filter(|&op| !(self.race && op == Op::Relay))
                        // Under small throttle limits, users log in only to accounts they
                        // have: a failed login of their own would count against the limits
                        // too, and the reference model does not predict the throttle.
                        .filter(|&op| {
                            !(self.throttle && op == Op::Login && !self.has_account(user))
                        })
                        .map(|op| Step::Op { user, op }),
                );
                // The ticket must arrive within the step to be used in the handshake.
                if bounds.tickets && !unsynced {
                    out.push(Step::Op { user, op: Op::TicketRelay });
                }
                if bounds.intruders && !self.race {
                    let others = (0..users).filter(|&target| target != user);
                    out.extend(others.map(|target| Step::Op { user, op: Op::RelayAs { target } }));
                }
                if bounds.intruders && bounds.tickets {
                    for target in 0..users {
                        let hostile =
                            [Op::ReplayTicket { target }, Op::ForgeAck { target }].into_iter();
                        let steps = hostile.map(|op| Step::Op { user, op });
                        out.extend(steps.filter(|&s| self.possible(s)));
                    }
                }
                let sends = (0..users).filter(|&to| to != user).map(|to| Op::Send { to });
                out.extend(sends.map(|op| Step::Op { user, op }));
            }
            out.extend(Some(Step::Confirm { user }).filter(|&s| self.possible(s)));
            if self.throttle {
                if self.ops_used[user as usize] < bounds.ops {
                    out.extend((0..users).map(|target| Step::Guess { user, target }));
                }
                out.extend(Some(Step::GuessChecked { user }).filter(|&s| self.possible(s)));
            }
            if self.race && self.ops_used[user as usize] < bounds.ops {
                let others = (0..users).filter(|&target| target != user);
                out.extend(others.map(|target| Step::Hijack { user, target }));
            }
        }
        if self.stalled {
            out.extend(Some(Step::Sync).filter(|&s| self.possible(s)));
        } else if self.stalls_used < bounds.stalls {
            out.push(Step::Stall);
        }
        if self.faults_used < bounds.faults && self.stall_may_end() {
            for user in (0..users).filter(|_| !stall_over) {
                let faults = [Step::DropCommand { user }, Step::DropRelay { user }];
                out.extend(faults.into_iter().filter(|&s| self.possible(s)));
            }
            let unsynced = self.unsynced_len().min(CRASH_KEPT_MAX);
            for kept in 0..=unsynced {
                if kept >= self.crash_floor {
                    out.push(Step::Crash { kept, torn: false });
                }
                if kept < unsynced && kept + 1 >= self.crash_floor {
                    out.push(Step::Crash { kept, torn: true });
                }
            }
        }
    }

    /// Whether the disk is stalled (records stay unsynced until [`Step::Sync`]).
    pub fn disk_stalled(&self) -> bool {
        self.stalled
    }

    /// Whether the stalled disk holds anything back: records the core wrote that are not
    /// synced, or effects the model expects to wait for the sync. Until it does, a stalled
    /// disk is indistinguishable from one that keeps up (the core syncs nothing and holds
    /// nothing back, and the model predicts every reply at once), so a stall begun then is the
    /// same as one begun just before the step that writes its first record. Hence the lazy
    /// stall: the stall's length counts from that step, and neither the sync nor a crash may
    /// come before it. What this leaves out is a stall that ends (by a sync or a crash)
    /// having held nothing, which only spends the stall: every step from there can be taken,
    /// observing the same, from the state reached by the same steps without the stall and its
    /// end, found earlier; and a stall counted from its first record is never shorter than
    /// one counted from the stall, so nothing a shorter count allowed is lost.
    pub fn holding(&self) -> bool {
        self.has_unsynced() || !self.model.pending.is_empty()
    }

    /// Whether a sync or a crash may come now: not while a stalled disk holds nothing (a crash
    /// of a stalled disk that holds nothing is the crash of a disk that never stalled, with a
    /// stall spent: see [`State::holding`]).
    fn stall_may_end(&self) -> bool {
        !self.stalled || self.holding()
    }

    /// Records written but not synced.
    fn unsynced_len(&self) -> u8 {
        let durable = self.server().durable_lsn().0;
        u8::try_from(self.server().last_lsn().0.saturating_sub(durable)).unwrap_or(u8::MAX)
    }

    /// Whether `user`'s client waits for a reply before its next request.
    pub(crate) fn waiting(&self, user: User) -> bool {
        self.users[user as usize].outstanding > 0
    }

    /// How many outputs `conn` is owed.
    pub(crate) fn owed_len(&self, conn: ConnId) -> usize {
        self.owed.iter().filter(|(c, _)| *c == conn).count()
    }

    /// Whether `step` can happen now (ignoring budgets): an operation needs the client not to
    /// be waiting for a reply, a write needs an unreported push, a reset needs the connection,
    /// a sync a stalled disk.
    pub fn possible(&self, step: Step) -> bool {
        let stall_over = self.stalled && self.stall_len >= self.stall_steps;
        if stall_over && !matches!(step, Step::Sync | Step::Crash { .. }) {
            return false;
        }
        match step {
            Step::Op { user, op } => {
                let n = self.users.len();
                let to_ok = match op {
                    Op::Send { to } | Op::RelayAs { target: to } => (to as usize) < n,
                    // The ticket must arrive within the step to be used in the handshake.
                    Op::TicketRelay => !self.has_unsynced(),
                    Op::ReplayTicket { target } => {
                        self.tickets.get(target as usize).is_some_and(Option::is_some)
                    }
                    // A failure frame it may get must come within the step (it is tolerated
                    // there, not predicted).
                    Op::ForgeAck { target } => {
                        target != user
                            && !self.has_unsynced()
                            && self.forged_ack(user, target).is_some()
                    }
                    _ => true,
                };
                let outstanding = self.users.get(user as usize).map_or(0, |c| c.outstanding);
                let may_send = outstanding == 0 || (pipelined(op) && outstanding < self.pipeline);
                (user as usize) < n && to_ok && may_send
            }
            Step::Confirm { user } => self
                .users
                .get(user as usize)
                .and_then(|c| c.relay.as_ref())
                .is_some_and(|r| !r.unreported.is_empty()),
            Step::DropCommand { user } => {
                self.users.get(user as usize).is_some_and(|c| c.command.is_some())
            }
            Step::DropRelay { user } => {
                self.users.get(user as usize).is_some_and(|c| c.relay.is_some())
            }
            Step::Guess { user, target } => {
                self.throttle
                    && (user as usize) < self.users.len()
                    && (target as usize) < self.users.len()
            }
            Step::GuessChecked { user } => {
                self.guesses.iter().any(|g| g.user == user && g.job.is_some())
            }
            Step::Hijack { user, target } => {
                let n = self.users.len();
                self.race && (user as usize) < n && (target as usize) < n && user != target
            }
            Step::Stall => !self.stalled,
            Step::Sync => self.stalled && self.stall_may_end(),
            Step::Crash { kept, torn } => {
                let unsynced = self.unsynced_len();
                self.stall_may_end()
                    && kept <= CRASH_KEPT_MAX
                    && (kept < unsynced || (kept == unsynced && !torn))
            }
        }
    }

    /// Runs `step` on the core and the model and checks every invariant.
    pub fn step(&mut self, step: Step) -> Result<(), Violation> {
        let mut run = RUNS.take().unwrap_or_default();
        let result = self.step_with(step, &mut run);
        run.clear();
        RUNS.set(Some(run));
        result
    }

    /// [`State::step`], collecting what happens on the wire in `run` (empty).
    fn step_with(&mut self, step: Step, run: &mut Run) -> Result<(), Violation> {
        debug_assert!(self.possible(step), "{step} is not possible");
        let logged_in_before = matches!(step, Step::Op { user, .. } if self.model.logged_in(user));
        let crash_floor = if self.stalled { self.unsynced_len().saturating_add(1) } else { 0 };
        let after_close = self.host.outputs_after_close();
        match step {
            Step::Op { user, op } => {
                self.ops_used[user as usize] += 1;
                self.op(user, op, run);
            }
            Step::Confirm { user } => {
                let relay = self.users[user as usize].relay.as_mut().expect("possible");
                let (conn, acks) = (relay.conn, relay.acks);
                let last = relay.unreported.pop_front().expect("possible");
                if acks {
                    self.request(conn, &RelayFrame::Ack(last.0).body(), run);
                } else {
                    let written = Batch { last_push: Some(last), ..Batch::default() };
                    self.host.wrote(NOW_MS, conn, &written);
                    self.settle_writers(run);
                }
            }
            Step::DropCommand { user } => {
                self.faults_used += 1;
                self.users[user as usize].outstanding = 0;
                let conn = self.users[user as usize].command.take().expect("possible");
                // The client is gone: whatever it was owed it will never read.
                self.owed.retain(|(c, _)| *c != conn);
                self.hang_up(conn, run);
            }
            Step::DropRelay { user } => {
                self.faults_used += 1;
                let relay = self.users[user as usize].relay.take().expect("possible");
                self.owed.retain(|(c, _)| *c != relay.conn);
                self.hang_up(relay.conn, run);
            }
            Step::Stall => {
                self.stalls_used += 1;
                self.stalled = true;
                self.stall_len = 0;
            }
            Step::Sync => {
                self.stalled = false;
                self.stall_len = 0;
                self.settle_writers(run);
            }
            Step::Crash { kept, torn } => {
                self.faults_used += 1;
                self.crash(kept, torn)?;
            }
            Step::Guess { user, target } => {
                self.ops_used[user as usize] += 1;
                self.guess(user, target, run);
            }
            Step::GuessChecked { user } => self.guess_checked(user, run)?,
            Step::Hijack { user, target } => {
                self.ops_used[user as usize] += 1;
                let conn = ConnId(self.next_conn);
                self.next_conn += 1;
                self.hijacks.push((conn, user));
                self.accept(conn, Channel::Relay, peer_of(target), run);
                self.request(conn, user_name(target), run);
            }
        }
        if let Some((msg, user)) = run.hijacked.take() {
            let registry = &self.host.sink().registry;
            let what = registry.message(msg).map_or(format!("{msg:?}"), |(key, to)| {
                let to = registry.user(to).map_or("?", user_name);
                format!("m{} from {} to {to}", key.seq, user_name(key.from))
            });
            let user = user_name(user);
            let detail = format!(
                "{what} was pushed on a relay {user} opened with a bare handshake from another \
                 user's host"
            );
            return Err(Violation::new(Invariant::RelayOwnUser, detail));
        }
        if let Some(detail) = run.early.take() {
            return Err(Violation::new(Invariant::ReleasedEarly, detail));
        }
        if let Some(detail) = run.guess_answered.take() {
            return Err(Violation::new(Invariant::ReplyDisagrees, detail));
        }
        let after_close = self.host.outputs_after_close().saturating_sub(after_close);
        ensure(after_close == 0, Invariant::ReplyDisagrees, || {
            format!("the core addressed {after_close} outputs to connections after closing them")
        })?;
        let expected = self.model.apply(step);
        if self.stalled && self.holding() {
            self.stall_len += 1;
        }
        self.crash_floor = if self.stalled { crash_floor } else { 0 };
        self.owe(expected, run)?;
        self.check_pushes(run)?;
        check_login_needed(step, logged_in_before, self.users_command(step), &run.seen)?;
        self.match_owed(run)?;
        for conns in &mut self.users {
            let replies = run
                .seen
                .iter()
                .filter(|(c, s)| Some(*c) == conns.command && matches!(s, Seen::Frame(_)));
            conns.outstanding = conns.outstanding.saturating_sub(replies.count() as u8);
        }
        self.settle(run);
        self.check_state()?;
        self.check_nothing_held()
    }

    /// With every record synced, the core holds nothing back: whatever the model predicted
    /// must have arrived.
    fn check_nothing_held(&self) -> Result<(), Violation> {
        if self.has_unsynced() {
            return Ok(());
        }
        let Some((conn, want)) = self.owed.first() else { return Ok(()) };
        let who = self.describe(&Run::default(), *conn);
        let detail = format!("{who} saw nothing; the model expects {want}");
        Err(Violation::new(Invariant::ReplyDisagrees, detail))
    }

    /// The user's command connection, for a step of a user.
    fn users_command(&self, step: Step) -> Option<ConnId> {
        step.user().and_then(|user| self.users[user as usize].command)
    }

    /// Appends what the model predicts to what each connection is owed.
    fn owe(&mut self, expected: Observed, run: &Run) -> Result<(), Violation> {
        for ((user, port), seen) in expected.into_items() {
            let conns = &self.users[user as usize];
            let conn = match port {
                Port::Command => conns.command,
                Port::OldCommand => run.displaced,
                Port::Relay => conns.relay.as_ref().map(|r| r.conn),
                Port::NewRelay => run.new_relay.as_ref().map(|(_, r)| r.conn),
            };
            let conn = conn.ok_or_else(|| {
                let detail = format!(
                    "the model expects {seen} on {}'s {port:?}, which the client does not hold",
                    user_name(user)
                );
                Violation::new(Invariant::ReplyDisagrees, detail)
            })?;
            self.owed.push((conn, seen));
        }
        Ok(())
    }

    /// Every output the core let go is the next thing its connection is owed.
    fn match_owed(&mut self, run: &Run) -> Result<(), Violation> {
        for (conn, seen) in &run.seen {
            let at = self.owed.iter().position(|(c, _)| c == conn);
            match at {
                Some(at) if self.owed[at].1 == *seen => {
                    self.owed.remove(at);
                }
                _ => {
                    let want = at.map_or("nothing".to_owned(), |at| self.owed[at].1.to_string());
                    let detail = format!(
                        "{} saw {seen}; the model expects {want}",
                        self.describe(run, *conn)
                    );
                    return Err(Violation::new(Invariant::ReplyDisagrees, detail));
                }
            }
        }
        for conn in &run.closed {
            if let Some((_, left)) = self.owed.iter().find(|(c, _)| c == conn) {
                let detail = format!(
                    "{} was closed; the model expects {left} first",
                    self.describe(run, *conn)
                );
                return Err(Violation::new(Invariant::ReplyDisagrees, detail));
            }
        }
        Ok(())
    }

    /// Whether the reference model says `user` has an account.
    fn has_account(&self, user: User) -> bool {
        self.model.users[user as usize].account.is_some()
    }

    /// Whose connection `conn` is, for messages.
    fn describe(&self, run: &Run, conn: ConnId) -> String {
        if let Some((user, port)) = self.label(run, conn) {
            return format!("{} {port:?}", user_name(user));
        }
        match self.closing.iter().find(|(_, r)| r.conn == conn) {
            Some((user, _)) => format!("{} closing relay", user_name(*user)),
            None => format!("{conn:?}, which no client holds,"),
        }
    }

    fn op(&mut self, user: User, op: Op, run: &mut Run) {
        let name = user_name(user);
        match op {
            Op::Relay => return self.open_relay(user, name, None, run),
            Op::RelayAs { target } => return self.open_relay(user, user_name(target), None, run),
            Op::ReplayTicket { target } => {
                let ticket = self.tickets[target as usize].clone();
                return self.open_relay(user, user_name(target), ticket, run);
            }
            Op::ForgeAck { target } => {
                let (conn, id) = self.forged_ack(user, target).expect("possible");
                self.request(conn, &RelayFrame::Ack(id.0).body(), run);
                // PROTOCOL.md does not say how an acknowledgement of a message never pushed on
                // the relay is answered: a failure frame is allowed, anything else is judged.
                let refused = |seen: &Seen| matches!(seen, Seen::Frame(b) if b.starts_with("-1\n"));
                run.seen.retain(|(c, seen)| *c != conn || !refused(seen));
                return;
            }
            _ => {}
        }
        let takeover = op == Op::Login && self.model.logged_in(user);
        if takeover || self.users[user as usize].command.is_none() {
            let conn = self.open(user, Channel::Command, run);
            let conns = &mut self.users[user as usize];
            let displaced = conns.command.replace(conn);
            conns.old_commands.extend(displaced);
            run.displaced = displaced;
        }
        let conns = &mut self.users[user as usize];
        if takeover {
            conns.outstanding = 0;
        }
        conns.outstanding += 1;
        let conn = conns.command.expect("opened above");
        if op == Op::TicketRelay {
            self.request(conn, "6", run);
            if let Some(ticket) = take_ticket(run, conn) {
                self.tickets[user as usize] = Some(ticket.clone());
                self.open_relay(user, name, Some(ticket), run);
            }
            return;
        }
        let credentials = |code: &'static str| [code, "\n", name, "\n", PASSWORD];
        match op {
            Op::Register => self.request_parts(conn, &credentials("3"), run),
            Op::Login => self.request_parts(conn, &credentials("1"), run),
            Op::Logout => self.request(conn, "-1\n", run),
            Op::Send { to } => {
                // Numbered as the model will number it when it serves it: after its sends
                // served so far and those still waiting unread, in order.
                let model = &self.model.users[user as usize];
                let waiting = model.deferred.iter().filter(|op| matches!(op, Op::Send { .. }));
                let text = super::step::message_text(model.sends + waiting.count() as u32);
                self.request_parts(conn, &["2\n", user_name(to), "\n", &text], run);
            }
            Op::List => self.request(conn, "4\n", run),
            Op::Delete => self.request_parts(conn, &credentials("5"), run),
            Op::Relay
            | Op::TicketRelay
            | Op::RelayAs { .. }
            | Op::ReplayTicket { .. }
            | Op::ForgeAck { .. } => unreachable!("handled above"),
        }
    }

    /// `user`, from an attacker's address, sends a login to `target`'s name with a wrong
    /// password on a new connection. If the core starts a password job, it stays pending (the
    /// guess is in flight); otherwise the guess was refused at once and the attacker hangs up.
    fn guess(&mut self, user: User, target: User, run: &mut Run) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.guesses.push(Guess { conn, user, target, job: None });
        self.accept(conn, Channel::Command, attacker_peer(user), run);
        self.request_parts(conn, &["1\n", user_name(target), "\n", WRONG_PASSWORD], run);
        let pending = self.guesses.iter().any(|g| g.conn == conn && g.job.is_some());
        if !pending {
            self.guesses.retain(|g| g.conn != conn);
            self.hang_up(conn, run);
        }
    }

    /// The oldest pending guess of `user` is checked (a wrong password: the check ran), its
    /// failure answered, and the attacker hangs up. The checks that ran are counted against
    /// the throttle's limits.
    fn guess_checked(&mut self, user: User, run: &mut Run) -> Result<(), Violation> {
        let at = self.guesses.iter().position(|g| g.user == user && g.job.is_some());
        let mut guess = self.guesses.remove(at.expect("possible"));
        let job = guess.job.take().expect("pending");
        let outcome = self.passwords.run(&job);
        self.guessed[user as usize][guess.target as usize] += 1;
        // The guess stays known while its reply is drained, then the attacker hangs up.
        self.guesses.push(guess.clone());
        self.input(Event::PasswordDone { job: job.job, outcome }, run);
        self.guesses.retain(|g| g.conn != guess.conn);
        self.hang_up(guess.conn, run);
        self.check_guesses(user, guess.target)
    }

    /// The throttle bounds the wrong-password checks that ran, per (name, address) and per
    /// address, by the configured limits (time never passes, so no backoff ever ends).
    fn check_guesses(&self, user: User, target: User) -> Result<(), Violation> {
        let config = self.server().config();
        let ran = usize::from(self.guessed[user as usize][target as usize]);
        let attacker = user_name(user);
        ensure(ran <= config.login_failures_max, Invariant::GuessesPerAccount, || {
            format!(
                "{ran} wrong passwords for {} were checked from {attacker}'s address; the \
                 limit is {}",
                user_name(target),
                config.login_failures_max
            )
        })?;
        let ran: usize = self.guessed[user as usize].iter().map(|&n| usize::from(n)).sum();
        ensure(ran <= config.login_failures_per_peer_max, Invariant::GuessesPerAddress, || {
            format!(
                "{ran} wrong passwords were checked from {attacker}'s address; the limit is {}",
                config.login_failures_per_peer_max
            )
        })
    }

    /// `user`'s ticketed relay and the id of the oldest message queued for `target`: what a
    /// forged acknowledgement sends.
    fn forged_ack(&self, user: User, target: User) -> Option<(ConnId, MsgId)> {
        let relay = self.users.get(user as usize)?.relay.as_ref().filter(|r| r.acks)?;
        let account = self.server().account_id(user_name(target))?;
        let id = self.server().queued_ids_iter(account).next()?;
        Some((relay.conn, id))
    }

    fn open_relay(&mut self, user: User, name: &str, ticket: Option<String>, run: &mut Run) {
        let conn = self.open(user, Channel::Relay, run);
        let relay = RelayConn {
            conn,
            account: self.server().account_id(name),
            acks: ticket.is_some(),
            unreported: VecDeque::new(),
            received: Vec::new(),
        };
        run.new_relay = Some((user, relay));
        let hello = match ticket {
            Some(ticket) => format!("{name}\n{ticket}"),
            None => name.to_owned(),
        };
        self.request(conn, &hello, run);
    }

    fn open(&mut self, user: User, channel: Channel, run: &mut Run) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.accept(conn, channel, peer_of(user), run);
        conn
    }

    /// The server accepts `conn`: the host routes it and tells the core.
    fn accept(&mut self, conn: ConnId, channel: Channel, peer: Peer, run: &mut Run) {
        self.host.open(NOW_MS, conn, channel, peer, ());
        self.settle_writers(run);
    }

    /// The client resets `conn`: its writer finds the mailbox closed and reports the end (what
    /// it was still owed goes nowhere). Nothing when the core closed it already.
    fn hang_up(&mut self, conn: ConnId, run: &mut Run) {
        if self.host.close_mailbox(conn) {
            self.writers.wake(conn);
            self.settle_writers(run);
        }
    }

    fn request(&mut self, conn: ConnId, body: &str, run: &mut Run) {
        self.request_parts(conn, &[body], run);
    }

    /// Sends one frame whose body is `parts` (at most five) joined, without building the body.
    fn request_parts(&mut self, conn: ConnId, parts: &[&str], run: &mut Run) {
        let mut slices: [&[u8]; 5] = [&[]; 5];
        for (slice, part) in slices.iter_mut().zip(parts) {
            *slice = part.as_bytes();
        }
        let mut frame = std::mem::take(&mut run.frame);
        frame.clear();
        encode_parts(&slices[..parts.len()], &mut frame);
        self.input(Event::Received { conn, bytes: &frame }, run);
        run.frame = frame;
    }

    /// Power loss and restart: the disk keeps what was synced and the chosen unsynced prefix,
    /// the real recovery reads it back, and the core is rebuilt from what it returns, in a new
    /// host over the same disk (every connection is gone).
    fn crash(&mut self, kept: u8, torn: bool) -> Result<(), Violation> {
        let config = self.server().config().clone();
        let durable = self.server().durable_lsn();
        let sink = self.host.sink_mut();
        let store = Arc::make_mut(&mut sink.store);
        store.crash_keeping(usize::from(kept), torn);
        let (records, last) = store.recover().map_err(|e| {
            Violation::new(Invariant::RecoveryWrong, format!("recovery refused: {e}"))
        })?;
        let written = sink.log.records();
        let prefix = written.get(..records.len()).is_some_and(|w| w == records);
        ensure(prefix && last.0 == records.len() as u64, Invariant::RecoveryWrong, || {
            let at = records.iter().zip(&written).position(|(r, w)| r != w);
            let shown = at.map_or_else(
                || format!("{} records, {} written", records.len(), written.len()),
                |at| format!("{:?} where {:?} was written", records[at], written[at]),
            );
            format!("recovery returned what was never written: {shown}")
        })?;
        ensure(last >= durable, Invariant::RecoveryWrong, || {
            format!("recovery lost synced records: it ends at {last:?}, {durable:?} was synced")
        })?;
        sink.log.truncate(records.len());
        Arc::make_mut(&mut sink.registry).forget_after(last);
        let rng = ChaCha20Rng::seed_from_u64(u64::from(self.faults_used));
        let server = Server::recover(config, rng, records, last)
            .map_err(|e| Violation::new(Invariant::RecoveryWrong, e.to_string()))?;
        // The old host goes with a stand-in sink (sharing the disk: no copy) in place of the
        // real one, which the new host takes over.
        let stand_in = ModelSink {
            store: Arc::clone(&self.host.sink().store),
            log: Log::default(),
            registry: Arc::default(),
            early: Vec::new(),
        };
        let sink = self.host.replace_sink(stand_in);
        self.host = Host::new(server, sink);
        self.host.share_empty_mailboxes();
        self.writers = InstantWriters::new(&mut self.host);
        self.users.iter_mut().for_each(|conns| *conns = Conns::default());
        self.owed.clear();
        self.closing.clear();
        self.guesses.clear();
        self.guessed = [[0; USERS_MAX]; USERS_MAX];
        self.hijacks.clear();
        self.stalled = false;
        self.stall_len = 0;
        Ok(())
    }

    /// Feeds `event` to the host, then settles.
    fn input(&mut self, event: Event<'_>, run: &mut Run) {
        self.host.handle(NOW_MS, event);
        self.settle_writers(run);
    }

    /// Runs every writer with something to do ([`InstantWriters::settle`]) and, unless the
    /// disk is stalled, syncs the log and tells the core, until nothing more comes out. Then
    /// notes what the step's checks need: outputs released early, connections the core ended.
    fn settle_writers(&mut self, run: &mut Run) {
        loop {
            self.run_writers(run);
            if self.stalled || !self.has_unsynced() {
                break;
            }
            let lsn = Arc::make_mut(&mut self.host.sink_mut().store).sync();
            self.host.handle(NOW_MS, Event::Durable { lsn });
        }
        let (hijacks, guesses) = (&self.hijacks, &self.guesses);
        for (conn, what) in self.host.sink_mut().early.drain(..) {
            // Hijackers' and attackers' connections are judged by their own rules.
            let theirs =
                hijacks.iter().any(|h| h.0 == conn) || guesses.iter().any(|g| g.conn == conn);
            if !theirs && run.early.is_none() {
                run.early = Some(what);
            }
        }
        self.note_ended(run);
    }

    /// The writers take what the host routed. Every frame is read by its client at once: a
    /// reply is reported written at once, a push is confirmed by a [`Step::Confirm`] of its
    /// own. Password jobs run at once, but an attacker's guess is held until its
    /// [`Step::GuessChecked`].
    fn run_writers(&mut self, run: &mut Run) {
        let State { host, writers, hijacks, guesses, passwords, .. } = self;
        let guessing: Vec<ConnId> = guesses.iter().map(|g| g.conn).collect();
        let mut deliver = |_: &Server, conn: ConnId, items: &mut [Outgoing]| {
            observe(run, hijacks, &guessing, conn, items);
            Delivery::PushesHeld
        };
        let mut job = |job: &PasswordJob| match guesses.iter_mut().find(|g| g.conn == job.conn) {
            Some(guess) => {
                guess.job = Some(job.clone());
                None
            }
            None => Some(passwords.run(job)),
        };
        // The copy runs on this thread's scratch buffers (a state's own are empty: copied
        // per transition, they would grow afresh in every copy).
        SCRATCH.with_borrow_mut(|scratch| {
            writers.swap_scratch(scratch);
            writers.settle(host, NOW_MS, &mut deliver, &mut job);
            writers.swap_scratch(scratch);
        });
    }

    /// Notes the connections the core closed, now that their writers have reported the end: the
    /// clients see the close after every frame before it.
    fn note_ended(&mut self, run: &mut Run) {
        let host = &self.host;
        let ended = |conn: &ConnId| !host.routes(*conn);
        let held = self.users.iter().flat_map(|conns| {
            let relay = conns.relay.as_ref().map(|r| r.conn);
            conns.command.into_iter().chain(conns.old_commands.iter().copied()).chain(relay)
        });
        let new_relay = run.new_relay.as_ref().map(|(_, r)| r.conn);
        let closing = self.closing.iter().map(|(_, r)| r.conn);
        for conn in held.chain(new_relay).chain(closing) {
            if ended(&conn) && !run.closed.contains(&conn) {
                run.seen.push((conn, Seen::Closed));
                run.closed.push(conn);
            }
        }
        if !self.hijacks.is_empty() {
            self.hijacks.retain(|(conn, _)| !ended(conn));
        }
    }

    /// Which user's connection `conn` is.
    fn label(&self, run: &Run, conn: ConnId) -> Option<(User, Port)> {
        if let Some((user, relay)) = &run.new_relay {
            if relay.conn == conn {
                return Some((*user, Port::NewRelay));
            }
        }
        self.users.iter().zip(0..).find_map(|(conns, user)| {
            let port = if conns.command == Some(conn) {
                Port::Command
            } else if conns.old_commands.contains(&conn) {
                Port::OldCommand
            } else if conns.relay.as_ref().is_some_and(|r| r.conn == conn) {
                Port::Relay
            } else {
                return None;
            };
            Some((user, port))
        })
    }

    /// Every push must be addressed to the relay's account, new to the relay, and in order.
    fn check_pushes(&mut self, run: &mut Run) -> Result<(), Violation> {
        for &(conn, msg) in &run.pushes {
            let (key, to) = self.host.sink().registry.message(msg).ok_or_else(|| {
                Violation::new(Invariant::WrongRecipient, format!("push of unknown {msg:?}"))
            })?;
            let to_user = self.host.sink().registry.user(to);
            let relay = match &mut run.new_relay {
                Some((user, relay)) if relay.conn == conn => Some((*user, relay)),
                _ => self
                    .users
                    .iter_mut()
                    .zip(0..)
                    .find_map(|(c, user)| {
                        c.relay.as_mut().filter(|r| r.conn == conn).map(|r| (user, r))
                    })
                    .or_else(|| {
                        let mut closing = self.closing.iter_mut();
                        closing.find(|(_, r)| r.conn == conn).map(|(user, r)| (*user, r))
                    }),
            };
            let (user, relay) = relay.ok_or_else(|| {
                Violation::new(Invariant::WrongRecipient, format!("push on non-relay {conn:?}"))
            })?;
            check_push(user, relay, key, to, to_user)?;
            relay.received.push(key);
            relay.unreported.push_back(msg);
        }
        Ok(())
    }

    /// Installs the new relay, sets aside relays the model closed whose close is still owed,
    /// and forgets connections the core closed.
    fn settle(&mut self, run: &mut Run) {
        // Only while outputs are held: otherwise a close the core did not release is a close
        // that did not happen, and the connection stays (for the checks to judge).
        let held = self.has_unsynced();
        let owes_close = |owed: &[(ConnId, Seen)], conn| {
            held && owed.iter().any(|(c, seen)| *c == conn && *seen == Seen::Closed)
        };
        if let Some((user, relay)) = run.new_relay.take() {
            if owes_close(&self.owed, relay.conn) {
                self.closing.push((user, relay));
            } else if !run.closed.contains(&relay.conn) {
                self.users[user as usize].relay = Some(relay);
            }
        }
        for (user, conns) in (0..).zip(&mut self.users) {
            if conns.relay.as_ref().is_some_and(|r| owes_close(&self.owed, r.conn)) {
                self.closing.push((user, conns.relay.take().expect("checked")));
            }
        }
        for &conn in &run.closed {
            for conns in &mut self.users {
                if conns.command == Some(conn) {
                    conns.command = None;
                    conns.outstanding = 0;
                }
                conns.old_commands.retain(|&c| c != conn);
                if conns.relay.as_ref().is_some_and(|r| r.conn == conn) {
                    conns.relay = None;
                }
            }
            self.closing.retain(|(_, r)| r.conn != conn);
        }
    }

    /// The core's accounts, queues and sessions agree with the model.
    fn check_state(&self) -> Result<(), Violation> {
        for (user, conns) in (0..).zip(&self.users) {
            let name = user_name(user);
            let model = &self.model.users[user as usize];
            let account = self.server().account_id(name);
            ensure(
                account.is_some() == model.account.is_some(),
                Invariant::StateDisagrees,
                || {
                    format!(
                        "account {name} exists in the core: {}, in the model: {}",
                        account.is_some(),
                        model.account.is_some()
                    )
                },
            )?;
            if let (Some(account), Some(expected)) = (account, &model.account) {
                self.check_queue(user, account, &expected.queue)?;
            }
            self.check_session(user, account, conns)?;
        }
        Ok(())
    }

    fn check_queue(
        &self,
        user: User,
        account: AccountId,
        expected: &VecDeque<MsgKey>,
    ) -> Result<(), Violation> {
        // The usual case, checked without collecting anything: every queued message is the one
        // the model expects there, addressed to this account. Otherwise the checks below say
        // what is wrong.
        let registry = &self.host.sink().registry;
        let mut core_queue = self.server().queued_ids_iter(account);
        let mut model_queue = expected.iter();
        let agrees = loop {
            match (core_queue.next(), model_queue.next()) {
                (None, None) => break true,
                (Some(id), Some(want)) => match registry.message(id) {
                    Some((key, to)) if key == *want && to == account => {}
                    _ => break false,
                },
                _ => break false,
            }
        };
        if agrees {
            let relay = self.users[user as usize].relay.as_ref();
            let pending = relay.map(|r| r.unreported.len() + self.owed_len(r.conn));
            if pending.is_none_or(|n| n == expected.len()) {
                return Ok(());
            }
        }
        let name = user_name(user);
        let mut queued = Vec::new();
        for id in self.server().queued_ids_iter(account) {
            let (key, to) = self.host.sink().registry.message(id).ok_or_else(|| {
                Violation::new(
                    Invariant::StateDisagrees,
                    format!("{name} has unknown {id:?} queued"),
                )
            })?;
            if to != account {
                let what = format!("m{} from {} waits for {name}", key.seq, user_name(key.from));
                return Err(match self.host.sink().registry.user(to) {
                    Some(u) if u == user => Violation::new(
                        Invariant::ReusedName,
                        format!("{what}: it was addressed to a deleted account of that name"),
                    ),
                    other => Violation::new(
                        Invariant::WrongRecipient,
                        format!("{what}: it was addressed to {}", other.map_or("?", user_name)),
                    ),
                });
            }
            queued.push(key);
        }
        if let Some(lost) = expected.iter().find(|key| !queued.contains(key)) {
            let detail = format!(
                "m{} from {} to {name} is neither delivered nor queued",
                lost.seq,
                user_name(lost.from)
            );
            return Err(Violation::new(Invariant::MessageLost, detail));
        }
        ensure(queued.iter().eq(expected.iter()), Invariant::StateDisagrees, || {
            format!("{name}'s queue is {queued:?} in the core, {expected:?} in the model")
        })?;
        // Pushes still held behind unsynced records count as pushed: they are owed.
        let relay = self.users[user as usize].relay.as_ref();
        let pending = relay.map(|r| r.unreported.len() + self.owed_len(r.conn));
        ensure(pending.is_none_or(|n| n == queued.len()), Invariant::StateDisagrees, || {
            format!(
                "{name}'s relay has {pending:?} pushes unreported but {} messages queued",
                queued.len()
            )
        })
    }

    fn check_session(
        &self,
        user: User,
        account: Option<AccountId>,
        conns: &Conns,
    ) -> Result<(), Violation> {
        let name = user_name(user);
        let model = &self.model.users[user as usize];
        for &old in &conns.old_commands {
            ensure(self.server().session_of(old).is_none(), Invariant::TwoSessions, || {
                format!("{name} is still logged in on a connection that was taken over")
            })?;
        }
        let core_in = conns.command.and_then(|c| self.server().session_of(c));
        let model_in = self.model.logged_in(user);
        ensure(
            core_in.is_some() == model_in && (!model_in || core_in == account),
            Invariant::StateDisagrees,
            || format!("{name} logged in: core {core_in:?}, model {model_in}"),
        )?;
        let model_open = model.command != super::reference::Command::Absent;
        ensure(conns.command.is_some() == model_open, Invariant::StateDisagrees, || {
            format!(
                "{name}'s command connection open: core {}, model {model_open}",
                conns.command.is_some()
            )
        })?;
        if let Some(r) = conns.relay.as_ref().filter(|r| r.account != account) {
            let detail =
                format!("{name}'s relay is bound to account {:?}, not {name}'s", r.account);
            return Err(Violation::new(Invariant::WrongRecipient, detail));
        }
        let relay = conns.relay.as_ref().map(|r| r.acks);
        let model_relay = model.relay.map(|r| r == super::reference::Relay::Ticketed);
        ensure(relay == model_relay, Invariant::StateDisagrees, || {
            format!("{name}'s relay (acknowledging?): client {relay:?}, model {model_relay:?}")
        })
    }
}

/// What the client of `conn` sees of `items`, its writer's batch: replies and pushes for the
/// checks; on a hijacker's relay, any push at all; on an attacker's guess, any reply but a
/// failure (neither is predicted by the model).
fn observe(
    run: &mut Run,
    hijacks: &[(ConnId, User)],
    guessing: &[ConnId],
    conn: ConnId,
    items: &mut [Outgoing],
) {
    if let Some(&(_, user)) = hijacks.iter().find(|h| h.0 == conn) {
        let push = items.iter().find_map(|item| match item {
            Outgoing::Push { msg, .. } => Some(*msg),
            _ => None,
        });
        if let Some(msg) = push.filter(|_| run.hijacked.is_none()) {
            run.hijacked = Some((msg, user));
        }
        return;
    }
    if guessing.contains(&conn) {
        for item in items {
            if let Outgoing::Reply(frame) = item {
                let reply = body(frame);
                if !reply.starts_with("-1\n") && run.guess_answered.is_none() {
                    run.guess_answered =
                        Some(format!("a wrong-password guess was answered {reply:?}"));
                }
            }
        }
        return;
    }
    for item in items {
        match item {
            // Taken, not copied (the host is told only how many replies were written).
            Outgoing::Reply(frame) => {
                run.seen.push((conn, Seen::Frame(body_of(std::mem::take(frame)))));
            }
            Outgoing::Push { msg, frame } => {
                run.seen.push((conn, Seen::Frame(push_body(frame, *msg))));
                run.pushes.push((conn, *msg));
            }
            Outgoing::Password(_) => {}
        }
    }
}

/// One push of `key` (addressed to account `to` of `to_user`) on `user`'s relay.
fn check_push(
    user: User,
    relay: &RelayConn,
    key: MsgKey,
    to: AccountId,
    to_user: Option<User>,
) -> Result<(), Violation> {
    let what = || {
        let (seq, from, user) = (key.seq, user_name(key.from), user_name(user));
        format!("message m{seq} from {from} on {user}'s relay")
    };
    // The relay's account is the one its handshake named, so an intruder's relay bound by a
    // faulty core names the victim's: the push must also reach the user the relay belongs to.
    if relay.account != Some(to) || to_user != Some(user) {
        return Err(if to_user == Some(user) {
            let detail = format!("{}: it was addressed to a deleted account of that name", what());
            Violation::new(Invariant::ReusedName, detail)
        } else {
            let detail =
                format!("{}: it was addressed to {}", what(), to_user.map_or("?", user_name));
            Violation::new(Invariant::WrongRecipient, detail)
        });
    }
    ensure(!relay.received.contains(&key), Invariant::DeliveredTwice, || {
        format!("{} a second time", what())
    })?;
    let in_order = relay.received.iter().all(|k| k.from != key.from || k.seq < key.seq);
    ensure(in_order, Invariant::OutOfOrder, || format!("{} after a later one", what()))
}

/// The ticket granted on `conn` in this step, if any; its reply is rewritten as the model
/// writes it (the ticket itself is random).
fn take_ticket(run: &mut Run, conn: ConnId) -> Option<String> {
    let (_, seen) = run.seen.iter_mut().rev().find(|(c, _)| *c == conn)?;
    let Seen::Frame(reply) = seen else { return None };
    let ticket = reply.strip_prefix("0\n")?.to_owned();
    *reply = super::reference::text::TICKET.into();
    Some(ticket)
}

/// The body of a push, with an acknowledgeable push's id written `#` once checked to be the
/// id of the message it carries (ids are log positions, which the model does not predict).
fn push_body(frame: &[u8], msg: MsgId) -> Cow<'static, str> {
    let text = String::from_utf8_lossy(frame.get(HEADER_LEN..).unwrap_or_default());
    match text.strip_prefix("7\n").and_then(|r| r.split_once('\n')) {
        Some((id, rest)) if id == msg.0.to_string() => format!("7\n#\n{rest}").into(),
        _ => text.into_owned().into(),
    }
}

/// The body of a complete frame (text, with any invalid UTF-8 replaced).
fn body(frame: &[u8]) -> Cow<'static, str> {
    String::from_utf8_lossy(frame.get(HEADER_LEN..).unwrap_or_default()).into_owned().into()
}

/// [`body`], reusing the frame's buffer.
fn body_of(mut frame: Vec<u8>) -> Cow<'static, str> {
    frame.drain(..HEADER_LEN.min(frame.len()));
    match String::from_utf8(frame) {
        Ok(text) => text.into(),
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned().into(),
    }
}

/// A command that needs a login must not succeed for a user who was not logged in (checked
/// on the replies released in the step itself; a held one is compared with the model later).
fn check_login_needed(
    step: Step,
    logged_in_before: bool,
    command: Option<ConnId>,
    seen: &[(ConnId, Seen)],
) -> Result<(), Violation> {
    let Step::Op { user, op } = step else { return Ok(()) };
    if logged_in_before || matches!(op, Op::Register | Op::Login | Op::Relay) {
        return Ok(());
    }
    let replies: Vec<&Seen> =
        seen.iter().filter(|(c, _)| Some(*c) == command).map(|(_, s)| s).collect();
    let succeeded = replies.iter().any(|s| matches!(s, Seen::Frame(b) if b.starts_with("0\n")));
    ensure(!succeeded, Invariant::CommandWithoutLogin, || {
        format!("{} {op} succeeded while logged out: {replies:?}", user_name(user))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relay(account: u64, received: &[(User, u32)]) -> RelayConn {
        RelayConn {
            conn: ConnId(9),
            account: Some(AccountId(account)),
            acks: false,
            unreported: VecDeque::new(),
            received: received.iter().map(|&(from, seq)| MsgKey { from, seq }).collect(),
        }
    }

    fn invariant(result: Result<(), Violation>) -> Option<Invariant> {
        result.err().map(|v| v.invariant)
    }

    #[test]
    fn push_checks_name_the_broken_invariant() {
        let key = |from, seq| MsgKey { from, seq };
        let fresh = relay(5, &[(0, 0)]);
        assert_eq!(invariant(check_push(1, &fresh, key(0, 1), AccountId(5), Some(1))), None);
        let twice = check_push(1, &fresh, key(0, 0), AccountId(5), Some(1));
        assert_eq!(invariant(twice), Some(Invariant::DeliveredTwice));
        let later = relay(5, &[(0, 2)]);
        let reordered = check_push(1, &later, key(0, 1), AccountId(5), Some(1));
        assert_eq!(invariant(reordered), Some(Invariant::OutOfOrder));
        let misdirected = check_push(1, &fresh, key(0, 1), AccountId(6), Some(2));
        assert_eq!(invariant(misdirected), Some(Invariant::WrongRecipient));
        let old_account = check_push(1, &fresh, key(0, 1), AccountId(3), Some(1));
        assert_eq!(invariant(old_account), Some(Invariant::ReusedName));
    }

    #[test]
    fn a_success_without_login_is_named() {
        let step = Step::Op { user: 0, op: Op::List };
        let conn = Some(ConnId(3));
        let seen = [(ConnId(3), Seen::Frame("0\nu0 ".into()))];
        let result = check_login_needed(step, false, conn, &seen);
        assert_eq!(invariant(result), Some(Invariant::CommandWithoutLogin));
        assert_eq!(invariant(check_login_needed(step, true, conn, &seen)), None);
        let login = Step::Op { user: 0, op: Op::Login };
        assert_eq!(invariant(check_login_needed(login, false, conn, &seen)), None);
        let elsewhere = check_login_needed(step, false, Some(ConnId(4)), &seen);
        assert_eq!(invariant(elsewhere), None, "only the user's own command connection counts");
    }
}
