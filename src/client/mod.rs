//! Client library and interactive terminal client.
pub mod cli;
