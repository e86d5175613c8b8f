//! Bugs planted on purpose, compiled only into tests, to prove that the checkers (simulator,
//! model checker, proptest) notice them. Each variant names the bug and the check that must
//! catch it; the hooks in the core are one-line calls to the functions below, which do nothing
//! unless [`Config::planted`](super::Config) names their bug.

use std::collections::VecDeque;
use std::sync::Arc;

use super::names::{name_key, validate_name, INVALID_NAME, NAME_LEN_MAX};
use super::server::{queued_cost, Queued, Role, Server};
use super::{AccountId, ConnId, Lsn, MsgId, Output, Peer, Record};
use crate::wire::{parse_request, reply, Request, RequestError};

/// Which bug to plant. `None` is the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    #[default]
    None,
    /// A connection's undecoded bytes are never limited; `fuzzing::CoreDriver`'s memory bound
    /// must catch it.
    InboundUnbounded,
    /// Deleting an account leaves its queue behind, and a later account with the same name
    /// inherits it. Caught by the model checker's "reused name" invariant.
    DeleteKeepsQueue,
    /// A login that takes over another session drops the first message queued for the user.
    /// Caught by the "acknowledged message lost" invariant.
    TakeoverLosesMessage,
    /// The user list still shows deleted accounts. Caught by comparing replies with the model.
    ListShowsDeleted,
    /// When a relay detaches, the first message still queued for it is marked delivered (a
    /// requeue that drops a message). The simulator's liveness check must catch it.
    DropOnDetach,
    /// A send's acknowledgement leaves before the message's record is durable (the outbox
    /// ignores its gate for it). A crash then loses an acknowledged message: the simulator's
    /// "no acknowledged message is lost" must notice, and so must `fuzzing::CoreDriver`'s
    /// acknowledgement check. Only sends, so that the bug is reported under the one invariant
    /// that names it rather than as a forgotten registration or deletion.
    ReplyBeforeDurable,
    /// A relay handshake binds to the named user's account whatever the session, address or
    /// time (the original server's hole). The simulator's intruder relays must receive nothing.
    BindByNameOnly,
    /// A freshly attached relay gets its first two queued messages in the wrong order.
    RequeueOutOfOrder,
    /// The core decodes every pipelined request it has bytes for, however many replies are
    /// still unwritten (the pipelining bug the host issue found): a burst overflows the
    /// connection's outgoing queue. Caught by the simulator's "every request is answered".
    PipelineUnbounded,
    /// A new relay gets the account's queued messages while the original client's previous
    /// relay is still being closed, so a push that relay's writer still holds is written on
    /// both. Found by the simulator's "an original client's message is written once" (the
    /// first wave's behaviour).
    PushBeforeOldRelayEnds,
    /// The host lets a command thread read while replies are still owed, so the thread sits
    /// in `read` while its replies wait in the mailbox. The simulator's "every request is
    /// answered" must catch the stuck client.
    HostReadsWhileOwed,
    /// The host tells the core a connection is closed as soon as the core asks to close it,
    /// before the writer has flushed and reported what it wrote: those reports are ignored
    /// and the messages pushed again. Caught by "an original client's message is written
    /// once" (and by loom's relay models).
    HostClosesEarly,
    /// The host's drain treats every sink as synchronous and reports records durable as soon
    /// as they are handed to the log, so replies leave before the fsync. A crash then forgets
    /// acknowledged messages: the simulator's "no acknowledged message is lost".
    HostAssumesSyncSink,
    /// Bare relay handshakes are accepted whatever `Config::bare_relay_allowed` says (the
    /// check reads the old opt-out default). Anyone on the host can read a user's messages.
    BareRelayByDefault,
    /// The throttle checks before a password job starts but counts only when it finishes, so
    /// concurrent guesses all get verified.
    ThrottleCountedLate,
    /// Failed guesses are counted per name over every address, so an attacker's five guesses
    /// lock the owner out from everywhere.
    ThrottleLocksOwner,
    /// Registrations are counted against the address's limit when their hash finishes, not
    /// when it starts, so a concurrent burst all gets through.
    RegistrationUnlimited,
    /// Empty texts are accepted (the check was lost when the text field became optional).
    EmptyTextAccepted,
    /// Recovery replays a torn last record (its text cut short) as if it were whole. This one
    /// lives in the real log's recovery (`store::wal`, switched on by
    /// `StoreOptions::replay_torn_tail`), not in the core.
    ReplayTornRecord,
    /// An acknowledgement is applied to whichever account's queue holds the id (looked up by
    /// message id alone, without checking it is the relay's account): another user's ids
    /// remove their messages. Caught by the simulator's "no acknowledgement changes another
    /// account's queue" (a client acknowledging ids it was never pushed).
    AckAnyAccount,
    /// A relay ticket is looked up but not removed when used, so it binds again. Caught by "a
    /// ticket binds at most once" (a client replaying its spent handshake).
    TicketReusable,
    /// The handshake does not check a ticket's expiry, leaving expired tickets to the periodic
    /// sweep, which runs only every `ticket_ttl_ms`. Caught by "an expired ticket binds
    /// nothing".
    TicketExpiryLeftToSweep,
    /// A send looks its recipient up by the name as typed, not by its lower-cased key, so `U1`
    /// is "invalid recipient" although `u1` exists. Caught by "a send to an account is
    /// accepted" (clients that spell names in another case).
    SendNameCaseSensitive,
    /// A list's scan range stops its literal prefix at `*` only, so `u?` scans names starting
    /// with `u?` and finds none. Caught by "list shows exactly the accounts" (patterns with
    /// `?`).
    ListPrefixStopsAtStarOnly,
    /// A connection that is not logged in gets a frame limit one byte short (`limit - 1`, an
    /// inclusive bound written as exclusive): a frame exactly at the limit is refused and the
    /// connection closed. Caught by "a connection closes only where PROTOCOL.md says so".
    FrameAtLimitRefused,
    /// A logged-in connection gets a frame limit one byte over (`limit + 1`): a frame one byte
    /// too large is served and the connection stays open. Caught by "a bad frame is refused,
    /// then the connection closes".
    FrameOverLimitAccepted,
    /// One more free password check per (name, address) than `login_failures_max` (an
    /// inclusive comparison). Caught by the simulator's "the throttle bounds password guesses
    /// per account" (a login storm on one name).
    ThrottleFreeOffByOne,
    /// The outbox's gate compares with `>=` where `>` was meant: an output waiting for record
    /// `n` leaves once `n - 1` is durable. A crash (or a stall) then shows a reply or push
    /// whose record is not on disk. Found by the model checker's disk ("released-early").
    ReleaseOneEarly,
    /// A bound relay's decoder gets the command channel's limit (`frame_len_max`, copied from
    /// the login path) instead of `relay_frame_len_max`: an acknowledgement far over the
    /// relay's limit is read and answered like any malformed one, and the relay stays open.
    /// Caught by "an oversized frame is refused, then the connection closes".
    RelayLimitFromCommand,
    // The outside tester's pass: realistic slips where the checkers had not looked.
    /// The login throttle keys a name as typed, not by its lower-cased key: `U1` and `u1`
    /// are one account but two budgets, so an attacker who varies the case gets more guesses.
    /// Caught by the simulator's "the throttle bounds password guesses per account" (a login
    /// storm that spells the name both ways).
    ThrottleNameCaseSensitive,
    /// A deletion never compares the name given with the session's account: `5\nbob\nPW`
    /// with the user's own password deletes the user's own account. Caught by "only the
    /// logged-in account can be deleted" (clients that name another account).
    DeleteIgnoresName,
    /// A deletion's password check is read as "the check ran", not "the password matched"
    /// (`Verified(_)`): any password deletes the account. Caught by "a wrong password never
    /// deletes" (clients that delete with a wrong password).
    DeleteSkipsPassword,
    /// `list` shows names by their lower-cased key (`u1`), not as registered (`U1`). Caught by
    /// "list shows names as they were registered".
    ListShowsLowercase,
    /// Closing the command connection forgets to end the session: its relay stays bound and
    /// the session stays live, so a bare handshake from its host still binds. Caught by the
    /// unit test `core::rules_tests::closing_the_command_connection_logs_the_session_out_unless_planted`
    /// (the simulator's clients always close their relay with their command connection), and by
    /// the simulator's rest check (`sim::check::rest`: sessions left once every client left).
    CloseKeepsSession,
    /// The frame deadline is re-armed by every read of a partial frame (`set` where
    /// `set_if_unset` was meant): a client that dribbles a byte at a time holds its connection
    /// for ever. Caught by the unit test
    /// `core::rules_tests::a_frame_dribbled_byte_by_byte_times_out_from_its_start_unless_planted`.
    FrameDeadlineRearmed,
    /// A `list` pattern exactly at `list_pattern_len_max` is refused (`>=` for `>`). Caught by
    /// the unit test `core::rules_tests::a_list_pattern_exactly_at_the_limit_is_served_unless_planted`.
    ListPatternLimitExclusive,
    /// A password of exactly 128 bytes is refused (`>=` for `>`). Caught by the unit test
    /// `core::rules_tests::a_password_of_exactly_128_bytes_is_accepted_unless_planted`.
    PasswordLimitExclusive,
    /// A right password clears the address's count of failures too, not only the name's: an
    /// attacker who logs in to an account of its own between guesses resets the budget that
    /// bounds its guesses over many names. Caught by the unit test
    /// `core::rules_tests::a_right_password_does_not_excuse_an_addresss_wrong_ones_unless_planted`.
    ThrottleSuccessClearsAddress,
    /// The login deadline counts from the latest request rather than from the connection: a
    /// client that never logs in but asks for `help` now and then stays connected for ever.
    /// Caught by the unit test
    /// `core::rules_tests::requests_do_not_extend_the_login_deadline_unless_planted`.
    LoginDeadlineRearmed,
    /// A bare relay's report that pushes were written removes them from the queue but pushes
    /// nothing more (the `pump` after it was lost): beyond the push window, queued messages
    /// wait for the next send. Caught by the unit test
    /// `core::rules_tests::a_bare_relay_gets_a_backlog_larger_than_its_window_unless_planted`
    /// and the simulator's liveness phase, whose owed users take their backlog on bare relays
    /// every other time where bare handshakes are accepted.
    WrittenDoesNotPump,
    /// A connection that closes while its password check runs leaves the check's throttle slot
    /// taken (the `abandon_job` branch of `closed` was lost): each such drop uses up one of
    /// the name's and the address's free checks for good, until the owner is locked out from
    /// that address. Caught by the unit test
    /// `core::rules_tests::a_check_abandoned_by_a_dropped_connection_gives_its_slot_back_unless_planted`
    /// and the simulator's rest check (`sim::check::rest`: a failure count never forgotten).
    AbandonedCheckKeepsSlot,
    // The outside tester's second pass (h8): limits, logout, snapshots, salts, the bare
    // handshake's binding rules.
    /// A send to a queue holding exactly `queue_len_max` messages is accepted (`>` for `>=`):
    /// a queue grows one past its bound.
    QueueOneOverBound,
    /// Logging out (or being taken over) leaves the command connection the logged-in frame
    /// limit: a connection that is no longer logged in may send 64 KiB frames.
    LogoutKeepsFrameLimit,
    /// Logging out does not re-arm the login deadline: a connection that logs out stays open
    /// for ever without logging in again.
    LogoutArmsNoDeadline,
    /// Registration hashes every password with the same (all-zero) salt, so two accounts with
    /// the same password store the same hash. Caught by the simulator's "every account has a
    /// salt of its own" (`sim::check::at_rest`, from the register records on its disk).
    SaltNotDrawn,
    /// Closing a connection does not give its address's connection slot back: after
    /// `connections_per_peer_max` connections in all, an address is refused for good.
    PeerSlotNotReleased,
    /// A snapshot records each account under its lower-cased key (`u1`), not the name as
    /// registered (`U1`): after a restart from the snapshot, `list` shows the wrong spelling.
    SnapshotLowercasesNames,
    /// One more account than `accounts_max` may be registered (`>` for `>=`).
    AccountsOneOverCap,
    /// Binding a relay does not cancel its handshake deadline: a bound relay is closed when
    /// the login deadline of its connection comes.
    RelayKeepsHandshakeDeadline,
    /// The bare handshake's "logged in moments ago" window is not checked: an original
    /// client's relay may be opened any time after the login.
    BareRelayAnyTime,
    /// The bare handshake does not compare addresses: anyone anywhere may open the relay of a
    /// user who just logged in (with the bare handshake allowed).
    BareRelayAnyAddress,
    /// A refused bare handshake gets a failure frame, as a ticketed one does, which the
    /// original client prints as a chat message (`New Message from -1...`). This was the
    /// shipped behaviour until the outside tester's second pass (PROTOCOL.md: "a bare relay is
    /// simply closed"). Caught by the unit test
    /// `core::rules_tests::a_refused_bare_handshake_is_simply_closed_unless_planted` and by the
    /// model checker's reference (its hijackers' bare handshakes).
    BareRefusalFramed,
    // The outside tester's third pass (h9): the ticket's lifetime.
    /// A ticket still binds at the very millisecond it expires (`<` for `<=`): it lives one
    /// millisecond longer than `ticket_ttl_ms`, and the handshake disagrees with the sweep,
    /// which forgets it at that millisecond. Caught by the unit test
    /// `core::rules_tests::a_ticket_binds_until_its_expiry_and_not_at_it_unless_planted`, and by
    /// the simulator's expired-ticket client in an instant world (no latency), which presents
    /// its ticket a whole lifetime after it arrived: "an expired ticket binds nothing".
    TicketBindsAtExpiry,
    /// A `list` reply leaves out a name that would fill it to exactly `list_reply_bytes_max`
    /// (the bound taken one byte short): a list that fits is cut and told to narrow its
    /// pattern. Caught by the unit test
    /// `core::rules_tests::a_list_reply_exactly_at_its_byte_bound_is_served_whole_unless_planted`.
    ListReplyOneByteShort,
    /// A send that is accepted does not push the message to the recipient's relay (the `pump`
    /// after the commit was lost): an online recipient gets it only when something else
    /// pushes, such as the next message or a new relay ("pushed ... with no polling delay").
    /// The simulator's sweep escaped it (its liveness phase's fresh relays push everything)
    /// until the fourth outside pass added "a message accepted for a user whose relay is
    /// attached is pushed to it" (`sim::check::pump`); found too by the model checker and the
    /// unit test `core::rules_tests::an_online_recipient_gets_a_message_at_once_unless_planted`.
    SendDoesNotPump,
    /// The doubling wait after failed password checks is not capped at
    /// `login_failure_window_ms` (the `.min` was lost): after enough failures the reply says
    /// to wait minutes, then hours, against "each failure doubles the wait (1 s up to 60 s)".
    /// Caught by the unit test
    /// `core::rules_tests::the_wait_after_failed_logins_never_exceeds_its_cap_unless_planted`.
    ThrottleBackoffUncapped,
    // The fourth pass: the password hasher (`auth`), where no checker looked.
    /// The hasher ignores the salt the core drew and hashes with a fixed one: two accounts
    /// with one password store one hash (and a precomputed table serves every account).
    /// Lives in `auth::Hasher` (built by `Hasher::planted`), not in the core. Caught by the
    /// unit test `auth::tests::a_hash_uses_the_salt_the_core_drew_unless_planted` and the
    /// simulator's "every account has a salt of its own".
    HashSaltIgnored,
    /// The hasher ignores the configured iterations (one pass whatever `hash_cost` says):
    /// stored hashes are cheaper to crack than configured. Caught by the unit test
    /// `auth::tests::a_hash_has_the_configured_cost_unless_planted` and the simulator's "every
    /// password job costs the configured cost" (its world hashes with two passes; the job's
    /// cost is judged before "a stored hash has the configured cost" judges its record).
    HashCostIgnored,
    /// The stand-in hash an unknown name is verified against is made at the cheapest cost,
    /// not the configured one: a login to an unknown name answers faster, which tells
    /// attackers which names exist ("the same reply and timing"). Caught by the unit test
    /// `auth::tests::an_unknown_name_costs_what_a_stored_hash_costs_unless_planted` and the
    /// simulator's "every password job costs the configured cost, for unknown names too" (the
    /// simulated clock does not run argon2, so it judges the cost each job ran at).
    DummyHashCheapest,
    /// Recovery forgets how many log bytes follow the snapshot (it starts counting at zero):
    /// a server restarted more often than the log fills `snapshot_log_bytes_min` never
    /// compacts. Lives in the log's recovery (`store::wal`, switched on by
    /// `StoreOptions::forget_log_size`). Caught by the unit test
    /// `store::wal::tests::a_restart_remembers_the_log_bytes_since_the_snapshot_unless_planted`
    /// and the simulator's rest check ("a recovered store counts the log bytes since its
    /// snapshot", `sim::check::rest`).
    RecoveryForgetsLogSize,
    /// `chatroom server --login-deadline-s N` sets a deadline of N milliseconds, not seconds
    /// (the `* 1000` lost): with the default of 60, every connection is closed 60 ms after
    /// it opens. Lives in `net::cli` (no checker started a server from its flags). Caught by
    /// the unit test `net::cli::tests::every_flag_reaches_the_server_config_unless_planted`,
    /// and by the simulator, whose worlds ask for their limits through the shipped flags
    /// (`sim::flags`): "no connection is closed for its login deadline before it".
    DeadlineFlagInSeconds,
    /// A session at its `tickets_per_session_max` that asks for one more ticket loses its
    /// newest outstanding ticket instead of its oldest (`max` for `min`): the ticket the
    /// client is about to use is refused while a stale one lives on. Caught by the unit test
    /// `core::rules_tests::a_new_ticket_replaces_the_oldest_unless_planted`.
    TicketEvictsNewest,
    /// An acknowledging relay gets one push beyond `push_window_len` in flight (the window's
    /// room computed from `push_window_len + 1`). Caught by the unit test
    /// `core::rules_tests::an_acking_relay_has_exactly_its_window_in_flight_unless_planted`.
    PushWindowOneOver,
    /// The original client's bare handshake is refused at exactly `bare_relay_window_ms` after
    /// the login (`>=` for `>`): the window is one millisecond short. Caught by the unit test
    /// `core::rules_tests::a_bare_handshake_at_the_end_of_its_window_binds_unless_planted`, the
    /// simulator's "a bare handshake within its window binds" (in an instant world a client
    /// holds its bare handshake until the window's end) and the regression scenario
    /// `tests/scenarios/bare_handshake_at_its_window_end.scn`.
    BareWindowExclusive,
    /// A new connection's login deadline fires one millisecond late (60.001 s for 60 s: the
    /// mutation `>=` for `>` in `Timers::pop_due` escaped every unit test; planted here, where
    /// the simulator does not spin on a deadline that is never due). Caught by the unit test
    /// `core::rules_tests::a_connection_is_closed_exactly_at_its_login_deadline_unless_planted`.
    TimersFireLate,
    /// The periodic sweep does not re-arm itself: what it could not yet forget (a ticket
    /// issued after the sweep was armed, failures and registrations still in their window)
    /// stays in memory until some later request arms it again. Caught by the unit test
    /// `core::rules_tests::the_sweep_forgets_everything_that_lapsed_unless_planted` and the
    /// simulator's rest check (`sim::check::rest`).
    SweepNotRearmed,
    /// A command connection decodes one request more than `pipeline_len_max` ahead of its
    /// written replies (`>` for `>=`). Caught by the unit test
    /// `core::rules_tests::a_pipeline_decodes_exactly_its_bound_ahead_unless_planted`.
    PipelineOneOver,
    /// A connection holding exactly `inbound_buffered_len_max` undecoded bytes is closed
    /// (`>=` for `>`). Caught by the unit test
    /// `core::rules_tests::a_connection_may_buffer_exactly_its_inbound_bound_unless_planted`.
    InboundBoundExclusive,
    // The sixth pass: the TCP adapter (`net`), where the simulator does not reach.
    /// A relay writer whose batch write fails (the write timeout, the peer gone) reports
    /// nothing of it, though the socket took its first frames: the original client reads
    /// those, and they are pushed again on its next relay. Lives in `net::relay`. Caught by
    /// the unit test
    /// `net::tests::a_relay_cut_off_mid_batch_by_the_write_timeout_gets_each_message_once_unless_planted`.
    RelayPartialWriteUnreported,
    /// The relay reader does not re-arm a relay it stopped reading after its turn's reads
    /// (fairness): the rest of a burst of acknowledgements waits, unread, until the relay
    /// sends again. Lives in `net::relay_reader`. Caught by the unit test
    /// `net::tests::a_burst_of_acknowledgements_longer_than_a_turn_is_read_to_its_end_unless_planted`.
    RelayReaderNotRearmed,
    /// A command thread whose write of replies fails (the write timeout: the client does not
    /// read) carries on as if written instead of ending the connection: it waits for ever for
    /// reports the core never gets, holding the session and its thread. Lives in
    /// `net::command`. Caught by the unit test
    /// `net::tests::a_client_that_never_reads_its_replies_is_closed_unless_planted`.
    CommandWriteFailureIgnored,
    /// A password job that ends does not hand its hashing slot on to a job waiting for one
    /// (no `notify_one`): with every slot taken once, the waiting logins wait for ever. Lives
    /// in `net::hashing`. Caught by the unit test
    /// `net::tests::logins_beyond_the_hashing_slots_all_finish_even_when_some_are_abandoned_unless_planted`.
    HashSlotNotHandedOn,
    /// The frame deadline runs from the first byte a connection leaves undecoded until it has
    /// nothing undecoded, across frames: a pipelining client whose reads end inside frames, or
    /// whose whole frames wait behind the pipeline bound, is closed as if a frame never came.
    /// The shipped server had this bug (found by `tests/net_peers.rs`). Caught by the unit
    /// tests `core::rules_tests::a_client_whose_reads_end_inside_frames_is_not_timed_out_while_they_complete_unless_planted`,
    /// `core::rules_tests::whole_frames_held_back_by_the_pipeline_bound_run_no_frame_deadline_unless_planted`
    /// and `core::rules_tests::part_of_a_frame_behind_a_full_pipeline_runs_no_frame_deadline_unless_planted`.
    FrameDeadlineSpansFrames,
    // The simulator's watchdog.
    /// A timer is not due at its own deadline, only after it (`>=` for `>` in
    /// `Timers::pop_due`): the simulator's tick at the deadline fires nothing and is re-armed
    /// at the same millisecond, so its clock stops. Caught by the simulator's watchdog ("the
    /// simulated clock advances"), which fails the seed instead of hanging.
    TimersNeverDue,
    // The outside tester's seventeenth pass: the server's command line.
    /// `chatroom server --frame-len-max N` leaves the bound on bytes buffered from a
    /// connection at its 256 KiB default: above it, a single request the flag allows is
    /// refused as "Too much sent without waiting for replies" and its connection closed. The
    /// shipped server had this bug (found by `tests/outside_cli.rs`). Lives in `net::cli`.
    /// Caught by the unit test
    /// `net::cli::tests::a_raised_frame_len_max_buffers_one_whole_request_unless_planted`.
    FrameFlagKeepsInboundBound,
    // The simulator's rest phase: what recovery rebuilds, compared with what crashed.
    /// Recovery skips `Delivered` records: every message a relay was written or acknowledged
    /// comes back to its queue after a restart, and is pushed again. Caught by the simulator's
    /// rest check "a server recovered at rest holds what it held" (`sim::check::rest`), also
    /// in fault-free worlds, where no crash otherwise shows it.
    ReplaySkipsDelivered,
    // Found by the simulator's hoarding client ("a fresh ticket binds"), then fixed.
    /// A session at its `tickets_per_session_max` forgets the ticket that expires first, ties
    /// broken by the ticket's random text (the shipped server's order until the fix): among
    /// tickets issued in one millisecond, any may be forgotten, the newer ones a client is
    /// about to use included. Caught by the simulator (`tests/scenarios/
    /// ticket_hoard_in_one_millisecond.scn`, and the sweeps' instant worlds) and the unit test
    /// `core::rules_tests::tickets_issued_in_one_millisecond_are_forgotten_oldest_first_unless_planted`.
    TicketOldestByExpiry,
    // Found by the simulator once a world may ask for a small bound on buffered bytes ("a
    // client that sends without waiting is never closed for it"), then fixed.
    /// The flag conversion raises `inbound_buffered_len_max` to one whole request, not to one
    /// request and a read (the shipped server's bound until the fix): the read that brings a
    /// request's last bytes brings the next requests too, and the client is closed as "Too
    /// much sent without waiting for replies" (with `--frame-len-max 1048576`, a maximal
    /// request and any request after it in the same read). Lives in `net::cli`. Caught by the
    /// simulator (`tests/scenarios/burst_past_a_whole_frame_bound.scn`) and the unit test
    /// `net::cli::tests::a_raised_frame_len_max_buffers_a_request_and_a_read_unless_planted`.
    InboundBoundWithoutRead,
    // Found by mutating the shipped core where no planted bug was (the eighth pass): limits
    // whose exact bound nothing judged.
    /// A session holds one ticket more than `tickets_per_session_max` (`>` for `>=`): the
    /// oldest is forgotten one grant late. Caught by the simulator's hoarding client that uses
    /// its oldest ticket: "a ticket its session's newer ones evicted binds nothing".
    TicketsOneOver,
    /// A `list` scan stops one name short of `list_scan_max` and says it stopped there.
    /// Caught by the simulator's "a list's scan stops only at its bound".
    ListScanOneShort,
    /// A `list` reply counts its names without the space after each: the last name may pass
    /// `list_reply_bytes_max` by its space. Caught by the simulator's "a list reply stays
    /// within its bounds".
    ListReplyOneByteOver,
    /// The server refuses a connection when it holds `connections_max` already, counting the
    /// new one (`>=` for `>`): one connection fewer than configured. Caught by the simulator's
    /// "a connection cap refuses only at it".
    ConnectionsOneShort,
    /// A send that would fill the store's bound on bytes exactly is refused (`>=` for `>`).
    /// Caught by the simulator's "a limit refuses only at its bound" (worlds whose every
    /// message costs the same, with a bound a multiple of it).
    StoreFullAtBound,
    /// Deleting an account forgets its queue without giving its bytes back: the store fills
    /// with messages nobody waits for, and sends are refused long before the bound. Caught by
    /// the simulator's "a limit refuses only at its bound".
    DeleteKeepsQueuedBytes,
    /// A throttled check is told its wait in whole seconds rounded down (at least one): a
    /// client that waits as told comes back too early and is throttled again. Caught by the
    /// simulator's "a throttled wait, waited out, is enough".
    ThrottleWaitRoundedDown,
    /// A send's text is cut at its first line break (the text field read as one line, where
    /// PROTOCOL.md has "text is everything after the recipient line"). Caught by the
    /// simulator's "delivered text is the text sent" (an at-limit send's padding breaks a
    /// line).
    SendTextFirstLine,
    /// A header with spaces before its digits is refused as malformed (PROTOCOL.md: "accept
    /// surrounding spaces"), here for a frame that begins a read. Caught by the simulator's
    /// "a header PROTOCOL.md allows is read" (every third client writes its headers
    /// right-justified).
    HeaderLeadingSpaceRefused,
    /// A name of exactly 32 characters, PROTOCOL.md's longest, is refused as invalid (`>=` for
    /// `>`). Caught by the simulator's "a limit refuses only at its bound" (now and then a
    /// registration uses a name at its limits).
    NameLimitExclusive,
    /// A name of 33 characters is accepted (the bound checked one over). Caught by the
    /// simulator's "a name outside PROTOCOL.md's is refused".
    NameOneOver,
    /// A name's characters are not checked, only its length: `u1-+` or `u1- ` is registered.
    /// Caught by the simulator's "a name outside PROTOCOL.md's is refused".
    NameCharsUnchecked,
    /// A request with more fields than its command takes is served without the extra ones
    /// (`3\nname\npw\nx` registers `name`). Caught by the simulator's "a request with a
    /// field its command does not take is refused" (`hostile extra-field`).
    RequestExtraFieldIgnored,
    /// Recovery reads each log segment without syncing what it read
    /// ([`crate::store::StoreOptions::read_unsynced`]): after the process is killed, records
    /// it wrote and never synced are replayed and built on while a power loss may still take
    /// them, and a later segment's sync does not keep them. Caught by the simulator's "a
    /// crash keeps every record reported durable" (crashes that kill the process, then a
    /// power loss; before that rule, by "a server recovered at rest holds what it held").
    RecoveryReadsUnsynced,
    /// A right password does not end its (name, address) streak: an owner who mistyped a few
    /// times, then logged in, is throttled at the next mistype as if the streak went on.
    /// Caught by the simulator's "the throttle refuses only at its counts".
    ThrottleSuccessKeepsStreak,
    /// The throttle's delay doubles one failure late: the first failure beyond the free ones
    /// waits the base delay, and so does the second. Caught by the simulator's "the throttle
    /// refuses where its counts certainly reached their free checks".
    ThrottleDoublingLate,
    /// A registration refused for its address's limit is told to wait until the newest of the
    /// address's registrations leaves the window, not the oldest of the ones the limit
    /// counts: the slot frees sooner than it says. Caught by the simulator's "a registration
    /// limit's wait ends when a registration leaves the window".
    RegistrationWaitNewest,
    /// A snapshot written in pieces creates the segment it begins without syncing the
    /// directory (`StoreOptions::segment_name_unsynced`): records synced into that segment
    /// before the snapshot is in place are lost with its name when a power loss undoes the
    /// directory's changes. Caught by the simulator's "a crash keeps every record reported
    /// durable" (its store writes snapshots in the writer's steps, with the helper's encoding
    /// time between the begin and the first piece), and by the unit test
    /// `store::wal::tests::records_synced_while_a_snapshot_is_written_survive_a_crash_before_it_is_in_place_unless_planted`.
    SnapshotSegmentNameUnsynced,
    /// A relay that closes detaches whatever relay its account's session has, not only
    /// itself: the old relay of a session taken over, reported closed after the new session's
    /// relay was bound, leaves the new relay open but unbound, so messages wait in the queue
    /// instead of being pushed, and the next takeover does not close it. Caught by the
    /// simulator's "a session's end closes its relay" once the world settles.
    DetachAnyRelay,
    /// A session's end leaves its tickets valid: after a logout and a login on the same
    /// connection, a ticket the first session was granted binds a relay to the second (the
    /// ticket check compares the command connection, not the session). Caught by the
    /// simulator's "a ticket of a session that ended binds nothing" (`ticket-after-logout`).
    TicketOutlivesSession,
    /// A snapshot frees only the first file it covers
    /// ([`crate::store::StoreOptions::covered_first_only`]): every later snapshot leaves the
    /// one before it on the disk, which only grows. Nothing is lost, and no client can tell;
    /// caught by the unit test
    /// `store::snapshotting::tests::a_snapshot_done_leaves_no_file_it_covers_unless_planted`
    /// and by the simulator's rest phase, which writes a snapshot of everything and then
    /// looks at the disk ("a snapshot done leaves no file it covers").
    SnapshotFreesFirstCovered,
    /// A push the host writes straight to an idle acknowledging relay (the TCP adapter's
    /// `Host::write_through`) that the socket takes only part of is queued whole for the
    /// writer, not its rest: the client reads the frame's head twice, and the stream after it
    /// is garbage. Reached by the simulator since its server runs the adapter's host settings.
    ThroughRestWhole,
    /// The host owes at most one writer a wake between two unlocks (`Host::take_wakes`): a
    /// second relay pushed to by the same call waits, its pushes queued, until something else
    /// wakes its writer. Caught by the simulator's pump and delivery rules once its relay
    /// writers wait in `take_all` as the TCP adapter's do.
    WakeOwedOnce,
    /// The core says a connection may be read ahead of its owed replies
    /// (`Server::reads_ahead`) even with its pipeline full: the TCP adapter reads a burst
    /// ahead, the core buffers it past its inbound bound and closes a client that only sent
    /// without waiting. Caught by the simulator once its server reads ahead as the adapter
    /// does ("a client that sends without waiting is never closed for it").
    ReadAheadPastPipeline,
    /// The log writer reports a batch durable as soon as it hands the batch to its sync
    /// thread, before the sync ends ([`crate::store::StoreOptions::report_on_flush`]): the
    /// server releases replies and pushes a power loss can still take back. Caught by the
    /// simulator once its store runs the server's writer (`store::commit::Committer`) and a
    /// crash comes while a sync is in flight.
    DurableBeforeSync,
    /// When its sync thread's sync ends, the log writer reports the last record appended
    /// durable, though the records it appended while the sync ran were not in it
    /// ([`crate::store::StoreOptions::report_last_append`]). Caught by the simulator once its
    /// store runs the server's writer, when a crash follows a batch appended during a sync.
    SyncedReportsLast,
    /// Told to shut down while its sync thread syncs a batch, the log writer stops at once:
    /// the records it took behind that sync are never written, though the server handed them
    /// over before it stopped ([`crate::store::StoreOptions::stop_while_syncing`]). Caught by
    /// the simulator's graceful stops ("a stopped server keeps every record it wrote").
    StopWhileSyncing,
    /// The log writer hands its sync thread a new batch while the last one is still being
    /// synced ([`crate::store::StoreOptions::sync_while_syncing`]): the hand-off holds one
    /// request (`store::syncer::SyncSlot`), so the first is replaced, and its report ends the
    /// second's wait early. Caught by the simulator's store, which holds the writer to that
    /// hand-off ("the log writer keeps one sync in flight").
    SyncWhileSyncing,
    // The seventh pass: the throttle's sweep.
    /// The throttle's sweep forgets a key a window after its last failure even while checks
    /// on it are in flight (`pending` no longer keeps it): a storm's guesses that arrive
    /// after the sweep start on fresh free checks, and the forgotten checks' settling takes
    /// slots from the new ones, against "counted before the password is checked, so
    /// concurrent attempts cannot pass the limit" (PROTOCOL.md). Caught by the unit test
    /// `core::throttle::tests::a_sweep_keeps_a_key_with_checks_in_flight_unless_planted` and
    /// by the simulator's returning login storm ("the throttle bounds password guesses per
    /// account"; rare: a sweep must come while a wave's first check is hashed).
    ThrottleSweepsInFlight,
    /// The TCP adapter's timer thread is woken only for a first deadline, not for one earlier
    /// than the deadline it sleeps until (the `new < old` case lost): with a connection's
    /// login deadline a minute away, another's frame deadline of 300 ms fires a minute late.
    /// Lives in `net::timer` (the simulator's clock needs no thread). Caught by the unit test
    /// `net::tests::an_earlier_deadline_wakes_a_timer_asleep_until_a_later_one_unless_planted`.
    TimerMissesEarlierDeadline,
}

