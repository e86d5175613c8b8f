//! A server rig for one loom execution: the real [`Shared`] core and router, connections
//! over memory sockets, and the real thread bodies, spawned on loom threads.
//!
//! Setup (registering, logging in, binding relays, queueing messages) runs on the model's main
//! thread before any other thread exists, so it adds no interleavings; it feeds the core
//! through [`Shared::handle`] exactly as a connection thread would, and answers password jobs
//! with precomputed outcomes, because argon2 under loom's scheduler would be far too slow.

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::memsocket::{self, frame_bodies, Client};
use crate::auth::{HashCost, Hasher};
use crate::core::{
    Channel, Config, ConnId, Event, Lsn, PasswordJob, PasswordOutcome, PasswordWork, Peer, Record,
    Server,
};
use crate::host::mailbox::{Mailbox, PlantedBug};
use crate::host::sync::{thread, Arc, Condvar, Mutex};
use crate::host::{Batch, Outgoing, RecordSink};
use crate::net::command::CommandConn;
use crate::net::driver::Shared;
use crate::net::hashing::HashPool;
use crate::net::relay::RelayConn;
use crate::net::socket::SharedSocket;
use crate::wire::encode;

/// The one password every account of the models has.
pub const PASSWORD: &str = "pw";

/// What is expensive to build and the same for every execution: built once, outside loom.
pub struct Fixture {
    hasher: Hasher,
    /// A real argon2id hash of [`PASSWORD`], so in-model logins verify against it for real.
    password_hash: String,
}

impl Fixture {
    /// Hashes [`PASSWORD`] at the cheapest cost. Call outside `loom::model`.
    pub fn new() -> Self {
        let hasher = Hasher::new(HashCost::CHEAPEST).expect("the cheapest cost is valid");
        let job = PasswordJob {
            job: crate::core::JobId(0),
            conn: ConnId(0),
            password: PASSWORD.to_owned(),
            work: PasswordWork::Hash { salt: [7; 16] },
        };
        let PasswordOutcome::Hashed(password_hash) = hasher.run(&job) else {
            unreachable!("a hash job returns a hash")
        };
        Fixture { hasher, password_hash }
    }

    /// The outcome a password job would have, without hashing.
    fn outcome(&self, job: &PasswordJob) -> PasswordOutcome {
        match &job.work {
            PasswordWork::Hash { .. } => PasswordOutcome::Hashed(self.password_hash.clone()),
            PasswordWork::Verify { hash } => {
                PasswordOutcome::Verified(hash.is_some() && job.password == PASSWORD)
            }
        }
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Self::new()
    }
}

/// A record sink that makes its first `durable_max` records durable at once (all of them when
/// `None`) and never the later ones: a log writer stuck in a slow fsync at shutdown.
struct StallingSink {
    persisted: u64,
    durable_max: Option<u64>,
}

impl RecordSink for StallingSink {
    fn persist(&mut self, _lsn: Lsn, _record: Record) {
        self.persisted += 1;
    }

    fn is_synchronous(&self) -> bool {
        match self.durable_max {
            None => true,
            Some(max) => self.persisted <= max,
        }
    }
}

/// A log for the models that reports durability from a thread of the model, as the store's
/// writer does: synchronous while the world is set up, then ([`LogQueue::arm`]) it queues each
/// record's lsn for [`LogQueue::report_next`].
#[derive(Clone, Default)]
pub struct LogQueue(Arc<LogState>);

#[derive(Default)]
struct LogState {
    queue: Mutex<Queued>,
    added: Condvar,
}

#[derive(Default)]
struct Queued {
    armed: bool,
    lsns: Vec<Lsn>,
}

impl LogQueue {
    /// From now on records wait for [`LogQueue::report_next`] to become durable.
    pub fn arm(&self) {
        self.0.queue.lock().expect("log lock").armed = true;
    }

    /// The log writer's thread body: waits for the next record, then reports it durable
    /// through [`Shared::durable`], which never waits for the core's lock.
    pub(crate) fn report_next(&self, shared: &Shared) {
        let lsn = {
            let mut queue = self.0.queue.lock().expect("log lock");
            while queue.lsns.is_empty() {
                queue = self.0.added.wait(queue).expect("log lock");
            }
            queue.lsns.remove(0)
        };
        shared.durable(lsn);
    }
}

