//! Property tests: random valid specs pass `rill check` and their generated
//! code compiles (all of them in one cargo build, with the must-compile specs of
//! `tests/compile/` and a sample of the tricky-name specs below); specs built from
//! tricky names and numbers, and randomly mutated specs, never panic the compiler,
//! and every one it accepts generates code that parses. The binary of that build is
//! the oracle pipeline (`oracle/`): random expressions run on random records, each
//! output field compared with an interpreter written from docs/language.md.

mod oracle;
mod support;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use oracle::eval::{eval, Fail, Record, V};
use oracle::{Ty, E};

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
    let mut sources = generated.into_inner().unwrap();
    assert!(sources.len() >= 24);
    // The crate's binary is the oracle pipeline; every random spec is a module of it.
    let seed = oracle_seed();
    let (oracle_spec, cases, records) = oracle_pipeline(seed);
    let compiled = rill::compile_text("oracle.yaml", &oracle_spec)
        .unwrap_or_else(|e| panic!("the oracle pipeline must compile: {e:?}\n{oracle_spec}"));
    sources.insert(0, compiled.main_rs);
    let random = sources.len();
    // Specs that once did not compile (issue 9): rustc proves they do now. The
    // runtime is built with every feature they need (`mqtt` for `mqtt_names.yaml`).
    let mut features = std::collections::BTreeSet::from(["regex"]);
    for (path, text) in yaml_files("tests/compile") {
        match rill::compile_text(&path, &text) {
            Ok(compiled) => {
                features.extend(compiled.ir.features.iter().copied());
                sources.push(compiled.main_rs);
            }
            Err(e) => panic!("{path} must compile: {e:?}"),
        }
    }
    assert!(sources.len() >= random + 4, "tests/compile/ holds the regression specs");
    // A sample of the accepted tricky-name specs.
    sources.extend(accepted_tricky_specs(120).into_iter().take(12));
    // And MQTT options at their edges, as far as `rill check` lets them through.
    let mqtt = accepted_mqtt_specs(80);
    assert!(features.contains("mqtt"), "tests/compile/ holds an MQTT spec");
    sources.extend(mqtt.into_iter().take(6));
    // And Redis and HTTP options at theirs.
    sources.extend(accepted_redis_specs(80).into_iter().take(6));
    features.insert("redis");
    sources.extend(accepted_specs(http_spec(), 80).into_iter().take(6));
    features.insert("http");
    // And Pulsar's (the runtime's `pulsar` feature needs `protoc` to build).
    sources.extend(accepted_specs(pulsar_spec(), 80).into_iter().take(6));
    features.insert("pulsar");
    assert!(
        sources.len() > random + 4 + 6,
        "too few tricky-name specs were accepted"
    );

    // One crate, one cargo run: the first pipeline is the binary, every other one a
    // module of it (rustc checks a module's items exactly as a file's; one crate
    // compiles and links far faster than one binary each). Each checkout has its own
    // crate, so worktrees sharing the cache do not overwrite each other's.
    std::env::set_var("RILL_CACHE_DIR", support::cache_dir());
    let runtime = rill::build::embedded::extract_runtime(&support::cache_dir()).unwrap();
    let checkout = rill::names::short_hash(&support::repo().to_string_lossy());
    let dir = support::cache_dir().join(format!("proptest-crate-{checkout}"));
    let _ = fs::remove_dir_all(dir.join("src"));
    fs::create_dir_all(dir.join("src")).unwrap();
    // The binary's name is the checkout's too: the target directory is shared.
    let bin_name = format!("oracle-{checkout}");
    let features: Vec<&str> = features.into_iter().collect();
    let manifest = rill::build::manifest("rill-proptest", &bin_name, &runtime, &features);
    let mut main_rs = sources[0].clone();
    for (i, code) in sources.iter().enumerate().skip(1) {
        fs::write(dir.join("src").join(format!("p{i}.rs")), code).unwrap();
        main_rs.push_str(&format!("mod p{i};\n"));
    }
    fs::write(dir.join("src/main.rs"), main_rs).unwrap();
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
    let binary = rill::build::target_dir().join("release").join(&bin_name);
    let (mismatches, outcomes) = run_oracle(&binary, &dir.join("run"), &cases, &records);
    eprintln!("expression oracle: {outcomes:?}");
    // The sample must reach every kind of outcome, or it checks less than it seems.
    for kind in ["value", "dead letter", "not encodable"] {
        assert!(
            outcomes.get(kind).is_some_and(|n| *n > 0),
            "no `{kind}` outcome: {outcomes:?}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} results differ from docs/language.md (ORACLE_SEED={seed} reproduces):\n{}",
        mismatches.len(),
        cases.len() * records.len(),
        mismatches.iter().take(12).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// The oracle's seed: fixed, or `ORACLE_SEED` to try (or reproduce) another.
fn oracle_seed() -> u64 {
    let seed = std::env::var("ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_130);
    eprintln!("expression oracle: ORACLE_SEED={seed}");
    seed
}

/// Random expressions per oracle pipeline (after the catalogue's), and records they
/// each run on.
const ORACLE_CASES: usize = 64;
const ORACLE_RECORDS: i64 = 40;

/// The oracle pipeline: one `file` source of [`ORACLE_RECORDS`] records, and per
/// expression a transform `e<k>` (`map: { id: id, v: <expression> }`) into a file sink
/// `o<k>`; dead letters go to `rejects.jsonl`. A failure belongs to its branch, so each
/// expression's dead letters are its own.
fn oracle_pipeline(seed: u64) -> (String, Vec<(Ty, E)>, Vec<Record>) {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_add(i as u64)).to_le_bytes());
    }
    let mut runner = TestRunner::new_with_rng(Config::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let mut cases = oracle::gen::catalogue();
    cases.extend((0..ORACLE_CASES).map(|_| oracle::gen::any_expr().new_tree(&mut runner).unwrap().current()));
    let records: Vec<Record> = (0..ORACLE_RECORDS)
        .map(|id| oracle::gen::record(id).new_tree(&mut runner).unwrap().current())
        .collect();
    let mut text = String::from("name: oracle\nschemas:\n  row:\n");
    for (name, ty) in oracle::gen::SCHEMA {
        text.push_str(&format!("    {name}: '{ty}'\n"));
    }
    text.push_str("sources:\n  rows: { type: file, path: in.jsonl, schema: row }\ntransforms:\n");
    for (k, (_, e)) in cases.iter().enumerate() {
        let quoted = e.render().replace('\'', "''");
        text.push_str(&format!(
            "  e{k}:\n    input: rows\n    map:\n      id: id\n      v: '{quoted}'\n"
        ));
    }
    text.push_str("sinks:\n  rejects: { type: file, input: dead_letter, path: rejects.jsonl }\n");
    for k in 0..cases.len() {
        text.push_str(&format!(
            "  o{k}: {{ type: file, input: e{k}, path: out/e{k}.jsonl }}\n"
        ));
    }
    (text, cases, records)
}

/// A record as its JSON line; a null optional is left out on every other record.
fn record_json(r: &Record) -> String {
    let id = match r[0].1 {
        V::Int(id) => id,
        _ => unreachable!("id comes first"),
    };
    let mut object = serde_json::Map::new();
    for (name, v) in r {
        let json = match v {
            V::Null if id % 2 == 0 => continue,
            V::Null => serde_json::Value::Null,
            V::Str(s) => s.clone().into(),
            // Unix seconds, fractional unless whole.
            V::Ts(ms) if *name == "t3" && ms % 1000 == 0 => (ms / 1000).into(),
            V::Ts(ms) if *name == "t3" => (*ms as f64 / 1000.0).into(),
            // RFC 3339, in UTC or two hours ahead of it.
            V::Ts(ms) if *name == "t4" && id % 3 == 0 => {
                oracle::eval::rfc3339(ms + 7_200_000).replace('Z', "+02:00").into()
            }
            V::Ts(ms) if *name == "t4" => oracle::eval::rfc3339(*ms).into(),
            V::Int(i) | V::Ts(i) => (*i).into(),
            V::Uint(u) => (*u).into(),
            V::Float(f) => (*f).into(),
            V::Bool(b) => (*b).into(),
            V::List(_) => unreachable!("no list fields"),
        };
        object.insert(name.to_string(), json);
    }
    serde_json::Value::Object(object).to_string()
}

/// What one expression gives for one record, as docs/language.md says.
#[derive(Debug, PartialEq)]
enum Expected {
    Value(V),
    /// A dead letter from the transform with this reason.
    Fails(Fail),
    /// A non-finite float: the JSON sink cannot encode it, a dead letter of the sink.
    NotEncodable,
}

/// Runs the oracle binary in `dir`; returns every difference from [`eval`], and how
/// often each kind of outcome was expected.
fn run_oracle(
    binary: &std::path::Path,
    dir: &std::path::Path,
    cases: &[(Ty, E)],
    records: &[Record],
) -> (Vec<String>, std::collections::BTreeMap<&'static str, usize>) {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).unwrap();
    let input: String = records.iter().map(|r| record_json(r) + "\n").collect();
    fs::write(dir.join("in.jsonl"), &input).unwrap();
    let output = std::process::Command::new(binary)
        .current_dir(dir)
        .output()
        .expect("the oracle binary runs");
    assert!(
        output.status.success(),
        "the oracle pipeline failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parse = |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap();
    // (component, id) → reason
    let mut letters = std::collections::HashMap::new();
    for line in fs::read_to_string(dir.join("rejects.jsonl"))
        .unwrap_or_default()
        .lines()
    {
        let letter = parse(line);
        let record = parse(letter["record"].as_str().unwrap());
        letters.insert(
            (
                letter["component"].as_str().unwrap().to_string(),
                record["id"].as_i64().unwrap(),
            ),
            letter["reason"].as_str().unwrap().to_string(),
        );
    }
    let lines: Vec<String> = input.lines().map(str::to_string).collect();
    let mut mismatches = Vec::new();
    let mut outcomes = std::collections::BTreeMap::new();
    for (k, (ty, e)) in cases.iter().enumerate() {
        let written: std::collections::HashMap<i64, serde_json::Value> =
            fs::read_to_string(dir.join(format!("out/e{k}.jsonl")))
                .unwrap_or_default()
                .lines()
                .map(|line| {
                    let out = parse(line);
                    (out["id"].as_i64().unwrap(), out["v"].clone())
                })
                .collect();
        for (id, record) in records.iter().enumerate() {
            let id = id as i64;
            let expected = match eval(e, record) {
                Ok(V::Float(f)) if !f.is_finite() => Expected::NotEncodable,
                Ok(v) => Expected::Value(v),
                Err(fail) => Expected::Fails(fail),
            };
            let kind = match expected {
                Expected::Value(_) => "value",
                Expected::Fails(_) => "dead letter",
                Expected::NotEncodable => "not encodable",
            };
            *outcomes.entry(kind).or_insert(0) += 1;
            let transform_letter = letters.get(&(format!("transforms.e{k}"), id));
            let sink_letter = letters.get(&(format!("sinks.o{k}"), id));
            let ok = match &expected {
                Expected::Value(v) => {
                    transform_letter.is_none()
                        && sink_letter.is_none()
                        && written.get(&id).is_some_and(|got| same(e, v, got))
                }
                Expected::Fails(fail) => {
                    !written.contains_key(&id) && transform_letter.is_some_and(|reason| reason.contains(&fail.reason()))
                }
                Expected::NotEncodable => {
                    !written.contains_key(&id) && sink_letter.is_some_and(|reason| reason.contains("json encoding"))
                }
            };
            if !ok {
                mismatches.push(format!(
                    "e{k} ({ty:?}) `{}` on {}\n    expected {expected:?}\n    got {:?} {:?} {:?}",
                    e.render(),
                    lines[id as usize],
                    written.get(&id),
                    transform_letter,
                    sink_letter
                ));
            }
        }
    }
    (mismatches, outcomes)
}

/// Whether a JSON output value is the oracle's value of `e`. A timestamp field copied
/// unchanged keeps its encoding; any other timestamp is written as milliseconds.
fn same(e: &E, v: &V, got: &serde_json::Value) -> bool {
    match (e, v) {
        (E::Field("t3"), V::Ts(ms)) if ms % 1000 == 0 => return got.as_i64() == Some(ms / 1000),
        (E::Field("t3"), V::Ts(ms)) => return got.as_f64() == Some(*ms as f64 / 1000.0),
        (E::Field("t4"), V::Ts(ms)) => return got.as_str() == Some(&oracle::eval::rfc3339(*ms)),
        _ => {}
    }
    match v {
        V::Str(s) => got.as_str() == Some(s),
        V::Int(i) | V::Ts(i) => got.as_i64() == Some(*i),
        V::Uint(u) => got.as_u64() == Some(*u),
        V::Float(f) => got.as_f64() == Some(*f),
        V::Bool(b) => got.as_bool() == Some(*b),
        V::Null => got.is_null(),
        V::List(_) => false,
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

/// (path, text) of every `.yaml` file in a folder of the repository, in name order.
fn yaml_files(dir: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(support::repo().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .map(|path| {
            let text = fs::read_to_string(&path).unwrap();
            (format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()), text)
        })
        .collect();
    files.sort();
    files
}

/// Compile `text` the way `rill` does, turning a panic into a failure that shows the
/// spec. `Ok(Some(code))` when it is accepted, `Ok(None)` for a diagnostic.
fn compile_without_panic(text: &str) -> Result<Option<String>, TestCaseError> {
    let result = catch_unwind(AssertUnwindSafe(|| rill::compile_text("spec.yaml", text)));
    match result {
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(TestCaseError::fail(format!(
                "the compiler panicked: {message}\n--- spec ---\n{text}"
            )))
        }
        // `compile_text` parses the generated tokens with syn: a failure is `Internal`.
        Ok(Err(rill::CompileError::Internal(e))) => Err(TestCaseError::fail(format!("{e}\n--- spec ---\n{text}"))),
        Ok(Err(_)) => Ok(None),
        Ok(Ok(compiled)) => Ok(Some(compiled.main_rs)),
    }
}

/// Names a spec may try: keywords, `_`-names, a digit-leading name, near-collisions,
/// names the generated file uses, and ordinary ones.
const TRICKY_NAMES: &[&str] = &[
    // Names the generated code itself uses for locals, fields and runtime functions.
    "tallies",
    "branches",
    "also",
    "done",
    "items",
    "item",
    "open_file",
    "dead_letters",
    "clocks",
    "max_record_bytes",
    "type",
    "self",
    "self_",
    "match",
    "box",
    "fn",
    "crate",
    "super",
    "gen",
    "_",
    "__",
    "_1",
    "_a",
    "1a",
    "a_b",
    "a__b",
    "ab",
    "a_b_",
    "aB",
    "string",
    "result",
    "nodes",
    "job",
    "output",
    "source",
    "window",
    "main",
    "rec",
    "out",
    "t",
    "e",
    "pipeline",
    "run",
    "count",
    "w_1",
    "w1",
    "reading",
    "reading_record",
    "x",
    "y",
    // The JSON scanner's locals (`codegen/records.rs`).
    "s",
    "k",
    "key",
    "seen_0",
];

/// Names an expression can refer to (a keyword or `_` cannot be written in one).
const EXPR_NAMES: &[&str] = &[
    "self", "self_", "__", "_1", "_a", "a_b", "a__b", "ab", "aB", "string", "result", "rec", "out", "t", "e", "x", "s",
    "key",
];

/// Numbers a generator or a literal may be given; the non-finite ones must be diagnostics.
fn tricky_number() -> BoxedStrategy<&'static str> {
    prop_oneof![
        4 => proptest::sample::select(&["1.5", "0.0", "-2.5", "1e300"][..]),
        1 => proptest::sample::select(&["1e400", "-1e400", ".nan", ".inf", "-.inf"][..]),
    ]
    .boxed()
}

/// `count` distinct names from `pool` in random order, one of them sometimes made long.
fn distinct_names(pool: &'static [&'static str], count: usize) -> BoxedStrategy<Vec<String>> {
    (
        proptest::sample::subsequence(pool, count).prop_shuffle(),
        proptest::option::weighted(0.2, (0..count, 60usize..=300)),
    )
        .prop_map(|(names, long)| {
            let mut names: Vec<String> = names.into_iter().map(str::to_string).collect();
            if let Some((i, len)) = long {
                let filler = "l".repeat(len - names[i].len().min(len));
                names[i].push_str(&filler);
            }
            names
        })
        .boxed()
}

/// A spec whose every name and some numbers are tricky: two schemas (one nested),
/// generators and a JSON file source, a transform, a window of any kind (see
/// [`window_kind`]) with a computed key and `first()` of the nested record, a pattern whose steps (one optional) and output fields are tricky names, a lookup
/// join whose row is named by one, a join of two streams of any kind (an inner one holds
/// both sides' key fields only as the key) whose sides are named by two (its late
/// records read too) within bounds at and past their edges, a table and a lookup of it
/// both named by tricky names, and sinks.
fn tricky_spec() -> impl Strategy<Value = String> {
    (
        distinct_names(TRICKY_NAMES, 22),
        distinct_names(EXPR_NAMES, 10),
        tricky_number(),
        tricky_number(),
        any::<bool>(),
        join_bounds(),
        proptest::sample::select(&["inner", "left", "right", "full"][..]),
        window_kind(),
    )
        .prop_map(|(n, f, min, literal, csv, bounds, kind, window)| {
            let q = |s: &str| format!("'{s}'");
            let format = if csv { "csv" } else { "json" };
            format!(
                "name: {pipeline}
schemas:
  {s1}:
    {f1}: string
    {f2}: i64
    {f3}: f64
    {f4}: {{ {f5}: string, {f6}: i64 }}
  {s2}:
    {f1}: string
sources:
  {src1}:
    type: generator
    schema: {s1}
    count: 3
    fields:
      {f3}: {{ min: {min}, max: 10.0 }}
  {src2}: {{ type: generator, schema: {s2}, count: 3 }}
  {src2}_file: {{ type: file, path: in.jsonl, schema: {s1} }}
transforms:
  {t1}:
    input: {src1}
    filter: {filter}
    map: {{ {f1}: {f1}, {m}: {sum} }}
windows:
  {w1}:
    input: {src1}
    key: {{ {k}: {key} }}
    {window}
    aggregate: {{ {a1}: count(), {a2}: {first} }}
patterns:
  {p1}:
    input: {src1}
    key: {f1}
    steps:
      {st1}: {step1}
      {st2}: {{ where: {step2}, optional: true }}
      {st3}: {step3}
    within: 1s
    not_followed_by: {{ where: {absent}, within: 1s }}
    select: {{ {sel1}: {st1}.{f1}, {sel2}: {st2}.{f4}, {sel3}: {skipped} }}
joins:
  {j1}:
    input: {src1}
    key: {f1}
    lookup: {{ file: lookup.jsonl, schema: {s2}, key: {f1}, as: {asn} }}
    select: {{ {sel4}: {asn}.{f1}, {f1}: {f1} }}
  {j2}:
    left: {{ input: {src1}, key: {f1}, as: {lname} }}
    right: {{ input: {src2}, key: {f1}, as: {rname} }}
    kind: {kind}
    {bounds}
    select: {{ {sel4}: {lname}.{f1}, {f2}: {rname}.{f1} }}
  {j3}:
    input: {src2}
    key: {f1}
    lookup: {{ table: {tb} }}
    missing: drop
tables:
  {tb}:
    input: {src1}
    key: {f1}
    aggregate: {{ {a1}: count() }}
sinks:
  {j3}_out: {{ type: stdout, input: {j3}, format: json }}
  {j2}_out: {{ type: stdout, input: {j2}, format: json }}
  {j2}_late: {{ type: stdout, input: {j2}.late, format: json }}
  {j1}_out: {{ type: stdout, input: {j1}, format: json }}
  {p1}_out: {{ type: stdout, input: {p1}, format: json }}
  {t1}_out: {{ type: stdout, input: {t1}, format: {format} }}
  {w1}_out: {{ type: stdout, input: {w1}, format: json }}
  {src2}_out: {{ type: stdout, input: {src2}, format: {format} }}
  {src2}_file_out: {{ type: stdout, input: {src2}_file, format: json }}
",
                pipeline = n[0],
                s1 = n[1],
                s2 = n[2],
                f1 = f[0],
                f2 = f[1],
                f3 = f[2],
                f4 = f[3],
                f5 = n[3],
                f6 = n[4],
                src1 = n[5],
                src2 = n[6],
                t1 = n[7],
                w1 = n[8],
                m = n[9],
                k = n[10],
                a1 = n[11],
                a2 = n[12],
                p1 = n[13],
                sel1 = n[14],
                sel2 = n[15],
                sel3 = n[16],
                sel4 = n[17],
                j1 = n[18],
                j2 = n[19],
                j3 = n[20],
                tb = n[21],
                asn = f[7],
                lname = f[8],
                rname = f[9],
                st1 = f[4],
                st2 = f[5],
                st3 = f[6],
                step1 = q(&format!("{} > 0", f[1])),
                step2 = q(&format!("{} > {literal}", f[2])),
                step3 = q(&format!("{} < 5", f[1])),
                absent = q(&format!("{} == 3", f[1])),
                skipped = q(&format!("is_null({})", f[5])),
                filter = q(&format!("{} > {literal}", f[2])),
                sum = q(&format!("{} + 1", f[1])),
                key = q(&format!("upper({})", f[0])),
                first = q(&format!("first({})", f[3])),
            )
        })
}

/// The bounds of a join of two streams, at and past their edges: durations at the end
/// of the range, negative, not finite or not durations, the most windows a record may
/// be in, an offset just inside the slide.
fn join_bounds() -> BoxedStrategy<&'static str> {
    proptest::sample::select(
        &[
            "interval: { from: -1s, to: 1s }",
            "interval: { from: -106751991166d, to: 106751991166d }",
            "interval: { from: 106751991166d, to: 106751991166d }",
            "interval: { from: 1e400s, to: 1s }",
            "interval: { from: '-', to: 0s }",
            "interval: { from: --5m, to: 0s }",
            "tumbling: 106751991166d",
            "hopping: { size: 1s, slide: 1ms }",
            "hopping: { size: 10s, slide: 3s }\n    offset: 2999ms",
        ][..],
    )
    .boxed()
}

