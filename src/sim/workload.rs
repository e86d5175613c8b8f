//! The random workload: what a seeded client does next, given what it believes its state is.
//!
//! Names come from a small pool (`u0`, `u1`, ...) so that clients collide on names, take over
//! each other's sessions, and re-register names that were deleted. Passwords are fixed per name
//! (`pw-NAME`) except for a few deliberate wrong ones. Logged-in clients sometimes pipeline a
//! burst of sends written in one go.
//!
//! Clients are also a little hostile (the [`Workload::Hostile`] workload makes it the norm): they
//! sometimes spell a name in another case (`U1` for `u1`, the same user), list with `*` and `?`
//! anywhere in the pattern, and perform the acts of [`Hostile`]: lying acknowledgements, stolen,
//! replayed and expired tickets, frames at and over the limits (the command channel's and the
//! relay's), forbidden headers.

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::scenario::{Hostile, Op, BAD_HEADERS};
use super::spec::{NAME_LEN_MAX, PASSWORD_LEN_MAX};

/// Which random workload clients follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Every operation, collisions on names, wrong passwords, intruders.
    Mixed,
    /// Each client registers its own name, opens a relay and then only sends: for throughput.
    Chat,
    /// The mixed workload with hostile acts as the norm rather than the exception.
    Hostile,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Workload::Mixed => "mixed",
            Workload::Chat => "chat",
            Workload::Hostile => "hostile",
        })
    }
}

/// What a random client believes about itself.
#[derive(Debug, Clone, Copy)]
pub struct View<'a> {
    /// The client's number.
    pub me: usize,
    pub connected: bool,
    pub session: Option<&'a str>,
    pub relay: bool,
}

/// The password that logs in as `name` in random runs.
pub fn password_of(name: &str) -> String {
    format!("pw-{}", name.to_ascii_lowercase())
}

fn pool_name(rng: &mut ChaCha20Rng, names: usize) -> String {
    // Not format!: this runs once per random send.
    let mut digits = itoa::Buffer::new();
    ["u", digits.format(rng.gen_range(0..names.max(1)))].concat()
}

/// A pool name, sometimes spelled in upper case (`U1`): the same user to the server.
fn cased_name(rng: &mut ChaCha20Rng, names: usize, hostile_percent: u32) -> String {
    let name = pool_name(rng, names);
    if rng.gen_range(0..100) < hostile_percent.max(2) {
        name.to_ascii_uppercase()
    } else {
        name
    }
}

/// A name to register: a quarter of them spelled in upper case, so that accounts whose names
/// are not lower case are common, and every later request naming them in lower case (most of
/// them) must find them.
fn registered_name(rng: &mut ChaCha20Rng, names: usize) -> String {
    cased_name(rng, names, 25)
}

/// A list pattern: mostly all names or `u*`, sometimes a pool name with `?` and `*` put
/// anywhere in it (`?1`, `u*1*`, `U?`, `*0`, `u1?`), or with one of its letters asked for
/// twice (`*u*u1`): a matcher that lets two segments overlap takes the one for both.
fn list_pattern(rng: &mut ChaCha20Rng, names: usize, hostile_percent: u32) -> String {
    let roll = rng.gen_range(0..100);
    if roll >= 20 + hostile_percent {
        return if rng.gen_bool(0.5) { String::new() } else { "u*".into() };
    }
    let name = cased_name(rng, names, hostile_percent);
    let mut pattern = String::new();
    for c in name.chars() {
        match rng.gen_range(0..7) {
            0 => pattern.push('?'),
            1 => pattern.push('*'),
            2 => {
                pattern.push('*');
                pattern.push(c);
            }
            3 => pattern.extend(['*', c, '*', c]),
            _ => pattern.push(c),
        }
    }
    match rng.gen_range(0..4) {
        0 => pattern.push('?'),
        1 => pattern.insert(0, '*'),
        _ => {}
    }
    pattern
}

