//! The accept loops of the two ports: each accepted socket gets a connection id, a mailbox and
//! its threads (one for a command connection; a writer for a relay, whose reads the shared
//! relay reader does).

use std::io;
use std::net::{IpAddr, Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::command::{CommandConn, ReadAhead};
use super::driver::Shared;
use super::hashing::HashPool;
use super::relay::RelayConn;
use super::relay_reader::RelayReader;
use super::socket::{self, SharedSocket, Socket};
use super::threads::Threads;
use crate::core::{Channel, ConnId, Peer};
use crate::host::mailbox::Mailbox;
use crate::host::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::host::sync::{Arc, Condvar, Mutex};
use crate::host::Outgoing;

/// What every accept loop shares.
pub(crate) struct Acceptor {
    pub shared: Arc<Shared>,
    pub hashing: Arc<HashPool>,
    pub relay_reader: Arc<RelayReader>,
    pub threads: Threads,
    pub next_conn: AtomicU64,
    pub stopping: AtomicBool,
    pub write_timeout_ms: u64,
    pub closes: Arc<Closes>,
}

impl Acceptor {
    /// Accepts until [`Acceptor::stopping`] is set; [`ServerHandle::shutdown`] then shuts the
    /// listener down, which ends a blocked accept without needing a descriptor.
    ///
    /// Out of descriptors (`EMFILE`, `ENFILE`, or the kernel out of socket memory), an accept
    /// fails at once for as long as a connection waits in the backlog, so retrying would spin.
    /// The loop waits instead until a connection's socket closes (see [`Closes`]), or
    /// [`OUT_OF_FDS_RETRY_MS`] for descriptors freed some other way (the server's own files,
    /// another process's for `ENFILE`). The open connections are served throughout; the
    /// waiting ones stay in the listen backlog until then. The connection cap (`limits.rs`)
    /// keeps a server that was not given a larger one from getting here.
    ///
    /// [`ServerHandle::shutdown`]: super::ServerHandle::shutdown
    pub fn run(&self, listener: &TcpListener, channel: Channel) {
        let mut failures = AcceptFailures::default();
        loop {
            // Taken before the accept, so that a close between its failure and the wait counts.
            let mark = self.closes.mark();
            let accepted = listener.accept();
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            match accepted {
                Ok((stream, _)) => {
                    failures.succeeded(channel);
                    self.accept(stream, channel);
                }
                Err(error) if out_of_descriptors(&error) => {
                    failures.failed(&error, channel);
                    let _ = self.closes.wait_since(mark, OUT_OF_FDS_RETRY_MS);
                }
                // The peer gave up before the accept, say: nothing waits, nothing to retry.
                Err(error) => failures.failed(&error, channel),
            }
        }
    }

    fn accept(&self, stream: TcpStream, channel: Channel) {
        let peer = match stream.peer_addr() {
            Ok(addr) => peer_of(addr.ip()),
            Err(_) => return,
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_write_timeout(Some(Duration::from_millis(self.write_timeout_ms.max(1))));
        let conn = ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let fd = stream.as_raw_fd();
        let stream =
            socket::share(CountedSocket { stream, _close: CloseNotice(self.closes.clone()) });
        let mailbox = self.shared.open(conn, channel, peer, Some(stream.clone()));
        if let Err(error) = self.spawn(conn, channel, fd, stream.clone(), mailbox) {
            tracing::error!(%error, ?conn, "cannot start a connection thread; dropping the connection");
            stream.shutdown(Shutdown::Both);
            self.shared.ended(conn);
        }
    }

    fn spawn(
        &self,
        conn: ConnId,
        channel: Channel,
        fd: RawFd,
        stream: SharedSocket,
        mailbox: Arc<Mailbox<Outgoing>>,
    ) -> io::Result<()> {
        let shared = self.shared.clone();
        match channel {
            Channel::Command => {
                let hashing = self.hashing.clone();
                // Known to the reader before the thread starts, so that its removal comes after.
                let ahead = ReadAhead { shared: shared.clone(), conn, stream: stream.clone() };
                self.relay_reader.add_command(fd, Arc::new(ahead));
                let reader = Some(self.relay_reader.clone());
                let command =
                    CommandConn { shared, hashing, conn, stream, mailbox, reader: reader.clone() };
                self.threads.spawn("command", move || command.run()).inspect_err(|_| {
                    if let Some(reader) = reader {
                        reader.remove(conn);
                    }
                })
            }
            Channel::Relay => {
                let relay = Arc::new(RelayConn { shared, conn, stream, mailbox });
                let writer = relay.clone();
                self.threads.spawn("relay", move || writer.write_loop())?;
                self.relay_reader.add(fd, relay.clone()).inspect_err(|_| {
                    // The writer is already running: closing its mailbox ends it.
                    relay.read_ended();
                })
            }
        }
    }
}

/// Longest wait before an accept that failed for want of descriptors is retried without a
/// connection's socket having closed.
const OUT_OF_FDS_RETRY_MS: u64 = 1_000;

/// Whether an accept failed because this process, or the machine, is out of descriptors or
/// socket memory: failures that last, for the connection waiting, until something closes.
fn out_of_descriptors(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// How many connections' sockets have closed, for the accept loops to wait on when they are
/// out of descriptors.
pub(crate) struct Closes {
    count: Mutex<u64>,
    closed: Condvar,
}

impl Closes {
    pub fn new() -> Closes {
        Closes { count: Mutex::new(0), closed: Condvar::new() }
    }

    /// Sockets closed so far: a mark for [`Closes::wait_since`].
    fn mark(&self) -> u64 {
        *self.count.lock().expect("closes lock")
    }

    /// Counts a close (or a shutdown's wake-up) and wakes every waiting accept loop.
    pub fn closed_one(&self) {
        *self.count.lock().expect("closes lock") += 1;
        self.closed.notify_all();
    }

    /// Blocks until a socket has closed since `mark`, or for `timeout_ms` at most; whether
    /// one has. One wait: a spurious wake-up only makes the caller retry its accept sooner.
    fn wait_since(&self, mark: u64, timeout_ms: u64) -> bool {
        let mut count = self.count.lock().expect("closes lock");
        if *count == mark {
            let timeout = Duration::from_millis(timeout_ms);
            count = self.closed.wait_timeout(count, timeout).expect("closes lock").0;
        }
        *count != mark
    }
}

/// Counts its socket's close when dropped.
struct CloseNotice(Arc<Closes>);

impl Drop for CloseNotice {
    fn drop(&mut self) {
        self.0.closed_one();
    }
}

/// An accepted socket whose close is counted in [`Closes`]. Fields drop in their order, so the
/// descriptor is closed before the count goes up: an accept loop woken by it finds it free.
struct CountedSocket {
    stream: TcpStream,
    _close: CloseNotice,
}

impl Socket for CountedSocket {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Socket::read(&self.stream, buf)
    }

    fn write_all(&self, bytes: &[u8]) -> Result<(), usize> {
        Socket::write_all(&self.stream, bytes)
    }

    fn shutdown(&self, how: Shutdown) {
        Socket::shutdown(&self.stream, how)
    }

    fn read_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.read_now(buf)
    }

    fn write_now(&self, bytes: &[u8]) -> io::Result<usize> {
        self.stream.write_now(bytes)
    }
}

/// Failed accepts, logged at most once a second with the count since the last line, and the
/// first success after them: out of descriptors, every close wakes the loops to retry, and a
/// line per retry would flood the log while everyone else is still served.
#[derive(Default)]
struct AcceptFailures {
    logged_at: Option<Instant>,
    unlogged: u64,
    since_success: u64,
}

impl AcceptFailures {
    fn failed(&mut self, error: &io::Error, channel: Channel) {
        self.since_success += 1;
        let now = Instant::now();
        if self.logged_at.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            self.unlogged += 1;
            return;
        }
        let also = std::mem::take(&mut self.unlogged);
        tracing::warn!(%error, ?channel, failures_since_last_log = also, "accept failed; still serving the open connections");
        self.logged_at = Some(now);
    }

    fn succeeded(&mut self, channel: Channel) {
        let failed = std::mem::take(&mut self.since_success);
        if failed > 0 {
            self.logged_at = None;
            self.unlogged = 0;
            tracing::info!(?channel, failed_accepts = failed, "accepting again");
        }
    }
}

