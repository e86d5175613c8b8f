//! The bad-input catalogue: what a network can send that a well-behaved client never would, and
//! what PROTOCOL.md says the server does about it. The table of single-connection cases runs
//! twice, over real TCP and against the core through the checking driver of
//! `chatroom::fuzzing`, so both answer alike; the cases that need several connections, time or
//! memory measurements run over TCP below it. After every case a control pair of clients must
//! still chat.

mod support;

use std::io::Write;
use std::net::Shutdown;
use std::time::Duration;

use chatroom::core::{Channel, Config};
use chatroom::fuzzing::{ConnState, CoreDriver};
use chatroom::net::{ServerConfig, ServerHandle};
use chatroom::wire::{encode, reply};
use support::{
    assert_others_still_chat, bare_relay, start_with, ticket_relay, user, wait_no_relay,
    wait_relay, Conn,
};

/// Where a case's bytes go.
#[derive(Clone, Copy, Debug)]
enum Setup {
    /// A fresh command connection.
    Command,
    /// A command connection logged in as the case's user.
    LoggedIn,
    /// A fresh relay connection; the case's user is logged in on a command connection.
    Relay,
    /// A relay bound with a bare handshake to the case's logged-in user (the original
    /// client, which prints every frame as a message: it gets no failure frames).
    BoundRelay,
    /// A relay bound with a ticket to the case's logged-in user.
    TicketedRelay,
}

/// What the connection must look like after the case's replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// Still open and serving: a help request is answered (a push arrives, on a relay).
    Keep,
    /// Closed by the server, with nothing after the replies.
    Close,
}

/// One expected reply body: exact, or its beginning where the text echoes bytes back.
#[derive(Clone, Debug)]
enum Expect {
    Exact(String),
    Prefix(String),
}

struct Case {
    name: &'static str,
    setup: Setup,
    /// `{user}` stands for the case's user name.
    input: Vec<u8>,
    /// Write the input in pieces of this many bytes (0: at once).
    piece_len: usize,
    replies: Vec<Expect>,
    after: After,
}

const HELP_PREFIX: &str = "0\nThis is a chat room app.";

fn fail(text: &str) -> Expect {
    Expect::Exact(format!("-1\n{text}"))
}

fn bad_header() -> Expect {
    Expect::Prefix("-1\nbad frame header ".to_owned())
}

fn too_large(len: u64, limit: usize) -> Expect {
    fail(&format!("frame of {len} bytes is larger than the limit of {limit} bytes"))
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode(body, &mut out);
    out
}

fn case(
    name: &'static str,
    setup: Setup,
    input: Vec<u8>,
    replies: Vec<Expect>,
    after: After,
) -> Case {
    Case { name, setup, input, piece_len: 0, replies, after }
}

fn command(name: &'static str, body: &[u8], reply: Expect) -> Case {
    case(name, Setup::Command, framed(body), vec![reply], After::Keep)
}

fn header(name: &'static str, bytes: &[u8]) -> Case {
    case(name, Setup::Command, bytes.to_vec(), vec![bad_header()], After::Close)
}

