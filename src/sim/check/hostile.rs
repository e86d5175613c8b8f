//! The checker's part for hostile clients: what each hostile act must get, by PROTOCOL.md, and
//! the invariants only lying clients can break.
//!
//! - A bad header or a frame over the limit gets one failure reply, then the connection closes:
//!   the `help` probe written after it is never answered ("a bad frame is refused, then the
//!   connection closes").
//! - A frame at the limit, a body that is not UTF-8, an unknown code and an empty text are
//!   answered and the connection stays open: the probe is answered ("a connection closes only
//!   where PROTOCOL.md says so"); each refusal is a `-1` reply ("every refusal is a failure
//!   reply").
//! - A stolen, replayed or expired ticket is refused with a failure frame, then a close, and
//!   its relay never gets a push ("a relay receives only its own user's messages", "a ticket
//!   binds at most once", "an expired ticket binds nothing", "a refused handshake gets a
//!   failure frame, then a close").
//! - On a relay, a handshake at the limit before login is judged as a handshake (refused with
//!   a failure frame that is not "too large"), and one a byte over it is refused as too large;
//!   a malformed acknowledgement at the relay's limit gets a failure frame and the relay stays
//!   open, and one a byte over it is refused as too large, then the relay closes: nothing after
//!   it is read, so the acknowledgement of id 0 written after it is never answered ("a frame
//!   within the limit is not refused as too large", "an oversized frame is refused, then the
//!   connection closes").
//! - Every `Delivered` record the server writes (what the disk holds) is for messages of that
//!   account that reached its client ("no acknowledgement changes another account's queue",
//!   "no acknowledgement marks an unpushed message delivered").

use std::collections::BTreeMap;

use super::sorted::SortedMap;
use super::{AccountId, Checker, ConnNo, NameId, Pending, Session, Tag};
use crate::sim::scenario::{Hostile, Op};
use crate::sim::spec::{
    self,
    text::{NEEDS_LOGIN, SEND_OK},
    Notice,
};

/// What a client's hostile act was and what it got, reported by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// A hostile act whose consequences are requests or relays reported on their own.
    Did(Hostile),
    /// The client acknowledged `id` on its ticketed relay `conn`, though it was never pushed
    /// there (or was already acknowledged); `over` if its frame is over the relay's limit.
    Ack { kind: Hostile, conn: ConnNo, id: u64, over: bool },
    /// The client wrote a hostile frame (and a probe after it). `tag` is the message an
    /// at-limit send carries; `within_before_login` says the frame fits every limit.
    Frame { kind: Hostile, tag: Option<Tag>, within_before_login: bool },
    /// The client opened relay `conn` with a hostile handshake.
    Relay { kind: Hostile, conn: ConnNo },
    /// A failure frame arrived on the hostile relay `conn`.
    RelayRefused { conn: ConnNo, text: String },
    /// The client wrote a frame at or over the relay's limit on its bound relay `conn`.
    RelayFrame { kind: Hostile, conn: ConnNo },
    /// A failure frame arrived on the client's own relay `conn`, after it lied there.
    RelayFailure { conn: ConnNo, text: String },
    /// The server closed the hostile relay `conn`.
    RelayClosed { conn: ConnNo },
    /// An honest ticketed handshake on relay `conn` was refused with `text`; its ticket was
    /// granted to the client `newer` tickets before its newest.
    TicketRefused { conn: ConnNo, text: String, newer: usize },
    /// A request named a user in another case than the name's first spelling (`U1`).
    NameCase,
    /// A list pattern with `?`, or `*` before its end.
    ListGlob,
}

