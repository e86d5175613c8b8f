//! Parsing frame bodies into typed requests (command channel) and relay frames.
//!
//! Parsing is purely syntactic: whether a name is valid, a user is logged in or a ticket is good
//! is the core's business. Every failure is a [`RequestError`] whose message is fit to send back.

use thiserror::Error;

/// A request on the command channel: `CODE\nFIELD\nFIELD...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `0`: the command list.
    Help,
    /// `1 name password`.
    Login { name: String, password: String },
    /// `2 recipient text`; the text is everything after the recipient line.
    Send { to: String, text: String },
    /// `3 name password`: create the account and log in.
    Register { name: String, password: String },
    /// `4 [pattern]`: `*` and `?` wildcards; empty means all.
    List { pattern: String },
    /// `5 name password`: delete the logged-in user's own account.
    Delete { name: String, password: String },
    /// `-1`: log out, keeping the connection.
    Logout,
    /// `6`: a single-use ticket for an authenticated relay handshake.
    Ticket,
}

impl Request {
    /// The body a client sends for this request, as the original client packs it
    /// (`CODE\nFIELDS`; a request without fields still ends its code line). The inverse of
    /// [`parse_request`] for requests whose one-line fields hold no newline.
    pub fn body(&self) -> String {
        match self {
            // Concatenated rather than formatted: the simulator's clients build one per request.
            Request::Help => "0\n".to_owned(),
            Request::Login { name, password } => ["1\n", name, "\n", password].concat(),
            Request::Send { to, text } => ["2\n", to, "\n", text].concat(),
            Request::Register { name, password } => ["3\n", name, "\n", password].concat(),
            Request::List { pattern } => ["4\n", pattern].concat(),
            Request::Delete { name, password } => ["5\n", name, "\n", password].concat(),
            Request::Logout => "-1\n".to_owned(),
            Request::Ticket => "6\n".to_owned(),
        }
    }
}

/// Why a well-framed body is not a request.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum RequestError {
    #[error("Invalid request: the message is not valid UTF-8")]
    NotUtf8,
    /// Reply text kept from the original server.
    #[error("invalid command:{0}")]
    UnknownCode(String),
    #[error("Invalid request: command {code} needs a {field} field")]
    MissingField { code: &'static str, field: &'static str },
    #[error("Invalid request: command {code} takes {fields_max} fields, got more (fields cannot contain newlines)")]
    ExtraFields { code: &'static str, fields_max: usize },
}

/// The first frame on a relay connection: `USERNAME` or `USERNAME\nTICKET`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayHello {
    pub name: String,
    pub ticket: Option<String>,
}

/// A frame a client sends on its relay after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayFrame {
    /// `7\nID`: the push with this id was received.
    Ack(u64),
}

impl RelayFrame {
    /// The body a client sends for this frame; the inverse of [`parse_relay_frame`].
    pub fn body(&self) -> String {
        match self {
            RelayFrame::Ack(id) => format!("7\n{id}"),
        }
    }
}

/// Codes echoed in replies are cut to this many characters so a huge bogus code stays small.
const CODE_SHOWN_LEN_MAX: usize = 32;

/// Parses a command-channel body.
pub fn parse_request(body: &[u8]) -> Result<Request, RequestError> {
    let body = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
    let (code, rest) = match body.split_once('\n') {
        Some((code, rest)) => (code, Some(rest)),
        None => (body, None),
    };
    let fields = Fields { code, rest };
    match code {
        "0" => Ok(Request::Help),
        "1" => fields.pair("1").map(|(name, password)| Request::Login { name, password }),
        "2" => fields.recipient_and_text().map(|(to, text)| Request::Send { to, text }),
        "3" => fields.pair("3").map(|(name, password)| Request::Register { name, password }),
        "4" => fields.pattern().map(|pattern| Request::List { pattern }),
        "5" => fields.pair("5").map(|(name, password)| Request::Delete { name, password }),
        "-1" => Ok(Request::Logout),
        "6" => Ok(Request::Ticket),
        other => Err(RequestError::UnknownCode(other.chars().take(CODE_SHOWN_LEN_MAX).collect())),
    }
}

struct Fields<'a> {
    code: &'a str,
    rest: Option<&'a str>,
}

