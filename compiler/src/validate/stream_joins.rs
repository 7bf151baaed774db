//! Joins of two streams: each side's key (of one type, or a diagnostic at both), the
//! names the sides' records take, the interval or window, the kind (which sides are
//! outer), late records, and the `select` over the joined record.

use std::rc::Rc;

use super::aggregation::{late_drop_ok, results_on_error_ok};
use super::transforms::{
    expression, key_field, key_ref_name, mapped_fields, mapped_record, read_fields, read_key_instead, without_field,
};
use super::windows;
use super::Cx;
use crate::diagnostics::SpecError;
use crate::expr::TExpr;
use crate::ir::{IrJoinBounds, IrStreamJoin, WINDOW_FIELDS};
use crate::spec::joins::{JoinKind, JoinSpec, SideSpec};
use crate::spec::windows::LatePolicy;
use crate::spec::{Inputs, OnError};
use crate::types::{Field, RecordType, TsRepr, Type};

const BOUNDS_HELP: &str =
    "give one of `interval: { from: 0s, to: 1h }`, `tumbling: 1h` or `hopping: { size: 1h, slide: 10m }`";

/// Options of a lookup join that a join of two streams does not take.
const LOOKUP_ONLY: &[&str] = &["input", "key", "lookup", "missing"];

/// Check a join of two streams whose sides carry `left` and `right` records.
/// `late_read`: something reads `<name>.late`.
pub fn stream_join(
    name: &str,
    spec: &JoinSpec,
    left: &Rc<RecordType>,
    right: &Rc<RecordType>,
    late_read: bool,
    cx: &mut Cx,
) -> Option<IrStreamJoin> {
    let mut ok = true;
    let given = [
        spec.input.is_some(),
        spec.key.is_some(),
        spec.lookup.is_some(),
        spec.missing.is_some(),
    ];
    for (option, _) in LOOKUP_ONLY.iter().zip(given).filter(|(_, present)| *present) {
        let at = cx.key(&["joins", name, option]);
        cx.error(SpecError::invalid_value(
            *option,
            "a join of two streams takes its inputs and keys in `left:` and `right:`",
            &at,
            Some(format!(
                "remove `{option}:`; a lookup (`lookup:`, `input:`, `key:`) has no `left:` or `right:`"
            )),
        ));
        ok = false;
    }
    let bounds = bounds(name, spec, cx);
    // A window join's record has the window's bounds as fields of its own.
    let reserved: &[&str] = match bounds {
        Some(IrJoinBounds::Windows { .. }) => WINDOW_FIELDS,
        _ => &[],
    };
    let sides = [
        ("left", spec.left.as_ref(), left),
        ("right", spec.right.as_ref(), right),
    ];
    let mut keys: Vec<Option<TExpr>> = Vec::new();
    let mut names: Vec<Option<String>> = Vec::new();
    for (side, side_spec, record) in sides {
        let Some(side_spec) = side_spec else {
            // Its missing `input:` is already reported by the graph.
            keys.push(None);
            names.push(None);
            continue;
        };
        keys.push(side_key(name, side, side_spec, record, cx));
        names.push(side_name(name, side, side_spec, reserved, cx));
    }
    let (left_key, right_key) = (keys.remove(0), keys.remove(0));
    ok &= same_key_type(name, spec, left_key.as_ref(), right_key.as_ref(), cx);
    let (left_name, right_name) = (names.remove(0), names.remove(0));
    if let (Some(l), Some(r)) = (&left_name, &right_name) {
        if l == r {
            let at = cx.value(&["joins", name, "right", "as"]);
            cx.error(SpecError::invalid_value(
                "as",
                format!("both sides are called `{l}`"),
                &at,
                Some("name the sides apart: `right: { input: ..., as: shipment }`".into()),
            ));
            ok = false;
        }
    }
    let kind = spec.kind.unwrap_or(JoinKind::Inner);
    let (outer_left, outer_right) = match kind {
        JoinKind::Inner => (false, false),
        JoinKind::Left => (true, false),
        JoinKind::Right => (false, true),
        JoinKind::Full => (true, true),
    };
    ok &= late_drop_ok("joins", name, spec.late, late_read, cx);
    ok &= results_on_error_ok("joins", name, spec.on_error, cx);
    let (left_key, right_key, left_name, right_name, bounds) =
        (left_key?, right_key?, left_name?, right_name?, bounds?);
    if !ok {
        return None;
    }
    // The joined record, first with the sides' whole records; with a `select`, again
    // with only the fields it reads, which is all a join then holds of a record.
    let outer = (outer_left, outer_right);
    let whole = [(&left_name, left), (&right_name, right)];
    let mut keys_held_once = Vec::new();
    let (pair, select, held) = match &spec.select {
        None => (
            pair_record(name, whole, outer, reserved, true, cx),
            None,
            [left.clone(), right.clone()],
        ),
        Some(entries) => {
            let whole = pair_record(name, whole, outer, reserved, false, cx);
            let (_, exprs) = mapped_fields("joins", name, "select", entries, &whole, cx)?;
            let held = [(&left_name, left, "Left"), (&right_name, right, "Right")]
                .map(|(side, record, suffix)| read_fields(name, &[side.as_str()], record, &exprs, suffix, cx));
            let sides = [(&left_name, &held[0]), (&right_name, &held[1])];
            let pair = pair_record(name, sides, outer, reserved, true, cx);
            let select = mapped_record("joins", name, "select", entries, &pair, cx)?;
            let sides = [(&left_key, !outer_right, left), (&right_key, !outer_left, right)];
            let once = hold_keys_once(pair, select, held, sides);
            keys_held_once = once.keys;
            (once.pair, Some(once.select), once.held)
        }
    };
    let late = late_read.then(|| {
        Rc::new(RecordType::new(
            cx.names.type_name("", name, "Late"),
            format!("late records of `{name}`"),
            vec![
                Field::new(&left_name, side_type(left, true), TsRepr::Millis),
                Field::new(&right_name, side_type(right, true), TsRepr::Millis),
            ],
        ))
    });
    let output = select.as_ref().map_or_else(|| pair.clone(), |(r, _)| r.clone());
    let pair_ref = select.is_some().then(|| cx.names.type_name("", name, "PairRef"));
    let key_ref = (!keys_held_once.is_empty()).then(|| key_ref_name(&pair));
    let [left_held, right_held] = held;
    Some(IrStreamJoin {
        join_type: cx.names.type_name("", name, "Join"),
        right: right.clone(),
        left_held,
        right_held,
        left_key,
        right_key,
        bounds,
        outer_left,
        outer_right,
        pair,
        late,
        select,
        pair_ref,
        key_ref,
        keys_held_once,
        output,
        on_error: spec.on_error.unwrap_or(OnError::DeadLetter),
        drop_late: spec.late == Some(LatePolicy::Drop),
    })
}

