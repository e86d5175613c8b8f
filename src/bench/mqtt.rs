//! Just enough MQTT 3.1.1 for `bench relay --broker mosquitto`: the same load (one event loop,
//! a pacer, pairs of a publisher and a subscriber, 64-byte payloads) against an MQTT broker, so
//! the chat server's figures have a reference measured the same way on the same machine.
//!
//! A chat send maps to a PUBLISH to the receiver's topic (QoS 1: the broker's PUBACK is the
//! `Sent to` reply; QoS 0: nothing comes back), a push to the PUBLISH the subscriber receives
//! (acknowledged with PUBACK at QoS 1).

/// The topic of pair `i`'s subscriber.
pub fn topic(i: usize) -> String {
    format!("chatroom-bench/{i}")
}

/// Packet types (the high nibble of the first byte).
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const SUBACK: u8 = 9;

/// Appends the remaining-length varint.
fn push_len(out: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            return;
        }
    }
}

fn push_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

/// CONNECT with a clean session and no keep-alive.
pub fn connect(client_id: &str) -> Vec<u8> {
    let mut body = Vec::new();
    push_str(&mut body, b"MQTT");
    body.extend_from_slice(&[4, 0x02, 0, 0]);
    push_str(&mut body, client_id.as_bytes());
    let mut out = vec![0x10];
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// SUBSCRIBE to `topic` at `qos`, packet id 1.
pub fn subscribe(topic: &str, qos: u8) -> Vec<u8> {
    let mut body = vec![0, 1];
    push_str(&mut body, topic.as_bytes());
    body.push(qos);
    let mut out = vec![0x82];
    push_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

/// Appends a PUBLISH of `payload` to `topic`; `id` is used at QoS 1 only.
pub fn publish(topic: &[u8], qos: u8, id: u16, payload: &[u8], out: &mut Vec<u8>) {
    let id_len = if qos > 0 { 2 } else { 0 };
    out.push(0x30 | (qos << 1));
    push_len(out, 2 + topic.len() + id_len + payload.len());
    push_str(out, topic);
    if qos > 0 {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// Appends a PUBACK for packet `id`.
pub fn puback(id: u16, out: &mut Vec<u8>) {
    out.extend_from_slice(&[0x40, 2]);
    out.extend_from_slice(&id.to_be_bytes());
}

/// One packet: its first byte and its body (everything after the remaining length).
#[derive(Debug, PartialEq, Eq)]
pub struct Packet {
    pub first: u8,
    pub body: Vec<u8>,
}

impl Packet {
    pub fn kind(&self) -> u8 {
        self.first >> 4
    }

    /// A received PUBLISH's packet id (QoS 1 and up) and payload.
    pub fn publish_parts(&self) -> Option<(Option<u16>, &[u8])> {
        let qos = (self.first >> 1) & 3;
        let topic_len = usize::from(u16::from_be_bytes([*self.body.first()?, *self.body.get(1)?]));
        let mut at = 2 + topic_len;
        let id = match qos {
            0 => None,
            _ => {
                let id = u16::from_be_bytes([*self.body.get(at)?, *self.body.get(at + 1)?]);
                at += 2;
                Some(id)
            }
        };
        Some((id, self.body.get(at..)?))
    }
}

/// Splits a byte stream into packets.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

impl Decoder {
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete packet, if any.
    pub fn next_packet(&mut self) -> Option<Packet> {
        let pending = &self.buf[self.start..];
        let first = *pending.first()?;
        let (mut len, mut shift, mut at) = (0usize, 0, 1);
        loop {
            let byte = *pending.get(at)?;
            len |= usize::from(byte & 0x7f) << shift;
            at += 1;
            if byte & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        let body = pending.get(at..at + len)?.to_vec();
        self.start += at + len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        Some(Packet { first, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_publish_round_trips_through_the_decoder_in_pieces() {
        let mut bytes = Vec::new();
        publish(b"t/1", 1, 513, &[b'x'; 200], &mut bytes);
        puback(7, &mut bytes);
        let mut decoder = Decoder::default();
        let mut packets = Vec::new();
        for byte in &bytes {
            decoder.feed(std::slice::from_ref(byte));
            packets.extend(std::iter::from_fn(|| decoder.next_packet()));
        }
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].kind(), PUBLISH);
        assert_eq!(packets[0].publish_parts(), Some((Some(513), &[b'x'; 200][..])));
        assert_eq!(packets[1], Packet { first: 0x40, body: vec![0, 7] });
    }

    #[test]
    fn remaining_lengths_use_the_varint() {
        let mut out = Vec::new();
        push_len(&mut out, 321);
        assert_eq!(out, [0xc1, 0x02]);
        assert_eq!(connect("c")[..2], [0x10, 13]);
    }
}