/// Every single-connection case, in the order the catalogue lists them.
fn catalogue() -> Vec<Case> {
    use After::*;
    use Setup::*;
    let mut cases = vec![
        // Headers of every shape: one failure naming the problem, then closed.
        header("header_letters", b"abc       hello"),
        header("header_negative", b"-1        "),
        header("header_plus_sign", b"+5        hello"),
        header("header_hex", b"0x10      0123456789abcdef"),
        header("header_tab", b"5\t        hello"),
        header("header_newline", b"12\n       "),
        header("header_nul_bytes", &[0; 10]),
        header("header_all_spaces", b"          "),
        header("header_inner_space", b"1 2       "),
        header("header_utf8", "é1       x".as_bytes()),
        case("header_after_a_good_frame", Command, b"1         0abcdefghij".to_vec(), vec![Expect::Prefix(HELP_PREFIX.into()), bad_header()], Close),
        // Headers that are unusual but valid.
        case("header_spaces_around", Command, b"   1      0".to_vec(), vec![Expect::Prefix(HELP_PREFIX.into())], Keep),
        case("header_leading_zeros", Command, b"00000000010".to_vec(), vec![Expect::Prefix(HELP_PREFIX.into())], Keep),
        Case { piece_len: 1, ..case("header_byte_by_byte", Command, framed(b"0"), vec![Expect::Prefix(HELP_PREFIX.into())], Keep) },
        Case { piece_len: 7, ..case("two_frames_in_odd_pieces", Command, [framed(b"0"), framed(b"9")].concat(), vec![Expect::Prefix(HELP_PREFIX.into()), fail("invalid command:9")], Keep) },
        // Declared lengths.
        command("length_0", b"", fail("invalid command:")),
        command("length_at_the_limit", &[b'9'; 8192], fail(&format!("invalid command:{}", "9".repeat(32)))),
        case("length_one_above_the_limit", Command, b"8193      ".to_vec(), vec![too_large(8193, 8192)], Close),
        case("length_9999999999", Command, b"9999999999".to_vec(), vec![too_large(9_999_999_999, 8192)], Close),
        case("length_64k_after_login", LoggedIn, framed(&[b"2\nnobody-here\n".as_slice(), &[b'x'; 65536 - 14]].concat()), vec![fail(reply::UNKNOWN_RECIPIENT)], Keep),
        case("length_64k_plus_1_after_login", LoggedIn, b"65537     ".to_vec(), vec![too_large(65537, 65536)], Close),
        // Invalid UTF-8 in a well-framed body: failure, kept open.
        command("utf8_invalid_in_a_field", b"1\n\xff\xfe\npw", fail("Invalid request: the message is not valid UTF-8")),
        command("utf8_overlong", b"0\xc0\xaf", fail("Invalid request: the message is not valid UTF-8")),
        command("utf8_surrogate", b"3\n\xed\xa0\x80\npw", fail("Invalid request: the message is not valid UTF-8")),
        command("utf8_cut_mid_character", b"2\nbob\nhi\xe2\x82", fail("Invalid request: the message is not valid UTF-8")),
        // Unknown and out-of-range codes.
        command("code_unknown", b"9\nx", fail("invalid command:9")),
        command("code_out_of_range", b"99999999999999999999\n", fail("invalid command:99999999999999999999")),
        command("code_negative", b"-2\n", fail("invalid command:-2")),
        command("code_with_a_space", b" 1\nbob\npw", fail("invalid command: 1")),
        command("code_huge_is_echoed_short", &[b'7'; 5000], fail(&format!("invalid command:{}", "7".repeat(32)))),
        command("code_empty_line", b"\n1\nbob\npw", fail("invalid command:")),
        command("needs_login_first", b"2\nbob\nhi", fail(reply::NEEDS_LOGIN)),
        // Missing and extra fields, newlines where fields end.
        command("login_without_fields", b"1", fail("Invalid request: command 1 needs a username field")),
        command("login_without_password", b"1\nname", fail("Invalid request: command 1 needs a password field")),
        command("register_extra_field", b"3\na\nb\nc", fail("Invalid request: command 3 takes 2 fields, got more (fields cannot contain newlines)")),
        command("register_trailing_newline", b"3\nnewname\npw\n", fail("Invalid request: command 3 takes 2 fields, got more (fields cannot contain newlines)")),
        command("send_without_text", b"2\nbob", fail("Invalid request: command 2 needs a text field")),
        case("list_extra_field", LoggedIn, framed(b"4\na\nb"), vec![fail("Invalid request: command 4 takes 1 fields, got more (fields cannot contain newlines)")], Keep),
        command("register_name_with_cr", b"3\ncrlf\r\npw", fail("Invalid username: use 1 to 32 characters of A-Z a-z 0-9 _ . -")),
        // Oversized and empty names and passwords.
        command("register_name_33_chars", format!("3\n{}\npw", "n".repeat(33)).as_bytes(), fail("Invalid username: use 1 to 32 characters of A-Z a-z 0-9 _ . -")),
        command("register_name_empty", b"3\n\npw", fail("Invalid username: use 1 to 32 characters of A-Z a-z 0-9 _ . -")),
        command("register_password_129_bytes", format!("3\nlongpw\n{}", "p".repeat(129)).as_bytes(), fail("Invalid password: use 1 to 128 bytes")),
        command("register_password_empty", b"3\nnopw\n", fail("Invalid password: use 1 to 128 bytes")),
        command("login_password_129_bytes", format!("1\nsomeone\n{}", "p".repeat(129)).as_bytes(), fail(reply::LOGIN_FAILED)),
        // Relay handshakes that lie.
        // A refused bare handshake is simply closed (the original client prints every frame).
        case("relay_for_a_user_without_session", Relay, framed(b"{user}nobody"), vec![], Close),
        case("relay_with_a_made_up_ticket", Relay, framed(b"{user}\n0123456789abcdef0123456789abcdef"), vec![fail("Relay refused: unknown or already used ticket")], Close),
        case("relay_with_three_fields", Relay, framed(b"{user}\na\nb"), vec![fail("Invalid request: command relay handshake takes 2 fields, got more (fields cannot contain newlines)")], Close),
        case("relay_hello_not_utf8", Relay, framed(b"\xff\xfe"), vec![fail("Invalid request: the message is not valid UTF-8")], Close),
        case("relay_hello_bad_header", Relay, b"bob!      ".to_vec(), vec![bad_header()], Close),
        case("relay_hello_9999999999", Relay, b"9999999999".to_vec(), vec![too_large(9_999_999_999, 8192)], Close),
        // A bound relay that sends what it should not: a failure frame on a ticketed relay;
        // nothing on a bare one (the original client would show it as a message), whose
        // closing is a plain close.
        case("relay_ack_without_ticket", BoundRelay, framed(b"7\n1"), vec![], Keep),
        case("relay_unknown_code", TicketedRelay, framed(b"8\n1"), vec![fail("invalid command:8")], Keep),
        case("relay_unknown_code_bare", BoundRelay, framed(b"8\n1"), vec![], Keep),
        case("relay_frame_over_its_limit", TicketedRelay, b"300       ".to_vec(), vec![too_large(300, 256)], Close),
        case("relay_frame_over_its_limit_bare", BoundRelay, b"300       ".to_vec(), vec![], Close),
    ];
    cases.sort_by_key(|c| c.name);
    cases
}

