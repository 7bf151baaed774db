//! Splitting a byte stream into newline-terminated records.
//!
//! Shared by the file and stdin sources. Bytes are read into one growable buffer and
//! complete lines are copied into the caller's [`RawBatch`]; a partial last line stays
//! in the buffer until its `'\n'` arrives (or the stream ends).
//!
//! A record longer than `max_record` bytes is never held: once the partial line passes
//! the limit, the splitter keeps its first [`EXCERPT_BYTES`] and drops the rest as it
//! arrives, until the line's end. The record then becomes a bad record in the batch
//! (see [`RawBatch::push_failed`]) with its true length and the excerpt, and reading
//! goes on with the next line. So the buffer stays below `max_record` plus one read
//! chunk, whatever the input (`/dev/zero` included).

use crate::batch::{strip_newline, RawBatch};
use std::io::{self, Read};
use std::ops::Range;

mod newlines;

const READ_CHUNK: usize = 64 * 1024;

/// How much of an over-long record its dead letter shows.
pub(crate) const EXCERPT_BYTES: usize = 256;

/// A record that goes on without an end is reported again every this many times
/// `max_record` bytes, so an endless stream without line breaks still shows up.
const REPORT_EVERY_LIMITS: u64 = 1024;

/// The UTF-8 byte-order mark some editors put at the start of a text file.
const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug)]
pub(crate) struct LineSplitter {
    /// Always fully initialised; valid bytes are `start..end`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `start..scanned` is known to hold no `'\n'`, so a long partial line is not
    /// rescanned on every read.
    scanned: usize,
    /// The longest record kept whole, in bytes (without its line ending).
    max_record: usize,
    /// The over-long record being skipped, if any.
    skipping: Option<Skipped>,
    /// No record of this stream was emitted yet: a leading byte-order mark is dropped.
    at_stream_start: bool,
    /// The line ends found by one scan, and the lines they end, reused.
    ends: Vec<usize>,
    lines: Vec<Range<usize>>,
}

/// What is kept of an over-long record while the rest of it is skipped.
#[derive(Debug)]
struct Skipped {
    excerpt: Vec<u8>,
    /// Bytes of the record seen so far.
    len: u64,
    /// `len` when it was last reported (a record without an end is reported repeatedly).
    reported: u64,
}

impl LineSplitter {
    /// Splits lines, keeping records of up to `max_record` bytes (at least 1).
    pub(crate) fn new(max_record: usize) -> Self {
        LineSplitter {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
            max_record: max_record.max(1),
            skipping: None,
            at_stream_start: true,
            ends: Vec::new(),
            lines: Vec::new(),
        }
    }

