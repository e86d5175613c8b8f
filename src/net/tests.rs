//! Tests of the TCP adapter's own decisions against a real server on loopback, each with the
//! bug planted that breaks it (an outside tester's pass over `src/net`, where the simulator
//! and the model checker do not reach: they drive the host, not these threads and sockets).
//! `chatroom strength` lists each test against its planted bug. Waits are bounded and
//! generous; nothing asserts how long anything took.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::{ServerConfig, ServerHandle};
use crate::core::planted::Planted;
use crate::wire::{encode, Decoder};

/// How long any one wait may last before the test fails: long enough for a loaded machine.
const TIMEOUT: Duration = Duration::from_secs(20);

fn server(planted: Planted, change: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut config = ServerConfig::ephemeral();
    config.core.planted = planted;
    config.core.bare_relay_allowed = true;
    config.core.connections_per_peer_max = 1_000;
    config.core.registrations_per_peer_max = 1_000;
    change(&mut config);
    ServerHandle::start(config).expect("server starts")
}

/// A client connection that speaks frames.
struct Client {
    stream: TcpStream,
    decoder: Decoder,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
        Client { stream, decoder: Decoder::new(1 << 20) }
    }

    fn send(&mut self, body: &str) {
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        self.stream.write_all(&frame).expect("write");
    }

    /// The next frame, or `None` at the end of the stream (an unfinished frame is dropped).
    fn recv(&mut self) -> Option<String> {
        let mut buf = [0u8; 64 * 1024];
        loop {
            if let Some(body) = self.decoder.decode().expect("server frames are valid") {
                return Some(String::from_utf8(body).expect("UTF-8"));
            }
            match self.stream.read(&mut buf) {
                Ok(0) => return None,
                Ok(n) => self.decoder.feed(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read failed (timed out?): {e}"),
            }
        }
    }

    fn request(&mut self, body: &str) -> String {
        self.send(body);
        self.recv().expect("a reply")
    }
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The index of a test message `NNN...` pushed to an original client as `0\nalice:TEXT`.
fn index_of(push: &str) -> usize {
    let text = push.strip_prefix("0\nalice:").unwrap_or_else(|| panic!("not a push: {push:.40}"));
    text[..3].parse().expect("an index")
}

/// "For the original client, a message counts as delivered once written to its relay" and is
/// "delivered exactly once": a relay that stops reading is closed by the write timeout in the
/// middle of a batch, and the frames the socket took before it gave up reach the client (it
/// reads them later from its buffers). They must not be pushed again on the next relay. The
/// batch is the whole backlog at once (queued while bob was away), far more than the kernel
/// buffers, so the timeout always falls inside it. Planted: the writer reports nothing of a
/// batch whose write failed, and every frame of it comes twice.
#[test]
fn a_relay_cut_off_mid_batch_by_the_write_timeout_gets_each_message_once_unless_planted() {
    for (planted, once) in [(Planted::None, true), (Planted::RelayPartialWriteUnreported, false)] {
        let server = server(planted, |config| config.write_timeout_ms = 300);
        let mut alice = Client::connect(server.command_addr());
        assert_eq!(alice.request("3\nalice\npw"), "0\nSuccessful Created and logged in");
        let mut bob = Client::connect(server.command_addr());
        assert_eq!(bob.request("3\nbob\npw"), "0\nSuccessful Created and logged in");
        assert_eq!(bob.request("-1\n"), "0\nLogging out");
        let pad = "x".repeat(60_000);
        let count = 256;
        for i in 0..count {
            assert_eq!(alice.request(&format!("2\nbob\n{i:03}{pad}")), "0\nSent to recipient");
        }
        assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
        let mut stuck = Client::connect(server.relay_addr());
        stuck.send("bob");
        wait_until("bob's relay is bound", || server.has_relay("bob"));
        wait_until("the stalled relay is closed", || !server.has_relay("bob"));
        let mut got: Vec<usize> =
            std::iter::from_fn(|| stuck.recv()).map(|p| index_of(&p)).collect();
        assert!(got.len() < count, "{planted:?}: the kernel cannot have taken 15 MB");
        let mut bob = Client::connect(server.command_addr());
        assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
        let mut relay = Client::connect(server.relay_addr());
        relay.send("bob");
        wait_until("bob's second relay is bound", || server.has_relay("bob"));
        assert_eq!(alice.request("2\nbob\n999 marker"), "0\nSent to recipient");
        loop {
            let push = relay.recv().expect("a push before the marker");
            match index_of(&push) {
                999 => break,
                i => got.push(i),
            }
        }
        let expected: Vec<usize> = (0..count).collect();
        assert_eq!(got == expected, once, "{planted:?}: {} received for {count}", got.len());
        server.shutdown();
    }
}

/// The id of an acknowledged push, `7\nID\nSENDER\nTEXT`.
fn acked_id(push: &str) -> u64 {
    let mut parts = push.splitn(3, '\n');
    assert_eq!(parts.next(), Some("7"), "not an acknowledged push: {push:.40}");
    parts.next().and_then(|id| id.parse().ok()).expect("an id")
}

/// A client's acknowledgements reach the core however many come at once: the relay reader
/// reads a relay a few reads at a time (fairness between relays), and a relay with more must
/// come round again. Bob's relay gets a full window of pushes, then acknowledges them behind
/// many repeats of the first acknowledgement (harmless, PROTOCOL.md's "acknowledged twice"),
/// in one write of several times a turn's reads; every message must leave his queue. Planted:
/// a relay not re-armed after its turn is not read again until it sends more, which bob
/// does not.
#[test]
fn a_burst_of_acknowledgements_longer_than_a_turn_is_read_to_its_end_unless_planted() {
    for (planted, read) in [(Planted::None, true), (Planted::RelayReaderNotRearmed, false)] {
        let server = server(planted, |_| {});
        let mut alice = Client::connect(server.command_addr());
        assert_eq!(alice.request("3\nalice\npw"), "0\nSuccessful Created and logged in");
        let mut bob = Client::connect(server.command_addr());
        assert_eq!(bob.request("3\nbob\npw"), "0\nSuccessful Created and logged in");
        let ticket = bob.request("6");
        let mut relay = Client::connect(server.relay_addr());
        relay.send(&format!("bob\n{}", ticket.strip_prefix("0\n").expect("a ticket")));
        wait_until("bob's relay is bound", || server.has_relay("bob"));
        let window = 256;
        for i in 0..window {
            assert_eq!(alice.request(&format!("2\nbob\nm{i}")), "0\nSent to recipient");
        }
        let ids: Vec<u64> = (0..window).map(|_| acked_id(&relay.recv().expect("a push"))).collect();
        let mut burst = Vec::new();
        for id in std::iter::repeat_n(ids[0], 8_000).chain(ids.iter().copied()) {
            encode(format!("7\n{id}").as_bytes(), &mut burst);
        }
        assert!(burst.len() > 3 * 8 * 4096, "{} bytes: less than three turns", burst.len());
        // Bounded: a server that stops reading could leave this write waiting for ever.
        relay.stream.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
        let written = relay.stream.write_all(&burst).is_ok();
        let drained = Instant::now() + TIMEOUT;
        while written && server.queue_len("bob") != Some(0) && Instant::now() < drained {
            std::thread::sleep(Duration::from_millis(5));
        }
        let left = server.queue_len("bob");
        assert_eq!(written && left == Some(0), read, "{planted:?}: {left:?} left");
        server.shutdown();
    }
}

/// "A write that blocks this long (the peer does not read) closes the connection"
/// (`ServerConfig::write_timeout_ms`): carol pipelines help requests and never reads a reply.
/// Once the replies fill the kernel's buffers the server stops reading her (backpressure),
/// its write times out, and it ends her connection; she sees the end (or a reset) after the
/// replies it did write, and others are served throughout. Planted: the command thread
/// ignores the failed write and waits for ever, connection and session held.
#[test]
fn a_client_that_never_reads_its_replies_is_closed_unless_planted() {
    for (planted, closed) in [(Planted::None, true), (Planted::CommandWriteFailureIgnored, false)] {
        // Her flood may end inside a frame, whose deadline would close her too: out of reach
        // here, so that only the write timeout can.
        let server = server(planted, |config| {
            config.write_timeout_ms = 300;
            config.core.frame_deadline_ms = 600_000;
        });
        let mut carol = Client::connect(server.command_addr());
        assert_eq!(carol.request("3\ncarol\npw"), "0\nSuccessful Created and logged in");
        // Bounded, so that a server that never closes her fails the test instead of hanging.
        let patience = Duration::from_secs(10);
        carol.stream.set_write_timeout(Some(patience)).expect("write timeout");
        carol.stream.set_read_timeout(Some(patience)).expect("read timeout");
        shrink_receive_buffer(&carol.stream);
        let mut chunk = Vec::new();
        for _ in 0..1_000 {
            encode(b"0", &mut chunk);
        }
        let mut flood = carol.stream.try_clone().expect("a clone");
        // Until the server ends the connection (or stops reading for good, when planted).
        let mut requests = 0;
        while flood.write_all(&chunk).is_ok() {
            requests += 1_000;
        }
        let mut alice = Client::connect(server.command_addr());
        assert_eq!(alice.request("3\nalice\npw"), "0\nSuccessful Created and logged in");
        assert_eq!(alice.request("2\nalice\nstill served"), "0\nSent to recipient");
        let mut replies = 0;
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            while let Some(reply) = carol.recv() {
                assert!(reply.starts_with("0\nThis is a chat room app."), "{reply:.40}");
                replies += 1;
            }
        }));
        assert_eq!(ended.is_ok(), closed, "{planted:?}: {replies} replies, then no end");
        assert!(replies < requests, "{planted:?}: every one of {requests} replies was read");
        server.shutdown();
    }
}

