//! Tidy: the architecture invariants of ARCHITECTURE.md that a test can enforce.

use std::fs;
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`. Panics if `dir` is not a directory or holds no Rust file: a
/// guarded directory that moved must fail the check, not leave it nothing to look at.
fn rust_files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    assert!(root.is_dir(), "tidy guards {dir}, which is not a directory: did it move?");
    let mut files = Vec::new();
    let mut dirs = vec![root];
    while let Some(dir) = dirs.pop() {
        let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.map(|e| e.unwrap().path()) {
            if entry.is_dir() {
                dirs.push(entry);
            } else if entry.extension().is_some_and(|e| e == "rs") {
                files.push(entry);
            }
        }
    }
    files.sort();
    assert!(!files.is_empty(), "tidy guards {dir}, which holds no Rust file: did it move?");
    files
}

/// The file's code before its `mod tests` (and that module's attributes), without comments.
fn shipped_code(text: &str) -> String {
    let shipped = text.split("\nmod tests {").next().unwrap();
    let mut lines: Vec<&str> =
        shipped.lines().filter(|line| !line.trim_start().starts_with("//")).collect();
    while lines.last().is_some_and(|line| line.starts_with("#[")) {
        lines.pop();
    }
    lines.join("\n")
}

fn offenders(dir: &str, forbidden: &[&str], allowed_files: &[&str]) -> Vec<String> {
    offenders_in(&rust_files(dir), forbidden, allowed_files)
}

fn offenders_in(files: &[PathBuf], forbidden: &[&str], allowed_files: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_str().unwrap();
        if allowed_files.contains(&name) {
            continue;
        }
        let code = shipped_code(&fs::read_to_string(path).unwrap());
        for pattern in forbidden {
            if code.contains(pattern) {
                found.push(format!("{}: {pattern}", path.display()));
            }
        }
    }
    found
}

/// Architecture Invariant: the core is pure: no I/O, no clock, no threads, no global RNG.
#[test]
fn core_is_pure() {
    let forbidden = [
        "std::net",
        "std::fs",
        "std::thread",
        "std::time",
        "Instant",
        "SystemTime",
        "thread_rng",
        "OsRng",
        "from_entropy",
        "std::env",
        "println!",
        "eprintln!",
    ];
    let found = offenders("src/core", &forbidden, &["testkit.rs"]);
    assert!(found.is_empty(), "impure code in src/core:\n{}", found.join("\n"));
}

/// Architecture Invariant: determinism is structural: core, sim and model never iterate a
/// HashMap or HashSet (their order changes from run to run).
#[test]
fn core_sim_and_model_use_ordered_collections() {
    let forbidden = ["HashMap", "HashSet", "RandomState"];
    let mut found = offenders("src/core", &forbidden, &[]);
    found.extend(offenders("src/sim", &forbidden, &[]));
    found.extend(offenders("src/model", &forbidden, &[]));
    assert!(found.is_empty(), "unordered collections:\n{}", found.join("\n"));
}

/// Architecture Invariant: the thread pair's shared primitives come from `host::sync`, so loom
/// checks the code that ships.
#[test]
fn net_takes_its_primitives_from_the_sync_switch() {
    let forbidden = [
        "std::sync::Arc",
        "std::sync::Mutex",
        "std::sync::Condvar",
        "std::sync::atomic",
        "std::sync::{",
        "std::thread::spawn",
        "std::thread::Builder",
    ];
    let mut found = offenders("src/net", &forbidden, &[]);
    found.extend(offenders("src/host", &forbidden, &["sync.rs"]));
    assert!(found.is_empty(), "primitives bypassing host::sync:\n{}", found.join("\n"));
}

/// Architecture Invariant: no driver re-implements the host: only the core and the host drain
/// the core's outputs. The model checker, the fuzz driver and the core's test kit run the
/// host's instant writers; the TCP adapter and the simulator call it from their own writers.
#[test]
fn only_the_host_drains_the_core() {
    let mut files = rust_files("src");
    files.extend(rust_files("tests"));
    // The core's own definition (and its module docs), and the host.
    let allowed = ["/src/core/server.rs", "/src/core/mod.rs", "/src/host/"];
    files.retain(|path| {
        let path = path.to_string_lossy();
        !allowed.iter().any(|a| path.contains(a)) && !path.ends_with("/tests/tidy.rs")
    });
    let found = offenders_in(&files, &["poll_output("], &[]);
    assert!(found.is_empty(), "glue outside the host:\n{}", found.join("\n"));
}

/// The checks above must be able to fail: they see a planted offender, and only outside
/// the test module.
#[test]
fn tidy_sees_what_it_forbids() {
    let path = std::env::temp_dir().join(format!("chatroom-tidy-{}.rs", std::process::id()));
    let text = "use std::collections::HashMap;\n// Instant in a comment\n#[cfg(test)]\nmod tests {\n    use std::time::Instant;\n}\n";
    fs::write(&path, text).unwrap();
    let found = offenders_in(std::slice::from_ref(&path), &["HashMap", "Instant"], &[]);
    fs::remove_file(&path).unwrap();
    assert_eq!(found, vec![format!("{}: HashMap", path.display())]);
}

/// A guarded directory that moved fails the checks instead of passing them with nothing to see.
#[test]
#[should_panic(expected = "which is not a directory: did it move?")]
fn a_guarded_directory_that_moved_fails_tidy() {
    rust_files("src/no-such-directory");
}

/// The files the checks allow by name exist, so an allowance cannot outlive what it was for.
#[test]
fn the_files_allowed_by_name_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["src/core/testkit.rs", "src/host/sync.rs"] {
        assert!(root.join(file).is_file(), "{file} is allowed by name in tidy but is gone");
    }
}
