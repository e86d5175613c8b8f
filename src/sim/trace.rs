//! The run's trace: one fixed-format line per event, folded into a rolling hash.
//!
//! The hash names a run's behaviour: two runs with the same seed and options must produce the
//! same hash, and the first line where two traces differ is where determinism broke. Each event
//! is a typed [`Line`]; the hash folds the line's fields directly (a plain run never formats
//! text, which used to be a fifth of its time), and the text is formatted only when lines are
//! kept (`--trace`, replays that show the last events, determinism checks). Both modes fold the
//! same fields, so a kept run and a plain run of one seed have the same hash.

use std::fmt::{self, Write as _};

use crate::core::{Channel, ConnId, Record};

use super::net::Way;
use super::scenario::{channel_word, Action, Op};

/// The hash before any line.
const SEED: u64 = 0xcbf2_9ce4_8422_2325;
/// FxHash's multiplier: odd, so each fold step is a bijection of the state.
const MIX: u64 = 0x517c_c1b7_2722_0a95;

/// A rolling hash over words and byte strings, independent of the platform's endianness and
/// of the Rust version (unlike `std::hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fold(u64);

impl Fold {
    pub fn new() -> Self {
        Fold(SEED)
    }

    pub fn value(self) -> u64 {
        self.0
    }

    pub fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(MIX);
    }

    /// Folds the length, then the bytes eight at a time (so `"ab","c"` differs from `"a","bc"`).
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.word(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut last = [0u8; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(last));
    }
}

impl Default for Fold {
    fn default() -> Self {
        Fold::new()
    }
}

/// One event of a run; its `Display` is the trace line after the time.
#[derive(Debug, Clone, Copy)]
pub enum Line<'a> {
    Hashed {
        job: u64,
    },
    LivenessBegin {
        owed: usize,
    },
    LivenessMet,
    LivenessEnd,
    /// Nothing is in flight any more (`quiet`), or the world stopped waiting for that
    /// (`World::settle`).
    Settled {
        quiet: bool,
    },
    /// Every connection closed, time passes beyond every window (`World::rest`).
    RestBegin,
    RestEnd,
    Write {
        client: usize,
        conn: ConnId,
        len: usize,
    },
    Close {
        client: usize,
        conn: ConnId,
    },
    Sent {
        client: usize,
        op: &'a Op,
    },
    Reply {
        client: usize,
        body: &'a [u8],
    },
    Lost {
        client: usize,
    },
    Push {
        client: usize,
        conn: ConnId,
        sender: &'a str,
        text: &'a str,
    },
    Refused {
        client: usize,
        chan: Channel,
    },
    Open {
        client: usize,
        chan: Channel,
        conn: ConnId,
    },
    Deliver {
        conn: ConnId,
        way: Way,
        len: usize,
        eof: bool,
    },
    Persist {
        lsn: u64,
        record: &'a Record,
    },
    Flush {
        conn: ConnId,
        last: Option<u64>,
        close: bool,
    },
    /// The host wrote `len` bytes of pushes (through `last`, if one was whole) straight to an
    /// idle relay's socket.
    Through {
        conn: ConnId,
        len: usize,
        last: Option<u64>,
    },
    Snapshot {
        lsn: u64,
    },
    Durable {
        lsn: u64,
    },
    Tick,
    Fault {
        action: &'a Action,
    },
    Restart {
        lsn: u64,
    },
    /// A client did something hostile, or saw what a hostile act got: the kind is a
    /// [`super::scenario::Hostile::kind`] or an observation (`relay-refused`, ...); the
    /// coverage table counts these as `hostile:KIND`.
    Hostile {
        client: usize,
        kind: &'static str,
    },
}

