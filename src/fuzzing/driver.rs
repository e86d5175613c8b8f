//! [`CoreDriver`]: a synchronous driver of the shipped [`Host`] (and so of the core) that
//! checks, on every frame a writer takes, what any transport may rely on. Its writers run at
//! once ([`InstantWriters`]); password jobs, durability and write reports are each under the
//! caller's control, so the fuzzer can delay them, and it panics on the first broken rule:
//!
//! - every frame goes to a connection that was opened and is still routed, and the core
//!   addresses nothing to a connection after closing it ([`Host::outputs_after_close`]);
//!   frames for a connection the peer closed are dropped, as a transport would;
//! - a command connection gets at most one reply per request, plus one failure before a close,
//!   and once everything has settled ([`CoreDriver::settle`]) exactly one if it is still open;
//! - a push goes to a relay bound to the message's recipient, and only once the message is durable;
//! - a success reply that acknowledges a change leaves only once that change is durable;
//! - every frame sent is one well-formed frame whose body is UTF-8 and a status line;
//! - a connection's undecoded bytes stay within `Config::inbound_buffered_len_max` (plus the one
//!   read that crossed it), the core tracks exactly the connections still open, and nothing
//!   waits in its outbox once everything is durable.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::OnceLock;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::auth::{HashCost, Hasher};
use crate::core::{
    AccountId, Channel, Config, ConnId, Event, Lsn, MsgId, PasswordJob, Peer, Record, Server,
};
use crate::host::instant::{Delivery, InstantWriters};
use crate::host::{Batch, Host, Outgoing, RecordSink};
use crate::wire::{reply, Decoder};

/// Where a connection stands, as the driver sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    Open,
    /// The core closed it (its writer reported the end).
    ClosedByServer,
    /// The peer went away (the driver closed its side).
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
    /// Writes not reported to the host yet (with `auto_written` off).
    unreported: Batch,
    /// The last relay ticket this command connection was granted.
    ticket: Option<String>,
}

/// Durable changes seen in the records the host persisted, to check what replies and pushes
/// acknowledge.
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

/// The host's record sink: hands each record to the driver's ledger, durable only when the
/// driver says so.
#[derive(Debug, Default)]
struct LedgerSink(Rc<RefCell<Vec<(Lsn, Record)>>>);

impl RecordSink for LedgerSink {
    fn persist(&mut self, lsn: Lsn, record: Record) {
        self.0.borrow_mut().push((lsn, record));
    }
    fn is_synchronous(&self) -> bool {
        false
    }
}

/// What the driver knows of the connections and the records: what the writers' callback
/// checks each frame against.
struct View {
    conns: BTreeMap<ConnId, ConnView>,
    ledger: Ledger,
    persisted: Rc<RefCell<Vec<(Lsn, Record)>>>,
    auto_written: bool,
    dropped_outputs: usize,
}

/// Password jobs: run at once, or held for [`CoreDriver::run_jobs`].
struct Jobs {
    held: Vec<PasswordJob>,
    hasher: Hasher,
    hold: bool,
}

impl Jobs {
    fn run(&mut self, job: &PasswordJob) -> Option<crate::core::PasswordOutcome> {
        if self.hold {
            self.held.push(job.clone());
            return None;
        }
        Some(self.hasher.run(job))
    }
}

/// A synchronous, checking driver of the host: see the `fuzzing::driver` module docs.
pub struct CoreDriver {
    host: Host<(), LedgerSink>,
    writers: InstantWriters,
    view: View,
    jobs: Jobs,
    now_ms: u64,
    next_conn: u64,
    /// Largest single `Received` fed, which the buffered-bytes bound allows on top of the limit.
    chunk_len_max: usize,
    /// Make every record durable at once (default on).
    pub auto_durable: bool,
}

