//! Patterns: steps, their conditions and quantifiers, `within`, the absence, and the
//! `select` that makes an output record of a match.

use std::rc::Rc;

use super::aggregation::{keys, late_drop_ok, results_on_error_ok};
use super::transforms::{
    expression, key_field, key_ref_name, mapped_fields, mapped_record, read_fields, read_key_instead, without_field,
};
use super::Cx;
use crate::diagnostics::SpecError;
use crate::expr::TExpr;
use crate::ir::{IrPattern, IrStep};
use crate::spec::patterns::{Contiguity, PatternSpec, StepDetail};
use crate::spec::transforms::ExprText;
use crate::spec::windows::{LatePolicy, OnFull};
use crate::spec::{OnError, OrderedMap};
use crate::types::{Field, RecordType, TsRepr, Type};

/// Steps a pattern may have (the matcher keeps one bit per step, and one for the absence).
const MAX_STEPS: usize = 63;
/// Partial matches kept per key when the spec does not say.
const DEFAULT_MAX_PARTIAL: u64 = 1000;

pub fn pattern(
    name: &str,
    spec: &PatternSpec,
    input: &Rc<RecordType>,
    late_read: bool,
    cx: &mut Cx,
) -> Option<IrPattern> {
    let path = |field: &'static str| ["patterns", name, field];
    let (mut ok, _, key) = keys("patterns", name, spec.key.as_ref(), input, cx);
    let steps = steps(name, spec, input, cx);
    ok &= steps.is_some();
    let within = match &spec.within {
        Some(text) => {
            let ms = cx.duration(&path("within"), text, true);
            ok &= ms.is_some();
            ms
        }
        None => None,
    };
    let absence = match &spec.not_followed_by {
        None => None,
        Some(a) => {
            let condition = condition(a.condition.as_ref(), &["patterns", name, "not_followed_by"], input, cx);
            let ms = match &a.within {
                Some(text) => cx.duration(&["patterns", name, "not_followed_by", "within"], text, true),
                None => {
                    let at = cx.key(&["patterns", name, "not_followed_by"]);
                    cx.error(SpecError::missing_field(
                        "within",
                        &format!("`not_followed_by` of pattern `{name}`"),
                        &at,
                        Some("say how long the event must stay away: `within: 5m`".into()),
                    ));
                    None
                }
            };
            ok &= condition.is_some() && ms.is_some();
            condition.zip(ms)
        }
    };
    for (field, value) in [
        ("max_partial_matches", spec.max_partial_matches),
        ("max_keys", spec.max_keys),
    ] {
        if value == Some(0) {
            let at = cx.value(&path(field));
            cx.error(SpecError::invalid_value(
                field,
                "must be at least 1",
                &at,
                Some("leave it out for the default".into()),
            ));
            ok = false;
        }
    }
    ok &= results_on_error_ok("patterns", name, spec.on_error, cx);
    ok &= late_drop_ok("patterns", name, spec.late, late_read, cx);
    let steps = steps?;
    let entries = select_entries(name, spec, &steps, cx)?;
    // The match record, first with whole events to find the fields `select` reads;
    // then with only those, which is all the pattern keeps of a record.
    let whole = matched_record(name, &steps, input, false, cx);
    let (_, exprs) = mapped_fields("patterns", name, "select", entries, &whole, cx)?;
    let step_names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    let held = read_fields(name, &step_names, input, &exprs, "Held", cx);
    let matched = matched_record(name, &steps, &held, true, cx);
    let (output, mut select) = mapped_record("patterns", name, "select", entries, &matched, cx)?;
    if !ok {
        return None;
    }
    let match_ref = cx.names.type_name("", name, "MatchRef");
    let once = hold_key_once(&key, &steps, input, held, matched, &mut select);
    let (held, matched, keys_held_once) = (once.held, once.matched, once.keys);
    let key_ref = (!keys_held_once.is_empty()).then(|| key_ref_name(&matched));
    Some(IrPattern {
        pattern_type: cx.names.type_name("", name, "Pattern"),
        key,
        steps,
        within,
        absence,
        max_partial: spec.max_partial_matches.unwrap_or(DEFAULT_MAX_PARTIAL),
        held,
        matched,
        output,
        select,
        match_ref,
        keys_held_once,
        key_ref,
        max_keys: spec.max_keys,
        on_full: spec.on_full.unwrap_or(OnFull::DeadLetter),
        on_error: spec.on_error.unwrap_or(OnError::DeadLetter),
        drop_late: spec.late == Some(LatePolicy::Drop),
    })
}

/// The absence's condition (`not_followed_by: { where: ... }`): present, and a bool.
fn condition(text: Option<&ExprText>, path: &[&str], input: &RecordType, cx: &mut Cx) -> Option<TExpr> {
    let Some(text) = text else {
        let at = cx.key(path);
        cx.error(SpecError::missing_field(
            "where",
            "`not_followed_by`",
            &at,
            Some("the event that must not come: `where: event == \"confirm\"`".into()),
        ));
        return None;
    };
    let mut at = path.to_vec();
    at.push("where");
    bool_expression(text, &at, input, cx)
}

