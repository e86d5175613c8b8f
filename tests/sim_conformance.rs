//! One conversation, run against the real TCP server and against the simulator: both must give
//! the same replies and pushes. The TCP side drives the simulator's own client state machine
//! ([`chatroom::sim::client::Client`]) over sockets, so the two differ only in transport.

mod support;

use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};

use chatroom::core::{Channel, ConnId};
use chatroom::net::ServerHandle;
use chatroom::sim::client::{Act, Client, Driver};
use chatroom::sim::conformance::{Conversation, SimConversation};
use chatroom::sim::scenario::Op;
use chatroom::sim::FaultMix;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The same client state machine, over real sockets.
struct TcpConversation {
    server: ServerHandle,
    clients: Vec<TcpClient>,
    next_conn: ConnId,
}

struct TcpClient {
    machine: Client,
    streams: BTreeMap<ConnId, TcpStream>,
    replies: Vec<String>,
    pushes: Vec<String>,
}

impl TcpConversation {
    fn new() -> Self {
        TcpConversation { server: support::start(), clients: Vec::new(), next_conn: ConnId(1) }
    }

    fn ensure(&mut self, client: usize) {
        while self.clients.len() <= client {
            let id = self.clients.len();
            let rng = ChaCha20Rng::seed_from_u64(id as u64);
            let machine = Client::new(id, Driver::Script(VecDeque::new()), rng, 0);
            self.clients.push(TcpClient {
                machine,
                streams: BTreeMap::new(),
                replies: Vec::new(),
                pushes: Vec::new(),
            });
        }
    }

    fn addr(&self, chan: Channel) -> SocketAddr {
        match chan {
            Channel::Command => self.server.command_addr(),
            Channel::Relay => self.server.relay_addr(),
        }
    }

    /// Carries out the client's acts, waking it again when it asks.
    fn carry_out(&mut self, client: usize, mut acts: Vec<Act>) {
        while !acts.is_empty() {
            let mut more = Vec::new();
            for act in acts {
                self.act(client, act, &mut more);
            }
            acts = more;
        }
    }

    fn act(&mut self, client: usize, act: Act, more: &mut Vec<Act>) {
        match act {
            Act::Connect(chan) => {
                let stream = TcpStream::connect(self.addr(chan)).expect("connect");
                stream.set_nodelay(true).unwrap();
                stream.set_read_timeout(Some(support::TIMEOUT)).unwrap();
                let conn = self.next_conn;
                self.next_conn.0 += 1;
                let c = &mut self.clients[client];
                c.streams.insert(conn, stream);
                c.machine.attached(chan, Some(conn), more);
            }
            Act::Write(chan, bytes) => {
                let c = &mut self.clients[client];
                let conn = c.machine.conn(chan).expect("writes go to an open connection");
                c.streams.get_mut(&conn).unwrap().write_all(&bytes).expect("write");
            }
            Act::Close(conn) => {
                if let Some(stream) = self.clients[client].streams.remove(&conn) {
                    let _ = stream.shutdown(Shutdown::Both);
                }
            }
            Act::Wake(_) | Act::WakeForNextOp => self.clients[client].machine.wake(0, more),
            Act::Reply(body) => {
                self.clients[client].replies.push(String::from_utf8_lossy(&body).into_owned())
            }
            Act::Push { sender, text, .. } => {
                self.clients[client].pushes.push(format!("{sender}:{text}"))
            }
            Act::Dropped { unanswered, noticed, .. } => {
                assert!(noticed || unanswered == 0, "closed with {unanswered} requests unanswered")
            }
            Act::Connected
            | Act::Sent(_)
            | Act::Lost(_)
            | Act::RelayOpened(_)
            | Act::Hostile(_)
            | Act::Count(_) => {}
        }
    }

