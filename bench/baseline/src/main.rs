//! Hand-written equivalents of bench/filter_map.yaml and bench/windowed.yaml, written
//! the way a careful engineer would, on one thread: buffered line reads into a reused
//! buffer, serde_json into a typed struct whose strings borrow from the line (`Cow`:
//! owned only when the JSON string has escapes), the job's logic, serde_json into a
//! buffered writer; a window's key owned only when a device first appears in it.
//!
//! Usage:
//!   baseline run IN OUT            filter + map IN (JSON lines) into OUT (JSON lines)
//!   baseline window IN OUT         10 s tumbling event-time windows per device of IN into OUT
//!   baseline gen N PATH            write N deterministic sensor readings to PATH
//!   baseline gen-window N PATH     the same, with out-of-order event time (for `window`)
//!   baseline pattern IN OUT        bench/pattern.yaml's login → purchase within 10 min, per user
//!   baseline gen-events N PATH     N user events, out of order (for `pattern`)
//!   baseline join IN OUT           bench/join.yaml's orders joined with their shipments within 1 h
//!   baseline gen-orders N PATH     N orders and shipments, out of order (for `join`)

mod join;
mod pattern;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
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

fn run(input: &str, output: &str) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut line = Vec::with_capacity(256);
    let (mut read, mut written, mut invalid) = (0u64, 0u64, 0u64);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let raw = line.strip_suffix(b"\n").unwrap_or(&line);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        read += 1;
        let r: Reading = match serde_json::from_slice(raw) {
            Ok(r) => r,
            Err(_) => {
                invalid += 1;
                continue;
            }
        };
        if !(r.temperature > 25.0 && r.status == "ok") {
            continue;
        }
        let out = Out {
            temp_f: r.temperature * 9.0 / 5.0 + 32.0,
            device_id: &r.device_id,
            ts: r.ts,
            temperature: r.temperature,
            humidity: r.humidity,
            status: &r.status,
        };
        serde_json::to_writer(&mut writer, &out)?;
        writer.write_all(b"\n")?;
        written += 1;
    }
    writer.flush()?;
    eprintln!("baseline: read {read}, wrote {written}, invalid {invalid}");
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

fn window(input: &str, output: &str) -> std::io::Result<()> {
    let mut reader = BufReader::with_capacity(1 << 16, File::open(input)?);
    let mut writer = BufWriter::with_capacity(1 << 16, File::create(output)?);
    let mut line = Vec::with_capacity(256);
    // Open windows by start; within one, the running aggregate per device.
    let mut windows: BTreeMap<i64, HashMap<String, Acc>> = BTreeMap::new();
    let mut max_ts = i64::MIN;
    let mut watermark = i64::MIN;
    let (mut read, mut invalid, mut late, mut written) = (0u64, 0u64, 0u64, 0u64);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let raw = line.strip_suffix(b"\n").unwrap_or(&line);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        read += 1;
        let r: WindowReading = match serde_json::from_slice(raw) {
            Ok(r) => r,
            Err(_) => {
                invalid += 1;
                continue;
            }
        };
        let start = r.ts - r.ts.rem_euclid(WINDOW_MS);
        if start.saturating_add(WINDOW_MS) <= watermark {
            late += 1; // its window has fired already; it cannot raise max_ts either
            continue;
        }
        let v = r.temperature;
        let groups = windows.entry(start).or_default();
        // The key is owned only when the device is new to this window.
        let acc = match groups.get_mut(&*r.device_id) {
            Some(acc) => acc,
            None => groups.entry(r.device_id.into_owned()).or_insert(Acc {
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
        if r.ts > max_ts {
            max_ts = r.ts;
            let w = max_ts.saturating_sub(MAX_OUT_OF_ORDER_MS);
            if w > watermark {
                watermark = w;
                while let Some(entry) = windows.first_entry() {
                    if entry.key().saturating_add(WINDOW_MS) > watermark {
                        break;
                    }
                    let (start, groups) = entry.remove_entry();
                    written += fire(&mut writer, start, groups)?;
                }
            }
        }
    }
    while let Some((start, groups)) = windows.pop_first() {
        written += fire(&mut writer, start, groups)?;
    }
    writer.flush()?;
    eprintln!("baseline window: read {read}, invalid {invalid}, late {late}, wrote {written} rows");
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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 4 => run(&args[2], &args[3]),
        Some("window") if args.len() == 4 => window(&args[2], &args[3]),
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
                "usage: baseline run IN OUT | baseline window IN OUT | baseline pattern IN OUT | baseline gen N PATH | baseline gen-window N PATH | baseline gen-events N PATH | baseline join IN OUT | baseline gen-orders N PATH"
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
