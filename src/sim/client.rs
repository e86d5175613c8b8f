//! A simulated client: a state machine that turns operations (scripted or drawn by the random
//! workload) into request frames, parses what comes back with [`crate::wire::Decoder`], acknowledges
//! ticketed pushes, and tells the world what it did through [`Act`]s.
//!
//! The client never touches the network or the checker itself: it returns acts, which the world
//! carries out (connect, write, close, wake me later) and reports (what was sent, replies,
//! pushes). So the same state machine could be driven over real sockets.

use std::collections::VecDeque;

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::check::{ConnNo, Observation};
use super::rng::{derived, Stream};
use super::scenario::{Hostile, Op, BAD_HEADERS};
use super::workload::{self, View, Workload};
use crate::client::ClientError;
use crate::client::{parse_push, Push};
use crate::core::{Channel, ConnId};
use crate::wire::reply::NEEDS_LOGIN;
use crate::wire::{encode, encode_parts, Decoder, RelayFrame, HEADER_LEN};

/// Something the world must do or know, in order.
#[derive(Debug)]
pub enum Act {
    Connect(Channel),
    Write(Channel, Vec<u8>),
    /// Close this connection (the client has already forgotten it).
    Close(ConnId),
    /// Wake the client again after this many ms.
    Wake(u64),
    /// Wake a scripted client again when its next operation is due (at once if it has none):
    /// where a random client thinks, a script waits for its next step. The wake-up is queued
    /// at the moment the random client it was written down from queued its own, so that it
    /// falls in the same place among the events of its millisecond.
    WakeForNextOp,
    /// Observations for the checker.
    Connected,
    Sent(Op),
    Reply(Vec<u8>),
    /// The client lost its command connection `conn` (closed it, or saw it end).
    Lost(ConnId),
    /// The command connection `conn` ended under the client with `unanswered` requests
    /// outstanding; `noticed` if the last frame on it was a failure (a notice before a close).
    Dropped {
        conn: ConnId,
        unanswered: usize,
        noticed: bool,
    },
    RelayOpened(ConnId),
    Push {
        conn: ConnId,
        sender: String,
        text: String,
    },
    /// A hostile act, or what one got, for the trace and the checker.
    Hostile(Observation),
    /// One more of a row of the reachability report (`sim::coverage`), e.g. a hostile
    /// action as `hostile: KIND`.
    Count(&'static str),
}

/// Where a client's operations come from.
#[derive(Debug)]
pub enum Driver {
    /// Operations with the earliest time each may run.
    Script(VecDeque<(u64, Op)>),
    Random {
        ops_left: usize,
        names: usize,
        workload: Workload,
    },
}

#[derive(Debug)]
struct Side {
    conn: ConnId,
    decoder: Decoder,
    /// A relay opened by a hostile handshake (which must be refused).
    hostile: Option<Hostile>,
    /// The client wrote a lying or malformed frame on this (honest) relay: the failure frames
    /// it gets are reported to the checker.
    lied: bool,
}

/// The limits a hostile client aims at: what the server it talks to is configured with.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub frame_len_max_before_login: usize,
    pub frame_len_max: usize,
    pub relay_frame_len_max: usize,
    pub ticket_ttl_ms: u64,
    pub tickets_per_session_max: usize,
    pub frame_deadline_ms: u64,
    pub bare_relay_window_ms: u64,
    /// Hold each honest bare handshake until the bare window after its login's reply (set
    /// by the world where that is the login's own millisecond, see `held_bare`).
    pub bare_at_window_end: bool,
}

