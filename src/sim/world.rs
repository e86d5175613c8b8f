//! The world: an event queue in simulated time, the real [`Server`] behind the same glue the TCP
//! adapter runs, and the clients, network, disk and fault injector around it.
//!
//! Events are ordered by (time, sequence number) and time jumps over idle gaps. The server glue
//! mirrors `net`: password jobs run off the core and come back after a delay (the hashing
//! thread), records go to the store and `Durable` comes back when the fsync completes, and each
//! connection has a writer that drains the core's replies and pushes after a delay (the relay
//! thread) and reports `Written`. Those delays are drawn from the seed, so the races between a
//! client's command and relay threads are reachable and repeatable.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use crate::auth::{HashCost, Hasher};
use crate::core::{
    AccountId, Channel, Config, ConnId, Event, Input, JobId, MsgId, Output, PasswordOutcome, Peer,
    Record, Server,
};
use crate::wire::HEADER_LEN;

use super::check::{Checker, Violation};
use super::client::{Act, Client, Driver};
#[cfg(test)]
use super::disk::MemStore;
use super::disk::{SimStore, WalStore};
use super::net::{Due, Net, Way};
use super::options::{FaultMix, RunOptions};
use super::queue::Queue;
use super::rng::{child, Stream};
use super::scenario::{Action, Chan, Dir, Op, Scenario};
use super::trace::{Line, Trace};

/// What one run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub seed: u64,
    pub mix: FaultMix,
    pub events: u64,
    pub sim_ms: u64,
    pub hash: u64,
    /// Pushes received by clients.
    pub delivered: u64,
    pub checks: u64,
    pub crashes: u64,
    pub violation: Option<Violation>,
    /// The trace's lines, when kept.
    pub trace: Vec<String>,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        conn: u64,
        way: Way,
    },
    Flush {
        conn: u64,
        epoch: u64,
    },
    /// The outcome is boxed: it is rare, and it would double the size of every queued event.
    Password {
        job: JobId,
        outcome: Box<PasswordOutcome>,
        epoch: u64,
    },
    Sync {
        epoch: u64,
    },
    Tick {
        epoch: u64,
    },
    Wake {
        client: usize,
    },
    Fault,
    Step {
        index: usize,
    },
    Restart {
        epoch: u64,
    },
    LivenessEnd,
}

#[derive(Debug)]
enum Item {
    Frame { bytes: Vec<u8>, msg: Option<MsgId> },
    Close,
}

#[derive(Debug)]
struct Writer {
    items: VecDeque<Item>,
    scheduled: bool,
    slow: bool,
}

struct Up {
    core: Server,
    writers: BTreeMap<u64, Writer>,
    sync_scheduled: bool,
    tick_at_ms: Option<u64>,
    /// Per command connection, the session when each reply was released.
    reply_sessions: BTreeMap<u64, VecDeque<Option<AccountId>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ops,
    Liveness,
    Done,
}

/// Log bytes after which the store compacts into a snapshot (small, so runs exercise it).
const SNAPSHOT_LOG_BYTES_MIN: u64 = 4 * 1024;

/// Simulated time after which the workload is cut short and the liveness phase begins.
const OPS_MS_MAX: u64 = 600_000;

/// One simulated world.
pub struct World {
    seed: u64,
    now_ms: u64,
    queue: Queue<Ev>,
    opts: RunOptions,
    mix: FaultMix,
    config: Config,
    net: Net,
    server: Option<Up>,
    store: Box<dyn SimStore + Send>,
    epoch: u64,
    disk_rng: ChaCha20Rng,
    fault_rng: ChaCha20Rng,
    timing_rng: ChaCha20Rng,
    hasher: Hasher,
    clients: Vec<Client>,
    checker: Checker,
    trace: Trace,
    next_conn: u64,
    phase: Phase,
    steps: Vec<Action>,
    steps_left: usize,
    crashes: u64,
    arrivals: Vec<u64>,
    acts: Vec<Act>,
    /// What each client saw, when driven by hand.
    transcripts: Option<BTreeMap<usize, Vec<Seen>>>,
}

/// A reply or push a client received, recorded when the world is driven by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Reply(String),
    /// `SENDER:TEXT`.
    Push(String),
}