impl Line<'_> {
    /// Folds every field the line's text shows, tagged by the kind of line.
    fn fold(&self, h: &mut Fold, scratch: &mut String) {
        match *self {
            Line::Hashed { job } => fold_words(h, 1, &[job]),
            Line::LivenessBegin { owed } => fold_words(h, 2, &[owed as u64]),
            Line::LivenessMet => h.word(3),
            Line::LivenessEnd => h.word(4),
            Line::Settled { quiet } => fold_words(h, 30, &[u64::from(quiet)]),
            Line::RestBegin => h.word(22),
            Line::RestEnd => h.word(23),
            Line::Write { client, conn: ConnId(conn), len } => {
                fold_words(h, 5, &[client as u64, conn, len as u64])
            }
            Line::Close { client, conn: ConnId(conn) } => fold_words(h, 6, &[client as u64, conn]),
            Line::Sent { client, op } => {
                fold_words(h, 7, &[client as u64]);
                fold_op(h, op);
            }
            Line::Reply { client, body } => {
                fold_words(h, 8, &[client as u64]);
                h.bytes(body);
            }
            Line::Lost { client } => fold_words(h, 9, &[client as u64]),
            Line::Push { client, conn: ConnId(conn), sender, text } => {
                fold_words(h, 10, &[client as u64, conn]);
                h.bytes(sender.as_bytes());
                h.bytes(text.as_bytes());
            }
            Line::Refused { client, chan } => fold_words(h, 11, &[client as u64, chan as u64]),
            Line::Open { client, chan, conn: ConnId(conn) } => {
                fold_words(h, 12, &[client as u64, chan as u64, conn])
            }
            Line::Deliver { conn: ConnId(conn), way, len, eof } => {
                fold_words(h, 13, &[conn, way as u64, len as u64, u64::from(eof)])
            }
            Line::Persist { lsn, record } => {
                fold_words(h, 14, &[lsn]);
                fold_record(h, record);
            }
            Line::Flush { conn: ConnId(conn), last, close } => {
                let last = last.map_or(u64::MAX, |m| m);
                fold_words(h, 15, &[conn, u64::from(last != u64::MAX), last, u64::from(close)])
            }
            Line::Through { conn: ConnId(conn), len, last } => {
                let last = last.map_or(u64::MAX, |m| m);
                fold_words(h, 24, &[conn, len as u64, last])
            }
            Line::Snapshot { lsn } => fold_words(h, 16, &[lsn]),
            Line::Durable { lsn } => fold_words(h, 17, &[lsn]),
            Line::Tick => h.word(18),
            Line::Fault { action } => {
                // Faults are rare: their text is their fields.
                scratch.clear();
                write!(scratch, "{action}").expect("writing to a String cannot fail");
                h.word(19);
                h.bytes(scratch.as_bytes());
            }
            Line::Restart { lsn } => fold_words(h, 20, &[lsn]),
            Line::Hostile { client, kind } => {
                fold_words(h, 21, &[client as u64]);
                h.bytes(kind.as_bytes());
            }
        }
    }
}

fn fold_words(h: &mut Fold, tag: u64, words: &[u64]) {
    h.word(tag);
    for &word in words {
        h.word(word);
    }
}

fn fold_op(h: &mut Fold, op: &Op) {
    let (tag, strings): (u64, [&str; 2]) = match op {
        Op::Connect => (1, ["", ""]),
        Op::Disconnect => (2, ["", ""]),
        Op::Help => (3, ["", ""]),
        Op::Register { name, password } => (4, [name, password]),
        Op::Login { name, password } => (5, [name, password]),
        Op::Send { to, text } => (6, [to, text]),
        Op::List { pattern } => (7, [pattern, ""]),
        Op::Delete { name, password } => (8, [name, password]),
        Op::Logout => (9, ["", ""]),
        Op::Relay { ticket: false } => (10, ["", ""]),
        Op::Relay { ticket: true } => (11, ["", ""]),
        Op::RelayAs { name } => (12, [name, ""]),
        Op::CloseRelay => (13, ["", ""]),
        Op::Idle => (14, ["", ""]),
        Op::Burst { to, .. } => (15, [to, ""]),
        Op::Hostile(hostile) => (16, [hostile.kind(), ""]),
    };
    h.word(tag);
    for s in strings {
        h.bytes(s.as_bytes());
    }
    if let Op::Burst { count, .. } = op {
        h.word(u64::from(*count));
    }
}

fn fold_record(h: &mut Fold, record: &Record) {
    match record {
        Record::Register { account, name, .. } => {
            fold_words(h, 1, &[account.0]);
            h.bytes(name.as_bytes());
        }
        Record::Delete { account } => fold_words(h, 2, &[account.0]),
        Record::Message { id, to, text, .. } => {
            fold_words(h, 3, &[id.0, to.0]);
            h.bytes(text.as_bytes());
        }
        Record::Delivered { to, ids } => fold_words(h, 4, &[to.0, ids.len() as u64]),
    }
}

