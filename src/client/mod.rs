//! A small blocking client for the chat protocol, and the interactive terminal client.
//!
//! [`Client`] speaks the command channel: one request, one reply ([`Reply`]). [`Relay`] is the
//! push channel: open it with a ticket (pushes carry ids and are acknowledged) or bare, the
//! original client's way (pushes carry no id). Tests, benchmarks and `chatroom client` all use
//! these types; framing is [`crate::wire`]'s, so client and server cannot disagree on it.
//!
//! ```no_run
//! use chatroom::client::Client;
//! let mut alice = Client::connect("127.0.0.1:8084")?;
//! alice.register("alice", "secret")?;
//! let mut relay = alice.open_relay("127.0.0.1:8086", "alice")?;
//! alice.send("alice", "a note to self")?;
//! let push = relay.recv()?;
//! assert_eq!((push.sender.as_str(), push.text.as_str()), ("alice", "a note to self"));
//! # Ok::<(), chatroom::client::ClientError>(())
//! ```

pub mod cli;
mod relay;
mod stream;
#[cfg(test)]
mod tests;

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use thiserror::Error;

pub use relay::{parse_push, Push, Relay, RelayAuth, RelayCloser};
use stream::FrameStream;

pub use crate::wire::Request;
use crate::wire::{encode, FrameError};

/// What can go wrong talking to a server. A failure *reply* (`-1\n...`) is not an error: it
/// comes back as a [`Reply`] with `ok == false`.
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },
    #[error("connection error: {0}")]
    Io(#[from] io::Error),
    #[error("timed out waiting for the server")]
    TimedOut,
    #[error("the server closed the connection")]
    Closed,
    #[error("the server sent a bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("the server sent a message this client does not understand: {0:?}")]
    Malformed(String),
    #[error("the {field} cannot contain a newline")]
    NewlineInField { field: &'static str },
    #[error("the server refused: {0}")]
    Refused(String),
    #[error("the server refused or ended the relay: {0}")]
    RelayEnded(String),
}

/// A reply on the command channel: `0\nTEXT` (ok) or `-1\nTEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub ok: bool,
    pub text: String,
}

impl Reply {
    /// Parses a reply body.
    pub fn parse(body: &[u8]) -> Result<Reply, ClientError> {
        let body = std::str::from_utf8(body)
            .map_err(|_| ClientError::Malformed(String::from_utf8_lossy(body).into_owned()))?;
        let (status, text) = body.split_once('\n').unwrap_or((body, ""));
        let ok = match status {
            "0" => true,
            "-1" => false,
            _ => return Err(ClientError::Malformed(body.to_owned())),
        };
        Ok(Reply { ok, text: text.to_owned() })
    }
}

/// The body of a request frame, as the original client packs it (`CODE\nFIELDS`).
pub fn request_body(request: &Request) -> String {
    request.body()
}

/// A newline in a one-line field would shift every later field; refuse it before sending.
fn check_fields(request: &Request) -> Result<(), ClientError> {
    let check = |value: &str, field| match value.contains('\n') {
        true => Err(ClientError::NewlineInField { field }),
        false => Ok(()),
    };
    match request {
        Request::Login { name, password }
        | Request::Register { name, password }
        | Request::Delete { name, password } => {
            check(name, "username")?;
            check(password, "password")
        }
        Request::Send { to, .. } => check(to, "recipient"),
        Request::List { pattern } => check(pattern, "pattern"),
        Request::Help | Request::Logout | Request::Ticket => Ok(()),
    }
}

/// A connection to the command channel.
pub struct Client {
    stream: FrameStream,
}

impl Client {
    /// Connects to a server's command port. Reads wait forever until [`Client::set_timeout`].
    pub fn connect(command_addr: impl ToSocketAddrs) -> Result<Client, ClientError> {
        Ok(Client { stream: FrameStream::connect(command_addr)? })
    }

    /// How long a reply may take before [`ClientError::TimedOut`]; `None` waits forever.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        self.stream.set_read_timeout(timeout)
    }

    /// The underlying socket (for its addresses, or to shut it down from another thread).
    pub fn tcp(&self) -> &TcpStream {
        self.stream.tcp()
    }

    /// Sends one request and waits for its reply.
    pub fn request(&mut self, request: &Request) -> Result<Reply, ClientError> {
        check_fields(request)?;
        self.stream.write_body(request_body(request).as_bytes())?;
        Reply::parse(&self.stream.read_body()?)
    }

    /// Sends several requests in one write, then reads their replies, in order. The server
    /// answers requests one at a time, so this only saves round trips.
    pub fn pipeline(&mut self, requests: &[Request]) -> Result<Vec<Reply>, ClientError> {
        let mut frames = Vec::new();
        for request in requests {
            check_fields(request)?;
            encode(request_body(request).as_bytes(), &mut frames);
        }
        self.stream.write_frames(&frames)?;
        requests.iter().map(|_| Reply::parse(&self.stream.read_body()?)).collect()
    }

    pub fn help(&mut self) -> Result<Reply, ClientError> {
        self.request(&Request::Help)
    }

    pub fn register(&mut self, name: &str, password: &str) -> Result<Reply, ClientError> {
        self.request(&Request::Register { name: name.into(), password: password.into() })
    }

    pub fn login(&mut self, name: &str, password: &str) -> Result<Reply, ClientError> {
        self.request(&Request::Login { name: name.into(), password: password.into() })
    }

    pub fn send(&mut self, to: &str, text: &str) -> Result<Reply, ClientError> {
        self.request(&Request::Send { to: to.into(), text: text.into() })
    }

    /// Names matching `pattern` (`*`, `?`; empty for all), as the server's reply text.
    pub fn list(&mut self, pattern: &str) -> Result<Reply, ClientError> {
        self.request(&Request::List { pattern: pattern.into() })
    }

    pub fn delete(&mut self, name: &str, password: &str) -> Result<Reply, ClientError> {
        self.request(&Request::Delete { name: name.into(), password: password.into() })
    }

    pub fn logout(&mut self) -> Result<Reply, ClientError> {
        self.request(&Request::Logout)
    }

    /// A single-use ticket for an authenticated relay; needs a logged-in session.
    pub fn ticket(&mut self) -> Result<String, ClientError> {
        let reply = self.request(&Request::Ticket)?;
        match reply.ok {
            true => Ok(reply.text),
            false => Err(ClientError::Refused(reply.text)),
        }
    }

    /// Gets a ticket and opens an acknowledging relay for the logged-in user `name`.
    pub fn open_relay(
        &mut self,
        relay_addr: impl ToSocketAddrs,
        name: &str,
    ) -> Result<Relay, ClientError> {
        let ticket = self.ticket()?;
        Relay::open(relay_addr, name, RelayAuth::Ticket(ticket))
    }
}
