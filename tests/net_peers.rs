//! Peers the TCP adapter must survive, over real sockets on loopback: a relay that
//! acknowledges but stops reading, and a shutdown that meets clients in the middle of their
//! requests. Each test states a promise of PROTOCOL.md or the README; waits are bounded.

mod support;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;
use support::ScratchDir;

use support::{start_with, ticket_relay, user, AckedPush, TIMEOUT};

/// "A relay that acknowledges has a message removed only when acknowledged; unacknowledged
/// messages are pushed again on the next relay, in order": bob's relay takes pushes but stops
/// reading, the write timeout closes it, and his next relay gets every message from the
/// first, in order, whatever part of them the first relay had in its buffers. The stalled
/// relay's own frames are a prefix of the same sequence.
#[test]
fn an_acking_relay_that_stops_reading_loses_nothing_to_the_write_timeout() {
    let server = start_with(|config| config.write_timeout_ms = 300);
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let mut stalled = ticket_relay(&server, &mut bob, "bob");
    support::wait_relay(&server, "bob");
    let pad = "x".repeat(60_000);
    let count = 100;
    for i in 0..count {
        assert_eq!(alice.request(&format!("2\nbob\n{i:03}{pad}")), "0\nSent to recipient");
    }
    support::wait_no_relay(&server, "bob");
    assert_eq!(server.queue_len("bob"), Some(count), "nothing was acknowledged");
    let texts = |push: &AckedPush| (push.from.clone(), push.text[..3].parse::<usize>().unwrap());
    let mut prefix = Vec::new();
    while let Some(frame) = stalled.try_recv() {
        prefix.push(texts(&AckedPush::parse(&frame)).1);
    }
    assert!(prefix.len() < count, "the kernel cannot have taken 6 MB");
    assert_eq!(prefix, (0..prefix.len()).collect::<Vec<_>>(), "the stalled relay's frames");
    let mut relay = ticket_relay(&server, &mut bob, "bob");
    for i in 0..count {
        let push = AckedPush::parse(&relay.recv());
        assert_eq!(texts(&push), ("alice".to_owned(), i), "pushed again in order");
        relay.send(&format!("7\n{}", push.id));
    }
    support::wait_queue_len(&server, "bob", 0);
    support::assert_others_still_chat(&server);
    server.shutdown();
}

fn fresh_dir(name: &str) -> ScratchDir {
    support::fresh_dir("net-peers", name)
}