/// A hostile act, for a client that is logged in (`session`) or not.
pub fn hostile_act(rng: &mut ChaCha20Rng, session: bool) -> Op {
    const FRAMES: [Hostile; 7] = [
        Hostile::FrameOver,
        Hostile::FrameAtLimit,
        Hostile::BadUtf8,
        Hostile::UnknownCode,
        Hostile::EmptyText,
        Hostile::RelayHelloAtLimit,
        Hostile::RelayHelloOver,
    ];
    const LOGGED_IN: [Hostile; 10] = [
        Hostile::AckForged,
        Hostile::AckEarly,
        Hostile::AckDup,
        Hostile::AckCross,
        Hostile::TicketStolen,
        Hostile::TicketReplay,
        Hostile::TicketExpired,
        Hostile::TicketAfterLogout,
        Hostile::RelayAckAtLimit,
        Hostile::RelayAckOver,
    ];
    let headers = BAD_HEADERS.len();
    let choices = FRAMES.len() + 1 + if session { LOGGED_IN.len() } else { 0 };
    let hostile = match rng.gen_range(0..choices) {
        i if i < FRAMES.len() => FRAMES[i],
        i if i == FRAMES.len() => Hostile::BadHeader(rng.gen_range(0..headers) as u8),
        i => LOGGED_IN[i - FRAMES.len() - 1],
    };
    Op::Hostile(hostile)
}

fn credentials(rng: &mut ChaCha20Rng, names: usize) -> (String, String) {
    let name = cased_name(rng, names, 0);
    let password = if rng.gen_range(0..100) < 5 { "wrong".to_owned() } else { password_of(&name) };
    (name, password)
}

/// The next operation of a client of the chat workload.
pub fn choose_chat(rng: &mut ChaCha20Rng, view: View<'_>, names: usize) -> Op {
    match view {
        View { connected: false, .. } => Op::Connect,
        View { session: None, .. } => {
            let mine = format!("u{}", view.me);
            Op::Register { password: password_of(&mine), name: mine }
        }
        View { relay: false, .. } => Op::Relay { ticket: false },
        _ => Op::Send { to: pool_name(rng, names), text: "hi".into() },
    }
}

/// The next operation of a random client; `hostile_percent` of its operations are hostile
/// acts.
pub fn choose(rng: &mut ChaCha20Rng, view: View<'_>, names: usize, hostile_percent: u32) -> Op {
    if !view.connected {
        return Op::Connect;
    }
    if rng.gen_range(0..100) < hostile_percent {
        return hostile_act(rng, view.session.is_some());
    }
    let roll = rng.gen_range(0..100);
    let Some(me) = view.session else {
        return match roll {
            0..=29 => {
                let name = registered_name(rng, names);
                let password = password_of(&name);
                Op::Register { name, password }
            }
            30..=84 => {
                let (name, password) = credentials(rng, names);
                Op::Login { name, password }
            }
            85..=88 => Op::Send { to: pool_name(rng, names), text: "early".into() },
            89..=91 => Op::Help,
            92..=94 => Op::Disconnect,
            _ => Op::Idle,
        };
    };
    if !view.relay && roll < 60 {
        return Op::Relay { ticket: rng.gen_bool(0.5) };
    }
    match roll {
        0..=59 => Op::Send { to: cased_name(rng, names, hostile_percent), text: "hi".into() },
        60..=65 => Op::List { pattern: list_pattern(rng, names, hostile_percent) },
        66..=69 => Op::Logout,
        70..=71 => delete_request(rng, me, names),
        72..=74 => Op::CloseRelay,
        75..=76 => Op::RelayAs { name: pool_name(rng, names) },
        77..=79 => Op::Disconnect,
        80..=81 => Op::Help,
        82..=86 => {
            let (name, password) = credentials(rng, names);
            Op::Login { name, password }
        }
        87..=89 => {
            let name = registered_name(rng, names);
            let password = password_of(&name);
            Op::Register { name, password }
        }
        90..=92 => Op::Burst { to: pool_name(rng, names), count: burst_len(rng) },
        _ => Op::Idle,
    }
}

