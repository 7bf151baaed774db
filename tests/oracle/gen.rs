//! Random well-typed oracle expressions and the records they run on, with the edge
//! values the runtime must get right: `i64::MIN`/`MAX`, `u64::MAX`, ±0.0, `1e308`,
//! 2^63 as a float, empty and non-ASCII strings, nulls and missing optionals, and
//! timestamps before 1970.

use proptest::prelude::*;

use super::eval::{Record, V};
use super::{Ty, E};

/// The schema every oracle record has (field order is the JSON's).
pub const SCHEMA: &[(&str, &str)] = &[
    ("id", "i64"),
    ("s1", "string"),
    ("s2", "string"),
    ("i1", "i64"),
    ("i2", "i64"),
    ("u1", "u64"),
    ("f1", "f64"),
    ("f2", "f64"),
    ("b1", "bool"),
    ("o1", "f64?"),
    ("o2", "f64?"),
    ("os", "string?"),
    ("t1", "timestamp_ms"),
    ("t2", "timestamp_ms"),
    ("t3", "timestamp_s"),
    ("t4", "timestamp"),
];

const STRINGS: &[&str] = &[
    "",
    "ok",
    "a-b",
    "x-1-",
    " 12 ",
    "-7",
    "3.5",
    "Straße",
    "  ",
    "1",
    "true",
    "9223372036854775808",
    "ǅ-é",
    "2024-02-29",
    "2023-02-29",
    "1969-12-31",
    "2024-01-01T10:00:00+02:00",
    "1999-12-31T23:59:59.5Z",
    "say \"hi\" \\",
    "t\tab\u{1}",
    "💥x",
];
const INTS: &[i64] = &[
    0,
    1,
    -1,
    2,
    7,
    -3,
    100,
    -9,
    1_000_000_007,
    i64::MAX,
    i64::MIN,
    i64::MIN + 1,
];
const UINTS: &[u64] = &[0, 1, 5, 42, 9_223_372_036_854_775_808, u64::MAX];
const FLOATS: &[f64] = &[
    0.0,
    -0.0,
    1.0,
    -2.5,
    0.5,
    2.5,
    -0.5,
    1.5,
    1e308,
    -1e308,
    1e-310,
    123.456,
    9_223_372_036_854_775_808.0,
    -9_223_372_036_854_775_808.0,
    18_446_744_073_709_551_616.0,
];
/// Timestamps whose dates are easy to get wrong: the epoch, just before it, a leap day.
const TIMES: &[i64] = &[
    0,
    -1,
    1_700_000_000_123,
    86_399_999,
    -86_400_000,
    951_782_400_000,
    4_102_444_800_000,
    -62_135_596_800_000,
    // 10000-01-01 and -0001-12-31T23:59:59.999: years RFC 3339 cannot write.
    253_402_300_800_000,
    -62_167_219_200_001,
];
/// The times an RFC 3339 field can hold (years 0000–9999).
const RFC3339_TIMES: &[i64] = &[
    0,
    -1,
    1_700_000_000_123,
    -86_400_000,
    951_782_400_000,
    -62_135_596_800_000,
];

fn pick<T: Clone + std::fmt::Debug + 'static>(values: &'static [T]) -> BoxedStrategy<T> {
    proptest::sample::select(values).boxed()
}

/// One record with the given id.
pub fn record(id: i64) -> BoxedStrategy<Record> {
    let optional = |v: BoxedStrategy<V>| prop_oneof![1 => Just(V::Null), 3 => v].boxed();
    (
        (pick(STRINGS), pick(STRINGS), pick(INTS), pick(INTS), pick(UINTS)),
        (pick(FLOATS), pick(FLOATS), any::<bool>()),
        (
            optional(pick(FLOATS).prop_map(V::Float).boxed()),
            optional(pick(FLOATS).prop_map(V::Float).boxed()),
            optional(pick(STRINGS).prop_map(|s| V::Str(s.into())).boxed()),
        ),
        (pick(TIMES), pick(TIMES), pick(TIMES), pick(RFC3339_TIMES)),
    )
        .prop_map(
            move |((s1, s2, i1, i2, u1), (f1, f2, b1), (o1, o2, os), (t1, t2, t3, t4))| {
                vec![
                    ("id", V::Int(id)),
                    ("s1", V::Str(s1.into())),
                    ("s2", V::Str(s2.into())),
                    ("i1", V::Int(i1)),
                    ("i2", V::Int(i2)),
                    ("u1", V::Uint(u1)),
                    ("f1", V::Float(f1)),
                    ("f2", V::Float(f2)),
                    ("b1", V::Bool(b1)),
                    ("o1", o1),
                    ("o2", o2),
                    ("os", os),
                    ("t1", V::Ts(t1)),
                    ("t2", V::Ts(t2)),
                    ("t3", V::Ts(t3)),
                    ("t4", V::Ts(t4)),
                ]
            },
        )
        .boxed()
}

