//! The relay thread pair of one relay connection.
//!
//! The relay thread blocks on the connection's mailbox until the core hands it pushes, writes
//! them in one batch, and reports the last one written. The reader thread reads the handshake
//! and acknowledgements and feeds them to the core; when the socket ends it reports the close.

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
        // Ends the reader too, which reports the close to the core.
        self.stream.shutdown(Shutdown::Both);
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
        self.mailbox.close();
        self.shared.close(self.conn);
    }
}
