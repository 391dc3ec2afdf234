"""Scale-out: one worker against two workers on two Docker engines, through a real broker.

N executions of a WorkingDirectory flow whose two children sleep 2 s in total are submitted
through Kestra's API to `executor server --broker` (a real redis-server), and run by:

1. ONE `executor worker` on engine 1 (this machine's dockerd);
2. TWO workers: the same one, and one on engine 2 (a second dockerd in its own network
   namespace, `scripts/second-engine.sh`), with the same slots each.

For each: executions per minute (first execution created to last one ended, from the records'
own timestamps) and queue-to-start latency p50/p99 (the execution's QUEUED state to its first
RUNNING state, from its state history). Then the throughput ratio (target >= 1.8x).

Usage: python bench/bench_workers.py   (root: the second engine needs a network namespace)
Environment: BENCH_WORKERS_N (default 40), BENCH_WORKERS_SLOTS (default 2 per worker, as
`executor worker --slots`).
Everything it starts (Redis, the server, the workers, engine 2) it stops, by pid.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the real parts are the worker tests' own (tests/integration)

from tests.integration.workers_helpers import (  # noqa: E402
    Cluster,
    SecondEngine,
    start_redis,
)

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
FLOW = f"""\
id: sleepy
namespace: bench.workers
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: first
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {IMAGE}
        commands: ["sleep 1", "echo one > one.txt"]
      - id: second
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {IMAGE}
        commands: ["sleep 1", "cat one.txt"]
"""
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_at(histories: list[dict[str, Any]], state: str) -> datetime:
    return next(datetime.fromisoformat(h["date"]) for h in histories if h["state"] == state)


def run_once(
    tmp: Path, engine2: SecondEngine, redis_port: int, n: int, slots: int, two: bool
) -> tuple[float, list[float], dict[str, int]]:
    """Executions per minute, queue-to-start latencies (s), executions per worker."""
    cluster = Cluster(tmp, engine2.host_address, f"redis://{engine2.host_address}:{redis_port}/0")
    try:
        cluster.start_server()
        with cluster.client() as client:
            answer = client.post(
                "/api/v1/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}
            )
            answer.raise_for_status()
            cluster.start_worker("w1", slots=slots)
            if two:
                cluster.start_worker(
                    "w2", netns=engine2.name, docker_host=engine2.socket, slots=slots
                )
            ids = []
            cpu_before = machine_cpu()
            for _ in range(n):
                created = client.post("/api/v1/executions/bench.workers/sleepy")
                created.raise_for_status()
                ids.append(created.json()["id"])
            # one light query a second (a poll of each execution would load the server)
            deadline = time.monotonic() + 60 * 30
            ended = 0
            while ended < n:
                assert time.monotonic() < deadline, f"only {ended} of {n} ended"
                time.sleep(1.0)
                found = client.get(
                    "/api/v1/executions/search",
                    params={"namespace": "bench.workers", "state": sorted(TERMINAL), "size": 1},
                )
                ended = int(found.json()["total"])
            done = {i: client.get(f"/api/v1/executions/{i}").json() for i in ids}
            cpu_after = machine_cpu()
            assert cluster.server is not None
            ours = {"server": cpu_seconds(cluster.server.proc.pid)}
            ours.update({name: cpu_seconds(w.proc.pid) for name, w in cluster.workers.items()})
            ran_on: dict[str, int] = {}
            for execution_id in ids:
                logs = client.get(f"/api/v1/logs/{execution_id}").json()
                worker = next(
                    line["message"].split(" on worker ")[1].split()[0]
                    for line in logs
                    if " on worker " in line["message"]
                )
                ran_on[worker] = ran_on.get(worker, 0) + 1
    finally:
        cluster.stop()
    failed = [e for e in done.values() if e["state"]["current"] != "SUCCESS"]
    assert not failed, f"{len(failed)} executions did not succeed: {failed[0]['state']}"
    histories = [e["state"]["histories"] for e in done.values()]
    start = min(first_at(h, "CREATED") for h in histories)
    end = max(datetime.fromisoformat(e["state"]["endDate"]) for e in done.values())
    latencies = [
        (first_at(h, "RUNNING") - first_at(h, "QUEUED")).total_seconds() for h in histories
    ]
    durations = [
        (datetime.fromisoformat(e["state"]["endDate"]) - first_at(h, "RUNNING")).total_seconds()
        for e, h in zip(done.values(), histories, strict=True)
    ]
    busy = (cpu_after[0] - cpu_before[0]) / (cpu_after[1] - cpu_before[1]) * 100
    print(
        f"  ({'two workers' if two else 'one worker'}: run time of one execution, RUNNING to"
        f" end: p50 {statistics.median(durations):.2f} s, max {max(durations):.2f} s;"
        f" machine CPU busy {busy:.0f}%; CPU seconds of our processes (with their start): "
        + ", ".join(f"{k} {v:.1f}" for k, v in ours.items())
        + ")",
        flush=True,
    )
    return n / (end - start).total_seconds() * 60, latencies, ran_on


def main() -> None:
    n = int(os.environ.get("BENCH_WORKERS_N", "40"))
    slots = int(os.environ.get("BENCH_WORKERS_SLOTS", "2"))
    if os.geteuid() != 0:
        sys.exit("bench_workers: the second engine needs root (a network namespace)")
    results: list[tuple[str, float, list[float], dict[str, int]]] = []
    engine2 = SecondEngine.up()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp_dir:
            tmp = Path(tmp_dir)
            redis, port = start_redis(tmp, ["127.0.0.1", engine2.host_address])
            try:
                for label, two in (
                    ("1 worker  (engine 1)", False),
                    ("2 workers (engines 1+2)", True),
                ):
                    home = tmp / ("two" if two else "one")
                    home.mkdir()
                    rate, latencies, ran_on = run_once(home, engine2, port, n, slots, two)
                    results.append((label, rate, latencies, ran_on))
            finally:
                redis.stop()
    finally:
        engine2.script("down")
    print(f"{n} executions of a WorkingDirectory (2 children, 2 s of sleep), {slots} slots/worker:")
    for label, rate, latencies, ran_on in results:
        spread = ", ".join(f"{w}: {c}" for w, c in sorted(ran_on.items()))
        print(
            f"  {label:<24} {rate:7.1f} executions/min   queue-to-start"
            f" p50 {statistics.median(latencies):6.2f} s  p99 {percentile(latencies, 0.99):6.2f} s"
            f"   ({spread})"
        )
    print(
        f"  ratio 2 workers / 1 worker   {results[1][1] / results[0][1]:5.2f}x   (target >= 1.8x)"
    )


if __name__ == "__main__":
    main()
