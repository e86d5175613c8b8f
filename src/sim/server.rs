//! The simulated server machine: the shipped [`Host`] (and through it the real core) with the
//! simulator's socket and record sink plugged in, and the per-connection state that in
//! production lives in the thread pair (bytes the kernel holds for a command thread that may
//! not read yet, whether a writer is due to run).
//!
//! Nothing here decides what the server does: routing, queue bounds, read gating and the order
//! of write and close reports are the host's. The world (`world.rs`) only chooses when each
//! writer runs and how the bytes travel.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use rand_chacha::ChaCha20Rng;

use super::disk::SimStore;
use crate::core::{Channel, ConnId, Lsn, Record, Server, SnapshotView};
use crate::host::mailbox::{Mailbox, OneThread};
use crate::host::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::host::sync::Arc;
use crate::host::{self, Batch, Host, Outgoing, RecordSink};
use crate::wire::HEADER_LEN;

/// Bytes a command thread reads at a time (`net::command`'s read size).
pub(super) const READ_LEN: usize = host::READ_LEN_MAX;

/// A running server: the host, and what the threads of each connection hold.
pub(super) struct Up {
    pub host: Host<SimSocket, SimSink, OneThread>,
    pub conns: Conns,
    /// The store's writer thread has a turn scheduled ([`super::world`]'s `Ev::Writer`).
    pub writer_scheduled: bool,
    pub tick_at_ms: Option<u64>,
    /// Scratch space for a writer's batch.
    pub items: Vec<Outgoing>,
    pub batch: Batch,
    pub touched: Vec<ConnId>,
    /// Scratch space for a command thread's read.
    pub read_buf: Vec<u8>,
    /// Scratch space for the writers the host owes a wake.
    pub wakes: Vec<Arc<Mailbox<Outgoing, OneThread>>>,
}

impl Up {
    pub fn new(core: Server, store: Box<dyn SimStore + Send>) -> Self {
        let sink = SimSink { store, persisted: Vec::new(), snapshots: Vec::new() };
        let mut host = Host::new(core, sink);
        host.track_touched();
        // As the TCP adapter runs it (`net::driver::Shared::new`): writers are woken only when
        // a wake is owed, and a push to an idle acknowledging relay is written at once.
        host.defer_wakes();
        host.write_through();
        Up {
            host,
            conns: Conns::default(),
            writer_scheduled: false,
            tick_at_ms: None,
            items: Vec::new(),
            batch: Batch::default(),
            touched: Vec::new(),
            read_buf: Vec::new(),
            wakes: Vec::new(),
        }
    }

    /// The disk, which outlives the crashed server.
    pub fn into_store(self) -> Box<dyn SimStore + Send> {
        self.host.into_sink().store
    }
}

/// The server side's connections by number. Numbers are handed out in increasing order and
/// never reused, so a connection's slot is found by subtracting the oldest live number: the
/// world looks a connection up several times per message, and a tree walk each time showed in
/// its profile. Slots of ended connections at the front are dropped, so the table spans the
/// live connections only.
#[derive(Default)]
pub(super) struct Conns {
    /// The number of `slots[0]` (`ConnId`'s, bare for the arithmetic).
    first: u64,
    slots: VecDeque<Option<ServerConn>>,
}

impl Conns {
    /// Adds `conn`, numbered above every connection added before.
    pub fn insert(&mut self, ConnId(conn): ConnId, server_conn: ServerConn) {
        if self.slots.is_empty() {
            self.first = conn;
        }
        assert!(conn >= self.first, "connection numbers only grow");
        let index = (conn - self.first) as usize;
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        self.slots[index] = Some(server_conn);
    }

    pub fn get(&self, ConnId(conn): ConnId) -> Option<&ServerConn> {
        let index = usize::try_from(conn.checked_sub(self.first)?).ok()?;
        self.slots.get(index)?.as_ref()
    }

    pub fn get_mut(&mut self, ConnId(conn): ConnId) -> Option<&mut ServerConn> {
        let index = usize::try_from(conn.checked_sub(self.first)?).ok()?;
        self.slots.get_mut(index)?.as_mut()
    }

    /// Every live connection's server side, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &ServerConn> {
        self.slots.iter().flatten()
    }

    pub fn remove(&mut self, ConnId(conn): ConnId) -> Option<ServerConn> {
        let index = usize::try_from(conn.checked_sub(self.first)?).ok()?;
        let removed = self.slots.get_mut(index)?.take();
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.first += 1;
        }
        removed
    }
}

/// The server side of one connection.
pub(super) struct ServerConn {
    pub chan: Channel,
    pub mailbox: Arc<Mailbox<Outgoing, OneThread>>,
    pub socket: SimSocket,
    /// A writer run is scheduled (the thread has items to take).
    pub scheduled: bool,
    /// A command thread blocked in `read` (the host let it read and its mailbox was empty).
    pub reading: bool,
    /// The client reads this relay slowly.
    pub slow: bool,
    /// Bytes that arrived on a command connection and wait in the kernel until its thread
    /// may read.
    pub inbox: VecDeque<u8>,
    /// The client's end of the stream arrived after `inbox`.
    pub eof: bool,
    /// The delays of this connection's threads (its writer's, its password jobs'), a stream
    /// of its own (`sim::rng::Stream::Threads`).
    pub rng: ChaCha20Rng,
    /// What the host wrote straight to the socket of a push whose rest it queued: the
    /// writer's next batch begins with that rest.
    pub through_head: Vec<u8>,
}

