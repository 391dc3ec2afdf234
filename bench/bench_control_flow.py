"""Control flow inside one WorkingDirectory, against the alternatives, in one run.

1. Parallel of 8 children, each `sleep 1`, in one WorkingDirectory: wall time against the
   same 8 children in sequence (target: parallel <= 1.3 s).
2. ForEach of N trivial values (`true`), concurrencyLimit 8, in one WorkingDirectory:
   per-value cost against the same ForEach with concurrencyLimit 1, and against N separate
   `docker run --rm` (a container per task).

Usage: python bench/bench_control_flow.py [N]   (default N=200; image: executor/busybox:latest)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor import app
from executor.model import Execution, State
from executor.settings import Settings
from executor.store.recorder import Recorder

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
SH = "io.kestra.plugin.scripts.shell.Commands"


def run(home: Path, text: str) -> tuple[float, Execution]:
    """Wall time of one recorded run of the flow ``text``, as `executor run` records it."""
    flow = home / "bench.yaml"
    flow.write_text(text)
    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    stores = app.services(settings)
    recorder = Recorder(stores.records)
    recorder.start()
    t0 = time.perf_counter()
    try:
        execution = app.run_flow(settings, flow, {}, [recorder], stores=stores)
    finally:
        recorder.finish()
    elapsed = time.perf_counter() - t0
    assert execution.state.current == State.SUCCESS, execution.state.current
    return elapsed, execution


def span(execution: Execution, prefix: str) -> float:
    """From the first start to the last end of the task runs whose id starts with ``prefix``."""
    runs = [t for t in execution.task_runs if t.task_id.startswith(prefix)]
    start = min(t.state.start for t in runs)
    end = max(t.state.end or t.state.start for t in runs)
    return (end - start).total_seconds()


def _wd(body: str) -> str:
    return (
        "id: bench\nnamespace: bench\ntasks:\n  - id: wd\n"
        "    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n" + body
    )


def sleepers(parallel: bool) -> str:
    children = "".join(
        f"          - {{id: s{i}, type: {SH}, containerImage: {IMAGE}, commands: ['sleep 1']}}\n"
        for i in range(8)
    )
    if parallel:
        return _wd(
            "      - id: fan\n        type: io.kestra.plugin.core.flow.Parallel\n"
            "        tasks:\n" + children
        )
    return _wd(children.replace("          - ", "      - "))


def for_each(n: int, limit: int) -> str:
    values = ", ".join(f'"v{i}"' for i in range(n))
    return _wd(
        "      - id: each\n        type: io.kestra.plugin.core.flow.ForEach\n"
        f"        values: [{values}]\n        concurrencyLimit: {limit}\n        tasks:\n"
        f"          - {{id: t, type: {SH}, containerImage: {IMAGE}, commands: ['true']}}\n"
    )


def raw_parallel_sleeps() -> float:
    """The engine's own floor: 8 `sleep 1` execs started at once through its API."""
    import threading

    import docker

    client = docker.from_env()
    box = client.containers.run(
        IMAGE,
        ["sh", "-c", "while :; do sleep 3600 & wait $!; done"],
        detach=True,
        init=True,
        labels={"io.executor.bench": "true"},
    )
    api = client.api

    def one() -> None:
        ex = api.exec_create(box.id, ["sleep", "1"], stdout=True, stderr=True)
        for _ in api.exec_start(ex["Id"], stream=True, demux=True):
            pass
        api.exec_inspect(ex["Id"])

    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0
    finally:
        box.remove(force=True)


def docker_runs(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(["docker", "run", "--rm", IMAGE, "true"], check=True)
    return time.perf_counter() - t0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        run(home, for_each(3, 1))  # warm-up: image lookups, imports
        par = span(run(home, sleepers(True))[1], "fan")
        seq = span(run(home, sleepers(False))[1], "s")
        fe8 = run(home, for_each(n, 8))[0]
        fe1 = run(home, for_each(n, 1))[0]
    dr = docker_runs(n)
    raw = raw_parallel_sleeps()
    print("Parallel of 8 x `sleep 1` in one WorkingDirectory (first start to last end):")
    print(f"  parallel {par:6.2f} s   sequential {seq:6.2f} s   ratio {seq / par:.1f}x")
    print(f"  engine floor: 8 raw API execs at once {raw:.2f} s; parallel / floor {par / raw:.2f}")
    print(f"  target: parallel <= 1.3 s -> {'met' if par <= 1.3 else 'NOT met'}")
    print(f"ForEach of {n} trivial values in one WorkingDirectory, per value:")
    print(f"  concurrencyLimit 8  {fe8 / n * 1000:7.1f} ms")
    print(f"  concurrencyLimit 1  {fe1 / n * 1000:7.1f} ms   ({fe1 / fe8:.2f}x the limit-8 cost)")
    print(f"  docker run per task {dr / n * 1000:7.1f} ms   ({dr / fe8:.2f}x the limit-8 cost)")


if __name__ == "__main__":
    main()