impl Limits {
    /// The limits of a server configured with `config`.
    pub fn of(config: &crate::core::Config) -> Self {
        Limits {
            frame_len_max_before_login: config.frame_len_max_before_login,
            frame_len_max: config.frame_len_max,
            relay_frame_len_max: config.relay_frame_len_max,
            ticket_ttl_ms: config.ticket_ttl_ms,
            tickets_per_session_max: config.tickets_per_session_max,
            frame_deadline_ms: config.frame_deadline_ms,
            bare_relay_window_ms: config.bare_relay_window_ms,
            bare_at_window_end: false,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::of(&crate::core::Config::default())
    }
}

/// What a hostile client remembers to lie with.
#[derive(Debug, Default)]
struct Lies {
    /// Ids pushed to this client on ticketed relays, ever (ascending, deduplicated).
    pushed: Vec<u64>,
    /// The highest id pushed on the current relay.
    relay_pushed_max: u64,
    /// The id it last acknowledged.
    acked_last: Option<u64>,
    /// What to do with the next ticket (`TicketStolen`, `TicketExpired` or
    /// `TicketAfterLogout`).
    ticket_plan: Option<Hostile>,
    /// The handshake of its last honest ticketed relay, once a push proved that the server
    /// bound it (so the ticket is spent): the one to replay.
    last_hello: Option<Vec<u8>>,
    /// The handshake of the current honest ticketed relay, before any push on it.
    unproven_hello: Option<Vec<u8>>,
    /// A handshake held until its ticket has expired: the time to use it (once known: set at
    /// the wake-up the ticket's arrival asks for).
    expired: Option<(Option<u64>, Vec<u8>)>,
    /// A frame at or over the relay's limit, held until a push proves a relay bound.
    relay_act: Option<Hostile>,
    /// The tickets a hoarding client collected so far (`ticket-hoard`, `ticket-evicted`).
    hoard: Option<Vec<Vec<u8>>>,
    /// The hoard is for `ticket-evicted`: its relay uses the oldest ticket.
    hoard_evicted: bool,
    /// How many tickets the client was granted after the one its current honest ticketed
    /// relay uses (1 for a hoarder's, else 0).
    ticket_newer: usize,
    /// A request being dribbled: the bytes not yet written, and when the next one is due.
    dribble: Option<(VecDeque<u8>, u64)>,
    /// `ticket-after-logout`: a ticket held across a logout and a login on the same
    /// connection.
    after_logout: Option<AfterLogout>,
}

/// A ticket of an ended session, held to open a relay in the next one.
#[derive(Debug)]
struct AfterLogout {
    name: String,
    password: String,
    hello: Vec<u8>,
    /// The logout was answered; the login is on its way.
    logged_out: bool,
}

/// One client.
#[derive(Debug)]
pub struct Client {
    pub id: usize,
    driver: Driver,
    rng: ChaCha20Rng,
    /// The ids hostile acknowledgements make up: a stream apart from the workload's, so that
    /// a scripted client lies as the random client it was written down from.
    lies_rng: ChaCha20Rng,
    /// Whether a wrong-password login makes the client a patient guesser: a stream apart
    /// from the workload's, so that seeds without a guesser draw as they did before.
    patience_rng: ChaCha20Rng,
    /// Whether an honest ticketed relay hoards tickets first ([`Stream::Hoard`]).
    hoard_rng: ChaCha20Rng,
    /// Its requests' headers are right-justified (every third client): PROTOCOL.md's server
    /// accepts "surrounding spaces" around the length, not only the padding after it.
    spaced_headers: bool,
    /// Whether a `help` request is dribbled ([`Stream::Dribble`]).
    dribble_rng: ChaCha20Rng,
    fields_rng: ChaCha20Rng,
    cmd: Option<Side>,
    relay: Option<Side>,
    relay_acks: bool,
    relay_hello: Option<Vec<u8>>,
    relay_hostile: Option<Hostile>,
    lies: Lies,
    /// The limits hostile frames aim at (the world sets the server's).
    pub limits: Limits,
    /// Requests written whose replies have not come yet, oldest first.
    awaiting: VecDeque<Op>,
    /// The last frame on the command connection was a failure (a notice before a close).
    last_failed: bool,
    /// The server announced, in a frame no request asked for, that it closes the command
    /// connection (a deadline): nothing hostile is written on it any more.
    doomed: bool,
    session: Option<String>,
    /// The password the session logged in with.
    session_password: String,
    /// When the reply that began the session arrived.
    logged_in_ms: u64,
    /// When a held bare handshake is due (`held_bare`).
    bare_due: Option<u64>,
    msg_seq: u64,
    think_ms_max: u64,
    /// The next wake-up already scheduled.
    pub wake_at: Option<u64>,
    /// Reads its relay slowly.
    pub slow_reader: bool,
    /// Retries a refused login (the liveness phase's clients, which must get in eventually).
    pub persistent: bool,
    /// Every operation performed and when, if the run is being written down (`sim::shrink`).
    pub record: Option<Vec<(u64, Op)>>,
    /// A patient guesser's wrong-password login and how many more times it sends it.
    guess: Option<(Op, u32)>,
    /// The client has been a patient guesser: once is enough (each run holds its address
    /// throttled for minutes, and the liveness phase's clients may share the address).
    guessed: bool,
}

const FRAME_LEN_MAX: usize = 1 << 20;
const RETRY_MS: u64 = 50;
/// How long a persistent client waits before logging in again (throttling lasts seconds).
const LOGIN_RETRY_MS: u64 = 1_000;

impl Client {
    pub fn new(id: usize, driver: Driver, mut rng: ChaCha20Rng, slow_percent: u64) -> Self {
        let lies_rng = derived(&rng, Stream::Client, Stream::Lies, 0);
        let patience_rng = derived(&rng, Stream::Client, Stream::Patience, 0);
        let hoard_rng = derived(&rng, Stream::Client, Stream::Hoard, 0);
        let dribble_rng = derived(&rng, Stream::Client, Stream::Dribble, 0);
        let fields_rng = derived(&rng, Stream::Client, Stream::Fields, 0);
        let slow_reader = rng.gen_range(0..100) < slow_percent;
        // A script says when things happen; only random clients think between operations.
        let think_ms_max = if matches!(driver, Driver::Random { .. }) { 100 } else { 0 };
        Client {
            id,
            driver,
            rng,
            lies_rng,
            patience_rng,
            hoard_rng,
            dribble_rng,
            fields_rng,
            spaced_headers: id % 3 == 2,
            cmd: None,
            relay: None,
            relay_acks: false,
            relay_hello: None,
            relay_hostile: None,
            lies: Lies::default(),
            limits: Limits::default(),
            awaiting: VecDeque::new(),
            last_failed: false,
            doomed: false,
            session: None,
            session_password: String::new(),
            logged_in_ms: 0,
            bare_due: None,
            msg_seq: 0,
            think_ms_max,
            wake_at: None,
            slow_reader,
            persistent: false,
            record: None,
            guess: None,
            guessed: false,
        }
    }

    /// No operation left and no request outstanding.
    pub fn is_done(&self) -> bool {
        self.awaiting.is_empty()
            && self.lies.expired.is_none()
            && self.guess.is_none()
            && match &self.driver {
                Driver::Script(ops) => ops.is_empty(),
                Driver::Random { ops_left, .. } => *ops_left == 0,
            }
    }

    /// The workload is cut short (the liveness phase begins): no operation after the ones in
    /// flight, no guess and no held handshake. A request being dribbled is written whole at
    /// once: it is in flight, and owed a reply (small swarm seed 309 of 8 clients, 200
    /// operations and 6 names: a `help` left half written was reported unanswered).
    pub fn cut(&mut self, acts: &mut Vec<Act>) {
        self.guess = None;
        self.lies.expired = None;
        self.bare_due = None;
        if let Some((rest, _)) = self.lies.dribble.take().filter(|(rest, _)| !rest.is_empty()) {
            acts.push(Act::Write(Channel::Command, rest.into()));
        }
        match &mut self.driver {
            Driver::Script(ops) => ops.clear(),
            Driver::Random { ops_left, .. } => *ops_left = 0,
        }
    }

    /// Appends `op` to a scripted client's operations, to run at `at_ms` or later.
    pub fn push_op(&mut self, at_ms: u64, op: Op) {
        match &mut self.driver {
            Driver::Script(ops) => ops.push_back((at_ms, op)),
            Driver::Random { .. } => panic!("random clients take no scripted operations"),
        }
    }

    /// The time of the next scripted operation, if any.
    pub fn next_script_ms(&self) -> Option<u64> {
        match &self.driver {
            Driver::Script(ops) => ops.front().map(|(at, _)| *at),
            Driver::Random { .. } => None,
        }
    }

    /// The live connection on `chan`.
    pub fn conn(&self, chan: Channel) -> Option<ConnId> {
        match chan {
            Channel::Command => self.cmd.as_ref().map(|s| s.conn),
            Channel::Relay => self.relay.as_ref().map(|s| s.conn),
        }
    }

