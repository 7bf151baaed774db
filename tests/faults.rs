//! The unlucky operator's day: a full disk under one output or under the build cache,
//! a branch of the graph failing on some records, signals while the pipeline waits on a
//! pipe, a stderr that cannot be written. Each test runs a real binary and checks that
//! nothing is lost without being said, and that every component's counters add up.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;

use support::{build, counter, counters, json_lines, TinyDisk};

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success());
}

/// `events.jsonl` for `tests/pipelines/branches.yaml`: distinct keys, every tenth
/// record divides by zero.
fn branch_events(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"key\":\"k{i:04}\",\"n\":{i},\"divisor\":{}}}\n",
                if i % 10 == 3 { 0 } else { 2 }
            )
        })
        .collect()
}

fn branch_env(cmd: &mut Command, dir: &Path) {
    for (var, file) in [
        ("EVENTS_PATH", "events.jsonl"),
        ("RAW_PATH", "raw.jsonl"),
        ("RATIOS_PATH", "ratios.jsonl"),
        ("FEW_PATH", "few.jsonl"),
        ("EVERY_PATH", "every.jsonl"),
        ("BAD_PATH", "bad.jsonl"),
    ] {
        cmd.env(var, dir.join(file));
    }
}

#[test]
fn a_failure_belongs_to_its_branch_and_every_sibling_still_gets_the_record() {
    let bin = build("tests/pipelines/branches.yaml");
    let dir = support::workdir("branches");
    fs::write(dir.join("events.jsonl"), branch_events(1000)).unwrap();
    let mut cmd = Command::new(&bin);
    branch_env(&mut cmd, &dir);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let read = |f: &str| json_lines(&fs::read(dir.join(f)).unwrap());

    assert_eq!(read("raw.jsonl").len(), 1000, "the plain sink got every record");
    assert_eq!(
        read("ratios.jsonl").len(),
        900,
        "the dividing branch lost only its failures"
    );
    let every = read("every.jsonl");
    let keys: std::collections::BTreeSet<&str> = every.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 1000, "the full table never starved its unbounded sibling");
    assert_eq!(read("few.jsonl").len(), 10);

    // One dead letter per failing branch, naming it.
    let bad = read("bad.jsonl");
    let mut by_component: BTreeMap<String, usize> = BTreeMap::new();
    for letter in &bad {
        *by_component
            .entry(letter["component"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(
        by_component,
        BTreeMap::from([("tables.few".to_owned(), 990), ("transforms.ratio".to_owned(), 100)])
    );
    let counts = counters(&output.stderr);
    assert_eq!(counter(&counts, "sources.events", "sent"), 1000);
    assert_eq!(counter(&counts, "tables.few", "dead_lettered"), 990);
    assert_eq!(counter(&counts, "tables.every", "aggregated"), 1000);
    assert_eq!(counter(&counts, "transforms.ratio", "dead_lettered"), 100);
    assert_eq!(counter(&counts, "dead_letters", "sent"), 1090);
}

#[test]
fn every_exploded_element_that_fails_is_its_own_dead_letter() {
    let bin = build("tests/pipelines/explode_failures.yaml");
    let output = support::run(&bin, &[], b"1 x 2 y\n3\n");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got: Vec<i64> = json_lines(&output.stdout)
        .iter()
        .map(|r| r["n"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [1, 2, 3], "the elements after a failing one still went on");
    let dead = support::dead_letters(&output.stderr);
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead
        .iter()
        .all(|d| d["component"] == "transforms.numbers" && d["record"] == "1 x 2 y"));
    let counts = counters(&output.stderr);
    assert_eq!(counter(&counts, "transforms.numbers", "received"), 5);
    assert_eq!(counter(&counts, "transforms.numbers", "dead_lettered"), 2);
}

#[test]
fn a_full_disk_under_one_sink_fails_the_run_but_every_other_output_is_written() {
    let bin = build("tests/pipelines/branches.yaml");
    let dir = support::workdir("full_disk");
    fs::write(dir.join("events.jsonl"), branch_events(500)).unwrap();
    let mut cmd = Command::new(&bin);
    branch_env(&mut cmd, &dir);
    let output = cmd.env("RATIOS_PATH", "/dev/full").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "sinks.ratios: writing `/dev/full`: No space left on device (os error 28) (450 records not written)"
        ),
        "{stderr}"
    );
    let read = |f: &str| json_lines(&fs::read(dir.join(f)).unwrap());
    assert_eq!(read("raw.jsonl").len(), 500, "a sibling sink was still flushed");
    assert_eq!(read("every.jsonl").len(), 500);
    assert_eq!(read("bad.jsonl").len(), 50 + 490, "the dead letters were still written");
    let counts = counters(&output.stderr);
    assert_eq!(
        counter(&counts, "sinks.ratios", "sent"),
        0,
        "nothing reached the full disk"
    );
    assert_eq!(counter(&counts, "sinks.ratios", "dropped"), 450);
}

