//! Persistence of the core's records.