    /// Reads once from `client`'s connection on `chan` and hands the bytes to the machine.
    fn read(&mut self, client: usize, chan: Channel) {
        let c = &mut self.clients[client];
        let conn = c.machine.conn(chan).expect("reading an open connection");
        let mut buf = [0u8; 4096];
        let n = c.streams.get_mut(&conn).unwrap().read(&mut buf).expect("read (timeout?)");
        let mut acts = Vec::new();
        if n == 0 {
            c.machine.closed(conn, &mut acts);
        } else {
            c.machine.received(0, conn, &buf[..n], &mut acts);
        }
        self.carry_out(client, acts);
    }
}

impl Conversation for TcpConversation {
    fn perform(&mut self, client: usize, op: Op) -> Option<String> {
        self.ensure(client);
        self.clients[client].machine.push_op(0, op);
        let mut acts = Vec::new();
        self.clients[client].machine.wake(0, &mut acts);
        self.carry_out(client, acts);
        while !self.clients[client].machine.is_done() {
            self.read(client, Channel::Command);
        }
        self.clients[client].replies.pop()
    }

    fn pushes(&mut self, client: usize, n: usize) -> Vec<String> {
        self.ensure(client);
        while self.clients[client].pushes.len() < n {
            self.read(client, Channel::Relay);
        }
        std::mem::take(&mut self.clients[client].pushes)
    }
}

/// The conversation both transports must hold identically.
fn conversation(c: &mut dyn Conversation) -> Vec<String> {
    use chatroom::wire::reply::*;
    let ok = |text: &str| format!("0\n{text}");
    let fail = |text: &str| format!("-1\n{text}");
    let op = |text: &str| text.parse::<Op>().expect("a valid operation");
    let mut transcript = Vec::new();
    let mut expect = |c: &mut dyn Conversation, client: usize, line: &str, want: &str| {
        let got = c.perform(client, op(line)).expect("a reply");
        assert_eq!(got, want, "client {client}: {line}");
        transcript.push(format!("{client} {line} -> {got:?}"));
    };
    expect(c, 0, "register alice pw-a", &ok(REGISTER_OK));
    expect(c, 1, "register bob pw-b", &ok(REGISTER_OK));
    expect(c, 1, "register alice other", &fail(NAME_TAKEN));
    let ticket = c.perform(0, op("relay ticket")).expect("a ticket");
    assert!(ticket.starts_with("0\n") && ticket.len() == 34, "{ticket:?}");
    expect(c, 1, "send alice hello", &ok(SEND_OK));
    expect(c, 1, "send alice again", &ok(SEND_OK));
    assert_eq!(c.pushes(0, 2), ["bob:#1.1 hello", "bob:#1.2 again"]);
    expect(c, 1, "send nobody x", &fail(UNKNOWN_RECIPIENT));
    expect(c, 0, "list", &ok("alice bob "));
    expect(c, 0, "list b*", &ok("bob "));
    expect(c, 1, "logout", &ok(LOGOUT_OK));
    expect(c, 1, "send alice x", &fail(NEEDS_LOGIN));
    expect(c, 1, "login bob wrong", &fail(LOGIN_FAILED));
    expect(c, 1, "login bob pw-b", &ok(LOGIN_OK));
    expect(c, 1, "send alice back", &ok(SEND_OK));
    assert_eq!(c.pushes(0, 1), ["bob:#1.5 back"]);
    expect(c, 0, "delete alice pw-a", &ok(DELETE_OK));
    expect(c, 1, "send alice gone", &fail(UNKNOWN_RECIPIENT));
    expect(c, 2, "register alice pw-new", &ok(REGISTER_OK));
    assert_eq!(c.perform(2, op("relay bare")), None);
    expect(c, 1, "send alice new", &ok(SEND_OK));
    assert_eq!(c.pushes(2, 1), ["bob:#1.7 new"], "the new alice gets only what was sent to her");
    transcript
}

#[test]
fn the_simulator_and_the_tcp_server_hold_the_same_conversation() {
    let mut sim = SimConversation::new(1, FaultMix::none());
    let simulated = conversation(&mut sim);
    assert_eq!(sim.world().violation(), None);
    let real = conversation(&mut TcpConversation::new());
    assert_eq!(simulated, real);
}
