//! PROTOCOL.md's "Delivery", "Sessions and accounts" and replies, tried from outside over
//! loopback with clients that race each other: a takeover while pushes are unacknowledged,
//! delete then re-register of the same name, register races on names differing only by case,
//! sends to oneself and to absent names, acknowledgements out of order, twice, or for ids never
//! pushed. Each test names the promise it checks.

mod support;

use support::*;

/// Reads `n` acknowledged pushes from `relay`.
fn pushes(relay: &mut Conn, n: usize) -> Vec<AckedPush> {
    (0..n).map(|_| AckedPush::parse(&relay.recv())).collect()
}

fn texts(pushes: &[AckedPush]) -> Vec<String> {
    pushes.iter().map(|p| p.text.clone()).collect()
}

/// "One live session per user: a new login takes over, and the older session is logged out
/// and its relay closed, without losing any message." The old connection's pipelined requests
/// after the takeover are answered as a logged-out session's, and unacknowledged pushes come
/// again, once each and in order, on the new session's relay.
#[test]
fn takeover_keeps_unacknowledged_pushes_and_logs_the_old_session_out() {
    let server = start();
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let mut old_relay = ticket_relay(&server, &mut bob, "bob");
    wait_relay(&server, "bob");
    for i in 0..4 {
        assert_eq!(alice.request(&format!("2\nbob\nm{i}")), "0\nSent to recipient");
    }
    let first = pushes(&mut old_relay, 4);
    assert_eq!(texts(&first), ["m0", "m1", "m2", "m3"]);
    old_relay.send(&format!("7\n{}", first[1].id)); // only m1 is acknowledged
    wait_queue_len(&server, "bob", 3);

    let mut taker = Conn::connect(server.command_addr());
    assert_eq!(taker.request("1\nBOB\npw"), "0\nSuccessful Login");
    assert_eq!(old_relay.recv(), "-1\nLogged in elsewhere; this session has ended");
    old_relay.assert_closed();
    // The old connection pipelines two requests; both get the logged-out reply, in order.
    bob.send("2\nalice\nfrom the old session");
    bob.send("4\n");
    let needs_login = "-1\nInvalid Command, you can only choose to login or register";
    assert_eq!(bob.recv(), needs_login);
    assert_eq!(bob.recv(), needs_login);

    let mut new_relay = ticket_relay(&server, &mut taker, "bob");
    let again = pushes(&mut new_relay, 3);
    assert_eq!(texts(&again), ["m0", "m2", "m3"]);
    for push in &again {
        new_relay.send(&format!("7\n{}", push.id));
    }
    wait_queue_len(&server, "bob", 0);
    assert_nothing_before_marker_acked(&mut new_relay, &mut alice);
}

/// Like `assert_nothing_before_marker`, for an acknowledging relay of bob's fed by alice.
fn assert_nothing_before_marker_acked(relay: &mut Conn, alice: &mut Conn) {
    assert_eq!(alice.request("2\nbob\nmarker"), "0\nSent to recipient");
    let push = AckedPush::parse(&relay.recv());
    assert_eq!((push.from.as_str(), push.text.as_str()), ("alice", "marker"));
}

/// "Deleting an account ... discards the messages queued for it, and makes the name free
/// again; a later account with the same name is a new account and never receives anything
/// addressed to the old one." Tried with unacknowledged pushes still on a live relay, and the
/// new account registered in another case.
#[test]
fn a_name_registered_after_delete_gets_nothing_of_the_old_account() {
    let server = start();
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let mut relay = ticket_relay(&server, &mut bob, "bob");
    wait_relay(&server, "bob");
    for i in 0..3 {
        assert_eq!(alice.request(&format!("2\nbob\nold{i}")), "0\nSent to recipient");
    }
    assert_eq!(pushes(&mut relay, 3).len(), 3); // pushed, never acknowledged
    assert_eq!(bob.request("5\nbob\npw"), "0\naccount deleted");
    assert_eq!(relay.recv(), "-1\nThis account was deleted; the relay is closed");
    relay.assert_closed();
    assert_eq!(alice.request("2\nbob\nafter delete"), "-1\ninvalid recipient");

    let mut reborn = Conn::connect(server.command_addr());
    assert_eq!(reborn.request("3\nBob\npw2"), "0\nSuccessful Created and logged in");
    assert_eq!(server.queue_len("bob"), Some(0));
    let mut new_relay = ticket_relay(&server, &mut reborn, "Bob");
    assert_nothing_before_marker_acked(&mut new_relay, &mut alice);
}

/// "Usernames ... compared case-insensitively": of registrations racing on one name in
/// different cases, exactly one creates the account; the rest are told the name is taken.
#[test]
fn register_races_on_one_name_in_several_cases_create_one_account() {
    let server = start();
    let names = ["carol", "Carol", "CAROL", "cArOl", "carol", "CaRoL"];
    let addr = server.command_addr();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(names.len()));
    let racers: Vec<_> = names
        .iter()
        .map(|name| {
            let barrier = barrier.clone();
            let mut conn = Conn::connect(addr);
            let body = format!("3\n{name}\npw-{name}");
            std::thread::spawn(move || {
                barrier.wait();
                conn.request(&body)
            })
        })
        .collect();
    let replies: Vec<String> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    let created = replies.iter().filter(|r| *r == "0\nSuccessful Created and logged in").count();
    let taken = replies.iter().filter(|r| *r == "-1\nThis username has been used").count();
    assert_eq!((created, taken), (1, names.len() - 1), "replies: {replies:?}");
    let mut lister = user(&server, "lister");
    let list = lister.request("4\nc*");
    assert_eq!(list.to_lowercase(), "0\ncarol ", "one carol listed: {list:?}");
}

