//! Bugs planted on purpose, compiled only into tests, to prove that the checkers (simulator,
//! model checker, proptest) notice them. Each variant names the bug and the check that must
//! catch it; the hooks in the core are one-line calls to the functions below, which do nothing
//! unless [`Config::planted`](super::Config) names their bug.

use std::collections::VecDeque;
use std::sync::Arc;

use super::names::name_key;
use super::server::{queued_cost, Queued, Role, Server};
use super::{AccountId, ConnId, Lsn, MsgId, Output, Record};
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
    /// A send's acknowledgement leaves before the message's record is durable (the outbox
    /// ignores its gate for it). A crash then loses an acknowledged message: the simulator's
    /// "no acknowledged message is lost" must notice, and so must `fuzzing::CoreDriver`'s
    /// acknowledgement check. Only sends, so that the bug is reported under the one invariant
    /// that names it rather than as a forgotten registration or deletion.
    ReplyBeforeDurable,
    /// A relay handshake binds to the named user's account whatever the session, address or
    /// time (the original server's hole). The simulator's intruder relays must receive nothing.
    BindByNameOnly,
    /// A freshly attached relay gets its first two queued messages in the wrong order.
    RequeueOutOfOrder,
    /// The core decodes every pipelined request it has bytes for, however many replies are
    /// still unwritten (the pipelining bug the host issue found): a burst overflows the
    /// connection's outgoing queue. Caught by the simulator's "every request is answered".
    PipelineUnbounded,
    /// A new relay gets the account's queued messages while the original client's previous
    /// relay is still being closed, so a push that relay's writer still holds is written on
    /// both. Found by the simulator's "an original client's message is written once" (the
    /// first wave's behaviour).
    PushBeforeOldRelayEnds,
    /// The host lets a command thread read while replies are still owed, so the thread sits
    /// in `read` while its replies wait in the mailbox. The simulator's "every request is
    /// answered" must catch the stuck client.
    HostReadsWhileOwed,
    /// The host tells the core a connection is closed as soon as the core asks to close it,
    /// before the writer has flushed and reported what it wrote: those reports are ignored
    /// and the messages pushed again. Caught by "an original client's message is written
    /// once" (and by loom's relay models).
    HostClosesEarly,
    /// The host's drain treats every sink as synchronous and reports records durable as soon
    /// as they are handed to the log, so replies leave before the fsync. A crash then forgets
    /// acknowledged messages: the simulator's "no acknowledged message is lost".
    HostAssumesSyncSink,
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
    /// lives in the real log's recovery (`store::wal`, switched on by
    /// `StoreOptions::replay_torn_tail`), not in the core.
    ReplayTornRecord,
    /// An acknowledgement removes the message from the queue of whichever account holds it
    /// (looked up by the message id, the wrong key) instead of the relay's own account, so one
    /// user's relay can acknowledge away another user's messages. Found by the model checker's
    /// forged acknowledgements (`forge-ack-of`) as a lost message.
    AckOfAnotherAccount,
    /// A ticket is looked up but not spent by the handshake that presents it (a `get` where a
    /// `remove` was meant), so a replayed ticket binds a second relay. Found by the model
    /// checker's replayed tickets (`replay-ticket-of`) as a reply the model does not expect.
    TicketReusable,
}

impl Server {
    /// The durable lsn the outbox releases against: [`Planted::ReplyBeforeDurable`] treats
    /// everything as durable while the next output is a send's acknowledgement.
    #[cfg(test)]
    pub(super) fn planted_release_bound(&self) -> Lsn {
        let ack = |o: &Output| matches!(o, Output::Reply { frame, .. } if frame.ends_with(reply::SEND_OK.as_bytes()));
        let planted = self.config.planted == Planted::ReplyBeforeDurable;
        if planted && self.outbox.next_gated().is_some_and(ack) {
            self.last_lsn
        } else {
            self.durable_lsn
        }
    }

    /// Hook in `acknowledged`: [`Planted::AckOfAnotherAccount`] takes the account to remove
    /// the messages from from the first acknowledged id.
    pub(super) fn planted_ack_account(&self, to: AccountId, ids: &[MsgId]) -> AccountId {
        if self.config.planted != Planted::AckOfAnotherAccount {
            return to;
        }
        let Some(first) = ids.first() else { return to };
        let holds = |(_, account): &(&AccountId, &Arc<super::server::Account>)| {
            account.queue.binary_search_by_key(first, |q| q.id).is_ok()
        };
        self.accounts.iter().find(holds).map_or(to, |(&id, _)| id)
    }

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
            self.outbox.push_gated(self.last_lsn, output);
        }
        binding.pushed_through = state.queue[1].id;
        true
    }
}
