//! `bench relay`: pairs of clients, one sending to the other, over real TCP.
//!
//! Each sender pipelines up to a window of sends at a time (at a fixed rate, or as fast as the
//! server answers); each receiver reads its ticketed relay and acknowledges. The text carries
//! the moment the message was due to be sent, so latency is measured from the schedule, not
//! from a send that a busy sender issued late (no coordinated omission).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::{parse_stamp, registered, relay_for, stamped_text, user_name, BenchError, Target};
use crate::client::{Client, ClientError, Relay, Request};

/// How long to wait for a reply or a push before calling the run broken.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// After the senders stop, how long receivers may take to get what is still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Receivers wake this often to check whether the run is over.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// What one run of `bench relay` does.
#[derive(Debug, Clone, Copy)]
pub struct RelayPlan {
    pub pairs: usize,
    pub size_bytes: usize,
    /// Messages per second over all pairs; 0 for as fast as possible.
    pub rate: u64,
    pub duration: Duration,
    /// Sends in flight per sender.
    pub window: usize,
}

/// What one run measured.
pub struct RelayRun {
    pub sent_ok: u64,
    pub refused: u64,
    pub delivered: u64,
    pub elapsed: Duration,
    pub latency_ns: Histogram<u64>,
}

impl RelayRun {
    pub fn delivered_per_s(&self) -> f64 {
        self.delivered as f64 / self.elapsed.as_secs_f64()
    }
}

struct Pair {
    sender: Client,
    receiver_name: String,
    /// Kept logged in: the relay lives only as long as its session.
    _receiver: Client,
    relay: Relay,
}

fn set_up(target: &Target, run: usize, pairs: usize) -> Result<Vec<Pair>, BenchError> {
    (0..pairs)
        .map(|i| {
            let sender = registered(target, &user_name(run, "s", i), IO_TIMEOUT)?;
            let receiver_name = user_name(run, "r", i);
            let mut receiver = registered(target, &receiver_name, IO_TIMEOUT)?;
            let relay = relay_for(target, &mut receiver, &receiver_name, POLL_INTERVAL)?;
            Ok(Pair { sender, receiver_name, _receiver: receiver, relay })
        })
        .collect()
}

/// Runs one measurement against `target`.
pub fn run_once(target: &Target, run: usize, plan: RelayPlan) -> Result<RelayRun, BenchError> {
    let pairs = set_up(target, run, plan.pairs)?;
    let epoch = Instant::now();
    let progress = Arc::new(Progress::default());
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for pair in pairs {
        let Pair { sender, receiver_name, _receiver, relay } = pair;
        let progress = Arc::clone(&progress);
        receivers.push(thread::spawn(move || {
            let _keep_session = _receiver;
            receive(relay, epoch, &progress)
        }));
        senders.push(thread::spawn(move || send(sender, &receiver_name, epoch, plan)));
    }
    let (mut sent_ok, mut refused) = (0, 0);
    for sender in senders {
        let (ok, no) = sender.join().expect("sender thread")?;
        sent_ok += ok;
        refused += no;
    }
    let drain_deadline = Instant::now() + DRAIN_TIMEOUT;
    while progress.delivered.load(Ordering::SeqCst) < sent_ok && Instant::now() < drain_deadline {
        thread::sleep(POLL_INTERVAL);
    }
    progress.stop.store(true, Ordering::SeqCst);
    let mut latency_ns = new_histogram();
    let (mut delivered, mut last) = (0, epoch);
    for receiver in receivers {
        let (count, histogram, last_at) = receiver.join().expect("receiver thread")?;
        delivered += count;
        last = last.max(last_at);
        latency_ns.add(&histogram).expect("histograms share their bounds");
    }
    Ok(RelayRun { sent_ok, refused, delivered, elapsed: last - epoch, latency_ns })
}

/// Shared between the receivers and the thread that ends the run.
#[derive(Default)]
struct Progress {
    delivered: AtomicU64,
    stop: AtomicBool,
}

/// A receiver: returns how many pushes it got, their latencies and when the last one came.
fn receive(
    mut relay: Relay,
    epoch: Instant,
    progress: &Progress,
) -> Result<(u64, Histogram<u64>, Instant), ClientError> {
    let mut latency_ns = new_histogram();
    let (mut count, mut last) = (0u64, epoch);
    while !progress.stop.load(Ordering::SeqCst) {
        let push = match relay.recv() {
            Ok(push) => push,
            Err(ClientError::TimedOut) => continue,
            Err(error) => return Err(error),
        };
        last = Instant::now();
        let (stamp_ns, _) = parse_stamp(&push.text)
            .ok_or_else(|| ClientError::Malformed(format!("unstamped text {:?}", push.text)))?;
        let now_ns = (last - epoch).as_nanos() as u64;
        latency_ns.saturating_record(now_ns.saturating_sub(stamp_ns));
        count += 1;
        progress.delivered.fetch_add(1, Ordering::SeqCst);
    }
    Ok((count, latency_ns, last))
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 60_000_000_000, 3).expect("valid bounds")
}

/// A sender: returns (accepted, refused) sends.
fn send(
    mut client: Client,
    to: &str,
    epoch: Instant,
    plan: RelayPlan,
) -> Result<(u64, u64), BenchError> {
    let rate_per_pair = plan.rate as f64 / plan.pairs as f64;
    let (mut sent, mut ok, mut refused) = (0u64, 0u64, 0u64);
    let mut batch = Vec::with_capacity(plan.window);
    loop {
        let now = epoch.elapsed();
        if now >= plan.duration {
            return Ok((ok, refused));
        }
        let due = if plan.rate == 0 {
            plan.window as u64
        } else {
            ((now.as_secs_f64() * rate_per_pair) as u64).saturating_sub(sent)
        };
        if due == 0 {
            let next_s = (sent + 1) as f64 / rate_per_pair;
            thread::sleep(Duration::from_secs_f64(next_s).saturating_sub(now));
            continue;
        }
        batch.clear();
        for _ in 0..due.min(plan.window as u64) {
            let stamp_ns = match plan.rate {
                0 => epoch.elapsed().as_nanos() as u64,
                _ => (sent as f64 / rate_per_pair * 1e9) as u64,
            };
            let text = stamped_text(stamp_ns, sent, plan.size_bytes);
            batch.push(Request::Send { to: to.to_owned(), text });
            sent += 1;
        }
        for reply in client.pipeline(&batch)? {
            match reply.ok {
                true => ok += 1,
                false => refused += 1,
            }
        }
    }
}
