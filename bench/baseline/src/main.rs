//! Hand-written equivalents of bench/filter_map.yaml and bench/windowed.yaml, written
//! the way a careful engineer would, on one thread: buffered line reads into a reused
//! buffer, serde_json into a typed struct whose strings borrow from the line (`Cow`:
//! owned only when the JSON string has escapes), the job's logic, serde_json into a
//! buffered writer; a window's key owned only when a device first appears in it.
//! `run-mt` and `window-mt` ([`parallel`]) run the same per-line code on worker threads.
//!
//! Usage:
//!   baseline run IN OUT            filter + map IN (JSON lines) into OUT (JSON lines)
//!   baseline run-mt IN OUT [T]     the same on T worker threads (default: the cores)
//!   baseline window IN OUT         10 s tumbling event-time windows per device of IN into OUT
//!   baseline window-mt IN OUT [T]  the same, parsing on T worker threads (default: the cores)
//!   baseline gen N PATH            write N deterministic sensor readings to PATH
//!   baseline gen-window N PATH     the same, with out-of-order event time (for `window`)
//!   baseline pattern IN OUT        bench/pattern.yaml's login → purchase within 10 min, per user
//!   baseline gen-events N PATH     N user events, out of order (for `pattern`)
//!   baseline join IN OUT           bench/join.yaml's orders joined with their shipments within 1 h
//!   baseline gen-orders N PATH     N orders and shipments, out of order (for `join`)

mod join;
mod parallel;
mod pattern;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::num::NonZeroUsize;
use std::process::ExitCode;

#[derive(Deserialize)]
struct Reading<'a> {
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    ts: i64,
    temperature: f64,
    humidity: Option<f64>,
    #[serde(borrow)]
    status: Cow<'a, str>,
}

#[derive(Serialize)]
struct Out<'a> {
    device_id: &'a str,
    ts: i64,
    temperature: f64,
    humidity: Option<f64>,
    status: &'a str,
    temp_f: f64,
}

/// Non-blank lines read, and how many of them were not a valid reading.
#[derive(Default)]
struct LineCounts {
    read: u64,
    invalid: u64,
}

impl LineCounts {
    /// Decodes one line (its '\n' optional): None for a blank line and for an invalid
    /// one, which is counted.
    fn decode<'a, T: Deserialize<'a>>(&mut self, line: &'a [u8]) -> Option<T> {
        let raw = line.strip_suffix(b"\n").unwrap_or(line);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.read += 1;
        let decoded = serde_json::from_slice(raw).ok();
        self.invalid += u64::from(decoded.is_none());
        decoded
    }

    fn add(&mut self, other: &LineCounts) {
        self.read += other.read;
        self.invalid += other.invalid;
    }
}

/// The filter_map job on one line: writes the reading with `temp_f` if it passes the
/// filter; returns whether it did.
fn filter_map_line<W: Write>(line: &[u8], lines: &mut LineCounts, w: &mut W) -> std::io::Result<bool> {
    let Some(r) = lines.decode::<Reading>(line) else {
        return Ok(false);
    };
    if !(r.temperature > 25.0 && r.status == "ok") {
        return Ok(false);
    }
    let out = Out {
        temp_f: r.temperature * 9.0 / 5.0 + 32.0,
        device_id: &r.device_id,
        ts: r.ts,
        temperature: r.temperature,
        humidity: r.humidity,
        status: &r.status,
    };
    serde_json::to_writer(&mut *w, &out)?;
    w.write_all(b"\n")?;
    Ok(true)
}

fn report_filter_map(lines: &LineCounts, written: u64) {
    eprintln!(
        "baseline: read {}, wrote {written}, invalid {}",
        lines.read, lines.invalid
    );
}

fn run(input: &str, output: &str) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut line = Vec::with_capacity(256);
    let (mut lines, mut written) = (LineCounts::default(), 0u64);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        written += u64::from(filter_map_line(&line, &mut lines, &mut writer)?);
    }
    writer.flush()?;
    report_filter_map(&lines, written);
    Ok(())
}

// ------------------------------------------------------------------ window

/// Window length and allowed out-of-orderness (bench/windowed.yaml: `tumbling: 10s`,
/// `watermark: { max_out_of_order: 2s }`), in milliseconds.
const WINDOW_MS: i64 = 10_000;
const MAX_OUT_OF_ORDER_MS: i64 = 2_000;