impl Observation {
    /// The trace name (`hostile:KIND`).
    pub fn kind(&self) -> &'static str {
        match self {
            Observation::Did(kind) | Observation::Ack { kind, .. } => kind.kind(),
            Observation::Frame { kind, .. } | Observation::RelayFrame { kind, .. } => kind.kind(),
            Observation::RelayFailure { .. } => "relay-failure",
            Observation::Relay { .. } => "hostile-relay-opened",
            Observation::RelayRefused { .. } => "relay-refused",
            Observation::RelayClosed { .. } => "relay-closed",
            Observation::TicketRefused { .. } => "ticket-refused",
            Observation::NameCase => "name-case",
            Observation::ListGlob => "list-glob",
        }
    }

    /// Every kind an observation can have, for a coverage table.
    pub fn kinds() -> Vec<&'static str> {
        let mut kinds: Vec<&'static str> = Hostile::all().map(Hostile::kind).collect();
        kinds.extend(["hostile-relay-opened", "relay-refused", "relay-closed", "relay-failure"]);
        kinds.push("ticket-refused");
        kinds.extend(["name-case", "list-glob"]);
        kinds
    }

    /// The connection the observation is about, if any.
    pub fn conn(&self) -> Option<ConnNo> {
        match self {
            Observation::Ack { conn, .. }
            | Observation::Relay { conn, .. }
            | Observation::RelayRefused { conn, .. }
            | Observation::RelayFrame { conn, .. }
            | Observation::RelayFailure { conn, .. }
            | Observation::RelayClosed { conn }
            | Observation::TicketRefused { conn, .. } => Some(*conn),
            _ => None,
        }
    }

    /// What is hostile about an ordinary request, if anything.
    pub fn of_request(op: &Op) -> Option<Observation> {
        let upper = |name: &str| name.bytes().any(|b| b.is_ascii_uppercase());
        match op {
            Op::Register { name, .. } | Op::Login { name, .. } | Op::Delete { name, .. }
                if upper(name) =>
            {
                Some(Observation::NameCase)
            }
            Op::Send { to, .. } | Op::Burst { to, .. } if upper(to) => Some(Observation::NameCase),
            Op::List { pattern }
                if pattern.contains('?') || pattern.trim_end_matches('*').contains('*') =>
            {
                Some(Observation::ListGlob)
            }
            _ => None,
        }
    }
}

/// What the probe after a hostile frame must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// The frame closes the connection: the probe is never answered.
    Never,
    /// The connection stays open: the probe is answered.
    Answered,
    /// Either (an at-limit frame from a session that may have been taken over, which then
    /// counts against the smaller limit).
    Either,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    kind: Hostile,
    probe: Probe,
    tag: Option<Tag>,
    /// For an at-limit frame that fits only a logged-in session's limit: the session the
    /// client was certainly in when it wrote the frame (its name and session epoch). If
    /// anyone starts to log in as that name before the frame is answered, the session may
    /// have been taken over and the smaller limit may apply.
    session: Option<(NameId, u64)>,
}

/// What a client's own relay got after it wrote lying or malformed frames on it.
#[derive(Debug, Clone, Copy, Default)]
struct LiedOn {
    /// Frames written that the server may answer with a failure (lying acknowledgements and
    /// malformed ones at the limit).
    may_fail: usize,
    /// `may_fail` when a frame over the limit was written: no more failures may follow.
    over_after: Option<usize>,
    /// Plain failure frames (not close notices) received.
    failures: usize,
    /// The "too large" notice arrived: the relay is closing.
    too_large: bool,
}

#[derive(Debug, Clone, Copy)]
struct Relay {
    kind: Hostile,
    client: usize,
    refused: bool,
    closed: bool,
    opened_ms: u64,
}

/// How long before the end of a run a hostile handshake must have been written for its verdict
/// to be owed by then: far longer than any drawn latency or partition delays a frame.
const VERDICT_SLACK_MS: u64 = 10_000;

/// What a push on (or the end of the run with) a relay that the hostile handshake `kind`
/// opened, unrefused, breaks.
fn relay_invariant(kind: Hostile) -> &'static str {
    match kind {
        Hostile::TicketStolen | Hostile::RelayHelloAtLimit | Hostile::RelayHelloOver => {
            "a relay receives only its own user's messages"
        }
        Hostile::TicketExpired => "an expired ticket binds nothing",
        Hostile::TicketEvicted => "a ticket its session's newer ones evicted binds nothing",
        Hostile::TicketAfterLogout => "a ticket of a session that ended binds nothing",
        _ => "a ticket binds at most once",
    }
}

