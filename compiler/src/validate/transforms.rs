//! Transforms: expressions are checked against the input, outputs are inferred.

use std::rc::Rc;

use super::Cx;
use crate::diagnostics::SpecError;
use crate::expr::check::parse_problems;
use crate::expr::{self, TExpr, TKind};
use crate::ir::IrTransform;
use crate::spec::transforms::ExprText;
use crate::spec::{OrderedMap, TransformSpec};
use crate::types::{Field, RecordType, TsRepr, Type};

/// Check a transform's filter and map against its input record.
pub fn transform(name: &str, spec: &TransformSpec, input: &RecordType, cx: &mut Cx) -> Option<IrTransform> {
    if spec.filter.is_none() && spec.map.is_none() && spec.explode.is_none() {
        let at = cx.key(&["transforms", name]);
        cx.error(SpecError::missing_field(
            "filter",
            &format!("transform `{name}`"),
            &at,
            Some("a transform needs `filter:` (keep matching records), `map:` (reshape them), `explode:` (one record per list element), or filter with one of the others".into()),
        ));
        return None;
    }
    if spec.map.is_some() && spec.explode.is_some() {
        let at = cx.key(&["transforms", name, "explode"]);
        cx.error(SpecError::invalid_value(
            "explode",
            "a transform either maps or explodes",
            &at,
            Some("explode in one transform, and map its output in the next".into()),
        ));
        return None;
    }
    let mut ok = true;
    let filter = match &spec.filter {
        None => None,
        Some(text) => {
            let checked = expression(text, input, &["transforms", name, "filter"], cx);
            match checked {
                Some(e) if e.ty == Type::Bool => Some(e),
                Some(e) => {
                    let at = cx.expr_locator(&["transforms", name, "filter"], &text.0)(&e.span);
                    cx.error(SpecError::type_mismatch(
                        format!("a filter must be a bool, found {}", e.ty),
                        format!("this is {}", e.ty),
                        &at,
                        Some("compare something: `temperature > 25.0`".into()),
                    ));
                    ok = false;
                    None
                }
                None => {
                    ok = false;
                    None
                }
            }
        }
    };
    let map = match &spec.map {
        None => None,
        Some(entries) => {
            let map = mapped_record("transforms", name, "map", entries, input, cx);
            ok &= map.is_some();
            map
        }
    };
    let explode = match &spec.explode {
        None => None,
        Some(entries) => {
            let e = explode(name, entries, input, cx);
            ok &= e.is_some();
            e
        }
    };
    ok.then_some(IrTransform { filter, map, explode })
}

/// `explode: { word: split(line, " ") }`: one list expression, one output field.
fn explode(
    name: &str,
    entries: &crate::spec::OrderedMap<ExprText>,
    input: &RecordType,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, TExpr)> {
    let [(field, text)] = entries.0.as_slice() else {
        let at = cx.value(&["transforms", name, "explode"]);
        cx.error(SpecError::invalid_value(
            "explode",
            "expected one field and the list it takes its values from",
            &at,
            Some("`explode: { word: split(line, \" \") }`".into()),
        ));
        return None;
    };
    let path = ["transforms", name, "explode", field.as_str()];
    if !crate::spec::is_valid_field_name(field) {
        let at = cx.key(&path);
        cx.error(SpecError::invalid_name(field, &at));
        return None;
    }
    let e = expression(text, input, &path, cx)?;
    let Type::List(element) = &e.ty else {
        let at = cx.expr_locator(&path, &text.0)(&e.span);
        cx.error(SpecError::type_mismatch(
            format!("explode needs a list, found {}", e.ty),
            format!("this is {}", e.ty),
            &at,
            Some("e.g. `split(line, \" \")` gives a list of strings".into()),
        ));
        return None;
    };
    let record = RecordType::new(
        cx.names.type_name("", name, "Record"),
        format!("output of `{name}`"),
        vec![Field::new(field.clone(), (**element).clone(), TsRepr::Millis)],
    );
    Some((Rc::new(record), e))
}

/// The output record of `map:` (or a pattern's or join's `select:`): one field per entry,
/// of its expression's type (a field copied keeps its timestamp encoding), and the
/// expressions over `input`. `None` when an entry has errors, all of them reported.
pub fn mapped_record(
    section: &str,
    name: &str,
    key: &str,
    entries: &OrderedMap<ExprText>,
    input: &RecordType,
    cx: &mut Cx,
) -> Option<(Rc<RecordType>, Vec<TExpr>)> {
    let (fields, exprs) = mapped_fields(section, name, key, entries, input, cx)?;
    let record = RecordType::new(
        cx.names.type_name("", name, "Record"),
        format!("output of `{name}`"),
        fields,
    );
    Some((Rc::new(record), exprs))
}

/// The fields and expressions of [`mapped_record`], without naming a record.
pub fn mapped_fields(
    section: &str,
    name: &str,
    key: &str,
    entries: &OrderedMap<ExprText>,
    input: &RecordType,
    cx: &mut Cx,
) -> Option<(Vec<Field>, Vec<TExpr>)> {
    let mut ok = true;
    let mut fields = Vec::new();
    let mut exprs = Vec::new();
    for (field, text) in &entries.0 {
        let path = [section, name, key, field.as_str()];
        if !crate::spec::is_valid_field_name(field) {
            let at = cx.key(&path);
            cx.error(SpecError::invalid_name(field, &at));
            ok = false;
            continue;
        }
        let Some(e) = expression(text, input, &path, cx) else {
            ok = false;
            continue;
        };
        let ts_repr = e
            .as_field()
            .and_then(|p| field_repr(input, p))
            .unwrap_or(TsRepr::Millis);
        fields.push(Field::new(field.clone(), e.ty.clone(), ts_repr));
        exprs.push(e);
    }
    ok.then_some((fields, exprs))
}

