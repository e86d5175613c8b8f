//! `chatroom server`: flags, logging, Ctrl-C.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use super::{ServerConfig, ServerHandle};
use crate::auth::HashCost;
use crate::core::Config;
use crate::store::{FsyncPolicy, StoreOptions};

/// Run the chat server.
///
/// Relay handshakes: clients ask for a ticket (request code 6) and open the relay with
/// `USERNAME\nTICKET`. The original client's bare-username handshake is refused unless
/// `--allow-bare-relay` (or `--demo`) is given: it binds to a live session of that user from
/// the address that logged in moments ago, so anyone on that host can read the user's messages.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ServerArgs {
    /// Address to listen on (loopback by default; use 0.0.0.0 to serve the network).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Command channel port.
    #[arg(long, default_value_t = 8084)]
    pub command_port: u16,
    /// Relay channel port.
    #[arg(long, default_value_t = 8086)]
    pub relay_port: u16,
    /// Try the original client: create its test accounts tester/abc123 and abc/abc if
    /// missing, and turn on --allow-bare-relay (printing its warning).
    #[arg(long)]
    pub demo: bool,
    /// Accept the original client's bare-username relay handshake. This lets anyone on the
    /// server's host read a user's messages (they can open the relay in the user's name right
    /// after the login); use it only for the original client on a trusted host.
    #[arg(long)]
    pub allow_bare_relay: bool,
    /// Messages waiting per recipient before sends to it are refused.
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one())]
    pub queue_len_max: usize,
    /// Open connections in total, both channels (a client with a relay holds two); one beyond
    /// it is refused with a reply that says so. Default: derived at start from the open-file
    /// limit (`ulimit -n`, less the descriptors open and 64 kept) and the thread cap, and
    /// logged. A value given here overrides it; above what the open-file limit allows, new
    /// connections wait unanswered in the listen backlog until another closes.
    #[arg(long, value_parser = at_least_one())]
    pub connections_max: Option<usize>,
    /// Open connections per client address.
    #[arg(long, default_value_t = 64, value_parser = at_least_one())]
    pub connections_per_peer_max: usize,
    /// Registrations from one address per 10 minutes (counted as they start).
    #[arg(long, default_value_t = 10)]
    pub registrations_per_address_max: usize,
    /// Seconds a new connection has to log in (or complete its relay handshake), 1 to a day.
    #[arg(long, default_value_t = 60,
        value_parser = clap::value_parser!(u64).range(1..=LOGIN_DEADLINE_S_MAX))]
    pub login_deadline_s: u64,
    /// Largest request body in bytes once logged in (8 KiB applies before), at most 8 MiB.
    #[arg(long, default_value_t = 64 * 1024,
        value_parser = at_least_one().range(1..=FRAME_LEN_FLAG_MAX as u64))]
    pub frame_len_max: usize,
    /// Free failed password checks per account and address (checks in flight count); after
    /// them each failure doubles the wait, from 1 s up to a minute. An address also has 20 over
    /// all names. Other addresses are not slowed, and unknown names are treated alike.
    #[arg(long, default_value_t = 5)]
    pub login_failures_max: usize,
    /// argon2id memory cost in KiB (default: OWASP's 19 MiB).
    #[arg(long, default_value_t = HashCost::default().memory_kib)]
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    #[arg(long, default_value_t = HashCost::default().iterations)]
    pub argon2_iterations: u32,
    /// Password hashes computed at once (default: cores - 1, at least 1).
    #[arg(long, value_parser = at_least_one())]
    pub hash_jobs_max: Option<usize>,
    /// Directory of the write-ahead log and snapshots (created if missing).
    #[arg(long, default_value = "chatroom-data")]
    pub data_dir: PathBuf,
    /// `always` fsyncs every group commit before acknowledging it. `never` only writes to the
    /// OS: a power loss can lose acknowledged messages. For benchmarks and throwaway servers.
    #[arg(long, value_enum, default_value_t = Fsync::Always)]
    pub fsync: Fsync,
    /// Start even if the log is damaged before its tail, discarding everything from the damage
    /// on (named in the error this flag answers). Acknowledged data will be lost.
    #[arg(long)]
    pub accept_data_loss: bool,
    /// Log bytes written since the last snapshot after which a new snapshot is written (it
    /// replaces the log before it, bounding both disk use and recovery time).
    #[arg(long, default_value_t = StoreOptions::default().snapshot_log_bytes_min)]
    pub snapshot_log_bytes_min: u64,
    /// Bytes of zeros the log keeps written (and synced) ahead of its records, so that each
    /// commit's fdatasync overwrites space the file already has and commits no size change;
    /// topped up 256 KiB at a time while the log writer is idle. 0 appends instead.
    #[arg(long, default_value_t = StoreOptions::default().prealloc_bytes)]
    pub log_prealloc_bytes: u64,
    /// Plant this bug in the server (`core::planted::Planted`, by name; builds with the
    /// `planted` feature only): to watch a checker's catch on a real server.
    #[cfg(any(test, feature = "planted"))]
    #[arg(long, hide = true, value_parser = crate::sim::cli::parse_planted)]
    pub planted: Option<crate::core::planted::Planted>,
}

