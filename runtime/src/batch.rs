//! `RawBatch`: the raw records of one poll, stored contiguously.
//!
//! A batch is one byte buffer plus record boundaries, reused across polls: after the
//! first few polls it stops allocating, whatever the number of records, which a
//! `Vec<Vec<u8>>` could not do.

use std::ops::Range;

/// Raw records (bytes) of one poll. `clear` keeps the capacity.
#[derive(Debug, Default, Clone)]
pub struct RawBatch {
    data: Vec<u8>,
    ranges: Vec<(usize, usize)>,
    /// Per record, when the source offers metadata and the pipeline reads it: the
    /// range of its values in `meta_values`.
    meta: Vec<(usize, usize)>,
    /// The wanted metadata values of each record in turn, in the order the source was
    /// asked for them.
    meta_values: Vec<Stored>,
    /// The text values of `meta_values`, stored like the records.
    meta_data: Vec<u8>,
    /// Where records came from (the records' indexes, range in `meta_data`), for
    /// sources that know (a topic, a client): named in the dead letter of a record that
    /// does not decode. In index order, not overlapping.
    origins: Vec<(Range<usize>, (usize, usize))>,
    /// Records the source could not read whole (index, reason), in index order: bad
    /// records whose bytes are only an excerpt.
    failed: Vec<(usize, String)>,
    /// Bytes of `data` between records that [`Self::push_all`] copied with them
    /// (separators, line ends), not counted in [`Self::bytes`].
    between: usize,
}

/// One piece of a message's metadata (its topic, key, a header, ..), as a connector
/// hands it over. Which pieces, in which order, the connector was told at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaValue<'a> {
    /// The message has none (no key, no such header).
    Absent,
    Text(&'a [u8]),
    Int(i64),
    Bool(bool),
}

/// A [`MetaValue`] kept in the batch: text as a range of `meta_data`.
#[derive(Debug, Clone, Copy)]
enum Stored {
    Absent,
    Text(usize, usize),
    Int(i64),
    Bool(bool),
}

/// The metadata of one record of a batch, read by generated code into metadata fields:
/// the `n`th value, typed as the connector declared it.
#[derive(Debug, Clone, Copy)]
pub struct MetaView<'a> {
    batch: &'a RawBatch,
    values: &'a [Stored],
}

