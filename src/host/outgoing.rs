//! What a connection's writer receives from the host, and how it sorts a batch of it.

use crate::core::{MsgId, PasswordJob};

/// One item in a connection's mailbox.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A reply (on a command connection) or a failure frame, ready to write.
    Reply(Vec<u8>),
    /// A push frame on a relay; report `msg` written after writing it.
    Push { msg: MsgId, frame: Vec<u8> },
    /// A password job to run on this connection's writer, off the host's lock.
    Password(PasswordJob),
}

/// A writer's batch, sorted: the frames to write in order, what to report once they are
/// written, and the password jobs to run afterwards.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub frames: Vec<Vec<u8>>,
    /// The last push among the frames.
    pub last_push: Option<MsgId>,
    /// Reply frames among the frames (each answers a request, or is a failure frame).
    pub replies: u32,
    /// Password jobs, in the order they came. A job's connection is busy until it is done,
    /// so every frame of the batch came before it: running jobs after the writes keeps order.
    pub jobs: Vec<PasswordJob>,
}

impl Batch {
    /// Sorts `items` (emptying it) into this batch, which must be empty.
    pub fn sort(&mut self, items: &mut Vec<Outgoing>) {
        debug_assert!(self.is_empty(), "a batch is reported before it is refilled");
        for item in items.drain(..) {
            match item {
                Outgoing::Reply(frame) => {
                    self.frames.push(frame);
                    self.replies += 1;
                }
                Outgoing::Push { msg, frame } => {
                    self.frames.push(frame);
                    self.last_push = Some(msg);
                }
                Outgoing::Password(job) => self.jobs.push(job),
            }
        }
    }

    /// True when there is nothing to write, report or run.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.jobs.is_empty() && self.last_push.is_none()
    }

    /// Forgets the frames and reports, keeping the buffers; the jobs stay for the caller.
    pub fn clear_written(&mut self) {
        self.frames.clear();
        self.last_push = None;
        self.replies = 0;
    }

    /// The frames as one buffer, for a single write.
    pub fn concat_frames(&self, out: &mut Vec<u8>) {
        out.clear();
        for frame in &self.frames {
            out.extend_from_slice(frame);
        }
    }
}
