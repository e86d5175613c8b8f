//! When the server acts on a deadline, judged from facts only the simulated world knows: when
//! each connection was opened, which bytes the server read from it and when, when the server
//! hung it up (the first moment its thread's mailbox is closed) and the replies its writer
//! took. No client knows when its bytes reached the server or when the server read them, so
//! the rest of the checker cannot tell a deadline that fires late, is re-armed by a request,
//! or runs over a frame that is not late. The rules, from PROTOCOL.md ("a connection must log
//! in within 60 s") and README's limits table (the login deadline, which also bounds a relay's
//! handshake; the frame deadline):
//!
//! - *The login deadline is kept*: a connection opened at `A` that the server had read no
//!   request from that may log in (a login or register, or anything this checker cannot tell
//!   apart from one) by `A + login_deadline_ms`, or a relay no frame of which it had read by
//!   then, is hung up by then (a simulated timer fires at its millisecond: no granularity
//!   to allow). A successful logout arms it again from its reply: a connection whose
//!   `Logging out` reply was taken at `W` is hung up by `W + login_deadline_ms` unless a
//!   request after the logout that may log in was read by then. Other requests do not extend
//!   it. Judged when the connection is hung up, ends or the server crashes, or at the end.
//! - *The frame deadline is kept*: a frame the server has read part of, not all, while its
//!   command thread stayed blocked in `read` (the host letting it read: the server is then
//!   waiting on the sender, not on itself), hangs the connection up `frame_deadline_ms` after
//!   its first byte was read or the thread went back to `read`, the later.
//! - *Neither deadline fires early*: a login or handshake deadline notice hangs up no
//!   connection before `A + login_deadline_ms`, and a frame deadline notice on a command
//!   connection needs a frame the server had read part of, and not all, for at least
//!   `frame_deadline_ms` before the hang-up (its first byte's read begins the wait; the
//!   server's clock may start later, never earlier), and still not all read when it began.
//!
//! - *A bare handshake binds only in its window*: a bare relay handshake (a name, no ticket
//!   line) the server bound (it wrote a push on the relay) was read within
//!   `bare_relay_window_ms` of a successful login or register of that name read before it
//!   (of its reply, at the latest: the login took effect between the two).
//!
//! What a client sees waits until every record written before it is durable, so a hang-up
//! owed at `T` may reach the connection once the records written by `T` are durable.
//!
//! Frames are split by the header PROTOCOL.md describes; a header this checker cannot read
//! ends its judgement of that connection's frames (it is closed by the server anyway).

use std::collections::{BTreeMap, VecDeque};

use super::super::spec::text::{LOGIN_OK, LOGOUT_OK, REGISTER_OK};
use super::super::spec::{self, Notice};
use super::{Checker, ConnNo};

pub(super) const HEADER_LEN: usize = 10;
/// The body bytes kept of each frame: a code line and a name (32 characters at most).
const BODY_HEAD_LEN: usize = 40;

/// What a request read may do to the login deadline, by its code line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A login or register, or a body this checker cannot tell from one.
    MayLogIn,
    /// A logout (`-1`), with how many requests that may log in were read before it.
    Logout {
        logins_before: usize,
    },
    Other,
}

/// What the checker knows of one open connection.
#[derive(Debug, Clone)]
struct ConnTimes {
    command: bool,
    opened_ms: u64,
    header: Vec<u8>,
    /// The body bytes still to come of the frame being read (after its header).
    body_left: usize,
    /// The first bytes of the body being read (enough to tell its code).
    body_head: Vec<u8>,
    body_len: usize,
    /// When the server read the first byte of the frame it has read part of.
    partial_since_ms: Option<u64>,
    /// Frames whose reading took at least the frame deadline, from first byte to last.
    slow_frames: Vec<(u64, u64)>,
    /// While the command thread is blocked in `read`: since when it has been, counting a
    /// read it went back to `read` from in the same millisecond as no pause.
    reading_since_ms: Option<u64>,
    /// The last read, with the stretch of reading it ended (to go on with, if the thread
    /// reads again at once).
    last_read: Option<(u64, Option<u64>)>,
    /// The frames stopped making sense (a header PROTOCOL.md forbids, a reply with no request).
    lost_track: bool,
    /// Complete requests read and not yet answered, oldest first, with the name a login or
    /// register names and when it was read.
    unanswered: VecDeque<(Kind, Option<(String, u64)>)>,
    /// A relay's handshake: when it was read, and its name if it was bare (no ticket line).
    hello: Option<(u64, Option<String>)>,
    /// Whether a push proved the relay bound (judged once).
    bound: bool,
    /// When each request that may log in (on a relay: each frame) was read.
    logins_read_ms: Vec<u64>,
    /// The time by which the server must have hung up, and the requests that may log in
    /// read before the deadline was armed (only a later one excuses it).
    close_by: Option<(u64, usize)>,
    /// When the server hung it up, with the frame then part read.
    closed: Option<(u64, Option<u64>)>,
}