/// The core's opaque peer: the address as an IPv6 number, IPv4 mapped into it.
pub(crate) fn peer_of(ip: IpAddr) -> Peer {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    Peer(u128::from(v6))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_failed_accepts_is_logged_once_and_counted() {
        let mut failures = AcceptFailures::default();
        let error = io::Error::from_raw_os_error(libc::EMFILE);
        failures.failed(&error, Channel::Command);
        assert!(failures.logged_at.is_some());
        for _ in 0..5 {
            failures.failed(&error, Channel::Command);
        }
        assert_eq!(failures.unlogged, 5);
        // An accept that succeeds ends the burst: the next failure is logged at once.
        failures.succeeded(Channel::Command);
        assert_eq!((failures.logged_at, failures.unlogged, failures.since_success), (None, 0, 0));
    }

    #[test]
    fn an_accept_loop_out_of_descriptors_is_woken_by_the_last_clone_of_a_socket_closing() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let closes = Arc::new(Closes::new());
        let socket = socket::share(CountedSocket { stream, _close: CloseNotice(closes.clone()) });
        let clone = socket.clone();
        let mark = closes.mark();
        drop(socket);
        assert_eq!(closes.mark(), mark, "counted while a clone still holds the socket");
        let waiter = {
            let closes = closes.clone();
            std::thread::spawn(move || closes.wait_since(mark, 60_000))
        };
        drop(clone);
        assert!(waiter.join().unwrap(), "the wait ended without a close");
        assert_eq!(closes.mark(), mark + 1);
        // Past the mark already: no wait.
        assert!(closes.wait_since(mark, 60_000));
    }
}
