//! Unit tests of the core through its public input/output contract.

use super::testkit::Harness;
use super::{Channel, Config, ConnId, MsgId, Record, Server};
use rand::SeedableRng;

/// A core that also speaks the original client's bare relay handshake, which most tests here
/// use (the shipped default refuses it: see `relay_rules`).
fn harness() -> Harness {
    Harness::new(Config { bare_relay_allowed: true, ..Config::default() })
}

#[test]
fn register_login_list_and_help() {
    let mut h = harness();
    let a = h.open(1, Channel::Command, 1);
    assert_eq!(
        h.request(a, "4\n"),
        "-1\nInvalid Command, you can only choose to login or register"
    );
    assert_eq!(h.request(a, "3\ntester\nabc123"), "0\nSuccessful Created and logged in");
    let b = h.open(2, Channel::Command, 1);
    assert_eq!(h.request(b, "3\nTESTER\nx"), "-1\nThis username has been used");
    assert_eq!(
        h.request(b, "1\ntester\nwrong"),
        "-1\nInvalid Login, credential doesn't exist or password invalid"
    );
    assert_eq!(
        h.request(b, "1\nnobody\nabc123"),
        "-1\nInvalid Login, credential doesn't exist or password invalid"
    );
    assert_eq!(h.request(b, "3\nabc\nabc"), "0\nSuccessful Created and logged in");
    assert_eq!(h.request(b, "4\n"), "0\ntester abc ");
    assert_eq!(h.request(b, "4\nt*"), "0\ntester ");
    assert_eq!(h.request(b, "4\n?bc"), "0\nabc ");
    assert_eq!(h.request(b, "4\nzz*"), "0\n");
    assert!(h.request(b, "0\n").starts_with("0\nThis is a chat room app."));
    assert_eq!(h.request(b, "9\n"), "-1\ninvalid command:9");
    assert_eq!(h.request(b, "-1\n"), "0\nLogging out");
    assert_eq!(
        h.request(b, "4\n"),
        "-1\nInvalid Command, you can only choose to login or register"
    );
    assert_eq!(h.request(b, "1\nAbC\nabc"), "0\nSuccessful Login");
}

#[test]
fn name_and_password_rules() {
    let mut h = harness();
    let a = h.open(1, Channel::Command, 1);
    assert!(h.request(a, "3\nbad name\npw").starts_with("-1\nInvalid username"));
    assert!(h
        .request(a, &format!("3\n{}\npw", "x".repeat(33)))
        .starts_with("-1\nInvalid username"));
    assert!(h.request(a, "3\nok\n").starts_with("-1\nInvalid password"));
    assert!(h.request(a, "3\nok\na\nb").starts_with("-1\nInvalid request: command 3 takes 2"));
    assert!(h.request(a, "3\nok").starts_with("-1\nInvalid request: command 3 needs a password"));
}

#[test]
fn online_send_is_pushed_at_once() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    let bob = h.user(2, "bob");
    let relay = h.bare_relay(3, "bob");
    assert_eq!(h.request(alice, "2\nBOB\nhi\nthere"), "0\nSent to recipient");
    assert_eq!(h.take(relay), vec!["0\nalice:hi\nthere"]);
    assert_eq!(h.request(alice, "2\nnobody\nhi"), "-1\ninvalid recipient");
    // Written means delivered for the original client: the queue is empty.
    let bob_id = h.server().session_of(bob).unwrap();
    assert!(h.server().queued_ids(bob_id).is_empty());
}

#[test]
fn offline_messages_wait_and_arrive_in_order_at_login() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    let bob = h.user(2, "bob");
    assert_eq!(h.request(bob, "-1\n"), "0\nLogging out");
    for i in 0..3 {
        assert_eq!(h.request(alice, &format!("2\nbob\nm{i}")), "0\nSent to recipient");
    }
    assert_eq!(h.request(bob, "1\nbob\npw"), "0\nSuccessful Login");
    let relay = h.bare_relay(3, "bob");
    assert_eq!(h.take(relay), vec!["0\nalice:m0", "0\nalice:m1", "0\nalice:m2"]);
}

