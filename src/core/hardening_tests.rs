//! Unit tests of the hardening rules (issue 13): each rule kept by the real core and broken by
//! its planted bug, so the checkers that later hunt the planted bugs know what to look for.

use super::planted::Planted;
use super::testkit::Harness;
use super::{Channel, Config};

fn with(planted: Planted) -> Harness {
    Harness::new(Config { planted, ..Config::default() })
}

#[test]
fn the_default_refuses_bare_relays_and_the_planted_bug_binds_them() {
    for (planted, hijacked) in [(Planted::None, false), (Planted::BareRelayByDefault, true)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        // Someone else on bob's host, right after bob's login.
        let thief = h.bare_relay(3, "bob");
        assert_eq!(h.request(alice, "2\nbob\nsecret"), "0\nSent to recipient");
        let got = h.take(thief);
        assert_eq!(got.iter().any(|f| f.contains("secret")), hijacked, "{planted:?}: {got:?}");
        if !hijacked {
            assert_eq!(
                got,
                vec![
                    "-1\nRelay refused: this server accepts ticketed handshakes only \
                     (request code 6)"
                ]
            );
        }
    }
}

#[test]
fn a_session_that_asked_for_a_ticket_never_binds_a_bare_handshake() {
    let mut h = Harness::new(Config { bare_relay_allowed: true, ..Config::default() });
    let bob = h.user(1, "bob");
    let ticket = h.request(bob, "6").strip_prefix("0\n").expect("a ticket").to_owned();
    let thief = h.bare_relay(2, "bob");
    assert_eq!(
        h.take(thief),
        vec!["-1\nRelay refused: this session uses tickets; a bare handshake is refused"]
    );
    let relay = h.open(3, Channel::Relay, 1);
    h.send(relay, &format!("bob\n{ticket}"));
    assert!(h.take(relay).is_empty());
    assert!(!h.closed.contains(&relay));
    assert!(h.server.has_relay(h.server.session_of(bob).expect("logged in")));
}

#[test]
fn a_bare_relay_ends_with_a_plain_close_and_a_ticketed_one_with_a_notice() {
    let mut h = Harness::new(Config { bare_relay_allowed: true, ..Config::default() });
    h.user(1, "bob");
    let bare = h.bare_relay(2, "bob");
    let bob = h.user(3, "bob");
    assert!(h.take(bare).is_empty(), "the original client would print a notice as a message");
    assert!(h.closed.contains(&bare));
    let bare = h.bare_relay(4, "bob");
    assert_eq!(h.request(bob, "5\nbob\npw"), "0\naccount deleted");
    assert!(h.take(bare).is_empty());
    assert!(h.closed.contains(&bare));
    let bob = h.user(5, "bob");
    let ticketed = h.ticket_relay(6, bob, "bob");
    h.user(7, "bob");
    assert_eq!(h.take(ticketed), vec!["-1\nLogged in elsewhere; this session has ended"]);
}
