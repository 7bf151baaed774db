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
        // A name already in backticks (`schema `order``) is never wrapped again.
        assert!(!rendered.contains("``"), "{name}: nested backticks in\n{rendered}");
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

/// Every problem of one spec under `tests/errors/`, rendered without colour.
fn problems_of(file: &str) -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/errors").join(file)).unwrap();
    let Err(report) = rill::check_text(file, &text) else {
        panic!("{file} has errors")
    };
    report
        .problems
        .iter()
        .map(|p| {
            let code = miette::Diagnostic::code(p).unwrap().to_string();
            let labels = miette::Diagnostic::labels(p)
                .into_iter()
                .flatten()
                .filter_map(|l| l.label().map(str::to_string))
                .collect::<Vec<_>>()
                .join("; ");
            let help = miette::Diagnostic::help(p).map(|h| h.to_string()).unwrap_or_default();
            (code, labels, help)
        })
        .collect()
}

#[test]
fn an_invalid_name_is_not_also_reported_as_no_sources() {
    for file in ["invalid_name.yaml", "name_starts_with_digit.yaml"] {
        let codes: Vec<String> = problems_of(file).into_iter().map(|(code, _, _)| code).collect();
        assert!(codes.contains(&"rill::invalid_name".to_string()), "{file}: {codes:?}");
        assert!(!codes.contains(&"rill::no_sources".to_string()), "{file}: {codes:?}");
    }
}

#[test]
fn no_component_is_offered_as_its_own_input_and_every_kind_of_input_is_listed() {
    let problems = problems_of("input_suggestions.yaml");
    let unknown: Vec<&(String, String, String)> =
        problems.iter().filter(|(c, _, _)| c == "rill::unknown_input").collect();
    assert_eq!(unknown.len(), 3, "{problems:?}");
    for (_, label, help) in &unknown {
        assert!(label.contains("source, transform, window or table"), "{label}");
        assert!(help.contains("per_device") && help.contains("latest"), "{help}");
    }
    // `hot` reads `hto`: `hot` itself is the only close name, and it must not be offered.
    let (_, _, help) = unknown[0];
    assert!(!help.contains("`hot`") && !help.contains(" hot,"), "{help}");
    assert!(
        unknown[1].2.starts_with("did you mean `per_device`?"),
        "{}",
        unknown[1].2
    );
    assert!(unknown[2].2.starts_with("did you mean `latest`?"), "{}", unknown[2].2);
    let (_, label, help) = problems.iter().find(|(c, _, _)| c == "rill::missing_input").unwrap();
    assert!(label.contains("window or table"), "{label}");
    assert!(
        help.contains("per_device") && help.contains("latest") && help.contains("hot"),
        "{help}"
    );
}

#[test]
fn a_record_type_is_named_with_one_pair_of_backticks() {
    let problems = problems_of("input_mismatch.yaml");
    let (_, label, _) = problems.iter().find(|(c, _, _)| c == "rill::input_mismatch").unwrap();
    assert_eq!(
        label,
        "this input produces schema `order`, the first produces schema `reading`"
    );
}

#[test]
fn the_help_for_a_float_key_suggests_a_key_that_is_accepted() {
    let spec = |key: &str| {
        format!(
            "name: k\nschemas:\n  r: {{ device_id: string, temperature: f64, humidity: f64? }}\nsources:\n  rs: {{ type: stdin, schema: r }}\nwindows:\n  w:\n    input: rs\n    key: {key}\n    count: 2\n    aggregate: {{ n: count() }}\nsinks:\n  out: {{ type: stdout, input: w }}\n"
        )
    };
    for key in ["temperature", "{ bucket: 'temperature * 2.0' }", "humidity"] {
        let Err(report) = rill::check_text("k.yaml", &spec(key)) else {
            panic!("a float key `{key}` must be rejected")
        };
        let helps: Vec<String> = report
            .problems
            .iter()
            .filter_map(|p| miette::Diagnostic::help(p).map(|h| h.to_string()))
            .collect();
        assert_eq!(helps.len(), 1, "{helps:?}");
        let suggested = helps[0]
            .split_once("`key: ")
            .and_then(|(_, rest)| rest.split_once('`'))
            .map(|(key, _)| key.to_string())
            .unwrap_or_else(|| panic!("no key suggested: {}", helps[0]));
        // Pasted as it is written in the help.
        let fixed = spec(&suggested);
        if let Err(report) = rill::check_text("k.yaml", &fixed) {
            panic!(
                "the suggestion `{suggested}` for `{key}` is rejected:\n{}",
                report.render_plain(100)
            );
        }
    }
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
    // `WatermarkSpec`, `KafkaSink`, …: a word of two capitalised parts, in what rill
    // says (the quoted spec lines, `12 │ …`, are the user's own text).
    let said: String = rendered
        .lines()
        .filter(|l| !l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .collect::<Vec<_>>()
        .join("\n");
    for word in said.split(|c: char| !c.is_alphanumeric()) {
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
