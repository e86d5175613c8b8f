//! The reference model of the chat semantics, and an exhaustive explorer that checks the real
//! core against it.
//!
//! - [`step`]: the vocabulary of scenarios (users, operations, faults, what clients observe).
//! - [`reference`](mod@reference): the reference model, written from PROTOCOL.md alone, sharing no code with
//!   the core.
//! - [`driver`]: runs one step on the real [`crate::core::Server`] and on the model, and checks
//!   the [`invariants`].
//! - [`fingerprint`]: canonical, symmetry-reduced state hashes.
//! - [`visited`]: the set of fingerprints seen.
//! - [`explorer`]: breadth-first search over every interleaving, shortest counterexample first.
//! - [`por`]: which steps commute, for the explorer's partial-order reduction (sleep sets).
//! - [`trace`]: counterexamples printed for people and written as scenario files.
//! - [`cli`]: `chatroom check`.
pub mod cli;
pub mod driver;
pub mod explorer;
pub mod fingerprint;
pub mod invariants;
pub mod por;
pub mod reference;
pub mod step;
pub mod trace;
pub mod visited;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
