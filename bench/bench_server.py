"""Server throughput and API latency, against a shell loop of `executor run`, in one run.

1. N executions of a three-child WorkingDirectory flow submitted through Kestra's API to one
   `executor server --workers SLOTS`: executions per minute, from the first submit to the last
   end.
2. The same flow run N times by a shell loop of `executor run` (one process per execution, as
   a cron job would): executions per minute.
3. While (1) runs, a reader polls `GET /api/v1/executions/{id}` and `GET /executions/search`:
   p50 and p99 latency of each.

Usage: python bench/bench_server.py [N [SLOTS]]   (default N=300, SLOTS=4; image:
executor/busybox:latest). The loop of (2) runs min(N, BENCH_LOOP_N or N) executions and the
rate is per minute either way.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
FLOW = f"""\
id: three
namespace: bench
tasks:
  - id: wd
    type: io.kestra.plugin.core.flow.WorkingDirectory
    tasks:
      - id: extract
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {IMAGE}
        commands: ["echo 1,2,3 > rows.csv"]
      - id: transform
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {IMAGE}
        commands: ["tr , '\\n' < rows.csv > lines.txt"]
      - id: load
        type: io.kestra.plugin.scripts.shell.Commands
        containerImage: {IMAGE}
        commands: ["wc -l lines.txt"]
"""
TERMINAL = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def through_server(home: Path, n: int, slots: int) -> tuple[float, list[float], list[float]]:
    """Executions per minute through the API, and the latencies of the reads made meanwhile."""
    port = free_port()
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    server = subprocess.Popen(
        [sys.executable, "-m", "executor", "server", "--port", str(port), "--workers", str(slots)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            for _ in range(600):
                try:
                    client.get("/configs")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            created = client.post(
                "/flows", content=FLOW, headers={"Content-Type": "application/x-yaml"}
            )
            created.raise_for_status()
            get_ms: list[float] = []
            search_ms: list[float] = []
            done = threading.Event()
            ids: list[str] = []

            def read_meanwhile() -> None:
                with httpx.Client(base_url=base, timeout=60) as reader:
                    while not done.is_set():
                        if ids:
                            t0 = time.perf_counter()
                            reader.get(f"/executions/{ids[len(ids) // 2]}").raise_for_status()
                            get_ms.append((time.perf_counter() - t0) * 1000)
                        t0 = time.perf_counter()
                        reader.get("/executions/search", params={"namespace": "bench"})
                        search_ms.append((time.perf_counter() - t0) * 1000)
                        time.sleep(0.05)

            reader = threading.Thread(target=read_meanwhile, daemon=True)
            reader.start()
            t0 = time.perf_counter()
            for _ in range(n):
                answer = client.post("/executions/bench/three")
                answer.raise_for_status()
                ids.append(answer.json()["id"])
            pending = set(ids)
            states: dict[str, str] = {}
            while pending:
                for execution_id in list(pending):
                    state = client.get(f"/executions/{execution_id}").json()["state"]["current"]
                    if state in TERMINAL:
                        states[execution_id] = state
                        pending.discard(execution_id)
                if pending:
                    time.sleep(0.5)
            elapsed = time.perf_counter() - t0
            done.set()
            reader.join()
        failed = [i for i, s in states.items() if s != "SUCCESS"]
        assert not failed, f"{len(failed)} executions did not succeed: {failed[:3]}"
        return n / elapsed * 60, get_ms, search_ms
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=120)


def shell_loop(home: Path, n: int) -> float:
    """Executions per minute of a shell loop of `executor run`."""
    flow = home / "three.yaml"
    flow.write_text(FLOW)
    run = f'"{sys.executable}" -m executor run "{flow}" --quiet'
    script = f"for i in $(seq {n}); do {run} || exit 1; done"
    env = {**os.environ, "EXECUTOR_HOME": str(home)}
    t0 = time.perf_counter()
    subprocess.run(
        ["sh", "-c", script],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return n / (time.perf_counter() - t0) * 60


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    slots = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    loop_n = min(n, int(os.environ.get("BENCH_LOOP_N", n)))
    with tempfile.TemporaryDirectory() as server_home, tempfile.TemporaryDirectory() as loop_home:
        per_minute, get_ms, search_ms = through_server(Path(server_home), n, slots)
        loop_per_minute = shell_loop(Path(loop_home), loop_n)
    print(f"{n} executions of a three-child WorkingDirectory, server with {slots} slots:")
    print(f"  through the API      {per_minute:7.1f} executions/min")
    print(f"  shell loop ({loop_n:>4} runs) {loop_per_minute:7.1f} executions/min")
    print(f"  ratio                {per_minute / loop_per_minute:7.2f}x")
    for name, values in (("GET /executions/{id}", get_ms), ("GET /executions/search", search_ms)):
        if values:
            print(
                f"  {name:<24} p50 {statistics.median(values):6.1f} ms"
                f"   p99 {percentile(values, 0.99):6.1f} ms   ({len(values)} requests under load)"
            )


if __name__ == "__main__":
    main()
