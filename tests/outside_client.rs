//! The `chatroom client` library against a server whose `--frame-len-max` allows large
//! messages (up to 8 MiB): a push the server delivers must be one the client can read. The
//! client read at most 1 MiB per frame, so a larger push ended its relay with a frame error,
//! unacknowledged, and came back first on every reconnect: nothing after it ever reached the
//! user.

mod support;

use std::time::Duration;

use chatroom::client::{Client, Relay, RelayAuth};

const TIMEOUT: Duration = Duration::from_secs(30);

fn logged_in(server: &chatroom::net::ServerHandle, name: &str) -> Client {
    let mut client = Client::connect(server.command_addr()).unwrap();
    client.set_timeout(Some(TIMEOUT)).unwrap();
    assert!(client.register(name, "pw").unwrap().ok, "register {name}");
    client
}

#[test]
fn a_push_as_large_as_the_servers_frame_len_max_allows_reaches_the_client() {
    let text_len = 3 << 20;
    let server = support::start_with(|c| {
        // What `chatroom server --frame-len-max` sets: the limit, and room to buffer a request.
        c.core.frame_len_max = text_len + 1024;
        c.core.inbound_buffered_len_max = c.core.frame_len_max + chatroom::wire::HEADER_LEN;
    });
    let mut bob = logged_in(&server, "bob");
    let ticket = bob.ticket().unwrap();
    let mut relay = Relay::open(server.relay_addr(), "bob", RelayAuth::Ticket(ticket)).unwrap();
    relay.set_timeout(Some(TIMEOUT)).unwrap();
    support::wait_until("bob's relay is bound", || server.has_relay("bob"));
    let mut alice = logged_in(&server, "alice");
    let text = "x".repeat(text_len);
    assert!(alice.send("bob", &text).unwrap().ok, "the server takes the message");
    let push = relay.recv().expect("the client reads the push");
    assert_eq!((push.sender.as_str(), push.text.len()), ("alice", text_len));
    assert!(push.text == text);
    server.shutdown();
}