/// Two connections logging in to one name at the same moment: both succeed (the later takes
/// over), exactly one session stays live, and it is the one that can still send.
#[test]
fn simultaneous_logins_leave_one_live_session() {
    let server = start();
    drop(user(&server, "dave"));
    let _ = user(&server, "erin");
    let addr = server.command_addr();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
    let racers: Vec<_> = ["dave", "DAVE"]
        .into_iter()
        .map(|name| {
            let barrier = barrier.clone();
            let mut conn = Conn::connect(addr);
            std::thread::spawn(move || {
                barrier.wait();
                let reply = conn.request(&format!("1\n{name}\npw"));
                (conn, reply)
            })
        })
        .collect();
    let mut sessions: Vec<(Conn, String)> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    for (_, reply) in &sessions {
        assert_eq!(reply, "0\nSuccessful Login");
    }
    let live: Vec<bool> = sessions
        .iter_mut()
        .map(|(conn, _)| conn.request("2\nerin\nhi") == "0\nSent to recipient")
        .collect();
    assert_eq!(live.iter().filter(|l| **l).count(), 1, "live sessions: {live:?}");
}

/// Sends to oneself, to another case of a name, to a name never registered and to a deleted
/// name, with PROTOCOL.md's reply texts; a name in another case is the same recipient.
#[test]
fn send_to_self_other_case_unknown_and_deleted_names() {
    let server = start();
    let mut frank = user(&server, "frank");
    let mut relay = ticket_relay(&server, &mut frank, "frank");
    wait_relay(&server, "frank");
    assert_eq!(frank.request("2\nfrank\nto me"), "0\nSent to recipient");
    assert_eq!(frank.request("2\nFRANK\nto me, shouting"), "0\nSent to recipient");
    let got = pushes(&mut relay, 2);
    assert_eq!(texts(&got), ["to me", "to me, shouting"]);
    assert!(got.iter().all(|p| p.from.eq_ignore_ascii_case("frank")), "{got:?}");
    assert_eq!(frank.request("2\nnobody\nhello?"), "-1\ninvalid recipient");
    let mut gone = user(&server, "gone");
    assert_eq!(gone.request("5\ngone\npw"), "0\naccount deleted");
    assert_eq!(frank.request("2\ngone\nhello?"), "-1\ninvalid recipient");
    assert_eq!(frank.request("2\nGONE\nhello?"), "-1\ninvalid recipient");
}

/// "unacknowledged messages are pushed again on the next relay, in order, never twice to one
/// relay": acknowledgements out of order, twice, and for ids never pushed change nothing but
/// the acknowledged messages; after reconnecting exactly the unacknowledged ones come back.
#[test]
fn odd_acknowledgements_remove_exactly_the_acknowledged_messages() {
    let server = start();
    let mut alice = user(&server, "alice");
    let mut hank = user(&server, "hank");
    let mut relay = ticket_relay(&server, &mut hank, "hank");
    wait_relay(&server, "hank");
    for i in 0..6 {
        assert_eq!(alice.request(&format!("2\nhank\nm{i}")), "0\nSent to recipient");
    }
    let got = pushes(&mut relay, 6);
    assert_eq!(texts(&got), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    let unknown = got.iter().map(|p| p.id).max().unwrap() + 1000;
    for id in [got[4].id, got[1].id, got[4].id, unknown, 0, got[1].id] {
        relay.send(&format!("7\n{id}"));
    }
    wait_queue_len(&server, "hank", 4);
    // Nothing is pushed twice to this relay: before the marker come only failure frames
    // (for the repeated and unknown ids), never a push.
    assert_eq!(alice.request("2\nhank\nmarker"), "0\nSent to recipient");
    loop {
        let frame = relay.recv();
        if frame.starts_with("-1\n") {
            continue;
        }
        assert_eq!(AckedPush::parse(&frame).text, "marker");
        break;
    }
    drop(relay);
    wait_no_relay(&server, "hank");

    let mut relay = ticket_relay(&server, &mut hank, "hank");
    let again = pushes(&mut relay, 5);
    assert_eq!(texts(&again), ["m0", "m2", "m3", "m5", "marker"]);
    for push in again.iter().rev() {
        relay.send(&format!("7\n{}", push.id));
    }
    wait_queue_len(&server, "hank", 0);
}

/// The list reply, exactly as PROTOCOL.md spells it, while users come and go: each name
/// followed by one space, deleted names gone, logged-out accounts still listed.
#[test]
fn list_replies_follow_users_coming_and_going() {
    let server = start();
    let mut ivy = user(&server, "ivy");
    let mut jack = user(&server, "jack");
    let listed = |conn: &mut Conn| {
        let reply = conn.request("4\n");
        let names = reply.strip_prefix("0\n").expect("list ok").to_owned();
        assert!(names.is_empty() || names.ends_with(' '), "{reply:?}");
        let mut names: Vec<String> = names.split_terminator(' ').map(str::to_owned).collect();
        names.sort();
        names
    };
    assert_eq!(listed(&mut ivy), ["ivy", "jack"]);
    assert_eq!(jack.request("-1\n"), "0\nLogging out");
    assert_eq!(listed(&mut ivy), ["ivy", "jack"]);
    assert_eq!(jack.request("1\njack\npw"), "0\nSuccessful Login");
    assert_eq!(jack.request("5\njack\npw"), "0\naccount deleted");
    assert_eq!(listed(&mut ivy), ["ivy"]);
    assert_eq!(ivy.request("4\nj?ck"), "0\n");
    assert_eq!(ivy.request("5\nivy\nwrong"), "-1\nInvalid credential, deletion failed");
    assert_eq!(ivy.request("5\njack\npw"), "-1\nInvalid credential, deletion failed");
}