    /// Moves complete lines into `batch` until it holds `max` records. Returns `true`
    /// when the batch is full (more lines may be waiting).
    pub(crate) fn drain_lines(&mut self, batch: &mut RawBatch, max: usize) -> bool {
        while batch.len() < max {
            if self.skipping.is_some() {
                if !self.skip(batch) {
                    return false;
                }
                continue;
            }
            if !self.at_stream_start && self.end - self.start <= self.max_record {
                return self.drain_whole_lines(batch, max);
            }
            let from = self.scanned.max(self.start);
            let window = &self.buf[from..self.end];
            // memchr scans a word (or a SIMD vector) at a time: the hottest loop of line input.
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    let line_end = from + i + 1;
                    let (start, at_stream_start) = (self.start, self.at_stream_start);
                    self.start = line_end;
                    self.scanned = line_end;
                    self.at_stream_start = false;
                    let record = record_bytes(&self.buf[start..line_end], at_stream_start);
                    if record.len() > self.max_record {
                        let len = record.len() as u64;
                        push_too_long(batch, excerpt(record), len, self.max_record, true);
                    } else {
                        batch.push(record);
                    }
                }
                None => {
                    self.scanned = self.end;
                    if self.end - self.start > self.max_record {
                        self.start_skipping();
                        continue;
                    }
                    return false;
                }
            }
        }
        true
    }

    /// [`Self::drain_lines`] where no line can be over the limit (the buffer holds no
    /// more than `max_record` bytes) and no byte-order mark is looked for: the line ends
    /// are found many at a time and the lines copied into the batch at once.
    fn drain_whole_lines(&mut self, batch: &mut RawBatch, max: usize) -> bool {
        let from = self.scanned.max(self.start);
        let wanted = max - batch.len();
        self.ends.clear();
        newlines::find(&self.buf[from..self.end], wanted, &mut self.ends);
        self.lines.clear();
        for &newline in &self.ends {
            let end = from + newline;
            let line = strip_newline(&self.buf[self.start..=end]);
            self.lines.push(self.start..self.start + line.len());
            self.start = end + 1;
        }
        batch.push_all(&self.buf, &self.lines);
        if self.ends.len() == wanted {
            self.scanned = self.start;
            return true;
        }
        self.scanned = self.end;
        false
    }

    /// The partial line passed the limit: keep its excerpt, drop the rest.
    fn start_skipping(&mut self) {
        let partial = &self.buf[self.start..self.end];
        let record = match self.at_stream_start {
            true => partial.strip_prefix(BOM).unwrap_or(partial),
            false => partial,
        };
        self.skipping = Some(Skipped {
            excerpt: excerpt(record).to_vec(),
            len: record.len() as u64,
            reported: 0,
        });
        self.at_stream_start = false;
        self.start = self.end;
        self.scanned = self.end;
    }

    /// Drops the buffered bytes of the record being skipped, up to its end. True when
    /// the end was found (the record is reported in `batch`); false when more is needed.
    fn skip(&mut self, batch: &mut RawBatch) -> bool {
        let Some(skipped) = self.skipping.as_mut() else {
            return true;
        };
        let window = &self.buf[self.start..self.end];
        let end = memchr::memchr(b'\n', window);
        // The excerpt fills up to its size even when the limit is smaller.
        let rest = strip_newline(&window[..end.map_or(window.len(), |i| i + 1)]);
        let missing = EXCERPT_BYTES.saturating_sub(skipped.excerpt.len());
        skipped.excerpt.extend_from_slice(&rest[..missing.min(rest.len())]);
        match end {
            Some(i) => {
                // The length without the line ending, as for any record.
                let len = skipped.len + rest.len() as u64;
                self.start += i + 1;
                self.scanned = self.start;
                if let Some(skipped) = self.skipping.take() {
                    push_too_long(batch, &skipped.excerpt, len, self.max_record, true);
                }
                true
            }
            None => {
                // A '\r' at the end may begin the line's "\r\n": it is looked at again
                // with what follows, so it is not counted in the record's length.
                let held = usize::from(window.last() == Some(&b'\r'));
                skipped.len += (window.len() - held) as u64;
                self.start = self.end - held;
                self.scanned = self.start;
                let every = (self.max_record as u64).saturating_mul(REPORT_EVERY_LIMITS);
                if skipped.len - skipped.reported >= every {
                    skipped.reported = skipped.len;
                    push_too_long(batch, &skipped.excerpt, skipped.len, self.max_record, false);
                }
                false
            }
        }
    }

    /// Makes room for at least one chunk: moves the partial line to the front, and grows
    /// the buffer only when the partial line alone fills it.
    fn make_room(&mut self) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start.min(self.scanned);
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 2 {
            let new_len = (self.buf.len() * 2).max(self.end + READ_CHUNK);
            self.buf.resize(new_len, 0);
        }
    }

    /// One `read` call into the buffer; `Ok(0)` means end of stream (for now).
    pub(crate) fn read_from<R: Read + ?Sized>(&mut self, reader: &mut R) -> io::Result<usize> {
        self.make_room();
        let n = reader.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }

    /// Appends bytes received some other way (the stdin thread's chunks).
    pub(crate) fn extend(&mut self, bytes: &[u8]) {
        self.make_room();
        if self.buf.len() - self.end < bytes.len() {
            self.buf.resize(self.end + bytes.len(), 0);
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// At the end of the stream: the partial last line (if any) is still a record, and
    /// a record being skipped is reported. The next bytes start a new stream.
    pub(crate) fn finish(&mut self, batch: &mut RawBatch) {
        if let Some(skipped) = self.skipping.take() {
            let len = skipped.len + strip_newline(&self.buf[self.start..self.end]).len() as u64;
            push_too_long(batch, &skipped.excerpt, len, self.max_record, true);
        } else if self.start < self.end {
            let record = record_bytes(&self.buf[self.start..self.end], self.at_stream_start);
            if record.len() > self.max_record {
                push_too_long(batch, excerpt(record), record.len() as u64, self.max_record, true);
            } else {
                batch.push(record);
            }
        }
        self.clear();
    }

    /// Forgets buffered bytes (after a truncation the partial line is meaningless); the
    /// next bytes start a new stream.
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.scanned = 0;
        self.skipping = None;
        self.at_stream_start = true;
    }

    /// Bytes given to the splitter that are not yet part of a record handed out: the
    /// partial line, or all of an over-long record being skipped. A stream resumed
    /// that many bytes back from what was read gives the same records.
    pub(crate) fn unconsumed(&self) -> u64 {
        let skipped = self.skipping.as_ref().map_or(0, |s| s.len);
        (self.end - self.start) as u64 + skipped
    }

    /// Forgets buffered bytes; the next bytes continue a stream (no byte-order mark is
    /// looked for) unless `at_start`.
    pub(crate) fn resume(&mut self, at_start: bool) {
        self.clear();
        self.at_stream_start = at_start;
    }

    #[cfg(test)]
    pub(crate) fn has_partial(&self) -> bool {
        self.start < self.end
    }

    /// Bytes allocated for buffering.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.len()
    }
}