/// The kind of the tricky specs' window: mostly ones that are accepted (hopping ones
/// sharing panes, or with `max_keys` an accumulator per window), sometimes past the
/// limits of panes per window or windows per record, or at the end of the range.
fn window_kind() -> BoxedStrategy<&'static str> {
    prop_oneof![
        6 => proptest::sample::select(
            &[
                "count: 2",
                "tumbling: 1s",
                "hopping: { size: 10s, slide: 4s }",
                "hopping: { size: 1d, slide: 1s }",
                "hopping: { size: 10s, slide: 3s }\n    offset: 2999ms\n    allowed_lateness: 1s",
                "hopping: { size: 10s, slide: 4s }\n    max_keys: 5",
            ][..]
        ),
        1 => proptest::sample::select(
            &[
                "hopping: { size: 1d, slide: 7ms }",
                "hopping: { size: 106751991166d, slide: 1ms }",
                "hopping: { size: 1d, slide: 1s }\n    max_keys: 5",
            ][..]
        ),
    ]
    .boxed()
}

/// Runs `cases` tricky specs; none may panic the compiler or generate code that does
/// not parse. Returns the code of those accepted.
fn accepted_tricky_specs(cases: u32) -> Vec<String> {
    let accepted: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&tricky_spec(), |text| {
            if let Some(code) = compile_without_panic(&text)? {
                accepted.lock().unwrap().push(code);
            }
            Ok(())
        })
        .unwrap();
    accepted.into_inner().unwrap()
}

