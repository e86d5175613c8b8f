//! The invariants, checked as the run goes, against an oracle built only from what clients
//! were told.
//!
//! The oracle tracks, per username, whether an account exists, learned from acknowledged
//! replies. It is honest about ambiguity: a request whose reply was lost (reset, crash) may or
//! may not have taken effect, and requests of other clients on the same name that overlap in
//! time may be ordered either way; in those cases any answer the protocol allows for some order
//! is accepted and the oracle learns from it. Deliveries are checked against what was sent:
//! nothing unsent, nothing twice on one relay, per-sender order, the right recipient account.
//! The liveness phase then requires every acknowledged message to arrive.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::coverage::Coverage;
use super::scenario::Op;
use super::spec::text::{
    DELETE_OK, DELETE_REFUSED, LOGIN_FAILED, LOGIN_OK, LOGOUT_OK, NAME_TAKEN, NEEDS_LOGIN,
    REGISTER_OK, SEND_OK, UNKNOWN_RECIPIENT,
};
use super::spec::{self, Notice, Refusal};

/// An account as the world reports it (the session a reply was written in, the recipient of
/// a message record on the disk): a number that identifies it, nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountId(pub u64);

/// A connection as the world reports it (a relay a push arrived on, a connection a client
/// hung up): a number that identifies it, nothing more. The checker's own, like [`AccountId`]:
/// the oracle owes nothing to the server's `ConnId`. It prints as the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConnNo(pub u64);

impl std::fmt::Display for ConnNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The server's configured limits that decide whether a refusal was fair. They are the
/// world's configuration (the seed's knobs), not the server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub queue_len_max: usize,
    pub registrations_per_peer_max: usize,
    pub registration_window_ms: u64,
    pub login_deadline_ms: u64,
    pub login_backoff_base_ms: u64,
    pub push_window_len: usize,
    pub accounts_max: usize,
    pub list_pattern_len_max: usize,
    pub list_len_max: usize,
    pub list_reply_bytes_max: usize,
    pub pipeline_len_max: usize,
    pub ticket_ttl_ms: u64,
    pub tickets_per_session_max: usize,
    pub list_scan_max: usize,
    pub queued_bytes_max: u64,
    pub connections_max: usize,
    pub connections_per_peer_max: usize,
    pub login_failures_max: usize,
    pub login_failures_per_peer_max: usize,
}

/// How the server words the refusal of a password outside 1 to 128 bytes.
const INVALID_PASSWORD: &str = "Invalid password";
/// How the server words the refusal of a name outside PROTOCOL.md's.
const INVALID_NAME: &str = "Invalid username";

mod at_rest;
mod backoff;
mod bare;
use bare::BareSent;
mod bounds;
mod caps;
mod counts;
mod deadlines;
mod early;
mod hostile;
mod pump;
mod registrations;
mod rest;
mod sorted;
mod tickets;
pub use at_rest::StoredCost;
pub use hostile::Observation;

/// A broken invariant: the vocabulary the model checker shares. The simulator's invariants are
/// the sentences its checks pass to [`Checker::fail_with`] and `expect`.
pub use crate::invariant::{Invariant, Violation};

/// Whether an account holds a name, as far as the oracle knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Yes,
    No,
    Unknown,
}

/// A username as the oracle knows it: an index into the checker's table of lower-cased names
/// (interned, so the per-request bookkeeping compares and indexes integers, not strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct NameId(u32);

#[derive(Debug, Clone)]
struct NameState {
    exists: Known,
    /// Bumped whenever a register or delete of this name starts or ends, and by crashes.
    epoch: u64,
    mutations_in_flight: u32,
    /// Logins and registers of this name in flight.
    logins_in_flight: u32,
    /// Bumped whenever someone starts to log in as (or register) this name: a session of it
    /// may have been taken over from then on.
    session_epoch: u64,
    password: Option<String>,
    /// The name as its account was registered (`U1` or `u1`), learned from a register's
    /// acknowledgement, with the epoch it holds for (the one after that register ended): a
    /// list while the epoch is unchanged must show the name spelled so.
    spelling: Option<(u64, String)>,
    /// Delete attempts as (sent, ended) times; `u64::MAX` while in flight.
    deletes: Vec<(u64, u64)>,
    failures_ms: Vec<u64>,
    /// Accounts of this name as the disk shows them: (account, registered, deleted or
    /// `u64::MAX`), by the times their records were written.
    accounts: Vec<(AccountId, u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Session {
    Out,
    In { key: NameId, account: Option<AccountId>, certain_epoch: Option<u64> },
}

#[derive(Debug, Clone)]
struct Pending {
    op: Op,
    /// The name the request is about (registered, logged in, deleted or sent to), interned
    /// once at send.
    target: Option<NameId>,
    sent_ms: u64,
    /// The target name's epoch at send, if no other mutation of it was in flight then.
    clean_epoch: Option<u64>,
    /// What the oracle knew about the target name at send.
    exists_at_send: Known,
    /// For logins and registers: the name's session epoch right after this request bumped it,
    /// if no other login of the name was in flight then.
    session_alone: Option<u64>,
    crashes: u64,
    /// Names whose state was known and quiet at send (for list replies).
    list_known: Vec<(NameId, bool, u64)>,
    tag: Option<Tag>,
    /// Its place in the log of password checks (`counts.rs`), if it is one.
    check: Option<usize>,
    /// When the reply arrived (set on arrival).
    reply_ms: u64,
    /// The most the disk held since the send (`bounds.rs`).
    disk_peak: bounds::DiskPeak,
}

#[derive(Debug, Clone, Default)]
struct ClientState {
    session: Option<Session>,
    /// The tickets of its current session (`tickets.rs`).
    tickets: tickets::ClientTickets,
    /// Its bare handshakes in its current session (`bare.rs`).
    bare: bare::ClientBare,
    /// Requests sent and not yet answered, oldest first (a client may pipeline).
    pending: VecDeque<Pending>,
    /// The address it connects from.
    host: u128,
    failures_ms: Vec<u64>,
    /// Until when the server said this client must wait ("try again in N s"): the throttle's
    /// delay may outlast its failure window.
    throttled_until_ms: u64,
    /// Every session this client obtained: (when, name key, account).
    sessions_held: Vec<(u64, NameId, Option<AccountId>)>,
    /// Pushes to its relays judged when its login in flight is answered (`early.rs`).
    early: Vec<early::Early>,
    /// When it sent each register.
    /// (sent, ended: `u64::MAX` while in flight): the server counts a registration when it
    /// reads it, somewhere in between.
    registers_ms: Vec<(u64, u64)>,
    /// When it sent each register that succeeded, with the number of crashes then (a
    /// restarted server counts afresh).
    registered_ms: Vec<(u64, u64)>,
    /// When its last password check (login or delete) ended.
    check_ended_ms: u64,
    /// Its last throttled check and the wait it was told (`backoff.rs`).
    told: Option<backoff::Told>,
    /// Command connections it opened so far (the current one's number).
    command_no: u64,
    /// Whether that connection is still open (the client has not closed it nor seen it end).
    command_open: bool,
}

#[derive(Debug, Clone)]
struct MsgInfo {
    text: String,
    from_client: usize,
    from_key: Option<NameId>,
    to_key: NameId,
    seq: u64,
    sent_ms: u64,
    acked: bool,
    /// When its acknowledgement reached the sender (if `acked`).
    acked_ms: u64,
    /// Refused by a reply: never queued.
    refused: bool,
    to_account: Option<AccountId>,
    delivered: bool,
    /// Reported written to an original client's relay, with the number of crashes then.
    written_plain: Option<u64>,
}

#[derive(Debug, Clone)]
struct RelayState {
    client: usize,
    opened_ms: u64,
    /// Per sending client: every message number received here, ascending, and the last one
    /// received (0 before any). Messages mostly arrive in order, so a number is usually pushed
    /// at the end (a set was a tree insertion per push).
    senders: Vec<(Vec<u64>, u64)>,
    /// What "a message accepted for a user whose relay is attached is pushed to it" keeps.
    pump: pump::Attachment,
    /// A fault reset it (the server's hang-up may be its answer to that).
    reset: bool,
}

/// The checker of one run.
#[derive(Debug, Clone)]
pub struct Checker {
    /// Every name seen, lower-cased, with its id (an index into `names`).
    ids: BTreeMap<String, NameId>,
    names: Vec<(String, NameState)>,
    clients: Vec<ClientState>,
    msgs: Msgs,
    relays: sorted::SortedMap<ConnNo, RelayState>,
    crashes: u64,
    throttle_window_ms: u64,
    bare_relay_window_ms: u64,
    /// The server accepts bare relay handshakes (`bare.rs`).
    bare_relays_allowed: bool,
    /// When the liveness phase began (faults healed), if it has.
    liveness_began_ms: Option<u64>,
    /// Clients of the login storm, and the most wrong-password logins of theirs that the
    /// server may verify (the throttle's per-address bound).
    storm: BTreeSet<usize>,
    /// Register and delete records written to the disk, as (lsn, name, account, is a delete):
    /// a crash may lose those not yet synced, and a recovery that ends before their lsn takes
    /// them back (they never happened, and their lsns, so their account ids, are used again).
    disk_records: Vec<(u64, NameId, AccountId, bool)>,
    storm_verified_max: usize,
    /// Wrong-password logins of the storm the server verified (answered "invalid login"
    /// rather than throttled).
    storm_verified: usize,
    /// What hostile clients did and must get (`hostile.rs`).
    hostile: hostile::HostileState,
    /// The earliest send of them.
    storm_first_verified_ms: Option<u64>,
    /// The highest lsn the store reported durable since the server last started.
    durable_lsn: u64,
    /// The highest lsn the server wrote (submitted to its store) since it last started.
    written_lsn: u64,
    /// The server was stopped gracefully having written every record up to this lsn: its
    /// recovery must find them all.
    stopped_lsn: Option<u64>,
    /// Invariant checks performed.
    pub checks: u64,
    /// Pushes received by clients.
    pub delivered: u64,
    /// Messages delivered (pushed and received, or written to an original client) for the
    /// first time: finite, so the liveness phase may wait as long as it grows.
    first_delivered: u64,
    /// What happened how often (refusals, notices): rows of the reachability report.
    pub coverage: Coverage,
    limits: Option<Limits>,
    /// Every password check, for the throttle's counts (`counts.rs`).
    counts: Vec<counts::Check>,
    /// The queues and accounts the disk shows (`bounds.rs`).
    disk_bounds: bounds::DiskBounds,
    /// The connections the server holds, for its caps (`caps.rs`).
    caps: caps::Caps,
    violation: Option<Violation>,
    /// Command connections the server has not yet ended (the client may have seen them end).
    server_conns: BTreeSet<ConnNo>,
    /// Registrations and deletions lost with their connection while the server's end of it
    /// lives: the server may still carry them out (a deletion's password check finishes after
    /// the reset), so they stay in flight until that end (seed 7889).
    lost_mutations: BTreeMap<ConnNo, Vec<Pending>>,
    /// When connections were opened, read and hung up (`deadlines.rs`).
    deadlines: deadlines::Deadlines,
    /// The argon2 cost the world configured, and the salts stored so far (`at_rest.rs`).
    stored_cost: Option<at_rest::StoredCost>,
    salts: at_rest::Salts,
}

fn key(name: &str) -> String {
    spec::name_key(name)
}

/// Registers, logins, deletes and sends have a target name, interned when they are sent.
const TARGETED: &str = "the request names a target";

/// A message's identity in the run: client `C`'s `K`-th message, tagged `#C.K` in its text.
pub type Tag = (usize, u64);

/// The tag of a message text (`#C.K ...`), if it has one.
pub fn tag_key(text: &str) -> Option<Tag> {
    // One pass over bytes: this runs several times per message.
    let mut bytes = text.as_bytes().strip_prefix(b"#")?.iter();
    let client = decimal(&mut bytes, b'.')?;
    let seq = decimal(&mut bytes, b' ')?;
    Some((usize::try_from(client).ok()?, seq))
}

/// A decimal number of 1 to 18 digits, up to `end` or the end of the text.
fn decimal(bytes: &mut std::slice::Iter<'_, u8>, end: u8) -> Option<u64> {
    let (mut value, mut digits) = (0u64, 0);
    for &byte in bytes {
        match byte {
            b'0'..=b'9' if digits < 18 => {
                value = value * 10 + u64::from(byte - b'0');
                digits += 1;
            }
            _ if byte == end => break,
            _ => return None,
        }
    }
    (digits > 0).then_some(value)
}

/// Every tagged message sent, by tag. Tags are dense (each client numbers its messages from 1),
/// so a table indexed by client and number replaces a map: this is looked up on every push.
#[derive(Debug, Clone, Default)]
struct Msgs {
    by_client: Vec<Vec<Option<MsgInfo>>>,
}

impl Msgs {
    fn insert(&mut self, (client, seq): Tag, info: MsgInfo) {
        if self.by_client.len() <= client {
            self.by_client.resize_with(client + 1, Vec::new);
        }
        let slots = &mut self.by_client[client];
        let at = seq as usize;
        if slots.len() <= at {
            slots.resize_with(at + 1, || None);
        }
        slots[at] = Some(info);
    }

    fn get(&self, &(client, seq): &Tag) -> Option<&MsgInfo> {
        self.by_client.get(client)?.get(usize::try_from(seq).ok()?)?.as_ref()
    }

    fn get_mut(&mut self, &(client, seq): &Tag) -> Option<&mut MsgInfo> {
        self.by_client.get_mut(client)?.get_mut(usize::try_from(seq).ok()?)?.as_mut()
    }

    /// In tag order.
    fn iter(&self) -> impl Iterator<Item = (Tag, &MsgInfo)> {
        self.by_client.iter().enumerate().flat_map(|(client, slots)| {
            slots
                .iter()
                .enumerate()
                .filter_map(move |(seq, m)| Some(((client, seq as u64), m.as_ref()?)))
        })
    }
}

impl Checker {
    pub fn new(throttle_window_ms: u64, bare_relay_window_ms: u64) -> Self {
        Checker {
            ids: BTreeMap::new(),
            names: Vec::new(),
            clients: Vec::new(),
            msgs: Msgs::default(),
            relays: sorted::SortedMap::default(),
            crashes: 0,
            throttle_window_ms,
            bare_relay_window_ms,
            bare_relays_allowed: false,
            durable_lsn: 0,
            written_lsn: 0,
            stopped_lsn: None,
            liveness_began_ms: None,
            storm: BTreeSet::new(),
            disk_records: Vec::new(),
            storm_verified_max: usize::MAX,
            storm_verified: 0,
            hostile: hostile::HostileState::default(),
            storm_first_verified_ms: None,
            checks: 0,
            delivered: 0,
            first_delivered: 0,
            coverage: Coverage::default(),
            limits: None,
            counts: Vec::new(),
            disk_bounds: bounds::DiskBounds::default(),
            caps: caps::Caps::default(),
            violation: None,
            server_conns: BTreeSet::new(),
            lost_mutations: BTreeMap::new(),
            deadlines: deadlines::Deadlines::default(),
            stored_cost: None,
            salts: at_rest::Salts::default(),
        }
    }

    /// The limits the server runs with, to judge its refusals by (without them, any refusal
    /// of the right kind is taken as fair).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = Some(limits);
    }

    /// The first violation, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.violation.as_ref()
    }

