//! `bench relay`: sender/receiver pairs over real TCP, driven so that the load generator
//! measures the server and not itself.
//!
//! Every connection (each sender's command channel, each receiver's ticketed relay) is driven
//! by ONE event-loop thread on `mio` readiness polling, so the generator needs about one core
//! however many pairs it runs, instead of competing with the server for the cores with a
//! thread per client. A separate pacer thread releases messages on schedule (`--rate`) and
//! wakes the loop; the loop gives them to the senders round-robin. Each message's text carries
//! the moment it was handed to the socket (taken just before the write), so latency is the
//! server's: write to push (and write to the `Sent to` reply). How late the loop wrote each
//! message after its scheduled time is reported separately (the pacer lag): if it grows, the
//! generator could not keep up and the run measured less load than asked for.
//!
//! With `--rate 0` there is no pacer: each sender keeps `--window` sends unanswered.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::mqtt;
use super::system;
use super::system::ProcSample;
use super::{parse_stamp, registered, relay_for, user_name, write_stamped, BenchError, Target};
use crate::client::{parse_push, Client, ClientError, Reply};
use crate::wire::{encode_parts, Decoder};

/// How long to wait for a reply during setup.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// After the senders stop, how long the server may take to answer and push what is in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The loop wakes at least this often to check the clock (the pacer wakes it for sends).
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Bytes per read: hundreds of replies or pushes.
const READ_CHUNK_LEN: usize = 64 * 1024;
/// Largest reply or push body accepted.
const BODY_LEN_MAX: usize = 1 << 20;
/// The pacer's token; connections use 2i (sender i) and 2i+1 (receiver i).
const WAKE: Token = Token(usize::MAX);

/// What one run of `bench relay` does.
#[derive(Debug, Clone, Copy)]
pub struct RelayPlan {
    pub pairs: usize,
    pub size_bytes: usize,
    /// Messages per second over all pairs; 0 for as fast as the server answers.
    pub rate: u64,
    pub duration: Duration,
    /// Unanswered sends per sender with `rate == 0`.
    pub window: usize,
    /// Talk MQTT to a broker at this QoS (0 or 1) instead of the chat protocol.
    pub mqtt_qos: Option<u8>,
}

impl RelayPlan {
    /// Messages the pacer releases over the run (rate mode).
    fn total(&self) -> u64 {
        (self.rate as f64 * self.duration.as_secs_f64()).round() as u64
    }

    /// When message `k` (counted over all pairs) is due, in nanoseconds from the start.
    fn due_ns(&self, k: u64) -> u64 {
        (k as f64 * 1e9 / self.rate as f64) as u64
    }
}

/// The server's cost over a run, from `/proc`.
#[derive(Debug, Clone)]
pub struct ServerCost {
    /// CPU seconds (user + system) from the first send to the last push.
    pub cpu_s: f64,
    /// Threads and resident memory when the senders stopped.
    pub threads: u64,
    pub rss_kib: u64,
    /// Context switches of the server's threads over the run, and the involuntary ones
    /// (a thread preempted, typically by one it woke): what hand-offs between threads cost.
    pub switches: u64,
    pub preemptions: u64,
    /// By thread name: CPU seconds, switches and preemptions over the run (threads that
    /// lived through it).
    pub by_thread: Vec<(String, f64, u64, u64)>,
}

/// What one run measured.
pub struct RelayRun {
    /// Send requests written.
    pub sent: u64,
    /// Sends the server accepted (`Sent to ...`) and refused.
    pub acked: u64,
    pub refused: u64,
    /// Pushes received.
    pub delivered: u64,
    /// From the start to the last send written.
    pub send_window: Duration,
    /// From the start to the last push received (or the end of the drain).
    pub elapsed: Duration,
    /// Write of the send to receipt of its push.
    pub latency_ns: Histogram<u64>,
    /// Write of the send to receipt of its reply.
    pub ack_latency_ns: Histogram<u64>,
    /// Scheduled time to write (rate mode only).
    pub lag_ns: Histogram<u64>,
    pub server: Option<ServerCost>,
    /// CPU seconds of this process (the generator) over the same span.
    pub generator_cpu_s: f64,
}

