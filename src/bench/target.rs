//! The server a benchmark talks to: a `chatroom server` child process of this executable (the
//! default, so that its CPU time, threads and memory are its own and it does not share this
//! process's allocator or scheduler slots), or an external one named by address.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::system::{pin_current_thread, ProcSample};
use super::BenchError;

/// Where the server comes from, and how a child server is configured.
#[derive(Debug, Clone)]
pub struct TargetOptions {
    /// An external server's command and relay addresses; `None` starts a child server.
    pub external: Option<(SocketAddr, SocketAddr)>,
    /// The external server's process id, so its CPU, threads and memory can be reported.
    pub external_pid: Option<u32>,
    /// The child's `--fsync` value (`always` or `never`).
    pub fsync: &'static str,
    /// Messages waiting per recipient.
    pub queue_len_max: usize,
    /// Connections the child must accept (in total and from loopback).
    pub connections_max: usize,
    /// Cores the child runs on (`None`: wherever the scheduler puts it).
    pub server_cpus: Option<Vec<usize>>,
    /// Which server the child is.
    pub broker: Broker,
    /// The executable whose `chatroom server` the child runs (`None`: this one), so that one
    /// load generator measures two builds back to back.
    pub server_exe: Option<PathBuf>,
}

/// The server a child process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Broker {
    /// This executable's `chatroom server`.
    Chatroom,
    /// The `mosquitto` MQTT broker from PATH, without persistence (for comparison).
    Mosquitto,
}

/// A server ready for a benchmark run.
pub struct Target {
    pub command_addr: SocketAddr,
    pub relay_addr: SocketAddr,
    /// The server's process id, if known.
    pub pid: Option<u32>,
    child: Option<ChildServer>,
}

impl Target {
    /// Starts a child server (or names the external one) for run number `run`.
    pub fn start(options: &TargetOptions, run: usize) -> Result<Target, BenchError> {
        if let Some((command_addr, relay_addr)) = options.external {
            return Ok(Target { command_addr, relay_addr, pid: options.external_pid, child: None });
        }
        let (child, command_addr, relay_addr) = match options.broker {
            Broker::Chatroom => ChildServer::spawn(options, run)?,
            Broker::Mosquitto => ChildServer::spawn_mosquitto(options, run)?,
        };
        Ok(Target { command_addr, relay_addr, pid: Some(child.pid()), child: Some(child) })
    }

    /// How the server is set up, for the report.
    pub fn describe(options: &TargetOptions) -> String {
        match options.external {
            Some((command, relay)) => format!("external server at {command} / {relay}"),
            None if options.broker == Broker::Mosquitto => format!(
                "child process `mosquitto` (no persistence), cores {}",
                options.server_cpus.as_ref().map_or_else(|| "any".to_owned(), |c| format!("{c:?}"))
            ),
            None => format!(
                "child process `{} server`, file log in a temporary directory under {}, \
                 fsync {}, cores {}",
                options
                    .server_exe
                    .as_ref()
                    .map_or_else(|| "chatroom".to_owned(), |exe| exe.display().to_string()),
                data_root().display(),
                options.fsync,
                options.server_cpus.as_ref().map_or_else(|| "any".to_owned(), |c| format!("{c:?}"))
            ),
        }
    }

    /// The server process's counters now, if it is known and alive.
    pub fn sample(&self) -> Option<ProcSample> {
        ProcSample::of(self.pid?)
    }

    /// The server's threads' costs by thread name (empty without a process id).
    pub fn thread_costs(&self) -> std::collections::BTreeMap<String, super::system::ThreadCost> {
        self.pid.map(super::system::costs_by_thread).unwrap_or_default()
    }

    /// The last lines of a child server's log (empty for an external server).
    pub fn log_tail(&self) -> String {
        self.child.as_ref().map(ChildServer::stderr_tail).unwrap_or_default()
    }

    /// Stops a child server and removes its files.
    pub fn stop(self) {
        if let Some(child) = self.child {
            child.stop();
        }
    }
}

/// Where child servers keep their data: the current directory, where the server keeps its own
/// by default (`chatroom-data`), not `/tmp`, which may be a RAM file system where fsync costs
/// nothing.
pub fn data_root() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| std::env::temp_dir())
}

