//! The relay reader: one thread reads every relay connection of the server.
//!
//! A relay only ever sends its handshake and acknowledgements, so a thread per relay that
//! sleeps in `read` costs a stack, a heap and memory maps per client for next to no work
//! (and the maps cap how many clients one process can hold). Instead one `mio` event loop
//! waits for any relay socket to become readable, reads what it holds without waiting
//! ([`Socket::read_now`]: the sockets themselves stay blocking for their writer threads), and
//! makes the same two calls the per-relay reader of the loom models makes:
//! [`RelayConn::received`] and, at end of file, [`RelayConn::read_ended`].
//!
//! It also watches each command connection while its command thread waits for the replies it
//! owes ([`RelayReader::watch`]), for one purpose: a request that arrives then is read ahead of
//! them ([`ReadAhead::readable`], which reads only if the host allows it, under the core's
//! lock). The command thread reads everything else itself and removes its connection when it
//! ends.

use std::collections::HashMap;
use std::io;
use std::os::fd::RawFd;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};

use super::command::ReadAhead;
use super::relay::{RelayConn, READ_LEN};
use crate::core::ConnId;
use crate::host::sync::atomic::{AtomicBool, Ordering};
use crate::host::sync::{Arc, Mutex};

/// The waker's token: no connection id reaches it.
const STOP: Token = Token(usize::MAX);
/// Reads from one socket before the loop moves on to the others (fairness under a flood of
/// acknowledgements); a socket with more is re-armed and comes round again.
const READS_PER_TURN_MAX: usize = 8;

/// The registered relays, shared by the accept loop (which adds) and the reader thread.
pub(crate) struct RelayReader {
    registry: Registry,
    relays: Mutex<HashMap<usize, Entry>>,
    waker: Waker,
    stopping: AtomicBool,
}

struct Entry {
    fd: RawFd,
    source: Source,
    /// Registered with the poll: a relay always; a command connection only while its thread
    /// waits for replies ([`RelayReader::watch`]).
    watched: bool,
}

/// What a registered socket is.
#[derive(Clone)]
enum Source {
    Relay(Arc<RelayConn>),
    Command(Arc<ReadAhead>),
}

impl RelayReader {
    /// The reader and the poll its thread runs ([`RelayReader::run`]).
    pub fn new() -> io::Result<(Arc<RelayReader>, Poll)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = Waker::new(poll.registry(), STOP)?;
        let reader = RelayReader {
            registry,
            relays: Mutex::new(HashMap::new()),
            waker,
            stopping: AtomicBool::new(false),
        };
        Ok((Arc::new(reader), poll))
    }

    /// Starts reading `relay`, whose socket is `fd` (kept open by `relay`'s stream). Bytes that
    /// arrived before this call are read too: registering reports a socket already readable.
    pub fn add(&self, fd: RawFd, relay: Arc<RelayConn>) -> io::Result<()> {
        let token = relay.conn.0 as usize;
        self.register(token, fd, Source::Relay(relay))
    }

    /// Knows the command connection `ahead` reads, whose socket is `fd` (kept open by its
    /// command thread until it calls [`RelayReader::remove`]); it is watched only between
    /// [`RelayReader::watch`] calls with `true` and `false`.
    pub fn add_command(&self, fd: RawFd, ahead: Arc<ReadAhead>) {
        let entry = Entry { fd, source: Source::Command(ahead.clone()), watched: false };
        self.relays.lock().expect("relay reader lock").insert(ahead.conn.0 as usize, entry);
    }

    /// Starts (`on`) or stops watching the command connection `conn`: its thread waits for
    /// replies from now on, or reads itself. Watched only then, because every byte that
    /// arrives on a watched socket wakes this thread: while the command thread sleeps in
    /// `read`, that wake-up would find nothing to do. A socket that holds bytes when watched
    /// is reported at once.
    pub fn watch(&self, conn: ConnId, on: bool) {
        let token = conn.0 as usize;
        let mut relays = self.relays.lock().expect("relay reader lock");
        let Some(entry) = relays.get_mut(&token).filter(|entry| entry.watched != on) else {
            return;
        };
        let mut fd = SourceFd(&entry.fd);
        let done = match on {
            true => self.registry.register(&mut fd, Token(token), Interest::READABLE),
            false => self.registry.deregister(&mut fd),
        };
        // If that failed, the connection is read only once its replies are out, as without
        // read-ahead.
        entry.watched = on && done.is_ok();
    }

    /// Forgets the command connection `conn` (its thread is ending).
    pub fn remove(&self, conn: ConnId) {
        let entry = self.relays.lock().expect("relay reader lock").remove(&(conn.0 as usize));
        if let Some(Entry { fd, watched: true, .. }) = entry {
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
    }

    fn register(&self, token: usize, fd: RawFd, source: Source) -> io::Result<()> {
        let entry = Entry { fd, source, watched: true };
        self.relays.lock().expect("relay reader lock").insert(token, entry);
        let registered =
            self.registry.register(&mut SourceFd(&fd), Token(token), Interest::READABLE);
        registered.inspect_err(|_| {
            self.relays.lock().expect("relay reader lock").remove(&token);
        })
    }

    /// Ends [`RelayReader::run`] (relays still registered are ended by the server's shutdown,
    /// which shuts every socket down first).
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    /// The reader thread's body: returns once stopped.
    pub fn run(&self, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; READ_LEN];
        while !self.stopping.load(Ordering::Acquire) {
            if let Err(error) = poll.poll(&mut events, None) {
                if error.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                tracing::error!(%error, "the relay reader cannot poll; relays go unread");
                return;
            }
            for event in events.iter().filter(|event| event.token() != STOP) {
                self.read(event.token().0, &mut buf);
            }
        }
    }

    /// Reads what one relay holds, up to [`READS_PER_TURN_MAX`] reads; or reads a command
    /// connection ahead of its replies, if it may be.
    fn read(&self, token: usize, buf: &mut [u8]) {
        let source =
            self.relays.lock().expect("relay reader lock").get(&token).map(|e| e.source.clone());
        let relay = match source {
            Some(Source::Relay(relay)) => relay,
            Some(Source::Command(ahead)) => return ahead.readable(buf),
            None => return,
        };
        for _ in 0..READS_PER_TURN_MAX {
            match relay.stream.read_now(buf) {
                Ok(0) => return self.end(token),
                Ok(n) => relay.received(&buf[..n]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return self.end(token),
            }
        }
        #[cfg(any(test, feature = "planted"))]
        if relay.shared.planted_is(crate::core::planted::Planted::RelayReaderNotRearmed) {
            return;
        }
        // More to read: re-arming an edge-triggered socket that is still readable reports it
        // again, after the others had their turn.
        let fd = self.relays.lock().expect("relay reader lock").get(&token).map(|e| e.fd);
        if let Some(fd) = fd {
            let rearmed =
                self.registry.reregister(&mut SourceFd(&fd), Token(token), Interest::READABLE);
            if rearmed.is_err() {
                self.end(token);
            }
        }
    }

    /// The relay's socket ended: forget it and let its writer finish.
    fn end(&self, token: usize) {
        let entry = self.relays.lock().expect("relay reader lock").remove(&token);
        if let Some(Entry { fd, source: Source::Relay(relay), .. }) = entry {
            // Before the last reference to the socket can go (the writer may hold the other).
            let _ = self.registry.deregister(&mut SourceFd(&fd));
            relay.read_ended();
        }
    }
}