impl fmt::Display for Line<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Line::Hashed { job } => write!(f, "hashed job={job}"),
            Line::LivenessBegin { owed } => write!(f, "liveness-begin owed={owed}"),
            Line::LivenessMet => f.write_str("liveness-met"),
            Line::LivenessEnd => f.write_str("liveness-end"),
            Line::Settled { quiet } => write!(f, "settled quiet={quiet}"),
            Line::RestBegin => f.write_str("rest-begin"),
            Line::RestEnd => f.write_str("rest-end"),
            Line::Write { client, conn: ConnId(conn), len } => {
                write!(f, "c{client} write conn={conn} len={len}")
            }
            Line::Close { client, conn: ConnId(conn) } => write!(f, "c{client} close conn={conn}"),
            Line::Sent { client, op } => write!(f, "c{client} sent {op}"),
            Line::Reply { client, body } => {
                write!(f, "c{client} reply {:?}", String::from_utf8_lossy(body))
            }
            Line::Lost { client } => write!(f, "c{client} lost"),
            Line::Push { client, conn: ConnId(conn), sender, text } => {
                write!(f, "c{client} push conn={conn} {sender}:{text}")
            }
            Line::Refused { client, chan } => write!(f, "c{client} refused {}", channel_word(chan)),
            Line::Open { client, chan, conn: ConnId(conn) } => {
                write!(f, "c{client} open {} conn={conn}", channel_word(chan))
            }
            Line::Deliver { conn: ConnId(conn), way, len, eof } => {
                write!(f, "deliver conn={conn} {way:?} len={len} eof={eof}")
            }
            Line::Persist { lsn, record } => {
                write!(f, "persist lsn={lsn} ")?;
                match record {
                    Record::Register { account, name, .. } => {
                        write!(f, "register a{} {name}", account.0)
                    }
                    Record::Delete { account } => write!(f, "delete a{}", account.0),
                    Record::Message { id, to, text, .. } => {
                        write!(f, "message m{} a{} {text}", id.0, to.0)
                    }
                    Record::Delivered { to, ids } => {
                        write!(f, "delivered a{} n={}", to.0, ids.len())
                    }
                }
            }
            Line::Flush { conn: ConnId(conn), last, close } => {
                write!(f, "flush conn={conn} last={last:?} close={close}")
            }
            Line::Through { conn: ConnId(conn), len, last } => {
                write!(f, "through conn={conn} len={len} last={last:?}")
            }
            Line::Snapshot { lsn } => write!(f, "snapshot lsn={lsn}"),
            Line::Durable { lsn } => write!(f, "durable lsn={lsn}"),
            Line::Tick => f.write_str("tick"),
            Line::Fault { action } => write!(f, "{action}"),
            Line::Restart { lsn } => write!(f, "restart lsn={lsn}"),
            Line::Hostile { client, kind } => write!(f, "c{client} hostile:{kind}"),
        }
    }
}

/// What the space-time diagram ([`super::diagram`]) needs of a kept [`Line`]: who, where, when,
/// owned (a `Line` borrows from the world). Its trace line is the kept line of the same index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Bytes a client wrote (they travel up to the server).
    Write {
        client: usize,
        conn: ConnId,
        len: usize,
    },
    Close {
        client: usize,
        conn: ConnId,
    },
    Sent {
        client: usize,
    },
    Reply {
        client: usize,
    },
    Lost {
        client: usize,
    },
    Push {
        client: usize,
        conn: ConnId,
    },
    Refused {
        client: usize,
        chan: Channel,
    },
    Open {
        client: usize,
        chan: Channel,
        conn: ConnId,
    },
    /// Bytes that arrived: at the server (`Up`) or at a client (`Down`).
    Deliver {
        conn: ConnId,
        way: Way,
        len: usize,
        eof: bool,
    },
    /// The server's writer flushed pushes or replies down `conn`.
    Flush {
        conn: ConnId,
        close: bool,
    },
    Persist {
        lsn: u64,
    },
    Durable {
        lsn: u64,
    },
    Snapshot {
        lsn: u64,
    },
    Hashed,
    Tick,
    Liveness,
    Fault,
    Restart {
        lsn: u64,
    },
    Hostile {
        client: usize,
    },
}

impl Line<'_> {
    /// The diagram's view of this line.
    pub fn event(&self) -> Event {
        match *self {
            Line::Hashed { .. } => Event::Hashed,
            Line::LivenessBegin { .. } | Line::LivenessMet | Line::LivenessEnd => Event::Liveness,
            Line::Settled { .. } | Line::RestBegin | Line::RestEnd => Event::Liveness,
            Line::Write { client, conn, len } => Event::Write { client, conn, len },
            Line::Close { client, conn } => Event::Close { client, conn },
            Line::Sent { client, .. } => Event::Sent { client },
            Line::Reply { client, .. } => Event::Reply { client },
            Line::Lost { client } => Event::Lost { client },
            Line::Push { client, conn, .. } => Event::Push { client, conn },
            Line::Refused { client, chan } => Event::Refused { client, chan },
            Line::Open { client, chan, conn } => Event::Open { client, chan, conn },
            Line::Deliver { conn, way, len, eof } => Event::Deliver { conn, way, len, eof },
            Line::Persist { lsn, .. } => Event::Persist { lsn },
            Line::Flush { conn, close, .. } => Event::Flush { conn, close },
            Line::Through { conn, .. } => Event::Flush { conn, close: false },
            Line::Snapshot { lsn } => Event::Snapshot { lsn },
            Line::Durable { lsn } => Event::Durable { lsn },
            Line::Tick => Event::Tick,
            Line::Fault { .. } => Event::Fault,
            Line::Restart { lsn } => Event::Restart { lsn },
            Line::Hostile { client, .. } => Event::Hostile { client },
        }
    }
}

