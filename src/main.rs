//! The `chatroom` command: server, client, simulator, model checker and benchmarks.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod allocator;

/// glibc's malloc for the server (small connections), mimalloc for the rest (fast model
/// checking and simulation): see `allocator.rs`.
#[global_allocator]
static ALLOCATOR: allocator::Allocator = allocator::Allocator;

#[derive(Parser)]
#[command(
    name = "chatroom",
    version,
    about = "A verified chat server and the tools that prove it right"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat server (command port 8084, relay port 8086 on loopback by default).
    Server(chatroom::net::cli::ServerArgs),
    /// Interactive terminal client, compatible with the original chatroom.
    Client(chatroom::client::cli::ClientArgs),
    /// Run seeded simulated worlds and check the server's invariants.
    Sim(chatroom::sim::cli::SimArgs),
    /// Model-check small scenarios exhaustively.
    Check(chatroom::model::cli::CheckArgs),
    /// Measure throughput and latency over real TCP.
    Bench(chatroom::bench::cli::BenchArgs),
    /// Run every planted bug against every checker and print how soon each caught it (needs
    /// a build with `--features planted`; planted bugs never reach a default build).
    ///
    /// Checkers run: the simulator (seeds 0..N, stopped at the first failing seed, whose run
    /// is then shrunk), the model checker (for the bugs its world can show) and the fuzz
    /// targets' core driver; loom models and unit tests are listed with their commands, not
    /// run. Prints a Markdown table: bug, checker, seeds or states to first detection,
    /// invariant, shrunk size, shrink time. Exit codes: 0 every bug caught, 1 a bug escaped
    /// every checker, 2 a build without planted bugs or a usage error. Build it with
    /// `cargo run --release --features planted -- strength`.
    Strength(chatroom::strength::StrengthArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => args.run(),
        Command::Client(args) => args.run(),
        Command::Sim(args) => args.run(),
        Command::Check(args) => args.run(),
        Command::Bench(args) => args.run(),
        Command::Strength(args) => args.run(),
    }
}
