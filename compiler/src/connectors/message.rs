//! What message sinks share: the per-record address (topic, key, headers) as typed
//! expressions. Each connector decides which parts it offers; the generated
//! `send_<sink>` evaluates them and hands them to the runtime's `MessageOutput`.

use crate::diagnostics::SpecError;
use crate::expr::TExpr;
use crate::spec::transforms::ExprText;
use crate::types::{RecordType, Type};
use crate::validate::{expression, Cx};

/// `topic:` of a message sink: a name (a connector may read placeholders in it), or
/// `{ expr: <string expression> }` evaluated per record.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(untagged)]
#[serde(expecting = "a topic name, or `{ expr: <string expression> }` for a topic per record")]
pub enum TopicSpec {
    Fixed(String),
    Expr(TopicExpr),
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(expecting = "`{ expr: <string expression> }`")]
pub struct TopicExpr {
    pub expr: ExprText,
}

/// Where each record of a message sink goes; `None` parts are the sink's own.
#[derive(Debug, Clone, Default)]
pub struct IrAddress {
    /// A string expression: the topic per record.
    pub topic: Option<TExpr>,
    /// A string or optional-string expression.
    pub key: Option<TExpr>,
    /// Header name and value (string or optional string).
    pub headers: Vec<(String, TExpr)>,
}

/// An expression that must be a string (or, when `optional`, an optional string).
pub fn string_expr(
    what: &str,
    text: &ExprText,
    record: &RecordType,
    path: &[&str],
    optional: bool,
    cx: &mut Cx,
) -> Option<TExpr> {
    let e = expression(text, record, path, cx)?;
    let fits = match &e.ty {
        Type::String => true,
        Type::Optional(inner) => optional && **inner == Type::String,
        _ => false,
    };
    if fits {
        return Some(e);
    }
    let at = cx.expr_locator(path, &text.0)(&e.span);
    let wanted = if optional {
        "a string or an optional string"
    } else {
        "a string"
    };
    cx.error(SpecError::type_mismatch(
        format!("{what} must be {wanted}, found {}", e.ty),
        format!("this is {}", e.ty),
        &at,
        Some(conversion_help(&text.0, &e.ty)),
    ));
    None
}

/// How to make a string of `text`, an expression of type `ty`: with the expression itself
/// when it is short enough to repeat.
fn conversion_help(text: &str, ty: &Type) -> String {
    let text = text.trim();
    let shown = if text.len() <= 40 && !text.contains(['`', '\n']) {
        text
    } else {
        "<expression>"
    };
    match ty {
        Type::Optional(_) => format!("handle the null first, then convert it: `to_string(coalesce({shown}, default))`"),
        Type::List(_) | Type::Record(_) => "a list or a record has no string form: use a string field of it".into(),
        _ => format!("convert it: `to_string({shown})`"),
    }
}
