//! `bench idle`: many logged-in clients with relays, doing nothing; what each costs the server.
//!
//! The server runs as a child process (`chatroom server` from this executable) so that its
//! resident memory (`VmRSS` in `/proc/PID/status`) is its own, not mixed with the clients'.
//! `--bare` holds command connections that never log in instead: the cost of a connection alone.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::system::proc_status;
use super::{registered, relay_for, user_name, BenchError, Target, TargetOptions};
use crate::client::{Client, Relay};

const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors this process keeps for itself (stdio, the server's pipes, slack).
const FDS_RESERVED: usize = 64;

/// What one run measured.
pub struct IdleRun {
    pub clients: usize,
    /// Bare connections that never logged in, rather than clients with relays.
    pub bare: bool,
    pub server_rss_kib_before: u64,
    pub server_rss_kib_after: u64,
    pub server_threads_before: u64,
    pub server_threads_after: u64,
    /// Memory maps of the server (lines of `/proc/PID/maps`), before and after.
    pub server_maps_before: u64,
    pub server_maps_after: u64,
    pub bench_rss_kib_delta: u64,
    pub setup: Duration,
    /// Why setup stopped before the requested count, if it did.
    pub stopped_by: Option<String>,
}

impl IdleRun {
    pub fn server_kib_per_client(&self) -> f64 {
        self.server_rss_kib_after.saturating_sub(self.server_rss_kib_before) as f64
            / self.clients.max(1) as f64
    }

    /// Memory maps the server gained per thread it gained (`vm.max_map_count` caps them).
    pub fn server_maps_per_thread(&self) -> f64 {
        self.server_maps_after.saturating_sub(self.server_maps_before) as f64
            / self.server_threads_after.saturating_sub(self.server_threads_before).max(1) as f64
    }
}

/// The soft limit on open files of this process (the server child inherits it).
pub fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many clients fit when each holds `sockets` sockets here and as many in the server.
pub fn clients_that_fit(fd_limit: usize, sockets: usize) -> usize {
    fd_limit.saturating_sub(FDS_RESERVED) / sockets.max(1)
}

/// The lines of `/proc/PID/maps` (0 if unreadable).
fn maps(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/maps")).map_or(0, |m| m.lines().count() as u64)
}

/// What one idle client holds open.
enum Held {
    Bare(TcpStream),
    /// The session is kept only so that its relay stays bound.
    Client {
        _session: Box<Client>,
        relay: Box<Relay>,
    },
}

/// Runs one measurement with up to `clients` idle clients (fewer if setting one up fails; the
/// failure is printed).
pub fn run_once(
    run: usize,
    clients: usize,
    bare: bool,
    fsync: &'static str,
    server_exe: Option<std::path::PathBuf>,
) -> Result<IdleRun, BenchError> {
    let options = TargetOptions {
        external: None,
        external_pid: None,
        fsync,
        queue_len_max: 10_000,
        connections_max: clients * 2 + 100,
        server_cpus: None,
        broker: super::target::Broker::Chatroom,
        server_exe,
    };
    let target = Target::start(&options, run)?;
    let result = measure(&target, run, clients, bare);
    if result.is_err() {
        eprintln!("{}", target.log_tail());
    }
    target.stop();
    result
}

fn measure(target: &Target, run: usize, clients: usize, bare: bool) -> Result<IdleRun, BenchError> {
    let mut probe = registered(target, &user_name(run, "p", 0), IO_TIMEOUT)?;
    let pid = target.pid.expect("a child server has a process id");
    let rss = |pid| proc_status(pid, "VmRSS:").unwrap_or(0);
    let threads = |pid| proc_status(pid, "Threads:").unwrap_or(0);
    let server_rss_kib_before = rss(pid);
    let server_threads_before = threads(pid);
    let server_maps_before = maps(pid);
    let bench_rss_kib_before = rss(std::process::id());
    let started = Instant::now();
    let mut held: Vec<Held> = Vec::with_capacity(clients);
    let mut stopped_by = None;
    for i in 0..clients {
        let connected = match bare {
            true => TcpStream::connect(target.command_addr).map(Held::Bare).map_err(Into::into),
            false => {
                let name = user_name(run, "i", i);
                registered(target, &name, IO_TIMEOUT).and_then(|mut client| {
                    let relay = relay_for(target, &mut client, &name, IO_TIMEOUT)?;
                    Ok(Held::Client { _session: Box::new(client), relay: Box::new(relay) })
                })
            }
        };
        match connected {
            Ok(one) => held.push(one),
            Err(error) => {
                let tail = target.log_tail();
                let cause = match tail.contains("cannot start a connection thread") {
                    true => format!(
                        "the server could not start another thread ({} running). Each \
                         thread takes about 4 memory maps (stack, sigaltstack and their guard \
                         pages): vm.max_map_count ({}) / 4 caps the threads of one process; \
                         raise it with `sysctl -w vm.max_map_count=262144` (and pid_max if needed)",
                        threads(pid),
                        std::fs::read_to_string("/proc/sys/vm/max_map_count")
                            .map_or_else(|_| "unknown".to_owned(), |v| v.trim().to_owned())
                    ),
                    false => format!("{error}"),
                };
                eprintln!("client {i} could not be set up: {error}\n{tail}");
                stopped_by = Some(cause);
                // The server may already have refused the client before: a relay is refused
                // after its handshake was written, and a handshake gets no answer.
                held.pop();
                break;
            }
        }
        if (i + 1) % 1_000 == 0 {
            eprintln!("  {} clients connected ({:.1} s)", i + 1, started.elapsed().as_secs_f64());
        }
    }
    let setup = started.elapsed();
    check_alive(&mut probe, &mut held, run)?;
    Ok(IdleRun {
        clients: held.len(),
        bare,
        server_rss_kib_before,
        server_rss_kib_after: rss(pid),
        server_threads_before,
        server_threads_after: threads(pid),
        server_maps_before,
        server_maps_after: maps(pid),
        bench_rss_kib_delta: rss(std::process::id()).saturating_sub(bench_rss_kib_before),
        setup,
        stopped_by,
    })
}

/// Proves a sample of the held clients is still served: a message to a relay arrives, and a
/// bare connection is still open (no end of stream).
fn check_alive(probe: &mut Client, held: &mut [Held], run: usize) -> Result<(), BenchError> {
    let n = held.len();
    for i in [0, n / 2, n.saturating_sub(1)].into_iter().filter(|&i| i < n) {
        match &mut held[i] {
            Held::Client { relay, .. } => {
                let name = user_name(run, "i", i);
                let reply = probe.send(&name, "are you there?")?;
                if !reply.ok {
                    return Err(BenchError::Refused { name, text: reply.text });
                }
                relay.recv()?;
            }
            Held::Bare(stream) => {
                stream.set_nonblocking(true)?;
                let mut byte = [0u8; 1];
                match stream.peek(&mut byte) {
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    other => {
                        return Err(BenchError::Other(format!(
                            "bare connection {i} is no longer idle: {other:?}"
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_fit_under_the_open_file_limit() {
        assert_eq!(clients_that_fit(20_000, 2), 9_968);
        assert_eq!(clients_that_fit(20_000, 1), 19_936);
        assert_eq!(clients_that_fit(10, 2), 0);
        assert!(fd_limit().is_some_and(|n| n > 0));
    }
}
