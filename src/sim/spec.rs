//! The protocol as the simulator's checker knows it, written from PROTOCOL.md alone: reply
//! texts, the name rule and `list`'s pattern matching, and how the server's own wording of the
//! situations PROTOCOL.md leaves to it ("mailbox full, rate limited, ...") is recognised.
//!
//! Nothing here comes from the server (`core`, `wire::reply`, `host`), so a wrong text, a
//! case-sensitive comparison or a wrong glob in the server shows up as a disagreement with the
//! checker instead of a mistake both share (pinned by `tests/sim_tidy.rs`).

/// Reply texts (after the status line) as PROTOCOL.md's table gives them.
pub mod text {
    pub const LOGIN_OK: &str = "Successful Login";
    pub const LOGIN_FAILED: &str = "Invalid Login, credential doesn't exist or password invalid";
    pub const REGISTER_OK: &str = "Successful Created and logged in";
    pub const NAME_TAKEN: &str = "This username has been used";
    pub const NEEDS_LOGIN: &str = "Invalid Command, you can only choose to login or register";
    pub const SEND_OK: &str = "Sent to recipient";
    pub const UNKNOWN_RECIPIENT: &str = "invalid recipient";
    pub const DELETE_OK: &str = "account deleted";
    pub const DELETE_REFUSED: &str = "Invalid credential, deletion failed";
    pub const LOGOUT_OK: &str = "Logging out";
}

/// Whether a help reply carries the command list: a line for each code of PROTOCOL.md's
/// request table (`0.` help, `1.` log in, `2.` send, `3.` register, `4.` list, `5.` delete,
/// `-1.` log out).
pub fn is_command_list(text: &str) -> bool {
    ["0.", "1.", "2.", "3.", "4.", "5.", "-1."]
        .iter()
        .all(|code| text.lines().any(|line| line.trim_start().starts_with(code)))
}

/// PROTOCOL.md's longest username, in characters.
pub const NAME_LEN_MAX: usize = 32;
/// PROTOCOL.md's longest password, in bytes.
pub const PASSWORD_LEN_MAX: usize = 128;

/// PROTOCOL.md: "Usernames: 1 to 32 characters of `A-Z a-z 0-9 _ . -`".
pub fn name_fits(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    (1..=NAME_LEN_MAX).contains(&name.chars().count()) && name.chars().all(ok)
}

/// PROTOCOL.md: "Passwords: 1 to 128 bytes".
pub fn password_fits(password: &str) -> bool {
    (1..=PASSWORD_LEN_MAX).contains(&password.len())
}

/// The key a username is compared by: usernames are compared case-insensitively, and are
/// ASCII (`A-Z a-z 0-9 _ . -`).
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Whether `name` matches the `list` pattern `pattern`: `*` stands for any run of characters
/// (also none), `?` for exactly one; an empty pattern means all. Names compare
/// case-insensitively, so the pattern does too.
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().map(|c| c.to_ascii_lowercase()).collect();
    let name: Vec<char> = name.chars().map(|c| c.to_ascii_lowercase()).collect();
    if pattern.is_empty() {
        return true;
    }
    // matches[j]: the pattern read so far matches name[..j]. Textbook dynamic programming,
    // chosen for being obviously right rather than fast.
    let mut matches = vec![false; name.len() + 1];
    matches[0] = true;
    for &p in &pattern {
        let mut next = vec![false; name.len() + 1];
        for j in 0..=name.len() {
            next[j] = match p {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && name[j - 1] == c,
            };
        }
        matches = next;
    }
    matches[name.len()]
}

/// A `list` reply's names, and whether it says it left some out (a limit on the reply's
/// length or on the names examined: PROTOCOL.md's "`list` patterns ... cost linear time").
/// The names are followed by one space each; anything after them in parentheses is the
/// server's note, which no name can contain.
pub fn list_names(text: &str) -> (Vec<&str>, bool) {
    let (names, note) = match text.find('(') {
        Some(at) => (&text[..at], true),
        None => (text, false),
    };
    (names.split(' ').filter(|s| !s.is_empty()).collect(), note)
}

/// How many matching names a cut `list` reply says it left out (`(and 3 more: ...)`): a
/// reply cut by its bounds on names and bytes, not one whose scan stopped.
pub fn list_left_out(text: &str) -> Option<usize> {
    let note = &text[text.find('(')?..];
    note.strip_prefix("(and ")?.split(' ').next()?.parse().ok()
}

/// How many names a `list` reply whose scan stopped says it examined (`(stopped after 3
/// names: ...)`).
pub fn list_stopped_after(text: &str) -> Option<usize> {
    let note = &text[text.find('(')?..];
    note.strip_prefix("(stopped after ")?.split(' ').next()?.parse().ok()
}

