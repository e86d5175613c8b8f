//! Seeds: one root per run, an independent ChaCha20 stream per subsystem.
//!
//! Every subsystem (network, disk, fault injector, each client, each server incarnation) draws
//! from its own stream of the root seed, so adding a client or a draw in one place never shifts
//! the draws of another: the network of seed 7 behaves the same with 3 clients or 4.
//!
//! The streams are finer still where a shrink needs it: each connection's latencies and its
//! server threads' delays draw from a stream of their own, named by the client, the channel and
//! how many connections that client opened on it before (never by a global connection
//! number), and a client's lies (the ids it acknowledges falsely) from one apart from its
//! workload. So removing one client's operation from a scenario leaves every other
//! connection's timing as it was, and a race that needs two connections' timings survives the
//! removal of unrelated steps; and a scripted client, which draws no workload, lies as the
//! random client it was written down from.

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
    /// Whether a crash is a power loss, the process killed or a graceful stop (apart from the
    /// other faults' draws, so that the choice shifts none of them).
    Kills,
    /// One per server incarnation (each restart).
    Server,
    /// One per client.
    Client,
    /// One per client: the ids its hostile acknowledgements make up.
    Lies,
    /// One per client: whether a wrong-password login starts a patient guesser's run (apart
    /// from the workload, so that the choice shifts no other draw of any seed).
    Patience,
    /// One per client: whether an honest ticketed relay hoards tickets first (apart from the
    /// workload, like [`Stream::Patience`]).
    Hoard,
    /// One per client: whether a `help` request is dribbled a byte at a time.
    Dribble,
    /// One per client: whether an `unknown-code` frame is an `extra-field` one instead.
    Fields,
    /// One per connection ([`link_index`]): its latencies and fragments.
    Link,
    /// One per connection ([`link_index`]): its server threads' delays (the writer, the
    /// password jobs it submits).
    Threads,
    /// How long the store's helper takes to encode each snapshot (apart from the other
    /// timings, so that the draws shift none of them).
    Snapshots,
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
            Stream::Kills => 7,
            Stream::Snapshots => 8,
            Stream::Server => 1 << 20,
            Stream::Client => 1 << 40,
            Stream::Lies => 3 << 40,
            Stream::Patience => 5 << 40,
            Stream::Hoard => 7 << 40,
            Stream::Dribble => 9 << 40,
            Stream::Fields => 11 << 40,
            Stream::Link => 1 << 48,
            Stream::Threads => 1 << 56,
        }
    }
}

/// The index of a connection's streams: the `nth` connection `client` opened on channel
/// `chan` (0 command, 1 relay).
pub fn link_index(client: usize, chan: u64, nth: u64) -> u64 {
    ((client as u64) << 24) | (nth << 1) | chan
}

/// The stream `to` with index `index`, of the root that `rng` (a stream `from` of some index)
/// was made from: for a subsystem that was handed one generator and needs more.
pub fn derived(rng: &ChaCha20Rng, from: Stream, to: Stream, index: u64) -> ChaCha20Rng {
    let mut out = rng.clone();
    // Wrapping: a generator made otherwise (a test's) still derives distinct streams.
    let offset = rng.get_stream().wrapping_sub(from.base());
    out.set_stream(to.base().wrapping_add(offset).wrapping_add(index));
    out.set_word_pos(0);
    out
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

    #[test]
    fn a_derived_stream_is_the_roots_own_whatever_was_drawn_before() {
        let mut client = child(9, Stream::Client, 3);
        client.next_u64();
        let lies = derived(&client, Stream::Client, Stream::Lies, 0);
        assert_eq!(lies, child(9, Stream::Lies, 3));
        let link = derived(&child(9, Stream::Net, 0), Stream::Net, Stream::Link, 5);
        assert_eq!(link, child(9, Stream::Link, 5));
        assert_ne!(link_index(1, 0, 0), link_index(0, 1, 0));
        assert_ne!(link_index(0, 0, 1), link_index(0, 1, 0));
    }
}
