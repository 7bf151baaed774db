//! Shared helpers for the end-to-end tests: build pipelines with the real
//! `rill` CLI (once per spec per test process) and run the binaries.

#![allow(dead_code)]

pub mod kafka;
pub mod tls;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The build cache shared by every test run, so runtime dependencies compile once.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("RILL_CACHE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/rill-test-cache"))
}

pub fn rill() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rill"));
    cmd.env("RILL_CACHE_DIR", cache_dir()).env_remove("RILL_TARGET_DIR");
    cmd
}

/// Build `spec` (relative to the repository) in release mode; returns the binary.
pub fn build(spec: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(path) = built.get(spec) {
        return path.clone();
    }
    let out = cache_dir().join("bin").join(Path::new(spec).file_stem().unwrap());
    let output = rill()
        .arg("build")
        .arg(repo().join(spec))
        .arg("--release")
        .arg("-o")
        .arg(&out)
        .output()
        .expect("rill runs");
    assert!(
        output.status.success(),
        "rill build {spec} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    built.insert(spec.to_string(), out.clone());
    out
}

/// Run a built pipeline with stdin, returning its output.
pub fn run(binary: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipeline starts");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().expect("pipeline runs");
    writer.join().unwrap();
    output
}

/// Parse JSON lines.
pub fn json_lines(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Structured log lines on stderr that are dead letters.
pub fn dead_letters(stderr: &[u8]) -> Vec<serde_json::Value> {
    json_lines(stderr)
        .into_iter()
        .filter(|v| v.get("reason").is_some() && v.get("record").is_some())
        .collect()
}

/// The per-component counters of the binary's exit log line (`pipeline stopped`),
/// after checking that they add up for every component:
/// `received = sent + filtered + dead_lettered + dropped + aggregated` (a window or
/// table folds records into state; its results are counted apart, as `emitted`).
pub fn counters(stderr: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let stopped = json_lines(stderr)
        .into_iter()
        .rev()
        .find(|v| v["msg"] == "pipeline stopped")
        .unwrap_or_else(|| panic!("no `pipeline stopped` line in:\n{}", String::from_utf8_lossy(stderr)));
    let components = stopped["components"].as_object().cloned().unwrap_or_default();
    assert!(!components.is_empty(), "no components in {stopped}");
    for (name, c) in &components {
        let n = |key: &str| c.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
        for key in ["received", "sent", "filtered", "dead_lettered", "dropped"] {
            assert!(c.get(key).is_some(), "{name} has no `{key}` counter: {c}");
        }
        assert_eq!(
            n("received"),
            n("sent") + n("filtered") + n("dead_lettered") + n("dropped") + n("aggregated"),
            "counters of {name} do not add up: {c}"
        );
    }
    components
}

/// One counter of one component, from [`counters`] (the summary leaves out a window's
/// `late`, `emitted`, .. when they are zero).
pub fn counter(components: &serde_json::Map<String, serde_json::Value>, component: &str, key: &str) -> u64 {
    let c = components
        .get(component)
        .unwrap_or_else(|| panic!("no component {component} in {components:?}"));
    c.get(key)
        .map_or(0, |v| v.as_u64().unwrap_or_else(|| panic!("{component}.{key} = {v}")))
}

/// A small deterministic PRNG (splitmix64), independent of the runtime's generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A value with two decimals in [lo, hi).
    pub fn decimal(&mut self, lo: f64, hi: f64) -> f64 {
        let cents = self.below(((hi - lo) * 100.0) as u64);
        lo + cents as f64 / 100.0
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Compare record lists, reporting only the first difference (lists can be long).
pub fn assert_records(got: &[serde_json::Value], expected: &[serde_json::Value]) {
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert_eq!(g, e, "record {i} differs");
    }
    assert_eq!(got.len(), expected.len(), "record count differs");
}
