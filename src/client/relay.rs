//! The relay channel from the client's side: the handshake, pushes, and acknowledgements.
//!
//! Acknowledgements are sent lazily: a push returned by [`Relay::recv`] is acknowledged just
//! before the relay next waits on its socket (or by [`Relay::flush_acks`], or on drop). So a
//! caller that handles each push before asking for the next never acknowledges a message it did
//! not handle, and a burst of pushes costs one write of acknowledgements, not one per push.

use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::stream::FrameStream;
use super::ClientError;
use crate::wire::{encode, RelayFrame};

/// How a relay proves whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayAuth {
    /// A ticket from [`super::Client::ticket`]: pushes carry ids and are acknowledged.
    Ticket(String),
    /// The original client's bare username: pushes carry no id and are never acknowledged.
    Bare,
}

/// A message pushed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The message id on a ticketed relay; `None` on a bare one.
    pub id: Option<u64>,
    pub sender: String,
    pub text: String,
}

/// Parses a push body: `0\nSENDER:TEXT` or `7\nID\nSENDER\nTEXT`. A failure frame
/// (`-1\nTEXT`, sent when the server refuses or ends the relay) is [`ClientError::RelayEnded`].
pub fn parse_push(body: &[u8]) -> Result<Push, ClientError> {
    let malformed = || ClientError::Malformed(String::from_utf8_lossy(body).into_owned());
    let body = std::str::from_utf8(body).map_err(|_| malformed())?;
    let (code, rest) = body.split_once('\n').ok_or_else(malformed)?;
    match code {
        "0" => {
            let (sender, text) = rest.split_once(':').ok_or_else(malformed)?;
            Ok(Push { id: None, sender: sender.into(), text: text.into() })
        }
        "7" => {
            let mut parts = rest.splitn(3, '\n');
            let (Some(id), Some(sender), Some(text)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(malformed());
            };
            let id = id.parse().map_err(|_| malformed())?;
            Ok(Push { id: Some(id), sender: sender.into(), text: text.into() })
        }
        "-1" => Err(ClientError::RelayEnded(rest.into())),
        _ => Err(malformed()),
    }
}

/// An open relay connection.
pub struct Relay {
    stream: FrameStream,
    acks: bool,
    /// Ids returned by `recv` and not yet acknowledged.
    ack_due: Vec<u64>,
}

impl Relay {
    /// Connects to the relay port and sends the handshake. The server does not confirm a good
    /// handshake; a refused one shows up as [`ClientError::RelayEnded`] from [`Relay::recv`].
    pub fn open(
        relay_addr: impl ToSocketAddrs,
        name: &str,
        auth: RelayAuth,
    ) -> Result<Relay, ClientError> {
        if name.contains('\n') {
            return Err(ClientError::NewlineInField { field: "username" });
        }
        let mut stream = FrameStream::connect(relay_addr)?;
        let hello = match &auth {
            RelayAuth::Ticket(ticket) => format!("{name}\n{ticket}"),
            RelayAuth::Bare => name.to_owned(),
        };
        stream.write_body(hello.as_bytes())?;
        Ok(Relay { stream, acks: matches!(auth, RelayAuth::Ticket(_)), ack_due: Vec::new() })
    }

    /// How long [`Relay::recv`] waits before [`ClientError::TimedOut`]; `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(timeout)
    }

    /// The next push. Pushes returned earlier are acknowledged before this waits for more.
    pub fn recv(&mut self) -> Result<Push, ClientError> {
        loop {
            if let Some(body) = self.stream.buffered_body()? {
                let push = parse_push(&body)?;
                if let (true, Some(id)) = (self.acks, push.id) {
                    self.ack_due.push(id);
                }
                return Ok(push);
            }
            self.flush_acks()?;
            self.stream.fill()?;
        }
    }

    /// Acknowledges every push returned so far, in one write.
    pub fn flush_acks(&mut self) -> Result<(), ClientError> {
        if self.ack_due.is_empty() {
            return Ok(());
        }
        let mut frames = Vec::with_capacity(self.ack_due.len() * 24);
        for id in self.ack_due.drain(..) {
            encode(RelayFrame::Ack(id).body().as_bytes(), &mut frames);
        }
        self.stream.write_frames(&frames)
    }

    /// The underlying socket (for its addresses, or to drive it from an event loop; bytes the
    /// relay has already read stay in it).
    pub fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// A handle that closes this relay from another thread (its blocked `recv` then returns).
    pub fn closer(&self) -> Result<RelayCloser, ClientError> {
        Ok(RelayCloser(self.stream.tcp().try_clone()?))
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        // Best effort: if the connection is gone, the server pushes these again next time.
        let _ = self.flush_acks();
    }
}

/// Closes a [`Relay`] from another thread.
pub struct RelayCloser(TcpStream);

impl RelayCloser {
    pub fn close(&self) {
        // Already closed by the peer is fine: either way the relay is done.
        let _ = self.0.shutdown(Shutdown::Both);
    }
}
