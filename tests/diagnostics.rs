//! One erroneous spec per file under `tests/errors/`, each rendered as the
//! user sees it (no colour, fixed width) and snapshotted.

use std::path::Path;

#[test]
fn every_erroneous_spec_gets_located_diagnostics() {
    insta::glob!("errors/*.yaml", |path: &Path| {
        let text = std::fs::read_to_string(path).expect("readable spec");
        let name = format!("tests/errors/{}", path.file_name().unwrap().to_string_lossy());
        let report = match rill::check_text(&name, &text) {
            Ok((_, Some(warnings))) => {
                assert!(!warnings.has_errors());
                warnings
            }
            Ok((_, None)) => panic!("{name} is in tests/errors but has no problem"),
            Err(report) => *report,
        };
        for problem in &report.problems {
            let help = miette::Diagnostic::help(problem).map(|h| h.to_string());
            assert!(
                help.is_some_and(|h| !h.trim().is_empty()),
                "{name}: `{problem}` has no help line"
            );
        }
        let rendered = format!("{}\n{}", report.render_plain(100), report);
        assert_no_rust_names(&name, &rendered);
        insta::assert_snapshot!(rendered);
    });
}

#[test]
fn there_are_at_least_twenty_distinct_mistakes() {
    let count = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/errors"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "yaml"))
        .count();
    assert!(count >= 20, "only {count} erroneous specs");
}

#[test]
fn every_problem_of_a_spec_is_reported_at_once() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/errors/many_errors_at_once.yaml"))
            .unwrap();
    let Err(report) = rill::check_text("many.yaml", &text) else {
        panic!("has errors")
    };
    let codes: Vec<String> = report
        .problems
        .iter()
        .filter(|p| !p.is_warning())
        .map(|p| miette::Diagnostic::code(p).unwrap().to_string())
        .collect();
    assert_eq!(
        codes,
        [
            "rill::unknown_field_type",
            "rill::unknown_field",
            "rill::unknown_input",
            // The type errors of `fahrenheit` are found although the schema and the
            // source it reads from have mistakes of their own.
            "rill::type_error",
            "rill::type_error",
            "rill::invalid_value"
        ]
    );
}

/// A diagnostic speaks the spec's language: no type of the compiler (`WatermarkSpec`,
/// `Setting`, `Option<…>`) leaks from a serde message.
fn assert_no_rust_names(name: &str, rendered: &str) {
    let leaks = [
        "Setting",
        "Option<",
        "Vec<",
        "struct ",
        "enum ",
        "Value::",
        "untagged",
        "OrderedMap",
        "ExprText",
        "borrowed",
    ];
    for leak in leaks {
        assert!(
            !rendered.contains(leak),
            "{name}: a Rust name leaks: `{leak}` in\n{rendered}"
        );
    }
    // `WatermarkSpec`, `KafkaSink`, …: a word of two capitalised parts.
    for word in rendered.split(|c: char| !c.is_alphanumeric()) {
        let capitals = word.chars().filter(char::is_ascii_uppercase).count();
        let camel = word.starts_with(|c: char| c.is_ascii_uppercase())
            && capitals >= 2
            && word.chars().any(|c| c.is_ascii_lowercase());
        assert!(!camel, "{name}: a Rust type name leaks: `{word}` in\n{rendered}");
    }
}

/// Every YAML block of the README and the language reference that is a whole spec (it
/// has `name:` and `sources:`) passes `rill check`: the examples a new user copies work.
#[test]
fn every_whole_spec_in_the_docs_passes_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut checked = 0;
    for doc in ["README.md", "docs/language.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap_or_default();
            let is_spec =
                block.lines().any(|l| l.starts_with("name:")) && block.lines().any(|l| l.starts_with("sources:"));
            if !is_spec {
                continue;
            }
            let file = format!("{doc} (yaml block {})", i + 1);
            if let Err(report) = rill::check_text(&file, block) {
                panic!("{}", report.render_plain(100));
            }
            checked += 1;
        }
    }
    assert!(checked >= 3, "only {checked} whole specs found in the docs");
}
