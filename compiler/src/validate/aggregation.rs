//! What windows and tables share: keys, aggregates, the output record and state limits.

use std::rc::Rc;

use super::transforms::{expression, field_repr};
use super::Cx;
use crate::diagnostics::SpecError;
use crate::expr;
use crate::expr::aggregates::{check_aggregate, AggFunc, TAggregate};
use crate::expr::check::parse_problems;
use crate::expr::TExpr;
use crate::ir::{IrAggregation, UPDATE_FIELD, WINDOW_FIELDS};
use crate::spec::transforms::ExprText;
use crate::spec::windows::{KeySpec, LatePolicy, OnFull};
use crate::spec::{OnError, OrderedMap};
use crate::types::{Field, RecordType, TsRepr, Type};

/// The parts of a window or table spec that [`aggregation`] checks.
pub struct AggregationSpec<'a> {
    pub section: &'static str,
    pub name: &'a str,
    pub key: Option<&'a KeySpec>,
    pub aggregate: Option<&'a OrderedMap<ExprText>>,
    pub max_keys: Option<u64>,
    pub on_full: Option<OnFull>,
    pub on_error: Option<OnError>,
    /// Windows add `window_start` and `window_end` after the keys.
    pub window_bounds: bool,
    /// Windows with `allowed_lateness` add `update: bool` at the end.
    pub update_field: bool,
}

pub fn aggregation(spec: &AggregationSpec, input: &RecordType, cx: &mut Cx) -> Option<IrAggregation> {
    let (section, name) = (spec.section, spec.name);
    let (mut ok, mut fields, key) = keys(section, name, spec.key, input, cx);
    if spec.window_bounds {
        for bound in WINDOW_FIELDS {
            fields.push((Field::new(*bound, Type::Timestamp, TsRepr::Millis), Vec::new()));
        }
    }
    let mut aggregates = Vec::new();
    match spec.aggregate {
        None => {
            let at = cx.key(&[section, name]);
            cx.error(SpecError::missing_field(
                "aggregate",
                &format!("{} `{name}`", section.trim_end_matches('s')),
                &at,
                Some("say what to compute per key: `aggregate: { count: count(), avg_temp: avg(temperature) }`".into()),
            ));
            ok = false;
        }
        Some(entries) => {
            for (field, text) in &entries.0 {
                let path = [section, name, "aggregate", field.as_str()];
                if !crate::spec::is_valid_field_name(field) {
                    let at = cx.key(&path);
                    cx.error(SpecError::invalid_name(field, &at));
                    ok = false;
                    continue;
                }
                let Some(agg) = aggregate(text, input, &path, cx) else {
                    ok = false;
                    continue;
                };
                let keeps_field = matches!(agg.func, AggFunc::Min | AggFunc::Max | AggFunc::First | AggFunc::Last);
                let ts_repr = agg
                    .arg
                    .as_ref()
                    .filter(|_| keeps_field)
                    .and_then(|a| a.as_field())
                    .and_then(|f| field_repr(input, f))
                    .unwrap_or(TsRepr::Millis);
                fields.push((
                    Field::new(field.clone(), agg.ty.clone(), ts_repr),
                    path.iter().map(|s| s.to_string()).collect(),
                ));
                aggregates.push((field.clone(), agg));
            }
        }
    }
    if spec.update_field {
        fields.push((Field::new(UPDATE_FIELD, Type::Bool, TsRepr::Millis), Vec::new()));
    }
    ok &= unique_fields(&fields, spec, cx);
    if spec.max_keys == Some(0) {
        let at = cx.value(&[section, name, "max_keys"]);
        cx.error(SpecError::invalid_value(
            "max_keys",
            "must be at least 1",
            &at,
            Some("leave it out for unbounded state".into()),
        ));
        ok = false;
    }
    ok &= results_on_error_ok(section, name, spec.on_error, cx);
    if !ok {
        return None;
    }
    let output = RecordType::new(
        cx.names.type_name("", name, "Record"),
        format!("output of `{name}`"),
        fields.into_iter().map(|(f, _)| f).collect(),
    );
    Some(IrAggregation {
        acc_type: cx.names.type_name("", name, "Acc"),
        agg_type: cx.names.type_name("", name, "Agg"),
        key,
        aggregates,
        window_bounds: spec.window_bounds,
        update_field: spec.update_field,
        output: Rc::new(output),
        max_keys: spec.max_keys,
        on_full: spec.on_full.unwrap_or(OnFull::DeadLetter),
        on_error: spec.on_error.unwrap_or(OnError::DeadLetter),
        rows_to_own_sinks: false,
    })
}