#[test]
fn a_disk_that_fills_up_leaves_no_torn_record_and_says_how_many_were_lost() {
    let bin = build("tests/pipelines/branches.yaml");
    let dir = support::workdir("tiny_disk");
    let disk = TinyDisk::mount(&dir.join("disk"), 128);
    fs::write(dir.join("events.jsonl"), branch_events(20_000)).unwrap();
    let mut cmd = Command::new(&bin);
    branch_env(&mut cmd, &dir);
    // Small steps, so several are written whole before the disk fills (a step's output
    // that does not fit is cut back whole; with worker threads a step reads up to 1,025
    // batches: of one record, about 40 KiB, a third of this disk).
    cmd.args(["--batch-size", "1"]);
    let output = cmd.env("RAW_PATH", disk.0.join("raw.jsonl")).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    let raw = fs::read(disk.0.join("raw.jsonl")).unwrap();
    let (kept, counts) = cut_back_to_whole_records(&raw, &output.stderr, "sinks.raw");
    // The run stopped at the failure; every record read up to then reached the
    // siblings, whose outputs were still flushed.
    let read = counter(&counts, "sources.events", "sent");
    assert!(read > kept && read < 20_000, "{read}");
    assert_eq!(
        json_lines(&fs::read(dir.join("every.jsonl")).unwrap()).len() as u64,
        read
    );
}

/// What a sink wrote to a disk that filled up ends with a whole record, and its counters
/// say what is there: `sent` exactly the records in the file, some `dropped`. Returns
/// those records' number and the counters.
fn cut_back_to_whole_records(
    written: &[u8],
    stderr: &[u8],
    sink: &str,
) -> (u64, serde_json::Map<String, serde_json::Value>) {
    assert!(
        !written.is_empty() && written.ends_with(b"\n"),
        "the file ends with a whole record"
    );
    let kept = json_lines(written).len() as u64;
    let counts = counters(stderr);
    assert_eq!(
        counter(&counts, sink, "sent"),
        kept,
        "sent counts exactly what is in the file"
    );
    assert!(counter(&counts, sink, "dropped") > 0);
    (kept, counts)
}

