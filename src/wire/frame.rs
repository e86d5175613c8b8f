//! Frame codec: a 10-byte ASCII length header, then that many body bytes.
//!
//! The [`Decoder`] is incremental: feed it whatever a read returned (a header split byte by byte,
//! several frames at once) and pull complete bodies out. It never reserves memory from a declared
//! length, so a peer that announces a huge frame costs nothing; a frame above the limit is refused
//! as soon as its header is complete.

use thiserror::Error;

/// Length of the frame header in bytes.
pub const HEADER_LEN: usize = 10;

/// The largest length a header can express.
const LEN_ENCODABLE_MAX: u64 = 9_999_999_999;

/// Why a byte stream cannot be decoded further. After one of these the stream cannot be
/// resynchronised: the connection gets one failure reply and is closed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header is not a decimal length padded with spaces.
    #[error("bad frame header {shown:?}: expected the body length as ASCII digits, space-padded to 10 bytes")]
    BadHeader { shown: String },
    /// The header declares a body larger than this connection may send.
    #[error("frame of {len_declared} bytes is larger than the limit of {len_max} bytes")]
    TooLarge { len_declared: u64, len_max: usize },
}

/// Incremental frame decoder with a body size limit.
#[derive(Debug, Clone)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out; compacted lazily so that decoding stays linear.
    consumed: usize,
    body_len_max: usize,
    failed: Option<FrameError>,
    /// The length declared by the header at `consumed`, once that header has arrived whole: a
    /// body arriving in many reads is then not re-parsed on each (only re-checked against the
    /// limit, which may have changed).
    len_declared: Option<u64>,
}

impl Decoder {
    /// A decoder refusing bodies longer than `body_len_max` bytes.
    pub fn new(body_len_max: usize) -> Self {
        Decoder { buf: Vec::new(), consumed: 0, body_len_max, failed: None, len_declared: None }
    }

    /// Changes the limit for frames whose header has not been decoded yet.
    pub fn set_body_len_max(&mut self, body_len_max: usize) {
        self.body_len_max = body_len_max;
    }

    /// The current body size limit.
    pub fn body_len_max(&self) -> usize {
        self.body_len_max
    }

    /// Appends received bytes. Call [`Decoder::decode`] until it returns `Ok(None)` afterwards.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.consumed > 0 && self.consumed >= self.buf.len() / 2 {
            self.buf.drain(..self.consumed);
            self.consumed = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete body, `Ok(None)` if more bytes are needed, or the error that ended the
    /// stream (returned again on every later call).
    pub fn decode(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let pending = &self.buf[self.consumed..];
        if pending.len() < HEADER_LEN {
            return Ok(None);
        }
        let parsed = match self.len_declared {
            Some(len_declared) => Ok(len_declared),
            None => parse_header(&pending[..HEADER_LEN]),
        };
        let len = match parsed.and_then(|len_declared| check_len(len_declared, self.body_len_max)) {
            Ok(len) => len,
            Err(error) => {
                self.buf = Vec::new();
                self.consumed = 0;
                self.len_declared = None;
                self.failed = Some(error.clone());
                return Err(error);
            }
        };
        if pending.len() < HEADER_LEN + len {
            self.len_declared = Some(len as u64);
            return Ok(None);
        }
        self.len_declared = None;
        let body = pending[HEADER_LEN..HEADER_LEN + len].to_vec();
        self.consumed += HEADER_LEN + len;
        if self.consumed == self.buf.len() {
            // Nothing is left over (the usual case): start again from an empty buffer, which
            // drops nothing observable and lets a copy of the decoder skip the bytes.
            self.buf.clear();
            self.consumed = 0;
        }
        Ok(Some(body))
    }

    /// True while the frame at the head of the buffer has arrived in part: its sender owes the
    /// rest. Whole frames left undecoded (the caller stopped decoding) are not mid-frame, nor is
    /// a header that will fail the stream when decoded.
    pub fn is_mid_frame(&self) -> bool {
        let pending = &self.buf[self.consumed..];
        if self.failed.is_some() || pending.is_empty() {
            return false;
        }
        if pending.len() < HEADER_LEN {
            return true;
        }
        let declared = match self.len_declared {
            Some(len_declared) => Ok(len_declared),
            None => parse_header(&pending[..HEADER_LEN]),
        };
        declared.is_ok_and(|len_declared| ((pending.len() - HEADER_LEN) as u64) < len_declared)
    }

    /// Bytes currently buffered (for memory accounting).
    pub fn buffered_len(&self) -> usize {
        self.buf.len() - self.consumed
    }
}