    fn fail(&mut self, at_ms: u64, invariant: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation::at(at_ms, Invariant::new(invariant), detail));
        }
    }

    fn expect(
        &mut self,
        ok: bool,
        at_ms: u64,
        invariant: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        self.checks += 1;
        if !ok {
            self.fail(at_ms, invariant, detail());
        }
    }

    /// The id of `name` (case-insensitive), interned on first sight.
    fn id(&mut self, name: &str) -> NameId {
        let lowered;
        let k = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            lowered = key(name);
            lowered.as_str()
        } else {
            name
        };
        if let Some(&id) = self.ids.get(k) {
            return id;
        }
        let id = NameId(u32::try_from(self.names.len()).expect("fewer than 2^32 names"));
        self.ids.insert(k.to_owned(), id);
        let state = NameState {
            exists: Known::No,
            epoch: 0,
            mutations_in_flight: 0,
            logins_in_flight: 0,
            session_epoch: 0,
            password: None,
            spelling: None,
            deletes: Vec::new(),
            failures_ms: Vec::new(),
            accounts: Vec::new(),
        };
        self.names.push((k.to_owned(), state));
        id
    }

    fn name(&mut self, id: NameId) -> &mut NameState {
        &mut self.names[id.0 as usize].1
    }

    fn key_of(&self, id: NameId) -> &str {
        &self.names[id.0 as usize].0
    }

    fn client(&mut self, client: usize) -> &mut ClientState {
        if self.clients.len() <= client {
            self.clients.resize(client + 1, ClientState::default());
        }
        &mut self.clients[client]
    }

    fn session(&mut self, client: usize) -> Session {
        self.client(client).session.clone().unwrap_or(Session::Out)
    }

    fn certainly_in(&mut self, client: usize) -> bool {
        match self.session(client) {
            Session::In { key, certain_epoch: Some(e), .. } => self.name(key).session_epoch == e,
            _ => false,
        }
    }

    // ---- what clients do ---------------------------------------------------------------------

    /// A client opened a command connection: it starts logged out.
    pub fn connected(&mut self, client: usize) {
        let state = self.client(client);
        state.session = Some(Session::Out);
        state.command_no += 1;
        state.command_open = true;
        self.hostile_connected(client);
    }

    /// A client sent a request.
    pub fn sent(&mut self, now_ms: u64, client: usize, op: Op) {
        self.tickets_sent(client, Some(&op));
        match op {
            Op::Login { .. } | Op::Register { .. } => self.bare_sent(client, BareSent::Login),
            Op::Relay { ticket: true } => self.bare_sent(client, BareSent::Ticket),
            Op::Logout | Op::Delete { .. } | Op::Disconnect => {
                self.bare_sent(client, BareSent::End)
            }
            _ => {}
        }
        let target = match &op {
            Op::Register { name, .. } | Op::Login { name, .. } | Op::Delete { name, .. } => {
                Some(self.id(name))
            }
            Op::Send { to, .. } => Some(self.id(to)),
            _ => None,
        };
        let mutation = matches!(op, Op::Register { .. } | Op::Delete { .. });
        let login = matches!(op, Op::Register { .. } | Op::Login { .. });
        if matches!(op, Op::Register { .. }) {
            self.client(client).registers_ms.push((now_ms, u64::MAX));
        }
        let (mut clean_epoch, mut session_alone, mut exists_at_send) = (None, None, Known::Unknown);
        if let Some(k) = target {
            let state = self.name(k);
            if mutation {
                state.epoch += 1;
                state.mutations_in_flight += 1;
                if matches!(op, Op::Delete { .. }) {
                    state.deletes.push((now_ms, u64::MAX));
                }
            }
            if login {
                state.session_epoch += 1;
                state.logins_in_flight += 1;
                session_alone = (state.logins_in_flight == 1).then_some(state.session_epoch);
            }
            let own = u32::from(mutation);
            clean_epoch = (state.mutations_in_flight == own).then_some(state.epoch);
            exists_at_send = state.exists;
        }
        let list_known = if matches!(op, Op::List { .. }) {
            // In name order (the map's), as the list's checks report them.
            self.ids
                .values()
                .map(|&id| (id, &self.names[id.0 as usize].1))
                .filter(|(_, s)| s.mutations_in_flight == 0 && s.exists != Known::Unknown)
                .map(|(id, s)| (id, s.exists == Known::Yes, s.epoch))
                .collect()
        } else {
            Vec::new()
        };
        let tag = match &op {
            Op::Send { text, .. } => tag_key(text),
            _ => None,
        };
        if let (Op::Send { text, .. }, Some(tag), Some(to_key)) = (&op, tag, target) {
            let from_key = match self.session(client) {
                Session::In { key, .. } => Some(key),
                Session::Out => None,
            };
            let seq = tag.1;
            let info = MsgInfo {
                text: text.clone(),
                from_client: client,
                from_key,
                to_key,
                seq,
                sent_ms: now_ms,
                acked: false,
                acked_ms: 0,
                refused: false,
                to_account: None,
                delivered: false,
                written_plain: None,
            };
            self.msgs.insert(tag, info);
        }
        if pump::ends_session(&op) {
            self.pump_session_request(now_ms, client, target);
        }
        let crashes = self.crashes;
        let pending = Pending {
            op,
            target,
            sent_ms: now_ms,
            clean_epoch,
            exists_at_send,
            session_alone,
            crashes,
            list_known,
            tag,
            check: None,
            reply_ms: 0,
            disk_peak: self.disk_bounds.held(),
        };
        let check = self.counts_sent(client, &pending);
        self.client(client).pending.push_back(Pending { check, ..pending });
    }

    /// The server persisted a message record for account `to`.
    pub fn persisted_message(&mut self, text: &str, to: AccountId) {
        if let Some(msg) = tag_key(text).and_then(|t| self.msgs.get_mut(&t)) {
            msg.to_account = Some(to);
        }
    }

    /// The server wrote a register record of `name` for `account` to its disk.
    pub fn persisted_register(&mut self, now_ms: u64, lsn: u64, name: &str, account: AccountId) {
        let k = self.id(name);
        self.name(k).accounts.push((account, now_ms, u64::MAX));
        self.disk_records.push((lsn, k, account, false));
    }

    /// The server wrote a delete record of `account` to its disk.
    pub fn persisted_delete(&mut self, now_ms: u64, lsn: u64, account: AccountId) {
        for (index, (_, state)) in self.names.iter_mut().enumerate() {
            for entry in state.accounts.iter_mut().filter(|e| e.0 == account && e.2 == u64::MAX) {
                entry.2 = now_ms;
                let k = NameId(u32::try_from(index).expect("fewer than 2^32 names"));
                self.disk_records.push((lsn, k, account, true));
            }
        }
    }

    /// The server recovered its disk through `last_lsn` at `now_ms`: register and delete
    /// records past it were lost by the crash, so the accounts the disk shows are as before
    /// them. None of them was reported durable: what the store calls durable survives a power
    /// loss, and the replies and pushes released on that word are acknowledged.
    pub fn recovered(&mut self, now_ms: u64, last_lsn: u64) {
        self.checks += 1;
        let durable = std::mem::replace(&mut self.durable_lsn, last_lsn);
        self.expect(last_lsn >= durable, now_ms, "a crash keeps every record reported durable", || {
            format!("the store reported every record up to lsn {durable} durable; recovery after the crash found records up to {last_lsn} only")
        });
        self.written_lsn = last_lsn;
        if let Some(written) = self.stopped_lsn.take() {
            self.expect(last_lsn >= written, now_ms, "a stopped server keeps every record it wrote", || {
                format!("the server wrote records up to lsn {written} before it was stopped; recovery found records up to {last_lsn} only")
            });
        }
        self.bounds_recovered(last_lsn);
        let lost_at = self.disk_records.partition_point(|r| r.0 <= last_lsn);
        let lost: Vec<_> = self.disk_records.drain(lost_at..).collect();
        for (_, k, account, delete) in lost.into_iter().rev() {
            let accounts = &mut self.name(k).accounts;
            if delete {
                if let Some(e) = accounts.iter_mut().rev().find(|e| e.0 == account) {
                    e.2 = u64::MAX;
                }
            } else if let Some(at) = accounts.iter().rposition(|e| e.0 == account) {
                accounts.remove(at);
            }
        }
    }

    /// The account that held `k` from `from_ms` to `to_ms`, if the disk shows exactly one
    /// (a session obtained then is of that account); `None` when several could have.
    fn account_between(&mut self, k: NameId, from_ms: u64, to_ms: u64) -> Option<AccountId> {
        let mut live = self.name(k).accounts.iter().filter(|e| e.1 <= to_ms && e.2 >= from_ms);
        let first = live.next()?.0;
        live.all(|e| e.0 == first).then_some(first)
    }

    /// A client's command connection ended under it with `unanswered` requests outstanding.
    /// Unless a fault cut it (`faulted`) or the server said why first (`noticed`), the server
    /// broke the promise that it answers every request, pipelined or not, and never closes a
    /// connection for pipelining (PROTOCOL.md).
    pub fn dropped(
        &mut self,
        now_ms: u64,
        client: usize,
        unanswered: usize,
        noticed: bool,
        faulted: bool,
    ) {
        self.hostile_dropped(now_ms, client, faulted);
        self.pump_command_dropped(client);
        let silent = unanswered > 0 && !noticed && !faulted;
        self.expect(!silent, now_ms, "every request is answered before the server closes", || {
            format!("client {client}'s command connection was closed with {unanswered} requests unanswered and no notice")
        });
    }

    /// A client lost its command connection `conn` (with any request on it).
    pub fn disconnected(&mut self, now_ms: u64, client: usize, conn: ConnNo) {
        self.tickets_sent(client, None);
        self.bare_sent(client, BareSent::End);
        let state = self.client(client);
        state.session = Some(Session::Out);
        let pending = std::mem::take(&mut state.pending);
        // The server may still carry out what it read before its end of `conn` goes.
        let conn = Some(conn).filter(|conn| self.server_conns.contains(conn));
        for pending in &pending {
            self.check_ended(now_ms, client, pending);
            self.early_answered(now_ms, client, pending, true);
            let mutation = matches!(pending.op, Op::Register { .. } | Op::Delete { .. });
            match conn {
                Some(conn) if mutation => {
                    self.lost_mutations.entry(conn).or_default().push(pending.clone())
                }
                _ => self.end_request(now_ms, pending, true),
            }
            // A lost password check may have failed before its connection went (the server
            // settles it when its hash job ends, and releases it only if the connection went
            // first): the address's throttle may count it (swarm seed 4656; small
            // swarm seed 2757).
            if matches!(pending.op, Op::Login { .. } | Op::Delete { .. }) {
                self.client(client).failures_ms.push(now_ms);
            }
        }
    }

    /// Bookkeeping when a request ends (answered, or lost when `lost`).
    fn end_request(&mut self, now_ms: u64, pending: &Pending, lost: bool) {
        let target = pending.target;
        let mutation = matches!(pending.op, Op::Register { .. } | Op::Delete { .. });
        if let (true, Some(k)) = (mutation, target) {
            let state = self.name(k);
            state.epoch += 1;
            state.mutations_in_flight = state.mutations_in_flight.saturating_sub(1);
            if lost {
                state.exists = Known::Unknown;
            }
            if let Some(d) =
                state.deletes.iter_mut().find(|d| d.0 == pending.sent_ms && d.1 == u64::MAX)
            {
                d.1 = now_ms;
            }
        }
        let login = matches!(pending.op, Op::Register { .. } | Op::Login { .. });
        if let (true, Some(k)) = (login, target) {
            let state = self.name(k);
            state.logins_in_flight = state.logins_in_flight.saturating_sub(1);
        }
        let may_have_failed = matches!(pending.op, Op::Login { .. } | Op::Delete { .. });
        if let (true, true, Some(k)) = (lost, may_have_failed, target) {
            self.name(k).failures_ms.push(now_ms);
        }
    }

    /// The server crashed: every request in flight may or may not have happened.
    pub fn crashed(&mut self, now_ms: u64) {
        // No connection outlives the server: what was lost with one ends now.
        self.server_conns.clear();
        for pending in std::mem::take(&mut self.lost_mutations).into_values().flatten() {
            self.end_request(now_ms, &pending, true);
        }
        self.crashes += 1;
        self.pump_crashed();
        // The throttle lives in memory: a restart forgets every count, by design.
        self.storm_verified = 0;
        self.storm_first_verified_ms = None;
        self.storm_crashed();
        for (_, state) in &mut self.names {
            // An acknowledged registration was durable: with nothing of the name in flight,
            // the account survives the crash spelled as it was registered, and recovery (from
            // the log or from a snapshot) must keep that spelling.
            let spelled = state.mutations_in_flight == 0
                && state.spelling.as_ref().is_some_and(|(at, _)| *at == state.epoch);
            state.epoch += 1;
            if let (true, Some((at, _))) = (spelled, &mut state.spelling) {
                *at = state.epoch;
            }
            if state.mutations_in_flight > 0 {
                state.exists = Known::Unknown;
            }
        }
    }

    /// Whether the reply to `pending` must match the oracle's state at send: it was known, no
    /// other mutation of the name overlapped the request, and no crash happened meanwhile.
    fn strict(&mut self, pending: &Pending, k: NameId) -> bool {
        let crashes = self.crashes;
        let state = self.name(k);
        pending.exists_at_send != Known::Unknown
            && pending.clean_epoch == Some(state.epoch)
            && pending.crashes == crashes
    }

    /// Learns that `k` exists (or not) from the reply to `pending`, unless another mutation of
    /// it overlapped the request or is still in flight, or a crash intervened: then the order
    /// is unknown, and so is the state.
    fn learn(&mut self, pending: &Pending, k: NameId, exists: bool, own_mutation: u32) {
        let crashes = self.crashes;
        let state = self.name(k);
        let quiet = pending.clean_epoch == Some(state.epoch) && pending.crashes == crashes;
        state.exists = match (quiet && state.mutations_in_flight == own_mutation, exists) {
            (false, _) => Known::Unknown,
            (true, true) => Known::Yes,
            (true, false) => Known::No,
        };
    }

    fn recently_failed(&mut self, client: usize, p: &Pending) -> bool {
        let k = p.target;
        let window = self.throttle_window_ms;
        // The server decided when the request arrived, at or after it was sent: a failure
        // within a window of the send may still have counted (seed 2913).
        let recent = |v: &Vec<u64>| v.iter().any(|&t| t + window >= p.sent_ms);
        let by_client = recent(&self.client(client).failures_ms);
        // Not failures on the name from other addresses: the throttle slows the attacker's
        // address without locking the owner out from elsewhere (PROTOCOL.md). It counts per
        // address too, and an attempt from the moment it starts.
        let host = self.client(client).host;
        let by_host = self.clients.iter().any(|c| c.host == host && recent(&c.failures_ms));
        let in_flight = k.is_some_and(|k| self.name(k).logins_in_flight > 1);
        // A check in flight from the same address holds a free attempt until it ends.
        let is_check = |op: &Op| matches!(op, Op::Login { .. } | Op::Delete { .. });
        let host_in_flight = self.clients.iter().enumerate().any(|(i, c)| {
            c.host == host
                && (c.check_ended_ms >= p.sent_ms
                    || c.pending.iter().skip(usize::from(i == client)).any(|q| is_check(&q.op)))
        });
        let announced =
            self.clients.iter().any(|c| c.host == host && c.throttled_until_ms >= p.sent_ms);
        by_client
            || by_host
            || announced
            || in_flight
            || host_in_flight
            || self.storm.contains(&client)
    }

    /// A registration of `client` sent at `sent_ms` succeeded at `now_ms`. Every success from
    /// its address sent after `now_ms - window` was counted by the server within one window
    /// (between its send and now), so there may be no more of them than the limit.
    fn registrations_within_limit(
        &mut self,
        now_ms: u64,
        client: usize,
        sent_ms: u64,
        what: impl FnOnce() -> String,
    ) {
        let crashes = self.crashes;
        self.client(client).registered_ms.push((sent_ms, crashes));
        let Some(limits) = self.limits else { return };
        let host = self.client(client).host;
        let since_ms = now_ms.saturating_sub(limits.registration_window_ms);
        let within: usize = self
            .clients
            .iter()
            .filter(|c| c.host == host)
            .map(|c| c.registered_ms.iter().filter(|&&(t, n)| t > since_ms && n == crashes).count())
            .sum();
        let invariant = "registrations per address are limited";
        self.expect(within <= limits.registrations_per_peer_max, now_ms, invariant, || {
            format!(
                "{} ({within} from its address within {} ms)",
                what(),
                limits.registration_window_ms
            )
        });
    }

    /// `client` connects from `host` (clients may share one).
    pub fn set_host(&mut self, client: usize, host: u128) {
        self.client(client).host = host;
    }

    fn record_failure(&mut self, now_ms: u64, client: usize, k: Option<NameId>) {
        self.client(client).failures_ms.push(now_ms);
        if let Some(k) = k {
            self.name(k).failures_ms.push(now_ms);
        }
    }

    /// A client received the reply `body` to its pending request. `account` is the session of
    /// its command connection when the server released the reply.
    pub fn replied(&mut self, now_ms: u64, client: usize, body: &[u8]) {
        let Some(mut pending) = self.client(client).pending.pop_front() else {
            return self.fail(
                now_ms,
                "one reply per request",
                format!(
                    "client {client} got a reply it did not ask for: {:?}",
                    String::from_utf8_lossy(body)
                ),
            );
        };
        pending.reply_ms = now_ms;
        // Replies are nearly always UTF-8: checked at once, lossily decoded only when not.
        let text = match std::str::from_utf8(body) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            Err(_) => String::from_utf8_lossy(body),
        };
        let (ok, text) = match text.split_once('\n') {
            Some(("0", t)) => (true, t),
            Some(("-1", t)) => (false, t),
            _ => {
                return self.fail(
                    now_ms,
                    "replies are well-formed",
                    format!("client {client}: {text:?}"),
                )
            }
        };
        if let Some(notice) = (!ok).then(|| Notice::of(text)).flatten() {
            self.hostile_noticed(client, notice);
            return self.notice(now_ms, client, pending, notice, text);
        }
        if !self.hostile_reply(now_ms, client, &pending, ok, text) {
            self.check_reply(now_ms, client, &pending, ok, text);
            self.session_ended(now_ms, &pending, ok, text);
            self.check_ended(now_ms, client, &pending);
            let outcome = self.counts_replied(now_ms, client, &pending, ok, text);
            self.password_check_answered(now_ms, client, &pending, outcome);
        }
        let needs_login =
            matches!(pending.op, Op::Send { .. } | Op::List { .. } | Op::Relay { .. });
        if needs_login && text != NEEDS_LOGIN {
            self.ticket_session_lived(now_ms, client, &pending);
            self.bare_session_lived(now_ms, client, pending.sent_ms);
        }
        if matches!(pending.op, Op::Login { .. } | Op::Register { .. }) {
            let in_now = matches!(self.session(client), Session::In { .. });
            self.bare_login_answered(client, pending.sent_ms, ok && in_now);
            self.early_answered(now_ms, client, &pending, false);
        }
        self.end_request(now_ms, &pending, false);
    }

    /// A takeover or a deletion that succeeded ended every session of its name.
    fn session_ended(&mut self, now_ms: u64, pending: &Pending, ok: bool, text: &str) {
        let Some(key) = pending.target.filter(|_| ok) else { return };
        let what = match (&pending.op, text) {
            (Op::Login { .. }, LOGIN_OK) => "login",
            (Op::Register { .. }, REGISTER_OK) => "register",
            (Op::Delete { .. }, DELETE_OK) => "delete",
            _ => return,
        };
        self.pump_session_ended(now_ms, pending.sent_ms, key, what);
    }

    /// A failure frame that announces the close of the command connection came where the
    /// reply to `pending` was due: the request was not answered and may or may not have taken
    /// effect (a password job in flight is abandoned, a frame too large is never read).
    fn notice(&mut self, now_ms: u64, client: usize, pending: Pending, notice: Notice, text: &str) {
        self.coverage.count(notice.row());
        let what = || format!("client {client} sent `{}` and got the notice {text:?}", pending.op);
        self.expect(
            notice.ends_command(),
            now_ms,
            "command connections close only as PROTOCOL.md says",
            what,
        );
        // PROTOCOL.md: a client that sends faster than the server answers is read no further
        // until answered, and the server "never closes the connection for it".
        let invariant = "a client that sends without waiting is never closed for it";
        self.expect(notice != Notice::InboundFull, now_ms, invariant, what);
        // PROTOCOL.md's header: digits "padded with spaces ... accept surrounding spaces".
        let bad = notice == Notice::BadHeader && !self.wrote_bad_header(client);
        self.expect(!bad, now_ms, "a header PROTOCOL.md allows is read", what);
        if notice == Notice::LoginDeadline {
            // A session that is certainly live is logged in: no login deadline runs for it.
            let certainly_in = self.certainly_in(client);
            self.expect(!certainly_in, now_ms, "a logged-in session is served", what);
        }
        if let Some(msg) = pending.tag.and_then(|t| self.msgs.get_mut(&t)) {
            msg.refused = true;
        }
        self.check_ended(now_ms, client, &pending);
        self.early_answered(now_ms, client, &pending, true);
        self.end_request(now_ms, &pending, true);
        self.client(client).session = Some(Session::Out);
    }

    fn check_ended(&mut self, now_ms: u64, client: usize, pending: &Pending) {
        if matches!(pending.op, Op::Login { .. } | Op::Delete { .. }) {
            self.client(client).check_ended_ms = now_ms;
        }
        if matches!(pending.op, Op::Register { .. }) {
            let registers = &mut self.client(client).registers_ms;
            if let Some(r) = registers.iter_mut().find(|r| **r == (pending.sent_ms, u64::MAX)) {
                r.1 = now_ms;
            }
        }
    }

    /// Whether a refusal of the request `p` to `client` for the limit `refusal` fits the
    /// request and what the server can have seen.
    fn refusal_fits(&mut self, now_ms: u64, client: usize, p: &Pending, refusal: Refusal) -> bool {
        let limits = self.limits;
        match (refusal, &p.op) {
            (Refusal::QueueFull, Op::Send { .. }) => {
                // The recipient's queue holds at most the messages sent to its name and not
                // refused, so at least the bound of them were sent.
                let Some(limits) = limits else { return true };
                let to = p.target.expect(TARGETED);
                let sent = self
                    .msgs
                    .iter()
                    .filter(|(t, m)| Some(*t) != p.tag && m.to_key == to && !m.refused)
                    .filter(|(_, m)| m.sent_ms <= now_ms)
                    .count();
                sent >= limits.queue_len_max
            }
            (Refusal::StoreFull, Op::Send { text, .. }) => {
                // Decided between the send and now, when the disk held no more than its peak.
                let cost = text.len() as u64 + bounds::MESSAGE_OVERHEAD_BYTES;
                limits.is_none_or(|l| p.disk_peak.queued_bytes + cost > l.queued_bytes_max)
            }
            (Refusal::Throttled, Op::Login { .. } | Op::Delete { .. }) => {
                self.recently_failed(client, p)
            }
            (Refusal::RegistrationsLimited, Op::Register { .. }) => {
                // Registrations from this address within the window, besides this one, reach
                // the bound. The server counted each when it read it, between its send and its
                // end, and decided this one between its send and now: an earlier one counts if
                // it may have been read less than a window before this one (swarm seed 9522: a
                // registration sent 565 ms before, answered 84 ms after, in a 558 ms window).
                let Some(limits) = limits else { return true };
                let since_ms = p.sent_ms.saturating_sub(limits.registration_window_ms);
                let started = self.registers_from(client).filter(|(_, r)| r.1 >= since_ms).count();
                started > limits.registrations_per_peer_max
            }
            (Refusal::AccountsLimited, Op::Register { .. }) => {
                limits.is_none_or(|l| p.disk_peak.accounts >= l.accounts_max)
            }
            // PROTOCOL.md: patterns "have a length limit", a limit in bytes as the refusal
            // words it: a pattern exactly at it is within it.
            (Refusal::PatternTooLong, Op::List { pattern }) => {
                limits.is_none_or(|l| pattern.len() > l.list_pattern_len_max)
            }
            _ => false,
        }
    }

    fn check_reply(&mut self, now_ms: u64, client: usize, p: &Pending, ok: bool, text: &str) {
        let out = self.session(client) == Session::Out;
        let certainly_in = self.certainly_in(client);
        let what = || {
            format!(
                "client {client} sent `{}` at {} ms and got {}{text:?}",
                p.op,
                p.sent_ms,
                if ok { "0 " } else { "-1 " }
            )
        };
        let refusal = if ok { None } else { Refusal::of(text) };
        let throttled = refusal == Some(Refusal::Throttled);
        if let Some(refusal) = refusal {
            self.coverage.count(refusal.row());
            if refusal != Refusal::Throttled {
                let fits = self.refusal_fits(now_ms, client, p, refusal);
                self.expect(fits, now_ms, "a limit refuses only at its bound", what);
                if refusal == Refusal::RegistrationsLimited {
                    self.registration_wait_bounded(now_ms, client, p, text, what);
                }
                if let Some(msg) = p.tag.and_then(|t| self.msgs.get_mut(&t)) {
                    msg.refused = true;
                }
                // The request changed nothing, so the oracle learns nothing from it.
                return;
            }
        } else if !ok {
            let row = match text {
                LOGIN_FAILED => Some("refusal: login failed"),
                NAME_TAKEN => Some("refusal: name taken"),
                NEEDS_LOGIN => Some("refusal: needs login"),
                UNKNOWN_RECIPIENT => Some("refusal: unknown recipient"),
                DELETE_REFUSED => Some("refusal: delete refused"),
                _ => None,
            };
            if let Some(row) = row {
                self.coverage.count(row);
            }
        }
        if !matches!(p.op, Op::Help | Op::Login { .. } | Op::Register { .. })
            && text == NEEDS_LOGIN
            && !ok
        {
            self.expect(!certainly_in, now_ms, "a logged-in session is served", what);
            self.client(client).session = Some(Session::Out);
            return;
        }
        let needs_login = !matches!(p.op, Op::Help | Op::Login { .. } | Op::Register { .. });
        if needs_login && !throttled {
            self.expect(!out, now_ms, "no command succeeds without a login", what);
        }
        match &p.op {
            Op::Help => self.expect(ok && spec::is_command_list(text), now_ms, "help reply", what),
            Op::Register { password, name } => {
                let k = p.target.expect(TARGETED);
                let strict = self.strict(p, k);
                let exists = p.exists_at_send;
                if ok && text == REGISTER_OK {
                    let fits = spec::password_fits(password);
                    self.expect(fits, now_ms, "a password over its limit is refused", what);
                    let fits = spec::name_fits(name);
                    self.expect(fits, now_ms, "a name outside PROTOCOL.md's is refused", what);
                    self.expect(
                        !(strict && exists == Known::Yes),
                        now_ms,
                        "a taken name cannot be registered",
                        what,
                    );
                    self.learn(p, k, true, 1);
                    let state = self.name(k);
                    state.password = Some(password.clone());
                    // `end_request` bumps the epoch once more when this reply is done.
                    state.spelling =
                        (state.exists == Known::Yes).then(|| (state.epoch + 1, name.clone()));
                    self.logged_in(client, p, k, 1);
                    self.registrations_within_limit(now_ms, client, p.sent_ms, what);
                } else if !ok && text == NAME_TAKEN {
                    self.expect(
                        !(strict && exists == Known::No),
                        now_ms,
                        "a free name can be registered",
                        what,
                    );
                    self.learn(p, k, true, 1);
                } else if !ok && text.starts_with(INVALID_PASSWORD) {
                    // PROTOCOL.md: "Passwords: 1 to 128 bytes". The request changed nothing.
                    self.coverage.count("refusal: invalid password");
                    let fits = spec::password_fits(password);
                    self.expect(!fits, now_ms, "a limit refuses only at its bound", what);
                } else if !ok && text.starts_with(INVALID_NAME) {
                    // PROTOCOL.md's names. The request changed nothing.
                    self.coverage.count("refusal: invalid name");
                    let fits = spec::name_fits(name);
                    self.expect(!fits, now_ms, "a limit refuses only at its bound", what);
                } else {
                    self.fail(now_ms, "register reply", what());
                }
            }
            Op::Login { password, .. } => {
                let k = p.target.expect(TARGETED);
                let strict = self.strict(p, k);
                let exists = p.exists_at_send;
                let correct = self.name(k).password.as_ref().map(|pw| pw == password);
                if ok && text == LOGIN_OK {
                    self.expect(
                        correct != Some(false),
                        now_ms,
                        "a wrong password never logs in",
                        what,
                    );
                    self.expect(
                        !(strict && exists == Known::No),
                        now_ms,
                        "no login to a missing account",
                        what,
                    );
                    self.learn(p, k, true, 0);
                    self.logged_in(client, p, k, 0);
                } else if !ok && text == LOGIN_FAILED {
                    self.storm_account_guess(now_ms, client, k, p.sent_ms);
                    let existing = strict && exists == Known::Yes && correct == Some(true);
                    self.expect(!existing, now_ms, "the right password logs in", what);
                    self.storm_guess_verified(now_ms, client, p.sent_ms);
                    if correct == Some(true) {
                        self.learn(p, k, false, 0);
                    }
                    self.record_failure(now_ms, client, Some(k));
                } else if throttled {
                    self.throttled(now_ms, client, p, text, what);
                } else {
                    self.fail(now_ms, "login reply", what());
                }
            }
            Op::Send { .. } => {
                let k = p.target.expect(TARGETED);
                let strict = self.strict(p, k);
                let exists = p.exists_at_send;
                if ok && text == SEND_OK {
                    self.expect(
                        !(strict && exists == Known::No),
                        now_ms,
                        "no send to a missing account",
                        what,
                    );
                    self.learn(p, k, true, 0);
                    if let Some(msg) = p.tag.and_then(|t| self.msgs.get_mut(&t)) {
                        msg.acked = true;
                        msg.acked_ms = now_ms;
                    }
                } else if !ok && text == UNKNOWN_RECIPIENT {
                    self.expect(
                        !(strict && exists == Known::Yes),
                        now_ms,
                        "a send to an account is accepted",
                        what,
                    );
                    self.learn(p, k, false, 0);
                } else {
                    self.fail(now_ms, "send reply", what());
                }
            }
            Op::List { .. } => self.check_list(now_ms, p, ok, text, &what()),
            Op::Delete { password, .. } => {
                let k = p.target.expect(TARGETED);
                let session_key = match self.session(client) {
                    Session::In { key, .. } => Some(key),
                    Session::Out => None,
                };
                let correct = self.name(k).password.as_ref().map(|pw| pw == password);
                if ok && text == DELETE_OK {
                    // The server answers in order, so the session the client holds now is the
                    // one the request ran in: a deletion names that session's own account
                    // (checked first: another account's name comes with the wrong password).
                    let other = session_key.is_some_and(|own| own != k);
                    self.expect(!other, now_ms, "only the logged-in account can be deleted", what);
                    self.expect(
                        correct != Some(false),
                        now_ms,
                        "a wrong password never deletes",
                        what,
                    );
                    self.learn(p, k, false, 1);
                    self.name(k).session_epoch += 1;
                    self.client(client).session = Some(Session::Out);
                } else if !ok && text == DELETE_REFUSED {
                    let own = session_key == Some(k);
                    if session_key.is_some() && !own {
                        self.coverage.count("delete: another account refused");
                    }
                    let strict = self.strict(p, k);
                    let refused_wrongly = certainly_in && own && strict && correct == Some(true);
                    self.expect(!refused_wrongly, now_ms, "the owner can delete the account", what);
                    self.record_failure(now_ms, client, Some(k));
                } else if throttled {
                    self.throttled(now_ms, client, p, text, what);
                } else {
                    self.fail(now_ms, "delete reply", what());
                }
            }
            Op::Logout => {
                self.expect(ok && text == LOGOUT_OK, now_ms, "logout reply", what);
                self.client(client).session = Some(Session::Out);
            }
            Op::Relay { ticket: true } => {
                let well_formed =
                    ok && text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
                self.expect(well_formed, now_ms, "ticket reply", what);
                self.ticket_granted(client, p);
            }
            other => self.fail(now_ms, "requests", format!("client {client}: {other} got a reply")),
        }
    }

    fn check_list(&mut self, now_ms: u64, p: &Pending, ok: bool, text: &str, what: &str) {
        if !ok {
            return self.fail(now_ms, "list reply", what.to_owned());
        }
        let Op::List { pattern } = &p.op else { return };
        let (names, partial) = spec::list_names(text);
        if partial {
            self.coverage.count("list: truncated");
        }
        let listed: BTreeMap<String, &str> = names.into_iter().map(|n| (key(n), n)).collect();
        // Each name counts with the space after it (`core::Config::list_reply_bytes_max`).
        let shown_bytes: usize = listed.values().map(|name| name.len() + 1).sum();
        self.check_list_bounds(now_ms, listed.len(), shown_bytes, what);
        if let Some(left_out) = spec::list_left_out(text) {
            self.check_list_cut(now_ms, p, &listed, shown_bytes, left_out, what);
        }
        if let Some(scanned) = spec::list_stopped_after(text) {
            self.check_list_stop(now_ms, p, scanned, what);
        }
        // Whoever holds them, names shown must match: a matcher too generous (two segments
        // of the pattern on one letter) shows names the pattern does not ask for.
        let stray = listed.values().find(|name| !spec::pattern_matches(pattern, name));
        self.expect(stray.is_none(), now_ms, "list shows only names its pattern matches", || {
            format!("{what}: {} does not match {pattern:?}", stray.copied().unwrap_or_default())
        });
        for &(id, exists, epoch) in &p.list_known {
            let quiet = self.list_quiet(p, id, epoch);
            let (k, state) = &self.names[id.0 as usize];
            if !quiet || !spec::pattern_matches(pattern, k) {
                continue;
            }
            let shown = listed.get(k).copied();
            // A reply that says it left names out may leave out any, never show a missing one.
            if partial && shown.is_none() {
                continue;
            }
            let spelling = state.spelling.clone();
            let k = k.clone();
            if let (Some(shown), Some((at_epoch, spelled))) = (shown, spelling) {
                if at_epoch == epoch {
                    self.coverage.count("list: spelling checked");
                }
                self.expect(
                    at_epoch != epoch || shown == spelled,
                    now_ms,
                    "list shows names as they were registered",
                    || format!("{what}: {shown} was registered as {spelled}"),
                );
            }
            let shown = shown.is_some();
            self.expect(shown == exists, now_ms, "list shows exactly the accounts", || {
                format!("{what}: {k} exists={exists} but listed={shown}")
            });
        }
    }

    /// A `list` reply that left `left_out` matching names out: it may be cut only where the
    /// next name would pass its bound on names or on bytes of names (one byte and a space
    /// each). When the oracle knows every name left out exists (nothing of it changed since
    /// the request), any of them may be the next: if each would fit, the cut was early.
    fn check_list_cut(
        &mut self,
        now_ms: u64,
        p: &Pending,
        listed: &BTreeMap<String, &str>,
        shown_bytes: usize,
        left_out: usize,
        what: &str,
    ) {
        let (Some(limits), Op::List { pattern }) = (self.limits, &p.op) else { return };
        let left: Vec<usize> = (p.list_known.iter())
            .filter(|&&(id, exists, epoch)| {
                let k = &self.names[id.0 as usize].0;
                let quiet = self.list_quiet(p, id, epoch);
                quiet && exists && spec::pattern_matches(pattern, k) && !listed.contains_key(k)
            })
            .map(|&(id, _, _)| self.names[id.0 as usize].0.len())
            .collect();
        if left.len() != left_out || listed.len() >= limits.list_len_max {
            return;
        }
        let fits = |len: &usize| {
            let with_space = len + 1;
            shown_bytes + with_space <= limits.list_reply_bytes_max
        };
        self.coverage.count("list: cut checked");
        self.expect(!left.iter().all(fits), now_ms, "a list is cut only at its bounds", || {
            let max = limits.list_reply_bytes_max;
            format!("{what}: {shown_bytes} bytes shown, {left_out} left out, each fits {max}")
        });
    }

    /// Whether the name `id`, known at `epoch` when the list `p` was sent, is unchanged since
    /// (no mutation of it and no crash): the reply must then show exactly what was known.
    fn list_quiet(&self, p: &Pending, id: NameId, epoch: u64) -> bool {
        self.names[id.0 as usize].1.epoch == epoch && p.crashes == self.crashes
    }

    /// A `list` reply shows `len` names in `shown_bytes` bytes (each with its space): at most
    /// `list_len_max` and `list_reply_bytes_max` (`core::Config`).
    fn check_list_bounds(&mut self, now_ms: u64, len: usize, shown_bytes: usize, what: &str) {
        let Some(limits) = self.limits else { return };
        let (len_max, bytes_max) = (limits.list_len_max, limits.list_reply_bytes_max);
        let within = len <= len_max && shown_bytes <= bytes_max;
        self.expect(within, now_ms, "a list reply stays within its bounds", || {
            format!("{what}: {len} names in {shown_bytes} bytes (bounds {len_max} names, {bytes_max} bytes)")
        });
    }

    /// A `list` reply whose scan stopped after `scanned` names. A list examines the names that
    /// start with the pattern's leading letters (up to its first `*` or `?`), at most
    /// `list_scan_max` of them (`core::Config`), so it stops at that bound exactly, and only
    /// with more such names left: which the oracle can count when it knows every name (none
    /// changed while the request was in flight).
    fn check_list_stop(&mut self, now_ms: u64, p: &Pending, scanned: usize, what: &str) {
        let (Some(limits), Op::List { pattern }) = (self.limits, &p.op) else { return };
        let max = limits.list_scan_max;
        self.coverage.count("list: scan stop checked");
        let invariant = "a list's scan stops only at its bound";
        self.expect(scanned == max, now_ms, invariant, || {
            format!("{what}: it stopped after {scanned} names, its bound is {max}")
        });
        let all_known = p.list_known.len() == self.ids.len()
            && p.list_known.iter().all(|&(id, _, epoch)| self.list_quiet(p, id, epoch));
        if !all_known {
            return;
        }
        let prefix = key(pattern.split(['*', '?']).next().unwrap_or_default());
        let examined = (p.list_known.iter())
            .filter(|&&(id, exists, _)| exists && self.names[id.0 as usize].0.starts_with(&prefix))
            .count();
        self.expect(examined > scanned, now_ms, invariant, || {
            format!("{what}: it stopped after {scanned} names, but only {examined} start with {prefix:?}")
        });
    }

    /// `client` logged in as `k` by its pending login or register (still counted in flight).
    fn logged_in(&mut self, client: usize, p: &Pending, key: NameId, own_mutation: u32) {
        let account = self.account_between(key, p.sent_ms, p.reply_ms);
        let state = self.name(key);
        let alone = p.session_alone == Some(state.session_epoch)
            && state.mutations_in_flight == own_mutation;
        let certain = alone.then_some(state.session_epoch);
        let now_ms = p.reply_ms;
        self.client(client).sessions_held.push((now_ms, key, account));
        self.client(client).session = Some(Session::In { key, account, certain_epoch: certain });
    }

    // ---- relays ------------------------------------------------------------------------------

    /// A client opened relay `conn`; pushes on it belong to the client's current session.
    ///
    /// The server binds a relay to a session of the named user from the same address: that may
    /// be the client's current session, one it obtains while the handshake travels, or one
    /// whose connection it closed moments ago (the close is still in flight). So a relay may
    /// receive messages for any account its client held from shortly before the relay opened
    /// on, and for no other.
    pub fn relay_opened(&mut self, now_ms: u64, client: usize, conn: ConnNo) {
        self.bare_relay_opened(client, conn);
        let pump = pump::Attachment::new();
        let relay =
            RelayState { client, opened_ms: now_ms, senders: Vec::new(), pump, reset: false };
        self.relays.insert(conn, relay);
    }

    /// A message was pushed and received on relay `conn`.
    pub fn pushed(&mut self, now_ms: u64, conn: ConnNo, sender: &str, text: &str) {
        self.delivered += 1;
        if self.hostile_pushed(now_ms, conn, text) {
            return;
        }
        let Some((tag, msg)) = tag_key(text).and_then(|t| Some((t, self.msgs.get(&t)?))) else {
            // A text cut short (its tag too, maybe) is a sent text damaged, not an invented one.
            let cut = self
                .msgs
                .iter()
                .any(|(_, m)| m.text.len() > text.len() && m.text.starts_with(text));
            let invariant = if cut {
                "delivered text is the text sent"
            } else {
                "nothing is delivered that was not sent"
            };
            return self.fail(now_ms, invariant, format!("relay {conn} got {sender}:{text:?}"));
        };
        let Some(relay) = self.relays.get(&conn) else {
            return self.fail(
                now_ms,
                "pushes only on relays",
                format!("connection {conn} got {text:?}"),
            );
        };
        let client = relay.client;
        let held = self.held_for(relay);
        let user_held = held.iter().any(|(_, k, _)| *k == msg.to_key);
        let account_held =
            held.iter().any(|&(_, k, a)| k == msg.to_key && early::account_fits(msg.to_account, a));
        let text_kept = msg.text == text;
        let acked = msg.acked;
        let to_key = msg.to_key;
        let sender_shown =
            msg.from_key.is_some_and(|k| self.key_of(k).eq_ignore_ascii_case(sender));
        let (from_client, seq) = (msg.from_client, msg.seq);
        let early = !user_held && self.early_push(client, conn, to_key, tag);
        let checks = [
            (text_kept, "delivered text is the text sent"),
            (user_held || early, "nothing is delivered to another user"),
            (account_held || early, "nothing is delivered to another account (a reused name)"),
        ];
        for (ok, invariant) in checks {
            self.checks += 1;
            if !ok {
                let msg = self.msgs.get(&tag).expect("looked up above");
                let held: Vec<_> = self.clients[client]
                    .sessions_held
                    .iter()
                    .map(|&(at, k, account)| (at, self.key_of(k), account))
                    .collect();
                let detail = format!(
                    "relay {conn} of client {client} got {sender}:{text:?} sent to {} ({:?}); \
                     the client held {held:?}",
                    self.key_of(msg.to_key),
                    msg.to_account,
                );
                self.fail(now_ms, invariant, detail);
            }
        }
        let what = || format!("relay {conn} of client {client} got {sender}:{text:?}");
        if acked {
            self.expect(sender_shown, now_ms, "the sender is shown", what);
        }
        let relay = self.relays.get_mut(&conn).expect("looked up above");
        if relay.senders.len() <= from_client {
            relay.senders.resize_with(from_client + 1, Default::default);
        }
        let (seen, last_seq) = &mut relay.senders[from_client];
        let fresh = match seen.last() {
            Some(&newest) if newest >= seq => match seen.binary_search(&seq) {
                Ok(_) => false,
                Err(at) => {
                    seen.insert(at, seq);
                    true
                }
            },
            _ => {
                seen.push(seq);
                true
            }
        };
        let last = std::mem::replace(last_seq, seq);
        self.expect(fresh, now_ms, "nothing is delivered twice to one relay", what);
        self.expect(seq > last || !fresh, now_ms, "per-sender order is kept", || {
            format!("{}, after #{from_client}.{last}", what())
        });
        if let Some(m) = self.msgs.get_mut(&tag) {
            self.first_delivered += u64::from(!m.delivered);
            m.delivered = true;
        }
        if user_held {
            self.pump_pushed(now_ms, conn, to_key);
        }
    }

    /// The sessions the client of `relay` obtained since its handshake could have bound, and
    /// the one obtained last before (maybe still live).
    fn held_for(&self, relay: &RelayState) -> &[(u64, NameId, Option<AccountId>)] {
        let since_ms = relay.opened_ms.saturating_sub(self.bare_relay_window_ms);
        let all = &self.clients[relay.client].sessions_held;
        let first = all.iter().rposition(|(at, _, _)| *at < since_ms).unwrap_or(0);
        &all[first..]
    }

    /// The server wrote a push for the original client (no acknowledgements): by the protocol
    /// that is delivery, even if the connection dies before the bytes arrive.
    pub fn written_plain(&mut self, now_ms: u64, conn: ConnNo, tag: Tag) {
        let crashes = self.crashes;
        let Some(m) = self.msgs.get_mut(&tag) else { return };
        self.first_delivered += u64::from(!m.delivered);
        m.delivered = true;
        // A crash may forget the record of a write it followed: writing again then is the
        // price of at-least-once without acknowledgements, and allowed.
        let first = m.written_plain.replace(crashes).is_none_or(|before| before < crashes);
        let to_key = m.to_key;
        // Written to a relay whose client never held the recipient's name: misdirected, which
        // is named here, before it could read as a second delivery.
        if let Some(relay) = self.relays.get(&conn) {
            let user_held = self.held_for(relay).iter().any(|(_, k, _)| *k == to_key);
            let client = relay.client;
            let early = !user_held && self.early_push(client, conn, to_key, tag);
            self.expect(user_held || early, now_ms, "nothing is delivered to another user", || {
                format!("#{}.{} was written to the relay of client {client}", tag.0, tag.1)
            });
        }
        self.expect(first, now_ms, "an original client's message is written once", || {
            format!("#{}.{} was written to an original client's relay again", tag.0, tag.1)
        });
    }

    // ---- liveness ----------------------------------------------------------------------------

    fn owed(&self) -> impl Iterator<Item = (Tag, &MsgInfo)> {
        self.msgs.iter().filter(|(_, m)| m.acked && !m.delivered).filter(|(_, m)| {
            let to = &self.names[m.to_key.0 as usize].1;
            let deleted = to.deletes.iter().any(|d| d.1 >= m.sent_ms);
            !deleted
        })
    }

    /// Names with acknowledged messages still to deliver, with the password that logs in.
    pub fn owed_names(&self) -> Vec<(String, Option<String>)> {
        let ids: BTreeSet<NameId> = self.owed().map(|(_, m)| m.to_key).collect();
        let mut owed: Vec<_> = ids.into_iter().map(|id| &self.names[id.0 as usize]).collect();
        owed.sort_by(|a, b| a.0.cmp(&b.0));
        owed.into_iter().map(|(k, state)| (k.clone(), state.password.clone())).collect()
    }

    /// `client` is one of the login storm's; at most `verified_max` of the storm's guesses
    /// may be checked against the password.
    pub fn storm_client(&mut self, client: usize, verified_max: usize) {
        self.storm.insert(client);
        self.storm_verified_max = verified_max;
    }

    /// A storm client's wrong-password login, sent at `sent_ms`, was verified (not throttled).
    /// The server verified each guess between its send and its reply, so the span the
    /// throttle's delays must fit in runs from the earliest send of a verified guess to now
    /// (swarm seed 3871: the first guess verified at once and answered 47 ms later over a
    /// slow link, the second verified one backoff period later and answered first).
    fn storm_guess_verified(&mut self, now_ms: u64, client: usize, sent_ms: u64) {
        if !self.storm.contains(&client) {
            return;
        }
        self.storm_verified += 1;
        let first_ms = self.storm_first_verified_ms.map_or(sent_ms, |ms| ms.min(sent_ms));
        self.storm_first_verified_ms = Some(first_ms);
        // The free attempts, then at most one more per backoff period (the delays double, so
        // this is generous): guesses held up by the network past the first delay are fair.
        // The address's key is forgotten a window after its last failure, free checks and
        // all: the storm's sprayer guesses again seconds later.
        let backoff_ms = self.limits.map_or(u64::MAX, |l| l.login_backoff_base_ms.max(1));
        let span_ms = now_ms - first_ms;
        let later = usize::try_from(span_ms / backoff_ms).unwrap_or(usize::MAX);
        let free = self.storm_verified_max;
        let forgetting =
            hostile::checks_allowed(free, backoff_ms, self.throttle_window_ms, span_ms);
        let max = free.saturating_add(later).max(forgetting);
        let n = self.storm_verified;
        self.expect(n <= max, now_ms, "the throttle bounds password guesses", || {
            format!("{n} wrong-password logins from one address were verified within {span_ms} ms; the throttle allows {max}")
        });
    }

    /// The faults are healed: from now on every request must be answered.
    pub fn liveness_began(&mut self, now_ms: u64) {
        self.liveness_began_ms = Some(now_ms);
    }

    /// A request sent before the liveness phase and still unanswered at its end, on a
    /// connection no fault cut, was never answered: the server is stuck.
    fn check_answered(&mut self, now_ms: u64) {
        let Some(began_ms) = self.liveness_began_ms else { return };
        let stuck = self.clients.iter().enumerate().find_map(|(client, state)| {
            let p = state.pending.front().filter(|p| p.sent_ms < began_ms)?;
            Some(format!("client {client}'s `{}` sent at {} ms", p.op, p.sent_ms))
        });
        self.expect(stuck.is_none(), now_ms, "every request is answered", || {
            format!("{} has no reply at the end of the liveness phase", stuck.unwrap_or_default())
        });
    }

    /// How many requests are still waiting for their replies.
    pub fn unanswered_len(&self) -> usize {
        self.clients.iter().map(|state| state.pending.len()).sum()
    }

    /// How many acknowledged messages are still owed.
    pub fn owed_len(&self) -> usize {
        self.owed().count()
    }

    /// How far delivery has come: acknowledged messages still owed, and messages delivered for
    /// the first time (acknowledged or not: a backlog whose replies its sender never read
    /// still stands in front of what is owed). Both move only finitely often.
    pub fn delivery_progress(&self) -> (usize, u64) {
        (self.owed_len(), self.first_delivered)
    }

    /// The end of the liveness phase: every acknowledged message must have arrived.
    pub fn finish(&mut self, now_ms: u64) {
        self.check_answered(now_ms);
        self.hostile_finish(now_ms);
        let lost: Vec<String> = self
            .owed()
            .take(5)
            .map(|((c, k), m)| {
                format!("#{c}.{k} to {} (sent at {} ms)", self.key_of(m.to_key), m.sent_ms)
            })
            .collect();
        self.checks += 1;
        if !lost.is_empty() {
            let n = self.owed_len();
            self.fail(
                now_ms,
                "no acknowledged message is lost",
                format!("{n} acknowledged messages never arrived, e.g. {}", lost.join(", ")),
            );
        }
        self.deadlines_finish(now_ms);
    }

    /// The world has settled after the liveness phase (`quiet`: nothing is in flight), or
    /// stopped waiting for that: what must have reached clients by now is judged.
    pub fn settled(&mut self, now_ms: u64, quiet: bool) {
        self.coverage.count(if quiet { "settle: quiet" } else { "settle: still busy" });
        self.pump_finish(quiet.then_some(now_ms));
        if quiet {
            self.pump_settled(now_ms);
        }
    }
}

