//! The world: an event queue in simulated time, the shipped [`Host`](crate::host::Host) (and
//! through it the real [`Server`]), and the clients, network, disk and fault injector around it.
//!
//! Events are ordered by (time, sequence number) and time jumps over idle gaps. The world plays
//! the part of the TCP adapter's threads and nothing more: each connection's writer (a command
//! thread, a relay thread) runs after a delay drawn from the seed, takes its mailbox, writes,
//! and reports to the host; a command thread reads only when the host says it may; password
//! jobs come back after a delay (the hashing pool); records reach the simulated disk and
//! `Durable` comes back when the (timed) sync completes. So the races between a client's
//! command and relay threads are reachable and repeatable, and what the server decides is
//! decided by the code that ships.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use crate::auth::{HashCost, Hasher};
use crate::core::{
    Channel, Config, ConnId, Event, Held, JobId, PasswordOutcome, Peer, Record, Server,
};
use crate::host::mailbox::Taken;
use crate::host::sync::Arc;
use crate::wire::HEADER_LEN;

use super::check::{self, Checker, ConnNo, Violation};
use super::client::{Act, Client, Driver};
use super::coverage::{self, Coverage};
use super::disk::{SimStore, WriterStore, ROUNDS_MAX};
use super::net::{Due, Net, Way};
use super::options::{FaultMix, RunOptions};
use super::queue::Queue;
use super::rng::{child, Stream};
use super::scenario::{Action, Dir, Down, Op, Scenario, Step};
use super::server::{ServerConn, SimSocket, Up, READ_LEN};
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
    /// Each kept line's time and typed event (for the space-time diagram).
    pub kept: Vec<(u64, super::trace::Event)>,
    /// What the clients performed and the faults, if the run was recorded
    /// ([`World::recording`]).
    pub recorded: Option<Recorded>,
    /// What happened how often (the reachability report).
    pub coverage: Coverage,
}

/// What a recorded run did.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Each client's operations with their times, and whether it had more to do at the end.
    pub clients: Vec<(Vec<(u64, Op)>, bool)>,
    pub faults: Vec<Step>,
    /// The login storm's clients, if any.
    pub storm: Option<std::ops::Range<usize>>,
    /// When the run ended.
    pub end_ms: u64,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        conn: ConnId,
        way: Way,
    },
    Flush {
        conn: ConnId,
        epoch: u32,
    },
    /// The job and its outcome are boxed: they are rare, and would double the size of every
    /// queued event (16 bytes, which moves in and out of the queue without the stalls that
    /// copying an odd-sized event caused; seen in the profile).
    Password {
        done: Box<(JobId, PasswordOutcome)>,
        epoch: u32,
    },
    /// The store's writer thread takes its turn.
    Writer {
        epoch: u32,
    },
    /// The store's sync thread's sync ends.
    Sync {
        epoch: u32,
    },
    /// The store's helper has encoded the snapshot in progress.
    SnapshotEncoded {
        epoch: u32,
    },
    Tick {
        epoch: u32,
    },
    Wake {
        client: usize,
    },
    Fault,
    Step {
        index: usize,
    },
    Restart {
        epoch: u32,
    },
    LivenessEnd,
    /// The rest phase is over: the server is judged on what it still holds.
    RestEnd,
}

// Kept at 16 bytes (see `Ev::Password`).
const _: () = assert!(std::mem::size_of::<Ev>() == 16);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ops,
    Liveness,
    /// A push met the liveness phase; the run is judged once the event that brought it has
    /// been handled whole (the pushes and end of stream that arrived with it count).
    Met,
    Done,
    /// After a run judged clean: the world runs on, no client starting anything, until
    /// nothing is in flight (`World::settle`).
    Settle,
    /// After a run judged clean and settled: every connection is closed and time passes
    /// beyond every window (`World::rest`).
    Rest,
}

/// The longest the world waits, after the liveness phase, for nothing to be in flight: far
/// beyond the calm network's latencies and the server threads' delays, so only a server that
/// keeps writing (or a world that keeps it busy) reaches it.
const SETTLE_MS_MAX: u64 = 60_000;

/// The longest the store's helper takes to encode a snapshot: several syncs, whose records are
/// acknowledged while the snapshot's new segment is begun and the snapshot not yet in place.
const SNAPSHOT_ENCODE_MS_MAX: u64 = 50;

/// The most bytes a slow reader's relay socket takes without waiting, drawn each time its
/// writer waits: below a push's length, so that a push written straight to it is sometimes
/// cut short (the rest queued for the writer).
const THROUGH_ROOM_SLOW_LEN_MAX: usize = 48;

/// The share of random crashes that kill the process rather than cut the power: a process that
/// dies (a panic, the OOM killer, `kill -9`) leaves what it wrote in the page cache, unsynced,
/// and its recovery must make that durable before it builds on it.
const KILL_P: f64 = 0.3;

/// The share of random crashes that are a graceful stop (`Down::Stop`) instead: the shutdown
/// path (every connection closed, the log writer committing what was submitted) runs too.
const STOP_P: f64 = 0.2;

/// How often, and how many times, the intruder of a shared-host world tries a bare handshake.
const INTRUDER_PERIOD_MS: u64 = 40;
const INTRUDER_ROUNDS: u64 = 100;

/// The login storm's host (no client's own host is numbered this high).
const STORM_HOST: u128 = 1 << 64;

/// The most names the storm's sprayer guesses per spray, past its address's free checks.
const SPRAY_MAX: usize = 40;

/// How often the login storm comes back after a quiet failure window.
const STORM_RETURNS: u64 = 3;

/// The longest failure window the storm waits out before coming back.
const STORM_RETURN_WINDOW_MAX_MS: u64 = 5_000;

/// The argon2 cost the world's server hashes with: the cheapest with more than one pass, so
/// that a hasher ignoring the configured passes stores a hash the checker can tell apart.
const HASH_COST: HashCost = HashCost { memory_kib: 8, iterations: 2 };

/// Simulated time after which the workload is cut short and the liveness phase begins.
const OPS_MS_MAX: u64 = 600_000;

/// Events one simulated millisecond may hold before the watchdog calls the clock stuck (not
/// counting deliveries: `World::advance_to`), plus [`STUCK_EVENTS_PER_CLIENT`] per client: far
/// above the busiest millisecond of a healthy world (every client waking at once), far below what a deadline that is never due spins
/// through in a second of wall time (a tick re-armed at the same millisecond for ever).
const STUCK_EVENTS_MIN: u64 = 100_000;
const STUCK_EVENTS_PER_CLIENT: u64 = 1_000;

/// One simulated world.
pub struct World {
    seed: u64,
    now_ms: u64,
    queue: Queue<Ev>,
    opts: RunOptions,
    mix: FaultMix,
    /// The limits the world asks for (`FaultMix::apply_limits`): what the checker judges by and
    /// hostile clients aim at.
    asked: Config,
    /// What the server runs with: `asked`, through the shipped flags ([`super::flags`]).
    config: Config,
    net: Net,
    server: Option<Up>,
    /// The disk while the server is down (while it is up, its record sink holds it).
    store: Option<Box<dyn SimStore + Send>>,
    /// The server's incarnation (crashes so far): events of an earlier one are stale.
    epoch: u32,
    disk_rng: ChaCha20Rng,
    fault_rng: ChaCha20Rng,
    kill_rng: ChaCha20Rng,
    timing_rng: ChaCha20Rng,
    /// The store's helper's encoding times ([`Stream::Snapshots`]).
    snapshot_rng: ChaCha20Rng,
    hasher: Hasher,
    clients: Vec<Client>,
    checker: Checker,
    trace: Trace,
    next_conn: ConnId,
    phase: Phase,
    /// A scenario's fault steps and their times, in order: each is queued when the one before
    /// it runs (as a random world queues its next fault), so that a written-down run's faults
    /// fall in the same place among the events of their millisecond.
    steps: Vec<(u64, Action)>,
    steps_left: usize,
    crashes: u64,
    arrivals: Vec<u64>,
    acts: Vec<Act>,
    /// Connections a fault cut (a reset, or a crash of the server).
    faulted: BTreeSet<ConnId>,
    /// The clients of the login storm, if the run has one.
    storm: Option<std::ops::Range<usize>>,
    /// Scratch space: tags of original-client pushes in a writer's batch.
    plain_tags: Vec<super::check::Tag>,
    /// Scratch space: ids of acknowledged-relay pushes in a writer's batch.
    acked_ids: Vec<u64>,
    /// What each client saw, when driven by hand.
    transcripts: Option<BTreeMap<usize, Vec<Seen>>>,
    /// Every fault and when, if the run is being written down.
    faults_log: Option<Vec<Step>>,
    /// What happened how often, besides what the checker counts.
    coverage: Coverage,
    /// Snapshots written to the disk so far (over every incarnation).
    snapshots: u64,
    /// [`Checker::delivery_progress`] when the liveness phase began or was last extended.
    progress_at_check: (usize, u64),
    /// Records persisted, per kind of [`RECORD_ROWS`] (added to the coverage at the end: a
    /// row's count is a map update, and one record in four would pay for it).
    records: [u64; 4],
    /// Events handled since the clock last advanced (the watchdog's count).
    events_this_ms: u64,
}

