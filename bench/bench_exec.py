"""Per-task cost of a trivial child (`true`), four ways, in one run.

(a) the executor: N children of one WorkingDirectory, each one exec in one container
(b) one `docker run --rm` per task on a shared volume (what a container-per-task executor does)
(c) `docker exec` CLI per task in one long-lived container
(d) raw exec create/start/inspect through the engine API (the floor for (a))

Prints per-task medians and the ratios a/b, a/c, a/d. Targets: a/d <= 1.15, b/a >= 4.
Usage: python bench/bench_exec.py [N]   (default N=30; image: executor/busybox:latest)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from executor import app
from executor.model import State
from executor.settings import Settings
from executor.store.recorder import Recorder

IMAGE = os.environ.get("BENCH_IMAGE", "executor/busybox:latest")
LABEL = {"io.executor.bench": "true"}


def bench_executor(n: int, home: Path) -> list[float]:
    children = "\n".join(
        f"      - id: t{i}\n        type: io.kestra.plugin.scripts.shell.Commands\n"
        f'        containerImage: {IMAGE}\n        failFast: false\n        commands: ["true"]'
        for i in range(n)
    )
    flow = home / "bench.yaml"
    flow.write_text(
        "id: bench\nnamespace: bench\ntasks:\n  - id: wd\n"
        "    type: io.kestra.plugin.core.flow.WorkingDirectory\n    tasks:\n" + children + "\n"
    )
    settings = Settings.from_env({**os.environ, "EXECUTOR_HOME": str(home)})
    # recorded as `executor run` records it: every state change and log line into SQLite
    stores = app.services(settings)
    recorder = Recorder(stores.records)
    recorder.start()
    try:
        execution = app.run_flow(settings, flow, {}, [recorder], stores=stores)
    finally:
        recorder.finish()
    assert execution.state.current == State.SUCCESS, execution.state.current
    # each child's wall time as the runner saw it: state RUNNING -> SUCCESS
    return [t.state.duration or 0.0 for t in execution.task_runs if t.task_id != "wd"]


def bench_docker_run(n: int, client: docker.DockerClient) -> list[float]:
    vol = client.volumes.create(labels=LABEL)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "-v",
                    f"{vol.name}:/workspace",
                    "-w",
                    "/workspace",
                    IMAGE,
                    "true",
                ],
                check=True,
            )
            times.append(time.perf_counter() - t0)
    finally:
        vol.remove(force=True)
    return times


def _keepalive(client: docker.DockerClient) -> docker.models.containers.Container:
    return client.containers.run(
        IMAGE,
        ["sh", "-c", "while :; do sleep 3600 & wait $!; done"],
        detach=True,
        init=True,
        labels=LABEL,
    )


def bench_exec_cli(n: int, client: docker.DockerClient) -> list[float]:
    c = _keepalive(client)
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            subprocess.run(["docker", "exec", c.id, "true"], check=True)
            times.append(time.perf_counter() - t0)
    finally:
        c.remove(force=True)
    return times


def bench_exec_api(n: int, client: docker.DockerClient) -> list[float]:
    c = _keepalive(client)
    api = client.api
    times = []
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            ex = api.exec_create(c.id, ["true"], stdout=True, stderr=True)
            for _chunk in api.exec_start(ex["Id"], stream=True, demux=True):
                pass
            code = api.exec_inspect(ex["Id"])["ExitCode"]
            assert code == 0
            times.append(time.perf_counter() - t0)
    finally:
        c.remove(force=True)
    return times


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as tmp:
        bench_executor(3, Path(tmp))  # warm-up: image lookups, imports
        results = {
            "a executor (exec per task)": bench_executor(n, Path(tmp)),
            "b docker run per task": bench_docker_run(n, client),
            "c docker exec CLI": bench_exec_cli(n, client),
            "d raw API exec": bench_exec_api(n, client),
        }
    med = {k: statistics.median(v) * 1000 for k, v in results.items()}
    print(f"trivial task (`true`), N={n}, image {IMAGE}; per-task medians:")
    for name, ms in med.items():
        print(f"  {name:<28} {ms:8.1f} ms")
    a, b, c, d = med.values()
    print(f"ratios: a/b = {a / b:.3f}   a/c = {a / c:.3f}   a/d = {a / d:.3f}   b/a = {b / a:.2f}")
    print(
        f"targets: a/d <= 1.15 -> {'met' if a / d <= 1.15 else 'NOT met'};"
        f" b/a >= 4 -> {'met' if b / a >= 4 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
