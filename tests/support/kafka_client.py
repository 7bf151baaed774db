#!/usr/bin/env python3
"""An independent Kafka client for rill's tests (see tests/support/kafka.rs).

Subcommands, all JSON lines in and out:

  produce    reads messages from stdin, one per line:
             {"key": str|null, "value": str, "headers": [[k, v], ...],
              "partition": int|null, "timestamp_ms": int|null}
             flushes, and fails (exit 1) on any delivery error; prints {"produced": n}.
  consume    reads every partition of a topic from the beginning, without a consumer
             group, until --expected messages were read or --timeout seconds passed;
             prints one line per message:
             {"key", "value", "headers", "partition", "offset", "timestamp_ms"}.
  committed  prints one line: the committed offset of --group per partition of
             --topic (null where the group committed none).
  commit     commits --offset PARTITION=OFFSET (repeatable) for --group on --topic,
             as a consumer outside any group generation would.

Every subcommand takes --config NAME=VALUE (repeatable) librdkafka settings, e.g. TLS's.
Keys, values and header values are UTF-8 text; anything else is an error.
"""

import argparse
import json
import sys
import time
import uuid

try:
    import confluent_kafka
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
except ImportError:
    sys.exit("kafka_client.py: the Python package confluent_kafka is missing: run scripts/kafka-setup")


def fail(message):
    sys.exit(f"kafka_client.py: {message}")


def text(data, what):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{what} is not UTF-8: {data!r}")


def extra_config(pairs):
    config = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            fail(f"--config wants NAME=VALUE, got {pair!r}")
        config[name] = value
    return config


def group_client(args):
    """A consumer of `args.group` that never commits by itself."""
    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "enable.auto.commit": False,
    }
    config.update(extra_config(args.config))
    return Consumer(config)


def produce(args):
    config = {
        "bootstrap.servers": args.bootstrap,
        "linger.ms": 5,
        "message.timeout.ms": int(args.timeout * 1000),
    }
    config.update(extra_config(args.config))
    producer = Producer(config)
    errors = []
    delivered = 0

    def on_delivery(err, msg):
        nonlocal delivered
        if err is not None:
            errors.append(f"partition {msg.partition()}: {err}")
        else:
            delivered += 1

    sent = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        try:
            m = json.loads(line)
        except json.JSONDecodeError as e:
            fail(f"stdin line {number} is not JSON ({e}): {line!r}")
        kwargs = {
            "value": m["value"].encode("utf-8"),
            "on_delivery": on_delivery,
        }
        if m.get("key") is not None:
            kwargs["key"] = m["key"].encode("utf-8")
        if m.get("headers"):
            kwargs["headers"] = [(k, v.encode("utf-8")) for k, v in m["headers"]]
        if m.get("partition") is not None:
            kwargs["partition"] = m["partition"]
        if m.get("timestamp_ms") is not None:
            kwargs["timestamp"] = m["timestamp_ms"]
        while True:
            try:
                producer.produce(args.topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
            except KafkaException as e:
                fail(f"producing stdin line {number} to {args.topic}: {e}")
        sent += 1
        if sent % 10_000 == 0:
            producer.poll(0)
        if errors:
            break

    remaining = producer.flush(args.timeout)
    if errors:
        shown = "\n  ".join(errors[:10])
        fail(f"{len(errors)} messages to {args.topic} were not delivered, first ones:\n  {shown}")
    if remaining:
        fail(f"{remaining} of {sent} messages to {args.topic} still undelivered after {args.timeout}s")
    if delivered != sent:
        fail(f"sent {sent} messages to {args.topic} but {delivered} were acknowledged")
    print(json.dumps({"produced": delivered}))


def partitions_of(client, topic, timeout):
    metadata = client.list_topics(topic, timeout=timeout)
    info = metadata.topics.get(topic)
    if info is None:
        fail(f"topic {topic} not in the broker's metadata")
    if info.error is not None:
        fail(f"topic {topic}: {info.error}")
    return sorted(info.partitions)


def consume(args):
    config = {
        "bootstrap.servers": args.bootstrap,
        # Needed by the client even though it never joins a group: partitions are assigned.
        "group.id": f"rill-test-reader-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
    }
    config.update(extra_config(args.config))
    consumer = Consumer(config)
    partitions = partitions_of(consumer, args.topic, args.timeout)
    consumer.assign(
        [TopicPartition(args.topic, p, confluent_kafka.OFFSET_BEGINNING) for p in partitions]
    )
    deadline = time.monotonic() + args.timeout
    read = 0
    out = sys.stdout
    while read < args.expected:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for msg in consumer.consume(num_messages=10_000, timeout=min(left, 0.5)):
            err = msg.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                fail(f"reading {args.topic}: {err}")
            where = f"partition {msg.partition()} offset {msg.offset()}"
            ts_type, ts = msg.timestamp()
            record = {
                "key": text(msg.key(), f"key at {where}"),
                "value": text(msg.value(), f"value at {where}") or "",
                "headers": [[k, text(v, f"header {k} at {where}") or ""] for k, v in msg.headers() or []],
                "partition": msg.partition(),
                "offset": msg.offset(),
                "timestamp_ms": None if ts_type == confluent_kafka.TIMESTAMP_NOT_AVAILABLE else ts,
            }
            out.write(json.dumps(record))
            out.write("\n")
            read += 1
    consumer.close()


def committed(args):
    consumer = group_client(args)
    wanted = [TopicPartition(args.topic, p) for p in range(args.partitions)]
    try:
        result = consumer.committed(wanted, timeout=args.timeout)
    except KafkaException as e:
        fail(f"committed offsets of group {args.group} on {args.topic}: {e}")
    offsets = []
    for tp in sorted(result, key=lambda tp: tp.partition):
        if tp.error is not None:
            fail(f"committed offset of group {args.group} on {args.topic}/{tp.partition}: {tp.error}")
        offsets.append(tp.offset if tp.offset >= 0 else None)
    consumer.close()
    print(json.dumps(offsets))


def commit(args):
    offsets = []
    for pair in args.offset:
        partition, sep, offset = pair.partition("=")
        if not sep:
            fail(f"--offset wants PARTITION=OFFSET, got {pair!r}")
        offsets.append(TopicPartition(args.topic, int(partition), int(offset)))
    consumer = group_client(args)
    try:
        result = consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as e:
        fail(f"committing {args.offset} for group {args.group} on {args.topic}: {e}")
    for tp in result or []:
        if tp.error is not None:
            fail(f"committing for group {args.group} on {args.topic}/{tp.partition}: {tp.error}")
    consumer.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("--bootstrap", required=True, help="host:port of the broker")
        p.add_argument("--topic", required=True)
        p.add_argument("--timeout", type=float, default=30.0, help="seconds")
        p.add_argument("--config", action="append", default=[], metavar="NAME=VALUE", help="librdkafka setting")

    p = commands.add_parser("produce", help="produce JSON-lines messages from stdin")
    common(p)
    p.set_defaults(run=produce)

    p = commands.add_parser("consume", help="read a topic from the beginning")
    common(p)
    p.add_argument("--expected", type=int, required=True, help="stop after this many messages")
    p.set_defaults(run=consume)

    p = commands.add_parser("committed", help="a group's committed offsets")
    common(p)
    p.add_argument("--group", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.set_defaults(run=committed)

    p = commands.add_parser("commit", help="commit offsets for a group")
    common(p)
    p.add_argument("--group", required=True)
    p.add_argument("--offset", action="append", required=True, metavar="PARTITION=OFFSET")
    p.set_defaults(run=commit)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
