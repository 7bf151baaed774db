//! Reads a topic from offset 0 of every partition (no consumer group, nothing
//! committed) and counts its messages. Two uses:
//!
//! - timing a job from outside: `--expect N [--pid PID]` stops at the N-th message and
//!   prints `first=<s> done=<s> count=<n>`, the Unix times in seconds (comparable with
//!   `date +%s.%N`) at which the first and the N-th message were read. It fails (exit 1)
//!   after `--timeout` seconds (default 600), or as soon as process PID has exited.
//! - reading a topic back: `--idle SECS [--dump FILE]` stops once no message arrived
//!   for SECS seconds, prints the same line; `--dump` writes every payload to FILE, one
//!   per line.
//!
//! Why not the end offsets: tansu 0.6.0 answers ListOffsets(latest) with the base
//! offset + 1 of the most recently written batch, not the partition's end, so the
//! count must come from reading. Offset 0 rather than "beginning" for the same reason
//! (the topics here are fresh).

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rill_bench_kafka::{consumer_config, epoch_secs, Args};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const USAGE: &str =
    "--brokers HOST:PORT --topic T (--expect N [--pid PID] | --idle SECS [--dump FILE]) [--timeout SECS]";

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let args = match Args::parse("kafka-count", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let parsed = (|| {
        Ok::<_, ExitCode>(Stop {
            expect: args
                .opt("expect")
                .map(|_| args.num::<u64>("expect", None))
                .transpose()?,
            idle: args
                .opt("idle")
                .map(|_| args.num::<f64>("idle", None))
                .transpose()?
                .map(Duration::from_secs_f64),
            pid: args.num::<u32>("pid", Some(0))?,
            timeout: Duration::from_secs(args.num::<u64>("timeout", Some(600))?),
        })
    })();
    let stop = match parsed {
        Ok(s) if s.expect.is_some() != s.idle.is_some() => s,
        Ok(_) => {
            eprintln!("kafka-count: give one of --expect and --idle\nusage: kafka-count {USAGE}");
            return ExitCode::from(2);
        }
        Err(code) => return code,
    };
    let (brokers, topic) = match (args.req("brokers"), args.req("topic")) {
        (Ok(b), Ok(t)) => (b, t),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    match count(brokers, topic, args.opt("dump"), &stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kafka-count: {e}");
            ExitCode::FAILURE
        }
    }
}

/// When to stop reading.
struct Stop {
    expect: Option<u64>,
    idle: Option<Duration>,
    pid: u32,
    timeout: Duration,
}

/// Whether process `pid` is still running (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(stat.rsplit(") ").next().and_then(|s| s.chars().next()), Some('Z' | 'X')),
        Err(_) => false,
    }
}

fn count(brokers: &str, topic: &str, dump: Option<&str>, stop: &Stop) -> Result<(), String> {
    // The jobs' consumer settings (consumer_config), so it keeps up with them.
    let consumer: BaseConsumer = consumer_config(brokers)
        .set("group.id", "kafka-count") // required by librdkafka; nothing is committed
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
        .map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions = match metadata.topics().first() {
        Some(t) if t.error().is_none() => t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>(),
        Some(t) => return Err(format!("topic {topic}: {:?}", t.error())),
        None => return Err(format!("no metadata for {topic}")),
    };
    let mut list = TopicPartitionList::new();
    for p in partitions {
        list.add_partition_offset(topic, p, Offset::Offset(0))
            .map_err(|e| e.to_string())?;
    }
    consumer.assign(&list).map_err(|e| format!("assign: {e}"))?;
    let mut out = match dump {
        Some(path) => Some(BufWriter::new(File::create(path).map_err(|e| format!("{path}: {e}"))?)),
        None => None,
    };

    let started = Instant::now();
    let mut last = Instant::now();
    let (mut count, mut first) = (0u64, None);
    loop {
        if stop.expect.is_some_and(|n| count >= n) {
            break;
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                count += 1;
                last = Instant::now();
                first.get_or_insert_with(epoch_secs);
                if let Some(w) = out.as_mut() {
                    w.write_all(m.payload().unwrap_or_default())
                        .and_then(|()| w.write_all(b"\n"))
                        .map_err(|e| e.to_string())?;
                }
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            None if stop.idle.is_some_and(|idle| last.elapsed() >= idle) => break,
            None if stop.pid != 0 && !alive(stop.pid) => {
                return Err(format!("process {} exited; read {count} messages of {topic}", stop.pid))
            }
            None => {}
        }
        if started.elapsed() >= stop.timeout {
            return Err(format!(
                "timeout: read {count} messages of {topic} in {:?}",
                stop.timeout
            ));
        }
    }
    let done = epoch_secs();
    if let Some(mut w) = out {
        w.flush().map_err(|e| e.to_string())?;
    }
    println!("first={:.3} done={done:.3} count={count}", first.unwrap_or(done));
    Ok(())
}