/// An MQTT source and sink whose options take values at and past their edges:
/// numbers YAML reads oddly, durations MQTT cannot carry, secrets with defaults, URLs
/// of other schemes, topic templates with braces inside strings and expressions, and
/// disk buffers of sizes and durations at and past theirs.
fn mqtt_spec() -> impl Strategy<Value = String> {
    // Mostly values that pass, so that whole specs are accepted too.
    fn edge(pass: &'static [&'static str], fail: &'static [&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![4 => proptest::sample::select(pass), 1 => proptest::sample::select(fail)].boxed()
    }
    (
        edge(&["0", "1"], &["2", "-1", "256", "1e400", ".nan", "true", "'1'"]),
        edge(
            &["1s", "18h12m15s", "1m30s"],
            &["18h12m16s", "0s", "999ms", "1e400s", "-5s", "99999999999999999999d"],
        ),
        edge(&["3.1.1", "5", "'5'", "5.0"], &["4.0", ".nan", ".inf", "3", "~"]),
        edge(
            &["'${P}'"],
            &["'${P:-hunter2}'", "hunter2", "'${P:-}'", "'x${P}'", "'${P:-${Q}}'"],
        ),
        edge(
            &["mqtt://h", "'${U}'", "'mqtts://u:${PW}@h:8883'", "'${U:-mqtt://h}'"],
            &["'${U:-http://h}'", "http://h", "'mqtt://u:pw@h'"],
        ),
        edge(
            &[
                "a",
                "'a/{x}'",
                "'}'",
                r#"'{if n > 0 { "}" } else { x }}/b'"#,
                r#"'{concat(x, "{")}'"#,
                "'{to_string(n)}/{x}'",
                "{ expr: x }",
            ],
            &["'{x'", "'a/+'", "'{}'", "'{{x}}'", "'{n}'", "{ expr: n }"],
        ),
        edge(
            &[
                "{ type: disk }",
                "{ type: disk, max_size: 4KiB, when_full: drop_oldest, fsync: always }",
                "{ type: disk, max_size: 16TiB, fsync: 1ms }",
                "{ type: disk, max_size: 18446744073709551615 }",
                "{ type: disk, max_size: '100 MB', fsync: 99999h }",
            ],
            &[
                "{ type: disk, max_size: 4095 }",
                "{ type: disk, max_size: 18446744073709551616 }",
                "{ type: disk, max_size: 99999999TiB }",
                "{ type: disk, max_size: '${SIZE:-1GiB}' }",
                "{ type: disk, max_size: .nan }",
                "{ type: disk, max_size: -1 }",
                "{ type: disk, max_size: 1e400 }",
                "{ type: disk, when_full: _ }",
                "{ type: disk, fsync: 0s }",
                "{ type: disk, fsync: '${F}' }",
                "{ type: memory }",
                "{ type: disk, self: 1 }",
            ],
        ),
    )
        .prop_map(|(qos, keep_alive, version, password, url, topic, buffer)| {
            format!(
                "name: hostile_mqtt
schemas:
  r: {{ x: string, n: i64 }}
sources:
  s:
    type: mqtt
    url: {url}
    topics: [a/#]
    qos: {qos}
    keep_alive: {keep_alive}
    version: {version}
    password: {password}
    schema: r
sinks:
  o:
    type: mqtt
    input: s
    url: mqtt://h
    topic: {topic}
    buffer: {buffer}
"
            )
        })
}

