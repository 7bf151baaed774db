//! End to end: build the example pipelines with the `rill` CLI, run the
//! binaries on inputs generated here, and compare with results computed
//! here, independently of the code under test.

mod support;

use std::fs;
use std::io::Write;
use std::process::Command;

use serde_json::{json, Value};
use support::{build, counter, counters, dead_letters, json_lines, run, Rng};

#[test]
fn hot_readings_filters_maps_and_dead_letters_bad_lines() {
    let bin = build("pipelines/hot_readings.yaml");
    let dir = support::workdir("hot_readings");
    let mut rng = Rng(42);
    let mut input = String::new();
    let mut expected = Vec::new();
    let mut bad = 0;
    for i in 0..5_000u64 {
        if i % 500 == 7 {
            // Broken JSON, a missing field and a wrong type: dead letters, not crashes.
            input.push_str(match (i / 500) % 3 {
                0 => "{\"device_id\": \"x\", \"ts\": 1,\n",
                1 => "{\"device_id\":\"plant9-dev-1\",\"ts\":5,\"status\":\"ok\"}\n",
                _ => "{\"device_id\":\"plant9-dev-1\",\"ts\":5,\"temperature\":\"hot\",\"status\":\"ok\"}\n",
            });
            bad += 1;
            continue;
        }
        let device = format!("plant{}-dev-{:04}", rng.below(3), rng.below(100));
        let ts = 1_700_000_000_000i64 + i as i64;
        let temperature = rng.decimal(0.0, 50.0);
        let humidity = if rng.below(10) == 0 {
            Value::Null
        } else {
            json!(rng.decimal(0.0, 100.0))
        };
        let status = if rng.below(5) == 0 { "error" } else { "ok" };
        let record =
            json!({"device_id": device, "ts": ts, "temperature": temperature, "humidity": humidity, "status": status});
        input.push_str(&record.to_string());
        input.push('\n');
        if temperature > 25.0 && status == "ok" {
            let site = device.split('-').next().unwrap().to_uppercase();
            expected.push(json!({
                "device_id": device, "ts": ts, "temperature": temperature,
                "temp_f": temperature * 9.0 / 5.0 + 32.0, "humidity": humidity, "site": site,
            }));
        }
    }
    fs::write(dir.join("in.jsonl"), &input).unwrap();
    let out_path = dir.join("alerts.jsonl");
    let output = Command::new(&bin)
        .env("READINGS_PATH", dir.join("in.jsonl"))
        .args(["--set", &format!("sinks.alerts.path={}", out_path.display())])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = json_lines(&fs::read(&out_path).unwrap());
    assert!(expected.len() > 1000, "the generated input exercises the filter");
    support::assert_records(&got, &expected);
    let dead = dead_letters(&output.stderr);
    assert_eq!(dead.len(), bad, "every bad line is a dead letter: {dead:?}");
    assert!(dead.iter().all(|d| d["component"] == "sources.readings"));
    assert!(dead
        .iter()
        .any(|d| d["reason"].as_str().unwrap().contains("temperature")));
    let counts = support::counters(&output.stderr);
    let count = |c: &str, k: &str| support::counter(&counts, c, k);
    assert_eq!(count("sources.readings", "received"), 5_000);
    assert_eq!(count("sources.readings", "dead_lettered"), bad as u64);
    assert_eq!(count("transforms.hot", "received"), 5_000 - bad as u64);
    assert_eq!(count("transforms.hot", "sent"), expected.len() as u64);
    assert_eq!(count("transforms.enriched", "sent"), expected.len() as u64);
    assert_eq!(count("sinks.alerts", "sent"), expected.len() as u64);
    assert_eq!(count("dead_letters", "sent"), bad as u64);
}

#[test]
fn csv_cleanup_turns_csv_into_clean_json() {
    let bin = build("pipelines/csv_cleanup.yaml");
    let dir = support::workdir("csv_cleanup");
    let mut rng = Rng(7);
    let mut csv = String::from("order_id,customer,country,amount,placed_at,coupon\n");
    let mut expected = Vec::new();
    let (mut rejected_decode, mut rejected_eval) = (0, 0);
    let names = ["Alice", "  Bob ", "Carol", "", "Smith, J", "Zoë \"Z\""];
    for id in 0..400u64 {
        let name = names[rng.below(names.len() as u64) as usize];
        let country = [" fr", "de", "us ", "nl"][rng.below(4) as usize];
        let amount = rng.decimal(-5.0, 200.0);
        let (y, m, d, hh, mm, ss) = (
            2024,
            1 + rng.below(12) as i64,
            1 + rng.below(28) as i64,
            rng.below(24) as i64,
            rng.below(60) as i64,
            rng.below(60) as i64,
        );
        let coupon = if rng.below(3) == 0 { "" } else { "SAVE10" };
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        let kind = rng.below(20);
        let (amount_text, date_text) = match kind {
            0 => ("abc".to_string(), format!("{y}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")),
            1 => (amount.to_string(), "yesterday".to_string()),
            _ => (amount.to_string(), format!("{y}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")),
        };
        csv.push_str(&format!("{id},{quoted},{country},{amount_text},{date_text},{coupon}\n"));
        let kept = !name.trim().is_empty() && amount >= 0.0;
        match kind {
            0 => rejected_decode += 1,
            1 if kept => rejected_eval += 1,
            1 => {}
            _ if kept => {
                let ms = (support::days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss) * 1000;
                expected.push(json!({
                    "order_id": id,
                    "customer": name.trim(),
                    "country": country.trim().to_uppercase(),
                    "amount_cents": (amount * 100.0).round() as i64,
                    "placed_at": ms,
                    "has_coupon": !coupon.is_empty(),
                    "coupon": if coupon.is_empty() { "none" } else { coupon },
                }));
            }
            _ => {}
        }
    }
    fs::write(dir.join("orders.csv"), &csv).unwrap();
    let output = Command::new(&bin)
        .env("ORDERS_CSV", dir.join("orders.csv"))
        .env("CLEAN_JSON", dir.join("clean.jsonl"))
        .env("REJECTS_JSON", dir.join("rejects.jsonl"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = json_lines(&fs::read(dir.join("clean.jsonl")).unwrap());
    support::assert_records(&got, &expected);
    let rejects = json_lines(&fs::read(dir.join("rejects.jsonl")).unwrap());
    let by = |c: &str| rejects.iter().filter(|r| r["component"] == c).count();
    assert_eq!(by("sources.orders"), rejected_decode, "{rejects:?}");
    assert_eq!(by("transforms.clean"), rejected_eval, "{rejects:?}");
    assert!(
        rejects.iter().all(|r| r["record"].as_str().unwrap().contains(',')),
        "the raw row is kept"
    );
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "sources.orders", "received"), 400);
    assert_eq!(
        support::counter(&counts, "transforms.clean", "dead_lettered"),
        rejected_eval as u64
    );
}

