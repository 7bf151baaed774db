//! Programs a pipeline's connectors need on the building machine (besides cargo and a C
//! compiler), checked before cargo runs, so a missing one is named with the command
//! that installs it instead of failing deep in a dependency's build script.

use std::path::Path;
use std::process::{Command, Stdio};

/// A program a runtime feature's dependencies run while they build.
struct HostNeeds {
    feature: &'static str,
    program: &'static str,
    /// An environment variable naming the program instead of `PATH`, if the build
    /// script reads one.
    env: Option<&'static str>,
    what: &'static str,
    install: &'static str,
}

const HOST_NEEDS: &[HostNeeds] = &[HostNeeds {
    feature: "pulsar",
    program: "protoc",
    env: Some("PROTOC"),
    what: "protoc, the Protocol Buffers compiler: the Pulsar client compiles Pulsar's protocol with it",
    install: "sudo apt-get install protobuf-compiler",
}];

/// Whether `need` can run here: the program its variable names, or one on `PATH`.
fn present(need: &HostNeeds) -> bool {
    if let Some(path) = need.env.and_then(std::env::var_os) {
        return Path::new(&path).is_file();
    }
    Command::new(need.program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What a pipeline with `features` needs that this machine lacks, as one message;
/// `None` when nothing is missing.
pub fn missing(features: &[&str]) -> Option<String> {
    let missing: Vec<&HostNeeds> = HOST_NEEDS
        .iter()
        .filter(|need| features.contains(&need.feature) && !present(need))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut text = String::from("cannot build this pipeline yet; this machine is missing:\n");
    for need in &missing {
        text.push_str(&format!("  - {} (for its `{}` connector)\n", need.what, need.feature));
    }
    text.push_str("Run:\n");
    for need in &missing {
        text.push_str(&format!("  {}\n", need.install));
    }
    Some(text.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_without_such_connectors_needs_nothing_more() {
        assert_eq!(missing(&["kafka", "mqtt", "redis", "http"]), None);
    }
}
