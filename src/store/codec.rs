//! Binary encoding of [`Record`]s, of the log frames that carry them and of snapshot files.
//!
//! Everything read back from disk goes through here, so decoding is total: arbitrary bytes
//! give a typed error, never a panic; no length read from the input is trusted before it is
//! checked against the bytes that remain, so memory stays proportional to the input; and a
//! frame or snapshot whose checksum fails is never accepted.
//!
//! Record payload (format version 1):
//!
//! ```text
//! [version u8 = 1][tag u8][fields...]
//!   tag 1 Register  : account u64, name str, password_hash str
//!   tag 2 Delete    : account u64
//!   tag 3 Message   : id u64, from str, to u64, text str
//!   tag 4 Delivered : to u64, count u32, ids u64 * count
//!   str = len u32 + UTF-8 bytes; every integer little-endian
//! ```
//!
//! Log frame: `[len u32][crc32 u32 over lsn+payload][lsn u64][payload: len bytes]`.
//!
//! Snapshot file:
//! `[magic "CHATSNAP"][version u8][lsn u64][count u32]([len u32][payload])*count[crc32 u32]`,
//! the trailing checksum covering every byte before it.

use thiserror::Error;

use crate::core::record::{AccountId, Lsn, MsgId, Record};

/// The record format written today; payloads start with it so a later format can be told apart.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of a frame before its payload: length, checksum, lsn.
pub const FRAME_HEADER_LEN: usize = 16;

/// Largest payload a frame may carry. Far above any real record (a chat body is at most 64 KiB),
/// low enough that a damaged length field is recognised as damage rather than a huge record.
pub const RECORD_LEN_MAX: usize = 16 << 20;

const SNAPSHOT_MAGIC: &[u8; 8] = b"CHATSNAP";
const SNAPSHOT_HEADER_LEN: usize = 8 + 1 + 8 + 4;
const CRC_LEN: usize = 4;

const TAG_REGISTER: u8 = 1;
const TAG_DELETE: u8 = 2;
const TAG_MESSAGE: u8 = 3;
const TAG_DELIVERED: u8 = 4;

/// A record that cannot be written because it does not fit the format.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EncodeError {
    /// A string or list is longer than its u32 length field can say.
    #[error("a field of {len} elements does not fit a u32 length")]
    FieldTooLong { len: usize },
    /// The encoded record would be refused by the decoder.
    #[error("record of {len} bytes exceeds the limit of {len_max} bytes")]
    RecordTooLong { len: usize, len_max: usize },
}

/// Why a record payload could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("truncated: needed {needed} more bytes, {remaining} remain")]
    Truncated { needed: usize, remaining: usize },
    #[error("unsupported record format version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown record tag {0}")]
    UnknownTag(u8),
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    #[error("{0} unexpected bytes after the record")]
    TrailingBytes(usize),
}

/// Why a log frame could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The frame runs past the end of the input: a torn write if this is the end of the log.
    #[error("incomplete frame: {needed} bytes needed, {available} available")]
    Incomplete { needed: usize, available: usize },
    #[error("frame length {len} exceeds the limit of {len_max} bytes")]
    TooLong { len: usize, len_max: usize },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("checksum ok but the record is invalid: {0}")]
    Record(#[from] DecodeError),
}

/// Why a snapshot file could not be decoded.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("snapshot file is {len} bytes, shorter than any snapshot")]
    TooShort { len: usize },
    #[error("snapshot checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("not a snapshot file (bad magic)")]
    BadMagic,
    #[error("unsupported snapshot format version {0}")]
    UnsupportedVersion(u8),
    #[error("record {index} of the snapshot: {source}")]
    Record {
        index: u64,
        #[source]
        source: DecodeError,
    },
}

/// A decoded log frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub lsn: Lsn,
    pub record: Record,
    /// Bytes the frame occupies, header included.
    pub len: usize,
}

