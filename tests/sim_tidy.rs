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
