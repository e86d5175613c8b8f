//! The host behind one lock, shared by every thread of the adapter.
//!
//! Every thread that has news for the core (a command thread with bytes, a relay thread that
//! wrote, the timer) calls [`Shared::handle`] or one of its siblings: it locks, passes the news
//! with the current time to the [`Host`], which drains and routes every output into connection
//! mailboxes before the lock is let go. That is what makes [`Shared::may_read`] trustworthy:
//! once it says "read", every reply owed on that connection is already in its mailbox.
//!
//! The log writer is the exception: it must never wait for the lock (a thread holding it may
//! be waiting for room in the writer's queue), so [`Shared::durable`] records the lsn and feeds
//! it only if the lock is free; otherwise whoever holds the lock feeds it when letting go
//! ([`HostGuard`]'s drop), and checks again after unlocking, so no report is left behind.

use std::net::Shutdown;
use std::time::Instant;

use super::socket::{SharedSocket, Socket};
use super::timer::TimerState;
use crate::core::Lsn;
use crate::core::{Channel, ConnId, Event, Peer, Server};
use crate::host::mailbox::Mailbox;
use crate::host::sync::atomic::{fence, AtomicU64, Ordering};
use crate::host::sync::{Arc, Mutex, MutexGuard};
use crate::host::{self, Batch, Host, MemorySink, Outgoing, RecordSink};

/// The adapter's record sink: the write-ahead log's writer, or nothing.
pub(crate) type Sink = Box<dyn RecordSink + Send>;

/// A connection's socket as the host ends it; `None` for the server's own connections.
pub(crate) struct HostSocket(pub Option<SharedSocket>);

impl host::Socket for HostSocket {
    fn write_now(&self, bytes: &[u8]) -> usize {
        self.0.as_ref().map_or(0, |stream| stream.write_now(bytes).unwrap_or(0))
    }

    fn hang_up(&self, how: host::Hang) {
        if let Some(stream) = &self.0 {
            stream.shutdown(match how {
                host::Hang::Read => Shutdown::Read,
                host::Hang::Both => Shutdown::Both,
            });
        }
    }
}

/// The host and the adapter's clock, shared by every thread of the adapter.
pub(crate) struct Shared {
    host: Mutex<Host<HostSocket, Sink>>,
    started: Instant,
    pub timer: TimerState,
    /// The latest durable lsn the log reported that the core was not fed yet (0: none).
    durable_pending: AtomicU64,
}

/// The host, locked; letting go feeds the core any durability the log reported meanwhile.
pub(crate) struct HostGuard<'a> {
    shared: &'a Shared,
    host: Option<MutexGuard<'a, Host<HostSocket, Sink>>>,
}

impl std::ops::Deref for HostGuard<'_> {
    type Target = Host<HostSocket, Sink>;

    fn deref(&self) -> &Self::Target {
        self.host.as_ref().expect("held until dropped")
    }
}

impl std::ops::DerefMut for HostGuard<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.host.as_mut().expect("held until dropped")
    }
}

impl Drop for HostGuard<'_> {
    fn drop(&mut self) {
        if let Some(host) = self.host.take() {
            self.shared.release(host);
        }
    }
}

impl Shared {
    pub fn new(server: Server, sink: Sink) -> Self {
        let mut host = Host::new(server, sink);
        host.defer_wakes();
        host.write_through();
        #[cfg(not(any(test, feature = "planted")))]
        let timer = TimerState::default();
        #[cfg(any(test, feature = "planted"))]
        let timer = TimerState::planted(host.server().config().planted);
        let host = Mutex::new(host);
        let durable_pending = AtomicU64::new(0);
        Shared { host, started: Instant::now(), timer, durable_pending }
    }

