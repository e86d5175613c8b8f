//! The sans-I/O host: everything between the pure core and a socket, written once.
//!
//! [`Host`] owns the [`Server`] and decides what every driver used to decide for itself: it
//! drains the core's outputs after each input and routes them into per-connection
//! [`Mailbox`]es of [`Outgoing`] items, with the bound and the full-queue policy that ship
//! (a connection whose queue is full is hung up, which loses nothing: the core keeps every
//! message until it is reported written); it hands records to a [`RecordSink`] and feeds
//! durability back for a synchronous one; it triggers snapshots; it says when a command
//! connection may be read ([`Host::may_read`]); and it turns what a writer did into the core's
//! `Written` and `Closed` inputs in the order the thread pair needs ([`Host::wrote`], then
//! [`Host::ended`]).
//!
//! Drivers only move bytes and call it:
//!
//! ```text
//!   TCP adapter (net)        a command thread and a relay writer + reader per client, the
//!                            host behind one mutex; they block on sockets and mailboxes
//!   simulator (sim)          simulated sockets; the seed picks which writer runs next
//!   model checker, fuzzing   one step at a time, every writer run to completion
//! ```
//!
//! A connection's writer (the command thread, the relay thread, the simulator's flush) takes
//! a batch from its mailbox, sorts it with [`Batch::sort`], writes the frames, reports them
//! with [`Host::wrote`], runs any password job and reports it with [`Event::PasswordDone`]
//! through [`Host::handle`]; once its mailbox says closed (or a write failed) it reports
//! [`Host::ended`], always after its last [`Host::wrote`]: a close the core handled first would
//! make it ignore that report and push those messages again (found by loom).

pub mod instant;
pub mod mailbox;
mod outgoing;
mod sink;
pub mod sync;

use std::collections::BTreeMap;

pub use outgoing::{Batch, Outgoing};
pub use sink::{MemorySink, RecordSink};

use self::mailbox::{Flavour, Handed, Mailbox, PushError, Taken, Threads};
use self::sync::Arc;
#[cfg(any(test, feature = "planted"))]
use crate::core::planted::Planted;
use crate::core::{Channel, ConnId, Event, Input, Lsn, MsgId, Output, Peer, Server};

/// How a connection's socket is to be shut down, when the host ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hang {
    /// Stop reading (wakes a reader blocked in `read`); the writer still flushes its mailbox.
    Read,
    /// Stop both ways now: the connection is broken (its queue overflowed, or shutdown).
    Both,
}

/// The driver's handle on a connection's socket, for the host to end it.
pub trait Socket {
    /// Shuts the socket down; never blocks, never writes.
    fn hang_up(&self, how: Hang);

    /// Writes what the socket takes at once, never waiting: the bytes written (0 when none,
    /// or on an error, which the connection's writer will meet itself). Used only with
    /// [`Host::write_through`]; a socket that never writes this way keeps the default.
    fn write_now(&self, _bytes: &[u8]) -> usize {
        0
    }
}

/// A connection without a socket (the server's own internal connections).
impl Socket for () {
    fn hang_up(&self, _how: Hang) {}
}

/// A connection as the host knows it.
struct Route<S, F: Flavour> {
    mailbox: Arc<Mailbox<Outgoing, F>>,
    socket: S,
    /// The core asked to close it (rather than its peer or the host).
    closed_by_core: bool,
    /// Copies share the mailbox while it is empty (see [`Host::share_empty_mailboxes`]).
    shares: bool,
    /// The bug planted in the host, for the paths outside it that write and wake.
    #[cfg(any(test, feature = "planted"))]
    planted: Planted,
}

/// A copy routed to a mailbox of its own with the same items (see [`Host`]'s `Clone`); with
/// `shares`, to the same mailbox while it is empty.
impl<S: Clone, F: Flavour> Clone for Route<S, F> {
    fn clone(&self) -> Self {
        let mailbox = if self.shares && self.mailbox.is_empty() {
            self.mailbox.clone()
        } else {
            Arc::new(Mailbox::clone(&self.mailbox))
        };
        Route {
            mailbox,
            socket: self.socket.clone(),
            closed_by_core: self.closed_by_core,
            shares: self.shares,
            #[cfg(any(test, feature = "planted"))]
            planted: self.planted,
        }
    }
}

