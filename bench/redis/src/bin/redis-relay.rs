//! The hand-written baseline of bench/redis_filter.yaml: what a careful engineer writes
//! to relay a Redis stream through a filter, at least once, with the same client crate.
//!
//! One thread, one connection: `XREADGROUP GROUP relay <consumer> COUNT 1024 BLOCK 100
//! STREAMS bench_in >` (the group created at the start of the stream when missing); the
//! reply is walked as the client's raw `Value` (no map per entry: the field is found in
//! place and its bytes borrowed), each entry's `data` parsed for the two fields the
//! filter tests (`Probe`, nothing allocated), and a kept entry's bytes are added
//! untouched to `bench_out` (`XADD ... * data <bytes>`), the whole batch as one
//! pipeline; once it succeeded, the batch's ids are acknowledged with one `XACK`. So an
//! entry is acknowledged only once its output is written: rill's guarantee.
//!
//! Runs until SIGTERM/SIGINT, then prints its counts.

use redis::Value;
use rill_bench_redis::{connect, Args, Probe, FIELD, INPUT_STREAM, OUTPUT_STREAM};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const USAGE: &str = "--url redis://HOST:PORT [--consumer NAME]";
const GROUP: &str = "relay";
const COUNT: usize = 1024;
const BLOCK_MS: usize = 100;

fn main() -> ExitCode {
    let args = match Args::parse("redis-relay", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let url = match args.req("url") {
        Ok(u) => u,
        Err(code) => return code,
    };
    let consumer = args.opt("consumer").unwrap_or("relay-1");
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("redis-relay: cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    }
    match relay(url, consumer, &stop) {
        Ok((read, kept)) => {
            eprintln!("redis-relay: read={read} kept={kept}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redis-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn relay(url: &str, consumer: &str, stop: &AtomicBool) -> Result<(u64, u64), String> {
    let mut con = connect(url)?;
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(INPUT_STREAM)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut con);
    match created {
        Err(e) if e.code() != Some("BUSYGROUP") => return Err(format!("XGROUP CREATE: {e}")),
        _ => {}
    }
    let (mut read, mut kept) = (0u64, 0u64);
    let mut out = redis::pipe();
    while !stop.load(Ordering::Relaxed) {
        let reply: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(COUNT)
            .arg("BLOCK")
            .arg(BLOCK_MS)
            .arg("STREAMS")
            .arg(INPUT_STREAM)
            .arg(">")
            .query(&mut con)
            .map_err(|e| format!("XREADGROUP: {e}"))?;
        // Ids borrowed from this reply (a vector per batch, not per entry).
        let mut ids: Vec<&[u8]> = Vec::with_capacity(COUNT);
        out.clear();
        for (id, data) in entries(&reply) {
            read += 1;
            ids.push(id);
            let keep = serde_json::from_slice::<Probe>(data).is_ok_and(|p| p.keep());
            if keep {
                kept += 1;
                out.cmd("XADD").arg(OUTPUT_STREAM).arg("*").arg(FIELD).arg(data).ignore();
            }
        }
        if ids.is_empty() {
            continue;
        }
        out.exec(&mut con).map_err(|e| format!("XADD: {e}"))?;
        let _: u64 = redis::cmd("XACK")
            .arg(INPUT_STREAM)
            .arg(GROUP)
            .arg(&ids)
            .query(&mut con)
            .map_err(|e| format!("XACK: {e}"))?;
    }
    Ok((read, kept))
}

/// The (id, `data` bytes) of each entry of an XREADGROUP reply, borrowed from it:
/// `[[stream, [[id, [field, value, ...]], ...]]]`, or nil when nothing came.
fn entries(reply: &Value) -> impl Iterator<Item = (&[u8], &[u8])> {
    let streams: &[Value] = match reply {
        Value::Array(streams) => streams,
        _ => &[],
    };
    streams
        .iter()
        .filter_map(|stream| match stream {
            Value::Array(parts) => match parts.get(1) {
                Some(Value::Array(entries)) => Some(entries.iter()),
                _ => None,
            },
            _ => None,
        })
        .flatten()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else { return None };
            let (Some(Value::BulkString(id)), Some(Value::Array(fields))) = (parts.first(), parts.get(1)) else {
                return None;
            };
            let data = fields.chunks(2).find_map(|pair| match pair {
                [Value::BulkString(name), Value::BulkString(value)] if name.as_slice() == FIELD.as_bytes() => {
                    Some(value.as_slice())
                }
                _ => None,
            })?;
            Some((id.as_slice(), data))
        })
}