/// The keys of a window, table or pattern: each checked against `input` and of a type
/// that can be grouped by. Returns whether all were, each key's output field (with its
/// spec path), and its expression.
#[allow(clippy::type_complexity)]
pub fn keys(
    section: &str,
    name: &str,
    key: Option<&KeySpec>,
    input: &RecordType,
    cx: &mut Cx,
) -> (bool, Vec<(Field, Vec<String>)>, Vec<TExpr>) {
    let mut ok = true;
    let mut fields: Vec<(Field, Vec<String>)> = Vec::new();
    let mut exprs = Vec::new();
    for (field, expr, path) in key_entries(section, name, key, cx) {
        let p: Vec<&str> = path.iter().map(String::as_str).collect();
        let Some(e) = expression(&expr, input, &p, cx) else {
            ok = false;
            continue;
        };
        let Some(field) = field.or_else(|| e.as_field().and_then(|f| f.last().cloned())) else {
            let at = cx.value(&p);
            cx.error(SpecError::invalid_value(
                "key",
                "a computed key needs a name",
                &at,
                Some(format!("name it: `key: {{ my_key: {} }}`", expr.0)),
            ));
            ok = false;
            continue;
        };
        if !key_type_ok(&e.ty) {
            let at = cx.expr_locator(&p, &expr.0)(&e.span);
            // The suggestion must itself be a valid key, ready to paste: `round` alone is
            // still an f64, and the quotes keep a `,` from ending the flow mapping's value.
            let text = expr.0.trim().replace('\'', "''");
            let help = if matches!(e.ty, Type::F64) {
                format!("floats are not exact enough to group by: make a whole number, e.g. `key: {{ {field}: 'to_int(round({text}))' }}`")
            } else if e.ty == Type::Optional(Box::new(Type::F64)) {
                format!("floats are not exact enough to group by: make a whole number, e.g. `key: {{ {field}: 'to_int(round(coalesce({text}, 0.0)))' }}`")
            } else {
                "keys are strings, integers, bools or timestamps".to_string()
            };
            cx.error(SpecError::type_mismatch(
                format!("cannot group by {}", e.ty),
                format!("this is {}", e.ty),
                &at,
                Some(help),
            ));
            ok = false;
            continue;
        }
        let ts_repr = e
            .as_field()
            .and_then(|f| field_repr(input, f))
            .unwrap_or(TsRepr::Millis);
        fields.push((Field::new(field, e.ty.clone(), ts_repr), path.clone()));
        exprs.push(e);
    }
    (ok, fields, exprs)
}

/// A keyed operator's `on_error` (what becomes of a result that fails downstream): not
/// `fail`, which belongs to sources.
pub fn results_on_error_ok(section: &str, name: &str, on_error: Option<OnError>, cx: &mut Cx) -> bool {
    if on_error != Some(OnError::Fail) {
        return true;
    }
    let at = cx.value(&[section, name, "on_error"]);
    cx.error(SpecError::invalid_value(
        "on_error",
        "a result that fails further down can go to `dead_letter` or be dropped (`drop`)",
        &at,
        Some("`fail` stops on a bad input record: set it on the source".into()),
    ));
    false
}