/// The connections' times and the deadlines configured.
#[derive(Debug, Default, Clone)]
pub(super) struct Deadlines {
    login_deadline_ms: Option<u64>,
    frame_deadline_ms: u64,
    conns: BTreeMap<ConnNo, ConnTimes>,
    /// By name: each successful login or register, as (its request read, its reply taken).
    logins: BTreeMap<String, Vec<(u64, u64)>>,
    /// Each record's lsn when the server wrote it, and each sync's (time, lsn), since the
    /// last crash: what a client sees waits until every record written before it is durable.
    persisted: Vec<(u64, u64)>,
    durable: Vec<(u64, u64)>,
}

impl Deadlines {
    /// When a hang-up the server decided at `at_ms` may reach its connection: at once, or, if
    /// records written by then were not yet durable, once they are (PROTOCOL.md's "never
    /// lost": what a client sees waits for the disk). `None`: not yet.
    fn visible_by(&self, at_ms: u64) -> Option<u64> {
        let written = self.persisted.partition_point(|&(t, _)| t <= at_ms);
        let Some(&(_, lsn)) = written.checked_sub(1).map(|i| &self.persisted[i]) else {
            return Some(at_ms);
        };
        let synced = self.durable.iter().find(|&&(_, durable)| durable >= lsn)?;
        Some(synced.0.max(at_ms))
    }
}

impl ConnTimes {
    /// Reads `bytes`, read at `now_ms`, frame by frame.
    fn read(&mut self, now_ms: u64, bytes: &[u8], frame_deadline_ms: u64) {
        let mut rest = bytes;
        while !rest.is_empty() && !self.lost_track {
            self.partial_since_ms.get_or_insert(now_ms);
            if self.header.len() < HEADER_LEN {
                let n = rest.len().min(HEADER_LEN - self.header.len());
                self.header.extend_from_slice(&rest[..n]);
                rest = &rest[n..];
                if self.header.len() == HEADER_LEN {
                    self.start_body();
                }
            } else {
                let n = rest.len().min(self.body_left);
                let keep = n.min(BODY_HEAD_LEN.saturating_sub(self.body_head.len()));
                self.body_head.extend_from_slice(&rest[..keep]);
                self.body_left -= n;
                rest = &rest[n..];
            }
            if self.header.len() == HEADER_LEN && self.body_left == 0 && !self.lost_track {
                self.frame_read(now_ms, frame_deadline_ms);
            }
        }
    }

    fn start_body(&mut self) {
        let text = std::str::from_utf8(&self.header).unwrap_or("x");
        let digits = text.trim_matches(' ');
        let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        match digits.parse::<usize>() {
            Ok(len) if plain => (self.body_len, self.body_left) = (len, len),
            _ => self.lost_track = true,
        }
    }

    fn frame_read(&mut self, now_ms: u64, frame_deadline_ms: u64) {
        let since_ms = self.partial_since_ms.unwrap_or(now_ms);
        if since_ms + frame_deadline_ms <= now_ms {
            self.slow_frames.push((since_ms, now_ms));
        }
        let kind = if self.command { self.kind() } else { Kind::MayLogIn };
        if kind == Kind::MayLogIn {
            self.logins_read_ms.push(now_ms);
        }
        if self.command {
            let name = matches!(self.body_head.get(..2), Some(b"1\n" | b"3\n"))
                .then(|| self.second_line())
                .flatten();
            self.unanswered.push_back((kind, name.map(|name| (name, now_ms))));
        } else if self.hello.is_none() {
            let bare = !self.body_head.contains(&b'\n') && self.body_len <= BODY_HEAD_LEN;
            let name = String::from_utf8_lossy(&self.body_head).into_owned();
            self.hello = Some((now_ms, bare.then_some(name)));
        }
        self.header.clear();
        self.body_head.clear();
        self.partial_since_ms = None;
    }