/// Runs `cases` specs of `strategy`; none may panic the compiler or generate code that
/// does not parse. Returns the code of those accepted; some must be accepted and some
/// refused, or the edges are not where the strategy thinks.
fn accepted_specs(strategy: impl Strategy<Value = String>, cases: u32) -> Vec<String> {
    let outcomes: Mutex<(Vec<String>, u32)> = Mutex::new((Vec::new(), 0));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |text| {
            let code = compile_without_panic(&text)?;
            let mut outcomes = outcomes.lock().unwrap();
            match code {
                Some(code) => outcomes.0.push(code),
                None => outcomes.1 += 1,
            }
            Ok(())
        })
        .unwrap();
    let (accepted, rejected) = outcomes.into_inner().unwrap();
    assert!(
        rejected > 0 && !accepted.is_empty(),
        "{} accepted, {rejected} rejected",
        accepted.len()
    );
    accepted
}

/// Hostile MQTT specs ([`accepted_specs`]).
fn accepted_mqtt_specs(cases: u32) -> Vec<String> {
    accepted_specs(mqtt_spec(), cases)
}

/// A Redis stream source, a sink and a lookup join whose options take values at and
/// past their edges: names with placeholders and `${VAR}`, every write command and mixes
/// of them, sizes and durations YAML reads oddly, secrets with defaults, URLs of other
/// schemes, keys of every type, prefixes with quotes and braces, tricky row names.
fn redis_spec() -> impl Strategy<Value = String> {
    fn edge(pass: &'static [&'static str], fail: &'static [&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![4 => proptest::sample::select(pass), 1 => proptest::sample::select(fail)].boxed()
    }
    (
        edge(
            &["redis://h", "'${U}'", "'redis://:${PW}@h:6379/2'", "'${U:-redis://h}'"],
            &["'${U:-http://h}'", "rediss://h", "'redis://u:pw@h'", "''"],
        ),
        edge(&["'${P}'"], &["'${P:-hunter2}'", "hunter2", "'x${P}'"]),
        edge(
            &[
                "stream: s",
                "channels: [a, 'b.*']",
                "patterns: ['a.*', '[ab]?']",
                "channels: [_]",
            ],
            &[
                "channels: []",
                "stream: ''",
                "stream: '${S}'",
                "{}",
                "channels: [a]\n    stream: s",
            ],
        ),
        edge(
            &["1m", "1ms", "18h", "1m30s"],
            &["0s", "-1s", "1e400s", ".nan", "'${C}'"],
        ),
        edge(
            &[
                "channel: a",
                "channel: 'a.{x}'",
                "stream: '{to_string(n)}'",
                "key: 'k:{x}'",
                "hash: h\n    key: '{x}'",
                "hash: '{x}'\n    key: f",
                "stream: s\n    max_len: 18446744073709551615",
                "channel: { expr: x }",
            ],
            &[
                "key: '{n}'",
                "channel: a\n    stream: b",
                "hash: h",
                "stream: s\n    max_len: 0",
                "stream: s\n    max_len: -1",
                "channel: '{x'",
                "stream: s\n    key: k",
                "{}",
            ],
        ),
        edge(&["", "ttl: 1h", "ttl: 1ms"], &["ttl: 0s", "ttl: 1e400d", "ttl: '${T}'"]),
        edge(
            &["x", "n", "n > 1", "lower(x)", "n % 2 == 0"],
            &["to_float(n)", "y", "x?"],
        ),
        edge(&["''", "'\"'", "'{x}'", "'\\'", "'d:é:'", "'${P}:'"], &["[a]", "{}"]),
        edge(
            &[
                "cache: 0s",
                "cache: 1ms",
                "cache: 18h",
                "cache_rows: 0",
                "cache_rows: 18446744073709551615",
            ],
            &[
                "cache: -1s",
                "cache: 1e400s",
                "cache: .nan",
                "cache_rows: -1",
                "cache_rows: 1e400",
            ],
        ),
        edge(&["d", "_", "a__b", "r#x"], &["x", "self", ""]),
    )
        .prop_map(
            |(url, password, read, claim_idle, write, ttl, key, prefix, cache, row)| {
                let claim = if read.starts_with("stream") {
                    format!("claim_idle: {claim_idle}")
                } else {
                    String::new()
                };
                let ttl = if write.starts_with("key") || write.starts_with("hash") {
                    ttl
                } else {
                    ""
                };
                format!(
                    "name: hostile_redis
schemas:
  r: {{ x: string, n: i64 }}
sources:
  s:
    type: redis
    url: {url}
    password: {password}
    {read}
    {claim}
    schema: r
joins:
  j:
    input: s
    key: {key}
    lookup:
      redis:
        url: {url}
        password: {password}
        prefix: {prefix}
        {cache}
      schema: r
      as: '{row}'
sinks:
  o:
    type: redis
    input: s
    url: redis://h
    {write}
    {ttl}
  l: {{ type: stdout, input: j, format: json }}
"
                )
            },
        )
}

