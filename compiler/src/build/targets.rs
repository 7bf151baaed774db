//! Build targets other than the machine rill runs on, and what each needs here.
//!
//! A cross build is `cargo zigbuild --target T`: rustup supplies the Rust standard
//! library for `T`, and `zig cc` (PyPI's `ziglang`, driven by `cargo-zigbuild`) is the C
//! compiler and linker for every target, with musl and glibc headers for all of them
//! built in. C dependencies (librdkafka through its cmake build, OpenSSL, zstd, zlib,
//! ring) follow the C compiler cargo-zigbuild sets, so a pipeline that links C code
//! cross-compiles the same way as one that does not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One triple `rill build --target` supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub triple: &'static str,
    /// What it runs on, for `rill targets`.
    pub runs_on: &'static str,
    /// Linked statically against musl: runs on any Linux of its architecture.
    pub is_static: bool,
    /// The qemu user-mode emulator that runs its binaries on an x86-64 machine
    /// (`None`: it runs natively there).
    pub qemu: Option<&'static str>,
    /// The oldest glibc a dynamically linked binary needs (cargo-zigbuild's
    /// `triple.version` form); `None` for static targets.
    pub glibc: Option<&'static str>,
}

/// Every supported target, in the order `rill targets` lists them.
pub const TARGETS: &[Target] = &[
    Target {
        triple: "x86_64-unknown-linux-musl",
        runs_on: "x86-64 Linux, any distribution (static)",
        is_static: true,
        qemu: None,
        glibc: None,
    },
    Target {
        triple: "aarch64-unknown-linux-musl",
        runs_on: "64-bit ARM: Raspberry Pi 3/4/5 with a 64-bit OS, ARM gateways (static)",
        is_static: true,
        qemu: Some("qemu-aarch64"),
        glibc: None,
    },
    Target {
        triple: "armv7-unknown-linux-musleabihf",
        runs_on: "32-bit ARMv7 hard-float: Raspberry Pi 2/3/4 with 32-bit Raspberry Pi OS (static)",
        is_static: true,
        qemu: Some("qemu-arm"),
        glibc: None,
    },
    Target {
        triple: "aarch64-unknown-linux-gnu",
        runs_on: "64-bit ARM Linux with glibc 2.28 or newer (Debian 10, Raspberry Pi OS buster and later)",
        is_static: false,
        qemu: Some("qemu-aarch64"),
        glibc: Some("2.28"),
    },
];

/// The supported target named `triple`.
pub fn find(triple: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.triple == triple)
}

/// The message for a triple rill does not support.
pub fn unsupported(triple: &str) -> String {
    let list: Vec<&str> = TARGETS.iter().map(|t| t.triple).collect();
    format!(
        "`{triple}` is not a target rill builds for; use one of: {} (`rill targets` shows which are ready)",
        list.join(", ")
    )
}

/// What a runtime feature's C code needs to cross-compile.
struct CrossNeeds {
    feature: &'static str,
    /// A build tool beyond the C compiler.
    tool: Tool,
    /// The runtime feature that switches the C build to its cross-aware form.
    cross_feature: &'static str,
    /// Headers the C code includes but never uses in the configuration rill builds,
    /// given as empty files.
    stub_headers: &'static [&'static str],
}

const CROSS_NEEDS: &[CrossNeeds] = &[CrossNeeds {
    feature: "kafka",
    tool: Tool::Cmake,
    // librdkafka's own `configure` ignores the cross compiler; its cmake build follows
    // the toolchain cargo-zigbuild writes.
    cross_feature: "kafka-cmake",
    // librdkafka 2.12's cmake build defines WITH_OAUTHBEARER_OIDC as 0 without curl,
    // but rdkafka_conf.c tests it with `#ifdef` and includes <curl/curl.h> anyway;
    // nothing of it is used when the macro is 0.
    stub_headers: &["curl/curl.h"],
}];

/// The runtime features a cross build of a pipeline with `features` adds.
pub fn cross_features(features: &[&str]) -> Vec<&'static str> {
    CROSS_NEEDS
        .iter()
        .filter(|needs| features.contains(&needs.feature))
        .map(|needs| needs.cross_feature)
        .collect()
}

