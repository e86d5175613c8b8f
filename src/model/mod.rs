//! Reference model and exhaustive explorer.
pub mod cli;
