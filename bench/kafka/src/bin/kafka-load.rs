//! Writes N deterministic readings (the records of `baseline gen`, one JSON object per
//! message, keyed by device id) to a topic as fast as the producer goes (the relay's
//! producer settings), then waits for every delivery. Prints the count, the time, and how many pass bench/kafka_filter.yaml's
//! filter (`expect_out`), which the benchmark waits for on the output topics.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rill_bench_kafka::{producer_config, reading, Args, Deliveries, SplitMix, SEED};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const USAGE: &str = "--brokers HOST:PORT --topic T --count N";

fn main() -> ExitCode {
    let args = match Args::parse("kafka-load", USAGE, &[]) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (brokers, topic, n) = match (args.req("brokers"), args.req("topic"), args.num::<u64>("count", None)) {
        (Ok(b), Ok(t), Ok(n)) => (b, t, n),
        (Err(c), ..) | (_, Err(c), _) | (.., Err(c)) => return c,
    };
    let producer: BaseProducer<Deliveries> = match producer_config(brokers).create_with_context(Deliveries::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("kafka-load: {e}");
            return ExitCode::FAILURE;
        }
    };

    let started = Instant::now();
    let mut rng = SplitMix(SEED);
    let mut buf = Vec::with_capacity(256);
    let mut expect_out = 0u64;
    for i in 0..n {
        let (key, keep) = reading(&mut rng, i, &mut buf);
        expect_out += keep as u64;
        let mut record = BaseRecord::to(topic).key(&buf[key]).payload(&buf[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
                Err((e, _)) => {
                    eprintln!("kafka-load: message {i}: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    if let Err(e) = producer.flush(Duration::from_secs(120)) {
        eprintln!("kafka-load: flush: {e} ({} in flight)", producer.in_flight_count());
        return ExitCode::FAILURE;
    }
    let secs = started.elapsed().as_secs_f64();
    let ctx = producer.context();
    let (delivered, failed) = (
        ctx.delivered.load(Ordering::Relaxed),
        ctx.failed.load(Ordering::Relaxed),
    );
    println!(
        "kafka-load: {delivered} records to {topic} in {secs:.2} s ({:.0} records/s), {failed} failed, expect_out={expect_out}",
        delivered as f64 / secs
    );
    if delivered == n && failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