fn expand(bytes: &[u8], user: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("{user}") && std::str::from_utf8(bytes).is_ok() {
        text.replace("{user}", user).into_bytes()
    } else {
        bytes.to_vec()
    }
}

/// Re-frames a framed input whose body holds `{user}`, since expanding changes its length.
fn input_for(case: &Case, user: &str) -> Vec<u8> {
    let expanded = expand(&case.input, user);
    if expanded.len() == case.input.len() || case.input.len() < 10 {
        return expanded;
    }
    framed(&expand(&case.input[10..], user))
}

fn check_replies(case: &Case, got: &[String]) {
    assert_eq!(got.len(), case.replies.len(), "{}: replies {got:?}", case.name);
    for (got, want) in got.iter().zip(&case.replies) {
        match want {
            Expect::Exact(want) => assert_eq!(got, want, "{}", case.name),
            Expect::Prefix(want) => {
                assert!(got.starts_with(want.as_str()), "{}: {got:?}", case.name)
            }
        }
    }
}

/// The push of "still here" from `user` to itself, as a bare or a ticketed relay shows it.
fn assert_push(got: &str, user: &str, case: &Case) {
    let bare = format!("0\n{user}:still here");
    let ticketed = format!("\n{user}\nstill here");
    assert!(got == bare || got.starts_with("7\n") && got.ends_with(&ticketed), "{}", case.name);
}

// ---- over real TCP ------------------------------------------------------------------------------

fn tcp_server(change: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    start_with(|config| {
        config.seed = Some(7);
        change(config);
    })
}

/// The case's connection, and the command connection of its user (kept open so the session
/// lives, and used to check a kept relay).
fn tcp_setup(server: &ServerHandle, case: &Case, user_name: &str) -> (Conn, Option<Conn>) {
    match case.setup {
        Setup::Command => (Conn::connect(server.command_addr()), None),
        Setup::LoggedIn => (user(server, user_name), None),
        Setup::Relay => {
            let owner = user(server, user_name);
            (Conn::connect(server.relay_addr()), Some(owner))
        }
        Setup::BoundRelay => {
            let owner = user(server, user_name);
            (bare_relay(server, user_name), Some(owner))
        }
        Setup::TicketedRelay => {
            let mut owner = user(server, user_name);
            (ticket_relay(server, &mut owner, user_name), Some(owner))
        }
    }
}