impl Checker {
    /// Records a violation found outside the checker (a failed recovery).
    pub fn fail_with(&mut self, at_ms: u64, invariant: &'static str, detail: String) {
        self.fail(at_ms, invariant, detail);
    }

    /// Judges a step of a graceful stop (`Down::Stop`), which the world watched: `ok` or a
    /// violation of `invariant`.
    pub fn judge_stop(
        &mut self,
        now_ms: u64,
        ok: bool,
        invariant: &'static str,
        detail: impl FnOnce() -> String,
    ) {
        self.expect(ok, now_ms, invariant, detail);
    }

    /// The server was stopped gracefully: its log writer committed everything it was given,
    /// so recovery must find every record the server wrote.
    pub fn stopped(&mut self) {
        self.stopped_lsn = Some(self.written_lsn);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::scenario::Hostile;

    /// Client 0 registers as alice and opens relay 7; client 1 registers as bob and sends alice
    /// two acknowledged messages, `#1.1` and `#1.2`.
    fn alice_owed_two_messages() -> Checker {
        let mut checker = Checker::new(1_000, 1_000);
        for (client, name) in [(0, "alice"), (1, "bob")] {
            checker.connected(client);
            checker.sent(0, client, Op::Register { name: name.into(), password: "pw".into() });
            checker.persisted_register(1, client as u64 + 1, name, AccountId(client as u64 + 1));
            checker.replied(1, client, format!("0\n{REGISTER_OK}").as_bytes());
        }
        checker.relay_opened(2, 0, ConnNo(7));
        for seq in 1..=2 {
            let text = format!("#1.{seq} hi");
            checker.sent(3, 1, Op::Send { to: "alice".into(), text: text.clone() });
            checker.persisted_message(&text, AccountId(1));
            checker.replied(4, 1, format!("0\n{SEND_OK}").as_bytes());
        }
        assert_eq!(checker.violation(), None);
        checker
    }

    const LIMITS: Limits = Limits {
        queue_len_max: 3,
        registrations_per_peer_max: 1,
        registration_window_ms: 1_000,
        login_deadline_ms: 500,
        login_backoff_base_ms: 100,
        push_window_len: 256,
        accounts_max: 100,
        list_pattern_len_max: 64,
        list_len_max: 1_000,
        list_reply_bytes_max: 16 * 1024,
        pipeline_len_max: 64,
        ticket_ttl_ms: 30_000,
        tickets_per_session_max: 4,
        list_scan_max: 2_000,
        queued_bytes_max: 1 << 30,
        connections_max: 1_000,
        connections_per_peer_max: 1_000,
        login_failures_max: 5,
        login_failures_per_peer_max: 100,
    };

    /// Bob sends alice one more message, `#1.3`, and gets `reply`.
    fn third_send_gets(reply: &str) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.set_limits(Limits { queue_len_max: 2, ..LIMITS });
        checker.sent(5, 1, Op::Send { to: "alice".into(), text: "#1.3 hi".into() });
        checker.replied(6, 1, reply.as_bytes());
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_queue_is_full_only_at_its_bound() {
        let full = "-1\nalice's mailbox is full (2 messages waiting); try again later";
        assert_eq!(third_send_gets(full), None, "two sent, bound two: fair");
        let mut checker = alice_owed_two_messages();
        checker.set_limits(LIMITS);
        checker.sent(5, 1, Op::Send { to: "alice".into(), text: "#1.3 hi".into() });
        checker.replied(6, 1, full.as_bytes());
        let unfair = checker.violation().map(|v| v.invariant.sentence());
        assert_eq!(unfair, Some("a limit refuses only at its bound"), "two sent, bound three");
    }

    /// Client 2 sends a wrong-password login of alice at 10 ms (if `guess`) and loses its
    /// connection before the reply, reconnects, and is told at `retry_ms` that its login as
    /// bob is throttled.
    fn throttled_after_a_lost_check(guess: bool, retry_ms: u64) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.connected(2);
        if guess {
            checker.sent(10, 2, Op::Login { name: "alice".into(), password: "wrong".into() });
        }
        checker.disconnected(20, 2, ConnNo(7));
        checker.connected(2);
        checker.sent(retry_ms, 2, Op::Login { name: "bob".into(), password: "pw".into() });
        checker.replied(retry_ms + 1, 2, b"-1\nToo many failed attempts; try again in 1 s");
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_lost_password_check_may_have_counted_against_its_address() {
        assert_eq!(throttled_after_a_lost_check(true, 120), None);
        let unfair = Some("throttling follows failures");
        assert_eq!(throttled_after_a_lost_check(false, 120), unfair, "no check was sent");
        assert_eq!(throttled_after_a_lost_check(true, 2_000), unfair, "a window later");
    }

    /// With one free check per (name, address), client 2 logs in as alice with `passwords`
    /// in turn, 300 ms apart (longer than the 100 ms a failure beyond the free one waits),
    /// and its last login, at 1 s, is throttled.
    fn throttled_after(passwords: &[&str]) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.set_limits(Limits { login_failures_max: 1, ..LIMITS });
        checker.connected(2);
        for (i, password) in passwords.iter().enumerate() {
            let at_ms = 300 * i as u64 + 10;
            checker.sent(
                at_ms,
                2,
                Op::Login { name: "alice".into(), password: (*password).into() },
            );
            let reply = if *password == "pw" { LOGIN_OK } else { LOGIN_FAILED };
            let status = if *password == "pw" { 0 } else { -1 };
            checker.replied(at_ms + 1, 2, format!("{status}\n{reply}").as_bytes());
        }
        checker.sent(1_000, 2, Op::Login { name: "alice".into(), password: "wrong".into() });
        checker.replied(1_001, 2, b"-1\nToo many failed attempts; try again in 1 s");
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_right_password_ends_its_streak() {
        assert_eq!(throttled_after(&["wrong"]), None, "its one free check is spent");
        let unfair = Some("the throttle refuses only at its counts");
        assert_eq!(throttled_after(&["wrong", "pw"]), unfair, "the login ended the streak");
        let unfollowed = Some("throttling follows failures");
        assert_eq!(throttled_after(&[]), unfollowed, "nothing was spent, nothing failed");
    }

    /// Two storm clients guess alice's password, sent at `sent_ms` and answered "invalid" at
    /// `replies_ms`, from an address allowed one free check and then one per 10 ms.
    fn storm_guesses(sent_ms: [u64; 2], replies_ms: [u64; 2]) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.set_limits(Limits { login_backoff_base_ms: 10, ..LIMITS });
        for (i, client) in [2, 3].into_iter().enumerate() {
            checker.storm_client(client, 1);
            checker.connected(client);
            let guess = Op::Login { name: "alice".into(), password: "wrong".into() };
            checker.sent(sent_ms[i], client, guess);
        }
        for (i, client) in [2, 3].into_iter().enumerate() {
            checker.replied(replies_ms[i], client, format!("-1\n{LOGIN_FAILED}").as_bytes());
        }
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn storm_guesses_fit_the_backoff_from_the_first_send() {
        // Both may have been verified at 0 and 10 ms, and answered late.
        assert_eq!(storm_guesses([0, 0], [47, 55]), None);
        let unfair = Some("the throttle bounds password guesses");
        assert_eq!(storm_guesses([50, 50], [51, 52]), unfair, "two within 2 ms");
    }

    /// The storm's wrong-password guesses at one name, each from a client of its own, sent at
    /// `sent_ms` and answered `reply_ms` later (one free check, a base delay of 1 s): the
    /// invariant they break, if any.
    fn storm_guesses_at_alice(
        window_ms: u64,
        sent_ms: &[u64],
        reply_ms: u64,
    ) -> Option<&'static str> {
        let mut checker = Checker::new(window_ms, 1_000);
        checker.throttle_per_account(1, 1_000);
        for (client, &sent_ms) in (2..).zip(sent_ms) {
            checker.storm_client(client, usize::MAX);
            checker.connected(client);
            let guess = Op::Login { name: "alice".into(), password: "wrong".into() };
            checker.sent(sent_ms, client, guess);
            let failed = format!("-1\n{LOGIN_FAILED}");
            checker.replied(sent_ms + reply_ms, client, failed.as_bytes());
        }
        checker.violation().map(|v| v.invariant.sentence())
    }

