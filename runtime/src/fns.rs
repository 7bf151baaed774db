//! The functions generated expressions call, as `fns::name(..)`.
//!
//! Every function that can fail on data returns `Result<_, EvalError>` instead of
//! panicking, so a bad record becomes a dead letter and never a crash. Arithmetic goes
//! through small traits so the compiler can emit the same `fns::add(a, b)?` for `i64`,
//! `u64` and `f64` and let type inference pick the implementation.

use crate::errors::EvalError;
use crate::time;
use std::fmt::Write as _;

/// Checked arithmetic for the numeric types of the language.
pub trait Arith: Sized + Copy {
    fn add(self, rhs: Self) -> Result<Self, EvalError>;
    fn sub(self, rhs: Self) -> Result<Self, EvalError>;
    fn mul(self, rhs: Self) -> Result<Self, EvalError>;
    fn div(self, rhs: Self) -> Result<Self, EvalError>;
    fn rem(self, rhs: Self) -> Result<Self, EvalError>;
}

/// Negation for the signed numeric types.
pub trait Negate: Sized + Copy {
    fn neg(self) -> Result<Self, EvalError>;
}

macro_rules! int_arith {
    ($t:ty) => {
        impl Arith for $t {
            fn add(self, rhs: Self) -> Result<Self, EvalError> {
                self.checked_add(rhs).ok_or(EvalError::Overflow { op: "+" })
            }
            fn sub(self, rhs: Self) -> Result<Self, EvalError> {
                self.checked_sub(rhs).ok_or(EvalError::Overflow { op: "-" })
            }
            fn mul(self, rhs: Self) -> Result<Self, EvalError> {
                self.checked_mul(rhs).ok_or(EvalError::Overflow { op: "*" })
            }
            fn div(self, rhs: Self) -> Result<Self, EvalError> {
                if rhs == 0 {
                    return Err(EvalError::DivisionByZero);
                }
                self.checked_div(rhs).ok_or(EvalError::Overflow { op: "/" })
            }
            fn rem(self, rhs: Self) -> Result<Self, EvalError> {
                if rhs == 0 {
                    return Err(EvalError::DivisionByZero);
                }
                self.checked_rem(rhs).ok_or(EvalError::Overflow { op: "%" })
            }
        }
    };
}

int_arith!(i64);
int_arith!(u64);

/// Floats follow IEEE 754 (overflow gives infinity) except that dividing by zero is an
/// error, as for integers, so `x / 0.0` never silently produces `inf` or `NaN` downstream.
impl Arith for f64 {
    fn add(self, rhs: Self) -> Result<Self, EvalError> {
        Ok(self + rhs)
    }
    fn sub(self, rhs: Self) -> Result<Self, EvalError> {
        Ok(self - rhs)
    }
    fn mul(self, rhs: Self) -> Result<Self, EvalError> {
        Ok(self * rhs)
    }
    fn div(self, rhs: Self) -> Result<Self, EvalError> {
        if rhs == 0.0 {
            return Err(EvalError::DivisionByZero);
        }
        Ok(self / rhs)
    }
    fn rem(self, rhs: Self) -> Result<Self, EvalError> {
        if rhs == 0.0 {
            return Err(EvalError::DivisionByZero);
        }
        Ok(self % rhs)
    }
}

impl Negate for i64 {
    fn neg(self) -> Result<Self, EvalError> {
        self.checked_neg().ok_or(EvalError::Overflow { op: "-" })
    }
}

impl Negate for f64 {
    fn neg(self) -> Result<Self, EvalError> {
        Ok(-self)
    }
}

#[inline]
pub fn add<T: Arith>(a: T, b: T) -> Result<T, EvalError> {
    a.add(b)
}
#[inline]
pub fn sub<T: Arith>(a: T, b: T) -> Result<T, EvalError> {
    a.sub(b)
}
#[inline]
pub fn mul<T: Arith>(a: T, b: T) -> Result<T, EvalError> {
    a.mul(b)
}
#[inline]
pub fn div<T: Arith>(a: T, b: T) -> Result<T, EvalError> {
    a.div(b)
}
#[inline]
pub fn rem<T: Arith>(a: T, b: T) -> Result<T, EvalError> {
    a.rem(b)
}
/// Unary minus; returns a `Result` for every type so codegen can always emit `?`.
#[inline]
pub fn neg<T: Negate>(a: T) -> Result<T, EvalError> {
    a.neg()
}

