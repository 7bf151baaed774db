"""What bench/pyflink's jobs share: run one Flink SQL job in PyFlink's local mini
cluster, time it, and report the JVMs it started (their CPU time and peak RSS, which
`time` cannot see: the JVM is not a child it waits for)."""

import os
import sys
import time

from pyflink.table import EnvironmentSettings, TableEnvironment


def run(name: str, parallelism: str, tables: list[str], insert: str) -> None:
    """Creates `tables` (DDL), runs `insert` to its end, and prints to stderr
    `pyflink NAME: S s` and one `pyflink jvm PID: cpu S s, peak rss K KiB` per JVM."""
    started = time.monotonic()
    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    env.get_config().set("parallelism.default", parallelism)
    for ddl in tables:
        env.execute_sql(ddl)
    env.execute_sql(insert).wait()
    print(f"pyflink {name}: {time.monotonic() - started:.2f} s", file=sys.stderr)
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
