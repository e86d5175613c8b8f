//! Seeds: one root per run, an independent ChaCha20 stream per subsystem.
//!
//! Every subsystem (network, disk, fault injector, each client, each server incarnation) draws
//! from its own stream of the root seed, so adding a client or a draw in one place never shifts
//! the draws of another: the network of seed 7 behaves the same with 3 clients or 4.

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The streams of a run. Servers and clients have one each, numbered by `index` in [`child`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Mix,
    Net,
    Disk,
    Faults,
    Timing,
    /// The server's limits of a swarm seed.
    Limits,
    /// One per server incarnation (each restart).
    Server,
    /// One per client.
    Client,
}

impl Stream {
    /// The first ChaCha20 stream number of this subsystem; indexed ones get 2^20 numbers.
    fn base(self) -> u64 {
        match self {
            Stream::Mix => 1,
            Stream::Net => 2,
            Stream::Disk => 3,
            Stream::Faults => 4,
            Stream::Timing => 5,
            Stream::Limits => 6,
            Stream::Server => 1 << 20,
            Stream::Client => 1 << 40,
        }
    }
}

/// The generator for `stream` (plus `index` for per-client and per-incarnation streams).
pub fn child(root: u64, stream: Stream, index: u64) -> ChaCha20Rng {
    let mut rng = ChaCha20Rng::seed_from_u64(root);
    rng.set_stream(stream.base() + index);
    rng
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    #[test]
    fn streams_are_independent_and_repeatable() {
        let draw = |s, i| child(9, s, i).next_u64();
        assert_eq!(draw(Stream::Net, 0), draw(Stream::Net, 0));
        assert_ne!(draw(Stream::Net, 0), draw(Stream::Disk, 0));
        assert_ne!(draw(Stream::Client, 0), draw(Stream::Client, 1));
        assert_ne!(child(9, Stream::Net, 0).next_u64(), child(10, Stream::Net, 0).next_u64());
    }
}
