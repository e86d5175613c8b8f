//! The deterministic simulator: the real [`crate::core::Server`] in a seeded world of simulated
//! clients, network, disk and time, checked as it runs.
pub mod cli;
pub mod options;
pub mod scenario;