/// The hostile part of the checker's state.
#[derive(Debug, Clone, Default)]
pub(super) struct HostileState {
    /// Per client, its last hostile frame (a client waits for both replies before the next).
    frames: BTreeMap<usize, Frame>,
    /// Clients whose command connection the server announced it closes (a notice), until
    /// they open another: a frame written meanwhile may never be read.
    closing: std::collections::BTreeSet<usize>,
    /// Relays opened by hostile handshakes.
    relays: BTreeMap<ConnNo, Relay>,
    /// Clients' own relays they lied on.
    lied_on: BTreeMap<ConnNo, LiedOn>,
    /// Message ids (from the persisted records) to their tags, and when they were persisted.
    ids: SortedMap<u64, (Tag, u64)>,
    /// Lying acknowledgements: id to the name each acknowledging client was logged in as, and
    /// when it sent the acknowledgement.
    acks: SortedMap<u64, Vec<(Option<NameId>, u64)>>,
    /// Per relay, the newest message id the server's writer wrote on it.
    pub(super) written: SortedMap<ConnNo, u64>,
    /// Per relay, the account it is bound to, learned from the first push received on it.
    bound: SortedMap<ConnNo, AccountId>,
    /// The throttle's free checks per (name, address) and its first delay after them.
    free_checks: usize,
    backoff_base_ms: u64,
    /// The login storm's wrong-password guesses verified per name since its throttle key may
    /// last have been forgotten.
    storm_verified: SortedMap<NameId, StormEpoch>,
}

/// A name's verified storm guesses since its throttle key may last have been forgotten.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct StormEpoch {
    verified: usize,
    /// The earliest send of them.
    first_ms: u64,
    /// The latest send of them: each failed after its send, so the key lives at least a
    /// window past this.
    last_ms: u64,
}

/// The most checks a throttle key allows in `span_ms`: `free` at once, then one per delay
/// that fits (each `base * 2^k`, capped at the failure window), and the free checks again
/// for every whole window in the span (a key is forgotten a window after its last failure;
/// swarm seed 20949 of the small worlds: a window of 293 ms under a base delay of 1 s let a
/// sixth guess through at 814 ms).
pub(super) fn checks_allowed(free: usize, base_ms: u64, window_ms: u64, span_ms: u64) -> usize {
    let window_ms = window_ms.max(1);
    let (mut delays, mut waited_ms) = (0usize, 0u64);
    loop {
        let delay_ms = base_ms.max(1).saturating_mul(1 << delays.min(40)).min(window_ms);
        waited_ms = waited_ms.saturating_add(delay_ms);
        if waited_ms > span_ms {
            break;
        }
        delays += 1;
    }
    let forgotten = usize::try_from(span_ms / window_ms).unwrap_or(usize::MAX);
    free.saturating_mul(forgotten.saturating_add(1)).saturating_add(delays)
}

impl HostileState {
    /// Whether a client logged in as `key` acknowledged message `id` (a lie: it was not
    /// pushed to that client when it did).
    fn acked_by(&self, id: u64, key: NameId) -> bool {
        self.acks.get(&id).is_some_and(|acks| acks.iter().any(|&(k, _)| k == Some(key)))
    }
}

impl Checker {
    /// The throttle's per-account bound: `free` checks per (name, address), then delays from
    /// `backoff_base_ms`, doubling after each failure.
    pub fn throttle_per_account(&mut self, free: usize, backoff_base_ms: u64) {
        self.hostile.free_checks = free;
        self.hostile.backoff_base_ms = backoff_base_ms;
    }

    /// The server crashed: its throttle starts again from nothing.
    pub(super) fn storm_crashed(&mut self) {
        self.hostile.storm_verified = SortedMap::default();
    }

    /// A wrong-password login of name `k` sent at `sent_ms` by `client` was verified. The
    /// login storm guesses from one address, so its verified guesses of one name are bounded
    /// by the free checks plus one per delay that fits between the first guess and now
    /// ([`checks_allowed`]).
    pub(super) fn storm_account_guess(
        &mut self,
        now_ms: u64,
        client: usize,
        k: NameId,
        sent_ms: u64,
    ) {
        if !self.storm.contains(&client) || self.hostile.backoff_base_ms == 0 {
            return;
        }
        let h = &mut self.hostile;
        let window_ms = self.throttle_window_ms;
        let epoch = h.storm_verified.get_or_default(k);
        // This guess was checked by now: if that is a window past every earlier one's send,
        // the key may have been forgotten before it, free checks and all. Before that, the
        // key was certainly kept, checks in flight included (they count before the password
        // is checked, so a sweep may not forget them: PROTOCOL.md's abuse limits).
        if epoch.verified == 0 || now_ms >= epoch.last_ms.saturating_add(window_ms) {
            *epoch = StormEpoch { verified: 0, first_ms: sent_ms, last_ms: sent_ms };
        }
        epoch.first_ms = epoch.first_ms.min(sent_ms);
        epoch.last_ms = epoch.last_ms.max(sent_ms);
        epoch.verified += 1;
        let (n, span_ms) = (epoch.verified, now_ms.saturating_sub(epoch.first_ms));
        let max = checks_allowed(h.free_checks, h.backoff_base_ms, window_ms, span_ms);
        self.expect(n <= max, now_ms, "the throttle bounds password guesses per account", || {
            format!("{n} wrong-password logins of one name from one address were verified within {span_ms} ms; the throttle allows {max}")
        });
    }

