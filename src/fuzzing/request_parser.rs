//! `request_parser`: the three body parsers never panic, keep what they echo small, never put a
//! newline inside a field, and the requests they accept survive a round trip through
//! [`render_request`]; and the command parser takes, refuses and splits a body as the table in
//! PROTOCOL.md does ([`super::protocol`], written from the page alone). The input is one frame
//! body, given to every parser.

use super::protocol::{self, Body};
use crate::wire::{
    parse_relay_frame, parse_relay_hello, parse_request, RelayFrame, RelayHello, Request,
    RequestError,
};

/// An echoed code (`invalid command:CODE`) is cut to this many characters.
const CODE_SHOWN_LEN_MAX: usize = 32;

/// Runs the target on one input. Panics if a property fails.
pub fn request_parser(body: &[u8]) {
    check_request(body);
    check_relay_hello(body);
    check_relay_frame(body);
}

/// The canonical body of a request: what a well-behaved client sends for it.
pub fn render_request(request: &Request) -> String {
    request.body()
}

fn check_request(body: &[u8]) {
    check_against_protocol(body);
    let request = match parse_request(body) {
        Ok(request) => request,
        Err(error) => return check_error(body, &error),
    };
    let no_newline = |field: &str| assert!(!field.contains('\n'), "newline in a field: {field:?}");
    match &request {
        Request::Login { name, password }
        | Request::Register { name, password }
        | Request::Delete { name, password } => {
            no_newline(name);
            no_newline(password);
        }
        Request::Send { to, text } => {
            no_newline(to);
            assert!(text.len() < body.len(), "the text is part of the body");
        }
        Request::List { pattern } => no_newline(pattern),
        Request::Help | Request::Logout | Request::Ticket => {}
    }
    let rendered = render_request(&request);
    assert_eq!(parse_request(rendered.as_bytes()), Ok(request), "round trip of {rendered:?}");
}

/// The parser's verdict is the page's: the command and its fields, or the kind of refusal.
fn check_against_protocol(body: &[u8]) {
    let parsed = parse_request(body);
    match protocol::body(body) {
        Body::NotUtf8 => assert_eq!(parsed, Err(RequestError::NotUtf8)),
        Body::UnknownCode(code) => match &parsed {
            Err(RequestError::UnknownCode(shown)) => {
                assert!(code.starts_with(shown.as_str()), "echoed {shown:?} for code {code:?}")
            }
            other => panic!("code {code:?} is not in the table, but the parser gave {other:?}"),
        },
        Body::BadFields { code } => assert!(
            matches!(
                parsed,
                Err(RequestError::MissingField { .. } | RequestError::ExtraFields { .. })
            ),
            "code {code} with wrong fields gave {parsed:?}"
        ),
        Body::Either { .. } => {}
        Body::Command { code, fields } => {
            let request = parsed.unwrap_or_else(|e| panic!("the page accepts code {code}: {e}"));
            assert_eq!(command_of(&request), (code, fields), "fields differ from the page's");
        }
    }
}

/// A parsed request as the page's code and fields.
fn command_of(request: &Request) -> (&'static str, Vec<&str>) {
    match request {
        Request::Help => ("0", Vec::new()),
        Request::Login { name, password } => ("1", vec![name, password]),
        Request::Send { to, text } => ("2", vec![to, text]),
        Request::Register { name, password } => ("3", vec![name, password]),
        Request::List { pattern } => ("4", vec![pattern]),
        Request::Delete { name, password } => ("5", vec![name, password]),
        Request::Logout => ("-1", Vec::new()),
        Request::Ticket => ("6", Vec::new()),
    }
}

/// Every error is fit to send back: short when it echoes, and it names the real problem.
fn check_error(body: &[u8], error: &RequestError) {
    match error {
        RequestError::NotUtf8 => assert!(std::str::from_utf8(body).is_err()),
        RequestError::UnknownCode(code) => {
            assert!(code.chars().count() <= CODE_SHOWN_LEN_MAX, "echoed code too long");
            let text = std::str::from_utf8(body).expect("an unknown code is valid UTF-8");
            assert!(text.starts_with(code.as_str()), "the echoed code is the body's first line");
        }
        RequestError::MissingField { .. } | RequestError::ExtraFields { .. } => {}
    }
    assert!(error.to_string().chars().count() <= 128, "error text too long: {error}");
}

fn check_relay_hello(body: &[u8]) {
    let Ok(hello) = parse_relay_hello(body) else { return };
    assert!(!hello.name.contains('\n'));
    assert!(!hello.ticket.as_deref().is_some_and(|t| t.contains('\n')));
    let rendered = match &hello.ticket {
        Some(ticket) => format!("{}\n{ticket}", hello.name),
        None => hello.name.clone(),
    };
    assert_eq!(rendered.as_bytes(), body, "a hello is its name and ticket, nothing else");
    let again: RelayHello = parse_relay_hello(rendered.as_bytes()).expect("round trip");
    assert_eq!(again, hello);
}

fn check_relay_frame(body: &[u8]) {
    match parse_relay_frame(body) {
        Ok(RelayFrame::Ack(id)) => {
            let rendered = RelayFrame::Ack(id).body();
            assert_eq!(parse_relay_frame(rendered.as_bytes()), Ok(RelayFrame::Ack(id)));
        }
        Err(error) => {
            assert!(error.to_string().chars().count() <= 128, "error text too long: {error}")
        }
    }
}
