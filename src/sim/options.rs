//! What a run is made of: the options a user gives and the fault mix each seed derives.
//!
//! As in TigerBeetle's VOPR, `--faults swarm` draws a different mix for every seed (which faults
//! are on, and how often), so a sweep explores many kinds of world; every run prints the mix it
//! used, and the seed alone reproduces it. A swarm seed also draws the server's limits
//! (FoundationDB's BUGGIFY applied to configuration): in some seeds each limit is small enough
//! to be reached and each deadline short enough to fire within a world's few seconds.

use std::fmt;

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::rng::{child, Stream};
use crate::core::Config;

/// What the commonest send costs the message store: a tagged `hi` of a client below 10 at an
/// operation from 10 to 99 (`#1.23 hi`, 8 bytes), plus the 96 bytes each message counts
/// (`Config::queued_bytes_max`).
const COMMON_SEND_COST_BYTES: u64 = 8 + 96;

/// Which faults a run injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultMode {
    /// Latency only: no fragmentation, resets, partitions or crashes.
    None,
    /// A fixed moderate mix of every fault.
    Default,
    /// Each seed draws its own mix.
    Swarm,
    /// Frequent crashes with slow fsyncs and torn writes: recovery under stress.
    Crashes,
}

impl fmt::Display for FaultMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FaultMode::None => "none",
            FaultMode::Default => "default",
            FaultMode::Swarm => "swarm",
            FaultMode::Crashes => "crashes",
        })
    }
}

macro_rules! fault_mix {
    ($( $(#[doc = $doc:literal])* $field:ident ),* $(,)?) => {
        /// The network, disk and timing knobs of one run. Percentages are 0..=100.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct FaultMix {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl FaultMix {
            /// Every knob 0 (for the limits: the shipped default).
            pub const DEFAULT_LIMITS: FaultMix = FaultMix { $( $field: 0, )* };

            /// Every knob as `(name, value)`, in a fixed order.
            pub fn knobs(&self) -> Vec<(&'static str, u64)> {
                vec![$( (stringify!($field), self.$field), )*]
            }

            /// Sets the knob `key` from text.
            pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
                let value: u64 =
                    value.trim().parse().map_err(|_| format!("option {key}: bad number {value:?}"))?;
                match key {
                    $( stringify!($field) => self.$field = value, )*
                    other => return Err(format!("unknown option {other:?}")),
                }
                Ok(())
            }
        }
    };
}

fault_mix! {
    /// One-way latency of a write, drawn per write.
    latency_ms_min,
    latency_ms_max,
    /// Chance a write arrives in several pieces.
    fragment_percent,
    /// Chance a fragmented write arrives byte by byte.
    bytewise_percent,
    /// Mean time between injected faults (0: none).
    fault_interval_ms,
    /// Relative weights of the injected faults.
    reset_weight,
    partition_weight,
    crash_weight,
    partition_ms_max,
    crash_down_ms_max,
    /// Time an fsync takes.
    fsync_ms_max,
    /// Time a password job waits for the hashing thread.
    hash_ms_max,
    /// Time a connection's writer thread takes to get to queued frames (the thread-pair race).
    writer_ms_max,
    /// Share of clients that read their relay slowly, and how slowly.
    slow_reader_percent,
    slow_reader_ms_max,
    /// Whether a crash may keep unsynced records (whole, or the last one torn): 0 or 1.
    torn_writes,
    /// Clients share this many hosts (one address each), so a client on its victim's host can
    /// try the bare relay handshake from the right address; 0: every client its own host.
    hosts,
    /// Extra clients on one attacker host that all log in with a wrong password to one name
    /// at the same moment (a burst against the login throttle); 0: none. In a scenario file,
    /// the last this many clients are the attacker host's.
    storm_logins,
    // The server's limits (`core::Config`), BUGGIFY-style: 0 keeps the shipped default, so
    // that a swarm sweeps both a server near every limit and the server that ships.
    /// `Config::queue_len_max`: messages waiting for one recipient.
    limit_queue_len,
    /// `Config::queued_bytes_max`: bytes of waiting messages (each counts 96 bytes more).
    limit_queued_bytes,
    /// `Config::push_window_len`: pushes in flight on one relay.
    limit_push_window,
    /// `Config::pipeline_len_max`: requests decoded ahead of their replies (and with it the
    /// bound of every connection's outgoing mailbox).
    limit_pipeline_len,
    /// `Config::frame_len_max_before_login`, `frame_len_max` and `relay_frame_len_max`.
    limit_frame_len_before_login,
    limit_frame_len,
    limit_relay_frame_len,
    /// `Config::accounts_max`.
    limit_accounts,
    /// `Config::connections_max` and `connections_per_peer_max`.
    limit_connections,
    limit_connections_per_peer,
    /// `Config::login_deadline_ms` (also the relay handshake's) and `frame_deadline_ms`.
    limit_login_deadline_ms,
    limit_frame_deadline_ms,
    /// `Config::ticket_ttl_ms`, `tickets_per_session_max` and `bare_relay_window_ms`.
    limit_ticket_ttl_ms,
    limit_tickets_per_session,
    limit_bare_relay_window_ms,
    /// The login throttle: `Config::login_failures_max`, `login_failures_per_peer_max`,
    /// `login_backoff_base_ms`, `login_failure_window_ms`.
    limit_login_failures,
    limit_login_failures_per_peer,
    limit_login_backoff_base_ms,
    limit_login_failure_window_ms,
    /// `Config::registrations_per_peer_max` and `registration_window_ms`.
    limit_registrations_per_peer,
    limit_registration_window_ms,
    /// `Config::list_len_max`, `list_reply_bytes_max`, `list_pattern_len_max`, `list_scan_max`.
    limit_list_len,
    limit_list_reply_bytes,
    limit_list_pattern_len,
    limit_list_scan,
    /// Log bytes after which the store compacts into a snapshot (0: 4 KiB).
    limit_snapshot_log_bytes,
    /// `Config::inbound_buffered_len_max`: undecoded bytes buffered from one connection. No
    /// flag sets it; the server's flag conversion must raise it to what a client within the
    /// frame limits may have the server buffer (`sim::flags`).
    limit_inbound_len,
}