    fn lock(&self) -> HostGuard<'_> {
        let host = self.host.lock().expect("a server thread panicked while driving the core");
        HostGuard { shared: self, host: Some(host) }
    }

    /// The log writer's report that every record up to `lsn` is durable. Never waits for the
    /// lock: feeds the core now if the lock is free, else leaves it to the thread holding it.
    pub fn durable(&self, lsn: Lsn) {
        self.durable_pending.fetch_max(lsn.0, Ordering::SeqCst);
        // Pairs with the fence in `release`: either this thread's `try_lock` sees the lock
        // free, or the holder's check after unlocking sees the lsn stored above.
        fence(Ordering::SeqCst);
        self.feed_durable_if_free();
    }

    fn feed_durable_if_free(&self) {
        while self.durable_pending.load(Ordering::SeqCst) != 0 {
            let Ok(host) = self.host.try_lock() else { return };
            self.unlock(host);
        }
    }

    /// Lets the lock go, then looks for a report that came while it was held and found it
    /// taken.
    fn release(&self, host: MutexGuard<'_, Host<HostSocket, Sink>>) {
        self.unlock(host);
        self.feed_durable_if_free();
    }

    /// Feeds pending durability, re-arms the timer, unlocks, then wakes the writers the host
    /// handed items to meanwhile.
    fn unlock(&self, mut host: MutexGuard<'_, Host<HostSocket, Sink>>) {
        let lsn = self.durable_pending.swap(0, Ordering::SeqCst);
        if lsn != 0 {
            // At time 0, which leaves the core's clock where it is: no timer fires, so nothing
            // is persisted on this thread, which may be the log writer (its own queue could be
            // full).
            host.handle(0, Event::Durable { lsn: Lsn(lsn) });
        }
        self.timer.set(host.poll_timeout());
        let mut wakes = Vec::new();
        host.take_wakes(&mut wakes);
        drop(host);
        // Pairs with the fence in `durable`.
        fence(Ordering::SeqCst);
        // After the unlock: a writer woken under the lock would preempt this thread on a busy
        // core only to block on the lock (its next step is reporting what it wrote).
        for mailbox in wakes {
            mailbox.wake();
        }
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs `f` on the host with the current time (the timer is re-armed on release).
    fn with_host(&self, f: impl FnOnce(&mut Host<HostSocket, Sink>, u64)) {
        let now_ms = self.now_ms();
        let mut host = self.lock();
        f(&mut host, now_ms);
    }

    /// Feeds one event and routes everything it releases.
    pub fn handle(&self, event: Event<'_>) {
        self.with_host(|host, now_ms| host.handle(now_ms, event));
    }

    /// Registers a new connection and tells the core; returns its mailbox.
    pub fn open(
        &self,
        conn: ConnId,
        channel: Channel,
        peer: Peer,
        socket: Option<SharedSocket>,
    ) -> Arc<Mailbox<Outgoing>> {
        let mut mailbox = None;
        self.with_host(|host, now_ms| {
            mailbox = Some(host.open(now_ms, conn, channel, peer, HostSocket(socket)));
        });
        mailbox.expect("set above")
    }

    /// Registers a connection with a mailbox the caller made (loom models plant bugs in it).
    #[cfg(loom)]
    pub fn open_with(
        &self,
        conn: ConnId,
        channel: Channel,
        peer: Peer,
        mailbox: Arc<Mailbox<Outgoing>>,
        socket: SharedSocket,
    ) {
        self.with_host(|host, now_ms| {
            host.attach(conn, mailbox, HostSocket(Some(socket)));
            host.handle(now_ms, Event::Opened { conn, channel, peer });
        });
    }

    /// A writer of `conn` wrote `batch`'s frames.
    pub fn wrote(&self, conn: ConnId, batch: &Batch) {
        self.with_host(|host, now_ms| host.wrote(now_ms, conn, batch));
    }

    /// [`Shared::wrote`], then [`Shared::may_read`], under one lock: the command thread asks
    /// right after each batch of replies, and each lock costs an unlock's work (and, on a busy
    /// core, a wait behind whoever holds it).
    pub fn wrote_then_may_read(&self, conn: ConnId, batch: &Batch) -> bool {
        let mut may_read = false;
        self.with_host(|host, now_ms| {
            host.wrote(now_ms, conn, batch);
            may_read = host.may_read(conn);
        });
        may_read
    }

    /// The connection's writer is done: the last word about `conn`.
    pub fn ended(&self, conn: ConnId) {
        self.with_host(|host, now_ms| host.ended(now_ms, conn));
    }

    /// Reads the command connection `conn` ahead of the replies it owes, without waiting and
    /// under the lock, while the host allows it ([`Host::may_read_ahead`]), at most
    /// [`host::READ_AHEAD_TURNS_MAX`] reads; whatever is left waits for the command thread.
    ///
    /// Who reads a command socket: while no reply is owed, only its command thread, blocking
    /// and without the lock (it saw "nothing owed" under the lock, and only its own reads can
    /// change that); while replies are owed, only a thread holding the lock, here (the relay
    /// reader on a readiness event, or the command thread right after feeding a read). So no
    /// two reads of one socket ever overlap and bytes reach the core in order; and a send
    /// arriving while the previous one's reply waits for the disk joins the next sync instead
    /// of waiting for that reply.
    pub fn read_ahead(&self, conn: ConnId, stream: &dyn Socket, buf: &mut [u8]) {
        let now_ms = self.now_ms();
        let mut host = self.lock();
        Self::read_ahead_locked(&mut host, now_ms, conn, stream, buf);
    }

    /// The command thread's read: feeds the first `len` bytes of `buf`, read from `conn`,
    /// then reads ahead ([`Shared::read_ahead`], reusing `buf`), under one lock.
    pub fn received_then_read_ahead(
        &self,
        conn: ConnId,
        stream: &dyn Socket,
        buf: &mut [u8],
        len: usize,
    ) {
        let now_ms = self.now_ms();
        let mut host = self.lock();
        host.handle(now_ms, Event::Received { conn, bytes: &buf[..len] });
        Self::read_ahead_locked(&mut host, now_ms, conn, stream, buf);
    }

    fn read_ahead_locked(
        host: &mut Host<HostSocket, Sink>,
        now_ms: u64,
        conn: ConnId,
        stream: &dyn Socket,
        buf: &mut [u8],
    ) {
        for _ in 0..host::READ_AHEAD_TURNS_MAX {
            if !host.may_read_ahead(conn) {
                return;
            }
            match stream.read_now(buf) {
                Ok(n) if n > 0 => host.handle(now_ms, Event::Received { conn, bytes: &buf[..n] }),
                // Nothing there, the end or an error: the command thread meets the last two
                // in its own read, once the replies are written.
                _ => return,
            }
        }
    }

    /// Whether `bug` is planted in the core this adapter drives (the adapter's own planted
    /// bugs are switched on there too).
    #[cfg(any(test, feature = "planted"))]
    pub fn planted_is(&self, bug: crate::core::planted::Planted) -> bool {
        self.with_server(|server| server.config().planted == bug)
    }

    /// See [`Host::may_read`].
    pub fn may_read(&self, conn: ConnId) -> bool {
        self.lock().may_read(conn)
    }

    /// Runs `f` on the core (for getters).
    pub fn with_server<T>(&self, f: impl FnOnce(&Server) -> T) -> T {
        f(self.lock().server())
    }

    /// Closes every connection (shutdown).
    pub fn close_all(&self) {
        self.lock().close_all();
    }

    /// Stops the store after flushing it. The sink is taken out first so that the writer can
    /// finish reporting without waiting for this thread's lock.
    pub fn shutdown_store(&self) {
        let mut sink = self.lock().replace_sink(Box::new(MemorySink));
        sink.shutdown();
    }
}

/// Writes a batch's frames in one call; on failure, the bytes of them the socket took
/// ([`Socket::write_all`]).
pub(crate) fn write_batch(
    stream: &dyn Socket,
    batch: &Batch,
    buf: &mut Vec<u8>,
) -> Result<(), usize> {
    if let [frame] = batch.frames.as_slice() {
        return stream.write_all(frame);
    }
    batch.concat_frames(buf);
    stream.write_all(buf)
}
