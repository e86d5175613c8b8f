//! The TCP adapter's configuration: addresses, the core's limits, hashing cost, thread sizes.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use crate::auth::HashCost;
use crate::core;
use crate::store::{FsyncPolicy, SnapshotPause, StoreOptions};

/// Everything [`super::ServerHandle::start`] needs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the command channel listens (default 127.0.0.1:8084; port 0 picks a free one).
    pub command_addr: SocketAddr,
    /// Where the relay channel listens (default 127.0.0.1:8086).
    pub relay_addr: SocketAddr,
    /// The core's limits and rules. Its `connections_max` is replaced at start by
    /// [`ServerConfig::connections_max`].
    pub core: core::Config,
    /// Open connections in total, both channels (a client with a relay holds two); the core
    /// refuses one beyond it with a reply that says so. `None` derives it at start from the
    /// open-file limit (one socket per connection, less the descriptors open and 64 kept) and
    /// the thread cap, and logs why; `Some` overrides that, also above what the limits allow
    /// (beyond them a new connection waits in the listen backlog until another closes).
    pub connections_max: Option<usize>,
    /// argon2id cost for password hashes.
    pub hash_cost: HashCost,
    /// Password jobs running at once; the rest wait, so hashing never takes every core.
    pub hash_jobs_max: usize,
    /// A write that blocks this long (the peer does not read) closes the connection.
    pub write_timeout_ms: u64,
    /// Stack size of each connection thread.
    pub thread_stack_bytes: usize,
    /// Create the original's two test accounts (tester/abc123, abc/abc) if they do not exist.
    pub demo_accounts: bool,
    /// Where the write-ahead log and snapshots live; `None` keeps everything in memory (lost on
    /// exit: tests and benchmarks only).
    pub data_dir: Option<PathBuf>,
    /// Whether each group commit is fsynced.
    pub fsync: FsyncPolicy,
    /// Recovery and compaction options.
    pub store: StoreOptions,
    /// A test seam that holds every snapshot half written (see [`SnapshotPause`]); `None` in
    /// every real server, and not reachable from the command line.
    pub snapshot_pause: Option<SnapshotPause>,
    /// Seed for the core's generator (salts, tickets); `None` draws one from the OS. Only tests
    /// should set it.
    pub seed: Option<u64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ServerConfig {
            command_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8084)),
            relay_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 8086)),
            core: core::Config::default(),
            connections_max: None,
            hash_cost: HashCost::default(),
            hash_jobs_max: cores.saturating_sub(1).max(1),
            write_timeout_ms: 10_000,
            thread_stack_bytes: 256 * 1024,
            demo_accounts: false,
            data_dir: Some(PathBuf::from("chatroom-data")),
            fsync: FsyncPolicy::Always,
            store: StoreOptions::default(),
            snapshot_pause: None,
            seed: None,
        }
    }
}

impl ServerConfig {
    /// A configuration for tests and benchmarks: ephemeral loopback ports, the cheapest
    /// password hashing, and no files (set `data_dir` to test durability).
    pub fn ephemeral() -> Self {
        ServerConfig {
            command_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            relay_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            hash_cost: HashCost::CHEAPEST,
            data_dir: None,
            ..ServerConfig::default()
        }
    }
}
