//! Command-line glue for `chatroom` (placeholder until this part is built).

use std::process::ExitCode;

/// Arguments (placeholder).
#[derive(Debug, clap::Args)]
pub struct SimArgs {}

impl SimArgs {
    /// Runs the command.
    pub fn run(self) -> ExitCode {
        eprintln!("chatroom: this command is not built yet");
        ExitCode::from(2)
    }
}
