//! End to end: build the example pipelines with the `rill` CLI, run the
//! binaries on inputs generated here, and compare with results computed
//! here, independently of the code under test.

mod support;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{build, dead_letters, json_lines, run, Rng};

fn workdir(name: &str) -> std::path::PathBuf {
    let dir = support::cache_dir().join("work").join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn hot_readings_filters_maps_and_dead_letters_bad_lines() {
    let bin = build("pipelines/hot_readings.yaml");
    let dir = workdir("hot_readings");
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
    let dir = workdir("csv_cleanup");
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
    assert!(!records.is_empty() && records.len() < 300);
    for r in &records {
        let t = r["temperature"].as_f64().unwrap();
        assert!(t > 25.0, "{r}");
        assert_eq!(r["temp_f"].as_f64().unwrap(), (t * 9.0 / 5.0 + 32.0).round());
    }
    // Deterministic: the same seed gives the same events.
    let again = run(&bin, &["--set", "sources.sensors.count=300"], b"");
    assert_eq!(output.stdout, again.stdout);
    let counts = support::counters(&output.stderr);
    assert_eq!(support::counter(&counts, "sources.sensors", "received"), 300);
    assert_eq!(support::counter(&counts, "sinks.console", "sent"), records.len() as u64);
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

#[test]
fn sigterm_stops_an_unbounded_pipeline_cleanly() {
    let bin = build("pipelines/quickstart.yaml");
    let child = Command::new(&bin)
        .args(["--set", "sources.sensors.count=", "--set", "sources.sensors.rate=500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!json_lines(&output.stdout).is_empty());
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("pipeline stopped"), "{logs}");
}

#[test]
fn follow_mode_picks_up_appended_lines_until_stopped() {
    let bin = build("tests/pipelines/follow_file.yaml");
    let dir = workdir("follow");
    let events = dir.join("events.jsonl");
    let out = dir.join("clicks.jsonl");
    fs::write(&events, "{\"id\":1,\"kind\":\"click\"}\n{\"id\":2,\"kind\":\"view\"}\n").unwrap();
    let mut child = Command::new(&bin)
        .env("EVENTS", &events)
        .env("OUT", &out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    {
        let mut f = fs::OpenOptions::new().append(true).open(&events).unwrap();
        f.write_all(b"{\"id\":3,\"kind\":\"click\"}\n{\"id\":4,\"ki").unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        f.write_all(b"nd\":\"click\"}\n").unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = fs::read(&out).map(|b| json_lines(&b)).unwrap_or_default();
        if got.len() == 3 || Instant::now() > deadline {
            assert_eq!(
                got,
                vec![
                    json!({"id":1,"kind":"click"}),
                    json!({"id":3,"kind":"click"}),
                    json!({"id":4,"kind":"click"})
                ]
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
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
    let dir = workdir("elsewhere");
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
    let dir = workdir("window_examples");
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
