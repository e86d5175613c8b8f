//! A minimal synchronous driver for unit tests of the core, on the shipped host: runs password
//! jobs at once, makes records durable at once (unless told not to), decodes what each
//! connection receives, and runs each connection's writer at once (`host::instant`), reporting
//! relay writes unless told not to and replies always (the test's clients read every reply).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{Channel, Config, ConnId, Event, Lsn, PasswordJob, Peer, Record, Server};
use crate::auth::{HashCost, Hasher};
use crate::host::instant::{Delivery, InstantWriters};
use crate::host::{Batch, Host, Outgoing, RecordSink};
use crate::wire::{encode, Decoder};

/// Keeps every record; durable only when the harness says so.
#[derive(Default)]
struct RecordLog(Rc<RefCell<Vec<(Lsn, Record)>>>);

impl RecordSink for RecordLog {
    fn persist(&mut self, lsn: Lsn, record: Record) {
        self.0.borrow_mut().push((lsn, record));
    }
    fn is_synchronous(&self) -> bool {
        false
    }
}

/// What the peers of the harness's connections see, filled by the writers.
#[derive(Default)]
struct Peers {
    received: BTreeMap<ConnId, Vec<String>>,
    decoders: BTreeMap<ConnId, Decoder>,
    /// Writes not reported to the host yet.
    unreported: BTreeMap<ConnId, Batch>,
}

impl Peers {
    fn deliver(&mut self, conn: ConnId, items: &[Outgoing]) {
        let decoder = self.decoders.entry(conn).or_insert_with(|| Decoder::new(usize::MAX >> 1));
        let unreported = self.unreported.entry(conn).or_default();
        for item in items {
            let frame = match item {
                Outgoing::Reply(frame) => {
                    unreported.replies += 1;
                    frame
                }
                Outgoing::Push { msg, frame } => {
                    unreported.last_push = Some(*msg);
                    frame
                }
                Outgoing::Password(_) => continue,
            };
            decoder.feed(frame);
            while let Some(body) = decoder.decode().unwrap() {
                self.received.entry(conn).or_default().push(String::from_utf8(body).unwrap());
            }
        }
    }
}

