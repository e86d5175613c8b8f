//! The invariants checked after every step, and the violation a failed check reports.
//!
//! Each is a statement of PROTOCOL.md that holds whatever the scenario does: an acknowledged
//! message is never lost (only dropped with its recipient's account), never delivered twice to
//! one relay, kept in order per sender, never delivered to another user or to a later account
//! that reused a deleted name; no command but login and register succeeds without a login; one
//! live session per user; the core's replies and state agree with the reference model; nothing
//! leaves the core before the records emitted before it are durable; and recovery returns
//! exactly a prefix of what was written that holds everything synced.

use std::fmt;

use thiserror::Error;

/// The statement that was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Invariant {
    /// An acknowledged message disappeared without being delivered or its recipient deleted.
    MessageLost,
    /// A relay received the same message twice.
    DeliveredTwice,
    /// A relay received messages of one sender out of order.
    OutOfOrder,
    /// A message went to (or waits for) a user it was not addressed to.
    WrongRecipient,
    /// A message addressed to a deleted account went to (or waits for) a later account that
    /// took the same name.
    ReusedName,
    /// A command that needs a login succeeded without one.
    CommandWithoutLogin,
    /// A user has more than one live session.
    TwoSessions,
    /// What the clients observed differs from what the reference model predicts.
    ReplyDisagrees,
    /// The core's accounts, queues or sessions differ from the reference model's.
    StateDisagrees,
    /// A reply, push or close left the core while a record emitted before it was not yet
    /// durable (the write-ahead rule).
    ReleasedEarly,
    /// Recovery after a crash returned records that were never written, or lost synced ones.
    RecoveryWrong,
}

impl Invariant {
    /// A stable, short name (used in traces and scenario files).
    pub fn name(self) -> &'static str {
        match self {
            Invariant::MessageLost => "message-lost",
            Invariant::DeliveredTwice => "delivered-twice",
            Invariant::OutOfOrder => "out-of-order",
            Invariant::WrongRecipient => "wrong-recipient",
            Invariant::ReusedName => "reused-name",
            Invariant::CommandWithoutLogin => "command-without-login",
            Invariant::TwoSessions => "two-sessions",
            Invariant::ReplyDisagrees => "reply-disagrees",
            Invariant::StateDisagrees => "state-disagrees",
            Invariant::ReleasedEarly => "released-early",
            Invariant::RecoveryWrong => "recovery-wrong",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant, with what exactly was seen.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{invariant}: {detail}")]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Self {
        Violation { invariant, detail: detail.into() }
    }
}

/// Fails with `invariant` unless `ok`.
pub fn ensure(
    ok: bool,
    invariant: Invariant,
    detail: impl FnOnce() -> String,
) -> Result<(), Violation> {
    if ok {
        Ok(())
    } else {
        Err(Violation::new(invariant, detail()))
    }
}
