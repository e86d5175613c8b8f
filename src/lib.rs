//! chatroom: a chat server whose core is a pure state machine, and the tools that prove it right.
pub mod auth;
pub mod bench;
pub mod client;
pub mod core;
pub mod fuzzing;
pub mod host;
pub mod invariant;
pub mod model;
pub mod net;
pub mod results;
pub mod sim;
pub mod store;
pub mod strength;
pub mod wire;
