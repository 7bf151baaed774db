//! Adds `--count` readings (bench/common's generator) to the stream `bench_in`, each
//! in the field `data`, 1,000 per pipeline. Prints
//! `redis-load: added=N expect_out=K in S s (R entries/s)`: K of them pass the filter.

use rill_bench_redis::{connect, reading, Args, SplitMix, FIELD, INPUT_STREAM, SEED};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "--url redis://HOST:PORT --count N";
const PIPELINE: u64 = 1000;

fn main() -> ExitCode {
    let args = match Args::parse("redis-load", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (url, count) = match (args.req("url"), args.num::<u64>("count", None)) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let started = Instant::now();
    match load(url, count) {
        Ok(expect) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "redis-load: added={count} expect_out={expect} in {secs:.2} s ({:.0} entries/s)",
                count as f64 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("redis-load: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(url: &str, count: u64) -> Result<u64, String> {
    let mut con = connect(url)?;
    let mut rng = SplitMix(SEED);
    let (mut expect, mut buf) = (0, Vec::new());
    let mut i = 0;
    while i < count {
        let mut pipe = redis::pipe();
        for _ in 0..PIPELINE.min(count - i) {
            expect += u64::from(reading(&mut rng, i, &mut buf));
            pipe.cmd("XADD").arg(INPUT_STREAM).arg("*").arg(FIELD).arg(&buf).ignore();
            i += 1;
        }
        pipe.exec(&mut con).map_err(|e| format!("XADD: {e}"))?;
    }
    Ok(expect)
}
