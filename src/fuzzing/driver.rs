//! [`CoreDriver`]: a synchronous driver of [`Server`] that checks, on every output, what any
//! transport may rely on. It plays the TCP adapter's part (password jobs, durability, relay
//! writes, closing what the core closes) with each of those under the caller's control, so the
//! fuzzer can delay them, and it panics on the first broken rule:
//!
//! - every output targets a connection that was opened and that the core has not closed yet
//!   (outputs for a connection the peer closed are dropped, as a transport would);
//! - a command connection gets at most one reply per request, plus one failure before a close,
//!   and once everything has settled ([`CoreDriver::settle`]) exactly one if it is still open;
//! - a push goes to a relay bound to the message's recipient, and only once the message is durable;
//! - a success reply that acknowledges a change leaves only once that change is durable;
//! - every frame sent is one well-formed frame whose body is UTF-8 and a status line;
//! - a connection's undecoded bytes stay within `Config::inbound_buffered_len_max` (plus the one
//!   read that crossed it), the core tracks exactly the connections still open, and nothing
//!   waits in its outbox once everything is durable.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::auth::{HashCost, Hasher};
use crate::core::{
    AccountId, Channel, Config, ConnId, Event, Input, Lsn, MsgId, Output, PasswordJob, Peer,
    Record, Server,
};
use crate::wire::{reply, Decoder};

/// Where a connection stands, as the driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Open,
    /// The core emitted `Output::Close` for it.
    ClosedByServer,
    /// The peer went away (the driver reported `Event::Closed` on its own).
    ClosedByPeer,
}

#[derive(Debug)]
struct ConnView {
    channel: Channel,
    state: ConnState,
    /// Counts the frames the peer sent, to bound the replies (no limit, unlike the core's).
    mirror: Decoder,
    requests: usize,
    replies: usize,
    /// Bodies received, for tests to read with [`CoreDriver::take`].
    inbox: Vec<String>,
    last_pushed: Option<MsgId>,
    /// Replies received and not yet reported written to the core.
    replies_unwritten: u32,
    /// The last relay ticket this command connection was granted.
    ticket: Option<String>,
}

/// Durable changes seen in `Output::Persist`, to check what replies and pushes acknowledge.
#[derive(Debug, Default)]
struct Ledger {
    records: Vec<(Lsn, Record)>,
    /// Lsn and recipient of each message.
    messages: BTreeMap<MsgId, (Lsn, AccountId)>,
    last_lsn: Lsn,
    durable_lsn: Lsn,
    /// Success replies released per kind of change: send, register, delete.
    acknowledged: [usize; 3],
}

/// A synchronous, checking driver of the core: runs password jobs and durability at once and
/// checks every output against the connections it knows.
pub struct CoreDriver {
    server: Server,
    hasher: Hasher,
    now_ms: u64,
    next_conn: u64,
    conns: BTreeMap<ConnId, ConnView>,
    ledger: Ledger,
    held_jobs: Vec<PasswordJob>,
    /// Largest single `Received` fed, which the buffered-bytes bound allows on top of the limit.
    chunk_len_max: usize,
    /// Make every record durable at once (default on).
    pub auto_durable: bool,
    /// Report every push written at once (default on).
    pub auto_written: bool,
    /// Keep password jobs until [`CoreDriver::run_jobs`] (default off: run them at once).
    pub hold_jobs: bool,
    /// Outputs dropped because the peer had closed the connection.
    pub dropped_outputs: usize,
}

impl CoreDriver {
    /// A driver of a fresh server with `config`, cheapest password hashing, a fixed seed.
    pub fn new(config: Config) -> Self {
        let server = Server::new(config, ChaCha20Rng::seed_from_u64(7));
        CoreDriver {
            server,
            hasher: cheapest_hasher(),
            now_ms: 1_000,
            next_conn: 1,
            conns: BTreeMap::new(),
            ledger: Ledger::default(),
            held_jobs: Vec::new(),
            chunk_len_max: 0,
            auto_durable: true,
            auto_written: true,
            hold_jobs: false,
            dropped_outputs: 0,
        }
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Opens a connection on `channel` from `peer`.
    pub fn open(&mut self, channel: Channel, peer: u128) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        let view = ConnView {
            channel,
            state: ConnState::Open,
            mirror: Decoder::new(usize::MAX >> 1),
            requests: 0,
            replies: 0,
            inbox: Vec::new(),
            last_pushed: None,
            replies_unwritten: 0,
            ticket: None,
        };
        self.conns.insert(conn, view);
        self.input(Event::Opened { conn, channel, peer: Peer(peer) });
        conn
    }