/// Printed when the bare handshake is on.
pub const BARE_RELAY_WARNING: &str = "warning: bare relay handshakes are accepted \
(--allow-bare-relay or --demo): anyone on this server's host can read a user's messages by \
opening the relay in their name right after they log in. Use this only for the original \
client on a trusted host.";

/// The longest `--login-deadline-s`: a day. A longer wait for a login is no limit, and the
/// bound keeps the deadline's milliseconds, added to the clock, far inside 64 bits (unbounded,
/// 2^64 / 1000 seconds wrapped to a 384 ms deadline).
pub const LOGIN_DEADLINE_S_MAX: u64 = 24 * 60 * 60;

/// The largest `--frame-len-max`: half the largest log record, so that a message of that
/// size, with its names, is always logged (a record the log cannot take would stop its writer).
pub const FRAME_LEN_FLAG_MAX: usize = crate::store::codec::RECORD_LEN_MAX / 2;

/// A count that must be at least 1: with 0 the limit would refuse every client (no queue room,
/// no connection, no request body, no password check), so 0 is refused at the command line.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
}

/// `--fsync` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Fsync {
    Always,
    Never,
}

impl ServerArgs {
    /// Runs the server until Ctrl-C.
    pub fn run(self) -> ExitCode {
        if let Some(problem) = self.contradiction() {
            eprintln!("chatroom server: {problem}");
            return ExitCode::from(2);
        }
        init_logging();
        let config = self.config();
        if config.core.bare_relay_allowed {
            eprintln!("chatroom server: {BARE_RELAY_WARNING}");
        }
        let handle = match ServerHandle::start(config) {
            Ok(handle) => handle,
            Err(error) => {
                eprintln!("chatroom server: cannot start: {error}");
                let kind = error.kind();
                if matches!(kind, ErrorKind::AddrInUse | ErrorKind::AddrNotAvailable) {
                    eprintln!("(the ports are set by --command-port and --relay-port, the address by --bind)");
                }
                return ExitCode::from(1);
            }
        };
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        if let Err(error) = ctrlc::set_handler(move || {
            let _ = stop_tx.send(());
        }) {
            eprintln!("chatroom server: cannot handle Ctrl-C: {error}");
        }
        println!(
            "chatroom server: command {} relay {} (Ctrl-C stops)",
            handle.command_addr(),
            handle.relay_addr()
        );
        let _ = stop_rx.recv();
        println!("chatroom server: shutting down");
        handle.shutdown();
        ExitCode::SUCCESS
    }

    /// Flags that each parse but cannot work together, said before anything is opened (the
    /// bind that would fail instead reports only "Address already in use").
    fn contradiction(&self) -> Option<String> {
        let port = self.command_port;
        (port != 0 && port == self.relay_port).then(|| {
            format!("--command-port and --relay-port are both {port}: each channel needs its own")
        })
    }

