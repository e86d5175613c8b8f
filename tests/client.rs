//! The client library against the real server over loopback TCP.

use std::time::{Duration, Instant};

use chatroom::client::{Client, ClientError, Push, Relay, RelayAuth};
use chatroom::net::{ServerConfig, ServerHandle};

const TIMEOUT: Duration = Duration::from_secs(10);

fn start() -> ServerHandle {
    // `a_bare_relay_gets_pushes_without_ids` speaks the original client's handshake.
    let mut config = ServerConfig::ephemeral();
    config.core.bare_relay_allowed = true;
    ServerHandle::start(config).expect("server starts")
}

/// A registered, logged-in client.
fn user(server: &ServerHandle, name: &str) -> Client {
    let mut client = Client::connect(server.command_addr()).unwrap();
    client.set_timeout(Some(TIMEOUT)).unwrap();
    let reply = client.register(name, "pw").unwrap();
    assert!(reply.ok, "{reply:?}");
    client
}

fn relay(server: &ServerHandle, client: &mut Client, name: &str) -> Relay {
    let relay = client.open_relay(server.relay_addr(), name).unwrap();
    relay.set_timeout(Some(TIMEOUT)).unwrap();
    relay
}

/// Waits (bounded) until `name`'s queue has `len` messages: acknowledgements are asynchronous.
fn wait_queue_len(server: &ServerHandle, name: &str, len: usize) {
    let deadline = Instant::now() + TIMEOUT;
    while server.queue_len(name) != Some(len) {
        assert!(
            Instant::now() < deadline,
            "queue of {name} stayed at {:?}",
            server.queue_len(name)
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn texts(relay: &mut Relay, count: usize) -> Vec<String> {
    (0..count).map(|_| relay.recv().unwrap().text).collect()
}

#[test]
fn ticketed_relays_receive_in_order_and_acknowledge() {
    let server = start();
    let mut amy = user(&server, "amy");
    let mut bob = user(&server, "bob");
    let mut bob_relay = relay(&server, &mut bob, "bob");
    for text in ["one", "two\nlines", "three: colon"] {
        assert!(amy.send("bob", text).unwrap().ok);
    }
    let first = bob_relay.recv().unwrap();
    assert!(
        matches!(first, Push { id: Some(_), ref sender, ref text } if sender == "amy" && text == "one")
    );
    assert_eq!(texts(&mut bob_relay, 2), ["two\nlines", "three: colon"]);
    bob_relay.flush_acks().unwrap();
    wait_queue_len(&server, "bob", 0);
    server.shutdown();
}

#[test]
fn a_push_never_acknowledged_comes_again_on_the_next_relay() {
    let server = start();
    let mut amy = user(&server, "amy");
    let mut bob = user(&server, "bob");
    let mut bob_relay = relay(&server, &mut bob, "bob");
    let replies = amy
        .pipeline(&[
            chatroom::client::Request::Send { to: "bob".into(), text: "a".into() },
            chatroom::client::Request::Send { to: "bob".into(), text: "b".into() },
        ])
        .unwrap();
    assert!(replies.iter().all(|r| r.ok), "{replies:?}");
    assert_eq!(bob_relay.recv().unwrap().text, "a");
    // The relay dies before its acknowledgement is written.
    bob_relay.closer().unwrap().close();
    drop(bob_relay);
    assert!(bob.login("bob", "pw").unwrap().ok);
    let mut again = relay(&server, &mut bob, "bob");
    assert_eq!(texts(&mut again, 2), ["a", "b"]);
    again.flush_acks().unwrap();
    wait_queue_len(&server, "bob", 0);
    server.shutdown();
}

#[test]
fn a_bare_relay_gets_pushes_without_ids() {
    let server = start();
    let mut amy = user(&server, "amy");
    let _bob = user(&server, "bob");
    let mut bob_relay = Relay::open(server.relay_addr(), "bob", RelayAuth::Bare).unwrap();
    bob_relay.set_timeout(Some(TIMEOUT)).unwrap();
    assert!(amy.send("bob", "hi").unwrap().ok);
    let push = bob_relay.recv().unwrap();
    assert_eq!(push, Push { id: None, sender: "amy".into(), text: "hi".into() });
    server.shutdown();
}

#[test]
fn a_login_elsewhere_ends_the_old_relay_with_a_notice() {
    let server = start();
    let mut bob = user(&server, "bob");
    let mut old_relay = relay(&server, &mut bob, "bob");
    // The handshake travels on its own socket; a takeover before it lands voids the ticket.
    wait_until(|| server.has_relay("bob"));
    let mut elsewhere = Client::connect(server.command_addr()).unwrap();
    assert!(elsewhere.login("bob", "pw").unwrap().ok);
    match old_relay.recv() {
        Err(ClientError::RelayEnded(text)) => assert!(text.contains("elsewhere"), "{text}"),
        other => panic!("expected the relay ended, got {other:?}"),
    }
    server.shutdown();
}

#[test]
fn a_ticket_needs_a_login_and_is_single_use() {
    let server = start();
    let mut anon = Client::connect(server.command_addr()).unwrap();
    assert!(matches!(anon.ticket(), Err(ClientError::Refused(_))));
    let mut bob = user(&server, "bob");
    let ticket = bob.ticket().unwrap();
    let first = Relay::open(server.relay_addr(), "bob", RelayAuth::Ticket(ticket.clone())).unwrap();
    wait_until(|| server.has_relay("bob"));
    drop(first);
    // With no relay bound (a second relay would be refused for that), only the ticket's reuse
    // can refuse the next handshake.
    wait_until(|| !server.has_relay("bob"));
    let mut second = Relay::open(server.relay_addr(), "bob", RelayAuth::Ticket(ticket)).unwrap();
    second.set_timeout(Some(TIMEOUT)).unwrap();
    match second.recv() {
        Err(ClientError::RelayEnded(text)) => {
            assert_eq!(text, "Relay refused: unknown or already used ticket")
        }
        other => panic!("expected the reused ticket refused, got {other:?}"),
    }
    // The control: a fresh ticket binds in the same situation and receives.
    let fresh = bob.ticket().unwrap();
    let mut third = Relay::open(server.relay_addr(), "bob", RelayAuth::Ticket(fresh)).unwrap();
    third.set_timeout(Some(TIMEOUT)).unwrap();
    wait_until(|| server.has_relay("bob"));
    let mut amy = user(&server, "amy");
    assert!(amy.send("bob", "after the refusal").unwrap().ok);
    assert_eq!(third.recv().unwrap().text, "after the refusal");
    server.shutdown();
}

fn wait_until(condition: impl Fn() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !condition() {
        assert!(Instant::now() < deadline, "condition not reached in {TIMEOUT:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