impl RelayRun {
    pub fn sent_per_s(&self) -> f64 {
        self.sent as f64 / self.send_window.as_secs_f64().max(1e-9)
    }

    pub fn delivered_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Server CPU as a share of one core over the run (1.0 = one core busy throughout).
    pub fn server_cores(&self) -> Option<f64> {
        Some(self.server.as_ref()?.cpu_s / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// The server's context switches per delivered message, and its preemptions.
    pub fn switches_per_msg(&self) -> Option<(f64, f64)> {
        let server = self.server.as_ref()?;
        let per = |n: u64| n as f64 / self.delivered.max(1) as f64;
        Some((per(server.switches), per(server.preemptions)))
    }

    pub fn generator_cores(&self) -> f64 {
        self.generator_cpu_s / self.elapsed.as_secs_f64().max(1e-9)
    }
}

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid bounds")
}

/// How a connection's bytes are framed.
enum Wire {
    Chat(Decoder),
    Mqtt(mqtt::Decoder),
}

/// A non-blocking connection: a decoder for what comes in, a buffer for what could not be
/// written yet.
struct Conn {
    stream: TcpStream,
    token: Token,
    wire: Wire,
    out: Vec<u8>,
    out_sent: usize,
    wants_write: bool,
}

impl Conn {
    fn new(stream: &std::net::TcpStream, token: Token, mqtt: bool) -> Result<Conn, BenchError> {
        let stream = stream.try_clone()?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream: TcpStream::from_std(stream),
            token,
            wire: match mqtt {
                true => Wire::Mqtt(mqtt::Decoder::default()),
                false => Wire::Chat(Decoder::new(BODY_LEN_MAX)),
            },
            out: Vec::new(),
            out_sent: 0,
            wants_write: false,
        })
    }

    fn has_unwritten(&self) -> bool {
        self.out_sent < self.out.len()
    }

    /// Writes what `out` holds until done or the socket is full; asks for writability then.
    fn flush(&mut self, registry: &Registry) -> io::Result<()> {
        while self.has_unwritten() {
            match self.stream.write(&self.out[self.out_sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.out_sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if !self.has_unwritten() {
            self.out.clear();
            self.out_sent = 0;
        }
        let wants_write = self.has_unwritten();
        if wants_write != self.wants_write {
            let interest = match wants_write {
                true => Interest::READABLE | Interest::WRITABLE,
                false => Interest::READABLE,
            };
            registry.reregister(&mut self.stream, self.token, interest)?;
            self.wants_write = wants_write;
        }
        Ok(())
    }

    /// Reads everything available into the decoder (readiness is edge-triggered).
    fn fill(&mut self, chunk: &mut [u8]) -> Result<(), BenchError> {
        loop {
            match self.stream.read(chunk) {
                Ok(0) => return Err(ClientError::Closed.into()),
                Ok(n) => match &mut self.wire {
                    Wire::Chat(decoder) => decoder.feed(&chunk[..n]),
                    Wire::Mqtt(decoder) => decoder.feed(&chunk[..n]),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

struct Sender {
    conn: Conn,
    to: Vec<u8>,
    /// Write times (ns from the start) of sends not answered yet, oldest first.
    unanswered: VecDeque<u64>,
    /// Due times of messages released to this sender and not written yet (rate mode).
    due: VecDeque<u64>,
    seq: u64,
}

struct Receiver {
    conn: Conn,
}

/// Counts and histograms the loop keeps.
struct Tally {
    sent: u64,
    acked: u64,
    refused: u64,
    delivered: u64,
    last_send: Duration,
    last_push: Duration,
    latency_ns: Histogram<u64>,
    ack_latency_ns: Histogram<u64>,
    lag_ns: Histogram<u64>,
}

/// Connections set up with blocking clients; the loop drives clones of their sockets.
struct Setup {
    senders: Vec<Sender>,
    receivers: Vec<Receiver>,
    /// The receivers' command connections: the relays live only as long as their sessions.
    _sessions: Vec<Client>,
}

fn set_up(target: &Target, run: usize, pairs: usize) -> Result<Setup, BenchError> {
    let mut setup = Setup { senders: Vec::new(), receivers: Vec::new(), _sessions: Vec::new() };
    for i in 0..pairs {
        let sender = registered(target, &user_name(run, "s", i), SETUP_TIMEOUT)?;
        let receiver_name = user_name(run, "r", i);
        let mut receiver = registered(target, &receiver_name, SETUP_TIMEOUT)?;
        let relay = relay_for(target, &mut receiver, &receiver_name, SETUP_TIMEOUT)?;
        // Nothing has been read from either socket beyond whole replies, so the clones start
        // at a frame boundary; the blocking wrappers are dropped (their duplicates stay open).
        setup.senders.push(Sender {
            conn: Conn::new(sender.tcp(), Token(2 * i), false)?,
            to: receiver_name.into_bytes(),
            unanswered: VecDeque::new(),
            due: VecDeque::new(),
            seq: 0,
        });
        setup.receivers.push(Receiver { conn: Conn::new(relay.tcp(), Token(2 * i + 1), false)? });
        setup._sessions.push(receiver);
    }
    Ok(setup)
}

/// Publisher/subscriber pairs on an MQTT broker, connected and subscribed.
fn set_up_mqtt(target: &Target, run: usize, plan: RelayPlan, qos: u8) -> Result<Setup, BenchError> {
    let mut setup = Setup { senders: Vec::new(), receivers: Vec::new(), _sessions: Vec::new() };
    let connect = |role: &str, i: usize| -> Result<std::net::TcpStream, BenchError> {
        let stream = std::net::TcpStream::connect(target.command_addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(SETUP_TIMEOUT))?;
        handshake(&stream, &mqtt::connect(&user_name(run, role, i)), mqtt::CONNACK)?;
        Ok(stream)
    };
    for i in 0..plan.pairs {
        let subscriber = connect("r", i)?;
        handshake(&subscriber, &mqtt::subscribe(&mqtt::topic(i), qos), mqtt::SUBACK)?;
        let publisher = connect("s", i)?;
        setup.senders.push(Sender {
            conn: Conn::new(&publisher, Token(2 * i), true)?,
            to: mqtt::topic(i).into_bytes(),
            unanswered: VecDeque::new(),
            due: VecDeque::new(),
            seq: 0,
        });
        setup.receivers.push(Receiver { conn: Conn::new(&subscriber, Token(2 * i + 1), true)? });
    }
    Ok(setup)
}

/// Writes `packet` and waits for a packet of `kind` in answer.
fn handshake(mut stream: &std::net::TcpStream, packet: &[u8], kind: u8) -> Result<(), BenchError> {
    stream.write_all(packet)?;
    let mut decoder = mqtt::Decoder::default();
    let mut chunk = [0u8; 256];
    loop {
        if let Some(answer) = decoder.next_packet() {
            return match answer.kind() == kind {
                true => Ok(()),
                false => Err(BenchError::Other(format!("the broker answered {answer:?}"))),
            };
        }
        match stream.read(&mut chunk)? {
            0 => return Err(ClientError::Closed.into()),
            n => decoder.feed(&chunk[..n]),
        }
    }
}

/// Runs one measurement against `target`.
pub fn run_once(target: &Target, run: usize, plan: RelayPlan) -> Result<RelayRun, BenchError> {
    let mut setup = match plan.mqtt_qos {
        Some(qos) => set_up_mqtt(target, run, plan, qos)?,
        None => set_up(target, run, plan.pairs)?,
    };
    let mut poll = Poll::new()?;
    for conn in setup
        .senders
        .iter_mut()
        .map(|s| &mut s.conn)
        .chain(setup.receivers.iter_mut().map(|r| &mut r.conn))
    {
        poll.registry().register(&mut conn.stream, conn.token, Interest::READABLE)?;
    }
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let released = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let server_before = target.sample();
    let threads_before = target.thread_costs();
    let generator_before = ProcSample::of(std::process::id());
    let epoch = Instant::now();
    let pacer = (plan.rate > 0).then(|| {
        let (waker, released, stop) =
            (Arc::clone(&waker), Arc::clone(&released), Arc::clone(&stop));
        thread::Builder::new()
            .name("bench-pacer".into())
            .spawn(move || pace(plan, epoch, &released, &waker, &stop))
            .expect("spawn the pacer")
    });
    let mut server_at_end_of_sends = None;
    let outcome = drive(&mut poll, &mut setup, plan, epoch, &released, || {
        server_at_end_of_sends = target.sample();
    });
    stop.store(true, Ordering::SeqCst);
    if let Some(pacer) = pacer {
        pacer.join().expect("the pacer does not panic");
    }
    let tally = outcome?;
    let elapsed = tally.last_push.max(tally.last_send);
    let by_thread = system::thread_costs_since(&threads_before, &target.thread_costs());
    let server = match (server_before, target.sample(), server_at_end_of_sends) {
        (Some(before), Some(after), Some(mid)) => Some(ServerCost {
            cpu_s: after.cpu_s_since(&before),
            threads: mid.threads,
            rss_kib: mid.rss_kib,
            switches: after.switches.saturating_sub(before.switches),
            preemptions: after.preemptions.saturating_sub(before.preemptions),
            by_thread,
        }),
        _ => None,
    };
    let generator_cpu_s = match (generator_before, ProcSample::of(std::process::id())) {
        (Some(before), Some(after)) => after.cpu_s_since(&before),
        _ => 0.0,
    };
    Ok(RelayRun {
        sent: tally.sent,
        acked: tally.acked,
        refused: tally.refused,
        delivered: tally.delivered,
        send_window: tally.last_send,
        elapsed,
        latency_ns: tally.latency_ns,
        ack_latency_ns: tally.ack_latency_ns,
        lag_ns: tally.lag_ns,
        server,
        generator_cpu_s,
    })
}

/// The pacer: publishes how many messages are due by now and wakes the loop when that grows.
fn pace(plan: RelayPlan, epoch: Instant, released: &AtomicU64, waker: &Waker, stop: &AtomicBool) {
    let total = plan.total();
    let mut published = 0;
    while published < total && !stop.load(Ordering::SeqCst) {
        let now_ns = epoch.elapsed().as_nanos() as u64;
        // Message k is due at k / rate: those with k * 1e9 / rate <= now are due.
        let due = ((now_ns as f64 * plan.rate as f64 / 1e9) as u64 + 1).min(total);
        if due > published {
            published = due;
            released.store(published, Ordering::Release);
            if waker.wake().is_err() {
                return;
            }
        }
        let next_ns = plan.due_ns(published);
        let now_ns = epoch.elapsed().as_nanos() as u64;
        if next_ns > now_ns {
            thread::sleep(Duration::from_nanos(next_ns - now_ns));
        }
    }
}

/// The event loop: writes sends when due, reads replies and pushes, acknowledges pushes, until
/// every accepted message has arrived after the senders stopped (or the drain times out).
fn drive(
    poll: &mut Poll,
    setup: &mut Setup,
    plan: RelayPlan,
    epoch: Instant,
    released: &AtomicU64,
    mut on_sends_done: impl FnMut(),
) -> Result<Tally, BenchError> {
    let mut tally = Tally {
        sent: 0,
        acked: 0,
        refused: 0,
        delivered: 0,
        last_send: Duration::ZERO,
        last_push: Duration::ZERO,
        latency_ns: new_histogram(),
        ack_latency_ns: new_histogram(),
        lag_ns: new_histogram(),
    };
    let mut events = Events::with_capacity(1024);
    let mut chunk = vec![0u8; READ_CHUNK_LEN];
    let mut text = Vec::with_capacity(plan.size_bytes);
    let total = plan.total();
    let mut assigned = 0u64;
    let mut sends_done_at: Option<Instant> = None;
    loop {
        let now = epoch.elapsed();
        if sends_done_at.is_none() {
            let done = match plan.rate {
                0 => now >= plan.duration,
                _ => {
                    let released = released.load(Ordering::Acquire);
                    while assigned < released {
                        let sender = &mut setup.senders[(assigned % plan.pairs as u64) as usize];
                        sender.due.push_back(plan.due_ns(assigned));
                        assigned += 1;
                    }
                    assigned == total && setup.senders.iter().all(|s| s.due.is_empty())
                }
            };
            if done {
                sends_done_at = Some(Instant::now());
                on_sends_done();
            }
        }
        if sends_done_at.is_none() || plan.rate > 0 {
            let open = sends_done_at.is_none();
            for sender in &mut setup.senders {
                write_sends(sender, poll.registry(), plan, open, epoch, &mut text, &mut tally)?;
            }
        }
        if let Some(done_at) = sends_done_at {
            let answered = setup.senders.iter().all(|s| s.unanswered.is_empty());
            if answered && tally.delivered >= tally.acked {
                return Ok(tally);
            }
            if done_at.elapsed() > DRAIN_TIMEOUT {
                eprintln!(
                    "bench relay: drain timed out after {} s: {} of {} accepted delivered",
                    DRAIN_TIMEOUT.as_secs(),
                    tally.delivered,
                    tally.acked
                );
                return Ok(tally);
            }
        }
        poll.poll(&mut events, Some(POLL_INTERVAL))?;
        for event in events.iter() {
            let token = event.token();
            if token == WAKE {
                continue;
            }
            let i = token.0 / 2;
            if token.0 % 2 == 0 {
                let sender = &mut setup.senders[i];
                if event.is_writable() {
                    sender.conn.flush(poll.registry())?;
                }
                if event.is_readable() {
                    read_replies(sender, epoch, &mut chunk, &mut tally)?;
                }
            } else {
                let receiver = &mut setup.receivers[i];
                if event.is_readable() {
                    // At QoS 0 nothing answers a publish: its delivery stands for the reply.
                    let sender = (plan.mqtt_qos == Some(0)).then(|| &mut setup.senders[i]);
                    read_pushes(receiver, sender, epoch, &mut chunk, &mut tally)?;
                }
                receiver.conn.flush(poll.registry())?;
            }
        }
    }
}

/// Writes the sends this sender owes now, all stamped with the moment of the write. Nothing is
/// added while an earlier write is still partly unwritten: it would be stamped before it left.
fn write_sends(
    sender: &mut Sender,
    registry: &Registry,
    plan: RelayPlan,
    open: bool,
    epoch: Instant,
    text: &mut Vec<u8>,
    tally: &mut Tally,
) -> Result<(), BenchError> {
    if sender.conn.has_unwritten() {
        return Ok(());
    }
    let count = match plan.rate {
        0 if open => plan.window.saturating_sub(sender.unanswered.len()),
        0 => 0,
        _ => sender.due.len(),
    };
    if count == 0 {
        return Ok(());
    }
    let stamp = epoch.elapsed();
    let stamp_ns = stamp.as_nanos() as u64;
    for _ in 0..count {
        text.clear();
        write_stamped(text, stamp_ns, sender.seq, plan.size_bytes);
        match plan.mqtt_qos {
            Some(qos) => {
                let id = (sender.seq % u64::from(u16::MAX)) as u16 + 1;
                mqtt::publish(&sender.to, qos, id, text, &mut sender.conn.out);
            }
            None => encode_parts(&[b"2\n", &sender.to, b"\n", text], &mut sender.conn.out),
        }
        sender.seq += 1;
        sender.unanswered.push_back(stamp_ns);
        if let Some(due_ns) = sender.due.pop_front() {
            tally.lag_ns.saturating_record(stamp_ns.saturating_sub(due_ns));
        }
    }
    tally.sent += count as u64;
    tally.last_send = stamp;
    Ok(sender.conn.flush(registry)?)
}

fn read_replies(
    sender: &mut Sender,
    epoch: Instant,
    chunk: &mut [u8],
    tally: &mut Tally,
) -> Result<(), BenchError> {
    sender.conn.fill(chunk)?;
    let now_ns = epoch.elapsed().as_nanos() as u64;
    loop {
        let ok = match &mut sender.conn.wire {
            Wire::Chat(decoder) => match decoder.decode().map_err(ClientError::from)? {
                Some(body) => Reply::parse(&body)?.ok,
                None => return Ok(()),
            },
            Wire::Mqtt(decoder) => match decoder.next_packet() {
                Some(packet) if packet.kind() == mqtt::PUBACK => true,
                Some(_) => continue,
                None => return Ok(()),
            },
        };
        let Some(written_ns) = sender.unanswered.pop_front() else {
            return Err(BenchError::Other("a reply to no request".into()));
        };
        tally.ack_latency_ns.saturating_record(now_ns.saturating_sub(written_ns));
        match ok {
            true => tally.acked += 1,
            false => tally.refused += 1,
        }
    }
}

fn read_pushes(
    receiver: &mut Receiver,
    mut sender: Option<&mut Sender>,
    epoch: Instant,
    chunk: &mut [u8],
    tally: &mut Tally,
) -> Result<(), BenchError> {
    receiver.conn.fill(chunk)?;
    let now = epoch.elapsed();
    let now_ns = now.as_nanos() as u64;
    let conn = &mut receiver.conn;
    loop {
        let stamp = match &mut conn.wire {
            Wire::Chat(decoder) => {
                let Some(body) = decoder.decode().map_err(ClientError::from)? else {
                    return Ok(());
                };
                let push = parse_push(&body)?;
                if let Some(id) = push.id {
                    encode_ack(id, &mut conn.out);
                }
                parse_stamp(&push.text)
            }
            Wire::Mqtt(decoder) => {
                let Some(packet) = decoder.next_packet() else { return Ok(()) };
                if packet.kind() != mqtt::PUBLISH {
                    continue;
                }
                let (id, payload) = packet
                    .publish_parts()
                    .ok_or_else(|| ClientError::Malformed(format!("{packet:?}")))?;
                if let Some(id) = id {
                    mqtt::puback(id, &mut conn.out);
                }
                std::str::from_utf8(payload).ok().and_then(parse_stamp)
            }
        };
        let (stamp_ns, _) =
            stamp.ok_or_else(|| ClientError::Malformed("a push without a stamp".into()))?;
        tally.latency_ns.saturating_record(now_ns.saturating_sub(stamp_ns));
        tally.delivered += 1;
        tally.last_push = now;
        if let Some(sender) = sender.as_deref_mut() {
            if let Some(written_ns) = sender.unanswered.pop_front() {
                tally.ack_latency_ns.saturating_record(now_ns.saturating_sub(written_ns));
                tally.acked += 1;
            }
        }
    }
}

/// Appends the acknowledgement of push `id` (`7\nID`) without allocating.
fn encode_ack(id: u64, out: &mut Vec<u8>) {
    let mut digits = itoa::Buffer::new();
    encode_parts(&[b"7\n", digits.format(id).as_bytes()], out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Request;
    use crate::wire::encode;

    /// A send frame as the loop encodes it.
    fn send_frame(to: &str, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_parts(&[b"2\n", to.as_bytes(), b"\n", text], &mut out);
        out
    }

    #[test]
    fn the_loop_encodes_sends_as_the_client_does() {
        let mut expected = Vec::new();
        let request = Request::Send { to: "bob".into(), text: "hi there".into() };
        encode(request.body().as_bytes(), &mut expected);
        assert_eq!(send_frame("bob", b"hi there"), expected);
    }

    #[test]
    fn the_loop_encodes_acks_as_the_client_does() {
        let mut expected = Vec::new();
        encode(crate::wire::RelayFrame::Ack(1234).body().as_bytes(), &mut expected);
        let mut out = Vec::new();
        encode_ack(1234, &mut out);
        assert_eq!(out, expected);
    }

    #[test]
    fn the_schedule_spreads_messages_over_the_run() {
        let plan = RelayPlan {
            pairs: 4,
            size_bytes: 64,
            rate: 25_000,
            duration: Duration::from_secs(2),
            window: 1,
            mqtt_qos: None,
        };
        assert_eq!(plan.total(), 50_000);
        assert_eq!(plan.due_ns(0), 0);
        assert_eq!(plan.due_ns(25_000), 1_000_000_000);
        assert_eq!(plan.due_ns(1), 40_000);
    }
}
