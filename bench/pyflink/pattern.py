"""PyFlink's version of bench/pattern.yaml's job, for bench/pyflink.sh: per user, a
login followed by a purchase of more than 0 within 10 minutes, on event time with a 5 s
bounded out-of-orderness watermark, from the same JSON-lines file, into a JSON-lines
file of the same four fields.

    python pattern.py INPUT OUTPUT_DIR PARALLELISM

PyFlink has no pattern API of its own (Flink's CEP library is Java's), so this is Flink
SQL's MATCH_RECOGNIZE, which runs on the same CEP operator: the oldest login not older
than 10 minutes, anything between, the purchase; after a match, on past it (rill's
rule: a purchase matches the oldest login still open, and every open login is done)."""

import sys

from flink_job import run


def main(source: str, sink: str, parallelism: str) -> None:
    events = f"""
        CREATE TABLE events (
            user_id STRING,
            event STRING,
            amount DOUBLE,
            ts BIGINT,
            rt AS TO_TIMESTAMP_LTZ(ts, 3),
            WATERMARK FOR rt AS rt - INTERVAL '5' SECOND
        ) WITH ('connector' = 'filesystem', 'path' = '{source}', 'format' = 'json')
    """
    found = f"""
        CREATE TABLE login_purchase (
            user_id STRING,
            login_at BIGINT,
            purchased_at BIGINT,
            amount DOUBLE
        ) WITH ('connector' = 'filesystem', 'path' = '{sink}', 'format' = 'json')
    """
    insert = """
        INSERT INTO login_purchase
        SELECT user_id, login_at, purchased_at, amount
        FROM events
        MATCH_RECOGNIZE (
            PARTITION BY user_id
            ORDER BY rt
            MEASURES L.ts AS login_at, P.ts AS purchased_at, COALESCE(P.amount, 0.0) AS amount
            AFTER MATCH SKIP PAST LAST ROW
            PATTERN (L A*? P) WITHIN INTERVAL '10' MINUTE
            DEFINE
                L AS L.event = 'login',
                P AS P.event = 'purchase' AND COALESCE(P.amount, 0.0) > 0.0
        )
    """
    run("pattern", parallelism, [events, found], insert)


if __name__ == "__main__":
    main(*sys.argv[1:4])