/// The same with large steps: each window firing writes hundreds of KiB, which the
/// output hands to the file in chunks as it encodes them, before the step's flush. The
/// chunk that meets the full disk must leave neither a torn record nor a byte past the
/// last flush.
#[test]
fn a_disk_that_fills_up_during_a_large_step_cuts_the_file_back_to_its_last_flush() {
    let bin = build("tests/pipelines/win_hopping.yaml");
    let dir = support::workdir("tiny_disk_large_steps");
    let disk = TinyDisk::mount(&dir.join("disk"), 1024);
    // 4,000 sensors, one reading each per second for a minute: each 10 s window
    // sliding every 5 s fires 4,000 rows (about 300 KiB), in order of time.
    let mut readings = String::new();
    for second in 0..60i64 {
        for sensor in 0..4_000 {
            readings.push_str(&format!(
                "{{\"sensor\":\"sensor-{sensor:05}\",\"ts\":{},\"value\":{sensor}}}\n",
                1_700_000_000_000 + second * 1_000
            ));
        }
    }
    fs::write(dir.join("readings.jsonl"), readings).unwrap();
    let out = disk.0.join("windows.jsonl");
    // Steps of at most 1,025 records (batches of one, see above), so no step holds two
    // firings (20,000 records apart) and the first ones are flushed whole before the
    // disk fills; steps that read for a while could hold all of them.
    let output = Command::new(&bin)
        .args(["--batch-size", "1"])
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .env("WINDOWS_PATH", &out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sinks.out: writing `") && stderr.contains("No space left on device"),
        "{stderr}"
    );
    let written = fs::read(&out).unwrap();
    assert!(
        written.len() > 300 * 1024,
        "whole windows were written before the disk filled: {} bytes",
        written.len()
    );
    let (kept, counts) = cut_back_to_whole_records(&written, &output.stderr, "sinks.out");
    let dropped = counter(&counts, "sinks.out", "dropped");
    assert_eq!(counter(&counts, "sinks.out", "received"), kept + dropped, "{counts:?}");
}

#[test]
fn dead_letters_that_cannot_be_written_fail_the_run() {
    let bin = build("pipelines/hot_readings.yaml");
    let dir = support::workdir("dead_letters_full");
    fs::write(dir.join("in.jsonl"), "not json\n{\"also\": \"bad\"}\n").unwrap();
    let full = fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let status = Command::new(&bin)
        .env("READINGS_PATH", dir.join("in.jsonl"))
        .env("ALERTS_PATH", dir.join("alerts.jsonl"))
        .stderr(full)
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(1),
        "two dead letters were lost: the run must not succeed"
    );
}

#[test]
fn sigterm_while_a_fifo_writer_is_quiet_stops_at_once_and_keeps_what_arrived() {
    let bin = build("pipelines/hot_readings.yaml");
    let dir = support::workdir("fifo_quiet");
    let fifo = dir.join("readings.fifo");
    mkfifo(&fifo);
    let out = dir.join("alerts.jsonl");
    let running = support::start(Command::new(&bin).env("READINGS_PATH", &fifo).env("ALERTS_PATH", &out));
    // The writer sends ten hot readings, then stays open and silent.
    let mut writer = fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    for i in 0..10 {
        writeln!(
            writer,
            "{{\"device_id\":\"site-{i}\",\"ts\":{i},\"temperature\":30.5,\"humidity\":null,\"status\":\"ok\"}}"
        )
        .unwrap();
    }
    writer.flush().unwrap();
    support::wait_until("the ten readings written out", || {
        support::json_lines_so_far(&out).len() == 10
    });
    // Blocked reading the quiet pipe, the pipeline must still stop (`wait` gives up,
    // failing the test, if it does not).
    running.signal("TERM");
    let output = running.wait();
    drop(writer);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(json_lines(&fs::read(&out).unwrap()).len(), 10);
    let counts = counters(&output.stderr);
    assert_eq!(counter(&counts, "sinks.alerts", "sent"), 10);
}

/// True when a thread of process `pid` is blocked writing to a full pipe.
fn blocked_on_a_pipe(pid: u32) -> bool {
    let tasks = fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten();
    tasks
        .into_iter()
        .any(|task| fs::read_to_string(task.path().join("wchan")).is_ok_and(|w| w.contains("pipe_write")))
}

/// Runs `spec`'s endless generator (`sources.sensors`) into a stdout pipe the test never
/// reads, and sends SIGTERM once the pipeline is blocked writing to it: the run must stop,
/// fail, say why, and count the records its sink `console` could not write. The counters
/// and the log.
fn sigterm_while_stdout_is_unread(spec: &str, threads: &str) -> (serde_json::Map<String, serde_json::Value>, String) {
    let bin = build(spec);
    let running = support::start_unread(Command::new(&bin).args([
        "--set",
        "sources.sensors.count=",
        "--set",
        "sources.sensors.rate=100000",
        "--threads",
        threads,
    ]));
    let pid = running.child.id();
    support::wait_until("the pipeline blocked on its full stdout", || blocked_on_a_pipe(pid));
    running.signal("TERM");
    let output = running.wait();
    let text = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "records were not written: the run must say so\n{text}"
    );
    assert!(text.contains("stdout is blocked (nobody reads it)"), "{text}");
    let counts = counters(&output.stderr);
    assert!(counter(&counts, "sinks.console", "dropped") > 0, "{counts:?}");
    (counts, text.into_owned())
}

#[test]
fn sigterm_while_nobody_reads_stdout_stops_at_once_and_says_what_was_not_written() {
    sigterm_while_stdout_is_unread("pipelines/quickstart.yaml", "2");
}

/// The same with a hopping window in between, whose rows are built as they are drained
/// and encoded on the other thread a chunk at a time: every row it built reached the
/// blocked sink and is counted there, sent or lost.
#[test]
fn sigterm_while_a_hopping_window_writes_to_an_unread_stdout_says_what_was_not_written() {
    for threads in ["2", "3"] {
        let (counts, log) = sigterm_while_stdout_is_unread("tests/pipelines/hopping_stdout.yaml", threads);
        assert_eq!(
            counter(&counts, "windows.per_device", "emitted"),
            counter(&counts, "sinks.console", "received"),
            "--threads {threads}: every row the window built reached the sink: {counts:?}"
        );
        // With 3 threads the window is split by key across the workers; the parts'
        // rows merged and handed on are counted the same way.
        assert_eq!(log.contains("window keys split by hash"), threads == "3", "{log}");
        let window = counter(&counts, "windows.per_device", "received");
        assert_eq!(
            window,
            counter(&counts, "windows.per_device", "aggregated") + counter(&counts, "windows.per_device", "late"),
            "--threads {threads}: {counts:?}"
        );
    }
}

/// The same with a table emitting every change, split by key across the workers at 3
/// threads (its rows built there and handed on later than one thread would): every
/// record it took gave a row that reached the blocked sink, counted there sent or lost.
#[test]
fn sigterm_while_a_split_change_table_writes_to_an_unread_stdout_says_what_was_not_written() {
    for threads in ["2", "3"] {
        let (counts, log) = sigterm_while_stdout_is_unread("tests/pipelines/changes_stdout.yaml", threads);
        assert_eq!(log.contains("table keys split by hash"), threads == "3", "{log}");
        let table = "tables.per_device";
        let taken = counter(&counts, table, "received");
        assert!(taken > 0, "{counts:?}");
        assert_eq!(
            [
                counter(&counts, table, "aggregated"),
                counter(&counts, table, "emitted"),
                counter(&counts, "sinks.console", "received"),
                counter(&counts, "sinks.console", "sent") + counter(&counts, "sinks.console", "dropped"),
            ],
            [taken; 4],
            "--threads {threads}: {counts:?}"
        );
    }
}

#[test]
fn a_start_error_is_not_preceded_by_pipeline_started_and_leaves_outputs_alone() {
    let bin = build("pipelines/hot_readings.yaml");
    let dir = support::workdir("start_error");
    let alerts = dir.join("alerts.jsonl");
    fs::write(&alerts, "yesterday's alerts\n").unwrap();
    let output = Command::new(&bin)
        .env("READINGS_PATH", "/nonexistent/readings.jsonl")
        .env("ALERTS_PATH", &alerts)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot open `/nonexistent/readings.jsonl`"), "{stderr}");
    assert!(!stderr.contains("pipeline started"), "{stderr}");
    assert_eq!(
        fs::read_to_string(&alerts).unwrap(),
        "yesterday's alerts\n",
        "a failed start left the output alone"
    );
}

/// `rill build` whose cache sits on a full disk: it says so, names the folder, exits 1
/// without a panic, and leaves none of the runtime it began to write (a staging folder
/// left on a full disk would keep it full for the next try).
#[test]
fn a_build_whose_cache_disk_is_full_says_so_and_leaves_no_staging_behind() {
    let dir = support::workdir("tiny_cache_disk");
    let disk = TinyDisk::mount(&dir.join("disk"), 256);
    let cache = disk.0.join("cache");
    let output = support::rill()
        .env("RILL_CACHE_DIR", &cache)
        .args(["build", "pipelines/quickstart.yaml", "-o"])
        .arg(dir.join("quickstart"))
        .current_dir(support::repo())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("i/o error in {}", cache.display())) && stderr.contains("No space left on device"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!dir.join("quickstart").exists(), "no binary");
    let left: Vec<_> = fs::read_dir(cache.join("runtime"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "nothing of the runtime is left on the disk: {left:?}");
}