impl<S, F: Flavour> Route<S, F> {
    /// The mailbox, made this route's own first if a copy of the host shares it (only with
    /// [`Host::share_empty_mailboxes`], whose drivers hold no mailbox between calls).
    fn own_mailbox(&mut self) -> &Mailbox<Outgoing, F> {
        if self.shares && Arc::strong_count(&self.mailbox) > 1 {
            self.mailbox = Arc::new(Mailbox::clone(&self.mailbox));
        }
        &self.mailbox
    }
}

impl<S: Socket, F: Flavour> Route<S, F> {
    fn hang_up(&mut self, how: Hang) {
        self.own_mailbox().close();
        self.socket.hang_up(how);
    }
}

/// The core and everything around it that is not I/O. See the [module docs](self).
///
/// `F` is the mailboxes' [`Flavour`]: shared between threads (the TCP adapter), or on one
/// thread (the simulator).
pub struct Host<S, K, F: Flavour = Threads> {
    server: Server,
    routes: BTreeMap<ConnId, Route<S, F>>,
    sink: K,
    /// Connections whose writers have something to do since [`Host::take_touched`], when
    /// tracked.
    touched: Option<Vec<ConnId>>,
    /// See [`Host::outputs_after_close`].
    outputs_after_close: u64,
    /// With [`Host::defer_wakes`]: mailboxes whose waiting writer is owed a wake.
    wakes: Option<Vec<Arc<Mailbox<Outgoing, F>>>>,
    /// See [`Host::write_through`].
    write_through: bool,
    /// See [`Host::share_empty_mailboxes`].
    shares_mailboxes: bool,
    /// Pushes written through since the drain last reported them: per relay, the last one.
    written_through: Vec<(ConnId, MsgId)>,
}

impl<S: Socket, K: RecordSink, F: Flavour> Host<S, K, F> {
    /// A host for `server` whose records go to `sink`.
    pub fn new(server: Server, sink: K) -> Self {
        Host {
            server,
            routes: BTreeMap::new(),
            sink,
            touched: None,
            outputs_after_close: 0,
            wakes: None,
            write_through: false,
            shares_mailboxes: false,
            written_through: Vec::new(),
        }
    }

    /// Copies of this host ([`Clone`]) share the empty mailboxes with it instead of each
    /// getting fresh ones, and whichever changes a shared mailbox first makes a copy of its own
    /// then (copy on write). For a driver that copies whole hosts per step on one thread (the
    /// model checker): mailboxes are empty between its steps, and most steps touch one or two,
    /// so a copy allocates no mailbox for the rest. The driver must reach the mailboxes only
    /// through the host ([`Host::take_all`], [`Host::close_mailbox`]) and keep none that
    /// [`Host::open`] or [`Host::mailbox`] returns: a mailbox held outside would count as
    /// shared, and its holder would not see the copy made on a change.
    pub fn share_empty_mailboxes(&mut self) {
        self.shares_mailboxes = true;
        self.routes.values_mut().for_each(|route| route.shares = true);
    }

    /// Moves every item queued for `conn` into `out` ([`Mailbox::try_take_all`]); `None` when
    /// the host does not route `conn`.
    pub fn take_all(&mut self, conn: ConnId, out: &mut Vec<Outgoing>) -> Option<Taken> {
        let route = self.routes.get_mut(&conn)?;
        if route.shares && route.mailbox.is_empty() {
            // Nothing to move (taking would only swap buffers with a copy's mailbox).
            return Some(if route.mailbox.is_closed() { Taken::Closed } else { Taken::Open });
        }
        Some(route.own_mailbox().try_take_all(out))
    }

    /// Closes `conn`'s mailbox ([`Mailbox::close`]), as its peer's reset or a failed write
    /// does; false when the host does not route `conn`.
    pub fn close_mailbox(&mut self, conn: ConnId) -> bool {
        let Some(route) = self.routes.get_mut(&conn) else { return false };
        route.own_mailbox().close();
        true
    }

    /// Writes a push straight to its relay's socket ([`Socket::write_now`]) when the relay's
    /// writer is idle and the relay acknowledges (so the report that it was written, made at
    /// once on this thread, changes nothing in the core and persists nothing: this may be the
    /// log writer's thread, feeding durability). It saves the writer's wake-up, its taking
    /// the lock again to report, and on a busy core the wait for its turn. What the socket
    /// does not take at once is queued for the writer, which stays in charge of a relay that
    /// does not keep up. Needs [`Host::defer_wakes`].
    pub fn write_through(&mut self) {
        self.write_through = true;
    }

