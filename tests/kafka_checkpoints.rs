//! Checkpoints with a Kafka source, against a real broker (`support::kafka`): the
//! pipeline `tests/pipelines/kafka_crash.yaml` (Kafka → 1 s window per device → file) is
//! killed with SIGKILL at seeded random moments while the topic is being written, and
//! restarted each time with the same state directory. Its output files (the window's, a
//! split table's row for every reading, and split sessions) must equal those of a run
//! never interrupted, byte for byte: the source resumes from the checkpoint's offsets
//! (not the group's committed ones, which may lag), the windows and the table from
//! their checkpointed state, and the files are cut back to their checkpointed lengths.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::kafka::{Broker, Message};
use support::{build, json_lines_so_far, workdir, Rng, PATIENCE};

const SPEC: &str = "tests/pipelines/kafka_crash.yaml";
const TOPIC: &str = "crash_in";
const CHUNKS: usize = 24;
const PER_CHUNK: usize = 1_000;

/// The readings in topic order: 20 devices, 10 ms apart, each up to 500 ms early (inside
/// the 1 s watermark: none is late), then one far in the future that fires every window
/// before it.
fn readings(seed: u64) -> Vec<String> {
    let mut rng = Rng(seed);
    let t0 = 1_700_000_000_000i64;
    let mut out: Vec<String> = (0..CHUNKS * PER_CHUNK)
        .map(|i| {
            let ts = t0 + 10 * i as i64 - 10 * rng.below(50) as i64;
            json!({"device": format!("d{}", rng.below(20)), "ts": ts, "value": rng.below(1000)}).to_string()
        })
        .collect();
    out.push(json!({"device": "end", "ts": t0 + 3_600_000, "value": 0}).to_string());
    out
}

/// Rows the run must write: one per device and second among all but the last reading.
fn expected_rows(readings: &[String]) -> usize {
    let windows: BTreeSet<(String, i64)> = readings[..readings.len() - 1]
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_str(r).unwrap();
            (
                v["device"].as_str().unwrap().to_owned(),
                v["ts"].as_i64().unwrap().div_euclid(1000),
            )
        })
        .collect();
    windows.len()
}

fn start(bin: &Path, broker: &Broker, dir: &Path, group: &str) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("runs.log"))
        .unwrap();
    let state = dir.join("state");
    Command::new(bin)
        // Batches read ahead by worker threads, whatever this machine's cores.
        .args(["--checkpoint-interval", "100ms", "--batch-size", "32", "--threads", "3"])
        .arg("--state-dir")
        .arg(&state)
        .env("KAFKA_BROKERS", broker.bootstrap())
        .env("KAFKA_GROUP", group)
        .env("OUT_PATH", dir.join("out.jsonl"))
        .env("CHANGES_PATH", dir.join("changes.jsonl"))
        .env("SESSIONS_PATH", dir.join("sessions.jsonl"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// How many times the runs so far were assigned partitions.
fn assignments(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("runs.log")).map_or(0, |log| log.matches("kafka partitions assigned").count())
}

fn lines(dir: &Path) -> usize {
    std::fs::read(dir.join("out.jsonl")).map_or(0, |b| b.iter().filter(|c| **c == b'\n').count())
}

/// Starts a run, waits until it has the partition and `rows` rows are written, then
/// stops it with SIGTERM (a clean stop: exit 0); the window's file, the table's and the
/// sessions'. The wait for the partition comes first:
/// a killed run may already have written every row, and a SIGTERM that arrives before
/// the new run has installed its handler, or while it cuts the file back to its
/// checkpoint, would not be the clean stop this checks.
fn finish(bin: &Path, broker: &Broker, dir: &Path, group: &str, rows: usize) -> [Vec<u8>; 3] {
    let assigned = assignments(dir);
    let mut child = start(bin, broker, dir, group);
    support::wait_until("the partition assigned", || assignments(dir) > assigned);
    let deadline = Instant::now() + PATIENCE * 3;
    while lines(dir) < rows {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended; see {}",
            dir.join("runs.log").display()
        );
        assert!(Instant::now() < deadline, "{} of {rows} rows; see runs.log", lines(dir));
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "see {}", dir.join("runs.log").display());
    let read = |file: &str| std::fs::read(dir.join(file)).unwrap();
    [read("out.jsonl"), read("changes.jsonl"), read("sessions.jsonl")]
}