impl Fields<'_> {
    fn pair(&self, code: &'static str) -> Result<(String, String), RequestError> {
        let rest = self.rest.ok_or(RequestError::MissingField { code, field: "username" })?;
        let mut parts = rest.split('\n');
        let name = parts.next().unwrap_or_default();
        let password =
            parts.next().ok_or(RequestError::MissingField { code, field: "password" })?;
        if parts.next().is_some() {
            return Err(RequestError::ExtraFields { code, fields_max: 2 });
        }
        Ok((name.to_owned(), password.to_owned()))
    }

    fn recipient_and_text(&self) -> Result<(String, String), RequestError> {
        let rest = self.rest.ok_or(RequestError::MissingField { code: "2", field: "recipient" })?;
        let (to, text) =
            rest.split_once('\n').ok_or(RequestError::MissingField { code: "2", field: "text" })?;
        Ok((to.to_owned(), text.to_owned()))
    }

    fn pattern(&self) -> Result<String, RequestError> {
        debug_assert_eq!(self.code, "4");
        match self.rest {
            None => Ok(String::new()),
            Some(rest) if rest.contains('\n') => {
                Err(RequestError::ExtraFields { code: "4", fields_max: 1 })
            }
            Some(rest) => Ok(rest.to_owned()),
        }
    }
}

/// Parses the relay handshake body.
pub fn parse_relay_hello(body: &[u8]) -> Result<RelayHello, RequestError> {
    let body = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
    let mut parts = body.split('\n');
    let name = parts.next().unwrap_or_default().to_owned();
    let ticket = parts.next().map(str::to_owned);
    if parts.next().is_some() {
        return Err(RequestError::ExtraFields { code: "relay handshake", fields_max: 2 });
    }
    Ok(RelayHello { name, ticket })
}

/// Parses a frame received on a relay after the handshake.
pub fn parse_relay_frame(body: &[u8]) -> Result<RelayFrame, RequestError> {
    let body = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
    let (code, rest) = body.split_once('\n').unwrap_or((body, ""));
    match code {
        "7" => rest
            .parse()
            .map(RelayFrame::Ack)
            .map_err(|_| RequestError::MissingField { code: "7", field: "message id" }),
        other => Err(RequestError::UnknownCode(other.chars().take(CODE_SHOWN_LEN_MAX).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Request, RequestError> {
        parse_request(body.as_bytes())
    }

    #[test]
    fn seed_requests_parse() {
        assert_eq!(parse("0\n"), Ok(Request::Help));
        assert_eq!(
            parse("1\ntester\nabc123"),
            Ok(Request::Login { name: "tester".into(), password: "abc123".into() })
        );
        assert_eq!(
            parse("2\nabc\nhi\nthere"),
            Ok(Request::Send { to: "abc".into(), text: "hi\nthere".into() })
        );
        assert_eq!(
            parse("3\nnew\npw"),
            Ok(Request::Register { name: "new".into(), password: "pw".into() })
        );
        assert_eq!(parse("4\n"), Ok(Request::List { pattern: String::new() }));
        assert_eq!(parse("4"), Ok(Request::List { pattern: String::new() }));
        assert_eq!(parse("4\nt*"), Ok(Request::List { pattern: "t*".into() }));
        assert_eq!(
            parse("5\nabc\nabc"),
            Ok(Request::Delete { name: "abc".into(), password: "abc".into() })
        );
        assert_eq!(parse("-1\n"), Ok(Request::Logout));
        assert_eq!(parse("6"), Ok(Request::Ticket));
    }

    #[test]
    fn bad_requests_name_the_problem() {
        assert_eq!(parse("9\nx"), Err(RequestError::UnknownCode("9".into())));
        assert_eq!(parse(""), Err(RequestError::UnknownCode(String::new())));
        assert_eq!(
            parse("1\nname"),
            Err(RequestError::MissingField { code: "1", field: "password" })
        );
        assert_eq!(parse("1"), Err(RequestError::MissingField { code: "1", field: "username" }));
        assert_eq!(parse("2\nbob"), Err(RequestError::MissingField { code: "2", field: "text" }));
        assert_eq!(
            parse("3\na\nb\nc"),
            Err(RequestError::ExtraFields { code: "3", fields_max: 2 })
        );
        assert_eq!(parse_request(b"1\n\xff\xfe\npw"), Err(RequestError::NotUtf8));
        assert_eq!(RequestError::UnknownCode("42".into()).to_string(), "invalid command:42");
        let long = "9".repeat(1000);
        assert!(
            matches!(parse(&long), Err(RequestError::UnknownCode(c)) if c.len() == CODE_SHOWN_LEN_MAX)
        );
    }

    #[test]
    fn relay_frames_parse() {
        assert_eq!(parse_relay_hello(b"bob"), Ok(RelayHello { name: "bob".into(), ticket: None }));
        assert_eq!(
            parse_relay_hello(b"bob\nT1"),
            Ok(RelayHello { name: "bob".into(), ticket: Some("T1".into()) })
        );
        assert!(parse_relay_hello(b"bob\nT1\nx").is_err());
        assert_eq!(parse_relay_frame(b"7\n12"), Ok(RelayFrame::Ack(12)));
        assert_eq!(RelayFrame::Ack(12).body(), "7\n12");
        assert!(parse_relay_frame(b"7\nx").is_err());
        assert!(parse_relay_frame(b"8\n1").is_err());
    }
}
