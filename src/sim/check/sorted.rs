//! A map kept as a vector sorted by key: the checker's maps whose keys arrive in increasing
//! order (message ids, connection numbers), where appending beats a tree's node walk and
//! allocation on every insert (seen in the simulator's profile). Iterates in key order, like
//! the `BTreeMap` it replaces, so nothing that depends on the order changes.

/// A map from `K` to `V`, sorted by key.
#[derive(Debug, Clone)]
pub(super) struct SortedMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SortedMap<K, V> {
    fn default() -> Self {
        SortedMap { entries: Vec::new() }
    }
}

impl<K: Ord + Copy, V> SortedMap<K, V> {
    /// Where `key` is, or where it would go.
    fn find(&self, key: &K) -> Result<usize, usize> {
        // Keys mostly arrive in increasing order and are looked up soon after: try the end.
        match self.entries.last() {
            None => Err(0),
            Some((last, _)) if last < key => Err(self.entries.len()),
            Some((last, _)) if last == key => Ok(self.entries.len() - 1),
            Some(_) => self.entries.binary_search_by(|(k, _)| k.cmp(key)),
        }
    }

    pub fn get(&self, key: &K) -> Option<&V> {
        self.find(key).ok().map(|i| &self.entries[i].1)
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.find(key).ok().map(|i| &mut self.entries[i].1)
    }

    pub fn contains_key(&self, key: &K) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`, replacing any value it had.
    pub fn insert(&mut self, key: K, value: V) {
        match self.find(&key) {
            Ok(i) => self.entries[i].1 = value,
            Err(i) => self.entries.insert(i, (key, value)),
        }
    }

    /// The value of `key`, inserted as the default first if missing.
    pub fn get_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let i = match self.find(&key) {
            Ok(i) => i,
            Err(i) => {
                self.entries.insert(i, (key, V::default()));
                i
            }
        };
        &mut self.entries[i].1
    }

    /// In key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// In key order.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.entries.iter_mut().map(|(k, v)| (&*k, v))
    }

    /// In key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::SortedMap;

    #[test]
    fn keys_in_any_order_come_back_sorted_and_replaced() {
        let mut map = SortedMap::default();
        for (k, v) in [(5, 'a'), (9, 'b'), (1, 'c'), (9, 'd'), (7, 'e')] {
            map.insert(k, v);
        }
        *map.get_or_default(3) = 'f';
        *map.get_or_default(5) = 'g';
        let entries: Vec<_> = map.iter().map(|(&k, &v)| (k, v)).collect();
        assert_eq!(entries, [(1, 'c'), (3, 'f'), (5, 'g'), (7, 'e'), (9, 'd')]);
        assert_eq!(map.get(&7), Some(&'e'));
        assert!(!map.contains_key(&4) && map.get(&10).is_none());
    }
}
