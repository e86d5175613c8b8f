//! What the connection threads need from a socket, so that loom models can run the shipped
//! thread bodies over an in-memory socket instead of TCP.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::host::sync::Arc;

/// A connected byte stream shared by a connection's threads (`&self` everywhere: one thread
/// reads while another writes or shuts it down).
pub(crate) trait Socket: Send + Sync + 'static {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize>;
    fn write_all(&self, bytes: &[u8]) -> io::Result<()>;
    /// Ends reading, writing or both; errors (already closed) are of no interest.
    fn shutdown(&self, how: Shutdown);
}

impl Socket for TcpStream {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Read::read(&mut &*self, buf)
    }

    fn write_all(&self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut &*self, bytes)
    }

    fn shutdown(&self, how: Shutdown) {
        let _ = TcpStream::shutdown(self, how);
    }
}

/// A socket shared by a connection's threads. The box makes the trait object sized, because
/// loom's `Arc` (which this becomes under `cfg(loom)`) cannot hold an unsized value.
pub(crate) type SharedSocket = Arc<Box<dyn Socket>>;

/// Shares `socket` between threads.
pub(crate) fn share(socket: impl Socket) -> SharedSocket {
    Arc::new(Box::new(socket))
}