    /// The request's kind by its code line (PROTOCOL.md's codes).
    fn kind(&self) -> Kind {
        let head = &self.body_head;
        let code = match head.iter().position(|&b| b == b'\n') {
            Some(end) => &head[..end],
            None if self.body_len <= head.len() => &head[..],
            None => return Kind::MayLogIn,
        };
        match code {
            b"-1" => Kind::Logout { logins_before: self.logins_read_ms.len() },
            b"0" | b"2" | b"4" | b"5" | b"6" | b"7" => Kind::Other,
            _ => Kind::MayLogIn,
        }
    }

    /// The name on a request's second line (a login's or a register's).
    fn second_line(&self) -> Option<String> {
        let body = std::str::from_utf8(&self.body_head).ok()?;
        let name = body.split('\n').nth(1)?;
        (body.matches('\n').count() >= 2).then(|| spec::name_key(name))
    }

    /// The first request that may log in read after the first `before`, if read by `by_ms`.
    fn logged_in_by(&self, before: usize, by_ms: u64) -> bool {
        self.logins_read_ms.get(before).is_some_and(|&at| at <= by_ms)
    }
}

impl Checker {
    /// The deadlines the server runs with (the world's configuration).
    pub fn set_deadlines(&mut self, login_deadline_ms: u64, frame_deadline_ms: u64) {
        self.deadlines.login_deadline_ms = Some(login_deadline_ms);
        self.deadlines.frame_deadline_ms = frame_deadline_ms;
    }

    /// The server accepted connection `conn` at `now_ms` (`command`: on the command port).
    pub fn conn_opened(&mut self, now_ms: u64, conn: ConnNo, command: bool, peer: u128) {
        self.caps_opened(conn, peer);
        if command {
            self.server_conns.insert(conn);
        }
        let Some(deadline_ms) = self.deadlines.login_deadline_ms else { return };
        let times = ConnTimes {
            command,
            opened_ms: now_ms,
            header: Vec::new(),
            body_left: 0,
            body_head: Vec::new(),
            body_len: 0,
            partial_since_ms: None,
            slow_frames: Vec::new(),
            // A command thread starts blocked in `read`.
            reading_since_ms: command.then_some(now_ms),
            last_read: None,
            lost_track: false,
            unanswered: VecDeque::new(),
            hello: None,
            bound: false,
            logins_read_ms: Vec::new(),
            close_by: Some((now_ms + deadline_ms, 0)),
            closed: None,
        };
        self.deadlines.conns.insert(conn, times);
    }

    /// The server read `bytes` from `conn` at `now_ms`.
    pub fn server_read(&mut self, now_ms: u64, conn: ConnNo, bytes: &[u8]) {
        self.judge_frame_deadline(now_ms, conn);
        let frame_deadline_ms = self.deadlines.frame_deadline_ms;
        if let Some(times) = self.deadlines.conns.get_mut(&conn) {
            if times.closed.is_none() {
                times.read(now_ms, bytes, frame_deadline_ms);
                times.last_read = Some((now_ms, times.reading_since_ms.take()));
            }
        }
    }

    /// Command connection `conn`'s thread blocked in `read` at `now_ms` (the host let it read).
    pub fn conn_reading(&mut self, now_ms: u64, conn: ConnNo) {
        let Some(times) = self.deadlines.conns.get_mut(&conn) else { return };
        let since_ms = match times.last_read {
            Some((read_ms, Some(since_ms))) if read_ms == now_ms => since_ms,
            _ => now_ms,
        };
        times.reading_since_ms.get_or_insert(since_ms);
    }

