//! The cargo driver: write the generated crate, build it in the shared
//! target directory, copy the binary out.
//!
//! Every pipeline links the same extracted runtime with the same profile, so
//! the runtime and its dependencies compile once for all pipelines.

pub mod bundle;
pub mod embedded;
pub mod host_tools;
mod progress;
pub mod targets;

use std::fs;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::ir::Ir;

/// Cargo profiles a pipeline can be built with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
    /// Size-optimised for devices (`opt-level = "s"`, fat LTO).
    Edge,
}

impl Profile {
    fn cargo_args(self) -> Vec<&'static str> {
        match self {
            Profile::Debug => vec![],
            Profile::Release => vec!["--release"],
            Profile::Edge => vec!["--profile", "edge"],
        }
    }
    fn dir(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
            Profile::Edge => "edge",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("i/o error in {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("could not run cargo: {0}")]
    Cargo(io::Error),
    #[error(
        "cargo failed to build the generated crate (this is a rill bug if the spec passed `rill check`):\n{output}"
    )]
    Failed { output: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where rill keeps extracted runtimes, generated crates and the target dir.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RILL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    dirs::cache_dir().unwrap_or_else(std::env::temp_dir).join("rill")
}

/// The cargo target directory shared by every pipeline.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("RILL_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => cache_dir().join("target"),
    }
}

/// A generated crate on disk, ready for cargo.
pub struct Crate {
    pub dir: PathBuf,
    pub bin_name: String,
    /// The runtime features it is built with.
    pub features: Vec<String>,
}

/// Write (or update) the crate for `ir` with `main_rs`, for this machine or `target`.
/// Files are rewritten only when they change, so cargo's fingerprints stay warm.
pub fn write_crate(
    ir: &Ir,
    spec_path: &Path,
    main_rs: &str,
    target: Option<&targets::Target>,
) -> Result<Crate, BuildError> {
    let cache = cache_dir();
    let runtime = embedded::extract_runtime(&cache).map_err(io_err(&cache))?;
    let abs_spec = spec_path.canonicalize().unwrap_or_else(|_| spec_path.to_path_buf());
    let path_hash: String = Sha256::digest(abs_spec.to_string_lossy().as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect();
    // Bounded and file-system safe, however long the pipeline's name.
    let bin_name = format!("{}-{path_hash}", crate::names::file_stem(&ir.name));
    // A crate per target: its manifest's features differ, and builds for two targets
    // may run at once.
    let dir = match target {
        Some(target) => cache.join("pipelines").join(format!("{bin_name}-{}", target.triple)),
        None => cache.join("pipelines").join(&bin_name),
    };
    let mut features: Vec<&str> = ir.features.iter().copied().collect();
    if target.is_some() {
        features.extend(targets::cross_features(&features));
    }
    write_crate_at(&dir, &bin_name, &runtime, &features, main_rs)?;
    Ok(Crate {
        dir,
        bin_name,
        features: features.into_iter().map(str::to_owned).collect(),
    })
}

/// Write a crate with the runtime `features` into `dir`.
fn write_crate_at(
    dir: &Path,
    bin_name: &str,
    runtime: &Path,
    features: &[&str],
    main_rs: &str,
) -> Result<(), BuildError> {
    let manifest = manifest(&format!("rill-pipeline-{bin_name}"), bin_name, runtime, features);
    write_if_changed(&dir.join("Cargo.toml"), manifest.as_bytes())?;
    write_if_changed(&dir.join("src/main.rs"), main_rs.as_bytes())?;
    // Pin dependency versions to the ones rill was tested with.
    let lock = dir.join("Cargo.lock");
    if !lock.exists() {
        if let Some(contents) = embedded::file("Cargo.lock") {
            write_if_changed(&lock, contents)?;
        }
    }
    Ok(())
}

/// The generated crate's `Cargo.toml`, from the embedded template.
pub fn manifest(crate_name: &str, bin_name: &str, runtime: &Path, features: &[&str]) -> String {
    let features: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
    embedded::template("Cargo.toml.tmpl")
        .replace("{{crate_name}}", &toml_text(crate_name))
        .replace("{{bin_name}}", &toml_text(bin_name))
        .replace(
            "{{runtime_path}}",
            &toml_text(&runtime.to_string_lossy().replace('\\', "/")),
        )
        .replace("{{features}}", &features.join(", "))
}

/// Text for inside a TOML basic string (`"…"`): quotes, backslashes and control
/// characters escaped, so a path from outside cannot add keys to the manifest.
fn toml_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

fn write_if_changed(path: &Path, contents: &[u8]) -> Result<(), BuildError> {
    if fs::read(path).ok().as_deref() == Some(contents) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    fs::write(path, contents).map_err(io_err(path))
}

/// Run `cargo <command>` on a manifest in the shared target dir, hiding its
/// output behind a progress line unless it fails.
pub fn cargo(command: &str, manifest: &Path, profile: Profile, label: &str, extra: &[&str]) -> Result<(), BuildError> {
    cargo_with_env(command, manifest, profile, label, extra, &[])
}

/// [`cargo`] with extra environment variables.
fn cargo_with_env(
    command: &str,
    manifest: &Path,
    profile: Profile,
    label: &str,
    extra: &[&str],
    env: &[(String, String)],
) -> Result<(), BuildError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    cmd.arg(command)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir())
        .args(profile.cargo_args())
        .args(extra)
        .args(["--color", "never"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut progress = progress::Progress::start(label);
    let mut child = cmd.spawn().map_err(BuildError::Cargo)?;
    let stdout = child.stdout.take();
    let stdout_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = io::Read::read_to_string(&mut out, &mut text);
        }
        text
    });
    let mut output = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            progress.line(&line);
            output.push_str(&line);
            output.push('\n');
        }
    }
    let status = child.wait().map_err(BuildError::Cargo)?;
    output.push_str(&stdout_reader.join().unwrap_or_default());
    progress.finish(status.success());
    if status.success() {
        Ok(())
    } else {
        Err(BuildError::Failed { output })
    }
}