/// The joined record, `select` over it and the records held once the fields that are
/// a side's key are held only as the key.
struct KeysHeldOnce {
    pair: Rc<RecordType>,
    select: (Rc<RecordType>, Vec<TExpr>),
    held: [Rc<RecordType>; 2],
    keys: Vec<(String, String)>,
}

/// A side whose key is a string field of its records that `select` reads (`key:
/// order_id`, `order.order_id`) holds it once, as the join's key, instead of a copy in
/// each record: the field leaves the side's held record, and `select` reads the key
/// instead (a `<Name>PairRef` field named by [`key_ref_name`]). Only a side that is
/// always in the pair (not optional: the key is there when the side is not), and whose
/// held record is a cut of its input's (not its whole record, which `select` may read
/// whole).
fn hold_keys_once(
    pair: Rc<RecordType>,
    (output, mut exprs): (Rc<RecordType>, Vec<TExpr>),
    held: [Rc<RecordType>; 2],
    sides: [(&TExpr, bool, &Rc<RecordType>); 2],
) -> KeysHeldOnce {
    let key_ref = key_ref_name(&pair);
    let mut keys = Vec::new();
    let mut fields = pair.fields.clone();
    let held = [0, 1].map(|i| {
        let (key, always, input) = sides[i];
        let record = &held[i];
        let Some(key_field) = key_field(key) else {
            return record.clone();
        };
        let at = record.fields.iter().position(|f| f.name == key_field);
        let Some(at) = at.filter(|_| always && !Rc::ptr_eq(record, input)) else {
            return record.clone();
        };
        read_key_instead(&mut exprs, &fields[i].ident, &record.fields[at].ident, &key_ref);
        keys.push((fields[i].name.clone(), key_field.to_string()));
        let kept = without_field(record, at);
        fields[i].ty = Type::Record(kept.clone());
        kept
    });
    let pair = match keys.is_empty() {
        true => pair,
        false => Rc::new(RecordType::new(pair.rust_name.clone(), pair.display.clone(), fields)),
    };
    KeysHeldOnce {
        pair,
        select: (output, exprs),
        held,
        keys,
    }
}

