//! From expression text to the AST, through `syn`.

use proc_macro2::{LineColumn, Span};
use syn::spanned::Spanned;

use super::{BinOp, Expr, ExprKind, ExprProblem, ExprSpan, UnOp};

/// Parse one expression. Every construct outside the language is a problem.
pub fn parse(text: &str) -> Result<Expr, Vec<ExprProblem>> {
    if text.trim().is_empty() {
        return Err(vec![ExprProblem::Syntax {
            message: "empty expression".into(),
            span: 0..text.len(),
        }]);
    }
    if let Some(span) = super::depth::too_deep(text) {
        return Err(vec![ExprProblem::TooDeep { span }]);
    }
    let lines = LineIndex::new(text);
    let parsed: syn::Expr = syn::parse_str(text).map_err(|e| {
        let mut message = e.to_string();
        if message == "cannot parse string into token stream" {
            // proc-macro2's lexer failed: usually a bad escape in a string literal.
            message =
                "unreadable token (an invalid escape like `\\d` in a string? write regexes as raw strings: r\"\\d+\")"
                    .into();
        }
        vec![ExprProblem::Syntax {
            message,
            span: lines.range(e.span()),
        }]
    })?;
    let mut conv = Converter {
        lines,
        problems: Vec::new(),
    };
    let expr = conv.expr(&parsed);
    if conv.problems.is_empty() {
        Ok(expr)
    } else {
        Err(conv.problems)
    }
}

/// Maps proc-macro2 line/column positions (columns count characters) back to byte
/// offsets in the text, in constant time: a 100,000-argument call has as many spans
/// on one line.
struct LineIndex {
    len: usize,
    /// Per line: its first byte and the index of its first character.
    starts: Vec<(usize, usize)>,
    /// The byte offset of every character, when the text is not ASCII.
    char_offsets: Option<Vec<usize>>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![(0, 0)];
        let char_offsets = if text.is_ascii() {
            starts.extend(text.match_indices('\n').map(|(i, _)| (i + 1, i + 1)));
            None
        } else {
            for (c, (i, ch)) in text.char_indices().enumerate() {
                if ch == '\n' {
                    starts.push((i + 1, c + 1));
                }
            }
            Some(text.char_indices().map(|(i, _)| i).collect())
        };
        LineIndex {
            len: text.len(),
            starts,
            char_offsets,
        }
    }

    fn offset(&self, at: LineColumn) -> usize {
        let Some(&(byte, char)) = self.starts.get(at.line.saturating_sub(1)) else {
            return self.len;
        };
        let offset = match &self.char_offsets {
            None => byte + at.column,
            Some(offsets) => offsets.get(char + at.column).copied().unwrap_or(self.len),
        };
        offset.min(self.len)
    }

    fn range(&self, span: Span) -> ExprSpan {
        let start = self.offset(span.start());
        let end = self.offset(span.end()).max(start);
        start..end
    }
}

struct Converter {
    lines: LineIndex,
    problems: Vec<ExprProblem>,
}

impl Converter {
    fn unsupported(&mut self, what: &str, help: &str, span: Span) -> Expr {
        let span = self.lines.range(span);
        self.problems.push(ExprProblem::Unsupported {
            what: what.into(),
            help: help.into(),
            span: span.clone(),
        });
        Expr {
            kind: ExprKind::Bool(false),
            span,
        }
    }