    /// Queues items without waking the writers that wait for them; the driver takes the
    /// mailboxes owed a wake with [`Host::take_wakes`] and wakes them once it has let go of the
    /// lock it keeps the host under, which those writers take next (woken at once, each would
    /// preempt the thread holding it on a busy core, only to block on it).
    pub fn defer_wakes(&mut self) {
        self.wakes = Some(Vec::new());
    }

    /// Moves the mailboxes owed a [`Mailbox::wake`] since the last call into `out` (with
    /// [`Host::defer_wakes`]; each once).
    pub fn take_wakes(&mut self, out: &mut Vec<Arc<Mailbox<Outgoing, F>>>) {
        if let Some(wakes) = &mut self.wakes {
            out.append(wakes);
        }
    }

    /// Records which connections get items, for drivers that schedule their writers
    /// themselves (the simulator); see [`Host::take_touched`].
    pub fn track_touched(&mut self) {
        self.touched = Some(Vec::new());
    }

    /// The most items a connection's mailbox holds. It follows from the core's own bounds:
    /// a relay has at most a push window of pushes in flight, a command connection at most a
    /// pipeline of replies; the rest is room for a failure frame and the close.
    pub fn mailbox_len_max(&self) -> usize {
        let config = self.server.config();
        config.push_window_len.max(config.pipeline_len_max) + MAILBOX_SLACK
    }

    /// Accepts a connection: routes it, then tells the core. Returns the connection's mailbox,
    /// which its writer takes from.
    pub fn open(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        channel: Channel,
        peer: Peer,
        socket: S,
    ) -> Arc<Mailbox<Outgoing, F>> {
        let mailbox = Arc::new(Mailbox::of_flavour(self.mailbox_len_max()));
        self.attach(conn, mailbox.clone(), socket);
        self.handle(now_ms, Event::Opened { conn, channel, peer });
        mailbox
    }

    /// Routes `conn` to a mailbox the driver made (loom models plant bugs in theirs); the
    /// driver then feeds [`Event::Opened`].
    pub fn attach(&mut self, conn: ConnId, mailbox: Arc<Mailbox<Outgoing, F>>, socket: S) {
        let shares = self.shares_mailboxes;
        let route = Route {
            mailbox,
            socket,
            closed_by_core: false,
            shares,
            #[cfg(any(test, feature = "planted"))]
            planted: self.planted(),
        };
        self.routes.insert(conn, route);
    }

    /// Feeds one event and routes everything it releases.
    ///
    /// Inlined so that the caller builds the core's `Input` in place: copied through memory
    /// just after the caller wrote it, the event stalled every call (seen in the simulator's
    /// profile).
    #[inline]
    pub fn handle(&mut self, now_ms: u64, event: Event<'_>) {
        let last_before = self.server.last_lsn();
        self.server.handle_input(Input { now_ms, event });
        self.released(now_ms, last_before);
    }

    /// Routes what the last input released, and asks for a snapshot if the log is due one.
    fn released(&mut self, now_ms: u64, last_before: Lsn) {
        self.drain(now_ms);
        if self.server.last_lsn() > last_before && self.sink.snapshot_due() {
            // O(1) under the lock: the sink builds the records later (off it, in production).
            self.sink.request_snapshot(self.server.snapshot_view());
        }
    }

    /// Whether the command connection `conn` may be read now: only once every reply it is
    /// owed has been written, so a client that pipelines waits in the kernel's buffers, not
    /// in the server's memory, and its thread is never blocked reading while a reply waits.
    pub fn may_read(&self, conn: ConnId) -> bool {
        #[cfg(any(test, feature = "planted"))]
        if self.planted() == Planted::HostReadsWhileOwed {
            return true;
        }
        !self.server.awaiting_reply(conn)
    }

    /// Whether the command connection `conn`, which owes replies, may be read ahead of them
    /// now: the core would decode what arrives at once (its pipeline is not full and no
    /// password job runs), so reading cannot make it buffer more than a read's worth. The TCP
    /// adapter reads such a connection only without waiting and under its lock (see
    /// `net::driver::Shared::read_ahead`), while its command thread waits for the replies.
    pub fn may_read_ahead(&self, conn: ConnId) -> bool {
        self.server.reads_ahead(conn)
    }

    #[cfg(any(test, feature = "planted"))]
    fn planted(&self) -> Planted {
        self.server.config().planted
    }

