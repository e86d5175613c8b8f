//! `log_recovery`: a write-ahead log built, crashed and damaged by the fuzzer, then recovered.
//! Recovery never panics, and whenever it succeeds:
//!
//! - every record it returns was written at that lsn (unless the fuzzer wrote bytes of its own
//!   into the store, which could form a well-checksummed frame), and every logged one sits in a
//!   frame whose checksum holds;
//! - the snapshot it used is one that was written at that lsn;
//! - after a crash alone, nothing synced is lost and nothing but a torn tail is reported;
//! - the records replay through [`Server::recover`] without error;
//! - recovering again finds a clean store: the same records, no damage.
//!
//! Input: a first byte of flags (bit 0: accept data loss; bits 1-2: the log fills 0, 64, 256
//! or 4096 bytes of zeros ahead of its records at a time, [`StoreOptions::prealloc_bytes`], so
//! that crashes tear overwrites of filled space and damage lands in zero tails), then a program:
//!
//! | op % 10 | operation | arguments |
//! | --- | --- | --- |
//! | 0 | append a record | kind, target, length n, n bytes of text |
//! | 1 | sync, then fill ahead as the idle writer does ([`Wal::extend_ahead`]) | |
//! | 2 | flush without syncing | |
//! | 3 | snapshot at the last lsn | |
//! | 4 | power loss (a seeded [`MemDisk::crash`]), then recovery | seed |
//! | 5 | flip bits of one byte of a file, then recovery | file, offset hi, lo, xor |
//! | 6 | cut a file, then recovery | file, length hi, lo |
//! | 7 | append bytes to a file, then recovery | file, length n, n bytes |
//! | 8 | remove a file, then recovery | file |
//! | 9 | create a file named like a store file, then recovery | kind, lsn, length n, n bytes |

use std::collections::BTreeMap;

use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::core::{AccountId, Config, Lsn, MsgId, Record, Server};
use crate::store::codec::decode_frame;
use crate::store::wal::{segment_name, snapshot_name};
use crate::store::{Disk, MemDisk, RecoveryWarning, StoreOptions, Wal};

/// Operations run per input at most.
const OPS_MAX: usize = 512;

/// Runs the target on one input. Panics if a property fails.
pub fn log_recovery(data: &[u8]) {
    let Some((&flags, program)) = data.split_first() else { return };
    // Test builds add a field (a planted bug's switch), so the rest is spelled as the default.
    #[allow(clippy::needless_update)]
    let options = StoreOptions {
        accept_data_loss: flags & 1 == 1,
        snapshot_log_bytes_min: 1,
        prealloc_bytes: [0, 64, 256, 4096][usize::from(flags >> 1) & 3],
        ..StoreOptions::default()
    };
    let mut run = Run::new(options);
    let mut bytes = program.iter().copied();
    for _ in 0..OPS_MAX {
        let Some(op) = bytes.next() else { break };
        match run.step(op, &mut bytes) {
            Some(true) => {}
            Some(false) | None => break,
        }
    }
}

/// The log under test and everything known about what was written to it.
struct Run {
    options: StoreOptions,
    wal: Option<Wal<MemDisk>>,
    /// The record at each lsn (index lsn - 1) in the current history.
    history: Vec<Record>,
    /// Snapshots written, by lsn.
    snapshots: BTreeMap<Lsn, Vec<Record>>,
    /// The fuzzer put bytes of its own in the store, which may form valid frames or snapshots.
    foreign_bytes: bool,
    /// Some damage (not just a crash) was done: loss beyond a torn tail is allowed.
    damaged: bool,
}

impl Run {
    fn new(options: StoreOptions) -> Self {
        let (wal, recovered) = Wal::open(MemDisk::new(), options).expect("an empty disk opens");
        assert!(recovered.records.is_empty());
        Run {
            options,
            wal: Some(wal),
            history: Vec::new(),
            snapshots: BTreeMap::new(),
            foreign_bytes: false,
            damaged: false,
        }
    }

    fn wal(&mut self) -> &mut Wal<MemDisk> {
        self.wal.as_mut().expect("the log is open between operations")
    }

    /// Runs one operation: `None` when the program ran out of bytes, `Some(false)` when the
    /// store refused to open (the run ends there).
    fn step(&mut self, op: u8, bytes: &mut impl Iterator<Item = u8>) -> Option<bool> {
        match op % 10 {
            0 => {
                let record = self.next_record(bytes)?;
                let lsn = Lsn(self.history.len() as u64 + 1);
                self.wal().append(lsn, &record).expect("appending to a memory disk");
                self.history.push(record);
            }
            1 => {
                self.wal().sync().expect("syncing a memory disk");
                self.wal().extend_ahead().expect("filling a memory disk");
            }
            2 => self.wal().flush().expect("flushing a memory disk"),
            3 => self.snapshot(),
            4 => {
                let seed = bytes.next()?;
                let synced = self.wal().durable_lsn();
                let mut disk = self.take_disk();
                disk.crash(&mut ChaCha20Rng::seed_from_u64(u64::from(seed)));
                return Some(self.recover(disk, Some(synced)));
            }
            _ => {
                let mut disk = self.take_disk();
                damage(&mut disk, op % 10, bytes, &mut self.foreign_bytes)?;
                self.damaged = true;
                return Some(self.recover(disk, None));
            }
        }
        Some(true)
    }