#[test]
fn killed_while_consuming_the_output_equals_an_uninterrupted_runs() {
    let bin = build(SPEC);
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let all = readings(99);
    let rows = expected_rows(&all);
    let trial_dir: PathBuf = workdir("kafka_checkpoints_trial");
    // The topic is written chunk by chunk while the trial runs, so kills land mid-stream.
    let chunks: Vec<Vec<Message>> = all
        .chunks(PER_CHUNK)
        .map(|c| c.iter().map(Message::value).collect())
        .collect();
    let kills = std::thread::scope(|scope| {
        let broker = &broker;
        let producing = scope.spawn(move || {
            for chunk in chunks {
                broker.produce(TOPIC, &chunk);
            }
        });
        let mut rng = Rng(5);
        let mut kills = 0;
        while kills < 6 {
            // Killed a random moment after it joined the group and got the partition
            // (a restart first waits for the killed member's session to expire).
            let assigned = assignments(&trial_dir);
            let mut child = start(&bin, broker, &trial_dir, "trial");
            support::wait_until("the partition assigned", || assignments(&trial_dir) > assigned);
            std::thread::sleep(Duration::from_millis(rng.below(1_500)));
            assert!(
                child.try_wait().unwrap().is_none(),
                "see {}",
                trial_dir.join("runs.log").display()
            );
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
        }
        producing.join().unwrap();
        kills
    });
    let trial = finish(&bin, &broker, &trial_dir, "trial", rows);
    // The reference: a fresh group and state directory, never interrupted.
    let reference_dir = workdir("kafka_checkpoints_reference");
    let reference = finish(&bin, &broker, &reference_dir, "reference", rows);
    assert_eq!(lines(&reference_dir), rows);
    // A row for every reading: the last fired every window, and a stop hands every row on.
    let changes = reference[1].iter().filter(|c| **c == b'\n').count();
    assert_eq!(changes, all.len());
    // Every reading but the last in a session the last closed (a stop with a state
    // directory fires nothing).
    let sessions = support::json_lines(&reference[2]);
    let counted: u64 = sessions.iter().map(|s| s["n"].as_u64().unwrap()).sum();
    assert!(
        sessions.len() > 1_000 && counted == all.len() as u64 - 1,
        "{} sessions of {counted} readings",
        sessions.len()
    );
    for ((what, trial), reference) in ["window", "table", "sessions"].iter().zip(&trial).zip(&reference) {
        assert!(
            trial == reference,
            "after {kills} kills the {what}'s output differs: {} vs {} bytes",
            trial.len(),
            reference.len()
        );
    }
    let log = std::fs::read_to_string(trial_dir.join("runs.log")).unwrap();
    assert!(log.contains("state restored"), "{log}");
    let (tables, windows, started) = (
        log.matches("table keys split by hash").count(),
        log.matches("window keys split by hash").count(),
        log.matches("pipeline started").count(),
    );
    assert!(
        tables >= started && windows >= started && started > kills,
        "{tables} tables and {windows} windows split in {started} runs"
    );
    eprintln!("kafka crash trial: {kills} kills, {rows} rows, outputs equal");
}

/// The broker freezes (nothing answers) while the pipeline consumes, then comes back:
/// the split table's file holds a row for every reading, once, each its device's count
/// so far; the split sessions' file every reading but the last (which closes them) in
/// one session, each session once; and a clean stop after it exits 0.
#[test]
fn a_broker_frozen_mid_stream_loses_no_row_of_the_split_table_or_sessions() {
    let bin = build(SPEC);
    let broker = Broker::start();
    broker.create_topic(TOPIC, 1);
    let all = readings(7);
    let messages: Vec<Message> = all.iter().map(Message::value).collect();
    broker.produce(TOPIC, &messages);
    let dir = workdir("kafka_checkpoints_frozen");
    let changes = || json_lines_so_far(&dir.join("changes.jsonl"));
    let sessions = || json_lines_so_far(&dir.join("sessions.jsonl"));
    let in_sessions = || sessions().iter().map(|s| s["n"].as_u64().unwrap()).sum::<u64>();
    let mut child = start(&bin, &broker, &dir, "frozen");
    support::wait_until("some rows written", || !changes().is_empty());
    {
        let _outage = broker.freeze();
        std::thread::sleep(Duration::from_secs(3));
    }
    support::wait_until("a row for every reading", || changes().len() >= all.len());
    support::wait_until("every reading but the last in a session", || {
        in_sessions() >= all.len() as u64 - 1
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(
        child.wait().unwrap().code(),
        Some(0),
        "see {}",
        dir.join("runs.log").display()
    );
    let rows = changes();
    assert_eq!(rows.len(), all.len(), "no row twice");
    let mut counts = std::collections::HashMap::new();
    for (row, reading) in rows.iter().zip(&all) {
        let reading: serde_json::Value = serde_json::from_str(reading).unwrap();
        let n = counts.entry(reading["device"].to_string()).or_insert(0);
        *n += 1;
        assert_eq!((&row["device"], &row["n"]), (&reading["device"], &json!(*n)), "{row}");
    }
    assert_eq!(in_sessions(), all.len() as u64 - 1, "no reading in two sessions");
    // One operator's order, each session once: by end, then device.
    let ends: Vec<(i64, String)> = sessions()
        .iter()
        .map(|s| (s["window_end"].as_i64().unwrap(), s["device"].to_string()))
        .collect();
    assert!(ends.windows(2).all(|w| w[0] < w[1]), "sessions by end, then device");
    let log = std::fs::read_to_string(dir.join("runs.log")).unwrap();
    assert!(log.contains("table keys split by hash"), "{log}");
    assert!(log.contains("window keys split by hash"), "{log}");
}
