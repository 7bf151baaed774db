//! Checkpoints: a pipeline killed at random moments (SIGKILL: a power cut as far as the
//! process can tell) and restarted with the same state directory ends with the same
//! output files as a run that was never interrupted, byte for byte; SIGTERM stops it
//! cleanly with a final checkpoint; damaged checkpoints are found, reported and
//! survived; state from another spec is refused.

mod support;

use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{build, workdir, Rng, PATIENCE};

const SPEC: &str = "tests/pipelines/crash_windows.yaml";
const OUTPUTS: [&str; 13] = [
    "windows.jsonl",
    "slides.jsonl",
    "late.jsonl",
    "totals.jsonl",
    "patterns.jsonl",
    "joins.jsonl",
    "values.jsonl",
    "copies.jsonl",
    "every.jsonl",
    "changes.jsonl",
    "window_counts.jsonl",
    "sessions.jsonl",
    "fifties.jsonl",
];

/// `n` readings of 30 devices, mostly in order, some up to 2.5 s early (behind the
/// watermark but within it), 2% of them 3 to 15 s early (updates of fired windows, or
/// late).
fn readings(seed: u64, n: usize) -> String {
    let mut rng = Rng(seed);
    let mut clock = 1_700_000_000_000i64;
    let statuses = ["ok", "warn", "fail"];
    let mut out = String::with_capacity(n * 110);
    for _ in 0..n {
        clock += 10 * rng.below(4) as i64;
        let early = if rng.below(100) < 2 {
            3_000 + 100 * rng.below(120)
        } else {
            100 * rng.below(26)
        };
        let reading = json!({
            "device_id": format!("dev-{}", rng.below(30)),
            "ts": clock - early as i64,
            "value": rng.below(2_001) as i64 - 1_000,
            "temperature": rng.decimal(-20.0, 40.0),
            "status": statuses[rng.below(3) as usize],
        });
        out.push_str(&reading.to_string());
        out.push('\n');
    }
    out
}

/// A work folder with the input written and the environment naming the files in it.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str, input: &str) -> Files {
        let dir = workdir(name);
        std::fs::write(dir.join("readings.jsonl"), input).unwrap();
        Files { dir }
    }

    fn command(&self, bin: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .env("READINGS_PATH", self.dir.join("readings.jsonl"))
            .env("WINDOWS_PATH", self.dir.join("windows.jsonl"))
            .env("SLIDES_PATH", self.dir.join("slides.jsonl"))
            .env("LATE_PATH", self.dir.join("late.jsonl"))
            .env("TOTALS_PATH", self.dir.join("totals.jsonl"))
            .env("PATTERNS_PATH", self.dir.join("patterns.jsonl"))
            .env("JOINS_PATH", self.dir.join("joins.jsonl"))
            .env("VALUES_PATH", self.dir.join("values.jsonl"))
            .env("COPIES_PATH", self.dir.join("copies.jsonl"))
            .env("EVERY_PATH", self.dir.join("every.jsonl"))
            .env("CHANGES_PATH", self.dir.join("changes.jsonl"))
            .env("WINDOW_COUNTS_PATH", self.dir.join("window_counts.jsonl"))
            .env("SESSIONS_PATH", self.dir.join("sessions.jsonl"))
            .env("FIFTIES_PATH", self.dir.join("fifties.jsonl"))
            .env_remove("RILL_STATE_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        cmd
    }

    fn state(&self) -> String {
        self.dir.join("state").to_string_lossy().into_owned()
    }

    fn outputs(&self) -> Vec<Vec<u8>> {
        OUTPUTS
            .iter()
            .map(|f| std::fs::read(self.dir.join(f)).unwrap_or_default())
            .collect()
    }

    /// Runs to the end without interruption (and without a state directory).
    fn reference(&self, bin: &Path) -> Vec<Vec<u8>> {
        let out = self.command(bin, &[]).stderr(Stdio::piped()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        self.outputs()
    }
}

/// The newest checkpoint file of a state directory.
fn newest_checkpoint(state: &str) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(state).join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    files.pop().expect("a checkpoint was written")
}

