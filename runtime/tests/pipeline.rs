//! A hand-written pipeline wired exactly as the compiler generates one, run end to end.
//!
//! Doubles as the reference for the code generator. The spec it stands for:
//!
//! ```yaml
//! name: hot_readings
//! schemas:
//!   reading: { device_id: string, ts: timestamp_rfc3339, temperature: f64, calib: i64, status: string }
//! sources:
//!   readings: { type: file, path: "${RILL_IT_INPUT}", format: json, schema: reading, on_error: dead_letter }
//! transforms:
//!   hot: { input: readings, filter: 'status == "ok" && temperature > 25.0' }
//!   fahrenheit:
//!     input: hot
//!     map: { device_id: device_id, ts: ts, temp_f: temperature * 9.0 / 5.0 + 32.0, scaled: 1000 / calib }
//! sinks:
//!   hot_json: { type: file, input: fahrenheit, path: "${RILL_IT_DIR:-/tmp}/hot.jsonl", format: json }
//!   hot_csv:  { type: file, input: fahrenheit, path: "${RILL_IT_DIR:-/tmp}/hot.csv", format: csv }
//!   bad:      { type: file, input: dead_letter, path: "${RILL_IT_DIR:-/tmp}/bad.jsonl" }
//! ```

// ---- generated code starts here ----
use rill_runtime::codegen::*;

static SETTINGS: &[SettingDef] = &[
    SettingDef {
        key: "sources.readings.path",
        default: "${RILL_IT_INPUT}",
        help: "input file",
        secret: false,
    },
    SettingDef {
        key: "sinks.hot_json.path",
        default: "${RILL_IT_DIR:-/tmp}/hot.jsonl",
        help: "output file",
        secret: false,
    },
    SettingDef {
        key: "sinks.hot_csv.path",
        default: "${RILL_IT_DIR:-/tmp}/hot.csv",
        help: "output file",
        secret: false,
    },
    SettingDef {
        key: "sinks.bad.path",
        default: "${RILL_IT_DIR:-/tmp}/bad.jsonl",
        help: "output file",
        secret: false,
    },
];

static INFO: PipelineInfo = PipelineInfo {
    name: "hot_readings",
    spec_hash: "0123abcd",
    settings: SETTINGS,
    fires: false,
};

/// schemas.reading
#[derive(Debug, Deserialize)]
#[serde(crate = "rill_runtime::codegen::serde")]
struct Reading {
    device_id: String,
    #[serde(with = "rill_runtime::codegen::ts_rfc3339")]
    ts: i64,
    temperature: f64,
    calib: i64,
    status: String,
}

// What the compiler writes for a record with an RFC 3339 timestamp: serde_json reads it.
impl ScanJson for Reading {}

/// Output of transforms.fahrenheit
#[derive(Debug, Serialize)]
#[serde(crate = "rill_runtime::codegen::serde")]
struct Fahrenheit {
    device_id: String,
    ts: i64,
    temp_f: f64,
    scaled: i64,
}

// What the compiler writes (`codegen/records.rs`).
impl WriteJson for Fahrenheit {
    fn write_json(&self, out: &mut Vec<u8>) -> bool {
        out.extend_from_slice(b"{\"device_id\":");
        if !self.device_id.write_json(out) {
            return false;
        }
        out.extend_from_slice(b",\"ts\":");
        if !self.ts.write_json(out) {
            return false;
        }
        out.extend_from_slice(b",\"temp_f\":");
        if !self.temp_f.write_json(out) {
            return false;
        }
        out.extend_from_slice(b",\"scaled\":");
        if !self.scaled.write_json(out) {
            return false;
        }
        out.push(b'}');
        true
    }
}

impl CsvRecord for Fahrenheit {
    const COLUMNS: &'static [&'static str] = &["device_id", "ts", "temp_f", "scaled"];
    fn from_csv(row: &CsvRow<'_>) -> Result<Self, DecodeError> {
        Ok(Fahrenheit {
            device_id: row.get(0)?,
            ts: row.timestamp(1, TsRepr::Millis)?,
            temp_f: row.get(2)?,
            scaled: row.get(3)?,
        })
    }
    fn to_csv(&self, w: &mut CsvWriter<'_>) {
        w.field(&self.device_id);
        w.timestamp(self.ts, TsRepr::Millis);
        w.field(&self.temp_f);
        w.field(&self.scaled);
    }
}