/// "A message accepted with `0\nSent to recipient` is never lost", also when the server is
/// shut down in the middle of things: alice sends to bob without pause, carol's relay has
/// stopped reading (its writer blocked, with a write timeout of a minute that shutdown must
/// not wait for), dave has sent half a frame, and erin pipelines requests without reading a
/// reply. Shutdown finishes; restarted on the same data directory, bob's relay gets every
/// message alice had an acceptance for, in order, each once.
#[test]
fn a_shutdown_amid_requests_finishes_and_keeps_every_accepted_message() {
    let dir = fresh_dir("shutdown");
    let config_dir = dir.path_buf();
    let server = start_with(move |config| {
        config.data_dir = Some(config_dir);
        config.write_timeout_ms = 60_000;
    });
    let mut alice = user(&server, "alice");
    drop(user(&server, "bob"));
    let mut carol = user(&server, "carol");
    let _carol_relay = ticket_relay(&server, &mut carol, "carol");
    support::wait_relay(&server, "carol");
    let pad = "x".repeat(60_000);
    for i in 0..100 {
        assert_eq!(alice.request(&format!("2\ncarol\n{i:03}{pad}")), "0\nSent to recipient");
    }
    let mut dave = user(&server, "dave");
    dave.raw(b"40        2\nalice\nhalf");
    let mut erin = user(&server, "erin");
    erin.stream.set_write_timeout(Some(TIMEOUT)).unwrap();
    let mut flood = Vec::new();
    for _ in 0..20_000 {
        chatroom::wire::encode(b"0", &mut flood);
    }
    let accepted = AtomicU64::new(0);
    let sent = std::thread::scope(|scope| {
        let sender = scope.spawn(|| {
            let mut sent = Vec::new();
            loop {
                let i = sent.len() as u64;
                match alice.try_request(&format!("2\nbob\nm{i}")) {
                    Some(reply) if reply == "0\nSent to recipient" => sent.push(i),
                    Some(reply) => panic!("send {i}: {reply}"),
                    None => return sent,
                }
                accepted.fetch_add(1, Ordering::Relaxed);
            }
        });
        // Ended with an error once the server hangs up on her.
        let flooder = scope.spawn(|| erin.stream.write_all(&flood).is_ok());
        support::wait_until("alice's sends are flowing", || accepted.load(Ordering::Relaxed) >= 20);
        let (done, finished) = mpsc::channel();
        std::thread::spawn(move || {
            server.shutdown();
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(60))
            .expect("shutdown finished while peers were mid-request");
        let _ = flooder.join();
        sender.join().expect("the sender")
    });
    assert!(sent.len() >= 20, "{} sends accepted", sent.len());
    let restarted_dir = dir.path_buf();
    let restarted = start_with(move |config| config.data_dir = Some(restarted_dir));
    let mut bob = user(&restarted, "bob");
    let mut relay = ticket_relay(&restarted, &mut bob, "bob");
    let mut alice = user(&restarted, "alice");
    assert_eq!(alice.request("2\nbob\nmarker"), "0\nSent to recipient");
    let mut got = Vec::new();
    loop {
        let push = AckedPush::parse(&relay.recv());
        relay.send(&format!("7\n{}", push.id));
        if push.text == "marker" {
            break;
        }
        got.push(push.text.strip_prefix('m').unwrap().parse::<u64>().unwrap());
    }
    // The send in flight at the shutdown may or may not have been kept.
    let in_flight = sent.last().map_or(0, |last| last + 1);
    let kept: Vec<u64> = got.iter().copied().filter(|&i| i != in_flight).collect();
    assert_eq!(kept, sent, "every accepted message, in order, once");
    restarted.shutdown();
}

/// The relay reader reads a handshake in whatever pieces it arrives (PROTOCOL.md: "bytes
/// arrive in arbitrary pieces"): bob's ticketed handshake comes a byte at a time, the
/// reader's reads each see one, and it binds. A second handshake on the bound relay is not an
/// acknowledgement: it gets a failure frame, the relay stays bound, and a push still comes.
#[test]
fn a_handshake_in_single_bytes_binds_and_a_second_one_is_refused() {
    let server = start_with(|_| {});
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let ticket = bob.request("6");
    let ticket = ticket.strip_prefix("0\n").expect("a ticket");
    let mut hello = Vec::new();
    chatroom::wire::encode(format!("bob\n{ticket}").as_bytes(), &mut hello);
    let mut relay = support::Conn::connect(server.relay_addr());
    for byte in &hello {
        relay.raw(std::slice::from_ref(byte));
        // Apart, so that they arrive apart (nothing here depends on how long this takes).
        std::thread::sleep(Duration::from_millis(2));
    }
    support::wait_relay(&server, "bob");
    assert_eq!(alice.request("2\nbob\nfirst"), "0\nSent to recipient");
    let push = AckedPush::parse(&relay.recv());
    assert_eq!((push.from.as_str(), push.text.as_str()), ("alice", "first"));
    relay.send(&format!("7\n{}", push.id));
    let again = bob.request("6");
    relay.send(&format!("bob\n{}", again.strip_prefix("0\n").expect("a ticket")));
    let refusal = relay.recv();
    assert!(refusal.starts_with("-1\n"), "a second handshake: {refusal:?}");
    assert!(server.has_relay("bob"));
    assert_eq!(alice.request("2\nbob\nsecond"), "0\nSent to recipient");
    let push = AckedPush::parse(&relay.recv());
    assert_eq!((push.from.as_str(), push.text.as_str()), ("alice", "second"));
    relay.send(&format!("7\n{}", push.id));
    support::wait_queue_len(&server, "bob", 0);
    server.shutdown();
}

/// PROTOCOL.md: pipelining is allowed, and the frame deadline is for a frame that does not
/// come. Alice streams sends of 20 kB to herself without waiting, in writes of 4 kB a few
/// milliseconds apart (a slow link), for several frame deadlines in all; each frame takes
/// far less than the deadline, but nearly every read ends inside one.
#[test]
fn a_client_streaming_large_frames_for_longer_than_the_frame_deadline_is_never_closed() {
    let server = start_with(|config| config.core.frame_deadline_ms = 2_000);
    let alice = user(&server, "alice");
    let count = 200;
    let mut stream = Vec::new();
    let text = "y".repeat(20_000);
    for i in 0..count {
        chatroom::wire::encode(format!("2\nalice\n{i:03}{text}").as_bytes(), &mut stream);
    }
    let mut writer = alice.stream.try_clone().unwrap();
    let mut reader = alice;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            for piece in stream.chunks(4_000) {
                if writer.write_all(piece).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(4));
            }
        });
        for i in 0..count {
            let reply = reader.try_recv();
            let reply = reply.unwrap_or_else(|| panic!("closed after {i} replies"));
            assert_eq!(reply, "0\nSent to recipient", "reply {i}");
        }
    });
    server.shutdown();
}