// ---- strings ----

pub fn lower(s: &str) -> String {
    s.to_lowercase()
}
pub fn upper(s: &str) -> String {
    s.to_uppercase()
}
pub fn trim(s: &str) -> String {
    s.trim().to_owned()
}
pub fn contains(s: &str, needle: &str) -> bool {
    s.contains(needle)
}
pub fn starts_with(s: &str, prefix: &str) -> bool {
    s.starts_with(prefix)
}
pub fn ends_with(s: &str, suffix: &str) -> bool {
    s.ends_with(suffix)
}
/// Length in characters (not bytes), as users of a text language expect.
pub fn len(s: &str) -> i64 {
    i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
}
pub fn replace(s: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        // `str::replace` with an empty pattern inserts `to` between every character,
        // which is never what a pipeline author means.
        return s.to_owned();
    }
    s.replace(from, to)
}
/// Splits on `sep`; an empty `sep` splits into characters (std would add empty ends).
pub fn split(s: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return s.chars().map(String::from).collect();
    }
    s.split(sep).map(str::to_owned).collect()
}
pub fn concat(a: &str, b: &str) -> String {
    let mut out = String::with_capacity(a.len() + b.len());
    out.push_str(a);
    out.push_str(b);
    out
}
/// List indexing; a negative index counts from the end (`-1` is the last element).
pub fn index<T: Clone>(list: &[T], i: i64) -> Result<T, EvalError> {
    let len = list.len();
    let pos = if i < 0 {
        usize::try_from(i.unsigned_abs())
            .ok()
            .and_then(|back| len.checked_sub(back))
    } else {
        usize::try_from(i).ok()
    };
    pos.and_then(|p| list.get(p))
        .cloned()
        .ok_or(EvalError::IndexOutOfRange { index: i, len })
}
pub fn list_len<T>(list: &[T]) -> i64 {
    i64::try_from(list.len()).unwrap_or(i64::MAX)
}

// ---- numbers ----

pub fn abs_i64(x: i64) -> Result<i64, EvalError> {
    x.checked_abs().ok_or(EvalError::Overflow { op: "abs" })
}

fn bad_bounds<T: std::fmt::Display>(function: &'static str, lo: T, hi: T) -> EvalError {
    EvalError::InvalidArgument {
        function,
        reason: format!("lower bound {lo} is greater than upper bound {hi}"),
    }
}

/// `std`'s `clamp` panics when `lo > hi`; here that is an error value instead.
pub fn clamp_i64(x: i64, lo: i64, hi: i64) -> Result<i64, EvalError> {
    if lo > hi {
        return Err(bad_bounds("clamp", lo, hi));
    }
    Ok(x.clamp(lo, hi))
}
pub fn clamp_u64(x: u64, lo: u64, hi: u64) -> Result<u64, EvalError> {
    if lo > hi {
        return Err(bad_bounds("clamp", lo, hi));
    }
    Ok(x.clamp(lo, hi))
}
/// A NaN anywhere is an error too: `f64::clamp` would panic on NaN bounds and return
/// NaN for a NaN input, which would then poison every aggregate downstream.
pub fn clamp_f64(x: f64, lo: f64, hi: f64) -> Result<f64, EvalError> {
    if x.is_nan() || lo.is_nan() || hi.is_nan() {
        return Err(EvalError::InvalidArgument {
            function: "clamp",
            reason: "NaN argument".to_owned(),
        });
    }
    if lo > hi {
        return Err(bad_bounds("clamp", lo, hi));
    }
    Ok(x.clamp(lo, hi))
}
pub fn round(x: f64) -> f64 {
    x.round()
}
pub fn floor(x: f64) -> f64 {
    x.floor()
}
pub fn ceil(x: f64) -> f64 {
    x.ceil()
}
/// Like `f64::min`: a NaN operand is ignored.
pub fn min_f64(a: f64, b: f64) -> f64 {
    a.min(b)
}
/// Like `f64::max`: a NaN operand is ignored.
pub fn max_f64(a: f64, b: f64) -> f64 {
    a.max(b)
}

// ---- conversions ----

