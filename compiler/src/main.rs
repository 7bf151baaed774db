//! The `rill` command line: a thin layer over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rill::build::targets::{self, Target};
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
        /// Where to write the binary (default: ./<pipeline name>, or
        /// ./<pipeline name>-<target> with --target), or the bundle with --bundle.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Build for another machine: a target triple from `rill targets`
        /// (e.g. aarch64-unknown-linux-musl for a 64-bit Raspberry Pi).
        #[arg(long, value_name = "TRIPLE")]
        target: Option<String>,
        /// Write <name>-<target>.tar.gz: the binary, a systemd unit and an environment
        /// file with every setting, laid out to unpack at / on the device.
        #[arg(long, requires = "target")]
        bundle: bool,
    },
    /// List the targets `rill build --target` supports, and what each needs here.
    Targets,
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
                ("pattern", count("patterns.")),
                ("join", count("joins.")),
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
        Command::Build {
            spec,
            output,
            profile,
            target,
            bundle,
        } => {
            let target = match target.as_deref() {
                Some(triple) => Some(targets::find(triple).ok_or_else(|| targets::unsupported(triple))?),
                None => None,
            };
            let (ir, built) = build_spec(&spec, profile.profile(), target)?;
            if let (true, Some(target)) = (bundle, target) {
                let bundle = build::bundle::Bundle {
                    ir: &ir,
                    target,
                    binary: &built,
                };
                let dest = output.unwrap_or_else(|| PathBuf::from(bundle.file_name()));
                bundle.write(&dest).map_err(|e| e.to_string())?;
                eprintln!("     Wrote {}", dest.display());
                eprint!("{}", bundle.readme());
                return Ok(ExitCode::SUCCESS);
            }
            let name = rill::names::binary_name(&ir.name);
            let default = match target {
                Some(target) => format!("{name}-{}", target.triple),
                None => name,
            };
            let dest = output.unwrap_or_else(|| PathBuf::from(default));
            build::copy_binary(&built, &dest).map_err(|e| e.to_string())?;
            eprintln!("     Wrote {}", dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Targets => {
            print!("{}", targets::report());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { spec, profile, args } => {
            let (_, built) = build_spec(&spec, profile.profile(), None)?;
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

fn build_spec(spec: &Path, profile: Profile, target: Option<&Target>) -> Result<(rill::ir::Ir, PathBuf), String> {
    let compiled = compile(spec)?;
    let mut label = format!("{} ({}", compiled.ir.name, format!("{profile:?}").to_lowercase());
    let features: Vec<&str> = compiled.ir.features.iter().copied().collect();
    if let Some(missing) = build::host_tools::missing(&features) {
        return Err(missing);
    }
    if let Some(target) = target {
        let missing = targets::missing(target, &features);
        if !missing.is_empty() {
            return Err(targets::missing_message(target, &missing));
        }
        label.push_str(&format!(", {}", target.triple));
    }
    label.push(')');
    let krate = build::write_crate(&compiled.ir, spec, &compiled.main_rs, target).map_err(|e| e.to_string())?;
    let built = build::build_crate(&krate, profile, target, &label).map_err(|e| e.to_string())?;
    Ok((compiled.ir, built))
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
