//! Hand-written equivalent of bench/filter_map.yaml, written the way a competent
//! engineer would: buffered line reads into a reused buffer, serde_json into a typed
//! struct, filter, build the output struct, serde_json into a buffered writer.
//!
//! Usage:
//!   baseline run IN OUT     filter + map IN (JSON lines) into OUT (JSON lines)
//!   baseline gen N PATH     write N deterministic sensor readings to PATH

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::ExitCode;

#[derive(Deserialize)]
struct Reading {
    device_id: String,
    ts: i64,
    temperature: f64,
    humidity: Option<f64>,
    status: String,
}

#[derive(Serialize)]
struct Out {
    device_id: String,
    ts: i64,
    temperature: f64,
    humidity: Option<f64>,
    status: String,
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
            device_id: r.device_id,
            ts: r.ts,
            temperature: r.temperature,
            humidity: r.humidity,
            status: r.status,
        };
        serde_json::to_writer(&mut writer, &out)?;
        writer.write_all(b"\n")?;
        written += 1;
    }
    writer.flush()?;
    eprintln!("baseline: read {read}, wrote {written}, invalid {invalid}");
    Ok(())
}

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

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("run") if args.len() == 4 => run(&args[2], &args[3]),
        Some("gen") if args.len() == 4 => match args[2].parse() {
            Ok(n) => gen(n, &args[3]),
            Err(e) => {
                eprintln!("baseline: bad N {:?}: {e}", args[2]);
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: baseline run IN OUT | baseline gen N PATH");
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