impl World {
    /// A world of random clients for `seed`.
    pub fn random(seed: u64, opts: RunOptions) -> Self {
        let mix = FaultMix::for_mode(opts.faults, &mut child(seed, Stream::Mix, 0));
        let mut world = World::empty(seed, mix, opts);
        for _ in 0..world.opts.clients {
            let (ops_left, names) = (world.opts.ops, world.opts.names);
            let driver = Driver::Random { ops_left, names, workload: world.opts.workload };
            world.add_client(driver, 0);
        }
        if mix.fault_interval_ms > 0
            && mix.reset_weight + mix.partition_weight + mix.crash_weight > 0
        {
            let at = world.fault_rng.gen_range(1..=2 * mix.fault_interval_ms);
            world.schedule(at, Ev::Fault);
        }
        world
    }

    /// A world that plays `scenario`.
    pub fn scripted(scenario: &Scenario, opts: RunOptions) -> Self {
        let mut world = World::empty(scenario.seed, scenario.mix, opts);
        let mut scripts = vec![VecDeque::new(); scenario.clients];
        for step in &scenario.steps {
            match &step.action {
                Action::Client { client, op } => {
                    scripts[*client].push_back((step.at_ms, op.clone()))
                }
                other => {
                    world.steps.push(other.clone());
                    let index = world.steps.len() - 1;
                    world.schedule(step.at_ms, Ev::Step { index });
                }
            }
        }
        world.steps_left = world.steps.len();
        for script in scripts {
            let first = script.front().map_or(0, |(at, _)| *at);
            world.add_client(Driver::Script(script), first);
        }
        world
    }

    fn empty(seed: u64, mix: FaultMix, opts: RunOptions) -> Self {
        #[allow(unused_mut)]
        let mut config = Config { bare_relay_allowed: true, ..Config::default() };
        #[allow(unused_mut)]
        let mut store: Box<dyn SimStore + Send> =
            Box::new(WalStore::new(mix.torn_writes > 0, SNAPSHOT_LOG_BYTES_MIN));
        #[cfg(test)]
        {
            config.planted = opts.planted;
            if opts.planted == crate::core::planted::Planted::ReplayTornRecord {
                store = Box::new(MemStore::replaying_torn_records());
            }
        }
        let core = Server::new(config.clone(), child(seed, Stream::Server, 0));
        let checker = Checker::new(config.login_failure_window_ms, config.bare_relay_window_ms);
        World {
            seed,
            now_ms: 0,
            queue: Queue::default(),
            trace: Trace::new(opts.keep_trace),
            opts,
            mix,
            config,
            net: Net::new(child(seed, Stream::Net, 0), mix),
            server: Some(Up::new(core)),
            store,
            epoch: 0,
            disk_rng: child(seed, Stream::Disk, 0),
            fault_rng: child(seed, Stream::Faults, 0),
            timing_rng: child(seed, Stream::Timing, 0),
            hasher: Hasher::new(HashCost::CHEAPEST).expect("the cheapest cost is valid"),
            clients: Vec::new(),
            checker,
            next_conn: 1,
            phase: Phase::Ops,
            steps: Vec::new(),
            steps_left: 0,
            crashes: 0,
            arrivals: Vec::new(),
            acts: Vec::new(),
            transcripts: None,
        }
    }

    /// A world without clients, driven by hand through [`World::perform`].
    pub fn manual(seed: u64, mix: FaultMix) -> Self {
        let mut world = World::empty(seed, mix, RunOptions::default());
        world.transcripts = Some(BTreeMap::new());
        world
    }

    /// Adds a scripted client with no operations yet; returns its number.
    pub fn add_manual_client(&mut self) -> usize {
        self.add_client(Driver::Script(VecDeque::new()), self.now_ms)
    }

    /// Has `client` perform `op` now and runs the world until the client is idle again (or
    /// `wait_ms_max` of simulated time passed); returns what it saw meanwhile.
    pub fn perform(&mut self, client: usize, op: Op, wait_ms_max: u64) -> Vec<Seen> {
        self.clients[client].push_op(self.now_ms, op);
        self.wake(client, self.now_ms);
        let deadline_ms = self.now_ms + wait_ms_max;
        while !self.clients[client].is_done() && self.step(deadline_ms) {}
        self.take_seen(client)
    }

