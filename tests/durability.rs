//! Durability over real TCP: what was acknowledged survives a restart; a damaged log refuses
//! to start with a message that names the file and offset.

mod support;

use support::*;

fn data_dir(name: &str) -> ScratchDir {
    fresh_dir("durability", name)
}

fn start_in(dir: &std::path::Path) -> chatroom::net::ServerHandle {
    let dir = dir.to_path_buf();
    start_with(move |c| c.data_dir = Some(dir))
}

#[test]
fn accounts_messages_and_deletions_survive_a_restart() {
    let dir = data_dir("restart");
    let server = start_in(&dir);
    let mut alice = user(&server, "alice");
    let mut bob = user(&server, "bob");
    let mut carol = user(&server, "carol");
    assert_eq!(bob.request("-1\n"), "0\nLogging out");
    for i in 0..100 {
        assert_eq!(alice.request(&format!("2\nbob\nm{i}")), "0\nSent to recipient");
    }
    assert_eq!(carol.request("5\ncarol\npw"), "0\naccount deleted");
    drop((alice, bob, carol));
    server.shutdown();

    let server = start_in(&dir);
    let mut c = Conn::connect(server.command_addr());
    assert_eq!(c.request("1\nbob\npw"), "0\nSuccessful Login");
    assert_eq!(c.request("4\n"), "0\nalice bob ");
    let mut relay = bare_relay(&server, "bob");
    for i in 0..100 {
        assert_eq!(relay.recv(), format!("0\nalice:m{i}"));
    }
    wait_queue_len(&server, "bob", 0);
    server.shutdown();

    // Delivered messages stay delivered.
    let server = start_in(&dir);
    assert_eq!(server.queue_len("bob"), Some(0));
    server.shutdown();
}

#[test]
fn a_corrupted_record_in_the_middle_refuses_to_start() {
    let dir = data_dir("corrupt");
    let server = start_in(&dir);
    let mut alice = user(&server, "alice");
    for i in 0..20 {
        assert_eq!(alice.request(&format!("2\nalice\nm{i}")), "0\nSent to recipient");
    }
    drop(alice);
    server.shutdown();
    let segment = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "wal"))
        .expect("a log segment");
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&segment, bytes).unwrap();
    let mut config = chatroom::net::ServerConfig::ephemeral();
    config.data_dir = Some(dir.path_buf());
    let error = chatroom::net::ServerHandle::start(config).err().expect("refuses to start");
    let message = error.to_string();
    let file_name = segment.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(file_name), "{message}");
    assert!(message.contains("offset"), "{message}");
}