impl FaultMix {
    /// Latency only.
    pub fn none() -> Self {
        FaultMix {
            latency_ms_min: 1,
            latency_ms_max: 5,
            fragment_percent: 0,
            bytewise_percent: 0,
            fault_interval_ms: 0,
            reset_weight: 0,
            partition_weight: 0,
            crash_weight: 0,
            partition_ms_max: 0,
            crash_down_ms_max: 0,
            fsync_ms_max: 0,
            hash_ms_max: 0,
            writer_ms_max: 0,
            slow_reader_percent: 0,
            slow_reader_ms_max: 0,
            torn_writes: 0,
            hosts: 0,
            storm_logins: 0,
            ..FaultMix::DEFAULT_LIMITS
        }
    }

    /// A moderate mix of every fault.
    pub fn default_mix() -> Self {
        FaultMix {
            latency_ms_min: 1,
            latency_ms_max: 20,
            fragment_percent: 20,
            bytewise_percent: 10,
            fault_interval_ms: 400,
            reset_weight: 3,
            partition_weight: 3,
            crash_weight: 1,
            partition_ms_max: 500,
            crash_down_ms_max: 200,
            fsync_ms_max: 10,
            hash_ms_max: 5,
            writer_ms_max: 5,
            slow_reader_percent: 20,
            slow_reader_ms_max: 50,
            torn_writes: 1,
            hosts: 0,
            storm_logins: 0,
            ..FaultMix::DEFAULT_LIMITS
        }
    }

    /// Frequent crashes while fsyncs are slow, with torn writes.
    pub fn crashes() -> Self {
        FaultMix {
            fault_interval_ms: 300,
            reset_weight: 1,
            partition_weight: 0,
            crash_weight: 3,
            crash_down_ms_max: 100,
            fsync_ms_max: 40,
            hash_ms_max: 5,
            writer_ms_max: 5,
            torn_writes: 1,
            ..FaultMix::none()
        }
    }

