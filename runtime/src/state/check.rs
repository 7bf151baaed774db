//! `<binary> state check DIR [--repair]`: what a state directory holds, and whether it
//! can be trusted.
//!
//! Every checkpoint is verified (length, checksum, format, spec) and every disk buffer
//! walked record by record (see [`crate::buffer::check`]). With `--repair`, a damaged
//! checkpoint is moved aside (`.damaged`), so the next start uses the previous one
//! without a warning each time, and a buffer's damaged tail is cut off; the report
//! says exactly what that loses. Exit status: 0 when everything is sound (or was
//! repaired), 1 when damage remains, 2 when the directory cannot be read.

use super::file::{self, Damage};
use crate::driver::PipelineInfo;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// What a check found: lines for a person, and whether damage remains.
#[derive(Debug, Default)]
pub struct Findings {
    pub lines: Vec<String>,
    pub damaged: bool,
}

impl Findings {
    pub fn say(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }
}

/// Runs the command: prints the report on stdout, returns the exit status.
pub fn run(dir: &Path, repair: bool, info: &PipelineInfo) -> ExitCode {
    if !dir.is_dir() {
        eprintln!("error: `{}` is not a directory", dir.display());
        return ExitCode::from(2);
    }
    let mut findings = Findings::default();
    check_checkpoints(dir, repair, info, &mut findings);
    crate::buffer::check::check_all(dir, repair, &mut findings);
    let mut out = String::new();
    for line in &findings.lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "{}",
        if findings.damaged {
            "state: DAMAGED (run with --repair to cut off what is damaged)"
        } else {
            "state: ok"
        }
    );
    print!("{out}");
    if findings.damaged {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Verifies every checkpoint file, newest first, and says which one a start would use.
pub fn check_checkpoints(dir: &Path, repair: bool, info: &PipelineInfo, findings: &mut Findings) {
    let checkpoints = file::checkpoint_dir(dir);
    let found = file::list(&checkpoints);
    if found.is_empty() {
        findings.say(format!("checkpoints: none in `{}`", checkpoints.display()));
        return;
    }
    let mut usable = None;
    for (seq, path) in &found {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        match file::read(path) {
            Ok(cp) => {
                let spec = if cp.spec_hash == info.spec_hash && cp.pipeline == info.name {
                    "this spec".to_owned()
                } else {
                    findings.damaged = true;
                    format!(
                        "ANOTHER spec: pipeline `{}` spec {} (this binary: `{}` spec {}); a start refuses it",
                        cp.pipeline, cp.spec_hash, info.name, info.spec_hash
                    )
                };
                let sections: Vec<String> = cp.sections.iter().map(|(n, b)| format!("{n} {} B", b.len())).collect();
                findings.say(format!(
                    "checkpoint {seq}: ok, {len} bytes, written {}, {spec}; {}",
                    crate::time::format_rfc3339(cp.written_ms),
                    sections.join(", ")
                ));
                usable.get_or_insert(*seq);
            }
            Err(damage) => {
                let mut line = format!("checkpoint {seq}: DAMAGED, {len} bytes: {damage}");
                if repair {
                    line.push_str(&repair_checkpoint(path, &damage, usable.is_none()));
                } else {
                    findings.damaged = true;
                }
                findings.say(line);
            }
        }
    }
    match usable {
        Some(seq) => findings.say(format!("a start resumes from checkpoint {seq}")),
        None => {
            findings.damaged = true;
            findings.say("no usable checkpoint: a start refuses to run without --reset-state")
        }
    }
}

/// Moves a damaged checkpoint aside; says what that means for the next start.
fn repair_checkpoint(path: &Path, damage: &Damage, newest: bool) -> String {
    let aside = path.with_extension("damaged");
    match std::fs::rename(path, &aside) {
        Ok(()) => {
            let _ = path.parent().map(file::sync_dir);
            let lost = if newest {
                "the state since the previous checkpoint is lost from it: sources resume from there and replay"
            } else {
                "nothing is lost: a newer checkpoint is good"
            };
            format!("; repaired: moved to `{}` ({lost})", aside.display())
        }
        Err(e) => format!("; cannot move it aside: {e} ({damage})"),
    }
}