impl ServerConn {
    pub fn new(
        chan: Channel,
        mailbox: Arc<Mailbox<Outgoing, OneThread>>,
        socket: SimSocket,
        slow: bool,
        rng: ChaCha20Rng,
    ) -> Self {
        ServerConn {
            rng,
            chan,
            mailbox,
            socket,
            scheduled: false,
            reading: chan == Channel::Command,
            slow,
            inbox: VecDeque::new(),
            eof: false,
            through_head: Vec::new(),
        }
    }

    /// The whole frames among `bytes`, which the host wrote straight to this relay's socket
    /// while its writer waited (so from a frame's start); a frame cut short stays as the head
    /// of the writer's next batch ([`ServerConn::join_head`]).
    pub fn through_frames(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        debug_assert!(self.through_head.is_empty(), "written through while a rest waits");
        let mut frames = Vec::new();
        let mut rest = bytes;
        while let Some(len) = frame_len(rest) {
            frames.push(rest[..len].to_vec());
            rest = &rest[len..];
        }
        self.through_head = rest.to_vec();
        frames
    }

    /// Makes `first`, the first frame of a writer's batch, whole again with what was written
    /// of it straight to the socket; returns how many of its bytes were.
    pub fn join_head(&mut self, first: &mut Vec<u8>) -> usize {
        let head_len = self.through_head.len();
        if head_len > 0 {
            let mut whole = std::mem::take(&mut self.through_head);
            whole.extend_from_slice(first);
            *first = whole;
        }
        head_len
    }
}

/// The length of the frame `bytes` begins with, if they hold all of it.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    let header = bytes.get(..HEADER_LEN)?;
    let body_len: usize = std::str::from_utf8(header).ok()?.trim().parse().ok()?;
    let len = HEADER_LEN + body_len;
    (bytes.len() >= len).then_some(len)
}

/// A simulated socket as the host sees it: hanging it up both ways breaks it (its writes fail,
/// as a shut-down socket's do); a push the host writes straight to an idle relay
/// ([`Host::write_through`], as the TCP adapter runs it) takes what room its send buffer has
/// and waits in `through` for the world to send it. Shared with the connection's
/// [`ServerConn`].
#[derive(Clone, Default)]
pub(super) struct SimSocket(Arc<SocketState>);

#[derive(Default)]
struct SocketState {
    broken: AtomicBool,
    /// Bytes the send buffer takes without waiting (set by the world when the writer parks).
    room: AtomicUsize,
    /// Bytes written straight to the socket, not yet sent by the world.
    through: Mutex<Vec<u8>>,
}

impl SimSocket {
    /// Broken by the host (queue overflow) or by a reset: no write succeeds any more.
    pub fn is_broken(&self) -> bool {
        self.0.broken.load(Ordering::Relaxed)
    }

    pub fn break_it(&self) {
        self.0.broken.store(true, Ordering::Relaxed);
    }

    /// The send buffer takes `room_len` bytes from now on without waiting.
    pub fn set_room(&self, room_len: usize) {
        self.0.room.store(room_len, Ordering::Relaxed);
    }

    /// Moves the bytes written straight to the socket into `out`.
    pub fn take_through(&self, out: &mut Vec<u8>) {
        out.append(&mut self.0.through.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

impl host::Socket for SimSocket {
    fn hang_up(&self, how: host::Hang) {
        if how == host::Hang::Both {
            self.break_it();
        }
    }

    fn write_now(&self, bytes: &[u8]) -> usize {
        if self.is_broken() {
            return 0;
        }
        let n = bytes.len().min(self.0.room.load(Ordering::Relaxed));
        self.0.room.fetch_sub(n, Ordering::Relaxed);
        let mut through = self.0.through.lock().unwrap_or_else(PoisonError::into_inner);
        through.extend_from_slice(&bytes[..n]);
        n
    }
}

/// The simulated store as the host's record sink: records are submitted to the store's writer,
/// which reports them durable on a later turn, after the sync that covers them.
pub(super) struct SimSink {
    pub store: Box<dyn SimStore + Send>,
    /// Records submitted since the world last looked (for its trace and checker).
    pub persisted: Vec<(Lsn, Record)>,
    /// Snapshots requested since the world last looked.
    pub snapshots: Vec<Lsn>,
}

impl RecordSink for SimSink {
    fn persist(&mut self, lsn: Lsn, record: Record) {
        self.store.submit(lsn, &record);
        self.persisted.push((lsn, record));
    }

    fn is_synchronous(&self) -> bool {
        false
    }

    fn snapshot_due(&self) -> bool {
        self.store.snapshot_due()
    }

    fn request_snapshot(&mut self, view: SnapshotView) {
        self.store.request_snapshot(view.lsn(), &view.records());
        self.snapshots.push(view.lsn());
    }
}
