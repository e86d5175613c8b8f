//! The frame and request rules of PROTOCOL.md, written from that page alone, as the fuzz
//! targets' oracle: the decoder and the parsers are judged against the protocol, not only
//! against themselves. Nothing here calls `crate::wire`; it is deliberately naive (whole
//! inputs, no incremental state), so that it is easy to check by reading it next to the page.

/// A 10-byte header, per "Frames": the body length as ASCII decimal, padded with spaces;
/// surrounding spaces are accepted and anything else is rejected.
pub const HEADER_LEN: usize = 10;

/// How a stream of frames ends, per "Frames".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameEnd {
    /// The bytes run out: nothing wrong yet, more may come.
    NeedsMore,
    /// A header that is not a space-padded decimal length.
    BadHeader,
    /// A header declaring more than the limit, refused before its body arrives.
    TooLarge { len_declared: u64, len_max: usize },
}

/// The length a header declares, or `None` if the protocol rejects the header.
pub fn header_len(header: &[u8; HEADER_LEN]) -> Option<u64> {
    let first = header.iter().position(|&b| b != b' ')?;
    let last = header.iter().rposition(|&b| b != b' ')?;
    let digits = &header[first..=last];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // At most ten digits: below 10^10, so no overflow.
    Some(digits.iter().fold(0, |n, &d| n * 10 + u64::from(d - b'0')))
}

/// Splits a whole `stream` into frame bodies. The limit for each frame is `limit_of(i, prev)`
/// for the `i`-th frame, given the limit and body before it (the server's limit changes at
/// login, between frames). Returns the bodies and how the stream ended.
pub fn frames(
    stream: &[u8],
    limit_first: usize,
    mut limit_next: impl FnMut(usize, usize, &[u8]) -> usize,
) -> (Vec<Vec<u8>>, FrameEnd) {
    let mut bodies = Vec::new();
    let mut limit = limit_first;
    let mut rest = stream;
    loop {
        let Some((header, after)) = rest.split_first_chunk::<HEADER_LEN>() else {
            return (bodies, FrameEnd::NeedsMore);
        };
        let Some(len) = header_len(header) else { return (bodies, FrameEnd::BadHeader) };
        if len > limit as u64 {
            return (bodies, FrameEnd::TooLarge { len_declared: len, len_max: limit });
        }
        let len = len as usize;
        if after.len() < len {
            return (bodies, FrameEnd::NeedsMore);
        }
        let (body, after) = after.split_at(len);
        limit = limit_next(limit, bodies.len(), body);
        bodies.push(body.to_vec());
        rest = after;
    }
}

/// What the protocol says a command-channel body is, per "Requests on the command channel".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body<'a> {
    /// Not UTF-8: a failure reply, the connection stays open.
    NotUtf8,
    /// A code the table does not list: `-1\ninvalid command:CODE`.
    UnknownCode(&'a str),
    /// A listed code whose fields are all there, in the table's order. `fields` are exactly
    /// what the command means: for `2` the recipient, then the text (everything after the
    /// recipient line, newlines included); for `4` the pattern (empty if missing).
    Command { code: &'a str, fields: Vec<&'a str> },
    /// A listed code with missing or extra fields: a failure reply (the page leaves the text
    /// open), never a command.
    BadFields { code: &'a str },
    /// A listed code whose fields the page does not pin down (`0`, `-1`, `6` followed by
    /// something): the server may take it or refuse it.
    Either { code: &'a str },
}

/// Classifies one command-channel body.
pub fn body(body: &[u8]) -> Body<'_> {
    let Ok(text) = std::str::from_utf8(body) else { return Body::NotUtf8 };
    let (code, fields) = match text.split_once('\n') {
        Some((code, fields)) => (code, Some(fields)),
        None => (text, None),
    };
    let lines = || fields.map_or(Vec::new(), |f| f.split('\n').collect::<Vec<_>>());
    match code {
        "1" | "3" | "5" => match lines().as_slice() {
            [name, password] => Body::Command { code, fields: vec![name, password] },
            _ => Body::BadFields { code },
        },
        "2" => match fields.and_then(|f| f.split_once('\n')) {
            Some((to, text)) => Body::Command { code, fields: vec![to, text] },
            None => Body::BadFields { code },
        },
        "4" => match lines().as_slice() {
            [] => Body::Command { code, fields: vec![""] },
            [pattern] => Body::Command { code, fields: vec![pattern] },
            _ => Body::BadFields { code },
        },
        "0" | "6" | "-1" if fields.is_none_or(str::is_empty) => {
            Body::Command { code, fields: Vec::new() }
        }
        "0" | "6" | "-1" => Body::Either { code },
        _ => Body::UnknownCode(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_follow_the_page() {
        let h = |s: &str| header_len(s.as_bytes().try_into().expect("10 bytes"));
        assert_eq!(h("12        "), Some(12));
        assert_eq!(h("  12      "), Some(12));
        assert_eq!(h("9999999999"), Some(9_999_999_999));
        assert_eq!(h("          "), None);
        assert_eq!(h("1 2       "), None);
        assert_eq!(h("+12       "), None);
        assert_eq!(h("12\t       "), None);
    }

    #[test]
    fn bodies_follow_the_table() {
        assert_eq!(
            body(b"2\nbob\nhi\nthere"),
            Body::Command { code: "2", fields: vec!["bob", "hi\nthere"] }
        );
        assert_eq!(body(b"2\nbob"), Body::BadFields { code: "2" });
        assert_eq!(body(b"1\na\nb\nc"), Body::BadFields { code: "1" });
        assert_eq!(body(b"4"), Body::Command { code: "4", fields: vec![""] });
        assert_eq!(body(b"-1\n"), Body::Command { code: "-1", fields: vec![] });
        assert_eq!(body(b"7\n1"), Body::UnknownCode("7"));
        assert_eq!(body(&[0xff]), Body::NotUtf8);
    }
}