/// A deadline earlier than the one the timer thread sleeps until must wake it: with one
/// connection's login deadline a minute away and the timer asleep until then, another's body
/// cut short times out at its own frame deadline (300 ms). Planted: the timer thread is woken
/// only for a first deadline and sleeps on past this one (the test waits 5 s for it).
#[test]
fn an_earlier_deadline_wakes_a_timer_asleep_until_a_later_one_unless_planted() {
    for (planted, woken) in [(Planted::None, true), (Planted::TimerMissesEarlierDeadline, false)] {
        let server = server(planted, |config| {
            config.core.login_deadline_ms = 60_000;
            config.core.frame_deadline_ms = 300;
        });
        let mut idle = Client::connect(server.command_addr());
        assert!(idle.request("0").starts_with("0\n"), "its login deadline is armed");
        let mut cut = Client::connect(server.command_addr());
        assert!(cut.request("0").starts_with("0\n"), "its own, a little later, too");
        // Time for the timer thread to go back to sleep until the earliest deadline.
        std::thread::sleep(Duration::from_millis(200));
        cut.stream.write_all(b"100       only ten b").expect("write");
        cut.stream.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
        let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cut.recv()));
        let timed_out = reply.ok().flatten().is_some_and(|reply| {
            reply.starts_with("-1\nTimed out waiting for the rest of a frame")
        });
        assert_eq!(timed_out, woken, "{planted:?}");
        server.shutdown();
    }
}

