//! Scenario files: a simulated run written down explicitly, so a failure can be kept, edited and
//! replayed with `chatroom sim --replay FILE` (the model checker, `chatroom check`, writes them).
//!
//! # Format (version 1)
//!
//! A UTF-8 text file, one item per line. Blank lines and lines starting with `#` are ignored;
//! fields are separated by single spaces.
//!
//! ```text
//! chatroom-sim 1                      first line: the format and its version
//! seed 42                             root seed: network, disk and timing draws derive from it
//! option latency_ms_max 20            any knob of the fault mix (see below), before the steps
//! planted DropOnDetach                optional: the planted bug a shrunk scenario fails with
//! clients 2                           number of scripted clients (numbered from 0)
//! at 0 client 0 register alice pw     steps, in any order; sorted by time, stable
//! at 0 client 1 register bob pw
//! at 5 client 0 relay ticket
//! at 10 client 1 send alice hello there
//! at 12 fault partition 1 both command 2000
//! at 40 crash 300
//! at 50 client 1 logout
//! ```
//!
//! Steps:
//!
//! - `at MS client N OP...`: client `N` performs `OP` at `MS` milliseconds of simulated time, or
//!   as soon as it can after that (a scripted client waits for the reply to its previous request
//!   and connects first if it has no command connection). Its operations run in file order.
//! - `at MS fault partition N DIR [CHANNEL] FOR_MS`: bytes between client `N` and the server
//!   stop flowing in `DIR` (`up`: client to server, `down`: server to client, `both`) on
//!   `CHANNEL` (`command`, `relay`, or both when omitted) for `FOR_MS` ms; held bytes flow, in
//!   order, when it heals.
//! - `at MS fault reset N CHANNEL`: client `N`'s `command` or `relay` connection is reset.
//! - `at MS crash DOWN_MS`: the server crashes (every connection resets, unsynced writes are
//!   lost, the last one may be torn) and restarts through recovery `DOWN_MS` ms later: a
//!   power loss.
//! - `at MS kill DOWN_MS`: the server's process dies (every connection resets; what it wrote
//!   stays on the disk, synced or not, and a later power loss may still lose what was not) and
//!   restarts through recovery `DOWN_MS` ms later.
//! - `at MS stop DOWN_MS`: the server shuts down gracefully (every connection closed, every
//!   record submitted committed by the log writer before it stops) and restarts through
//!   recovery `DOWN_MS` ms later.
//! - `at MS heal`: every partition ends now.
//!
//! Client operations (`OP`), the same vocabulary the random workload uses:
//!
//! | op | effect |
//! | --- | --- |
//! | `connect` | open the command connection |
//! | `disconnect` | close the command connection (and the relay) |
//! | `help` | request `0` |
//! | `register NAME PASSWORD` | request `3` |
//! | `login NAME PASSWORD` | request `1` |
//! | `send TO TEXT...` | request `2`; the text is the rest of the line |
//! | `list [PATTERN]` | request `4` |
//! | `delete NAME PASSWORD` | request `5` |
//! | `logout` | request `-1` |
//! | `relay bare` | open a relay with the original client's bare handshake (`NAME`) |
//! | `relay ticket` | request `6`, then open a relay with `NAME\nTICKET`; pushes are acknowledged |
//! | `relay-as NAME` | open a relay with a bare handshake naming `NAME` (an intruder's attempt) |
//! | `close-relay` | close the relay connection |
//! | `idle` | do nothing (a think time) |
//! | `hostile KIND` | a hostile act: a forged acknowledgement, a stolen ticket, a bad frame... ([`Hostile`]) |
//!
//! So that deliveries can be checked, the text of every message sent is prefixed on the wire
//! with a tag unique in the run, `#C.K ` (client `C`, its `K`-th message): `send bob hi` from
//! client 0 sends `#0.1 hi`.
//!
//! Options (`option KEY VALUE`) set the fault mix; unset knobs keep the value of `--faults none`
//! (latency only). The knobs are the fields of [`FaultMix`], printed by every run, for example
//! `latency_ms_min`, `latency_ms_max`, `fragment_percent`, `fsync_ms_max`, `hash_ms_max`,
//! `writer_ms_max`. A scenario draws no faults at random: its faults are its `fault` and `crash`
//! steps. After the last step and the last reply, the liveness phase runs as in every run.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use super::options::FaultMix;
use crate::core::Channel;