    fn expr(&mut self, e: &syn::Expr) -> Expr {
        let kind = match e {
            syn::Expr::Lit(lit) => return self.literal(&lit.lit),
            syn::Expr::Paren(p) => return self.reparen(&p.expr, self.lines.range(p.paren_token.span.join())),
            syn::Expr::Group(g) => return self.reparen(&g.expr, self.lines.range(e.span())),
            syn::Expr::Path(p) => match self.field_path(p) {
                Some(kind) => kind,
                None => return self.unsupported(
                    "a path",
                    "refer to fields by name (`temperature`, `location.lat`); `::` paths are not part of the language",
                    e.span(),
                ),
            },
            syn::Expr::Field(f) => {
                let base = self.expr(&f.base);
                let syn::Member::Named(ident) = &f.member else {
                    return self.unsupported("a tuple field", "fields are accessed by name", f.member.span());
                };
                match base.kind {
                    ExprKind::Field(mut segments) => {
                        segments.push((ident.to_string(), self.lines.range(ident.span())));
                        ExprKind::Field(segments)
                    }
                    _ => {
                        return self.unsupported(
                            "a field of a computed value",
                            "only fields of the input record can be accessed (`location.lat`)",
                            f.member.span(),
                        )
                    }
                }
            }
            syn::Expr::Unary(u) => {
                let op = match u.op {
                    syn::UnOp::Neg(_) => UnOp::Neg,
                    syn::UnOp::Not(_) => UnOp::Not,
                    _ => {
                        return self.unsupported("dereferencing", "values are used directly, without `*`", u.op.span())
                    }
                };
                ExprKind::Unary(op, Box::new(self.expr(&u.expr)))
            }
            syn::Expr::Binary(b) => {
                let op = match b.op {
                    syn::BinOp::Add(_) => BinOp::Add,
                    syn::BinOp::Sub(_) => BinOp::Sub,
                    syn::BinOp::Mul(_) => BinOp::Mul,
                    syn::BinOp::Div(_) => BinOp::Div,
                    syn::BinOp::Rem(_) => BinOp::Rem,
                    syn::BinOp::Eq(_) => BinOp::Eq,
                    syn::BinOp::Ne(_) => BinOp::Ne,
                    syn::BinOp::Lt(_) => BinOp::Lt,
                    syn::BinOp::Le(_) => BinOp::Le,
                    syn::BinOp::Gt(_) => BinOp::Gt,
                    syn::BinOp::Ge(_) => BinOp::Ge,
                    syn::BinOp::And(_) => BinOp::And,
                    syn::BinOp::Or(_) => BinOp::Or,
                    _ => {
                        return self.unsupported(
                            "this operator",
                            "operators: + - * / % == != < <= > >= && || !",
                            b.op.span(),
                        )
                    }
                };
                ExprKind::Binary(op, Box::new(self.expr(&b.left)), Box::new(self.expr(&b.right)))
            }
            syn::Expr::If(i) => {
                let cond = self.expr(&i.cond);
                let then = self.block(&i.then_branch, i.if_token.span());
                let Some((_, else_branch)) = &i.else_branch else {
                    return self.unsupported(
                        "`if` without `else`",
                        "every `if` needs an `else`: `if cond { a } else { b }`",
                        e.span(),
                    );
                };
                let otherwise = match &**else_branch {
                    syn::Expr::Block(b) => self.block(&b.block, b.span()),
                    other => self.expr(other),
                };
                ExprKind::If(Box::new(cond), Box::new(then), Box::new(otherwise))
            }
            syn::Expr::Block(b) if b.label.is_none() => return self.block(&b.block, e.span()),
            syn::Expr::Call(c) => {
                let name = match &*c.func {
                    syn::Expr::Path(p) if p.qself.is_none() && p.path.get_ident().is_some() => {
                        p.path.get_ident().map(|i| i.to_string()).unwrap_or_default()
                    }
                    other => {
                        return self.unsupported(
                            "calling this",
                            "only the built-in functions can be called, by name: `lower(status)`",
                            other.span(),
                        )
                    }
                };
                let args = c.args.iter().map(|a| self.expr(a)).collect();
                ExprKind::Call {
                    name,
                    name_span: self.lines.range(c.func.span()),
                    args,
                }
            }
            syn::Expr::MethodCall(m) => {
                if m.turbofish.is_some() {
                    return self.unsupported("a turbofish", "functions take no type arguments", m.span());
                }
                // `status.lower()` is sugar for `lower(status)`.
                let mut args = vec![self.expr(&m.receiver)];
                args.extend(m.args.iter().map(|a| self.expr(a)));
                ExprKind::Call {
                    name: m.method.to_string(),
                    name_span: self.lines.range(m.method.span()),
                    args,
                }
            }
            syn::Expr::Index(i) => ExprKind::Index(Box::new(self.expr(&i.expr)), Box::new(self.expr(&i.index))),
            syn::Expr::Macro(_) => {
                return self.unsupported("a macro", "macros are not part of the expression language", e.span())
            }
            syn::Expr::Closure(_) => {
                return self.unsupported(
                    "a closure",
                    "closures are not part of the expression language",
                    e.span(),
                )
            }
            syn::Expr::Assign(_) => {
                return self.unsupported(
                    "assignment",
                    "expressions compute values; use `==` to compare",
                    e.span(),
                )
            }
            syn::Expr::Cast(_) => {
                return self.unsupported(
                    "`as` casts",
                    "convert with `to_int(x)`, `to_float(x)`, `to_string(x)`",
                    e.span(),
                )
            }
            syn::Expr::Reference(_) => {
                return self.unsupported("a reference", "values are used directly, without `&`", e.span())
            }
            syn::Expr::Unsafe(_) => {
                return self.unsupported("`unsafe`", "not part of the expression language", e.span())
            }
            syn::Expr::Match(_) => {
                return self.unsupported("`match`", "use `if … { … } else if … { … } else { … }`", e.span())
            }
            _ => {
                return self.unsupported(
                    "this syntax",
                    "see docs/language.md for what expressions can contain",
                    e.span(),
                )
            }
        };
        let span = self.span_of(e, &kind);
        Expr { kind, span }
    }

