//! The TCP adapter: real sockets in front of the pure core.
//!
//! Two listeners (command and relay ports). Per client a command thread (reads requests,
//! drives the core, writes replies, runs password jobs off the lock) and, for its relay, a
//! relay thread that blocks on the connection's [`mailbox`] until the core hands it pushes,
//! plus a reader for the relay's handshake and acknowledgements. The core sits behind one
//! mutex; whoever feeds it drains its outputs into the connections' mailboxes before letting
//! go (see `driver`). A timer thread feeds the core's deadlines. Nothing polls or sleeps.
//!
//! Every primitive the threads share comes from [`sync`], which becomes loom's under
//! `cfg(loom)`.

pub mod cli;
mod command;
mod config;
mod demo;
mod driver;
mod handle;
mod hashing;
mod listener;
#[cfg(loom)]
pub mod loom_models;
pub mod mailbox;
mod persist;
mod relay;
mod socket;
pub mod sync;
mod threads;
mod timer;

pub use config::ServerConfig;
pub use demo::DEMO_ACCOUNTS;
pub use handle::ServerHandle;
