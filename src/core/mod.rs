//! The pure server state machine: every rule of PROTOCOL.md, and nothing else.
//!
//! [`Server`] never touches the network, the disk, a clock, a thread or a global random
//! generator. Its owner (the TCP adapter in [`crate::net`], the simulator, the model checker)
//! feeds it [`Input`]s, each carrying the current time, and drains [`Output`]s:
//!
//! ```text
//!   handle_input(Input { now_ms, event })      Opened / Received / Closed / Written /
//!                                               Durable / PasswordDone / Tick
//!   while let Some(out) = poll_output() { .. }  Persist / Password / Reply / Push / Close
//!   poll_timeout()                              the next deadline, if any
//! ```
//!
//! **Drain rule.** After every `handle_input`, call `poll_output` until it returns `None`, then
//! `poll_timeout` to learn when to feed the next [`Event::Tick`]. Outputs come in two classes:
//! [`Output::Persist`] and [`Output::Password`] are released at once; everything the outside
//! world sees ([`Output::Reply`], [`Output::Push`], [`Output::Close`]) is released, in the order
//! it was produced, only once every record persisted before it is durable (the owner reports that
//! with [`Event::Durable`]). So a reply never acknowledges a change that a crash could undo, and a
//! push never delivers a message that a crash could forget.
//!
//! Password hashing is slow on purpose, so the core does not do it: it emits an
//! [`Output::Password`] job and continues with that connection when [`Event::PasswordDone`]
//! comes back. Further bytes of a busy connection wait, undecoded, in its buffer.

mod command;
mod config;
mod names;
mod outbox;
#[cfg(any(test, feature = "planted"))]
pub mod planted;
pub mod record;
mod relay;
mod server;
mod shared;
mod throttle;
mod timers;

pub use config::Config;
pub use names::{glob_match, validate_name, validate_password, Glob};
pub use record::{AccountId, Lsn, MsgId, Record};
pub use server::{Held, ReplayError, Server, SnapshotView, MESSAGE_OVERHEAD_BYTES};

/// A connection, numbered by the owner; unique for the life of the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

/// Which port a connection arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Channel {
    /// Requests and replies.
    Command,
    /// Pushed messages.
    Relay,
}

/// The peer's address, as an opaque number (an IPv6 address, IPv4 mapped into it). The core only
/// compares peers; it never needs to know what they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer(pub u128);

/// A password job handed out by [`Output::Password`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

/// One thing that happened, and when.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// Milliseconds since an epoch the owner chooses; never goes backwards.
    pub now_ms: u64,
    pub event: Event<'a>,
}

/// What happened.
#[derive(Debug, Clone)]
pub enum Event<'a> {
    /// A connection was accepted on `channel`.
    Opened { conn: ConnId, channel: Channel, peer: Peer },
    /// Bytes arrived, in whatever pieces the transport produced.
    Received { conn: ConnId, bytes: &'a [u8] },
    /// The connection is gone (closed by the peer, reset, or closed after an [`Output::Close`]).
    Closed { conn: ConnId },
    /// The relay `conn` wrote every push up to and including `last` to its socket.
    Written { conn: ConnId, last: MsgId },
    /// The command connection `conn` wrote `count` more reply frames to its socket. Until
    /// replies are reported written, the core decodes at most `Config::pipeline_len_max`
    /// requests of a connection ahead of them.
    RepliesWritten { conn: ConnId, count: u32 },
    /// Every record up to and including `lsn` is durable.
    Durable { lsn: Lsn },
    /// A password job finished.
    PasswordDone { job: JobId, outcome: PasswordOutcome },
    /// Nothing happened but time passed (a deadline from `poll_timeout` was reached).
    Tick,
}

/// What the owner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Append this record to the log; report [`Event::Durable`] once it is synced.
    Persist { lsn: Lsn, record: Record },
    /// Run a password job off the lock and report [`Event::PasswordDone`].
    Password(PasswordJob),
    /// Write this frame on `conn` (a reply on a command connection, a failure frame on a relay).
    Reply { conn: ConnId, frame: Vec<u8> },
    /// Write this push frame on the relay `conn`, then report [`Event::Written`].
    Push { conn: ConnId, msg: MsgId, frame: Vec<u8> },
    /// Write everything queued for `conn` before this, then close it and report
    /// [`Event::Closed`].
    Close { conn: ConnId },
}

/// Hash a new password or verify one against a stored hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordJob {
    pub job: JobId,
    /// The connection that waits for it (so the owner can run it on that connection's thread).
    pub conn: ConnId,
    pub password: String,
    pub work: PasswordWork,
}

/// The two kinds of password job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordWork {
    /// Hash `password` with this salt into a PHC string.
    Hash { salt: [u8; 16] },
    /// Check `password` against a PHC string. `None` means there is no such account: spend the
    /// same effort and answer `false`, so timing does not reveal which names exist.
    Verify { hash: Option<String> },
}

/// The result of a [`PasswordJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    Hashed(String),
    Verified(bool),
}

#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
