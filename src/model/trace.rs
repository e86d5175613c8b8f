//! Counterexamples for people (a numbered list of steps) and for the simulator (a scenario file
//! that `chatroom sim --replay FILE` runs).
//!
//! The scenario file follows the simulator's format, version 1 (documented in
//! `src/sim/scenario.rs`). The translation:
//! - user `uN` is scripted client `N`; a login from a new connection (a takeover) is played by a
//!   further client, numbered after the users, that logs in as the same user;
//! - steps are one second apart, so each completes before the next begins;
//! - `relay-confirms` steps become comments: the simulator's relay reports its writes by itself,
//!   so the file fixes the order of requests and faults, not the moment each write is reported;
//! - `crash` restarts after 100 ms.

use std::fmt::Write as _;

use super::explorer::Counterexample;
use super::invariants::Violation;
use super::reference::Model;
use super::step::{message_text, user_name, Op, Step, User};

/// A violation by its short name, as the model checker's files name it (`message-lost: ...`).
fn short(violation: &Violation) -> String {
    format!("{}: {}", violation.invariant.name(), violation.detail)
}

/// The trace as a numbered list, ending with the violation.
pub fn describe(counterexample: &Counterexample) -> String {
    let mut out = String::new();
    let steps = &counterexample.steps;
    let _ = writeln!(out, "shortest counterexample ({} steps):", steps.len());
    for (at, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {:>3}. {step}", at + 1);
    }
    let _ = writeln!(out, "violated: {}", short(&counterexample.violation));
    out
}

/// The trace as a simulator scenario file.
pub fn to_sim_scenario(counterexample: &Counterexample, command: &str) -> String {
    let users = counterexample.users;
    // The client that currently plays each user's command connection and relay.
    let mut command_client: Vec<usize> = (0..users).collect();
    let mut relay_client: Vec<usize> = (0..users).collect();
    // The model knows who is logged in (to spot takeovers); every step but the last agreed
    // with the core.
    let mut model = Model::new(users);
    let last = counterexample.steps.len().saturating_sub(1);
    let mut sends = vec![0u32; users];
    let mut clients = users;
    let mut lines = Vec::new();
    for (at, &step) in counterexample.steps.iter().enumerate() {
        let at_ms = (at as u64 + 1) * 1_000;
        let line = match step {
            Step::Op { op: Op::ReplayTicket { .. } | Op::ForgeAck { .. }, .. } => {
                format!("# step {}: {step} (the simulator's scenarios cannot express it)", at + 1)
            }
            Step::Op { user, op } => {
                let u = user as usize;
                if op == Op::Login && model.logged_in(user) {
                    command_client[u] = clients;
                    clients += 1;
                }
                if matches!(op, Op::Relay | Op::TicketRelay) {
                    relay_client[u] = command_client[u];
                }
                let text = op_text(user, op, &mut sends[u]);
                format!("at {at_ms} client {} {text}", command_client[u])
            }
            Step::Confirm { user } => {
                format!(
                    "# step {}: {} relay confirms a push (written or acknowledged)",
                    at + 1,
                    user_name(user)
                )
            }
            Step::DropCommand { user } => {
                format!("at {at_ms} fault reset {} command", command_client[user as usize])
            }
            Step::DropRelay { user } => {
                format!("at {at_ms} fault reset {} relay", relay_client[user as usize])
            }
            // The simulator's disk syncs on its own clock and draws what a crash keeps.
            Step::Stall | Step::Sync => format!("# step {}: {step}", at + 1),
            Step::Guess { .. } | Step::GuessChecked { .. } | Step::Hijack { .. } => {
                format!("# step {}: {step} (the simulator's scenarios cannot express it)", at + 1)
            }
            Step::Crash { .. } => format!("at {at_ms} crash 100"),
        };
        if at < last {
            model.apply(step);
        }
        lines.push(line);
    }
    let mut out = String::from("chatroom-sim 1\n");
    let _ = writeln!(out, "# written by: {command}");
    let _ = writeln!(out, "# violated: {}", short(&counterexample.violation));
    for (user, client) in command_client.iter().enumerate().filter(|(u, c)| *u != **c) {
        let _ = writeln!(
            out,
            "# client {client} is {} logging in from a second connection",
            user_name(user as User)
        );
    }
    out.push_str("seed 0\n");
    let _ = writeln!(out, "clients {clients}");
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn op_text(user: User, op: Op, sends: &mut u32) -> String {
    let name = user_name(user);
    match op {
        Op::Register => format!("register {name} pw"),
        Op::Login => format!("login {name} pw"),
        Op::Logout => "logout".to_owned(),
        Op::Send { to } => {
            let text = message_text(*sends);
            *sends += 1;
            format!("send {} {text}", user_name(to))
        }
        Op::List => "list".to_owned(),
        Op::Delete => format!("delete {name} pw"),
        Op::Relay => "relay bare".to_owned(),
        Op::TicketRelay => "relay ticket".to_owned(),
        Op::RelayAs { target } => format!("relay-as {}", user_name(target)),
        Op::ReplayTicket { .. } | Op::ForgeAck { .. } => unreachable!("written as comments"),
    }
}
