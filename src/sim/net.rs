//! The simulated network: one ordered byte stream per direction of each connection, with
//! latency, fragmentation, partitions and resets. Sans-I/O and seeded by its own streams: one
//! per connection, named by its client, channel and ordinal (`rng::link_index`), so that one
//! client's writes never shift the latencies another client's connections draw.
//!
//! The world hands it writes and asks it for what is due; it answers with the times at which
//! bytes arrive, and the world schedules delivery events for them. A client's two connections
//! are separate streams, each in order, so a push can overtake the reply that caused it.

use std::collections::{BTreeMap, VecDeque};

use rand::Rng;
use rand_chacha::ChaCha20Rng;

use super::options::FaultMix;
use super::rng::{derived, link_index, Stream};
use super::scenario::Dir;
use crate::core::{Channel, ConnId};

/// A direction of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Way {
    /// Client to server.
    Up = 0,
    /// Server to client.
    Down = 1,
}

/// What a delivery brings: bytes, and whether the sender closed after them.
#[derive(Debug, Default)]
pub struct Arrival {
    pub bytes: Vec<u8>,
    pub eof: bool,
}

/// The answer to "what is due on this stream now".
#[derive(Debug)]
pub enum Due {
    /// Nothing (the connection is gone, or nothing is due yet).
    Nothing,
    /// A partition holds the bytes until this time.
    Held {
        until_ms: u64,
    },
    Arrived(Arrival),
}

#[derive(Debug, Default)]
struct Pipe {
    queue: VecDeque<(u64, Piece)>,
    last_arrival_ms: u64,
    /// The receiver is gone: writes are dropped.
    dead: bool,
}

#[derive(Debug)]
enum Piece {
    Bytes(Vec<u8>),
    Eof,
}

#[derive(Debug)]
struct Link {
    client: usize,
    chan: Channel,
    pipes: [Pipe; 2],
    /// This connection's own draws.
    rng: ChaCha20Rng,
}

/// The live links by connection. The world numbers connections densely from 1, so a link is
/// found by indexing, not by searching a tree (this is looked up for every write and
/// delivery); iteration is in connection order, as a tree's would be.
#[derive(Debug, Default)]
struct Links {
    slots: Vec<Option<Box<Link>>>,
}

impl Links {
    fn insert(&mut self, conn: ConnId, link: Link) {
        let index = slot_index(conn);
        if self.slots.len() <= index {
            self.slots.resize_with(index + 1, || None);
        }
        let slot = &mut self.slots[index];
        assert!(slot.is_none(), "connection {} opened twice", conn.0);
        *slot = Some(Box::new(link));
    }

    fn get(&self, conn: ConnId) -> Option<&Link> {
        self.slots.get(slot_index(conn))?.as_deref()
    }

    fn get_mut(&mut self, conn: ConnId) -> Option<&mut Link> {
        self.slots.get_mut(slot_index(conn))?.as_deref_mut()
    }

    fn remove(&mut self, conn: ConnId) -> Option<Box<Link>> {
        self.slots.get_mut(slot_index(conn))?.take()
    }

    fn iter(&self) -> impl Iterator<Item = (ConnId, &Link)> {
        let live = self.slots.iter().enumerate();
        live.filter_map(|(i, slot)| Some((ConnId(i as u64), slot.as_deref()?)))
    }
}

fn slot_index(conn: ConnId) -> usize {
    usize::try_from(conn.0).expect("a connection number fits in memory")
}

#[derive(Debug, Clone, Copy)]
struct Partition {
    client: usize,
    dir: Dir,
    chan: Option<Channel>,
    until_ms: u64,
}

/// The network.
#[derive(Debug)]
pub struct Net {
    /// The network's stream (`Stream::Net`), from which each connection's is derived.
    rng: ChaCha20Rng,
    mix: FaultMix,
    links: Links,
    partitions: Vec<Partition>,
    /// Connections opened so far, by client and channel (the ordinal of the next one).
    opened: BTreeMap<(usize, Channel), u64>,
}

impl Net {
    /// A network drawing from `rng`, the run's `Stream::Net`.
    pub fn new(rng: ChaCha20Rng, mix: FaultMix) -> Self {
        let opened = BTreeMap::new();
        Net { rng, mix, links: Links::default(), partitions: Vec::new(), opened }
    }

