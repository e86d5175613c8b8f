//! The logic of the fuzz targets, kept in the library so that stable `cargo test` runs it too.
//!
//! Each function takes the raw bytes libFuzzer generates and panics when a property fails. The
//! cargo-fuzz crate in `fuzz/` calls them in one-line targets; `tests/fuzz_corpus.rs` runs them
//! over the committed corpus (`fuzz/corpus/<target>/`), so every input that once found a bug stays
//! a regression test. Inputs are decoded by small byte-level interpreters rather than `arbitrary`,
//! so the library needs no extra dependency and a corpus file reads as a little program.

mod core_streams;
mod driver;
mod frame_decoder;
mod log_recovery;
pub mod protocol;
mod request_parser;

pub use core_streams::{core_streams, core_streams_driver};
pub use driver::{probe_inbound_flood, probe_send_while_not_durable, ConnState, CoreDriver};
pub use frame_decoder::frame_decoder;
pub use log_recovery::log_recovery;
pub use request_parser::{render_request, request_parser};