/// The coverage rows of the records the server persisted, in `World::records` order.
const RECORD_ROWS: [&str; 4] =
    ["record: message", "record: register", "record: delete", "record: delivered"];

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
        let mix = FaultMix::for_seed(&opts, seed);
        let mut world = World::empty(seed, mix, opts);
        for _ in 0..world.opts.clients {
            let (ops_left, names) = (world.opts.ops, world.opts.names);
            let driver = Driver::Random { ops_left, names, workload: world.opts.workload };
            world.add_client(driver, 0);
        }
        // The intruder before the storm: a scenario keeps the storm's clients last.
        if mix.hosts > 0 {
            world.add_intruder();
        }
        if mix.storm_logins > 0 {
            world.add_storm();
        }
        if mix.fault_interval_ms > 0
            && mix.reset_weight + mix.partition_weight + mix.crash_weight > 0
        {
            let at = world.fault_rng.gen_range(1..=2 * mix.fault_interval_ms);
            world.schedule(at, Ev::Fault);
        }
        world
    }

    /// Adds the attacker host's clients: each logs in to one name with a wrong password, all
    /// at the same moment, then registers a name of its own, all at another moment (a
    /// registration flood from one address, hardening defect 7). The last one sprays instead
    /// (`spray_script`). Where the throttle forgets within seconds, the storm then comes back
    /// ([`STORM_RETURNS`] times, each a quiet window after the last): a key the throttle may
    /// forget meets guesses in flight, and the later guesses of a wave arrive while the
    /// earlier ones are still being checked.
    fn add_storm(&mut self) {
        let rng = &mut child(self.seed, Stream::Mix, 1);
        let name = format!("u{}", rng.gen_range(0..self.opts.names.max(1)));
        let at_ms = rng.gen_range(100..=3_000);
        let register_ms = at_ms + rng.gen_range(200..=2_000);
        let step_ms = rng.gen_range(0..=self.mix.hash_ms_max);
        let first = self.clients.len();
        self.storm = Some(first..first + self.mix.storm_logins as usize);
        let bound = self.asked.login_failures_per_peer_max;
        let spray = self.spray_script(self.mix.storm_logins - 1, at_ms, register_ms);
        let returns_ms = self.storm_returns_ms(&spray, register_ms);
        for i in 0..self.mix.storm_logins {
            let script = if i + 1 == self.mix.storm_logins {
                spray.clone()
            } else {
                // Every other guess spells the name in capitals (`U1`): the same account to
                // the server, so both spellings must draw on one throttle budget.
                let spelled = if i % 2 == 1 { name.to_ascii_uppercase() } else { name.clone() };
                let login = || Op::Login { name: spelled.clone(), password: "wrong".into() };
                let register = Op::Register { name: format!("flood{i}"), password: "pw".into() };
                let mut script = VecDeque::from([(at_ms, login()), (register_ms, register)]);
                script.extend(returns_ms.iter().map(|&ms| (ms + i * step_ms, login())));
                script
            };
            if !returns_ms.is_empty() {
                self.coverage.count("hostile: login storm back after a quiet window");
            }
            let client = self.add_client(Driver::Script(script), at_ms);
            self.checker.storm_client(client, bound);
            self.coverage.count("hostile: login storm");
        }
    }

    /// When the storm comes back: each time a failure window after the sprayer's last guess
    /// (its second spray takes about as long as its first) or the last wave. None where the
    /// window is longer than [`STORM_RETURN_WINDOW_MAX_MS`]: with the shipped minute the world
    /// would idle for minutes.
    fn storm_returns_ms(&self, spray: &VecDeque<(u64, Op)>, register_ms: u64) -> Vec<u64> {
        let window_ms = self.asked.login_failure_window_ms;
        if window_ms > STORM_RETURN_WINDOW_MAX_MS {
            return Vec::new();
        }
        let sprayed_ms = spray.back().map_or(register_ms, |&(ms, _)| 2 * ms - register_ms);
        let wave_ms = self.mix.storm_logins * (self.mix.hash_ms_max + 1) + self.mix.latency_ms_max;
        (1..=STORM_RETURNS).map(|w| sprayed_ms + w * (window_ms + wave_ms + 1)).collect()
    }

    /// The storm's sprayer: it registers an account of its own as the storm begins, then
    /// guesses one wrong password for each of more names than its address may try (names
    /// outside the pool: the throttle counts unknown names alike), logs in to its own account
    /// once the address's delay has passed, and sprays as many names again. A right password
    /// ends the streak of the name it was for, not the address's: the second spray is
    /// throttled as the first was (`the throttle bounds password guesses`, per address).
    fn spray_script(&self, i: u64, at_ms: u64, register_ms: u64) -> VecDeque<(u64, Op)> {
        let own = format!("flood{i}");
        let spray = self.asked.login_failures_per_peer_max.min(SPRAY_MAX) + 2;
        let guess = |j: usize| Op::Login { name: format!("spray{j}"), password: "wrong".into() };
        let per_guess_ms = 2 * (self.mix.latency_ms_max + self.mix.writer_ms_max)
            + self.mix.hash_ms_max
            + self.mix.fsync_ms_max
            + 10;
        let login_ms = register_ms + spray as u64 * per_guess_ms + self.asked.login_backoff_base_ms;
        let mut script = VecDeque::from([
            (at_ms, Op::Register { name: own.clone(), password: "pw".into() }),
            (at_ms, Op::Logout),
        ]);
        script.extend((0..spray).map(|j| (register_ms, guess(j))));
        script.push_back((login_ms, Op::Login { name: own, password: "pw".into() }));
        script.push_back((login_ms, Op::Logout));
        script.extend((spray..2 * spray).map(|j| (login_ms, guess(j))));
        script
    }

    /// Adds a client that polls the relay port with bare handshakes in every name of the
    /// pool, from a host it shares with the others: it must never be bound to anyone.
    fn add_intruder(&mut self) {
        let names = self.opts.names.max(1);
        let mut script = VecDeque::new();
        for round in 0..INTRUDER_ROUNDS {
            let at_ms = round * INTRUDER_PERIOD_MS;
            let name = format!("u{}", round as usize % names);
            script.push_back((at_ms, Op::CloseRelay));
            script.push_back((at_ms, Op::RelayAs { name }));
        }
        self.add_client(Driver::Script(script), 0);
    }

    /// The address `client` connects from: its host's when clients share hosts, the attacker's
    /// for the login storm.
    fn peer_of(&self, client: usize) -> Peer {
        if self.storm.as_ref().is_some_and(|storm| storm.contains(&client)) {
            return Peer(STORM_HOST);
        }
        match self.mix.hosts {
            0 => Peer(client as u128 + 1),
            hosts => Peer((client as u64 % hosts) as u128 + 1),
        }
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
                other => world.steps.push((step.at_ms, other.clone())),
            }
        }
        world.steps.sort_by_key(|&(at_ms, _)| at_ms);
        world.steps_left = world.steps.len();
        // In a scenario, `option storm_logins N` makes the last N clients the attacker host's.
        let storm = (scenario.mix.storm_logins as usize).min(scenario.clients);
        if storm > 0 {
            world.storm = Some(scenario.clients - storm..scenario.clients);
        }
        for script in scripts {
            let first = script.front().map_or(0, |(at, _)| *at);
            let client = world.add_client(Driver::Script(script), first);
            if world.storm.as_ref().is_some_and(|storm| storm.contains(&client)) {
                world.checker.storm_client(client, world.asked.login_failures_per_peer_max);
            }
        }
        // After the clients, as a random world queues its first fault.
        if let Some(&(at_ms, _)) = world.steps.first() {
            world.schedule(at_ms, Ev::Step { index: 0 });
        }
        world
    }

    fn empty(seed: u64, mix: FaultMix, opts: RunOptions) -> Self {
        // The original client's bare handshake is an opt-in for a trusted host: a world whose
        // clients each have their own host opts in (so the original client's flow is swept);
        // a world whose clients share hosts runs the shipped default, which must stop an
        // intruder on the victim's host.
        let bare_relay_allowed = mix.hosts == 0;
        // What the world asks for, by which the checker judges; the server runs what the
        // shipped flags make of it.
        let mut asked = Config { bare_relay_allowed, ..Config::default() };
        mix.apply_limits(&mut asked);
        let snapshot_bytes = mix.snapshot_log_bytes();
        #[cfg(any(test, feature = "planted"))]
        let store = {
            asked.planted = opts.planted;
            WriterStore::planted(opts.planted, snapshot_bytes)
        };
        #[cfg(not(any(test, feature = "planted")))]
        let store = WriterStore::new(snapshot_bytes);
        let store: Box<dyn SimStore + Send> = Box::new(store);
        let config = super::flags::shipped(&asked);
        let core = Server::new(config.clone(), child(seed, Stream::Server, 0));
        let mut checker = Checker::new(asked.login_failure_window_ms, asked.bare_relay_window_ms);
        checker.throttle_per_account(asked.login_failures_max, asked.login_backoff_base_ms);
        checker.set_limits(check::Limits {
            queue_len_max: asked.queue_len_max,
            registrations_per_peer_max: asked.registrations_per_peer_max,
            registration_window_ms: asked.registration_window_ms,
            login_deadline_ms: asked.login_deadline_ms,
            login_backoff_base_ms: asked.login_backoff_base_ms,
            push_window_len: asked.push_window_len,
            accounts_max: asked.accounts_max,
            list_pattern_len_max: asked.list_pattern_len_max,
            list_len_max: asked.list_len_max,
            list_reply_bytes_max: asked.list_reply_bytes_max,
            pipeline_len_max: asked.pipeline_len_max,
            ticket_ttl_ms: asked.ticket_ttl_ms,
            tickets_per_session_max: asked.tickets_per_session_max,
            list_scan_max: asked.list_scan_max,
            queued_bytes_max: asked.queued_bytes_max,
            connections_max: asked.connections_max,
            connections_per_peer_max: asked.connections_per_peer_max,
            login_failures_max: asked.login_failures_max,
            login_failures_per_peer_max: asked.login_failures_per_peer_max,
        });
        checker.set_deadlines(asked.login_deadline_ms, asked.frame_deadline_ms);
        if asked.bare_relay_allowed {
            checker.allow_bare_relays();
        }
        // The hasher's planted bugs (`auth`) are planted in the world's hasher too.
        #[cfg(any(test, feature = "planted"))]
        let hasher = Hasher::planted(HASH_COST, opts.planted);
        #[cfg(not(any(test, feature = "planted")))]
        let hasher = Hasher::new(HASH_COST);
        let hasher = hasher.expect("the world's cost is valid");
        checker.set_stored_cost(stored_cost(HASH_COST));
        World {
            seed,
            now_ms: 0,
            queue: Queue::default(),
            trace: Trace::new(opts.keep_trace),
            opts,
            mix,
            asked,
            config,
            net: Net::new(child(seed, Stream::Net, 0), mix),
            server: Some(Up::new(core, store)),
            store: None,
            epoch: 0,
            disk_rng: child(seed, Stream::Disk, 0),
            fault_rng: child(seed, Stream::Faults, 0),
            kill_rng: child(seed, Stream::Kills, 0),
            timing_rng: child(seed, Stream::Timing, 0),
            snapshot_rng: child(seed, Stream::Snapshots, 0),
            hasher,
            clients: Vec::new(),
            checker,
            next_conn: ConnId(1),
            phase: Phase::Ops,
            steps: Vec::new(),
            steps_left: 0,
            crashes: 0,
            arrivals: Vec::new(),
            acts: Vec::new(),
            faulted: BTreeSet::new(),
            storm: None,
            plain_tags: Vec::new(),
            acked_ids: Vec::new(),
            transcripts: None,
            faults_log: None,
            coverage: Coverage::default(),
            snapshots: 0,
            progress_at_check: (0, 0),
            records: [0; 4],
            events_this_ms: 0,
        }
    }

    /// Writes down what the clients perform and the faults, in [`Outcome::recorded`] (which
    /// `sim::shrink::written_down` turns into a scenario).
    pub fn recording(mut self) -> Self {
        for client in &mut self.clients {
            client.record = Some(Vec::new());
        }
        self.faults_log = Some(Vec::new());
        self
    }

    /// What the recorded clients performed and the faults (`sim::shrink::written_down` turns
    /// it into a scenario).
    fn recorded(&mut self) -> Option<Recorded> {
        let faults = self.faults_log.take()?;
        let clients = (self.clients.iter_mut())
            .map_while(|c| Some((c.record.take()?, !c.is_done())))
            .collect();
        Some(Recorded { clients, faults, storm: self.storm.clone(), end_ms: self.now_ms })
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
        if !self.advance_to(at_ms, &ev) {
            return false;
        }
        self.handle(ev);
        true
    }

    /// Moves the clock to the next event's `at_ms`; false, with a violation, once the clock
    /// has stood still for more events than any healthy world handles in one millisecond (the
    /// watchdog: a deadline that never becomes due would otherwise spin the world for ever
    /// instead of failing its seed). A delivery is not counted: each moves some of a finite
    /// stream's bytes, and a large frame delivered byte by byte is that many deliveries in one
    /// millisecond (151,000 in `--workload hostile` seed 609, a healthy run).
    fn advance_to(&mut self, at_ms: u64, ev: &Ev) -> bool {
        if at_ms > self.now_ms {
            self.events_this_ms = 0;
        }
        self.now_ms = at_ms;
        if matches!(ev, Ev::Deliver { .. }) {
            return true;
        }
        self.events_this_ms += 1;
        let events_max = STUCK_EVENTS_MIN + STUCK_EVENTS_PER_CLIENT * self.clients.len() as u64;
        if self.events_this_ms <= events_max {
            return true;
        }
        let detail = format!(
            "the simulated clock is stuck at {at_ms} ms: {events_max} events without it advancing"
        );
        self.checker_fail("the simulated clock advances", detail);
        false
    }

    /// The first violation so far, if any.
    pub fn violation(&self) -> Option<&Violation> {
        self.checker.violation()
    }

    fn add_client(&mut self, driver: Driver, wake_ms: u64) -> usize {
        let id = self.clients.len();
        let rng = child(self.seed, Stream::Client, id as u64);
        let mut c = Client::new(id, driver, rng, self.mix.slow_reader_percent);
        // Hostile clients aim their frames and tickets at this server's limits.
        c.limits = super::client::Limits::of(&self.asked);
        c.limits.bare_at_window_end = self.mix.instant() && self.asked.bare_relay_allowed;
        self.clients.push(c);
        let host = self.peer_of(id).0;
        self.checker.set_host(id, host);
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
            if !self.advance_to(at_ms, &ev) {
                break;
            }
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
                // Nothing owed: the run is over (not one event later, which a scripted
                // replay of it, with other events left in its queue, would not handle).
                if self.phase == Phase::Done {
                    break;
                }
            }
        }
        if self.phase != Phase::Done && self.checker.violation().is_none() {
            self.checker.finish(self.now_ms);
        }
        // The run's length; the settling and rest phases that follow are checks of their own.
        let run_ms = self.now_ms;
        if self.checker.violation().is_none() {
            self.settle();
        }
        if self.checker.violation().is_none() && self.server.is_some() {
            self.rest();
        }
        let recorded = self.recorded();
        let (events_len, hash) = (self.trace.events(), self.trace.hash());
        let (trace, kept) = self.trace.into_kept();
        let mut coverage = std::mem::take(&mut self.coverage);
        for (row, n) in RECORD_ROWS.into_iter().zip(self.records) {
            if n > 0 {
                coverage.add(row, n);
            }
        }
        coverage.merge(&self.checker.coverage);
        Outcome {
            seed: self.seed,
            mix: self.mix,
            events: events_len,
            sim_ms: run_ms,
            hash,
            delivered: self.checker.delivered,
            checks: self.checker.checks,
            crashes: self.crashes,
            violation: self.checker.violation().cloned(),
            trace,
            kept,
            recorded,
            coverage,
        }
    }

    fn handle(&mut self, ev: Ev) {
        match self.server_side(ev) {
            Some(ev) if self.phase == Phase::Rest => self.handle_resting(ev),
            Some(ev @ (Ev::Deliver { .. } | Ev::Wake { .. })) if self.phase == Phase::Settle => {
                self.handle_world(ev)
            }
            Some(_) if self.phase == Phase::Settle => {}
            Some(ev) => self.handle_world(ev),
            None => {}
        }
        if self.phase == Phase::Met {
            self.checker.finish(self.now_ms);
            self.phase = Phase::Done;
        }
    }

    /// An event of the clients, the network, the faults or the phases.
    fn handle_world(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { conn, way } => self.deliver(conn, way),
            Ev::Wake { client } if self.clients[client].wake_at == Some(self.now_ms) => {
                self.clients[client].wake_at = None;
                let mut acts = std::mem::take(&mut self.acts);
                self.clients[client].wake(self.now_ms, &mut acts);
                self.carry_out(client, acts);
            }
            Ev::Fault if self.phase == Phase::Ops => self.inject_fault(),
            Ev::Step { index } => {
                self.steps_left -= 1;
                if let Some(&(at_ms, _)) = self.steps.get(index + 1) {
                    self.schedule(at_ms, Ev::Step { index: index + 1 });
                }
                let action = self.steps[index].1.clone();
                self.apply_fault(action);
            }
            Ev::Restart { epoch } if epoch == self.epoch => self.restart(),
            Ev::LivenessEnd if self.checker.delivery_progress() != self.progress_at_check => {
                // Still delivering (a push window of one, slow readers, a long backlog in
                // front of what is owed): the liveness phase waits as long again, for as long
                // as messages keep arriving for the first time or what is owed keeps shrinking.
                self.progress_at_check = self.checker.delivery_progress();
                self.schedule(self.now_ms + self.opts.liveness_ms, Ev::LivenessEnd);
            }
            Ev::LivenessEnd => {
                self.trace.line(self.now_ms, Line::LivenessEnd);
                self.checker.finish(self.now_ms);
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    /// Runs an event of the server's own threads (a writer's flush, a password job's end, a
    /// sync, a tick), in every phase; any other event is handed back.
    fn server_side(&mut self, ev: Ev) -> Option<Ev> {
        match ev {
            Ev::Flush { conn, epoch } if epoch == self.epoch => self.flush(conn),
            Ev::Password { done, epoch } if epoch == self.epoch => {
                let (job, outcome) = *done;
                self.trace.line(self.now_ms, Line::Hashed { job: job.0 });
                self.feed(Event::PasswordDone { job, outcome });
            }
            Ev::Writer { epoch } if epoch == self.epoch => self.writer_turn(),
            Ev::Sync { epoch } if epoch == self.epoch => {
                if let Some(up) = &mut self.server {
                    up.host.sink_mut().store.sync_done();
                }
                self.arm_writer();
            }
            Ev::SnapshotEncoded { epoch } if epoch == self.epoch => {
                if let Some(up) = &mut self.server {
                    up.host.sink_mut().store.snapshot_encoded();
                }
                self.arm_writer();
            }
            Ev::Tick { epoch } if epoch == self.epoch => self.tick(),
            Ev::Flush { .. }
            | Ev::Password { .. }
            | Ev::Writer { .. }
            | Ev::Sync { .. }
            | Ev::SnapshotEncoded { .. }
            | Ev::Tick { .. } => {}
            ev => return Some(ev),
        }
        None
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
                self.checker.closed_by_client(ConnNo(conn.0));
                self.checker.client_closed(now, client, ConnNo(conn.0));
                if let Some(at) = self.net.send_eof(now, conn, Way::Up) {
                    self.schedule(at, Ev::Deliver { conn, way: Way::Up });
                }
            }
            Act::Wake(u64::MAX) => {}
            Act::Wake(delay) => self.wake(client, now + delay),
            Act::WakeForNextOp => {
                let next_ms = self.clients[client].next_script_ms().unwrap_or(now);
                self.wake(client, next_ms.max(now));
            }
            Act::Connected => self.checker.connected(client),
            Act::Sent(op) => {
                self.trace.line(now, Line::Sent { client, op: &op });
                self.checker.sent(now, client, op);
            }
            Act::Reply(body) => {
                self.trace.line(now, Line::Reply { client, body: &body });
                self.checker.replied(now, client, &body);
                if self.transcripts.is_some() {
                    self.see(client, Seen::Reply(String::from_utf8_lossy(&body).into_owned()));
                }
            }
            Act::Lost(conn) => {
                self.trace.line(now, Line::Lost { client });
                self.checker.disconnected(now, client, ConnNo(conn.0));
            }
            Act::Dropped { conn, unanswered, noticed } => {
                let faulted = self.faulted.contains(&conn);
                self.checker.dropped(now, client, unanswered, noticed, faulted);
            }
            Act::RelayOpened(conn) => self.checker.relay_opened(now, client, ConnNo(conn.0)),
            Act::Hostile(observation) => {
                self.trace.line(now, Line::Hostile { client, kind: observation.kind() });
                if let Some(row) = coverage::hostile_row(observation.kind()) {
                    self.coverage.count(row);
                }
                let faulted =
                    observation.conn().is_some_and(|c| self.faulted.contains(&ConnId(c.0)));
                self.checker.hostile(now, client, observation, faulted);
            }
            Act::Count(row) => self.coverage.count(row),
            Act::Push { conn, sender, text } => {
                self.trace.line(now, Line::Push { client, conn, sender: &sender, text: &text });
                self.checker.pushed(now, ConnNo(conn.0), &sender, &text);
                if self.transcripts.is_some() {
                    self.see(client, Seen::Push(format!("{sender}:{text}")));
                }
                if self.phase == Phase::Liveness && self.checker.owed_len() == 0 {
                    self.trace.line(now, Line::LivenessMet);
                    self.phase = Phase::Met;
                }
            }
        }
    }

    /// Opens a connection for `client`, or refuses it while the server is down.
    fn connect(&mut self, client: usize, chan: Channel) -> Option<ConnId> {
        let now = self.now_ms;
        if self.server.is_none() {
            self.trace.line(now, Line::Refused { client, chan });
            return None;
        }
        let conn = self.next_conn;
        self.next_conn.0 += 1;
        let threads_rng = self.net.open(conn, client, chan);
        self.trace.line(now, Line::Open { client, chan, conn });
        let slow = chan == Channel::Relay && self.clients[client].slow_reader;
        let peer = self.peer_of(client);
        let socket = SimSocket::default();
        let up = self.server.as_mut().expect("checked above");
        let mailbox = up.host.open(now, conn, chan, peer, socket.clone());
        up.conns.insert(conn, ServerConn::new(chan, mailbox, socket, slow, threads_rng));
        if chan == Channel::Relay {
            // Its writer thread starts, finds nothing, and waits.
            self.writer_waits(conn);
        }
        self.checker.conn_opened(now, ConnNo(conn.0), chan == Channel::Command, peer.0);
        self.after_host();
        Some(conn)
    }

    fn send(&mut self, conn: ConnId, way: Way, bytes: Vec<u8>) -> bool {
        let mut arrivals = std::mem::take(&mut self.arrivals);
        let sent = self.net.send(self.now_ms, conn, way, bytes, &mut arrivals);
        for &at in &arrivals {
            self.schedule(at, Ev::Deliver { conn, way });
        }
        arrivals.clear();
        self.arrivals = arrivals;
        sent
    }

    fn deliver(&mut self, conn: ConnId, way: Way) {
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
            Way::Up => self.server_received(conn, &arrival.bytes, eof),
            Way::Down => {
                let Some((client, _)) = owner else { return };
                let mut acts = std::mem::take(&mut self.acts);
                if !arrival.bytes.is_empty() {
                    self.clients[client].received(now, conn, &arrival.bytes, &mut acts);
                }
                if eof {
                    if !self.faulted.contains(&conn) {
                        self.checker.relay_ended(now, ConnNo(conn.0));
                    }
                    self.clients[client].closed(conn, &mut acts);
                }
                self.carry_out(client, acts);
            }
        }
    }

    // ---- the server's threads, over the host ----------------------------------------------

    /// Bytes (and maybe the end of the stream) reached the server side of `conn`. A relay's
    /// reader reads at once; a command thread only once it is blocked in `read`.
    fn server_received(&mut self, conn: ConnId, bytes: &[u8], eof: bool) {
        let Some(up) = &mut self.server else { return };
        let Some(c) = up.conns.get_mut(conn) else { return };
        match c.chan {
            Channel::Command => {
                c.inbox.extend(bytes);
                c.eof |= eof;
                if c.reading {
                    self.read_command(conn);
                } else {
                    // The shared reader's readiness event for a thread waiting for replies.
                    self.read_ahead(conn);
                }
            }
            Channel::Relay => {
                if !bytes.is_empty() {
                    self.checker.server_read(self.now_ms, ConnNo(conn.0), bytes);
                    let event = Event::Received { conn, bytes };
                    up.host.handle(self.now_ms, event);
                }
                if eof {
                    // The reader ends; the writer flushes, then reports the close.
                    c.mailbox.close();
                    self.wake_writer(conn);
                }
                self.after_host();
            }
        }
    }

    /// The command thread of `conn` is blocked in `read`, as `net::command` is whenever the
    /// host lets it read: it wakes for bytes, the end of the stream, or the host's hang-up.
    fn read_command(&mut self, conn: ConnId) {
        let Some(up) = &mut self.server else { return };
        let Some(c) = up.conns.get_mut(conn) else { return };
        debug_assert!(c.reading);
        if c.socket.is_broken() || c.mailbox.is_closed() || (c.inbox.is_empty() && c.eof) {
            return self.end_command(conn);
        }
        if c.inbox.is_empty() {
            return;
        }
        c.reading = false;
        self.read_inbox(conn);
        // Then, under the same lock, ahead of the replies that read made owed.
        self.read_ahead(conn);
        self.answer(conn);
    }

    /// Reads `conn` ahead of the replies it owes while the host allows it, as the TCP
    /// adapter does after a read and on bytes arriving while its command thread waits for
    /// replies (`net::driver::Shared::read_ahead`): a request sent while the one before it
    /// waits for the disk joins the next sync.
    fn read_ahead(&mut self, conn: ConnId) {
        for _ in 0..crate::host::READ_AHEAD_TURNS_MAX {
            let Some(up) = &self.server else { return };
            let Some(c) = up.conns.get(conn) else { return };
            if c.reading || c.inbox.is_empty() || !up.host.may_read_ahead(conn) {
                return;
            }
            self.coverage.count("limit: a request read ahead of owed replies");
            self.read_inbox(conn);
        }
    }

    /// Reads what the kernel holds for `conn` (a read's worth) and hands it to the host.
    fn read_inbox(&mut self, conn: ConnId) {
        let Some(up) = &mut self.server else { return };
        let Some(c) = up.conns.get_mut(conn) else { return };
        let n = c.inbox.len().min(READ_LEN);
        // The read is handed over in place when the kernel's bytes are contiguous (they
        // nearly always are), else copied once into the read buffer.
        let (front, back) = c.inbox.as_slices();
        let bytes = if front.len() >= n {
            &front[..n]
        } else {
            up.read_buf.clear();
            up.read_buf.extend_from_slice(front);
            up.read_buf.extend_from_slice(&back[..n - front.len()]);
            &up.read_buf[..]
        };
        self.checker.server_read(self.now_ms, ConnNo(conn.0), bytes);
        up.host.handle(self.now_ms, Event::Received { conn, bytes });
        c.inbox.drain(..n);
        self.after_host();
    }

    /// The command thread's loop between reads: it writes what its mailbox holds and runs
    /// password jobs until the host lets it read, then blocks in `read`. While a reply is
    /// owed and none is in the mailbox, it waits in `take_all` (parked) until the host owes
    /// it a wake or its mailbox closes.
    fn answer(&mut self, conn: ConnId) {
        loop {
            let (failed, taken, took) = self.run_writer(conn);
            if failed || taken == Taken::Closed {
                return self.end_command(conn);
            }
            if took {
                continue;
            }
            let Some(up) = &mut self.server else { return };
            let may_read = up.host.may_read(conn);
            let Some(c) = up.conns.get_mut(conn) else { return };
            if !may_read && !c.inbox.is_empty() {
                self.coverage.count("limit: reads held for owed replies");
            }
            if may_read {
                c.reading = true;
                self.checker.conn_reading(self.now_ms, ConnNo(conn.0));
                return self.read_command(conn);
            }
            if c.mailbox.park() {
                return;
            }
            // Something came, or the mailbox closed, since the take: `take_all` returns.
        }
    }

    /// A command thread's read failed or ended: it writes what it still holds, then ends.
    fn end_command(&mut self, conn: ConnId) {
        let (failed, _, _) = self.run_writer(conn);
        let broken = self.server.as_ref().and_then(|up| up.conns.get(conn));
        let reset = failed || broken.is_some_and(|c| c.socket.is_broken());
        if !reset {
            // `shutdown(Both)`: the client reads the end of the stream.
            if let Some(at) = self.net.send_eof(self.now_ms, conn, Way::Down) {
                self.schedule(at, Ev::Deliver { conn, way: Way::Down });
            }
        }
        self.end_conn(conn, reset);
    }

    /// Schedules `conn`'s thread to take its mailbox, unless it is already due. A command
    /// thread blocked in `read` only wakes when the host hangs the connection up.
    fn wake_writer(&mut self, conn: ConnId) {
        let Some(c) = self.server.as_mut().and_then(|up| up.conns.get_mut(conn)) else { return };
        if c.scheduled || (c.reading && !c.mailbox.is_closed()) {
            return;
        }
        c.scheduled = true;
        let max = if c.slow { self.mix.slow_reader_ms_max } else { self.mix.writer_ms_max };
        let delay = c.rng.gen_range(0..=max);
        self.schedule(self.now_ms + delay, Ev::Flush { conn, epoch: self.epoch });
    }

    /// A relay's writer finds its mailbox empty and waits in `take_all` (parked: pushes now
    /// owe it a wake, and one to an acknowledging relay may be written straight to its socket,
    /// which takes what room its send buffer has), or, with something queued or the mailbox
    /// closed, goes on.
    fn writer_waits(&mut self, conn: ConnId) {
        let Some(c) = self.server.as_mut().and_then(|up| up.conns.get_mut(conn)) else { return };
        if !c.mailbox.park() {
            return self.wake_writer(conn);
        }
        // A slow reader's buffer is nearly full: a push may be cut short, its rest queued.
        let room_len =
            if c.slow { c.rng.gen_range(0..=THROUGH_ROOM_SLOW_LEN_MAX) } else { usize::MAX };
        c.socket.set_room(room_len);
    }

    /// A connection's thread wakes: a command thread answers (or, woken out of `read` by a
    /// hang-up, ends); a relay writer writes and reports, and ends once its mailbox is closed
    /// and empty or a write fails.
    fn flush(&mut self, conn: ConnId) {
        let Some(c) = self.server.as_mut().and_then(|up| up.conns.get_mut(conn)) else { return };
        c.scheduled = false;
        // Woken out of `take_all` (a no-op for a thread woken out of `read`).
        c.mailbox.unpark();
        if c.chan == Channel::Command {
            return if c.reading { self.read_command(conn) } else { self.answer(conn) };
        }
        loop {
            let (failed, taken, _) = self.run_writer(conn);
            if failed || taken == Taken::Closed {
                if !failed {
                    if let Some(at) = self.net.send_eof(self.now_ms, conn, Way::Down) {
                        self.schedule(at, Ev::Deliver { conn, way: Way::Down });
                    }
                }
                return self.end_conn(conn, failed);
            }
            // Like `net::relay`'s loop: a closed mailbox is taken again at once, to see it end.
            let closed = self.server.as_ref().and_then(|up| up.conns.get(conn));
            if !closed.is_some_and(|c| c.mailbox.is_closed()) {
                return self.writer_waits(conn);
            }
        }
    }

    /// Takes `conn`'s mailbox and writes it. Returns whether a write failed, the take, and
    /// whether anything was taken.
    fn run_writer(&mut self, conn: ConnId) -> (bool, Taken, bool) {
        let now = self.now_ms;
        let Some(up) = &mut self.server else { return (true, Taken::Closed, false) };
        let Some(c) = up.conns.get_mut(conn) else { return (true, Taken::Closed, false) };
        let mut items = std::mem::take(&mut up.items);
        let taken = c.mailbox.try_take_all(&mut items);
        let took = !items.is_empty();
        if !took {
            up.items = items;
            return (false, taken, false);
        }
        let broken = c.socket.is_broken();
        let mut batch = std::mem::take(&mut up.batch);
        batch.sort(&mut items);
        up.items = items;
        let head_len = match batch.frames.first_mut() {
            Some(first) => c.join_head(first),
            None => 0,
        };
        let is_command = c.chan == Channel::Command;
        self.checker.caps_frames_taken(now, ConnNo(conn.0), &batch.frames);
        let mut failed = broken && !batch.frames.is_empty();
        let mut plain = std::mem::take(&mut self.plain_tags);
        if is_command && batch.replies as usize >= self.config.pipeline_len_max {
            self.coverage.count("limit: pipeline full");
        }
        if is_command {
            // A notice that closes the connection answers no request of its own.
            let answers = batch.frames.iter().filter(|f| !is_close_notice(f)).count();
            self.checker.replies_taken(now, ConnNo(conn.0), answers);
            let frames = batch.frames.iter().map(|f| &f[..]);
            self.checker.command_frames_taken(now, ConnNo(conn.0), frames);
        }
        if !is_command {
            let pushes = batch.frames.iter().filter(|f| !is_failure(f)).count();
            if pushes >= self.config.push_window_len {
                self.coverage.count("limit: push window full");
            }
            for frame in batch.frames.iter().filter(|f| is_failure(f)) {
                count_relay_notice(&mut self.coverage, frame);
                let text = String::from_utf8_lossy(&frame[HEADER_LEN + 3..]);
                self.checker.relay_failure_written(ConnNo(conn.0), &text);
                self.checker.relay_notice_written(now, ConnNo(conn.0), &text, pushes > 0);
            }
        }
        let mut acked = std::mem::take(&mut self.acked_ids);
        if !is_command {
            acked.extend(batch.frames.iter().filter_map(|f| acked_push_id(f)));
        }
        if !failed {
            for (i, mut frame) in batch.frames.drain(..).enumerate() {
                plain.extend(if is_command { None } else { plain_push_tag(&frame) });
                if i == 0 && head_len > 0 {
                    // Its head went out straight from the host: the rest goes now.
                    frame.drain(..head_len);
                }
                if !self.send(conn, Way::Down, frame) {
                    failed = true;
                    break;
                }
            }
        }
        let last = batch.last_push.map(|m| m.0);
        self.trace.line(now, Line::Flush { conn, last, close: taken == Taken::Closed });
        let up = self.server.as_mut().expect("still up");
        if let (false, Some(_)) = (is_command, batch.last_push) {
            // A push written or tried: the handshake bound the relay.
            self.checker.relay_pushed(now, ConnNo(conn.0));
        }
        if !failed {
            if let (false, Some(last)) = (is_command, batch.last_push) {
                self.checker.relay_written(ConnNo(conn.0), last.0);
            }
            if !acked.is_empty() {
                self.checker.acked_pushes_written(now, ConnNo(conn.0), &acked);
            }
            up.host.wrote(now, conn, &batch);
            // Reported written: for the original client, that is delivery.
            for &tag in &plain {
                self.checker.written_plain(now, ConnNo(conn.0), tag);
            }
        }
        plain.clear();
        self.plain_tags = plain;
        acked.clear();
        self.acked_ids = acked;
        batch.clear_written();
        let jobs = std::mem::take(&mut batch.jobs);
        self.server.as_mut().expect("still up").batch = batch;
        for job in jobs {
            let (outcome, spent) = self.hasher.run_measured(&job);
            self.checker.password_job_ran(now, ConnNo(conn.0), spent.map(stored_cost));
            // The job's connection still exists: it submitted the job in this very batch.
            let c = self.server.as_mut().and_then(|up| up.conns.get_mut(conn));
            let delay = c.expect("the job's connection").rng.gen_range(0..=self.mix.hash_ms_max);
            let ev = Ev::Password { done: Box::new((job.job, outcome)), epoch: self.epoch };
            self.schedule(now + delay, ev);
        }
        self.after_host();
        (failed, taken, took)
    }

    /// The connection's writer is done: the host hears it last; a broken one is reset.
    fn end_conn(&mut self, conn: ConnId, reset: bool) {
        let Some(up) = &mut self.server else { return };
        if up.conns.remove(conn).is_none() {
            return;
        }
        self.checker.conn_ended(self.now_ms, ConnNo(conn.0));
        up.host.ended(self.now_ms, conn);
        self.after_host();
        if reset {
            self.client_lost(conn);
            self.net.reset(conn);
        }
    }

    /// The client's side of `conn` learns the connection is gone (call before forgetting it).
    fn client_lost(&mut self, conn: ConnId) {
        let Some((client, _)) = self.net.owner(conn) else { return };
        let mut acts = std::mem::take(&mut self.acts);
        self.clients[client].closed(conn, &mut acts);
        self.carry_out(client, acts);
    }

    /// A connection was reset under the server: its reader's read fails (a relay's reader
    /// closes the mailbox) and its writer's next write fails.
    fn server_reset(&mut self, conn: ConnId) {
        let Some(c) = self.server.as_mut().and_then(|up| up.conns.get_mut(conn)) else { return };
        c.socket.break_it();
        match c.chan {
            Channel::Relay => {
                c.mailbox.close();
                self.wake_writer(conn);
            }
            // A thread in `read` sees the error now; one waiting on its mailbox, at its next
            // write.
            Channel::Command if c.reading => self.read_command(conn),
            Channel::Command => {}
        }
    }

    fn feed(&mut self, event: Event<'_>) {
        let Some(up) = &mut self.server else { return };
        up.host.handle(self.now_ms, event);
        self.after_host();
    }

    /// After every call into the host: trace and check what reached the disk, schedule the
    /// sync, the writers that have work and the next tick.
    fn after_host(&mut self) {
        let now = self.now_ms;
        let Some(up) = &mut self.server else { return };
        let sink = up.host.sink_mut();
        // Most calls persist nothing and touch no connection: the emptiness checks spare the
        // setup and drop of empty drains on the simulator's hottest path.
        if !sink.persisted.is_empty() {
            for (lsn, record) in sink.persisted.drain(..) {
                self.trace.line(now, Line::Persist { lsn: lsn.0, record: &record });
                self.checker.record_written(now, lsn.0);
                let row = match &record {
                    Record::Message { id, text, to, .. } => {
                        let to = check::AccountId(to.0);
                        self.checker.persisted_message(text, to);
                        self.checker.persisted_id(now, id.0, text);
                        self.checker.queued_on_disk(now, lsn.0, to, id.0, text.len());
                        0
                    }
                    Record::Register { account, name, password_hash } => {
                        let account = check::AccountId(account.0);
                        self.checker.stored_password(now, account, name, password_hash);
                        self.checker.persisted_register(now, lsn.0, name, account);
                        self.checker.registered_on_disk(now, lsn.0, account);
                        1
                    }
                    Record::Delete { account } => {
                        self.checker.persisted_delete(now, lsn.0, check::AccountId(account.0));
                        self.checker.deleted_on_disk(lsn.0, check::AccountId(account.0));
                        2
                    }
                    Record::Delivered { to, ids } => {
                        let to = check::AccountId(to.0);
                        let ids = ids.iter().map(|id| id.0);
                        self.checker.persisted_delivered(now, to, ids.clone());
                        self.checker.delivered_on_disk(lsn.0, to, ids);
                        3
                    }
                };
                self.records[row] += 1;
            }
        }
        if !sink.snapshots.is_empty() {
            for lsn in sink.snapshots.drain(..) {
                self.trace.line(now, Line::Snapshot { lsn: lsn.0 });
                self.coverage.count("snapshot");
                self.snapshots += 1;
            }
        }
        let mut touched = std::mem::take(&mut up.touched);
        up.host.take_touched(&mut touched);
        let mut wakes = std::mem::take(&mut up.wakes);
        up.host.take_wakes(&mut wakes);
        self.arm_writer();
        if !touched.is_empty() {
            for conn in touched.drain(..) {
                let Some(c) = self.server.as_ref().and_then(|up| up.conns.get(conn)) else {
                    continue;
                };
                let closed = c.mailbox.is_closed();
                let woken = wakes.iter().any(|mailbox| Arc::ptr_eq(mailbox, &c.mailbox));
                if closed {
                    // The host hung it up (or its reader ended): the deadlines' fact.
                    self.checker.conn_closed(now, ConnNo(conn.0));
                }
                if c.chan == Channel::Relay {
                    self.sent_through(conn);
                }
                // A thread waiting in `take_all` wakes only when the host owes it a wake (as
                // the TCP adapter's threads do) or its mailbox closes; one at work takes what
                // came before it waits again; one in `read` wakes for the close alone.
                if closed || woken {
                    self.wake_writer(conn);
                }
            }
        }
        wakes.clear();
        if let Some(up) = &mut self.server {
            up.touched = touched;
            up.wakes = wakes;
        }
        self.arm_tick();
    }

    /// Sends what the host wrote straight to `conn`'s socket (`Host::write_through`) and
    /// tells the checker of the pushes it wrote whole, as a writer's batch does.
    fn sent_through(&mut self, conn: ConnId) {
        let now = self.now_ms;
        let Some(up) = &mut self.server else { return };
        let Some(c) = up.conns.get_mut(conn) else { return };
        let mut bytes = Vec::new();
        c.socket.take_through(&mut bytes);
        if bytes.is_empty() {
            return;
        }
        let frames = c.through_frames(&bytes);
        let ids: Vec<u64> = frames.iter().filter_map(|f| acked_push_id(f)).collect();
        let last = ids.last().copied();
        self.trace.line(now, Line::Through { conn, len: bytes.len(), last });
        self.coverage.count("relay: a push written straight to an idle relay");
        if frames.is_empty() {
            self.coverage.count("relay: a push cut short by a full send buffer");
        }
        self.checker.caps_frames_taken(now, ConnNo(conn.0), &frames);
        // A push written or tried: the handshake bound the relay.
        self.checker.relay_pushed(now, ConnNo(conn.0));
        if let (true, Some(last)) = (self.send(conn, Way::Down, bytes), last) {
            self.checker.relay_written(ConnNo(conn.0), last);
            self.checker.acked_pushes_written(now, ConnNo(conn.0), &ids);
        }
    }

    /// Schedules the store's writer thread's turn if it has a reason to run and none is
    /// scheduled: what it waits for is queued (it wakes as late as a connection's writer
    /// thread may, `writer_ms_max`), or a snapshot has work (it comes back after its poll).
    fn arm_writer(&mut self) {
        let Some(up) = &mut self.server else { return };
        if up.writer_scheduled {
            return;
        }
        let store = &up.host.sink().store;
        let delay = if store.writer_ready() {
            self.timing_rng.gen_range(0..=self.mix.writer_ms_max)
        } else if store.writer_polls() {
            crate::store::commit::SNAPSHOT_POLL_MS
        } else {
            return;
        };
        up.writer_scheduled = true;
        let at = self.now_ms + delay;
        self.schedule(at, Ev::Writer { epoch: self.epoch });
    }

    /// The store's writer thread's turn: what it reports durable goes to the server (as the
    /// server's writer's callback does), the sync it starts ends after a drawn fsync time,
    /// the snapshot it begins is encoded by its helper meanwhile.
    fn writer_turn(&mut self) {
        let now = self.now_ms;
        let Some(up) = &mut self.server else { return };
        up.writer_scheduled = false;
        let turn = up.host.sink_mut().store.writer_turn();
        if turn.sync_started {
            let delay = self.timing_rng.gen_range(0..=self.mix.fsync_ms_max);
            self.schedule(now + delay, Ev::Sync { epoch: self.epoch });
        }
        if turn.snapshot_began {
            let delay = self.snapshot_rng.gen_range(0..=SNAPSHOT_ENCODE_MS_MAX);
            self.schedule(now + delay, Ev::SnapshotEncoded { epoch: self.epoch });
        }
        if turn.capped {
            self.coverage.count("store: a writer's take capped, the rest left queued");
        }
        if turn.second_sync {
            let detail = "a sync was handed out while the last one was in flight".to_owned();
            self.checker_fail("the log writer keeps one sync in flight", detail);
        }
        if turn.appended_while_syncing {
            self.coverage.count("store: records appended while a sync is in flight");
        }
        match turn.durable {
            Some(lsn) => {
                self.trace.line(now, Line::Durable { lsn: lsn.0 });
                self.checker.records_durable(now, lsn.0);
                // Arms the writer again after the host's step.
                self.feed(Event::Durable { lsn });
            }
            None => self.arm_writer(),
        }
    }

    fn arm_tick(&mut self) {
        let Some(up) = &mut self.server else { return };
        let Some(deadline) = up.host.poll_timeout() else { return };
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
        let chan = if rng.gen_bool(0.5) { Channel::Command } else { Channel::Relay };
        let action = if roll < mix.reset_weight {
            Action::Reset { client, channel: chan }
        } else if roll < mix.reset_weight + mix.partition_weight {
            let dir = [Dir::Up, Dir::Down, Dir::Both][rng.gen_range(0..3)];
            let channel = [None, Some(Channel::Command), Some(Channel::Relay)][rng.gen_range(0..3)];
            Action::Partition {
                client,
                dir,
                channel,
                for_ms: rng.gen_range(1..=mix.partition_ms_max.max(1)),
            }
        } else {
            let down_ms = rng.gen_range(0..=mix.crash_down_ms_max);
            let roll: f64 = self.kill_rng.gen();
            let how = match roll {
                r if r < KILL_P => Down::Kill,
                r if r < KILL_P + STOP_P => Down::Stop,
                _ => Down::Power,
            };
            Action::Crash { down_ms, how }
        };
        let next = self.now_ms + self.fault_rng.gen_range(1..=2 * mix.fault_interval_ms);
        self.schedule(next, Ev::Fault);
        self.apply_fault(action);
    }

    fn apply_fault(&mut self, action: Action) {
        let now = self.now_ms;
        self.trace.line(now, Line::Fault { action: &action });
        if let Some(log) = &mut self.faults_log {
            log.push(Step { at_ms: now, action: action.clone() });
        }
        match action {
            Action::Client { .. } => unreachable!("client steps go to scripts"),
            Action::Partition { client, dir, channel, for_ms } => {
                self.coverage.count("fault: partition");
                self.net.partition(client, dir, channel, now + for_ms)
            }
            Action::Heal => self.net.heal(),
            Action::Reset { client, channel } => {
                let Some(conn) = self.clients.get(client).and_then(|c| c.conn(channel)) else {
                    return;
                };
                self.coverage.count("fault: reset");
                self.faulted.insert(conn);
                self.checker.conn_reset(ConnNo(conn.0));
                self.client_lost(conn);
                self.net.reset(conn);
                self.server_reset(conn);
            }
            Action::Crash { down_ms, how } => self.crash(down_ms, how),
        }
    }

    fn crash(&mut self, down_ms: u64, how: Down) {
        let Some(mut up) = self.server.take() else { return };
        self.coverage.count(match how {
            Down::Power => "fault: crash",
            Down::Kill => "fault: process killed",
            Down::Stop => "fault: server stopped",
        });
        if self.snapshots > 0 {
            self.coverage.count("fault: crash after a snapshot");
        }
        if up.host.sink().store.syncing() {
            self.coverage.count("fault: crash while a sync is in flight");
        }
        match (up.host.sink().store.has_unsynced(), how) {
            // Records were appended and not yet synced: the crash may lose (or tear) them.
            (true, Down::Power) => self.coverage.count("fault: crash losing unsynced records"),
            // Recovery will read them, unsynced: a power loss may still take them.
            (true, Down::Kill) => {
                self.coverage.count("fault: process killed with unsynced records")
            }
            // The writer must commit them before it stops.
            (true, Down::Stop) => {
                self.coverage.count("fault: server stopped with unsynced records")
            }
            _ => {}
        }
        if how == Down::Stop {
            self.close_all(&mut up);
        }
        let mut store = up.into_store();
        if store.snapshotting() {
            self.coverage.count("fault: crash while a snapshot is written");
        }
        self.crashes += 1;
        self.epoch += 1;
        self.checker.crashed(self.now_ms);
        self.checker.deadlines_crashed(self.now_ms);
        match how {
            Down::Power => store.crash(&mut self.disk_rng, self.mix.torn_writes > 0),
            Down::Kill => store.kill(),
            Down::Stop => {
                let stopped = store.stop();
                let detail = || format!("still running after {ROUNDS_MAX} rounds of its threads");
                self.checker.judge_stop(
                    self.now_ms,
                    stopped,
                    "a stopped server's log writer ends",
                    detail,
                );
                self.checker.stopped();
            }
        }
        self.store = Some(store);
        for conn in self.net.conns() {
            let Some((client, _)) = self.net.owner(conn) else { continue };
            self.net.reset(conn);
            self.faulted.insert(conn);
            let mut acts = std::mem::take(&mut self.acts);
            self.clients[client].closed(conn, &mut acts);
            self.carry_out(client, acts);
        }
        self.schedule(self.now_ms + down_ms, Ev::Restart { epoch: self.epoch });
    }

    /// A graceful shutdown's first step, as `net::Server::shutdown` takes it: the host closes
    /// every connection (each mailbox closed, each socket hung up).
    fn close_all(&mut self, up: &mut Up) {
        up.host.close_all();
        let open = up.conns.iter().filter(|c| !c.mailbox.is_closed()).count();
        let detail = || format!("{open} connections' mailboxes still open");
        self.checker.judge_stop(
            self.now_ms,
            open == 0,
            "a stopped server closes every connection",
            detail,
        );
    }

    fn restart(&mut self) {
        if self.server.is_some() {
            return;
        }
        let rng = child(self.seed, Stream::Server, u64::from(self.epoch));
        let mut store = self.store.take().expect("a crashed server left its disk");
        let recovered = store.recover().and_then(|(records, last)| {
            Server::recover(self.config.clone(), rng, records, last).map_err(|e| e.to_string())
        });
        match recovered {
            Ok(core) => {
                self.trace.line(self.now_ms, Line::Restart { lsn: core.last_lsn().0 });
                self.checker.recovered(self.now_ms, core.last_lsn().0);
                self.server = Some(Up::new(core, store));
                self.arm_tick();
            }
            Err(error) => {
                self.store = Some(store);
                self.checker_fail("recovery succeeds", error)
            }
        }
    }

    fn checker_fail(&mut self, invariant: &'static str, detail: String) {
        self.checker.fail_with(self.now_ms, invariant, detail);
    }

    // ---- rest --------------------------------------------------------------------------------

    /// After a run judged clean, every client hangs up every connection and reads no more, and
    /// time passes beyond every window the server keeps something for (tickets, login
    /// failures, registrations) and one sweep more; then the server must hold nothing of its
    /// clients: no connection, session, ticket or job, no failure or registration remembered,
    /// no timer armed. Memory that outlives what it was kept for is a leak no client sees.
    /// Runs the phase to its end ([`Ev::RestEnd`]).
    /// After a run judged clean, the world runs on (clients read, the server's threads run,
    /// no client starts anything and no fault comes) until nothing is in flight: no bytes on
    /// the network, no writer or sync waiting to run. What clients then see is all the server
    /// will ever tell them of the run, so the checker can judge what must have happened by
    /// now (a relay closed, a push arrived) without a timing bound.
    fn settle(&mut self) {
        self.phase = Phase::Settle;
        let until_ms = self.now_ms.saturating_add(SETTLE_MS_MAX);
        while !self.quiet() && self.queue.peek_time().is_some_and(|at| at <= until_ms) {
            let (at_ms, ev) = self.queue.pop().expect("peeked");
            if !self.advance_to(at_ms, &ev) {
                return;
            }
            self.handle(ev);
            if self.checker.violation().is_some() {
                return;
            }
        }
        let quiet = self.quiet();
        self.trace.line(self.now_ms, Line::Settled { quiet });
        self.checker.settled(self.now_ms, quiet);
    }

    /// Nothing is in flight: the network holds no bytes, and no writer, command thread or
    /// sync of the server waits to run.
    fn quiet(&self) -> bool {
        let server_idle = self.server.as_ref().is_none_or(|up| {
            !up.writer_scheduled
                && !up.host.sink().store.syncing()
                && up.conns.iter().all(|c| !c.scheduled)
        });
        server_idle && self.net.idle()
    }

    fn rest(&mut self) {
        self.phase = Phase::Rest;
        let now = self.now_ms;
        self.trace.line(now, Line::RestBegin);
        for conn in self.net.conns() {
            if let Some((client, _)) = self.net.owner(conn) {
                self.trace.line(now, Line::Close { client, conn });
            }
            if let Some(at) = self.net.send_eof(now, conn, Way::Up) {
                self.schedule(at, Ev::Deliver { conn, way: Way::Up });
            }
        }
        let config = &self.config;
        let windows = [config.ticket_ttl_ms, config.login_failure_window_ms];
        let longest_ms = windows.into_iter().fold(config.registration_window_ms, u64::max);
        // Two windows and a second: the last entry lapses a window after it was made, and
        // the sweep that forgets it comes at most a window (its interval) later.
        self.schedule(now.saturating_add(longest_ms.saturating_mul(2)) + 1_000, Ev::RestEnd);
        while let Some((at_ms, ev)) = self.queue.pop() {
            if !self.advance_to(at_ms, &ev) {
                break;
            }
            self.handle(ev);
            if self.checker.violation().is_some() || self.phase == Phase::Done {
                break;
            }
        }
    }

    /// An event of the rest phase: the server's side runs on; clients read nothing and do
    /// nothing; no fault comes.
    fn handle_resting(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { conn, way: Way::Up } => self.deliver(conn, Way::Up),
            Ev::Deliver { conn, way: Way::Down } => {
                let _ = self.net.take_due(self.now_ms, conn, Way::Down);
            }
            Ev::RestEnd => {
                self.trace.line(self.now_ms, Line::RestEnd);
                if let Some(up) = &self.server {
                    let held = up.host.server().held();
                    let routes = ("connections the host routes", count(up.host.routes_len()));
                    let facts: Vec<_> = held_facts(&held).into_iter().chain([routes]).collect();
                    self.checker.rested(self.now_ms, &facts);
                }
                if self.checker.violation().is_none() {
                    self.recover_at_rest();
                }
                self.phase = Phase::Done;
            }
            _ => {}
        }
    }

    /// At rest every record is durable, so a crash loses nothing: the server recovered from
    /// its disk must hold what the resting one held (accounts, with their names, hashes and
    /// queues, and every id), whatever mix of snapshot and log the disk holds. Judged as
    /// equality of the shortest records that rebuild each and of what the getters show, which
    /// owes nothing to how recovery works. Then once more from a snapshot of everything, so
    /// that every seed recovers its whole state from a snapshot and not only those whose
    /// limits made one.
    fn recover_at_rest(&mut self) {
        let Some(up) = &self.server else { return };
        let counted = up.host.sink().store.log_bytes_since_snapshot();
        let Some(held) = self.crash_and_compare_at_rest() else { return };
        // The log bytes that count towards the next snapshot are on the disk: recovery must
        // count them again, or a server restarted often enough never compacts.
        let Some(up) = &self.server else { return };
        let recounted = up.host.sink().store.log_bytes_since_snapshot();
        let detail = || format!("{counted:?} bytes before the crash, {recounted:?} recovered");
        let invariant = "a recovered store counts the log bytes since its snapshot";
        self.checker.judge_recovery(self.now_ms, counted == recounted, invariant, detail);
        if self.checker.violation().is_none() && self.snapshot_everything_at_rest(&held) {
            self.crash_and_compare_at_rest();
        }
    }

    /// Writes `records`, the resting server's state, as a snapshot, driven to its end as the
    /// writer drives one; judges that it ends and leaves no file it covers.
    fn snapshot_everything_at_rest(&mut self, records: &[Record]) -> bool {
        let Some(up) = &mut self.server else { return false };
        let lsn = up.host.server().snapshot_view().lsn();
        let store = &mut up.host.sink_mut().store;
        // One the limits began may still be in progress: it ends first.
        let mut done = finish_snapshot(store.as_mut());
        if done {
            store.request_snapshot(lsn, records);
            done = finish_snapshot(store.as_mut());
        }
        if !done {
            let detail =
                format!("still in progress after {ROUNDS_MAX} rounds of the store's threads");
            self.checker_fail("a snapshot at rest completes", detail);
            return false;
        }
        // Everything is in the snapshot: the disk holds it and the segment after it, no file
        // it covers (a disk that only grows loses nothing a client could see); a server that
        // never logged a record has no snapshot to write, only its first segment.
        if let Some(mut files) = store.file_names() {
            files.sort();
            let expected_len = if lsn.0 == 0 { 1 } else { 2 };
            let held_len = files.len();
            let detail = || format!("the disk holds {files:?}");
            let invariant = "a snapshot done leaves no file it covers";
            self.checker.judge_recovery(self.now_ms, held_len == expected_len, invariant, detail);
        }
        self.coverage.count("rest: recovered from a snapshot of everything");
        self.checker.violation().is_none()
    }

    /// Crashes the resting server and restarts it from its disk; judges that it holds what it
    /// held, and returns that.
    fn crash_and_compare_at_rest(&mut self) -> Option<Vec<Record>> {
        let up = self.server.take()?;
        let before = up.host.server().snapshot_view().records();
        // Also as the getters see it, apart from the snapshot's records: were those to lose
        // something (a name's spelling), both servers' records would lose it alike.
        let held_before = accounts_held(up.host.server());
        let mut store = up.into_store();
        store.crash(&mut self.disk_rng, false);
        self.epoch += 1;
        self.store = Some(store);
        self.restart();
        let server = self.server.as_ref()?.host.server();
        let (after, held_after) = (server.snapshot_view().records(), accounts_held(server));
        let differs = before.iter().zip(&after).position(|(b, a)| b != a);
        let detail = || match differs {
            Some(at) => format!("record {at} was {:?}, recovered as {:?}", before[at], after[at]),
            None if before.len() != after.len() => {
                format!("{} records before the crash, {} recovered", before.len(), after.len())
            }
            None => format!("accounts and queues {held_before:?}, recovered as {held_after:?}"),
        };
        let same = before == after && held_before == held_after;
        let invariant = "a server recovered at rest holds what it held";
        self.checker.judge_recovery(self.now_ms, same, invariant, detail);
        Some(after)
    }

    // ---- liveness --------------------------------------------------------------------------------

    /// Heals every fault, then has each user with queued messages log in with a relay.
    fn begin_liveness(&mut self) {
        self.phase = Phase::Liveness;
        let now = self.now_ms;
        // The workload ends here even where it was cut short (a patient guesser told to wait
        // a minute goes on for minutes): a client still sending would owe messages to users
        // the phase does not know are owed (`--faults swarm --clients 16 --ops 100 --names
        // 16` seed 46: two sends to u14 at 725 s, never fetched, reported lost).
        for client in 0..self.clients.len() {
            let mut acts = std::mem::take(&mut self.acts);
            self.clients[client].cut(&mut acts);
            self.carry_out(client, acts);
        }
        self.trace.line(now, Line::LivenessBegin { owed: self.checker.owed_len() });
        self.checker.liveness_began(now);
        self.net.calm();
        if self.server.is_none() {
            self.restart();
        }
        // Nothing owed and nothing in flight: judged at once. A request still in flight (one
        // written whole as the workload was cut) is given the phase to be answered in.
        if self.checker.owed_len() == 0 && self.checker.unanswered_len() == 0 {
            self.checker.finish(now);
            self.phase = Phase::Done;
            return;
        }
        for (index, (name, password)) in self.checker.owed_names().into_iter().enumerate() {
            let password = password.unwrap_or_else(|| super::workload::password_of(&name));
            // Where the original client's handshake is accepted, every other owed user takes
            // its backlog as the original client does, on a bare relay whose written pushes
            // (not acknowledgements) must bring the next ones: a backlog beyond the push
            // window then needs every written report to push on.
            let ticket = !self.config.bare_relay_allowed || index % 2 == 0;
            let script =
                VecDeque::from([(now, Op::Login { name, password }), (now, Op::Relay { ticket })]);
            let id = self.add_client(Driver::Script(script), now);
            self.clients[id].persistent = true;
        }
        self.progress_at_check = self.checker.delivery_progress();
        self.schedule(now + self.opts.liveness_ms, Ev::LivenessEnd);
    }
}