/// Build the crate, for this machine or for `target` (through cargo-zigbuild), and
/// return the path of the binary in the target dir.
pub fn build_crate(
    krate: &Crate,
    profile: Profile,
    target: Option<&targets::Target>,
    label: &str,
) -> Result<PathBuf, BuildError> {
    let manifest = krate.dir.join("Cargo.toml");
    match target {
        None => {
            cargo("build", &manifest, profile, label, &[])?;
            Ok(target_dir().join(profile.dir()).join(&krate.bin_name))
        }
        Some(target) => {
            let features: Vec<&str> = krate.features.iter().map(String::as_str).collect();
            let cache = cache_dir();
            let env = targets::cross_env(target, &features, &cache).map_err(io_err(&cache))?;
            let args = targets::cargo_args(target);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cargo_with_env("zigbuild", &manifest, profile, label, &args, &env)?;
            Ok(target_dir()
                .join(target.triple)
                .join(profile.dir())
                .join(&krate.bin_name))
        }
    }
}

/// Copy the built binary to `dest`.
pub fn copy_binary(built: &Path, dest: &Path) -> Result<(), BuildError> {
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    // Copy to a temporary name and rename, so a running binary is never half-written.
    let tmp = dest.with_extension("rill-tmp");
    fs::copy(built, &tmp).map_err(io_err(&tmp))?;
    fs::rename(&tmp, dest).map_err(io_err(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outside_text_cannot_add_keys_to_the_manifest() {
        let runtime = Path::new("/cache/a\"b\n[profile.release]\nopt-level = 0 #");
        let manifest = manifest("rill-pipeline-x", "x", runtime, &[]);
        let line = manifest.lines().find(|l| l.starts_with("rill_runtime")).unwrap();
        assert_eq!(
            line,
            r#"rill_runtime = { path = "/cache/a\"b\u000A[profile.release]\u000Aopt-level = 0 #", features = [] }"#
        );
        let headers = manifest.lines().filter(|l| l.starts_with("[profile.release]"));
        assert_eq!(headers.count(), 1);
    }
}
