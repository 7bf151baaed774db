//! One erroneous spec per file under `tests/errors/`, each rendered as the
//! user sees it (no colour, fixed width) and snapshotted.

use std::path::Path;

#[test]
fn every_erroneous_spec_gets_located_diagnostics() {
    insta::glob!("errors/*.yaml", |path: &Path| {
        let text = std::fs::read_to_string(path).expect("readable spec");
        let name = format!("tests/errors/{}", path.file_name().unwrap().to_string_lossy());
        let rendered = match rill::check_text(&name, &text) {
            Ok((_, Some(warnings))) => {
                assert!(!warnings.has_errors());
                format!("{}\n{}", warnings.render_plain(100), warnings)
            }
            Ok((_, None)) => panic!("{name} is in tests/errors but has no problem"),
            Err(report) => format!("{}\n{}", report.render_plain(100), report),
        };
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
