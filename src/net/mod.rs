//! The TCP adapter: real sockets in front of the pure core.
//!
//! Two listeners (command and relay ports). Per client a command thread (reads requests,
//! writes replies, runs password jobs off the lock) and, for its relay, a relay thread that
//! blocks on the connection's [`mailbox`](crate::host::mailbox) until the host hands it
//! pushes; one reader thread for every relay's handshake and acknowledgements, which also reads
//! a command connection ahead of the replies its thread waits for. Everything those
//! threads decide beyond blocking and moving bytes is the [`host`](crate::host)'s, which sits
//! behind one mutex (see `driver`). A timer thread feeds the core's deadlines. Nothing polls
//! or sleeps.
//!
//! Every primitive the threads share comes from [`crate::host::sync`], which becomes loom's
//! under `cfg(loom)`.

pub mod cli;
mod command;
mod config;
mod demo;
mod driver;
mod handle;
mod hashing;
mod limits;
mod listener;
#[cfg(loom)]
pub mod loom_models;
mod persist;
mod relay;
mod relay_reader;
mod socket;
#[cfg(test)]
mod tests;
mod threads;
mod timer;

pub use config::ServerConfig;
pub use demo::DEMO_ACCOUNTS;
pub use handle::ServerHandle;
