//! Timestamp representations.
//!
//! Inside generated code a timestamp is always an `i64` of milliseconds since the Unix
//! epoch: cheap to compare, window and copy. Only at the edges (decoding and encoding)
//! does the representation matter; [`TsRepr`] names it, and the `ts_*` modules plug the
//! non-millisecond ones into serde with `#[serde(with = "...")]`.

use std::fmt;

/// How a timestamp is written in a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TsRepr {
    /// Integer milliseconds since the epoch.
    Millis,
    /// Seconds since the epoch: an integer when whole, else a decimal with up to 3 digits.
    Seconds,
    /// RFC 3339 text, written as `2024-01-01T00:00:00.123Z`.
    Rfc3339,
}

const MS_PER_DAY: i64 = 86_400_000;

/// Converts days since 1970-01-01 to a (year, month, day) civil date.
///
/// Howard Hinnant's `civil_from_days`: exact for every `i64` millisecond value divided
/// into days, so formatting never fails or panics, unlike a bounded calendar library.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A timestamp formatted as RFC 3339 in a stack buffer, so writing one allocates nothing.
pub(crate) struct Rfc3339Buf {
    bytes: [u8; 40],
    len: usize,
}

impl Rfc3339Buf {
    pub(crate) fn new(ms: i64) -> Self {
        let mut b = Rfc3339Buf { bytes: [0; 40], len: 0 };
        let (year, month, day) = civil_from_days(ms.div_euclid(MS_PER_DAY));
        let in_day = ms.rem_euclid(MS_PER_DAY);
        if (0..=9999).contains(&year) {
            b.digits(year as u64, 4);
        } else {
            // Outside RFC 3339's four-digit years: use the ISO 8601 expanded form.
            b.push(if year < 0 { b'-' } else { b'+' });
            b.digits(year.unsigned_abs(), 4);
        }
        b.push(b'-');
        b.digits(u64::from(month), 2);
        b.push(b'-');
        b.digits(u64::from(day), 2);
        b.push(b'T');
        b.digits((in_day / 3_600_000) as u64, 2);
        b.push(b':');
        b.digits((in_day / 60_000 % 60) as u64, 2);
        b.push(b':');
        b.digits((in_day / 1000 % 60) as u64, 2);
        b.push(b'.');
        b.digits((in_day % 1000) as u64, 3);
        b.push(b'Z');
        b
    }

    fn push(&mut self, c: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = c;
            self.len += 1;
        }
    }

    /// Writes `v` in decimal, zero-padded to at least `width` digits.
    fn digits(&mut self, v: u64, width: usize) {
        let mut tmp = [b'0'; 20];
        let mut n = v;
        let mut i = tmp.len();
        while n > 0 {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let start = i.min(tmp.len() - width.min(tmp.len()));
        for &c in &tmp[start..] {
            self.push(c);
        }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever pushed, so this never fails; fall back to "" rather than panic.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Display for Rfc3339Buf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats milliseconds since the epoch as `2024-01-01T00:00:00.123Z`.
pub fn format_rfc3339(ms: i64) -> String {
    Rfc3339Buf::new(ms).as_str().to_owned()
}

/// Parses RFC 3339 text (any offset, any fraction) to milliseconds since the epoch;
/// also the ISO 8601 expanded years [`format_rfc3339`] writes outside 0000–9999, so
/// every timestamp written can be read back.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    match chrono::DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.timestamp_millis()),
        Err(_) => parse_expanded_year(s),
    }
}