struct QueueSink(LogQueue);

impl RecordSink for QueueSink {
    fn persist(&mut self, lsn: Lsn, _record: Record) {
        let mut queue = self.0 .0.queue.lock().expect("log lock");
        if queue.armed {
            queue.lsns.push(lsn);
            self.0 .0.added.notify_one();
        }
    }

    fn is_synchronous(&self) -> bool {
        !self.0 .0.queue.lock().expect("log lock").armed
    }
}

/// One connection of the world: the server's side and the remote client's.
pub(crate) struct Endpoint {
    pub conn: ConnId,
    pub mailbox: Arc<Mailbox<Outgoing>>,
    pub stream: SharedSocket,
    pub client: Client,
}

pub(crate) struct Rig<'f> {
    pub shared: Arc<Shared>,
    hashing: Arc<HashPool>,
    fixture: &'f Fixture,
    next_conn: u64,
}

impl<'f> Rig<'f> {
    pub fn new(fixture: &'f Fixture) -> Self {
        Self::with_durable_records_max(fixture, None)
    }

    /// A world whose log makes only its first `durable_max` records durable: replies and
    /// pushes that follow a later record are held back for ever.
    pub fn with_durable_records_max(fixture: &'f Fixture, durable_max: Option<u64>) -> Self {
        Self::with_sink(fixture, Box::new(StallingSink { persisted: 0, durable_max }))
    }

    /// A world whose records, once `log` is armed, become durable only when a thread of the
    /// model reports them ([`LogQueue::report_next`]).
    pub fn with_log(fixture: &'f Fixture, log: &LogQueue) -> Self {
        Self::with_sink(fixture, Box::new(QueueSink(log.clone())))
    }

    fn with_sink(fixture: &'f Fixture, sink: Box<dyn RecordSink + Send>) -> Self {
        // The models set relays up with the original client's bare handshake too.
        let config = Config { bare_relay_allowed: true, ..Config::default() };
        let server = Server::new(config, ChaCha20Rng::seed_from_u64(262));
        Rig {
            shared: Arc::new(Shared::new(server, sink)),
            hashing: Arc::new(HashPool::new(fixture.hasher.clone(), 1)),
            fixture,
            next_conn: 1,
        }
    }

    /// Accepts a connection the way the listener does (route first, then `Opened`).
    /// `bug` plants a bug in its mailbox.
    pub fn open(&mut self, channel: Channel, bug: Option<PlantedBug>) -> Endpoint {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        // The adapter's formula (ServerHandle::start); never reached in these small models.
        let len_max = Config::default().push_window_len + 64;
        let mailbox = Arc::new(match bug {
            None => Mailbox::new(len_max),
            Some(bug) => Mailbox::with_planted_bug(len_max, bug),
        });
        let (stream, client) = memsocket::pair();
        self.shared.open_with(conn, channel, Peer(1), mailbox.clone(), stream.clone());
        Endpoint { conn, mailbox, stream, client }
    }

    /// Setup only: feeds one request on a command connection as its thread would, runs any
    /// password job with its precomputed outcome, and returns the replies.
    pub fn request(&self, at: &Endpoint, body: &str) -> Vec<String> {
        self.feed(at, body);
        let mut replies = Vec::new();
        loop {
            let mut items = Vec::new();
            let _ = at.mailbox.try_take_all(&mut items);
            if items.is_empty() {
                return replies;
            }
            let mut batch = Batch::default();
            batch.sort(&mut items);
            for frame in &batch.frames {
                replies.extend(frame_bodies(frame));
            }
            self.shared.wrote(at.conn, &batch);
            for job in batch.jobs.drain(..) {
                let outcome = self.fixture.outcome(&job);
                self.shared.handle(Event::PasswordDone { job: job.job, outcome });
            }
        }
    }

    /// Setup only: feeds one frame as the connection's reader thread would.
    pub fn feed(&self, at: &Endpoint, body: &str) {
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        self.shared.handle(Event::Received { conn: at.conn, bytes: &frame });
    }

