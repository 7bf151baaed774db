//! Reads a topic (default `bench_out`) from its earliest message through a subscription
//! of its own: times a job from outside. It stops `--extra-ms` (default 500) after
//! `--expect` messages arrived (to see any extra), or after `--timeout` seconds (default
//! 600), or when process `--pid` has exited. It prints `count=<n> first=<s> done=<s>`:
//! the Unix times in seconds (comparable with `date +%s.%N`) at which the first and the
//! N-th message arrived, and exits 0 when the count is the one expected. A message the
//! broker delivers again (same id) is counted once, and reported as `redelivered=<n>`.
//! `--dump PATH` writes every payload there, one a line.

use futures::StreamExt;
use pulsar::consumer::{ConsumerOptions, InitialPosition};
use pulsar::proto::command_subscribe::SubType;
use pulsar::{Consumer, TokioExecutor};
use rill_bench_pulsar::{connect, epoch_secs, random_id, runtime, Args, OUTPUT_TOPIC};
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Acknowledged cumulatively every this many messages (an exclusive subscription).
const ACK_EVERY: u64 = 1000;

const USAGE: &str =
    "--url pulsar://HOST:PORT --expect N [--topic T] [--subscription S] [--pid PID] [--timeout SECS] [--extra-ms MS] [--dump PATH]";

struct Options<'a> {
    url: &'a str,
    topic: &'a str,
    subscription: &'a str,
    expect: u64,
    pid: u32,
    timeout: Duration,
    extra: Duration,
    dump: Option<&'a str>,
}

fn main() -> ExitCode {
    let args = match Args::parse("pulsar-count", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let parsed = (|| {
        Ok::<_, ExitCode>(Options {
            url: args.req("url")?,
            topic: args.opt("topic").unwrap_or(OUTPUT_TOPIC),
            subscription: args.opt("subscription").unwrap_or("count"),
            expect: args.num::<u64>("expect", None)?,
            pid: args.num::<u32>("pid", Some(0))?,
            timeout: Duration::from_secs(args.num::<u64>("timeout", Some(600))?),
            extra: Duration::from_millis(args.num::<u64>("extra-ms", Some(500))?),
            dump: args.opt("dump"),
        })
    })();
    let options = match parsed {
        Ok(o) => o,
        Err(code) => return code,
    };
    match runtime().and_then(|rt| rt.block_on(count(&options))) {
        Ok((count, redelivered, first, done)) => {
            println!(
                "count={count} first={:.3} done={done:.3} redelivered={redelivered}",
                first.unwrap_or(done)
            );
            if count == options.expect {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("pulsar-count: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Distinct messages, messages delivered again, and when the first and the expected
/// last arrived.
async fn count(o: &Options<'_>) -> Result<(u64, u64, Option<f64>, f64), String> {
    let mut dump = match o.dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("{path}: {e}"))?,
        )),
        None => None,
    };
    let started = Instant::now();
    let client = connect(o.url).await?;
    let mut consumer: Consumer<Vec<u8>, TokioExecutor> = client
        .consumer()
        .with_topic(o.topic)
        .with_subscription(o.subscription)
        .with_subscription_type(SubType::Exclusive)
        .with_options(ConsumerOptions::default().with_initial_position(InitialPosition::Earliest))
        .with_consumer_id(random_id())
        .build()
        .await
        .map_err(|e| format!("cannot subscribe: {e}"))?;
    let (mut count, mut first, mut done) = (0u64, None, None::<(f64, Instant)>);
    let mut seen = std::collections::HashSet::new();
    let mut redelivered = 0u64;
    let mut last = None;
    loop {
        if let Some((_, at)) = done {
            if at.elapsed() >= o.extra {
                break;
            }
        } else if started.elapsed() >= o.timeout
            || (o.pid != 0 && !std::path::Path::new(&format!("/proc/{}", o.pid)).exists())
        {
            break;
        }
        let next = match tokio::time::timeout(Duration::from_millis(20), consumer.next()).await {
            Ok(next) => next,
            Err(_) => continue,
        };
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(format!("reading: {e}")),
            None => return Err("the consumer ended".into()),
        };
        // A message the broker delivers again (pulsar-lite resends whole entries now
        // and then) has the id it had: counted once, so the count is what the topic
        // holds.
        let id = &message.message_id.id;
        if !seen.insert((id.ledger_id, id.entry_id, id.partition, id.batch_index)) {
            redelivered += 1;
            continue;
        }
        count += 1;
        if first.is_none() {
            first = Some(epoch_secs());
        }
        if count == o.expect {
            done = Some((epoch_secs(), Instant::now()));
        }
        if let Some(out) = &mut dump {
            out.write_all(&message.payload.data)
                .and_then(|()| out.write_all(b"\n"))
                .map_err(|e| format!("dump: {e}"))?;
        }
        if count % ACK_EVERY == 0 {
            let _ = consumer.cumulative_ack(&message).await;
            last = None;
        } else {
            last = Some(message);
        }
    }
    if let Some(message) = last {
        let _ = consumer.cumulative_ack(&message).await;
    }
    if let Some(out) = &mut dump {
        out.flush().map_err(|e| format!("dump: {e}"))?;
    }
    let _ = consumer.close().await;
    Ok((count, redelivered, first, done.map_or_else(epoch_secs, |(at, _)| at)))
}
