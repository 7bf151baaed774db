//! rill: compile a YAML streaming pipeline spec into one native binary.
//!
//! The stages, each its own module with plain data between them:
//! [`spec`] (parse) → [`validate`] (check, build the [`ir`]) → [`codegen`]
//! (Rust via `quote`) → [`build`] (cargo, with one shared target directory).

pub mod build;
pub mod codegen;
pub mod connectors;
pub mod diagnostics;
pub mod expr;
pub mod ir;
pub mod names;
mod source;
pub mod spec;
pub mod types;
pub mod validate;

use std::path::Path;

use diagnostics::Report;

/// A spec that passed every check, with its generated code.
pub struct Compiled {
    pub ir: ir::Ir,
    pub main_rs: String,
    /// Warnings found on the way (may be empty).
    pub warnings: Option<Report>,
}

/// Why a spec did not compile.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error(transparent)]
    Spec(#[from] Box<Report>),
    #[error(transparent)]
    Internal(#[from] codegen::InternalError),
}

/// The stack the compiler runs on. Parsing, checking and emitting an expression
/// recurse once per level of its tree, and a flat chain of N operators (`a + b + …`)
/// is a tree N deep; nesting is bounded (`expr::depth::MAX_NESTING`), chains only by
/// the size of the spec. 1 GiB of address space, of which a chain of 100,000 operators
/// touches about a tenth; pages never touched cost nothing.
pub const STACK_SIZE: usize = 1 << 30;

/// Run `f` on a thread with a [`STACK_SIZE`] stack (on this thread if none can be
/// started). The `rill` CLI runs everything this way; a library user compiling
/// untrusted specs should too.
pub fn with_big_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    let mut f = Some(f);
    let spawned = std::thread::scope(|scope| {
        let task = &mut f;
        let handle = std::thread::Builder::new()
            .name("rill".into())
            .stack_size(STACK_SIZE)
            .spawn_scoped(scope, move || task.take().map(|f| f()));
        match handle {
            Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => None,
        }
    });
    match (spawned, f) {
        (Some(result), _) => result,
        (None, Some(f)) => f(),
        (None, None) => unreachable!("the task ran or is still here"),
    }
}

/// Check spec text; `file` names it in diagnostics.
pub fn check_text(file: &str, text: &str) -> Result<(ir::Ir, Option<Report>), Box<Report>> {
    // Editors on Windows may start a file with a byte order mark; it is not part of the
    // YAML, and columns are counted after it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let checked = validate::check_text(text);
    let report = (!checked.problems.is_empty()).then(|| Report::new(file, text, checked.problems));
    match checked.ir {
        Some(ir) if !report.as_ref().is_some_and(Report::has_errors) => Ok((ir, report)),
        _ => Err(Box::new(report.unwrap_or_else(|| Report::new(file, text, Vec::new())))),
    }
}

/// Check and generate code for spec text.
pub fn compile_text(file: &str, text: &str) -> Result<Compiled, CompileError> {
    let (ir, warnings) = check_text(file, text)?;
    let main_rs = codegen::generate(&ir, &codegen::Ctx { spec_path: file })?;
    Ok(Compiled { ir, main_rs, warnings })
}

/// Read, check and generate code for a spec file.
pub fn compile_file(path: &Path) -> Result<Compiled, CompileError> {
    let text = read(path)?;
    compile_text(&path.display().to_string(), &text)
}

/// Read and check a spec file, without generating code (`rill check`).
pub fn check_file(path: &Path) -> Result<(ir::Ir, Option<Report>), CompileError> {
    let text = read(path)?;
    Ok(check_text(&path.display().to_string(), &text)?)
}

fn read(path: &Path) -> Result<String, CompileError> {
    std::fs::read_to_string(path).map_err(|source| CompileError::Read {
        path: path.display().to_string(),
        source,
    })
}
