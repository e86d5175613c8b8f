//! The CI scripts fail loudly instead of passing while running nothing: `.ci/run` when a script
//! it calls is missing, `.ci/fuzz` when there is no fuzz target to run or the listing fails.
//! Each runs the real script against a scratch copy of the repository layout, with stand-ins
//! for the tools it calls on the `PATH`, so nothing is built or installed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory holding `.ci/` copies of the named scripts and a `bin/` of stand-ins.
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(name: &str, scripts: &[&str]) -> Scratch {
        let root = std::env::temp_dir().join(format!("chatroom-ci-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join(".ci")).unwrap();
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("fuzz")).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for script in scripts {
            fs::copy(repo.join(".ci").join(script), root.join(".ci").join(script)).unwrap();
        }
        Scratch { root }
    }

    /// A stand-in for `tool` that runs `body` (a shell script).
    fn tool(&self, tool: &str, body: &str) {
        let path = self.root.join("bin").join(tool);
        fs::write(&path, format!("#!/usr/bin/env bash\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Runs `.ci/<script>` with the stand-ins first on the `PATH`.
    fn run(&self, script: &str) -> Output {
        let path =
            format!("{}:{}", self.root.join("bin").display(), std::env::var("PATH").unwrap());
        Command::new("bash")
            .arg(self.root.join(".ci").join(script))
            .env("PATH", path)
            .env("FUZZ_SECONDS", "1")
            .output()
            .expect("bash runs")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn ci_run_fails_when_a_script_it_calls_is_missing() {
    for missing in ["browser", "loom", "fuzz"] {
        let present: Vec<&str> =
            ["run", "browser", "loom", "fuzz"].into_iter().filter(|s| *s != missing).collect();
        let scratch = Scratch::new(&format!("run-{missing}"), &present);
        // Nothing may run before the check: a cargo that is called fails the test loudly.
        scratch.tool("cargo", "echo 'cargo was called' >&2; exit 99");
        let output = scratch.run("run");
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        let message = format!("error: .ci/{missing} is missing");
        assert!(stderr(&output).contains(&message), "{}", stderr(&output));
    }
}

/// Stand-ins for a machine with cargo-fuzz and nightly, whose `cargo fuzz list` prints
/// `listed` and exits with `status`.
fn fuzz_machine(name: &str, listed: &str, status: i32) -> Scratch {
    let scratch = Scratch::new(name, &["fuzz"]);
    scratch.tool("cargo-fuzz", "exit 0");
    scratch.tool("rustup", "echo 'nightly-x86_64-unknown-linux-gnu'");
    let cargo = format!(
        "if [ \"$2\" = fuzz ] && [ \"$3\" = list ]; then printf '%s' '{listed}'; exit {status}; fi\n\
         echo \"cargo $* was called\" >&2; exit 98"
    );
    scratch.tool("cargo", &cargo);
    scratch
}

#[test]
fn ci_fuzz_fails_on_an_empty_target_list() {
    let scratch = fuzz_machine("fuzz-empty", "", 0);
    let output = scratch.run("fuzz");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("error: no fuzz targets to run"), "{}", stderr(&output));
}

#[test]
fn ci_fuzz_fails_when_listing_the_targets_fails() {
    let scratch = fuzz_machine("fuzz-list-fails", "frame_decoder", 3);
    let output = scratch.run("fuzz");
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(!stderr(&output).contains("was called"), "nothing ran after: {}", stderr(&output));
}

/// The control: with targets listed, the script goes on to build them (here the stand-in
/// cargo refuses, so it fails there, after the checks passed).
#[test]
fn ci_fuzz_goes_on_to_build_listed_targets() {
    let scratch = fuzz_machine("fuzz-listed", "frame_decoder", 0);
    let output = scratch.run("fuzz");
    let err = stderr(&output);
    assert!(err.contains("cargo +nightly fuzz build -s none was called"), "{err}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("== building frame_decoder"));
}
