//! Writers run at once: how the synchronous drivers (the fuzz driver and the core's test kit)
//! run the host. After each input, every connection whose mailbox was handed something runs
//! its writer to completion, the way `net::command` and `net::relay` do on their threads: take
//! the mailbox, sort the batch, write it, report it with [`Host::wrote`], run the password
//! jobs, and once the mailbox is closed and empty report [`Host::ended`], always last.
//!
//! The driver decides what a write does ([`Delivery`]) and whether a password job runs now,
//! so it can delay writes and jobs as a slow network or a busy machine would.

use super::mailbox::{Flavour, Taken};
use super::{Batch, Host, Outgoing, RecordSink, Socket};
use crate::core::{ConnId, Event, PasswordJob, PasswordOutcome, Server};

/// Sees a connection's items, in order, before they are written; says what the write did.
/// It may take their frames (leaving them empty), so a driver that keeps what was written
/// need not copy it: what the host is told written is only which pushes and how many replies.
pub type Deliver<'a> = dyn FnMut(&Server, ConnId, &mut [Outgoing]) -> Delivery + 'a;

/// Runs a password job now (`Some`) or keeps it for later (`None`).
pub type RunJob<'a> = dyn FnMut(&PasswordJob) -> Option<PasswordOutcome> + 'a;

/// What happened to a batch's frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Written; reported to the host at once.
    Written,
    /// Written, but the driver reports it later itself with [`Host::wrote`] (a slow writer).
    Held,
    /// Written; the replies are reported at once, the pushes later by the driver with
    /// [`Host::wrote`] (the model checker confirms a relay's pushes one at a time, as steps of
    /// their own).
    PushesHeld,
    /// The write failed (the peer is gone): the writer stops and the connection ends.
    Failed,
}

/// The synchronous drivers' writers. See the [module docs](self). A copy (for a driver that
/// copies its whole host) copies only scratch space, and what a settle has not run yet.
#[derive(Debug, Default, Clone)]
pub struct InstantWriters {
    touched: Vec<ConnId>,
    /// Scratch for `settle` (kept, so a settle does not allocate).
    seen: Vec<ConnId>,
    items: Vec<Outgoing>,
    batch: Batch,
}

impl InstantWriters {
    /// Writers for `host`, which from now on records which connections get items.
    pub fn new<S: Socket, K: RecordSink, F: Flavour>(host: &mut Host<S, K, F>) -> Self {
        host.track_touched();
        InstantWriters::default()
    }

    /// Swaps the scratch space with `other`'s, keeping what a settle has not run yet (from
    /// either) here: a driver that copies its writers per transition keeps one set of
    /// scratch buffers per thread and lends it to the copy it runs, instead of growing fresh
    /// buffers in every copy.
    pub fn swap_scratch(&mut self, other: &mut InstantWriters) {
        std::mem::swap(&mut self.touched, &mut other.touched);
        self.touched.append(&mut other.touched);
        std::mem::swap(&mut self.seen, &mut other.seen);
        std::mem::swap(&mut self.items, &mut other.items);
        std::mem::swap(&mut self.batch, &mut other.batch);
    }

    /// Has `conn`'s writer run at the next settle (its peer closed the mailbox, say).
    pub fn wake(&mut self, conn: ConnId) {
        self.touched.push(conn);
    }

    /// Feeds `event`, then runs every writer with something to do until none has. `deliver`
    /// sees each batch before it is reported; `job` runs a password job now (`Some`) or keeps
    /// it for later (`None`, the driver then feeds [`Event::PasswordDone`] itself).
    pub fn handle<S: Socket, K: RecordSink, F: Flavour>(
        &mut self,
        host: &mut Host<S, K, F>,
        now_ms: u64,
        event: Event<'_>,
        deliver: &mut Deliver<'_>,
        job: &mut RunJob<'_>,
    ) {
        host.handle(now_ms, event);
        self.settle(host, now_ms, deliver, job);
    }

    /// Runs every writer with something to do until none has (see [`InstantWriters::handle`]).
    pub fn settle<S: Socket, K: RecordSink, F: Flavour>(
        &mut self,
        host: &mut Host<S, K, F>,
        now_ms: u64,
        deliver: &mut Deliver<'_>,
        job: &mut RunJob<'_>,
    ) {
        let mut touched = std::mem::take(&mut self.touched);
        loop {
            host.take_touched(&mut touched);
            if touched.is_empty() {
                break;
            }
            // In the order the connections were first handed something: deterministic.
            let mut seen = std::mem::take(&mut self.seen);
            for conn in touched.drain(..) {
                if !seen.contains(&conn) {
                    seen.push(conn);
                    self.run(host, now_ms, conn, deliver, job);
                }
            }
            seen.clear();
            self.seen = seen;
        }
        self.touched = touched;
    }

    /// Runs `conn`'s writer until its mailbox is empty, or closed and the connection ended.
    fn run<S: Socket, K: RecordSink, F: Flavour>(
        &mut self,
        host: &mut Host<S, K, F>,
        now_ms: u64,
        conn: ConnId,
        deliver: &mut Deliver<'_>,
        job: &mut RunJob<'_>,
    ) {
        loop {
            // Through the host, holding no mailbox (see [`Host::share_empty_mailboxes`]).
            match host.take_all(conn, &mut self.items) {
                None => return,
                Some(Taken::Closed) => return host.ended(now_ms, conn),
                Some(Taken::Open) => {}
            }
            if self.items.is_empty() {
                return;
            }
            let writes = self.items.iter().any(|i| !matches!(i, Outgoing::Password(_)));
            let delivery =
                if writes { deliver(host.server(), conn, &mut self.items) } else { Delivery::Held };
            self.batch.sort(&mut self.items);
            if writes {
                match delivery {
                    Delivery::Written => host.wrote(now_ms, conn, &self.batch),
                    Delivery::Held => {}
                    Delivery::PushesHeld => {
                        self.batch.last_push = None;
                        host.wrote(now_ms, conn, &self.batch);
                    }
                    Delivery::Failed => {
                        self.batch.clear_written();
                        self.batch.jobs.clear();
                        host.close_mailbox(conn);
                        let _ = host.take_all(conn, &mut self.items);
                        self.items.clear();
                        return host.ended(now_ms, conn);
                    }
                }
            }
            self.batch.clear_written();
            for password in std::mem::take(&mut self.batch.jobs) {
                if let Some(outcome) = job(&password) {
                    host.handle(now_ms, Event::PasswordDone { job: password.job, outcome });
                }
            }
        }
    }
}
