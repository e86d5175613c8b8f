//! The vocabulary shared by the reference model and the driver of the real core: users, the
//! steps a scenario is made of, and what a step makes each connection observe.
//!
//! Users are numbered `0..n` and named `u0`, `u1`, ... (names of equal length, so that renaming
//! users is a symmetry of the server). Every user's password is [`PASSWORD`]. The `k`-th send
//! of a user carries the text `m{k}`, so a message is identified by (sender, k) everywhere.

use std::collections::BTreeMap;
use std::fmt;

/// A user of a scenario, by index.
pub type User = u8;

/// The password every scenario user registers and logs in with.
pub const PASSWORD: &str = "pw";

/// The most users a scenario may have (symmetry reduction tries every permutation).
pub const USERS_MAX: usize = 5;

/// The name of user `user` (a table, since names are needed on every step).
pub fn user_name(user: User) -> &'static str {
    const NAMES: [&str; USERS_MAX] = ["u0", "u1", "u2", "u3", "u4"];
    NAMES[user as usize]
}

/// The user called `name`, if it is a scenario user's name.
pub fn user_of_name(name: &str) -> Option<User> {
    name.strip_prefix('u')?.parse().ok()
}

/// The text of the `seq`-th message a user sends.
pub fn message_text(seq: u32) -> String {
    format!("m{seq}")
}

/// The `seq` of a message text, if it is a scenario message.
pub fn message_seq(text: &str) -> Option<u32> {
    text.strip_prefix('m')?.parse().ok()
}

/// A message, named by its sender and the sender's send counter when it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgKey {
    pub from: User,
    pub seq: u32,
}

/// What a user asks of the server (one unit of the user's operation budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `3 name pw` on the user's command connection (opened first if there is none).
    Register,
    /// `1 name pw`; if the user is logged in already, from a new connection (a takeover).
    Login,
    /// `-1`.
    Logout,
    /// `2 to m{k}`.
    Send { to: User },
    /// `4` (all users).
    List,
    /// `5 name pw`: delete one's own account.
    Delete,
    /// Open a relay connection and send the bare-username handshake (the original client).
    Relay,
    /// `6` for a ticket, then open a relay with `name\nTICKET`; its pushes are acknowledged.
    TicketRelay,
    /// Open a relay with a bare handshake naming another user (an intruder's attempt).
    RelayAs { target: User },
}

/// One step of a scenario: an operation, a fault, or the relay thread reporting a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Op {
        user: User,
        op: Op,
    },
    /// The oldest unconfirmed push on `user`'s relay is confirmed: reported written by the relay
    /// thread (bare relay) or acknowledged by the client (ticketed relay). Not budgeted: it is
    /// the scheduler's choice, not the user's.
    Confirm {
        user: User,
    },
    /// Fault: the user's command connection is reset.
    DropCommand {
        user: User,
    },
    /// Fault: the user's relay connection is reset.
    DropRelay {
        user: User,
    },
    /// Fault: the server crashes and restarts from its durable records.
    Crash,
}

impl Step {
    /// The user the step belongs to (none for a crash).
    pub fn user(self) -> Option<User> {
        match self {
            Step::Op { user, .. }
            | Step::Confirm { user }
            | Step::DropCommand { user }
            | Step::DropRelay { user } => Some(user),
            Step::Crash => None,
        }
    }

    /// Whether this step spends the fault budget.
    pub fn is_fault(self) -> bool {
        matches!(self, Step::DropCommand { .. } | Step::DropRelay { .. } | Step::Crash)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Register => write!(f, "register"),
            Op::Login => write!(f, "login"),
            Op::Logout => write!(f, "logout"),
            Op::Send { to } => write!(f, "send {}", user_name(*to)),
            Op::List => write!(f, "list"),
            Op::Delete => write!(f, "delete"),
            Op::Relay => write!(f, "relay"),
            Op::TicketRelay => write!(f, "relay-ticket"),
            Op::RelayAs { target } => write!(f, "relay-as {}", user_name(*target)),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Op { user, op } => write!(f, "{} {op}", user_name(*user)),
            Step::Confirm { user } => write!(f, "{} relay-confirms", user_name(*user)),
            Step::DropCommand { user } => write!(f, "{} drop-command", user_name(*user)),
            Step::DropRelay { user } => write!(f, "{} drop-relay", user_name(*user)),
            Step::Crash => write!(f, "crash"),
        }
    }
}

/// Which of a user's connections a frame was seen on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Port {
    /// The command connection the user's requests go to.
    Command,
    /// A command connection the user left behind when logging in from a new one.
    OldCommand,
    /// The relay that was bound before the step.
    Relay,
    /// The relay opened by this step's handshake.
    NewRelay,
}

/// What one connection saw: a frame body, or the server closing it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    Frame(String),
    Closed,
}

impl fmt::Display for Seen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seen::Frame(body) => write!(f, "{body:?}"),
            Seen::Closed => write!(f, "<closed>"),
        }
    }
}

/// Everything a step made the clients observe, per (user, connection), in arrival order.
pub type Observed = BTreeMap<(User, Port), Vec<Seen>>;