    /// A hostile act or what it got; `faulted` if a fault cut the connection it is about.
    pub fn hostile(&mut self, now_ms: u64, client: usize, observation: Observation, faulted: bool) {
        match observation {
            Observation::Ack { id, conn, over, .. } => {
                let key = match self.session(client) {
                    Session::In { key, .. } => Some(key),
                    Session::Out => None,
                };
                self.hostile.acks.get_or_default(id).push((key, now_ms));
                let lied = self.hostile.lied_on.entry(conn).or_default();
                if over {
                    lied.over_after.get_or_insert(lied.may_fail);
                } else {
                    lied.may_fail += 1;
                }
            }
            Observation::RelayFrame { kind, conn } => {
                let lied = self.hostile.lied_on.entry(conn).or_default();
                if kind == Hostile::RelayAckOver {
                    lied.over_after.get_or_insert(lied.may_fail);
                } else {
                    lied.may_fail += 1;
                }
            }
            Observation::RelayFailure { conn, text } => {
                self.relay_failure(now_ms, client, conn, &text)
            }
            Observation::Frame { kind, tag, within_before_login } => {
                let mut session = None;
                let probe = match kind {
                    _ if self.hostile.closing.contains(&client) => Probe::Either,
                    // One byte over the limit of the session the client believes it has: if
                    // that session may have been taken over meanwhile, the other limit (which
                    // may be larger) applies and the frame may be served.
                    Hostile::FrameOver => {
                        session = self.certain_session(client);
                        let believed_in = matches!(self.session(client), Session::In { .. });
                        if believed_in && session.is_none() {
                            Probe::Either
                        } else {
                            Probe::Never
                        }
                    }
                    _ if kind.closes() => Probe::Never,
                    Hostile::FrameAtLimit if !within_before_login => {
                        session = self.certain_session(client);
                        Probe::Answered
                    }
                    _ => Probe::Answered,
                };
                self.hostile.frames.insert(client, Frame { kind, probe, tag, session });
            }
            Observation::Relay { kind, conn } => {
                self.hostile.relays.insert(
                    conn,
                    Relay { kind, client, refused: false, closed: false, opened_ms: now_ms },
                );
            }
            Observation::RelayRefused { conn, text } => {
                let Some(relay) = self.hostile.relays.get_mut(&conn) else { return };
                let first = !relay.refused;
                relay.refused = true;
                let kind = relay.kind;
                let notice = Notice::of(&text);
                let too_large = notice == Some(Notice::FrameTooLarge);
                let what =
                    || format!("client {client}'s relay {conn} ({}) got {text:?}", kind.kind());
                if kind == Hostile::RelayHelloOver && first {
                    // Refused from the header alone; a cap or a deadline may come first.
                    let other_close = matches!(
                        notice,
                        Some(
                            Notice::RelayHandshakeDeadline
                                | Notice::ConnectionsPerAddress
                                | Notice::ConnectionLimit
                        )
                    );
                    let invariant = "an oversized frame is refused, then the connection closes";
                    self.expect(too_large || other_close, now_ms, invariant, what);
                } else if too_large {
                    let invariant = "a frame within the limit is not refused as too large";
                    self.expect(false, now_ms, invariant, what);
                }
            }
            Observation::RelayClosed { conn } => {
                let Some(relay) = self.hostile.relays.get_mut(&conn) else { return };
                relay.closed = true;
                let relay = *relay;
                let silent = !relay.refused && !faulted;
                let invariant = "a refused handshake gets a failure frame, then a close";
                self.expect(!silent, now_ms, invariant, || {
                    format!(
                        "client {client}'s relay {conn} ({}) was closed without a failure frame",
                        relay.kind.kind()
                    )
                });
            }
            Observation::TicketRefused { text, newer, .. } => {
                self.ticket_refused(now_ms, client, newer, &text)
            }
            Observation::Did(_) | Observation::NameCase | Observation::ListGlob => {}
        }
    }

