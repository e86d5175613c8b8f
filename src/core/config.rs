//! Every limit and knob of the core, with the defaults PROTOCOL.md asks for.

/// The core's configuration. Every limit is explicit; hitting one gives a clear failure reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest frame body accepted before a connection logs in.
    pub frame_len_max_before_login: usize,
    /// Largest frame body accepted from a logged-in connection.
    pub frame_len_max: usize,
    /// Largest frame body accepted on a relay after its handshake (acknowledgements are tiny).
    pub relay_frame_len_max: usize,
    /// Undecoded bytes a connection may have buffered (a client that sends without reading its
    /// replies hits this and is closed).
    pub inbound_buffered_len_max: usize,
    /// Messages waiting for one recipient.
    pub queue_len_max: usize,
    /// Bytes of messages waiting, over all recipients: each counts its text plus
    /// [`MESSAGE_OVERHEAD_BYTES`](super::MESSAGE_OVERHEAD_BYTES).
    pub queued_bytes_max: u64,
    /// Registered accounts.
    pub accounts_max: usize,
    /// Open connections, both channels together.
    pub connections_max: usize,
    /// Open connections from one address.
    pub connections_per_peer_max: usize,
    /// A connection must log in (command) or complete its handshake (relay) this soon.
    pub login_deadline_ms: u64,
    /// A frame that has started to arrive must be complete this soon.
    pub frame_deadline_ms: u64,
    /// How long a relay ticket stays valid.
    pub ticket_ttl_ms: u64,
    /// Outstanding tickets per session; asking for more drops the oldest.
    pub tickets_per_session_max: usize,
    /// A bare-username relay handshake must come this soon after the login it binds to.
    pub bare_relay_window_ms: u64,
    /// Accept the original client's bare-username relay handshake (from the address that
    /// logged in, within `bare_relay_window_ms` of the login). Off by default: while it is on,
    /// anyone on that host can open the relay in the user's name and read their messages.
    pub bare_relay_allowed: bool,
    /// Free failed password checks per (name, address); after them each failure doubles the
    /// wait before the next check, from `login_backoff_base_ms` up to `login_failure_window_ms`.
    /// Checks in flight count as failures until they finish.
    pub login_failures_max: usize,
    /// Free failed password checks per address, over all names, before the same delays.
    pub login_failures_per_peer_max: usize,
    /// The first delay after the free checks.
    pub login_backoff_base_ms: u64,
    /// The longest delay; a key without a failure for this long is forgotten.
    pub login_failure_window_ms: u64,
    /// Registrations started from one address within `registration_window_ms` (counted when
    /// their password hash starts, so a concurrent burst cannot pass the limit).
    pub registrations_per_peer_max: usize,
    pub registration_window_ms: u64,
    /// Pushes written to a relay but not yet reported written or acknowledged.
    pub push_window_len: usize,
    /// Names in one list reply.
    pub list_len_max: usize,
    /// Requests of one command connection decoded ahead of their replies being written; a
    /// pipelining client's further requests wait, undecoded, for those replies.
    pub pipeline_len_max: usize,
    /// Bytes of names in one list reply.
    pub list_reply_bytes_max: usize,
    /// Longest list pattern, in bytes.
    pub list_pattern_len_max: usize,
    /// Names one list request examines (those starting with the pattern's leading letters,
    /// in name order), so that no list holds up other clients for long however many accounts
    /// there are.
    pub list_scan_max: usize,
    /// A bug to plant, for tests that prove the checkers catch it.
    #[cfg(any(test, feature = "planted"))]
    pub planted: super::planted::Planted,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            frame_len_max_before_login: 8 * 1024,
            frame_len_max: 64 * 1024,
            relay_frame_len_max: 256,
            inbound_buffered_len_max: 256 * 1024,
            queue_len_max: 10_000,
            queued_bytes_max: 1 << 30,
            accounts_max: 1_000_000,
            connections_max: 20_000,
            connections_per_peer_max: 64,
            login_deadline_ms: 60_000,
            frame_deadline_ms: 30_000,
            ticket_ttl_ms: 30_000,
            tickets_per_session_max: 4,
            bare_relay_window_ms: 10_000,
            bare_relay_allowed: false,
            login_failures_max: 5,
            login_failures_per_peer_max: 20,
            login_backoff_base_ms: 1_000,
            login_failure_window_ms: 60_000,
            registrations_per_peer_max: 10,
            registration_window_ms: 600_000,
            push_window_len: 256,
            list_len_max: 1_000,
            pipeline_len_max: 64,
            list_reply_bytes_max: 16 * 1024,
            list_pattern_len_max: 64,
            list_scan_max: 2_000,
            #[cfg(any(test, feature = "planted"))]
            planted: super::planted::Planted::None,
        }
    }
}

/// A limit in milliseconds as a reply shows it: whole seconds as `30 s`, anything else as
/// `300 ms` (so a short test deadline is not shown as `0 s`).
pub(crate) fn duration_text(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::duration_text;

    #[test]
    fn limits_show_whole_seconds_or_milliseconds() {
        assert_eq!(duration_text(30_000), "30 s");
        assert_eq!(duration_text(0), "0 s");
        assert_eq!(duration_text(300), "300 ms");
        assert_eq!(duration_text(1_500), "1500 ms");
    }
}
