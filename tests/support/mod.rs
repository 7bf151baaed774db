//! Shared helpers for the end-to-end tests: build pipelines with the real
//! `rill` CLI (once per spec per test process) and run the binaries.

#![allow(dead_code)]

pub mod http;
pub mod kafka;
pub mod mqtt;
pub mod pulsar;
pub mod redis;
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

/// Build `spec` (relative to the repository, or an absolute path) in release mode;
/// returns the binary.
/// An example of `pipelines/` comes from [`examples`], built with the others at once.
pub fn build(spec: &str) -> PathBuf {
    if let Some(bin) = spec
        .strip_prefix("pipelines/")
        .and_then(|file| examples().get(file.trim_end_matches(".yaml")))
    {
        return bin.clone();
    }
    let stem = Path::new(spec).file_stem().unwrap().to_string_lossy().into_owned();
    build_with(spec, &["--release"], &format!("bin/{stem}"))
}

/// `rill build SPEC ARGS -o <cache>/OUT`, once per test process; returns the binary.
pub fn build_with(spec: &str, args: &[&str], out: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let key = format!("{spec} {} -o {out}", args.join(" "));
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let path = cache_dir().join(out);
    let output = rill()
        .arg("build")
        .arg(repo().join(spec))
        .args(args)
        .arg("-o")
        .arg(&path)
        .output()
        .expect("rill runs");
    assert!(
        output.status.success(),
        "rill build {spec} {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    built.insert(key, path.clone());
    path
}

/// Every example pipeline of `pipelines/` except the Kafka ones, compiled in one cargo
/// build: one crate, one binary per example (by file stem), the runtime with every
/// feature they use. The generated files are compiled with `#![deny(warnings)]` in front
/// of their own narrow allow list, so an example whose code has warnings fails here.
/// The Kafka examples need librdkafka (the runtime's `kafka` feature, minutes to build):
/// `tests/kafka.rs` builds and runs each of them.
pub fn examples() -> &'static HashMap<String, PathBuf> {
    static EXAMPLES: OnceLock<HashMap<String, PathBuf>> = OnceLock::new();
    EXAMPLES.get_or_init(|| {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("pipelines"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let mut features = std::collections::BTreeSet::new();
        let mut crates = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let name = format!("pipelines/{}", path.file_name().unwrap().to_string_lossy());
            let compiled = rill::compile_text(&name, &text).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            if compiled.ir.features.contains("kafka") {
                continue;
            }
            features.extend(compiled.ir.features.iter().copied());
            // The generated file's own `#![allow(..)]` names the few lints it needs (not
            // the whole `unused` group); `deny(warnings)` before it makes the rest errors.
            let code = &compiled.main_rs;
            let at = code
                .find("#![allow(")
                .unwrap_or_else(|| panic!("{name}: no allow list"));
            let allowed = &code[at..at + code[at..].find(']').unwrap()];
            assert!(
                !allowed
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|lint| lint == "unused"),
                "{name} allows every unused lint: {allowed}"
            );
            let strict = format!("{}#![deny(warnings)]\n{}", &code[..at], &code[at..]);
            crates.push((path.file_stem().unwrap().to_string_lossy().into_owned(), strict));
        }
        // Each checkout has its own crate and binary names, so worktrees sharing the
        // cache (and its target directory) do not overwrite each other's.
        let checkout = rill::names::short_hash(&repo().to_string_lossy());
        let dir = cache_dir().join(format!("examples-crate-{checkout}"));
        std::fs::create_dir_all(dir.join("src/bin")).unwrap();
        let bin = |stem: &str| format!("{stem}-{checkout}");
        for stale in std::fs::read_dir(dir.join("src/bin")).unwrap() {
            let stale = stale.unwrap().path();
            let stem = stale.file_stem().unwrap().to_string_lossy().into_owned();
            if !crates.iter().skip(1).any(|(s, _)| bin(s) == stem) {
                std::fs::remove_file(stale).unwrap();
            }
        }
        let features: Vec<&str> = features.into_iter().collect();
        let (first, rest) = crates.split_first().expect("examples");
        let runtime = rill::build::embedded::extract_runtime(&cache_dir()).unwrap();
        write_if_changed(
            &dir.join("Cargo.toml"),
            &rill::build::manifest(
                &format!("rill-examples-{checkout}"),
                &bin(&first.0),
                &runtime,
                &features,
            ),
        );
        write_if_changed(&dir.join("src/main.rs"), &first.1);
        for (stem, code) in rest {
            write_if_changed(&dir.join("src/bin").join(format!("{}.rs", bin(stem))), code);
        }
        if !dir.join("Cargo.lock").exists() {
            std::fs::write(
                dir.join("Cargo.lock"),
                rill::build::embedded::file("Cargo.lock").unwrap(),
            )
            .unwrap();
        }
        std::env::set_var("RILL_CACHE_DIR", cache_dir());
        std::env::remove_var("RILL_TARGET_DIR");
        let result = rill::build::cargo(
            "build",
            &dir.join("Cargo.toml"),
            rill::build::Profile::Release,
            "example pipelines",
            &[],
        );
        if let Err(e) = result {
            panic!("the example pipelines did not compile without warnings: {e}");
        }
        let release = rill::build::target_dir().join("release");
        crates
            .iter()
            .map(|(stem, _)| (stem.clone(), release.join(bin(stem))))
            .collect()
    })
}

