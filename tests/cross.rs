//! Pipelines built for other machines with `rill build --target … --profile edge`:
//! the ARM binaries run under qemu on the same input as the native build and must
//! write the same bytes; `file` checks they are static executables of the right
//! architecture; a bundle unpacks into a unit that `systemd-analyze verify` accepts and
//! an environment file that lists every setting. `scripts/cross-setup` installs the
//! toolchain pieces (rustup targets, zig, cargo-zigbuild, cmake, qemu-user).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const AARCH64_MUSL: &str = "aarch64-unknown-linux-musl";
const ARMV7_MUSL: &str = "armv7-unknown-linux-musleabihf";
const X86_64_MUSL: &str = "x86_64-unknown-linux-musl";
const AARCH64_GNU: &str = "aarch64-unknown-linux-gnu";

/// `rill build SPEC --target TARGET --profile edge`, once per spec and target.
fn cross_build(spec: &str, target: &str) -> PathBuf {
    let stem = Path::new(spec).file_stem().unwrap().to_string_lossy().into_owned();
    support::build_with(
        spec,
        &["--target", target, "--profile", "edge"],
        &format!("cross-bin/{stem}-{target}"),
    )
}

/// What `file` says about `binary`.
fn file_type(binary: &Path) -> String {
    let out = Command::new("file")
        .arg("-b")
        .arg(binary)
        .output()
        .expect("`file` runs");
    assert!(out.status.success(), "file {}", binary.display());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The command that runs a binary of `target` here.
fn runner(target: &str, binary: &Path) -> Command {
    let mut cmd = match target {
        AARCH64_MUSL => Command::new("qemu-aarch64"),
        ARMV7_MUSL => Command::new("qemu-arm"),
        X86_64_MUSL => return Command::new(binary),
        AARCH64_GNU => {
            // The target's glibc and loader, from Debian's libc6-arm64-cross.
            let mut cmd = Command::new("qemu-aarch64");
            cmd.args(["-L", "/usr/aarch64-linux-gnu"]);
            cmd
        }
        other => panic!("no runner for {other}"),
    };
    cmd.arg(binary);
    cmd
}

/// Runs `cmd` with `env` set and stdin closed, returning its output.
fn run_with(mut cmd: Command, env: &[(&str, &Path)]) -> Output {
    for (name, value) in env {
        cmd.env(name, value);
    }
    cmd.env("RILL_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("pipeline runs")
}

/// The exit summary's counters, for comparing two runs; without `state_bytes`, an
/// estimate of memory that depends on the pointer width (armv7 is 32-bit).
fn summary(stderr: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let mut components = support::counters(stderr);
    for counters in components.values_mut() {
        if let Some(counters) = counters.as_object_mut() {
            counters.remove("state_bytes");
        }
    }
    components
}

#[test]
fn the_quickstart_writes_the_same_bytes_on_every_target() {
    let native = support::build("pipelines/quickstart.yaml");
    let expected = run_with(Command::new(&native), &[]);
    assert!(
        expected.status.success(),
        "{}",
        String::from_utf8_lossy(&expected.stderr)
    );
    assert!(!expected.stdout.is_empty(), "the quickstart writes records");
    for target in [AARCH64_MUSL, ARMV7_MUSL, X86_64_MUSL, AARCH64_GNU] {
        let binary = cross_build("pipelines/quickstart.yaml", target);
        let got = run_with(runner(target, &binary), &[]);
        assert!(
            got.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&got.stderr)
        );
        assert!(
            got.stdout == expected.stdout,
            "{target}: stdout differs from the native build's"
        );
        assert_eq!(summary(&got.stderr), summary(&expected.stderr), "{target}");
    }
}

#[test]
fn a_windowed_pipeline_writes_the_same_bytes_under_qemu_on_arm() {
    let dir = support::workdir("cross-windows");
    let input = dir.join("readings.jsonl");
    std::fs::write(&input, readings(20_000)).unwrap();
    let run = |cmd: Command, name: &str| {
        let windows = dir.join(format!("{name}-windows.jsonl"));
        let late = dir.join(format!("{name}-late.jsonl"));
        let out = run_with(
            cmd,
            &[
                ("READINGS_PATH", &input),
                ("WINDOWS_PATH", &windows),
                ("LATE_PATH", &late),
            ],
        );
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let read = |path: &Path| std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (read(&windows), read(&late), summary(&out.stderr))
    };
    let native = support::build("pipelines/sensor_windows.yaml");
    let expected = run(Command::new(&native), "native");
    assert!(expected.0.len() > 1000, "windows fire: {} bytes", expected.0.len());
    assert!(!expected.1.is_empty(), "the input has late readings");
    for target in [AARCH64_MUSL, ARMV7_MUSL] {
        let binary = cross_build("pipelines/sensor_windows.yaml", target);
        let got = run(runner(target, &binary), target);
        assert!(got.0 == expected.0, "{target}: windows differ from the native build's");
        assert!(
            got.1 == expected.1,
            "{target}: late readings differ from the native build's"
        );
        assert_eq!(got.2, expected.2, "{target}: counters");
    }
}

/// `n` readings of 8 devices, 50 ms apart, shuffled up to 3 s out of order (some of
/// them later than the window's allowed lateness).
fn readings(n: u64) -> String {
    let mut rng = support::Rng(7);
    let mut text = String::new();
    for i in 0..n {
        let jitter = rng.below(3_000) as i64;
        let ts = 1_700_000_000_000_i64 + (i as i64) * 50 - if i % 97 == 0 { 20_000 } else { jitter };
        let status = if rng.below(10) == 0 { "error" } else { "ok" };
        text.push_str(&format!(
            "{{\"device_id\":\"dev-{}\",\"ts\":{ts},\"temperature\":{:.2},\"status\":\"{status}\"}}\n",
            rng.below(8),
            rng.decimal(-10.0, 45.0)
        ));
    }
    text
}

#[test]
fn static_targets_make_static_executables_of_their_architecture() {
    for (target, arch) in [
        (AARCH64_MUSL, "ARM aarch64"),
        (ARMV7_MUSL, "ARM, EABI5"),
        (X86_64_MUSL, "x86-64"),
    ] {
        let binary = cross_build("pipelines/quickstart.yaml", target);
        let kind = file_type(&binary);
        assert!(kind.contains(arch), "{target}: {kind}");
        assert!(kind.contains("statically linked"), "{target}: {kind}");
        assert!(
            kind.contains("stripped") && !kind.contains("not stripped"),
            "{target}: {kind}"
        );
    }
    // No dynamic section at all: `ldd` finds nothing to load.
    let x86 = cross_build("pipelines/quickstart.yaml", X86_64_MUSL);
    let ldd = Command::new("ldd").arg(&x86).output().expect("ldd runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    assert!(
        said.contains("not a dynamic executable") || said.contains("statically linked"),
        "ldd: {said}"
    );
    let gnu = file_type(&cross_build("pipelines/quickstart.yaml", AARCH64_GNU));
    assert!(
        gnu.contains("ARM aarch64") && gnu.contains("dynamically linked"),
        "{gnu}"
    );
    assert!(gnu.contains("ld-linux-aarch64.so.1"), "{gnu}");
}

#[test]
fn a_kafka_pipeline_cross_compiles_librdkafka_and_runs_under_qemu_against_a_broker() {
    for (target, arch, qemu) in [
        (AARCH64_MUSL, "ARM aarch64", "qemu-aarch64"),
        (ARMV7_MUSL, "ARM, EABI5", "qemu-arm"),
    ] {
        let binary = cross_build("pipelines/kafka_uppercase.yaml", target);
        let kind = file_type(&binary);
        assert!(
            kind.contains(arch) && kind.contains("statically linked"),
            "{target}: {kind}"
        );
        let bytes = std::fs::read(&binary).unwrap();
        assert!(
            bytes.windows(18).any(|w| w == b"enable.idempotence"),
            "{target}: librdkafka is inside the binary"
        );
        relays_under_qemu(qemu, &binary);
    }
}

/// Runs the Kafka example's `binary` under `qemu` against a tansu broker the test
/// starts: 50 notes in, 50 upper-cased notes out, read back by an independent client.
fn relays_under_qemu(qemu: &str, binary: &Path) {
    let broker = support::kafka::Broker::start();
    broker.create_topic("notes", 2);
    broker.create_topic("notes_upper", 2);
    let input: Vec<support::kafka::Message> = (0..50)
        .map(|i| support::kafka::Message::value(format!("{{\"id\":{i},\"message\":\"hi {i}\"}}")))
        .collect();
    broker.produce("notes", &input);
    let dir = support::workdir(&format!("cross-kafka-{qemu}"));
    let wrapper = dir.join("run-under-qemu");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\nexec {qemu} '{}' \"$@\"\n", binary.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = [
        ("KAFKA_BROKERS", broker.bootstrap()),
        ("DEAD_LETTERS_PATH", dir.join("dead.jsonl").display().to_string()),
    ];
    let running = support::kafka::Running::start(&wrapper, &env, &dir);
    let out = broker.consume("notes_upper", 50, std::time::Duration::from_secs(120));
    let (status, log) = running.stop();
    assert_eq!(out.len(), 50, "{qemu}: log:\n{log}");
    assert!(status.success(), "{qemu}: {log}");
    let mut ids: Vec<i64> = out
        .iter()
        .map(|c| {
            let v: serde_json::Value = serde_json::from_str(&c.value).unwrap();
            assert_eq!(v["message"], format!("HI {}", v["id"]));
            v["id"].as_i64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..50).collect::<Vec<_>>(), "{qemu}");
}

#[test]
fn a_bundle_unpacks_into_a_verified_unit_and_every_setting() {
    let dir = support::workdir("cross-bundle");
    let archive = dir.join("bundle.tar.gz");
    let output = support::rill()
        .arg("build")
        .arg(support::repo().join("pipelines/sensor_windows.yaml"))
        .args(["--target", X86_64_MUSL, "--profile", "edge", "--bundle", "-o"])
        .arg(&archive)
        .output()
        .expect("rill runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("systemctl enable --now sensor_windows"), "{said}");

    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    let untar = Command::new("tar")
        .arg("xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&root)
        .status()
        .expect("tar runs");
    assert!(untar.success());
    let binary = root.join("usr/local/bin/sensor_windows");
    let unit = root.join("etc/systemd/system/sensor_windows.service");
    let env_file = root.join("etc/sensor_windows/sensor_windows.env");
    let readme = root.join("usr/local/share/doc/sensor_windows/README");
    let mode = |p: &Path| std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions()) & 0o777;
    assert_eq!(mode(&binary), 0o755);
    assert_eq!(mode(&env_file), 0o600, "secrets may be written into it");
    assert!(file_type(&binary).contains("statically linked"));
    assert_eq!(std::fs::read_to_string(&readme).unwrap().lines().count(), 3);

    // systemd's own checker, against the unpacked tree as the root (with this
    // machine's system units, which the unit's dependencies name, copied in).
    let units = ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .into_iter()
        .find(|dir| Path::new(dir).join("sysinit.target").exists())
        .expect("systemd's units are installed (scripts/cross-setup)");
    std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
    let copied = Command::new("cp")
        .args(["-a", units])
        .arg(root.join("usr/lib/systemd/system"))
        .status()
        .expect("cp runs");
    assert!(copied.success());
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .arg("--man=no")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(verify.status.success(), "systemd-analyze verify:\n{complaints}");
    assert!(
        !complaints.contains("sensor_windows.service"),
        "systemd-analyze complains about the unit:\n{complaints}"
    );
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Restart=on-failure",
        "DynamicUser=yes",
        "StateDirectory=sensor_windows",
        "Environment=RILL_STATE_DIR=/var/lib/sensor_windows/state",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "EnvironmentFile=/etc/sensor_windows/sensor_windows.env",
    ] {
        assert!(unit_text.lines().any(|l| l == line), "no `{line}` in:\n{unit_text}");
    }

    // The environment file names every setting the binary's --help lists, with the
    // variable that changes it.
    let help = Command::new(&binary).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let settings: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Settings"))
        .skip(1)
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .map(str::trim)
        .collect();
    assert_eq!(settings.len(), 4, "three paths and the source's record limit: {help}");
    let env_text = std::fs::read_to_string(&env_file).unwrap();
    for key in &settings {
        assert!(
            env_text
                .lines()
                .any(|l| l == format!("# {key}") || l.starts_with(&format!("# {key}: "))),
            "{key} is not in the environment file:\n{env_text}"
        );
    }
    for var in [
        "#READINGS_PATH=readings.jsonl",
        "#WINDOWS_PATH=windows.jsonl",
        "#LATE_PATH=late.jsonl",
    ] {
        assert!(env_text.lines().any(|l| l == var), "no `{var}` in:\n{env_text}");
    }

    // The file works as systemd reads it: uncomment the variables, point them here, run.
    std::fs::write(dir.join("readings.jsonl"), readings(500)).unwrap();
    let mut cmd = Command::new(&binary);
    cmd.current_dir(&dir);
    for line in env_text.lines() {
        if let Some((var, value)) = line.strip_prefix('#').and_then(|l| l.split_once('=')) {
            if var.chars().all(|c| c.is_ascii_uppercase() || c == '_') && var.ends_with("_PATH") {
                cmd.env(var, value);
            }
        }
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        dir.join("windows.jsonl").exists(),
        "the defaults the file names are the binary's"
    );
}

#[test]
fn rill_targets_lists_every_target_as_ready_after_setup() {
    let out = support::rill().arg("targets").output().expect("rill runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for target in [AARCH64_MUSL, ARMV7_MUSL, X86_64_MUSL, AARCH64_GNU] {
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| *l != target)
            .skip(1)
            .take_while(|l| l.starts_with("    "))
            .collect();
        assert!(
            block.iter().any(|l| l.trim().starts_with("ready")),
            "{target} is not ready:\n{text}"
        );
    }
}

#[test]
fn a_missing_toolchain_piece_is_named_with_the_command_that_installs_it() {
    // A rustc whose sysroot has no target libraries and no sources.
    let dir = support::workdir("cross-missing");
    std::fs::create_dir_all(dir.join("sysroot/lib/rustlib")).unwrap();
    let fake = dir.join("rustc");
    std::fs::write(&fake, format!("#!/bin/sh\necho '{}'\n", dir.join("sysroot").display())).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = support::rill()
        .env("RUSTC", &fake)
        .arg("build")
        .arg(support::repo().join("pipelines/quickstart.yaml"))
        .args(["--target", ARMV7_MUSL])
        .output()
        .expect("rill runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("rustup target add armv7-unknown-linux-musleabihf || rustup component add rust-src"),
        "{said}"
    );

    let out = support::rill()
        .arg("build")
        .arg(support::repo().join("pipelines/quickstart.yaml"))
        .args(["--target", "riscv64gc-unknown-linux-gnu"])
        .output()
        .expect("rill runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("aarch64-unknown-linux-musl") && said.contains("rill targets"),
        "{said}"
    );
}
