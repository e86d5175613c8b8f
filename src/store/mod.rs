//! Persistence of the core's records.
pub mod codec;
pub mod disk;
