//! Hostile sizes: deep nesting is a diagnostic (never a stack overflow), long flat
//! chains check, compile and run, and large specs check correctly. No timing is
//! asserted here: `bench/check_scale.sh` measures.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::Output;

use serde_json::json;
use support::{json_lines, rill, run};

/// Write a generated spec where the tests keep their files.
fn spec_file(name: &str, text: &str) -> PathBuf {
    let dir = support::cache_dir().join("specs");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("scale_{name}.yaml"));
    fs::write(&path, text).unwrap();
    path
}

fn rill_check(name: &str, text: &str) -> Output {
    rill()
        .arg("check")
        .arg(spec_file(name, text))
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100")
        .output()
        .expect("rill runs")
}

/// A stdin → `big` → stdout pipeline over `{x: i64}` records.
fn one_transform(name: &str, body: &str) -> String {
    format!(
        "name: {name}\nschemas:\n  r: {{ x: i64, s: string }}\nsources:\n  \
         input: {{ type: stdin, format: json, schema: r }}\ntransforms:\n  big:\n    input: input\n{body}\
         sinks:\n  out: {{ type: stdout, input: big, format: json }}\n"
    )
}

#[test]
fn deep_nesting_is_a_located_diagnostic_not_a_crash() {
    let cases = [
        ("parens", format!("{}x > 0{}", "(".repeat(5000), ")".repeat(5000))),
        ("calls", format!("{}x{} > 0", "abs(".repeat(3000), ")".repeat(3000))),
        ("nots", format!("{}(x > 0)", "!".repeat(5000))),
        ("methods", format!("s{} == \"a\"", ".lower()".repeat(5000))),
    ];
    for (name, filter) in cases {
        let out = rill_check(name, &one_transform(name, &format!("    filter: '{filter}'\n")));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains("rill::expr_too_deep"), "{name}: {stderr}");
        assert!(stderr.contains("at most 256 levels"), "{name}: {stderr}");
        assert!(
            stderr.contains(":9:"),
            "{name}: reported at the filter's line: {stderr}"
        );
    }
    // Right at the limit is fine.
    let filter = format!("{}x > 0{}", "(".repeat(255), ")".repeat(255));
    let out = rill_check(
        "parens_ok",
        &one_transform("parens_ok", &format!("    filter: '{filter}'\n")),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn long_flat_chains_check_build_and_run() {
    let sum = vec!["x"; 3000].join(" + ");
    let and = vec!["x > 0"; 4000].join(" && ");
    let body = format!(
        "    filter: '{and}'\n    map: {{ total: '{sum}', minus: '{}', joined: 'concat(s, s, s, s, s, s, s, s, s, s)' }}\n",
        vec!["x"; 3000].join(" - ")
    );
    let spec = spec_file("long_chains", &one_transform("long_chains", &body));
    let binary = support::build(&spec.to_string_lossy());
    let out = run(&binary, &[], b"{\"x\": 2, \"s\": \"ab\"}\n{\"x\": -1, \"s\": \"\"}\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        json_lines(&out.stdout),
        [json!({"total": 6000, "minus": 2 - 2 * 2999, "joined": "ab".repeat(10)})]
    );
}

#[test]
fn a_call_with_100_000_arguments_checks() {
    let concat = vec!["s"; 100_000].join(", ");
    let body = format!("    map: {{ joined: 'len(concat({concat}))' }}\n");
    let out = rill_check("concat", &one_transform("concat", &body));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn thousands_of_transforms_check_and_every_error_is_reported() {
    let mut chain = String::new();
    let mut prev = "input".to_string();
    for i in 0..8000 {
        chain += &format!("  t{i}:\n    input: {prev}\n    filter: x > {i}\n    map: {{ x: x + 1, s: s }}\n");
        prev = format!("t{i}");
    }
    let text = one_transform("chain", "").replace(
        "transforms:\n  big:\n    input: input\n",
        &format!("transforms:\n{chain}"),
    );
    let text = text.replace("input: big", &format!("input: {prev}"));
    let out = rill_check("chain", &text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("8000 transforms"), "{stderr}");

    let mut errors = String::new();
    for i in 0..20_000 {
        let input = if i % 2 == 0 { "inputs" } else { "input" };
        errors += &format!("  e{i}:\n    input: {input}\n    filter: tempreature > 1.0\n");
    }
    let text = one_transform("errors", "")
        .replace(
            "transforms:\n  big:\n    input: input\n",
            &format!("transforms:\n{errors}"),
        )
        .replace("input: big", "input: input");
    let out = rill_check("errors", &text);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let tail: String = stderr
        .chars()
        .rev()
        .take(300)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(stderr.ends_with("20000 errors, 20000 warnings\n"), "{tail}");
    assert_eq!(stderr.matches("rill::unknown_input").count(), 10_000);
    assert_eq!(stderr.matches("rill::unknown_expr_field").count(), 10_000);
    // Suggestions still work among 20,000 names, and the list of choices is cut short.
    let head: String = stderr.chars().take(3000).collect();
    assert!(
        stderr.contains("did you mean `input`? valid inputs: input, e0, e1,"),
        "{head}"
    );
    // 20,001 components, less the one asking: never offered as its own input.
    assert!(stderr.contains("(20000 in all)"));
}
