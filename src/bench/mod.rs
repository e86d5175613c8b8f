//! Benchmarks over real TCP.
pub mod cli;
