//! The command thread: reads requests from one command connection, drives the core, writes
//! the replies, and runs that connection's password jobs off the lock.
//!
//! It reads the next request only when no reply is owed, so a client that pipelines waits in
//! the kernel's buffers, not in the server's memory.

use std::net::Shutdown;

use super::driver::{write_frames, Outgoing, Shared};
use super::hashing::HashPool;
use super::mailbox::{Mailbox, Taken};
use super::socket::SharedSocket;
use super::sync::Arc;
use crate::core::{ConnId, Event};

pub(crate) struct CommandConn {
    pub shared: Arc<Shared>,
    pub hashing: Arc<HashPool>,
    pub conn: ConnId,
    pub stream: SharedSocket,
    pub mailbox: Arc<Mailbox<Outgoing>>,
}

impl CommandConn {
    pub fn run(self) {
        let mut buf = vec![0u8; 16 * 1024];
        while self.answer_owed() {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.shared.handle(Event::Received { conn: self.conn, bytes: &buf[..n] }),
            }
        }
        // Whatever the core still had for us (a failure reply before a close) goes out first.
        let _ = self.flush_once();
        self.stream.shutdown(Shutdown::Both);
        self.shared.close(self.conn);
    }

    /// Writes replies and runs jobs until no reply is owed. False when the connection is done.
    fn answer_owed(&self) -> bool {
        loop {
            let awaiting = self.shared.awaiting_reply(self.conn);
            let mut items = Vec::new();
            let taken = if awaiting {
                self.mailbox.take_all(&mut items)
            } else {
                self.mailbox.try_take_all(&mut items)
            };
            let idle = items.is_empty();
            if !self.handle_items(items) || taken == Taken::Closed {
                return false;
            }
            if !awaiting && idle {
                return true;
            }
        }
    }

    fn flush_once(&self) -> bool {
        let mut items = Vec::new();
        let _ = self.mailbox.try_take_all(&mut items);
        self.handle_items(items)
    }

    /// Writes frames and runs password jobs, in order. False if a write failed.
    fn handle_items(&self, items: Vec<Outgoing>) -> bool {
        let mut frames = Vec::new();
        for item in items {
            match item {
                Outgoing::Frame(frame) | Outgoing::Push { frame, .. } => frames.push(frame),
                Outgoing::Password(job) => {
                    if !frames.is_empty() && write_frames(&**self.stream, &frames).is_err() {
                        return false;
                    }
                    frames.clear();
                    let outcome = self.hashing.run(&job);
                    self.shared.handle(Event::PasswordDone { job: job.job, outcome });
                }
            }
        }
        frames.is_empty() || write_frames(&**self.stream, &frames).is_ok()
    }
}