    /// Thinks before the next operation: a random client for a random time, a scripted one
    /// until its next operation is due.
    fn think(&mut self, acts: &mut Vec<Act>) {
        match self.driver {
            Driver::Random { .. } => {
                acts.push(Act::Wake(self.rng.gen_range(0..=self.think_ms_max)))
            }
            Driver::Script(_) => acts.push(Act::WakeForNextOp),
        }
    }

    /// Time to act: performs the next operation if the client is free.
    pub fn wake(&mut self, now_ms: u64, acts: &mut Vec<Act>) {
        if self.dribbling(now_ms, acts) {
            return;
        }
        if !self.awaiting.is_empty() {
            return;
        }
        if self.held_handshake(now_ms, acts) || self.held_bare(now_ms, acts) {
            return;
        }
        // A scripted operation is written down at its time in the script, not when it ran, so
        // that a script replays as itself.
        let (at_ms, op) = match &mut self.driver {
            Driver::Script(ops) => match ops.front() {
                None => return,
                Some(&(at, _)) if at > now_ms => return acts.push(Act::Wake(at - now_ms)),
                Some((_, op)) if needs_command(op) && self.cmd.is_none() => {
                    return acts.push(Act::Connect(Channel::Command));
                }
                Some(_) => ops.pop_front().expect("front exists"),
            },
            Driver::Random { .. } if self.guess.is_some() => (now_ms, self.next_guess()),
            Driver::Random { ops_left: 0, .. } => return,
            Driver::Random { ops_left, names, workload } => {
                *ops_left -= 1;
                let (names, workload) = (*names, *workload);
                let view = View {
                    me: self.id,
                    connected: self.cmd.is_some(),
                    session: self.session.as_deref(),
                    relay: self.relay.is_some(),
                };
                let op = match workload {
                    Workload::Mixed => workload::choose(&mut self.rng, view, names, 3),
                    Workload::Hostile => workload::choose(&mut self.rng, view, names, 40),
                    Workload::Chat => workload::choose_chat(&mut self.rng, view, names),
                };
                let op = match workload {
                    Workload::Chat => op,
                    _ => {
                        let op = self.password_at_limit(op);
                        self.hostile_variant(op)
                    }
                };
                if !self.guessed {
                    let session = self.session.is_some();
                    self.guess = workload::patient_guesses(&mut self.patience_rng, &op, session)
                        .map(|n| (op.clone(), n));
                    if self.guess.is_some() {
                        self.guessed = true;
                        acts.push(Act::Count("hostile: patient guesser"));
                    }
                }
                (now_ms, op)
            }
        };
        if let Some(record) = &mut self.record {
            record.push((at_ms, op.clone()));
        }
        if op == (Op::Relay { ticket: false }) && self.limits.bare_at_window_end && !self.persistent
        {
            self.bare_due = Some(self.logged_in_ms + self.limits.bare_relay_window_ms);
            self.held_bare(now_ms, acts);
            return;
        }
        self.perform(op, acts);
        if self.awaiting.is_empty() {
            self.think(acts);
        }
    }

    /// A registration, now and then, with a password exactly at PROTOCOL.md's limit or one
    /// byte over, or else with a name at its limits (`workload::odd_name`), where the frame
    /// fits the server's frame limits: drawn from the patience stream, apart from the
    /// workload. It registers a name outside the pool (`u1-long`),
    /// which nobody sends to, so that no message is owed to a name whose password the
    /// liveness phase could not know (crashes seed 646: the reply to a long registration of
    /// `u2` was lost, and the phase's login with u2's own password never got in).
    fn password_at_limit(&mut self, op: Op) -> Op {
        let Op::Register { name, password } = op else { return op };
        let frame_len_max = self.limits.frame_len_max.min(self.limits.frame_len_max_before_login);
        match workload::long_password(&mut self.patience_rng, &name) {
            Some(long) if 3 + name.len() + 5 + long.len() + 16 <= frame_len_max => {
                return Op::Register { name: format!("{name}-long"), password: long };
            }
            Some(_) => return Op::Register { name, password },
            None => {}
        }
        match workload::odd_name(&mut self.patience_rng, &name) {
            Some(odd) if 3 + odd.len() + password.len() + 16 <= frame_len_max => {
                Op::Register { name: odd, password }
            }
            _ => Op::Register { name, password },
        }
    }

    /// Writes the next byte of a dribbled request if it is due (true while one is dribbled):
    /// an eighth of the frame deadline apart, so that the frame outlives its deadline.
    fn dribbling(&mut self, now_ms: u64, acts: &mut Vec<Act>) -> bool {
        let Some((bytes, due_ms)) = &mut self.lies.dribble else { return false };
        if bytes.is_empty() {
            self.lies.dribble = None;
            return false;
        }
        if now_ms < *due_ms {
            acts.push(Act::Wake(*due_ms - now_ms));
            return true;
        }
        let step_ms = (self.limits.frame_deadline_ms / 8).max(1);
        let byte = bytes.pop_front().expect("not empty");
        acts.push(Act::Write(Channel::Command, vec![byte]));
        *due_ms = now_ms + step_ms;
        acts.push(Act::Wake(step_ms));
        true
    }

    /// Now and then, a hostile variant of `op`, each drawn from a stream of its own, apart
    /// from the workload: a hoard of tickets instead of one (`ticket-hoard`: one ticket more
    /// than the session may hold, then the relay opened with the second newest), a `help`
    /// dribbled a byte at a time (`frame-dribbled`), or a registration with a third field
    /// instead of an unknown code (`extra-field`).
    fn hostile_variant(&mut self, op: Op) -> Op {
        match op {
            Op::Relay { ticket: true } if self.hoard_rng.gen_bool(0.1) => {
                match self.hoard_rng.gen_bool(0.5) {
                    true => Op::Hostile(Hostile::TicketEvicted),
                    false => Op::Hostile(Hostile::TicketHoard),
                }
            }
            Op::Help if self.dribble_rng.gen_bool(0.05) => Op::Hostile(Hostile::FrameDribbled),
            Op::Hostile(Hostile::UnknownCode) if self.fields_rng.gen_bool(0.5) => {
                Op::Hostile(Hostile::ExtraField)
            }
            op => op,
        }
    }

    /// A patient guesser's next operation: its login again (on a new connection if the last
    /// one was closed under it), until its guesses run out.
    fn next_guess(&mut self) -> Op {
        let (op, left) = self.guess.take().expect("a guesser");
        if self.cmd.is_none() {
            self.guess = Some((op, left));
            return Op::Connect;
        }
        if left > 1 && self.session.is_none() {
            self.guess = Some((op.clone(), left - 1));
        }
        op
    }