impl Planted {
    /// Every planted bug (not `None`), in declaration order: the strength report runs each.
    /// A new variant must be added here too (`every_bug_is_listed_once` counts them).
    pub const ALL: [Planted; 108] = [
        Planted::InboundUnbounded,
        Planted::DeleteKeepsQueue,
        Planted::TakeoverLosesMessage,
        Planted::ListShowsDeleted,
        Planted::DropOnDetach,
        Planted::ReplyBeforeDurable,
        Planted::BindByNameOnly,
        Planted::RequeueOutOfOrder,
        Planted::PipelineUnbounded,
        Planted::PushBeforeOldRelayEnds,
        Planted::HostReadsWhileOwed,
        Planted::HostClosesEarly,
        Planted::HostAssumesSyncSink,
        Planted::BareRelayByDefault,
        Planted::ThrottleCountedLate,
        Planted::ThrottleLocksOwner,
        Planted::RegistrationUnlimited,
        Planted::EmptyTextAccepted,
        Planted::ReplayTornRecord,
        Planted::AckAnyAccount,
        Planted::TicketReusable,
        Planted::TicketExpiryLeftToSweep,
        Planted::SendNameCaseSensitive,
        Planted::ListPrefixStopsAtStarOnly,
        Planted::FrameAtLimitRefused,
        Planted::FrameOverLimitAccepted,
        Planted::ThrottleFreeOffByOne,
        Planted::ReleaseOneEarly,
        Planted::RelayLimitFromCommand,
        Planted::ThrottleNameCaseSensitive,
        Planted::DeleteIgnoresName,
        Planted::DeleteSkipsPassword,
        Planted::ListShowsLowercase,
        Planted::CloseKeepsSession,
        Planted::FrameDeadlineRearmed,
        Planted::ListPatternLimitExclusive,
        Planted::PasswordLimitExclusive,
        Planted::ThrottleSuccessClearsAddress,
        Planted::LoginDeadlineRearmed,
        Planted::WrittenDoesNotPump,
        Planted::AbandonedCheckKeepsSlot,
        Planted::QueueOneOverBound,
        Planted::LogoutKeepsFrameLimit,
        Planted::LogoutArmsNoDeadline,
        Planted::SaltNotDrawn,
        Planted::PeerSlotNotReleased,
        Planted::SnapshotLowercasesNames,
        Planted::AccountsOneOverCap,
        Planted::RelayKeepsHandshakeDeadline,
        Planted::BareRelayAnyTime,
        Planted::BareRelayAnyAddress,
        Planted::BareRefusalFramed,
        Planted::TicketBindsAtExpiry,
        Planted::ListReplyOneByteShort,
        Planted::SendDoesNotPump,
        Planted::ThrottleBackoffUncapped,
        Planted::HashSaltIgnored,
        Planted::HashCostIgnored,
        Planted::DummyHashCheapest,
        Planted::RecoveryForgetsLogSize,
        Planted::DeadlineFlagInSeconds,
        Planted::TicketEvictsNewest,
        Planted::PushWindowOneOver,
        Planted::BareWindowExclusive,
        Planted::TimersFireLate,
        Planted::SweepNotRearmed,
        Planted::PipelineOneOver,
        Planted::InboundBoundExclusive,
        Planted::RelayPartialWriteUnreported,
        Planted::RelayReaderNotRearmed,
        Planted::CommandWriteFailureIgnored,
        Planted::HashSlotNotHandedOn,
        Planted::FrameDeadlineSpansFrames,
        Planted::TimersNeverDue,
        Planted::FrameFlagKeepsInboundBound,
        Planted::ReplaySkipsDelivered,
        Planted::TicketOldestByExpiry,
        Planted::InboundBoundWithoutRead,
        Planted::TicketsOneOver,
        Planted::ListScanOneShort,
        Planted::ListReplyOneByteOver,
        Planted::ConnectionsOneShort,
        Planted::StoreFullAtBound,
        Planted::DeleteKeepsQueuedBytes,
        Planted::ThrottleWaitRoundedDown,
        Planted::SendTextFirstLine,
        Planted::HeaderLeadingSpaceRefused,
        Planted::NameLimitExclusive,
        Planted::NameOneOver,
        Planted::NameCharsUnchecked,
        Planted::RequestExtraFieldIgnored,
        Planted::RecoveryReadsUnsynced,
        Planted::ThrottleSuccessKeepsStreak,
        Planted::ThrottleDoublingLate,
        Planted::RegistrationWaitNewest,
        Planted::SnapshotSegmentNameUnsynced,
        Planted::DetachAnyRelay,
        Planted::TicketOutlivesSession,
        Planted::SnapshotFreesFirstCovered,
        Planted::ThroughRestWhole,
        Planted::WakeOwedOnce,
        Planted::ReadAheadPastPipeline,
        Planted::DurableBeforeSync,
        Planted::SyncedReportsLast,
        Planted::StopWhileSyncing,
        Planted::SyncWhileSyncing,
        Planted::ThrottleSweepsInFlight,
        Planted::TimerMissesEarlierDeadline,
    ];