/// A fresh directory for this process's run `run` of kind `what`, under [`data_root`].
pub fn scratch_dir(what: &str, run: usize) -> Result<PathBuf, BenchError> {
    let dir = data_root().join(format!("chatroom-bench-{what}-{}-{run}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| BenchError::Server(format!("cannot create {}: {e}", dir.display())))?;
    Ok(dir)
}

/// The server child, its files, and where its log goes.
struct ChildServer {
    child: Child,
    dir: PathBuf,
    stderr_path: PathBuf,
}

impl ChildServer {
    fn spawn(
        options: &TargetOptions,
        run: usize,
    ) -> Result<(ChildServer, SocketAddr, SocketAddr), BenchError> {
        let exe = match &options.server_exe {
            Some(exe) => exe.clone(),
            None => std::env::current_exe().map_err(|e| BenchError::Server(e.to_string()))?,
        };
        let dir = scratch_dir("server", run)?;
        let stderr_path = dir.join("server.stderr");
        let stderr = File::create(&stderr_path).map_err(|e| BenchError::Server(e.to_string()))?;
        let connections = options.connections_max.to_string();
        let mut command = Command::new(&exe);
        command
            .args(["server", "--command-port", "0", "--relay-port", "0"])
            .args(["--connections-max", &connections, "--connections-per-peer-max", &connections])
            // Every benchmark client registers from loopback.
            .args(["--registrations-per-address-max", &connections])
            .args(["--queue-len-max", &options.queue_len_max.to_string()])
            .args(["--argon2-memory-kib", "8", "--argon2-iterations", "1"])
            .args(["--fsync", options.fsync])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let child = spawn_on(&mut command, options.server_cpus.as_deref())
            .map_err(|e| BenchError::Server(format!("cannot run {}: {e}", exe.display())))?;
        let mut server = ChildServer { child, dir, stderr_path };
        let stdout = server.child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| BenchError::Server(e.to_string()))?;
        let Some((command_addr, relay_addr)) = parse_listening(&line) else {
            let tail = server.stderr_tail();
            server.stop();
            return Err(BenchError::Server(format!("unexpected first line {line:?}; {tail}")));
        };
        Ok((server, command_addr, relay_addr))
    }

    /// `mosquitto` on a free loopback port, without persistence; both addresses are its port.
    fn spawn_mosquitto(
        options: &TargetOptions,
        run: usize,
    ) -> Result<(ChildServer, SocketAddr, SocketAddr), BenchError> {
        let error = |e: std::io::Error| BenchError::Server(format!("mosquitto: {e}"));
        let dir = scratch_dir("mosquitto", run)?;
        // A port the kernel just handed out is free; mosquitto binds it a moment later.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr());
        let addr = addr.map_err(error)?;
        let config = dir.join("mosquitto.conf");
        let settings = format!(
            "listener {} 127.0.0.1\nallow_anonymous true\npersistence false\n\
             max_queued_messages 0\nmax_inflight_messages 0\nset_tcp_nodelay true\n",
            addr.port()
        );
        std::fs::write(&config, settings).map_err(error)?;
        let stderr_path = dir.join("server.stderr");
        let stderr = File::create(&stderr_path).map_err(error)?;
        let mut command = Command::new("mosquitto");
        command.arg("-c").arg(&config).stdin(Stdio::null()).stdout(Stdio::null()).stderr(stderr);
        let child = spawn_on(&mut command, options.server_cpus.as_deref()).map_err(error)?;
        let server = ChildServer { child, dir, stderr_path };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if started.elapsed() > std::time::Duration::from_secs(10) {
                let tail = server.stderr_tail();
                server.stop();
                return Err(BenchError::Server(format!(
                    "mosquitto did not listen on {addr}; {tail}"
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok((server, addr, addr))
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

/// Spawns `command`, on `cpus` if given. A process inherits the affinity of the thread that
/// forks it, so the child is spawned from a short-lived thread pinned to those cores: no code
/// runs between fork and exec, and this process's own threads stay where they are.
fn spawn_on(command: &mut Command, cpus: Option<&[usize]>) -> std::io::Result<Child> {
    let Some(cpus) = cpus else { return command.spawn() };
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_current_thread(cpus)?;
                command.spawn()
            })
            .join()
            .expect("the spawning thread does not panic")
    })
}

/// Parses `chatroom server: command ADDR relay ADDR (...)`.
pub fn parse_listening(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let mut words = line.split_whitespace();
    words.find(|w| *w == "command")?;
    let command = words.next()?.parse().ok()?;
    words.find(|w| *w == "relay")?;
    let relay = words.next()?.parse().ok()?;
    Some((command, relay))
}

/// Removes a directory made by [`scratch_dir`], ignoring failure (it is scratch).
pub fn remove_scratch(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
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
}
