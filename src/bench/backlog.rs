//! `bench backlog`: queue many messages for a user who is away, then time their delivery.
//!
//! The clock starts when the recipient asks to log in and stops when the last queued message
//! has been pushed to its ticketed relay; every message is checked to arrive once, in order.

use std::time::{Duration, Instant};

use super::{parse_stamp, registered, relay_for, stamped_text, user_name, BenchError, Target};
use crate::client::Request;

const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Sends per pipelined write while filling the queue.
const FILL_BATCH_LEN: usize = 1_000;

/// What one run measured.
pub struct BacklogRun {
    pub messages: u64,
    pub fill: Duration,
    pub drain: Duration,
}

impl BacklogRun {
    pub fn drained_per_s(&self) -> f64 {
        self.messages as f64 / self.drain.as_secs_f64()
    }

    pub fn filled_per_s(&self) -> f64 {
        self.messages as f64 / self.fill.as_secs_f64()
    }
}

/// Runs one measurement: `messages` of `size_bytes` each.
pub fn run_once(
    target: &Target,
    run: usize,
    messages: u64,
    size_bytes: usize,
) -> Result<BacklogRun, BenchError> {
    let sender_name = user_name(run, "s", 0);
    let receiver_name = user_name(run, "r", 0);
    let mut sender = registered(target, &sender_name, IO_TIMEOUT)?;
    let mut receiver = registered(target, &receiver_name, IO_TIMEOUT)?;
    receiver.logout()?;

    let fill_started = Instant::now();
    let mut seq = 0u64;
    while seq < messages {
        let batch: Vec<Request> = (seq..messages.min(seq + FILL_BATCH_LEN as u64))
            .map(|i| Request::Send {
                to: receiver_name.clone(),
                text: stamped_text(0, i, size_bytes),
            })
            .collect();
        for reply in sender.pipeline(&batch)? {
            if !reply.ok {
                let hint = "(raise the server's --queue-len-max for an external server)";
                return Err(BenchError::Other(format!(
                    "send {seq} refused: {} {hint}",
                    reply.text
                )));
            }
            seq += 1;
        }
    }
    let fill = fill_started.elapsed();

    let drain_started = Instant::now();
    let reply = receiver.login(&receiver_name, "bench-password")?;
    if !reply.ok {
        return Err(BenchError::Refused { name: receiver_name, text: reply.text });
    }
    let mut relay = relay_for(target, &mut receiver, &receiver_name, IO_TIMEOUT)?;
    for expected in 0..messages {
        let push = relay.recv()?;
        match parse_stamp(&push.text) {
            Some((_, got)) if got == expected => {}
            other => {
                let got = other.map(|(_, seq)| seq);
                return Err(BenchError::Other(format!(
                    "message {expected} expected next, got {got:?}: lost, duplicated or reordered"
                )));
            }
        }
    }
    let drain = drain_started.elapsed();
    relay.flush_acks()?;
    Ok(BacklogRun { messages, fill, drain })
}
