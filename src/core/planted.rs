//! Bugs planted on purpose, compiled only into tests, to prove that the checkers (simulator,
//! model checker, proptest) notice them. Each variant names the bug and the check that must
//! catch it; the hooks in the core are one-line calls to the functions below, which do nothing
//! unless [`Config::planted`](super::Config) names their bug.

use std::collections::VecDeque;
use std::sync::Arc;

use super::names::name_key;
use super::server::{queued_cost, Queued, Role, Server};
use super::{AccountId, ConnId, MsgId, Output, Record};
use crate::wire::reply;

/// Which bug to plant. `None` is the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    #[default]
    None,
    /// A connection's undecoded bytes are never limited; `fuzzing::CoreDriver`'s memory bound
    /// must catch it.
    InboundUnbounded,
    /// Deleting an account leaves its queue behind, and a later account with the same name
    /// inherits it. Caught by the model checker's "reused name" invariant.
    DeleteKeepsQueue,
    /// A login that takes over another session drops the first message queued for the user.
    /// Caught by the "acknowledged message lost" invariant.
    TakeoverLosesMessage,
    /// The user list still shows deleted accounts. Caught by comparing replies with the model.
    ListShowsDeleted,
    /// When a relay detaches, the first message still queued for it is marked delivered (a
    /// requeue that drops a message). The simulator's liveness check must catch it.
    DropOnDetach,
    /// Visible outputs leave before the records they depend on are durable (the outbox ignores
    /// its gate). A crash then forgets acknowledged changes: the simulator must notice, and so
    /// must `fuzzing::CoreDriver`'s acknowledgement check.
    ReplyBeforeDurable,
    /// A relay handshake binds to the named user's account whatever the session, address or
    /// time (the original server's hole). The simulator's intruder relays must receive nothing.
    BindByNameOnly,
    /// A freshly attached relay gets its first two queued messages in the wrong order.
    RequeueOutOfOrder,
    /// Bare relay handshakes are accepted whatever `Config::bare_relay_allowed` says (the
    /// check reads the old opt-out default). Anyone on the host can read a user's messages.
    BareRelayByDefault,
    /// The throttle checks before a password job starts but counts only when it finishes, so
    /// concurrent guesses all get verified.
    ThrottleCountedLate,
    /// Failed guesses are counted per name over every address, so an attacker's five guesses
    /// lock the owner out from everywhere.
    ThrottleLocksOwner,
    /// Registrations are counted against the address's limit when their hash finishes, not
    /// when it starts, so a concurrent burst all gets through.
    RegistrationUnlimited,
    /// Empty texts are accepted (the check was lost when the text field became optional).
    EmptyTextAccepted,
    /// Recovery replays a torn last record (its text cut short) as if it were whole. This one
    /// lives in the simulator's store model (`sim::disk`), not in the core.
    ReplayTornRecord,
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
        self.queued_bytes += queue.iter().map(|q| queued_cost(&q.text)).sum::<u64>();
        let accounts = Arc::make_mut(&mut self.accounts);
        Arc::make_mut(accounts.get_mut(&account).expect("just registered")).queue = queue;
    }

    /// Hook in `log_in`: a takeover drops the oldest queued message.
    pub(super) fn planted_takeover_loss(&mut self, account: AccountId) {
        if self.config.planted != Planted::TakeoverLosesMessage
            || !self.sessions.contains_key(&account)
        {
            return;
        }
        let accounts = Arc::make_mut(&mut self.accounts);
        let queue =
            &mut Arc::make_mut(accounts.get_mut(&account).expect("logged-in account")).queue;
        if let Some(lost) = queue.pop_front() {
            self.queued_bytes -= queued_cost(&lost.text);
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

    /// [`Planted::DropOnDetach`]: marks the first queued message of `account` delivered.
    pub(super) fn planted_drop_first(&mut self, account: AccountId) {
        let first = self.accounts.get(&account).and_then(|a| a.queue.front()).map(|q| q.id);
        if let Some(id) = first {
            self.commit(Record::Delivered { to: account, ids: vec![id] });
        }
    }

    /// [`Planted::RequeueOutOfOrder`]: on a fresh relay, pushes the first two queued messages
    /// swapped. Returns whether it did (the caller then pushes the rest as usual).
    pub(super) fn planted_swap_first_two(&mut self, account: AccountId, relay: ConnId) -> bool {
        let Some(Role::Relay(binding)) = self.conns.get_mut(&relay).map(|c| &mut c.role) else {
            return false;
        };
        let Some(state) = self.accounts.get(&account) else { return false };
        if binding.pushed_through != MsgId(0) || state.queue.len() < 2 {
            return false;
        }
        for index in [1, 0] {
            let queued = &state.queue[index];
            let frame = if binding.acks {
                reply::push_acked(queued.id.0, &queued.from, &queued.text)
            } else {
                reply::push_plain(&queued.from, &queued.text)
            };
            let output = Output::Push { conn: relay, msg: queued.id, frame };
            self.outbox.push_gated(self.last_lsn, output, false);
        }
        binding.pushed_through = state.queue[1].id;
        true
    }
}