/// Hostile Redis specs ([`accepted_specs`]).
fn accepted_redis_specs(cases: u32) -> Vec<String> {
    accepted_specs(redis_spec(), cases)
}

/// An HTTP source and sink whose options take values at and past their edges: paths,
/// sizes and counts YAML reads oddly, durations at zero and past a u64, secrets with
/// defaults, odd header names, URLs of other schemes.
fn http_spec() -> impl Strategy<Value = String> {
    fn edge(pass: &'static [&'static str], fail: &'static [&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![4 => proptest::sample::select(pass), 1 => proptest::sample::select(fail)].boxed()
    }
    (
        edge(&["/in", "/_", "'/a/{x}'", "/ünï"], &["in", "''", "'/a b'", "'${P}'"]),
        edge(
            &["1", "1MiB", "'16 TiB'", "18446744073709551615"],
            &["0", "-1", ".nan", "1e400", "'${B:-1MiB}'"],
        ),
        edge(&["'${T}'"], &["'${T:-s3cret}'", "s3cret", "'Bearer ${T}'"]),
        edge(
            &["http://h", "'https://[::1]:1/x?y=z'", "'${U}'", "'${U:-http://h}'"],
            &["ftp://h", "'${U:-ftp://h}'", "'http://u:pw@h'", "h"],
        ),
        edge(&["post", "PUT", "patch"], &["get", "'${M}'", "_"]),
        edge(&["1ms", "30s", "18h"], &["0s", "-1s", "1e400s", ".inf"]),
        edge(
            &[
                "{}",
                "{ max_records: 1, max_bytes: 1, max_wait: 0ms }",
                "{ max_records: 18446744073709551615 }",
            ],
            &["{ max_records: 0 }", "{ max_bytes: 0 }", "{ self: 1 }"],
        ),
        edge(
            &["'{ X-_~!: a }'", "'{ x-key: \"${K}\" }'", "{}"],
            &["'{ \"\": a }'", "'{ a b: c }'"],
        ),
    )
        .prop_map(|(path, size, token, url, method, timeout, batch, headers)| {
            let headers = headers.trim_matches('\'');
            format!(
                "name: hostile_http
schemas:
  r: {{ x: string, n: i64 }}
sources:
  s:
    type: http
    path: {path}
    max_body: {size}
    token: {token}
    schema: r
sinks:
  o:
    type: http
    input: s
    url: {url}
    method: {method}
    timeout: {timeout}
    batch: {batch}
    headers: {headers}
"
            )
        })
}

