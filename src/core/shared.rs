//! [`Shared`]: a part of the server's state that copies of the server share until one of them
//! changes it (copy on write).
//!
//! The model checker copies a whole server per transition, and most transitions change one or
//! two of its tables (a connection's decoder, a timer); copying every table each time was a
//! fifth of its instructions. A server that is never copied (the TCP adapter, the simulator)
//! pays one uncontended atomic check per change.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

/// A value shared between copies of its owner: reading is free, and the first change made
/// through a copy ([`DerefMut`]) copies the value for that copy alone if another copy still
/// shares it ([`Arc::make_mut`]). So a change that turns out to change nothing (a `get_mut` that
/// misses) still copies a shared value: where that is common, test through [`Deref`] first.
#[derive(Default)]
pub(crate) struct Shared<T>(Arc<T>);

impl<T> Shared<T> {
    pub fn new(value: T) -> Self {
        Shared(Arc::new(value))
    }

    /// The value itself, shared: for a reader that outlives this copy (a snapshot).
    pub fn share(&self) -> Arc<T> {
        Arc::clone(&self.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }

    fn clone_from(&mut self, source: &Self) {
        if !Arc::ptr_eq(&self.0, &source.0) {
            self.0 = Arc::clone(&source.0);
        }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_through_one_copy_leaves_the_other_as_it_was() {
        let mut original = Shared::new(vec![1, 2]);
        let mut copy = original.clone();
        assert!(Arc::ptr_eq(&original.0, &copy.0), "a copy shares until it changes");
        copy.push(3);
        assert_eq!((&*original, &*copy), (&vec![1, 2], &vec![1, 2, 3]));
        original.push(4);
        assert!(Arc::strong_count(&original.0) == 1, "a value no copy shares is changed in place");
        copy.clone_from(&original);
        assert_eq!(*copy, vec![1, 2, 4]);
        assert!(Arc::ptr_eq(&original.0, &copy.0));
    }
}
