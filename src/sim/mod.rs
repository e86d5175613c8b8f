//! The deterministic simulator: the real [`crate::core::Server`] in a seeded world of simulated
//! clients, network, disk and time, with its invariants checked as it runs.
//!
//! A run is named by a seed and a few options ([`RunOptions`]); everything else (the fault mix,
//! every latency, fragment, fault, think time and hashing delay) derives from the seed through
//! independent ChaCha20 streams ([`rng`]), so a run replays exactly and its trace hash
//! ([`trace`]) proves it. A run can also be written down as a [`scenario`] file.
//!
//! - [`world`]: the server glue (the same duties as the TCP adapter) and the event loop.
//! - [`queue`]: the event queue in simulated time.
//! - [`net`]: simulated byte streams: latency, fragmentation, partitions, resets.
//! - [`disk`]: the store seam: the server's log writer over a disk that loses unsynced writes
//!   and tears tails on a crash.
//! - [`client`] and [`workload`]: scripted and random clients as state machines.
//! - [`check`]: the invariants and the oracle they are checked against, then liveness.
//! - [`spec`]: what the checker knows of PROTOCOL.md (texts, names, patterns), written from it
//!   alone.
//! - [`coverage`]: the reachability report: how often each refusal, record, fault, limit and
//!   hostile action happened.
//! - [`options`]: run options and the per-seed fault mix (swarm testing).
//! - [`run`]: single runs, sweeps over seeds (threads, shards), determinism checks.
//! - [`diagram`]: the space-time diagram of a run, as one self-contained HTML file.
//! - [`cli`]: `chatroom sim`.

pub mod check;
pub mod cli;
pub mod client;
pub mod conformance;
pub mod coverage;
pub mod diagram;
pub mod disk;
pub mod flags;
pub mod net;
pub mod options;
pub mod queue;
pub mod rng;
pub mod run;
pub mod scenario;
mod server;
pub mod shrink;
pub mod spec;
pub mod trace;
pub mod workload;
pub mod world;

pub use options::{FaultMix, FaultMode, RunOptions};
pub use run::{record_seed, run_scenario, run_seed, sweep, sweep_watched, SweepReport, Watchdog};
pub use scenario::Scenario;
pub use world::Outcome;

#[cfg(test)]
mod tests;