    fn take_disk(&mut self) -> MemDisk {
        self.wal.take().expect("the log is open").into_disk()
    }

    /// A record that applies to the state the history builds.
    fn next_record(&self, bytes: &mut impl Iterator<Item = u8>) -> Option<Record> {
        let (kind, target, len) = (bytes.next()?, bytes.next()?, bytes.next()?);
        let text: Vec<u8> = bytes.take(usize::from(len % 64)).collect();
        let lsn = self.history.len() as u64 + 1;
        let alive = alive_accounts(&self.history);
        let register = Record::Register {
            account: AccountId(lsn),
            name: format!("u{lsn}"),
            password_hash: "$argon2id$fuzz".to_owned(),
        };
        if alive.is_empty() {
            return Some(register);
        }
        let (to, queue) = &alive[usize::from(target) % alive.len()];
        Some(match kind % 4 {
            0 => register,
            1 => Record::Message {
                id: MsgId(lsn),
                from: "u1".to_owned(),
                to: *to,
                text: String::from_utf8_lossy(&text).into_owned(),
            },
            2 if !queue.is_empty() => {
                let count = usize::from(len) % queue.len() + 1;
                Record::Delivered { to: *to, ids: queue[..count].to_vec() }
            }
            _ => Record::Delete { account: *to },
        })
    }

    fn snapshot(&mut self) {
        let lsn = Lsn(self.history.len() as u64);
        let records = replay(&self.history, lsn).expect("the history applies").snapshot();
        self.wal().write_snapshot(lsn, &records).expect("snapshotting on a memory disk");
        self.snapshots.insert(lsn, records);
    }

    /// Recovers `disk` and checks what came back; false if the store refused to open.
    fn recover(&mut self, disk: MemDisk, synced: Option<Lsn>) -> bool {
        let (wal, recovered) = match Wal::open(disk, self.options) {
            Ok(opened) => opened,
            Err(error) => {
                assert!(
                    !self.options.accept_data_loss,
                    "refused despite accept_data_loss: {error}"
                );
                assert!(self.damaged, "a crash alone made the store refuse to open: {error}");
                return false;
            }
        };
        let last = recovered.last_lsn;
        let logged = recovered.records.len() - recovered.snapshot_records_len;
        assert_eq!(logged as u64, last.0 - recovered.snapshot_lsn.0, "log records and lsns");
        if !self.foreign_bytes {
            self.check_history(&recovered);
        }
        if let (Some(synced), false) = (synced, self.damaged) {
            assert!(last >= synced, "a crash lost synced records: {last:?} < {synced:?}");
            let only_torn =
                recovered.warnings.iter().all(|w| matches!(w, RecoveryWarning::TornTail { .. }));
            assert!(only_torn, "a crash alone: {:?}", recovered.warnings);
        }
        let disk = wal.into_disk();
        check_frames_on_disk(&disk, &recovered);
        let (wal, again) = Wal::open(disk, self.options).expect("a recovered store opens again");
        assert_eq!(again.records, recovered.records, "recovery is not idempotent");
        assert_eq!(again.last_lsn, last);
        let clean = again.warnings.iter().all(|w| matches!(w, RecoveryWarning::UnknownFile { .. }));
        assert!(clean, "a recovered store still needs repair: {:?}", again.warnings);
        if self.foreign_bytes {
            // Records we never wrote may be in the log now: there is no history to check
            // against or to continue consistently, so the run ends here.
            return false;
        }
        // The checks above proved the recovered records are the history up to `last`.
        self.history.truncate(last.0 as usize);
        self.snapshots.retain(|&lsn, _| lsn <= last);
        self.damaged = false;
        self.wal = Some(wal);
        true
    }

    /// Every recovered record is the one written at its lsn, the snapshot is one written, and
    /// the whole replays through the core.
    fn check_history(&self, recovered: &crate::store::Recovered) {
        if recovered.snapshot_lsn.0 > 0 {
            let written = self.snapshots.get(&recovered.snapshot_lsn);
            let used = &recovered.records[..recovered.snapshot_records_len];
            assert_eq!(written.map(Vec::as_slice), Some(used), "a snapshot never written");
        }
        for (lsn, record) in recovered.log_records() {
            let written = self.history.get(lsn.0 as usize - 1);
            assert_eq!(written, Some(record), "recovered {lsn:?} is not what was written");
        }
        let server = Server::recover(
            Config::default(),
            ChaCha20Rng::seed_from_u64(0),
            recovered.records.clone(),
            recovered.last_lsn,
        );
        assert!(server.is_ok(), "recovered records do not replay: {:?}", server.err());
    }
}