/// The length a header declares.
fn parse_header(header: &[u8]) -> Result<u64, FrameError> {
    let bad = || FrameError::BadHeader { shown: String::from_utf8_lossy(header).into_owned() };
    // Spaces, then at least one digit, then spaces, in one pass (this runs once per frame).
    let (mut len_declared, mut digits_seen, mut digits_ended) = (0u64, false, false);
    for &byte in header {
        match byte {
            b'0'..=b'9' if !digits_ended => {
                // Ten digits fit in a u64, so this cannot overflow.
                len_declared = len_declared * 10 + u64::from(byte - b'0');
                digits_seen = true;
            }
            b' ' => digits_ended = digits_seen,
            _ => return Err(bad()),
        }
    }
    if !digits_seen {
        return Err(bad());
    }
    Ok(len_declared)
}

/// `len_declared` if it is within `body_len_max`.
fn check_len(len_declared: u64, body_len_max: usize) -> Result<usize, FrameError> {
    if len_declared > body_len_max as u64 {
        return Err(FrameError::TooLarge { len_declared, len_max: body_len_max });
    }
    Ok(len_declared as usize)
}

/// Appends one frame carrying `body` to `out`.
pub fn encode(body: &[u8], out: &mut Vec<u8>) {
    encode_parts(&[body], out);
}