    fn perform(&mut self, op: Op, acts: &mut Vec<Act>) {
        match op {
            Op::Connect if self.cmd.is_none() => acts.push(Act::Connect(Channel::Command)),
            Op::Connect | Op::Idle => {}
            Op::Disconnect => {
                if let Some(side) = self.relay.take() {
                    acts.push(Act::Close(side.conn));
                }
                if let Some(side) = self.cmd.take() {
                    acts.push(Act::Close(side.conn));
                    acts.push(Act::Lost(side.conn));
                }
                self.session = None;
            }
            Op::CloseRelay => {
                if let Some(side) = self.relay.take() {
                    acts.push(Act::Close(side.conn));
                }
            }
            Op::Relay { ticket: false } => {
                if let (None, Some(name)) = (&self.relay, &self.session) {
                    self.open_relay(name.clone().into_bytes(), false, acts);
                }
            }
            Op::RelayAs { name } => {
                if self.relay.is_none() {
                    if self.session.as_deref() != Some(name.as_str()) {
                        acts.push(Act::Count("hostile: bare handshake in another name"));
                    }
                    self.open_relay(name.into_bytes(), false, acts);
                }
            }
            Op::Relay { ticket: true } if self.relay.is_some() || self.session.is_none() => {}
            Op::Burst { to, count } => {
                acts.push(Act::Count("hostile: pipelined burst"));
                self.burst(&to, count, acts)
            }
            Op::Hostile(hostile) => self.hostile(hostile, acts),
            op => self.request(op, acts),
        }
    }

    fn open_relay(&mut self, hello: Vec<u8>, acks: bool, acts: &mut Vec<Act>) {
        self.relay_hello = Some(hello);
        self.relay_acks = acks;
        self.relay_hostile = None;
        acts.push(Act::Connect(Channel::Relay));
    }

    // ---- hostile acts ------------------------------------------------------------------------

    fn hostile(&mut self, hostile: Hostile, acts: &mut Vec<Act>) {
        match hostile {
            Hostile::AckForged | Hostile::AckEarly | Hostile::AckDup | Hostile::AckCross => {
                self.lying_ack(hostile, acts)
            }
            Hostile::TicketStolen | Hostile::TicketExpired | Hostile::TicketAfterLogout => {
                if self.cmd.is_none() || self.session.is_none() {
                    return;
                }
                // Without a relay, so that the ticket itself is what decides.
                if let Some(side) = self.relay.take() {
                    acts.push(Act::Close(side.conn));
                }
                self.lies.ticket_plan = Some(hostile);
                acts.push(Act::Hostile(Observation::Did(hostile)));
                self.request(Op::Relay { ticket: true }, acts);
            }
            Hostile::TicketHoard | Hostile::TicketEvicted => {
                if self.cmd.is_none() || self.session.is_none() || self.relay.is_some() {
                    return;
                }
                self.lies.hoard = Some(Vec::new());
                self.lies.hoard_evicted = hostile == Hostile::TicketEvicted;
                acts.push(Act::Hostile(Observation::Did(hostile)));
                self.request(Op::Relay { ticket: true }, acts);
            }
            Hostile::FrameDribbled => {
                if self.cmd.is_none() || self.doomed {
                    return;
                }
                acts.push(Act::Hostile(Observation::Did(hostile)));
                let mut frame = Vec::new();
                self.encode_request(Op::Help, &mut frame, acts);
                self.lies.dribble = Some((frame.into(), 0));
                acts.push(Act::Wake(0));
            }
            Hostile::TicketReplay => {
                let Some(hello) = self.lies.last_hello.clone() else { return };
                if let Some(side) = self.relay.take() {
                    acts.push(Act::Close(side.conn));
                }
                acts.push(Act::Hostile(Observation::Did(hostile)));
                self.open_relay(hello, true, acts);
                self.relay_hostile = Some(hostile);
            }
            Hostile::RelayHelloAtLimit | Hostile::RelayHelloOver => {
                // A handshake padded to the limit a relay has before it is bound (the one
                // before login): the client's name and a ticket nobody issued.
                let len = self.limits.frame_len_max_before_login
                    + usize::from(hostile == Hostile::RelayHelloOver);
                let name = self.session.clone().unwrap_or_else(|| "u0".to_owned());
                let mut hello = [name.as_bytes(), b"\n"].concat();
                hello.resize(len.max(hello.len()), b'x');
                hello.truncate(len);
                if let Some(side) = self.relay.take() {
                    acts.push(Act::Close(side.conn));
                }
                acts.push(Act::Hostile(Observation::Did(hostile)));
                self.open_relay(hello, false, acts);
                self.relay_hostile = Some(hostile);
            }
            Hostile::RelayAckAtLimit | Hostile::RelayAckOver => {
                self.relay_limit_frame(hostile, acts)
            }
            Hostile::Probe => {}
            frame => self.hostile_frame(frame, acts),
        }
    }

    /// Acknowledges on the ticketed relay an id that was not pushed to it (or already was).
    fn lying_ack(&mut self, hostile: Hostile, acts: &mut Vec<Act>) {
        let Some(side) = &self.relay else { return };
        if !self.relay_acks || side.hostile.is_some() {
            return;
        }
        let conn = side.conn;
        let lies = &self.lies;
        let id = match hostile {
            Hostile::AckForged => (1 << 40) + self.lies_rng.gen_range(0..1_000),
            Hostile::AckEarly => lies.relay_pushed_max + self.lies_rng.gen_range(1..=3),
            Hostile::AckDup => match lies.acked_last {
                Some(id) => id,
                None => return,
            },
            _ => {
                // An id below the newest one pushed here that was never pushed to this client.
                let Some(&newest) = lies.pushed.last() else { return };
                let guess = self.lies_rng.gen_range(1..=newest);
                match (guess..newest).find(|id| lies.pushed.binary_search(id).is_err()) {
                    Some(id) => id,
                    None => return,
                }
            }
        };
        let body = RelayFrame::Ack(id).body();
        // A forged id has more digits than a small relay limit allows.
        let over = body.len() > self.limits.relay_frame_len_max;
        acts.push(Act::Hostile(Observation::Ack { kind: hostile, conn: ConnNo(conn.0), id, over }));
        if let Some(side) = &mut self.relay {
            side.lied = true;
        }
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        acts.push(Act::Write(Channel::Relay, frame));
    }

