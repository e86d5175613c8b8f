//! The vocabulary shared by the reference model and the driver of the real core: users, the
//! steps a scenario is made of, and what a step makes each connection observe.
//!
//! Users are numbered `0..n` and named `u0`, `u1`, ... (names of equal length, so that renaming
//! users is a symmetry of the server). Every user's password is [`PASSWORD`]. The `k`-th send
//! of a user carries the text `m{k}`, so a message is identified by (sender, k) everywhere.

use std::borrow::Cow;
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
    /// Open a relay with `target`'s name and the last ticket `target` was granted, already
    /// spent (a replayed or stolen ticket; `target` may be the user).
    ReplayTicket { target: User },
    /// On the user's ticketed relay, acknowledge the oldest message queued for `target`, which
    /// was never pushed on it (a forged, cross-user acknowledgement).
    ForgeAck { target: User },
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
    /// The log's next fsync is slow: records emitted from now on are written but stay unsynced
    /// (and every reply, push or close behind them waits) until [`Step::Sync`]. Otherwise the
    /// driver syncs at the end of every step. Budgeted by [`Bounds::stalls`]. A stall is lazy:
    /// until a record is written it holds nothing back and changes nothing, so its length
    /// ([`Bounds::stall_steps`]) counts from the step that writes its first record, and it ends
    /// (by the sync or a crash) only after that.
    ///
    /// [`Bounds::stalls`]: super::driver::Bounds::stalls
    /// [`Bounds::stall_steps`]: super::driver::Bounds::stall_steps
    Stall,
    /// The slow fsync completes: every record written so far is durable, and the core is told.
    /// Only once the stall holds something back.
    Sync,
    /// Fault: the server crashes and restarts from what its disk holds: every synced record,
    /// the first `kept` unsynced ones and, if `torn`, all but the last byte of the next one
    /// (recovery must cut it).
    Crash {
        kept: u8,
        torn: bool,
    },
    /// An attacker (the user, from an address of its own, not the user's) opens a command
    /// connection and sends `1 target wrong-password`, without waiting for its earlier guesses:
    /// the password job the core starts stays pending until [`Step::GuessChecked`]. Only with
    /// the throttle option; budgeted as an operation.
    Guess {
        user: User,
        target: User,
    },
    /// The oldest pending password job of `user`'s guesses completes (a wrong password), its
    /// failure is answered, and the attacker closes that connection. Not budgeted.
    GuessChecked {
        user: User,
    },
    /// A program of `user` on `target`'s host (so from `target`'s address) opens a relay with a
    /// bare handshake in `target`'s name, racing `target`'s own ticketed relay. Only with the
    /// race option, where the server accepts ticketed handshakes only; budgeted as an
    /// operation.
    Hijack {
        user: User,
        target: User,
    },
}

impl Step {
    /// The user the step belongs to (none for a crash).
    pub fn user(self) -> Option<User> {
        match self {
            Step::Op { user, .. }
            | Step::Confirm { user }
            | Step::DropCommand { user }
            | Step::DropRelay { user }
            | Step::Guess { user, .. }
            | Step::GuessChecked { user }
            | Step::Hijack { user, .. } => Some(user),
            Step::Stall | Step::Sync | Step::Crash { .. } => None,
        }
    }

