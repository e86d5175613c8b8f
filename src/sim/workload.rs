//! The random workload: what a seeded client does next, given what it believes its state is.
//!
//! Names come from a small pool (`u0`, `u1`, ...) so that clients collide on names, take over
//! each other's sessions, and re-register names that were deleted. Passwords are fixed per name
//! (`pw-NAME`) except for a few deliberate wrong ones. Logged-in clients sometimes pipeline a
//! burst of sends written in one go.

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::scenario::Op;

/// Which random workload clients follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Workload {
    /// Every operation, collisions on names, wrong passwords, intruders.
    Mixed,
    /// Each client registers its own name, opens a relay and then only sends: for throughput.
    Chat,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Workload::Mixed => "mixed",
            Workload::Chat => "chat",
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

fn credentials(rng: &mut ChaCha20Rng, names: usize) -> (String, String) {
    let name = pool_name(rng, names);
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

/// The next operation of a random client.
pub fn choose(rng: &mut ChaCha20Rng, view: View<'_>, names: usize) -> Op {
    if !view.connected {
        return Op::Connect;
    }
    let roll = rng.gen_range(0..100);
    let Some(me) = view.session else {
        return match roll {
            0..=29 => {
                let name = pool_name(rng, names);
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
        0..=59 => Op::Send { to: pool_name(rng, names), text: "hi".into() },
        60..=65 => {
            Op::List { pattern: if rng.gen_bool(0.5) { String::new() } else { "u*".into() } }
        }
        66..=69 => Op::Logout,
        70..=71 => Op::Delete { name: me.to_owned(), password: password_of(me) },
        72..=74 => Op::CloseRelay,
        75..=76 => Op::RelayAs { name: pool_name(rng, names) },
        77..=79 => Op::Disconnect,
        80..=81 => Op::Help,
        82..=86 => {
            let (name, password) = credentials(rng, names);
            Op::Login { name, password }
        }
        87..=89 => {
            let name = pool_name(rng, names);
            let password = password_of(&name);
            Op::Register { name, password }
        }
        90..=92 => Op::Burst { to: pool_name(rng, names), count: burst_len(rng) },
        _ => Op::Idle,
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
