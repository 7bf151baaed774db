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
    /// Per record, when the source has metadata (Kafka) and the pipeline reads it.
    meta: Vec<Meta>,
    /// Keys and header values of `meta`, stored like the records.
    meta_data: Vec<u8>,
    /// The wanted headers of each record in turn (`None`: absent), ranges in `meta_data`.
    headers: Vec<Option<(usize, usize)>>,
    /// Records the source could not read whole (index, reason), in index order: bad
    /// records whose bytes are only an excerpt.
    failed: Vec<(usize, String)>,
}

/// Where a message came from: its topic, partition, offset, broker timestamp and key.
#[derive(Debug, Clone)]
struct Meta {
    topic: std::rc::Rc<str>,
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<(usize, usize)>,
    /// Range in `RawBatch::headers`.
    headers: (usize, usize),
}

/// What a source knows about one message besides its payload.
#[derive(Debug, Clone, Copy)]
pub struct MessageInfo<'a> {
    pub topic: &'a std::rc::Rc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Unix ms, as the producer or the broker set it.
    pub timestamp: Option<i64>,
    pub key: Option<&'a [u8]>,
}

/// The metadata of one record of a batch, read by generated code into metadata fields.
#[derive(Debug, Clone, Copy)]
pub struct MetaView<'a> {
    batch: &'a RawBatch,
    meta: &'a Meta,
}

impl MetaView<'_> {
    pub fn topic(&self) -> String {
        self.meta.topic.to_string()
    }
    pub fn partition(&self) -> i64 {
        i64::from(self.meta.partition)
    }
    pub fn offset(&self) -> i64 {
        self.meta.offset
    }
    pub fn timestamp(&self) -> Option<i64> {
        self.meta.timestamp
    }
    /// The key as text (invalid UTF-8 replaced), `None` for a message without a key.
    pub fn key(&self) -> Option<String> {
        self.meta.key.map(|r| self.batch.text(&self.batch.meta_data, r))
    }
    /// The value of the `n`th wanted header (in the order the source was given them).
    pub fn header(&self, n: usize) -> Option<String> {
        let (start, end) = self.meta.headers;
        self.batch.headers[start..end]
            .get(n)
            .copied()
            .flatten()
            .map(|r| self.batch.text(&self.batch.meta_data, r))
    }
}

impl RawBatch {
    pub fn new() -> Self {
        RawBatch::default()
    }

    pub fn clear(&mut self) {
        self.data.clear();
        self.ranges.clear();
        self.meta.clear();
        self.meta_data.clear();
        self.headers.clear();
        self.failed.clear();
    }

    /// Appends a record the source could not read whole (one longer than its limit):
    /// `excerpt` stands for it, and it is a bad record for `reason`, never decoded.
    pub fn push_failed(&mut self, excerpt: &[u8], reason: String) {
        self.failed.push((self.len(), reason));
        self.push(excerpt);
    }

    /// Why record `i` is bad before decoding, if it is (see [`Self::push_failed`]).
    #[inline]
    pub fn failure(&self, i: usize) -> Option<&str> {
        if self.failed.is_empty() {
            return None;
        }
        let at = self.failed.partition_point(|(j, _)| *j < i);
        self.failed.get(at).filter(|(j, _)| *j == i).map(|(_, r)| r.as_str())
    }

    /// Appends one message with its metadata and the values of the wanted headers. A
    /// batch holds metadata for all its records or for none.
    pub fn push_message<'h>(
        &mut self,
        payload: &[u8],
        info: MessageInfo<'_>,
        headers: impl IntoIterator<Item = Option<&'h [u8]>>,
    ) {
        self.push(payload);
        let key = info.key.map(|k| stash(&mut self.meta_data, k));
        let first = self.headers.len();
        for value in headers {
            let range = value.map(|v| stash(&mut self.meta_data, v));
            self.headers.push(range);
        }
        self.meta.push(Meta {
            topic: info.topic.clone(),
            partition: info.partition,
            offset: info.offset,
            timestamp: info.timestamp,
            key,
            headers: (first, self.headers.len()),
        });
    }

    /// The metadata of record `i`, when the source recorded any.
    pub fn meta(&self, i: usize) -> Option<MetaView<'_>> {
        self.meta.get(i).map(|meta| MetaView { batch: self, meta })
    }

    fn text(&self, bytes: &[u8], (start, end): (usize, usize)) -> String {
        String::from_utf8_lossy(bytes.get(start..end).unwrap_or(&[])).into_owned()
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

/// Copies `bytes` to the end of `store`; returns their range.
fn stash(store: &mut Vec<u8>, bytes: &[u8]) -> (usize, usize) {
    let start = store.len();
    store.extend_from_slice(bytes);
    (start, store.len())
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
    fn messages_keep_their_metadata_and_wanted_headers() {
        let topic: std::rc::Rc<str> = "clicks".into();
        let mut b = RawBatch::new();
        let info = |offset, key| MessageInfo {
            topic: &topic,
            partition: 2,
            offset,
            timestamp: Some(1_700_000_000_000),
            key,
        };
        b.push_message(b"{}", info(7, Some(&b"user-1"[..])), [Some(&b"t-1"[..]), None]);
        b.push_message(b"{\"a\":1}", info(8, None), [None, Some(&b"\xff"[..])]);
        assert_eq!(b.get(1), Some(&b"{\"a\":1}"[..]));
        let (first, second) = (b.meta(0).unwrap(), b.meta(1).unwrap());
        assert_eq!(
            (first.topic(), first.partition(), first.offset()),
            ("clicks".to_string(), 2, 7)
        );
        assert_eq!(first.timestamp(), Some(1_700_000_000_000));
        assert_eq!(first.key().as_deref(), Some("user-1"));
        assert_eq!((first.header(0).as_deref(), first.header(1)), (Some("t-1"), None));
        assert_eq!((second.key(), second.offset()), (None, 8));
        assert_eq!(
            (second.header(0), second.header(1).as_deref()),
            (None, Some("\u{fffd}"))
        );
        assert!(b.meta(2).is_none());
        b.clear();
        assert!(b.meta(0).is_none());
    }

    #[test]
    fn failed_records_keep_their_reason_until_cleared() {
        let mut b = RawBatch::new();
        b.push(b"ok");
        b.push_failed(b"xxx", "too long".to_owned());
        b.push(b"ok too");
        assert_eq!(b.len(), 3);
        assert_eq!(b.get(1), Some(&b"xxx"[..]));
        assert_eq!(
            (b.failure(0), b.failure(1), b.failure(2)),
            (None, Some("too long"), None)
        );
        b.clear();
        b.push(b"again");
        assert_eq!(b.failure(0), None);
    }

    #[test]
    fn strips_one_line_ending() {
        assert_eq!(strip_newline(b"a\r\n"), b"a");
        assert_eq!(strip_newline(b"a\n"), b"a");
        assert_eq!(strip_newline(b"a\n\n"), b"a\n");
        assert_eq!(strip_newline(b"a"), b"a");
    }
}