/// Appends the payload encoding of `record` to `out`.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    out.push(FORMAT_VERSION);
    match record {
        Record::Register { account, name, password_hash } => {
            out.push(TAG_REGISTER);
            put_u64(out, account.0);
            put_str(out, name)?;
            put_str(out, password_hash)?;
        }
        Record::Delete { account } => {
            out.push(TAG_DELETE);
            put_u64(out, account.0);
        }
        Record::Message { id, from, to, text } => {
            out.push(TAG_MESSAGE);
            put_u64(out, id.0);
            put_str(out, from)?;
            put_u64(out, to.0);
            put_str(out, text)?;
        }
        Record::Delivered { to, ids } => {
            out.push(TAG_DELIVERED);
            put_u64(out, to.0);
            put_len(out, ids.len())?;
            ids.iter().for_each(|id| put_u64(out, id.0));
        }
    }
    Ok(())
}

/// Decodes one record payload; every byte of `bytes` must belong to it.
pub fn decode_record(bytes: &[u8]) -> Result<Record, DecodeError> {
    let mut reader = Reader { bytes, pos: 0 };
    let record = reader.record()?;
    match reader.remaining() {
        0 => Ok(record),
        extra => Err(DecodeError::TrailingBytes(extra)),
    }
}

/// Appends the log frame of (`lsn`, `record`) to `out`. On error `out` is left unchanged.
pub fn encode_frame(lsn: Lsn, record: &Record, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    if let Err(e) = encode_record(record, out) {
        out.truncate(start);
        return Err(e);
    }
    let payload_len = out.len() - start - FRAME_HEADER_LEN;
    if payload_len > RECORD_LEN_MAX {
        out.truncate(start);
        return Err(EncodeError::RecordTooLong { len: payload_len, len_max: RECORD_LEN_MAX });
    }
    let lsn_bytes = lsn.0.to_le_bytes();
    let crc = frame_crc(&lsn_bytes, &out[start + FRAME_HEADER_LEN..]);
    let header = &mut out[start..start + FRAME_HEADER_LEN];
    header[0..4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    header[4..8].copy_from_slice(&crc.to_le_bytes());
    header[8..16].copy_from_slice(&lsn_bytes);
    Ok(())
}

/// The total length (header included) the frame at the start of `bytes` claims, if its length
/// field is readable. Recovery uses it to tell a damaged last frame from damage before the end.
pub fn frame_len_declared(bytes: &[u8]) -> Option<usize> {
    let len_bytes = bytes.get(0..4)?;
    let len = u32::from_le_bytes(len_bytes.try_into().ok()?) as usize;
    Some(FRAME_HEADER_LEN + len)
}

/// Decodes the frame at the start of `bytes` (which may hold more after it).
pub fn decode_frame(bytes: &[u8]) -> Result<Frame, FrameError> {
    let Some(len_total) = frame_len_declared(bytes) else {
        return Err(incomplete(FRAME_HEADER_LEN, bytes.len()));
    };
    let payload_len = len_total - FRAME_HEADER_LEN;
    if payload_len > RECORD_LEN_MAX {
        return Err(FrameError::TooLong { len: payload_len, len_max: RECORD_LEN_MAX });
    }
    if bytes.len() < len_total {
        return Err(incomplete(len_total, bytes.len()));
    }
    let stored = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
    let lsn_bytes: [u8; 8] = bytes[8..16].try_into().expect("slice of 8 bytes");
    let payload = &bytes[FRAME_HEADER_LEN..len_total];
    let computed = frame_crc(&lsn_bytes, payload);
    if stored != computed {
        return Err(FrameError::Checksum { stored, computed });
    }
    let record = decode_record(payload)?;
    Ok(Frame { lsn: Lsn(u64::from_le_bytes(lsn_bytes)), record, len: len_total })
}

/// Encodes a whole snapshot file: the records that rebuild the state as of `lsn`.
pub fn encode_snapshot(lsn: Lsn, records: &[Record]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::with_capacity(SNAPSHOT_HEADER_LEN + CRC_LEN);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.push(FORMAT_VERSION);
    put_u64(&mut out, lsn.0);
    put_len(&mut out, records.len())?;
    for record in records {
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        encode_record(record, &mut out)?;
        let len = out.len() - len_at - 4;
        if len > RECORD_LEN_MAX {
            return Err(EncodeError::RecordTooLong { len, len_max: RECORD_LEN_MAX });
        }
        out[len_at..len_at + 4].copy_from_slice(&(len as u32).to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Decodes a whole snapshot file, checksum first: a file that fails it yields no records at all.
pub fn decode_snapshot(bytes: &[u8]) -> Result<(Lsn, Vec<Record>), SnapshotError> {
    if bytes.len() < SNAPSHOT_HEADER_LEN + CRC_LEN {
        return Err(SnapshotError::TooShort { len: bytes.len() });
    }
    let (body, crc_bytes) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes(crc_bytes.try_into().expect("slice of 4 bytes"));
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(SnapshotError::Checksum { stored, computed });
    }
    if &body[0..8] != SNAPSHOT_MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    if body[8] != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(body[8]));
    }
    let mut reader = Reader { bytes: body, pos: 9 };
    let as_record_error = |index| move |source| SnapshotError::Record { index, source };
    let lsn = Lsn(reader.u64().map_err(as_record_error(0))?);
    let count = reader.u32().map_err(as_record_error(0))?;
    // Records are pushed one by one, never preallocated from `count`: each consumes input.
    let mut records = Vec::new();
    for index in 0..u64::from(count) {
        let len = reader.u32().map_err(as_record_error(index))? as usize;
        let payload = reader.take(len).map_err(as_record_error(index))?;
        records.push(decode_record(payload).map_err(as_record_error(index))?);
    }
    match reader.remaining() {
        0 => Ok((lsn, records)),
        extra => Err(SnapshotError::Record {
            index: u64::from(count),
            source: DecodeError::TrailingBytes(extra),
        }),
    }
}

fn incomplete(needed: usize, available: usize) -> FrameError {
    FrameError::Incomplete { needed, available }
}

fn frame_crc(lsn_bytes: &[u8; 8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(lsn_bytes);
    hasher.update(payload);
    hasher.finalize()
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_len(out: &mut Vec<u8>, len: usize) -> Result<(), EncodeError> {
    let len32 = u32::try_from(len).map_err(|_| EncodeError::FieldTooLong { len })?;
    out.extend_from_slice(&len32.to_le_bytes());
    Ok(())
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    put_len(out, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Planted bug support ([`super::StoreOptions::replay_torn_tail`]): reads a message frame cut
/// short by a crash as if it were whole, its text being whatever bytes reached the disk. `None`
/// unless `bytes` is an incomplete frame of a message whose text field had begun.
#[cfg(any(test, feature = "planted"))]
pub(crate) fn salvage_torn_message(bytes: &[u8]) -> Option<(Lsn, Record)> {
    let declared = frame_len_declared(bytes)?;
    if bytes.len() < FRAME_HEADER_LEN || bytes.len() >= declared {
        return None;
    }
    let lsn = Lsn(u64::from_le_bytes(bytes[8..16].try_into().ok()?));
    let mut reader = Reader { bytes: &bytes[FRAME_HEADER_LEN..], pos: 0 };
    if reader.u8().ok()? != FORMAT_VERSION || reader.u8().ok()? != TAG_MESSAGE {
        return None;
    }
    let id = MsgId(reader.u64().ok()?);
    let from = reader.string().ok()?;
    let to = AccountId(reader.u64().ok()?);
    reader.u32().ok()?;
    let text = String::from_utf8_lossy(&reader.bytes[reader.pos..]).into_owned();
    Some((lsn, Record::Message { id, from, to, text }))
}

/// A cursor over untrusted input: every read checks what remains before touching it.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.remaining();
        if len > remaining {
            return Err(DecodeError::Truncated { needed: len, remaining });
        }
        let slice = &self.bytes[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(bytes.try_into().expect("slice of 4 bytes")))
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("slice of 8 bytes")))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
        Ok(s.to_owned())
    }

    fn msg_ids(&mut self) -> Result<Vec<MsgId>, DecodeError> {
        let count = self.u32()? as usize;
        let bytes = self.take(count.saturating_mul(8))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| MsgId(u64::from_le_bytes(c.try_into().expect("chunk of 8 bytes"))))
            .collect())
    }

    fn record(&mut self) -> Result<Record, DecodeError> {
        let version = self.u8()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        match self.u8()? {
            TAG_REGISTER => Ok(Record::Register {
                account: AccountId(self.u64()?),
                name: self.string()?,
                password_hash: self.string()?,
            }),
            TAG_DELETE => Ok(Record::Delete { account: AccountId(self.u64()?) }),
            TAG_MESSAGE => Ok(Record::Message {
                id: MsgId(self.u64()?),
                from: self.string()?,
                to: AccountId(self.u64()?),
                text: self.string()?,
            }),
            TAG_DELIVERED => {
                Ok(Record::Delivered { to: AccountId(self.u64()?), ids: self.msg_ids()? })
            }
            tag => Err(DecodeError::UnknownTag(tag)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn arb_record() -> impl Strategy<Value = Record> {
        prop_oneof![
            (any::<u64>(), ".{0,12}", ".{0,40}").prop_map(|(a, name, password_hash)| {
                Record::Register { account: AccountId(a), name, password_hash }
            }),
            any::<u64>().prop_map(|a| Record::Delete { account: AccountId(a) }),
            (any::<u64>(), ".{0,12}", any::<u64>(), ".{0,80}").prop_map(|(id, from, to, text)| {
                Record::Message { id: MsgId(id), from, to: AccountId(to), text }
            }),
            (any::<u64>(), proptest::collection::vec(any::<u64>(), 0..20)).prop_map(|(to, ids)| {
                Record::Delivered { to: AccountId(to), ids: ids.into_iter().map(MsgId).collect() }
            }),
        ]
    }

    fn one_of_each() -> Vec<Record> {
        vec![
            Record::Register {
                account: AccountId(7),
                name: "zoë".into(),
                password_hash: "$argon2id$v=19$x".into(),
            },
            Record::Delete { account: AccountId(u64::MAX) },
            Record::Message { id: MsgId(1), from: "a".into(), to: AccountId(2), text: "".into() },
            Record::Delivered { to: AccountId(3), ids: vec![MsgId(1), MsgId(9)] },
            Record::Delivered { to: AccountId(3), ids: vec![] },
        ]
    }

    fn frame_of(lsn: u64, record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        encode_frame(Lsn(lsn), record, &mut out).expect("encodable");
        out
    }

    #[test]
    fn every_variant_round_trips_through_a_frame() {
        for (i, record) in one_of_each().iter().enumerate() {
            let bytes = frame_of(i as u64 + 1, record);
            let frame = decode_frame(&bytes).expect("valid frame");
            assert_eq!(
                frame,
                Frame { lsn: Lsn(i as u64 + 1), record: record.clone(), len: bytes.len() }
            );
        }
    }

    #[test]
    fn the_payload_layout_is_pinned() {
        let mut out = Vec::new();
        encode_record(&Record::Delete { account: AccountId(0x0102) }, &mut out).expect("encodable");
        assert_eq!(out, [1, TAG_DELETE, 2, 1, 0, 0, 0, 0, 0, 0]);
        let frame = frame_of(5, &Record::Delete { account: AccountId(0x0102) });
        assert_eq!(&frame[0..4], &10u32.to_le_bytes());
        assert_eq!(&frame[8..16], &5u64.to_le_bytes());
    }

    #[test]
    fn a_huge_declared_length_is_refused_without_allocating() {
        let mut bytes = frame_of(1, &Record::Delete { account: AccountId(1) });
        bytes[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_frame(&bytes), Err(FrameError::TooLong { .. })));
        // A Delivered whose count claims 2^32-1 ids but carries none.
        let mut payload = vec![FORMAT_VERSION, TAG_DELIVERED];
        payload.extend_from_slice(&1u64.to_le_bytes());
        payload.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode_record(&payload), Err(DecodeError::Truncated { .. })));
    }

    #[test]
    fn a_record_too_long_to_decode_is_refused_at_encoding_and_leaves_the_buffer_alone() {
        let text = "x".repeat(RECORD_LEN_MAX);
        let record = Record::Message { id: MsgId(1), from: "a".into(), to: AccountId(2), text };
        let mut out = vec![7];
        let refused = encode_frame(Lsn(1), &record, &mut out);
        assert!(matches!(refused, Err(EncodeError::RecordTooLong { .. })), "{refused:?}");
        assert_eq!(out, vec![7]);
        assert!(encode_snapshot(Lsn(1), &[record]).is_err());
    }

    #[test]
    fn unknown_versions_and_tags_are_refused() {
        assert_eq!(decode_record(&[2, TAG_DELETE]), Err(DecodeError::UnsupportedVersion(2)));
        assert_eq!(decode_record(&[1, 99]), Err(DecodeError::UnknownTag(99)));
        let mut payload = Vec::new();
        encode_record(&Record::Delete { account: AccountId(1) }, &mut payload).expect("encodable");
        payload.push(0);
        assert_eq!(decode_record(&payload), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut payload = vec![FORMAT_VERSION, TAG_REGISTER];
        payload.extend_from_slice(&1u64.to_le_bytes());
        payload.extend_from_slice(&1u32.to_le_bytes());
        payload.push(0xff);
        payload.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode_record(&payload), Err(DecodeError::InvalidUtf8));
    }

    #[test]
    fn a_snapshot_round_trips_and_a_flipped_byte_is_refused() {
        let records = one_of_each();
        let bytes = encode_snapshot(Lsn(42), &records).expect("encodable");
        assert_eq!(decode_snapshot(&bytes), Ok((Lsn(42), records)));
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(decode_snapshot(&bad).is_err(), "flip at {i} accepted");
        }
        assert!(decode_snapshot(&bytes[..bytes.len() - 1]).is_err());
    }

    proptest! {
        #[test]
        fn records_round_trip(record in arb_record(), lsn in any::<u64>()) {
            let bytes = frame_of(lsn, &record);
            let frame = decode_frame(&bytes).expect("valid frame");
            prop_assert_eq!(frame.lsn, Lsn(lsn));
            prop_assert_eq!(frame.len, bytes.len());
            prop_assert_eq!(frame.record, record);
        }

        #[test]
        fn snapshots_round_trip(records in proptest::collection::vec(arb_record(), 0..10), lsn in any::<u64>()) {
            let bytes = encode_snapshot(Lsn(lsn), &records).expect("encodable");
            prop_assert_eq!(decode_snapshot(&bytes), Ok((Lsn(lsn), records)));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_record(&bytes);
            let _ = decode_snapshot(&bytes);
            if let Ok(frame) = decode_frame(&bytes) {
                prop_assert!(frame.len <= bytes.len());
            }
        }

        #[test]
        fn a_flipped_bit_is_never_accepted(record in arb_record(), lsn in any::<u64>(), bit in any::<prop::sample::Index>()) {
            let mut bytes = frame_of(lsn, &record);
            let bit = bit.index(bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode_frame(&bytes).is_err(), "flipped bit {} accepted", bit);
        }

        #[test]
        fn a_truncated_frame_is_incomplete(record in arb_record(), cut in any::<prop::sample::Index>()) {
            let bytes = frame_of(1, &record);
            let cut = cut.index(bytes.len());
            let is_incomplete = matches!(decode_frame(&bytes[..cut]), Err(FrameError::Incomplete { .. }));
            prop_assert!(is_incomplete);
        }
    }
}