struct Outs {
    hot_json: Output<JsonEncoder<Fahrenheit>>,
    hot_csv: Output<CsvEncoder<Fahrenheit>>,
    /// transforms.hot, transforms.fahrenheit
    tallies: [Tally; 2],
    dead_letters: DeadLetters,
}

impl Outputs for Outs {
    fn dead_letters(&mut self) -> &mut DeadLetters {
        &mut self.dead_letters
    }
    fn flush(&mut self) -> Result<(), RunError> {
        for tally in &mut self.tallies {
            tally.publish();
        }
        RunError::all([self.hot_json.flush(), self.hot_csv.flush(), self.dead_letters.flush()])
    }
}

/// transforms.hot
fn filter_hot(r: &Reading) -> Result<bool, EvalError> {
    Ok(r.status == "ok" && r.temperature > 25.0)
}

/// transforms.fahrenheit
fn map_fahrenheit(r: &Reading) -> Result<Fahrenheit, EvalError> {
    Ok(Fahrenheit {
        device_id: r.device_id.clone(),
        ts: r.ts,
        temp_f: fns::add(fns::div(fns::mul(r.temperature, 9.0)?, 5.0)?, 32.0)?,
        scaled: fns::div(1000_i64, r.calib)?,
    })
}

/// Everything downstream of sources.readings, fused into one function.
fn flow_readings(r: &Reading, out: &mut Outs) -> Result<(), RecordError> {
    out.tallies[0].received += 1;
    if !filter_hot(r).map_err(|e| RecordError::new("transforms.hot", e))? {
        out.tallies[0].filtered += 1;
        return Ok(());
    }
    out.tallies[0].sent += 1;
    out.tallies[1].received += 1;
    let f = map_fahrenheit(r).map_err(|e| RecordError::new("transforms.fahrenheit", e))?;
    out.tallies[1].sent += 1;
    // A fan-out: each sink gets the record even if the other fails on it.
    branches([out.hot_json.send(&f), out.hot_csv.send(&f)])
}

struct HotReadings {
    readings: Source<JsonDecoder<Reading>>,
    outs: Outs,
}

impl Pipeline for HotReadings {
    fn step(&mut self) -> Result<Step, RunError> {
        Ok(Step::from(self.readings.poll(&mut self.outs, flow_readings)?))
    }
    fn flush(&mut self) -> Result<(), RunError> {
        self.outs.flush()
    }
    fn close(&mut self, _fire: bool) -> Result<(), RunError> {
        self.outs.flush()
    }
    fn close_sources(&mut self) -> Result<(), RunError> {
        self.readings.close()
    }
    fn checkpointed(&mut self) -> Vec<&mut dyn Checkpointed> {
        vec![
            &mut self.readings as &mut dyn Checkpointed,
            &mut self.outs.hot_json,
            &mut self.outs.hot_csv,
            &mut self.outs.dead_letters,
        ]
    }
}

fn build_with(ctx: &Context, on_error: OnError) -> Result<HotReadings, StartError> {
    let s = &ctx.settings;
    Ok(HotReadings {
        readings: Source::new(
            "sources.readings",
            open_file(&s.str("sources.readings.path")?, false, 1 << 20)?,
            JsonDecoder::new(),
            on_error,
            ctx,
        ),
        outs: Outs {
            hot_json: Output::new(
                "sinks.hot_json",
                Box::new(FileSink::create(&s.str("sinks.hot_json.path")?, ctx.resuming)?),
                JsonEncoder::new(),
                ctx,
            ),
            hot_csv: Output::new(
                "sinks.hot_csv",
                Box::new(FileSink::create(&s.str("sinks.hot_csv.path")?, ctx.resuming)?),
                CsvEncoder::new(b',', true),
                ctx,
            ),
            tallies: [
                Tally::new("transforms.hot", &ctx.events),
                Tally::new("transforms.fahrenheit", &ctx.events),
            ],
            dead_letters: DeadLetters::to_sinks(vec![Box::new(FileSink::create(
                &s.str("sinks.bad.path")?,
                ctx.resuming,
            )?)])
            .counted(ctx),
        },
    })
}

