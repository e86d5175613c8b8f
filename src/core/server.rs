//! [`Server`]: state, input dispatch, the single `apply` path for records, recovery and
//! snapshots. Command handling lives in `command.rs`, relay handling in `relay.rs`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use rand_chacha::ChaCha20Rng;
use thiserror::Error;

use super::config::duration_text;
use super::names::name_key;
use super::outbox::Outbox;
#[cfg(any(test, feature = "planted"))]
use super::planted::Planted;
use super::shared::Shared;
use super::throttle::{Registrations, Reservation, Throttle};
use super::timers::{Timer, Timers};
use super::{
    AccountId, Channel, Config, ConnId, Event, Input, JobId, Lsn, MsgId, Output, PasswordOutcome,
    Peer, Record,
};
use crate::wire::{reply, Decoder};

/// The chat server as a pure state machine. See the [module docs](super) for the contract.
#[derive(Debug)]
pub struct Server {
    pub(super) config: Config,
    pub(super) rng: ChaCha20Rng,
    pub(super) now_ms: u64,
    /// Accounts and names change only through records, so they are shared (copy on write, see
    /// `Shared`) with copies of the server: a copy, which the model checker takes per
    /// transition, shares them, and a record copies only the table and the one account it
    /// changes. Shared with snapshots too ([`Server::snapshot_view`]).
    pub(super) accounts: Shared<BTreeMap<AccountId, Arc<Account>>>,
    /// Account by lower-cased name.
    pub(super) names: Shared<BTreeMap<String, AccountId>>,
    pub(super) queued_bytes: u64,
    // The tables below are shared with copies of the server until a copy changes one (see
    // `Shared`): a model checker's step changes one or two of them.
    pub(super) conns: Shared<BTreeMap<ConnId, Conn>>,
    pub(super) conns_per_peer: Shared<BTreeMap<Peer, usize>>,
    pub(super) sessions: Shared<BTreeMap<AccountId, Session>>,
    /// Per account, the original client's relays that are being closed and have not reported
    /// their end yet: what they hold may still be written, so nothing is pushed to a newer
    /// relay of the account until they are gone (it would be delivered twice).
    pub(super) closing_bare_relays: Shared<BTreeMap<AccountId, u32>>,
    pub(super) tickets: Shared<BTreeMap<String, Ticket>>,
    pub(super) jobs: Shared<BTreeMap<JobId, PendingJob>>,
    pub(super) next_job: u64,
    pub(super) throttle: Shared<Throttle>,
    pub(super) registrations: Shared<Registrations>,
    pub(super) timers: Timers,
    pub(super) outbox: Outbox,
    pub(super) last_lsn: Lsn,
    pub(super) durable_lsn: Lsn,
    /// Deleted accounts, kept only when a planted bug needs them.
    #[cfg(any(test, feature = "planted"))]
    pub(super) graveyard: Vec<(String, VecDeque<Queued>)>,
}

/// What a server holds beside its accounts ([`Server::held`]): sizes, nothing of the contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Open connections, and the addresses they are counted against.
    pub conns: usize,
    pub peers: usize,
    pub sessions: usize,
    /// Accounts whose original client's relays are closing and have not reported their end.
    pub closing_bare_relays: usize,
    pub tickets: usize,
    /// Password checks started and not finished.
    pub jobs: usize,
    /// No login failures remembered, per name or per address.
    pub throttle_empty: bool,
    /// No registrations remembered per address.
    pub registrations_empty: bool,
    /// The next timer armed, if any.
    pub timer_ms: Option<u64>,
}

/// A copy shares the accounts and the tables (copy on write); `clone_from` also keeps the
/// buffers of the copy it overwrites (the outbox's queues) and skips the tables it already
/// shares with the source. The model checker copies a server per transition over the last one.
impl Clone for Server {
    fn clone(&self) -> Self {
        Server {
            config: self.config.clone(),
            rng: self.rng.clone(),
            now_ms: self.now_ms,
            accounts: self.accounts.clone(),
            names: self.names.clone(),
            queued_bytes: self.queued_bytes,
            conns: self.conns.clone(),
            conns_per_peer: self.conns_per_peer.clone(),
            sessions: self.sessions.clone(),
            closing_bare_relays: self.closing_bare_relays.clone(),
            tickets: self.tickets.clone(),
            jobs: self.jobs.clone(),
            next_job: self.next_job,
            throttle: self.throttle.clone(),
            registrations: self.registrations.clone(),
            timers: self.timers.clone(),
            outbox: self.outbox.clone(),
            last_lsn: self.last_lsn,
            durable_lsn: self.durable_lsn,
            #[cfg(any(test, feature = "planted"))]
            graveyard: self.graveyard.clone(),
        }
    }