/// A Pulsar source and sink whose options take values at and past their edges: URLs of
/// other schemes or without a host, secrets with defaults, topic names of every shape
/// (whole, short, `${VAR}`, spaces, quotes and braces), choices spelt wrongly, metadata
/// fields that clash, keys and properties of the wrong type, batch limits and timeouts
/// at zero and past a u64.
fn pulsar_spec() -> impl Strategy<Value = String> {
    // Twelve options: at 4 to 1 only 7% of specs would pass every one (and 80 cases would
    // now and then accept none); at 9 to 1, 28% do.
    fn edge(pass: &'static [&'static str], fail: &'static [&'static str]) -> BoxedStrategy<&'static str> {
        prop_oneof![9 => proptest::sample::select(pass), 1 => proptest::sample::select(fail)].boxed()
    }
    (
        edge(
            &[
                "pulsar://h",
                "'pulsar://h:6650'",
                "'${U}'",
                "'${U:-pulsar://h}'",
                "'pulsar://${H:-h}:6650'",
                "'pulsar://ü/x'",
            ],
            &[
                "'pulsar+ssl://h:6651'",
                "'${U:-http://h}'",
                "'pulsar://'",
                "'pulsar://:6650'",
                "''",
                "'${U:-}'",
                "'pulsar://u:pw@h'",
            ],
        ),
        edge(&["'${T}'"], &["'${T:-jwt}'", "jwt", "'Bearer ${T}'", "'${T:-}'"]),
        edge(
            &[
                "[e]",
                "[persistent://public/default/e]",
                "[non-persistent://t/n/x, a/b/c]",
                "['persistent://ünï/ns/ẞ']",
                "['e\"}{\\']",
                "[' e ']",
            ],
            &[
                "[]",
                "['']",
                "[a/b]",
                "['${T}']",
                "['my events']",
                "[kafka://a/b/c]",
                "[persistent://x/y]",
                "[persistent://a//c]",
                "e",
            ],
        ),
        edge(&["s", "'${S:-rill}'", "'${S}'", "'sub ü'", "''"], &["[s]", "{ a: 1 }"]),
        edge(
            &["exclusive", "shared", "failover", "key_shared", "~"],
            &["KeyShared", "key-shared", "'${K}'", "1"],
        ),
        edge(&["earliest", "latest", "~"], &["beginning", "'${S}'", "0"]),
        edge(
            &[
                "{}",
                "{ key: k, topic: tp, publish_time: pt, event_time: et, message_id: id }",
                "{ properties: { trace: tr, 'a b': ab, '': e, 'x\"}': q } }",
            ],
            &[
                "{ key: x }",
                "{ partition: p }",
                "{ key: 1a }",
                "{ key: k, topic: k }",
                "{ properties: { a: n } }",
                "{ properties: [a] }",
            ],
        ),
        edge(
            &[
                "persistent://public/default/o",
                "o",
                "'o-{x}'",
                "'{to_string(n)}/{coalesce(o, \"-\")}'",
                "{ expr: x }",
                "{ expr: 'concat(\"a/\", x)' }",
            ],
            &["'${T}'", "a/b", "'{n}'", "{ expr: n }", "{ expr: o }", "'o-{'", "''"],
        ),
        edge(
            &[
                "",
                "key: x",
                "key: o",
                "key: 'concat(x, \"}\")'",
                "properties: { a: x, 'b c': '\"v\"', '': o }",
            ],
            &["key: n", "properties: { a: n }", "key: '${K}'", "properties: [x]"],
        ),
        edge(
            &[
                "{}",
                "{ max_records: 1, max_bytes: 1, max_wait: 0ms }",
                "{ max_records: 18446744073709551615, max_bytes: '16 TiB', max_wait: 18h }",
                "{ max_bytes: 18446744073709551615 }",
            ],
            &[
                "{ max_records: 0 }",
                "{ max_bytes: 0 }",
                "{ max_wait: -1s }",
                "{ max_bytes: '${B}' }",
                "{ max_records: -1 }",
                "{ max_records: 1e400 }",
                "{ self: 1 }",
            ],
        ),
        edge(
            &["none", "lz4", "zlib", "zstd", "snappy", "~"],
            &["gzip", "'${C}'", "LZ4"],
        ),
        edge(
            &["1ms", "30s", "18h", "99999h"],
            &["0s", "-1s", "1e400s", ".inf", "'${D}'", "9999999999999999d"],
        ),
    )
        .prop_map(
            |(url, token, topics, subscription, kind, start, metadata, topic, address, batch, compression, timeout)| {
                format!(
                    "name: hostile_pulsar
schemas:
  r: {{ x: string, n: i64, o: string? }}
sources:
  s:
    type: pulsar
    url: {url}
    token: {token}
    topics: {topics}
    subscription: {subscription}
    subscription_type: {kind}
    start: {start}
    schema: r
    metadata: {metadata}
sinks:
  o:
    type: pulsar
    input: s
    url: pulsar://h
    topic: {topic}
    {address}
    batch: {batch}
    compression: {compression}
    delivery_timeout: {timeout}
"
                )
            },
        )
}