/// An RFC 3339 timestamp whose year is written with a sign and at least four digits
/// (`+10000-01-01T00:00:00.000Z`, `-0001-12-31T23:59:59Z`). The rest is read by chrono
/// with a stand-in year of the same place in the 400-year Gregorian cycle (the calendar
/// repeats exactly every 400 years), then moved by whole cycles.
fn parse_expanded_year(s: &str) -> Option<i64> {
    const CYCLE_YEARS: i128 = 400;
    const CYCLE_MS: i128 = 146_097 * MS_PER_DAY as i128;
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = &s[1..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    // Every i64 millisecond value has a year of at most 9 digits.
    if !(4..=12).contains(&digits) {
        return None;
    }
    let year = sign * rest[..digits].parse::<i128>().ok()?;
    let stand_in = 2000 + year.rem_euclid(CYCLE_YEARS);
    let t = chrono::DateTime::parse_from_rfc3339(&format!("{stand_in}{}", &rest[digits..])).ok()?;
    let ms = i128::from(t.timestamp_millis()) + (year - stand_in) / CYCLE_YEARS * CYCLE_MS;
    i64::try_from(ms).ok()
}

/// Converts seconds (possibly fractional) to milliseconds, rounding to the nearest
/// millisecond; `None` when not finite or outside the `i64` millisecond range.
pub fn seconds_f64_to_ms(secs: f64) -> Option<i64> {
    let ms = (secs * 1000.0).round();
    // 2^63 as f64; the range check keeps `as` from saturating silently.
    if ms.is_finite() && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&ms) {
        Some(ms as i64)
    } else {
        None
    }
}

/// Parses seconds text (`"1700000000"` or `"1700000000.5"`) to milliseconds.
pub fn parse_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000);
    }
    s.parse::<f64>().ok().and_then(seconds_f64_to_ms)
}

/// Appends `ms` as seconds: an integer when whole, else a decimal with trailing zeros
/// trimmed (`1500` -> `1.5`), computed on integers so no float rounding shows.
pub fn write_seconds(ms: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    let abs = ms.unsigned_abs();
    let (secs, frac) = (abs / 1000, abs % 1000);
    if ms < 0 {
        out.push(b'-');
    }
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let mut n = 3;
        while n > 1 && digits[n - 1] == b'0' {
            n -= 1;
        }
        out.push(b'.');
        out.extend_from_slice(&digits[..n]);
    }
}

/// Parses a timestamp in the given representation to milliseconds.
pub fn parse_repr(s: &str, repr: TsRepr) -> Option<i64> {
    match repr {
        TsRepr::Millis => s.trim().parse::<i64>().ok(),
        TsRepr::Seconds => parse_seconds(s),
        TsRepr::Rfc3339 => parse_rfc3339(s),
    }
}

/// Appends a timestamp in the given representation (no quotes).
pub fn write_repr(ms: i64, repr: TsRepr, out: &mut Vec<u8>) {
    use std::io::Write;
    match repr {
        TsRepr::Millis => {
            let _ = write!(out, "{ms}");
        }
        TsRepr::Seconds => write_seconds(ms, out),
        TsRepr::Rfc3339 => out.extend_from_slice(Rfc3339Buf::new(ms).as_bytes()),
    }
}

/// Shared serde visitor for seconds: accepts JSON integers and floats.
struct SecondsVisitor;

impl serde::de::Visitor<'_> for SecondsVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Unix timestamp in seconds (integer or float)")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        v.checked_mul(1000)
            .ok_or_else(|| E::custom(format!("timestamp {v} s is out of range")))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .ok()
            .and_then(|v| v.checked_mul(1000))
            .ok_or_else(|| E::custom(format!("timestamp {v} s is out of range")))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        seconds_f64_to_ms(v).ok_or_else(|| E::custom(format!("timestamp {v} s is out of range")))
    }
}

/// Shared serde visitor for RFC 3339 strings.
struct Rfc3339Visitor;

impl serde::de::Visitor<'_> for Rfc3339Visitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 timestamp string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        parse_rfc3339(v).ok_or_else(|| E::custom(format!("invalid RFC 3339 timestamp `{v}`")))
    }
}

