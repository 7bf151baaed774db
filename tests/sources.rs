//! End to end: file sources on awkward input — records far longer than
//! `max_record_bytes`, an endless stream without line breaks, a followed file truncated
//! and written again or replaced, and an empty path setting; and inputs that stay quiet,
//! during which the binary must sleep rather than poll.

mod support;

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{build, json_lines};

fn signal(child: &Child, sig: &str) {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args([sig, &pid]).status().unwrap().success());
}

/// Waits (up to a minute) until `path` holds at least `n` JSON lines; returns them.
fn wait_for_lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = fs::read(path).map(|b| json_lines(&b)).unwrap_or_default();
        if got.len() >= n || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The peak resident set of a running process, in KiB (`VmHWM`).
fn peak_rss_kib(child: &Child) -> u64 {
    let status = fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn event(id: u64) -> String {
    format!("{}\n", json!({"id": id, "kind": "click"}))
}

#[test]
fn records_longer_than_the_limit_are_dead_letters_never_held_in_memory() {
    const HUGE: usize = 200 << 20;
    const VALID_HEAD: &[u8] = b"{\"id\":2,\"kind\":\"";
    let bin = build("tests/pipelines/long_records.yaml");
    let dir = support::workdir("long_records");
    let (events, out, errors) = (dir.join("events.jsonl"), dir.join("out.jsonl"), dir.join("stderr.txt"));
    {
        let mut f = BufWriter::new(fs::File::create(&events).unwrap());
        let chunk = vec![b'a'; 1 << 20];
        f.write_all(event(1).as_bytes()).unwrap();
        // A valid record of 200 MB, then a bad one.
        f.write_all(VALID_HEAD).unwrap();
        for _ in 0..HUGE >> 20 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\"}\n").unwrap();
        f.write_all(event(3).as_bytes()).unwrap();
        for _ in 0..HUGE >> 20 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
        f.write_all(event(4).as_bytes()).unwrap();
    }
    let mut child = Command::new(&bin)
        .env("EVENTS", &events)
        .env("OUT", &out)
        .stderr(fs::File::create(&errors).unwrap())
        .spawn()
        .unwrap();
    let got = wait_for_lines(&out, 3);
    // Measured while it still runs (it follows the file): the peak so far covers both.
    let peak = peak_rss_kib(&child);
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    let stderr = fs::read_to_string(&errors).unwrap();
    let _ = fs::remove_file(&events);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(
        got,
        [
            json!({"id": 1, "kind": "click"}),
            json!({"id": 3, "kind": "click"}),
            json!({"id": 4, "kind": "click"})
        ]
    );
    let letters = support::dead_letters(stderr.as_bytes());
    assert_eq!(letters.len(), 2, "{stderr}");
    let counts = support::counters(stderr.as_bytes());
    assert_eq!(support::counter(&counts, "dead_letters", "sent"), 2);
    for (letter, len) in letters.iter().zip([VALID_HEAD.len() + HUGE + 2, HUGE]) {
        let reason = letter["reason"].as_str().unwrap_or_default();
        assert_eq!(
            reason,
            format!("record of {len} bytes exceeds max_record_bytes (1048576); skipped (first 256 bytes shown)")
        );
        assert_eq!(letter["component"], "sources.events");
        assert_eq!(letter["record"].as_str().map(str::len), Some(256));
    }
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn an_endless_line_from_dev_zero_is_reported_repeatedly_until_stopped() {
    let bin = build("tests/pipelines/long_records.yaml");
    let dir = support::workdir("dev_zero");
    let errors = dir.join("stderr.txt");
    let out = dir.join("out.jsonl");
    let mut child = Command::new(&bin)
        .args(["--set", "sources.events.path=/dev/zero"])
        .args(["--set", "sources.events.max_record_bytes=1024"])
        .env("OUT", &out)
        .stderr(fs::File::create(&errors).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let reported = || {
        let text = fs::read(&errors).unwrap_or_default();
        support::dead_letters(support::whole_lines(&text)).len()
    };
    while reported() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(&child, "-TERM");
    let status = child.wait().unwrap();
    let stderr = fs::read_to_string(&errors).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    let letters = support::dead_letters(stderr.as_bytes());
    assert!(letters.len() >= 3, "{} dead letters", letters.len());
    support::counters(stderr.as_bytes());
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("record of 1048576 bytes so far, without a line end, exceeds max_record_bytes (1024)"),
        "{reason}"
    );
    assert_eq!(letters[0]["record"].as_str().map(str::len), Some(256));
}

/// Starts `follow_file.yaml` on `events`, writing to `out`, with its stderr to `errors`.
fn follow(events: &Path, out: &Path, errors: &Path) -> Child {
    Command::new(build("tests/pipelines/follow_file.yaml"))
        .env("EVENTS", events)
        .env("OUT", out)
        .stderr(fs::File::create(errors).unwrap())
        .spawn()
        .unwrap()
}

fn ids(lines: &[Value]) -> Vec<u64> {
    lines.iter().filter_map(|l| l["id"].as_u64()).collect()
}

#[test]
fn follow_mode_rereads_a_file_truncated_and_refilled_past_the_old_position() {
    let dir = support::workdir("follow_refill");
    let (events, out, errors) = (dir.join("events.jsonl"), dir.join("out.jsonl"), dir.join("stderr.txt"));
    fs::write(&events, (0..100).map(event).collect::<String>()).unwrap();
    let mut child = follow(&events, &out, &errors);
    assert_eq!(wait_for_lines(&out, 100).len(), 100);
    // Truncated and written again, longer than before, while the binary is stopped:
    // when it looks again the file is already bigger than the position it had read.
    signal(&child, "-STOP");
    fs::write(&events, (1000..1200).map(event).collect::<String>()).unwrap();
    signal(&child, "-CONT");
    let got = wait_for_lines(&out, 300);
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let expected: Vec<u64> = (0..100).chain(1000..1200).collect();
    assert_eq!(ids(&got), expected);
    let logs = fs::read_to_string(&errors).unwrap();
    let warning = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["msg"] == "file truncated, reading from the start");
    let warning = warning.unwrap_or_else(|| panic!("no truncation warning in {logs}"));
    assert_eq!(warning["level"], "warn");
    assert_eq!(warning["why"], "its first 256 bytes changed");
}

