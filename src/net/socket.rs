//! What the connection threads need from a socket, so that loom models can run the shipped
//! thread bodies over an in-memory socket instead of TCP.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::host::sync::Arc;

/// A connected byte stream shared by a connection's threads (`&self` everywhere: one thread
/// reads while another writes or shuts it down).
pub(crate) trait Socket: Send + Sync + 'static {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `bytes`, each step waiting at most the socket's write timeout. On
    /// failure (timed out, the peer gone) `Err(n)`: the socket took the first `n` bytes, which
    /// reach the peer all the same (it may read them from its buffers after the close).
    fn write_all(&self, bytes: &[u8]) -> Result<(), usize>;
    /// Ends reading, writing or both; errors (already closed) are of no interest.
    fn shutdown(&self, how: Shutdown);
    /// Reads without waiting (`WouldBlock` when nothing is there), for the shared relay reader.
    fn read_now(&self, _buf: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
    /// Writes what the socket takes without waiting (`WouldBlock` when it takes nothing), for
    /// a push written straight to an idle relay (`Host::write_through`).
    fn write_now(&self, _bytes: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

impl Socket for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write_all(&self, bytes: &[u8]) -> Result<(), usize> {
        let mut taken = 0;
        while taken < bytes.len() {
            match Write::write(&mut &*self, &bytes[taken..]) {
                Ok(0) => return Err(taken),
                Ok(n) => taken += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Err(taken),
            }
        }
        Ok(())
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        read_now(self, buf)
    }

    fn write_now(&self, bytes: &[u8]) -> io::Result<usize> {
        write_now(self, bytes)
    }
}

/// A socket shared by a connection's threads. The box makes the trait object sized, because
/// loom's `Arc` (which this becomes under `cfg(loom)`) cannot hold an unsized value.
pub(crate) type SharedSocket = Arc<Box<dyn Socket>>;

/// Shares `socket` between threads.
pub(crate) fn share(socket: impl Socket) -> SharedSocket {
    Arc::new(Box::new(socket))
}

/// Reads what `stream` holds without waiting, though the socket itself blocks (its writer
/// thread relies on blocking writes with a timeout): `WouldBlock` when nothing is there.
/// `O_NONBLOCK` belongs to the file description that both threads share, so only a per-call
/// flag (`MSG_DONTWAIT`) leaves the writer's writes blocking.
fn read_now(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the whole call, and the
    // descriptor is open: `stream` is borrowed for the call.
    let n = unsafe {
        libc::recv(stream.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT)
    };
    match n {
        n if n >= 0 => Ok(n as usize),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Writes what `stream` takes without waiting, though the socket itself blocks (see
/// [`read_now`]); `MSG_NOSIGNAL` because a peer gone is the writer thread's to find out.
fn write_now(stream: &TcpStream, bytes: &[u8]) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: `bytes` is valid for reads of `bytes.len()` bytes for the whole call, and the
    // descriptor is open: `stream` is borrowed for the call.
    let n = unsafe {
        libc::send(
            stream.as_raw_fd(),
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    match n {
        n if n >= 0 => Ok(n as usize),
        _ => Err(io::Error::last_os_error()),
    }
}