    const PER_ACCOUNT: Option<&'static str> =
        Some("the throttle bounds password guesses per account");

    /// Two storm guesses 400 ms apart: with a failure window of 300 ms the delay is capped
    /// (and the key then forgotten), so the second guess is fair; with a window of 1 s it is
    /// not.
    #[test]
    fn storm_guesses_per_account_fit_a_delay_capped_by_the_failure_window() {
        assert_eq!(storm_guesses_at_alice(300, &[0, 400], 1), None);
        assert_eq!(storm_guesses_at_alice(1_000, &[0, 400], 1), PER_ACCOUNT);
    }

    /// A storm guess at 0 ms, then a wave after a quiet window of 1 s: its first guess is fair
    /// (the key may have been forgotten), a second one checked 10 ms later is not, though
    /// three guesses in 1.5 s fit the free checks of two windows and a delay.
    #[test]
    fn a_storm_wave_after_a_quiet_window_gets_its_free_checks_once() {
        assert_eq!(storm_guesses_at_alice(1_000, &[0, 1_500], 10), None);
        assert_eq!(storm_guesses_at_alice(1_000, &[0, 1_500, 1_510], 10), PER_ACCOUNT);
    }

    /// Client 0 writes `kind` on its relay 7, which then gets the failure frames `texts`.
    fn relay_limit_frame_gets(kind: Hostile, texts: &[&str]) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        let frame = Observation::RelayFrame { kind, conn: ConnNo(7) };
        checker.hostile(5, 0, frame, false);
        for text in texts {
            let failure = Observation::RelayFailure { conn: ConnNo(7), text: (*text).into() };
            checker.hostile(6, 0, failure, false);
        }
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn relay_frames_at_and_over_the_limit_are_judged_by_protocol_md() {
        let too_large = "frame of 11 bytes is larger than the limit of 10 bytes";
        let malformed = "malformed acknowledgement";
        let (at, over) = (Hostile::RelayAckAtLimit, Hostile::RelayAckOver);
        assert_eq!(relay_limit_frame_gets(at, &[malformed]), None);
        assert_eq!(relay_limit_frame_gets(over, &[too_large]), None);
        let within = Some("a frame within the limit is not refused as too large");
        assert_eq!(relay_limit_frame_gets(at, &[too_large]), within);
        let read_on = Some("an oversized frame is refused, then the connection closes");
        assert_eq!(relay_limit_frame_gets(over, &[malformed, malformed]), read_on);
        assert_eq!(relay_limit_frame_gets(over, &[too_large, malformed]), read_on);
    }

