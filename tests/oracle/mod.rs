//! A differential oracle for expressions: random well-typed expressions built as a
//! test-side tree, written out as spec text for the compiler, and evaluated here by a
//! small interpreter that follows docs/language.md and shares no code with the
//! compiler or the runtime. `properties.rs` runs the compiled pipeline on generated
//! records and compares every output field (or dead letter) with [`eval::eval`].

pub mod eval;
pub mod gen;

/// The types an oracle expression can have (the schema's, plus optionals for output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Str,
    Int,
    Uint,
    Float,
    Bool,
    Ts,
    OptFloat,
    OptStr,
}

/// An expression of rill's language, as the test builds it.
#[derive(Debug, Clone)]
pub enum E {
    Field(&'static str),
    Int(i64),
    /// An integer literal next to a `u64`, whose type it takes.
    Uint(u64),
    Float(f64),
    Str(&'static str),
    /// A raw string literal (`r"…"`), for regexes.
    Raw(&'static str),
    Bool(bool),
    /// `+ - * / %` on numbers, `+` on strings, `ts ± ms`, `ts - ts`.
    Bin(&'static str, Box<E>, Box<E>),
    /// `== != < <= > >=`.
    Cmp(&'static str, Box<E>, Box<E>),
    And(Box<E>, Box<E>),
    Or(Box<E>, Box<E>),
    Not(Box<E>),
    Neg(Box<E>),
    If(Box<E>, Box<E>, Box<E>),
    /// A built-in function; the overload follows the arguments' values.
    Call(&'static str, Vec<E>),
    /// `split(s, sep)[i]`.
    Index(Box<E>, Box<E>),
}

impl E {
    /// The expression as a spec writes it (fully parenthesised, so precedence is
    /// never in question).
    pub fn render(&self) -> String {
        match self {
            E::Field(name) => name.to_string(),
            E::Int(i) if *i < 0 => format!("({i})"),
            E::Int(i) => i.to_string(),
            E::Uint(u) => u.to_string(),
            // `{:?}` always has a `.` or an exponent, so the literal is an f64.
            E::Float(f) => format!("{f:?}"),
            E::Str(s) => format!("{s:?}"),
            E::Raw(s) => format!("r\"{s}\""),
            E::Bool(b) => b.to_string(),
            E::Bin(op, a, b) | E::Cmp(op, a, b) => format!("({} {op} {})", a.render(), b.render()),
            E::And(a, b) => format!("({} && {})", a.render(), b.render()),
            E::Or(a, b) => format!("({} || {})", a.render(), b.render()),
            E::Not(a) => format!("!({})", a.render()),
            E::Neg(a) => format!("-({})", a.render()),
            E::If(c, a, b) => format!("if {} {{ {} }} else {{ {} }}", c.render(), a.render(), b.render()),
            E::Call(f, args) => {
                let args: Vec<String> = args.iter().map(E::render).collect();
                format!("{f}({})", args.join(", "))
            }
            E::Index(list, i) => format!("{}[{}]", list.render(), i.render()),
        }
    }
}