/// A run written down: seed, fault mix, client scripts and fault schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scenario {
    pub seed: u64,
    pub mix: FaultMix,
    pub clients: usize,
    /// Sorted by time (stable).
    pub steps: Vec<Step>,
    /// The planted bug the scenario was shrunk against (`planted NAME`), which only a build
    /// with the `planted` feature can plant; `chatroom sim --replay` refuses it otherwise.
    pub planted: Option<String>,
}

/// One timed line of a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub at_ms: u64,
    pub action: Action,
}

/// What happens at a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Client {
        client: usize,
        op: Op,
    },
    Partition {
        client: usize,
        dir: Dir,
        channel: Option<Channel>,
        for_ms: u64,
    },
    Reset {
        client: usize,
        channel: Channel,
    },
    /// The server goes down, as `how` says, and restarts through recovery `down_ms` later.
    Crash {
        down_ms: u64,
        how: Down,
    },
    Heal,
}

/// How the server goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// A power loss: unsynced writes lost, the last one maybe torn.
    Power,
    /// The process dies: what it wrote stays on the disk, synced or not.
    Kill,
    /// A graceful shutdown (`Server::shutdown`): every connection closed, the log writer
    /// committing everything submitted before it stops.
    Stop,
}

/// A client's operation (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Connect,
    Disconnect,
    Help,
    Register {
        name: String,
        password: String,
    },
    Login {
        name: String,
        password: String,
    },
    Send {
        to: String,
        text: String,
    },
    /// `count` sends to `to` written in one go, without waiting for replies (pipelining).
    Burst {
        to: String,
        count: u32,
    },
    List {
        pattern: String,
    },
    Delete {
        name: String,
        password: String,
    },
    Logout,
    Relay {
        ticket: bool,
    },
    RelayAs {
        name: String,
    },
    CloseRelay,
    Idle,
    /// Something a careless or malicious client does (see [`Hostile`]).
    Hostile(Hostile),
}

/// A hostile act: what an honest client never does. Each has a trace name (`hostile:KIND`
/// in the trace, [`Hostile::kind`]) and, in a scenario, is written `hostile KIND`.
///
/// On the relay (the client's ticketed relay must be open; else nothing happens):
/// `ack-forged` acknowledges an id never pushed (far beyond any id), `ack-early` one just past
/// the last id pushed to it, `ack-dup` the last id it already acknowledged, `ack-cross` an id
/// below its last one that was never pushed to it (another user's message, or no message).
///
/// Tickets: `ticket-stolen` asks for a ticket and opens a relay naming another user with it;
/// `ticket-replay` closes the relay and opens a new one with the handshake (name and ticket)
/// of the client's last ticketed relay; `ticket-expired` asks for a ticket, waits until it
/// has expired, and uses it; `ticket-after-logout` asks for a ticket, logs out, logs in again
/// on the same connection, and uses it (a ticket is its session's). Each must be refused: a
/// failure frame, then a close, and no push.
/// `ticket-hoard` is no lie: it asks for one ticket more than its session may hold, then opens
/// its relay with the second newest, which must bind (the oldest is the one forgotten);
/// `ticket-evicted` asks for as many, then opens its relay with the oldest, which the server
/// forgot when it granted the newest: refused.
/// `frame-dribbled` writes a `help` request a byte at a time, an eighth of the frame deadline
/// apart: the deadline runs from the frame's first byte, so the server must hang up before the
/// frame is whole (`sim::check::deadlines`: "the frame deadline is kept").
///
/// Frames on the command connection, each followed in the same write by a `help` probe that
/// tells whether the connection stayed open: `bad-header-N` sends the `N`-th kind of header
/// PROTOCOL.md forbids ([`BAD_HEADERS`]), `frame-over` a body one byte over the limit in force,
/// both refused with a failure reply and a close (the probe is never answered);
/// `frame-at-limit` a send whose body is exactly at the limit (its text padded, with a line
/// break inside, which the text keeps), `bad-utf8` a body that is not
/// UTF-8, `unknown-code` a request code that does not exist, `empty-text` a send with an empty
/// text, `extra-field` a registration with a third field (PROTOCOL.md gives `register` two;
/// a server that ignored the third, or read it into the password, would create the account):
/// each answered with a failure, and the connection stays open (the probe is answered).
///
/// Frames at the relay's limits: `relay-hello-at-limit` and `relay-hello-over` open a relay
/// whose handshake (the client's name and a made-up ticket) is exactly at, or one byte over,
/// the limit before login; `relay-ack-at-limit` writes on the client's bound ticketed relay a
/// malformed acknowledgement exactly at the relay's limit, `relay-ack-over` one a byte over it
/// followed by an acknowledgement of id 0 (a probe: answered only if the server read on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hostile {
    AckForged,
    AckEarly,
    AckDup,
    AckCross,
    TicketStolen,
    TicketReplay,
    TicketExpired,
    TicketHoard,
    TicketEvicted,
    TicketAfterLogout,
    FrameDribbled,
    BadHeader(u8),
    FrameOver,
    FrameAtLimit,
    BadUtf8,
    UnknownCode,
    EmptyText,
    ExtraField,
    RelayHelloAtLimit,
    RelayHelloOver,
    RelayAckAtLimit,
    RelayAckOver,
    /// The probe after a hostile frame (written by the client, never by a scenario).
    Probe,
}