    /// Client 2 registers carol at 0 ms (answered at 100 ms) and dave at `second_ms`, which
    /// is refused by the limit of one registration per address per second.
    fn second_registration_refused_at(second_ms: u64) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.set_limits(LIMITS);
        checker.connected(2);
        checker.sent(0, 2, Op::Register { name: "carol".into(), password: "pw".into() });
        checker.persisted_register(90, 5, "carol", AccountId(5));
        checker.replied(100, 2, format!("0\n{REGISTER_OK}").as_bytes());
        checker.sent(second_ms, 2, Op::Register { name: "dave".into(), password: "pw".into() });
        let refused =
            "-1\nToo many registrations from your address (limit 1 per 1 s); try again in 1 s";
        checker.replied(second_ms + 10, 2, refused.as_bytes());
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_registration_counts_from_when_the_server_may_have_read_it() {
        assert_eq!(second_registration_refused_at(1_050), None, "read at 100 ms at the latest");
        let unfair = Some("a limit refuses only at its bound");
        assert_eq!(second_registration_refused_at(1_200), unfair);
    }

    #[test]
    fn a_refusal_must_fit_its_request() {
        let throttled_register = "-1\nToo many registrations from your address (limit 1 per 1 s)";
        assert_eq!(third_send_gets(throttled_register), Some("a limit refuses only at its bound"));
    }