/// Every record the log part of `recovered` holds sits in a well-checksummed frame on disk.
fn check_frames_on_disk(disk: &MemDisk, recovered: &crate::store::Recovered) {
    let mut framed = BTreeMap::new();
    for name in disk.list().expect("listing a memory disk") {
        if !name.starts_with("log-") {
            continue;
        }
        let bytes = disk.read(&name).expect("reading a memory disk");
        let mut offset = 0;
        while let Ok(frame) = decode_frame(&bytes[offset..]) {
            offset += frame.len;
            framed.insert(frame.lsn, frame.record);
        }
    }
    for (lsn, record) in recovered.log_records() {
        assert_eq!(framed.get(&lsn), Some(record), "{lsn:?} recovered without a valid frame");
    }
}

/// Damages the disk as op `op` says; `None` when the program ran out of bytes. Damage is
/// synced: it stands for what the medium holds, which a later power loss must not undo.
fn damage(
    disk: &mut MemDisk,
    op: u8,
    bytes: &mut impl Iterator<Item = u8>,
    foreign_bytes: &mut bool,
) -> Option<()> {
    let files = disk.list().expect("listing a memory disk");
    let pick = |b: u8| (!files.is_empty()).then(|| files[usize::from(b) % files.len()].clone());
    match op {
        5 => {
            let (file, hi, lo, xor) =
                (pick(bytes.next()?), bytes.next()?, bytes.next()?, bytes.next()?);
            let Some(file) = file else { return Some(()) };
            let len = disk.read(&file).expect("reading a memory disk").len();
            if len > 0 && xor != 0 {
                let offset = usize::from(u16::from_be_bytes([hi, lo])) % len;
                let old = disk.read(&file).expect("reading")[offset];
                disk.corrupt(&file, offset, old ^ xor).expect("offset within the file");
            }
        }
        6 => {
            let (file, hi, lo) = (pick(bytes.next()?), bytes.next()?, bytes.next()?);
            if let Some(file) = file {
                let len = disk.read(&file).expect("reading a memory disk").len() as u64;
                let cut = u64::from(u16::from_be_bytes([hi, lo])) % (len + 1);
                disk.truncate(&file, cut).expect("truncating a memory disk");
                disk.sync(&file).expect("syncing a memory disk");
            }
        }
        7 => {
            let file = pick(bytes.next()?);
            let len = usize::from(bytes.next()?);
            let extra: Vec<u8> = bytes.take(len).collect();
            if let Some(file) = file {
                disk.append(&file, &extra).expect("appending to a memory disk");
                disk.sync(&file).expect("syncing a memory disk");
                *foreign_bytes = true;
            }
        }
        8 => {
            if let Some(file) = pick(bytes.next()?) {
                disk.remove(&file).expect("removing from a memory disk");
            }
        }
        _ => {
            let (kind, lsn, len) = (bytes.next()?, bytes.next()?, usize::from(bytes.next()?));
            let contents: Vec<u8> = bytes.take(len).collect();
            let lsn = Lsn(u64::from(lsn));
            let name = match kind % 4 {
                0 => segment_name(lsn),
                1 => snapshot_name(lsn),
                2 => format!("{}.tmp", snapshot_name(lsn)),
                _ => "notes.txt".to_owned(),
            };
            if disk.write_new(&name, &contents).is_ok() {
                disk.sync(&name).expect("syncing a memory disk");
                *foreign_bytes = true;
            }
        }
    }
    disk.sync_dir().expect("syncing a memory disk's directory");
    Some(())
}

/// Accounts that exist after `history`, each with its queued message ids.
fn alive_accounts(history: &[Record]) -> Vec<(AccountId, Vec<MsgId>)> {
    let mut alive: BTreeMap<AccountId, Vec<MsgId>> = BTreeMap::new();
    for record in history {
        match record {
            Record::Register { account, .. } => drop(alive.insert(*account, Vec::new())),
            Record::Delete { account } => drop(alive.remove(account)),
            Record::Message { id, to, .. } => alive.entry(*to).or_default().push(*id),
            Record::Delivered { to, ids } => {
                alive.entry(*to).or_default().retain(|id| !ids.contains(id));
            }
        }
    }
    alive.into_iter().collect()
}

fn replay(records: &[Record], last: Lsn) -> Result<Server, crate::core::ReplayError> {
    Server::recover(Config::default(), ChaCha20Rng::seed_from_u64(0), records.to_vec(), last)
}