#[test]
fn quickstart_runs_without_any_service() {
    let bin = build("pipelines/quickstart.yaml");
    let output = run(&bin, &["--set", "sources.sensors.count=300"], b"");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let records = json_lines(&output.stdout);
    let counts = support::counters(&output.stderr);
    let count = |c: &str, k: &str| support::counter(&counts, c, k);
    // Every reading is generated, filtered or kept, and every kept one is written.
    assert_eq!(count("sources.sensors", "received"), 300);
    assert_eq!(count("transforms.hot", "received"), 300);
    assert_eq!(
        count("transforms.hot", "sent") + count("transforms.hot", "filtered"),
        300
    );
    assert_eq!(count("transforms.hot", "sent"), records.len() as u64);
    assert_eq!(count("sinks.console", "sent"), records.len() as u64);
    // About 3/4 are `ok` and half are above 25.0 (uniform on 15..35).
    assert!((60..=170).contains(&records.len()), "{} records", records.len());
    let mut last_ts = 0;
    let fields = ["device_id", "ts", "temperature", "temp_f", "humid"];
    for (r, line) in records.iter().zip(String::from_utf8_lossy(&output.stdout).lines()) {
        // These fields, no other, in the order of the `map:`.
        assert_eq!(r.as_object().unwrap().len(), fields.len(), "{line}");
        let at: Vec<usize> = fields
            .iter()
            .map(|f| {
                line.find(&format!("\"{f}\":"))
                    .unwrap_or_else(|| panic!("no {f} in {line}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{line}");
        let device = r["device_id"].as_str().unwrap();
        assert!(
            device
                .strip_prefix("dev-")
                .is_some_and(|n| n.parse::<u32>().is_ok_and(|n| n < 5)),
            "{r}"
        );
        // The generator's clock: 1700000000000 + 250 ms per reading, in order.
        let ts = r["ts"].as_i64().unwrap();
        assert!(ts > last_ts && (ts - 1_700_000_000_000) % 250 == 0, "{r}");
        assert!(ts < 1_700_000_000_000 + 300 * 250, "{r}");
        last_ts = ts;
        let t = r["temperature"].as_f64().unwrap();
        assert!(t > 25.0 && t < 35.0, "{r}");
        assert_eq!(r["temp_f"].as_f64().unwrap(), (t * 9.0 / 5.0 + 32.0).round());
        assert!(r["humid"].is_boolean(), "{r}");
    }
    assert!(records.iter().any(|r| r["humid"] == true) && records.iter().any(|r| r["humid"] == false));
    // Deterministic: the same seed gives the same events.
    let again = run(&bin, &["--set", "sources.sensors.count=300"], b"");
    assert_eq!(output.stdout, again.stdout);
}

#[test]
fn schemas_whose_rust_names_clash_both_flow() {
    let bin = build("tests/pipelines/clashing_schemas.yaml");
    let output = run(&bin, &[], b"");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(dead_letters(&output.stderr), Vec::<serde_json::Value>::new());
    let got = json_lines(&output.stdout);
    let (mut first, second): (Vec<_>, Vec<_>) = got.into_iter().partition(|r| r.get("x").is_some());
    first.sort_by_key(|r| r["x"].as_i64());
    assert_eq!(
        first,
        vec![
            json!({"x": 0, "self": "me"}),
            json!({"x": 1, "self": "me"}),
            json!({"x": 2, "self": "me"}),
        ]
    );
    assert_eq!(second, vec![json!({"y": "why", "type": "kind", "_": true}); 2]);
}

#[test]
fn evaluation_errors_go_to_dead_letters_and_never_panic() {
    let bin = build("tests/pipelines/eval_errors.yaml");
    let input = concat!(
        "{\"id\":1,\"count\":10,\"divisor\":2,\"code\":\"7\"}\n",
        "{\"id\":2,\"count\":10,\"divisor\":0,\"code\":\"7\"}\n",
        "{\"id\":3,\"count\":9223373,\"divisor\":1,\"code\":\"7\"}\n",
        "{\"id\":4,\"count\":1,\"divisor\":1,\"code\":\"seven\"}\n",
        "{\"id\":5,\"count\":-6,\"divisor\":4,\"code\":\"-3\"}\n",
    );
    let output = run(&bin, &[], input.as_bytes());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = json_lines(&output.stdout);
    assert_eq!(
        got,
        vec![
            json!({"id": 1, "ratio": 5, "scaled": 10_000_000_000_000i64, "code": 7}),
            json!({"id": 5, "ratio": -1, "scaled": -6_000_000_000_000i64, "code": -3}),
        ]
    );
    let dead = dead_letters(&output.stderr);
    let reasons: Vec<&str> = dead.iter().map(|d| d["reason"].as_str().unwrap()).collect();
    assert_eq!(dead.len(), 3, "{reasons:?}");
    assert!(reasons[0].contains("division by zero"), "{reasons:?}");
    assert!(reasons[1].contains("overflow"), "{reasons:?}");
    assert!(reasons[2].contains("seven"), "{reasons:?}");
    assert!(dead.iter().all(|d| d["component"] == "transforms.computed"));
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "transforms.computed", "dead_lettered"), 3);
    assert_eq!(support::counter(&counts, "transforms.computed", "sent"), 2);
}

#[test]
fn lines_in_lines_out_through_stdin() {
    let bin = build("tests/pipelines/shout_lines.yaml");
    let output = run(&bin, &[], b"hello\n\n  \nworld wide\nlast line without newline");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "HELLO\nWORLD WIDE\nLAST LINE WITHOUT NEWLINE\n"
    );
}

/// Stdout redirected to a regular file is written by the pipeline's thread itself (a
/// pipe by a writer thread): every record arrives, in order, after what `>>` kept.
#[test]
fn stdout_redirected_to_a_file_gets_every_line_in_order() {
    let bin = build("tests/pipelines/shout_lines.yaml");
    let dir = support::workdir("stdout_to_a_file");
    let lines: Vec<String> = (0..20_000).map(|i| format!("line {i}")).collect();
    let input = lines.join("\n");
    let out_path = dir.join("out.txt");
    fs::write(&out_path, "kept\n").unwrap();
    let out = fs::OpenOptions::new().append(true).open(&out_path).unwrap();
    let mut child = Command::new(&bin)
        .stdin(std::process::Stdio::piped())
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let expected: String = lines.iter().map(|l| format!("{}\n", l.to_uppercase())).collect();
    assert_eq!(fs::read_to_string(&out_path).unwrap(), format!("kept\n{expected}"));
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "sinks.out", "sent"), 20_000);
}

#[test]
fn binary_has_help_version_and_rejects_bad_settings() {
    let bin = build("pipelines/quickstart.yaml");
    let version = run(&bin, &["--version"], b"");
    let text = String::from_utf8_lossy(&version.stdout);
    let hash =
        rill::validate::spec_hash(&fs::read_to_string(support::repo().join("pipelines/quickstart.yaml")).unwrap());
    assert!(text.starts_with("quickstart ") && text.contains(&hash), "{text}");
    let help = run(&bin, &["--help"], b"");
    assert!(String::from_utf8_lossy(&help.stdout).contains("sources.sensors.count"));
    let unknown = run(&bin, &["--set", "sources.nope.path=x"], b"");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("sources.sensors.count"));
    let bin = build("pipelines/hot_readings.yaml");
    let missing = Command::new(&bin)
        .args(["--set", "sources.readings.path=${NOT_SET_ANYWHERE}"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("NOT_SET_ANYWHERE"));
}

/// `--threads` and `$RILL_THREADS`: the start says how many threads the run uses, and a
/// count that is not a positive integer is refused before anything starts.
#[test]
fn the_thread_count_comes_from_the_option_or_the_environment() {
    let bin = build("pipelines/quickstart.yaml");
    let started = |args: &[&str], env: Option<&str>| -> (Option<i32>, Option<Value>, String) {
        let mut cmd = Command::new(&bin);
        cmd.args(["--set", "sources.sensors.count=10"]).args(args);
        match env {
            Some(v) => cmd.env("RILL_THREADS", v),
            None => cmd.env_remove("RILL_THREADS"),
        };
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = stderr
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["msg"] == "pipeline started");
        (out.status.code(), line.map(|l| l["threads"].clone()), stderr)
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(started(&[], None).1, Some(json!(cores)), "the cores by default");
    assert_eq!(started(&[], Some("3")).1, Some(json!(3)));
    assert_eq!(
        started(&["--threads", "1"], Some("3")).1,
        Some(json!(1)),
        "the option wins"
    );
    let (code, line, stderr) = started(&[], Some("many"));
    assert_eq!((code, line), (Some(2), None), "{stderr}");
    assert!(
        stderr.contains("RILL_THREADS=`many` must be a positive integer"),
        "{stderr}"
    );
    let (code, _, stderr) = started(&["--threads", "0"], None);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("`--threads 0` must be a positive integer"), "{stderr}");
}