/// A relay its client resets (the shared reader's read fails, rather than meeting the end of
/// the stream) ends like one closed: its writer and its connection go, so that its address's
/// connection cap has room again. With a cap of 2, a relay opened beside a command connection
/// and reset must leave room for two again, five times in turn, long before the unanswered
/// relay's handshake deadline (a minute) would close it. Closes are counted as the server
/// handles them, so each room is waited for.
#[test]
fn a_relay_its_client_resets_ends() {
    let server = server(Planted::None, |config| config.core.connections_per_peer_max = 2);
    let served = |client: &mut Client| client.request("0").starts_with("0\n");
    let room_for = |n: usize| {
        let mut clients: Vec<Client> =
            (0..n).map(|_| Client::connect(server.command_addr())).collect();
        clients.iter_mut().all(served)
    };
    for _ in 0..5 {
        wait_until("room for two connections", || room_for(2));
        let relay = TcpStream::connect(server.relay_addr()).expect("connect");
        wait_until("room for one beside the relay", || room_for(1));
        reset(relay);
    }
    wait_until("room for two connections", || room_for(2));
    server.shutdown();
}

/// Closes `stream` with a reset (`SO_LINGER` of zero) instead of an orderly end.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket descriptor, and a pointer to a `linger` of the size given.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            std::ptr::addr_of!(linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

