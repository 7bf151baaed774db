//! The Kafka test harness itself (`support::kafka`): a real broker starts, and what the
//! Python client produces it reads back intact. The connector tests rely on this.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::kafka::{Broker, Message};

#[test]
fn produced_messages_read_back_intact() {
    let started = Instant::now();
    let broker = Broker::start();
    eprintln!("broker answered after {:?}", started.elapsed());
    broker.create_topic("harness", 3);

    let messages: Vec<Message> = (0..1000)
        .map(|i| {
            Message::keyed(format!("k{}", i % 50), format!("v{i}"))
                .header("seq", i.to_string())
                .header("kind", if i % 2 == 0 { "even" } else { "odd" })
        })
        .collect();
    broker.produce("harness", &messages);
    // One more than produced: proves nothing else is in the topic.
    let got = broker.consume("harness", 1001, Duration::from_secs(5));

    assert_eq!(got.len(), 1000, "read {} messages, produced 1000", got.len());
    let values: BTreeSet<&str> = got.iter().map(|c| c.value.as_str()).collect();
    assert_eq!(values.len(), 1000, "a value was read twice");
    let mut partition_of_key = BTreeMap::new();
    for c in &got {
        let i: usize = c.value[1..].parse().unwrap();
        let sent = &messages[i];
        assert_eq!(c.key, sent.key, "key of {}", c.value);
        assert_eq!(c.headers, sent.headers, "headers of {}", c.value);
        assert!(c.timestamp_ms.is_some(), "timestamp of {}", c.value);
        let p = partition_of_key.entry(c.key.clone()).or_insert(c.partition);
        assert_eq!(*p, c.partition, "key {:?} is on two partitions", c.key);
    }
    let partitions: BTreeSet<i32> = got.iter().map(|c| c.partition).collect();
    assert!(partitions.len() > 1, "all keys on partitions {partitions:?}");
    assert!(
        partitions.iter().all(|p| (0..3).contains(p)),
        "partitions {partitions:?}"
    );

    // Offsets in each partition are 0, 1, 2, … in the order the messages were sent.
    for p in partitions {
        let mine: Vec<&support::kafka::Consumed> = got.iter().filter(|c| c.partition == p).collect();
        let offsets: Vec<i64> = mine.iter().map(|c| c.offset).collect();
        assert_eq!(
            offsets,
            (0..mine.len() as i64).collect::<Vec<_>>(),
            "offsets of partition {p}"
        );
        let seqs: Vec<usize> = mine.iter().map(|c| c.value[1..].parse().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "partition {p} out of order: {seqs:?}"
        );
    }
}

#[test]
fn explicit_partitions_and_timestamps_are_kept() {
    let broker = Broker::start();
    broker.create_topic("placed", 2);
    let messages = [
        Message::value("a").partition(1).timestamp(1_700_000_000_000),
        Message::value("b").partition(0).timestamp(1_700_000_001_000),
        Message::value("c").partition(1).timestamp(1_700_000_002_000),
    ];
    broker.produce("placed", &messages);
    let mut got = broker.consume("placed", 3, Duration::from_secs(10));
    got.sort_by_key(|c| c.timestamp_ms);
    let seen: Vec<(&str, i32, i64, Option<i64>)> = got
        .iter()
        .map(|c| (c.value.as_str(), c.partition, c.offset, c.timestamp_ms))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", 1, 0, Some(1_700_000_000_000)),
            ("b", 0, 0, Some(1_700_000_001_000)),
            ("c", 1, 1, Some(1_700_000_002_000)),
        ]
    );
    assert!(got.iter().all(|c| c.key.is_none() && c.headers.is_empty()));
}

#[test]
fn committed_offsets_are_per_group_and_partition() {
    let broker = Broker::start();
    broker.create_topic("commits", 3);
    broker.produce(
        "commits",
        &[Message::value("x").partition(0), Message::value("y").partition(2)],
    );
    assert_eq!(broker.committed("nobody", "commits", 3), [None, None, None]);
    broker.commit("readers", "commits", &[(0, 1), (2, 1)]);
    assert_eq!(broker.committed("readers", "commits", 3), [Some(1), None, Some(1)]);
    assert_eq!(broker.committed("nobody", "commits", 3), [None, None, None]);
}