#[test]
fn takeover_closes_the_old_relay_and_keeps_every_message() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    let bob1 = h.user(2, "bob");
    h.auto_written = false;
    let relay1 = h.bare_relay(3, "bob");
    assert_eq!(h.request(alice, "2\nbob\nfirst"), "0\nSent to recipient");
    assert_eq!(h.take(relay1), vec!["0\nalice:first"]);
    // The push was not reported written before the takeover: it must come again.
    let bob2 = h.user(4, "bob");
    // The original client would print a notice as a message: its relay just closes.
    assert!(h.take(relay1).is_empty());
    assert!(h.closed.contains(&relay1));
    assert_eq!(
        h.request(bob1, "4\n"),
        "-1\nInvalid Command, you can only choose to login or register"
    );
    assert_eq!(h.request(alice, "2\nbob\nsecond"), "0\nSent to recipient");
    h.auto_written = true;
    let relay2 = h.bare_relay(5, "bob");
    assert_eq!(h.take(relay2), vec!["0\nalice:first", "0\nalice:second"]);
    assert!(h.server().queued_ids(h.server().session_of(bob2).unwrap()).is_empty());
}

#[test]
fn deleted_account_queue_is_gone_and_a_new_account_with_the_name_gets_none() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    let bob = h.user(2, "bob");
    assert_eq!(h.request(bob, "-1\n"), "0\nLogging out");
    assert_eq!(h.request(alice, "2\nbob\nsecret"), "0\nSent to recipient");
    assert_eq!(h.request(bob, "1\nbob\npw"), "0\nSuccessful Login");
    assert_eq!(h.request(bob, "5\nalice\npw"), "-1\nInvalid credential, deletion failed");
    assert_eq!(h.request(bob, "5\nbob\nwrong"), "-1\nInvalid credential, deletion failed");
    assert_eq!(h.request(bob, "5\nbob\npw"), "0\naccount deleted");
    assert_eq!(
        h.request(bob, "4\n"),
        "-1\nInvalid Command, you can only choose to login or register"
    );
    assert_eq!(h.request(alice, "4\n"), "0\nalice ");
    assert_eq!(h.request(alice, "2\nbob\nagain"), "-1\ninvalid recipient");
    let new_bob = h.user(3, "bob");
    let relay = h.bare_relay(4, "bob");
    assert!(h.take(relay).is_empty());
    assert_eq!(h.request(alice, "2\nbob\nhello new bob"), "0\nSent to recipient");
    assert_eq!(h.take(relay), vec!["0\nalice:hello new bob"]);
    assert_eq!(h.request(new_bob, "4\n"), "0\nalice bob ");
}

#[test]
fn relay_handshakes_that_break_the_binding_rules_are_refused() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    // No session.
    // A refused bare handshake is simply closed (the original client would print a failure
    // frame as a chat message).
    let r = h.bare_relay(10, "nobody");
    assert!(h.take(r).is_empty());
    assert!(h.closed.contains(&r));
    let bob = h.user(2, "bob");
    // From another address.
    let r = h.open(11, Channel::Relay, 99);
    h.send(r, "bob");
    assert!(h.take(r).is_empty());
    assert!(h.closed.contains(&r));
    // Good one, then a second one for the same session.
    let good = h.bare_relay(12, "bob");
    assert!(h.take(good).is_empty());
    let second = h.bare_relay(13, "bob");
    assert!(h.take(second).is_empty());
    assert!(h.closed.contains(&second));
    // A wrong ticket and a reused ticket.
    let ticket = h.request(alice, "6").strip_prefix("0\n").unwrap().to_owned();
    let r = h.open(14, Channel::Relay, 1);
    h.send(r, "alice\nnot-a-ticket");
    assert_eq!(h.take(r), vec!["-1\nRelay refused: unknown or already used ticket"]);
    let r = h.open(15, Channel::Relay, 1);
    h.send(r, &format!("alice\n{ticket}"));
    assert!(h.take(r).is_empty());
    assert!(!h.closed.contains(&r));
    h.peer_close(r);
    let r = h.open(16, Channel::Relay, 1);
    h.send(r, &format!("alice\n{ticket}"));
    assert_eq!(h.take(r), vec!["-1\nRelay refused: unknown or already used ticket"]);
    // Someone else's ticket.
    let ticket = h.request(bob, "6").strip_prefix("0\n").unwrap().to_owned();
    let r = h.open(17, Channel::Relay, 1);
    h.send(r, &format!("alice\n{ticket}"));
    assert_eq!(h.take(r), vec!["-1\nRelay refused: the ticket belongs to another session"]);
    // Refused relays never receive messages.
    assert_eq!(h.request(bob, "2\nalice\nhi"), "0\nSent to recipient");
    for conn in 10..=17 {
        assert!(h.take(ConnId(conn)).iter().all(|f| !f.contains("hi")));
    }
}

