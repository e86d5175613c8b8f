//! The TCP adapter.