    /// Setup only: a command connection logged in as `name`, registering it first.
    pub fn user(&mut self, name: &str) -> Endpoint {
        let at = self.open(Channel::Command, None);
        let reply = self.request(&at, &format!("3\n{name}\n{PASSWORD}"));
        assert_eq!(reply, ["0\nSuccessful Created and logged in"], "registering {name}");
        at
    }

    /// Setup only: a relay for the user logged in on `command`, bound with a bare handshake
    /// (`ticketed` false: the original client, written counts as delivered) or a ticket
    /// (acknowledging client).
    pub fn relay(
        &mut self,
        command: &Endpoint,
        name: &str,
        ticketed: bool,
        bug: Option<PlantedBug>,
    ) -> Endpoint {
        let hello = if ticketed {
            let reply = self.request(command, "6");
            let ticket = reply[0].strip_prefix("0\n").expect("a ticket is granted");
            format!("{name}\n{ticket}")
        } else {
            name.to_owned()
        };
        let relay = self.open(Channel::Relay, bug);
        self.feed(&relay, &hello);
        let account = self.shared.with_server(|s| s.account_id(name)).expect("account exists");
        assert!(self.shared.with_server(|s| s.has_relay(account)), "relay for {name} bound");
        relay
    }

    /// Starts the shipped command thread body on `at`.
    pub fn spawn_command(&self, at: &Endpoint) -> thread::JoinHandle<()> {
        let command = CommandConn {
            shared: self.shared.clone(),
            hashing: self.hashing.clone(),
            conn: at.conn,
            stream: at.stream.clone(),
            mailbox: at.mailbox.clone(),
            reader: None,
        };
        thread::spawn(move || command.run())
    }

    /// Starts the shipped relay writer and reader bodies on `at`, as the listener does.
    pub fn spawn_relay(&self, at: &Endpoint) -> [thread::JoinHandle<()>; 2] {
        let relay = Arc::new(RelayConn {
            shared: self.shared.clone(),
            conn: at.conn,
            stream: at.stream.clone(),
            mailbox: at.mailbox.clone(),
        });
        let (writer, reader) = (LeakOnPanic::new(relay.clone()), LeakOnPanic::new(relay));
        [thread::spawn(move || writer.write_loop()), thread::spawn(move || reader.read_loop())]
    }

    /// Texts of the messages queued in the core for `name`, oldest first (empty if no such
    /// account): what a later relay would still receive.
    pub fn queued_texts(&self, name: &str) -> Vec<String> {
        self.shared.with_server(|server| {
            let Some(account) = server.account_id(name) else { return Vec::new() };
            let queued = server.queued_ids(account);
            let texts: BTreeMap<_, _> = server
                .snapshot()
                .into_iter()
                .filter_map(|record| match record {
                    Record::Message { id, to, text, .. } if to == account => Some((id, text)),
                    _ => None,
                })
                .collect();
            queued.iter().map(|id| texts[id].clone()).collect()
        })
    }

    /// Open connections in the core.
    pub fn connection_count(&self) -> usize {
        self.shared.with_server(Server::connection_count)
    }
}

/// Holds a value that is dropped normally, or leaked if its thread is unwinding.
///
/// When loom finds a deadlock it panics on whichever thread blocked last, and that thread's
/// unwinding drops what it owns; dropping a loom `Arc` then calls into an execution that has no
/// active thread, panics again, and aborts the process, so a test expecting the deadlock could
/// not catch it. Threads that may be blocked when a planted lost wake-up strikes keep their
/// `Arc`s in one of these.
pub(crate) struct LeakOnPanic<T>(Option<T>);

impl<T> LeakOnPanic<T> {
    pub fn new(value: T) -> Self {
        LeakOnPanic(Some(value))
    }
}

impl<T> std::ops::Deref for LeakOnPanic<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("present until dropped")
    }
}

impl<T> std::ops::DerefMut for LeakOnPanic<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("present until dropped")
    }
}

impl<T> Drop for LeakOnPanic<T> {
    fn drop(&mut self) {
        if let Some(value) = self.0.take() {
            if std::thread::panicking() {
                std::mem::forget(value);
            }
        }
    }
}
