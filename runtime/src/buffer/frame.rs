//! How a buffer record is laid out: on disk a frame `[len u32 LE][crc32 u32 LE][bytes]`,
//! and inside it one message with its address (topic, key, headers, payload).
//!
//! A frame is trusted only whole: its length must fit what follows and its CRC must
//! match. [`scan`] walks a segment's bytes frame by frame and, where one is damaged,
//! finds the next good frame, so a damaged record in the middle costs only its own
//! bytes and a damaged tail is recognised as such.

use crate::sinks::Address;

/// Bytes before a record's own: its length and its CRC.
pub const HEADER: u64 = 8;

/// A frame claiming more than this is damage (no message of a broker is this large).
pub const MAX_RECORD: u32 = 64 << 20;

/// Appends `record` framed to `out`.
pub fn frame(record: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(record.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(record).to_le_bytes());
    out.extend_from_slice(record);
}

/// What the bytes at one position hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    /// A whole frame whose record is `len` bytes (the frame is `HEADER + len`).
    Record { len: u32 },
    /// Fewer bytes than the header or the length claims: a write cut short.
    Short,
    /// A length no record has (zero, or over [`MAX_RECORD`]).
    BadLength,
    /// The record's bytes do not match its CRC.
    BadCrc { len: u32 },
}

/// Reads the frame at the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Frame {
    let Some((len, crc)) = header(bytes) else {
        return Frame::Short;
    };
    if len == 0 || len > MAX_RECORD {
        return Frame::BadLength;
    }
    let Some(record) = bytes.get(HEADER as usize..HEADER as usize + len as usize) else {
        return Frame::Short;
    };
    if crc32fast::hash(record) == crc {
        Frame::Record { len }
    } else {
        Frame::BadCrc { len }
    }
}

/// The length and CRC of a frame header, if `bytes` holds one.
pub fn header(bytes: &[u8]) -> Option<(u32, u32)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    let crc = u32::from_le_bytes(bytes.get(4..8)?.try_into().ok()?);
    Some((len, crc))
}

/// A damaged stretch of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Offset in the segment where it starts.
    pub offset: u64,
    pub bytes: u64,
    /// Nothing good follows it: a write cut short by a crash (or damage at the end).
    pub tail: bool,
    /// What was wrong with the first frame.
    pub why: &'static str,
}

impl Damage {
    fn new(offset: usize, bytes: usize, tail: bool, frame: Frame) -> Self {
        Damage {
            offset: offset as u64,
            bytes: bytes as u64,
            tail,
            why: match frame {
                Frame::Short => "a record cut short",
                Frame::BadLength => "an impossible record length",
                Frame::BadCrc { .. } => "a CRC mismatch",
                Frame::Record { .. } => "no damage",
            },
        }
    }
}

/// One step of a walk through a segment's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A good record: its frame starts at `offset` and ends at `next`.
    Record { offset: usize, next: usize },
    /// Damaged bytes, skipped.
    Damaged(Damage),
}

/// What is at `offset`: a record, or damage reaching to the next good frame (or the end).
/// `None` at the end.
pub fn step(bytes: &[u8], offset: usize) -> Option<Step> {
    let rest = bytes.get(offset..).filter(|r| !r.is_empty())?;
    let frame = parse(rest);
    if let Frame::Record { len } = frame {
        let next = offset + HEADER as usize + len as usize;
        return Some(Step::Record { offset, next });
    }
    // A record whose bytes changed but whose length is intact ends where the next good
    // frame (or the segment) starts: only that record is lost.
    if let Frame::BadCrc { len } = frame {
        let next = offset + HEADER as usize + len as usize;
        if next == bytes.len() || matches!(bytes.get(next..).map(parse), Some(Frame::Record { .. })) {
            return Some(Step::Damaged(Damage::new(
                offset,
                next - offset,
                next == bytes.len(),
                frame,
            )));
        }
    }
    // Otherwise the length itself is wrong: look for the next good frame byte by byte.
    let resume = (offset + 1..bytes.len()).find(|&p| matches!(parse(&bytes[p..]), Frame::Record { .. }));
    Some(Step::Damaged(match resume {
        Some(p) => Damage::new(offset, p - offset, false, frame),
        None => Damage::new(offset, bytes.len() - offset, true, frame),
    }))
}

/// Walks every frame of a segment's bytes in order.
pub fn scan(bytes: &[u8]) -> impl Iterator<Item = Step> + '_ {
    let mut offset = 0;
    std::iter::from_fn(move || {
        let s = step(bytes, offset)?;
        offset = match &s {
            Step::Record { next, .. } => *next,
            Step::Damaged(d) => offset + d.bytes as usize,
        };
        Some(s)
    })
}