    #[test]
    fn a_close_notice_ends_the_request_but_not_a_certain_session() {
        // A frame too large for the server: the request is lost, nothing is owed for it.
        let too_large = "-1\nframe of 99 bytes is larger than the limit of 40 bytes";
        assert_eq!(third_send_gets(too_large), None);
        // A login deadline for a session that is certainly logged in is a wrong close.
        let deadline = "-1\nLogin timed out: log in or register within 500 ms of connecting";
        assert_eq!(third_send_gets(deadline), Some("a logged-in session is served"));
    }

    #[test]
    fn a_session_belongs_to_the_account_the_disk_shows_for_its_name() {
        let mut checker = alice_owed_two_messages();
        // Alice's account 1 is deleted and the name registered again as account 9; a client
        // that logs in as alice now holds account 9, which is not owed alice's old messages.
        checker.persisted_delete(10, 8, AccountId(1));
        checker.persisted_register(11, 9, "Alice", AccountId(9));
        checker.connected(2);
        checker.sent(20, 2, Op::Login { name: "ALICE".into(), password: "pw".into() });
        checker.replied(21, 2, format!("0\n{LOGIN_OK}").as_bytes());
        checker.relay_opened(22, 2, ConnNo(8));
        checker.pushed(23, ConnNo(8), "bob", "#1.1 hi");
        let invariant = checker.violation().map(|v| v.invariant.sentence());
        assert_eq!(invariant, Some("nothing is delivered to another account (a reused name)"));
    }