/// A deletion: mostly of the client's own account with its password, sometimes with a wrong
/// password, with another account's name and the client's own password, or with another
/// account's name and that account's password (each must be refused: PROTOCOL.md lets a user
/// delete only the account it is logged in as, and only with its password).
fn delete_request(rng: &mut ChaCha20Rng, me: &str, names: usize) -> Op {
    match rng.gen_range(0..8) {
        0 => Op::Delete { name: me.to_owned(), password: "wrong".into() },
        1 => Op::Delete { name: pool_name(rng, names), password: password_of(me) },
        2 => {
            let other = pool_name(rng, names);
            Op::Delete { password: password_of(&other), name: other }
        }
        _ => Op::Delete { name: me.to_owned(), password: password_of(me) },
    }
}

/// How many sends a pipelined burst writes at once: mostly a few, sometimes thousands (more
/// than one read of the server's command thread holds, and more than any queue's bound).
fn burst_len(rng: &mut ChaCha20Rng) -> u32 {
    if rng.gen_bool(0.3) {
        rng.gen_range(100..=3_000)
    } else {
        rng.gen_range(2..=20)
    }
}

/// How many more times a client that just drew `op` sends it as a patient guesser, if it
/// becomes one: a wrong-password login by a client not logged in, now and then, is sent again
/// at once after each failure and again after exactly the wait each throttled reply tells,
/// so that the throttle's doubling back-off reaches its cap: under the shipped limits, the
/// 18th login is the first told a wait at the cap (5 free failures, then six rounds of a
/// throttled reply and a failure, waiting 1 to 32 s). Not many more: each further round waits
/// the whole cap, and a guesser that shares its host with the liveness phase's clients keeps
/// them throttled as long as it guesses (seeds 145 and 355 of the default sweep, when guessers
/// sent up to 30 logins, and seed 1161 of the small swarm when a client could guess again
/// after its run: the owner's client was still throttled when the phase ended). A client
/// guesses patiently once at most.
pub fn patient_guesses(rng: &mut ChaCha20Rng, op: &Op, session: bool) -> Option<u32> {
    let wrong = matches!(op, Op::Login { password, .. } if password == "wrong");
    (wrong && !session && rng.gen_bool(0.2)).then(|| rng.gen_range(18..=20))
}

/// Now and then, the name a registration of `name` uses instead (outside the pool, so never
/// owed a message): exactly PROTOCOL.md's longest ("1 to 32 characters of `A-Z a-z 0-9 _ . -`",
/// which must be accepted), one character longer, or with a character outside the set (both
/// refused).
pub fn odd_name(rng: &mut ChaCha20Rng, name: &str) -> Option<String> {
    if !rng.gen_bool(0.05) {
        return None;
    }
    let odd = match rng.gen_range(0..3) {
        0 | 1 => {
            let len = NAME_LEN_MAX + rng.gen_range(0..2);
            let mut odd = format!("{name}-");
            odd.extend(std::iter::repeat_n('x', len.saturating_sub(odd.len())));
            odd
        }
        _ => format!("{name}-{}", ['+', ' ', '/', 'é'][rng.gen_range(0..4)]),
    };
    Some(odd)
}

/// Now and then, the password a registration of `name` uses instead of its own: its own
/// padded to exactly PROTOCOL.md's limit ("1 to 128 bytes", which must be accepted) or one
/// byte over (which must be refused).
pub fn long_password(rng: &mut ChaCha20Rng, name: &str) -> Option<String> {
    if !rng.gen_bool(0.05) {
        return None;
    }
    let len = PASSWORD_LEN_MAX + usize::from(rng.gen_bool(0.5));
    let mut password = password_of(name);
    password.extend(std::iter::repeat_n('.', len - password.len()));
    Some(password)
}