#[test]
fn bare_handshake_must_follow_login_closely_and_the_default_refuses_it() {
    let mut h = harness();
    h.user(1, "bob");
    h.advance(10_001);
    let r = h.bare_relay(2, "bob");
    assert!(h.take(r).is_empty(), "a refused bare handshake is simply closed");
    assert!(h.closed.contains(&r));
    let mut h = Harness::new(Config::default());
    let bob = h.user(1, "bob");
    let r = h.bare_relay(2, "bob");
    assert!(h.take(r).is_empty(), "a refused bare handshake is simply closed");
    assert!(h.closed.contains(&r));
    let r = h.ticket_relay(3, bob, "bob");
    assert!(h.take(r).is_empty());
    assert!(!h.closed.contains(&r));
}

#[test]
fn acknowledged_relay_keeps_messages_until_acked() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    let bob = h.user(2, "bob");
    let bob_id = h.server().session_of(bob).unwrap();
    let relay = h.ticket_relay(3, bob, "bob");
    h.request(alice, "2\nbob\none");
    h.request(alice, "2\nbob\ntwo");
    let pushes = h.take(relay);
    assert_eq!(pushes.len(), 2);
    let first_id: u64 = pushes[0].split('\n').nth(1).unwrap().parse().unwrap();
    assert_eq!(pushes[0], format!("7\n{first_id}\nalice\none"));
    // Written is not delivered for an acknowledging relay.
    assert_eq!(h.server().queued_ids(bob_id).len(), 2);
    h.send(relay, &format!("7\n{first_id}"));
    assert_eq!(h.server().queued_ids(bob_id).len(), 1);
    h.send(relay, "7\n999999");
    assert_eq!(h.take(relay), vec!["-1\nNo message 999999 was pushed on this relay"]);
    // The relay drops: the unacknowledged message comes again on the next one, and only it.
    h.peer_close(relay);
    let relay2 = h.ticket_relay(4, bob, "bob");
    let again = h.take(relay2);
    assert_eq!(again.len(), 1);
    assert!(again[0].ends_with("\nalice\ntwo"));
}

#[test]
fn replies_wait_for_durability() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    h.user(2, "bob");
    h.auto_durable = false;
    h.send(alice, "2\nbob\nhi");
    assert!(h.take(alice).is_empty(), "acknowledged before durable");
    assert!(h.server().awaiting_reply(alice));
    // A read-only request behind it keeps its place in line.
    h.send(alice, "4\n");
    assert!(h.take(alice).is_empty());
    h.make_durable();
    assert_eq!(h.take(alice), vec!["0\nSent to recipient", "0\nalice bob "]);
    assert!(!h.server().awaiting_reply(alice));
}

#[test]
fn pipelined_requests_after_a_login_are_answered_in_order() {
    let mut h = harness();
    h.user(1, "bob");
    let c = h.open(2, Channel::Command, 1);
    let mut bytes = Vec::new();
    for body in ["1\nbob\npw", "4\n", "2\nbob\nself", "-1\n"] {
        crate::wire::encode(body.as_bytes(), &mut bytes);
    }
    h.raw(c, &bytes);
    assert_eq!(
        h.take(c),
        vec!["0\nSuccessful Login", "0\nbob ", "0\nSent to recipient", "0\nLogging out"]
    );
}

#[test]
fn bad_frames() {
    let mut h = harness();
    let other = h.user(9, "other");
    let c = h.open(1, Channel::Command, 1);
    h.raw(c, b"12\x0045678 x");
    assert!(h.take(c)[0].starts_with("-1\nbad frame header"));
    assert!(h.closed.contains(&c));
    let c = h.open(2, Channel::Command, 1);
    h.raw(c, b"9999999999");
    assert_eq!(
        h.take(c),
        vec!["-1\nframe of 9999999999 bytes is larger than the limit of 8192 bytes"]
    );
    assert!(h.closed.contains(&c));
    let c = h.open(3, Channel::Command, 1);
    let mut frame = Vec::new();
    crate::wire::encode(b"1\n\xff\npw", &mut frame);
    h.raw(c, &frame);
    assert_eq!(h.take(c), vec!["-1\nInvalid request: the message is not valid UTF-8"]);
    assert!(!h.closed.contains(&c));
    assert_eq!(h.request(other, "4\n"), "0\nother ");
}

#[test]
fn frame_limit_grows_after_login() {
    let mut h = harness();
    let c = h.user(1, "bob");
    let text = "x".repeat(60_000);
    assert_eq!(h.request(c, &format!("2\nbob\n{text}")), "0\nSent to recipient");
    let d = h.open(2, Channel::Command, 1);
    h.send(d, &format!("2\nbob\n{text}"));
    assert!(h.take(d)[0].contains("larger than the limit of 8192 bytes"));
}