    /// Connections opened so far, oldest first.
    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.conns.keys().copied().collect()
    }

    /// Where `conn` stands.
    pub fn state(&self, conn: ConnId) -> ConnState {
        self.conns[&conn].state
    }

    /// The peer sends `bytes` on `conn` (ignored once the connection is closed).
    pub fn feed(&mut self, conn: ConnId, bytes: &[u8]) {
        let view = self.conns.get_mut(&conn).expect("feeding a connection never opened");
        if view.state != ConnState::Open {
            return;
        }
        self.chunk_len_max = self.chunk_len_max.max(bytes.len());
        view.mirror.feed(bytes);
        while let Ok(Some(_)) = view.mirror.decode() {
            view.requests += 1;
        }
        self.input(Event::Received { conn, bytes });
    }

    /// The peer closes `conn`.
    pub fn peer_close(&mut self, conn: ConnId) {
        let view = self.conns.get_mut(&conn).expect("closing a connection never opened");
        if view.state == ConnState::Open {
            view.state = ConnState::ClosedByPeer;
            self.input(Event::Closed { conn });
        }
    }

    /// Time passes; the core's due timers fire.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.input(Event::Tick);
    }

    /// Every record emitted so far becomes durable.
    pub fn make_durable(&mut self) {
        let lsn = self.ledger.last_lsn;
        if lsn > self.ledger.durable_lsn {
            self.ledger.durable_lsn = lsn;
            self.input(Event::Durable { lsn });
        }
    }

    /// Runs the password jobs held so far, oldest first.
    pub fn run_jobs(&mut self) {
        for job in std::mem::take(&mut self.held_jobs) {
            let outcome = self.hasher.run(&job);
            self.input(Event::PasswordDone { job: job.job, outcome });
        }
    }

    /// Reports the relay `conn`'s pushes written, up to the last one.
    pub fn written(&mut self, conn: ConnId) {
        let Some(view) = self.conns.get_mut(&conn).filter(|v| v.state == ConnState::Open) else {
            return;
        };
        if let Some(last) = view.last_pushed.take() {
            self.input(Event::Written { conn, last });
        }
    }

    /// Lets everything finish (jobs run, records durable, pushes written), then checks that
    /// every request on a connection still open got its reply: nothing is left hanging.
    pub fn settle(&mut self) {
        (self.hold_jobs, self.auto_durable, self.auto_written) = (false, true, true);
        self.run_jobs();
        self.make_durable();
        for (conn, view) in &self.conns {
            if view.state == ConnState::Open && view.channel == Channel::Command {
                assert_eq!(
                    view.replies,
                    view.requests,
                    "{conn:?} was left with {} of {} requests unanswered",
                    view.requests - view.replies.min(view.requests),
                    view.requests
                );
            }
        }
    }

    /// The bodies `conn` received since the last call.
    pub fn take(&mut self, conn: ConnId) -> Vec<String> {
        std::mem::take(&mut self.conns.get_mut(&conn).expect("a connection opened").inbox)
    }

    /// The last relay ticket granted on the command connection `conn`.
    pub fn last_ticket(&self, conn: ConnId) -> Option<&str> {
        self.conns.get(&conn)?.ticket.as_deref()
    }

    /// Records emitted so far, in order.
    pub fn records(&self) -> &[(Lsn, Record)] {
        &self.ledger.records
    }

    fn input(&mut self, event: Event<'_>) {
        self.server.handle_input(Input { now_ms: self.now_ms, event });
        self.drain();
        self.check_state();
    }

    /// Follows the drain rule, then plays the transport's part until nothing more happens.
    fn drain(&mut self) {
        loop {
            while let Some(output) = self.server.poll_output() {
                self.apply(output);
            }
            let mut events = Vec::new();
            if self.auto_durable && self.ledger.durable_lsn < self.ledger.last_lsn {
                self.ledger.durable_lsn = self.ledger.last_lsn;
                events.push(Event::Durable { lsn: self.ledger.last_lsn });
            }
            if self.auto_written {
                for (&conn, view) in self.conns.iter_mut() {
                    if view.state != ConnState::Open {
                        continue;
                    }
                    if let Some(last) = view.last_pushed.take() {
                        events.push(Event::Written { conn, last });
                    }
                    let count = std::mem::take(&mut view.replies_unwritten);
                    if count > 0 {
                        events.push(Event::RepliesWritten { conn, count });
                    }
                }
            }
            if !self.hold_jobs {
                for job in std::mem::take(&mut self.held_jobs) {
                    let outcome = self.hasher.run(&job);
                    events.push(Event::PasswordDone { job: job.job, outcome });
                }
            }
            if events.is_empty() {
                return;
            }
            for event in events {
                self.server.handle_input(Input { now_ms: self.now_ms, event });
            }
        }
    }

    fn apply(&mut self, output: Output) {
        match output {
            Output::Persist { lsn, record } => self.persisted(lsn, record),
            Output::Password(job) => self.held_jobs.push(job),
            Output::Reply { conn, frame } => self.replied(conn, &frame),
            Output::Push { conn, msg, frame } => self.pushed(conn, msg, &frame),
            Output::Close { conn } => {
                if self.target(conn) {
                    self.conns.get_mut(&conn).expect("checked by target").state =
                        ConnState::ClosedByServer;
                    self.server
                        .handle_input(Input { now_ms: self.now_ms, event: Event::Closed { conn } });
                }
            }
        }
    }

    fn persisted(&mut self, lsn: Lsn, record: Record) {
        let ledger = &mut self.ledger;
        assert_eq!(lsn.0, ledger.last_lsn.0 + 1, "records are numbered without gaps");
        ledger.last_lsn = lsn;
        if let Record::Message { id, to, .. } = &record {
            ledger.messages.insert(*id, (lsn, *to));
        }
        ledger.records.push((lsn, record));
    }

    /// True if an output for `conn` is to be delivered; panics if the core should not send it.
    fn target(&mut self, conn: ConnId) -> bool {
        let Some(view) = self.conns.get(&conn) else {
            panic!("output for {conn:?}, which was never opened")
        };
        match view.state {
            ConnState::Open => true,
            ConnState::ClosedByServer => panic!("output for {conn:?} after the core closed it"),
            ConnState::ClosedByPeer => {
                self.dropped_outputs += 1;
                false
            }
        }
    }

    fn replied(&mut self, conn: ConnId, frame: &[u8]) {
        let body = single_frame(frame);
        assert!(body.starts_with("0\n") || body.starts_with("-1\n"), "bad reply {body:?}");
        if !self.target(conn) {
            return;
        }
        self.count_acknowledgement(&body);
        let view = self.conns.get_mut(&conn).expect("checked by target");
        match view.channel {
            Channel::Command => {
                let ticket = body.strip_prefix("0\n").filter(|t| is_ticket(t));
                if let Some(ticket) = ticket {
                    view.ticket = Some(ticket.to_owned());
                }
                view.replies += 1;
                view.replies_unwritten += 1;
                assert!(
                    view.replies <= view.requests + 1,
                    "{conn:?} got {} replies for {} requests",
                    view.replies,
                    view.requests
                );
            }
            Channel::Relay => assert!(body.starts_with("-1\n"), "a relay got a reply {body:?}"),
        }
        view.inbox.push(body);
    }

    /// Success replies that acknowledge a change never outnumber the durable changes.
    fn count_acknowledgement(&mut self, body: &str) {
        let kind = match body.strip_prefix("0\n") {
            Some(reply::SEND_OK) => 0,
            Some(reply::REGISTER_OK) => 1,
            Some(reply::DELETE_OK) => 2,
            _ => return,
        };
        let ledger = &mut self.ledger;
        ledger.acknowledged[kind] += 1;
        let durable = ledger
            .records
            .iter()
            .take_while(|(lsn, _)| *lsn <= ledger.durable_lsn)
            .filter(|(_, record)| {
                matches!(
                    (kind, record),
                    (0, Record::Message { .. })
                        | (1, Record::Register { .. })
                        | (2, Record::Delete { .. })
                )
            })
            .count();
        assert!(
            ledger.acknowledged[kind] <= durable,
            "{body:?} acknowledged before its record was durable"
        );
    }

    fn pushed(&mut self, conn: ConnId, msg: MsgId, frame: &[u8]) {
        let body = single_frame(frame);
        assert!(body.starts_with("0\n") || body.starts_with("7\n"), "bad push {body:?}");
        let Some(&(lsn, to)) = self.ledger.messages.get(&msg) else {
            panic!("push of {msg:?}, which no record created")
        };
        assert!(lsn <= self.ledger.durable_lsn, "push of {msg:?} before it was durable");
        if !self.target(conn) {
            return;
        }
        let view = self.conns.get_mut(&conn).expect("checked by target");
        assert_eq!(view.channel, Channel::Relay, "push on a command connection");
        let bound = self.server.relay_account(conn);
        assert_eq!(bound, Some(to), "push of {msg:?} for {to:?} on a relay bound to {bound:?}");
        view.last_pushed = Some(msg);
        view.inbox.push(body);
    }

    /// After every input: the core tracks exactly the open connections, within memory bounds.
    fn check_state(&self) {
        let open = self.conns.values().filter(|v| v.state == ConnState::Open).count();
        assert_eq!(self.server.connection_count(), open, "the core's connections drifted");
        if self.auto_durable {
            // Only durability holds outputs back, and everything is durable after a drain.
            assert_eq!(self.server.outputs_pending(), 0, "outputs stuck in the core");
        }
        let limit = self.server.config().inbound_buffered_len_max;
        for (&conn, view) in &self.conns {
            if view.state != ConnState::Open {
                continue;
            }
            let buffered = self.server.inbound_buffered_len(conn).expect("an open connection");
            assert!(
                buffered <= limit + self.chunk_len_max,
                "{conn:?} buffers {buffered} bytes, limit {limit}"
            );
        }
    }
}