    /// A new connection `conn` of `client` on `chan`. Returns the generator of its server
    /// threads' delays (`Stream::Threads`), like its latencies a function of the client, the
    /// channel and how many connections the client opened on it before.
    pub fn open(&mut self, conn: ConnId, client: usize, chan: Channel) -> ChaCha20Rng {
        let nth = self.opened.entry((client, chan)).or_insert(0);
        let index = link_index(client, chan as u64, *nth);
        *nth += 1;
        let rng = derived(&self.rng, Stream::Net, Stream::Link, index);
        let link = Link { client, chan, pipes: [Pipe::default(), Pipe::default()], rng };
        self.links.insert(conn, link);
        derived(&self.rng, Stream::Net, Stream::Threads, index)
    }

    /// The client and channel of a live connection.
    pub fn owner(&self, conn: ConnId) -> Option<(usize, Channel)> {
        self.links.get(conn).map(|l| (l.client, l.chan))
    }

    /// Writes `bytes` on `conn` in direction `way` (moved, not copied, when not fragmented);
    /// pushes the arrival time of each piece (in order) onto `arrivals`. Returns false if the connection is gone (the write fails); a
    /// write to a peer that closed succeeds and vanishes, as it would into a socket buffer.
    pub fn send(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        way: Way,
        bytes: Vec<u8>,
        arrivals: &mut Vec<u64>,
    ) -> bool {
        let Some(link) = self.links.get_mut(conn) else { return false };
        let pipe = &mut link.pipes[way as usize];
        if pipe.dead || bytes.is_empty() {
            return true;
        }
        let mix = &self.mix;
        let rng = &mut link.rng;
        let fragmented = mix.fragment_percent > 0 && rng.gen_range(0..100) < mix.fragment_percent;
        let pieces =
            if fragmented { fragment(rng, &bytes, mix.bytewise_percent) } else { Vec::new() };
        for piece in pieces.into_iter().chain((!fragmented).then_some(bytes)) {
            let at = arrival(rng, mix, now_ms, pipe);
            pipe.queue.push_back((at, Piece::Bytes(piece)));
            arrivals.push(at);
        }
        true
    }

    /// The sender of `way` closes after what it wrote; returns when the close arrives.
    pub fn send_eof(&mut self, now_ms: u64, conn: ConnId, way: Way) -> Option<u64> {
        let link = self.links.get_mut(conn)?;
        let pipe = &mut link.pipes[way as usize];
        if pipe.dead {
            return None;
        }
        let at = arrival(&mut link.rng, &self.mix, now_ms, pipe);
        pipe.queue.push_back((at, Piece::Eof));
        // The closing side reads no more: what the other side writes from now on is dropped.
        link.pipes[1 - way as usize].dead = true;
        Some(at)
    }

    /// Everything due on `conn` in direction `way` at `now_ms`, unless a partition holds it.
    pub fn take_due(&mut self, now_ms: u64, conn: ConnId, way: Way) -> Due {
        let Some(link) = self.links.get(conn) else { return Due::Nothing };
        match link.pipes[way as usize].queue.front() {
            Some(&(at, _)) if at <= now_ms => {}
            _ => return Due::Nothing,
        }
        if let Some(until_ms) = self.held_until(now_ms, link.client, link.chan, way) {
            return Due::Held { until_ms };
        }
        let link = self.links.get_mut(conn).expect("looked up above");
        let pipe = &mut link.pipes[way as usize];
        let mut arrival = Arrival::default();
        while let Some(&(at, _)) = pipe.queue.front() {
            if at > now_ms || arrival.eof {
                break;
            }
            match pipe.queue.pop_front().expect("front exists").1 {
                Piece::Bytes(bytes) if arrival.bytes.is_empty() => arrival.bytes = bytes,
                Piece::Bytes(bytes) => arrival.bytes.extend_from_slice(&bytes),
                Piece::Eof => arrival.eof = true,
            }
        }
        if arrival.eof {
            // The close reached the other side: the connection is over.
            self.links.remove(conn);
        }
        Due::Arrived(arrival)
    }

    /// Forgets `conn` at once (a reset, or the end of a crashed server's connection).
    pub fn reset(&mut self, conn: ConnId) -> bool {
        self.links.remove(conn).is_some()
    }

    /// Whether no bytes or end of stream are on their way on any connection.
    pub fn idle(&self) -> bool {
        self.links.iter().all(|(_, l)| l.pipes.iter().all(|p| p.queue.is_empty()))
    }

    /// Every live connection, in order.
    pub fn conns(&self) -> Vec<ConnId> {
        self.links.iter().map(|(c, _)| c).collect()
    }

