//! Unit tests of PROTOCOL.md rules that the simulator's random clients never put to the test:
//! they close their relay together with their command connection, send every frame whole,
//! list with short patterns and use short passwords. Each rule is kept by the real core and
//! broken by its planted bug (found by an outside tester's pass, where nobody had looked), so
//! `chatroom strength` lists the test against the bug.

use super::planted::Planted;
use super::testkit::Harness;
use super::{Channel, Config};

fn with(planted: Planted) -> Harness {
    Harness::new(Config { planted, bare_relay_allowed: true, ..Config::default() })
}

/// "Closing the command connection logs the session out": the relay that was still open is
/// closed with it, and the original client's bare handshake, which binds only to a live
/// session, finds none (anyone on the host could send it).
#[test]
fn closing_the_command_connection_logs_the_session_out_unless_planted() {
    for (planted, logged_out) in [(Planted::None, true), (Planted::CloseKeepsSession, false)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        let relay = h.ticket_relay(2, alice, "alice");
        assert!(!h.closed.contains(&relay), "{planted:?}: the relay is bound");
        h.peer_close(alice);
        assert_eq!(h.closed.contains(&relay), logged_out, "{planted:?}: the old relay");
        // Carol never asked for a ticket nor opened a relay, and closes at once.
        let carol = h.user(3, "carol");
        h.peer_close(carol);
        let intruder = h.bare_relay(4, "carol");
        assert_eq!(h.closed.contains(&intruder), logged_out, "{planted:?}: a bare handshake");
    }
}

/// A frame must be completed within the frame deadline of its first byte: a client that
/// dribbles one byte at a time, each within the deadline, still times out (else one such
/// client holds a connection, and its buffer, for ever).
#[test]
fn a_frame_dribbled_byte_by_byte_times_out_from_its_start_unless_planted() {
    for (planted, timed_out) in [(Planted::None, true), (Planted::FrameDeadlineRearmed, false)] {
        let mut h = with(planted);
        let deadline_ms = h.server().config().frame_deadline_ms;
        let bob = h.user(1, "bob");
        h.raw(bob, b"40        2\n");
        for &byte in b"bob\nhello, this never ends" {
            h.advance(deadline_ms / 3);
            h.raw(bob, &[byte]);
        }
        assert_eq!(h.closed.contains(&bob), timed_out, "{planted:?}");
        if timed_out {
            let got = h.take(bob);
            assert!(got.iter().any(|r| r.starts_with("-1\nTimed out waiting")), "{got:?}");
        }
    }
}

/// `list` patterns have a length limit: a pattern exactly at it is served, one byte more is
/// refused.
#[test]
fn a_list_pattern_exactly_at_the_limit_is_served_unless_planted() {
    for (planted, served) in [(Planted::None, true), (Planted::ListPatternLimitExclusive, false)] {
        let mut h = with(planted);
        let max = h.server().config().list_pattern_len_max;
        let alice = h.user(1, "alice");
        let at_limit = h.request(alice, &format!("4\n{}", "*".repeat(max)));
        assert_eq!(at_limit == "0\nalice ", served, "{planted:?}: {at_limit:?}");
        let over = h.request(alice, &format!("4\n{}", "*".repeat(max + 1)));
        assert_eq!(over, format!("-1\nPattern too long: at most {max} bytes"), "{planted:?}");
    }
}

/// "Passwords: 1 to 128 bytes": 128 bytes register and log in, 129 are refused.
#[test]
fn a_password_of_exactly_128_bytes_is_accepted_unless_planted() {
    for (planted, accepted) in [(Planted::None, true), (Planted::PasswordLimitExclusive, false)] {
        let mut h = with(planted);
        let c = h.open(1, Channel::Command, 1);
        let longest = "p".repeat(128);
        let reply = h.request(c, &format!("3\nalice\n{longest}"));
        assert_eq!(reply == "0\nSuccessful Created and logged in", accepted, "{planted:?}");
        let too_long = h.request(c, &format!("3\nbob\n{longest}p"));
        assert!(too_long.starts_with("-1\nInvalid password"), "{planted:?}: {too_long}");
        if accepted {
            assert_eq!(h.request(c, "-1\n"), "0\nLogging out");
            assert_eq!(h.request(c, &format!("1\nALICE\n{longest}")), "0\nSuccessful Login");
        }
    }
}

