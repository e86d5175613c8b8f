//! The relay thread pair of one relay connection.
//!
//! The relay thread blocks on the connection's mailbox until the core hands it pushes, writes
//! them in one batch, and reports the last one written. The reader thread reads the handshake
//! and acknowledgements and feeds them to the core; when the socket ends it closes the mailbox.
//! The writer, once it has flushed what it holds, reports the close to the core: it is the last
//! of the two to speak for the connection, so no `Written` report can arrive after `Closed`
//! (the core ignores reports on a closed connection, and would push those messages again).

use std::net::Shutdown;

use super::driver::{write_frames, Outgoing, Shared};
use super::mailbox::{Mailbox, Taken};
use super::socket::SharedSocket;
use super::sync::Arc;
use crate::core::{ConnId, Event};

pub(crate) struct RelayConn {
    pub shared: Arc<Shared>,
    pub conn: ConnId,
    pub stream: SharedSocket,
    pub mailbox: Arc<Mailbox<Outgoing>>,
}

impl RelayConn {
    /// The relay (writer) thread's body.
    pub fn write_loop(&self) {
        let mut items = Vec::new();
        let mut frames = Vec::new();
        loop {
            let taken = self.mailbox.take_all(&mut items);
            let mut last = None;
            for item in items.drain(..) {
                match item {
                    Outgoing::Frame(frame) => frames.push(frame),
                    Outgoing::Push { msg, frame } => {
                        frames.push(frame);
                        last = Some(msg);
                    }
                    Outgoing::Password(_) => {
                        unreachable!("password jobs go to command connections")
                    }
                }
            }
            if !frames.is_empty() {
                if write_frames(&**self.stream, &frames).is_err() {
                    break;
                }
                frames.clear();
            }
            if let Some(last) = last {
                self.shared.handle(Event::Written { conn: self.conn, last });
            }
            if taken == Taken::Closed {
                break;
            }
        }
        // Ends the reader too.
        self.stream.shutdown(Shutdown::Both);
        // Reported here, after this thread's last `Written`, never by the reader: a close the
        // core handled first would make it ignore that report and push those messages again on
        // the next relay, though the client already has them (found by loom, tests/loom_glue.rs).
        self.shared.close(self.conn);
    }

    /// The reader thread's body.
    pub fn read_loop(&self) {
        let mut buf = vec![0u8; 4 * 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.shared.handle(Event::Received { conn: self.conn, bytes: &buf[..n] }),
            }
        }
        // The writer flushes what it holds, then ends and reports the close.
        self.mailbox.close();
    }
}
