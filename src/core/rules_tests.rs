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

/// PROTOCOL.md: "a client may send requests without waiting for replies ... and [the server]
/// never closes the connection for it". The frame deadline is for a frame that does not come:
/// a pipelining client whose every read ends inside a frame, each frame whole well within
/// the deadline, streams for many deadlines and is never closed.
#[test]
fn a_client_whose_reads_end_inside_frames_is_not_timed_out_while_they_complete_unless_planted() {
    for (planted, served) in [(Planted::None, true), (Planted::FrameDeadlineSpansFrames, false)] {
        let mut h = with(planted);
        let deadline_ms = h.server().config().frame_deadline_ms;
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        let mut stream = Vec::new();
        let mut middles = Vec::new();
        for k in 0..12 {
            let start = stream.len();
            crate::wire::encode(format!("2\nbob\nmessage {k}").as_bytes(), &mut stream);
            middles.push((start + stream.len()) / 2);
        }
        // Each read completes one frame and brings half of the next.
        let mut at = 0;
        for &middle in &middles {
            h.raw(alice, &stream[at..middle]);
            at = middle;
            h.advance(deadline_ms / 3);
        }
        h.raw(alice, &stream[at..]);
        let replies = h.take(alice);
        let sent = replies.iter().filter(|r| *r == "0\nSent to recipient").count();
        assert_eq!(!h.closed.contains(&alice), served, "{planted:?}: {replies:?}");
        assert_eq!(sent == 12, served, "{planted:?}: {replies:?}");
    }
}

/// Whole frames that wait undecoded because the server owes replies (the pipeline bound) are
/// not a frame that does not come: however long the server takes, the frame deadline does not
/// close their sender.
#[test]
fn whole_frames_held_back_by_the_pipeline_bound_run_no_frame_deadline_unless_planted() {
    held_behind_a_full_pipeline(0);
}

/// Nor is the rest of a frame the server has stopped reading: with the pipeline full the
/// host reads nothing until a reply is written, so a frame whose start came with the request
/// before it waits, in part, on the server. However long the disk takes, its sender is not
/// closed; once it can be read again, the rest arrives and is answered.
#[test]
fn part_of_a_frame_behind_a_full_pipeline_runs_no_frame_deadline_unless_planted() {
    held_behind_a_full_pipeline(3);
}

