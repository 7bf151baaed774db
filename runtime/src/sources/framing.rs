//! Splitting a byte stream into newline-terminated records.
//!
//! Shared by the file and stdin sources. Bytes are read into one growable buffer and
//! complete lines are copied into the caller's [`RawBatch`]; a partial last line stays
//! in the buffer until its `'\n'` arrives (or the stream ends).

use crate::batch::{strip_newline, RawBatch};
use std::io::{self, Read};

const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct LineSplitter {
    /// Always fully initialised; valid bytes are `start..end`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// `start..scanned` is known to hold no `'\n'`, so a long partial line is not
    /// rescanned on every read.
    scanned: usize,
}

impl LineSplitter {
    pub(crate) fn new() -> Self {
        LineSplitter {
            buf: vec![0; READ_CHUNK],
            start: 0,
            end: 0,
            scanned: 0,
        }
    }

    /// Moves complete lines into `batch` until it holds `max` records. Returns `true`
    /// when the batch is full (more lines may be waiting).
    pub(crate) fn drain_lines(&mut self, batch: &mut RawBatch, max: usize) -> bool {
        while batch.len() < max {
            let from = self.scanned.max(self.start);
            let window = &self.buf[from..self.end];
            // memchr scans a word (or a SIMD vector) at a time: the hottest loop of line input.
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    let line_end = from + i + 1;
                    batch.push(strip_newline(&self.buf[self.start..line_end]));
                    self.start = line_end;
                    self.scanned = line_end;
                }
                None => {
                    self.scanned = self.end;
                    return false;
                }
            }
        }
        true
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

    /// At the end of the stream: the partial last line (if any) is still a record.
    pub(crate) fn finish(&mut self, batch: &mut RawBatch) {
        if self.start < self.end {
            batch.push(strip_newline(&self.buf[self.start..self.end]));
        }
        self.clear();
    }

    /// Forgets buffered bytes (after a truncation the partial line is meaningless).
    pub(crate) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
        self.scanned = 0;
    }

    #[cfg(test)]
    pub(crate) fn has_partial(&self) -> bool {
        self.start < self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(b: &RawBatch) -> Vec<String> {
        b.iter().map(|r| String::from_utf8_lossy(r).into_owned()).collect()
    }

    #[test]
    fn splits_lines_across_reads_and_respects_max() {
        let mut s = LineSplitter::new();
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
        let mut s = LineSplitter::new();
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
