//! Pushes that arrive before the login that earned them is answered. A bare relay is bound
//! to a session the moment the server logs its client in, and the login's reply travels on
//! another connection: a push for the name the client is logging in as may reach the relay
//! before the reply reaches the client (swarm seed 1457, once registrations of odd names
//! shifted the streams: a relay opened in `u3`'s name a millisecond before the login as
//! `u3` was sent). Such a push is neither accepted nor refused when it arrives: the login
//! decides. Answered with a session of that name, the push is judged against the account it
//! obtained; answered with a refusal, the push went to another user's relay; lost, the login
//! may have succeeded, and nothing is owed.

use super::{AccountId, Checker, ConnNo, NameId, Op, Pending, Session, Tag};

/// A push held for judgement until its client's login of `key` is answered.
#[derive(Debug, Clone)]
pub(super) struct Early {
    key: NameId,
    tag: Tag,
    conn: ConnNo,
}

impl Checker {
    /// A push of `tag`, for `key`, reached relay `conn` of `client`, which held no session of
    /// `key`: whether a login or register of `key` by the client is in flight, in which case
    /// the push is judged when that is answered.
    pub(super) fn early_push(
        &mut self,
        client: usize,
        conn: ConnNo,
        key: NameId,
        tag: Tag,
    ) -> bool {
        if !self.login_in_flight(client, key) {
            return false;
        }
        self.coverage.count("relay: push before its login's reply");
        self.client(client).early.push(Early { key, tag, conn });
        true
    }

    /// `client`'s login or register `pending` was answered (`lost`: it never will be).
    pub(super) fn early_answered(
        &mut self,
        now_ms: u64,
        client: usize,
        pending: &Pending,
        lost: bool,
    ) {
        let Some(key) = pending.target else { return };
        let login = matches!(pending.op, Op::Login { .. } | Op::Register { .. });
        if !login || self.clients[client].early.iter().all(|e| e.key != key) {
            return;
        }
        let account = match self.clients[client].session {
            Some(Session::In { key: k, account, .. }) if k == key && !lost => Some(account),
            _ => None,
        };
        if account.is_none() && !lost && self.login_in_flight(client, key) {
            return; // another login of the name may still earn the pushes
        }
        let state = self.client(client);
        let (early, rest) =
            std::mem::take(&mut state.early).into_iter().partition(|e| e.key == key);
        state.early = rest;
        let early: Vec<Early> = early;
        let name = self.key_of(key).to_owned();
        for e in early {
            let what = || {
                format!(
                    "relay {} of client {client} got #{}.{} for {name} before its login was answered",
                    e.conn, e.tag.0, e.tag.1
                )
            };
            match account {
                _ if lost => {}
                None => self.fail(now_ms, "nothing is delivered to another user", what()),
                Some(account) => {
                    let to_account = self.msgs.get(&e.tag).and_then(|m| m.to_account);
                    let fits = account_fits(to_account, account);
                    let invariant = "nothing is delivered to another account (a reused name)";
                    self.expect(fits, now_ms, invariant, what);
                }
            }
        }
    }

    /// Whether `client` has a login or register of `key` in flight.
    fn login_in_flight(&self, client: usize, key: NameId) -> bool {
        let logs_in = |p: &Pending| matches!(p.op, Op::Login { .. } | Op::Register { .. });
        self.clients[client].pending.iter().any(|p| p.target == Some(key) && logs_in(p))
    }
}

/// Whether a message for account `to` may be delivered to a session of `held` (`None` where
/// the checker does not know which account the session is of).
pub(super) fn account_fits(to: Option<AccountId>, held: Option<AccountId>) -> bool {
    to.is_some() && (held.is_none() || held == to)
}
