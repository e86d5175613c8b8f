//! The set of fingerprints seen: open addressing with linear probing over a power-of-two table.
//!
//! Fingerprints are uniformly distributed hashes already, so their low bits index the table
//! directly; a slot costs 16 bytes, and the table is kept at most three quarters full (linear
//! probing still finds a fingerprint in a couple of probes there), so 21 to 43 bytes a state. The set is only ever asked about membership, never
//! iterated, so it has no order to leak into results.

use super::fingerprint::Fingerprint;

/// Marks an empty slot; the one fingerprint equal to it is stored as [`EMPTY_STANDIN`].
const EMPTY: Fingerprint = 0;
const EMPTY_STANDIN: Fingerprint = 1;

/// A set of fingerprints.
#[derive(Debug, Clone)]
pub struct Visited {
    slots: Vec<Fingerprint>,
    len: usize,
}

impl Default for Visited {
    fn default() -> Self {
        Visited { slots: vec![EMPTY; 1 << 10], len: 0 }
    }
}

impl Visited {
    /// Number of fingerprints stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no fingerprint is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `fingerprint` is in the set.
    pub fn contains(&self, fingerprint: Fingerprint) -> bool {
        let fingerprint = stored(fingerprint);
        let mask = self.slots.len() - 1;
        let mut at = fingerprint as usize & mask;
        loop {
            match self.slots[at] {
                EMPTY => return false,
                slot if slot == fingerprint => return true,
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Adds `fingerprint`; false if it was there already.
    pub fn insert(&mut self, fingerprint: Fingerprint) -> bool {
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.grow();
        }
        let fingerprint = stored(fingerprint);
        let mask = self.slots.len() - 1;
        let mut at = fingerprint as usize & mask;
        loop {
            match self.slots[at] {
                EMPTY => {
                    self.slots[at] = fingerprint;
                    self.len += 1;
                    return true;
                }
                slot if slot == fingerprint => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.len = 0;
        for fingerprint in old.into_iter().filter(|&f| f != EMPTY) {
            self.insert(fingerprint);
        }
    }
}

fn stored(fingerprint: Fingerprint) -> Fingerprint {
    if fingerprint == EMPTY {
        EMPTY_STANDIN
    } else {
        fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fingerprint::hash128;

    #[test]
    fn inserts_once_and_grows() {
        let mut visited = Visited::default();
        for i in 0u32..5_000 {
            assert!(visited.insert(hash128(&i.to_le_bytes())));
        }
        for i in 0u32..5_000 {
            assert!(!visited.insert(hash128(&i.to_le_bytes())));
            assert!(visited.contains(hash128(&i.to_le_bytes())));
        }
        assert!(!visited.contains(hash128(b"never inserted")));
        assert_eq!(visited.len(), 5_000);
        // Colliding low bits and the empty marker itself are stored correctly.
        assert!(visited.insert(1 << 64));
        assert!(visited.insert(2 << 64));
        assert!(visited.insert(0));
        assert!(!visited.insert(0));
        assert!(visited.contains(2 << 64));
    }
}