    /// A writer of `conn` wrote `batch`'s frames. Feeds what the core must learn of it.
    pub fn wrote(&mut self, now_ms: u64, conn: ConnId, batch: &Batch) {
        if let Some(last) = batch.last_push {
            self.handle(now_ms, Event::Written { conn, last });
        }
        if batch.replies > 0 {
            self.handle(now_ms, Event::RepliesWritten { conn, count: batch.replies });
        }
    }

    /// The connection's writer is done (its mailbox closed, or its socket failed): the last
    /// word about `conn`, after its last [`Host::wrote`].
    pub fn ended(&mut self, now_ms: u64, conn: ConnId) {
        self.handle(now_ms, Event::Closed { conn });
        self.routes.remove(&conn);
    }

    /// Ends every connection (shutdown): closes each mailbox and hangs up each socket.
    pub fn close_all(&mut self) {
        for route in self.routes.values_mut() {
            route.hang_up(Hang::Both);
        }
    }

    /// The connections handed items since the last call (with [`Host::track_touched`]).
    pub fn take_touched(&mut self, out: &mut Vec<ConnId>) {
        if let Some(touched) = &mut self.touched {
            out.append(touched);
        }
    }

    /// Whether the host routes `conn`: from [`Host::open`] (or [`Host::attach`]) until its
    /// writer reports the end ([`Host::ended`]).
    pub fn routes(&self, conn: ConnId) -> bool {
        self.routes.contains_key(&conn)
    }

    /// How many connections the host routes (none once every connection has ended).
    pub fn routes_len(&self) -> usize {
        self.routes.len()
    }

    /// `conn`'s mailbox, while the host routes it.
    pub fn mailbox(&self, conn: ConnId) -> Option<Arc<Mailbox<Outgoing, F>>> {
        self.routes.get(&conn).map(|route| route.mailbox.clone())
    }

    /// Outputs the core addressed to a connection after closing it itself (they are dropped).
    /// Always zero for a correct core; the fuzz driver checks it.
    pub fn outputs_after_close(&self) -> u64 {
        self.outputs_after_close
    }

    /// The core, for getters.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The record sink, for getters.
    pub fn sink(&self) -> &K {
        &self.sink
    }

    /// The record sink.
    pub fn sink_mut(&mut self) -> &mut K {
        &mut self.sink
    }

    /// Takes the sink out (to stop it without the driver's lock), leaving `replacement`.
    pub fn replace_sink(&mut self, replacement: K) -> K {
        std::mem::replace(&mut self.sink, replacement)
    }

    /// Gives the sink back (the simulator's disk outlives a crashed host).
    pub fn into_sink(self) -> K {
        self.sink
    }

    /// When the next [`Event::Tick`] is due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.server.poll_timeout()
    }

    fn drain(&mut self, now_ms: u64) {
        loop {
            while let Some(output) = self.server.poll_output() {
                self.route(output);
            }
            if !self.written_through.is_empty() {
                // Reported now, under the same lock as the write: before anything else about
                // these relays, in particular before their writers can report the end.
                for (conn, last) in std::mem::take(&mut self.written_through) {
                    self.server
                        .handle_input(Input { now_ms, event: Event::Written { conn, last } });
                }
                continue;
            }
            let last = self.server.last_lsn();
            let synchronous = self.sink.is_synchronous();
            #[cfg(any(test, feature = "planted"))]
            let synchronous = synchronous || self.planted() == Planted::HostAssumesSyncSink;
            if !synchronous || self.server.durable_lsn() == last {
                break;
            }
            self.server.handle_input(Input { now_ms, event: Event::Durable { lsn: last } });
        }
    }

    fn route(&mut self, output: Output) {
        let (conn, item) = match output {
            Output::Persist { lsn, record } => return self.sink.persist(lsn, record),
            Output::Password(job) => (job.conn, Outgoing::Password(job)),
            Output::Reply { conn, frame } => (conn, Outgoing::Reply(frame)),
            Output::Push { conn, msg, frame } => (conn, Outgoing::Push { msg, frame }),
            Output::Close { conn } => {
                if let Some(route) = self.routes.get_mut(&conn) {
                    self.sink.releasing(conn, None);
                    route.closed_by_core = true;
                    route.hang_up(Hang::Read);
                    self.touch(conn);
                }
                #[cfg(any(test, feature = "planted"))]
                if self.planted() == Planted::HostClosesEarly {
                    let now_ms = self.server.now_ms();
                    self.server.handle_input(Input { now_ms, event: Event::Closed { conn } });
                }
                return;
            }
        };
        let Some(route) = self.routes.get_mut(&conn) else { return };
        if !matches!(item, Outgoing::Password(_)) {
            self.sink.releasing(conn, Some(&item));
        }
        let pushed = match &mut self.wakes {
            None => route.own_mailbox().push(item),
            Some(wakes) => {
                let through = self.write_through
                    && matches!(item, Outgoing::Push { .. })
                    && self.server.relay_acknowledges(conn);
                let written = through.then_some(&mut self.written_through);
                route.own_mailbox();
                hand_deferred(conn, route, item, written, wakes)
            }
        };
        match pushed {
            Ok(()) => {}
            Err(PushError::Closed(_)) => {
                self.outputs_after_close += u64::from(route.closed_by_core);
                return;
            }
            Err(PushError::Full(_)) => {
                // The core bounds what it hands a connection, so this means a writer that
                // stopped: closing loses nothing, the core keeps every message until it is
                // reported written and pushes it again on the next relay.
                tracing::warn!(?conn, "connection's outgoing queue is full; closing it");
                route.hang_up(Hang::Both);
            }
        }
        self.touch(conn);
    }

    /// Notes that `conn`'s writer has something to do (items, or a close to notice).
    fn touch(&mut self, conn: ConnId) {
        if let Some(touched) = &mut self.touched {
            if touched.last() != Some(&conn) {
                touched.push(conn);
            }
        }
    }
}

