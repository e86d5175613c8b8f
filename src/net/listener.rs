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
use super::socket::{self, SharedSocket};
use super::threads::Threads;
use crate::core::{Channel, ConnId, Peer};
use crate::host::mailbox::Mailbox;
use crate::host::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::host::sync::Arc;
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
}

impl Acceptor {
    /// Accepts until [`Acceptor::stopping`] is set (then one wake-up connection ends the wait).
    pub fn run(&self, listener: TcpListener, channel: Channel) {
        let mut failures = AcceptFailures::default();
        for stream in listener.incoming() {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
            match stream {
                Ok(stream) => self.accept(stream, channel),
                // Out of file descriptors, or the peer gave up before accept: keep serving.
                Err(error) => {
                    failures.failed(&error, channel);
                    if matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) {
                        // The pending connection stays queued; retrying at once would spin.
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
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
        let stream = socket::share(stream);
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

/// Failed accepts, logged at most once a second: out of descriptors, the loop retries every
/// 10 ms, and a line per retry would flood the log while everyone else is still served.
#[derive(Default)]
struct AcceptFailures {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl AcceptFailures {
    fn failed(&mut self, error: &io::Error, channel: Channel) {
        let now = Instant::now();
        if self.logged_at.is_some_and(|at| now.duration_since(at) < Duration::from_secs(1)) {
            self.unlogged += 1;
            return;
        }
        let also = std::mem::take(&mut self.unlogged);
        tracing::warn!(%error, ?channel, failures_since_last_log = also, "accept failed; still serving the open connections");
        self.logged_at = Some(now);
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
    }
}