/// One line without its line ending (and without a byte-order mark before the first
/// record of a stream).
fn record_bytes(line: &[u8], at_stream_start: bool) -> &[u8] {
    let record = strip_newline(line);
    match at_stream_start {
        true => record.strip_prefix(BOM).unwrap_or(record),
        false => record,
    }
}

/// The first bytes of a record, shown for it when it is too long.
fn excerpt(record: &[u8]) -> &[u8] {
    &record[..record.len().min(EXCERPT_BYTES)]
}

/// Adds an over-long record to the batch as a bad record: its length, the limit and its
/// first bytes. `ended`: the record's end was seen (else it goes on; `len` so far).
fn push_too_long(batch: &mut RawBatch, excerpt: &[u8], len: u64, max_record: usize, ended: bool) {
    let shown = excerpt.len().min(EXCERPT_BYTES);
    let reason = if ended {
        format!("record of {len} bytes exceeds max_record_bytes ({max_record}); skipped (first {shown} bytes shown)")
    } else {
        format!(
            "record of {len} bytes so far, without a line end, exceeds max_record_bytes ({max_record}); \
             skipping on (first {shown} bytes shown)"
        )
    };
    batch.push_failed(&excerpt[..shown], reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(b: &RawBatch) -> Vec<String> {
        b.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
    }

    /// Every record of `b`: `Ok(text)`, or `Err((reason, excerpt))` for a failed one.
    fn records(b: &RawBatch) -> Vec<Result<String, (String, String)>> {
        b.iter()
            .enumerate()
            .map(|(i, r)| {
                let text = String::from_utf8_lossy(r).into_owned();
                match b.failure(i) {
                    Some(reason) => Err((reason.to_owned(), text)),
                    None => Ok(text),
                }
            })
            .collect()
    }

    /// Reads all of `input` through `read_from` in chunks of at most `chunk` bytes.
    fn read_all(s: &mut LineSplitter, input: &[u8], chunk: usize) -> RawBatch {
        let mut b = RawBatch::new();
        for piece in input.chunks(chunk) {
            let mut reader = piece;
            while s.read_from(&mut reader).unwrap_or(0) > 0 {
                s.drain_lines(&mut b, usize::MAX);
            }
        }
        s.finish(&mut b);
        b
    }

    #[test]
    fn a_record_over_the_limit_is_skipped_with_its_length_and_an_excerpt() {
        let long = "x".repeat(1000);
        let input = format!("ok\n{long}\r\nnext\n{long}\nlast\n");
        // Arriving in small pieces (the limit passes mid-line) or in one read (the whole
        // line is in the buffer): the same records.
        for chunk in [7, input.len()] {
            let mut s = LineSplitter::new(100);
            let b = read_all(&mut s, input.as_bytes(), chunk);
            let reason = "record of 1000 bytes exceeds max_record_bytes (100); skipped (first 256 bytes shown)";
            let excerpt = "x".repeat(EXCERPT_BYTES);
            assert_eq!(
                records(&b),
                [
                    Ok("ok".to_owned()),
                    Err((reason.to_owned(), excerpt.clone())),
                    Ok("next".to_owned()),
                    Err((reason.to_owned(), excerpt)),
                    Ok("last".to_owned()),
                ],
                "in chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_record_at_the_limit_is_kept_and_an_unterminated_long_one_is_reported_at_the_end() {
        let mut s = LineSplitter::new(4);
        let b = read_all(&mut s, b"abcd\nabcde", 2);
        assert_eq!(
            records(&b),
            [
                Ok("abcd".to_owned()),
                Err((
                    "record of 5 bytes exceeds max_record_bytes (4); skipped (first 5 bytes shown)".to_owned(),
                    "abcde".to_owned()
                )),
            ]
        );
    }

    #[test]
    fn a_long_record_is_never_held_in_memory() {
        let max = 64 * 1024;
        let mut input = vec![b'y'; 20 << 20];
        input.extend_from_slice(b"\nafter\n");
        let mut s = LineSplitter::new(max);
        let b = read_all(&mut s, &input, 1 << 20);
        assert_eq!(b.len(), 2);
        assert!(b
            .failure(0)
            .is_some_and(|r| r.starts_with("record of 20971520 bytes exceeds")));
        assert_eq!(b.get(1), Some(&b"after"[..]));
        assert!(s.capacity() <= 4 * max, "buffer grew to {} bytes", s.capacity());
    }

    #[test]
    fn a_record_without_end_is_reported_again_every_1024_limits() {
        let mut s = LineSplitter::new(16);
        let mut b = RawBatch::new();
        let chunk = [0u8; 4096];
        for _ in 0..(2 * 16 * 1024 / chunk.len() + 1) {
            s.extend(&chunk);
            s.drain_lines(&mut b, usize::MAX);
        }
        let reasons: Vec<&str> = (0..b.len()).filter_map(|i| b.failure(i)).collect();
        assert_eq!(
            reasons,
            [
                "record of 16384 bytes so far, without a line end, exceeds max_record_bytes (16); skipping on \
                 (first 256 bytes shown)",
                "record of 32768 bytes so far, without a line end, exceeds max_record_bytes (16); skipping on \
                 (first 256 bytes shown)",
            ]
        );
    }

    #[test]
    fn a_byte_order_mark_at_the_start_of_a_stream_is_dropped() {
        let mut s = LineSplitter::new(1 << 20);
        let b = read_all(&mut s, b"\xEF\xBB\xBFfirst\n\xEF\xBB\xBFsecond\n", 1);
        assert_eq!(records(&b), [Ok("first".to_owned()), Ok("\u{feff}second".to_owned())]);
        // A new stream (after a truncation) starts afresh.
        s.clear();
        let b = read_all(&mut s, b"\xEF\xBB\xBFagain", 2);
        assert_eq!(records(&b), [Ok("again".to_owned())]);
    }

    /// Any input, arriving in pieces of any size and drained into batches of any size,
    /// gives the records of splitting it whole: lines without their ends, the byte-order
    /// mark of the first dropped, lines over the limit failed with an excerpt and their
    /// length. Pieces large and small take turns, so lines are found both many at a
    /// time and one by one, and buffers hold more and less than the limit.
    #[test]
    fn records_do_not_depend_on_how_the_bytes_arrive_or_how_many_a_batch_takes() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |below: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % below
        };
        let max_record = 40;
        for round in 0..200 {
            let mut input = if round % 3 == 0 { BOM.to_vec() } else { Vec::new() };
            for _ in 0..next(60) {
                let len = [next(8), next(max_record as u64 + 2), next(120)][next(3) as usize];
                input.extend((0..len).map(|i| b'a' + (i % 26) as u8));
                input.extend_from_slice([&b"\n"[..], b"\r\n", b"\n\n"][next(3) as usize]);
            }
            input.extend_from_slice(&b"tail"[..next(5) as usize]);

            let mut expected = Vec::new();
            let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
            if pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            for (i, piece) in pieces.into_iter().enumerate() {
                let piece = if i == 0 {
                    piece.strip_prefix(BOM).unwrap_or(piece)
                } else {
                    piece
                };
                let line = piece.strip_suffix(b"\r").unwrap_or(piece);
                expected.push(match line.len() > max_record {
                    true => Err((line.len(), String::from_utf8_lossy(excerpt(line)).into_owned())),
                    false => Ok(String::from_utf8_lossy(line).into_owned()),
                });
            }

            let mut s = LineSplitter::new(max_record);
            let mut got = Vec::new();
            let mut take = |b: &mut RawBatch| {
                for record in records(b) {
                    got.push(record.map_err(|(reason, excerpt)| {
                        let len = reason.split(' ').nth(2).and_then(|n| n.parse().ok()).unwrap_or(0);
                        (len, excerpt)
                    }));
                }
                b.clear();
            };
            let mut b = RawBatch::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let size = [1 + next(7), 1 + next(300)][next(2) as usize] as usize;
                let (piece, after) = rest.split_at(size.min(rest.len()));
                rest = after;
                s.extend(piece);
                let most = 1 + next(20) as usize;
                while s.drain_lines(&mut b, most) {
                    take(&mut b);
                }
                take(&mut b);
            }
            s.finish(&mut b);
            take(&mut b);
            assert_eq!(got, expected, "round {round}: {:?}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn splits_lines_across_reads_and_respects_max() {
        let mut s = LineSplitter::new(1 << 20);
        let mut b = RawBatch::new();
        s.extend(b"a\r\nbb\ncc");
        assert!(!s.drain_lines(&mut b, 10));
        assert_eq!(lines(&b), ["a", "bb"]);
        assert!(s.has_partial());
        s.extend(b"c\nd\ne\n");
        b.clear();
        assert!(s.drain_lines(&mut b, 2));
        assert_eq!(lines(&b), ["ccc", "d"]);
        b.clear();
        assert!(!s.drain_lines(&mut b, 2));
        assert_eq!(lines(&b), ["e"]);
        assert!(!s.has_partial());
    }

    #[test]
    fn long_lines_grow_the_buffer() {
        let mut s = LineSplitter::new(1 << 20);
        let long = vec![b'x'; READ_CHUNK * 3 + 7];
        let mut input: Vec<u8> = long.clone();
        input.extend_from_slice(b"\ntail");
        let mut reader = &input[..];
        let mut b = RawBatch::new();
        while s.read_from(&mut reader).unwrap_or(0) > 0 {
            s.drain_lines(&mut b, 10);
        }
        s.finish(&mut b);
        assert_eq!(b.len(), 2);
        assert_eq!(b.get(0).map(<[u8]>::len), Some(long.len()));
        assert_eq!(b.get(1), Some(&b"tail"[..]));
    }
}