/// How a run of a trial ended.
#[derive(Debug, Default)]
struct Trial {
    kills: u32,
    terms: u32,
    runs: u32,
}

/// Starts the pipeline with the state directory again and again, stopping each run at a
/// seeded random moment (every `term_every`-th stop a SIGTERM, the others SIGKILL),
/// until a run finishes the input by itself. Each run's stderr is appended to
/// `runs.log` in the work folder.
fn crash_until_done(files: &Files, bin: &Path, seed: u64, stops: u32, term_every: u32) -> Trial {
    let mut rng = Rng(seed);
    let mut trial = Trial::default();
    let state = files.state();
    let args = [
        "--state-dir",
        state.as_str(),
        "--checkpoint-interval",
        "25ms",
        "--batch-size",
        "64",
        // Worker threads decode batches read ahead, whatever this machine's cores: a
        // kill lands between reading and flowing too.
        "--threads",
        "3",
    ];
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(files.dir.join("runs.log"))
        .unwrap();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < PATIENCE * 5, "the trial did not finish: {trial:?}");
        trial.runs += 1;
        let started_before = runs_started(&files.dir);
        let mut child = files
            .command(bin, &args)
            .stderr(log.try_clone().unwrap())
            .spawn()
            .unwrap();
        let stopping = trial.kills + trial.terms < stops;
        let at = Instant::now() + Duration::from_millis(2 + rng.below(50));
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if stopping && Instant::now() >= at {
                break None;
            }
            assert!(at.elapsed() < PATIENCE, "a run did not end");
            std::thread::sleep(Duration::from_millis(1));
        };
        match status {
            Some(status) => {
                assert!(status.success(), "run {} failed: {status}; see runs.log", trial.runs);
                return trial;
            }
            None if (trial.kills + trial.terms + 1) % term_every == 0 => {
                // A SIGTERM before the run has installed its handler ends it as any
                // program ends (killed by the signal): not the clean stop checked here.
                support::wait_until("the run started", || {
                    runs_started(&files.dir) > started_before || child.try_wait().unwrap().is_some()
                });
                if let Some(status) = child.try_wait().unwrap() {
                    assert!(status.success(), "run {} failed: {status}; see runs.log", trial.runs);
                    return trial;
                }
                let pid = child.id().to_string();
                Command::new("kill").args(["-TERM", &pid]).status().unwrap();
                let status = child.wait().unwrap();
                assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop; see runs.log");
                trial.terms += 1;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                trial.kills += 1;
            }
        }
    }
}

/// How many runs have logged `pipeline started` into `runs.log`.
fn runs_started(dir: &Path) -> u32 {
    std::fs::read_to_string(dir.join("runs.log")).map_or(0, |log| log.matches("pipeline started").count() as u32)
}

fn assert_same_outputs(got: &[Vec<u8>], expected: &[Vec<u8>], trial: &Trial) {
    for ((name, got), expected) in OUTPUTS.iter().zip(got).zip(expected) {
        assert!(!expected.is_empty(), "{name}: the reference wrote nothing");
        if got != expected {
            let first = got
                .iter()
                .zip(expected)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(expected.len()));
            panic!(
                "{name} differs from the uninterrupted run after {trial:?}: {} bytes vs {}, first difference at byte {first}",
                got.len(),
                expected.len()
            );
        }
    }
}

