//! loom models of the shipped command/relay thread pair (compiled only under `cfg(loom)`).
//!
//! Each model runs the real `Shared` (the real core behind its one lock, with the real router
//! into mailboxes), the real `CommandConn::run`, `RelayConn::write_loop` and
//! `RelayConn::read_loop` bodies (and a log writer reporting through `Shared::durable`), over
//! an in-memory socket, on loom threads; `tests/loom_glue.rs`
//! explores them. Models are public functions so that the integration test can drive them while
//! the adapter's types stay crate-private.

mod memsocket;
mod models;
mod rig;

pub use models::{
    ack_racing_redelivery, durable_report_racing_send, durable_report_writes_through,
    push_racing_close, read_ahead_racing_reply, relay_hangup_mid_write, relay_mid_write_racing,
    send_wakes_blocked_relay, shutdown_with_threads_blocked, Racer,
};
pub use rig::{Fixture, LogQueue, PASSWORD};
