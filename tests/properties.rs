//! Property tests: random valid specs pass `rill check` and their generated
//! code compiles (all of them in one cargo build); randomly mutated specs
//! never panic the compiler.

mod support;

use std::fs;
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Debug, Clone, Copy)]
enum T {
    Str,
    Int,
    Float,
    Bool,
}

const SCHEMA: &str = "    s1: string\n    s2: string\n    i1: i64\n    f1: f64\n    b1: bool\n    o1: f64?\n    t1: timestamp_ms\n    u1: u64\n";

fn leaf(t: T) -> BoxedStrategy<String> {
    let options: &[&str] = match t {
        T::Str => &[
            "s1",
            "s2",
            "\"ok\"",
            "\"a-b\"",
            "\"\"",
            "to_string(i1)",
            "format_timestamp(t1, \"%Y-%m\")",
        ],
        T::Int => &["i1", "0", "7", "-3", "len(s1)", "to_millis(t1)", "to_int(u1)"],
        T::Float => &["f1", "2.5", "coalesce(o1, 1.0)", "to_float(i1)", "-0.5"],
        T::Bool => &["b1", "true", "false", "is_null(o1)"],
    };
    proptest::sample::select(options.to_vec())
        .prop_map(str::to_string)
        .boxed()
}

/// A well-typed expression of type `t`, at most `depth` levels deep.
fn expr(t: T, depth: u32) -> BoxedStrategy<String> {
    if depth == 0 {
        return leaf(t);
    }
    let d = depth - 1;
    let same = || expr(t, d);
    let cond = || expr(T::Bool, d);
    let if_else = (cond(), same(), same()).prop_map(|(c, a, b)| format!("if {c} {{ {a} }} else {{ {b} }}"));
    match t {
        T::Str => prop_oneof![
            leaf(t),
            same().prop_map(|a| format!("lower({a})")),
            same().prop_map(|a| format!("{a}.upper()")),
            same().prop_map(|a| format!("trim({a})")),
            (same(), same()).prop_map(|(a, b)| format!("concat({a}, {b}, \"!\")")),
            (same(), same()).prop_map(|(a, b)| format!("({a} + {b})")),
            same().prop_map(|a| format!("replace({a}, \"a\", \"b\")")),
            same().prop_map(|a| format!("split({a}, \"-\")[0]")),
            if_else,
        ]
        .boxed(),
        T::Int => prop_oneof![
            leaf(t),
            (same(), same(), proptest::sample::select(vec!["+", "-", "*", "/", "%"]))
                .prop_map(|(a, b, op)| format!("({a} {op} {b})")),
            same().prop_map(|a| format!("abs({a})")),
            (same(), same()).prop_map(|(a, b)| format!("max({a}, {b})")),
            same().prop_map(|a| format!("clamp({a}, 0, 10)")),
            expr(T::Float, d).prop_map(|a| format!("to_int({a})")),
            if_else,
        ]
        .boxed(),
        T::Float => prop_oneof![
            leaf(t),
            (same(), same(), proptest::sample::select(vec!["+", "-", "*", "/"]))
                .prop_map(|(a, b, op)| format!("({a} {op} {b})")),
            same().prop_map(|a| format!("round({a})")),
            (same(), same()).prop_map(|(a, b)| format!("min({a}, {b})")),
            expr(T::Int, d).prop_map(|a| format!("(to_float({a}) * 1.5)")),
            if_else,
        ]
        .boxed(),
        T::Bool => prop_oneof![
            leaf(t),
            (expr(T::Int, d), expr(T::Int, d)).prop_map(|(a, b)| format!("({a} == {b})")),
            (expr(T::Float, d), expr(T::Float, d)).prop_map(|(a, b)| format!("({a} < {b})")),
            (expr(T::Str, d), expr(T::Str, d)).prop_map(|(a, b)| format!("({a} != {b})")),
            (expr(T::Str, d), expr(T::Str, d)).prop_map(|(a, b)| format!("contains({a}, {b})")),
            expr(T::Str, d).prop_map(|a| format!("matches({a}, r\"^[a-z]+-\\d*$\")")),
            same().prop_map(|a| format!("!({a})")),
            (same(), same()).prop_map(|(a, b)| format!("({a} && {b})")),
            (same(), same()).prop_map(|(a, b)| format!("({a} || {b})")),
        ]
        .boxed(),
    }
}

/// One transform: a filter, or a map that keeps the record's shape and adds a field.
fn transform() -> BoxedStrategy<String> {
    let filter = expr(T::Bool, 3).prop_map(|e| format!("    filter: '{}'\n", e.replace('\'', "''")));
    let map = (expr(T::Str, 2), expr(T::Int, 2), expr(T::Float, 2), expr(T::Bool, 2), expr(T::Str, 2)).prop_map(|(s, i, f, b, extra)| {
        let q = |e: String| format!("'{}'", e.replace('\'', "''"));
        format!(
            "    map:\n      s1: {}\n      s2: s2\n      i1: {}\n      f1: {}\n      b1: {}\n      o1: o1\n      t1: t1\n      u1: u1\n      extra: {}\n",
            q(s), q(i), q(f), q(b), q(extra)
        )
    });
    prop_oneof![filter, map].boxed()
}

