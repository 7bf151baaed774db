//! Type checking: every expression gets a type, checked against the input
//! record, before any Rust is generated.

use super::functions::{self, Func};
use super::{BinOp, Expr, ExprKind, ExprProblem, ExprSpan, UnOp};
use crate::diagnostics::SpecError;
use crate::spec::spans::Span;
use crate::types::{RecordType, Type};

/// A type-checked expression.
#[derive(Debug, Clone, PartialEq)]
pub struct TExpr {
    pub kind: TKind,
    pub ty: Type,
    pub span: ExprSpan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TKind {
    Str(String),
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    /// A field of the input record (boxed: a `TKind` is in every node, keep it small).
    Field(Box<FieldPath>),
    Neg(Box<TExpr>),
    Not(Box<TExpr>),
    /// Checked arithmetic on numbers (and timestamps, which are i64 ms).
    Arith(BinOp, Box<TExpr>, Box<TExpr>),
    /// `a + b` on strings.
    Concat(Box<TExpr>, Box<TExpr>),
    Compare(BinOp, Box<TExpr>, Box<TExpr>),
    Logic(BinOp, Box<TExpr>, Box<TExpr>),
    If(Box<TExpr>, Box<TExpr>, Box<TExpr>),
    Call(Func, Vec<TExpr>),
    Index(Box<TExpr>, Box<TExpr>),
}

/// A field reference: the names along the path, and their Rust identifiers.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    pub names: Vec<String>,
    pub idents: Vec<String>,
    /// The position of the first optional record the path goes through (a pattern's
    /// optional step): the value is null when that record is, and its type optional.
    pub optional_at: Option<usize>,
    /// The field at the end of the path is optional itself.
    pub leaf_optional: bool,
}

impl TExpr {
    /// A field reference as written (`a.b`), if the expression is only that.
    pub fn as_field(&self) -> Option<&[String]> {
        match &self.kind {
            TKind::Field(f) => Some(&f.names),
            _ => None,
        }
    }

    /// Calls `f` with the names along every field path the expression reads.
    /// Calls `f` with every field path in `self`, which it may change.
    pub fn for_each_field_mut(&mut self, f: &mut impl FnMut(&mut FieldPath)) {
        match &mut self.kind {
            TKind::Field(path) => f(path),
            TKind::Neg(a) | TKind::Not(a) => a.for_each_field_mut(f),
            TKind::Arith(_, a, b)
            | TKind::Concat(a, b)
            | TKind::Compare(_, a, b)
            | TKind::Logic(_, a, b)
            | TKind::Index(a, b) => {
                a.for_each_field_mut(f);
                b.for_each_field_mut(f);
            }
            TKind::If(a, b, c) => {
                a.for_each_field_mut(f);
                b.for_each_field_mut(f);
                c.for_each_field_mut(f);
            }
            TKind::Call(_, args) => args.iter_mut().for_each(|a| a.for_each_field_mut(f)),
            TKind::Str(_) | TKind::I64(_) | TKind::U64(_) | TKind::F64(_) | TKind::Bool(_) => {}
        }
    }

    pub fn for_each_field<'a>(&'a self, f: &mut impl FnMut(&'a [String])) {
        match &self.kind {
            TKind::Field(path) => f(&path.names),
            TKind::Neg(a) | TKind::Not(a) => a.for_each_field(f),
            TKind::Arith(_, a, b)
            | TKind::Concat(a, b)
            | TKind::Compare(_, a, b)
            | TKind::Logic(_, a, b)
            | TKind::Index(a, b) => {
                a.for_each_field(f);
                b.for_each_field(f);
            }
            TKind::If(a, b, c) => {
                a.for_each_field(f);
                b.for_each_field(f);
                c.for_each_field(f);
            }
            TKind::Call(_, args) => args.iter().for_each(|a| a.for_each_field(f)),
            TKind::Str(_) | TKind::I64(_) | TKind::U64(_) | TKind::F64(_) | TKind::Bool(_) => {}
        }
    }
}

/// Check `expr` against `record`. `locate` maps a span inside the expression
/// text to a span in the spec, so errors point at the exact column.
pub fn check(expr: &Expr, record: &RecordType, locate: &dyn Fn(&ExprSpan) -> Span) -> Result<TExpr, Vec<SpecError>> {
    let mut checker = Checker {
        record,
        locate,
        errors: Vec::new(),
    };
    match checker.expr(expr) {
        Some(t) if checker.errors.is_empty() => Ok(t),
        _ => Err(checker.errors),
    }
}

