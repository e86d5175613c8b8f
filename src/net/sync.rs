//! The one switch for the concurrency primitives of the TCP adapter.
//!
//! Everything in `src/net` that threads share (the mailbox between a command thread and its
//! relay, the core's mutex, shutdown flags) takes its `Arc`, `Mutex`, `Condvar`, atomics and
//! `thread` from here, never from `std` directly. Normally these are `std`'s; built with
//! `RUSTFLAGS="--cfg loom"` they are [loom]'s, whose scheduler then explores every
//! interleaving of the real code. That is the point of the switch: loom checks the code that
//! ships, not a copy of it written for the test. A `std::sync` import elsewhere in `src/net`
//! would silently escape that check.
//!
//! [loom]: https://docs.rs/loom

#[cfg(not(loom))]
pub use std::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub use std::thread;

#[cfg(loom)]
pub use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(loom)]
pub use loom::thread;

/// Atomic integers and flags, from `std` or from loom like the rest of this module.
pub mod atomic {
    #[cfg(not(loom))]
    pub use std::sync::atomic::*;

    #[cfg(loom)]
    pub use loom::sync::atomic::*;
}

/// Architecture Invariant: no file in `src/net` takes a lock, condvar, atomic or thread from
/// `std` directly; it would escape loom. Test modules (`#[cfg(test)]`, `#[cfg(all(test,
/// not(loom)))]`) may, since they run on std threads outside any loom model. The check is
/// textual: it catches the usual spellings, not a `use std::{sync::Mutex}` tree.
#[cfg(all(test, not(loom)))]
mod tidy {
    use std::fs;
    use std::path::Path;

    /// `std::sync` items that are plain data, shared by std and loom (loom's locks return
    /// std's `LockResult`), and so safe to name directly.
    const STD_SYNC_ALLOWED: [&str; 3] = ["PoisonError", "LockResult", "TryLockResult"];

    /// The part of `source` that ships: everything before its test-only module.
    fn shipped_part(source: &str) -> &str {
        let test_module_at = ["#[cfg(test)]", "#[cfg(all(test, not(loom)))]"]
            .iter()
            .filter_map(|marker| source.find(marker))
            .min();
        &source[..test_module_at.unwrap_or(source.len())]
    }

    /// The reasons `source` breaks the invariant, one per offending use.
    fn violations(source: &str) -> Vec<String> {
        let shipped = shipped_part(source);
        let mut found = Vec::new();
        if shipped.contains("std::thread") {
            found.push("names std::thread".to_owned());
        }
        for (at, _) in shipped.match_indices("std::sync::") {
            let rest = &shipped[at + "std::sync::".len()..];
            let name: String =
                rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !STD_SYNC_ALLOWED.contains(&name.as_str()) {
                found.push(format!("names std::sync::{}", rest.lines().next().unwrap_or("")));
            }
        }
        found
    }

    #[test]
    fn src_net_takes_concurrency_primitives_only_from_sync() {
        let net_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/net");
        let mut offenders = Vec::new();
        for entry in fs::read_dir(&net_dir).unwrap() {
            let path = entry.unwrap().path();
            let is_rust = path.extension().is_some_and(|ext| ext == "rs");
            if !is_rust || path.ends_with("sync.rs") {
                continue;
            }
            let source = fs::read_to_string(&path).unwrap();
            for violation in violations(&source) {
                offenders.push(format!("{}: {violation}", path.display()));
            }
        }
        assert!(offenders.is_empty(), "use crate::net::sync instead:\n{}", offenders.join("\n"));
    }

    #[test]
    fn the_tidy_check_catches_std_primitives_outside_tests() {
        assert!(violations("use std::sync::PoisonError;\n").is_empty());
        assert!(violations("#[cfg(test)]\nmod tests { use std::thread; }\n").is_empty());
        assert_eq!(violations("use std::sync::Mutex;\n").len(), 1);
        assert_eq!(violations("use std::sync::{Arc, PoisonError};\n").len(), 1);
        assert_eq!(violations("use std::sync::atomic::AtomicBool;\n").len(), 1);
        assert_eq!(violations("let t = std::thread::spawn(f);\n").len(), 1);
    }
}