    /// Client 2 opens relay 8 and logs in as alice with `password`; bob's `#1.1` reaches the
    /// relay before the login's `reply` (or before the connection is lost, when `None`).
    fn pushed_before_the_login_reply(password: &str, reply: Option<&str>) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.connected(2);
        checker.relay_opened(20, 2, ConnNo(8));
        checker.sent(21, 2, Op::Login { name: "alice".into(), password: password.into() });
        checker.pushed(23, ConnNo(8), "bob", "#1.1 hi");
        assert_eq!(checker.violation(), None, "the login decides");
        match reply {
            Some(reply) => checker.replied(24, 2, reply.as_bytes()),
            None => checker.disconnected(24, 2, ConnNo(7)),
        }
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_push_before_its_login_reply_is_judged_by_the_login() {
        let ok = format!("0\n{LOGIN_OK}");
        assert_eq!(pushed_before_the_login_reply("pw", Some(&ok)), None);
        assert_eq!(pushed_before_the_login_reply("wrong", None), None, "it may have logged in");
        let failed = format!("-1\n{LOGIN_FAILED}");
        let misdirected = Some("nothing is delivered to another user");
        assert_eq!(pushed_before_the_login_reply("wrong", Some(&failed)), misdirected);
    }

    /// A crash lost alice's deletion and a later registration whose lsn (so account id) the
    /// recovered log then gave to carol: a client that logs in as alice afterwards holds
    /// account 1 again, which is owed alice's messages (the lost records never happened).
    #[test]
    fn records_a_crash_lost_are_taken_back_from_the_disk_view() {
        let mut checker = alice_owed_two_messages();
        checker.persisted_delete(10, 8, AccountId(1));
        checker.persisted_register(11, 9, "Alice", AccountId(9));
        checker.crashed(15);
        checker.recovered(20, 7);
        checker.persisted_register(30, 9, "carol", AccountId(9));
        checker.connected(2);
        checker.sent(40, 2, Op::Login { name: "ALICE".into(), password: "pw".into() });
        checker.replied(41, 2, format!("0\n{LOGIN_OK}").as_bytes());
        checker.relay_opened(42, 2, ConnNo(8));
        checker.pushed(43, ConnNo(8), "bob", "#1.1 hi");
        assert_eq!(checker.violation(), None);
    }

