//! `frame_decoder`: the same bytes, decoded in arbitrary pieces and in one piece, give the same
//! frames and the same error, and the frames and error PROTOCOL.md gives ([`super::protocol`],
//! written from the page alone); nothing a peer sends makes the decoder hold more than it was
//! fed or hand out a body above the limit.
//!
//! Input: `[limit selector, cut count n, n chunk lengths.., stream..]`. The stream is fed in
//! chunks whose lengths cycle through the chunk lengths (0 counts as 1). After every frame the
//! limit may change, as the core changes it at login, the same way on both paths. Only the first
//! [`STREAM_LEN_MAX`] bytes of the stream are used.

use super::protocol::{self, FrameEnd};
use crate::wire::{encode, Decoder, FrameError};

/// Limits the fuzzer picks from: tiny, the core's before-login and after-login defaults, and one
/// above what a header can express.
const LIMITS: [usize; 5] = [0, 7, 8 * 1024, 64 * 1024, usize::MAX >> 1];

/// Stream bytes used per input. An execution costs about one decoder call per chunk, and with
/// one-byte chunks a 4 KiB input (libFuzzer's default size limit) took as long as a hundred short
/// ones; every path of the decoder (each limit, split headers, bodies across chunks, compaction,
/// several frames per chunk, errors) is reachable in a few dozen bytes, because the limits it
/// picks from include 0 and 7 bytes.
const STREAM_LEN_MAX: usize = 512;

/// What a decoding run produced: the bodies, then how it stopped (`None`: needs more bytes).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    bodies: Vec<Vec<u8>>,
    error: Option<FrameError>,
}

/// Runs the target on one input. Panics if a property fails.
pub fn frame_decoder(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let (cuts, stream) = split_cuts(rest);
    let stream = &stream[..stream.len().min(STREAM_LEN_MAX)];
    let limit = LIMITS[usize::from(selector) % LIMITS.len()];
    let whole = decode_in_chunks(stream, &[stream.len().max(1)], limit);
    let chunked = decode_in_chunks(stream, &cuts, limit);
    assert_eq!(whole, chunked, "chunking changed the decoding (cuts {cuts:?})");
    check_against_protocol(stream, limit, &whole);
    check_round_trip(&whole.bodies);
}

/// The decoder agrees with the page: the same bodies, and the same kind of end.
fn check_against_protocol(stream: &[u8], limit: usize, outcome: &Outcome) {
    let (bodies, end) = protocol::frames(stream, limit, next_limit);
    assert_eq!(outcome.bodies, bodies, "the decoder's frames differ from PROTOCOL.md's");
    let agrees = match (&outcome.error, &end) {
        (None, FrameEnd::NeedsMore) | (Some(FrameError::BadHeader { .. }), FrameEnd::BadHeader) => {
            true
        }
        (
            Some(FrameError::TooLarge { len_declared, len_max }),
            FrameEnd::TooLarge { len_declared: declared, len_max: max },
        ) => len_declared == declared && len_max == max,
        _ => false,
    };
    assert!(agrees, "the decoder ended with {:?}, PROTOCOL.md says {end:?}", outcome.error);
}

/// Splits `[n, n lengths.., stream..]` into chunk lengths (at least one, none zero) and stream.
fn split_cuts(rest: &[u8]) -> (Vec<usize>, &[u8]) {
    let Some((&count, rest)) = rest.split_first() else { return (vec![1], rest) };
    let count = usize::from(count).min(rest.len());
    let (cuts, stream) = rest.split_at(count);
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c).max(1)).collect();
    if cuts.is_empty() {
        cuts.push(1);
    }
    (cuts, stream)
}

/// The limit after the `index`-th body (0-based), as a function of the frame only.
fn next_limit(limit: usize, index: usize, body: &[u8]) -> usize {
    match body.first() {
        Some(b'L') => LIMITS[(index + 1) % LIMITS.len()],
        _ => limit,
    }
}

fn decode_in_chunks(stream: &[u8], cuts: &[usize], limit_first: usize) -> Outcome {
    let mut decoder = Decoder::new(limit_first);
    let mut bodies = Vec::new();
    let mut fed = 0usize;
    // Bytes of the stream handed out as frames so far, kept as a running total: summing the
    // bodies after every chunk made an input of n one-byte chunks cost O(n * frames).
    let mut consumed = 0usize;
    for &cut in cuts.iter().cycle() {
        let chunk = &stream[fed..(fed + cut).min(stream.len())];
        fed += chunk.len();
        decoder.feed(chunk);
        loop {
            let limit = decoder.body_len_max();
            match decoder.decode() {
                Ok(Some(body)) => {
                    assert!(body.len() <= limit, "body of {} above limit {limit}", body.len());
                    decoder.set_body_len_max(next_limit(limit, bodies.len(), &body));
                    consumed += body.len() + crate::wire::HEADER_LEN;
                    bodies.push(body);
                }
                Ok(None) => break,
                Err(error) => return stopped(&mut decoder, bodies, error),
            }
        }
        assert_eq!(decoder.buffered_len(), fed - consumed, "buffered bytes do not add up");
        assert_eq!(decoder.is_mid_frame(), decoder.buffered_len() > 0);
        if fed == stream.len() {
            return Outcome { bodies, error: None };
        }
    }
    unreachable!("cycling over at least one cut always reaches the end of the stream")
}

/// After an error the decoder holds nothing and keeps failing the same way, whatever comes next.
fn stopped(decoder: &mut Decoder, bodies: Vec<Vec<u8>>, error: FrameError) -> Outcome {
    assert_eq!(decoder.buffered_len(), 0, "a failed decoder keeps no bytes");
    assert!(!decoder.is_mid_frame());
    decoder.feed(b"2         ok");
    assert_eq!(decoder.decode(), Err(error.clone()), "a failed stream resynchronised");
    Outcome { bodies, error: Some(error) }
}

/// Encoding the decoded bodies and decoding them again gives the same bodies.
fn check_round_trip(bodies: &[Vec<u8>]) {
    let mut bytes = Vec::new();
    for body in bodies {
        encode(body, &mut bytes);
    }
    let mut decoder = Decoder::new(usize::MAX >> 1);
    decoder.feed(&bytes);
    for body in bodies {
        let again = decoder.decode();
        assert_eq!(again.as_ref().map(|b| b.as_deref()), Ok(Some(body.as_slice())), "round trip");
    }
    assert_eq!(decoder.decode(), Ok(None));
    assert_eq!(decoder.buffered_len(), 0);
}
