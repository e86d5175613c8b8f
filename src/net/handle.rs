//! [`ServerHandle`]: starts the adapter (listeners, timer, core), and shuts it down cleanly.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::config::ServerConfig;
use super::demo;
use super::driver::{Shared, Sink};
use super::hashing::HashPool;
use super::limits::{ConnectionCap, SystemLimits};
use super::listener::{Acceptor, Closes};
use super::persist::{self, Durability};
use super::relay_reader::RelayReader;
use super::threads::Threads;
use super::timer;
use crate::auth::Hasher;
use crate::core::{Channel, Server};
use crate::host::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::host::sync::Arc;
use crate::host::MemorySink;

/// A running server. Dropping it without [`ServerHandle::shutdown`] leaves it running.
pub struct ServerHandle {
    acceptor: Arc<Acceptor>,
    /// The two listeners, shared with their accept loops: shutting one down ends its accept.
    listeners: [Arc<TcpListener>; 2],
    command_addr: SocketAddr,
    relay_addr: SocketAddr,
    service_threads: Threads,
    durability: Arc<Durability>,
}

impl ServerHandle {
    /// Binds both ports and starts serving.
    pub fn start(mut config: ServerConfig) -> io::Result<ServerHandle> {
        // Read before the server opens anything: its own files come out of the descriptors
        // the connection cap keeps.
        let limits = SystemLimits::read();
        let thread_cap = limits.thread_cap();
        tracing::info!(
            live_max = thread_cap.live_max,
            bound_by = %thread_cap.bound_by,
            "connection threads capped"
        );
        config.core.connections_max = connections_max(&config, &limits.connection_cap(&thread_cap));
        let hasher = Hasher::new(config.hash_cost)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let rng = match config.seed {
            Some(seed) => ChaCha20Rng::seed_from_u64(seed),
            None => ChaCha20Rng::from_entropy(),
        };
        let durability = Arc::new(Durability::default());
        let (server, sink): (Server, Sink) = match &config.data_dir {
            None => (Server::new(config.core.clone(), rng), Box::new(MemorySink)),
            Some(dir) => {
                let core = config.core.clone();
                let (server, sink) =
                    persist::open(dir, config.fsync, config.store, core, rng, durability.clone())?;
                if let Some(pause) = &config.snapshot_pause {
                    sink.set_snapshot_pause(pause.clone());
                }
                (server, Box::new(sink))
            }
        };
        let shared = Arc::new(Shared::new(server, sink));
        durability.attach(shared.clone());
        let service_threads = Threads::new(256 * 1024, usize::MAX);
        #[cfg_attr(not(any(test, feature = "planted")), allow(unused_mut))]
        let mut hashing = HashPool::new(hasher, config.hash_jobs_max);
        #[cfg(any(test, feature = "planted"))]
        hashing.plant(config.core.planted);
        let hashing = Arc::new(hashing);
        if config.demo_accounts {
            demo::create_accounts(&shared, &hashing);
        }
        let command = listen("command", config.command_addr)?;
        let relay = listen("relay", config.relay_addr)?;
        let (command_addr, relay_addr) = (command.local_addr()?, relay.local_addr()?);
        let (relay_reader, poll) = RelayReader::new()?;
        {
            let relay_reader = relay_reader.clone();
            service_threads.spawn("relay-read", move || relay_reader.run(poll))?;
        }
        let acceptor = Arc::new(Acceptor {
            shared: shared.clone(),
            hashing,
            relay_reader,
            threads: Threads::new(config.thread_stack_bytes, thread_cap.live_max),
            next_conn: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            write_timeout_ms: config.write_timeout_ms,
            closes: Arc::new(Closes::new()),
        });
        let listeners = [Arc::new(command), Arc::new(relay)];
        for (listener, channel) in listeners.iter().zip([Channel::Command, Channel::Relay]) {
            let (acceptor, listener) = (acceptor.clone(), listener.clone());
            service_threads.spawn("accept", move || acceptor.run(&listener, channel))?;
        }
        service_threads.spawn("timer", move || timer::run(&shared))?;
        tracing::info!(%command_addr, %relay_addr, "chatroom server listening");
        Ok(ServerHandle {
            acceptor,
            listeners,
            command_addr,
            relay_addr,
            service_threads,
            durability,
        })
    }