/// Keeps `stream`'s receive buffer at its smallest, so that a client that does not read
/// fills it after a few replies (loopback's buffers otherwise grow to megabytes).
fn shrink_receive_buffer(stream: &TcpStream) {
    use std::os::fd::AsRawFd;
    let len: libc::c_int = 4096;
    // SAFETY: the descriptor is open (borrowed for the call), and `len` outlives the call.
    let set = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&len as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0, "SO_RCVBUF: {}", std::io::Error::last_os_error());
}

/// Password jobs run a bounded number at a time and the rest wait their turn: each login
/// beyond the slots must still finish, also when some of the clients waiting gave up and
/// left (their checks are abandoned, and must not keep a slot). With one slot, eight logins
/// are held until all wait, three of them close, and the jobs are let go: the five still
/// there are answered, no job is left waiting, and a later login gets its turn. Planted: a
/// job that ends does not hand its slot on, and every login behind it waits for ever.
#[test]
fn logins_beyond_the_hashing_slots_all_finish_even_when_some_are_abandoned_unless_planted() {
    for (planted, finish) in [(Planted::None, true), (Planted::HashSlotNotHandedOn, false)] {
        // Dearer than the tests' cheapest, so that a job outlasts the wake-up of the others.
        let server = server(planted, |config| {
            config.hash_jobs_max = 1;
            config.hash_cost = crate::auth::HashCost { memory_kib: 4096, iterations: 2 };
        });
        let names: Vec<String> = (0..9).map(|i| format!("user{i}")).collect();
        for name in &names {
            let mut conn = Client::connect(server.command_addr());
            let reply = conn.request(&format!("3\n{name}\npw"));
            assert_eq!(reply, "0\nSuccessful Created and logged in");
        }
        server.hold_password_jobs(true);
        let mut conns: Vec<Client> = names[..8]
            .iter()
            .map(|name| {
                let mut conn = Client::connect(server.command_addr());
                // The planted arm waits it out for each login: a few seconds against logins
                // that take milliseconds.
                conn.stream.set_read_timeout(Some(Duration::from_secs(3))).expect("timeout");
                conn.send(&format!("1\n{name}\npw"));
                conn
            })
            .collect();
        wait_until("every login waits", || server.password_jobs_waiting() == 8);
        conns.truncate(5);
        server.hold_password_jobs(false);
        let answered = conns
            .iter_mut()
            .map(|conn| {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.recv()))
                    .is_ok_and(|reply| reply.as_deref() == Some("0\nSuccessful Login"))
            })
            .filter(|&answered| answered)
            .count();
        assert_eq!(answered == 5, finish, "{planted:?}: {answered} of 5 logins answered");
        if finish {
            wait_until("no job waits", || server.password_jobs_waiting() == 0);
            let mut late = Client::connect(server.command_addr());
            assert_eq!(late.request("1\nuser8\npw"), "0\nSuccessful Login");
            server.shutdown();
        }
        // Planted, the stuck jobs would hold a shutdown for ever: that server is left running.
    }
}
