//! The invariants checked after every step, in the vocabulary the simulator shares
//! ([`crate::invariant`]): each a sentence, with a short name for the model checker's files.
//!
//! Each is a statement of PROTOCOL.md that holds whatever the scenario does: an acknowledged
//! message is never lost (only dropped with its recipient's account), never delivered twice to
//! one relay, kept in order per sender, never delivered to another user or to a later account
//! that reused a deleted name; no command but login and register succeeds without a login; one
//! live session per user; the core's replies and state agree with the reference model; nothing
//! leaves the core before the records emitted before it are durable; and recovery returns
//! exactly a prefix of what was written that holds everything synced; and, with the hostile
//! options, the throttle bounds the wrong-password checks that ran per name and address and per
//! address, and a relay opened by one user receives no other user's messages.

pub use crate::invariant::{Invariant, Violation};

/// The model checker's invariants, named like the enum variants they were
/// (`Invariant::MessageLost`), so the checks read as before; each is a sentence in the
/// simulator's style, the same sentence where the simulator checks the same statement.
#[allow(non_upper_case_globals)]
impl Invariant {
    /// An acknowledged message disappeared without being delivered or its recipient deleted.
    pub const MessageLost: Invariant = Invariant::new("no acknowledged message is lost");
    /// A relay received the same message twice.
    pub const DeliveredTwice: Invariant = Invariant::new("nothing is delivered twice to one relay");
    /// A relay received messages of one sender out of order.
    pub const OutOfOrder: Invariant = Invariant::new("per-sender order is kept");
    /// A message went to (or waits for) a user it was not addressed to.
    pub const WrongRecipient: Invariant = Invariant::new("nothing is delivered to another user");
    /// A message addressed to a deleted account went to (or waits for) a later account that
    /// took the same name.
    pub const ReusedName: Invariant =
        Invariant::new("nothing is delivered to another account (a reused name)");
    /// A command that needs a login succeeded without one.
    pub const CommandWithoutLogin: Invariant =
        Invariant::new("no command succeeds without a login");
    /// A user has more than one live session.
    pub const TwoSessions: Invariant = Invariant::new("a user has at most one live session");
    /// What the clients observed differs from what the reference model predicts.
    pub const ReplyDisagrees: Invariant =
        Invariant::new("what clients observe agrees with the reference model");
    /// The core's accounts, queues or sessions differ from the reference model's.
    pub const StateDisagrees: Invariant =
        Invariant::new("the core's accounts, queues and sessions agree with the reference model");
    /// A reply, push or close left the core while a record emitted before it was not yet
    /// durable (the write-ahead rule).
    pub const ReleasedEarly: Invariant =
        Invariant::new("nothing leaves the core before the records emitted before it are durable");
    /// Recovery after a crash returned records that were never written, or lost synced ones.
    pub const RecoveryWrong: Invariant =
        Invariant::new("recovery returns a prefix of what was written that holds all it synced");
    /// More wrong-password checks ran for one name from one address than the throttle's
    /// per-account limit allows (counted from the password jobs the model completed).
    pub const GuessesPerAccount: Invariant =
        Invariant::new("the throttle bounds password guesses per account");
    /// More wrong-password checks ran from one address than its limit allows.
    pub const GuessesPerAddress: Invariant =
        Invariant::new("the throttle bounds password guesses per address");
    /// A relay opened by one user received a message addressed to another (a handshake bound
    /// to a session that was not its own).
    pub const RelayOwnUser: Invariant =
        Invariant::new("a relay receives only its own user's messages");

    /// Every invariant the model checker checks, with its short name.
    pub const MODEL: [(Invariant, &'static str); 14] = [
        (Invariant::MessageLost, "message-lost"),
        (Invariant::DeliveredTwice, "delivered-twice"),
        (Invariant::OutOfOrder, "out-of-order"),
        (Invariant::WrongRecipient, "wrong-recipient"),
        (Invariant::ReusedName, "reused-name"),
        (Invariant::CommandWithoutLogin, "command-without-login"),
        (Invariant::TwoSessions, "two-sessions"),
        (Invariant::ReplyDisagrees, "reply-disagrees"),
        (Invariant::StateDisagrees, "state-disagrees"),
        (Invariant::ReleasedEarly, "released-early"),
        (Invariant::RecoveryWrong, "recovery-wrong"),
        (Invariant::GuessesPerAccount, "guesses-per-account"),
        (Invariant::GuessesPerAddress, "guesses-per-address"),
        (Invariant::RelayOwnUser, "relay-own-user"),
    ];

    /// A stable, short name for the model checker's traces, scenario files and result rows
    /// (`message-lost`); the sentence for an invariant the model checker does not check.
    pub fn name(self) -> &'static str {
        Invariant::MODEL
            .iter()
            .find(|(invariant, _)| *invariant == self)
            .map_or(self.sentence(), |&(_, name)| name)
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
