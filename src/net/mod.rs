//! The TCP adapter.
pub mod cli;
pub mod mailbox;
pub mod sync;
