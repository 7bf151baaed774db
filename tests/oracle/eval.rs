//! The oracle's interpreter: what docs/language.md says an expression gives, written
//! from the documentation alone (only the standard library is shared with the runtime).

use super::E;

/// A value, tagged with its rill type.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Str(String),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
    /// Milliseconds since the Unix epoch.
    Ts(i64),
    Null,
    List(Vec<String>),
}

/// Why a record becomes a dead letter, as the documented reason says it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fail {
    Overflow(&'static str),
    DivisionByZero,
    Convert,
    Index,
    InvalidArgument(&'static str),
    Timestamp,
}

impl Fail {
    /// The text the dead letter's `reason` must contain (docs/language.md, "Runtime errors").
    pub fn reason(&self) -> String {
        match self {
            Fail::Overflow(op) => format!("integer overflow in `{op}`"),
            Fail::DivisionByZero => "division by zero".into(),
            Fail::Convert => "cannot convert".into(),
            Fail::Index => "out of range for a list of length".into(),
            Fail::InvalidArgument(f) => format!("invalid argument to `{f}`"),
            Fail::Timestamp => "cannot handle timestamp".into(),
        }
    }
}

/// One input record: field name → value (`V::Null` for a null or missing optional).
pub type Record = Vec<(&'static str, V)>;

pub fn eval(e: &E, r: &Record) -> Result<V, Fail> {
    Ok(match e {
        E::Field(name) => r
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .expect("a schema field"),
        E::Int(i) => V::Int(*i),
        E::Uint(u) => V::Uint(*u),
        E::Float(f) => V::Float(*f),
        E::Str(s) | E::Raw(s) => V::Str(s.to_string()),
        E::Bool(b) => V::Bool(*b),
        E::Bin(op, a, b) => {
            let (a, b) = (eval(a, r)?, eval(b, r)?);
            arith(op, a, b)?
        }
        E::Cmp(op, a, b) => {
            let (a, b) = (eval(a, r)?, eval(b, r)?);
            V::Bool(compare(op, &a, &b))
        }
        // `&&` and `||` short-circuit: the right side is not evaluated (and cannot fail).
        E::And(a, b) => V::Bool(truth(eval(a, r)?) && truth(eval(b, r)?)),
        E::Or(a, b) => V::Bool(truth(eval(a, r)?) || truth(eval(b, r)?)),
        E::Not(a) => V::Bool(!truth(eval(a, r)?)),
        E::Neg(a) => match eval(a, r)? {
            V::Int(i) => V::Int(i.checked_neg().ok_or(Fail::Overflow("-"))?),
            V::Float(f) => V::Float(-f),
            v => panic!("-{v:?}"),
        },
        // Only the branch taken is evaluated.
        E::If(c, a, b) => {
            if truth(eval(c, r)?) {
                eval(a, r)?
            } else {
                eval(b, r)?
            }
        }
        // The fallback is evaluated only when the value is null.
        E::Call("coalesce", args) => match eval(&args[0], r)? {
            V::Null => eval(&args[1], r)?,
            v => v,
        },
        E::Call(f, args) => {
            let args = args.iter().map(|a| eval(a, r)).collect::<Result<Vec<V>, Fail>>()?;
            call(f, args)?
        }
        E::Index(list, i) => {
            let (V::List(list), V::Int(i)) = (eval(list, r)?, eval(i, r)?) else {
                panic!("index")
            };
            let len = list.len() as i64;
            let at = if i < 0 { len.checked_add(i) } else { Some(i) };
            match at {
                Some(at) if (0..len).contains(&at) => V::Str(list[at as usize].clone()),
                _ => return Err(Fail::Index),
            }
        }
    })
}

fn truth(v: V) -> bool {
    match v {
        V::Bool(b) => b,
        v => panic!("not a bool: {v:?}"),
    }
}

fn arith(op: &'static str, a: V, b: V) -> Result<V, Fail> {
    let over = Fail::Overflow(op);
    Ok(match (a, b) {
        (V::Int(x), V::Int(y)) => V::Int(int_op(op, x, y, over)?),
        (V::Uint(x), V::Uint(y)) => V::Uint(match op {
            "+" => x.checked_add(y).ok_or(over)?,
            "-" => x.checked_sub(y).ok_or(over)?,
            "*" => x.checked_mul(y).ok_or(over)?,
            _ if y == 0 => return Err(Fail::DivisionByZero),
            "/" => x / y,
            _ => x % y,
        }),
        // Division and remainder by zero fail for floats too (not `inf`).
        (V::Float(x), V::Float(y)) => V::Float(match op {
            "+" => x + y,
            "-" => x - y,
            "*" => x * y,
            _ if y == 0.0 => return Err(Fail::DivisionByZero),
            "/" => x / y,
            _ => x % y,
        }),
        (V::Str(x), V::Str(y)) => V::Str(x + &y),
        (V::Ts(t), V::Int(ms)) => V::Ts(int_op(op, t, ms, over)?),
        (V::Ts(t), V::Ts(u)) => V::Int(t.checked_sub(u).ok_or(over)?),
        (a, b) => panic!("{a:?} {op} {b:?}"),
    })
}

fn int_op(op: &str, x: i64, y: i64, over: Fail) -> Result<i64, Fail> {
    match op {
        "+" => x.checked_add(y).ok_or(over),
        "-" => x.checked_sub(y).ok_or(over),
        "*" => x.checked_mul(y).ok_or(over),
        _ if y == 0 => Err(Fail::DivisionByZero),
        // `i64::MIN / -1` and `i64::MIN % -1` overflow.
        "/" => x.checked_div(y).ok_or(over),
        _ => x.checked_rem(y).ok_or(over),
    }
}

fn compare(op: &str, a: &V, b: &V) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (a, b) {
        (V::Int(x), V::Int(y)) | (V::Ts(x), V::Ts(y)) => x.partial_cmp(y),
        (V::Uint(x), V::Uint(y)) => x.partial_cmp(y),
        // NaN is unordered: every comparison but `!=` is false.
        (V::Float(x), V::Float(y)) => x.partial_cmp(y),
        (V::Str(x), V::Str(y)) => x.partial_cmp(y),
        (V::Bool(x), V::Bool(y)) => x.partial_cmp(y),
        // Two optionals: null equals null, and a value never equals null.
        (V::Null, V::Null) => Some(Ordering::Equal),
        (V::Null, _) | (_, V::Null) => None,
        (a, b) => panic!("{a:?} {op} {b:?}"),
    };
    match op {
        "==" => ord == Some(Ordering::Equal),
        "!=" => ord != Some(Ordering::Equal),
        "<" => ord == Some(Ordering::Less),
        "<=" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
        ">" => ord == Some(Ordering::Greater),
        _ => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
    }
}

fn s(v: &V) -> &str {
    match v {
        V::Str(s) => s,
        v => panic!("not a string: {v:?}"),
    }
}

fn call(f: &'static str, a: Vec<V>) -> Result<V, Fail> {
    Ok(match (f, a.as_slice()) {
        ("lower", [x]) => V::Str(s(x).to_lowercase()),
        ("upper", [x]) => V::Str(s(x).to_uppercase()),
        ("trim", [x]) => V::Str(s(x).trim().to_string()),
        ("contains", [x, y]) => V::Bool(s(x).contains(s(y))),
        ("starts_with", [x, y]) => V::Bool(s(x).starts_with(s(y))),
        ("ends_with", [x, y]) => V::Bool(s(x).ends_with(s(y))),
        ("len", [V::List(l)]) => V::Int(l.len() as i64),
        ("len", [x]) => V::Int(s(x).chars().count() as i64),
        // An empty `from` leaves the string unchanged.
        ("replace", [x, from, _]) if s(from).is_empty() => x.clone(),
        ("replace", [x, from, to]) => V::Str(s(x).replace(s(from), s(to))),
        // Empty parts are kept; an empty separator splits into characters.
        ("split", [x, sep]) if s(sep).is_empty() => V::List(s(x).chars().map(String::from).collect()),
        ("split", [x, sep]) => V::List(s(x).split(s(sep)).map(String::from).collect()),
        ("concat", parts) => V::Str(parts.iter().map(s).collect()),
        ("abs", [V::Int(i)]) => V::Int(i.checked_abs().ok_or(Fail::Overflow("abs"))?),
        ("abs", [V::Float(x)]) => V::Float(x.abs()),
        // Halves away from zero.
        ("round", [V::Float(x)]) => V::Float(x.round()),
        ("floor", [V::Float(x)]) => V::Float(x.floor()),
        ("ceil", [V::Float(x)]) => V::Float(x.ceil()),
        // For f64 a NaN operand is ignored.
        ("min", [V::Float(x), V::Float(y)]) => V::Float(ignoring_nan(*x, *y, |x, y| if y < x { y } else { x })),
        ("max", [V::Float(x), V::Float(y)]) => V::Float(ignoring_nan(*x, *y, |x, y| if y > x { y } else { x })),
        ("min", [x, y]) => smaller(x, y, true),
        ("max", [x, y]) => smaller(x, y, false),
        ("clamp", [V::Float(x), V::Float(lo), V::Float(hi)]) => {
            if x.is_nan() || lo.is_nan() || hi.is_nan() || lo > hi {
                return Err(Fail::InvalidArgument("clamp"));
            }
            V::Float(x.max(*lo).min(*hi))
        }
        ("clamp", [V::Int(x), V::Int(lo), V::Int(hi)]) if lo <= hi => V::Int(*x.max(lo).min(hi)),
        ("clamp", [V::Uint(x), V::Uint(lo), V::Uint(hi)]) if lo <= hi => V::Uint(*x.max(lo).min(hi)),
        ("clamp", _) => return Err(Fail::InvalidArgument("clamp")),
        ("is_null", [x]) => V::Bool(*x == V::Null),
        ("to_timestamp", [V::Int(ms)]) => V::Ts(*ms),
        ("to_millis", [V::Ts(ms)]) => V::Int(*ms),
        ("to_string", [x]) => V::Str(match x {
            V::Str(s) => s.clone(),
            V::Bool(b) => b.to_string(),
            V::Int(i) => i.to_string(),
            V::Uint(u) => u.to_string(),
            // `2.0` gives "2": the shortest text that reads back as the same float.
            V::Float(f) => f.to_string(),
            V::Ts(ms) => rfc3339(*ms),
            v => panic!("to_string({v:?})"),
        }),
        ("to_int", [x]) => V::Int(match x {
            V::Str(s) => s.trim().parse::<i64>().map_err(|_| Fail::Convert)?,
            V::Bool(b) => i64::from(*b),
            V::Int(i) => *i,
            V::Uint(u) => i64::try_from(*u).map_err(|_| Fail::Convert)?,
            // Truncated toward zero; NaN and values outside i64 fail, never saturate.
            V::Float(f) => {
                let t = f.trunc();
                if t.is_nan() || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&t) {
                    return Err(Fail::Convert);
                }
                t as i64
            }
            v => panic!("to_int({v:?})"),
        }),
        ("to_uint", [x]) => V::Uint(match x {
            V::Str(s) => s.trim().parse::<u64>().map_err(|_| Fail::Convert)?,
            V::Int(i) => u64::try_from(*i).map_err(|_| Fail::Convert)?,
            V::Uint(u) => *u,
            // Between -1 and 0 truncates to 0.
            V::Float(f) => {
                let t = f.trunc();
                if t.is_nan() || t <= -1.0 || t >= 18_446_744_073_709_551_616.0 {
                    return Err(Fail::Convert);
                }
                t as u64
            }
            v => panic!("to_uint({v:?})"),
        }),
        ("to_float", [x]) => V::Float(match x {
            V::Str(s) => s.trim().parse::<f64>().map_err(|_| Fail::Convert)?,
            V::Int(i) => *i as f64,
            V::Uint(u) => *u as f64,
            V::Float(f) => *f,
            v => panic!("to_float({v:?})"),
        }),
        ("to_bool", [x]) => V::Bool(match s(x).trim() {
            "true" | "1" => true,
            "false" | "0" => false,
            _ => return Err(Fail::Convert),
        }),
        ("format_timestamp", [V::Ts(ms), fmt]) => V::Str(format_timestamp(*ms, s(fmt))),
        ("parse_timestamp", [text, fmt]) => V::Ts(parse_timestamp(s(text), s(fmt)).ok_or(Fail::Timestamp)?),
        ("matches", [text, re]) => V::Bool(matches(s(text), s(re))),
        (f, a) => panic!("{f}({a:?})"),
    })
}