    /// The bug's name as written in scenario files and on the command line (the variant's).
    pub fn name(self) -> String {
        format!("{self:?}")
    }

    /// The bug named `name` (as [`Planted::name`] spells it; `None` too).
    pub fn from_name(name: &str) -> Option<Planted> {
        std::iter::once(Planted::None).chain(Planted::ALL).find(|bug| bug.name() == name)
    }
}

impl Server {
    /// Whether `bug` is planted and `when` holds: the one-line hooks of the outside tester's
    /// second pass read `#[cfg] let x = x && !self.planted_is(Bug, condition);`.
    pub(super) fn planted_is(&self, bug: Planted, when: bool) -> bool {
        self.config.planted == bug && when
    }

    /// [`Planted::NameLimitExclusive`], [`Planted::NameOneOver`],
    /// [`Planted::NameCharsUnchecked`]: the verdict on a registration's `name`, given the
    /// true one.
    pub(super) fn planted_name_valid(
        &self,
        name: &str,
        valid: Result<(), &'static str>,
    ) -> Result<(), &'static str> {
        let len = name.len();
        match self.config.planted {
            Planted::NameLimitExclusive if len == NAME_LEN_MAX => Err(INVALID_NAME),
            Planted::NameOneOver if len == NAME_LEN_MAX + 1 => {
                validate_name(name.get(..len - 1).unwrap_or_default())
            }
            Planted::NameCharsUnchecked if (1..=NAME_LEN_MAX).contains(&len) => Ok(()),
            _ => valid,
        }
    }

    /// [`Planted::RequestExtraFieldIgnored`]: the request `body` parses as, given how it
    /// parsed (its last field dropped, where it had one too many).
    pub(super) fn planted_request(
        &self,
        body: &[u8],
        parsed: Result<Request, RequestError>,
    ) -> Result<Request, RequestError> {
        let extra = matches!(parsed, Err(RequestError::ExtraFields { .. }));
        match body.iter().rposition(|&b| b == b'\n') {
            Some(cut) if extra && self.config.planted == Planted::RequestExtraFieldIgnored => {
                parse_request(&body[..cut])
            }
            _ => parsed,
        }
    }

    /// [`Planted::PeerSlotNotReleased`]: the address whose slot a closing connection gives
    /// back (one that holds none, when planted).
    pub(super) fn planted_peer_slot(&self, peer: Peer) -> Peer {
        if self.config.planted == Planted::PeerSlotNotReleased {
            Peer(u128::MAX)
        } else {
            peer
        }
    }

    /// [`Planted::RelayKeepsHandshakeDeadline`]: the rest of `bind_relay`, without cancelling
    /// the connection's handshake deadline.
    pub(super) fn planted_bind_keeping_deadline(&mut self, conn: ConnId, account: AccountId) {
        self.sessions.get_mut(&account).expect("checked by relay_binding").relay = Some(conn);
        self.pump(account);
    }

    /// [`Planted::AckAnyAccount`]: applies acknowledged `ids` to whichever account holds each.
    /// Returns whether it did (the caller then stops).
    pub(super) fn planted_ack_any_account(&mut self, ids: &[MsgId]) -> bool {
        if self.config.planted != Planted::AckAnyAccount {
            return false;
        }
        for &id in ids {
            let owner = self
                .accounts
                .iter()
                .find(|(_, a)| a.queue.binary_search_by_key(&id, |q| q.id).is_ok())
                .map(|(&account, _)| account);
            if let Some(to) = owner {
                self.commit(Record::Delivered { to, ids: vec![id] });
                self.pump(to);
            }
        }
        true
    }

    /// The name a list shows ([`Planted::ListShowsLowercase`] shows its lower-cased key).
    pub(super) fn planted_list_spelling(&self, name: &str) -> String {
        if self.config.planted == Planted::ListShowsLowercase {
            name_key(name)
        } else {
            name.to_owned()
        }
    }

    /// The frame limit of a connection that is not logged in ([`Planted::FrameAtLimitRefused`]
    /// makes it one short).
    pub(super) fn planted_limit_before_login(&self, limit: usize) -> usize {
        if self.config.planted == Planted::FrameAtLimitRefused {
            limit - 1
        } else {
            limit
        }
    }

    /// The frame limit of a logged-in connection ([`Planted::FrameOverLimitAccepted`] makes it
    /// one over).
    pub(super) fn planted_limit_logged_in(&self, limit: usize) -> usize {
        if self.config.planted == Planted::FrameOverLimitAccepted {
            limit + 1
        } else {
            limit
        }
    }

    /// The frame limit of a bound relay ([`Planted::RelayLimitFromCommand`] makes it the
    /// command channel's).
    pub(super) fn planted_relay_limit(&self, limit: usize) -> usize {
        if self.config.planted == Planted::RelayLimitFromCommand {
            self.config.frame_len_max
        } else {
            limit
        }
    }

    /// The durable lsn the outbox releases against: [`Planted::ReplyBeforeDurable`] treats
    /// everything as durable while the next output is a send's acknowledgement.
    #[cfg(any(test, feature = "planted"))]
    pub(super) fn planted_release_bound(&self) -> Lsn {
        let ack = |o: &Output| matches!(o, Output::Reply { frame, .. } if frame.ends_with(reply::SEND_OK.as_bytes()));
        let planted = self.config.planted == Planted::ReplyBeforeDurable;
        if planted && self.outbox.next_gated().is_some_and(ack) {
            self.last_lsn
        } else if self.config.planted == Planted::ReleaseOneEarly {
            Lsn(self.durable_lsn.0 + 1).min(self.last_lsn)
        } else {
            self.durable_lsn
        }
    }

    /// Hook in `apply(Delete)`: remembers what the deletion should have forgotten.
    pub(super) fn planted_bury(&mut self, name: &str, queue: &VecDeque<Queued>) {
        if matches!(self.config.planted, Planted::DeleteKeepsQueue | Planted::ListShowsDeleted) {
            self.graveyard.push((name.to_owned(), queue.clone()));
        }
    }

    /// Hook in `apply(Register)`: the new account inherits the queue of a deleted namesake.
    pub(super) fn planted_adopt_queue(&mut self, account: AccountId) {
        if self.config.planted != Planted::DeleteKeepsQueue {
            return;
        }
        let key = name_key(&self.accounts[&account].name);
        let Some(at) = self.graveyard.iter().position(|(name, _)| name_key(name) == key) else {
            return;
        };
        let (_, queue) = self.graveyard.remove(at);
        self.queued_bytes += queue.iter().map(|q| queued_cost(&q.text)).sum::<u64>();
        Arc::make_mut(self.accounts.get_mut(&account).expect("just registered")).queue = queue;
    }

    /// Hook in `log_in`: a takeover drops the oldest queued message.
    pub(super) fn planted_takeover_loss(&mut self, account: AccountId) {
        if self.config.planted != Planted::TakeoverLosesMessage
            || !self.sessions.contains_key(&account)
        {
            return;
        }
        let account = self.accounts.get_mut(&account).expect("logged-in account");
        let queue = &mut Arc::make_mut(account).queue;
        if let Some(lost) = queue.pop_front() {
            self.queued_bytes -= queued_cost(&lost.text);
        }
    }

    /// Hook in `list`: deleted names are listed too.
    pub(super) fn planted_list_deleted(&self, text: &mut String) {
        if self.config.planted == Planted::ListShowsDeleted {
            for (name, _) in &self.graveyard {
                text.push_str(name);
                text.push(' ');
            }
        }
    }

    /// [`Planted::DropOnDetach`]: marks the first queued message of `account` delivered.
    pub(super) fn planted_drop_first(&mut self, account: AccountId) {
        let first = self.accounts.get(&account).and_then(|a| a.queue.front()).map(|q| q.id);
        if let Some(id) = first {
            self.commit(Record::Delivered { to: account, ids: vec![id] });
        }
    }

    /// [`Planted::RequeueOutOfOrder`]: on a fresh relay, pushes the first two queued messages
    /// swapped. Returns whether it did (the caller then pushes the rest as usual).
    pub(super) fn planted_swap_first_two(&mut self, account: AccountId, relay: ConnId) -> bool {
        let Some(Role::Relay(binding)) = self.conns.get_mut(&relay).map(|c| &mut c.role) else {
            return false;
        };
        let Some(state) = self.accounts.get(&account) else { return false };
        if binding.pushed_through != MsgId(0) || state.queue.len() < 2 {
            return false;
        }
        for index in [1, 0] {
            let queued = &state.queue[index];
            let frame = if binding.acks {
                reply::push_acked(queued.id.0, &queued.from, &queued.text)
            } else {
                reply::push_plain(&queued.from, &queued.text)
            };
            let output = Output::Push { conn: relay, msg: queued.id, frame };
            self.outbox.push_gated(self.last_lsn, output);
        }
        binding.pushed_through = state.queue[1].id;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Planted;

    /// [`Planted::ALL`] lists every bug once: the match below is exhaustive, so a new variant
    /// does not compile until it gets its place in `ALL` here (and `ALL` must hold it there).
    #[test]
    fn every_bug_is_listed_once() {
        let place = |bug: Planted| match bug {
            Planted::None => None,
            Planted::InboundUnbounded => Some(0),
            Planted::DeleteKeepsQueue => Some(1),
            Planted::TakeoverLosesMessage => Some(2),
            Planted::ListShowsDeleted => Some(3),
            Planted::DropOnDetach => Some(4),
            Planted::ReplyBeforeDurable => Some(5),
            Planted::BindByNameOnly => Some(6),
            Planted::RequeueOutOfOrder => Some(7),
            Planted::PipelineUnbounded => Some(8),
            Planted::PushBeforeOldRelayEnds => Some(9),
            Planted::HostReadsWhileOwed => Some(10),
            Planted::HostClosesEarly => Some(11),
            Planted::HostAssumesSyncSink => Some(12),
            Planted::BareRelayByDefault => Some(13),
            Planted::ThrottleCountedLate => Some(14),
            Planted::ThrottleLocksOwner => Some(15),
            Planted::RegistrationUnlimited => Some(16),
            Planted::EmptyTextAccepted => Some(17),
            Planted::ReplayTornRecord => Some(18),
            Planted::AckAnyAccount => Some(19),
            Planted::TicketReusable => Some(20),
            Planted::TicketExpiryLeftToSweep => Some(21),
            Planted::SendNameCaseSensitive => Some(22),
            Planted::ListPrefixStopsAtStarOnly => Some(23),
            Planted::FrameAtLimitRefused => Some(24),
            Planted::FrameOverLimitAccepted => Some(25),
            Planted::ThrottleFreeOffByOne => Some(26),
            Planted::ReleaseOneEarly => Some(27),
            Planted::RelayLimitFromCommand => Some(28),
            Planted::ThrottleNameCaseSensitive => Some(29),
            Planted::DeleteIgnoresName => Some(30),
            Planted::DeleteSkipsPassword => Some(31),
            Planted::ListShowsLowercase => Some(32),
            Planted::CloseKeepsSession => Some(33),
            Planted::FrameDeadlineRearmed => Some(34),
            Planted::ListPatternLimitExclusive => Some(35),
            Planted::PasswordLimitExclusive => Some(36),
            Planted::ThrottleSuccessClearsAddress => Some(37),
            Planted::LoginDeadlineRearmed => Some(38),
            Planted::WrittenDoesNotPump => Some(39),
            Planted::AbandonedCheckKeepsSlot => Some(40),
            Planted::QueueOneOverBound => Some(41),
            Planted::LogoutKeepsFrameLimit => Some(42),
            Planted::LogoutArmsNoDeadline => Some(43),
            Planted::SaltNotDrawn => Some(44),
            Planted::PeerSlotNotReleased => Some(45),
            Planted::SnapshotLowercasesNames => Some(46),
            Planted::AccountsOneOverCap => Some(47),
            Planted::RelayKeepsHandshakeDeadline => Some(48),
            Planted::BareRelayAnyTime => Some(49),
            Planted::BareRelayAnyAddress => Some(50),
            Planted::BareRefusalFramed => Some(51),
            Planted::TicketBindsAtExpiry => Some(52),
            Planted::ListReplyOneByteShort => Some(53),
            Planted::SendDoesNotPump => Some(54),
            Planted::ThrottleBackoffUncapped => Some(55),
            Planted::HashSaltIgnored => Some(56),
            Planted::HashCostIgnored => Some(57),
            Planted::DummyHashCheapest => Some(58),
            Planted::RecoveryForgetsLogSize => Some(59),
            Planted::DeadlineFlagInSeconds => Some(60),
            Planted::TicketEvictsNewest => Some(61),
            Planted::PushWindowOneOver => Some(62),
            Planted::BareWindowExclusive => Some(63),
            Planted::TimersFireLate => Some(64),
            Planted::SweepNotRearmed => Some(65),
            Planted::PipelineOneOver => Some(66),
            Planted::InboundBoundExclusive => Some(67),
            Planted::RelayPartialWriteUnreported => Some(68),
            Planted::RelayReaderNotRearmed => Some(69),
            Planted::CommandWriteFailureIgnored => Some(70),
            Planted::HashSlotNotHandedOn => Some(71),
            Planted::FrameDeadlineSpansFrames => Some(72),
            Planted::TimersNeverDue => Some(73),
            Planted::FrameFlagKeepsInboundBound => Some(74),
            Planted::ReplaySkipsDelivered => Some(75),
            Planted::TicketOldestByExpiry => Some(76),
            Planted::InboundBoundWithoutRead => Some(77),
            Planted::TicketsOneOver => Some(78),
            Planted::ListScanOneShort => Some(79),
            Planted::ListReplyOneByteOver => Some(80),
            Planted::ConnectionsOneShort => Some(81),
            Planted::StoreFullAtBound => Some(82),
            Planted::DeleteKeepsQueuedBytes => Some(83),
            Planted::ThrottleWaitRoundedDown => Some(84),
            Planted::SendTextFirstLine => Some(85),
            Planted::HeaderLeadingSpaceRefused => Some(86),
            Planted::NameLimitExclusive => Some(87),
            Planted::NameOneOver => Some(88),
            Planted::NameCharsUnchecked => Some(89),
            Planted::RequestExtraFieldIgnored => Some(90),
            Planted::RecoveryReadsUnsynced => Some(91),
            Planted::ThrottleSuccessKeepsStreak => Some(92),
            Planted::ThrottleDoublingLate => Some(93),
            Planted::RegistrationWaitNewest => Some(94),
            Planted::SnapshotSegmentNameUnsynced => Some(95),
            Planted::DetachAnyRelay => Some(96),
            Planted::TicketOutlivesSession => Some(97),
            Planted::SnapshotFreesFirstCovered => Some(98),
            Planted::ThroughRestWhole => Some(99),
            Planted::WakeOwedOnce => Some(100),
            Planted::ReadAheadPastPipeline => Some(101),
            Planted::DurableBeforeSync => Some(102),
            Planted::SyncedReportsLast => Some(103),
            Planted::StopWhileSyncing => Some(104),
            Planted::SyncWhileSyncing => Some(105),
            Planted::ThrottleSweepsInFlight => Some(106),
            Planted::TimerMissesEarlierDeadline => Some(107),
        };
        for (index, bug) in Planted::ALL.into_iter().enumerate() {
            assert_eq!(place(bug), Some(index), "{bug:?}");
            assert_eq!(Planted::from_name(&bug.name()), Some(bug));
        }
        assert_eq!(Planted::from_name("None"), Some(Planted::None));
        assert_eq!(Planted::from_name("NoSuchBug"), None);
    }
}
