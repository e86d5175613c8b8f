//! chatroom: a chat server whose core is a pure state machine, and the tools that prove it right.
pub mod auth;
pub mod core;
pub mod net;
pub mod store;
pub mod wire;