/// The environment a cross build of `features` for `target` runs with: the C flags
/// that put the stub headers on the include path (written under `cache`), and
/// `RUSTC_BOOTSTRAP` where the standard library is built from source.
pub fn cross_env(target: &Target, features: &[&str], cache: &Path) -> std::io::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    let stubs: Vec<&str> = CROSS_NEEDS
        .iter()
        .filter(|needs| features.contains(&needs.feature))
        .flat_map(|needs| needs.stub_headers.iter().copied())
        .collect();
    if !stubs.is_empty() {
        let dir = cache.join("cross-include");
        for header in &stubs {
            let path = dir.join(header);
            if !path.exists() {
                std::fs::create_dir_all(path.parent().unwrap_or(&dir))?;
                std::fs::write(
                    &path,
                    "/* empty: included, never used (see rill's build/targets.rs) */\n",
                )?;
            }
        }
        // Added to the user's own flags for the target, if any.
        let var = format!("CFLAGS_{}", target.triple.replace('-', "_"));
        let mut flags = std::env::var(&var).unwrap_or_default();
        flags.push_str(&format!(" -I{}", dir.display()));
        env.push((var, flags.trim_start().to_owned()));
    }
    if std_from_source(target) {
        // `-Zbuild-std` on the stable toolchain, for a target rustup ships no std for.
        env.push(("RUSTC_BOOTSTRAP".to_owned(), "1".to_owned()));
        // rustup's std component also carries musl's startup objects and libc for
        // linking "self-contained"; without it, zig supplies its own.
        let var = format!(
            "CARGO_TARGET_{}_RUSTFLAGS",
            target.triple.replace('-', "_").to_uppercase()
        );
        env.push((var, "-C link-self-contained=no".to_owned()));
    }
    Ok(env)
}

/// Extra cargo arguments for `target`: building the standard library from the
/// `rust-src` component when rustup has no prebuilt one for it (Rust 1.95 ships none
/// for armv7-unknown-linux-musleabihf).
pub fn cargo_args(target: &Target) -> Vec<String> {
    let mut args = vec!["--target".to_owned(), cargo_target(target)];
    if std_from_source(target) {
        args.push("-Zbuild-std=std,panic_abort".to_owned());
    }
    args
}

fn std_from_source(target: &Target) -> bool {
    !rust_std_installed(target.triple) && rust_src_installed()
}

/// Something a cross build needs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The Rust standard library for the target.
    RustStd,
    /// cargo's `zigbuild` subcommand.
    CargoZigbuild,
    /// The zig C compiler (on PATH, or PyPI's `ziglang`).
    Zig,
    /// cmake, for librdkafka's cross-aware build.
    Cmake,
}

impl Tool {
    fn what(self, target: &Target) -> String {
        match self {
            Tool::RustStd => format!("the Rust standard library for {}", target.triple),
            Tool::CargoZigbuild => "cargo-zigbuild (drives zig as the C cross compiler and linker)".into(),
            Tool::Zig => "zig (the C cross compiler)".into(),
            Tool::Cmake => "cmake (builds librdkafka for the target)".into(),
        }
    }

    /// The command that installs it.
    fn install(self, target: &Target) -> String {
        match self {
            // Where a Rust release ships no standard library for the target, rill builds
            // it from the source component instead.
            Tool::RustStd => format!("rustup target add {} || rustup component add rust-src", target.triple),
            Tool::CargoZigbuild => "cargo install cargo-zigbuild --locked".into(),
            Tool::Zig => "pip install ziglang".into(),
            Tool::Cmake => "sudo apt-get install cmake".into(),
        }
    }

    fn present(self, target: &Target) -> bool {
        match self {
            Tool::RustStd => rust_std_installed(target.triple) || rust_src_installed(),
            Tool::CargoZigbuild => runs(Command::new(cargo()).args(["zigbuild", "--help"])),
            Tool::Zig => {
                runs(Command::new("zig").arg("version"))
                    || runs(Command::new("python3").args(["-m", "ziglang", "version"]))
            }
            Tool::Cmake => runs(Command::new("cmake").arg("--version")),
        }
    }
}

/// What is missing on this machine to build `features` for `target`.
pub fn missing(target: &Target, features: &[&str]) -> Vec<Tool> {
    let mut tools = vec![Tool::RustStd, Tool::CargoZigbuild, Tool::Zig];
    for needs in CROSS_NEEDS.iter().filter(|needs| features.contains(&needs.feature)) {
        if !tools.contains(&needs.tool) {
            tools.push(needs.tool);
        }
    }
    tools.into_iter().filter(|tool| !tool.present(target)).collect()
}

/// Every tool any pipeline may need for `target` that is missing here.
pub fn missing_for_any(target: &Target) -> Vec<Tool> {
    let features: Vec<&str> = CROSS_NEEDS.iter().map(|needs| needs.feature).collect();
    missing(target, &features)
}

