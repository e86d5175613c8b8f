//! The TCP adapter.
pub mod mailbox;
pub mod sync;