fn conversion(to: &'static str, value: impl ToString) -> EvalError {
    EvalError::Conversion {
        to,
        value: value.to_string(),
    }
}

pub fn parse_i64(s: &str) -> Result<i64, EvalError> {
    s.trim().parse().map_err(|_| conversion("i64", s))
}
pub fn parse_u64(s: &str) -> Result<u64, EvalError> {
    s.trim().parse().map_err(|_| conversion("u64", s))
}
pub fn parse_f64(s: &str) -> Result<f64, EvalError> {
    s.trim().parse().map_err(|_| conversion("f64", s))
}
/// Accepts exactly `true`, `false`, `1`, `0` (surrounding whitespace ignored).
pub fn parse_bool(s: &str) -> Result<bool, EvalError> {
    match s.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(conversion("bool", s)),
    }
}

/// 2^63 and 2^64 as exact `f64` values, for range checks before `as` casts (which
/// would saturate silently).
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// Truncates toward zero; NaN and out-of-range values are errors, not saturation.
pub fn f64_to_i64(x: f64) -> Result<i64, EvalError> {
    if x.is_nan() || !(-TWO_POW_63..TWO_POW_63).contains(&x) {
        return Err(conversion("i64", x));
    }
    Ok(x as i64)
}
pub fn f64_to_u64(x: f64) -> Result<u64, EvalError> {
    if x.is_nan() || x <= -1.0 || x >= TWO_POW_64 {
        return Err(conversion("u64", x));
    }
    Ok(x as u64)
}
pub fn i64_to_u64(x: i64) -> Result<u64, EvalError> {
    u64::try_from(x).map_err(|_| conversion("u64", x))
}
pub fn u64_to_i64(x: u64) -> Result<i64, EvalError> {
    i64::try_from(x).map_err(|_| conversion("i64", x))
}
pub fn ts_to_rfc3339(ms: i64) -> String {
    time::format_rfc3339(ms)
}

// ---- time ----

/// Wall-clock time in milliseconds since the epoch (negative if the clock is before 1970).
pub fn now_ms() -> i64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Parses `s` with `fmt`: `"rfc3339"` is special-cased, anything else is a chrono
/// strftime format. A format without an offset is read as UTC; a date-only format means
/// midnight UTC.
pub fn parse_timestamp(s: &str, fmt: &str) -> Result<i64, EvalError> {
    let err = || EvalError::Timestamp {
        value: s.to_owned(),
        format: fmt.to_owned(),
    };
    if fmt == "rfc3339" {
        return time::parse_rfc3339(s).ok_or_else(err);
    }
    if let Ok(t) = chrono::DateTime::parse_from_str(s, fmt) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
        return Ok(t.and_utc().timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, fmt) {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    Err(err())
}

/// Formats `ms` with `fmt` (`"rfc3339"` or a chrono strftime format) in UTC.
///
/// chrono reports a bad format string only while formatting, and `to_string()` would
/// panic on it; writing with `write!` turns it into an error value instead.
pub fn format_timestamp(ms: i64, fmt: &str) -> Result<String, EvalError> {
    if fmt == "rfc3339" {
        return Ok(time::format_rfc3339(ms));
    }
    let t = chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| EvalError::Timestamp {
        value: ms.to_string(),
        format: fmt.to_owned(),
    })?;
    let mut out = String::new();
    write!(out, "{}", t.format(fmt)).map_err(|_| EvalError::InvalidArgument {
        function: "format_timestamp",
        reason: format!("invalid format string `{fmt}`"),
    })?;
    Ok(out)
}

// ---- regex ----

/// A regex compiled on first use and shared for the life of the process, so generated
/// code can keep one in a `static` (`static RE: LazyRegex = LazyRegex::new("..")`).
///
/// The compiler validates patterns before generating code; should one still fail to
/// compile here, it never matches and the failure is logged once.
#[cfg(feature = "regex")]
pub struct LazyRegex {
    pattern: &'static str,
    compiled: std::sync::OnceLock<Option<regex::Regex>>,
}

#[cfg(feature = "regex")]
impl LazyRegex {
    pub const fn new(pattern: &'static str) -> Self {
        LazyRegex {
            pattern,
            compiled: std::sync::OnceLock::new(),
        }
    }

