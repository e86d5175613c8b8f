//! The pure server state machine.
pub mod record;