/// A side's record in the joined record: optional when the other side is outer.
fn side_type(record: &Rc<RecordType>, optional: bool) -> Type {
    let ty = Type::Record(record.clone());
    if optional {
        Type::Optional(Box::new(ty))
    } else {
        ty
    }
}

/// The joined record: the left side's record (optional when the right side is outer),
/// the right side's, then the `reserved` fields (a window join's bounds). Not `named`: a
/// record only to check `select` against, never generated.
fn pair_record(
    name: &str,
    sides: [(&String, &Rc<RecordType>); 2],
    (outer_left, outer_right): (bool, bool),
    reserved: &[&str],
    named: bool,
    cx: &mut Cx,
) -> Rc<RecordType> {
    let [(left_name, left), (right_name, right)] = sides;
    let mut fields = vec![
        Field::new(left_name, side_type(left, outer_right), TsRepr::Millis),
        Field::new(right_name, side_type(right, outer_left), TsRepr::Millis),
    ];
    for bound in reserved {
        fields.push(Field::new(*bound, Type::Timestamp, TsRepr::Millis));
    }
    let rust_name = match named {
        true => cx.names.type_name("", name, "Pair"),
        false => String::new(),
    };
    Rc::new(RecordType::new(rust_name, format!("pairs of `{name}`"), fields))
}

/// A side's key: a string, integer, bool or timestamp, not null.
fn side_key(name: &str, side: &str, spec: &SideSpec, record: &RecordType, cx: &mut Cx) -> Option<TExpr> {
    let Some(text) = &spec.key else {
        let at = cx.key(&["joins", name, side]);
        cx.error(SpecError::missing_field(
            "key",
            &format!("the {side} side of join `{name}`"),
            &at,
            Some("what the two sides are joined on: `key: order_id`".into()),
        ));
        return None;
    };
    let path = ["joins", name, side, "key"];
    let e = expression(text, record, &path, cx)?;
    if !matches!(
        e.ty,
        Type::String | Type::I64 | Type::U64 | Type::Bool | Type::Timestamp
    ) {
        let at = cx.expr_locator(&path, &text.0)(&e.span);
        cx.error(SpecError::type_mismatch(
            format!("cannot join on {}", e.ty),
            format!("this is {}", e.ty),
            &at,
            Some(
                "a join key is a string, an integer, a bool or a timestamp; for a value that may be null: `coalesce(x, \"\")`"
                    .into(),
            ),
        ));
        return None;
    }
    Some(e)
}

/// The name a side's record takes in the joined record: `as:`, or its one input's name;
/// not one of the `reserved` fields.
fn side_name(name: &str, side: &str, spec: &SideSpec, reserved: &[&str], cx: &mut Cx) -> Option<String> {
    let (chosen, path) = match (&spec.name, &spec.input) {
        (Some(n), _) => (n.clone(), ["joins", name, side, "as"]),
        (None, Some(Inputs::One(input))) => (input.clone(), ["joins", name, side, "input"]),
        (None, _) => {
            let at = cx.key(&["joins", name, side]);
            cx.error(SpecError::missing_field(
                "as",
                &format!("the {side} side of join `{name}`"),
                &at,
                Some("a side with several inputs needs a name for its records: `as: order`".into()),
            ));
            return None;
        }
    };
    let at = cx.value(&path);
    if !crate::spec::is_valid_field_name(&chosen) {
        cx.error(SpecError::invalid_name(&chosen, &at));
        return None;
    }
    if reserved.contains(&chosen.as_str()) {
        cx.error(SpecError::invalid_value(
            "as",
            format!("a window join's record has a field `{chosen}` of its own"),
            &at,
            Some(format!(
                "name the {side} side's records differently: `as: {side}_record`"
            )),
        ));
        return None;
    }
    Some(chosen)
}

