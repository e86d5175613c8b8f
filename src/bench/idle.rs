//! `bench idle`: many logged-in clients with relays, doing nothing; what each costs the server.
//!
//! The server runs as a child process (`chatroom server` from this executable) so that its
//! resident memory (`VmRSS` in `/proc/PID/status`) is its own, not mixed with the clients'.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{registered, relay_for, user_name, BenchError, Target, TargetOptions};
use crate::client::{Client, Relay};

const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// File descriptors this process keeps for itself (stdio, the server's pipes, slack).
const FDS_RESERVED: usize = 64;

/// What one run measured.
pub struct IdleRun {
    pub clients: usize,
    pub server_rss_kib_before: u64,
    pub server_rss_kib_after: u64,
    pub server_threads_after: u64,
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
}

/// The soft limit on open files of this process (the server child inherits it).
pub fn fd_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// How many clients fit: each holds two sockets here and two in the server.
pub fn clients_that_fit(fd_limit: usize) -> usize {
    fd_limit.saturating_sub(FDS_RESERVED) / 2
}

/// A field of `/proc/PID/status` in its own unit (kB for memory).
fn proc_status(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The server child, its files, and where its log goes.
struct ChildServer {
    child: Child,
    dir: PathBuf,
    stderr_path: PathBuf,
}

impl ChildServer {
    fn spawn(run: usize, clients: usize, fsync: &str) -> Result<(ChildServer, Target), BenchError> {
        let exe = std::env::current_exe().map_err(|e| BenchError::Server(e.to_string()))?;
        let dir = std::env::temp_dir().join(format!("chatroom-idle-{}-{run}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| BenchError::Server(e.to_string()))?;
        let stderr_path = dir.join("server.stderr");
        let stderr = File::create(&stderr_path).map_err(|e| BenchError::Server(e.to_string()))?;
        let connections = (clients * 2 + 100).to_string();
        let mut child = Command::new(exe)
            .args(["server", "--command-port", "0", "--relay-port", "0"])
            .args(["--connections-max", &connections, "--connections-per-peer-max", &connections])
            .args(["--registrations-per-address-max", &connections])
            .args(["--argon2-memory-kib", "8", "--argon2-iterations", "1", "--fsync", fsync])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| BenchError::Server(format!("cannot run {}: {e}", dir.display())))?;
        let stdout = child.stdout.take().expect("piped");
        let server = ChildServer { child, dir, stderr_path };
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| BenchError::Server(e.to_string()))?;
        let Some((command_addr, relay_addr)) = parse_listening(&line) else {
            let tail = server.stderr_tail();
            server.stop();
            return Err(BenchError::Server(format!("unexpected first line {line:?}; {tail}")));
        };
        let options = TargetOptions {
            external: Some((command_addr, relay_addr)),
            fsync: None,
            queue_len_max: 0,
        };
        let target = Target::start(&options, run)?;
        Ok((server, target))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(5)..].join("\n  ");
        format!("server log ({}) ends with:\n  {tail}", self.stderr_path.display())
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Parses `chatroom server: command ADDR relay ADDR (...)`.
fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "command")?;
    let command = words.next()?.parse().ok()?;
    words.find(|w| *w == "relay")?;
    let relay = words.next()?.parse().ok()?;
    Some((command, relay))
}

/// Runs one measurement with up to `clients` idle clients (fewer if setting one up fails; the
/// failure is printed).
pub fn run_once(run: usize, clients: usize, fsync: &str) -> Result<IdleRun, BenchError> {
    let (server, target) = ChildServer::spawn(run, clients, fsync)?;
    let result = measure(&server, &target, run, clients);
    if result.is_err() {
        eprintln!("{}", server.stderr_tail());
    }
    server.stop();
    result
}

fn measure(
    server: &ChildServer,
    target: &Target,
    run: usize,
    clients: usize,
) -> Result<IdleRun, BenchError> {
    let mut probe = registered(target, &user_name(run, "p", 0), IO_TIMEOUT)?;
    let rss = |pid| proc_status(pid, "VmRSS:").unwrap_or(0);
    let server_rss_kib_before = rss(server.pid());
    let bench_rss_kib_before = rss(std::process::id());
    let started = Instant::now();
    let mut held: Vec<(Client, Relay)> = Vec::with_capacity(clients);
    let mut stopped_by = None;
    for i in 0..clients {
        let name = user_name(run, "i", i);
        let connected = registered(target, &name, IO_TIMEOUT)
            .and_then(|mut c| Ok((relay_for(target, &mut c, &name, IO_TIMEOUT)?, c)));
        match connected {
            Ok((relay, client)) => held.push((client, relay)),
            Err(error) => {
                let tail = server.stderr_tail();
                let threads = proc_status(server.pid(), "Threads:").unwrap_or(0);
                let cause = match tail.contains("cannot start a connection thread") {
                    true => format!(
                        "the server could not start another thread ({threads} running). Each \
                         thread takes about 4 memory maps (stack, sigaltstack and their guard \
                         pages): vm.max_map_count ({}) / 4 caps the threads of one process; \
                         raise it with `sysctl -w vm.max_map_count=262144` (and pid_max if needed)",
                        std::fs::read_to_string("/proc/sys/vm/max_map_count")
                            .map_or_else(|_| "unknown".to_owned(), |v| v.trim().to_owned())
                    ),
                    false => format!("{error}"),
                };
                eprintln!("client {i} could not be set up: {error}\n{tail}");
                stopped_by = Some(cause);
                break;
            }
        }
        if (i + 1) % 1_000 == 0 {
            eprintln!("  {} clients connected ({:.1} s)", i + 1, started.elapsed().as_secs_f64());
        }
    }
    let setup = started.elapsed();
    check_relays(&mut probe, &mut held, run)?;
    Ok(IdleRun {
        clients: held.len(),
        server_rss_kib_before,
        server_rss_kib_after: rss(server.pid()),
        server_threads_after: proc_status(server.pid(), "Threads:").unwrap_or(0),
        bench_rss_kib_delta: rss(std::process::id()).saturating_sub(bench_rss_kib_before),
        setup,
        stopped_by,
    })
}

/// Proves a sample of the relays is bound and live: a message to each arrives.
fn check_relays(
    probe: &mut Client,
    held: &mut [(Client, Relay)],
    run: usize,
) -> Result<(), BenchError> {
    let n = held.len();
    for i in [0, n / 2, n.saturating_sub(1)].into_iter().filter(|&i| i < n) {
        let name = user_name(run, "i", i);
        let reply = probe.send(&name, "are you there?")?;
        if !reply.ok {
            return Err(BenchError::Refused { name, text: reply.text });
        }
        held[i].1.recv()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_line_parses() {
        let line = "chatroom server: command 127.0.0.1:41000 relay 127.0.0.1:41001 (Ctrl-C stops)";
        let (command, relay) = parse_listening(line).unwrap();
        assert_eq!((command.port(), relay.port()), (41000, 41001));
        assert_eq!(parse_listening("chatroom server: cannot start"), None);
    }

    #[test]
    fn two_sockets_per_client_fit_under_the_limit() {
        assert_eq!(clients_that_fit(20_000), 9_968);
        assert_eq!(clients_that_fit(10), 0);
        assert!(fd_limit().is_some_and(|n| n > 0));
    }
}