/// Appends one frame whose body is the concatenation of `parts`, without building the body first.
pub fn encode_parts(parts: &[&[u8]], out: &mut Vec<u8>) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    assert!(len as u64 <= LEN_ENCODABLE_MAX, "frame body of {len} bytes cannot be encoded");
    out.reserve(HEADER_LEN + len);
    out.extend_from_slice(&header(len));
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// The header for a body of `len` bytes (at most [`LEN_ENCODABLE_MAX`]): its decimal digits,
/// left-justified and space-padded like Python's `str(len).ljust(10)`. Not `format!`: this runs
/// once per frame.
fn header(len: usize) -> [u8; HEADER_LEN] {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(len).as_bytes();
    let mut header = [b' '; HEADER_LEN];
    header[..digits.len()].copy_from_slice(digits);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(body, &mut out);
        out
    }

    fn decode_all(decoder: &mut Decoder) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut bodies = Vec::new();
        while let Some(body) = decoder.decode()? {
            bodies.push(body);
        }
        Ok(bodies)
    }

    #[test]
    fn header_is_python_left_justified() {
        assert_eq!(frame(b"1\nabc\nabc"), b"9         1\nabc\nabc");
        for len in [0, 7, 10, 99, 100, 12_345, 999_999_999, 9_999_999_999] {
            assert_eq!(header(len), format!("{len:<10}").as_bytes(), "header of {len}");
        }
    }

    #[test]
    fn header_split_byte_by_byte() {
        let bytes = frame(b"2\nbob\nhello");
        let mut decoder = Decoder::new(100);
        for (i, b) in bytes.iter().enumerate() {
            decoder.feed(&[*b]);
            let got = decode_all(&mut decoder).unwrap();
            if i + 1 < bytes.len() {
                assert!(got.is_empty());
                assert!(decoder.is_mid_frame());
            } else {
                assert_eq!(got, vec![b"2\nbob\nhello".to_vec()]);
                assert!(!decoder.is_mid_frame());
            }
        }
    }

    /// Mid-frame means the sender owes the rest of the frame at the head (the frame deadline
    /// runs over it): not when whole frames wait undecoded, whatever follows them.
    #[test]
    fn only_a_frame_at_the_head_still_arriving_is_mid_frame() {
        let (first, second) = (frame(b"first"), frame(b"second"));
        let mut decoder = Decoder::new(100);
        decoder.feed(&first[..4]);
        assert!(decoder.is_mid_frame(), "a header in part");
        decoder.feed(&first[4..12]);
        assert!(decoder.is_mid_frame(), "a header whole, its body in part");
        decoder.feed(&first[12..]);
        assert!(!decoder.is_mid_frame(), "a whole frame, not yet decoded");
        decoder.feed(&second[..3]);
        assert!(!decoder.is_mid_frame(), "a whole frame ahead of a part of the next");
        assert_eq!(decoder.decode(), Ok(Some(b"first".to_vec())));
        assert!(decoder.is_mid_frame(), "the part of the next is at the head now");
        decoder.feed(&second[3..]);
        assert_eq!(decode_all(&mut decoder).unwrap(), vec![b"second".to_vec()]);
        assert!(!decoder.is_mid_frame());
        decoder.feed(b"not a len!");
        assert!(!decoder.is_mid_frame(), "a bad header fails the stream: nothing is owed");
        let mut huge = Decoder::new(100);
        huge.feed(b"5000      abc");
        assert!(huge.is_mid_frame(), "over the limit, refused when decoded; owed until then");
    }

    #[test]
    fn several_frames_in_one_read() {
        let mut bytes = frame(b"a");
        bytes.extend(frame(b""));
        bytes.extend(frame(b"ccc"));
        let mut decoder = Decoder::new(100);
        decoder.feed(&bytes);
        assert_eq!(decode_all(&mut decoder).unwrap(), vec![b"a".to_vec(), vec![], b"ccc".to_vec()]);
    }

    #[test]
    fn surrounding_spaces_are_accepted() {
        let mut decoder = Decoder::new(100);
        decoder.feed(b"   3      abc");
        assert_eq!(decoder.decode().unwrap(), Some(b"abc".to_vec()));
    }

    /// The header rule written plainly: spaces around a non-empty run of digits.
    fn header_len_reference(header: &[u8]) -> Option<u64> {
        let digits = header.trim_ascii_start().trim_ascii_end();
        let spaces_only = header.iter().all(|b| b.is_ascii_digit() || *b == b' ');
        let valid = !digits.is_empty() && spaces_only && digits.iter().all(u8::is_ascii_digit);
        valid.then(|| digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
    }

    #[test]
    fn the_header_parser_agrees_with_the_plain_rule() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let alphabet = b"  0123456789\tx";
        for _ in 0..20_000 {
            let header: Vec<u8> =
                (0..HEADER_LEN).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
            let parsed = parse_header(&header).ok();
            assert_eq!(
                parsed,
                header_len_reference(&header),
                "{:?}",
                String::from_utf8_lossy(&header)
            );
        }
    }

    #[test]
    fn bad_headers_are_refused() {
        for header in [
            &b"abc       "[..],
            b"          ",
            b"1 2       ",
            b"-1        ",
            b"+5        ",
            b"0x10      ",
            b"12\n       ",
        ] {
            let mut decoder = Decoder::new(100);
            decoder.feed(header);
            assert!(matches!(decoder.decode(), Err(FrameError::BadHeader { .. })), "{header:?}");
            // The stream stays failed.
            decoder.feed(&frame(b"ok"));
            assert!(decoder.decode().is_err());
        }
    }

    #[test]
    fn oversized_frame_is_refused_from_the_header() {
        let mut decoder = Decoder::new(8192);
        decoder.feed(b"9999999999");
        assert_eq!(
            decoder.decode(),
            Err(FrameError::TooLarge { len_declared: 9_999_999_999, len_max: 8192 })
        );
        let mut decoder = Decoder::new(8192);
        decoder.feed(b"8193      x");
        assert!(matches!(decoder.decode(), Err(FrameError::TooLarge { len_declared: 8193, .. })));
        assert_eq!(decoder.buffered_len(), 0);
    }

    #[test]
    fn declared_length_reserves_nothing() {
        let mut decoder = Decoder::new(64 * 1024);
        decoder.feed(b"65536     x");
        assert_eq!(decoder.decode(), Ok(None));
        assert!(decoder.buf.capacity() < 1024);
    }

    #[test]
    fn limit_change_applies_to_the_next_header() {
        let mut decoder = Decoder::new(4);
        decoder.feed(&frame(b"abcd"));
        assert_eq!(decoder.decode().unwrap(), Some(b"abcd".to_vec()));
        decoder.set_body_len_max(2);
        decoder.feed(&frame(b"abc"));
        assert!(decoder.decode().is_err());
    }

    #[test]
    fn a_header_parsed_before_its_body_arrived_still_meets_a_lowered_limit() {
        let mut decoder = Decoder::new(8);
        let bytes = frame(b"abcdef");
        decoder.feed(&bytes[..12]);
        assert_eq!(decoder.decode(), Ok(None));
        decoder.set_body_len_max(5);
        decoder.feed(&bytes[12..]);
        assert!(matches!(decoder.decode(), Err(FrameError::TooLarge { len_declared: 6, .. })));
    }

    #[test]
    fn a_body_in_many_pieces_decodes_once_then_the_next_header_is_read() {
        let mut decoder = Decoder::new(64);
        let mut bytes = frame(b"0123456789");
        bytes.extend_from_slice(&frame(b"xy"));
        let mut bodies = Vec::new();
        for byte in &bytes {
            decoder.feed(std::slice::from_ref(byte));
            while let Some(body) = decoder.decode().unwrap() {
                bodies.push(body);
            }
        }
        assert_eq!(bodies, vec![b"0123456789".to_vec(), b"xy".to_vec()]);
        assert!(!decoder.is_mid_frame());
    }
}