/// `#[serde(with = "rill_runtime::codegen::ts_seconds")]` on an `i64` millisecond field
/// whose wire form is Unix seconds. Accepts integer or float seconds on input; writes an
/// integer when the value is whole seconds, else a float. In a binary format (a
/// checkpoint, where a first value or a collected record is saved), plain milliseconds:
/// such a format cannot tell an integer from a float on reading.
pub mod ts_seconds {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            s.serialize_i64(*ms)
        } else if ms % 1000 == 0 {
            s.serialize_i64(ms / 1000)
        } else {
            s.serialize_f64(*ms as f64 / 1000.0)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d);
        }
        d.deserialize_any(super::SecondsVisitor)
    }
}

/// `#[serde(with = "rill_runtime::codegen::ts_rfc3339")]` on an `i64` millisecond field
/// whose wire form is an RFC 3339 string (written as `2024-01-01T00:00:00.123Z`). In a
/// binary format (a checkpoint), plain milliseconds: every value round-trips.
pub mod ts_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        if !s.is_human_readable() {
            return s.serialize_i64(*ms);
        }
        s.collect_str(&super::Rfc3339Buf::new(*ms))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        if !d.is_human_readable() {
            return i64::deserialize(d);
        }
        d.deserialize_str(super::Rfc3339Visitor)
    }
}

/// Adapts a required-timestamp module to `Option<i64>`.
macro_rules! optional_ts_module {
    ($name:ident, $inner:ident, $doc:literal) => {
        #[doc = $doc]
        ///
        /// The generated field also needs `#[serde(default)]`: serde's `with` disables
        /// the implicit "missing means None" of plain `Option` fields.
        pub mod $name {
            use serde::{Deserialize, Deserializer, Serialize, Serializer};

            struct Wrap(i64);

            impl Serialize for Wrap {
                fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                    super::$inner::serialize(&self.0, s)
                }
            }

            impl<'de> Deserialize<'de> for Wrap {
                fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                    super::$inner::deserialize(d).map(Wrap)
                }
            }

            pub fn serialize<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
                match ms {
                    Some(ms) => s.serialize_some(&Wrap(*ms)),
                    None => s.serialize_none(),
                }
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
                Option::<Wrap>::deserialize(d).map(|o| o.map(|w| w.0))
            }
        }
    };
}

