//! Publishes `--count` readings (bench/common's generator) to `bench_in` with a batching
//! producer (rill's sink defaults), and waits for every receipt. Prints
//! `pulsar-load: published=N expect_out=K in S s (R messages/s)`: K of them pass the
//! filter.

use futures::stream::{FuturesUnordered, StreamExt};
use pulsar::producer::Message;
use rill_bench_pulsar::{batching, connect, reading, runtime, Args, SplitMix, INPUT_TOPIC, SEED};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "--url pulsar://HOST:PORT --count N";
/// Receipts awaited at once, at most.
const IN_FLIGHT: usize = 10_000;

fn main() -> ExitCode {
    let args = match Args::parse("pulsar-load", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (url, count) = match (args.req("url"), args.num::<u64>("count", None)) {
        (Ok(u), Ok(c)) => (u, c),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let started = Instant::now();
    match runtime().and_then(|rt| rt.block_on(load(url, count))) {
        Ok(expect) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "pulsar-load: published={count} expect_out={expect} in {secs:.2} s ({:.0} messages/s)",
                count as f64 / secs
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pulsar-load: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn load(url: &str, count: u64) -> Result<u64, String> {
    let client = connect(url).await?;
    let mut producer = client
        .producer()
        .with_topic(INPUT_TOPIC)
        .with_options(batching())
        .build()
        .await
        .map_err(|e| format!("cannot make a producer: {e}"))?;
    let mut rng = SplitMix(SEED);
    let mut expect = 0;
    let mut receipts = FuturesUnordered::new();
    for i in 0..count {
        let mut payload = Vec::with_capacity(128);
        expect += u64::from(reading(&mut rng, i, &mut payload));
        let receipt = producer
            .send_non_blocking(Message {
                payload,
                ..Message::default()
            })
            .await
            .map_err(|e| format!("publishing: {e}"))?;
        receipts.push(receipt);
        while receipts.len() >= IN_FLIGHT {
            if let Some(r) = receipts.next().await {
                r.map_err(|e| format!("no receipt: {e}"))?;
            }
        }
    }
    producer.send_batch().await.map_err(|e| format!("publishing: {e}"))?;
    while let Some(r) = receipts.next().await {
        r.map_err(|e| format!("no receipt: {e}"))?;
    }
    let _ = producer.close().await;
    Ok(expect)
}