    /// Writes on the client's bound ticketed relay (a push came on it) a malformed
    /// acknowledgement exactly at the relay's limit, or one byte over it followed by an
    /// acknowledgement of id 0, which the server answers only if it read past the first.
    fn relay_limit_frame(&mut self, hostile: Hostile, acts: &mut Vec<Act>) {
        let bound = self.relay.as_ref().is_some_and(|side| side.hostile.is_none())
            && self.relay_acks
            && self.lies.relay_pushed_max > 0;
        if !bound {
            // Written after the next push on a ticketed relay, if one comes.
            self.lies.relay_act = Some(hostile);
            return;
        }
        let Some(side) = &mut self.relay else { return };
        side.lied = true;
        let conn = side.conn;
        let over = hostile == Hostile::RelayAckOver;
        let mut body = b"7\n".to_vec();
        body.resize(self.limits.relay_frame_len_max + usize::from(over), b'x');
        let mut frame = Vec::new();
        encode(&body, &mut frame);
        if over {
            encode(b"7\n0", &mut frame);
        }
        acts.push(Act::Hostile(Observation::RelayFrame { kind: hostile, conn: ConnNo(conn.0) }));
        acts.push(Act::Write(Channel::Relay, frame));
    }

    /// Writes a hostile frame and, in the same write, a `help` probe: whether the probe is
    /// answered tells whether the connection stayed open.
    fn hostile_frame(&mut self, hostile: Hostile, acts: &mut Vec<Act>) {
        if self.cmd.is_none() {
            return;
        }
        if self.doomed {
            return self.think(acts);
        }
        let logged_in = self.session.is_some();
        let limit = if logged_in {
            self.limits.frame_len_max
        } else {
            self.limits.frame_len_max_before_login
        };
        let within_before_login = limit <= self.limits.frame_len_max_before_login;
        let mut out = Vec::new();
        let mut tag = None;
        let to = self.other_name();
        match hostile {
            Hostile::BadHeader(n) => {
                out.extend_from_slice(BAD_HEADERS[usize::from(n) % BAD_HEADERS.len()]);
                out.extend_from_slice(b"0\nxyz");
            }
            Hostile::FrameOver => {
                // An unknown code: were the frame served, its reply would still be a failure,
                // and only the probe tells that the connection stayed open.
                let mut body = String::from("9\n");
                body.extend(std::iter::repeat_n('x', limit + 1 - body.len()));
                out.extend_from_slice(format!("{:<10}", body.len()).as_bytes());
                out.extend_from_slice(body.as_bytes());
            }
            Hostile::FrameAtLimit => {
                // Logged in: a real message of the largest size, to be delivered. Not: a send
                // that must be answered "log in first".
                let text = if logged_in {
                    self.msg_seq += 1;
                    tag = Some((self.id, self.msg_seq));
                    tagged(self.id, self.msg_seq, "")
                } else {
                    String::new()
                };
                let body = padded_send(&to, &text, limit);
                let text = body.splitn(3, '\n').nth(2).unwrap_or_default().to_owned();
                acts.push(Act::Hostile(Observation::Frame {
                    kind: hostile,
                    tag,
                    within_before_login,
                }));
                let op = Op::Send { to: to.clone(), text };
                encode(body.as_bytes(), &mut out);
                acts.push(Act::Sent(op.clone()));
                self.awaiting.push_back(op);
            }
            Hostile::BadUtf8 => encode(b"2\nu0\n\xff\xfe hi", &mut out),
            Hostile::UnknownCode => encode(b"9\nx", &mut out),
            Hostile::EmptyText => encode(format!("2\n{to}\n").as_bytes(), &mut out),
            // A name outside the pool: were it registered, nobody would be owed anything.
            Hostile::ExtraField => encode(b"3\nxf\npw\nx", &mut out),
            _ => return,
        }
        if hostile != Hostile::FrameAtLimit {
            acts.push(Act::Hostile(Observation::Frame { kind: hostile, tag, within_before_login }));
            acts.push(Act::Sent(Op::Hostile(hostile)));
            self.awaiting.push_back(Op::Hostile(hostile));
        }
        encode(b"0", &mut out);
        acts.push(Act::Sent(Op::Hostile(Hostile::Probe)));
        self.awaiting.push_back(Op::Hostile(Hostile::Probe));
        acts.push(Act::Write(Channel::Command, out));
    }

    /// A pool name other than the client's own (`u0` or `u1`).
    fn other_name(&self) -> String {
        if self.session.as_deref().is_some_and(|me| me.eq_ignore_ascii_case("u0")) {
            "u1".to_owned()
        } else {
            "u0".to_owned()
        }
    }

    /// A handshake held until its ticket has expired: true while it holds the client.
    fn held_handshake(&mut self, now_ms: u64, acts: &mut Vec<Act>) -> bool {
        let Some((at, _)) = &mut self.lies.expired else { return false };
        if at.is_none() {
            // The hold starts at this wake-up: written down (as an idle step) so that a
            // scripted replay wakes here too.
            if let Some(record) = &mut self.record {
                record.push((now_ms, Op::Idle));
            }
        }
        // A whole lifetime after the ticket arrived (it was granted no later): the first
        // millisecond the client can tell it is expired. In an instant world that is its
        // expiry exactly, where a ticket that still binds lives a millisecond too long.
        let use_at = *at.get_or_insert(now_ms + self.limits.ticket_ttl_ms);
        if use_at > now_ms {
            acts.push(Act::Wake(use_at - now_ms));
            return true;
        }
        let (_, hello) = self.lies.expired.take().expect("checked");
        if self.relay.is_none() && self.session.is_some() {
            self.open_relay(hello, true, acts);
            self.relay_hostile = Some(Hostile::TicketExpired);
            return true;
        }
        false
    }

    /// An honest bare handshake held until the bare window after its login's reply has
    /// passed (true while it holds the client, or as it opens the relay). Where the server
    /// answers in the millisecond it reads (no latency, no writer's or hasher's delay), that
    /// reply came in the login's own millisecond, so the handshake is read at the last
    /// millisecond it must bind ("logged in moments ago": within the window, its end
    /// included); `check::bare` judges a refusal.
    fn held_bare(&mut self, now_ms: u64, acts: &mut Vec<Act>) -> bool {
        let Some(due_ms) = self.bare_due else { return false };
        if due_ms > now_ms {
            acts.push(Act::Wake(due_ms - now_ms));
            return true;
        }
        self.bare_due = None;
        if let (None, Some(name)) = (&self.relay, &self.session) {
            acts.push(Act::Count("bare handshake: at its window's end"));
            self.open_relay(name.clone().into_bytes(), false, acts);
        }
        self.think(acts);
        true
    }

