//! The built-in functions: names, signatures and result types.
//!
//! This table is the whole function surface of the language; docs/language.md
//! lists the same set and a test checks the two agree.

use crate::types::Type;

/// A resolved function call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Lower,
    Upper,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Len,
    Replace,
    Split,
    Concat,
    Matches,
    Abs,
    Round,
    Floor,
    Ceil,
    Min,
    Max,
    Clamp,
    IsNull,
    Coalesce,
    Now,
    ParseTimestamp,
    FormatTimestamp,
    ToTimestamp,
    ToMillis,
    ToString,
    ToInt,
    ToUint,
    ToFloat,
    ToBool,
}

/// Every function name with its signature, for help texts and the docs check.
pub const SIGNATURES: &[(&str, Func, &str)] = &[
    ("lower", Func::Lower, "lower(string) -> string"),
    ("upper", Func::Upper, "upper(string) -> string"),
    ("trim", Func::Trim, "trim(string) -> string"),
    ("contains", Func::Contains, "contains(string, string) -> bool"),
    ("starts_with", Func::StartsWith, "starts_with(string, string) -> bool"),
    ("ends_with", Func::EndsWith, "ends_with(string, string) -> bool"),
    ("len", Func::Len, "len(string | list) -> i64"),
    (
        "replace",
        Func::Replace,
        "replace(string, from: string, to: string) -> string",
    ),
    ("split", Func::Split, "split(string, separator: string) -> list<string>"),
    ("concat", Func::Concat, "concat(string, string, ...) -> string"),
    ("matches", Func::Matches, "matches(string, \"regex literal\") -> bool"),
    ("abs", Func::Abs, "abs(i64 | f64) -> same"),
    ("round", Func::Round, "round(f64) -> f64"),
    ("floor", Func::Floor, "floor(f64) -> f64"),
    ("ceil", Func::Ceil, "ceil(f64) -> f64"),
    ("min", Func::Min, "min(a, b) -> same (i64 | u64 | f64 | timestamp)"),
    ("max", Func::Max, "max(a, b) -> same (i64 | u64 | f64 | timestamp)"),
    ("clamp", Func::Clamp, "clamp(x, low, high) -> same (i64 | u64 | f64)"),
    ("is_null", Func::IsNull, "is_null(T?) -> bool"),
    ("coalesce", Func::Coalesce, "coalesce(T?, T) -> T"),
    ("now", Func::Now, "now() -> timestamp"),
    (
        "parse_timestamp",
        Func::ParseTimestamp,
        "parse_timestamp(string, \"format literal\") -> timestamp",
    ),
    (
        "format_timestamp",
        Func::FormatTimestamp,
        "format_timestamp(timestamp, \"format literal\") -> string",
    ),
    (
        "to_timestamp",
        Func::ToTimestamp,
        "to_timestamp(i64 milliseconds) -> timestamp",
    ),
    ("to_millis", Func::ToMillis, "to_millis(timestamp) -> i64"),
    (
        "to_string",
        Func::ToString,
        "to_string(string | bool | i64 | u64 | f64 | timestamp) -> string",
    ),
    ("to_int", Func::ToInt, "to_int(string | bool | i64 | u64 | f64) -> i64"),
    ("to_uint", Func::ToUint, "to_uint(string | i64 | u64 | f64) -> u64"),
    ("to_float", Func::ToFloat, "to_float(string | i64 | u64 | f64) -> f64"),
    ("to_bool", Func::ToBool, "to_bool(string | bool) -> bool"),
];

pub fn names() -> Vec<&'static str> {
    SIGNATURES.iter().map(|(n, ..)| *n).collect()
}

pub fn lookup(name: &str) -> Option<(Func, &'static str)> {
    SIGNATURES
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, f, sig)| (*f, *sig))
}

/// Why a call does not fit its function's signature.
pub struct ArgProblem {
    pub message: String,
    /// The argument to point at (`None`: the whole call).
    pub arg: Option<usize>,
    pub help: Option<String>,
}

fn problem(message: impl Into<String>, arg: Option<usize>, help: Option<&str>) -> ArgProblem {
    ArgProblem {
        message: message.into(),
        arg,
        help: help.map(str::to_string),
    }
}

