//! End-to-end tests over real TCP for the commands and rules of PROTOCOL.md.

mod support;

use support::*;

#[test]
fn every_command_with_the_original_texts() {
    let server = start_with(|c| c.demo_accounts = true);
    let mut c = Conn::connect(server.command_addr());
    assert!(c.request("0\n").starts_with("0\nThis is a chat room app."));
    assert_eq!(c.request("4\n"), "-1\nInvalid Command, you can only choose to login or register");
    assert_eq!(c.request("1\ntester\nabc123"), "0\nSuccessful Login");
    assert_eq!(c.request("4\n"), "0\ntester abc ");
    assert_eq!(c.request("3\nABC\nx"), "-1\nThis username has been used");
    assert_eq!(c.request("2\nnobody\nhi"), "-1\ninvalid recipient");
    assert_eq!(c.request("2\nabc\nhi"), "0\nSent to recipient");
    assert_eq!(c.request("5\nabc\nabc"), "-1\nInvalid credential, deletion failed");
    assert_eq!(c.request("-1\n"), "0\nLogging out");
    assert_eq!(
        c.request("1\ntester\nwrong"),
        "-1\nInvalid Login, credential doesn't exist or password invalid"
    );
    assert_eq!(c.request("1\nabc\nabc"), "0\nSuccessful Login");
    let mut relay = bare_relay(&server, "abc");
    assert_eq!(relay.recv(), "0\ntester:hi");
    assert_eq!(c.request("5\nabc\nabc"), "0\naccount deleted");
    // The original client prints every frame as a message: its relay gets a plain close.
    relay.assert_closed();
    assert_eq!(c.request("3\nnew\npw"), "0\nSuccessful Created and logged in");
    assert_eq!(c.request("4\n*e*"), "0\ntester new ");
    server.shutdown();
}

#[test]
fn online_push_and_offline_delivery_at_login() {
    let server = start();
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let mut relay = ticket_relay(&server, &mut bob, "bob");
    assert_eq!(alice.request("2\nbob\nonline"), "0\nSent to recipient");
    let push = relay.recv();
    let id = push.split('\n').nth(1).unwrap().to_owned();
    assert_eq!(push, format!("7\n{id}\nalice\nonline"));
    relay.send(&format!("7\n{id}"));
    wait_queue_len(&server, "bob", 0);
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    relay.assert_closed();
    for i in 0..50 {
        assert_eq!(alice.request(&format!("2\nbob\noffline {i}")), "0\nSent to recipient");
    }
    assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
    let mut relay = bare_relay(&server, "bob");
    for i in 0..50 {
        assert_eq!(relay.recv(), format!("0\nalice:offline {i}"));
    }
    assert_nothing_before_marker(&mut relay, &mut alice, "alice", "bob");
    server.shutdown();
}

#[test]
fn takeover_keeps_every_queued_message() {
    let server = start();
    let (_alice, mut bob1, mut relay1) = twenty_queued_five_acked(&server);
    wait_queue_len(&server, "bob", 15);
    let mut bob2 = user(&server, "bob");
    assert_eq!(
        bob1.request("4\n"),
        "-1\nInvalid Command, you can only choose to login or register"
    );
    let mut relay2 = ticket_relay(&server, &mut bob2, "bob");
    let mut texts = Vec::new();
    for _ in 5..20 {
        let push = relay2.recv();
        texts.push(push.rsplit('\n').next().unwrap().to_owned());
    }
    // Exactly the unacknowledged tail comes again, in order.
    assert_eq!(texts, (5..20).map(|i| format!("m{i}")).collect::<Vec<_>>());
    // The old relay got the notice and was closed.
    let mut rest = Vec::new();
    while let Some(frame) = relay1.try_recv() {
        rest.push(frame);
    }
    assert_eq!(
        rest.last().map(String::as_str),
        Some("-1\nLogged in elsewhere; this session has ended")
    );
    server.shutdown();
}