    /// A failure frame `text` arrived on `client`'s own relay `conn`, on which it lied.
    fn relay_failure(&mut self, now_ms: u64, client: usize, conn: ConnNo, text: &str) {
        let lied = self.hostile.lied_on.entry(conn).or_default();
        let notice = Notice::of(text);
        let what = || format!("client {client}'s relay {conn} got {text:?}");
        let (within, closed) = if notice == Some(Notice::FrameTooLarge) {
            let within = lied.over_after.is_none();
            lied.too_large = true;
            (within, false)
        } else if notice.is_none() {
            lied.failures += 1;
            let read_on = lied.over_after.is_some_and(|n| lied.failures > n);
            (false, read_on || lied.too_large)
        } else {
            (false, false)
        };
        let invariant = "a frame within the limit is not refused as too large";
        self.expect(!within, now_ms, invariant, what);
        let invariant = "an oversized frame is refused, then the connection closes";
        self.expect(!closed, now_ms, invariant, what);
    }

    /// What the probe after `client`'s last hostile frame must get, as far as is known now.
    fn probe_now(&mut self, client: usize) -> Option<Frame> {
        let mut frame = self.hostile.frames.get(&client).copied()?;
        let taken_over = frame.session.map(|(k, e)| self.name(k).session_epoch != e);
        let relaxed = match (frame.kind, frame.probe) {
            (Hostile::FrameOver, Probe::Never) => taken_over == Some(true),
            (Hostile::FrameAtLimit, Probe::Answered) => {
                frame.tag.is_some() && taken_over != Some(false)
            }
            _ => false,
        };
        if relaxed {
            frame.probe = Probe::Either;
        }
        Some(frame)
    }

    /// The session `client` is certainly in (its name and session epoch), if any: a login as
    /// that name by anyone later bumps the epoch, and the session may then be taken over.
    fn certain_session(&mut self, client: usize) -> Option<(NameId, u64)> {
        match (self.certainly_in(client), self.session(client)) {
            (true, Session::In { key, .. }) => Some((key, self.name(key).session_epoch)),
            _ => None,
        }
    }

    /// A client hung up connection `conn` itself: a hostile relay it closed owes no verdict.
    pub fn closed_by_client(&mut self, conn: ConnNo) {
        if let Some(relay) = self.hostile.relays.get_mut(&conn) {
            relay.closed = true;
        }
    }

    /// The run is over: a handshake with an expired or an evicted ticket, written long enough
    /// before the end to have been read, that was neither refused nor closed bound its relay,
    /// even if nothing was pushed on it before the end (the victim's messages then wait for a
    /// relay that never reads; swarm seed 87 of the small worlds with
    /// `TicketExpiryLeftToSweep` planted).
    pub(super) fn hostile_finish(&mut self, now_ms: u64) {
        let held = |kind| {
            matches!(
                kind,
                Hostile::TicketExpired | Hostile::TicketEvicted | Hostile::TicketAfterLogout
            )
        };
        let bound: Vec<(ConnNo, Relay)> = (self.hostile.relays.iter())
            .filter(|(_, r)| held(r.kind) && !r.refused && !r.closed)
            .filter(|(_, r)| r.opened_ms + VERDICT_SLACK_MS <= now_ms)
            .map(|(&conn, &r)| (conn, r))
            .collect();
        for (conn, relay) in bound {
            let (client, kind) = (relay.client, relay.kind.kind());
            self.expect(false, now_ms, relay_invariant(relay.kind), || {
                format!("client {client}'s relay {conn}, opened by {kind}, is still open at the end, unrefused")
            });
        }
    }

