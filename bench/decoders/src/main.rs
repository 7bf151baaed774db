//! Decodes every line of a JSON-lines file of readings five times with each decoder and
//! prints the best time per line. Each decoder builds the record the windowed job
//! reads (`device_id`, `ts`, `temperature`) and passes over the other fields:
//!
//! - rill: the record type and scanner `rill emit bench/windowed.yaml` generates
//!   (included from `$RILL_GENERATED_RECORD`), driven as a source drives it: each
//!   line decoded over the record before, so the string's buffer is reused;
//! - serde_json, sonic-rs and simd-json: serde into a struct that borrows the string
//!   from the line (simd-json parses in place, so the line is copied into a reused
//!   buffer first, as a caller holding a shared batch must).
#![allow(unused)]

use rill_runtime::codegen::*;
use rill_runtime::formats::Decoder;
use std::borrow::Cow;
use std::time::Instant;

include!(env!("RILL_GENERATED_RECORD"));

#[derive(serde::Deserialize)]
struct Borrowed<'a> {
    #[serde(borrow)]
    device_id: Cow<'a, str>,
    ts: i64,
    temperature: f64,
}

/// The best of five passes over `lines`, in ns per line; `decode` returns a number
/// read from the record, summed so that nothing is optimized away.
fn best_of_five(lines: &[&[u8]], mut decode: impl FnMut(&[u8]) -> f64) -> f64 {
    let mut best = f64::MAX;
    let mut sum = 0.0;
    for _ in 0..5 {
        let start = Instant::now();
        for line in lines {
            sum += decode(line);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    assert!(sum.is_finite());
    best * 1e9 / lines.len() as f64
}

fn main() {
    let path = std::env::args().nth(1).expect("usage: rill_bench_decoders INPUT.jsonl");
    let data = std::fs::read(&path).expect("the input file");
    let lines: Vec<&[u8]> = data.split(|&b| b == b'\n').filter(|l| !l.is_empty()).collect();
    let bytes = lines.iter().map(|l| l.len()).sum::<usize>() as f64 / lines.len() as f64;
    println!("{} lines of {bytes:.0} bytes on average, best of five passes:", lines.len());
    println!("| decoder | ns per line | MB/s | against rill |");
    println!("|---|---:|---:|---:|");
    let mut rill = JsonDecoder::<Reading>::new();
    let mut into: Result<Option<Reading>, _> = Ok(None);
    let mut copy = Vec::new();
    let results = [
        (
            "rill (generated scanner)",
            best_of_five(&lines, |line| {
                rill.decode_into(line, &mut into);
                into.as_ref().expect("decodes").as_ref().expect("a record").temperature
            }),
        ),
        (
            "serde_json 1, borrowed",
            best_of_five(&lines, |line| {
                serde_json::from_slice::<Borrowed>(line).expect("decodes").temperature
            }),
        ),
        (
            "sonic-rs 0.5, borrowed",
            best_of_five(&lines, |line| {
                sonic_rs::from_slice::<Borrowed>(line).expect("decodes").temperature
            }),
        ),
        (
            "simd-json 0.15, borrowed (line copied)",
            best_of_five(&lines, |line| {
                copy.clear();
                copy.extend_from_slice(line);
                simd_json::serde::from_slice::<Borrowed>(&mut copy).expect("decodes").temperature
            }),
        ),
    ];
    let rill_ns = results[0].1;
    for (name, ns) in results {
        println!("| {name} | {ns:.1} | {:.0} | {:.2} |", bytes * 1e3 / ns, rill_ns / ns);
    }
}
