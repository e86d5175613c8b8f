//! The attacks of issue 13 over real TCP, each against the server's shipped defaults (only
//! limits are shrunk to keep the tests fast). Each test failed on the code before its fix.

mod support;

use support::*;

/// Relay hijack: someone else on the user's host polls the relay port with the user's bare
/// name right after the login. By default the bare handshake is refused, so the thief reads
/// nothing and the user's own ticketed relay gets every message, including those queued while
/// the user was away.
#[test]
fn a_bare_handshake_cannot_hijack_a_users_relay() {
    let server = start_strict_with(|_| {});
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    assert_eq!(alice.request("2\nbob\nqueued secret"), "0\nSent to recipient");
    assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
    for _ in 0..5 {
        let mut thief = bare_relay(&server, "bob");
        let refusal = thief.recv();
        assert_eq!(
            refusal,
            "-1\nRelay refused: this server accepts ticketed handshakes only (request code 6)"
        );
        thief.assert_closed();
    }
    let mut relay = ticket_relay(&server, &mut bob, "bob");
    assert_eq!(alice.request("2\nbob\nlive secret"), "0\nSent to recipient");
    let texts: Vec<String> = (0..2).map(|_| AckedPush::parse(&relay.recv()).text).collect();
    assert_eq!(texts, ["queued secret", "live secret"]);
    server.shutdown();
}

/// With the opt-in on (the original client on a trusted host), a session that asked for a
/// ticket still refuses a bare handshake in its name.
#[test]
fn a_ticketed_session_refuses_a_bare_handshake_even_with_the_opt_in() {
    let server = start_with(|_| {});
    let mut bob = user(&server, "bob");
    let ticket = bob.request("6");
    let mut thief = bare_relay(&server, "bob");
    assert_eq!(
        thief.recv(),
        "-1\nRelay refused: this session uses tickets; a bare handshake is refused"
    );
    thief.assert_closed();
    let mut relay = Conn::connect(server.relay_addr());
    relay.send(&format!("bob\n{}", ticket.strip_prefix("0\n").expect("a ticket")));
    wait_relay(&server, "bob");
    assert_eq!(bob.request("2\nbob\nmine"), "0\nSent to recipient");
    assert_eq!(AckedPush::parse(&relay.recv()).text, "mine");
    server.shutdown();
}

/// The original client prints every frame on its relay as a chat message, so a bare relay is
/// ended by a plain close: no "New Message from This account was deleted".
#[test]
fn a_bare_relay_is_closed_without_a_notice() {
    let server = start_with(|_| {});
    let mut alice = user(&server, "alice");
    let _bob = user(&server, "bob");
    let mut relay = bare_relay(&server, "bob");
    wait_relay(&server, "bob");
    assert_eq!(alice.request("2\nbob\nhello"), "0\nSent to recipient");
    assert_eq!(relay.recv(), "0\nalice:hello");
    let mut bob_again = user(&server, "bob");
    relay.assert_closed();
    let mut relay = bare_relay(&server, "bob");
    wait_relay(&server, "bob");
    assert_eq!(bob_again.request("5\nbob\npw"), "0\naccount deleted");
    relay.assert_closed();
    server.shutdown();
}