/// Failures PROTOCOL.md leaves to the server's wording ("a `-1` reply whose text says plainly
/// what happened"): the kinds the checker recognises, by the words that say what happened.
/// Each is a row of the coverage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A send to a recipient whose queue is at its bound.
    QueueFull,
    /// A send while every queue together is at the bound on bytes.
    StoreFull,
    /// A password check refused by the login throttle.
    Throttled,
    /// A register refused by the limit on registrations per address.
    RegistrationsLimited,
    /// A register refused by the limit on accounts.
    AccountsLimited,
    /// A `list` pattern longer than allowed.
    PatternTooLong,
}

/// The wait a refusal asks for, from its "try again in N s".
pub fn retry_after_s(text: &str) -> Option<u64> {
    let after = text.split("try again in ").nth(1)?;
    after.split(' ').next()?.parse().ok()
}

impl Refusal {
    /// The kind of a failure reply's text, if it is one of these.
    pub fn of(text: &str) -> Option<Refusal> {
        let has = |words: &str| text.contains(words);
        Some(if has("mailbox is full") {
            Refusal::QueueFull
        } else if has("store is full") {
            Refusal::StoreFull
        } else if has("Too many failed attempts") {
            Refusal::Throttled
        } else if has("Too many registrations") {
            Refusal::RegistrationsLimited
        } else if has("limit of") && has("accounts") {
            Refusal::AccountsLimited
        } else if has("Pattern too long") {
            Refusal::PatternTooLong
        } else {
            return None;
        })
    }

    /// Its coverage row.
    pub fn row(self) -> &'static str {
        match self {
            Refusal::QueueFull => "refusal: queue full",
            Refusal::StoreFull => "refusal: store full",
            Refusal::Throttled => "refusal: throttled",
            Refusal::RegistrationsLimited => "refusal: registrations per address",
            Refusal::AccountsLimited => "refusal: accounts limit",
            Refusal::PatternTooLong => "refusal: pattern too long",
        }
    }
}

/// Why the server closed a connection, from the failure frame it sent first ("one failure
/// reply naming the problem, then the connection is closed"). PROTOCOL.md allows a close for
/// an oversized frame or a bad header, a connection that did not log in in time, the caps on
/// connections, a refused relay handshake, and a relay whose session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    FrameTooLarge,
    BadHeader,
    LoginDeadline,
    RelayHandshakeDeadline,
    FrameDeadline,
    ConnectionsPerAddress,
    ConnectionLimit,
    /// Too much sent before reading replies (the inbound buffer's bound).
    InboundFull,
    RelayRefused,
    TakenOver,
    AccountDeleted,
}

impl Notice {
    /// The kind of a failure frame's text, if it announces a close.
    pub fn of(text: &str) -> Option<Notice> {
        let has = |words: &str| text.contains(words);
        Some(if has("larger than the limit") {
            Notice::FrameTooLarge
        } else if has("bad frame header") {
            Notice::BadHeader
        } else if has("Login timed out") {
            Notice::LoginDeadline
        } else if has("handshake timed out") {
            Notice::RelayHandshakeDeadline
        } else if has("rest of a frame") {
            Notice::FrameDeadline
        } else if has("connections from your address") {
            Notice::ConnectionsPerAddress
        } else if has("connection limit") {
            Notice::ConnectionLimit
        } else if has("without waiting for replies") {
            Notice::InboundFull
        } else if has("Relay refused") {
            Notice::RelayRefused
        } else if has("Logged in elsewhere") {
            Notice::TakenOver
        } else if has("account was deleted") {
            Notice::AccountDeleted
        } else {
            return None;
        })
    }

    /// Whether it may end a command connection (the rest end relays).
    pub fn ends_command(self) -> bool {
        !matches!(self, Notice::RelayRefused | Notice::TakenOver | Notice::AccountDeleted)
    }

    /// Its coverage row.
    pub fn row(self) -> &'static str {
        match self {
            Notice::FrameTooLarge => "close: frame too large",
            Notice::BadHeader => "close: bad header",
            Notice::LoginDeadline => "close: login deadline",
            Notice::RelayHandshakeDeadline => "close: relay handshake deadline",
            Notice::FrameDeadline => "close: frame deadline",
            Notice::ConnectionsPerAddress => "close: connections per address",
            Notice::ConnectionLimit => "close: connection limit",
            Notice::InboundFull => "close: inbound buffer full",
            Notice::RelayRefused => "close: relay refused",
            Notice::TakenOver => "close: taken over",
            Notice::AccountDeleted => "close: account deleted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_protocol_md_says() {
        let cases = [
            ("", "abc", true),
            ("*", "", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("?", "", false),
            ("*b*", "abc", true),
            ("*x*", "abc", false),
            ("A*", "abc", true),
            ("u?", "U1", true),
            ("a**c", "ac", true),
            ("abc", "abcd", false),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(pattern_matches(pattern, name), expected, "{pattern:?} {name:?}");
        }
    }

    #[test]
    fn list_replies_split_names_from_the_note() {
        assert_eq!(list_names("a b "), (vec!["a", "b"], false));
        assert_eq!(list_names("a (and 2 more: narrow the pattern)"), (vec!["a"], true));
        assert_eq!(list_names(""), (vec![], false));
    }
}