/// Turn parse problems into diagnostics.
pub fn parse_problems(problems: Vec<ExprProblem>, locate: &dyn Fn(&ExprSpan) -> Span) -> Vec<SpecError> {
    problems
        .into_iter()
        .map(|p| match p {
            ExprProblem::Syntax { message, span } => SpecError::expr_syntax(message, &locate(&span)),
            ExprProblem::Unsupported { what, help, span } => SpecError::expr_unsupported(what, &locate(&span), help),
            ExprProblem::TooDeep { span } => SpecError::expr_too_deep(&locate(&span)),
        })
        .collect()
}

struct Checker<'a> {
    record: &'a RecordType,
    locate: &'a dyn Fn(&ExprSpan) -> Span,
    errors: Vec<SpecError>,
}

impl Checker<'_> {
    fn type_error(&mut self, span: &ExprSpan, message: String, label: String, help: Option<String>) -> Option<TExpr> {
        let at = (self.locate)(span);
        self.errors.push(SpecError::type_mismatch(message, label, &at, help));
        None
    }

    fn expr(&mut self, e: &Expr) -> Option<TExpr> {
        let span = e.span.clone();
        let typed = |kind, ty| {
            Some(TExpr {
                kind,
                ty,
                span: span.clone(),
            })
        };
        match &e.kind {
            ExprKind::Str(s) => typed(TKind::Str(s.clone()), Type::String),
            ExprKind::Int(v) => match i64::try_from(*v) {
                Ok(v) => typed(TKind::I64(v), Type::I64),
                Err(_) => typed(TKind::U64(*v), Type::U64),
            },
            ExprKind::Float(v) => typed(TKind::F64(*v), Type::F64),
            ExprKind::Bool(b) => typed(TKind::Bool(*b), Type::Bool),
            ExprKind::Field(path) => self.field(path, &span),
            ExprKind::Unary(op, inner) => {
                let inner = self.expr(inner)?;
                match (op, &inner.ty) {
                    (UnOp::Neg, Type::I64 | Type::F64) => {
                        let ty = inner.ty.clone();
                        typed(TKind::Neg(Box::new(inner)), ty)
                    }
                    (UnOp::Not, Type::Bool) => typed(TKind::Not(Box::new(inner)), Type::Bool),
                    (UnOp::Neg, ty) => {
                        let ty = ty.clone();
                        self.type_error(&span, format!("cannot negate a {ty}"), format!("this is {ty}"), None)
                    }
                    (UnOp::Not, ty) => {
                        let ty = ty.clone();
                        self.type_error(
                            &span,
                            format!("`!` needs a bool, found {ty}"),
                            format!("this is {ty}"),
                            None,
                        )
                    }
                }
            }
            ExprKind::Binary(op, left, right) => {
                let left = self.expr(left);
                let right = self.expr(right);
                let (left, right) = (left?, right?);
                self.binary(*op, left, right, span)
            }
            ExprKind::If(cond, then, otherwise) => {
                let cond = self.expr(cond);
                let then = self.expr(then);
                let otherwise = self.expr(otherwise);
                let (cond, then, otherwise) = (cond?, then?, otherwise?);
                if cond.ty != Type::Bool {
                    let ty = cond.ty.clone();
                    return self.type_error(
                        &cond.span,
                        format!("an `if` condition must be a bool, found {ty}"),
                        format!("this is {ty}"),
                        None,
                    );
                }
                let (then, otherwise) = unify(then, otherwise);
                if then.ty != otherwise.ty {
                    return self.type_error(
                        &otherwise.span,
                        format!("`if` branches have different types: {} and {}", then.ty, otherwise.ty),
                        format!("this is {}", otherwise.ty),
                        Some("both branches must produce the same type".into()),
                    );
                }
                let ty = then.ty.clone();
                typed(TKind::If(Box::new(cond), Box::new(then), Box::new(otherwise)), ty)
            }
            ExprKind::Index(base, index) => {
                let base = self.expr(base);
                let index = self.expr(index);
                let (base, index) = (base?, index?);
                let Type::List(item) = base.ty.clone() else {
                    let ty = base.ty.clone();
                    return self.type_error(
                        &base.span,
                        format!("only lists can be indexed, found {ty}"),
                        format!("this is {ty}"),
                        Some("`split(text, \",\")[0]` gives a list".into()),
                    );
                };
                if index.ty != Type::I64 {
                    let ty = index.ty.clone();
                    return self.type_error(
                        &index.span,
                        format!("a list index must be an i64, found {ty}"),
                        format!("this is {ty}"),
                        None,
                    );
                }
                typed(TKind::Index(Box::new(base), Box::new(index)), *item)
            }
            ExprKind::Call { name, name_span, args } => self.call(name, name_span, args, span.clone()),
        }
    }

    fn field(&mut self, path: &[(String, ExprSpan)], span: &ExprSpan) -> Option<TExpr> {
        let mut record = self.record;
        let mut ty = None;
        let mut idents = Vec::new();
        let mut optional_at = None;
        for (i, (name, seg_span)) in path.iter().enumerate() {
            let Some(field) = record.field(name) else {
                let at = (self.locate)(seg_span);
                self.errors.push(SpecError::unknown_expr_field(
                    name,
                    &record.display,
                    &at,
                    &record.field_names(),
                ));
                return None;
            };
            ty = Some(field.ty.clone());
            idents.push(field.ident.clone());
            if i + 1 < path.len() {
                match &field.ty {
                    Type::Record(nested) => record = nested,
                    Type::Optional(inner) if matches!(**inner, Type::Record(_)) => {
                        let Type::Record(nested) = &**inner else {
                            unreachable!("matched above")
                        };
                        record = nested;
                        optional_at.get_or_insert(i);
                    }
                    other => {
                        let other = other.clone();
                        return self.type_error(
                            seg_span,
                            format!("`{name}` is a {other}, it has no fields"),
                            format!("this is {other}"),
                            None,
                        );
                    }
                }
            }
        }
        let path = path.iter().map(|(n, _)| n.clone()).collect();
        let leaf_optional = ty.as_ref().is_some_and(Type::is_optional);
        let ty = match ty? {
            leaf @ Type::Optional(_) => leaf,
            leaf if optional_at.is_some() => Type::Optional(Box::new(leaf)),
            leaf => leaf,
        };
        Some(TExpr {
            kind: TKind::Field(Box::new(FieldPath {
                names: path,
                idents,
                optional_at,
                leaf_optional,
            })),
            ty,
            span: span.clone(),
        })
    }

    fn binary(&mut self, op: BinOp, left: TExpr, right: TExpr, span: ExprSpan) -> Option<TExpr> {
        let (left, right) = unify(left, right);
        let null_help = "this side may be null: handle it with `coalesce(field, default)` or `is_null(field)`";
        if op != BinOp::Eq && op != BinOp::Ne {
            if let Some(side) = [&left, &right].into_iter().find(|s| s.ty.is_optional()) {
                let ty = side.ty.clone();
                let message = format!("`{}` cannot use a value that may be null", op.symbol());
                return self.type_error(&side.span, message, format!("this is {ty}"), Some(null_help.into()));
            }
        }
        if matches!(op, BinOp::And | BinOp::Or) {
            if let Some(bad) = [&left, &right].into_iter().find(|s| s.ty != Type::Bool) {
                let ty = bad.ty.clone();
                let message = format!("`{}` needs bool operands, found {ty}", op.symbol());
                return self.type_error(&bad.span, message, format!("this is {ty}"), None);
            }
        }
        let Some(ty) = binary_type(op, &left.ty, &right.ty) else {
            let (lt, rt) = (&left.ty, &right.ty);
            let help = if lt.is_numeric() && rt.is_numeric() {
                Some("numbers of different types do not mix: convert one side with `to_float(x)`, `to_int(x)` or `to_uint(x)`".to_string())
            } else if lt.is_optional() || rt.is_optional() {
                Some(null_help.to_string())
            } else {
                None
            };
            let message = format!("`{}` cannot combine {lt} and {rt}", op.symbol());
            let label = format!("{lt} {} {rt}", op.symbol());
            return self.type_error(&span, message, label, help);
        };
        let is_concat = op == BinOp::Add && left.ty == Type::String;
        let (l, r) = (Box::new(left), Box::new(right));
        let kind = match op {
            BinOp::And | BinOp::Or => TKind::Logic(op, l, r),
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => TKind::Compare(op, l, r),
            _ if is_concat => TKind::Concat(l, r),
            _ => TKind::Arith(op, l, r),
        };
        Some(TExpr { kind, ty, span })
    }

    fn call(&mut self, name: &str, name_span: &ExprSpan, args: &[Expr], span: ExprSpan) -> Option<TExpr> {
        let Some((func, signature)) = functions::lookup(name) else {
            let at = (self.locate)(name_span);
            self.errors
                .push(SpecError::unknown_function(name, &at, &functions::names()));
            return None;
        };
        let mut typed = Vec::new();
        for a in args {
            typed.push(self.expr(a));
        }
        let mut typed: Vec<TExpr> = typed.into_iter().collect::<Option<_>>()?;
        if matches!(func, Func::Min | Func::Max | Func::Clamp | Func::Coalesce) {
            typed = unify_all(typed);
        }
        let types: Vec<Type> = typed.iter().map(|t| t.ty.clone()).collect();
        let ty = match functions::result_type(func, signature, &types) {
            Ok(ty) => ty,
            Err(p) => {
                let at = p
                    .arg
                    .and_then(|i| typed.get(i))
                    .map(|t| t.span.clone())
                    .unwrap_or(span.clone());
                let label = p
                    .arg
                    .and_then(|i| types.get(i))
                    .map(|t| format!("this is {t}"))
                    .unwrap_or_else(|| format!("in this call to `{name}`"));
                return self.type_error(&at, p.message, label, p.help);
            }
        };
        // Pattern and format arguments are compiled once, so they must be literals.
        if matches!(func, Func::Matches | Func::ParseTimestamp | Func::FormatTimestamp) {
            let arg = &typed[1];
            let TKind::Str(pattern) = &arg.kind else {
                return self.type_error(
                    &arg.span,
                    format!("the second argument of `{name}` must be a string literal"),
                    "not a literal".into(),
                    Some(signature.to_string()),
                );
            };
            if func == Func::Matches {
                if let Err(e) = regex::Regex::new(pattern) {
                    let at = (self.locate)(&arg.span);
                    let message = e.to_string();
                    let last = message.lines().last().unwrap_or("invalid pattern").trim().to_string();
                    self.errors.push(SpecError::bad_regex(last, &at));
                    return None;
                }
            }
        }
        Some(TExpr {
            kind: TKind::Call(func, typed),
            ty,
            span,
        })
    }
}