fn bx(e: E) -> Box<E> {
    Box::new(e)
}
fn call(f: &'static str, args: Vec<E>) -> E {
    E::Call(f, args)
}

fn leaf(t: Ty) -> BoxedStrategy<E> {
    match t {
        Ty::Str => prop_oneof![
            pick(&["s1", "s2"]).prop_map(E::Field),
            pick(&["", "-", "ok", " x ", "Straße", "a-b", "\t\"é\\"]).prop_map(E::Str),
        ]
        .boxed(),
        Ty::Int => prop_oneof![
            pick(&["i1", "i2"]).prop_map(E::Field),
            pick(&[0, 1, -1, 2, 7, -3, 1000, i64::MAX]).prop_map(E::Int),
        ]
        .boxed(),
        // A bare integer literal would be an i64: u64 expressions start from a field.
        Ty::Uint => Just(E::Field("u1")).boxed(),
        Ty::Float => prop_oneof![
            pick(&["f1", "f2"]).prop_map(E::Field),
            pick(&[0.0, 2.5, 0.1, 3.0, 1e308, 1e-300]).prop_map(E::Float),
            pick(&["o1", "o2"]).prop_map(|o| call("coalesce", vec![E::Field(o), E::Float(1.5)])),
        ]
        .boxed(),
        Ty::Bool => prop_oneof![
            Just(E::Field("b1")),
            any::<bool>().prop_map(E::Bool),
            pick(&["o1", "o2", "os"]).prop_map(|o| call("is_null", vec![E::Field(o)])),
        ]
        .boxed(),
        Ty::Ts => pick(&["t1", "t2", "t3", "t4"]).prop_map(E::Field).boxed(),
        Ty::OptFloat => pick(&["o1", "o2"]).prop_map(E::Field).boxed(),
        Ty::OptStr => Just(E::Field("os")).boxed(),
    }
}