/// Failed logins are throttled per address too ("slowing the attacker's address"), and one
/// right password (the attacker's own account) does not excuse the wrong ones before it: the
/// address's next wrong guesses stay slowed.
#[test]
fn a_right_password_does_not_excuse_an_addresss_wrong_ones_unless_planted() {
    for (planted, excused) in
        [(Planted::None, false), (Planted::ThrottleSuccessClearsAddress, true)]
    {
        let config = Config {
            planted,
            login_failures_max: 100,
            login_failures_per_peer_max: 3,
            ..Config::default()
        };
        let mut h = Harness::new(config);
        let c = h.open(1, Channel::Command, 9);
        assert_eq!(h.request(c, "3\nmallory\npw"), "0\nSuccessful Created and logged in");
        for name in ["a", "b", "c"] {
            let reply = h.request(c, &format!("1\n{name}\nwrong"));
            assert!(reply.starts_with("-1\nInvalid Login"), "{planted:?}: {reply}");
        }
        let throttled = |reply: &str| reply.starts_with("-1\nToo many failed attempts");
        assert!(throttled(&h.request(c, "1\nd\nwrong")), "{planted:?}");
        h.advance(h.server().config().login_backoff_base_ms);
        assert_eq!(h.request(c, "1\nmallory\npw"), "0\nSuccessful Login", "{planted:?}");
        let first = h.request(c, "1\nd\nwrong");
        assert!(first.starts_with("-1\nInvalid Login"), "{planted:?}: {first}");
        let second = h.request(c, "1\ne\nwrong");
        assert_eq!(throttled(&second), !excused, "{planted:?}: {second}");
    }
}

/// "A connection must log in within 60 s" of connecting: requests that are not a login do
/// not extend it.
#[test]
fn requests_do_not_extend_the_login_deadline_unless_planted() {
    for (planted, closed) in [(Planted::None, true), (Planted::LoginDeadlineRearmed, false)] {
        let mut h = with(planted);
        let deadline_ms = h.server().config().login_deadline_ms;
        let c = h.open(1, Channel::Command, 1);
        h.advance(deadline_ms / 2);
        assert!(h.request(c, "0\n").starts_with("0\nThis is a chat room app."), "{planted:?}");
        h.advance(deadline_ms / 2);
        assert_eq!(h.closed.contains(&c), closed, "{planted:?}");
    }
}

/// Queued messages "are pushed as soon as a relay is attached, with no polling delay": an
/// original client's relay gets a backlog larger than the push window as its writes are
/// reported, without waiting for another send.
#[test]
fn a_bare_relay_gets_a_backlog_larger_than_its_window_unless_planted() {
    for (planted, all) in [(Planted::None, true), (Planted::WrittenDoesNotPump, false)] {
        let config =
            Config { planted, bare_relay_allowed: true, push_window_len: 2, ..Config::default() };
        let mut h = Harness::new(config);
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        for i in 0..5 {
            assert_eq!(h.request(alice, &format!("2\nbob\nm{i}")), "0\nSent to recipient");
        }
        let relay = h.bare_relay(3, "bob");
        let got = h.take(relay);
        let want: Vec<String> = (0..5).map(|i| format!("0\nalice:m{i}")).collect();
        assert_eq!(got == want, all, "{planted:?}: {got:?}");
    }
}

/// The throttle slows guessing "without locking the owner out": a check whose connection
/// dropped before it finished (nobody learned its outcome) gives its slot back, so an owner
/// whose logins keep being cut off (a flaky network) can still log in from that address.
#[test]
fn a_check_abandoned_by_a_dropped_connection_gives_its_slot_back_unless_planted() {
    for (planted, locked_out) in [(Planted::None, false), (Planted::AbandonedCheckKeepsSlot, true)]
    {
        let config = Config { planted, login_failures_max: 2, ..Config::default() };
        let mut h = Harness::new(config);
        let c = h.user(1, "alice");
        assert_eq!(h.request(c, "-1\n"), "0\nLogging out");
        h.hold_jobs = true;
        for conn in 2..4 {
            let dropped = h.open(conn, Channel::Command, 1);
            h.send(dropped, "1\nalice\npw");
            h.peer_close(dropped);
        }
        h.hold_jobs = false;
        h.held_jobs.clear();
        // Long after any streak would be forgotten.
        h.advance(2 * h.server().config().login_failure_window_ms);
        let fresh = h.open(9, Channel::Command, 1);
        let reply = h.request(fresh, "1\nalice\npw");
        let throttled = reply.starts_with("-1\nToo many failed attempts");
        assert_eq!(throttled, locked_out, "{planted:?}: {reply}");
        if !locked_out {
            assert_eq!(reply, "0\nSuccessful Login");
        }
    }
}
