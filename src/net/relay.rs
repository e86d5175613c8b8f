//! The relay thread pair of one relay connection.
//!
//! The relay thread blocks on the connection's mailbox until the host hands it pushes, writes
//! them in one batch, and reports them ([`Shared::wrote`]). The reader (in the server one
//! thread for every relay, `relay_reader.rs`; under loom a thread per relay) feeds the
//! handshake and acknowledgements to the host; when the socket ends it closes the mailbox.
//! The writer, once it has flushed what it holds, reports the end ([`Shared::ended`]): it is
//! the last of the two to speak for the connection, so no report of a write can arrive after
//! the close (the core ignores reports on a closed connection, and would push those messages
//! again). A batch whose write fails is reported as far as the socket took its frames whole:
//! those reach the client, and for the original client that is delivery.

use std::net::Shutdown;

use super::driver::{write_batch, Shared};
use super::socket::SharedSocket;
#[cfg(any(test, feature = "planted"))]
use crate::core::planted::Planted;
use crate::core::{ConnId, Event, MsgId};
use crate::host::mailbox::{Mailbox, Taken};
use crate::host::sync::Arc;
use crate::host::{Batch, Outgoing};

pub(crate) struct RelayConn {
    pub shared: Arc<Shared>,
    pub conn: ConnId,
    pub stream: SharedSocket,
    pub mailbox: Arc<Mailbox<Outgoing>>,
}

impl RelayConn {
    /// The relay (writer) thread's body.
    pub fn write_loop(&self) {
        let (mut items, mut batch, mut buf) = (Vec::new(), Batch::default(), Vec::new());
        let mut pushes = Vec::new();
        loop {
            let taken = self.mailbox.take_all(&mut items);
            pushes.clear();
            pushes.extend(items.iter().map(push_of));
            batch.sort(&mut items);
            assert!(batch.jobs.is_empty(), "password jobs go to command connections");
            if !batch.frames.is_empty() {
                if let Err(bytes) = write_batch(&**self.stream, &batch, &mut buf) {
                    self.wrote_before_failing(&batch, &pushes, bytes);
                    break;
                }
                self.shared.wrote(self.conn, &batch);
            }
            batch.clear_written();
            if taken == Taken::Closed {
                break;
            }
        }
        // Ends the reader too.
        self.stream.shutdown(Shutdown::Both);
        // Reported here, after this thread's last `wrote`, never by the reader: a close the
        // core handled first would make it ignore that report and push those messages again on
        // the next relay, though the client already has them (found by loom, tests/loom_glue.rs).
        self.shared.ended(self.conn);
    }

    /// Reports the frames of `batch` (whose pushes are `pushes`, frame by frame) that the
    /// socket took whole, `bytes` in all, before its write failed.
    fn wrote_before_failing(&self, batch: &Batch, pushes: &[Option<MsgId>], bytes: usize) {
        #[cfg(any(test, feature = "planted"))]
        let bytes = match self.shared.planted_is(Planted::RelayPartialWriteUnreported) {
            true => 0,
            false => bytes,
        };
        let written = taken_whole(batch, pushes, bytes);
        if written.last_push.is_some() || written.replies > 0 {
            self.shared.wrote(self.conn, &written);
        }
    }

    /// Feeds bytes the relay sent (its handshake and acknowledgements) to the host.
    pub fn received(&self, bytes: &[u8]) {
        self.shared.handle(Event::Received { conn: self.conn, bytes });
    }

    /// The relay's socket ended (end of file or an error): the writer flushes what it holds,
    /// then ends and reports the close.
    pub fn read_ended(&self) {
        self.mailbox.close();
    }

    /// A reader thread's body: the loom models run it on a thread of its own; the server reads
    /// every relay on one shared thread (`relay_reader.rs`) through the same two calls.
    #[cfg(loom)]
    pub fn read_loop(&self) {
        let mut buf = vec![0u8; READ_LEN];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => self.received(&buf[..n]),
            }
        }
        self.read_ended();
    }
}

/// The message a mailbox item pushes, if it is a push (a relay's failure frames are replies).
fn push_of(item: &Outgoing) -> Option<MsgId> {
    match item {
        Outgoing::Push { msg, .. } => Some(*msg),
        _ => None,
    }
}

/// The report of the frames of `batch` that the first `bytes` of its write hold whole.
fn taken_whole(batch: &Batch, pushes: &[Option<MsgId>], bytes: usize) -> Batch {
    let mut written = Batch::default();
    let mut end = 0;
    for (frame, push) in batch.frames.iter().zip(pushes) {
        end += frame.len();
        if end > bytes {
            break;
        }
        match push {
            Some(msg) => written.last_push = Some(*msg),
            None => written.replies += 1,
        }
    }
    written
}

/// Bytes read from a relay at a time: it only ever sends a handshake and acknowledgements.
pub(crate) const READ_LEN: usize = 4 * 1024;
const _: () = assert!(READ_LEN <= crate::host::READ_LEN_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    /// A push of 10 bytes, a failure frame of 20 and a push of 5: a write cut after `bytes`
    /// reports the frames it holds whole, a frame that ends exactly at the cut included (the
    /// client has it: pushing it again on the next relay would deliver it twice).
    fn reported(bytes: usize) -> (Option<MsgId>, u32) {
        let frames = vec![vec![b'a'; 10], vec![b'b'; 20], vec![b'c'; 5]];
        let batch = Batch { frames, ..Batch::default() };
        let pushes = [Some(MsgId(1)), None, Some(MsgId(3))];
        let written = taken_whole(&batch, &pushes, bytes);
        (written.last_push, written.replies)
    }

    #[test]
    fn a_cut_write_reports_the_frames_it_holds_whole() {
        assert_eq!(reported(0), (None, 0));
        assert_eq!(reported(9), (None, 0));
        assert_eq!(reported(10), (Some(MsgId(1)), 0));
        assert_eq!(reported(29), (Some(MsgId(1)), 0));
        assert_eq!(reported(30), (Some(MsgId(1)), 1));
        assert_eq!(reported(35), (Some(MsgId(3)), 1));
    }
}