    fn clone_from(&mut self, source: &Self) {
        // Exhaustive, so that a field added later and not copied here does not compile.
        let Server {
            config,
            rng,
            now_ms,
            accounts,
            names,
            queued_bytes,
            conns,
            conns_per_peer,
            sessions,
            closing_bare_relays,
            tickets,
            jobs,
            next_job,
            throttle,
            registrations,
            timers,
            outbox,
            last_lsn,
            durable_lsn,
            #[cfg(any(test, feature = "planted"))]
            graveyard,
        } = self;
        config.clone_from(&source.config);
        rng.clone_from(&source.rng);
        *now_ms = source.now_ms;
        accounts.clone_from(&source.accounts);
        names.clone_from(&source.names);
        *queued_bytes = source.queued_bytes;
        conns.clone_from(&source.conns);
        conns_per_peer.clone_from(&source.conns_per_peer);
        sessions.clone_from(&source.sessions);
        closing_bare_relays.clone_from(&source.closing_bare_relays);
        tickets.clone_from(&source.tickets);
        jobs.clone_from(&source.jobs);
        *next_job = source.next_job;
        throttle.clone_from(&source.throttle);
        registrations.clone_from(&source.registrations);
        timers.clone_from(&source.timers);
        outbox.clone_from(&source.outbox);
        *last_lsn = source.last_lsn;
        *durable_lsn = source.durable_lsn;
        #[cfg(any(test, feature = "planted"))]
        graveyard.clone_from(&source.graveyard);
    }
}

#[derive(Debug, Clone)]
pub(super) struct Account {
    pub name: String,
    pub password_hash: String,
    /// Undelivered messages in id order.
    pub queue: VecDeque<Queued>,
}

/// What one queued message counts against [`Config::queued_bytes_max`] besides its text: the
/// memory a message costs whatever its text (a `Queued` of 56 bytes, its sender's name on the
/// heap, the queue's slot, allocator rounding), so that tiny messages are bounded too.
pub const MESSAGE_OVERHEAD_BYTES: u64 = 96;

/// What a queued message with this text counts against the byte bound.
pub(super) fn queued_cost(text: &str) -> u64 {
    text.len() as u64 + MESSAGE_OVERHEAD_BYTES
}

#[derive(Debug, Clone)]
pub(super) struct Queued {
    pub id: MsgId,
    pub from: String,
    pub text: String,
}

/// A logged-in user: the command connection that logged in and the relay bound to it.
#[derive(Debug, Clone)]
pub(super) struct Session {
    pub command: ConnId,
    pub relay: Option<ConnId>,
    pub login_ms: u64,
    pub peer: Peer,
    /// Relay tickets issued to the session so far: one that asked for any never binds a bare
    /// handshake, and each ticket keeps its number, so that the oldest is known even among
    /// tickets issued in one millisecond.
    pub tickets_issued: u64,
}

#[derive(Debug, Clone)]
pub(super) struct Conn {
    pub peer: Peer,
    pub decoder: Decoder,
    pub role: Role,
    /// A close was emitted: further bytes are ignored.
    pub closing: bool,
}

#[derive(Debug, Clone)]
pub(super) enum Role {
    Command {
        account: Option<AccountId>,
        busy: Option<JobId>,
        /// Requests decoded whose reply has not been reported written yet (at most
        /// `Config::pipeline_len_max`: the rest of a pipelining client's bytes wait undecoded).
        owed: u32,
    },
    AwaitingHello,
    Relay(Binding),
}

impl Role {
    /// Whether a command connection decodes its next request now: no password job runs and
    /// fewer than `Config::pipeline_len_max` replies are owed. The decode loop stops on it, and
    /// [`Server::reads_ahead`] reads ahead only while it holds, so the two cannot disagree.
    fn decodes_next(&self, config: &Config) -> bool {
        let Role::Command { busy, owed, .. } = self else { return false };
        let pipeline_full = *owed as usize >= config.pipeline_len_max;
        #[cfg(any(test, feature = "planted"))]
        let pipeline_full = pipeline_full && config.planted != Planted::PipelineUnbounded;
        #[cfg(any(test, feature = "planted"))]
        let pipeline_full = pipeline_full
            && !(config.planted == Planted::PipelineOneOver
                && *owed as usize == config.pipeline_len_max);
        busy.is_none() && !pipeline_full
    }
}