impl CoreDriver {
    /// A driver of a fresh server with `config`, cheapest password hashing, a fixed seed.
    pub fn new(config: Config) -> Self {
        let server = Server::new(config, ChaCha20Rng::seed_from_u64(7));
        let sink = LedgerSink::default();
        let persisted = sink.0.clone();
        let mut host = Host::new(server, sink);
        let writers = InstantWriters::new(&mut host);
        let view = View {
            conns: BTreeMap::new(),
            ledger: Ledger::default(),
            persisted,
            auto_written: true,
            dropped_outputs: 0,
        };
        let jobs = Jobs { held: Vec::new(), hasher: cheapest_hasher(), hold: false };
        CoreDriver {
            host,
            writers,
            view,
            jobs,
            now_ms: 1_000,
            next_conn: 1,
            chunk_len_max: 0,
            auto_durable: true,
        }
    }

    /// The server under test.
    pub fn server(&self) -> &Server {
        self.host.server()
    }

    /// Report writes at once (default on); off, they wait for [`CoreDriver::written`].
    pub fn set_auto_written(&mut self, on: bool) {
        self.view.auto_written = on;
    }

    /// Keep password jobs until [`CoreDriver::run_jobs`] (default off: run them at once).
    pub fn set_hold_jobs(&mut self, on: bool) {
        self.jobs.hold = on;
    }

    /// Whether writes are reported at once.
    pub fn auto_written(&self) -> bool {
        self.view.auto_written
    }

    /// Whether password jobs are held.
    pub fn hold_jobs(&self) -> bool {
        self.jobs.hold
    }

