//! The core behind one lock, and the routing of its outputs to connection mailboxes.
//!
//! Every thread that has news for the core (a command thread with bytes, a relay thread that
//! wrote, the timer, the log writer) calls [`Shared::handle`]: it locks, feeds the input with the
//! current time, and drains every output while still holding the lock. Draining under the lock
//! is what makes [`Shared::awaiting_reply`] trustworthy: once it says "no reply owed", every
//! reply for that connection is already in its mailbox.

use std::collections::BTreeMap;
use std::io;
use std::net::Shutdown;
use std::time::Instant;

use super::mailbox::{Mailbox, PushError};
use super::socket::{SharedSocket, Socket};
use super::sync::{Arc, Mutex, MutexGuard};
use super::timer::TimerState;
use crate::core::{
    ConnId, Event, Input, Lsn, MsgId, Output, PasswordJob, Record, Server, SnapshotView,
};

/// What a connection's thread receives from the core.
#[derive(Debug)]
// Clone only for loom models, whose planted-bug mailboxes need copies of their items.
#[cfg_attr(loom, derive(Clone))]
pub(crate) enum Outgoing {
    /// A reply or failure frame, ready to write.
    Frame(Vec<u8>),
    /// A push frame; the relay reports `msg` written after writing it.
    Push { msg: MsgId, frame: Vec<u8> },
    /// A password job to run on this connection's thread, off the lock.
    Password(PasswordJob),
}

/// A connection as the router knows it.
pub(crate) struct Route {
    pub mailbox: Arc<Mailbox<Outgoing>>,
    /// The socket, for shutting it down; `None` for the server's own internal connection.
    pub stream: Option<SharedSocket>,
}

impl Route {
    fn shutdown(&self, how: Shutdown) {
        if let Some(stream) = &self.stream {
            stream.shutdown(how);
        }
    }
}

/// Where records go. The in-memory store makes them durable at once; the file store syncs
/// them in a writer thread and reports durability back through [`Shared::handle`].
pub(crate) trait RecordSink: Send {
    /// Accepts a record for persistence.
    fn persist(&mut self, lsn: Lsn, record: Record);
    /// Whether `persist` makes records durable before returning.
    fn is_synchronous(&self) -> bool;
    /// Whether the log has grown enough since the last snapshot to write a new one.
    fn snapshot_due(&self) -> bool {
        false
    }
    /// Writes a snapshot of the state `view` captured (after every record before its lsn),
    /// building its records off the core's lock.
    fn request_snapshot(&mut self, _view: SnapshotView) {}
    /// Flushes and stops; called once, without the core's lock held.
    fn shutdown(&mut self) {}
}

/// The store that keeps nothing: every record counts as durable at once (no restart survives).
pub(crate) struct MemorySink;

impl RecordSink for MemorySink {
    fn persist(&mut self, _lsn: Lsn, _record: Record) {}
    fn is_synchronous(&self) -> bool {
        true
    }
}

pub(crate) struct Driver {
    server: Server,
    /// Ordered, so that `close_all` visits connections in the same order every time: loom
    /// replays executions and needs every run of the same schedule to do the same things.
    routes: BTreeMap<ConnId, Route>,
    sink: Box<dyn RecordSink>,
}

/// The core and its router, shared by every thread of the adapter.
pub(crate) struct Shared {
    driver: Mutex<Driver>,
    started: Instant,
    pub timer: TimerState,
}

impl Shared {
    pub fn new(server: Server, sink: Box<dyn RecordSink>) -> Self {
        let driver = Driver { server, routes: BTreeMap::new(), sink };
        Shared { driver: Mutex::new(driver), started: Instant::now(), timer: TimerState::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Driver> {
        self.driver.lock().expect("a server thread panicked while driving the core")
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Feeds one event and routes everything it releases.
    pub fn handle(&self, event: Event<'_>) {
        let now_ms = self.now_ms();
        let mut driver = self.lock();
        let last_before = driver.server.last_lsn();
        driver.server.handle_input(Input { now_ms, event });
        driver.drain(now_ms);
        if driver.server.last_lsn() > last_before && driver.sink.snapshot_due() {
            let view = driver.server.snapshot_view();
            driver.sink.request_snapshot(view);
        }
        self.timer.set(driver.server.poll_timeout());
    }

    /// Stops the store after flushing it. The sink is taken out first so that the writer can
    /// finish reporting without waiting for this thread's lock.
    pub fn shutdown_store(&self) {
        let mut sink: Box<dyn RecordSink> =
            std::mem::replace(&mut self.lock().sink, Box::new(MemorySink));
        sink.shutdown();
    }

    /// Registers a new connection's route and tells the core.
    pub fn open(&self, conn: ConnId, route: Route, event: Event<'_>) {
        self.lock().routes.insert(conn, route);
        self.handle(event);
    }

    /// Tells the core a connection is gone and forgets its route.
    pub fn close(&self, conn: ConnId) {
        self.handle(Event::Closed { conn });
        self.lock().routes.remove(&conn);
    }

    /// See [`Server::awaiting_reply`].
    pub fn awaiting_reply(&self, conn: ConnId) -> bool {
        self.lock().server.awaiting_reply(conn)
    }

    /// Runs `f` on the core (for getters).
    pub fn with_server<T>(&self, f: impl FnOnce(&Server) -> T) -> T {
        f(&self.lock().server)
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self) {
        for route in self.lock().routes.values() {
            route.mailbox.close();
            route.shutdown(Shutdown::Both);
        }
    }
}

impl Driver {
    fn drain(&mut self, now_ms: u64) {
        loop {
            while let Some(output) = self.server.poll_output() {
                self.route(output);
            }
            let last = self.server.last_lsn();
            if !self.sink.is_synchronous() || self.server.durable_lsn() == last {
                break;
            }
            self.server.handle_input(Input { now_ms, event: Event::Durable { lsn: last } });
        }
    }

    fn route(&mut self, output: Output) {
        let (conn, item) = match output {
            Output::Persist { lsn, record } => return self.sink.persist(lsn, record),
            Output::Password(job) => (job.conn, Outgoing::Password(job)),
            Output::Reply { conn, frame } => (conn, Outgoing::Frame(frame)),
            Output::Push { conn, msg, frame } => (conn, Outgoing::Push { msg, frame }),
            Output::Close { conn } => {
                if let Some(route) = self.routes.get(&conn) {
                    route.mailbox.close();
                    // Wakes a reader blocked in read; the writer still flushes the mailbox.
                    route.shutdown(Shutdown::Read);
                }
                return;
            }
        };
        let Some(route) = self.routes.get(&conn) else { return };
        match route.mailbox.push(item) {
            Ok(()) | Err(PushError::Closed(_)) => {}
            Err(PushError::Full(_)) => {
                // The relay is not keeping up. Closing it loses nothing: the core keeps every
                // message until it is reported written, and pushes it again on the next relay.
                tracing::warn!(?conn, "connection not keeping up with its pushes; closing it");
                route.mailbox.close();
                route.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Writes a batch of frames in one call.
pub(crate) fn write_frames(stream: &dyn Socket, frames: &[Vec<u8>]) -> io::Result<()> {
    if let [frame] = frames {
        return stream.write_all(frame);
    }
    stream.write_all(&frames.concat())
}