    pub fn is_match(&self, s: &str) -> bool {
        let re = self.compiled.get_or_init(|| match regex::Regex::new(self.pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                crate::log::warn(
                    "invalid regex never matches",
                    &[("pattern", self.pattern.into()), ("error", e.to_string().into())],
                );
                None
            }
        });
        re.as_ref().is_some_and(|re| re.is_match(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_overflow_is_an_error_per_operator() {
        assert_eq!(add(i64::MAX, 1), Err(EvalError::Overflow { op: "+" }));
        assert_eq!(sub(0u64, 1), Err(EvalError::Overflow { op: "-" }));
        assert_eq!(mul(i64::MIN, -1), Err(EvalError::Overflow { op: "*" }));
        assert_eq!(div(i64::MIN, -1), Err(EvalError::Overflow { op: "/" }));
        assert_eq!(rem(i64::MIN, -1), Err(EvalError::Overflow { op: "%" }));
        assert_eq!(neg(i64::MIN), Err(EvalError::Overflow { op: "-" }));
        assert_eq!(abs_i64(i64::MIN), Err(EvalError::Overflow { op: "abs" }));
        assert_eq!(add(2i64, 3), Ok(5));
        assert_eq!(rem(-7i64, 3), Ok(-1));
        assert_eq!(neg(2.5f64), Ok(-2.5));
    }

    #[test]
    fn division_by_zero_for_ints_and_floats() {
        assert_eq!(div(1i64, 0), Err(EvalError::DivisionByZero));
        assert_eq!(rem(1u64, 0), Err(EvalError::DivisionByZero));
        assert_eq!(div(1.0f64, 0.0), Err(EvalError::DivisionByZero));
        assert_eq!(div(1.0f64, -0.0), Err(EvalError::DivisionByZero));
        assert_eq!(rem(1.0f64, 0.0), Err(EvalError::DivisionByZero));
        assert_eq!(div(9.0f64, 2.0), Ok(4.5));
        assert_eq!(mul(f64::MAX, 2.0), Ok(f64::INFINITY));
    }

    #[test]
    fn string_functions() {
        assert_eq!(lower("AbC"), "abc");
        assert_eq!(upper("straße"), "STRASSE");
        assert_eq!(trim("  x "), "x");
        assert!(contains("hello", "ell"));
        assert!(starts_with("hello", "he") && ends_with("hello", "lo"));
        assert_eq!(len("héllo"), 5);
        assert_eq!(replace("a-b-c", "-", "+"), "a+b+c");
        assert_eq!(replace("abc", "", "x"), "abc");
        assert_eq!(split("a,b,,c", ","), vec!["a", "b", "", "c"]);
        assert_eq!(split("ab", ""), vec!["a", "b"]);
        assert_eq!(concat("ab", "cd"), "abcd");
    }

    #[test]
    fn index_counts_from_either_end() {
        let l = ["a", "b", "c"];
        assert_eq!(index(&l, 0), Ok("a"));
        assert_eq!(index(&l, -1), Ok("c"));
        assert_eq!(index(&l, -3), Ok("a"));
        assert_eq!(index(&l, 3), Err(EvalError::IndexOutOfRange { index: 3, len: 3 }));
        assert_eq!(index(&l, -4), Err(EvalError::IndexOutOfRange { index: -4, len: 3 }));
        assert_eq!(
            index(&l, i64::MIN),
            Err(EvalError::IndexOutOfRange {
                index: i64::MIN,
                len: 3
            })
        );
        assert_eq!(
            index::<u8>(&[], 0),
            Err(EvalError::IndexOutOfRange { index: 0, len: 0 })
        );
        assert_eq!(list_len(&l), 3);
    }

    #[test]
    fn clamp_rejects_inverted_bounds_and_nan() {
        assert!(matches!(
            clamp_i64(5, 10, 1),
            Err(EvalError::InvalidArgument { function: "clamp", .. })
        ));
        assert!(clamp_u64(5, 10, 1).is_err());
        assert!(clamp_f64(5.0, 10.0, 1.0).is_err());
        assert!(clamp_f64(f64::NAN, 0.0, 1.0).is_err());
        assert!(clamp_f64(0.5, f64::NAN, 1.0).is_err());
        assert_eq!(clamp_i64(50, 1, 10), Ok(10));
        assert_eq!(clamp_u64(0, 1, 10), Ok(1));
        assert_eq!(clamp_f64(-3.0, -1.0, 1.0), Ok(-1.0));
    }

    #[test]
    fn number_helpers() {
        assert_eq!(round(2.5), 3.0);
        assert_eq!(floor(-1.5), -2.0);
        assert_eq!(ceil(1.1), 2.0);
        assert_eq!(min_f64(1.0, f64::NAN), 1.0);
        assert_eq!(max_f64(1.0, 2.0), 2.0);
    }

    #[test]
    fn conversions_fail_instead_of_saturating() {
        assert_eq!(parse_i64(" -12 "), Ok(-12));
        assert!(matches!(parse_i64("12x"), Err(EvalError::Conversion { to: "i64", .. })));
        assert!(parse_u64("-1").is_err());
        assert_eq!(parse_f64("2.5"), Ok(2.5));
        assert!(parse_f64("").is_err());
        assert_eq!(parse_bool("1"), Ok(true));
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("yes").is_err());
        assert_eq!(f64_to_i64(-2.9), Ok(-2));
        assert!(f64_to_i64(f64::NAN).is_err());
        assert!(f64_to_i64(9.3e18).is_err());
        assert_eq!(f64_to_i64(-9_223_372_036_854_775_808.0), Ok(i64::MIN));
        assert_eq!(f64_to_u64(-0.5), Ok(0));
        assert!(f64_to_u64(-1.0).is_err());
        assert!(f64_to_u64(f64::INFINITY).is_err());
        assert!(i64_to_u64(-1).is_err());
        assert!(u64_to_i64(u64::MAX).is_err());
        assert_eq!(u64_to_i64(7), Ok(7));
        assert_eq!(ts_to_rfc3339(1000), "1970-01-01T00:00:01.000Z");
    }

    #[test]
    fn to_string_of_a_timestamp_past_year_9999_reads_back() {
        let ms = 253_402_300_800_000 + 1; // 10000-01-01T00:00:00.001Z
        let text = ts_to_rfc3339(ms);
        assert_eq!(text, "+10000-01-01T00:00:00.001Z");
        assert_eq!(parse_timestamp(&text, "rfc3339"), Ok(ms));
    }

    #[test]
    fn timestamps_parse_with_various_formats() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:01Z", "rfc3339"), Ok(1000));
        assert_eq!(
            parse_timestamp("2024-01-01 00:00:00", "%Y-%m-%d %H:%M:%S"),
            Ok(1_704_067_200_000)
        );
        assert_eq!(parse_timestamp("2024-01-01", "%Y-%m-%d"), Ok(1_704_067_200_000));
        assert_eq!(
            parse_timestamp("2024-01-01 01:00:00 +0100", "%Y-%m-%d %H:%M:%S %z"),
            Ok(1_704_067_200_000)
        );
        assert!(matches!(
            parse_timestamp("nope", "%Y"),
            Err(EvalError::Timestamp { .. })
        ));
        assert!(parse_timestamp("x", "rfc3339").is_err());
    }