#[test]
fn sigterm_stops_an_unbounded_pipeline_cleanly() {
    let bin = build("pipelines/quickstart.yaml");
    let running = support::start(Command::new(&bin).args([
        "--set",
        "sources.sensors.count=",
        "--set",
        "sources.sensors.rate=500",
    ]));
    running.signal("TERM");
    let output = running.wait();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let counts = support::counters(&output.stderr);
    assert_eq!(
        support::counter(&counts, "sinks.console", "sent"),
        json_lines(&output.stdout).len() as u64,
        "every record counted as sent was written before the exit"
    );
}

#[test]
fn follow_mode_picks_up_appended_lines_until_stopped() {
    let bin = build("tests/pipelines/follow_file.yaml");
    let dir = support::workdir("follow");
    let events = dir.join("events.jsonl");
    let out = dir.join("clicks.jsonl");
    fs::write(&events, "{\"id\":1,\"kind\":\"click\"}\n{\"id\":2,\"kind\":\"view\"}\n").unwrap();
    let running = support::start(Command::new(&bin).env("EVENTS", &events).env("OUT", &out));
    let written = |n: usize| {
        let out = &out;
        move || support::json_lines_so_far(out).len() >= n
    };
    support::wait_until("the first click", written(1));
    {
        let mut f = fs::OpenOptions::new().append(true).open(&events).unwrap();
        f.write_all(b"{\"id\":3,\"kind\":\"click\"}\n{\"id\":4,\"ki").unwrap();
        f.flush().unwrap();
        // Half a line is held back until its end arrives.
        support::wait_until("the appended click", written(2));
        f.write_all(b"nd\":\"click\"}\n").unwrap();
    }
    support::wait_until("the click completed later", written(3));
    // Rename rotation: the file is moved away and a new one takes its path.
    fs::rename(&events, dir.join("events.jsonl.1")).unwrap();
    fs::write(&events, "{\"id\":5,\"kind\":\"click\"}\n{\"id\":6,\"kind\":\"view\"}\n").unwrap();
    support::wait_until("the click of the new file", written(4));
    running.signal("INT");
    let output = running.wait();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        json_lines(&fs::read(&out).unwrap()),
        vec![
            json!({"id":1,"kind":"click"}),
            json!({"id":3,"kind":"click"}),
            json!({"id":4,"kind":"click"}),
            json!({"id":5,"kind":"click"})
        ]
    );
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "sources.events", "received"), 6);
    assert_eq!(support::counter(&counts, "transforms.clicks", "filtered"), 2);
}