#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub account: AccountId,
    /// The client acknowledges pushes (it used a ticket); otherwise written means delivered.
    pub acks: bool,
    /// Every queued message with an id up to this one has been pushed on this relay.
    pub pushed_through: MsgId,
}

#[derive(Debug, Clone)]
pub(super) struct Ticket {
    pub account: AccountId,
    /// The command connection of the session the ticket was issued to.
    pub session: ConnId,
    pub expires_ms: u64,
    /// Its number among its session's tickets ([`Session::tickets_issued`]).
    pub issued: u64,
}

#[derive(Debug, Clone)]
pub(super) struct PendingJob {
    pub conn: ConnId,
    pub kind: JobKind,
}

#[derive(Debug, Clone)]
pub(super) enum JobKind {
    Login { account: Option<AccountId>, reservation: Reservation },
    Register { name: String },
    Delete { account: AccountId, reservation: Reservation },
}

/// The accounts and queues as of one lsn, shared with the server that took it; see
/// [`Server::snapshot_view`].
#[derive(Debug, Clone)]
pub struct SnapshotView {
    accounts: Arc<BTreeMap<AccountId, Arc<Account>>>,
    lsn: Lsn,
    #[cfg(any(test, feature = "planted"))]
    planted: Planted,
}

impl SnapshotView {
    /// The lsn the view is as of: every record up to it is reflected.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    /// The shortest list of records that rebuilds this state (accounts, then queued messages
    /// in id order). Proportional to the state: call it off the core's lock.
    pub fn records(&self) -> Vec<Record> {
        let registers = self.accounts.iter().map(|(&account, a)| Record::Register {
            account,
            #[cfg(any(test, feature = "planted"))]
            name: if self.planted == Planted::SnapshotLowercasesNames {
                super::names::name_key(&a.name)
            } else {
                a.name.clone()
            },
            #[cfg(not(any(test, feature = "planted")))]
            name: a.name.clone(),
            password_hash: a.password_hash.clone(),
        });
        let mut messages: Vec<Record> = self
            .accounts
            .iter()
            .flat_map(|(&to, a)| {
                a.queue.iter().map(move |q| Record::Message {
                    id: q.id,
                    from: q.from.clone(),
                    to,
                    text: q.text.clone(),
                })
            })
            .collect();
        messages.sort_by_key(|r| match r {
            Record::Message { id, .. } => *id,
            _ => unreachable!("only messages were collected"),
        });
        registers.chain(messages).collect()
    }
}

/// A record that cannot be applied to the state rebuilt so far: the log contradicts itself.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("record {index} of the recovered log does not apply: {reason}")]
pub struct ReplayError {
    pub index: usize,
    pub reason: String,
}

impl Server {
    /// An empty server. `rng` supplies salts and tickets; seed it from the OS in production and
    /// from the run's seed in simulation.
    pub fn new(config: Config, rng: ChaCha20Rng) -> Self {
        #[allow(unused_mut)]
        let mut throttle = Throttle::new(
            config.login_failures_max,
            config.login_failures_per_peer_max,
            config.login_backoff_base_ms,
            config.login_failure_window_ms,
        );
        #[cfg(any(test, feature = "planted"))]
        throttle.plant(config.planted);
        Server {
            config,
            rng,
            now_ms: 0,
            accounts: Shared::default(),
            names: Shared::default(),
            queued_bytes: 0,
            conns: Shared::default(),
            conns_per_peer: Shared::default(),
            sessions: Shared::default(),
            closing_bare_relays: Shared::default(),
            tickets: Shared::default(),
            jobs: Shared::default(),
            next_job: 0,
            throttle: Shared::new(throttle),
            registrations: Shared::default(),
            timers: Timers::default(),
            outbox: Outbox::default(),
            last_lsn: Lsn(0),
            durable_lsn: Lsn(0),
            #[cfg(any(test, feature = "planted"))]
            graveyard: Vec::new(),
        }
    }

    /// A server rebuilt from recovered records (a snapshot's, then the log's), through the same
    /// `apply` the live path uses. `last_lsn` is the lsn of the last recovered record; it is
    /// durable by definition.
    pub fn recover(
        config: Config,
        rng: ChaCha20Rng,
        records: impl IntoIterator<Item = Record>,
        last_lsn: Lsn,
    ) -> Result<Self, ReplayError> {
        let mut server = Server::new(config, rng);
        for (index, record) in records.into_iter().enumerate() {
            #[cfg(any(test, feature = "planted"))]
            if server.planted_is(
                Planted::ReplaySkipsDelivered,
                matches!(record, Record::Delivered { .. }),
            ) {
                continue;
            }
            server.apply(&record).map_err(|reason| ReplayError { index, reason })?;
        }
        server.last_lsn = last_lsn;
        server.durable_lsn = last_lsn;
        Ok(server)
    }