    /// Alice's relay 7 is attached (it got `#1.1`), bob sends `#1.3` at `sent_ms`, acknowledged
    /// at `sent_ms + 1`, and the server closes the relay at 50 ms; `pushed` says whether `#1.3`
    /// arrived on it first, `takeover_ms` when someone else started to log in as alice.
    fn relay_closed_after_a_send(
        sent_ms: u64,
        pushed: bool,
        takeover_ms: Option<u64>,
    ) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.set_limits(LIMITS);
        checker.pushed(5, ConnNo(7), "bob", "#1.1 hi");
        checker.pushed(5, ConnNo(7), "bob", "#1.2 hi");
        if let Some(at_ms) = takeover_ms {
            checker.connected(2);
            checker.sent(at_ms, 2, Op::Login { name: "alice".into(), password: "pw".into() });
        }
        checker.sent(sent_ms, 1, Op::Send { to: "alice".into(), text: "#1.3 hi".into() });
        checker.persisted_message("#1.3 hi", AccountId(1));
        checker.replied(sent_ms + 1, 1, format!("0\n{SEND_OK}").as_bytes());
        if pushed {
            checker.pushed(sent_ms + 2, ConnNo(7), "bob", "#1.3 hi");
        }
        checker.relay_ended(50, ConnNo(7));
        // The rule alone: `#1.3` is owed, which `finish` would report first.
        checker.pump_finish(None);
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_message_accepted_while_the_relay_is_attached_must_reach_it_before_it_closes() {
        let rule = Some(pump::INVARIANT);
        assert_eq!(relay_closed_after_a_send(10, true, None), None);
        assert_eq!(relay_closed_after_a_send(10, false, None), rule);
        // A takeover sent before the acknowledgement may have closed the relay first.
        assert_eq!(relay_closed_after_a_send(10, false, Some(8)), None);
        assert_eq!(relay_closed_after_a_send(10, false, Some(20)), rule);
        // Acknowledged after the relay's end reached its client: it may have come later.
        assert_eq!(relay_closed_after_a_send(55, false, None), None);
    }

    #[test]
    fn a_recovery_short_of_what_the_store_reported_durable_is_a_violation() {
        let recovered_after_durable = |recovered: u64| {
            let mut checker = alice_owed_two_messages();
            checker.records_durable(5, 6);
            checker.crashed(15);
            checker.recovered(20, recovered);
            checker.violation().map(|v| v.invariant.sentence())
        };
        assert_eq!(recovered_after_durable(6), None);
        assert_eq!(recovered_after_durable(9), None, "unsynced records may survive too");
        let rule = Some("a crash keeps every record reported durable");
        assert_eq!(recovered_after_durable(5), rule);
    }

    /// Alice's relay 7 is attached (it got `#1.1` at 5 ms); client 2 logs in as alice at
    /// `login_ms` and is told it succeeded; the world settles at 100 ms, the relay's end of
    /// stream having reached alice's client at `ended_ms`, if it did.
    fn settled_after_a_takeover(login_ms: u64, ended_ms: Option<u64>) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        checker.set_limits(LIMITS);
        checker.pushed(5, ConnNo(7), "bob", "#1.1 hi");
        checker.pushed(5, ConnNo(7), "bob", "#1.2 hi");
        checker.connected(2);
        checker.sent(login_ms, 2, Op::Login { name: "ALICE".into(), password: "pw".into() });
        checker.replied(login_ms + 1, 2, format!("0\n{LOGIN_OK}").as_bytes());
        if let Some(at_ms) = ended_ms {
            checker.relay_ended(at_ms, ConnNo(7));
        }
        checker.settled(100, true);
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn a_relay_attached_before_a_takeover_is_closed_once_the_world_settles() {
        let rule = Some(pump::CLOSES);
        assert_eq!(settled_after_a_takeover(20, Some(30)), None);
        assert_eq!(settled_after_a_takeover(20, None), rule);
        // A login sent before the proof may have been the one the relay was bound after.
        assert_eq!(settled_after_a_takeover(4, None), None);
    }

    fn invariant_after(pushes: &[&str]) -> Option<&'static str> {
        let mut checker = alice_owed_two_messages();
        for text in pushes {
            checker.pushed(5, ConnNo(7), "bob", text);
        }
        checker.violation().map(|v| v.invariant.sentence())
    }

    #[test]
    fn pushes_in_order_pass_and_settle_what_is_owed() {
        assert_eq!(invariant_after(&["#1.1 hi", "#1.2 hi"]), None);
        let mut checker = alice_owed_two_messages();
        assert_eq!(checker.owed_len(), 2);
        checker.pushed(5, ConnNo(7), "bob", "#1.1 hi");
        assert_eq!(checker.owed_len(), 1);
    }

    #[test]
    fn a_message_pushed_twice_on_one_relay_is_caught() {
        let twice = invariant_after(&["#1.1 hi", "#1.2 hi", "#1.1 hi"]);
        assert_eq!(twice, Some("nothing is delivered twice to one relay"));
        let twice_in_a_row = invariant_after(&["#1.1 hi", "#1.1 hi"]);
        assert_eq!(twice_in_a_row, Some("nothing is delivered twice to one relay"));
    }

    #[test]
    fn tags_are_read_from_the_start_of_a_text() {
        assert_eq!(tag_key("#1.23 hi there"), Some((1, 23)));
        assert_eq!(tag_key("#0.7"), Some((0, 7)));
        let untagged = ["hi", "#5", "#5.", "#.3", "#5.3x", "#5.3.4", "#5 .3", " #5.3", "#-1.2"];
        for text in untagged {
            assert_eq!(tag_key(text), None, "{text:?}");
        }
        assert_eq!(tag_key("#1.999999999999999999"), Some((1, 999_999_999_999_999_999)));
        assert_eq!(tag_key("#1.9999999999999999999"), None, "more than 18 digits");
    }

    #[test]
    fn messages_out_of_order_are_caught() {
        assert_eq!(invariant_after(&["#1.2 hi", "#1.1 hi"]), Some("per-sender order is kept"));
    }

    #[test]
    fn a_changed_or_unsent_text_is_caught() {
        assert_eq!(invariant_after(&["#1.1 ho"]), Some("delivered text is the text sent"));
        assert_eq!(invariant_after(&["#1.9 hi"]), Some("nothing is delivered that was not sent"));
        for cut in ["#1.2 h", "#1.", "#", ""] {
            let invariant = invariant_after(&[cut]);
            assert_eq!(invariant, Some("delivered text is the text sent"), "{cut:?}");
        }
    }
}