fn ignoring_nan(x: f64, y: f64, pick: impl Fn(f64, f64) -> f64) -> f64 {
    match (x.is_nan(), y.is_nan()) {
        (true, _) => y,
        (_, true) => x,
        _ => pick(x, y),
    }
}

fn smaller(x: &V, y: &V, min: bool) -> V {
    let x_first = match (x, y) {
        (V::Int(a), V::Int(b)) | (V::Ts(a), V::Ts(b)) => (a <= b) == min,
        (V::Uint(a), V::Uint(b)) => (a <= b) == min,
        (x, y) => panic!("min/max({x:?}, {y:?})"),
    };
    if x_first {
        x.clone()
    } else {
        y.clone()
    }
}

/// (year, month, day) of a day count since 1970-01-01 (the proleptic Gregorian
/// calendar; Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
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

/// The fields of a timestamp in UTC: (year, month, day, hour, minute, second, millisecond).
fn fields(ms: i64) -> (i64, u32, u32, i64, i64, i64, i64) {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    (
        y,
        mo,
        d,
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    )
}

/// A year in four digits; outside 0000–9999 with a sign (ISO 8601's expanded form).
fn year(y: i64) -> String {
    if (0..=9999).contains(&y) {
        format!("{y:04}")
    } else {
        format!("{}{:04}", if y < 0 { '-' } else { '+' }, y.unsigned_abs())
    }
}