    /// The command channel's bound address.
    pub fn command_addr(&self) -> SocketAddr {
        self.command_addr
    }

    /// The relay channel's bound address.
    pub fn relay_addr(&self) -> SocketAddr {
        self.relay_addr
    }

    /// Messages waiting for `name`, if such an account exists (for operators and tests).
    pub fn queue_len(&self, name: &str) -> Option<usize> {
        self.acceptor.shared.with_server(|server| {
            server.account_id(name).map(|account| server.queued_ids(account).len())
        })
    }

    /// Whether `name` is logged in with a relay bound (for operators and tests).
    pub fn has_relay(&self, name: &str) -> bool {
        self.acceptor.shared.with_server(|server| {
            server.account_id(name).is_some_and(|account| server.has_relay(account))
        })
    }

    /// Holds every password job not yet started (`true`: logins, registrations and deletions
    /// wait) or releases them (`false`). For tests that show the server serving other clients
    /// while every password job waits; a server never holds them on its own.
    pub fn hold_password_jobs(&self, held: bool) {
        self.acceptor.hashing.hold(held);
    }

    /// Password jobs waiting for a hashing slot (for operators and tests).
    pub fn password_jobs_waiting(&self) -> usize {
        self.acceptor.hashing.waiting()
    }

    /// Bytes of unfinished frames the server holds over every connection (for memory bounds).
    pub fn inbound_buffered_bytes(&self) -> usize {
        self.acceptor.shared.with_server(|server| server.inbound_buffered_total())
    }

    /// Connection threads currently running (one per command connection, one per relay).
    pub fn connection_threads(&self) -> usize {
        self.acceptor.threads.live()
    }

    /// Stops accepting, closes every connection, and waits for every thread to end.
    pub fn shutdown(self) {
        self.acceptor.stopping.store(true, Ordering::Release);
        // Ends a blocked accept (with EINVAL) and refuses new connections. Connecting to each
        // port would wake it too, but not out of descriptors, when the server is at its
        // open-file limit: this needs none.
        for listener in &self.listeners {
            // SAFETY: the listener is open (this handle holds it); shutting it down only stops
            // it listening.
            unsafe { libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR) };
        }
        // An accept loop waiting for a close after running out of descriptors.
        self.acceptor.closes.closed_one();
        self.acceptor.shared.close_all();
        self.acceptor.threads.wait_all();
        self.acceptor.relay_reader.stop();
        self.acceptor.shared.shutdown_store();
        self.durability.detach();
        self.acceptor.shared.timer.stop();
        self.service_threads.wait_all();
        tracing::info!("chatroom server stopped");
    }
}

/// The connection cap to run with: the configured one, else `derived`; logged either way, with
/// a warning when the configured one is above what the system allows.
fn connections_max(config: &ServerConfig, derived: &ConnectionCap) -> usize {
    let Some(given) = config.connections_max else {
        tracing::info!(
            connections_max = derived.connections_max,
            bound_by = %derived.bound_by,
            "connections capped"
        );
        return derived.connections_max;
    };
    if given > derived.connections_max {
        tracing::warn!(
            connections_max = given,
            allowed = derived.connections_max,
            bound_by = %derived.bound_by,
            "connections_max is above what the system allows: past that, new connections wait \
             unanswered in the listen backlog until another closes, instead of being refused"
        );
    } else {
        tracing::info!(connections_max = given, "connections capped as configured");
    }
    given
}

/// Binds `addr` for the `channel`'s connections; the error names the channel and the address,
/// which the system's ("Address already in use") does not.
fn listen(channel: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    TcpListener::bind(addr).map_err(|error| {
        io::Error::new(
            error.kind(),
            format!("the {channel} channel cannot listen on {addr}: {error}"),
        )
    })
}
