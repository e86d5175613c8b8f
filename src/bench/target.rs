//! The server a benchmark talks to: started in this process, or an external one.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::BenchError;
use crate::net::{ServerConfig, ServerHandle};
use crate::store::FsyncPolicy;

/// Where the server comes from, and how an in-process one is configured.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// An external server's command and relay addresses; `None` starts one in this process.
    pub external: Option<(SocketAddr, SocketAddr)>,
    /// `None` keeps the in-process server's log in memory; otherwise a file log in a temporary
    /// directory, fsynced as given.
    pub fsync: Option<FsyncPolicy>,
    /// Messages waiting per recipient.
    pub queue_len_max: usize,
}

/// A server ready for a benchmark run.
pub struct Target {
    pub command_addr: SocketAddr,
    pub relay_addr: SocketAddr,
    server: Option<ServerHandle>,
    data_dir: Option<PathBuf>,
}

impl Target {
    /// Starts an in-process server (or names the external one) for run number `run`.
    pub fn start(options: &TargetOptions, run: usize) -> Result<Target, BenchError> {
        if let Some((command_addr, relay_addr)) = options.external {
            return Ok(Target { command_addr, relay_addr, server: None, data_dir: None });
        }
        let mut config = ServerConfig::ephemeral();
        // Every benchmark client comes from loopback.
        config.core.connections_per_peer_max = usize::MAX;
        config.core.registrations_per_peer_max = usize::MAX;
        config.core.connections_max = 1_000_000;
        config.core.queue_len_max = options.queue_len_max;
        let data_dir = options.fsync.map(|fsync| {
            config.fsync = fsync;
            let dir =
                std::env::temp_dir().join(format!("chatroom-bench-{}-{run}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            config.data_dir = Some(dir.clone());
            dir
        });
        let server = ServerHandle::start(config).map_err(|e| BenchError::Server(e.to_string()))?;
        Ok(Target {
            command_addr: server.command_addr(),
            relay_addr: server.relay_addr(),
            server: Some(server),
            data_dir,
        })
    }

    /// How the server was set up, for the report.
    pub fn describe(options: &TargetOptions) -> String {
        match (options.external, options.fsync) {
            (Some((command, relay)), _) => format!("external server at {command} / {relay}"),
            (None, None) => "in-process server, log in memory (no store)".into(),
            (None, Some(fsync)) => {
                format!("in-process server, file log in a temporary directory, fsync {fsync:?}")
            }
        }
    }

    /// Stops an in-process server and removes its files.
    pub fn stop(self) {
        if let Some(server) = self.server {
            server.shutdown();
        }
        if let Some(dir) = self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