    #[test]
    fn bad_format_strings_never_panic() {
        for fmt in ["%", "%Q", "%-", "%.", "%:", "%#z", "%Ez", "abc%"] {
            assert!(parse_timestamp("2024", fmt).is_err(), "{fmt}");
            let r = format_timestamp(0, fmt);
            assert!(r.is_err(), "{fmt}: {r:?}");
        }
        assert_eq!(format_timestamp(0, "%Y-%m-%d"), Ok("1970-01-01".to_owned()));
        assert_eq!(
            format_timestamp(5, "rfc3339"),
            Ok("1970-01-01T00:00:00.005Z".to_owned())
        );
        assert!(matches!(
            format_timestamp(i64::MAX, "%Y"),
            Err(EvalError::Timestamp { .. })
        ));
    }

    #[test]
    fn now_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }

    #[cfg(feature = "regex")]
    #[test]
    fn lazy_regex_matches_and_bad_patterns_never_match() {
        static RE: LazyRegex = LazyRegex::new("^dev-[0-9]+$");
        static BAD: LazyRegex = LazyRegex::new("(");
        assert!(RE.is_match("dev-12"));
        assert!(!RE.is_match("dev-x"));
        assert!(!BAD.is_match("("));
        assert!(!BAD.is_match(""));
    }
}
