//! Aggregate calls of windows and tables: `count()`, `avg(temp_f)`, `percentile(x, 0.95)`.
//!
//! An aggregate is a call at the top of its expression; its argument is an ordinary
//! expression over the input record, checked like any other, and its result type
//! becomes a field of the window's output record.

use super::check::{check, TExpr};
use super::{Expr, ExprKind, ExprSpan};
use crate::diagnostics::SpecError;
use crate::spec::spans::Span;
use crate::types::{RecordType, Type};

/// Every aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Min,
    Max,
    Avg,
    First,
    Last,
    Variance,
    VarianceSample,
    Stddev,
    StddevSample,
    CountDistinct,
    ApproxCountDistinct,
    Percentile,
    Median,
    Collect,
}

/// Name, function, and the signature shown in help and in docs/language.md.
pub const AGGREGATES: &[(&str, AggFunc, &str)] = &[
    (
        "count",
        AggFunc::Count,
        "count() or count(x): records, or non-null values of x → i64",
    ),
    ("sum", AggFunc::Sum, "sum(x: number) → same number type; nulls skipped"),
    (
        "min",
        AggFunc::Min,
        "min(x: number | string | timestamp | bool) → same type (f64?: null when every value is NaN)",
    ),
    (
        "max",
        AggFunc::Max,
        "max(x: number | string | timestamp | bool) → same type (f64?: null when every value is NaN)",
    ),
    ("avg", AggFunc::Avg, "avg(x: number) → f64"),
    ("first", AggFunc::First, "first(x) → x of the earliest record (by time)"),
    ("last", AggFunc::Last, "last(x) → x of the latest record (by time)"),
    ("variance", AggFunc::Variance, "variance(x: number) → f64, population"),
    (
        "variance_sample",
        AggFunc::VarianceSample,
        "variance_sample(x: number) → f64?, n − 1; null below 2 values",
    ),
    ("stddev", AggFunc::Stddev, "stddev(x: number) → f64, population"),
    (
        "stddev_sample",
        AggFunc::StddevSample,
        "stddev_sample(x: number) → f64?, n − 1; null below 2 values",
    ),
    (
        "count_distinct",
        AggFunc::CountDistinct,
        "count_distinct(x) → i64, exact",
    ),
    (
        "approx_count_distinct",
        AggFunc::ApproxCountDistinct,
        "approx_count_distinct(x) → i64, HyperLogLog (±1.6%)",
    ),
    (
        "percentile",
        AggFunc::Percentile,
        "percentile(x: number, q: 0.0..=1.0 literal) → f64 (±1% relative; f64? for an f64 x)",
    ),
    (
        "median",
        AggFunc::Median,
        "median(x: number) → f64 (±1% relative; f64? for an f64 x)",
    ),
    (
        "collect",
        AggFunc::Collect,
        "collect(x) or collect(x, limit) → list of x, the first `limit` (default 100)",
    ),
];

/// Values kept by `collect(x)` when no limit is given.
pub const DEFAULT_COLLECT_LIMIT: u64 = 100;

/// A checked aggregate call.
#[derive(Debug, Clone, PartialEq)]
pub struct TAggregate {
    pub func: AggFunc,
    /// The value aggregated; `None` for `count()`.
    pub arg: Option<TExpr>,
    /// `percentile`'s q (0.5 for `median`).
    pub quantile: Option<f64>,
    /// `collect`'s limit.
    pub limit: Option<u64>,
    /// The type of the output field.
    pub ty: Type,
}

impl AggFunc {
    /// The runtime aggregator's result is an `Option` (empty until a value arrives).
    pub fn result_is_option(self) -> bool {
        !matches!(
            self,
            AggFunc::Count | AggFunc::Sum | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct | AggFunc::Collect
        )
    }

    pub fn name(self) -> &'static str {
        AGGREGATES
            .iter()
            .find(|(_, f, _)| *f == self)
            .map(|(n, _, _)| *n)
            .unwrap_or("?")
    }
}