/// A copy for a driver that branches a whole host, single-threaded (the model checker copies a
/// state per transition): the copy routes the same connections to mailboxes of its own holding
/// the same items, so what one copy's writers take the other's still hold (with
/// [`Host::share_empty_mailboxes`], an empty mailbox is shared until either host changes it).
/// No writer may be waiting on a mailbox of the host being copied.
impl<S: Socket + Clone, K: Clone, F: Flavour> Clone for Host<S, K, F> {
    fn clone(&self) -> Self {
        // Cloned as a tree (collecting the routes again would sort them again).
        let routes = self.routes.clone();
        // The copy owes its writers the wakes the original owes its own.
        let wakes = self.wakes.as_ref().map(|wakes| {
            let owed = |mailbox: &Arc<Mailbox<Outgoing, F>>| {
                let (conn, _) =
                    self.routes.iter().find(|(_, r)| Arc::ptr_eq(&r.mailbox, mailbox))?;
                Some(routes[conn].mailbox.clone())
            };
            wakes.iter().filter_map(owed).collect()
        });
        Host {
            server: self.server.clone(),
            routes,
            sink: self.sink.clone(),
            touched: self.touched.clone(),
            outputs_after_close: self.outputs_after_close,
            wakes,
            write_through: self.write_through,
            shares_mailboxes: self.shares_mailboxes,
            written_through: self.written_through.clone(),
        }
    }

    /// Reuses this host's buffers where it can (the core's and the routes' maps are copied
    /// afresh).
    fn clone_from(&mut self, source: &Self) {
        if source.wakes.is_some() {
            // Owed wakes point into the routes: copied as `clone` does.
            *self = source.clone();
            return;
        }
        let Host {
            server,
            routes,
            sink,
            touched,
            outputs_after_close,
            wakes,
            write_through,
            shares_mailboxes,
            written_through,
        } = self;
        server.clone_from(&source.server);
        routes.clone_from(&source.routes);
        sink.clone_from(&source.sink);
        touched.clone_from(&source.touched);
        *outputs_after_close = source.outputs_after_close;
        *wakes = None;
        *write_through = source.write_through;
        *shares_mailboxes = source.shares_mailboxes;
        written_through.clone_from(&source.written_through);
    }
}

