//! Bugs planted on purpose, compiled only into tests, to prove that the checkers (simulator,
//! model checker, proptest) notice them. Each variant names the bug and the check that must
//! catch it; the hooks in the core are one-line `if`s on [`Config::planted`](super::Config).

/// Which bug to plant. `None` is the real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Planted {
    #[default]
    None,
    /// A connection's undecoded bytes are never limited; `fuzzing::CoreDriver`'s memory bound
    /// must catch it.
    InboundUnbounded,
    /// Replies leave without waiting for durability; `fuzzing::CoreDriver`'s acknowledgement
    /// check must catch it.
    ReplyBeforeDurable,
}