/// Two sends in one read, less their last `unsent_len` bytes, with a pipeline of one and the
/// disk stalled for two frame deadlines; then the rest, and the disk catches up. Both sends
/// are answered and the connection stays open, unless the frame deadline spans frames.
fn held_behind_a_full_pipeline(unsent_len: usize) {
    for (planted, served) in [(Planted::None, true), (Planted::FrameDeadlineSpansFrames, false)] {
        let config = Config { planted, pipeline_len_max: 1, ..Config::default() };
        let mut h = Harness::new(config);
        let deadline_ms = h.server().config().frame_deadline_ms;
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        // Sends wait for their records to be durable, so the first reply stays unwritten and
        // the second send waits behind it.
        h.auto_durable = false;
        let mut burst = Vec::new();
        for k in 0..2 {
            crate::wire::encode(format!("2\nbob\nm{k}").as_bytes(), &mut burst);
        }
        let cut = burst.len() - unsent_len;
        h.raw(alice, &burst[..cut]);
        h.advance(deadline_ms * 2);
        h.make_durable();
        if served {
            h.raw(alice, &burst[cut..]);
            h.make_durable();
        }
        let replies = h.take(alice);
        assert_eq!(!h.closed.contains(&alice), served, "{planted:?}: {replies:?}");
        let sent = replies.iter().filter(|r| *r == "0\nSent to recipient").count();
        assert_eq!(sent == 2, served, "{planted:?}: {replies:?}");
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

// ---- The outside tester's second pass: limits exactly at their bound, logout, relay
// deadlines, the bare handshake's window, salts and snapshots.

/// "A per-recipient queue is bounded": it holds exactly `queue_len_max` messages, and the
/// next send gets a failure reply.
#[test]
fn a_queue_holds_exactly_its_bound_unless_planted() {
    for (planted, bounded) in [(Planted::None, true), (Planted::QueueOneOverBound, false)] {
        let mut h = Harness::new(Config { planted, queue_len_max: 3, ..Config::default() });
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        for i in 0..3 {
            let reply = h.request(alice, &format!("2\nbob\nm{i}"));
            assert_eq!(reply, "0\nSent to recipient", "{planted:?}: send {i}");
        }
        let over = h.request(alice, "2\nbob\none too many");
        let refused = over.starts_with("-1\nbob's mailbox is full (3 messages waiting)");
        assert_eq!(refused, bounded, "{planted:?}: {over}");
    }
}

/// The accounts limit is exact: `accounts_max` accounts register, the next is refused.
#[test]
fn accounts_stop_exactly_at_their_limit_unless_planted() {
    for (planted, bounded) in [(Planted::None, true), (Planted::AccountsOneOverCap, false)] {
        let mut h = Harness::new(Config { planted, accounts_max: 2, ..Config::default() });
        let c = h.open(1, Channel::Command, 1);
        for name in ["a", "b"] {
            let reply = h.request(c, &format!("3\n{name}\npw"));
            assert_eq!(reply, "0\nSuccessful Created and logged in", "{planted:?}: {name}");
        }
        let over = h.request(c, "3\nc\npw");
        let refused = over == "-1\nThe server has reached its limit of 2 accounts";
        assert_eq!(refused, bounded, "{planted:?}: {over}");
    }
}

/// The other limits a client meets, each exactly at its bound (no planted bug: a check of
/// the shipped limits, which a one-character slip would move).
#[test]
fn connection_registration_ticket_and_list_limits_are_exact() {
    let config = Config {
        connections_per_peer_max: 2,
        connections_max: 3,
        registrations_per_peer_max: 2,
        tickets_per_session_max: 2,
        list_len_max: 2,
        ..Config::default()
    };
    let mut h = Harness::new(config);
    let (a, b) = (h.open(1, Channel::Command, 1), h.open(2, Channel::Command, 1));
    let third = h.open(3, Channel::Command, 1);
    assert!(h.closed.contains(&third), "a third connection from one address is refused");
    assert!(h.take(third)[0].starts_with("-1\nToo many connections from your address (limit 2)"));
    assert!(!h.closed.contains(&a) && !h.closed.contains(&b));
    let other = h.open(4, Channel::Command, 2);
    assert!(!h.closed.contains(&other), "the third connection in all is served");
    let fourth = h.open(5, Channel::Command, 3);
    assert!(h.closed.contains(&fourth), "a fourth connection in all is refused");
    assert!(h.take(fourth)[0].starts_with("-1\nThe server is at its connection limit"));
    // A closed connection gives its slots back.
    h.peer_close(b);
    let again = h.open(6, Channel::Command, 1);
    assert!(!h.closed.contains(&again), "a slot given back is taken again");
    for name in ["r1", "r2"] {
        assert_eq!(h.request(a, &format!("3\n{name}\npw")), "0\nSuccessful Created and logged in");
    }
    let third_registration = h.request(again, "3\nr3\npw");
    assert!(
        third_registration.starts_with("-1\nToo many registrations from your address (limit 2"),
        "{third_registration}"
    );
    // Tickets: the oldest of three is void, the two newest bind.
    let tickets: Vec<String> = (0..3).map(|_| h.request(a, "6")[2..].to_owned()).collect();
    let relay = |h: &mut Harness, conn, ticket: &str| {
        let relay = h.open(conn, Channel::Relay, 2);
        h.send(relay, &format!("r2\n{ticket}"));
        relay
    };
    let oldest = relay(&mut h, 7, &tickets[0]);
    assert!(h.closed.contains(&oldest), "the oldest of three tickets is void");
    h.peer_close(other);
    let newest = relay(&mut h, 8, &tickets[2]);
    assert!(!h.closed.contains(&newest), "the newest ticket binds");
    // The list shows `list_len_max` names and says how many it left out.
    assert_eq!(h.request(a, "4\n"), "0\nr1 r2 ");
    assert_eq!(h.request(a, "3\nr3\npw")[..2], *"-1");
}

/// "Passwords are stored only as argon2id hashes": salted, so two accounts with the same
/// password store different hashes (else one cracked hash opens every account that shares
/// it, and equal hashes tell which do).
#[test]
fn every_account_gets_its_own_salt_unless_planted() {
    for (planted, salted) in [(Planted::None, true), (Planted::SaltNotDrawn, false)] {
        let mut h = with(planted);
        h.user(1, "alice");
        h.user(2, "bob");
        let hashes: Vec<String> = h
            .server()
            .snapshot()
            .into_iter()
            .filter_map(|r| match r {
                super::Record::Register { password_hash, .. } => Some(password_hash),
                _ => None,
            })
            .collect();
        assert_eq!(hashes.len(), 2, "{planted:?}");
        assert!(hashes.iter().all(|h| h.starts_with("$argon2id$")), "{planted:?}: {hashes:?}");
        assert_eq!(hashes[0] != hashes[1], salted, "{planted:?}: {hashes:?}");
    }
}

/// A relay has until the login deadline to complete its handshake; once bound it is the
/// session's relay and lives as long as the session, however long that is.
#[test]
fn a_bound_relay_outlives_the_handshake_deadline_unless_planted() {
    for (planted, lives) in [(Planted::None, true), (Planted::RelayKeepsHandshakeDeadline, false)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        let bob = h.user(2, "bob");
        let relay = h.ticket_relay(3, alice, "alice");
        h.advance(h.server().config().login_deadline_ms + 1);
        assert_eq!(!h.closed.contains(&relay), lives, "{planted:?}");
        assert_eq!(h.request(bob, "2\nalice\nstill there?"), "0\nSent to recipient");
        let pushes = h.take(relay);
        assert_eq!(pushes.iter().any(|p| p.ends_with("bob\nstill there?")), lives, "{pushes:?}");
    }
}

/// The bare handshake binds only to a session that "logged in moments ago"
/// (`bare_relay_window_ms`): later, anyone on the host could read the user's messages by
/// sending it while the user's own relay is down.
#[test]
fn a_bare_handshake_long_after_the_login_is_refused_unless_planted() {
    for (planted, refused) in [(Planted::None, true), (Planted::BareRelayAnyTime, false)] {
        let mut h = with(planted);
        h.user(1, "alice");
        h.advance(h.server().config().bare_relay_window_ms + 1);
        let late = h.bare_relay(2, "alice");
        assert_eq!(h.closed.contains(&late), refused, "{planted:?}");
        // Within the window it binds (the original client's own relay).
        h.user(3, "bob");
        let prompt = h.bare_relay(4, "bob");
        assert!(!h.closed.contains(&prompt), "{planted:?}");
    }
}

/// "A connection must log in within 60 s" holds for a connection that logged out too: it is
/// as anonymous as a new one.
#[test]
fn a_logged_out_connection_must_log_in_again_within_the_deadline_unless_planted() {
    for (planted, closed) in [(Planted::None, true), (Planted::LogoutArmsNoDeadline, false)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        assert_eq!(h.request(alice, "-1\n"), "0\nLogging out");
        h.advance(h.server().config().login_deadline_ms);
        assert_eq!(h.closed.contains(&alice), closed, "{planted:?}");
    }
}

/// A snapshot rebuilds the state it was taken of: names spelled as registered, passwords,
/// and queued messages with their senders, in order (a restart from it changes nothing a
/// client can see).
#[test]
fn a_server_recovered_from_its_snapshot_is_the_same_server_unless_planted() {
    use rand::SeedableRng;
    for (planted, same) in [(Planted::None, true), (Planted::SnapshotLowercasesNames, false)] {
        let mut h = with(planted);
        let alice = h.user(1, "Alice");
        h.user(2, "bob");
        for text in ["one", "two\nlines"] {
            assert_eq!(h.request(alice, &format!("2\nbob\n{text}")), "0\nSent to recipient");
        }
        let (records, lsn) = (h.server().snapshot(), h.server().last_lsn());
        let config = h.server().config().clone();
        let rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
        let recovered = super::Server::recover(config, rng, records, lsn).expect("recovers");
        assert_eq!(recovered.account_names() == ["Alice", "bob"], same, "{planted:?}");
        let mut h = Harness::with_server(recovered);
        let bob = h.user(1, "bob");
        assert_eq!(h.request(bob, "4\n") == "0\nAlice bob ", same, "{planted:?}");
        let relay = h.bare_relay(2, "bob");
        assert_eq!(h.take(relay), ["0\nAlice:one", "0\nAlice:two\nlines"], "{planted:?}");
        let alice = h.open(3, Channel::Command, 1);
        assert_eq!(h.request(alice, "1\nalice\npw"), "0\nSuccessful Login", "{planted:?}");
    }
}

/// PROTOCOL.md: "Refusals on a ticketed handshake are a failure frame, then close; a bare relay
/// is simply closed (the original client would print a failure frame as a chat message)". The
/// shipped server used to answer every refused handshake with a failure frame, which the
/// original client showed as a message from someone (`New Message from -1...`): each refusal
/// below, for each reason a bare handshake is refused, is now a plain close, while the same
/// refusals of a ticketed handshake still say why.
#[test]
fn a_refused_bare_handshake_is_simply_closed_unless_planted() {
    for (planted, silent) in [(Planted::None, true), (Planted::BareRefusalFramed, false)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        let mut refused = vec![h.bare_relay(2, "nobody")];
        let other_address = h.open(3, Channel::Relay, 99);
        h.send(other_address, "alice");
        refused.push(other_address);
        let ticket = h.request(alice, "6");
        refused.push(h.bare_relay(4, "alice"));
        h.user(5, "bob");
        h.bare_relay(6, "bob");
        refused.push(h.bare_relay(7, "bob"));
        h.advance(h.server().config().bare_relay_window_ms + 1);
        h.user(8, "carol");
        h.advance(h.server().config().bare_relay_window_ms + 1);
        refused.push(h.bare_relay(9, "carol"));
        for relay in refused {
            assert!(h.closed.contains(&relay), "{planted:?}: {relay:?} is refused");
            let got = h.take(relay);
            assert_eq!(got.is_empty(), silent, "{planted:?}: {relay:?} got {got:?}");
        }
        // A ticketed handshake's refusal says why.
        let wrong = h.open(10, Channel::Relay, 1);
        h.send(wrong, "alice\nnot-a-ticket");
        assert_eq!(h.take(wrong), ["-1\nRelay refused: unknown or already used ticket"]);
        assert!(ticket.starts_with("0\n"), "{ticket}");
    }
}

/// A ticket is "single use, short-lived": it binds up to `ticket_ttl_ms` after it was issued
/// and not at that millisecond, the same instant the sweep forgets it (`expires_ms > now`
/// survives a sweep), so whether a late ticket binds never depends on whether the sweep ran.
/// The sweep is kept off the expiry's millisecond here, so only the handshake's own check
/// decides.
#[test]
fn a_ticket_binds_until_its_expiry_and_not_at_it_unless_planted() {
    for (planted, refused) in [(Planted::None, true), (Planted::TicketBindsAtExpiry, false)] {
        let mut h = with(planted);
        let ttl_ms = h.server().config().ticket_ttl_ms;
        let alice = h.user(1, "alice");
        let registered_ms = h.server().now_ms();
        h.advance(1);
        let at_expiry = h.request(alice, "6")[2..].to_owned();
        h.advance(ttl_ms - 2);
        let just_before = h.request(alice, "6")[2..].to_owned();
        // The sweep, armed when alice registered, runs `ttl_ms` later: before the first
        // ticket's expiry (one millisecond after that), and next `ttl_ms` after that.
        h.advance(1);
        assert_eq!(h.server().now_ms(), registered_ms + ttl_ms);
        h.advance(1);
        let late = h.open(2, Channel::Relay, 1);
        h.send(late, &format!("alice\n{at_expiry}"));
        let got = h.take(late);
        assert_eq!(h.closed.contains(&late), refused, "{planted:?}: {got:?}");
        if refused {
            assert_eq!(got, ["-1\nRelay refused: the ticket has expired"]);
        }
        h.peer_close(late);
        // A ticket used one millisecond before its expiry binds, planted or not.
        h.advance(ttl_ms - 3);
        let prompt = h.open(3, Channel::Relay, 1);
        h.send(prompt, &format!("alice\n{just_before}"));
        assert!(h.take(prompt).is_empty(), "{planted:?}");
        assert!(!h.closed.contains(&prompt), "{planted:?}: binds one millisecond early");
    }
}

/// The list reply's byte bound is inclusive: names that fill the reply to exactly
/// `list_reply_bytes_max` bytes are all shown, and one byte more leaves the last name out
/// (said in the reply).
#[test]
fn a_list_reply_exactly_at_its_byte_bound_is_served_whole_unless_planted() {
    for (planted, whole) in [(Planted::None, true), (Planted::ListReplyOneByteShort, false)] {
        // "abc def " is 8 bytes.
        let config = Config { planted, list_reply_bytes_max: 8, ..Config::default() };
        let mut h = Harness::new(config);
        let abc = h.user(1, "abc");
        h.user(2, "def");
        let got = h.request(abc, "4\n");
        assert_eq!(got == "0\nabc def ", whole, "{planted:?}: {got:?}");
        if whole {
            h.user(3, "ghi");
            let got = h.request(abc, "4\n");
            assert!(got.starts_with("0\nabc def (and 1 more"), "{got:?}");
        }
    }
}

/// PROTOCOL.md: messages "are pushed as soon as a relay is attached, with no polling delay";
/// for a recipient whose relay is already attached, that is as soon as the send is accepted,
/// not when something else (the next message, a new relay) happens to push.
#[test]
fn an_online_recipient_gets_a_message_at_once_unless_planted() {
    for (planted, pushed) in [(Planted::None, true), (Planted::SendDoesNotPump, false)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        let bob = h.user(2, "bob");
        let relay = h.bare_relay(3, "bob");
        let ticketed = h.ticket_relay(4, alice, "alice");
        assert_eq!(h.request(alice, "2\nbob\nhi"), "0\nSent to recipient");
        let got = h.take(relay);
        assert_eq!(got == ["0\nalice:hi"], pushed, "{planted:?}: {got:?}");
        assert_eq!(h.request(bob, "2\nalice\nhello"), "0\nSent to recipient");
        let got = h.take(ticketed);
        let arrived = got.len() == 1 && got[0].ends_with("\nbob\nhello");
        assert_eq!(arrived, pushed, "{planted:?}: {got:?}");
    }
}

/// README: "each failure doubles the wait (1 s up to 60 s)": however many wrong passwords an
/// address sends, the wait a throttled reply names never exceeds the cap
/// (`login_failure_window_ms`), so the owner is never locked out for longer than that.
#[test]
fn the_wait_after_failed_logins_never_exceeds_its_cap_unless_planted() {
    for (planted, capped) in [(Planted::None, true), (Planted::ThrottleBackoffUncapped, false)] {
        let config = Config { planted, login_failures_max: 1, ..Config::default() };
        let cap_s = config.login_failure_window_ms / 1000;
        let mut h = Harness::new(config);
        h.user(1, "alice");
        let mut waits_s = Vec::new();
        // Each guess on a connection of its own (a waiting one would meet its login deadline).
        for conn in 2.. {
            if waits_s.len() == 10 {
                break;
            }
            let guesser = h.open(conn, Channel::Command, 1);
            let reply = h.request(guesser, "1\nalice\nwrong");
            h.peer_close(guesser);
            let Some(wait) = reply.strip_prefix("-1\nToo many failed attempts; try again in ")
            else {
                // Refused by the password itself: the next try comes at once.
                assert!(reply.starts_with("-1\nInvalid Login"), "{reply}");
                continue;
            };
            let wait_s: u64 =
                wait.strip_suffix(" s").expect("in seconds").parse().expect("a number");
            waits_s.push(wait_s);
            h.advance(wait_s * 1000);
        }
        assert_eq!(waits_s.iter().all(|&w| w <= cap_s), capped, "{planted:?}: {waits_s:?}");
        // The waits double up to the cap.
        assert_eq!(waits_s[..3], [1, 2, 4], "{planted:?}");
    }
}

/// A session holds at most `tickets_per_session_max` tickets; one more replaces the oldest,
/// so the newer tickets, the ones a client is about to use, still bind (the outside tester's
/// fourth pass: evicting the newest escaped every checker).
#[test]
fn a_new_ticket_replaces_the_oldest_unless_planted() {
    for (planted, honest) in [(Planted::None, true), (Planted::TicketEvictsNewest, false)] {
        let mut h =
            Harness::new(Config { planted, tickets_per_session_max: 2, ..Config::default() });
        let alice = h.user(1, "alice");
        let mut tickets = Vec::new();
        for _ in 0..3 {
            tickets.push(h.request(alice, "6")[2..].to_owned());
            h.advance(1);
        }
        // The oldest is refused; the one after it binds. (The newest is not tried: once a
        // relay is bound, the session's other tickets are not this rule's business.)
        let mut bound = Vec::new();
        for (i, ticket) in tickets[..2].iter().enumerate() {
            let relay = h.open(10 + i as u64, Channel::Relay, 1);
            h.send(relay, &format!("alice\n{ticket}"));
            let got = h.take(relay);
            bound.push(!h.closed.contains(&relay) && got.is_empty());
        }
        assert_eq!(bound == [false, true], honest, "{planted:?}: {bound:?}");
    }
}

/// The oldest of a session's tickets is the first issued, also among tickets issued in one
/// millisecond, which expire together (found by the simulator's hoarding client: the server
/// told the oldest by expiry, ties broken by the ticket's random text, and forgot whichever
/// sorted first). Eight sessions each take three tickets at once under a bound of two and use
/// the second: every one binds.
#[test]
fn tickets_issued_in_one_millisecond_are_forgotten_oldest_first_unless_planted() {
    for (planted, honest) in [(Planted::None, true), (Planted::TicketOldestByExpiry, false)] {
        let config = Config {
            planted,
            tickets_per_session_max: 2,
            registrations_per_peer_max: 100,
            ..Config::default()
        };
        let mut h = Harness::new(config);
        let mut bound = Vec::new();
        for user in 0..8u64 {
            let name = format!("user{user}");
            let conn = h.user(1 + user, &name);
            let tickets: Vec<String> =
                (0..3).map(|_| h.request(conn, "6")[2..].to_owned()).collect();
            let relay = h.open(100 + user, Channel::Relay, 1);
            h.send(relay, &format!("{name}\n{}", tickets[1]));
            let got = h.take(relay);
            bound.push(!h.closed.contains(&relay) && got.is_empty());
        }
        assert_eq!(bound.iter().all(|&b| b), honest, "{planted:?}: {bound:?}");
    }
}

// ---- The outside tester's fifth pass: limits exactly at their bound (a comparison moved by
// one escaped every checker), timers at their deadline, and the sweep.

/// "A relay that acknowledges has a message removed only when acknowledged", with at most
/// `push_window_len` pushes in flight: exactly that many arrive before an acknowledgement,
/// and each acknowledgement lets the next one out.
#[test]
fn an_acking_relay_has_exactly_its_window_in_flight_unless_planted() {
    for (planted, exact) in [(Planted::None, true), (Planted::PushWindowOneOver, false)] {
        let mut h = Harness::new(Config { planted, push_window_len: 2, ..Config::default() });
        let alice = h.user(1, "alice");
        let bob = h.user(2, "bob");
        for i in 0..4 {
            assert_eq!(h.request(alice, &format!("2\nbob\nm{i}")), "0\nSent to recipient");
        }
        let relay = h.ticket_relay(3, bob, "bob");
        let got = h.take(relay);
        assert_eq!(got.len() == 2, exact, "{planted:?}: {got:?}");
        assert!(got.iter().all(|push| push.starts_with("7\n")), "{planted:?}: {got:?}");
        if exact {
            assert!(got[1].ends_with("\nalice\nm1"), "{got:?}");
            let id = got[0].split('\n').nth(1).expect("push id");
            h.send(relay, &format!("7\n{id}"));
            let next = h.take(relay);
            assert_eq!(next.len(), 1, "one acknowledgement, one more push: {next:?}");
            assert!(next[0].ends_with("\nalice\nm2"), "{next:?}");
        }
    }
}

/// The bare handshake is bound "to a session that logged in moments ago": moments being
/// `bare_relay_window_ms`, inclusive. At exactly the window it binds (one millisecond later it
/// is refused: `a_bare_handshake_long_after_the_login_is_refused_unless_planted`).
#[test]
fn a_bare_handshake_at_the_end_of_its_window_binds_unless_planted() {
    for (planted, binds) in [(Planted::None, true), (Planted::BareWindowExclusive, false)] {
        let mut h = with(planted);
        h.user(1, "alice");
        h.advance(h.server().config().bare_relay_window_ms);
        let relay = h.bare_relay(2, "alice");
        assert_eq!(!h.closed.contains(&relay), binds, "{planted:?}");
    }
}

/// "A connection must log in within 60 s": the login deadline fires at its millisecond, not
/// later (a host sleeps until `poll_timeout` and ticks once; a timer not due then would wait
/// for some other input). A millisecond before it the connection is open.
#[test]
fn a_connection_is_closed_exactly_at_its_login_deadline_unless_planted() {
    for (planted, on_time) in [(Planted::None, true), (Planted::TimersFireLate, false)] {
        let mut h = with(planted);
        let deadline_ms = h.server().config().login_deadline_ms;
        let conn = h.open(1, Channel::Command, 1);
        let due_ms = h.server().poll_timeout();
        assert_eq!(due_ms == Some(h.now_ms + deadline_ms), on_time, "{planted:?}: {due_ms:?}");
        h.advance(deadline_ms - 1);
        assert!(!h.closed.contains(&conn), "{planted:?}: closed early");
        h.advance(1);
        assert_eq!(h.closed.contains(&conn), on_time, "{planted:?}");
        if on_time {
            let got = h.take(conn);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(
                got[0].starts_with("-1\nLogin timed out: log in or register within"),
                "{got:?}"
            );
        }
    }
}

/// Tickets are "short-lived" and the abuse limits keep only what is still in their window:
/// the periodic sweep forgets what lapsed and re-arms itself while anything is left, so a
/// server whose clients went quiet ends up holding no expired ticket, stale failure or
/// registration (else each client that asked for a ticket and went away leaks one).
#[test]
fn the_sweep_forgets_everything_that_lapsed_unless_planted() {
    for (planted, forgets) in [(Planted::None, true), (Planted::SweepNotRearmed, false)] {
        let ttl_ms = 1_000;
        let config = Config {
            planted,
            ticket_ttl_ms: ttl_ms,
            login_failure_window_ms: ttl_ms,
            registration_window_ms: ttl_ms,
            ..Config::default()
        };
        let mut h = Harness::new(config);
        // The registration arms the sweep for `ttl_ms` later.
        let alice = h.user(1, "alice");
        h.advance(ttl_ms / 2);
        // Issued after the sweep was armed: the first sweep finds it still valid.
        assert!(h.request(alice, "6").starts_with("0\n"));
        h.advance(ttl_ms / 2);
        assert_eq!(h.server().tickets.len(), 1, "{planted:?}: the first sweep keeps it");
        h.advance(ttl_ms);
        h.advance(ttl_ms);
        let left = (h.server().tickets.len(), h.server().poll_timeout());
        assert_eq!(left == (0, None), forgets, "{planted:?}: {left:?}");
    }
}

/// README: "The server decodes at most `pipeline_len_max` of a connection's requests ahead of
/// their written replies and reads no more from it until it has answered them". Driven on
/// the bare core, whose replies stay unwritten until reported: a burst of three `help`
/// requests under a bound of two gets two replies, and the third once one is written.
#[test]
fn a_pipeline_decodes_exactly_its_bound_ahead_unless_planted() {
    for (planted, exact) in [(Planted::None, true), (Planted::PipelineOneOver, false)] {
        let mut h = Harness::new(Config { planted, pipeline_len_max: 2, ..Config::default() });
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        // Sends wait for their records to be durable, so their replies stay unwritten and
        // the requests decoded ahead of them fill the pipeline.
        h.auto_durable = false;
        let before = h.server().last_lsn().0;
        let mut burst = Vec::new();
        for k in 0..3 {
            crate::wire::encode(format!("2\nbob\nm{k}").as_bytes(), &mut burst);
        }
        h.raw(alice, &burst);
        let decoded = h.server().last_lsn().0 - before;
        assert_eq!(decoded == 2, exact, "{planted:?}: {decoded} sends decoded");
        assert!(!h.server().reads_ahead(alice), "{planted:?}: the pipeline is full");
        if exact {
            h.make_durable();
            assert_eq!(h.server().last_lsn().0 - before, 3, "room again: the third is read");
            assert_eq!(h.server().inbound_buffered_len(alice), Some(0));
        }
    }
}

/// The bound on a connection's undecoded bytes (`inbound_buffered_len_max`, which keeps a
/// client that sends without reading from costing unbounded memory) is inclusive: a part of
/// a frame filling it exactly is kept, one byte more gets the failure reply, then the close.
#[test]
fn a_connection_may_buffer_exactly_its_inbound_bound_unless_planted() {
    for (planted, kept) in [(Planted::None, true), (Planted::InboundBoundExclusive, false)] {
        let mut h =
            Harness::new(Config { planted, inbound_buffered_len_max: 30, ..Config::default() });
        let conn = h.open(1, Channel::Command, 1);
        // A header declaring 100 bytes (within the frame limit) and 20 of them: 30 bytes.
        h.raw(conn, b"100       01234567890123456789");
        assert_eq!(h.server().inbound_buffered_len(conn), kept.then_some(30), "{planted:?}");
        assert_eq!(!h.closed.contains(&conn), kept, "{planted:?}");
        if kept {
            h.raw(conn, b"x");
            assert!(h.closed.contains(&conn), "one byte over the bound");
            let got = h.take(conn);
            let want = "-1\nToo much sent without waiting for replies; connection closed";
            assert_eq!(got, [want]);
        }
    }
}