/// The cheapest hasher, built once per process: building one hashes a dummy password, which
/// took a tenth of each fuzz run's time.
fn cheapest_hasher() -> Hasher {
    static HASHER: OnceLock<Hasher> = OnceLock::new();
    HASHER
        .get_or_init(|| Hasher::new(HashCost::CHEAPEST).expect("the cheapest cost is valid"))
        .clone()
}

/// The body of `frame`, which must be exactly one well-formed frame with a UTF-8 body.
fn single_frame(frame: &[u8]) -> String {
    let mut decoder = Decoder::new(usize::MAX >> 1);
    decoder.feed(frame);
    let body = decoder.decode().expect("a well-formed frame").expect("a complete frame");
    assert_eq!(decoder.buffered_len(), 0, "one frame per output");
    String::from_utf8(body).expect("the core sends UTF-8")
}

/// Tickets are 32 lower-case hex digits; no other success reply looks like one.
fn is_ticket(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::planted::Planted;

    fn frame(body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        crate::wire::encode(body.as_bytes(), &mut out);
        out
    }

    /// The panic message of `f`, which must panic.
    fn violation(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let payload = std::panic::catch_unwind(f).expect_err("the driver must catch the bug");
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    }

    fn send_while_not_durable(planted: Planted) {
        let mut driver = CoreDriver::new(Config { planted, ..Config::default() });
        let alice = driver.open(Channel::Command, 1);
        driver.feed(alice, &frame("3\nalice\npw"));
        driver.auto_durable = false;
        driver.feed(alice, &frame("2\nalice\nhi"));
        assert!(driver.take(alice).iter().all(|r| r != "0\nSent to recipient"));
        driver.make_durable();
        assert_eq!(driver.take(alice).last().map(String::as_str), Some("0\nSent to recipient"));
    }

    #[test]
    fn a_reply_released_before_its_record_is_durable_is_caught() {
        send_while_not_durable(Planted::None);
        let message = violation(|| send_while_not_durable(Planted::ReplyBeforeDurable));
        assert!(message.contains("acknowledged before its record was durable"), "{message}");
    }

    fn flood(planted: Planted) {
        let config = Config {
            planted,
            frame_len_max_before_login: 1 << 20,
            inbound_buffered_len_max: 1_000,
            ..Config::default()
        };
        let mut driver = CoreDriver::new(config);
        let conn = driver.open(Channel::Command, 1);
        driver.feed(conn, b"1000000   ");
        for _ in 0..20 {
            driver.feed(conn, &[b'x'; 100]);
        }
        assert_eq!(driver.state(conn), ConnState::ClosedByServer);
    }

    #[test]
    fn unbounded_inbound_bytes_are_caught() {
        flood(Planted::None);
        let message = violation(|| flood(Planted::InboundUnbounded));
        assert!(message.contains("buffers"), "{message}");
    }
}