#[test]
fn deleted_queue_is_gone_and_a_reused_name_receives_none_of_it() {
    let server = start();
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    for i in 0..5 {
        assert_eq!(alice.request(&format!("2\nbob\nfor old bob {i}")), "0\nSent to recipient");
    }
    assert_eq!(bob.request("1\nbob\npw"), "0\nSuccessful Login");
    assert_eq!(bob.request("5\nbob\npw"), "0\naccount deleted");
    let mut new_bob = Conn::connect(server.command_addr());
    assert_eq!(new_bob.request("3\nbob\nother"), "0\nSuccessful Created and logged in");
    let mut relay = bare_relay(&server, "bob");
    // The old queue would be pushed at the bind, before anything sent after it.
    assert_nothing_before_marker(&mut relay, &mut alice, "alice", "bob");
    server.shutdown();
}

#[test]
fn refused_relay_handshakes_never_receive_a_message() {
    let server = start();
    let mut alice = user(&server, "alice");
    let mut refused = Vec::new();
    // No live session.
    // A refused bare handshake is simply closed (PROTOCOL.md).
    let mut r = bare_relay(&server, "bob");
    r.assert_closed();
    refused.push(r);
    let mut bob = user(&server, "bob");
    // A wrong ticket.
    let mut r = Conn::connect(server.relay_addr());
    r.send("bob\n0123456789abcdef0123456789abcdef");
    assert_eq!(r.recv(), "-1\nRelay refused: unknown or already used ticket");
    r.assert_closed();
    // A good ticket, used twice.
    let ticket = bob.request("6").strip_prefix("0\n").unwrap().to_owned();
    let mut good = Conn::connect(server.relay_addr());
    good.send(&format!("bob\n{ticket}"));
    wait_relay(&server, "bob");
    // A bare handshake for a session that uses tickets.
    let mut r = bare_relay(&server, "bob");
    r.assert_closed();
    // The session already has its relay.
    let second = bob.request("6").strip_prefix("0\n").unwrap().to_owned();
    let mut r = Conn::connect(server.relay_addr());
    r.send(&format!("bob\n{second}"));
    assert_eq!(r.recv(), "-1\nRelay refused: this session already has a relay");
    r.assert_closed();
    // The ticket was spent by its first use.
    let mut r = Conn::connect(server.relay_addr());
    r.send(&format!("bob\n{ticket}"));
    assert_eq!(r.recv(), "-1\nRelay refused: unknown or already used ticket");
    r.assert_closed();
    drop(good);
    // None of them ever sees the message, which goes to the session's relay.
    wait_no_relay(&server, "bob");
    let mut relay = ticket_relay(&server, &mut bob, "bob");
    assert_eq!(alice.request("2\nbob\nsecret"), "0\nSent to recipient");
    assert!(relay.recv().ends_with("\nalice\nsecret"));
    refused.push(r);
    for mut r in refused {
        assert!(r.try_recv().is_none());
    }
    server.shutdown();
}

