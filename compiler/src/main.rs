//! The `rill` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rill::build::{self, Profile};
use rill::diagnostics::Report;
use rill::CompileError;

#[derive(Parser)]
#[command(
    name = "rill",
    version,
    about = "Compile a YAML streaming pipeline into one native binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a spec and report every problem at once (no code is generated).
    Check { spec: PathBuf },
    /// Build the pipeline binary.
    Build {
        spec: PathBuf,
        /// Where to write the binary (default: ./<pipeline name>).
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Build and run the pipeline; arguments after `--` go to the binary.
    Run {
        spec: PathBuf,
        #[command(flatten)]
        profile: ProfileArgs,
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Print the generated Rust.
    Emit { spec: PathBuf },
}

#[derive(clap::Args)]
struct ProfileArgs {
    /// Optimised build (what you ship).
    #[arg(long, conflicts_with = "profile")]
    release: bool,
    /// `edge` for the smallest binary (size-optimised, LTO), or `release`/`debug`.
    #[arg(long, value_parser = ["debug", "release", "edge"])]
    profile: Option<String>,
}

impl ProfileArgs {
    fn profile(&self) -> Profile {
        match (self.release, self.profile.as_deref()) {
            (_, Some("edge")) => Profile::Edge,
            (true, _) | (_, Some("release")) => Profile::Release,
            _ => Profile::Debug,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match rill::with_big_stack(|| run(cli.command)) {
        Ok(code) => code,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Check { spec } => {
            let ir = &check(&spec)?;
            let count = |kind: &str| ir.operators.iter().filter(|o| o.component().starts_with(kind)).count();
            let mut parts = vec![format!("{} source{}", ir.sources.len(), plural(ir.sources.len()))];
            for (kind, n) in [
                ("transform", count("transforms.")),
                ("window", count("windows.")),
                ("table", count("tables.")),
            ] {
                if n > 0 || kind == "transform" {
                    parts.push(format!("{n} {kind}{}", plural(n)));
                }
            }
            parts.push(format!("{} sink{}", ir.sinks.len(), plural(ir.sinks.len())));
            eprintln!("ok: `{}` — {}", ir.name, parts.join(", "));
            Ok(ExitCode::SUCCESS)
        }
        Command::Emit { spec } => {
            print!("{}", compile(&spec)?.main_rs);
            Ok(ExitCode::SUCCESS)
        }
        Command::Build { spec, output, profile } => {
            let (name, built) = build_spec(&spec, profile.profile())?;
            let dest = output.unwrap_or_else(|| PathBuf::from(rill::names::binary_name(&name)));
            build::copy_binary(&built, &dest).map_err(|e| e.to_string())?;
            eprintln!("     Wrote {}", dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { spec, profile, args } => {
            let (_, built) = build_spec(&spec, profile.profile())?;
            let status = std::process::Command::new(&built)
                .args(&args)
                .status()
                .map_err(|e| format!("cannot start {}: {e}", built.display()))?;
            Ok(ExitCode::from(status.code().unwrap_or(1).clamp(0, 255) as u8))
        }
    }
}

/// Compile a spec, printing diagnostics (warnings too) on stderr.
fn compile(spec: &Path) -> Result<rill::Compiled, String> {
    match rill::compile_file(spec) {
        Ok(compiled) => {
            if let Some(warnings) = &compiled.warnings {
                print_report(warnings);
            }
            Ok(compiled)
        }
        Err(CompileError::Spec(report)) => {
            print_report(&report);
            Err(String::new())
        }
        Err(other) => Err(other.to_string()),
    }
}

/// Check a spec without generating code, printing diagnostics (warnings too) on stderr.
fn check(spec: &Path) -> Result<rill::ir::Ir, String> {
    match rill::check_file(spec) {
        Ok((ir, warnings)) => {
            if let Some(warnings) = &warnings {
                print_report(warnings);
            }
            Ok(ir)
        }
        Err(CompileError::Spec(report)) => {
            print_report(&report);
            Err(String::new())
        }
        Err(other) => Err(other.to_string()),
    }
}

fn build_spec(spec: &Path, profile: Profile) -> Result<(String, PathBuf), String> {
    let compiled = compile(spec)?;
    let krate = build::write_crate(&compiled.ir, spec, &compiled.main_rs).map_err(|e| e.to_string())?;
    let label = format!("{} ({})", compiled.ir.name, format!("{profile:?}").to_lowercase());
    let built = build::build_crate(&krate, profile, &label).map_err(|e| e.to_string())?;
    Ok((compiled.ir.name, built))
}

fn print_report(report: &Report) {
    use std::io::IsTerminal;
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let width = terminal_width().unwrap_or(100);
    eprint!("{}", report.render(width, color));
    eprintln!("{report}");
}

fn terminal_width() -> Option<usize> {
    std::env::var("COLUMNS").ok()?.parse().ok()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