    /// The span of `e`, from its converted parts and its own tokens where it has
    /// parts: syn's `span()` walks every token below, which over a chain of 4,000
    /// operators (a tree 4,000 deep) would be quadratic.
    fn span_of(&self, e: &syn::Expr, kind: &ExprKind) -> ExprSpan {
        let end_of = |close: Span| self.lines.range(close).end;
        let (start, end) = match (e, kind) {
            (_, ExprKind::Binary(_, left, right)) => (left.span.start, right.span.end),
            (syn::Expr::Unary(u), ExprKind::Unary(_, inner)) => (self.lines.range(u.op.span()).start, inner.span.end),
            (syn::Expr::Call(c), ExprKind::Call { name_span, .. }) => {
                (name_span.start, end_of(c.paren_token.span.close()))
            }
            (
                syn::Expr::MethodCall(m),
                ExprKind::Call {
                    args: receiver_first, ..
                },
            ) => match receiver_first.first() {
                Some(receiver) => (receiver.span.start, end_of(m.paren_token.span.close())),
                None => return self.lines.range(e.span()),
            },
            (syn::Expr::Index(i), ExprKind::Index(base, _)) => (base.span.start, end_of(i.bracket_token.span.close())),
            (syn::Expr::Field(_), ExprKind::Field(segments)) => match (segments.first(), segments.last()) {
                (Some(first), Some(last)) => (first.1.start, last.1.end),
                _ => return self.lines.range(e.span()),
            },
            _ => return self.lines.range(e.span()),
        };
        start..end.max(start)
    }

    /// A parenthesised expression keeps the span of its parentheses.
    fn reparen(&mut self, inner: &syn::Expr, span: ExprSpan) -> Expr {
        let mut e = self.expr(inner);
        e.span = span;
        e
    }

    fn block(&mut self, block: &syn::Block, span: Span) -> Expr {
        match block.stmts.as_slice() {
            [syn::Stmt::Expr(e, None)] => self.expr(e),
            _ => self.unsupported(
                "a block with statements",
                "an `if` branch holds one expression: `if cond { a } else { b }`",
                if block.stmts.is_empty() { span } else { block.span() },
            ),
        }
    }

    fn field_path(&mut self, p: &syn::ExprPath) -> Option<ExprKind> {
        if p.qself.is_some() {
            return None;
        }
        let ident = p.path.get_ident()?;
        let name = ident.to_string();
        let span = self.lines.range(ident.span());
        Some(match name.as_str() {
            "true" => ExprKind::Bool(true),
            "false" => ExprKind::Bool(false),
            _ => ExprKind::Field(vec![(name.trim_start_matches("r#").to_string(), span)]),
        })
    }

