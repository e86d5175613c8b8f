//! The one switch for the concurrency primitives of the TCP adapter.
//!
//! Everything in `src/net` that threads share (the mailbox between a command thread and its
//! relay, the core's mutex, shutdown flags) takes its `Arc`, `Mutex`, `Condvar`, atomics and
//! `thread` from here, never from `std` directly. Normally these are `std`'s; built with
//! `RUSTFLAGS="--cfg loom"` they are [loom]'s, whose scheduler then explores every
//! interleaving of the real code. That is the point of the switch: loom checks the code that
//! ships, not a copy of it written for the test. A `std::sync` import elsewhere in `src/net`
//! would silently escape that check.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread;

#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

/// Atomic integers and flags, from `std` or from loom like the rest of this module.
pub mod atomic {
    #[cfg(not(loom))]
    pub use std::sync::atomic::*;

    #[cfg(loom)]
    pub use loom::sync::atomic::*;
}