#[test]
fn deadlines_close_silent_connections() {
    let mut h = harness();
    let idle = h.open(1, Channel::Command, 1);
    let partial = h.user(2, "bob");
    h.raw(partial, b"20        2\nbo");
    assert_eq!(h.server().poll_timeout(), Some(h.now_ms + 30_000));
    h.advance(30_000);
    assert_eq!(h.take(partial), vec!["-1\nTimed out waiting for the rest of a frame (30 s)"]);
    assert!(!h.closed.contains(&idle));
    h.advance(30_000);
    assert_eq!(
        h.take(idle),
        vec!["-1\nLogin timed out: log in or register within 60 s of connecting"]
    );
    assert!(h.closed.contains(&idle));
}

#[test]
fn full_queue_refuses_with_a_clear_reply() {
    let mut h = Harness::new(Config { queue_len_max: 2, ..Config::default() });
    let alice = h.user(1, "alice");
    h.user(2, "bob");
    h.request(alice, "2\nbob\n1");
    h.request(alice, "2\nbob\n2");
    assert_eq!(
        h.request(alice, "2\nbob\n3"),
        "-1\nbob's mailbox is full (2 messages waiting); try again later"
    );
}

#[test]
fn failed_logins_are_throttled() {
    let mut h = Harness::new(Config { login_failures_max: 2, ..Config::default() });
    h.user(1, "bob");
    let c = h.open(2, Channel::Command, 1);
    for _ in 0..2 {
        assert!(h.request(c, "1\nbob\nwrong").starts_with("-1\nInvalid Login"));
    }
    assert_eq!(h.request(c, "1\nbob\npw"), "-1\nToo many failed attempts; try again in 1 s");
    h.advance(1_000);
    assert_eq!(h.request(c, "1\nbob\npw"), "0\nSuccessful Login");
}

#[test]
fn connection_limits() {
    let mut h = Harness::new(Config { connections_per_peer_max: 2, ..Config::default() });
    h.open(1, Channel::Command, 5);
    h.open(2, Channel::Relay, 5);
    let third = h.open(3, Channel::Command, 5);
    assert!(h.take(third)[0].starts_with("-1\nToo many connections from your address"));
    assert!(h.closed.contains(&third));
    let other = h.open(4, Channel::Command, 6);
    assert!(!h.closed.contains(&other));
}

#[test]
fn recovery_and_snapshot_rebuild_the_same_state() {
    let mut h = harness();
    let alice = h.user(1, "alice");
    let bob = h.user(2, "bob");
    h.user(3, "carol");
    h.request(bob, "-1\n");
    for i in 0..5 {
        h.request(alice, &format!("2\nbob\nm{i}"));
    }
    h.request(alice, "2\ncarol\nhey");
    let carol = h.open(4, Channel::Command, 1);
    h.request(carol, "1\ncarol\npw");
    h.request(carol, "5\ncarol\npw");
    let records: Vec<Record> = h.records.iter().map(|(_, r)| r.clone()).collect();
    let last = h.server().last_lsn();
    let rng = || rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let recovered = Server::recover(Config::default(), rng(), records, last).unwrap();
    let from_snapshot =
        Server::recover(Config::default(), rng(), h.server().snapshot(), last).unwrap();
    for server in [&recovered, &from_snapshot] {
        assert_eq!(server.account_names(), vec!["alice", "bob"]);
        let bob_id = server.account_id("bob").unwrap();
        assert_eq!(server.queued_ids(bob_id), h.server().queued_ids(bob_id));
        assert_eq!(server.queued_ids(bob_id).len(), 5);
        assert_eq!(server.last_lsn(), last);
    }
    // Ids keep growing after recovery.
    let mut h2 = Harness::with_server(from_snapshot);
    let a = h2.user(10, "alice");
    h2.request(a, "2\nbob\nlater");
    let bob_id = h2.server().account_id("bob").unwrap();
    let ids = h2.server().queued_ids(bob_id);
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(ids.last().unwrap().0 > last.0);
    let _ = MsgId(0);
}

#[test]
fn replay_of_a_contradictory_log_is_an_error() {
    let records = vec![Record::Message {
        id: MsgId(1),
        from: "x".into(),
        to: super::AccountId(42),
        text: "t".into(),
    }];
    let rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let error = Server::recover(Config::default(), rng, records, super::Lsn(1)).unwrap_err();
    assert_eq!(error.index, 0);
}