pub(crate) struct Harness {
    host: Host<(), RecordLog>,
    writers: InstantWriters,
    persisted: Rc<RefCell<Vec<(Lsn, Record)>>>,
    hasher: Hasher,
    pub now_ms: u64,
    pub auto_durable: bool,
    /// Report pushes as written at the end of every drain.
    pub auto_written: bool,
    pub records: Vec<(Lsn, Record)>,
    /// Keep password jobs in `held_jobs` instead of running them (races between checks).
    pub hold_jobs: bool,
    pub held_jobs: Vec<PasswordJob>,
    peers: Peers,
    /// Connections the core closed (their writers reported the end).
    pub closed: BTreeSet<ConnId>,
    open: BTreeSet<ConnId>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self::with_server(Server::new(config, ChaCha20Rng::seed_from_u64(7)))
    }

    pub fn with_server(server: Server) -> Self {
        let sink = RecordLog::default();
        let persisted = sink.0.clone();
        let mut host = Host::new(server, sink);
        let writers = InstantWriters::new(&mut host);
        Harness {
            host,
            writers,
            persisted,
            hasher: Hasher::new(HashCost::CHEAPEST).unwrap(),
            now_ms: 1_000,
            auto_durable: true,
            auto_written: true,
            records: Vec::new(),
            hold_jobs: false,
            held_jobs: Vec::new(),
            peers: Peers::default(),
            closed: BTreeSet::new(),
            open: BTreeSet::new(),
        }
    }

    /// The core under test.
    pub fn server(&self) -> &Server {
        self.host.server()
    }

    pub fn input(&mut self, event: Event<'_>) {
        self.host.handle(self.now_ms, event);
        self.drain();
    }

    pub fn open(&mut self, conn: u64, channel: Channel, peer: u128) -> ConnId {
        let conn = ConnId(conn);
        self.open.insert(conn);
        self.host.open(self.now_ms, conn, channel, Peer(peer), ());
        self.drain();
        conn
    }

    /// The peer closes `conn`: its writer flushes to nobody and reports the end.
    pub fn peer_close(&mut self, conn: ConnId) {
        self.open.remove(&conn);
        if let Some(mailbox) = self.host.mailbox(conn) {
            mailbox.close();
        }
        self.writers.wake(conn);
        self.drain();
    }

    pub fn raw(&mut self, conn: ConnId, bytes: &[u8]) {
        self.input(Event::Received { conn, bytes });
    }

    pub fn send(&mut self, conn: ConnId, body: &str) {
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        self.raw(conn, &frame);
    }

    /// Sends a request and returns the one reply it gets.
    pub fn request(&mut self, conn: ConnId, body: &str) -> String {
        self.send(conn, body);
        let mut got = self.take(conn);
        assert_eq!(got.len(), 1, "expected one reply to {body:?}, got {got:?}");
        got.remove(0)
    }

    /// A command connection logged in (registering first if needed) as `name`.
    pub fn user(&mut self, conn: u64, name: &str) -> ConnId {
        let conn = self.open(conn, Channel::Command, 1);
        let reply = self.request(conn, &format!("3\n{name}\npw"));
        if reply != "0\nSuccessful Created and logged in" {
            assert_eq!(self.request(conn, &format!("1\n{name}\npw")), "0\nSuccessful Login");
        }
        conn
    }

    /// A relay for `name` opened with a bare handshake.
    pub fn bare_relay(&mut self, conn: u64, name: &str) -> ConnId {
        let relay = self.open(conn, Channel::Relay, 1);
        self.send(relay, name);
        relay
    }

    /// A relay for the user logged in on `command`, opened with a ticket.
    pub fn ticket_relay(&mut self, conn: u64, command: ConnId, name: &str) -> ConnId {
        let ticket = self.request(command, "6");
        let ticket = ticket.strip_prefix("0\n").expect("ticket granted");
        let relay = self.open(conn, Channel::Relay, 1);
        self.send(relay, &format!("{name}\n{ticket}"));
        relay
    }

    pub fn take(&mut self, conn: ConnId) -> Vec<String> {
        self.peers.received.remove(&conn).unwrap_or_default()
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.input(Event::Tick);
    }

    pub fn make_durable(&mut self) {
        let lsn = self.server().last_lsn();
        self.input(Event::Durable { lsn });
    }

    pub fn drain(&mut self) {
        loop {
            let (peers, hasher, held) = (&mut self.peers, &self.hasher, &mut self.held_jobs);
            let hold = self.hold_jobs;
            let mut deliver = |_: &Server, conn: ConnId, items: &mut [Outgoing]| {
                peers.deliver(conn, items);
                Delivery::Held
            };
            let mut job = |job: &PasswordJob| {
                if hold {
                    held.push(job.clone());
                    return None;
                }
                Some(hasher.run(job))
            };
            self.writers.settle(&mut self.host, self.now_ms, &mut deliver, &mut job);
            self.records.append(&mut self.persisted.borrow_mut());
            let ended: Vec<ConnId> =
                self.open.iter().copied().filter(|c| self.host.mailbox(*c).is_none()).collect();
            for conn in ended {
                self.open.remove(&conn);
                self.closed.insert(conn);
                self.peers.unreported.remove(&conn);
            }
            let server = self.host.server();
            if self.auto_durable && server.durable_lsn() < server.last_lsn() {
                let lsn = server.last_lsn();
                self.host.handle(self.now_ms, Event::Durable { lsn });
                continue;
            }
            if !self.report_writes() {
                break;
            }
        }
    }

    /// Reports the replies written, and the pushes too unless they are held. True if any.
    fn report_writes(&mut self) -> bool {
        let mut reported = false;
        for (&conn, batch) in &mut self.peers.unreported {
            let report = Batch {
                replies: std::mem::take(&mut batch.replies),
                last_push: if self.auto_written { batch.last_push.take() } else { None },
                ..Batch::default()
            };
            if report.replies > 0 || report.last_push.is_some() {
                self.host.wrote(self.now_ms, conn, &report);
                reported = true;
            }
        }
        reported
    }
}
