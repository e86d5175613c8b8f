//! The world's event queue: events in (time, insertion) order, with time jumping over idle
//! gaps.
//!
//! Almost every event a world schedules is due within a few milliseconds (network latency,
//! writer and fsync delays), and a handful are queued at once, so a binary heap spent most of
//! its time moving entries. Events due within the next 256 ms go to one bucket per
//! millisecond instead (first in, first out, so insertion order breaks ties), found through an
//! occupancy bitmap; later events wait in a heap and move into their bucket as time comes within
//! reach. A far event moves the moment time advances past its reach, before anything else can be
//! queued for its millisecond, so buckets stay in insertion order.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

/// Milliseconds ahead covered by buckets (a power of two, and a multiple of 64 for the bitmap).
const RING_LEN: u64 = 256;
const WORDS: usize = (RING_LEN / 64) as usize;

/// A queue of `T` by due time.
#[derive(Debug)]
pub struct Queue<T> {
    /// The time of the last pop: nothing queued is due earlier.
    now_ms: u64,
    /// Bucket `t % RING_LEN` holds the events due at `t`, for `now_ms <= t < now_ms + RING_LEN`.
    ring: Vec<VecDeque<T>>,
    /// Which buckets are non-empty.
    occupied: [u64; WORDS],
    ring_len: usize,
    /// Events due at `now_ms + RING_LEN` or later.
    far: BinaryHeap<Far<T>>,
    seq: u64,
}

#[derive(Debug)]
struct Far<T> {
    at_ms: u64,
    seq: u64,
    item: T,
}

impl<T> PartialEq for Far<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl<T> Eq for Far<T> {}
impl<T> PartialOrd for Far<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Far<T> {
    /// Reversed, so the max-heap pops the earliest (time, seq).
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Queue {
            now_ms: 0,
            ring: (0..RING_LEN).map(|_| VecDeque::new()).collect(),
            occupied: [0; WORDS],
            ring_len: 0,
            far: BinaryHeap::new(),
            seq: 0,
        }
    }
}

impl<T> Queue<T> {
    /// Queues `item` at `at_ms` (at the last popped time if earlier), after everything already
    /// queued for that time.
    pub fn push(&mut self, at_ms: u64, item: T) {
        let at_ms = at_ms.max(self.now_ms);
        if at_ms < self.now_ms + RING_LEN {
            self.push_near(at_ms, item);
        } else {
            self.seq += 1;
            self.far.push(Far { at_ms, seq: self.seq, item });
        }
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<u64> {
        match self.next_offset() {
            Some(offset) => Some(self.now_ms + offset),
            None => self.far.peek().map(|f| f.at_ms),
        }
    }

    /// Takes the next event and its time.
    ///
    /// Inlined into the world's loop so that the event goes straight to where it is matched:
    /// returned through memory, it was copied piecewise and the copy stalled on every pop
    /// (seen in the profile).
    #[inline(always)]
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.ring_len == 0 {
            self.advance(self.far.peek()?.at_ms);
        }
        let offset = self.next_offset().expect("the ring holds an event");
        self.advance(self.now_ms + offset);
        let slot = (self.now_ms % RING_LEN) as usize;
        let item = self.ring[slot].pop_front().expect("an occupied bucket");
        if self.ring[slot].is_empty() {
            self.occupied[slot / 64] &= !(1 << (slot % 64));
        }
        self.ring_len -= 1;
        Some((self.now_ms, item))
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.ring_len + self.far.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push_near(&mut self, at_ms: u64, item: T) {
        let slot = (at_ms % RING_LEN) as usize;
        self.ring[slot].push_back(item);
        self.occupied[slot / 64] |= 1 << (slot % 64);
        self.ring_len += 1;
    }

    /// Moves time to `now_ms` and brings the far events now within reach into their buckets.
    fn advance(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        while self.far.peek().is_some_and(|f| f.at_ms < now_ms + RING_LEN) {
            let far = self.far.pop().expect("peeked");
            self.push_near(far.at_ms, far.item);
        }
    }

    /// Milliseconds from now to the first non-empty bucket.
    fn next_offset(&self) -> Option<u64> {
        if self.ring_len == 0 {
            return None;
        }
        let start = self.now_ms % RING_LEN;
        (0..WORDS as u64).find_map(|step| {
            // Bits of the word at `start + 64 * step`, from that position on, wrapping around.
            let bit = (start + 64 * step) % RING_LEN;
            let (word, shift) = ((bit / 64) as usize, bit % 64);
            let low = self.occupied[word] >> shift;
            let high = match shift {
                0 => 0,
                _ => self.occupied[(word + 1) % WORDS] << (64 - shift),
            };
            let bits = low | high;
            (bits != 0).then(|| 64 * step + u64::from(bits.trailing_zeros()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The reference: a sorted list by (time, insertion).
    fn reference_order(pushes: &[(u64, u32)]) -> Vec<(u64, u32)> {
        let mut sorted = pushes.to_vec();
        sorted.sort_by_key(|&(at, id)| (at, id));
        sorted
    }

    #[test]
    fn pops_in_time_then_insertion_order_across_the_ring_and_the_heap() {
        let mut queue = Queue::default();
        let pushes = [(5, 0), (0, 1), (300, 2), (5, 3), (1000, 4), (255, 5), (256, 6), (300, 7)];
        for (at, id) in pushes {
            queue.push(at, id);
        }
        let mut popped = Vec::new();
        while let Some(entry) = queue.pop() {
            popped.push(entry);
        }
        assert_eq!(popped, reference_order(&pushes));
        assert!(queue.is_empty());
    }

    #[test]
    fn matches_a_sorted_reference_under_random_interleavings() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let mut queue = Queue::default();
            let mut reference: Vec<(u64, u64, u32)> = Vec::new();
            let (mut now, mut seq, mut next_id) = (0u64, 0u64, 0u32);
            for _ in 0..300 {
                if rng.gen_bool(0.55) {
                    let delay = match rng.gen_range(0..10) {
                        0 => rng.gen_range(0..5000),
                        1 => 0,
                        _ => rng.gen_range(0..8),
                    };
                    queue.push(now + delay, next_id);
                    seq += 1;
                    reference.push((now + delay, seq, next_id));
                    next_id += 1;
                } else {
                    assert_eq!(queue.peek_time(), reference.iter().map(|r| r.0).min());
                    let expected = reference.iter().min_by_key(|r| (r.0, r.1)).copied();
                    let got = queue.pop();
                    assert_eq!(got, expected.map(|(at, _, id)| (at, id)));
                    if let Some((at, _, id)) = expected {
                        reference.retain(|r| r.2 != id);
                        now = at;
                    }
                }
                assert_eq!(queue.len(), reference.len());
            }
        }
    }

    #[test]
    fn an_event_in_the_past_is_due_now() {
        let mut queue = Queue::default();
        queue.push(50, 'a');
        assert_eq!(queue.pop(), Some((50, 'a')));
        queue.push(10, 'b');
        assert_eq!(queue.peek_time(), Some(50));
        assert_eq!(queue.pop(), Some((50, 'b')));
        assert_eq!(queue.pop(), None);
    }
}