    fn request(&mut self, op: Op, acts: &mut Vec<Act>) {
        if self.cmd.is_none() {
            return;
        }
        let mut frame = Vec::new();
        self.encode_request(op, &mut frame, acts);
        acts.push(Act::Write(Channel::Command, frame));
    }

    /// Writes `count` sends to `to` in one go, without waiting for their replies.
    fn burst(&mut self, to: &str, count: u32, acts: &mut Vec<Act>) {
        if self.cmd.is_none() {
            return;
        }
        let mut frames = Vec::new();
        for _ in 0..count {
            let op = Op::Send { to: to.to_owned(), text: "burst".into() };
            self.encode_request(op, &mut frames, acts);
        }
        acts.push(Act::Write(Channel::Command, frames));
    }

    /// Appends the frame of request `op` to `out` and notes it as sent and awaited.
    fn encode_request(&mut self, op: Op, out: &mut Vec<u8>, acts: &mut Vec<Act>) {
        let op = match op {
            Op::Send { to, text } => {
                self.msg_seq += 1;
                Op::Send { to, text: tagged(self.id, self.msg_seq, &text) }
            }
            op => op,
        };
        if let Some(observation) = Observation::of_request(&op) {
            acts.push(Act::Hostile(observation));
        }
        let start = out.len();
        encode_parts(&request_parts(&op), out);
        if self.spaced_headers {
            right_justify_header(&mut out[start..start + HEADER_LEN]);
        }
        self.awaiting.push_back(awaited(&op));
        acts.push(Act::Sent(op));
    }

    /// The world connected (or failed to connect) `chan`.
    pub fn attached(&mut self, chan: Channel, conn: Option<ConnId>, acts: &mut Vec<Act>) {
        match (chan, conn) {
            (Channel::Command, Some(conn)) => {
                let decoder = Decoder::new(FRAME_LEN_MAX);
                self.cmd = Some(Side { conn, decoder, hostile: None, lied: false });
                self.session = None;
                self.doomed = false;
                acts.push(Act::Connected);
                acts.push(Act::Wake(0));
            }
            (Channel::Command, None) => acts.push(Act::Wake(RETRY_MS)),
            (Channel::Relay, Some(conn)) => {
                let hostile = self.relay_hostile.take();
                let decoder = Decoder::new(FRAME_LEN_MAX);
                self.relay = Some(Side { conn, decoder, hostile, lied: false });
                self.lies.relay_pushed_max = 0;
                acts.push(Act::RelayOpened(conn));
                if let Some(kind) = hostile {
                    acts.push(Act::Hostile(Observation::Relay { kind, conn: ConnNo(conn.0) }));
                }
                if let Some(hello) = self.relay_hello.take() {
                    let mut frame = Vec::new();
                    encode(&hello, &mut frame);
                    acts.push(Act::Write(Channel::Relay, frame));
                }
            }
            (Channel::Relay, None) => self.relay_hello = None,
        }
    }

    /// Bytes arrived on `conn`.
    pub fn received(&mut self, now_ms: u64, conn: ConnId, bytes: &[u8], acts: &mut Vec<Act>) {
        if self.conn(Channel::Command) == Some(conn) {
            let side = self.cmd.as_mut().expect("checked");
            side.decoder.feed(bytes);
            while let Ok(Some(body)) = self.cmd.as_mut().map_or(Ok(None), |s| s.decoder.decode()) {
                self.reply(now_ms, body, acts);
            }
        } else if self.conn(Channel::Relay) == Some(conn) {
            let side = self.relay.as_mut().expect("checked");
            side.decoder.feed(bytes);
            while let Ok(Some(body)) = self.relay.as_mut().map_or(Ok(None), |s| s.decoder.decode())
            {
                self.push(conn, &body, acts);
            }
        }
    }

    fn reply(&mut self, now_ms: u64, body: Vec<u8>, acts: &mut Vec<Act>) {
        // A frame nobody asked for is a notice before a close (a timeout): nothing to check.
        self.last_failed = body.starts_with(b"-1\n");
        let Some(op) = self.awaiting.pop_front() else {
            self.doomed |= self.last_failed;
            return;
        };
        let ok = body.starts_with(b"0\n");
        let needs_login = body.strip_prefix(b"-1\n") == Some(NEEDS_LOGIN.as_bytes());
        let ticket = (ok && op == Op::Relay { ticket: true }).then(|| body[2..].to_vec());
        let guessed = matches!(&self.guess, Some((guess, _)) if *guess == op);
        let told_wait_s =
            guessed.then(|| super::spec::retry_after_s(&String::from_utf8_lossy(&body))).flatten();
        acts.push(Act::Reply(body));
        match &op {
            Op::Register { name, password } | Op::Login { name, password } if ok => {
                self.session = Some(name.clone());
                self.session_password.clone_from(password);
                self.logged_in_ms = now_ms;
            }
            Op::Delete { .. } | Op::Logout if ok => self.session = None,
            Op::Login { .. } if self.persistent => {
                if let Driver::Script(ops) = &mut self.driver {
                    ops.push_front((0, op.clone()));
                }
                return acts.push(Act::Wake(LOGIN_RETRY_MS));
            }
            Op::Relay { ticket: true } if ok && self.lies.hoard.is_some() => {
                self.hoard_ticket(ticket.unwrap_or_default(), acts)
            }
            Op::Relay { ticket: true } if ok => {
                self.lies.ticket_newer = 0;
                let plan = self.lies.ticket_plan.take();
                if let (None, Some(name), Some(ticket)) = (&self.relay, &self.session, ticket) {
                    let name = match plan {
                        Some(Hostile::TicketStolen) => self.other_name(),
                        _ => name.clone(),
                    };
                    let hello = [name.as_bytes(), b"\n", &ticket].concat();
                    match plan {
                        Some(Hostile::TicketAfterLogout) => {
                            let (name, password) = (name, self.session_password.clone());
                            let plan = AfterLogout { name, password, hello, logged_out: false };
                            self.lies.after_logout = Some(plan);
                            self.request(Op::Logout, acts);
                        }
                        Some(Hostile::TicketExpired) => {
                            // The hold starts now, as the ticket arrives (see `held_handshake`).
                            self.lies.expired = Some((None, hello));
                            acts.push(Act::Wake(0));
                        }
                        Some(hostile) => {
                            self.open_relay(hello, true, acts);
                            self.relay_hostile = Some(hostile);
                        }
                        None => {
                            self.lies.last_hello = None;
                            self.lies.unproven_hello = Some(hello.clone());
                            self.open_relay(hello, true, acts);
                        }
                    }
                }
            }
            _ => {}
        }
        if needs_login {
            self.session = None;
        }
        if !ok && op == (Op::Relay { ticket: true }) {
            self.lies.hoard = None;
        }
        self.after_logout(&op, ok, acts);
        if self.awaiting.is_empty() {
            if guessed {
                // A patient guesser waits exactly as long as it is told, then guesses again.
                acts.push(Act::Wake(told_wait_s.unwrap_or(0) * 1000));
            } else {
                self.think(acts);
            }
        }
    }

