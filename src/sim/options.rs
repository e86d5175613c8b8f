//! What a run is made of: the options a user gives and the fault mix each seed derives.
//!
//! As in TigerBeetle's VOPR, `--faults swarm` draws a different mix for every seed (which faults
//! are on, and how often), so a sweep explores many kinds of world; every run prints the mix it
//! used, and the seed alone reproduces it.

use std::fmt;

use rand::Rng;
use rand_chacha::ChaCha20Rng;

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
        };
        // Drawn last, so that the knobs above stay what they were for every seed.
        mix.hosts = if rng.gen_bool(0.3) { rng.gen_range(1..=2) } else { 0 };
        mix.storm_logins = if rng.gen_bool(0.2) { rng.gen_range(5..=60) } else { 0 };
        mix
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
