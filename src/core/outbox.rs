//! The core's output queue and its durability gate.
//!
//! Records and password jobs leave at once; everything visible to clients waits, in order,
//! until every record emitted before it is durable.

use std::collections::VecDeque;

use super::{Lsn, Output};

#[derive(Debug, Clone, Default)]
pub(crate) struct Outbox {
    immediate: VecDeque<Output>,
    /// Visible outputs with the last lsn emitted when they were produced.
    gated: VecDeque<Gated>,
}

#[derive(Debug, Clone)]
struct Gated {
    after: Lsn,
    output: Output,
    /// A reply that answers a request (as opposed to an unsolicited failure before a close).
    answers_request: bool,
}

/// An output released by [`Outbox::pop`], with whether it answers a request.
pub(crate) struct Released {
    pub output: Output,
    pub answers_request: bool,
}

impl Outbox {
    pub fn push_immediate(&mut self, output: Output) {
        self.immediate.push_back(output);
    }

    pub fn push_gated(&mut self, after: Lsn, output: Output, answers_request: bool) {
        self.gated.push_back(Gated { after, output, answers_request });
    }

    pub fn pop(&mut self, durable: Lsn) -> Option<Released> {
        if let Some(output) = self.immediate.pop_front() {
            return Some(Released { output, answers_request: false });
        }
        if self.gated.front()?.after > durable {
            return None;
        }
        let gated = self.gated.pop_front()?;
        Some(Released { output: gated.output, answers_request: gated.answers_request })
    }

    /// The gated output [`Outbox::pop`] would release next, if no immediate one comes first.
    #[cfg(test)]
    pub fn next_gated(&self) -> Option<&Output> {
        self.immediate.is_empty().then(|| self.gated.front().map(|g| &g.output)).flatten()
    }

    pub fn len(&self) -> usize {
        self.immediate.len() + self.gated.len()
    }
}