impl MetaView<'_> {
    /// Text (invalid UTF-8 replaced), `None` when absent or not text.
    pub fn opt_text(&self, n: usize) -> Option<String> {
        match self.values.get(n) {
            Some(&Stored::Text(start, end)) => Some(self.batch.text(&self.batch.meta_data, (start, end))),
            _ => None,
        }
    }
    /// Text, empty when absent.
    pub fn text(&self, n: usize) -> String {
        self.opt_text(n).unwrap_or_default()
    }
    pub fn opt_int(&self, n: usize) -> Option<i64> {
        match self.values.get(n) {
            Some(&Stored::Int(v)) => Some(v),
            _ => None,
        }
    }
    /// A number, 0 when absent.
    pub fn int(&self, n: usize) -> i64 {
        self.opt_int(n).unwrap_or(0)
    }
    /// A flag, false when absent.
    pub fn bool(&self, n: usize) -> bool {
        matches!(self.values.get(n), Some(Stored::Bool(true)))
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
        self.meta_values.clear();
        self.meta_data.clear();
        self.origins.clear();
        self.failed.clear();
        self.between = 0;
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

    /// Appends one message with the values of its wanted metadata. A batch holds
    /// metadata for all its records or for none.
    pub fn push_message<'m>(&mut self, payload: &[u8], metadata: impl IntoIterator<Item = MetaValue<'m>>) {
        self.push(payload);
        let values = self.store_meta(metadata);
        self.meta.push(values);
    }

    /// Keeps one message's metadata values; their range in `meta_values`.
    fn store_meta<'m>(&mut self, metadata: impl IntoIterator<Item = MetaValue<'m>>) -> (usize, usize) {
        let first = self.meta_values.len();
        for value in metadata {
            let stored = match value {
                MetaValue::Absent => Stored::Absent,
                MetaValue::Text(bytes) => {
                    let (start, end) = stash(&mut self.meta_data, bytes);
                    Stored::Text(start, end)
                }
                MetaValue::Int(v) => Stored::Int(v),
                MetaValue::Bool(v) => Stored::Bool(v),
            };
            self.meta_values.push(stored);
        }
        (first, self.meta_values.len())
    }

    /// Appends the records at `ranges` of `bytes` (in order, not overlapping: a message's
    /// records framed by its source) with one copy of the span they cover, so a source
    /// taking many records of one buffer pays one copy, not one per record. What lies
    /// between them (their separators) is copied too, not counted in [`Self::bytes`].
    pub fn push_all(&mut self, bytes: &[u8], ranges: &[Range<usize>]) {
        let (Some(first), Some(last)) = (ranges.first(), ranges.last()) else {
            return;
        };
        let Some(span) = bytes.get(first.start..last.end) else {
            // Not ranges of `bytes`: record by record, each checked.
            for range in ranges {
                self.push(bytes.get(range.clone()).unwrap_or_default());
            }
            return;
        };
        let base = self.data.len();
        self.data.extend_from_slice(span);
        let end = self.data.len();
        // Clamped to the span: ranges out of order cannot reach beyond it.
        let at = |i: usize| (base + i.saturating_sub(first.start)).min(end);
        let mut payload = 0;
        self.ranges.extend(ranges.iter().map(|r| {
            let start = at(r.start);
            let end = at(r.end).max(start);
            payload += end - start;
            (start, end)
        }));
        self.between += span.len().saturating_sub(payload);
    }

    /// [`Self::push_all`] for records of one message: each has the same metadata
    /// values, stored once.
    pub fn push_all_messages<'m>(
        &mut self,
        bytes: &[u8],
        ranges: &[Range<usize>],
        metadata: impl IntoIterator<Item = MetaValue<'m>>,
    ) {
        let values = self.store_meta(metadata);
        let before = self.len();
        self.push_all(bytes, ranges);
        self.meta.extend(std::iter::repeat_n(values, self.len() - before));
    }

    /// The record pushed last came from `origin` (its topic, `topic/partition@offset`):
    /// a reason about it names that.
    /// Written in place: no allocation per record.
    pub fn set_origin(&mut self, origin: impl std::fmt::Display) {
        if let Some(last) = self.len().checked_sub(1) {
            self.set_origin_since(last, origin);
        }
    }

    /// The records pushed from index `first` on (those of one message) came from
    /// `origin`: written once for all of them. Records that already have an origin keep
    /// theirs.
    pub fn set_origin_since(&mut self, first: usize, origin: impl std::fmt::Display) {
        use std::io::Write;
        let first = first.max(self.origins.last().map_or(0, |(records, _)| records.end));
        if first >= self.len() {
            return;
        }
        let start = self.meta_data.len();
        // Writing to a `Vec` cannot fail.
        let _ = write!(self.meta_data, "{origin}");
        self.origins.push((first..self.len(), (start, self.meta_data.len())));
    }

    /// Where record `i` came from, when the source said.
    pub fn origin(&self, i: usize) -> Option<String> {
        let at = self.origins.partition_point(|(records, _)| records.end <= i);
        let (records, text) = self.origins.get(at)?;
        records.contains(&i).then(|| self.text(&self.meta_data, *text))
    }

    /// The metadata of record `i`, when the source recorded any.
    pub fn meta(&self, i: usize) -> Option<MetaView<'_>> {
        self.meta.get(i).map(|&(start, end)| MetaView {
            batch: self,
            values: self.meta_values.get(start..end).unwrap_or(&[]),
        })
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
        self.data.len() - self.between
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
    fn messages_keep_their_wanted_metadata_in_order() {
        let mut b = RawBatch::new();
        b.push_message(
            b"{}",
            [
                MetaValue::Text(b"clicks"),
                MetaValue::Int(7),
                MetaValue::Absent,
                MetaValue::Bool(true),
            ],
        );
        b.push_message(
            b"{\"a\":1}",
            [
                MetaValue::Text(b"\xff"),
                MetaValue::Absent,
                MetaValue::Int(3),
                MetaValue::Absent,
            ],
        );
        assert_eq!(b.get(1), Some(&b"{\"a\":1}"[..]));
        let (first, second) = (b.meta(0).unwrap(), b.meta(1).unwrap());
        assert_eq!(
            (first.text(0), first.int(1), first.bool(3)),
            ("clicks".to_string(), 7, true)
        );
        assert_eq!((first.opt_text(2), first.opt_int(2)), (None, None), "absent");
        assert_eq!(first.opt_int(0), None, "text is not a number");
        assert_eq!(second.text(0), "\u{fffd}");
        assert_eq!(
            (second.opt_int(1), second.int(1), second.int(2), second.bool(3)),
            (None, 0, 3, false)
        );
        assert_eq!(second.text(9), "", "beyond what was asked for");
        assert!(b.meta(2).is_none());
        b.clear();
        assert!(b.meta(0).is_none());
    }

    #[test]
    fn origins_belong_to_their_record() {
        let mut b = RawBatch::new();
        b.set_origin("nothing pushed yet");
        b.push(b"a");
        b.push(b"b");
        b.set_origin("sensors/7/reading");
        b.push(b"c");
        b.set_origin(format_args!("{}/{}@{}", "clicks", 2, 7));
        assert_eq!((b.origin(0), b.origin(1).as_deref()), (None, Some("sensors/7/reading")));
        assert_eq!(b.origin(2).as_deref(), Some("clicks/2@7"));
        b.clear();
        b.push(b"d");
        assert_eq!(b.origin(0), None);
    }

    #[test]
    fn records_of_one_buffer_are_taken_with_one_copy() {
        let mut b = RawBatch::new();
        b.push(b"before");
        let body = b"  {\"a\":1}\n{\"b\":2}\r\n\n3\n";
        b.push_all(body, &[2..9, 10..17, 20..21]);
        assert_eq!(
            b.iter().collect::<Vec<_>>(),
            vec![&b"before"[..], b"{\"a\":1}", b"{\"b\":2}", b"3"]
        );
        assert_eq!(b.bytes(), 6 + 15, "the separators between them are copied, not counted");
        b.push_all(body, &[]);
        assert_eq!(b.len(), 4);
        // Ranges that are not of the buffer are taken one by one, never read beyond it.
        b.push_all(b"xyz", &[0..1, 2..9]);
        assert_eq!(b.get(4), Some(&b"x"[..]));
        assert_eq!(b.get(5), Some(&b""[..]));
        // Out of order: clamped to the span they claim, never beyond it.
        b.push_all(b"abcdef", &[1..3, 0..6, 2..3]);
        assert_eq!(
            (b.get(6), b.get(7), b.get(8)),
            (Some(&b"bc"[..]), Some(&b"bc"[..]), Some(&b"c"[..]))
        );
    }

    #[test]
    fn records_of_one_message_share_its_metadata_and_origin() {
        let mut b = RawBatch::new();
        b.push_all_messages(
            b"1\n2\n",
            &[0..1, 2..3],
            [MetaValue::Text(b"10.0.0.1:5"), MetaValue::Int(4)],
        );
        b.set_origin_since(0, "10.0.0.1:5");
        b.push_all_messages(
            b"3",
            std::slice::from_ref(&(0..1)),
            [MetaValue::Text(b"10.0.0.2:6"), MetaValue::Absent],
        );
        b.set_origin_since(2, "10.0.0.2:6");
        assert_eq!(b.len(), 3);
        let texts: Vec<_> = (0..3).map(|i| b.meta(i).map(|m| (m.text(0), m.opt_int(1)))).collect();
        assert_eq!(
            texts,
            vec![
                Some(("10.0.0.1:5".to_owned(), Some(4))),
                Some(("10.0.0.1:5".to_owned(), Some(4))),
                Some(("10.0.0.2:6".to_owned(), None))
            ]
        );
        assert_eq!(
            b.meta_data.len(),
            2 * 10 + 2 * 10,
            "each text once as metadata, once as origin"
        );
        let origins: Vec<_> = (0..4).map(|i| b.origin(i)).collect();
        assert_eq!(
            origins,
            vec![
                Some("10.0.0.1:5".to_owned()),
                Some("10.0.0.1:5".to_owned()),
                Some("10.0.0.2:6".to_owned()),
                None
            ]
        );
        // A record that has an origin keeps it; one past the end gets none.
        b.set_origin_since(1, "again");
        b.set_origin_since(9, "nowhere");
        assert_eq!(
            (b.origin(1).as_deref(), b.origin(2).as_deref()),
            (Some("10.0.0.1:5"), Some("10.0.0.2:6"))
        );
        b.push(b"4");
        b.set_origin_since(0, "late");
        assert_eq!(
            (b.origin(2).as_deref(), b.origin(3).as_deref()),
            (Some("10.0.0.2:6"), Some("late"))
        );
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