#[test]
fn killed_at_random_moments_the_output_equals_an_uninterrupted_runs() {
    let bin = build(SPEC);
    let files = Files::new("checkpoints_crash", &readings(11, 400_000));
    let expected = files.reference(&bin);
    let trial = crash_until_done(&files, &bin, 2026, 24, u32::MAX);
    assert!(trial.kills >= 20, "{trial:?}");
    assert_same_outputs(&files.outputs(), &expected, &trial);
    // With 3 threads the windows `by_value`, `visits` (sessions) and `fifties` (count
    // windows) and the tables `per_device_every`, `per_device_changes` and
    // `windows_per_device` (whose records come from a window's firings) are split by
    // key across the workers: their parts' states were saved as one and split again at
    // every restart (a run killed before it started has no log line).
    let log = std::fs::read_to_string(files.dir.join("runs.log")).unwrap();
    let (windows, tables, started) = (
        log.matches("window keys split by hash").count(),
        log.matches("table keys split by hash").count(),
        log.matches("pipeline started").count(),
    );
    assert!(
        started > 10 && windows >= 3 * started && tables >= 3 * started,
        "every run that started split the windows ({windows}) and the tables ({tables}) of {started}"
    );
    eprintln!("crash trial: {trial:?}, outputs equal");
}

#[test]
fn sigterm_stops_cleanly_and_the_next_start_goes_on() {
    let bin = build(SPEC);
    // Enough input that ten stops come before the end (runs got faster: 200,000 once
    // ran out after nine).
    let files = Files::new("checkpoints_term", &readings(12, 600_000));
    let expected = files.reference(&bin);
    // Every other stop a SIGTERM: exit 0, final checkpoint, windows kept open.
    let trial = crash_until_done(&files, &bin, 7, 10, 2);
    assert!(trial.terms >= 5 && trial.kills >= 5, "{trial:?}");
    assert_same_outputs(&files.outputs(), &expected, &trial);
}