/// A well-typed expression of type `t`, at most `depth` levels deep.
pub fn expr(t: Ty, depth: u32) -> BoxedStrategy<E> {
    if depth == 0 {
        return leaf(t);
    }
    let d = depth - 1;
    let same = move || expr(t, d);
    let of = move |t: Ty| expr(t, d);
    let if_else = (of(Ty::Bool), same(), same()).prop_map(|(c, a, b)| E::If(bx(c), bx(a), bx(b)));
    let min_max = (pick(&["min", "max"]), same(), same()).prop_map(|(f, a, b)| call(f, vec![a, b]));
    let arith =
        |ops: &'static [&'static str]| (pick(ops), same(), same()).prop_map(|(op, a, b)| E::Bin(op, bx(a), bx(b)));
    match t {
        Ty::Str => prop_oneof![
            leaf(t),
            leaf(t),
            (pick(&["lower", "upper", "trim"]), same()).prop_map(|(f, a)| call(f, vec![a])),
            (same(), same(), same()).prop_map(|(a, b, c)| call("concat", vec![a, b, c])),
            (same(), same()).prop_map(|(a, b)| E::Bin("+", bx(a), bx(b))),
            (same(), leaf(t), leaf(t)).prop_map(|(a, b, c)| call("replace", vec![a, b, c])),
            (same(), leaf(t), of(Ty::Int)).prop_map(|(a, sep, i)| E::Index(bx(call("split", vec![a, sep])), bx(i))),
            pick(&[Ty::Int, Ty::Uint, Ty::Float, Ty::Bool, Ty::Ts])
                .prop_flat_map(move |from| expr(from, d))
                .prop_map(|a| call("to_string", vec![a])),
            (
                pick(&["t1", "t2", "t3", "t4"]),
                pick(&["%Y-%m-%d", "%H:%M:%S", "rfc3339", "%Y%m%d-%H%M"])
            )
                .prop_map(|(t, f)| call("format_timestamp", vec![E::Field(t), E::Str(f)])),
            same().prop_map(|a| call("coalesce", vec![E::Field("os"), a])),
            if_else,
        ]
        .boxed(),
        Ty::Int => prop_oneof![
            leaf(t),
            leaf(t),
            arith(&["+", "-", "*", "/", "%"]),
            arith(&["+", "-", "*", "/", "%"]),
            same().prop_map(|a| E::Neg(bx(a))),
            same().prop_map(|a| call("abs", vec![a])),
            min_max,
            (same(), same(), same()).prop_map(|(a, b, c)| call("clamp", vec![a, b, c])),
            of(Ty::Str).prop_map(|a| call("len", vec![a])),
            (of(Ty::Str), leaf(Ty::Str)).prop_map(|(a, sep)| call("len", vec![call("split", vec![a, sep])])),
            pick(&[Ty::Float, Ty::Str, Ty::Bool, Ty::Uint])
                .prop_flat_map(move |from| expr(from, d))
                .prop_map(|a| call("to_int", vec![a])),
            of(Ty::Ts).prop_map(|a| call("to_millis", vec![a])),
            (of(Ty::Ts), of(Ty::Ts)).prop_map(|(a, b)| E::Bin("-", bx(a), bx(b))),
            if_else,
        ]
        .boxed(),
        Ty::Uint => prop_oneof![
            leaf(t),
            // The literal takes the type of the other side: a u64.
            (
                pick(&["+", "-", "*", "/", "%"]),
                same(),
                pick(&[0u64, 1, 3, 9_223_372_036_854_775_807])
            )
                .prop_map(|(op, a, n)| E::Bin(op, bx(a), bx(E::Uint(n)))),
            arith(&["+", "-", "*", "/", "%"]),
            min_max,
            same().prop_map(|a| call("clamp", vec![a, E::Uint(1), E::Uint(40)])),
            pick(&[Ty::Int, Ty::Float, Ty::Str])
                .prop_flat_map(move |from| expr(from, d))
                .prop_map(|a| call("to_uint", vec![a])),
            if_else,
        ]
        .boxed(),
        Ty::Float => prop_oneof![
            leaf(t),
            leaf(t),
            arith(&["+", "-", "*", "/", "%"]),
            arith(&["+", "-", "*", "/", "%"]),
            same().prop_map(|a| E::Neg(bx(a))),
            (pick(&["abs", "round", "floor", "ceil"]), same()).prop_map(|(f, a)| call(f, vec![a])),
            min_max,
            (same(), same(), same()).prop_map(|(a, b, c)| call("clamp", vec![a, b, c])),
            pick(&[Ty::Int, Ty::Uint, Ty::Str])
                .prop_flat_map(move |from| expr(from, d))
                .prop_map(|a| call("to_float", vec![a])),
            (pick(&["o1", "o2"]), same()).prop_map(|(o, a)| call("coalesce", vec![E::Field(o), a])),
            // NaN: ∞ − ∞.
            Just(E::Bin(
                "-",
                bx(E::Bin("*", bx(E::Float(1e308)), bx(E::Float(10.0)))),
                bx(E::Bin("*", bx(E::Float(1e308)), bx(E::Float(10.0))))
            )),
            if_else,
        ]
        .boxed(),
        Ty::Bool => prop_oneof![
            leaf(t),
            (
                pick(&["==", "!=", "<", "<=", ">", ">="]),
                pick(&[Ty::Int, Ty::Uint, Ty::Float, Ty::Str, Ty::Ts])
            )
                .prop_flat_map(move |(op, ty)| (Just(op), expr(ty, d), expr(ty, d)))
                .prop_map(|(op, a, b)| E::Cmp(op, bx(a), bx(b))),
            (pick(&["==", "!="]), pick(&["o1", "o2"]), pick(&["o1", "o2"])).prop_map(|(op, a, b)| E::Cmp(
                op,
                bx(E::Field(a)),
                bx(E::Field(b))
            )),
            (same(), same()).prop_map(|(a, b)| E::And(bx(a), bx(b))),
            (same(), same()).prop_map(|(a, b)| E::Or(bx(a), bx(b))),
            same().prop_map(|a| E::Not(bx(a))),
            (
                pick(&["contains", "starts_with", "ends_with"]),
                of(Ty::Str),
                of(Ty::Str)
            )
                .prop_map(|(f, a, b)| call(f, vec![a, b])),
            of(Ty::Str).prop_map(|a| call("to_bool", vec![a])),
            (of(Ty::Str), pick(&[r"^[a-z]+-\d*$", "-"])).prop_map(|(a, re)| call("matches", vec![a, E::Raw(re)])),
        ]
        .boxed(),
        Ty::Ts => prop_oneof![
            leaf(t),
            (pick(&["+", "-"]), same(), of(Ty::Int)).prop_map(|(op, a, b)| E::Bin(op, bx(a), bx(b))),
            of(Ty::Int).prop_map(|a| call("to_timestamp", vec![a])),
            // Parsed from the records' strings, whose every value the oracle knows.
            (pick(&["s1", "s2"]), pick(&["%Y-%m-%d", "rfc3339"]))
                .prop_map(|(s, f)| call("parse_timestamp", vec![E::Field(s), E::Str(f)])),
            min_max,
            if_else,
        ]
        .boxed(),
        Ty::OptFloat => prop_oneof![
            leaf(t),
            (pick(&["o1", "o2"]), pick(&["o1", "o2"]))
                .prop_map(|(a, b)| call("coalesce", vec![E::Field(a), E::Field(b)])),
        ]
        .boxed(),
        Ty::OptStr => prop_oneof![leaf(t), same().prop_map(|a| call("coalesce", vec![E::Field("os"), a])),].boxed(),
    }
}