    /// The shortest list of records that rebuilds the durable state (accounts, then queued
    /// messages), for compaction. It covers every record up to [`Server::last_lsn`].
    pub fn snapshot(&self) -> Vec<Record> {
        self.snapshot_view().records()
    }

    /// The state as of [`Server::last_lsn`], captured in O(1) (the accounts are shared copy on
    /// write), to be turned into records later, off the core's lock. A change to an account
    /// after the capture copies that one account (its queue), never the whole state.
    pub fn snapshot_view(&self) -> SnapshotView {
        SnapshotView {
            accounts: self.accounts.share(),
            lsn: self.last_lsn,
            #[cfg(any(test, feature = "planted"))]
            planted: self.config.planted,
        }
    }

    // ---- handle --------------------------------------------------------------------------

    /// Feeds one input. Drain [`Server::poll_output`] afterwards.
    pub fn handle_input(&mut self, input: Input<'_>) {
        self.now_ms = self.now_ms.max(input.now_ms);
        self.fire_due_timers();
        match input.event {
            Event::Opened { conn, channel, peer } => self.opened(conn, channel, peer),
            Event::Received { conn, bytes } => self.received(conn, bytes),
            Event::Closed { conn } => self.closed(conn),
            Event::Written { conn, last } => self.written(conn, last),
            Event::RepliesWritten { conn, count } => self.replies_written(conn, count),
            Event::Durable { lsn } => {
                assert!(
                    lsn <= self.last_lsn,
                    "durable {lsn:?} beyond last emitted {:?}",
                    self.last_lsn
                );
                self.durable_lsn = self.durable_lsn.max(lsn);
            }
            Event::PasswordDone { job, outcome } => self.password_done(job, outcome),
            Event::Tick => {}
        }
    }

    fn opened(&mut self, conn: ConnId, channel: Channel, peer: Peer) {
        let limit = self.config.frame_len_max_before_login;
        #[cfg(any(test, feature = "planted"))]
        let limit = self.planted_limit_before_login(limit);
        let role = match channel {
            Channel::Command => Role::Command { account: None, busy: None, owed: 0 },
            Channel::Relay => Role::AwaitingHello,
        };
        let previous = self
            .conns
            .insert(conn, Conn { peer, decoder: Decoder::new(limit), role, closing: false });
        assert!(previous.is_none(), "connection {conn:?} opened twice");
        let from_peer = self.conns_per_peer.entry(peer).or_default();
        *from_peer += 1;
        if *from_peer > self.config.connections_per_peer_max {
            let max = self.config.connections_per_peer_max;
            let text = format!(
                "Too many connections from your address (limit {max}); close some and retry"
            );
            return self.fail_and_close(conn, &text);
        }
        let max = self.config.connections_max;
        #[cfg(any(test, feature = "planted"))]
        let max =
            max.saturating_sub(usize::from(self.planted_is(Planted::ConnectionsOneShort, true)));
        if self.conns.len() > max {
            let text = "The server is at its connection limit; try again later";
            return self.fail_and_close(conn, text);
        }
        let deadline_ms = self.now_ms.saturating_add(self.config.login_deadline_ms);
        #[cfg(any(test, feature = "planted"))]
        let deadline_ms =
            deadline_ms.saturating_add(u64::from(self.planted_is(Planted::TimersFireLate, true)));
        self.timers.set(Timer::Login(conn), deadline_ms);
    }

