//! The wire protocol: length-prefixed frames and the typed messages they carry.
//!
//! [`frame`] turns bytes that arrive in arbitrary pieces into frame bodies and back; it checks
//! the size limit from the header alone, before buffering any of the body. [`request`] parses
//! bodies into typed requests, relay handshakes and acknowledgements; [`reply`] builds the
//! exact reply and push bodies of PROTOCOL.md. Nothing here knows about connections or state.

pub mod frame;
pub mod reply;
pub mod request;

pub use frame::{encode, encode_parts, Decoder, FrameError, HEADER_LEN};
pub use request::{
    parse_relay_frame, parse_relay_hello, parse_request, RelayFrame, RelayHello, Request,
    RequestError,
};