/// An argon2 cost in the checker's terms (it owes nothing to `auth`).
fn stored_cost(HashCost { memory_kib, iterations }: HashCost) -> check::StoredCost {
    check::StoredCost { memory_kib, iterations }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// What the server holds, as the facts the checker judges: what, and how many.
fn held_facts(held: &Held) -> [(&'static str, u64); 9] {
    [
        ("connections", count(held.conns)),
        ("addresses counted against", count(held.peers)),
        ("sessions", count(held.sessions)),
        ("accounts with closing bare relays", count(held.closing_bare_relays)),
        ("tickets", count(held.tickets)),
        ("password checks", count(held.jobs)),
        ("login failure counts", u64::from(!held.throttle_empty)),
        ("registration counts", u64::from(!held.registrations_empty)),
        ("armed timers", u64::from(held.timer_ms.is_some())),
    ]
}

/// Whether a frame is a failure (`-1\n...`).
fn is_failure(frame: &[u8]) -> bool {
    frame.get(HEADER_LEN..).is_some_and(|body| body.starts_with(b"-1\n"))
}

/// Whether a frame is a failure frame announcing a close (`spec::Notice`).
fn is_close_notice(frame: &[u8]) -> bool {
    is_failure(frame)
        && super::spec::Notice::of(&String::from_utf8_lossy(&frame[HEADER_LEN + 3..])).is_some()
}

/// Counts the notice a relay's failure frame carries (as its client reads it on the wire).
fn count_relay_notice(coverage: &mut Coverage, frame: &[u8]) {
    let text = String::from_utf8_lossy(&frame[HEADER_LEN + 3..]);
    if let Some(notice) = super::spec::Notice::of(&text) {
        coverage.count(notice.row());
    }
    if text.contains("expired") {
        coverage.count("limit: ticket expired");
    }
}

/// The id of the message a push frame for an acknowledging relay (`7\nID\nSENDER\nTEXT`)
/// carries.
fn acked_push_id(frame: &[u8]) -> Option<u64> {
    let body = frame.get(HEADER_LEN..)?.strip_prefix(b"7\n")?;
    let digits = &body[..body.iter().position(|&b| b == b'\n')?];
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Each account's name, as registered, and the ids waiting for it, in registration order.
fn accounts_held(server: &Server) -> Vec<(String, Vec<u64>)> {
    let queued = |name: &str| {
        let account = server.account_id(name);
        account.map(|a| server.queued_ids_iter(a).map(|id| id.0).collect()).unwrap_or_default()
    };
    let held = |name: String| {
        let ids = queued(&name);
        (name, ids)
    };
    server.account_names().into_iter().map(held).collect()
}

/// Drives a snapshot asked for to its end with rounds of the store's threads
/// ([`SimStore::run_round`]); false if it has not ended after [`ROUNDS_MAX`] rounds. At rest every record is durable already: what the writer reports is
/// nothing new.
fn finish_snapshot(store: &mut dyn SimStore) -> bool {
    for _ in 0..ROUNDS_MAX {
        if !store.snapshotting() {
            return true;
        }
        store.run_round();
    }
    !store.snapshotting()
}

/// The tag of the message a push frame for the original client (`0\nSENDER:TEXT`) carries.
fn plain_push_tag(frame: &[u8]) -> Option<super::check::Tag> {
    let body = frame[HEADER_LEN..].strip_prefix(b"0\n")?;
    let text = body.iter().position(|&b| b == b':').map_or(body, |at| &body[at + 1..]);
    // A tag is ASCII and ends at the first space: only that much is decoded (a byte that is
    // not UTF-8 there is no digit either, so the text has no tag).
    let tag = text.iter().position(|&b| b == b' ').map_or(text, |at| &text[..at]);
    super::check::tag_key(std::str::from_utf8(tag).ok()?)
}