#[derive(Deserialize)]
struct WindowReading<'a> {
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    ts: i64,
    temperature: f64,
}

struct Acc {
    count: u64,
    sum: f64,
    max: f64,
}

#[derive(Serialize)]
struct WindowRow<'a> {
    device_id: &'a str,
    window_start: i64,
    window_end: i64,
    count: u64,
    avg_temp: f64,
    max_temp: f64,
}

/// Writes one window's rows, in ascending device_id (byte) order.
fn fire<W: Write>(w: &mut W, start: i64, groups: HashMap<String, Acc>) -> std::io::Result<u64> {
    let mut rows: Vec<(String, Acc)> = groups.into_iter().collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let end = start.saturating_add(WINDOW_MS);
    for (device_id, acc) in &rows {
        let row = WindowRow {
            device_id,
            window_start: start,
            window_end: end,
            count: acc.count,
            avg_temp: acc.sum / acc.count as f64,
            max_temp: acc.max,
        };
        serde_json::to_writer(&mut *w, &row)?;
        w.write_all(b"\n")?;
    }
    Ok(rows.len() as u64)
}

/// The windowed job's state, fed the valid readings in input order: the open windows
/// by start, within one the running aggregate per device; the watermark.
struct Windows {
    open: BTreeMap<i64, HashMap<String, Acc>>,
    max_ts: i64,
    watermark: i64,
    late: u64,
    written: u64,
}

impl Windows {
    fn new() -> Self {
        Windows {
            open: BTreeMap::new(),
            max_ts: i64::MIN,
            watermark: i64::MIN,
            late: 0,
            written: 0,
        }
    }

    /// Adds one reading, or counts it late; writes the windows the watermark passes.
    #[inline]
    fn add<W: Write>(&mut self, w: &mut W, device_id: Cow<str>, ts: i64, v: f64) -> std::io::Result<()> {
        let start = ts - ts.rem_euclid(WINDOW_MS);
        if start.saturating_add(WINDOW_MS) <= self.watermark {
            self.late += 1; // its window has fired already; it cannot raise max_ts either
            return Ok(());
        }
        let groups = self.open.entry(start).or_default();
        // The key is owned only when the device is new to this window.
        let acc = match groups.get_mut(&*device_id) {
            Some(acc) => acc,
            None => groups.entry(device_id.into_owned()).or_insert(Acc {
                count: 0,
                sum: 0.0,
                max: v,
            }),
        };
        acc.count += 1;
        acc.sum += v;
        if v > acc.max {
            acc.max = v;
        }
        if ts > self.max_ts {
            self.max_ts = ts;
            let watermark = ts.saturating_sub(MAX_OUT_OF_ORDER_MS);
            if watermark > self.watermark {
                self.watermark = watermark;
                while let Some(entry) = self.open.first_entry() {
                    if entry.key().saturating_add(WINDOW_MS) > watermark {
                        break;
                    }
                    let (start, groups) = entry.remove_entry();
                    self.written += fire(w, start, groups)?;
                }
            }
        }
        Ok(())
    }

    /// End of input: writes the windows still open.
    fn finish<W: Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        while let Some((start, groups)) = self.open.pop_first() {
            self.written += fire(w, start, groups)?;
        }
        Ok(())
    }

    fn report(&self, lines: &LineCounts) {
        eprintln!(
            "baseline window: read {}, invalid {}, late {}, wrote {} rows",
            lines.read, lines.invalid, self.late, self.written
        );
    }
}

fn window(input: &str, output: &str) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut line = Vec::with_capacity(256);
    let mut windows = Windows::new();
    let mut lines = LineCounts::default();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        if let Some(r) = lines.decode::<WindowReading>(&line) {
            windows.add(&mut writer, r.device_id, r.ts, r.temperature)?;
        }
    }
    windows.finish(&mut writer)?;
    writer.flush()?;
    windows.report(&lines);
    Ok(())
}

// ------------------------------------------------------------------ generators

