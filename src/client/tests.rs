//! Client tests against a scripted peer on loopback (the real server is exercised by the
//! end-to-end tests under `tests/`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::*;
use crate::wire::{parse_request, reply, Decoder};

/// A one-connection peer running `script` on the accepted socket.
fn peer(script: impl FnOnce(TcpStream) + Send + 'static) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || script(listener.accept().unwrap().0));
    (addr, handle)
}

/// Reads `count` frame bodies from `stream`.
fn read_bodies(stream: &mut TcpStream, count: usize) -> Vec<String> {
    let mut decoder = Decoder::new(1 << 16);
    let mut bodies = Vec::new();
    let mut chunk = [0u8; 4096];
    while bodies.len() < count {
        while let Some(body) = decoder.decode().unwrap() {
            bodies.push(String::from_utf8(body).unwrap());
        }
        if bodies.len() < count {
            let n = stream.read(&mut chunk).unwrap();
            assert!(n > 0, "client closed early; got {bodies:?}");
            decoder.feed(&chunk[..n]);
        }
    }
    bodies
}

fn all_requests() -> Vec<Request> {
    vec![
        Request::Help,
        Request::Login { name: "tester".into(), password: "abc123".into() },
        Request::Send { to: "abc".into(), text: "two\nlines: and a colon".into() },
        Request::Send { to: "abc".into(), text: String::new() },
        Request::Register { name: "new".into(), password: "p w".into() },
        Request::List { pattern: String::new() },
        Request::List { pattern: "t*".into() },
        Request::Delete { name: "abc".into(), password: "abc".into() },
        Request::Logout,
        Request::Ticket,
    ]
}

#[test]
fn request_bodies_parse_back_to_the_same_request() {
    for request in all_requests() {
        let body = request_body(&request);
        assert_eq!(parse_request(body.as_bytes()), Ok(request), "{body:?}");
    }
    // The original client's packing, byte for byte.
    assert_eq!(request_body(&Request::Logout), "-1\n");
    assert_eq!(
        request_body(&Request::Login { name: "tester".into(), password: "abc123".into() }),
        "1\ntester\nabc123"
    );
}

#[test]
fn replies_and_pushes_parse() {
    assert_eq!(
        Reply::parse(b"0\nSent to recipient").unwrap(),
        Reply { ok: true, text: "Sent to recipient".into() }
    );
    assert!(!Reply::parse(b"-1\ninvalid recipient").unwrap().ok);
    assert_eq!(Reply::parse(b"0\na\nb").unwrap().text, "a\nb");
    assert!(matches!(Reply::parse(b"7\nx"), Err(ClientError::Malformed(_))));
    assert!(matches!(Reply::parse(b"\xff"), Err(ClientError::Malformed(_))));

    let push = |id, sender: &str, text: &str| Push { id, sender: sender.into(), text: text.into() };
    assert_eq!(parse_push(b"0\nbob:hi: there").unwrap(), push(None, "bob", "hi: there"));
    assert_eq!(parse_push(b"7\n12\nbob\nline\nline").unwrap(), push(Some(12), "bob", "line\nline"));
    assert_eq!(parse_push(b"7\n3\nbob\n").unwrap(), push(Some(3), "bob", ""));
    assert!(
        matches!(parse_push(b"-1\nLogged in elsewhere"), Err(ClientError::RelayEnded(t)) if t == "Logged in elsewhere")
    );
    for bad in [&b"0\nno colon"[..], b"7\nx\nbob\nhi", b"7\n1\nbob", b"0", b"5\nbob:hi"] {
        assert!(matches!(parse_push(bad), Err(ClientError::Malformed(_))), "{bad:?}");
    }
}

#[test]
fn replies_split_into_single_bytes_are_reassembled() {
    let (addr, peer) = peer(|mut stream| {
        assert_eq!(read_bodies(&mut stream, 1), ["4\nt*"]);
        for byte in reply::reply(true, "tester abc ") {
            stream.write_all(&[byte]).unwrap();
            stream.flush().unwrap();
        }
    });
    let mut client = Client::connect(addr).unwrap();
    assert_eq!(client.list("t*").unwrap(), Reply { ok: true, text: "tester abc ".into() });
    peer.join().unwrap();
}

#[test]
fn pipelined_requests_get_their_replies_in_order() {
    let (addr, peer) = peer(|mut stream| {
        let bodies = read_bodies(&mut stream, 3);
        assert_eq!(bodies, ["2\na\n1", "2\nb\n2", "6\n"]);
        let mut out = reply::reply(true, "Sent to recipient");
        out.extend(reply::reply(false, "invalid recipient"));
        out.extend(reply::reply(true, "ab12"));
        stream.write_all(&out).unwrap();
    });
    let mut client = Client::connect(addr).unwrap();
    let requests = [
        Request::Send { to: "a".into(), text: "1".into() },
        Request::Send { to: "b".into(), text: "2".into() },
        Request::Ticket,
    ];
    let replies = client.pipeline(&requests).unwrap();
    let oks: Vec<bool> = replies.iter().map(|r| r.ok).collect();
    assert_eq!(oks, [true, false, true]);
    assert_eq!(replies[2].text, "ab12");
    peer.join().unwrap();
}