/// "to build for T, this machine needs: … Run: …" for what is missing.
pub fn missing_message(target: &Target, tools: &[Tool]) -> String {
    let mut text = format!("cannot build for {} yet; this machine is missing:\n", target.triple);
    for tool in tools {
        text.push_str(&format!("  - {}\n", tool.what(target)));
    }
    text.push_str("Run:\n");
    for tool in tools {
        text.push_str(&format!("  {}\n", tool.install(target)));
    }
    text.push_str("(`rill targets` shows what each target needs.)");
    text
}

/// Whether this machine can run the target's binaries (natively or under qemu).
pub fn can_run_here(target: &Target) -> Result<(), String> {
    match target.qemu {
        None if std::env::consts::ARCH == "x86_64" => Ok(()),
        None => Err("an x86-64 machine".into()),
        Some(qemu) if runs(Command::new(qemu).arg("--version")) => Ok(()),
        Some(qemu) => Err(format!("{qemu} (sudo apt-get install qemu-user)")),
    }
}

/// `rill targets`: each target, what it runs on, and whether it is ready here.
pub fn report() -> String {
    let mut text = String::new();
    for target in TARGETS {
        text.push_str(&format!("{}\n    {}\n", target.triple, target.runs_on));
        let missing = missing_for_any(target);
        if missing.is_empty() && std_from_source(target) {
            text.push_str(&format!(
                "    ready; no prebuilt standard library here (`rustup target add {}` where this Rust \
                 release has one), so it is built from source, once\n",
                target.triple
            ));
        } else if missing.is_empty() {
            text.push_str("    ready\n");
        } else {
            for tool in &missing {
                text.push_str(&format!(
                    "    missing {}: run `{}`\n",
                    tool.what(target),
                    tool.install(target)
                ));
            }
        }
        match can_run_here(target) {
            Ok(()) if target.qemu.is_some() && target.glibc.is_none() => {
                text.push_str(&format!("    runs here under {}\n", target.qemu.unwrap_or_default()))
            }
            Ok(()) => {}
            Err(need) => text.push_str(&format!("    to try its binaries here: {need}\n")),
        }
    }
    text.push_str("\nBuild with `rill build SPEC --target TRIPLE [--profile edge] [--bundle]`.\n");
    text
}

/// The cargo-zigbuild target argument: glibc targets carry the version they link against.
pub fn cargo_target(target: &Target) -> String {
    match target.glibc {
        Some(version) => format!("{}.{version}", target.triple),
        None => target.triple.to_owned(),
    }
}

fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

fn runs(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether rustup installed the target's standard library in the active toolchain.
fn rust_std_installed(triple: &str) -> bool {
    sysroot().is_some_and(|root| root.join("lib/rustlib").join(triple).join("lib").is_dir())
}

/// Whether the standard library's source (rustup's `rust-src`) is installed.
fn rust_src_installed() -> bool {
    sysroot().is_some_and(|root| root.join("lib/rustlib/src/rust/library/std").is_dir())
}

fn sysroot() -> Option<PathBuf> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc).args(["--print", "sysroot"]).output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_s_targets_are_supported_and_others_are_named() {
        for triple in [
            "aarch64-unknown-linux-musl",
            "armv7-unknown-linux-musleabihf",
            "x86_64-unknown-linux-musl",
            "aarch64-unknown-linux-gnu",
        ] {
            assert!(find(triple).is_some(), "{triple}");
        }
        let message = unsupported("riscv64gc-unknown-linux-gnu");
        assert!(message.contains("riscv64gc-unknown-linux-gnu"), "{message}");
        assert!(message.contains("armv7-unknown-linux-musleabihf"), "{message}");
    }

    #[test]
    fn glibc_targets_name_their_glibc_and_static_ones_do_not() {
        for target in TARGETS {
            assert_eq!(target.is_static, target.glibc.is_none(), "{}", target.triple);
        }
        let gnu = find("aarch64-unknown-linux-gnu").unwrap();
        assert_eq!(cargo_target(gnu), "aarch64-unknown-linux-gnu.2.28");
        let musl = find("aarch64-unknown-linux-musl").unwrap();
        assert_eq!(cargo_target(musl), "aarch64-unknown-linux-musl");
    }

    #[test]
    fn the_missing_message_says_what_to_run() {
        let target = find("armv7-unknown-linux-musleabihf").unwrap();
        let text = missing_message(target, &[Tool::RustStd, Tool::Zig, Tool::Cmake]);
        assert!(
            text.contains("rustup target add armv7-unknown-linux-musleabihf"),
            "{text}"
        );
        assert!(text.contains("pip install ziglang"), "{text}");
        assert!(text.contains("apt-get install cmake"), "{text}");
    }
}