fn steps(name: &str, spec: &PatternSpec, input: &RecordType, cx: &mut Cx) -> Option<Vec<IrStep>> {
    let Some(entries) = spec.steps.as_ref().filter(|s| !s.0.is_empty()) else {
        let at = cx.key(&["patterns", name]);
        cx.error(SpecError::missing_field(
            "steps",
            &format!("pattern `{name}`"),
            &at,
            Some(
                "the events to match, in order: `steps: { login: 'event == \"login\"', buy: 'event == \"buy\"' }`"
                    .into(),
            ),
        ));
        return None;
    };
    if entries.0.len() > MAX_STEPS {
        let at = cx.key(&["patterns", name, "steps"]);
        cx.error(SpecError::invalid_value(
            "steps",
            format!("{} steps; a pattern has at most {MAX_STEPS}", entries.0.len()),
            &at,
            Some("split it into patterns that feed each other".into()),
        ));
        return None;
    }
    let mut ok = true;
    let mut steps = Vec::new();
    let last = entries.0.len() - 1;
    for (i, (step, spec)) in entries.0.iter().enumerate() {
        let path = ["patterns", name, "steps", step.as_str()];
        if !crate::spec::is_valid_field_name(step) {
            let at = cx.key(&path);
            cx.error(SpecError::invalid_name(step, &at));
            ok = false;
            continue;
        }
        let detail = spec.detail();
        let condition = step_condition(&detail, &path, spec, input, cx);
        let quantity = quantity(&detail, &path, i == 0, i == last, cx);
        let (Some(condition), Some((min, max))) = (condition, quantity) else {
            ok = false;
            continue;
        };
        steps.push(IrStep {
            name: step.clone(),
            condition,
            min,
            max,
            strict: detail.contiguity == Some(Contiguity::Next),
        });
    }
    ok.then_some(steps)
}

/// The condition of a step written as `name: condition` or `name: { where: ... }`.
fn step_condition(
    detail: &StepDetail,
    path: &[&str],
    spec: &crate::spec::patterns::StepSpec,
    input: &RecordType,
    cx: &mut Cx,
) -> Option<TExpr> {
    let Some(text) = &detail.condition else {
        let at = cx.key(path);
        cx.error(SpecError::missing_field(
            "where",
            &format!("step `{}`", path[3]),
            &at,
            Some("the condition an event must meet: `where: event == \"login\"`".into()),
        ));
        return None;
    };
    let mut at = path.to_vec();
    if matches!(spec, crate::spec::patterns::StepSpec::Full(_)) {
        at.push("where");
    }
    bool_expression(text, &at, input, cx)
}

fn bool_expression(text: &ExprText, at: &[&str], input: &RecordType, cx: &mut Cx) -> Option<TExpr> {
    let e = expression(text, input, at, cx)?;
    if !matches!(e.ty, Type::Bool) {
        let span = cx.expr_locator(at, &text.0)(&e.span);
        cx.error(SpecError::type_mismatch(
            format!("a condition must be a bool, found {}", e.ty),
            format!("this is {}", e.ty),
            &span,
            Some("compare it: `event == \"login\"`, `amount > 0`".into()),
        ));
        return None;
    }
    Some(e)
}

/// `(min, max)` events of a step, from `times`, `one_or_more` or `optional`.
fn quantity(detail: &StepDetail, path: &[&str], first: bool, last: bool, cx: &mut Cx) -> Option<(u32, u32)> {
    let given: Vec<&str> = [
        ("times", detail.times.is_some()),
        ("one_or_more", detail.one_or_more.is_some()),
        ("optional", detail.optional == Some(true)),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    let field_at = |cx: &mut Cx, field: &str| {
        let mut p = path.to_vec();
        p.push(field);
        cx.value(&p)
    };
    if given.len() > 1 {
        let at = field_at(cx, given[1]);
        cx.error(SpecError::invalid_value(
            given[1],
            format!("a step is `{}` or `{}`, not both", given[0], given[1]),
            &at,
            Some("keep one of `times`, `one_or_more` and `optional`".into()),
        ));
        return None;
    }
    let bound = |cx: &mut Cx, field: &'static str, n: u64| -> Option<u32> {
        match u32::try_from(n) {
            Ok(n) if (1..=10_000).contains(&n) => Some(n),
            _ => {
                let at = field_at(cx, field);
                cx.error(SpecError::invalid_value(
                    field,
                    format!("{n} events; a step takes 1 to 10000"),
                    &at,
                    Some("a step's events are held until the match ends: keep the count small".into()),
                ));
                None
            }
        }
    };
    let (min, max) = match (detail.times, detail.one_or_more, detail.optional == Some(true)) {
        (Some(n), _, _) => {
            let n = bound(cx, "times", n)?;
            (n, n)
        }
        (_, Some(n), _) => (1, bound(cx, "one_or_more", n)?),
        (_, _, true) => (0, 1),
        _ => (1, 1),
    };
    let problem = if first && min == 0 {
        Some((
            "optional",
            "the first step cannot be optional: every match starts with it",
            "remove `optional`: a match starts at the first step that must happen",
        ))
    } else if last && min == 0 {
        Some((
            "optional",
            "the last step cannot be optional: a match ends with it",
            "remove `optional`; for an event that must not come, use `not_followed_by`",
        ))
    } else if last && detail.one_or_more.is_some() {
        Some((
            "one_or_more",
            "a match ends at its last step's first event, so `one_or_more` there would take one",
            "give the step a fixed count (`times: 3`), or add a step after it",
        ))
    } else {
        None
    };
    if let Some((field, message, help)) = problem {
        let at = field_at(cx, field);
        cx.error(SpecError::invalid_value(field, message, &at, Some(help.into())));
        return None;
    }
    Some((min, max))
}

