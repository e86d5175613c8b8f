//! Connection caps, judged from the connections the world opened to the server: PROTOCOL.md
//! has "connections per address are capped", and the server caps its connections in all
//! (`core::Config::connections_max`, `connections_per_peer_max`). The world tells the server
//! of each connection it opens and of each one whose writer ended, so it knows how many the
//! server held, in all and from the new one's address, when each opened: a connection is
//! refused for a cap exactly when that many were held already. The first frame the server
//! writes on a connection tells its verdict: a cap's notice, or anything else (accepted).

use std::collections::BTreeMap;

use super::super::spec::Notice;
use super::deadlines::HEADER_LEN;
use super::{Checker, ConnNo};

/// A connection the server holds: its address, and how many it held besides when it opened.
#[derive(Debug, Clone, Copy)]
struct Opened {
    peer: u128,
    held: usize,
    held_from_peer: usize,
    judged: bool,
}

/// The connections the server holds (opened, and their writer not ended), by number.
#[derive(Debug, Clone, Default)]
pub(super) struct Caps {
    held: BTreeMap<ConnNo, Opened>,
}

impl Checker {
    /// The world opened `conn` to the server from address `peer`.
    pub(super) fn caps_opened(&mut self, conn: ConnNo, peer: u128) {
        let held = self.caps.held.len();
        let held_from_peer = self.caps.held.values().filter(|o| o.peer == peer).count();
        let opened = Opened { peer, held, held_from_peer, judged: false };
        self.caps.held.insert(conn, opened);
    }

    /// The server heard that `conn`'s writer ended.
    pub(super) fn caps_ended(&mut self, conn: ConnNo) {
        self.caps.held.remove(&conn);
    }

    /// The server crashed: it holds no connection.
    pub(super) fn caps_crashed(&mut self) {
        self.caps.held.clear();
    }

    /// A writer of `conn` took `frames`: the first ever is the verdict on its caps.
    pub fn caps_frames_taken(&mut self, now_ms: u64, conn: ConnNo, frames: &[Vec<u8>]) {
        let (Some(limits), Some(first)) = (self.limits, frames.first()) else { return };
        let Some(opened) = self.caps.held.get_mut(&conn).filter(|o| !o.judged) else { return };
        opened.judged = true;
        let opened = *opened;
        let text = String::from_utf8_lossy(first.get(HEADER_LEN..).unwrap_or_default());
        let notice = text.strip_prefix("-1\n").and_then(Notice::of);
        let over_peer = opened.held_from_peer >= limits.connections_per_peer_max;
        let over_all = opened.held >= limits.connections_max;
        let what = || {
            let (held, from_peer) = (opened.held, opened.held_from_peer);
            format!(
                "connection {conn} opened while the server held {held} ({from_peer} from its \
                 address; caps {} and {}), and its first frame was {text:?}",
                limits.connections_max, limits.connections_per_peer_max
            )
        };
        let (fair, invariant) = match notice {
            Some(Notice::ConnectionsPerAddress) => {
                (over_peer, "a connection cap refuses only at it")
            }
            Some(Notice::ConnectionLimit) => (over_all, "a connection cap refuses only at it"),
            _ => (!over_peer && !over_all, "a connection over a cap is refused"),
        };
        self.expect(fair, now_ms, invariant, what);
    }
}