    /// A mix drawn from `rng`: each fault is on or off, at its own rate.
    pub fn swarm(rng: &mut ChaCha20Rng) -> Self {
        let on = |rng: &mut ChaCha20Rng| rng.gen_bool(0.6);
        let latency_ms_min = rng.gen_range(0..=5);
        let mut mix = FaultMix {
            latency_ms_min,
            latency_ms_max: latency_ms_min + rng.gen_range(0..=50),
            fragment_percent: if on(rng) { rng.gen_range(1..=100) } else { 0 },
            bytewise_percent: rng.gen_range(0..=50),
            fault_interval_ms: if on(rng) { rng.gen_range(50..=2_000) } else { 0 },
            reset_weight: if on(rng) { rng.gen_range(1..=5) } else { 0 },
            partition_weight: if on(rng) { rng.gen_range(1..=5) } else { 0 },
            crash_weight: if on(rng) { rng.gen_range(1..=3) } else { 0 },
            partition_ms_max: rng.gen_range(10..=3_000),
            crash_down_ms_max: rng.gen_range(0..=1_000),
            fsync_ms_max: if on(rng) { rng.gen_range(1..=50) } else { 0 },
            hash_ms_max: if on(rng) { rng.gen_range(1..=30) } else { 0 },
            writer_ms_max: if on(rng) { rng.gen_range(1..=30) } else { 0 },
            slow_reader_percent: if on(rng) { rng.gen_range(1..=100) } else { 0 },
            slow_reader_ms_max: rng.gen_range(1..=200),
            torn_writes: u64::from(on(rng)),
            hosts: 0,
            storm_logins: 0,
            ..FaultMix::DEFAULT_LIMITS
        };
        // Drawn last, so that the knobs above stay what they were for every seed.
        mix.hosts = if rng.gen_bool(0.3) { rng.gen_range(1..=2) } else { 0 };
        mix.storm_logins = if rng.gen_bool(0.2) { rng.gen_range(5..=60) } else { 0 };
        // An instant world now and then: no latency and no writer's or hasher's delay, so
        // that requests, grants and replies share their milliseconds and every tie the server
        // breaks is met (tickets granted in one millisecond: `TicketOldestByExpiry`; a login
        // answered in its own millisecond, so a client can aim at the end of the bare window).
        if rng.gen_bool(0.1) {
            (mix.latency_ms_min, mix.latency_ms_max, mix.writer_ms_max) = (0, 0, 0);
            mix.hash_ms_max = 0;
        }
        mix
    }

    /// Whether the server answers in the millisecond it reads: no latency, no writer's or
    /// hasher's delay (the swarm's instant worlds, or a scenario's options).
    pub fn instant(&self) -> bool {
        self.latency_ms_max == 0 && self.writer_ms_max == 0 && self.hash_ms_max == 0
    }

    /// The mix for `mode`, drawing from `rng` for a swarm.
    pub fn for_mode(mode: FaultMode, rng: &mut ChaCha20Rng) -> Self {
        match mode {
            FaultMode::None => FaultMix::none(),
            FaultMode::Default => FaultMix::default_mix(),
            FaultMode::Swarm => FaultMix::swarm(rng),
            FaultMode::Crashes => FaultMix::crashes(),
        }
    }

    /// The mix of `seed` in `mode`: for a swarm, the fault knobs from the mix's stream, then
    /// the server's limits from a stream of their own (so that drawing them shifted no fault
    /// knob of any seed).
    pub fn for_seed(opts: &RunOptions, seed: u64) -> Self {
        let mut mix = FaultMix::for_mode(opts.faults, &mut child(seed, Stream::Mix, 0));
        if opts.faults == FaultMode::Swarm {
            mix.draw_limits(&mut child(seed, Stream::Limits, 0), opts.clients, opts.names);
        }
        mix
    }

