//! Typed expressions → Rust. Every fallible operation goes through the
//! runtime's `fns` and `?`, so a bad value is an `EvalError`, never a panic.

use proc_macro2::{Literal, TokenStream};
use quote::{format_ident, quote};

use crate::expr::functions::Func;
use crate::expr::{BinOp, TExpr, TKind};
use crate::types::{RecordType, Type};

/// Whether generated code holds a value or a borrow of one.
///
/// Strings, lists and records are borrowed from the input record or from
/// `'static` literals where possible, so filters do not allocate. A borrowed
/// value never points at a temporary: it is safe inside `if` branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repr {
    /// `Copy` values, or owned `String` / `Vec` / records.
    Owned,
    /// `&str`, `Option<&str>`, `&[T]` or `&Record`.
    Borrowed,
}

/// Emits expressions, collecting the regex patterns they use.
#[derive(Default)]
pub struct ExprGen {
    pub regexes: Vec<String>,
    /// The record's own fields that are records are references already (`&Side`,
    /// `Option<&Side>`): a join's pair of sides or a pattern's match of steps, borrowed.
    pub borrowed_roots: bool,
}

impl ExprGen {
    /// Code for `e` as an owned value of its type.
    pub fn owned(&mut self, e: &TExpr) -> TokenStream {
        let (code, repr) = self.emit(e);
        to_owned(code, repr, &e.ty)
    }

