//! Architecture Invariant: a simulated world reads no wall clock, no unseeded randomness and
//! starts no threads. Only the CLI (wall time for its summaries) and the sweep runner (threads
//! that each run whole seeds) may name them.

use std::path::Path;

const FORBIDDEN: [&str; 7] =
    ["Instant", "SystemTime", "thread_rng", "OsRng", "from_entropy", "std::thread", "std::env"];

#[test]
fn the_simulator_is_deterministic_by_construction() {
    let mut found = Vec::new();
    scan(Path::new("src/sim"), &mut found);
    assert!(found.is_empty(), "nondeterminism in src/sim:\n{}", found.join("\n"));
}

/// Every source file under `dir`, submodules' directories included.
fn scan(dir: &Path, found: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("the directory exists") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            scan(&path, found);
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if dir == Path::new("src/sim") && ["cli.rs", "run.rs"].contains(&name.as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable source file");
        let code = text.lines().filter(|l| !l.trim_start().starts_with("//"));
        for line in code {
            for word in FORBIDDEN.iter().filter(|w| line.contains(*w)) {
                found.push(format!("{}: {word}: {}", path.display(), line.trim()));
            }
        }
    }
}
