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
            // Refused by a plain close: the original client prints every frame as a message.
            assert!(got.is_empty(), "{planted:?}: {got:?}");
            assert!(h.closed.contains(&thief), "{planted:?}");
        }
    }
}

#[test]
fn a_session_that_asked_for_a_ticket_never_binds_a_bare_handshake() {
    let mut h = Harness::new(Config { bare_relay_allowed: true, ..Config::default() });
    let bob = h.user(1, "bob");
    let ticket = h.request(bob, "6").strip_prefix("0\n").expect("a ticket").to_owned();
    let thief = h.bare_relay(2, "bob");
    assert!(h.take(thief).is_empty(), "a refused bare handshake is simply closed");
    assert!(h.closed.contains(&thief));
    let relay = h.open(3, Channel::Relay, 1);
    h.send(relay, &format!("bob\n{ticket}"));
    assert!(h.take(relay).is_empty());
    assert!(!h.closed.contains(&relay));
    assert!(h.server().has_relay(h.server().session_of(bob).expect("logged in")));
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

/// The harness holding every password job until told (it runs them at once by default,
/// which hides races between concurrent checks), with every reply kept in order.
struct Held {
    h: Harness,
    replies: Vec<(super::ConnId, String)>,
}

impl Held {
    fn new(config: Config) -> Self {
        let mut h = Harness::new(config);
        h.hold_jobs = true;
        Held { h, replies: Vec::new() }
    }

    fn jobs(&self) -> usize {
        self.h.held_jobs.len()
    }

    fn request(&mut self, conn: u64, peer: u128, body: &str) {
        let conn = self.h.open(conn, Channel::Command, peer);
        self.h.send(conn, body);
        self.collect(conn);
    }

    fn collect(&mut self, conn: super::ConnId) {
        self.replies.extend(self.h.take(conn).into_iter().map(|body| (conn, body)));
    }

    /// Finishes every held job with a wrong password (or a fresh hash for a registration).
    fn finish_all(&mut self) {
        let hasher = crate::auth::Hasher::new(crate::auth::HashCost::CHEAPEST).expect("hasher");
        for job in std::mem::take(&mut self.h.held_jobs) {
            let outcome = match job.work {
                super::PasswordWork::Verify { .. } => super::PasswordOutcome::Verified(false),
                super::PasswordWork::Hash { .. } => hasher.run(&job),
            };
            self.h.input(super::Event::PasswordDone { job: job.job, outcome });
            self.collect(job.conn);
        }
    }
}

#[test]
fn concurrent_wrong_logins_cannot_all_be_verified_unless_counted_late() {
    for (planted, verified) in [(Planted::None, 5), (Planted::ThrottleCountedLate, 60)] {
        let mut h =
            Held::new(Config { planted, connections_per_peer_max: 100, ..Config::default() });
        h.request(1, 1, "3\nbob\npw");
        h.finish_all();
        for conn in 2..62 {
            h.request(conn, 9, "1\nbob\nwrong");
        }
        assert_eq!(h.jobs(), verified, "{planted:?}: password checks started");
        let throttled = h.replies.iter().filter(|(_, r)| r.starts_with("-1\nToo many")).count();
        assert_eq!(throttled, 60 - verified, "{planted:?}");
        h.finish_all();
    }
}

#[test]
fn an_attackers_failures_do_not_lock_the_owner_out_unless_keyed_by_name_only() {
    for (planted, locked_out) in [(Planted::None, false), (Planted::ThrottleLocksOwner, true)] {
        let mut h = with(planted);
        h.user(1, "bob");
        let attacker = h.open(2, Channel::Command, 66);
        for _ in 0..5 {
            assert!(h.request(attacker, "1\nbob\nwrong").starts_with("-1\nInvalid Login"));
        }
        assert_eq!(
            h.request(attacker, "1\nbob\npw"),
            "-1\nToo many failed attempts; try again in 1 s"
        );
        let owner = h.open(3, Channel::Command, 1);
        let reply = h.request(owner, "1\nbob\npw");
        assert_eq!(reply.starts_with("-1\nToo many failed attempts"), locked_out, "{planted:?}");
    }
}

#[test]
fn the_throttle_answers_alike_for_existing_and_unknown_names() {
    let mut h = with(Planted::None);
    h.user(1, "bob");
    let mut last = Vec::new();
    for (peer, name) in [(2, "bob"), (3, "nobody")] {
        let c = h.open(peer as u64 + 10, Channel::Command, peer);
        let replies: Vec<String> =
            (0..7).map(|_| h.request(c, &format!("1\n{name}\nwrong"))).collect();
        last.push(replies);
    }
    assert_eq!(last[0], last[1]);
    assert_eq!(last[0][5], "-1\nToo many failed attempts; try again in 1 s");
}

#[test]
fn the_delay_grows_with_each_failure_after_the_free_ones() {
    let mut h = with(Planted::None);
    let c = h.open(1, Channel::Command, 5);
    for _ in 0..5 {
        h.request(c, "1\nbob\nwrong");
    }
    for wait_s in [1, 2, 4, 8] {
        assert_eq!(
            h.request(c, "1\nbob\nwrong"),
            format!("-1\nToo many failed attempts; try again in {wait_s} s")
        );
        h.advance(wait_s * 1000);
        assert!(h.request(c, "1\nbob\nwrong").starts_with("-1\nInvalid Login"));
    }
}

#[test]
fn a_burst_of_registrations_from_one_address_is_limited_unless_counted_late() {
    for (planted, started) in [(Planted::None, 10), (Planted::RegistrationUnlimited, 30)] {
        let mut h =
            Held::new(Config { planted, connections_per_peer_max: 100, ..Config::default() });
        for conn in 0..30 {
            h.request(conn, 9, &format!("3\nuser{conn}\npw"));
        }
        assert_eq!(h.jobs(), started, "{planted:?}: registrations started");
        h.finish_all();
        let refused = h.replies.iter().filter(|(_, r)| r.starts_with("-1\nToo many reg")).count();
        assert_eq!(refused, 30 - started, "{planted:?}");
        // Another address is not affected.
        h.request(100, 10, "3\nelsewhere\npw");
        h.finish_all();
        let last = &h.replies.last().expect("a reply").1;
        assert_eq!(last, "0\nSuccessful Created and logged in");
    }
}

#[test]
fn the_registration_limit_says_what_it_is_and_when_to_retry() {
    let config = Config { registrations_per_peer_max: 2, ..Config::default() };
    let mut h = Harness::new(config);
    h.user(1, "a");
    h.user(2, "b");
    let c = h.open(3, Channel::Command, 1);
    assert_eq!(
        h.request(c, "3\nc\npw"),
        "-1\nToo many registrations from your address (limit 2 per 600 s); try again in 600 s"
    );
    h.advance(600_000);
    let c = h.open(4, Channel::Command, 1);
    assert_eq!(h.request(c, "3\nc\npw"), "0\nSuccessful Created and logged in");
}

#[test]
fn empty_texts_are_refused_unless_planted() {
    for (planted, accepted) in [(Planted::None, false), (Planted::EmptyTextAccepted, true)] {
        let mut h = with(planted);
        let alice = h.user(1, "alice");
        h.user(2, "bob");
        let reply = h.request(alice, "2\nbob\n");
        let want = if accepted {
            "0\nSent to recipient"
        } else {
            "-1\nEmpty message not sent: write some text"
        };
        assert_eq!(reply, want, "{planted:?}");
    }
}

#[test]
fn the_byte_bound_counts_a_fixed_overhead_per_message() {
    let one = super::MESSAGE_OVERHEAD_BYTES + 1;
    let mut h = Harness::new(Config { queued_bytes_max: 3 * one, ..Config::default() });
    let alice = h.user(1, "alice");
    h.user(2, "bob");
    for _ in 0..3 {
        assert_eq!(h.request(alice, "2\nbob\nx"), "0\nSent to recipient");
    }
    assert_eq!(
        h.request(alice, "2\nbob\nx"),
        "-1\nThe server's message store is full; try again later"
    );
}

#[test]
fn a_snapshot_view_keeps_the_state_it_captured_while_the_server_moves_on() {
    let mut h = Harness::new(Config::default());
    let alice = h.user(1, "alice");
    h.user(2, "bob");
    assert_eq!(h.request(alice, "2\nbob\nbefore"), "0\nSent to recipient");
    let view = h.server().snapshot_view();
    let before = h.server().snapshot();
    assert_eq!(view.lsn(), h.server().last_lsn());
    assert_eq!(h.request(alice, "2\nbob\nafter"), "0\nSent to recipient");
    h.user(3, "carol");
    let lsn_at_capture = view.lsn();
    assert!(h.server().last_lsn() > lsn_at_capture);
    assert_eq!(view.records(), before);
    assert_ne!(h.server().snapshot(), before);
}

/// A deadline a library user sets to `u64::MAX` means never: the core adds deadlines to its
/// clock, and the sum must not overflow (a panic in a debug build, a deadline in the past and
/// every connection closed at once in a release one); the command line bounds its own flags.
#[test]
fn deadlines_set_to_the_largest_value_never_fire_and_do_not_overflow() {
    let never = u64::MAX;
    let config = Config {
        login_deadline_ms: never,
        frame_deadline_ms: never,
        ticket_ttl_ms: never,
        ..Config::default()
    };
    let mut h = Harness::new(config);
    let day_ms = 24 * 60 * 60 * 1000;
    h.advance(1_000);
    let idle = h.open(1, Channel::Command, 1);
    let alice = h.user(2, "alice");
    let bob = h.user(3, "bob");
    let ticket = h.request(alice, "6");
    let ticket = ticket.strip_prefix("0\n").expect("a ticket is granted").to_owned();
    // Half a frame header: the frame deadline is armed too.
    h.raw(bob, b"0000000");
    let logged_out = h.user(4, "carol");
    assert_eq!(h.request(logged_out, "-1"), "0\nLogging out");
    h.advance(day_ms);
    for (conn, what) in [(idle, "an idle connection"), (bob, "a half-sent frame")] {
        assert!(!h.closed.contains(&conn), "{what} was closed within a day");
    }
    assert!(!h.closed.contains(&logged_out), "a logged-out connection was closed within a day");
    // The ticket still binds a relay a day later.
    let relay = h.open(5, Channel::Relay, 1);
    h.send(relay, &format!("alice\n{ticket}"));
    let dave = h.user(6, "dave");
    assert_eq!(h.request(dave, "2\nalice\nhello"), "0\nSent to recipient");
    let got = h.take(relay);
    assert!(got.iter().any(|f| f.ends_with("hello")), "the day-old ticket bound: {got:?}");
}