    /// `ticket-after-logout`, after the reply to `op`: the logout answered, it logs in again
    /// on the same connection; logged in, it opens a relay with the ended session's ticket,
    /// which must be refused. Any other reply ends the plan.
    fn after_logout(&mut self, op: &Op, ok: bool, acts: &mut Vec<Act>) {
        let Some(mut plan) = self.lies.after_logout.take() else { return };
        match op {
            Op::Logout if ok && !plan.logged_out => {
                plan.logged_out = true;
                let login = Op::Login { name: plan.name.clone(), password: plan.password.clone() };
                self.lies.after_logout = Some(plan);
                self.request(login, acts);
            }
            Op::Login { .. } if ok && plan.logged_out && self.relay.is_none() => {
                self.open_relay(plan.hello, true, acts);
                self.relay_hostile = Some(Hostile::TicketAfterLogout);
            }
            // The ticket's own reply, which began the plan.
            Op::Relay { ticket: true } if !plan.logged_out => self.lies.after_logout = Some(plan),
            _ => {}
        }
    }

    /// A hoarder got ticket `ticket`: it asks for the next, or, with one more than its session
    /// may hold, opens its relay with the second newest (the newest if it may hold one), or
    /// for `ticket-evicted` with the oldest, which the newest evicted.
    fn hoard_ticket(&mut self, ticket: Vec<u8>, acts: &mut Vec<Act>) {
        let mut hoard = self.lies.hoard.take().unwrap_or_default();
        hoard.push(ticket);
        let Some(name) = self.session.clone().filter(|_| self.relay.is_none()) else { return };
        if hoard.len() <= self.limits.tickets_per_session_max {
            self.lies.hoard = Some(hoard);
            return self.request(Op::Relay { ticket: true }, acts);
        }
        if self.lies.hoard_evicted {
            let hello = [name.as_bytes(), b"\n", &hoard[0]].concat();
            self.open_relay(hello, true, acts);
            self.relay_hostile = Some(Hostile::TicketEvicted);
            return;
        }
        let newer = usize::from(self.limits.tickets_per_session_max >= 2);
        let ticket = &hoard[hoard.len() - 1 - newer];
        let hello = [name.as_bytes(), b"\n", ticket].concat();
        self.lies.ticket_newer = newer;
        self.lies.last_hello = None;
        self.lies.unproven_hello = Some(hello.clone());
        self.open_relay(hello, true, acts);
    }

    fn push(&mut self, conn: ConnId, body: &[u8], acts: &mut Vec<Act>) {
        let Push { id, sender, text } = match parse_push(body) {
            Ok(push) => push,
            // The server ending the relay is not a push; its close follows. On a hostile
            // relay it is the refusal the checker expects.
            Err(ClientError::RelayEnded(text)) => {
                let side = self.relay.as_ref().filter(|s| s.conn == conn);
                if side.is_some_and(|s| s.hostile.is_some()) {
                    acts.push(Act::Hostile(Observation::RelayRefused {
                        conn: ConnNo(conn.0),
                        text,
                    }));
                } else if side.is_some_and(|s| s.lied) {
                    acts.push(Act::Hostile(Observation::RelayFailure {
                        conn: ConnNo(conn.0),
                        text,
                    }));
                } else if side.is_some() && self.relay_acks {
                    // An honest ticketed handshake refused: the checker judges whether its
                    // ticket should have bound.
                    let newer = self.lies.ticket_newer;
                    let conn = ConnNo(conn.0);
                    acts.push(Act::Hostile(Observation::TicketRefused { conn, text, newer }));
                } else if side.is_some() && !self.relay_acks && text.starts_with("Relay refused") {
                    // A refused bare handshake is simply closed (PROTOCOL.md): the original
                    // client would show this frame as a message, so it is handed on as one.
                    acts.push(Act::Push { conn, sender: String::new(), text });
                }
                return;
            }
            // Anything else on a relay is handed to the checker as it came, which reports it
            // as something delivered that was never sent.
            Err(_) => {
                let text = String::from_utf8_lossy(body).into_owned();
                Push { id: None, sender: String::new(), text }
            }
        };
        acts.push(Act::Push { conn, sender, text });
        let honest = self.relay.as_ref().is_some_and(|s| s.hostile.is_none());
        if let (Some(id), true, true) = (id, self.relay_acks, honest) {
            let lies = &mut self.lies;
            if let Some(hello) = lies.unproven_hello.take() {
                lies.last_hello = Some(hello);
            }
            lies.relay_pushed_max = lies.relay_pushed_max.max(id);
            lies.acked_last = Some(id);
            if let Err(at) = lies.pushed.binary_search(&id) {
                lies.pushed.insert(at, id);
            }
            let mut frame = Vec::new();
            encode(RelayFrame::Ack(id).body().as_bytes(), &mut frame);
            acts.push(Act::Write(Channel::Relay, frame));
            if let Some(hostile) = self.lies.relay_act.take() {
                self.relay_limit_frame(hostile, acts);
            }
        }
    }

