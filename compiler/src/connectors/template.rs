//! Placeholders in a message sink's names: `topic: "alerts/{device_id}"`, a Redis
//! `key: "clicks:{user_id}"`. Each `{…}` is a string expression over the record; the
//! text around them is kept; the whole is one string expression evaluated per record.

use crate::diagnostics::SpecError;
use crate::expr::check::{TExpr, TKind};
use crate::spec::scalar::span_in_scalar;
use crate::types::{RecordType, Type};
use crate::validate::Cx;

/// `"alerts/{device_id}"`, the value of `option` of sink `sink`: the text between
/// placeholders, and each placeholder a string expression, joined into one string
/// expression.
pub fn expression(sink: &str, option: &str, template: &str, record: &RecordType, cx: &mut Cx) -> Option<TExpr> {
    let path = ["sinks", sink, option];
    let scalar = cx.value(&path);
    let mut parts: Vec<TExpr> = Vec::new();
    let mut ok = true;
    let mut rest = template;
    let mut offset = 0;
    let literal = |text: &str, at: usize| TExpr {
        kind: TKind::Str(text.to_string()),
        ty: Type::String,
        span: at..at + text.len(),
    };
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(literal(&rest[..open], offset));
        }
        let Some(close) = closing_brace(&rest[open..]) else {
            let at = span_in_scalar(cx.text, &scalar, template, &(offset + open..offset + open + 1));
            cx.error(SpecError::invalid_value(
                option,
                "a `{` without its `}`",
                &at,
                Some("a placeholder is `{field}` or `{expression}`".into()),
            ));
            return None;
        };
        let inner_start = offset + open + 1;
        let inner = &rest[open + 1..open + close];
        match placeholder(option, inner, inner_start, template, &scalar, record, cx) {
            Some(e) => parts.push(e),
            None => ok = false,
        }
        offset += open + close + 1;
        rest = &rest[open + close + 1..];
    }
    if !rest.is_empty() {
        parts.push(literal(rest, offset));
    }
    if !ok {
        return None;
    }
    let span = 0..template.len();
    parts.into_iter().reduce(|a, b| TExpr {
        kind: TKind::Concat(Box::new(a), Box::new(b)),
        ty: Type::String,
        span: span.clone(),
    })
}

/// Where the `}` closing the `{` that `text` starts with is: braces inside the
/// expression (`{if hot { "h" } else { "c" }}`) and inside its strings do not count.
fn closing_brace(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => depth += 1,
            '}' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// One `{…}` of a template: a string expression, located inside the template.
fn placeholder(
    option: &str,
    text: &str,
    start: usize,
    template: &str,
    scalar: &crate::spec::spans::Span,
    record: &RecordType,
    cx: &mut Cx,
) -> Option<TExpr> {
    let locate =
        |r: &std::ops::Range<usize>| span_in_scalar(cx.text, scalar, template, &(start + r.start..start + r.end));
    let checked = crate::expr::parse(text).map_err(|problems| crate::expr::check::parse_problems(problems, &locate));
    let checked = checked.and_then(|parsed| crate::expr::check(&parsed, record, &locate));
    match checked {
        Ok(e) if e.ty == Type::String => {
            if crate::validate::transforms::uses_regex(&e) {
                cx.features.insert("regex");
            }
            Some(e)
        }
        Ok(e) => {
            let at = locate(&e.span);
            cx.error(SpecError::type_mismatch(
                format!("a {option} placeholder must be a string, found {}", e.ty),
                format!("this is {}", e.ty),
                &at,
                Some(format!("convert it: `{{to_string({text})}}`")),
            ));
            None
        }
        Err(errors) => {
            cx.errors.extend(errors);
            None
        }
    }
}