    /// The fields of `output` in a struct literal, each from its expression in `exprs`
    /// (a `map:`'s or a `select:`'s), as owned values.
    pub fn record_fields(&mut self, output: &RecordType, exprs: &[TExpr]) -> Vec<TokenStream> {
        output
            .fields
            .iter()
            .zip(exprs)
            .map(|(field, e)| {
                let name = super::ident::ident(&field.ident);
                let code = self.owned(e);
                quote!(#name: #code,)
            })
            .collect()
    }

    /// Code for `e` as a value or a borrow, whichever is cheaper.
    pub fn emit(&mut self, e: &TExpr) -> (TokenStream, Repr) {
        use Repr::*;
        match &e.kind {
            TKind::Str(s) => (quote!(#s), Borrowed),
            TKind::I64(v) => literal(Literal::i64_suffixed(*v)),
            TKind::U64(v) => literal(Literal::u64_suffixed(*v)),
            TKind::F64(v) => literal(Literal::f64_suffixed(*v)),
            TKind::Bool(b) => (quote!(#b), Owned),
            TKind::Field(field) if field.optional_at.is_some() => {
                // Through an optional record: `rec.b.as_ref().map(|r| r.ts.clone())`,
                // `and_then` when the field is optional itself.
                let at = field.optional_at.unwrap_or_default() + 1;
                let outer = field.idents[..at].iter().map(|p| super::ident::ident(p));
                let inner: Vec<_> = field.idents[at..].iter().map(|p| super::ident::ident(p)).collect();
                let value = quote!(r #(.#inner)*.clone());
                let code = if field.leaf_optional {
                    quote!(rec #(.#outer)*.as_ref().and_then(|r| #value))
                } else {
                    quote!(rec #(.#outer)*.as_ref().map(|r| #value))
                };
                (code, Owned)
            }
            TKind::Field(field) => {
                let idents = field.idents.iter().map(|p| super::ident::ident(p));
                let access = quote!(rec #(.#idents)*);
                let root = field.idents.len() == 1;
                match &e.ty {
                    _ if root && self.borrowed_roots && is_record(&e.ty) => (access, Borrowed),
                    Type::String => (quote!(#access.as_str()), Borrowed),
                    Type::Optional(inner) if **inner == Type::String => (quote!(#access.as_deref()), Borrowed),
                    Type::Optional(inner) if matches!(**inner, Type::Record(_)) => (quote!(#access.as_ref()), Borrowed),
                    Type::List(_) => (quote!(#access.as_slice()), Borrowed),
                    Type::Record(_) => (quote!(&#access), Borrowed),
                    _ => (access, Owned),
                }
            }
            TKind::Neg(a) => {
                let a = self.owned(a);
                (quote!(fns::neg(#a)?), Owned)
            }
            TKind::Not(a) => {
                let a = self.owned(a);
                (quote!(!(#a)), Owned)
            }
            TKind::Arith(..) if chain_len(e) > FLAT_CHAIN => self.arith_chain(e),
            TKind::Arith(op, a, b) => {
                let (a, b) = (self.owned(a), self.owned(b));
                let f = arith_fn(*op);
                (quote!(#f(#a, #b)?), Owned)
            }
            TKind::Concat(..) if chain_len(e) > FLAT_CHAIN => {
                let parts: Vec<TokenStream> = left_spine(e).iter().map(|(_, part)| self.borrowed(part)).collect();
                (quote!([#(#parts),*].concat()), Owned)
            }
            TKind::Concat(a, b) => {
                let (a, b) = (self.borrowed(a), self.borrowed(b));
                (quote!([#a, #b].concat()), Owned)
            }
            TKind::Compare(op, a, b) => {
                let (a, b) = (self.borrowed(a), self.borrowed(b));
                let op = binop_tokens(*op);
                (quote!((#a #op #b)), Owned)
            }
            TKind::Logic(op, ..) if chain_len(e) > FLAT_CHAIN => {
                // `a && b && c` nests to the left, so Rust reads the flat form the same way.
                let spine = left_spine(e);
                let first = self.owned(spine[0].1);
                let op = binop_tokens(*op);
                let rest: Vec<TokenStream> = spine[1..].iter().map(|(_, b)| self.owned(b)).collect();
                (quote!((#first #(#op #rest)*)), Owned)
            }
            TKind::Logic(op, a, b) => {
                let (a, b) = (self.owned(a), self.owned(b));
                let op = binop_tokens(*op);
                (quote!((#a #op #b)), Owned)
            }
            TKind::If(c, t, f) => {
                let c = self.owned(c);
                let (t_code, t_repr) = self.emit(t);
                let (f_code, f_repr) = self.emit(f);
                if t_repr == f_repr {
                    (quote!(if #c { #t_code } else { #f_code }), t_repr)
                } else {
                    let t_code = to_owned(t_code, t_repr, &t.ty);
                    let f_code = to_owned(f_code, f_repr, &f.ty);
                    (quote!(if #c { #t_code } else { #f_code }), Owned)
                }
            }
            TKind::Index(base, index) => {
                let (base, index) = (self.borrowed(base), self.owned(index));
                (quote!(fns::index(#base, #index)?), Owned)
            }
            TKind::Call(func, args) => self.call(*func, args),
        }
    }

    /// A long arithmetic chain (`a + b - c * …`, nested to the left) as one `let` per
    /// operator, in the same order of evaluation: nested calls thousands deep would be
    /// as deep in rustc.
    fn arith_chain(&mut self, e: &TExpr) -> (TokenStream, Repr) {
        let spine = left_spine(e);
        let first = self.owned(spine[0].1);
        let steps: Vec<TokenStream> = spine[1..]
            .iter()
            .map(|(op, operand)| {
                let f = arith_fn(op.unwrap_or(BinOp::Add));
                let operand = self.owned(operand);
                quote!(let acc = #f(acc, #operand)?;)
            })
            .collect();
        (quote!({ let acc = #first; #(#steps)* acc }), Repr::Owned)
    }

    /// Code for `e` as a borrow (`&str`, `&[T]`, …) or a `Copy` value.
    fn borrowed(&mut self, e: &TExpr) -> TokenStream {
        let (code, repr) = self.emit(e);
        as_ref(code, repr, &e.ty)
    }

    fn call(&mut self, func: Func, args: &[TExpr]) -> (TokenStream, Repr) {
        use Repr::*;
        let arg_ty = |i: usize| &args[i].ty;
        match func {
            Func::Lower | Func::Upper | Func::Trim => {
                let a = self.borrowed(&args[0]);
                let f = match func {
                    Func::Lower => quote!(fns::lower),
                    Func::Upper => quote!(fns::upper),
                    _ => quote!(fns::trim),
                };
                (quote!(#f(#a)), Owned)
            }
            Func::Contains | Func::StartsWith | Func::EndsWith => {
                let (a, b) = (self.borrowed(&args[0]), self.borrowed(&args[1]));
                let f = match func {
                    Func::Contains => quote!(fns::contains),
                    Func::StartsWith => quote!(fns::starts_with),
                    _ => quote!(fns::ends_with),
                };
                (quote!(#f(#a, #b)), Owned)
            }
            Func::Len => {
                let a = self.borrowed(&args[0]);
                match arg_ty(0) {
                    Type::String => (quote!(fns::len(#a)), Owned),
                    _ => (quote!(fns::list_len(#a)), Owned),
                }
            }
            Func::Replace => {
                let (a, b, c) = (
                    self.borrowed(&args[0]),
                    self.borrowed(&args[1]),
                    self.borrowed(&args[2]),
                );
                (quote!(fns::replace(#a, #b, #c)), Owned)
            }
            Func::Split => {
                let (a, b) = (self.borrowed(&args[0]), self.borrowed(&args[1]));
                (quote!(fns::split(#a, #b)), Owned)
            }
            Func::Concat => {
                let parts: Vec<TokenStream> = args.iter().map(|a| self.borrowed(a)).collect();
                (quote!([#(#parts),*].concat()), Owned)
            }
            Func::Matches => {
                let TKind::Str(pattern) = &args[1].kind else {
                    unreachable!("checked: pattern is a literal")
                };
                let index = match self.regexes.iter().position(|p| p == pattern) {
                    Some(i) => i,
                    None => {
                        self.regexes.push(pattern.clone());
                        self.regexes.len() - 1
                    }
                };
                let re = format_ident!("RE_{}", index);
                let a = self.borrowed(&args[0]);
                (quote!(#re.is_match(#a)), Owned)
            }
            Func::Abs => {
                let a = self.owned(&args[0]);
                match arg_ty(0) {
                    Type::I64 => (quote!(fns::abs_i64(#a)?), Owned),
                    _ => (quote!((#a).abs()), Owned),
                }
            }
            Func::Round | Func::Floor | Func::Ceil => {
                let a = self.owned(&args[0]);
                let f = match func {
                    Func::Round => quote!(fns::round),
                    Func::Floor => quote!(fns::floor),
                    _ => quote!(fns::ceil),
                };
                (quote!(#f(#a)), Owned)
            }
            Func::Min | Func::Max => {
                let (a, b) = (self.owned(&args[0]), self.owned(&args[1]));
                let f = match (func, arg_ty(0)) {
                    (Func::Min, Type::F64) => quote!(fns::min_f64),
                    (Func::Max, Type::F64) => quote!(fns::max_f64),
                    (Func::Min, _) => quote!(::std::cmp::min),
                    _ => quote!(::std::cmp::max),
                };
                (quote!(#f(#a, #b)), Owned)
            }
            Func::Clamp => {
                let (x, lo, hi) = (self.owned(&args[0]), self.owned(&args[1]), self.owned(&args[2]));
                let f = match arg_ty(0) {
                    Type::I64 => quote!(fns::clamp_i64),
                    Type::U64 => quote!(fns::clamp_u64),
                    _ => quote!(fns::clamp_f64),
                };
                (quote!(#f(#x, #lo, #hi)?), Owned)
            }
            Func::IsNull => {
                let a = self.borrowed(&args[0]);
                (quote!((#a).is_none()), Owned)
            }
            Func::Coalesce => {
                let (a, a_repr) = self.emit(&args[0]);
                let (b, b_repr) = self.emit(&args[1]);
                let both_optional = args[1].ty.is_optional();
                let some = if both_optional { quote!(Some(v)) } else { quote!(v) };
                if a_repr == b_repr {
                    (quote!(match #a { Some(v) => #some, None => #b }), a_repr)
                } else {
                    let a = to_owned(a, a_repr, &args[0].ty);
                    let b = to_owned(b, b_repr, &args[1].ty);
                    (quote!(match #a { Some(v) => #some, None => #b }), Owned)
                }
            }
            Func::Now => (quote!(fns::now_ms()), Owned),
            Func::ParseTimestamp => {
                let (a, fmt) = (self.borrowed(&args[0]), self.borrowed(&args[1]));
                (quote!(fns::parse_timestamp(#a, #fmt)?), Owned)
            }
            Func::FormatTimestamp => {
                let (a, fmt) = (self.owned(&args[0]), self.borrowed(&args[1]));
                (quote!(fns::format_timestamp(#a, #fmt)?), Owned)
            }
            Func::ToTimestamp | Func::ToMillis => {
                // Both are i64 milliseconds underneath.
                (self.owned(&args[0]), Owned)
            }
            Func::ToString => {
                let (a, repr) = self.emit(&args[0]);
                match arg_ty(0) {
                    Type::String => (a, repr),
                    Type::Timestamp => (quote!(fns::ts_to_rfc3339(#a)), Owned),
                    _ => (quote!((#a).to_string()), Owned),
                }
            }
            Func::ToInt => {
                let a = self.borrowed(&args[0]);
                let code = match arg_ty(0) {
                    Type::String => quote!(fns::parse_i64(#a)?),
                    Type::Bool => quote!((#a as i64)),
                    Type::U64 => quote!(fns::u64_to_i64(#a)?),
                    Type::F64 => quote!(fns::f64_to_i64(#a)?),
                    _ => a,
                };
                (code, Owned)
            }
            Func::ToUint => {
                let a = self.borrowed(&args[0]);
                let code = match arg_ty(0) {
                    Type::String => quote!(fns::parse_u64(#a)?),
                    Type::I64 => quote!(fns::i64_to_u64(#a)?),
                    Type::F64 => quote!(fns::f64_to_u64(#a)?),
                    _ => a,
                };
                (code, Owned)
            }
            Func::ToFloat => {
                let a = self.borrowed(&args[0]);
                let code = match arg_ty(0) {
                    Type::String => quote!(fns::parse_f64(#a)?),
                    Type::I64 | Type::U64 => quote!((#a as f64)),
                    _ => a,
                };
                (code, Owned)
            }
            Func::ToBool => {
                let a = self.borrowed(&args[0]);
                let code = match arg_ty(0) {
                    Type::String => quote!(fns::parse_bool(#a)?),
                    _ => a,
                };
                (code, Owned)
            }
        }
    }
}

/// Chains of more operators than this are emitted flat (see [`left_spine`]).
const FLAT_CHAIN: usize = 8;

/// The operand kind of a chain: arithmetic, string `+`, or one logical operator.
fn same_chain(a: &TKind, b: &TKind) -> bool {
    match (a, b) {
        (TKind::Arith(..), TKind::Arith(..)) | (TKind::Concat(..), TKind::Concat(..)) => true,
        (TKind::Logic(x, ..), TKind::Logic(y, ..)) => x == y,
        _ => false,
    }
}

/// The left operand and right operand of a binary node.
fn operands(e: &TExpr) -> Option<(Option<BinOp>, &TExpr, &TExpr)> {
    match &e.kind {
        TKind::Arith(op, a, b) | TKind::Logic(op, a, b) => Some((Some(*op), a, b)),
        TKind::Concat(a, b) => Some((None, a, b)),
        _ => None,
    }
}

/// The operands of the chain of same-kind operators down the left of `e`, first
/// first, each with the operator applying it (`None` for the first), without
/// recursion: `a + b + c` is `(a + b) + c`, a tree as deep as the chain is long.
fn left_spine(e: &TExpr) -> Vec<(Option<BinOp>, &TExpr)> {
    let mut rights = Vec::new();
    let mut node = e;
    while let Some((op, left, right)) = operands(node).filter(|_| same_chain(&node.kind, &e.kind)) {
        rights.push((op, right));
        node = left;
    }
    let mut spine = vec![(None, node)];
    spine.extend(rights.into_iter().rev());
    spine
}

/// The number of operators in the chain down the left of `e`.
fn chain_len(e: &TExpr) -> usize {
    let mut n = 0;
    let mut node = e;
    while let Some((_, left, _)) = operands(node).filter(|_| same_chain(&node.kind, &e.kind)) {
        n += 1;
        if n > FLAT_CHAIN {
            break;
        }
        node = left;
    }
    n
}

fn arith_fn(op: BinOp) -> TokenStream {
    match op {
        BinOp::Add => quote!(fns::add),
        BinOp::Sub => quote!(fns::sub),
        BinOp::Mul => quote!(fns::mul),
        BinOp::Div => quote!(fns::div),
        _ => quote!(fns::rem),
    }
}

fn literal(lit: Literal) -> (TokenStream, Repr) {
    (quote!(#lit), Repr::Owned)
}

fn binop_tokens(op: BinOp) -> TokenStream {
    match op {
        BinOp::Eq => quote!(==),
        BinOp::Ne => quote!(!=),
        BinOp::Lt => quote!(<),
        BinOp::Le => quote!(<=),
        BinOp::Gt => quote!(>),
        BinOp::Ge => quote!(>=),
        BinOp::And => quote!(&&),
        BinOp::Or => quote!(||),
        BinOp::Add => quote!(+),
        BinOp::Sub => quote!(-),
        BinOp::Mul => quote!(*),
        BinOp::Div => quote!(/),
        BinOp::Rem => quote!(%),
    }
}

/// Turn code of representation `repr` into a borrow (for non-`Copy` types).
fn as_ref(code: TokenStream, repr: Repr, ty: &Type) -> TokenStream {
    if repr == Repr::Borrowed {
        return code;
    }
    match ty {
        Type::String => quote!((#code).as_str()),
        Type::Optional(inner) if **inner == Type::String => quote!((#code).as_deref()),
        Type::Optional(inner) if matches!(**inner, Type::Record(_)) => quote!((#code).as_ref()),
        Type::List(_) => quote!((#code).as_slice()),
        Type::Record(_) => quote!(&(#code)),
        _ => code,
    }
}

/// Turn code of representation `repr` into an owned value.
/// A record, or an optional one.
fn is_record(ty: &Type) -> bool {
    match ty {
        Type::Record(_) => true,
        Type::Optional(inner) => matches!(**inner, Type::Record(_)),
        _ => false,
    }
}

pub fn to_owned(code: TokenStream, repr: Repr, ty: &Type) -> TokenStream {
    if repr == Repr::Owned {
        return code;
    }
    match ty {
        Type::String => quote!((#code).to_string()),
        Type::Optional(inner) if **inner == Type::String => quote!((#code).map(str::to_string)),
        Type::Optional(inner) if matches!(**inner, Type::Record(_)) => quote!((#code).cloned()),
        Type::List(_) => quote!((#code).to_vec()),
        Type::Record(_) => quote!((#code).clone()),
        _ => code,
    }
}
