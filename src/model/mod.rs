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
//! - [`estimate`]: how many states a search too large to run would find (`check --estimate`).
//! - [`census`]: what tells the states of a search apart, measured (`check --census`).
//! - [`cli`]: `chatroom check`.
/// Implements `Clone` for a struct field by field, with a `clone_from` that reuses each field's
/// allocations (derived `Clone` drops the old value and allocates afresh). The explorer copies a
/// state per transition into one scratch state per thread, so the copies it makes and drops
/// mostly reuse buffers. Every field must be listed: the destructuring in `clone` is exhaustive,
/// so a field added later and not listed does not compile.
macro_rules! clone_reusing {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        impl Clone for $ty {
            fn clone(&self) -> Self {
                let $ty { $($field),* } = self;
                $ty { $($field: Clone::clone($field)),* }
            }

            fn clone_from(&mut self, source: &Self) {
                let $ty { $($field),* } = self;
                $(Clone::clone_from($field, &source.$field);)*
            }
        }
    };
}

pub mod census;
pub mod cli;
pub mod driver;
pub mod estimate;
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