/// RFC 3339 in UTC with milliseconds: `2024-01-01T08:00:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let (y, mo, d, h, mi, s, milli) = fields(ms);
    format!("{}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z", year(y))
}

/// The few `strftime` directives the generated expressions use, and `rfc3339`.
fn format_timestamp(ms: i64, fmt: &str) -> String {
    if fmt == "rfc3339" {
        return rfc3339(ms);
    }
    let (y, mo, d, h, mi, s, _) = fields(ms);
    fmt.replace("%Y", &year(y))
        .replace("%m", &format!("{mo:02}"))
        .replace("%d", &format!("{d:02}"))
        .replace("%H", &format!("{h:02}"))
        .replace("%M", &format!("{mi:02}"))
        .replace("%S", &format!("{s:02}"))
}

/// The two patterns the generator uses, matched by hand.
fn matches(text: &str, re: &str) -> bool {
    match re {
        r"^[a-z]+-\d*$" => text.split_once('-').is_some_and(|(word, digits)| {
            !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()) && digits.chars().all(char::is_numeric)
        }),
        "-" => text.contains('-'),
        re => panic!("no oracle for the pattern {re}"),
    }
}

/// Days since 1970-01-01 of a valid date (Howard Hinnant's `days_from_civil`).
fn days(y: i64, m: i64, d: i64) -> Option<i64> {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// `NNNN-NN-NN` (digits only) as (year, month, day).
fn date(text: &str) -> Option<(i64, i64, i64)> {
    let digits = |from: usize, to: usize| {
        text.get(from..to)
            .filter(|t| t.bytes().all(|c| c.is_ascii_digit()))?
            .parse()
            .ok()
    };
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    Some((digits(0, 4)?, digits(5, 7)?, digits(8, 10)?))
}

/// `parse_timestamp` for the record strings the generator uses: a date alone is
/// midnight UTC; RFC 3339 has an offset or `Z`, and maybe fractional seconds.
fn parse_timestamp(text: &str, fmt: &str) -> Option<i64> {
    if fmt == "%Y-%m-%d" {
        let (y, m, d) = date(text)?;
        return Some(days(y, m, d)? * 86_400_000);
    }
    assert_eq!(fmt, "rfc3339");
    let (y, m, d) = date(text.get(..10)?)?;
    let rest = text.get(10..)?.strip_prefix('T')?;
    let (clock, offset_ms) = if let Some(clock) = rest.strip_suffix('Z') {
        (clock, 0)
    } else {
        let (clock, offset) = rest.split_at(rest.len().checked_sub(6)?);
        let sign = match offset.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (h, m) = offset[1..].split_once(':')?;
        (
            clock,
            sign * (h.parse::<i64>().ok()? * 60 + m.parse::<i64>().ok()?) * 60_000,
        )
    };
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut parts = whole.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, sec) = (parts.next()??, parts.next()??, parts.next()??);
    let millis = format!("{fraction:0<3}").get(..3)?.parse::<i64>().ok()?;
    Some(days(y, m, d)? * 86_400_000 + ((h * 60 + mi) * 60 + sec) * 1000 + millis - offset_ms)
}
