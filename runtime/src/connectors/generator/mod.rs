//! `GeneratorSource`: synthetic JSON records, for demos, tests and benchmarks.
//!
//! Every record is a pure function of `(seed, sequence number)`: the same seed gives
//! the same bytes whatever the batch size or timing, so tests and benchmarks are
//! reproducible without the `rand` crate.

use crate::batch::RawBatch;
use crate::errors::{RunError, StartError};
use crate::sources::{Poll, RawSource};
use crate::time::{self, TsRepr};
use std::io::Write;
use std::time::{Duration, Instant};

/// One field of a generated record.
#[derive(Debug, Clone, Copy)]
pub struct GenField {
    pub name: &'static str,
    pub kind: GenKind,
}

/// How a field's value is generated.
#[derive(Debug, Clone, Copy)]
pub enum GenKind {
    /// One of the strings, uniformly (`null` if the list is empty).
    Values(&'static [&'static str]),
    /// `prefix` followed by a number below `cardinality`.
    Text {
        prefix: &'static str,
        cardinality: u64,
    },
    /// Uniform in `min..=max` (bounds swapped if inverted).
    Int {
        min: i64,
        max: i64,
    },
    UInt {
        min: u64,
        max: u64,
    },
    /// Uniform in `min..max`, rounded to 2 decimals.
    Float {
        min: f64,
        max: f64,
    },
    Bool {
        p_true: f64,
    },
    /// `start_ms + seq * step_ms`, plus a uniform jitter in `-jitter_ms..=jitter_ms`.
    Time {
        start_ms: i64,
        step_ms: i64,
        jitter_ms: i64,
        repr: TsRepr,
    },
    /// The sequence number 0, 1, 2, ..
    Sequence,
    /// `null` with probability `p_null`, else `inner`.
    Optional {
        p_null: f64,
        inner: &'static GenKind,
    },
    Object(&'static [GenField]),
}

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a strong 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// splitmix64, started at a point derived from both seed and sequence number so that
/// neighbouring records do not share draws.
struct Rng(u64);

