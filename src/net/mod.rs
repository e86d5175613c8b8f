//! The TCP adapter.
pub mod cli;