/// Every kind of 10-byte header PROTOCOL.md forbids ("the body's length as ASCII decimal,
/// left-justified and padded with spaces; accept surrounding spaces; reject anything else"),
/// each for a body of 5 bytes where it has a length at all.
pub const BAD_HEADERS: [&[u8; 10]; 10] = [
    b"5a        ",          // a letter after the digits
    b"-5        ",          // a sign
    b"+5        ",          // a plus sign
    b"          ",          // no digits at all
    b"5 5       ",          // a space between digits
    b"5\t        ",         // a tab, not a space
    b"0x5       ",          // hexadecimal
    b"5\0\0\0\0\0\0\0\0\0", // NUL padding
    b"\xff5        ",       // a byte that is not ASCII
    b"5.0       ",          // a decimal point
];

impl Hostile {
    /// The name in traces, scenarios and the coverage table (`hostile:KIND`).
    pub fn kind(self) -> &'static str {
        const BAD: [&str; 10] = [
            "bad-header-0",
            "bad-header-1",
            "bad-header-2",
            "bad-header-3",
            "bad-header-4",
            "bad-header-5",
            "bad-header-6",
            "bad-header-7",
            "bad-header-8",
            "bad-header-9",
        ];
        match self {
            Hostile::AckForged => "ack-forged",
            Hostile::AckEarly => "ack-early",
            Hostile::AckDup => "ack-dup",
            Hostile::AckCross => "ack-cross",
            Hostile::TicketStolen => "ticket-stolen",
            Hostile::TicketReplay => "ticket-replay",
            Hostile::TicketExpired => "ticket-expired",
            Hostile::TicketHoard => "ticket-hoard",
            Hostile::TicketEvicted => "ticket-evicted",
            Hostile::TicketAfterLogout => "ticket-after-logout",
            Hostile::FrameDribbled => "frame-dribbled",
            Hostile::BadHeader(n) => BAD[usize::from(n) % BAD.len()],
            Hostile::FrameOver => "frame-over",
            Hostile::FrameAtLimit => "frame-at-limit",
            Hostile::BadUtf8 => "bad-utf8",
            Hostile::UnknownCode => "unknown-code",
            Hostile::EmptyText => "empty-text",
            Hostile::ExtraField => "extra-field",
            Hostile::RelayHelloAtLimit => "relay-hello-at-limit",
            Hostile::RelayHelloOver => "relay-hello-over",
            Hostile::RelayAckAtLimit => "relay-ack-at-limit",
            Hostile::RelayAckOver => "relay-ack-over",
            Hostile::Probe => "probe",
        }
    }

    /// Every hostile act a client can be told to do (not the probe).
    pub fn all() -> impl Iterator<Item = Hostile> {
        let fixed = [
            Hostile::AckForged,
            Hostile::AckEarly,
            Hostile::AckDup,
            Hostile::AckCross,
            Hostile::TicketStolen,
            Hostile::TicketReplay,
            Hostile::TicketExpired,
            Hostile::TicketHoard,
            Hostile::TicketEvicted,
            Hostile::TicketAfterLogout,
            Hostile::FrameDribbled,
            Hostile::FrameOver,
            Hostile::FrameAtLimit,
            Hostile::BadUtf8,
            Hostile::UnknownCode,
            Hostile::EmptyText,
            Hostile::ExtraField,
            Hostile::RelayHelloAtLimit,
            Hostile::RelayHelloOver,
            Hostile::RelayAckAtLimit,
            Hostile::RelayAckOver,
        ];
        let headers = (0..BAD_HEADERS.len() as u8).map(Hostile::BadHeader);
        fixed.into_iter().chain(headers)
    }

    /// A request frame on the command connection (answered there), not a relay act.
    pub fn is_frame(self) -> bool {
        matches!(
            self,
            Hostile::BadHeader(_)
                | Hostile::FrameOver
                | Hostile::FrameAtLimit
                | Hostile::BadUtf8
                | Hostile::UnknownCode
                | Hostile::EmptyText
                | Hostile::ExtraField
                | Hostile::Probe
        )
    }

    /// A frame PROTOCOL.md says is refused and then closes the connection.
    pub fn closes(self) -> bool {
        matches!(self, Hostile::BadHeader(_) | Hostile::FrameOver)
    }
}