/// The result type of calling `func` on arguments of these types.
pub fn result_type(func: Func, signature: &str, args: &[Type]) -> Result<Type, ArgProblem> {
    use Type::*;
    let arity = |n: usize| -> Result<(), ArgProblem> {
        if args.len() == n {
            Ok(())
        } else {
            Err(problem(
                format!(
                    "expected {n} argument{}, found {}",
                    if n == 1 { "" } else { "s" },
                    args.len()
                ),
                None,
                Some(signature),
            ))
        }
    };
    let expect = |i: usize, ok: &dyn Fn(&Type) -> bool, what: &str| -> Result<(), ArgProblem> {
        if ok(&args[i]) {
            Ok(())
        } else if args[i].is_optional() {
            Err(problem(
                format!("argument {} may be null, expected {what}", i + 1),
                Some(i),
                Some("handle the null first: `coalesce(field, default)`"),
            ))
        } else {
            Err(problem(
                format!("expected {what}, found {}", args[i]),
                Some(i),
                Some(signature),
            ))
        }
    };
    let string = |t: &Type| *t == String;
    let number = |t: &Type| t.is_numeric();
    match func {
        Func::Lower | Func::Upper | Func::Trim => {
            arity(1)?;
            expect(0, &string, "string")?;
            Ok(String)
        }
        Func::Contains | Func::StartsWith | Func::EndsWith => {
            arity(2)?;
            expect(0, &string, "string")?;
            expect(1, &string, "string")?;
            Ok(Bool)
        }
        Func::Len => {
            arity(1)?;
            expect(0, &|t| *t == String || matches!(t, List(_)), "string or list")?;
            Ok(I64)
        }
        Func::Replace => {
            arity(3)?;
            for i in 0..3 {
                expect(i, &string, "string")?;
            }
            Ok(String)
        }
        Func::Split => {
            arity(2)?;
            expect(0, &string, "string")?;
            expect(1, &string, "string")?;
            Ok(List(Box::new(String)))
        }
        Func::Concat => {
            if args.len() < 2 {
                return Err(problem("expected at least 2 arguments", None, Some(signature)));
            }
            for i in 0..args.len() {
                expect(i, &string, "string")?;
            }
            Ok(String)
        }
        Func::Matches => {
            arity(2)?;
            expect(0, &string, "string")?;
            expect(1, &string, "string")?;
            Ok(Bool)
        }
        Func::Abs => {
            arity(1)?;
            expect(0, &|t| matches!(t, I64 | F64), "i64 or f64")?;
            Ok(args[0].clone())
        }
        Func::Round | Func::Floor | Func::Ceil => {
            arity(1)?;
            expect(0, &|t| *t == F64, "f64")?;
            Ok(F64)
        }
        Func::Min | Func::Max => {
            arity(2)?;
            expect(0, &|t| t.is_numeric() || *t == Timestamp, "a number or timestamp")?;
            same(args, signature)?;
            Ok(args[0].clone())
        }
        Func::Clamp => {
            arity(3)?;
            expect(0, &number, "a number")?;
            same(args, signature)?;
            Ok(args[0].clone())
        }
        Func::IsNull => {
            arity(1)?;
            if !args[0].is_optional() {
                return Err(problem(
                    format!("a `{}` is never null", args[0]),
                    Some(0),
                    Some("is_null applies to optional fields (`T?`)"),
                ));
            }
            Ok(Bool)
        }
        Func::Coalesce => {
            arity(2)?;
            let Optional(inner) = &args[0] else {
                return Err(problem(
                    format!("a `{}` is never null", args[0]),
                    Some(0),
                    Some("the first argument of coalesce is an optional field (`T?`)"),
                ));
            };
            if args[1] == **inner {
                Ok((**inner).clone())
            } else if args[1] == args[0] {
                Ok(args[0].clone())
            } else {
                Err(problem(
                    format!("expected {inner}, found {}", args[1]),
                    Some(1),
                    Some(signature),
                ))
            }
        }
        Func::Now => {
            arity(0)?;
            Ok(Timestamp)
        }
        Func::ParseTimestamp => {
            arity(2)?;
            expect(0, &string, "string")?;
            expect(1, &string, "a format string")?;
            Ok(Timestamp)
        }
        Func::FormatTimestamp => {
            arity(2)?;
            expect(0, &|t| *t == Timestamp, "timestamp")?;
            expect(1, &string, "a format string")?;
            Ok(String)
        }
        Func::ToTimestamp => {
            arity(1)?;
            expect(0, &|t| *t == I64, "i64 milliseconds")?;
            Ok(Timestamp)
        }
        Func::ToMillis => {
            arity(1)?;
            expect(0, &|t| *t == Timestamp, "timestamp")?;
            Ok(I64)
        }
        Func::ToString => {
            arity(1)?;
            expect(
                0,
                &|t| matches!(t, String | Bool | I64 | U64 | F64 | Timestamp),
                "a scalar",
            )?;
            Ok(String)
        }
        Func::ToInt => {
            arity(1)?;
            expect(
                0,
                &|t| matches!(t, String | Bool | I64 | U64 | F64),
                "string, bool or number",
            )?;
            Ok(I64)
        }
        Func::ToUint => {
            arity(1)?;
            expect(0, &|t| matches!(t, String | I64 | U64 | F64), "string or number")?;
            Ok(U64)
        }
        Func::ToFloat => {
            arity(1)?;
            expect(0, &|t| matches!(t, String | I64 | U64 | F64), "string or number")?;
            Ok(F64)
        }
        Func::ToBool => {
            arity(1)?;
            expect(0, &|t| matches!(t, String | Bool), "string or bool")?;
            Ok(Bool)
        }
    }
}

fn same(args: &[Type], signature: &str) -> Result<(), ArgProblem> {
    for (i, t) in args.iter().enumerate().skip(1) {
        if *t != args[0] {
            return Err(problem(
                format!("expected {} like the first argument, found {t}", args[0]),
                Some(i),
                Some(signature),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// docs/language.md lists exactly the functions the checker knows.
    #[test]
    fn language_reference_lists_every_function() {
        let mut known = super::names();
        known.sort();
        assert_eq!(crate::expr::documented_names("## Functions"), known);
    }
}
