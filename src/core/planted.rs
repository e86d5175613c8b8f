//! Bugs planted on purpose, compiled only into tests, to prove that the checkers (simulator,
//! model checker, proptest) notice them. Each variant names the bug and the check that must
//! catch it; the hooks in the core are one-line `if`s on [`Config::planted`](super::Config).

use super::server::{Role, Server};
use super::{AccountId, ConnId, MsgId, Output, Record};
use crate::wire::reply;

/// Which bug to plant. `None` is the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    #[default]
    None,
    /// When a relay detaches, the first message still queued for it is marked delivered (a
    /// requeue that drops a message). The simulator's liveness check must catch it.
    DropOnDetach,
    /// Visible outputs leave before the records they depend on are durable (the outbox ignores
    /// its gate). A crash then forgets acknowledged changes; the simulator must notice.
    ReplyBeforeDurable,
    /// A relay handshake binds to the named user's account whatever the session, address or
    /// time (the original server's hole). The simulator's intruder relays must receive nothing.
    BindByNameOnly,
    /// A freshly attached relay gets its first two queued messages in the wrong order.
    RequeueOutOfOrder,
    /// Recovery replays a torn last record (its text cut short) as if it were whole. This one
    /// lives in the simulator's store model (`sim::disk`), not in the core.
    ReplayTornRecord,
}

impl Server {
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