impl FromStr for Hostile {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Hostile::all()
            .find(|h| h.kind() == text)
            .ok_or_else(|| format!("unknown hostile act {text:?}"))
    }
}

/// Direction of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
    Both,
}

/// Why a scenario file cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("scenario line {line}: {reason}")]
pub struct ScenarioError {
    pub line: usize,
    pub reason: String,
}

const MAGIC: &str = "chatroom-sim 1";

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut scenario = Scenario {
            seed: 0,
            mix: FaultMix::none(),
            clients: 0,
            steps: Vec::new(),
            planted: None,
        };
        let mut seen_magic = false;
        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            let err = |reason: String| ScenarioError { line, reason };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if !seen_magic {
                if trimmed != MAGIC {
                    return Err(err(format!("expected {MAGIC:?} first")));
                }
                seen_magic = true;
                continue;
            }
            scenario.parse_line(trimmed).map_err(err)?;
        }
        if !seen_magic {
            return Err(ScenarioError { line: 0, reason: "empty scenario".into() });
        }
        scenario.check_clients().map_err(|reason| ScenarioError { line: 0, reason })?;
        scenario.steps.sort_by_key(|s| s.at_ms);
        Ok(scenario)
    }
}

impl Scenario {
    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        match head {
            "seed" => self.seed = number(rest)?,
            "clients" => self.clients = number(rest)? as usize,
            "planted" if !rest.is_empty() => self.planted = Some(rest.to_owned()),
            "option" => {
                let (key, value) = rest.split_once(' ').ok_or("option needs KEY VALUE")?;
                self.mix.set(key, value)?;
            }
            "at" => {
                let (at, rest) = rest.split_once(' ').ok_or("at needs MS and an action")?;
                let step = Step { at_ms: number(at)?, action: parse_action(rest)? };
                self.steps.push(step);
            }
            other => return Err(format!("unknown line kind {other:?}")),
        }
        Ok(())
    }

    fn check_clients(&self) -> Result<(), String> {
        for step in &self.steps {
            let client = match step.action {
                Action::Client { client, .. }
                | Action::Partition { client, .. }
                | Action::Reset { client, .. } => client,
                Action::Crash { .. } | Action::Heal => continue,
            };
            if client >= self.clients {
                return Err(format!(
                    "client {client} used but `clients {}` declared",
                    self.clients
                ));
            }
        }
        Ok(())
    }
}

fn number(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| format!("expected a number, got {text:?}"))
}

