//! Windows and tables end to end: build the test pipelines `tests/pipelines/win_*.yaml`
//! and the example ones with the `rill` CLI, run the binaries on generated inputs, and
//! compare every row with a simulation written here from the documented semantics.
//!
//! The simulations are plain batch computations over `Vec`s and ordered maps, one small
//! function per window kind, each starting with the rule it implements. They share no
//! code with the runtime. Watermarks follow the sources' rule: `W` starts at `i64::MIN`,
//! and after each record (in input order) `W = max(ts seen) − max_out_of_order`; a
//! record is judged against the `W` before it.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Map, Value};
use support::{build, dead_letters, json_lines, Rng};

/// A Unix time in ms on a 10 s boundary (but not on a minute or an hour).
const T0: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------------------------------
// Helpers

/// Runs a built pipeline with settings given by environment variables and `args`;
/// fails the test, showing stderr, unless it exits 0 with counters that add up.
fn run_ok(bin: &Path, env: &[(&str, &Path)], args: &[&str]) -> Output {
    let output = Command::new(bin)
        .envs(env.iter().copied())
        .args(args)
        .output()
        .expect("pipeline runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    support::counters(&output.stderr);
    output
}

fn write_jsonl(path: &Path, records: impl IntoIterator<Item = Value>) {
    let text: String = records.into_iter().map(|r| format!("{r}\n")).collect();
    fs::write(path, text).unwrap();
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    json_lines(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Compares rows in order, field by field: the fields listed in `tolerances` within that
/// relative error, every other field exactly. Reports the first difference.
fn assert_rows(got: &[Value], expected: &[Value], tolerances: &[(&str, f64)]) {
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let (g_fields, e_fields) = (g.as_object().unwrap(), e.as_object().unwrap());
        let same = g_fields.keys().eq(e_fields.keys())
            && e_fields.iter().all(
                |(name, want)| match tolerances.iter().find(|(field, _)| field == name) {
                    Some(&(_, tolerance)) => {
                        let (g, e) = (g_fields[name].as_f64().unwrap(), want.as_f64().unwrap());
                        g == e || (g - e).abs() <= tolerance * e.abs()
                    }
                    None => g_fields[name] == *want,
                },
            );
        assert!(same, "row {i} differs\n     got: {g}\nexpected: {e}");
    }
    assert_eq!(got.len(), expected.len(), "row count differs");
}

/// Asserts that `line` (one JSON object) names `fields` in this order.
fn assert_field_order(line: &str, fields: &[&str]) {
    let positions: Vec<usize> = fields
        .iter()
        .map(|f| {
            line.find(&format!("\"{f}\":"))
                .unwrap_or_else(|| panic!("no `{f}` in {line}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|p| p[0] < p[1]),
        "fields not in the order {fields:?}: {line}"
    );
}

/// Keeps only `fields` of each row.
fn project(rows: &[Value], fields: &[&str]) -> Vec<Value> {
    rows.iter()
        .map(|row| Value::Object(fields.iter().map(|&f| (f.to_string(), row[f].clone())).collect()))
        .collect()
}

/// Asserts that no record is behind the watermark before it (`t >= W`), so none can
/// fall in a window that already fired: the premise of the brute-force comparisons.
fn assert_nothing_late(times: impl IntoIterator<Item = i64>, max_out_of_order: i64) {
    let mut max_ts = i64::MIN;
    for (i, t) in times.into_iter().enumerate() {
        assert!(
            t >= max_ts.saturating_sub(max_out_of_order),
            "record {i} at {t} is late"
        );
        max_ts = max_ts.max(t);
    }
}

/// The exit log line's counters of one component.
fn exit_counters(stderr: &[u8], component: &str) -> Value {
    let stopped = json_lines(stderr)
        .into_iter()
        .find(|l| l["msg"] == "pipeline stopped")
        .expect("an exit log line");
    stopped["components"][component].clone()
}

// ---------------------------------------------------------------------------------------
// Tumbling windows with late data: win_tumbling_late.yaml and its variants

const SIZE: i64 = 10_000;
const OUT_OF_ORDER: i64 = 2_000;
const LATENESS: i64 = 5_000;

#[derive(Debug, Clone)]
struct Reading {
    device_id: String,
    ts: i64,
    value: i64,
    temperature: f64,
}

impl Reading {
    fn json(&self) -> Value {
        json!({"device_id": self.device_id, "ts": self.ts, "value": self.value, "temperature": self.temperature})
    }
}

/// About `n` readings of 40 devices, 20 ms apart on average, each up to 2.5 s early (so
/// some fall just behind the watermark) and 3% of them 3 to 18 s early (late or very
/// late). Times are multiples of 10 ms, so some fall exactly on window boundaries.
///
/// Now and then a pair on the edges of the rules: a reading moves the watermark to
/// exactly, or 1 ms before, the end of a window (it fires) or its end + lateness (it
/// closes), and the next one is in the last millisecond of that window.
fn readings(seed: u64, n: usize) -> Vec<Reading> {
    let mut rng = Rng(seed);
    let mut clock = T0;
    let mut out = Vec::with_capacity(n);
    let reading = |rng: &mut Rng, ts: i64| Reading {
        // dev-10 < dev-7 in byte order: rows come in key order, not numeric order.
        device_id: format!("dev-{}", rng.below(40)),
        ts,
        value: rng.below(2_001) as i64 - 1_000,
        temperature: rng.decimal(-20.0, 40.0),
    };
    while out.len() < n {
        clock += 10 * rng.below(5) as i64;
        if rng.below(100) == 0 {
            let leads = [0, -1, LATENESS, LATENESS - 1].map(|l| OUT_OF_ORDER + l);
            let lead = leads[rng.below(4) as usize];
            let end = (clock - lead).div_euclid(SIZE) * SIZE + SIZE;
            clock = end + lead;
            out.push(reading(&mut rng, clock));
            out.push(reading(&mut rng, end - 1));
            continue;
        }
        let delay = if rng.below(100) < 3 {
            3_000 + 100 * rng.below(150)
        } else {
            100 * rng.below(26)
        };
        out.push(reading(&mut rng, clock - delay as i64));
    }
    out
}

/// One device's aggregates in one window.
#[derive(Debug, Clone, Default)]
struct Stats {
    count: i64,
    total: i64,
    low: f64,
    high: f64,
    temp_sum: f64,
}

impl Stats {
    fn add(&mut self, r: &Reading) {
        if self.count == 0 {
            (self.low, self.high) = (r.temperature, r.temperature);
        }
        self.count += 1;
        self.total += r.value;
        self.low = self.low.min(r.temperature);
        self.high = self.high.max(r.temperature);
        self.temp_sum += r.temperature;
    }

    fn row(&self, key: &str, start: i64, update: bool) -> Value {
        json!({
            "device_id": key, "window_start": start, "window_end": start + SIZE,
            "count": self.count, "total": self.total, "low": self.low, "high": self.high,
            "avg_temp": self.temp_sum / self.count as f64, "update": update,
        })
    }
}

struct TumblingRun {
    rows: Vec<Value>,
    /// Indices of the late records, in input order.
    late: Vec<usize>,
}

/// Tumbling windows of SIZE with allowed lateness, record by record:
/// - a record at t belongs to [s, s + SIZE), s = t − (t mod SIZE);
/// - if s + SIZE + LATENESS <= W (the window is closed) it is late, and changes nothing;
/// - otherwise it is added; if the window already fired (s + SIZE <= W), the key's row
///   is emitted at once, with `update` = the key already had a row in that window;
/// - when W moves, the windows with end in (old W, new W] fire in end order, keys
///   ascending (`update: false`), and closed windows are forgotten;
/// - at the end of input, every window that has not fired fires.
fn simulate_tumbling(records: &[Reading]) -> TumblingRun {
    let mut windows: BTreeMap<i64, BTreeMap<String, Stats>> = BTreeMap::new();
    let (mut wm, mut max_ts) = (i64::MIN, i64::MIN);
    let mut run = TumblingRun {
        rows: Vec::new(),
        late: Vec::new(),
    };
    for (i, r) in records.iter().enumerate() {
        let start = r.ts - r.ts.rem_euclid(SIZE);
        if start + SIZE + LATENESS <= wm {
            run.late.push(i);
        } else {
            let keys = windows.entry(start).or_default();
            let existed = keys.contains_key(&r.device_id);
            let stats = keys.entry(r.device_id.clone()).or_default();
            stats.add(r);
            if start + SIZE <= wm {
                run.rows.push(stats.row(&r.device_id, start, existed));
            }
        }
        max_ts = max_ts.max(r.ts);
        let new_wm = max_ts - OUT_OF_ORDER;
        if new_wm > wm {
            for (&start, keys) in &windows {
                if start + SIZE > wm && start + SIZE <= new_wm {
                    run.rows
                        .extend(keys.iter().map(|(key, stats)| stats.row(key, start, false)));
                }
            }
            wm = new_wm;
            windows.retain(|start, _| start + SIZE + LATENESS > wm);
        }
    }
    for (&start, keys) in &windows {
        if start + SIZE > wm {
            run.rows
                .extend(keys.iter().map(|(key, stats)| stats.row(key, start, false)));
        }
    }
    run
}

/// Writes `readings` and runs `spec` on them with `args`: (output rows text, late text, process output).
fn run_tumbling(spec: &str, dir: &Path, readings: &[Reading], args: &[&str]) -> (String, String, Output) {
    let input = dir.join("readings.jsonl");
    let (out, late) = (dir.join("windows.jsonl"), dir.join("late.jsonl"));
    write_jsonl(&input, readings.iter().map(Reading::json));
    let _ = fs::remove_file(&late);
    let output = run_ok(
        &build(spec),
        &[("READINGS_PATH", &input), ("WINDOWS_PATH", &out), ("LATE_PATH", &late)],
        args,
    );
    let text = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    (text(&out), text(&late), output)
}

#[test]
fn tumbling_windows_with_late_data_match_the_simulation() {
    let dir = support::workdir("windows/tumbling_late");
    let input = readings(11, 5_000);
    let expected = simulate_tumbling(&input);
    // The input exercises every case.
    let updates = expected.rows.iter().filter(|r| r["update"] == true).count();
    assert!(
        expected.rows.len() > 300 && updates > 20 && expected.late.len() > 30,
        "rows {}, updates {updates}, late {}",
        expected.rows.len(),
        expected.late.len()
    );

    let (out, late, _) = run_tumbling("tests/pipelines/win_tumbling_late.yaml", &dir, &input, &[]);
    let fields = [
        "device_id",
        "window_start",
        "window_end",
        "count",
        "total",
        "low",
        "high",
        "avg_temp",
        "update",
    ];
    assert_field_order(out.lines().next().unwrap_or_default(), &fields);
    assert_rows(&json_lines(out.as_bytes()), &expected.rows, &[("avg_temp", 1e-9)]);

    let late_expected: Vec<Value> = expected.late.iter().map(|&i| input[i].json()).collect();
    assert_field_order(
        late.lines().next().unwrap_or_default(),
        &["device_id", "ts", "value", "temperature"],
    );
    assert_rows(&json_lines(late.as_bytes()), &late_expected, &[]);
}

#[test]
fn batch_size_does_not_change_a_single_byte() {
    let dir = support::workdir("windows/batch_sizes");
    let input = readings(12, 5_000);
    let spec = "tests/pipelines/win_tumbling_late.yaml";
    let (out, late, _) = run_tumbling(spec, &dir, &input, &[]);
    assert!(out.lines().count() > 300 && late.lines().count() > 30);
    for n in ["1", "7"] {
        let (out_n, late_n, _) = run_tumbling(spec, &dir, &input, &["--batch-size", n]);
        assert!(out_n == out, "--batch-size {n} changed the windows");
        assert!(late_n == late, "--batch-size {n} changed the late records");
    }
}

#[test]
fn late_records_without_a_reader_are_dead_letters_or_dropped() {
    let input = readings(13, 5_000);
    let expected = simulate_tumbling(&input);
    let rows = project(
        &expected.rows,
        &["device_id", "window_start", "window_end", "count", "total", "update"],
    );
    let late: Vec<Value> = expected.late.iter().map(|&i| input[i].json()).collect();
    assert!(late.len() > 30);

    // Nothing reads `per_device.late`: dead letters, each with the record.
    let dir = support::workdir("windows/late_dead_letter");
    let (out, _, output) = run_tumbling("tests/pipelines/win_late_dead_letter.yaml", &dir, &input, &[]);
    assert_rows(&json_lines(out.as_bytes()), &rows, &[]);
    let dead = dead_letters(&output.stderr);
    assert!(dead.iter().all(|d| d["component"] == "windows.per_device"), "{dead:?}");
    assert!(
        dead.iter().all(|d| d["reason"].as_str().unwrap().starts_with("late:")),
        "{dead:?}"
    );
    let records: Vec<Value> = dead
        .iter()
        .map(|d| serde_json::from_str(d["record"].as_str().unwrap()).unwrap())
        .collect();
    assert_rows(&records, &late, &[]);
    assert_eq!(exit_counters(&output.stderr, "windows.per_device")["late"], late.len());

    // `late: drop`: counted, written nowhere.
    let dir = support::workdir("windows/late_drop");
    let (out, _, output) = run_tumbling("tests/pipelines/win_late_drop.yaml", &dir, &input, &[]);
    assert_rows(&json_lines(out.as_bytes()), &rows, &[]);
    assert_eq!(dead_letters(&output.stderr), Vec::<Value>::new());
    assert_eq!(exit_counters(&output.stderr, "windows.per_device")["late"], late.len());
}

// ---------------------------------------------------------------------------------------
// Hopping windows: win_hopping.yaml

/// Hopping windows, brute force: for every window [s, s + size) with s a multiple of
/// `slide` (negative times included) and every key, the values of the records with
/// s <= t < s + size; one row per non-empty (window, key), in order of window end, then
/// key: the key and window bounds, and what `aggregates` makes of the values.
fn brute_force_hopping(
    records: &[(String, i64, i64)],
    size: i64,
    slide: i64,
    aggregates: impl Fn(&[i64]) -> Value,
) -> Vec<Value> {
    let first = (records.iter().map(|r| r.1).min().unwrap() - size).div_euclid(slide) * slide;
    let last = records.iter().map(|r| r.1).max().unwrap();
    let keys: BTreeSet<&str> = records.iter().map(|r| r.0.as_str()).collect();
    let mut rows = Vec::new();
    for start in (first..=last).step_by(slide as usize) {
        for &key in &keys {
            let inside: Vec<i64> = records
                .iter()
                .filter(|r| r.0 == key && start <= r.1 && r.1 < start + size)
                .map(|r| r.2)
                .collect();
            if !inside.is_empty() {
                let mut row = aggregates(&inside);
                row["sensor"] = json!(key);
                row["window_start"] = json!(start);
                row["window_end"] = json!(start + size);
                rows.push(row);
            }
        }
    }
    rows
}

/// The sensors of [`readings_across_the_epoch`]: names a string key keeps inside itself
/// (up to 22 bytes) and on the heap (23 and more), empty, `_`, `a_b` next to `a__b`, and
/// some not ASCII, so ordering and equality are checked across both forms.
const SENSORS: [&str; 8] = [
    "s1",
    "",
    "_",
    "a_b",
    "a__b",
    "sensor-22-bytes-long-x",
    "sensor-23-bytes-long-xy",
    "capteur-é-ü-✓-0123456789-0123456789-0123456789",
];

/// 100 s of readings of 8 sensors ([`SENSORS`]) across the epoch (-40 s to 60 s), up to
/// 2.9 s out of order: never behind the watermark (3 s). Written to `readings.jsonl` in
/// `dir`.
fn readings_across_the_epoch(seed: u64, dir: &Path) -> Vec<(String, i64, i64)> {
    let mut rng = Rng(seed);
    let mut clock = -40_000i64;
    let mut input = Vec::new();
    while clock < 60_000 {
        clock += rng.below(60) as i64;
        let t = clock - rng.below(2_900) as i64;
        input.push((SENSORS[rng.below(8) as usize].to_owned(), t, rng.below(100) as i64 - 20));
    }
    assert_nothing_late(input.iter().map(|r| r.1), 3_000);
    write_jsonl(
        &dir.join("readings.jsonl"),
        input.iter().map(|(s, t, v)| json!({"sensor": s, "ts": t, "value": v})),
    );
    input
}

#[test]
fn hopping_windows_count_every_record_in_each_window_covering_it() {
    let dir = support::workdir("windows/hopping");
    let input = readings_across_the_epoch(21, &dir);
    let out = dir.join("windows.jsonl");
    run_ok(
        &build("tests/pipelines/win_hopping.yaml"),
        &[("READINGS_PATH", &dir.join("readings.jsonl")), ("WINDOWS_PATH", &out)],
        &[],
    );
    let expected = brute_force_hopping(
        &input,
        10_000,
        5_000,
        |values| json!({"n": values.len(), "total": values.iter().sum::<i64>()}),
    );
    assert!(expected.iter().any(|r| r["window_start"].as_i64().unwrap() < 0));
    assert_rows(&read_jsonl(&out), &expected, &[]);
}

/// A hopping window keeps each record once, in a pane, and a window merges its panes
/// when it fires: the rows are those of every window covering each record, for a slide
/// that does not divide the size and for 60 windows per record.
#[test]
fn hopping_windows_sharing_panes_give_every_window_covering_each_record() {
    let dir = support::workdir("windows/panes");
    let input = readings_across_the_epoch(23, &dir);
    let (out, minute) = (dir.join("windows.jsonl"), dir.join("minute.jsonl"));
    run_ok(
        &build("tests/pipelines/win_panes.yaml"),
        &[
            ("READINGS_PATH", &dir.join("readings.jsonl")),
            ("WINDOWS_PATH", &out),
            ("MINUTE_PATH", &minute),
        ],
        &[],
    );
    let expected = brute_force_hopping(&input, 10_000, 4_000, |values| {
        let mean = values.iter().sum::<i64>() as f64 / values.len() as f64;
        json!({"n": values.len(), "low": values.iter().min(), "high": values.iter().max(), "mean": mean})
    });
    assert!(expected.len() > 200, "{} rows", expected.len());
    assert_rows(&read_jsonl(&out), &expected, &[]);
    let expected = brute_force_hopping(
        &input,
        60_000,
        1_000,
        |values| json!({"n": values.len(), "high": values.iter().max()}),
    );
    assert!(expected.len() > 1_000, "{} rows", expected.len());
    assert_rows(&read_jsonl(&minute), &expected, &[]);
}

/// A full disk under the one-minute window's sink: the run fails and says so, every row
/// the window built reached the sink and is counted lost there (rows are built as they
/// are drained, so none may go missing in between), and the other window's sink is whole.
#[test]
fn a_hopping_window_into_a_full_disk_loses_no_row_unsaid() {
    let dir = support::workdir("windows/panes_full_disk");
    let input = readings_across_the_epoch(23, &dir);
    let out = dir.join("windows.jsonl");
    let output = Command::new(build("tests/pipelines/win_panes.yaml"))
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .env("WINDOWS_PATH", &out)
        .env("MINUTE_PATH", "/dev/full")
        .output()
        .unwrap();
    let rows = brute_force_hopping(&input, 60_000, 1_000, |values| json!({"n": values.len()})).len() as u64;
    let c = support::failed_on_a_full_disk(&output, "sinks.minute", rows);
    assert_eq!(support::counter(&c, "windows.last_minute", "emitted"), rows);
    assert_eq!(support::counter(&c, "sinks.minute", "received"), rows);
    let expected = brute_force_hopping(&input, 10_000, 4_000, |values| {
        let mean = values.iter().sum::<i64>() as f64 / values.len() as f64;
        json!({"n": values.len(), "low": values.iter().min(), "high": values.iter().max(), "mean": mean})
    });
    assert_rows(&read_jsonl(&out), &expected, &[]);
}

/// Rows that JSON cannot hold (a sum past the range of `f64`): with more than one
/// thread a window's rows are encoded on a worker, up to 1,024 at a time, while the
/// next are built, and each such row is still a dead letter of the sink, in order, as
/// with one thread; the file and the dead letters are the same bytes for 1, 2 and 3
/// threads and any batch size, and every counter adds up. With 3,000 sensors a window
/// fires some 2,900 rows (chunks on the worker); with 60, fewer than a worker's
/// wake-up is worth, and they are encoded on the pipeline thread.
#[test]
fn window_rows_json_cannot_hold_are_dead_letters_whatever_thread_encodes_them() {
    unencodable_rows_whatever_thread_encodes_them(3_000);
    unencodable_rows_whatever_thread_encodes_them(60);
}

fn unencodable_rows_whatever_thread_encodes_them(sensors: u64) {
    let dir = support::workdir(&format!("windows/unencodable-{sensors}"));
    let mut rng = Rng(41);
    let mut lines = String::new();
    for i in 0..20_000i64 {
        let sensor = rng.below(sensors);
        // One sensor in ten reads a value near the largest f64: two in a window make
        // its sum infinite.
        let value = match sensor % 10 {
            0 => "1.5e308".to_string(),
            _ => format!("{}.5", rng.below(100)),
        };
        let ts = T0 + i - rng.below(800) as i64;
        lines.push_str(&format!(
            "{{\"sensor\":\"s{sensor:03}\",\"ts\":{ts},\"value\":{value}}}\n"
        ));
    }
    fs::write(dir.join("readings.jsonl"), lines).unwrap();
    let bin = build("tests/pipelines/win_unencodable.yaml");
    let run_with = |threads: &str, batch: &str| {
        let out = dir.join(format!("out-{threads}-{batch}.jsonl"));
        let output = run_ok(
            &bin,
            &[("READINGS_PATH", &dir.join("readings.jsonl")), ("OUT_PATH", &out)],
            &["--threads", threads, "--batch-size", batch],
        );
        let c = support::counters(&output.stderr);
        let emitted = support::counter(&c, "windows.per_sensor", "emitted");
        assert_eq!(support::counter(&c, "sinks.out", "received"), emitted);
        let dead = dead_letters(&output.stderr);
        assert_eq!(support::counter(&c, "sinks.out", "dead_lettered"), dead.len() as u64);
        (fs::read(&out).unwrap(), dead, emitted)
    };
    let (written, dead, emitted) = run_with("1", "1024");
    let rows = read_jsonl(&dir.join("out-1-1024.jsonl"));
    assert_eq!(rows.len() + dead.len(), emitted as usize);
    assert!(
        dead.len() * 20 > rows.len() && rows.len() > 1_000,
        "{sensors} sensors: {} dead, {} rows",
        dead.len(),
        rows.len()
    );
    for letter in &dead {
        assert_eq!(letter["component"], "sinks.out", "{letter}");
        assert!(letter["reason"].as_str().unwrap().contains("json encoding"), "{letter}");
    }
    assert!(rows.iter().all(|row| row["total"].as_f64().is_some_and(f64::is_finite)));
    let without_time = |mut letters: Vec<Value>| {
        letters
            .iter_mut()
            .for_each(|letter| drop(letter.as_object_mut().unwrap().remove("ts")));
        letters
    };
    let dead = without_time(dead);
    for (threads, batch) in [("2", "1024"), ("3", "7"), ("2", "1")] {
        let (got, got_dead, _) = run_with(threads, batch);
        assert!(
            got == written,
            "{sensors} sensors, --threads {threads} --batch-size {batch} changed the file"
        );
        assert_eq!(
            without_time(got_dead),
            dead,
            "{sensors} sensors, --threads {threads} --batch-size {batch}"
        );
    }
    // Into a full disk: the run fails and says so, every row encoded on the worker is
    // counted lost, and those JSON cannot hold are still dead letters.
    let output = Command::new(&bin)
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .env("OUT_PATH", "/dev/full")
        .args(["--threads", "2"])
        .output()
        .unwrap();
    let c = support::failed_on_a_full_disk(&output, "sinks.out", rows.len() as u64);
    assert_eq!(support::counter(&c, "sinks.out", "dead_lettered"), dead.len() as u64);
    assert_eq!(support::counter(&c, "windows.per_sensor", "emitted"), emitted);
}

// ---------------------------------------------------------------------------------------
// Session windows: win_sessions.yaml

/// Sessions: each key's records sorted by time, split where two neighbours are at least
/// `gap` apart; a session is [first t, last t + gap). Rows in order of end, then key.
fn split_sessions(records: &[(String, i64, i64)], gap: i64) -> Vec<Value> {
    let mut by_key: BTreeMap<&str, Vec<(i64, i64)>> = BTreeMap::new();
    for (key, t, v) in records {
        by_key.entry(key).or_default().push((*t, *v));
    }
    let mut sessions = Vec::new();
    for (key, mut list) in by_key {
        list.sort_by_key(|&(t, _)| t);
        let mut current = vec![list[0]];
        for &(t, v) in &list[1..] {
            if t - current.last().unwrap().0 >= gap {
                sessions.push((key, std::mem::take(&mut current)));
            }
            current.push((t, v));
        }
        sessions.push((key, current));
    }
    let mut rows: Vec<(i64, &str, Value)> = sessions
        .into_iter()
        .map(|(key, list)| {
            let (start, end) = (list[0].0, list.last().unwrap().0 + gap);
            let row = json!({
                "user": key, "window_start": start, "window_end": end,
                "clicks": list.len(), "total": list.iter().map(|&(_, v)| v).sum::<i64>(),
            });
            (end, key, row)
        })
        .collect();
    rows.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    rows.into_iter().map(|(_, _, row)| row).collect()
}

#[test]
fn session_windows_split_each_users_clicks_at_gaps() {
    let dir = support::workdir("windows/sessions");
    let mut rng = Rng(31);
    // Times on a 250 ms grid, so neighbours exactly one gap (5 s) apart occur. Users come
    // in phases and the clock sometimes pauses, so sessions of every length occur.
    let mut clock = T0;
    let mut input = Vec::new();
    for i in 0..3_000u64 {
        clock += 250 * rng.below(3) as i64;
        if rng.below(150) == 0 {
            clock += 250 * (16 + rng.below(16)) as i64;
        }
        let user = format!("user-{}", (i / 200 * 3 + rng.below(5)) % 15);
        input.push((user, clock - 250 * rng.below(12) as i64, rng.below(10) as i64));
    }
    assert_nothing_late(input.iter().map(|r| r.1), 10_000);
    let path = dir.join("clicks.jsonl");
    write_jsonl(
        &path,
        input.iter().map(|(u, t, v)| json!({"user": u, "ts": t, "value": v})),
    );
    let out = dir.join("sessions.jsonl");
    run_ok(
        &build("tests/pipelines/win_sessions.yaml"),
        &[("CLICKS_PATH", &path), ("SESSIONS_PATH", &out)],
        &[],
    );
    let expected = split_sessions(&input, 5_000);
    assert!(expected.len() > 100, "{} sessions", expected.len());
    assert_rows(&read_jsonl(&out), &expected, &[]);
}

// ---------------------------------------------------------------------------------------
// Count windows, keyed and global: win_count.yaml

/// Count windows: every `n` records of a key (`None`: all records), in arrival order,
/// give a row spanning [smallest t, largest t + 1) as soon as the n-th arrives; the
/// partial windows left at the end of input follow, in key order.
fn count_windows(records: &[(String, i64, i64)], n: usize, keyed: bool) -> Vec<Value> {
    let row = |key: Option<&str>, list: &[(i64, i64)]| {
        let mut row = Map::new();
        if let Some(key) = key {
            row.insert("user".into(), json!(key));
        }
        row.insert("window_start".into(), json!(list.iter().map(|r| r.0).min().unwrap()));
        row.insert("window_end".into(), json!(list.iter().map(|r| r.0).max().unwrap() + 1));
        row.insert("n".into(), json!(list.len()));
        row.insert("total".into(), json!(list.iter().map(|r| r.1).sum::<i64>()));
        Value::Object(row)
    };
    let mut partial: BTreeMap<Option<&str>, Vec<(i64, i64)>> = BTreeMap::new();
    let mut rows = Vec::new();
    for (user, t, v) in records {
        let key = keyed.then_some(user.as_str());
        let list = partial.entry(key).or_default();
        list.push((*t, *v));
        if list.len() == n {
            rows.push(row(key, list));
            partial.remove(&key);
        }
    }
    rows.extend(partial.iter().map(|(key, list)| row(*key, list)));
    rows
}

#[test]
fn count_windows_per_key_and_over_everything() {
    let dir = support::workdir("windows/count");
    let mut rng = Rng(41);
    // Times out of order, so a window's first record is not its earliest.
    let input: Vec<(String, i64, i64)> = (0..1_234i64)
        .map(|i| {
            let user = format!("u{}", rng.below(23));
            (user, T0 + 100 * i - rng.below(3_000) as i64, rng.below(50) as i64)
        })
        .collect();
    let path = dir.join("clicks.jsonl");
    write_jsonl(
        &path,
        input.iter().map(|(u, t, v)| json!({"user": u, "ts": t, "value": v})),
    );
    let (per_user, all_users) = (dir.join("per_user.jsonl"), dir.join("all_users.jsonl"));
    run_ok(
        &build("tests/pipelines/win_count.yaml"),
        &[
            ("CLICKS_PATH", &path),
            ("PER_USER_PATH", &per_user),
            ("ALL_USERS_PATH", &all_users),
        ],
        &[],
    );
    assert_rows(&read_jsonl(&per_user), &count_windows(&input, 5, true), &[]);
    let global = count_windows(&input, 100, false);
    assert_eq!(global.last().unwrap()["n"], 34, "a partial window at the end");
    assert_field_order(
        fs::read_to_string(&all_users)
            .unwrap()
            .lines()
            .next()
            .unwrap_or_default(),
        &["window_start", "window_end", "n", "total"],
    );
    assert_rows(&read_jsonl(&all_users), &global, &[]);
}

// ---------------------------------------------------------------------------------------
// Tables: pipelines/clicks_per_user.yaml and pipelines/word_count.yaml

#[test]
fn clicks_per_user_emits_each_users_running_counts() {
    let dir = support::workdir("windows/clicks_per_user");
    let mut rng = Rng(51);
    // 30 minutes of clicks: within the table's 1 h ttl, so no user is forgotten.
    let clicks: Vec<(String, String, i64)> = (0..2_000i64)
        .map(|i| {
            let user = format!("user-{}", rng.below(30));
            let url = format!("/page/{}", rng.below(15));
            (user, url, T0 + 900 * i + rng.below(900) as i64)
        })
        .collect();
    let path = dir.join("clicks.jsonl");
    write_jsonl(
        &path,
        clicks
            .iter()
            .map(|(u, url, t)| json!({"user_id": u, "url": url, "ts": t})),
    );
    let out = dir.join("counts.jsonl");
    run_ok(
        &build("pipelines/clicks_per_user.yaml"),
        &[("CLICKS_PATH", &path), ("COUNTS_PATH", &out)],
        &[],
    );
    let rows = read_jsonl(&out);

    // `emit: change`: a row per click, with its user's running aggregates.
    let mut pages: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut seen: HashMap<&str, (usize, i64)> = HashMap::new();
    let mut expected = Vec::new();
    for (user, url, t) in &clicks {
        let user_pages = pages.entry(user).or_default();
        user_pages.insert(url);
        let (n, last) = seen.entry(user).or_insert((0, i64::MIN));
        *n += 1;
        *last = (*last).max(*t);
        expected.push(json!({"user_id": user, "clicks": n, "pages": user_pages.len(), "last_click": last}));
    }
    assert_rows(&rows, &expected, &[]);

    // The same, as totals: each user's rows count 1..n, and the last one holds the totals.
    let mut per_user: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
    for row in &rows {
        per_user.entry(row["user_id"].as_str().unwrap()).or_default().push(row);
    }
    for (user, list) in per_user {
        let counts: Vec<u64> = list.iter().map(|r| r["clicks"].as_u64().unwrap()).collect();
        assert_eq!(counts, (1..=seen[user].0 as u64).collect::<Vec<_>>(), "{user}");
        assert_eq!(list.last().unwrap()["pages"], pages[user].len(), "{user}");
    }
}

#[test]
fn word_count_ends_with_every_words_total() {
    let bin = build("pipelines/word_count.yaml");
    let mut rng = Rng(61);
    let vocabulary = [
        "the", "The", "THE", "quick", "Brown", "fox", "jumps", "over", "lazy", "dog", "Zoë", "ZOË", "café", "a",
    ];
    let mut text = String::new();
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..2_000 {
        // Leading, trailing and repeated spaces give empty words, which are filtered.
        let words: Vec<&str> = (0..rng.below(12)).map(|_| vocabulary[rng.below(14) as usize]).collect();
        let spaces = " ".repeat(1 + rng.below(3) as usize);
        text.push_str(&format!(
            "{}{}{}\n",
            " ".repeat(rng.below(2) as usize),
            words.join(&spaces),
            " ".repeat(rng.below(2) as usize)
        ));
        for word in words {
            *expected.entry(word.to_lowercase()).or_default() += 1;
        }
    }
    // On 3 threads the table's keys are split across the two workers (processing
    // time: every part is placed at the first tick of the clock).
    for threads in ["2", "3"] {
        let output = support::run(&bin, &["--threads", threads], text.as_bytes());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(stderr.contains("table keys split by hash"), threads == "3", "{stderr}");
        let counts = support::counters(&output.stderr);
        let words: u64 = expected.values().sum();
        assert_eq!(support::counter(&counts, "tables.counts", "aggregated"), words);
        let mut last: BTreeMap<String, u64> = BTreeMap::new();
        for row in json_lines(&output.stdout) {
            let (word, count) = (
                row["word"].as_str().unwrap().to_string(),
                row["count"].as_u64().unwrap(),
            );
            let before = last.insert(word.clone(), count);
            assert!(before.is_none_or(|b| b < count), "{word}: {before:?} then {count}");
        }
        assert_eq!(last, expected, "--threads {threads}");
    }
}

// ---------------------------------------------------------------------------------------
// State limits: win_max_keys.yaml

#[test]
fn records_of_keys_beyond_max_keys_are_dead_letters() {
    let dir = support::workdir("windows/max_keys");
    let mut rng = Rng(71);
    // 30 minutes in one 1 h window: the first 5 users get in, the other 7 never do.
    let hour = T0 - T0.rem_euclid(3_600_000);
    let clicks: Vec<(String, i64)> = (0..600i64)
        .map(|i| (format!("u{}", rng.below(12)), hour + 3_000 * i))
        .collect();
    let path = dir.join("clicks.jsonl");
    write_jsonl(&path, clicks.iter().map(|(u, t)| json!({"user": u, "ts": t})));
    let out = dir.join("windows.jsonl");
    let output = run_ok(
        &build("tests/pipelines/win_max_keys.yaml"),
        &[("CLICKS_PATH", &path), ("WINDOWS_PATH", &out)],
        &[],
    );

    let mut admitted: Vec<&str> = Vec::new();
    for (user, _) in &clicks {
        if !admitted.contains(&user.as_str()) && admitted.len() < 5 {
            admitted.push(user);
        }
    }
    let (kept, rejected): (Vec<_>, Vec<_>) = clicks.iter().partition(|(u, _)| admitted.contains(&u.as_str()));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (user, _) in &kept {
        *counts.entry(user).or_default() += 1;
    }
    let expected: Vec<Value> = counts
        .iter()
        .map(|(user, n)| json!({"user": user, "window_start": hour, "window_end": hour + 3_600_000, "clicks": n}))
        .collect();
    assert_rows(&read_jsonl(&out), &expected, &[]);

    let dead = dead_letters(&output.stderr);
    assert!(dead.iter().all(|d| d["component"] == "windows.per_user"), "{dead:?}");
    assert!(
        dead.iter().all(|d| d["reason"].as_str().unwrap().contains("max_keys")),
        "{dead:?}"
    );
    let records: Vec<Value> = dead
        .iter()
        .map(|d| serde_json::from_str(d["record"].as_str().unwrap()).unwrap())
        .collect();
    let rejected: Vec<Value> = rejected.iter().map(|(u, t)| json!({"user": u, "ts": t})).collect();
    assert!(rejected.len() > 100);
    assert_rows(&records, &rejected, &[]);
}

// ---------------------------------------------------------------------------------------
// Aggregates: win_aggregates.yaml

struct Event {
    user: String,
    name: String,
    ts: i64,
    value: i64,
    x: f64,
}

/// The value at rank floor(q·(n − 1)) of the sorted values.
fn rank(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

/// The aggregates of one window, from its records in arrival order:
/// - first/last: the name of the smallest/largest time; ties go to the first arrival for
///   `first` and to the last arrival for `last`;
/// - count_distinct (and approx_count_distinct): distinct users;
/// - collect(value, 3): the first three values in arrival order;
/// - median and percentile 0.9: the values at rank floor(q·(n − 1)) of the sorted x.
fn batch_aggregates(start: i64, events: &[&Event]) -> Value {
    let first = events.iter().fold(events[0], |a, e| if e.ts < a.ts { e } else { a });
    let last = events.iter().fold(events[0], |a, e| if e.ts >= a.ts { e } else { a });
    let users = events.iter().map(|e| e.user.as_str()).collect::<BTreeSet<_>>().len();
    let mut xs: Vec<f64> = events.iter().map(|e| e.x).collect();
    xs.sort_by(f64::total_cmp);
    json!({
        "window_start": start, "window_end": start + 60_000,
        "first_name": first.name, "last_name": last.name,
        "users": users, "approx_users": users,
        "some_values": events.iter().take(3).map(|e| e.value).collect::<Vec<_>>(),
        "mid": rank(&xs, 0.5), "p90": rank(&xs, 0.9),
    })
}

#[test]
fn aggregates_over_a_global_window_match_a_batch_computation() {
    let dir = support::workdir("windows/aggregates");
    let mut rng = Rng(81);
    // Four minutes; times rounded to the second, so first/last have ties to break. Over
    // 256 distinct users per window, so approx_count_distinct is past its exact mode.
    let mut clock = T0;
    let events: Vec<Event> = (0..8_000)
        .map(|i| {
            clock += rng.below(60) as i64;
            let t = clock - rng.below(2_000) as i64;
            Event {
                user: format!("user-{}", rng.below(3_000)),
                name: format!("e{i}"),
                ts: t - t.rem_euclid(1_000),
                value: rng.below(1_000) as i64,
                x: rng.decimal(1.0, 1_000.0),
            }
        })
        .collect();
    assert_nothing_late(events.iter().map(|e| e.ts), 5_000);
    let path = dir.join("events.jsonl");
    write_jsonl(
        &path,
        events
            .iter()
            .map(|e| json!({"user": e.user, "name": e.name, "ts": e.ts, "value": e.value, "x": e.x})),
    );
    let out = dir.join("windows.jsonl");
    run_ok(
        &build("tests/pipelines/win_aggregates.yaml"),
        &[("EVENTS_PATH", &path), ("WINDOWS_PATH", &out)],
        &[],
    );

    let mut windows: BTreeMap<i64, Vec<&Event>> = BTreeMap::new();
    for e in &events {
        windows.entry(e.ts - e.ts.rem_euclid(60_000)).or_default().push(e);
    }
    let expected: Vec<Value> = windows
        .iter()
        .map(|(&start, list)| batch_aggregates(start, list))
        .collect();
    assert!(expected.len() >= 4);
    assert!(expected
        .iter()
        .all(|r| r["users"].as_u64().unwrap() > 256 || r == expected.last().unwrap()));
    assert_rows(
        &read_jsonl(&out),
        &expected,
        &[("approx_users", 0.065), ("mid", 0.01), ("p90", 0.01)],
    );
}

// ---------------------------------------------------------------------------------------
// Output names

/// A table, or a window without `allowed_lateness`, adds no `update` field of its own,
/// so an aggregate may take that name (once generated code initialised it twice).
#[test]
fn update_is_an_ordinary_aggregate_name_where_nothing_else_uses_it() {
    let dir = support::workdir("windows/field_names");
    let path = dir.join("clicks.jsonl");
    let clicks = [("a", T0), ("b", T0 + 1_000), ("a", T0 + 70_000)];
    write_jsonl(&path, clicks.iter().map(|(u, t)| json!({"user": u, "ts": t})));
    let (table, window) = (dir.join("table.jsonl"), dir.join("window.jsonl"));
    run_ok(
        &build("tests/pipelines/win_field_names.yaml"),
        &[("CLICKS_PATH", &path), ("TABLE_PATH", &table), ("WINDOW_PATH", &window)],
        &[],
    );
    assert_eq!(
        read_jsonl(&table),
        vec![
            json!({"user": "a", "update": 1, "window_start": T0}),
            json!({"user": "b", "update": 1, "window_start": T0 + 1_000}),
            json!({"user": "a", "update": 2, "window_start": T0}),
        ]
    );
    let minute = |t: i64| t - t.rem_euclid(60_000);
    assert_eq!(
        read_jsonl(&window),
        vec![
            json!({"window_start": minute(T0), "window_end": minute(T0) + 60_000, "update": 2}),
            json!({"window_start": minute(T0 + 70_000), "window_end": minute(T0 + 70_000) + 60_000, "update": 1}),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Several inputs and idleness: two_inputs_idle.yaml

/// The watermark of a window fed by two sources is the smaller of theirs, and a source
/// that has read nothing holds it back entirely: `fast` alone would make its third
/// reading late. Only once `slow` has been idle for its `idle_timeout` (5 s) do the
/// windows `fast` completed fire, while the binary still runs (both files are followed).
#[test]
fn the_slowest_input_holds_a_window_back_until_it_is_idle() {
    let dir = support::workdir("windows/two_inputs_idle");
    let (fast, slow, out) = (dir.join("fast.jsonl"), dir.join("slow.jsonl"), dir.join("out.jsonl"));
    write_jsonl(
        &fast,
        [2_000, 15_000, 5_000, 25_000].map(|t| json!({"device": "f", "ts": T0 + t})),
    );
    fs::write(&slow, "").unwrap();
    let bin = build("tests/pipelines/two_inputs_idle.yaml");
    let running = support::start(
        Command::new(&bin)
            .env("FAST_PATH", &fast)
            .env("SLOW_PATH", &slow)
            .env("OUT_PATH", &out),
    );
    support::wait_until("the windows before the fast input's watermark", || {
        fs::read(&out).is_ok_and(|b| json_lines(&b).len() >= 2)
    });
    running.signal("INT");
    let output = running.wait();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "windows.per_10s", "late"), 0);
    assert_eq!(
        read_jsonl(&out),
        vec![
            json!({"window_start": T0, "window_end": T0 + 10_000, "readings": 2}),
            json!({"window_start": T0 + 10_000, "window_end": T0 + 20_000, "readings": 1}),
            json!({"window_start": T0 + 20_000, "window_end": T0 + 30_000, "readings": 1}),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// Table ttl: table_ttl.yaml

/// `ttl: 1h`: `c` two hours later moves the watermark past `a` and `b`'s last records,
/// so both are forgotten (`expired`), and `a`'s next record counts from zero.
#[test]
fn a_table_forgets_keys_past_their_ttl_and_counts_them_expired() {
    let dir = support::workdir("windows/table_ttl");
    let hour = 3_600_000;
    let clicks = [
        ("a", T0),
        ("b", T0 + 1_000),
        ("a", T0 + 2_000),
        ("c", T0 + 2 * hour),
        ("a", T0 + 2 * hour + 1),
    ];
    let path = dir.join("clicks.jsonl");
    write_jsonl(&path, clicks.iter().map(|(u, t)| json!({"user": u, "ts": t})));
    let out = dir.join("out.jsonl");
    let output = run_ok(
        &build("tests/pipelines/table_ttl.yaml"),
        &[("CLICKS_PATH", &path), ("OUT_PATH", &out)],
        &[],
    );
    assert_eq!(
        read_jsonl(&out),
        [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 1)].map(|(u, n)| json!({"user": u, "clicks": n}))
    );
    assert_eq!(exit_counters(&output.stderr, "tables.per_user")["expired"], 2);
}

// ---------------------------------------------------------------------------------------
// Session lateness: win_session_late.yaml

/// Sessions with a 5 s gap and 10 s of lateness, watermark = the largest time so far:
/// - 0 s, then 12 s: the session [0, 5) fires;
/// - 3 s is behind the watermark (12 s) but [0, 5) is kept until 15 s: it merges, and
///   [0, 8) is emitted again as an update;
/// - 30 s: [12, 17) fires, and both sessions are past their lateness;
/// - 1 s: its own session [1, 6) is past the lateness too: late;
/// - 16 s: [16, 21) is not, but the session it overlaps is gone: a new session, emitted
///   at once (its end is behind the watermark);
/// - the end of the input fires [30, 35).
#[test]
fn session_late_records_merge_are_late_or_open_a_new_session() {
    let dir = support::workdir("windows/session_late");
    let path = dir.join("clicks.jsonl");
    let seconds = [0, 12, 3, 30, 1, 16];
    write_jsonl(&path, seconds.map(|s| json!({"user": "u", "ts": T0 + s * 1_000})));
    let (out, late) = (dir.join("out.jsonl"), dir.join("late.jsonl"));
    run_ok(
        &build("tests/pipelines/win_session_late.yaml"),
        &[("CLICKS_PATH", &path), ("OUT_PATH", &out), ("LATE_PATH", &late)],
        &[],
    );
    let row = |start: i64, end: i64, n: u64, update: bool| json!({"user": "u", "window_start": T0 + start * 1_000, "window_end": T0 + end * 1_000, "n": n, "update": update});
    assert_eq!(
        read_jsonl(&out),
        vec![
            row(0, 5, 1, false),
            row(0, 8, 2, true),
            row(12, 17, 1, false),
            row(16, 21, 1, false),
            row(30, 35, 1, false),
        ]
    );
    assert_eq!(read_jsonl(&late), vec![json!({"user": "u", "ts": T0 + 1_000})]);
}

// ---------------------------------------------------------------------------------------
// NaN: win_nan.yaml

/// `min`, `max`, `median` and `percentile` skip NaN: a window whose values are all NaN
/// has none, and writes null (the field is `f64?`), not a made-up 0.0.
#[test]
fn a_window_of_nan_values_has_no_min_max_or_percentile() {
    let dir = support::workdir("windows/nan");
    let path = dir.join("readings.csv");
    let rows = [
        ("a", 1_000, "NaN"),
        ("b", 2_000, "4.5"),
        ("a", 3_000, "NaN"),
        ("b", 4_000, "NaN"),
    ];
    let csv: String = std::iter::once("device,ts,x\n".to_string())
        .chain(rows.iter().map(|(d, t, x)| format!("{d},{},{x}\n", T0 + t)))
        .collect();
    fs::write(&path, csv).unwrap();
    let out = dir.join("out.jsonl");
    run_ok(
        &build("tests/pipelines/win_nan.yaml"),
        &[("READINGS_PATH", &path), ("OUT_PATH", &out)],
        &[],
    );
    let window = json!({"window_start": T0, "window_end": T0 + 10_000});
    let row = |device: &str, n: u64, x: Value| {
        let mut row = json!({"device": device});
        row.as_object_mut().unwrap().extend(window.as_object().unwrap().clone());
        for (field, value) in [
            ("n", json!(n)),
            ("low", x.clone()),
            ("high", x.clone()),
            ("mid", x.clone()),
            ("p90", x),
        ] {
            row[field] = value;
        }
        row
    };
    assert_eq!(
        read_jsonl(&out),
        vec![row("a", 2, Value::Null), row("b", 2, json!(4.5))]
    );
}

// ---------------------------------------------------------------------------------------
// Split tables' and sessions' rows while the input is quiet: tests/pipelines/split_stdin.yaml

/// Stops a pipeline with SIGTERM while its stdin is still open: it exits 0.
fn stop_with_stdin_open(running: support::Running, stdin: std::process::ChildStdin) {
    running.signal("TERM");
    let output = running.wait();
    drop(stdin);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `tests/pipelines/split_stdin.yaml` with `--threads 3`, its files in `dir`, once it
/// has split its table and windows; and its stdin.
fn start_split_stdin(dir: &Path) -> (support::Running, std::process::ChildStdin) {
    let bin = build("tests/pipelines/split_stdin.yaml");
    let mut running = support::start(
        Command::new(&bin)
            .args(["--threads", "3"])
            .env("OUT", dir.join("out.jsonl"))
            .env("SESSIONS", dir.join("sessions.jsonl"))
            .env("COUNTS", dir.join("counts.jsonl"))
            .stdin(std::process::Stdio::piped()),
    );
    running.wait_for_log_any_time("table keys split by hash");
    running.wait_for_log_any_time("window keys split by hash");
    let stdin = running.child.stdin.take().unwrap();
    (running, stdin)
}

/// A table emitting each change and a count window, split by key across the workers
/// (`--threads 3`), hand their rows on after their records are taken, later than one
/// operator would: every row of what was read is written before the pipeline waits for
/// more input, not when more comes (stdin stays open and silent).
#[test]
fn a_split_table_and_count_window_write_every_row_of_what_was_read_while_their_input_is_quiet() {
    let dir = support::workdir("windows/split_stdin");
    let (out, counts) = (dir.join("out.jsonl"), dir.join("counts.jsonl"));
    let (running, mut stdin) = start_split_stdin(&dir);
    // More than a part's batch (1,024 records) of some sensors, and a few of others.
    let lines: String = (0..5_000)
        .map(|i| format!("{{\"sensor\":\"s{}\",\"ts\":{}}}\n", i % 7, 1_000 + i))
        .collect();
    std::io::Write::write_all(&mut stdin, lines.as_bytes()).unwrap();
    std::io::Write::flush(&mut stdin).unwrap();
    // Each sensor's 714 or 715 readings: 7 windows of 100.
    support::wait_until("a row for every reading and every hundred", || {
        json_lines(&fs::read(&out).unwrap_or_default()).len() == 5_000
            && json_lines(&fs::read(&counts).unwrap_or_default()).len() == 49
    });
    stop_with_stdin_open(running, stdin);
    let rows = json_lines(&fs::read(&out).unwrap());
    for (i, row) in rows.iter().enumerate() {
        let expected = json!({"sensor": format!("s{}", i % 7), "n": i / 7 + 1, "latest": 1_000 + i});
        assert_eq!(row, &expected, "row {i}");
    }
    // The windows in the order their hundredth readings came, then (the stop) every
    // sensor's partial window, by sensor.
    let mut expected: Vec<Value> = (0..5_000i64)
        .filter(|i| (i / 7 + 1) % 100 == 0)
        .map(|i| json!({"sensor": format!("s{}", i % 7), "n": 100, "latest": 1_000 + i}))
        .collect();
    expected.extend((0..7i64).map(|k| {
        let last = (0..5_000i64).filter(|i| i % 7 == k).max().unwrap();
        json!({"sensor": format!("s{k}"), "n": (last / 7 + 1) % 100, "latest": 1_000 + last})
    }));
    let counted: Vec<Value> = json_lines(&fs::read(&counts).unwrap())
        .into_iter()
        .map(|mut row| {
            let row = row.as_object_mut().unwrap();
            row.remove("window_start");
            row.remove("window_end");
            Value::Object(row.clone())
        })
        .collect();
    assert_eq!(counted, expected);
}

/// Session windows split by key across the workers (`--threads 3`) fire in their parts
/// and are handed on once a step: every session the watermark closed is written before
/// the pipeline waits for more input, not when more comes (stdin stays open and
/// silent).
#[test]
fn split_sessions_write_every_session_the_watermark_closed_while_their_input_is_quiet() {
    let dir = support::workdir("windows/split_stdin_sessions");
    let sessions = dir.join("sessions.jsonl");
    let (running, mut stdin) = start_split_stdin(&dir);
    // A session per sensor, 1 ms apart, then a reading of each 10 s on: the watermark
    // closes the first sessions, and the last ones stay open.
    let mut lines: String = (0..5_000)
        .map(|i| format!("{{\"sensor\":\"s{}\",\"ts\":{}}}\n", i % 7, 1_000 + i))
        .collect();
    lines.extend((0..7).map(|k| format!("{{\"sensor\":\"s{k}\",\"ts\":16000}}\n")));
    std::io::Write::write_all(&mut stdin, lines.as_bytes()).unwrap();
    std::io::Write::flush(&mut stdin).unwrap();
    support::wait_until("every closed session", || {
        json_lines(&fs::read(&sessions).unwrap_or_default()).len() == 7
    });
    stop_with_stdin_open(running, stdin);
    // The stop closes the last sessions, written after the others.
    let rows = json_lines(&fs::read(&sessions).unwrap());
    assert_eq!(rows.len(), 14, "{rows:?}");
    // One operator's order: by end, then key.
    let mut closed: Vec<Value> = (0..7i64)
        .map(|k| {
            let times = (0..5_000i64).filter(|i| i % 7 == k).map(|i| 1_000 + i);
            json!({
                "sensor": format!("s{k}"),
                "window_start": 1_000 + k,
                "window_end": times.clone().max().unwrap() + 1_000,
                "n": times.count(),
            })
        })
        .collect();
    closed.sort_by_key(|row| row["window_end"].as_i64());
    assert_eq!(rows[..7], closed[..]);
    for (k, row) in rows.iter().skip(7).enumerate() {
        let expected = json!({"sensor": format!("s{k}"), "window_start": 16_000, "window_end": 17_000, "n": 1});
        assert_eq!(row, &expected, "last session {k}");
    }
}

// ---------------------------------------------------------------------------------------
// Processing time while the input is quiet: tests/pipelines/idle_window.yaml

/// An idle binary sleeps until something needs it (see the runtime's `wake.rs`): a
/// processing-time window is such a thing, so its end must wake the pipeline even
/// though stdin stays open and silent.
#[test]
fn a_processing_time_window_fires_on_time_while_its_input_is_quiet() {
    let dir = support::workdir("windows/idle_window");
    let out = dir.join("out.jsonl");
    let bin = build("tests/pipelines/idle_window.yaml");
    let mut running = support::start(Command::new(&bin).env("OUT", &out).stdin(std::process::Stdio::piped()));
    let mut stdin = running.child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"tick\ntick\n").unwrap();
    // Nothing else is written and stdin stays open: only the window's end can make
    // the driver look again.
    support::wait_until("the window fired", || {
        json_lines(&fs::read(&out).unwrap_or_default()).len() == 1
    });
    stop_with_stdin_open(running, stdin);
    let rows = json_lines(&fs::read(&out).unwrap());
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["line"], "tick");
    assert_eq!(rows[0]["n"], 2);
}