    /// Runs the world until `until` holds for what `client` saw, or `wait_ms_max` passed.
    pub fn wait_for(
        &mut self,
        client: usize,
        wait_ms_max: u64,
        until: impl Fn(&[Seen]) -> bool,
    ) -> Vec<Seen> {
        let deadline_ms = self.now_ms + wait_ms_max;
        loop {
            let seen = self.transcripts.as_ref().and_then(|t| t.get(&client));
            if until(seen.map_or(&[], Vec::as_slice)) || !self.step(deadline_ms) {
                return self.take_seen(client);
            }
        }
    }

    fn take_seen(&mut self, client: usize) -> Vec<Seen> {
        self.transcripts.as_mut().and_then(|t| t.remove(&client)).unwrap_or_default()
    }

    fn see(&mut self, client: usize, seen: Seen) {
        if let Some(transcripts) = &mut self.transcripts {
            transcripts.entry(client).or_default().push(seen);
        }
    }

    /// Handles the next event if it is due by `deadline_ms`; false if there is none.
    fn step(&mut self, deadline_ms: u64) -> bool {
        if self.queue.peek_time().is_none_or(|at_ms| at_ms > deadline_ms) {
            return false;
        }
        let (at_ms, ev) = self.queue.pop().expect("peeked");
        self.now_ms = at_ms;
        self.handle(ev);
        true
    }