fn names() -> Vec<&'static str> {
    AGGREGATES.iter().map(|(n, _, _)| *n).collect()
}

/// Check one aggregate expression against the window's input record.
pub fn check_aggregate(
    expr: &Expr,
    record: &RecordType,
    locate: &dyn Fn(&ExprSpan) -> Span,
) -> Result<TAggregate, Vec<SpecError>> {
    let ExprKind::Call { name, name_span, args } = &expr.kind else {
        return Err(vec![SpecError::invalid_value(
            "aggregate",
            "expected one aggregate call",
            &locate(&expr.span),
            Some(
                "an aggregate is one call such as `count()`, `avg(temperature)` or `max(ts)`; \
                 compute with its result in a transform after the window"
                    .into(),
            ),
        )]);
    };
    let Some(&(_, func, signature)) = AGGREGATES.iter().find(|(n, _, _)| n == name) else {
        let mut valid = names();
        valid.sort_unstable();
        return Err(vec![SpecError::unknown_function(name, &locate(name_span), &valid)]);
    };
    let arity_error = |expected: &str| {
        vec![SpecError::type_mismatch(
            format!("`{name}` takes {expected}"),
            format!("{} given", args.len()),
            &locate(&expr.span),
            Some(signature.to_string()),
        )]
    };
    let (value, extra) = match (func, args.as_slice()) {
        (AggFunc::Count, []) => (None, None),
        (AggFunc::Count, [x]) => (Some(x), None),
        (AggFunc::Count, _) => return Err(arity_error("no argument or one")),
        (AggFunc::Percentile, [x, q]) => (Some(x), Some(q)),
        (AggFunc::Percentile, _) => return Err(arity_error("two arguments: a value and a quantile")),
        (AggFunc::Collect, [x]) => (Some(x), None),
        (AggFunc::Collect, [x, n]) => (Some(x), Some(n)),
        (AggFunc::Collect, _) => return Err(arity_error("a value and an optional limit")),
        (_, [x]) => (Some(x), None),
        (_, _) => return Err(arity_error("one argument")),
    };
    let arg = match value {
        Some(x) => Some(check(x, record, locate)?),
        None => None,
    };
    let (quantile, limit) = match (func, extra) {
        (AggFunc::Percentile, Some(q)) => (Some(quantile_literal(q, locate)?), None),
        (AggFunc::Median, _) => (Some(0.5), None),
        (AggFunc::Collect, Some(n)) => (None, Some(limit_literal(n, locate)?)),
        (AggFunc::Collect, None) => (None, Some(DEFAULT_COLLECT_LIMIT)),
        _ => (None, None),
    };
    let ty = match &arg {
        None => Type::I64,
        Some(a) => result_type(func, a, signature, locate)?,
    };
    Ok(TAggregate {
        func,
        arg,
        quantile,
        limit,
        ty,
    })
}

/// The output type of `func` over `arg`, or a diagnostic at the argument.
fn result_type(
    func: AggFunc,
    arg: &TExpr,
    signature: &str,
    locate: &dyn Fn(&ExprSpan) -> Span,
) -> Result<Type, Vec<SpecError>> {
    let (base, optional) = match &arg.ty {
        Type::Optional(inner) => ((**inner).clone(), true),
        other => (other.clone(), false),
    };
    let opt = |t: Type, o: bool| if o { Type::Optional(Box::new(t)) } else { t };
    let mismatch = |needs: &str| {
        vec![SpecError::type_mismatch(
            format!("`{}` needs {needs}, found {}", func.name(), arg.ty),
            format!("this is {}", arg.ty),
            &locate(&arg.span),
            Some(signature.to_string()),
        )]
    };
    let numeric = base.is_numeric();
    let hashable = matches!(
        base,
        Type::String | Type::I64 | Type::U64 | Type::F64 | Type::Bool | Type::Timestamp
    );
    Ok(match func {
        AggFunc::Count | AggFunc::CountDistinct | AggFunc::ApproxCountDistinct
            if hashable || func == AggFunc::Count =>
        {
            Type::I64
        }
        AggFunc::CountDistinct | AggFunc::ApproxCountDistinct => {
            return Err(mismatch("a string, number, bool or timestamp"))
        }
        AggFunc::Sum if numeric => base,
        // These skip NaN, so over `f64` values that are all NaN they have no value: null.
        AggFunc::Min | AggFunc::Max if numeric || matches!(base, Type::String | Type::Timestamp | Type::Bool) => {
            let nan_only = base == Type::F64;
            opt(base, optional || nan_only)
        }
        AggFunc::Min | AggFunc::Max => return Err(mismatch("a number, string, timestamp or bool")),
        AggFunc::Percentile | AggFunc::Median if numeric => opt(Type::F64, optional || base == Type::F64),
        AggFunc::Avg | AggFunc::Variance | AggFunc::Stddev if numeric => opt(Type::F64, optional),
        AggFunc::VarianceSample | AggFunc::StddevSample if numeric => opt(Type::F64, true),
        AggFunc::First | AggFunc::Last => opt(base, optional),
        AggFunc::Collect => Type::List(Box::new(base)),
        _ => return Err(mismatch("a number")),
    })
}