    fn config(&self) -> ServerConfig {
        let mut config = ServerConfig {
            command_addr: SocketAddr::new(self.bind, self.command_port),
            relay_addr: SocketAddr::new(self.bind, self.relay_port),
            hash_cost: HashCost {
                memory_kib: self.argon2_memory_kib,
                iterations: self.argon2_iterations,
            },
            demo_accounts: self.demo,
            connections_max: self.connections_max,
            data_dir: Some(self.data_dir.clone()),
            fsync: match self.fsync {
                Fsync::Always => FsyncPolicy::Always,
                Fsync::Never => FsyncPolicy::Never,
            },
            ..ServerConfig::default()
        };
        config.store.accept_data_loss = self.accept_data_loss;
        config.store.snapshot_log_bytes_min = self.snapshot_log_bytes_min;
        config.store.prealloc_bytes = self.log_prealloc_bytes;
        if let Some(n) = self.hash_jobs_max {
            config.hash_jobs_max = n;
        }
        config.core = self.core_config(config.core);
        config
    }

    /// The core's configuration these flags ask for: `base` (the limits no flag sets) with
    /// every core limit a flag names set as the flag says. Shared by the server and by the
    /// simulator, which asks for its worlds' limits through these flags (`sim::flags`).
    pub fn core_config(&self, base: Config) -> Config {
        let mut core = base;
        core.bare_relay_allowed = self.allow_bare_relay || self.demo;
        core.queue_len_max = self.queue_len_max;
        core.connections_per_peer_max = self.connections_per_peer_max;
        core.login_deadline_ms = self.login_deadline_s * 1000;
        core.frame_len_max = self.frame_len_max;
        core.login_failures_max = self.login_failures_max;
        core.registrations_per_peer_max = self.registrations_per_address_max;
        #[cfg(any(test, feature = "planted"))]
        {
            core.planted = self.planted.unwrap_or_default();
            if core.planted == crate::core::planted::Planted::DeadlineFlagInSeconds {
                core.login_deadline_ms = self.login_deadline_s;
            }
        }
        let buffered_len_max = buffered_len_needed(&core);
        #[cfg(any(test, feature = "planted"))]
        let buffered_len_max = match core.planted {
            crate::core::planted::Planted::FrameFlagKeepsInboundBound => 0,
            crate::core::planted::Planted::InboundBoundWithoutRead => {
                buffered_len_max - crate::host::READ_LEN_MAX
            }
            _ => buffered_len_max,
        };
        core.inbound_buffered_len_max = core.inbound_buffered_len_max.max(buffered_len_max);
        core
    }

    /// Parses `chatroom server`'s flags (`flags` holds no program name), as its command line
    /// does.
    pub fn parse_flags<I, T>(flags: I) -> Result<ServerArgs, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::Parser;
        /// `chatroom server`'s flags alone.
        #[derive(clap::Parser)]
        #[command(no_binary_name = true)]
        struct Flags {
            #[command(flatten)]
            server: ServerArgs,
        }
        Flags::try_parse_from(flags).map(|flags| flags.server)
    }
}