#[test]
fn a_newline_in_a_field_is_refused_before_sending() {
    let (addr, peer) = peer(|mut stream| {
        // Nothing but the valid request arrives.
        assert_eq!(read_bodies(&mut stream, 1), ["0\n"]);
        stream.write_all(&reply::reply(true, "help")).unwrap();
    });
    let mut client = Client::connect(addr).unwrap();
    let error = client.login("bob\n", "pw").unwrap_err();
    assert!(matches!(error, ClientError::NewlineInField { field: "username" }));
    assert!(matches!(client.send("a\nb", "x"), Err(ClientError::NewlineInField { .. })));
    assert_eq!(client.help().unwrap().text, "help");
    peer.join().unwrap();
}

#[test]
fn silence_times_out_and_a_close_is_reported() {
    let (addr, peer) = peer(|mut stream| {
        read_bodies(&mut stream, 1);
        // Answer nothing until the client has timed out and asked again, then hang up.
        read_bodies(&mut stream, 1);
    });
    let mut client = Client::connect(addr).unwrap();
    client.set_timeout(Some(Duration::from_millis(50))).unwrap();
    assert!(matches!(client.help(), Err(ClientError::TimedOut)));
    assert!(matches!(client.help(), Err(ClientError::Closed)));
    peer.join().unwrap();
}

#[test]
fn ticketed_relay_acknowledges_each_push_once_after_it_was_returned() {
    let (addr, peer) = peer(|mut stream| {
        assert_eq!(read_bodies(&mut stream, 1), ["bob\nT1"]);
        let mut burst = reply::push_acked(1, "amy", "one");
        burst.extend(reply::push_acked(2, "amy", "two"));
        burst.extend(reply::push_acked(5, "cat", "three"));
        stream.write_all(&burst).unwrap();
        // The three acknowledgements arrive together, before the client waits for more.
        assert_eq!(read_bodies(&mut stream, 3), ["7\n1", "7\n2", "7\n5"]);
        stream.write_all(&reply::push_acked(6, "amy", "four")).unwrap();
        assert_eq!(read_bodies(&mut stream, 1), ["7\n6"]);
        stream.write_all(&reply::reply(false, "Logged in elsewhere")).unwrap();
    });
    let mut relay = Relay::open(addr, "bob", RelayAuth::Ticket("T1".into())).unwrap();
    let texts: Vec<String> = (0..4).map(|_| relay.recv().unwrap().text).collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    relay.flush_acks().unwrap();
    assert!(matches!(relay.recv(), Err(ClientError::RelayEnded(t)) if t == "Logged in elsewhere"));
    peer.join().unwrap();
}

/// A push the caller got from `recv` is acknowledged when the relay is dropped before asking
/// for more, or the server pushes it again on the next relay and the user sees it twice (the
/// outside tester's fourth pass: a `Drop` without its flush escaped every test).
#[test]
fn a_dropped_ticketed_relay_acknowledges_what_it_returned() {
    let (addr, peer) = peer(|mut stream| {
        assert_eq!(read_bodies(&mut stream, 1), ["bob\nT1"]);
        stream.write_all(&reply::push_acked(3, "amy", "one")).unwrap();
        assert_eq!(read_bodies(&mut stream, 1), ["7\n3"]);
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "unexpected bytes {rest:?}");
    });
    let mut relay = Relay::open(addr, "bob", RelayAuth::Ticket("T1".into())).unwrap();
    assert_eq!(relay.recv().unwrap().text, "one");
    drop(relay);
    peer.join().unwrap();
}

#[test]
fn bare_relay_sends_the_username_and_never_acknowledges() {
    let (addr, peer) = peer(|mut stream| {
        assert_eq!(read_bodies(&mut stream, 1), ["tester"]);
        stream.write_all(&reply::push_plain("abc", "hello")).unwrap();
        // The client sends nothing more: the next read sees its close.
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "unexpected bytes {rest:?}");
    });
    let mut relay = Relay::open(addr, "tester", RelayAuth::Bare).unwrap();
    let push = relay.recv().unwrap();
    assert_eq!(push, Push { id: None, sender: "abc".into(), text: "hello".into() });
    drop(relay);
    peer.join().unwrap();
}

#[test]
fn a_closer_unblocks_a_waiting_relay() {
    let (addr, peer) = peer(|mut stream| {
        read_bodies(&mut stream, 1);
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    });
    let mut relay = Relay::open(addr, "bob", RelayAuth::Bare).unwrap();
    let closer = relay.closer().unwrap();
    let waiter = thread::spawn(move || relay.recv());
    thread::sleep(Duration::from_millis(20));
    closer.close();
    assert!(waiter.join().unwrap().is_err());
    peer.join().unwrap();
}