    /// A push arrived on relay `conn`: on a relay a hostile handshake opened, that is a
    /// handshake the server should have refused. Returns whether it was such a relay.
    pub(super) fn hostile_pushed(&mut self, now_ms: u64, conn: ConnNo, text: &str) -> bool {
        if !self.hostile.bound.contains_key(&conn) {
            let account = super::tag_key(text).and_then(|t| self.msgs.get(&t)?.to_account);
            if let Some(account) = account {
                self.hostile.bound.insert(conn, account);
            }
        }
        if self.hostile.lied_on.get(&conn).is_some_and(|l| l.too_large) {
            let invariant = "an oversized frame is refused, then the connection closes";
            self.expect(false, now_ms, invariant, || {
                format!(
                    "relay {conn} was pushed {text:?} after it was refused a frame as too large"
                )
            });
        }
        let Some(relay) = self.hostile.relays.get(&conn).copied() else { return false };
        let invariant = relay_invariant(relay.kind);
        let client = relay.client;
        let kind = relay.kind.kind();
        self.expect(false, now_ms, invariant, || {
            format!("client {client}'s relay {conn}, opened by {kind}, was pushed {text:?}")
        });
        true
    }

    /// The reply to a hostile request, or to an at-limit send, judged here (returns false
    /// for any other request, which the ordinary checks judge).
    pub(super) fn hostile_reply(
        &mut self,
        now_ms: u64,
        client: usize,
        p: &Pending,
        ok: bool,
        text: &str,
    ) -> bool {
        let frame = self.probe_now(client);
        let what = || {
            let status = if ok { "0" } else { "-1" };
            format!("client {client} sent `{}` and got {status} {text:?}", p.op)
        };
        if !ok && text == NEEDS_LOGIN {
            self.client(client).session = Some(Session::Out);
        }
        match &p.op {
            Op::Hostile(Hostile::Probe) => {
                let Some(frame) = frame else { return true };
                if frame.probe == Probe::Never {
                    let invariant = "a bad frame is refused, then the connection closes";
                    let kind = frame.kind.kind();
                    self.expect(false, now_ms, invariant, || {
                        format!("{}, after {kind}: the connection stayed open", what())
                    });
                } else {
                    self.expect(ok && spec::is_command_list(text), now_ms, "help reply", what);
                }
                true
            }
            Op::Hostile(Hostile::ExtraField) => {
                let invariant = "a request with a field its command does not take is refused";
                self.expect(!ok, now_ms, invariant, what);
                true
            }
            Op::Hostile(_) => {
                self.expect(!ok, now_ms, "every refusal is a failure reply", what);
                true
            }
            Op::Send { .. } => {
                let Some(frame) = frame.filter(|f| f.kind == Hostile::FrameAtLimit) else {
                    return false;
                };
                if p.tag != frame.tag {
                    return false;
                }
                if ok && text == SEND_OK {
                    if let Some(msg) = p.tag.and_then(|t| self.msgs.get_mut(&t)) {
                        msg.acked = true;
                        msg.acked_ms = now_ms;
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// The server announced that it closes `client`'s command connection for `notice`: a
    /// close for a reason other than the frame itself (a deadline, a connection cap, a
    /// takeover) explains why a probe that should have been answered was not.
    pub(super) fn hostile_noticed(&mut self, client: usize, notice: Notice) {
        if notice.ends_command() {
            self.hostile.closing.insert(client);
        }
        let about_the_frame =
            matches!(notice, Notice::FrameTooLarge | Notice::BadHeader | Notice::InboundFull);
        if let Some(frame) = self.hostile.frames.get_mut(&client) {
            if !about_the_frame && frame.probe == Probe::Answered {
                frame.probe = Probe::Either;
            }
        }
    }

    /// Whether `client` wrote a malformed header (`hostile bad-header-N`), its last hostile
    /// frame: the only header the server may refuse.
    pub(super) fn wrote_bad_header(&self, client: usize) -> bool {
        let frame = self.hostile.frames.get(&client);
        frame.is_some_and(|f| matches!(f.kind, Hostile::BadHeader(_)))
    }

    /// `client` opened a new command connection.
    pub(super) fn hostile_connected(&mut self, client: usize) {
        self.hostile.closing.remove(&client);
    }

    /// The command connection of `client` ended (`faulted`: a fault cut it): a probe still
    /// unanswered that had to be answered means the server closed where it must not.
    pub(super) fn hostile_dropped(&mut self, now_ms: u64, client: usize, faulted: bool) {
        let Some(frame) = self.probe_now(client) else { return };
        let probe_owed =
            self.client(client).pending.iter().any(|p| p.op == Op::Hostile(Hostile::Probe));
        let wrongly = probe_owed && frame.probe == Probe::Answered && !faulted;
        let invariant = "a connection closes only where PROTOCOL.md says so";
        self.expect(!wrongly, now_ms, invariant, || {
            format!("client {client}'s command connection was closed after {}", frame.kind.kind())
        });
    }

    /// The server's writer wrote pushes on relay `conn` through message `last`.
    pub fn relay_written(&mut self, conn: ConnNo, last: u64) {
        let newest = self.hostile.written.get_or_default(conn);
        *newest = (*newest).max(last);
    }

    /// The server persisted message `id` with text `text`.
    pub fn persisted_id(&mut self, now_ms: u64, id: u64, text: &str) {
        if let Some(tag) = super::tag_key(text) {
            self.hostile.ids.insert(id, (tag, now_ms));
        }
    }

    /// The server persisted that messages `ids` of account `to` are delivered: each must be
    /// `to`'s and must have been written to a relay bound to `to` before (the server cannot
    /// tell a fast client's acknowledgement from one sent early by a liar once the push is
    /// written, but it can before).
    pub fn persisted_delivered(
        &mut self,
        now_ms: u64,
        to: AccountId,
        ids: impl IntoIterator<Item = u64>,
    ) {
        for id in ids {
            let Some(&(tag, persisted_ms)) = self.hostile.ids.get(&id) else { continue };
            let Some(msg) = self.msgs.get(&tag) else { continue };
            let (to_account, to_key) = (msg.to_account, msg.to_key);
            let hostile = &self.hostile;
            let written = msg.delivered
                || hostile
                    .written
                    .iter()
                    .any(|(conn, &last)| last >= id && hostile.bound.get(conn) == Some(&to));
            let detail = || {
                format!(
                    "m{} (#{}.{}, for {to_account:?}) was marked delivered to {to:?}",
                    id, tag.0, tag.1
                )
            };
            let theirs = to_account == Some(to);
            self.expect(
                theirs,
                now_ms,
                "no acknowledgement changes another account's queue",
                detail,
            );
            if written && theirs {
                // Written, and acknowledged early by the recipient's own lying client (before
                // the push reached it): the server cannot tell that from a fast client, and the
                // message is the liar's to lose (it may hang up before the push arrives).
                let own_lie = self.hostile.acked_by(id, to_key);
                if let (true, Some(msg)) = (own_lie, self.msgs.get_mut(&tag)) {
                    msg.delivered = true;
                }
            }
            if !theirs || written {
                continue;
            }
            // Not written to any relay of the user, and acknowledged by a client logged in as
            // another user: that user's acknowledgement took the message. Unless it was sent
            // before the message existed (the server refuses it if it arrives before, too) and
            // the user's own client acknowledged the message as well, which explains the mark
            // (small hostile seed 2499).
            let own_lie = self.hostile.acked_by(id, to_key);
            let foreign = self.hostile.acks.get(&id).is_some_and(|acks| {
                acks.iter()
                    .any(|&(k, sent_ms)| k != Some(to_key) && (sent_ms >= persisted_ms || !own_lie))
            });
            // The server counts a message pushed once it hands it to a relay's outgoing path
            // (before it is written), and a client may acknowledge it from then on, so a
            // message may be marked delivered while any relay of its user is open. Only one
            // whose user never had a relay was certainly not pushed.
            let relay_of_user = self.relays.values().any(|r| {
                r.opened_ms <= now_ms && self.held_for(r).iter().any(|(_, k, _)| *k == to_key)
            });
            if !foreign && relay_of_user {
                // The recipient's own client acknowledged it early (a lie the server cannot
                // tell from a fast client once the push is on its way): the message is its to
                // lose, and no longer owed.
                if own_lie {
                    if let Some(msg) = self.msgs.get_mut(&tag) {
                        msg.delivered = true;
                    }
                }
                continue;
            }
            let invariant = if foreign {
                "no acknowledgement changes another account's queue"
            } else {
                "no acknowledgement marks an unpushed message delivered"
            };
            self.expect(false, now_ms, invariant, detail);
        }
    }
}