    /// The live connection of `client` on `chan`, if any.
    pub fn conn_of(&self, client: usize, chan: Channel) -> Option<ConnId> {
        self.links.iter().find(|(_, l)| l.client == client && l.chan == chan).map(|(c, _)| c)
    }

    /// Stops bytes between `client` and the server in `dir` until `until_ms`.
    pub fn partition(&mut self, client: usize, dir: Dir, chan: Option<Channel>, until_ms: u64) {
        self.partitions.push(Partition { client, dir, chan, until_ms });
    }

    /// Ends every partition.
    pub fn heal(&mut self) {
        self.partitions.clear();
    }

    /// Makes every later draw fault-free (latency only), for the liveness phase.
    pub fn calm(&mut self) {
        self.heal();
        self.mix.fragment_percent = 0;
    }

    fn held_until(&mut self, now_ms: u64, client: usize, chan: Channel, way: Way) -> Option<u64> {
        self.partitions.retain(|p| p.until_ms > now_ms);
        self.partitions
            .iter()
            .filter(|p| p.client == client && p.chan.is_none_or(|c| c == chan))
            .filter(|p| {
                matches!((p.dir, way), (Dir::Both, _) | (Dir::Up, Way::Up) | (Dir::Down, Way::Down))
            })
            .map(|p| p.until_ms)
            .max()
    }
}

/// When a piece written now arrives: after a random latency, never before the previous piece.
fn arrival(rng: &mut ChaCha20Rng, mix: &FaultMix, now_ms: u64, pipe: &mut Pipe) -> u64 {
    let latency_ms = rng.gen_range(mix.latency_ms_min..=mix.latency_ms_max.max(mix.latency_ms_min));
    let at = (now_ms + latency_ms).max(pipe.last_arrival_ms);
    pipe.last_arrival_ms = at;
    at
}

/// Splits `bytes` into random pieces, sometimes one byte each.
fn fragment(rng: &mut ChaCha20Rng, bytes: &[u8], bytewise_percent: u64) -> Vec<Vec<u8>> {
    if rng.gen_range(0..100) < bytewise_percent {
        return bytes.iter().map(|&b| vec![b]).collect();
    }
    let mut pieces = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = rng.gen_range(1..=rest.len());
        pieces.push(rest[..len].to_vec());
        rest = &rest[len..];
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn net(mix: FaultMix) -> Net {
        Net::new(ChaCha20Rng::seed_from_u64(1), mix)
    }

    fn drain(net: &mut Net, conn: ConnId, way: Way, times: &[u64]) -> Vec<u8> {
        let mut got = Vec::new();
        for &t in times {
            if let Due::Arrived(a) = net.take_due(t, conn, way) {
                got.extend(a.bytes);
            }
        }
        got
    }

    #[test]
    fn fragmented_bytes_arrive_whole_and_in_order() {
        let mut mix = FaultMix::none();
        mix.fragment_percent = 100;
        mix.bytewise_percent = 50;
        mix.latency_ms_max = 30;
        let mut net = net(mix);
        net.open(ConnId(1), 0, Channel::Command);
        let mut times = Vec::new();
        for chunk in [&b"hello "[..], b"world", b"!"] {
            net.send(0, ConnId(1), Way::Up, chunk.to_vec(), &mut times);
        }
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "arrivals never go backwards");
        assert!(times.len() > 3, "the writes were fragmented");
        assert_eq!(drain(&mut net, ConnId(1), Way::Up, &times), b"hello world!");
    }

    #[test]
    fn a_partition_holds_bytes_until_it_heals_and_eof_ends_the_link() {
        let mut net = net(FaultMix::none());
        net.open(ConnId(1), 3, Channel::Relay);
        net.partition(3, Dir::Down, Some(Channel::Relay), 100);
        let mut times = Vec::new();
        net.send(0, ConnId(1), Way::Down, b"abc".to_vec(), &mut times);
        net.send(0, ConnId(1), Way::Up, b"up".to_vec(), &mut times);
        assert!(matches!(net.take_due(10, ConnId(1), Way::Down), Due::Held { until_ms: 100 }));
        assert!(
            matches!(net.take_due(10, ConnId(1), Way::Up), Due::Arrived(a) if a.bytes == b"up")
        );
        let eof_at = net.send_eof(20, ConnId(1), Way::Down).unwrap();
        let Due::Arrived(a) = net.take_due(eof_at.max(100), ConnId(1), Way::Down) else { panic!() };
        assert_eq!((a.bytes.as_slice(), a.eof), (&b"abc"[..], true));
        assert_eq!(net.owner(ConnId(1)), None);
    }
}