    /// Frames dropped because the peer had closed the connection.
    pub fn dropped_outputs(&self) -> usize {
        self.view.dropped_outputs
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
            unreported: Batch::default(),
            ticket: None,
        };
        self.view.conns.insert(conn, view);
        self.host.open(self.now_ms, conn, channel, Peer(peer), ());
        self.settle_writers();
        self.check_state();
        conn
    }

    /// Connections opened so far, oldest first.
    pub fn conn_ids(&self) -> Vec<ConnId> {
        self.view.conns.keys().copied().collect()
    }

    /// Where `conn` stands.
    pub fn state(&self, conn: ConnId) -> ConnState {
        self.view.conns[&conn].state
    }

    /// The peer sends `bytes` on `conn` (ignored once the connection is closed).
    pub fn feed(&mut self, conn: ConnId, bytes: &[u8]) {
        let view = self.view.conns.get_mut(&conn).expect("feeding a connection never opened");
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

    /// The peer closes `conn`: its writer flushes to nobody and reports the end.
    pub fn peer_close(&mut self, conn: ConnId) {
        let view = self.view.conns.get_mut(&conn).expect("closing a connection never opened");
        if view.state != ConnState::Open {
            return;
        }
        view.state = ConnState::ClosedByPeer;
        let unreported = std::mem::take(&mut view.unreported);
        self.host.wrote(self.now_ms, conn, &unreported);
        if let Some(mailbox) = self.host.mailbox(conn) {
            mailbox.close();
        }
        self.writers.wake(conn);
        self.settle_writers();
        self.check_state();
    }

    /// Time passes; the core's due timers fire.
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.input(Event::Tick);
    }

    /// Every record emitted so far becomes durable.
    pub fn make_durable(&mut self) {
        self.absorb_records();
        let lsn = self.view.ledger.last_lsn;
        if lsn > self.view.ledger.durable_lsn {
            self.view.ledger.durable_lsn = lsn;
            self.input(Event::Durable { lsn });
        }
    }

    /// Runs the password jobs held so far, oldest first.
    pub fn run_jobs(&mut self) {
        for job in std::mem::take(&mut self.jobs.held) {
            let outcome = self.jobs.hasher.run(&job);
            self.input(Event::PasswordDone { job: job.job, outcome });
        }
    }

    /// Reports what `conn`'s writer wrote and has not reported yet.
    pub fn written(&mut self, conn: ConnId) {
        let Some(view) = self.view.conns.get_mut(&conn).filter(|v| v.state == ConnState::Open)
        else {
            return;
        };
        let unreported = std::mem::take(&mut view.unreported);
        self.host.wrote(self.now_ms, conn, &unreported);
        self.settle_writers();
        self.check_state();
    }

    /// Lets everything finish (jobs run, records durable, writes reported), then checks that
    /// every request on a connection still open got its reply: nothing is left hanging.
    pub fn settle(&mut self) {
        (self.jobs.hold, self.auto_durable, self.view.auto_written) = (false, true, true);
        self.run_jobs();
        let held: Vec<ConnId> = self.view.conns.keys().copied().collect();
        for conn in held {
            self.written(conn);
        }
        self.make_durable();
        for (conn, view) in &self.view.conns {
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
        std::mem::take(&mut self.view.conns.get_mut(&conn).expect("a connection opened").inbox)
    }

    /// The last relay ticket granted on the command connection `conn`.
    pub fn last_ticket(&self, conn: ConnId) -> Option<&str> {
        self.view.conns.get(&conn)?.ticket.as_deref()
    }

    /// Records emitted so far, in order.
    pub fn records(&mut self) -> &[(Lsn, Record)] {
        self.absorb_records();
        &self.view.ledger.records
    }

    fn input(&mut self, event: Event<'_>) {
        self.host.handle(self.now_ms, event);
        self.settle_writers();
        self.check_state();
    }

    /// Runs the writers (and durability, when automatic) until nothing more happens.
    fn settle_writers(&mut self) {
        loop {
            let (view, jobs) = (&mut self.view, &mut self.jobs);
            let mut deliver = |server: &Server, conn: ConnId, items: &mut [Outgoing]| {
                view.absorb_records();
                view.deliver(server, conn, items)
            };
            let mut job = |job: &PasswordJob| jobs.run(job);
            self.writers.settle(&mut self.host, self.now_ms, &mut deliver, &mut job);
            self.view.absorb_records();
            for (conn, view) in &mut self.view.conns {
                if view.state == ConnState::Open && self.host.mailbox(*conn).is_none() {
                    view.state = ConnState::ClosedByServer;
                }
            }
            let ledger = &mut self.view.ledger;
            if !(self.auto_durable && ledger.durable_lsn < ledger.last_lsn) {
                return;
            }
            ledger.durable_lsn = ledger.last_lsn;
            self.host.handle(self.now_ms, Event::Durable { lsn: ledger.last_lsn });
        }
    }

    fn absorb_records(&mut self) {
        self.view.absorb_records();
    }

    /// After every input: the core tracks exactly the open connections, within memory bounds.
    fn check_state(&self) {
        let server = self.host.server();
        assert_eq!(self.host.outputs_after_close(), 0, "output after the core closed a connection");
        let open = self.view.conns.values().filter(|v| v.state == ConnState::Open).count();
        assert_eq!(server.connection_count(), open, "the core's connections drifted");
        if self.auto_durable {
            // Only durability holds outputs back, and everything is durable after a drain.
            assert_eq!(server.outputs_pending(), 0, "outputs stuck in the core");
        }
        let limit = server.config().inbound_buffered_len_max;
        for (&conn, view) in &self.view.conns {
            if view.state != ConnState::Open {
                continue;
            }
            let buffered = server.inbound_buffered_len(conn).expect("an open connection");
            assert!(
                buffered <= limit + self.chunk_len_max,
                "{conn:?} buffers {buffered} bytes, limit {limit}"
            );
        }
    }
}
impl View {
    /// Moves the records the host persisted into the ledger.
    fn absorb_records(&mut self) {
        let persisted = std::mem::take(&mut *self.persisted.borrow_mut());
        for (lsn, record) in persisted {
            self.persisted_one(lsn, record);
        }
    }

    fn persisted_one(&mut self, lsn: Lsn, record: Record) {
        let ledger = &mut self.ledger;
        assert_eq!(lsn.0, ledger.last_lsn.0 + 1, "records are numbered without gaps");
        ledger.last_lsn = lsn;
        if let Record::Message { id, to, .. } = &record {
            ledger.messages.insert(*id, (lsn, *to));
        }
        ledger.records.push((lsn, record));
    }

    /// Checks a writer's items, in order, and keeps what the peer receives.
    fn deliver(&mut self, server: &Server, conn: ConnId, items: &[Outgoing]) -> Delivery {
        let Some(view) = self.conns.get(&conn) else {
            panic!("frames for {conn:?}, which was never opened")
        };
        if view.state != ConnState::Open {
            self.dropped_outputs += items.len();
            return Delivery::Failed;
        }
        let mut unreported = Batch::default();
        for item in items {
            match item {
                Outgoing::Reply(frame) => {
                    self.replied(conn, frame);
                    unreported.replies += 1;
                }
                Outgoing::Push { msg, frame } => {
                    self.pushed(server, conn, *msg, frame);
                    unreported.last_push = Some(*msg);
                }
                Outgoing::Password(_) => {}
            }
        }
        if self.auto_written {
            return Delivery::Written;
        }
        let view = self.conns.get_mut(&conn).expect("checked above");
        view.unreported.replies += unreported.replies;
        view.unreported.last_push = unreported.last_push.or(view.unreported.last_push);
        Delivery::Held
    }