fn tcp_write(conn: &mut Conn, bytes: &[u8], piece_len: usize) {
    conn.stream.set_nodelay(true).expect("nodelay");
    if piece_len == 0 {
        return conn.raw(bytes);
    }
    for piece in bytes.chunks(piece_len) {
        conn.stream.write_all(piece).expect("write");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn tcp_run(server: &ServerHandle, case: &Case, index: usize) {
    let user_name = format!("tcp{index}");
    let (mut conn, mut owner) = tcp_setup(server, case, &user_name);
    tcp_write(&mut conn, &input_for(case, &user_name), case.piece_len);
    let got: Vec<String> = case.replies.iter().map(|_| conn.recv()).collect();
    check_replies(case, &got);
    match (case.after, &mut owner) {
        (After::Close, _) => conn.assert_closed(),
        (After::Keep, None) => assert!(conn.request("0").starts_with(HELP_PREFIX), "{}", case.name),
        (After::Keep, Some(owner)) => {
            assert_eq!(
                owner.request(&format!("2\n{user_name}\nstill here")),
                "0\nSent to recipient"
            );
            assert_push(&conn.recv(), &user_name, case);
        }
    }
}

/// How many cases the catalogue lists: both runs below must run every one of them.
const CASES: usize = 55;

#[test]
fn the_catalogue_has_every_case_once() {
    let names: Vec<&str> = catalogue().iter().map(|c| c.name).collect();
    assert_eq!(names.len(), CASES, "the catalogue lists {} cases", names.len());
    let mut unique = names.clone();
    unique.dedup();
    assert_eq!(unique, names, "a case name is listed twice");
}

#[test]
fn catalogue_over_tcp() {
    let cases = catalogue();
    assert_eq!(cases.len(), CASES);
    let server = tcp_server(|_| {});
    for (index, case) in cases.iter().enumerate() {
        tcp_run(&server, case, index);
        assert_others_still_chat(&server);
    }
    server.shutdown();
}

// ---- against the core -----------------------------------------------------------------------------

fn core_config() -> Config {
    Config {
        connections_per_peer_max: 1_000,
        registrations_per_peer_max: 100_000,
        bare_relay_allowed: true,
        ..Config::default()
    }
}

fn core_user(driver: &mut CoreDriver, name: &str) -> chatroom::core::ConnId {
    let conn = driver.open(Channel::Command, 1);
    driver.feed(conn, &framed(format!("3\n{name}\npw").as_bytes()));
    assert_eq!(driver.take(conn), vec!["0\nSuccessful Created and logged in"]);
    conn
}

fn core_run(driver: &mut CoreDriver, case: &Case, index: usize) {
    let user_name = format!("core{index}");
    let (conn, owner) = match case.setup {
        Setup::Command => (driver.open(Channel::Command, 1), None),
        Setup::LoggedIn => (core_user(driver, &user_name), None),
        Setup::Relay | Setup::BoundRelay | Setup::TicketedRelay => {
            let owner = core_user(driver, &user_name);
            let relay = driver.open(Channel::Relay, 1);
            match case.setup {
                Setup::BoundRelay => driver.feed(relay, &framed(user_name.as_bytes())),
                Setup::TicketedRelay => {
                    driver.feed(owner, &framed(b"6"));
                    let ticket = driver.take(owner).remove(0);
                    let ticket = ticket.strip_prefix("0\n").expect("a ticket");
                    driver.feed(relay, &framed(format!("{user_name}\n{ticket}").as_bytes()));
                }
                _ => {}
            }
            (relay, Some(owner))
        }
    };
    let input = input_for(case, &user_name);
    let pieces: Vec<&[u8]> =
        if case.piece_len == 0 { vec![&input] } else { input.chunks(case.piece_len).collect() };
    for piece in pieces {
        driver.feed(conn, piece);
    }
    check_replies(case, &driver.take(conn));
    match (case.after, owner) {
        (After::Close, _) => {
            assert_eq!(driver.state(conn), ConnState::ClosedByServer, "{}", case.name)
        }
        (After::Keep, None) => {
            driver.feed(conn, &framed(b"0"));
            let got = driver.take(conn);
            assert!(got.len() == 1 && got[0].starts_with(HELP_PREFIX), "{}: {got:?}", case.name);
        }
        (After::Keep, Some(owner)) => {
            driver.feed(owner, &framed(format!("2\n{user_name}\nstill here").as_bytes()));
            assert_eq!(driver.take(owner), vec!["0\nSent to recipient"]);
            let got = driver.take(conn);
            assert_eq!(got.len(), 1, "{}: {got:?}", case.name);
            assert_push(&got[0], &user_name, case);
        }
    }
}

fn core_control_pair(driver: &mut CoreDriver, index: usize) {
    let (a, b) = (format!("ctl{index}a"), format!("ctl{index}b"));
    let alice = core_user(driver, &a);
    let bob = core_user(driver, &b);
    let relay = driver.open(Channel::Relay, 1);
    driver.feed(relay, &framed(b.as_bytes()));
    driver.feed(alice, &framed(format!("2\n{b}\nping").as_bytes()));
    assert_eq!(driver.take(alice), vec!["0\nSent to recipient"]);
    assert_eq!(driver.take(relay), vec![format!("0\n{a}:ping")]);
    driver.feed(bob, &framed(b"-1\n"));
    assert_eq!(driver.take(bob), vec!["0\nLogging out"]);
}

#[test]
fn catalogue_against_the_core() {
    let mut driver = CoreDriver::new(core_config());
    let cases = catalogue();
    assert_eq!(cases.len(), CASES);
    for (index, case) in cases.iter().enumerate() {
        core_run(&mut driver, case, index);
        core_control_pair(&mut driver, index);
    }
}

// ---- over TCP: lengths, cut bodies, floods, memory, slow readers, lying relays ------------------

/// A bare handshake long after the login is refused. Only a lower bound on time matters here:
/// the sleep makes at least 400 ms pass between the login's reply and the handshake, however
/// slow the machine, so the 300 ms window has always passed.
#[test]
fn a_bare_relay_handshake_long_after_the_login_is_refused() {
    let server = tcp_server(|config| config.core.bare_relay_window_ms = 300);
    let _carol = user(&server, "carol");
    std::thread::sleep(Duration::from_millis(400));
    let mut late = bare_relay(&server, "carol");
    // Refused by a plain close: a bare relay gets no failure frame.
    late.assert_closed();
    assert_others_still_chat(&server);
    server.shutdown();
}

/// Every declared length from 0 to 9999999999: up to the limit the body is read and answered and
/// the connection kept; above it the header alone is refused and the connection closed.
#[test]
fn declared_lengths_from_0_to_9999999999() {
    let server = tcp_server(|_| {});
    let lengths: [u64; 20] = [
        0,
        1,
        2,
        9,
        10,
        11,
        99,
        100,
        1000,
        8191,
        8192,
        8193,
        10_000,
        65_535,
        65_536,
        65_537,
        1 << 20,
        99_999_999,
        999_999_999,
        9_999_999_999,
    ];
    for len in lengths {
        let mut conn = Conn::connect(server.command_addr());
        if len <= 8192 {
            conn.raw(&framed(&vec![b'z'; len as usize]));
            let echoed = "z".repeat((len as usize).min(32));
            assert_eq!(conn.recv(), format!("-1\ninvalid command:{echoed}"), "length {len}");
            assert!(conn.request("0").starts_with(HELP_PREFIX), "length {len}");
        } else {
            conn.raw(format!("{len:<10}").as_bytes());
            let Expect::Exact(want) = too_large(len, 8192) else { unreachable!() };
            assert_eq!(conn.recv(), want, "length {len}");
            conn.assert_closed();
        }
    }
    assert_others_still_chat(&server);
    server.shutdown();
}

/// Waits until the server runs `threads` connection threads (threads notice a closed socket on
/// their own).
fn wait_threads(server: &ServerHandle, threads: usize) {
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    while server.connection_threads() != threads {
        assert!(
            std::time::Instant::now() < deadline,
            "{} threads remain",
            server.connection_threads()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A body cut short, then the connection closed (half or fully): the server lets go of it.
#[test]
fn body_cut_short_then_closed() {
    let server = tcp_server(|_| {});
    let baseline = server.connection_threads();
    for half in [false, true] {
        let mut conn = Conn::connect(server.command_addr());
        conn.raw(b"100       only ten b");
        if half {
            conn.stream.shutdown(Shutdown::Write).expect("shutdown");
            conn.assert_closed();
        }
        drop(conn);
        wait_threads(&server, baseline);
    }
    // The same from a logged-in user, whose session must end with it.
    let mut conn = user(&server, "cutter");
    let mut relay = bare_relay(&server, "cutter");
    wait_relay(&server, "cutter");
    conn.raw(b"5000      2\ncutter\nstart of a long text");
    drop(conn);
    relay.assert_closed();
    wait_no_relay(&server, "cutter");
    assert_others_still_chat(&server);
    server.shutdown();
}

/// A body cut short on a connection that stays open: the frame deadline closes it.
#[test]
fn body_cut_short_then_silent_times_out() {
    let server = tcp_server(|config| config.core.frame_deadline_ms = 300);
    let mut conn = Conn::connect(server.command_addr());
    conn.raw(b"100       only ten b");
    assert!(conn.recv().starts_with("-1\nTimed out waiting for the rest of a frame"));
    conn.assert_closed();
    assert_others_still_chat(&server);
    server.shutdown();
}

/// Connections that never send a byte: others chat meanwhile, and each gets the login timeout
/// and is closed.
#[test]
fn flood_of_connections_that_never_send_a_byte() {
    let server = tcp_server(|config| {
        config.core.connections_per_peer_max = 5_000;
        config.core.login_deadline_ms = 2_000;
    });
    let mut silent: Vec<Conn> = (0..300).map(|_| Conn::connect(server.command_addr())).collect();
    silent.extend((0..100).map(|_| Conn::connect(server.relay_addr())));
    assert_others_still_chat(&server);
    for conn in &mut silent[..300] {
        assert!(conn.recv().starts_with("-1\nLogin timed out"));
        conn.assert_closed();
    }
    for conn in &mut silent[300..] {
        assert_eq!(conn.recv(), "-1\nRelay handshake timed out");
        conn.assert_closed();
    }
    assert_others_still_chat(&server);
    server.shutdown();
}

/// A client that never reads its relay: its pushes back up until the write timeout closes the
/// relay; senders are never blocked, others keep chatting, and what was not written stays
/// queued for the next relay, in order.
#[test]
fn a_client_that_never_reads_its_relay() {
    let server = tcp_server(|config| config.write_timeout_ms = 500);
    let mut alice = user(&server, "alice");
    let _bob = user(&server, "bob");
    let stuck = bare_relay(&server, "bob");
    wait_relay(&server, "bob");
    let text = "x".repeat(60_000);
    for i in 0..300 {
        assert_eq!(alice.request(&format!("2\nbob\n{i:03}{text}")), "0\nSent to recipient");
    }
    assert_others_still_chat(&server);
    wait_no_relay(&server, "bob");
    let queued = server.queue_len("bob").expect("bob exists");
    assert!(queued > 0, "the kernel cannot have taken 18 MB");
    drop(stuck);
    let _bob = user(&server, "bob");
    let mut relay = bare_relay(&server, "bob");
    let first = 300 - queued;
    for i in first..300 {
        assert_eq!(relay.recv(), format!("0\nalice:{i:03}{text}"));
    }
    server.shutdown();
}

/// Relay handshakes that lie, where the lie needs a second connection or a real ticket. The
/// bare handshakes here must land within the default window after their login (ten seconds,
/// not a few hundred milliseconds that a loaded machine could overrun).
#[test]
fn relay_handshakes_that_lie() {
    let server = tcp_server(|_| {});
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    // A second relay for a session that has one.
    let mut first = bare_relay(&server, "bob");
    wait_relay(&server, "bob");
    let mut second = bare_relay(&server, "bob");
    second.assert_closed();
    assert_eq!(alice.request("2\nbob\nstill mine"), "0\nSent to recipient");
    assert_eq!(first.recv(), "0\nalice:still mine");
    // A ticket used twice.
    let relay = support::ticket_relay(&server, &mut alice, "alice");
    wait_relay(&server, "alice");
    let ticket = alice.request("6");
    let ticket = ticket.strip_prefix("0\n").expect("a ticket");
    drop(relay);
    wait_no_relay(&server, "alice");
    let mut relay = Conn::connect(server.relay_addr());
    relay.send(&format!("alice\n{ticket}"));
    wait_relay(&server, "alice");
    let mut again = Conn::connect(server.relay_addr());
    again.send(&format!("alice\n{ticket}"));
    assert_eq!(again.recv(), "-1\nRelay refused: unknown or already used ticket");
    again.assert_closed();
    // Someone else's ticket.
    let theirs = bob.request("6");
    let theirs = theirs.strip_prefix("0\n").expect("a ticket");
    let mut thief = Conn::connect(server.relay_addr());
    thief.send(&format!("alice\n{theirs}"));
    assert_eq!(thief.recv(), "-1\nRelay refused: the ticket belongs to another session");
    thief.assert_closed();
    assert_eq!(bob.request("2\nalice\nfine"), "0\nSent to recipient");
    let push = relay.recv();
    assert!(push.starts_with("7\n") && push.ends_with("\nbob\nfine"), "{push:?}");
    assert_others_still_chat(&server);
    server.shutdown();
}