/// An expression of any output type, with that type.
pub fn any_expr() -> BoxedStrategy<(Ty, E)> {
    pick(&[
        Ty::Str,
        Ty::Int,
        Ty::Uint,
        Ty::Float,
        Ty::Float,
        Ty::Bool,
        Ty::Ts,
        Ty::OptFloat,
        Ty::OptStr,
        Ty::Bool,
    ])
    .prop_flat_map(|t| (Just(t), expr(t, 3)))
    .boxed()
}

/// Every operator at every type it takes and every function at every overload, once,
/// on fields (so the records' edge values reach each): what a random sample may miss.
pub fn catalogue() -> Vec<(Ty, E)> {
    let f = E::Field;
    let bin = |op, a, b| E::Bin(op, bx(a), bx(b));
    let cmp = |op, a, b| E::Cmp(op, bx(a), bx(b));
    let one = |name, a| call(name, vec![a]);
    let two = |name, a, b| call(name, vec![a, b]);
    let mut all = Vec::new();
    for op in ["+", "-", "*", "/", "%"] {
        all.push((Ty::Int, bin(op, f("i1"), f("i2"))));
        all.push((Ty::Uint, bin(op, f("u1"), E::Uint(3))));
        all.push((Ty::Float, bin(op, f("f1"), f("f2"))));
    }
    all.push((Ty::Uint, bin("-", E::Uint(1), f("u1"))));
    all.push((Ty::Uint, bin("*", f("u1"), f("u1"))));
    all.push((Ty::Uint, bin("/", f("u1"), call("to_uint", vec![f("i1")]))));
    for op in ["==", "!=", "<", "<=", ">", ">="] {
        all.push((Ty::Bool, cmp(op, f("i1"), f("i2"))));
        all.push((Ty::Bool, cmp(op, f("f1"), f("f2"))));
        all.push((Ty::Bool, cmp(op, f("s1"), f("s2"))));
        all.push((Ty::Bool, cmp(op, f("t1"), f("t2"))));
        all.push((Ty::Bool, cmp(op, f("u1"), E::Uint(42))));
    }
    for op in ["==", "!="] {
        all.push((Ty::Bool, cmp(op, f("o1"), f("o2"))));
        all.push((
            Ty::Bool,
            cmp(op, bin("/", f("f1"), f("f1")), bin("/", f("f1"), f("f1"))),
        ));
    }
    all.extend([
        (Ty::Int, E::Neg(bx(f("i1")))),
        (Ty::Float, E::Neg(bx(f("f1")))),
        (Ty::Str, bin("+", f("s1"), f("s2"))),
        (Ty::Ts, bin("+", f("t1"), f("i1"))),
        (Ty::Ts, bin("-", f("t1"), f("i1"))),
        (Ty::Int, bin("-", f("t1"), f("t2"))),
        (
            Ty::Bool,
            E::And(
                bx(cmp("!=", f("i2"), E::Int(0))),
                bx(cmp(">", bin("/", f("i1"), f("i2")), E::Int(2))),
            ),
        ),
        (
            Ty::Bool,
            E::Or(
                bx(cmp("==", f("i2"), E::Int(0))),
                bx(cmp(">", bin("%", f("i1"), f("i2")), E::Int(0))),
            ),
        ),
        (Ty::Bool, E::Not(bx(f("b1")))),
        (
            Ty::Int,
            E::If(bx(f("b1")), bx(bin("/", f("i1"), f("i2"))), bx(E::Int(0))),
        ),
        (Ty::Str, one("lower", f("s1"))),
        (Ty::Str, one("upper", f("s1"))),
        (Ty::Str, one("trim", f("s1"))),
        (Ty::Bool, two("contains", f("s1"), f("s2"))),
        (Ty::Bool, two("starts_with", f("s1"), f("s2"))),
        (Ty::Bool, two("ends_with", f("s1"), f("s2"))),
        (Ty::Int, one("len", f("s1"))),
        (Ty::Int, one("len", two("split", f("s1"), f("s2")))),
        (Ty::Str, call("replace", vec![f("s1"), f("s2"), E::Str("_")])),
        (
            Ty::Str,
            E::Index(bx(two("split", f("s1"), E::Str("-"))), bx(E::Int(-1))),
        ),
        (Ty::Str, E::Index(bx(two("split", f("s1"), f("s2"))), bx(E::Int(1)))),
        (Ty::Str, E::Index(bx(two("split", f("s1"), E::Str(""))), bx(f("i1")))),
        (Ty::Str, call("concat", vec![f("s1"), f("s2"), E::Str("!")])),
        (Ty::Bool, two("matches", f("s1"), E::Raw(r"^[a-z]+-\d*$"))),
        (Ty::Int, one("abs", f("i1"))),
        (Ty::Float, one("abs", f("f1"))),
        (Ty::Float, one("round", f("f1"))),
        (Ty::Float, one("floor", f("f1"))),
        (Ty::Float, one("ceil", f("f1"))),
        (Ty::Int, two("min", f("i1"), f("i2"))),
        (Ty::Uint, two("max", f("u1"), E::Uint(5))),
        (Ty::Float, two("min", f("f1"), bin("/", f("f2"), f("f2")))),
        (Ty::Float, two("max", f("f1"), f("f2"))),
        (Ty::Ts, two("min", f("t1"), f("t2"))),
        (Ty::Ts, two("max", f("t1"), f("t2"))),
        (Ty::Int, call("clamp", vec![f("i1"), f("i2"), E::Int(7)])),
        (Ty::Uint, call("clamp", vec![f("u1"), E::Uint(1), E::Uint(40)])),
        (Ty::Float, call("clamp", vec![f("f1"), f("f2"), E::Float(2.5)])),
        (Ty::Bool, one("is_null", f("o1"))),
        (Ty::Bool, one("is_null", f("os"))),
        (Ty::Float, two("coalesce", f("o1"), f("f2"))),
        (Ty::OptFloat, two("coalesce", f("o1"), f("o2"))),
        (Ty::OptFloat, f("o1")),
        (Ty::OptStr, f("os")),
        (Ty::OptStr, two("coalesce", f("os"), f("os"))),
        (Ty::Str, two("coalesce", f("os"), f("s1"))),
        (Ty::Ts, two("parse_timestamp", f("s1"), E::Str("%Y-%m-%d"))),
        (Ty::Ts, two("parse_timestamp", f("s2"), E::Str("rfc3339"))),
        (Ty::Str, two("format_timestamp", f("t1"), E::Str("%Y-%m-%d %H:%M:%S"))),
        (Ty::Str, two("format_timestamp", f("t2"), E::Str("rfc3339"))),
        (Ty::Ts, one("to_timestamp", f("i1"))),
        // Copied unchanged, a timestamp keeps its encoding; computed, it is milliseconds.
        (Ty::Ts, f("t3")),
        (Ty::Ts, f("t4")),
        (Ty::Ts, two("max", f("t3"), f("t4"))),
        (Ty::Str, one("to_string", one("to_timestamp", f("i1")))),
        (Ty::Int, one("to_millis", f("t1"))),
    ]);
    for field in ["s1", "b1", "i1", "u1", "f1", "t1"] {
        all.push((Ty::Str, one("to_string", f(field))));
    }
    for field in ["s1", "b1", "u1", "f1"] {
        all.push((Ty::Int, one("to_int", f(field))));
    }
    for field in ["s1", "i1", "f1"] {
        all.push((Ty::Uint, one("to_uint", f(field))));
    }
    for field in ["s1", "i1", "u1"] {
        all.push((Ty::Float, one("to_float", f(field))));
    }
    all.push((Ty::Bool, one("to_bool", f("s1"))));
    all
}
