//! What the hand-written sides of the broker benchmarks share (bench/mqtt, bench/redis):
//! the reading generator, the filter's probe, and a tiny `--name value` parser.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// What a relay reads of a message: the two fields the benchmarks' filter tests. serde_json skips the others without building them; the string borrows from
/// the payload (it has no escapes), so nothing is allocated per message.
#[derive(Deserialize)]
pub struct Probe<'a> {
    pub temperature: f64,
    #[serde(borrow)]
    pub status: Cow<'a, str>,
}

impl Probe<'_> {
    /// The benchmark specs' `hot.filter`.
    pub fn keep(&self) -> bool {
        self.temperature > 25.0 && self.status == "ok"
    }
}

/// A reading, as the benchmark specs' `reading` schema, in its field order.
#[derive(Serialize)]
struct Reading<'a> {
    device_id: &'a str,
    ts: u64,
    temperature: f64,
    humidity: Option<f64>,
    status: &'a str,
}

/// splitmix64, as bench/baseline's generator.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of `baseline gen` and bench/kafka's generator.
pub const SEED: u64 = 0x5EED_2024;

/// Writes reading number `i` into `buf` (cleared first) as one JSON object, the same
/// distribution as bench/kafka's generator, and returns whether it passes the filter,
/// decided on the generated integers (not by parsing), so the expected output count
/// does not depend on the relay's code.
///
/// The JSON is written by serde_json from the schema's types (field order, shortest
/// round-trip floats, `null`), i.e. exactly as rill's JSON encoder writes a record
/// it decoded from it: rill's outputs are byte-identical to their inputs, like the
/// relay's, which forwards payloads untouched, so `run.sh` can compare the two.
pub fn reading(rng: &mut SplitMix, i: u64, buf: &mut Vec<u8>) -> bool {
    use std::io::Write;
    buf.clear();
    let dev = rng.below(10_000);
    let t = rng.below(5_001); // 0.00 ..= 50.00 in hundredths
    let humidity = if rng.below(10) == 0 {
        None
    } else {
        Some(rng.below(10_001) as f64 / 100.0) // 0.00 ..= 100.00
    };
    let ok = rng.below(5) != 0;
    let mut device_id = [0u8; 8];
    let _ = write!(&mut device_id[..], "dev-{dev:04}");
    let reading = Reading {
        device_id: std::str::from_utf8(&device_id).unwrap_or("dev-????"),
        ts: 1_700_000_000_000 + i,
        temperature: t as f64 / 100.0,
        humidity,
        status: if ok { "ok" } else { "error" },
    };
    let _ = serde_json::to_writer(&mut *buf, &reading);
    ok && t > 2_500
}

/// Seconds since the Unix epoch, comparable with `date +%s.%N`.
pub fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `--name value` and `--flag` arguments.
pub struct Args {
    program: &'static str,
    usage: &'static str,
    values: HashMap<String, String>,
}

impl Args {
    /// Parses the process arguments; `flags` are the options that take no value.
    pub fn parse(program: &'static str, usage: &'static str, flags: &[&str]) -> Result<Args, ExitCode> {
        let mut values = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(usage_error(program, usage, &format!("unexpected argument {arg:?}")));
            };
            if name == "help" {
                eprintln!("usage: {program} {usage}");
                return Err(ExitCode::SUCCESS);
            }
            let value = if flags.contains(&name) {
                String::new()
            } else {
                args.next()
                    .ok_or_else(|| usage_error(program, usage, &format!("--{name} needs a value")))?
            };
            values.insert(name.to_string(), value);
        }
        Ok(Args { program, usage, values })
    }

    pub fn flag(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    pub fn opt(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn req(&self, name: &str) -> Result<&str, ExitCode> {
        self.opt(name)
            .ok_or_else(|| usage_error(self.program, self.usage, &format!("--{name} is required")))
    }

    /// A number option, `default` when absent.
    pub fn num<T: FromStr>(&self, name: &str, default: Option<T>) -> Result<T, ExitCode> {
        match (self.opt(name), default) {
            (Some(v), _) => v
                .replace('_', "")
                .parse()
                .map_err(|_| usage_error(self.program, self.usage, &format!("--{name}: not a number: {v:?}"))),
            (None, Some(d)) => Ok(d),
            (None, None) => Err(usage_error(self.program, self.usage, &format!("--{name} is required"))),
        }
    }
}

fn usage_error(program: &str, usage: &str, why: &str) -> ExitCode {
    eprintln!("{program}: {why}\nusage: {program} {usage}");
    ExitCode::from(2)
}
