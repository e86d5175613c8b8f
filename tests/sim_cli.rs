//! `chatroom sim` as a user runs it: output, exit codes, replay commands.

use std::process::Command;

fn sim(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .arg("sim")
        .args(args)
        .output()
        .expect("the binary runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn a_single_seed_prints_its_seed_mix_and_result() {
    let (code, out) = sim(&["--seed", "5", "--clients", "2", "--ops", "10"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("SEED=5 faults=swarm clients=2 ops=10"), "{out}");
    assert!(out.contains("mix: latency_ms_min="), "{out}");
    assert!(out.contains("result: ok"), "{out}");
}

#[test]
fn a_sharded_sweep_with_determinism_checks_passes() {
    let args = ["--seeds", "0..12", "--shard", "1/3", "--jobs", "2", "--check-determinism"];
    let (code, out) = sim(&[&args[..], &["--clients", "2", "--ops", "10"]].concat());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("runs=4 "), "seeds 1, 4, 7, 10: {out}");
    assert!(out.contains("failures=0 nondeterministic=0"), "{out}");
}

#[test]
fn a_scenario_replays_and_writes_its_trace() {
    let trace = std::env::temp_dir().join(format!("chatroom-sim-cli-{}.trace", std::process::id()));
    let trace_arg = trace.to_str().unwrap();
    let (code, out) = sim(&["--replay", "tests/scenarios/basic.scn", "--trace", trace_arg]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("SEED=7 scenario="), "{out}");
    let text = std::fs::read_to_string(&trace).unwrap();
    std::fs::remove_file(&trace).unwrap();
    assert!(text.lines().any(|l| l.ends_with("crash 100")), "{text}");
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["--seeds", "5..5"][..],
        &["--seeds", "0..4", "--shard", "4/4"],
        &["--replay", "/nonexistent"],
    ] {
        let (code, out) = sim(args);
        assert_eq!(code, 2, "{args:?}: {out}");
    }
}

/// Planted bugs never reach a default build: `chatroom strength` says how to get them, and a
/// shrunk scenario that plants a bug is refused rather than replayed without it.
#[cfg(not(feature = "planted"))]
#[test]
fn a_default_build_has_no_planted_bugs() {
    let output = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .arg("strength")
        .output()
        .expect("the binary runs");
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(err.contains("no planted bugs") && err.contains("--features planted"), "{err}");
    let file = std::env::temp_dir().join(format!("chatroom-planted-{}.scn", std::process::id()));
    let text = "chatroom-sim 1\nplanted DropOnDetach\nclients 1\nat 0 client 0 help\n";
    std::fs::write(&file, text).unwrap();
    let (code, out) = sim(&["--replay", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("plants the bug DropOnDetach"), "{out}");
    let (code, out) = sim(&["--seed", "1", "--planted", "DropOnDetach"]);
    assert_eq!(code, 2, "no --planted option: {out}");
}

#[test]
fn coverage_prints_the_reachability_table_and_its_zero_rows() {
    let (code, out) =
        sim(&["--seeds", "0..3", "--jobs", "2", "--clients", "2", "--ops", "10", "--coverage"]);
    assert_eq!(code, 0, "{out}");
    let (_, table) = out.split_once("expected rows never reached):\n").expect("a coverage header");
    assert!(table.lines().any(|l| l.ends_with("  record: register")), "{out}");
    // Three small worlds cannot reach every row: those left are marked.
    assert!(table.contains("<- never reached"), "{out}");
}

/// `--trace -` prints the trace on standard output, as `-` means for a file argument, and
/// writes no file called `-`.
#[test]
fn a_trace_to_dash_goes_to_standard_output() {
    let dir = std::env::temp_dir().join(format!("chatroom-sim-cli-dash-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/basic.scn");
    let output = Command::new(env!("CARGO_BIN_EXE_chatroom"))
        .current_dir(&dir)
        .args(["sim", "--replay", scenario, "--trace", "-"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wrote_dash = dir.join("-").exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(output.status.success(), "{stdout}");
    assert!(!wrote_dash, "a file called - was written");
    assert!(stdout.contains(" c0 open command conn=1"), "{stdout}");
}