fn quantile_literal(e: &Expr, locate: &dyn Fn(&ExprSpan) -> Span) -> Result<f64, Vec<SpecError>> {
    let q = match &e.kind {
        ExprKind::Float(f) => Some(*f),
        ExprKind::Int(i) => Some(*i as f64),
        _ => None,
    };
    match q {
        Some(q) if (0.0..=1.0).contains(&q) => Ok(q),
        _ => Err(vec![SpecError::type_mismatch(
            "the quantile must be a number literal from 0.0 to 1.0",
            "not a quantile",
            &locate(&e.span),
            Some("`percentile(latency_ms, 0.95)` is the 95th percentile".into()),
        )]),
    }
}

fn limit_literal(e: &Expr, locate: &dyn Fn(&ExprSpan) -> Span) -> Result<u64, Vec<SpecError>> {
    match &e.kind {
        ExprKind::Int(n) if (1..=1_000_000).contains(n) => Ok(*n),
        _ => Err(vec![SpecError::type_mismatch(
            "the limit of `collect` must be an integer literal from 1 to 1000000",
            "not a limit",
            &locate(&e.span),
            Some("`collect(url, 10)` keeps the first 10 values".into()),
        )]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use crate::types::{Field, TsRepr};

    fn result(text: &str) -> Type {
        let f = |name: &str, ty| Field::new(name, ty, TsRepr::Millis);
        let optional = Type::Optional(Box::new(Type::F64));
        let record = RecordType::new(
            "Reading".into(),
            "schema `reading`".into(),
            vec![f("x", Type::F64), f("n", Type::I64), f("h", optional)],
        );
        check_aggregate(&parse(text).expect("parses"), &record, &|s| s.clone())
            .expect("checks")
            .ty
    }

    /// `min`, `max`, `percentile` and `median` skip NaN, so over `f64` values they may
    /// have none: their result is optional, written as null (once it was 0.0).
    #[test]
    fn aggregates_that_skip_nan_are_optional_over_floats() {
        let optional = Type::Optional(Box::new(Type::F64));
        for text in [
            "min(x)",
            "max(x)",
            "median(x)",
            "percentile(x, 0.9)",
            "max(h)",
            "median(h)",
        ] {
            assert_eq!(result(text), optional, "{text}");
        }
        assert_eq!(result("max(n)"), Type::I64);
        assert_eq!(result("median(n)"), Type::F64);
        assert_eq!(result("percentile(n, 0.5)"), Type::F64);
        assert_eq!(result("avg(x)"), Type::F64);
        assert_eq!(result("first(x)"), Type::F64);
    }

    /// docs/language.md lists exactly the aggregates the checker knows.
    #[test]
    fn language_reference_lists_every_aggregate() {
        let mut known = names();
        known.sort();
        assert_eq!(crate::expr::documented_names("## Aggregates"), known);
    }
}
