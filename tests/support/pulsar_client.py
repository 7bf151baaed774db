#!/usr/bin/env python3
"""An independent Pulsar client for rill's tests (see tests/support/pulsar.rs): the
official `pulsar-client` package (Apache's C++ client).

Subcommands, JSON lines in and out:

  produce    reads messages from stdin, one per line:
             {"value": str, "key": str|null, "properties": {k: v}}
             sends them to --topic (in batches of up to --batch messages, one entry
             each on the broker, when given), waits for every receipt; prints
             {"produced": n}.
  consume    subscribes to --topic as --subscription (of --type, exclusive by default,
             from the earliest message), acknowledging each, until --expected messages were read or
             --timeout seconds passed without one; prints one line per message (a
             message the broker delivers again, same id, once):
             {"value", "key", "properties", "topic", "publish_time"}.
"""

import argparse
import json
import sys

try:
    import pulsar
except ImportError:
    sys.exit("pulsar_client.py: the Python package pulsar-client is missing: run scripts/pulsar-setup")


def client(url):
    return pulsar.Client(url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))


def produce(args):
    c = client(args.url)
    if args.batch:
        producer = c.create_producer(
            args.topic, batching_enabled=True, batching_max_messages=args.batch, batching_max_publish_delay_ms=5,
            block_if_queue_full=True,
        )
    else:
        producer = c.create_producer(args.topic, batching_enabled=False)
    failed = []
    n = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        m = json.loads(line)
        kwargs = {"properties": m.get("properties") or {}}
        if m.get("key") is not None:
            kwargs["partition_key"] = m["key"]
        if args.batch:
            producer.send_async(m["value"].encode(), lambda result, _id: result == pulsar.Result.Ok or failed.append(result), **kwargs)
        else:
            producer.send(m["value"].encode(), **kwargs)
        n += 1
    producer.flush()
    if failed:
        sys.exit(f"pulsar_client.py: {len(failed)} messages not confirmed: {failed[0]}")
    c.close()
    print(json.dumps({"produced": n}))


def consume(args):
    c = client(args.url)
    consumer = c.subscribe(
        args.topic,
        args.subscription,
        consumer_type=getattr(pulsar.ConsumerType, args.type),
        initial_position=pulsar.InitialPosition.Earliest,
    )
    got = 0
    # pulsar-lite now and then delivers a whole entry again: a message with an id seen
    # before is the same stored message, printed once (one published twice by the
    # producer has an id of its own and is printed twice).
    seen = set()
    while args.expected is None or got < args.expected:
        try:
            m = consumer.receive(timeout_millis=int(args.timeout * 1000))
        except pulsar.Timeout:
            break
        mid = m.message_id()
        key = (mid.ledger_id(), mid.entry_id(), mid.partition(), mid.batch_index())
        if key in seen:
            consumer.acknowledge(m)
            continue
        seen.add(key)
        print(
            json.dumps(
                {
                    "value": m.data().decode(),
                    "key": m.partition_key() or None,
                    "properties": m.properties(),
                    "topic": m.topic_name(),
                    "publish_time": m.publish_timestamp(),
                }
            ),
            flush=True,
        )
        consumer.acknowledge(m)
        got += 1
    consumer.close()
    c.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["produce", "consume"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--subscription", default="check")
    parser.add_argument("--type", default="Exclusive", choices=["Exclusive", "Shared", "Failover", "KeyShared"])
    parser.add_argument("--expected", type=int)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args()
    {"produce": produce, "consume": consume}[args.command](args)


if __name__ == "__main__":
    main()