/// The output record: one field per `select` entry, checked against the match's record.
/// The `select` entries, or a diagnostic for their absence.
fn select_entries<'a>(
    name: &str,
    spec: &'a PatternSpec,
    steps: &[IrStep],
    cx: &mut Cx,
) -> Option<&'a OrderedMap<ExprText>> {
    let entries = spec.select.as_ref().filter(|s| !s.0.is_empty());
    if entries.is_none() {
        let at = cx.key(&["patterns", name]);
        let first = steps.first().map_or("login", |s| s.name.as_str());
        cx.error(SpecError::missing_field(
            "select",
            &format!("pattern `{name}`"),
            &at,
            Some(format!(
                "what a match gives, from its steps' events: `select: {{ at: {first}.ts }}`"
            )),
        ));
    }
    entries
}

/// The records a pattern holds and the match made of them, once the key's field is held
/// only as the key.
struct KeyHeldOnce {
    held: Rc<RecordType>,
    matched: Rc<RecordType>,
    keys: Vec<(String, String)>,
}

/// A pattern whose key is a string field that `select` reads (`key: user_id`,
/// `login.user_id`) holds it once, as the key, instead of a copy in each record: the
/// field leaves the held record, and `select` reads the key instead. Only when the held
/// record is a cut of the input's (`select` does not read a whole step), and `select`
/// reads the field through steps that are in every match (of an optional step, it is
/// null when the step is).
fn hold_key_once(
    key: &[TExpr],
    steps: &[IrStep],
    input: &Rc<RecordType>,
    held: Rc<RecordType>,
    matched: Rc<RecordType>,
    select: &mut [TExpr],
) -> KeyHeldOnce {
    let unchanged = |held, matched| KeyHeldOnce {
        held,
        matched,
        keys: Vec::new(),
    };
    let ([key], false) = (key, Rc::ptr_eq(&held, input)) else {
        return unchanged(held, matched);
    };
    let Some(at) = key_field(key).and_then(|f| held.fields.iter().position(|h| h.name == f)) else {
        return unchanged(held, matched);
    };
    let field = &held.fields[at].name;
    let mut through_optional = false;
    for e in select.iter() {
        e.for_each_field(&mut |path| {
            if let [step, read] = path {
                let optional = steps.iter().any(|s| &s.name == step && s.min == 0);
                through_optional |= optional && read == field;
            }
        });
    }
    if through_optional {
        return unchanged(held, matched);
    }
    let key_ref = key_ref_name(&matched);
    for step in &matched.fields {
        read_key_instead(select, &step.ident, &held.fields[at].ident, &key_ref);
    }
    let keys = matched.fields.iter().map(|s| (s.name.clone(), field.clone())).collect();
    let kept = without_field(&held, at);
    let fields = matched
        .fields
        .iter()
        .map(|f| {
            let mut f = f.clone();
            f.ty = match f.ty {
                Type::Optional(_) => Type::Optional(Box::new(Type::Record(kept.clone()))),
                _ => Type::Record(kept.clone()),
            };
            f
        })
        .collect();
    let matched = Rc::new(RecordType::new(
        matched.rust_name.clone(),
        matched.display.clone(),
        fields,
    ));
    KeyHeldOnce {
        held: kept,
        matched,
        keys,
    }
}

/// A match as a record: one field per step holding its (last) event, a `held` record
/// (optional for an optional step). Not `named`: only to check `select` against.
fn matched_record(name: &str, steps: &[IrStep], held: &Rc<RecordType>, named: bool, cx: &mut Cx) -> Rc<RecordType> {
    let fields = steps
        .iter()
        .map(|s| {
            // An optional step's event is null when the match skipped it.
            let event = Type::Record(held.clone());
            let ty = if s.min == 0 {
                Type::Optional(Box::new(event))
            } else {
                event
            };
            Field::new(s.name.clone(), ty, TsRepr::Millis)
        })
        .collect();
    let rust_name = match named {
        true => cx.names.type_name("", name, "Match"),
        false => String::new(),
    };
    Rc::new(RecordType::new(rust_name, format!("steps of `{name}`"), fields))
}