/// The result type of `left op right`, or `None` when the operator does not apply.
fn binary_type(op: BinOp, left: &Type, right: &Type) -> Option<Type> {
    let same = left == right;
    match op {
        BinOp::And | BinOp::Or => (*left == Type::Bool && same).then_some(Type::Bool),
        BinOp::Eq | BinOp::Ne => (same && !matches!(left, Type::List(_) | Type::Record(_))).then_some(Type::Bool),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            (same && (left.is_numeric() || matches!(left, Type::String | Type::Timestamp))).then_some(Type::Bool)
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => match (left, right) {
            (a, b) if a == b && a.is_numeric() => Some(a.clone()),
            (Type::String, Type::String) if op == BinOp::Add => Some(Type::String),
            (Type::Timestamp, Type::I64) if matches!(op, BinOp::Add | BinOp::Sub) => Some(Type::Timestamp),
            (Type::Timestamp, Type::Timestamp) if op == BinOp::Sub => Some(Type::I64),
            _ => None,
        },
    }
}

/// True for an integer literal, possibly negated, whose type can still adapt.
fn is_int_literal(e: &TExpr) -> bool {
    match &e.kind {
        TKind::I64(_) | TKind::U64(_) => true,
        TKind::Neg(inner) => matches!(inner.kind, TKind::I64(_)),
        _ => false,
    }
}

