//! The formatted generated code of every example pipeline, snapshotted.
//! (The end-to-end tests compile and run the same code.)

use std::path::Path;

#[test]
fn generated_code_of_every_example_pipeline() {
    insta::glob!("../pipelines", "*.yaml", |path: &Path| {
        let text = std::fs::read_to_string(path).expect("readable spec");
        let name = format!("pipelines/{}", path.file_name().unwrap().to_string_lossy());
        let compiled = rill::compile_text(&name, &text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(compiled.warnings.is_none(), "{name} has warnings");
        insta::assert_snapshot!(compiled.main_rs);
    });
}

#[test]
fn codegen_is_deterministic() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipelines/quickstart.yaml")).unwrap();
    let a = rill::compile_text("q.yaml", &text).ok().unwrap().main_rs;
    let b = rill::compile_text("q.yaml", &text).ok().unwrap().main_rs;
    assert_eq!(a, b);
}