#[test]
fn hostile_pulsar_options_never_panic_and_accepted_specs_parse() {
    accepted_specs(pulsar_spec(), 400);
}

#[test]
fn hostile_http_options_never_panic_and_accepted_specs_parse() {
    accepted_specs(http_spec(), 400);
}

#[test]
fn hostile_redis_options_never_panic_and_accepted_specs_parse() {
    accepted_redis_specs(400);
}

#[test]
fn hostile_mqtt_options_never_panic_and_accepted_specs_parse() {
    accepted_mqtt_specs(400);
}

#[test]
fn tricky_names_and_numbers_never_panic_and_accepted_specs_parse() {
    let accepted = accepted_tricky_specs(600);
    // The generator must reach code generation often, or it tests only diagnostics.
    // About one spec in ten is accepted (most of the join bounds and numbers are meant
    // to be refused): 50 to 80 of 600 in runs; at 60 this failed one run in three.
    assert!(
        accepted.len() >= 30,
        "only {} of 600 tricky specs were accepted",
        accepted.len()
    );
    // Their windows take both paths of a hopping window: panes, and with `max_keys` an
    // accumulator per window.
    let paned = accepted
        .iter()
        .filter(|code| code.contains("PanedWindows::new"))
        .count();
    let fixed = accepted
        .iter()
        .filter(|code| code.contains("FixedWindows::new"))
        .count();
    assert!(paned > 0 && fixed > 0, "{paned} with panes, {fixed} without");
}

#[test]
fn mutated_specs_never_panic_the_compiler() {
    let mut texts = Vec::new();
    for dir in ["pipelines", "tests/errors", "tests/pipelines", "tests/compile"] {
        texts.extend(yaml_files(dir).into_iter().map(|(_, text)| text));
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
        "1e400",
        ".nan",
        ".inf",
        "-.inf",
        "type",
        "self",
        "self_",
        "_",
        "__",
        "_1",
        "1a",
        "a__b",
        "string",
        "result",
        "nodes",
        "box",
        // Options and names this issue added: hostile values for them too.
        "max_record_bytes: ",
        "0",
        "password: ",
        "${PW:-hunter2}",
        "${PW:-}",
        "user:pw@host",
        "tallies",
        "branches",
        "also",
        "done",
        "items",
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
            compile_without_panic(&text).map(|_| ())
        })
        .unwrap();
}