impl Rng {
    fn for_record(seed: u64, seq: u64) -> Rng {
        Rng(mix(seed ^ mix(seq.wrapping_add(GOLDEN))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `0..span` (`span` > 0); the modulo bias is negligible for test data.
    fn below(&mut self, span: u128) -> u128 {
        u128::from(self.next()) % span.max(1)
    }
}

/// Generates records: `count` of them (`None` = unbounded), at most `rate` per second
/// (`None`, or a rate that is not a positive number, = as fast as possible).
pub struct GeneratorSource {
    fields: &'static [GenField],
    count: Option<u64>,
    rate: Option<f64>,
    seed: u64,
    seq: u64,
    started: Option<Instant>,
}

impl GeneratorSource {
    pub fn new(fields: &'static [GenField], count: Option<u64>, rate: Option<f64>, seed: u64) -> Self {
        GeneratorSource {
            fields,
            count,
            rate: rate.filter(|r| *r > 0.0 && r.is_finite()),
            seed,
            seq: 0,
            started: None,
        }
    }

    /// How long until the rate allows the next record.
    fn until_next(&self) -> Option<Duration> {
        let (rate, started) = (self.rate?, self.started?);
        let next = Duration::try_from_secs_f64(self.seq as f64 / rate).ok()?;
        Some(next.saturating_sub(started.elapsed()))
    }

    /// How many records the rate allows now (the first one immediately).
    fn allowance(&mut self) -> u64 {
        let Some(rate) = self.rate else {
            return u64::MAX;
        };
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        due.saturating_add(1).saturating_sub(self.seq)
    }
}

/// Writes `s` as a JSON string.
fn json_str(s: &str, out: &mut Vec<u8>) {
    // Serializing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_object(fields: &[GenField], seq: u64, rng: &mut Rng, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_str(field.name, out);
        out.push(b':');
        write_value(&field.kind, seq, rng, out);
    }
    out.push(b'}');
}

fn write_value(kind: &GenKind, seq: u64, rng: &mut Rng, out: &mut Vec<u8>) {
    // Writes into a Vec cannot fail; results are ignored throughout.
    match *kind {
        GenKind::Values(values) => match values.len() {
            0 => out.extend_from_slice(b"null"),
            n => {
                let i = rng.below(n as u128) as usize;
                json_str(values.get(i).copied().unwrap_or_default(), out);
            }
        },
        GenKind::Text { prefix, cardinality } => {
            let n = rng.below(u128::from(cardinality));
            json_str(prefix, out);
            out.pop(); // reopen the string to append the number
            let _ = write!(out, "{n}\"");
        }
        GenKind::Int { min, max } => {
            let (lo, hi) = (min.min(max), min.max(max));
            let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
            let v = i128::from(lo) + rng.below(span) as i128;
            let _ = write!(out, "{v}");
        }
        GenKind::UInt { min, max } => {
            let (lo, hi) = (min.min(max), min.max(max));
            let v = u128::from(lo) + rng.below(u128::from(hi - lo) + 1);
            let _ = write!(out, "{v}");
        }
        GenKind::Float { min, max } => {
            let v = min + rng.unit() * (max - min);
            let rounded = (v * 100.0).round() / 100.0;
            // serde_json writes non-finite floats as null, never as invalid JSON.
            let _ = serde_json::to_writer(&mut *out, &rounded);
        }
        GenKind::Bool { p_true } => {
            out.extend_from_slice(if rng.unit() < p_true { b"true" } else { b"false" });
        }
        GenKind::Time {
            start_ms,
            step_ms,
            jitter_ms,
            repr,
        } => {
            let offset = i64::try_from(seq).unwrap_or(i64::MAX).saturating_mul(step_ms);
            let jitter = if jitter_ms > 0 {
                let j = i128::from(jitter_ms);
                (rng.below((2 * j + 1) as u128) as i128 - j) as i64
            } else {
                0
            };
            let ms = start_ms.saturating_add(offset).saturating_add(jitter);
            if repr == TsRepr::Rfc3339 {
                out.push(b'"');
                time::write_repr(ms, repr, out);
                out.push(b'"');
            } else {
                time::write_repr(ms, repr, out);
            }
        }
        GenKind::Sequence => {
            let _ = write!(out, "{seq}");
        }
        GenKind::Optional { p_null, inner } => {
            if rng.unit() < p_null {
                out.extend_from_slice(b"null");
            } else {
                write_value(inner, seq, rng, out);
            }
        }
        GenKind::Object(fields) => write_object(fields, seq, rng, out),
    }
}

impl RawSource for GeneratorSource {
    /// A rate-limited generator is idle until its next record is due (plus a
    /// millisecond, so rounding never wakes it a moment too early, over and over).
    fn idle_for(&self) -> Option<Duration> {
        let next = self.until_next().unwrap_or(crate::wake::DEFAULT_LOOK_AGAIN);
        Some(next + Duration::from_millis(1))
    }

    /// The number of the next record: each record depends only on the seed and its
    /// number, so a resumed generator continues the same sequence.
    fn position(&self) -> Vec<u8> {
        self.seq.to_le_bytes().to_vec()
    }

    fn resume(&mut self, saved: &[u8]) -> Result<(), StartError> {
        let seq = saved
            .try_into()
            .map(u64::from_le_bytes)
            .map_err(|_| StartError::new("the checkpoint's generator position is not 8 bytes"))?;
        self.seq = seq;
        // The rate goes on from here, not from record 0.
        if let Some(rate) = self.rate {
            let behind = Duration::try_from_secs_f64(seq as f64 / rate).unwrap_or_default();
            self.started = Instant::now().checked_sub(behind);
        }
        Ok(())
    }

    fn poll(&mut self, batch: &mut RawBatch, max: usize) -> Result<Poll, RunError> {
        let remaining = match self.count {
            Some(count) => count.saturating_sub(self.seq),
            None => u64::MAX,
        };
        if remaining == 0 {
            return Ok(Poll::Finished);
        }
        let n = remaining.min(max as u64).min(self.allowance());
        if n == 0 {
            return Ok(Poll::Idle);
        }
        for _ in 0..n {
            let seq = self.seq;
            let mut rng = Rng::for_record(self.seed, seq);
            batch.push_with(|out| write_object(self.fields, seq, &mut rng, out));
            self.seq = self.seq.saturating_add(1);
        }
        Ok(Poll::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    static INNER: GenKind = GenKind::Int { min: -3, max: 3 };
    static NESTED: &[GenField] = &[GenField {
        name: "ok",
        kind: GenKind::Bool { p_true: 0.5 },
    }];
    static FIELDS: &[GenField] = &[
        GenField {
            name: "id",
            kind: GenKind::Sequence,
        },
        GenField {
            name: "status",
            kind: GenKind::Values(&["ok", "err\"or"]),
        },
        GenField {
            name: "device",
            kind: GenKind::Text {
                prefix: "dev-",
                cardinality: 5,
            },
        },
        GenField {
            name: "temp",
            kind: GenKind::Float { min: -10.0, max: 40.0 },
        },
        GenField {
            name: "n",
            kind: GenKind::UInt { min: 0, max: u64::MAX },
        },
        GenField {
            name: "i",
            kind: GenKind::Int {
                min: i64::MIN,
                max: i64::MAX,
            },
        },
        GenField {
            name: "ts",
            kind: GenKind::Time {
                start_ms: 1_704_067_200_000,
                step_ms: 1000,
                jitter_ms: 0,
                repr: TsRepr::Rfc3339,
            },
        },
        GenField {
            name: "secs",
            kind: GenKind::Time {
                start_ms: 0,
                step_ms: 1500,
                jitter_ms: 0,
                repr: TsRepr::Seconds,
            },
        },
        GenField {
            name: "maybe",
            kind: GenKind::Optional {
                p_null: 0.5,
                inner: &INNER,
            },
        },
        GenField {
            name: "obj",
            kind: GenKind::Object(NESTED),
        },
        GenField {
            name: "none",
            kind: GenKind::Values(&[]),
        },
    ];

    fn generate(seed: u64, count: u64, max: usize) -> (Vec<u8>, usize) {
        let mut src = GeneratorSource::new(FIELDS, Some(count), None, seed);
        let mut all = vec![];
        let mut records = 0;
        loop {
            let mut b = RawBatch::new();
            match src.poll(&mut b, max) {
                Ok(Poll::Ready) => {
                    for r in b.iter() {
                        all.extend_from_slice(r);
                        all.push(b'\n');
                        records += 1;
                    }
                }
                Ok(Poll::Finished) => return (all, records),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn same_seed_same_bytes_whatever_the_batch_size() {
        let (a, na) = generate(42, 500, 7);
        let (b, nb) = generate(42, 500, 1000);
        let (c, _) = generate(43, 500, 7);
        assert_eq!((na, nb), (500, 500), "count respected");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_resumed_generator_continues_the_same_sequence() {
        let (all, _) = generate(5, 50, 1000);
        let mut first = GeneratorSource::new(FIELDS, Some(50), None, 5);
        let mut b = RawBatch::new();
        assert_eq!(first.poll(&mut b, 20), Ok(Poll::Ready));
        let mut resumed = GeneratorSource::new(FIELDS, Some(50), None, 5);
        assert_eq!(resumed.resume(&first.position()), Ok(()));
        let mut rest = RawBatch::new();
        assert_eq!(resumed.poll(&mut rest, 1000), Ok(Poll::Ready));
        let joined: Vec<u8> = b.iter().chain(rest.iter()).flat_map(|r| [r, b"\n"].concat()).collect();
        assert_eq!(joined, all);
        assert!(resumed.resume(b"short").is_err());
    }

    #[test]
    fn records_are_valid_json_within_ranges() {
        let (bytes, _) = generate(7, 300, 64);
        let mut statuses = std::collections::BTreeSet::new();
        let mut nulls = 0;
        for (seq, line) in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let v: Value =
                serde_json::from_slice(line).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(line)));
            assert_eq!(v["id"], seq as u64);
            statuses.insert(v["status"].as_str().unwrap_or_default().to_owned());
            let device = v["device"].as_str().unwrap_or_default();
            assert!(
                device.starts_with("dev-") && device[4..].parse::<u64>().is_ok_and(|n| n < 5),
                "{device}"
            );
            let temp = v["temp"].as_f64().unwrap_or(f64::NAN);
            assert!((-10.0..=40.0).contains(&temp), "{temp}");
            assert_eq!((temp * 100.0).round() / 100.0, temp);
            assert!(v["n"].is_u64() && v["i"].is_i64());
            assert_eq!(
                crate::time::parse_rfc3339(v["ts"].as_str().unwrap_or_default()),
                Some(1_704_067_200_000 + seq as i64 * 1000)
            );
            assert_eq!(v["secs"].as_f64(), Some(seq as f64 * 1.5));
            match &v["maybe"] {
                Value::Null => nulls += 1,
                m => assert!(m.as_i64().is_some_and(|m| (-3..=3).contains(&m))),
            }
            assert!(v["obj"]["ok"].is_boolean());
            assert!(v["none"].is_null());
        }
        assert_eq!(statuses.len(), 2, "both values picked");
        assert!((100..200).contains(&nulls), "p_null 0.5 gave {nulls}/300");
    }

    #[test]
    fn rate_limits_and_idles() {
        let mut src = GeneratorSource::new(FIELDS, None, Some(1.0), 1);
        let mut b = RawBatch::new();
        assert_eq!(src.poll(&mut b, 100), Ok(Poll::Ready));
        assert_eq!(b.len(), 1, "first record immediately");
        assert_eq!(src.poll(&mut b, 100), Ok(Poll::Idle));
        let mut unlimited = GeneratorSource::new(FIELDS, None, Some(f64::NAN), 1);
        let mut b = RawBatch::new();
        assert_eq!(unlimited.poll(&mut b, 100), Ok(Poll::Ready));
        assert_eq!(b.len(), 100);
    }

    #[test]
    fn jitter_stays_within_bounds() {
        static J: &[GenField] = &[GenField {
            name: "t",
            kind: GenKind::Time {
                start_ms: 0,
                step_ms: 0,
                jitter_ms: 5,
                repr: TsRepr::Millis,
            },
        }];
        let mut src = GeneratorSource::new(J, Some(200), None, 9);
        let mut b = RawBatch::new();
        assert_eq!(src.poll(&mut b, 1000), Ok(Poll::Ready));
        let values: Vec<i64> = b
            .iter()
            .filter_map(|r| serde_json::from_slice::<Value>(r).ok()?["t"].as_i64())
            .collect();
        assert_eq!(values.len(), 200);
        assert!(values.iter().all(|v| (-5..=5).contains(v)));
        assert!(values.contains(&-5) && values.contains(&5));
    }
}