fn build(ctx: &Context) -> Result<HotReadings, StartError> {
    build_with(ctx, OnError::DeadLetter)
}

// The generated main is: fn main() -> std::process::ExitCode { run(&INFO, build) }
// ---- generated code ends here ----

use rill_runtime::driver::run_with_args;
use std::path::PathBuf;
use std::process::ExitCode;

const INPUT: &str = r#"{"device_id":"a","ts":"2024-01-01T00:00:00Z","temperature":30.0,"calib":4,"status":"ok"}
{"device_id":"b","ts":"2024-01-01T00:00:01Z","temperature":20.0,"calib":4,"status":"ok"}

{"device_id":"c","ts":"yesterday","temperature":30.0,"calib":4,"status":"ok"}
{"device_id":"d","ts":"2024-01-01T00:00:02Z","temperature":40.0,"calib":0,"status":"ok"}
not json at all
{"device_id":"e,\"x\"","ts":"2024-01-01T00:00:03.5Z","temperature":26.5,"calib":-8,"status":"ok"}
{"device_id":"f","ts":"2024-01-01T00:00:04Z","temperature":99.0,"calib":1,"status":"error"}"#;

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("rill-runtime-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        Dir(dir)
    }
    fn path(&self, file: &str) -> String {
        self.0.join(file).to_string_lossy().into_owned()
    }
    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.path(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }
    /// `--set` arguments pointing every path into this directory.
    fn args(&self) -> Vec<String> {
        let mut args = vec![];
        for (key, file) in [
            ("sources.readings.path", "in.jsonl"),
            ("sinks.hot_json.path", "out/hot.jsonl"),
            ("sinks.hot_csv.path", "out/hot.csv"),
            ("sinks.bad.path", "out/bad.jsonl"),
        ] {
            args.push("--set".to_owned());
            args.push(format!("{key}={}", self.path(file)));
        }
        args
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn dead_letters(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn good_records_reach_the_sinks_and_bad_ones_the_dead_letters() {
    let dir = Dir::new("e2e");
    std::fs::write(dir.path("in.jsonl"), INPUT).unwrap_or_else(|e| panic!("{e}"));
    let mut args = dir.args();
    args.extend([
        "--batch-size".to_owned(),
        "2".to_owned(),
        "--log-level".to_owned(),
        "warn".to_owned(),
    ]);
    let code = run_with_args(&INFO, args, build);
    assert_eq!(code, ExitCode::SUCCESS);

    assert_eq!(
        dir.read("out/hot.jsonl"),
        "{\"device_id\":\"a\",\"ts\":1704067200000,\"temp_f\":86.0,\"scaled\":250}\n\
         {\"device_id\":\"e,\\\"x\\\"\",\"ts\":1704067203500,\"temp_f\":79.7,\"scaled\":-125}\n"
    );
    assert_eq!(
        dir.read("out/hot.csv"),
        "device_id,ts,temp_f,scaled\n\
         a,1704067200000,86,250\n\
         \"e,\"\"x\"\"\",1704067203500,79.7,-125\n"
    );

    let bad = dead_letters(&dir.read("out/bad.jsonl"));
    assert_eq!(bad.len(), 3);
    assert_eq!(bad[0]["component"], "sources.readings");
    assert!(
        bad[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("invalid RFC 3339 timestamp `yesterday`")),
        "{}",
        bad[0]
    );
    assert!(bad[0]["record"]
        .as_str()
        .is_some_and(|r| r.contains("\"device_id\":\"c\"")));
    assert_eq!(bad[1]["component"], "transforms.fahrenheit");
    assert_eq!(bad[1]["reason"], "division by zero");
    assert!(bad[1]["record"].as_str().is_some_and(|r| r.contains("\"calib\":0")));
    assert_eq!(bad[2]["component"], "sources.readings");
    assert_eq!(bad[2]["record"], "not json at all");
}

#[test]
fn on_error_fail_exits_1_after_closing_outputs() {
    let dir = Dir::new("fail");
    std::fs::write(dir.path("in.jsonl"), INPUT).unwrap_or_else(|e| panic!("{e}"));
    let code = run_with_args(&INFO, dir.args(), |ctx: &Context| build_with(ctx, OnError::Fail));
    assert_eq!(code, ExitCode::FAILURE);
    // The record before the bad one was still written: close() flushed it.
    assert!(dir.read("out/hot.jsonl").starts_with("{\"device_id\":\"a\""));
    assert_eq!(dir.read("out/bad.jsonl"), "");
}

#[test]
fn a_full_disk_under_one_sink_does_not_cost_the_others_their_output() {
    let dir = Dir::new("full");
    std::fs::write(dir.path("in.jsonl"), INPUT).unwrap_or_else(|e| panic!("{e}"));
    let mut args = dir.args();
    args.extend(["--set".to_owned(), "sinks.hot_json.path=/dev/full".to_owned()]);
    let code = run_with_args(&INFO, args, build);
    assert_eq!(code, ExitCode::FAILURE, "a sink that could not write fails the run");
    // The step that failed stopped the run, but close() still flushed every other output.
    assert_eq!(
        dir.read("out/hot.csv"),
        "device_id,ts,temp_f,scaled\na,1704067200000,86,250\n\"e,\"\"x\"\"\",1704067203500,79.7,-125\n"
    );
    assert_eq!(dead_letters(&dir.read("out/bad.jsonl")).len(), 3);
}

#[test]
fn configuration_mistakes_exit_2_before_any_output() {
    let dir = Dir::new("config");
    // RILL_IT_INPUT is never set, so the default of sources.readings.path cannot resolve.
    assert_eq!(run_with_args(&INFO, Vec::<String>::new(), build), ExitCode::from(2));
    let mut unknown = dir.args();
    unknown.extend(["--set".to_owned(), "sinks.nope.path=x".to_owned()]);
    assert_eq!(run_with_args(&INFO, unknown, build), ExitCode::from(2));
    assert_eq!(
        run_with_args(&INFO, ["--frobnicate".to_owned()], build),
        ExitCode::from(2)
    );
    // Every setting resolves but the input file does not exist: build's StartError.
    assert_eq!(run_with_args(&INFO, dir.args(), build), ExitCode::from(2));
    assert!(!std::path::Path::new(&dir.path("out/hot.jsonl")).exists());
}

#[test]
fn help_and_version_exit_0() {
    assert_eq!(run_with_args(&INFO, ["--help".to_owned()], build), ExitCode::SUCCESS);
    assert_eq!(run_with_args(&INFO, ["--version".to_owned()], build), ExitCode::SUCCESS);
}

/// A second run with the same state directory goes on where the first ended: the input
/// file resumes at its checkpointed offset, the outputs keep what they hold (the CSV
/// header is not written twice), so two runs over a growing file write what one run
/// over the whole file writes.
#[test]
fn a_run_with_the_same_state_directory_goes_on_where_the_last_ended() {
    let whole = Dir::new("resume_whole");
    std::fs::write(whole.path("in.jsonl"), INPUT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run_with_args(&INFO, whole.args(), build), ExitCode::SUCCESS);

    let parts = Dir::new("resume_parts");
    let cut = INPUT.find("not json").unwrap_or_default();
    std::fs::write(parts.path("in.jsonl"), &INPUT[..cut]).unwrap_or_else(|e| panic!("{e}"));
    let mut args = parts.args();
    args.extend(["--state-dir".to_owned(), parts.path("state")]);
    assert_eq!(run_with_args(&INFO, args.clone(), build), ExitCode::SUCCESS);
    assert!(parts.read("out/hot.csv").starts_with("device_id,"));
    let mut input = std::fs::OpenOptions::new()
        .append(true)
        .open(parts.path("in.jsonl"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::io::Write::write_all(&mut input, &INPUT.as_bytes()[cut..]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(run_with_args(&INFO, args, build), ExitCode::SUCCESS);

    assert_eq!(parts.read("out/hot.jsonl"), whole.read("out/hot.jsonl"));
    assert_eq!(parts.read("out/hot.csv"), whole.read("out/hot.csv"));
    let records = |text: &str| -> Vec<(String, String)> {
        dead_letters(text)
            .iter()
            .map(|l| (l["component"].to_string(), l["record"].to_string()))
            .collect()
    };
    assert_eq!(
        records(&parts.read("out/bad.jsonl")),
        records(&whole.read("out/bad.jsonl"))
    );
}
