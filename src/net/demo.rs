//! The original's two test accounts, created through the core like any registration.

use super::driver::Shared;
use super::hashing::HashPool;
use crate::core::{Channel, ConnId, Event, Peer};
use crate::host::Batch;
use crate::wire::{encode, HEADER_LEN};

/// The accounts `--demo` creates: the original README's `tester:abc123` and `abc:abc`.
pub const DEMO_ACCOUNTS: [(&str, &str); 2] = [("tester", "abc123"), ("abc", "abc")];

/// Registers the demo accounts that do not exist yet, over an internal connection that the
/// listeners' ids (which start at 1) cannot collide with.
pub(crate) fn create_accounts(shared: &Shared, hashing: &HashPool) {
    let conn = ConnId(0);
    let mailbox = shared.open(conn, Channel::Command, Peer(0), None);
    for (name, password) in DEMO_ACCOUNTS {
        if shared.with_server(|s| s.account_id(name).is_some()) {
            continue;
        }
        let mut frame = Vec::new();
        encode(format!("3\n{name}\n{password}").as_bytes(), &mut frame);
        shared.handle(Event::Received { conn, bytes: &frame });
        let (mut items, mut batch) = (Vec::new(), Batch::default());
        loop {
            let awaiting = !shared.may_read(conn);
            let _ = if awaiting {
                mailbox.take_all(&mut items)
            } else {
                mailbox.try_take_all(&mut items)
            };
            batch.sort(&mut items);
            for reply in &batch.frames {
                let reply = String::from_utf8_lossy(&reply[HEADER_LEN..]).replace('\n', " ");
                tracing::info!(name, %reply, "demo account");
            }
            shared.wrote(conn, &batch);
            batch.clear_written();
            for job in batch.jobs.drain(..) {
                let outcome = hashing.run(&job);
                shared.handle(Event::PasswordDone { job: job.job, outcome });
            }
            if !awaiting {
                break;
            }
        }
    }
    shared.ended(conn);
}
