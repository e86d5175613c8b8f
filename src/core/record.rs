//! The records the core asks its owner to persist, and the identifiers they carry.
//!
//! Every durable change of the server's state is one [`Record`]. The live path builds a record,
//! applies it to the state through [`crate::core::Server`]'s single `apply` function and hands it
//! out as [`crate::core::Output::Persist`]; recovery feeds the same records back through the same
//! function. A snapshot is simply the shortest list of records that rebuilds the current state.

/// A registered account. Ids are never reused, so a later account that takes a deleted name is
/// a different account and can never receive what was addressed to the old one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AccountId(pub u64);

/// A chat message, numbered in the order the server accepted it (globally increasing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub u64);

/// Log sequence number: the position of a record in the stream of records the core emitted.
/// The first record has `Lsn(1)`; `Lsn(0)` means "nothing".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

/// One durable change of state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An account was created. `name` is spelled as registered; `password_hash` is a PHC string
    /// (argon2id).
    Register { account: AccountId, name: String, password_hash: String },
    /// An account was deleted: its queue is discarded and its name is free again.
    Delete { account: AccountId },
    /// A message was accepted for `to`. `from` is the sender's name as shown to the recipient.
    Message { id: MsgId, from: String, to: AccountId, text: String },
    /// Messages were delivered to (written to or acknowledged by) `to`'s relay and leave its queue.
    Delivered { to: AccountId, ids: Vec<MsgId> },
}