/// `late: drop` while something reads `<name>.late` (a window's or a pattern's).
pub fn late_drop_ok(section: &str, name: &str, late: Option<LatePolicy>, late_read: bool, cx: &mut Cx) -> bool {
    if !(late_read && late == Some(LatePolicy::Drop)) {
        return true;
    }
    let at = cx.value(&[section, name, "late"]);
    cx.error(SpecError::invalid_value(
        "late",
        format!("late records are dropped, but something reads `{name}.late`"),
        &at,
        Some(format!("remove `late: drop`, or stop reading `{name}.late`")),
    ));
    false
}

/// (output name if given, expression, spec path) for each key.
fn key_entries(
    section: &str,
    name: &str,
    key: Option<&KeySpec>,
    cx: &mut Cx,
) -> Vec<(Option<String>, ExprText, Vec<String>)> {
    let base = [section, name, "key"].map(str::to_string).to_vec();
    let at = |extra: &str| {
        let mut p = base.clone();
        p.push(extra.to_string());
        p
    };
    match key {
        None => Vec::new(),
        Some(KeySpec::One(e)) => vec![(None, e.clone(), base.clone())],
        Some(KeySpec::Many(list)) => list
            .iter()
            .enumerate()
            .map(|(i, e)| (None, e.clone(), at(&i.to_string())))
            .collect(),
        Some(KeySpec::Named(map)) => map
            .0
            .iter()
            .filter_map(|(field, e)| {
                if crate::spec::is_valid_field_name(field) {
                    Some((Some(field.clone()), e.clone(), at(field)))
                } else {
                    let span = cx.key(&[section, name, "key", field]);
                    cx.error(SpecError::invalid_name(field, &span));
                    None
                }
            })
            .collect(),
    }
}

fn key_type_ok(ty: &Type) -> bool {
    match ty {
        Type::Optional(inner) => key_type_ok(inner),
        Type::String | Type::I64 | Type::U64 | Type::Bool | Type::Timestamp => true,
        Type::F64 | Type::List(_) | Type::Record(_) => false,
    }
}

/// Parse and check one aggregate call held at `path`.
fn aggregate(text: &ExprText, input: &RecordType, path: &[&str], cx: &mut Cx) -> Option<TAggregate> {
    let result = {
        let locate = cx.expr_locator(path, &text.0);
        match expr::parse(&text.0) {
            Err(problems) => Err(parse_problems(problems, &locate)),
            Ok(parsed) => check_aggregate(&parsed, input, &locate),
        }
    };
    match result {
        Ok(agg) => Some(agg),
        Err(errors) => {
            cx.errors.extend(errors);
            None
        }
    }
}

/// Output field names must be unique: keys, window bounds, aggregates and `update`.
fn unique_fields(fields: &[(Field, Vec<String>)], spec: &AggregationSpec, cx: &mut Cx) -> bool {
    let mut ok = true;
    for (i, (field, path)) in fields.iter().enumerate() {
        let Some((_, first_path)) = fields[..i].iter().find(|(f, _)| f.name == field.name) else {
            continue;
        };
        ok = false;
        // Report at the one written in the spec (the later one when both are): the
        // fields a window adds itself have no path, and never clash with each other.
        let (written, added_by_window) = if path.is_empty() {
            (first_path, true)
        } else {
            (path, first_path.is_empty())
        };
        let at = cx.key(&written.iter().map(String::as_str).collect::<Vec<_>>());
        if added_by_window {
            cx.error(SpecError::invalid_value(
                field.name.clone(),
                format!("`{}` is a field the {} adds to its output", field.name, spec.section.trim_end_matches('s')),
                &at,
                Some(format!(
                    "rename it; a window's output has its keys, {}, the aggregates and (with allowed_lateness) `{UPDATE_FIELD}`",
                    WINDOW_FIELDS.join(", ")
                )),
            ));
        } else {
            cx.error(SpecError::invalid_value(
                field.name.clone(),
                format!("the output already has a field `{}`", field.name),
                &at,
                Some("keys and aggregates become the fields of one output record: give each its own name".into()),
            ));
        }
    }
    ok
}
