//! `core_streams`: the core fed byte streams on several command and relay connections, with
//! password jobs, durability, relay writes and time under the fuzzer's control, checked by
//! [`CoreDriver`] after every step.
//!
//! Input: a first byte choosing the configuration (bit 0: tiny limits, so the fuzzer reaches every
//! limit in a few bytes), then a program of one-byte operations, most with arguments:
//!
//! | op % 13 | operation | arguments |
//! | --- | --- | --- |
//! | 0 | open a command connection | peer |
//! | 1 | open a relay connection | peer |
//! | 2 | raw bytes on a connection | conn, length n, n bytes |
//! | 3 | one frame on a connection (header added) | conn, length n, n bytes |
//! | 4 | the peer closes a connection | conn |
//! | 5 | every record becomes durable | |
//! | 6 | toggle automatic durability | |
//! | 7 | time passes: 500 ms per unit | units |
//! | 8 | toggle holding password jobs | |
//! | 9 | run the held password jobs | |
//! | 10 | toggle automatic relay writes | |
//! | 11 | report a relay's pushes written | conn |
//! | 12 | a ticketed relay handshake, with the last ticket granted on a command connection | relay conn, command conn, length n, n bytes of name |
//!
//! `conn` picks among the connections opened so far (modulo their count); `peer` is one of four
//! addresses. A missing argument ends the program.

use super::driver::CoreDriver;
use crate::core::{Channel, Config};
use crate::wire::encode;

/// Operations run per input at most, so that one input stays fast.
const OPS_MAX: usize = 4_096;

/// Runs the target on one input. Panics if a property fails.
pub fn core_streams(data: &[u8]) {
    core_streams_driver(data);
}

/// [`core_streams`], returning the driver afterwards (`None` for an empty input), so that a
/// test can ask what a corpus file reached.
pub fn core_streams_driver(data: &[u8]) -> Option<CoreDriver> {
    let (&selector, program) = data.split_first()?;
    let mut driver = CoreDriver::new(config(selector));
    let mut bytes = program.iter().copied();
    for _ in 0..OPS_MAX {
        let Some(op) = bytes.next() else { break };
        if step(&mut driver, op, &mut bytes).is_none() {
            break;
        }
    }
    driver.settle();
    Some(driver)
}

/// The default configuration, or one whose limits a short input reaches.
fn config(selector: u8) -> Config {
    if selector & 1 == 0 {
        return Config::default();
    }
    Config {
        frame_len_max_before_login: 24,
        frame_len_max: 64,
        relay_frame_len_max: 12,
        inbound_buffered_len_max: 96,
        queue_len_max: 3,
        queued_bytes_max: 256,
        accounts_max: 3,
        connections_max: 6,
        connections_per_peer_max: 4,
        push_window_len: 2,
        list_len_max: 2,
        tickets_per_session_max: 2,
        login_failures_max: 2,
        login_failures_per_peer_max: 4,
        ..Config::default()
    }
}

/// Runs one operation; `None` when the program ran out of bytes for its arguments.
fn step(driver: &mut CoreDriver, op: u8, bytes: &mut impl Iterator<Item = u8>) -> Option<()> {
    match op % 13 {
        0 => drop(driver.open(Channel::Command, peer(bytes.next()?))),
        1 => drop(driver.open(Channel::Relay, peer(bytes.next()?))),
        2 | 3 => {
            let conn = pick(driver, bytes.next()?);
            let len = usize::from(bytes.next()?);
            let chunk: Vec<u8> = bytes.take(len).collect();
            let Some(conn) = conn else { return Some(()) };
            if op % 13 == 2 {
                driver.feed(conn, &chunk);
            } else {
                let mut frame = Vec::new();
                encode(&chunk, &mut frame);
                driver.feed(conn, &frame);
            }
        }
        4 => {
            if let Some(conn) = pick(driver, bytes.next()?) {
                driver.peer_close(conn);
            }
        }
        5 => driver.make_durable(),
        6 => driver.auto_durable = !driver.auto_durable,
        7 => driver.advance(u64::from(bytes.next()?) * 500),
        8 => driver.set_hold_jobs(!driver.hold_jobs()),
        9 => driver.run_jobs(),
        10 => driver.set_auto_written(!driver.auto_written()),
        11 => {
            if let Some(conn) = pick(driver, bytes.next()?) {
                driver.written(conn);
            }
        }
        _ => ticketed_hello(driver, bytes)?,
    }
    Some(())
}

/// Sends `NAME\nTICKET` on a relay, the ticket being the last one a command connection got (the
/// fuzzer cannot guess one, and the ack paths need one).
fn ticketed_hello(driver: &mut CoreDriver, bytes: &mut impl Iterator<Item = u8>) -> Option<()> {
    let relay = pick(driver, bytes.next()?);
    let command = pick(driver, bytes.next()?);
    let len = usize::from(bytes.next()?);
    let mut body: Vec<u8> = bytes.take(len).collect();
    let (Some(relay), Some(command)) = (relay, command) else { return Some(()) };
    body.push(b'\n');
    body.extend_from_slice(driver.last_ticket(command).unwrap_or("no-ticket").as_bytes());
    let mut frame = Vec::new();
    encode(&body, &mut frame);
    driver.feed(relay, &frame);
    Some(())
}

fn peer(byte: u8) -> u128 {
    u128::from(byte % 4) + 1
}

fn pick(driver: &CoreDriver, byte: u8) -> Option<crate::core::ConnId> {
    let conns = driver.conn_ids();
    (!conns.is_empty()).then(|| conns[usize::from(byte) % conns.len()])
}