    /// A frame the server has read part of, while it read on, must not outlive the frame
    /// deadline (from its first byte's read or the server's return to `read`, the later):
    /// judged at `now_ms`, when more is read, the connection is hung up, or the run ends.
    fn judge_frame_deadline(&mut self, now_ms: u64, conn: ConnNo) {
        let Some(times) = self.deadlines.conns.get(&conn) else { return };
        let (Some(part_ms), Some(reading_ms)) = (times.partial_since_ms, times.reading_since_ms)
        else {
            return;
        };
        if !times.command || times.lost_track || times.closed.is_some() {
            return;
        }
        let by_ms = part_ms.max(reading_ms) + self.deadlines.frame_deadline_ms;
        let visible_ms = self.deadlines.visible_by(by_ms);
        let in_time = visible_ms.is_none_or(|visible_ms| now_ms <= visible_ms);
        let invariant = "a frame left incomplete past the frame deadline closes its connection";
        self.expect(in_time, now_ms, invariant, || {
            format!(
                "connection {conn}: part of a frame read at {part_ms} ms, the server reading \
                 since {reading_ms} ms, owed a hang-up by {by_ms} ms (visible by \
                 {visible_ms:?} ms), still open"
            )
        });
    }

    /// The writer of command connection `conn` took the frames `frames` at `now_ms` (whole,
    /// headers included): each reply answers the oldest request read and not yet answered.
    pub fn command_frames_taken<'a>(
        &mut self,
        now_ms: u64,
        conn: ConnNo,
        frames: impl IntoIterator<Item = &'a [u8]>,
    ) {
        for frame in frames {
            let text = String::from_utf8_lossy(frame.get(HEADER_LEN..).unwrap_or_default());
            let body = text.strip_prefix("-1\n").or_else(|| text.strip_prefix("0\n"));
            let notice = text.strip_prefix("-1\n").and_then(Notice::of);
            match notice {
                Some(notice) => self.deadline_notice(now_ms, conn, notice, &text),
                None => self.reply_taken(now_ms, conn, body),
            }
        }
    }

    fn reply_taken(&mut self, now_ms: u64, conn: ConnNo, body: Option<&str>) {
        let login_deadline_ms = self.deadlines.login_deadline_ms.unwrap_or(0);
        let Some(times) = self.deadlines.conns.get_mut(&conn) else { return };
        let logged_in = body.is_some_and(|body| body == LOGIN_OK || body == REGISTER_OK);
        match times.unanswered.pop_front() {
            Some((Kind::Logout { logins_before }, _))
                if body == Some(LOGOUT_OK) && !times.lost_track =>
            {
                times.close_by = Some((now_ms + login_deadline_ms, logins_before));
            }
            Some((_, Some((name, read_ms)))) if logged_in && !times.lost_track => {
                self.deadlines.logins.entry(name).or_default().push((read_ms, now_ms));
            }
            Some(_) => {}
            None => times.lost_track = true,
        }
    }

    /// The server wrote (or tried) a push on relay `conn` at `now_ms`: its handshake bound it.
    /// A bare handshake binds only a session that "logged in moments ago" (PROTOCOL.md),
    /// within `bare_relay_window_ms` of the login: some login of that name read before the
    /// handshake must have had its reply taken no earlier than the window before it, or not
    /// yet (the login took effect between its read and its reply).
    pub fn relay_pushed(&mut self, now_ms: u64, conn: ConnNo) {
        let window_ms = self.bare_relay_window_ms;
        let Some(times) = self.deadlines.conns.get_mut(&conn) else { return };
        let (Some((hello_ms, Some(name))), false) = (times.hello.clone(), times.bound) else {
            return;
        };
        times.bound = true;
        let key = spec::name_key(&name);
        let logins = self.deadlines.logins.get(&key).cloned().unwrap_or_default();
        // A login read before the handshake and not yet answered may have taken effect as
        // late as the handshake's read (answered too late to be among `logins`: small swarm
        // seed 654 of 2 clients and 1 name, a login read a millisecond before).
        let unanswered = self.deadlines.conns.values().any(|times| {
            let mut reads = times.unanswered.iter().filter_map(|(_, login)| login.as_ref());
            reads.any(|(name, read_ms)| *name == key && *read_ms <= hello_ms)
        });
        let in_window = unanswered
            || logins
                .iter()
                .any(|&(read_ms, ok_ms)| read_ms <= hello_ms && ok_ms + window_ms >= hello_ms);
        let invariant = "a bare handshake binds only within its window after the login";
        self.expect(in_window, now_ms, invariant, || {
            format!(
                "relay {conn}'s bare handshake as {name:?}, read at {hello_ms} ms, bound; \
                 logins of that name (read, answered): {logins:?}, window {window_ms} ms"
            )
        });
    }

    /// A close notice was taken: the hang-up it announces was not early.
    fn deadline_notice(&mut self, now_ms: u64, conn: ConnNo, notice: Notice, text: &str) {
        let (login_ms, frame_ms) =
            (self.deadlines.login_deadline_ms.unwrap_or(0), self.deadlines.frame_deadline_ms);
        let Some(times) = self.deadlines.conns.get(&conn) else { return };
        let Some((closed_ms, partial_since_ms)) = times.closed else { return };
        let (ok, invariant) = match notice {
            Notice::LoginDeadline | Notice::RelayHandshakeDeadline => (
                closed_ms >= times.opened_ms + login_ms,
                "no connection is closed for its login deadline before it",
            ),
            Notice::FrameDeadline if !times.lost_track => (
                partial_since_ms.is_some_and(|since_ms| since_ms + frame_ms <= closed_ms)
                    || times
                        .slow_frames
                        .iter()
                        .any(|&(since_ms, read_ms)| since_ms + frame_ms <= read_ms.min(closed_ms)),
                "no connection is closed for a slow frame unless one was owed that long",
            ),
            _ => return,
        };
        let opened_ms = times.opened_ms;
        self.expect(ok, now_ms, invariant, || {
            format!(
                "connection {conn} (opened at {opened_ms} ms, part of a frame read since \
                 {partial_since_ms:?}) was hung up at {closed_ms} ms with {text:?}"
            )
        });
    }

    /// The server hung `conn` up (or the connection ended) at `now_ms`: the deadline it owed
    /// is judged; the first such moment counts.
    pub fn conn_closed(&mut self, now_ms: u64, conn: ConnNo) {
        let Some(times) = self.deadlines.conns.get_mut(&conn) else { return };
        if times.closed.is_none() {
            self.judge_frame_deadline(now_ms, conn);
            let times = self.deadlines.conns.get_mut(&conn).expect("judged, not removed");
            times.closed = Some((now_ms, times.partial_since_ms));
            // Hung up as its bare handshake was read, before anything was written on it.
            let refused = match (&times.hello, times.bound) {
                (Some((read_ms, Some(name))), false) if *read_ms == now_ms => Some(name.clone()),
                _ => None,
            };
            self.judge_login_deadline(now_ms, conn);
            if let Some(name) = refused {
                self.bare_refused(now_ms, conn, &name);
            }
        }
    }

    /// `conn`'s threads are gone: nothing more is judged of it.
    pub fn conn_ended(&mut self, now_ms: u64, conn: ConnNo) {
        self.server_conns.remove(&conn);
        // Whatever was lost with it can no longer be carried out.
        for pending in self.lost_mutations.remove(&conn).unwrap_or_default() {
            self.end_request(now_ms, &pending, true);
        }
        self.caps_ended(conn);
        self.conn_closed(now_ms, conn);
        self.bare_relay_ended(conn);
        self.deadlines.conns.remove(&conn);
    }

    /// The server crashed at `now_ms`, ending every connection (and its disk's history: a
    /// recovery may use lost records' lsns again).
    pub fn deadlines_crashed(&mut self, now_ms: u64) {
        self.caps_crashed();
        let conns: Vec<ConnNo> = self.deadlines.conns.keys().copied().collect();
        for conn in conns {
            self.conn_ended(now_ms, conn);
        }
        self.deadlines.persisted.clear();
        self.deadlines.durable.clear();
    }

    /// The server wrote the record `lsn` at `now_ms`.
    pub fn record_written(&mut self, now_ms: u64, lsn: u64) {
        self.written_lsn = self.written_lsn.max(lsn);
        self.deadlines.persisted.push((now_ms, lsn));
    }

    /// The disk made every record up to `lsn` durable at `now_ms`.
    pub fn records_durable(&mut self, now_ms: u64, lsn: u64) {
        self.durable_lsn = self.durable_lsn.max(lsn);
        self.deadlines.durable.push((now_ms, lsn));
    }

    /// The run ends at `now_ms`: a connection still open owes the deadline it passed.
    pub(super) fn deadlines_finish(&mut self, now_ms: u64) {
        let conns: Vec<ConnNo> = self.deadlines.conns.keys().copied().collect();
        for conn in conns {
            if self.deadlines.conns[&conn].closed.is_none() {
                self.judge_login_deadline(now_ms, conn);
                self.judge_frame_deadline(now_ms, conn);
            }
        }
    }

    /// `conn` was still open at `now_ms` (and is closed then, or the run ends): it must not
    /// have owed a hang-up before.
    fn judge_login_deadline(&mut self, now_ms: u64, conn: ConnNo) {
        let Some(times) = self.deadlines.conns.get(&conn) else { return };
        let Some((by_ms, before)) = times.close_by else { return };
        let excused = times.lost_track || times.logged_in_by(before, by_ms);
        let visible_ms = self.deadlines.visible_by(by_ms);
        let in_time = visible_ms.is_none_or(|visible_ms| now_ms <= visible_ms);
        let kind = if times.command { "command connection" } else { "relay" };
        let invariant = "a connection that has not logged in by its deadline is closed";
        self.expect(excused || in_time, now_ms, invariant, || {
            format!(
                "{kind} {conn} owed a hang-up by {by_ms} ms (visible by {visible_ms:?} ms) \
                 and was still open after it"
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &str) -> Vec<u8> {
        let mut bytes = format!("{:<10}", body.len()).into_bytes();
        bytes.extend_from_slice(body.as_bytes());
        bytes
    }

    fn checker() -> Checker {
        let mut checker = Checker::new(60_000, 10_000);
        checker.set_deadlines(100, 50);
        checker.conn_opened(0, ConnNo(1), true, 1);
        checker
    }

    #[test]
    fn a_connection_open_past_its_login_deadline_fails_unless_a_login_was_read() {
        let mut late = checker();
        late.server_read(10, ConnNo(1), &frame("0\n"));
        late.conn_closed(101, ConnNo(1));
        assert!(late.violation().is_some());

        let mut logged_in = checker();
        logged_in.server_read(10, ConnNo(1), &frame("1\nu1\npw"));
        logged_in.conn_closed(500, ConnNo(1));
        assert!(logged_in.violation().is_none());

        let mut in_time = checker();
        in_time.conn_closed(100, ConnNo(1));
        assert!(in_time.violation().is_none());
    }

    #[test]
    fn a_logout_arms_the_deadline_again_from_its_reply() {
        let mut checker = checker();
        let mut bytes = frame("1\nu1\npw");
        bytes.extend(frame("-1\n"));
        checker.server_read(10, ConnNo(1), &bytes);
        let (ok, bye) = (frame("0\nSuccessful Login"), frame("0\nLogging out"));
        checker.command_frames_taken(20, ConnNo(1), [&ok[..], &bye[..]]);
        checker.deadlines_finish(120);
        assert!(checker.violation().is_none(), "{:?}", checker.violation());
        checker.deadlines_finish(121);
        assert!(checker.violation().is_some());
    }

    #[test]
    fn a_frame_left_incomplete_while_the_server_reads_on_must_close_its_connection() {
        let mut late = checker();
        late.server_read(10, ConnNo(1), &frame("0\n")[..5]);
        late.conn_reading(10, ConnNo(1));
        late.server_read(59, ConnNo(1), &frame("0\n")[5..8]);
        late.conn_reading(59, ConnNo(1));
        assert!(late.violation().is_none(), "{:?}", late.violation());
        late.server_read(61, ConnNo(1), &frame("0\n")[8..]);
        assert!(late.violation().is_some());

        // The server stopped reading (replies owed) from 30 to 40 ms: its clock starts again.
        let mut paused = checker();
        paused.server_read(10, ConnNo(1), &frame("0\n")[..5]);
        paused.server_read(30, ConnNo(1), &frame("0\n")[5..8]);
        paused.conn_reading(40, ConnNo(1));
        paused.conn_closed(90, ConnNo(1));
        assert!(paused.violation().is_none(), "{:?}", paused.violation());
    }

    #[test]
    fn a_frame_deadline_notice_needs_a_frame_owed_that_long() {
        let notice = frame("-1\nTimed out waiting for the rest of a frame (50 ms)");
        let mut early = checker();
        early.server_read(10, ConnNo(1), &frame("0\n")[..5]);
        early.conn_closed(59, ConnNo(1));
        early.command_frames_taken(59, ConnNo(1), [&notice[..]]);
        assert!(early.violation().is_some());

        let mut fair = checker();
        fair.server_read(10, ConnNo(1), &frame("0\n")[..5]);
        fair.conn_closed(60, ConnNo(1));
        fair.command_frames_taken(61, ConnNo(1), [&notice[..]]);
        assert!(fair.violation().is_none());
    }
}
