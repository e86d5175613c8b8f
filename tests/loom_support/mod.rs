//! What the loom test files share: exploring a model with a bound, reporting executions and
// Each test crate that includes this module uses only some of it.
#![allow(dead_code)]
//! time, and asserting that loom finds a planted bug.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Preemption bound of the larger models unless `LOOM_MAX_PREEMPTIONS` says otherwise.
pub const PREEMPTIONS_MAX_DEFAULT: usize = 3;

/// How thoroughly to explore a model.
#[derive(Clone, Copy, Debug)]
pub enum Bound {
    /// Every interleaving; for models small enough to finish quickly.
    Exhaustive,
    /// At most `LOOM_MAX_PREEMPTIONS` (default [`PREEMPTIONS_MAX_DEFAULT`]) preemptions.
    FromEnv,
    /// At most `LOOM_MAX_PREEMPTIONS` preemptions, or this many when it is unset: for models
    /// whose executions are costly (the whole core runs in each), so CI can afford a lower bound.
    FromEnvOr(usize),
}

fn builder(bound: Bound) -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = match bound {
        Bound::Exhaustive => None,
        Bound::FromEnv => Some(builder.preemption_bound.unwrap_or(PREEMPTIONS_MAX_DEFAULT)),
        Bound::FromEnvOr(default) => Some(builder.preemption_bound.unwrap_or(default)),
    };
    builder
}

/// Explores `model` and reports how many executions that took and how long.
pub fn check(name: &str, bound: Bound, model: impl Fn() + Sync + Send + 'static) {
    let builder = builder(bound);
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let start = Instant::now();
    builder.check(move || {
        counter.fetch_add(1, Ordering::Relaxed);
        model();
    });
    eprintln!(
        "loom model {name}: {} executions in {:.2} s (preemption bound {:?})",
        executions.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        builder.preemption_bound,
    );
}

/// How a planted bug must show itself: precisely enough that no other failure of the model
/// (another assertion, another deadlock) passes for it.
#[derive(Clone, Copy, Debug)]
pub enum Expect {
    /// The panic of one assertion of the model: a text that only its message contains.
    Assertion(&'static str),
    /// A lost wake-up: loom's deadlock report with thread `waiting` blocked inside the mailbox
    /// (`src/host/mailbox.rs`, where its consumer waits) and thread `done` finished, the one
    /// whose push should have woken it. Thread ids count spawns from the model's main thread,
    /// `Id(0)`.
    LostWakeup { waiting: usize, done: usize },
    /// Any deadlock with some thread blocked in `file`.
    Deadlock { file: &'static str },
}

impl Expect {
    /// Whether a model's panic `message` is this failure.
    pub fn matches(self, message: &str) -> bool {
        match self {
            Expect::Assertion(text) => message.contains(text),
            Expect::LostWakeup { waiting, done } => {
                let blocked = format!(
                    "(Id({waiting}), Blocked(Location(Some(Location {{ file: \"src/host/mailbox.rs\""
                );
                message.starts_with("deadlock; threads = ")
                    && message.contains(&blocked)
                    && message.contains(&format!("(Id({done}), Terminated)"))
            }
            Expect::Deadlock { file } => {
                message.starts_with("deadlock; threads = ")
                    && message.contains(&format!("file: \"{file}\""))
            }
        }
    }
}

/// Explores `model`, asserts that loom fails it as `expected` says, and reports after how many
/// executions.
pub fn check_finds_bug(
    name: &str,
    bound: Bound,
    expected: Expect,
    model: impl Fn() + Sync + Send + 'static,
) {
    let mut builder = builder(bound);
    // Where each blocked thread waits, so that a deadlock names its place.
    builder.location = true;
    let executions = Arc::new(AtomicUsize::new(0));
    let counter = executions.clone();
    let start = Instant::now();
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        builder.check(move || {
            counter.fetch_add(1, Ordering::Relaxed);
            model();
        })
    }));
    let executions = executions.load(Ordering::Relaxed);
    let Err(payload) = outcome else {
        panic!("loom explored {executions} executions of {name} and missed the planted bug");
    };
    let message = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("<non-string panic>");
    assert!(
        expected.matches(message),
        "{name} failed, but not as planted: expected {expected:?}, got {message:?}"
    );
    eprintln!(
        "loom model {name}: planted bug found after {executions} executions in {:.2} s",
        start.elapsed().as_secs_f64(),
    );
}

#[cfg(test)]
mod tests {
    use super::Expect;

    #[test]
    fn a_lost_wake_up_is_told_from_other_deadlocks() {
        let lost = "deadlock; threads = [(Id(0), Blocked(Location(Some(Location { file: \
                    \"src/host/mailbox.rs\", line: 205, column: 32 })))), (Id(1), Terminated)]";
        let expect = Expect::LostWakeup { waiting: 0, done: 1 };
        assert!(expect.matches(lost));
        let elsewhere = lost.replace("src/host/mailbox.rs", "src/net/loom_models/memsocket.rs");
        assert!(!expect.matches(&elsewhere), "blocked somewhere else");
        assert!(!expect.matches(&lost.replace("(Id(1), Terminated)", "(Id(1), Blocked(")));
        assert!(!Expect::LostWakeup { waiting: 1, done: 0 }.matches(lost));
        assert!(!expect.matches("item 1 accepted but lost"));
    }
}
