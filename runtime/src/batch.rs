//! `RawBatch`: the raw records of one poll, stored contiguously.
//!
//! A batch is one byte buffer plus record boundaries, reused across polls: after the
//! first few polls it stops allocating, whatever the number of records, which a
//! `Vec<Vec<u8>>` could not do.

/// Raw records (bytes) of one poll. `clear` keeps the capacity.
#[derive(Debug, Default, Clone)]
pub struct RawBatch {
    data: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

impl RawBatch {
    pub fn new() -> Self {
        RawBatch::default()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ranges.clear();
    }

    /// Appends one record (copied).
    pub fn push(&mut self, record: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(record);
        self.ranges.push((start, self.data.len()));
    }

    /// Appends one record written in place by `write`, so a source that builds records
    /// (the generator) needs no intermediate buffer.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let start = self.data.len();
        write(&mut self.data);
        self.ranges.push((start, self.data.len()));
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn get(&self, i: usize) -> Option<&[u8]> {
        self.ranges.get(i).and_then(|&(s, e)| self.data.get(s..e))
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges
            .iter()
            .map(move |&(s, e)| self.data.get(s..e).unwrap_or(&[]))
    }

    /// Total bytes of all records.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

/// Strips one trailing `"\n"` or `"\r\n"` (and a lone trailing `'\r'`).
pub fn strip_newline(record: &[u8]) -> &[u8] {
    let r = record.strip_suffix(b"\n").unwrap_or(record);
    r.strip_suffix(b"\r").unwrap_or(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_clear_keeps_capacity() {
        let mut b = RawBatch::new();
        b.push(b"one");
        b.push(b"");
        b.push_with(|v| v.extend_from_slice(b"three"));
        assert_eq!(b.len(), 3);
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![&b"one"[..], b"", b"three"]);
        assert_eq!(b.get(2), Some(&b"three"[..]));
        assert_eq!(b.get(3), None);
        let cap = b.data.capacity();
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.bytes(), 0);
        assert_eq!(b.data.capacity(), cap);
    }

    #[test]
    fn strips_one_line_ending() {
        assert_eq!(strip_newline(b"a\r\n"), b"a");
        assert_eq!(strip_newline(b"a\n"), b"a");
        assert_eq!(strip_newline(b"a\n\n"), b"a\n");
        assert_eq!(strip_newline(b"a"), b"a");
    }
}