    /// `conn` was closed by the server or reset.
    pub fn closed(&mut self, conn: ConnId, acts: &mut Vec<Act>) {
        if self.conn(Channel::Command) == Some(conn) {
            self.cmd = None;
            self.session = None;
            self.lies.hoard = None;
            self.lies.dribble = None;
            self.lies.after_logout = None;
            let unanswered = self.awaiting.len();
            // A persistent client (the liveness phase's) whose login was cut off (a login
            // deadline while it waited out the throttle) logs in again on its next connection.
            let login = self.awaiting.iter().find(|op| matches!(op, Op::Login { .. })).cloned();
            if let (true, Some(login), Driver::Script(ops)) =
                (self.persistent, login, &mut self.driver)
            {
                ops.push_front((0, login));
            }
            self.awaiting.clear();
            acts.push(Act::Dropped { conn, unanswered, noticed: self.last_failed });
            self.last_failed = false;
            acts.push(Act::Lost(conn));
            // A persistent client refused at the door (a connection cap) tries again later,
            // not at once: with no latency that would be a loop in one simulated instant.
            if self.persistent {
                acts.push(Act::Wake(LOGIN_RETRY_MS));
            } else {
                self.think(acts);
            }
        } else if self.conn(Channel::Relay) == Some(conn) {
            if self.relay.take().is_some_and(|s| s.hostile.is_some()) {
                acts.push(Act::Hostile(Observation::RelayClosed { conn: ConnNo(conn.0) }));
                // Nothing else will wake a client whose hostile relay was its last act (an
                // expired ticket held for its lifetime, say): it goes on with its workload.
                return self.think(acts);
            }
            // A persistent client (the liveness phase's) needs its relay back: a refused
            // handshake (an expired ticket) or a closed relay is tried again, a little later.
            if let (true, Some(_), Driver::Script(ops)) =
                (self.persistent, &self.session, &mut self.driver)
            {
                ops.push_front((0, Op::Relay { ticket: true }));
                acts.push(Act::Wake(RETRY_MS));
            }
        }
    }
}

fn needs_command(op: &Op) -> bool {
    !matches!(
        op,
        Op::Connect
            | Op::Disconnect
            | Op::Idle
            | Op::CloseRelay
            | Op::RelayAs { .. }
            | Op::Hostile(
                Hostile::AckForged
                    | Hostile::AckEarly
                    | Hostile::AckDup
                    | Hostile::AckCross
                    | Hostile::RelayHelloAtLimit
                    | Hostile::RelayHelloOver
                    | Hostile::RelayAckAtLimit
                    | Hostile::RelayAckOver
            )
    )
}

/// Rewrites a frame's left-justified header (`5         `) right-justified (`         5`).
fn right_justify_header(header: &mut [u8]) {
    let digits: Vec<u8> = header.iter().copied().filter(|b| *b != b' ').collect();
    let spaces = header.len() - digits.len();
    header[..spaces].fill(b' ');
    header[spaces..].copy_from_slice(&digits);
}

/// The body of a send to `to` whose text is `text` padded with `x` so that the body is
/// `len` bytes long (or `text` alone if that is already longer).
fn padded_send(to: &str, text: &str, len: usize) -> String {
    let head = ["2\n", to, "\n", text].concat();
    let space = if text.is_empty() { 0 } else { 1 };
    let pad = len.saturating_sub(head.len() + space);
    let mut body = head;
    if pad > 0 {
        if space == 1 {
            body.push(' ');
        }
        // A line break inside: PROTOCOL.md's text is everything after the recipient line.
        body.extend((0..pad).map(|i| if pad >= 3 && i == pad / 2 { '\n' } else { 'x' }));
    }
    body
}

/// The frame body of a request.
/// `#ID.SEQ TEXT` (or just the tag for an empty text): the text that makes a message traceable.
/// Built without `format!`, which costs more than the rest of a send here.
fn tagged(id: usize, seq: u64, text: &str) -> String {
    let (mut id_digits, mut seq_digits) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (id, seq) = (id_digits.format(id), seq_digits.format(seq));
    let space = if text.is_empty() { "" } else { " " };
    ["#", id, ".", seq, space, text].concat()
}

/// What the client keeps of a request it awaits the reply to. Its reply to a send needs only
/// that it was one (a send's strings go to the checker alone), so they are not copied.
fn awaited(op: &Op) -> Op {
    match op {
        Op::Send { .. } => Op::Send { to: String::new(), text: String::new() },
        op => op.clone(),
    }
}

/// The body of `op`'s request as parts to concatenate: the bytes of
/// [`crate::wire::Request::body`] for the same request, framed without building the body or
/// cloning the op's strings (the simulator's clients send one per operation).
fn request_parts(op: &Op) -> [&[u8]; 4] {
    fn pair<'a>(code: &'static [u8], a: &'a str, b: &'a str) -> [&'a [u8]; 4] {
        [code, a.as_bytes(), b"\n", b.as_bytes()]
    }
    match op {
        Op::Help => [b"0\n", b"", b"", b""],
        Op::Login { name, password } => pair(b"1\n", name, password),
        Op::Send { to, text } => pair(b"2\n", to, text),
        Op::Register { name, password } => pair(b"3\n", name, password),
        Op::List { pattern } => [b"4\n", pattern.as_bytes(), b"", b""],
        Op::Delete { name, password } => pair(b"5\n", name, password),
        Op::Logout => [b"-1\n", b"", b"", b""],
        Op::Relay { ticket: true } => [b"6\n", b"", b"", b""],
        other => unreachable!("{other} is not a request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Request;

    #[test]
    fn request_parts_are_the_request_body() {
        let (name, password, text) = ("alice".to_owned(), "pw".to_owned(), "#1.2 hi".to_owned());
        let cases = [
            (Op::Help, Request::Help),
            (
                Op::Login { name: name.clone(), password: password.clone() },
                Request::Login { name: name.clone(), password: password.clone() },
            ),
            (
                Op::Send { to: name.clone(), text: text.clone() },
                Request::Send { to: name.clone(), text: text.clone() },
            ),
            (
                Op::Register { name: name.clone(), password: password.clone() },
                Request::Register { name: name.clone(), password: password.clone() },
            ),
            (Op::List { pattern: "a*".into() }, Request::List { pattern: "a*".into() }),
            (
                Op::Delete { name: name.clone(), password: password.clone() },
                Request::Delete { name, password },
            ),
            (Op::Logout, Request::Logout),
            (Op::Relay { ticket: true }, Request::Ticket),
        ];
        for (op, request) in cases {
            assert_eq!(request_parts(&op).concat(), request.body().into_bytes(), "{op}");
        }
    }
}
