//! The expression language of `filter:` and `map:`.
//!
//! Parsed with `syn` as a Rust expression, then converted into this small AST;
//! anything outside the language (macros, paths, closures, unknown functions)
//! is rejected, so a spec can never inject Rust into the generated code.

pub mod aggregates;
pub mod check;
pub mod depth;
pub mod functions;
pub mod parse;

use std::ops::Range;

pub use check::{check, TExpr, TKind};
pub use parse::parse;

/// A byte range inside the expression text.
pub type ExprSpan = Range<usize>;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: ExprSpan,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Str(String),
    /// An integer literal; its type (i64, u64 or f64) is decided by context.
    Int(u64),
    Float(f64),
    Bool(bool),
    /// `a` or `a.b.c`, with the span of each segment.
    Field(Vec<(String, ExprSpan)>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    Call {
        name: String,
        name_span: ExprSpan,
        args: Vec<Expr>,
    },
    Index(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
    pub fn is_arithmetic(self) -> bool {
        matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem)
    }
    pub fn is_ordering(self) -> bool {
        matches!(self, BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge)
    }
}

/// A problem in an expression, located inside its text.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprProblem {
    Syntax {
        message: String,
        span: ExprSpan,
    },
    Unsupported {
        what: String,
        help: String,
        span: ExprSpan,
    },
    /// Nesting beyond [`depth::MAX_NESTING`], at the level that went too deep.
    TooDeep {
        span: ExprSpan,
    },
}

/// The names in the first column of the table under `heading` in docs/language.md,
/// sorted: the function and aggregate tables are checked against the code with it.
#[cfg(test)]
pub(crate) fn documented_names(heading: &str) -> Vec<String> {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/language.md")).unwrap();
    let section = docs
        .split(heading)
        .nth(1)
        .unwrap_or_else(|| panic!("no `{heading}` section"));
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut names: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    names.sort();
    names
}