impl<S, K, F: Flavour> std::fmt::Debug for Host<S, K, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("server", &self.server)
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Hands `item` to `route`'s mailbox without waking its writer, noting in `wakes` a writer owed
/// a wake (once); with `written`, a push to an idle writer is written at once instead and noted
/// there (see [`Host::write_through`]).
fn hand_deferred<S: Socket, F: Flavour>(
    conn: ConnId,
    route: &Route<S, F>,
    item: Outgoing,
    written: Option<&mut Vec<(ConnId, MsgId)>>,
    wakes: &mut Vec<Arc<Mailbox<Outgoing, F>>>,
) -> Result<(), PushError<Outgoing>> {
    let handed = match written {
        Some(written) => route.mailbox.push_or_write(item, |item| {
            write_now(route, item, |msg| note_written(written, conn, msg))
        }),
        None => route.mailbox.push_deferred(item).map(|wake| Handed::Queued { wake }),
    }?;
    let owed = handed == Handed::Queued { wake: true };
    #[cfg(any(test, feature = "planted"))]
    // BUG (planted): a wake owed while another is already owed is dropped.
    let owed = owed && (route.planted != Planted::WakeOwedOnce || wakes.is_empty());
    if owed && !wakes.iter().any(|mailbox| Arc::ptr_eq(mailbox, &route.mailbox)) {
        wakes.push(route.mailbox.clone());
    }
    Ok(())
}

/// Writes a push to `socket` at once (see [`Host::write_through`]); `None` when all of it was
/// written (then `written` is told), else what is left of it, for the relay's writer.
fn write_now<S: Socket, F: Flavour>(
    route: &Route<S, F>,
    item: Outgoing,
    written: impl FnOnce(MsgId),
) -> Option<Outgoing> {
    let Outgoing::Push { msg, frame } = item else { return Some(item) };
    match route.socket.write_now(&frame) {
        n if n == frame.len() => {
            written(msg);
            None
        }
        0 => Some(Outgoing::Push { msg, frame }),
        #[cfg(any(test, feature = "planted"))]
        _ if route.planted == Planted::ThroughRestWhole => Some(Outgoing::Push { msg, frame }),
        // The rest goes first in the writer's next batch, which reports `msg` once written.
        n => Some(Outgoing::Push { msg, frame: frame[n..].to_vec() }),
    }
}

/// Notes that `conn`'s pushes through `msg` were written (one entry per relay: the last).
fn note_written(written: &mut Vec<(ConnId, MsgId)>, conn: ConnId, msg: MsgId) {
    match written.iter_mut().find(|(c, _)| *c == conn) {
        Some(entry) => entry.1 = msg,
        None => written.push((conn, msg)),
    }
}

/// Room in every mailbox beyond the core's own bound: a failure frame and a close.
const MAILBOX_SLACK: usize = 64;

/// The most bytes an adapter hands the host from one read of a connection (the command
/// thread's read; a relay reads less). With [`Host::may_read`] and [`Host::may_read_ahead`],
/// it bounds what the core buffers from a connection: a partial request and one read. The
/// server's flag conversion sizes `Config::inbound_buffered_len_max` by it
/// (`net::cli::ServerArgs::core_config`).
pub const READ_LEN_MAX: usize = 16 * 1024;

/// Reads a command connection gets ahead of the replies it owes at one turn, at most (the TCP
/// adapter's `Shared::read_ahead`, which holds the core's lock for each; the simulator's
/// server reads ahead the same way).
pub const READ_AHEAD_TURNS_MAX: usize = 4;

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    use super::*;
    use crate::core::Config;

    fn host() -> Host<(), MemorySink, mailbox::OneThread> {
        let server = Server::new(Config::default(), ChaCha20Rng::seed_from_u64(0));
        let mut host = Host::new(server, MemorySink);
        host.share_empty_mailboxes();
        host
    }

    #[test]
    fn copies_share_empty_mailboxes_until_one_changes() {
        let mut original = host();
        let conn = ConnId(1);
        let mailbox = original.open(0, conn, Channel::Command, Peer(1), ());
        drop(mailbox);
        let mut copy = original.clone();
        let shared = |a: &Host<_, _, _>, b: &Host<_, _, _>| {
            Arc::ptr_eq(&a.routes[&conn].mailbox, &b.routes[&conn].mailbox)
        };
        assert!(shared(&original, &copy));
        // A change to the copy's mailbox is the copy's own.
        assert!(copy.close_mailbox(conn));
        assert!(!shared(&original, &copy));
        let mut items = Vec::new();
        assert_eq!(copy.take_all(conn, &mut items), Some(Taken::Closed));
        assert_eq!(original.take_all(conn, &mut items), Some(Taken::Open));
        // An item routed to the original stays there, and is copied, not shared.
        let copy = original.clone();
        original.route(Output::Close { conn });
        assert!(!shared(&original, &copy));
        assert_eq!(original.take_all(conn, &mut items), Some(Taken::Closed));
        let mut copy = copy;
        assert_eq!(copy.take_all(conn, &mut items), Some(Taken::Open));
        assert!(items.is_empty());
    }
}
