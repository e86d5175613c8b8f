//! Bugs planted on purpose, compiled only into tests, to prove that the checkers (simulator,
//! model checker, proptest) notice them. Each variant names the bug and the check that must
//! catch it; the hooks in the core are one-line calls to the functions below, which do nothing
//! unless [`Config::planted`](super::Config) names their bug.

use std::collections::VecDeque;

use super::names::name_key;
use super::server::{Queued, Server};
use super::AccountId;

/// Which bug to plant. `None` is the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    #[default]
    None,
    /// A connection's undecoded bytes are never limited; `fuzzing::CoreDriver`'s memory bound
    /// must catch it.
    InboundUnbounded,
    /// Replies leave without waiting for durability; `fuzzing::CoreDriver`'s acknowledgement
    /// check must catch it.
    ReplyBeforeDurable,
    /// Deleting an account leaves its queue behind, and a later account with the same name
    /// inherits it. Caught by the model checker's "reused name" invariant.
    DeleteKeepsQueue,
    /// A login that takes over another session drops the first message queued for the user.
    /// Caught by the "acknowledged message lost" invariant.
    TakeoverLosesMessage,
    /// The user list still shows deleted accounts. Caught by comparing replies with the model.
    ListShowsDeleted,
}

impl Server {
    /// Hook in `apply(Delete)`: remembers what the deletion should have forgotten.
    pub(super) fn planted_bury(&mut self, name: &str, queue: &VecDeque<Queued>) {
        if matches!(self.config.planted, Planted::DeleteKeepsQueue | Planted::ListShowsDeleted) {
            self.graveyard.push((name.to_owned(), queue.clone()));
        }
    }

    /// Hook in `apply(Register)`: the new account inherits the queue of a deleted namesake.
    pub(super) fn planted_adopt_queue(&mut self, account: AccountId) {
        if self.config.planted != Planted::DeleteKeepsQueue {
            return;
        }
        let key = name_key(&self.accounts[&account].name);
        let Some(at) = self.graveyard.iter().position(|(name, _)| name_key(name) == key) else {
            return;
        };
        let (_, queue) = self.graveyard.remove(at);
        self.queued_bytes += queue.iter().map(|q| q.text.len() as u64).sum::<u64>();
        self.accounts.get_mut(&account).expect("just registered").queue = queue;
    }

    /// Hook in `log_in`: a takeover drops the oldest queued message.
    pub(super) fn planted_takeover_loss(&mut self, account: AccountId) {
        if self.config.planted != Planted::TakeoverLosesMessage
            || !self.sessions.contains_key(&account)
        {
            return;
        }
        let queue = &mut self.accounts.get_mut(&account).expect("logged-in account").queue;
        if let Some(lost) = queue.pop_front() {
            self.queued_bytes -= lost.text.len() as u64;
        }
    }

    /// Hook in `list`: deleted names are listed too.
    pub(super) fn planted_list_deleted(&self, text: &mut String) {
        if self.config.planted == Planted::ListShowsDeleted {
            for (name, _) in &self.graveyard {
                text.push_str(name);
                text.push(' ');
            }
        }
    }
}