optional_ts_module!(
    opt_ts_seconds,
    ts_seconds,
    "`#[serde(default, with = \"rill_runtime::codegen::opt_ts_seconds\")]` on an `Option<i64>` field in Unix seconds (null = None)."
);
optional_ts_module!(
    opt_ts_rfc3339,
    ts_rfc3339,
    "`#[serde(default, with = \"rill_runtime::codegen::opt_ts_rfc3339\")]` on an `Option<i64>` field in RFC 3339 (null = None)."
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[test]
    fn rfc3339_formats_with_millis_and_z() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(1_704_067_200_123), "2024-01-01T00:00:00.123Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
        // 2024 is a leap year.
        assert_eq!(format_rfc3339(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
    }

    #[test]
    fn rfc3339_extremes_never_panic() {
        let max = format_rfc3339(i64::MAX);
        let min = format_rfc3339(i64::MIN);
        assert!(max.starts_with('+'), "{max}");
        assert!(min.starts_with('-'), "{min}");
    }

    #[test]
    fn rfc3339_agrees_with_chrono_over_a_range() {
        let mut ms = -5_000_000_000_000_i64;
        while ms < 5_000_000_000_000 {
            let ours = format_rfc3339(ms);
            let theirs =
                chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string());
            assert_eq!(Some(ours.clone()), theirs);
            assert_eq!(parse_rfc3339(&ours), Some(ms));
            ms += 86_400_000 * 17 + 3_723_456;
        }
    }

    #[test]
    fn every_timestamp_written_reads_back_including_expanded_years() {
        let year_10000 = 253_402_300_800_000;
        assert_eq!(format_rfc3339(year_10000), "+10000-01-01T00:00:00.000Z");
        assert_eq!(format_rfc3339(-62_167_219_200_001), "-0001-12-31T23:59:59.999Z");
        let samples = [
            i64::MIN,
            i64::MIN + 1,
            -62_167_219_200_001,
            -62_167_219_200_000, // year 0
            0,
            year_10000 - 1,
            year_10000,
            year_10000 + 86_400_000 * 59 + 1, // 10000 is a leap year: 29 February
            i64::MAX - 1,
            i64::MAX,
        ];
        for ms in samples {
            let text = format_rfc3339(ms);
            assert_eq!(parse_rfc3339(&text), Some(ms), "{text}");
        }
        assert_eq!(parse_rfc3339("+10000-01-01T01:00:00+01:00"), Some(year_10000));
        assert_eq!(parse_rfc3339("+10000-02-30T00:00:00Z"), None);
        assert_eq!(
            parse_rfc3339("+999999999999-01-01T00:00:00Z"),
            None,
            "beyond i64 milliseconds"
        );
        assert_eq!(parse_rfc3339("+100-01-01T00:00:00Z"), None, "at least four digits");
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("2024-01-01"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn seconds_are_written_as_int_or_trimmed_decimal() {
        let w = |ms| {
            let mut v = Vec::new();
            write_seconds(ms, &mut v);
            String::from_utf8(v).unwrap_or_default()
        };
        assert_eq!(w(1_700_000_000_000), "1700000000");
        assert_eq!(w(1_500), "1.5");
        assert_eq!(w(1_005), "1.005");
        assert_eq!(w(-1_500), "-1.5");
        assert_eq!(w(-500), "-0.5");
        assert_eq!(parse_seconds("-0.5"), Some(-500));
        assert_eq!(parse_seconds("1e400"), None);
        assert_eq!(parse_seconds("9223372036854775807"), None);
    }

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Rec {
        #[serde(with = "ts_seconds")]
        s: i64,
        #[serde(with = "ts_rfc3339")]
        r: i64,
        #[serde(default, with = "opt_ts_seconds")]
        os: Option<i64>,
        #[serde(default, with = "opt_ts_rfc3339")]
        or: Option<i64>,
    }

    #[test]
    fn serde_modules_round_trip() {
        let rec: Rec = serde_json::from_str(r#"{"s": 1.25, "r": "2024-01-01T00:00:00.5Z", "or": null}"#)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            rec,
            Rec {
                s: 1250,
                r: 1_704_067_200_500,
                os: None,
                or: None
            }
        );
        let json = serde_json::to_string(&Rec {
            s: 2000,
            r: 0,
            os: Some(1500),
            or: Some(1),
        })
        .unwrap_or_default();
        assert_eq!(
            json,
            r#"{"s":2,"r":"1970-01-01T00:00:00.000Z","os":1.5,"or":"1970-01-01T00:00:00.001Z"}"#
        );
        let back: Result<Rec, _> = serde_json::from_str(&json);
        assert_eq!(
            back.ok(),
            Some(Rec {
                s: 2000,
                r: 0,
                os: Some(1500),
                or: Some(1)
            })
        );
    }

    #[test]
    fn timestamps_in_any_representation_round_trip_through_a_checkpoint() {
        // A record with such fields can be held in state (`first(location)`), and
        // checkpoints use postcard, which cannot tell an integer from a float on reading.
        for ms in [0, 1_500, -1, i64::MIN, i64::MAX, 253_402_300_800_000] {
            let rec = Rec {
                s: ms,
                r: ms,
                os: Some(ms),
                or: None,
            };
            let bytes = postcard::to_allocvec(&rec).unwrap_or_default();
            assert_eq!(postcard::from_bytes::<Rec>(&bytes).ok(), Some(rec), "{ms}");
        }
    }

    #[test]
    fn serde_rejects_wrong_types() {
        assert!(serde_json::from_str::<Rec>(r#"{"s": "1", "r": "2024-01-01T00:00:00Z"}"#).is_err());
        assert!(serde_json::from_str::<Rec>(r#"{"s": 1, "r": 5}"#).is_err());
        assert!(serde_json::from_str::<Rec>(r#"{"s": 1e300, "r": "2024-01-01T00:00:00Z"}"#).is_err());
    }
}
