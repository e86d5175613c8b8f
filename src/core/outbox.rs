//! The core's output queue and its durability gate.
//!
//! Records and password jobs leave at once; everything visible to clients waits, in order,
//! until every record emitted before it is durable.

use std::collections::VecDeque;

use super::{Lsn, Output};

#[derive(Debug, Default)]
pub(crate) struct Outbox {
    immediate: VecDeque<Output>,
    /// Visible outputs with the last lsn emitted when they were produced.
    gated: VecDeque<Gated>,
}

/// `clone_from` keeps the queues' buffers (derived `Clone` would drop and allocate them).
impl Clone for Outbox {
    fn clone(&self) -> Self {
        Outbox { immediate: self.immediate.clone(), gated: self.gated.clone() }
    }

    fn clone_from(&mut self, source: &Self) {
        self.immediate.clone_from(&source.immediate);
        self.gated.clone_from(&source.gated);
    }
}

#[derive(Debug, Clone)]
struct Gated {
    after: Lsn,
    output: Output,
}

impl Outbox {
    pub fn push_immediate(&mut self, output: Output) {
        self.immediate.push_back(output);
    }

    pub fn push_gated(&mut self, after: Lsn, output: Output) {
        self.gated.push_back(Gated { after, output });
    }

    pub fn pop(&mut self, durable: Lsn) -> Option<Output> {
        if let Some(output) = self.immediate.pop_front() {
            return Some(output);
        }
        if self.gated.front()?.after > durable {
            return None;
        }
        self.gated.pop_front().map(|gated| gated.output)
    }

    /// The gated output [`Outbox::pop`] would release next, if no immediate one comes first.
    #[cfg(any(test, feature = "planted"))]
    pub fn next_gated(&self) -> Option<&Output> {
        self.immediate.is_empty().then(|| self.gated.front().map(|g| &g.output)).flatten()
    }

    pub fn len(&self) -> usize {
        self.immediate.len() + self.gated.len()
    }
}