    /// Whether this step spends the fault budget.
    pub fn is_fault(self) -> bool {
        matches!(self, Step::DropCommand { .. } | Step::DropRelay { .. } | Step::Crash { .. })
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
            Op::ReplayTicket { target } => write!(f, "replay-ticket-of {}", user_name(*target)),
            Op::ForgeAck { target } => write!(f, "forge-ack-of {}", user_name(*target)),
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
            Step::Stall => write!(f, "disk-stalls"),
            Step::Sync => write!(f, "fsync-completes"),
            Step::Guess { user, target } => {
                write!(f, "{} guesses-password-of {}", user_name(*user), user_name(*target))
            }
            Step::GuessChecked { user } => write!(f, "{} guess-checked", user_name(*user)),
            Step::Hijack { user, target } => {
                write!(f, "{} bare-relay-from-host-of {}", user_name(*user), user_name(*target))
            }
            Step::Crash { kept: 0, torn: false } => write!(f, "crash"),
            Step::Crash { kept, torn: false } => write!(f, "crash keeping {kept} unsynced"),
            Step::Crash { kept, torn: true } => {
                write!(f, "crash keeping {kept} unsynced and a torn one")
            }
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

/// What one connection saw: a frame body, or the server closing it. Bodies the model spells
/// are borrowed constants where it can, so predicting a reply rarely allocates.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seen {
    Frame(Cow<'static, str>),
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

/// Everything a step made the clients observe: which (user, connection) saw what, in arrival
/// order. Two are equal when every connection saw the same sequence (arrivals on different
/// connections are not ordered against each other).
#[derive(Clone, Debug, Default)]
pub struct Observed {
    seen: Vec<((User, Port), Seen)>,
}

impl Observed {
    pub fn new() -> Self {
        Observed::default()
    }

    /// `key` saw `what` (after everything it saw before).
    pub fn push(&mut self, key: (User, Port), what: Seen) {
        self.seen.push((key, what));
    }

    /// Every observation, in arrival order.
    pub fn into_items(self) -> Vec<((User, Port), Seen)> {
        self.seen
    }

    /// What `key` saw, in order.
    pub fn of(&self, key: (User, Port)) -> Vec<&Seen> {
        self.seen.iter().filter(|(k, _)| *k == key).map(|(_, s)| s).collect()
    }

    /// The connections that saw something, in order, each once.
    pub fn keys(&self) -> Vec<(User, Port)> {
        let mut keys: Vec<(User, Port)> = self.seen.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The `rank`-th thing `key` saw.
    fn nth_of(&self, key: (User, Port), rank: usize) -> Option<&Seen> {
        self.seen.iter().filter(|(k, _)| *k == key).nth(rank).map(|(_, s)| s)
    }
}

impl PartialEq for Observed {
    /// Every connection's sequence here is a prefix of its sequence there, and both hold as
    /// many observations: the sequences are equal. (Quadratic, over a handful of items.)
    fn eq(&self, other: &Self) -> bool {
        self.seen.len() == other.seen.len()
            && self.seen.iter().enumerate().all(|(at, (key, seen))| {
                let rank = self.seen[..at].iter().filter(|(k, _)| k == key).count();
                other.nth_of(*key, rank) == Some(seen)
            })
    }
}

impl Eq for Observed {}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(text: &'static str) -> Seen {
        Seen::Frame(text.into())
    }

    #[test]
    fn observations_compare_per_connection_in_order() {
        let (a, b) = ((0, Port::Command), (1, Port::Relay));
        let mut one = Observed::new();
        one.push(a, frame("x"));
        one.push(b, frame("y"));
        one.push(a, Seen::Closed);
        let mut interleaved = Observed::new();
        interleaved.push(b, frame("y"));
        interleaved.push(a, frame("x"));
        interleaved.push(a, Seen::Closed);
        assert_eq!(one, interleaved, "connections are not ordered against each other");
        let mut reordered = Observed::new();
        reordered.push(a, Seen::Closed);
        reordered.push(a, frame("x"));
        reordered.push(b, frame("y"));
        assert_ne!(one, reordered, "one connection's order matters");
        let mut elsewhere = Observed::new();
        elsewhere.push(a, frame("x"));
        elsewhere.push(a, frame("y"));
        elsewhere.push(a, Seen::Closed);
        assert_ne!(one, elsewhere, "which connection saw it matters");
        assert_ne!(one, Observed::new());
        assert_eq!(one.keys(), vec![a, b]);
        assert_eq!(one.of(a), vec![&frame("x"), &Seen::Closed]);
    }
}
