//! Pipelining over real TCP: a client may write many requests without waiting, and gets every
//! reply, in order, with nothing dropped and nothing closed (PROTOCOL.md, "Pipelining").

mod support;

use std::io::{Read, Write};
use std::thread;

use chatroom::wire::{encode, Decoder};
use support::{ticket_relay, user, AckedPush, Conn};

const SENDS: usize = 10_000;

/// Reads `count` frames from `stream` (any read size), calling `each` with every body.
fn read_frames(stream: &mut impl Read, count: usize, mut each: impl FnMut(String)) {
    let (mut decoder, mut buf, mut seen) = (Decoder::new(1 << 20), vec![0u8; 64 * 1024], 0);
    while seen < count {
        let n = stream.read(&mut buf).expect("read before the timeout");
        assert!(n > 0, "the connection ended after {seen} of {count} frames");
        decoder.feed(&buf[..n]);
        while let Some(body) = decoder.decode().expect("well-formed frames") {
            each(String::from_utf8(body).expect("UTF-8"));
            seen += 1;
        }
    }
}

#[test]
fn ten_thousand_sends_in_one_write_get_every_reply_and_every_message_once_in_order() {
    let server = support::start();
    let mut alice = user(&server, "alice");
    let mut relay: Conn = ticket_relay(&server, &mut alice, "alice");
    let bob = user(&server, "bob");

    let mut burst = Vec::new();
    for i in 0..SENDS {
        encode(format!("2\nalice\nm{i}").as_bytes(), &mut burst);
    }
    let mut writer = bob.stream.try_clone().expect("clone");
    // One write of every request; the replies are read meanwhile, as a pipelining client must.
    let written = thread::spawn(move || writer.write_all(&burst).expect("the burst is written"));

    let receiver = thread::spawn(move || {
        let mut pushes = Vec::new();
        let mut ack_stream = relay.stream.try_clone().expect("clone");
        read_frames(&mut relay.stream, SENDS, |body| {
            let push = AckedPush::parse(&body);
            let mut ack = Vec::new();
            encode(format!("7\n{}", push.id).as_bytes(), &mut ack);
            ack_stream.write_all(&ack).expect("ack");
            pushes.push(push);
        });
        pushes
    });

    let mut bob_stream = bob.stream;
    let mut replies = Vec::new();
    read_frames(&mut bob_stream, SENDS, |body| replies.push(body));
    written.join().expect("writer");
    assert_eq!(replies.len(), SENDS);
    assert!(replies.iter().all(|r| r == "0\nSent to recipient"), "every send is acknowledged");

    let pushes = receiver.join().expect("receiver");
    let texts: Vec<String> = pushes.iter().map(|p| p.text.clone()).collect();
    let expected: Vec<String> = (0..SENDS).map(|i| format!("m{i}")).collect();
    assert_eq!(texts, expected, "exactly the acknowledged messages, once each, in order");
    assert!(pushes.iter().all(|p| p.from == "bob"));
    server.shutdown();
}
