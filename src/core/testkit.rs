//! A minimal synchronous driver for unit tests of the core: runs password jobs at once, makes
//! records durable at once (unless told not to), decodes what each connection receives, and
//! reports relay writes the way the TCP adapter's relay thread does.

use std::collections::{BTreeMap, BTreeSet};

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{Channel, Config, ConnId, Event, Input, Lsn, MsgId, Output, Peer, Record, Server};
use crate::auth::{HashCost, Hasher};
use crate::wire::{encode, Decoder};

pub(crate) struct Harness {
    pub server: Server,
    hasher: Hasher,
    pub now_ms: u64,
    pub auto_durable: bool,
    /// Report pushes as written at the end of every drain.
    pub auto_written: bool,
    pub records: Vec<(Lsn, Record)>,
    received: BTreeMap<ConnId, Vec<String>>,
    decoders: BTreeMap<ConnId, Decoder>,
    pub closed: BTreeSet<ConnId>,
    last_pushed: BTreeMap<ConnId, MsgId>,
    replies_unwritten: BTreeMap<ConnId, u32>,
}

impl Harness {
    pub fn new(config: Config) -> Self {
        Self::with_server(Server::new(config, ChaCha20Rng::seed_from_u64(7)))
    }

    pub fn with_server(server: Server) -> Self {
        Harness {
            server,
            hasher: Hasher::new(HashCost::CHEAPEST).unwrap(),
            now_ms: 1_000,
            auto_durable: true,
            auto_written: true,
            records: Vec::new(),
            received: BTreeMap::new(),
            decoders: BTreeMap::new(),
            closed: BTreeSet::new(),
            last_pushed: BTreeMap::new(),
            replies_unwritten: BTreeMap::new(),
        }
    }

    pub fn input(&mut self, event: Event<'_>) {
        self.server.handle_input(Input { now_ms: self.now_ms, event });
        self.drain();
    }

    pub fn open(&mut self, conn: u64, channel: Channel, peer: u128) -> ConnId {
        let conn = ConnId(conn);
        self.input(Event::Opened { conn, channel, peer: Peer(peer) });
        conn
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
        self.received.remove(&conn).unwrap_or_default()
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.input(Event::Tick);
    }

    pub fn make_durable(&mut self) {
        let lsn = self.server.last_lsn();
        self.input(Event::Durable { lsn });
    }

    pub fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(output) = self.server.poll_output() {
                progressed = true;
                self.apply_output(output);
            }
            if self.auto_durable && self.server.durable_lsn() < self.server.last_lsn() {
                let lsn = self.server.last_lsn();
                self.server
                    .handle_input(Input { now_ms: self.now_ms, event: Event::Durable { lsn } });
                progressed = true;
            }
            // The test's clients read every reply at once.
            for (conn, count) in std::mem::take(&mut self.replies_unwritten) {
                let event = Event::RepliesWritten { conn, count };
                self.server.handle_input(Input { now_ms: self.now_ms, event });
                progressed = true;
            }
            if self.auto_written {
                for (conn, last) in std::mem::take(&mut self.last_pushed) {
                    let event = Event::Written { conn, last };
                    self.server.handle_input(Input { now_ms: self.now_ms, event });
                    progressed = true;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    fn apply_output(&mut self, output: Output) {
        match output {
            Output::Persist { lsn, record } => self.records.push((lsn, record)),
            Output::Password(job) => {
                let outcome = self.hasher.run(&job);
                let event = Event::PasswordDone { job: job.job, outcome };
                self.server.handle_input(Input { now_ms: self.now_ms, event });
            }
            Output::Reply { conn, frame } => {
                self.deliver(conn, &frame);
                *self.replies_unwritten.entry(conn).or_default() += 1;
            }
            Output::Push { conn, msg, frame } => {
                self.deliver(conn, &frame);
                self.last_pushed.insert(conn, msg);
            }
            Output::Close { conn } => {
                self.closed.insert(conn);
                self.last_pushed.remove(&conn);
                self.replies_unwritten.remove(&conn);
                self.server
                    .handle_input(Input { now_ms: self.now_ms, event: Event::Closed { conn } });
            }
        }
    }

    fn deliver(&mut self, conn: ConnId, frame: &[u8]) {
        assert!(!self.closed.contains(&conn), "output for closed {conn:?}");
        let decoder = self.decoders.entry(conn).or_insert_with(|| Decoder::new(usize::MAX >> 1));
        decoder.feed(frame);
        while let Some(body) = decoder.decode().unwrap() {
            self.received.entry(conn).or_default().push(String::from_utf8(body).unwrap());
        }
    }
}
