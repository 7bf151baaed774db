//! The sink's pure parts: cutting records into request bodies, and when to try again.

use std::time::Duration;

/// How a batch's records are joined into one body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// A JSON array: `[{..},{..}]`.
    Array,
    /// JSON lines: `{..}\n{..}\n`.
    Lines,
}

impl Encoding {
    pub fn parse(name: &str) -> Option<Encoding> {
        match name {
            "array" => Some(Encoding::Array),
            "lines" => Some(Encoding::Lines),
            _ => None,
        }
    }

    /// The body's size once a record of `len` bytes joins `count` records of `bytes`.
    fn size_with(self, count: usize, bytes: usize, len: usize) -> usize {
        match self {
            // Brackets, and a comma between records.
            Encoding::Array => bytes + len + count + 2,
            Encoding::Lines => bytes + len + count + 1,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Array => "application/json",
            Encoding::Lines => "application/x-ndjson",
        }
    }
}

/// When a batch is full.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_records: usize,
    pub max_bytes: usize,
}

/// Records waiting to go out together, each with its tag.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<(u64, Vec<u8>)>,
    /// The payloads' bytes (without separators).
    bytes: usize,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when a record of `len` bytes does not fit any more: the batch goes out
    /// first. An empty batch takes any record (a record larger than `max_bytes` goes
    /// out alone rather than never).
    pub fn would_overflow(&self, len: usize, encoding: Encoding, limits: Limits) -> bool {
        !self.items.is_empty()
            && (self.items.len() >= limits.max_records
                || encoding.size_with(self.items.len(), self.bytes, len) > limits.max_bytes)
    }

    /// True when no further record may join.
    pub fn is_full(&self, limits: Limits) -> bool {
        self.items.len() >= limits.max_records || self.bytes >= limits.max_bytes
    }

    pub fn push(&mut self, tag: u64, payload: Vec<u8>) {
        self.bytes += payload.len();
        self.items.push((tag, payload));
    }

    pub fn take(&mut self) -> Vec<(u64, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.items)
    }

    /// The request body: the records joined per `encoding`.
    pub fn body(&self, encoding: Encoding) -> Vec<u8> {
        let mut body = Vec::with_capacity(encoding.size_with(self.items.len(), self.bytes, 0));
        match encoding {
            Encoding::Array => {
                body.push(b'[');
                for (i, (_, payload)) in self.items.iter().enumerate() {
                    if i > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(payload);
                }
                body.push(b']');
            }
            Encoding::Lines => {
                for (_, payload) in &self.items {
                    body.extend_from_slice(payload);
                    body.push(b'\n');
                }
            }
        }
        body
    }
}

/// How long a failed request is retried: at most `attempts` tries in all, waiting
/// `backoff` after the first failure and twice as long after each next one (or what
/// the server's `Retry-After` asks), never past `max_elapsed` since the first try.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub backoff: Duration,
    pub max_elapsed: Duration,
}

impl Retry {
    /// The wait before the next try, after `tries` failed tries and `elapsed` since the
    /// first; `None`: give up.
    pub fn next_wait(&self, tries: u32, elapsed: Duration, retry_after: Option<Duration>) -> Option<Duration> {
        if tries >= self.attempts {
            return None;
        }
        let doubled = self
            .backoff
            .saturating_mul(1u32.checked_shl(tries.saturating_sub(1)).unwrap_or(u32::MAX));
        let wait = retry_after.unwrap_or(doubled);
        (elapsed.saturating_add(wait) <= self.max_elapsed).then_some(wait)
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not followed: the backoff applies).
pub fn retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_until_tries_or_time_run_out() {
        let retry = Retry {
            attempts: 5,
            backoff: Duration::from_millis(100),
            max_elapsed: Duration::from_secs(1),
        };
        let waits: Vec<_> = (1..=5)
            .map(|tries| retry.next_wait(tries, Duration::ZERO, None).map(|d| d.as_millis()))
            .collect();
        assert_eq!(waits, [Some(100), Some(200), Some(400), Some(800), None]);
        // Past the time allowed, no further try even when tries are left.
        assert_eq!(retry.next_wait(3, Duration::from_millis(700), None), None);
        // The server's Retry-After wins over the backoff, within the time allowed.
        assert_eq!(
            retry.next_wait(1, Duration::ZERO, Some(Duration::from_millis(300))),
            Some(Duration::from_millis(300))
        );
        assert_eq!(retry.next_wait(1, Duration::ZERO, retry_after("2")), None);
        assert_eq!(retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        let huge = Retry {
            attempts: 100,
            backoff: Duration::from_secs(1),
            max_elapsed: Duration::MAX,
        };
        assert!(huge.next_wait(64, Duration::ZERO, None).is_some(), "no overflow");
    }

    #[test]
    fn batches_are_cut_by_count_and_bytes_and_joined_per_encoding() {
        let limits = Limits {
            max_records: 3,
            max_bytes: 12,
        };
        let mut batch = Batch::default();
        assert!(
            !batch.would_overflow(100, Encoding::Array, limits),
            "an empty batch takes anything"
        );
        batch.push(1, b"{\"a\":1}".to_vec());
        // `[` + 7 + `,` + 4 + `]` = 14 > 12.
        assert!(batch.would_overflow(4, Encoding::Array, limits));
        // 7 + `\n` + 3 + `\n` = 12.
        assert!(!batch.would_overflow(3, Encoding::Lines, limits));
        batch.push(2, b"{ }".to_vec());
        assert_eq!(batch.body(Encoding::Array), b"[{\"a\":1},{ }]");
        assert_eq!(batch.body(Encoding::Lines), b"{\"a\":1}\n{ }\n");
        let small = Limits {
            max_records: 2,
            max_bytes: 1000,
        };
        assert!(batch.is_full(small));
        assert!(batch.would_overflow(1, Encoding::Lines, small), "two records at most");
        assert_eq!(batch.take().iter().map(|(t, _)| *t).collect::<Vec<_>>(), [1, 2]);
        assert!(batch.is_empty());
        assert_eq!(batch.body(Encoding::Array), b"[]");
    }
}
