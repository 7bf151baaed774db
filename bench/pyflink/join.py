"""PyFlink's interval join of bench/join.yaml's job, for bench/pyflink.sh: orders joined
with the shipments of the same order from 0 to 1 h after them (an inner interval join),
on event time with a 5 s bounded out-of-orderness watermark, from the same JSON-lines
file, into a JSON-lines file of the same five fields.

    python join.py INPUT OUTPUT_DIR PARALLELISM

Flink SQL's interval join, the way its documentation writes one."""

import sys

from flink_job import run


def main(source: str, sink: str, parallelism: str) -> None:
    events = f"""
        CREATE TABLE events (
            kind STRING,
            order_id STRING,
            ts BIGINT,
            amount DOUBLE,
            carrier STRING,
            rt AS TO_TIMESTAMP_LTZ(ts, 3),
            WATERMARK FOR rt AS rt - INTERVAL '5' SECOND
        ) WITH ('connector' = 'filesystem', 'path' = '{source}', 'format' = 'json')
    """
    shipped = f"""
        CREATE TABLE shipped (
            order_id STRING,
            ordered_at BIGINT,
            amount DOUBLE,
            carrier STRING,
            shipped_at BIGINT
        ) WITH ('connector' = 'filesystem', 'path' = '{sink}', 'format' = 'json')
    """
    insert = """
        INSERT INTO shipped
        SELECT o.order_id, o.ts, COALESCE(o.amount, 0.0), COALESCE(s.carrier, ''), s.ts
        FROM (SELECT * FROM events WHERE kind = 'order') AS o,
             (SELECT * FROM events WHERE kind = 'shipment') AS s
        WHERE o.order_id = s.order_id
          AND s.rt BETWEEN o.rt AND o.rt + INTERVAL '1' HOUR
    """
    run("join", parallelism, [events, shipped], insert)


if __name__ == "__main__":
    main(*sys.argv[1:4])