/// Give an integer literal the numeric type of the other side (`temperature > 25`).
fn coerce(e: TExpr, to: &Type) -> TExpr {
    if !is_int_literal(&e) || e.ty == *to {
        return e;
    }
    let value: i128 = match &e.kind {
        TKind::I64(v) => *v as i128,
        TKind::U64(v) => *v as i128,
        TKind::Neg(inner) => match inner.kind {
            TKind::I64(v) => -(v as i128),
            _ => return e,
        },
        _ => return e,
    };
    let kind = match to {
        Type::F64 => TKind::F64(value as f64),
        Type::U64 if value >= 0 => TKind::U64(value as u64),
        Type::I64 if value <= i64::MAX as i128 => TKind::I64(value as i64),
        _ => return e,
    };
    TExpr {
        kind,
        ty: to.clone(),
        span: e.span,
    }
}

fn unify(a: TExpr, b: TExpr) -> (TExpr, TExpr) {
    if a.ty == b.ty {
        return (a, b);
    }
    let (a_lit, b_lit) = (is_int_literal(&a), is_int_literal(&b));
    match (a_lit, b_lit) {
        (true, false) => {
            let to = b.ty.clone();
            (coerce(a, &to), b)
        }
        (false, true) => {
            let to = a.ty.clone();
            (a, coerce(b, &to))
        }
        _ => (a, b),
    }
}