/// The fields of `record` that `exprs` read where it appears under one of `names` (a
/// join's side, a pattern's steps): the record itself when they read it whole (or all
/// of its fields), else a record (`<name><suffix>`) of those fields only, in their
/// order. What an operator keeps of a record it holds.
pub fn read_fields(
    name: &str,
    names: &[&str],
    record: &Rc<RecordType>,
    exprs: &[TExpr],
    suffix: &str,
    cx: &mut Cx,
) -> Rc<RecordType> {
    let mut read: Vec<&str> = Vec::new();
    let mut whole = false;
    for e in exprs {
        e.for_each_field(&mut |path| match path {
            [first] if names.contains(&first.as_str()) => whole = true,
            [first, field, ..] if names.contains(&first.as_str()) => read.push(field),
            _ => {}
        });
    }
    let fields: Vec<Field> = record
        .fields
        .iter()
        .filter(|f| read.contains(&f.name.as_str()))
        .cloned()
        .collect();
    if whole || fields.len() == record.fields.len() {
        return record.clone();
    }
    Rc::new(RecordType::new(
        cx.names.type_name("", name, suffix),
        format!("what `{name}` holds of {}", record.display),
        fields,
    ))
}

/// The field a key is, when it is a string field of the record itself (`key:
/// order_id`): a stateful operator may hold that field once, as the key, instead of in
/// every record it holds.
pub fn key_field(key: &TExpr) -> Option<&str> {
    match &key.kind {
        TKind::Field(path) if path.names.len() == 1 && key.ty == Type::String => Some(&path.names[0]),
        _ => None,
    }
}

/// `record` without its field `at`, under the same struct name. The other fields keep
/// their identifiers, which the expressions checked against `record` use (made afresh,
/// `self` could take the `self_` of a field removed).
pub fn without_field(record: &RecordType, at: usize) -> Rc<RecordType> {
    let mut fields = record.fields.clone();
    fields.remove(at);
    Rc::new(RecordType {
        rust_name: record.rust_name.clone(),
        display: record.display.clone(),
        fields,
    })
}

/// Makes `exprs` read the key, the `key_ref` field of the record they read, where they
/// read `field` of its record `holder` (identifiers).
pub fn read_key_instead(exprs: &mut [TExpr], holder: &str, field: &str, key_ref: &str) {
    for e in exprs {
        e.for_each_field_mut(&mut |path| {
            if path.idents.len() == 2 && path.idents[0] == holder && path.idents[1] == field {
                path.idents = vec![key_ref.to_string()];
            }
        });
    }
}

/// The field that holds the key in a record of borrowed parts (`<Name>PairRef`,
/// `<Name>MatchRef`) made from `record`: `key`, or with underscores added until no
/// field of `record` has that identifier.
pub fn key_ref_name(record: &RecordType) -> String {
    let mut name = "key".to_string();
    while record.fields.iter().any(|f| f.ident == name) {
        name.push('_');
    }
    name
}

/// Parse and check one expression held at `path`.
pub fn expression(text: &ExprText, input: &RecordType, path: &[&str], cx: &mut Cx) -> Option<TExpr> {
    let parsed = {
        let locate = cx.expr_locator(path, &text.0);
        expr::parse(&text.0).map_err(|problems| parse_problems(problems, &locate))
    };
    let parsed = match parsed {
        Ok(p) => p,
        Err(errors) => {
            cx.errors.extend(errors);
            return None;
        }
    };
    let checked = {
        let locate = cx.expr_locator(path, &text.0);
        expr::check(&parsed, input, &locate)
    };
    match checked {
        Ok(e) => {
            if uses_regex(&e) {
                cx.features.insert("regex");
            }
            Some(e)
        }
        Err(errors) => {
            cx.errors.extend(errors);
            None
        }
    }
}

pub(crate) fn uses_regex(e: &TExpr) -> bool {
    use crate::expr::functions::Func;
    use crate::expr::TKind::*;
    match &e.kind {
        Call(Func::Matches, _) => true,
        Call(_, args) => args.iter().any(uses_regex),
        Neg(a) | Not(a) => uses_regex(a),
        Arith(_, a, b) | Concat(a, b) | Compare(_, a, b) | Logic(_, a, b) | Index(a, b) => {
            uses_regex(a) || uses_regex(b)
        }
        If(a, b, c) => uses_regex(a) || uses_regex(b) || uses_regex(c),
        Str(_) | I64(_) | U64(_) | F64(_) | Bool(_) | Field(_) => false,
    }
}

/// The timestamp encoding of the field at `path`, so a copied field keeps it.
pub fn field_repr(record: &RecordType, path: &[String]) -> Option<TsRepr> {
    let (first, rest) = path.split_first()?;
    let field = record.field(first)?;
    if rest.is_empty() {
        return Some(field.ts_repr);
    }
    match &field.ty {
        Type::Record(nested) => field_repr(nested, rest),
        Type::Optional(inner) => match &**inner {
            Type::Record(nested) => field_repr(nested, rest),
            _ => None,
        },
        _ => None,
    }
}