#[test]
fn follow_mode_switches_to_a_file_renamed_over_the_path() {
    let dir = support::workdir("follow_replace");
    let (events, out, errors) = (dir.join("events.jsonl"), dir.join("out.jsonl"), dir.join("stderr.txt"));
    fs::write(&events, (0..100).map(event).collect::<String>()).unwrap();
    let mut child = follow(&events, &out, &errors);
    assert_eq!(wait_for_lines(&out, 100).len(), 100);
    let next = dir.join("events.jsonl.new");
    fs::write(&next, (1000..1200).map(event).collect::<String>()).unwrap();
    fs::rename(&next, &events).unwrap();
    let got = wait_for_lines(&out, 300);
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let expected: Vec<u64> = (0..100).chain(1000..1200).collect();
    assert_eq!(ids(&got), expected);
}

#[test]
fn an_empty_path_is_a_start_error_naming_the_setting() {
    let bin = build("tests/pipelines/follow_file.yaml");
    let dir = support::workdir("empty_path");
    let output = Command::new(&bin)
        .args(["--set", "sources.events.path="])
        .env("OUT", dir.join("clicks.jsonl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "setting `sources.events.path` is empty (from `--set sources.events.path=`); give it a value, \
             e.g. `--set sources.events.path=...`"
        ),
        "{stderr}"
    );
}

/// Context switches so far of every thread of process `pid` (voluntary and not): each
/// time a thread sleeps and wakes counts at least one, so a polling loop shows here as a
/// count that grows with its frequency, whatever the machine's speed.
fn context_switches(pid: u32) -> u64 {
    let tasks = fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let mut total = 0;
    for task in tasks.flatten() {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        for line in status.lines() {
            let count = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"));
            if let Some(count) = count {
                total += count.trim().parse::<u64>().unwrap();
            }
        }
    }
    total
}

/// How many times the process's threads woke up during `window` (a thread that ended
/// meanwhile takes its count away: saturating).
fn wake_ups_during(pid: u32, window: Duration) -> u64 {
    let before = context_switches(pid);
    std::thread::sleep(window);
    context_switches(pid).saturating_sub(before)
}

/// The driver used to sleep 20 ms at a time when idle: about 150 wake-ups in 3 s.
const OLD_LOOP_WAKE_UPS: u64 = 150;

#[test]
fn a_quiet_stdin_leaves_the_binary_asleep_until_a_line_arrives_and_sigterm_still_stops_it() {
    let dir = support::workdir("idle_stdin");
    let out = dir.join("out.txt");
    let bin = build("tests/pipelines/idle_stdin.yaml");
    let mut running = support::start(Command::new(&bin).env("OUT", &out).stdin(Stdio::piped()));
    let pid = running.child.id();
    // Nothing arrives: the driver sleeps in the kernel and the reader thread in `read`.
    let woke = wake_ups_during(pid, Duration::from_secs(3));
    assert!(
        woke < 15,
        "{woke} wake-ups in 3 s with no input: still polling (a 20 ms loop makes ~{OLD_LOOP_WAKE_UPS})"
    );
    // A line wakes it at once (no deadline is pending to do it otherwise).
    let mut stdin = running.child.stdin.take().unwrap();
    stdin.write_all(b"hello\n").unwrap();
    stdin.flush().unwrap();
    support::wait_until("the line written out", || {
        fs::read(&out).unwrap_or_default() == b"hello\n"
    });
    // And a signal wakes it too: stdin still open, nothing pending.
    running.signal("TERM");
    let output = running.wait();
    drop(stdin);
    let logs = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{logs}");
    let stopped = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["msg"] == "pipeline stopped")
        .unwrap_or_else(|| panic!("no exit log line in {logs}"));
    assert_eq!(stopped["reason"], "shutdown");
    assert_eq!(stopped["components"]["sinks.out"]["sent"], 1, "{stopped}");
}

#[test]
fn a_followed_file_at_its_end_is_looked_at_a_few_times_a_second_not_polled() {
    let dir = support::workdir("idle_follow");
    let (events, out, errors) = (dir.join("events.jsonl"), dir.join("out.jsonl"), dir.join("stderr.txt"));
    fs::write(&events, event(1)).unwrap();
    let mut child = follow(&events, &out, &errors);
    assert_eq!(wait_for_lines(&out, 1).len(), 1);
    // One look every 250 ms: about 12 in 3 s, each a wake-up or two.
    let woke = wake_ups_during(child.id(), Duration::from_secs(3));
    assert!(
        woke < OLD_LOOP_WAKE_UPS / 3,
        "{woke} wake-ups in 3 s at the end of a followed file (a 20 ms loop makes ~{OLD_LOOP_WAKE_UPS})"
    );
    // An appended line is still seen.
    fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .unwrap()
        .write_all(event(2).as_bytes())
        .unwrap();
    assert_eq!(ids(&wait_for_lines(&out, 2)), [1, 2]);
    signal(&child, "-TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}