fn parse_action(text: &str) -> Result<Action, String> {
    let words: Vec<&str> = text.split(' ').collect();
    match words.as_slice() {
        ["client", n, ..] => {
            let op_text = text.splitn(3, ' ').nth(2).unwrap_or("");
            Ok(Action::Client { client: number(n)? as usize, op: op_text.parse()? })
        }
        ["fault", "partition", n, dir, rest @ ..] => {
            let (channel, for_ms) = match rest {
                [ms] => (None, ms),
                [chan, ms] => (Some(parse_chan(chan)?), ms),
                _ => return Err("partition needs N DIR [CHANNEL] FOR_MS".into()),
            };
            let dir = match *dir {
                "up" => Dir::Up,
                "down" => Dir::Down,
                "both" => Dir::Both,
                other => return Err(format!("unknown direction {other:?}")),
            };
            Ok(Action::Partition {
                client: number(n)? as usize,
                dir,
                channel,
                for_ms: number(for_ms)?,
            })
        }
        ["fault", "reset", n, chan] => {
            Ok(Action::Reset { client: number(n)? as usize, channel: parse_chan(chan)? })
        }
        ["crash", down] => Ok(Action::Crash { down_ms: number(down)?, how: Down::Power }),
        ["kill", down] => Ok(Action::Crash { down_ms: number(down)?, how: Down::Kill }),
        ["stop", down] => Ok(Action::Crash { down_ms: number(down)?, how: Down::Stop }),
        ["heal"] => Ok(Action::Heal),
        _ => Err(format!("unknown action {text:?}")),
    }
}

fn parse_chan(text: &str) -> Result<Channel, String> {
    match text {
        "command" => Ok(Channel::Command),
        "relay" => Ok(Channel::Relay),
        other => Err(format!("unknown channel {other:?}")),
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
        let pair = || -> Result<(String, String), String> {
            match rest.split(' ').collect::<Vec<_>>().as_slice() {
                [name, password] => Ok(((*name).to_owned(), (*password).to_owned())),
                _ => Err(format!("{word} needs NAME PASSWORD")),
            }
        };
        let op = match word {
            "connect" => Op::Connect,
            "disconnect" => Op::Disconnect,
            "help" => Op::Help,
            "register" => pair().map(|(name, password)| Op::Register { name, password })?,
            "login" => pair().map(|(name, password)| Op::Login { name, password })?,
            "delete" => pair().map(|(name, password)| Op::Delete { name, password })?,
            "send" => {
                let (to, text) = rest.split_once(' ').unwrap_or((rest, ""));
                if to.is_empty() {
                    return Err("send needs TO TEXT".into());
                }
                Op::Send { to: to.to_owned(), text: text.to_owned() }
            }
            "burst" => match rest.split_once(' ') {
                Some((to, count)) if !to.is_empty() => {
                    let count = count.parse().map_err(|_| "burst needs TO COUNT".to_owned())?;
                    Op::Burst { to: to.to_owned(), count }
                }
                _ => return Err("burst needs TO COUNT".into()),
            },
            "list" => Op::List { pattern: rest.to_owned() },
            "logout" => Op::Logout,
            "relay" => match rest {
                "bare" => Op::Relay { ticket: false },
                "ticket" => Op::Relay { ticket: true },
                _ => return Err("relay needs bare or ticket".into()),
            },
            "relay-as" if !rest.is_empty() => Op::RelayAs { name: rest.to_owned() },
            "close-relay" => Op::CloseRelay,
            "idle" => Op::Idle,
            "hostile" => Op::Hostile(rest.parse()?),
            other => return Err(format!("unknown client operation {other:?}")),
        };
        Ok(op)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Connect => write!(f, "connect"),
            Op::Disconnect => write!(f, "disconnect"),
            Op::Help => write!(f, "help"),
            Op::Register { name, password } => write!(f, "register {name} {password}"),
            Op::Login { name, password } => write!(f, "login {name} {password}"),
            Op::Send { to, text } => write!(f, "send {to} {text}"),
            Op::Burst { to, count } => write!(f, "burst {to} {count}"),
            Op::List { pattern } if pattern.is_empty() => write!(f, "list"),
            Op::List { pattern } => write!(f, "list {pattern}"),
            Op::Delete { name, password } => write!(f, "delete {name} {password}"),
            Op::Logout => write!(f, "logout"),
            Op::Relay { ticket: false } => write!(f, "relay bare"),
            Op::Relay { ticket: true } => write!(f, "relay ticket"),
            Op::RelayAs { name } => write!(f, "relay-as {name}"),
            Op::CloseRelay => write!(f, "close-relay"),
            Op::Idle => write!(f, "idle"),
            Op::Hostile(hostile) => write!(f, "hostile {}", hostile.kind()),
        }
    }
}

