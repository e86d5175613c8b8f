//! A thousand connections declaring huge frames, measured by this process's resident memory.
//!
//! A test binary of its own, with this one test: the server runs inside the test process, and
//! tests running beside it in the same process (as `cargo test` runs a file's tests, on
//! threads) would grow the same resident memory while it is sampled.

mod support;

use support::{assert_others_still_chat, start_with, wait_until, Conn};

/// This process's resident memory in bytes (the server runs in it).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).expect("resident field").parse().unwrap();
    pages * 4096
}

/// A thousand connections each declaring a 1 MiB frame (allowed here) and sending a few bytes of
/// it: the server buffers what arrived, never what was declared. Reserving the declared sizes
/// would take a GiB.
#[test]
fn a_thousand_huge_declared_frames_allocate_nothing_of_that_size() {
    const DECLARED: usize = 1 << 20;
    let server = start_with(|config| {
        config.core.connections_per_peer_max = 5_000;
        config.core.frame_len_max_before_login = DECLARED;
        config.core.inbound_buffered_len_max = 2 * DECLARED;
    });
    let before = rss_bytes();
    let mut conns = Vec::new();
    for _ in 0..1_000 {
        let mut conn = Conn::connect(server.command_addr());
        conn.raw(format!("{DECLARED:<10}3\nname\npw and then nothing more").as_bytes());
        conns.push(conn);
    }
    // Sampled once the server holds every byte sent, however slowly it read them.
    let sent = "3\nname\npw and then nothing more".len();
    let what = "the server buffered what the thousand connections sent";
    wait_until(what, || server.inbound_buffered_bytes() >= 1_000 * sent);
    assert_others_still_chat(&server);
    let grown = rss_bytes().saturating_sub(before);
    eprintln!("resident memory grew by {} KiB for 1000 connections", grown / 1024);
    assert!(grown < 256 << 20, "resident memory grew by {grown} bytes");
    // Completing one of the frames still works: the bytes were kept, not dropped.
    let mut last = conns.pop().expect("a connection");
    last.raw(&vec![b'x'; DECLARED - sent]);
    // The password field runs to the end of the megabyte: refused for its length.
    assert_eq!(last.recv(), "-1\nInvalid password: use 1 to 128 bytes");
    server.shutdown();
}