    /// Draws the server's limits (BUGGIFY): in half of the seeds every `Config` limit stays the
    /// shipped default; in the other half each is small with some chance, small enough that a
    /// world of `clients` random clients on `names` names and a few simulated seconds reaches
    /// it. The snapshot threshold is small in half of all seeds. Limits that could stop the liveness phase's clients for good (a deadline shorter
    /// than a round trip, a cap below the connections the world keeps open) have floors drawn
    /// from the fault knobs above: a server configured so that nobody can ever get in owes no
    /// one a delivery, and such worlds would test nothing.
    pub fn draw_limits(&mut self, rng: &mut ChaCha20Rng, clients: usize, names: usize) {
        // Every draw is made whatever the outcome, so that one knob never shifts another.
        let buggify = rng.gen_bool(0.5);
        let draw = |rng: &mut ChaCha20Rng, range: std::ops::RangeInclusive<u64>| {
            let on = rng.gen_bool(0.3);
            let value = rng.gen_range(range);
            (buggify && on).then_some(value)
        };
        let small = |rng: &mut ChaCha20Rng, range| draw(rng, range).unwrap_or(0);
        self.limit_queue_len = small(rng, 1..=6);
        // A message costs its text plus 96 bytes: room for one to ten of them. Half the time
        // the bound is a whole number of the commonest send (`#1.23 hi`), so that a send
        // filling it exactly is common: the one the bound must still take.
        let (whole, sends) = (rng.gen_bool(0.5), rng.gen_range(1..=9));
        self.limit_queued_bytes = small(rng, 100..=1_000);
        if whole && self.limit_queued_bytes != 0 {
            self.limit_queued_bytes = sends * COMMON_SEND_COST_BYTES;
        }
        self.limit_push_window = small(rng, 1..=3);
        self.limit_pipeline_len = small(rng, 1..=4);
        // Near the sizes the workload sends: logins and registers are 10 to 20 bytes, ticketed
        // relay handshakes 35 (so no smaller limit before login: no relay could ever open),
        // sends 12 to 30, acknowledgements `7\nID` with ids of up to 6 digits in a world (so
        // no smaller relay limit: a message could never be acknowledged, and a relay that
        // closes on every acknowledgement delivers nothing beyond its first window).
        // The handshake is `NAME\nTICKET` (32 hex digits) for the longest name of the pool:
        // `u15` in a world of 16 names makes it 36 bytes, which a limit of 35 refuses for
        // ever (`--clients 16 --ops 200 --names 16` seed 52: the liveness phase's relay was
        // refused 6,000 times and its message reported lost).
        let longest_name = 1 + names.max(1).saturating_sub(1).to_string().len();
        let handshake_len = (longest_name + 1 + 32) as u64;
        let floor = handshake_len.max(35);
        self.limit_frame_len_before_login = small(rng, floor..=floor.max(48));
        self.limit_frame_len = small(rng, 14..=40);
        self.limit_relay_frame_len = small(rng, 8..=10);
        self.limit_accounts = small(rng, 1..=4);
        // Every random client, the intruder and a client per owed name keep a command
        // connection and a relay open; the login storm's clients come on top: each keeps its
        // command connection, logged in to the name it registered (seeds 1058 and 2624 of the
        // small swarm: 31 storm clients under a cap of 17 locked the liveness clients out).
        let kept = 2 * (clients + names + 1) as u64 + self.storm_logins;
        self.limit_connections = draw(rng, 0..=4).map_or(0, |extra| kept + extra);
        // Clients on shared hosts keep many connections from one address: only the storm
        // (and a client reconnecting before its old connection closed) meets a small cap.
        let per_peer = small(rng, 2..=4);
        self.limit_connections_per_peer = if self.hosts == 0 { per_peer } else { 0 };
        // Deadlines that fire within a world's few seconds, yet leave a client time to log in
        // (a round trip, a password hash and a writer's delay).
        let round_trip_ms = 2 * (self.latency_ms_max + self.writer_ms_max) + self.hash_ms_max;
        self.limit_login_deadline_ms =
            draw(rng, 20..=2_000).map_or(0, |extra| round_trip_ms + extra);
        self.limit_frame_deadline_ms =
            draw(rng, 5..=500).map_or(0, |extra| self.latency_ms_max + extra);
        // A ticket outlives its trip back and the handshake's trip there even at the slowest
        // latency: with one ticket per session, a ticket that may expire on the way would
        // keep a user from ever attaching a relay, and the liveness phase could deliver
        // nothing (swarm seed 1817). Expired tickets still come from hostile clients.
        let trip_ms = 2 * (self.latency_ms_max + self.writer_ms_max) + 2;
        self.limit_ticket_ttl_ms = draw(rng, 0..=200).map_or(0, |extra| trip_ms + extra);
        self.limit_tickets_per_session = small(rng, 1..=2);
        self.limit_bare_relay_window_ms = small(rng, 5..=300);
        self.limit_login_failures = small(rng, 1..=3);
        self.limit_login_failures_per_peer = small(rng, 1..=5);
        self.limit_login_backoff_base_ms = small(rng, 1..=200);
        self.limit_login_failure_window_ms = small(rng, 50..=3_000);
        self.limit_registrations_per_peer = small(rng, 1..=3);
        self.limit_registration_window_ms = small(rng, 100..=5_000);
        self.limit_list_len = small(rng, 1..=3);
        self.limit_list_reply_bytes = small(rng, 2..=12);
        self.limit_list_pattern_len = small(rng, 1..=3);
        self.limit_list_scan = small(rng, 1..=3);
        // Drawn for every seed, not only the buggified half: a snapshot followed by a crash
        // (recovery from a snapshot plus a log) should be common among the seeds that crash.
        let snapshot_small = rng.gen_bool(0.5);
        let snapshot_log_bytes = rng.gen_range(64..=1_024);
        self.limit_snapshot_log_bytes = if snapshot_small { snapshot_log_bytes } else { 0 };
        // Drawn last, so that adding it moved no other knob.
        self.limit_inbound_len = small(rng, 1..=64);
    }