/// Writes `text` unless the file already holds it, keeping cargo's fingerprints warm.
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(text) {
        std::fs::write(path, text).unwrap();
    }
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

/// The lines a running process has finished writing: its last line may be half
/// written when it is read (a dead letter or a buffered sink's write cut mid-line).
pub fn whole_lines(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().rposition(|&b| b == b'\n').map_or(0, |end| end + 1)]
}

/// The JSON lines a running process has written to `path` so far (none if the file
/// is not there yet).
pub fn json_lines_so_far(path: &Path) -> Vec<serde_json::Value> {
    json_lines(whole_lines(&std::fs::read(path).unwrap_or_default()))
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
/// `received = sent + filtered + dead_lettered + dropped + aggregated + buffered` (a
/// window or table folds records into state; its results are counted apart, as
/// `emitted`; a sink's disk buffer keeps what it has not delivered yet for the next start).
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
            n("sent") + n("filtered") + n("dead_lettered") + n("dropped") + n("aggregated") + n("buffered"),
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

/// A run whose `sink` wrote to `/dev/full`: it failed with the write error, and the
/// sink sent nothing and counted every one of the `expected` records it was given as
/// lost. Returns the counters, for what the caller checks upstream.
pub fn failed_on_a_full_disk(out: &Output, sink: &str, expected: u64) -> serde_json::Map<String, serde_json::Value> {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("writing `/dev/full`: No space left on device"),
        "{stderr}"
    );
    let c = counters(&out.stderr);
    assert_eq!(counter(&c, sink, "sent"), 0);
    assert_eq!(counter(&c, sink, "dropped"), expected, "every record said lost");
    c
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

/// How long a live pipeline may take to start, show a result or stop before the test
/// gives up on it: a liveness deadline, far beyond what a healthy run needs, not a
/// measure of speed (that is `bench/`'s job).
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// A pipeline running in the background, its stdout and stderr read on threads (so
/// neither pipe fills up), its stderr line by line, so a test can wait for a log line.
pub struct Running {
    pub child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// The stderr lines read so far.
    seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<Vec<u8>>>,
    stdout: Option<std::thread::JoinHandle<Vec<u8>>>,
    /// The read end of a stdout nobody reads (see [`start_unread`]), kept open.
    _unread: Option<std::process::ChildStdout>,
}

/// Starts `cmd` with stdout and stderr piped and waits for its `pipeline started` log
/// line: from then on its sources are open and its signal handlers installed.
pub fn start(cmd: &mut Command) -> Running {
    start_with(cmd, true)
}

/// [`start`], but nobody ever reads the pipeline's stdout: once the pipe is full, its
/// writes block (the pipe stays open until the `Running` is dropped).
pub fn start_unread(cmd: &mut Command) -> Running {
    start_with(cmd, false)
}

fn start_with(cmd: &mut Command, read_stdout: bool) -> Running {
    use std::io::{BufRead, Read};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pipeline starts");
    let (send, lines) = std::sync::mpsc::channel();
    let err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
            all.extend_from_slice(line.as_bytes());
            all.push(b'\n');
            let _ = send.send(line);
        }
        all
    });
    let mut out = child.stdout.take().unwrap();
    let (stdout, unread) = if read_stdout {
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let _ = out.read_to_end(&mut all);
            all
        });
        (Some(reader), None)
    } else {
        (None, Some(out))
    };
    let mut running = Running {
        child,
        lines,
        seen: Vec::new(),
        stderr: Some(stderr),
        stdout,
        _unread: unread,
    };
    running.wait_for_log("pipeline started");
    running
}

impl Running {
    /// Waits (at most [`PATIENCE`]) for a stderr line containing `text`.
    pub fn wait_for_log(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(e) => {
                    let _ = self.child.kill();
                    panic!("no log line with `{text}` ({e})");
                }
            }
        }
    }

    /// [`Self::wait_for_log`], counting the lines already read too: for a line that may
    /// come before `pipeline started` (a broker connection made on a thread).
    pub fn wait_for_log_any_time(&mut self, text: &str) {
        if !self.seen.iter().any(|line| line.contains(text)) {
            self.wait_for_log(text);
        }
    }

    /// Sends a signal (`TERM`, `INT`) to the pipeline.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits (at most [`PATIENCE`]) for the pipeline to exit; returns what it wrote.
    pub fn wait(mut self) -> Output {
        let deadline = std::time::Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the pipeline did not stop within {PATIENCE:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        Output {
            status,
            stdout: self.stdout.take().map(|t| t.join().unwrap()).unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
        }
    }
}

/// A test that fails while the pipeline runs must not leave it running.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A fresh, empty work folder for one test, under the shared test cache.
pub fn workdir(name: &str) -> PathBuf {
    let dir = cache_dir().join("work").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Appends `{"n": n}` for each `n` of `range`, a line each, to `path` (created when
/// missing): input for a source following a file.
pub fn append_items(path: &Path, range: std::ops::Range<i64>) {
    use std::io::Write;
    let text: String = range.map(|n| format!("{}\n", serde_json::json!({ "n": n }))).collect();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// Waits (at most [`PATIENCE`]) until `condition` holds, polling it.
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A tmpfs of `kib` KiB mounted on `dir` for the life of the value: a disk that fills up.
pub struct TinyDisk(pub PathBuf);

impl TinyDisk {
    pub fn mount(dir: &Path, kib: u32) -> TinyDisk {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (the tests run as root in CI)"
        );
        TinyDisk(dir.to_path_buf())
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
