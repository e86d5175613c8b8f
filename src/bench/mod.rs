//! Benchmarks over real TCP: relay throughput and latency, backlog drain, idle clients' memory.
//!
//! Each benchmark starts its own server as a child process (`chatroom server` from this
//! executable, on free loopback ports, with a log in a scratch directory), so that the server's
//! CPU time, threads and memory are measured alone, or targets an external one with `--addr`.
//! Accounts are set up through the normal protocol, with the cheapest argon2 cost on servers the
//! benchmark starts. Figures are wall-clock measurements; nothing here is used by tests as a
//! pass/fail criterion.

mod backlog;
pub mod cli;
mod disk;
mod idle;
mod mqtt;
mod relay;
mod system;
mod target;

use std::time::Duration;

use crate::client::{Client, ClientError, Relay};

pub use target::{Target, TargetOptions};

/// One-line summary of the machine, printed by every benchmark.
pub fn machine_summary() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("machine: {cores} cores available to this process")
}

/// The median of `values` (the mean of the middle two for an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A name unique to this process and `run`, so repeated runs against one server never clash.
pub fn user_name(run: usize, role: &str, i: usize) -> String {
    format!("b{}r{run}{role}{i}", std::process::id())
}

/// Setting up the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("setting up {name} was refused: {text}")]
    Refused { name: String, text: String },
    #[error("cannot start the server: {0}")]
    Server(String),
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A registered, logged-in client with replies bounded by `timeout`.
pub fn registered(target: &Target, name: &str, timeout: Duration) -> Result<Client, BenchError> {
    let mut client = Client::connect(target.command_addr)?;
    client.set_timeout(Some(timeout))?;
    let reply = client.register(name, "bench-password")?;
    if !reply.ok {
        return Err(BenchError::Refused { name: name.into(), text: reply.text });
    }
    Ok(client)
}

/// A ticketed relay for the logged-in `client` named `name`.
pub fn relay_for(
    target: &Target,
    client: &mut Client,
    name: &str,
    timeout: Duration,
) -> Result<Relay, BenchError> {
    let relay = client.open_relay(target.relay_addr, name)?;
    relay.set_timeout(Some(timeout))?;
    Ok(relay)
}

/// The text of a message of `size_bytes` carrying `stamp` (nanoseconds) and a sequence number
/// in its first 41 bytes, padded with `x`.
pub fn stamped_text(stamp_ns: u64, seq: u64, size_bytes: usize) -> String {
    let mut text = Vec::with_capacity(size_bytes);
    write_stamped(&mut text, stamp_ns, seq, size_bytes);
    String::from_utf8(text).expect("digits, a space and padding are ASCII")
}

/// Appends a [`stamped_text`] to `out` without allocating (the load generator's hot path).
pub fn write_stamped(out: &mut Vec<u8>, stamp_ns: u64, seq: u64, size_bytes: usize) {
    let start = out.len();
    for value in [stamp_ns, seq] {
        if out.len() > start {
            out.push(b' ');
        }
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(value).as_bytes();
        out.extend(std::iter::repeat_n(b'0', 20 - digits.len()));
        out.extend_from_slice(digits);
    }
    let pad = size_bytes.saturating_sub(out.len() - start);
    out.extend(std::iter::repeat_n(b'x', pad));
}

/// The stamp and sequence number of a [`stamped_text`].
pub fn parse_stamp(text: &str) -> Option<(u64, u64)> {
    let stamp = text.get(..20)?.parse().ok()?;
    let seq = text.get(21..41)?.parse().ok()?;
    Some((stamp, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn stamps_round_trip_and_pad() {
        let text = stamped_text(123_456_789, 42, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(parse_stamp(&text), Some((123_456_789, 42)));
        assert_eq!(stamped_text(1, 2, 0).len(), 41);
        assert_eq!(parse_stamp("short"), None);
        let widest = stamped_text(u64::MAX, u64::MAX, 64);
        assert_eq!((widest.len(), parse_stamp(&widest)), (64, Some((u64::MAX, u64::MAX))));
        let mut appended = b"keep".to_vec();
        write_stamped(&mut appended, 7, 8, 50);
        assert_eq!(appended.len(), 54, "the size counts only what is appended");
    }

    #[test]
    fn names_are_valid_and_distinct() {
        let a = user_name(3, "s", 9_999);
        assert!(crate::core::validate_name(&a).is_ok(), "{a}");
        assert_ne!(a, user_name(3, "r", 9_999));
        assert_ne!(user_name(1, "s", 11), user_name(11, "s", 1));
    }
}
