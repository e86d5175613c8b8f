//! Architecture Invariant: a simulated world reads no wall clock, no unseeded randomness and
//! starts no threads. Only the CLI (wall time for its summaries) and the sweep runner (threads
//! that each run whole seeds) may name them.

use std::path::Path;

const FORBIDDEN: [&str; 7] =
    ["Instant", "SystemTime", "thread_rng", "OsRng", "from_entropy", "std::thread", "std::env"];

#[test]
fn the_simulator_is_deterministic_by_construction() {
    let mut found = Vec::new();
    let mut dirs = vec![Path::new("src/sim").to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/sim exists") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 10, "the simulator's sources are found: {files:?}");
    for path in files {
        let name = path.strip_prefix("src/sim").unwrap_or(&path).display().to_string();
        if ["cli.rs", "run.rs"].contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        for line in code {
            for word in FORBIDDEN.iter().filter(|w| line.contains(*w)) {
                found.push(format!("{name}: {word}: {}", line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "nondeterminism in src/sim:\n{}", found.join("\n"));
}

/// Architecture Invariant: the simulator's oracle owes nothing to the server. The checker and
/// its spec (texts, the name rule, pattern matching, written from PROTOCOL.md) name no server
/// code: no `core` (its glob, its ids, its texts), no `wire::reply`, no `host`, no `store`. The
/// world hands them plain numbers and texts: what clients saw and what the disk holds.
#[test]
fn the_checker_owes_nothing_to_the_server() {
    const SERVER: [&str; 6] =
        ["crate::core", "crate::wire", "crate::host", "crate::store", "crate::net", "crate::model"];
    let mut found = Vec::new();
    for file in ["src/sim/check.rs", "src/sim/spec.rs"] {
        let text = std::fs::read_to_string(file).expect("a readable source file");
        let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        for line in code {
            for word in SERVER.iter().filter(|w| line.contains(*w)) {
                found.push(format!("{file}: {word}: {}", line.trim()));
            }
            // `super::` reaches only the simulator's own modules that are not the server's.
            let allowed = ["super::scenario", "super::spec", "super::coverage", "super::*"];
            if line.contains("super::") && !allowed.iter().any(|a| line.contains(a)) {
                found.push(format!("{file}: {}", line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the checker uses server code:\n{}", found.join("\n"));
}