    /// Sets the limits this mix draws in `config` (a 0 keeps `config`'s value).
    pub fn apply_limits(&self, config: &mut Config) {
        fn set<T: TryFrom<u64>>(knob: u64, field: &mut T) {
            if let (true, Ok(value)) = (knob > 0, T::try_from(knob)) {
                *field = value;
            }
        }
        set(self.limit_queue_len, &mut config.queue_len_max);
        set(self.limit_queued_bytes, &mut config.queued_bytes_max);
        set(self.limit_push_window, &mut config.push_window_len);
        set(self.limit_pipeline_len, &mut config.pipeline_len_max);
        set(self.limit_frame_len_before_login, &mut config.frame_len_max_before_login);
        set(self.limit_frame_len, &mut config.frame_len_max);
        set(self.limit_relay_frame_len, &mut config.relay_frame_len_max);
        set(self.limit_accounts, &mut config.accounts_max);
        set(self.limit_connections, &mut config.connections_max);
        set(self.limit_connections_per_peer, &mut config.connections_per_peer_max);
        set(self.limit_login_deadline_ms, &mut config.login_deadline_ms);
        set(self.limit_frame_deadline_ms, &mut config.frame_deadline_ms);
        set(self.limit_ticket_ttl_ms, &mut config.ticket_ttl_ms);
        set(self.limit_tickets_per_session, &mut config.tickets_per_session_max);
        set(self.limit_bare_relay_window_ms, &mut config.bare_relay_window_ms);
        set(self.limit_login_failures, &mut config.login_failures_max);
        set(self.limit_login_failures_per_peer, &mut config.login_failures_per_peer_max);
        set(self.limit_login_backoff_base_ms, &mut config.login_backoff_base_ms);
        set(self.limit_login_failure_window_ms, &mut config.login_failure_window_ms);
        set(self.limit_registrations_per_peer, &mut config.registrations_per_peer_max);
        set(self.limit_registration_window_ms, &mut config.registration_window_ms);
        set(self.limit_list_len, &mut config.list_len_max);
        set(self.limit_list_reply_bytes, &mut config.list_reply_bytes_max);
        set(self.limit_list_pattern_len, &mut config.list_pattern_len_max);
        set(self.limit_list_scan, &mut config.list_scan_max);
        set(self.limit_inbound_len, &mut config.inbound_buffered_len_max);
    }

    /// Log bytes after which the store compacts into a snapshot.
    pub fn snapshot_log_bytes(&self) -> u64 {
        match self.limit_snapshot_log_bytes {
            0 => 4 * 1024,
            bytes => bytes,
        }
    }
}

impl fmt::Display for FaultMix {
    /// `key=value` pairs separated by spaces, in the order of [`FaultMix::knobs`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (key, value)) in self.knobs().into_iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{key}={value}")?;
        }
        Ok(())
    }
}

/// Everything that names a run besides its seed (what the replay command repeats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOptions {
    pub faults: FaultMode,
    /// Random clients.
    pub clients: usize,
    /// Operations per random client.
    pub ops: usize,
    /// Usernames the random clients draw from (small, so names collide and get reused).
    pub names: usize,
    /// What the random clients do.
    pub workload: super::workload::Workload,
    /// Simulated time after the workload ends within which every queued message must arrive
    /// (longer than the login throttle's window, which may lock a recipient out for a while).
    pub liveness_ms: u64,
    /// Keep the text of every trace line (slower); otherwise only the hash.
    pub keep_trace: bool,
    /// A bug to plant in the core, for tests of the checker.
    #[cfg(any(test, feature = "planted"))]
    pub planted: crate::core::planted::Planted,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            faults: FaultMode::Swarm,
            clients: 4,
            ops: 40,
            names: 5,
            workload: super::workload::Workload::Mixed,
            liveness_ms: 120_000,
            keep_trace: false,
            #[cfg(any(test, feature = "planted"))]
            planted: crate::core::planted::Planted::None,
        }
    }
}
