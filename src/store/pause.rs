//! [`SnapshotPause`]: a seam that holds a snapshot between two of its pieces, so that a test
//! over TCP can prove, without timing anything, that the server keeps answering everyone while
//! a snapshot is half written (hardening defect 5).
//!
//! The log writer asks [`SnapshotPause::allows`] before each piece; while the pause holds it
//! writes records and skips the piece, exactly as it does while the snapshot's bytes are still
//! being encoded. A server without a pause (every real one) never asks.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Shared between a test and the log writer; clones are the same pause.
#[derive(Clone, Debug, Default)]
pub struct SnapshotPause {
    shared: Arc<(Mutex<PauseState>, Condvar)>,
}

#[derive(Debug, Default)]
struct PauseState {
    /// Pieces the writer may write before it is held; `None` once released.
    pieces_allowed: Option<usize>,
    /// Set when the writer reached the hold point with a piece ready to write.
    held: bool,
}

impl SnapshotPause {
    /// A pause that lets `pieces` pieces of a snapshot through and holds the next one until
    /// [`SnapshotPause::release`].
    pub fn after_pieces(pieces: usize) -> Self {
        let pause = SnapshotPause::default();
        pause.lock().pieces_allowed = Some(pieces);
        pause
    }

    /// Asked by the writer with the number of pieces already written: whether it may write
    /// the next one now. A "no" marks the pause as held and wakes [`SnapshotPause::wait_held`].
    pub fn allows(&self, pieces_written: usize) -> bool {
        let mut state = self.lock();
        match state.pieces_allowed {
            Some(allowed) if pieces_written >= allowed => {
                if !state.held {
                    state.held = true;
                    self.shared.1.notify_all();
                }
                false
            }
            _ => true,
        }
    }

    /// Waits until the writer is held mid-snapshot; false if `timeout_ms` passed first (a
    /// deadline against a hang, not a measurement).
    pub fn wait_held(&self, timeout_ms: u64) -> bool {
        let state = self.lock();
        let (state, _) = self
            .shared
            .1
            .wait_timeout_while(state, Duration::from_millis(timeout_ms), |s| !s.held)
            .unwrap_or_else(PoisonError::into_inner);
        state.held
    }

    /// Lets the writer finish the snapshot.
    pub fn release(&self) {
        self.lock().pieces_allowed = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PauseState> {
        self.shared.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_after_the_allowed_pieces_until_released() {
        let pause = SnapshotPause::after_pieces(1);
        assert!(pause.allows(0));
        assert!(!pause.wait_held(0));
        assert!(!pause.allows(1));
        assert!(pause.wait_held(0));
        pause.release();
        assert!(pause.allows(1));
    }
}