/// Runs part of the input: stops the first run (SIGTERM) once a checkpoint exists.
fn run_partly(files: &Files, bin: &Path) {
    let state = files.state();
    let mut child = files
        .command(
            bin,
            &[
                "--state-dir",
                &state,
                "--checkpoint-interval",
                "10ms",
                "--batch-size",
                "16",
            ],
        )
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    support::wait_until("two checkpoints", || {
        std::fs::read_dir(Path::new(&state).join("checkpoints")).is_ok_and(|d| {
            // Whole ones only: a temporary file is a checkpoint being written.
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "bin"))
            })
            .count()
                >= 2
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

fn state_check(bin: &Path, state: &str, repair: bool) -> (i32, String) {
    let mut cmd = Command::new(bin);
    cmd.args(["state", "check", state]);
    if repair {
        cmd.arg("--repair");
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_damaged_newest_checkpoint_is_reported_and_the_previous_one_used() {
    let bin = build(SPEC);
    for (case, damage) in [("torn", 0usize), ("flipped", 1)] {
        let files = Files::new(&format!("checkpoints_damaged_{case}"), &readings(13, 40_000));
        let expected = files.reference(&bin);
        run_partly(&files, &bin);
        let state = files.state();
        let (code, report) = state_check(&bin, &state, false);
        assert_eq!(code, 0, "{report}");
        assert!(report.contains("state: ok"), "{report}");
        let newest = newest_checkpoint(&state);
        let seq: u64 = newest.file_stem().unwrap().to_string_lossy()["checkpoint-".len()..]
            .parse()
            .unwrap();
        let mut bytes = std::fs::read(&newest).unwrap();
        let expected_line = if damage == 0 {
            let len = bytes.len() as u64;
            bytes.truncate(bytes.len() / 2);
            format!(
                "checkpoint {seq}: DAMAGED, {} bytes: torn: {} bytes of the {len}",
                len / 2,
                len / 2
            )
        } else {
            let at = bytes.len() - 5;
            bytes[at] ^= 0x10;
            format!("checkpoint {seq}: DAMAGED, {} bytes: checksum mismatch", bytes.len())
        };
        std::fs::write(&newest, &bytes).unwrap();
        let (code, report) = state_check(&bin, &state, false);
        assert_eq!(code, 1, "{report}");
        assert!(
            report.contains(&expected_line),
            "wanted `{expected_line}` in:\n{report}"
        );
        assert!(
            report.contains(&format!("a start resumes from checkpoint {}", seq - 1)),
            "{report}"
        );
        // The binary starts from the previous checkpoint, says so, and loses nothing.
        let out = files
            .command(&bin, &["--state-dir", &state])
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{log}");
        assert!(log.contains("damaged checkpoint skipped, using an older one"), "{log}");
        assert!(log.contains(&format!("\"damaged\":\"{seq}\"")), "{log}");
        assert_same_outputs(&files.outputs(), &expected, &Trial::default());
    }
}

#[test]
fn repair_moves_a_damaged_checkpoint_aside_and_says_what_it_costs() {
    let bin = build(SPEC);
    let files = Files::new("checkpoints_repair", &readings(14, 30_000));
    run_partly(&files, &bin);
    let state = files.state();
    let newest = newest_checkpoint(&state);
    std::fs::write(&newest, b"RILLCKPT").unwrap();
    let (code, report) = state_check(&bin, &state, true);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("repaired: moved to"), "{report}");
    assert!(report.contains("sources resume from there and replay"), "{report}");
    assert!(newest.with_extension("damaged").exists());
    let (code, report) = state_check(&bin, &state, false);
    assert_eq!((code, report.contains("state: ok")), (0, true), "{report}");
}

/// Checkpoints written by a rill whose checkpoint format differs (what an operator
/// saves changed) are never read as this format: the start is refused, naming both, and
/// `--reset-state` starts afresh.
#[test]
fn checkpoints_of_another_format_refuse_the_start_until_reset() {
    let bin = build(SPEC);
    let files = Files::new("checkpoints_other_format", &readings(18, 30_000));
    let expected = files.reference(&bin);
    run_partly(&files, &bin);
    let state = files.state();
    let checkpoints = Path::new(&state).join("checkpoints");
    let mut rewritten = 0;
    for entry in std::fs::read_dir(&checkpoints).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "bin") {
            // The header's format version, which the body's checksum does not cover.
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
            std::fs::write(&path, bytes).unwrap();
            rewritten += 1;
        }
    }
    assert!(rewritten >= 2, "{rewritten} checkpoints");
    let refused = files
        .command(&bin, &["--state-dir", &state])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("written in checkpoint format 1 by another version of rill; this binary reads format"),
        "{err}"
    );
    assert!(err.contains("--reset-state"), "{err}");
    let (code, report) = state_check(&bin, &state, false);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("checkpoint format 1"), "{report}");
    let reset = files
        .command(&bin, &["--state-dir", &state, "--reset-state"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(reset.status.success(), "{}", String::from_utf8_lossy(&reset.stderr));
    assert_same_outputs(&files.outputs(), &expected, &Trial::default());
}

#[test]
fn state_of_another_spec_is_refused_until_reset() {
    let bin = build(SPEC);
    let other = build("tests/pipelines/table_ttl.yaml");
    let files = Files::new("checkpoints_other_spec", &readings(15, 5_000));
    let state = files.state();
    let out = files.command(&bin, &["--state-dir", &state]).output().unwrap();
    assert!(out.status.success());
    let clicks = files.dir.join("clicks.jsonl");
    std::fs::write(&clicks, "{\"user\":\"a\",\"ts\":1}\n").unwrap();
    let run_other = |extra: &[&str]| {
        let mut args = vec!["--state-dir", state.as_str()];
        args.extend_from_slice(extra);
        Command::new(&other)
            .args(&args)
            .env("CLICKS_PATH", &clicks)
            .env("OUT_PATH", files.dir.join("clicks_out.jsonl"))
            .output()
            .unwrap()
    };
    let refused = run_other(&[]);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(err.contains("holds the state of pipeline `crash_windows`"), "{err}");
    assert!(err.contains("--reset-state"), "{err}");
    let reset = run_other(&["--reset-state"]);
    let err = String::from_utf8_lossy(&reset.stderr);
    assert!(reset.status.success(), "{err}");
    assert!(err.contains("state reset"), "{err}");
    let lines = std::fs::read_to_string(files.dir.join("clicks_out.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

#[test]
fn one_state_directory_serves_one_process_at_a_time() {
    let bin = build(SPEC);
    let files = Files::new("checkpoints_lock", &readings(16, 2_000));
    let state = files.state();
    // A process holding the lock: the pipeline itself, paused by a FIFO input it waits on.
    let fifo = files.dir.join("fifo.jsonl");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let first = support::start(
        files
            .command(&bin, &["--state-dir", &state])
            .env("READINGS_PATH", &fifo),
    );
    let second = files
        .command(&bin, &["--state-dir", &state])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("is in use by another process"), "{err}");
    first.signal("TERM");
    let out = first.wait();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_full_disk_under_the_state_directory_costs_checkpoints_not_records() {
    let bin = build(SPEC);
    let files = Files::new("checkpoints_full_disk", &readings(17, 20_000));
    let expected = files.reference(&bin);
    let disk = support::TinyDisk::mount(&files.dir.join("state"), 64);
    // Leave too little room for a checkpoint: each one fails, the run goes on.
    let filler = disk.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=1k", "count=64"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let state = files.state();
    let out = files
        .command(
            &bin,
            &[
                "--state-dir",
                &state,
                "--checkpoint-interval",
                "5ms",
                "--batch-size",
                "64",
            ],
        )
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the final checkpoint failed, and says so: {log}"
    );
    assert!(log.contains("checkpoint not written; the previous one stays"), "{log}");
    assert!(log.contains("No space left on device"), "{log}");
    assert!(log.contains("the final checkpoint could not be written"), "{log}");
    assert_same_outputs(&files.outputs(), &expected, &Trial::default());
    let left: Vec<String> = std::fs::read_dir(disk.0.join("checkpoints"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "no half-written checkpoint is left behind: {left:?}");
    // With room again, the next start runs from the beginning and checkpoints.
    std::fs::remove_file(&filler).unwrap();
    let out = files
        .command(&bin, &["--state-dir", &state])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_same_outputs(&files.outputs(), &expected, &Trial::default());
    let (code, report) = state_check(&bin, &state, false);
    assert_eq!((code, report.contains("state: ok")), (0, true), "{report}");
}

#[test]
fn devices_and_blocked_pipes_as_outputs_with_a_state_directory() {
    let bin = build(SPEC);
    let files = Files::new("checkpoints_devices", &readings(18, 50_000));
    let state = files.state();
    let args = [
        "--state-dir",
        state.as_str(),
        "--checkpoint-interval",
        "5ms",
        "--batch-size",
        "64",
    ];
    // /dev/null cannot be synced or cut back: it is checkpointed as having no position.
    let out = files
        .command(&bin, &args)
        .env("LATE_PATH", "/dev/null")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("checkpoint not written"), "{log}");
    let counts = support::counters(&out.stderr);
    assert!(
        support::counter(&counts, "sinks.late", "sent") > 0,
        "late records were written: {counts:?}"
    );

    // /dev/full: the run fails, says how many records were lost, and the counters add up.
    let _ = std::fs::remove_dir_all(&state);
    let out = files
        .command(&bin, &args)
        .env("TOTALS_PATH", "/dev/full")
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("No space left on device") && log.contains("records not written"),
        "{log}"
    );
    let counts = support::counters(&out.stderr);
    assert!(support::counter(&counts, "sinks.totals", "dropped") > 0, "{counts:?}");

    // A named pipe nobody reads: SIGTERM while the output is blocked still ends the run
    // within the grace period, saying what was not written.
    let _ = std::fs::remove_dir_all(&state);
    let fifo = files.dir.join("nobody_reads");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let running = support::start(files.command(&bin, &args).env("WINDOWS_PATH", &fifo));
    std::thread::sleep(Duration::from_millis(300));
    running.signal("TERM");
    let out = running.wait();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("not written"), "{log}");
    support::counters(&out.stderr);
}
