"""PyFlink's interval join of bench/join.yaml's job, for bench/pyflink.sh: orders joined
with the shipments of the same order from 0 to 1 h after them (an inner interval join),
on event time with a 5 s bounded out-of-orderness watermark, from the same JSON-lines
file, into a JSON-lines file of the same five fields.

    python join.py INPUT OUTPUT_DIR PARALLELISM

Flink SQL's interval join, the way its documentation writes one; Flink chooses its own
state backend (heap) and runs in one local JVM (a mini cluster)."""

import os
import sys
import time

from pyflink.table import EnvironmentSettings, TableEnvironment


def main(source: str, sink: str, parallelism: str) -> None:
    started = time.monotonic()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", parallelism)
    env.execute_sql(
        f"""
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
    )
    env.execute_sql(
        f"""
        CREATE TABLE shipped (
            order_id STRING,
            ordered_at BIGINT,
            amount DOUBLE,
            carrier STRING,
            shipped_at BIGINT
        ) WITH ('connector' = 'filesystem', 'path' = '{sink}', 'format' = 'json')
        """
    )
    result = env.execute_sql(
        """
        INSERT INTO shipped
        SELECT o.order_id, o.ts, COALESCE(o.amount, 0.0), COALESCE(s.carrier, ''), s.ts
        FROM (SELECT * FROM events WHERE kind = 'order') AS o,
             (SELECT * FROM events WHERE kind = 'shipment') AS s
        WHERE o.order_id = s.order_id
          AND s.rt BETWEEN o.rt AND o.rt + INTERVAL '1' HOUR
        """
    )
    result.wait()
    print(f"pyflink join: {time.monotonic() - started:.2f} s", file=sys.stderr)
    for pid, cpu, peak_kib in jvms():
        print(f"pyflink jvm {pid}: cpu {cpu:.2f} s, peak rss {peak_kib} KiB", file=sys.stderr)


def jvms():
    """The JVMs this process started (Flink's mini cluster): pid, CPU seconds so far,
    peak RSS in KiB."""
    hz = os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) != os.getpid() or "java" not in stat.split(")", 1)[0]:
            continue
        cpu = (int(fields[11]) + int(fields[12])) / hz
        peak = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), "0")
        yield pid, cpu, peak


if __name__ == "__main__":
    main(*sys.argv[1:4])
