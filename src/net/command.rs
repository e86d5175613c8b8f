//! The command thread: reads requests from one command connection, hands them to the host,
//! writes the replies, and runs that connection's password jobs off the lock.
//!
//! It reads only when the host says so ([`Shared::may_read`]: no reply owed), so a client that
//! pipelines waits in the kernel's buffers, not in the server's memory. While it waits for the
//! replies it owes, the connection is read ahead of them by whoever holds the core's lock
//! ([`Shared::read_ahead`]: the shared relay reader, on a readiness event, and this thread
//! right after each read), without waiting and only as far as the core decodes at once: a
//! client's next send joins the next sync instead of waiting for the last one's reply.

use std::net::Shutdown;

use super::driver::{write_batch, Shared};
use super::hashing::HashPool;
use super::relay_reader::RelayReader;
use super::socket::SharedSocket;
#[cfg(any(test, feature = "planted"))]
use crate::core::planted::Planted;
use crate::core::{ConnId, Event};
use crate::host::mailbox::{Mailbox, Taken};
use crate::host::sync::Arc;
use crate::host::{Batch, Outgoing};

pub(crate) struct CommandConn {
    pub shared: Arc<Shared>,
    pub hashing: Arc<HashPool>,
    pub conn: ConnId,
    pub stream: SharedSocket,
    pub mailbox: Arc<Mailbox<Outgoing>>,
    /// The reader that reads this connection ahead of its replies, once registered there
    /// (`None` under loom, whose models call [`Shared::read_ahead`] from threads of their own).
    pub reader: Option<Arc<RelayReader>>,
}

/// What the shared reader needs to read a command connection ahead of its replies.
pub(crate) struct ReadAhead {
    pub shared: Arc<Shared>,
    pub conn: ConnId,
    pub stream: SharedSocket,
}

impl ReadAhead {
    /// The socket may hold bytes: reads them if the host allows it now.
    pub fn readable(&self, buf: &mut [u8]) {
        self.shared.read_ahead(self.conn, &**self.stream, buf);
    }
}

impl CommandConn {
    pub fn run(self) {
        let mut buf = vec![0u8; READ_LEN];
        let mut writer = Writer::default();
        while self.answer_owed(&mut writer) {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                // Then what came while this thread read and fed, and so raised no readiness
                // event the shared reader could still act on.
                Ok(n) => {
                    self.shared.received_then_read_ahead(self.conn, &**self.stream, &mut buf, n)
                }
            }
        }
        if let Some(reader) = &self.reader {
            // Before the socket can go: the reader must not read a descriptor reused.
            reader.remove(self.conn);
        }
        // Whatever the core still had for us (a failure reply before a close) goes out first.
        let mut items = Vec::new();
        let _ = self.mailbox.try_take_all(&mut items);
        let _ = self.write_items(&mut writer, &mut items);
        self.stream.shutdown(Shutdown::Both);
        self.shared.ended(self.conn);
    }

    /// Writes replies and runs jobs until the connection may be read. False when it is done.
    fn answer_owed(&self, writer: &mut Writer) -> bool {
        let mut items = Vec::new();
        let mut asked = None;
        loop {
            // Asked with the last report of replies written, if there was one.
            let may_read = asked.take().unwrap_or_else(|| self.shared.may_read(self.conn));
            // Watched by the shared reader only while this thread does not read itself.
            self.watch(!may_read);
            let taken = if may_read {
                self.mailbox.try_take_all(&mut items)
            } else {
                self.mailbox.take_all(&mut items)
            };
            let idle = items.is_empty();
            match self.write_items(writer, &mut items) {
                #[cfg(any(test, feature = "planted"))]
                Written::Failed if self.shared.planted_is(Planted::CommandWriteFailureIgnored) => {}
                Written::Failed => return false,
                Written::Asked(may_read) => asked = Some(may_read),
                Written::NotAsked => {}
            }
            if taken == Taken::Closed {
                return false;
            }
            if may_read && idle {
                return true;
            }
        }
    }

    fn watch(&self, on: bool) {
        if let Some(reader) = &self.reader {
            reader.watch(self.conn, on);
        }
    }

    /// Writes frames, reports them, then runs password jobs.
    fn write_items(&self, writer: &mut Writer, items: &mut Vec<Outgoing>) -> Written {
        let Writer { batch, buf } = writer;
        batch.sort(items);
        let mut written = Written::NotAsked;
        if !batch.frames.is_empty() {
            if write_batch(&**self.stream, batch, buf).is_err() {
                batch.clear_written();
                batch.jobs.clear();
                return Written::Failed;
            }
            if batch.jobs.is_empty() {
                written = Written::Asked(self.shared.wrote_then_may_read(self.conn, batch));
            } else {
                // The jobs' outcomes may owe more replies: asked after them.
                self.shared.wrote(self.conn, batch);
            }
        }
        batch.clear_written();
        for job in batch.jobs.drain(..) {
            let outcome = self.hashing.run(&job);
            self.shared.handle(Event::PasswordDone { job: job.job, outcome });
        }
        written
    }
}

/// What [`CommandConn::write_items`] did.
enum Written {
    /// A write failed: the connection is done.
    Failed,
    /// Frames were written and reported, no job ran after them, and the report also asked
    /// whether the connection may be read (under the same lock): the answer.
    Asked(bool),
    /// Nothing to report, or jobs ran after the report (their outcomes may owe more replies):
    /// whether the connection may be read is still to be asked.
    NotAsked,
}

/// A writer's buffers, kept across batches.
#[derive(Default)]
struct Writer {
    batch: Batch,
    buf: Vec<u8>,
}

/// Bytes read from a command connection at a time.
const READ_LEN: usize = crate::host::READ_LEN_MAX;