/// Coerce literal arguments to the first non-literal argument's (inner) type.
fn unify_all(args: Vec<TExpr>) -> Vec<TExpr> {
    let anchor = args.iter().find(|a| !is_int_literal(a)).map(|a| match &a.ty {
        Type::Optional(inner) => (**inner).clone(),
        other => other.clone(),
    });
    match anchor {
        Some(to) => args.into_iter().map(|a| coerce(a, &to)).collect(),
        None => args,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::parse;
    use crate::types::{Field, TsRepr};

    fn reading() -> RecordType {
        let f = |name: &str, ty| Field::new(name, ty, TsRepr::Millis);
        RecordType::new(
            "Reading".into(),
            "schema `reading`".into(),
            vec![
                f("device_id", Type::String),
                f("temperature", Type::F64),
                f("count", Type::I64),
                f("humidity", Type::Optional(Box::new(Type::F64))),
                f("status", Type::String),
            ],
        )
    }

    fn check_text(text: &str) -> Result<TExpr, Vec<SpecError>> {
        let expr = parse(text).expect("parses");
        check(&expr, &reading(), &|s| s.clone())
    }

    fn first_error(text: &str) -> String {
        let errors = check_text(text).unwrap_err();
        format!("{}", errors[0])
    }

    #[test]
    fn infers_types() {
        assert_eq!(
            check_text("status == \"ok\" && temperature > 25").unwrap().ty,
            Type::Bool
        );
        assert_eq!(check_text("temperature * 9.0 / 5.0 + 32").unwrap().ty, Type::F64);
        assert_eq!(check_text("coalesce(humidity, 0)").unwrap().ty, Type::F64);
        assert_eq!(check_text("split(device_id, \"-\")[0]").unwrap().ty, Type::String);
        assert_eq!(
            check_text("if count > 3 { \"many\" } else { \"few\" }").unwrap().ty,
            Type::String
        );
        assert_eq!(check_text("status.upper()").unwrap().ty, Type::String);
    }

    #[test]
    fn literal_coerces_to_float() {
        let t = check_text("temperature > 25").unwrap();
        let TKind::Compare(_, _, right) = t.kind else { panic!() };
        assert_eq!(right.kind, TKind::F64(25.0));
    }

    #[test]
    fn reports_type_errors() {
        assert!(first_error("temperature + count").contains("cannot combine f64 and i64"));
        assert!(first_error("humidity > 50.0").contains("may be null"));
        assert!(first_error("status > 1").contains("cannot combine string and i64"));
        assert!(first_error("lower(count)").contains("expected string"));
        assert!(first_error("is_null(status)").contains("never null"));
    }

    #[test]
    fn reports_unknown_names() {
        assert!(first_error("temprature > 1.0").contains("unknown field `temprature`"));
        assert!(first_error("lowercase(status)").contains("unknown function `lowercase`"));
    }

    #[test]
    fn validates_regex_literals() {
        assert!(check_text("matches(status, \"^o+k$\")").is_ok());
        assert!(first_error("matches(status, \"(\")").contains("invalid regular expression"));
        assert!(first_error("matches(status, status)").contains("string literal"));
    }

    #[test]
    fn collects_every_error() {
        assert_eq!(check_text("nope1 > 1 && nope2 < 2").unwrap_err().len(), 2);
    }
}