/// Marks an absent topic, key or header value.
const NONE: u32 = u32::MAX;

/// Appends one message (its address, then its payload) as a record's bytes.
pub fn encode_message(payload: &[u8], address: &Address<'_>, out: &mut Vec<u8>) {
    let put = |out: &mut Vec<u8>, s: Option<&str>| match s {
        Some(s) => {
            out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(NONE - 1).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        None => out.extend_from_slice(&NONE.to_le_bytes()),
    };
    put(out, address.topic);
    put(out, address.key);
    // A header without a value is left out by every connector, so it is not kept.
    let headers: Vec<_> = address.headers.iter().filter(|(_, v)| v.is_some()).collect();
    out.extend_from_slice(&u32::try_from(headers.len()).unwrap_or(0).to_le_bytes());
    for (name, value) in headers {
        put(out, Some(name));
        put(out, *value);
    }
    out.extend_from_slice(payload);
}

/// A message read back from a record: its address parts and payload, borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub topic: Option<&'a str>,
    pub key: Option<&'a str>,
    pub headers: Vec<(&'a str, Option<&'a str>)>,
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    pub fn address(&self) -> Address<'_> {
        Address {
            topic: self.topic,
            key: self.key,
            headers: &self.headers,
        }
    }
}

/// Reads a message written by [`encode_message`]; `None` if the bytes are not one.
pub fn decode_message(bytes: &[u8]) -> Option<Message<'_>> {
    let mut at = 0usize;
    let u32_at = |at: &mut usize| -> Option<u32> {
        let v = u32::from_le_bytes(bytes.get(*at..*at + 4)?.try_into().ok()?);
        *at += 4;
        Some(v)
    };
    let text = |at: &mut usize| -> Option<Option<&str>> {
        let len = u32_at(at)?;
        if len == NONE {
            return Some(None);
        }
        let s = std::str::from_utf8(bytes.get(*at..*at + len as usize)?).ok()?;
        *at += len as usize;
        Some(Some(s))
    };
    let topic = text(&mut at)?;
    let key = text(&mut at)?;
    let count = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
    at += 4;
    let mut headers = Vec::new();
    for _ in 0..count {
        let name = text(&mut at)??;
        headers.push((name, text(&mut at)?));
    }
    Some(Message {
        topic,
        key,
        headers,
        payload: bytes.get(at..)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(records: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            frame(r, &mut out);
        }
        out
    }

    #[test]
    fn a_message_round_trips_with_its_address() {
        let headers = [("h1", Some("v1")), ("gone", None), ("h2", Some(""))];
        let address = Address {
            topic: Some("t/1"),
            key: None,
            headers: &headers,
        };
        let mut bytes = Vec::new();
        encode_message(b"{\"n\":1}", &address, &mut bytes);
        let m = decode_message(&bytes);
        assert_eq!(
            m,
            Some(Message {
                topic: Some("t/1"),
                key: None,
                headers: vec![("h1", Some("v1")), ("h2", Some(""))],
                payload: b"{\"n\":1}",
            })
        );
        assert_eq!(decode_message(&bytes[..3]), None);
    }

    #[test]
    fn a_scan_finds_every_record_and_says_where_damage_is() {
        let good = framed(&[b"one", b"two", b"three"]);
        let steps: Vec<Step> = scan(&good).collect();
        assert_eq!(
            steps,
            vec![
                Step::Record { offset: 0, next: 11 },
                Step::Record { offset: 11, next: 22 },
                Step::Record { offset: 22, next: 35 }
            ]
        );
        // A flipped byte inside the second record: only it is lost.
        let mut flipped = good.clone();
        flipped[20] ^= 0x40;
        let steps: Vec<Step> = scan(&flipped).collect();
        assert_eq!(
            steps[1],
            Step::Damaged(Damage::new(11, 11, false, Frame::BadCrc { len: 3 }))
        );
        assert_eq!(steps[2], Step::Record { offset: 22, next: 35 });
        // A flipped byte in a length: the scan finds the next good frame.
        let mut bad_len = good.clone();
        bad_len[14] ^= 0x10;
        let steps: Vec<Step> = scan(&bad_len).collect();
        assert_eq!(steps[1], Step::Damaged(Damage::new(11, 11, false, Frame::BadLength)));
        assert_eq!(steps.len(), 3);
        // Cut in the middle of the last record: a torn tail.
        let torn = &good[..30];
        let steps: Vec<Step> = scan(torn).collect();
        assert_eq!(steps[2], Step::Damaged(Damage::new(22, 8, true, Frame::Short)));
    }
}
