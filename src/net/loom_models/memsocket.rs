//! An in-memory [`Socket`] for the loom models: the server's end is what the shipped thread
//! bodies read and write; the [`Client`] end is the model's view of the remote peer.
//!
//! One lock and one condition variable for both directions keep the number of scheduling
//! points (and so loom's state space) small. Semantics follow a TCP socket closely enough for
//! the adapter: `shutdown(Read)` makes reads return end-of-file (buffered input is dropped),
//! `shutdown(Write)` makes writes fail, a client reset makes both fail.

use std::collections::VecDeque;
use std::io;
use std::net::Shutdown;

use crate::host::sync::{Arc, Condvar, Mutex, MutexGuard};
use crate::net::socket::{self, SharedSocket, Socket};
use crate::wire::{encode, Decoder};

#[derive(Default)]
struct State {
    /// Bytes the client sent that the server has not read yet.
    inbound: VecDeque<u8>,
    /// The client closed its sending side: reads end once `inbound` is empty.
    inbound_eof: bool,
    /// Everything the server wrote, in order.
    outbound: Vec<u8>,
    read_shut: bool,
    write_shut: bool,
    /// The client reset the connection: reads and writes fail.
    reset: bool,
}

#[derive(Default)]
struct Pipe {
    state: Mutex<State>,
    /// Signalled on every change; waiters re-check their own condition.
    changed: Condvar,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("memory socket lock")
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(state).expect("memory socket lock")
    }
}

/// The server's end.
struct ServerEnd(Arc<Pipe>);

impl Socket for ServerEnd {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.lock();
        loop {
            if state.read_shut {
                return Ok(0);
            }
            if state.reset {
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            if !state.inbound.is_empty() {
                let n = buf.len().min(state.inbound.len());
                for (slot, byte) in buf.iter_mut().zip(state.inbound.drain(..n)) {
                    *slot = byte;
                }
                return Ok(n);
            }
            if state.inbound_eof {
                return Ok(0);
            }
            state = self.0.wait(state);
        }
    }

    /// All or nothing: these models never fill a socket.
    fn write_all(&self, bytes: &[u8]) -> Result<(), usize> {
        let mut state = self.0.lock();
        if state.reset || state.write_shut {
            return Err(0);
        }
        state.outbound.extend_from_slice(bytes);
        self.0.changed.notify_all();
        Ok(())
    }

    /// [`Socket::read`] without waiting: `WouldBlock` when nothing is there yet.
    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut state = self.0.lock();
        if state.read_shut {
            return Ok(0);
        }
        if state.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if state.inbound.is_empty() {
            return match state.inbound_eof {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            };
        }
        let n = buf.len().min(state.inbound.len());
        for (slot, byte) in buf.iter_mut().zip(state.inbound.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    /// Takes everything at once: these models never fill a socket.
    fn write_now(&self, bytes: &[u8]) -> io::Result<usize> {
        match self.write_all(bytes) {
            Ok(()) => Ok(bytes.len()),
            Err(_) => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn shutdown(&self, how: Shutdown) {
        let mut state = self.0.lock();
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            state.read_shut = true;
            state.inbound.clear();
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            state.write_shut = true;
        }
        self.0.changed.notify_all();
    }
}

/// The remote peer's end of a memory socket.
#[derive(Clone)]
pub(crate) struct Client(Arc<Pipe>);

/// A connected pair: the server's socket and the client's end.
pub(crate) fn pair() -> (SharedSocket, Client) {
    let pipe = Arc::new(Pipe::default());
    (socket::share(ServerEnd(pipe.clone())), Client(pipe))
}

impl Client {
    /// Sends one frame with `body`.
    pub fn send(&self, body: &str) {
        let mut frame = Vec::new();
        encode(body.as_bytes(), &mut frame);
        let mut state = self.0.lock();
        state.inbound.extend(frame);
        self.0.changed.notify_all();
    }

    /// Closes the client's sending side (the server reads end-of-file).
    pub fn close(&self) {
        self.0.lock().inbound_eof = true;
        self.0.changed.notify_all();
    }

    /// Resets the connection: the server's reads and writes fail from now on.
    pub fn reset(&self) {
        self.0.lock().reset = true;
        self.0.changed.notify_all();
    }

    /// Every frame body the server wrote so far.
    pub fn received(&self) -> Vec<String> {
        frame_bodies(&self.0.lock().outbound)
    }

    /// Blocks until the server wrote at least one frame or shut its writing side down, and
    /// returns every frame body written so far.
    pub fn wait_received(&self) -> Vec<String> {
        let mut state = self.0.lock();
        loop {
            let received = frame_bodies(&state.outbound);
            if !received.is_empty() || state.write_shut {
                return received;
            }
            state = self.0.wait(state);
        }
    }

    /// Whether the server shut down both directions (its threads are done with the socket).
    pub fn is_shut_down(&self) -> bool {
        let state = self.0.lock();
        state.read_shut && state.write_shut
    }
}

/// The complete frame bodies in `bytes`, as text.
pub(super) fn frame_bodies(bytes: &[u8]) -> Vec<String> {
    let mut decoder = Decoder::new(usize::MAX >> 1);
    decoder.feed(bytes);
    let mut out = Vec::new();
    while let Some(body) = decoder.decode().expect("the server wrote a malformed frame") {
        out.push(String::from_utf8(body).expect("the server wrote a frame that is not UTF-8"));
    }
    out
}
