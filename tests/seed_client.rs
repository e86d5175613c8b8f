//! The original client's protocol, spoken by a Python script written only from the original
//! README (`tests/seed_client.py`), against the server on ephemeral loopback ports.

use std::process::Command;

use chatroom::net::{ServerConfig, ServerHandle};

#[test]
fn the_seed_readme_client_works_unchanged() {
    // The original client opens its relay with the bare handshake, which needs the opt-in.
    let mut config = ServerConfig::ephemeral();
    config.core.bare_relay_allowed = true;
    let server = ServerHandle::start(config).expect("server starts");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_client.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(server.command_addr().port().to_string())
        .arg(server.relay_addr().port().to_string())
        .output()
        .unwrap_or_else(|error| panic!("this test needs python3 on PATH to run {script}: {error}"));
    server.shutdown();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "seed client failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(stdout.contains("seed client: all steps passed"), "{stdout}");
}