    fn literal(&mut self, lit: &syn::Lit) -> Expr {
        let span = self.lines.range(lit.span());
        let kind = match lit {
            syn::Lit::Str(s) => ExprKind::Str(s.value()),
            syn::Lit::Bool(b) => ExprKind::Bool(b.value),
            syn::Lit::Int(i) if i.suffix().is_empty() => match i.base10_parse::<u64>() {
                Ok(v) => ExprKind::Int(v),
                Err(_) => {
                    self.problems.push(ExprProblem::Syntax {
                        message: "integer literal too large".into(),
                        span: span.clone(),
                    });
                    ExprKind::Int(0)
                }
            },
            syn::Lit::Float(f) if f.suffix().is_empty() => match f.base10_parse::<f64>() {
                Ok(v) if v.is_finite() => ExprKind::Float(v),
                Ok(_) => {
                    self.problems.push(ExprProblem::Syntax {
                        message: "float literal too large".into(),
                        span: span.clone(),
                    });
                    ExprKind::Float(0.0)
                }
                Err(_) => {
                    self.problems.push(ExprProblem::Syntax {
                        message: "invalid float literal".into(),
                        span: span.clone(),
                    });
                    ExprKind::Float(0.0)
                }
            },
            syn::Lit::Int(_) | syn::Lit::Float(_) => {
                return self.unsupported(
                    "a literal with a type suffix",
                    "write plain numbers (`25`, `25.0`); their type follows from the context",
                    lit.span(),
                )
            }
            _ => {
                return self.unsupported(
                    "this kind of literal",
                    "literals are strings (\"ok\"), numbers (25, 2.5) and booleans (true, false)",
                    lit.span(),
                )
            }
        };
        Expr { kind, span }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_text(text: &str) -> (String, String) {
        let problems = parse(text).unwrap_err();
        match &problems[0] {
            ExprProblem::Syntax { message, span } => (message.clone(), text[span.clone()].to_string()),
            ExprProblem::Unsupported { what, span, .. } => (what.clone(), text[span.clone()].to_string()),
            ExprProblem::TooDeep { span } => ("too deep".into(), text[span.clone()].to_string()),
        }
    }

    #[test]
    fn parses_the_design_example() {
        let e = parse("status == \"ok\" && temperature > 25.0").unwrap();
        let ExprKind::Binary(BinOp::And, left, right) = e.kind else {
            panic!("{e:?}")
        };
        assert!(matches!(left.kind, ExprKind::Binary(BinOp::Eq, ..)));
        assert!(matches!(right.kind, ExprKind::Binary(BinOp::Gt, ..)));
    }

    #[test]
    fn nested_fields_and_method_sugar() {
        let e = parse("location.lat.abs()").unwrap();
        let ExprKind::Call { name, args, .. } = e.kind else {
            panic!()
        };
        assert_eq!(name, "abs");
        assert_eq!(
            args[0].kind,
            ExprKind::Field(vec![("location".into(), 0..8), ("lat".into(), 9..12)])
        );
    }

    #[test]
    fn rejects_injection_attempts_at_their_column() {
        assert_eq!(problem_text("a > 1 && std::process::exit(1)").1, "std::process::exit");
        assert_eq!(problem_text("println!(\"x\")").0, "a macro");
        assert_eq!(problem_text("x > 1 as u8").0, "`as` casts");
        assert_eq!(problem_text("(|| 1)()").1, "(|| 1)");
        assert_eq!(problem_text("unsafe { 1 }").0, "`unsafe`");
    }

    #[test]
    fn syntax_errors_are_located() {
        let (_, at) = problem_text("temperature > ");
        assert!(at.is_empty() || at.trim().is_empty() || at == "temperature > ", "{at}");
        assert!(parse("").is_err());
    }

    #[test]
    fn non_finite_float_literals_are_problems() {
        // Generated code could not hold them (proc-macro2 panics on a non-finite literal).
        assert_eq!(problem_text("1e400").0, "float literal too large");
        assert_eq!(problem_text("x > 1e400").1, "1e400");
        assert!(parse("1e300").is_ok());
    }

    #[test]
    fn spans_cover_whole_expressions() {
        for text in [
            "a + b * c - d",
            "(a + b) * c",
            "lower(s).upper() == \"X\"",
            "m[0][1] + -x",
            "!(a && b) || c.d.e",
            "if a { 1 } else { 2 }",
            "ünï + cødé",
        ] {
            assert_eq!(parse(text).map(|e| e.span), Ok(0..text.len()), "{text}");
        }
        let e = parse("a.lower() + f(b, c)").unwrap();
        let ExprKind::Binary(_, left, right) = e.kind else {
            panic!()
        };
        assert_eq!((left.span, right.span), (0..9, 12..19));
    }

    #[test]
    fn too_deep_before_syn_parses() {
        let text = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert_eq!(problem_text(&text).0, "too deep");
    }

    #[test]
    fn if_requires_else() {
        assert_eq!(problem_text("if a { 1 }").0, "`if` without `else`");
        assert!(parse("if a { 1 } else if b { 2 } else { 3 }").is_ok());
    }
}