/// A channel's word in scenario files and traces (`command`, `relay`), read back by `parse_chan`.
pub fn channel_word(channel: Channel) -> &'static str {
    match channel {
        Channel::Command => "command",
        Channel::Relay => "relay",
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Client { client, op } => write!(f, "client {client} {op}"),
            Action::Partition { client, dir, channel, for_ms } => {
                let dir = match dir {
                    Dir::Up => "up",
                    Dir::Down => "down",
                    Dir::Both => "both",
                };
                write!(f, "fault partition {client} {dir} ")?;
                if let Some(channel) = channel {
                    write!(f, "{} ", channel_word(*channel))?;
                }
                write!(f, "{for_ms}")
            }
            Action::Reset { client, channel } => {
                write!(f, "fault reset {client} {}", channel_word(*channel))
            }
            Action::Crash { down_ms, how: Down::Power } => write!(f, "crash {down_ms}"),
            Action::Crash { down_ms, how: Down::Kill } => write!(f, "kill {down_ms}"),
            Action::Crash { down_ms, how: Down::Stop } => write!(f, "stop {down_ms}"),
            Action::Heal => write!(f, "heal"),
        }
    }
}

impl fmt::Display for Scenario {
    /// Writes the scenario in the file format; parsing the output gives it back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{MAGIC}")?;
        writeln!(f, "seed {}", self.seed)?;
        if let Some(bug) = &self.planted {
            writeln!(f, "planted {bug}")?;
        }
        for (key, value) in self.mix.knobs() {
            writeln!(f, "option {key} {value}")?;
        }
        writeln!(f, "clients {}", self.clients)?;
        for step in &self.steps {
            writeln!(f, "at {} {}", step.at_ms, step.action)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "chatroom-sim 1
# a comment
seed 42
option latency_ms_max 20
clients 2
at 10 client 1 send alice hello there
at 0 client 0 register alice pw
at 5 client 0 relay ticket
at 12 fault partition 1 both command 2000
at 13 fault partition 0 up 100
at 20 fault reset 0 relay
at 40 crash 300
at 45 kill 20
at 48 stop 10
at 50 heal
";

    #[test]
    fn parses_and_prints_back() {
        let scenario: Scenario = EXAMPLE.parse().unwrap();
        assert_eq!(scenario.seed, 42);
        assert_eq!(scenario.mix.latency_ms_max, 20);
        assert_eq!(scenario.steps.len(), 10);
        assert_eq!(scenario.steps[8].action, Action::Crash { down_ms: 10, how: Down::Stop });
        assert_eq!(scenario.steps[0].action.to_string(), "client 0 register alice pw");
        assert_eq!(
            scenario.steps[2].action,
            Action::Client {
                client: 1,
                op: Op::Send { to: "alice".into(), text: "hello there".into() }
            }
        );
        let printed = scenario.to_string();
        assert_eq!(printed.parse::<Scenario>().unwrap(), scenario);
    }

    #[test]
    fn errors_name_the_line() {
        let bad = "chatroom-sim 1\nclients 1\nat 5 client 0 fly\n";
        let error = bad.parse::<Scenario>().unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.reason.contains("fly"), "{error}");
        let error = "chatroom-sim 1\nclients 1\nat 5 client 3 help\n".parse::<Scenario>();
        assert!(error.unwrap_err().reason.contains("client 3"));
        assert_eq!("seed 1\n".parse::<Scenario>().unwrap_err().line, 1);
    }
}
