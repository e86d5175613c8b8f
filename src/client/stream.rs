//! A framed, blocking TCP stream: whole frames out, whole frame bodies in.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::ClientError;
use crate::wire::{encode, Decoder};

/// Largest frame body the client accepts from a server: the largest log record (16 MiB), so
/// that any message a server could have kept reaches its recipient (a server's
/// `--frame-len-max` goes up to 8 MiB; a push the client could not read would end its relay
/// unacknowledged and come back first on every reconnect). The decoder reserves memory only
/// for bytes that arrive, never for a declared length.
const BODY_LEN_MAX: usize = crate::store::codec::RECORD_LEN_MAX;

/// Bytes asked of the socket per read: a few hundred small pushes, and small enough that
/// thousands of idle clients in one process stay cheap.
const READ_CHUNK_LEN: usize = 16 * 1024;

pub(super) struct FrameStream {
    stream: TcpStream,
    decoder: Decoder,
    chunk: Box<[u8]>,
}

impl FrameStream {
    pub(super) fn connect(addr: impl ToSocketAddrs) -> Result<Self, ClientError> {
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| ClientError::Connect { addr: "(unresolved)".into(), source })?
            .collect();
        let shown = addrs.first().map_or_else(|| "(no address)".to_owned(), |a| a.to_string());
        let stream = TcpStream::connect(&addrs[..])
            .map_err(|source| ClientError::Connect { addr: shown, source })?;
        // Requests, replies and acknowledgements are small: Nagle's algorithm would hold them
        // back for a delayed ACK.
        stream.set_nodelay(true)?;
        Ok(FrameStream {
            stream,
            decoder: Decoder::new(BODY_LEN_MAX),
            chunk: vec![0; READ_CHUNK_LEN].into_boxed_slice(),
        })
    }

    pub(super) fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), ClientError> {
        Ok(self.stream.set_read_timeout(timeout)?)
    }

    pub(super) fn tcp(&self) -> &TcpStream {
        &self.stream
    }

    /// Writes one frame carrying `body`.
    pub(super) fn write_body(&mut self, body: &[u8]) -> Result<(), ClientError> {
        let mut frame = Vec::with_capacity(body.len() + crate::wire::HEADER_LEN);
        encode(body, &mut frame);
        self.write_frames(&frame)
    }

    /// Writes already-encoded frames in one call.
    pub(super) fn write_frames(&mut self, frames: &[u8]) -> Result<(), ClientError> {
        self.stream.write_all(frames).map_err(io_error)
    }

    /// The next body already received, without touching the socket.
    pub(super) fn buffered_body(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(self.decoder.decode()?)
    }

    /// Reads once from the socket (blocking up to the read timeout) into the decoder.
    pub(super) fn fill(&mut self) -> Result<(), ClientError> {
        let n = self.stream.read(&mut self.chunk).map_err(io_error)?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.decoder.feed(&self.chunk[..n]);
        Ok(())
    }

    /// The next body, reading as much as needed.
    pub(super) fn read_body(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(body) = self.buffered_body()? {
                return Ok(body);
            }
            self.fill()?;
        }
    }
}

/// A read timeout surfaces as `WouldBlock` on Unix and `TimedOut` on Windows.
fn io_error(error: io::Error) -> ClientError {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ClientError::TimedOut,
        _ => ClientError::Io(error),
    }
}