/// The trace of one run.
#[derive(Debug, Clone)]
pub struct Trace {
    fold: Fold,
    events: u64,
    scratch: String,
    /// Every line, when kept.
    lines: Option<Vec<String>>,
    /// Every line's time and typed event, when lines are kept.
    kept: Vec<(u64, Event)>,
}

impl Trace {
    pub fn new(keep_lines: bool) -> Self {
        Trace {
            fold: Fold::new(),
            events: 0,
            scratch: String::new(),
            lines: keep_lines.then(Vec::new),
            kept: Vec::new(),
        }
    }

    /// Records the event `line` at `now_ms`.
    pub fn line(&mut self, now_ms: u64, line: Line<'_>) {
        self.fold.word(now_ms);
        line.fold(&mut self.fold, &mut self.scratch);
        self.events += 1;
        if let Some(lines) = &mut self.lines {
            lines.push(format!("{now_ms} {line}"));
            self.kept.push((now_ms, line.event()));
        }
    }

    /// The rolling hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.fold.value()
    }

    /// How many lines were recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The kept lines (empty unless kept).
    pub fn lines(&self) -> &[String] {
        self.lines.as_deref().unwrap_or(&[])
    }

    /// Takes the kept lines out.
    pub fn into_lines(self) -> Vec<String> {
        self.lines.unwrap_or_default()
    }

    /// Takes the kept lines out with each one's time and typed event (same indices).
    pub fn into_kept(self) -> (Vec<String>, Vec<(u64, Event)>) {
        (self.lines.unwrap_or_default(), self.kept)
    }
}

/// The index of the first line where `a` and `b` differ (or where the shorter one ends).
pub fn first_difference(a: &[String], b: &[String]) -> Option<usize> {
    let common = a.iter().zip(b).position(|(x, y)| x != y);
    common.or_else(|| (a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fold_separates_byte_strings_and_words() {
        let fold = |parts: &[&[u8]]| {
            let mut h = Fold::new();
            parts.iter().for_each(|p| h.bytes(p));
            h.value()
        };
        assert_ne!(fold(&[b"ab", b"c"]), fold(&[b"a", b"bc"]));
        assert_ne!(fold(&[b""]), fold(&[b"\0"]));
        assert_ne!(fold(&[b"12345678x"]), fold(&[b"12345678y"]));
        let (mut a, mut b) = (Fold::new(), Fold::new());
        a.word(1);
        a.word(2);
        b.word(2);
        b.word(1);
        assert_ne!(a.value(), b.value());
    }

    #[test]
    fn the_hash_covers_every_field_and_kept_lines_match() {
        let mut kept = Trace::new(true);
        let mut plain = Trace::new(false);
        assert_eq!(kept.hash(), plain.hash());
        let op = Op::Send { to: "bob".into(), text: "hi".into() };
        for trace in [&mut kept, &mut plain] {
            trace.line(1, Line::Write { client: 0, conn: ConnId(5), len: 9 });
            trace.line(2, Line::Sent { client: 0, op: &op });
            trace.line(3, Line::Flush { conn: ConnId(5), last: Some(7), close: false });
        }
        assert_eq!(kept.hash(), plain.hash(), "keeping lines does not change the hash");
        assert_eq!(
            kept.lines(),
            [
                "1 c0 write conn=5 len=9",
                "2 c0 sent send bob hi",
                "3 flush conn=5 last=Some(7) close=false"
            ]
        );
        assert_eq!(plain.events(), 3);
        let variants = [
            Line::Write { client: 0, conn: ConnId(5), len: 10 },
            Line::Write { client: 1, conn: ConnId(5), len: 9 },
            Line::Close { client: 0, conn: ConnId(5) },
            Line::Flush { conn: ConnId(5), last: None, close: false },
            Line::Sent { client: 0, op: &Op::Send { to: "bob".into(), text: "ho".into() } },
        ];
        let base = {
            let mut t = Trace::new(false);
            t.line(1, Line::Write { client: 0, conn: ConnId(5), len: 9 });
            t.hash()
        };
        for line in variants {
            let mut t = Trace::new(false);
            t.line(1, line);
            assert_ne!(t.hash(), base, "{line} hashes like another line");
        }
        let mut later = Trace::new(false);
        later.line(2, Line::Write { client: 0, conn: ConnId(5), len: 9 });
        assert_ne!(later.hash(), base, "the time is part of the hash");
    }

    #[test]
    fn first_difference_names_the_first_line_that_differs() {
        let x: Vec<String> = vec!["a".into(), "b".into()];
        let y: Vec<String> = vec!["a".into(), "c".into()];
        assert_eq!(first_difference(&x, &y), Some(1));
        assert_eq!(first_difference(&x, &x[..1]), Some(1));
        assert_eq!(first_difference(&x, &x), None);
    }
}
