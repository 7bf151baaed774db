//! Watches the length of a stream (`XLEN`, every millisecond): times a job from
//! outside. It stops once the stream holds `--expect` entries, or after `--timeout`
//! seconds (default 600), or when process `--pid` has exited. It prints
//! `count=<n> first=<s> done=<s>`: the Unix times in seconds (comparable with
//! `date +%s.%N`) at which the first and the N-th entry were seen, and exits 0 when the
//! count is the one expected.

use rill_bench_redis::{connect, epoch_secs, Args};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str = "--url redis://HOST:PORT --stream S --expect N [--pid PID] [--timeout SECS]";

fn main() -> ExitCode {
    let args = match Args::parse("redis-count", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let parsed = (|| {
        Ok::<_, ExitCode>((
            args.req("url")?,
            args.req("stream")?,
            args.num::<u64>("expect", None)?,
            args.num::<u32>("pid", Some(0))?,
            Duration::from_secs(args.num::<u64>("timeout", Some(600))?),
        ))
    })();
    let (url, stream, expect, pid, timeout) = match parsed {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut con = match connect(url) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("redis-count: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    let mut first = None;
    let (count, done) = loop {
        let count: u64 = match redis::cmd("XLEN").arg(stream).query(&mut con) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("redis-count: XLEN: {e}");
                return ExitCode::FAILURE;
            }
        };
        if count > 0 && first.is_none() {
            first = Some(epoch_secs());
        }
        let gone = pid != 0 && !std::path::Path::new(&format!("/proc/{pid}")).exists();
        if count >= expect || gone || started.elapsed() >= timeout {
            break (count, epoch_secs());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    println!("count={count} first={:.3} done={done:.3}", first.unwrap_or(done));
    if count == expect {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
