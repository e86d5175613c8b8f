//! The deterministic simulator.
pub mod cli;