/// splitmix64: a tiny, good-enough deterministic generator.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn gen(n: u64, path: &str) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut rng = SplitMix(0x5EED_2024);
    for i in 0..n {
        let dev = rng.below(10_000);
        let ts = 1_700_000_000_000u64 + i;
        let t = rng.below(5_001); // 0.00 ..= 50.00 in hundredths
        write!(
            w,
            "{{\"device_id\":\"dev-{dev:04}\",\"ts\":{ts},\"temperature\":{}.{:02},\"humidity\":",
            t / 100,
            t % 100
        )?;
        if rng.below(10) == 0 {
            w.write_all(b"null")?;
        } else {
            let h = rng.below(10_001); // 0.00 ..= 100.00
            write!(w, "{}.{:02}", h / 100, h % 100)?;
        }
        let status = if rng.below(5) == 0 { "error" } else { "ok" };
        writeln!(w, ",\"status\":\"{status}\"}}")?;
    }
    w.flush()
}

/// Like `gen`, but event time runs out of order: a base clock advancing 1 ms every 10
/// events, minus a jitter in [0, 1500] ms for 99.9% of the events and a lateness in
/// [3000, 12000] ms for the other 0.1% (most of those arrive behind the 2 s watermark).
fn gen_window(n: u64, path: &str) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(1 << 16, File::create(path)?);
    let mut rng = SplitMix(0x5EED_2025);
    for i in 0..n {
        let dev = rng.below(10_000);
        let behind = if rng.below(1_000) == 0 {
            3_000 + rng.below(9_001) // late: 3000 ..= 12000 ms
        } else {
            rng.below(1_501) // jitter: 0 ..= 1500 ms
        };
        let ts = 1_700_000_000_000u64 + i / 10 - behind;
        let t = rng.below(5_001); // 0.00 ..= 50.00 in hundredths
        write!(
            w,
            "{{\"device_id\":\"dev-{dev:04}\",\"ts\":{ts},\"temperature\":{}.{:02},\"humidity\":",
            t / 100,
            t % 100
        )?;
        if rng.below(10) == 0 {
            w.write_all(b"null")?;
        } else {
            let h = rng.below(10_001); // 0.00 ..= 100.00
            write!(w, "{}.{:02}", h / 100, h % 100)?;
        }
        let status = if rng.below(5) == 0 { "error" } else { "ok" };
        writeln!(w, ",\"status\":\"{status}\"}}")?;
    }
    w.flush()
}

/// The THREADS argument of run-mt and window-mt; by default the cores (as rill's).
fn threads(arg: Option<&String>) -> Result<NonZeroUsize, std::num::ParseIntError> {
    match arg {
        Some(arg) => arg.parse(),
        None => Ok(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN)),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 4 => run(&args[2], &args[3]),
        Some("window") if args.len() == 4 => window(&args[2], &args[3]),
        Some(cmd @ ("run-mt" | "window-mt")) if matches!(args.len(), 4 | 5) => match threads(args.get(4)) {
            Ok(threads) if cmd == "run-mt" => parallel::run(&args[2], &args[3], threads),
            Ok(threads) => parallel::window(&args[2], &args[3], threads),
            Err(e) => {
                eprintln!("baseline: bad THREADS {:?}: {e}", args[4]);
                return ExitCode::from(2);
            }
        },
        Some("pattern") if args.len() == 4 => pattern::pattern(&args[2], &args[3]),
        Some("join") if args.len() == 4 => join::join(&args[2], &args[3]),
        Some(cmd @ ("gen" | "gen-window" | "gen-events" | "gen-orders")) if args.len() == 4 => match args[2].parse() {
            Ok(n) if cmd == "gen" => gen(n, &args[3]),
            Ok(n) if cmd == "gen-window" => gen_window(n, &args[3]),
            Ok(n) if cmd == "gen-orders" => join::gen_orders(n, &args[3]),
            Ok(n) => pattern::gen_events(n, &args[3]),
            Err(e) => {
                eprintln!("baseline: bad N {:?}: {e}", args[2]);
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!(
                "usage: baseline run IN OUT | baseline run-mt IN OUT [THREADS] | baseline window IN OUT | baseline window-mt IN OUT [THREADS] | baseline pattern IN OUT | baseline gen N PATH | baseline gen-window N PATH | baseline gen-events N PATH | baseline join IN OUT | baseline gen-orders N PATH"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baseline: {e}");
            ExitCode::FAILURE
        }
    }
}