    /// The first violation so far, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.checker.violation()
    }

    fn add_client(&mut self, driver: Driver, wake_ms: u64) -> usize {
        let id = self.clients.len();
        let rng = child(self.seed, Stream::Client, id as u64);
        self.clients.push(Client::new(id, driver, rng, self.mix.slow_reader_percent));
        self.wake(id, wake_ms);
        id
    }

    fn schedule(&mut self, at_ms: u64, ev: Ev) {
        self.queue.push(at_ms.max(self.now_ms), ev);
    }

    fn wake(&mut self, client: usize, at_ms: u64) {
        let c = &mut self.clients[client];
        if c.wake_at.is_some_and(|w| w <= at_ms && w >= self.now_ms) {
            return;
        }
        c.wake_at = Some(at_ms);
        self.schedule(at_ms, Ev::Wake { client });
    }

    /// Runs to the end and reports.
    pub fn run(mut self) -> Outcome {
        while let Some((at_ms, ev)) = self.queue.pop() {
            self.now_ms = at_ms;
            if self.phase == Phase::Ops && self.now_ms > OPS_MS_MAX {
                self.begin_liveness();
            }
            self.handle(ev);
            if self.checker.violation().is_some() || self.phase == Phase::Done {
                break;
            }
            if self.phase == Phase::Ops
                && self.steps_left == 0
                && self.clients.iter().all(Client::is_done)
            {
                self.begin_liveness();
            }
        }
        if self.phase != Phase::Done && self.checker.violation().is_none() {
            self.checker.finish(self.now_ms);
        }
        Outcome {
            seed: self.seed,
            mix: self.mix,
            events: self.trace.events(),
            sim_ms: self.now_ms,
            hash: self.trace.hash(),
            delivered: self.checker.delivered,
            checks: self.checker.checks,
            crashes: self.crashes,
            violation: self.checker.violation().cloned(),
            trace: self.trace.into_lines(),
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { conn, way } => self.deliver(conn, way),
            Ev::Flush { conn, epoch } if epoch == self.epoch => self.flush(conn),
            Ev::Password { job, outcome, epoch } if epoch == self.epoch => {
                self.trace.line(self.now_ms, Line::Hashed { job: job.0 });
                self.feed(Event::PasswordDone { job, outcome: *outcome });
            }
            Ev::Sync { epoch } if epoch == self.epoch => self.synced(),
            Ev::Tick { epoch } if epoch == self.epoch => self.tick(),
            Ev::Wake { client } if self.clients[client].wake_at == Some(self.now_ms) => {
                self.clients[client].wake_at = None;
                let mut acts = std::mem::take(&mut self.acts);
                self.clients[client].wake(self.now_ms, &mut acts);
                self.carry_out(client, acts);
            }
            Ev::Fault if self.phase == Phase::Ops => self.inject_fault(),
            Ev::Step { index } => {
                self.steps_left -= 1;
                let action = self.steps[index].clone();
                self.apply_fault(action);
            }
            Ev::Restart { epoch } if epoch == self.epoch => self.restart(),
            Ev::LivenessEnd => {
                self.trace.line(self.now_ms, Line::LivenessEnd);
                self.checker.finish(self.now_ms);
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    // ---- clients -------------------------------------------------------------------------------

    fn carry_out(&mut self, client: usize, mut acts: Vec<Act>) {
        let mut i = 0;
        while i < acts.len() {
            let act = std::mem::replace(&mut acts[i], Act::Wake(u64::MAX));
            i += 1;
            let mut more = Vec::new();
            self.act(client, act, &mut more);
            acts.extend(more);
        }
        acts.clear();
        self.acts = acts;
    }

    fn act(&mut self, client: usize, act: Act, more: &mut Vec<Act>) {
        let now = self.now_ms;
        match act {
            Act::Connect(chan) => {
                let conn = self.connect(client, chan);
                self.clients[client].attached(chan, conn, more);
            }
            Act::Write(chan, bytes) => {
                if let Some(conn) = self.clients[client].conn(chan) {
                    self.trace.line(now, Line::Write { client, conn, len: bytes.len() });
                    self.send(conn, Way::Up, bytes);
                }
            }
            Act::Close(conn) => {
                self.trace.line(now, Line::Close { client, conn });
                if let Some(at) = self.net.send_eof(now, conn, Way::Up) {
                    self.schedule(at, Ev::Deliver { conn, way: Way::Up });
                }
            }
            Act::Wake(u64::MAX) => {}
            Act::Wake(delay) => self.wake(client, now + delay),
            Act::Connected => self.checker.connected(client),
            Act::Sent(op) => {
                self.trace.line(now, Line::Sent { client, op: &op });
                self.checker.sent(now, client, op);
            }
            Act::Reply(body) => {
                let conn = self.clients[client].conn(Chan::Command).unwrap_or(0);
                let account = self
                    .server
                    .as_mut()
                    .and_then(|s| s.reply_sessions.get_mut(&conn))
                    .and_then(VecDeque::pop_front)
                    .flatten();
                self.trace.line(now, Line::Reply { client, body: &body });
                self.checker.replied(now, client, &body, account);
                if self.transcripts.is_some() {
                    self.see(client, Seen::Reply(String::from_utf8_lossy(&body).into_owned()));
                }
            }
            Act::Lost => {
                self.trace.line(now, Line::Lost { client });
                self.checker.disconnected(now, client);
            }
            Act::RelayOpened(conn) => self.checker.relay_opened(now, client, conn),
            Act::Push { conn, sender, text } => {
                self.trace.line(now, Line::Push { client, conn, sender: &sender, text: &text });
                self.checker.pushed(now, conn, &sender, &text);
                if self.transcripts.is_some() {
                    self.see(client, Seen::Push(format!("{sender}:{text}")));
                }
                if self.phase == Phase::Liveness && self.checker.owed_len() == 0 {
                    self.trace.line(now, Line::LivenessMet);
                    self.checker.finish(now);
                    self.phase = Phase::Done;
                }
            }
        }
    }

    /// Opens a connection for `client`, or refuses it while the server is down.
    fn connect(&mut self, client: usize, chan: Chan) -> Option<u64> {
        let now = self.now_ms;
        if self.server.is_none() {
            self.trace.line(now, Line::Refused { client, chan });
            return None;
        }
        let conn = self.next_conn;
        self.next_conn += 1;
        self.net.open(conn, client, chan);
        self.trace.line(now, Line::Open { client, chan, conn });
        let slow = chan == Chan::Relay && self.clients[client].slow_reader;
        let up = self.server.as_mut().expect("checked above");
        up.writers.insert(conn, Writer { items: VecDeque::new(), scheduled: false, slow });
        let channel = match chan {
            Chan::Command => Channel::Command,
            Chan::Relay => Channel::Relay,
        };
        let peer = Peer(client as u128 + 1);
        self.feed(Event::Opened { conn: ConnId(conn), channel, peer });
        Some(conn)
    }

    fn send(&mut self, conn: u64, way: Way, bytes: Vec<u8>) -> bool {
        let mut arrivals = std::mem::take(&mut self.arrivals);
        let sent = self.net.send(self.now_ms, conn, way, bytes, &mut arrivals);
        for &at in &arrivals {
            self.schedule(at, Ev::Deliver { conn, way });
        }
        arrivals.clear();
        self.arrivals = arrivals;
        sent
    }

    fn deliver(&mut self, conn: u64, way: Way) {
        let owner = self.net.owner(conn);
        let arrival = match self.net.take_due(self.now_ms, conn, way) {
            Due::Nothing => return,
            Due::Held { until_ms } => return self.schedule(until_ms, Ev::Deliver { conn, way }),
            Due::Arrived(arrival) => arrival,
        };
        let now = self.now_ms;
        let (len, eof) = (arrival.bytes.len(), arrival.eof);
        self.trace.line(now, Line::Deliver { conn, way, len, eof });
        match way {
            Way::Up => {
                if !arrival.bytes.is_empty() {
                    self.feed(Event::Received { conn: ConnId(conn), bytes: &arrival.bytes });
                }
                if eof {
                    self.server_lost(conn);
                }
            }
            Way::Down => {
                let Some((client, _)) = owner else { return };
                let mut acts = std::mem::take(&mut self.acts);
                if !arrival.bytes.is_empty() {
                    self.clients[client].received(conn, &arrival.bytes, &mut acts);
                }
                if eof {
                    self.clients[client].closed(conn, &mut acts);
                }
                self.carry_out(client, acts);
            }
        }
    }

    /// The server side of `conn` is gone: forget its writer, tell the core.
    fn server_lost(&mut self, conn: u64) {
        let Some(up) = &mut self.server else { return };
        if up.writers.remove(&conn).is_some() {
            up.reply_sessions.remove(&conn);
            self.feed(Event::Closed { conn: ConnId(conn) });
        }
    }

    // ---- the server and its glue -----------------------------------------------------------------

    fn feed(&mut self, event: Event<'_>) {
        let Some(up) = &mut self.server else { return };
        up.core.handle_input(Input { now_ms: self.now_ms, event });
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(output) = self.server.as_mut().and_then(|up| up.core.poll_output()) {
            self.output(output);
        }
        self.arm_tick();
    }

    fn output(&mut self, output: Output) {
        let now = self.now_ms;
        match output {
            Output::Persist { lsn, record } => {
                self.trace.line(now, Line::Persist { lsn: lsn.0, record: &record });
                if let Record::Message { text, to, .. } = &record {
                    self.checker.persisted_message(text, *to);
                }
                self.store.append(lsn, &record);
                let up = self.server.as_mut().expect("outputs come from a live server");
                if !up.sync_scheduled {
                    up.sync_scheduled = true;
                    let delay = self.timing_rng.gen_range(0..=self.mix.fsync_ms_max);
                    self.schedule(now + delay, Ev::Sync { epoch: self.epoch });
                }
            }
            Output::Password(job) => {
                let outcome = self.hasher.run(&job);
                let delay = self.timing_rng.gen_range(0..=self.mix.hash_ms_max);
                let ev =
                    Ev::Password { job: job.job, outcome: Box::new(outcome), epoch: self.epoch };
                self.schedule(now + delay, ev);
            }
            Output::Reply { conn, frame } => {
                let up = self.server.as_mut().expect("outputs come from a live server");
                if self.net.owner(conn.0).is_some_and(|(_, chan)| chan == Chan::Command) {
                    let session = up.core.session_of(conn);
                    up.reply_sessions.entry(conn.0).or_default().push_back(session);
                }
                self.enqueue(conn.0, Item::Frame { bytes: frame, msg: None });
            }
            Output::Push { conn, msg, frame } => {
                self.enqueue(conn.0, Item::Frame { bytes: frame, msg: Some(msg) })
            }
            Output::Close { conn } => self.enqueue(conn.0, Item::Close),
        }
    }

    fn enqueue(&mut self, conn: u64, item: Item) {
        let up = self.server.as_mut().expect("outputs come from a live server");
        let Some(writer) = up.writers.get_mut(&conn) else { return };
        writer.items.push_back(item);
        if !writer.scheduled {
            writer.scheduled = true;
            let max =
                if writer.slow { self.mix.slow_reader_ms_max } else { self.mix.writer_ms_max };
            let delay = self.timing_rng.gen_range(0..=max);
            self.schedule(self.now_ms + delay, Ev::Flush { conn, epoch: self.epoch });
        }
    }

    /// The writer of `conn` gets to its queue: writes it, reports `Written`, then any close.
    fn flush(&mut self, conn: u64) {
        let Some(up) = &mut self.server else { return };
        let Some(writer) = up.writers.get_mut(&conn) else { return };
        writer.scheduled = false;
        let mut items = std::mem::take(&mut writer.items);
        let (mut last, mut close) = (None, false);
        for item in items.drain(..) {
            match item {
                Item::Frame { bytes, msg } => {
                    let plain_tag = msg.and_then(|_| plain_push_tag(&bytes));
                    if !self.send(conn, Way::Down, bytes) {
                        continue;
                    }
                    if let Some(msg) = msg {
                        last = Some(msg);
                        if let Some(tag) = plain_tag {
                            self.checker.written_plain(tag);
                        }
                    }
                }
                Item::Close => {
                    close = true;
                    break;
                }
            }
        }
        // The emptied queue goes back, so the writer keeps its capacity.
        if let Some(writer) = self.server.as_mut().and_then(|up| up.writers.get_mut(&conn)) {
            if writer.items.is_empty() {
                writer.items = items;
            }
        }
        self.trace.line(self.now_ms, Line::Flush { conn, last: last.map(|m| m.0), close });
        if let Some(last) = last {
            self.feed(Event::Written { conn: ConnId(conn), last });
        }
        if close {
            if let Some(at) = self.net.send_eof(self.now_ms, conn, Way::Down) {
                self.schedule(at, Ev::Deliver { conn, way: Way::Down });
            }
            self.server_lost(conn);
        }
    }

    fn synced(&mut self) {
        let Some(up) = &mut self.server else { return };
        up.sync_scheduled = false;
        let mut lsn = self.store.sync();
        if self.store.snapshot_due() {
            let last = up.core.last_lsn();
            self.store.snapshot(last, &up.core.snapshot());
            lsn = last;
            self.trace.line(self.now_ms, Line::Snapshot { lsn: lsn.0 });
        }
        self.trace.line(self.now_ms, Line::Durable { lsn: lsn.0 });
        self.feed(Event::Durable { lsn });
    }

    fn arm_tick(&mut self) {
        let Some(up) = &mut self.server else { return };
        let Some(deadline) = up.core.poll_timeout() else { return };
        if up.tick_at_ms.is_some_and(|t| t <= deadline) {
            return;
        }
        up.tick_at_ms = Some(deadline);
        self.schedule(deadline, Ev::Tick { epoch: self.epoch });
    }

    fn tick(&mut self) {
        let Some(up) = &mut self.server else { return };
        if up.tick_at_ms != Some(self.now_ms) {
            return;
        }
        up.tick_at_ms = None;
        self.trace.line(self.now_ms, Line::Tick);
        self.feed(Event::Tick);
    }

    // ---- faults ----------------------------------------------------------------------------------

    fn inject_fault(&mut self) {
        let mix = self.mix;
        let rng = &mut self.fault_rng;
        let total = mix.reset_weight + mix.partition_weight + mix.crash_weight;
        let roll = rng.gen_range(0..total);
        let client = rng.gen_range(0..self.clients.len().max(1));
        let chan = if rng.gen_bool(0.5) { Chan::Command } else { Chan::Relay };
        let action = if roll < mix.reset_weight {
            Action::Reset { client, channel: chan }
        } else if roll < mix.reset_weight + mix.partition_weight {
            let dir = [Dir::Up, Dir::Down, Dir::Both][rng.gen_range(0..3)];
            let channel = [None, Some(Chan::Command), Some(Chan::Relay)][rng.gen_range(0..3)];
            Action::Partition {
                client,
                dir,
                channel,
                for_ms: rng.gen_range(1..=mix.partition_ms_max.max(1)),
            }
        } else {
            Action::Crash { down_ms: rng.gen_range(0..=mix.crash_down_ms_max) }
        };
        let next = self.now_ms + self.fault_rng.gen_range(1..=2 * mix.fault_interval_ms);
        self.schedule(next, Ev::Fault);
        self.apply_fault(action);
    }

    fn apply_fault(&mut self, action: Action) {
        let now = self.now_ms;
        self.trace.line(now, Line::Fault { action: &action });
        match action {
            Action::Client { .. } => unreachable!("client steps go to scripts"),
            Action::Partition { client, dir, channel, for_ms } => {
                self.net.partition(client, dir, channel, now + for_ms)
            }
            Action::Heal => self.net.heal(),
            Action::Reset { client, channel } => {
                let Some(conn) = self.clients.get(client).and_then(|c| c.conn(channel)) else {
                    return;
                };
                self.net.reset(conn);
                self.server_lost(conn);
                let mut acts = std::mem::take(&mut self.acts);
                self.clients[client].closed(conn, &mut acts);
                self.carry_out(client, acts);
            }
            Action::Crash { down_ms } => self.crash(down_ms),
        }
    }

    fn crash(&mut self, down_ms: u64) {
        if self.server.take().is_none() {
            return;
        }
        self.crashes += 1;
        self.epoch += 1;
        self.checker.crashed();
        self.store.crash(&mut self.disk_rng, self.mix.torn_writes > 0);
        for conn in self.net.conns() {
            let Some((client, _)) = self.net.owner(conn) else { continue };
            self.net.reset(conn);
            let mut acts = std::mem::take(&mut self.acts);
            self.clients[client].closed(conn, &mut acts);
            self.carry_out(client, acts);
        }
        self.schedule(self.now_ms + down_ms, Ev::Restart { epoch: self.epoch });
    }

    fn restart(&mut self) {
        if self.server.is_some() {
            return;
        }
        let rng = child(self.seed, Stream::Server, self.epoch);
        let recovered = self.store.recover().and_then(|(records, last)| {
            Server::recover(self.config.clone(), rng, records, last).map_err(|e| e.to_string())
        });
        match recovered {
            Ok(core) => {
                self.trace.line(self.now_ms, Line::Restart { lsn: core.last_lsn().0 });
                self.server = Some(Up::new(core));
                self.arm_tick();
            }
            Err(error) => self.checker_fail("recovery succeeds", error),
        }
    }

    fn checker_fail(&mut self, invariant: &'static str, detail: String) {
        self.checker.fail_with(self.now_ms, invariant, detail);
    }

    // ---- liveness --------------------------------------------------------------------------------

    /// Heals every fault, then has each user with queued messages log in with a relay.
    fn begin_liveness(&mut self) {
        self.phase = Phase::Liveness;
        let now = self.now_ms;
        self.trace.line(now, Line::LivenessBegin { owed: self.checker.owed_len() });
        self.net.calm();
        if self.server.is_none() {
            self.restart();
        }
        if self.checker.owed_len() == 0 {
            self.checker.finish(now);
            self.phase = Phase::Done;
            return;
        }
        for (name, password) in self.checker.owed_names() {
            let password = password.unwrap_or_else(|| super::workload::password_of(&name));
            let script = VecDeque::from([
                (now, Op::Login { name, password }),
                (now, Op::Relay { ticket: true }),
            ]);
            let id = self.add_client(Driver::Script(script), now);
            self.clients[id].persistent = true;
        }
        self.schedule(now + self.opts.liveness_ms, Ev::LivenessEnd);
    }
}

impl Up {
    fn new(core: Server) -> Self {
        Up {
            core,
            writers: BTreeMap::new(),
            sync_scheduled: false,
            tick_at_ms: None,
            reply_sessions: BTreeMap::new(),
        }
    }
}

/// The tag of the message a push frame for the original client (`0\nSENDER:TEXT`) carries.
fn plain_push_tag(frame: &[u8]) -> Option<super::check::Tag> {
    let body = frame[HEADER_LEN..].strip_prefix(b"0\n")?;
    let text = body.iter().position(|&b| b == b':').map_or(body, |at| &body[at + 1..]);
    super::check::tag_key(&String::from_utf8_lossy(text))
}