/// The two keys have one type; a mismatch is reported at both.
fn same_key_type(name: &str, spec: &JoinSpec, left: Option<&TExpr>, right: Option<&TExpr>, cx: &mut Cx) -> bool {
    let (Some(left), Some(right)) = (left, right) else {
        return true;
    };
    if left.ty == right.ty {
        return true;
    }
    let text = |s: &Option<SideSpec>| {
        s.as_ref()
            .and_then(|s| s.key.as_ref())
            .map_or(String::new(), |k| k.0.clone())
    };
    for (side, mine, other, other_side) in [("left", left, right, "right"), ("right", right, left, "left")] {
        let at = cx.value(&["joins", name, side, "key"]);
        let other_text = text(if other_side == "left" { &spec.left } else { &spec.right });
        cx.error(SpecError::type_mismatch(
            format!(
                "the {side} key is {}, the {other_side} key (`{other_text}`) is {}",
                mine.ty, other.ty
            ),
            format!("this is {}", mine.ty),
            &at,
            Some("the two sides must have one type: convert one, e.g. with `to_string(...)` or `to_int(...)`".into()),
        ));
    }
    false
}

/// Exactly one of `interval`, `tumbling` and `hopping`.
fn bounds(name: &str, spec: &JoinSpec, cx: &mut Cx) -> Option<IrJoinBounds> {
    let given: Vec<&str> = [
        ("interval", spec.interval.is_some()),
        ("tumbling", spec.tumbling.is_some()),
        ("hopping", spec.hopping.is_some()),
    ]
    .into_iter()
    .filter(|(_, present)| *present)
    .map(|(kind, _)| kind)
    .collect();
    match given.as_slice() {
        [] => {
            let at = cx.key(&["joins", name]);
            cx.error(SpecError::missing_field(
                "interval",
                &format!("join `{name}`"),
                &at,
                Some(BOUNDS_HELP.into()),
            ));
            return None;
        }
        [_, second, ..] => {
            let at = cx.key(&["joins", name, second]);
            cx.error(SpecError::invalid_value(
                *second,
                format!("a join has one bound; `{}` is already given", given[0]),
                &at,
                Some(BOUNDS_HELP.into()),
            ));
            return None;
        }
        [_] => {}
    }
    if let Some(interval) = &spec.interval {
        if let Some(offset) = &spec.offset {
            let at = cx.key(&["joins", name, "offset"]);
            cx.error(SpecError::invalid_value(
                "offset",
                "only windows are aligned, so only they take an offset",
                &at,
                Some(format!("remove `offset: {offset}`")),
            ));
            return None;
        }
        let from = signed_duration(&["joins", name, "interval", "from"], &interval.from, cx);
        let to = signed_duration(&["joins", name, "interval", "to"], &interval.to, cx);
        let (from, to) = (from?, to?);
        if from > to {
            let at = cx.value(&["joins", name, "interval", "to"]);
            cx.error(SpecError::invalid_value(
                "to",
                format!("`to` ({to} ms) is before `from` ({from} ms): no record would join"),
                &at,
                Some(
                    "the right record's time minus the left's runs from `from` to `to`: `{ from: -5m, to: 1h }`".into(),
                ),
            ));
            return None;
        }
        return Some(IrJoinBounds::Interval { from, to });
    }
    let (size, slide) = match (&spec.tumbling, &spec.hopping) {
        (Some(size), _) => {
            let size = cx.duration(&["joins", name, "tumbling"], size, true)?;
            (size, size)
        }
        (None, Some(h)) => windows::hopping("joins", name, h, cx)?,
        (None, None) => return None,
    };
    let offset = match &spec.offset {
        None => 0,
        Some(text) => windows::offset("joins", name, text, size, slide, cx)?,
    };
    Some(IrJoinBounds::Windows { size, slide, offset })
}

/// A duration that may be negative (`-5m`), in ms.
fn signed_duration(path: &[&str], text: &str, cx: &mut Cx) -> Option<i64> {
    match text.trim().strip_prefix('-') {
        Some(rest) => cx.duration(path, rest, false).map(|ms| -ms),
        None => cx.duration(path, text, false),
    }
}
