//! The one vocabulary of broken invariants, shared by the simulator (`sim::check`) and the
//! model checker (`model::invariants`).
//!
//! An [`Invariant`] is named by the sentence that states it ("no acknowledged message is
//! lost"), so a failure reads the same whichever tool found it, and a counterexample of the
//! model checker replayed in the simulator can be matched to the simulator's own verdict. A
//! [`Violation`] is one broken invariant with what exactly was seen, and when, where the tool
//! has a clock.

use std::fmt;

use thiserror::Error;

/// A statement every run of the server must keep, named by a sentence that states it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Invariant(&'static str);

impl Invariant {
    /// The invariant that `sentence` states.
    pub const fn new(sentence: &'static str) -> Self {
        Invariant(sentence)
    }

    /// The sentence that states it.
    pub const fn sentence(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl PartialEq<&str> for Invariant {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<Invariant> for &str {
    fn eq(&self, other: &Invariant) -> bool {
        *self == other.0
    }
}

/// A broken invariant, with what exactly was seen.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{invariant}: {detail}")]
pub struct Violation {
    pub invariant: Invariant,
    pub detail: String,
    /// When it was seen, in the simulator's milliseconds; `None` in the model checker, whose
    /// steps have no clock (its counterexample's length says when).
    pub at_ms: Option<u64>,
}

impl Violation {
    /// `invariant` broken, as `detail` tells, at no particular time.
    pub fn new(invariant: Invariant, detail: impl Into<String>) -> Self {
        Violation { invariant, detail: detail.into(), at_ms: None }
    }

    /// `invariant` broken at `at_ms`, as `detail` tells.
    pub fn at(at_ms: u64, invariant: Invariant, detail: impl Into<String>) -> Self {
        Violation { invariant, detail: detail.into(), at_ms: Some(at_ms) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invariant_is_its_sentence() {
        let lost = Invariant::new("no acknowledged message is lost");
        assert_eq!(lost, "no acknowledged message is lost");
        assert_ne!(lost, "per-sender order is kept");
        let violation = Violation::at(7, lost, "m1");
        assert_eq!(violation.to_string(), "no acknowledged message is lost: m1");
        assert_eq!(violation.at_ms, Some(7));
        assert_eq!(Violation::new(lost, "m1").at_ms, None);
    }
}