    fn received(&mut self, conn: ConnId, bytes: &[u8]) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else { return };
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == Planted::HeaderLeadingSpaceRefused
            && c.decoder.buffered_len() == 0
            && bytes.first() == Some(&b' ')
        {
            let header = &bytes[..bytes.len().min(crate::wire::HEADER_LEN)];
            let shown = String::from_utf8_lossy(header).into_owned();
            let error = crate::wire::FrameError::BadHeader { shown };
            return self.fail_and_close(conn, &error.to_string());
        }
        c.decoder.feed(bytes);
        let limit = self.config.inbound_buffered_len_max;
        #[cfg(any(test, feature = "planted"))]
        let limit =
            if self.config.planted == Planted::InboundUnbounded { usize::MAX } else { limit };
        #[cfg(any(test, feature = "planted"))]
        let limit = limit - usize::from(self.config.planted == Planted::InboundBoundExclusive);
        if c.decoder.buffered_len() > limit {
            let text = "Too much sent without waiting for replies; connection closed";
            return self.fail_and_close(conn, text);
        }
        self.process_frames(conn);
    }

    /// Decodes and handles frames of `conn` until it runs out of bytes, becomes busy with a
    /// password job, or closes.
    pub(super) fn process_frames(&mut self, conn: ConnId) {
        let mut acks = Vec::new();
        let mut decoded = false;
        while let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) {
            if matches!(c.role, Role::Command { .. }) && !c.role.decodes_next(&self.config) {
                break;
            }
            let body = match c.decoder.decode() {
                Ok(Some(body)) => {
                    decoded = true;
                    body
                }
                Ok(None) => break,
                Err(error) => {
                    self.fail_and_close(conn, &error.to_string());
                    break;
                }
            };
            match &mut c.role {
                Role::Command { owed, .. } => {
                    *owed += 1;
                    self.handle_command(conn, &body);
                }
                Role::AwaitingHello => self.relay_hello(conn, &body),
                Role::Relay(_) => self.relay_frame(conn, &body, &mut acks),
            }
        }
        self.acknowledged(conn, acks);
        self.arm_frame_deadline(conn, decoded);
    }

    /// The frame deadline runs over the frame at the head of `conn`'s buffer while its sender
    /// owes the rest of it and the server reads it, from when it became the head: with this
    /// read, or when the frame before it was decoded (`decoded`). A command connection that
    /// decodes nothing more for now (replies owed up to the pipeline bound, a password job
    /// running) is not read by its host either: its sender waits on the server, and the
    /// deadline starts again once the server reads on. More bytes of the same frame do not
    /// extend it.
    fn arm_frame_deadline(&mut self, conn: ConnId, decoded: bool) {
        let Some(c) = self.conns.get(&conn).filter(|c| !c.closing) else { return };
        let reading = !matches!(c.role, Role::Command { .. }) || c.role.decodes_next(&self.config);
        let mid_frame = reading && c.decoder.is_mid_frame();
        #[cfg(any(test, feature = "planted"))]
        let (mid_frame, decoded) = match self.config.planted {
            Planted::FrameDeadlineSpansFrames => (c.decoder.buffered_len() > 0, false),
            Planted::FrameDeadlineRearmed => (mid_frame, true),
            _ => (mid_frame, decoded),
        };
        if !mid_frame {
            return self.timers.cancel(Timer::Frame(conn));
        }
        let deadline_ms = self.now_ms.saturating_add(self.config.frame_deadline_ms);
        match decoded {
            true => self.timers.set(Timer::Frame(conn), deadline_ms),
            false => self.timers.set_if_unset(Timer::Frame(conn), deadline_ms),
        }
    }

    fn closed(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else { return };
        #[cfg(any(test, feature = "planted"))]
        let c = Conn { peer: self.planted_peer_slot(c.peer), ..c };
        if let Some(n) = self.conns_per_peer.get_mut(&c.peer) {
            *n -= 1;
            if *n == 0 {
                self.conns_per_peer.remove(&c.peer);
            }
        }
        self.timers.cancel(Timer::Login(conn));
        self.timers.cancel(Timer::Frame(conn));
        let abandoned: Vec<JobId> =
            self.jobs.iter().filter(|(_, job)| job.conn == conn).map(|(&id, _)| id).collect();
        for job in abandoned {
            let pending = self.jobs.remove(&job).expect("just listed");
            #[cfg(any(test, feature = "planted"))]
            if self.config.planted == Planted::AbandonedCheckKeepsSlot {
                continue;
            }
            self.abandon_job(pending.kind);
        }
        if let (true, Role::Relay(binding)) = (c.closing, &c.role) {
            if !binding.acks {
                self.closing_bare_relay_ended(binding.account);
            }
        }
        #[cfg(any(test, feature = "planted"))]
        if self.config.planted == Planted::CloseKeepsSession
            && matches!(c.role, Role::Command { .. })
        {
            return;
        }
        match c.role {
            Role::Command { account: Some(account), .. } => self.end_session(account, None),
            Role::Relay(binding) => self.detach_relay(binding.account, conn),
            Role::Command { account: None, .. } | Role::AwaitingHello => {}
        }
    }

    /// A command connection's writer wrote `count` reply frames: that many requests are
    /// answered, and as many more of its pipelined requests may be decoded.
    fn replies_written(&mut self, conn: ConnId, count: u32) {
        let Some(Conn { role: Role::Command { owed, .. }, decoder, .. }) =
            self.conns.get_mut(&conn)
        else {
            return;
        };
        *owed = owed.saturating_sub(count);
        // With nothing buffered there is nothing to decode, and no frame deadline to change
        // (one runs only over a partial frame): the usual case of a client that waits for
        // its replies, skipped because every reply pays for it.
        if decoder.buffered_len() > 0 {
            self.process_frames(conn);
        }
    }

    fn password_done(&mut self, job: JobId, outcome: PasswordOutcome) {
        let Some(pending) = self.jobs.remove(&job) else { return };
        let conn = pending.conn;
        match self.conns.get_mut(&conn) {
            Some(Conn { role: Role::Command { busy, .. }, closing: false, .. })
                if *busy == Some(job) =>
            {
                *busy = None
            }
            _ => return self.abandon_job(pending.kind),
        }
        self.finish_job(conn, pending.kind, outcome);
        self.process_frames(conn);
    }

    fn fire_due_timers(&mut self) {
        let due_ms = self.now_ms;
        #[cfg(any(test, feature = "planted"))]
        let due_ms =
            due_ms.saturating_sub(u64::from(self.planted_is(Planted::TimersNeverDue, true)));
        while let Some(timer) = self.timers.pop_due(due_ms) {
            match timer {
                Timer::Login(conn) => {
                    let text = match self.conns.get(&conn).map(|c| &c.role) {
                        Some(Role::AwaitingHello) => "Relay handshake timed out".to_owned(),
                        _ => format!(
                            "Login timed out: log in or register within {} of connecting",
                            duration_text(self.config.login_deadline_ms)
                        ),
                    };
                    self.fail_and_close(conn, &text);
                }
                Timer::Frame(conn) => {
                    let text = format!(
                        "Timed out waiting for the rest of a frame ({})",
                        duration_text(self.config.frame_deadline_ms)
                    );
                    self.fail_and_close(conn, &text);
                }
                Timer::Sweep => self.sweep(),
            }
        }
    }

    fn sweep(&mut self) {
        let now_ms = self.now_ms;
        self.tickets.retain(|_, t| t.expires_ms > now_ms);
        self.throttle.sweep(now_ms);
        self.registrations.sweep(self.config.registration_window_ms, now_ms);
        #[cfg(any(test, feature = "planted"))]
        if self.planted_is(Planted::SweepNotRearmed, true) {
            return;
        }
        self.arm_sweep();
    }

    /// Keeps the sweep timer set while there is something to forget.
    pub(super) fn arm_sweep(&mut self) {
        if !self.tickets.is_empty() || !self.throttle.is_empty() || !self.registrations.is_empty() {
            let interval_ms = self
                .config
                .ticket_ttl_ms
                .min(self.config.login_failure_window_ms)
                .min(self.config.registration_window_ms);
            self.timers.set_if_unset(Timer::Sweep, self.now_ms.saturating_add(interval_ms.max(1)));
        }
    }

    // ---- effects -------------------------------------------------------------------------

    /// Applies a new record and emits it for persistence. Ids of new accounts and messages are
    /// the lsn of the record that creates them, so they stay unique across compaction.
    pub(super) fn commit(&mut self, record: Record) {
        self.last_lsn = self.next_lsn();
        if let Err(reason) = self.apply(&record) {
            panic!("the core produced a record that does not apply ({reason}): {record:?}");
        }
        self.outbox.push_immediate(Output::Persist { lsn: self.last_lsn, record });
    }

    pub(super) fn next_lsn(&self) -> Lsn {
        Lsn(self.last_lsn.0 + 1)
    }

    /// The one place state changes for a record, live or replayed.
    fn apply(&mut self, record: &Record) -> Result<(), String> {
        match record {
            Record::Register { account, name, password_hash } => {
                let key = name_key(name);
                if self.names.contains_key(&key) || self.accounts.contains_key(account) {
                    return Err(format!("account {account:?} or name {name:?} already exists"));
                }
                self.names.insert(key, *account);
                let queue = VecDeque::new();
                let account_state =
                    Account { name: name.clone(), password_hash: password_hash.clone(), queue };
                self.accounts.insert(*account, Arc::new(account_state));
                #[cfg(any(test, feature = "planted"))]
                self.planted_adopt_queue(*account);
            }
            Record::Delete { account } => {
                let removed = self.accounts.remove(account).ok_or("deleted account is unknown")?;
                self.names.remove(&name_key(&removed.name));
                #[cfg(any(test, feature = "planted"))]
                self.planted_bury(&removed.name, &removed.queue);
                #[cfg(any(test, feature = "planted"))]
                if self.planted_is(Planted::DeleteKeepsQueuedBytes, true) {
                    return Ok(());
                }
                self.queued_bytes -=
                    removed.queue.iter().map(|q| queued_cost(&q.text)).sum::<u64>();
            }
            Record::Message { id, from, to, text } => {
                let account = self.accounts.get_mut(to).ok_or("recipient is unknown")?;
                let account = Arc::make_mut(account);
                if account.queue.back().is_some_and(|q| q.id >= *id) {
                    return Err(format!("message {id:?} is out of order"));
                }
                account.queue.push_back(Queued { id: *id, from: from.clone(), text: text.clone() });
                self.queued_bytes += queued_cost(text);
            }
            Record::Delivered { to, ids } => {
                let account = self.accounts.get_mut(to).ok_or("recipient is unknown")?;
                let account = Arc::make_mut(account);
                for id in ids {
                    if let Ok(at) = account.queue.binary_search_by_key(id, |q| q.id) {
                        let removed = account.queue.remove(at).expect("index was just found");
                        self.queued_bytes -= queued_cost(&removed.text);
                    }
                }
            }
        }
        Ok(())
    }

    /// Emits a visible output, released once everything persisted so far is durable.
    pub(super) fn emit(&mut self, output: Output) {
        self.outbox.push_gated(self.last_lsn, output);
    }

    /// Replies to a request on a command connection (or a relay failure frame).
    pub(super) fn reply(&mut self, conn: ConnId, ok: bool, text: &str) {
        if self.is_bare_relay(conn) {
            return;
        }
        let output = Output::Reply { conn, frame: reply::reply(ok, text) };
        self.outbox.push_gated(self.last_lsn, output);
    }

    /// Sends one failure frame that answers no request, then closes the connection.
    pub(super) fn fail_and_close(&mut self, conn: ConnId, text: &str) {
        // A connection being closed gets nothing more (a deadline re-armed for it, say).
        if self.conns.get(&conn).is_none_or(|c| c.closing) {
            return;
        }
        if !self.is_bare_relay(conn) {
            self.emit(Output::Reply { conn, frame: reply::reply(false, text) });
        }
        self.close(conn);
    }

    /// A relay bound by the original client's bare handshake. That client prints every frame
    /// it receives as a chat message, so such a relay gets pushes only: failures and closing
    /// notices would read as messages from someone, and its end is a plain close.
    fn is_bare_relay(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn),
            Some(Conn { role: Role::Relay(Binding { acks: false, .. }), .. })
        )
    }

    /// Closes a connection (after what was emitted for it) and stops reading from it.
    pub(super) fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn).filter(|c| !c.closing) else { return };
        c.closing = true;
        if let Role::Relay(binding) = &c.role {
            let account = binding.account;
            if !binding.acks {
                *self.closing_bare_relays.entry(account).or_default() += 1;
            }
            self.detach_relay(account, conn);
        }
        self.timers.cancel(Timer::Login(conn));
        self.timers.cancel(Timer::Frame(conn));
        self.emit(Output::Close { conn });
    }

    // ---- poll ----------------------------------------------------------------------------

    /// The next output, or `None` when nothing more can be released now.
    pub fn poll_output(&mut self) -> Option<Output> {
        #[cfg(any(test, feature = "planted"))]
        return self.outbox.pop(self.planted_release_bound());
        #[cfg(not(any(test, feature = "planted")))]
        self.outbox.pop(self.durable_lsn)
    }

    /// When to feed the next [`Event::Tick`], in the same milliseconds as [`Input::now_ms`].
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next_deadline_ms()
    }

    // ---- getters -------------------------------------------------------------------------

    /// What the server holds in memory beside its accounts and their queues: state that lives
    /// only as long as a connection, a ticket or a window. Once every client has gone and
    /// every window has lapsed, all of it is gone (the simulator's rest check judges that).
    pub fn held(&self) -> Held {
        Held {
            conns: self.conns.len(),
            peers: self.conns_per_peer.len(),
            sessions: self.sessions.len(),
            closing_bare_relays: self.closing_bare_relays.len(),
            tickets: self.tickets.len(),
            jobs: self.jobs.len(),
            throttle_empty: self.throttle.is_empty(),
            registrations_empty: self.registrations.is_empty(),
            timer_ms: self.timers.next_deadline_ms(),
        }
    }

    /// True when `conn` is a relay bound with acknowledgements (a ticketed relay): a report
    /// that its pushes were written changes nothing in the core (only acknowledgements do), so
    /// it never emits a record.
    pub fn relay_acknowledges(&self, conn: ConnId) -> bool {
        matches!(
            self.conns.get(&conn),
            Some(Conn { role: Role::Relay(Binding { acks: true, .. }), .. })
        )
    }

    /// True while a request received on the command connection `conn` has no reply written
    /// yet (or a decoded request waits for a password job): its owner should write the
    /// replies before reading more requests.
    pub fn awaiting_reply(&self, conn: ConnId) -> bool {
        match self.conns.get(&conn) {
            Some(Conn { role: Role::Command { owed, busy, .. }, closing: false, .. }) => {
                *owed > 0 || busy.is_some()
            }
            _ => false,
        }
    }

    /// True while the command connection `conn` owes replies yet would decode another request
    /// now (fewer than `Config::pipeline_len_max` owed, no password job running): bytes read
    /// ahead of the replies are decoded at once, not left buffered.
    pub fn reads_ahead(&self, conn: ConnId) -> bool {
        match self.conns.get(&conn) {
            Some(Conn { role: role @ Role::Command { owed, .. }, closing: false, .. }) => {
                #[cfg(any(test, feature = "planted"))]
                if self.config.planted == Planted::ReadAheadPastPipeline {
                    return *owed > 0;
                }
                *owed > 0 && role.decodes_next(&self.config)
            }
            _ => false,
        }
    }

    /// The lsn of the last record emitted.
    pub fn last_lsn(&self) -> Lsn {
        self.last_lsn
    }

    /// The lsn up to which records are durable.
    pub fn durable_lsn(&self) -> Lsn {
        self.durable_lsn
    }

    /// The core's configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The time of the latest input.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The account currently holding `name` (case-insensitive).
    pub fn account_id(&self, name: &str) -> Option<AccountId> {
        // A name without capitals is its own key: no need to build one (drivers ask per step).
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            self.names.get(&name_key(name)).copied()
        } else {
            self.names.get(name).copied()
        }
    }

    /// Registered accounts, in registration order.
    pub fn account_names(&self) -> Vec<String> {
        self.accounts.values().map(|a| a.name.clone()).collect()
    }

    /// Ids of the messages waiting for `account`, oldest first.
    pub fn queued_ids(&self, account: AccountId) -> Vec<MsgId> {
        self.queued_ids_iter(account).collect()
    }

    /// [`Server::queued_ids`], without collecting them (the model checker asks per step).
    pub fn queued_ids_iter(&self, account: AccountId) -> impl Iterator<Item = MsgId> + '_ {
        self.accounts.get(&account).into_iter().flat_map(|a| a.queue.iter().map(|q| q.id))
    }

    /// The account logged in on the command connection `conn`.
    pub fn session_of(&self, conn: ConnId) -> Option<AccountId> {
        match self.conns.get(&conn)?.role {
            Role::Command { account, .. } => account,
            _ => None,
        }
    }

    /// Whether `account` is logged in and has a relay bound.
    pub fn has_relay(&self, account: AccountId) -> bool {
        self.sessions.get(&account).is_some_and(|s| s.relay.is_some())
    }

    /// Open connections (including those being closed).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Outputs produced but not yet released (waiting for durability).
    pub fn outputs_pending(&self) -> usize {
        self.outbox.len()
    }

    /// Undecoded bytes buffered for `conn`, if it is open (for memory bounds in tests and fuzzing).
    pub fn inbound_buffered_len(&self, conn: ConnId) -> Option<usize> {
        self.conns.get(&conn).map(|c| c.decoder.buffered_len())
    }

    /// Undecoded bytes buffered over every connection (for memory bounds in tests).
    pub fn inbound_buffered_total(&self) -> usize {
        self.conns.values().map(|c| c.decoder.buffered_len()).sum()
    }

    /// The account the relay `conn` completed its handshake for, even while it is being closed.
    pub fn relay_account(&self, conn: ConnId) -> Option<AccountId> {
        match self.conns.get(&conn)?.role {
            Role::Relay(ref binding) => Some(binding.account),
            _ => None,
        }
    }
}