    fn replied(&mut self, conn: ConnId, frame: &[u8]) {
        let body = single_frame(frame);
        assert!(body.starts_with("0\n") || body.starts_with("-1\n"), "bad reply {body:?}");
        self.count_acknowledgement(&body);
        let view = self.conns.get_mut(&conn).expect("checked by deliver");
        match view.channel {
            Channel::Command => {
                let ticket = body.strip_prefix("0\n").filter(|t| is_ticket(t));
                if let Some(ticket) = ticket {
                    view.ticket = Some(ticket.to_owned());
                }
                view.replies += 1;
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

    fn pushed(&mut self, server: &Server, conn: ConnId, msg: MsgId, frame: &[u8]) {
        let body = single_frame(frame);
        assert!(body.starts_with("0\n") || body.starts_with("7\n"), "bad push {body:?}");
        let Some(&(lsn, to)) = self.ledger.messages.get(&msg) else {
            panic!("push of {msg:?}, which no record created")
        };
        assert!(lsn <= self.ledger.durable_lsn, "push of {msg:?} before it was durable");
        let view = self.conns.get_mut(&conn).expect("checked by deliver");
        assert_eq!(view.channel, Channel::Relay, "push on a command connection");
        let bound = server.relay_account(conn);
        assert_eq!(bound, Some(to), "push of {msg:?} for {to:?} on a relay bound to {bound:?}");
        view.inbox.push(body);
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

/// The inputs that trip two of the driver's own checks when their bug is planted (its tests
/// and `chatroom strength` run them): a client declares a 1 MB frame and sends 2,000 bytes of
/// it to a core bounded at 1,000 (`config` decides the rest).
pub fn probe_inbound_flood(config: Config) {
    let config =
        Config { frame_len_max_before_login: 1 << 20, inbound_buffered_len_max: 1_000, ..config };
    let mut driver = CoreDriver::new(config);
    let conn = driver.open(Channel::Command, 1);
    driver.feed(conn, b"1000000   ");
    for _ in 0..20 {
        driver.feed(conn, &[b'x'; 100]);
    }
    assert_eq!(driver.state(conn), ConnState::ClosedByServer);
}

/// See [`probe_inbound_flood`]: a send while its record is not yet durable, acknowledged only
/// once it is.
pub fn probe_send_while_not_durable(config: Config) {
    let frame = |body: &str| {
        let mut out = Vec::new();
        crate::wire::encode(body.as_bytes(), &mut out);
        out
    };
    let mut driver = CoreDriver::new(config);
    let alice = driver.open(Channel::Command, 1);
    driver.feed(alice, &frame("3\nalice\npw"));
    driver.auto_durable = false;
    driver.feed(alice, &frame("2\nalice\nhi"));
    assert!(driver.take(alice).iter().all(|r| r != "0\nSent to recipient"));
    driver.make_durable();
    assert_eq!(driver.take(alice).last().map(String::as_str), Some("0\nSent to recipient"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::planted::Planted;

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
        probe_send_while_not_durable(Config { planted, ..Config::default() });
    }

    #[test]
    fn a_reply_released_before_its_record_is_durable_is_caught() {
        send_while_not_durable(Planted::None);
        let message = violation(|| send_while_not_durable(Planted::ReplyBeforeDurable));
        assert!(message.contains("acknowledged before its record was durable"), "{message}");
    }

    fn flood(planted: Planted) {
        probe_inbound_flood(Config { planted, ..Config::default() });
    }

    #[test]
    fn unbounded_inbound_bytes_are_caught() {
        flood(Planted::None);
        let message = violation(|| flood(Planted::InboundUnbounded));
        assert!(message.contains("buffers"), "{message}");
    }
}