/// A whole valid spec: generator → 1..=3 transforms → one sink.
fn spec() -> impl Strategy<Value = String> {
    (proptest::collection::vec(transform(), 1..=3), any::<bool>(), 0u64..1000).prop_map(|(transforms, csv, seed)| {
        let mut text = format!(
            "name: prop\nschemas:\n  row:\n{SCHEMA}sources:\n  rows:\n    type: generator\n    schema: row\n    count: 5\n    seed: {seed}\n    fields:\n      s1: {{ values: [ok, a-b, x-1] }}\n transforms:\n"
        )
        .replace("\n transforms:", "\ntransforms:");
        let mut input = "rows".to_string();
        for (i, body) in transforms.iter().enumerate() {
            let name = format!("t{i}");
            text.push_str(&format!("  {name}:\n    input: {input}\n{body}"));
            input = name;
        }
        let format = if csv { "csv" } else { "json" };
        text.push_str(&format!("sinks:\n  out:\n    type: stdout\n    input: {input}\n    format: {format}\n"));
        text
    })
}

#[test]
fn random_valid_specs_check_and_their_code_compiles_in_one_build() {
    let generated: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&spec(), |text| {
            let compiled =
                rill::compile_text("prop.yaml", &text).map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
            generated.lock().unwrap().push(compiled.main_rs);
            Ok(())
        })
        .unwrap();
    let sources = generated.into_inner().unwrap();
    assert!(sources.len() >= 24);

    // One crate, one binary per generated pipeline, one cargo run.
    std::env::set_var("RILL_CACHE_DIR", support::cache_dir());
    let runtime = rill::build::embedded::extract_runtime(&support::cache_dir()).unwrap();
    let dir = support::cache_dir().join("proptest-crate");
    let _ = fs::remove_dir_all(dir.join("src"));
    fs::create_dir_all(dir.join("src")).unwrap();
    let mut manifest = rill::build::manifest("rill-proptest", "p0", &runtime, &["regex"]);
    for (i, code) in sources.iter().enumerate() {
        let file = if i == 0 {
            "main.rs".to_string()
        } else {
            format!("p{i}.rs")
        };
        fs::write(dir.join("src").join(&file), code).unwrap();
        if i > 0 {
            manifest.push_str(&format!("\n[[bin]]\nname = \"p{i}\"\npath = \"src/{file}\"\n"));
        }
    }
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    if !dir.join("Cargo.lock").exists() {
        fs::write(
            dir.join("Cargo.lock"),
            rill::build::embedded::file("Cargo.lock").unwrap(),
        )
        .unwrap();
    }
    let result = rill::build::cargo(
        "build",
        &dir.join("Cargo.toml"),
        rill::build::Profile::Release,
        "property-test pipelines",
        &[],
    );
    if let Err(e) = result {
        panic!("generated code did not compile: {e}");
    }
}

/// A mutation of a spec text: something a hurried user (or a fuzzer) might do.
fn mutate(text: &str, kind: u8, at: usize, len: usize, token: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = at % (chars.len() + 1);
    let end = (at + len).min(chars.len());
    let mut out: Vec<char> = chars.clone();
    match kind % 5 {
        0 => {
            out.drain(at..end);
        }
        1 => {
            out.splice(at..at, token.chars());
        }
        2 => {
            out.splice(at..end, token.chars());
        }
        3 => out.truncate(at),
        _ => {
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() > 1 {
                let i = at % lines.len();
                let j = (at + len) % lines.len();
                let mut swapped: Vec<&str> = lines.clone();
                swapped.swap(i, j);
                return swapped.join("\n");
            }
        }
    }
    out.into_iter().collect()
}

#[test]
fn mutated_specs_never_panic_the_compiler() {
    let mut texts = Vec::new();
    for dir in ["pipelines", "tests/errors", "tests/pipelines"] {
        for entry in fs::read_dir(support::repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                texts.push(fs::read_to_string(path).unwrap());
            }
        }
    }
    let tokens = vec![
        "{",
        "}",
        "[",
        "]",
        ":",
        ": ",
        "- ",
        "\n",
        "  ",
        "\"",
        "'",
        "${",
        "${X:-1}",
        "!",
        "&a ",
        "*a",
        "|\n",
        ">\n",
        "#",
        "\t",
        "é",
        "💥",
        "0x1F",
        "-1",
        "1e999",
        "null",
        "~",
        "input: ",
        "filter: ",
        "map: ",
        "type: ",
        "?",
        ",",
        "\\",
        "r\"",
        "println!(1)",
        "std::fs::remove_dir_all(\"/\")",
        "&&",
        "||",
        ".",
        "..",
        "()",
        "(",
        ")",
        "99999999999999999999",
    ];
    let strategy = (
        0..texts.len(),
        any::<u8>(),
        any::<usize>(),
        0usize..40,
        proptest::sample::select(tokens),
        1usize..4,
    );
    let mut runner = TestRunner::new(Config {
        cases: 1500,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(i, kind, at, len, token, rounds)| {
            let mut text = texts[i].clone();
            for r in 0..rounds {
                text = mutate(&text, kind.wrapping_add(r as u8), at.wrapping_mul(r + 1), len, token);
            }
            // Must return, never panic; a spec that still checks must also generate code.
            match rill::compile_text("mutated.yaml", &text) {
                Ok(_) | Err(rill::CompileError::Spec(_)) => Ok(()),
                Err(other) => Err(TestCaseError::fail(format!("{other}\n--- spec ---\n{text}"))),
            }
        })
        .unwrap();
}