#[test]
fn rill_check_reports_errors_with_exit_code_and_location() {
    let output = support::rill()
        .arg("check")
        .arg(support::repo().join("tests/errors/unknown_input.yaml"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(
        text.contains("unknown input `reading`")
            && text.contains("unknown_input.yaml:8:12")
            && text.contains("did you mean `readings`?"),
        "{text}"
    );
    let ok = support::rill()
        .arg("check")
        .arg(support::repo().join("pipelines/quickstart.yaml"))
        .output()
        .unwrap();
    assert!(ok.status.success());
}

#[test]
fn rill_works_from_any_folder() {
    // The installed CLI carries the runtime: build from a folder outside the repository.
    let dir = support::workdir("elsewhere");
    fs::copy(
        support::repo().join("tests/pipelines/shout_lines.yaml"),
        dir.join("p.yaml"),
    )
    .unwrap();
    let output = support::rill()
        .current_dir(&dir)
        .args(["build", "p.yaml", "--release", "-o", "shout"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let run = run(&dir.join("shout"), &[], b"abc\n");
    assert_eq!(run.stdout, b"ABC\n");
}

/// The window examples no other test runs: each is built and run on generated input,
/// its counters add up, and every record read is accounted for in a window.
#[test]
fn window_examples_run_and_account_for_every_record() {
    let dir = support::workdir("window_examples");
    let mut rng = Rng(11);
    // sensor_windows: readings of 5 devices over 2 minutes, some out of order, some bad.
    let mut readings = String::new();
    for i in 0..2_000i64 {
        let ts = 1_704_067_200_000 + i * 60 - rng.below(3_000) as i64;
        let status = if rng.below(10) == 0 { "error" } else { "ok" };
        readings.push_str(&format!(
            "{{\"device_id\":\"dev-{}\",\"ts\":{ts},\"temperature\":{},\"status\":\"{status}\"}}\n",
            rng.below(5),
            rng.decimal(10.0, 40.0)
        ));
    }
    readings.push_str("{\"device_id\": 7}\n");
    fs::write(dir.join("readings.jsonl"), &readings).unwrap();
    let bin = build("pipelines/sensor_windows.yaml");
    let output = Command::new(&bin)
        .env("READINGS_PATH", dir.join("readings.jsonl"))
        .env("WINDOWS_PATH", dir.join("windows.jsonl"))
        .env("LATE_PATH", dir.join("late.jsonl"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let counts = support::counters(&output.stderr);
    let count = |c: &str, k: &str| support::counter(&counts, c, k);
    assert_eq!(count("sources.readings", "received"), 2_001);
    assert_eq!(count("sources.readings", "dead_lettered"), 1);
    let late = json_lines(&fs::read(dir.join("late.jsonl")).unwrap()).len() as u64;
    assert_eq!(
        count("windows.per_device", "sent"),
        late,
        "late records went to the late file"
    );
    assert_eq!(count("windows.per_device", "aggregated") + late, 2_000);
    let windows = json_lines(&fs::read(dir.join("windows.jsonl")).unwrap());
    assert_eq!(count("transforms.busy", "sent"), windows.len() as u64);

    // events_per_window: to CSV.
    let mut events = String::new();
    for i in 0..3_000i64 {
        let kind = ["click", "view", "buy"][rng.below(3) as usize];
        events.push_str(&format!(
            "{{\"kind\":\"{kind}\",\"ts\":{},\"bytes\":{}}}\n",
            i * 37,
            rng.below(5_000)
        ));
    }
    fs::write(dir.join("events.jsonl"), &events).unwrap();
    let bin = build("pipelines/events_per_window.yaml");
    let output = Command::new(&bin)
        .env("EVENTS_PATH", dir.join("events.jsonl"))
        .env("COUNTS_PATH", dir.join("counts.csv"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "windows.per_kind", "aggregated"), 3_000);
    let csv = fs::read_to_string(dir.join("counts.csv")).unwrap();
    let total: u64 = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(3).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, 3_000, "the windows' counts add up to the input:\n{csv}");

    // sliding_average: a generator into hopping windows on stdout.
    let bin = build("pipelines/sliding_average.yaml");
    let output = run(&bin, &["--set", "sources.readings.count=5000"], b"");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let counts = support::counters(&output.stderr);
    let aggregated = support::counter(&counts, "windows.last_10s", "aggregated");
    let late = support::counter(&counts, "windows.last_10s", "late");
    assert_eq!(aggregated + late, 5_000);
    // Each reading is in two 10 s windows sliding by 5 s.
    let in_windows: u64 = json_lines(&output.stdout)
        .iter()
        .map(|r| r["readings"].as_u64().unwrap())
        .sum();
    assert_eq!(in_windows, 2 * aggregated);
}

/// Worker threads decode batches ahead of the pipeline thread (`--threads`), which
/// still runs every record through windows and tables in input order: what each window
/// and table example writes is the same, byte for byte, for 1, 2, 3 and 8 threads and
/// batches of 1, 7 and 1,024 records. (word_count's table emits every 10 s of the
/// clock, so its output depends on timing: it is left out.)
#[test]
fn window_and_table_examples_write_the_same_bytes_for_any_threads_and_batch_size() {
    let dir = support::workdir("e2e_threads");
    let mut rng = Rng(29);
    let mut readings = String::new();
    let mut events = String::new();
    let mut clicks = String::new();
    for i in 0..6_000i64 {
        let ts = 1_704_067_200_000 + i * 60 - rng.below(5_000) as i64;
        let status = if rng.below(10) == 0 { "error" } else { "ok" };
        readings.push_str(&format!(
            "{{\"device_id\":\"dev-{}\",\"ts\":{ts},\"temperature\":{},\"status\":\"{status}\"}}\n",
            rng.below(7),
            rng.decimal(10.0, 40.0)
        ));
        let kind = ["click", "view", "buy"][rng.below(3) as usize];
        events.push_str(&format!(
            "{{\"kind\":\"{kind}\",\"ts\":{},\"bytes\":{}}}\n",
            i * 37,
            rng.below(5_000)
        ));
        clicks.push_str(&format!(
            "{{\"user_id\":\"u{}\",\"url\":\"/p/{}\",\"ts\":{ts}}}\n",
            rng.below(50),
            rng.below(20)
        ));
        if i % 997 == 0 {
            readings.push_str("{\"device_id\": 7}\n");
            clicks.push_str("not json\n");
        }
    }
    for (name, text) in [
        ("readings.jsonl", &readings),
        ("events.jsonl", &events),
        ("clicks.jsonl", &clicks),
    ] {
        fs::write(dir.join(name), text).unwrap();
    }
    let examples: [(&str, &[(&str, &str)]); 3] = [
        (
            "pipelines/sensor_windows.yaml",
            &[
                ("READINGS_PATH", "readings.jsonl"),
                ("WINDOWS_PATH", "windows.jsonl"),
                ("LATE_PATH", "late.jsonl"),
            ],
        ),
        (
            "pipelines/events_per_window.yaml",
            &[("EVENTS_PATH", "events.jsonl"), ("COUNTS_PATH", "counts.csv")],
        ),
        (
            "pipelines/clicks_per_user.yaml",
            &[("CLICKS_PATH", "clicks.jsonl"), ("COUNTS_PATH", "user_counts.jsonl")],
        ),
    ];
    for (spec, files) in examples {
        let bin = build(spec);
        let written: Vec<&str> = files.iter().skip(1).map(|(_, f)| *f).collect();
        let run_with = |threads: &str, batch: &str| -> (Vec<Vec<u8>>, Vec<Value>) {
            let mut cmd = Command::new(&bin);
            cmd.args(["--threads", threads, "--batch-size", batch]);
            for (var, file) in files {
                cmd.env(var, dir.join(file));
            }
            let output = cmd.output().unwrap();
            assert!(
                output.status.success(),
                "{spec}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let outputs = written
                .iter()
                .map(|f| fs::read(dir.join(f)).unwrap_or_default())
                .collect();
            let mut letters = dead_letters(&output.stderr);
            for letter in &mut letters {
                letter.as_object_mut().unwrap().remove("ts");
            }
            (outputs, letters)
        };
        let (reference, letters) = run_with("1", "1024");
        assert!(reference[0].len() > 1_000, "{spec} wrote {} bytes", reference[0].len());
        for threads in ["1", "2", "3", "8"] {
            for batch in ["1", "7", "1024"] {
                let (got, got_letters) = run_with(threads, batch);
                for ((file, got), expected) in written.iter().zip(&got).zip(&reference) {
                    assert!(
                        got == expected,
                        "{spec}: --threads {threads} --batch-size {batch} changed {file}"
                    );
                }
                assert_eq!(got_letters, letters, "{spec}: --threads {threads} --batch-size {batch}");
            }
        }
    }
}

/// With three threads or more, a tumbling or hopping window whose records cannot fail
/// to be added, a table emitting on an interval, and session and count windows and a
/// table emitting each change to files of their own, are split by key hash across the
/// workers (the log says so): each part fires on its worker and the pipeline thread
/// merges their rows (a change table's: in the records' order). What it writes (rows,
/// late records, dead letters of late records and of lines that do not decode) is the
/// same, byte for byte, as with one thread, for 2, 3 and 8 threads and batches of 1, 7
/// and 1,024 records, and with `--split-windows off`; the counters add up.
#[test]
fn windows_and_tables_split_by_key_write_the_same_bytes_for_any_threads_and_batch_size() {
    let dir = support::workdir("e2e_split");
    let mut rng = Rng(53);
    let mut readings = String::new();
    let mut twelve_behind = 0;
    for i in 0..30_000i64 {
        // Up to 3 s out of order (the watermark allows 2 s), and one in 500 12 s late.
        let behind = if rng.below(500) == 0 {
            twelve_behind += 1;
            12_000
        } else {
            rng.below(3_000) as i64
        };
        let ts = 1_704_067_200_000 + i * 2 - behind;
        readings.push_str(&format!(
            "{{\"sensor\":\"s{}\",\"site\":{},\"ts\":{ts},\"value\":{}}}\n",
            rng.below(400),
            rng.below(6),
            rng.decimal(-20.0, 60.0)
        ));
        if i % 1_499 == 0 {
            readings.push_str("{\"sensor\": 7}\n");
        }
    }
    fs::write(dir.join("readings.jsonl"), readings).unwrap();
    let bin = build("tests/pipelines/win_split.yaml");
    let outputs = [
        ("SENSORS_PATH", "sensors.jsonl"),
        ("LATE_PATH", "late.jsonl"),
        ("SITES_PATH", "sites.jsonl"),
        ("TOTALS_PATH", "totals.jsonl"),
        ("CHANGES_PATH", "changes.jsonl"),
        ("VISITS_PATH", "visits.jsonl"),
        ("TENS_PATH", "tens.jsonl"),
    ];
    let files = outputs.map(|(_, file)| file);
    // The pipeline with `args`, each output to its file but `full`'s, to /dev/full.
    let run = |args: &[&str], full: Option<&str>| {
        let mut cmd = Command::new(&bin);
        cmd.args(args).env("READINGS_PATH", dir.join("readings.jsonl"));
        for (var, file) in outputs {
            match full == Some(var) {
                true => cmd.env(var, "/dev/full"),
                false => cmd.env(var, dir.join(file)),
            };
        }
        cmd.output().unwrap()
    };
    let run_with = |threads: &str, batch: &str, split: &str| {
        let output = run(
            &["--threads", threads, "--batch-size", batch, "--split-windows", split],
            None,
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        let logged = |kind: &str| stderr.matches(&format!("{kind} keys split by hash")).count();
        let workers = threads.parse::<usize>().unwrap() - 1;
        let split_here = workers >= 2 && split == "on";
        assert_eq!(
            (logged("window"), logged("table")),
            if split_here { (4, 2) } else { (0, 0) },
            "--threads {threads} --split-windows {split}: {stderr}"
        );
        let c = counters(&output.stderr);
        let table = "tables.sensor_totals";
        assert_eq!(counter(&c, table, "received"), counter(&c, "sources.readings", "sent"));
        assert_eq!(counter(&c, table, "received"), counter(&c, table, "aggregated"));
        // A row for every record, each written.
        let changes = "tables.sensor_changes";
        let sent = counter(&c, "sources.readings", "sent");
        assert_eq!(
            [
                counter(&c, changes, "received"),
                counter(&c, changes, "aggregated"),
                counter(&c, changes, "emitted"),
                counter(&c, "sinks.changes", "sent")
            ],
            [sent; 4],
            "{changes}"
        );
        for window in ["windows.per_sensor", "windows.per_site", "windows.visits"] {
            let received = counter(&c, window, "received");
            assert_eq!(received, counter(&c, "sources.readings", "sent"), "{window}");
            assert_eq!(
                received,
                counter(&c, window, "aggregated") + counter(&c, window, "late"),
                "{window}"
            );
        }
        let mut letters = dead_letters(&output.stderr);
        for letter in &mut letters {
            letter.as_object_mut().unwrap().remove("ts");
        }
        let written: Vec<Vec<u8>> = files.iter().map(|f| fs::read(dir.join(f)).unwrap()).collect();
        (written, letters, c)
    };
    let (reference, letters, c) = run_with("1", "1024", "on");
    assert!(json_lines(&reference[0]).len() > 5_000 && json_lines(&reference[2]).len() > 10_000);
    // The table emits its 400 sensors' rows at each 3-s boundary (20 of them) and at the
    // end of input.
    let totals = json_lines(&reference[3]);
    assert!(totals.len() > 5_000, "{} rows", totals.len());
    // The change table: a row per reading (the lines that do not decode are none), each
    // its sensor's count so far.
    let changes = json_lines(&reference[4]);
    assert_eq!(changes.len(), 30_000);
    let mut seen = std::collections::HashMap::new();
    for row in &changes {
        let n = seen.entry(row["sensor"].as_str().unwrap().to_owned()).or_insert(0);
        *n += 1;
        assert_eq!(row["n"], *n, "{row}");
    }
    let late = counter(&c, "windows.per_sensor", "late");
    assert!(
        late > 30 && json_lines(&reference[1]).len() as u64 == late,
        "{late} late"
    );
    let decode = letters.iter().filter(|l| l["component"] == "sources.readings").count();
    let late_letters = |window: &str| letters.iter().filter(|l| l["component"] == window).count() as u64;
    assert!(
        decode == 21
            && late_letters("windows.per_site") == counter(&c, "windows.per_site", "late")
            && late_letters("windows.visits") == counter(&c, "windows.visits", "late"),
        "{letters:?}"
    );
    // Sessions: only the readings 12 s behind can be late (the gap is 5 s), and not
    // all of them are: some fall in their key's session, still open.
    let visits = json_lines(&reference[5]);
    let late_visits = counter(&c, "windows.visits", "late");
    assert!(
        visits.len() > 5_000 && late_visits > 0 && late_visits < twelve_behind,
        "{} sessions, {late_visits} of {twelve_behind} readings 12 s behind late",
        visits.len()
    );
    let counted: u64 = visits.iter().map(|v| v["n"].as_u64().unwrap()).sum();
    assert_eq!(
        counted,
        counter(&c, "windows.visits", "aggregated"),
        "every reading in a session"
    );
    // Count windows: every reading in one, each sensor's full windows then (the end of
    // input) its partial one.
    let tens = json_lines(&reference[6]);
    let counted: u64 = tens.iter().map(|v| v["n"].as_u64().unwrap()).sum();
    let full = tens.iter().filter(|v| v["n"] == 10).count();
    assert!(
        counted == counter(&c, "sources.readings", "sent") && full > 2_500 && tens.len() - full <= 400,
        "{} windows, {full} full, of {counted} readings",
        tens.len()
    );
    let runs = ["2", "3", "8"]
        .into_iter()
        .flat_map(|threads| ["1", "7", "1024"].map(|batch| (threads, batch, "on")));
    for (threads, batch, split) in runs.chain([("3", "7", "off")]) {
        let (written, got_letters, _) = run_with(threads, batch, split);
        let run = format!("--threads {threads} --batch-size {batch} --split-windows {split}");
        for ((file, got), expected) in files.iter().zip(&written).zip(&reference) {
            assert!(got == expected, "{run} changed {file}");
        }
        assert!(got_letters == letters, "{run} changed the dead letters");
    }
    // Split, into a full disk: the run fails and says so, every row the window built is
    // counted at the sink as lost, and the other window's sink wrote every row it was
    // given. (The run stops at the end of the step whose write failed, its windows
    // firing what they hold: a loaded machine reads the input in more than one step,
    // so how many rows there are by then varies.)
    let output = run(&["--threads", "3"], Some("SENSORS_PATH"));
    let rows = json_lines(&reference[0]).len() as u64;
    let built = counter(&counters(&output.stderr), "windows.per_sensor", "emitted");
    assert!(built > 0 && built <= rows, "{built} of {rows} rows built");
    let c = support::failed_on_a_full_disk(&output, "sinks.sensors", built);
    let sites = json_lines(&fs::read(dir.join(files[2])).unwrap()).len() as u64;
    assert!(
        sites > 0 && sites == counter(&c, "sinks.sites", "sent") && sites == counter(&c, "windows.per_site", "emitted"),
        "the other window's file holds every row it built ({sites} lines): {c:?}"
    );
    // The split change table into a full disk: the run fails and says so, and every
    // record it took gave a row, each counted lost at its sink (none left in a part).
    let output = run(&["--threads", "3"], Some("CHANGES_PATH"));
    let c = counters(&output.stderr);
    let taken = counter(&c, "tables.sensor_changes", "received");
    assert!(taken > 0, "{c:?}");
    assert_eq!(
        [
            counter(&c, "tables.sensor_changes", "aggregated"),
            counter(&c, "tables.sensor_changes", "emitted")
        ],
        [taken; 2]
    );
    support::failed_on_a_full_disk(&output, "sinks.changes", taken);
    // Split sessions and count windows into a full disk: the run fails and says so,
    // and every row they built is counted lost at the sink (none left in a part).
    for (file, window, sink) in [
        ("VISITS_PATH", "windows.visits", "sinks.sessions"),
        ("TENS_PATH", "windows.tens", "sinks.counts"),
    ] {
        let output = run(&["--threads", "3"], Some(file));
        let built = counter(&counters(&output.stderr), window, "emitted");
        assert!(built > 0, "{}", String::from_utf8_lossy(&output.stderr));
        support::failed_on_a_full_disk(&output, sink, built);
    }
}

/// `events.jsonl` in `dir` for `tests/pipelines/chain_failures.yaml`: 20,000 events (1
/// in 50 dividing by zero, 1 in 200 with a square JSON cannot hold, 1 in 30 with a word
/// that is no number or no words), and between them lines that do not decode and blank
/// ones.
fn write_chain_events(dir: &std::path::Path) {
    let mut rng = Rng(41);
    let mut events = String::new();
    for i in 0..20_000i64 {
        let divisor = if rng.below(50) == 0 { 0 } else { 1 + rng.below(9) as i64 };
        let x = if rng.below(200) == 0 {
            1e200
        } else {
            rng.decimal(-50.0, 50.0)
        };
        let words = match rng.below(30) {
            0 => format!("{} twelve {}", rng.below(100), rng.below(100)),
            1 => String::new(),
            _ => format!("{} {}", rng.below(1_000), rng.below(1_000)),
        };
        events.push_str(&format!(
            "{{\"key\":\"k{}\",\"n\":{i},\"divisor\":{divisor},\"words\":\"{words}\",\"x\":{x}}}\n",
            rng.below(40)
        ));
        match rng.below(400) {
            0 => events.push_str("not json\n"),
            1 => events.push_str("{\"key\":\"k1\",\"n\":\"seven\"}\n"),
            2 => events.push('\n'),
            _ => {}
        }
    }
    fs::write(dir.join("events.jsonl"), &events).unwrap();
}

/// `chain_failures` reading `dir`'s events, its ratios written to `ratios`, with
/// `args`.
fn run_chain(dir: &std::path::Path, ratios: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(build("tests/pipelines/chain_failures.yaml"))
        .args(args)
        .env("EVENTS_PATH", dir.join("events.jsonl"))
        .env("RAW_PATH", dir.join("raw.jsonl"))
        .env("RATIOS_PATH", ratios)
        .env("NUMBERS_PATH", dir.join("numbers.jsonl"))
        .env("WORDS_PATH", dir.join("words.txt"))
        .env("BAD_PATH", dir.join("bad.jsonl"))
        .output()
        .unwrap()
}

/// A source whose downstream is stateless to its JSON files runs it where its batches
/// are decoded (`mod chain_<source>`, on the worker threads): with lines that do not
/// decode, a division by zero in one branch of a fan-out, explode elements that fail
/// one by one and values JSON cannot hold, every file (JSON and lines), the dead
/// letters and the counters are the same for 1, 2, 3 and 8 threads and batches of 1, 7 and 1,024.
#[test]
fn a_stateless_chain_writes_the_same_bytes_letters_and_counts_for_any_threads_and_batch_size() {
    let emitted = support::rill()
        .args(["emit", "tests/pipelines/chain_failures.yaml"])
        .current_dir(support::repo())
        .output()
        .unwrap();
    let code = String::from_utf8_lossy(&emitted.stdout);
    assert!(
        code.contains("mod chain_events") && code.contains("Source<JsonDecoder<Event>, chain_events::Nodes>"),
        "the source runs its downstream where it decodes:\n{code}"
    );
    let dir = support::workdir("e2e_chain");
    write_chain_events(&dir);
    let files = ["raw.jsonl", "ratios.jsonl", "numbers.jsonl", "words.txt"];
    let run_with = |threads: &str, batch: &str| -> (Vec<Vec<u8>>, Vec<Value>, Value) {
        let output = run_chain(
            &dir,
            &dir.join(files[1]),
            &["--threads", threads, "--batch-size", batch],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "--threads {threads} --batch-size {batch}: {stderr}"
        );
        let written = files.iter().map(|f| fs::read(dir.join(f)).unwrap()).collect();
        let mut letters = json_lines(&fs::read(dir.join("bad.jsonl")).unwrap());
        for letter in &mut letters {
            letter.as_object_mut().unwrap().remove("ts");
        }
        (written, letters, Value::Object(counters(&output.stderr)))
    };
    let (reference, letters, counts) = run_with("1", "1024");
    let by_component = |component: &str| letters.iter().filter(|l| l["component"] == component).count();
    for component in [
        "sources.events",
        "transforms.ratios",
        "transforms.numbers",
        "sinks.ratio_file",
    ] {
        assert!(
            by_component(component) > 5,
            "{component}: {} dead letters",
            by_component(component)
        );
    }
    assert!(reference.iter().all(|f| f.len() > 10_000), "every file has records");
    assert_eq!(
        counts["sinks.raw"]["sent"],
        json!(20_000),
        "every event that decoded is in raw.jsonl"
    );
    for threads in ["1", "2", "3", "8"] {
        for batch in ["1", "7", "1024"] {
            let (got, got_letters, got_counts) = run_with(threads, batch);
            for ((file, got), expected) in files.iter().zip(&got).zip(&reference) {
                assert!(
                    got == expected,
                    "--threads {threads} --batch-size {batch} changed {file}"
                );
            }
            assert!(
                got_letters == letters,
                "--threads {threads} --batch-size {batch} changed the dead letters"
            );
            assert_eq!(got_counts, counts, "--threads {threads} --batch-size {batch}");
        }
    }
}

/// A stateless chain's output on a full disk, its records encoded on the workers: the
/// run fails saying how many records were not written, every other file holds what
/// was sent to it, and the counters add up.
#[test]
fn a_stateless_chain_into_a_full_disk_loses_no_record_unsaid() {
    let dir = support::workdir("e2e_chain_full");
    write_chain_events(&dir);
    let output = run_chain(
        &dir,
        std::path::Path::new("/dev/full"),
        &["--threads", "3", "--batch-size", "7"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let counts = counters(&output.stderr);
    let given =
        counter(&counts, "sinks.ratio_file", "received") - counter(&counts, "sinks.ratio_file", "dead_lettered");
    // The first poll reads batches ahead: the run stops after them.
    assert!(given > 1_000, "{given} records reached the full disk's sink");
    support::failed_on_a_full_disk(&output, "sinks.ratio_file", given);
    assert!(stderr.contains(&format!("({given} records not written)")), "{stderr}");
    for (file, sink) in [("raw.jsonl", "sinks.raw"), ("numbers.jsonl", "sinks.number_file")] {
        let written = json_lines(&fs::read(dir.join(file)).unwrap()).len() as u64;
        assert!(written > 1_000, "{file}: {written} records");
        assert_eq!(
            written,
            counter(&counts, sink, "sent"),
            "a sibling file has what was sent to it"
        );
        assert_eq!(counter(&counts, sink, "dropped"), 0, "{sink}");
    }
}

// ---------------------------------------------------------------------------------------
// Every example, and the docs' worked example

/// Every example of `pipelines/` (but the Kafka ones, built by `tests/kafka.rs`)
/// compiles in one cargo build with warnings denied (see `support::examples`); the
/// tests of this file and `tests/windows.rs` run each of those binaries (the broker
/// examples: `tests/mqtt.rs`, `tests/redis.rs`, `tests/pulsar.rs`).
#[test]
fn every_example_compiles_without_warnings_in_one_build() {
    let examples = support::examples();
    let mut names: Vec<&str> = examples.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "clicks_per_user",
            "csv_cleanup",
            "events_per_window",
            "hot_readings",
            "login_purchase",
            "mqtt_sensor_alerts",
            "orders_shipments",
            "payment_unconfirmed",
            "pulsar_events",
            "quickstart",
            "readings_enriched",
            "redis_sensor_stream",
            "sensor_windows",
            "sliding_average",
            "word_count"
        ]
    );
    for bin in examples.values() {
        let version = run(bin, &["--version"], b"");
        assert!(version.status.success(), "{}", bin.display());
    }
}

/// The text of a section of a Markdown file: from its heading to the next heading of
/// the same level.
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no `{heading}`"));
    let level = &heading[..heading.find(' ').unwrap() + 1];
    let rest = &doc[start + heading.len() + 2..];
    &rest[..rest.find(&format!("\n{level}")).unwrap_or(rest.len())]
}

/// The fenced code blocks of `text` in language `lang`, in order.
fn code_blocks(text: &str, lang: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            Some(block) if line.trim() == "```" => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// docs/language.md works a window example through: its spec (the `## Windows` block,
/// with the source of `### Event time and watermarks` and the schema of the example it
/// is shortened from), three readings and the rows `per_device` emits. The test takes
/// all of it from the doc's text, so the doc cannot drift from what the binary does.
#[test]
fn the_docs_worked_window_example_emits_the_rows_the_docs_show() {
    let doc = fs::read_to_string(support::repo().join("docs/language.md")).unwrap();
    let windows = section(&doc, "## Windows");
    let parts = code_blocks(windows, "yaml");
    let examples = code_blocks(windows, "json");
    let (spec_part, input, shown) = (&parts[0], &examples[0], &examples[1]);
    let source_part = &code_blocks(section(&doc, "### Event time and watermarks"), "yaml")[0];
    let original: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(support::repo().join("pipelines/sensor_windows.yaml")).unwrap())
            .unwrap();
    let read = |text: &str| serde_yaml::from_str::<serde_yaml::Mapping>(text).unwrap();
    let mut spec = serde_yaml::Mapping::new();
    spec.insert("name".into(), "docs_worked_example".into());
    spec.insert("schemas".into(), original["schemas"].clone());
    spec.extend(read(source_part));
    spec.extend(read(spec_part));
    // The doc shows what `per_device` emits; its sinks read `busy`: read it directly too.
    let sinks = spec.get_mut("sinks").unwrap().as_mapping_mut().unwrap();
    sinks.insert(
        "all".into(),
        read("{ type: file, input: per_device, path: per_device.jsonl }").into(),
    );
    let dir = support::workdir("docs_worked_example");
    let spec_path = dir.join("docs_worked_example.yaml");
    fs::write(&spec_path, serde_yaml::to_string(&spec).unwrap()).unwrap();
    fs::write(dir.join("readings.jsonl"), input).unwrap();
    let bin = build(spec_path.to_str().unwrap());
    let output = Command::new(&bin).current_dir(&dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    support::counters(&output.stderr);
    let got = fs::read_to_string(dir.join("per_device.jsonl")).unwrap();
    let got: Vec<&str> = got.lines().collect();
    let shown: Vec<&str> = shown.lines().collect();
    assert_eq!(
        got.len(),
        3,
        "two rows shown, then the second window at the end: {got:?}"
    );
    assert_eq!(got[..2], shown[..], "the rows docs/language.md shows");
    let last: Value = serde_json::from_str(got[2]).unwrap();
    assert_eq!(last["window_start"], 1_700_000_010_000i64, "{last}");
}

// ---------------------------------------------------------------------------------------
// Error policies and regular expressions in a generated binary: error_policies.yaml

#[test]
fn on_error_drop_counts_and_goes_on_and_fail_stops_the_binary() {
    let bin = build("tests/pipelines/error_policies.yaml");
    let dir = support::workdir("error_policies");
    let (lenient, strict, out) = (
        dir.join("lenient.jsonl"),
        dir.join("strict.jsonl"),
        dir.join("out.jsonl"),
    );
    let bad = "{\"name\": \"abc-9\", \"qty\": \"many\"}\n";
    let good = "{\"name\":\"abc-1\",\"qty\":1}\n{\"name\":\"ABC-2\",\"qty\":2}\n{\"name\":\"xyz-77\",\"qty\":3}\n{\"name\":\"ab-3\",\"qty\":4}\n";
    let run_with = |lenient_text: &str, strict_text: &str| {
        fs::write(&lenient, lenient_text).unwrap();
        fs::write(&strict, strict_text).unwrap();
        let _ = fs::remove_file(&out);
        Command::new(&bin)
            .env("LENIENT_PATH", &lenient)
            .env("STRICT_PATH", &strict)
            .env("OUT_PATH", &out)
            .output()
            .unwrap()
    };

    // `drop`: the bad record is counted, written nowhere, and the rest flows.
    let output = run_with(&format!("{bad}{good}"), "");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(dead_letters(&output.stderr), Vec::<Value>::new());
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "sources.lenient", "dropped"), 1);
    // `matches`: lowercase letters, a dash, digits; the whole name.
    assert_eq!(
        json_lines(&fs::read(&out).unwrap()),
        vec![json!({"name": "abc-1", "qty": 1}), json!({"name": "xyz-77", "qty": 3})]
    );
    assert_eq!(support::counter(&counts, "transforms.codes", "filtered"), 2);

    // `fail`: the bad record stops the binary with exit code 1, naming the reason.
    let output = run_with("", &format!("{good}{bad}"));
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("sources.strict") && logs.contains("qty"), "{logs}");
    assert_eq!(dead_letters(&output.stderr), Vec::<Value>::new());
}

// ---------------------------------------------------------------------------------------
// Nested objects, time encodings, keys and offsets: nested_keys_times.yaml

#[test]
fn nested_fields_time_encodings_keys_and_offsets() {
    let bin = build("tests/pipelines/nested_keys_times.yaml");
    let dir = support::workdir("nested_keys_times");
    // Unix seconds (one fractional) in `meta.ts`; `at` in RFC 3339 with several offsets.
    let t0 = 1_700_000_000i64; // on a 10 s boundary
    let input = [
        ("north", "d1", "2023-11-14T23:13:20+01:00", json!(t0 + 1), "a"),
        ("North", "d1", "2023-11-14T22:13:22.5Z", json!(t0 as f64 + 2.5), "b"),
        ("north", "d2", "2023-11-14T22:13:24Z", json!(t0 + 4), "a"),
        ("south", "d1", "2023-11-14T17:13:28-05:00", json!(t0 + 8), "c"),
        ("north", "d1", "2023-11-14T22:13:32Z", json!(t0 + 12), "a"),
    ];
    let lines: String = input
        .iter()
        .map(|(site, device, at, ts, origin)| {
            format!(
                "{}\n",
                json!({"site": site, "device": device, "at": at, "meta": {"ts": ts, "origin": origin}})
            )
        })
        .collect();
    fs::write(dir.join("readings.jsonl"), lines).unwrap();
    let path = |f: &str| dir.join(f);
    let output = Command::new(&bin)
        .env("READINGS_PATH", path("readings.jsonl"))
        .env("FLAT_PATH", path("flat.jsonl"))
        .env("DEVICES_PATH", path("devices.jsonl"))
        .env("SITES_PATH", path("sites.jsonl"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    support::counters(&output.stderr);
    assert_eq!(dead_letters(&output.stderr), Vec::<Value>::new());
    // Times are written in the field's own encoding: RFC 3339 in UTC with milliseconds,
    // Unix seconds as an integer when whole.
    let flat = fs::read_to_string(path("flat.jsonl")).unwrap();
    assert_eq!(
        flat.lines().take(2).collect::<Vec<_>>(),
        [
            r#"{"device":"d1","at":"2023-11-14T22:13:20.000Z","ts":1700000001,"origin":"a"}"#,
            r#"{"device":"d1","at":"2023-11-14T22:13:22.500Z","ts":1700000002.5,"origin":"b"}"#,
        ]
    );
    assert_eq!(flat.lines().count(), 5);
    let ms = |s: i64| s * 1000;
    // `offset: 3s`: windows [t0 − 7 s, t0 + 3 s), [t0 + 3 s, t0 + 13 s); keyed by
    // (site, device), so `North` is a site of its own.
    let at = |s: &str| s.to_string();
    assert_eq!(
        json_lines(&fs::read(path("devices.jsonl")).unwrap()),
        vec![
            json!({"site": "North", "device": "d1", "window_start": ms(t0 - 7), "window_end": ms(t0 + 3), "n": 1, "last_at": at("2023-11-14T22:13:22.500Z")}),
            json!({"site": "north", "device": "d1", "window_start": ms(t0 - 7), "window_end": ms(t0 + 3), "n": 1, "last_at": at("2023-11-14T22:13:20.000Z")}),
            json!({"site": "north", "device": "d1", "window_start": ms(t0 + 3), "window_end": ms(t0 + 13), "n": 1, "last_at": at("2023-11-14T22:13:32.000Z")}),
            json!({"site": "north", "device": "d2", "window_start": ms(t0 + 3), "window_end": ms(t0 + 13), "n": 1, "last_at": at("2023-11-14T22:13:24.000Z")}),
            json!({"site": "south", "device": "d1", "window_start": ms(t0 + 3), "window_end": ms(t0 + 13), "n": 1, "last_at": at("2023-11-14T22:13:28.000Z")}),
        ]
    );
    // A computed key: `upper(site)` puts `north` and `North` together.
    assert_eq!(
        json_lines(&fs::read(path("sites.jsonl")).unwrap()),
        vec![
            json!({"site": "NORTH", "window_start": ms(t0), "window_end": ms(t0 + 10), "n": 3}),
            json!({"site": "SOUTH", "window_start": ms(t0), "window_end": ms(t0 + 10), "n": 1}),
            json!({"site": "NORTH", "window_start": ms(t0 + 10), "window_end": ms(t0 + 20), "n": 1}),
        ]
    );
}

// ---------------------------------------------------------------------------------------
// The CLI: rill run, rill emit, --profile edge

#[test]
fn rill_emit_prints_the_generated_code_and_rill_run_builds_and_runs() {
    let spec = support::repo().join("tests/pipelines/shout_lines.yaml");
    let emitted = support::rill().arg("emit").arg(&spec).output().unwrap();
    assert!(emitted.status.success(), "{}", String::from_utf8_lossy(&emitted.stderr));
    let compiled = rill::compile_file(&spec).ok().unwrap();
    assert_eq!(String::from_utf8(emitted.stdout).unwrap(), compiled.main_rs);

    // `rill run`: arguments after `--` go to the binary; its exit code is rill's.
    let mut child = support::rill()
        .args(["run", "--release"])
        .arg(&spec)
        .args(["--", "--batch-size", "1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"one\ntwo\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ONE\nTWO\n");
    // The binary's JSON log lines, after rill's own output.
    let logs: Vec<u8> = String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.starts_with('{'))
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    let counts = support::counters(&logs);
    assert_eq!(support::counter(&counts, "sinks.out", "sent"), 2);
    let bad = support::rill()
        .args(["run", "--release"])
        .arg(&spec)
        .args(["--", "--set", "nope=1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", String::from_utf8_lossy(&bad.stderr));
}

/// `--profile edge`: size-optimised with LTO, smaller than the release build, same output.
#[test]
fn profile_edge_builds_a_smaller_binary_that_works() {
    let release = build("tests/pipelines/shout_lines.yaml");
    let dir = support::workdir("edge");
    let edge = dir.join("shout_edge");
    let output = support::rill()
        .arg("build")
        .arg(support::repo().join("tests/pipelines/shout_lines.yaml"))
        .args(["--profile", "edge", "-o"])
        .arg(&edge)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let size = |p: &std::path::Path| fs::metadata(p).unwrap().len();
    assert!(
        size(&edge) < size(&release),
        "edge {} vs release {}",
        size(&edge),
        size(&release)
    );
    let run = run(&edge, &[], b"small\n");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(run.stdout, b"SMALL\n");
    support::counters(&run.stderr);
}

/// Every shape of one record decodes to that record: the output line of each is the
/// same. The shapes go both ways through the JSON decoder (its scanner takes the plain
/// ones, serde_json those with escapes, nested unknown values or long numbers), so the
/// two must agree. Lines that are not this schema's are dead letters with serde_json's
/// reasons.
#[test]
fn a_record_reads_the_same_whatever_shape_its_json_has() {
    let bin = build("tests/pipelines/json_shapes.yaml");
    let dir = support::workdir("json_shapes");
    let shapes = [
        r#"{"s":"dev-1 é","i":-42,"u":7,"f":2.5,"b":true,"o":null,"at":1700000000000,"place":{"name":"hall","floor":3}}"#,
        r#"{"place":{"floor":3,"name":"hall"},"at":1700000000000,"b":true,"f":2.5,"u":7,"i":-42,"s":"dev-1 é"}"#,
        " { \"s\" : \"dev-1 é\" ,\t\"i\":-42,\r\"u\":7,\"f\":25e-1,\"b\":true,\"at\":1700000000000,\"place\":{\"name\":\"hall\",\"floor\":3} } ",
        r#"{"s":"dev-1 \u00e9","i":-42,"u":7,"f":0.25E1,"b":true,"o":null,"at":1700000000000,"place":{"name":"h\u0061ll","floor":3}}"#,
        r#"{"s":"dev-1 é","x":{"deep":[1,{"y":null}]},"i":-42,"u":7,"f":2.50000000000000000000,"b":true,"at":1700000000000,"place":{"name":"hall","floor":3,"z":"q"}}"#,
        r#"{"extra":"text","n":1e400,"s":"dev-1 é","i":-42,"u":7,"f":2.5,"b":true,"at":1700000000000,"place":{"name":"hall","floor":3}}"#,
    ];
    let bad = [
        (
            r#"{"s":"a","s":"b","i":1,"u":1,"f":1,"b":true,"at":1,"place":{"name":"h"}}"#,
            "duplicate field `s`",
        ),
        (
            r#"{"s":"a","i":-0,"u":1,"f":1,"b":true,"at":1,"place":{"name":"h"}}"#,
            "invalid type",
        ),
        (
            r#"{"s":"a","i":1,"u":-1,"f":1,"b":true,"at":1,"place":{"name":"h"}}"#,
            "invalid value",
        ),
        (
            r#"{"s":"a","i":1.5,"u":1,"f":1,"b":true,"at":1,"place":{"name":"h"}}"#,
            "invalid type",
        ),
        (
            r#"{"s":"a","i":1,"u":1,"f":1,"b":true,"at":1}"#,
            "missing field `place`",
        ),
        (
            r#"{"s":"a","i":1,"u":1,"f":1,"b":true,"at":1,"place":{"name":"h"},}"#,
            "trailing comma",
        ),
    ];
    // Records are decoded over the one before: a bad line comes after each good one, and
    // a line with `o` (and an unnamed key) before the shape without it, which must not
    // keep the value.
    let with_o = r#"{"s":"x","i":1,"u":2,"f":3,"b":false,"o":1.5,"at":4,"place":{"name":"y","floor":null}}"#;
    let with_o_out = r#"{"s":"x","i":1,"u":2,"f":3.0,"b":false,"o":1.5,"at":4,"place":{"name":"y","floor":null}}"#;
    let expected = r#"{"s":"dev-1 é","i":-42,"u":7,"f":2.5,"b":true,"o":null,"at":1700000000000,"place":{"name":"hall","floor":3}}"#;
    let (mut input, mut want) = (String::new(), Vec::new());
    for (i, (shape, (bad_line, _))) in shapes.iter().zip(&bad).enumerate() {
        if i == 2 {
            input.push_str(with_o);
            input.push('\n');
            want.push(with_o_out);
        }
        input.push_str(&format!("{shape}\n{bad_line}\n"));
        want.push(expected);
    }
    let path = dir.join("items.jsonl");
    fs::write(&path, input).unwrap();
    let output = Command::new(&bin).env("IN", &path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let got = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines, want);
    let counts = support::counters(&output.stderr);
    let count = |c: &str, k: &str| support::counter(&counts, c, k);
    let records = shapes.len() as u64 + 1;
    assert_eq!(count("sources.items", "received"), records + bad.len() as u64);
    assert_eq!(count("sources.items", "sent"), records);
    assert_eq!(count("sources.items", "dead_lettered"), bad.len() as u64);
    assert_eq!(count("sinks.out", "received"), records);
    assert_eq!(count("sinks.out", "sent"), records);
    let dead = dead_letters(&output.stderr);
    assert_eq!(dead.len(), bad.len(), "{dead:?}");
    for (letter, (line, reason)) in dead.iter().zip(bad) {
        assert_eq!(letter["record"], *line);
        let got = letter["reason"].as_str().unwrap();
        assert!(got.contains(reason), "{got} should say {reason}");
    }
}