/// What the server may have to buffer from a client within `core`'s frame limits. The bound on
/// buffered bytes must hold it, or the client is closed as having sent too much without
/// waiting for replies, which PROTOCOL.md rules out: a request short of its last bytes, and
/// one read, which brings those with the next requests (the host reads only when the core
/// would decode what arrives, so nothing more piles up).
pub fn buffered_len_needed(core: &Config) -> usize {
    let frame_len_max = core.frame_len_max.max(core.frame_len_max_before_login);
    frame_len_max.max(core.relay_frame_len_max)
        + crate::wire::HEADER_LEN
        + crate::host::READ_LEN_MAX
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::planted::Planted;
    use crate::host::READ_LEN_MAX;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    /// Every flag reaches the configuration the server runs with, in the unit the flag names
    /// (no test started a server from its flags: a flag dropped or read in the wrong unit
    /// escaped every checker until the outside tester's fourth pass).
    #[test]
    fn every_flag_reaches_the_server_config_unless_planted() {
        for (planted, honest) in [(None, true), (Some(Planted::DeadlineFlagInSeconds), false)] {
            let mut argv =
                vec!["chatroom", "--bind", "0.0.0.0", "--command-port", "1", "--relay-port", "2"];
            argv.extend(["--allow-bare-relay", "--queue-len-max", "3", "--connections-max", "4"]);
            argv.extend([
                "--connections-per-peer-max",
                "5",
                "--registrations-per-address-max",
                "6",
            ]);
            argv.extend([
                "--login-deadline-s",
                "7",
                "--frame-len-max",
                "8",
                "--login-failures-max",
                "9",
            ]);
            argv.extend(["--argon2-memory-kib", "10", "--argon2-iterations", "11"]);
            argv.extend(["--hash-jobs-max", "12", "--data-dir", "d", "--fsync", "never"]);
            argv.extend(["--accept-data-loss", "--snapshot-log-bytes-min", "13"]);
            argv.extend(["--log-prealloc-bytes", "14"]);
            let name = planted.map(Planted::name);
            if let Some(name) = &name {
                argv.extend(["--planted", name]);
            }
            let config = Cli::try_parse_from(argv).expect("flags parse").server.config();
            let core = &config.core;
            let seen = (
                (config.command_addr.to_string(), config.relay_addr.to_string()),
                (config.hash_cost, config.hash_jobs_max, config.data_dir.clone()),
                (config.fsync == FsyncPolicy::Never, config.store.accept_data_loss),
                (config.store.snapshot_log_bytes_min, config.store.prealloc_bytes),
                (core.bare_relay_allowed, core.queue_len_max, config.connections_max),
                (core.connections_per_peer_max, core.registrations_per_peer_max),
                (core.login_deadline_ms, core.frame_len_max, core.login_failures_max),
            );
            let expected = (
                ("0.0.0.0:1".to_owned(), "0.0.0.0:2".to_owned()),
                (HashCost { memory_kib: 10, iterations: 11 }, 12, Some(PathBuf::from("d"))),
                (true, true),
                (13, 14),
                (true, 3, Some(4)),
                (5, 6),
                (7_000, 8, 9),
            );
            assert_eq!(seen == expected, honest, "{planted:?}: {seen:?}");
        }
    }

    /// A maximal request and the read that brings its last bytes with the next requests fit
    /// what the server buffers from a connection: a burst that PROTOCOL.md allows is never
    /// closed for it (the simulator's `burst_past_a_whole_frame_bound` scenario found the
    /// bound one read short).
    #[test]
    fn a_raised_frame_len_max_buffers_a_request_and_a_read_unless_planted() {
        for (planted, honest) in [(None, true), (Some(Planted::InboundBoundWithoutRead), false)] {
            let mut argv = vec!["chatroom", "--frame-len-max", "1048576"];
            let name = planted.map(Planted::name);
            if let Some(name) = &name {
                argv.extend(["--planted", name]);
            }
            let config = Cli::try_parse_from(argv).expect("flags parse").server.config();
            // Short of its last byte, then a read of that byte and the next requests.
            let buffered_len_max = 1_048_576 + crate::wire::HEADER_LEN - 1 + READ_LEN_MAX;
            let fits = config.core.inbound_buffered_len_max >= buffered_len_max;
            assert_eq!(fits, honest, "{planted:?}: {}", config.core.inbound_buffered_len_max);
        }
    }

    /// A request as long as `--frame-len-max` allows fits what the server buffers from a
    /// connection (a 1 MiB request was refused as too much sent without waiting for replies:
    /// the outside tester's seventh pass, `tests/outside_cli.rs`).
    #[test]
    fn a_raised_frame_len_max_buffers_one_whole_request_unless_planted() {
        for (planted, honest) in [(None, true), (Some(Planted::FrameFlagKeepsInboundBound), false)]
        {
            let mut argv = vec!["chatroom", "--frame-len-max", "1048576"];
            let name = planted.map(Planted::name);
            if let Some(name) = &name {
                argv.extend(["--planted", name]);
            }
            let config = Cli::try_parse_from(argv).expect("flags parse").server.config();
            let whole_frame_len = 1_048_576 + crate::wire::HEADER_LEN;
            let fits = config.core.inbound_buffered_len_max >= whole_frame_len;
            assert_eq!(fits, honest, "{planted:?}: {}", config.core.inbound_buffered_len_max);
        }
    }
}