#[test]
fn a_header_split_byte_by_byte_works() {
    let server = start();
    let mut c = Conn::connect(server.command_addr());
    let mut frame = Vec::new();
    chatroom::wire::encode(b"3\nslow\npw", &mut frame);
    for byte in frame {
        c.raw(&[byte]);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    assert_eq!(c.recv(), "0\nSuccessful Created and logged in");
    server.shutdown();
}

#[test]
fn bad_input_gets_the_failure_reply_while_others_keep_chatting() {
    let server = start();
    // A bad header: failure, then closed.
    let mut c = Conn::connect(server.command_addr());
    c.raw(b"12ab      xxxxxxxxxxxx");
    assert!(c.recv().starts_with("-1\nbad frame header \"12ab      \""));
    c.assert_closed();
    assert_others_still_chat(&server);
    // A declared length of 9999999999: refused from the header alone.
    let mut c = Conn::connect(server.command_addr());
    c.raw(b"9999999999");
    assert_eq!(c.recv(), "-1\nframe of 9999999999 bytes is larger than the limit of 8192 bytes");
    c.assert_closed();
    assert_others_still_chat(&server);
    // Invalid UTF-8, an unknown code, missing fields: failure, connection stays open.
    let mut c = Conn::connect(server.command_addr());
    c.send_bytes(b"1\n\xc3\x28\npw");
    assert_eq!(c.recv(), "-1\nInvalid request: the message is not valid UTF-8");
    assert_eq!(c.request("42\nx"), "-1\ninvalid command:42");
    assert_eq!(
        c.request("1\nonly-a-name"),
        "-1\nInvalid request: command 1 needs a password field"
    );
    assert_eq!(c.request("2"), "-1\nInvalid request: command 2 needs a recipient field");
    assert_eq!(c.request("3\nok\npw"), "0\nSuccessful Created and logged in");
    assert_others_still_chat(&server);
    server.shutdown();
}

#[test]
fn the_shipped_defaults_refuse_the_bare_handshake() {
    let server = start_strict_with(|_| {});
    let mut bob = user(&server, "bob");
    // Refused by a plain close: the original client would print a failure frame as a message.
    let mut r = bare_relay(&server, "bob");
    r.assert_closed();
    let mut relay = ticket_relay(&server, &mut bob, "bob");
    assert_eq!(bob.request("2\nbob\nself"), "0\nSent to recipient");
    assert!(relay.recv().ends_with("\nbob\nself"));
    server.shutdown();
}

#[test]
fn login_deadline_closes_a_silent_connection() {
    let server = start_with(|c| c.core.login_deadline_ms = 300);
    let mut c = Conn::connect(server.command_addr());
    assert_eq!(c.recv(), "-1\nLogin timed out: log in or register within 300 ms of connecting");
    c.assert_closed();
    server.shutdown();
}

/// Chatting needs no password job, so it must not wait for any: with every password job held
/// (none can finish, however fast or loaded the machine), fifty messages go through while all
/// eight registrations of a crowd are still pending; released, they all succeed.
#[test]
fn logins_do_not_stall_chatting_clients() {
    const CROWD: usize = 8;
    let server = start();
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let mut relay = bare_relay(&server, "bob");
    let addr = server.command_addr();
    server.hold_password_jobs(true);
    let (finished, finishes) = std::sync::mpsc::channel();
    let crowd: Vec<_> = (0..CROWD)
        .map(|i| {
            let finished = finished.clone();
            std::thread::spawn(move || {
                let mut c = Conn::connect(addr);
                let reply = c.request(&format!("3\ncrowd{i}\npw"));
                finished.send(i).expect("the test waits");
                reply
            })
        })
        .collect();
    wait_until("the crowd's jobs wait", || server.password_jobs_waiting() == CROWD);
    for i in 0..50 {
        assert_eq!(alice.request(&format!("2\nbob\n{i}")), "0\nSent to recipient");
        assert_eq!(relay.recv(), format!("0\nalice:{i}"));
    }
    assert_eq!(finishes.try_recv().ok(), None, "a registration finished while jobs were held");
    assert_eq!(server.password_jobs_waiting(), CROWD);
    server.hold_password_jobs(false);
    for t in crowd {
        assert_eq!(t.join().unwrap(), "0\nSuccessful Created and logged in");
    }
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    server.shutdown();
}

#[test]
fn an_ack_racing_a_takeover_loses_nothing() {
    // Without waiting for acks to land: whatever was unacknowledged when the takeover was
    // processed comes again, as a contiguous, ordered tail.
    let server = start();
    let (_alice, _bob1, _relay1) = twenty_queued_five_acked(&server);
    let mut bob2 = user(&server, "bob");
    let mut relay2 = ticket_relay(&server, &mut bob2, "bob");
    let first = relay2.recv();
    let first_i: usize = first.rsplit('\n').next().unwrap()[1..].parse().unwrap();
    assert!(first_i <= 5, "an unacknowledged message was lost: resumed at m{first_i}");
    for i in first_i + 1..20 {
        assert!(relay2.recv().ends_with(&format!("\nalice\nm{i}")));
    }
    server.shutdown();
}

/// Alice sends bob m0..m19; bob's ticketed relay receives and acknowledges the first five (the
/// acknowledgements may still be in flight). Returns alice, bob's command connection, his relay.
fn twenty_queued_five_acked(server: &chatroom::net::ServerHandle) -> (Conn, Conn, Conn) {
    let mut alice = user(server, "alice");
    let mut bob = user(server, "bob");
    let mut relay = ticket_relay(server, &mut bob, "bob");
    for i in 0..20 {
        assert_eq!(alice.request(&format!("2\nbob\nm{i}")), "0\nSent to recipient");
    }
    for _ in 0..5 {
        let push = relay.recv();
        relay.send(&format!("7\n{}", push.split('\n').nth(1).unwrap()));
    }
    (alice, bob, relay)
}
