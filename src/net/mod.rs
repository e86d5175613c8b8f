//! The TCP adapter.
pub mod sync;
